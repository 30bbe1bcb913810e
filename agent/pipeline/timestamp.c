/* The timestamp stage, and the time formats it reads: Promtail's named
 * formats (RFC3339, RFC3339Nano, Unix, UnixMs, UnixUs, UnixNs and Go's
 * ANSIC, UnixDate, RubyDate, RFC822, RFC822Z, RFC850, RFC1123, RFC1123Z,
 * Kitchen, Stamp*) and Go reference layouts ("2006-01-02 15:04:05.000"),
 * parsed with Go's rules: "1"/"2"/"15" take one or two digits, "01"/"02"
 * exactly two, a fraction may follow the seconds even when the layout has
 * none, a layout without a year means the current year. Zone offsets in the
 * text win; otherwise the text is local time in `location` (IANA name, read
 * from the system's zoneinfo, TZif) or UTC. Zone abbreviations other than
 * UTC/GMT carry no offset here: such times are read in `location`. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/pipeline/internal.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/timeutil.h"

/* --- zones (TZif) --- */

struct sl__pl_tz {
    size_t n;
    int64_t *at;     /* transition times, ascending */
    int32_t *off_at; /* offset from each transition on */
    int32_t off0;    /* before the first transition */
};

static int64_t be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    if (bytes == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

static int tz_parse(const unsigned char *d, size_t len, struct sl__pl_tz *tz)
{
    if (len < 44 || memcmp(d, "TZif", 4) != 0)
        return SL_EINVAL;
    int tsize = 4;
    const unsigned char *h = d;
    for (int pass = 0; pass < 2; pass++) {
        size_t cnt[6];
        for (int i = 0; i < 6; i++)
            cnt[i] = (size_t)(uint32_t)be(h + 20 + 4 * i, 4);
        size_t isut = cnt[0], isstd = cnt[1], leap = cnt[2], timecnt = cnt[3], typecnt = cnt[4],
               charcnt = cnt[5];
        size_t body = timecnt * (size_t)tsize + timecnt + typecnt * 6 + charcnt +
                      leap * (size_t)(tsize + 4) + isstd + isut;
        const unsigned char *b = h + 44;
        if (typecnt == 0 || (size_t)(b - d) + body > len)
            return SL_EINVAL;
        if (pass == 0 && h[4] >= '2') {
            h = b + body; /* the 64-bit block follows */
            tsize = 8;
            if ((size_t)(h - d) + 44 > len || memcmp(h, "TZif", 4) != 0)
                return SL_EINVAL;
            continue;
        }
        const unsigned char *times = b, *idx = b + timecnt * (size_t)tsize, *types = idx + timecnt;
        tz->n = timecnt;
        tz->at = sl_calloc(timecnt + 1, sizeof(int64_t));
        tz->off_at = sl_calloc(timecnt + 1, sizeof(int32_t));
        for (size_t i = 0; i < timecnt; i++) {
            if (idx[i] >= typecnt)
                return SL_EINVAL;
            tz->at[i] = be(times + i * (size_t)tsize, tsize);
            tz->off_at[i] = (int32_t)be(types + 6 * idx[i], 4);
        }
        tz->off0 = (int32_t)be(types, 4);
        for (size_t t = 0; t < typecnt; t++) {
            if (!types[6 * t + 4]) { /* first standard-time type */
                tz->off0 = (int32_t)be(types + 6 * t, 4);
                break;
            }
        }
        return 0;
    }
    return SL_EINVAL;
}

int sl__pl_tz_load(const char *name, struct sl__pl_tz **out)
{
    *out = NULL;
    if (!*name || strstr(name, "..") || name[0] == '/')
        return SL_EINVAL;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
            return SL_EINVAL;
    char path[512];
    if (!strcmp(name, "Local"))
        snprintf(path, sizeof(path), "/etc/localtime");
    else
        snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return SL_ENOENT;
    unsigned char *buf = sl_malloc(1 << 20);
    size_t len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    struct sl__pl_tz *tz = SL_NEW(struct sl__pl_tz);
    int rc = tz_parse(buf, len, tz);
    sl_free(buf);
    if (rc) {
        sl__pl_tz_free(tz);
        return rc;
    }
    *out = tz;
    return 0;
}

void sl__pl_tz_free(struct sl__pl_tz *tz)
{
    if (!tz)
        return;
    sl_free(tz->at);
    sl_free(tz->off_at);
    sl_free(tz);
}

/* Offset (seconds east of UTC) in force at the UTC instant t. */
static int32_t tz_offset(const struct sl__pl_tz *tz, int64_t t)
{
    if (!tz->n || t < tz->at[0])
        return tz->off0;
    size_t lo = 0, hi = tz->n; /* at[lo] <= t */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off_at[lo];
}

/* The UTC second of local wall-clock second `local` in tz (Go's rule). */
static int64_t tz_to_utc(const struct sl__pl_tz *tz, int64_t local)
{
    int32_t o = tz_offset(tz, local);
    int64_t utc = local - o;
    int32_t o2 = tz_offset(tz, utc);
    return o2 == o ? utc : local - o2;
}

/* --- civil time --- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* --- Go layouts --- */

static const char *const months[] = {"January",   "February", "March",    "April",
                                     "May",       "June",     "July",     "August",
                                     "September", "October",  "November", "December"};
static const char *const days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                   "Thursday", "Friday", "Saturday"};

struct tparse {
    int64_t year;
    int month, day, hour, min, sec, yday;
    bool have_year, pm_set, pm, have_zone;
    int64_t nsec;
    int32_t zone; /* seconds east */
    struct sl_bytes v;
};

static bool starts(const char *l, const char *p)
{
    return strncmp(l, p, strlen(p)) == 0;
}

/* Up to maxd digits (at least mind) from the value. */
static bool num(struct tparse *t, int mind, int maxd, int *out)
{
    int v = 0, k = 0;
    while (k < maxd && k < (int)t->v.len && isdigit((unsigned char)t->v.ptr[k]))
        v = v * 10 + (t->v.ptr[k++] - '0');
    if (k < mind)
        return false;
    t->v.ptr += k;
    t->v.len -= (size_t)k;
    *out = v;
    return true;
}

static bool lit(struct tparse *t, const char *s, size_t n, bool fold)
{
    if (t->v.len < n || (fold ? strncasecmp(t->v.ptr, s, n) : strncmp(t->v.ptr, s, n)) != 0)
        return false;
    t->v.ptr += n;
    t->v.len -= n;
    return true;
}

static bool name_of(struct tparse *t, const char *const *names, int count, bool abbrev, int *out)
{
    for (int i = 0; i < count; i++) {
        size_t n = abbrev ? 3 : strlen(names[i]);
        if (lit(t, names[i], n, true)) {
            *out = i;
            return true;
        }
    }
    return false;
}

/* Fraction digits after a '.' or ',' already consumed. */
static bool frac(struct tparse *t, int exact)
{
    int64_t ns = 0;
    int k = 0;
    while (k < (int)t->v.len && isdigit((unsigned char)t->v.ptr[k])) {
        if (k < 9)
            ns = ns * 10 + (t->v.ptr[k] - '0');
        k++;
    }
    if ((exact && k != exact) || k == 0)
        return false;
    for (int i = k; i < 9; i++)
        ns *= 10;
    t->nsec = ns;
    t->v.ptr += k;
    t->v.len -= (size_t)k;
    return true;
}

static bool zone_num(struct tparse *t, bool colon, bool mins, bool secs)
{
    if (!t->v.len || (t->v.ptr[0] != '+' && t->v.ptr[0] != '-'))
        return false;
    int sign = t->v.ptr[0] == '-' ? -1 : 1, h, m = 0, s = 0;
    t->v.ptr++, t->v.len--;
    if (!num(t, 2, 2, &h))
        return false;
    if (mins && ((colon && !lit(t, ":", 1, false)) || !num(t, 2, 2, &m)))
        return false;
    if (secs && ((colon && !lit(t, ":", 1, false)) || !num(t, 2, 2, &s)))
        return false;
    t->zone = sign * (h * 3600 + m * 60 + s);
    t->have_zone = true;
    return true;
}

static bool zone_abbrev(struct tparse *t)
{
    if (lit(t, "UTC", 3, false) || lit(t, "GMT", 3, false)) {
        t->zone = 0;
        t->have_zone = true;
        return true;
    }
    size_t k = 0;
    while (k < t->v.len && k < 5 && isupper((unsigned char)t->v.ptr[k]))
        k++;
    if (k < 3)
        return false;
    t->v.ptr += k; /* no offset known: the time is read in the location */
    t->v.len -= k;
    return true;
}

/* A fraction in the value right after the seconds, when the layout has none. */
static void extra_frac(struct tparse *t, const char *l)
{
    if (t->v.len >= 2 && (t->v.ptr[0] == '.' || t->v.ptr[0] == ',') &&
        isdigit((unsigned char)t->v.ptr[1]) &&
        !((l[0] == '.' || l[0] == ',') && (l[1] == '0' || l[1] == '9'))) {
        t->v.ptr++, t->v.len--;
        frac(t, 0);
    }
}

/* Matches one layout element at *lp; false on a value mismatch. */
static bool element(struct tparse *t, const char **lp)
{
    const char *l = *lp;
    int x;
#define TAKE(s) (starts(l, s) ? (l += strlen(s), true) : false)
    if (TAKE("January")) {
        if (!name_of(t, months, 12, false, &x))
            return false;
        t->month = x + 1;
    } else if (TAKE("Jan")) {
        if (!name_of(t, months, 12, true, &x))
            return false;
        t->month = x + 1;
    } else if (TAKE("Monday")) {
        if (!name_of(t, days, 7, false, &x))
            return false;
    } else if (TAKE("Mon")) {
        if (!name_of(t, days, 7, true, &x))
            return false;
    } else if (TAKE("MST")) {
        if (!zone_abbrev(t))
            return false;
    } else if (TAKE("2006")) {
        if (!num(t, 4, 4, &x))
            return false;
        t->year = x, t->have_year = true;
    } else if (TAKE("002")) {
        if (!num(t, 3, 3, &t->yday))
            return false;
    } else if (TAKE("01")) {
        if (!num(t, 2, 2, &t->month))
            return false;
    } else if (TAKE("02")) {
        if (!num(t, 2, 2, &t->day))
            return false;
    } else if (TAKE("03")) {
        if (!num(t, 2, 2, &t->hour))
            return false;
    } else if (TAKE("04")) {
        if (!num(t, 2, 2, &t->min))
            return false;
    } else if (TAKE("05")) {
        if (!num(t, 2, 2, &t->sec))
            return false;
        extra_frac(t, l);
    } else if (TAKE("06")) {
        if (!num(t, 2, 2, &x))
            return false;
        t->year = x + (x >= 69 ? 1900 : 2000), t->have_year = true;
    } else if (TAKE("15")) {
        if (!num(t, 1, 2, &t->hour))
            return false;
    } else if (TAKE("1")) {
        if (!num(t, 1, 2, &t->month))
            return false;
    } else if (starts(l, "_2006")) {
        if (!lit(t, "_", 1, false))
            return false;
        l++;
    } else if (TAKE("__2")) {
        while (t->v.len && t->v.ptr[0] == ' ')
            t->v.ptr++, t->v.len--;
        if (!num(t, 1, 3, &t->yday))
            return false;
    } else if (TAKE("_2")) {
        if (t->v.len && t->v.ptr[0] == ' ')
            t->v.ptr++, t->v.len--;
        if (!num(t, 1, 2, &t->day))
            return false;
    } else if (TAKE("2")) {
        if (!num(t, 1, 2, &t->day))
            return false;
    } else if (TAKE("3")) {
        if (!num(t, 1, 2, &t->hour))
            return false;
    } else if (TAKE("4")) {
        if (!num(t, 1, 2, &t->min))
            return false;
    } else if (TAKE("5")) {
        if (!num(t, 1, 2, &t->sec))
            return false;
        extra_frac(t, l);
    } else if (TAKE("PM") || TAKE("pm")) {
        bool upper = l[-1] == 'M';
        if (lit(t, upper ? "PM" : "pm", 2, false))
            t->pm = true;
        else if (!lit(t, upper ? "AM" : "am", 2, false))
            return false;
        t->pm_set = true;
    } else if (TAKE("Z07:00:00") || TAKE("Z070000") || TAKE("Z07:00") || TAKE("Z0700") ||
               TAKE("Z07")) {
        size_t len = (size_t)(l - *lp);
        if (lit(t, "Z", 1, false)) {
            t->zone = 0, t->have_zone = true;
        } else if (!zone_num(t, memchr(*lp, ':', len) != NULL, len >= 5, len >= 7)) {
            return false;
        }
    } else if (TAKE("-07:00:00") || TAKE("-070000") || TAKE("-07:00") || TAKE("-0700") ||
               TAKE("-07")) {
        size_t len = (size_t)(l - *lp);
        if (!zone_num(t, memchr(*lp, ':', len) != NULL, len >= 5, len >= 7))
            return false;
    } else if ((l[0] == '.' || l[0] == ',') && (l[1] == '0' || l[1] == '9')) {
        char d = l[1];
        int k = 1;
        while (l[k] == d)
            k++;
        if (isdigit((unsigned char)l[k])) { /* not a fraction: a literal */
            if (!lit(t, l, 1, false))
                return false;
            l++;
        } else {
            l += k;
            bool has = t->v.len && (t->v.ptr[0] == '.' || t->v.ptr[0] == ',');
            if (d == '0' && (!has || (t->v.ptr++, t->v.len--, !frac(t, k - 1))))
                return false;
            if (d == '9' && has && t->v.len > 1 && isdigit((unsigned char)t->v.ptr[1])) {
                t->v.ptr++, t->v.len--;
                frac(t, 0);
            }
        }
    } else {
        if (!lit(t, l, 1, false))
            return false;
        l++;
    }
#undef TAKE
    *lp = l;
    return true;
}

static int layout_parse(const char *layout, struct sl_bytes value, const struct sl__pl_tz *loc,
                        int64_t now_ns, int64_t *out)
{
    struct tparse t = {.month = 1, .day = 1, .v = value};
    for (const char *l = layout; *l;)
        if (!element(&t, &l))
            return SL_EINVAL;
    if (t.v.len)
        return SL_EINVAL; /* extra text */
    if (!t.have_year) {
        int64_t days = now_ns / SL_NS_PER_SEC / 86400;
        t.year = 1970 + days / 366; /* then correct upwards */
        while (days_from_civil(t.year + 1, 1, 1) <= days)
            t.year++;
    }
    if (t.pm_set) {
        if (t.hour > 12)
            return SL_EINVAL;
        if (t.pm && t.hour < 12)
            t.hour += 12;
        else if (!t.pm && t.hour == 12)
            t.hour = 0;
    }
    if (t.yday && t.month == 1 && t.day == 1) {
        int y = t.yday;
        for (t.month = 1; t.month <= 12 && y > days_in_month(t.year, t.month); t.month++)
            y -= days_in_month(t.year, t.month);
        if (t.month > 12)
            return SL_EINVAL;
        t.day = y;
    }
    if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > days_in_month(t.year, t.month) ||
        t.hour > 23 || t.min > 59 || t.sec > 59)
        return SL_EINVAL;
    int64_t local =
        days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 + t.min * 60 + t.sec;
    int64_t utc = t.have_zone ? local - t.zone : loc ? tz_to_utc(loc, local) : local;
    if (utc > INT64_MAX / SL_NS_PER_SEC - 1 || utc < INT64_MIN / SL_NS_PER_SEC + 1)
        return SL_EINVAL;
    *out = utc * SL_NS_PER_SEC + t.nsec;
    return 0;
}

/* Integer (Unix*) timestamps, scaled to ns. */
static int unix_parse(struct sl_bytes v, int64_t scale, bool allow_frac, int64_t *out)
{
    char buf[40];
    if (!v.len || v.len >= sizeof(buf))
        return SL_EINVAL;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = 0;
    char *end;
    long long whole = strtoll(buf, &end, 10);
    if (end == buf || (buf[0] != '-' && !isdigit((unsigned char)buf[0])))
        return SL_EINVAL;
    int64_t ns = 0;
    if (*end == '.' && allow_frac) {
        struct tparse t = {.v = sl_bytes(end + 1, strlen(end + 1))};
        if (!frac(&t, 0) || t.v.len)
            return SL_EINVAL;
        ns = t.nsec;
        end += strlen(end);
    }
    if (*end)
        return SL_EINVAL;
    if (whole > INT64_MAX / scale || whole < INT64_MIN / scale)
        return SL_EINVAL;
    *out = (int64_t)whole * scale + (whole < 0 ? -ns : ns);
    return 0;
}

static const struct {
    const char *name, *layout;
} named[] = {
    {"ANSIC", "Mon Jan _2 15:04:05 2006"},
    {"UnixDate", "Mon Jan _2 15:04:05 MST 2006"},
    {"RubyDate", "Mon Jan 02 15:04:05 -0700 2006"},
    {"RFC822", "02 Jan 06 15:04 MST"},
    {"RFC822Z", "02 Jan 06 15:04 -0700"},
    {"RFC850", "Monday, 02-Jan-06 15:04:05 MST"},
    {"RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"},
    {"RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"},
    {"Kitchen", "3:04PM"},
    {"Stamp", "Jan _2 15:04:05"},
    {"StampMilli", "Jan _2 15:04:05.000"},
    {"StampMicro", "Jan _2 15:04:05.000000"},
    {"StampNano", "Jan _2 15:04:05.000000000"},
};

int sl__pl_time_parse(const char *format, struct sl_bytes value, const struct sl__pl_tz *loc,
                      int64_t now_ns, int64_t *out)
{
    if (!strcmp(format, "RFC3339") || !strcmp(format, "RFC3339Nano"))
        return sl_rfc3339_parse(value.ptr, value.len, out);
    if (!strcmp(format, "Unix"))
        return unix_parse(value, SL_NS_PER_SEC, true, out);
    if (!strcmp(format, "UnixMs"))
        return unix_parse(value, SL_NS_PER_MS, false, out);
    if (!strcmp(format, "UnixUs"))
        return unix_parse(value, 1000, false, out);
    if (!strcmp(format, "UnixNs"))
        return unix_parse(value, 1, false, out);
    for (size_t i = 0; i < SL_ARRAY_LEN(named); i++)
        if (!strcmp(format, named[i].name))
            return layout_parse(named[i].layout, value, loc, now_ns, out);
    return layout_parse(format, value, loc, now_ns, out);
}

/* --- the stage --- */

struct ts_stage {
    struct sl_bytes source;
    char **formats;
    size_t nformats;
    struct sl__pl_tz *loc;
    bool fudge;
};

static void ts_free(void *impl)
{
    struct ts_stage *t = impl;
    for (size_t i = 0; i < t->nformats; i++)
        sl_free(t->formats[i]);
    sl_free(t->formats);
    sl__pl_tz_free(t->loc);
    sl_free((char *)t->source.ptr);
    sl_free(t);
}

static void ts_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct ts_stage *t = st->impl;
    int64_t *last = sl__pl_last_ts(r->s);
    struct sl_bytes v;
    if (sl__pl_get(r, t->source, &v)) {
        int64_t now = sl__pl_wall(r->p), ts;
        for (size_t i = 0; i < t->nformats; i++) {
            if (sl__pl_time_parse(t->formats[i], v, t->loc, now, &ts) == 0) {
                r->e->ts_ns = ts;
                *last = ts;
                return;
            }
        }
    }
    if (t->fudge && *last) {
        *last += 1; /* Promtail: the last good timestamp plus 1 ns keeps the order */
        r->e->ts_ns = *last;
    }
}

static void add_format(struct ts_stage *t, const char *f)
{
    t->formats = sl_reallocarray(t->formats, t->nformats + 1, sizeof(char *));
    t->formats[t->nformats++] = sl_strdup(f);
}

int sl__pl_build_timestamp(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                           struct sl__pl_stage *st)
{
    static const char *const keys[] = {
        "source", "format", "fallback_formats", "location", "action_on_failure", NULL};
    int rc = sl__pl_check_keys(b, opts, keys);
    if (rc)
        return rc;
    struct ts_stage *t = SL_NEW(struct ts_stage);
    st->impl = t;
    st->free = ts_free;
    st->run = ts_run;
    const char *src = sl__pl_opt_str(opts, "source");
    if (!src || !*src)
        return sl__pl_fail(b, opts, "source", "required (the extracted value holding the time)");
    t->source = sl_bytes(sl_strdup(src), strlen(src));
    const char *fmt = sl__pl_opt_str(opts, "format");
    if (!fmt || !*fmt)
        return sl__pl_fail(b, opts, "format",
                           "required (RFC3339, Unix, UnixMs, ... or a Go layout such as "
                           "\"2006-01-02 15:04:05\")");
    add_format(t, fmt);
    const struct sl_cfgnode *fb = sl_cfgnode_get(opts, "fallback_formats");
    if (fb && fb->kind == SL_CFG_SEQ) {
        for (size_t i = 0; i < fb->n; i++) {
            if (fb->items[i]->kind != SL_CFG_SCALAR || !*fb->items[i]->value)
                return sl__pl_fail(b, fb->items[i], "fallback_formats",
                                   "item %zu: expected a "
                                   "format",
                                   i);
            add_format(t, fb->items[i]->value);
        }
    } else if (fb && !(fb->kind == SL_CFG_SCALAR && !*fb->value)) {
        return sl__pl_fail(b, fb, "fallback_formats", "expected a list of formats");
    }
    const char *loc = sl__pl_opt_str(opts, "location");
    if (loc && *loc && (rc = sl__pl_tz_load(loc, &t->loc)) != 0)
        return sl__pl_fail(b, sl_cfgnode_get(opts, "location"), "location",
                           "unknown time zone \"%s\" (an IANA name such as Europe/Berlin, "
                           "from /usr/share/zoneinfo)",
                           loc);
    const char *act = sl__pl_opt_str(opts, "action_on_failure");
    t->fudge = true;
    if (act && *act) {
        if (!strcmp(act, "skip"))
            t->fudge = false;
        else if (strcmp(act, "fudge") != 0)
            return sl__pl_fail(b, sl_cfgnode_get(opts, "action_on_failure"), "action_on_failure",
                               "expected fudge or skip, got \"%s\"", act);
    }
    return 0;
}
