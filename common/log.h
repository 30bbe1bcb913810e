/* logfmt logging of the programs themselves, to stderr, one line per event:
 *
 *   ts=2026-11-24T10:00:00.123Z level=info msg="starting" listen=127.0.0.1:3100
 *
 * Keys and values after msg come from a printf-style format that the caller
 * writes in logfmt already (use sl_log_quote-friendly %s only for safe values,
 * or SL_LOGQ to quote arbitrary bytes). Each line is written with one write(2),
 * so lines from threads never interleave. Thread-safe. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sl_log_level { SL_LOG_DEBUG = 0, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR };

void sl_log_set_level(enum sl_log_level level);
/* Parses "debug|info|warn|error"; returns 0 or SL_EINVAL. */
int sl_log_level_parse(const char *s, enum sl_log_level *out);
bool sl_log_enabled(enum sl_log_level level);

/* kvfmt may be NULL. Example:
 *   sl_log(SL_LOG_WARN, "dropped line", "file=%s reason=%s", path, "too_long"); */
void sl_log(enum sl_log_level level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sl_debug(msg, ...) sl_log(SL_LOG_DEBUG, msg, __VA_ARGS__)
#define sl_info(msg, ...)  sl_log(SL_LOG_INFO, msg, __VA_ARGS__)
#define sl_warn(msg, ...)  sl_log(SL_LOG_WARN, msg, __VA_ARGS__)
#define sl_error(msg, ...) sl_log(SL_LOG_ERROR, msg, __VA_ARGS__)

/* Rate limiting for repeated events: at most `burst` lines per `period_ms`;
 * lines suppressed in between are counted and reported on the next line
 * that is written (suppressed=N). Embed one per call site; zero-init is valid
 * (defaults: 10 lines per 10 s). Thread-safe. */
struct sl_log_limit {
    uint32_t period_ms;
    uint32_t burst;
    int64_t window_start_ms;
    uint32_t in_window;
    uint64_t suppressed;
};

void sl_log_limited(struct sl_log_limit *lim, enum sl_log_level level, const char *msg,
                    const char *kvfmt, ...) __attribute__((format(printf, 4, 5)));

/* Quotes v for a logfmt value when it needs quoting (spaces, quotes, '=',
 * control bytes); writes into out (size n) and returns out. Truncates long
 * values with "...". */
const char *sl_log_quote(char *out, size_t n, const char *v, size_t vlen);

/* sl_log_quote into a char array declared by the caller:
 *   char q[256];
 *   sl_warn("bad line", "line=%s", SL_LOGQ(q, p, n)); */
#define SL_LOGQ(arr, p, n) sl_log_quote((arr), sizeof(arr), (p), (n))

#endif
