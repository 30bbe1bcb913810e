/* HTTP client on libcurl's multi interface, driven by a libuv loop
 * (CURLMOPT_SOCKETFUNCTION + CURLMOPT_TIMERFUNCTION with uv_poll/uv_timer).
 * Connections are reused (keep-alive); TLS through OpenSSL.
 *
 * Threading: an sl_http_client belongs to one loop; call it from that loop's
 * thread only; callbacks run on that thread. sl_http_fetch() is a blocking
 * one-shot for command-line tools and tests (its own curl easy handle). */
#ifndef SL_HTTP_CLIENT_H
#define SL_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/bytes.h"

struct sl_http_client;

struct sl_http_client_opts {
    const char *ca_file; /* NULL: system store */
    bool insecure_skip_verify;
    int64_t connect_timeout_ms; /* 0: 5 s */
    long max_connections;       /* 0: 8 per host */
};

struct sl_http_req_opts {
    const char *method; /* "GET", "POST", "PUT", "DELETE", "HEAD" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, may be NULL */
    const void *body;           /* borrowed until the callback */
    size_t body_len;            /* Content-Length is always sent for bodies */
    int64_t timeout_ms;         /* whole request; 0: 30 s */
    size_t max_response_bytes;  /* 0: 64 MiB; larger responses fail with SL_ETOOBIG */
    /* Streaming (e.g. a watch): when set, body bytes go to on_body as they
     * arrive (any status; status is the final response's), are not kept in
     * resp.body and max_response_bytes does not apply. Returning non-zero
     * aborts the request (the final cb gets err = SL_ECANCELED). Runs on the
     * loop thread; chunk is valid only during the call; ud is sl_http_client_do's
     * (NULL with sl_http_fetch). */
    int (*on_body)(int status, struct sl_bytes chunk, void *ud);
};

struct sl_http_response {
    int status;            /* HTTP status, 0 when no response was received */
    int err;               /* 0, or SL_ETIMEDOUT/SL_ECONN/SL_ETOOBIG/SL_ECANCELED/SL_EIO */
    char errmsg[256];      /* curl's message when err != 0 */
    struct sl_buf headers; /* raw response header lines of the final response */
    struct sl_buf body;
    int64_t retry_after_ms; /* from Retry-After (seconds or HTTP date), -1 if absent */
};

/* Case-insensitive lookup in resp->headers; returns 0 and a view into the
 * header buffer, or SL_ENOENT. */
int sl_http_response_header(const struct sl_http_response *resp, const char *name,
                            struct sl_bytes *out);
void sl_http_response_release(struct sl_http_response *resp);

/* Called once per request on the loop thread. resp is owned by the client and
 * valid only during the call (steal resp->body with sl_buf_detach if needed). */
typedef void (*sl_http_client_cb)(struct sl_http_response *resp, void *ud);

struct sl_http_client *sl_http_client_new(uv_loop_t *loop, const struct sl_http_client_opts *o);
/* Starts a request. Returns 0, or SL_EINVAL for a bad URL/method (cb not called). */
int sl_http_client_do(struct sl_http_client *c, const struct sl_http_req_opts *r,
                      sl_http_client_cb cb, void *ud);
/* Number of requests in flight. */
size_t sl_http_client_inflight(const struct sl_http_client *c);
/* Cancels every request in flight (each cb gets err = SL_ECANCELED), then frees
 * the client once libuv has closed its handles. Call on the loop thread. */
void sl_http_client_free(struct sl_http_client *c);

/* Blocking request (no loop). Fills *resp (caller releases it). Returns 0 if a
 * response was received (any status), else resp->err. */
int sl_http_fetch(const struct sl_http_client_opts *o, const struct sl_http_req_opts *r,
                  struct sl_http_response *resp);

/* Classifies a result: true if a retry may succeed (transport error, timeout,
 * 408, 429, 5xx), false for success or a permanent failure (other 4xx). */
bool sl_http_retryable(const struct sl_http_response *resp);

/* Parses a Retry-After value: delta-seconds, or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime) taken relative to now_unix_s (a date in the past gives
 * 0). Returns milliseconds, or -1 if the value is neither. Pure, thread-safe. */
int64_t sl_http_retry_after_ms(struct sl_bytes v, int64_t now_unix_s);

#endif
