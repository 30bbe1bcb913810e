/* Flusher: one control thread (cuts chunks, writes index files, deletes WAL
 * segments) and a few workers (build and put chunk objects). Shared state is
 * under one mutex; the slow parts (compression, store calls, ingester locks)
 * run without it. */
#include "aggregator/flush/flush.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "aggregator/chunk/chunk.h"
#include "aggregator/index/index.h"
#include "aggregator/ingester/ingester.h"
#include "aggregator/store/store.h"
#include "aggregator/wal/wal.h"
#include "common/arena.h"
#include "common/format.h"
#include "common/err.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/wire.h"

#define BACKOFF_MIN_NS (500 * SL_NS_PER_MS)
#define BACKOFF_MAX_NS (10 * SL_NS_PER_SEC)

struct job {
    struct job *next;
    struct sl_arena arena; /* tenant, labels, key */
    struct sl_bytes tenant;
    struct sl_labels labels;
    uint64_t fp, id;
    struct sl_ingester_block *blocks; /* z bytes owned by the ingester */
    size_t nblocks;
    int64_t from, through;
    uint64_t entries;
    int attempts;
    int64_t next_try;
    struct sl_index_chunk_ref ref; /* once stored */
};

struct sl_flusher {
    struct sl_flusher_opts o;
    char *writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t control;
    pthread_t *workers;
    int nworkers;
    struct sl_wal *wal;
    /* under mu */
    struct job *queue, **queue_tail;
    struct job *stored;
    struct job **busy; /* nworkers slots: the jobs being stored */
    size_t queued, inflight;
    bool stop;
    int exited; /* threads that left their loop (sl_flusher_stop_within) */
    uint64_t force_gen, force_done;
    int force_rc;
    uint64_t index_seq;

    struct sl_log_limit lim_put, lim_index;
    struct sl_metric *m_flushed, *m_bytes, *m_failures, *m_queue, *m_index_files, *m_index_failures,
        *m_entries, *m_raw, *m_compress_s;
};

/* A worker's reusable compression state: contexts and buffers live as long
 * as the thread, so a block costs no allocation. */
struct wctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    struct sl_buf raw, z;
    /* the stored block being assembled from ingester blocks */
    struct sl_buf acc;
    struct sl_chunk_block_info bi;
    int64_t last_ts; /* of its last entry */
    bool open;
};

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    sl_arena_release(&j->arena);
    sl_free(j->blocks);
    sl_free(j);
}

static void on_chunk(const struct sl_ingester_chunk *c, void *ud)
{
    struct sl_flusher *f = ud;
    struct job *j = SL_NEW(struct job);
    sl_arena_init(&j->arena, 4096);
    j->tenant = sl_arena_bytes(&j->arena, c->tenant);
    sl_labels_copy(&j->arena, c->labels, &j->labels);
    j->fp = c->fp;
    j->id = c->id;
    j->blocks = sl_memdup(c->blocks, c->nblocks * sizeof(*c->blocks));
    j->nblocks = c->nblocks;
    j->from = c->from;
    j->through = c->through;
    j->entries = c->entries;
    pthread_mutex_lock(&f->mu);
    *f->queue_tail = j;
    f->queue_tail = &j->next;
    f->queued++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Decompresses an ingester block (always zstd) into w->raw. */
static int block_raw(struct wctx *w, const struct sl_ingester_block *b)
{
    if (b->raw_len > SL_CHUNK_MAX_BLOCK_RAW)
        return SL_ECORRUPT;
    sl_buf_clear(&w->raw);
    char *p = sl_buf_reserve(&w->raw, b->raw_len + 1);
    size_t n = ZSTD_decompressDCtx(w->dctx, p, b->raw_len + 1, b->z, b->zlen);
    if (ZSTD_isError(n) || n != b->raw_len)
        return SL_ECORRUPT;
    sl_buf_commit(&w->raw, n);
    return 0;
}

/* Compresses the assembled block w->acc at the flusher's level and adds it. */
static int emit(struct sl_flusher *f, struct wctx *w, struct sl_chunk_writer *cw)
{
    if (!w->open)
        return 0;
    w->open = false;
    w->bi.raw_len = (uint32_t)w->acc.len;
    if (f->o.codec != SL_CODEC_ZSTD)
        return sl_chunk_writer_add_raw(cw, &w->bi, w->acc.data, w->acc.len);
    size_t bound = ZSTD_compressBound(w->acc.len);
    sl_buf_clear(&w->z);
    char *p = sl_buf_reserve(&w->z, bound);
    size_t n = ZSTD_compressCCtx(w->cctx, p, bound, w->acc.data, w->acc.len, f->o.level);
    if (ZSTD_isError(n))
        return SL_EINVAL;
    sl_buf_commit(&w->z, n);
    return sl_chunk_writer_add_compressed(cw, &w->bi, w->z.data, w->z.len);
}

/* Timestamp of the last of the count entries of a payload. */
static int payload_last_ts(const struct sl_buf *raw, int64_t min_ts, uint32_t count, bool meta,
                           int64_t *out)
{
    const char *p = raw->data, *end = raw->data + raw->len;
    int64_t prev = min_ts;
    for (uint32_t i = 0; i < count; i++) {
        struct sl_chunk_entry e;
        if (sl_chunk_payload_next(&p, end, &prev, meta, &e) != 0)
            return SL_ECORRUPT;
    }
    *out = prev;
    return p == end ? 0 : SL_ECORRUPT;
}

/* Adds ingester block b to the chunk. zstd level 1 (the ingester's own):
 * copied as it is. Otherwise decompressed and appended to the block being
 * assembled when it does not overlap it in time and the result stays within
 * stored_block_size (a payload continues across the join: only the first
 * timestamp delta of b is rewritten, relative to the last entry before it)
 * and has the same flags (a block with structured metadata encodes a pair
 * count per entry, one without does not: they are never joined, so every
 * entry keeps its metadata and blocks without any cost nothing extra),
 * else that block is compressed at the configured level and b starts the
 * next. */
static int add_block(struct sl_flusher *f, struct wctx *w, struct sl_chunk_writer *cw,
                     const struct sl_ingester_block *b)
{
    struct sl_chunk_block_info bi = {b->count, b->min_ts, b->max_ts, (uint32_t)b->raw_len,
                                     b->flags};
    if (f->o.codec == SL_CODEC_ZSTD && f->o.level == 1)
        return sl_chunk_writer_add_compressed(cw, &bi, b->z, b->zlen);
    int64_t last;
    int rc = block_raw(w, b);
    if (rc == 0)
        rc = payload_last_ts(&w->raw, b->min_ts, b->count, b->flags & SL_CHUNK_BLOCK_META, &last);
    if (rc != 0)
        return rc;
    if (w->open && b->min_ts >= w->bi.max_ts && w->acc.len + w->raw.len <= f->o.stored_block_size &&
        (uint64_t)w->bi.entries + b->count <= UINT32_MAX && w->bi.flags == b->flags) {
        const char *p = w->raw.data, *end = w->raw.data + w->raw.len;
        uint64_t d0;
        if (sl_get_uvarint(&p, end, &d0) != 0)
            return SL_ECORRUPT;
        uint64_t first = (uint64_t)b->min_ts + d0; /* wraps as the decoder does */
        sl_buf_put_uvarint(&w->acc, first - (uint64_t)w->last_ts);
        sl_buf_append(&w->acc, p, (size_t)(end - p));
        w->bi.entries += b->count;
        w->bi.max_ts = b->max_ts;
        w->last_ts = last;
        return 0;
    }
    if ((rc = emit(f, w, cw)) != 0)
        return rc;
    sl_buf_clear(&w->acc);
    sl_buf_append(&w->acc, w->raw.data, w->raw.len);
    w->bi = bi;
    w->last_ts = last;
    w->open = true;
    return 0;
}

/* Builds the chunk object of j into out; *raw_bytes: its payload bytes. */
static int build_chunk(struct sl_flusher *f, struct wctx *w, struct job *j, struct sl_buf *out,
                       struct sl_chunk_meta *meta, uint64_t *raw_bytes)
{
    struct sl_buf canon = SL_BUF_INIT;
    sl_labels_format(&j->labels, &canon);
    struct sl_chunk_writer cw;
    sl_chunk_writer_init(&cw, f->o.codec, f->o.level, sl_buf_bytes(&canon));
    int rc = 0;
    *raw_bytes = 0;
    w->open = false;
    for (size_t i = 0; i < j->nblocks && rc == 0; i++) {
        rc = add_block(f, w, &cw, &j->blocks[i]);
        *raw_bytes += j->blocks[i].raw_len;
    }
    if (rc == 0)
        rc = emit(f, w, &cw);
    if (rc == 0)
        rc = sl_chunk_writer_finish(&cw, out, meta);
    else
        sl_chunk_writer_release(&cw);
    sl_buf_release(&canon);
    return rc;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int store_job(struct sl_flusher *f, struct wctx *w, struct job *j)
{
    struct sl_buf obj = SL_BUF_INIT, key = SL_BUF_INIT, err = SL_BUF_INIT;
    struct sl_chunk_meta meta;
    uint64_t raw_bytes;
    double cpu0 = thread_cpu_s();
    int rc = build_chunk(f, w, j, &obj, &meta, &raw_bytes);
    if (f->m_compress_s)
        sl_counter_add(f->m_compress_s, thread_cpu_s() - cpu0);
    if (rc != 0) {
        /* Memory corruption or a bug: nothing a retry can fix, but the data
         * stays in memory and the WAL; say so loudly every time. */
        sl_error("flush: cannot build chunk", "tenant=%.*s fp=%016" PRIx64 " error=\"%s\"",
                 (int)j->tenant.len, j->tenant.ptr, j->fp, sl_strerror(rc));
        goto out;
    }
    sl_chunk_key(&key, j->tenant, j->fp, &meta);
    rc = sl_store_put(f->o.store, key.data, obj.data, obj.len, &err);
    if (rc != 0) {
        sl_log_limited(&f->lim_put, SL_LOG_ERROR, "flush: cannot store chunk",
                       "key=%s attempt=%d error=\"%s\"", key.data, j->attempts + 1,
                       err.data ? err.data : sl_strerror(rc));
        goto out;
    }
    j->ref = (struct sl_index_chunk_ref){meta.from, meta.through, obj.len, meta.entries,
                                         sl_arena_bytes(&j->arena, sl_buf_bytes(&key))};
    if (f->m_flushed) {
        sl_counter_inc(f->m_flushed);
        sl_counter_add(f->m_bytes, (double)obj.len);
        sl_counter_add(f->m_entries, (double)meta.entries);
        sl_counter_add(f->m_raw, (double)raw_bytes);
    }
out:
    sl_buf_release(&obj);
    sl_buf_release(&key);
    sl_buf_release(&err);
    return rc;
}

static struct job *take_ready(struct sl_flusher *f, int64_t now, int64_t *wake)
{
    *wake = INT64_MAX;
    for (struct job **pp = &f->queue; *pp; pp = &(*pp)->next) {
        struct job *j = *pp;
        if (j->next_try <= now) {
            *pp = j->next;
            if (f->queue_tail == &j->next)
                f->queue_tail = pp;
            j->next = NULL;
            f->queued--;
            return j;
        }
        if (j->next_try < *wake)
            *wake = j->next_try;
    }
    return NULL;
}

static void wait_until(struct sl_flusher *f, int64_t mono_deadline)
{
    if (mono_deadline == INT64_MAX) {
        pthread_cond_wait(&f->cv, &f->mu);
        return;
    }
    /* cv uses CLOCK_MONOTONIC (see start) */
    struct timespec ts = {(time_t)(mono_deadline / SL_NS_PER_SEC),
                          (long)(mono_deadline % SL_NS_PER_SEC)};
    pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

static void *worker_main(void *arg)
{
    struct sl_flusher *f = arg;
    struct wctx w = {.cctx = ZSTD_createCCtx(), .dctx = ZSTD_createDCtx()};
    if (!w.cctx || !w.dctx) {
        /* zstd's contexts are plain allocations: out of memory, as sl_malloc */
        sl_error("flush: cannot allocate zstd contexts", NULL);
        abort();
    }
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        int64_t wake;
        struct job *j = take_ready(f, sl_mono_ns(), &wake);
        if (!j) {
            wait_until(f, wake);
            continue;
        }
        f->inflight++;
        int slot = 0;
        while (f->busy[slot])
            slot++; /* a free one exists: one slot per worker */
        f->busy[slot] = j;
        pthread_mutex_unlock(&f->mu);
        int rc = store_job(f, &w, j);
        pthread_mutex_lock(&f->mu);
        f->inflight--;
        f->busy[slot] = NULL;
        if (rc == 0) {
            j->next = f->stored;
            f->stored = j;
        } else {
            if (f->m_failures)
                sl_counter_inc(f->m_failures);
            int64_t d = BACKOFF_MIN_NS << (j->attempts < 5 ? j->attempts : 5);
            if (d > BACKOFF_MAX_NS)
                d = BACKOFF_MAX_NS;
            d += (int64_t)((uint64_t)rand() % (uint64_t)(d / 4 + 1)); /* jitter */
            j->attempts++;
            j->next_try = sl_mono_ns() + d;
            *f->queue_tail = j;
            f->queue_tail = &j->next;
            f->queued++;
        }
        if (f->m_queue)
            sl_gauge_set(f->m_queue, (double)(f->queued + f->inflight));
        pthread_cond_broadcast(&f->cv);
    }
    f->exited++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    ZSTD_freeCCtx(w.cctx);
    ZSTD_freeDCtx(w.dctx);
    sl_buf_release(&w.raw);
    sl_buf_release(&w.z);
    sl_buf_release(&w.acc);
    return NULL;
}

/* ---- index files ---- */

struct group {
    int64_t day;
    struct sl_bytes tenant;
    struct sl_index_writer *w;
    bool ok;
};

static struct group *group_for(struct group **gs, size_t *n, int64_t day, struct sl_bytes tenant)
{
    for (size_t i = 0; i < *n; i++)
        if ((*gs)[i].day == day && sl_bytes_eq((*gs)[i].tenant, tenant))
            return &(*gs)[i];
    *gs = sl_reallocarray(*gs, *n + 1, sizeof(**gs));
    struct group *g = &(*gs)[(*n)++];
    /* a copy: the jobs (and their arenas) may be freed before the groups */
    *g = (struct group){day, sl_bytes(sl_memdup(tenant.ptr, tenant.len + 1), tenant.len),
                        sl_index_writer_new(), false};
    return g;
}

static int put_index(struct sl_flusher *f, struct group *g)
{
    struct sl_buf file = SL_BUF_INIT, key = SL_BUF_INIT, err = SL_BUF_INIT;
    sl_index_writer_finish(g->w, &file);
    pthread_mutex_lock(&f->mu);
    uint64_t seq = ++f->index_seq;
    pthread_mutex_unlock(&f->mu);
    sl_index_prefix(&key, g->day, g->tenant);
    /* wall-clock nanoseconds first: names from one writer sort by time and
     * never repeat across restarts */
    sl_buf_appendf(&key, "%s-%016" PRIx64 "%04" PRIx64 ".idx", f->writer, (uint64_t)sl_now_ns(),
                   seq & 0xffff);
    int rc = sl_store_put(f->o.store, key.data, file.data, file.len, &err);
    if (rc != 0) {
        sl_log_limited(&f->lim_index, SL_LOG_ERROR, "flush: cannot store index file",
                       "key=%s error=\"%s\"", key.data, err.data ? err.data : sl_strerror(rc));
        if (f->m_index_failures)
            sl_counter_inc(f->m_index_failures);
    } else {
        sl_debug("flush: index file stored", "key=%s chunks=%zu bytes=%zu", key.data,
                 sl_index_writer_chunks(g->w), file.len);
        if (f->m_index_files)
            sl_counter_inc(f->m_index_files);
    }
    sl_buf_release(&file);
    sl_buf_release(&key);
    sl_buf_release(&err);
    return rc;
}

static bool job_indexed(const struct job *j, struct group *gs, size_t n)
{
    for (int64_t d = sl_index_day(j->ref.from); d <= sl_index_day(j->ref.through); d++)
        for (size_t i = 0; i < n; i++)
            if (gs[i].day == d && sl_bytes_eq(gs[i].tenant, j->tenant) && !gs[i].ok)
                return false;
    return true;
}

/* Writes the index files of every stored job, then releases the jobs whose
 * files were all written. Returns 0 if everything was indexed. */
static int write_indexes(struct sl_flusher *f)
{
    pthread_mutex_lock(&f->mu);
    struct job *list = f->stored;
    f->stored = NULL;
    pthread_mutex_unlock(&f->mu);
    if (!list)
        return 0;
    struct group *gs = NULL;
    size_t ng = 0;
    for (struct job *j = list; j; j = j->next)
        for (int64_t d = sl_index_day(j->ref.from); d <= sl_index_day(j->ref.through); d++)
            sl_index_writer_add(group_for(&gs, &ng, d, j->tenant)->w, &j->labels, j->fp, &j->ref);
    int rc = 0;
    for (size_t i = 0; i < ng; i++) {
        gs[i].ok = put_index(f, &gs[i]) == 0;
        if (!gs[i].ok)
            rc = SL_EIO;
    }
    struct job *keep = NULL, *next;
    for (struct job *j = list; j; j = next) {
        next = j->next;
        if (job_indexed(j, gs, ng)) {
            sl_ingester_release(f->o.ing, j->tenant, &j->labels, j->fp, j->id);
            job_free(j);
        } else {
            j->next = keep;
            keep = j;
        }
    }
    for (size_t i = 0; i < ng; i++) {
        sl_index_writer_free(gs[i].w);
        sl_free((void *)gs[i].tenant.ptr);
    }
    sl_free(gs);
    if (keep) {
        pthread_mutex_lock(&f->mu);
        struct job **tail = &keep;
        while (*tail)
            tail = &(*tail)->next;
        *tail = f->stored;
        f->stored = keep;
        pthread_mutex_unlock(&f->mu);
    }
    return rc;
}

static void remove_wal(struct sl_flusher *f)
{
    pthread_mutex_lock(&f->mu);
    struct sl_wal *wal = f->wal;
    if (wal) {
        /* Under mu, so sl_flusher_set_wal(NULL) waits for us. */
        /* Read before looking at memory: entries reach memory before their
         * record is written, so when memory is empty every record of the
         * segments older than this one is stored. */
        uint64_t cur = sl_wal_segment(wal), seq;
        if (!sl_ingester_min_wal_seq(f->o.ing, &seq)) {
            seq = cur;
            /* closed now, so that the next round can delete it too */
            sl_wal_rotate(wal);
        }
        sl_wal_remove_before(wal, seq);
    }
    pthread_mutex_unlock(&f->mu);
}

/* ---- control ---- */

/* Waits until the queue is empty and no put is running, or stop/deadline. */
static int drain(struct sl_flusher *f, int64_t deadline)
{
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    while (!f->stop && (f->queued || f->inflight)) {
        if (sl_mono_ns() >= deadline) {
            rc = SL_ETIMEDOUT;
            break;
        }
        wait_until(f, deadline);
    }
    if (f->stop)
        rc = SL_ECANCELED;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void *control_main(void *arg)
{
    struct sl_flusher *f = arg;
    int64_t next_check = sl_mono_ns() + f->o.check_period_ns;
    int64_t next_index = sl_mono_ns() + f->o.index_upload_period_ns;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        int64_t now = sl_mono_ns();
        bool force = f->force_gen != f->force_done;
        if (!force && now < next_check && now < next_index) {
            wait_until(f, next_check < next_index ? next_check : next_index);
            continue;
        }
        uint64_t gen = f->force_gen;
        int64_t deadline = INT64_MAX;
        pthread_mutex_unlock(&f->mu);
        sl_ingester_cut(f->o.ing, force, on_chunk, f);
        int rc = 0;
        if (force)
            rc = drain(f, deadline);
        if (force || now >= next_index) {
            int irc = write_indexes(f);
            if (rc == 0)
                rc = irc;
            remove_wal(f);
            next_index = sl_mono_ns() + f->o.index_upload_period_ns;
        }
        next_check = sl_mono_ns() + f->o.check_period_ns;
        pthread_mutex_lock(&f->mu);
        if (force) {
            f->force_done = gen;
            f->force_rc = rc;
            pthread_cond_broadcast(&f->cv);
        }
    }
    f->exited++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int sl_flusher_flush(struct sl_flusher *f, int64_t timeout_ns)
{
    int64_t deadline = sl_mono_ns() + timeout_ns;
    pthread_mutex_lock(&f->mu);
    uint64_t gen = ++f->force_gen;
    pthread_cond_broadcast(&f->cv);
    int rc = 0;
    while ((int64_t)(f->force_done - gen) < 0 && !f->stop) {
        if (sl_mono_ns() >= deadline) {
            rc = SL_ETIMEDOUT;
            break;
        }
        wait_until(f, deadline);
    }
    if (rc == 0)
        rc = f->stop && (int64_t)(f->force_done - gen) < 0 ? SL_ECANCELED : f->force_rc;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- lifecycle ---- */

static void register_metrics(struct sl_flusher *f, struct sl_metrics *m)
{
    f->m_flushed = sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_chunks_flushed_total",
                                                     "Chunks stored in the object store.", NULL));
    f->m_bytes = sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_chunk_stored_bytes_total",
                                                   "Bytes of the chunk objects stored.", NULL));
    f->m_entries =
        sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_chunk_stored_entries_total",
                                          "Entries in the chunk objects stored.", NULL));
    f->m_raw = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_chunk_stored_raw_bytes_total",
                           "Uncompressed block payload bytes of the chunk objects stored.", NULL));
    f->m_compress_s = sl_metric_with(sl_metrics_counter(
        m, "sluice_aggregator_flush_compress_cpu_seconds_total",
        "CPU seconds the flush workers spent building chunk objects (recompression).", NULL));
    f->m_failures = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_flush_failures_total",
                           "Chunk puts that failed (each is retried with backoff).", NULL));
    f->m_queue =
        sl_metric_with(sl_metrics_gauge(m, "sluice_aggregator_flush_queue_length",
                                        "Chunks waiting to be stored or being stored.", NULL));
    f->m_index_files = sl_metric_with(sl_metrics_counter(
        m, "sluice_aggregator_index_files_written_total", "Index files stored.", NULL));
    f->m_index_failures = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_index_failures_total",
                           "Index file puts that failed (retried at the next upload).", NULL));
}

static char *default_writer(void)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "ingester");
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            *p = '_'; /* '-' separates the sequence; '.' and '/' have no place in a name */
    return sl_strdup(host);
}

int sl_flusher_start(const struct sl_flusher_opts *o, struct sl_flusher **out)
{
    if (!o->ing || !o->store || o->check_period_ns <= 0 || o->index_upload_period_ns <= 0 ||
        o->level < 0 || o->level > (o->codec == SL_CODEC_ZSTD ? ZSTD_maxCLevel() : 9))
        return SL_EINVAL;
    struct sl_flusher *f = SL_NEW(struct sl_flusher);
    f->o = *o;
    if (f->o.level == 0)
        f->o.level = o->codec == SL_CODEC_ZSTD ? SL_FLUSH_ZSTD_LEVEL : SL_FLUSH_GZIP_LEVEL;
    if (f->o.stored_block_size > SL_CHUNK_MAX_BLOCK_RAW)
        f->o.stored_block_size = SL_CHUNK_MAX_BLOCK_RAW;
    f->writer = o->writer ? sl_strdup(o->writer) : default_writer();
    f->o.writer = f->writer;
    f->queue_tail = &f->queue;
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (o->metrics)
        register_metrics(f, o->metrics);
    f->nworkers = o->concurrency > 0 ? o->concurrency : 4;
    f->workers = sl_calloc((size_t)f->nworkers, sizeof(*f->workers));
    f->busy = sl_calloc((size_t)f->nworkers, sizeof(*f->busy));
    for (int i = 0; i < f->nworkers; i++)
        pthread_create(&f->workers[i], NULL, worker_main, f);
    pthread_create(&f->control, NULL, control_main, f);
    *out = f;
    return 0;
}

void sl_flusher_set_wal(struct sl_flusher *f, struct sl_wal *wal)
{
    pthread_mutex_lock(&f->mu);
    f->wal = wal;
    pthread_mutex_unlock(&f->mu);
}

static void flusher_free(struct sl_flusher *f)
{
    struct job *lists[2] = {f->queue, f->stored}, *j, *next;
    for (int i = 0; i < 2; i++)
        for (j = lists[i]; j; j = next) {
            next = j->next;
            job_free(j);
        }
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    sl_free(f->workers);
    sl_free(f->busy);
    sl_free(f->writer);
    sl_free(f);
}

int sl_flusher_stop_within(struct sl_flusher *f, int64_t timeout_ns)
{
    if (!f)
        return 0;
    int64_t deadline = sl_mono_ns() + timeout_ns;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_broadcast(&f->cv);
    while (f->exited < f->nworkers + 1 && sl_mono_ns() < deadline)
        wait_until(f, deadline);
    bool all = f->exited == f->nworkers + 1;
    pthread_mutex_unlock(&f->mu);
    if (!all) {
        /* A thread is still inside a store call: leave it (and f) be. */
        pthread_detach(f->control);
        for (int i = 0; i < f->nworkers; i++)
            pthread_detach(f->workers[i]);
        return SL_ETIMEDOUT;
    }
    pthread_join(f->control, NULL);
    for (int i = 0; i < f->nworkers; i++)
        pthread_join(f->workers[i], NULL);
    flusher_free(f);
    return 0;
}

void sl_flusher_stop(struct sl_flusher *f)
{
    sl_flusher_stop_within(f, INT64_MAX / 2);
}

static void pending_add(struct sl_flusher_pending *p, const struct job *j, struct sl_bytes **seen,
                        size_t *nseen)
{
    p->chunks++;
    p->entries += j->entries;
    if (p->oldest_ns == 0 || j->from < p->oldest_ns)
        p->oldest_ns = j->from;
    for (size_t i = 0; i < *nseen; i++)
        if (sl_bytes_eq((*seen)[i], j->tenant))
            return;
    *seen = sl_reallocarray(*seen, *nseen + 1, sizeof(**seen));
    (*seen)[(*nseen)++] = j->tenant;
}

void sl_flusher_pending(struct sl_flusher *f, struct sl_flusher_pending *out)
{
    *out = (struct sl_flusher_pending){0};
    struct sl_bytes *seen = NULL;
    size_t nseen = 0;
    pthread_mutex_lock(&f->mu);
    for (struct job *j = f->queue; j; j = j->next)
        pending_add(out, j, &seen, &nseen);
    for (struct job *j = f->stored; j; j = j->next)
        pending_add(out, j, &seen, &nseen);
    for (int i = 0; i < f->nworkers; i++)
        if (f->busy[i])
            pending_add(out, f->busy[i], &seen, &nseen);
    pthread_mutex_unlock(&f->mu);
    out->tenants = nseen;
    sl_free(seen);
}
