/* Duration, size, RFC3339 and Loki time parsers. Checks that what the
 * formatters write parses back to the same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct sl_buf b = SL_BUF_INIT;
    int64_t v, back;

    if (sl_duration_parse(s, size, &v) == 0) {
        sl_duration_format(&b, v);
        if (sl_duration_parse(b.data, b.len, &back) != 0 || back != v)
            abort();
    }
    sl_buf_clear(&b);
    if (sl_size_parse(s, size, &v) == 0) {
        if (v < 0)
            abort();
        sl_size_format(&b, v);
        if (sl_size_parse(b.data, b.len, &back) != 0 || back != v)
            abort();
    }
    sl_buf_clear(&b);
    if (sl_rfc3339_parse(s, size, &v) == 0) {
        sl_rfc3339_format(&b, v);
        if (sl_rfc3339_parse(b.data, b.len, &back) != 0 || back != v)
            abort();
    }
    (void)sl_loki_time_parse(s, size, &v);
    /* Any 8 bytes as a timestamp: format -> parse round trip. */
    if (size >= 8) {
        memcpy(&v, data, 8);
        sl_buf_clear(&b);
        sl_rfc3339_format(&b, v);
        if (sl_rfc3339_parse(b.data, b.len, &back) != 0 || back != v)
            abort();
        sl_buf_clear(&b);
        sl_duration_format(&b, v);
        if (sl_duration_parse(b.data, b.len, &back) != 0 || back != v)
            abort();
    }
    sl_buf_release(&b);
    return 0;
}
