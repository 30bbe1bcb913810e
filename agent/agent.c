/* Agent wiring. The modules know nothing of each other; this file owns the
 * file table, the read scheduling and the shutdown sequence. */
#include "agent/agent.h"

#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "agent/discover/discover.h"
#include "agent/positions/positions.h"
#include "agent/ship/ship.h"
#include "agent/tail/tail.h"
#include "common/err.h"
#include "common/http_server.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/version.h"

/* A tailed file: the tail state plus what the agent hangs on it. */
struct afile {
    struct sl_tail t;
    struct sl_ship_stream ss;
    struct sl_labels labels;
    struct sl_label lab[4];
    struct sl_buf labmem;
    bool queued;  /* in the ready queue */
    bool retired; /* rotated away or deleted: drained, then freed */
    bool deleted;
    int64_t last_data_mono;
    struct afile *qnext;
    struct afile *next; /* in a->files or a->retired */
};

struct sl_agent {
    uv_loop_t *loop;
    const struct sl_agent_config *cfg;
    struct sl_metrics *metrics;
    struct sl_http_server *http;
    struct sl_discover *disc;
    struct sl_ship *ship;
    struct sl_positions pos;
    struct afile *files;   /* active, one per path */
    struct afile *retired; /* draining */
    size_t nfiles;
    struct afile *qhead, *qtail;
    char *scratch;
    uv_idle_t pump;
    uv_timer_t sync_timer;
    uv_timer_t stop_timer;
    uv_signal_t sigint, sigterm;
    bool stopping;
    int64_t stop_deadline;
    int open_handles;
    struct sl_metric *m_lines, *m_bytes, *m_malformed, *m_truncated, *m_files;
};

static struct sl_log_limit malformed_lim, truncated_lim;

/* --- ready queue and pump --- */

static void on_pump(uv_idle_t *h);

static void kick(struct sl_agent *a)
{
    if (!a->stopping && a->qhead && !sl_ship_full(a->ship))
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
    if (e->truncated) {
        sl_counter_inc(c->a->m_truncated);
        sl_log_limited(&truncated_lim, SL_LOG_WARN, "line truncated", "file=%s max_line_size=%lld",
                       c->f->t.path, (long long)c->a->cfg->read_max_line_size);
    }
    sl_tail_hold(&c->f->t);
    sl_ship_add(c->a->ship, &c->f->ss, e->ts_ns, e->line, sl_tail_cookie(&c->f->t, e->safe_off));
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

static struct afile *find_file(struct sl_agent *a, const char *path)
{
    for (struct afile *f = a->files; f; f = f->next)
        if (!strcmp(f->t.path, path))
            return f;
    return NULL;
}

static void unlink_from(struct afile **list, struct afile *f)
{
    for (struct afile **pp = list; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            return;
        }
    }
}

static void file_free(struct afile *f)
{
    sl_tail_release(&f->t);
    sl_buf_release(&f->labmem);
    sl_free(f);
}

/* Frees a retired file once it is drained and acknowledged. */
static void maybe_release(struct sl_agent *a, struct afile *f)
{
    if (!f->retired || f->queued || f->t.unacked > 0)
        return;
    int64_t idle = sl_mono_ns() - f->last_data_mono;
    if (!f->deleted && idle < a->cfg->read_rotate_wait)
        return;
    sl_info("released file", "file=%s offset=%llu", f->t.path, (unsigned long long)f->t.read_off);
    unlink_from(&a->retired, f);
    file_free(f);
}

static void set_labels(struct sl_agent *a, struct afile *f, const struct sl_log_path *lp)
{
    /* Sorted by name: container, namespace, node, pod. Values live in labmem,
     * which is sized once so the views stay put. */
    const char *node = a->cfg->k8s_node_name;
    size_t nl = strlen(node);
    struct sl_bytes vals[4] = {lp->container, lp->ns, sl_bytes(node, nl), lp->pod};
    static const char *const names[4] = {"container", "namespace", "node", "pod"};
    size_t total = 0;
    for (int i = 0; i < 4; i++)
        total += vals[i].len;
    char *p = sl_buf_reserve(&f->labmem, total + 1);
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        if (i == 2 && nl == 0)
            continue;
        memcpy(p, vals[i].ptr, vals[i].len);
        f->lab[n].name = sl_bytes_str(names[i]);
        f->lab[n].value = sl_bytes(p, vals[i].len);
        p += vals[i].len;
        n++;
    }
    sl_buf_commit(&f->labmem, total);
    f->labels.items = f->lab;
    f->labels.n = n;
    f->ss.labels = &f->labels;
}

static void on_file(void *ud, const char *path, const struct sl_log_path *lp)
{
    struct sl_agent *a = ud;
    if (a->stopping)
        return;
    struct afile *f = find_file(a, path);
    if (f) {
        enqueue(a, f);
        return;
    }
    f = SL_NEW(struct afile);
    bool resumed;
    int rc = sl_tail_open(&f->t, path, (size_t)a->cfg->read_max_line_size,
                          sl_positions_get(&a->pos, path), &resumed);
    if (rc != 0) {
        if (rc != SL_ENOENT)
            sl_warn("cannot open file", "file=%s err=%s", path, sl_strerror(rc));
        sl_free(f);
        return;
    }
    set_labels(a, f, lp);
    f->last_data_mono = sl_mono_ns();
    f->next = a->files;
    a->files = f;
    a->nfiles++;
    sl_gauge_set(a->m_files, (double)a->nfiles);
    sl_info("tailing file", "file=%s offset=%llu resumed=%s", path,
            (unsigned long long)f->t.read_off, resumed ? "true" : "false");
    enqueue(a, f);
}

/* The file at f's path is no longer f (rotated or deleted): retire f and pick
 * up whatever is at the path now. */
static void retire(struct sl_agent *a, struct afile *f, bool deleted)
{
    unlink_from(&a->files, f);
    a->nfiles--;
    sl_gauge_set(a->m_files, (double)a->nfiles);
    f->retired = true;
    f->deleted = deleted;
    f->next = a->retired;
    a->retired = f;
    sl_info(deleted ? "file deleted, drained" : "file rotated, draining", "file=%s offset=%llu",
            f->t.path, (unsigned long long)f->t.read_off);
    struct sl_log_path lp;
    if (!deleted && sl_discover_parse_path(a->cfg->k8s_pods_path, f->t.path, &lp) == 0)
        on_file(a, f->t.path, &lp);
}

/* One bounded read of f. Returns true if f should stay queued. */
static bool read_one(struct sl_agent *a, struct afile *f)
{
    struct read_ctx c = {a, f};
    size_t consumed;
    int st = sl_tail_read(&f->t, a->scratch, SL_AGENT_READ_CHUNK, &parse_cbs, &c, &consumed);
    sl_counter_add(a->m_bytes, (double)consumed);
    if (consumed)
        f->last_data_mono = sl_mono_ns();
    switch (st) {
    case SL_TAIL_DATA:
        return true;
    case SL_TAIL_TRUNCATED:
        sl_warn("file truncated, reading from the start", "file=%s", f->t.path);
        return true;
    case SL_TAIL_DELETED:
    case SL_TAIL_ROTATED:
        if (!f->retired)
            retire(a, f, st == SL_TAIL_DELETED);
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
    while (a->qhead && !a->stopping && !sl_ship_full(a->ship)) {
        struct afile *f = dequeue(a);
        bool again = read_one(a, f);
        if (again)
            enqueue(a, f);
        else if (f->retired)
            maybe_release(a, f);
        if (f == last)
            break;
    }
    if (!a->qhead || a->stopping || sl_ship_full(a->ship))
        uv_idle_stop(&a->pump);
}

/* --- shipping callbacks --- */

static void on_ack(void *ud, struct sl_ship_stream *s, size_t n, uint64_t last_cookie,
                   bool delivered)
{
    struct sl_agent *a = ud;
    struct afile *f = (struct afile *)((char *)s - offsetof(struct afile, ss));
    (void)delivered; /* dropped lines are counted by the shipper; move past them */
    sl_tail_ack(&f->t, n, last_cookie);
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
    sl_positions_clear(&a->pos);
    for (struct afile *f = a->files; f; f = f->next) {
        struct sl_fingerprint fp;
        if (sl_tail_fingerprint(&f->t, &fp) != 0)
            continue;
        sl_positions_set(&a->pos, f->t.path, f->t.dev, f->t.ino, fp, f->t.acked_off);
    }
    if (sl_positions_save(&a->pos, a->cfg->positions_file, &err) != 0)
        sl_error("cannot save positions", "err=\"%s\"", err.data);
    sl_buf_release(&err);
}

static void on_sync(uv_timer_t *t)
{
    struct sl_agent *a = t->data;
    save_positions(a);
    /* Retired files wait for rotate_wait without events: look again. */
    for (struct afile *f = a->retired, *next; f; f = next) {
        next = f->next;
        if (!f->queued)
            maybe_release(a, f);
    }
    for (struct afile *f = a->retired; f; f = f->next)
        enqueue(a, f);
}

/* --- HTTP --- */

static void h_metrics(struct sl_http_request *req, void *ud)
{
    struct sl_agent *a = ud;
    struct sl_buf out = SL_BUF_INIT;
    sl_metrics_render(a->metrics, &out);
    sl_http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &out);
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

struct sl_agent *sl_agent_new(uv_loop_t *loop, const struct sl_agent_config *cfg)
{
    struct sl_agent *a = SL_NEW(struct sl_agent);
    a->loop = loop;
    a->cfg = cfg;
    a->metrics = sl_metrics_new();
    sl_positions_init(&a->pos);
    a->scratch = sl_malloc(SL_AGENT_READ_CHUNK);
    struct sl_metrics *m = a->metrics;
    a->m_lines = sl_metric_with(
        sl_metrics_counter(m, "sluice_agent_lines_read_total", "Log lines read.", NULL));
    a->m_bytes = sl_metric_with(sl_metrics_counter(m, "sluice_agent_bytes_read_total",
                                                   "Bytes of log files consumed.", NULL));
    struct sl_metric_family *dropped = sl_metrics_counter(m, "sluice_agent_lines_dropped_total",
                                                          "Lines dropped, by reason.", "reason");
    a->m_malformed = sl_metric_with(dropped, "malformed");
    a->m_truncated =
        sl_metric_with(sl_metrics_counter(m, "sluice_agent_lines_truncated_total",
                                          "Lines cut at read.max_line_size (still sent).", NULL));
    a->m_files = sl_metric_with(
        sl_metrics_gauge(m, "sluice_agent_files_active", "Files being tailed.", NULL));
    sl_gauge_set(a->m_files, 0);
    struct sl_ship_opts so = {
        .url = cfg->client_url,
        .tenant = cfg->client_tenant,
        .bearer_token_file = cfg->client_bearer_token_file,
        .codec = cfg->codec,
        .batch_size = (size_t)cfg->client_batch_size,
        .batch_wait_ns = cfg->client_batch_wait,
        .timeout_ns = cfg->client_timeout,
        .backoff_min_ns = cfg->client_backoff_min,
        .backoff_max_ns = cfg->client_backoff_max,
    };
    struct sl_ship_cbs cbs = {on_ack, on_resume};
    a->ship = sl_ship_new(loop, &so, &cbs, a, m);
    uv_idle_init(loop, &a->pump);
    uv_timer_init(loop, &a->sync_timer);
    uv_timer_init(loop, &a->stop_timer);
    uv_signal_init(loop, &a->sigint);
    uv_signal_init(loop, &a->sigterm);
    a->pump.data = a->sync_timer.data = a->stop_timer.data = a;
    a->sigint.data = a->sigterm.data = a;
    return a;
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
    struct sl_http_server_opts ho = {.metrics = a->metrics, .metrics_prefix = "sluice_agent"};
    a->http = sl_http_server_new(a->loop, &ho);
    sl_http_server_route(a->http, "GET", "/metrics", false, h_metrics, a);
    sl_http_server_route(a->http, "GET", "/ready", false, h_ready, a);
    rc = sl_http_server_listen(a->http, cfg->server_listen, err);
    if (rc != 0)
        return rc;
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uint64_t sync_ms = (uint64_t)(cfg->positions_sync_period / SL_NS_PER_MS);
    uv_timer_start(&a->sync_timer, on_sync, sync_ms ? sync_ms : 1, sync_ms ? sync_ms : 1);
    if (*cfg->k8s_pods_path) {
        a->disc = sl_discover_new(a->loop, cfg->k8s_pods_path, cfg->read_sweep_period, on_file, a);
        sl_discover_start(a->disc);
    }
    return 0;
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
    save_positions(a);
    sl_info("stopped", "files=%zu", a->nfiles);
    sl_ship_free(a->ship);
    a->ship = NULL;
    if (a->http)
        sl_http_server_close(a->http, NULL, NULL);
    a->http = NULL;
    close_handle(a, (uv_handle_t *)&a->pump);
    close_handle(a, (uv_handle_t *)&a->sync_timer);
    close_handle(a, (uv_handle_t *)&a->stop_timer);
    close_handle(a, (uv_handle_t *)&a->sigint);
    close_handle(a, (uv_handle_t *)&a->sigterm);
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
    sl_ship_drain(a->ship);
    a->stop_deadline = sl_mono_ns() + a->cfg->client_timeout;
    uv_timer_start(&a->stop_timer, on_stop_tick, 0, 20);
}

void sl_agent_free(struct sl_agent *a)
{
    for (struct afile *list[2] = {a->files, a->retired}, *f; list[0] || list[1];) {
        int i = list[0] ? 0 : 1;
        f = list[i];
        list[i] = f->next;
        file_free(f);
    }
    sl_positions_release(&a->pos);
    sl_metrics_free(a->metrics);
    sl_free(a->scratch);
    sl_free(a);
}
