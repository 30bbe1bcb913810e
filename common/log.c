/* logfmt logging to stderr. A line is built in a stack buffer (no allocation,
 * so the out-of-memory path in mem.c can log) and written with one write(2). */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

/* Longer lines are cut and end in "..."; program logs are short by design. */
#define LOG_LINE_MAX            8192
#define LIMIT_DEFAULT_PERIOD_MS 10000
#define LIMIT_DEFAULT_BURST     10

static int g_level = SL_LOG_INFO;
static pthread_mutex_t g_limit_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sl_log_set_level(enum sl_log_level level)
{
    __atomic_store_n(&g_level, (int)level, __ATOMIC_RELAXED);
}

int sl_log_level_parse(const char *s, enum sl_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum sl_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = SL_LOG_WARN;
        return 0;
    }
    return SL_EINVAL;
}

bool sl_log_enabled(enum sl_log_level level)
{
    return (int)level >= __atomic_load_n(&g_level, __ATOMIC_RELAXED);
}

static bool needs_quote(const char *v, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

/* Writes v quoted and escaped (the escapes go-logfmt decodes) into dst[0..cap)
 * and returns the length. If it does not fit, ends the value with ..." instead.
 * cap must be at least 6. No NUL is written. */
static size_t quote_into(char *dst, size_t cap, const char *v, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    dst[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char esc[6];
        size_t el = 0;
        if (c == '"' || c == '\\') {
            esc[el++] = '\\';
            esc[el++] = (char)c;
        } else if (c == '\n') {
            esc[el++] = '\\';
            esc[el++] = 'n';
        } else if (c == '\t') {
            esc[el++] = '\\';
            esc[el++] = 't';
        } else if (c == '\r') {
            esc[el++] = '\\';
            esc[el++] = 'r';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        } else {
            esc[el++] = (char)c;
        }
        /* Keep room for `..."` after this piece. */
        if (o + el + 4 > cap) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(dst + o, esc, el);
        o += el;
    }
    dst[o++] = '"';
    return o;
}

const char *sl_log_quote(char *out, size_t n, const char *v, size_t vlen)
{
    if (n == 0)
        return out;
    if (!needs_quote(v, vlen)) {
        if (vlen < n) {
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        if (n >= 4) {
            memcpy(out, v, n - 4);
            memcpy(out + n - 4, "...", 4);
            return out;
        }
    }
    if (n < 7) {
        memcpy(out, "\"\"", n >= 3 ? 3 : 1);
        out[n >= 3 ? 2 : 0] = '\0';
        return out;
    }
    size_t o = quote_into(out, n - 1, v, vlen);
    out[o] = '\0';
    return out;
}

/* "2026-11-24T10:00:00.123Z" */
static size_t format_ts(char *dst, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(dst, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
    return n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void vlog_line(enum sl_log_level level, uint64_t suppressed, const char *msg,
                      const char *kvfmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    /* Reserve 1 for '\n' at the end. */
    const size_t cap = sizeof(line) - 1;
    size_t o = 0;
    int lv = (int)level;
    if (lv < SL_LOG_DEBUG || lv > SL_LOG_ERROR)
        lv = SL_LOG_ERROR;

    memcpy(line, "ts=", 3);
    o = 3;
    o += format_ts(line + o, 64);
    o += (size_t)snprintf(line + o, cap - o, " level=%s msg=", level_names[lv]);
    o += quote_into(line + o, cap / 2, msg ? msg : "", msg ? strlen(msg) : 0);
    if (kvfmt && *kvfmt) {
        line[o++] = ' ';
        int n = vsnprintf(line + o, cap - o, kvfmt, ap);
        if (n > 0) {
            if ((size_t)n >= cap - o) {
                o = cap - 3;
                memcpy(line + o, "...", 3);
                o += 3;
            } else {
                o += (size_t)n;
            }
        } else {
            o--;
        }
    }
    if (suppressed > 0 && o + 32 < cap)
        o +=
            (size_t)snprintf(line + o, cap - o, " suppressed=%llu", (unsigned long long)suppressed);
    line[o++] = '\n';
    write_all(line, o);
}

void sl_log(enum sl_log_level level, const char *msg, const char *kvfmt, ...)
{
    if (!sl_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, kvfmt);
    vlog_line(level, 0, msg, kvfmt, ap);
    va_end(ap);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns true if a line may be written now; *suppressed gets the count of
 * lines dropped since the last written one. */
static bool limit_take(struct sl_log_limit *lim, int64_t now_ms, uint64_t *suppressed)
{
    bool ok;
    pthread_mutex_lock(&g_limit_mu);
    uint32_t period = lim->period_ms ? lim->period_ms : LIMIT_DEFAULT_PERIOD_MS;
    uint32_t burst = lim->burst ? lim->burst : LIMIT_DEFAULT_BURST;
    if (lim->window_start_ms == 0 || now_ms - lim->window_start_ms >= (int64_t)period) {
        lim->window_start_ms = now_ms;
        lim->in_window = 0;
    }
    ok = lim->in_window < burst;
    if (ok) {
        lim->in_window++;
        *suppressed = lim->suppressed;
        lim->suppressed = 0;
    } else {
        lim->suppressed++;
    }
    pthread_mutex_unlock(&g_limit_mu);
    return ok;
}

void sl_log_limited(struct sl_log_limit *lim, enum sl_log_level level, const char *msg,
                    const char *kvfmt, ...)
{
    if (!sl_log_enabled(level))
        return;
    uint64_t suppressed = 0;
    if (!limit_take(lim, mono_ms(), &suppressed))
        return;
    va_list ap;
    va_start(ap, kvfmt);
    vlog_line(level, suppressed, msg, kvfmt, ap);
    va_end(ap);
}
