/* CRI line header; framing and joining live in parser.c. */
#include "agent/parse/cri.h"

#include <string.h>

#include "common/err.h"
#include "common/timeutil.h"

void sl_cri_init(struct sl_cri *c, size_t max_line, uint64_t start_off)
{
    sl_parser_init(&c->p, SL_FORMAT_CRI, max_line, start_off);
}

void sl_cri_release(struct sl_cri *c)
{
    sl_parser_release(&c->p);
}

void sl_cri_reset(struct sl_cri *c, uint64_t start_off)
{
    sl_parser_reset(&c->p, start_off);
}

size_t sl_cri_feed(struct sl_cri *c, const char *data, size_t n, bool force,
                   const struct sl_parse_cbs *cbs, void *ud)
{
    return sl_parser_feed(&c->p, data, n, force, cbs, ud);
}

uint64_t sl_cri_safe_off(const struct sl_cri *c)
{
    return sl_parser_safe_off(&c->p);
}

int sl_cri_parse_header(const char *s, size_t n, int64_t *ts, enum sl_log_stream *stream,
                        bool *final, struct sl_bytes *text, const char **reason)
{
    const char *end = s + n;
    const char *sp = memchr(s, ' ', n);
    if (!sp) {
        *reason = "missing fields";
        return SL_EINVAL;
    }
    if (sl_rfc3339_parse(s, (size_t)(sp - s), ts) != 0) {
        *reason = "bad timestamp";
        return SL_EINVAL;
    }
    const char *f = sp + 1;
    sp = memchr(f, ' ', (size_t)(end - f));
    if (!sp) {
        *reason = "missing tag";
        return SL_EINVAL;
    }
    size_t flen = (size_t)(sp - f);
    if (flen == 6 && !memcmp(f, "stdout", 6)) {
        *stream = SL_STREAM_STDOUT;
    } else if (flen == 6 && !memcmp(f, "stderr", 6)) {
        *stream = SL_STREAM_STDERR;
    } else {
        *reason = "bad stream";
        return SL_EINVAL;
    }
    /* Tags are ':'-separated; the first one is P or F (CRI's LogTag). */
    const char *t = sp + 1;
    const char *tend = memchr(t, ' ', (size_t)(end - t));
    if (!tend)
        tend = end;
    if (tend - t < 1 || (t[0] != 'P' && t[0] != 'F') || (tend - t > 1 && t[1] != ':')) {
        *reason = "bad tag";
        return SL_EINVAL;
    }
    *final = t[0] == 'F';
    const char *x = tend < end ? tend + 1 : end;
    *text = sl_bytes(x, (size_t)(end - x));
    return 0;
}
