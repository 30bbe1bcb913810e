/* Loki JSON push bodies: the streaming decoder (aggregator/api/push_json.c,
 * yajl) against the reference it replaced (below: the jansson tree decoder,
 * kept here verbatim), on the same input. They must agree: both reject, or
 * both accept with the same streams, labels, entries and metadata. Accepted
 * batches are then validated as the push path does. */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/api/push.h"
#include "aggregator/distributor/distributor.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"

/* ---- reference: the jansson-based decoder ---- */

static int json_fail(struct sl_buf *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int json_fail(struct sl_buf *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        sl_buf_vappendf(err, fmt, ap);
        va_end(ap);
    }
    return SL_EINVAL;
}

/* Loki parses the timestamp with strconv.ParseInt: decimal, optional sign. */
static int parse_ns(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n || n - i > 19)
        return SL_EINVAL;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SL_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return SL_EINVAL;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static struct sl_bytes json_bytes(struct sl_arena *a, json_t *s)
{
    return sl_arena_bytes(a, sl_bytes(json_string_value(s), json_string_length(s)));
}

/* Copies a JSON object of strings into labels; returns 0 or -1. */
static int json_labels(struct sl_arena *a, json_t *obj, struct sl_label **items, size_t *n)
{
    size_t cnt = json_object_size(obj), k = 0;
    *items = sl_arena_alloc(a, (cnt ? cnt : 1) * sizeof(**items));
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v))
            return -1;
        (*items)[k].name = sl_arena_bytes(a, sl_bytes_str(key));
        (*items)[k].value = json_bytes(a, v);
        k++;
    }
    *n = k;
    return 0;
}

static int json_entry(struct sl_arena *a, json_t *v, struct sl_batch_entry *e, size_t i, size_t j,
                      struct sl_buf *err)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n < 2 || n > 3)
        return json_fail(err, "streams[%zu].values[%zu]: expected [\"<ns>\", \"<line>\"]", i, j);
    json_t *ts = json_array_get(v, 0), *line = json_array_get(v, 1);
    if (!json_is_string(ts) ||
        parse_ns(json_string_value(ts), json_string_length(ts), &e->ts_ns) != 0)
        return json_fail(err,
                         "streams[%zu].values[%zu]: timestamp must be a string of "
                         "nanoseconds",
                         i, j);
    if (!json_is_string(line))
        return json_fail(err, "streams[%zu].values[%zu]: line must be a string", i, j);
    e->line = json_bytes(a, line);
    e->meta = NULL;
    e->nmeta = 0;
    if (n == 3) {
        json_t *m = json_array_get(v, 2);
        if (!json_is_object(m) || json_labels(a, m, &e->meta, &e->nmeta) != 0)
            return json_fail(err,
                             "streams[%zu].values[%zu]: metadata must be an object of "
                             "strings",
                             i, j);
    }
    return 0;
}

static int json_stream(struct sl_arena *a, json_t *js, struct sl_batch_stream *s, size_t i,
                       struct sl_batch *out, struct sl_buf *err)
{
    if (!json_is_object(js))
        return json_fail(err, "streams[%zu]: expected an object", i);
    json_t *labels = json_object_get(js, "stream"), *values = json_object_get(js, "values");
    if (!json_is_object(labels) || json_labels(a, labels, &s->labels.items, &s->labels.n) != 0)
        return json_fail(err, "streams[%zu].stream: expected an object of strings", i);
    if (values && !json_is_array(values))
        return json_fail(err, "streams[%zu].values: expected an array", i);
    s->nentries = json_array_size(values);
    s->entries = sl_arena_alloc(a, (s->nentries ? s->nentries : 1) * sizeof(*s->entries));
    for (size_t j = 0; j < s->nentries; j++) {
        int rc = json_entry(a, json_array_get(values, j), &s->entries[j], i, j, err);
        if (rc)
            return rc;
        out->line_bytes += s->entries[j].line.len;
    }
    out->nentries += s->nentries;
    return 0;
}

static int ref_json_decode(struct sl_arena *arena, const void *body, size_t n, struct sl_batch *out,
                           struct sl_buf *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(body, n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (err)
            sl_buf_appendf(err, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return SL_EINVAL;
    }
    int rc = 0;
    json_t *streams = json_is_object(root) ? json_object_get(root, "streams") : NULL;
    if (!json_is_array(streams)) {
        rc = json_fail(err, "expected {\"streams\": [...]}");
        goto out;
    }
    out->nstreams = json_array_size(streams);
    out->streams =
        sl_arena_calloc(arena, (out->nstreams ? out->nstreams : 1) * sizeof(*out->streams));
    for (size_t i = 0; i < out->nstreams && rc == 0; i++)
        rc = json_stream(arena, json_array_get(streams, i), &out->streams[i], i, out, err);
out:
    json_decref(root);
    return rc;
}

/* ---- comparison ---- */

static void mismatch(const char *what, const struct sl_buf *e1, const struct sl_buf *e2)
{
    fprintf(stderr, "push JSON decoders disagree: %s\n  yajl: %.*s\n  jansson: %.*s\n", what,
            (int)e1->len, e1->data ? e1->data : "", (int)e2->len, e2->data ? e2->data : "");
    abort();
}

static bool labels_same(const struct sl_label *a, size_t na, const struct sl_label *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!sl_bytes_eq(a[i].name, b[i].name) || !sl_bytes_eq(a[i].value, b[i].value))
            return false;
    return true;
}

static bool batches_same(const struct sl_batch *a, const struct sl_batch *b)
{
    if (a->nstreams != b->nstreams || a->nentries != b->nentries || a->line_bytes != b->line_bytes)
        return false;
    for (size_t i = 0; i < a->nstreams; i++) {
        const struct sl_batch_stream *x = &a->streams[i], *y = &b->streams[i];
        if (!labels_same(x->labels.items, x->labels.n, y->labels.items, y->labels.n) ||
            x->nentries != y->nentries)
            return false;
        for (size_t k = 0; k < x->nentries; k++) {
            const struct sl_batch_entry *e = &x->entries[k], *f = &y->entries[k];
            if (e->ts_ns != f->ts_ns || !sl_bytes_eq(e->line, f->line) ||
                !labels_same(e->meta, e->nmeta, f->meta, f->nmeta))
                return false;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_arena a, ra;
    sl_arena_init(&a, 0);
    sl_arena_init(&ra, 0);
    struct sl_batch b, rb;
    struct sl_buf err = SL_BUF_INIT, rerr = SL_BUF_INIT;
    int rc = sl_push_json_decode(&a, data, size, &b, &err);
    int rrc = ref_json_decode(&ra, data, size, &rb, &rerr);
    /* A raw NUL byte is never valid JSON (in a string it is a control
     * character, elsewhere not a token), but jansson drops one that follows a
     * number or a literal (its stream loses an un-read NUL): there the
     * reference is wrong, and the new decoder must reject. */
    if (memchr(data, 0, size) && rrc == 0) {
        if (rc == 0)
            mismatch("a raw NUL byte accepted", &err, &rerr);
        rrc = rc;
    }
    if ((rc == 0) != (rrc == 0))
        mismatch(rc == 0 ? "yajl accepts, jansson rejects" : "yajl rejects, jansson accepts", &err,
                 &rerr);
    if (rc != 0 && err.len == 0)
        mismatch("rejected without a reason", &err, &rerr);
    if (rc == 0 && !batches_same(&b, &rb))
        mismatch("different batches", &err, &rerr);
    if (rc == 0) {
        struct sl_distributor_limits lim = {
            .labels = {15, 1024, 2048},
            .max_line_size = 256 << 10,
            .reject_old_samples = true,
            .reject_old_samples_max_age_ns = 168LL * 3600 * 1000000000LL,
            .creation_grace_period_ns = 600LL * 1000000000LL,
        };
        struct sl_rejects rej;
        sl_rejects_init(&rej);
        for (size_t i = 0; i < b.nstreams; i++)
            sl_distributor_validate_stream(&lim, &b.streams[i], 1700000000000000000LL, &rej);
        struct sl_buf msg = SL_BUF_INIT;
        sl_rejects_format(&rej, &msg);
        sl_buf_release(&msg);
        sl_rejects_release(&rej);
    }
    sl_buf_release(&err);
    sl_buf_release(&rerr);
    sl_arena_release(&a);
    sl_arena_release(&ra);
    return 0;
}
