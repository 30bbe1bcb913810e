/* Flusher: moves closed chunks from the ingester's memory to the object store
 * and indexes them (DESIGN.md "Ingester", "Chunk format", "Index").
 *
 *   every check_period   sl_ingester_cut closes chunks on target size, age
 *                        and idleness and hands them here as flush jobs
 *   workers (threads)    build the chunk object (recompressing the
 *                        ingester's level-1 blocks at the configured level),
 *                        put it under
 *                        chunks/<tenant>/<fp>/<from>-<through>-<crc>; a failed
 *                        put is retried with exponential backoff (0.5 s to
 *                        10 s), for ever: the data waits in memory and in the
 *                        WAL until the store is back
 *   every index_upload   one index file per (tenant, day) for the chunks
 *   _period              stored since the last one, at
 *                        index/<day>/<tenant>/<writer>-<seq>.idx; then the
 *                        chunks are released from memory and the WAL
 *                        segments older than everything still in memory are
 *                        deleted
 *
 * sl_flusher_flush does all of it at once for everything in memory (POST
 * /flush, shutdown).
 *
 * Threading: every function may be called from any thread except that
 * sl_flusher_flush blocks (never call it on the loop thread). */
#ifndef SL_FLUSH_H
#define SL_FLUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/compress.h"

struct sl_ingester;
struct sl_metrics;
struct sl_store;
struct sl_wal;
struct sl_flusher;

struct sl_flusher_opts {
    struct sl_ingester *ing;
    struct sl_store *store;
    struct sl_metrics *metrics;     /* may be NULL */
    enum sl_codec codec;            /* ingester.chunk_encoding: zstd or gzip */
    int level;                      /* ingester.chunk_compression_level; 0: the
                                     * default below. zstd 1 copies the ingester's
                                     * level-1 blocks; any other level
                                     * recompresses each block on the workers */
    int64_t check_period_ns;        /* ingester.flush_check_period (30 s) */
    int64_t index_upload_period_ns; /* ingester.index_upload_period (5 m) */
    size_t stored_block_size;       /* ingester.chunk_stored_block_size: when
                                     * recompressing, consecutive ingester blocks
                                     * that do not overlap in time and have the
                                     * same flags (with or without structured
                                     * metadata) are joined up to this many raw
                                     * bytes; 0: never joined */
    int concurrency;                /* worker threads; 0: 4 */
    const char *writer;             /* index file name prefix; NULL: host name */
};

/* Starts the threads. Returns 0 or SL_EINVAL. */
int sl_flusher_start(const struct sl_flusher_opts *o, struct sl_flusher **out);

/* The WAL whose segments are deleted after each index upload; NULL detaches
 * it (call before the WAL is closed). */
void sl_flusher_set_wal(struct sl_flusher *f, struct sl_wal *wal);

/* Closes every chunk in memory, stores them, writes their index files and
 * releases them. Returns 0 once done, SL_ETIMEDOUT if that takes longer than
 * timeout_ns (what was not stored stays queued and is retried), or
 * SL_ECANCELED when the flusher is stopping. */
int sl_flusher_flush(struct sl_flusher *f, int64_t timeout_ns);

/* Stops the threads and frees f. Jobs not done are dropped from here (their
 * data is still in memory and in the WAL). */
void sl_flusher_stop(struct sl_flusher *f);

/* Like sl_flusher_stop, but waits at most timeout_ns for a worker busy in a
 * store call (an unreachable S3 endpoint can hold one for minutes). Returns
 * 0 when every thread ended and f is freed; SL_ETIMEDOUT when some did not:
 * they are detached and f stays allocated, so the store and the ingester
 * they use must not be freed either: the caller is expected to exit. */
int sl_flusher_stop_within(struct sl_flusher *f, int64_t timeout_ns);

/* What is still waiting to be stored or indexed (for the shutdown log). */
struct sl_flusher_pending {
    size_t chunks;     /* queued, being stored, or stored and not indexed */
    uint64_t entries;  /* entries in those chunks */
    size_t tenants;    /* distinct tenants among them */
    int64_t oldest_ns; /* lowest first timestamp among them; 0 when none */
};
void sl_flusher_pending(struct sl_flusher *f, struct sl_flusher_pending *out);

/* Default chunk compression level by codec (measured, docs/benchmarks.md
 * "store"): zstd 9 (~1/6 of raw log text at ~15 CPU s per GB, off the push
 * path), gzip 6. */
#define SL_FLUSH_ZSTD_LEVEL 9
#define SL_FLUSH_GZIP_LEVEL 6

#endif
