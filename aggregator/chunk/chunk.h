/* Chunk objects (DESIGN.md "Chunk format"; constants in common/format.h).
 *
 * One chunk holds a time range of one stream:
 *
 *   header   "SLCK" u8 version u8 codec u16 flags(0) u32 labels_len labels
 *            (the stream's canonical label set, so a chunk explains itself)
 *   blocks   each: u32 entries, i64 min_ts, i64 max_ts, u32 raw_len, u32 zlen,
 *            u8 flags, 3 reserved bytes, zlen bytes of compressed payload,
 *            u32 crc32c of every preceding byte of the block
 *   table    per block: u64 offset, u32 size, u32 entries, i64 min_ts, i64 max_ts
 *   footer   u64 table_offset, u32 nblocks, u32 crc32c(table), i64 min_ts,
 *            i64 max_ts, u32 crc32c(previous 32 footer bytes), "SLCK"
 *
 * Integers are little-endian. The payload of a block, once decompressed, is
 * its entries in ascending timestamp order, each:
 *   uvarint (ts - previous ts; the first is relative to the block's min_ts)
 *   uvarint line length, line bytes
 *   if the block's flags have SL_CHUNK_BLOCK_META: uvarint pair count, then
 *   per pair uvarint name length, name, uvarint value length, value
 * (the ingester's in-memory blocks use the same payload: the flusher
 * recompresses them at the configured level, joining consecutive blocks that
 * do not overlap in time and have the same flags, or copies them as they are
 * at zstd level 1). A block without SL_CHUNK_BLOCK_META costs nothing for
 * metadata; with it, every entry has a pair count (0 when it has none).
 *
 * Blocks of one chunk may overlap in time (out-of-order entries inside the
 * allowed window); a reader that needs one order merges them.
 *
 * Threading: no shared state; a reader over immutable bytes may be used from
 * one thread at a time (it is a few words: copy it for another thread). */
#ifndef SL_CHUNK_H
#define SL_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"
#include "common/compress.h"

/* Block flag: entries carry structured metadata. */
#define SL_CHUNK_BLOCK_META 0x01

struct sl_chunk_block_info {
    uint32_t entries;
    int64_t min_ts, max_ts;
    uint32_t raw_len; /* decompressed payload bytes */
    uint8_t flags;
};

/* ---- payload encoding (shared with the ingester's in-memory blocks) ---- */

/* Appends one entry; *prev is the previous timestamp (the block's min_ts
 * before the first). meta may be NULL (n_meta 0) unless the block has the
 * META flag, in which case the count is written even when 0. */
struct sl_label;
void sl_chunk_payload_put(struct sl_buf *raw, int64_t *prev, int64_t ts, struct sl_bytes line,
                          bool with_meta, const struct sl_label *meta, size_t n_meta);

/* One decoded entry; line and meta point into the payload. meta is the raw
 * encoded pairs (see above), n_meta their count. */
struct sl_chunk_entry {
    int64_t ts;
    struct sl_bytes line;
    struct sl_bytes meta;
    size_t n_meta;
};

/* Decodes the next entry at *p (advanced). Returns 0 or SL_ECORRUPT. */
int sl_chunk_payload_next(const char **p, const char *end, int64_t *prev, bool with_meta,
                          struct sl_chunk_entry *e);
/* Iterates the pairs of e->meta: returns 1 with a pair, 0 at the end, or
 * SL_ECORRUPT. *pos starts at 0. */
int sl_chunk_meta_next(const struct sl_chunk_entry *e, size_t *pos, struct sl_bytes *name,
                       struct sl_bytes *value);
/* Every pair of e->meta into *buf (grown with sl_reallocarray; the caller
 * frees it; *cap its room), pointing into e's bytes. Returns the number of
 * pairs, or SL_ECORRUPT. */
int sl_chunk_meta_labels(const struct sl_chunk_entry *e, struct sl_label **buf, size_t *cap);

/* ---- writer ---- */

struct sl_chunk_writer {
    enum sl_codec codec;
    int level;
    struct sl_buf out;   /* header and blocks so far */
    struct sl_buf table; /* block table so far */
    uint32_t nblocks;
    uint64_t entries;
    int64_t min_ts, max_ts;
};

struct sl_chunk_meta {
    int64_t from, through; /* min and max timestamp over every entry */
    uint64_t entries;
    uint32_t nblocks;
    uint32_t crc; /* crc32c of the whole object, part of its key */
};

/* codec SL_CODEC_ZSTD or SL_CODEC_GZIP (NONE is accepted, for tests); level
 * 0 is the codec's default. labels: the canonical label set text. */
void sl_chunk_writer_init(struct sl_chunk_writer *w, enum sl_codec codec, int level,
                          struct sl_bytes labels);
void sl_chunk_writer_release(struct sl_chunk_writer *w);
/* Adds a block from its raw payload (compressed here). bi->raw_len is set
 * from raw_len. Returns 0 or SL_EINVAL (no entries, or a payload over
 * SL_CHUNK_MAX_BLOCK_RAW). */
int sl_chunk_writer_add_raw(struct sl_chunk_writer *w, const struct sl_chunk_block_info *bi,
                            const void *raw, size_t raw_len);
/* Adds a block already compressed with the writer's codec. */
int sl_chunk_writer_add_compressed(struct sl_chunk_writer *w, const struct sl_chunk_block_info *bi,
                                   const void *z, size_t zlen);
/* Appends the table and footer and moves the object into *out (replacing
 * its content). SL_EINVAL if no block was added. The writer is released. */
int sl_chunk_writer_finish(struct sl_chunk_writer *w, struct sl_buf *out,
                           struct sl_chunk_meta *meta);

/* ---- reader ---- */

struct sl_chunk_reader {
    const char *data;
    size_t len;
    enum sl_codec codec;
    struct sl_bytes labels;
    uint32_t nblocks;
    const char *table;
    int64_t min_ts, max_ts;
    uint64_t blocks_skipped, blocks_read; /* counters for the caller */
};

/* Checks the header, footer and table crc; data must outlive the reader.
 * Returns 0, SL_ECORRUPT, or SL_EUNSUPP (newer version, unknown codec). */
int sl_chunk_reader_open(struct sl_chunk_reader *r, const void *data, size_t len);
/* Block i's table entry (0 <= i < nblocks). */
void sl_chunk_reader_block(const struct sl_chunk_reader *r, uint32_t i,
                           struct sl_chunk_block_info *bi);
/* Decompresses block i into raw (cleared first) after checking its crc.
 * Returns 0 or SL_ECORRUPT. */
int sl_chunk_reader_block_payload(struct sl_chunk_reader *r, uint32_t i, struct sl_buf *raw,
                                  struct sl_chunk_block_info *bi);

/* Calls fn for every entry with from <= ts < through, block by block (each
 * block in ascending time); blocks whose [min_ts, max_ts] misses the range
 * are not decompressed (counted in blocks_skipped). A non-zero return from
 * fn stops the scan and is returned; SL_ECORRUPT on a damaged block. */
typedef int (*sl_chunk_entry_fn)(const struct sl_chunk_entry *e, void *ud);
int sl_chunk_reader_scan(struct sl_chunk_reader *r, int64_t from, int64_t through,
                         sl_chunk_entry_fn fn, void *ud);

/* "chunks/<tenant>/<fingerprint, 16 hex>/<from>-<through>-<crc, 8 hex>" with
 * from and through in decimal nanoseconds. Appended to out. */
void sl_chunk_key(struct sl_buf *out, struct sl_bytes tenant, uint64_t fp,
                  const struct sl_chunk_meta *meta);

#endif
