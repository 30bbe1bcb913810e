/* Push endpoints: see push.h. Everything runs on the loop thread; the reply
 * waits for the WAL writer thread's fsync (aggregator/wal). */
#include "aggregator/api/push.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/distributor/ratelimit.h"
#include "aggregator/tenant/tenant.h"
#include "aggregator/wal/wal.h"
#include "common/compress.h"
#include "common/err.h"
#include "common/format.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/lokipb.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/snappy.h"
#include "common/timeutil.h"

struct sl_push_api {
    struct sl_ingester *ing;
    struct sl_wal *wal;
    struct sl_push_opts o;
    struct sl_ratelimit *rl;
    struct sl_metric_family *f_received, *f_bytes, *f_rejected, *f_dups;
    struct sl_metric *m_wal_unavailable;
    struct sl_log_limit log_reject, log_bad;
};

/* One push in flight, allocated from the request arena. */
struct push_ctx {
    struct sl_push_api *api;
    struct sl_http_request *req;
    struct sl_bytes tenant;
    char *tenant_z;     /* for metric labels */
    struct sl_buf body; /* decompressed body, when it was compressed */
    struct sl_bytes in; /* the decoded body: body, or the request's own */
    struct sl_rejects rej;
    size_t accepted;
};

/* ---- replies ---- */

static void respond_error(struct sl_http_request *req, int status, const char *msg, size_t rejected)
{
    struct sl_buf out = SL_BUF_INIT;
    struct sl_jsonw w;
    sl_jsonw_init(&w, &out);
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "error");
    sl_jsonw_str(&w, msg);
    sl_jsonw_key(&w, "rejected");
    sl_jsonw_i64(&w, (int64_t)rejected);
    sl_jsonw_obj_close(&w);
    sl_http_respond_buf(req, status, "application/json", &out);
    sl_buf_release(&out);
}

static void ctx_release(struct push_ctx *c)
{
    sl_rejects_release(&c->rej);
    sl_buf_release(&c->body);
}

/* Answers the push. The context lives in the request arena, which the
 * response frees: everything is released before responding. */
static void ctx_finish(struct push_ctx *c, int wal_status)
{
    struct sl_http_request *req = c->req;
    struct sl_push_api *api = c->api;
    size_t rejected = sl_rejects_total(&c->rej);
    struct sl_buf msg = SL_BUF_INIT;
    int status = 204;
    if (wal_status != 0) {
        sl_log_limited(&api->log_bad, SL_LOG_ERROR, "push: not durable, answering 503",
                       "tenant=%s error=\"%s\"", c->tenant_z, sl_strerror(wal_status));
        sl_buf_append_str(&msg, "write-ahead log unavailable; nothing was acknowledged");
        status = 503;
    } else if (rejected) {
        sl_rejects_format(&c->rej, &msg);
        sl_log_limited(&api->log_reject, SL_LOG_WARN, "push: entries rejected",
                       "tenant=%s accepted=%zu rejected=%zu", c->tenant_z, c->accepted, rejected);
        status = 400;
    }
    ctx_release(c);
    if (status == 204)
        sl_http_respond(req, 204, NULL, NULL, 0);
    else
        respond_error(req, status, msg.data, rejected);
    sl_buf_release(&msg);
}

static void on_wal_done(void *ud, int status)
{
    ctx_finish(ud, status);
}

/* ---- processing a decoded batch ---- */

static void count_rejects(struct push_ctx *c)
{
    for (int i = 0; i < SL_REJECT__COUNT; i++) {
        if (c->rej.count[i] == 0)
            continue;
        sl_counter_add(sl_metric_with(c->api->f_rejected, c->tenant_z,
                                      sl_reject_reason_name((enum sl_reject_reason)i)),
                       (double)c->rej.count[i]);
    }
}

/* Ingests one validated stream and adds its accepted entries to enc. */
static void ingest_stream(struct push_ctx *c, struct sl_batch_stream *s, size_t *idx,
                          struct sl_batch_enc *enc, struct sl_push_result *tot)
{
    struct sl_push_result r = {0};
    sl_ingester_push(c->api->ing, c->tenant, &s->labels, s->entries, s->nentries, idx, &r);
    if (r.out_of_order || r.stream_limit) {
        struct sl_buf name = SL_BUF_INIT;
        sl_labels_format(&s->labels, &name);
        if (name.len > 200) {
            name.len = 200;
            sl_buf_append_str(&name, "...}");
        }
        sl_rejects_add(&c->rej, SL_REJECT_OUT_OF_ORDER, r.out_of_order,
                       "stream %s: entries older than the out-of-order window", name.data);
        sl_rejects_add(&c->rej, SL_REJECT_STREAM_LIMIT, r.stream_limit,
                       "stream %s: tenant has reached max_streams_per_tenant", name.data);
        sl_buf_release(&name);
    }
    if (r.accepted) {
        sl_batch_enc_stream(enc, &s->labels, r.accepted);
        for (size_t k = 0; k < r.accepted; k++) {
            const struct sl_batch_entry *e = &s->entries[idx[k]];
            sl_batch_enc_entry(enc, e->ts_ns, e->line, e->meta, e->nmeta);
        }
    }
    tot->accepted += r.accepted;
    tot->duplicates += r.duplicates;
}

/* Validates every stream in place; returns the raw line bytes that passed. */
static size_t validate_batch(struct push_ctx *c, struct sl_batch *b, size_t *kept)
{
    int64_t now = sl_now_ns();
    size_t bytes = 0;
    *kept = 0;
    for (size_t i = 0; i < b->nstreams; i++) {
        struct sl_batch_stream *s = &b->streams[i];
        if (s->nentries == 0)
            continue;
        sl_distributor_validate_stream(&c->api->o.limits, s, now, &c->rej);
        for (size_t k = 0; k < s->nentries; k++)
            bytes += s->entries[k].line.len;
        *kept += s->nentries;
    }
    return bytes;
}

/* Takes the push's bytes from the tenant's bucket; on refusal counts the
 * entries, answers 429 with Retry-After and returns non-zero. */
static int rate_limit(struct push_ctx *c, size_t entries, size_t bytes)
{
    struct sl_push_api *api = c->api;
    int64_t wait_ns;
    if (sl_ratelimit_take(api->rl, c->tenant, bytes, sl_mono_ns(), &wait_ns) == 0)
        return 0;
    sl_rejects_add(&c->rej, SL_REJECT_RATE_LIMITED, entries, NULL);
    count_rejects(c);
    long long secs = (long long)((wait_ns + SL_NS_PER_SEC - 1) / SL_NS_PER_SEC);
    char ra[32];
    snprintf(ra, sizeof(ra), "%lld", secs < 1 ? 1 : secs);
    struct sl_buf msg = SL_BUF_INIT;
    sl_buf_appendf(&msg,
                   "ingestion rate limit exceeded for tenant %s (limit: %.0f bytes/sec, burst "
                   "%.0f bytes) while attempting to ingest %zu lines totaling %zu bytes; nothing "
                   "was kept, retry after %s s or reduce log volume",
                   c->tenant_z, api->o.limits.ingestion_rate_bytes,
                   api->o.limits.ingestion_burst_bytes, entries, bytes, ra);
    sl_log_limited(&api->log_reject, SL_LOG_WARN, "push: rate limited, answering 429",
                   "tenant=%s entries=%zu bytes=%zu retry_after_s=%s", c->tenant_z, entries, bytes,
                   ra);
    size_t rejected = sl_rejects_total(&c->rej);
    struct sl_http_request *req = c->req;
    ctx_release(c);
    sl_http_req_add_header(req, "Retry-After", ra);
    respond_error(req, 429, msg.data, rejected);
    sl_buf_release(&msg);
    return -1;
}

static void process_batch(struct push_ctx *c, struct sl_batch *b)
{
    struct sl_push_api *api = c->api;
    sl_counter_add(sl_metric_with(api->f_received, c->tenant_z), (double)b->nentries);
    sl_counter_add(sl_metric_with(api->f_bytes, c->tenant_z), (double)b->line_bytes);
    size_t kept, maxn = 0;
    size_t bytes = validate_batch(c, b, &kept);
    if (kept && rate_limit(c, kept, bytes) != 0)
        return;
    for (size_t i = 0; i < b->nstreams; i++)
        if (b->streams[i].nentries > maxn)
            maxn = b->streams[i].nentries;
    size_t *idx = sl_arena_alloc(&c->req->arena, (maxn ? maxn : 1) * sizeof(size_t));
    struct sl_batch_enc enc;
    sl_batch_enc_init(&enc);
    struct sl_push_result tot = {0};
    for (size_t i = 0; i < b->nstreams; i++)
        if (b->streams[i].nentries)
            ingest_stream(c, &b->streams[i], idx, &enc, &tot);
    c->accepted = tot.accepted;
    count_rejects(c);
    if (tot.duplicates)
        sl_counter_add(sl_metric_with(api->f_dups, c->tenant_z), (double)tot.duplicates);
    if (tot.accepted == 0 || !api->wal) {
        sl_batch_enc_release(&enc);
        ctx_finish(c, 0);
        return;
    }
    struct sl_buf body = SL_BUF_INIT, rec = SL_BUF_INIT;
    int rc = sl_batch_enc_finish(&enc, &body);
    sl_batch_enc_release(&enc);
    if (rc != 0) { /* a bug: counts above must match */
        sl_error("push: batch encoding failed", "error=\"%s\"", sl_strerror(rc));
        sl_buf_release(&body);
        ctx_finish(c, SL_EIO);
        return;
    }
    sl_push_record_encode(c->tenant, sl_buf_bytes(&body), &rec);
    sl_buf_release(&body);
    /* The decompressed body is no longer needed: entries are in the ingester. */
    sl_buf_release(&c->body);
    sl_wal_append(api->wal, rec.data, rec.len, on_wal_done, c); /* may call back at once */
    sl_buf_release(&rec);
}

/* ---- request parsing ---- */

/* Media type of a Content-Type header, without parameters, matched
 * case-insensitively. */
static bool media_type_is(const struct sl_bytes *h, const char *type)
{
    if (!h)
        return false;
    size_t n = h->len;
    const char *semi = memchr(h->ptr, ';', n);
    if (semi)
        n = (size_t)(semi - h->ptr);
    while (n && (h->ptr[n - 1] == ' ' || h->ptr[n - 1] == '\t'))
        n--;
    return n == strlen(type) && strncasecmp(h->ptr, type, n) == 0;
}

static struct push_ctx *ctx_new(struct sl_push_api *api, struct sl_http_request *req)
{
    struct sl_bytes tenant;
    if (sl_tenant_of_request(req, api->o.auth_enabled, &tenant) != 0)
        return NULL;
    if (api->wal && sl_wal_failed(api->wal)) {
        sl_counter_inc(api->m_wal_unavailable);
        respond_error(req, 503, "write-ahead log failed; restart the aggregator", 0);
        return NULL;
    }
    struct push_ctx *c = sl_arena_calloc(&req->arena, sizeof(*c));
    c->api = api;
    c->req = req;
    c->tenant = tenant;
    c->tenant_z = sl_arena_strndup(&req->arena, tenant.ptr, tenant.len);
    sl_buf_init(&c->body);
    sl_rejects_init(&c->rej);
    return c;
}

/* Answers a body that cannot be read (status, message), releasing c. */
static void refuse_body(struct push_ctx *c, int status, struct sl_buf *msg)
{
    sl_log_limited(&c->api->log_bad, SL_LOG_WARN, "push: body refused", "tenant=%s status=%d",
                   c->tenant_z, status);
    struct sl_http_request *req = c->req;
    ctx_release(c);
    respond_error(req, status, msg->data, 0);
    sl_buf_release(msg);
}

/* Decompresses the request body into c->body; on failure releases c, answers
 * and returns non-zero. */
static int ctx_decompress(struct push_ctx *c)
{
    struct sl_http_request *req = c->req;
    const struct sl_bytes *ce = sl_http_req_header(req, "Content-Encoding");
    enum sl_codec codec = SL_CODEC_NONE;
    int status = 0;
    struct sl_buf msg = SL_BUF_INIT;
    if (ce && sl_codec_parse(ce->ptr, ce->len, &codec) != 0) {
        status = 415;
        sl_buf_append_str(&msg, "unsupported Content-Encoding; use zstd, gzip or none");
    } else if (codec != SL_CODEC_NONE) { /* none: decoded in place, no copy */
        int rc = sl_decompress(codec, &c->body, req->body.data, req->body.len,
                               SL_PUSH_MAX_DECODED_BYTES);
        if (rc == SL_ETOOBIG) {
            status = 413;
            sl_buf_appendf(&msg, "%s body decompresses to more than %llu bytes",
                           sl_codec_name(codec), (unsigned long long)SL_PUSH_MAX_DECODED_BYTES);
        } else if (rc != 0) {
            status = 400;
            sl_buf_appendf(&msg, "%s body cannot be decompressed: %s", sl_codec_name(codec),
                           sl_strerror(rc));
        }
    }
    if (!status) {
        c->in = codec == SL_CODEC_NONE ? sl_bytes(req->body.data, req->body.len)
                                       : sl_buf_bytes(&c->body);
        return 0;
    }
    refuse_body(c, status, &msg);
    return -1;
}

static void reject_body(struct push_ctx *c, const char *what, struct sl_buf *err)
{
    sl_log_limited(&c->api->log_bad, SL_LOG_WARN, "push: undecodable body", "tenant=%s format=%s",
                   c->tenant_z, what);
    struct sl_buf msg = SL_BUF_INIT;
    sl_buf_appendf(&msg, "invalid %s push body: %s", what, err->len ? err->data : "malformed");
    ctx_release(c);
    respond_error(c->req, 400, msg.data, 0);
    sl_buf_release(&msg);
}

static void handle_native(struct sl_http_request *req, void *ud)
{
    struct sl_push_api *api = ud;
    struct push_ctx *c = ctx_new(api, req);
    if (!c)
        return;
    if (!media_type_is(sl_http_req_header(req, "Content-Type"), SL_PUSH_CONTENT_TYPE)) {
        ctx_release(c);
        respond_error(req, 415, "Content-Type must be " SL_PUSH_CONTENT_TYPE, 0);
        return;
    }
    if (ctx_decompress(c) != 0)
        return;
    struct sl_batch b;
    struct sl_buf err = SL_BUF_INIT;
    if (sl_batch_decode(&req->arena, c->in.ptr, c->in.len, &b, &err) != 0) {
        reject_body(c, "msgpack", &err);
        sl_buf_release(&err);
        return;
    }
    sl_buf_release(&err);
    process_batch(c, &b);
}

/* Loki's protobuf body: snappy block inside any Content-Encoding (already
 * undone into c->body), then a PushRequest. Each stream's labels string is
 * parsed here so that one unparsable stream is rejected alone. */
static void handle_loki_proto(struct push_ctx *c)
{
    struct sl_buf raw = SL_BUF_INIT, msg = SL_BUF_INIT;
    int rc = sl_snappy_decompress(&raw, c->in.ptr ? c->in.ptr : "", c->in.len,
                                  SL_PUSH_MAX_DECODED_BYTES);
    if (rc != 0) {
        sl_buf_release(&raw);
        if (rc == SL_ETOOBIG)
            sl_buf_appendf(&msg, "snappy body decompresses to more than %llu bytes",
                           (unsigned long long)SL_PUSH_MAX_DECODED_BYTES);
        else
            sl_buf_append_str(&msg, "protobuf push body is not a snappy block (Loki expects "
                                    "snappy block compression, not the framed format)");
        refuse_body(c, rc == SL_ETOOBIG ? 413 : 400, &msg);
        return;
    }
    sl_buf_release(&c->body);
    c->body = raw;
    c->in = sl_buf_bytes(&c->body);
    struct sl_arena *a = &c->req->arena;
    struct sl_lokipb_push p;
    if (sl_lokipb_decode(a, c->in.ptr, c->in.len, &p, &msg) != 0) {
        reject_body(c, "protobuf", &msg);
        sl_buf_release(&msg);
        return;
    }
    struct sl_batch b = {
        .nstreams = p.nstreams,
        .nentries = p.nentries,
        .line_bytes = p.line_bytes,
        .streams = sl_arena_calloc(a, (p.nstreams ? p.nstreams : 1) * sizeof(*b.streams))};
    for (size_t i = 0; i < p.nstreams; i++) {
        struct sl_batch_stream *s = &b.streams[i];
        s->entries = p.streams[i].entries;
        s->nentries = p.streams[i].nentries;
        sl_buf_clear(&msg);
        if (sl_labels_parse(a, p.streams[i].labels.ptr, p.streams[i].labels.len, &s->labels,
                            &msg) != 0) {
            sl_rejects_add(&c->rej, SL_REJECT_INVALID_LABELS, s->nentries,
                           "streams[%zu]: cannot parse labels \"%.*s\": %s", i,
                           (int)(p.streams[i].labels.len > 200 ? 200 : p.streams[i].labels.len),
                           p.streams[i].labels.ptr, msg.data ? msg.data : "");
            s->nentries = 0;
        }
    }
    sl_buf_release(&msg);
    process_batch(c, &b);
}

static void handle_loki(struct sl_http_request *req, void *ud)
{
    struct sl_push_api *api = ud;
    struct push_ctx *c = ctx_new(api, req);
    if (!c)
        return;
    /* Loki reads every Content-Type but JSON as protobuf; an explicit other
     * type is more likely a client mistake, so it is refused here. */
    const struct sl_bytes *ct = sl_http_req_header(req, "Content-Type");
    bool json = media_type_is(ct, "application/json");
    if (!json && ct && ct->len && !media_type_is(ct, "application/x-protobuf")) {
        ctx_release(c);
        respond_error(req, 415, "Content-Type must be application/json or application/x-protobuf",
                      0);
        return;
    }
    if (ctx_decompress(c) != 0)
        return;
    if (!json) {
        handle_loki_proto(c);
        return;
    }
    struct sl_batch b;
    struct sl_buf err = SL_BUF_INIT;
    if (sl_push_json_decode(&req->arena, c->in.ptr, c->in.len, &b, &err) != 0) {
        reject_body(c, "JSON", &err);
        sl_buf_release(&err);
        return;
    }
    sl_buf_release(&err);
    process_batch(c, &b);
}

/* ---- WAL records ---- */

void sl_push_record_encode(struct sl_bytes tenant, struct sl_bytes batch_body, struct sl_buf *out)
{
    unsigned char h[3] = {SL_PUSH_RECORD_V1, (unsigned char)(tenant.len & 0xff),
                          (unsigned char)(tenant.len >> 8)};
    sl_buf_append(out, h, sizeof(h));
    sl_buf_append_bytes(out, tenant);
    sl_buf_append_bytes(out, batch_body);
}

int sl_push_record_apply(struct sl_ingester *ing, struct sl_bytes p, struct sl_push_result *res)
{
    struct sl_push_result local = {0};
    if (!res)
        res = &local;
    if (p.len < 3)
        return SL_ECORRUPT;
    const unsigned char *u = (const unsigned char *)p.ptr;
    if (u[0] != SL_PUSH_RECORD_V1)
        return SL_EUNSUPP;
    size_t tlen = (size_t)u[1] | (size_t)u[2] << 8;
    if (p.len - 3 < tlen)
        return SL_ECORRUPT;
    struct sl_bytes tenant = sl_bytes(p.ptr + 3, tlen);
    if (!sl_tenant_valid(tenant))
        return SL_ECORRUPT;
    struct sl_arena arena;
    sl_arena_init(&arena, 0);
    struct sl_batch b;
    int rc = sl_batch_decode(&arena, p.ptr + 3 + tlen, p.len - 3 - tlen, &b, NULL);
    if (rc != 0) {
        sl_arena_release(&arena);
        return SL_ECORRUPT;
    }
    for (size_t i = 0; i < b.nstreams; i++) {
        struct sl_batch_stream *s = &b.streams[i];
        /* Written sorted and valid; checked again as a record may be damaged
         * in a way its crc cannot tell (a bug in an older writer). */
        if (sl_labels_validate(&s->labels, NULL, NULL) != 0) {
            rc = SL_ECORRUPT;
            continue;
        }
        sl_ingester_push(ing, tenant, &s->labels, s->entries, s->nentries, NULL, res);
    }
    sl_arena_release(&arena);
    return rc;
}

/* ---- lifecycle ---- */

struct sl_push_api *sl_push_api_new(struct sl_http_server *srv, struct sl_ingester *ing,
                                    struct sl_wal *wal, struct sl_metrics *m,
                                    const struct sl_push_opts *o)
{
    struct sl_push_api *api = SL_NEW(struct sl_push_api);
    api->ing = ing;
    api->wal = wal;
    api->o = *o;
    api->rl = sl_ratelimit_new(o->limits.ingestion_rate_bytes, o->limits.ingestion_burst_bytes);
    api->f_received =
        sl_metrics_counter(m, "sluice_aggregator_lines_received_total",
                           "Entries received in push requests, before validation.", "tenant");
    api->f_bytes = sl_metrics_counter(m, "sluice_aggregator_bytes_received_total",
                                      "Raw line bytes received in push requests.", "tenant");
    api->f_rejected = sl_metrics_counter(m, "sluice_aggregator_lines_rejected_total",
                                         "Entries rejected, by reason.", "tenant,reason");
    api->f_dups = sl_metrics_counter(m, "sluice_aggregator_lines_duplicate_total",
                                     "Entries dropped as duplicates of stored ones.", "tenant");
    api->m_wal_unavailable = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_push_wal_unavailable_total",
                           "Pushes refused with 503 because the WAL had failed.", NULL));
    sl_http_server_route(srv, "POST", "/api/v1/push", false, handle_native, api);
    sl_http_server_route(srv, "POST", "/loki/api/v1/push", false, handle_loki, api);
    return api;
}

void sl_push_api_free(struct sl_push_api *p)
{
    if (!p)
        return;
    sl_ratelimit_free(p->rl);
    sl_free(p);
}
