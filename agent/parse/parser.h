/* The streaming line parser of one file, for any enum sl_log_format.
 *
 * Framing: complete lines (through '\n') are parsed; an incomplete last line
 * is not consumed (the caller feeds it again with more data), unless the feed
 * is forced (the caller's buffer is full without a newline) and the data
 * holds no complete line: then the bytes are taken as the start of a long
 * physical line whose rest comes later.
 *
 * Joining: pieces of one logical line (CRI P...F, Docker pieces without a
 * trailing "\n") are joined per stream, stdout and stderr apart; the entry
 * carries the timestamp of its first piece. Splitting: a logical line longer
 * than max_line is emitted as several entries of max_line bytes (the last
 * one shorter), each marked split and timestamped 1 ns after the previous
 * piece (identical pieces must not look like duplicates); nothing is cut. Raw lines have no
 * pieces; they are timestamped with the wall clock when read.
 *
 * Offsets: every entry carries safe_off (parse.h); sl_parser_safe_off() is
 * the same for "everything emitted so far is delivered".
 *
 * One struct per file, embedded by its owner. Not thread-safe. */
#ifndef SL_AGENT_PARSER_H
#define SL_AGENT_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/parse/parse.h"
#include "common/buf.h"

struct sl_parser_part {
    struct sl_buf buf;
    bool active;
    bool split;
    uint32_t pieces; /* split entries emitted so far */
    int64_t ts_ns;
    uint64_t start_off; /* file offset of the first piece's physical line */
};

struct sl_parser {
    enum sl_log_format fmt;
    size_t max_line;
    struct sl_parser_part part[2]; /* by enum sl_log_stream */
    uint64_t consumed_end;         /* file offset after the last consumed byte */
    /* Continuation of a physical line cut by a forced feed. */
    bool cont;
    bool cont_skip;  /* malformed or too long: drop until the newline */
    bool cont_final; /* CRI tag F / raw */
    int cont_stream;
    uint64_t cont_start;    /* file offset of the cut line */
    struct sl_buf phys;     /* docker: the cut physical line so far */
    struct sl_buf text;     /* docker: decoded text of one line */
    int64_t (*clock)(void); /* raw timestamps; sl_now_ns unless a test sets it */
};

/* start_off: file offset of the first byte that will be fed. */
void sl_parser_init(struct sl_parser *p, enum sl_log_format fmt, size_t max_line,
                    uint64_t start_off);
void sl_parser_release(struct sl_parser *p);
/* Forgets partial state (e.g. after a truncation) and restarts at start_off. */
void sl_parser_reset(struct sl_parser *p, uint64_t start_off);

/* Parses the complete lines in data[0..n), which must continue exactly where
 * the previous feed stopped consuming. Returns the number of bytes consumed
 * (through the last newline). With force and no newline in data, everything
 * is consumed (see above).
 * Callbacks run synchronously; entry lines are valid only during the call. */
size_t sl_parser_feed(struct sl_parser *p, const char *data, size_t n, bool force,
                      const struct sl_parse_cbs *cbs, void *ud);

/* Restart offset if every entry emitted so far is delivered. */
uint64_t sl_parser_safe_off(const struct sl_parser *p);

/* Longest physical Docker line buffered across forced feeds: Docker writes
 * pieces of at most 16 KiB of text, at most 6 bytes of JSON per byte. Longer
 * lines are not Docker's: counted as malformed and skipped. */
#define SL_DOCKER_MAX_PHYS (1024 * 1024)

#endif
