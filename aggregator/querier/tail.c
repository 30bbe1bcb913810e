/* Live tail over WebSocket. Each tail polls the querier (sl_querier_run, the
 * same path as query_range, so memory and store are merged and the pipeline
 * is Loki's) on the thread pool, then, on the loop thread, skips what it
 * already sent, frames the rest and writes it.
 *
 * Why the window of a poll starts a grace period before the watermark (the
 * end of the last complete poll) and a set of hashes of what was sent since:
 * entries that arrive late (another agent's batch with older timestamps, or
 * one sharing a timestamp with entries already sent) are still found and
 * sent, and the hashes keep anything from going out twice. delay_for moves
 * the window's end back, so entries late by less than it are sent in order.
 *
 * A tail's memory ends when three things are over: its connection (the
 * server's on_closed), its timer (uv_close callback) and any poll in flight
 * (after-work callback); tail_maybe_free checks all three. */
#include "aggregator/querier/tail.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/logql/logql.h"
#include "aggregator/querier/querier.h"
#include "aggregator/tenant/tenant.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/websocket.h"

#define TAIL_PATH           "/loki/api/v1/tail"
#define DEFAULT_LIMIT       100
#define DEFAULT_SINCE_NS    (3600 * SL_NS_PER_SEC)
#define MAX_DELAY_FOR_S     5 /* Loki's MaxDelayForInTailing */
#define DEF_MAX_DURATION_NS (3600 * SL_NS_PER_SEC)
#define DEF_POLL_MS         1000
#define DEF_QUEUED_BYTES    (4u << 20)
#define DEF_PER_TENANT      10
#define DEF_TIMEOUT_NS      (60 * SL_NS_PER_SEC)
/* How late (beyond delay_for) an entry may arrive and still be sent: a
 * poll re-reads this much before its watermark. Agents ship in batches of
 * about a second; Promtail's default batch wait is 1 s as well. */
#define DEF_LATE_GRACE_NS (2 * SL_NS_PER_SEC)
/* Entries per poll after the first: a backlog is read in batches, the next
 * one right after the previous was written. */
#define POLL_BATCH 1000
/* dropped_entries reported per frame; beyond that drops are only counted. */
#define MAX_DROPPED_REPORTED 1000
/* Largest client message (clients only send control frames). */
#define MAX_CLIENT_MESSAGE (64u * 1024)
/* How long a closing connection may take to flush its last frames. */
#define CLOSE_LINGER_MS 1000

struct sl_tail_api {
    struct sl_ingester *ing;
    struct sl_tail_opts o;
    struct tail *tails; /* open or finishing */
    size_t ntails;      /* in the list */
    size_t nactive;     /* connection still open */
    bool freeing;
    struct sl_metric *m_active, *m_sent, *m_dropped, *m_poll_errors, *m_late;
    struct sl_metric_family *fam_ended;
    struct sl_log_limit log_drop, log_err;
};

/* An entry already handled (sent or dropped); h == 0 marks a free slot. */
struct seen {
    uint64_t h;
    int64_t ts;
};

/* One entry of a poll's answer. */
struct entry {
    int64_t ts;
    uint32_t stream; /* index into poll.streams */
    uint32_t seq;    /* position in the answer: a stable sort key */
    const char *line;
    size_t len;
};

struct poll {
    uv_work_t w;
    struct sl_querier_request qr;
    struct sl_querier_result res;
    json_t *root;   /* the parsed answer; entries point into it */
    char **streams; /* each stream's labels as compact JSON */
    size_t nstreams;
    struct entry *ents;
    size_t nents;
    bool initial;
    struct sl_ingester *ing;
};

struct tail {
    struct sl_tail_api *api;
    struct sl_http_conn *conn; /* NULL once the server closed it */
    uv_timer_t timer;
    bool timer_closed;
    bool polling;        /* a poll is on the thread pool */
    bool ending;         /* close frame sent */
    const char *end_why; /* metric label of why the tail ended */
    char *tenant, *query;
    size_t tenant_len, query_len;
    int64_t start_ns, delay_ns, limit, deadline_mono_ns;
    bool initial_done;
    int64_t low;       /* nothing older is sent (start, or the initial batch's cut) */
    int64_t watermark; /* end of the last poll that saw everything before it */
    int64_t newest;    /* newest timestamp sent (or dropped) */
    /* Catching up (the last poll was a full batch): the next poll starts at
     * resume, where the last batch ended, not a grace period back. */
    bool catching_up;
    int64_t resume;
    size_t n_at_resume; /* entries of the last batch at resume */
    struct seen *seen;  /* open addressing: what was sent since watermark - grace */
    size_t seen_n, seen_cap;
    struct sl_ws_parser wsp;
    struct poll poll;
    /* drops not yet reported to the client: a JSON array body, no brackets */
    struct sl_buf dropped;
    size_t ndropped;
    struct tail *prev, *next;
};

static void tail_schedule(struct tail *t, int64_t ms);

/* ---- lifecycle ---- */

static void api_destroy(struct sl_tail_api *api)
{
    sl_free(api);
}

static void poll_clear(struct poll *p)
{
    sl_buf_release(&p->res.body);
    memset(&p->res, 0, sizeof p->res);
    if (p->root)
        json_decref(p->root);
    p->root = NULL;
    for (size_t i = 0; i < p->nstreams; i++)
        free(p->streams[i]); /* from json_dumps */
    sl_free(p->streams);
    p->streams = NULL;
    p->nstreams = 0;
    sl_free(p->ents);
    p->ents = NULL;
    p->nents = 0;
}

static void tail_maybe_free(struct tail *t)
{
    if (t->conn || !t->timer_closed || t->polling)
        return;
    struct sl_tail_api *api = t->api;
    if (t->prev)
        t->prev->next = t->next;
    else
        api->tails = t->next;
    if (t->next)
        t->next->prev = t->prev;
    api->ntails--;
    poll_clear(&t->poll);
    sl_ws_parser_release(&t->wsp);
    sl_buf_release(&t->dropped);
    sl_free(t->seen);
    sl_free(t->tenant);
    sl_free(t->query);
    sl_free(t);
    if (api->freeing && api->ntails == 0)
        api_destroy(api);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct tail *t = h->data;
    t->timer_closed = true;
    tail_maybe_free(t);
}

/* The server has closed the connection (any reason). */
static void on_conn_closed(void *ud)
{
    struct tail *t = ud;
    const char *why = t->end_why ? t->end_why : "client_gone";
    t->conn = NULL;
    t->api->nactive--;
    if (t->api->m_active)
        sl_gauge_add(t->api->m_active, -1);
    if (t->api->fam_ended)
        sl_counter_inc(sl_metric_with(t->api->fam_ended, why));
    sl_log(SL_LOG_DEBUG, "tail ended", "tenant=%.*s reason=%s", (int)t->tenant_len, t->tenant, why);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}

/* Sends a close frame and lets the server close once it is written. */
static void tail_end(struct tail *t, const char *why, int code, const char *reason)
{
    if (!t->conn || t->ending)
        return;
    t->ending = true;
    t->end_why = why;
    struct sl_buf b = SL_BUF_INIT;
    sl_ws_close_append(&b, code, reason);
    sl_http_upgraded_write(t->conn, &b);
    sl_buf_release(&b);
    uv_timer_stop(&t->timer);
    sl_http_upgraded_close(t->conn, CLOSE_LINGER_MS);
}

static void on_server_shutdown(struct sl_http_conn *c, void *ud)
{
    (void)c;
    tail_end(ud, "shutdown", SL_WS_CLOSE_GOING_AWAY, "server shutting down");
}

/* ---- from the client ---- */

static void on_ws_data(struct sl_http_conn *c, const char *p, size_t n, void *ud)
{
    struct tail *t = ud;
    if (t->ending)
        return; /* only waiting for the close to be written */
    sl_ws_parser_feed(&t->wsp, p, n);
    struct sl_ws_msg m;
    int r;
    while ((r = sl_ws_parser_next(&t->wsp, &m)) > 0) {
        if (m.op == SL_WS_PING) {
            struct sl_buf b = SL_BUF_INIT;
            sl_ws_frame_append(&b, SL_WS_PONG, true, m.payload.ptr, m.payload.len, NULL);
            sl_http_upgraded_write(c, &b);
            sl_buf_release(&b);
        } else if (m.op == SL_WS_CLOSE) {
            /* Echo the code, as RFC 6455 5.5.1 asks. */
            tail_end(t, "client_close", m.close_code == 1005 ? SL_WS_CLOSE_NORMAL : m.close_code,
                     "");
            return;
        }
        /* Text, binary and pong frames carry nothing for a tail. */
    }
    if (r < 0) {
        sl_log_limited(&t->api->log_err, SL_LOG_INFO, "tail client protocol error",
                       "tenant=%.*s reason=\"%s\"", (int)t->tenant_len, t->tenant, t->wsp.reason);
        tail_end(t, "protocol_error", t->wsp.err_code, t->wsp.reason);
    }
}

static const struct sl_http_upgrade_ops ws_ops = {
    .on_data = on_ws_data,
    .on_shutdown = on_server_shutdown,
    .on_closed = on_conn_closed,
};

/* ---- polling (thread pool) ---- */

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Turns the querier's JSON answer into entries sorted by time. */
static int poll_parse(struct poll *p)
{
    json_error_t jerr;
    p->root = json_loadb(p->res.body.data, p->res.body.len, JSON_ALLOW_NUL, &jerr);
    json_t *result = json_object_get(json_object_get(p->root, "data"), "result");
    if (!json_is_array(result))
        return SL_EINVAL;
    size_t ns = json_array_size(result), total = 0;
    for (size_t i = 0; i < ns; i++)
        total += json_array_size(json_object_get(json_array_get(result, i), "values"));
    p->streams = sl_mallocarray(ns ? ns : 1, sizeof *p->streams);
    p->ents = sl_mallocarray(total ? total : 1, sizeof *p->ents);
    for (size_t i = 0; i < ns; i++) {
        json_t *s = json_array_get(result, i);
        json_t *vals = json_object_get(s, "values");
        p->streams[p->nstreams] =
            json_dumps(json_object_get(s, "stream"), JSON_COMPACT | JSON_SORT_KEYS);
        if (!p->streams[p->nstreams])
            return SL_EINVAL;
        for (size_t j = 0; j < json_array_size(vals); j++) {
            json_t *v = json_array_get(vals, j);
            const char *ts = json_string_value(json_array_get(v, 0));
            json_t *line = json_array_get(v, 1);
            if (!ts || !json_is_string(line))
                return SL_EINVAL;
            struct entry *e = &p->ents[p->nents];
            e->ts = strtoll(ts, NULL, 10);
            e->stream = (uint32_t)p->nstreams;
            e->seq = (uint32_t)p->nents;
            e->line = json_string_value(line);
            e->len = json_string_length(line);
            p->nents++;
        }
        p->nstreams++;
    }
    qsort(p->ents, p->nents, sizeof *p->ents, entry_cmp);
    return 0;
}

static void poll_work(uv_work_t *w)
{
    struct poll *p = (struct poll *)w;
    sl_querier_run(p->ing, &p->qr, &p->res);
    if (p->res.status == 200 && p->res.json && poll_parse(p)) {
        p->res.status = 500;
        p->res.json = false;
    }
}

/* ---- sending ---- */

static uint64_t entry_hash(const struct poll *p, const struct entry *e)
{
    const char *s = p->streams[e->stream];
    size_t sl = strlen(s);
    char stack[512];
    char *buf = sl + 1 + e->len <= sizeof stack ? stack : sl_malloc(sl + 1 + e->len);
    memcpy(buf, s, sl);
    buf[sl] = 0;
    if (e->len)
        memcpy(buf + sl + 1, e->line, e->len);
    uint64_t h = sl_xxh3(buf, sl + 1 + e->len);
    if (buf != stack)
        sl_free(buf);
    return h ? h : 1; /* 0 marks a free slot */
}

/* ---- the set of entries already handled ---- */

static bool seen_has(const struct tail *t, uint64_t h)
{
    if (!t->seen_cap)
        return false;
    for (size_t i = h & (t->seen_cap - 1);; i = (i + 1) & (t->seen_cap - 1)) {
        if (t->seen[i].h == h)
            return true;
        if (t->seen[i].h == 0)
            return false;
    }
}

static void seen_put(struct seen *tab, size_t cap, uint64_t h, int64_t ts)
{
    size_t i = h & (cap - 1);
    while (tab[i].h)
        i = (i + 1) & (cap - 1);
    tab[i] = (struct seen){h, ts};
}

/* Rebuilds the table with room for want entries, keeping those with
 * ts >= floor. */
static void seen_rebuild(struct tail *t, size_t want, int64_t floor)
{
    size_t cap = 16;
    while (cap < 2 * want)
        cap *= 2;
    struct seen *tab = sl_calloc(cap, sizeof *tab);
    size_t n = 0;
    for (size_t i = 0; i < t->seen_cap; i++)
        if (t->seen[i].h && t->seen[i].ts >= floor) {
            seen_put(tab, cap, t->seen[i].h, t->seen[i].ts);
            n++;
        }
    sl_free(t->seen);
    t->seen = tab;
    t->seen_cap = cap;
    t->seen_n = n;
}

static void seen_add(struct tail *t, uint64_t h, int64_t ts)
{
    if (2 * (t->seen_n + 1) > t->seen_cap)
        seen_rebuild(t, t->seen_n + 1, INT64_MIN);
    seen_put(t->seen, t->seen_cap, h, ts);
    t->seen_n++;
}

static void note_drop(struct tail *t, const struct poll *p, const struct entry *e)
{
    if (t->ndropped < MAX_DROPPED_REPORTED) {
        if (t->dropped.len)
            sl_buf_append_char(&t->dropped, ',');
        sl_buf_append_str(&t->dropped, "{\"labels\":");
        sl_buf_append_str(&t->dropped, p->streams[e->stream]);
        sl_buf_appendf(&t->dropped, ",\"timestamp\":\"%lld\"}", (long long)e->ts);
        t->ndropped++;
    }
}

struct frame {
    struct sl_buf b;
    struct sl_jsonw w;
    int64_t cur_stream; /* stream of the open group; -1: none */
    size_t nentries;
};

static void frame_add(struct frame *f, const struct poll *p, const struct entry *e)
{
    if (f->cur_stream != (int64_t)e->stream) {
        if (f->cur_stream >= 0)
            sl_buf_append_str(&f->b, "]}");
        if (f->nentries)
            sl_buf_append_char(&f->b, ',');
        sl_buf_append_str(&f->b, "{\"stream\":");
        sl_buf_append_str(&f->b, p->streams[e->stream]);
        sl_buf_append_str(&f->b, ",\"values\":[");
        f->cur_stream = e->stream;
    } else {
        sl_buf_append_char(&f->b, ',');
    }
    sl_jsonw_init(&f->w, &f->b);
    sl_jsonw_arr_open(&f->w);
    sl_jsonw_i64_str(&f->w, e->ts);
    sl_jsonw_bytes(&f->w, sl_bytes(e->line, e->len));
    sl_jsonw_arr_close(&f->w);
    f->nentries++;
}

/* Writes the new entries of a finished poll; returns how many the poll
 * held (a full batch means more may be waiting). */
static size_t tail_send(struct tail *t)
{
    struct sl_tail_api *api = t->api;
    struct poll *p = &t->poll;
    size_t bound = api->o.max_queued_bytes;
    size_t queued = sl_http_upgraded_queued(t->conn);
    struct frame f = {.b = SL_BUF_INIT, .cur_stream = -1};
    sl_buf_append_str(&f.b, "{\"streams\":[");
    size_t dropped_now = 0, late = 0;
    for (size_t i = 0; i < p->nents; i++) {
        const struct entry *e = &p->ents[i];
        if (e->ts < t->low)
            continue;
        uint64_t h = entry_hash(p, e);
        if (seen_has(t, h))
            continue;
        seen_add(t, h, e->ts);
        if (e->ts < t->newest)
            late++;
        else
            t->newest = e->ts;
        if (queued + f.b.len > bound) {
            note_drop(t, p, e);
            dropped_now++;
            continue;
        }
        frame_add(&f, p, e);
    }
    if (f.cur_stream >= 0)
        sl_buf_append_str(&f.b, "]}");
    sl_buf_append_str(&f.b, "]");
    bool report = t->ndropped && queued + f.b.len <= bound;
    if (report) {
        sl_buf_append_str(&f.b, ",\"dropped_entries\":[");
        sl_buf_append(&f.b, t->dropped.data, t->dropped.len);
        sl_buf_append_char(&f.b, ']');
        sl_buf_clear(&t->dropped);
        t->ndropped = 0;
    }
    sl_buf_append_char(&f.b, '}');
    if (late && api->m_late)
        sl_counter_add(api->m_late, (double)late);
    if (dropped_now) {
        if (api->m_dropped)
            sl_counter_add(api->m_dropped, (double)dropped_now);
        sl_log_limited(&api->log_drop, SL_LOG_WARN, "tail client too slow, entries dropped",
                       "tenant=%.*s dropped=%zu queued_bytes=%zu", (int)t->tenant_len, t->tenant,
                       dropped_now, queued);
    }
    if (f.nentries || report) {
        if (api->m_sent)
            sl_counter_add(api->m_sent, (double)f.nentries);
        struct sl_buf out = SL_BUF_INIT;
        sl_ws_frame_append(&out, SL_WS_TEXT, true, f.b.data, f.b.len, NULL);
        sl_http_upgraded_write(t->conn, &out);
        sl_buf_release(&out);
    }
    sl_buf_release(&f.b);
    return p->nents;
}

static void poll_done(uv_work_t *w, int status)
{
    struct poll *p = (struct poll *)w;
    struct tail *t = (struct tail *)((char *)p - offsetof(struct tail, poll));
    struct sl_tail_api *api = t->api;
    t->polling = false;
    if (!t->conn || t->ending) {
        poll_clear(p);
        tail_maybe_free(t);
        return;
    }
    int64_t next_ms = api->o.poll_interval_ms;
    if (status == 0 && p->res.status == 200) {
        size_t n = tail_send(t);
        bool full = n >= (size_t)p->qr.limit;
        if (p->initial) {
            /* The newest `limit` entries: older ones are never sent. The
             * backward query saw everything up to its end. */
            t->initial_done = true;
            if (full && n)
                t->low = p->ents[0].ts + 1;
            t->watermark = p->qr.end_ns;
        } else if (!full) {
            t->watermark = p->qr.end_ns;
            t->catching_up = false;
        } else {
            /* More are waiting: go on from the batch's last timestamp
             * (re-reading a grace period of a backlog would be quadratic),
             * at once unless the client lags. */
            t->catching_up = true;
            t->resume = p->ents[n - 1].ts;
            t->n_at_resume = 0;
            for (size_t i = n; i > 0 && p->ents[i - 1].ts == t->resume; i--)
                t->n_at_resume++;
            if (sl_http_upgraded_queued(t->conn) <= api->o.max_queued_bytes)
                next_ms = 0;
        }
        /* No later poll reads below this: forget what was sent there. */
        seen_rebuild(t, t->seen_n,
                     (t->catching_up ? t->resume : t->watermark) - api->o.late_grace_ns);
    } else {
        if (api->m_poll_errors)
            sl_counter_inc(api->m_poll_errors);
        sl_log_limited(&api->log_err, SL_LOG_WARN, "tail poll failed, retrying",
                       "tenant=%.*s status=%d reason=\"%.*s\"", (int)t->tenant_len, t->tenant,
                       status ? 503 : p->res.status, p->res.json ? 0 : (int)p->res.body.len,
                       p->res.body.data ? p->res.body.data : "");
        if (p->res.status == 400) {
            /* Cannot get better by retrying. */
            poll_clear(p);
            tail_end(t, "query_failed", SL_WS_CLOSE_POLICY, "query failed");
            return;
        }
    }
    poll_clear(p);
    tail_schedule(t, next_ms);
}

/* ---- the poll timer ---- */

static void on_tick(uv_timer_t *h)
{
    struct tail *t = h->data;
    struct sl_tail_api *api = t->api;
    if (!t->conn || t->ending || t->polling)
        return;
    if (sl_mono_ns() >= t->deadline_mono_ns) {
        tail_end(t, "max_duration", SL_WS_CLOSE_NORMAL, "tail max duration reached");
        return;
    }
    int64_t end = sl_now_ns() - t->delay_ns; /* [from, end): old enough to be final */
    struct poll *p = &t->poll;
    poll_clear(p);
    memset(&p->qr, 0, sizeof p->qr);
    p->qr.kind = SL_QUERIER_LOGS;
    p->qr.tenant = sl_bytes(t->tenant, t->tenant_len);
    p->qr.query = sl_bytes(t->query, t->query_len);
    p->qr.select = api->o.select;
    p->qr.deadline_mono_ns = sl_mono_ns() + api->o.query_timeout_ns;
    p->ing = api->ing;
    p->initial = !t->initial_done;
    if (p->initial) {
        /* The newest `limit` entries since start, like `tail -n`. */
        p->qr.start_ns = t->start_ns;
        p->qr.limit = t->limit;
        p->qr.forward = false;
        t->low = t->newest = t->watermark = t->start_ns;
    } else if (t->catching_up) {
        p->qr.start_ns = t->resume > t->low ? t->resume : t->low;
        p->qr.limit = POLL_BATCH + (int64_t)t->n_at_resume;
        p->qr.forward = true;
    } else {
        int64_t from = t->watermark - api->o.late_grace_ns;
        p->qr.start_ns = from > t->low ? from : t->low;
        p->qr.limit = POLL_BATCH + (int64_t)t->seen_n;
        p->qr.forward = true;
    }
    p->qr.end_ns = end;
    if (end <= p->qr.start_ns) { /* start is in the future */
        t->initial_done = true;
        tail_schedule(t, api->o.poll_interval_ms);
        return;
    }
    int rc = uv_queue_work(h->loop, &p->w, poll_work, poll_done);
    if (rc) {
        sl_log_limited(&api->log_err, SL_LOG_WARN, "tail poll not scheduled", "error=\"%s\"",
                       uv_strerror(rc));
        tail_schedule(t, api->o.poll_interval_ms);
        return;
    }
    t->polling = true;
}

static void tail_schedule(struct tail *t, int64_t ms)
{
    if (t->conn && !t->ending)
        uv_timer_start(&t->timer, on_tick, (uint64_t)(ms > 0 ? ms : 0), 0);
}

/* ---- the HTTP request ---- */

static bool token_in(const struct sl_bytes *v, const char *tok)
{
    if (!v)
        return false;
    size_t tl = strlen(tok);
    const char *p = v->ptr, *end = v->ptr + v->len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *te = comma ? comma : end;
        while (p < te && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = te;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - p) == tl && strncasecmp(p, tok, tl) == 0)
            return true;
        p = te + 1;
    }
    return false;
}

/* The WebSocket side of the request; answers and returns false if it is
 * not a valid opening handshake (gorilla/websocket's messages, as Loki). */
static bool check_handshake(struct sl_http_request *req)
{
    const char *why = NULL;
    const struct sl_bytes *ver = sl_http_req_header(req, "Sec-WebSocket-Version");
    const struct sl_bytes *key = sl_http_req_header(req, "Sec-WebSocket-Key");
    if (!token_in(sl_http_req_header(req, "Connection"), "upgrade"))
        why = "'upgrade' token not found in 'Connection' header";
    else if (!token_in(sl_http_req_header(req, "Upgrade"), "websocket"))
        why = "'websocket' token not found in 'Upgrade' header";
    if (why) {
        sl_http_respond_text(req, 400,
                             "websocket: the client is not using the websocket protocol: %s", why);
        return false;
    }
    if (!ver || !sl_bytes_eq_str(*ver, "13")) {
        sl_http_req_add_header(req, "Sec-WebSocket-Version", "13");
        sl_http_respond_text(req, 426,
                             "websocket: unsupported version: 13 not found in "
                             "'Sec-Websocket-Version' header");
        return false;
    }
    if (!key || !sl_ws_key_valid(*key)) {
        sl_http_respond_text(req, 400,
                             "websocket: not a websocket handshake: "
                             "'Sec-WebSocket-Key' header must be Base64 encoded value "
                             "of 16-byte length");
        return false;
    }
    return true;
}

static int parse_int_param(struct sl_bytes v, long long *out)
{
    char tmp[32];
    char *end;
    if (v.len == 0 || v.len >= sizeof tmp)
        return SL_EINVAL;
    memcpy(tmp, v.ptr, v.len);
    tmp[v.len] = 0;
    *out = strtoll(tmp, &end, 10);
    return *end ? SL_EINVAL : 0;
}

static void bad_param(struct sl_http_request *req, const char *name, struct sl_bytes v,
                      const char *why)
{
    sl_http_respond_text(req, 400, "invalid parameter \"%s\": cannot parse \"%.*s\": %s", name,
                         (int)v.len, v.ptr, why);
}

/* Query, limit, start, delay_for into t; answers and returns an error. */
static int parse_params(struct sl_tail_api *api, struct sl_http_request *req, struct tail *t)
{
    struct sl_bytes q = {0}, v;
    if (sl_http_req_param(req, "query", &q) || q.len == 0) {
        sl_http_respond_text(req, 400, "invalid parameter \"query\": the query is empty");
        return SL_EINVAL;
    }
    struct sl_logql_query *lq = NULL;
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_logql_parse(q.ptr, q.len, &lq, &err);
    if (rc) {
        sl_http_respond_text(req, 400, "%s", err.data ? err.data : "invalid query");
        sl_buf_release(&err);
        return rc;
    }
    sl_buf_release(&err);
    bool is_log = sl_logql_log_expr(lq) != NULL;
    sl_logql_query_free(lq);
    if (!is_log) {
        sl_http_respond_text(req, 400, "only log selector is supported");
        return SL_EINVAL;
    }
    long long x;
    t->limit = DEFAULT_LIMIT;
    if (sl_http_req_param(req, "limit", &v) == 0 && v.len) {
        if (parse_int_param(v, &x)) {
            bad_param(req, "limit", v, "not an integer");
            return SL_EINVAL;
        }
        if (x <= 0) {
            sl_http_respond_text(req, 400, "limit must be a positive value");
            return SL_EINVAL;
        }
        t->limit = x;
    }
    if (api->o.max_entries_limit > 0 && t->limit > api->o.max_entries_limit) {
        sl_http_respond_text(req, 400,
                             "max entries limit per query exceeded, limit > max_entries_limit "
                             "(%lld > %lld)",
                             (long long)t->limit, (long long)api->o.max_entries_limit);
        return SL_EINVAL;
    }
    t->delay_ns = 0;
    if (sl_http_req_param(req, "delay_for", &v) == 0 && v.len) {
        if (parse_int_param(v, &x) || x < 0) {
            bad_param(req, "delay_for", v, "not a non-negative integer (seconds)");
            return SL_EINVAL;
        }
        if (x > MAX_DELAY_FOR_S) {
            sl_http_respond_text(req, 400, "delay_for can't be greater than %d", MAX_DELAY_FOR_S);
            return SL_EINVAL;
        }
        t->delay_ns = x * SL_NS_PER_SEC;
    }
    t->start_ns = sl_now_ns() - DEFAULT_SINCE_NS;
    if (sl_http_req_param(req, "start", &v) == 0 && v.len &&
        sl_loki_time_parse(v.ptr, v.len, &t->start_ns)) {
        bad_param(req, "start", v, "not a valid timestamp");
        return SL_EINVAL;
    }
    t->query = sl_strndup(q.ptr, q.len);
    t->query_len = q.len;
    return 0;
}

static size_t tenant_tails(const struct sl_tail_api *api, struct sl_bytes tenant)
{
    size_t n = 0;
    for (const struct tail *t = api->tails; t; t = t->next)
        n += t->conn && sl_bytes_eq(sl_bytes(t->tenant, t->tenant_len), tenant);
    return n;
}

static void tail_free_unstarted(struct tail *t)
{
    sl_free(t->query);
    sl_free(t->tenant);
    sl_free(t);
}

static void handle_tail(struct sl_http_request *req, void *ud)
{
    struct sl_tail_api *api = ud;
    struct sl_bytes tenant;
    if (sl_tenant_of_request(req, api->o.auth_enabled, &tenant))
        return;
    struct tail *t = SL_NEW(struct tail);
    if (parse_params(api, req, t)) {
        tail_free_unstarted(t);
        return;
    }
    size_t n = tenant_tails(api, tenant);
    if ((int)n >= api->o.max_tails_per_tenant) {
        sl_http_respond_text(req, 400,
                             "max concurrent tail requests limit exceeded, count > limit (%zu > "
                             "%d)",
                             n + 1, api->o.max_tails_per_tenant);
        tail_free_unstarted(t);
        return;
    }
    if (!check_handshake(req)) {
        tail_free_unstarted(t);
        return;
    }
    char accept[SL_WS_ACCEPT_LEN];
    sl_ws_accept_key(*sl_http_req_header(req, "Sec-WebSocket-Key"), accept);
    sl_http_req_add_header(req, "Upgrade", "websocket");
    sl_http_req_add_header(req, "Connection", "Upgrade");
    sl_http_req_add_header(req, "Sec-WebSocket-Accept", accept);
    t->tenant = sl_strndup(tenant.ptr, tenant.len);
    t->tenant_len = tenant.len;
    t->api = api;
    t->deadline_mono_ns = sl_mono_ns() + api->o.max_duration_ns;
    sl_ws_parser_init(&t->wsp, MAX_CLIENT_MESSAGE);
    t->conn = sl_http_respond_upgrade(req, &ws_ops, t);
    if (!t->conn) { /* the client left meanwhile */
        sl_ws_parser_release(&t->wsp);
        tail_free_unstarted(t);
        return;
    }
    uv_timer_init(api->o.loop, &t->timer);
    t->timer.data = t;
    t->next = api->tails;
    if (api->tails)
        api->tails->prev = t;
    api->tails = t;
    api->ntails++;
    api->nactive++;
    if (api->m_active)
        sl_gauge_add(api->m_active, 1);
    sl_log(SL_LOG_DEBUG, "tail started", "tenant=%.*s delay_for_s=%lld limit=%lld",
           (int)t->tenant_len, t->tenant, (long long)(t->delay_ns / SL_NS_PER_SEC),
           (long long)t->limit);
    tail_schedule(t, 0);
}

/* ---- api ---- */

struct sl_tail_api *sl_tail_api_new(struct sl_http_server *srv, struct sl_ingester *ing,
                                    struct sl_metrics *m, const struct sl_tail_opts *o)
{
    struct sl_tail_api *api = SL_NEW(struct sl_tail_api);
    api->ing = ing;
    api->o = *o;
    if (api->o.max_duration_ns <= 0)
        api->o.max_duration_ns = DEF_MAX_DURATION_NS;
    if (api->o.poll_interval_ms <= 0)
        api->o.poll_interval_ms = DEF_POLL_MS;
    if (api->o.max_queued_bytes == 0)
        api->o.max_queued_bytes = DEF_QUEUED_BYTES;
    if (api->o.max_tails_per_tenant <= 0)
        api->o.max_tails_per_tenant = DEF_PER_TENANT;
    if (api->o.query_timeout_ns <= 0)
        api->o.query_timeout_ns = DEF_TIMEOUT_NS;
    if (api->o.late_grace_ns <= 0)
        api->o.late_grace_ns = DEF_LATE_GRACE_NS;
    if (m) {
        api->m_active = sl_metric_with(
            sl_metrics_gauge(m, "sluice_aggregator_tail_active", "Live tails open.", NULL));
        api->m_sent = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_tail_entries_sent_total", "Entries sent to live tails.", NULL));
        api->m_dropped = sl_metric_with(
            sl_metrics_counter(m, "sluice_aggregator_tail_dropped_entries_total",
                               "Entries not sent to a live tail whose client reads too slowly "
                               "(reported to it in dropped_entries).",
                               NULL));
        api->fam_ended = sl_metrics_counter(
            m, "sluice_aggregator_tail_ended_total",
            "Live tails ended, by reason: client_close, client_gone, protocol_error, "
            "max_duration, shutdown, query_failed.",
            "reason");
        api->m_late = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_tail_late_entries_total",
            "Entries sent to a live tail after newer ones: they arrived later than delay_for, "
            "within the grace period.",
            NULL));
        api->m_poll_errors = sl_metric_with(
            sl_metrics_counter(m, "sluice_aggregator_tail_poll_errors_total",
                               "Live tail polls that failed (retried at the next tick).", NULL));
    }
    sl_http_server_route(srv, "GET", TAIL_PATH, false, handle_tail, api);
    return api;
}

void sl_tail_api_free(struct sl_tail_api *t)
{
    if (!t)
        return;
    if (t->ntails) {
        t->freeing = true; /* the last tail frees it */
        return;
    }
    api_destroy(t);
}

size_t sl_tail_api_active(const struct sl_tail_api *t)
{
    return t->nactive;
}
