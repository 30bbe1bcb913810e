/* Agent wiring. The modules know nothing of each other; this file owns the
 * file table, the read scheduling and the shutdown sequence. */
#include "agent/agent.h"

#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/discover/discover.h"
#include "agent/discover/sources.h"
#include "agent/kube/kube.h"
#include "agent/pipeline/pipeline.h"
#include "agent/positions/positions.h"
#include "agent/reload.h"
#include "agent/ship/ship.h"
#include "agent/tail/ftable.h"
#include "agent/tail/tail.h"
#include "common/err.h"
#include "common/http_server.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/version.h"

struct afile;

/* A shipper stream of a file: its own labels, or a label set the pipeline
 * made for some of its entries. */
struct astream {
    struct sl_ship_stream s; /* first: acks map back with a cast */
    struct afile *f;
};

/* The labels of a file's entries: its own set, the pipeline's state for
 * them, and the sets the pipeline derives. A file has one, and a second if it
 * is a pod log opened before the pod's metadata was known, from when it is
 * (the first stays until the file is freed: entries in flight point to it). */
struct lset {
    struct astream ss;
    struct sl_pipeline_stream *ps; /* NULL without a pipeline */
    struct astream **derived;      /* by pipeline label-set id - 1 */
    size_t nderived;
    struct sl_labels labels;
    struct sl_label *lab;
    struct sl_buf labmem;
};

/* A tailed file: the tail state plus what the agent hangs on it. */
struct afile {
    struct sl_tail t;
    struct sl_ftable_node node; /* in a->files */
    struct lset ls;             /* the labels it was opened with */
    struct lset *pod_ls;        /* with the pod labels that came later, or NULL */
    struct lset *cur;           /* &ls or pod_ls: new entries go there */
    struct sl_agent *a;
    bool pod_pending; /* a pod log whose pod's labels were not known yet */
    int source;       /* SL_DISCOVER_PODS or the files: index */
    bool queued;      /* in the ready queue */
    bool retired;     /* rotated away or deleted: drained, then freed */
    bool deleted;
    bool at_eof; /* the last read found nothing new */
    int64_t last_data_mono;
    struct afile *qnext;
    struct afile *rnext; /* in a->retired */
};

struct sl_agent {
    uv_loop_t *loop;
    const struct sl_agent_config *cfg;
    struct sl_metrics *metrics;
    struct sl_http_server *http;
    struct sl_discover *disc;
    struct sl_ship *ship;
    struct sl_positions pos;
    struct sl_file_sources sources;
    struct sl_pipeline *pipeline; /* NULL: no stages configured */
    struct sl_kube *kube;         /* NULL unless kubernetes.api.enabled */
    bool kube_wait;               /* discovery waits for the first pod list */
    uv_timer_t ml_timer;          /* multiline max_wait_time deadlines */
    struct sl_ftable files;       /* every open file, active and retired */
    struct afile *retired;        /* draining */
    size_t nactive;
    bool positions_dirty;
    struct afile *qhead, *qtail;
    char *scratch;
    uv_idle_t pump;
    uv_timer_t sync_timer;
    uv_timer_t retire_timer;
    uv_timer_t stop_timer;
    uv_signal_t sigint, sigterm, sighup;
    bool stopping;
    /* SIGHUP: reading pauses while what is in flight drains, then the
     * sources, pipeline and shipper are rebuilt from next_cfg. */
    struct sl_reload_source src;
    bool has_src;
    bool reloading;
    bool reload_again;               /* another SIGHUP came meanwhile */
    bool rebuilt;                    /* reloaded at least once */
    bool resuming;                   /* resume_known() after a reload */
    struct sl_agent_config *own_cfg; /* a reloaded configuration, or NULL */
    struct sl_agent_config *next_cfg;
    int64_t reload_deadline;
    uv_timer_t reload_timer;
    int64_t stop_deadline;
    int open_handles;
    struct sl_metric *m_lines, *m_bytes, *m_malformed, *m_split, *m_files;
    struct sl_metric *m_truncated, *m_missed_bytes, *m_missed_files, *m_rotated;
    struct sl_metric *m_behind, *m_late_labels;
    struct sl_metric *m_reload_ok, *m_reload_failed, *m_reload_ts, *m_reload_last_ok;
};

/* Stopping, or draining for a reload: no reading, no new files. */
static bool paused(const struct sl_agent *a)
{
    return a->stopping || a->reloading;
}

static struct sl_log_limit malformed_lim, split_lim;

static struct afile *afile_of(struct sl_ftable_node *n)
{
    return (struct afile *)((char *)n - offsetof(struct afile, node));
}

/* --- ready queue and pump --- */

static void on_pump(uv_idle_t *h);

static void kick(struct sl_agent *a)
{
    if (!paused(a) && a->qhead && !sl_ship_full(a->ship))
        uv_idle_start(&a->pump, on_pump);
}

static void enqueue(struct sl_agent *a, struct afile *f)
{
    if (f->queued)
        return;
    f->queued = true;
    f->qnext = NULL;
    if (a->qtail)
        a->qtail->qnext = f;
    else
        a->qhead = f;
    a->qtail = f;
    kick(a);
}

static struct afile *dequeue(struct sl_agent *a)
{
    struct afile *f = a->qhead;
    if (!f)
        return NULL;
    a->qhead = f->qnext;
    if (!a->qhead)
        a->qtail = NULL;
    f->queued = false;
    return f;
}

/* --- parser callbacks --- */

struct read_ctx {
    struct sl_agent *a;
    struct afile *f;
};

static void on_entry(void *ud, const struct sl_parsed_entry *e)
{
    struct read_ctx *c = ud;
    sl_counter_inc(c->a->m_lines);
    if (e->split) {
        sl_counter_inc(c->a->m_split);
        sl_log_limited(&split_lim, SL_LOG_WARN, "long line split", "file=%s max_line_size=%lld",
                       c->f->t.path, (long long)c->a->cfg->read_max_line_size);
    }
    sl_tail_hold(&c->f->t);
    uint64_t cookie = sl_tail_cookie(&c->f->t, e->safe_off);
    struct lset *ls = c->f->cur;
    if (ls->ps) {
        /* Held before the push: the pipeline may report it (or an older
         * block) at once; a line joined to a held block is no entry. */
        struct sl_pipeline_in in = {e->ts_ns, e->line, e->stream == SL_STREAM_STDERR, cookie};
        if (!sl_pipeline_push(ls->ps, &in))
            c->f->t.unacked--;
        return;
    }
    sl_ship_add(c->a->ship, &ls->ss.s, e->ts_ns, e->line, cookie);
}

static struct sl_ship_stream *derived_stream(struct afile *f, uint32_t id,
                                             const struct sl_labels *labels)
{
    struct lset *ls = f->cur; /* the stream emitting: an older one was flushed */
    if (id > ls->nderived) {
        ls->derived = sl_reallocarray(ls->derived, id, sizeof(*ls->derived));
        memset(ls->derived + ls->nderived, 0, (id - ls->nderived) * sizeof(*ls->derived));
        ls->nderived = id;
    }
    if (!ls->derived[id - 1]) {
        struct astream *as = SL_NEW(struct astream);
        as->s.labels = labels; /* owned by the pipeline stream, freed with it */
        as->f = f;
        ls->derived[id - 1] = as;
    }
    return &ls->derived[id - 1]->s;
}

static void maybe_release(struct sl_agent *a, struct afile *f);

/* An entry the pipeline finished: shipped, or dropped (already counted). A
 * dropped entry was held like any other; nothing will acknowledge it, so it
 * acknowledges itself when it is the only one in flight, and otherwise
 * leaves the position to the acknowledgements of the others. */
static void on_pipeline_out(void *ud, const struct sl_pipeline_out *o)
{
    struct afile *f = ud;
    struct sl_tail *t = &f->t;
    if (!o->dropped) {
        struct sl_ship_stream *st =
            o->label_set ? derived_stream(f, o->label_set, o->labels) : &f->cur->ss.s;
        sl_ship_add_meta(f->a->ship, st, o->ts_ns, o->line, o->meta, o->nmeta, o->cookie);
        return;
    }
    if ((o->cookie >> 48) != (t->epoch & 0xffff)) {
        if (t->stale)
            t->stale--;
    } else if (t->unacked == 1 && t->stale == 0) {
        sl_tail_ack(t, 1, o->cookie);
        f->a->positions_dirty = true;
    } else if (t->unacked) {
        t->unacked--;
    }
    if (f->retired && !f->queued)
        maybe_release(f->a, f);
}

static void on_ml_timer(uv_timer_t *h);

/* Arms the multiline timer for the next block deadline (emitting the ones
 * that passed). */
static void arm_multiline(struct sl_agent *a)
{
    if (!sl_pipeline_has_multiline(a->pipeline) || paused(a))
        return;
    int64_t now = sl_mono_ns();
    int64_t next = sl_pipeline_expire(a->pipeline, now);
    if (next < 0) {
        uv_timer_stop(&a->ml_timer);
        return;
    }
    uint64_t ms = (uint64_t)((next - now) / SL_NS_PER_MS) + 1;
    uv_timer_start(&a->ml_timer, on_ml_timer, ms, 0);
}

static void on_ml_timer(uv_timer_t *h)
{
    arm_multiline(h->data);
}

static void on_malformed(void *ud, struct sl_bytes line, const char *reason)
{
    struct read_ctx *c = ud;
    char q[160];
    sl_counter_inc(c->a->m_malformed);
    sl_log_limited(&malformed_lim, SL_LOG_WARN, "malformed line dropped",
                   "file=%s reason=%s line=%s", c->f->t.path, reason,
                   sl_log_quote(q, sizeof(q), line.ptr, line.len));
}

static const struct sl_parse_cbs parse_cbs = {on_entry, on_malformed};

/* --- file table --- */

static bool taken(void *ud, uint64_t dev, uint64_t ino)
{
    struct sl_agent *a = ud;
    return sl_ftable_find(&a->files, dev, ino) != NULL;
}

static void count_files(struct sl_agent *a)
{
    sl_gauge_set(a->m_files, (double)a->files.n);
}

static void lset_release(struct lset *ls)
{
    sl_pipeline_stream_free(ls->ps);
    for (size_t i = 0; i < ls->nderived; i++)
        sl_free(ls->derived[i]);
    sl_free(ls->derived);
    sl_buf_release(&ls->labmem);
    sl_free(ls->lab);
}

static void file_free(struct sl_agent *a, struct afile *f)
{
    sl_ftable_remove(&a->files, &f->node);
    count_files(a);
    a->positions_dirty = true;
    sl_tail_release(&f->t);
    lset_release(&f->ls);
    if (f->pod_ls)
        lset_release(f->pod_ls);
    sl_free(f->pod_ls);
    sl_free(f);
}

static void unlink_retired(struct sl_agent *a, struct afile *f)
{
    for (struct afile **pp = &a->retired; *pp; pp = &(*pp)->rnext) {
        if (*pp == f) {
            *pp = f->rnext;
            return;
        }
    }
}

/* Frees a retired file once it is read to its end and acknowledged, and (if
 * it was not deleted) no bytes came for rotate_wait. */
static void maybe_release(struct sl_agent *a, struct afile *f)
{
    if (!f->retired || f->queued || !f->at_eof || !sl_tail_settled(&f->t))
        return;
    int64_t idle = sl_mono_ns() - f->last_data_mono;
    if (!f->deleted && idle < a->cfg->read_rotate_wait)
        return;
    sl_info("released file", "file=%s name=%s offset=%llu", f->t.path, f->t.name,
            (unsigned long long)f->t.read_off);
    unlink_retired(a, f);
    file_free(a, f);
    if (!a->retired)
        uv_timer_stop(&a->retire_timer);
}

/* Labels are set once per label set; names and values live in labmem, sized
 * once so the views stay put. */
static void set_labels(struct lset *ls, struct afile *f, const char *const *names,
                       const struct sl_bytes *vals, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += vals[i].len + strlen(names[i]);
    char *p = sl_buf_reserve(&ls->labmem, total + 1);
    ls->lab = sl_calloc(n ? n : 1, sizeof(*ls->lab));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!vals[i].len && strcmp(names[i], "filename") != 0)
            continue; /* an empty label is no label */
        size_t nl = strlen(names[i]);
        memcpy(p, names[i], nl);
        ls->lab[k].name = sl_bytes(p, nl);
        p += nl;
        memcpy(p, vals[i].ptr, vals[i].len);
        ls->lab[k].value = sl_bytes(p, vals[i].len);
        p += vals[i].len;
        k++;
    }
    sl_buf_commit(&ls->labmem, total);
    ls->labels.items = ls->lab;
    ls->labels.n = k;
    sl_labels_sort(&ls->labels);
    ls->ss.s.labels = &ls->labels;
    ls->ss.f = f;
}

/* Path labels plus the pod's API labels (a name clashing with a path label
 * is skipped). */
static void kube_labels(struct lset *ls, struct afile *f, const char *const *names4,
                        const struct sl_bytes *vals4, const struct sl_label *kl, size_t nk)
{
    const char **names = sl_calloc(nk + 4, sizeof(char *));
    struct sl_bytes *vals = sl_calloc(nk + 4, sizeof(*vals));
    struct sl_buf nmem = SL_BUF_INIT;
    size_t *noff = sl_calloc(nk + 1, sizeof(size_t));
    size_t n = 4;
    for (size_t i = 0; i < 4; i++) {
        names[i] = names4[i];
        vals[i] = vals4[i];
    }
    for (size_t i = 0; i < nk; i++) {
        bool clash = false;
        for (size_t j = 0; j < 4; j++)
            clash |= sl_bytes_eq(kl[i].name, sl_bytes_str(names4[j]));
        if (clash)
            continue;
        noff[n - 4] = nmem.len;
        sl_buf_append(&nmem, kl[i].name.ptr, kl[i].name.len);
        sl_buf_append_char(&nmem, 0);
        vals[n++] = kl[i].value;
    }
    for (size_t i = 4; i < n; i++)
        names[i] = nmem.data + noff[i - 4];
    set_labels(ls, f, names, vals, n);
    sl_buf_release(&nmem);
    sl_free(noff);
    sl_free(names);
    sl_free(vals);
}

/* Labels of a pod log: the path labels, plus the pod's API labels if they
 * are known. Returns the number of API labels (0: path labels only). */
static size_t pod_labels(struct sl_agent *a, struct lset *ls, struct afile *f,
                         const struct sl_log_path *lp)
{
    static const char *const names[4] = {"container", "namespace", "node", "pod"};
    struct sl_bytes vals[4] = {lp->container, lp->ns, sl_bytes_str(a->cfg->k8s_node_name), lp->pod};
    const struct sl_label *kl = NULL;
    size_t nk = sl_kube_pod_labels(a->kube, lp->uid, &kl);
    if (nk)
        kube_labels(ls, f, names, vals, kl, nk);
    else
        set_labels(ls, f, names, vals, 4);
    return nk;
}

/* Labels of a file found under name by source. Returns 0 or SL_EINVAL. */
static int label_file(struct sl_agent *a, struct afile *f, const char *name, int source)
{
    struct sl_bytes nodev = sl_bytes_str(a->cfg->k8s_node_name);
    f->cur = &f->ls;
    if (source == SL_DISCOVER_PODS) {
        struct sl_log_path lp;
        if (sl_discover_parse_path(a->cfg->k8s_pods_path, name, &lp) != 0)
            return SL_EINVAL;
        /* No metadata yet: path labels until it comes (pod_labels_late()). */
        f->pod_pending = pod_labels(a, &f->ls, f, &lp) == 0 && a->kube;
        return 0;
    }
    const struct sl_file_source *src = &a->sources.items[source];
    size_t n = src->nlabels;
    const char **names = sl_calloc(n + 2, sizeof(char *));
    struct sl_bytes *vals = sl_calloc(n + 2, sizeof(*vals));
    for (size_t i = 0; i < n; i++) {
        names[i] = src->label_names[i];
        vals[i] = sl_bytes_str(src->label_values[i]);
    }
    names[n] = "filename";
    vals[n] = sl_bytes_str(name);
    names[n + 1] = "node";
    vals[n + 1] = nodev;
    set_labels(&f->ls, f, names, vals, n + 2);
    sl_free(names);
    sl_free(vals);
    /* filename must outlive the strings above: it points into labmem. */
    return 0;
}

static struct sl_tail_opts tail_opts(struct sl_agent *a, int source)
{
    struct sl_tail_opts o = {SL_FORMAT_CRI, (size_t)a->cfg->read_max_line_size};
    if (source != SL_DISCOVER_PODS)
        o.format = a->sources.items[source].format;
    return o;
}

/* Adds an opened file to the table (named: read under its name). */
static struct afile *adopt(struct sl_agent *a, struct afile *f, int source, bool named)
{
    f->source = source;
    f->a = a;
    if (a->pipeline)
        f->ls.ps = sl_pipeline_stream_new(a->pipeline, &f->ls.labels, on_pipeline_out, f);
    f->last_data_mono = sl_mono_ns();
    f->node.dev = f->t.dev;
    f->node.ino = f->t.ino;
    sl_ftable_add(&a->files, &f->node);
    if (named) {
        sl_ftable_name(&a->files, &f->node, f->t.name);
        a->nactive++;
    }
    count_files(a);
    a->positions_dirty = true;
    return f;
}

static void retire(struct sl_agent *a, struct afile *f, bool deleted, bool find_name);

static void on_file(void *ud, const char *path, int source)
{
    struct sl_agent *a = ud;
    if (paused(a))
        return;
    struct stat st;
    struct sl_ftable_node *n;
    if (stat(path, &st) != 0) {
        /* Gone (deleted or renamed): the tail finds out at its end. */
        if ((n = sl_ftable_by_name(&a->files, path)) != NULL)
            enqueue(a, afile_of(n));
        return;
    }
    if ((n = sl_ftable_find(&a->files, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) != NULL) {
        struct afile *f = afile_of(n);
        if ((uint64_t)st.st_size != f->t.read_off || f->retired)
            enqueue(a, f);
        return;
    }
    if ((n = sl_ftable_by_name(&a->files, path)) != NULL)
        retire(a, afile_of(n), false, true); /* a new file took the name: rotated */
    struct afile *f = SL_NEW(struct afile);
    bool resumed;
    struct sl_tail_opts o = tail_opts(a, source);
    int rc = sl_tail_open(&f->t, path, &o, &a->pos, &resumed);
    if (rc == 0 && taken(a, f->t.dev, f->t.ino))
        rc = SL_EEXIST; /* replaced between the stat and the open, by a file we have */
    if (rc == 0 && label_file(a, f, path, source) != 0)
        rc = SL_EINVAL;
    if (rc != 0) {
        if (rc != SL_ENOENT && rc != SL_EEXIST)
            sl_warn("cannot open file", "file=%s err=%s", path, sl_strerror(rc));
        if (f->t.path)
            sl_tail_release(&f->t);
        lset_release(&f->ls);
        sl_free(f);
        return;
    }
    adopt(a, f, source, true);
    sl_info("tailing file", "file=%s format=%s offset=%llu resumed=%s", path,
            sl_log_format_name(o.format), (unsigned long long)f->t.read_off,
            resumed ? "true" : "false");
    enqueue(a, f);
}

static void on_retire_tick(uv_timer_t *t)
{
    struct sl_agent *a = t->data;
    /* Retired files get no events (their new names are not watched for):
     * read them again, and release the ones that stayed idle. */
    for (struct afile *f = a->retired, *next; f; f = next) {
        next = f->rnext;
        if (f->at_eof && !f->deleted)
            f->at_eof = false, enqueue(a, f);
        else
            maybe_release(a, f);
    }
}

/* f's name now names another file or none (rotated or deleted): f is read
 * to its end under its new name, then released. */
static void retire(struct sl_agent *a, struct afile *f, bool deleted, bool find_name)
{
    if (f->node.name)
        a->nactive--;
    sl_ftable_unname(&a->files, &f->node);
    f->retired = true;
    f->deleted = deleted;
    f->rnext = a->retired;
    a->retired = f;
    a->positions_dirty = true;
    if (!deleted && find_name && sl_tail_find_name(&f->t) != 0)
        deleted = true; /* moved out of its directory: nothing will follow it */
    if (!deleted && !a->resuming)
        sl_counter_inc(a->m_rotated);
    sl_info(deleted ? "file deleted, draining" : "file rotated, draining",
            "file=%s now=%s offset=%llu", f->t.name, f->t.path, (unsigned long long)f->t.read_off);
    if (!uv_is_active((uv_handle_t *)&a->retire_timer)) {
        uint64_t ms = (uint64_t)(a->cfg->read_rotate_wait / SL_NS_PER_MS / 4);
        ms = ms < 50 ? 50 : ms > 1000 ? 1000 : ms;
        uv_timer_start(&a->retire_timer, on_retire_tick, ms, ms);
    }
}

static void truncated(struct sl_agent *a, struct afile *f)
{
    if (sl_tail_follow_copy(&f->t, taken, a) == 0) {
        /* copytruncate: the rest of what we were reading is in the copy. */
        sl_ftable_rekey(&a->files, &f->node, f->t.dev, f->t.ino);
        sl_warn("file truncated, reading the rest from its copy", "file=%s copy=%s offset=%llu",
                f->t.name, f->t.path, (unsigned long long)f->t.read_off);
        retire(a, f, false, false);
        on_file(a, f->t.name, f->source);
        return;
    }
    uint64_t missed;
    sl_tail_restart(&f->t, &missed);
    a->positions_dirty = true;
    sl_counter_inc(a->m_truncated);
    sl_counter_add(a->m_missed_bytes, (double)missed);
    sl_warn("file truncated, reading from the start; lines written before the truncation and "
            "not read yet are lost",
            "file=%s missed_bytes=%llu", f->t.path, (unsigned long long)missed);
}

/* A pod log opened before its pod's metadata was known: once it is, the
 * lines read from then on go to a new stream with the pod labels. Blocks the
 * pipeline holds for the old labels go out first, under them. */
static void pod_labels_late(struct sl_agent *a, struct afile *f)
{
    struct sl_log_path lp;
    if (sl_discover_parse_path(a->cfg->k8s_pods_path, f->t.name, &lp) != 0 ||
        !sl_kube_pod_labels(a->kube, lp.uid, &(const struct sl_label *){NULL}))
        return;
    f->pod_pending = false;
    struct lset *ls = SL_NEW(struct lset);
    size_t nk = pod_labels(a, ls, f, &lp);
    if (f->ls.ps)
        sl_pipeline_stream_flush(f->ls.ps); /* emits with f->cur still the old set */
    if (a->pipeline)
        ls->ps = sl_pipeline_stream_new(a->pipeline, &ls->labels, on_pipeline_out, f);
    f->pod_ls = ls;
    f->cur = ls;
    sl_counter_inc(a->m_late_labels);
    sl_info("pod labels arrived after the file was opened; its next lines carry them",
            "file=%s labels=%zu offset=%llu", f->t.path, nk, (unsigned long long)f->t.read_off);
}

/* One bounded read of f. Returns true if f should stay queued. */
static bool read_one(struct sl_agent *a, struct afile *f)
{
    struct read_ctx c = {a, f};
    if (f->pod_pending && a->kube)
        pod_labels_late(a, f);
    size_t consumed;
    int st = sl_tail_read(&f->t, a->scratch, SL_AGENT_READ_CHUNK, &parse_cbs, &c, &consumed);
    sl_counter_add(a->m_bytes, (double)consumed);
    f->at_eof = st != SL_TAIL_DATA && st != SL_TAIL_TRUNCATED;
    if (consumed)
        f->last_data_mono = sl_mono_ns();
    switch (st) {
    case SL_TAIL_DATA:
        return true;
    case SL_TAIL_TRUNCATED:
        truncated(a, f);
        return true;
    case SL_TAIL_DELETED:
    case SL_TAIL_ROTATED:
        if (!f->retired) {
            retire(a, f, st == SL_TAIL_DELETED, true);
            on_file(a, f->t.name, f->source); /* whatever has the name now */
        } else if (st == SL_TAIL_DELETED) {
            f->deleted = true;
        }
        return false;
    case SL_TAIL_EOF:
        return false;
    default:
        sl_warn("read failed", "file=%s err=%s", f->t.path, sl_strerror(st));
        return false;
    }
}

static void on_pump(uv_idle_t *h)
{
    struct sl_agent *a = h->data;
    /* One pass over the files queued now; each gets one bounded read. */
    struct afile *last = a->qtail;
    while (a->qhead && !paused(a) && !sl_ship_full(a->ship)) {
        struct afile *f = dequeue(a);
        bool again = read_one(a, f);
        if (again)
            enqueue(a, f);
        else if (f->retired)
            maybe_release(a, f);
        if (f == last)
            break;
    }
    if (!a->qhead || paused(a) || sl_ship_full(a->ship))
        uv_idle_stop(&a->pump);
    if (!uv_is_active((uv_handle_t *)&a->ml_timer))
        arm_multiline(a);
}

/* --- shipping callbacks --- */

static void on_ack(void *ud, struct sl_ship_stream *s, size_t n, uint64_t last_cookie,
                   bool delivered)
{
    struct sl_agent *a = ud;
    struct afile *f = ((struct astream *)s)->f;
    (void)delivered; /* dropped lines are counted by the shipper; move past them */
    uint64_t before = f->t.acked_off;
    sl_tail_ack(&f->t, n, last_cookie);
    if (f->t.acked_off != before)
        a->positions_dirty = true;
    if (f->retired)
        maybe_release(a, f);
}

static void on_resume(void *ud)
{
    kick(ud);
}

/* --- positions --- */

static void save_positions(struct sl_agent *a)
{
    struct sl_buf err = SL_BUF_INIT;
    if (!a->positions_dirty)
        return; /* idle: nothing moved, nothing to write */
    a->positions_dirty = false;
    sl_positions_clear(&a->pos);
    for (struct sl_ftable_node *n = a->files.head; n; n = n->next) {
        struct afile *f = afile_of(n);
        sl_positions_add(&a->pos, f->t.path, f->t.name, f->t.dev, f->t.ino, f->t.fp,
                         f->t.acked_off);
    }
    if (sl_positions_save(&a->pos, a->cfg->positions_file, &err) != 0) {
        sl_error("cannot save positions", "err=\"%s\"", err.data);
        a->positions_dirty = true;
    }
    sl_buf_release(&err);
}

static void on_sync(uv_timer_t *t)
{
    save_positions(t->data);
}

/* Files the positions know that discovery will not report: renamed siblings
 * (0.log.<time>) still being drained when the agent stopped, and files
 * truncated or rotated while it was down. Each is found again (by device +
 * inode, or as the copy of a truncated file) and read from its position. */
static void resume_known(struct sl_agent *a)
{
    for (size_t i = 0; i < a->pos.n; i++) {
        const struct sl_position *p = &a->pos.items[i];
        const char *name = p->name ? p->name : p->path;
        int source;
        if (!a->disc || !sl_discover_source_of(a->disc, name, &source))
            continue; /* no longer configured */
        if (sl_ftable_find(&a->files, p->dev, p->ino))
            continue;
        struct afile *f = SL_NEW(struct afile);
        struct sl_tail_opts o = tail_opts(a, source);
        if (sl_tail_open_known(&f->t, p, &o, taken, a) != 0 ||
            label_file(a, f, f->t.name, source) != 0) {
            if (f->t.path)
                sl_tail_release(&f->t);
            lset_release(&f->ls);
            sl_free(f);
            sl_counter_inc(a->m_missed_files);
            sl_warn("file known from positions is gone; lines after its position may be lost",
                    "file=%s name=%s offset=%llu", p->path, name, (unsigned long long)p->offset);
            continue;
        }
        /* Still the file under its name: an ordinary active file. */
        bool live = !strcmp(f->t.path, name) && !sl_ftable_by_name(&a->files, name);
        adopt(a, f, source, live);
        if (!live) {
            /* After a reload its rotation was counted already. */
            a->resuming = a->rebuilt;
            retire(a, f, false, false);
            a->resuming = false;
            sl_info("resuming rotated file", "file=%s name=%s offset=%llu", f->t.path, f->t.name,
                    (unsigned long long)f->t.read_off);
        }
        enqueue(a, f);
    }
}

/* --- HTTP --- */

/* A label value in the text format: \ " and newline escaped. */
static void append_label_value(struct sl_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sl_buf_append_char(out, '\\'), sl_buf_append_char(out, *s);
        else if (*s == '\n')
            sl_buf_append_str(out, "\\n");
        else
            sl_buf_append_char(out, *s);
    }
}

/* sluice_agent_file_bytes_behind{path}: each open file's size minus its
 * acknowledged position, rendered here rather than kept in the registry
 * (whose series live as long as it does), so a released file's series goes
 * with it. Sets sluice_agent_bytes_behind to the sum. One fstat per file per
 * scrape. */
static void render_behind(struct sl_agent *a, struct sl_buf *out)
{
    double sum = 0;
    sl_buf_append_str(out, "# HELP sluice_agent_file_bytes_behind Bytes of an open file not yet "
                           "acknowledged by the receiver (size minus acknowledged position).\n"
                           "# TYPE sluice_agent_file_bytes_behind gauge\n");
    for (struct sl_ftable_node *n = a->files.head; n; n = n->next) {
        struct afile *f = afile_of(n);
        struct stat st;
        uint64_t size = fstat(f->t.fd, &st) == 0 ? (uint64_t)st.st_size : f->t.size_seen;
        uint64_t behind = size > f->t.acked_off ? size - f->t.acked_off : 0;
        sum += (double)behind;
        sl_buf_append_str(out, "sluice_agent_file_bytes_behind{path=\"");
        append_label_value(out, f->t.path);
        sl_buf_append_str(out, "\"} ");
        sl_buf_append_u64(out, behind);
        sl_buf_append_char(out, '\n');
    }
    sl_gauge_set(a->m_behind, sum);
}

static void h_metrics(struct sl_http_request *req, void *ud)
{
    struct sl_agent *a = ud;
    struct sl_buf out = SL_BUF_INIT, files = SL_BUF_INIT;
    render_behind(a, &files);
    sl_metrics_render(a->metrics, &out);
    sl_buf_append(&out, files.data, files.len);
    sl_http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &out);
    sl_buf_release(&files);
    sl_buf_release(&out);
}

static void h_ready(struct sl_http_request *req, void *ud)
{
    struct sl_agent *a = ud;
    if (a->stopping)
        sl_http_respond_text(req, 503, "stopping");
    else
        sl_http_respond_text(req, 200, "ready");
}

/* --- lifecycle --- */

static void on_signal(uv_signal_t *h, int signum)
{
    struct sl_agent *a = h->data;
    sl_info("signal received, stopping", "signal=%d", signum);
    sl_agent_stop(a);
}

/* The shipper for cfg (at start, and again on reload). */
static void make_ship(struct sl_agent *a, uv_loop_t *loop, const struct sl_agent_config *cfg,
                      struct sl_metrics *m)
{
    struct sl_ship_opts so = {
        .url = cfg->client_url,
        .tenant = cfg->client_tenant,
        .bearer_token_file = cfg->client_bearer_token_file,
        .ca_file = cfg->client_tls_ca_file,
        .insecure_skip_verify = cfg->client_tls_insecure_skip_verify,
        .codec = cfg->codec,
        .batch_size = (size_t)cfg->client_batch_size,
        .batch_wait_ns = cfg->client_batch_wait,
        .timeout_ns = cfg->client_timeout,
        .backoff_min_ns = cfg->client_backoff_min,
        .backoff_max_ns = cfg->client_backoff_max,
        .buffer_disk = strcmp(cfg->buffer_type, "disk") == 0,
        .buffer_path = cfg->buffer_path,
        .buffer_max_size = (uint64_t)cfg->buffer_max_size,
    };
    sl_ship_protocol_parse(cfg->client_protocol, &so.protocol); /* validated */
    struct sl_ship_cbs cbs = {on_ack, on_resume};
    a->ship = sl_ship_new(loop, &so, &cbs, a, m);
}

/* Lag, late pod labels and reloads (sl_agent_new). */
static void ops_metrics(struct sl_agent *a, struct sl_metrics *m)
{
    a->m_late_labels = sl_metric_with(
        sl_metrics_counter(m, "sluice_agent_files_pod_labels_late_total",
                           "Pod log files that got their pod labels after they were opened "
                           "(their later lines carry them).",
                           NULL));
    struct sl_metric_family *reloads =
        sl_metrics_counter(m, "sluice_agent_config_reloads_total",
                           "Configuration reloads (SIGHUP), by result.", "result");
    a->m_reload_ok = sl_metric_with(reloads, "success");
    a->m_reload_failed = sl_metric_with(reloads, "failure");
    a->m_reload_ts = sl_metric_with(sl_metrics_gauge(
        m, "sluice_agent_config_last_reload_success_timestamp_seconds",
        "When the configuration was last loaded successfully (start or reload), Unix seconds.",
        NULL));
    a->m_reload_last_ok = sl_metric_with(sl_metrics_gauge(
        m, "sluice_agent_config_last_reload_successful",
        "1 if the last configuration reload succeeded (or none was tried).", NULL));
    a->m_behind = sl_metric_with(sl_metrics_gauge(
        m, "sluice_agent_bytes_behind",
        "Bytes of open files not yet acknowledged by the receiver (sum over files).", NULL));
}

struct sl_agent *sl_agent_new(uv_loop_t *loop, const struct sl_agent_config *cfg)
{
    struct sl_agent *a = SL_NEW(struct sl_agent);
    a->loop = loop;
    a->cfg = cfg;
    a->metrics = sl_metrics_new();
    sl_positions_init(&a->pos);
    sl_ftable_init(&a->files);
    a->scratch = sl_malloc(SL_AGENT_READ_CHUNK);
    struct sl_metrics *m = a->metrics;
    a->m_lines = sl_metric_with(
        sl_metrics_counter(m, "sluice_agent_lines_read_total", "Log lines read.", NULL));
    a->m_bytes = sl_metric_with(sl_metrics_counter(m, "sluice_agent_bytes_read_total",
                                                   "Bytes of log files consumed.", NULL));
    struct sl_metric_family *dropped = sl_metrics_counter(m, "sluice_agent_lines_dropped_total",
                                                          "Lines dropped, by reason.", "reason");
    a->m_malformed = sl_metric_with(dropped, "malformed");
    a->m_split = sl_metric_with(sl_metrics_counter(
        m, "sluice_agent_lines_split_total",
        "Entries that are pieces of a line longer than read.max_line_size.", NULL));
    a->m_truncated = sl_metric_with(sl_metrics_counter(
        m, "sluice_agent_files_truncated_total",
        "Files truncated in place with no copy found (reading restarted at 0).", NULL));
    a->m_missed_bytes = sl_metric_with(
        sl_metrics_counter(m, "sluice_agent_bytes_missed_total",
                           "Bytes known to have been in a truncated file and not read.", NULL));
    a->m_missed_files = sl_metric_with(sl_metrics_counter(
        m, "sluice_agent_files_missed_total",
        "Files known from positions that were gone at start (lines may be lost).", NULL));
    a->m_rotated = sl_metric_with(sl_metrics_counter(
        m, "sluice_agent_files_rotated_total", "Files renamed or copied away while read.", NULL));
    a->m_files = sl_metric_with(
        sl_metrics_gauge(m, "sluice_agent_files_active", "Files being tailed.", NULL));
    sl_gauge_set(a->m_files, 0);
    ops_metrics(a, m);
    make_ship(a, loop, cfg, m);
    uv_idle_init(loop, &a->pump);
    uv_timer_init(loop, &a->sync_timer);
    uv_timer_init(loop, &a->stop_timer);
    uv_timer_init(loop, &a->retire_timer);
    a->retire_timer.data = a;
    uv_timer_init(loop, &a->ml_timer);
    a->ml_timer.data = a;
    uv_signal_init(loop, &a->sigint);
    uv_signal_init(loop, &a->sigterm);
    uv_signal_init(loop, &a->sighup);
    uv_timer_init(loop, &a->reload_timer);
    a->sighup.data = a->reload_timer.data = a;
    a->pump.data = a->sync_timer.data = a->stop_timer.data = a;
    a->sigint.data = a->sigterm.data = a;
    return a;
}

/* The first pod list answered (or failed): open the files. */
static void on_kube_listed(void *ud)
{
    struct sl_agent *a = ud;
    a->kube_wait = false;
    if (paused(a) || !a->disc)
        return; /* reloading: build() opens the files once it is done */
    resume_known(a);
    sl_discover_start(a->disc);
}

/* Sources, pipeline, discovery and (unless kept across a reload) the
 * Kubernetes watcher for a->cfg; files are opened at once, or once the first
 * pod list answered. */
static int build(struct sl_agent *a, struct sl_buf *err)
{
    const struct sl_agent_config *cfg = a->cfg;
    int rc;
    rc = sl_pipeline_new(cfg->pipeline, a->metrics, &a->pipeline, err);
    if (rc != 0)
        return rc;
    rc = sl_file_sources_parse(cfg->files, &a->sources, err);
    if (rc != 0)
        return rc;
    struct sl_discover_glob *globs = sl_calloc(a->sources.n + 1, sizeof(*globs));
    for (size_t i = 0; i < a->sources.n; i++) {
        const struct sl_file_source *s = &a->sources.items[i];
        globs[i] = (struct sl_discover_glob){s->include.items, s->include.n, s->exclude.items,
                                             s->exclude.n};
    }
    if (*cfg->k8s_pods_path || a->sources.n)
        a->disc = sl_discover_new(a->loop, cfg->k8s_pods_path, globs, a->sources.n,
                                  cfg->read_sweep_period, on_file, a);
    sl_free(globs);
    if (cfg->k8s_api_enabled && !a->kube) {
        struct sl_kube_opts ko = {
            .host = cfg->k8s_api_host,
            .token_file = cfg->k8s_api_token_file,
            .ca_file = cfg->k8s_api_ca_file,
            .node_name = cfg->k8s_node_name,
            .pod_labels = &cfg->k8s_api_pod_labels,
        };
        rc = sl_kube_new(a->loop, &ko, a->metrics, &a->kube, err);
        if (rc != 0)
            return rc;
        a->kube_wait = true; /* files opened now would miss their pod labels */
        sl_kube_start(a->kube, on_kube_listed, a);
        return 0;
    }
    if (a->disc && !a->kube_wait) {
        resume_known(a);
        sl_discover_start(a->disc);
    }
    return 0;
}

/* --- reload (SIGHUP) --- */

static void config_free(struct sl_agent_config *c)
{
    if (!c)
        return;
    sl_config_release(sl_agent_options, sl_agent_noptions, c);
    sl_free(c);
}

/* Everything build() made, and the shipper; the files are closed (their
 * positions are in a->pos). */
static void teardown(struct sl_agent *a, bool drop_kube)
{
    uv_idle_stop(&a->pump);
    uv_timer_stop(&a->retire_timer);
    uv_timer_stop(&a->ml_timer);
    sl_ship_free(a->ship); /* no acknowledgement comes after this */
    a->ship = NULL;
    while (a->files.head)
        file_free(a, afile_of(a->files.head));
    a->retired = NULL;
    a->qhead = a->qtail = NULL;
    a->nactive = 0;
    if (a->disc)
        sl_discover_free(a->disc);
    a->disc = NULL;
    sl_pipeline_free(a->pipeline);
    a->pipeline = NULL;
    sl_file_sources_release(&a->sources);
    memset(&a->sources, 0, sizeof(a->sources));
    if (drop_kube) {
        sl_kube_free(a->kube);
        a->kube = NULL;
        a->kube_wait = false;
    }
}

static void reload_failed(struct sl_agent *a, const char *why)
{
    sl_counter_inc(a->m_reload_failed);
    sl_gauge_set(a->m_reload_last_ok, 0);
    sl_error("configuration reload failed, keeping the running configuration", "err=\"%s\"", why);
}

static void begin_reload(struct sl_agent *a);

/* Drained (or given up waiting): positions saved, everything rebuilt from
 * next_cfg, files reopened at their acknowledged positions. */
static void apply_reload(struct sl_agent *a)
{
    struct sl_agent_config *next = a->next_cfg;
    a->next_cfg = NULL;
    bool kube_changed = sl_reload_kube_changed(a->cfg, next);
    if (!a->kube_wait) { /* before the first pod list no file is open: keep a->pos */
        a->positions_dirty = true;
        save_positions(a);
    }
    size_t nfiles = a->files.n;
    teardown(a, kube_changed);
    config_free(a->own_cfg);
    a->own_cfg = next;
    a->cfg = next;
    enum sl_log_level lvl;
    if (sl_log_level_parse(next->server_log_level, &lvl) == 0)
        sl_log_set_level(lvl);
    uint64_t sync_ms = (uint64_t)(next->positions_sync_period / SL_NS_PER_MS);
    uv_timer_start(&a->sync_timer, on_sync, sync_ms ? sync_ms : 1, sync_ms ? sync_ms : 1);
    make_ship(a, a->loop, next, a->metrics);
    a->reloading = false;
    a->rebuilt = true;
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_ship_start(a->ship, &err);
    if (rc == 0)
        rc = build(a, &err);
    if (rc != 0) {
        /* Validated already: only the environment can fail here (e.g. no
         * Kubernetes API host). What could be built runs. */
        sl_error("configuration reloaded, but a part of it cannot run", "err=\"%s\"", err.data);
    }
    sl_buf_release(&err);
    sl_counter_inc(a->m_reload_ok);
    sl_gauge_set(a->m_reload_ts, (double)sl_now_ns() / 1e9);
    sl_gauge_set(a->m_reload_last_ok, 1);
    sl_info("configuration reloaded", "files_before=%zu kube=%s", nfiles,
            !next->k8s_api_enabled ? "off"
            : kube_changed         ? "restarted"
                                   : "kept");
    if (a->reload_again) {
        a->reload_again = false;
        begin_reload(a);
    }
}

static void on_reload_tick(uv_timer_t *t)
{
    struct sl_agent *a = t->data;
    bool idle = sl_ship_idle(a->ship);
    if (!idle && sl_mono_ns() < a->reload_deadline)
        return;
    uv_timer_stop(t);
    if (!idle)
        sl_warn("reload: lines not acknowledged within client.timeout are read again with the "
                "new configuration",
                "entries=%zu", sl_ship_pending(a->ship));
    apply_reload(a);
}

/* Loads and validates the configuration again; if it is good, stops
 * reading and drains what is in flight (for at most client.timeout) so that
 * every line read goes out once, under the configuration it was read with. */
static void begin_reload(struct sl_agent *a)
{
    struct sl_buf err = SL_BUF_INIT, warn = SL_BUF_INIT;
    struct sl_agent_config *next = SL_NEW(struct sl_agent_config);
    int rc = a->has_src ? sl_reload_load(&a->src, a->cfg, next, &err, &warn) : SL_EINVAL;
    if (!a->has_src)
        sl_buf_append_str(&err, "no configuration source to reload from");
    for (char *l = warn.data, *nl; l && *l; l = nl + 1) {
        nl = strchr(l, '\n');
        *nl = '\0';
        sl_warn("configuration reload", "note=\"%s\"", l);
    }
    if (rc != 0) {
        reload_failed(a, err.data);
        sl_free(next);
    } else {
        sl_info("reloading configuration: draining what is in flight", "entries=%zu",
                sl_ship_pending(a->ship));
        a->next_cfg = next;
        a->reloading = true;
        uv_idle_stop(&a->pump);
        uv_timer_stop(&a->ml_timer);
        if (a->pipeline)
            sl_pipeline_flush_all(a->pipeline); /* held multiline blocks go out */
        sl_ship_drain(a->ship);
        a->reload_deadline = sl_mono_ns() + a->cfg->client_timeout;
        uv_timer_start(&a->reload_timer, on_reload_tick, 0, 20);
    }
    sl_buf_release(&err);
    sl_buf_release(&warn);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    struct sl_agent *a = h->data;
    (void)signum;
    if (a->stopping)
        return;
    if (a->reloading) {
        a->reload_again = true; /* once this one is done, with the file as it is then */
        sl_info("SIGHUP received during a reload; another reload follows it", NULL);
        return;
    }
    sl_info("SIGHUP received, reloading the configuration", "file=%s",
            a->has_src && a->src.file ? a->src.file : "(none)");
    begin_reload(a);
}

void sl_agent_set_source(struct sl_agent *a, const char *file, const char *const *sets,
                         size_t nsets)
{
    a->src = (struct sl_reload_source){file, sets, nsets};
    a->has_src = true;
}

int sl_agent_start(struct sl_agent *a, struct sl_buf *err)
{
    const struct sl_agent_config *cfg = a->cfg;
    int rc = sl_positions_load(&a->pos, cfg->positions_file, err);
    if (rc != 0) {
        /* A corrupt positions file must not stop log shipping: start over
         * (duplicates are dropped by the aggregator) and say so loudly. */
        sl_error("positions file unreadable, starting from the beginning of every file",
                 "err=\"%s\"", err->data);
        sl_buf_clear(err);
    } else {
        sl_info("positions loaded", "file=%s entries=%zu", cfg->positions_file, a->pos.n);
    }
    rc = sl_ship_start(a->ship, err); /* the disk buffer, if configured */
    if (rc != 0)
        return rc;
    struct sl_http_server_opts ho = {.metrics = a->metrics, .metrics_prefix = "sluice_agent"};
    a->http = sl_http_server_new(a->loop, &ho);
    sl_http_server_route(a->http, "GET", "/metrics", false, h_metrics, a);
    sl_http_server_route(a->http, "GET", "/ready", false, h_ready, a);
    rc = sl_http_server_listen(a->http, cfg->server_listen, err);
    if (rc != 0)
        return rc;
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sighup, on_sighup, SIGHUP);
    sl_gauge_set(a->m_reload_ts, (double)sl_now_ns() / 1e9);
    sl_gauge_set(a->m_reload_last_ok, 1);
    uint64_t sync_ms = (uint64_t)(cfg->positions_sync_period / SL_NS_PER_MS);
    uv_timer_start(&a->sync_timer, on_sync, sync_ms ? sync_ms : 1, sync_ms ? sync_ms : 1);
    return build(a, err);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct sl_agent *a = h->data;
    a->open_handles--;
}

static void close_handle(struct sl_agent *a, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    a->open_handles++;
    uv_close(h, on_handle_closed);
}

static void finish_stop(struct sl_agent *a)
{
    size_t pending = sl_ship_pending(a->ship);
    if (pending)
        sl_warn("stopping with lines not acknowledged; they will be read again on restart",
                "entries=%zu", pending);
    a->positions_dirty = !a->kube_wait; /* no files opened yet: keep the saved ones */
    save_positions(a);
    sl_info("stopped", "files=%zu", a->files.n);
    sl_ship_free(a->ship);
    a->ship = NULL;
    sl_kube_free(a->kube);
    a->kube = NULL;
    if (a->http)
        sl_http_server_close(a->http, NULL, NULL);
    a->http = NULL;
    close_handle(a, (uv_handle_t *)&a->pump);
    close_handle(a, (uv_handle_t *)&a->sync_timer);
    close_handle(a, (uv_handle_t *)&a->stop_timer);
    close_handle(a, (uv_handle_t *)&a->retire_timer);
    close_handle(a, (uv_handle_t *)&a->ml_timer);
    close_handle(a, (uv_handle_t *)&a->sigint);
    close_handle(a, (uv_handle_t *)&a->sigterm);
    close_handle(a, (uv_handle_t *)&a->sighup);
    close_handle(a, (uv_handle_t *)&a->reload_timer);
}

static void on_stop_tick(uv_timer_t *t)
{
    struct sl_agent *a = t->data;
    if (sl_ship_idle(a->ship) || sl_mono_ns() >= a->stop_deadline) {
        uv_timer_stop(t);
        finish_stop(a);
    }
}

void sl_agent_stop(struct sl_agent *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    uv_idle_stop(&a->pump);
    if (a->disc)
        sl_discover_free(a->disc);
    a->disc = NULL;
    uv_signal_stop(&a->sigint);
    uv_signal_stop(&a->sigterm);
    uv_signal_stop(&a->sighup);
    uv_timer_stop(&a->reload_timer);
    if (a->reloading)
        sl_info("stopping: configuration reload abandoned", NULL);
    a->reloading = false;
    uv_timer_stop(&a->ml_timer);
    if (a->pipeline)
        sl_pipeline_flush_all(a->pipeline); /* held multiline blocks go out too */
    sl_ship_drain(a->ship);
    a->stop_deadline = sl_mono_ns() + a->cfg->client_timeout;
    uv_timer_start(&a->stop_timer, on_stop_tick, 0, 20);
}

void sl_agent_free(struct sl_agent *a)
{
    while (a->files.head)
        file_free(a, afile_of(a->files.head));
    sl_ftable_release(&a->files);
    sl_pipeline_free(a->pipeline);
    sl_file_sources_release(&a->sources);
    sl_positions_release(&a->pos);
    sl_metrics_free(a->metrics);
    sl_free(a->scratch);
    config_free(a->own_cfg);
    config_free(a->next_cfg);
    sl_free(a);
}
