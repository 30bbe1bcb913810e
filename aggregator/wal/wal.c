/* WAL: segment files, a writer thread doing group commit, and replay. See
 * wal.h for the contract and common/format.h for the layout. */
#include "aggregator/wal/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/err.h"
#include "common/format.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"

#define DEFAULT_SEGMENT_SIZE (64u << 20)

struct rec {
    struct rec *next;
    char *payload;
    size_t n;
    sl_wal_done_fn done;
    void *ud;
    int status;
};

struct sl_wal {
    char *dir;
    enum sl_wal_fsync fsync;
    size_t segment_size;

    uv_loop_t *loop;
    uv_async_t async;
    bool started, closing;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rec *pend, **pend_tail; /* to the writer, under mu */
    struct rec *done, **done_tail; /* to the loop, under mu */
    bool stop;                     /* under mu */
    bool rotate_req;               /* under mu: sl_wal_rotate */
    int failed;                    /* atomic */

    /* writer thread only (after start) */
    int fd;
    uint64_t next_seq;
    size_t cur_size;
    uint64_t cur_seq; /* atomic: the segment being written (0 before start) */

    struct sl_metric *m_fsyncs, *m_records, *m_bytes, *m_segments, *m_failures;
    struct sl_metric *m_removed;
    struct sl_metric *m_replay_records, *m_replay_bytes, *m_corrupt, *m_fsync_seconds;

    void (*closed)(void *ud);
    void *closed_ud;
};

int sl_wal_fsync_parse(const char *s, enum sl_wal_fsync *out)
{
    if (strcmp(s, "batch") == 0)
        *out = SL_WAL_FSYNC_BATCH;
    else if (strcmp(s, "always") == 0)
        *out = SL_WAL_FSYNC_ALWAYS;
    else if (strcmp(s, "never") == 0)
        *out = SL_WAL_FSYNC_NEVER;
    else
        return SL_EINVAL;
    return 0;
}

static void inc(struct sl_metric *m, double v)
{
    if (m)
        sl_counter_add(m, v);
}

static void register_metrics(struct sl_wal *w, struct sl_metrics *m)
{
    if (!m)
        return;
#define COUNTER(field, name, help)                                                                 \
    w->field = sl_metric_with(sl_metrics_counter(m, name, help, NULL))
    COUNTER(m_fsyncs, "sluice_aggregator_wal_fsyncs_total", "fsync calls of the WAL writer.");
    COUNTER(m_records, "sluice_aggregator_wal_records_total", "Records written to the WAL.");
    COUNTER(m_bytes, "sluice_aggregator_wal_bytes_total",
            "Bytes written to the WAL, record headers included.");
    COUNTER(m_segments, "sluice_aggregator_wal_segments_created_total",
            "WAL segment files created.");
    COUNTER(m_failures, "sluice_aggregator_wal_failures_total",
            "Records that could not be made durable (write or fsync failed).");
    COUNTER(m_replay_records, "sluice_aggregator_wal_replay_records_total",
            "Records read back from the WAL at start.");
    COUNTER(m_replay_bytes, "sluice_aggregator_wal_replay_bytes_total",
            "Payload bytes read back from the WAL at start.");
    COUNTER(m_corrupt, "sluice_aggregator_wal_corrupt_tails_total",
            "Torn or corrupt segment tails truncated during replay.");
    COUNTER(m_removed, "sluice_aggregator_wal_segments_removed_total",
            "WAL segments deleted because every entry in them is in a stored chunk.");
#undef COUNTER
    w->m_fsync_seconds =
        sl_metric_with(sl_metrics_histogram(m, "sluice_aggregator_wal_fsync_duration_seconds",
                                            "Duration of WAL fsyncs.", NULL, NULL, 0));
}

int sl_wal_open(const struct sl_wal_opts *o, struct sl_wal **out, struct sl_buf *err)
{
    if (sl_mkdir_p(o->dir) != 0) {
        sl_buf_appendf(err, "wal: cannot create %s: %s", o->dir, strerror(errno));
        return SL_EIO;
    }
    struct sl_wal *w = SL_NEW(struct sl_wal);
    w->dir = sl_strdup(o->dir);
    w->fsync = o->fsync;
    w->segment_size = o->segment_size ? o->segment_size : DEFAULT_SEGMENT_SIZE;
    w->fd = -1;
    w->pend_tail = &w->pend;
    w->done_tail = &w->done;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    register_metrics(w, o->metrics);
    *out = w;
    return 0;
}

bool sl_wal_failed(const struct sl_wal *w)
{
    return __atomic_load_n(&w->failed, __ATOMIC_ACQUIRE) != 0;
}

static void put_u32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static char *segment_path(const struct sl_wal *w, uint64_t seq)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_appendf(&b, "%s/%016" PRIx64 ".wal", w->dir, seq);
    return sl_buf_detach(&b, NULL);
}

/* ---- replay ---- */

static int seq_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool parse_segment_name(const char *name, uint64_t *seq)
{
    if (strlen(name) != 20 || strcmp(name + 16, ".wal") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *seq = v;
    return true;
}

static int list_segments(const struct sl_wal *w, uint64_t **seqs, size_t *n, struct sl_buf *err)
{
    DIR *d = opendir(w->dir);
    if (!d) {
        sl_buf_appendf(err, "wal: cannot open %s: %s", w->dir, strerror(errno));
        return SL_EIO;
    }
    size_t cap = 0;
    *seqs = NULL;
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        if (!parse_segment_name(de->d_name, &seq))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *seqs = sl_reallocarray(*seqs, cap, sizeof(**seqs));
        }
        (*seqs)[(*n)++] = seq;
    }
    closedir(d);
    if (*n)
        qsort(*seqs, *n, sizeof(**seqs), seq_cmp);
    return 0;
}

static int read_full(int fd, void *p, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int check_header(int fd, const char *path, struct sl_buf *err)
{
    unsigned char h[SL_WAL_HEADER_SIZE];
    if (read_full(fd, h, sizeof(h), 0) != 0) {
        sl_buf_appendf(err, "wal: %s: cannot read header", path);
        return SL_EIO;
    }
    if (memcmp(h, SL_WAL_MAGIC, 5) != 0) {
        sl_buf_appendf(err, "wal: %s: not a WAL segment (bad magic)", path);
        return SL_EUNSUPP;
    }
    if (h[5] != SL_WAL_VERSION) {
        sl_buf_appendf(err, "wal: %s: unsupported version %u", path, h[5]);
        return SL_EUNSUPP;
    }
    return 0;
}

/* Truncates a torn or corrupt tail at good, counts and logs it. */
static int truncate_tail(struct sl_wal *w, int fd, const char *path, off_t good, off_t size,
                         const char *why, struct sl_wal_replay_stats *st, struct sl_buf *err)
{
    sl_warn("wal: truncating torn or corrupt segment tail",
            "segment=%s offset=%lld dropped_bytes=%lld reason=%s", path, (long long)good,
            (long long)(size - good), why);
    inc(w->m_corrupt, 1);
    st->corrupt_tails++;
    if (ftruncate(fd, good) != 0 || fsync(fd) != 0) {
        sl_buf_appendf(err, "wal: %s: cannot truncate: %s", path, strerror(errno));
        return SL_EIO;
    }
    return 0;
}

/* Reads one record at off. Returns 1 for a record (payload in buf, *next set),
 * 0 at a clean end, or -1 with *why set for a torn or corrupt record. */
static int read_record(int fd, off_t off, off_t size, struct sl_buf *buf, off_t *next,
                       const char **why)
{
    if (off == size)
        return 0;
    unsigned char h[SL_WAL_RECORD_HEADER];
    if (size - off < SL_WAL_RECORD_HEADER || read_full(fd, h, sizeof(h), off) != 0) {
        *why = "short_header";
        return -1;
    }
    uint32_t len = get_u32le(h), crc = get_u32le(h + 4);
    if ((uint64_t)len > SL_WAL_MAX_RECORD || (off_t)len > size - off - SL_WAL_RECORD_HEADER) {
        *why = "bad_length";
        return -1;
    }
    sl_buf_clear(buf);
    char *p = sl_buf_reserve(buf, len);
    if (read_full(fd, p, len, off + SL_WAL_RECORD_HEADER) != 0) {
        *why = "short_payload";
        return -1;
    }
    sl_buf_commit(buf, len);
    if (sl_crc32c(0, p, len) != crc) {
        *why = "crc_mismatch";
        return -1;
    }
    *next = off + SL_WAL_RECORD_HEADER + (off_t)len;
    return 1;
}

static int replay_segment(struct sl_wal *w, const char *path, sl_wal_replay_fn fn, void *ud,
                          struct sl_wal_replay_stats *st, struct sl_buf *err)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        sl_buf_appendf(err, "wal: cannot open %s: %s", path, strerror(errno));
        return SL_EIO;
    }
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0) {
        sl_buf_appendf(err, "wal: cannot stat %s: %s", path, strerror(errno));
        rc = SL_EIO;
        goto out;
    }
    if (sb.st_size < SL_WAL_HEADER_SIZE) {
        /* Torn while being created: it holds no record. */
        rc = truncate_tail(w, fd, path, 0, sb.st_size, "short_segment_header", st, err);
        if (rc == 0 && unlink(path) != 0)
            sl_warn("wal: cannot remove empty segment", "segment=%s", path);
        goto out;
    }
    if ((rc = check_header(fd, path, err)) != 0)
        goto out;
    st->segments++;
    struct sl_buf buf = SL_BUF_INIT;
    off_t off = SL_WAL_HEADER_SIZE, next = 0;
    const char *why = NULL;
    int r;
    while ((r = read_record(fd, off, sb.st_size, &buf, &next, &why)) == 1) {
        st->records++;
        st->bytes += buf.len;
        inc(w->m_replay_records, 1);
        inc(w->m_replay_bytes, (double)buf.len);
        if (fn(sl_buf_bytes(&buf), ud) != 0)
            st->apply_errors++;
        off = next;
    }
    if (r < 0)
        rc = truncate_tail(w, fd, path, off, sb.st_size, why, st, err);
    /* Every start opens a new segment; one that never got a record is noise. */
    if (rc == 0 && off == SL_WAL_HEADER_SIZE && unlink(path) == 0)
        st->segments--;
    sl_buf_release(&buf);
out:
    close(fd);
    return rc;
}

int sl_wal_replay(struct sl_wal *w, sl_wal_replay_fn fn, void *ud, struct sl_wal_replay_stats *st,
                  struct sl_buf *err)
{
    struct sl_wal_replay_stats local = {0};
    if (!st)
        st = &local;
    memset(st, 0, sizeof(*st));
    uint64_t *seqs;
    size_t n;
    int rc = list_segments(w, &seqs, &n, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = segment_path(w, seqs[i]);
        rc = replay_segment(w, path, fn, ud, st, err);
        sl_free(path);
    }
    if (n)
        w->next_seq = seqs[n - 1] + 1;
    sl_free(seqs);
    if (st->apply_errors)
        sl_warn("wal: records could not be applied", "count=%zu", st->apply_errors);
    return rc;
}

/* ---- writer ---- */

static int segment_open(struct sl_wal *w)
{
    char *path = segment_path(w, w->next_seq);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        sl_error("wal: cannot create segment", "segment=%s error=\"%s\"", path, strerror(errno));
        sl_free(path);
        return SL_EIO;
    }
    unsigned char h[SL_WAL_HEADER_SIZE] = {0};
    memcpy(h, SL_WAL_MAGIC, 5);
    h[5] = SL_WAL_VERSION;
    if (sl_write_all(fd, h, sizeof(h)) != 0 ||
        (w->fsync != SL_WAL_FSYNC_NEVER && sl_fsync_dir(w->dir) != 0)) {
        sl_error("wal: cannot initialise segment", "segment=%s error=\"%s\"", path,
                 strerror(errno));
        close(fd);
        sl_free(path);
        return SL_EIO;
    }
    sl_debug("wal: new segment", "segment=%s", path);
    sl_free(path);
    w->fd = fd;
    w->cur_size = SL_WAL_HEADER_SIZE;
    __atomic_store_n(&w->cur_seq, w->next_seq, __ATOMIC_RELEASE);
    w->next_seq++;
    inc(w->m_segments, 1);
    return 0;
}

static int do_fsync(struct sl_wal *w)
{
    if (w->fsync == SL_WAL_FSYNC_NEVER)
        return 0;
    int64_t t0 = sl_mono_ns();
    int rc = fdatasync(w->fd);
    inc(w->m_fsyncs, 1);
    if (w->m_fsync_seconds)
        sl_histogram_observe(w->m_fsync_seconds, (double)(sl_mono_ns() - t0) / 1e9);
    return rc == 0 ? 0 : SL_EIO;
}

static int rotate(struct sl_wal *w)
{
    if (do_fsync(w) != 0)
        return SL_EIO;
    close(w->fd);
    w->fd = -1;
    return segment_open(w);
}

static int write_record(struct sl_wal *w, const struct rec *r)
{
    if (w->cur_size > SL_WAL_HEADER_SIZE &&
        w->cur_size + SL_WAL_RECORD_HEADER + r->n > w->segment_size && rotate(w) != 0)
        return SL_EIO;
    unsigned char h[SL_WAL_RECORD_HEADER];
    put_u32le(h, (uint32_t)r->n);
    put_u32le(h + 4, sl_crc32c(0, r->payload, r->n));
    struct iovec iov[2] = {{h, sizeof(h)}, {r->payload, r->n}};
    size_t total = sizeof(h) + r->n, done = 0;
    while (done < total) {
        ssize_t k = pwritev(w->fd, iov, 2, (off_t)(w->cur_size + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            sl_error("wal: write failed", "error=\"%s\"", strerror(errno));
            /* Leave no partial record behind for a later append to follow. */
            if (ftruncate(w->fd, (off_t)w->cur_size) != 0)
                sl_error("wal: cannot truncate after a failed write", NULL);
            return SL_EIO;
        }
        done += (size_t)k;
        size_t skip = (size_t)k;
        for (int i = 0; i < 2; i++) {
            size_t m = skip < iov[i].iov_len ? skip : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + m;
            iov[i].iov_len -= m;
            skip -= m;
        }
    }
    w->cur_size += total;
    inc(w->m_records, 1);
    inc(w->m_bytes, (double)total);
    return 0;
}

static void write_batch(struct sl_wal *w, struct rec *list)
{
    bool wrote = false;
    for (struct rec *r = list; r; r = r->next) {
        if (sl_wal_failed(w) || write_record(w, r) != 0) {
            __atomic_store_n(&w->failed, 1, __ATOMIC_RELEASE);
            r->status = SL_EIO;
            continue;
        }
        wrote = true;
    }
    if (wrote && !sl_wal_failed(w) && do_fsync(w) != 0) {
        sl_error("wal: fsync failed", "error=\"%s\"", strerror(errno));
        __atomic_store_n(&w->failed, 1, __ATOMIC_RELEASE);
    }
    if (sl_wal_failed(w)) {
        for (struct rec *r = list; r; r = r->next) {
            r->status = SL_EIO;
            inc(w->m_failures, 1);
        }
    }
}

/* sl_wal_rotate: a segment holding records is closed and a new one
 * started, so that the old one can be deleted once its entries are stored. */
static void rotate_requested(struct sl_wal *w)
{
    if (w->cur_size > SL_WAL_HEADER_SIZE && !sl_wal_failed(w) && rotate(w) != 0) {
        sl_error("wal: cannot start a new segment", "error=\"%s\"", strerror(errno));
        __atomic_store_n(&w->failed, 1, __ATOMIC_RELEASE);
    }
}

static void *writer_main(void *arg)
{
    struct sl_wal *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->pend && !w->stop && !w->rotate_req)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->rotate_req) {
            w->rotate_req = false;
            pthread_mutex_unlock(&w->mu);
            rotate_requested(w);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        if (!w->pend)
            break;
        struct rec *list = w->pend;
        w->pend = NULL;
        w->pend_tail = &w->pend;
        pthread_mutex_unlock(&w->mu);

        write_batch(w, list);

        pthread_mutex_lock(&w->mu);
        *w->done_tail = list;
        while (*w->done_tail)
            w->done_tail = &(*w->done_tail)->next;
        uv_async_send(&w->async);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void deliver_done(struct sl_wal *w)
{
    pthread_mutex_lock(&w->mu);
    struct rec *list = w->done;
    w->done = NULL;
    w->done_tail = &w->done;
    pthread_mutex_unlock(&w->mu);
    while (list) {
        struct rec *r = list;
        list = r->next;
        r->done(r->ud, r->status);
        sl_free(r->payload);
        sl_free(r);
    }
}

static void on_async(uv_async_t *h)
{
    deliver_done(h->data);
}

int sl_wal_start(struct sl_wal *w, uv_loop_t *loop, struct sl_buf *err)
{
    if (segment_open(w) != 0) {
        sl_buf_appendf(err, "wal: cannot create a segment in %s", w->dir);
        return SL_EIO;
    }
    w->loop = loop;
    uv_async_init(loop, &w->async, on_async);
    w->async.data = w;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        sl_buf_appendf(err, "wal: cannot start the writer thread");
        uv_close((uv_handle_t *)&w->async, NULL);
        close(w->fd);
        w->fd = -1;
        return SL_EIO;
    }
    w->started = true;
    return 0;
}

void sl_wal_append(struct sl_wal *w, const void *payload, size_t n, sl_wal_done_fn done, void *ud)
{
    if (!w->started || w->closing) {
        done(ud, w->closing ? SL_ECANCELED : SL_EINVAL);
        return;
    }
    if ((uint64_t)n > SL_WAL_MAX_RECORD) {
        done(ud, SL_ETOOBIG);
        return;
    }
    struct rec *r = SL_NEW(struct rec);
    r->payload = sl_memdup(payload, n ? n : 1);
    r->n = n;
    r->done = done;
    r->ud = ud;
    pthread_mutex_lock(&w->mu);
    *w->pend_tail = r;
    w->pend_tail = &r->next;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wal_free(struct sl_wal *w)
{
    void (*closed)(void *) = w->closed;
    void *ud = w->closed_ud;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    sl_free(w->dir);
    sl_free(w);
    if (closed)
        closed(ud);
}

static void on_async_closed(uv_handle_t *h)
{
    wal_free(h->data);
}

void sl_wal_close(struct sl_wal *w, void (*closed)(void *ud), void *ud)
{
    w->closed = closed;
    w->closed_ud = ud;
    if (!w->started) {
        wal_free(w);
        return;
    }
    w->closing = true;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    /* The writer finishes the pending batch first: a short wait at shutdown. */
    pthread_join(w->thread, NULL);
    deliver_done(w);
    if (w->fd >= 0)
        close(w->fd);
    uv_close((uv_handle_t *)&w->async, on_async_closed);
}

/* ---- segment removal ---- */

uint64_t sl_wal_segment(const struct sl_wal *w)
{
    return __atomic_load_n(&w->cur_seq, __ATOMIC_ACQUIRE);
}

int sl_wal_purge(const char *dir, uint64_t before, size_t *removed)
{
    struct sl_wal tmp = {.dir = (char *)dir};
    uint64_t *seqs;
    size_t n, k = 0;
    struct sl_buf err = SL_BUF_INIT;
    int rc = list_segments(&tmp, &seqs, &n, &err);
    sl_buf_release(&err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && seqs[i] < before; i++) {
        char *path = segment_path(&tmp, seqs[i]);
        if (unlink(path) != 0 && errno != ENOENT) {
            sl_warn("wal: cannot remove segment", "segment=%s error=\"%s\"", path, strerror(errno));
            rc = SL_EIO;
        } else {
            k++;
        }
        sl_free(path);
    }
    sl_free(seqs);
    if (k && sl_fsync_dir(dir) != 0 && rc == 0)
        rc = SL_EIO;
    if (removed)
        *removed = k;
    return rc;
}

void sl_wal_rotate(struct sl_wal *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->started && !w->stop) {
        w->rotate_req = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

int sl_wal_remove_before(struct sl_wal *w, uint64_t seq)
{
    uint64_t cur = sl_wal_segment(w);
    if (!w->started || seq > cur)
        seq = w->started ? cur : 0;
    if (seq == 0)
        return 0;
    size_t removed = 0;
    int rc = sl_wal_purge(w->dir, seq, &removed);
    if (removed) {
        inc(w->m_removed, (double)removed);
        sl_debug("wal: segments removed", "count=%zu before=%016llx", removed,
                 (unsigned long long)seq);
    }
    return rc;
}
