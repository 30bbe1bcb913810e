/* CRI container log lines (what the kubelet writes under /var/log/pods):
 *
 *   <RFC3339Nano timestamp> <stdout|stderr> <P|F>[:more tags] <text>\n
 *
 * P marks a partial piece, F the final one; pieces are joined per stream
 * (stdout and stderr apart), up to max_line bytes: longer lines are cut there
 * and reported with truncated = true. The joined entry carries the timestamp
 * of its first piece. A physical line that is longer than what the caller can
 * buffer is handled through `force` (see sl_cri_feed). Malformed lines are
 * reported through cbs->malformed and skipped.
 *
 * One struct sl_cri per file. Not thread-safe. */
#ifndef SL_AGENT_CRI_H
#define SL_AGENT_CRI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/parse/parse.h"
#include "common/buf.h"

struct sl_cri_partial {
    struct sl_buf buf;
    bool active;
    bool truncated;
    int64_t ts_ns;
    uint64_t start_off; /* file offset of the first piece's line */
};

struct sl_cri {
    size_t max_line;
    struct sl_cri_partial part[2]; /* by enum sl_log_stream */
    /* Continuation of a physical line cut by a forced feed. */
    bool cont;
    bool cont_skip;  /* the line's header was malformed: drop until newline */
    bool cont_final; /* tag F */
    int cont_stream;
    uint64_t cont_start;   /* file offset of the cut line */
    uint64_t consumed_end; /* file offset after the last consumed byte */
};

/* start_off: file offset of the first byte that will be fed. */
void sl_cri_init(struct sl_cri *p, size_t max_line, uint64_t start_off);
void sl_cri_release(struct sl_cri *p);
/* Forgets partial state (e.g. after a truncation) and restarts at start_off. */
void sl_cri_reset(struct sl_cri *p, uint64_t start_off);

/* Parses the complete lines in data[0..n), which must continue exactly where
 * the previous feed stopped consuming. Returns the number of bytes consumed
 * (through the last newline); the caller feeds the rest again later with more
 * data. With force, everything is consumed: an unterminated tail is taken as
 * the start of a long physical line whose remainder comes in later feeds.
 * Callbacks run synchronously; entry lines are valid only during the call. */
size_t sl_cri_feed(struct sl_cri *p, const char *data, size_t n, bool force,
                   const struct sl_parse_cbs *cbs, void *ud);

/* Restart offset if every entry emitted so far is delivered. */
uint64_t sl_cri_safe_off(const struct sl_cri *p);

/* Parses one line's header (no newline). On success sets ts, stream, final
 * and text (the rest, possibly empty) and returns 0; else SL_EINVAL and a
 * static reason. Exposed for tests. */
int sl_cri_parse_header(const char *s, size_t n, int64_t *ts, enum sl_log_stream *stream,
                        bool *final, struct sl_bytes *text, const char **reason);

#endif
