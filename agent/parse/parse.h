/* What every log-line format parser of the agent produces, and the formats.
 *
 * Parsers are streaming and file-offset aware: they are fed the bytes of one
 * file in order and report, with every entry, the offset from which a restart
 * would lose nothing that is not yet delivered (safe_off). The framing, the
 * joining of partial pieces per stream and the splitting of long lines are
 * shared by every format (agent/parse/parser.h); cri.h and docker.h decode one
 * physical line each. */
#ifndef SL_AGENT_PARSE_H
#define SL_AGENT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

enum sl_log_format {
    SL_FORMAT_CRI = 0, /* <RFC3339Nano> <stdout|stderr> <P|F> <text> (kubelet) */
    SL_FORMAT_DOCKER,  /* {"log":"...","stream":"stdout","time":"..."} (json-file) */
    SL_FORMAT_RAW,     /* one line per entry, timestamped when read */
};

/* "cri", "docker" or "raw" -> *out. Returns 0 or SL_EINVAL. */
int sl_log_format_parse(const char *s, enum sl_log_format *out);
const char *sl_log_format_name(enum sl_log_format f);

enum sl_log_stream { SL_STREAM_STDOUT = 0, SL_STREAM_STDERR = 1 };

struct sl_parsed_entry {
    int64_t ts_ns;
    enum sl_log_stream stream;
    struct sl_bytes line; /* borrowed: valid during the callback only */
    /* One piece of a line longer than the parser's max line size: such lines
     * are split into max-size entries (the line's timestamp, plus 1 ns per
     * piece before), never cut. Set on every piece of the line, the last one included. */
    bool split;
    /* If this entry and all entries before it are delivered, reading may
     * restart at safe_off: the start of the first line not yet complete
     * (an unterminated partial of either stream), else the end of the last
     * line consumed. */
    uint64_t safe_off;
};

struct sl_parse_cbs {
    void (*entry)(void *ud, const struct sl_parsed_entry *e);
    /* A line that could not be parsed; it is skipped. line is borrowed. */
    void (*malformed)(void *ud, struct sl_bytes line, const char *reason);
};

#endif
