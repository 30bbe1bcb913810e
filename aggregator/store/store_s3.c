/* S3 backend: blocking libcurl easy handles (the store is called from worker
 * threads), kept in a small pool so connections are reused; every request
 * signed with our own SigV4 (sigv4.h), always with a Content-Length and
 * x-amz-content-sha256; credentials from s3_creds.h.
 *
 * Failures are classified once (classify()): transport errors, timeouts, 5xx,
 * 429, SlowDown and RequestTimeout are retried with exponential backoff and
 * jitter up to max_retries; ExpiredToken refreshes temporary credentials and
 * retries; everything else is final. A final failure gives one log line with
 * S3's error code and a hint (rate-limited) and counts
 * sluice_aggregator_store_errors_total{backend="s3",code}. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aggregator/store/s3_creds.h"
#include "aggregator/store/s3_xml.h"
#include "aggregator/store/sigv4.h"
#include "aggregator/store/store_backends.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"

#define POOL_MAX           16
#define DEF_TIMEOUT_MS     30000
#define MAX_CONNECT_MS     5000
#define BACKOFF_BASE_MS    100
#define BACKOFF_MAX_MS     5000
#define MAX_RESPONSE_BYTES ((size_t)1 << 30)

struct s3 {
    char *bucket, *region;
    char *base_url;  /* scheme://host[:port], the endpoint without a path */
    char *host;      /* Host header value, with the bucket for virtual-hosted */
    char *path_base; /* "/<bucket>" path-style, "" virtual-hosted */
    struct sl_s3_creds *creds;
    char *ca_file;
    bool insecure;
    long timeout_ms;
    int max_retries;
    pthread_mutex_t mu; /* pool */
    CURL *pool[POOL_MAX];
    int npool;
    struct sl_metrics *metrics;
    struct sl_metric_family *m_errors;
    struct sl_metric *m_retries;
    struct sl_log_limit log_lim, retry_lim;
};

/* One request and its outcome. */
struct req {
    const char *method, *op; /* "GET", and the operation for messages */
    const char *key;         /* NULL for bucket requests */
    const char *query;       /* encoded, NULL for none */
    const void *body;
    size_t body_len;
    const char *range; /* "bytes=a-b" or NULL */
    struct sl_buf *out;
    /* results */
    long status;
    struct sl_buf code, message; /* S3 error code and message */
};

/* ---- curl handle pool ---- */

static CURL *handle_get(struct s3 *s)
{
    CURL *e = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->npool > 0)
        e = s->pool[--s->npool];
    pthread_mutex_unlock(&s->mu);
    if (e)
        curl_easy_reset(e); /* keeps the connection and DNS caches */
    else
        e = curl_easy_init();
    return e;
}

static void handle_put(struct s3 *s, CURL *e)
{
    pthread_mutex_lock(&s->mu);
    if (s->npool < POOL_MAX) {
        s->pool[s->npool++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (e)
        curl_easy_cleanup(e);
}

/* ---- one HTTP exchange ---- */

struct sink {
    struct sl_buf *b;
    size_t start;
    bool too_big;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct sink *k = ud;
    size_t len = sz * n;
    if (k->b->len - k->start + len > MAX_RESPONSE_BYTES) {
        k->too_big = true;
        return 0;
    }
    sl_buf_append(k->b, p, len);
    return len;
}

static void build_path(const struct s3 *s, const char *key, struct sl_buf *path)
{
    sl_buf_append_str(path, s->path_base);
    if (key) {
        sl_buf_append_char(path, '/');
        sl_sigv4_uri_encode(path, key, strlen(key), true);
    } else if (path->len == 0) {
        sl_buf_append_char(path, '/');
    }
}

static struct curl_slist *sign(struct s3 *s, const struct req *r, const char *path,
                               const struct sl_s3_credentials *cr)
{
    char date[17], hash[65];
    sl_sigv4_amz_date(sl_now_ns() / SL_NS_PER_SEC, date);
    sl_sigv4_sha256_hex(r->body_len ? r->body : "", r->body_len, hash);
    struct sl_sigv4_header h[6];
    size_t nh = 0;
    h[nh++] = (struct sl_sigv4_header){"host", s->host};
    if (r->range)
        h[nh++] = (struct sl_sigv4_header){"range", r->range};
    h[nh++] = (struct sl_sigv4_header){"x-amz-content-sha256", hash};
    h[nh++] = (struct sl_sigv4_header){"x-amz-date", date};
    if (cr->session_token)
        h[nh++] = (struct sl_sigv4_header){"x-amz-security-token", cr->session_token};
    struct sl_sigv4_request sr = {r->method, path, r->query, h, nh, hash, false};
    struct sl_sigv4_scope sc = {cr->access_key_id, cr->secret_access_key, s->region, "s3", date};
    struct sl_buf auth = SL_BUF_INIT, line = SL_BUF_INIT;
    sl_buf_append_str(&auth, "Authorization: ");
    sl_sigv4_authorization(&sr, &sc, &auth);
    struct curl_slist *l = curl_slist_append(NULL, auth.data);
    for (size_t i = 0; i < nh; i++) {
        sl_buf_clear(&line);
        sl_buf_appendf(&line, "%s: %s", h[i].name, h[i].value);
        l = curl_slist_append(l, line.data);
    }
    l = curl_slist_append(l, "Expect:");
    l = curl_slist_append(l, "Content-Type:");
    l = curl_slist_append(l, "Accept:");
    sl_buf_release(&auth);
    sl_buf_release(&line);
    return l;
}

static void setup_method(CURL *e, const struct req *r)
{
    if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
        /* POSTFIELDS + size: always a Content-Length, never chunked. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_len ? (const char *)r->body : "");
        if (strcmp(r->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }
}

/* Performs one attempt. Returns 0 when an HTTP answer was received
 * (r->status set; body of a 2xx appended to r->out, else parsed for the
 * error code), or SL_ETIMEDOUT / SL_ECONN / SL_ETOOBIG with curl's reason in
 * r->message. */
static int attempt(struct s3 *s, struct req *r, const struct sl_s3_credentials *cr)
{
    struct sl_buf path = SL_BUF_INIT, url = SL_BUF_INIT, body = SL_BUF_INIT;
    build_path(s, r->key, &path);
    sl_buf_appendf(&url, "%s%s", s->base_url, path.data);
    if (r->query && *r->query)
        sl_buf_appendf(&url, "?%s", r->query);
    struct curl_slist *hdrs = sign(s, r, path.data, cr);
    CURL *e = handle_get(s);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct sink k = {r->out ? r->out : &body, r->out ? r->out->len : 0, false};
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &k);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     s->timeout_ms < MAX_CONNECT_MS ? s->timeout_ms : (long)MAX_CONNECT_MS);
    if (s->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    if (s->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    setup_method(e, r);
    CURLcode cc = curl_easy_perform(e);
    int rc = 0;
    r->status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    bool ok2xx = r->status >= 200 && r->status < 300;
    if (r->out && !ok2xx) {
        /* An error body (or part of one) went into the caller's buffer: move
         * it out, leaving the buffer as it was. */
        if (cc == CURLE_OK)
            sl_buf_append(&body, r->out->data + k.start, r->out->len - k.start);
        r->out->len = k.start;
        if (r->out->data)
            r->out->data[k.start] = '\0';
    }
    if (cc != CURLE_OK) {
        rc = k.too_big ? SL_ETOOBIG : cc == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_ECONN;
        sl_buf_append_str(&r->message, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else if (!ok2xx && sl_s3_error_parse(body.data, body.len, &r->code, &r->message) != 0) {
        sl_buf_appendf(&r->code, "HTTP%ld", r->status);
    }
    handle_put(s, e);
    curl_slist_free_all(hdrs);
    sl_buf_release(&path);
    sl_buf_release(&url);
    sl_buf_release(&body);
    return rc;
}

/* ---- classification, messages ---- */

enum verdict { V_OK, V_RETRY, V_REFRESH, V_FINAL };

static bool code_is(const struct req *r, const char *c)
{
    return r->code.data && strcmp(r->code.data, c) == 0;
}

static enum verdict classify(int rc, const struct req *r)
{
    if (rc == SL_ETIMEDOUT || rc == SL_ECONN)
        return V_RETRY;
    if (rc)
        return V_FINAL;
    if (r->status >= 200 && r->status < 300)
        return V_OK;
    if (r->status == 416 && r->range)
        return V_OK; /* the range starts past the end: no bytes */
    if (code_is(r, "ExpiredToken") || code_is(r, "TokenRefreshRequired"))
        return V_REFRESH;
    if (r->status >= 500 || r->status == 429 || r->status == 408 || code_is(r, "SlowDown") ||
        code_is(r, "RequestTimeout") || code_is(r, "InternalError"))
        return V_RETRY;
    return V_FINAL;
}

static const char *hint(const struct req *r)
{
    static const struct {
        const char *code, *hint;
    } hints[] = {
        {"SignatureDoesNotMatch", "the secret key does not match the access key id: check "
                                  "storage.s3.secret_access_key (or AWS_SECRET_ACCESS_KEY)"},
        {"InvalidAccessKeyId", "the access key id is unknown to S3: check "
                               "storage.s3.access_key_id (or AWS_ACCESS_KEY_ID)"},
        {"NoSuchBucket", "the bucket does not exist: create it or fix storage.s3.bucket"},
        {"RequestTimeTooSkewed", "this machine's clock differs from S3's by more than 15 "
                                 "minutes: synchronise it (NTP)"},
        {"AccessDenied", "the credentials lack permission for this operation on the bucket"},
        {"ExpiredToken", "the session token has expired"},
        {"InvalidToken", "the session token is malformed or invalid"},
        {"PermanentRedirect", "the bucket is in another region: fix storage.s3.region"},
        {"AuthorizationHeaderMalformed", "the region is wrong for this bucket: fix "
                                         "storage.s3.region"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(hints); i++)
        if (code_is(r, hints[i].code))
            return hints[i].hint;
    return NULL;
}

static int code_to_err(int rc, const struct req *r)
{
    if (rc)
        return rc;
    if (r->status == 404 && code_is(r, "NoSuchKey"))
        return SL_ENOENT;
    if (code_is(r, "SignatureDoesNotMatch") || code_is(r, "InvalidAccessKeyId") ||
        code_is(r, "AccessDenied") || code_is(r, "ExpiredToken") || code_is(r, "InvalidToken") ||
        r->status == 401)
        return SL_EPERM;
    return SL_EREMOTE;
}

static const char *metric_code(int rc, const struct req *r)
{
    if (rc == SL_ETIMEDOUT)
        return "timeout";
    if (rc == SL_ECONN)
        return "connection";
    if (rc == SL_ETOOBIG)
        return "too_big";
    if (rc == SL_EPERM && !r->code.len)
        return "credentials";
    return r->code.len ? r->code.data : "unknown";
}

static void fail_report(struct s3 *s, const struct req *r, int rc, int err_code, int attempts,
                        struct sl_buf *err)
{
    const char *code = metric_code(rc, r);
    const char *h = hint(r);
    const char *msg = r->message.data ? r->message.data : "";
    const char *key = r->key ? r->key : "";
    if (err) {
        if (rc)
            sl_buf_appendf(err, "s3 %s %s: %s: %s", r->method, key, code, msg);
        else
            sl_buf_appendf(err, "s3 %s %s: %ld %s: %s", r->method, key, r->status, code, msg);
        if (h)
            sl_buf_appendf(err, " (%s)", h);
    }
    if (err_code == SL_ENOENT)
        return; /* a missing key is an answer, not a failure */
    if (s->m_errors)
        sl_counter_inc(sl_metric_with(s->m_errors, "s3", code));
    char qm[400], qk[300], qh[300];
    sl_log_limited(&s->log_lim, SL_LOG_ERROR, "s3 request failed",
                   "op=%s bucket=%s key=%s status=%ld code=%s attempts=%d message=%s hint=%s",
                   r->op, s->bucket, SL_LOGQ(qk, key, strlen(key)), r->status, code, attempts,
                   SL_LOGQ(qm, msg, r->message.len), SL_LOGQ(qh, h ? h : "", h ? strlen(h) : 0));
}

static void backoff(int attempt_no)
{
    long ms = BACKOFF_BASE_MS << (attempt_no < 10 ? attempt_no : 10);
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    ms = ms / 2 + (long)(random() % (ms / 2 + 1)); /* jitter */
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void req_reset(struct req *r)
{
    sl_buf_clear(&r->code);
    sl_buf_clear(&r->message);
    r->status = 0;
}

/* Runs r with retries. Returns 0 or the final SL_E* code (reason in err). */
static int s3_do(struct s3 *s, struct req *r, struct sl_buf *err)
{
    int rc = 0, n = 0;
    bool refreshed = false;
    for (;;) {
        req_reset(r);
        n++;
        struct sl_s3_credentials cr;
        struct sl_buf cerr = SL_BUF_INIT;
        rc = sl_s3_creds_get(s->creds, &cr, &cerr);
        if (rc) {
            sl_buf_append(&r->message, cerr.data, cerr.len);
            sl_buf_release(&cerr);
            if ((rc == SL_ETIMEDOUT || rc == SL_ECONN) && n <= s->max_retries) {
                backoff(n - 1);
                continue;
            }
            break;
        }
        sl_buf_release(&cerr);
        rc = attempt(s, r, &cr);
        sl_s3_credentials_release(&cr);
        enum verdict v = classify(rc, r);
        if (v == V_OK)
            return 0;
        if (v == V_REFRESH && !refreshed) {
            refreshed = true;
            sl_s3_creds_invalidate(s->creds);
            continue;
        }
        if (v != V_RETRY || n > s->max_retries)
            break;
        if (s->m_retries)
            sl_counter_inc(s->m_retries);
        char qm[200];
        sl_log_limited(&s->retry_lim, SL_LOG_WARN, "s3 request retried",
                       "op=%s status=%ld code=%s attempt=%d message=%s", r->op, r->status,
                       metric_code(rc, r), n,
                       SL_LOGQ(qm, r->message.data ? r->message.data : "", r->message.len));
        backoff(n - 1);
    }
    int e = code_to_err(rc, r);
    fail_report(s, r, rc, e, n, err);
    return e;
}

static void req_release(struct req *r)
{
    sl_buf_release(&r->code);
    sl_buf_release(&r->message);
}

/* ---- operations ---- */

static int s3_put(void *impl, const char *key, const void *data, size_t len, struct sl_buf *err)
{
    struct req r = {.method = "PUT", .op = "put", .key = key, .body = data, .body_len = len};
    int rc = s3_do(impl, &r, err);
    req_release(&r);
    return rc;
}

static int s3_get(void *impl, const char *key, struct sl_buf *out, struct sl_buf *err)
{
    struct req r = {.method = "GET", .op = "get", .key = key, .out = out};
    int rc = s3_do(impl, &r, err);
    req_release(&r);
    return rc;
}

static int s3_get_range(void *impl, const char *key, uint64_t off, uint64_t len, struct sl_buf *out,
                        struct sl_buf *err)
{
    if (len == 0)
        return 0;
    char range[64];
    snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1));
    struct req r = {.method = "GET", .op = "get_range", .key = key, .range = range, .out = out};
    size_t before = out->len;
    int rc = s3_do(impl, &r, err);
    if (rc == 0 && r.status == 200) {
        /* A server that ignored Range sent the whole object: keep our slice. */
        size_t have = out->len - before;
        size_t start = off < have ? (size_t)off : have;
        size_t n = have - start < len ? have - start : (size_t)len;
        memmove(out->data + before, out->data + before + start, n);
        out->len = before + n;
        out->data[out->len] = '\0';
    }
    req_release(&r);
    return rc;
}

static int s3_del(void *impl, const char *key, struct sl_buf *err)
{
    struct req r = {.method = "DELETE", .op = "delete", .key = key};
    int rc = s3_do(impl, &r, err);
    req_release(&r);
    return rc == SL_ENOENT ? 0 : rc;
}

static int list_page(struct s3 *s, const char *prefix, const char *token, struct sl_s3_list *l,
                     struct sl_buf *err)
{
    struct sl_buf q = SL_BUF_INIT, body = SL_BUF_INIT;
    if (token) {
        sl_buf_append_str(&q, "continuation-token=");
        sl_sigv4_uri_encode(&q, token, strlen(token), false);
        sl_buf_append_char(&q, '&');
    }
    sl_buf_append_str(&q, "list-type=2&prefix=");
    sl_sigv4_uri_encode(&q, prefix, strlen(prefix), false);
    struct req r = {.method = "GET", .op = "list", .query = q.data, .out = &body};
    int rc = s3_do(s, &r, err);
    if (rc == 0 && sl_s3_list_parse(body.data, body.len, l) != 0) {
        if (err)
            sl_buf_appendf(err, "s3 list %s: malformed ListObjectsV2 response", prefix);
        rc = SL_EREMOTE;
    }
    req_release(&r);
    sl_buf_release(&q);
    sl_buf_release(&body);
    return rc;
}

static int s3_list(void *impl, const char *prefix, sl_store_list_objects_fn fn, void *ud,
                   struct sl_buf *err)
{
    struct s3 *s = impl;
    char *token = NULL;
    int rc = 0;
    do {
        struct sl_s3_list l = {0};
        rc = list_page(s, prefix, token, &l, err);
        sl_free(token);
        token = NULL;
        for (size_t i = 0; rc == 0 && i < l.n; i++) {
            struct sl_store_object o = {l.items[i].key, l.items[i].size, l.items[i].mtime_ns};
            rc = fn(&o, ud);
        }
        if (rc == 0 && l.truncated) {
            if (!l.next_token || !*l.next_token) {
                if (err)
                    sl_buf_appendf(err, "s3 list %s: truncated result without a token", prefix);
                rc = SL_EREMOTE;
            } else {
                token = sl_strdup(l.next_token);
            }
        }
        sl_s3_list_release(&l);
    } while (rc == 0 && token);
    sl_free(token);
    return rc;
}

static void s3_close(void *impl)
{
    struct s3 *s = impl;
    for (int i = 0; i < s->npool; i++)
        curl_easy_cleanup(s->pool[i]);
    pthread_mutex_destroy(&s->mu);
    sl_s3_creds_free(s->creds);
    sl_free(s->bucket);
    sl_free(s->region);
    sl_free(s->base_url);
    sl_free(s->host);
    sl_free(s->path_base);
    sl_free(s->ca_file);
    sl_free(s);
}

static const struct sl_store_vtbl s3_vtbl = {
    .name = "s3",
    .put = s3_put,
    .get = s3_get,
    .get_range = s3_get_range,
    .list = s3_list,
    .del = s3_del,
    .close = s3_close,
};

/* ---- open ---- */

static bool is_ip_literal(const char *h)
{
    if (h[0] == '[')
        return true;
    for (const char *p = h; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return false;
    return true;
}

/* Splits the endpoint into base URL and host; chooses the addressing. */
static int parse_endpoint(struct s3 *s, const struct sl_store_opts *o, struct sl_buf *err)
{
    struct sl_buf ep = SL_BUF_INIT;
    if (o->s3_endpoint && *o->s3_endpoint) {
        if (!strstr(o->s3_endpoint, "://"))
            sl_buf_append_str(&ep, "https://");
        sl_buf_append_str(&ep, o->s3_endpoint);
    } else {
        sl_buf_appendf(&ep, "https://s3.%s.amazonaws.com", s->region);
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = 0;
    if (curl_url_set(u, CURLUPART_URL, ep.data, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        if (err)
            sl_buf_appendf(err, "storage.s3.endpoint: not an http(s) URL: \"%s\"", ep.data);
        rc = SL_EINVAL;
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when given explicitly */
    bool path_style = o->s3_path_style || is_ip_literal(host) || strchr(s->bucket, '.');
    if (!o->s3_path_style && path_style)
        sl_info("s3: using path-style addressing", "reason=\"%s\" bucket=%s",
                is_ip_literal(host) ? "endpoint is an IP address" : "bucket name has a dot",
                s->bucket);
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_appendf(&b, "%s%s%s%s", path_style ? "" : s->bucket, path_style ? "" : ".", host,
                   port ? ":" : "");
    if (port)
        sl_buf_append_str(&b, port);
    s->host = sl_buf_detach(&b, NULL);
    sl_buf_appendf(&b, "%s://%s", scheme, s->host);
    s->base_url = sl_buf_detach(&b, NULL);
    sl_buf_appendf(&b, "%s%s", path_style ? "/" : "", path_style ? s->bucket : "");
    s->path_base = b.data ? sl_buf_detach(&b, NULL) : sl_strdup("");
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    sl_buf_release(&ep);
    return rc;
}

static void register_metrics(struct s3 *s, struct sl_metrics *m)
{
    if (!m)
        return;
    s->m_errors = sl_metrics_counter(m, "sluice_aggregator_store_errors_total",
                                     "Object-store calls that failed after retries, by backend "
                                     "and error code (S3's code, or timeout/connection).",
                                     "backend,code");
    s->m_retries = sl_metric_with(
        sl_metrics_counter(m, "sluice_aggregator_store_retries_total",
                           "Object-store request attempts retried (5xx, SlowDown, timeouts).",
                           "backend"),
        "s3");
}

int sl__store_s3_open(const struct sl_store_opts *o, struct sl_metrics *metrics,
                      const struct sl_store_vtbl **vt, void **impl, struct sl_buf *err)
{
    if (!o->s3_bucket || !*o->s3_bucket) {
        if (err)
            sl_buf_append_str(err, "storage.s3.bucket: required for the s3 backend");
        return SL_EINVAL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct s3 *s = SL_NEW(struct s3);
    pthread_mutex_init(&s->mu, NULL);
    s->bucket = sl_strdup(o->s3_bucket);
    s->region = sl_strdup(o->s3_region && *o->s3_region ? o->s3_region : "us-east-1");
    s->ca_file = o->s3_ca_file && *o->s3_ca_file ? sl_strdup(o->s3_ca_file) : NULL;
    s->insecure = o->s3_insecure_skip_verify;
    s->timeout_ms = o->s3_timeout_ns > 0 ? (long)(o->s3_timeout_ns / SL_NS_PER_MS) : DEF_TIMEOUT_MS;
    if (s->timeout_ms < 1)
        s->timeout_ms = 1;
    s->max_retries = o->s3_max_retries > 0 ? o->s3_max_retries : 0;
    int rc = parse_endpoint(s, o, err);
    if (rc == 0) {
        struct sl_s3_creds_opts co = {o->s3_access_key_id, o->s3_secret_access_key,
                                      o->s3_session_token, s->region,
                                      s->ca_file,          s->insecure,
                                      o->s3_timeout_ns};
        rc = sl_s3_creds_new(&co, &s->creds, err);
    }
    if (rc) {
        s3_close(s);
        return rc;
    }
    register_metrics(s, metrics);
    sl_info("s3 store", "bucket=%s region=%s url=%s%s credentials=%s", s->bucket, s->region,
            s->base_url, s->path_base, sl_s3_creds_source(s->creds));
    *vt = &s3_vtbl;
    *impl = s;
    return 0;
}
