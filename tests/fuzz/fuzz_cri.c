/* CRI parser fuzz target. The input is fed in chunks whose sizes come from the
 * first byte, with `force` set when a chunk holds no newline (as the tailer
 * does for a full read buffer), and checks the parser's invariants: entries
 * never exceed the cap, restart offsets never go past what was consumed, and
 * everything is consumed in the end. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/parse/cri.h"

struct st {
    uint64_t consumed;
    size_t max;
};

static void on_entry(void *ud, const struct sl_parsed_entry *e)
{
    struct st *s = ud;
    if (e->line.len > s->max || e->safe_off > s->consumed + 65536)
        abort();
    if (e->line.len && e->line.ptr[0] == '\0' && e->line.ptr[e->line.len - 1] == 1)
        s->max += 0; /* touch the bytes so ASan checks the view */
}

static void on_bad(void *ud, struct sl_bytes line, const char *reason)
{
    (void)ud;
    if (!reason || (line.len && !line.ptr))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    size_t max = (size_t)data[1] * 4 + 1;
    data += 2;
    size -= 2;
    struct sl_cri p;
    struct st s = {0, max};
    const struct sl_parse_cbs cbs = {on_entry, on_bad};
    sl_cri_init(&p, max, 0);
    size_t off = 0; /* consumed so far */
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        /* The caller re-feeds unconsumed bytes with more after them. */
        size_t window = n;
        while (off + window < size && !memchr(data + off, '\n', window) && window < 4 * chunk)
            window++;
        bool force = !memchr(data + off, '\n', window);
        s.consumed = off + window;
        size_t c = sl_cri_feed(&p, (const char *)data + off, window, force, &cbs, &s);
        if (c > window || (force && c != window))
            abort();
        off += c;
        if (sl_cri_safe_off(&p) > off)
            abort();
    }
    sl_cri_release(&p);
    return 0;
}
