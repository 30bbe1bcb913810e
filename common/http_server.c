/* HTTP/1.1 server: libuv for I/O, http-parser for the request grammar.
 *
 * A connection parses one request at a time. on_message_complete pauses the
 * parser, so bytes of a pipelined next request stay in conn->in until the
 * current response has been written. Reading stays armed while a handler
 * holds the request, so a client that hangs up is noticed at once (the
 * handler's gone callback runs and a long query can stop); bytes that arrive
 * meanwhile are only buffered, and reading pauses once a read's worth is
 * waiting, which bounds what one connection can buffer.
 *
 * The parsing core (conn_drive and the parser callbacks) does not touch the
 * socket: a "detached" connection captures responses in a buffer instead, so
 * the fuzz target runs the real state machine and limits without sockets. */
#include "common/http_server.h"

#include <http_parser.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"

#define DEF_MAX_HEADER_BYTES (64u * 1024)
#define DEF_MAX_BODY_BYTES   (64u * 1024 * 1024)
#define DEF_READ_TIMEOUT_MS  30000
#define DEF_IDLE_TIMEOUT_MS  120000
/* One read's worth; also the most a connection buffers of a pipelined request. */
#define READ_CHUNK 65536
/* Per header line: ": " and CRLF, which the callbacks do not report. */
#define HEADER_LINE_OVERHEAD 4
/* More header lines than this is an attack, not a client: 431. */
#define MAX_HEADERS     256
#define UNMATCHED_ROUTE "unmatched"
#define MAX_PRERESERVE  (1u << 20)

struct route {
    char *method; /* NULL: any */
    char *path;
    size_t path_len;
    bool prefix;
    sl_http_handler h;
    void *ud;
    struct sl_metric *m_duration;
    struct route *next;
};

struct hdr_span {
    size_t name_off, name_len, val_off, val_len;
};

struct sl_http_conn {
    struct sl_http_server *srv;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int open_handles;
    bool detached;           /* no socket: responses go to out (tests, fuzzing) */
    bool closing;            /* close requested; no more parsing or writing */
    bool reading;            /* uv_read_start active */
    bool driving;            /* inside conn_drive (re-entrancy guard) */
    bool handling;           /* req is with a handler */
    bool writing;            /* response write in flight */
    bool close_after;        /* close once the response is written */
    bool in_message;         /* a request has begun but is not complete */
    bool msg_done;           /* set by on_message_complete */
    bool peer_eof;           /* the client shut down its side while a request was in flight */
    sl_http_gone_cb gone_cb; /* the handler's, while it holds the request */
    void *gone_ud;
    http_parser parser;
    struct sl_buf in; /* received, not yet parsed */
    /* request being parsed or handled */
    struct sl_http_request *req;
    const struct route *route;
    struct sl_buf hbuf; /* header names and values as received */
    struct hdr_span *spans;
    size_t nspans, cap_spans;
    bool last_was_value;
    size_t header_bytes;
    struct sl_buf url;
    int err_status; /* set by a callback that aborts the parse */
    const char *err_reason;
    const char *err_metric;
    bool keep_alive;
    bool is_head;
    struct sl_buf out; /* detached: captured output */
    /* after sl_http_respond_upgrade: */
    bool upgraded;
    bool up_lingering; /* sl_http_upgraded_close: close once up_queued is 0 */
    const struct sl_http_upgrade_ops *up_ops;
    void *up_ud;
    size_t up_queued; /* bytes handed to uv_write, not yet written */
    struct sl_http_conn *prev, *next;
};

struct sl_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    bool closing;
    bool listener_closed;
    size_t max_header_bytes;
    size_t max_body_bytes;
    int64_t read_timeout_ms;
    int64_t idle_timeout_ms;
    struct route *routes, **routes_tail;
    struct sl_http_conn *conns;
    struct sl_metric_family *fam_requests;
    struct sl_metric_family *fam_duration;
    struct sl_metric_family *fam_dropped;
    struct sl_metric *m_unmatched_duration;
    void (*done)(void *ud);
    void *done_ud;
    int port;
};

struct write_req {
    uv_write_t w;
    struct sl_http_conn *c;
    struct sl_buf head;
    struct sl_buf body;
    bool is_response;
    size_t up_bytes; /* upgraded connection: bytes this write carries */
};

static struct sl_log_limit drop_log;

static void conn_drive(struct sl_http_conn *c);
static void conn_close(struct sl_http_conn *c);
static void write_done(struct sl_http_conn *c, bool is_response, int status);
static void start_reading(struct sl_http_conn *c);

/* ---- helpers ---- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes %XX (and '+' as space when plus is set) from s into out (at least
 * s.len bytes); malformed escapes are kept literally. Returns the length. */
static size_t url_decode(struct sl_bytes s, char *out, bool plus)
{
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.ptr[i];
        if (ch == '%' && i + 2 < s.len) {
            int hi = hexval((unsigned char)s.ptr[i + 1]), lo = hexval((unsigned char)s.ptr[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out[o++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        out[o++] = (plus && ch == '+') ? ' ' : ch;
    }
    return o;
}

static struct sl_bytes trim(struct sl_bytes v)
{
    while (v.len && (v.ptr[0] == ' ' || v.ptr[0] == '\t')) {
        v.ptr++;
        v.len--;
    }
    while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
        v.len--;
    return v;
}

static bool bytes_ieq(struct sl_bytes a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && strncasecmp(a.ptr, s, n) == 0;
}

static int64_t mono_ns(void)
{
    return (int64_t)uv_hrtime();
}

static void count_drop(struct sl_http_server *s, const char *reason)
{
    if (s->fam_dropped)
        sl_counter_inc(sl_metric_with(s->fam_dropped, reason));
    sl_log_limited(&drop_log, SL_LOG_INFO, "http connection dropped", "reason=%s", reason);
}

/* ---- query and form parameters ---- */

/* True if the form-encoded key k decodes to name. */
static bool key_matches(struct sl_bytes k, const char *name)
{
    size_t n = strlen(name);
    if (k.len < n)
        return false;
    if (k.len <= 256) {
        char tmp[256];
        size_t l = url_decode(k, tmp, true);
        return l == n && memcmp(tmp, name, n) == 0;
    }
    char *tmp = sl_malloc(k.len);
    size_t l = url_decode(k, tmp, true);
    bool eq = l == n && memcmp(tmp, name, n) == 0;
    sl_free(tmp);
    return eq;
}

struct sl_bytes sl_http_form_decode(struct sl_arena *arena, struct sl_bytes v)
{
    char *d = sl_arena_alloc(arena, v.len + 1);
    size_t l = url_decode(v, d, true);
    d[l] = 0;
    return sl_bytes(d, l);
}

int sl_http_form_param(struct sl_arena *arena, struct sl_bytes form, const char *name,
                       struct sl_bytes *out)
{
    const char *p = form.ptr, *end = form.ptr + form.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        struct sl_bytes k = sl_bytes(p, (size_t)((eq ? eq : pe) - p));
        if (key_matches(k, name)) {
            *out = sl_http_form_decode(arena, eq ? sl_bytes(eq + 1, (size_t)(pe - eq - 1))
                                                 : sl_bytes("", 0));
            return 0;
        }
        p = pe + 1;
    }
    return SL_ENOENT;
}

int sl_http_req_param(struct sl_http_request *req, const char *name, struct sl_bytes *out)
{
    return sl_http_form_param(&req->arena, req->query, name, out);
}

const struct sl_bytes *sl_http_req_header(const struct sl_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (bytes_ieq(req->headers[i].name, name))
            return &req->headers[i].value;
    return NULL;
}

bool sl_http_req_gone(const struct sl_http_request *req)
{
    return req->conn == NULL || req->conn->closing || req->conn->peer_eof;
}

bool sl_http_req_on_gone(struct sl_http_request *req, sl_http_gone_cb cb, void *ud)
{
    struct sl_http_conn *c = req->conn;
    if (sl_http_req_gone(req))
        return false;
    c->gone_cb = cb;
    c->gone_ud = ud;
    return true;
}

/* The client of the request in flight has gone: tell its handler, once. */
static void conn_notify_gone(struct sl_http_conn *c)
{
    sl_http_gone_cb cb = c->gone_cb;
    c->gone_cb = NULL;
    if (cb && c->handling && c->req)
        cb(c->req, c->gone_ud);
}

void sl_http_req_add_header(struct sl_http_request *req, const char *name, const char *value)
{
    sl_buf_append_str(&req->resp_headers, name);
    sl_buf_append(&req->resp_headers, ": ", 2);
    sl_buf_append_str(&req->resp_headers, value);
    sl_buf_append(&req->resp_headers, "\r\n", 2);
}

/* ---- output ---- */

static void on_write(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct sl_http_conn *c = wr->c;
    bool is_response = wr->is_response;
    c->up_queued -= wr->up_bytes;
    sl_buf_release(&wr->head);
    sl_buf_release(&wr->body);
    sl_free(wr);
    write_done(c, is_response, status);
}

/* Queues head (+ body), taking both buffers' memory. */
static void conn_write(struct sl_http_conn *c, struct sl_buf *head, struct sl_buf *body,
                       bool is_response)
{
    if (c->detached) {
        sl_buf_append(&c->out, head->data, head->len);
        if (body)
            sl_buf_append(&c->out, body->data, body->len);
        sl_buf_release(head);
        if (body)
            sl_buf_release(body);
        write_done(c, is_response, 0);
        return;
    }
    struct write_req *wr = SL_NEW(struct write_req);
    wr->c = c;
    wr->is_response = is_response;
    wr->head = *head;
    sl_buf_init(head);
    if (body) {
        wr->body = *body;
        sl_buf_init(body);
    }
    uv_buf_t bufs[2] = {uv_buf_init(wr->head.data, (unsigned)wr->head.len),
                        uv_buf_init(wr->body.data, (unsigned)wr->body.len)};
    int r = uv_write(&wr->w, (uv_stream_t *)&c->tcp, bufs, wr->body.len ? 2 : 1, on_write);
    if (r < 0) {
        sl_buf_release(&wr->head);
        sl_buf_release(&wr->body);
        sl_free(wr);
        write_done(c, is_response, r);
    }
}

static void timer_start(struct sl_http_conn *c, int64_t ms, uv_timer_cb cb)
{
    if (!c->detached && !c->closing)
        uv_timer_start(&c->timer, cb, (uint64_t)ms, 0);
}

static void timer_stop(struct sl_http_conn *c)
{
    if (!c->detached && !c->closing)
        uv_timer_stop(&c->timer);
}

static void on_idle_timeout(uv_timer_t *t)
{
    struct sl_http_conn *c = t->data;
    conn_close(c);
}

static void on_read_timeout(uv_timer_t *t)
{
    struct sl_http_conn *c = t->data;
    count_drop(c->srv, c->writing ? "write_timeout" : "read_timeout");
    conn_close(c);
}

static void free_request(struct sl_http_request *req)
{
    sl_buf_release(&req->body);
    sl_buf_release(&req->resp_headers);
    sl_arena_release(&req->arena);
    sl_free(req);
}

static void conn_maybe_free(struct sl_http_conn *c);

/* After any write: a finished response lets the next request through. */
static void write_done(struct sl_http_conn *c, bool is_response, int status)
{
    if (status < 0 && !c->closing) {
        count_drop(c->srv, "write_error");
        conn_close(c);
    }
    if (c->upgraded && c->up_lingering && c->up_queued == 0)
        conn_close(c);
    if (!is_response)
        return;
    c->writing = false;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (c->close_after || c->srv->closing) {
        conn_close(c);
        return;
    }
    timer_start(c, c->srv->idle_timeout_ms, on_idle_timeout);
    conn_drive(c);
}

static void record_metrics(struct sl_http_conn *c, struct sl_http_request *req, int status)
{
    struct sl_http_server *s = c->srv;
    if (!s->fam_requests)
        return;
    const char *route = c->route ? c->route->path : UNMATCHED_ROUTE;
    char code[16];
    snprintf(code, sizeof(code), "%d", status);
    sl_counter_inc(sl_metric_with(s->fam_requests, route, code));
    struct sl_metric *h = c->route ? c->route->m_duration : s->m_unmatched_duration;
    if (req)
        sl_histogram_observe(h, (double)(mono_ns() - req->start_mono_ns) / 1e9);
}

/* Builds and queues the status line and headers; body is taken. */
static void write_response(struct sl_http_conn *c, int status, const char *content_type,
                           struct sl_buf *extra_headers, struct sl_buf *body)
{
    bool close = c->close_after || !c->keep_alive || c->srv->closing;
    bool no_body = (status >= 100 && status < 200) || status == 204 || status == 304;
    const char *reason = http_status_str((enum http_status)status);
    struct sl_buf head = SL_BUF_INIT;
    sl_buf_appendf(&head, "HTTP/1.1 %d %s\r\n", status,
                   strcmp(reason, "<unknown>") == 0 ? "Status" : reason);
    if (content_type && !no_body)
        sl_buf_appendf(&head, "Content-Type: %s\r\n", content_type);
    if (!no_body)
        sl_buf_appendf(&head, "Content-Length: %zu\r\n", body->len);
    if (close)
        sl_buf_append_str(&head, "Connection: close\r\n");
    else if (c->parser.http_major == 1 && c->parser.http_minor == 0)
        sl_buf_append_str(&head, "Connection: keep-alive\r\n");
    if (extra_headers)
        sl_buf_append(&head, extra_headers->data, extra_headers->len);
    sl_buf_append(&head, "\r\n", 2);
    if (no_body || c->is_head)
        sl_buf_clear(body);
    c->close_after = close;
    c->writing = true;
    timer_start(c, c->srv->read_timeout_ms, on_read_timeout);
    conn_write(c, &head, body, true);
}

void sl_http_respond_buf(struct sl_http_request *req, int status, const char *content_type,
                         struct sl_buf *body)
{
    struct sl_http_conn *c = req->conn;
    if (req->responded) {
        sl_log(SL_LOG_ERROR, "http handler responded twice", "status=%d", status);
        return;
    }
    req->responded = true;
    record_metrics(c, req, status);
    c->req = NULL;
    c->handling = false;
    c->gone_cb = NULL;
    if (c->closing) {
        /* Client gone: discard the response. */
        sl_buf_release(body);
        free_request(req);
        conn_maybe_free(c);
        return;
    }
    struct sl_buf extra = req->resp_headers;
    sl_buf_init(&req->resp_headers);
    write_response(c, status, content_type, &extra, body);
    sl_buf_release(&extra);
    free_request(req);
}

void sl_http_respond(struct sl_http_request *req, int status, const char *content_type,
                     const void *body, size_t len)
{
    struct sl_buf b = SL_BUF_INIT;
    if (len)
        sl_buf_append(&b, body, len);
    sl_http_respond_buf(req, status, content_type, &b);
    sl_buf_release(&b);
}

void sl_http_respond_text(struct sl_http_request *req, int status, const char *fmt, ...)
{
    struct sl_buf b = SL_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    sl_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    sl_buf_append_char(&b, '\n');
    sl_http_respond_buf(req, status, "text/plain; charset=utf-8", &b);
    sl_buf_release(&b);
}

/* ---- upgraded connections ---- */

static void on_upgrade_timer(uv_timer_t *t)
{
    struct sl_http_conn *c = t->data;
    if (c->up_lingering)
        conn_close(c); /* the peer did not take the last bytes in time */
    else
        conn_drive(c); /* bytes that came with the request */
}

struct sl_http_conn *sl_http_respond_upgrade(struct sl_http_request *req,
                                             const struct sl_http_upgrade_ops *ops, void *ud)
{
    struct sl_http_conn *c = req->conn;
    if (req->responded) {
        sl_log(SL_LOG_ERROR, "http handler responded twice", "status=%d", 101);
        return NULL;
    }
    req->responded = true;
    record_metrics(c, req, 101);
    c->req = NULL;
    c->handling = false;
    c->gone_cb = NULL;
    if (c->closing || c->peer_eof) {
        if (!c->closing)
            conn_close(c);
        free_request(req);
        conn_maybe_free(c);
        return NULL;
    }
    struct sl_buf head = SL_BUF_INIT;
    sl_buf_append_str(&head, "HTTP/1.1 101 Switching Protocols\r\n");
    sl_buf_append(&head, req->resp_headers.data, req->resp_headers.len);
    sl_buf_append(&head, "\r\n", 2);
    free_request(req);
    c->upgraded = true;
    c->up_ops = ops;
    c->up_ud = ud;
    c->close_after = false;
    timer_stop(c);
    sl_http_upgraded_write(c, &head);
    sl_buf_release(&head);
    if (!c->detached && !c->closing) {
        if (c->in.len > 0)
            uv_timer_start(&c->timer, on_upgrade_timer, 0, 0);
        start_reading(c);
    }
    return c;
}

void sl_http_upgraded_write(struct sl_http_conn *c, struct sl_buf *data)
{
    if (c->closing || !data->len) {
        sl_buf_release(data);
        return;
    }
    size_t n = data->len;
    if (c->detached) {
        conn_write(c, data, NULL, false);
        return;
    }
    c->up_queued += n;
    /* conn_write takes the buffers; on_write subtracts up_bytes. */
    struct write_req *wr = SL_NEW(struct write_req);
    wr->c = c;
    wr->up_bytes = n;
    wr->head = *data;
    sl_buf_init(data);
    uv_buf_t b = uv_buf_init(wr->head.data, (unsigned)wr->head.len);
    int r = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r < 0) {
        c->up_queued -= n;
        sl_buf_release(&wr->head);
        sl_free(wr);
        write_done(c, false, r);
    }
}

size_t sl_http_upgraded_queued(const struct sl_http_conn *c)
{
    return c->closing ? 0 : c->up_queued;
}

void sl_http_upgraded_close(struct sl_http_conn *c, int64_t linger_ms)
{
    if (c->closing)
        return;
    if (c->up_queued == 0 || c->detached) {
        conn_close(c);
        return;
    }
    /* Reading goes on: closing with unread bytes (the peer's own close
     * frame, say) would reset the connection instead of ending it. */
    c->up_lingering = true;
    uv_timer_start(&c->timer, on_upgrade_timer, (uint64_t)(linger_ms > 0 ? linger_ms : 0), 0);
}

/* A request that cannot be parsed: answer, then close. */
static void respond_error(struct sl_http_conn *c, int status, const char *reason,
                          const char *metric_reason)
{
    count_drop(c->srv, metric_reason);
    c->route = NULL;
    record_metrics(c, c->req, status);
    if (c->req) {
        free_request(c->req);
        c->req = NULL;
    }
    c->in_message = false;
    c->close_after = true;
    c->is_head = false;
    struct sl_buf body = SL_BUF_INIT;
    sl_buf_appendf(&body, "%s\n", reason);
    write_response(c, status, "text/plain; charset=utf-8", NULL, &body);
    sl_buf_release(&body);
}

/* ---- parser callbacks ---- */

static int fail(struct sl_http_conn *c, int status, const char *reason, const char *metric)
{
    c->err_status = status;
    c->err_reason = reason;
    c->err_metric = metric;
    return -1;
}

static int add_header_bytes(struct sl_http_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->max_header_bytes)
        return fail(c, 431, "request header fields too large", "header_too_large");
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct sl_http_conn *c = p->data;
    struct sl_http_request *req = SL_NEW(struct sl_http_request);
    req->server = c->srv;
    req->conn = c;
    req->start_mono_ns = mono_ns();
    sl_arena_init(&req->arena, 4096);
    sl_buf_init(&req->body);
    sl_buf_init(&req->resp_headers);
    c->req = req;
    c->route = NULL;
    c->in_message = true;
    c->msg_done = false;
    c->header_bytes = 0;
    c->nspans = 0;
    c->last_was_value = false;
    c->is_head = false;
    sl_buf_clear(&c->hbuf);
    sl_buf_clear(&c->url);
    /* The whole request must arrive within read_timeout of its first byte:
     * trickling bytes do not extend the deadline. */
    timer_start(c, c->srv->read_timeout_ms, on_read_timeout);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct sl_http_conn *c = p->data;
    if (add_header_bytes(c, len))
        return -1;
    sl_buf_append(&c->url, at, len);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct sl_http_conn *c = p->data;
    if (add_header_bytes(c, len))
        return -1;
    if (c->nspans == 0 || c->last_was_value) {
        if (c->nspans == MAX_HEADERS)
            return fail(c, 431, "too many header fields", "header_too_large");
        if (c->nspans == c->cap_spans) {
            c->cap_spans = c->cap_spans ? c->cap_spans * 2 : 16;
            c->spans = sl_reallocarray(c->spans, c->cap_spans, sizeof(*c->spans));
        }
        c->spans[c->nspans++] = (struct hdr_span){c->hbuf.len, 0, 0, 0};
        c->last_was_value = false;
        if (add_header_bytes(c, HEADER_LINE_OVERHEAD))
            return -1;
    }
    sl_buf_append(&c->hbuf, at, len);
    c->spans[c->nspans - 1].name_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct sl_http_conn *c = p->data;
    if (add_header_bytes(c, len))
        return -1;
    if (c->nspans == 0)
        return 0;
    struct hdr_span *sp = &c->spans[c->nspans - 1];
    if (!c->last_was_value) {
        sp->val_off = c->hbuf.len;
        c->last_was_value = true;
    }
    sl_buf_append(&c->hbuf, at, len);
    sp->val_len += len;
    return 0;
}

/* Fills path and query from the raw target; false if it is not a valid URL. */
static bool split_url(struct sl_http_conn *c, struct sl_http_request *req)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (req->url.len > UINT16_MAX ||
        http_parser_parse_url(req->url.ptr, req->url.len, c->parser.method == HTTP_CONNECT, &u))
        return false;
    struct sl_bytes path = SL_BYTES_LIT("/");
    if (u.field_set & (1u << UF_PATH))
        path = sl_bytes(req->url.ptr + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    char *d = sl_arena_alloc(&req->arena, path.len + 1);
    size_t l = url_decode(path, d, false);
    d[l] = 0;
    req->path = sl_bytes(d, l);
    req->query = sl_bytes("", 0);
    if (u.field_set & (1u << UF_QUERY))
        req->query =
            sl_bytes(req->url.ptr + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    return true;
}

static void send_continue(struct sl_http_conn *c)
{
    struct sl_buf head = SL_BUF_INIT;
    sl_buf_append_str(&head, "HTTP/1.1 100 Continue\r\n\r\n");
    conn_write(c, &head, NULL, false);
}

static int on_headers_complete(http_parser *p)
{
    struct sl_http_conn *c = p->data;
    struct sl_http_request *req = c->req;
    struct sl_http_server *s = c->srv;
    char *hb = sl_arena_memdup(&req->arena, c->hbuf.data ? c->hbuf.data : "", c->hbuf.len);
    req->headers = sl_arena_alloc(&req->arena, (c->nspans + 1) * sizeof(*req->headers));
    req->nheaders = c->nspans;
    for (size_t i = 0; i < c->nspans; i++) {
        struct hdr_span *sp = &c->spans[i];
        req->headers[i].name = sl_bytes(hb + sp->name_off, sp->name_len);
        req->headers[i].value = trim(sl_bytes(hb + sp->val_off, sp->val_len));
    }
    req->url = sl_arena_bytes(&req->arena, sl_buf_bytes(&c->url));
    req->method = http_method_str((enum http_method)p->method);
    c->is_head = p->method == HTTP_HEAD;
    c->keep_alive = http_should_keep_alive(p) != 0;
    if (!split_url(c, req))
        return fail(c, 400, "invalid request target", "bad_request");
    bool chunked = (p->flags & F_CHUNKED) != 0;
    if (!chunked && (p->flags & F_CONTENTLENGTH)) {
        if (p->content_length > s->max_body_bytes)
            return fail(c, 413, "request body too large", "body_too_large");
        /* Reserve up front, but not a whole claimed 64 MiB before a byte arrived. */
        sl_buf_reserve(&req->body, (size_t)(p->content_length < MAX_PRERESERVE ? p->content_length
                                                                               : MAX_PRERESERVE));
    }
    const struct sl_bytes *expect = sl_http_req_header(req, "Expect");
    if (expect && p->http_major == 1 && p->http_minor >= 1 && bytes_ieq(*expect, "100-continue") &&
        (chunked || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0)))
        send_continue(c);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct sl_http_conn *c = p->data;
    struct sl_buf *b = &c->req->body;
    if (len > c->srv->max_body_bytes - b->len)
        return fail(c, 413, "request body too large", "body_too_large");
    sl_buf_append(b, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct sl_http_conn *c = p->data;
    c->msg_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- dispatch ---- */

static bool path_matches(const struct route *r, struct sl_bytes path)
{
    if (r->prefix)
        return path.len >= r->path_len && memcmp(path.ptr, r->path, r->path_len) == 0;
    return path.len == r->path_len && memcmp(path.ptr, r->path, r->path_len) == 0;
}

static void dispatch(struct sl_http_conn *c)
{
    struct sl_http_request *req = c->req;
    struct sl_http_server *s = c->srv;
    c->in_message = false;
    c->msg_done = false;
    c->handling = true;
    if (c->parser.upgrade)
        c->close_after = true; /* no protocol switching: answer, then close */
    /* Reading stays on: a hang-up must reach the handler (conn_peer_closed). */
    /* The handler has no deadline here; read_timeout resumes at the write. */
    timer_stop(c);
    const struct route *path_only = NULL;
    for (const struct route *r = s->routes; r; r = r->next) {
        if (!path_matches(r, req->path))
            continue;
        if (!r->method || strcmp(r->method, req->method) == 0) {
            c->route = r;
            r->h(req, r->ud);
            return;
        }
        if (!path_only)
            path_only = r;
    }
    if (path_only) {
        struct sl_buf allow = SL_BUF_INIT;
        for (const struct route *r = s->routes; r; r = r->next)
            if (r->method && path_matches(r, req->path)) {
                if (allow.len)
                    sl_buf_append(&allow, ", ", 2);
                sl_buf_append_str(&allow, r->method);
            }
        sl_http_req_add_header(req, "Allow", allow.data);
        sl_buf_release(&allow);
        sl_http_respond_text(req, 405, "method not allowed");
        return;
    }
    sl_http_respond_text(req, 404, "not found");
}

static void start_reading(struct sl_http_conn *c);

/* Parses buffered bytes until a request is complete (then dispatches it),
 * the buffer is empty, or the connection fails. */
static void conn_drive(struct sl_http_conn *c)
{
    if (c->driving)
        return;
    c->driving = true;
    if (c->upgraded) {
        /* The bytes belong to the new protocol now. */
        if (!c->closing && c->in.len > 0 && c->up_ops->on_data)
            c->up_ops->on_data(c, c->in.data, c->in.len, c->up_ud);
        sl_buf_clear(&c->in);
        c->driving = false;
        start_reading(c);
        return;
    }
    /* A handler may switch protocols (upgraded) inside dispatch: stop then. */
    while (!c->closing && !c->handling && !c->writing && !c->upgraded && c->in.len > 0) {
        c->err_status = 0;
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in.data, c->in.len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            sl_buf_consume(&c->in, n);
            http_parser_pause(&c->parser, 0);
            if (c->msg_done)
                dispatch(c);
            continue;
        }
        if (e != HPE_OK) {
            int status = c->err_status ? c->err_status : (e == HPE_HEADER_OVERFLOW ? 431 : 400);
            const char *reason = c->err_status ? c->err_reason : http_errno_description(e);
            const char *metric = c->err_status              ? c->err_metric
                                 : e == HPE_HEADER_OVERFLOW ? "header_too_large"
                                                            : "bad_request";
            sl_buf_clear(&c->in);
            respond_error(c, status, reason, metric);
            break;
        }
        sl_buf_consume(&c->in, n);
        if (n == 0)
            break; /* cannot happen without an error; never spin */
    }
    c->driving = false;
    if (c->closing || c->handling || c->writing)
        return;
    if (c->peer_eof) { /* every complete request is answered: nothing more comes */
        if (c->in_message)
            count_drop(c->srv, "incomplete_request");
        conn_close(c);
        return;
    }
    start_reading(c);
}

/* ---- connections ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct sl_http_conn *c = h->data;
    buf->base = sl_buf_reserve(&c->in, READ_CHUNK);
    buf->len = READ_CHUNK;
}

static void stop_reading(struct sl_http_conn *c)
{
    if (!c->reading)
        return;
    if (!c->detached)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* EOF (reset false) or a read error while connected. A client that shuts
 * down its side during a request may still want the answer (HTTP allows a
 * half-close), so after EOF the response, and those of complete requests
 * already buffered, are written before the connection closes (conn_drive);
 * after a reset there is nobody to write to. Either way the handler learns
 * through its gone callback that the client hung up, as Go's server cancels
 * a request's context: Loki's queries stop then. */
static void conn_peer_closed(struct sl_http_conn *c, bool reset)
{
    if (c->closing)
        return;
    bool busy = c->handling || c->writing;
    if (reset || !busy) {
        if (c->in_message && !busy)
            count_drop(c->srv, reset ? "read_error" : "incomplete_request");
        conn_close(c);
    } else {
        stop_reading(c);
        c->peer_eof = true;
    }
    conn_notify_gone(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct sl_http_conn *c = st->data;
    if (nread < 0) {
        conn_peer_closed(c, nread != UV_EOF);
        return;
    }
    if (nread == 0)
        return;
    sl_buf_commit(&c->in, (size_t)nread);
    if (c->handling || c->writing) {
        /* A pipelined request waits its turn; bound what it may buffer. */
        if (c->in.len >= READ_CHUNK)
            stop_reading(c);
        return;
    }
    conn_drive(c);
}

static void start_reading(struct sl_http_conn *c)
{
    if (c->detached || c->reading || c->closing || c->peer_eof)
        return;
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void server_maybe_done(struct sl_http_server *s);

static void conn_free(struct sl_http_conn *c)
{
    if (c->req) {
        free_request(c->req);
        c->req = NULL;
    }
    sl_buf_release(&c->in);
    sl_buf_release(&c->hbuf);
    sl_buf_release(&c->url);
    sl_buf_release(&c->out);
    sl_free(c->spans);
    sl_free(c);
}

/* Frees a closed connection once libuv and any handler are done with it. */
static void conn_maybe_free(struct sl_http_conn *c)
{
    if (c->detached || !c->closing || c->open_handles > 0 || c->handling || c->writing)
        return;
    struct sl_http_server *s = c->srv;
    if (c->upgraded && c->up_ops->on_closed)
        c->up_ops->on_closed(c->up_ud);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    conn_free(c);
    server_maybe_done(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct sl_http_conn *c = h->data;
    c->open_handles--;
    conn_maybe_free(c);
}

static void conn_close(struct sl_http_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    if (c->detached)
        return;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void conn_init(struct sl_http_conn *c, struct sl_http_server *s)
{
    c->srv = s;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    sl_buf_init(&c->in);
    sl_buf_init(&c->hbuf);
    sl_buf_init(&c->url);
    sl_buf_init(&c->out);
    c->keep_alive = true;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct sl_http_server *s = listener->data;
    if (status < 0 || s->closing)
        return;
    struct sl_http_conn *c = SL_NEW(struct sl_http_conn);
    conn_init(c, s);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    timer_start(c, s->idle_timeout_ms, on_idle_timeout);
    start_reading(c);
}

/* ---- detached connections (tests, fuzzing) ---- */

struct sl_http_conn *sl__http_conn_new_detached(struct sl_http_server *s)
{
    struct sl_http_conn *c = SL_NEW(struct sl_http_conn);
    conn_init(c, s);
    c->detached = true;
    return c;
}

int sl__http_conn_feed(struct sl_http_conn *c, const void *p, size_t n)
{
    if (c->closing)
        return 1;
    sl_buf_append(&c->in, p, n);
    conn_drive(c);
    return c->closing ? 1 : 0;
}

int sl__http_conn_peer_close(struct sl_http_conn *c, bool reset)
{
    if (c->closing)
        return 1;
    conn_peer_closed(c, reset);
    return c->closing ? 1 : 0;
}

const struct sl_buf *sl__http_conn_output(const struct sl_http_conn *c)
{
    return &c->out;
}

bool sl__http_conn_busy(const struct sl_http_conn *c)
{
    return c->handling;
}

void sl__http_conn_free_detached(struct sl_http_conn *c)
{
    if (c->handling && c->req)
        return; /* a handler still holds the request: a caller bug */
    conn_free(c);
}

/* ---- server ---- */

/* http-parser has its own process-wide cap on header bytes (80 KiB unless
 * changed). Our per-server count is the real limit, so only ever raise the
 * parser's cap above the largest configured one (with room for the line
 * overhead our count leaves out). */
static void raise_parser_header_limit(size_t max_header_bytes)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static size_t current = HTTP_MAX_HEADER_SIZE;
    size_t want = max_header_bytes + max_header_bytes / 2 + 1024;
    if (want > UINT32_MAX / 2)
        want = UINT32_MAX / 2;
    pthread_mutex_lock(&mu);
    if (want > current) {
        http_parser_set_max_header_size((uint32_t)want);
        current = want;
    }
    pthread_mutex_unlock(&mu);
}

struct sl_http_server *sl_http_server_new(uv_loop_t *loop, const struct sl_http_server_opts *o)
{
    struct sl_http_server *s = SL_NEW(struct sl_http_server);
    s->loop = loop;
    s->max_header_bytes = o && o->max_header_bytes ? o->max_header_bytes : DEF_MAX_HEADER_BYTES;
    s->max_body_bytes = o && o->max_body_bytes ? o->max_body_bytes : DEF_MAX_BODY_BYTES;
    s->read_timeout_ms = o && o->read_timeout_ms > 0 ? o->read_timeout_ms : DEF_READ_TIMEOUT_MS;
    s->idle_timeout_ms = o && o->idle_timeout_ms > 0 ? o->idle_timeout_ms : DEF_IDLE_TIMEOUT_MS;
    s->routes_tail = &s->routes;
    raise_parser_header_limit(s->max_header_bytes);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    if (o && o->metrics) {
        const char *pfx = o->metrics_prefix ? o->metrics_prefix : "sluice";
        char name[256];
        snprintf(name, sizeof(name), "%s_http_requests_total", pfx);
        s->fam_requests = sl_metrics_counter(o->metrics, name, "HTTP requests by route and status.",
                                             "route,code");
        snprintf(name, sizeof(name), "%s_http_request_duration_seconds", pfx);
        s->fam_duration = sl_metrics_histogram(o->metrics, name,
                                               "HTTP request duration from first byte to response.",
                                               "route", NULL, 0);
        snprintf(name, sizeof(name), "%s_http_connections_dropped_total", pfx);
        s->fam_dropped = sl_metrics_counter(
            o->metrics, name, "HTTP connections closed because of an error or timeout.", "reason");
        s->m_unmatched_duration = sl_metric_with(s->fam_duration, UNMATCHED_ROUTE);
    }
    return s;
}

void sl_http_server_route(struct sl_http_server *s, const char *method, const char *path,
                          bool prefix, sl_http_handler h, void *ud)
{
    struct route *r = SL_NEW(struct route);
    r->method = method ? sl_strdup(method) : NULL;
    r->path = sl_strdup(path);
    r->path_len = strlen(path);
    r->prefix = prefix;
    r->h = h;
    r->ud = ud;
    if (s->fam_duration)
        r->m_duration = sl_metric_with(s->fam_duration, path);
    *s->routes_tail = r;
    s->routes_tail = &r->next;
}

/* "host:port", "[v6]:port" or ":port" (all interfaces). */
static int parse_host_port(const char *hp, char *host, size_t hostsz, int *port)
{
    const char *colon;
    if (hp[0] == '[') {
        const char *rb = strchr(hp, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - hp - 1) >= hostsz)
            return SL_EINVAL;
        memcpy(host, hp + 1, (size_t)(rb - hp - 1));
        host[rb - hp - 1] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon || (size_t)(colon - hp) >= hostsz)
            return SL_EINVAL;
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = 0;
        if (!host[0])
            snprintf(host, hostsz, "0.0.0.0");
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return SL_EINVAL;
    *port = (int)p;
    return 0;
}

int sl_http_server_listen(struct sl_http_server *s, const char *host_port, struct sl_buf *err)
{
    char host[256];
    int port;
    if (parse_host_port(host_port, host, sizeof(host), &port) < 0) {
        if (err)
            sl_buf_appendf(err, "invalid listen address %s (want host:port)", host_port);
        return SL_EINVAL;
    }
    struct sockaddr_storage ss;
    int r = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                              : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (r < 0) {
        if (err)
            sl_buf_appendf(err, "invalid listen host %s: %s", host, uv_strerror(r));
        return SL_EINVAL;
    }
    r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (r < 0) {
        if (err)
            sl_buf_appendf(err, "listen on %s: %s", host_port, uv_strerror(r));
        return sl_err_from_uv(r);
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    s->listening = true;
    return 0;
}

int sl_http_server_port(const struct sl_http_server *s)
{
    return s->port;
}

static void server_free(struct sl_http_server *s)
{
    struct route *r = s->routes;
    while (r) {
        struct route *n = r->next;
        sl_free(r->method);
        sl_free(r->path);
        sl_free(r);
        r = n;
    }
    sl_free(s);
}

static void server_maybe_done(struct sl_http_server *s)
{
    if (!s->closing || !s->listener_closed || s->conns)
        return;
    if (s->done)
        s->done(s->done_ud);
    server_free(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct sl_http_server *s = h->data;
    s->listener_closed = true;
    server_maybe_done(s);
}

void sl_http_server_close(struct sl_http_server *s, void (*done)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = true;
    s->done = done;
    s->done_ud = ud;
    /* Idle and half-received connections go now; a request with a handler
     * keeps its connection until the response is written (then it closes). */
    struct sl_http_conn *c = s->conns;
    while (c) {
        struct sl_http_conn *next = c->next;
        if (c->upgraded && !c->closing && c->up_ops->on_shutdown)
            c->up_ops->on_shutdown(c, c->up_ud);
        else if (!c->handling && !c->writing)
            conn_close(c);
        else
            c->close_after = true;
        c = next;
    }
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
