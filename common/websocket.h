/* WebSocket (RFC 6455), server side: the opening handshake's checks and
 * Sec-WebSocket-Accept, frame encoding, and a parser for client frames.
 *
 * No I/O here: the HTTP server hands the upgraded connection's bytes to the
 * caller (common/http_server.h, sl_http_respond_upgrade), which feeds them
 * to a parser and writes the frames it encodes.
 *
 * The parser enforces what a server must (section 5): client frames are
 * masked, RSV bits are zero (no extensions are negotiated), opcodes are
 * known, control frames are final and at most 125 bytes, lengths use the
 * shortest form and fit 63 bits, continuations follow a started message, a
 * close payload is empty or a valid code plus UTF-8, and text messages are
 * UTF-8. A violation is an error with the close code to send (1002, 1007 or
 * 1009) and a reason; the caller then sends that close and drops the
 * connection. Messages are bounded by max_message bytes.
 *
 * Threading: none; one parser per connection. Pure functions are
 * thread-safe. */
#ifndef SL_WEBSOCKET_H
#define SL_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"

enum sl_ws_opcode {
    SL_WS_CONT = 0x0,
    SL_WS_TEXT = 0x1,
    SL_WS_BINARY = 0x2,
    SL_WS_CLOSE = 0x8,
    SL_WS_PING = 0x9,
    SL_WS_PONG = 0xA,
};

/* Close status codes (RFC 6455 section 7.4.1). */
enum {
    SL_WS_CLOSE_NORMAL = 1000,
    SL_WS_CLOSE_GOING_AWAY = 1001,
    SL_WS_CLOSE_PROTOCOL = 1002,
    SL_WS_CLOSE_BAD_DATA = 1007,
    SL_WS_CLOSE_POLICY = 1008,
    SL_WS_CLOSE_TOO_BIG = 1009,
    SL_WS_CLOSE_INTERNAL = 1011,
};

/* Length of a Sec-WebSocket-Accept value plus its NUL. */
#define SL_WS_ACCEPT_LEN 29
/* Largest control frame payload. */
#define SL_WS_MAX_CONTROL 125

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64 of the SHA-1
 * of the key (as sent, whitespace trimmed) and the RFC's GUID. */
void sl_ws_accept_key(struct sl_bytes key, char out[SL_WS_ACCEPT_LEN]);

/* True if key is a valid Sec-WebSocket-Key: base64 of 16 bytes. */
bool sl_ws_key_valid(struct sl_bytes key);

/* Appends one frame (FIN set when fin) with payload p[0..n) to out. mask is
 * NULL for a server frame; a client (tests) passes 4 bytes to mask with. */
void sl_ws_frame_append(struct sl_buf *out, enum sl_ws_opcode op, bool fin, const void *p, size_t n,
                        const uint8_t *mask);
/* A close frame with a status code and a reason (cut to fit 125 bytes). */
void sl_ws_close_append(struct sl_buf *out, int code, const char *reason);

/* A complete message or control frame from the parser. payload is valid
 * until the next call to sl_ws_parser_next or sl_ws_parser_release. */
struct sl_ws_msg {
    enum sl_ws_opcode op; /* TEXT, BINARY, CLOSE, PING or PONG */
    struct sl_bytes payload;
    int close_code; /* CLOSE: the peer's code, 1005 when none was sent */
};

struct sl_ws_parser {
    size_t max_message;  /* 0: 1 MiB */
    bool require_mask;   /* true for a server (set by init) */
    struct sl_buf in;    /* received, not yet parsed */
    struct sl_buf msg;   /* a fragmented message being assembled */
    struct sl_buf frame; /* unmasked payload of the last frame returned */
    int msg_op;          /* opcode of the message in msg; -1: none */
    /* after an error: */
    int err_code;       /* close code to send */
    const char *reason; /* static string */
};

void sl_ws_parser_init(struct sl_ws_parser *p, size_t max_message);
void sl_ws_parser_release(struct sl_ws_parser *p);
/* Appends received bytes (copied). */
void sl_ws_parser_feed(struct sl_ws_parser *p, const void *data, size_t n);
/* Returns 1 with *m set when a message or control frame is complete, 0 when
 * more bytes are needed, or SL_EINVAL (protocol violation) / SL_ETOOBIG
 * (over max_message) with p->err_code and p->reason set; the parser then
 * stays failed. */
int sl_ws_parser_next(struct sl_ws_parser *p, struct sl_ws_msg *m);

#endif
