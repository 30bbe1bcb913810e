/* Parser stages with Loki's semantics (pkg/logql/log/parser.go):
 *
 * json     every string, number and boolean of the object becomes a label;
 *          nested keys are joined with '_'; arrays and nulls are skipped;
 *          keys are sanitized (any character outside [A-Za-z0-9_] becomes '_',
 *          a leading digit gets a '_' prefix); a name that is a stream label
 *          gets the suffix _extracted. A line that is not a JSON object sets
 *          __error__=JSONParserErr and __error_details__ (labels extracted
 *          before the fault are kept).
 * json a="p.q[0]"  only the named paths; a missing one is "", an object or
 *          array value is its JSON text.
 * logfmt   keys and values as go-logfmt decodes them; keys sanitized as json;
 *          empty values are skipped unless --keep-empty; malformed pairs are
 *          skipped, or with --strict end the parse with LogfmtParserErr.
 * regexp   named groups of the first match; no match extracts nothing.
 * pattern  see pattern.c.
 * unpack   a JSON object of strings: each is a label, "_entry" replaces
 *          the line (Promtail's pack stage). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/pipeline_int.h"
#include "aggregator/logql/regex.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/utf8.h"

#define E_OBJECT "Value looks like object, but can't find closing '}' symbol"
#define E_STRING "Value is string, but can't find closing '\"' symbol"
#define E_ARRAY  "Value is array, but can't find closing ']' symbol"
#define E_VALUE  "Value looks like Number/Boolean/None, but can't find its end: ',' or '}' symbol"
#define E_JSON   "Malformed JSON error"

enum jtype { J_NONE, J_STRING, J_NUMBER, J_BOOL, J_NULL, J_OBJECT, J_ARRAY };

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Scans a string starting at s[i] == '"'; returns the index after the
 * closing quote, or 0 (with *why). */
static size_t scan_string(const char *s, size_t n, size_t i, const char **why)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    *why = E_STRING;
    return 0;
}

static size_t scan_value(const char *s, size_t n, size_t i, enum jtype *t, const char **why,
                         int depth);

/* Skips a container from s[i] ('{' or '[') as jsonparser's blockEnd does:
 * only its own brackets are counted, strings are skipped, the content is
 * not checked (an object value is parsed, and checked, when it is walked;
 * an array is skipped, so its content never fails a line). */
static size_t scan_container(const char *s, size_t n, size_t i, const char **why, int depth)
{
    (void)depth;
    char open = s[i], close = open == '{' ? '}' : ']';
    size_t level = 0;
    for (; i < n; i++) {
        if (s[i] == '"') {
            size_t e = scan_string(s, n, i, why);
            if (!e)
                break;
            i = e - 1;
        } else if (s[i] == open) {
            level++;
        } else if (s[i] == close && --level == 0) {
            return i + 1;
        }
    }
    *why = open == '{' ? E_OBJECT : E_ARRAY;
    return 0;
}

static size_t scan_value(const char *s, size_t n, size_t i, enum jtype *t, const char **why,
                         int depth)
{
    if (i >= n) {
        *why = E_JSON;
        return 0;
    }
    switch (s[i]) {
    case '"':
        *t = J_STRING;
        return scan_string(s, n, i, why);
    case '{':
    case '[':
        *t = s[i] == '{' ? J_OBJECT : J_ARRAY;
        return scan_container(s, n, i, why, depth);
    default: {
        size_t st = i;
        while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
               s[i] != '\n' && s[i] != '\r')
            i++;
        struct sl_bytes v = sl_bytes(s + st, i - st);
        if (sl_bytes_eq_str(v, "true") || sl_bytes_eq_str(v, "false"))
            *t = J_BOOL;
        else if (sl_bytes_eq_str(v, "null"))
            *t = J_NULL;
        else if (v.len && (isdigit((unsigned char)v.ptr[0]) || v.ptr[0] == '-'))
            *t = J_NUMBER;
        else {
            *why = v.len ? "Unknown value type" : E_VALUE;
            return 0;
        }
        return i;
    }
    }
}

static bool has_rune_error(struct sl_bytes v);

/* Unescapes a JSON string body (without quotes) into the scratch arena.
 * Returns false on a bad escape or if the result holds U+FFFD (Loki then
 * uses ""). */
static bool json_unescape(struct sl__logql_lb *lb, struct sl_bytes in, struct sl_bytes *out)
{
    if (!memchr(in.ptr, '\\', in.len)) {
        *out = in;
    } else {
        char *o = sl_arena_alloc(lb->scratch, in.len + 1);
        size_t k = 0;
        for (size_t i = 0; i < in.len; i++) {
            char c = in.ptr[i];
            if (c != '\\') {
                o[k++] = c;
                continue;
            }
            if (++i >= in.len)
                return false;
            switch (in.ptr[i]) {
            case '"':
            case '\\':
            case '/':
                o[k++] = in.ptr[i];
                break;
            case 'b':
                o[k++] = '\b';
                break;
            case 'f':
                o[k++] = '\f';
                break;
            case 'n':
                o[k++] = '\n';
                break;
            case 'r':
                o[k++] = '\r';
                break;
            case 't':
                o[k++] = '\t';
                break;
            case 'u': {
                uint32_t cp = 0;
                if (i + 4 >= in.len)
                    return false;
                for (int d = 1; d <= 4; d++) {
                    char h = in.ptr[i + d];
                    cp = cp * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0'
                                              : (h | 32) >= 'a' && (h | 32) <= 'f'
                                                  ? (h | 32) - 'a' + 10
                                                  : 99);
                    if (cp > 0xFFFF)
                        return false;
                }
                i += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < in.len && in.ptr[i + 1] == '\\' &&
                    in.ptr[i + 2] == 'u') {
                    uint32_t lo = 0;
                    for (int d = 3; d <= 6; d++) {
                        char h = in.ptr[i + d];
                        lo = lo * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0'
                                                  : (h | 32) >= 'a' && (h | 32) <= 'f'
                                                      ? (h | 32) - 'a' + 10
                                                      : 0);
                    }
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp < 0xE000)
                    cp = 0xFFFD;
                k += sl_utf8_encode(o + k, cp);
                break;
            }
            default:
                return false;
            }
        }
        *out = sl_bytes(o, k);
    }
    return !has_rune_error(*out);
}

/* Appends key sanitized the way Loki's appendSanitized does (per rune). */
static void append_sanitized(struct sl_buf *to, struct sl_bytes key, bool prefix_digit)
{
    size_t a = 0, b = key.len;
    while (a < b && isspace((unsigned char)key.ptr[a]))
        a++;
    while (b > a && isspace((unsigned char)key.ptr[b - 1]))
        b--;
    if (a == b)
        return;
    if (prefix_digit && isdigit((unsigned char)key.ptr[a]))
        sl_buf_append_char(to, '_');
    for (size_t i = a; i < b;) {
        uint32_t cp;
        size_t k = sl_utf8_decode(key.ptr + i, b - i, &cp);
        if (k == 0)
            k = 1, cp = 0xFFFD;
        char c = (char)cp;
        bool ok = cp < 0x80 && (isalnum((unsigned char)c) || c == '_');
        sl_buf_append_char(to, ok ? c : '_');
        i += k;
    }
}

/* A key as a label name: the key itself when it is already valid (a view
 * into the line), else its sanitized copy in the scratch arena. */
static struct sl_bytes clean_key(struct sl__logql_lb *lb, struct sl_bytes key, bool prefix_digit)
{
    bool clean = key.len > 0 && !(prefix_digit && isdigit((unsigned char)key.ptr[0]));
    for (size_t i = 0; clean && i < key.len; i++) {
        unsigned char c = (unsigned char)key.ptr[i];
        clean =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }
    if (clean)
        return key;
    sl_buf_clear(&lb->tmp);
    append_sanitized(&lb->tmp, key, prefix_digit);
    return sl_arena_bytes(lb->scratch, sl_buf_bytes(&lb->tmp));
}

/* True if v holds U+FFFD or invalid UTF-8 (Go reads both as RuneError,
 * which Loki rejects). ASCII is checked without decoding. */
static bool has_rune_error(struct sl_bytes v)
{
    size_t i = 0;
    while (i < v.len && !((unsigned char)v.ptr[i] & 0x80))
        i++;
    while (i < v.len) {
        uint32_t cp;
        size_t k = sl_utf8_decode(v.ptr + i, v.len - i, &cp);
        if (k == 0 || cp == 0xFFFD)
            return true;
        i += k;
    }
    return false;
}

/* name must stay valid for the line (the line, the query or the scratch
 * arena). A stream label's name gets the suffix _extracted. */
static void set_extracted(struct sl__logql_lb *lb, struct sl_bytes name, struct sl_bytes v)
{
    if (name.len == 0)
        return;
    if (sl__logql_lb_base_has(lb, name)) {
        char *n = sl_arena_alloc(lb->scratch, name.len + 10);
        memcpy(n, name.ptr, name.len);
        memcpy(n + name.len, "_extracted", 10);
        name = sl_bytes(n, name.len + 10);
    }
    for (size_t i = 0; i < lb->nseen; i++)
        if (sl_bytes_eq(lb->seen[i], name))
            return; /* a duplicate key in the line: the first value stays */
    if (lb->nseen == lb->capseen) {
        lb->capseen = lb->capseen ? 2 * lb->capseen : 16;
        lb->seen = sl_reallocarray(lb->seen, lb->capseen, sizeof *lb->seen);
    }
    lb->seen[lb->nseen++] = name;
    if (lb->want) {
        size_t i = 0;
        while (i < lb->nwant && !sl_bytes_eq(lb->want[i], name))
            i++;
        if (i == lb->nwant)
            return; /* not needed by the query */
        lb->found |= (uint64_t)1 << i;
    }
    sl__logql_lb_set(lb, name, v);
}

/* Every hinted name was extracted: the parser may stop (Loki does). */
static bool all_found(const struct sl__logql_lb *lb)
{
    return lb->want &&
           lb->found == (lb->nwant == 64 ? ~(uint64_t)0 : ((uint64_t)1 << lb->nwant) - 1);
}

static void json_error(struct sl__logql_lb *lb, const char *why)
{
    sl__logql_lb_set_err(lb, SL__ERR_JSON, why ? sl_bytes_str(why) : sl_bytes("", 0));
}

/* Walks one object level; prefix holds the sanitized key path so far.
 * Returns 0, 1 when every hinted label is found (stop), -1 on an error. */
static int json_walk(struct sl__logql_lb *lb, const char *s, size_t n, size_t i,
                     struct sl_buf *prefix, const char **why, int depth)
{
    if (depth > 64) {
        *why = E_JSON;
        return -1;
    }
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != '{') {
        *why = E_OBJECT;
        return -1;
    }
    /* jsonparser's ObjectEach, with its error for each place */
    i = skip_ws(s, n, i + 1);
    if (i >= n) {
        *why = E_JSON;
        return -1;
    }
    for (;;) {
        if (s[i] == '}') /* also after a trailing comma, as ObjectEach */
            return 0;
        if (s[i] != '"') {
            *why = E_OBJECT;
            return -1;
        }
        size_t ks = i;
        if (!(i = scan_string(s, n, i, why))) {
            *why = E_JSON;
            return -1;
        }
        struct sl_bytes key = sl_bytes(s + ks + 1, i - ks - 2);
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != ':') {
            *why = E_JSON;
            return -1;
        }
        i = skip_ws(s, n, i + 1);
        enum jtype t = J_NONE;
        size_t vs = i;
        if (!(i = scan_value(s, n, i, &t, why, depth + 1)))
            return -1;
        size_t plen = prefix->len;
        if (plen)
            sl_buf_append_char(prefix, '_');
        append_sanitized(prefix, key, plen == 0);
        if (t == J_OBJECT) {
            int rc = json_walk(lb, s, n, vs, prefix, why, depth + 1);
            if (rc)
                return rc;
        } else if (t == J_STRING || t == J_NUMBER || t == J_BOOL) {
            struct sl_bytes v = sl_bytes(s + vs, i - vs);
            if (t == J_STRING && !json_unescape(lb, sl_bytes(v.ptr + 1, v.len - 2), &v))
                v = sl_bytes("", 0);
            struct sl_bytes name =
                plen ? sl_arena_bytes(lb->scratch, sl_buf_bytes(prefix)) : clean_key(lb, key, true);
            set_extracted(lb, name, v);
            if (all_found(lb))
                return 1; /* short-circuit: the rest is not read */
        }
        prefix->len = plen;
        i = skip_ws(s, n, i);
        if (i >= n) { /* ObjectEach says "array" here */
            *why = E_ARRAY;
            return -1;
        }
        if (s[i] == '}')
            return 0;
        if (s[i] != ',') {
            *why = E_OBJECT;
            return -1;
        }
        i = skip_ws(s, n, i + 1);
        if (i >= n) {
            *why = E_ARRAY;
            return -1;
        }
    }
}

void sl__logql_parse_json(struct sl__logql_lb *lb, struct sl_bytes line)
{
    const char *why = NULL;
    /* no label needed, or an earlier parser found them all: Loki's hints
     * (NoLabels) skip the parse */
    if (all_found(lb))
        return;
    sl_buf_clear(&lb->tmp);
    if (json_walk(lb, line.ptr, line.len, 0, &lb->tmp, &why, 0) < 0)
        json_error(lb, why);
}

/* Finds the value at path in the JSON text; false if absent. */
static bool json_find(const char *s, size_t n, const struct sl_logql_extract *x, size_t *vs,
                      size_t *ve, enum jtype *vt)
{
    size_t i = skip_ws(s, n, 0);
    const char *why;
    for (size_t k = 0; k < x->npath; k++) {
        struct sl_bytes want = x->path[k];
        bool index = want.len > 2 && want.ptr[0] == '[';
        if (i >= n || s[i] != (index ? '[' : '{'))
            return false;
        long idx = index ? strtol(want.ptr + 1, NULL, 10) : -1;
        i = skip_ws(s, n, i + 1);
        bool found = false;
        for (long pos = 0; i < n && s[i] != (index ? ']' : '}'); pos++) {
            bool match = index && pos == idx;
            if (!index) {
                size_t ks = i;
                if (s[i] != '"' || !(i = scan_string(s, n, i, &why)))
                    return false;
                match = i - ks - 2 == want.len && memcmp(s + ks + 1, want.ptr, want.len) == 0;
                i = skip_ws(s, n, i);
                if (i >= n || s[i] != ':')
                    return false;
                i = skip_ws(s, n, i + 1);
            }
            enum jtype t;
            size_t st = i;
            if (!(i = scan_value(s, n, i, &t, &why, 0)))
                return false;
            if (match) {
                *vs = st;
                *ve = i;
                *vt = t;
                i = st;
                found = true;
                break;
            }
            i = skip_ws(s, n, i);
            if (i < n && s[i] == ',')
                i = skip_ws(s, n, i + 1);
        }
        if (!found)
            return false;
    }
    return true;
}

void sl__logql_parse_json_exprs(struct sl__logql_lb *lb, const struct sl_logql_stage *st,
                                struct sl_bytes line)
{
    if (line.len == 0)
        return;
    if (line.ptr[0] != '"' && line.ptr[0] != '{' && line.ptr[0] != '[') {
        sl__logql_lb_set_err(lb, SL__ERR_JSON, sl_bytes("", 0));
        return;
    }
    for (size_t k = 0; k < st->nex; k++) {
        size_t vs = 0, ve = 0;
        enum jtype t = J_NONE;
        struct sl_bytes v = {"", 0};
        if (json_find(line.ptr, line.len, &st->ex[k], &vs, &ve, &t) && t != J_NULL) {
            v = sl_bytes(line.ptr + vs, ve - vs);
            if (t == J_STRING && !json_unescape(lb, sl_bytes(v.ptr + 1, v.len - 2), &v))
                v = sl_bytes("", 0);
        }
        set_extracted(lb, st->ex[k].name, v);
    }
}

int sl__logql_json_path_parse(struct sl_arena *a, struct sl_bytes e, struct sl_logql_extract *x,
                              struct sl_buf *err)
{
    size_t i = 0;
    x->path = sl_arena_calloc(a, (e.len + 1) * sizeof *x->path);
    x->npath = 0;
    bool need_field = true;
    while (i < e.len) {
        char c = e.ptr[i];
        if (c == '[') {
            size_t j = i + 1;
            if (j < e.len && (e.ptr[j] == '"' || e.ptr[j] == '\'')) {
                char q = e.ptr[j++];
                size_t s0 = j;
                while (j < e.len && e.ptr[j] != q)
                    j++;
                if (j + 1 >= e.len || e.ptr[j + 1] != ']')
                    goto bad;
                x->path[x->npath++] = sl_arena_bytes(a, sl_bytes(e.ptr + s0, j - s0));
                i = j + 2;
            } else {
                size_t s0 = j;
                while (j < e.len && isdigit((unsigned char)e.ptr[j]))
                    j++;
                if (j == s0 || j >= e.len || e.ptr[j] != ']')
                    goto bad;
                x->path[x->npath++] = sl_arena_bytes(a, sl_bytes(e.ptr + i, j + 1 - i));
                i = j + 1;
            }
            need_field = false;
            continue;
        }
        if (c == '.') {
            if (need_field)
                goto bad;
            i++;
            need_field = true;
            continue;
        }
        size_t s0 = i;
        while (i < e.len && (isalnum((unsigned char)e.ptr[i]) || e.ptr[i] == '_' ||
                             e.ptr[i] == '-' || ((unsigned char)e.ptr[i] & 0x80)))
            i++;
        if (i == s0 || (!need_field && x->npath))
            goto bad;
        x->path[x->npath++] = sl_arena_bytes(a, sl_bytes(e.ptr + s0, i - s0));
        need_field = false;
    }
    if (x->npath == 0 || need_field)
        goto bad;
    return 0;
bad:
    sl_buf_append_str(err, "syntax error: unexpected character in json expression");
    return SL_EINVAL;
}

/* go-logfmt's decoder: one key/value pair per call. Returns 1 with a pair,
 * 0 at the end, -1 on a syntax error (message in *why, position in *pos). */
static int logfmt_next(struct sl_bytes line, size_t *pos, struct sl_bytes *key,
                       struct sl_bytes *val, bool *quoted_esc, const char **why, size_t *errpos)
{
    const char *s = line.ptr;
    size_t n = line.len, i = *pos;
    *key = *val = sl_bytes(NULL, 0);
    *quoted_esc = false;
    while (i < n && (unsigned char)s[i] <= ' ')
        i++;
    if (i >= n) {
        *pos = n;
        return 0;
    }
    size_t st = i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=') {
            if (i == st) {
                *why = "unexpected '='";
                goto skip;
            }
            *key = sl_bytes(s + st, i - st);
            goto equal;
        }
        if (c == '"') {
            *why = "unexpected '\"'";
            goto skip;
        }
        if (c <= ' ') {
            *key = sl_bytes(s + st, i - st);
            *pos = i;
            return 1;
        }
    }
    *key = sl_bytes(s + st, n - st);
    *pos = n;
    return 1;
equal:
    i++;
    if (i >= n || (unsigned char)s[i] <= ' ') {
        *pos = i;
        return 1;
    }
    if (s[i] == '"') {
        size_t q = i;
        bool esc = false, has = false;
        for (i++; i < n; i++) {
            if (esc)
                esc = false;
            else if (s[i] == '\\')
                esc = has = true;
            else if (s[i] == '"')
                break;
        }
        if (i >= n) {
            *pos = n;
            *errpos = n + 1;
            *why = "unterminated quoted value";
            return -1;
        }
        *val = sl_bytes(s + q + 1, i - q - 1);
        *quoted_esc = has;
        *pos = i + 1;
        return 1;
    }
    st = i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=' || c == '"') {
            *why = c == '=' ? "unexpected '='" : "unexpected '\"'";
            goto skip;
        }
        if (c <= ' ')
            break;
    }
    *val = sl_bytes(s + st, i - st);
    *pos = i;
    return 1;
skip:
    *errpos = i + 1;
    while (i < n && (unsigned char)s[i] > ' ')
        i++;
    *pos = i;
    return -1;
}

void sl__logql_parse_logfmt(struct sl__logql_lb *lb, const struct sl_logql_stage *st,
                            struct sl_bytes line)
{
    size_t pos = 0;
    if (all_found(lb)) /* as json */
        return;
    for (;;) {
        struct sl_bytes key, val;
        bool esc;
        const char *why = NULL;
        size_t errpos = 0;
        int rc = logfmt_next(line, &pos, &key, &val, &esc, &why, &errpos);
        if (rc == 0)
            return;
        if (rc < 0) {
            if (!st->strict)
                continue;
            char msg[128];
            snprintf(msg, sizeof msg, "logfmt syntax error at pos %zu : %s", errpos, why);
            sl__logql_lb_set_err(lb, SL__ERR_LOGFMT,
                                 sl_arena_bytes(lb->scratch, sl_bytes_str(msg)));
            return;
        }
        if (esc && !json_unescape(lb, val, &val)) {
            if (!st->strict)
                continue;
            /* go-logfmt reports the position after the closing quote */
            char msg[96];
            snprintf(msg, sizeof msg, "logfmt syntax error at pos %zu : invalid quoted value",
                     pos + 1);
            sl__logql_lb_set_err(lb, SL__ERR_LOGFMT,
                                 sl_arena_bytes(lb->scratch, sl_bytes_str(msg)));
            return;
        }
        if (has_rune_error(val)) /* rejected: the value becomes "" */
            val = sl_bytes("", 0);
        if (val.len == 0 && !st->keep_empty)
            continue;
        struct sl_bytes name = clean_key(lb, key, true);
        if (st->nex) { /* expressions: only the listed keys, renamed */
            bool hit = false;
            for (size_t k = 0; k < st->nex; k++)
                if (sl_bytes_eq(st->ex[k].expr, name)) {
                    set_extracted(lb, st->ex[k].name, val);
                    hit = true;
                }
            (void)hit;
            continue;
        }
        set_extracted(lb, name, val);
        if (all_found(lb))
            return;
    }
}

void sl__logql_parse_logfmt_prepare(struct sl__logql_lb *lb, const struct sl_logql_stage *st)
{
    /* With expressions, every listed label exists even when absent. */
    for (size_t k = 0; k < st->nex; k++)
        if (!sl__logql_lb_base_has(lb, st->ex[k].name))
            sl__logql_lb_set(lb, st->ex[k].name, sl_bytes("", 0));
}

void sl__logql_parse_regexp(struct sl__logql_lb *lb, struct sl_logql_query *q,
                            const struct sl_logql_stage *st, struct sl_bytes line)
{
    size_t ov[2 * 64];
    size_t want = st->nnames < 64 ? st->nnames : 64;
    int n = sl__logql_regex_exec(q, st->re, line, 0, ov, 2 * want);
    if (n <= 0)
        return;
    for (size_t g = 1; g < want; g++) {
        if (!st->names[g].len)
            continue;
        struct sl_bytes v = {"", 0};
        if ((int)g < n && ov[2 * g] != (size_t)-1)
            v = sl_bytes(line.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        set_extracted(lb, st->names[g], v);
    }
}

void sl__logql_parse_pattern(struct sl__logql_lb *lb, const struct sl_logql_stage *st,
                             struct sl_bytes line)
{
    const struct sl_bytes *names;
    size_t nn = sl__logql_pattern_names(st->pattern, &names);
    struct sl_bytes *vals = sl_arena_alloc(lb->scratch, (nn + 1) * sizeof *vals);
    size_t got = sl__logql_pattern_match(st->pattern, line, vals);
    for (size_t i = 0; i < got && i < nn; i++)
        set_extracted(lb, names[i], vals[i]);
}

struct sl_bytes sl__logql_parse_unpack(struct sl__logql_lb *lb, struct sl_bytes line)
{
    if (line.len == 0 || all_found(lb)) /* as json */
        return line;
    const char *s = line.ptr, *why = NULL;
    size_t n = line.len, i = skip_ws(s, n, 0);
    struct sl_bytes entry = line;
    if (i >= n || s[i] != '{') {
        json_error(lb, E_OBJECT);
        return line;
    }
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] != '}') {
        size_t ks = i;
        if (s[i] != '"' || !(i = scan_string(s, n, i, &why))) {
            json_error(lb, why ? why : E_OBJECT);
            return line;
        }
        struct sl_bytes key = sl_bytes(s + ks + 1, i - ks - 2);
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != ':') {
            json_error(lb, E_OBJECT);
            return line;
        }
        i = skip_ws(s, n, i + 1);
        enum jtype t;
        size_t vs = i;
        if (!(i = scan_value(s, n, i, &t, &why, 0))) {
            json_error(lb, why);
            return line;
        }
        if (t == J_STRING) {
            struct sl_bytes v;
            if (!json_unescape(lb, sl_bytes(s + vs + 1, i - vs - 2), &v))
                v = sl_bytes("", 0);
            if (sl_bytes_eq_str(key, "_entry"))
                entry = v;
            else
                set_extracted(lb, key, v);
        }
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',')
            i = skip_ws(s, n, i + 1);
        else if (i >= n || s[i] != '}') {
            json_error(lb, E_OBJECT);
            return line;
        }
    }
    if (i >= n) {
        json_error(lb, E_OBJECT);
        return line;
    }
    return entry;
}
