/* Metric evaluation internals shared by metric.c (sources, range
 * aggregations, the step loop, output) and vecops.c (vector aggregations,
 * binary operators, label_replace). Internal to aggregator/logql/. */
#ifndef SL_LOGQL_METRIC_INT_H
#define SL_LOGQL_METRIC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/logql/logql.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/labels.h"

/* One sample of an instant vector. Labels sorted; key is their canonical
 * text (the identity of the series). */
struct sl__vsample {
    struct sl_labels ls;
    struct sl_bytes key;
    double v;
};

/* The value of an expression at one step: a scalar or an instant vector. */
struct sl__vres {
    bool scalar;
    double sv;
    struct sl__vsample *s;
    size_t n;
};

struct sl__step {
    struct sl_arena *a; /* cleared at every step */
    struct sl_buf *err; /* evaluation error (first one wins) */
    int rc;
    struct sl_logql_query *q;
};

/* Canonical key of ls (sorted) in the step arena. */
struct sl_bytes sl__logql_labels_key(struct sl_arena *a, const struct sl_labels *ls);

/* Vector operations; results in st->a. On error set st->rc/st->err. */
void sl__logql_vecagg(struct sl__step *st, const struct sl_logql_vecagg_expr *e,
                      const struct sl__vres *in, struct sl__vres *out);
void sl__logql_binop(struct sl__step *st, const struct sl_logql_binop_expr *e,
                     const struct sl__vres *l, const struct sl__vres *r, struct sl__vres *out);
void sl__logql_label_replace(struct sl__step *st, const struct sl_logql_label_replace_expr *e,
                             const struct sl__vres *in, struct sl__vres *out);
/* Keeps (by) or removes (without) names; sorted result in a. */
void sl__logql_group_labels(struct sl_arena *a, const struct sl_labels *in,
                            const struct sl_logql_grouping *g, const struct sl_bytes *extra_drop,
                            struct sl_labels *out);

#endif
