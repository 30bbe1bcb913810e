/* Clocks and the text forms of times, durations and sizes. Calendar math uses
 * the days-from-civil algorithms (proleptic Gregorian), so nothing here reads
 * the time zone database or takes a lock. */
#include "common/timeutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

int64_t sl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_SEC + ts.tv_nsec;
}

int64_t sl_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_SEC + ts.tv_nsec;
}

/* ---- calendar ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

/* ---- durations ---- */

struct unit {
    const char *name;
    uint64_t ns;
};

static const struct unit duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
    {"ms", 1000000},
    {"s", 1000000000ULL},
    {"m", 60ULL * 1000000000ULL},
    {"h", 3600ULL * 1000000000ULL},
    {"d", 86400ULL * 1000000000ULL},
    {"w", 7ULL * 86400ULL * 1000000000ULL},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One "<number><unit>" term of a duration, as Go's time.ParseDuration reads
 * it; adds its value to *total. Returns the bytes consumed or 0 on error. */
static size_t duration_term(const char *s, size_t n, uint64_t *total)
{
    const uint64_t limit = 1ULL << 63;
    size_t i = 0, digits = 0;
    uint64_t v = 0, frac = 0;
    double scale = 1;
    bool overflow = false;
    for (; i < n && is_digit(s[i]); i++, digits++) {
        if (v > limit / 10)
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > limit)
            return 0;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++, digits++) {
            if (overflow)
                continue;
            if (frac > (limit - 1) / 10) {
                overflow = true; /* further digits cannot matter */
                continue;
            }
            frac = frac * 10 + (uint64_t)(s[i] - '0');
            scale *= 10;
        }
    }
    if (digits == 0)
        return 0;
    size_t u0 = i;
    while (i < n && s[i] != '.' && !is_digit(s[i]))
        i++;
    size_t ulen = i - u0;
    if (ulen == 0)
        return 0;
    const struct unit *u = NULL;
    for (size_t k = 0; k < sizeof(duration_units) / sizeof(duration_units[0]); k++) {
        if (strlen(duration_units[k].name) == ulen &&
            memcmp(duration_units[k].name, s + u0, ulen) == 0) {
            u = &duration_units[k];
            break;
        }
    }
    if (!u)
        return 0;
    if (v > limit / u->ns)
        return 0;
    v *= u->ns;
    if (frac > 0) {
        v += (uint64_t)((double)frac * ((double)u->ns / scale));
        if (v > limit)
            return 0;
    }
    *total += v;
    if (*total > limit)
        return 0;
    return i;
}

int sl_duration_parse(const char *s, size_t n, int64_t *out_ns)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i++;
    }
    if (n - i == 1 && s[i] == '0') {
        *out_ns = 0;
        return 0;
    }
    if (i == n)
        return SL_EINVAL;
    uint64_t total = 0;
    while (i < n) {
        size_t used = duration_term(s + i, n - i, &total);
        if (used == 0)
            return SL_EINVAL;
        i += used;
    }
    if (neg) {
        *out_ns = (int64_t)(0 - total);
        return 0;
    }
    if (total > (uint64_t)INT64_MAX)
        return SL_EINVAL;
    *out_ns = (int64_t)total;
    return 0;
}

/* Writes the fraction of v with prec digits (trailing zeros dropped) ending
 * at *w, as Go's fmtFrac; returns v / 10^prec. */
static uint64_t fmt_frac(char *buf, size_t *w, uint64_t v, int prec)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(v % 10);
        print = print || digit != 0;
        if (print)
            buf[--*w] = (char)('0' + digit);
        v /= 10;
    }
    if (print)
        buf[--*w] = '.';
    return v;
}

static void fmt_int(char *buf, size_t *w, uint64_t v)
{
    do {
        buf[--*w] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
}

void sl_duration_format(struct sl_buf *b, int64_t ns)
{
    char buf[40];
    size_t w = sizeof(buf);
    uint64_t u = ns < 0 ? 0 - (uint64_t)ns : (uint64_t)ns;
    if (u < (uint64_t)SL_NS_PER_SEC) {
        int prec;
        buf[--w] = 's';
        if (u == 0) {
            sl_buf_append(b, "0s", 2);
            return;
        } else if (u < 1000) {
            prec = 0;
            buf[--w] = 'n';
        } else if (u < 1000000) {
            prec = 3;
            buf[--w] = '\xb5';
            buf[--w] = '\xc2';
        } else {
            prec = 6;
            buf[--w] = 'm';
        }
        u = fmt_frac(buf, &w, u, prec);
        fmt_int(buf, &w, u);
    } else {
        buf[--w] = 's';
        u = fmt_frac(buf, &w, u, 9);
        fmt_int(buf, &w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            fmt_int(buf, &w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                fmt_int(buf, &w, u);
            }
        }
    }
    if (ns < 0)
        buf[--w] = '-';
    sl_buf_append(b, buf + w, sizeof(buf) - w);
}

/* ---- sizes ---- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Multiplier for a size unit (already known to be non-empty), or 0. */
static uint64_t size_unit(const char *u, size_t n)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"b", 1},
        {"k", 1000ULL},
        {"kb", 1000ULL},
        {"m", 1000000ULL},
        {"mb", 1000000ULL},
        {"g", 1000000000ULL},
        {"gb", 1000000000ULL},
        {"t", 1000000000000ULL},
        {"tb", 1000000000000ULL},
        {"ki", 1ULL << 10},
        {"kib", 1ULL << 10},
        {"mi", 1ULL << 20},
        {"mib", 1ULL << 20},
        {"gi", 1ULL << 30},
        {"gib", 1ULL << 30},
        {"ti", 1ULL << 40},
        {"tib", 1ULL << 40},
    };
    if (n > 3)
        return 0;
    char l[4];
    for (size_t i = 0; i < n; i++)
        l[i] = lower(u[i]);
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        if (strlen(units[k].name) == n && memcmp(units[k].name, l, n) == 0)
            return units[k].mult;
    }
    return 0;
}

int sl_size_parse(const char *s, size_t n, int64_t *out_bytes)
{
    size_t i = 0, digits = 0, fdigits = 0;
    unsigned __int128 ip = 0, fp = 0, fscale = 1;
    for (; i < n && is_digit(s[i]); i++, digits++) {
        ip = ip * 10 + (unsigned)(s[i] - '0');
        if (ip > (unsigned __int128)INT64_MAX)
            return SL_EINVAL;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++, fdigits++) {
            if (fdigits < 18) {
                fp = fp * 10 + (unsigned)(s[i] - '0');
                fscale *= 10;
            }
        }
        if (fdigits == 0)
            return SL_EINVAL;
    }
    if (digits == 0)
        return SL_EINVAL;
    if (i < n && s[i] == ' ')
        i++;
    uint64_t mult = 1;
    if (i < n) {
        mult = size_unit(s + i, n - i);
        if (mult == 0)
            return SL_EINVAL;
    } else if (i > 0 && s[i - 1] == ' ') {
        return SL_EINVAL;
    }
    unsigned __int128 v = ip * mult + fp * mult / fscale;
    if (v > (unsigned __int128)INT64_MAX)
        return SL_EINVAL;
    *out_bytes = (int64_t)v;
    return 0;
}

void sl_size_format(struct sl_buf *b, int64_t bytes)
{
    static const struct {
        const char *name;
        int shift;
    } units[] = {{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}};
    if (bytes > 0) {
        for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
            int64_t m = (int64_t)1 << units[k].shift;
            if (bytes % m == 0) {
                sl_buf_append_i64(b, bytes / m);
                sl_buf_append_str(b, units[k].name);
                return;
            }
        }
    }
    sl_buf_append_i64(b, bytes);
}

/* ---- RFC 3339 ---- */

/* Reads exactly n digits at s[*i]; returns the value or -1. */
static int read_digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    if (*i + (size_t)n > len)
        return -1;
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (!is_digit(c))
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    return v;
}

static bool expect(const char *s, size_t n, size_t *i, char c)
{
    if (*i < n && s[*i] == c) {
        (*i)++;
        return true;
    }
    return false;
}

/* Offset of the zone designator at s[*i] in seconds east of UTC; false if
 * malformed. */
static bool parse_zone(const char *s, size_t n, size_t *i, int64_t *off_s)
{
    if (*i < n && (s[*i] == 'Z' || s[*i] == 'z')) {
        (*i)++;
        *off_s = 0;
        return true;
    }
    if (*i >= n || (s[*i] != '+' && s[*i] != '-'))
        return false;
    int sign = s[*i] == '-' ? -1 : 1;
    (*i)++;
    int hh = read_digits(s, n, i, 2);
    if (hh < 0 || hh > 23 || !expect(s, n, i, ':'))
        return false;
    int mm = read_digits(s, n, i, 2);
    if (mm < 0 || mm > 59)
        return false;
    *off_s = sign * (hh * 3600 + mm * 60);
    return true;
}

int sl_rfc3339_parse(const char *s, size_t n, int64_t *out_ns)
{
    size_t i = 0;
    int y = read_digits(s, n, &i, 4);
    if (y < 0 || !expect(s, n, &i, '-'))
        return SL_EINVAL;
    int mo = read_digits(s, n, &i, 2);
    if (mo < 1 || mo > 12 || !expect(s, n, &i, '-'))
        return SL_EINVAL;
    int d = read_digits(s, n, &i, 2);
    if (d < 1 || d > (int)days_in_month(y, (unsigned)mo))
        return SL_EINVAL;
    if (!expect(s, n, &i, 'T') && !expect(s, n, &i, 't'))
        return SL_EINVAL;
    int hh = read_digits(s, n, &i, 2);
    if (hh < 0 || hh > 23 || !expect(s, n, &i, ':'))
        return SL_EINVAL;
    int mi = read_digits(s, n, &i, 2);
    if (mi < 0 || mi > 59 || !expect(s, n, &i, ':'))
        return SL_EINVAL;
    int ss = read_digits(s, n, &i, 2);
    if (ss < 0 || ss > 59)
        return SL_EINVAL;
    int64_t frac = 0;
    if (expect(s, n, &i, '.')) {
        size_t nd = 0;
        for (; i < n && is_digit(s[i]); i++, nd++) {
            if (nd < 9)
                frac = frac * 10 + (s[i] - '0');
        }
        if (nd == 0)
            return SL_EINVAL;
        for (; nd < 9; nd++)
            frac *= 10;
    }
    int64_t off_s;
    if (!parse_zone(s, n, &i, &off_s) || i != n)
        return SL_EINVAL;
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + hh * 3600 + mi * 60 + ss - off_s;
    /* 128-bit so the earliest representable time (whose whole seconds alone
     * overflow) still parses. */
    __int128 ns = (__int128)secs * SL_NS_PER_SEC + frac;
    if (ns < INT64_MIN || ns > INT64_MAX)
        return SL_EINVAL;
    *out_ns = (int64_t)ns;
    return 0;
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void sl_rfc3339_format(struct sl_buf *b, int64_t ns)
{
    /* Floor division so times before 1970 keep a positive fraction. */
    int64_t secs = ns / SL_NS_PER_SEC, frac = ns % SL_NS_PER_SEC;
    if (frac < 0) {
        frac += SL_NS_PER_SEC;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    char buf[40];
    unsigned yy = (unsigned)y;
    buf[0] = (char)('0' + yy / 1000 % 10);
    buf[1] = (char)('0' + yy / 100 % 10);
    put2(buf + 2, yy % 100);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '-';
    put2(buf + 8, d);
    buf[10] = 'T';
    put2(buf + 11, (unsigned)(rem / 3600));
    buf[13] = ':';
    put2(buf + 14, (unsigned)(rem / 60 % 60));
    buf[16] = ':';
    put2(buf + 17, (unsigned)(rem % 60));
    size_t o = 19;
    if (frac) {
        char f[9];
        int64_t v = frac;
        for (int k = 8; k >= 0; k--) {
            f[k] = (char)('0' + v % 10);
            v /= 10;
        }
        size_t nd = 9;
        while (f[nd - 1] == '0')
            nd--;
        buf[o++] = '.';
        memcpy(buf + o, f, nd);
        o += nd;
    }
    buf[o++] = 'Z';
    sl_buf_append(b, buf, o);
}

/* ---- Loki time parameters ---- */

static int loki_float_seconds(const char *s, size_t n, int64_t *out_ns)
{
    char tmp[64];
    if (n >= sizeof(tmp) || !(is_digit(s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.'))
        return SL_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    double t = strtod(tmp, &end);
    if (end != tmp + n || !isfinite(t) || fabs(t) >= 9.2e9)
        return SL_EINVAL;
    /* Same steps as Loki: math.Modf, round the fraction to ms, time.Unix. */
    double whole = trunc(t);
    double frac = round((t - whole) * 1000) / 1000;
    *out_ns = (int64_t)whole * SL_NS_PER_SEC + (int64_t)(frac * (double)SL_NS_PER_SEC);
    return 0;
}

int sl_loki_time_parse(const char *s, size_t n, int64_t *out_ns)
{
    if (n == 0)
        return SL_EINVAL;
    if (memchr(s, '.', n) && loki_float_seconds(s, n, out_ns) == 0)
        return 0;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    bool integer = i < n;
    int64_t v = 0;
    for (size_t k = i; k < n && integer; k++) {
        if (!is_digit(s[k]) || __builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, s[k] - '0', &v))
            integer = false;
    }
    if (!integer)
        return sl_rfc3339_parse(s, n, out_ns);
    if (s[0] == '-')
        v = -v;
    if (n <= 10)
        return __builtin_mul_overflow(v, SL_NS_PER_SEC, out_ns) ? SL_EINVAL : 0;
    *out_ns = v;
    return 0;
}
