/* The querier core: turns one validated read request into a complete
 * response (status and body) from the ingester's memory. No HTTP and no
 * event loop here, so it runs on a worker thread and in tests alike.
 *
 * Semantics follow Loki: the time range is [start, end); a log query's limit
 * applies to the entries merged over all streams (the newest `limit` for
 * backward, the oldest for forward); the result groups them by stream
 * (streams sorted by their labels), each stream's values in the query's
 * direction.
 *
 * Threading: sl_querier_run may run on any thread (the ingester's visit takes
 * the tenant's read lock); the request is only read. */
#ifndef SL_QUERIER_H
#define SL_QUERIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"

struct sl_ingester;
struct sl_select;

enum sl_querier_kind {
    SL_QUERIER_LOGS,         /* query_range: a log query, or a metric query over steps */
    SL_QUERIER_INSTANT,      /* query: a metric query at end_ns (400 for a log query) */
    SL_QUERIER_LABELS,       /* label names */
    SL_QUERIER_LABEL_VALUES, /* values of label_name, optionally under a selector */
    SL_QUERIER_SERIES,       /* label sets matching any of match[] */
    SL_QUERIER_INDEX_STATS,  /* index/stats: streams, chunks, entries, bytes under query */
};

struct sl_querier_request {
    enum sl_querier_kind kind;
    struct sl_bytes tenant;
    struct sl_bytes query;        /* LOGS: LogQL; LABEL_VALUES: selector or empty;
                                     INDEX_STATS: a selector */
    const struct sl_bytes *match; /* SERIES: nmatch selectors (at least one) */
    size_t nmatch;
    struct sl_bytes label_name;  /* LABEL_VALUES */
    int64_t start_ns, end_ns;    /* [start, end) */
    int64_t limit;               /* LOGS: > 0 */
    bool forward;                /* LOGS: oldest first */
    int64_t deadline_mono_ns;    /* sl_mono_ns() deadline; 0: none (504 past it) */
    const atomic_bool *canceled; /* NULL, or set by another thread to stop (503) */
    struct sl_select *select;    /* memory + object store (querier/select.h); NULL: memory */
    /* Metric queries: query_range evaluates at start, start+step, ... <= end
     * (end inclusive, as Loki); an instant query at end_ns. */
    int64_t step_ns;   /* > 0 for a metric query_range */
    size_t max_series; /* limits.max_query_series; 0: unlimited */
    /* limits.max_query_bytes_read: raw line bytes of the selected streams
     * in the range the query may read; past it the scan stops with a 400
     * naming the limit (LOGS and INSTANT). 0: unlimited. */
    uint64_t max_bytes_read;
    /* querier.split_queries_by_interval: a metric query_range covering more
     * than split_ns is evaluated in up to split_max parts (0: the number of
     * CPUs) on threads of its own, each a contiguous run of the steps
     * (querier/split.h); the answer is byte-identical. 0: never split. */
    int64_t split_ns;
    size_t split_max;
};

struct sl_querier_result {
    int status;         /* 200, 400 (bad query/unsupported), 500, 504 (timeout) */
    bool json;          /* body is JSON (else plain text, a reason) */
    struct sl_buf body; /* owned by the caller: sl_buf_release */
    uint64_t lines_scanned;
    uint64_t bytes_scanned;
    uint64_t entries_returned;
    uint64_t regex_limit_hits;
    size_t split_parts;  /* a split metric query: its parts (0: not split) */
    bool split_fallback; /* a part failed: evaluated whole (split_parts: 0) */
    bool bytes_limited;  /* refused at max_bytes_read (400) */
};

/* Fills *res (body initialised here). Never fails otherwise: errors are a
 * status and a reason in res->body. */
void sl_querier_run(struct sl_ingester *ing, const struct sl_querier_request *req,
                    struct sl_querier_result *res);

#endif
