/* In-memory streams. Layout per stream: compressed blocks, each sorted by
 * (timestamp, arrival), plus one uncompressed head kept sorted the same way.
 * An out-of-order entry goes into the head at its place, so a block cut later
 * may overlap earlier blocks in time; the reader merges overlapping blocks
 * (ties resolved by block order, which is arrival order), and streams through
 * blocks that do not overlap, which is the common case.
 *
 * Duplicate checks (an entry identical to a stored one is dropped) cost
 * nothing for entries newer than the stream's blocks, the common case. For an
 * out-of-order entry only the blocks whose [min, max] covers its timestamp are
 * candidates, and each block carries a Bloom filter of (timestamp, XXH3 of the
 * line): once a stream has had an out-of-order entry, its blocks get their
 * filter when they are cut, from the head; an older block gets it the first
 * time it is a candidate (one decompression in the block's life). A block is
 * decompressed and compared entry by entry only when its filter says "maybe":
 * a true duplicate (a client retry) or a false positive (about 0.007 % per
 * probe). Blocks are decompressed with one reused zstd context per tenant on
 * the push path and per scan on the read path. */
#include "aggregator/ingester/ingester.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "aggregator/chunk/chunk.h"
#include "aggregator/ingester/postings.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/wire.h"

/* zstd level 1: the fastest level still gives ~4x on log lines. */
#define BLOCK_ZSTD_LEVEL 1
/* Per-entry overhead counted towards the head's raw size (two varints). */
#define ENTRY_OVERHEAD 8
/* Duplicate filter of a block: BLOOM_BITS_PER_ENTRY bits per entry and
 * BLOOM_K probes give about 0.007 % false positives per probe (each costs one
 * block decompression; with overlapping blocks an entry probes several) for
 * 2.5 bytes per entry, ~7 % of the compressed block;
 * only streams that received out-of-order entries have filters. */
#define BLOOM_BITS_PER_ENTRY 20
#define BLOOM_K              14

struct hent {
    int64_t ts;
    uint32_t off;  /* of the line in head.data */
    uint32_t len;  /* of the line */
    uint32_t mlen; /* structured metadata after the line: encoded pairs (chunk.h) */
    uint32_t nmeta;
};

struct head {
    struct sl_buf data;
    struct hent *e;
    size_t n, cap;
    size_t raw; /* encoded size estimate, compared with block_size */
    bool meta;  /* an entry has structured metadata: the block gets SL_CHUNK_BLOCK_META */
    /* Entries older than the head's newest, received during the current push
     * call, sorted; merged into e in one pass at the end of the call (or
     * before a cut) instead of one memmove of e's tail per entry. Their lines
     * are in data. Empty outside sl_ingester_push. */
    struct hent *late;
    size_t nlate, caplate;
};

struct block {
    int64_t min_ts, max_ts;
    uint32_t count;
    uint8_t flags;       /* SL_CHUNK_BLOCK_META: entries carry metadata */
    uint32_t bloom_bits; /* 0: no filter yet */
    uint64_t *bloom;     /* (ts, XXH3(line)) of every entry; built on first need */
    size_t raw_len;
    char *z;
    size_t zlen;
};

/* A closed chunk: the first nblocks blocks after the previous closed chunks.
 * It stays readable here until the flusher has stored it and its index entry
 * (sl_ingester_release); only a prefix of released chunks is freed, so the
 * blocks array stays one run. */
struct cchunk {
    size_t nblocks;
    int64_t min_ts, max_ts;
    uint64_t entries;
    uint64_t id;
    uint64_t wal_seq; /* no entry of the chunk is in a WAL segment before this */
    bool handed;      /* given to the flusher */
    bool released;    /* stored and indexed: free once it is first */
};

struct stream {
    struct stream *next; /* hash chain */
    uint64_t fp;
    uint32_t pslot;          /* in the tenant's postings */
    struct sl_labels labels; /* points into one allocation after the items */
    struct block *blocks;
    size_t nblocks, capblocks;
    int64_t blocks_max_ts; /* max over blocks, for the duplicate check */
    bool ooo;              /* an entry had to be checked against the blocks */
    struct head head;
    int64_t min_ts, max_ts;
    size_t entries;
    /* closed chunks, oldest first; they own blocks [0, closed_blocks) */
    struct cchunk *chunks;
    size_t nchunks, capchunks, closed_blocks;
    /* the open chunk: blocks [closed_blocks, nblocks) plus the head */
    size_t open_zbytes;
    uint64_t open_entries, open_wal_seq;
    int64_t open_min, open_max, open_created_mono, last_push_mono;
};

struct tenant {
    struct tenant *next;
    char *name;
    size_t len;
    pthread_rwlock_t lock;
    struct stream **buckets;
    size_t nbuckets, nstreams;
    struct sl_metric *m_streams;
    struct sl_postings *postings; /* label pairs -> streams, under lock */
};

struct sl_ingester {
    struct sl_ingester_opts o;
    pthread_mutex_t mu; /* guards the tenant list */
    /* zstd contexts and scratch buffers reused by every block cut and by the
     * push path's duplicate checks (a fresh context costs an allocation of
     * ~1 MiB and its page faults per block); taken with trylock: a caller
     * that finds them busy (the flusher's cut while a push cuts) uses its own. */
    pthread_mutex_t zmu;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    struct sl_buf zraw, zout;
    struct tenant *tenants;
    size_t nstreams;        /* atomic */
    uint64_t next_chunk_id; /* atomic */
    uint64_t (*wal_seq_fn)(void *ud);
    void *wal_seq_ud;
    struct sl_metric_family *f_streams;
    struct sl_metric *m_blocks_cut;
    struct sl_metric *m_block_bytes;
    struct sl_metric *m_head_bytes;
    struct sl_metric *m_chunks_cut;
    struct sl_metric *m_dedup_reads;
    struct sl_metric *m_dedup_false;
    struct sl_metric *m_postings_bytes; /* set at each cut */
};

struct sl_stream_reader {
    struct stream *s;
};

/* ---- blocks ---- */

struct view {
    int64_t ts;
    const char *p;
    size_t len;
    const char *m; /* metadata pairs, encoded (chunk.h); mlen 0: none */
    uint32_t mlen, nmeta;
    uint32_t src; /* source order: block index, head last */
    uint32_t idx; /* position within the source */
};

static void zstd_oom(void)
{
    sl_error("ingester: out of memory for a zstd context", NULL);
    abort();
}

/* Decompresses b into raw with dctx (created on first use into *dctx; the
 * caller frees it). The size is known, so one call without streaming. */
static int block_decode(const struct block *b, ZSTD_DCtx **dctx, struct sl_buf *raw)
{
    sl_buf_clear(raw);
    if (!*dctx && !(*dctx = ZSTD_createDCtx()))
        zstd_oom();
    char *dst = sl_buf_reserve(raw, b->raw_len ? b->raw_len : 1);
    size_t r = ZSTD_decompressDCtx(*dctx, dst, b->raw_len, b->z, b->zlen);
    if (ZSTD_isError(r) || r != b->raw_len)
        return SL_ECORRUPT;
    sl_buf_commit(raw, r);
    return 0;
}

static uint64_t entry_key(int64_t ts, const char *p, size_t len)
{
    return XXH3_64bits_withSeed(p, len, (uint64_t)ts);
}

/* Bit i of the filter for key: double hashing over 32-bit halves, reduced
 * to [0, bits) by multiplication. */
static inline uint32_t bloom_bit(uint64_t key, unsigned i, uint32_t bits)
{
    uint32_t h = (uint32_t)key + i * ((uint32_t)(key >> 32) | 1);
    return (uint32_t)(((uint64_t)h * bits) >> 32);
}

static bool bloom_maybe(const struct block *b, uint64_t key)
{
    for (unsigned i = 0; i < BLOOM_K; i++) {
        uint32_t bit = bloom_bit(key, i, b->bloom_bits);
        if (!(b->bloom[bit / 64] & (1ULL << (bit % 64))))
            return false;
    }
    return true;
}

/* Appends the views of a decoded block to *v (grown with sl_reallocarray). */
static int block_views(const struct block *b, const struct sl_buf *raw, uint32_t src,
                       struct view **v, size_t *n, size_t *cap)
{
    const char *p = raw->data, *end = raw->data + raw->len;
    int64_t ts = b->min_ts;
    bool meta = b->flags & SL_CHUNK_BLOCK_META;
    for (uint32_t i = 0; i < b->count; i++) {
        struct sl_chunk_entry e;
        if (sl_chunk_payload_next(&p, end, &ts, meta, &e) != 0)
            return SL_ECORRUPT;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            *v = sl_reallocarray(*v, *cap, sizeof(**v));
        }
        (*v)[(*n)++] = (struct view){
            e.ts, e.line.ptr, e.line.len, e.meta.ptr, (uint32_t)e.meta.len, (uint32_t)e.n_meta,
            src,  i};
    }
    return p == end ? 0 : SL_ECORRUPT;
}

/* An empty filter sized for n entries. */
static void bloom_alloc(struct block *b, size_t n)
{
    uint64_t bits = ((uint64_t)n * BLOOM_BITS_PER_ENTRY + 63) / 64 * 64;
    if (bits == 0)
        bits = 64;
    if (bits > UINT32_MAX / 2)
        bits = UINT32_MAX / 2 / 64 * 64;
    b->bloom = sl_calloc(bits / 64, sizeof(uint64_t));
    b->bloom_bits = (uint32_t)bits;
}

static void bloom_add(struct block *b, uint64_t key)
{
    for (unsigned i = 0; i < BLOOM_K; i++) {
        uint32_t bit = bloom_bit(key, i, b->bloom_bits);
        b->bloom[bit / 64] |= 1ULL << (bit % 64);
    }
}

/* Builds b's filter from its decoded views. */
static void bloom_build(struct block *b, const struct view *v, size_t n)
{
    bloom_alloc(b, n);
    for (size_t k = 0; k < n; k++)
        bloom_add(b, entry_key(v[k].ts, v[k].p, v[k].len));
}

static void head_views(const struct head *h, uint32_t src, struct view **v, size_t *n, size_t *cap)
{
    if (*n + h->n > *cap) {
        *cap = *n + h->n;
        *v = sl_reallocarray(*v, *cap, sizeof(**v));
    }
    for (size_t i = 0; i < h->n; i++) {
        const struct hent *e = &h->e[i];
        const char *line = h->data.data + e->off;
        (*v)[(*n)++] =
            (struct view){e->ts, line, e->len, line + e->len, e->mlen, e->nmeta, src, (uint32_t)i};
    }
}

/* Merges the late entries into e. On equal timestamps e's entries go first:
 * they arrived earlier (a late entry is older than every entry appended to
 * e after it). */
static void head_merge(struct head *h)
{
    if (h->nlate == 0)
        return;
    if (h->n + h->nlate > h->cap) {
        while (h->cap < h->n + h->nlate)
            h->cap = h->cap ? h->cap * 2 : 64;
        h->e = sl_reallocarray(h->e, h->cap, sizeof(*h->e));
    }
    size_t i = h->n, j = h->nlate, k = h->n + h->nlate;
    while (j > 0) { /* from the back: the larger, the late one on ties */
        if (i > 0 && h->e[i - 1].ts > h->late[j - 1].ts)
            h->e[--k] = h->e[--i];
        else
            h->e[--k] = h->late[--j];
    }
    h->n += h->nlate;
    h->nlate = 0;
}

/* Decompresses b into raw with the ingester's shared context when it is
 * free, else with a fresh one. */
static int block_decode_shared(struct sl_ingester *ing, const struct block *b, struct sl_buf *raw)
{
    if (pthread_mutex_trylock(&ing->zmu) != 0) {
        ZSTD_DCtx *d = NULL;
        int rc = block_decode(b, &d, raw);
        ZSTD_freeDCtx(d);
        return rc;
    }
    int rc = block_decode(b, &ing->dctx, raw);
    pthread_mutex_unlock(&ing->zmu);
    return rc;
}

/* Encodes the head as a block payload and compresses it into *z (exact
 * size, owned by the caller). */
static int head_compress(struct sl_ingester *ing, const struct head *h, char **z, size_t *zlen,
                         size_t *raw_len)
{
    bool shared = pthread_mutex_trylock(&ing->zmu) == 0;
    struct sl_buf lraw = SL_BUF_INIT, lout = SL_BUF_INIT;
    struct sl_buf *raw = shared ? &ing->zraw : &lraw, *out = shared ? &ing->zout : &lout;
    ZSTD_CCtx *cctx = shared ? ing->cctx : NULL;
    if (!cctx && !(cctx = ZSTD_createCCtx()))
        zstd_oom();
    if (shared)
        ing->cctx = cctx;
    sl_buf_clear(raw);
    int64_t prev = h->e[0].ts;
    for (size_t i = 0; i < h->n; i++) {
        const struct hent *e = &h->e[i];
        sl_buf_put_uvarint(raw, (uint64_t)e->ts - (uint64_t)prev);
        sl_buf_put_uvarint(raw, e->len);
        sl_buf_append(raw, h->data.data + e->off, e->len);
        if (h->meta) { /* the pair count, then the pairs as stored after the line */
            sl_buf_put_uvarint(raw, e->nmeta);
            sl_buf_append(raw, h->data.data + e->off + e->len, e->mlen);
        }
        prev = e->ts;
    }
    sl_buf_clear(out);
    size_t bound = ZSTD_compressBound(raw->len);
    char *p = sl_buf_reserve(out, bound);
    size_t r = ZSTD_compressCCtx(cctx, p, bound, raw->data, raw->len, BLOCK_ZSTD_LEVEL);
    int rc = ZSTD_isError(r) ? SL_EINVAL : 0;
    if (rc == 0) {
        *z = sl_memdup(p, r);
        *zlen = r;
        *raw_len = raw->len;
    }
    if (shared) {
        pthread_mutex_unlock(&ing->zmu);
    } else {
        ZSTD_freeCCtx(cctx);
        sl_buf_release(&lraw);
        sl_buf_release(&lout);
    }
    return rc;
}

static void stream_cut(struct sl_ingester *ing, struct stream *s)
{
    struct head *h = &s->head;
    head_merge(h);
    if (h->n == 0)
        return;
    char *z;
    size_t zlen, raw_len;
    if (head_compress(ing, h, &z, &zlen, &raw_len) != 0) {
        /* Cannot happen short of a zstd bug; keep the head rather than lose it. */
        sl_error("ingester: block compression failed", "entries=%zu", h->n);
        return;
    }
    if (s->nblocks == s->capblocks) {
        s->capblocks = s->capblocks ? s->capblocks * 2 : 4;
        s->blocks = sl_reallocarray(s->blocks, s->capblocks, sizeof(*s->blocks));
    }
    struct block *b = &s->blocks[s->nblocks++];
    b->min_ts = h->e[0].ts;
    b->max_ts = h->e[h->n - 1].ts;
    b->count = (uint32_t)h->n;
    b->flags = h->meta ? SL_CHUNK_BLOCK_META : 0;
    b->bloom = NULL;
    b->bloom_bits = 0;
    if (s->ooo) { /* its entries will be checked: build the filter now, from the head */
        bloom_alloc(b, h->n);
        for (size_t i = 0; i < h->n; i++)
            bloom_add(b, entry_key(h->e[i].ts, h->data.data + h->e[i].off, h->e[i].len));
    }
    b->raw_len = raw_len;
    b->z = z;
    b->zlen = zlen;
    if (s->nblocks == 1 || b->max_ts > s->blocks_max_ts)
        s->blocks_max_ts = b->max_ts;
    s->open_zbytes += b->zlen;
    if (ing->m_blocks_cut) {
        sl_counter_inc(ing->m_blocks_cut);
        sl_gauge_add(ing->m_block_bytes, (double)b->zlen);
        sl_gauge_add(ing->m_head_bytes, -(double)h->data.len);
    }
    sl_buf_clear(&h->data);
    h->n = 0;
    h->raw = 0;
    h->meta = false;
}

/* ---- streams and tenants ---- */

static bool labels_equal(const struct sl_labels *a, const struct sl_labels *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!sl_bytes_eq(a->items[i].name, b->items[i].name) ||
            !sl_bytes_eq(a->items[i].value, b->items[i].value))
            return false;
    return true;
}

static struct stream *stream_new(const struct sl_labels *ls, uint64_t fp)
{
    size_t bytes = 0;
    for (size_t i = 0; i < ls->n; i++)
        bytes += ls->items[i].name.len + ls->items[i].value.len;
    struct stream *s = SL_NEW(struct stream);
    char *mem = sl_malloc(ls->n * sizeof(struct sl_label) + bytes + 1);
    struct sl_label *items = (struct sl_label *)(void *)mem;
    char *p = mem + ls->n * sizeof(struct sl_label);
    for (size_t i = 0; i < ls->n; i++) {
        memcpy(p, ls->items[i].name.ptr, ls->items[i].name.len);
        items[i].name = sl_bytes(p, ls->items[i].name.len);
        p += ls->items[i].name.len;
        if (ls->items[i].value.len)
            memcpy(p, ls->items[i].value.ptr, ls->items[i].value.len);
        items[i].value = sl_bytes(p, ls->items[i].value.len);
        p += ls->items[i].value.len;
    }
    s->labels.items = items;
    s->labels.n = ls->n;
    s->fp = fp;
    sl_buf_init(&s->head.data);
    return s;
}

static void stream_free(struct stream *s)
{
    sl_free(s->chunks);
    for (size_t i = 0; i < s->nblocks; i++) {
        sl_free(s->blocks[i].z);
        sl_free(s->blocks[i].bloom);
    }
    sl_free(s->blocks);
    sl_buf_release(&s->head.data);
    sl_free(s->head.e);
    sl_free(s->head.late);
    sl_free(s->labels.items);
    sl_free(s);
}

static struct tenant *tenant_get(struct sl_ingester *ing, struct sl_bytes name, bool create)
{
    pthread_mutex_lock(&ing->mu);
    struct tenant *t = ing->tenants;
    while (t && !sl_bytes_eq(sl_bytes(t->name, t->len), name))
        t = t->next;
    if (!t && create) {
        t = SL_NEW(struct tenant);
        t->name = sl_strndup(name.ptr, name.len);
        t->len = name.len;
        pthread_rwlock_init(&t->lock, NULL);
        t->nbuckets = 64;
        t->buckets = sl_calloc(t->nbuckets, sizeof(*t->buckets));
        t->postings = sl_postings_new();
        if (ing->f_streams)
            t->m_streams = sl_metric_with(ing->f_streams, t->name);
        t->next = ing->tenants;
        ing->tenants = t;
    }
    pthread_mutex_unlock(&ing->mu);
    return t;
}

static void tenant_grow(struct tenant *t)
{
    size_t nb = t->nbuckets * 2;
    struct stream **b = sl_calloc(nb, sizeof(*b));
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct stream *s = t->buckets[i], *next;
        for (; s; s = next) {
            next = s->next;
            s->next = b[s->fp & (nb - 1)];
            b[s->fp & (nb - 1)] = s;
        }
    }
    sl_free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

static struct stream *tenant_find(struct tenant *t, const struct sl_labels *ls, uint64_t fp)
{
    for (struct stream *s = t->buckets[fp & (t->nbuckets - 1)]; s; s = s->next)
        if (s->fp == fp && labels_equal(&s->labels, ls))
            return s;
    return NULL;
}

static struct stream *tenant_add(struct sl_ingester *ing, struct tenant *t,
                                 const struct sl_labels *ls, uint64_t fp)
{
    if (t->nstreams >= t->nbuckets)
        tenant_grow(t);
    struct stream *s = stream_new(ls, fp);
    s->pslot = sl_postings_add(t->postings, &s->labels, s);
    size_t i = fp & (t->nbuckets - 1);
    s->next = t->buckets[i];
    t->buckets[i] = s;
    t->nstreams++;
    __atomic_add_fetch(&ing->nstreams, 1, __ATOMIC_RELAXED);
    if (t->m_streams)
        sl_gauge_set(t->m_streams, (double)t->nstreams);
    return s;
}

/* The stream's time bounds, for the postings' range checks. */
static void postings_bounds(struct tenant *t, const struct stream *s)
{
    sl_postings_set_bounds(t->postings, s->pslot, s->entries ? s->min_ts : 1,
                           s->entries ? s->max_ts : 0);
}

/* ---- push ---- */

/* One decoded block kept for the duplicate checks of one push call. */
struct dup_cache {
    struct sl_ingester *ing;
    size_t b; /* block index + 1; 0: none (indexes stay valid during a push) */
    struct sl_buf raw;
    struct view *v;
    size_t n, cap;
};

static bool hents_have(const struct head *h, const struct hent *e, size_t n, int64_t ts,
                       struct sl_bytes line)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first entry with e.ts >= ts */
        size_t mid = (lo + hi) / 2;
        if (e[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n && e[lo].ts == ts; lo++)
        if (sl_bytes_eq(sl_bytes(h->data.data + e[lo].off, e[lo].len), line))
            return true;
    return false;
}

static bool head_has(const struct head *h, int64_t ts, struct sl_bytes line)
{
    return hents_have(h, h->e, h->n, ts, line) || hents_have(h, h->late, h->nlate, ts, line);
}

/* Decodes block bi into the cache (if it is not there) and builds its filter
 * if it has none. Returns false for a corrupt block. */
static bool cache_load(struct dup_cache *c, struct block *b, size_t bi)
{
    if (c->b == bi + 1)
        return true;
    c->b = 0;
    c->n = 0;
    if (block_decode_shared(c->ing, b, &c->raw) != 0 ||
        block_views(b, &c->raw, 0, &c->v, &c->n, &c->cap) != 0) {
        sl_error("ingester: corrupt block in memory", "entries=%u", b->count);
        return false;
    }
    c->b = bi + 1;
    if (c->ing->m_dedup_reads)
        sl_counter_inc(c->ing->m_dedup_reads);
    if (!b->bloom)
        bloom_build(b, c->v, c->n);
    return true;
}

static bool block_has(struct dup_cache *c, struct stream *s, size_t bi, int64_t ts,
                      struct sl_bytes line, uint64_t key)
{
    struct block *b = &s->blocks[bi];
    if (b->bloom && !bloom_maybe(b, key))
        return false;
    bool built = !b->bloom;
    if (!cache_load(c, b, bi))
        return false;
    if (built && !bloom_maybe(b, key))
        return false;
    size_t lo = 0, hi = c->n;
    while (lo < hi) { /* first entry with v.ts >= ts (a block is sorted) */
        size_t mid = (lo + hi) / 2;
        if (c->v[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < c->n && c->v[lo].ts == ts; lo++)
        if (sl_bytes_eq(sl_bytes(c->v[lo].p, c->v[lo].len), line))
            return true;
    if (c->ing->m_dedup_false)
        sl_counter_inc(c->ing->m_dedup_false);
    return false;
}

static bool stream_has(struct stream *s, struct dup_cache *c, int64_t ts, struct sl_bytes line)
{
    if (s->entries == 0 || ts < s->min_ts || ts > s->max_ts)
        return false;
    if (head_has(&s->head, ts, line))
        return true;
    if (s->nblocks == 0 || ts > s->blocks_max_ts)
        return false;
    uint64_t key = entry_key(ts, line.ptr, line.len);
    s->ooo = true;
    for (size_t i = s->nblocks; i-- > 0;)
        if (ts >= s->blocks[i].min_ts && ts <= s->blocks[i].max_ts &&
            block_has(c, s, i, ts, line, key))
            return true;
    return false;
}

static void chunk_close(struct sl_ingester *ing, struct stream *s);

/* Appends the metadata pairs of e to the head's data (after its line) and
 * returns their encoded size. */
static size_t head_put_meta(struct head *h, const struct sl_batch_entry *e)
{
    size_t before = h->data.len;
    for (size_t i = 0; i < e->nmeta; i++) {
        const struct sl_label *l = &e->meta[i];
        sl_buf_put_uvarint(&h->data, l->name.len);
        sl_buf_append(&h->data, l->name.ptr, l->name.len);
        sl_buf_put_uvarint(&h->data, l->value.len);
        sl_buf_append(&h->data, l->value.ptr, l->value.len);
    }
    if (e->nmeta)
        h->meta = true;
    return h->data.len - before;
}

static void head_insert(struct sl_ingester *ing, struct stream *s, const struct sl_batch_entry *be)
{
    struct head *h = &s->head;
    int64_t ts = be->ts_ns;
    struct sl_bytes line = be->line;
    struct hent he = {ts, (uint32_t)h->data.len, (uint32_t)line.len, 0, (uint32_t)be->nmeta};
    sl_buf_append(&h->data, line.ptr, line.len);
    size_t mlen = head_put_meta(h, be);
    he.mlen = (uint32_t)mlen;
    if (h->n > 0 && h->e[h->n - 1].ts > ts) {
        if (h->nlate == h->caplate) {
            h->caplate = h->caplate ? h->caplate * 2 : 64;
            h->late = sl_reallocarray(h->late, h->caplate, sizeof(*h->late));
        }
        size_t lo = 0, hi = h->nlate;
        while (lo < hi) { /* first entry with ts > this one: ties keep arrival order */
            size_t mid = (lo + hi) / 2;
            if (h->late[mid].ts <= ts)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(&h->late[lo + 1], &h->late[lo], (h->nlate - lo) * sizeof(*h->late));
        h->late[lo] = he;
        h->nlate++;
    } else {
        if (h->n == h->cap) {
            h->cap = h->cap ? h->cap * 2 : 64;
            h->e = sl_reallocarray(h->e, h->cap, sizeof(*h->e));
        }
        h->e[h->n++] = he;
    }
    h->raw += line.len + mlen + ENTRY_OVERHEAD;
    if (ing->m_head_bytes)
        sl_gauge_add(ing->m_head_bytes, (double)(line.len + mlen));
    if (s->entries == 0 || ts < s->min_ts)
        s->min_ts = ts;
    if (s->entries == 0 || ts > s->max_ts)
        s->max_ts = ts;
    s->entries++;
    if (s->open_entries == 0 || ts < s->open_min)
        s->open_min = ts;
    if (s->open_entries == 0 || ts > s->open_max)
        s->open_max = ts;
    s->open_entries++;
    /* A line longer than 4 GiB cannot be in a head: limits.max_line_size is
     * far below, and the offsets are 32-bit; cutting early keeps them valid. */
    if (h->raw >= ing->o.block_size || h->data.len > UINT32_MAX / 2) {
        stream_cut(ing, s);
        if (ing->o.chunk_target_size && s->open_zbytes >= ing->o.chunk_target_size)
            chunk_close(ing, s);
    }
}

int sl_ingester_push(struct sl_ingester *ing, struct sl_bytes tenant,
                     const struct sl_labels *labels, const struct sl_batch_entry *entries, size_t n,
                     size_t *accepted_out, struct sl_push_result *res)
{
    if (n == 0)
        return 0;
    struct tenant *t = tenant_get(ing, tenant, true);
    uint64_t fp = sl_labels_fingerprint(labels);
    pthread_rwlock_wrlock(&t->lock);
    struct stream *s = tenant_find(t, labels, fp);
    if (!s) {
        if (ing->o.max_streams_per_tenant && t->nstreams >= ing->o.max_streams_per_tenant) {
            pthread_rwlock_unlock(&t->lock);
            res->stream_limit += n;
            return 0;
        }
        s = tenant_add(ing, t, labels, fp);
    }
    int64_t window = ing->o.max_chunk_age_ns / 2;
    struct dup_cache c = {.ing = ing};
    int64_t now = sl_mono_ns();
    if (s->open_entries == 0) {
        /* Entries accepted now reach the WAL in this segment or a later one. */
        s->open_wal_seq = ing->wal_seq_fn ? ing->wal_seq_fn(ing->wal_seq_ud) : 0;
        s->open_created_mono = now;
    }
    s->last_push_mono = now;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sl_batch_entry *e = &entries[i];
        if (s->entries && e->ts_ns < s->max_ts &&
            (uint64_t)s->max_ts - (uint64_t)e->ts_ns > (uint64_t)window) {
            res->out_of_order++;
            continue;
        }
        if (stream_has(s, &c, e->ts_ns, e->line)) {
            res->duplicates++;
            continue;
        }
        head_insert(ing, s, e);
        res->accepted++;
        if (accepted_out)
            accepted_out[k++] = i;
    }
    head_merge(&s->head);
    postings_bounds(t, s);
    pthread_rwlock_unlock(&t->lock);
    sl_buf_release(&c.raw);
    sl_free(c.v);
    return 0;
}

/* ---- read path ---- */

struct source {
    int64_t min_ts, max_ts;
    uint32_t order; /* block index; the head is nblocks */
};

/* Forward scans open sources by ascending min_ts, backward ones by
 * descending max_ts. */
static int source_cmp_fwd(const void *a, const void *b)
{
    const struct source *x = a, *y = b;
    if (x->min_ts != y->min_ts)
        return x->min_ts < y->min_ts ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int source_cmp_bwd(const void *a, const void *b)
{
    const struct source *x = a, *y = b;
    if (x->max_ts != y->max_ts)
        return x->max_ts > y->max_ts ? -1 : 1;
    return x->order > y->order ? -1 : x->order < y->order;
}

/* One open source: its entries in (ts, arrival) order, consumed from the
 * front (forward) or the back (backward). */
struct cursor {
    struct sl_buf raw;
    struct view *v;
    size_t n, cap, used;
    uint32_t order;
};

/* A k-way merge over the sources in range: a source is decompressed only
 * when the merge reaches its first timestamp and dropped once consumed, so
 * only the blocks that overlap the current position are in memory at once
 * (many, when several senders per stream made every block overlap the next,
 * but never the whole stream). Ties: lower source order (arrival) first. */
struct scan {
    struct stream *s;
    ZSTD_DCtx *dctx;
    int64_t from, through;
    bool backward;
    sl_chunk_entry_fn fn;
    void *ud;
    struct cursor *cur; /* one per source, buffers reused through free */
    size_t *free, nfree;
    size_t *heap, nheap;
};

static const struct view *cursor_top(const struct scan *sc, const struct cursor *c)
{
    return &c->v[sc->backward ? c->n - 1 - c->used : c->used];
}

/* Whether cursor a's next entry goes before cursor b's. */
static bool cursor_before(const struct scan *sc, size_t a, size_t b)
{
    const struct cursor *x = &sc->cur[a], *y = &sc->cur[b];
    int64_t tx = cursor_top(sc, x)->ts, ty = cursor_top(sc, y)->ts;
    if (tx != ty)
        return sc->backward ? tx > ty : tx < ty;
    return sc->backward ? x->order > y->order : x->order < y->order;
}

static void heap_down(struct scan *sc, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < sc->nheap && cursor_before(sc, sc->heap[l], sc->heap[m]))
            m = l;
        if (r < sc->nheap && cursor_before(sc, sc->heap[r], sc->heap[m]))
            m = r;
        if (m == i)
            return;
        size_t t = sc->heap[i];
        sc->heap[i] = sc->heap[m];
        sc->heap[m] = t;
        i = m;
    }
}

static void heap_push(struct scan *sc, size_t c)
{
    size_t i = sc->nheap++;
    sc->heap[i] = c;
    while (i > 0 && cursor_before(sc, sc->heap[i], sc->heap[(i - 1) / 2])) {
        size_t p = (i - 1) / 2, t = sc->heap[i];
        sc->heap[i] = sc->heap[p];
        sc->heap[p] = t;
        i = p;
    }
}

/* Decodes source src into a free cursor and adds it to the heap, its entries
 * outside the time range skipped. */
static int scan_open(struct scan *sc, const struct source *src)
{
    struct stream *s = sc->s;
    size_t ci = sc->free[--sc->nfree];
    struct cursor *c = &sc->cur[ci];
    c->n = 0;
    c->used = 0;
    c->order = src->order;
    if (src->order == s->nblocks) {
        head_views(&s->head, src->order, &c->v, &c->n, &c->cap);
    } else {
        const struct block *bl = &s->blocks[src->order];
        if (block_decode(bl, &sc->dctx, &c->raw) != 0 ||
            block_views(bl, &c->raw, src->order, &c->v, &c->n, &c->cap) != 0)
            return SL_ECORRUPT;
    }
    /* Entries are sorted: skip what lies before the range's near end. */
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        bool skip = sc->backward ? c->v[c->n - 1 - mid].ts >= sc->through : c->v[mid].ts < sc->from;
        if (skip)
            lo = mid + 1;
        else
            hi = mid;
    }
    c->used = lo;
    if (c->used < c->n)
        heap_push(sc, ci);
    else
        sc->free[sc->nfree++] = ci;
    return 0;
}

static int scan_merge(struct scan *sc, const struct source *src, size_t ns)
{
    size_t next = 0;
    for (;;) {
        /* Open every source that may hold an entry at or before the top. */
        while (next < ns) {
            if (sc->nheap) {
                int64_t top = cursor_top(sc, &sc->cur[sc->heap[0]])->ts;
                if (sc->backward ? src[next].max_ts < top : src[next].min_ts > top)
                    break;
            }
            int rc = scan_open(sc, &src[next++]);
            if (rc)
                return rc;
        }
        if (sc->nheap == 0)
            return 0;
        size_t ci = sc->heap[0];
        struct cursor *c = &sc->cur[ci];
        const struct view *e = cursor_top(sc, c);
        if (sc->backward ? e->ts < sc->from : e->ts >= sc->through)
            return 0; /* everything left is outside the range */
        struct sl_chunk_entry ce = {e->ts, sl_bytes(e->p, e->len), sl_bytes(e->m, e->mlen),
                                    e->nmeta};
        int rc = sc->fn(&ce, sc->ud);
        if (rc)
            return rc;
        if (++c->used == c->n) {
            sc->heap[0] = sc->heap[--sc->nheap];
            sc->free[sc->nfree++] = ci;
        }
        if (sc->nheap)
            heap_down(sc, 0);
    }
}

int sl_stream_reader_scan_entries(struct sl_stream_reader *r, int64_t from_ns, int64_t through_ns,
                                  bool backward, sl_chunk_entry_fn entry_fn, void *ud)
{
    struct stream *s = r->s;
    if (from_ns >= through_ns || s->entries == 0)
        return 0;
    struct source *src = sl_mallocarray(s->nblocks + 1, sizeof(*src));
    size_t ns = 0;
    for (size_t i = 0; i < s->nblocks; i++) {
        const struct block *b = &s->blocks[i];
        if (b->max_ts >= from_ns && b->min_ts < through_ns)
            src[ns++] = (struct source){b->min_ts, b->max_ts, (uint32_t)i};
    }
    const struct head *h = &s->head;
    if (h->n && h->e[h->n - 1].ts >= from_ns && h->e[0].ts < through_ns)
        src[ns++] = (struct source){h->e[0].ts, h->e[h->n - 1].ts, (uint32_t)s->nblocks};
    qsort(src, ns, sizeof(*src), backward ? source_cmp_bwd : source_cmp_fwd);
    struct scan sc = {.s = s,
                      .from = from_ns,
                      .through = through_ns,
                      .backward = backward,
                      .fn = entry_fn,
                      .ud = ud};
    int rc = 0;
    if (ns) {
        sc.cur = sl_calloc(ns, sizeof(*sc.cur));
        sc.free = sl_mallocarray(ns, sizeof(*sc.free));
        sc.heap = sl_mallocarray(ns, sizeof(*sc.heap));
        for (size_t i = 0; i < ns; i++)
            sc.free[sc.nfree++] = ns - 1 - i;
        rc = scan_merge(&sc, src, ns);
        for (size_t i = 0; i < ns; i++) {
            sl_buf_release(&sc.cur[i].raw);
            sl_free(sc.cur[i].v);
        }
    }
    sl_free(sc.cur);
    sl_free(sc.free);
    sl_free(sc.heap);
    ZSTD_freeDCtx(sc.dctx);
    sl_free(src);
    return rc;
}

/* sl_stream_reader_scan's callback, without metadata. */
struct plain_scan {
    sl_entry_fn fn;
    void *ud;
};

static int on_plain_entry(const struct sl_chunk_entry *e, void *ud)
{
    struct plain_scan *ps = ud;
    return ps->fn(e->ts, e->line, ps->ud);
}

int sl_stream_reader_scan(struct sl_stream_reader *r, int64_t from_ns, int64_t through_ns,
                          bool backward, sl_entry_fn entry_fn, void *ud)
{
    struct plain_scan ps = {entry_fn, ud};
    return sl_stream_reader_scan_entries(r, from_ns, through_ns, backward, on_plain_entry, &ps);
}

int sl_ingester_visit(struct sl_ingester *ing, struct sl_bytes tenant, sl_ingester_visit_fn fn,
                      void *ud)
{
    struct tenant *t = tenant_get(ing, tenant, false);
    if (!t)
        return 0;
    int rc = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->nbuckets && rc == 0; i++) {
        for (struct stream *s = t->buckets[i]; s && rc == 0; s = s->next) {
            struct sl_stream_info info = {&s->labels, s->fp, s->min_ts, s->max_ts, s->entries};
            struct sl_stream_reader r = {s};
            rc = fn(&info, &r, ud);
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

/* ---- reads through the postings (aggregator/ingester/postings.h) ---- */

struct pvisit {
    sl_ingester_visit_fn fn;
    void *ud;
};

static int on_posting(void *owner, void *ud)
{
    struct pvisit *pv = ud;
    struct stream *s = owner;
    struct sl_stream_info info = {&s->labels, s->fp, s->min_ts, s->max_ts, s->entries};
    struct sl_stream_reader r = {s};
    return pv->fn(&info, &r, pv->ud);
}

int sl_ingester_visit_matching(struct sl_ingester *ing, struct sl_bytes tenant,
                               const struct sl_label *eq, size_t neq,
                               const struct sl_postings_pred *pred, size_t npred, int64_t from,
                               int64_t through, sl_ingester_visit_fn fn, void *ud)
{
    struct tenant *t = tenant_get(ing, tenant, false);
    if (!t)
        return 0;
    struct pvisit pv = {fn, ud};
    pthread_rwlock_rdlock(&t->lock);
    int rc = sl_postings_select(t->postings, eq, neq, pred, npred, from, through, on_posting, &pv);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int sl_ingester_labels(struct sl_ingester *ing, struct sl_bytes tenant, const struct sl_bytes *name,
                       int64_t from, int64_t through, int (*fn)(struct sl_bytes v, void *ud),
                       void *ud)
{
    struct tenant *t = tenant_get(ing, tenant, false);
    if (!t)
        return 0;
    pthread_rwlock_rdlock(&t->lock);
    int rc = sl_postings_labels(t->postings, name, from, through, fn, ud);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

size_t sl_ingester_postings_bytes(struct sl_ingester *ing)
{
    size_t b = 0;
    pthread_mutex_lock(&ing->mu);
    struct tenant *tenants = ing->tenants; /* tenants are never removed */
    pthread_mutex_unlock(&ing->mu);
    for (struct tenant *t = tenants; t; t = t->next) {
        pthread_rwlock_rdlock(&t->lock);
        b += sl_postings_bytes(t->postings);
        pthread_rwlock_unlock(&t->lock);
    }
    return b;
}

size_t sl_ingester_streams(struct sl_ingester *ing)
{
    return __atomic_load_n(&ing->nstreams, __ATOMIC_RELAXED);
}

/* ---- chunks: cutting, handing to the flusher, releasing ---- */

static void chunk_close(struct sl_ingester *ing, struct stream *s)
{
    stream_cut(ing, s);
    if (s->closed_blocks == s->nblocks || s->open_entries == 0)
        return;
    if (s->nchunks == s->capchunks) {
        s->capchunks = s->capchunks ? s->capchunks * 2 : 4;
        s->chunks = sl_reallocarray(s->chunks, s->capchunks, sizeof(*s->chunks));
    }
    s->chunks[s->nchunks++] = (struct cchunk){
        .nblocks = s->nblocks - s->closed_blocks,
        .min_ts = s->open_min,
        .max_ts = s->open_max,
        .entries = s->open_entries,
        .id = __atomic_add_fetch(&ing->next_chunk_id, 1, __ATOMIC_RELAXED),
        .wal_seq = s->open_wal_seq,
    };
    s->closed_blocks = s->nblocks;
    s->open_entries = 0;
    s->open_zbytes = 0;
    s->open_created_mono = sl_mono_ns();
    if (ing->m_chunks_cut)
        sl_counter_inc(ing->m_chunks_cut);
}

static bool should_close(const struct sl_ingester *ing, const struct stream *s, int64_t now,
                         bool all)
{
    if (s->open_entries == 0)
        return false;
    const struct sl_ingester_opts *o = &ing->o;
    return all || (o->chunk_target_size && s->open_zbytes >= o->chunk_target_size) ||
           now - s->open_created_mono >= o->max_chunk_age_ns ||
           s->open_max - s->open_min >= o->max_chunk_age_ns ||
           (o->chunk_idle_period_ns > 0 && now - s->last_push_mono >= o->chunk_idle_period_ns);
}

static void hand_chunk(struct tenant *t, struct stream *s, size_t ci, size_t first_block,
                       sl_ingester_chunk_fn fn, void *ud)
{
    struct cchunk *c = &s->chunks[ci];
    struct sl_ingester_block *bl = sl_mallocarray(c->nblocks, sizeof(*bl));
    for (size_t i = 0; i < c->nblocks; i++) {
        const struct block *b = &s->blocks[first_block + i];
        bl[i] = (struct sl_ingester_block){b->min_ts, b->max_ts, b->count, b->raw_len,
                                           b->z,      b->zlen,   b->flags};
    }
    struct sl_ingester_chunk ch = {
        .tenant = sl_bytes(t->name, t->len),
        .labels = &s->labels,
        .fp = s->fp,
        .id = c->id,
        .blocks = bl,
        .nblocks = c->nblocks,
        .from = c->min_ts,
        .through = c->max_ts,
        .entries = c->entries,
    };
    c->handed = true;
    fn(&ch, ud);
    sl_free(bl);
}

size_t sl_ingester_cut(struct sl_ingester *ing, bool all, sl_ingester_chunk_fn fn, void *ud)
{
    size_t handed = 0;
    int64_t now = sl_mono_ns();
    pthread_mutex_lock(&ing->mu);
    struct tenant *tenants = ing->tenants; /* tenants are never removed */
    pthread_mutex_unlock(&ing->mu);
    for (struct tenant *t = tenants; t; t = t->next) {
        pthread_rwlock_wrlock(&t->lock);
        for (size_t i = 0; i < t->nbuckets; i++) {
            for (struct stream *s = t->buckets[i]; s; s = s->next) {
                if (should_close(ing, s, now, all))
                    chunk_close(ing, s);
                size_t first = 0;
                for (size_t k = 0; k < s->nchunks; k++) {
                    if (!s->chunks[k].handed) {
                        hand_chunk(t, s, k, first, fn, ud);
                        handed++;
                    }
                    first += s->chunks[k].nblocks;
                }
            }
        }
        pthread_rwlock_unlock(&t->lock);
    }
    if (ing->m_postings_bytes)
        sl_gauge_set(ing->m_postings_bytes, (double)sl_ingester_postings_bytes(ing));
    return handed;
}

/* Recomputes the stream's bounds after chunks left memory. */
static void stream_bounds(struct stream *s)
{
    bool any = false;
    s->blocks_max_ts = 0;
    for (size_t i = 0; i < s->nblocks; i++) {
        const struct block *b = &s->blocks[i];
        if (!any || b->min_ts < s->min_ts)
            s->min_ts = b->min_ts;
        if (!any || b->max_ts > s->max_ts)
            s->max_ts = b->max_ts;
        if (i == 0 || b->max_ts > s->blocks_max_ts)
            s->blocks_max_ts = b->max_ts;
        any = true;
    }
    const struct head *h = &s->head;
    if (h->n) {
        if (!any || h->e[0].ts < s->min_ts)
            s->min_ts = h->e[0].ts;
        if (!any || h->e[h->n - 1].ts > s->max_ts)
            s->max_ts = h->e[h->n - 1].ts;
    }
}

static void stream_unlink(struct sl_ingester *ing, struct tenant *t, struct stream *s)
{
    struct stream **pp = &t->buckets[s->fp & (t->nbuckets - 1)];
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    t->nstreams--;
    __atomic_sub_fetch(&ing->nstreams, 1, __ATOMIC_RELAXED);
    if (t->m_streams)
        sl_gauge_set(t->m_streams, (double)t->nstreams);
    sl_postings_remove(t->postings, s->pslot);
    stream_free(s);
}

/* Frees the prefix of released chunks. */
static void stream_trim(struct sl_ingester *ing, struct tenant *t, struct stream *s)
{
    size_t nc = 0, nb = 0;
    uint64_t entries = 0;
    double zbytes = 0;
    while (nc < s->nchunks && s->chunks[nc].released) {
        for (size_t i = 0; i < s->chunks[nc].nblocks; i++) {
            zbytes += (double)s->blocks[nb + i].zlen;
            sl_free(s->blocks[nb + i].z);
            sl_free(s->blocks[nb + i].bloom);
        }
        nb += s->chunks[nc].nblocks;
        entries += s->chunks[nc].entries;
        nc++;
    }
    if (nc == 0)
        return;
    memmove(s->blocks, s->blocks + nb, (s->nblocks - nb) * sizeof(*s->blocks));
    s->nblocks -= nb;
    s->closed_blocks -= nb;
    memmove(s->chunks, s->chunks + nc, (s->nchunks - nc) * sizeof(*s->chunks));
    s->nchunks -= nc;
    s->entries -= entries;
    if (ing->m_block_bytes)
        sl_gauge_add(ing->m_block_bytes, -zbytes);
    if (s->entries == 0 && s->nchunks == 0 && s->head.n == 0 && s->nblocks == 0)
        stream_unlink(ing, t, s);
    else {
        stream_bounds(s);
        postings_bounds(t, s);
    }
}

void sl_ingester_release(struct sl_ingester *ing, struct sl_bytes tenant,
                         const struct sl_labels *labels, uint64_t fp, uint64_t id)
{
    struct tenant *t = tenant_get(ing, tenant, false);
    if (!t)
        return;
    pthread_rwlock_wrlock(&t->lock);
    struct stream *s = tenant_find(t, labels, fp);
    for (size_t k = 0; s && k < s->nchunks; k++) {
        if (s->chunks[k].id == id) {
            s->chunks[k].released = true;
            stream_trim(ing, t, s);
            break;
        }
    }
    pthread_rwlock_unlock(&t->lock);
}

bool sl_ingester_min_wal_seq(struct sl_ingester *ing, uint64_t *seq)
{
    bool any = false;
    pthread_mutex_lock(&ing->mu);
    struct tenant *tenants = ing->tenants;
    pthread_mutex_unlock(&ing->mu);
    for (struct tenant *t = tenants; t; t = t->next) {
        pthread_rwlock_rdlock(&t->lock);
        for (size_t i = 0; i < t->nbuckets; i++) {
            for (struct stream *s = t->buckets[i]; s; s = s->next) {
                for (size_t k = 0; k < s->nchunks; k++) {
                    if (!any || s->chunks[k].wal_seq < *seq)
                        *seq = s->chunks[k].wal_seq;
                    any = true;
                }
                if (s->open_entries && (!any || s->open_wal_seq < *seq)) {
                    *seq = s->open_wal_seq;
                    any = true;
                }
            }
        }
        pthread_rwlock_unlock(&t->lock);
    }
    return any;
}

void sl_ingester_set_wal_seq_fn(struct sl_ingester *ing, uint64_t (*fn)(void *ud), void *ud)
{
    ing->wal_seq_fn = fn;
    ing->wal_seq_ud = ud;
}

/* ---- lifecycle ---- */

struct sl_ingester *sl_ingester_new(const struct sl_ingester_opts *o, struct sl_metrics *m)
{
    struct sl_ingester *ing = SL_NEW(struct sl_ingester);
    ing->o = *o;
    if (ing->o.block_size == 0)
        ing->o.block_size = 256 << 10;
    if (ing->o.max_chunk_age_ns <= 0)
        ing->o.max_chunk_age_ns = 2 * 3600 * 1000000000LL;
    pthread_mutex_init(&ing->mu, NULL);
    pthread_mutex_init(&ing->zmu, NULL);
    sl_buf_init(&ing->zraw);
    sl_buf_init(&ing->zout);
    if (m) {
        ing->f_streams = sl_metrics_gauge(m, "sluice_aggregator_streams_active",
                                          "Streams in memory, per tenant.", "tenant");
        ing->m_blocks_cut =
            sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_ingester_blocks_cut_total",
                                              "Head blocks compressed into blocks.", NULL));
        ing->m_block_bytes =
            sl_metric_with(sl_metrics_gauge(m, "sluice_aggregator_ingester_block_bytes",
                                            "Compressed bytes of the blocks in memory.", NULL));
        ing->m_head_bytes =
            sl_metric_with(sl_metrics_gauge(m, "sluice_aggregator_ingester_head_bytes",
                                            "Uncompressed line bytes in head blocks.", NULL));
        ing->m_chunks_cut = sl_metric_with(
            sl_metrics_counter(m, "sluice_aggregator_ingester_chunks_cut_total",
                               "Chunks closed (target size, age, idle or flush).", NULL));
        ing->m_dedup_reads = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_ingester_dedup_block_reads_total",
            "Blocks decompressed on the push path to check out-of-order entries for "
            "duplicates.",
            NULL));
        ing->m_dedup_false = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_ingester_dedup_filter_false_positives_total",
            "Out-of-order entries a block's duplicate filter could not rule out that were "
            "not duplicates.",
            NULL));
        ing->m_postings_bytes = sl_metric_with(sl_metrics_gauge(
            m, "sluice_aggregator_ingester_postings_bytes",
            "Memory of the label postings of the streams in memory (label bytes excluded), "
            "as of the last chunk cut check.",
            NULL));
    }
    return ing;
}

void sl_ingester_free(struct sl_ingester *ing)
{
    if (!ing)
        return;
    struct tenant *t = ing->tenants, *tn;
    for (; t; t = tn) {
        tn = t->next;
        /* first: the postings read the streams' label sets */
        sl_postings_free(t->postings);
        for (size_t i = 0; i < t->nbuckets; i++) {
            struct stream *s = t->buckets[i], *sn;
            for (; s; s = sn) {
                sn = s->next;
                stream_free(s);
            }
        }
        sl_free(t->buckets);
        pthread_rwlock_destroy(&t->lock);
        sl_free(t->name);
        sl_free(t);
    }
    pthread_mutex_destroy(&ing->mu);
    ZSTD_freeCCtx(ing->cctx);
    ZSTD_freeDCtx(ing->dctx);
    sl_buf_release(&ing->zraw);
    sl_buf_release(&ing->zout);
    pthread_mutex_destroy(&ing->zmu);
    sl_free(ing);
}
