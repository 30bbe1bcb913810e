/* Disk buffer reader: the input is written as the only segment file of a
 * buffer directory under /tmp, which is then opened (recovery: crc checks,
 * torn tail truncated) and read to the end. Checks what the buffer promises:
 * the records taken are exactly the valid prefix that sl_buffer_scan finds in
 * the input, and the file left behind is that prefix. An append afterwards
 * must work. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/buffer/buffer.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

static char dir[64];

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        abort();
    struct dirent *de;
    char path[400];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char seg[128];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/sl-fuzz-buffer-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        sl_log_set_level(SL_LOG_ERROR);
    }
    clear_dir();
    snprintf(seg, sizeof(seg), "%s/0000000000000001.seg", dir);
    FILE *f = fopen(seg, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);

    uint64_t want_records, want_lines;
    size_t valid = sl_buffer_scan(data, size, &want_records, &want_lines);
    if (valid > size)
        abort();

    struct sl_buffer_opts o = {.dir = dir, .max_size = 64u << 20};
    struct sl_buffer *b;
    struct sl_buffer_drop corrupt = {0};
    struct sl_buf err = SL_BUF_INIT, body = SL_BUF_INIT;
    if (sl_buffer_open(&o, &b, &corrupt, &err) != 0)
        abort();
    struct stat st;
    if (valid >= SL_BUFFER_SEG_HDR) { /* a good header: kept, cut to the valid prefix */
        if (stat(seg, &st) != 0 || (size_t)st.st_size != valid)
            abort();
        if ((valid < size) != (corrupt.records > 0))
            abort();
    } else if (size > 0 && stat(seg, &st) == 0) {
        abort(); /* a bad header: the segment is deleted */
    }
    uint64_t records = 0, lines = 0;
    struct sl_buffer_meta m;
    int rc;
    while ((rc = sl_buffer_take(b, &m, &body, NULL, &err)) == 0) {
        records++;
        lines += m.lines;
        if (sl_buffer_done(b, &err) != 0)
            abort();
    }
    if (rc != SL_ENOENT || records != want_records || lines != want_lines)
        abort();
    struct sl_buffer_meta am = {.lines = 1, .protocol = 0, .codec = 0};
    if (sl_buffer_append(b, &am, sl_bytes("x", 1), NULL, &err) != 0)
        abort();
    if (sl_buffer_take(b, &m, &body, NULL, &err) != 0 || body.len != 1 || m.lines != 1)
        abort();
    sl_buffer_free(b);
    sl_buf_release(&body);
    sl_buf_release(&err);
    return 0;
}
