/* Ingester: in-memory streams per tenant, each a list of zstd-compressed
 * blocks (about ingester.chunk_block_size raw bytes each) plus an uncompressed
 * head block. Entries are kept in timestamp order per stream; an entry
 * identical to one already in the stream (same timestamp and line; its
 * structured metadata is not compared) is dropped silently; entries older
 * than max_chunk_age/2 before the stream's newest are rejected as out of
 * order.
 *
 * Structured metadata (the entry's name/value pairs) is kept with each
 * entry, in the chunk payload encoding (aggregator/chunk/chunk.h): a block
 * whose entries have none is encoded without it (no flag, no byte per
 * entry); a block where any entry has some carries SL_CHUNK_BLOCK_META. Its
 * bytes count towards the head's size like line bytes.
 *
 * Threading: the write path (sl_ingester_push) is called from the loop thread;
 * the read path (sl_ingester_visit and the reader) may run on any thread. Each
 * tenant has a rwlock: pushes take it for writing, visits for reading.
 *
 * Durability is not this module's job: the caller appends what this module
 * accepted to the WAL and acknowledges the client only after the WAL is
 * durable (aggregator/wal). */
#ifndef SL_INGESTER_H
#define SL_INGESTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/chunk/chunk.h"
#include "common/batch.h"
#include "common/bytes.h"
#include "common/labels.h"

struct sl_metrics;
struct sl_ingester;
struct sl_stream_reader;

struct sl_ingester_opts {
    size_t block_size;             /* raw bytes per compressed block (256 KiB) */
    int64_t max_chunk_age_ns;      /* out-of-order window is half of this (2 h) */
    size_t max_streams_per_tenant; /* 0: unlimited */
    size_t chunk_target_size;      /* compressed bytes that close a chunk; 0: no limit */
    int64_t chunk_idle_period_ns;  /* no push for this long closes a chunk; 0: never */
};

/* Outcome of one push, summed over calls. */
struct sl_push_result {
    size_t accepted;
    size_t duplicates;   /* dropped silently */
    size_t out_of_order; /* rejected */
    size_t stream_limit; /* rejected: tenant at max_streams_per_tenant */
};

struct sl_ingester *sl_ingester_new(const struct sl_ingester_opts *o, struct sl_metrics *m);
void sl_ingester_free(struct sl_ingester *ing);

/* Appends entries to the stream `labels` (sorted and validated by the caller)
 * of tenant. Entries are copied. If accepted_out is not NULL, the indexes of
 * the accepted entries are written to it (room for n), in order, so that the
 * caller can log exactly those to the WAL. Adds to *res. Returns 0. */
int sl_ingester_push(struct sl_ingester *ing, struct sl_bytes tenant,
                     const struct sl_labels *labels, const struct sl_batch_entry *entries, size_t n,
                     size_t *accepted_out, struct sl_push_result *res);

struct sl_stream_info {
    const struct sl_labels *labels; /* sorted; valid during the visit */
    uint64_t fingerprint;
    int64_t min_ts, max_ts; /* over every entry in memory */
    size_t entries;
};

/* Calls fn for every stream of tenant (in no particular order) under the
 * tenant's read lock. fn may scan the stream with the reader; it must not
 * call the write path. A non-zero return from fn stops the visit and is
 * returned. An unknown tenant visits nothing and returns 0. */
typedef int (*sl_ingester_visit_fn)(const struct sl_stream_info *s, struct sl_stream_reader *r,
                                    void *ud);
int sl_ingester_visit(struct sl_ingester *ing, struct sl_bytes tenant, sl_ingester_visit_fn fn,
                      void *ud);

/* sl_ingester_visit narrowed through the tenant's postings (postings.h):
 * only the streams with entries in [from, through) that hold every name=value
 * pair of eq exactly and pass every pred (none: all of them), without walking
 * the others. pred's match runs on this thread under the read lock. */
struct sl_postings_pred;
int sl_ingester_visit_matching(struct sl_ingester *ing, struct sl_bytes tenant,
                               const struct sl_label *eq, size_t neq,
                               const struct sl_postings_pred *pred, size_t npred, int64_t from,
                               int64_t through, sl_ingester_visit_fn fn, void *ud);

/* Label names (name NULL), or the non-empty values of *name, of the streams
 * with entries in [from, through), each once, in no particular order, from
 * the postings under the tenant's read lock (fn must not call the ingester;
 * v is valid during the call). A non-zero return from fn stops and is
 * returned. */
int sl_ingester_labels(struct sl_ingester *ing, struct sl_bytes tenant, const struct sl_bytes *name,
                       int64_t from, int64_t through, int (*fn)(struct sl_bytes v, void *ud),
                       void *ud);

/* Bytes the postings of every tenant allocated (label bytes excluded: they
 * are the streams'). */
size_t sl_ingester_postings_bytes(struct sl_ingester *ing);

/* Calls entry_fn for each entry of the stream with from_ns <= ts < through_ns,
 * in ascending time order, or descending if backward (equal timestamps in
 * arrival order, or its reverse). Blocks whose time range misses the window
 * are not decompressed; the others are decompressed one by one as the merge
 * reaches them and dropped once read, so memory holds only the blocks that
 * overlap the current position. Safe to run several scans of one stream at
 * once (under the tenant's read lock). A non-zero return from entry_fn
 * stops the scan and is returned; decode failures return SL_ECORRUPT. The
 * line is valid only during the call. */
typedef int (*sl_entry_fn)(int64_t ts_ns, struct sl_bytes line, void *ud);
int sl_stream_reader_scan(struct sl_stream_reader *r, int64_t from_ns, int64_t through_ns,
                          bool backward, sl_entry_fn entry_fn, void *ud);
/* The same scan, with each entry's structured metadata: e->meta holds
 * e->n_meta encoded pairs (iterate with sl_chunk_meta_next), valid only
 * during the call, like the line. */
int sl_stream_reader_scan_entries(struct sl_stream_reader *r, int64_t from_ns, int64_t through_ns,
                                  bool backward, sl_chunk_entry_fn entry_fn, void *ud);

/* ---- chunks (the flusher's side) ----
 *
 * A stream's entries form chunks: one open chunk (the newest blocks and the
 * head) and closed chunks. A chunk is closed when its compressed blocks reach
 * chunk_target_size (on the push path) or, in sl_ingester_cut, when it is
 * older than max_chunk_age (since its first entry arrived, or by the span of
 * its timestamps), idle for chunk_idle_period, or when all is set. A closed
 * chunk stays in memory, readable, until sl_ingester_release. */

/* One compressed block of a closed chunk: the payload of aggregator/chunk
 * (chunk.h), zstd-compressed, with structured metadata per entry when flags
 * has SL_CHUNK_BLOCK_META. z stays valid and unchanged until the chunk is
 * released. */
struct sl_ingester_block {
    int64_t min_ts, max_ts;
    uint32_t count;
    size_t raw_len;
    const char *z;
    size_t zlen;
    uint8_t flags; /* chunk.h SL_CHUNK_BLOCK_* */
};

struct sl_ingester_chunk {
    struct sl_bytes tenant;         /* valid during the call */
    const struct sl_labels *labels; /* valid during the call */
    uint64_t fp;
    uint64_t id; /* unique in this process */
    const struct sl_ingester_block *blocks;
    size_t nblocks; /* the array is valid during the call, the z bytes longer */
    int64_t from, through;
    uint64_t entries;
};

/* Closes chunks as described above, then calls fn once for every closed
 * chunk not handed out before (under the tenant's write lock: fn must not
 * call the ingester). Returns how many were handed out. Any thread. */
typedef void (*sl_ingester_chunk_fn)(const struct sl_ingester_chunk *c, void *ud);
size_t sl_ingester_cut(struct sl_ingester *ing, bool all, sl_ingester_chunk_fn fn, void *ud);

/* The chunk is stored and indexed: its memory may go. Chunks are freed in
 * order (a released chunk waits for the older ones of its stream); a stream
 * left empty is removed. Any thread. */
void sl_ingester_release(struct sl_ingester *ing, struct sl_bytes tenant,
                         const struct sl_labels *labels, uint64_t fp, uint64_t id);

/* WAL positions: fn returns the WAL segment that a record appended from now
 * on cannot precede (sl_wal_segment). Set before pushes; without it, 0. */
void sl_ingester_set_wal_seq_fn(struct sl_ingester *ing, uint64_t (*fn)(void *ud), void *ud);
/* Lowest WAL segment holding an entry still only in memory; false when
 * memory holds no entry. Every older segment may be deleted. */
bool sl_ingester_min_wal_seq(struct sl_ingester *ing, uint64_t *seq);

/* Totals for /metrics and tests. */
size_t sl_ingester_streams(struct sl_ingester *ing);

#endif
