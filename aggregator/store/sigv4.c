/* AWS Signature Version 4; see sigv4.h for the rules this follows. */
#include "aggregator/store/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mem.h"

static const char hexdig[] = "0123456789abcdef";
static const char HEXDIG[] = "0123456789ABCDEF";

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void sl_sigv4_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    hex(md, sizeof(md), out);
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

void sl_sigv4_uri_encode(struct sl_buf *out, const char *s, size_t n, bool keep_slash)
{
    char *w = sl_buf_reserve(out, 3 * n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            w[k++] = (char)c;
        } else {
            w[k++] = '%';
            w[k++] = HEXDIG[c >> 4];
            w[k++] = HEXDIG[c & 15];
        }
    }
    sl_buf_commit(out, k);
}

void sl_sigv4_amz_date(int64_t unix_s, char out[17])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) and appends it re-encoded strictly (RFC 3986). */
static void reencode(struct sl_buf *out, const char *s, size_t n)
{
    struct sl_buf dec = SL_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            sl_buf_append_char(&dec, (char)(h * 16 + l));
            i += 2;
        } else {
            sl_buf_append_char(&dec, s[i]);
        }
    }
    sl_sigv4_uri_encode(out, dec.data ? dec.data : "", dec.len, false);
    sl_buf_release(&dec);
}

/* ---- canonical URI ---- */

static void canonical_path(const char *path, bool normalize, struct sl_buf *out)
{
    if (!path || !*path)
        path = "/";
    if (!normalize) {
        sl_buf_append_str(out, path);
        return;
    }
    /* Segments between '/', without "" and "."; ".." drops the previous one. */
    size_t n = strlen(path);
    const char **seg = sl_mallocarray(n + 1, sizeof(*seg));
    size_t *seglen = sl_mallocarray(n + 1, sizeof(*seglen));
    size_t nseg = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t len = j - i;
        if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg)
                nseg--;
        } else if (len > 0 && !(len == 1 && path[i] == '.')) {
            seg[nseg] = path + i;
            seglen[nseg++] = len;
        }
        i = j + 1;
    }
    bool trailing = path[n - 1] == '/';
    sl_buf_append_char(out, '/');
    for (size_t i = 0; i < nseg; i++) {
        if (i)
            sl_buf_append_char(out, '/');
        sl_sigv4_uri_encode(out, seg[i], seglen[i], false);
    }
    if (trailing && nseg)
        sl_buf_append_char(out, '/');
    sl_free(seg);
    sl_free(seglen);
}

/* ---- canonical query ---- */

struct qparam {
    char *k; /* encoded, NUL-terminated */
    char *v;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static void canonical_query(const char *q, struct sl_buf *out)
{
    if (!q || !*q)
        return;
    size_t n = strlen(q), np = 0;
    struct qparam *ps = sl_mallocarray(n / 2 + 2, sizeof(*ps));
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(q + i, '=', j - i);
            size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
            struct sl_buf k = SL_BUF_INIT, v = SL_BUF_INIT;
            reencode(&k, q + i, klen);
            if (eq)
                reencode(&v, eq + 1, (size_t)(q + j - eq - 1));
            ps[np].k = k.data ? sl_buf_detach(&k, NULL) : sl_strdup("");
            ps[np].v = v.data ? sl_buf_detach(&v, NULL) : sl_strdup("");
            np++;
        }
        i = j + 1;
    }
    qsort(ps, np, sizeof(*ps), qparam_cmp);
    for (size_t i = 0; i < np; i++) {
        if (i)
            sl_buf_append_char(out, '&');
        sl_buf_append_str(out, ps[i].k);
        sl_buf_append_char(out, '=');
        sl_buf_append_str(out, ps[i].v);
        sl_free(ps[i].k);
        sl_free(ps[i].v);
    }
    sl_free(ps);
}

/* ---- canonical headers ---- */

struct hdr {
    char *name; /* lower case */
    const char *value;
    size_t idx; /* for a stable sort: repeated names keep their order */
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static struct hdr *sorted_headers(const struct sl_sigv4_request *r)
{
    struct hdr *h = sl_mallocarray(r->nheaders + 1, sizeof(*h));
    for (size_t i = 0; i < r->nheaders; i++) {
        h[i].name = sl_strdup(r->headers[i].name);
        for (char *p = h[i].name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        h[i].value = r->headers[i].value ? r->headers[i].value : "";
        h[i].idx = i;
    }
    qsort(h, r->nheaders, sizeof(*h), hdr_cmp);
    return h;
}

static void free_headers(struct hdr *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sl_free(h[i].name);
    sl_free(h);
}

/* Value trimmed, inner runs of spaces and tabs collapsed to one space. */
static void append_trimmed(struct sl_buf *out, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    bool space = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = true;
            continue;
        }
        if (space)
            sl_buf_append_char(out, ' ');
        space = false;
        sl_buf_append_char(out, *v);
    }
}

static void signed_list(const struct hdr *h, size_t n, struct sl_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(h[i].name, h[i - 1].name) == 0)
            continue;
        if (i)
            sl_buf_append_char(out, ';');
        sl_buf_append_str(out, h[i].name);
    }
}

void sl_sigv4_signed_headers(const struct sl_sigv4_request *r, struct sl_buf *out)
{
    struct hdr *h = sorted_headers(r);
    signed_list(h, r->nheaders, out);
    free_headers(h, r->nheaders);
}

void sl_sigv4_canonical_request(const struct sl_sigv4_request *r, struct sl_buf *out)
{
    sl_buf_append_str(out, r->method);
    sl_buf_append_char(out, '\n');
    canonical_path(r->path, r->normalize_path, out);
    sl_buf_append_char(out, '\n');
    canonical_query(r->query, out);
    sl_buf_append_char(out, '\n');

    struct hdr *h = sorted_headers(r);
    for (size_t i = 0; i < r->nheaders; i++) {
        bool same = i && strcmp(h[i].name, h[i - 1].name) == 0;
        if (same) {
            sl_buf_append_char(out, ',');
        } else {
            if (i)
                sl_buf_append_char(out, '\n');
            sl_buf_append_str(out, h[i].name);
            sl_buf_append_char(out, ':');
        }
        append_trimmed(out, h[i].value);
    }
    sl_buf_append_str(out, "\n\n");
    signed_list(h, r->nheaders, out);
    free_headers(h, r->nheaders);
    sl_buf_append_char(out, '\n');
    sl_buf_append_str(out, r->payload_hash ? r->payload_hash : SL_SIGV4_UNSIGNED_PAYLOAD);
}

static void scope(const struct sl_sigv4_scope *sc, struct sl_buf *out)
{
    sl_buf_append(out, sc->amz_date, 8);
    sl_buf_appendf(out, "/%s/%s/aws4_request", sc->region, sc->service);
}

void sl_sigv4_string_to_sign(const struct sl_sigv4_scope *sc, const char *creq, size_t creq_len,
                             struct sl_buf *out)
{
    char h[65];
    sl_sigv4_sha256_hex(creq, creq_len, h);
    sl_buf_appendf(out, "AWS4-HMAC-SHA256\n%s\n", sc->amz_date);
    scope(sc, out);
    sl_buf_appendf(out, "\n%s", h);
}

static void hmac(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
    unsigned int olen = 32;
    HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen);
}

void sl_sigv4_signature(const struct sl_sigv4_scope *sc, const char *sts, size_t sts_len,
                        char out[65])
{
    struct sl_buf k = SL_BUF_INIT;
    sl_buf_appendf(&k, "AWS4%s", sc->secret_access_key);
    unsigned char a[32], b[32];
    hmac(k.data, k.len, sc->amz_date, 8, a);
    hmac(a, 32, sc->region, strlen(sc->region), b);
    hmac(b, 32, sc->service, strlen(sc->service), a);
    hmac(a, 32, "aws4_request", 12, b);
    hmac(b, 32, sts, sts_len, a);
    hex(a, 32, out);
    OPENSSL_cleanse(k.data, k.len);
    OPENSSL_cleanse(b, sizeof(b));
    sl_buf_release(&k);
}

void sl_sigv4_authorization(const struct sl_sigv4_request *r, const struct sl_sigv4_scope *sc,
                            struct sl_buf *out)
{
    struct sl_buf creq = SL_BUF_INIT, sts = SL_BUF_INIT;
    sl_sigv4_canonical_request(r, &creq);
    sl_sigv4_string_to_sign(sc, creq.data, creq.len, &sts);
    char sig[65];
    sl_sigv4_signature(sc, sts.data, sts.len, sig);
    sl_buf_appendf(out, "AWS4-HMAC-SHA256 Credential=%s/", sc->access_key_id);
    scope(sc, out);
    sl_buf_append_str(out, ", SignedHeaders=");
    sl_sigv4_signed_headers(r, out);
    sl_buf_appendf(out, ", Signature=%s", sig);
    sl_buf_release(&creq);
    sl_buf_release(&sts);
}
