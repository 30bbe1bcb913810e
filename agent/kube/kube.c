/* Pod metadata from the Kubernetes API: LIST + WATCH of this node's pods. */
#include "agent/kube/kube.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/mem.h"

#define SA_DIR         "/var/run/secrets/kubernetes.io/serviceaccount/"
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define MAX_EVENT_LINE (16u << 20)

/* A pod's allowlisted labels; names and values point into mem. */
struct pod {
    char *uid;
    struct sl_label *lab;
    size_t n;
    char *mem;
};

enum phase { PH_IDLE, PH_LIST, PH_WATCH };

struct sl_kube {
    uv_loop_t *loop;
    struct sl_http_client *http;
    char *host, *token_file, *ca_file, *node;
    char **allow; /* allowlisted label names */
    size_t nallow;
    int64_t watch_timeout_s;
    struct pod *pods;
    size_t npods, cappods;
    char *rv; /* resourceVersion to watch from */
    enum phase phase;
    bool gone;    /* the watch reported 410 / an ERROR event: relist */
    bool closing; /* sl_kube_free called */
    uint64_t backoff_ms;
    struct sl_buf line; /* partial watch event */
    uv_timer_t timer;
    struct sl_metric *m_errors, *m_pods;
    void (*first_list)(void *ud); /* cleared once called */
    void *first_ud;
};

static struct sl_log_limit err_lim, event_lim;

static char *dup_or(const char *s, const char *def)
{
    return sl_strdup(s && *s ? s : def);
}

void sl_kube_sanitize_name(struct sl_bytes name, struct sl_buf *out)
{
    sl_buf_clear(out);
    if (name.len && name.ptr[0] >= '0' && name.ptr[0] <= '9')
        sl_buf_append_char(out, '_');
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        sl_buf_append_char(out, ok ? c : '_');
    }
}

/* --- the pod map --- */

static struct pod *find_pod(const struct sl_kube *k, const char *uid, size_t len)
{
    for (size_t i = 0; i < k->npods; i++)
        if (strlen(k->pods[i].uid) == len && memcmp(k->pods[i].uid, uid, len) == 0)
            return &k->pods[i];
    return NULL;
}

static void pod_release(struct pod *p)
{
    sl_free(p->uid);
    sl_free(p->lab);
    sl_free(p->mem);
}

static void clear_pods(struct sl_kube *k)
{
    for (size_t i = 0; i < k->npods; i++)
        pod_release(&k->pods[i]);
    k->npods = 0;
}

static void remove_pod(struct sl_kube *k, const char *uid)
{
    struct pod *p = find_pod(k, uid, strlen(uid));
    if (!p)
        return;
    pod_release(p);
    *p = k->pods[--k->npods];
}

/* Builds the allowlisted, sanitized labels of a pod object's metadata.labels. */
static void pod_fill(const struct sl_kube *k, struct pod *p, json_t *labels)
{
    struct sl_buf mem = SL_BUF_INIT, name = SL_BUF_INIT;
    size_t *off = sl_calloc(k->nallow * 4 + 1, sizeof(size_t));
    size_t n = 0;
    for (size_t i = 0; i < k->nallow; i++) {
        json_t *v = json_object_get(labels, k->allow[i]);
        if (!json_is_string(v) || !json_string_length(v))
            continue;
        sl_kube_sanitize_name(sl_bytes_str(k->allow[i]), &name);
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = off[4 * j + 1] == name.len && !memcmp(mem.data + off[4 * j], name.data, name.len);
        if (dup)
            continue; /* two allowed names that sanitize alike: the first wins */
        off[4 * n] = mem.len;
        off[4 * n + 1] = name.len;
        sl_buf_append(&mem, name.data, name.len);
        off[4 * n + 2] = mem.len;
        off[4 * n + 3] = json_string_length(v);
        sl_buf_append(&mem, json_string_value(v), json_string_length(v));
        n++;
    }
    p->lab = sl_calloc(n ? n : 1, sizeof(*p->lab));
    size_t len;
    p->mem = sl_buf_detach(&mem, &len);
    for (size_t i = 0; i < n; i++) {
        p->lab[i].name = sl_bytes(p->mem + off[4 * i], off[4 * i + 1]);
        p->lab[i].value = sl_bytes(p->mem + off[4 * i + 2], off[4 * i + 3]);
    }
    p->n = n;
    struct sl_labels ls = {p->lab, n};
    sl_labels_sort(&ls);
    sl_free(off);
    sl_buf_release(&name);
}

/* Adds or replaces the pod of a Pod object. */
static void upsert_pod(struct sl_kube *k, json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *uid = json_string_value(json_object_get(md, "uid"));
    if (!uid || !*uid)
        return;
    struct pod *p = find_pod(k, uid, strlen(uid));
    if (p) {
        sl_free(p->lab);
        sl_free(p->mem);
    } else {
        if (k->npods == k->cappods) {
            k->cappods = k->cappods ? k->cappods * 2 : 16;
            k->pods = sl_realloc(k->pods, k->cappods * sizeof(*k->pods));
        }
        p = &k->pods[k->npods++];
        p->uid = sl_strdup(uid);
    }
    pod_fill(k, p, json_object_get(md, "labels"));
}

static void set_rv(struct sl_kube *k, json_t *obj)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (!rv)
        return;
    sl_free(k->rv);
    k->rv = sl_strdup(rv);
}

/* --- requests --- */

static void start_list(struct sl_kube *k);

static void api_error(struct sl_kube *k, const char *what, const struct sl_http_response *resp)
{
    sl_counter_inc(k->m_errors);
    sl_log_limited(&err_lim, SL_LOG_WARN,
                   "kubernetes API request failed, pod labels may be missing",
                   "request=%s status=%d err=\"%s\" retry_ms=%llu", what, resp ? resp->status : 0,
                   resp ? resp->errmsg : "", (unsigned long long)k->backoff_ms);
}

static void listed_once(struct sl_kube *k)
{
    void (*cb)(void *) = k->first_list;
    k->first_list = NULL;
    if (cb)
        cb(k->first_ud);
}

static void on_timer(uv_timer_t *t)
{
    start_list(t->data);
}

/* Schedules a new LIST: after the backoff delay on failure, soon otherwise. */
static void resync(struct sl_kube *k, bool failed)
{
    k->phase = PH_IDLE;
    if (k->closing)
        return;
    uint64_t delay = 0;
    if (failed) {
        delay = k->backoff_ms;
        k->backoff_ms = k->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : k->backoff_ms * 2;
    }
    uv_timer_start(&k->timer, on_timer, delay, 0);
}

static void read_token(const struct sl_kube *k, struct sl_buf *hdr)
{
    FILE *f = fopen(k->token_file, "re");
    if (!f) {
        sl_log_limited(&err_lim, SL_LOG_WARN, "cannot read service account token", "file=%s",
                       k->token_file);
        return;
    }
    char tok[8192];
    size_t n = fread(tok, 1, sizeof(tok) - 1, f);
    fclose(f);
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        n--;
    if (n)
        sl_buf_appendf(hdr, "Authorization: Bearer %.*s", (int)n, tok);
}

static void append_escaped(struct sl_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            sl_buf_append_char(b, (char)c);
        else
            sl_buf_appendf(b, "%%%02X", c);
    }
}

static void pods_url(const struct sl_kube *k, struct sl_buf *url, bool watch)
{
    sl_buf_appendf(url, "%s/api/v1/pods?", k->host);
    if (*k->node) {
        sl_buf_append_str(url, "fieldSelector=spec.nodeName%3D");
        append_escaped(url, k->node);
        sl_buf_append_char(url, '&');
    }
    if (watch) {
        sl_buf_appendf(url, "watch=1&allowWatchBookmarks=true&timeoutSeconds=%lld&resourceVersion=",
                       (long long)k->watch_timeout_s);
        append_escaped(url, k->rv ? k->rv : "");
    } else {
        sl_buf_append_str(url, "resourceVersion=0");
    }
}

static void on_list(struct sl_http_response *resp, void *ud);
static void on_watch_end(struct sl_http_response *resp, void *ud);
static int on_watch_body(int status, struct sl_bytes chunk, void *ud);

static void request(struct sl_kube *k, bool watch)
{
    struct sl_buf url = SL_BUF_INIT, auth = SL_BUF_INIT;
    pods_url(k, &url, watch);
    read_token(k, &auth); /* re-read each time: projected tokens rotate */
    const char *hdrs[3] = {"Accept: application/json", auth.len ? auth.data : NULL, NULL};
    struct sl_http_req_opts r = {
        .method = "GET",
        .url = url.data,
        .headers = hdrs,
        .timeout_ms = watch ? (k->watch_timeout_s + 30) * 1000 : 10000,
    };
    if (watch)
        r.on_body = on_watch_body;
    k->phase = watch ? PH_WATCH : PH_LIST;
    int rc = sl_http_client_do(k->http, &r, watch ? on_watch_end : on_list, k);
    sl_buf_release(&url);
    sl_buf_release(&auth);
    if (rc != 0) {
        api_error(k, watch ? "watch" : "list", NULL);
        resync(k, true);
        if (!watch)
            listed_once(k);
    }
}

static void start_list(struct sl_kube *k)
{
    if (!k->closing)
        request(k, false);
}

static void on_list(struct sl_http_response *resp, void *ud)
{
    struct sl_kube *k = ud;
    if (k->closing || resp->err == SL_ECANCELED)
        return;
    json_t *root = NULL;
    if (resp->err == 0 && resp->status == 200)
        root = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
    json_t *items = json_object_get(root, "items");
    if (!root || !json_is_array(items)) {
        if (resp->err == 0 && !resp->errmsg[0])
            snprintf(resp->errmsg, sizeof(resp->errmsg), "unexpected list response");
        api_error(k, "list", resp);
        json_decref(root);
        resync(k, true);
        listed_once(k);
        return;
    }
    clear_pods(k);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) upsert_pod(k, it);
    set_rv(k, root);
    json_decref(root);
    sl_gauge_set(k->m_pods, (double)k->npods);
    sl_info("kubernetes pods listed", "pods=%zu resource_version=%s", k->npods, k->rv ? k->rv : "");
    k->gone = false;
    sl_buf_clear(&k->line);
    request(k, true);
    listed_once(k);
}

/* Applies one watch event line. */
static void on_event(struct sl_kube *k, const char *p, size_t n)
{
    json_t *ev = json_loadb(p, n, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    if (!type || !json_is_object(obj)) {
        sl_counter_inc(k->m_errors);
        sl_log_limited(&event_lim, SL_LOG_WARN, "bad kubernetes watch event, skipped", "bytes=%zu",
                       n);
    } else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
        upsert_pod(k, obj);
        set_rv(k, obj);
    } else if (!strcmp(type, "DELETED")) {
        const char *uid =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
        if (uid)
            remove_pod(k, uid);
        set_rv(k, obj);
    } else if (!strcmp(type, "BOOKMARK")) {
        set_rv(k, obj);
    } else if (!strcmp(type, "ERROR")) {
        /* A Status object; 410 Gone means our resourceVersion is too old. */
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        sl_info("kubernetes watch ended by the server, listing again", "code=%lld",
                (long long)code);
        k->gone = true;
    }
    json_decref(ev);
    sl_gauge_set(k->m_pods, (double)k->npods);
}

static int on_watch_body(int status, struct sl_bytes chunk, void *ud)
{
    struct sl_kube *k = ud;
    if (status != 200 || k->closing)
        return 0; /* the error body is not events; on_watch_end handles it */
    sl_buf_append(&k->line, chunk.ptr, chunk.len);
    size_t start = 0;
    for (size_t i = 0; i < k->line.len; i++) {
        if (k->line.data[i] != '\n')
            continue;
        if (i > start)
            on_event(k, k->line.data + start, i - start);
        start = i + 1;
    }
    sl_buf_consume(&k->line, start);
    if (k->line.len > MAX_EVENT_LINE) {
        sl_warn("kubernetes watch event too large, listing again", "bytes=%zu", k->line.len);
        return 1;
    }
    return 0;
}

static void on_watch_end(struct sl_http_response *resp, void *ud)
{
    struct sl_kube *k = ud;
    if (k->closing)
        return;
    sl_buf_clear(&k->line);
    bool ok = resp->err == 0 && resp->status == 200;
    if (ok || resp->status == 410 || (resp->err == SL_ECANCELED)) {
        /* Expiry, 410 Gone or an oversized event: a fresh LIST resyncs. */
        k->backoff_ms = BACKOFF_MIN_MS;
        resync(k, false);
        return;
    }
    api_error(k, "watch", resp);
    resync(k, true);
}

/* --- lifecycle --- */

int sl_kube_new(uv_loop_t *loop, const struct sl_kube_opts *o, struct sl_metrics *m,
                struct sl_kube **out, struct sl_buf *err)
{
    char host[512];
    if (o->host && *o->host) {
        snprintf(host, sizeof(host), "%s", o->host);
    } else {
        const char *h = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!h || !*h) {
            sl_buf_append_str(err, "kubernetes.api: KUBERNETES_SERVICE_HOST is not set and "
                                   "kubernetes.api.host is empty (not running in a pod?)");
            return SL_EINVAL;
        }
        bool v6 = strchr(h, ':') != NULL;
        snprintf(host, sizeof(host), "https://%s%s%s:%s", v6 ? "[" : "", h, v6 ? "]" : "",
                 port && *port ? port : "443");
    }
    size_t hl = strlen(host);
    while (hl > 0 && host[hl - 1] == '/')
        host[--hl] = 0;
    struct sl_kube *k = SL_NEW(struct sl_kube);
    k->loop = loop;
    k->host = sl_strdup(host);
    k->token_file = dup_or(o->token_file, SA_DIR "token");
    k->ca_file = dup_or(o->ca_file, SA_DIR "ca.crt");
    k->node = sl_strdup(o->node_name ? o->node_name : "");
    k->watch_timeout_s = o->watch_timeout_s > 0 ? o->watch_timeout_s : 300;
    k->backoff_ms = BACKOFF_MIN_MS;
    if (o->pod_labels && o->pod_labels->n) {
        k->nallow = o->pod_labels->n;
        k->allow = sl_calloc(k->nallow, sizeof(char *));
        for (size_t i = 0; i < k->nallow; i++)
            k->allow[i] = sl_strdup(o->pod_labels->items[i]);
    }
    struct sl_http_client_opts ho = {.ca_file = k->ca_file};
    k->http = sl_http_client_new(loop, &ho);
    uv_timer_init(loop, &k->timer);
    k->timer.data = k;
    k->m_errors = sl_metric_with(sl_metrics_counter(
        m, "sluice_agent_kube_api_errors_total",
        "Failed Kubernetes API requests and bad watch events (pod labels may be missing).", NULL));
    k->m_pods = sl_metric_with(
        sl_metrics_gauge(m, "sluice_agent_kube_pods", "Pods whose metadata is known.", NULL));
    sl_gauge_set(k->m_pods, 0);
    if (!*k->node)
        sl_warn("kubernetes.node_name is empty: watching every pod the account can see", "%s", "");
    *out = k;
    return 0;
}

void sl_kube_start(struct sl_kube *k, void (*first_list)(void *ud), void *ud)
{
    k->first_list = first_list;
    k->first_ud = ud;
    sl_info("kubernetes API metadata enabled", "host=%s node=%s", k->host, k->node);
    start_list(k);
}

size_t sl_kube_pod_labels(const struct sl_kube *k, struct sl_bytes uid, const struct sl_label **out)
{
    const struct pod *p = k ? find_pod(k, uid.ptr, uid.len) : NULL;
    if (!p)
        return 0;
    *out = p->lab;
    return p->n;
}

size_t sl_kube_npods(const struct sl_kube *k)
{
    return k->npods;
}

static void on_closed(uv_handle_t *h)
{
    struct sl_kube *k = h->data;
    clear_pods(k);
    sl_free(k->pods);
    for (size_t i = 0; i < k->nallow; i++)
        sl_free(k->allow[i]);
    sl_free(k->allow);
    sl_free(k->host);
    sl_free(k->token_file);
    sl_free(k->ca_file);
    sl_free(k->node);
    sl_free(k->rv);
    sl_buf_release(&k->line);
    sl_free(k);
}

void sl_kube_free(struct sl_kube *k)
{
    if (!k)
        return;
    k->closing = true;
    sl_http_client_free(k->http); /* callbacks see closing and return */
    k->http = NULL;
    uv_close((uv_handle_t *)&k->timer, on_closed);
}
