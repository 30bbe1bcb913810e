/* Chunk disk cache: an in-memory table of the files (hash -> entry, and an
 * LRU list) under one mutex; file I/O happens outside the lock. A file
 * evicted while another thread reads it is unlinked under the reader, which
 * keeps its open descriptor. */
#include "aggregator/querier/chunk_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/wire.h"

#define MAGIC    "SLCC"
#define SUFFIX   ".chunk"
#define TMP_PREF ".tmp-"

struct entry {
    uint64_t h1, h2;
    uint64_t size;             /* file bytes */
    int64_t mtime;             /* at open (for the initial order) */
    struct entry *prev, *next; /* LRU: head is the most recent */
    struct entry *hnext;
};

struct sl_chunk_cache {
    char *dir;
    uint64_t max_bytes;
    pthread_mutex_t mu;
    struct entry **tab;
    size_t tabcap, n;
    struct entry *head, *tail;
    uint64_t bytes;
    atomic_uint_fast64_t tmpseq;
    struct sl_log_limit lim;
    struct sl_metric *m_hits, *m_misses, *m_evictions, *m_errors, *m_bytes, *m_files;
};

static void hashes(const char *key, uint64_t *h1, uint64_t *h2)
{
    size_t n = strlen(key);
    *h1 = sl_xxh3(key, n);
    *h2 = ((uint64_t)sl_crc32c(0, key, n) << 32) | (uint32_t)n;
}

static void path_of(const struct sl_chunk_cache *c, uint64_t h1, uint64_t h2, struct sl_buf *out)
{
    sl_buf_appendf(out, "%s/%02x/%016" PRIx64 "-%016" PRIx64 SUFFIX, c->dir, (unsigned)(h1 >> 56),
                   h1, h2);
}

static struct entry *find(struct sl_chunk_cache *c, uint64_t h1, uint64_t h2)
{
    if (!c->tabcap)
        return NULL;
    for (struct entry *e = c->tab[h1 & (c->tabcap - 1)]; e; e = e->hnext)
        if (e->h1 == h1 && e->h2 == h2)
            return e;
    return NULL;
}

static void lru_unlink(struct sl_chunk_cache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(struct sl_chunk_cache *c, struct entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void insert(struct sl_chunk_cache *c, struct entry *e)
{
    if (2 * (c->n + 1) > c->tabcap) {
        size_t ncap = c->tabcap ? 2 * c->tabcap : 256;
        struct entry **nt = sl_calloc(ncap, sizeof *nt);
        for (size_t i = 0; i < c->tabcap; i++)
            for (struct entry *x = c->tab[i], *nx; x; x = nx) {
                nx = x->hnext;
                x->hnext = nt[x->h1 & (ncap - 1)];
                nt[x->h1 & (ncap - 1)] = x;
            }
        sl_free(c->tab);
        c->tab = nt;
        c->tabcap = ncap;
    }
    e->hnext = c->tab[e->h1 & (c->tabcap - 1)];
    c->tab[e->h1 & (c->tabcap - 1)] = e;
    c->n++;
    c->bytes += e->size;
    lru_front(c, e);
}

static void remove_entry(struct sl_chunk_cache *c, struct entry *e)
{
    struct entry **pp = &c->tab[e->h1 & (c->tabcap - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->n--;
    c->bytes -= e->size;
}

static void update_gauges(struct sl_chunk_cache *c)
{
    if (c->m_bytes) {
        sl_gauge_set(c->m_bytes, (double)c->bytes);
        sl_gauge_set(c->m_files, (double)c->n);
    }
}

static void count(struct sl_metric *m, double v)
{
    if (m)
        sl_counter_add(m, v);
}

/* Removes least recently used entries until the total fits; called with
 * the lock held, the victims (detached) are returned for unlinking. */
static struct entry *evict_locked(struct sl_chunk_cache *c)
{
    struct entry *victims = NULL;
    while (c->bytes > c->max_bytes && c->tail) {
        struct entry *e = c->tail;
        remove_entry(c, e);
        e->hnext = victims;
        victims = e;
    }
    return victims;
}

static void unlink_victims(struct sl_chunk_cache *c, struct entry *v)
{
    size_t n = 0;
    while (v) {
        struct entry *nx = v->hnext;
        struct sl_buf p = SL_BUF_INIT;
        path_of(c, v->h1, v->h2, &p);
        if (unlink(p.data) != 0 && errno != ENOENT) {
            count(c->m_errors, 1);
            sl_log_limited(&c->lim, SL_LOG_WARN, "chunk cache: cannot remove an evicted file",
                           "path=%s error=\"%s\"", p.data, strerror(errno));
        }
        sl_buf_release(&p);
        sl_free(v);
        v = nx;
        n++;
    }
    count(c->m_evictions, (double)n);
}

static void register_metrics(struct sl_chunk_cache *c, struct sl_metrics *m)
{
    c->m_hits = sl_metric_with(sl_metrics_counter(m, "sluice_aggregator_chunk_cache_hits_total",
                                                  "Chunks read from the local disk cache.", NULL));
    c->m_misses = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_chunk_cache_misses_total",
                           "Chunks not in the local disk cache (fetched from the store).", NULL));
    c->m_evictions = sl_metric_with(sl_metrics_counter(
        m, "sluice_aggregator_chunk_cache_evictions_total",
        "Chunk files removed from the disk cache to stay under max_size.", NULL));
    c->m_errors = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_chunk_cache_errors_total",
                           "Chunk cache files that could not be written, read or removed "
                           "(the store is used instead).",
                           NULL));
    c->m_bytes = sl_metric_with(sl_metrics_gauge(m, "sluice_aggregator_chunk_cache_bytes",
                                                 "Bytes of chunk files in the disk cache.", NULL));
    c->m_files = sl_metric_with(sl_metrics_gauge(m, "sluice_aggregator_chunk_cache_files",
                                                 "Chunk files in the disk cache.", NULL));
}

static int mtime_cmp(const void *a, const void *b)
{
    const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

struct scan {
    struct entry **v;
    size_t n, cap;
};

/* One <2 hex> subdirectory: entries for cache files, temporary files of an
 * interrupted write removed. */
static void scan_subdir(const char *sub, struct scan *s)
{
    DIR *d = opendir(sub);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        struct sl_buf p = SL_BUF_INIT;
        sl_buf_appendf(&p, "%s/%s", sub, name);
        uint64_t h1, h2;
        char tail[16];
        struct stat st;
        if (strncmp(name, TMP_PREF, strlen(TMP_PREF)) == 0) {
            unlink(p.data);
        } else if (strlen(name) == 33 + strlen(SUFFIX) &&
                   sscanf(name, "%16" SCNx64 "-%16" SCNx64 "%15s", &h1, &h2, tail) == 3 &&
                   strcmp(tail, SUFFIX) == 0 && stat(p.data, &st) == 0 && S_ISREG(st.st_mode)) {
            if (s->n == s->cap) {
                s->cap = s->cap ? 2 * s->cap : 256;
                s->v = sl_reallocarray(s->v, s->cap, sizeof *s->v);
            }
            struct entry *e = SL_NEW(struct entry);
            e->h1 = h1;
            e->h2 = h2;
            e->size = (uint64_t)st.st_size;
            e->mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            s->v[s->n++] = e;
        }
        sl_buf_release(&p);
    }
    closedir(d);
}

int sl_chunk_cache_open(const char *dir, uint64_t max_bytes, struct sl_metrics *m,
                        struct sl_chunk_cache **out, struct sl_buf *err)
{
    *out = NULL;
    if (sl_mkdir_p(dir) != 0) {
        sl_buf_appendf(err, "cannot create %s: %s", dir, strerror(errno));
        return SL_EIO;
    }
    DIR *d = opendir(dir);
    if (!d) {
        sl_buf_appendf(err, "cannot read %s: %s", dir, strerror(errno));
        return SL_EIO;
    }
    struct sl_chunk_cache *c = SL_NEW(struct sl_chunk_cache);
    c->dir = sl_strdup(dir);
    c->max_bytes = max_bytes;
    pthread_mutex_init(&c->mu, NULL);
    if (m)
        register_metrics(c, m);
    struct scan s = {0};
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strlen(de->d_name) != 2 || !strchr("0123456789abcdef", de->d_name[0]) ||
            !strchr("0123456789abcdef", de->d_name[1]))
            continue;
        struct sl_buf sub = SL_BUF_INIT;
        sl_buf_appendf(&sub, "%s/%s", dir, de->d_name);
        scan_subdir(sub.data, &s);
        sl_buf_release(&sub);
    }
    closedir(d);
    if (s.n)
        qsort(s.v, s.n, sizeof *s.v, mtime_cmp);
    for (size_t i = 0; i < s.n; i++) /* oldest first: the newest ends at the head */
        if (find(c, s.v[i]->h1, s.v[i]->h2))
            sl_free(s.v[i]);
        else
            insert(c, s.v[i]);
    sl_free(s.v);
    unlink_victims(c, evict_locked(c));
    update_gauges(c);
    sl_info("chunk cache opened", "dir=%s files=%zu bytes=%" PRIu64 " max_bytes=%" PRIu64, dir,
            c->n, c->bytes, max_bytes);
    *out = c;
    return 0;
}

void sl_chunk_cache_close(struct sl_chunk_cache *c)
{
    if (!c)
        return;
    for (struct entry *e = c->head, *nx; e; e = nx) {
        nx = e->next;
        sl_free(e);
    }
    sl_free(c->tab);
    pthread_mutex_destroy(&c->mu);
    sl_free(c->dir);
    sl_free(c);
}

/* Drops the entry of a file found bad (and the file). */
static void drop_bad(struct sl_chunk_cache *c, uint64_t h1, uint64_t h2, const char *path,
                     const char *why)
{
    pthread_mutex_lock(&c->mu);
    struct entry *e = find(c, h1, h2);
    if (e) {
        remove_entry(c, e);
        sl_free(e);
    }
    update_gauges(c);
    pthread_mutex_unlock(&c->mu);
    unlink(path);
    count(c->m_errors, 1);
    sl_log_limited(&c->lim, SL_LOG_WARN, "chunk cache: bad file removed", "path=%s reason=\"%s\"",
                   path, why);
}

/* Reads the file into out after its header; 0, SL_ENOENT, or SL_ECORRUPT. */
static int read_file(int fd, const char *key, struct sl_buf *out)
{
    struct stat st;
    size_t klen = strlen(key), hdr = 4 + 4 + klen + 8;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < hdr)
        return SL_ECORRUPT;
    size_t total = (size_t)st.st_size;
    char *p = sl_buf_reserve(out, total);
    size_t got = 0;
    while (got < total) {
        ssize_t r = pread(fd, p + got, total - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return SL_ECORRUPT;
        got += (size_t)r;
    }
    if (memcmp(p, MAGIC, 4) != 0 || sl_get_le32(p + 4) != klen || memcmp(p + 8, key, klen) != 0 ||
        sl_get_le64(p + 8 + klen) != total - hdr)
        return SL_ECORRUPT;
    memmove(p, p + hdr, total - hdr);
    sl_buf_commit(out, total - hdr);
    return 0;
}

int sl_chunk_cache_get(struct sl_chunk_cache *c, const char *key, struct sl_buf *out)
{
    uint64_t h1, h2;
    hashes(key, &h1, &h2);
    pthread_mutex_lock(&c->mu);
    bool known = find(c, h1, h2) != NULL;
    pthread_mutex_unlock(&c->mu);
    if (!known) {
        count(c->m_misses, 1);
        return SL_ENOENT;
    }
    struct sl_buf p = SL_BUF_INIT;
    path_of(c, h1, h2, &p);
    int fd = open(p.data, O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 ? SL_ENOENT : read_file(fd, key, out);
    if (fd < 0) { /* removed under us (an eviction racing a rewrite) */
        pthread_mutex_lock(&c->mu);
        struct entry *e = find(c, h1, h2);
        if (e) {
            remove_entry(c, e);
            sl_free(e);
        }
        update_gauges(c);
        pthread_mutex_unlock(&c->mu);
    } else if (rc == SL_ECORRUPT) {
        drop_bad(c, h1, h2, p.data, "damaged or not this key's file");
        rc = SL_ENOENT;
    } else if (rc == 0) {
        futimens(fd, NULL); /* the LRU order survives a restart */
        pthread_mutex_lock(&c->mu);
        struct entry *e = find(c, h1, h2);
        if (e) {
            lru_unlink(c, e);
            lru_front(c, e);
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (fd >= 0)
        close(fd);
    sl_buf_release(&p);
    count(rc == 0 ? c->m_hits : c->m_misses, 1);
    return rc;
}

static int write_tmp(const char *tmp, const char *key, const void *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && sl_mkdir_parent(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return SL_EIO;
    size_t klen = strlen(key);
    char h[8];
    memcpy(h, MAGIC, 4);
    sl_put_le32(h + 4, (uint32_t)klen);
    char l[8];
    sl_put_le64(l, len);
    int rc = sl_write_all(fd, h, 8);
    if (rc == 0)
        rc = sl_write_all(fd, key, klen);
    if (rc == 0)
        rc = sl_write_all(fd, l, 8);
    if (rc == 0)
        rc = sl_write_all(fd, data, len);
    if (close(fd) != 0 && rc == 0)
        rc = SL_EIO;
    return rc;
}

void sl_chunk_cache_put(struct sl_chunk_cache *c, const char *key, const void *data, size_t len)
{
    uint64_t h1, h2;
    hashes(key, &h1, &h2);
    uint64_t size = 16 + strlen(key) + len;
    if (size > c->max_bytes)
        return;
    pthread_mutex_lock(&c->mu);
    bool known = find(c, h1, h2) != NULL;
    pthread_mutex_unlock(&c->mu);
    if (known)
        return;
    struct sl_buf p = SL_BUF_INIT, tmp = SL_BUF_INIT;
    path_of(c, h1, h2, &p);
    sl_buf_appendf(&tmp, "%s/%02x/" TMP_PREF "%016" PRIx64 "-%" PRIu64, c->dir,
                   (unsigned)(h1 >> 56), h1, (uint64_t)atomic_fetch_add(&c->tmpseq, 1));
    int rc = write_tmp(tmp.data, key, data, len);
    if (rc == 0 && rename(tmp.data, p.data) != 0)
        rc = SL_EIO;
    if (rc != 0) {
        unlink(tmp.data);
        count(c->m_errors, 1);
        sl_log_limited(&c->lim, SL_LOG_WARN, "chunk cache: cannot write a file",
                       "path=%s error=\"%s\"", p.data, strerror(errno));
    } else {
        pthread_mutex_lock(&c->mu);
        struct entry *victims = NULL;
        if (!find(c, h1, h2)) {
            struct entry *e = SL_NEW(struct entry);
            e->h1 = h1;
            e->h2 = h2;
            e->size = size;
            insert(c, e);
            victims = evict_locked(c);
        }
        update_gauges(c);
        pthread_mutex_unlock(&c->mu);
        unlink_victims(c, victims);
    }
    sl_buf_release(&tmp);
    sl_buf_release(&p);
}

uint64_t sl_chunk_cache_bytes(struct sl_chunk_cache *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t b = c->bytes;
    pthread_mutex_unlock(&c->mu);
    return b;
}

size_t sl_chunk_cache_files(struct sl_chunk_cache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}
