/* Loki JSON push bodies (push.h), decoded in one pass with yajl's streaming
 * parser straight into the batch: no document tree, no allocation per value.
 * Strings without escapes (most lines) are not copied: they point into the
 * body.
 *
 * The accepted language is exactly the one of the jansson-based decoder this
 * replaced (json_loadb with JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES), which
 * tests/fuzz/fuzz_push_json.c keeps as a reference and checks this one
 * against: where yajl is more lenient, the callbacks refuse what jansson
 * refused (duplicate keys in any object, NUL in keys, nesting deeper than
 * 2048 values, lone or mismatched UTF-16 surrogate escapes, overlong or
 * surrogate UTF-8, integers outside int64, reals that overflow, \v and \f as
 * whitespace). Semantic errors get the same messages and the same precedence
 * as before: any syntax error first, then the first stream in order, and
 * within a stream its labels, then its values, then its entries in order. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <yajl/yajl_parse.h>

#include "aggregator/api/push.h"
#include "common/err.h"
#include "common/mem.h"

/* jansson's JSON_PARSER_MAX_DEPTH: a value nested deeper was refused. */
#define JSON_MAX_DEPTH 2048
/* Maps with more keys than this check duplicates through a hash table. */
#define KEYS_LINEAR 16

/* What a value means at its place in the document. */
enum role {
    R_IGNORE,      /* unknown key, or after the decision: skipped */
    R_ROOT,        /* must be an object */
    R_STREAMS,     /* root."streams": an array */
    R_STREAM,      /* streams[i]: an object */
    R_LABELS,      /* streams[i]."stream": an object of strings */
    R_LABEL_VALUE, /* a string */
    R_VALUES,      /* streams[i]."values": an array */
    R_ENTRY,       /* values[j]: [ts, line] or [ts, line, {metadata}] */
    R_TS,
    R_LINE,
    R_META,
    R_META_VALUE,
};

struct keyhash {
    uint32_t *slot; /* index into keys + 1; 0: empty */
    size_t cap;     /* power of two */
};

struct frame {
    enum role role;     /* of this container */
    enum role key_role; /* maps: role of the value after the last key */
    bool is_map;
    size_t idx;   /* arrays: elements seen */
    size_t keys0; /* maps: first of this map's keys in p->keys */
    struct keyhash *kh;
};

/* Order of semantic errors: the decoder this replaced walked the finished
 * tree and reported the first problem in this order. */
struct rank {
    size_t stream;
    unsigned part; /* 0 root, 1 not an object, 2 labels, 3 values, 4 entries */
    size_t entry;  /* entries: index * 4 + kind (shape, ts, line, metadata) */
};

struct jp {
    struct sl_arena *arena;
    const char *in;
    size_t n;
    yajl_handle h;
    size_t last_off; /* input offset after the previous token */
    size_t root_end; /* input offset after the root value; 0: not seen */
    struct frame *fr;
    size_t nfr, capfr;
    struct sl_bytes *keys;
    size_t nkeys, capkeys;
    /* decoded so far */
    struct sl_batch_stream *streams;
    size_t nstreams, capstreams;
    struct sl_batch_entry *ents;
    size_t nents, capents;
    struct sl_label *tmp; /* labels or metadata being read */
    size_t ntmp, captmp;
    bool saw_streams, cur_labels;
    struct {
        int64_t ts;
        struct sl_bytes line;
        struct sl_label *meta;
        size_t nmeta;
        bool ts_ok, line_ok, meta_ok;
    } e;
    bool tmp_ok; /* every value of the labels/metadata object was a string */
    /* errors */
    bool done; /* a semantic error is final: only syntax is checked further */
    bool has_err;
    struct rank err_rank;
    struct sl_buf sem;
    const char *syn; /* our own syntax error, when a callback cancels */
    size_t syn_off;
};

#define GROW(p, n, cap, init)                                                                      \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : (init);                                                      \
            (p) = sl_reallocarray((p), (cap), sizeof(*(p)));                                       \
        }                                                                                          \
    } while (0)

/* ---- errors ---- */

static bool rank_less(struct rank a, struct rank b)
{
    if (a.stream != b.stream)
        return a.stream < b.stream;
    if (a.part != b.part)
        return a.part < b.part;
    return a.entry < b.entry;
}

static void sem_error(struct jp *p, struct rank r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sem_error(struct jp *p, struct rank r, const char *fmt, ...)
{
    if (p->has_err && !rank_less(r, p->err_rank))
        return;
    p->has_err = true;
    p->err_rank = r;
    sl_buf_clear(&p->sem);
    va_list ap;
    va_start(ap, fmt);
    sl_buf_vappendf(&p->sem, fmt, ap);
    va_end(ap);
}

static int syn_error(struct jp *p, const char *what)
{
    p->syn = what;
    p->syn_off = yajl_get_bytes_consumed(p->h);
    return 0; /* cancels the parse */
}

static void root_error(struct jp *p)
{
    sem_error(p, (struct rank){0, 0, 0}, "expected {\"streams\": [...]}");
    p->done = true;
}

/* ---- what jansson refused and yajl does not ---- */

/* Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 32 <= n) { /* log lines are mostly ASCII: 32 bytes a step */
            uint64_t w[4];
            memcpy(w, s + i, 32);
            if (!((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ULL)) {
                i += 32;
                continue;
            }
        }
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* The raw text of a string with escapes (between its quotes) has only
 * surrogate escapes that form pairs. yajl has checked the escape syntax. */
static bool escapes_valid(const char *r, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (r[i] != '\\')
            continue;
        if (r[++i] != 'u')
            continue;
        unsigned cp = hex4(r + i + 1);
        i += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 >= n || r[i + 1] != '\\' || r[i + 2] != 'u')
                return false;
            unsigned lo = hex4(r + i + 3);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return false;
            i += 6;
        }
    }
    return true;
}

/* A string from yajl: points into the input when it had no escapes, else
 * into yajl's decode buffer (copied to the arena if keep). */
static int take_string(struct jp *p, const unsigned char *s, size_t len, bool keep,
                       struct sl_bytes *out)
{
    const char *cs = (const char *)s;
    if (cs >= p->in && cs <= p->in + p->n) {
        if (!utf8_valid(s, len))
            return syn_error(p, "invalid UTF-8 in a string");
        *out = sl_bytes(cs, len);
        return 1;
    }
    /* The raw token: the first quote after the previous token (only
     * whitespace, ',' and ':' lie between tokens) up to the closing quote
     * just consumed. */
    size_t end = yajl_get_bytes_consumed(p->h);
    const char *q = memchr(p->in + p->last_off, '"', end - p->last_off);
    if (!q || !escapes_valid(q + 1, (size_t)(p->in + end - 1 - (q + 1))))
        return syn_error(p, "invalid Unicode escape (unpaired UTF-16 surrogate)");
    if (!utf8_valid(s, len))
        return syn_error(p, "invalid UTF-8 in a string");
    *out = keep ? sl_arena_bytes(p->arena, sl_bytes(cs, len)) : sl_bytes(cs, len);
    return 1;
}

/* Integers must fit int64, reals must not overflow (jansson's limits). */
static bool number_valid(const char *s, size_t n)
{
    bool real = memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n);
    if (!real) {
        bool neg = s[0] == '-';
        size_t digits = n - neg;
        if (digits < 19)
            return true;
        return digits == 19 &&
               memcmp(s + neg, neg ? "9223372036854775808" : "9223372036854775807", 19) <= 0;
    }
    char small[64], *z = n < sizeof(small) ? small : sl_malloc(n + 1);
    memcpy(z, s, n);
    z[n] = 0;
    errno = 0;
    double d = strtod(z, NULL);
    bool ok = !((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE);
    if (z != small)
        sl_free(z);
    return ok;
}

/* ---- duplicate keys ---- */

static uint64_t key_hash(struct sl_bytes k)
{
    return XXH3_64bits(k.ptr, k.len);
}

static void kh_insert(struct keyhash *kh, const struct sl_bytes *keys, uint32_t idx)
{
    size_t i = key_hash(keys[idx]) & (kh->cap - 1);
    while (kh->slot[i])
        i = (i + 1) & (kh->cap - 1);
    kh->slot[i] = idx + 1;
}

/* Adds key to the map f; false if it is already there. */
static bool key_add(struct jp *p, struct frame *f, struct sl_bytes key)
{
    size_t nk = p->nkeys - f->keys0;
    if (nk < KEYS_LINEAR) {
        for (size_t i = f->keys0; i < p->nkeys; i++)
            if (sl_bytes_eq(p->keys[i], key))
                return false;
    } else {
        if (!f->kh || nk * 2 >= f->kh->cap) {
            if (!f->kh)
                f->kh = SL_NEW(struct keyhash);
            sl_free(f->kh->slot);
            f->kh->cap = 64;
            while (f->kh->cap <= nk * 4)
                f->kh->cap *= 2;
            f->kh->slot = sl_calloc(f->kh->cap, sizeof(uint32_t));
            for (size_t i = f->keys0; i < p->nkeys; i++)
                kh_insert(f->kh, p->keys, (uint32_t)i);
        }
        for (size_t i = key_hash(key) & (f->kh->cap - 1); f->kh->slot[i];
             i = (i + 1) & (f->kh->cap - 1))
            if (sl_bytes_eq(p->keys[f->kh->slot[i] - 1], key))
                return false;
    }
    GROW(p->keys, p->nkeys, p->capkeys, 64);
    p->keys[p->nkeys++] = key;
    if (f->kh)
        kh_insert(f->kh, p->keys, (uint32_t)(p->nkeys - 1));
    return true;
}

/* ---- roles ---- */

static struct frame *top(struct jp *p)
{
    return p->nfr ? &p->fr[p->nfr - 1] : NULL;
}

/* Role of the value starting now; counts it in its array. */
static enum role next_role(struct jp *p)
{
    struct frame *f = top(p);
    if (!f)
        return R_ROOT;
    size_t idx = f->idx++;
    if (p->done)
        return R_IGNORE;
    if (f->is_map)
        return f->key_role;
    switch (f->role) {
    case R_STREAMS:
        return R_STREAM;
    case R_VALUES:
        return R_ENTRY;
    case R_ENTRY:
        return idx == 0 ? R_TS : idx == 1 ? R_LINE : idx == 2 ? R_META : R_IGNORE;
    default:
        return R_IGNORE;
    }
}

static size_t cur_stream(const struct jp *p)
{
    return p->nstreams - 1;
}

/* Index of the current element of the innermost array with role r. */
static size_t elem_index(const struct jp *p, enum role r)
{
    for (size_t i = p->nfr; i-- > 0;)
        if (p->fr[i].role == r)
            return p->fr[i].idx - 1;
    return 0;
}

static void labels_error(struct jp *p, size_t i)
{
    sem_error(p, (struct rank){i, 2, 0}, "streams[%zu].stream: expected an object of strings", i);
}

/* A value that is not what its role needs. */
static void wrong_type(struct jp *p, enum role r)
{
    switch (r) {
    case R_ROOT:
    case R_STREAMS:
        root_error(p);
        break;
    case R_STREAM: {
        size_t i = elem_index(p, R_STREAMS);
        sem_error(p, (struct rank){i, 1, 0}, "streams[%zu]: expected an object", i);
        p->done = true;
        break;
    }
    case R_LABELS:
    case R_LABEL_VALUE:
        p->tmp_ok = r == R_LABEL_VALUE ? false : p->tmp_ok;
        if (r == R_LABELS)
            labels_error(p, cur_stream(p));
        break;
    case R_VALUES: {
        size_t i = cur_stream(p);
        sem_error(p, (struct rank){i, 3, 0}, "streams[%zu].values: expected an array", i);
        break;
    }
    case R_ENTRY: {
        size_t i = cur_stream(p), j = elem_index(p, R_VALUES);
        sem_error(p, (struct rank){i, 4, j * 4},
                  "streams[%zu].values[%zu]: expected [\"<ns>\", \"<line>\"]", i, j);
        break;
    }
    case R_TS:
        p->e.ts_ok = false;
        break;
    case R_LINE:
        p->e.line_ok = false;
        break;
    case R_META:
    case R_META_VALUE:
        p->e.meta_ok = false;
        if (r == R_META_VALUE)
            p->tmp_ok = false;
        break;
    default:
        break;
    }
}

/* Loki parses the timestamp with strconv.ParseInt: decimal, optional sign. */
static int parse_ns(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n || n - i > 19)
        return SL_EINVAL;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SL_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return SL_EINVAL;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ---- callbacks ---- */

static int value_start(struct jp *p, enum role *r)
{
    if (p->nfr + 1 > JSON_MAX_DEPTH)
        return syn_error(p, "maximum parsing depth reached");
    *r = next_role(p);
    return 1;
}

static int done_token(struct jp *p)
{
    p->last_off = yajl_get_bytes_consumed(p->h);
    return 1;
}

static int on_scalar(void *ud)
{
    struct jp *p = ud;
    enum role r;
    if (!value_start(p, &r))
        return 0;
    if (r != R_IGNORE)
        wrong_type(p, r);
    return done_token(p);
}

static int on_bool(void *ud, int v)
{
    (void)v;
    return on_scalar(ud);
}

static int on_number(void *ud, const char *s, size_t n)
{
    struct jp *p = ud;
    if (!number_valid(s, n))
        return syn_error(p, "number out of range");
    return on_scalar(ud);
}

static void tmp_add(struct jp *p, struct sl_bytes v)
{
    struct sl_bytes name = p->keys[p->nkeys - 1];
    GROW(p->tmp, p->ntmp, p->captmp, 16);
    p->tmp[p->ntmp++] = (struct sl_label){name, v};
}

static int on_string(void *ud, const unsigned char *s, size_t n)
{
    struct jp *p = ud;
    enum role r;
    if (!value_start(p, &r))
        return 0;
    struct sl_bytes v;
    if (!take_string(p, s, n, r == R_LINE || r == R_LABEL_VALUE || r == R_META_VALUE, &v))
        return 0;
    switch (r) {
    case R_TS:
        p->e.ts_ok = parse_ns(v.ptr, v.len, &p->e.ts) == 0;
        break;
    case R_LINE:
        p->e.line = v;
        p->e.line_ok = true;
        break;
    case R_LABEL_VALUE:
    case R_META_VALUE:
        tmp_add(p, v);
        break;
    case R_IGNORE:
        break;
    default:
        wrong_type(p, r);
    }
    return done_token(p);
}

static int on_key(void *ud, const unsigned char *s, size_t n)
{
    struct jp *p = ud;
    struct frame *f = top(p);
    struct sl_bytes k;
    if (!take_string(p, s, n, true, &k))
        return 0;
    if (memchr(k.ptr, 0, k.len))
        return syn_error(p, "NUL byte in object key not supported");
    if (!key_add(p, f, k))
        return syn_error(p, "duplicate object key");
    f->key_role = R_IGNORE;
    if (f->role == R_ROOT && sl_bytes_eq_str(k, "streams"))
        f->key_role = R_STREAMS;
    else if (f->role == R_STREAM && sl_bytes_eq_str(k, "stream"))
        f->key_role = R_LABELS;
    else if (f->role == R_STREAM && sl_bytes_eq_str(k, "values"))
        f->key_role = R_VALUES;
    else if (f->role == R_LABELS)
        f->key_role = R_LABEL_VALUE;
    else if (f->role == R_META)
        f->key_role = R_META_VALUE;
    return done_token(p);
}

static void push_frame(struct jp *p, enum role r, bool is_map)
{
    GROW(p->fr, p->nfr, p->capfr, 16);
    p->fr[p->nfr++] = (struct frame){.role = r, .is_map = is_map, .keys0 = p->nkeys};
}

static int on_start_container(struct jp *p, bool is_map)
{
    enum role r;
    if (!value_start(p, &r))
        return 0;
    enum role want_map[] = {R_ROOT, R_STREAM, R_LABELS, R_META};
    enum role want_array[] = {R_STREAMS, R_VALUES, R_ENTRY};
    bool fits = false;
    for (size_t i = 0; i < (is_map ? 4 : 3); i++)
        fits |= r == (is_map ? want_map[i] : want_array[i]);
    if (r != R_IGNORE && !fits) {
        wrong_type(p, r);
        r = R_IGNORE;
    }
    switch (r) {
    case R_STREAMS:
        p->saw_streams = true;
        break;
    case R_STREAM:
        GROW(p->streams, p->nstreams, p->capstreams, 16);
        p->streams[p->nstreams++] = (struct sl_batch_stream){0};
        p->cur_labels = false;
        break;
    case R_LABELS:
    case R_META:
        p->ntmp = 0;
        p->tmp_ok = true;
        break;
    case R_ENTRY:
        memset(&p->e, 0, sizeof(p->e));
        p->e.meta_ok = true;
        break;
    default:
        break;
    }
    push_frame(p, r, is_map);
    return done_token(p);
}

static int on_start_map(void *ud)
{
    return on_start_container(ud, true);
}

static int on_start_array(void *ud)
{
    return on_start_container(ud, false);
}

static struct sl_label *tmp_copy(struct jp *p)
{
    struct sl_label *l = sl_arena_alloc(p->arena, (p->ntmp ? p->ntmp : 1) * sizeof(*l));
    if (p->ntmp)
        memcpy(l, p->tmp, p->ntmp * sizeof(*l));
    return l;
}

static void entry_end(struct jp *p, size_t count)
{
    size_t i = cur_stream(p), j = elem_index(p, R_VALUES);
    struct rank rk = {i, 4, j * 4};
    if (count < 2 || count > 3) {
        sem_error(p, rk, "streams[%zu].values[%zu]: expected [\"<ns>\", \"<line>\"]", i, j);
    } else if (!p->e.ts_ok) {
        rk.entry += 1;
        sem_error(p, rk, "streams[%zu].values[%zu]: timestamp must be a string of nanoseconds", i,
                  j);
    } else if (!p->e.line_ok) {
        rk.entry += 2;
        sem_error(p, rk, "streams[%zu].values[%zu]: line must be a string", i, j);
    } else if (count == 3 && !p->e.meta_ok) {
        rk.entry += 3;
        sem_error(p, rk, "streams[%zu].values[%zu]: metadata must be an object of strings", i, j);
    } else if (!p->has_err) {
        GROW(p->ents, p->nents, p->capents, 256);
        p->ents[p->nents++] = (struct sl_batch_entry){p->e.ts, p->e.line, p->e.meta, p->e.nmeta};
        p->streams[i].nentries++;
    }
}

static int on_end_container(void *ud)
{
    struct jp *p = ud;
    struct frame f = p->fr[--p->nfr];
    p->nkeys = f.keys0;
    if (p->nfr == 0)
        p->root_end = yajl_get_bytes_consumed(p->h);
    if (f.kh) {
        sl_free(f.kh->slot);
        sl_free(f.kh);
    }
    if (p->done && f.role != R_STREAM)
        return done_token(p);
    switch (f.role) {
    case R_ROOT:
        if (!p->saw_streams)
            root_error(p);
        break;
    case R_STREAM:
        if (!p->done && !p->cur_labels)
            labels_error(p, cur_stream(p));
        if (p->has_err)
            p->done = true;
        break;
    case R_LABELS:
        if (!p->tmp_ok) {
            labels_error(p, cur_stream(p));
        } else {
            p->streams[cur_stream(p)].labels = (struct sl_labels){tmp_copy(p), p->ntmp};
            p->cur_labels = true;
        }
        break;
    case R_META:
        if (p->tmp_ok) {
            p->e.meta = tmp_copy(p);
            p->e.nmeta = p->ntmp;
        } else {
            p->e.meta_ok = false;
        }
        break;
    case R_ENTRY:
        entry_end(p, f.idx);
        break;
    default:
        break;
    }
    return done_token(p);
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_scalar,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end_container,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_container,
};

/* ---- driver ---- */

static void position(const char *in, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (in[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void syntax_message(struct jp *p, yajl_status st, struct sl_buf *err)
{
    size_t off = p->syn ? p->syn_off : yajl_get_bytes_consumed(p->h), line, col;
    if (off > p->n)
        off = p->n;
    position(p->in, off, &line, &col);
    if (st == yajl_status_client_canceled) {
        sl_buf_appendf(err, "line %zu column %zu: %s", line, col, p->syn);
        return;
    }
    unsigned char *m = yajl_get_error(p->h, 0, NULL, 0);
    const char *text = m ? (const char *)m : "malformed JSON";
    size_t tl = strlen(text);
    while (tl && (text[tl - 1] == '\n' || text[tl - 1] == ' '))
        tl--;
    sl_buf_appendf(err, "line %zu column %zu: %.*s", line, col, (int)tl, text);
    if (m)
        yajl_free_error(p->h, m);
}

/* Moves the decoded streams and entries into the arena. */
static void finish(struct jp *p, struct sl_batch *out)
{
    out->nstreams = p->nstreams;
    out->streams =
        sl_arena_alloc(p->arena, (p->nstreams ? p->nstreams : 1) * sizeof(*out->streams));
    struct sl_batch_entry *ents =
        sl_arena_alloc(p->arena, (p->nents ? p->nents : 1) * sizeof(*ents));
    if (p->nents)
        memcpy(ents, p->ents, p->nents * sizeof(*ents));
    size_t e0 = 0;
    for (size_t i = 0; i < p->nstreams; i++) {
        out->streams[i] = p->streams[i];
        out->streams[i].entries = ents + e0;
        for (size_t k = 0; k < p->streams[i].nentries; k++)
            out->line_bytes += ents[e0 + k].line.len;
        e0 += p->streams[i].nentries;
    }
    out->nentries = p->nents;
}

int sl_push_json_decode(struct sl_arena *arena, const void *body, size_t n, struct sl_batch *out,
                        struct sl_buf *err)
{
    memset(out, 0, sizeof(*out));
    struct jp p = {.arena = arena, .in = body ? body : "", .n = n};
    sl_buf_init(&p.sem);
    /* yajl takes \v and \f for whitespace; JSON (and jansson) does not, and
     * they cannot appear raw inside a valid string either. */
    const char *vf = memchr(p.in, '\v', n);
    const char *ff = memchr(p.in, '\f', vf ? (size_t)(vf - p.in) : n);
    int rc = 0;
    if (ff || vf) {
        size_t line, col;
        position(p.in, (size_t)((ff ? ff : vf) - p.in), &line, &col);
        if (err)
            sl_buf_appendf(err, "line %zu column %zu: invalid whitespace character", line, col);
        sl_buf_release(&p.sem);
        return SL_EINVAL;
    }
    p.h = yajl_alloc(&callbacks, NULL, &p);
    if (!p.h) {
        sl_buf_release(&p.sem);
        return SL_ENOMEM;
    }
    yajl_config(p.h, yajl_dont_validate_strings, 1); /* checked strictly here */
    yajl_status st = yajl_parse(p.h, (const unsigned char *)p.in, n);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(p.h);
    /* yajl ends its parse at the end of the input inside a trailing token
     * (`{...} "abc` or `{...} tru`) without an error. */
    size_t tail = p.root_end;
    while (st == yajl_status_ok && p.root_end && tail < n &&
           (p.in[tail] == ' ' || p.in[tail] == '\t' || p.in[tail] == '\n' || p.in[tail] == '\r'))
        tail++;
    if (st == yajl_status_ok && p.root_end && tail < n) {
        p.syn = "end of file expected";
        p.syn_off = tail;
        st = yajl_status_client_canceled;
    }
    if (st != yajl_status_ok) {
        if (err)
            syntax_message(&p, st, err);
        rc = SL_EINVAL;
    } else if (p.has_err) {
        if (err)
            sl_buf_append(err, p.sem.data, p.sem.len);
        rc = SL_EINVAL;
    } else {
        finish(&p, out);
    }
    yajl_free(p.h);
    for (size_t i = 0; i < p.nfr; i++) {
        if (p.fr[i].kh) {
            sl_free(p.fr[i].kh->slot);
            sl_free(p.fr[i].kh);
        }
    }
    sl_free(p.fr);
    sl_free(p.keys);
    sl_free(p.streams);
    sl_free(p.ents);
    sl_free(p.tmp);
    sl_buf_release(&p.sem);
    return rc;
}
