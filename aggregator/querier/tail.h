/* Live tail: Loki's /loki/api/v1/tail over WebSocket.
 *
 * Parameters (query string of a GET): query (a log query), limit (100; at
 * most limits.max_entries_limit_per_query), start (default one hour ago;
 * RFC3339, Unix seconds or nanoseconds), delay_for (whole seconds, 0-5).
 * A bad parameter, a query that does not parse, a metric query ("only log
 * selector is supported") or too many tails of the tenant get a plain-text
 * 400 before any upgrade, as Loki answers.
 *
 * After the upgrade the server sends the newest `limit` entries since start
 * (oldest first), then, about once a second, every new entry matching the
 * query in timestamp order. Each text frame is
 *   {"streams":[{"stream":{...},"values":[["<ns>","<line>"],...]},...],
 *    "dropped_entries":[{"labels":{...},"timestamp":"<ns>"},...]}
 * with consecutive entries of one stream grouped, so reading the streams in
 * order gives the entries in order. Nothing is sent twice (a set of what was
 * sent recently). An entry is sent once its timestamp is older than now
 * minus delay_for, so entries that arrive up to delay_for late still come in
 * order; one that arrives later than that, but within late_grace (2 s) of
 * the last poll, is still sent, after newer ones (counted in
 * sluice_aggregator_tail_late_entries_total); later still, it is not sent.
 * Each poll re-reads late_grace worth of entries for that. The poll reads
 * memory and the store (querier/select.h) on the libuv thread pool.
 *
 * A client that does not read: once more than max_queued_bytes wait to be
 * written, further entries are dropped, counted in
 * sluice_aggregator_tail_dropped_entries_total, logged, and reported in
 * the next frame's dropped_entries (up to 1000 per frame; more are only
 * counted). The connection is closed with a close frame when the client
 * closes, after max_duration (Loki's tail_max_duration), on server shutdown
 * (1001), or on a protocol error from the client (1002/1007/1009).
 *
 * Metrics: sluice_aggregator_tail_active (gauge),
 * sluice_aggregator_tail_entries_sent_total,
 * sluice_aggregator_tail_dropped_entries_total,
 * sluice_aggregator_tail_late_entries_total,
 * sluice_aggregator_tail_ended_total{reason} (client_close, client_gone,
 * protocol_error, max_duration, shutdown, query_failed),
 * sluice_aggregator_tail_poll_errors_total (a poll that failed, e.g. a store
 * error or a timeout; retried at the next tick).
 *
 * Threading: everything on the loop thread, except the polls. */
#ifndef SL_TAIL_H
#define SL_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/http_server.h"

struct sl_ingester;
struct sl_metrics;
struct sl_select;
struct sl_tail_api;

struct sl_tail_opts {
    uv_loop_t *loop; /* required: polls run on its thread pool */
    bool auth_enabled;
    int64_t max_entries_limit; /* limits.max_entries_limit_per_query; 0: none */
    int64_t query_timeout_ns;  /* per poll; 0: 1 min */
    struct sl_select *select;  /* NULL: memory only */
    int64_t max_duration_ns;   /* querier.tail_max_duration; 0: 1 h */
    int64_t poll_interval_ms;  /* 0: 1000 */
    size_t max_queued_bytes;   /* querier.tail_max_queued_bytes, per connection; 0: 4 MiB */
    int max_tails_per_tenant;  /* limits.max_concurrent_tail_requests; 0: 10 */
    int64_t late_grace_ns;     /* 0: 2 s (see above) */
};

/* Registers GET /loki/api/v1/tail on srv. ing and m (may be NULL) must
 * outlive the object. */
struct sl_tail_api *sl_tail_api_new(struct sl_http_server *srv, struct sl_ingester *ing,
                                    struct sl_metrics *m, const struct sl_tail_opts *o);
/* Call on the loop thread once the server is closed (every tail has then
 * been told to end); tails still finishing a poll keep the object alive
 * until they are done. NULL is a no-op. */
void sl_tail_api_free(struct sl_tail_api *t);
/* Tails currently open (tests). */
size_t sl_tail_api_active(const struct sl_tail_api *t);

#endif
