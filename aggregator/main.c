/* sluice-aggregator: loads the configuration, replays the WAL into the
 * ingester, then serves the push and read APIs on one libuv loop until
 * SIGINT/SIGTERM, when it stops accepting, lets in-flight pushes reach the
 * WAL, and exits 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "aggregator/api/push.h"
#include "aggregator/config/agg_config.h"
#include "aggregator/compactor/compactor.h"
#include "aggregator/flush/flush.h"
#include "aggregator/ingester/ingester.h"
#include "aggregator/querier/query_api.h"
#include "aggregator/querier/select.h"
#include "aggregator/store/store.h"
#include "aggregator/wal/wal.h"
#include "common/compress.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/version.h"

struct app {
    struct sl_agg_config cfg;
    uv_loop_t loop;
    struct sl_metrics *metrics;
    struct sl_ingester *ing;
    struct sl_wal *wal;
    struct sl_http_server *srv;
    struct sl_push_api *push;
    struct sl_query_api *query;
    struct sl_store *store;
    struct sl_select *select;
    struct sl_flusher *flusher;
    struct sl_compactor *compactor;
    uv_signal_t sigint, sigterm;
    bool ready, stopping;
};

struct args {
    const char *config;
    const char **sets;
    size_t nsets;
    bool check, version, help;
};

static const char usage[] =
    "usage: sluice-aggregator [--config FILE] [--listen HOST:PORT] [--data-dir DIR]\n"
    "                         [--target all|write|read|backend] [--set key=value]...\n"
    "                         [--check-config] [--version] [--help]\n";

static void print_help(void)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, usage);
    sl_buf_append_str(&b, "\nConfiguration keys (YAML file, or --set key=value):\n");
    sl_config_help(sl_agg_options, sl_agg_noptions, &b);
    fwrite(b.data, 1, b.len, stdout);
    sl_buf_release(&b);
}

/* Flag value: "--flag VALUE" or "--flag=VALUE". */
static const char *flag_value(int argc, char **argv, int *i, const char *flag)
{
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "sluice-aggregator: %s needs a value\n%s", flag, usage);
        exit(2);
    }
    return argv[++*i];
}

static void add_set(struct args *a, const char *key, const char *value)
{
    a->sets = sl_reallocarray(a->sets, a->nsets + 1, sizeof(*a->sets));
    if (key) {
        size_t n = strlen(key) + strlen(value) + 2;
        char *s = sl_malloc(n);
        snprintf(s, n, "%s=%s", key, value);
        a->sets[a->nsets++] = s;
    } else {
        a->sets[a->nsets++] = sl_strdup(value);
    }
}

static void parse_args(int argc, char **argv, struct args *a)
{
    /* Flags that name a key are applied after every --set: they win. */
    const char *listen = NULL, *data_dir = NULL, *target = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if ((v = flag_value(argc, argv, &i, "--config")))
            a->config = v;
        else if ((v = flag_value(argc, argv, &i, "--set")))
            add_set(a, NULL, v);
        else if ((v = flag_value(argc, argv, &i, "--listen")))
            listen = v;
        else if ((v = flag_value(argc, argv, &i, "--data-dir")))
            data_dir = v;
        else if ((v = flag_value(argc, argv, &i, "--target")))
            target = v;
        else if (strcmp(argv[i], "--check-config") == 0)
            a->check = true;
        else if (strcmp(argv[i], "--version") == 0)
            a->version = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            a->help = true;
        else {
            fprintf(stderr, "sluice-aggregator: unknown argument \"%s\"\n%s", argv[i], usage);
            exit(2);
        }
    }
    if (listen)
        add_set(a, "server.listen", listen);
    if (data_dir)
        add_set(a, "data_dir", data_dir);
    if (target)
        add_set(a, "target", target);
}

/* ---- small routes ---- */

static void handle_ready(struct sl_http_request *req, void *ud)
{
    struct app *app = ud;
    if (!app->ready || app->stopping)
        sl_http_respond_text(req, 503, "not ready");
    else if (app->wal && sl_wal_failed(app->wal))
        sl_http_respond_text(req, 503, "not ready: write-ahead log failed");
    else
        sl_http_respond_text(req, 200, "ready");
}

static void handle_metrics(struct sl_http_request *req, void *ud)
{
    struct app *app = ud;
    struct sl_buf b = SL_BUF_INIT;
    sl_metrics_render(app->metrics, &b);
    sl_http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    sl_buf_release(&b);
}

static void handle_config(struct sl_http_request *req, void *ud)
{
    struct app *app = ud;
    struct sl_buf b = SL_BUF_INIT;
    sl_config_dump(sl_agg_options, sl_agg_noptions, &app->cfg, &b);
    sl_http_respond_buf(req, 200, "text/plain; charset=utf-8", &b);
    sl_buf_release(&b);
}

/* POST /flush: every in-memory chunk to the store, and its index entries,
 * on the thread pool; 204 once done. */
#define FLUSH_TIMEOUT_NS (5 * 60 * 1000000000LL)

struct flush_work {
    uv_work_t w;
    struct app *app;
    struct sl_http_request *req;
    int rc;
};

static void flush_work_cb(uv_work_t *w)
{
    struct flush_work *fw = (struct flush_work *)w;
    fw->rc = sl_flusher_flush(fw->app->flusher, FLUSH_TIMEOUT_NS);
}

static void flush_after_cb(uv_work_t *w, int status)
{
    struct flush_work *fw = (struct flush_work *)w;
    if (status == 0 && fw->rc == 0)
        sl_http_respond(fw->req, 204, NULL, NULL, 0);
    else
        sl_http_respond_text(fw->req, 500, "flush failed: %s",
                             sl_strerror(status ? sl_err_from_uv(status) : fw->rc));
    sl_free(fw);
}

static void handle_flush(struct sl_http_request *req, void *ud)
{
    struct app *app = ud;
    if (!app->flusher) {
        sl_http_respond_text(req, 400, "this target does not flush (no ingester)");
        return;
    }
    struct flush_work *fw = SL_NEW(struct flush_work);
    fw->app = app;
    fw->req = req;
    uv_queue_work(&app->loop, &fw->w, flush_work_cb, flush_after_cb);
}

/* POST /compactor/run: one compactor run now, on the thread pool; 204 once
 * done. */
struct compact_work {
    uv_work_t w;
    struct app *app;
    struct sl_http_request *req;
    int rc;
};

static void compact_work_cb(uv_work_t *w)
{
    struct compact_work *cw = (struct compact_work *)w;
    cw->rc = sl_compactor_run(cw->app->compactor, 0, NULL);
}

static void compact_after_cb(uv_work_t *w, int status)
{
    struct compact_work *cw = (struct compact_work *)w;
    if (status == 0 && cw->rc == 0)
        sl_http_respond(cw->req, 204, NULL, NULL, 0);
    else
        sl_http_respond_text(cw->req, 500, "compaction failed: %s",
                             sl_strerror(status ? sl_err_from_uv(status) : cw->rc));
    sl_free(cw);
}

static void handle_compact(struct sl_http_request *req, void *ud)
{
    struct app *app = ud;
    if (!app->compactor) {
        sl_http_respond_text(req, 400, "this target does not run the compactor");
        return;
    }
    struct compact_work *cw = SL_NEW(struct compact_work);
    cw->app = app;
    cw->req = req;
    uv_queue_work(&app->loop, &cw->w, compact_work_cb, compact_after_cb);
}

/* ---- start-up ---- */

static uint64_t wal_segment_fn(void *ud)
{
    return sl_wal_segment(ud);
}

static int open_store(struct app *app)
{
    const struct sl_agg_config *c = &app->cfg;
    struct sl_store_opts so = {.backend = c->storage_backend,
                               .fs_dir = c->storage_fs_dir,
                               .s3_bucket = c->s3_bucket,
                               .s3_region = c->s3_region,
                               .s3_endpoint = c->s3_endpoint,
                               .s3_path_style = c->s3_path_style,
                               .s3_access_key_id = c->s3_access_key_id,
                               .s3_secret_access_key = c->s3_secret_access_key,
                               .s3_session_token = c->s3_session_token,
                               .s3_ca_file = c->s3_ca_file,
                               .s3_insecure_skip_verify = c->s3_insecure_skip_verify,
                               .s3_timeout_ns = c->s3_timeout_ns,
                               .s3_max_retries = (int)c->s3_max_retries};
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_store_open(&so, app->metrics, &app->store, &err);
    if (rc != 0) {
        sl_error("cannot open the object store", "backend=%s error=\"%s\"", c->storage_backend,
                 err.data ? err.data : sl_strerror(rc));
        sl_buf_release(&err);
        return rc;
    }
    sl_buf_release(&err);
    /* The chunk cache is for remote stores: filesystem chunks are local. */
    bool remote = strcmp(c->storage_backend, "filesystem") != 0;
    struct sl_select_opts selo = {
        .store = app->store,
        .metrics = app->metrics,
        .max_concurrency = c->q_max_concurrency > 0 ? (size_t)c->q_max_concurrency : 0,
        .chunk_cache_dir = remote ? c->q_chunk_cache_dir : NULL,
        .chunk_cache_max_bytes =
            c->q_chunk_cache_max_size > 0 ? (uint64_t)c->q_chunk_cache_max_size : 0,
        .index_cache_max_bytes = c->q_index_cache_size > 0 ? (uint64_t)c->q_index_cache_size : 0};
    app->select = sl_select_new_opts(&selo);
    if (c->compactor_enabled &&
        (strcmp(c->target, "all") == 0 || strcmp(c->target, "backend") == 0)) {
        struct sl_compactor_opts co = {.store = app->store,
                                       .metrics = app->metrics,
                                       .interval_ns = c->compactor_interval_ns,
                                       .retention_ns = c->lim_retention_period_ns,
                                       .orphan_grace_ns = c->compactor_orphan_grace_period_ns};
        if ((rc = sl_compactor_start(&co, &app->compactor)) != 0) {
            sl_error("cannot start the compactor", "error=\"%s\"", sl_strerror(rc));
            return rc;
        }
    }
    if (strcmp(c->target, "read") == 0 || strcmp(c->target, "backend") == 0)
        return 0;
    enum sl_codec codec = SL_CODEC_ZSTD;
    sl_codec_parse(c->ing_chunk_encoding, strlen(c->ing_chunk_encoding), &codec);
    struct sl_flusher_opts fo = {.ing = app->ing,
                                 .store = app->store,
                                 .metrics = app->metrics,
                                 .codec = codec == SL_CODEC_NONE ? SL_CODEC_ZSTD : codec,
                                 .level = (int)c->ing_chunk_compression_level,
                                 .stored_block_size = (size_t)c->ing_chunk_stored_block_size,
                                 .check_period_ns = c->ing_flush_check_period_ns,
                                 .index_upload_period_ns = c->ing_index_upload_period_ns};
    rc = sl_flusher_start(&fo, &app->flusher);
    if (rc != 0) {
        sl_error("cannot start the flusher", "error=\"%s\"", sl_strerror(rc));
        return rc;
    }
    if (app->wal) {
        sl_ingester_set_wal_seq_fn(app->ing, wal_segment_fn, app->wal);
        sl_flusher_set_wal(app->flusher, app->wal);
    }
    return 0;
}

/* Logs what a shutdown flush left in memory (the WAL still holds it). */
static void log_unflushed(struct app *app, int rc)
{
    struct sl_flusher_pending p;
    sl_flusher_pending(app->flusher, &p);
    sl_error("flush on shutdown incomplete: what was not stored stays in the WAL and is "
             "replayed at the next start",
             "error=\"%s\" timeout_ms=%lld chunks_not_flushed=%zu entries_not_flushed=%llu "
             "tenants=%zu oldest_entry_ns=%lld wal_dir=%s",
             sl_strerror(rc), (long long)(app->cfg.ing_shutdown_flush_timeout_ns / 1000000),
             p.chunks, (unsigned long long)p.entries, p.tenants, (long long)p.oldest_ns,
             app->cfg.wal_enabled ? app->cfg.wal_dir : "disabled");
}

/* After the loop: flush what is in memory (ingester.flush_on_shutdown), for
 * at most ingester.shutdown_flush_timeout; when all of it is stored, the WAL
 * holds nothing more and is emptied, so a restart does not replay (and store
 * again) what is already stored. Otherwise every segment stays. Returns false
 * when a flush worker is still inside a store call: then the store, the
 * ingester and the metrics it uses must stay allocated until exit. */
static bool stop_store(struct app *app)
{
    int64_t timeout = app->cfg.ing_shutdown_flush_timeout_ns;
    int64_t deadline = (int64_t)uv_hrtime() + timeout;
    if (app->flusher && app->cfg.ing_flush_on_shutdown) {
        int rc = sl_flusher_flush(app->flusher, timeout);
        uint64_t seq;
        if (rc == 0 && !sl_ingester_min_wal_seq(app->ing, &seq) && app->cfg.wal_enabled) {
            size_t removed = 0;
            sl_wal_purge(app->cfg.wal_dir, UINT64_MAX, &removed);
            sl_info("flushed on shutdown", "wal_segments_removed=%zu", removed);
        } else if (rc != 0) {
            log_unflushed(app, rc);
        }
    }
    /* Workers busy in a store call get what is left of the bound, at least
     * a second, then are left behind. */
    int64_t left = deadline - (int64_t)uv_hrtime();
    if (sl_flusher_stop_within(app->flusher, left > 1000000000LL ? left : 1000000000LL) != 0) {
        sl_warn("flush workers still inside a store call at exit: not waited for", NULL);
        return false;
    }
    app->flusher = NULL;
    sl_compactor_stop(app->compactor);
    app->compactor = NULL;
    sl_select_free(app->select);
    app->select = NULL;
    sl_store_close(app->store);
    app->store = NULL;
    return true;
}

static int replay_record(struct sl_bytes payload, void *ud)
{
    return sl_push_record_apply(ud, payload, NULL);
}

static int open_wal(struct app *app)
{
    struct sl_buf err = SL_BUF_INIT;
    struct sl_wal_opts wo = {.dir = app->cfg.wal_dir,
                             .segment_size = (size_t)app->cfg.wal_segment_size,
                             .metrics = app->metrics};
    sl_wal_fsync_parse(app->cfg.wal_fsync, &wo.fsync);
    struct sl_wal_replay_stats st;
    int64_t t0 = uv_hrtime();
    int rc = sl_wal_open(&wo, &app->wal, &err);
    if (rc == 0) {
        rc = sl_wal_replay(app->wal, replay_record, app->ing, &st, &err);
        if (rc == 0)
            sl_info("wal replayed",
                    "dir=%s segments=%zu records=%zu bytes=%zu corrupt_tails=%zu "
                    "apply_errors=%zu streams=%zu duration_ms=%lld",
                    app->cfg.wal_dir, st.segments, st.records, st.bytes, st.corrupt_tails,
                    st.apply_errors, sl_ingester_streams(app->ing),
                    (long long)((int64_t)uv_hrtime() - t0) / 1000000);
    }
    if (rc == 0)
        rc = sl_wal_start(app->wal, &app->loop, &err);
    if (rc != 0)
        sl_error("cannot open the write-ahead log", "error=\"%s\"", err.data ? err.data : "");
    sl_buf_release(&err);
    return rc;
}

static void fill_push_opts(const struct sl_agg_config *c, struct sl_push_opts *o)
{
    o->auth_enabled = c->auth_enabled;
    o->limits.labels.max_names = (size_t)c->lim_max_label_names_per_series;
    o->limits.labels.max_name_len = (size_t)c->lim_max_label_name_length;
    o->limits.labels.max_value_len = (size_t)c->lim_max_label_value_length;
    o->limits.max_line_size = (size_t)c->lim_max_line_size;
    o->limits.max_meta_size = (size_t)c->lim_max_structured_metadata_size;
    o->limits.max_meta_entries = (size_t)c->lim_max_structured_metadata_entries_count;
    o->limits.reject_old_samples = c->lim_reject_old_samples;
    o->limits.reject_old_samples_max_age_ns = c->lim_reject_old_samples_max_age_ns;
    o->limits.creation_grace_period_ns = c->lim_creation_grace_period_ns;
    o->limits.ingestion_rate_bytes = c->lim_ingestion_rate_mb_f * (1 << 20);
    o->limits.ingestion_burst_bytes = c->lim_ingestion_burst_size_mb_f * (1 << 20);
}

static int start_http(struct app *app)
{
    const struct sl_agg_config *c = &app->cfg;
    struct sl_http_server_opts so = {
        .max_body_bytes = (size_t)c->server_max_request_bytes,
        .read_timeout_ms = c->server_read_timeout_ns / 1000000,
        .metrics = app->metrics,
        .metrics_prefix = "sluice_aggregator",
    };
    app->srv = sl_http_server_new(&app->loop, &so);
    sl_http_server_route(app->srv, "GET", "/ready", false, handle_ready, app);
    sl_http_server_route(app->srv, "GET", "/metrics", false, handle_metrics, app);
    sl_http_server_route(app->srv, "GET", "/config", false, handle_config, app);
    sl_http_server_route(app->srv, "POST", "/flush", false, handle_flush, app);
    sl_http_server_route(app->srv, "POST", "/compactor/run", false, handle_compact, app);
    if (strcmp(c->target, "read") != 0) {
        struct sl_push_opts po;
        fill_push_opts(c, &po);
        app->push = sl_push_api_new(app->srv, app->ing, app->wal, app->metrics, &po);
    }
    struct sl_query_api_opts qo = {.auth_enabled = c->auth_enabled,
                                   .max_entries_limit = c->lim_max_entries_limit_per_query,
                                   .max_query_series = c->lim_max_query_series,
                                   .query_timeout_ns = c->lim_query_timeout_ns,
                                   .max_query_bytes_read = c->lim_max_query_bytes_read,
                                   .split_interval_ns = c->q_split_queries_by_interval_ns,
                                   .max_concurrency = c->q_max_concurrency,
                                   .loop = &app->loop,
                                   .select = app->select,
                                   .max_concurrent_tail_requests =
                                       (int)c->lim_max_concurrent_tail_requests,
                                   .tail_max_duration_ns = c->q_tail_max_duration_ns,
                                   .tail_max_queued_bytes = (size_t)c->q_tail_max_queued_bytes};
    app->query = sl_query_api_new(app->srv, app->ing, app->metrics, &qo);
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_http_server_listen(app->srv, c->server_listen, &err);
    if (rc != 0)
        sl_error("cannot listen", "listen=%s error=\"%s\"", c->server_listen,
                 err.data ? err.data : sl_strerror(rc));
    sl_buf_release(&err);
    return rc;
}

/* ---- shutdown: server (in-flight pushes answered) -> WAL -> signals ---- */

static void on_wal_closed(void *ud)
{
    struct app *app = ud;
    app->wal = NULL;
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
}

static void on_server_closed(void *ud)
{
    struct app *app = ud;
    app->srv = NULL;
    if (app->query) {
        sl_query_api_free(app->query);
        app->query = NULL;
    }
    if (app->flusher)
        sl_flusher_set_wal(app->flusher, NULL);
    if (app->wal)
        sl_wal_close(app->wal, on_wal_closed, app);
    else
        on_wal_closed(app);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    if (app->stopping) {
        sl_warn("second signal, exiting at once", "signal=%d", signum);
        exit(1);
    }
    sl_info("stopping", "signal=%d", signum);
    app->stopping = true;
    sl_query_api_cancel(app->query); /* running queries answer 503 now */
    if (app->srv)
        sl_http_server_close(app->srv, on_server_closed, app);
    else
        on_server_closed(app);
}

static int load_config(struct args *a, struct sl_agg_config *cfg)
{
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_agg_config_load(cfg, a->config, a->sets, a->nsets, &err);
    if (rc != 0)
        fprintf(stderr, "sluice-aggregator: %s\n", err.data ? err.data : sl_strerror(rc));
    sl_buf_release(&err);
    return rc;
}

static int run(struct app *app)
{
    struct sl_agg_config *c = &app->cfg;
    if (sl_mkdir_p(c->data_dir) != 0) {
        sl_error("cannot create data_dir", "dir=%s error=\"%s\"", c->data_dir, strerror(errno));
        return 1;
    }
    uv_loop_init(&app->loop);
    app->metrics = sl_metrics_new();
    struct sl_ingester_opts io = {.block_size = (size_t)c->ing_chunk_block_size,
                                  .max_chunk_age_ns = c->ing_max_chunk_age_ns,
                                  .max_streams_per_tenant = (size_t)c->lim_max_streams_per_tenant,
                                  .chunk_target_size = (size_t)c->ing_chunk_target_size,
                                  .chunk_idle_period_ns = c->ing_chunk_idle_period_ns};
    app->ing = sl_ingester_new(&io, app->metrics);
    int rc = 0;
    if (c->wal_enabled)
        rc = open_wal(app);
    else
        sl_warn("wal disabled: acknowledged pushes are lost on a crash", NULL);
    if (rc == 0)
        rc = open_store(app);
    if (rc == 0)
        rc = start_http(app);
    if (rc == 0) {
        app->ready = true;
        sl_info("started", "version=%s listen=%s port=%d data_dir=%s target=%s wal=%s", SL_VERSION,
                c->server_listen, sl_http_server_port(app->srv), c->data_dir, c->target,
                c->wal_enabled ? c->wal_dir : "disabled");
        uv_signal_init(&app->loop, &app->sigint);
        uv_signal_init(&app->loop, &app->sigterm);
        app->sigint.data = app->sigterm.data = app;
        uv_signal_start(&app->sigint, on_signal, SIGINT);
        uv_signal_start(&app->sigterm, on_signal, SIGTERM);
        uv_run(&app->loop, UV_RUN_DEFAULT);
        sl_info("stopped", NULL);
    } else {
        /* Failed start: close what was opened, then let the loop release it. */
        if (app->srv)
            sl_http_server_close(app->srv, NULL, NULL);
        if (app->flusher)
            sl_flusher_set_wal(app->flusher, NULL);
        if (app->wal)
            sl_wal_close(app->wal, NULL, NULL);
        uv_run(&app->loop, UV_RUN_DEFAULT);
    }
    if (!stop_store(app)) {
        /* Threads still run inside the store: neither free what they use nor
         * run exit handlers (library clean-ups) under them. */
        fflush(NULL);
        _exit(rc == 0 ? 0 : 1);
    }
    if (app->query)
        sl_query_api_free(app->query);
    sl_push_api_free(app->push);
    sl_ingester_free(app->ing);
    uv_loop_close(&app->loop);
    sl_metrics_free(app->metrics);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    parse_args(argc, argv, &a);
    int status = 0;
    if (a.help) {
        print_help();
        goto out;
    }
    if (a.version) {
        printf("sluice-aggregator %s\n", SL_VERSION);
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    struct app *app = SL_NEW(struct app);
    if (load_config(&a, &app->cfg) != 0) {
        sl_free(app);
        status = 1;
        goto out;
    }
    enum sl_log_level lvl;
    if (sl_log_level_parse(app->cfg.server_log_level, &lvl) == 0)
        sl_log_set_level(lvl);
    if (a.check) {
        struct sl_buf b = SL_BUF_INIT;
        sl_config_dump(sl_agg_options, sl_agg_noptions, &app->cfg, &b);
        fwrite(b.data, 1, b.len, stdout);
        sl_buf_release(&b);
    } else {
        status = run(app);
    }
    sl_agg_config_release(&app->cfg);
    sl_free(app);
out:
    for (size_t i = 0; i < a.nsets; i++)
        sl_free((void *)a.sets[i]);
    sl_free(a.sets);
    return status;
}
