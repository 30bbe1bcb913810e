/* Fuzzes the WebSocket frame parser (common/websocket.h). The first byte
 * picks the size of the pieces the input is fed in (frames split at every
 * boundary), its top bit whether the parser plays a server (masks
 * required) or a client. Checks: every message respects the protocol's
 * limits, a failed parser stays failed, and each message re-encoded and
 * parsed again gives the same payload. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/utf8.h"
#include "common/websocket.h"

#define MAX_MESSAGE 4096

static void check_roundtrip(const struct sl_ws_msg *m)
{
    static const uint8_t mask[4] = {1, 2, 3, 4};
    struct sl_buf b = SL_BUF_INIT;
    if (m->op == SL_WS_CLOSE)
        return; /* the payload handed out is the reason, without the code */
    sl_ws_frame_append(&b, m->op, true, m->payload.ptr, m->payload.len, mask);
    struct sl_ws_parser p;
    sl_ws_parser_init(&p, MAX_MESSAGE);
    sl_ws_parser_feed(&p, b.data, b.len);
    struct sl_ws_msg again;
    if (sl_ws_parser_next(&p, &again) != 1 || again.op != m->op ||
        again.payload.len != m->payload.len ||
        (m->payload.len && memcmp(again.payload.ptr, m->payload.ptr, m->payload.len) != 0))
        __builtin_trap();
    sl_ws_parser_release(&p);
    sl_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t piece = data[0] & 0x7f ? data[0] & 0x7f : size;
    bool server = !(data[0] & 0x80);
    data++;
    size--;
    struct sl_ws_parser p;
    sl_ws_parser_init(&p, MAX_MESSAGE);
    p.require_mask = server;
    bool failed = false;
    for (size_t off = 0; off < size && !failed; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        sl_ws_parser_feed(&p, data + off, n);
        struct sl_ws_msg m;
        int r;
        while ((r = sl_ws_parser_next(&p, &m)) == 1) {
            bool control = m.op == SL_WS_CLOSE || m.op == SL_WS_PING || m.op == SL_WS_PONG;
            if (!control && m.op != SL_WS_TEXT && m.op != SL_WS_BINARY)
                __builtin_trap();
            if (control && m.payload.len > SL_WS_MAX_CONTROL)
                __builtin_trap();
            if (!control && m.payload.len > MAX_MESSAGE)
                __builtin_trap();
            if (m.op == SL_WS_TEXT && !sl_utf8_valid(m.payload.ptr, m.payload.len))
                __builtin_trap();
            check_roundtrip(&m);
        }
        if (r < 0) {
            if (!p.err_code || !p.reason)
                __builtin_trap();
            failed = true;
        }
    }
    if (failed) {
        struct sl_ws_msg m;
        sl_ws_parser_feed(&p, "\x81\x80\0\0\0\0", 6);
        if (sl_ws_parser_next(&p, &m) >= 0)
            __builtin_trap();
    }
    sl_ws_parser_release(&p);
    return 0;
}
