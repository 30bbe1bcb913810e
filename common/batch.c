/* Native push body codec (batch.h).
 *
 * The encoder packs with msgpack-c. The decoder walks the msgpack bytes itself
 * instead of calling msgpack_unpack_next(): msgpack-c allocates a container's
 * object array as soon as it reads the header, from the declared size, so a
 * five-byte body announcing 2^32 elements makes it ask for ~100 GB, and a few
 * nested headers pin gigabytes before the input is found short. Walking the
 * bytes lets every declared size be checked against the bytes left first,
 * keeps lines and labels as views into the body with no object tree, and gives
 * each error its precise place. The fuzz target cross-checks the walk against
 * msgpack-c on every body the walk accepts. */
#include "common/batch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "common/err.h"

/* ---------------------------------------------------------------- reader */

enum mp_type {
    MP_NIL,
    MP_BOOL,
    MP_UINT,
    MP_INT,
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT
};

static const char *const mp_type_names[] = {"nil", "bool", "uint",  "int", "float",
                                            "str", "bin",  "array", "map", "ext"};

/* One msgpack header. For str/bin/ext the payload has been consumed and ptr
 * points at it; for array/map n is the element (pair) count still to read. */
struct mp_val {
    enum mp_type type;
    uint64_t u; /* MP_UINT */
    int64_t i;  /* MP_INT (always negative or from intN) */
    const char *ptr;
    size_t n; /* str/bin/ext length, array/map count */
};

struct mp_rd {
    const uint8_t *p;
    const uint8_t *end;
};

enum { MP_OK = 0, MP_SHORT = -1, MP_BAD = -2 };

static inline size_t rd_left(const struct mp_rd *r)
{
    return (size_t)(r->end - r->p);
}

static inline uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = v << 8 | p[k];
    return v;
}

/* Consumes n bytes of header argument; returns false when short. */
static inline bool rd_arg(struct mp_rd *r, int n, uint64_t *out)
{
    if (rd_left(r) < (size_t)n)
        return false;
    *out = be(r->p, n);
    r->p += n;
    return true;
}

static int rd_payload(struct mp_rd *r, struct mp_val *v, enum mp_type t, uint64_t len)
{
    if (len > rd_left(r))
        return MP_SHORT;
    v->type = t;
    v->ptr = (const char *)r->p;
    v->n = (size_t)len;
    r->p += len;
    return MP_OK;
}

/* Container headers: every element takes at least one byte, so a count larger
 * than what is left can only be a short (or lying) body. */
static int rd_container(struct mp_rd *r, struct mp_val *v, enum mp_type t, uint64_t n)
{
    uint64_t min_bytes = t == MP_MAP ? n * 2 : n;
    if (min_bytes > rd_left(r))
        return MP_SHORT;
    v->type = t;
    v->n = (size_t)n;
    return MP_OK;
}

static int rd_ext(struct mp_rd *r, struct mp_val *v, uint64_t len)
{
    if (rd_left(r) < 1)
        return MP_SHORT;
    r->p++; /* ext type byte */
    return rd_payload(r, v, MP_EXT, len);
}

static int rd_next(struct mp_rd *r, struct mp_val *v)
{
    uint64_t a;
    if (r->p >= r->end)
        return MP_SHORT;
    uint8_t c = *r->p++;
    if (c <= 0x7f) {
        v->type = MP_UINT;
        v->u = c;
        return MP_OK;
    }
    if (c >= 0xe0) {
        v->type = MP_INT;
        v->i = (int8_t)c;
        return MP_OK;
    }
    if (c <= 0x8f)
        return rd_container(r, v, MP_MAP, c & 0x0f);
    if (c <= 0x9f)
        return rd_container(r, v, MP_ARRAY, c & 0x0f);
    if (c <= 0xbf)
        return rd_payload(r, v, MP_STR, c & 0x1f);
    switch (c) {
    case 0xc0:
        v->type = MP_NIL;
        return MP_OK;
    case 0xc2:
    case 0xc3:
        v->type = MP_BOOL;
        v->u = c & 1;
        return MP_OK;
    case 0xc4:
    case 0xc5:
    case 0xc6: /* bin 8/16/32 */
        if (!rd_arg(r, 1 << (c - 0xc4), &a))
            return MP_SHORT;
        return rd_payload(r, v, MP_BIN, a);
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32 */
        if (!rd_arg(r, 1 << (c - 0xc7), &a))
            return MP_SHORT;
        return rd_ext(r, v, a);
    case 0xca:
    case 0xcb: /* float 32/64 */
        if (!rd_arg(r, c == 0xca ? 4 : 8, &a))
            return MP_SHORT;
        v->type = MP_FLOAT;
        return MP_OK;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: /* uint 8..64 */
        if (!rd_arg(r, 1 << (c - 0xcc), &a))
            return MP_SHORT;
        v->type = MP_UINT;
        v->u = a;
        return MP_OK;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: { /* int 8..64 */
        int n = 1 << (c - 0xd0);
        if (!rd_arg(r, n, &a))
            return MP_SHORT;
        v->type = MP_INT;
        /* sign-extend from n bytes */
        v->i = n == 8 ? (int64_t)a : (int64_t)(a << (64 - 8 * n)) >> (64 - 8 * n);
        return MP_OK;
    }
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext 1..16 */
        return rd_ext(r, v, (uint64_t)1 << (c - 0xd4));
    case 0xd9:
    case 0xda:
    case 0xdb: /* str 8/16/32 */
        if (!rd_arg(r, 1 << (c - 0xd9), &a))
            return MP_SHORT;
        return rd_payload(r, v, MP_STR, a);
    case 0xdc:
    case 0xdd: /* array 16/32 */
        if (!rd_arg(r, c == 0xdc ? 2 : 4, &a))
            return MP_SHORT;
        return rd_container(r, v, MP_ARRAY, a);
    case 0xde:
    case 0xdf: /* map 16/32 */
        if (!rd_arg(r, c == 0xde ? 2 : 4, &a))
            return MP_SHORT;
        return rd_container(r, v, MP_MAP, a);
    default: /* 0xc1 is never used */
        return MP_BAD;
    }
}

/* Skips `count` whole values without recursion: a container adds its
 * elements to the count still to skip. Each step consumes at least one byte,
 * so this is linear in the input whatever the nesting. */
static int rd_skip(struct mp_rd *r, uint64_t count)
{
    struct mp_val v;
    while (count > 0) {
        int rc = rd_next(r, &v);
        if (rc)
            return rc;
        count--;
        if (v.type == MP_ARRAY)
            count += v.n;
        else if (v.type == MP_MAP)
            count += 2 * (uint64_t)v.n;
    }
    return MP_OK;
}

/* ---------------------------------------------------------------- decoder */

/* Where the decoder is, for error messages. */
enum where { W_TOP, W_STREAMS, W_STREAM, W_LABELS, W_ENTRIES, W_ENTRY, W_META };

struct dec {
    struct mp_rd rd;
    const uint8_t *base;
    struct sl_arena *arena;
    struct sl_buf *err;
    enum where where;
    size_t si, ei;
};

static int __attribute__((format(printf, 2, 3))) fail(struct dec *d, const char *fmt, ...)
{
    if (!d->err)
        return SL_EINVAL;
    switch (d->where) {
    case W_TOP:
        break;
    case W_STREAMS:
        sl_buf_append_str(d->err, "streams: ");
        break;
    case W_STREAM:
        sl_buf_appendf(d->err, "streams[%zu]: ", d->si);
        break;
    case W_LABELS:
        sl_buf_appendf(d->err, "streams[%zu].labels: ", d->si);
        break;
    case W_ENTRIES:
        sl_buf_appendf(d->err, "streams[%zu].entries: ", d->si);
        break;
    case W_ENTRY:
        sl_buf_appendf(d->err, "streams[%zu].entries[%zu]: ", d->si, d->ei);
        break;
    case W_META:
        sl_buf_appendf(d->err, "streams[%zu].entries[%zu].metadata: ", d->si, d->ei);
        break;
    }
    va_list ap;
    va_start(ap, fmt);
    sl_buf_vappendf(d->err, fmt, ap);
    va_end(ap);
    return SL_EINVAL;
}

static int fail_rd(struct dec *d, int rc)
{
    if (rc == MP_BAD)
        return fail(d, "invalid msgpack byte 0xc1 at offset %zu", (size_t)(d->rd.p - 1 - d->base));
    return fail(d, "unexpected end of input");
}

/* Reads the next header; reports truncation/invalid bytes itself. */
static int next(struct dec *d, struct mp_val *v)
{
    int rc = rd_next(&d->rd, v);
    return rc ? fail_rd(d, rc) : 0;
}

static int skip(struct dec *d, uint64_t count)
{
    int rc = rd_skip(&d->rd, count);
    return rc ? fail_rd(d, rc) : 0;
}

/* Appends b for an error message: printable ASCII as is, the rest as \xNN,
 * at most 64 bytes. */
static void quote_name(struct sl_buf *out, const char *p, size_t n)
{
    size_t lim = n > 64 ? 64 : n;
    sl_buf_append_char(out, '"');
    for (size_t k = 0; k < lim; k++) {
        unsigned char c = (unsigned char)p[k];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            sl_buf_append_char(out, (char)c);
        else
            sl_buf_appendf(out, "\\x%02x", c);
    }
    if (n > lim)
        sl_buf_append_str(out, "...");
    sl_buf_append_char(out, '"');
}

static inline bool is_bytes(const struct mp_val *v)
{
    return v->type == MP_STR || v->type == MP_BIN;
}

static inline bool key_is(const struct mp_val *k, const char *s, size_t n)
{
    return k->type == MP_STR && k->n == n && memcmp(k->ptr, s, n) == 0;
}

/* A map of str name -> str|bin value: labels and structured metadata. */
static int dec_label_map(struct dec *d, struct mp_val *m, struct sl_label **items, size_t *n)
{
    struct mp_val k, v;
    *items = NULL;
    *n = m->n;
    if (m->n == 0)
        return 0;
    *items = sl_arena_alloc(d->arena, m->n * sizeof(**items));
    for (size_t j = 0; j < m->n; j++) {
        if (next(d, &k))
            return SL_EINVAL;
        if (k.type != MP_STR)
            return fail(d, "name %zu must be a string, got %s", j, mp_type_names[k.type]);
        if (next(d, &v))
            return SL_EINVAL;
        if (!is_bytes(&v)) {
            if (d->err) {
                fail(d, "value of ");
                quote_name(d->err, k.ptr, k.n);
                sl_buf_appendf(d->err, " must be a string, got %s", mp_type_names[v.type]);
            }
            return SL_EINVAL;
        }
        (*items)[j].name = sl_bytes(k.ptr, k.n);
        (*items)[j].value = sl_bytes(v.ptr, v.n);
    }
    return 0;
}

static int dec_entry(struct dec *d, struct sl_batch_entry *e, size_t *line_bytes)
{
    struct mp_val a, v;
    d->where = W_ENTRY;
    if (next(d, &a))
        return SL_EINVAL;
    if (a.type != MP_ARRAY)
        return fail(d, "entry must be an array [ts, line, metadata?], got %s",
                    mp_type_names[a.type]);
    if (a.n < 2)
        return fail(d, "entry must have 2 or 3 elements, got %zu", a.n);
    if (next(d, &v))
        return SL_EINVAL;
    if (v.type == MP_UINT) {
        if (v.u > INT64_MAX)
            return fail(d, "timestamp %llu out of range", (unsigned long long)v.u);
        e->ts_ns = (int64_t)v.u;
    } else if (v.type == MP_INT) {
        e->ts_ns = v.i;
    } else {
        return fail(d, "timestamp must be an integer, got %s", mp_type_names[v.type]);
    }
    if (next(d, &v))
        return SL_EINVAL;
    if (!is_bytes(&v))
        return fail(d, "line must be a string, got %s", mp_type_names[v.type]);
    e->line = sl_bytes(v.ptr, v.n);
    *line_bytes += v.n;
    e->meta = NULL;
    e->nmeta = 0;
    if (a.n >= 3) {
        if (next(d, &v))
            return SL_EINVAL;
        if (v.type == MP_MAP) {
            d->where = W_META;
            if (dec_label_map(d, &v, &e->meta, &e->nmeta))
                return SL_EINVAL;
            d->where = W_ENTRY;
        } else if (v.type != MP_NIL) {
            return fail(d, "metadata must be a map, got %s", mp_type_names[v.type]);
        }
    }
    /* Elements after the third are reserved for later versions. */
    return a.n > 3 ? skip(d, a.n - 3) : 0;
}

/* Smallest valid encodings, to bound allocations by the bytes left: an entry
 * [0, ""] is 3 bytes, a stream {"labels": {}, "entries": []} 18. */
enum { MIN_ENTRY_BYTES = 3, MIN_STREAM_BYTES = 18 };

static int dec_entries(struct dec *d, struct sl_batch_stream *s, struct sl_batch *out)
{
    struct mp_val v;
    struct sl_batch_entry scratch;
    d->where = W_ENTRIES;
    if (next(d, &v))
        return SL_EINVAL;
    d->where = W_STREAM;
    if (v.type != MP_ARRAY)
        return fail(d, "entries must be an array, got %s", mp_type_names[v.type]);
    /* A count the bytes left cannot hold is decoded into scratch so that the
     * error names the first bad entry; nothing is allocated from it. */
    bool fits = v.n <= rd_left(&d->rd) / MIN_ENTRY_BYTES;
    s->nentries = v.n;
    s->entries = fits && v.n ? sl_arena_alloc(d->arena, v.n * sizeof(*s->entries)) : NULL;
    for (size_t j = 0; j < v.n; j++) {
        d->ei = j;
        if (dec_entry(d, fits ? &s->entries[j] : &scratch, &out->line_bytes))
            return SL_EINVAL;
    }
    if (!fits) { /* unreachable while MIN_ENTRY_BYTES is right */
        d->where = W_ENTRIES;
        return fail(d, "unexpected end of input");
    }
    out->nentries += v.n;
    d->where = W_STREAM;
    return 0;
}

/* After a map key that is not one we know: skip the key's own contents if it
 * is a container, then its value. */
static int skip_unknown(struct dec *d, const struct mp_val *k)
{
    uint64_t rest = k->type == MP_MAP ? 2 * (uint64_t)k->n : k->type == MP_ARRAY ? k->n : 0;
    return skip(d, rest + 1);
}

static int dec_stream(struct dec *d, struct sl_batch_stream *s, struct sl_batch *out)
{
    struct mp_val m, k, v;
    bool have_labels = false, have_entries = false;
    d->where = W_STREAM;
    memset(s, 0, sizeof(*s));
    if (next(d, &m))
        return SL_EINVAL;
    if (m.type != MP_MAP)
        return fail(d, "stream must be a map, got %s", mp_type_names[m.type]);
    for (size_t j = 0; j < m.n; j++) {
        if (next(d, &k))
            return SL_EINVAL;
        if (key_is(&k, "labels", 6)) {
            if (have_labels)
                return fail(d, "duplicate key \"labels\"");
            have_labels = true;
            d->where = W_LABELS;
            if (next(d, &v))
                return SL_EINVAL;
            d->where = W_STREAM;
            if (v.type != MP_MAP)
                return fail(d, "labels must be a map, got %s", mp_type_names[v.type]);
            d->where = W_LABELS;
            if (dec_label_map(d, &v, &s->labels.items, &s->labels.n))
                return SL_EINVAL;
            d->where = W_STREAM;
        } else if (key_is(&k, "entries", 7)) {
            if (have_entries)
                return fail(d, "duplicate key \"entries\"");
            have_entries = true;
            if (dec_entries(d, s, out))
                return SL_EINVAL;
        } else if (skip_unknown(d, &k)) {
            return SL_EINVAL;
        }
    }
    if (!have_labels)
        return fail(d, "missing \"labels\"");
    if (!have_entries)
        return fail(d, "missing \"entries\"");
    return 0;
}

static int dec_streams(struct dec *d, struct sl_batch *out)
{
    struct mp_val v;
    struct sl_batch_stream scratch;
    d->where = W_STREAMS;
    if (next(d, &v))
        return SL_EINVAL;
    d->where = W_TOP;
    if (v.type != MP_ARRAY)
        return fail(d, "streams must be an array, got %s", mp_type_names[v.type]);
    bool fits = v.n <= rd_left(&d->rd) / MIN_STREAM_BYTES;
    out->nstreams = v.n;
    out->streams = fits && v.n ? sl_arena_alloc(d->arena, v.n * sizeof(*out->streams)) : NULL;
    for (size_t j = 0; j < v.n; j++) {
        d->si = j;
        if (dec_stream(d, fits ? &out->streams[j] : &scratch, out))
            return SL_EINVAL;
    }
    d->where = W_STREAMS;
    if (!fits) /* unreachable while MIN_STREAM_BYTES is right */
        return fail(d, "unexpected end of input");
    d->where = W_TOP;
    return 0;
}

int sl_batch_decode(struct sl_arena *arena, const void *body, size_t n, struct sl_batch *out,
                    struct sl_buf *err)
{
    struct dec d = {
        .rd = {body, (const uint8_t *)body + n},
        .base = body,
        .arena = arena,
        .err = err,
        .where = W_TOP,
    };
    struct mp_val m, k;
    bool have_streams = false;
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return fail(&d, "empty body");
    if (next(&d, &m))
        goto fail;
    if (m.type != MP_MAP) {
        fail(&d, "body must be a map, got %s", mp_type_names[m.type]);
        goto fail;
    }
    for (size_t j = 0; j < m.n; j++) {
        if (next(&d, &k))
            goto fail;
        if (key_is(&k, "streams", 7)) {
            if (have_streams) {
                fail(&d, "duplicate key \"streams\"");
                goto fail;
            }
            have_streams = true;
            if (dec_streams(&d, out))
                goto fail;
        } else if (skip_unknown(&d, &k)) {
            goto fail;
        }
    }
    if (!have_streams) {
        fail(&d, "missing \"streams\"");
        goto fail;
    }
    if (d.rd.p != d.rd.end) {
        fail(&d, "%zu trailing bytes after the body at offset %zu", rd_left(&d.rd),
             (size_t)(d.rd.p - d.base));
        goto fail;
    }
    return 0;
fail:
    /* The arena keeps what was allocated; out must not point into a half
     * decoded batch. */
    memset(out, 0, sizeof(*out));
    return SL_EINVAL;
}

/* ---------------------------------------------------------------- encoder */

static int buf_write(void *data, const char *p, size_t n)
{
    sl_buf_append(data, p, n);
    return 0;
}

static inline void pack_bytes(msgpack_packer *pk, struct sl_bytes b)
{
    msgpack_pack_str(pk, b.len);
    msgpack_pack_str_body(pk, b.ptr, b.len);
}

static void pack_label_map(msgpack_packer *pk, const struct sl_label *items, size_t n)
{
    msgpack_pack_map(pk, n);
    for (size_t j = 0; j < n; j++) {
        pack_bytes(pk, items[j].name);
        pack_bytes(pk, items[j].value);
    }
}

void sl_batch_enc_init(struct sl_batch_enc *e)
{
    sl_buf_init(&e->body);
    e->nstreams = 0;
    e->pending = 0;
    e->err = 0;
}

void sl_batch_enc_release(struct sl_batch_enc *e)
{
    sl_buf_release(&e->body);
    e->nstreams = 0;
    e->pending = 0;
    e->err = 0;
}

void sl_batch_enc_clear(struct sl_batch_enc *e)
{
    sl_buf_clear(&e->body);
    e->nstreams = 0;
    e->pending = 0;
    e->err = 0;
}

void sl_batch_enc_stream(struct sl_batch_enc *e, const struct sl_labels *labels, size_t nentries)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &e->body, buf_write);
    if (e->pending)
        e->err = SL_EINVAL;
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "labels", 6);
    pack_label_map(&pk, labels->items, labels->n);
    msgpack_pack_str_with_body(&pk, "entries", 7);
    msgpack_pack_array(&pk, nentries);
    e->nstreams++;
    e->pending = nentries;
}

void sl_batch_enc_entry(struct sl_batch_enc *e, int64_t ts_ns, struct sl_bytes line,
                        const struct sl_label *meta, size_t nmeta)
{
    msgpack_packer pk;
    if (e->pending == 0) {
        e->err = SL_EINVAL;
        return;
    }
    e->pending--;
    msgpack_packer_init(&pk, &e->body, buf_write);
    msgpack_pack_array(&pk, nmeta ? 3 : 2);
    msgpack_pack_int64(&pk, ts_ns);
    pack_bytes(&pk, line);
    if (nmeta)
        pack_label_map(&pk, meta, nmeta);
}

int sl_batch_enc_finish(struct sl_batch_enc *e, struct sl_buf *out)
{
    msgpack_packer pk;
    int rc = e->pending ? SL_EINVAL : e->err;
    if (rc == 0) {
        msgpack_packer_init(&pk, out, buf_write);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "streams", 7);
        msgpack_pack_array(&pk, e->nstreams);
        sl_buf_append(out, e->body.data, e->body.len);
    }
    sl_batch_enc_clear(e);
    return rc;
}
