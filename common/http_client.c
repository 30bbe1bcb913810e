/* HTTP client: libcurl's multi interface on a libuv loop.
 *
 * curl tells us which sockets to watch (socket callback -> one uv_poll_t per
 * socket, stored with curl_multi_assign) and when to wake it up (timer
 * callback -> one uv_timer_t); we hand readiness back with
 * curl_multi_socket_action and collect finished transfers with
 * curl_multi_info_read. sl_http_fetch shares the per-request setup but runs
 * one easy handle to completion. */
#include "common/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"

#define DEF_TIMEOUT_MS         30000
#define DEF_CONNECT_TIMEOUT_MS 5000
#define DEF_MAX_RESPONSE       (64u * 1024 * 1024)
#define DEF_MAX_HOST_CONNS     8

struct xfer {
    CURL *easy;
    struct sl_http_client *c; /* NULL for sl_http_fetch */
    sl_http_client_cb cb;
    void *ud;
    struct sl_http_response resp;
    struct curl_slist *hdrs;
    size_t max_bytes;
    bool too_big;
    bool aborted; /* on_body asked to stop */
    int (*on_body)(int status, struct sl_bytes chunk, void *ud);
    char errbuf[CURL_ERROR_SIZE];
    struct xfer *prev, *next;
};

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    int events; /* UV_READABLE | UV_WRITABLE curl asked for */
    struct sl_http_client *c;
    struct sock_ctx *prev, *next;
};

struct sl_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    char *ca_file;
    bool insecure;
    int64_t connect_timeout_ms;
    struct xfer *xfers;
    size_t inflight;
    struct sock_ctx *socks;
    int open_handles;
    bool closing;
    bool torn_down;
    int cb_depth;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- responses ---- */

static void resp_init(struct sl_http_response *r)
{
    memset(r, 0, sizeof(*r));
    sl_buf_init(&r->headers);
    sl_buf_init(&r->body);
    r->retry_after_ms = -1;
}

void sl_http_response_release(struct sl_http_response *resp)
{
    sl_buf_release(&resp->headers);
    sl_buf_release(&resp->body);
}

int sl_http_response_header(const struct sl_http_response *resp, const char *name,
                            struct sl_bytes *out)
{
    size_t nlen = strlen(name);
    const char *p = resp->headers.data, *end = p + resp->headers.len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && (size_t)(colon - p) == nlen && strncasecmp(p, name, nlen) == 0) {
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *out = sl_bytes(v, (size_t)(ve - v));
            return 0;
        }
        p = le + 1;
    }
    return SL_ENOENT;
}

int64_t sl_http_retry_after_ms(struct sl_bytes v, int64_t now_unix_s)
{
    while (v.len && (v.ptr[0] == ' ' || v.ptr[0] == '\t'))
        v.ptr++, v.len--;
    while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
        v.len--;
    if (v.len == 0 || v.len >= 64)
        return -1;
    size_t i = 0;
    int64_t secs = 0;
    while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9') {
        if (secs > INT64_MAX / 10000)
            return -1;
        secs = secs * 10 + (v.ptr[i] - '0');
        i++;
    }
    if (i == v.len)
        return secs * 1000;
    if (i > 0)
        return -1;
    /* HTTP-date: IMF-fixdate, RFC 850 or asctime; curl_getdate knows all three. */
    char tmp[64];
    memcpy(tmp, v.ptr, v.len);
    tmp[v.len] = 0;
    time_t t = curl_getdate(tmp, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t d = ((int64_t)t - now_unix_s) * 1000;
    return d < 0 ? 0 : d;
}

bool sl_http_retryable(const struct sl_http_response *resp)
{
    switch (resp->err) {
    case 0:
        break;
    case SL_EINVAL:
    case SL_ETOOBIG:
    case SL_ECANCELED:
        return false;
    default:
        return true; /* transport failure or timeout: a fresh connection may work */
    }
    return resp->status == 408 || resp->status == 429 || resp->status >= 500;
}

/* ---- per-request setup ---- */

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = sz * n;
    /* A new status line (after 100 Continue or a redirect) starts the final set. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        sl_buf_clear(&x->resp.headers);
    sl_buf_append(&x->resp.headers, p, len);
    return len;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = sz * n;
    if (x->on_body) {
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        if (x->on_body((int)status, sl_bytes(p, len), x->ud) != 0) {
            x->aborted = true;
            return 0; /* aborts with CURLE_WRITE_ERROR */
        }
        return len;
    }
    if (len > x->max_bytes - x->resp.body.len) {
        x->too_big = true;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    sl_buf_append(&x->resp.body, p, len);
    return len;
}

static bool valid_method(const char *m)
{
    if (!m || !*m || strlen(m) > 16)
        return false;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    return true;
}

static bool valid_url(const char *url)
{
    if (!url)
        return false;
    CURLU *u = curl_url();
    char *scheme = NULL;
    bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

static bool has_header(const char *const *h, const char *name)
{
    size_t n = strlen(name);
    for (; h && *h; h++)
        if (strncasecmp(*h, name, n) == 0 && ((*h)[n] == ':' || (*h)[n] == ';'))
            return true;
    return false;
}

/* Creates x->easy for request r. Returns 0 or SL_EINVAL. */
static int xfer_setup(struct xfer *x, const struct sl_http_client_opts *o, const char *ca_file,
                      const struct sl_http_req_opts *r)
{
    pthread_once(&curl_once, curl_init_once);
    const char *method = r->method ? r->method : "GET";
    if (!valid_method(method) || !valid_url(r->url))
        return SL_EINVAL;
    resp_init(&x->resp);
    x->max_bytes = r->max_response_bytes ? r->max_response_bytes : DEF_MAX_RESPONSE;
    CURL *e = x->easy = curl_easy_init();
    if (!e)
        return SL_ENOMEM;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     (long)(r->timeout_ms > 0 ? r->timeout_ms : DEF_TIMEOUT_MS));
    int64_t cto = o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEF_CONNECT_TIMEOUT_MS;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cto);
    x->on_body = r->on_body;
    if (!r->on_body)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_bytes);
    if (ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
    if (o && o->insecure_skip_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    bool with_body = r->body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                     strcmp(method, "PATCH") == 0;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (with_body) {
        /* POSTFIELDS + POSTFIELDSIZE always yields a Content-Length (even 0),
         * never chunked; the method name is overridden for PUT and friends. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_len ? (const char *)r->body : "");
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    /* Expect: 100-continue costs a round trip (or a 1 s stall) per request. */
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    if (with_body && !has_header(r->headers, "Content-Type"))
        x->hdrs = curl_slist_append(x->hdrs, "Content-Type:"); /* no form default */
    for (const char *const *h = r->headers; h && *h; h++)
        x->hdrs = curl_slist_append(x->hdrs, *h);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    return 0;
}

static int map_curl_error(CURLcode res, bool too_big)
{
    switch (res) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return SL_ETIMEDOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return SL_ETOOBIG;
    case CURLE_WRITE_ERROR:
        return too_big ? SL_ETOOBIG : SL_EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return SL_EINVAL;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return SL_ECONN;
    default:
        return SL_EIO;
    }
}

/* Fills status, error and Retry-After once the transfer has ended. */
static void xfer_finish(struct xfer *x, CURLcode res)
{
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    x->resp.status = (int)code;
    x->resp.err = x->aborted ? SL_ECANCELED : map_curl_error(res, x->too_big);
    if (x->resp.err) {
        const char *msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(res);
        if (x->too_big)
            msg = "response larger than max_response_bytes";
        snprintf(x->resp.errmsg, sizeof(x->resp.errmsg), "%s", msg);
    }
    struct sl_bytes ra;
    if (sl_http_response_header(&x->resp, "Retry-After", &ra) == 0)
        x->resp.retry_after_ms = sl_http_retry_after_ms(ra, (int64_t)time(NULL));
}

static void xfer_free(struct xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    sl_http_response_release(&x->resp);
    sl_free(x);
}

static void xfer_unlink(struct sl_http_client *c, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    c->inflight--;
}

/* ---- multi <-> libuv glue ---- */

static void client_teardown(struct sl_http_client *c);

static void check_done(struct sl_http_client *c)
{
    CURLMsg *msg;
    int left;
    c->cb_depth++;
    while (!c->torn_down && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(c->multi, e);
        xfer_finish(x, res);
        xfer_unlink(c, x);
        x->cb(&x->resp, x->ud);
        xfer_free(x);
    }
    c->cb_depth--;
    if (c->closing && c->cb_depth == 0 && !c->torn_down)
        client_teardown(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *sc = h->data;
    struct sl_http_client *c = sc->c;
    int flags = 0;
    if (status < 0) {
        /* libuv reports EPOLLERR (e.g. a RST on a kept-alive connection) as
         * UV_EBADF and stops polling the socket. Passing CURL_CSELECT_ERR
         * would fail the transfer with "select/poll returned error"; instead
         * let curl read and write the socket so it sees the real error, and
         * retries a request on a fresh connection when a reused one died
         * before any reply. Polling resumes with what curl last asked for. */
        uv_poll_start(&sc->poll, sc->events, on_poll);
        events = sc->events;
    }
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(c->multi, sc->fd, flags, &running);
    check_done(c);
}

static void on_curl_timer(uv_timer_t *t)
{
    struct sl_http_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static void client_maybe_free(struct sl_http_client *c)
{
    if (c->torn_down && c->open_handles == 0) {
        sl_free(c->ca_file);
        sl_free(c);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct sl_http_client *c;
    if (h->type == UV_POLL) {
        struct sock_ctx *sc = h->data;
        c = sc->c;
        sl_free(sc);
    } else {
        c = h->data;
    }
    c->open_handles--;
    client_maybe_free(c);
}

static void sock_close(struct sl_http_client *c, struct sock_ctx *sc)
{
    uv_poll_stop(&sc->poll);
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        c->socks = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    uv_close((uv_handle_t *)&sc->poll, on_handle_closed);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    struct sl_http_client *c = userp;
    struct sock_ctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            sock_close(c, sc);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    if (!sc) {
        sc = SL_NEW(struct sock_ctx);
        if (uv_poll_init_socket(c->loop, &sc->poll, s) < 0) {
            sl_free(sc);
            return -1;
        }
        sc->fd = s;
        sc->c = c;
        sc->poll.data = sc;
        sc->next = c->socks;
        if (c->socks)
            c->socks->prev = sc;
        c->socks = sc;
        c->open_handles++;
        curl_multi_assign(c->multi, s, sc);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    sc->events = ev;
    uv_poll_start(&sc->poll, ev, on_poll);
    return 0;
}

static int on_curl_timer_change(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct sl_http_client *c = userp;
    if (c->torn_down)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- public API ---- */

struct sl_http_client *sl_http_client_new(uv_loop_t *loop, const struct sl_http_client_opts *o)
{
    pthread_once(&curl_once, curl_init_once);
    struct sl_http_client *c = SL_NEW(struct sl_http_client);
    c->loop = loop;
    c->ca_file = o && o->ca_file ? sl_strdup(o->ca_file) : NULL;
    c->insecure = o && o->insecure_skip_verify;
    c->connect_timeout_ms = o ? o->connect_timeout_ms : 0;
    c->multi = curl_multi_init();
    if (!c->multi) {
        sl_log(SL_LOG_ERROR, "curl_multi_init failed", NULL);
        abort();
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer_change);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    long maxc = o && o->max_connections > 0 ? o->max_connections : DEF_MAX_HOST_CONNS;
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxc);
    return c;
}

int sl_http_client_do(struct sl_http_client *c, const struct sl_http_req_opts *r,
                      sl_http_client_cb cb, void *ud)
{
    if (c->closing)
        return SL_ECANCELED;
    struct xfer *x = SL_NEW(struct xfer);
    x->c = c;
    x->cb = cb;
    x->ud = ud;
    struct sl_http_client_opts o = {.ca_file = c->ca_file,
                                    .insecure_skip_verify = c->insecure,
                                    .connect_timeout_ms = c->connect_timeout_ms};
    int rc = xfer_setup(x, &o, c->ca_file, r);
    if (rc < 0) {
        xfer_free(x);
        return rc;
    }
    if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
        xfer_free(x);
        return SL_EIO;
    }
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    c->inflight++;
    return 0;
}

size_t sl_http_client_inflight(const struct sl_http_client *c)
{
    return c->inflight;
}

static void client_teardown(struct sl_http_client *c)
{
    c->torn_down = true;
    /* Stop watching while curl's sockets are still open, silence curl's
     * callbacks, let it close its connections, then close our handles. */
    for (struct sock_ctx *sc = c->socks; sc; sc = sc->next)
        uv_poll_stop(&sc->poll);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, NULL);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c, c->socks);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void sl_http_client_free(struct sl_http_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    while (c->xfers) {
        struct xfer *x = c->xfers;
        curl_multi_remove_handle(c->multi, x->easy);
        xfer_unlink(c, x);
        x->resp.err = SL_ECANCELED;
        snprintf(x->resp.errmsg, sizeof(x->resp.errmsg), "request cancelled");
        x->cb(&x->resp, x->ud);
        xfer_free(x);
    }
    if (c->cb_depth == 0)
        client_teardown(c); /* else check_done finishes it */
}

int sl_http_fetch(const struct sl_http_client_opts *o, const struct sl_http_req_opts *r,
                  struct sl_http_response *resp)
{
    struct xfer *x = SL_NEW(struct xfer);
    int rc = xfer_setup(x, o, o ? o->ca_file : NULL, r);
    if (rc < 0) {
        xfer_free(x);
        resp_init(resp);
        resp->err = rc;
        snprintf(resp->errmsg, sizeof(resp->errmsg), "invalid method or URL");
        return rc;
    }
    CURLcode res = curl_easy_perform(x->easy);
    xfer_finish(x, res);
    *resp = x->resp;
    resp_init(&x->resp);
    xfer_free(x);
    return resp->err;
}
