/* The label builder of a pipeline (Loki's LabelsBuilder) and the parser
 * stages' entry points, internal to aggregator/logql/. A builder starts
 * from the stream's labels; stages add, replace and delete labels and set
 * the error; values live in the scratch arena, cleared for every line. */
#ifndef SL_LOGQL_PIPELINE_INT_H
#define SL_LOGQL_PIPELINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/logql/logql.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/labels.h"

struct sl__logql_lb {
    const struct sl_labels *base;
    struct sl_label *add; /* added or replaced, in order of first set */
    size_t nadd, capadd;
    struct sl_bytes *del; /* deleted names (base or added) */
    size_t ndel, capdel;
    struct sl_bytes err, details; /* empty: none */
    struct sl_arena *scratch;
    struct sl_buf tmp; /* key building */
    /* Parser hints (Loki's): when want is set, parsers extract only these
     * names and stop once all of them are found. */
    const struct sl_bytes *want;
    size_t nwant;
    uint64_t found; /* bit i: want[i] extracted on this line */
    /* Names the running parser stage has set on this line: a key that comes
     * again in the same line keeps its first value, as in Loki. */
    struct sl_bytes *seen;
    size_t nseen, capseen;
};

bool sl__logql_lb_base_has(const struct sl__logql_lb *lb, struct sl_bytes name);
/* Current value; false if absent. __error__ reads the error. */
bool sl__logql_lb_get(const struct sl__logql_lb *lb, struct sl_bytes name, struct sl_bytes *v);
/* name and v must outlive the line (query arena or scratch). */
void sl__logql_lb_set(struct sl__logql_lb *lb, struct sl_bytes name, struct sl_bytes v);
void sl__logql_lb_del(struct sl__logql_lb *lb, struct sl_bytes name);
/* Sets the error unless one is set (Loki keeps the first). */
void sl__logql_lb_set_err(struct sl__logql_lb *lb, const char *err, struct sl_bytes details);

bool sl__logql_lf_eval(struct sl_logql_query *q, struct sl__logql_lb *lb,
                       const struct sl_logql_label_filter *f);

/* Restricts the parsers to names (at most 64; the array must outlive p);
 * n == 0: no parsed label is needed and parsers do nothing. */
void sl__logql_pipeline_hint(struct sl_logql_pipeline *p, const struct sl_bytes *names, size_t n);

/* Structured metadata of the next line processed (borrowed until then;
 * reset by process). */
void sl__logql_pipeline_set_meta(struct sl_logql_pipeline *p, const struct sl_label *meta,
                                 size_t n);

/* Runs the stages (line rewritten in place); then the builder holds the
 * labels until the next line. */
bool sl__logql_pipeline_process(struct sl_logql_pipeline *p, int64_t ts, struct sl_bytes *line);
struct sl__logql_lb *sl__logql_pipeline_lb(struct sl_logql_pipeline *p);
struct sl_arena *sl__logql_pipeline_scratch(struct sl_logql_pipeline *p);
/* The labels after process(), sorted; the stream's own when unchanged. */
const struct sl_labels *sl__logql_pipeline_labels(struct sl_logql_pipeline *p);

void sl__logql_parse_json(struct sl__logql_lb *lb, struct sl_bytes line);
void sl__logql_parse_json_exprs(struct sl__logql_lb *lb, const struct sl_logql_stage *st,
                                struct sl_bytes line);
void sl__logql_parse_logfmt_prepare(struct sl__logql_lb *lb, const struct sl_logql_stage *st);
void sl__logql_parse_logfmt(struct sl__logql_lb *lb, const struct sl_logql_stage *st,
                            struct sl_bytes line);
void sl__logql_parse_regexp(struct sl__logql_lb *lb, struct sl_logql_query *q,
                            const struct sl_logql_stage *st, struct sl_bytes line);
void sl__logql_parse_pattern(struct sl__logql_lb *lb, const struct sl_logql_stage *st,
                             struct sl_bytes line);
/* Returns the new line (the _entry value, or line). */
struct sl_bytes sl__logql_parse_unpack(struct sl__logql_lb *lb, struct sl_bytes line);

#endif
