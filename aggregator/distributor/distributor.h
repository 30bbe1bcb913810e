/* Distributor: validation of a decoded push batch against the per-tenant
 * limits (DESIGN.md "Distributor"): label syntax and limits, line size, and
 * timestamps (reject_old_samples, creation_grace_period). Rejections are
 * counted per reason, with the first example of each kept for the 400 reply
 * ("valid entries kept; the reply names each kind of rejection and how many").
 * The per-tenant ingestion rate limit is aggregator/distributor/ratelimit.h;
 * the push handler applies it to the bytes that pass validation.
 *
 * Pure functions over caller-owned data; not thread-safe per object. */
#ifndef SL_DISTRIBUTOR_H
#define SL_DISTRIBUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/labels.h"

/* Reason names are those of Loki's discarded-samples metric where one exists,
 * so dashboards read the same. */
enum sl_reject_reason {
    SL_REJECT_INVALID_LABELS = 0, /* "invalid_labels" */
    SL_REJECT_LINE_TOO_LONG,      /* "line_too_long" */
    SL_REJECT_TOO_OLD,            /* "greater_than_max_sample_age" */
    SL_REJECT_TOO_NEW,            /* "too_far_in_future" */
    SL_REJECT_OUT_OF_ORDER,       /* "out_of_order" (decided by the ingester) */
    SL_REJECT_STREAM_LIMIT,       /* "stream_limit" (decided by the ingester) */
    SL_REJECT_RATE_LIMITED,       /* "rate_limited" (the whole push: 429) */
    SL_REJECT_META_TOO_LARGE,     /* "structured_metadata_too_large" */
    SL_REJECT_META_TOO_MANY,      /* "structured_metadata_too_many" */
    SL_REJECT__COUNT
};

const char *sl_reject_reason_name(enum sl_reject_reason r);

struct sl_distributor_limits {
    struct sl_label_limits labels;
    size_t max_line_size; /* 0: unlimited */
    /* Structured metadata of one entry: bytes of its names and values, and
     * pairs (Loki's max_structured_metadata_size / _entries_count); 0: unlimited. */
    size_t max_meta_size;
    size_t max_meta_entries;
    bool reject_old_samples;
    int64_t reject_old_samples_max_age_ns;
    int64_t creation_grace_period_ns;
    /* limits.ingestion_rate_mb / ingestion_burst_size_mb in bytes (MB = 2^20
     * bytes, as Loki reads them); rate <= 0: no limit. */
    double ingestion_rate_bytes;
    double ingestion_burst_bytes;
};

/* Rejections of one request, per reason: a count and the first example. */
struct sl_rejects {
    size_t count[SL_REJECT__COUNT];
    struct sl_buf first[SL_REJECT__COUNT];
};

void sl_rejects_init(struct sl_rejects *r);
void sl_rejects_release(struct sl_rejects *r);
/* Adds n rejections of reason; the example (printf format) is kept only for
 * the first of each reason. */
void sl_rejects_add(struct sl_rejects *r, enum sl_reject_reason reason, size_t n, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
size_t sl_rejects_total(const struct sl_rejects *r);
/* Appends a human message: "3 entries rejected: line_too_long: 2 (first:
 * ...); out_of_order: 1 (first: ...)". */
void sl_rejects_format(const struct sl_rejects *r, struct sl_buf *out);

/* Validates one stream in place: sorts its labels, and removes from
 * s->entries (compacting, order kept; s->nentries updated) every entry that
 * breaks a limit, counting it in rej. Invalid labels reject every entry of
 * the stream. now_ns is the wall clock used for the timestamp checks.
 * Returns the number of entries kept. */
size_t sl_distributor_validate_stream(const struct sl_distributor_limits *lim,
                                      struct sl_batch_stream *s, int64_t now_ns,
                                      struct sl_rejects *rej);

#endif
