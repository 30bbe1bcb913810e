/* Token buckets in an open-addressing table keyed by tenant (XXH3, linear
 * probing). Tokens are doubles: the rate may be a fraction of a byte per
 * nanosecond, and 2^53 bytes is far beyond any burst. */
#include "aggregator/distributor/ratelimit.h"

#include <string.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/mem.h"

struct bucket {
    char *tenant; /* NULL: empty slot */
    size_t tlen;
    uint64_t hash;
    double tokens;
    int64_t last_ns;
};

struct sl_ratelimit {
    double rate_per_ns;
    double burst;
    struct bucket *slots;
    size_t cap; /* power of two */
    size_t used;
};

struct sl_ratelimit *sl_ratelimit_new(double rate_bytes_per_s, double burst_bytes)
{
    struct sl_ratelimit *rl = SL_NEW(struct sl_ratelimit);
    rl->rate_per_ns = rate_bytes_per_s > 0 ? rate_bytes_per_s / 1e9 : 0;
    rl->burst = burst_bytes > rate_bytes_per_s ? burst_bytes : rate_bytes_per_s;
    rl->cap = 16;
    rl->slots = sl_calloc(rl->cap, sizeof(*rl->slots));
    return rl;
}

void sl_ratelimit_free(struct sl_ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < rl->cap; i++)
        sl_free(rl->slots[i].tenant);
    sl_free(rl->slots);
    sl_free(rl);
}

size_t sl_ratelimit_tenants(const struct sl_ratelimit *rl)
{
    return rl->used;
}

static void refill(const struct sl_ratelimit *rl, struct bucket *b, int64_t now_ns)
{
    if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) * rl->rate_per_ns;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last_ns = now_ns;
    }
}

static void insert_slot(struct bucket *slots, size_t cap, struct bucket *b)
{
    size_t i = b->hash & (cap - 1);
    while (slots[i].tenant)
        i = (i + 1) & (cap - 1);
    slots[i] = *b;
}

/* Rebuilds the table without the buckets that are full by now (they equal a
 * new bucket), doubling it if it would still be more than half used. */
static void rebuild(struct sl_ratelimit *rl, int64_t now_ns)
{
    size_t live = 0;
    for (size_t i = 0; i < rl->cap; i++) {
        struct bucket *b = &rl->slots[i];
        if (!b->tenant)
            continue;
        refill(rl, b, now_ns);
        if (b->tokens >= rl->burst) {
            sl_free(b->tenant);
            b->tenant = NULL;
        } else {
            live++;
        }
    }
    size_t cap = rl->cap;
    while (live * 2 >= cap)
        cap *= 2;
    struct bucket *slots = sl_calloc(cap, sizeof(*slots));
    for (size_t i = 0; i < rl->cap; i++)
        if (rl->slots[i].tenant)
            insert_slot(slots, cap, &rl->slots[i]);
    sl_free(rl->slots);
    rl->slots = slots;
    rl->cap = cap;
    rl->used = live;
}

static struct bucket *lookup(struct sl_ratelimit *rl, struct sl_bytes tenant, int64_t now_ns)
{
    uint64_t h = sl_xxh3(tenant.ptr, tenant.len);
    size_t i = h & (rl->cap - 1);
    for (; rl->slots[i].tenant; i = (i + 1) & (rl->cap - 1)) {
        struct bucket *b = &rl->slots[i];
        if (b->hash == h && b->tlen == tenant.len && memcmp(b->tenant, tenant.ptr, b->tlen) == 0)
            return b;
    }
    if ((rl->used + 1) * 4 > rl->cap * 3) {
        rebuild(rl, now_ns);
        return lookup(rl, tenant, now_ns); /* now below 3/4 full: inserts */
    }
    struct bucket *b = &rl->slots[i];
    b->tenant = sl_memdup(tenant.ptr, tenant.len);
    b->tlen = tenant.len;
    b->hash = h;
    b->tokens = rl->burst;
    b->last_ns = now_ns;
    rl->used++;
    return b;
}

int sl_ratelimit_take(struct sl_ratelimit *rl, struct sl_bytes tenant, size_t n, int64_t now_ns,
                      int64_t *retry_after_ns)
{
    *retry_after_ns = 0;
    if (rl->rate_per_ns <= 0 || n == 0)
        return 0;
    struct bucket *b = lookup(rl, tenant, now_ns);
    refill(rl, b, now_ns);
    double need = (double)n;
    if (need <= b->tokens || b->tokens >= rl->burst) {
        b->tokens -= need; /* may go into debt: see the header */
        return 0;
    }
    /* Wait until the bucket holds the push, or is full for one above burst. */
    double target = need < rl->burst ? need : rl->burst;
    double wait = (target - b->tokens) / rl->rate_per_ns;
    *retry_after_ns = wait >= 9e18 ? INT64_MAX : (int64_t)wait + 1;
    return SL_EAGAIN;
}
