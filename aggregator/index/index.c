/* Index writer and reader. The writer keeps one record per added chunk in an
 * arena and lays the file out at finish; the reader works in place over the
 * mapped file and checks every offset it follows (fuzzed). */
#include "aggregator/index/index.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/err.h"
#include "common/format.h"
#include "common/hash.h"
#include "common/mem.h"
#include "common/wire.h"

static bool crc_ok(uint32_t stored, uint32_t computed)
{
#ifdef SL_FUZZING
    (void)stored, (void)computed;
    return true; /* let mutations reach the decoders behind the checksum */
#else
    return stored == computed;
#endif
}

static void buf_u32(struct sl_buf *b, uint32_t v)
{
    sl_put_le32(sl_buf_reserve(b, 4), v);
    sl_buf_commit(b, 4);
}

static void buf_u64(struct sl_buf *b, uint64_t v)
{
    sl_put_le64(sl_buf_reserve(b, 8), v);
    sl_buf_commit(b, 8);
}

int64_t sl_index_day(int64_t ts_ns)
{
    int64_t d = ts_ns / SL_INDEX_PERIOD_NS;
    return (ts_ns < 0 && ts_ns % SL_INDEX_PERIOD_NS) ? d - 1 : d;
}

void sl_index_prefix(struct sl_buf *out, int64_t day, struct sl_bytes tenant)
{
    sl_buf_appendf(out, "index/%05" PRId64 "/", day);
    sl_buf_append(out, tenant.ptr, tenant.len);
    sl_buf_append_char(out, '/');
}

/* ---- writer ---- */

struct rec {
    uint64_t fp;
    struct sl_labels labels;
    struct sl_bytes canon;
    struct sl_index_chunk_ref ref;
};

struct sl_index_writer {
    struct sl_arena arena;
    struct rec *recs;
    size_t n, cap;
};

struct sl_index_writer *sl_index_writer_new(void)
{
    struct sl_index_writer *w = SL_NEW(struct sl_index_writer);
    sl_arena_init(&w->arena, 0);
    return w;
}

void sl_index_writer_free(struct sl_index_writer *w)
{
    if (!w)
        return;
    sl_arena_release(&w->arena);
    sl_free(w->recs);
    sl_free(w);
}

void sl_index_writer_add(struct sl_index_writer *w, const struct sl_labels *labels, uint64_t fp,
                         const struct sl_index_chunk_ref *ref)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->recs = sl_reallocarray(w->recs, w->cap, sizeof *w->recs);
    }
    struct rec *r = &w->recs[w->n++];
    r->fp = fp;
    sl_labels_copy(&w->arena, labels, &r->labels);
    struct sl_buf c = SL_BUF_INIT;
    sl_labels_format(labels, &c);
    r->canon = sl_arena_bytes(&w->arena, sl_buf_bytes(&c));
    sl_buf_release(&c);
    r->ref = *ref;
    r->ref.key = sl_arena_bytes(&w->arena, ref->key);
}

size_t sl_index_writer_chunks(const struct sl_index_writer *w)
{
    return w->n;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->fp != y->fp)
        return x->fp < y->fp ? -1 : 1;
    int c = sl_bytes_cmp(x->canon, y->canon);
    if (c)
        return c;
    if (x->ref.from != y->ref.from)
        return x->ref.from < y->ref.from ? -1 : 1;
    return sl_bytes_cmp(x->ref.key, y->ref.key);
}

static int bytes_cmp(const void *a, const void *b)
{
    return sl_bytes_cmp(*(const struct sl_bytes *)a, *(const struct sl_bytes *)b);
}

struct post {
    uint32_t name, value, series;
};

static int post_cmp(const void *a, const void *b)
{
    const struct post *x = a, *y = b;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

static uint32_t sym_id(const struct sl_bytes *syms, size_t n, struct sl_bytes v)
{
    const struct sl_bytes *p = bsearch(&v, syms, n, sizeof *syms, bytes_cmp);
    return (uint32_t)(p - syms); /* always found: every label was collected */
}

/* Builds the sorted, unique symbol list of the series' labels. */
static struct sl_bytes *collect_symbols(struct sl_index_writer *w, size_t *nsyms)
{
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < w->n; i++)
        cap += 2 * w->recs[i].labels.n;
    struct sl_bytes *syms = sl_mallocarray(cap ? cap : 1, sizeof *syms);
    for (size_t i = 0; i < w->n; i++) {
        if (i && w->recs[i].fp == w->recs[i - 1].fp &&
            sl_bytes_eq(w->recs[i].canon, w->recs[i - 1].canon))
            continue; /* same series: its labels are in already */
        for (size_t k = 0; k < w->recs[i].labels.n; k++) {
            syms[n++] = w->recs[i].labels.items[k].name;
            syms[n++] = w->recs[i].labels.items[k].value;
        }
    }
    if (n)
        qsort(syms, n, sizeof *syms, bytes_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || !sl_bytes_eq(syms[i], syms[u - 1]))
            syms[u++] = syms[i];
    *nsyms = u;
    return syms;
}

static bool same_series(const struct rec *a, const struct rec *b)
{
    return a->fp == b->fp && sl_bytes_eq(a->canon, b->canon);
}

/* Writes the series section; fills the series table and the postings. */
static size_t write_series(struct sl_index_writer *w, const struct sl_bytes *syms, size_t nsyms,
                           struct sl_buf *out, struct sl_buf *tab, struct post **posts,
                           size_t *nposts)
{
    size_t nseries = 0, np = 0, capp = 0;
    for (size_t i = 0; i < w->n;) {
        size_t j = i + 1;
        while (j < w->n && same_series(&w->recs[j], &w->recs[i]))
            j++;
        const struct rec *r = &w->recs[i];
        buf_u64(tab, out->len);
        buf_u64(out, r->fp);
        sl_buf_put_uvarint(out, r->labels.n);
        for (size_t k = 0; k < r->labels.n; k++) {
            uint32_t nid = sym_id(syms, nsyms, r->labels.items[k].name);
            uint32_t vid = sym_id(syms, nsyms, r->labels.items[k].value);
            sl_buf_put_uvarint(out, nid);
            sl_buf_put_uvarint(out, vid);
            if (np == capp) {
                capp = capp ? capp * 2 : 64;
                *posts = sl_reallocarray(*posts, capp, sizeof **posts);
            }
            (*posts)[np++] = (struct post){nid, vid, (uint32_t)nseries};
        }
        size_t nchunks = 0;
        for (size_t k = i; k < j; k++)
            if (k == i || !sl_bytes_eq(w->recs[k].ref.key, w->recs[k - 1].ref.key))
                nchunks++;
        sl_buf_put_uvarint(out, nchunks);
        for (size_t k = i; k < j; k++) {
            if (k != i && sl_bytes_eq(w->recs[k].ref.key, w->recs[k - 1].ref.key))
                continue;
            const struct sl_index_chunk_ref *c = &w->recs[k].ref;
            sl_buf_put_uvarint(out, (uint64_t)c->from);
            sl_buf_put_uvarint(out, (uint64_t)c->through - (uint64_t)c->from);
            sl_buf_put_uvarint(out, c->size);
            sl_buf_put_uvarint(out, c->entries);
            sl_buf_put_uvarint(out, c->key.len);
            sl_buf_append(out, c->key.ptr, c->key.len);
        }
        nseries++;
        i = j;
    }
    *nposts = np;
    return nseries;
}

void sl_index_writer_finish(struct sl_index_writer *w, struct sl_buf *out)
{
    if (w->n)
        qsort(w->recs, w->n, sizeof *w->recs, rec_cmp);
    size_t nsyms, start = out->len;
    struct sl_bytes *syms = collect_symbols(w, &nsyms);
    struct sl_buf f = SL_BUF_INIT, tab = SL_BUF_INIT;
    /* Offsets are relative to the file's start, which is `start` in out. */
    char *h = sl_buf_reserve(out, SL_INDEX_HEADER_SIZE);
    memcpy(h, SL_INDEX_MAGIC, 4);
    h[4] = SL_INDEX_VERSION;
    h[5] = h[6] = h[7] = 0;
    sl_buf_commit(out, SL_INDEX_HEADER_SIZE);
    uint64_t off[6];
    off[0] = out->len - start;
    for (size_t i = 0; i < nsyms; i++) {
        buf_u32(&tab, (uint32_t)(out->len - start));
        sl_buf_put_uvarint(out, syms[i].len);
        sl_buf_append(out, syms[i].ptr, syms[i].len);
    }
    off[1] = out->len - start;
    sl_buf_append(out, tab.data, tab.len);
    sl_buf_clear(&tab);
    off[2] = out->len - start;
    struct post *posts = NULL;
    size_t nposts;
    struct sl_buf series = SL_BUF_INIT;
    size_t nseries = write_series(w, syms, nsyms, &series, &tab, &posts, &nposts);
    /* series offsets were relative to the section: rebase them */
    for (size_t i = 0; i < nseries; i++)
        sl_put_le64(tab.data + 8 * i, sl_get_le64(tab.data + 8 * i) + off[2]);
    sl_buf_append(out, series.data, series.len);
    sl_buf_release(&series);
    off[3] = out->len - start;
    sl_buf_append(out, tab.data, tab.len);
    sl_buf_clear(&tab);
    off[4] = out->len - start;
    if (nposts)
        qsort(posts, nposts, sizeof *posts, post_cmp);
    size_t npairs = 0;
    for (size_t i = 0; i < nposts;) {
        size_t j = i + 1;
        while (j < nposts && posts[j].name == posts[i].name && posts[j].value == posts[i].value)
            j++;
        buf_u32(&tab, posts[i].name);
        buf_u32(&tab, posts[i].value);
        buf_u64(&tab, out->len - start);
        sl_buf_put_uvarint(out, j - i);
        for (size_t k = i; k < j; k++)
            sl_buf_put_uvarint(out,
                               k == i ? posts[k].series : posts[k].series - posts[k - 1].series);
        npairs++;
        i = j;
    }
    off[5] = out->len - start;
    sl_buf_append(out, tab.data, tab.len);
    uint32_t body_crc = sl_crc32c(0, out->data + start, out->len - start);
    for (int i = 0; i < 6; i++)
        buf_u64(&f, off[i]);
    buf_u32(&f, (uint32_t)nsyms);
    buf_u32(&f, (uint32_t)nseries);
    buf_u32(&f, (uint32_t)npairs);
    buf_u32(&f, body_crc);
    buf_u32(&f, sl_crc32c(0, f.data, f.len));
    sl_buf_append(&f, SL_INDEX_MAGIC, 4);
    sl_buf_append(out, f.data, f.len);
    sl_buf_release(&f);
    sl_buf_release(&tab);
    sl_free(posts);
    sl_free(syms);
}

/* ---- reader ---- */

enum { S_SYMS, S_SYMTAB, S_SERIES, S_SERIESTAB, S_POST, S_POSTTAB, S_END };

struct sl_index_reader {
    const char *d;
    size_t len;
    void *map;
    size_t maplen;
    uint64_t off[S_END + 1]; /* off[S_END]: the footer */
    uint32_t nsyms, nseries, nposts;
    /* Time bounds of each series' chunks, computed on first use (label
     * names and values answer from the postings with them). */
    pthread_once_t bounds_once;
    int64_t *bmin, *bmax; /* NULL if a series record is damaged */
};

int sl_index_reader_open_mem(const void *data, size_t len, struct sl_index_reader **out)
{
    const char *d = data;
    *out = NULL;
    if (len < SL_INDEX_HEADER_SIZE + SL_INDEX_FOOTER_SIZE || memcmp(d, SL_INDEX_MAGIC, 4) != 0)
        return SL_ECORRUPT;
    if (d[4] == 0 || (unsigned char)d[4] > SL_INDEX_VERSION)
        return SL_EUNSUPP;
    const char *f = d + len - SL_INDEX_FOOTER_SIZE;
    if (memcmp(f + 68, SL_INDEX_MAGIC, 4) != 0 || !crc_ok(sl_get_le32(f + 64), sl_crc32c(0, f, 64)))
        return SL_ECORRUPT;
    struct sl_index_reader r = {.d = d, .len = len};
    for (int i = 0; i < 6; i++)
        r.off[i] = sl_get_le64(f + 8 * i);
    r.off[S_END] = len - SL_INDEX_FOOTER_SIZE;
    r.nsyms = sl_get_le32(f + 48);
    r.nseries = sl_get_le32(f + 52);
    r.nposts = sl_get_le32(f + 56);
    if (!crc_ok(sl_get_le32(f + 60), sl_crc32c(0, d, len - SL_INDEX_FOOTER_SIZE)))
        return SL_ECORRUPT;
    if (r.off[0] != SL_INDEX_HEADER_SIZE)
        return SL_ECORRUPT;
    for (int i = 0; i < S_END; i++)
        if (r.off[i] > r.off[i + 1])
            return SL_ECORRUPT;
    if (r.off[S_SERIES] - r.off[S_SYMTAB] != (uint64_t)r.nsyms * SL_INDEX_SYMTAB_ENTRY ||
        r.off[S_POST] - r.off[S_SERIESTAB] != (uint64_t)r.nseries * SL_INDEX_SERIES_ENTRY ||
        r.off[S_END] - r.off[S_POSTTAB] != (uint64_t)r.nposts * SL_INDEX_POSTING_ENTRY)
        return SL_ECORRUPT;
    r.bounds_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    *out = sl_memdup(&r, sizeof r);
    return 0;
}

int sl_index_reader_open_file(const char *path, struct sl_index_reader **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SL_ENOENT : SL_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return st.st_size == 0 ? SL_ECORRUPT : SL_EIO;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return SL_EIO;
    int rc = sl_index_reader_open_mem(m, (size_t)st.st_size, out);
    if (rc != 0) {
        munmap(m, (size_t)st.st_size);
        return rc;
    }
    (*out)->map = m;
    (*out)->maplen = (size_t)st.st_size;
    return 0;
}

void sl_index_reader_close(struct sl_index_reader *r)
{
    if (!r)
        return;
    if (r->map)
        munmap(r->map, r->maplen);
    sl_free(r->bmin);
    sl_free(r->bmax);
    sl_free(r);
}

size_t sl_index_reader_series(const struct sl_index_reader *r)
{
    return r->nseries;
}

static int symbol(const struct sl_index_reader *r, uint64_t id, struct sl_bytes *out)
{
    if (id >= r->nsyms)
        return SL_ECORRUPT;
    uint64_t off = sl_get_le32(r->d + r->off[S_SYMTAB] + 4 * id);
    if (off < r->off[S_SYMS] || off >= r->off[S_SYMTAB])
        return SL_ECORRUPT;
    const char *p = r->d + off, *end = r->d + r->off[S_SYMTAB];
    uint64_t n;
    if (sl_get_uvarint(&p, end, &n) || n > (uint64_t)(end - p))
        return SL_ECORRUPT;
    *out = sl_bytes(p, (size_t)n);
    return 0;
}

/* Symbol id of v, or -1 if absent; SL_ECORRUPT through *rc. */
static int64_t find_symbol(const struct sl_index_reader *r, struct sl_bytes v, int *rc)
{
    uint64_t lo = 0, hi = r->nsyms;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        struct sl_bytes s;
        if ((*rc = symbol(r, mid, &s)) != 0)
            return -1;
        int c = sl_bytes_cmp(s, v);
        if (c == 0)
            return (int64_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Ordinals of the postings list of (name, value), ascending; *n = 0 if none. */
static int postings(const struct sl_index_reader *r, uint32_t name, uint32_t value, uint32_t **ords,
                    size_t *n)
{
    *n = 0;
    uint64_t lo = 0, hi = r->nposts;
    const char *tab = r->d + r->off[S_POSTTAB];
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        const char *e = tab + SL_INDEX_POSTING_ENTRY * mid;
        uint32_t en = sl_get_le32(e), ev = sl_get_le32(e + 4);
        if (en == name && ev == value) {
            uint64_t off = sl_get_le64(e + 8);
            if (off < r->off[S_POST] || off >= r->off[S_POSTTAB])
                return SL_ECORRUPT;
            const char *p = r->d + off, *end = r->d + r->off[S_POSTTAB];
            uint64_t cnt, prev = 0;
            if (sl_get_uvarint(&p, end, &cnt) || cnt > r->nseries)
                return SL_ECORRUPT;
            *ords = sl_reallocarray(*ords, cnt ? cnt : 1, sizeof **ords);
            for (uint64_t i = 0; i < cnt; i++) {
                uint64_t d;
                if (sl_get_uvarint(&p, end, &d) || (i && d == 0) || d >= r->nseries ||
                    prev + d >= r->nseries)
                    return SL_ECORRUPT;
                prev = i ? prev + d : d;
                (*ords)[i] = (uint32_t)prev;
            }
            *n = (size_t)cnt;
            return 0;
        }
        if (en < name || (en == name && ev < value))
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

struct scratch {
    struct sl_label *labels;
    size_t caplabels;
    struct sl_index_chunk_ref *refs;
    size_t caprefs;
};

/* Decodes series ord into s; *nrefs of its chunks overlap [from, through). */
static int series_at(const struct sl_index_reader *r, uint32_t ord, int64_t from, int64_t through,
                     struct scratch *s, struct sl_labels *ls, uint64_t *fp, size_t *nrefs)
{
    uint64_t off = sl_get_le64(r->d + r->off[S_SERIESTAB] + 8 * (uint64_t)ord);
    if (off < r->off[S_SERIES] || off > r->off[S_SERIESTAB] || r->off[S_SERIESTAB] - off < 8)
        return SL_ECORRUPT;
    const char *p = r->d + off + 8, *end = r->d + r->off[S_SERIESTAB];
    *fp = sl_get_le64(r->d + off);
    uint64_t nl, nc;
    if (sl_get_uvarint(&p, end, &nl) || nl > (uint64_t)(end - p) / 2)
        return SL_ECORRUPT;
    if (nl > s->caplabels) {
        s->caplabels = (size_t)nl;
        s->labels = sl_reallocarray(s->labels, s->caplabels, sizeof *s->labels);
    }
    for (uint64_t i = 0; i < nl; i++) {
        uint64_t a, b;
        if (sl_get_uvarint(&p, end, &a) || sl_get_uvarint(&p, end, &b) ||
            symbol(r, a, &s->labels[i].name) || symbol(r, b, &s->labels[i].value))
            return SL_ECORRUPT;
    }
    ls->items = s->labels;
    ls->n = (size_t)nl;
    if (sl_get_uvarint(&p, end, &nc) || nc > (uint64_t)(end - p) / 6)
        return SL_ECORRUPT;
    *nrefs = 0;
    for (uint64_t i = 0; i < nc; i++) {
        uint64_t f, d, size, entries, klen;
        if (sl_get_uvarint(&p, end, &f) || sl_get_uvarint(&p, end, &d) ||
            sl_get_uvarint(&p, end, &size) || sl_get_uvarint(&p, end, &entries) ||
            sl_get_uvarint(&p, end, &klen) || klen > (uint64_t)(end - p))
            return SL_ECORRUPT;
        struct sl_index_chunk_ref c = {(int64_t)f, (int64_t)(f + d), size, entries,
                                       sl_bytes(p, (size_t)klen)};
        p += klen;
        if (c.through < c.from || c.through < from || c.from >= through)
            continue;
        if (*nrefs == s->caprefs) {
            s->caprefs = s->caprefs ? s->caprefs * 2 : 16;
            s->refs = sl_reallocarray(s->refs, s->caprefs, sizeof *s->refs);
        }
        s->refs[(*nrefs)++] = c;
    }
    return 0;
}

/* Intersects the postings of every eq pair into *ords; false if empty. */
static int candidates(const struct sl_index_reader *r, const struct sl_index_matcher *eq,
                      size_t neq, uint32_t **ords, size_t *n)
{
    uint32_t *tmp = NULL;
    int rc = 0;
    *n = 0;
    for (size_t i = 0; i < neq; i++) {
        int64_t nid = find_symbol(r, eq[i].name, &rc);
        int64_t vid = nid < 0 || rc ? -1 : find_symbol(r, eq[i].value, &rc);
        size_t m = 0;
        if (rc == 0 && vid >= 0)
            rc = postings(r, (uint32_t)nid, (uint32_t)vid, i == 0 ? ords : &tmp, &m);
        if (rc || m == 0) {
            *n = 0;
            break;
        }
        if (i == 0) {
            *n = m;
            continue;
        }
        size_t a = 0, b = 0, k = 0;
        while (a < *n && b < m) {
            if ((*ords)[a] < tmp[b])
                a++;
            else if ((*ords)[a] > tmp[b])
                b++;
            else
                (*ords)[k++] = (*ords)[a++], b++;
        }
        *n = k;
        if (k == 0)
            break;
    }
    sl_free(tmp);
    return rc;
}

int sl_index_reader_select(struct sl_index_reader *r, const struct sl_index_matcher *eq, size_t neq,
                           sl_index_label_fn match, void *match_ud, int64_t from_ns,
                           int64_t through_ns, sl_index_series_fn fn, void *ud)
{
    uint32_t *ords = NULL;
    size_t n = r->nseries;
    int rc = 0;
    if (neq)
        rc = candidates(r, eq, neq, &ords, &n);
    struct scratch s = {0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t ord = neq ? ords[i] : (uint32_t)i;
        struct sl_labels ls;
        uint64_t fp;
        size_t nrefs;
        rc = series_at(r, ord, from_ns, through_ns, &s, &ls, &fp, &nrefs);
        if (rc || nrefs == 0)
            continue;
        if (match && !match(&ls, match_ud))
            continue;
        rc = fn(&ls, fp, s.refs, nrefs, ud);
    }
    sl_free(s.labels);
    sl_free(s.refs);
    sl_free(ords);
    return rc;
}

/* ---- label names and values ---- */

/* pthread_once has no argument: the reader being set up is handed over in
 * a thread-local. */
static _Thread_local struct sl_index_reader *bounds_reader;

static void compute_bounds(void)
{
    struct sl_index_reader *r = bounds_reader;
    int64_t *lo = sl_mallocarray(r->nseries ? r->nseries : 1, sizeof *lo);
    int64_t *hi = sl_mallocarray(r->nseries ? r->nseries : 1, sizeof *hi);
    struct scratch s = {0};
    for (uint32_t i = 0; i < r->nseries; i++) {
        struct sl_labels ls;
        uint64_t fp;
        size_t n;
        if (series_at(r, i, INT64_MIN, INT64_MAX, &s, &ls, &fp, &n) != 0) {
            sl_free(lo);
            sl_free(hi);
            lo = hi = NULL;
            break;
        }
        lo[i] = INT64_MAX;
        hi[i] = INT64_MIN;
        for (size_t k = 0; k < n; k++) {
            if (s.refs[k].from < lo[i])
                lo[i] = s.refs[k].from;
            if (s.refs[k].through > hi[i])
                hi[i] = s.refs[k].through;
        }
    }
    sl_free(s.labels);
    sl_free(s.refs);
    r->bmin = lo;
    r->bmax = hi;
}

static int bounds(struct sl_index_reader *r)
{
    bounds_reader = r;
    pthread_once(&r->bounds_once, compute_bounds);
    return r->bmin ? 0 : SL_ECORRUPT;
}

/* True if a series of the postings list at posttab entry i has a chunk
 * overlapping [from, through). Series bounds are an over-approximation of
 * "a chunk overlaps" only when a series' chunks leave a gap around the
 * range: then the exact check decodes the series. */
static int pair_in_range(struct sl_index_reader *r, uint64_t i, int64_t from, int64_t through,
                         struct scratch *s, bool *yes)
{
    const char *e = r->d + r->off[S_POSTTAB] + SL_INDEX_POSTING_ENTRY * i;
    uint64_t off = sl_get_le64(e + 8);
    *yes = false;
    if (off < r->off[S_POST] || off >= r->off[S_POSTTAB])
        return SL_ECORRUPT;
    const char *p = r->d + off, *end = r->d + r->off[S_POSTTAB];
    uint64_t cnt, prev = 0;
    if (sl_get_uvarint(&p, end, &cnt) || cnt > r->nseries)
        return SL_ECORRUPT;
    for (uint64_t k = 0; k < cnt; k++) {
        uint64_t d;
        if (sl_get_uvarint(&p, end, &d) || (k && d == 0) || prev + d >= r->nseries)
            return SL_ECORRUPT;
        prev = k ? prev + d : d;
        if (r->bmax[prev] < from || r->bmin[prev] >= through)
            continue;
        if (r->bmin[prev] >= from && r->bmax[prev] < through) {
            *yes = true; /* every chunk is inside the range */
            return 0;
        }
        struct sl_labels ls;
        uint64_t fp;
        size_t n;
        int rc = series_at(r, (uint32_t)prev, from, through, s, &ls, &fp, &n);
        if (rc)
            return rc;
        if (n) {
            *yes = true;
            return 0;
        }
    }
    return 0;
}

static int label_walk(struct sl_index_reader *r, const struct sl_bytes *name, int64_t from,
                      int64_t through, sl_index_bytes_fn fn, void *ud)
{
    int rc = bounds(r);
    if (rc)
        return rc;
    int64_t nid = -1;
    if (name && ((nid = find_symbol(r, *name, &rc)) < 0 || rc))
        return rc;
    const char *tab = r->d + r->off[S_POSTTAB];
    uint64_t i = 0;
    if (name) { /* the first pair of the name */
        uint64_t lo = 0, hi = r->nposts;
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            if (sl_get_le32(tab + SL_INDEX_POSTING_ENTRY * mid) < (uint64_t)nid)
                lo = mid + 1;
            else
                hi = mid;
        }
        i = lo;
    }
    struct scratch s = {0};
    while (i < r->nposts && rc == 0) {
        uint32_t en = sl_get_le32(tab + SL_INDEX_POSTING_ENTRY * i);
        if (name && en != (uint64_t)nid)
            break;
        bool yes;
        if ((rc = pair_in_range(r, i, from, through, &s, &yes)) != 0)
            break;
        if (yes) {
            struct sl_bytes v;
            uint32_t sym = name ? sl_get_le32(tab + SL_INDEX_POSTING_ENTRY * i + 4) : en;
            if ((rc = symbol(r, sym, &v)) == 0)
                rc = fn(v, ud);
            if (!name) /* the name is in: skip its other pairs */
                while (i + 1 < r->nposts &&
                       sl_get_le32(tab + SL_INDEX_POSTING_ENTRY * (i + 1)) == en)
                    i++;
        }
        i++;
    }
    sl_free(s.labels);
    sl_free(s.refs);
    return rc;
}

int sl_index_reader_label_names(struct sl_index_reader *r, int64_t from_ns, int64_t through_ns,
                                sl_index_bytes_fn fn, void *ud)
{
    return label_walk(r, NULL, from_ns, through_ns, fn, ud);
}

int sl_index_reader_label_values(struct sl_index_reader *r, struct sl_bytes name, int64_t from_ns,
                                 int64_t through_ns, sl_index_bytes_fn fn, void *ud)
{
    return label_walk(r, &name, from_ns, through_ns, fn, ud);
}
