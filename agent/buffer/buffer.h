/* The agent's disk buffer: a durable FIFO of encoded batches
 * (buffer.type: disk, docs/agent.md "Disk buffer").
 *
 * The shipper appends each sealed, encoded batch as one record and lets the
 * agent acknowledge its lines once the record is fsync'd; a sender takes the
 * oldest record, POSTs it, and marks it done. The records live in segment
 * files in one directory:
 *
 *   <dir>/<seq, 16 hex digits>.seg   segment: header, then records
 *   <dir>/state                      where the oldest undelivered record starts
 *
 * Segment header (16 bytes): magic "SLBUFSEG", u32 version, u32 reserved (0).
 * Record: u32 length of the payload, u32 crc32c of the payload, payload =
 *   u32 line count, u8 protocol, u8 codec, u16 reserved (0), body.
 * State (24 bytes): magic "SLBUFPOS", u64 segment seq, u32 offset, u32 crc32c
 * of the 20 bytes before it. Integers are little-endian.
 *
 * The state is written atomically (temporary file, fsync, rename) when a
 * taken record is done, at most once per SL_BUFFER_STATE_PERIOD_MS, always
 * before segments are deleted (those before the state's segment), and at the
 * last close. A crash resends the records done since the last state write
 * (the aggregator drops identical entries).
 *
 * Opening scans every segment from the state's position and checks each
 * record's crc: a torn or corrupt record ends its segment there (the file is
 * truncated, the rest of it dropped and reported in the open stats); the
 * other segments are kept. Appends always go to a new segment after an open.
 *
 * Size: the live records (not yet taken) are kept at or under max_size: an
 * append that would pass it first drops the oldest live records (reported to
 * the caller). Segments are cut at segment_size, so the disk holds at most
 * max_size plus about one segment, plus the record being sent.
 *
 * Memory: one record at a time is read (into the caller's buffer); nothing
 * else is held per record.
 *
 * Threading: every function may block on the disk, so call them off the
 * event loop (the shipper uses the libuv thread pool). A mutex serialises
 * them, so appends and takes may run on different threads. */
#ifndef SL_AGENT_BUFFER_H
#define SL_AGENT_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"

#define SL_BUFFER_SEG_MAGIC   "SLBUFSEG" /* 8 bytes, no NUL */
#define SL_BUFFER_STATE_MAGIC "SLBUFPOS"
#define SL_BUFFER_VERSION     1u
#define SL_BUFFER_SEG_HDR     16u /* magic + version + reserved */
#define SL_BUFFER_REC_HDR     8u  /* length + crc32c */
#define SL_BUFFER_REC_META    8u  /* lines + protocol + codec + reserved */
#define SL_BUFFER_STATE_LEN   24u /* magic + seq + offset + crc */
/* Largest payload accepted when reading: a length above this is corruption
 * (a batch is at most client.batch_size of lines, far below). */
#define SL_BUFFER_MAX_RECORD (256u << 20)
/* The state is written at most this often (and whenever segments are
 * deleted, and at the last close): each write costs a file and a directory
 * fsync; a crash resends what was delivered since the last write. */
#define SL_BUFFER_STATE_PERIOD_MS 1000
/* Segments are never cut larger than this (fewer, larger files are cheaper;
 * but a fully sent segment is only deleted as a whole). */
#define SL_BUFFER_MAX_SEGMENT (64u << 20)

struct sl_buffer;

struct sl_buffer_opts {
    const char *dir;       /* created if missing (mkdir -p) */
    uint64_t max_size;     /* bytes of live records, headers included; > 0 */
    uint64_t segment_size; /* 0: max_size / 8, clamped to [64 KiB, 64 MiB] */
};

/* What one record carries besides its body (how to resend it). */
struct sl_buffer_meta {
    uint32_t lines;
    uint8_t protocol; /* enum sl_ship_protocol */
    uint8_t codec;    /* enum sl_codec: Content-Encoding of the body */
};

/* Records dropped by open (corrupt) or by an append (max_size). */
struct sl_buffer_drop {
    uint64_t records;
    uint64_t lines; /* lines of the dropped records whose header was readable */
    uint64_t bytes; /* on-disk bytes, headers included */
    char file[64];  /* segment name of the first drop ("" if none) */
};

/* Records not yet done: the live ones and the one taken, if any. */
struct sl_buffer_stats {
    uint64_t bytes; /* headers included */
    uint64_t records;
    uint64_t lines;
    uint64_t segments;
    uint64_t version; /* grows with every change: the newer of two snapshots */
};

/* Opens (or creates) the buffer in o->dir and recovers it (see above). What
 * was dropped as corrupt is added to *corrupt (may be NULL). Returns 0, or
 * SL_EINVAL / SL_EIO with a reason in err (may be NULL). *out is owned by the
 * caller, freed with sl_buffer_free. */
int sl_buffer_open(const struct sl_buffer_opts *o, struct sl_buffer **out,
                   struct sl_buffer_drop *corrupt, struct sl_buf *err);

/* Appends one record (the body is copied to disk) and fsyncs it before
 * returning 0: the lines are then durable. Records dropped to stay under
 * max_size are added to *evicted (may be NULL). Returns SL_EIO on a write or
 * fsync failure (the buffer is unchanged; the caller may retry), with a
 * reason in err. */
int sl_buffer_append(struct sl_buffer *b, const struct sl_buffer_meta *m, struct sl_bytes body,
                     struct sl_buffer_drop *evicted, struct sl_buf *err);

/* Reads the oldest live record into body (cleared first) and its meta, and
 * marks it taken: it leaves the live count but stays on disk until
 * sl_buffer_done. Only one record may be taken at a time. Returns 0,
 * SL_ENOENT when no live record is left, SL_EEXIST if one is already taken,
 * or SL_EIO. A record whose crc does not match is skipped with the rest of
 * its segment, added to *corrupt (may be NULL), and the next one taken. */
int sl_buffer_take(struct sl_buffer *b, struct sl_buffer_meta *m, struct sl_buf *body,
                   struct sl_buffer_drop *corrupt, struct sl_buf *err);

/* The taken record was not sent (the caller stops): it is the oldest live
 * record again, or, if records after it were dropped for max_size meanwhile,
 * it is dropped too and added to *dropped (may be NULL). */
void sl_buffer_untake(struct sl_buffer *b, struct sl_buffer_drop *dropped);

/* The taken record is delivered (or dropped for good): persists the new
 * position and deletes segments left behind. Returns 0 or SL_EIO (then the
 * record may be sent again after a restart; the buffer itself moves on). */
int sl_buffer_done(struct sl_buffer *b, struct sl_buf *err);

/* Thread-safe snapshot. */
void sl_buffer_stats(struct sl_buffer *b, struct sl_buffer_stats *out);

/* Closes the files; a taken record not done is kept for the next open.
 * Several opens of one directory in a process share one instance (a new
 * shipper after a configuration reload may open it before the old one is
 * freed): it is closed by the last sl_buffer_free, and the later opens do not
 * recover it again (their corrupt stats stay empty) but set its max_size. */
void sl_buffer_free(struct sl_buffer *b);

/* Scans a segment image (the bytes of one segment file) the way open does,
 * without touching the disk: returns the length of the valid prefix (header
 * plus whole records with good crcs) and counts those records and lines. For
 * the fuzzer and tests; pure, thread-safe. */
size_t sl_buffer_scan(const void *data, size_t len, uint64_t *records, uint64_t *lines);

#endif
