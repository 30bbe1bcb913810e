/* Store + memory selection. A visit first collects the matching series of
 * the index files of the range (chunk references only), then walks the
 * ingester's streams, pairing each with its stored series, and finally
 * reports the series found only in the store. A scan of a series that has
 * stored chunks merges the decoded chunks (and memory) in time order, one
 * group of overlapping chunks at a time, dropping repeats; with prefetch the
 * chunks are decoded ahead on the worker pool (see "prefetch" below). */
#include "aggregator/querier/select.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/chunk/chunk.h"
#include "aggregator/querier/chunk_cache.h"
#include "aggregator/querier/qpool.h"
#include "aggregator/store/store.h"
#include "common/arena.h"
#include "common/err.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"

struct cached {
    char *key;
    char *data;
    size_t len;
    struct sl_index_reader *r;
    size_t refs;   /* queries using it: never dropped meanwhile */
    uint64_t used; /* LRU tick */
};

struct sl_select {
    struct sl_store *store;
    struct sl_qpool *pool;
    struct sl_chunk_cache *cache;
    size_t window; /* decoded chunks a query may hold ahead of its scan */
    pthread_mutex_t mu;
    struct cached *idx;
    size_t nidx, capidx;
    uint64_t idx_bytes, idx_max, tick;
    /* Spare decompression buffers: a fresh 256 KiB buffer per block costs
     * an mmap, page faults and an munmap. */
    pthread_mutex_t bufmu;
    struct sl_buf *spare;
    size_t nspare;
    uint64_t spare_bytes;
    struct sl_log_limit lim;
    struct sl_metric *m_chunks, *m_chunk_bytes, *m_missing, *m_index_files, *m_index_evictions,
        *m_index_bytes;
};

static void register_metrics(struct sl_select *sel, struct sl_metrics *m)
{
    sel->m_chunks = sl_metric_with(sl_metrics_counter(
        m, "sluice_aggregator_query_chunks_fetched_total", "Chunks read from the store.", NULL));
    sel->m_chunk_bytes =
        sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_query_chunk_bytes_fetched_total",
                                          "Bytes of chunks read from the store.", NULL));
    sel->m_missing = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_query_chunks_missing_total",
                           "Indexed chunks not found in the store (skipped).", NULL));
    sel->m_index_files = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_query_index_files_loaded_total",
                           "Index files downloaded into the querier's cache.", NULL));
    sel->m_index_evictions = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_query_index_cache_evictions_total",
                           "Index files dropped from the querier's cache (over its size).", NULL));
    sel->m_index_bytes =
        sl_metric_with(sl_metrics_gauge(m, "sluice_aggregator_query_index_cache_bytes",
                                        "Bytes of index files in the querier's cache.", NULL));
}

/* Spare buffers kept, and the largest one kept (a chunk object). */
#define SPARE_MAX       64
#define SPARE_MAX_SIZE  (16u << 20)
#define SPARE_MAX_BYTES (96u << 20) /* all spare buffers together */

static void buf_get(struct sl_select *sel, struct sl_buf *b)
{
    pthread_mutex_lock(&sel->bufmu);
    if (sel->nspare) {
        *b = sel->spare[--sel->nspare];
        sel->spare_bytes -= b->cap;
    } else
        sl_buf_init(b);
    pthread_mutex_unlock(&sel->bufmu);
}

static void buf_put(struct sl_select *sel, struct sl_buf *b)
{
    sl_buf_clear(b);
    pthread_mutex_lock(&sel->bufmu);
    if (sel->nspare < SPARE_MAX && b->cap <= SPARE_MAX_SIZE &&
        sel->spare_bytes + b->cap <= SPARE_MAX_BYTES) {
        sel->spare_bytes += b->cap;
        sel->spare[sel->nspare++] = *b;
        sl_buf_init(b);
    }
    pthread_mutex_unlock(&sel->bufmu);
    sl_buf_release(b);
}

struct sl_select *sl_select_new_opts(const struct sl_select_opts *o)
{
    struct sl_select *sel = SL_NEW(struct sl_select);
    sel->store = o->store;
    pthread_mutex_init(&sel->mu, NULL);
    pthread_mutex_init(&sel->bufmu, NULL);
    if (o->metrics)
        register_metrics(sel, o->metrics);
    size_t conc = o->max_concurrency ? o->max_concurrency : sl_qpool_ncpu();
    if (conc > 1)
        sel->pool = sl_qpool_new(conc - 1);
    sel->window = 2 * conc;
    sel->spare = sl_calloc(SPARE_MAX, sizeof *sel->spare);
    sel->idx_max =
        o->index_cache_max_bytes ? o->index_cache_max_bytes : SL_SELECT_INDEX_CACHE_DEFAULT;
    if (o->store && o->chunk_cache_dir && o->chunk_cache_dir[0] && o->chunk_cache_max_bytes) {
        struct sl_buf err = SL_BUF_INIT;
        int rc = sl_chunk_cache_open(o->chunk_cache_dir, o->chunk_cache_max_bytes, o->metrics,
                                     &sel->cache, &err);
        if (rc)
            sl_error("chunk cache disabled: cannot open its directory", "dir=%s error=\"%s\"",
                     o->chunk_cache_dir, err.data ? err.data : sl_strerror(rc));
        sl_buf_release(&err);
    }
    return sel;
}

struct sl_select *sl_select_new(struct sl_store *store, struct sl_metrics *m)
{
    struct sl_select_opts o = {.store = store, .metrics = m};
    return sl_select_new_opts(&o);
}

static void cached_free(struct cached *c)
{
    sl_index_reader_close(c->r);
    sl_free(c->data);
    sl_free(c->key);
}

void sl_select_free(struct sl_select *sel)
{
    if (!sel)
        return;
    sl_qpool_free(sel->pool);
    sl_chunk_cache_close(sel->cache);
    for (size_t i = 0; i < sel->nidx; i++)
        cached_free(&sel->idx[i]);
    sl_free(sel->idx);
    for (size_t i = 0; i < sel->nspare; i++)
        sl_buf_release(&sel->spare[i]);
    sl_free(sel->spare);
    pthread_mutex_destroy(&sel->bufmu);
    pthread_mutex_destroy(&sel->mu);
    sl_free(sel);
}

/* Drops unused files, least recently used first, while over the limit.
 * Called with the lock held. */
static void index_evict_locked(struct sl_select *sel)
{
    while (sel->idx_bytes > sel->idx_max) {
        size_t victim = sel->nidx;
        for (size_t i = 0; i < sel->nidx; i++)
            if (sel->idx[i].refs == 0 &&
                (victim == sel->nidx || sel->idx[i].used < sel->idx[victim].used))
                victim = i;
        if (victim == sel->nidx)
            return; /* all in use: over the limit until they are released */
        sel->idx_bytes -= sel->idx[victim].len;
        cached_free(&sel->idx[victim]);
        sel->idx[victim] = sel->idx[--sel->nidx];
        if (sel->m_index_evictions)
            sl_counter_inc(sel->m_index_evictions);
    }
}

static void index_gauge_locked(struct sl_select *sel)
{
    if (sel->m_index_bytes)
        sl_gauge_set(sel->m_index_bytes, (double)sel->idx_bytes);
}

static struct cached *index_find_locked(struct sl_select *sel, const char *key)
{
    for (size_t i = 0; i < sel->nidx; i++)
        if (strcmp(sel->idx[i].key, key) == 0)
            return &sel->idx[i];
    return NULL;
}

/* The reader of an index file, downloaded on first use, held until
 * index_put. NULL: skipped (damaged files are logged and left out rather
 * than failing every query). */
static int index_get(struct sl_select *sel, const char *key, struct sl_index_reader **out)
{
    *out = NULL;
    pthread_mutex_lock(&sel->mu);
    struct cached *c = index_find_locked(sel, key);
    if (c) {
        c->refs++;
        c->used = ++sel->tick;
        *out = c->r;
        pthread_mutex_unlock(&sel->mu);
        return 0;
    }
    pthread_mutex_unlock(&sel->mu);
    struct sl_buf b = SL_BUF_INIT, err = SL_BUF_INIT;
    int rc = sl_store_get(sel->store, key, &b, &err);
    struct sl_index_reader *r = NULL;
    if (rc == 0 && (rc = sl_index_reader_open_mem(b.data, b.len, &r)) != 0) {
        sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: damaged index file skipped",
                       "key=%s error=\"%s\"", key, sl_strerror(rc));
        sl_buf_release(&b);
        sl_buf_release(&err);
        return 0;
    }
    if (rc != 0) {
        sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: cannot read index file",
                       "key=%s error=\"%s\"", key, err.data ? err.data : sl_strerror(rc));
        sl_buf_release(&b);
        sl_buf_release(&err);
        return rc == SL_ENOENT ? 0 : rc; /* removed by the compactor meanwhile */
    }
    sl_buf_release(&err);
    if (sel->m_index_files)
        sl_counter_inc(sel->m_index_files);
    pthread_mutex_lock(&sel->mu);
    if ((c = index_find_locked(sel, key)) != NULL) { /* another query loaded it meanwhile */
        sl_index_reader_close(r);
        sl_buf_release(&b);
    } else {
        if (sel->nidx == sel->capidx) {
            sel->capidx = sel->capidx ? sel->capidx * 2 : 16;
            sel->idx = sl_reallocarray(sel->idx, sel->capidx, sizeof(*sel->idx));
        }
        size_t len = b.len;
        c = &sel->idx[sel->nidx++];
        *c = (struct cached){sl_strdup(key), sl_buf_detach(&b, NULL), len, r, 0, 0};
        sel->idx_bytes += len;
    }
    c->refs++;
    c->used = ++sel->tick;
    *out = c->r;
    index_gauge_locked(sel);
    pthread_mutex_unlock(&sel->mu);
    return 0;
}

static void index_put(struct sl_select *sel, struct sl_index_reader *r)
{
    pthread_mutex_lock(&sel->mu);
    for (size_t i = 0; i < sel->nidx; i++)
        if (sel->idx[i].r == r) {
            sel->idx[i].refs--;
            break;
        }
    index_evict_locked(sel);
    index_gauge_locked(sel);
    pthread_mutex_unlock(&sel->mu);
}

/* ---- decoded chunks ---- */

struct ent {
    int64_t ts;
    const char *p;
    size_t len;
    const char *m; /* structured metadata pairs, encoded (chunk.h) */
    uint32_t mlen, nmeta;
};

/* The entries of one chunk (or of memory) in the range, sorted by (ts,
 * line); lines point into the decompressed blocks (or the arena). */
struct run {
    struct ent *e; /* in ebuf (a pooled buffer) for chunks, else allocated */
    size_t n, cap;
    struct sl_buf ebuf;
    bool pooled;
    struct sl_buf *blocks;
    size_t nblocks;
    struct sl_arena *arena; /* memory entries only */
    int64_t lo, hi;         /* time bounds, inclusive, for grouping */
};

static void run_add(struct run *r, int64_t ts, const char *p, size_t len, const char *m,
                    size_t mlen, size_t nmeta)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->e = sl_reallocarray(r->e, r->cap, sizeof(*r->e));
    }
    r->e[r->n++] = (struct ent){ts, p, len, m, (uint32_t)mlen, (uint32_t)nmeta};
}

static struct sl_chunk_entry ent_entry(const struct ent *e)
{
    return (struct sl_chunk_entry){e->ts, sl_bytes(e->p, e->len), sl_bytes(e->m, e->mlen),
                                   e->nmeta};
}

static void run_release(struct sl_select *sel, struct run *r)
{
    for (size_t i = 0; i < r->nblocks; i++)
        buf_put(sel, &r->blocks[i]);
    sl_free(r->blocks);
    if (r->pooled)
        buf_put(sel, &r->ebuf);
    else
        sl_free(r->e);
    if (r->arena) {
        sl_arena_release(r->arena);
        sl_free(r->arena);
    }
    memset(r, 0, sizeof *r);
}

static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return sl_bytes_cmp(sl_bytes(x->p, x->len), sl_bytes(y->p, y->len));
}

/* Blocks of a chunk may overlap (out-of-order entries) and equal
 * timestamps come in push order: sort only when the run is not in order. */
static void run_sort(struct run *r)
{
    for (size_t i = 1; i < r->n; i++)
        if (ent_cmp(&r->e[i - 1], &r->e[i]) > 0) {
            qsort(r->e, r->n, sizeof(*r->e), ent_cmp);
            return;
        }
}

/* Decodes the blocks of a chunk object that overlap [from, through). */
static int decode_chunk(struct sl_select *sel, const struct sl_buf *obj, int64_t from,
                        int64_t through, struct run *out)
{
    struct sl_chunk_reader r;
    int rc = sl_chunk_reader_open(&r, obj->data, obj->len);
    if (rc)
        return rc;
    out->blocks = sl_calloc(r.nblocks ? r.nblocks : 1, sizeof(*out->blocks));
    size_t want = 0; /* entries of the blocks in range: the array at once */
    for (uint32_t i = 0; i < r.nblocks; i++) {
        struct sl_chunk_block_info bi;
        sl_chunk_reader_block(&r, i, &bi);
        if (bi.max_ts >= from && bi.min_ts < through)
            want += bi.entries;
    }
    buf_get(sel, &out->ebuf);
    out->pooled = true;
    out->e = (struct ent *)(void *)sl_buf_reserve(&out->ebuf, (want ? want : 1) * sizeof(*out->e));
    out->cap = want;
    for (uint32_t i = 0; i < r.nblocks && rc == 0; i++) {
        struct sl_chunk_block_info bi;
        sl_chunk_reader_block(&r, i, &bi);
        if (bi.max_ts < from || bi.min_ts >= through)
            continue;
        struct sl_buf *raw = &out->blocks[out->nblocks++];
        buf_get(sel, raw);
        if ((rc = sl_chunk_reader_block_payload(&r, i, raw, &bi)) != 0)
            break;
        const char *p = raw->data, *end = raw->data + raw->len;
        int64_t prev = bi.min_ts;
        bool meta = bi.flags & SL_CHUNK_BLOCK_META;
        for (uint32_t k = 0; k < bi.entries; k++) {
            struct sl_chunk_entry e;
            if (sl_chunk_payload_next(&p, end, &prev, meta, &e) != 0 || e.ts < bi.min_ts ||
                e.ts > bi.max_ts) {
                rc = SL_ECORRUPT;
                break;
            }
            if (e.ts >= from && e.ts < through && out->n < out->cap)
                out->e[out->n++] =
                    (struct ent){e.ts,       e.line.len ? e.line.ptr : "", e.line.len,
                                 e.meta.ptr, (uint32_t)e.meta.len,         (uint32_t)e.n_meta};
        }
        if (rc == 0 && p != end)
            rc = SL_ECORRUPT;
    }
    if (rc == 0)
        run_sort(out);
    return rc;
}

/* The object of key: from the disk cache, else from the store (and then
 * cached). */
static int chunk_object(struct sl_select *sel, const char *key, struct sl_buf *obj,
                        struct sl_buf *err)
{
    if (sel->cache && sl_chunk_cache_get(sel->cache, key, obj) == 0)
        return 0;
    int rc = sl_store_get(sel->store, key, obj, err);
    if (rc == 0) {
        if (sel->m_chunks) {
            sl_counter_inc(sel->m_chunks);
            sl_counter_add(sel->m_chunk_bytes, (double)obj->len);
        }
        if (sel->cache)
            sl_chunk_cache_put(sel->cache, key, obj->data, obj->len);
    }
    return rc;
}

/* Fetches and decodes one chunk; a missing chunk (deleted by retention
 * since the index was read) is an empty run. */
static int fetch_chunk(struct sl_select *sel, const struct sl_index_chunk_ref *ref, int64_t from,
                       int64_t through, struct run *out)
{
    char *key = sl_strndup(ref->key.ptr, ref->key.len);
    struct sl_buf obj, err = SL_BUF_INIT;
    buf_get(sel, &obj);
    out->lo = ref->from;
    out->hi = ref->through;
    int rc = chunk_object(sel, key, &obj, &err);
    if (rc == SL_ENOENT) {
        if (sel->m_missing)
            sl_counter_inc(sel->m_missing);
        sl_log_limited(&sel->lim, SL_LOG_WARN, "query: indexed chunk missing", "key=%s", key);
        rc = 0;
    } else if (rc != 0) {
        sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: cannot read chunk", "key=%s error=\"%s\"",
                       key, err.data ? err.data : sl_strerror(rc));
    } else if ((rc = decode_chunk(sel, &obj, from, through, out)) != 0) {
        sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: damaged chunk", "key=%s error=\"%s\"", key,
                       sl_strerror(rc));
    }
    buf_put(sel, &obj);
    sl_buf_release(&err);
    sl_free(key);
    return rc;
}

/* ---- prefetch ----
 *
 * One job per stored chunk of the visit, in the order the callback will
 * scan them (series in visit order; a series' chunks by time, newest first
 * for backward scans). Workers take pending jobs in that order while fewer
 * than `window` decoded jobs wait for the scan; the scan takes its jobs in
 * order, running a pending one itself. A job the scan no longer wants (it
 * stopped early) is dropped by whoever holds it. */

enum { J_PENDING, J_RUNNING, J_DONE, J_TAKEN };

struct job {
    const struct sl_index_chunk_ref *ref; /* a stored chunk, or */
    struct sl_stream_reader *mem;         /* a time slice of a stream in memory */
    int64_t sfrom, sthrough;
    int state;
    bool abandoned;
    int rc;
    struct run run;
};

struct prefetch {
    struct sl_select *sel;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *jobs;
    size_t njobs, next, ready, window;
    int64_t from, through;
    bool backward;
    bool stop;
    struct sl_qpool_source src;
};

/* A slice of a stream in memory: lines are copied (the reader reuses its
 * buffers) into one pooled buffer, entries into another; the line pointers
 * are offsets until the scan ends (the buffer may move as it grows). */
struct slice_scan {
    struct sl_select *sel;
    struct run *run;
};

static int on_slice_entry(const struct sl_chunk_entry *ce, void *ud)
{
    struct run *r = ((struct slice_scan *)ud)->run;
    struct sl_buf *lines = &r->blocks[0];
    struct ent e = {ce->ts,
                    (const char *)(uintptr_t)lines->len,
                    ce->line.len,
                    (const char *)(uintptr_t)(lines->len + ce->line.len),
                    (uint32_t)ce->meta.len,
                    (uint32_t)ce->n_meta};
    if (ce->line.len)
        sl_buf_append(lines, ce->line.ptr, ce->line.len);
    if (ce->meta.len) /* right after the line */
        sl_buf_append(lines, ce->meta.ptr, ce->meta.len);
    sl_buf_append(&r->ebuf, &e, sizeof e);
    return 0;
}

static int scan_slice(struct sl_select *sel, struct job *j, bool backward)
{
    struct run *r = &j->run;
    r->blocks = sl_calloc(1, sizeof *r->blocks);
    r->nblocks = 1;
    buf_get(sel, &r->blocks[0]);
    buf_get(sel, &r->ebuf);
    r->pooled = true;
    struct slice_scan ss = {sel, r};
    int rc =
        sl_stream_reader_scan_entries(j->mem, j->sfrom, j->sthrough, backward, on_slice_entry, &ss);
    r->e = (struct ent *)(void *)r->ebuf.data;
    r->n = r->cap = r->ebuf.len / sizeof(struct ent);
    for (size_t i = 0; i < r->n; i++) {
        r->e[i].p = r->e[i].len ? r->blocks[0].data + (uintptr_t)r->e[i].p : "";
        r->e[i].m = r->e[i].mlen ? r->blocks[0].data + (uintptr_t)r->e[i].m : NULL;
    }
    return rc;
}

static void job_run(struct prefetch *pf, struct job *j)
{
    if (j->mem) {
        j->rc = scan_slice(pf->sel, j, pf->backward);
    } else {
        j->rc = fetch_chunk(pf->sel, j->ref, pf->from, pf->through, &j->run);
    }
}

static struct prefetch *pf_new(struct sl_select *sel, size_t njobs, int64_t from, int64_t through,
                               bool backward)
{
    struct prefetch *pf = SL_NEW(struct prefetch);
    pf->sel = sel;
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    pf->jobs = sl_calloc(njobs ? njobs : 1, sizeof(*pf->jobs));
    pf->window = sel->window;
    pf->from = from;
    pf->through = through;
    pf->backward = backward;
    return pf;
}

/* Stops the workers (waiting for those inside a job) and frees it all. */
static void pf_free(struct prefetch *pf)
{
    pthread_mutex_lock(&pf->mu);
    pf->stop = true;
    pthread_mutex_unlock(&pf->mu);
    sl_qpool_detach(pf->sel->pool, &pf->src);
    for (size_t i = 0; i < pf->njobs; i++)
        run_release(pf->sel, &pf->jobs[i].run);
    sl_free(pf->jobs);
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->mu);
    sl_free(pf);
}

/* Runs the next pending job ahead of the scan; called and returns with
 * the lock held. False if there is none, or the window is full. */
static bool pf_ahead_locked(struct prefetch *pf)
{
    while (pf->next < pf->njobs && pf->jobs[pf->next].state != J_PENDING)
        pf->next++;
    if (pf->stop || pf->ready >= pf->window || pf->next == pf->njobs)
        return false;
    struct job *j = &pf->jobs[pf->next++];
    j->state = J_RUNNING;
    pthread_mutex_unlock(&pf->mu);
    job_run(pf, j);
    pthread_mutex_lock(&pf->mu);
    j->state = J_DONE;
    if (j->abandoned) {
        run_release(pf->sel, &j->run);
        j->state = J_TAKEN;
    } else {
        pf->ready++;
    }
    pthread_cond_broadcast(&pf->cv);
    return true;
}

static bool pf_work(void *ud)
{
    struct prefetch *pf = ud;
    pthread_mutex_lock(&pf->mu);
    bool did = pf_ahead_locked(pf);
    pthread_mutex_unlock(&pf->mu);
    return did;
}

/* The decoded job (moved into *out); runs it here if no worker has. */
static int pf_take(struct prefetch *pf, struct job *j, struct run *out)
{
    pthread_mutex_lock(&pf->mu);
    /* While a worker decodes this one, decode the next ones here rather
     * than wait: the scan's thread is one of the query's cores. */
    while (j->state == J_RUNNING)
        if (!pf_ahead_locked(pf))
            pthread_cond_wait(&pf->cv, &pf->mu);
    if (j->state == J_PENDING) {
        j->state = J_RUNNING;
        pthread_mutex_unlock(&pf->mu);
        job_run(pf, j);
        pthread_mutex_lock(&pf->mu);
    } else {
        pf->ready--;
    }
    j->state = J_TAKEN;
    *out = j->run;
    memset(&j->run, 0, sizeof j->run);
    int rc = j->rc;
    pthread_mutex_unlock(&pf->mu);
    sl_qpool_kick(pf->sel->pool, &pf->src);
    return rc;
}

static void pf_abandon(struct prefetch *pf, struct job *j)
{
    pthread_mutex_lock(&pf->mu);
    if (j->state == J_PENDING) {
        j->state = J_TAKEN;
    } else if (j->state == J_RUNNING) {
        j->abandoned = true;
    } else if (j->state == J_DONE) {
        pf->ready--;
        run_release(pf->sel, &j->run);
        j->state = J_TAKEN;
    }
    pthread_mutex_unlock(&pf->mu);
    sl_qpool_kick(pf->sel->pool, &pf->src);
}

/* ---- label names and values ---- */

struct keylist {
    char **keys;
    size_t n, cap;
};

static int on_key(const char *key, uint64_t size, void *ud)
{
    (void)size;
    struct keylist *k = ud;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->keys = sl_reallocarray(k->keys, k->cap, sizeof(*k->keys));
    }
    k->keys[k->n++] = sl_strdup(key);
    return 0;
}

struct labelwalk {
    const struct sl_bytes *name;
    int64_t from, through;
    sl_index_bytes_fn fn;
    void *ud;
};

static int on_index_value(struct sl_bytes v, void *ud)
{
    struct labelwalk *w = ud;
    return v.len ? w->fn(v, w->ud) : 0;
}

static int list_index_keys(struct sl_select *sel, struct sl_bytes tenant, int64_t from,
                           int64_t through, struct keylist *kl);

int sl_select_labels(struct sl_select *sel, struct sl_ingester *ing, struct sl_bytes tenant,
                     const struct sl_bytes *name, int64_t from, int64_t through,
                     sl_index_bytes_fn fn, void *ud)
{
    struct labelwalk w = {name, from, through, fn, ud};
    int rc = 0;
    if (from >= through)
        return 0;
    if (sel && sel->store) {
        struct keylist kl = {0};
        rc = list_index_keys(sel, tenant, from, through, &kl);
        for (size_t i = 0; i < kl.n && rc == 0; i++) {
            struct sl_index_reader *r;
            rc = index_get(sel, kl.keys[i], &r);
            if (rc == 0 && r) {
                rc = name
                         ? sl_index_reader_label_values(r, *name, from, through, on_index_value, &w)
                         : sl_index_reader_label_names(r, from, through, on_index_value, &w);
                index_put(sel, r);
            }
        }
        for (size_t i = 0; i < kl.n; i++)
            sl_free(kl.keys[i]);
        sl_free(kl.keys);
    }
    if (rc == 0) /* memory: from the ingester's postings */
        rc = sl_ingester_labels(ing, tenant, name, from, through, fn, ud);
    return rc;
}

/* ---- visit ---- */

struct sseries {
    uint64_t fp;
    struct sl_labels labels;
    struct sl_bytes canon;
    struct sl_index_chunk_ref *refs; /* sorted by from */
    size_t nrefs;
    bool in_memory;
    struct job *jobs; /* prefetch: one per ref in range, in scan order */
    size_t njobs;
};

struct visit {
    struct sl_select *sel;
    const struct sl_select_spec *sp;
    struct sl_arena arena;
    struct sseries *ss;
    size_t nss, capss;
    sl_select_fn fn;
    void *ud;
    struct prefetch *pf;
};

struct sl_select_reader {
    struct sl_select *sel;
    struct sl_stream_reader *mem; /* NULL: store only */
    struct sseries *ss;           /* NULL: memory only */
    struct prefetch *pf;          /* NULL: fetch when scanned */
    bool prefetch;                /* spec.prefetch and spec.slice_memory */
    int64_t pf_from, pf_through;
    bool pf_backward;
    int64_t mem_min, mem_max; /* memory: the stream's bounds and size */
    size_t mem_entries;
};

static int on_index_series(const struct sl_labels *ls, uint64_t fp,
                           const struct sl_index_chunk_ref *refs, size_t n, void *ud)
{
    struct visit *v = ud;
    if (v->nss == v->capss) {
        v->capss = v->capss ? v->capss * 2 : 64;
        v->ss = sl_reallocarray(v->ss, v->capss, sizeof(*v->ss));
    }
    struct sseries *s = &v->ss[v->nss++];
    memset(s, 0, sizeof *s);
    s->fp = fp;
    sl_labels_copy(&v->arena, ls, &s->labels);
    struct sl_buf c = SL_BUF_INIT;
    sl_labels_format(ls, &c);
    s->canon = sl_arena_bytes(&v->arena, sl_buf_bytes(&c));
    sl_buf_release(&c);
    s->refs = sl_arena_alloc(&v->arena, n * sizeof(*refs));
    for (size_t i = 0; i < n; i++) {
        s->refs[i] = refs[i];
        s->refs[i].key = sl_arena_bytes(&v->arena, refs[i].key);
    }
    s->nrefs = n;
    return 0;
}

static int series_cmp(const void *a, const void *b)
{
    const struct sseries *x = a, *y = b;
    if (x->fp != y->fp)
        return x->fp < y->fp ? -1 : 1;
    return sl_bytes_cmp(x->canon, y->canon);
}

static int ref_key_cmp(const void *a, const void *b)
{
    return sl_bytes_cmp(((const struct sl_index_chunk_ref *)a)->key,
                        ((const struct sl_index_chunk_ref *)b)->key);
}

static int ref_from_cmp(const void *a, const void *b)
{
    const struct sl_index_chunk_ref *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return sl_bytes_cmp(x->key, y->key);
}

/* Merges the entries of one series found in several index files; a
 * series' chunks end up unique and sorted by from. */
static void merge_series(struct visit *v)
{
    if (v->nss == 0)
        return;
    qsort(v->ss, v->nss, sizeof(*v->ss), series_cmp);
    size_t out = 0;
    for (size_t i = 0; i < v->nss;) {
        size_t j = i + 1, n = v->ss[i].nrefs;
        while (j < v->nss && series_cmp(&v->ss[i], &v->ss[j]) == 0)
            n += v->ss[j++].nrefs;
        struct sseries s = v->ss[i];
        if (j > i + 1) {
            s.refs = sl_arena_alloc(&v->arena, n * sizeof(*s.refs));
            s.nrefs = 0;
            for (size_t k = i; k < j; k++)
                for (size_t r = 0; r < v->ss[k].nrefs; r++)
                    s.refs[s.nrefs++] = v->ss[k].refs[r];
            qsort(s.refs, s.nrefs, sizeof(*s.refs), ref_key_cmp);
            size_t u = 0;
            for (size_t r = 0; r < s.nrefs; r++)
                if (u == 0 || !sl_bytes_eq(s.refs[r].key, s.refs[u - 1].key))
                    s.refs[u++] = s.refs[r];
            s.nrefs = u;
        }
        qsort(s.refs, s.nrefs, sizeof(*s.refs), ref_from_cmp);
        v->ss[out++] = s;
        i = j;
    }
    v->nss = out;
}

/* The index files of the days of [from, through). */
static int list_index_keys(struct sl_select *sel, struct sl_bytes tenant, int64_t from,
                           int64_t through, struct keylist *kl)
{
    int rc = 0;
    int64_t last = through > from ? through - 1 : from;
    for (int64_t d = sl_index_day(from); d <= sl_index_day(last) && rc == 0; d++) {
        struct sl_buf prefix = SL_BUF_INIT, err = SL_BUF_INIT;
        sl_index_prefix(&prefix, d, tenant);
        rc = sl_store_list(sel->store, prefix.data, on_key, kl, &err);
        if (rc)
            sl_log_limited(&sel->lim, SL_LOG_ERROR, "query: cannot list index files",
                           "prefix=%s error=\"%s\"", prefix.data,
                           err.data ? err.data : sl_strerror(rc));
        sl_buf_release(&prefix);
        sl_buf_release(&err);
    }
    return rc;
}

static int collect_store(struct visit *v)
{
    const struct sl_select_spec *sp = v->sp;
    struct keylist kl = {0};
    int rc = list_index_keys(v->sel, sp->tenant, sp->from, sp->through, &kl);
    for (size_t i = 0; i < kl.n && rc == 0; i++) {
        struct sl_index_reader *r;
        rc = index_get(v->sel, kl.keys[i], &r);
        if (rc == 0 && r) {
            rc = sl_index_reader_select(r, sp->eq, sp->neq, sp->match, sp->match_ud, sp->from,
                                        sp->through, on_index_series, v);
            index_put(v->sel, r);
        }
    }
    for (size_t i = 0; i < kl.n; i++)
        sl_free(kl.keys[i]);
    sl_free(kl.keys);
    if (rc == 0)
        merge_series(v);
    return rc;
}

static void info_of_store(const struct sseries *s, struct sl_stream_info *info)
{
    info->labels = &s->labels;
    info->fingerprint = s->fp;
    info->entries = 0;
    for (size_t i = 0; i < s->nrefs; i++) {
        if (i == 0 || s->refs[i].from < info->min_ts)
            info->min_ts = s->refs[i].from;
        if (i == 0 || s->refs[i].through > info->max_ts)
            info->max_ts = s->refs[i].through;
        info->entries += s->refs[i].entries ? s->refs[i].entries : 1;
    }
}

static bool has_eq(const struct sl_labels *ls, const struct sl_index_matcher *eq, size_t neq)
{
    for (size_t i = 0; i < neq; i++) {
        bool found = false;
        for (size_t k = 0; k < ls->n && !found; k++)
            found = sl_bytes_eq(ls->items[k].name, eq[i].name) &&
                    sl_bytes_eq(ls->items[k].value, eq[i].value);
        if (!found)
            return false;
    }
    return true;
}

static void reader_init(struct visit *v, struct sl_select_reader *r, struct sl_stream_reader *mem,
                        struct sseries *ss)
{
    *r = (struct sl_select_reader){.sel = v->sel,
                                   .mem = mem,
                                   .ss = ss,
                                   .pf = v->pf,
                                   .prefetch = v->sp->prefetch && v->sp->slice_memory,
                                   .pf_from = v->sp->from,
                                   .pf_through = v->sp->through,
                                   .pf_backward = v->sp->backward};
}

static int on_mem_stream(const struct sl_stream_info *s, struct sl_stream_reader *rd, void *ud)
{
    struct visit *v = ud;
    const struct sl_select_spec *sp = v->sp;
    if (s->entries == 0 || !has_eq(s->labels, sp->eq, sp->neq))
        return 0;
    struct sseries *found = NULL;
    if (v->nss) {
        struct sseries key = {.fp = s->fingerprint};
        struct sl_buf c = SL_BUF_INIT;
        sl_labels_format(s->labels, &c);
        key.canon = sl_buf_bytes(&c);
        found = bsearch(&key, v->ss, v->nss, sizeof(*v->ss), series_cmp);
        sl_buf_release(&c);
    }
    bool in_range = s->max_ts >= sp->from && s->min_ts < sp->through;
    if (!found && !in_range)
        return 0;
    if (!found && sp->match && !sp->match(s->labels, sp->match_ud))
        return 0; /* (a stored series passed it already) */
    struct sl_stream_info info = *s;
    if (found) {
        found->in_memory = true;
        struct sl_stream_info st;
        info_of_store(found, &st);
        if (!in_range || st.min_ts < info.min_ts)
            info.min_ts = st.min_ts;
        if (!in_range || st.max_ts > info.max_ts)
            info.max_ts = st.max_ts;
        info.entries += st.entries;
    }
    struct sl_select_reader r;
    reader_init(v, &r, rd, found);
    r.mem_min = s->min_ts;
    r.mem_max = s->max_ts;
    r.mem_entries = s->entries;
    int rc = v->fn(&info, &r, v->ud);
    if (found && v->pf)
        for (size_t i = 0; i < found->njobs; i++)
            pf_abandon(v->pf, &found->jobs[i]);
    return rc;
}

/* One job per chunk in range, series by series, in scan order. */
static void plan_prefetch(struct visit *v)
{
    const struct sl_select_spec *sp = v->sp;
    size_t n = 0;
    for (size_t i = 0; i < v->nss; i++)
        for (size_t k = 0; k < v->ss[i].nrefs; k++)
            n += v->ss[i].refs[k].through >= sp->from && v->ss[i].refs[k].from < sp->through;
    if (n == 0)
        return;
    struct prefetch *pf = pf_new(v->sel, n, sp->from, sp->through, sp->backward);
    for (size_t i = 0; i < v->nss; i++) {
        struct sseries *s = &v->ss[i];
        s->jobs = &pf->jobs[pf->njobs];
        for (size_t k = 0; k < s->nrefs; k++) {
            const struct sl_index_chunk_ref *ref = &s->refs[sp->backward ? s->nrefs - 1 - k : k];
            if (ref->through >= sp->from && ref->from < sp->through)
                pf->jobs[pf->njobs++].ref = ref;
        }
        s->njobs = (size_t)(&pf->jobs[pf->njobs] - s->jobs);
    }
    v->pf = pf;
    sl_qpool_attach(v->sel->pool, &pf->src, pf_work, pf);
}

static void end_prefetch(struct visit *v)
{
    if (v->pf)
        pf_free(v->pf);
    v->pf = NULL;
}

int sl_select_run(struct sl_select *sel, struct sl_ingester *ing, const struct sl_select_spec *sp,
                  sl_select_fn fn, void *ud)
{
    struct visit v = {.sel = sel, .sp = sp, .fn = fn, .ud = ud};
    sl_arena_init(&v.arena, 0);
    int rc = 0;
    if (sel && sel->store && sp->from < sp->through)
        rc = collect_store(&v);
    if (rc == 0 && sp->prefetch)
        plan_prefetch(&v);
    if (rc == 0) { /* memory: only the streams in range with the eq pairs (postings) */
        struct sl_label eq[16];
        size_t neq = sp->neq < 16 ? sp->neq : 16; /* the rest: has_eq in on_mem_stream */
        for (size_t i = 0; i < neq; i++)
            eq[i] = (struct sl_label){sp->eq[i].name, sp->eq[i].value};
        rc = sl_ingester_visit_matching(ing, sp->tenant, eq, neq, sp->pred, sp->npred, sp->from,
                                        sp->through, on_mem_stream, &v);
    }
    for (size_t i = 0; i < v.nss && rc == 0; i++) {
        if (v.ss[i].in_memory)
            continue;
        struct sl_stream_info info;
        info_of_store(&v.ss[i], &info);
        struct sl_select_reader r;
        reader_init(&v, &r, NULL, &v.ss[i]);
        rc = fn(&info, &r, ud);
        if (v.pf)
            for (size_t k = 0; k < v.ss[i].njobs; k++)
                pf_abandon(v.pf, &v.ss[i].jobs[k]);
    }
    end_prefetch(&v);
    sl_free(v.ss);
    sl_arena_release(&v.arena);
    return rc;
}

int sl_select_visit(struct sl_select *sel, struct sl_ingester *ing, struct sl_bytes tenant,
                    const struct sl_index_matcher *eq, size_t neq, sl_index_label_fn match,
                    void *match_ud, int64_t from, int64_t through, sl_select_fn fn, void *ud)
{
    struct sl_select_spec sp = {.tenant = tenant,
                                .eq = eq,
                                .neq = neq,
                                .match = match,
                                .match_ud = match_ud,
                                .from = from,
                                .through = through};
    return sl_select_run(sel, ing, &sp, fn, ud);
}

size_t sl_select_reader_chunks(const struct sl_select_reader *r, int64_t from, int64_t through)
{
    size_t n = 0;
    for (size_t i = 0; r->ss && i < r->ss->nrefs; i++)
        n += r->ss->refs[i].through >= from && r->ss->refs[i].from < through;
    return n;
}

/* ---- scan ---- */

static int on_mem_entry(const struct sl_chunk_entry *e, void *ud)
{
    struct run *r = ud;
    struct sl_bytes line = e->line;
    run_add(r, e->ts, line.len ? sl_arena_memdup(r->arena, line.ptr, line.len) : "", line.len,
            e->meta.len ? sl_arena_memdup(r->arena, e->meta.ptr, e->meta.len) : NULL, e->meta.len,
            e->n_meta);
    return 0;
}

/* Emits the entries of runs (overlapping in time) merged, repeats dropped. */
static int emit_group(struct run *runs, size_t n, bool backward, sl_chunk_entry_fn fn, void *ud)
{
    struct run all = {0};
    struct run *src = &runs[0];
    if (n > 1) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += runs[i].n;
        all.e = sl_mallocarray(total ? total : 1, sizeof(*all.e));
        for (size_t i = 0; i < n; i++) {
            if (runs[i].n)
                memcpy(all.e + all.n, runs[i].e, runs[i].n * sizeof(*all.e));
            all.n += runs[i].n;
        }
        qsort(all.e, all.n, sizeof(*all.e), ent_cmp);
        src = &all;
    }
    size_t u = 0;
    for (size_t i = 0; i < src->n; i++)
        if (u == 0 || ent_cmp(&src->e[i], &src->e[u - 1]) != 0)
            src->e[u++] = src->e[i];
    int rc = 0;
    for (size_t i = 0; i < u && rc == 0; i++) {
        struct sl_chunk_entry ce = ent_entry(&src->e[backward ? u - 1 - i : i]);
        rc = fn(&ce, ud);
    }
    sl_free(all.e);
    return rc;
}

/* The runs of a series: its chunks overlapping the range (refs sorted by
 * from), then memory. Built lazily group by group so that a scan that
 * stops early decodes little. */
struct series_scan {
    struct sl_select_reader *r;
    int64_t from, through;
    bool backward;
    const struct sl_index_chunk_ref **refs; /* in range, by from */
    size_t nrefs;
    struct job **jobs; /* parallel to refs when prefetched */
    struct run mem;
    bool has_mem;
};

static int get_run(struct series_scan *sc, size_t i, struct run *out)
{
    if (sc->jobs && sc->jobs[i])
        return pf_take(sc->r->pf, sc->jobs[i], out);
    return fetch_chunk(sc->r->sel, sc->refs[i], sc->from, sc->through, out);
}

/* Groups of chunks whose time ranges overlap (memory joins the group it
 * overlaps), emitted in scan order. */
static int scan_groups(struct series_scan *sc, sl_chunk_entry_fn fn, void *ud)
{
    size_t n = sc->nrefs, ng = 0;
    /* group boundaries over refs (by from): g_start[k] */
    size_t *gs = sl_mallocarray(n + 1, sizeof *gs);
    int64_t *ghi = sl_mallocarray(n + 1, sizeof *ghi), *glo = sl_mallocarray(n + 1, sizeof *glo);
    for (size_t i = 0; i < n; i++) {
        if (ng && sc->refs[i]->from <= ghi[ng - 1]) {
            if (sc->refs[i]->through > ghi[ng - 1])
                ghi[ng - 1] = sc->refs[i]->through;
            continue;
        }
        gs[ng] = i;
        glo[ng] = sc->refs[i]->from;
        ghi[ng++] = sc->refs[i]->through;
    }
    gs[ng] = n;
    /* memory joins every group it overlaps: merge those groups into one */
    size_t mg_lo = ng, mg_hi = ng; /* groups [mg_lo, mg_hi) take memory */
    if (sc->has_mem) {
        for (size_t g = 0; g < ng; g++)
            if (ghi[g] >= sc->mem.lo && glo[g] <= sc->mem.hi) {
                if (mg_lo == ng)
                    mg_lo = g;
                mg_hi = g + 1;
            }
    }
    /* the emission units: groups, with [mg_lo, mg_hi) as one unit, and
     * memory alone as a unit (at its place in time) if it overlaps none */
    struct unit {
        size_t r0, r1;
        bool mem;
        int64_t lo;
    } *units = sl_mallocarray(ng + 2, sizeof *units);
    size_t nu = 0;
    bool mem_placed = !sc->has_mem;
    for (size_t g = 0; g < ng;) {
        if (!mem_placed && mg_lo == ng && sc->mem.hi < glo[g]) {
            units[nu++] = (struct unit){0, 0, true, sc->mem.lo};
            mem_placed = true;
        }
        if (g == mg_lo) {
            units[nu++] = (struct unit){gs[mg_lo], gs[mg_hi], true, glo[g]};
            mem_placed = true;
            g = mg_hi;
        } else {
            units[nu++] = (struct unit){gs[g], gs[g + 1], false, glo[g]};
            g++;
        }
    }
    if (!mem_placed)
        units[nu++] = (struct unit){0, 0, true, sc->mem.lo};
    int rc = 0;
    struct run *runs = sl_mallocarray(n + 1, sizeof *runs);
    size_t u;
    for (u = 0; u < nu && rc == 0; u++) {
        const struct unit *un = &units[sc->backward ? nu - 1 - u : u];
        size_t nr = 0;
        for (size_t i = un->r0; i < un->r1 && rc == 0; i++) {
            memset(&runs[nr], 0, sizeof runs[nr]);
            rc = get_run(sc, i, &runs[nr]);
            nr++;
        }
        if (un->mem)
            runs[nr++] = sc->mem;
        if (rc == 0 && nr)
            rc = emit_group(runs, nr, sc->backward, fn, ud);
        for (size_t i = 0; i < nr; i++)
            if (!un->mem || i + 1 < nr)
                run_release(sc->r->sel, &runs[i]);
    }
    sl_free(runs);
    sl_free(units);
    sl_free(gs);
    sl_free(ghi);
    sl_free(glo);
    return rc;
}

/* Entries per memory slice: smaller streams are scanned in one piece. */
#define MEM_SLICE_ENTRIES 16384

/* A big stream in memory: time slices scanned on the pool (the tenant's read
 * lock is held for the whole visit, and concurrent scans of a stream only
 * read it), emitted in order. Every job has ended when this returns. */
static int scan_mem_parallel(struct sl_select_reader *r, int64_t from, int64_t through,
                             bool backward, sl_chunk_entry_fn fn, void *ud)
{
    int64_t lo = from > r->mem_min ? from : r->mem_min;
    int64_t hi = through <= r->mem_max ? through : r->mem_max + 1;
    size_t n = 4 * (sl_qpool_threads(r->sel->pool) + 1);
    if (n > r->mem_entries / MEM_SLICE_ENTRIES)
        n = r->mem_entries / MEM_SLICE_ENTRIES;
    if (hi <= lo || (uint64_t)(hi - lo) < n)
        n = 1;
    if (n < 2)
        return sl_stream_reader_scan_entries(r->mem, from, through, backward, fn, ud);
    struct prefetch *pf = pf_new(r->sel, n, from, through, backward);
    uint64_t width = ((uint64_t)(hi - lo) + n - 1) / n;
    for (size_t i = 0; i < n; i++) {
        size_t k = backward ? n - 1 - i : i; /* jobs in scan order */
        struct job *j = &pf->jobs[pf->njobs++];
        j->mem = r->mem;
        j->sfrom = lo + (int64_t)(width * k);
        j->sthrough = k == n - 1 ? hi : lo + (int64_t)(width * (k + 1));
    }
    sl_qpool_attach(r->sel->pool, &pf->src, pf_work, pf);
    int rc = 0;
    for (size_t i = 0; i < pf->njobs && rc == 0; i++) {
        struct run run;
        rc = pf_take(pf, &pf->jobs[i], &run);
        for (size_t k = 0; k < run.n && rc == 0; k++) {
            struct sl_chunk_entry ce = ent_entry(&run.e[k]);
            rc = fn(&ce, ud);
        }
        run_release(r->sel, &run);
    }
    pf_free(pf);
    return rc;
}

/* sl_select_reader_scan's callback, without metadata. */
struct plain_scan {
    sl_entry_fn fn;
    void *ud;
};

static int on_plain_entry(const struct sl_chunk_entry *e, void *ud)
{
    struct plain_scan *ps = ud;
    return ps->fn(e->ts, e->line, ps->ud);
}

int sl_select_reader_scan(struct sl_select_reader *r, int64_t from, int64_t through, bool backward,
                          sl_entry_fn fn, void *ud)
{
    struct plain_scan ps = {fn, ud};
    return sl_select_reader_scan_entries(r, from, through, backward, on_plain_entry, &ps);
}

int sl_select_reader_scan_entries(struct sl_select_reader *r, int64_t from, int64_t through,
                                  bool backward, sl_chunk_entry_fn fn, void *ud)
{
    if (!r->ss && r->prefetch && r->sel && r->sel->pool && from == r->pf_from &&
        through == r->pf_through && r->mem_entries >= 2 * MEM_SLICE_ENTRIES)
        return scan_mem_parallel(r, from, through, backward, fn, ud);
    if (!r->ss)
        return sl_stream_reader_scan_entries(r->mem, from, through, backward, fn, ud);
    if (from >= through)
        return 0;
    struct series_scan sc = {.r = r, .from = from, .through = through, .backward = backward};
    bool use_pf =
        r->pf && from == r->pf_from && through == r->pf_through && backward == r->pf_backward;
    sc.refs = sl_mallocarray(r->ss->nrefs + 1, sizeof *sc.refs);
    if (use_pf)
        sc.jobs = sl_calloc(r->ss->nrefs + 1, sizeof *sc.jobs);
    for (size_t i = 0; i < r->ss->nrefs; i++) {
        const struct sl_index_chunk_ref *ref = &r->ss->refs[i];
        if (ref->through < from || ref->from >= through)
            continue;
        sc.refs[sc.nrefs++] = ref;
    }
    if (use_pf && sc.nrefs == r->ss->njobs) /* jobs are the refs in range, in scan order */
        for (size_t k = 0; k < sc.nrefs; k++)
            sc.jobs[k] = &r->ss->jobs[backward ? sc.nrefs - 1 - k : k];
    int rc = 0;
    if (r->mem) {
        sc.mem.arena = SL_NEW(struct sl_arena);
        sl_arena_init(sc.mem.arena, 0);
        rc = sl_stream_reader_scan_entries(r->mem, from, through, false, on_mem_entry, &sc.mem);
        if (rc == 0 && sc.mem.n) {
            run_sort(&sc.mem);
            sc.mem.lo = sc.mem.e[0].ts;
            sc.mem.hi = sc.mem.e[sc.mem.n - 1].ts;
            sc.has_mem = true;
        }
    }
    if (rc == 0)
        rc = scan_groups(&sc, fn, ud);
    run_release(r->sel, &sc.mem);
    sl_free(sc.refs);
    sl_free(sc.jobs);
    return rc;
}
