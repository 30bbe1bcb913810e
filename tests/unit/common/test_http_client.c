/* HTTP client against the HTTP server on the same loop (driven by the test),
 * and sl_http_fetch against a server loop in a thread. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
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

#include "common/err.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/mem.h"

struct fx {
    uv_loop_t loop;
    struct sl_http_server *srv;
    struct sl_http_client *cli;
    int port;
    char base[64];
    struct sl_http_request *held[4]; /* /never: answered at teardown */
    int nheld;
};

struct result {
    bool done;
    int status, err;
    char body[256];
    size_t body_len;
    char xfoo[64];
    int64_t retry_after_ms;
    bool retryable;
};

/* ---- handlers ---- */

static void h_hello(struct sl_http_request *req, void *ud)
{
    (void)ud;
    sl_http_req_add_header(req, "X-Foo", "bar baz");
    sl_http_respond(req, 200, "text/plain", "hello", 5);
}

static void h_echo(struct sl_http_request *req, void *ud)
{
    (void)ud;
    const struct sl_bytes *cl = sl_http_req_header(req, "Content-Length");
    const struct sl_bytes *te = sl_http_req_header(req, "Transfer-Encoding");
    const struct sl_bytes *ex = sl_http_req_header(req, "Expect");
    const struct sl_bytes *ct = sl_http_req_header(req, "Content-Type");
    const struct sl_bytes *tok = sl_http_req_header(req, "X-Token");
    sl_http_respond_text(req, 200, "%s cl=%.*s te=%d expect=%d ct=%.*s tok=%.*s body=%.*s",
                         req->method, cl ? (int)cl->len : 1, cl ? cl->ptr : "-", te != NULL,
                         ex != NULL, ct ? (int)ct->len : 1, ct ? ct->ptr : "-",
                         tok ? (int)tok->len : 1, tok ? tok->ptr : "-", (int)req->body.len,
                         req->body.data ? req->body.data : "");
}

static void h_throttle(struct sl_http_request *req, void *ud)
{
    (void)ud;
    sl_http_req_add_header(req, "Retry-After", "7");
    sl_http_respond_text(req, 429, "slow down");
}

static void h_unavailable(struct sl_http_request *req, void *ud)
{
    (void)ud;
    char date[64];
    time_t t = time(NULL) + 20;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    sl_http_req_add_header(req, "Retry-After", date);
    sl_http_respond_text(req, 503, "later");
}

static void h_bad(struct sl_http_request *req, void *ud)
{
    (void)ud;
    sl_http_respond_text(req, 400, "no");
}

static void h_big(struct sl_http_request *req, void *ud)
{
    (void)ud;
    char *b = sl_malloc(10000);
    memset(b, 'x', 10000);
    sl_http_respond(req, 200, "text/plain", b, 10000);
    sl_free(b);
}

static void h_never(struct sl_http_request *req, void *ud)
{
    struct fx *f = ud;
    assert_true(f->nheld < 4);
    f->held[f->nheld++] = req;
}

static void add_routes(struct sl_http_server *s, struct fx *f)
{
    sl_http_server_route(s, "GET", "/hello", false, h_hello, f);
    sl_http_server_route(s, NULL, "/echo", false, h_echo, f);
    sl_http_server_route(s, "GET", "/throttle", false, h_throttle, f);
    sl_http_server_route(s, "GET", "/unavailable", false, h_unavailable, f);
    sl_http_server_route(s, "GET", "/bad", false, h_bad, f);
    sl_http_server_route(s, "GET", "/big", false, h_big, f);
    sl_http_server_route(s, "GET", "/never", false, h_never, f);
}

static int setup(void **state)
{
    struct fx *f = SL_NEW(struct fx);
    uv_loop_init(&f->loop);
    f->srv = sl_http_server_new(&f->loop, NULL);
    add_routes(f->srv, f);
    assert_int_equal(sl_http_server_listen(f->srv, "127.0.0.1:0", NULL), 0);
    f->port = sl_http_server_port(f->srv);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", f->port);
    f->cli = sl_http_client_new(&f->loop, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < f->nheld; i++)
        sl_http_respond_text(f->held[i], 200, "late gone=%d", sl_http_req_gone(f->held[i]));
    sl_http_client_free(f->cli);
    sl_http_server_close(f->srv, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_free(f);
    return 0;
}

static void on_done(struct sl_http_response *resp, void *ud)
{
    struct result *r = ud;
    r->done = true;
    r->status = resp->status;
    r->err = resp->err;
    r->retry_after_ms = resp->retry_after_ms;
    r->retryable = sl_http_retryable(resp);
    r->body_len = resp->body.len;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)resp->body.len,
             resp->body.data ? resp->body.data : "");
    struct sl_bytes v;
    if (sl_http_response_header(resp, "x-foo", &v) == 0)
        snprintf(r->xfoo, sizeof(r->xfoo), "%.*s", (int)v.len, v.ptr);
}

static void run_until(struct fx *f, struct result *r)
{
    while (!r->done)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void do_req(struct fx *f, struct sl_http_req_opts *o, const char *path, struct result *r)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", f->base, path);
    o->url = url;
    memset(r, 0, sizeof(*r));
    assert_int_equal(sl_http_client_do(f->cli, o, on_done, r), 0);
    run_until(f, r);
}

/* ---- tests ---- */

static void test_status_body_headers(void **state)
{
    struct fx *f = *state;
    struct result r;
    struct sl_http_req_opts o = {.method = "GET"};
    do_req(f, &o, "/hello", &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.xfoo, "bar baz");
    assert_int_equal(r.retry_after_ms, -1);
    assert_false(r.retryable);
    /* connection reuse: a second request on the same client */
    do_req(f, &o, "/hello", &r);
    assert_int_equal(r.status, 200);
    do_req(f, &o, "/bad", &r);
    assert_int_equal(r.status, 400);
    assert_false(r.retryable);
    do_req(f, &o, "/nope", &r);
    assert_int_equal(r.status, 404);
}

static void test_bodies_have_length(void **state)
{
    struct fx *f = *state;
    struct result r;
    const char *hdrs[] = {"X-Token: t1", NULL};
    struct sl_http_req_opts o = {
        .method = "POST", .body = "abcdef", .body_len = 6, .headers = hdrs};
    do_req(f, &o, "/echo", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST cl=6 te=0 expect=0 ct=- tok=t1 body=abcdef\n");
    /* big enough that curl would otherwise send Expect: 100-continue */
    char *big = sl_malloc(2 << 20);
    memset(big, 'b', 2 << 20);
    const char *ct[] = {"Content-Type: application/x-msgpack", NULL};
    struct sl_http_req_opts o2 = {.method = "PUT", .body = big, .body_len = 2 << 20, .headers = ct};
    do_req(f, &o2, "/echo", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "PUT cl=2097152 te=0 expect=0 ct=application/x-msgpack"));
    sl_free(big);
    struct sl_http_req_opts o3 = {.method = "PUT"};
    do_req(f, &o3, "/echo", &r);
    assert_string_equal(r.body, "PUT cl=0 te=0 expect=0 ct=- tok=- body=\n");
    struct sl_http_req_opts o4 = {.method = "DELETE"};
    do_req(f, &o4, "/echo", &r);
    assert_string_equal(r.body, "DELETE cl=- te=0 expect=0 ct=- tok=- body=\n");
    struct sl_http_req_opts o5 = {.method = "HEAD"};
    do_req(f, &o5, "/hello", &r);
    assert_int_equal(r.status, 405);
    assert_int_equal(r.body_len, 0);
}

static void test_retry_after(void **state)
{
    struct fx *f = *state;
    struct result r;
    struct sl_http_req_opts o = {.method = "GET"};
    do_req(f, &o, "/throttle", &r);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.retry_after_ms, 7000);
    assert_true(r.retryable);
    do_req(f, &o, "/unavailable", &r);
    assert_int_equal(r.status, 503);
    assert_true(r.retry_after_ms >= 17000 && r.retry_after_ms <= 21000);
    assert_true(r.retryable);
}

static void test_retry_after_parse(void **state)
{
    (void)state;
    const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT("120"), now), 120000);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT(" 0 "), now), 0);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT("Sun, 06 Nov 1994 08:50:07 GMT"), now),
                     30000);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT("Sunday, 06-Nov-94 08:49:47 GMT"), now),
                     10000);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT("Sun Nov  6 08:49:38 1994"), now), 1000);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT("Sat, 05 Nov 1994 08:49:37 GMT"), now), 0);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT("12x"), now), -1);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT("-5"), now), -1);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT(""), now), -1);
    assert_int_equal(sl_http_retry_after_ms(SL_BYTES_LIT("soon"), now), -1);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct result r;
    struct sl_http_req_opts o = {.method = "GET", .timeout_ms = 200};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do_req(f, &o, "/never", &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_int_equal(r.err, SL_ETIMEDOUT);
    assert_true(r.retryable);
    assert_true(ms >= 180 && ms < 2000);
    assert_int_equal(f->nheld, 1);
}

static void test_too_big(void **state)
{
    struct fx *f = *state;
    struct result r;
    struct sl_http_req_opts o = {.method = "GET", .max_response_bytes = 1000};
    do_req(f, &o, "/big", &r);
    assert_int_equal(r.err, SL_ETOOBIG);
    assert_false(r.retryable);
    o.max_response_bytes = 10000;
    do_req(f, &o, "/big", &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.body_len, 10000);
}

static size_t streamed, stream_calls;
static int stream_status;

static int on_stream(int status, struct sl_bytes chunk, void *ud)
{
    assert_non_null(ud);
    stream_status = status;
    streamed += chunk.len;
    stream_calls++;
    return 0;
}

static int on_stream_abort(int status, struct sl_bytes chunk, void *ud)
{
    (void)status;
    (void)ud;
    streamed += chunk.len;
    return 1;
}

/* Streamed bodies reach on_body, skip resp.body and the size limit; a
 * non-zero return aborts the request. */
static void test_stream_body(void **state)
{
    struct fx *f = *state;
    struct result r;
    streamed = stream_calls = 0;
    struct sl_http_req_opts o = {.method = "GET", .max_response_bytes = 1000, .on_body = on_stream};
    do_req(f, &o, "/big", &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(streamed, 10000);
    assert_true(stream_calls >= 1);
    assert_int_equal(stream_status, 200);
    streamed = 0;
    o.on_body = on_stream_abort;
    do_req(f, &o, "/big", &r);
    assert_int_equal(r.err, SL_ECANCELED);
    assert_true(streamed > 0 && streamed <= 10000);
}

/* A port nobody listens on. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_refused_and_invalid(void **state)
{
    struct fx *f = *state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", dead_port());
    struct result r = {0};
    struct sl_http_req_opts o = {.method = "GET", .url = url};
    assert_int_equal(sl_http_client_do(f->cli, &o, on_done, &r), 0);
    run_until(f, &r);
    assert_int_equal(r.err, SL_ECONN);
    assert_int_equal(r.status, 0);
    assert_true(r.retryable);
    struct sl_http_req_opts bad = {.method = "GET", .url = "ftp://x/y"};
    assert_int_equal(sl_http_client_do(f->cli, &bad, on_done, &r), SL_EINVAL);
    struct sl_http_req_opts bad2 = {.method = "G T", .url = url};
    assert_int_equal(sl_http_client_do(f->cli, &bad2, on_done, &r), SL_EINVAL);
    struct sl_http_req_opts bad3 = {.method = "GET", .url = "not a url"};
    assert_int_equal(sl_http_client_do(f->cli, &bad3, on_done, &r), SL_EINVAL);
}

static void test_cancel_on_free(void **state)
{
    struct fx *f = *state;
    struct result r1 = {0}, r2 = {0};
    char url[128];
    snprintf(url, sizeof(url), "%s/never", f->base);
    struct sl_http_req_opts o = {.method = "GET", .url = url};
    assert_int_equal(sl_http_client_do(f->cli, &o, on_done, &r1), 0);
    assert_int_equal(sl_http_client_do(f->cli, &o, on_done, &r2), 0);
    assert_int_equal(sl_http_client_inflight(f->cli), 2);
    while (f->nheld < 2)
        uv_run(&f->loop, UV_RUN_ONCE);
    sl_http_client_free(f->cli);
    f->cli = NULL;
    assert_true(r1.done && r2.done);
    assert_int_equal(r1.err, SL_ECANCELED);
    assert_int_equal(r2.err, SL_ECANCELED);
    assert_false(r1.retryable);
}

static void on_done_free(struct sl_http_response *resp, void *ud)
{
    struct fx *f = ud;
    assert_int_equal(resp->status, 200);
    /* a callback may free its own client; others in flight are cancelled */
    sl_http_client_free(f->cli);
    f->cli = NULL;
}

static void test_free_from_callback(void **state)
{
    struct fx *f = *state;
    char url[128], never[128];
    snprintf(url, sizeof(url), "%s/hello", f->base);
    snprintf(never, sizeof(never), "%s/never", f->base);
    struct result r = {0};
    struct sl_http_req_opts o1 = {.method = "GET", .url = never};
    assert_int_equal(sl_http_client_do(f->cli, &o1, on_done, &r), 0);
    while (f->nheld < 1)
        uv_run(&f->loop, UV_RUN_ONCE);
    struct sl_http_req_opts o2 = {.method = "GET", .url = url};
    assert_int_equal(sl_http_client_do(f->cli, &o2, on_done_free, f), 0);
    while (f->cli)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(r.done);
    assert_int_equal(r.err, SL_ECANCELED);
}

/* ---- a kept-alive connection reset by the peer mid-request ---- */

struct rst_srv {
    int lfd, port;
    int accepted;
};

static void read_request(int fd)
{
    char buf[4096];
    size_t n = 0;
    while (n < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            return;
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return;
    }
}

static void reply(int fd, const char *body)
{
    char out[256];
    int n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    assert_int_equal(write(fd, out, (size_t)n), n);
}

/* Answers the first request of connection 1, reads its second request and
 * resets the connection (SO_LINGER 0), then answers one request on a new
 * connection. */
static void *rst_thread(void *arg)
{
    struct rst_srv *s = arg;
    int a = accept(s->lfd, NULL, NULL);
    s->accepted++;
    read_request(a);
    reply(a, "one");
    read_request(a);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(a);
    int b = accept(s->lfd, NULL, NULL);
    s->accepted++;
    read_request(b);
    reply(b, "two");
    read_request(b); /* until the client closes */
    close(b);
    return NULL;
}

static void test_reused_connection_reset(void **state)
{
    struct fx *f = *state;
    struct rst_srv s = {0};
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(s.lfd, (struct sockaddr *)&a, &len);
    assert_int_equal(listen(s.lfd, 4), 0);
    pthread_t th;
    pthread_create(&th, NULL, rst_thread, &s);

    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    struct sl_http_req_opts o = {.method = "GET", .url = url};
    struct result r = {0};
    assert_int_equal(sl_http_client_do(f->cli, &o, on_done, &r), 0);
    run_until(f, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "one");
    /* The second request goes out on the kept-alive connection, which the
     * server resets before answering: it is retried on a new connection. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(sl_http_client_do(f->cli, &o, on_done, &r), 0);
    run_until(f, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "two");
    assert_int_equal(s.accepted, 2);
    sl_http_client_free(f->cli);
    f->cli = NULL;
    pthread_join(th, NULL);
    close(s.lfd);
}

/* ---- sl_http_fetch: blocking, so the server loop runs in a thread ---- */

static void *loop_thread(void *arg)
{
    uv_loop_t *loop = arg;
    uv_run(loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_stop(uv_async_t *a)
{
    struct sl_http_server *s = a->data;
    sl_http_server_close(s, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void test_fetch(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fx f = {0};
    struct sl_http_server *s = sl_http_server_new(&loop, NULL);
    add_routes(s, &f);
    assert_int_equal(sl_http_server_listen(s, "127.0.0.1:0", NULL), 0);
    uv_async_t stop;
    uv_async_init(&loop, &stop, on_stop);
    stop.data = s;
    pthread_t th;
    pthread_create(&th, NULL, loop_thread, &loop);

    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo?x=1", sl_http_server_port(s));
    struct sl_http_req_opts o = {.method = "POST", .url = url, .body = "zz", .body_len = 2};
    struct sl_http_response resp;
    assert_int_equal(sl_http_fetch(NULL, &o, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.err, 0);
    assert_true(
        sl_bytes_eq_str(sl_buf_bytes(&resp.body), "POST cl=2 te=0 expect=0 ct=- tok=- body=zz\n"));
    struct sl_bytes v;
    assert_int_equal(sl_http_response_header(&resp, "content-type", &v), 0);
    assert_true(sl_bytes_eq_str(v, "text/plain; charset=utf-8"));
    assert_int_equal(sl_http_response_header(&resp, "x-none", &v), SL_ENOENT);
    sl_http_response_release(&resp);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/throttle", sl_http_server_port(s));
    struct sl_http_req_opts o2 = {.method = "GET", .url = url};
    assert_int_equal(sl_http_fetch(NULL, &o2, &resp), 0);
    assert_int_equal(resp.status, 429);
    assert_int_equal(resp.retry_after_ms, 7000);
    sl_http_response_release(&resp);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", dead_port());
    assert_int_equal(sl_http_fetch(NULL, &o2, &resp), SL_ECONN);
    assert_true(resp.errmsg[0] != 0);
    sl_http_response_release(&resp);
    struct sl_http_req_opts o3 = {.method = "GET", .url = "gopher://x"};
    assert_int_equal(sl_http_fetch(NULL, &o3, &resp), SL_EINVAL);
    sl_http_response_release(&resp);

    uv_async_send(&stop);
    pthread_join(th, NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test_setup_teardown(test_status_body_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bodies_have_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_on_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_connection_reset, setup, teardown),
        cmocka_unit_test(test_fetch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
