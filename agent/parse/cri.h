/* CRI container log lines (what the kubelet writes under /var/log/pods):
 *
 *   <RFC3339Nano timestamp> <stdout|stderr> <P|F>[:more tags] <text>\n
 *
 * P marks a partial piece, F the final one; pieces are joined per stream
 * (stdout and stderr apart) and lines longer than max_line are split, by the
 * shared parser (agent/parse/parser.h). struct sl_cri is that parser set to
 * SL_FORMAT_CRI; the functions below are kept for the CRI-only callers.
 *
 * One struct sl_cri per file. Not thread-safe. */
#ifndef SL_AGENT_CRI_H
#define SL_AGENT_CRI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/parse/parse.h"
#include "agent/parse/parser.h"

struct sl_cri {
    struct sl_parser p;
};

/* start_off: file offset of the first byte that will be fed. */
void sl_cri_init(struct sl_cri *c, size_t max_line, uint64_t start_off);
void sl_cri_release(struct sl_cri *c);
/* Forgets partial state (e.g. after a truncation) and restarts at start_off. */
void sl_cri_reset(struct sl_cri *c, uint64_t start_off);
/* sl_parser_feed() for CRI. */
size_t sl_cri_feed(struct sl_cri *c, const char *data, size_t n, bool force,
                   const struct sl_parse_cbs *cbs, void *ud);
/* Restart offset if every entry emitted so far is delivered. */
uint64_t sl_cri_safe_off(const struct sl_cri *c);

/* Parses one line's header (no newline). On success sets ts, stream, final
 * and text (the rest, possibly empty) and returns 0; else SL_EINVAL and a
 * static reason. */
int sl_cri_parse_header(const char *s, size_t n, int64_t *ts, enum sl_log_stream *stream,
                        bool *final, struct sl_bytes *text, const char **reason);

#endif
