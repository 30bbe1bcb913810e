/* Step-aligned split of a metric query_range and the concatenation of the
 * parts' matrices (split.h). The matrix writer mirrors the engine's
 * (aggregator/logql/metric.c, sl_logql_metric_write) so a split answer is
 * byte-identical to the whole one; test_query_split compares the two. */
#include "aggregator/querier/split.h"

#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/logql.h"
#include "common/hash.h"
#include "common/jsonw.h"
#include "common/mem.h"

struct sl_split_series {
    struct sl_labels ls; /* arena copy */
    struct sl_bytes key; /* arena copy of the canonical text */
    int64_t *ts;         /* ms */
    double *v;
    size_t n, cap;
};

size_t sl_split_plan(int64_t start_ns, int64_t end_ns, int64_t step_ns, int64_t split_ns,
                     size_t max_parts, struct sl_split_part *parts)
{
    parts[0] = (struct sl_split_part){start_ns, end_ns};
    if (split_ns <= 0 || max_parts <= 1 || step_ns <= 0 || end_ns <= start_ns)
        return 1;
    uint64_t span = (uint64_t)end_ns - (uint64_t)start_ns;
    uint64_t nsteps = span / (uint64_t)step_ns + 1;
    uint64_t want = span / (uint64_t)split_ns + (span % (uint64_t)split_ns != 0);
    uint64_t k = want;
    if (k > max_parts)
        k = max_parts;
    if (k > SL_SPLIT_MAX_PARTS)
        k = SL_SPLIT_MAX_PARTS;
    if (k > nsteps)
        k = nsteps;
    if (k <= 1)
        return 1;
    for (uint64_t g = 0; g < k; g++) {
        uint64_t first = g * nsteps / k, last = (g + 1) * nsteps / k - 1;
        parts[g].start_ns = start_ns + (int64_t)(first * (uint64_t)step_ns);
        parts[g].end_ns = start_ns + (int64_t)(last * (uint64_t)step_ns);
    }
    parts[k - 1].end_ns = end_ns; /* the same last step; reads what the whole reads */
    return (size_t)k;
}

void sl_split_merge_init(struct sl_split_merge *m)
{
    memset(m, 0, sizeof *m);
    sl_arena_init(&m->arena, 0);
    sl_buf_init(&m->key);
}

void sl_split_merge_release(struct sl_split_merge *m)
{
    for (size_t i = 0; i < m->n; i++) {
        sl_free(m->series[i].ts);
        sl_free(m->series[i].v);
    }
    sl_free(m->series);
    sl_free(m->map);
    sl_buf_release(&m->key);
    sl_arena_release(&m->arena);
    memset(m, 0, sizeof *m);
}

static void map_put(uint32_t *map, size_t cap, struct sl_bytes key, uint32_t v)
{
    size_t j = (size_t)sl_xxh3(key.ptr, key.len);
    while (map[j & (cap - 1)])
        j++;
    map[j & (cap - 1)] = v;
}

static struct sl_split_series *merge_series(struct sl_split_merge *m, const struct sl_labels *ls)
{
    sl_buf_clear(&m->key);
    sl_labels_format(ls, &m->key);
    struct sl_bytes key = sl_buf_bytes(&m->key);
    if (2 * (m->n + 1) > m->mapcap) {
        size_t ncap = m->mapcap ? 2 * m->mapcap : 64;
        sl_free(m->map);
        m->map = sl_calloc(ncap, sizeof *m->map);
        m->mapcap = ncap;
        for (size_t i = 0; i < m->n; i++)
            map_put(m->map, ncap, m->series[i].key, (uint32_t)i + 1);
    }
    size_t mask = m->mapcap - 1, j = (size_t)sl_xxh3(key.ptr, key.len);
    for (;; j++) {
        uint32_t v = m->map[j & mask];
        if (!v)
            break;
        if (sl_bytes_eq(m->series[v - 1].key, key))
            return &m->series[v - 1];
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        m->series = sl_reallocarray(m->series, m->cap, sizeof *m->series);
    }
    struct sl_split_series *s = &m->series[m->n];
    memset(s, 0, sizeof *s);
    sl_labels_copy(&m->arena, ls, &s->ls);
    s->key = sl_arena_bytes(&m->arena, key);
    m->map[j & mask] = (uint32_t)++m->n;
    return s;
}

void sl_split_merge_add(struct sl_split_merge *m, const struct sl_labels *ls, const int64_t *ts_ms,
                        const double *vals, size_t npoints)
{
    struct sl_split_series *s = merge_series(m, ls);
    if (s->n + npoints > s->cap) {
        size_t ncap = s->cap ? 2 * s->cap : 16;
        while (ncap < s->n + npoints)
            ncap *= 2;
        s->ts = sl_reallocarray(s->ts, ncap, sizeof *s->ts);
        s->v = sl_reallocarray(s->v, ncap, sizeof *s->v);
        s->cap = ncap;
    }
    if (npoints) {
        memcpy(s->ts + s->n, ts_ms, npoints * sizeof *ts_ms);
        memcpy(s->v + s->n, vals, npoints * sizeof *vals);
    }
    s->n += npoints;
}

size_t sl_split_merge_nseries(const struct sl_split_merge *m)
{
    return m->n;
}

/* The engine's order of a matrix: label by label (name, then value), then
 * the shorter set first. */
static int series_cmp(const void *a, const void *b)
{
    const struct sl_split_series *x = a, *y = b;
    size_t n = x->ls.n < y->ls.n ? x->ls.n : y->ls.n;
    for (size_t i = 0; i < n; i++) {
        int c = sl_bytes_cmp(x->ls.items[i].name, y->ls.items[i].name);
        if (c)
            return c;
        if ((c = sl_bytes_cmp(x->ls.items[i].value, y->ls.items[i].value)))
            return c;
    }
    return x->ls.n < y->ls.n ? -1 : x->ls.n > y->ls.n;
}

void sl_split_merge_write(struct sl_split_merge *m, struct sl_jsonw *w)
{
    if (m->n > 1) {
        qsort(m->series, m->n, sizeof *m->series, series_cmp);
        memset(m->map, 0, m->mapcap * sizeof *m->map);
        for (size_t i = 0; i < m->n; i++)
            map_put(m->map, m->mapcap, m->series[i].key, (uint32_t)i + 1);
    }
    sl_jsonw_key(w, "resultType");
    sl_jsonw_str(w, "matrix");
    sl_jsonw_key(w, "result");
    sl_jsonw_arr_open(w);
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_split_series *s = &m->series[i];
        sl_jsonw_obj_open(w);
        sl_jsonw_key(w, "metric");
        sl_logql_write_labels(w, &s->ls);
        sl_jsonw_key(w, "values");
        sl_jsonw_arr_open(w);
        for (size_t k = 0; k < s->n; k++)
            sl_logql_write_point(w, s->ts[k], s->v[k]);
        sl_jsonw_arr_close(w);
        sl_jsonw_obj_close(w);
    }
    sl_jsonw_arr_close(w);
}
