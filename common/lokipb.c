/* Protobuf wire format for Loki's push messages (see lokipb.h for why this is
 * hand-written). Decoding takes two passes per message: one to count the
 * repeated elements (so arrays are allocated once, at their final size) and
 * one to fill them. The nesting is fixed (request > stream > entry > pair or
 * timestamp), so there is no recursion an input could deepen. */
#include "common/lokipb.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "common/err.h"
#include "common/labels.h"

/* Wire types (protobuf encoding spec). */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

#define NS_PER_S 1000000000LL

/* ---- reading ---- */

struct rd {
    const unsigned char *p, *end;
};

struct field {
    uint32_t num;
    int wt;
    uint64_t v;        /* WT_VARINT value */
    struct sl_bytes b; /* WT_LEN payload */
};

static struct rd rd_of(struct sl_bytes b)
{
    return (struct rd){(const unsigned char *)b.ptr, (const unsigned char *)b.ptr + b.len};
}

/* At most 10 bytes; the tenth may only carry the 64th bit. */
static int rd_varint(struct rd *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return -1;
        unsigned char c = *r->p++;
        if (shift == 63 && c > 1)
            return -1;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Reads the next field (tag and value). Returns 1 with f filled, 0 at the end
 * of the message, -1 with a reason in *why for malformed input. */
static int rd_field(struct rd *r, struct field *f, const char **why)
{
    if (r->p == r->end)
        return 0;
    uint64_t tag, len;
    if (rd_varint(r, &tag) != 0) {
        *why = "truncated or overlong field tag";
        return -1;
    }
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff) {
        *why = "invalid field number";
        return -1;
    }
    switch (f->wt) {
    case WT_VARINT:
        if (rd_varint(r, &f->v) == 0)
            return 1;
        *why = "truncated or overlong varint";
        return -1;
    case WT_I64:
    case WT_I32: {
        size_t n = f->wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) {
            *why = "truncated fixed-size field";
            return -1;
        }
        r->p += n;
        return 1;
    }
    case WT_LEN:
        if (rd_varint(r, &len) != 0 || len > (uint64_t)(r->end - r->p)) {
            *why = "length-delimited field runs past its message";
            return -1;
        }
        f->b = sl_bytes((const char *)r->p, (size_t)len);
        r->p += len;
        return 1;
    default:
        *why = f->wt == WT_SGROUP || f->wt == WT_EGROUP ? "groups are not supported"
                                                        : "invalid wire type";
        return -1;
    }
}

/* ---- decoding ---- */

struct dec {
    struct sl_arena *arena;
    struct sl_buf *err;
    size_t si, ei, mi; /* position, for messages */
};

enum level { AT_REQUEST, AT_STREAM, AT_ENTRY, AT_TIMESTAMP, AT_META };

static int fail(struct dec *d, enum level lv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct dec *d, enum level lv, const char *fmt, ...)
{
    if (!d->err)
        return SL_EINVAL;
    if (lv >= AT_STREAM)
        sl_buf_appendf(d->err, "streams[%zu]", d->si);
    if (lv >= AT_ENTRY)
        sl_buf_appendf(d->err, ".entries[%zu]", d->ei);
    if (lv == AT_TIMESTAMP)
        sl_buf_append_str(d->err, ".timestamp");
    if (lv == AT_META)
        sl_buf_appendf(d->err, ".structuredMetadata[%zu]", d->mi);
    if (lv != AT_REQUEST)
        sl_buf_append_str(d->err, ": ");
    va_list ap;
    va_start(ap, fmt);
    sl_buf_vappendf(d->err, fmt, ap);
    va_end(ap);
    return SL_EINVAL;
}

/* Counts the length-delimited fields numbered num in msg, checking the framing
 * of every field on the way. */
static int count_len_fields(struct dec *d, enum level lv, struct sl_bytes msg, uint32_t num,
                            size_t *count)
{
    struct rd r = rd_of(msg);
    struct field f;
    const char *why = NULL;
    int rc;
    *count = 0;
    while ((rc = rd_field(&r, &f, &why)) > 0)
        if (f.num == num && f.wt == WT_LEN)
            (*count)++;
    return rc < 0 ? fail(d, lv, "%s", why) : 0;
}

static int wrong_type(struct dec *d, enum level lv, const char *name)
{
    return fail(d, lv, "field %s has the wrong wire type", name);
}

static int decode_timestamp(struct dec *d, struct sl_bytes msg, int64_t *secs, int32_t *nanos)
{
    struct rd r = rd_of(msg);
    struct field f;
    const char *why = NULL;
    int rc;
    while ((rc = rd_field(&r, &f, &why)) > 0) {
        if (f.num == 1 || f.num == 2) {
            if (f.wt != WT_VARINT)
                return wrong_type(d, AT_TIMESTAMP, f.num == 1 ? "seconds" : "nanos");
            if (f.num == 1)
                *secs = (int64_t)f.v;
            else
                *nanos = (int32_t)(uint32_t)f.v; /* int32 keeps the low bits */
        }
    }
    return rc < 0 ? fail(d, AT_TIMESTAMP, "%s", why) : 0;
}

static int decode_pair(struct dec *d, struct sl_bytes msg, struct sl_label *l)
{
    struct rd r = rd_of(msg);
    struct field f;
    const char *why = NULL;
    int rc;
    l->name = l->value = sl_bytes("", 0);
    while ((rc = rd_field(&r, &f, &why)) > 0) {
        if (f.num != 1 && f.num != 2)
            continue;
        if (f.wt != WT_LEN)
            return wrong_type(d, AT_META, f.num == 1 ? "name" : "value");
        if (f.num == 1)
            l->name = f.b;
        else
            l->value = f.b;
    }
    return rc < 0 ? fail(d, AT_META, "%s", why) : 0;
}

static int entry_field(struct dec *d, const struct field *f, struct sl_batch_entry *e,
                       int64_t *secs, int32_t *nanos)
{
    switch (f->num) {
    case 1:
        if (f->wt != WT_LEN)
            return wrong_type(d, AT_ENTRY, "timestamp");
        /* A repeated embedded message merges into the previous one. */
        return decode_timestamp(d, f->b, secs, nanos);
    case 2:
        if (f->wt != WT_LEN)
            return wrong_type(d, AT_ENTRY, "line");
        e->line = f->b;
        return 0;
    case 3:
        if (f->wt != WT_LEN)
            return wrong_type(d, AT_ENTRY, "structuredMetadata");
        d->mi = e->nmeta;
        return decode_pair(d, f->b, &e->meta[e->nmeta++]);
    default:
        return 0;
    }
}

static int decode_entry(struct dec *d, struct sl_bytes msg, struct sl_batch_entry *e)
{
    size_t nmeta;
    int rc = count_len_fields(d, AT_ENTRY, msg, 3, &nmeta);
    if (rc)
        return rc;
    e->line = sl_bytes("", 0);
    e->meta = nmeta ? sl_arena_alloc(d->arena, nmeta * sizeof(*e->meta)) : NULL;
    e->nmeta = 0;
    int64_t secs = 0;
    int32_t nanos = 0;
    struct rd r = rd_of(msg);
    struct field f;
    const char *why = NULL;
    while ((rc = rd_field(&r, &f, &why)) > 0)
        if ((rc = entry_field(d, &f, e, &secs, &nanos)) != 0)
            return rc;
    if (rc < 0)
        return fail(d, AT_ENTRY, "%s", why);
    if (nanos < 0 || nanos >= NS_PER_S)
        return fail(d, AT_TIMESTAMP, "nanos %d out of range [0, 999999999]", (int)nanos);
    /* In 128 bits: INT64_MIN itself is seconds * 1e9 + nanos with a product
     * below INT64_MIN. */
    __int128 ns = (__int128)secs * NS_PER_S + nanos;
    if (ns < INT64_MIN || ns > INT64_MAX)
        return fail(d, AT_TIMESTAMP, "seconds %lld out of the range of int64 nanoseconds",
                    (long long)secs);
    e->ts_ns = (int64_t)ns;
    return 0;
}

static int decode_stream(struct dec *d, struct sl_bytes msg, struct sl_lokipb_stream *s,
                         struct sl_lokipb_push *out)
{
    size_t n;
    int rc = count_len_fields(d, AT_STREAM, msg, 2, &n);
    if (rc)
        return rc;
    s->labels = sl_bytes("", 0);
    s->entries = sl_arena_alloc(d->arena, (n ? n : 1) * sizeof(*s->entries));
    s->nentries = 0;
    struct rd r = rd_of(msg);
    struct field f;
    const char *why = NULL;
    while ((rc = rd_field(&r, &f, &why)) > 0) {
        if (f.num == 1) {
            if (f.wt != WT_LEN)
                return wrong_type(d, AT_STREAM, "labels");
            s->labels = f.b;
        } else if (f.num == 2) {
            if (f.wt != WT_LEN)
                return wrong_type(d, AT_STREAM, "entries");
            d->ei = s->nentries;
            struct sl_batch_entry *e = &s->entries[s->nentries];
            if ((rc = decode_entry(d, f.b, e)) != 0)
                return rc;
            s->nentries++;
            out->line_bytes += e->line.len;
        } /* 3 (hash) and unknown fields are skipped */
    }
    if (rc < 0)
        return fail(d, AT_STREAM, "%s", why);
    out->nentries += s->nentries;
    return 0;
}

int sl_lokipb_decode(struct sl_arena *arena, const void *body, size_t n, struct sl_lokipb_push *out,
                     struct sl_buf *err)
{
    struct dec d = {.arena = arena, .err = err};
    struct sl_bytes msg = sl_bytes(body, n);
    memset(out, 0, sizeof(*out));
    size_t ns;
    int rc = count_len_fields(&d, AT_REQUEST, msg, 1, &ns);
    if (rc)
        return rc;
    out->streams = sl_arena_alloc(arena, (ns ? ns : 1) * sizeof(*out->streams));
    struct rd r = rd_of(msg);
    struct field f;
    const char *why = NULL;
    while ((rc = rd_field(&r, &f, &why)) > 0) {
        if (f.num != 1)
            continue;
        if (f.wt != WT_LEN) {
            rc = wrong_type(&d, AT_REQUEST, "streams");
            break;
        }
        d.si = out->nstreams;
        if ((rc = decode_stream(&d, f.b, &out->streams[out->nstreams], out)) != 0)
            break;
        out->nstreams++;
    }
    if (rc < 0 && why)
        rc = fail(&d, AT_REQUEST, "%s", why);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- encoding ---- */

/* Tags of fields 1..15 fit one byte: (num << 3) | wire type. */
#define TAG(num, wt) ((unsigned char)((num) << 3 | (wt)))

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Size of a length-delimited field with a one-byte tag. */
static size_t len_field(size_t len)
{
    return 1 + varint_len(len) + len;
}

static char *put_varint(char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

static char *put_len(char *p, unsigned char tag, size_t len)
{
    *p++ = (char)tag;
    return put_varint(p, len);
}

static char *put_bytes(char *p, unsigned char tag, struct sl_bytes v)
{
    if (!v.len)
        return p;
    p = put_len(p, tag, v.len);
    memcpy(p, v.ptr, v.len);
    return p + v.len;
}

static void split_ts(int64_t ts, int64_t *secs, int32_t *nanos)
{
    *secs = ts / NS_PER_S;
    int64_t r = ts % NS_PER_S;
    if (r < 0) {
        r += NS_PER_S;
        (*secs)--;
    }
    *nanos = (int32_t)r;
}

static size_t opt_len_field(size_t len)
{
    return len ? len_field(len) : 0;
}

static size_t ts_size(int64_t secs, int32_t nanos)
{
    return (secs ? 1 + varint_len((uint64_t)secs) : 0) +
           (nanos ? 1 + varint_len((uint64_t)nanos) : 0);
}

static size_t pair_size(const struct sl_label *l)
{
    return opt_len_field(l->name.len) + opt_len_field(l->value.len);
}

static size_t entry_size(const struct sl_batch_entry *e)
{
    int64_t secs;
    int32_t nanos;
    split_ts(e->ts_ns, &secs, &nanos);
    size_t n = len_field(ts_size(secs, nanos)) + opt_len_field(e->line.len);
    for (size_t i = 0; i < e->nmeta; i++)
        n += len_field(pair_size(&e->meta[i]));
    return n;
}

static char *put_entry(char *p, const struct sl_batch_entry *e, size_t size)
{
    int64_t secs;
    int32_t nanos;
    split_ts(e->ts_ns, &secs, &nanos);
    p = put_len(p, TAG(2, WT_LEN), size);
    p = put_len(p, TAG(1, WT_LEN), ts_size(secs, nanos));
    if (secs) {
        *p++ = (char)TAG(1, WT_VARINT);
        p = put_varint(p, (uint64_t)secs);
    }
    if (nanos) {
        *p++ = (char)TAG(2, WT_VARINT);
        p = put_varint(p, (uint64_t)nanos);
    }
    p = put_bytes(p, TAG(2, WT_LEN), e->line);
    for (size_t i = 0; i < e->nmeta; i++) {
        p = put_len(p, TAG(3, WT_LEN), pair_size(&e->meta[i]));
        p = put_bytes(p, TAG(1, WT_LEN), e->meta[i].name);
        p = put_bytes(p, TAG(2, WT_LEN), e->meta[i].value);
    }
    return p;
}

void sl_lokipb_encode_stream(struct sl_buf *out, struct sl_bytes labels,
                             const struct sl_batch_entry *entries, size_t n)
{
    size_t size = opt_len_field(labels.len);
    for (size_t i = 0; i < n; i++)
        size += len_field(entry_size(&entries[i]));
    char *start = sl_buf_reserve(out, len_field(size));
    char *p = put_len(start, TAG(1, WT_LEN), size);
    p = put_bytes(p, TAG(1, WT_LEN), labels);
    for (size_t i = 0; i < n; i++)
        p = put_entry(p, &entries[i], entry_size(&entries[i]));
    sl_buf_commit(out, (size_t)(p - start));
}

void sl_lokipb_encode_batch(const struct sl_batch *b, struct sl_buf *out)
{
    struct sl_buf labels = SL_BUF_INIT;
    for (size_t i = 0; i < b->nstreams; i++) {
        sl_buf_clear(&labels);
        sl_labels_format(&b->streams[i].labels, &labels);
        sl_lokipb_encode_stream(out, sl_buf_bytes(&labels), b->streams[i].entries,
                                b->streams[i].nentries);
    }
    sl_buf_release(&labels);
}
