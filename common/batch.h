/* The native push body (DESIGN.md "Agent -> aggregator protocol"): one msgpack map
 *
 *   { "streams": [ { "labels": { "<name>": "<value>", ... },
 *                    "entries": [ [ <int64 ts_ns>, <str|bin line>, <optional map metadata> ],
 *                                 ... ] }, ... ] }
 *
 * Encoder: builds a body incrementally; used by the agent, the CLI's push and
 * benchmarks. Decoder: validates the whole shape and returns views into the
 * input (no copies of lines); anything else in the map is ignored for forward
 * compatibility. Neither is thread-safe; distinct objects may be used from
 * distinct threads. */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/labels.h"

struct sl_batch_entry {
    int64_t ts_ns;
    struct sl_bytes line;
    struct sl_label *meta; /* structured metadata, may be NULL */
    size_t nmeta;
};

struct sl_batch_stream {
    struct sl_labels labels; /* as sent: not sorted, not validated */
    struct sl_batch_entry *entries;
    size_t nentries;
};

struct sl_batch {
    struct sl_batch_stream *streams;
    size_t nstreams;
    size_t nentries;   /* total over streams */
    size_t line_bytes; /* total raw line bytes */
};

/* Decodes body[0..n) into out. The body must be exactly one msgpack value:
 * trailing bytes are an error. Map keys other than "streams", "labels" and
 * "entries" are skipped, as are entry elements after the third; a nil
 * metadata element means none. Label names must be str, label values, metadata
 * values and lines may be str or bin; timestamps may use any msgpack integer
 * encoding (non-negative values usually arrive as uint). Declared container
 * sizes are checked against the bytes left before anything is allocated, so
 * arena use is bounded by a small multiple of n. Arrays and label/metadata
 * views are allocated from arena; byte views point into body, which must
 * outlive out. On error
 * returns SL_EINVAL, leaves out empty (arena memory is not given back) and
 * appends a reason naming the first problem (e.g. "streams[2].entries[5]:
 * timestamp must be an integer, got float") to err if not NULL. */
int sl_batch_decode(struct sl_arena *arena, const void *body, size_t n, struct sl_batch *out,
                    struct sl_buf *err);

/* Encoder. Usage:
 *   sl_batch_enc_init(&e);
 *   sl_batch_enc_stream(&e, &labels, nentries);     // exact count follows
 *   sl_batch_enc_entry(&e, ts, line, NULL, 0);       // nentries times
 *   ...
 *   sl_batch_enc_finish(&e, &out);                   // appends msgpack to out
 * The number of streams need not be known up front. */
struct sl_batch_enc {
    struct sl_buf body; /* streams array contents so far */
    size_t nstreams;
    size_t pending; /* entries still expected for the current stream */
    int err;        /* SL_EINVAL once a stream got too few or too many entries */
};

void sl_batch_enc_init(struct sl_batch_enc *e);
void sl_batch_enc_release(struct sl_batch_enc *e);
void sl_batch_enc_clear(struct sl_batch_enc *e);
void sl_batch_enc_stream(struct sl_batch_enc *e, const struct sl_labels *labels, size_t nentries);
void sl_batch_enc_entry(struct sl_batch_enc *e, int64_t ts_ns, struct sl_bytes line,
                        const struct sl_label *meta, size_t nmeta);
/* Appends the complete body to out; returns SL_EINVAL (and appends nothing)
 * if a stream got fewer or more entries than announced. The encoder is
 * cleared for reuse either way. Lines are encoded as msgpack str. */
int sl_batch_enc_finish(struct sl_batch_enc *e, struct sl_buf *out);

#endif
