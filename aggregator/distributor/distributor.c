/* Validation of push batches. The messages name the stream so that an
 * operator can find the offending client. */
#include "aggregator/distributor/distributor.h"

#include <stdarg.h>

#include "common/timeutil.h"

static const char *const reason_names[SL_REJECT__COUNT] = {
    [SL_REJECT_INVALID_LABELS] = "invalid_labels",
    [SL_REJECT_LINE_TOO_LONG] = "line_too_long",
    [SL_REJECT_TOO_OLD] = "greater_than_max_sample_age",
    [SL_REJECT_TOO_NEW] = "too_far_in_future",
    [SL_REJECT_OUT_OF_ORDER] = "out_of_order",
    [SL_REJECT_STREAM_LIMIT] = "stream_limit",
    [SL_REJECT_RATE_LIMITED] = "rate_limited",
    [SL_REJECT_META_TOO_LARGE] = "structured_metadata_too_large",
    [SL_REJECT_META_TOO_MANY] = "structured_metadata_too_many",
};

/* Examples quoting a stream are cut here: a reply should stay readable. */
#define EXAMPLE_MAX 512

const char *sl_reject_reason_name(enum sl_reject_reason r)
{
    if ((int)r < 0 || r >= SL_REJECT__COUNT)
        return "unknown";
    return reason_names[r];
}

void sl_rejects_init(struct sl_rejects *r)
{
    for (int i = 0; i < SL_REJECT__COUNT; i++) {
        r->count[i] = 0;
        sl_buf_init(&r->first[i]);
    }
}

void sl_rejects_release(struct sl_rejects *r)
{
    for (int i = 0; i < SL_REJECT__COUNT; i++)
        sl_buf_release(&r->first[i]);
}

void sl_rejects_add(struct sl_rejects *r, enum sl_reject_reason reason, size_t n, const char *fmt,
                    ...)
{
    if (n == 0)
        return;
    if (r->count[reason] == 0 && fmt) {
        va_list ap;
        va_start(ap, fmt);
        sl_buf_vappendf(&r->first[reason], fmt, ap);
        va_end(ap);
        if (r->first[reason].len > EXAMPLE_MAX) {
            r->first[reason].len = EXAMPLE_MAX;
            sl_buf_append_str(&r->first[reason], "...");
        }
    }
    r->count[reason] += n;
}

size_t sl_rejects_total(const struct sl_rejects *r)
{
    size_t n = 0;
    for (int i = 0; i < SL_REJECT__COUNT; i++)
        n += r->count[i];
    return n;
}

void sl_rejects_format(const struct sl_rejects *r, struct sl_buf *out)
{
    size_t total = sl_rejects_total(r);
    sl_buf_append_u64(out, total);
    sl_buf_append_str(out, total == 1 ? " entry rejected: " : " entries rejected: ");
    bool first = true;
    for (int i = 0; i < SL_REJECT__COUNT; i++) {
        if (r->count[i] == 0)
            continue;
        if (!first)
            sl_buf_append_str(out, "; ");
        first = false;
        sl_buf_appendf(out, "%s: %zu", reason_names[i], r->count[i]);
        if (r->first[i].len) {
            sl_buf_append_str(out, " (first: ");
            sl_buf_append_bytes(out, sl_buf_bytes(&r->first[i]));
            sl_buf_append_char(out, ')');
        }
    }
}

/* Canonical form of a stream for messages, cut to a readable length. */
static void stream_name(const struct sl_labels *ls, struct sl_buf *out)
{
    sl_labels_format(ls, out);
    if (out->len > 200) {
        out->len = 200;
        sl_buf_append_str(out, "...}");
    }
}

static size_t meta_bytes(const struct sl_batch_entry *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nmeta; i++)
        n += e->meta[i].name.len + e->meta[i].value.len;
    return n;
}

static bool check_entry(const struct sl_distributor_limits *lim, const struct sl_batch_entry *e,
                        int64_t now_ns, const struct sl_labels *ls, struct sl_rejects *rej)
{
    struct sl_buf name = SL_BUF_INIT;
    bool ok = true;
    size_t mb = 0;
    if (lim->max_meta_entries && e->nmeta > lim->max_meta_entries) {
        if (rej->count[SL_REJECT_META_TOO_MANY] == 0)
            stream_name(ls, &name);
        sl_rejects_add(rej, SL_REJECT_META_TOO_MANY, 1,
                       "stream %s: %zu structured metadata pairs exceed the limit of %zu "
                       "(limits.max_structured_metadata_entries_count)",
                       name.data ? name.data : "", e->nmeta, lim->max_meta_entries);
        ok = false;
    } else if (lim->max_meta_size && e->nmeta && (mb = meta_bytes(e)) > lim->max_meta_size) {
        if (rej->count[SL_REJECT_META_TOO_LARGE] == 0)
            stream_name(ls, &name);
        sl_rejects_add(rej, SL_REJECT_META_TOO_LARGE, 1,
                       "stream %s: structured metadata of %zu bytes exceeds the limit of %zu "
                       "(limits.max_structured_metadata_size)",
                       name.data ? name.data : "", mb, lim->max_meta_size);
        ok = false;
    } else if (lim->max_line_size && e->line.len > lim->max_line_size) {
        if (rej->count[SL_REJECT_LINE_TOO_LONG] == 0)
            stream_name(ls, &name);
        sl_rejects_add(rej, SL_REJECT_LINE_TOO_LONG, 1,
                       "stream %s: line of %zu bytes exceeds the limit of %zu",
                       name.data ? name.data : "", e->line.len, lim->max_line_size);
        ok = false;
    } else if (lim->reject_old_samples && e->ts_ns < now_ns - lim->reject_old_samples_max_age_ns) {
        if (rej->count[SL_REJECT_TOO_OLD] == 0)
            stream_name(ls, &name);
        sl_rejects_add(rej, SL_REJECT_TOO_OLD, 1,
                       "stream %s: timestamp %lld is older than the maximum age",
                       name.data ? name.data : "", (long long)e->ts_ns);
        ok = false;
    } else if (e->ts_ns > now_ns + lim->creation_grace_period_ns) {
        if (rej->count[SL_REJECT_TOO_NEW] == 0)
            stream_name(ls, &name);
        sl_rejects_add(rej, SL_REJECT_TOO_NEW, 1,
                       "stream %s: timestamp %lld is too far in the future",
                       name.data ? name.data : "", (long long)e->ts_ns);
        ok = false;
    }
    sl_buf_release(&name);
    return ok;
}

size_t sl_distributor_validate_stream(const struct sl_distributor_limits *lim,
                                      struct sl_batch_stream *s, int64_t now_ns,
                                      struct sl_rejects *rej)
{
    struct sl_buf err = SL_BUF_INIT;
    if (sl_labels_validate(&s->labels, &lim->labels, &err) != 0) {
        sl_rejects_add(rej, SL_REJECT_INVALID_LABELS, s->nentries, "%s",
                       err.data ? err.data : "invalid labels");
        sl_buf_release(&err);
        s->nentries = 0;
        return 0;
    }
    sl_buf_release(&err);
    size_t kept = 0;
    for (size_t i = 0; i < s->nentries; i++) {
        if (!check_entry(lim, &s->entries[i], now_ns, &s->labels, rej))
            continue;
        if (kept != i)
            s->entries[kept] = s->entries[i];
        kept++;
    }
    s->nentries = kept;
    return kept;
}
