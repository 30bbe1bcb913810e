/* The Loki read API over the ingester: /loki/api/v1/query_range (log queries:
 * stream selectors and line filters), /loki/api/v1/labels,
 * /loki/api/v1/label/<name>/values, /loki/api/v1/series. Responses have Loki's
 * JSON shapes. Queries run on the libuv thread pool; the answer is sent from
 * the loop thread. */
#ifndef SL_QUERY_API_H
#define SL_QUERY_API_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/http_server.h"

struct sl_ingester;
struct sl_select;
struct sl_metrics;

struct sl_query_api_opts {
    bool auth_enabled;
    int64_t max_entries_limit;    /* limits.max_entries_limit_per_query (5000) */
    int64_t max_query_series;     /* limits.max_query_series (500) */
    int64_t query_timeout_ns;     /* limits.query_timeout (1m) */
    int64_t max_query_bytes_read; /* limits.max_query_bytes_read; 0: unlimited */
    int64_t split_interval_ns;    /* querier.split_queries_by_interval; 0: no split */
    int64_t max_concurrency;      /* querier.max_concurrency (split parts); 0: CPUs */
    uv_loop_t *loop;              /* the server's loop: queries run on its thread pool.
                                     NULL: they run inline on the loop thread (tests) */
    struct sl_select *select;     /* store access (querier/select.h); NULL: memory only */
    /* live tail (querier/tail.h); 0: its defaults */
    int max_concurrent_tail_requests; /* limits.max_concurrent_tail_requests (10) */
    int64_t tail_max_duration_ns;     /* querier.tail_max_duration (1h) */
    size_t tail_max_queued_bytes;     /* querier.tail_max_queued_bytes (4MiB) */
};

struct sl_query_api;

/* Registers the routes on srv (GET and POST each): query_range, query (400
 * for now: no instant queries yet), labels and label (names),
 * label/<name>/values, series, index/stats (GET and POST), status/buildinfo
 * (GET). JSON answers of 1 KiB or more are gzip-compressed when the request's
 * Accept-Encoding allows gzip. ing and m (may be NULL) must outlive the
 * returned object. Errors are Loki-like plain text: 400 for bad parameters,
 * queries and unsupported constructs, 504 on limits.query_timeout, 500.
 * A query whose client hangs up (sl_http_req_on_gone) is canceled like one
 * past its timeout and answers 499 "client canceled request".
 * Registers (if m): sluice_aggregator_queries_total{endpoint,code},
 * sluice_aggregator_queries_cancelled_total{reason} (client_gone, shutdown,
 * timeout),
 * sluice_aggregator_query_{lines,bytes}_scanned_total,
 * sluice_aggregator_query_regex_limit_hits_total,
 * sluice_aggregator_query_split_parts_total,
 * sluice_aggregator_query_split_fallbacks_total,
 * sluice_aggregator_query_bytes_limit_refused_total,
 * sluice_aggregator_query_duration_seconds{endpoint}. */
struct sl_query_api *sl_query_api_new(struct sl_http_server *srv, struct sl_ingester *ing,
                                      struct sl_metrics *m, const struct sl_query_api_opts *o);
/* Shutdown: queries running now stop within about a thousand entries and
 * answer 503 ("query canceled: shutting down"). Call on the loop thread,
 * before closing the server (which waits for the answers). NULL is ok. */
void sl_query_api_cancel(struct sl_query_api *q);
/* Call on the loop thread once the server is closed. Queries still running
 * on the thread pool keep the object alive until their answers are sent. */
void sl_query_api_free(struct sl_query_api *q);

#endif
