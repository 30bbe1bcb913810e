/* Thin wrapper over snappy-c.h that appends to an sl_buf. */
#include "common/snappy.h"

#include <snappy-c.h>

#include "common/err.h"

#define SNAPPY_MAX_RATIO 22

int sl_snappy_compress(struct sl_buf *out, const void *in, size_t n)
{
    size_t cap = snappy_max_compressed_length(n);
    char *p = sl_buf_reserve(out, cap);
    if (snappy_compress(in, n, p, &cap) != SNAPPY_OK)
        return SL_EINVAL; /* only on a too-small output, which cannot happen */
    sl_buf_commit(out, cap);
    return 0;
}

int sl_snappy_decompress(struct sl_buf *out, const void *in, size_t n, size_t max_out)
{
    size_t len;
    if (snappy_uncompressed_length(in, n, &len) != SNAPPY_OK)
        return SL_ECORRUPT;
    if (len > max_out)
        return SL_ETOOBIG;
    /* The densest snappy element, a copy with a 2-byte offset, turns 3 bytes
     * into at most 64: a header declaring more than that ratio is a lie, and
     * refusing it here keeps a tiny body from reserving max_out bytes. */
    if (len / SNAPPY_MAX_RATIO > n)
        return SL_ECORRUPT;
    char *p = sl_buf_reserve(out, len ? len : 1);
    size_t got = len;
    if (snappy_uncompress(in, n, p, &got) != SNAPPY_OK || got != len)
        return SL_ECORRUPT;
    sl_buf_commit(out, got);
    return 0;
}
