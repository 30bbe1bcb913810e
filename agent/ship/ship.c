/* Batches, one in flight, retries. Encoding and compression run on the libuv
 * thread pool (they are the CPU-heavy part), and so does every disk buffer
 * call (they fsync); everything else on the loop. */
#include "agent/ship/ship.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "agent/buffer/buffer.h"
#include "common/batch.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/format.h"
#include "common/http_client.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/lokipb.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/snappy.h"
#include "common/timeutil.h"

struct ship_entry {
    int64_t ts_ns;
    size_t off;
    size_t len;
    uint32_t sidx;
    uint32_t nmeta; /* structured metadata: nmeta labels from meta_off in b->meta */
    size_t meta_off;
};

/* One metadata pair, as offsets into the batch's metabytes. */
struct ship_meta {
    size_t name_off, name_len, value_off, value_len;
};

struct ship_bstream {
    struct sl_ship_stream *s;
    size_t n;
    uint64_t last_cookie;
};

/* One push body and how to send it: a batch's (memory mode) or a record
 * taken from the disk buffer. */
struct ship_out {
    struct sl_buf body;  /* encoded + compressed */
    struct sl_buf token; /* bearer token, read with the body */
    size_t lines;
    enum sl_ship_protocol protocol;
    enum sl_codec codec; /* Content-Encoding of body */
    int attempts;
    int64_t send_mono_ns;
};

struct ship_batch {
    uint64_t gen;
    struct sl_buf lines;
    struct ship_entry *e;
    size_t ne, cape;
    struct ship_bstream *st;
    size_t ns, caps;
    struct ship_meta *meta;
    size_t nmeta, capmeta;
    struct sl_buf metabytes;
    struct ship_out out; /* body filled on the thread pool */
    int enc_err;
    /* disk mode: result of the append (thread pool) */
    int app_rc;
    struct sl_buf app_err;
    struct sl_buffer_drop evicted;
    struct sl_buffer_stats stats;
};

struct sl_ship {
    uv_loop_t *loop;
    struct sl_ship_opts o;
    enum sl_codec body_codec; /* Content-Encoding of the body */
    struct sl_ship_cbs cbs;
    void *ud;
    struct ship_batch *building;
    struct ship_batch *sealed; /* being encoded, in flight or waiting to retry */
    struct ship_batch *spare;  /* the last finished batch, its memory kept for the next */
    bool encoding;
    bool draining;
    bool closing;
    int pending_closes;
    uint64_t next_gen;
    uint64_t rng;
    uv_work_t work;
    /* Encoder memory kept across batches (thread pool). Only encode_work
     * touches it, and at most one is queued at a time (encoding), so it needs
     * no lock; maybe_free waits for it to finish. */
    struct sl_batch_enc enc;
    struct sl_buf raw;       /* encoded body before compression */
    size_t *gstart, *gorder; /* group_by_stream's arrays */
    size_t gstart_cap, gorder_cap;
    struct sl_zstd_cctx *zctx; /* made on first use */
    uv_timer_t wait_timer;
    uv_timer_t retry_timer;
    struct sl_http_client *client;
    struct sl_metric *m_sent, *m_rejected, *m_batches, *m_batches_dropped, *m_retries,
        *m_body_bytes, *m_duration, *m_last_send;
    /* disk mode (buffer.type: disk); buf is NULL in memory mode */
    struct sl_buffer *buf;
    int buf_open_rc;
    struct sl_buf buf_open_err;
    uv_timer_t append_timer; /* retries a failed append */
    struct ship_out dout;    /* the record being sent */
    bool dout_ready;         /* dout holds a taken record */
    bool take_busy;          /* take_work is queued */
    bool take_again;         /* a record was appended while take_work ran */
    bool take_need_done;     /* the last record is finished: done it first */
    uv_work_t take_work;
    int take_rc, done_rc; /* results of take_work */
    struct sl_buf take_err;
    struct sl_buffer_drop take_corrupt;
    struct sl_buffer_stats take_stats;
    uint64_t stats_version; /* of the snapshot the gauges show */
    struct sl_metric *m_buf_bytes, *m_buf_records, *m_buf_dropped_bytes, *m_drop_full,
        *m_drop_corrupt, *m_buf_errors;
};

static struct sl_log_limit retry_lim, reject_lim, token_lim, evict_lim, corrupt_lim, disk_lim;

/* Takes the spare batch if there is one: its buffers keep their capacity, so
 * the batches of a steady stream reuse the same memory instead of growing a
 * fresh set each (a 1 MiB batch ends in a 2 MiB line buffer) and handing it
 * back to malloc. Everything else starts at zero, with a new gen. */
static struct ship_batch *batch_new(struct sl_ship *s)
{
    struct ship_batch *b = s->spare;
    s->spare = NULL;
    if (!b) {
        b = SL_NEW(struct ship_batch);
    } else {
        struct ship_batch keep = *b;
        memset(b, 0, sizeof(*b));
        b->lines = keep.lines;
        b->e = keep.e;
        b->cape = keep.cape;
        b->st = keep.st;
        b->caps = keep.caps;
        b->meta = keep.meta;
        b->capmeta = keep.capmeta;
        b->metabytes = keep.metabytes;
        b->out.body = keep.out.body;
        b->out.token = keep.out.token;
        b->app_err = keep.app_err;
        sl_buf_clear(&b->lines);
        sl_buf_clear(&b->metabytes);
        sl_buf_clear(&b->out.body);
        sl_buf_clear(&b->out.token);
        sl_buf_clear(&b->app_err);
    }
    b->gen = ++s->next_gen;
    return b;
}

static void batch_free(struct ship_batch *b)
{
    if (!b)
        return;
    sl_buf_release(&b->lines);
    sl_buf_release(&b->metabytes);
    sl_free(b->meta);
    sl_buf_release(&b->out.body);
    sl_buf_release(&b->out.token);
    sl_buf_release(&b->app_err);
    sl_free(b->e);
    sl_free(b->st);
    sl_free(b);
}

/* Capacity past which a buffer is freed rather than kept for the next batch:
 * a full batch's buffers stay below it (lines: batch_size plus one line,
 * rounded up to a power of two). */
static size_t keep_limit(const struct sl_ship *s)
{
    return 4 * s->o.batch_size + (64u << 10);
}

/* A finished batch becomes the spare (loop thread: it is neither building nor
 * sealed any more, so no pool job can see it), unless a rare outsized batch
 * (a huge line, a larger batch_size before a reload) would pin its memory. */
static void batch_keep(struct sl_ship *s, struct ship_batch *b)
{
    size_t limit = keep_limit(s);
    if (s->spare || b->lines.cap > limit || b->out.body.cap > limit || b->metabytes.cap > limit) {
        batch_free(b);
        return;
    }
    s->spare = b;
}

/* --- encoding (thread pool) --- */

static void read_token(const char *file, struct sl_buf *out)
{
    FILE *f = fopen(file, "re");
    if (!f) {
        sl_log_limited(&token_lim, SL_LOG_WARN, "cannot read bearer token file", "file=%s", file);
        return;
    }
    char *p = sl_buf_reserve(out, 8192);
    size_t n = fread(p, 1, 8191, f);
    fclose(f);
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
        n--;
    sl_buf_commit(out, n);
}

/* Order of the batch's entries grouped by stream, each stream's entries in
 * the order they were added: order[start[i] .. start[i+1]) for stream i.
 * Both arrays are s's encoder memory (thread pool, see struct sl_ship), valid
 * until the next call. */
static void group_by_stream(struct sl_ship *s, const struct ship_batch *b, size_t **start_out,
                            size_t **order_out)
{
    if (s->gstart_cap < b->ns + 1) {
        s->gstart_cap = b->ns + 1;
        s->gstart = sl_reallocarray(s->gstart, s->gstart_cap, sizeof(size_t));
    }
    if (s->gorder_cap < b->ne || !s->gorder) {
        s->gorder_cap = b->ne ? b->ne : 1;
        s->gorder = sl_reallocarray(s->gorder, s->gorder_cap, sizeof(size_t));
    }
    size_t *start = s->gstart, *order = s->gorder;
    memset(start, 0, (b->ns + 1) * sizeof(size_t));
    for (size_t i = 0; i < b->ne; i++)
        start[b->e[i].sidx + 1]++;
    for (size_t i = 0; i < b->ns; i++)
        start[i + 1] += start[i];
    for (size_t i = 0; i < b->ne; i++)
        order[start[b->e[i].sidx]++] = i;
    /* start[i] now points past stream i: shift back by one stream */
    memmove(start + 1, start, b->ns * sizeof(size_t));
    start[0] = 0;
    *start_out = start;
    *order_out = order;
}

static struct sl_bytes entry_line(const struct ship_batch *b, const struct ship_entry *e)
{
    return sl_bytes(b->lines.data + e->off, e->len);
}

/* The metadata of e as labels (views into the batch), in out[0..e->nmeta). */
static const struct sl_label *entry_meta(const struct ship_batch *b, const struct ship_entry *e,
                                         struct sl_label *out)
{
    for (uint32_t i = 0; i < e->nmeta; i++) {
        const struct ship_meta *m = &b->meta[e->meta_off + i];
        out[i].name = sl_bytes(b->metabytes.data + m->name_off, m->name_len);
        out[i].value = sl_bytes(b->metabytes.data + m->value_off, m->value_len);
    }
    return e->nmeta ? out : NULL;
}

#define SHIP_MAX_META 64

/* enc is cleared (its memory kept) by sl_batch_enc_finish. */
static int encode_native(const struct ship_batch *b, const size_t *start, const size_t *order,
                         struct sl_batch_enc *enc, struct sl_buf *raw)
{
    for (size_t i = 0; i < b->ns; i++) {
        sl_batch_enc_stream(enc, b->st[i].s->labels, b->st[i].n);
        for (size_t k = start[i]; k < start[i + 1]; k++) {
            const struct ship_entry *e = &b->e[order[k]];
            struct sl_label meta[SHIP_MAX_META];
            sl_batch_enc_entry(enc, e->ts_ns, entry_line(b, e), entry_meta(b, e, meta), e->nmeta);
        }
    }
    return sl_batch_enc_finish(enc, raw);
}

/* {"streams":[{"stream":{...},"values":[["<ns>","<line>"],...]},...]} */
static void encode_loki_json(const struct ship_batch *b, const size_t *start, const size_t *order,
                             struct sl_buf *raw)
{
    struct sl_jsonw w;
    sl_jsonw_init(&w, raw);
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "streams");
    sl_jsonw_arr_open(&w);
    for (size_t i = 0; i < b->ns; i++) {
        const struct sl_labels *ls = b->st[i].s->labels;
        sl_jsonw_obj_open(&w);
        sl_jsonw_key(&w, "stream");
        sl_jsonw_obj_open(&w);
        for (size_t j = 0; j < ls->n; j++) {
            sl_jsonw_key_bytes(&w, ls->items[j].name);
            sl_jsonw_bytes(&w, ls->items[j].value);
        }
        sl_jsonw_obj_close(&w);
        sl_jsonw_key(&w, "values");
        sl_jsonw_arr_open(&w);
        for (size_t k = start[i]; k < start[i + 1]; k++) {
            const struct ship_entry *e = &b->e[order[k]];
            sl_jsonw_arr_open(&w);
            sl_jsonw_i64_str(&w, e->ts_ns);
            sl_jsonw_bytes(&w, entry_line(b, e));
            if (e->nmeta) { /* Loki's third element: structured metadata */
                struct sl_label meta[SHIP_MAX_META];
                entry_meta(b, e, meta);
                sl_jsonw_obj_open(&w);
                for (uint32_t m = 0; m < e->nmeta; m++) {
                    sl_jsonw_key_bytes(&w, meta[m].name);
                    sl_jsonw_bytes(&w, meta[m].value);
                }
                sl_jsonw_obj_close(&w);
            }
            sl_jsonw_arr_close(&w);
        }
        sl_jsonw_arr_close(&w);
        sl_jsonw_obj_close(&w);
    }
    sl_jsonw_arr_close(&w);
    sl_jsonw_obj_close(&w);
}

static void encode_loki_protobuf(const struct ship_batch *b, const size_t *start,
                                 const size_t *order, struct sl_buf *raw)
{
    struct sl_batch_entry *es = sl_mallocarray(b->ne ? b->ne : 1, sizeof(*es));
    struct sl_label *meta = sl_mallocarray(b->nmeta ? b->nmeta : 1, sizeof(*meta));
    struct sl_buf labels = SL_BUF_INIT;
    for (size_t i = 0; i < b->ns; i++) {
        size_t n = 0;
        for (size_t k = start[i]; k < start[i + 1]; k++, n++) {
            const struct ship_entry *e = &b->e[order[k]];
            es[n] = (struct sl_batch_entry){.ts_ns = e->ts_ns, .line = entry_line(b, e)};
            es[n].meta = (struct sl_label *)entry_meta(b, e, meta + e->meta_off);
            es[n].nmeta = e->nmeta;
        }
        sl_buf_clear(&labels);
        sl_labels_format(b->st[i].s->labels, &labels);
        sl_lokipb_encode_stream(raw, sl_buf_bytes(&labels), es, n);
    }
    sl_buf_release(&labels);
    sl_free(meta);
    sl_free(es);
}

/* Disk mode: the sealed batch's body becomes a record (thread pool). */
static void append_work(uv_work_t *w)
{
    struct sl_ship *s = w->data;
    struct ship_batch *b = s->sealed;
    struct sl_buffer_meta m = {
        .lines = (uint32_t)b->ne,
        .protocol = (uint8_t)b->out.protocol,
        .codec = (uint8_t)b->out.codec,
    };
    sl_buf_clear(&b->app_err);
    b->app_rc = sl_buffer_append(s->buf, &m, sl_buf_bytes(&b->out.body), &b->evicted, &b->app_err);
    sl_buffer_stats(s->buf, &b->stats);
}

static void encode_work(uv_work_t *w)
{
    struct sl_ship *s = w->data;
    struct ship_batch *b = s->sealed;
    size_t *start, *order;
    group_by_stream(s, b, &start, &order);
    struct sl_buf *raw = &s->raw;
    sl_buf_clear(raw);
    switch (s->o.protocol) {
    case SL_SHIP_LOKI_JSON:
        encode_loki_json(b, start, order, raw);
        break;
    case SL_SHIP_LOKI_PROTOBUF:
        encode_loki_protobuf(b, start, order, raw);
        break;
    default:
        b->enc_err = encode_native(b, start, order, &s->enc, raw);
        break;
    }
    if (!b->enc_err && s->o.protocol == SL_SHIP_LOKI_PROTOBUF) {
        b->enc_err = sl_snappy_compress(&b->out.body, raw->data ? raw->data : "", raw->len);
    } else if (!b->enc_err && s->body_codec == SL_CODEC_ZSTD) {
        if (!s->zctx)
            s->zctx = sl_zstd_cctx_new();
        b->enc_err = sl_zstd_compress_cctx(s->zctx, &b->out.body, raw->data, raw->len, 0);
    } else if (!b->enc_err) {
        b->enc_err = sl_compress(s->body_codec, &b->out.body, raw->data, raw->len, 0);
    }
    /* Kept for the next batch, unless an outsized one grew them. */
    size_t limit = keep_limit(s);
    if (raw->cap > limit)
        sl_buf_release(raw);
    else
        sl_buf_clear(raw);
    if (s->enc.body.cap > limit) {
        sl_batch_enc_release(&s->enc);
        sl_batch_enc_init(&s->enc);
    }
    if (s->buf) {
        if (!b->enc_err)
            append_work(w);
    } else if (s->o.bearer_token_file && *s->o.bearer_token_file) {
        read_token(s->o.bearer_token_file, &b->out.token);
    }
}

static void send_out(struct sl_ship *s, struct ship_out *o);
static void maybe_free(struct sl_ship *s);
static void appended(struct sl_ship *s);

static void encode_done(uv_work_t *w, int status)
{
    struct sl_ship *s = w->data;
    s->encoding = false;
    if (s->closing) {
        maybe_free(s);
        return;
    }
    if (status != 0 || s->sealed->enc_err) {
        /* Cannot happen with a correct encoder; keep the data and retry. */
        sl_error("cannot encode batch", "err=%s",
                 sl_strerror(status ? SL_EIO : s->sealed->enc_err));
        abort();
    }
    if (s->buf)
        appended(s);
    else
        send_out(s, &s->sealed->out);
}

/* --- sealing --- */

static void try_seal(struct sl_ship *s)
{
    if (s->sealed || !s->building || s->building->ne == 0 || s->closing)
        return;
    s->sealed = s->building;
    s->building = NULL;
    s->sealed->out.lines = s->sealed->ne;
    s->sealed->out.protocol = s->o.protocol;
    s->sealed->out.codec = s->body_codec;
    uv_timer_stop(&s->wait_timer);
    s->encoding = true;
    s->work.data = s;
    uv_queue_work(s->loop, &s->work, encode_work, encode_done);
}

static void on_wait(uv_timer_t *t)
{
    try_seal(t->data);
}

void sl_ship_add(struct sl_ship *s, struct sl_ship_stream *st, int64_t ts_ns, struct sl_bytes line,
                 uint64_t cookie)
{
    sl_ship_add_meta(s, st, ts_ns, line, NULL, 0, cookie);
}

static void add_meta(struct ship_batch *b, struct ship_entry *e, const struct sl_label *meta,
                     size_t nmeta)
{
    if (nmeta > SHIP_MAX_META)
        nmeta = SHIP_MAX_META;
    e->meta_off = b->nmeta;
    e->nmeta = (uint32_t)nmeta;
    if (b->nmeta + nmeta > b->capmeta) {
        b->capmeta = (b->nmeta + nmeta) * 2;
        b->meta = sl_reallocarray(b->meta, b->capmeta, sizeof(*b->meta));
    }
    for (size_t i = 0; i < nmeta; i++) {
        struct ship_meta *m = &b->meta[b->nmeta++];
        m->name_off = b->metabytes.len;
        m->name_len = meta[i].name.len;
        sl_buf_append(&b->metabytes, meta[i].name.ptr, meta[i].name.len);
        m->value_off = b->metabytes.len;
        m->value_len = meta[i].value.len;
        sl_buf_append(&b->metabytes, meta[i].value.ptr, meta[i].value.len);
    }
}

void sl_ship_add_meta(struct sl_ship *s, struct sl_ship_stream *st, int64_t ts_ns,
                      struct sl_bytes line, const struct sl_label *meta, size_t nmeta,
                      uint64_t cookie)
{
    if (!s->building)
        s->building = batch_new(s);
    struct ship_batch *b = s->building;
    if (st->gen != b->gen) {
        if (b->ns == b->caps) {
            b->caps = b->caps ? b->caps * 2 : 16;
            b->st = sl_reallocarray(b->st, b->caps, sizeof(*b->st));
        }
        st->gen = b->gen;
        st->idx = (uint32_t)b->ns;
        b->st[b->ns++] = (struct ship_bstream){st, 0, 0};
    }
    if (b->ne == b->cape) {
        b->cape = b->cape ? b->cape * 2 : 256;
        b->e = sl_reallocarray(b->e, b->cape, sizeof(*b->e));
    }
    b->e[b->ne++] = (struct ship_entry){ts_ns, b->lines.len, line.len, st->idx, 0, 0};
    if (nmeta)
        add_meta(b, &b->e[b->ne - 1], meta, nmeta);
    sl_buf_append(&b->lines, line.ptr, line.len);
    b->st[st->idx].n++;
    b->st[st->idx].last_cookie = cookie;
    if (b->ne == 1 && !s->draining)
        uv_timer_start(&s->wait_timer, on_wait, (uint64_t)(s->o.batch_wait_ns / SL_NS_PER_MS), 0);
    if (b->lines.len >= s->o.batch_size || s->draining)
        try_seal(s);
}

bool sl_ship_full(const struct sl_ship *s)
{
    return s->building && s->building->lines.len >= s->o.batch_size;
}

bool sl_ship_idle(const struct sl_ship *s)
{
    return !s->sealed && (!s->building || s->building->ne == 0);
}

size_t sl_ship_pending(const struct sl_ship *s)
{
    return (s->sealed ? s->sealed->ne : 0) + (s->building ? s->building->ne : 0);
}

void sl_ship_drain(struct sl_ship *s)
{
    s->draining = true;
    try_seal(s);
}

/* --- sending and replies --- */

static void on_response(struct sl_http_response *resp, void *ud);

static void send_out(struct sl_ship *s, struct ship_out *b)
{
    const char *hdrs[6];
    char enc[64], tenant[SL_TENANT_MAX_LEN + 32];
    struct sl_buf auth = SL_BUF_INIT;
    size_t nh = 0;
    hdrs[nh++] = b->protocol == SL_SHIP_LOKI_JSON       ? "Content-Type: application/json"
                 : b->protocol == SL_SHIP_LOKI_PROTOBUF ? "Content-Type: application/x-protobuf"
                                                        : "Content-Type: " SL_PUSH_CONTENT_TYPE;
    if (b->codec != SL_CODEC_NONE) {
        snprintf(enc, sizeof(enc), "Content-Encoding: %s", sl_codec_name(b->codec));
        hdrs[nh++] = enc;
    }
    if (s->o.tenant && *s->o.tenant) {
        snprintf(tenant, sizeof(tenant), "X-Scope-OrgID: %s", s->o.tenant);
        hdrs[nh++] = tenant;
    }
    if (b->token.len) {
        sl_buf_appendf(&auth, "Authorization: Bearer %s", b->token.data);
        hdrs[nh++] = auth.data;
    }
    hdrs[nh] = NULL;
    struct sl_http_req_opts r = {
        .method = "POST",
        .url = s->o.url,
        .headers = hdrs,
        .body = b->body.data,
        .body_len = b->body.len,
        .timeout_ms = s->o.timeout_ns / SL_NS_PER_MS,
        .max_response_bytes = 1 << 20,
    };
    b->send_mono_ns = sl_mono_ns();
    int rc = sl_http_client_do(s->client, &r, on_response, s);
    sl_buf_release(&auth);
    if (rc != 0) {
        sl_error("cannot send batch: invalid client.url", "url=%s err=%s", s->o.url,
                 sl_strerror(rc));
        abort(); /* validated at start */
    }
}

static void kick_sender(struct sl_ship *s);

static void on_retry(uv_timer_t *t)
{
    struct sl_ship *s = t->data;
    if (!s->buf)
        send_out(s, &s->sealed->out);
    else if (s->dout_ready)
        send_out(s, &s->dout);
    else
        kick_sender(s); /* reading the buffer failed: try again */
}

static uint64_t next_rand(struct sl_ship *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/* Delay before retry number `attempt` (1-based): min * 2^(attempt-1), capped,
 * with "equal jitter" (half fixed, half random); a longer Retry-After wins. */
static int64_t backoff_ms(struct sl_ship *s, int attempt, int64_t retry_after_ms)
{
    int64_t d = s->o.backoff_min_ns;
    for (int i = 1; i < attempt && d < s->o.backoff_max_ns; i++)
        d *= 2;
    if (d > s->o.backoff_max_ns)
        d = s->o.backoff_max_ns;
    int64_t ms = d / SL_NS_PER_MS;
    ms = ms / 2 + (int64_t)(next_rand(s) % (uint64_t)(ms / 2 + 1));
    if (retry_after_ms > ms)
        ms = retry_after_ms;
    if (ms > s->o.backoff_max_ns / SL_NS_PER_MS)
        ms = s->o.backoff_max_ns / SL_NS_PER_MS;
    return ms;
}

static size_t rejected_count(const struct sl_http_response *resp, size_t total)
{
    if (resp->status != 400)
        return total;
    json_t *j = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
    json_t *r = j ? json_object_get(j, "rejected") : NULL;
    size_t n = total;
    if (json_is_integer(r) && json_integer_value(r) >= 0 && (size_t)json_integer_value(r) <= total)
        n = (size_t)json_integer_value(r);
    json_decref(j);
    return n;
}

static void finish_batch(struct sl_ship *s, bool delivered)
{
    struct ship_batch *b = s->sealed;
    s->sealed = NULL;
    for (size_t i = 0; i < b->ns; i++)
        s->cbs.ack(s->ud, b->st[i].s, b->st[i].n, b->st[i].last_cookie, delivered);
    batch_keep(s, b);
    if (s->building && (s->draining || sl_ship_full(s) ||
                        (s->building->ne && !uv_is_active((uv_handle_t *)&s->wait_timer))))
        try_seal(s);
    s->cbs.resume(s->ud);
}

static void record_finished(struct sl_ship *s);

static void on_response(struct sl_http_response *resp, void *ud)
{
    struct sl_ship *s = ud;
    if (s->closing || resp->err == SL_ECANCELED)
        return;
    struct ship_out *b = s->buf ? &s->dout : &s->sealed->out;
    sl_histogram_observe(s->m_duration, (double)(sl_mono_ns() - b->send_mono_ns) / 1e9);
    if (resp->err == 0 && resp->status >= 200 && resp->status < 300) {
        sl_counter_add(s->m_sent, (double)b->lines);
        sl_counter_inc(s->m_batches);
        sl_counter_add(s->m_body_bytes, (double)b->body.len);
        sl_gauge_set(s->m_last_send, (double)sl_now_ns() / 1e9);
        if (s->buf)
            record_finished(s);
        else
            finish_batch(s, true);
        return;
    }
    if (sl_http_retryable(resp)) {
        int64_t ms = backoff_ms(s, ++b->attempts, resp->retry_after_ms);
        sl_counter_inc(s->m_retries);
        sl_log_limited(&retry_lim, SL_LOG_WARN, "push failed, will retry",
                       "status=%d err=%s attempt=%d retry_in_ms=%lld entries=%zu", resp->status,
                       resp->err ? sl_strerror(resp->err) : "none", b->attempts, (long long)ms,
                       b->lines);
        uv_timer_start(&s->retry_timer, on_retry, (uint64_t)ms, 0);
        return;
    }
    size_t rej = rejected_count(resp, b->lines);
    char reason[256];
    sl_log_quote(reason, sizeof(reason), resp->body.data ? resp->body.data : "", resp->body.len);
    sl_log_limited(&reject_lim, SL_LOG_ERROR, "push rejected, lines dropped",
                   "status=%d rejected=%zu entries=%zu reason=%s", resp->status, rej, b->lines,
                   reason);
    sl_counter_add(s->m_rejected, (double)rej);
    sl_counter_add(s->m_sent, (double)(b->lines - rej));
    sl_counter_inc(s->m_batches_dropped);
    if (s->buf)
        record_finished(s);
    else
        finish_batch(s, rej < b->lines);
}

/* --- disk mode: appends and the sender --- */

static void set_buffer_gauges(struct sl_ship *s, const struct sl_buffer_stats *st)
{
    if (st->version < s->stats_version)
        return; /* an older snapshot whose callback ran late */
    s->stats_version = st->version;
    sl_gauge_set(s->m_buf_bytes, (double)st->bytes);
    sl_gauge_set(s->m_buf_records, (double)st->records);
}

/* Counts and logs records the buffer dropped, then forgets them. */
static void report_drop(struct sl_ship *s, struct sl_buffer_drop *d, bool full)
{
    if (!d->records && !d->bytes)
        return;
    sl_counter_add(full ? s->m_drop_full : s->m_drop_corrupt, (double)d->lines);
    sl_counter_add(s->m_buf_dropped_bytes, (double)d->bytes);
    if (full)
        sl_log_limited(&evict_lim, SL_LOG_WARN,
                       "disk buffer full (buffer.max_size), oldest records dropped",
                       "dir=%s file=%s records=%llu lines=%llu bytes=%llu", s->o.buffer_path,
                       d->file, (unsigned long long)d->records, (unsigned long long)d->lines,
                       (unsigned long long)d->bytes);
    else
        sl_log_limited(&corrupt_lim, SL_LOG_ERROR,
                       "disk buffer: torn or corrupt records dropped, the rest is kept",
                       "dir=%s file=%s records=%llu lines=%llu bytes=%llu", s->o.buffer_path,
                       d->file, (unsigned long long)d->records, (unsigned long long)d->lines,
                       (unsigned long long)d->bytes);
    memset(d, 0, sizeof(*d));
}

static void on_append_retry(uv_timer_t *t)
{
    struct sl_ship *s = t->data;
    if (s->closing || !s->sealed)
        return;
    s->encoding = true;
    s->work.data = s;
    uv_queue_work(s->loop, &s->work, append_work, encode_done);
}

/* The sealed batch was appended (or not): its lines are durable, ack them. */
static void appended(struct sl_ship *s)
{
    struct ship_batch *b = s->sealed;
    report_drop(s, &b->evicted, true);
    if (b->app_rc != 0) {
        sl_counter_inc(s->m_buf_errors);
        sl_log_limited(&disk_lim, SL_LOG_ERROR,
                       "cannot write to the disk buffer, reading paused, will retry",
                       "dir=%s err=\"%s\" entries=%zu", s->o.buffer_path,
                       b->app_err.data ? b->app_err.data : sl_strerror(b->app_rc), b->ne);
        uv_timer_start(&s->append_timer, on_append_retry, 1000, 0);
        return;
    }
    set_buffer_gauges(s, &b->stats);
    finish_batch(s, true);
    kick_sender(s);
}

static void take_work_fn(uv_work_t *w)
{
    struct sl_ship *s = w->data;
    sl_buf_clear(&s->take_err);
    s->done_rc = s->take_need_done ? sl_buffer_done(s->buf, &s->take_err) : 0;
    struct sl_buffer_meta m = {0};
    for (;;) {
        s->take_rc = sl_buffer_take(s->buf, &m, &s->dout.body, &s->take_corrupt, &s->take_err);
        if (s->take_rc != 0 || (m.protocol <= SL_SHIP_LOKI_PROTOBUF && m.codec <= SL_CODEC_GZIP))
            break;
        /* A good crc but a protocol or codec this build does not know (a
         * newer agent wrote it): it cannot be sent as it should. */
        struct sl_buffer_drop *d = &s->take_corrupt;
        d->records++;
        d->lines += m.lines;
        d->bytes += s->dout.body.len + SL_BUFFER_REC_HDR + SL_BUFFER_REC_META;
        sl_buffer_done(s->buf, NULL);
    }
    sl_buffer_stats(s->buf, &s->take_stats);
    if (s->take_rc != 0)
        return;
    s->dout.lines = m.lines;
    s->dout.protocol = (enum sl_ship_protocol)m.protocol;
    s->dout.codec = (enum sl_codec)m.codec;
    s->dout.attempts = 0;
    sl_buf_clear(&s->dout.token);
    if (s->o.bearer_token_file && *s->o.bearer_token_file)
        read_token(s->o.bearer_token_file, &s->dout.token);
}

static void take_done_fn(uv_work_t *w, int status)
{
    struct sl_ship *s = w->data;
    s->take_busy = false;
    if (s->closing) {
        s->dout_ready = status == 0 && s->take_rc == 0; /* maybe_free puts it back */
        maybe_free(s);
        return;
    }
    bool again = s->take_again;
    s->take_again = false;
    if (s->take_need_done && s->done_rc != 0)
        sl_log_limited(&disk_lim, SL_LOG_ERROR,
                       "cannot save the disk buffer position; the record may be sent again",
                       "dir=%s err=\"%s\"", s->o.buffer_path, s->take_err.data);
    s->take_need_done = false;
    report_drop(s, &s->take_corrupt, false);
    set_buffer_gauges(s, &s->take_stats);
    if (status == 0 && s->take_rc == 0) {
        s->dout_ready = true;
        send_out(s, &s->dout);
    } else if (status == 0 && s->take_rc == SL_ENOENT) {
        if (again)
            kick_sender(s); /* appended while we looked */
    } else if (status == 0 && s->take_rc == SL_EEXIST) {
        /* the shipper this one replaced (reload) still holds a record */
        uv_timer_start(&s->retry_timer, on_retry, 200, 0);
    } else {
        sl_counter_inc(s->m_buf_errors);
        sl_log_limited(&disk_lim, SL_LOG_ERROR, "cannot read the disk buffer, will retry",
                       "dir=%s err=\"%s\"", s->o.buffer_path,
                       s->take_err.data ? s->take_err.data : sl_strerror(s->take_rc));
        uv_timer_start(&s->retry_timer, on_retry, 1000, 0);
    }
}

/* Starts taking the next record unless one is being taken or sent. */
static void kick_sender(struct sl_ship *s)
{
    if (!s->buf || s->closing || s->dout_ready)
        return;
    if (s->take_busy) {
        s->take_again = true;
        return;
    }
    s->take_busy = true;
    s->take_work.data = s;
    uv_queue_work(s->loop, &s->take_work, take_work_fn, take_done_fn);
}

/* The record in dout was delivered or dropped for good. */
static void record_finished(struct sl_ship *s)
{
    s->dout_ready = false;
    s->take_need_done = true;
    sl_buf_clear(&s->dout.body);
    kick_sender(s);
}

/* --- lifecycle --- */

int sl_ship_protocol_parse(const char *name, enum sl_ship_protocol *out)
{
    static const char *const names[] = {"sluice", "loki-json", "loki-protobuf"};
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum sl_ship_protocol)i;
            return 0;
        }
    }
    return SL_EINVAL;
}

static char *dup_opt(const char *v)
{
    return sl_strdup(v ? v : "");
}

static void register_buffer_metrics(struct sl_ship *s, struct sl_metrics *m)
{
    s->m_buf_bytes = sl_metric_with(sl_metrics_gauge(
        m, "sluice_agent_buffer_bytes",
        "Bytes of records in the disk buffer not yet sent (0 in memory mode).", NULL));
    s->m_buf_records = sl_metric_with(
        sl_metrics_gauge(m, "sluice_agent_buffer_records",
                         "Records (batches) in the disk buffer not yet sent.", NULL));
    s->m_buf_dropped_bytes = sl_metric_with(sl_metrics_counter(
        m, "sluice_agent_buffer_dropped_bytes_total",
        "Disk buffer bytes dropped (buffer.max_size reached, or torn or corrupt records).", NULL));
    s->m_buf_errors =
        sl_metric_with(sl_metrics_counter(m, "sluice_agent_buffer_errors_total",
                                          "Failed disk buffer writes and reads (retried).", NULL));
    struct sl_metric_family *dropped = sl_metrics_counter(m, "sluice_agent_lines_dropped_total",
                                                          "Lines dropped, by reason.", "reason");
    s->m_drop_full = sl_metric_with(dropped, "buffer_full");
    s->m_drop_corrupt = sl_metric_with(dropped, "buffer_corrupt");
    sl_gauge_set(s->m_buf_bytes, 0);
    sl_gauge_set(s->m_buf_records, 0);
}

/* Opens the disk buffer (at start, on the loop: recovery reads it once) and
 * starts sending what an earlier run left in it. */
static void open_buffer(struct sl_ship *s)
{
    struct sl_buffer_opts bo = {.dir = s->o.buffer_path, .max_size = s->o.buffer_max_size};
    struct sl_buffer_drop corrupt = {0};
    s->buf_open_rc = sl_buffer_open(&bo, &s->buf, &corrupt, &s->buf_open_err);
    if (s->buf_open_rc != 0) {
        sl_error("cannot open the disk buffer", "dir=%s err=\"%s\"", s->o.buffer_path,
                 s->buf_open_err.data);
        return;
    }
    report_drop(s, &corrupt, false);
    struct sl_buffer_stats st;
    sl_buffer_stats(s->buf, &st);
    set_buffer_gauges(s, &st);
    sl_info("disk buffer opened", "dir=%s records=%llu lines=%llu bytes=%llu max_size=%llu",
            s->o.buffer_path, (unsigned long long)st.records, (unsigned long long)st.lines,
            (unsigned long long)st.bytes, (unsigned long long)s->o.buffer_max_size);
    kick_sender(s);
}

struct sl_ship *sl_ship_new(uv_loop_t *loop, const struct sl_ship_opts *o,
                            const struct sl_ship_cbs *cbs, void *ud, struct sl_metrics *m)
{
    struct sl_ship *s = SL_NEW(struct sl_ship);
    s->loop = loop;
    sl_batch_enc_init(&s->enc);
    s->o = *o;
    s->o.url = dup_opt(o->url);
    s->o.tenant = dup_opt(o->tenant);
    s->o.bearer_token_file = dup_opt(o->bearer_token_file);
    s->o.ca_file = dup_opt(o->ca_file);
    s->o.buffer_path = dup_opt(o->buffer_path);
    switch (o->protocol) {
    case SL_SHIP_LOKI_JSON: /* Loki reads gzip (and deflate), not zstd */
        s->body_codec = o->codec == SL_CODEC_NONE ? SL_CODEC_NONE : SL_CODEC_GZIP;
        break;
    case SL_SHIP_LOKI_PROTOBUF: /* snappy inside, no Content-Encoding */
        s->body_codec = SL_CODEC_NONE;
        break;
    default:
        s->body_codec = o->codec;
        break;
    }
    s->cbs = *cbs;
    s->ud = ud;
    s->rng = (uint64_t)sl_now_ns() | 1;
    uv_timer_init(loop, &s->wait_timer);
    uv_timer_init(loop, &s->retry_timer);
    uv_timer_init(loop, &s->append_timer);
    s->wait_timer.data = s;
    s->retry_timer.data = s;
    s->append_timer.data = s;
    struct sl_http_client_opts co = {
        .ca_file = *s->o.ca_file ? s->o.ca_file : NULL,
        .insecure_skip_verify = o->insecure_skip_verify,
    };
    s->client = sl_http_client_new(loop, &co);
    s->m_sent = sl_metric_with(sl_metrics_counter(m, "sluice_agent_lines_sent_total",
                                                  "Lines acknowledged by the receiver.", NULL));
    s->m_rejected = sl_metric_with(sl_metrics_counter(m, "sluice_agent_lines_dropped_total",
                                                      "Lines dropped, by reason.", "reason"),
                                   "rejected");
    s->m_batches = sl_metric_with(sl_metrics_counter(m, "sluice_agent_batches_sent_total",
                                                     "Batches acknowledged (2xx).", NULL));
    s->m_batches_dropped = sl_metric_with(
        sl_metrics_counter(m, "sluice_agent_batches_failed_total",
                           "Batches dropped after a permanent error (4xx other than 429).", NULL));
    s->m_retries =
        sl_metric_with(sl_metrics_counter(m, "sluice_agent_batch_retries_total",
                                          "Push attempts that failed and were retried.", NULL));
    s->m_body_bytes = sl_metric_with(sl_metrics_counter(
        m, "sluice_agent_sent_bytes_total", "Compressed push body bytes acknowledged.", NULL));
    s->m_duration = sl_metric_with(sl_metrics_histogram(m, "sluice_agent_request_duration_seconds",
                                                        "Push request duration.", NULL, NULL, 0));
    s->m_last_send = sl_metric_with(
        sl_metrics_gauge(m, "sluice_agent_last_send_timestamp_seconds",
                         "Unix time of the last batch the receiver acknowledged (2xx).", NULL));
    register_buffer_metrics(s, m);
    if (o->buffer_disk)
        open_buffer(s);
    return s;
}

int sl_ship_start(struct sl_ship *s, struct sl_buf *err)
{
    if (s->buf_open_rc == 0)
        return 0;
    if (err)
        sl_buf_appendf(err, "buffer.path: cannot open the disk buffer: %s",
                       s->buf_open_err.data ? s->buf_open_err.data : sl_strerror(s->buf_open_rc));
    return s->buf_open_rc;
}

static void maybe_free(struct sl_ship *s)
{
    if (s->pending_closes > 0 || s->encoding || s->take_busy)
        return;
    batch_free(s->building);
    batch_free(s->sealed);
    batch_free(s->spare);
    sl_batch_enc_release(&s->enc);
    sl_buf_release(&s->raw);
    sl_free(s->gstart);
    sl_free(s->gorder);
    sl_zstd_cctx_free(s->zctx);
    if (s->buf && s->take_need_done)
        sl_buffer_done(s->buf, NULL); /* delivered: a resend at worst if this fails */
    else if (s->buf && s->dout_ready) {
        struct sl_buffer_drop d = {0};
        sl_buffer_untake(s->buf, &d); /* not delivered: the next shipper sends it */
        report_drop(s, &d, true);
    }
    sl_buffer_free(s->buf);
    sl_buf_release(&s->buf_open_err);
    sl_buf_release(&s->take_err);
    sl_buf_release(&s->dout.body);
    sl_buf_release(&s->dout.token);
    sl_free((char *)s->o.buffer_path);
    sl_free((char *)s->o.url);
    sl_free((char *)s->o.tenant);
    sl_free((char *)s->o.bearer_token_file);
    sl_free((char *)s->o.ca_file);
    sl_free(s);
}

static void on_closed(uv_handle_t *h)
{
    struct sl_ship *s = h->data;
    s->pending_closes--;
    maybe_free(s);
}

void sl_ship_free(struct sl_ship *s)
{
    s->closing = true;
    sl_http_client_free(s->client);
    s->client = NULL;
    s->pending_closes = 3;
    uv_close((uv_handle_t *)&s->wait_timer, on_closed);
    uv_close((uv_handle_t *)&s->retry_timer, on_closed);
    uv_close((uv_handle_t *)&s->append_timer, on_closed);
}
