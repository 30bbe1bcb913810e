/* Per-tenant ingestion rate limit (limits.ingestion_rate_mb,
 * limits.ingestion_burst_size_mb): one token bucket per tenant, counted in
 * bytes of raw lines, as Loki's distributor counts them. A bucket holds at
 * most `burst` bytes and refills at `rate` bytes per second; a push takes its
 * accepted line bytes at once or not at all.
 *
 * One difference from Loki, on purpose: a push larger than the whole burst is
 * let through when the bucket is full, and the bucket goes into debt (negative)
 * until the rate has paid it back. Loki refuses such a push forever, so a
 * client whose batch exceeds the burst retries without end; here it is slowed
 * to the rate instead. The average rate is the same.
 *
 * Buckets of idle tenants are forgotten once they are full again (a new bucket
 * would be identical), so memory follows the tenants active within about
 * burst/rate seconds. Not thread-safe: the loop thread owns it. */
#ifndef SL_RATELIMIT_H
#define SL_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

struct sl_ratelimit;

/* rate <= 0 disables the limit (every take succeeds). burst < rate is raised
 * to rate: a bucket smaller than one second of rate would refuse pushes the
 * rate allows. */
struct sl_ratelimit *sl_ratelimit_new(double rate_bytes_per_s, double burst_bytes);
void sl_ratelimit_free(struct sl_ratelimit *rl);

/* Takes n bytes from tenant's bucket at monotonic time now_ns. Returns 0, or
 * SL_EAGAIN (nothing taken) with *retry_after_ns set to the time until the
 * same push would pass, if no other push comes first. */
int sl_ratelimit_take(struct sl_ratelimit *rl, struct sl_bytes tenant, size_t n, int64_t now_ns,
                      int64_t *retry_after_ns);

/* Buckets currently kept (tests, metrics). */
size_t sl_ratelimit_tenants(const struct sl_ratelimit *rl);

#endif
