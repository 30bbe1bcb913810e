/* Line framing, per-stream joining and long-line splitting shared by every
 * format; cri.c and docker.c decode one physical line each, raw lines need no
 * decoding. Offsets are tracked so that a restart position never falls inside
 * a line whose pieces are not all delivered (see parse.h, safe_off). */
#include "agent/parse/parser.h"

#include <string.h>

#include "agent/parse/cri.h"
#include "agent/parse/docker.h"
#include "common/err.h"
#include "common/timeutil.h"

int sl_log_format_parse(const char *s, enum sl_log_format *out)
{
    if (!strcmp(s, "cri"))
        *out = SL_FORMAT_CRI;
    else if (!strcmp(s, "docker"))
        *out = SL_FORMAT_DOCKER;
    else if (!strcmp(s, "raw"))
        *out = SL_FORMAT_RAW;
    else
        return SL_EINVAL;
    return 0;
}

const char *sl_log_format_name(enum sl_log_format f)
{
    switch (f) {
    case SL_FORMAT_DOCKER:
        return "docker";
    case SL_FORMAT_RAW:
        return "raw";
    default:
        return "cri";
    }
}

void sl_parser_init(struct sl_parser *p, enum sl_log_format fmt, size_t max_line,
                    uint64_t start_off)
{
    memset(p, 0, sizeof(*p));
    p->fmt = fmt;
    p->max_line = max_line ? max_line : 1;
    p->consumed_end = start_off;
    p->clock = sl_now_ns;
}

void sl_parser_release(struct sl_parser *p)
{
    sl_buf_release(&p->part[0].buf);
    sl_buf_release(&p->part[1].buf);
    sl_buf_release(&p->phys);
    sl_buf_release(&p->text);
}

void sl_parser_reset(struct sl_parser *p, uint64_t start_off)
{
    enum sl_log_format fmt = p->fmt;
    size_t max = p->max_line;
    int64_t (*clock)(void) = p->clock;
    sl_parser_release(p);
    sl_parser_init(p, fmt, max, start_off);
    p->clock = clock;
}

uint64_t sl_parser_safe_off(const struct sl_parser *p)
{
    uint64_t off = p->consumed_end;
    for (int i = 0; i < 2; i++)
        if (p->part[i].active && p->part[i].start_off < off)
            off = p->part[i].start_off;
    if (p->cont && p->cont_start < off)
        off = p->cont_start;
    return off;
}

/* Emits the first n bytes of the stream's joined line. */
static void emit(struct sl_parser *p, int stream, size_t n, const struct sl_parse_cbs *cbs,
                 void *ud)
{
    struct sl_parser_part *part = &p->part[stream];
    struct sl_parsed_entry e = {
        /* Pieces of a split line 1 ns apart: identical pieces (a long run of
         * one byte) would otherwise be dropped as duplicates downstream. */
        .ts_ns = part->ts_ns + (int64_t)part->pieces,
        .stream = (enum sl_log_stream)stream,
        .line = sl_bytes(part->buf.data, n),
        .split = part->split,
        .safe_off = sl_parser_safe_off(p),
    };
    cbs->entry(ud, &e);
}

/* One piece of a logical line: joined to what the stream holds, emitted in
 * max_line entries as it grows, and in full when final. */
static void piece(struct sl_parser *p, int stream, int64_t ts, uint64_t line_start, const char *s,
                  size_t n, bool final, const struct sl_parse_cbs *cbs, void *ud)
{
    struct sl_parser_part *part = &p->part[stream];
    if (!part->active) {
        part->active = true;
        part->split = false;
        part->pieces = 0;
        part->ts_ns = ts;
        part->start_off = line_start;
        sl_buf_clear(&part->buf);
    }
    while (n > 0) {
        /* Append at most what completes one max_line entry, so the buffer
         * never holds more than max_line bytes. */
        size_t room = p->max_line - part->buf.len;
        size_t take = n < room ? n : room;
        sl_buf_append(&part->buf, s, take);
        s += take;
        n -= take;
        if (n > 0) { /* full and more to come: this piece of the line goes now */
            part->split = true;
            emit(p, stream, part->buf.len, cbs, ud);
            part->pieces++;
            sl_buf_clear(&part->buf);
        }
    }
    if (final) {
        part->active = false;
        emit(p, stream, part->buf.len, cbs, ud);
        sl_buf_clear(&part->buf);
    }
}

static void one_line(struct sl_parser *p, const char *s, size_t n, uint64_t line_start,
                     const struct sl_parse_cbs *cbs, void *ud)
{
    int64_t ts;
    enum sl_log_stream st;
    bool final;
    struct sl_bytes text;
    const char *reason;
    int rc;
    switch (p->fmt) {
    case SL_FORMAT_RAW:
        piece(p, SL_STREAM_STDOUT, p->clock(), line_start, s, n, true, cbs, ud);
        return;
    case SL_FORMAT_DOCKER:
        rc = sl_docker_parse_line(s, n, &p->text, &ts, &st, &final, &reason);
        text = sl_buf_bytes(&p->text);
        break;
    default:
        rc = sl_cri_parse_header(s, n, &ts, &st, &final, &text, &reason);
        break;
    }
    if (rc != 0) {
        cbs->malformed(ud, sl_bytes(s, n), reason);
        return;
    }
    piece(p, (int)st, ts, line_start, text.ptr, text.len, final, cbs, ud);
}

/* Continues a physical line cut by a forced feed. Returns bytes consumed. */
static size_t continue_line(struct sl_parser *p, const char *data, size_t n,
                            const struct sl_parse_cbs *cbs, void *ud)
{
    const char *nl = memchr(data, '\n', n);
    size_t seg = nl ? (size_t)(nl - data) : n;
    p->consumed_end += nl ? seg + 1 : seg;
    if (p->fmt == SL_FORMAT_DOCKER) {
        if (!p->cont_skip && p->phys.len + seg > SL_DOCKER_MAX_PHYS) {
            cbs->malformed(ud, sl_buf_bytes(&p->phys), "line too long");
            p->cont_skip = true;
            sl_buf_clear(&p->phys);
        }
        if (!p->cont_skip)
            sl_buf_append(&p->phys, data, seg);
        if (nl) {
            p->cont = false;
            if (!p->cont_skip)
                one_line(p, p->phys.data, p->phys.len, p->cont_start, cbs, ud);
            sl_buf_clear(&p->phys);
        }
    } else {
        if (nl)
            p->cont = false;
        if (!p->cont_skip)
            piece(p, p->cont_stream, 0, p->cont_start, data, seg, nl && p->cont_final, cbs, ud);
    }
    return nl ? seg + 1 : seg;
}

static void start_forced(struct sl_parser *p, const char *s, size_t n,
                         const struct sl_parse_cbs *cbs, void *ud)
{
    int64_t ts = 0;
    enum sl_log_stream st = SL_STREAM_STDOUT;
    bool final = true;
    struct sl_bytes text = sl_bytes(s, n);
    const char *reason;
    p->cont = true;
    p->cont_skip = false;
    p->cont_start = p->consumed_end;
    p->consumed_end += n;
    switch (p->fmt) {
    case SL_FORMAT_DOCKER:
        sl_buf_clear(&p->phys);
        sl_buf_append(&p->phys, s, n);
        return;
    case SL_FORMAT_RAW:
        ts = p->clock();
        break;
    default:
        if (sl_cri_parse_header(s, n, &ts, &st, &final, &text, &reason) != 0) {
            cbs->malformed(ud, sl_bytes(s, n), reason);
            p->cont_skip = true;
            return;
        }
        break;
    }
    p->cont_stream = (int)st;
    p->cont_final = final;
    piece(p, (int)st, ts, p->cont_start, text.ptr, text.len, false, cbs, ud);
}

size_t sl_parser_feed(struct sl_parser *p, const char *data, size_t n, bool force,
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
    /* Forced only when the whole buffer is one unfinished physical line:
     * after complete lines, the rest is the start of a line that the next
     * feed brings whole (taking it here could cut a CRI header in two). */
    if (force && off == 0 && n > 0) {
        start_forced(p, data + off, n - off, cbs, ud);
        off = n;
    }
    return off;
}
