/* Postings of the ingester's streams, one per tenant: label name -> value ->
 * the set of streams with that pair, and each stream's time bounds, so that
 * label names, label values and the streams matching equality matchers are
 * found without visiting every stream.
 *
 * A stream is a slot (a small integer, reused after removal). Names and
 * values are not copied: they point into the label sets of the streams that
 * hold them (the ingester's own copy), and move to another holder when the
 * stream they point into is removed. Per stream the cost is one slot (owner,
 * labels, bounds), one 4-byte entry per label in a value's list plus its
 * position; a value held by one stream only (a pod name) costs one more
 * table entry.
 *
 * A stream's time bounds are [min_ts, max_ts] of its entries in memory; a
 * stream overlaps [from, through) when max_ts >= from and min_ts < through.
 * A stream added and not yet given bounds overlaps nothing.
 *
 * Threading: none of its own. The ingester calls the writers under the
 * tenant's write lock and the readers under its read lock. */
#ifndef SL_POSTINGS_H
#define SL_POSTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "common/labels.h"

struct sl_postings;

struct sl_postings *sl_postings_new(void);
/* Never reads the streams' label sets: may run after they are freed. */
void sl_postings_free(struct sl_postings *p);

/* Adds a stream. ls (sorted, no repeated names) and its bytes must stay
 * valid and unchanged until sl_postings_remove; owner is given back by
 * sl_postings_select. Returns the stream's slot. */
uint32_t sl_postings_add(struct sl_postings *p, const struct sl_labels *ls, void *owner);
/* Removes the stream of slot (which must be in use). */
void sl_postings_remove(struct sl_postings *p, uint32_t slot);
/* Sets the stream's time bounds; min_ts > max_ts: no entries. */
void sl_postings_set_bounds(struct sl_postings *p, uint32_t slot, int64_t min_ts, int64_t max_ts);

/* Called with each name (name NULL), or each non-empty value of *name, held
 * by a stream overlapping [from, through), once each, in no particular
 * order. v points into a stream's labels: valid until the next writer call.
 * A non-zero return from fn stops and is returned. */
typedef int (*sl_postings_bytes_fn)(struct sl_bytes v, void *ud);
int sl_postings_labels(const struct sl_postings *p, const struct sl_bytes *name, int64_t from,
                       int64_t through, sl_postings_bytes_fn fn, void *ud);

/* A test on the value of one label (a regex matcher, say): the streams
 * that hold name with a value match accepts. A stream without the label is
 * never given, so match must reject "" (else the caller cannot narrow with
 * it). */
struct sl_postings_pred {
    struct sl_bytes name;
    bool (*match)(struct sl_bytes value, void *ud);
    void *ud;
};

/* Calls fn with the owner of every stream overlapping [from, through) that
 * holds every pair of eq exactly and passes every pred (neq and npred 0:
 * every stream), once each, in no particular order. The candidates come
 * from the smallest of the eq lists and the pred unions (a pred's match runs
 * once per value of its name, and again per candidate it did not choose).
 * fn must not call a writer. A non-zero return from fn stops and is
 * returned. */
typedef int (*sl_postings_owner_fn)(void *owner, void *ud);
int sl_postings_select(const struct sl_postings *p, const struct sl_label *eq, size_t neq,
                       const struct sl_postings_pred *pred, size_t npred, int64_t from,
                       int64_t through, sl_postings_owner_fn fn, void *ud);

/* Streams in the postings, and the bytes they allocated (for metrics and
 * tests; the label bytes themselves belong to the streams). */
size_t sl_postings_streams(const struct sl_postings *p);
size_t sl_postings_bytes(const struct sl_postings *p);

#endif
