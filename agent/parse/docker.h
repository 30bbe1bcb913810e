/* Docker json-file log lines (/var/lib/docker/containers/<id>/<id>-json.log,
 * and what dockershim-era kubelets left under /var/log/pods):
 *
 *   {"log":"text\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
 *
 * "log" is one piece of output: Docker cuts lines at 16 KiB and only the last
 * piece ends with "\n". A piece with the newline is final (the newline is
 * removed); pieces are joined per stream by the shared parser
 * (agent/parse/parser.h, SL_FORMAT_DOCKER).
 *
 * Decoding has a fast path for the exact shape Docker writes (keys log,
 * stream, time in that order, no whitespace); anything else (extra "attrs",
 * other key order, spacing) is decoded by jansson. The fast path accepts only
 * what jansson accepts and decodes it the same way (tests/fuzz/fuzz_docker.c
 * checks this on every input). Strings are fully unescaped, \u0000 included
 * (lines are bytes). Thread-safe (no state). */
#ifndef SL_AGENT_DOCKER_H
#define SL_AGENT_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/parse/parse.h"
#include "common/buf.h"

/* Decodes one physical line s[0..n) (no newline). On success the piece's text
 * (without its trailing "\n") replaces text's contents, and ts, stream, final
 * are set; returns 0. Else SL_EINVAL with a static reason. */
int sl_docker_parse_line(const char *s, size_t n, struct sl_buf *text, int64_t *ts,
                         enum sl_log_stream *stream, bool *final, const char **reason);

/* The two decoders, for the fuzz target's comparison. Both leave the raw
 * "log" value (with any trailing newline) in *log, and the stream and time
 * strings in the arrays. fast returns 1 (decoded) or 0 (not the plain shape
 * or not sure it is valid: ask jansson); slow returns 0 or SL_EINVAL. */
struct sl_docker_raw {
    struct sl_buf *log;
    char stream[16];
    size_t stream_len;
    char time[64];
    size_t time_len;
};
int sl__docker_fast(const char *s, size_t n, struct sl_docker_raw *out);
int sl__docker_slow(const char *s, size_t n, struct sl_docker_raw *out, const char **reason);

#endif
