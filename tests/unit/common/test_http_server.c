/* HTTP server over real loopback sockets: the server loop runs in a thread,
 * the tests talk raw HTTP/1.1 with blocking sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "common/arena.h"
#include "common/err.h"
#include "common/http_server.h"
#include "common/mem.h"
#include "common/metrics.h"

#define READ_TIMEOUT_MS 300
#define IDLE_TIMEOUT_MS 600

struct fx {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t th;
    struct sl_http_server *srv;
    struct sl_metrics *metrics;
    int port;
    bool closed;
    bool stop_sent;
    atomic_int gone_calls; /* /hold: gone callbacks run */
};

/* ---- handlers (loop thread) ---- */

static void h_echo_get(struct sl_http_request *req, void *ud)
{
    (void)ud;
    struct sl_bytes a = SL_BYTES_LIT("-"), b = SL_BYTES_LIT("-");
    sl_http_req_param(req, "a", &a);
    sl_http_req_param(req, "b", &b);
    const struct sl_bytes *x = sl_http_req_header(req, "x-test");
    sl_http_respond_text(req, 200, "path=%.*s a=%.*s b=%.*s x=%.*s", (int)req->path.len,
                         req->path.ptr, (int)a.len, a.ptr, (int)b.len, b.ptr, x ? (int)x->len : 1,
                         x ? x->ptr : "-");
}

static void h_echo_post(struct sl_http_request *req, void *ud)
{
    (void)ud;
    sl_http_req_add_header(req, "X-Method", req->method);
    sl_http_respond_buf(req, 200, "application/octet-stream", &req->body);
}

static void h_form(struct sl_http_request *req, void *ud)
{
    (void)ud;
    struct sl_bytes v;
    if (sl_http_form_param(&req->arena, sl_buf_bytes(&req->body), "x", &v) < 0) {
        sl_http_respond_text(req, 400, "no x");
        return;
    }
    sl_http_respond(req, 200, "text/plain", v.ptr, v.len);
}

static void on_async_timer(uv_timer_t *t)
{
    struct sl_http_request *req = t->data;
    sl_http_respond_text(req, 200, "async gone=%d", sl_http_req_gone(req));
    uv_close((uv_handle_t *)t, (uv_close_cb)sl_free);
}

static void h_async(struct sl_http_request *req, void *ud)
{
    struct fx *f = ud;
    uv_timer_t *t = SL_NEW(uv_timer_t);
    uv_timer_init(&f->loop, t);
    t->data = req;
    uv_timer_start(t, on_async_timer, 50, 0);
}

/* /hold answers only when its client goes away, from the gone callback. */
static void on_hold_gone(struct sl_http_request *req, void *ud)
{
    struct fx *f = ud;
    atomic_fetch_add(&f->gone_calls, 1);
    sl_http_respond_text(req, 200, "held gone=%d", sl_http_req_gone(req));
}

static void h_hold(struct sl_http_request *req, void *ud)
{
    if (!sl_http_req_on_gone(req, on_hold_gone, ud))
        sl_http_respond_text(req, 200, "gone before the handler");
}

static void h_prefix(struct sl_http_request *req, void *ud)
{
    (void)ud;
    sl_http_respond_text(req, 200, "prefix %s %.*s", req->method, (int)req->path.len,
                         req->path.ptr);
}

/* ---- fixture ---- */

static void *loop_thread(void *arg)
{
    struct fx *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_server_closed(void *ud)
{
    struct fx *f = ud;
    f->closed = true;
}

static void on_stop(uv_async_t *a)
{
    struct fx *f = a->data;
    if (f->srv)
        sl_http_server_close(f->srv, on_server_closed, f);
    f->srv = NULL;
    uv_close((uv_handle_t *)a, NULL);
}

static int setup(void **state)
{
    struct fx *f = SL_NEW(struct fx);
    uv_loop_init(&f->loop);
    f->metrics = sl_metrics_new();
    struct sl_http_server_opts o = {.max_header_bytes = 1024,
                                    .max_body_bytes = 4096,
                                    .read_timeout_ms = READ_TIMEOUT_MS,
                                    .idle_timeout_ms = IDLE_TIMEOUT_MS,
                                    .metrics = f->metrics,
                                    .metrics_prefix = "test"};
    f->srv = sl_http_server_new(&f->loop, &o);
    sl_http_server_route(f->srv, "GET", "/echo", false, h_echo_get, f);
    sl_http_server_route(f->srv, "POST", "/echo", false, h_echo_post, f);
    sl_http_server_route(f->srv, "POST", "/form", false, h_form, f);
    sl_http_server_route(f->srv, "GET", "/async", false, h_async, f);
    sl_http_server_route(f->srv, "GET", "/hold", false, h_hold, f);
    sl_http_server_route(f->srv, NULL, "/p/", true, h_prefix, f);
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_http_server_listen(f->srv, "127.0.0.1:0", &err), 0);
    sl_buf_release(&err);
    f->port = sl_http_server_port(f->srv);
    assert_true(f->port > 0);
    uv_async_init(&f->loop, &f->stop, on_stop);
    f->stop.data = f;
    pthread_create(&f->th, NULL, loop_thread, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f->stop_sent)
        uv_async_send(&f->stop);
    pthread_join(f->th, NULL);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_metrics_free(f->metrics);
    sl_free(f);
    return 0;
}

/* ---- raw client ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_str(int fd, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

struct resp {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
};

/* Reads exactly one response (headers + Content-Length body). Returns 0, or
 * -1 if the connection closed before a full response. */
static int read_resp(int fd, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    size_t hl = 0;
    while (hl < 4 || memcmp(r->head + hl - 4, "\r\n\r\n", 4) != 0) {
        if (hl + 1 >= sizeof(r->head))
            return -1;
        if (recv(fd, r->head + hl, 1, 0) != 1)
            return -1;
        hl++;
    }
    r->head[hl] = 0;
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    const char *cl = strcasestr(r->head, "\r\nContent-Length:");
    size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
    assert_true(want < sizeof(r->body));
    while (r->body_len < want) {
        ssize_t n = recv(fd, r->body + r->body_len, want - r->body_len, 0);
        if (n <= 0)
            return -1;
        r->body_len += (size_t)n;
    }
    return 0;
}

/* True if the peer closes the connection (EOF or reset) within ms. */
static bool closed_within(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char b[256];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

static void roundtrip(struct fx *f, const char *raw, struct resp *r)
{
    int fd = dial(f->port);
    send_str(fd, raw);
    assert_int_equal(read_resp(fd, r), 0);
    close(fd);
}

/* ---- tests ---- */

static void test_get_params_and_headers(void **state)
{
    struct fx *f = *state;
    struct resp r;
    roundtrip(
        f, "GET /echo?a=1+2%21&b=%41%42&a=second HTTP/1.1\r\nHost: x\r\nX-Test:  v v \r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "path=/echo a=1 2! b=AB x=v v\n");
    assert_non_null(strstr(r.head, "Content-Type: text/plain"));
    /* percent-decoded path, absent parameter */
    roundtrip(f, "GET /%65cho HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "path=/echo a=- b=- x=-\n");
}

static void test_post_content_length(void **state)
{
    struct fx *f = *state;
    struct resp r;
    roundtrip(f, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "hello", 5);
    assert_non_null(strstr(r.head, "X-Method: POST\r\n"));
    roundtrip(f,
              "POST /form HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              "Content-Length: 17\r\n\r\ny=1&x=a%20b+c&x=2",
              &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "a b c");
}

static void test_post_chunked_in_pieces(void **state)
{
    struct fx *f = *state;
    const char *parts[] = {"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", "\r\n5\r\nhel",
                           "lo\r\n6\r\n world\r\n", "0\r\n\r\n"};
    int fd = dial(f->port);
    for (size_t i = 0; i < 4; i++) {
        send_str(fd, parts[i]);
        usleep(20000);
    }
    struct resp r;
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "hello world", 11);
    close(fd);
}

static void test_keep_alive(void **state)
{
    struct fx *f = *state;
    struct resp r;
    int fd = dial(f->port);
    send_str(fd, "GET /echo?a=1 HTTP/1.1\r\n\r\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.head, "Connection: close"));
    send_str(fd, "GET /echo?a=2 HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_string_equal(r.body, "path=/echo a=2 b=- x=-\n");
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(closed_within(fd, 1000));
    close(fd);

    /* HTTP/1.0: close unless asked for keep-alive */
    fd = dial(f->port);
    send_str(fd, "GET /echo HTTP/1.0\r\n\r\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(closed_within(fd, 1000));
    close(fd);
    fd = dial(f->port);
    send_str(fd, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_non_null(strstr(r.head, "Connection: keep-alive\r\n"));
    send_str(fd, "GET /echo?b=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_string_equal(r.body, "path=/echo a=- b=3 x=-\n");
    close(fd);
}

static void test_pipelined(void **state)
{
    struct fx *f = *state;
    struct resp r;
    int fd = dial(f->port);
    /* The async one answers later; order must still be kept. */
    send_str(fd, "GET /async HTTP/1.1\r\n\r\n"
                 "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /echo?a=3 HTTP/1.1\r\n\r\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_string_equal(r.body, "async gone=0\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_memory_equal(r.body, "abc", 3);
    assert_int_equal(read_resp(fd, &r), 0);
    assert_string_equal(r.body, "path=/echo a=3 b=- x=-\n");
    close(fd);
}

static void test_not_found_and_method(void **state)
{
    struct fx *f = *state;
    struct resp r;
    roundtrip(f, "GET /nope HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    roundtrip(f, "DELETE /echo HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, POST\r\n"));
    roundtrip(f, "PUT /p/a/b HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "prefix PUT /p/a/b\n");
    /* HEAD: headers with the length, no body */
    int fd = dial(f->port);
    send_str(fd, "HEAD /p/x HTTP/1.1\r\n\r\nGET /p/y HTTP/1.1\r\n\r\n");
    char buf[512] = {0};
    size_t got = 0;
    while (!strstr(buf, "prefix GET /p/y\n") && got < sizeof(buf) - 1) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
        buf[got] = 0;
    }
    assert_non_null(strstr(buf, "Content-Length: 16\r\n"));
    assert_null(strstr(buf, "prefix HEAD"));
    close(fd);
}

static void test_bad_request(void **state)
{
    struct fx *f = *state;
    struct resp r;
    int fd = dial(f->port);
    send_str(fd, "GET /echo HTTP/1.1\r\n\r\nBL\x01H / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_string_equal(r.body, "invalid HTTP method\n");
    assert_true(closed_within(fd, 1000));
    close(fd);
    roundtrip(f, "GET /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", &r);
    assert_int_equal(r.status, 400);
    roundtrip(f, "GET /echo HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
}

static void test_body_too_large(void **state)
{
    struct fx *f = *state;
    struct resp r;
    /* announced up front: refused before the body is sent */
    int fd = dial(f->port);
    send_str(fd, "POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 413);
    assert_true(closed_within(fd, 1000));
    close(fd);
    /* chunked: refused while receiving */
    fd = dial(f->port);
    send_str(fd, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[1100];
    memset(chunk, 'z', sizeof(chunk));
    memcpy(chunk, "400\r\n", 5);
    memcpy(chunk + 5 + 1024, "\r\n", 2);
    for (int i = 0; i < 5; i++)
        send(fd, chunk, 5 + 1024 + 2, MSG_NOSIGNAL);
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 413);
    close(fd);
    /* exactly at the limit is fine */
    fd = dial(f->port);
    send_str(fd, "POST /echo HTTP/1.1\r\nContent-Length: 4096\r\n\r\n");
    char body[4096];
    memset(body, 'q', sizeof(body));
    assert_int_equal(send(fd, body, sizeof(body), 0), (ssize_t)sizeof(body));
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 4096);
    close(fd);
}

static void test_headers_too_large(void **state)
{
    struct fx *f = *state;
    char req[4096];
    int n = snprintf(req, sizeof(req), "GET /echo HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', 1500);
    strcpy(req + n + 1500, "\r\n\r\n");
    struct resp r;
    roundtrip(f, req, &r);
    assert_int_equal(r.status, 431);
    /* a long URL counts too */
    n = snprintf(req, sizeof(req), "GET /echo?a=");
    memset(req + n, 'b', 1500);
    strcpy(req + n + 1500, " HTTP/1.1\r\n\r\n");
    roundtrip(f, req, &r);
    assert_int_equal(r.status, 431);
}

static void test_expect_continue(void **state)
{
    struct fx *f = *state;
    struct resp r;
    int fd = dial(f->port);
    send_str(fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    char buf[64] = {0};
    ssize_t n = recv(fd, buf, 25, MSG_WAITALL);
    assert_int_equal(n, 25);
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_str(fd, "data");
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "data", 4);
    close(fd);
}

static void test_slow_client_timeouts(void **state)
{
    struct fx *f = *state;
    /* slow loris: trickling bytes does not extend the read deadline */
    int fd = dial(f->port);
    int64_t t0 = now_ms();
    send_str(fd, "GET /echo HTTP/1.1\r\n");
    bool closed = false;
    for (int i = 0; i < 40 && !closed; i++) {
        usleep(50000);
        if (send(fd, "X", 1, MSG_NOSIGNAL) != 1)
            closed = true;
        else
            closed = closed_within(fd, 1);
    }
    if (!closed)
        closed = closed_within(fd, 1000);
    assert_true(closed);
    int64_t took = now_ms() - t0;
    assert_true(took >= READ_TIMEOUT_MS - 50);
    assert_true(took < READ_TIMEOUT_MS + 1000);
    close(fd);
    /* idle connection */
    fd = dial(f->port);
    t0 = now_ms();
    assert_true(closed_within(fd, 3000));
    took = now_ms() - t0;
    assert_true(took >= IDLE_TIMEOUT_MS - 50);
    close(fd);
    /* the server still serves */
    struct resp r;
    roundtrip(f, "GET /echo HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    struct sl_buf m = SL_BUF_INIT;
    sl_metrics_render(f->metrics, &m);
    assert_non_null(
        strstr(m.data, "test_http_connections_dropped_total{reason=\"read_timeout\"} 1"));
    sl_buf_release(&m);
}

static void test_async_response(void **state)
{
    struct fx *f = *state;
    struct resp r;
    int64_t t0 = now_ms();
    roundtrip(f, "GET /async HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "async gone=0\n");
    assert_true(now_ms() - t0 >= 40);
}

static void test_metrics(void **state)
{
    struct fx *f = *state;
    struct resp r;
    roundtrip(f, "GET /echo HTTP/1.1\r\n\r\n", &r);
    roundtrip(f, "GET /echo HTTP/1.1\r\n\r\n", &r);
    roundtrip(f, "GET /missing HTTP/1.1\r\n\r\n", &r);
    struct sl_buf m = SL_BUF_INIT;
    sl_metrics_render(f->metrics, &m);
    assert_non_null(strstr(m.data, "test_http_requests_total{route=\"/echo\",code=\"200\"} 2"));
    assert_non_null(strstr(m.data, "test_http_requests_total{route=\"unmatched\",code=\"404\"} 1"));
    assert_non_null(strstr(m.data, "test_http_request_duration_seconds_count{route=\"/echo\"} 2"));
    sl_buf_release(&m);
}

/* Graceful close: the in-flight async request is still answered. */
static void test_graceful_close(void **state)
{
    struct fx *f = *state;
    int idle = dial(f->port);
    int fd = dial(f->port);
    send_str(fd, "GET /async HTTP/1.1\r\n\r\n");
    usleep(10000);
    f->stop_sent = true;
    uv_async_send(&f->stop);
    struct resp r;
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(closed_within(fd, 1000));
    assert_true(closed_within(idle, 1000));
    close(fd);
    close(idle);
}

static bool wait_gone_calls(struct fx *f, int want, int ms)
{
    int64_t deadline = now_ms() + ms;
    while (atomic_load(&f->gone_calls) < want && now_ms() < deadline)
        usleep(2000);
    return atomic_load(&f->gone_calls) == want;
}

/* A client that closes while its request is held: the handler hears of it
 * at once, and the server goes on serving. */
static void test_gone_callback_on_close(void **state)
{
    struct fx *f = *state;
    int fd = dial(f->port);
    send_str(fd, "GET /hold HTTP/1.1\r\n\r\n");
    usleep(50000);
    assert_int_equal(atomic_load(&f->gone_calls), 0); /* held while the client waits */
    close(fd);
    assert_true(wait_gone_calls(f, 1, 5000));
    struct resp r;
    roundtrip(f, "GET /echo?a=1 HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    usleep(20000);
    assert_int_equal(atomic_load(&f->gone_calls), 1); /* once */
}

/* A half-close (shutdown of the client's sending side) is a hang-up too,
 * but the answer is still written before the server closes. */
static void test_gone_callback_on_half_close_still_answers(void **state)
{
    struct fx *f = *state;
    int fd = dial(f->port);
    send_str(fd, "GET /hold HTTP/1.1\r\n\r\nGET /echo?a=2 HTTP/1.1\r\n\r\n");
    usleep(20000);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    struct resp r;
    assert_int_equal(read_resp(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "held gone=1\n");
    /* the pipelined request that was complete is answered too, then EOF */
    assert_int_equal(read_resp(fd, &r), 0);
    assert_string_equal(r.body, "path=/echo a=2 b=- x=-\n");
    assert_true(closed_within(fd, 2000));
    close(fd);
    assert_int_equal(atomic_load(&f->gone_calls), 1);
}

/* ---- no sockets: the parsing core and helpers ---- */

struct held {
    struct sl_http_request *req;
    int gone_calls, next_calls;
};

static void on_held_gone(struct sl_http_request *req, void *ud)
{
    struct held *h = ud;
    assert_ptr_equal(req, h->req);
    h->gone_calls++;
}

static void h_held(struct sl_http_request *req, void *ud)
{
    struct held *h = ud;
    h->req = req;
    assert_true(sl_http_req_on_gone(req, on_held_gone, h));
}

static void h_next(struct sl_http_request *req, void *ud)
{
    struct held *h = ud;
    h->next_calls++;
    sl_http_respond_text(req, 200, "next gone=%d", sl_http_req_gone(req));
}

static struct sl_http_conn *held_conn(uv_loop_t *loop, struct sl_http_server **s, struct held *h)
{
    uv_loop_init(loop);
    *s = sl_http_server_new(loop, NULL);
    sl_http_server_route(*s, "GET", "/held", false, h_held, h);
    sl_http_server_route(*s, "GET", "/next", false, h_next, h);
    struct sl_http_conn *c = sl__http_conn_new_detached(*s);
    const char *in = "GET /held HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\nGET /ne";
    assert_int_equal(sl__http_conn_feed(c, in, strlen(in)), 0);
    assert_non_null(h->req);
    assert_int_equal(h->next_calls, 0); /* the pipelined one waits, unparsed */
    assert_false(sl_http_req_gone(h->req));
    return c;
}

static void held_done(uv_loop_t *loop, struct sl_http_server *s, struct sl_http_conn *c)
{
    sl__http_conn_free_detached(c);
    sl_http_server_close(s, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* EOF while a request is held: the callback runs once, the held answer and
 * the complete pipelined one are written, the cut-off third is not, then
 * the connection closes. */
static void test_detached_gone_on_eof(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct sl_http_server *s;
    struct held h = {0};
    struct sl_http_conn *c = held_conn(&loop, &s, &h);
    assert_int_equal(sl__http_conn_peer_close(c, false), 0);
    assert_int_equal(h.gone_calls, 1);
    assert_true(sl_http_req_gone(h.req));
    assert_false(sl_http_req_on_gone(h.req, on_held_gone, &h)); /* already gone */
    assert_int_equal(sl__http_conn_output(c)->len, 0);
    sl_http_respond_text(h.req, 499, "client canceled request");
    assert_int_equal(h.gone_calls, 1);
    assert_int_equal(h.next_calls, 1);
    const char *out = sl__http_conn_output(c)->data;
    const char *p1 = strstr(out, "HTTP/1.1 499 ");
    const char *p2 = strstr(out, "next gone=1");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_true(p1 < p2);
    assert_int_equal(sl__http_conn_feed(c, "xt", 2), 1); /* closed */
    held_done(&loop, s, c);
}

/* A reset: the callback runs, the answer is discarded, nothing else runs. */
static void test_detached_gone_on_reset(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct sl_http_server *s;
    struct held h = {0};
    struct sl_http_conn *c = held_conn(&loop, &s, &h);
    assert_int_equal(sl__http_conn_peer_close(c, true), 1);
    assert_int_equal(h.gone_calls, 1);
    assert_true(sl_http_req_gone(h.req));
    sl_http_respond_text(h.req, 499, "client canceled request");
    assert_int_equal(h.gone_calls, 1);
    assert_int_equal(h.next_calls, 0);
    assert_int_equal(sl__http_conn_output(c)->len, 0);
    held_done(&loop, s, c);
}

/* Answered before the client leaves: no callback, keep-alive goes on. */
static void test_detached_no_callback_after_answer(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct sl_http_server *s;
    struct held h = {0};
    struct sl_http_conn *c = held_conn(&loop, &s, &h);
    sl_http_respond_text(h.req, 200, "done");
    assert_int_equal(h.next_calls, 1);
    assert_int_equal(sl__http_conn_feed(c, "xt HTTP/1.1\r\n\r\n", 15), 0);
    assert_int_equal(h.next_calls, 2);
    assert_non_null(strstr(sl__http_conn_output(c)->data, "next gone=0"));
    assert_int_equal(sl__http_conn_peer_close(c, false), 1);
    assert_int_equal(h.gone_calls, 0);
    held_done(&loop, s, c);
}

static void h_sync(struct sl_http_request *req, void *ud)
{
    (void)ud;
    sl_http_respond(req, 200, "text/plain", req->body.data, req->body.len);
}

static void test_detached_byte_by_byte(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_http_server_opts o = {.max_body_bytes = 64};
    struct sl_http_server *s = sl_http_server_new(&loop, &o);
    sl_http_server_route(s, NULL, "/", true, h_sync, NULL);
    struct sl_http_conn *c = sl__http_conn_new_detached(s);
    const char *in = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                     "POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nde"
                     "POST /c HTTP/1.1\r\nContent-Length: 65\r\n\r\n";
    for (size_t i = 0; in[i]; i++)
        assert_int_equal(sl__http_conn_feed(c, in + i, 1), in[i + 1] ? 0 : 1);
    const struct sl_buf *out = sl__http_conn_output(c);
    const char *p1 = strstr(out->data, "\r\n\r\nabc");
    const char *p2 = strstr(out->data, "\r\n\r\nde");
    const char *p3 = strstr(out->data, "HTTP/1.1 413 ");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_non_null(p3);
    assert_true(p1 < p2 && p2 < p3);
    sl__http_conn_free_detached(c);
    sl_http_server_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A configured header limit above http-parser's built-in 80 KiB is honoured. */
static void test_detached_large_header_limit(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_http_server_opts o = {.max_header_bytes = 200 * 1024};
    struct sl_http_server *s = sl_http_server_new(&loop, &o);
    sl_http_server_route(s, "GET", "/", false, h_sync, NULL);
    struct sl_http_conn *c = sl__http_conn_new_detached(s);
    size_t vlen = 150 * 1024;
    char *big = sl_malloc(vlen);
    memset(big, 'v', vlen);
    const char *pre = "GET / HTTP/1.1\r\nX-Big: ";
    assert_int_equal(sl__http_conn_feed(c, pre, strlen(pre)), 0);
    assert_int_equal(sl__http_conn_feed(c, big, vlen), 0);
    assert_int_equal(sl__http_conn_feed(c, "\r\n\r\n", 4), 0);
    assert_non_null(strstr(sl__http_conn_output(c)->data, "HTTP/1.1 200 OK\r\n"));
    /* and past it: 431 */
    assert_int_equal(sl__http_conn_feed(c, pre, strlen(pre)), 0);
    assert_int_equal(sl__http_conn_feed(c, big, vlen), 0);
    assert_int_equal(sl__http_conn_feed(c, big, vlen), 1);
    assert_non_null(strstr(sl__http_conn_output(c)->data, "HTTP/1.1 431 "));
    sl_free(big);
    sl__http_conn_free_detached(c);
    sl_http_server_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_listen_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_http_server *a = sl_http_server_new(&loop, NULL);
    struct sl_http_server *b = sl_http_server_new(&loop, NULL);
    struct sl_http_server *c = sl_http_server_new(&loop, NULL);
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_http_server_listen(a, "nonsense", &err), SL_EINVAL);
    assert_true(err.len > 0);
    sl_buf_clear(&err);
    assert_int_equal(sl_http_server_listen(a, "127.0.0.1:99999", &err), SL_EINVAL);
    assert_int_equal(sl_http_server_listen(a, "300.1.1.1:80", &err), SL_EINVAL);
    assert_int_equal(sl_http_server_listen(b, "127.0.0.1:0", NULL), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", sl_http_server_port(b));
    sl_buf_clear(&err);
    assert_true(sl_http_server_listen(c, addr, &err) < 0);
    assert_non_null(strstr(err.data, "listen on"));
    sl_buf_release(&err);
    sl_http_server_close(a, NULL, NULL);
    sl_http_server_close(b, NULL, NULL);
    sl_http_server_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_form_param(void **state)
{
    (void)state;
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_bytes v;
    struct sl_bytes form =
        SL_BYTES_LIT("q=%7Bapp%3D%22x%22%7D&limit=10&empty=&flag&a%5B%5D=z&bad=%zz%4");
    assert_int_equal(sl_http_form_param(&a, form, "q", &v), 0);
    assert_true(sl_bytes_eq_str(v, "{app=\"x\"}"));
    assert_int_equal(sl_http_form_param(&a, form, "limit", &v), 0);
    assert_true(sl_bytes_eq_str(v, "10"));
    assert_int_equal(sl_http_form_param(&a, form, "empty", &v), 0);
    assert_int_equal(v.len, 0);
    assert_int_equal(sl_http_form_param(&a, form, "flag", &v), 0);
    assert_int_equal(v.len, 0);
    assert_int_equal(sl_http_form_param(&a, form, "a[]", &v), 0);
    assert_true(sl_bytes_eq_str(v, "z"));
    assert_int_equal(sl_http_form_param(&a, form, "bad", &v), 0);
    assert_true(sl_bytes_eq_str(v, "%zz%4"));
    assert_int_equal(sl_http_form_param(&a, form, "lim", &v), SL_ENOENT);
    assert_int_equal(sl_http_form_param(&a, sl_bytes("", 0), "q", &v), SL_ENOENT);
    v = sl_http_form_decode(&a, SL_BYTES_LIT("a+b%2Bc%41%e9%zz%4"));
    assert_int_equal(v.len, 12);
    assert_memory_equal(v.ptr, "a b+cA\xe9%zz%4", 12);
    assert_int_equal(v.ptr[v.len], 0);
    v = sl_http_form_decode(&a, sl_bytes("", 0));
    assert_int_equal(v.len, 0);
    assert_int_equal(v.ptr[0], 0);
    sl_arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_param),
        cmocka_unit_test(test_detached_byte_by_byte),
        cmocka_unit_test(test_detached_large_header_limit),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_detached_gone_on_eof),
        cmocka_unit_test(test_detached_gone_on_reset),
        cmocka_unit_test(test_detached_no_callback_after_answer),
        cmocka_unit_test_setup_teardown(test_gone_callback_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_callback_on_half_close_still_answers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_params_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_chunked_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
