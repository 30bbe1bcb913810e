/* Compactor (DESIGN.md "Compactor"): merges each (period, tenant)'s index
 * files into one and applies retention.
 *
 * A run, for every "index/<day>/<tenant>/" prefix in the store:
 *   1. lists the index files and reads every series and chunk reference;
 *   2. drops the references whose through time is older than
 *      now - retention (retention 0: keep everything);
 *   3. writes the union (chunk references deduplicated by key) as
 *      "index/<day>/<tenant>/compactor-<ns>.idx", unless nothing is left;
 *   4. deletes the input files it listed (never a file that appeared since);
 *   5. deletes the chunk objects dropped in step 2;
 *   6. (orphan_grace_ns > 0, every index file read) lists chunks/ and deletes
 *      the chunk objects that no index file references and that were written
 *      more than orphan_grace_ns before the run (the store's write time).
 * A prefix with a single file and nothing expired is left alone. Every step
 * is safe to interrupt: until step 4 ends a reader sees the old and the new
 * files, which hold the same references (the querier dedupes chunk refs by
 * key); after an interruption in step 5 the next run finds no reference to
 * the remaining expired chunks: step 6 deletes them once past the grace
 * period. The grace period keeps step 6 away from chunks in flight (stored
 * by a flusher whose index upload is still to come): it must exceed the
 * longest delay between a chunk put and its index file.
 *
 * Metrics: sluice_aggregator_compactor_runs_total{result},
 * sluice_aggregator_compactor_index_files_merged_total,
 * sluice_aggregator_compactor_chunks_deleted_total,
 * sluice_aggregator_compactor_orphaned_chunks_deleted_total.
 *
 * Threading: sl_compactor_run blocks (store calls); runs are serialised by
 * a mutex, so the background thread and sl_compactor_run may overlap safely.
 * Call from worker threads, never the loop thread. */
#ifndef SL_COMPACTOR_H
#define SL_COMPACTOR_H

#include <stddef.h>
#include <stdint.h>

struct sl_metrics;
struct sl_store;
struct sl_compactor;

struct sl_compactor_opts {
    struct sl_store *store;
    struct sl_metrics *metrics; /* may be NULL */
    int64_t interval_ns;        /* compactor.interval; <= 0: no background thread */
    int64_t retention_ns;       /* limits.retention_period; 0: keep everything */
    int64_t orphan_grace_ns;    /* compactor.orphan_grace_period; 0: no orphan sweep */
};

struct sl_compactor_stats {
    size_t prefixes;        /* (period, tenant) prefixes seen */
    size_t files_merged;    /* input index files deleted after a merge */
    size_t files_written;   /* merged index files written */
    size_t chunks_deleted;  /* chunk objects deleted by retention */
    size_t refs_dropped;    /* chunk references dropped by retention */
    size_t orphans_deleted; /* unreferenced chunk objects deleted (step 6) */
};

/* Starts the background thread (when interval_ns > 0; the first run is one
 * interval after start). Returns 0 or SL_EINVAL. */
int sl_compactor_start(const struct sl_compactor_opts *o, struct sl_compactor **out);
/* One run now, as of now_ns (wall clock; 0: the current time, which is what
 * every caller but a test should pass: now_ns also anchors the orphan grace
 * period, and a time ahead of the store's clock would let step 6 take chunks
 * in flight). stats may be NULL. Returns 0 or the first store/index error (the run goes on with the
 * other prefixes, what failed is retried next run). */
int sl_compactor_run(struct sl_compactor *c, int64_t now_ns, struct sl_compactor_stats *stats);
/* Stops the thread (waits for a run in progress) and frees c. */
void sl_compactor_stop(struct sl_compactor *c);

#endif
