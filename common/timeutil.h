/* Clocks, and the time, duration and size formats of the config and the APIs.
 * All functions are pure except the clocks. Thread-safe. */
#ifndef SL_TIMEUTIL_H
#define SL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SL_NS_PER_SEC 1000000000LL
#define SL_NS_PER_MS  1000000LL

/* Wall clock, nanoseconds since the Unix epoch. */
int64_t sl_now_ns(void);
/* Monotonic clock, nanoseconds. */
int64_t sl_mono_ns(void);

/* Go-style duration: "500ms", "1h30m", "10s", "1.5s", "0", "2d" and "1w" too
 * (as Prometheus/Loki accept). Units ns, us, µs, ms, s, m, h, d, w. A leading
 * '-' is accepted. Returns 0 or SL_EINVAL. */
int sl_duration_parse(const char *s, size_t n, int64_t *out_ns);
/* Formats like Go: "1h30m0s", "500ms", "0s". */
void sl_duration_format(struct sl_buf *b, int64_t ns);

/* Sizes: plain bytes "1048576", or with KB MB GB (1000^n) or KiB MiB GiB (1024^n),
 * also K/M/G and Ki/Mi/Gi, case-insensitive unit, optional space. */
int sl_size_parse(const char *s, size_t n, int64_t *out_bytes);
/* Formats using the largest exact binary unit: "256KiB", "64MiB", "1000". */
void sl_size_format(struct sl_buf *b, int64_t bytes);

/* RFC3339 with optional fraction up to nanoseconds and 'Z' or +hh:mm offset,
 * as in CRI log lines and Loki parameters. Returns 0 or SL_EINVAL. */
int sl_rfc3339_parse(const char *s, size_t n, int64_t *out_ns);
/* "2006-01-02T15:04:05.999999999Z" in UTC, trailing zeros of the fraction
 * removed (Go's RFC3339Nano). */
void sl_rfc3339_format(struct sl_buf *b, int64_t ns);

/* A Loki API time parameter, with Loki's rules: a value containing '.' is
 * float seconds (fraction rounded to milliseconds); an integer of at most 10
 * digits is seconds, a longer one nanoseconds; anything else must be RFC3339.
 * Returns 0 or SL_EINVAL. */
int sl_loki_time_parse(const char *s, size_t n, int64_t *out_ns);

#endif
