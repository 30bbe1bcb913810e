/* LogQL-lite (DESIGN.md "LogQL-lite"): lexer, parser, canonical printer and
 * evaluation, with Loki's semantics:
 *
 *   selectors       {app="api", env!="dev", pod=~"api-.*", ns!~"kube-.*"}
 *   line filters    |= != |~ !~ "x", ip("cidr")
 *   parsers         | json [a="path.x[0]", ...]  | logfmt [--strict] [--keep-empty] [a="k", ...]
 *                   | regexp "(?P<x>..)"  | pattern "<a> - <b>"  | unpack
 *   label filters   | x="v", x=~"re", n>5, d>=1s, b<10KB, ip=ip("10.0.0.0/8"), and/or/(,)
 *   formatting      | line_format "{{.x}}"  | label_format a=b, c="{{.x}}"
 *                   | drop a, b="v"  | keep a  | decolorize
 *   metric queries  range aggregations (with unwrap, offset), vector aggregations
 *                   (by/without), binary operators with vector matching,
 *                   vector(), label_replace(), literals
 *
 * Anything else valid in LogQL is refused with SL_EUNSUPP and a message
 * naming the construct (`unsupported in this version: ...`); it is never
 * silently ignored. Syntax errors are SL_EINVAL with Loki's wording:
 * `parse error at line 1, col 17: syntax error: unexpected ...`.
 *
 * Regexes are PCRE2 with JIT. Stream matchers (and label matchers) are fully
 * anchored (PCRE2_ANCHORED | PCRE2_ENDANCHORED, Go's ^(?:re)$); line filter
 * regexes are not. Every match runs with a match limit, so no pattern can
 * hang a querier; a match that hits the limit counts as "no match" and is
 * counted in sl_logql_query.regex_limit_hits.
 *
 * Ownership: a query owns all its memory (one arena plus the compiled
 * regexes); strings in the AST point into that arena. Pipelines and metric
 * evaluations borrow the query and own their own arenas (no malloc per line).
 * Threading: parsing is pure and thread-safe. A parsed query carries PCRE2
 * match state, so one query (and its pipelines) may be evaluated by one
 * thread at a time. */
#ifndef SL_LOGQL_H
#define SL_LOGQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/labels.h"

/* Match limit handed to pcre2_set_match_limit (and used for the JIT). */
#define SL_LOGQL_REGEX_MATCH_LIMIT 1000000u
/* Upper bound on the query text, to keep a hostile request cheap. */
#define SL_LOGQL_MAX_QUERY_BYTES (128 * 1024)

struct sl_logql_regex; /* compiled PCRE2 pattern, opaque */
struct sl_logql_query;

enum sl_logql_match_op {
    SL_LOGQL_MATCH_EQ,  /* =  */
    SL_LOGQL_MATCH_NEQ, /* != */
    SL_LOGQL_MATCH_RE,  /* =~ */
    SL_LOGQL_MATCH_NRE, /* !~ */
};

struct sl_logql_matcher {
    struct sl_bytes name;
    struct sl_bytes value; /* unescaped */
    enum sl_logql_match_op op;
    struct sl_logql_regex *re; /* RE and NRE only */
};

/* An IP matcher: a single address, a CIDR or a range a-b (v4 or v6). */
struct sl_logql_ip {
    struct sl_bytes text; /* as written */
    uint8_t lo[16], hi[16];
    bool v6;
};

enum sl_logql_filter_op {
    SL_LOGQL_FILTER_CONTAINS,     /* |= */
    SL_LOGQL_FILTER_NOT_CONTAINS, /* != */
    SL_LOGQL_FILTER_MATCH,        /* |~ */
    SL_LOGQL_FILTER_NOT_MATCH,    /* !~ */
    SL_LOGQL_FILTER_IP,           /* |= ip("...") */
    SL_LOGQL_FILTER_NOT_IP,       /* != ip("...") */
};

struct sl_logql_line_filter {
    enum sl_logql_filter_op op;
    struct sl_bytes value;     /* unescaped */
    struct sl_logql_regex *re; /* MATCH and NOT_MATCH only */
    struct sl_logql_ip ip;     /* IP and NOT_IP */
    /* `|= "a" or "b"`: further values of the same polarity. A positive
     * filter passes if any value matches, a negative one if none does. */
    struct sl_logql_line_filter *alt;
};

/* Comparison of a label filter or a binary operator. */
enum sl_logql_cmp {
    SL_LOGQL_CMP_EQ,  /* == (also = before a number) */
    SL_LOGQL_CMP_NEQ, /* != */
    SL_LOGQL_CMP_GT,
    SL_LOGQL_CMP_GTE,
    SL_LOGQL_CMP_LT,
    SL_LOGQL_CMP_LTE,
};

enum sl_logql_lf_kind {
    SL_LOGQL_LF_AND,
    SL_LOGQL_LF_OR,
    SL_LOGQL_LF_STRING,   /* name op "value" (op: = != =~ !~) */
    SL_LOGQL_LF_NUMBER,   /* name cmp 1.5 */
    SL_LOGQL_LF_DURATION, /* name cmp 5s */
    SL_LOGQL_LF_BYTES,    /* name cmp 10KB */
    SL_LOGQL_LF_IP,       /* name = ip("...") or != */
};

struct sl_logql_label_filter {
    enum sl_logql_lf_kind kind;
    struct sl_logql_label_filter *l, *r; /* AND, OR */
    struct sl_logql_matcher m;           /* STRING; IP: name, op EQ or NEQ */
    enum sl_logql_cmp cmp;               /* NUMBER, DURATION, BYTES */
    double num;
    int64_t ival;          /* DURATION: ns; BYTES: bytes */
    struct sl_bytes text;  /* DURATION, BYTES: as written, for printing */
    struct sl_logql_ip ip; /* IP */
};

/* One `name="expr"` of json/logfmt with expressions, or one drop/keep item. */
struct sl_logql_extract {
    struct sl_bytes name;
    struct sl_bytes expr;  /* as written (json path or logfmt key) */
    struct sl_bytes *path; /* json: keys; an index is stored as "[N]" */
    size_t npath;
};

struct sl_logql_template; /* parsed Go template, opaque (template.h) */
struct sl_logql_pattern;  /* parsed pattern expression, opaque */

struct sl_logql_label_fmt {
    struct sl_bytes dst;
    struct sl_bytes src;            /* rename: the source label */
    struct sl_bytes tmpl_text;      /* template: its text */
    struct sl_logql_template *tmpl; /* NULL for a rename */
};

enum sl_logql_stage_kind {
    SL_LOGQL_STAGE_LINE_FILTER,
    SL_LOGQL_STAGE_JSON,
    SL_LOGQL_STAGE_LOGFMT,
    SL_LOGQL_STAGE_REGEXP,
    SL_LOGQL_STAGE_PATTERN,
    SL_LOGQL_STAGE_UNPACK,
    SL_LOGQL_STAGE_LABEL_FILTER,
    SL_LOGQL_STAGE_LINE_FORMAT,
    SL_LOGQL_STAGE_LABEL_FORMAT,
    SL_LOGQL_STAGE_DROP,
    SL_LOGQL_STAGE_KEEP,
    SL_LOGQL_STAGE_DECOLORIZE,
};

struct sl_logql_stage {
    enum sl_logql_stage_kind kind;
    struct sl_logql_line_filter line_filter; /* LINE_FILTER */
    struct sl_logql_extract *ex;             /* JSON, LOGFMT (expressions) */
    size_t nex;
    bool strict, keep_empty;   /* LOGFMT flags */
    struct sl_bytes text;      /* REGEXP, PATTERN, LINE_FORMAT: as written */
    struct sl_logql_regex *re; /* REGEXP */
    struct sl_bytes *names;    /* REGEXP: capture names by group (NULL: unnamed) */
    size_t nnames;
    struct sl_logql_pattern *pattern; /* PATTERN */
    struct sl_logql_label_filter *lf; /* LABEL_FILTER */
    struct sl_logql_template *tmpl;   /* LINE_FORMAT */
    struct sl_logql_label_fmt *fmts;  /* LABEL_FORMAT */
    size_t nfmts;
    struct sl_logql_matcher *items; /* DROP, KEEP: name alone when value_set false */
    bool *item_has_value;
    size_t nitems;
};

/* A log query: a stream selector and a pipeline. */
struct sl_logql_log_expr {
    struct sl_logql_matcher *matchers;
    size_t nmatchers;
    struct sl_logql_stage *stages;
    size_t nstages;
};

/* Expression kinds. */
enum sl_logql_expr_kind {
    SL_LOGQL_EXPR_LOG,
    SL_LOGQL_EXPR_RANGE,   /* count_over_time(...[5m]) ... */
    SL_LOGQL_EXPR_VECAGG,  /* sum by (x) (...) ... */
    SL_LOGQL_EXPR_BINOP,   /* a + b ... */
    SL_LOGQL_EXPR_LITERAL, /* 1.5 */
    SL_LOGQL_EXPR_VECTOR,  /* vector(1) */
    SL_LOGQL_EXPR_LABEL_REPLACE,
};

enum sl_logql_range_op {
    SL_LOGQL_R_COUNT, /* count_over_time */
    SL_LOGQL_R_RATE,
    SL_LOGQL_R_RATE_COUNTER,
    SL_LOGQL_R_BYTES,      /* bytes_over_time */
    SL_LOGQL_R_BYTES_RATE, /* bytes_rate */
    SL_LOGQL_R_ABSENT,     /* absent_over_time */
    SL_LOGQL_R_SUM,
    SL_LOGQL_R_AVG,
    SL_LOGQL_R_MIN,
    SL_LOGQL_R_MAX,
    SL_LOGQL_R_STDVAR,
    SL_LOGQL_R_STDDEV,
    SL_LOGQL_R_FIRST,
    SL_LOGQL_R_LAST,
    SL_LOGQL_R_QUANTILE,
};

enum sl_logql_unwrap_conv {
    SL_LOGQL_UNWRAP_NONE, /* no unwrap */
    SL_LOGQL_UNWRAP_PLAIN,
    SL_LOGQL_UNWRAP_DURATION, /* duration() and duration_seconds(): seconds */
    SL_LOGQL_UNWRAP_DURATION_SECONDS,
    SL_LOGQL_UNWRAP_BYTES,
};

struct sl_logql_grouping {
    bool present; /* by/without given (possibly with an empty list) */
    bool without;
    struct sl_bytes *names;
    size_t n;
};

struct sl_logql_range_expr {
    enum sl_logql_range_op op;
    struct sl_logql_log_expr log;
    int64_t range_ns, offset_ns;
    enum sl_logql_unwrap_conv conv;
    struct sl_bytes unwrap_label;
    struct sl_logql_label_filter **post; /* label filters after unwrap */
    size_t npost;
    double param; /* quantile */
    struct sl_logql_grouping grouping;
};

enum sl_logql_vecagg_op {
    SL_LOGQL_V_SUM,
    SL_LOGQL_V_AVG,
    SL_LOGQL_V_MIN,
    SL_LOGQL_V_MAX,
    SL_LOGQL_V_COUNT,
    SL_LOGQL_V_STDDEV,
    SL_LOGQL_V_STDVAR,
    SL_LOGQL_V_TOPK,
    SL_LOGQL_V_BOTTOMK,
    SL_LOGQL_V_SORT,
    SL_LOGQL_V_SORT_DESC,
};

struct sl_logql_expr;

struct sl_logql_vecagg_expr {
    enum sl_logql_vecagg_op op;
    struct sl_logql_expr *inner;
    struct sl_logql_grouping grouping;
    int64_t k; /* topk, bottomk */
};

enum sl_logql_binop {
    SL_LOGQL_OP_OR,
    SL_LOGQL_OP_AND,
    SL_LOGQL_OP_UNLESS,
    SL_LOGQL_OP_ADD,
    SL_LOGQL_OP_SUB,
    SL_LOGQL_OP_MUL,
    SL_LOGQL_OP_DIV,
    SL_LOGQL_OP_MOD,
    SL_LOGQL_OP_POW,
    SL_LOGQL_OP_EQ,
    SL_LOGQL_OP_NEQ,
    SL_LOGQL_OP_GT,
    SL_LOGQL_OP_GTE,
    SL_LOGQL_OP_LT,
    SL_LOGQL_OP_LTE,
};

struct sl_logql_binop_expr {
    enum sl_logql_binop op;
    bool return_bool;
    bool on, ignoring; /* vector matching */
    struct sl_bytes *match;
    size_t nmatch;
    int group; /* 0 none, -1 group_left, 1 group_right */
    struct sl_bytes *include;
    size_t ninclude;
    struct sl_logql_expr *lhs, *rhs;
};

struct sl_logql_label_replace_expr {
    struct sl_logql_expr *inner;
    struct sl_bytes dst, repl, src, regex;
    struct sl_logql_regex *re; /* anchored */
};

struct sl_logql_expr {
    enum sl_logql_expr_kind kind;
    union {
        struct sl_logql_log_expr log;
        struct sl_logql_range_expr range;
        struct sl_logql_vecagg_expr agg;
        struct sl_logql_binop_expr bin;
        double literal; /* LITERAL, VECTOR */
        struct sl_logql_label_replace_expr lr;
    } u;
};

struct sl_logql_query {
    struct sl_arena arena; /* AST and its strings */
    struct sl_logql_expr *root;
    struct sl_logql_regex *regexes; /* list of every compiled regex, for freeing */
    uint64_t regex_limit_hits;      /* matches abandoned at the match limit */
};

/* Parses a whole LogQL query. On success returns 0 and a query in *out
 * (caller frees with sl_logql_query_free). On failure *out is NULL and a
 * message is appended to err (if not NULL):
 *   SL_EINVAL   syntax error, invalid string or regex, or a selector without
 *               a non-empty-matching matcher ("parse error ...")
 *   SL_EUNSUPP  valid LogQL outside what is supported
 *               ("unsupported in this version: ...")
 *   SL_ETOOBIG  query longer than SL_LOGQL_MAX_QUERY_BYTES */
int sl_logql_parse(const char *s, size_t n, struct sl_logql_query **out, struct sl_buf *err);

/* Like sl_logql_parse, but the query must be a stream selector alone (the
 * match[] of /series): anything after the selector is SL_EINVAL. */
int sl_logql_parse_selector(const char *s, size_t n, struct sl_logql_query **out,
                            struct sl_buf *err);

void sl_logql_query_free(struct sl_logql_query *q);

/* The log expression of q, or NULL if q is not a log query. */
const struct sl_logql_log_expr *sl_logql_log_expr(const struct sl_logql_query *q);

/* Canonical text of q, appended to out: `{a="b", c=~"d"} |= "x" != "y"`.
 * Strings are quoted as Go's strconv.Quote does. Parsing the canonical text
 * gives the same canonical text. */
void sl_logql_format(const struct sl_logql_query *q, struct sl_buf *out);

/* Appends a Go-quoted ("...") form of v to out. */
void sl_logql_quote(struct sl_buf *out, struct sl_bytes v);

/* True if value satisfies the matcher (an absent label has value ""). */
bool sl_logql_matcher_matches(struct sl_logql_query *q, const struct sl_logql_matcher *m,
                              struct sl_bytes value);

/* True if the label set satisfies every matcher of the log expression. */
bool sl_logql_match_labels(struct sl_logql_query *q, const struct sl_logql_log_expr *e,
                           const struct sl_labels *ls);

/* True if the line passes the line filters that come before every other
 * stage (a cheap pre-filter; the pipeline runs them again). */
bool sl_logql_match_line(struct sl_logql_query *q, const struct sl_logql_log_expr *e,
                         struct sl_bytes line);

/* ---- pipelines: the stages of a log expression, line by line ---- */

struct sl_logql_pipeline;

/* A pipeline for e, a log expression of q (q outlives the pipeline). */
struct sl_logql_pipeline *sl_logql_pipeline_new(struct sl_logql_query *q,
                                                const struct sl_logql_log_expr *e);
void sl_logql_pipeline_free(struct sl_logql_pipeline *p);

/* Sets the stream labels (sorted) for the lines that follow; ls is borrowed
 * until the next call. */
void sl_logql_pipeline_stream(struct sl_logql_pipeline *p, const struct sl_labels *ls);

/* Runs every stage over one line (ts in ns, for __timestamp__). Returns true
 * if the line is kept; then *line_out is the line after line_format and
 * *labels_out the labels after the stages, sorted, with __error__ and
 * __error_details__ when set — both valid until the next call. */
bool sl_logql_pipeline_run(struct sl_logql_pipeline *p, int64_t ts, struct sl_bytes line,
                           struct sl_bytes *line_out, const struct sl_labels **labels_out);

/* sl_logql_pipeline_run for an entry with structured metadata: its nmeta
 * pairs (borrowed for the call) become labels of the entry before the
 * first stage, as in Loki: a name that is also a stream label gets the
 * suffix _extracted, a parsed label of the same name replaces it; label
 * filters, keep/drop, formats and grouping see them, stream selectors do
 * not. nmeta 0 is sl_logql_pipeline_run. */
bool sl_logql_pipeline_run_meta(struct sl_logql_pipeline *p, int64_t ts, struct sl_bytes line,
                                const struct sl_label *meta, size_t nmeta,
                                struct sl_bytes *line_out, const struct sl_labels **labels_out);

/* True if a stage may change the labels (parsers, formats, drop, keep), so
 * entries of one stream may end up in several result streams. (Entries with
 * structured metadata may too, whatever the stages.) */
bool sl_logql_pipeline_changes_labels(const struct sl_logql_pipeline *p);

/* Value of an unwrapped label, converted as Loki does (plain: float;
 * duration()/duration_seconds(): Go duration in seconds; bytes(): humanized
 * bytes). Returns false on a conversion error. */
bool sl_logql_unwrap_convert(enum sl_logql_unwrap_conv conv, struct sl_bytes v, double *out);

/* ---- metric queries ---- */

struct sl_logql_metric;

struct sl_logql_metric_params {
    int64_t start_ns, end_ns; /* range query: steps start, start+step, ... <= end */
    int64_t step_ns;          /* > 0 */
    bool instant;             /* one step at start_ns (= end_ns) */
    size_t max_series;        /* 0: unlimited (limits.max_query_series) */
};

/* Prepares the evaluation of q (a metric query: sl_logql_log_expr(q) is
 * NULL). SL_EINVAL with a message for impossible parameters. */
int sl_logql_metric_new(struct sl_logql_query *q, const struct sl_logql_metric_params *pr,
                        struct sl_logql_metric **out, struct sl_buf *err);
void sl_logql_metric_free(struct sl_logql_metric *m);

/* The data the evaluation needs: nsources log expressions, each over
 * [*from, *through) of entry timestamps. The caller feeds every entry of
 * every stream that sl_logql_metric_stream accepts, stream by stream, in any
 * order of streams and time. */
size_t sl_logql_metric_nsources(const struct sl_logql_metric *m);
const struct sl_logql_log_expr *sl_logql_metric_source(const struct sl_logql_metric *m, size_t i,
                                                       int64_t *from, int64_t *through);
/* Starts a stream for source i; false if its labels do not match (skip it). */
bool sl_logql_metric_stream(struct sl_logql_metric *m, size_t i, const struct sl_labels *ls);
void sl_logql_metric_entry(struct sl_logql_metric *m, size_t i, int64_t ts, struct sl_bytes line);
/* The same for an entry with structured metadata (see
 * sl_logql_pipeline_run_meta; borrowed for the call). */
void sl_logql_metric_entry_meta(struct sl_logql_metric *m, size_t i, int64_t ts,
                                struct sl_bytes line, const struct sl_label *meta, size_t nmeta);

/* Computes the result once every source was fed. SL_EINVAL with Loki's
 * message on a pipeline error (a series with __error__) or SL_ETOOBIG when a
 * result has more than max_series series. */
int sl_logql_metric_eval(struct sl_logql_metric *m, struct sl_buf *err);

/* Writes `"resultType":"matrix"|"vector"|"scalar","result":...` as Loki does
 * into an open JSON object. Totals for stats: */
struct sl_jsonw;
void sl_logql_metric_write(struct sl_logql_metric *m, struct sl_jsonw *w);
uint64_t sl_logql_metric_lines(const struct sl_logql_metric *m); /* entries fed */
uint64_t sl_logql_metric_bytes(const struct sl_logql_metric *m);
/* The pieces of that answer, for results merged outside the engine: one
 * point `[<seconds.millis>, "<value>"]` (value as Go's FormatFloat 'f' -1)
 * and a label set as a JSON object. */
void sl_logql_write_point(struct sl_jsonw *w, int64_t ms, double v);
void sl_logql_write_labels(struct sl_jsonw *w, const struct sl_labels *ls);

/* Result access for tests and the CLI: the number of series, and for each
 * its labels (sorted) and points (ts in ms, values). A scalar result is one
 * series without labels. */
size_t sl_logql_metric_nseries(const struct sl_logql_metric *m);
const struct sl_labels *sl_logql_metric_series(const struct sl_logql_metric *m, size_t i,
                                               const int64_t **ts_ms, const double **vals,
                                               size_t *npoints);
/* "matrix", "vector" or "scalar". */
const char *sl_logql_metric_result_type(const struct sl_logql_metric *m);

#endif
