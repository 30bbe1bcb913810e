/* Loki JSON push bodies: decode, then validate each stream as the push path
 * does, so labels and entries coming out of the decoder are exercised too. */
#include <stddef.h>
#include <stdint.h>

#include "aggregator/api/push.h"
#include "aggregator/distributor/distributor.h"
#include "common/arena.h"
#include "common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_batch b;
    struct sl_buf err = SL_BUF_INIT;
    if (sl_push_json_decode(&a, data, size, &b, &err) == 0) {
        struct sl_distributor_limits lim = {
            .labels = {15, 1024, 2048},
            .max_line_size = 256 << 10,
            .reject_old_samples = true,
            .reject_old_samples_max_age_ns = 168LL * 3600 * 1000000000LL,
            .creation_grace_period_ns = 600LL * 1000000000LL,
        };
        struct sl_rejects rej;
        sl_rejects_init(&rej);
        for (size_t i = 0; i < b.nstreams; i++)
            sl_distributor_validate_stream(&lim, &b.streams[i], 1700000000000000000LL, &rej);
        struct sl_buf msg = SL_BUF_INIT;
        sl_rejects_format(&rej, &msg);
        sl_buf_release(&msg);
        sl_rejects_release(&rej);
    }
    sl_buf_release(&err);
    sl_arena_release(&a);
    return 0;
}
