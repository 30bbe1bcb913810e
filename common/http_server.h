/* HTTP/1.1 server on a libuv loop, parsing with http-parser.
 *
 * Keep-alive, one request at a time per connection (pipelined requests wait
 * their turn), Content-Length and chunked bodies, limits on header bytes (431),
 * body bytes (413), and timeouts (the connection is closed when a request does
 * not arrive completely within read_timeout, or when idle for idle_timeout).
 * Malformed requests get 400 with a plain-text reason and the connection is
 * closed; other connections are unaffected.
 *
 * Threading: everything here runs on the loop thread. A handler may answer at
 * once or later (after work on a thread pool, after a WAL fsync), but it must
 * call exactly one sl_http_respond*() per request, from the loop thread. The
 * request (and its arena) stays valid until then, even if the client has gone
 * away (sl_http_req_gone() tells; the response is then discarded).
 *
 * Reading stays armed while a handler holds a request (bytes of a pipelined
 * next request are buffered, up to one read's worth, not parsed), so a client
 * that hangs up meanwhile is noticed at once: sl_http_req_gone() turns true
 * and the callback registered with sl_http_req_on_gone() runs. After a reset
 * the response is discarded; after a half-close (EOF) it is still written,
 * with those of complete requests already received, then the connection
 * closes.
 *
 * Metrics (opts.metrics): <prefix>_http_requests_total{route,code},
 * <prefix>_http_request_duration_seconds{route} (route "unmatched" for 404s
 * and unparseable requests) and <prefix>_http_connections_dropped_total{reason}
 * (read_timeout, write_timeout, bad_request, body_too_large,
 * header_too_large, incomplete_request, read_error, write_error). */
#ifndef SL_HTTP_SERVER_H
#define SL_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"

struct sl_metrics;
struct sl_http_server;
struct sl_http_conn;

struct sl_http_header {
    struct sl_bytes name;  /* as received */
    struct sl_bytes value; /* surrounding whitespace trimmed */
};

struct sl_http_request {
    struct sl_http_server *server;
    struct sl_http_conn *conn; /* internal */
    const char *method;        /* "GET", "POST", ... (static string) */
    struct sl_bytes url;       /* raw request target */
    struct sl_bytes path;      /* percent-decoded path, no query */
    struct sl_bytes query;     /* raw query string without '?', may be empty */
    struct sl_http_header *headers;
    size_t nheaders;
    struct sl_buf body;    /* complete body (de-chunked, not decompressed) */
    struct sl_arena arena; /* per-request scratch, freed after the response */
    int64_t start_mono_ns;
    /* response state, set through the functions below */
    struct sl_buf resp_headers; /* extra "Name: value\r\n" lines */
    bool responded;
};

typedef void (*sl_http_handler)(struct sl_http_request *req, void *ud);

struct sl_http_server_opts {
    size_t max_header_bytes; /* 0: 64 KiB */
    size_t max_body_bytes;   /* 0: 64 MiB */
    int64_t read_timeout_ms; /* 0: 30 s; first byte to complete request, and the response write */
    int64_t idle_timeout_ms; /* 0: 120 s; between requests on a kept-alive connection */
    struct sl_metrics *metrics; /* optional: <prefix>_http_requests_total{route,code},
                                   <prefix>_http_request_duration_seconds */
    const char *metrics_prefix; /* e.g. "sluice_aggregator" */
};

struct sl_http_server *sl_http_server_new(uv_loop_t *loop, const struct sl_http_server_opts *o);

/* Routes are matched in registration order. method NULL matches any method;
 * a route with prefix=true matches any path starting with `path`. The route
 * name used in metrics is `path`. No match: 404. Method mismatch only: 405. */
void sl_http_server_route(struct sl_http_server *s, const char *method, const char *path,
                          bool prefix, sl_http_handler h, void *ud);

/* Binds and listens on "host:port" ("127.0.0.1:0" picks a free port; "[::1]:80"
 * for IPv6). Returns 0 or an SL_E* code with a reason in err. */
int sl_http_server_listen(struct sl_http_server *s, const char *host_port, struct sl_buf *err);
/* The bound port (after listen). */
int sl_http_server_port(const struct sl_http_server *s);

/* Stops accepting, closes idle connections, lets in-flight requests finish
 * (their responses are still written), then calls done (may be NULL) once
 * every handle is closed; the server is freed after done returns. */
void sl_http_server_close(struct sl_http_server *s, void (*done)(void *ud), void *ud);

/* Case-insensitive header lookup; NULL if absent. */
const struct sl_bytes *sl_http_req_header(const struct sl_http_request *req, const char *name);
/* URL-decoded value of a query parameter (first occurrence), copied into the
 * request arena. Returns 0, or SL_ENOENT if absent. */
int sl_http_req_param(struct sl_http_request *req, const char *name, struct sl_bytes *out);
/* Same over an application/x-www-form-urlencoded string (e.g. a POST body). */
int sl_http_form_param(struct sl_arena *arena, struct sl_bytes form, const char *name,
                       struct sl_bytes *out);
/* One form-encoded key or value decoded (%XX, '+' as space; malformed
 * escapes kept literally) into a NUL-terminated copy in arena. */
struct sl_bytes sl_http_form_decode(struct sl_arena *arena, struct sl_bytes v);
/* True once the client has closed or shut down its side of the connection. */
bool sl_http_req_gone(const struct sl_http_request *req);
/* Registers cb to run (on the loop thread, at most once, never after the
 * request is answered) when the client goes away while the handler holds req:
 * EOF or a connection error. The handler must still answer the request
 * (cb may do so). Replaces an earlier registration. Returns false, and never
 * calls cb, if the client is already gone. */
typedef void (*sl_http_gone_cb)(struct sl_http_request *req, void *ud);
bool sl_http_req_on_gone(struct sl_http_request *req, sl_http_gone_cb cb, void *ud);

/* Adds a response header; call before responding. */
void sl_http_req_add_header(struct sl_http_request *req, const char *name, const char *value);

/* Sends the response. body is copied. content_type may be NULL for no body. */
void sl_http_respond(struct sl_http_request *req, int status, const char *content_type,
                     const void *body, size_t len);
/* Takes ownership of body's memory (no copy); body is left empty. */
void sl_http_respond_buf(struct sl_http_request *req, int status, const char *content_type,
                         struct sl_buf *body);
/* text/plain; charset=utf-8 body from a format, with a trailing newline. */
void sl_http_respond_text(struct sl_http_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Protocol upgrade (WebSocket). A handler answers a request with
 * sl_http_respond_upgrade() instead of sl_http_respond*(): the 101 response
 * (with headers added by sl_http_req_add_header) is queued, the request is
 * freed, and the connection leaves HTTP. From then on received bytes go to
 * ops->on_data (bytes that followed the request are delivered on the next
 * loop iteration) and sl_http_upgraded_write() sends raw bytes. No read or
 * idle timeout applies: the protocol keeps its own.
 *
 * ops->on_closed runs exactly once, when the connection is gone (peer
 * closed, read or write error, sl_http_upgraded_close, server close), from
 * the loop and never from inside a call into this API; the conn pointer is
 * invalid once it returns. When the server closes, ops->on_shutdown (if not
 * NULL) is called so the protocol can say goodbye (e.g. a close frame) and
 * call sl_http_upgraded_close; without it the connection is closed at once.
 * Returns NULL (and on_closed never runs) if the client is already gone.
 * On a detached connection (below) writes go to its output buffer, bytes
 * that came with the request wait for the next feed, and on_closed never
 * runs. */
struct sl_http_upgrade_ops {
    void (*on_data)(struct sl_http_conn *c, const char *p, size_t n, void *ud);
    void (*on_shutdown)(struct sl_http_conn *c, void *ud);
    void (*on_closed)(void *ud);
};
struct sl_http_conn *sl_http_respond_upgrade(struct sl_http_request *req,
                                             const struct sl_http_upgrade_ops *ops, void *ud);
/* Queues bytes on an upgraded connection, taking data's memory (data is left
 * empty). Dropped when the connection is closing. */
void sl_http_upgraded_write(struct sl_http_conn *c, struct sl_buf *data);
/* Bytes queued by sl_http_upgraded_write and not yet written to the socket
 * (the bound a protocol checks for slow readers). */
size_t sl_http_upgraded_queued(const struct sl_http_conn *c);
/* Closes once the queued bytes are written, or after linger_ms at most. */
void sl_http_upgraded_close(struct sl_http_conn *c, int64_t linger_ms);

/* Internal, for unit tests and the fuzz target: a connection without a socket.
 * Bytes fed are parsed exactly as if read from a client (same callbacks,
 * limits and pipelining); responses are appended to the output buffer instead
 * of being written. Timeouts do not apply. sl__http_conn_feed returns 1 once
 * the connection is closed (after an error or a Connection: close
 * response), else 0. Free with sl__http_conn_free_detached once no handler
 * holds a request (sl__http_conn_busy). */
struct sl_http_conn *sl__http_conn_new_detached(struct sl_http_server *s);
int sl__http_conn_feed(struct sl_http_conn *c, const void *p, size_t n);
/* The client half-closes (reset false: EOF) or resets (true) the connection,
 * as the socket's read would report it. Returns like sl__http_conn_feed. */
int sl__http_conn_peer_close(struct sl_http_conn *c, bool reset);
const struct sl_buf *sl__http_conn_output(const struct sl_http_conn *c);
bool sl__http_conn_busy(const struct sl_http_conn *c);
void sl__http_conn_free_detached(struct sl_http_conn *c);

#endif
