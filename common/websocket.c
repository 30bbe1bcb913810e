/* RFC 6455 framing. A frame is parsed only once it is complete in p->in, so
 * the header checks run again on every feed until then; they are a few
 * comparisons. A frame's declared length is checked against max_message
 * before waiting for its payload, so a client cannot make us buffer more. */
#include "common/websocket.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/utf8.h"

#define WS_GUID          "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define DEF_MAX_MESSAGE  (1u << 20)
#define CLOSE_NO_STATUS  1005
#define MAX_HEADER_BYTES 14 /* 2 + 8 (length) + 4 (mask) */

static struct sl_bytes trim(struct sl_bytes v)
{
    while (v.len && (v.ptr[0] == ' ' || v.ptr[0] == '\t')) {
        v.ptr++;
        v.len--;
    }
    while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
        v.len--;
    return v;
}

void sl_ws_accept_key(struct sl_bytes key, char out[SL_WS_ACCEPT_LEN])
{
    key = trim(key);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        abort(); /* out of memory: fatal, as in sl_malloc */
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, key.ptr, key.len);
    EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    /* 20 bytes -> 28 base64 characters and a NUL. */
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool sl_ws_key_valid(struct sl_bytes key)
{
    key = trim(key);
    /* 16 bytes encode to 22 characters and "==". */
    if (key.len != 24 || key.ptr[22] != '=' || key.ptr[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!b64_char(key.ptr[i]))
            return false;
    return true;
}

void sl_ws_frame_append(struct sl_buf *out, enum sl_ws_opcode op, bool fin, const void *p, size_t n,
                        const uint8_t *mask)
{
    uint8_t h[MAX_HEADER_BYTES];
    size_t hl = 0;
    h[hl++] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
    uint8_t mbit = mask ? 0x80 : 0;
    if (n < 126) {
        h[hl++] = (uint8_t)(mbit | n);
    } else if (n <= 0xffff) {
        h[hl++] = mbit | 126;
        h[hl++] = (uint8_t)(n >> 8);
        h[hl++] = (uint8_t)n;
    } else {
        h[hl++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    if (mask) {
        memcpy(h + hl, mask, 4);
        hl += 4;
    }
    sl_buf_append(out, h, hl);
    if (!n)
        return;
    char *dst = sl_buf_reserve(out, n);
    memcpy(dst, p, n);
    if (mask)
        for (size_t i = 0; i < n; i++)
            dst[i] ^= (char)mask[i & 3];
    sl_buf_commit(out, n);
}

void sl_ws_close_append(struct sl_buf *out, int code, const char *reason)
{
    char pl[SL_WS_MAX_CONTROL];
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > sizeof pl - 2)
        rl = sizeof pl - 2;
    /* Do not cut a UTF-8 sequence in half. */
    while (rl && !sl_utf8_valid(reason, rl))
        rl--;
    pl[0] = (char)(code >> 8);
    pl[1] = (char)code;
    if (rl)
        memcpy(pl + 2, reason, rl);
    sl_ws_frame_append(out, SL_WS_CLOSE, true, pl, rl + 2, NULL);
}

void sl_ws_parser_init(struct sl_ws_parser *p, size_t max_message)
{
    memset(p, 0, sizeof *p);
    p->max_message = max_message ? max_message : DEF_MAX_MESSAGE;
    p->require_mask = true;
    p->msg_op = -1;
}

void sl_ws_parser_release(struct sl_ws_parser *p)
{
    sl_buf_release(&p->in);
    sl_buf_release(&p->msg);
    sl_buf_release(&p->frame);
}

void sl_ws_parser_feed(struct sl_ws_parser *p, const void *data, size_t n)
{
    if (n && !p->err_code)
        sl_buf_append(&p->in, data, n);
}

static int fail(struct sl_ws_parser *p, int code, const char *reason)
{
    p->err_code = code;
    p->reason = reason;
    sl_buf_clear(&p->in);
    return code == SL_WS_CLOSE_TOO_BIG ? SL_ETOOBIG : SL_EINVAL;
}

/* Close codes a peer may send (7.4): 1000-1003, 1007-1011, 3000-4999. */
static bool close_code_ok(int c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

struct hdr {
    bool fin;
    int op;
    uint64_t len;
    size_t hlen;
    const uint8_t *mask;
};

/* 1: header complete in *h; 0: need more; <0: violation. */
static int parse_header(struct sl_ws_parser *p, struct hdr *h)
{
    const uint8_t *b = (const uint8_t *)p->in.data;
    size_t n = p->in.len;
    if (n < 2)
        return 0;
    h->fin = b[0] & 0x80;
    h->op = b[0] & 0x0f;
    if (b[0] & 0x70)
        return fail(p, SL_WS_CLOSE_PROTOCOL, "reserved bits set");
    bool masked = b[1] & 0x80;
    uint64_t len = b[1] & 0x7f;
    size_t hl = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)b[2] << 8 | b[3];
        hl = 4;
        if (len < 126)
            return fail(p, SL_WS_CLOSE_PROTOCOL, "length not in its shortest form");
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b[2 + i];
        hl = 10;
        if (len >> 63)
            return fail(p, SL_WS_CLOSE_PROTOCOL, "length has its most significant bit set");
        if (len <= 0xffff)
            return fail(p, SL_WS_CLOSE_PROTOCOL, "length not in its shortest form");
    }
    bool control = h->op & 0x08;
    if ((h->op > SL_WS_BINARY && h->op < SL_WS_CLOSE) || h->op > SL_WS_PONG)
        return fail(p, SL_WS_CLOSE_PROTOCOL, "unknown opcode");
    if (control && !h->fin)
        return fail(p, SL_WS_CLOSE_PROTOCOL, "fragmented control frame");
    if (control && len > SL_WS_MAX_CONTROL)
        return fail(p, SL_WS_CLOSE_PROTOCOL, "control frame payload over 125 bytes");
    if (p->require_mask && !masked)
        return fail(p, SL_WS_CLOSE_PROTOCOL, "client frame not masked");
    if (h->op == SL_WS_CONT && p->msg_op < 0)
        return fail(p, SL_WS_CLOSE_PROTOCOL, "continuation frame without a message");
    if ((h->op == SL_WS_TEXT || h->op == SL_WS_BINARY) && p->msg_op >= 0)
        return fail(p, SL_WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
    if (!control && len > p->max_message - (h->op == SL_WS_CONT ? p->msg.len : 0))
        return fail(p, SL_WS_CLOSE_TOO_BIG, "message too big");
    if (masked) {
        if (n < hl + 4)
            return 0;
        h->mask = b + hl;
        hl += 4;
    } else {
        h->mask = NULL;
    }
    h->len = len;
    h->hlen = hl;
    return 1;
}

/* Copies the frame's payload, unmasked, into dst (appended). */
static void unmask_into(struct sl_buf *dst, const struct hdr *h, const char *src)
{
    char *d = sl_buf_reserve(dst, (size_t)h->len);
    for (size_t i = 0; i < h->len; i++)
        d[i] = h->mask ? (char)(src[i] ^ h->mask[i & 3]) : src[i];
    sl_buf_commit(dst, (size_t)h->len);
}

static int control_msg(struct sl_ws_parser *p, const struct hdr *h, struct sl_ws_msg *m)
{
    m->op = (enum sl_ws_opcode)h->op;
    m->payload = sl_buf_bytes(&p->frame);
    m->close_code = 0;
    if (h->op != SL_WS_CLOSE)
        return 1;
    if (p->frame.len == 1)
        return fail(p, SL_WS_CLOSE_PROTOCOL, "close payload of one byte");
    if (p->frame.len == 0) {
        m->close_code = CLOSE_NO_STATUS;
        return 1;
    }
    const uint8_t *b = (const uint8_t *)p->frame.data;
    m->close_code = b[0] << 8 | b[1];
    if (!close_code_ok(m->close_code))
        return fail(p, SL_WS_CLOSE_PROTOCOL, "invalid close code");
    if (!sl_utf8_valid(p->frame.data + 2, p->frame.len - 2))
        return fail(p, SL_WS_CLOSE_BAD_DATA, "close reason not UTF-8");
    m->payload = sl_bytes(p->frame.data + 2, p->frame.len - 2);
    return 1;
}

int sl_ws_parser_next(struct sl_ws_parser *p, struct sl_ws_msg *m)
{
    if (p->err_code)
        return p->err_code == SL_WS_CLOSE_TOO_BIG ? SL_ETOOBIG : SL_EINVAL;
    for (;;) {
        struct hdr h;
        int r = parse_header(p, &h);
        if (r <= 0)
            return r;
        if (p->in.len - h.hlen < h.len)
            return 0;
        const char *payload = p->in.data + h.hlen;
        if (h.op & 0x08) {
            sl_buf_clear(&p->frame);
            unmask_into(&p->frame, &h, payload);
            sl_buf_consume(&p->in, h.hlen + (size_t)h.len);
            return control_msg(p, &h, m);
        }
        if (h.op != SL_WS_CONT)
            p->msg_op = h.op;
        sl_buf_clear(&p->frame);
        unmask_into(&p->msg, &h, payload);
        sl_buf_consume(&p->in, h.hlen + (size_t)h.len);
        if (!h.fin)
            continue;
        /* Hand the message out through frame; msg is free for the next. */
        struct sl_buf t = p->frame;
        p->frame = p->msg;
        p->msg = t;
        sl_buf_clear(&p->msg);
        m->op = (enum sl_ws_opcode)p->msg_op;
        m->payload = sl_buf_bytes(&p->frame);
        m->close_code = 0;
        p->msg_op = -1;
        if (m->op == SL_WS_TEXT && !sl_utf8_valid(p->frame.data, p->frame.len))
            return fail(p, SL_WS_CLOSE_BAD_DATA, "text message not UTF-8");
        return 1;
    }
}
