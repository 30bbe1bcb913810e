/* Write-ahead log (DESIGN.md "WAL"; formats in common/format.h).
 *
 * Segment files "<dir>/<16 hex digits>.wal", each an 8-byte header then
 * records [u32 length LE][u32 crc32c LE][payload]. The payload is opaque here
 * (the push API writes one record per push: see aggregator/api/push.h).
 *
 * Group commit: sl_wal_append() (loop thread) queues a copy of the payload for
 * a dedicated writer thread, which writes every pending record, fsyncs once,
 * and wakes the loop (uv_async); the loop then calls each record's done
 * callback with 0 (durable) or an SL_E* code. Callbacks run in append order.
 * A write or fsync failure is sticky: that record and every later one fail
 * with SL_EIO, because after a failed fsync the kernel may have dropped the
 * dirty pages and nothing later could be promised (the process should be
 * restarted; clients retry and the replay plus deduplication makes that safe).
 *
 * fsync modes: "batch" (default) as above; "always" is the same thing (each
 * push is already acknowledged only after an fsync covering it); "never"
 * writes without fsync: a crash of the machine (not of the process) may lose
 * acknowledged pushes.
 *
 * A new segment is started when the current one would grow past segment_size
 * (a single larger record gets a segment of its own), and at every open, so a
 * replayed segment is never appended to; replay removes segments that hold
 * no record.
 *
 * Segments are deleted by the flusher (sl_wal_remove_before) once every entry
 * in them is in a stored, indexed chunk; the segment being written never is.
 *
 * Replay (sl_wal_replay, before sl_wal_start) reads every segment in order and
 * checks each record's crc. A torn or corrupt tail (short header, length out of
 * bounds, short payload, crc mismatch) is truncated at the last good record,
 * counted (sluice_aggregator_wal_corrupt_tails_total) and logged; replay
 * continues with the next segment.
 *
 * Threading: everything except the writer thread's own work runs on the loop
 * thread that called sl_wal_start(). */
#ifndef SL_WAL_H
#define SL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/bytes.h"

struct sl_metrics;
struct sl_wal;

enum sl_wal_fsync { SL_WAL_FSYNC_BATCH = 0, SL_WAL_FSYNC_ALWAYS, SL_WAL_FSYNC_NEVER };

/* "batch" | "always" | "never"; returns 0 or SL_EINVAL. */
int sl_wal_fsync_parse(const char *s, enum sl_wal_fsync *out);

struct sl_wal_opts {
    const char *dir; /* created if missing; copied */
    enum sl_wal_fsync fsync;
    size_t segment_size;        /* 0: 64 MiB */
    struct sl_metrics *metrics; /* optional */
};

/* Creates dir and the object; no file is opened yet. Returns 0 or SL_EIO
 * with a reason in err. */
int sl_wal_open(const struct sl_wal_opts *o, struct sl_wal **out, struct sl_buf *err);

struct sl_wal_replay_stats {
    size_t segments;
    size_t records;
    size_t bytes; /* payload bytes */
    size_t corrupt_tails;
    size_t apply_errors; /* records the callback refused (counted, skipped) */
};

/* Calls fn for every good record in order. A non-zero return from fn counts
 * the record as an apply error and replay goes on (one bad record must not
 * lose the rest). The payload is valid during the call. Returns 0, or SL_EIO /
 * SL_EUNSUPP (a segment of another program or a newer version) with a reason
 * in err; st may be NULL. Call once, before sl_wal_start(). */
typedef int (*sl_wal_replay_fn)(struct sl_bytes payload, void *ud);
int sl_wal_replay(struct sl_wal *w, sl_wal_replay_fn fn, void *ud, struct sl_wal_replay_stats *st,
                  struct sl_buf *err);

/* Opens a new segment and starts the writer thread. Returns 0 or SL_EIO with
 * a reason in err. */
int sl_wal_start(struct sl_wal *w, uv_loop_t *loop, struct sl_buf *err);

/* Queues a record (payload copied). done(ud, status) is called later on the
 * loop thread: 0 once durable, SL_EIO on failure, SL_ECANCELED if the WAL is
 * closing. Records larger than SL_WAL_MAX_RECORD fail with SL_ETOOBIG. */
typedef void (*sl_wal_done_fn)(void *ud, int status);
void sl_wal_append(struct sl_wal *w, const void *payload, size_t n, sl_wal_done_fn done, void *ud);

/* The segment being written: a record appended from now on lands in it or
 * in a later one. 0 before sl_wal_start. Any thread. */
uint64_t sl_wal_segment(const struct sl_wal *w);

/* Asks the writer thread to close the segment being written, when it holds
 * a record, and start a new one (asynchronously). The flusher calls it once
 * memory holds nothing: the old segment, whose entries are all stored, can
 * then be deleted by the next sl_wal_remove_before instead of being replayed
 * (and stored again) after a crash. A failure to create the new segment is
 * sticky, as a failed write. Any thread, while the WAL is open. */
void sl_wal_rotate(struct sl_wal *w);
/* Deletes the segments before seq (never the one being written). Any
 * thread, while the WAL is open. Returns 0 or SL_EIO (logged). */
int sl_wal_remove_before(struct sl_wal *w, uint64_t seq);

/* Deletes the segment files of dir before seq (UINT64_MAX: all), with or
 * without an open WAL on it: for a shutdown after everything was stored.
 * *removed (may be NULL) counts them. Returns 0 or SL_EIO. */
int sl_wal_purge(const char *dir, uint64_t before, size_t *removed);

/* True once a write or fsync has failed (see above). */
bool sl_wal_failed(const struct sl_wal *w);

/* Writes and syncs what is pending, answers every callback, stops the writer,
 * closes the files and the async handle; closed(ud) runs once everything is
 * released, after which w is freed. Without sl_wal_start() it frees at once
 * and calls closed before returning. */
void sl_wal_close(struct sl_wal *w, void (*closed)(void *ud), void *ud);

#endif
