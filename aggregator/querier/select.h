/* Data access of the querier: "for a tenant, label matchers and [from,
 * through): the matching series with their entries in time order, from the
 * ingester's memory and from the object store, duplicates removed".
 *
 * The store side goes through the index files of the days of the range
 * (index/<day>/<tenant>/...), downloaded once and kept (they never change),
 * and fetches a series' chunks only when the series is scanned; chunk blocks
 * outside the range are not decompressed. An entry present both in memory
 * and in a stored chunk (flushed, not yet released), or in two chunks, is
 * returned once: same timestamp and same line is the same entry.
 *
 * Execution (sl_select_run with prefetch): the stored chunks of the
 * matching series are fetched and decoded ahead of the callback on the
 * worker pool (querier/qpool.h), at most a few chunks per worker ahead, in
 * the order the callback will scan them; the callback's thread decodes a
 * chunk itself when no worker has started it. Entries come out exactly as a
 * serial scan gives them. With slice_memory, a memory-only stream of many
 * entries is scanned in time slices on the pool (under the tenant's read
 * lock, which the visit holds throughout). Chunks come from the local disk cache when there is one
 * (querier/chunk_cache.h), else from the store (and are then cached).
 *
 * Index files are kept in memory, least recently used dropped first once
 * their total passes index_cache_max_bytes (a file in use by a query is
 * never dropped).
 *
 * Metrics (if metrics): sluice_aggregator_query_chunks_fetched_total,
 * sluice_aggregator_query_chunk_bytes_fetched_total (from the store),
 * sluice_aggregator_query_chunks_missing_total,
 * sluice_aggregator_query_index_files_loaded_total,
 * sluice_aggregator_query_index_cache_evictions_total,
 * sluice_aggregator_query_index_cache_bytes, and the chunk cache's.
 *
 * Threading: a select may be used by several queries at once (the caches
 * have their own locks). The visit callback runs while the ingester holds
 * the tenant's read lock for memory-backed series, so it must not push; it
 * runs on the thread that called visit, as does the match predicate. */
#ifndef SL_SELECT_H
#define SL_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/index/index.h"
#include "aggregator/ingester/ingester.h"
#include "common/bytes.h"

struct sl_metrics;
struct sl_store;
struct sl_select;
struct sl_select_reader;

struct sl_select_opts {
    struct sl_store *store;     /* NULL: memory only */
    struct sl_metrics *metrics; /* may be NULL */
    /* Threads one query may use (the query's own and max_concurrency - 1
     * workers shared by all queries); 0: the number of CPUs. 1: serial. */
    size_t max_concurrency;
    const char *chunk_cache_dir;    /* NULL or "": no disk cache */
    uint64_t chunk_cache_max_bytes; /* 0: no disk cache */
    uint64_t index_cache_max_bytes; /* 0: SL_SELECT_INDEX_CACHE_DEFAULT */
};

#define SL_SELECT_INDEX_CACHE_DEFAULT (256ull << 20)

/* Never fails: a chunk cache that cannot be opened is logged and left out. */
struct sl_select *sl_select_new_opts(const struct sl_select_opts *o);
/* sl_select_new_opts with the defaults (no chunk cache). */
struct sl_select *sl_select_new(struct sl_store *store, struct sl_metrics *metrics);
void sl_select_free(struct sl_select *sel);

/* Calls fn for every series of tenant with entries in [from, through) in
 * memory or in the store that has every eq pair and passes match (NULL: all;
 * the caller may also filter in fn). info->entries is an estimate (> 0),
 * min_ts/max_ts bound the data. sel may be NULL: memory only. A non-zero
 * return from fn stops and is returned; store failures return their SL_E*
 * code. */
typedef int (*sl_select_fn)(const struct sl_stream_info *info, struct sl_select_reader *r,
                            void *ud);
int sl_select_visit(struct sl_select *sel, struct sl_ingester *ing, struct sl_bytes tenant,
                    const struct sl_index_matcher *eq, size_t neq, sl_index_label_fn match,
                    void *match_ud, int64_t from, int64_t through, sl_select_fn fn, void *ud);

/* A visit, as sl_select_visit, with execution hints. */
struct sl_select_spec {
    struct sl_bytes tenant;
    const struct sl_index_matcher *eq; /* narrow through the index postings */
    size_t neq;
    /* Tests on one label's value that reject "" (regex matchers): narrow the
     * streams in memory through the ingester's postings (postings.h). */
    const struct sl_postings_pred *pred;
    size_t npred;
    sl_index_label_fn match; /* NULL: all */
    void *match_ud;
    int64_t from, through;
    /* The callback scans every series it is given over [from, through)
     * (it may stop early): fetch and decode chunks ahead on the pool. */
    bool prefetch;
    bool backward; /* the scans run backward: newest chunks first */
    /* Scan big streams in memory in time slices on the pool: faster, but
     * the lines are copied (about 1.5x the CPU of a serial scan), and work
     * ahead is wasted when a scan stops early; for full scans only. */
    bool slice_memory;
};
int sl_select_run(struct sl_select *sel, struct sl_ingester *ing, const struct sl_select_spec *sp,
                  sl_select_fn fn, void *ud);

/* Label names (name NULL), or the non-empty values of *name, of the series
 * with entries in [from, through) in memory or in the store (through the
 * index postings, without reading series one by one). fn may see a value
 * several times (the caller removes repeats); v is valid during the call
 * only (memory is visited under the tenant's read lock). */
int sl_select_labels(struct sl_select *sel, struct sl_ingester *ing, struct sl_bytes tenant,
                     const struct sl_bytes *name, int64_t from, int64_t through,
                     sl_index_bytes_fn fn, void *ud);

/* Stored chunks of the series overlapping [from, through) (0 for a series
 * only in memory). */
size_t sl_select_reader_chunks(const struct sl_select_reader *r, int64_t from, int64_t through);

/* Entries of the series with from <= ts < through, ascending (descending if
 * backward), without duplicates. Same contract as sl_stream_reader_scan. */
int sl_select_reader_scan(struct sl_select_reader *r, int64_t from, int64_t through, bool backward,
                          sl_entry_fn fn, void *ud);
/* The same scan with each entry's structured metadata (as
 * sl_stream_reader_scan_entries); of two entries with the same timestamp
 * and line, one is returned with its metadata. */
int sl_select_reader_scan_entries(struct sl_select_reader *r, int64_t from, int64_t through,
                                  bool backward, sl_chunk_entry_fn fn, void *ud);

#endif
