/* Store + memory selection. A visit first collects the matching series of
 * the index files of the range (chunk references only), then walks the
 * ingester's streams, pairing each with its stored series, and finally
 * reports the series found only in the store. A scan of a series that has
 * stored chunks gathers its entries from the chunks and from memory, sorts
 * them by (timestamp, line) and drops repeats. */
#include "aggregator/querier/select.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/chunk/chunk.h"
#include "aggregator/store/store.h"
#include "common/arena.h"
#include "common/err.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"

struct cached {
    char *key;
    char *data;
    struct sl_index_reader *r;
};

struct sl_select {
    struct sl_store *store;
    pthread_mutex_t mu;
    struct cached *idx;
    size_t nidx, capidx;
    struct sl_log_limit lim;
    struct sl_metric *m_chunks, *m_chunk_bytes, *m_missing, *m_index_files;
};

struct sl_select *sl_select_new(struct sl_store *store, struct sl_metrics *m)
{
    struct sl_select *sel = SL_NEW(struct sl_select);
    sel->store = store;
    pthread_mutex_init(&sel->mu, NULL);
    if (m) {
        sel->m_chunks =
            sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_query_chunks_fetched_total",
                                              "Chunks read from the store.", NULL));
        sel->m_chunk_bytes = sl_metric_with(
            sl_metrics_counter(m, "sluice_aggregator_query_chunk_bytes_fetched_total",
                               "Bytes of chunks read from the store.", NULL));
        sel->m_missing = sl_metric_with(
            sl_metrics_counter(m, "sluice_aggregator_query_chunks_missing_total",
                               "Indexed chunks not found in the store (skipped).", NULL));
        sel->m_index_files = sl_metric_with(
            sl_metrics_counter(m, "sluice_aggregator_query_index_files_loaded_total",
                               "Index files downloaded into the querier's cache.", NULL));
    }
    return sel;
}

void sl_select_free(struct sl_select *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->nidx; i++) {
        sl_index_reader_close(sel->idx[i].r);
        sl_free(sel->idx[i].data);
        sl_free(sel->idx[i].key);
    }
    sl_free(sel->idx);
    pthread_mutex_destroy(&sel->mu);
    sl_free(sel);
}

/* The reader of an index file, downloaded on first use. NULL: skipped
 * (damaged files are logged and left out rather than failing every query). */
static int index_get(struct sl_select *sel, const char *key, struct sl_index_reader **out)
{
    *out = NULL;
    pthread_mutex_lock(&sel->mu);
    for (size_t i = 0; i < sel->nidx; i++)
        if (strcmp(sel->idx[i].key, key) == 0) {
            *out = sel->idx[i].r;
            pthread_mutex_unlock(&sel->mu);
            return 0;
        }
    pthread_mutex_unlock(&sel->mu);
    struct sl_buf b = SL_BUF_INIT, err = SL_BUF_INIT;
    int rc = sl_store_get(sel->store, key, &b, &err);
    struct sl_index_reader *r = NULL;
    if (rc == 0 && (rc = sl_index_reader_open_mem(b.data, b.len, &r)) != 0) {
        sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: damaged index file skipped",
                       "key=%s error=\"%s\"", key, sl_strerror(rc));
        sl_buf_release(&b);
        sl_buf_release(&err);
        return 0;
    }
    if (rc != 0) {
        sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: cannot read index file",
                       "key=%s error=\"%s\"", key, err.data ? err.data : sl_strerror(rc));
        sl_buf_release(&b);
        sl_buf_release(&err);
        return rc == SL_ENOENT ? 0 : rc; /* removed by the compactor meanwhile */
    }
    sl_buf_release(&err);
    if (sel->m_index_files)
        sl_counter_inc(sel->m_index_files);
    pthread_mutex_lock(&sel->mu);
    if (sel->nidx == sel->capidx) {
        sel->capidx = sel->capidx ? sel->capidx * 2 : 16;
        sel->idx = sl_reallocarray(sel->idx, sel->capidx, sizeof(*sel->idx));
    }
    sel->idx[sel->nidx++] = (struct cached){sl_strdup(key), sl_buf_detach(&b, NULL), r};
    pthread_mutex_unlock(&sel->mu);
    *out = r;
    return 0;
}

/* ---- visit ---- */

struct sseries {
    uint64_t fp;
    struct sl_labels labels;
    struct sl_bytes canon;
    struct sl_index_chunk_ref *refs;
    size_t nrefs;
    bool in_memory;
};

struct visit {
    struct sl_select *sel;
    struct sl_arena arena;
    struct sseries *ss;
    size_t nss, capss;
    const struct sl_index_matcher *eq;
    size_t neq;
    sl_index_label_fn match;
    void *match_ud;
    int64_t from, through;
    sl_select_fn fn;
    void *ud;
};

struct sl_select_reader {
    struct sl_select *sel;
    struct sl_stream_reader *mem; /* NULL: store only */
    struct sseries *ss;           /* NULL: memory only */
};

static int on_index_series(const struct sl_labels *ls, uint64_t fp,
                           const struct sl_index_chunk_ref *refs, size_t n, void *ud)
{
    struct visit *v = ud;
    if (v->nss == v->capss) {
        v->capss = v->capss ? v->capss * 2 : 64;
        v->ss = sl_reallocarray(v->ss, v->capss, sizeof(*v->ss));
    }
    struct sseries *s = &v->ss[v->nss++];
    memset(s, 0, sizeof *s);
    s->fp = fp;
    sl_labels_copy(&v->arena, ls, &s->labels);
    struct sl_buf c = SL_BUF_INIT;
    sl_labels_format(ls, &c);
    s->canon = sl_arena_bytes(&v->arena, sl_buf_bytes(&c));
    sl_buf_release(&c);
    s->refs = sl_arena_alloc(&v->arena, n * sizeof(*refs));
    for (size_t i = 0; i < n; i++) {
        s->refs[i] = refs[i];
        s->refs[i].key = sl_arena_bytes(&v->arena, refs[i].key);
    }
    s->nrefs = n;
    return 0;
}

struct keylist {
    char **keys;
    size_t n, cap;
};

static int on_key(const char *key, uint64_t size, void *ud)
{
    (void)size;
    struct keylist *k = ud;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->keys = sl_reallocarray(k->keys, k->cap, sizeof(*k->keys));
    }
    k->keys[k->n++] = sl_strdup(key);
    return 0;
}

static int series_cmp(const void *a, const void *b)
{
    const struct sseries *x = a, *y = b;
    if (x->fp != y->fp)
        return x->fp < y->fp ? -1 : 1;
    return sl_bytes_cmp(x->canon, y->canon);
}

static int ref_cmp(const void *a, const void *b)
{
    return sl_bytes_cmp(((const struct sl_index_chunk_ref *)a)->key,
                        ((const struct sl_index_chunk_ref *)b)->key);
}

/* Merges the entries of one series found in several index files. */
static void merge_series(struct visit *v)
{
    if (v->nss == 0)
        return;
    qsort(v->ss, v->nss, sizeof(*v->ss), series_cmp);
    size_t out = 0;
    for (size_t i = 0; i < v->nss;) {
        size_t j = i + 1, n = v->ss[i].nrefs;
        while (j < v->nss && series_cmp(&v->ss[i], &v->ss[j]) == 0)
            n += v->ss[j++].nrefs;
        struct sseries s = v->ss[i];
        if (j > i + 1) {
            s.refs = sl_arena_alloc(&v->arena, n * sizeof(*s.refs));
            s.nrefs = 0;
            for (size_t k = i; k < j; k++)
                for (size_t r = 0; r < v->ss[k].nrefs; r++)
                    s.refs[s.nrefs++] = v->ss[k].refs[r];
        }
        qsort(s.refs, s.nrefs, sizeof(*s.refs), ref_cmp);
        size_t u = 0;
        for (size_t r = 0; r < s.nrefs; r++)
            if (u == 0 || !sl_bytes_eq(s.refs[r].key, s.refs[u - 1].key))
                s.refs[u++] = s.refs[r];
        s.nrefs = u;
        v->ss[out++] = s;
        i = j;
    }
    v->nss = out;
}

static int collect_store(struct visit *v, struct sl_bytes tenant)
{
    struct keylist kl = {0};
    int rc = 0;
    int64_t last = v->through > v->from ? v->through - 1 : v->from;
    for (int64_t d = sl_index_day(v->from); d <= sl_index_day(last) && rc == 0; d++) {
        struct sl_buf prefix = SL_BUF_INIT, err = SL_BUF_INIT;
        sl_index_prefix(&prefix, d, tenant);
        rc = sl_store_list(v->sel->store, prefix.data, on_key, &kl, &err);
        if (rc)
            sl_log_limited(&v->sel->lim, SL_LOG_ERROR, "query: cannot list index files",
                           "prefix=%s error=\"%s\"", prefix.data,
                           err.data ? err.data : sl_strerror(rc));
        sl_buf_release(&prefix);
        sl_buf_release(&err);
    }
    for (size_t i = 0; i < kl.n && rc == 0; i++) {
        struct sl_index_reader *r;
        rc = index_get(v->sel, kl.keys[i], &r);
        if (rc == 0 && r)
            rc = sl_index_reader_select(r, v->eq, v->neq, v->match, v->match_ud, v->from,
                                        v->through, on_index_series, v);
    }
    for (size_t i = 0; i < kl.n; i++)
        sl_free(kl.keys[i]);
    sl_free(kl.keys);
    if (rc == 0)
        merge_series(v);
    return rc;
}

static void info_of_store(const struct sseries *s, struct sl_stream_info *info)
{
    info->labels = &s->labels;
    info->fingerprint = s->fp;
    info->entries = 0;
    for (size_t i = 0; i < s->nrefs; i++) {
        if (i == 0 || s->refs[i].from < info->min_ts)
            info->min_ts = s->refs[i].from;
        if (i == 0 || s->refs[i].through > info->max_ts)
            info->max_ts = s->refs[i].through;
        info->entries += s->refs[i].entries ? s->refs[i].entries : 1;
    }
}

static bool has_eq(const struct sl_labels *ls, const struct sl_index_matcher *eq, size_t neq)
{
    for (size_t i = 0; i < neq; i++) {
        bool found = false;
        for (size_t k = 0; k < ls->n && !found; k++)
            found = sl_bytes_eq(ls->items[k].name, eq[i].name) &&
                    sl_bytes_eq(ls->items[k].value, eq[i].value);
        if (!found)
            return false;
    }
    return true;
}

static int on_mem_stream(const struct sl_stream_info *s, struct sl_stream_reader *rd, void *ud)
{
    struct visit *v = ud;
    if (s->entries == 0 || !has_eq(s->labels, v->eq, v->neq) ||
        (v->match && !v->match(s->labels, v->match_ud)))
        return 0;
    struct sseries *found = NULL;
    if (v->nss) {
        struct sseries key = {.fp = s->fingerprint};
        struct sl_buf c = SL_BUF_INIT;
        sl_labels_format(s->labels, &c);
        key.canon = sl_buf_bytes(&c);
        found = bsearch(&key, v->ss, v->nss, sizeof(*v->ss), series_cmp);
        sl_buf_release(&c);
    }
    bool in_range = s->max_ts >= v->from && s->min_ts < v->through;
    if (!found && !in_range)
        return 0;
    struct sl_stream_info info = *s;
    if (found) {
        found->in_memory = true;
        struct sl_stream_info st;
        info_of_store(found, &st);
        if (!in_range || st.min_ts < info.min_ts)
            info.min_ts = st.min_ts;
        if (!in_range || st.max_ts > info.max_ts)
            info.max_ts = st.max_ts;
        info.entries += st.entries;
    }
    struct sl_select_reader r = {v->sel, rd, found};
    return v->fn(&info, &r, v->ud);
}

int sl_select_visit(struct sl_select *sel, struct sl_ingester *ing, struct sl_bytes tenant,
                    const struct sl_index_matcher *eq, size_t neq, sl_index_label_fn match,
                    void *match_ud, int64_t from, int64_t through, sl_select_fn fn, void *ud)
{
    struct visit v = {.sel = sel,
                      .eq = eq,
                      .neq = neq,
                      .match = match,
                      .match_ud = match_ud,
                      .from = from,
                      .through = through,
                      .fn = fn,
                      .ud = ud};
    sl_arena_init(&v.arena, 0);
    int rc = 0;
    if (sel && sel->store && from < through)
        rc = collect_store(&v, tenant);
    if (rc == 0)
        rc = sl_ingester_visit(ing, tenant, on_mem_stream, &v);
    for (size_t i = 0; i < v.nss && rc == 0; i++) {
        if (v.ss[i].in_memory)
            continue;
        struct sl_stream_info info;
        info_of_store(&v.ss[i], &info);
        struct sl_select_reader r = {sel, NULL, &v.ss[i]};
        rc = fn(&info, &r, ud);
    }
    sl_free(v.ss);
    sl_arena_release(&v.arena);
    return rc;
}

/* ---- scan ---- */

struct ent {
    int64_t ts;
    const char *p;
    size_t len;
};

struct gather {
    struct sl_arena arena; /* memory lines */
    struct sl_buf *objs;   /* fetched chunks */
    size_t nobjs;
    struct ent *e;
    size_t n, cap;
};

static void add_ent(struct gather *g, int64_t ts, const char *p, size_t len)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        g->e = sl_reallocarray(g->e, g->cap, sizeof(*g->e));
    }
    g->e[g->n++] = (struct ent){ts, p, len};
}

/* Lines point into a block's decompressed payload, which the chunk reader
 * reuses: keep a copy. */
static int on_chunk_entry(const struct sl_chunk_entry *e, void *ud)
{
    struct gather *g = ud;
    add_ent(g, e->ts, e->line.len ? sl_arena_memdup(&g->arena, e->line.ptr, e->line.len) : "",
            e->line.len);
    return 0;
}

static int on_mem_entry(int64_t ts, struct sl_bytes line, void *ud)
{
    struct gather *g = ud;
    add_ent(g, ts, line.len ? sl_arena_memdup(&g->arena, line.ptr, line.len) : "", line.len);
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return sl_bytes_cmp(sl_bytes(x->p, x->len), sl_bytes(y->p, y->len));
}

static int fetch_chunk(struct sl_select *sel, const struct sl_index_chunk_ref *ref, int64_t from,
                       int64_t through, struct gather *g)
{
    char *key = sl_strndup(ref->key.ptr, ref->key.len);
    struct sl_buf *obj = &g->objs[g->nobjs++];
    sl_buf_init(obj);
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_store_get(sel->store, key, obj, &err);
    if (rc == SL_ENOENT) {
        /* Deleted by retention between the index read and now. */
        if (sel->m_missing)
            sl_counter_inc(sel->m_missing);
        sl_log_limited(&sel->lim, SL_LOG_WARN, "query: indexed chunk missing", "key=%s", key);
        rc = 0;
    } else if (rc != 0) {
        sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: cannot read chunk", "key=%s error=\"%s\"",
                       key, err.data ? err.data : sl_strerror(rc));
    } else {
        if (sel->m_chunks) {
            sl_counter_inc(sel->m_chunks);
            sl_counter_add(sel->m_chunk_bytes, (double)obj->len);
        }
        struct sl_chunk_reader r;
        rc = sl_chunk_reader_open(&r, obj->data, obj->len);
        if (rc == 0)
            rc = sl_chunk_reader_scan(&r, from, through, on_chunk_entry, g);
        if (rc != 0)
            sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: damaged chunk", "key=%s error=\"%s\"",
                           key, sl_strerror(rc));
    }
    sl_buf_release(&err);
    sl_free(key);
    return rc;
}

int sl_select_reader_scan(struct sl_select_reader *r, int64_t from, int64_t through, bool backward,
                          sl_entry_fn fn, void *ud)
{
    if (!r->ss)
        return sl_stream_reader_scan(r->mem, from, through, backward, fn, ud);
    if (from >= through)
        return 0;
    struct gather g = {0};
    sl_arena_init(&g.arena, 0);
    g.objs = sl_calloc(r->ss->nrefs ? r->ss->nrefs : 1, sizeof(*g.objs));
    int rc = 0;
    for (size_t i = 0; i < r->ss->nrefs && rc == 0; i++) {
        const struct sl_index_chunk_ref *ref = &r->ss->refs[i];
        if (ref->through >= from && ref->from < through)
            rc = fetch_chunk(r->sel, ref, from, through, &g);
    }
    if (rc == 0 && r->mem)
        rc = sl_stream_reader_scan(r->mem, from, through, false, on_mem_entry, &g);
    if (rc == 0 && g.n) {
        qsort(g.e, g.n, sizeof(*g.e), ent_cmp);
        size_t u = 0;
        for (size_t i = 0; i < g.n; i++)
            if (u == 0 || ent_cmp(&g.e[i], &g.e[u - 1]) != 0)
                g.e[u++] = g.e[i];
        for (size_t i = 0; i < u && rc == 0; i++) {
            const struct ent *e = &g.e[backward ? u - 1 - i : i];
            rc = fn(e->ts, sl_bytes(e->p, e->len), ud);
        }
    }
    for (size_t i = 0; i < g.nobjs; i++)
        sl_buf_release(&g.objs[i]);
    sl_free(g.objs);
    sl_free(g.e);
    sl_arena_release(&g.arena);
    return rc;
}
