/* Disk buffer: segment files of checksummed records, a read position and a
 * persisted "state" (see buffer.h for the format). The live region runs from
 * the read position (r_idx, r_off) to the end of the last segment; a taken
 * record sits just before it until it is done. */
#include "agent/buffer/buffer.h"

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
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"

struct seg {
    uint64_t seq;
    uint64_t size;    /* bytes in the file (all of them valid records) */
    uint64_t records; /* live records in this segment */
    uint64_t lines;   /* lines of those records */
};

struct sl_buffer {
    pthread_mutex_t mu;
    int refs; /* opens of this directory (guarded by open_mu) */
    struct sl_buffer *next_open;
    char *dir;
    uint64_t max_size;
    uint64_t segment_size;
    struct seg *segs;
    size_t nseg, capseg;
    size_t r_idx;   /* read position: segment index ... */
    uint64_t r_off; /* ... and offset of the oldest live record */
    bool taken;
    uint64_t t_seq, t_off; /* start of the taken record */
    uint64_t t_len, t_lines;
    uint64_t live_bytes, live_records, live_lines;
    uint64_t version; /* of the stats, see sl_buffer_stats */
    int wfd;          /* last segment, open for appends; -1 before the first */
    int rfd;          /* segment rseq, open for reading; -1 when none */
    uint64_t rseq;
    uint64_t next_seq;  /* of the next segment: above every seq ever used */
    uint64_t saved_seq; /* last persisted state */
    uint64_t saved_off;
    bool saved_valid;
    int64_t saved_mono_ms; /* when the state was last written */
};

/* Buffers open in this process, by directory: a second open of one (a new
 * shipper after a configuration reload, while the old one still finishes its
 * disk work) shares the instance instead of recovering it under its feet. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sl_buffer *open_list;

/* --- little-endian helpers --- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* A payload length that could be a record: room for the meta, not absurd. */
static bool len_ok(uint32_t len)
{
    return len >= SL_BUFFER_REC_META && len <= SL_BUFFER_MAX_RECORD;
}

static bool seg_hdr_ok(const uint8_t *h)
{
    return memcmp(h, SL_BUFFER_SEG_MAGIC, 8) == 0 && get32(h + 8) == SL_BUFFER_VERSION;
}

static void drop_note(struct sl_buffer_drop *d, uint64_t seq, uint64_t records, uint64_t lines,
                      uint64_t bytes)
{
    if (!d || (!records && !bytes))
        return;
    if (!d->file[0])
        snprintf(d->file, sizeof(d->file), "%016" PRIx64 ".seg", seq);
    d->records += records;
    d->lines += lines;
    d->bytes += bytes;
}

size_t sl_buffer_scan(const void *data, size_t len, uint64_t *records, uint64_t *lines)
{
    const uint8_t *p = data;
    *records = *lines = 0;
    if (len < SL_BUFFER_SEG_HDR || !seg_hdr_ok(p))
        return 0;
    size_t off = SL_BUFFER_SEG_HDR;
    while (len - off >= SL_BUFFER_REC_HDR) {
        uint32_t n = get32(p + off);
        if (!len_ok(n) || len - off - SL_BUFFER_REC_HDR < n)
            break;
        const uint8_t *payload = p + off + SL_BUFFER_REC_HDR;
        if (sl_crc32c(0, payload, n) != get32(p + off + 4))
            break;
        (*records)++;
        *lines += get32(payload);
        off += SL_BUFFER_REC_HDR + n;
    }
    return off;
}

/* --- paths and files --- */

static void seg_path(const struct sl_buffer *b, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016" PRIx64 ".seg", b->dir, seq);
}

static int pread_all(int fd, void *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sl_err_from_errno(errno);
        if (r == 0)
            return SL_ECORRUPT; /* shorter than the records say */
        got += (size_t)r;
    }
    return 0;
}

static int read_fd(struct sl_buffer *b, uint64_t seq, struct sl_buf *err)
{
    if (b->rfd >= 0 && b->rseq == seq)
        return b->rfd;
    if (b->rfd >= 0)
        close(b->rfd);
    char path[4096];
    seg_path(b, seq, path, sizeof(path));
    b->rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (b->rfd < 0) {
        int rc = sl_err_from_errno(errno);
        if (err)
            sl_buf_appendf(err, "open %s: %s", path, strerror(errno));
        return rc;
    }
    b->rseq = seq;
    return b->rfd;
}

static void remove_seg(struct sl_buffer *b, size_t i)
{
    char path[4096];
    seg_path(b, b->segs[i].seq, path, sizeof(path));
    if (b->rfd >= 0 && b->rseq == b->segs[i].seq) {
        close(b->rfd);
        b->rfd = -1;
    }
    if (i == b->nseg - 1 && b->wfd >= 0) {
        close(b->wfd);
        b->wfd = -1;
    }
    unlink(path);
    memmove(b->segs + i, b->segs + i + 1, (b->nseg - i - 1) * sizeof(*b->segs));
    b->nseg--;
    if (b->r_idx > i)
        b->r_idx--;
}

/* --- position bookkeeping --- */

/* Moves the read position past fully read segments (never past the last). */
static void normalize(struct sl_buffer *b)
{
    while (b->r_idx + 1 < b->nseg && b->r_off >= b->segs[b->r_idx].size) {
        b->r_idx++;
        b->r_off = SL_BUFFER_SEG_HDR;
    }
}

/* The read position moves bytes ahead, past records holding lines. */
static void advance(struct sl_buffer *b, uint64_t bytes, uint64_t records, uint64_t lines)
{
    struct seg *s = &b->segs[b->r_idx];
    b->r_off += bytes;
    s->records -= records;
    s->lines -= lines;
    b->live_bytes -= bytes;
    b->live_records -= records;
    b->live_lines -= lines;
    normalize(b);
}

/* Drops what is left of the read segment (unreadable from here on). */
static void skip_rest(struct sl_buffer *b, struct sl_buffer_drop *d)
{
    struct seg *s = &b->segs[b->r_idx];
    drop_note(d, s->seq, s->records ? s->records : 1, s->lines, s->size - b->r_off);
    advance(b, s->size - b->r_off, s->records, s->lines);
}

static int persist(struct sl_buffer *b, struct sl_buf *err)
{
    uint64_t seq = b->taken ? b->t_seq : b->segs[b->r_idx].seq;
    uint64_t off = b->taken ? b->t_off : b->r_off;
    if (b->saved_valid && b->saved_seq == seq && b->saved_off == off)
        return 0;
    uint8_t st[SL_BUFFER_STATE_LEN];
    memcpy(st, SL_BUFFER_STATE_MAGIC, 8);
    put64(st + 8, seq);
    put32(st + 16, (uint32_t)off);
    put32(st + 20, sl_crc32c(0, st, 20));
    char path[4096];
    snprintf(path, sizeof(path), "%s/state", b->dir);
    int rc = sl_write_file_atomic(path, st, sizeof(st), err);
    if (rc == 0) {
        b->saved_seq = seq;
        b->saved_off = off;
        b->saved_valid = true;
    }
    return rc;
}

/* Deletes the segments before the oldest one still needed, then persists. */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deletes the segments before the oldest one still needed. The state is
 * written first when segments go (so it never points before what is left),
 * else at most every SL_BUFFER_STATE_PERIOD_MS (a state write costs several
 * fsyncs: once per record would slow the catch-up after an outage), or when
 * forced. A crash before the next write resends what was done since. */
static int cleanup(struct sl_buffer *b, bool force, struct sl_buf *err)
{
    if (b->nseg == 0)
        return 0;
    uint64_t floor = b->taken ? b->t_seq : b->segs[b->r_idx].seq;
    bool drop = b->nseg > 1 && b->segs[0].seq < floor;
    int64_t now = mono_ms();
    int rc = 0;
    if (drop || force || now - b->saved_mono_ms >= SL_BUFFER_STATE_PERIOD_MS) {
        rc = persist(b, err);
        b->saved_mono_ms = now;
    }
    while (b->nseg > 1 && b->segs[0].seq < floor)
        remove_seg(b, 0);
    return rc;
}

/* --- open and recovery --- */

static void destroy(struct sl_buffer *b);

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_segments(const char *dir, uint64_t **out, size_t *n, struct sl_buf *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (err)
            sl_buf_appendf(err, "open directory %s: %s", dir, strerror(errno));
        return SL_EIO;
    }
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".seg") != 0)
            continue;
        uint64_t seq = strtoull(de->d_name, &end, 16);
        if (end != de->d_name + 16)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = sl_reallocarray(*out, cap, sizeof(**out));
        }
        (*out)[(*n)++] = seq;
    }
    closedir(d);
    if (*n)
        qsort(*out, *n, sizeof(**out), cmp_u64);
    return 0;
}

static bool load_state(const char *dir, uint64_t *seq, uint64_t *off)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/state", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    uint8_t st[SL_BUFFER_STATE_LEN];
    bool ok = pread_all(fd, st, sizeof(st), 0) == 0 && memcmp(st, SL_BUFFER_STATE_MAGIC, 8) == 0 &&
              sl_crc32c(0, st, 20) == get32(st + 20);
    close(fd);
    if (ok) {
        *seq = get64(st + 8);
        *off = get32(st + 16);
    } else {
        /* Nothing is lost: every segment left is sent again from its start
         * (the aggregator drops the entries it already has). */
        sl_warn("disk buffer state unreadable, resending the buffer from its oldest segment",
                "file=%s", path);
    }
    return ok;
}

/* Checks the records of one segment from off; truncates a torn or corrupt
 * tail (or deletes a segment whose header is bad). Returns false when the
 * segment is gone. */
static bool recover_seg(struct sl_buffer *b, struct seg *s, uint64_t off,
                        struct sl_buffer_drop *corrupt, struct sl_buf *scratch)
{
    char path[4096];
    seg_path(b, s->seq, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat sb = {0};
    uint8_t h[SL_BUFFER_SEG_HDR];
    if (fd < 0 || fstat(fd, &sb) != 0 || pread_all(fd, h, sizeof(h), 0) != 0 || !seg_hdr_ok(h)) {
        drop_note(corrupt, s->seq, fd >= 0 && sb.st_size > 0, 0,
                  fd >= 0 ? (uint64_t)sb.st_size : 0);
        if (fd >= 0)
            close(fd);
        unlink(path);
        return false;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (off < SL_BUFFER_SEG_HDR || off > size)
        off = SL_BUFFER_SEG_HDR;
    s->size = size;
    s->records = s->lines = 0;
    uint64_t pos = off;
    while (pos < size) {
        uint8_t rh[SL_BUFFER_REC_HDR + 4];
        uint32_t n = 0;
        bool ok = size - pos >= SL_BUFFER_REC_HDR + SL_BUFFER_REC_META &&
                  pread_all(fd, rh, sizeof(rh), pos) == 0 && len_ok(n = get32(rh)) &&
                  size - pos - SL_BUFFER_REC_HDR >= n;
        if (ok) {
            sl_buf_clear(scratch);
            char *p = sl_buf_reserve(scratch, n);
            ok = pread_all(fd, p, n, pos + SL_BUFFER_REC_HDR) == 0 &&
                 sl_crc32c(0, p, n) == get32(rh + 4);
        }
        if (!ok) {
            /* The line count is whatever the header says when it was read. */
            uint64_t lines = size - pos >= sizeof(rh) ? get32(rh + SL_BUFFER_REC_HDR) : 0;
            drop_note(corrupt, s->seq, 1, lines <= (1u << 24) ? lines : 0, size - pos);
            if (ftruncate(fd, (off_t)pos) == 0)
                fsync(fd);
            s->size = pos;
            break;
        }
        s->records++;
        s->lines += get32(rh + SL_BUFFER_REC_HDR);
        pos += SL_BUFFER_REC_HDR + n;
    }
    close(fd);
    b->live_bytes += s->size - off;
    b->live_records += s->records;
    b->live_lines += s->lines;
    return true;
}

static int recover(struct sl_buffer *b, struct sl_buffer_drop *corrupt, struct sl_buf *err)
{
    uint64_t *seqs;
    size_t n;
    int rc = list_segments(b->dir, &seqs, &n, err);
    if (rc != 0)
        return rc;
    uint64_t sseq = 0, soff = SL_BUFFER_SEG_HDR;
    if (!load_state(b->dir, &sseq, &soff))
        sseq = 0, soff = SL_BUFFER_SEG_HDR;
    struct sl_buf scratch = SL_BUF_INIT;
    b->next_seq = (n && seqs[n - 1] > sseq ? seqs[n - 1] : sseq) + 1;
    for (size_t i = 0; i < n; i++) {
        if (seqs[i] < sseq) { /* sent before the last stop */
            char path[4096];
            seg_path(b, seqs[i], path, sizeof(path));
            unlink(path);
            continue;
        }
        struct seg s = {.seq = seqs[i]};
        uint64_t off = b->nseg == 0 && seqs[i] == sseq ? soff : SL_BUFFER_SEG_HDR;
        if (!recover_seg(b, &s, off, corrupt, &scratch))
            continue;
        if (b->nseg == b->capseg) {
            b->capseg = b->capseg ? b->capseg * 2 : 16;
            b->segs = sl_reallocarray(b->segs, b->capseg, sizeof(*b->segs));
        }
        if (b->nseg == 0)
            b->r_off = off < SL_BUFFER_SEG_HDR || off > s.size ? SL_BUFFER_SEG_HDR : off;
        b->segs[b->nseg++] = s;
    }
    sl_buf_release(&scratch);
    sl_free(seqs);
    b->r_idx = 0;
    if (b->nseg)
        normalize(b);
    return b->nseg ? cleanup(b, true, err) : 0;
}

int sl_buffer_open(const struct sl_buffer_opts *o, struct sl_buffer **out,
                   struct sl_buffer_drop *corrupt, struct sl_buf *err)
{
    *out = NULL;
    if (!o->dir || !*o->dir || o->max_size == 0) {
        if (err)
            sl_buf_append_str(err, "disk buffer: empty path or zero max_size");
        return SL_EINVAL;
    }
    if (sl_mkdir_p(o->dir) != 0) {
        if (err)
            sl_buf_appendf(err, "create directory %s: %s", o->dir, strerror(errno));
        return SL_EIO;
    }
    pthread_mutex_lock(&open_mu);
    for (struct sl_buffer *o2 = open_list; o2; o2 = o2->next_open) {
        if (strcmp(o2->dir, o->dir) == 0) {
            o2->refs++;
            pthread_mutex_lock(&o2->mu);
            o2->max_size = o->max_size;
            pthread_mutex_unlock(&o2->mu);
            pthread_mutex_unlock(&open_mu);
            *out = o2;
            return 0;
        }
    }
    struct sl_buffer *b = SL_NEW(struct sl_buffer);
    pthread_mutex_init(&b->mu, NULL);
    b->dir = sl_strdup(o->dir);
    b->max_size = o->max_size;
    b->segment_size = o->segment_size ? o->segment_size : o->max_size / 8;
    if (b->segment_size < (64u << 10))
        b->segment_size = 64u << 10;
    if (b->segment_size > SL_BUFFER_MAX_SEGMENT)
        b->segment_size = SL_BUFFER_MAX_SEGMENT;
    b->wfd = b->rfd = -1;
    b->r_off = SL_BUFFER_SEG_HDR;
    int rc = recover(b, corrupt, err);
    if (rc != 0) {
        pthread_mutex_unlock(&open_mu);
        destroy(b);
        return rc;
    }
    b->refs = 1;
    b->next_open = open_list;
    open_list = b;
    pthread_mutex_unlock(&open_mu);
    *out = b;
    return 0;
}

void sl_buffer_free(struct sl_buffer *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&open_mu);
    bool last = --b->refs == 0;
    if (last) {
        struct sl_buffer **pp = &open_list;
        while (*pp != b)
            pp = &(*pp)->next_open;
        *pp = b->next_open;
    }
    pthread_mutex_unlock(&open_mu);
    if (last)
        destroy(b);
}

static void destroy(struct sl_buffer *b)
{
    if (b->nseg && b->refs == 0)
        cleanup(b, true, NULL); /* the last close: the state is exact */
    if (b->wfd >= 0)
        close(b->wfd);
    if (b->rfd >= 0)
        close(b->rfd);
    pthread_mutex_destroy(&b->mu);
    sl_free(b->segs);
    sl_free(b->dir);
    sl_free(b);
}

/* --- append --- */

/* Drops the oldest live record (reading its header for the counts). */
static void evict_one(struct sl_buffer *b, struct sl_buffer_drop *d)
{
    struct seg *s = &b->segs[b->r_idx];
    uint8_t rh[SL_BUFFER_REC_HDR + 4];
    int fd = read_fd(b, s->seq, NULL);
    uint32_t n;
    if (fd < 0 || s->size - b->r_off < sizeof(rh) || pread_all(fd, rh, sizeof(rh), b->r_off) != 0 ||
        !len_ok(n = get32(rh)) || s->size - b->r_off - SL_BUFFER_REC_HDR < n) {
        skip_rest(b, d);
        return;
    }
    uint32_t lines = get32(rh + SL_BUFFER_REC_HDR);
    if (lines > s->lines || s->records == 0) { /* cannot be: drop what the segment holds */
        skip_rest(b, d);
        return;
    }
    drop_note(d, s->seq, 1, lines, SL_BUFFER_REC_HDR + n);
    advance(b, SL_BUFFER_REC_HDR + n, 1, lines);
}

static int new_segment(struct sl_buffer *b, struct sl_buf *err)
{
    uint64_t seq = b->next_seq;
    char path[4096];
    seg_path(b, seq, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint8_t h[SL_BUFFER_SEG_HDR] = {0};
    memcpy(h, SL_BUFFER_SEG_MAGIC, 8);
    put32(h + 8, SL_BUFFER_VERSION);
    if (fd < 0 || sl_write_all(fd, h, sizeof(h)) != 0 || fdatasync(fd) != 0 ||
        sl_fsync_dir(b->dir) != 0) {
        int rc = sl_err_from_errno(errno);
        if (err)
            sl_buf_appendf(err, "create segment %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        return rc ? rc : SL_EIO;
    }
    if (b->wfd >= 0)
        close(b->wfd);
    b->wfd = fd;
    b->next_seq = seq + 1;
    if (b->nseg == b->capseg) {
        b->capseg = b->capseg ? b->capseg * 2 : 16;
        b->segs = sl_reallocarray(b->segs, b->capseg, sizeof(*b->segs));
    }
    b->segs[b->nseg++] = (struct seg){.seq = seq, .size = SL_BUFFER_SEG_HDR};
    if (b->nseg == 1) {
        b->r_idx = 0;
        b->r_off = SL_BUFFER_SEG_HDR;
    }
    normalize(b);
    return 0;
}

static int write_record(struct sl_buffer *b, const struct sl_buffer_meta *m, struct sl_bytes body,
                        struct sl_buf *err)
{
    struct seg *s = &b->segs[b->nseg - 1];
    uint8_t h[SL_BUFFER_REC_HDR + SL_BUFFER_REC_META] = {0};
    uint32_t n = (uint32_t)(SL_BUFFER_REC_META + body.len);
    put32(h, n);
    put32(h + 8, m->lines);
    h[12] = m->protocol;
    h[13] = m->codec;
    uint32_t crc = sl_crc32c(0, h + SL_BUFFER_REC_HDR, SL_BUFFER_REC_META);
    put32(h + 4, sl_crc32c(crc, body.ptr, body.len));
    int rc = sl_write_all(b->wfd, h, sizeof(h));
    if (rc == 0 && body.len)
        rc = sl_write_all(b->wfd, body.ptr, body.len);
    if (rc == 0 && fdatasync(b->wfd) != 0)
        rc = sl_err_from_errno(errno);
    if (rc != 0) {
        if (err)
            sl_buf_appendf(err, "write segment %016" PRIx64 ".seg: %s", s->seq, strerror(errno));
        /* Leave no partial record behind for the next append to follow. */
        if (ftruncate(b->wfd, (off_t)s->size) != 0 || lseek(b->wfd, 0, SEEK_END) < 0) {
            close(b->wfd);
            b->wfd = -1; /* the next append starts a new segment */
        }
        return SL_EIO;
    }
    s->size += SL_BUFFER_REC_HDR + n;
    s->records++;
    s->lines += m->lines;
    b->live_bytes += SL_BUFFER_REC_HDR + n;
    b->live_records++;
    b->live_lines += m->lines;
    return 0;
}

int sl_buffer_append(struct sl_buffer *b, const struct sl_buffer_meta *m, struct sl_bytes body,
                     struct sl_buffer_drop *evicted, struct sl_buf *err)
{
    if (body.len > SL_BUFFER_MAX_RECORD - SL_BUFFER_REC_META) {
        if (err)
            sl_buf_appendf(err, "record of %zu bytes is too large for the disk buffer", body.len);
        return SL_ETOOBIG;
    }
    uint64_t need = SL_BUFFER_REC_HDR + SL_BUFFER_REC_META + body.len;
    pthread_mutex_lock(&b->mu);
    bool evicting = false;
    while (b->live_records && b->live_bytes + need > b->max_size) {
        evict_one(b, evicted);
        evicting = true;
    }
    int rc = 0;
    if (evicting)
        cleanup(b, false, NULL); /* a failed state write only means a resend later */
    if (b->wfd < 0 || (b->segs[b->nseg - 1].size + need > b->segment_size &&
                       b->segs[b->nseg - 1].size > SL_BUFFER_SEG_HDR))
        rc = new_segment(b, err);
    if (rc == 0)
        rc = write_record(b, m, body, err);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* --- take and done --- */

static int take_locked(struct sl_buffer *b, struct sl_buffer_meta *m, struct sl_buf *body,
                       struct sl_buffer_drop *corrupt, struct sl_buf *err)
{
    for (;;) {
        if (b->nseg)
            normalize(b);
        if (!b->live_records)
            return SL_ENOENT;
        struct seg *s = &b->segs[b->r_idx];
        int fd = read_fd(b, s->seq, err);
        if (fd == SL_ENOENT) { /* deleted under us: what it held is gone */
            skip_rest(b, corrupt);
            continue;
        }
        if (fd < 0)
            return SL_EIO;
        uint8_t rh[SL_BUFFER_REC_HDR];
        uint32_t n = 0;
        int rc = 0;
        if (s->size - b->r_off < SL_BUFFER_REC_HDR ||
            (rc = pread_all(fd, rh, sizeof(rh), b->r_off)) != 0 || !len_ok(n = get32(rh)) ||
            s->size - b->r_off - SL_BUFFER_REC_HDR < n) {
            if (rc != 0 && rc != SL_ECORRUPT)
                goto io_fail;
            skip_rest(b, corrupt);
            continue;
        }
        sl_buf_clear(body);
        char *p = sl_buf_reserve(body, n);
        rc = pread_all(fd, p, n, b->r_off + SL_BUFFER_REC_HDR);
        if (rc != 0 && rc != SL_ECORRUPT)
            goto io_fail;
        if (rc != 0 || sl_crc32c(0, p, n) != get32(rh + 4)) {
            skip_rest(b, corrupt);
            continue;
        }
        sl_buf_commit(body, n);
        uint32_t lines = get32((uint8_t *)p);
        m->lines = lines;
        m->protocol = (uint8_t)p[4];
        m->codec = (uint8_t)p[5];
        sl_buf_consume(body, SL_BUFFER_REC_META);
        b->taken = true;
        b->t_seq = s->seq;
        b->t_off = b->r_off;
        b->t_len = SL_BUFFER_REC_HDR + n;
        b->t_lines = lines <= s->lines ? lines : s->lines;
        advance(b, SL_BUFFER_REC_HDR + n, 1, lines <= s->lines ? lines : s->lines);
        return 0;
    io_fail:
        if (err)
            sl_buf_appendf(err, "read segment %016" PRIx64 ".seg: %s", s->seq, sl_strerror(rc));
        return SL_EIO;
    }
}

int sl_buffer_take(struct sl_buffer *b, struct sl_buffer_meta *m, struct sl_buf *body,
                   struct sl_buffer_drop *corrupt, struct sl_buf *err)
{
    pthread_mutex_lock(&b->mu);
    int rc = b->taken ? SL_EEXIST : take_locked(b, m, body, corrupt, err);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void sl_buffer_untake(struct sl_buffer *b, struct sl_buffer_drop *dropped)
{
    pthread_mutex_lock(&b->mu);
    if (b->taken) {
        size_t i = 0;
        while (i < b->nseg && b->segs[i].seq != b->t_seq)
            i++;
        /* The record comes back only if nothing was evicted after it (the
         * live region must stay one run); else it goes the way they went. */
        uint64_t end = b->t_off + b->t_len;
        bool next_to_r =
            i < b->nseg &&
            ((b->r_idx == i && b->r_off == end) ||
             (b->r_idx == i + 1 && b->r_off == SL_BUFFER_SEG_HDR && b->segs[i].size == end));
        if (next_to_r) {
            b->r_idx = i;
            b->r_off = b->t_off;
            b->segs[i].records++;
            b->segs[i].lines += b->t_lines;
            b->live_bytes += b->t_len;
            b->live_records++;
            b->live_lines += b->t_lines;
        } else {
            drop_note(dropped, b->t_seq, 1, b->t_lines, b->t_len);
        }
        b->taken = false;
    }
    pthread_mutex_unlock(&b->mu);
}

int sl_buffer_done(struct sl_buffer *b, struct sl_buf *err)
{
    pthread_mutex_lock(&b->mu);
    b->taken = false;
    int rc = cleanup(b, false, err);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void sl_buffer_stats(struct sl_buffer *b, struct sl_buffer_stats *out)
{
    pthread_mutex_lock(&b->mu);
    out->bytes = b->live_bytes + (b->taken ? b->t_len : 0);
    out->records = b->live_records + b->taken;
    out->lines = b->live_lines + (b->taken ? b->t_lines : 0);
    out->segments = b->nseg;
    out->version = ++b->version;
    pthread_mutex_unlock(&b->mu);
}
