/* Chunk disk cache: a cache file's header check (magic, key, length) over
 * arbitrary bytes, as read back from disk. The module is included to reach
 * its file reader. */
#include "aggregator/querier/chunk_cache.c"

#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-chunk-cache", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && sl_write_all(fd, data, size) != 0) {
        close(fd);
        return 0;
    }
    struct sl_buf out = SL_BUF_INIT;
    int rc = read_file(fd, "chunks/t/0123456789abcdef/1-2-abcd", &out);
    /* a file read whole is the data after a header naming the key */
    if (rc == 0 && out.len + 16 + strlen("chunks/t/0123456789abcdef/1-2-abcd") != size)
        __builtin_trap();
    sl_buf_release(&out);
    close(fd);
    return 0;
}
