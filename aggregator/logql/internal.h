/* Internal interfaces between the files of aggregator/logql/: the parser's
 * state and helpers (parse.c, parse_stage.c), IP matching (ip.c), pattern
 * expressions (pattern.c), templates (template.c), the printer (format.c)
 * and the pipeline's label builder (pipeline.c, parsers.c). Not for use
 * outside this folder. */
#ifndef SL_LOGQL_INTERNAL_H
#define SL_LOGQL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/logql/lex.h"
#include "aggregator/logql/logql.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"

/* ---- parser ---- */

struct sl__logql_parser {
    struct sl_logql_query *q;
    struct sl__logql_token *t;
    size_t nt, pos;
    struct sl_buf *err;
};

const struct sl__logql_token *sl__logql_peek(const struct sl__logql_parser *p, size_t ahead);
const struct sl__logql_token *sl__logql_next(struct sl__logql_parser *p);
int sl__logql_syntax_error(struct sl__logql_parser *p, const struct sl__logql_token *t,
                           const char *expecting);
/* "parse error at line L, col C: <msg>" (or "parse error : <msg>" without t). */
int sl__logql_error_at(struct sl__logql_parser *p, const struct sl__logql_token *t, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));
int sl__logql_unsupported(struct sl__logql_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void *sl__logql_grow(struct sl_arena *a, void *arr, size_t n, size_t elem);
int sl__logql_compile_regex(struct sl__logql_parser *p, const struct sl__logql_token *t,
                            bool anchored, struct sl_logql_regex **out);
bool sl__logql_is_ident(const struct sl__logql_token *t, const char *s);

int sl__logql_parse_matcher(struct sl__logql_parser *p, struct sl_logql_matcher *m);
/* Parses a json expression (`a.b[0]["c d"]`) into x->path. */
int sl__logql_json_path_parse(struct sl_arena *a, struct sl_bytes expr, struct sl_logql_extract *x,
                              struct sl_buf *err);
/* Names of the capture groups of re, by group number (index 0 is the whole
 * match; unnamed groups have an empty name). Returns the group count + 1. */
size_t sl__logql_regex_names(struct sl_logql_query *q, struct sl_logql_regex *re,
                             struct sl_bytes **names);

/* Pipeline stages after a selector. range: when parsing inside a range
 * aggregation, `| unwrap ...` is accepted and stored there (and label
 * filters after it go to range->post). Stops at the first token that cannot
 * continue a pipeline. */
int sl__logql_parse_pipeline(struct sl__logql_parser *p, struct sl_logql_log_expr *e,
                             struct sl_logql_range_expr *range);

/* ---- numbers, durations, bytes ---- */

/* Go's strconv.ParseFloat: decimal with exponent, hexadecimal with a p
 * exponent, inf/infinity/nan in any case; false for a syntax error or a
 * value beyond a double (ErrRange). */
bool sl__logql_parse_float(struct sl_bytes s, double *out);
/* Appends Go's error for a value sl__logql_parse_float refused
 * ("strconv.ParseFloat: parsing \"x\": invalid syntax" or "...: value out
 * of range"). */
void sl__logql_float_error(struct sl_buf *b, struct sl_bytes s);
/* Go's time.ParseDuration (units ns us µs ms s m h; fractions; sign). */
bool sl__logql_parse_go_duration(struct sl_bytes s, int64_t *out_ns);
/* go-humanize ParseBytes ("10KB", "1.5 MiB", "42"). */
bool sl__logql_parse_bytes(struct sl_bytes s, uint64_t *out);
/* Go's error text for a value the two parsers above refuse, appended to b
 * ("time: missing unit in duration \"90\"", "unhandled size name: xb"). */
void sl__logql_go_duration_error(struct sl_buf *b, struct sl_bytes s);
void sl__logql_bytes_error(struct sl_buf *b, struct sl_bytes s);
/* Prometheus model.Duration text ("1h30m", "5m", "0s"). */
void sl__logql_format_model_duration(struct sl_buf *b, int64_t ns);

/* ---- IP ---- */

/* Parses an address, CIDR or range; false if invalid. */
bool sl__logql_ip_parse(struct sl_bytes s, struct sl_logql_ip *out);
/* True if the text v is one address inside m. */
bool sl__logql_ip_match(const struct sl_logql_ip *m, struct sl_bytes v);
/* True if any address found in line is inside m (Loki's ip() line filter). */
bool sl__logql_ip_in_line(const struct sl_logql_ip *m, struct sl_bytes line);

/* ---- pattern expressions ---- */

int sl__logql_pattern_parse(struct sl_arena *a, struct sl_bytes text, struct sl_logql_pattern **out,
                            struct sl_buf *err);
/* Names of the captures (named, not "_"), in order. */
size_t sl__logql_pattern_names(const struct sl_logql_pattern *pt, const struct sl_bytes **names);
/* Matches line; on success writes up to pattern_names() values (views into
 * line) and returns how many matched (Loki stops at the first mismatch and
 * keeps what was captured before it). */
size_t sl__logql_pattern_match(const struct sl_logql_pattern *pt, struct sl_bytes line,
                               struct sl_bytes *vals);

/* ---- templates (Go text/template subset) ---- */

struct sl__logql_tmpl_ctx {
    /* Value of a label (false: absent, renders as ""). */
    bool (*get)(void *ud, struct sl_bytes name, struct sl_bytes *val);
    void *ud;
    struct sl_bytes line; /* __line__ */
    int64_t ts;           /* __timestamp__, ns */
    struct sl_logql_query *q;
    struct sl_arena *scratch; /* strings made while rendering */
};

/* Parses a template; SL_EINVAL with Go's wording in err. */
int sl__logql_template_parse(struct sl_logql_query *q, struct sl_bytes text,
                             struct sl_logql_template **out, struct sl_buf *err);
/* Renders into out (appended). On an execution error returns SL_EINVAL with
 * the reason in err (TemplateFormatErr's details); out may hold a prefix. */
int sl__logql_template_exec(const struct sl_logql_template *t, const struct sl__logql_tmpl_ctx *c,
                            struct sl_buf *out, struct sl_buf *err);

bool sl__logql_line_filter_pass(struct sl_logql_query *q, const struct sl_logql_line_filter *f,
                                struct sl_bytes line);

/* ---- printer ---- */

void sl__logql_format_log_expr(const struct sl_logql_log_expr *e, struct sl_buf *out);
void sl__logql_format_label_filter(const struct sl_logql_label_filter *f, struct sl_buf *out);
void sl__logql_format_float(struct sl_buf *out, double v);

/* ---- label filter and drop/keep evaluation over a label getter ---- */

/* Loki's names for __error__ values. */
#define SL__ERR_JSON      "JSONParserErr"
#define SL__ERR_LOGFMT    "LogfmtParserErr"
#define SL__ERR_LABEL     "LabelFilterErr"
#define SL__ERR_TEMPLATE  "TemplateFormatErr"
#define SL__ERR_SAMPLE    "SampleExtractionErr"
#define SL__ERROR_LABEL   "__error__"
#define SL__DETAILS_LABEL "__error_details__"

#endif
