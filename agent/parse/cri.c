/* CRI line parser. Offsets are tracked so that a restart position never falls
 * inside a line whose pieces are not all delivered (see parse.h, safe_off). */
#include "agent/parse/cri.h"

#include <string.h>

#include "common/err.h"
#include "common/timeutil.h"

void sl_cri_init(struct sl_cri *p, size_t max_line, uint64_t start_off)
{
    memset(p, 0, sizeof(*p));
    p->max_line = max_line;
    sl_buf_init(&p->part[0].buf);
    sl_buf_init(&p->part[1].buf);
    p->consumed_end = start_off;
}

void sl_cri_release(struct sl_cri *p)
{
    sl_buf_release(&p->part[0].buf);
    sl_buf_release(&p->part[1].buf);
}

void sl_cri_reset(struct sl_cri *p, uint64_t start_off)
{
    size_t max = p->max_line;
    sl_cri_release(p);
    sl_cri_init(p, max, start_off);
}

uint64_t sl_cri_safe_off(const struct sl_cri *p)
{
    uint64_t off = p->consumed_end;
    for (int i = 0; i < 2; i++)
        if (p->part[i].active && p->part[i].start_off < off)
            off = p->part[i].start_off;
    if (p->cont && p->cont_start < off)
        off = p->cont_start;
    return off;
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

static void append_capped(struct sl_cri *p, struct sl_cri_partial *part, const char *s, size_t n)
{
    size_t room = p->max_line > part->buf.len ? p->max_line - part->buf.len : 0;
    if (n > room) {
        n = room;
        part->truncated = true;
    }
    if (n)
        sl_buf_append(&part->buf, s, n);
}

static void start_piece(struct sl_cri *p, int stream, int64_t ts, uint64_t line_start,
                        struct sl_bytes text)
{
    struct sl_cri_partial *part = &p->part[stream];
    if (!part->active) {
        part->active = true;
        part->truncated = false;
        part->ts_ns = ts;
        part->start_off = line_start;
        sl_buf_clear(&part->buf);
    }
    append_capped(p, part, text.ptr, text.len);
}

static void finish(struct sl_cri *p, int stream, const struct sl_parse_cbs *cbs, void *ud)
{
    struct sl_cri_partial *part = &p->part[stream];
    part->active = false;
    struct sl_parsed_entry e = {
        .ts_ns = part->ts_ns,
        .stream = (enum sl_log_stream)stream,
        .line = sl_buf_bytes(&part->buf),
        .truncated = part->truncated,
        .safe_off = sl_cri_safe_off(p),
    };
    cbs->entry(ud, &e);
    sl_buf_clear(&part->buf);
}

static void one_line(struct sl_cri *p, const char *s, size_t n, uint64_t line_start,
                     const struct sl_parse_cbs *cbs, void *ud)
{
    int64_t ts;
    enum sl_log_stream st;
    bool final;
    struct sl_bytes text;
    const char *reason;
    if (sl_cri_parse_header(s, n, &ts, &st, &final, &text, &reason) != 0) {
        cbs->malformed(ud, sl_bytes(s, n), reason);
        return;
    }
    start_piece(p, (int)st, ts, line_start, text);
    if (final)
        finish(p, (int)st, cbs, ud);
}

/* Continues a physical line cut by a forced feed. Returns bytes consumed. */
static size_t continue_line(struct sl_cri *p, const char *data, size_t n,
                            const struct sl_parse_cbs *cbs, void *ud)
{
    const char *nl = memchr(data, '\n', n);
    size_t seg = nl ? (size_t)(nl - data) : n;
    if (!p->cont_skip)
        append_capped(p, &p->part[p->cont_stream], data, seg);
    if (!nl) {
        p->consumed_end += n;
        return n;
    }
    p->consumed_end += seg + 1;
    p->cont = false;
    if (!p->cont_skip && p->cont_final)
        finish(p, p->cont_stream, cbs, ud);
    return seg + 1;
}

static void start_forced(struct sl_cri *p, const char *s, size_t n, const struct sl_parse_cbs *cbs,
                         void *ud)
{
    int64_t ts;
    enum sl_log_stream st;
    bool final;
    struct sl_bytes text;
    const char *reason;
    p->cont = true;
    p->cont_start = p->consumed_end;
    p->cont_skip = sl_cri_parse_header(s, n, &ts, &st, &final, &text, &reason) != 0;
    if (p->cont_skip) {
        cbs->malformed(ud, sl_bytes(s, n), reason);
    } else {
        p->cont_stream = (int)st;
        p->cont_final = final;
        start_piece(p, (int)st, ts, p->consumed_end, text);
    }
    p->consumed_end += n;
}

size_t sl_cri_feed(struct sl_cri *p, const char *data, size_t n, bool force,
                   const struct sl_parse_cbs *cbs, void *ud)
{
    size_t off = 0;
    if (p->cont) {
        off = continue_line(p, data, n, cbs, ud);
        if (p->cont)
            return off;
    }
    while (off < n) {
        const char *nl = memchr(data + off, '\n', n - off);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (data + off));
        uint64_t start = p->consumed_end;
        p->consumed_end += len + 1;
        one_line(p, data + off, len, start, cbs, ud);
        off += len + 1;
    }
    if (force && off < n) {
        start_forced(p, data + off, n - off, cbs, ud);
        off = n;
    }
    return off;
}
