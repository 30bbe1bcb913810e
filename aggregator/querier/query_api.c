/* HTTP glue of the read API: parameters (query string, and the form body of
 * a POST) are checked on the loop thread with Loki's rules and messages; the
 * query itself runs on the libuv thread pool (sl_querier_run) and the answer
 * is sent from the after-work callback, on the loop thread. */
#include "aggregator/querier/query_api.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/logql/logql.h"
#include "aggregator/querier/querier.h"
#include "aggregator/querier/tail.h"
#include "aggregator/tenant/tenant.h"
#include "common/compress.h"
#include "common/err.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/version.h"

#define DEFAULT_SINCE_NS (3600 * SL_NS_PER_SEC) /* Loki's defaultSince */
#define DEFAULT_LIMIT    100
#define JSON_CT          "application/json; charset=UTF-8"
#define LABEL_PREFIX     "/loki/api/v1/label/"
#define GZIP_MIN_BYTES   1024 /* smaller answers are sent as they are */
/* Level 1: about 3x the speed of the default for a few percent more bytes;
 * on big label and series lists the default level took longer than the
 * query itself. */
#define GZIP_LEVEL 1

struct sl_query_api {
    struct sl_http_server *srv;
    struct sl_ingester *ing;
    uv_loop_t *loop;
    struct sl_query_api_opts o;
    size_t inflight;
    struct work *running; /* queued or running on the pool */
    bool freeing;         /* free requested while work was in flight */
    struct sl_metric_family *fam_queries;
    struct sl_metric *m_lines, *m_bytes, *m_regex_limit;
    struct sl_metric *m_split_parts, *m_split_fallbacks, *m_bytes_refused;
    struct sl_metric_family *fam_duration;
    struct sl_metric *m_cancel_gone, *m_cancel_shutdown, *m_cancel_timeout;
    struct sl_log_limit log_limit;
    struct sl_tail_api *tail; /* /loki/api/v1/tail (querier/tail.h) */
};

struct param {
    struct sl_bytes key, value; /* decoded, in the request arena */
};

struct params {
    struct param *v;
    size_t n, cap;
};

struct work {
    uv_work_t w;
    struct sl_query_api *api;
    struct sl_http_request *req;
    const char *endpoint; /* metric label */
    struct sl_querier_request qr;
    struct sl_querier_result res;
    atomic_bool canceled;     /* set on shutdown or hang-up: the query stops */
    bool client_gone;         /* the client hung up: answered 499, nobody reads it */
    struct work *prev, *next; /* api->running */
};

static void params_add_form(struct params *ps, struct sl_arena *a, struct sl_bytes form)
{
    const char *p = form.ptr, *end = form.ptr + form.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (pe > p) {
            if (ps->n == ps->cap) {
                struct param *nv = sl_arena_alloc(a, (ps->cap ? 2 * ps->cap : 16) * sizeof *nv);
                if (ps->n)
                    memcpy(nv, ps->v, ps->n * sizeof *nv);
                ps->v = nv;
                ps->cap = ps->cap ? 2 * ps->cap : 16;
            }
            const char *ke = eq ? eq : pe;
            ps->v[ps->n].key = sl_http_form_decode(a, sl_bytes(p, (size_t)(ke - p)));
            ps->v[ps->n].value =
                eq ? sl_http_form_decode(a, sl_bytes(eq + 1, (size_t)(pe - eq - 1)))
                   : sl_bytes("", 0);
            ps->n++;
        }
        p = pe + 1;
    }
}

/* Query string, then a POST's form body (as Go's Request.ParseForm). */
static void params_collect(struct sl_http_request *req, struct params *ps)
{
    memset(ps, 0, sizeof *ps);
    params_add_form(ps, &req->arena, req->query);
    if (strcmp(req->method, "POST") == 0) {
        const struct sl_bytes *ct = sl_http_req_header(req, "Content-Type");
        if (ct && ct->len >= 33 &&
            strncasecmp(ct->ptr, "application/x-www-form-urlencoded", 33) == 0)
            params_add_form(ps, &req->arena, sl_buf_bytes(&req->body));
    }
}

static const struct sl_bytes *param(const struct params *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (sl_bytes_eq_str(ps->v[i].key, name))
            return &ps->v[i].value;
    return NULL;
}

/* A present but empty parameter counts as absent, as in Loki. */
static const struct sl_bytes *param_nonempty(const struct params *ps, const char *name)
{
    const struct sl_bytes *v = param(ps, name);
    return v && v->len ? v : NULL;
}

static void bad_param(struct sl_http_request *req, const char *name, const struct sl_bytes *v,
                      const char *why)
{
    sl_http_respond_text(req, 400, "invalid parameter \"%s\": cannot parse \"%.*s\": %s", name,
                         (int)v->len, v->ptr, why);
}

/* Loki's determineBounds: end defaults to now; start to min(end, now) minus
 * since (default 1h); an explicit start wins over since. */
static int parse_bounds(struct sl_http_request *req, const struct params *ps, int64_t *start,
                        int64_t *end)
{
    int64_t now = sl_now_ns(), since = DEFAULT_SINCE_NS;
    const struct sl_bytes *v;
    if ((v = param_nonempty(ps, "since")) && sl_duration_parse(v->ptr, v->len, &since)) {
        bad_param(req, "since", v, "not a valid duration");
        return SL_EINVAL;
    }
    *end = now;
    if ((v = param_nonempty(ps, "end")) && sl_loki_time_parse(v->ptr, v->len, end)) {
        bad_param(req, "end", v, "not a valid timestamp");
        return SL_EINVAL;
    }
    *start = (*end > now ? now : *end) - since;
    if ((v = param_nonempty(ps, "start")) && sl_loki_time_parse(v->ptr, v->len, start)) {
        bad_param(req, "start", v, "not a valid timestamp");
        return SL_EINVAL;
    }
    return 0;
}

/* True if Accept-Encoding lists gzip (or *) without q=0. */
static bool accepts_gzip(const struct sl_bytes *ae)
{
    const char *p = ae->ptr, *end = ae->ptr + ae->len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *te = comma ? comma : end;
        while (p < te && (*p == ' ' || *p == '\t'))
            p++;
        const char *semi = NULL;
        for (const char *c = p; c < te && !semi; c++)
            if (*c == ';')
                semi = c;
        const char *ne = semi ? semi : te;
        while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
            ne--;
        size_t n = (size_t)(ne - p);
        if ((n == 4 && strncasecmp(p, "gzip", 4) == 0) || (n == 1 && *p == '*')) {
            bool zero = false;
            if (semi) {
                const char *q = semi + 1;
                while (q < te && *q == ' ')
                    q++;
                if (te - q >= 3 && strncasecmp(q, "q=0", 3) == 0) {
                    zero = true;
                    for (const char *d = q + 3; d < te; d++)
                        if (*d >= '1' && *d <= '9')
                            zero = false;
                }
            }
            return !zero;
        }
        p = te + 1;
    }
    return false;
}

/* A JSON answer, gzip-compressed when the client asked and it is worth it. */
static void respond_json(struct sl_http_request *req, int status, struct sl_buf *body)
{
    const struct sl_bytes *ae = sl_http_req_header(req, "Accept-Encoding");
    sl_http_req_add_header(req, "Vary", "Accept-Encoding");
    if (ae && body->len >= GZIP_MIN_BYTES && accepts_gzip(ae)) {
        struct sl_buf z = SL_BUF_INIT;
        if (sl_gzip_compress(&z, body->data, body->len, GZIP_LEVEL) == 0) {
            sl_http_req_add_header(req, "Content-Encoding", "gzip");
            sl_http_respond_buf(req, status, JSON_CT, &z);
            sl_buf_release(&z);
            return;
        }
        sl_buf_release(&z); /* cannot happen short of a zlib bug: send it plain */
    }
    sl_http_respond_buf(req, status, JSON_CT, body);
}

static void count_opt(struct sl_metric *m)
{
    if (m) /* no metrics registry given */
        sl_counter_inc(m);
}

static void work_cb(uv_work_t *w)
{
    struct work *wk = (struct work *)w;
    sl_querier_run(wk->api->ing, &wk->qr, &wk->res);
}

static void api_destroy(struct sl_query_api *api)
{
    sl_tail_api_free(api->tail);
    sl_free(api);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct work *wk = (struct work *)w;
    struct sl_query_api *api = wk->api;
    struct sl_querier_result *res = &wk->res;
    /* The request is freed by the response: read what the metrics need first. */
    double seconds = (double)(sl_mono_ns() - wk->req->start_mono_ns) / 1e9;
    int code = status == UV_ECANCELED ? 503 : res->status;
    if (wk->client_gone) {
        /* Loki's status for a request its client canceled; the server
         * discards it (reset) or writes it to a half-closed connection. */
        code = 499;
        sl_http_respond_text(wk->req, code, "client canceled request");
    } else if (status == UV_ECANCELED) {
        sl_http_respond_text(wk->req, 503, "query canceled: shutting down");
    } else if (res->json) {
        respond_json(wk->req, res->status, &res->body);
    } else {
        sl_http_respond_text(wk->req, res->status, "%.*s", (int)res->body.len,
                             res->body.data ? res->body.data : "");
        if (res->status >= 500)
            sl_log_limited(&api->log_limit, SL_LOG_WARN, "query failed", "endpoint=%s status=%d",
                           wk->endpoint, res->status);
    }
    if (code == 504 && !wk->client_gone) {
        count_opt(api->m_cancel_timeout);
        sl_log_limited(&api->log_limit, SL_LOG_INFO, "query canceled", "endpoint=%s reason=timeout",
                       wk->endpoint);
    }
    if (api->fam_queries) {
        char codes[16];
        snprintf(codes, sizeof codes, "%d", code);
        sl_counter_inc(sl_metric_with(api->fam_queries, wk->endpoint, codes));
        sl_counter_add(api->m_lines, (double)res->lines_scanned);
        sl_counter_add(api->m_bytes, (double)res->bytes_scanned);
        sl_counter_add(api->m_regex_limit, (double)res->regex_limit_hits);
        sl_counter_add(api->m_split_parts, (double)res->split_parts);
        sl_counter_add(api->m_split_fallbacks, res->split_fallback ? 1 : 0);
        sl_counter_add(api->m_bytes_refused, res->bytes_limited ? 1 : 0);
        sl_histogram_observe(sl_metric_with(api->fam_duration, wk->endpoint), seconds);
    }
    if (res->bytes_limited)
        sl_log_limited(&api->log_limit, SL_LOG_INFO, "query refused",
                       "endpoint=%s reason=max_query_bytes_read limit=%lld", wk->endpoint,
                       (long long)api->o.max_query_bytes_read);
    if (res->regex_limit_hits)
        sl_log_limited(&api->log_limit, SL_LOG_WARN, "regex match limit hit, lines not matched",
                       "endpoint=%s count=%llu", wk->endpoint,
                       (unsigned long long)res->regex_limit_hits);
    sl_buf_release(&res->body);
    if (wk->prev)
        wk->prev->next = wk->next;
    else if (api->running == wk)
        api->running = wk->next;
    if (wk->next)
        wk->next->prev = wk->prev;
    sl_free(wk);
    api->inflight--;
    if (api->freeing && api->inflight == 0)
        api_destroy(api);
}

/* The client hung up: stop the query as query_timeout and shutdown do (the
 * scan checks the flag every few thousand entries), or drop it from the
 * pool's queue if it has not started. */
static void on_client_gone(struct sl_http_request *req, void *ud)
{
    (void)req;
    struct work *wk = ud;
    struct sl_query_api *api = wk->api;
    wk->client_gone = true;
    atomic_store(&wk->canceled, true);
    if (api->loop)
        uv_cancel((uv_req_t *)&wk->w);
    count_opt(api->m_cancel_gone);
    sl_log_limited(&api->log_limit, SL_LOG_INFO, "query canceled",
                   "endpoint=%s reason=client_gone elapsed_ms=%lld", wk->endpoint,
                   (long long)((sl_mono_ns() - wk->req->start_mono_ns) / 1000000));
}

static void submit(struct sl_query_api *api, struct work *wk)
{
    wk->api = api;
    wk->qr.select = api->o.select;
    wk->qr.canceled = &wk->canceled;
    if (api->o.query_timeout_ns > 0)
        wk->qr.deadline_mono_ns = wk->req->start_mono_ns + api->o.query_timeout_ns;
    wk->qr.max_bytes_read =
        api->o.max_query_bytes_read > 0 ? (uint64_t)api->o.max_query_bytes_read : 0;
    wk->qr.split_ns = api->o.split_interval_ns > 0 ? api->o.split_interval_ns : 0;
    wk->qr.split_max = api->o.max_concurrency > 0 ? (size_t)api->o.max_concurrency : 0;
    if (!api->loop) { /* no loop given: answer inline (blocks the loop) */
        api->inflight++;
        work_cb(&wk->w);
        after_work_cb(&wk->w, 0);
        return;
    }
    int rc = uv_queue_work(api->loop, &wk->w, work_cb, after_work_cb);
    if (rc) {
        sl_http_respond_text(wk->req, 500, "cannot schedule the query: %s", uv_strerror(rc));
        sl_free(wk);
        return;
    }
    wk->next = api->running;
    if (wk->next)
        wk->next->prev = wk;
    api->running = wk;
    api->inflight++;
    if (!sl_http_req_on_gone(wk->req, on_client_gone, wk))
        on_client_gone(wk->req, wk); /* hung up before the query started */
}

/* Common start of every handler: tenant, parameters, time bounds. */
static struct work *work_begin(struct sl_query_api *api, struct sl_http_request *req,
                               struct params *ps, const char *endpoint)
{
    struct sl_bytes tenant;
    if (sl_tenant_of_request(req, api->o.auth_enabled, &tenant))
        return NULL;
    params_collect(req, ps);
    struct work *wk = SL_NEW(struct work);
    wk->req = req;
    wk->endpoint = endpoint;
    wk->qr.tenant = tenant;
    if (parse_bounds(req, ps, &wk->qr.start_ns, &wk->qr.end_ns)) {
        sl_free(wk);
        return NULL;
    }
    return wk;
}

static int parse_limit(struct sl_query_api *api, struct sl_http_request *req,
                       const struct params *ps, int64_t *limit)
{
    const struct sl_bytes *v = param_nonempty(ps, "limit");
    *limit = DEFAULT_LIMIT;
    if (v) {
        char tmp[32];
        char *endp;
        if (v->len >= sizeof tmp)
            goto bad;
        memcpy(tmp, v->ptr, v->len);
        tmp[v->len] = 0;
        long long x = strtoll(tmp, &endp, 10);
        if (*endp || endp == tmp)
            goto bad;
        if (x <= 0) {
            sl_http_respond_text(req, 400, "limit must be a positive value");
            return SL_EINVAL;
        }
        *limit = x;
    }
    if (api->o.max_entries_limit > 0 && *limit > api->o.max_entries_limit) {
        sl_http_respond_text(req, 400,
                             "max entries limit per query exceeded, limit > max_entries_limit "
                             "(%lld > %lld)",
                             (long long)*limit, (long long)api->o.max_entries_limit);
        return SL_EINVAL;
    }
    return 0;
bad:
    bad_param(req, "limit", v, "not an integer");
    return SL_EINVAL;
}

/* Loki's step: a duration ("15s") or float seconds ("15", "0.5"); the
 * default is max(floor((end - start) / 250), 1) seconds; at most 11000
 * points per series. */
static int parse_step(struct sl_http_request *req, const struct params *ps, int64_t start,
                      int64_t end, int64_t *step)
{
    const struct sl_bytes *v = param_nonempty(ps, "step");
    int64_t range_s = (end - start) / SL_NS_PER_SEC;
    *step = (range_s / 250 > 1 ? range_s / 250 : 1) * SL_NS_PER_SEC;
    if (v) {
        char tmp[64];
        char *endp;
        if (v->len >= sizeof tmp)
            goto bad;
        memcpy(tmp, v->ptr, v->len);
        tmp[v->len] = 0;
        double secs = strtod(tmp, &endp);
        if (*endp == 0 && endp != tmp)
            *step = (int64_t)(secs * 1e9);
        else if (sl_duration_parse(v->ptr, v->len, step))
            goto bad;
        if (*step <= 0) {
            sl_http_respond_text(req, 400,
                                 "zero or negative query resolution step widths are "
                                 "not accepted. Try a positive integer");
            return SL_EINVAL;
        }
    }
    if ((end - start) / *step > 11000) {
        sl_http_respond_text(req, 400,
                             "exceeded maximum resolution of 11,000 points per "
                             "timeseries. Try decreasing the query resolution "
                             "(?step=XX)");
        return SL_EINVAL;
    }
    return 0;
bad:
    bad_param(req, "step", v, "not a valid duration or number of seconds");
    return SL_EINVAL;
}

static void handle_query_range(struct sl_http_request *req, void *ud)
{
    struct sl_query_api *api = ud;
    struct params ps;
    struct work *wk = work_begin(api, req, &ps, "query_range");
    if (!wk)
        return;
    const struct sl_bytes *q = param_nonempty(&ps, "query");
    const struct sl_bytes *dir = param_nonempty(&ps, "direction");
    if (!q) {
        sl_http_respond_text(req, 400, "invalid parameter \"query\": the query is empty");
        goto fail;
    }
    if (wk->qr.end_ns <= wk->qr.start_ns) {
        sl_http_respond_text(req, 400, "end timestamp must not be before or equal to start time");
        goto fail;
    }
    if (parse_limit(api, req, &ps, &wk->qr.limit))
        goto fail;
    if (dir && (dir->len == 7 && strncasecmp(dir->ptr, "forward", 7) == 0)) {
        wk->qr.forward = true;
    } else if (dir && !(dir->len == 8 && strncasecmp(dir->ptr, "backward", 8) == 0)) {
        sl_http_respond_text(req, 400,
                             "invalid parameter \"direction\": \"%.*s\": must be forward or "
                             "backward",
                             (int)dir->len, dir->ptr);
        goto fail;
    }
    if (parse_step(req, &ps, wk->qr.start_ns, wk->qr.end_ns, &wk->qr.step_ns))
        goto fail;
    wk->qr.kind = SL_QUERIER_LOGS;
    wk->qr.query = *q;
    wk->qr.max_series = api->o.max_query_series > 0 ? (size_t)api->o.max_query_series : 0;
    submit(api, wk);
    return;
fail:
    sl_free(wk);
}

/* Instant queries: metric queries evaluated at `time` (default now); a log
 * query gets Loki 3's 400 from the querier. */
static void handle_query(struct sl_http_request *req, void *ud)
{
    struct sl_query_api *api = ud;
    struct params ps;
    struct work *wk = work_begin(api, req, &ps, "query");
    if (!wk)
        return;
    const struct sl_bytes *q = param_nonempty(&ps, "query");
    const struct sl_bytes *t = param_nonempty(&ps, "time");
    if (!q) {
        sl_http_respond_text(req, 400, "invalid parameter \"query\": the query is empty");
        goto fail;
    }
    wk->qr.end_ns = sl_now_ns();
    if (t && sl_loki_time_parse(t->ptr, t->len, &wk->qr.end_ns)) {
        bad_param(req, "time", t, "not a valid timestamp");
        goto fail;
    }
    wk->qr.start_ns = wk->qr.end_ns;
    if (parse_limit(api, req, &ps, &wk->qr.limit))
        goto fail;
    wk->qr.kind = SL_QUERIER_INSTANT;
    wk->qr.query = *q;
    wk->qr.max_series = api->o.max_query_series > 0 ? (size_t)api->o.max_query_series : 0;
    submit(api, wk);
    return;
fail:
    sl_free(wk);
}

static void handle_labels(struct sl_http_request *req, void *ud)
{
    struct sl_query_api *api = ud;
    struct params ps;
    struct work *wk = work_begin(api, req, &ps, "labels");
    if (!wk)
        return;
    wk->qr.kind = SL_QUERIER_LABELS;
    submit(api, wk);
}

static void handle_label_values(struct sl_http_request *req, void *ud)
{
    struct sl_query_api *api = ud;
    struct sl_bytes rest = req->path;
    size_t pl = strlen(LABEL_PREFIX), sl = strlen("/values");
    if (rest.len <= pl + sl || memcmp(rest.ptr + rest.len - sl, "/values", sl) != 0) {
        sl_http_respond_text(req, 404, "not found");
        return;
    }
    struct sl_bytes name = sl_bytes(rest.ptr + pl, rest.len - pl - sl);
    if (!sl_label_name_valid(name)) {
        sl_http_respond_text(req, 400, "invalid label name \"%.*s\"", (int)name.len, name.ptr);
        return;
    }
    struct params ps;
    struct work *wk = work_begin(api, req, &ps, "label_values");
    if (!wk)
        return;
    const struct sl_bytes *q = param_nonempty(&ps, "query");
    wk->qr.kind = SL_QUERIER_LABEL_VALUES;
    wk->qr.label_name = name;
    if (q)
        wk->qr.query = *q;
    submit(api, wk);
}

static void handle_series(struct sl_http_request *req, void *ud)
{
    struct sl_query_api *api = ud;
    struct params ps;
    struct work *wk = work_begin(api, req, &ps, "series");
    if (!wk)
        return;
    size_t n = 0;
    for (size_t i = 0; i < ps.n; i++)
        n += sl_bytes_eq_str(ps.v[i].key, "match[]") || sl_bytes_eq_str(ps.v[i].key, "match");
    if (n == 0) {
        sl_http_respond_text(req, 400, "invalid parameter \"match[]\": at least one is required");
        sl_free(wk);
        return;
    }
    struct sl_bytes *m = sl_arena_alloc(&req->arena, n * sizeof *m);
    n = 0;
    for (size_t i = 0; i < ps.n; i++)
        if (sl_bytes_eq_str(ps.v[i].key, "match[]") || sl_bytes_eq_str(ps.v[i].key, "match"))
            m[n++] = ps.v[i].value;
    wk->qr.kind = SL_QUERIER_SERIES;
    wk->qr.match = m;
    wk->qr.nmatch = n;
    submit(api, wk);
}

/* Loki's shape; what a C build does not know (git revision, branch, who
 * built it, when) is "", and there is no Go. */
static void handle_buildinfo(struct sl_http_request *req, void *ud)
{
    (void)ud;
    struct sl_buf b = SL_BUF_INIT;
    struct sl_jsonw w;
    sl_jsonw_init(&w, &b);
    sl_jsonw_obj_open(&w);
    static const char *const empty[] = {"revision", "branch", "buildUser", "buildDate",
                                        "goVersion"};
    sl_jsonw_key(&w, "version");
    sl_jsonw_str(&w, SL_VERSION);
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
        sl_jsonw_key(&w, empty[i]);
        sl_jsonw_str(&w, "");
    }
    sl_jsonw_obj_close(&w);
    sl_http_respond_buf(req, 200, JSON_CT, &b);
    sl_buf_release(&b);
}

/* index/stats: query (a selector), start, end; bounds as every endpoint. */
static void handle_index_stats(struct sl_http_request *req, void *ud)
{
    struct sl_query_api *api = ud;
    struct params ps;
    struct work *wk = work_begin(api, req, &ps, "index_stats");
    if (!wk)
        return;
    const struct sl_bytes *q = param_nonempty(&ps, "query");
    if (!q) {
        sl_http_respond_text(req, 400, "invalid parameter \"query\": the query is empty");
        sl_free(wk);
        return;
    }
    wk->qr.kind = SL_QUERIER_INDEX_STATS;
    wk->qr.query = *q;
    submit(api, wk);
}

static void route2(struct sl_http_server *srv, const char *path, bool prefix, sl_http_handler h,
                   void *ud)
{
    sl_http_server_route(srv, "GET", path, prefix, h, ud);
    sl_http_server_route(srv, "POST", path, prefix, h, ud);
}

struct sl_query_api *sl_query_api_new(struct sl_http_server *srv, struct sl_ingester *ing,
                                      struct sl_metrics *m, const struct sl_query_api_opts *o)
{
    struct sl_query_api *api = SL_NEW(struct sl_query_api);
    api->srv = srv;
    api->ing = ing;
    api->o = *o;
    api->loop = o->loop;
    if (!api->loop)
        sl_warn("query API without a loop: queries run on the loop thread", "%s", "");
    if (m) {
        api->fam_queries = sl_metrics_counter(m, "sluice_aggregator_queries_total",
                                              "Read API requests answered, by endpoint and status.",
                                              "endpoint,code");
        api->m_lines = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_query_lines_scanned_total", "Lines read by queries.", NULL));
        api->m_bytes = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_query_bytes_scanned_total", "Line bytes read by queries.", NULL));
        api->m_regex_limit = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_query_regex_limit_hits_total",
            "Regex matches abandoned at the match limit (counted as not matching).", NULL));
        api->m_split_parts = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_query_split_parts_total",
            "Parts split metric queries were evaluated in (querier.split_queries_by_interval).",
            NULL));
        api->m_split_fallbacks = sl_metric_with(sl_metrics_counter(
            m, "sluice_aggregator_query_split_fallbacks_total",
            "Split metric queries evaluated whole again after a part failed.", NULL));
        api->m_bytes_refused = sl_metric_with(
            sl_metrics_counter(m, "sluice_aggregator_query_bytes_limit_refused_total",
                               "Queries refused at limits.max_query_bytes_read.", NULL));
        api->fam_duration =
            sl_metrics_histogram(m, "sluice_aggregator_query_duration_seconds",
                                 "Read API request duration, by endpoint.", "endpoint", NULL, 0);
        struct sl_metric_family *fc = sl_metrics_counter(
            m, "sluice_aggregator_queries_cancelled_total",
            "Queries stopped before their end, by reason (client_gone, shutdown, timeout).",
            "reason");
        api->m_cancel_gone = sl_metric_with(fc, "client_gone");
        api->m_cancel_shutdown = sl_metric_with(fc, "shutdown");
        api->m_cancel_timeout = sl_metric_with(fc, "timeout");
    }
    route2(srv, "/loki/api/v1/query_range", false, handle_query_range, api);
    route2(srv, "/loki/api/v1/query", false, handle_query, api);
    route2(srv, "/loki/api/v1/labels", false, handle_labels, api);
    route2(srv, "/loki/api/v1/label", false, handle_labels, api);
    route2(srv, LABEL_PREFIX, true, handle_label_values, api);
    route2(srv, "/loki/api/v1/series", false, handle_series, api);
    route2(srv, "/loki/api/v1/index/stats", false, handle_index_stats, api);
    sl_http_server_route(srv, "GET", "/loki/api/v1/status/buildinfo", false, handle_buildinfo, api);
    struct sl_tail_opts to = {.loop = o->loop,
                              .auth_enabled = o->auth_enabled,
                              .max_entries_limit = o->max_entries_limit,
                              .query_timeout_ns = o->query_timeout_ns,
                              .select = o->select,
                              .max_duration_ns = o->tail_max_duration_ns,
                              .max_queued_bytes = o->tail_max_queued_bytes,
                              .max_tails_per_tenant = o->max_concurrent_tail_requests};
    if (o->loop) /* tails poll on the loop's thread pool */
        api->tail = sl_tail_api_new(srv, ing, m, &to);
    return api;
}

void sl_query_api_cancel(struct sl_query_api *q)
{
    if (!q)
        return;
    for (struct work *wk = q->running; wk; wk = wk->next) {
        if (atomic_exchange(&wk->canceled, true))
            continue;                    /* already stopping */
        count_opt(q->m_cancel_shutdown); /* running scans stop early */
        sl_log_limited(&q->log_limit, SL_LOG_INFO, "query canceled", "endpoint=%s reason=shutdown",
                       wk->endpoint);
    }
}

void sl_query_api_free(struct sl_query_api *q)
{
    if (!q)
        return;
    if (q->inflight) {
        q->freeing = true; /* the last after-work callback frees it */
        sl_query_api_cancel(q);
        return;
    }
    api_destroy(q);
}
