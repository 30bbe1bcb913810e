/* WebSocket framing: RFC 6455's handshake example, frames encoded by the
 * server decoded by a client-side reading, client frames (masked) through
 * the parser, fragmentation, the three length forms, and frames a server
 * must refuse. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/http_server.h"
#include "common/mem.h"
#include "common/websocket.h"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* RFC 6455 section 1.3: this key gives this accept value. */
static void test_accept_key(void **state)
{
    (void)state;
    char out[SL_WS_ACCEPT_LEN];
    sl_ws_accept_key(SL_BYTES_LIT("dGhlIHNhbXBsZSBub25jZQ=="), out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    sl_ws_accept_key(SL_BYTES_LIT(" dGhlIHNhbXBsZSBub25jZQ== "), out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_true(sl_ws_key_valid(SL_BYTES_LIT("dGhlIHNhbXBsZSBub25jZQ==")));
    assert_false(sl_ws_key_valid(SL_BYTES_LIT("dGhlIHNhbXBsZSBub25jZQ=")));
    assert_false(sl_ws_key_valid(SL_BYTES_LIT("dGhlIHNhbXBsZSBub25jZ!==")));
    assert_false(sl_ws_key_valid(SL_BYTES_LIT("")));
}

/* RFC 6455 section 5.7's examples, byte for byte. */
static void test_rfc_examples(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    sl_ws_frame_append(&b, SL_WS_TEXT, true, "Hello", 5, NULL);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "\x81\x05\x48\x65\x6c\x6c\x6f", 7);
    sl_buf_clear(&b);
    sl_ws_frame_append(&b, SL_WS_TEXT, true, "Hello", 5, MASK);
    assert_int_equal(b.len, 11);
    assert_memory_equal(b.data, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);

    struct sl_ws_parser p;
    sl_ws_parser_init(&p, 0);
    sl_ws_parser_feed(&p, b.data, b.len);
    struct sl_ws_msg m;
    assert_int_equal(sl_ws_parser_next(&p, &m), 1);
    assert_int_equal(m.op, SL_WS_TEXT);
    assert_int_equal(m.payload.len, 5);
    assert_memory_equal(m.payload.ptr, "Hello", 5);
    assert_int_equal(sl_ws_parser_next(&p, &m), 0);
    sl_ws_parser_release(&p);
    sl_buf_release(&b);
}

/* Reads one server frame header: returns the header length, sets *len. */
static size_t server_header(const uint8_t *d, uint64_t *len)
{
    assert_int_equal(d[1] & 0x80, 0); /* a server never masks */
    uint64_t l = d[1] & 0x7f;
    if (l == 126) {
        *len = (uint64_t)d[2] << 8 | d[3];
        return 4;
    }
    if (l == 127) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | d[2 + i];
        *len = v;
        return 10;
    }
    *len = l;
    return 2;
}

/* 125, 126, 65535 and 65536 bytes: 7-bit, 16-bit and 64-bit lengths, both
 * as the server writes them and through the parser (masked). */
static void test_lengths(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 200000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        char *payload = sl_malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            payload[j] = (char)('a' + j % 26);
        struct sl_buf b = SL_BUF_INIT;
        sl_ws_frame_append(&b, SL_WS_BINARY, true, payload, n, NULL);
        uint64_t len;
        size_t hl = server_header((const uint8_t *)b.data, &len);
        assert_int_equal(hl, n < 126 ? 2 : n <= 65535 ? 4 : 10);
        assert_int_equal(len, n);
        assert_int_equal(b.len, hl + n);
        if (n)
            assert_memory_equal(b.data + hl, payload, n);

        sl_buf_clear(&b);
        sl_ws_frame_append(&b, SL_WS_BINARY, true, payload, n, MASK);
        struct sl_ws_parser p;
        sl_ws_parser_init(&p, 1 << 20);
        struct sl_ws_msg m;
        /* One byte at a time for the header, then the rest. */
        size_t fed = 0;
        for (; fed < 14 && fed < b.len; fed++) {
            assert_int_equal(sl_ws_parser_next(&p, &m), 0);
            sl_ws_parser_feed(&p, b.data + fed, 1);
        }
        if (fed < b.len) {
            assert_int_equal(sl_ws_parser_next(&p, &m), 0);
            sl_ws_parser_feed(&p, b.data + fed, b.len - fed);
        }
        assert_int_equal(sl_ws_parser_next(&p, &m), 1);
        assert_int_equal(m.op, SL_WS_BINARY);
        assert_int_equal(m.payload.len, n);
        if (n)
            assert_memory_equal(m.payload.ptr, payload, n);
        sl_ws_parser_release(&p);
        sl_buf_release(&b);
        sl_free(payload);
    }
}

/* A message in three fragments with a ping in between: the ping comes out
 * first, then the whole message. */
static void test_fragmentation(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    sl_ws_frame_append(&b, SL_WS_TEXT, false, "Hel", 3, MASK);
    sl_ws_frame_append(&b, SL_WS_CONT, false, "lo, ", 4, MASK);
    sl_ws_frame_append(&b, SL_WS_PING, true, "p", 1, MASK);
    sl_ws_frame_append(&b, SL_WS_CONT, true, "world", 5, MASK);
    sl_ws_frame_append(&b, SL_WS_CLOSE, true,
                       "\x03\xe8"
                       "bye",
                       5, MASK);
    struct sl_ws_parser p;
    sl_ws_parser_init(&p, 0);
    sl_ws_parser_feed(&p, b.data, b.len);
    struct sl_ws_msg m;
    assert_int_equal(sl_ws_parser_next(&p, &m), 1);
    assert_int_equal(m.op, SL_WS_PING);
    assert_int_equal(m.payload.len, 1);
    assert_int_equal(sl_ws_parser_next(&p, &m), 1);
    assert_int_equal(m.op, SL_WS_TEXT);
    assert_int_equal(m.payload.len, 12);
    assert_memory_equal(m.payload.ptr, "Hello, world", 12);
    assert_int_equal(sl_ws_parser_next(&p, &m), 1);
    assert_int_equal(m.op, SL_WS_CLOSE);
    assert_int_equal(m.close_code, 1000);
    assert_int_equal(m.payload.len, 3);
    assert_memory_equal(m.payload.ptr, "bye", 3);
    assert_int_equal(sl_ws_parser_next(&p, &m), 0);
    sl_ws_parser_release(&p);
    sl_buf_release(&b);
}

static void test_close_frames(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    sl_ws_close_append(&b, 1001, "going away");
    assert_memory_equal(b.data, "\x88\x0c\x03\xe9going away", 14);
    sl_buf_clear(&b);
    char longr[300];
    memset(longr, 'x', sizeof longr - 1);
    longr[sizeof longr - 1] = 0;
    sl_ws_close_append(&b, 1000, longr);
    assert_int_equal((uint8_t)b.data[1], 125); /* cut to fit a control frame */
    sl_buf_release(&b);

    /* An empty close is code 1005 (no status). */
    sl_buf_init(&b);
    sl_ws_frame_append(&b, SL_WS_CLOSE, true, "", 0, MASK);
    struct sl_ws_parser p;
    sl_ws_parser_init(&p, 0);
    sl_ws_parser_feed(&p, b.data, b.len);
    struct sl_ws_msg m;
    assert_int_equal(sl_ws_parser_next(&p, &m), 1);
    assert_int_equal(m.close_code, 1005);
    sl_ws_parser_release(&p);
    sl_buf_release(&b);
}

/* Each raw frame must be refused with the given close code. */
static void expect_bad(const char *raw, size_t n, int code, size_t max_message)
{
    struct sl_ws_parser p;
    sl_ws_parser_init(&p, max_message);
    sl_ws_parser_feed(&p, raw, n);
    struct sl_ws_msg m;
    int r = sl_ws_parser_next(&p, &m);
    assert_true(r < 0);
    assert_int_equal(p.err_code, code);
    assert_non_null(p.reason);
    /* It stays failed, whatever comes next. */
    sl_ws_parser_feed(&p, "\x81\x80\0\0\0\0", 6);
    assert_true(sl_ws_parser_next(&p, &m) < 0);
    sl_ws_parser_release(&p);
}

static void test_bad_frames(void **state)
{
    (void)state;
    /* unmasked client frame */
    expect_bad("\x81\x01x", 3, 1002, 0);
    /* RSV1 set */
    expect_bad("\xc1\x81\0\0\0\0x", 7, 1002, 0);
    /* opcode 3 */
    expect_bad("\x83\x80\0\0\0\0", 6, 1002, 0);
    /* opcode 0xB */
    expect_bad("\x8b\x80\0\0\0\0", 6, 1002, 0);
    /* fragmented ping */
    expect_bad("\x09\x80\0\0\0\0", 6, 1002, 0);
    /* ping over 125 bytes (16-bit length) */
    expect_bad("\x89\xfe\x00\x7e\0\0\0\0", 8, 1002, 0);
    /* continuation without a message */
    expect_bad("\x80\x80\0\0\0\0", 6, 1002, 0);
    /* a new text frame inside a fragmented one */
    expect_bad("\x01\x80\0\0\0\0\x81\x80\0\0\0\0", 12, 1002, 0);
    /* 16-bit length for 5 bytes (not the shortest form) */
    expect_bad("\x81\xfe\x00\x05", 4, 1002, 0);
    /* 64-bit length for 300 bytes */
    expect_bad("\x82\xff\0\0\0\0\0\0\x01\x2c", 10, 1002, 0);
    /* 64-bit length with the top bit set */
    expect_bad("\x82\xff\x80\0\0\0\0\0\0\0", 10, 1002, 0);
    /* a frame over max_message, refused before its payload arrives */
    expect_bad("\x82\xff\0\0\0\x01\0\0\0\0", 10, 1009, 1 << 20);
    /* fragments adding up to over max_message */
    expect_bad("\x02\x84\0\0\0\0abcd\x00\x84\0\0\0\0efgh", 20, 1009, 6);
    /* close with a one-byte payload, a bad code, a bad reason */
    expect_bad("\x88\x81\0\0\0\0\x03", 7, 1002, 0);
    expect_bad("\x88\x82\0\0\0\0\x03\xed", 8, 1002, 0);
    expect_bad("\x88\x84\0\0\0\0\x03\xe8\xc3\x28", 10, 1007, 0);
    /* text that is not UTF-8 */
    expect_bad("\x81\x82\0\0\0\0\xc3\x28", 8, 1007, 0);
}

/* ---- the HTTP server's upgrade, on a socket-less connection ---- */

struct up {
    struct sl_buf got; /* bytes the protocol received */
    struct sl_http_conn *conn;
};

static void up_on_data(struct sl_http_conn *c, const char *p, size_t n, void *ud)
{
    struct up *u = ud;
    assert_ptr_equal(c, u->conn);
    sl_buf_append(&u->got, p, n);
}

static void up_on_closed(void *ud)
{
    (void)ud;
}

static const struct sl_http_upgrade_ops up_ops = {.on_data = up_on_data, .on_closed = up_on_closed};

static void h_upgrade(struct sl_http_request *req, void *ud)
{
    struct up *u = ud;
    const struct sl_bytes *key = sl_http_req_header(req, "Sec-WebSocket-Key");
    if (!key || !sl_ws_key_valid(*key)) {
        sl_http_respond_text(req, 400, "not a websocket handshake");
        return;
    }
    char accept[SL_WS_ACCEPT_LEN];
    sl_ws_accept_key(*key, accept);
    sl_http_req_add_header(req, "Upgrade", "websocket");
    sl_http_req_add_header(req, "Connection", "Upgrade");
    sl_http_req_add_header(req, "Sec-WebSocket-Accept", accept);
    u->conn = sl_http_respond_upgrade(req, &up_ops, u);
    assert_non_null(u->conn);
}

#define HANDSHAKE                                                                                  \
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"                 \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

/* 101 with the accept key and no body headers; bytes after the request
 * (even in the same read) go to the protocol, not to the HTTP parser; the
 * protocol's writes follow the 101. A refused handshake stays HTTP. */
static void test_server_upgrade(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_http_server *srv = sl_http_server_new(&loop, NULL);
    struct up u = {.got = SL_BUF_INIT};
    sl_http_server_route(srv, "GET", "/ws", false, h_upgrade, &u);
    struct sl_http_conn *c = sl__http_conn_new_detached(srv);

    struct sl_buf in = SL_BUF_INIT;
    sl_buf_append_str(&in, HANDSHAKE);
    sl_ws_frame_append(&in, SL_WS_TEXT, true, "first", 5, MASK);
    assert_int_equal(sl__http_conn_feed(c, in.data, in.len), 0);
    assert_non_null(u.conn);
    const struct sl_buf *out = sl__http_conn_output(c);
    const char *want = "HTTP/1.1 101 Switching Protocols\r\n";
    assert_true(out->len > strlen(want));
    assert_memory_equal(out->data, want, strlen(want));
    assert_non_null(strstr(out->data, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_non_null(strstr(out->data, "Upgrade: websocket\r\n"));
    assert_null(strstr(out->data, "Content-Length"));
    assert_null(strstr(out->data, "Connection: close"));
    assert_memory_equal(out->data + out->len - 4, "\r\n\r\n", 4);
    size_t head = out->len;

    /* A second frame arrives; the protocol sees both, in order. */
    sl_buf_clear(&in);
    sl_ws_frame_append(&in, SL_WS_TEXT, true, "second", 6, MASK);
    assert_int_equal(sl__http_conn_feed(c, in.data, in.len), 0);
    struct sl_ws_parser p;
    sl_ws_parser_init(&p, 0);
    sl_ws_parser_feed(&p, u.got.data, u.got.len);
    struct sl_ws_msg m;
    assert_int_equal(sl_ws_parser_next(&p, &m), 1);
    assert_int_equal(m.payload.len, 5);
    assert_memory_equal(m.payload.ptr, "first", 5);
    assert_int_equal(sl_ws_parser_next(&p, &m), 1);
    assert_memory_equal(m.payload.ptr, "second", 6);
    assert_int_equal(sl_ws_parser_next(&p, &m), 0);
    sl_ws_parser_release(&p);

    /* The protocol writes after the 101. */
    struct sl_buf f = SL_BUF_INIT;
    sl_ws_frame_append(&f, SL_WS_TEXT, true, "hi", 2, NULL);
    sl_http_upgraded_write(u.conn, &f);
    assert_int_equal(f.len, 0); /* taken */
    assert_int_equal(out->len, head + 4);
    assert_memory_equal(out->data + head, "\x81\x02hi", 4);
    sl__http_conn_free_detached(c);

    /* No key: an ordinary 400, and the connection closes (no upgrade). */
    struct sl_http_conn *c2 = sl__http_conn_new_detached(srv);
    static const char bad[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n\r\n";
    assert_int_equal(sl__http_conn_feed(c2, bad, sizeof bad - 1), 1);
    assert_memory_equal(sl__http_conn_output(c2)->data, "HTTP/1.1 400", 12);
    sl__http_conn_free_detached(c2);

    sl_buf_release(&in);
    sl_buf_release(&f);
    sl_buf_release(&u.got);
    sl_http_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),     cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_lengths),        cmocka_unit_test(test_fragmentation),
        cmocka_unit_test(test_close_frames),   cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_server_upgrade),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
