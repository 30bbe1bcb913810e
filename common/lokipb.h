/* Loki's protobuf push body (Loki's pkg/push/push.proto, package logproto),
 * the format Promtail, Grafana Alloy, Fluent Bit's loki output and most client
 * libraries send to /loki/api/v1/push (snappy-compressed, common/snappy.h):
 *
 *   message PushRequest      { repeated StreamAdapter streams = 1; }
 *   message StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2;
 *                              uint64 hash = 3; }
 *   message EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
 *                              repeated LabelPairAdapter structuredMetadata = 3; }
 *   message LabelPairAdapter { string name = 1; string value = 2; }
 *   message Timestamp        { int64 seconds = 1; int32 nanos = 2; }
 *
 * Hand-written wire codec for just these messages rather than protoc-c output:
 * the decoder returns views into the body (no copy and no malloc per line,
 * arrays from the request arena; protobuf-c allocates every message and string),
 * there is no generated source or build step, and the whole of it is small
 * enough to fuzz and read. Fields this file does not know (hash, Loki's later
 * additions such as PushRequest.format or EntryAdapter.parsed) are skipped,
 * as protobuf requires; groups (wire types 3 and 4) are refused.
 *
 * Not thread-safe per object; pure functions otherwise. */
#ifndef SL_LOKIPB_H
#define SL_LOKIPB_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/batch.h"
#include "common/buf.h"
#include "common/bytes.h"

/* One StreamAdapter. The labels string is kept as sent (Prometheus text form,
 * `{app="api", level="info"}`): the caller parses it (sl_labels_parse), so one
 * unparsable stream can be rejected alone. */
struct sl_lokipb_stream {
    struct sl_bytes labels;
    struct sl_batch_entry *entries;
    size_t nentries;
};

struct sl_lokipb_push {
    struct sl_lokipb_stream *streams;
    size_t nstreams;
    size_t nentries;   /* total over streams */
    size_t line_bytes; /* total raw line bytes */
};

/* Decodes a (decompressed) PushRequest body[0..n) into out. Arrays come from
 * arena; labels, lines and metadata are views into body, which must outlive
 * out. Repeated fields may come in any order; for a repeated scalar field the
 * last value wins, as protobuf specifies. A missing timestamp is 0 (the epoch).
 * Arena use is bounded by a small multiple of n (element counts are taken
 * before arrays are allocated).
 *
 * Returns 0, or SL_EINVAL (out left empty) with a reason naming the first
 * problem in err if not NULL, e.g. "streams[1].entries[3].timestamp: nanos out
 * of range": truncated or overlong varints, lengths past the end, wrong wire
 * type for a known field, groups, timestamps outside int64 nanoseconds or nanos
 * outside [0, 1e9). */
int sl_lokipb_decode(struct sl_arena *arena, const void *body, size_t n, struct sl_lokipb_push *out,
                     struct sl_buf *err);

/* Appends one `streams` field (an encoded StreamAdapter with its tag) to out.
 * A PushRequest is the concatenation of its streams fields, so calling this
 * once per stream on an empty buffer builds a whole body. labels is the text
 * form (sl_labels_format); entries' metadata become structuredMetadata. Empty
 * strings and zero scalars are omitted, as proto3 encoders do. */
void sl_lokipb_encode_stream(struct sl_buf *out, struct sl_bytes labels,
                             const struct sl_batch_entry *entries, size_t n);

/* Appends a whole PushRequest for b (labels formatted with sl_labels_format,
 * in the order given). */
void sl_lokipb_encode_batch(const struct sl_batch *b, struct sl_buf *out);

#endif
