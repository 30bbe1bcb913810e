/* Number, duration and size texts with the exact acceptance rules of the Go
 * functions Loki uses on label values: strconv.ParseFloat (numeric filters,
 * unwrap), time.ParseDuration (duration filters, duration()), go-humanize's
 * ParseBytes (bytes filters, bytes()); and Prometheus' model.Duration text
 * for ranges. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/logql.h"

static bool ieq(struct sl_bytes s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s.ptr[i]) != lit[i])
            return false;
    return true;
}

/* Go's hexadecimal float (0x1.8p3): hex digits, an optional point, and a
 * mandatory binary exponent. Returns the end, or 0. */
static size_t hex_float_end(struct sl_bytes s, size_t i)
{
    if (i + 2 > s.len || s.ptr[i] != '0' || (s.ptr[i + 1] != 'x' && s.ptr[i + 1] != 'X'))
        return 0;
    i += 2;
    size_t digits = 0;
    while (i < s.len && isxdigit((unsigned char)s.ptr[i]))
        i++, digits++;
    if (i < s.len && s.ptr[i] == '.') {
        i++;
        while (i < s.len && isxdigit((unsigned char)s.ptr[i]))
            i++, digits++;
    }
    if (digits == 0 || i >= s.len || (s.ptr[i] != 'p' && s.ptr[i] != 'P'))
        return 0;
    i++;
    if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
        i++;
    size_t ed = 0;
    while (i < s.len && isdigit((unsigned char)s.ptr[i]))
        i++, ed++;
    return ed ? i : 0;
}

/* 0, or -1 for a syntax error, -2 when the value overflows a double
 * (strconv.ParseFloat's ErrRange). */
static int parse_float_rc(struct sl_bytes s, double *out)
{
    if (s.len == 0 || s.len > 400)
        return -1;
    size_t i = 0;
    bool neg = false;
    if (s.ptr[0] == '+' || s.ptr[0] == '-') {
        neg = s.ptr[0] == '-';
        i++;
    }
    struct sl_bytes rest = sl_bytes(s.ptr + i, s.len - i);
    if (ieq(rest, "inf") || ieq(rest, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (ieq(rest, "nan")) {
        *out = NAN;
        return 0;
    }
    size_t hex = hex_float_end(s, i);
    if (hex) {
        i = hex;
    } else {
        size_t digits = 0;
        while (i < s.len && isdigit((unsigned char)s.ptr[i]))
            i++, digits++;
        if (i < s.len && s.ptr[i] == '.') {
            i++;
            while (i < s.len && isdigit((unsigned char)s.ptr[i]))
                i++, digits++;
        }
        if (digits == 0)
            return -1;
        if (i < s.len && (s.ptr[i] == 'e' || s.ptr[i] == 'E')) {
            i++;
            if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
                i++;
            size_t ed = 0;
            while (i < s.len && isdigit((unsigned char)s.ptr[i]))
                i++, ed++;
            if (ed == 0)
                return -1;
        }
    }
    if (i != s.len)
        return -1;
    char tmp[408];
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = 0;
    *out = strtod(tmp, NULL);
    return isinf(*out) ? -2 : 0;
}

bool sl__logql_parse_float(struct sl_bytes s, double *out)
{
    return parse_float_rc(s, out) == 0;
}

void sl__logql_float_error(struct sl_buf *b, struct sl_bytes s)
{
    double d;
    struct sl_buf q = SL_BUF_INIT;
    sl_logql_quote(&q, s);
    sl_buf_appendf(b, "strconv.ParseFloat: parsing %.*s: %s", (int)q.len, q.data,
                   parse_float_rc(s, &d) == -2 ? "value out of range" : "invalid syntax");
    sl_buf_release(&q);
}

static int64_t unit_ns(const char *u, size_t n)
{
    static const struct {
        const char *s;
        int64_t ns;
    } units[] = {
        {"ns", 1},       {"us", 1000},        {"\xc2\xb5s", 1000},  {"\xce\xbcs", 1000},
        {"ms", 1000000}, {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].s) == n && memcmp(units[i].s, u, n) == 0)
            return units[i].ns;
    return 0;
}

bool sl__logql_parse_go_duration(struct sl_bytes s, int64_t *out_ns)
{
    size_t i = 0;
    bool neg = false;
    if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
        neg = s.ptr[i++] == '-';
    if (s.len - i == 1 && s.ptr[i] == '0') {
        *out_ns = 0;
        return true;
    }
    if (i == s.len)
        return false;
    double total = 0;
    while (i < s.len) {
        size_t d0 = i;
        double v = 0, scale = 1;
        while (i < s.len && isdigit((unsigned char)s.ptr[i]))
            v = v * 10 + (s.ptr[i++] - '0');
        bool pre = i > d0, post = false;
        if (i < s.len && s.ptr[i] == '.') {
            i++;
            while (i < s.len && isdigit((unsigned char)s.ptr[i])) {
                scale /= 10;
                v += (s.ptr[i++] - '0') * scale;
                post = true;
            }
        }
        if (!pre && !post)
            return false;
        size_t u0 = i;
        while (i < s.len && s.ptr[i] != '.' && !isdigit((unsigned char)s.ptr[i]))
            i++;
        int64_t u = unit_ns(s.ptr + u0, i - u0);
        if (u == 0)
            return false;
        total += v * (double)u;
        if (total > 9.2e18)
            return false;
    }
    *out_ns = (int64_t)(neg ? -total : total);
    return true;
}

bool sl__logql_parse_bytes(struct sl_bytes s, uint64_t *out)
{
    static const struct {
        const char *u;
        double m;
    } table[] = {
        {"", 1},
        {"b", 1},
        {"kib", 1024.0},
        {"kb", 1e3},
        {"ki", 1024.0},
        {"k", 1e3},
        {"mib", 1048576.0},
        {"mb", 1e6},
        {"mi", 1048576.0},
        {"m", 1e6},
        {"gib", 1073741824.0},
        {"gb", 1e9},
        {"gi", 1073741824.0},
        {"g", 1e9},
        {"tib", 1099511627776.0},
        {"tb", 1e12},
        {"ti", 1099511627776.0},
        {"t", 1e12},
        {"pib", 1125899906842624.0},
        {"pb", 1e15},
        {"pi", 1125899906842624.0},
        {"p", 1e15},
        {"eib", 1152921504606846976.0},
        {"eb", 1e18},
        {"ei", 1152921504606846976.0},
        {"e", 1e18},
    };
    char num[64];
    size_t nn = 0, i = 0;
    while (i < s.len && (isdigit((unsigned char)s.ptr[i]) || s.ptr[i] == '.' || s.ptr[i] == ',')) {
        if (s.ptr[i] != ',') {
            if (nn + 1 >= sizeof num)
                return false;
            num[nn++] = s.ptr[i];
        }
        i++;
    }
    double f;
    if (!sl__logql_parse_float(sl_bytes(num, nn), &f))
        return false;
    size_t a = i, b = s.len;
    while (a < b && isspace((unsigned char)s.ptr[a]))
        a++;
    while (b > a && isspace((unsigned char)s.ptr[b - 1]))
        b--;
    struct sl_bytes unit = sl_bytes(s.ptr + a, b - a);
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        if (ieq(unit, table[k].u)) {
            f *= table[k].m;
            if (f >= 18446744073709551615.0)
                return false;
            *out = (uint64_t)f;
            return true;
        }
    }
    return false;
}

/* Go's message for a value time.ParseDuration refuses (the value already
 * failed sl__logql_parse_go_duration). */
void sl__logql_go_duration_error(struct sl_buf *b, struct sl_bytes s)
{
    struct sl_buf q = SL_BUF_INIT;
    sl_logql_quote(&q, s);
    const char *why = "invalid duration";
    size_t i = 0, u0 = 0, un = 0;
    if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
        i++;
    while (i < s.len) {
        size_t d0 = i;
        while (i < s.len && (isdigit((unsigned char)s.ptr[i]) || s.ptr[i] == '.'))
            i++;
        if (i == d0)
            break; /* no number where one must be: invalid */
        u0 = i;
        while (i < s.len && s.ptr[i] != '.' && !isdigit((unsigned char)s.ptr[i]))
            i++;
        un = i - u0;
        if (un == 0) {
            why = "missing unit in duration";
            break;
        }
        if (unit_ns(s.ptr + u0, un) == 0) {
            why = NULL;
            break;
        }
    }
    if (why)
        sl_buf_appendf(b, "time: %s %.*s", why, (int)q.len, q.data);
    else {
        struct sl_buf uq = SL_BUF_INIT;
        sl_logql_quote(&uq, sl_bytes(s.ptr + u0, un));
        sl_buf_appendf(b, "time: unknown unit %.*s in duration %.*s", (int)uq.len, uq.data,
                       (int)q.len, q.data);
        sl_buf_release(&uq);
    }
    sl_buf_release(&q);
}

/* go-humanize's message for a value ParseBytes refuses: the number part
 * does not parse, or the unit is unknown. */
void sl__logql_bytes_error(struct sl_buf *b, struct sl_bytes s)
{
    struct sl_buf num = SL_BUF_INIT;
    size_t i = 0;
    for (; i < s.len && (isdigit((unsigned char)s.ptr[i]) || s.ptr[i] == '.' || s.ptr[i] == ',');
         i++)
        if (s.ptr[i] != ',')
            sl_buf_append(&num, s.ptr + i, 1);
    double f;
    if (!sl__logql_parse_float(sl_buf_bytes(&num), &f)) {
        sl__logql_float_error(b, sl_buf_bytes(&num));
    } else {
        size_t a = i, e = s.len;
        while (a < e && isspace((unsigned char)s.ptr[a]))
            a++;
        while (e > a && isspace((unsigned char)s.ptr[e - 1]))
            e--;
        sl_buf_append_str(b, "unhandled size name: ");
        for (size_t k = a; k < e; k++)
            sl_buf_appendf(b, "%c", tolower((unsigned char)s.ptr[k]));
    }
    sl_buf_release(&num);
}

void sl__logql_format_model_duration(struct sl_buf *b, int64_t ns)
{
    if (ns == 0) {
        sl_buf_append_str(b, "0s");
        return;
    }
    if (ns < 0) {
        sl_buf_append_char(b, '-');
        ns = -ns;
    }
    int64_t ms = ns / 1000000, rest = ns % 1000000;
    static const struct {
        const char *u;
        int64_t mult;
        bool exact;
    } units[] = {{"w", 604800000LL, true}, {"d", 86400000LL, true}, {"h", 3600000LL, false},
                 {"m", 60000LL, false},    {"s", 1000LL, false},    {"ms", 1, false}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (units[i].exact && ms % units[i].mult != 0)
            continue;
        int64_t v = ms / units[i].mult;
        if (v > 0) {
            sl_buf_appendf(b, "%lld%s", (long long)v, units[i].u);
            ms -= v * units[i].mult;
        }
    }
    if (rest >= 1000)
        sl_buf_appendf(b, "%lldus", (long long)(rest / 1000));
    if (rest % 1000)
        sl_buf_appendf(b, "%lldns", (long long)(rest % 1000));
}

bool sl_logql_unwrap_convert(enum sl_logql_unwrap_conv conv, struct sl_bytes v, double *out)
{
    int64_t ns;
    uint64_t bytes;
    switch (conv) {
    case SL_LOGQL_UNWRAP_DURATION:
    case SL_LOGQL_UNWRAP_DURATION_SECONDS:
        if (!sl__logql_parse_go_duration(v, &ns))
            return false;
        *out = (double)ns / 1e9;
        return true;
    case SL_LOGQL_UNWRAP_BYTES:
        if (!sl__logql_parse_bytes(v, &bytes))
            return false;
        *out = (double)bytes;
        return true;
    default:
        return sl__logql_parse_float(v, out);
    }
}
