/* Metrics registry with Prometheus text output (exposition format 0.0.4).
 *
 * Families are registered once at start-up (loop thread); children for label
 * values are created on demand by sl_metric_with() (mutex-protected lookup,
 * so callers should cache the returned pointer on hot paths). Updating a
 * child (add/set/observe) is lock-free and safe from any thread. Rendering is
 * safe from any thread. Children live as long as the registry.
 *
 * Naming (DESIGN.md): sluice_agent_* / sluice_aggregator_*, counters end in
 * _total, sizes in _bytes, durations are histograms in seconds. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct sl_metrics;
struct sl_metric_family;
struct sl_metric;

struct sl_metrics *sl_metrics_new(void);
void sl_metrics_free(struct sl_metrics *r);

/* label_names: comma-separated ("tenant,reason") or NULL for none.
 * Registering a name twice returns the existing family if the type and
 * labels agree, else aborts (a programming error). */
struct sl_metric_family *sl_metrics_counter(struct sl_metrics *r, const char *name,
                                            const char *help, const char *label_names);
struct sl_metric_family *sl_metrics_gauge(struct sl_metrics *r, const char *name, const char *help,
                                          const char *label_names);
/* buckets: ascending upper bounds, +Inf is implicit. NULL picks the default
 * seconds buckets .001 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10. */
struct sl_metric_family *sl_metrics_histogram(struct sl_metrics *r, const char *name,
                                              const char *help, const char *label_names,
                                              const double *buckets, size_t nbuckets);

/* Child for the given label values, in the family's label order; pass exactly
 * as many values as the family has labels (zero for unlabelled families). */
struct sl_metric *sl_metric_with(struct sl_metric_family *f, ...);
/* Same, values as an array. */
struct sl_metric *sl_metric_withv(struct sl_metric_family *f, const char *const *values);

void sl_counter_add(struct sl_metric *m, double v);
void sl_counter_inc(struct sl_metric *m);
void sl_gauge_set(struct sl_metric *m, double v);
void sl_gauge_add(struct sl_metric *m, double v);
void sl_histogram_observe(struct sl_metric *m, double v);
/* Current value of a counter or gauge (tests, and internal use). */
double sl_metric_value(struct sl_metric *m);

/* A gauge computed at render time: fn(ud) is called from the rendering thread. */
void sl_metrics_gauge_func(struct sl_metrics *r, const char *name, const char *help,
                           double (*fn)(void *ud), void *ud);

/* Appends the whole registry in text format, families sorted by name. */
void sl_metrics_render(struct sl_metrics *r, struct sl_buf *out);

#endif
