/* Docker json-file lines: a fast path for Docker's own output, jansson for
 * everything else. */
#include "agent/parse/docker.h"

#include <jansson.h>
#include <string.h>

#include "common/err.h"
#include "common/timeutil.h"
#include "common/utf8.h"

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* \uXXXX (and a following low surrogate) at s[*i] (after the "\u");
 * appends the UTF-8. Returns 0, or -1 for anything jansson would refuse. */
static int unescape_u(const char *s, size_t n, size_t *i, struct sl_buf *out)
{
    uint32_t cp, lo;
    if (*i + 4 > n || hex4(s + *i, &cp) != 0)
        return -1;
    *i += 4;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return -1;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (*i + 6 > n || s[*i] != '\\' || s[*i + 1] != 'u' || hex4(s + *i + 2, &lo) != 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return -1;
        *i += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    char u[4];
    sl_buf_append(out, u, sl_utf8_encode(u, cp));
    return 0;
}

/* A JSON string starting at s[*i] (the opening quote), decoded into out.
 * Returns 0 with *i after the closing quote, or -1 (let jansson decide). */
static int fast_string(const char *s, size_t n, size_t *i, struct sl_buf *out)
{
    size_t p = *i;
    if (p >= n || s[p] != '"')
        return -1;
    p++;
    for (;;) {
        size_t run = p;
        bool high = false;
        while (p < n) {
            unsigned char c = (unsigned char)s[p];
            if (c == '"' || c == '\\' || c < 0x20)
                break;
            high |= c >= 0x80;
            p++;
        }
        /* Runs end at ASCII bytes, which never sit inside a UTF-8 sequence,
         * so validating run by run is validating the whole string. */
        if (high && !sl_utf8_valid(s + run, p - run))
            return -1;
        sl_buf_append(out, s + run, p - run);
        if (p >= n || (unsigned char)s[p] < 0x20)
            return -1;
        if (s[p] == '"') {
            *i = p + 1;
            return 0;
        }
        if (++p >= n)
            return -1;
        char c = s[p++];
        switch (c) {
        case '"':
        case '\\':
        case '/':
            sl_buf_append_char(out, c);
            break;
        case 'b':
            sl_buf_append_char(out, '\b');
            break;
        case 'f':
            sl_buf_append_char(out, '\f');
            break;
        case 'n':
            sl_buf_append_char(out, '\n');
            break;
        case 'r':
            sl_buf_append_char(out, '\r');
            break;
        case 't':
            sl_buf_append_char(out, '\t');
            break;
        case 'u':
            if (unescape_u(s, n, &p, out) != 0)
                return -1;
            break;
        default:
            return -1;
        }
    }
}

static bool lit(const char *s, size_t n, size_t *i, const char *want)
{
    size_t l = strlen(want);
    if (*i + l > n || memcmp(s + *i, want, l) != 0)
        return false;
    *i += l;
    return true;
}

/* A short plain string (printable ASCII, no escapes) into a fixed array;
 * -1 for anything else (jansson decides). */
static int fast_plain(const char *s, size_t n, size_t *i, char *dst, size_t cap, size_t *len)
{
    size_t p = *i;
    if (p >= n || s[p] != '"')
        return -1;
    size_t start = ++p;
    while (p < n && s[p] != '"') {
        unsigned char c = (unsigned char)s[p];
        if (c < 0x20 || c >= 0x7f || c == '\\')
            return -1;
        p++;
    }
    if (p >= n || p - start >= cap)
        return -1;
    memcpy(dst, s + start, p - start);
    *len = p - start;
    *i = p + 1;
    return 0;
}

int sl__docker_fast(const char *s, size_t n, struct sl_docker_raw *out)
{
    size_t i = 0;
    sl_buf_clear(out->log);
    if (!lit(s, n, &i, "{\"log\":") || fast_string(s, n, &i, out->log) != 0)
        return 0;
    if (!lit(s, n, &i, ",\"stream\":") ||
        fast_plain(s, n, &i, out->stream, sizeof(out->stream), &out->stream_len) != 0)
        return 0;
    if (!lit(s, n, &i, ",\"time\":") ||
        fast_plain(s, n, &i, out->time, sizeof(out->time), &out->time_len) != 0)
        return 0;
    return lit(s, n, &i, "}") && i == n;
}

static int small_copy(json_t *v, char *dst, size_t cap, size_t *len)
{
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return -1;
    *len = json_string_length(v);
    memcpy(dst, json_string_value(v), *len);
    return 0;
}

int sl__docker_slow(const char *s, size_t n, struct sl_docker_raw *out, const char **reason)
{
    json_error_t jerr;
    json_t *root = json_loadb(s, n, JSON_ALLOW_NUL, &jerr);
    int rc = SL_EINVAL;
    sl_buf_clear(out->log);
    if (!root) {
        *reason = "invalid JSON";
        return SL_EINVAL;
    }
    json_t *log = json_object_get(root, "log");
    if (!json_is_object(root) || !json_is_string(log)) {
        *reason = "no \"log\" string";
    } else if (small_copy(json_object_get(root, "stream"), out->stream, sizeof(out->stream),
                          &out->stream_len) != 0) {
        *reason = "bad stream";
    } else if (small_copy(json_object_get(root, "time"), out->time, sizeof(out->time),
                          &out->time_len) != 0) {
        *reason = "bad time";
    } else {
        sl_buf_append(out->log, json_string_value(log), json_string_length(log));
        rc = 0;
    }
    json_decref(root);
    return rc;
}

int sl_docker_parse_line(const char *s, size_t n, struct sl_buf *text, int64_t *ts,
                         enum sl_log_stream *stream, bool *final, const char **reason)
{
    struct sl_docker_raw r;
    r.log = text;
    if (sl__docker_fast(s, n, &r) != 1 && sl__docker_slow(s, n, &r, reason) != 0)
        return SL_EINVAL;
    if (r.stream_len == 6 && !memcmp(r.stream, "stdout", 6)) {
        *stream = SL_STREAM_STDOUT;
    } else if (r.stream_len == 6 && !memcmp(r.stream, "stderr", 6)) {
        *stream = SL_STREAM_STDERR;
    } else {
        *reason = "bad stream";
        return SL_EINVAL;
    }
    if (sl_rfc3339_parse(r.time, r.time_len, ts) != 0) {
        *reason = "bad timestamp";
        return SL_EINVAL;
    }
    *final = text->len > 0 && text->data[text->len - 1] == '\n';
    if (*final)
        text->data[--text->len] = '\0';
    return 0;
}
