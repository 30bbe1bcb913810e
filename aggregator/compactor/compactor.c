/* Compactor: merges a period's index files, applies retention
 * (compactor.h). */
#include "aggregator/compactor/compactor.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/index/index.h"
#include "aggregator/store/store.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"

struct sl_compactor {
    struct sl_compactor_opts o;
    pthread_mutex_t run_mu; /* one run at a time */
    pthread_mutex_t mu;     /* stop, cv */
    pthread_cond_t cv;
    bool stop, has_thread;
    const char *crash_at; /* test hook, see crash_point */
    pthread_t thread;
    struct sl_metric *m_runs_ok, *m_runs_fail, *m_merged, *m_deleted, *m_orphans;
};

/* XXH3 of every chunk key an index file references (kept by the run): a
 * collision only spares an orphan, never deletes a referenced chunk. */
struct refset {
    uint64_t *v;
    size_t n, cap;
    bool incomplete; /* an index file could not be read: no sweep this run */
};

static void refset_add(struct refset *r, struct sl_bytes key)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->v = sl_reallocarray(r->v, r->cap, sizeof(*r->v));
    }
    r->v[r->n++] = sl_xxh3(key.ptr, key.len);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool refset_has(const struct refset *r, const char *key)
{
    uint64_t h = sl_xxh3(key, strlen(key));
    return bsearch(&h, r->v, r->n, sizeof(*r->v), u64_cmp) != NULL;
}

struct strlist {
    char **v;
    size_t n, cap;
};

static void strlist_push(struct strlist *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = sl_reallocarray(l->v, l->cap, sizeof(*l->v));
    }
    l->v[l->n++] = sl_strndup(s, n);
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        sl_free(l->v[i]);
    sl_free(l->v);
    *l = (struct strlist){0};
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and removes duplicates. */
static void strlist_uniq(struct strlist *l)
{
    if (l->n == 0)
        return;
    qsort(l->v, l->n, sizeof(*l->v), str_cmp);
    size_t out = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[out - 1]) == 0)
            sl_free(l->v[i]);
        else
            l->v[out++] = l->v[i];
    }
    l->n = out;
}

static int on_key(const char *key, uint64_t size, void *ud)
{
    (void)size;
    size_t n = strlen(key);
    if (n > 4 && memcmp(key + n - 4, ".idx", 4) == 0)
        strlist_push(ud, key, n);
    return 0;
}

/* Length of "index/<day>/<tenant>/" at the start of key, 0 if malformed. */
static size_t prefix_len(const char *key)
{
    const char *p = key;
    for (int slashes = 0; *p; p++)
        if (*p == '/' && ++slashes == 3)
            return (size_t)(p - key) + 1;
    return 0;
}

/* ---- one prefix ---- */

struct merge {
    struct sl_index_writer *w;
    struct strlist *expired;
    struct refset *refs;
    int64_t cutoff; /* refs with through < cutoff expire; INT64_MIN: none */
    size_t dropped;
};

static int on_series(const struct sl_labels *ls, uint64_t fp, const struct sl_index_chunk_ref *refs,
                     size_t nrefs, void *ud)
{
    struct merge *m = ud;
    for (size_t i = 0; i < nrefs; i++) {
        if (refs[i].through < m->cutoff) {
            strlist_push(m->expired, (const char *)refs[i].key.ptr, refs[i].key.len);
            m->dropped++;
        } else {
            sl_index_writer_add(m->w, ls, fp, &refs[i]);
            refset_add(m->refs, refs[i].key);
        }
    }
    return 0;
}

/* Reads one input into m. 0: merged; 1: gone or damaged (left out, not
 * deleted); <0: store error (the prefix is not compacted this run). */
static int read_input(struct sl_store *st, const char *key, struct merge *m)
{
    struct sl_buf b = SL_BUF_INIT, err = SL_BUF_INIT;
    int rc = sl_store_get(st, key, &b, &err);
    if (rc == SL_ENOENT) {
        rc = 1;
    } else if (rc != 0) {
        sl_error("compactor: cannot read index file", "key=%s error=\"%s\"", key,
                 err.data ? err.data : sl_strerror(rc));
    } else {
        struct sl_index_reader *r = NULL;
        rc = sl_index_reader_open_mem(b.data, b.len, &r);
        if (rc == 0)
            rc = sl_index_reader_select(r, NULL, 0, NULL, NULL, INT64_MIN, INT64_MAX, on_series, m);
        sl_index_reader_close(r);
        if (rc != 0) {
            /* Half of it may be in the writer already: harmless, the
             * references are valid; the file itself stays. */
            sl_error("compactor: damaged index file left out", "key=%s error=\"%s\"", key,
                     sl_strerror(rc));
            rc = 1;
        }
    }
    sl_buf_release(&b);
    sl_buf_release(&err);
    return rc;
}

static int delete_key(struct sl_store *st, const char *key, const char *what)
{
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_store_delete(st, key, &err);
    if (rc != 0)
        sl_error("compactor: cannot delete", "what=%s key=%s error=\"%s\"", what, key,
                 err.data ? err.data : sl_strerror(rc));
    sl_buf_release(&err);
    return rc;
}

/* Writes the merged file of prefix (when it holds anything). */
static int write_merged(struct sl_store *st, const char *prefix, size_t plen,
                        struct sl_index_writer *w, struct sl_compactor_stats *s)
{
    if (sl_index_writer_chunks(w) == 0)
        return 0;
    struct sl_buf file = SL_BUF_INIT, key = SL_BUF_INIT, err = SL_BUF_INIT;
    sl_index_writer_finish(w, &file);
    sl_buf_append(&key, prefix, plen);
    sl_buf_appendf(&key, "compactor-%020" PRId64 ".idx", sl_now_ns());
    int rc = sl_store_put(st, key.data, file.data, file.len, &err);
    if (rc != 0)
        sl_error("compactor: cannot write merged index file", "key=%s error=\"%s\"", key.data,
                 err.data ? err.data : sl_strerror(rc));
    else
        s->files_written++;
    sl_buf_release(&file);
    sl_buf_release(&key);
    sl_buf_release(&err);
    return rc;
}

/* Test hook for the integration tests of interrupted runs: with
 * SLUICE_TEST_COMPACTOR_CRASH=<step> the process dies at that step as if
 * killed ("after_merge": merged file written, inputs not deleted;
 * "after_index": inputs deleted, expired chunks not). */
static void crash_point(const struct sl_compactor *c, const char *step)
{
    if (c->crash_at && strcmp(c->crash_at, step) == 0) {
        sl_warn("compactor: test crash", "step=%s", step);
        _exit(86);
    }
}

/* Compacts the files keys[0..n) of one prefix. */
static int compact_prefix(struct sl_compactor *c, char **keys, size_t n, int64_t cutoff,
                          struct refset *refs, struct sl_compactor_stats *s)
{
    struct sl_store *st = c->o.store;
    size_t plen = prefix_len(keys[0]);
    struct strlist expired = {0}, inputs = {0};
    struct merge m = {
        .w = sl_index_writer_new(), .expired = &expired, .refs = refs, .cutoff = cutoff};
    int rc = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        rc = read_input(st, keys[i], &m);
        if (rc == 0)
            strlist_push(&inputs, keys[i], strlen(keys[i]));
        else
            refs->incomplete = true; /* its references are unknown */
    }
    if (rc < 0 || (inputs.n <= 1 && m.dropped == 0))
        goto out;
    rc = write_merged(st, keys[0], plen, m.w, s);
    if (rc != 0)
        goto out;
    crash_point(c, "after_merge");
    size_t files = 0, chunks = 0;
    for (size_t i = 0; i < inputs.n; i++)
        if (delete_key(st, inputs.v[i], "index") == 0)
            files++;
    if (expired.n)
        crash_point(c, "after_index");
    strlist_uniq(&expired);
    for (size_t i = 0; i < expired.n; i++)
        if (delete_key(st, expired.v[i], "chunk") == 0)
            chunks++;
    s->files_merged += files;
    s->chunks_deleted += chunks;
    s->refs_dropped += m.dropped;
    if (c->m_merged) {
        sl_counter_add(c->m_merged, (double)files);
        sl_counter_add(c->m_deleted, (double)chunks);
    }
    sl_info("compactor: compacted",
            "prefix=%.*s files_merged=%zu chunks_kept=%zu chunks_deleted=%zu", (int)plen, keys[0],
            files, sl_index_writer_chunks(m.w), chunks);
out:
    sl_index_writer_free(m.w);
    strlist_free(&expired);
    strlist_free(&inputs);
    return rc < 0 ? rc : 0;
}

/* ---- orphaned chunks ---- */

struct sweep {
    const struct refset *refs;
    int64_t cutoff; /* objects written before this may be collected */
    struct strlist orphans;
    size_t undated;
};

static int on_chunk_object(const struct sl_store_object *o, void *ud)
{
    struct sweep *w = ud;
    if (refset_has(w->refs, o->key))
        return 0;
    if (o->mtime_ns == 0)
        w->undated++;
    else if (o->mtime_ns < w->cutoff)
        strlist_push(&w->orphans, o->key, strlen(o->key));
    return 0;
}

/* Deletes the chunk objects that no index file references and that were
 * written more than orphan_grace before now_ns: left behind by a run or a
 * retention interrupted between its index and chunk steps, or by a flusher
 * that died between a chunk put and its index upload. A chunk younger than
 * the grace period may be in flight (stored, its index file not written
 * yet) and is never touched. */
static int sweep_orphans(struct sl_compactor *c, struct refset *refs, int64_t now_ns,
                         struct sl_compactor_stats *s)
{
    if (refs->incomplete) {
        sl_warn("compactor: orphan sweep skipped", "reason=\"an index file could not be read\"");
        return 0;
    }
    qsort(refs->v, refs->n, sizeof(*refs->v), u64_cmp);
    struct sweep w = {.refs = refs, .cutoff = now_ns - c->o.orphan_grace_ns};
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_store_list_objects(c->o.store, "chunks/", on_chunk_object, &w, &err);
    if (rc != 0) {
        sl_error("compactor: cannot list chunks, orphan sweep skipped", "error=\"%s\"",
                 err.data ? err.data : sl_strerror(rc));
        goto out;
    }
    if (w.undated)
        sl_warn("compactor: unreferenced chunks without a write time are never collected",
                "count=%zu", w.undated);
    for (size_t i = 0; i < w.orphans.n; i++) {
        if (delete_key(c->o.store, w.orphans.v[i], "orphaned chunk") != 0)
            continue;
        s->orphans_deleted++;
        if (c->m_orphans)
            sl_counter_inc(c->m_orphans);
        sl_info("compactor: orphaned chunk deleted", "key=%s grace_s=%lld", w.orphans.v[i],
                (long long)(c->o.orphan_grace_ns / SL_NS_PER_SEC));
    }
out:
    strlist_free(&w.orphans);
    sl_buf_release(&err);
    return rc;
}

int sl_compactor_run(struct sl_compactor *c, int64_t now_ns, struct sl_compactor_stats *stats)
{
    struct sl_compactor_stats local = {0};
    struct sl_compactor_stats *s = stats ? stats : &local;
    *s = (struct sl_compactor_stats){0};
    if (now_ns == 0)
        now_ns = sl_now_ns();
    int64_t cutoff = c->o.retention_ns > 0 ? now_ns - c->o.retention_ns : INT64_MIN;
    pthread_mutex_lock(&c->run_mu);
    struct strlist keys = {0};
    struct refset refs = {0};
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_store_list(c->o.store, "index/", on_key, &keys, &err);
    if (rc != 0)
        sl_error("compactor: cannot list index files", "error=\"%s\"",
                 err.data ? err.data : sl_strerror(rc));
    sl_buf_release(&err);
    qsort(keys.v, keys.n, sizeof(*keys.v), str_cmp);
    for (size_t i = 0; i < keys.n && rc == 0;) {
        size_t plen = prefix_len(keys.v[i]), j = i + 1;
        if (plen == 0) {
            i++;
            continue;
        }
        while (j < keys.n && strncmp(keys.v[j], keys.v[i], plen) == 0 &&
               prefix_len(keys.v[j]) == plen)
            j++;
        s->prefixes++;
        int prc = compact_prefix(c, keys.v + i, j - i, cutoff, &refs, s);
        if (prc != 0) {
            refs.incomplete = true;
            if (rc == 0)
                rc = prc;
        }
        i = j;
    }
    /* The index files were listed after now_ns: a chunk written more than
     * the grace period before it had its index file written by then. */
    if (rc == 0 && c->o.orphan_grace_ns > 0)
        rc = sweep_orphans(c, &refs, now_ns, s);
    sl_free(refs.v);
    strlist_free(&keys);
    pthread_mutex_unlock(&c->run_mu);
    if (c->m_runs_ok)
        sl_counter_inc(rc == 0 ? c->m_runs_ok : c->m_runs_fail);
    sl_info("compactor: run done",
            "result=%s prefixes=%zu files_merged=%zu files_written=%zu chunks_deleted=%zu "
            "orphans_deleted=%zu",
            rc == 0 ? "success" : "failure", s->prefixes, s->files_merged, s->files_written,
            s->chunks_deleted, s->orphans_deleted);
    return rc;
}

/* ---- background thread ---- */

static void *compactor_main(void *arg)
{
    struct sl_compactor *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int64_t deadline = sl_mono_ns() + c->o.interval_ns;
        while (!c->stop && sl_mono_ns() < deadline) {
            struct timespec ts = {(time_t)(deadline / SL_NS_PER_SEC),
                                  (long)(deadline % SL_NS_PER_SEC)};
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        if (c->stop)
            break;
        pthread_mutex_unlock(&c->mu);
        sl_compactor_run(c, 0, NULL);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int sl_compactor_start(const struct sl_compactor_opts *o, struct sl_compactor **out)
{
    if (!o->store || o->retention_ns < 0 || o->orphan_grace_ns < 0)
        return SL_EINVAL;
    struct sl_compactor *c = SL_NEW(struct sl_compactor);
    c->o = *o;
    c->crash_at = getenv("SLUICE_TEST_COMPACTOR_CRASH");
    pthread_mutex_init(&c->run_mu, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (o->metrics) {
        struct sl_metric_family *runs =
            sl_metrics_counter(o->metrics, "sluice_aggregator_compactor_runs_total",
                               "Compactor runs by result.", "result");
        c->m_runs_ok = sl_metric_with(runs, "success");
        c->m_runs_fail = sl_metric_with(runs, "failure");
        c->m_merged = sl_metric_with(
            sl_metrics_counter(o->metrics, "sluice_aggregator_compactor_index_files_merged_total",
                               "Index files merged into another and deleted.", NULL));
        c->m_deleted = sl_metric_with(
            sl_metrics_counter(o->metrics, "sluice_aggregator_compactor_chunks_deleted_total",
                               "Chunk objects deleted by retention.", NULL));
        c->m_orphans = sl_metric_with(sl_metrics_counter(
            o->metrics, "sluice_aggregator_compactor_orphaned_chunks_deleted_total",
            "Chunk objects deleted because no index file referenced them after the grace "
            "period.",
            NULL));
    }
    if (o->interval_ns > 0) {
        pthread_create(&c->thread, NULL, compactor_main, c);
        c->has_thread = true;
    }
    *out = c;
    return 0;
}

void sl_compactor_stop(struct sl_compactor *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->has_thread)
        pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->run_mu);
    sl_free(c);
}
