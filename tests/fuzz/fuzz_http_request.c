/* Fuzzes the HTTP server's request parsing: bytes go through the real
 * connection state machine (http-parser callbacks, header/body limits,
 * pipelining, keep-alive, error responses) on a socket-less connection.
 * The first input byte picks the size of the pieces the rest is fed in, so
 * requests split at every possible boundary get exercised. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"

static struct sl_http_server *srv;
static struct sl_metrics *metrics; /* lives for the process */

static void h_echo(struct sl_http_request *req, void *ud)
{
    (void)ud;
    struct sl_bytes v;
    size_t total = req->body.len;
    if (sl_http_req_param(req, "q", &v) == 0)
        total += v.len;
    if (sl_http_form_param(&req->arena, sl_buf_bytes(&req->body), "x", &v) == 0)
        total += v.len;
    const struct sl_bytes *h = sl_http_req_header(req, "X-Scope-OrgID");
    if (h)
        sl_http_req_add_header(req, "X-Seen", "1");
    for (size_t i = 0; i < req->nheaders; i++)
        total += req->headers[i].name.len + req->headers[i].value.len;
    sl_http_respond_text(req, 200, "%zu %.*s", total, (int)req->path.len, req->path.ptr);
}

static void h_buf(struct sl_http_request *req, void *ud)
{
    (void)ud;
    sl_http_respond_buf(req, 204, NULL, &req->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv) {
        static uv_loop_t loop;
        uv_loop_init(&loop);
        sl_log_set_level(SL_LOG_ERROR);
        metrics = sl_metrics_new();
        struct sl_http_server_opts o = {.max_header_bytes = 2048,
                                        .max_body_bytes = 4096,
                                        .metrics = metrics,
                                        .metrics_prefix = "fuzz"};
        srv = sl_http_server_new(&loop, &o);
        sl_http_server_route(srv, "GET", "/loki/api/v1/query", false, h_echo, NULL);
        sl_http_server_route(srv, "POST", "/loki/api/v1/push", false, h_buf, NULL);
        sl_http_server_route(srv, NULL, "/api/", true, h_echo, NULL);
    }
    if (size == 0)
        return 0;
    size_t piece = data[0] ? data[0] : size;
    data++;
    size--;
    struct sl_http_conn *c = sl__http_conn_new_detached(srv);
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (sl__http_conn_feed(c, data + off, n))
            break;
    }
    /* Every output must start like a response. */
    const struct sl_buf *out = sl__http_conn_output(c);
    if (out->len && memcmp(out->data, "HTTP/1.1 ", 9) != 0)
        __builtin_trap();
    sl__http_conn_free_detached(c);
    return 0;
}
