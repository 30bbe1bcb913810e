/* Fuzz target for common/compress.c decompression with a small output limit.
 *
 * The first byte picks the codec (bit 0: zstd or gzip) and the limit (bits
 * 1-3: 64 B .. 256 KiB); the rest is the compressed input. Whatever the
 * input, the result must be 0 with at most max_out bytes appended, or an
 * error with out unchanged. A success is compressed again and must round-trip
 * to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/compress.h"
#include "common/err.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum sl_codec c = (data[0] & 1) ? SL_CODEC_GZIP : SL_CODEC_ZSTD;
    size_t max_out = (size_t)64 << (2 * ((data[0] >> 1) & 7) % 13);
    struct sl_buf out = SL_BUF_INIT, z = SL_BUF_INIT, back = SL_BUF_INIT;
    sl_buf_append(&out, "pre", 3);
    int rc = sl_decompress(c, &out, data + 1, size - 1, max_out);
    if (rc != 0) {
        CHECK(rc == SL_ECORRUPT || rc == SL_ETOOBIG);
        CHECK(out.len == 3 && memcmp(out.data, "pre", 3) == 0);
        goto done;
    }
    CHECK(out.len - 3 <= max_out);
    CHECK(sl_compress(c, &z, out.data + 3, out.len - 3, 0) == 0);
    CHECK(sl_decompress(c, &back, z.data, z.len, out.len - 3) == 0);
    CHECK(back.len == out.len - 3);
    CHECK(back.len == 0 || memcmp(back.data, out.data + 3, back.len) == 0);
done:
    sl_buf_release(&out);
    sl_buf_release(&z);
    sl_buf_release(&back);
    return 0;
}
