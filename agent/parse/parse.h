/* What every log-line format parser of the agent produces (CRI today; Docker
 * json-file and raw lines will sit next to cri.c behind this same entry type).
 *
 * Parsers are streaming and file-offset aware: they are fed the bytes of one
 * file in order and report, with every entry, the offset from which a restart
 * would lose nothing that is not yet delivered (safe_off). */
#ifndef SL_AGENT_PARSE_H
#define SL_AGENT_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/bytes.h"

enum sl_log_format { SL_FORMAT_CRI = 0 /* , SL_FORMAT_DOCKER, SL_FORMAT_RAW */ };

enum sl_log_stream { SL_STREAM_STDOUT = 0, SL_STREAM_STDERR = 1 };

struct sl_parsed_entry {
    int64_t ts_ns;
    enum sl_log_stream stream;
    struct sl_bytes line; /* borrowed: valid during the callback only */
    bool truncated;       /* cut at the parser's max line size */
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
