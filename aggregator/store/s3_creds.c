/* AWS credential chain: config, environment, IRSA web identity, EC2 IMDSv2. */
#include "aggregator/store/s3_creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aggregator/store/s3_xml.h"
#include "aggregator/store/sigv4.h"
#include "common/err.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"

#define DEF_TIMEOUT_NS   (10 * SL_NS_PER_SEC)
#define IMDS_DEFAULT     "http://169.254.169.254"
#define IMDS_TOKEN_TTL_S 21600
#define TOKEN_FILE_MAX   (64 * 1024)
#define MAX_BODY         (1024 * 1024)

enum source { SRC_CONFIG, SRC_ENV, SRC_WEB_IDENTITY, SRC_IMDS };
static const char *const source_names[] = {"config", "environment", "web_identity", "imds"};

struct sl_s3_creds {
    enum source src;
    pthread_mutex_t mu;
    struct sl_s3_credentials cur; /* access_key_id NULL: none yet */
    /* web identity */
    char *role_arn, *token_file, *session_name, *sts_endpoint;
    /* imds */
    char *imds_endpoint;
    struct sl_http_client_opts http;
    int64_t timeout_ms;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? sl_strdup(s) : NULL;
}

static bool set(const char *s)
{
    return s && *s;
}

void sl_s3_credentials_release(struct sl_s3_credentials *cr)
{
    if (cr->secret_access_key)
        memset(cr->secret_access_key, 0, strlen(cr->secret_access_key));
    sl_free(cr->access_key_id);
    sl_free(cr->secret_access_key);
    sl_free(cr->session_token);
    memset(cr, 0, sizeof(*cr));
}

static void copy_creds(struct sl_s3_credentials *dst, const struct sl_s3_credentials *src)
{
    dst->access_key_id = sl_strdup(src->access_key_id);
    dst->secret_access_key = sl_strdup(src->secret_access_key);
    dst->session_token = dup_or_null(src->session_token);
    dst->expiration_ns = src->expiration_ns;
}

static void set_static(struct sl_s3_creds *c, const char *ak, const char *sk, const char *tok)
{
    c->cur.access_key_id = sl_strdup(ak);
    c->cur.secret_access_key = sl_strdup(sk);
    c->cur.session_token = dup_or_null(tok);
}

static char *sts_default_endpoint(const char *region)
{
    struct sl_buf b = SL_BUF_INIT;
    if (set(region))
        sl_buf_appendf(&b, "https://sts.%s.amazonaws.com", region);
    else
        sl_buf_append_str(&b, "https://sts.amazonaws.com");
    return sl_buf_detach(&b, NULL);
}

static void reason(struct sl_buf *err, const char *msg)
{
    if (err)
        sl_buf_append_str(err, msg);
}

int sl_s3_creds_new(const struct sl_s3_creds_opts *o, struct sl_s3_creds **out, struct sl_buf *err)
{
    const char *eak = getenv("AWS_ACCESS_KEY_ID"), *esk = getenv("AWS_SECRET_ACCESS_KEY");
    if (set(o->access_key_id) != set(o->secret_access_key)) {
        reason(err, "storage.s3: access_key_id and secret_access_key must be set "
                    "together");
        return SL_EINVAL;
    }
    struct sl_s3_creds *c = SL_NEW(struct sl_s3_creds);
    pthread_mutex_init(&c->mu, NULL);
    int64_t tns = o->timeout_ns > 0 ? o->timeout_ns : DEF_TIMEOUT_NS;
    c->timeout_ms = tns / SL_NS_PER_MS;
    c->http.ca_file = dup_or_null(o->ca_file);
    c->http.insecure_skip_verify = o->insecure_skip_verify;
    c->http.connect_timeout_ms = c->timeout_ms < 2000 ? c->timeout_ms : 2000;
    if (set(o->access_key_id)) {
        c->src = SRC_CONFIG;
        set_static(c, o->access_key_id, o->secret_access_key, o->session_token);
    } else if (set(eak) || set(esk)) {
        if (!set(eak) || !set(esk)) {
            reason(err, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set "
                        "together");
            sl_s3_creds_free(c);
            return SL_EINVAL;
        }
        c->src = SRC_ENV;
        set_static(c, eak, esk, getenv("AWS_SESSION_TOKEN"));
    } else if (set(getenv("AWS_ROLE_ARN")) && set(getenv("AWS_WEB_IDENTITY_TOKEN_FILE"))) {
        c->src = SRC_WEB_IDENTITY;
        c->role_arn = sl_strdup(getenv("AWS_ROLE_ARN"));
        c->token_file = sl_strdup(getenv("AWS_WEB_IDENTITY_TOKEN_FILE"));
        const char *sn = getenv("AWS_ROLE_SESSION_NAME");
        if (set(sn)) {
            c->session_name = sl_strdup(sn);
        } else {
            struct sl_buf b = SL_BUF_INIT;
            sl_buf_appendf(&b, "sluice-%lld", (long long)(sl_now_ns() / SL_NS_PER_SEC));
            c->session_name = sl_buf_detach(&b, NULL);
        }
        const char *ep = getenv("AWS_ENDPOINT_URL_STS");
        c->sts_endpoint = set(ep) ? sl_strdup(ep) : sts_default_endpoint(o->region);
    } else {
        const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
        if (dis && strcasecmp(dis, "true") == 0) {
            reason(err, "storage.s3: no credentials: set storage.s3.access_key_id "
                        "and secret_access_key, AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN and "
                        "AWS_WEB_IDENTITY_TOKEN_FILE (EC2 metadata is disabled)");
            sl_s3_creds_free(c);
            return SL_EINVAL;
        }
        c->src = SRC_IMDS;
        const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        c->imds_endpoint = sl_strdup(set(ep) ? ep : IMDS_DEFAULT);
        size_t n = strlen(c->imds_endpoint);
        while (n > 0 && c->imds_endpoint[n - 1] == '/')
            c->imds_endpoint[--n] = '\0';
    }
    *out = c;
    return 0;
}

void sl_s3_creds_free(struct sl_s3_creds *c)
{
    if (!c)
        return;
    sl_s3_credentials_release(&c->cur);
    sl_free(c->role_arn);
    sl_free(c->token_file);
    sl_free(c->session_name);
    sl_free(c->sts_endpoint);
    sl_free(c->imds_endpoint);
    sl_free((char *)c->http.ca_file);
    pthread_mutex_destroy(&c->mu);
    sl_free(c);
}

const char *sl_s3_creds_source(const struct sl_s3_creds *c)
{
    return source_names[c->src];
}

void sl_s3_creds_invalidate(struct sl_s3_creds *c)
{
    if (c->src == SRC_CONFIG || c->src == SRC_ENV)
        return;
    pthread_mutex_lock(&c->mu);
    sl_s3_credentials_release(&c->cur);
    pthread_mutex_unlock(&c->mu);
}

/* ---- HTTP helpers ---- */

/* Maps a failed exchange to an SL_E* code and a reason. */
static int http_fail(const char *what, const struct sl_http_response *r, struct sl_buf *err)
{
    if (r->err) {
        sl_buf_appendf(err, "%s: %s (%s)", what, sl_strerror(r->err), r->errmsg);
        return r->err == SL_ETIMEDOUT ? SL_ETIMEDOUT : SL_ECONN;
    }
    struct sl_buf code = SL_BUF_INIT, msg = SL_BUF_INIT;
    sl_buf_appendf(err, "%s: HTTP %d", what, r->status);
    if (sl_s3_error_parse(r->body.data, r->body.len, &code, &msg) == 0)
        sl_buf_appendf(err, " %s: %.300s", code.data, msg.data ? msg.data : "");
    sl_buf_release(&code);
    sl_buf_release(&msg);
    return r->status == 401 || r->status == 403 ? SL_EPERM : SL_EREMOTE;
}

static int read_token_file(const char *path, struct sl_buf *out, struct sl_buf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sl_buf_appendf(err, "web identity token file %s: %s", path, strerror(errno));
        return SL_EIO;
    }
    for (;;) {
        char *p = sl_buf_reserve(out, 4096);
        ssize_t n = read(fd, p, 4096);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sl_buf_appendf(err, "web identity token file %s: %s", path, strerror(errno));
            close(fd);
            return SL_EIO;
        }
        if (n == 0)
            break;
        sl_buf_commit(out, (size_t)n);
        if (out->len > TOKEN_FILE_MAX) {
            sl_buf_appendf(err, "web identity token file %s: larger than %d bytes", path,
                           TOKEN_FILE_MAX);
            close(fd);
            return SL_EIO;
        }
    }
    close(fd);
    while (out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r' ||
                        out->data[out->len - 1] == ' '))
        out->data[--out->len] = '\0';
    if (out->len == 0) {
        sl_buf_appendf(err, "web identity token file %s is empty", path);
        return SL_EIO;
    }
    return 0;
}

static void form_param(struct sl_buf *b, const char *k, const char *v, size_t vlen)
{
    if (b->len)
        sl_buf_append_char(b, '&');
    sl_buf_append_str(b, k);
    sl_buf_append_char(b, '=');
    sl_sigv4_uri_encode(b, v, vlen, false);
}

/* ---- web identity ---- */

static int fetch_web_identity(struct sl_s3_creds *c, struct sl_s3_credentials *out,
                              struct sl_buf *err)
{
    struct sl_buf tok = SL_BUF_INIT, body = SL_BUF_INIT, url = SL_BUF_INIT;
    int rc = read_token_file(c->token_file, &tok, err);
    if (rc)
        goto done;
    form_param(&body, "Action", "AssumeRoleWithWebIdentity", 25);
    form_param(&body, "Version", "2011-06-15", 10);
    form_param(&body, "RoleArn", c->role_arn, strlen(c->role_arn));
    form_param(&body, "RoleSessionName", c->session_name, strlen(c->session_name));
    form_param(&body, "WebIdentityToken", tok.data, tok.len);
    sl_buf_append_str(&url, c->sts_endpoint);
    if (url.len == 0 || url.data[url.len - 1] != '/')
        sl_buf_append_char(&url, '/');
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                          "Accept: application/xml", NULL};
    struct sl_http_req_opts r = {.method = "POST",
                                 .url = url.data,
                                 .headers = hdrs,
                                 .body = body.data,
                                 .body_len = body.len,
                                 .timeout_ms = c->timeout_ms,
                                 .max_response_bytes = MAX_BODY};
    struct sl_http_response resp;
    sl_http_fetch(&c->http, &r, &resp);
    if (resp.err || resp.status != 200) {
        struct sl_buf what = SL_BUF_INIT;
        sl_buf_appendf(&what, "sts AssumeRoleWithWebIdentity %s (role %s)", c->sts_endpoint,
                       c->role_arn);
        rc = http_fail(what.data, &resp, err);
        sl_buf_release(&what);
    } else {
        struct sl_s3_creds_xml x;
        rc = sl_s3_creds_parse(resp.body.data, resp.body.len, &x);
        if (rc) {
            sl_buf_appendf(err, "sts AssumeRoleWithWebIdentity %s: response without credentials",
                           c->sts_endpoint);
            rc = SL_EREMOTE;
        } else {
            out->access_key_id = x.access_key_id;
            out->secret_access_key = x.secret_access_key;
            out->session_token = x.session_token;
            out->expiration_ns = x.expiration_ns;
        }
    }
    sl_http_response_release(&resp);
done:
    if (tok.data)
        OPENSSL_cleanse(tok.data, tok.len);
    sl_buf_release(&tok);
    sl_buf_release(&body);
    sl_buf_release(&url);
    return rc;
}

/* ---- IMDSv2 ---- */

static int imds_call(struct sl_s3_creds *c, const char *method, const char *path, const char *hdr,
                     struct sl_buf *out, struct sl_buf *err)
{
    struct sl_buf url = SL_BUF_INIT;
    sl_buf_appendf(&url, "%s%s", c->imds_endpoint, path);
    const char *hdrs[] = {hdr, NULL};
    struct sl_http_req_opts r = {.method = method,
                                 .url = url.data,
                                 .headers = hdrs,
                                 .timeout_ms = c->timeout_ms,
                                 .max_response_bytes = MAX_BODY};
    struct sl_http_response resp;
    sl_http_fetch(&c->http, &r, &resp);
    int rc = 0;
    if (resp.err || resp.status != 200) {
        struct sl_buf what = SL_BUF_INIT;
        sl_buf_appendf(&what, "imds %s %s", method, url.data);
        rc = http_fail(what.data, &resp, err);
        sl_buf_release(&what);
    } else {
        sl_buf_append(out, resp.body.data, resp.body.len);
    }
    sl_http_response_release(&resp);
    sl_buf_release(&url);
    return rc;
}

static char *json_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? sl_strdup(s) : NULL;
}

static int imds_parse(const char *p, size_t n, struct sl_s3_credentials *out, struct sl_buf *err)
{
    json_error_t je;
    json_t *j = json_loadb(p, n, 0, &je);
    const char *code = j ? json_string_value(json_object_get(j, "Code")) : NULL;
    const char *exp = j ? json_string_value(json_object_get(j, "Expiration")) : NULL;
    int rc = 0;
    if (!j || (code && strcmp(code, "Success") != 0)) {
        sl_buf_appendf(err, "imds: credentials not available (Code %s)", code ? code : "?");
        rc = SL_EREMOTE;
    } else {
        out->access_key_id = json_str(j, "AccessKeyId");
        out->secret_access_key = json_str(j, "SecretAccessKey");
        out->session_token = json_str(j, "Token");
        if (!out->access_key_id || !out->secret_access_key ||
            (exp && sl_rfc3339_parse(exp, strlen(exp), &out->expiration_ns) != 0)) {
            sl_buf_append_str(err, "imds: malformed credentials document");
            sl_s3_credentials_release(out);
            rc = SL_EREMOTE;
        }
    }
    json_decref(j);
    return rc;
}

static int fetch_imds(struct sl_s3_creds *c, struct sl_s3_credentials *out, struct sl_buf *err)
{
    struct sl_buf tok = SL_BUF_INIT, role = SL_BUF_INIT, hdr = SL_BUF_INIT, doc = SL_BUF_INIT;
    struct sl_buf path = SL_BUF_INIT;
    char ttl[64];
    snprintf(ttl, sizeof(ttl), "X-aws-ec2-metadata-token-ttl-seconds: %d", IMDS_TOKEN_TTL_S);
    int rc = imds_call(c, "PUT", "/latest/api/token", ttl, &tok, err);
    if (rc)
        goto done;
    sl_buf_appendf(&hdr, "X-aws-ec2-metadata-token: %.*s", (int)tok.len, tok.data);
    rc = imds_call(c, "GET", "/latest/meta-data/iam/security-credentials/", hdr.data, &role, err);
    if (rc)
        goto done;
    size_t rl = strcspn(role.data ? role.data : "", "\r\n");
    if (rl == 0) {
        sl_buf_append_str(err, "imds: no IAM role attached to this instance");
        rc = SL_EPERM;
        goto done;
    }
    sl_buf_append_str(&path, "/latest/meta-data/iam/security-credentials/");
    sl_sigv4_uri_encode(&path, role.data, rl, false);
    rc = imds_call(c, "GET", path.data, hdr.data, &doc, err);
    if (rc == 0)
        rc = imds_parse(doc.data, doc.len, out, err);
done:
    sl_buf_release(&tok);
    sl_buf_release(&role);
    sl_buf_release(&hdr);
    sl_buf_release(&doc);
    sl_buf_release(&path);
    return rc;
}

/* ---- get ---- */

static bool fresh(const struct sl_s3_credentials *cr)
{
    if (!cr->access_key_id)
        return false;
    return cr->expiration_ns == 0 || sl_now_ns() + SL_S3_CREDS_REFRESH_NS < cr->expiration_ns;
}

int sl_s3_creds_get(struct sl_s3_creds *c, struct sl_s3_credentials *out, struct sl_buf *err)
{
    memset(out, 0, sizeof(*out));
    struct sl_buf e = SL_BUF_INIT;
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    if (!fresh(&c->cur)) {
        struct sl_s3_credentials n = {0};
        rc = c->src == SRC_WEB_IDENTITY ? fetch_web_identity(c, &n, &e)
             : c->src == SRC_IMDS       ? fetch_imds(c, &n, &e)
                                        : 0;
        if (rc == 0 && n.access_key_id) {
            sl_s3_credentials_release(&c->cur);
            c->cur = n;
            sl_info("s3 credentials refreshed", "source=%s access_key_id=%s expires_in_s=%lld",
                    source_names[c->src], n.access_key_id,
                    n.expiration_ns ? (long long)((n.expiration_ns - sl_now_ns()) / SL_NS_PER_SEC)
                                    : -1LL);
        } else if (rc && c->cur.access_key_id && c->cur.expiration_ns > sl_now_ns()) {
            /* Refresh failed but the current ones are still valid: keep using them. */
            char q[512];
            sl_warn("s3 credentials refresh failed; using the current ones until they expire",
                    "source=%s reason=%s", source_names[c->src], SL_LOGQ(q, e.data, e.len));
            rc = 0;
        }
    }
    if (rc == 0)
        copy_creds(out, &c->cur);
    pthread_mutex_unlock(&c->mu);
    if (rc && err)
        sl_buf_append(err, e.data, e.len);
    sl_buf_release(&e);
    return rc;
}
