/* Chunk reader: open, block table, every block's payload and metadata pairs,
 * over arbitrary bytes (checksums are not enforced in fuzzing builds, so the
 * decoders behind them are reached). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/chunk/chunk.h"
#include "common/mem.h"

static int on_entry(const struct sl_chunk_entry *e, void *ud)
{
    size_t pos = 0;
    struct sl_bytes k, v;
    while (sl_chunk_meta_next(e, &pos, &k, &v) == 1)
        *(size_t *)ud += k.len + v.len;
    *(size_t *)ud += e->line.len;
    /* the payload decoder checked every pair: decoding them all succeeds */
    struct sl_label *ls = NULL;
    size_t cap = 0;
    if (sl_chunk_meta_labels(e, &ls, &cap) != (int)e->n_meta)
        abort();
    sl_free(ls);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy, so reads past the end are caught by ASan. */
    char *copy = sl_memdup(size ? (const void *)data : "", size ? size : 1);
    struct sl_chunk_reader r;
    if (sl_chunk_reader_open(&r, copy, size) == 0) {
        size_t total = 0;
        for (uint32_t i = 0; i < r.nblocks; i++) {
            struct sl_chunk_block_info bi;
            sl_chunk_reader_block(&r, i, &bi);
        }
        sl_chunk_reader_scan(&r, INT64_MIN, INT64_MAX, on_entry, &total);
        sl_chunk_reader_scan(&r, r.min_ts, r.min_ts + 1000, on_entry, &total);
    }
    sl_free(copy);
    return 0;
}
