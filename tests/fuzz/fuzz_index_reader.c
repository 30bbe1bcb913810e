/* Index reader: open, then select every series, and through postings, and
 * list label names and values, over arbitrary bytes (checksums are not enforced in fuzzing builds).
 */
#include <stddef.h>
#include <stdint.h>

#include "aggregator/index/index.h"
#include "common/mem.h"

static int on_series(const struct sl_labels *ls, uint64_t fp, const struct sl_index_chunk_ref *refs,
                     size_t n, void *ud)
{
    size_t *total = ud;
    (void)fp;
    for (size_t i = 0; i < ls->n; i++)
        *total += ls->items[i].name.len + ls->items[i].value.len;
    for (size_t i = 0; i < n; i++)
        *total += refs[i].key.len + (size_t)refs[i].entries;
    return 0;
}

static int on_bytes(struct sl_bytes v, void *ud)
{
    *(size_t *)ud += v.len;
    return 0;
}

static bool any(const struct sl_labels *ls, void *ud)
{
    (void)ud;
    return ls->n > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = sl_memdup(size ? (const void *)data : "", size ? size : 1);
    struct sl_index_reader *r;
    if (sl_index_reader_open_mem(copy, size, &r) == 0) {
        size_t total = 0;
        struct sl_index_matcher eq[2] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")},
                                         {SL_BYTES_LIT("env"), SL_BYTES_LIT("prod")}};
        sl_index_reader_select(r, NULL, 0, NULL, NULL, INT64_MIN, INT64_MAX, on_series, &total);
        sl_index_reader_select(r, eq, 1, any, NULL, 0, 1000, on_series, &total);
        sl_index_reader_select(r, eq, 2, NULL, NULL, INT64_MIN, INT64_MAX, on_series, &total);
        sl_index_reader_label_names(r, INT64_MIN, INT64_MAX, on_bytes, &total);
        sl_index_reader_label_names(r, 100, 200, on_bytes, &total);
        sl_index_reader_label_values(r, SL_BYTES_LIT("app"), 0, 1000, on_bytes, &total);
        sl_index_reader_close(r);
    }
    sl_free(copy);
    return 0;
}
