/* Splitting a metric query_range by its steps (querier.split_queries_by_interval,
 * as Loki's split_queries_by_interval): the steps start, start+step, ... <=
 * end are cut into contiguous groups, each evaluated as an independent
 * query over [first step, last step] of the group on the same start/step
 * grid, and the groups' matrices are concatenated per series.
 *
 * The value at step t depends only on the entries in (t - range - offset,
 * t - offset] of each range aggregation, and every vector aggregation,
 * binary operator and label_replace works on one step at a time, so the
 * concatenation is exactly the whole query's matrix. (sort/sort_desc only
 * order instant results; instant and log queries are never split.)
 *
 * Ownership: a merge owns copies of everything added to it.
 * Threading: none inside; one merge is used by one thread. */
#ifndef SL_QUERIER_SPLIT_H
#define SL_QUERIER_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/labels.h"

#define SL_SPLIT_MAX_PARTS 64

struct sl_split_part {
    int64_t start_ns, end_ns; /* first and last step of the part (end inclusive) */
};

/* Cuts the steps of [start_ns, end_ns] (step_ns > 0) into at most max_parts
 * contiguous groups of near-equal step counts, one group per split_ns of the
 * range at most (rounded up). Returns the number of parts written to parts
 * (at most SL_SPLIT_MAX_PARTS); 1 means "do not split" (parts[0] is then
 * the whole range). split_ns <= 0 or max_parts <= 1: 1. A part ends at its
 * last step, except the last part, which ends at end_ns (same last step). */
size_t sl_split_plan(int64_t start_ns, int64_t end_ns, int64_t step_ns, int64_t split_ns,
                     size_t max_parts, struct sl_split_part *parts);

struct sl_split_series;

/* The concatenation of the parts' matrices: series by labels, points
 * appended in the order added (parts in time order give time order). */
struct sl_split_merge {
    struct sl_arena arena; /* labels */
    struct sl_split_series *series;
    size_t n, cap;
    uint32_t *map; /* canonical labels -> index + 1, open addressing */
    size_t mapcap;
    struct sl_buf key;
};

void sl_split_merge_init(struct sl_split_merge *m);
void sl_split_merge_release(struct sl_split_merge *m);
/* Appends npoints points (ts in ms) to the series of ls (sorted labels),
 * creating it. */
void sl_split_merge_add(struct sl_split_merge *m, const struct sl_labels *ls, const int64_t *ts_ms,
                        const double *vals, size_t npoints);
size_t sl_split_merge_nseries(const struct sl_split_merge *m);
/* Writes `"resultType":"matrix","result":[...]` into an open JSON object,
 * series sorted by labels, byte for byte as sl_logql_metric_write writes a
 * range query's matrix. */
struct sl_jsonw;
void sl_split_merge_write(struct sl_split_merge *m, struct sl_jsonw *w);

#endif
