/* Local disk cache of chunk objects (querier.chunk_cache): chunks fetched
 * from the store (S3 especially) are kept in a directory, least recently
 * used evicted first once their total size passes max_size.
 *
 * Layout: <dir>/<2 hex>/<16 hex>-<16 hex>.chunk, named by two hashes of the
 * object key. A file is "SLCC", u32 key length, key, u64 data length, data
 * (little-endian); a file whose key or length does not match is a miss and
 * is removed. Files are written to a temporary name and renamed, so a
 * reader sees a whole file or none; no fsync (a cache may lose files in a
 * crash, and chunk readers check their own checksums). On open the
 * directory is scanned: files are kept in modification-time order (a hit
 * touches its file), temporary files of a crash are removed, and the oldest
 * are evicted down to max_size.
 *
 * Metrics (if m): sluice_aggregator_chunk_cache_{hits,misses,evictions}_total,
 * sluice_aggregator_chunk_cache_errors_total (I/O failures: the cache is then
 * skipped for that chunk, logged), sluice_aggregator_chunk_cache_bytes and
 * _files (gauges).
 *
 * Threading: every call may run on any thread concurrently. */
#ifndef SL_CHUNK_CACHE_H
#define SL_CHUNK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct sl_metrics;
struct sl_chunk_cache;

/* Creates dir if needed and loads what it holds. max_bytes > 0. Returns 0 or
 * SL_EIO (dir cannot be created or read; reason in err). */
int sl_chunk_cache_open(const char *dir, uint64_t max_bytes, struct sl_metrics *m,
                        struct sl_chunk_cache **out, struct sl_buf *err);
void sl_chunk_cache_close(struct sl_chunk_cache *c);

/* Appends the cached object of key to out: 0, or SL_ENOENT (a miss). */
int sl_chunk_cache_get(struct sl_chunk_cache *c, const char *key, struct sl_buf *out);
/* Keeps a copy of the object (an object larger than max_bytes is not kept).
 * Failures are counted and logged, never returned. */
void sl_chunk_cache_put(struct sl_chunk_cache *c, const char *key, const void *data, size_t len);

/* Totals, for tests. */
uint64_t sl_chunk_cache_bytes(struct sl_chunk_cache *c);
size_t sl_chunk_cache_files(struct sl_chunk_cache *c);

#endif
