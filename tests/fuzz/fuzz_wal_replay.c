/* WAL replay: the input is written as a segment file under /tmp and replayed
 * into an ingester, so both the record framing and the push record payload
 * (aggregator/api/push.h) are exercised, along with tail truncation. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/api/push.h"
#include "aggregator/ingester/ingester.h"
#include "aggregator/wal/wal.h"
#include "common/buf.h"
#include "common/log.h"

static char dir[64];
static char seg[128];

static int apply(struct sl_bytes payload, void *ud)
{
    return sl_push_record_apply(ud, payload, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/sl-fuzz-wal-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(seg, sizeof(seg), "%s/0000000000000000.wal", dir);
        sl_log_set_level(SL_LOG_ERROR);
    }
    FILE *f = fopen(seg, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    struct sl_wal *w;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_wal_opts o = {.dir = dir};
    if (sl_wal_open(&o, &w, &err) != 0)
        abort();
    struct sl_ingester_opts io = {.block_size = 256, .max_chunk_age_ns = 7200000000000LL};
    struct sl_ingester *ing = sl_ingester_new(&io, NULL);
    sl_wal_replay(w, apply, ing, NULL, &err);
    sl_wal_close(w, NULL, NULL);
    sl_ingester_free(ing);
    sl_buf_release(&err);
    unlink(seg);
    return 0;
}
