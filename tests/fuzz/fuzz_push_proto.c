/* Loki protobuf push bodies. The first input byte picks the form: odd, the
 * rest is a snappy block (as on the wire); even, a bare PushRequest (so the
 * fuzzer reaches the protobuf decoder without learning snappy). A decoded
 * body goes the push path's way (labels parsed, streams validated), and is
 * re-encoded: decoding that must give the same streams and entries. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/distributor/distributor.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/labels.h"
#include "common/lokipb.h"
#include "common/snappy.h"

static void check_round_trip(const struct sl_lokipb_push *p)
{
    struct sl_buf again = SL_BUF_INIT;
    for (size_t i = 0; i < p->nstreams; i++)
        sl_lokipb_encode_stream(&again, p->streams[i].labels, p->streams[i].entries,
                                p->streams[i].nentries);
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_lokipb_push q;
    if (sl_lokipb_decode(&a, again.data ? again.data : "", again.len, &q, NULL) != 0)
        abort();
    if (q.nstreams != p->nstreams || q.nentries != p->nentries || q.line_bytes != p->line_bytes)
        abort();
    for (size_t i = 0; i < p->nstreams; i++) {
        const struct sl_lokipb_stream *x = &p->streams[i], *y = &q.streams[i];
        if (!sl_bytes_eq(x->labels, y->labels) || x->nentries != y->nentries)
            abort();
        for (size_t k = 0; k < x->nentries; k++) {
            const struct sl_batch_entry *e = &x->entries[k], *f = &y->entries[k];
            if (e->ts_ns != f->ts_ns || !sl_bytes_eq(e->line, f->line) || e->nmeta != f->nmeta)
                abort();
            for (size_t m = 0; m < e->nmeta; m++)
                if (!sl_bytes_eq(e->meta[m].name, f->meta[m].name) ||
                    !sl_bytes_eq(e->meta[m].value, f->meta[m].value))
                    abort();
        }
    }
    sl_arena_release(&a);
    sl_buf_release(&again);
}

static void validate(struct sl_arena *a, const struct sl_lokipb_push *p)
{
    struct sl_distributor_limits lim = {
        .labels = {15, 1024, 2048},
        .max_line_size = 256 << 10,
        .reject_old_samples = true,
        .reject_old_samples_max_age_ns = 168LL * 3600 * 1000000000LL,
        .creation_grace_period_ns = 600LL * 1000000000LL,
    };
    struct sl_rejects rej;
    sl_rejects_init(&rej);
    for (size_t i = 0; i < p->nstreams; i++) {
        struct sl_batch_stream s = {.entries = p->streams[i].entries,
                                    .nentries = p->streams[i].nentries};
        if (sl_labels_parse(a, p->streams[i].labels.ptr, p->streams[i].labels.len, &s.labels,
                            NULL) != 0)
            continue;
        sl_distributor_validate_stream(&lim, &s, 1700000000000000000LL, &rej);
    }
    struct sl_buf msg = SL_BUF_INIT;
    sl_rejects_format(&rej, &msg);
    sl_buf_release(&msg);
    sl_rejects_release(&rej);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct sl_buf raw = SL_BUF_INIT, err = SL_BUF_INIT;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        if (sl_snappy_decompress(&raw, body, n, 4u << 20) != 0)
            goto out;
        body = raw.data ? raw.data : "";
        n = raw.len;
    }
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_lokipb_push p;
    if (sl_lokipb_decode(&a, body, n, &p, &err) == 0) {
        check_round_trip(&p);
        /* validation sorts labels and compacts entries: after the round trip */
        validate(&a, &p);
    }
    sl_arena_release(&a);
out:
    sl_buf_release(&raw);
    sl_buf_release(&err);
    return 0;
}
