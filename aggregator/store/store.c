/* Object-store dispatch: checks keys, picks the backend, counts every call.
 * The backends (store_backends.h) do the work. */
#include <string.h>

#include "aggregator/store/store.h"
#include "aggregator/store/store_backends.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"

enum op { OP_PUT, OP_GET, OP_GET_RANGE, OP_LIST, OP_DELETE, OP_N };
enum result { RES_OK, RES_NOT_FOUND, RES_ERROR, RES_N };

static const char *const op_names[OP_N] = {"put", "get", "get_range", "list", "delete"};
static const char *const res_names[RES_N] = {"ok", "not_found", "error"};

struct sl_store {
    const struct sl_store_vtbl *vt;
    void *impl;
    struct sl_metric *m_req[OP_N][RES_N];
    struct sl_metric *m_dur[OP_N];
    struct sl_metric *m_bytes_out, *m_bytes_in;
};

static void register_metrics(struct sl_store *s, struct sl_metrics *m)
{
    struct sl_metric_family *req =
        sl_metrics_counter(m, "sluice_aggregator_store_requests_total",
                           "Object-store calls by backend, operation and result "
                           "(retries inside a call are not counted here).",
                           "backend,op,result");
    struct sl_metric_family *dur = sl_metrics_histogram(
        m, "sluice_aggregator_store_request_duration_seconds",
        "Duration of object-store calls, retries included.", "backend,op", NULL, 0);
    for (int o = 0; o < OP_N; o++) {
        for (int r = 0; r < RES_N; r++)
            s->m_req[o][r] = sl_metric_with(req, s->vt->name, op_names[o], res_names[r]);
        s->m_dur[o] = sl_metric_with(dur, s->vt->name, op_names[o]);
    }
    s->m_bytes_out =
        sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_store_put_bytes_total",
                                          "Bytes written to the object store.", "backend"),
                       s->vt->name);
    s->m_bytes_in =
        sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_store_get_bytes_total",
                                          "Bytes read from the object store.", "backend"),
                       s->vt->name);
}

static void count(struct sl_store *s, enum op o, int rc, int64_t t0)
{
    if (!s->m_dur[o])
        return;
    enum result r = rc == 0 ? RES_OK : rc == SL_ENOENT ? RES_NOT_FOUND : RES_ERROR;
    sl_counter_inc(s->m_req[o][r]);
    sl_histogram_observe(s->m_dur[o], (double)(sl_mono_ns() - t0) / 1e9);
}

/* Relative, '/'-separated, no empty, "." or ".." segment: a key can never
 * name a path outside the store's directory or an odd S3 key. */
static bool key_valid(const char *key, bool prefix)
{
    size_t n = strlen(key);
    if (n == 0)
        return prefix;
    if (key[0] == '/' || n > 1024)
        return false;
    const char *p = key, *end = key + n;
    while (p < end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        size_t len = q ? (size_t)(q - p) : (size_t)(end - p);
        if (len == 0 && !(prefix && !q))
            return false;
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
                return false;
        if (!q)
            break;
        p = q + 1;
        if (p == end && !prefix)
            return false; /* trailing '/' names no object */
    }
    return true;
}

static int bad_key(const char *key, struct sl_buf *err)
{
    if (err)
        sl_buf_appendf(err, "invalid object key \"%.200s\"", key);
    return SL_EINVAL;
}

int sl_store_open(const struct sl_store_opts *o, struct sl_metrics *metrics, struct sl_store **out,
                  struct sl_buf *err)
{
    const struct sl_store_vtbl *vt = NULL;
    void *impl = NULL;
    int rc;
    const char *b = o->backend && *o->backend ? o->backend : "filesystem";
    if (strcmp(b, "filesystem") == 0) {
        rc = sl__store_fs_open(o, metrics, &vt, &impl, err);
    } else if (strcmp(b, "s3") == 0) {
        rc = sl__store_s3_open(o, metrics, &vt, &impl, err);
    } else {
        if (err)
            sl_buf_appendf(err, "storage.backend: unknown backend \"%s\" (filesystem or s3)", b);
        return SL_EINVAL;
    }
    if (rc != 0)
        return rc;
    struct sl_store *s = SL_NEW(struct sl_store);
    s->vt = vt;
    s->impl = impl;
    if (metrics)
        register_metrics(s, metrics);
    *out = s;
    return 0;
}

void sl_store_close(struct sl_store *s)
{
    if (!s)
        return;
    s->vt->close(s->impl);
    sl_free(s);
}

const char *sl_store_backend(const struct sl_store *s)
{
    return s->vt->name;
}

int sl_store_put(struct sl_store *s, const char *key, const void *data, size_t len,
                 struct sl_buf *err)
{
    if (!key_valid(key, false))
        return bad_key(key, err);
    int64_t t0 = sl_mono_ns();
    int rc = s->vt->put(s->impl, key, data, len, err);
    count(s, OP_PUT, rc, t0);
    if (rc == 0 && s->m_bytes_out)
        sl_counter_add(s->m_bytes_out, (double)len);
    return rc;
}

int sl_store_get(struct sl_store *s, const char *key, struct sl_buf *out, struct sl_buf *err)
{
    if (!key_valid(key, false))
        return bad_key(key, err);
    int64_t t0 = sl_mono_ns();
    size_t before = out->len;
    int rc = s->vt->get(s->impl, key, out, err);
    count(s, OP_GET, rc, t0);
    if (rc == 0 && s->m_bytes_in)
        sl_counter_add(s->m_bytes_in, (double)(out->len - before));
    return rc;
}

int sl_store_get_range(struct sl_store *s, const char *key, uint64_t off, uint64_t len,
                       struct sl_buf *out, struct sl_buf *err)
{
    if (!key_valid(key, false))
        return bad_key(key, err);
    int64_t t0 = sl_mono_ns();
    size_t before = out->len;
    int rc = s->vt->get_range(s->impl, key, off, len, out, err);
    count(s, OP_GET_RANGE, rc, t0);
    if (rc == 0 && s->m_bytes_in)
        sl_counter_add(s->m_bytes_in, (double)(out->len - before));
    return rc;
}

int sl_store_list_objects(struct sl_store *s, const char *prefix, sl_store_list_objects_fn fn,
                          void *ud, struct sl_buf *err)
{
    if (!key_valid(prefix, true))
        return bad_key(prefix, err);
    int64_t t0 = sl_mono_ns();
    int rc = s->vt->list(s->impl, prefix, fn, ud, err);
    count(s, OP_LIST, rc, t0);
    return rc;
}

struct list_adapter {
    sl_store_list_fn fn;
    void *ud;
};

static int list_adapt(const struct sl_store_object *o, void *ud)
{
    struct list_adapter *a = ud;
    return a->fn(o->key, o->size, a->ud);
}

int sl_store_list(struct sl_store *s, const char *prefix, sl_store_list_fn fn, void *ud,
                  struct sl_buf *err)
{
    struct list_adapter a = {fn, ud};
    return sl_store_list_objects(s, prefix, list_adapt, &a, err);
}

int sl_store_delete(struct sl_store *s, const char *key, struct sl_buf *err)
{
    if (!key_valid(key, false))
        return bad_key(key, err);
    int64_t t0 = sl_mono_ns();
    int rc = s->vt->del(s->impl, key, err);
    count(s, OP_DELETE, rc, t0);
    return rc;
}
