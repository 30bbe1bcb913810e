/* JSON writer. Escaping follows Go's encoding/json (HTML-safe, invalid UTF-8
 * replaced per byte) so responses match Loki's byte for byte; numbers follow
 * strconv's shortest round-trip formatting. */
#include "common/jsonw.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

void sl_jsonw_init(struct sl_jsonw *w, struct sl_buf *out)
{
    w->out = out;
    w->depth = 0;
    memset(w->need_comma, 0, sizeof(w->need_comma));
}

/* Slot for the current level; nesting past the limit shares the last slot
 * (output stays well formed as long as the caller's calls are). */
static bool *comma_slot(struct sl_jsonw *w)
{
    int d = w->depth < 0 ? 0 : w->depth;
    return &w->need_comma[d < SL_JSONW_MAX_DEPTH ? d : SL_JSONW_MAX_DEPTH - 1];
}

/* Before any value or key: separator if a sibling came before. */
static void before_value(struct sl_jsonw *w)
{
    bool *c = comma_slot(w);
    if (*c)
        sl_buf_append_char(w->out, ',');
    *c = true;
}

static void open_(struct sl_jsonw *w, char c)
{
    before_value(w);
    sl_buf_append_char(w->out, c);
    w->depth++;
    *comma_slot(w) = false;
}

static void close_(struct sl_jsonw *w, char c)
{
    sl_buf_append_char(w->out, c);
    if (w->depth > 0)
        w->depth--;
}

void sl_jsonw_obj_open(struct sl_jsonw *w)
{
    open_(w, '{');
}

void sl_jsonw_obj_close(struct sl_jsonw *w)
{
    close_(w, '}');
}

void sl_jsonw_arr_open(struct sl_jsonw *w)
{
    open_(w, '[');
}

void sl_jsonw_arr_close(struct sl_jsonw *w)
{
    close_(w, ']');
}

void sl_jsonw_key_bytes(struct sl_jsonw *w, struct sl_bytes key)
{
    before_value(w);
    sl_json_escape(w->out, key);
    sl_buf_append_char(w->out, ':');
    /* The value that follows takes no comma. */
    *comma_slot(w) = false;
}

void sl_jsonw_key(struct sl_jsonw *w, const char *key)
{
    sl_jsonw_key_bytes(w, sl_bytes_str(key));
}

void sl_jsonw_str(struct sl_jsonw *w, const char *s)
{
    sl_jsonw_bytes(w, sl_bytes_str(s));
}

void sl_jsonw_bytes(struct sl_jsonw *w, struct sl_bytes s)
{
    before_value(w);
    sl_json_escape(w->out, s);
}

void sl_jsonw_i64(struct sl_jsonw *w, int64_t v)
{
    before_value(w);
    sl_buf_append_i64(w->out, v);
}

void sl_jsonw_i64_str(struct sl_jsonw *w, int64_t v)
{
    before_value(w);
    sl_buf_append_char(w->out, '"');
    sl_buf_append_i64(w->out, v);
    sl_buf_append_char(w->out, '"');
}

/* Shortest decimal digits that read back as v (v finite, positive). Every
 * decimal of at most 15 digits survives a round trip through a normal double,
 * so if 15 digits (correctly rounded) work, trimming their trailing zeros
 * gives the shortest form; otherwise 16, then 17. Subnormals have less
 * precision and are searched from 1 digit up. Fills digits (no dot, trailing
 * zeros removed) and returns the decimal exponent of the first digit. */
static int shortest_digits(double v, char *digits, size_t *nd)
{
    char tmp[40];
    for (int prec = v < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    /* tmp: [-]d.ddde[+-]xx */
    const char *p = tmp[0] == '-' ? tmp + 1 : tmp;
    size_t n = 0;
    for (; *p && *p != 'e'; p++) {
        if (*p != '.')
            digits[n++] = *p;
    }
    int exp = atoi(p + 1);
    while (n > 1 && digits[n - 1] == '0')
        n--;
    *nd = n;
    return exp;
}

/* Go's strconv.AppendFloat(v, fmt, -1, 64) for fmt 'f' or 'e', with
 * encoding/json's choice of fmt; json_exp trims "e-07" to "e-7" as
 * encoding/json does (Prometheus keeps the two digits). */
static void format_f64(struct sl_buf *b, double v, bool json_exp)
{
    if (isnan(v)) {
        sl_buf_append_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sl_buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (signbit(v))
        sl_buf_append_char(b, '-');
    double a = fabs(v);
    if (a == 0) {
        sl_buf_append_char(b, '0');
        return;
    }
    char d[24];
    size_t nd;
    int exp = shortest_digits(a, d, &nd);
    if (a < 1e-6 || a >= 1e21) {
        sl_buf_append_char(b, d[0]);
        if (nd > 1) {
            sl_buf_append_char(b, '.');
            sl_buf_append(b, d + 1, nd - 1);
        }
        sl_buf_append_char(b, 'e');
        sl_buf_append_char(b, exp < 0 ? '-' : '+');
        int ae = exp < 0 ? -exp : exp;
        if (ae < 10 && !(json_exp && exp < 0))
            sl_buf_append_char(b, '0');
        sl_buf_append_i64(b, ae);
        return;
    }
    if (exp < 0) {
        sl_buf_append(b, "0.", 2);
        for (int i = 0; i < -exp - 1; i++)
            sl_buf_append_char(b, '0');
        sl_buf_append(b, d, nd);
        return;
    }
    size_t ip = (size_t)exp + 1;
    if (nd <= ip) {
        sl_buf_append(b, d, nd);
        for (size_t i = nd; i < ip; i++)
            sl_buf_append_char(b, '0');
        return;
    }
    sl_buf_append(b, d, ip);
    sl_buf_append_char(b, '.');
    sl_buf_append(b, d + ip, nd - ip);
}

void sl_f64_format(struct sl_buf *b, double v)
{
    format_f64(b, v, false);
}

void sl_jsonw_f64(struct sl_jsonw *w, double v)
{
    before_value(w);
    if (!isfinite(v)) {
        sl_buf_append_char(w->out, '"');
        format_f64(w->out, v, true);
        sl_buf_append_char(w->out, '"');
        return;
    }
    format_f64(w->out, v, true);
}

void sl_jsonw_f64_str(struct sl_jsonw *w, double v)
{
    before_value(w);
    sl_buf_append_char(w->out, '"');
    format_f64(w->out, v, false);
    sl_buf_append_char(w->out, '"');
}

void sl_jsonw_bool(struct sl_jsonw *w, bool v)
{
    before_value(w);
    sl_buf_append_str(w->out, v ? "true" : "false");
}

void sl_jsonw_null(struct sl_jsonw *w)
{
    before_value(w);
    sl_buf_append(w->out, "null", 4);
}

/* Bytes that need more than a plain copy: quote, backslash, controls, the
 * HTML-sensitive <>&, and every non-ASCII byte (checked for UTF-8). */
static const unsigned char needs_escape[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, ['<'] = 1, ['>'] = 1, ['&'] = 1, [0x80 ... 0xff] = 1,
};

void sl_json_escape(struct sl_buf *out, struct sl_bytes s)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case is 6 output bytes per input byte (\u00XX / \ufffd). */
    char *o = sl_buf_reserve(out, s.len * 6 + 2), *start = o;
    const unsigned char *p = (const unsigned char *)s.ptr;
    *o++ = '"';
    size_t i = 0;
    while (i < s.len) {
        unsigned char c = p[i];
        if (!needs_escape[c]) {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            uint32_t cp;
            size_t l = sl_utf8_decode(s.ptr + i, s.len - i, &cp);
            if (l == 0) {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                i++;
            } else if (cp == 0x2028 || cp == 0x2029) {
                memcpy(o, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
                o += 6;
                i += l;
            } else {
                memcpy(o, s.ptr + i, l);
                o += l;
                i += l;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
            break;
        }
        i++;
    }
    *o++ = '"';
    sl_buf_commit(out, (size_t)(o - start));
}
