/* Docker json-file parser fuzz target. Each input line is decoded by the fast
 * path and by jansson: whenever the fast path accepts a line, jansson must
 * accept it too and decode the same log bytes, stream and time. The whole
 * input is also fed through the shared parser in chunks (forced when a chunk
 * holds no newline), checking its invariants: entries never exceed the cap,
 * restart offsets never pass what was consumed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/parse/docker.h"
#include "agent/parse/parser.h"
#include "common/buf.h"

struct st {
    uint64_t consumed;
    size_t max;
};

static void on_entry(void *ud, const struct sl_parsed_entry *e)
{
    struct st *s = ud;
    if (e->line.len > s->max || e->safe_off > s->consumed)
        abort();
    if (e->stream != SL_STREAM_STDOUT && e->stream != SL_STREAM_STDERR)
        abort();
}

static void on_bad(void *ud, struct sl_bytes line, const char *reason)
{
    (void)ud;
    if (!reason || (line.len && !line.ptr))
        abort();
}

static void compare(const char *s, size_t n, struct sl_buf *a, struct sl_buf *b)
{
    struct sl_docker_raw fast = {.log = a}, slow = {.log = b};
    const char *reason;
    if (sl__docker_fast(s, n, &fast) != 1)
        return;
    if (sl__docker_slow(s, n, &slow, &reason) != 0)
        abort(); /* the fast path accepted what jansson refuses */
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
        abort();
    if (fast.stream_len != slow.stream_len || memcmp(fast.stream, slow.stream, fast.stream_len))
        abort();
    if (fast.time_len != slow.time_len || memcmp(fast.time, slow.time, fast.time_len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    size_t max = (size_t)data[1] * 8 + 1;
    const char *in = (const char *)data + 2;
    size = size - 2;
    struct sl_buf a = SL_BUF_INIT, b = SL_BUF_INIT;
    for (size_t off = 0; off < size;) {
        const char *nl = memchr(in + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (in + off)) : size - off;
        compare(in + off, len, &a, &b);
        off += len + 1;
    }
    sl_buf_release(&a);
    sl_buf_release(&b);

    struct sl_parser p;
    struct st s = {0, max};
    const struct sl_parse_cbs cbs = {on_entry, on_bad};
    sl_parser_init(&p, SL_FORMAT_DOCKER, max, 0);
    size_t off = 0;
    while (off < size) {
        size_t window = size - off < chunk ? size - off : chunk;
        while (off + window < size && !memchr(in + off, '\n', window) && window < 4 * chunk)
            window++;
        bool force = !memchr(in + off, '\n', window);
        s.consumed = off + window;
        size_t c = sl_parser_feed(&p, in + off, window, force, &cbs, &s);
        if (c > window || (force && c != window))
            abort();
        off += c;
        if (sl_parser_safe_off(&p) > off)
            abort();
    }
    sl_parser_release(&p);
    return 0;
}
