/* Data access of the querier: "for a tenant, label matchers and [from,
 * through): the matching series with their entries in time order, from the
 * ingester's memory and from the object store, duplicates removed".
 *
 * The store side goes through the index files of the days of the range
 * (index/<day>/<tenant>/...), downloaded once and kept (they never change),
 * and fetches a series' chunks only when the series is scanned; chunk blocks
 * outside the range are not decompressed. An entry present both in memory
 * and in a stored chunk (flushed, not yet released), or in two chunks, is
 * returned once: same timestamp and same line is the same entry.
 *
 * Threading: a select may be used by several queries at once (the index
 * cache has its own lock). The visit callback runs while the ingester holds
 * the tenant's read lock for memory-backed series, so it must not push. */
#ifndef SL_SELECT_H
#define SL_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/index/index.h"
#include "aggregator/ingester/ingester.h"
#include "common/bytes.h"

struct sl_metrics;
struct sl_store;
struct sl_select;
struct sl_select_reader;

/* store may be NULL (memory only); metrics may be NULL. */
struct sl_select *sl_select_new(struct sl_store *store, struct sl_metrics *metrics);
void sl_select_free(struct sl_select *sel);

/* Calls fn for every series of tenant with entries in [from, through) in
 * memory or in the store that has every eq pair and passes match (NULL: all;
 * the caller may also filter in fn). info->entries is an estimate (> 0),
 * min_ts/max_ts bound the data. sel may be NULL: memory only. A non-zero
 * return from fn stops and is returned; store failures return their SL_E*
 * code. */
typedef int (*sl_select_fn)(const struct sl_stream_info *info, struct sl_select_reader *r,
                            void *ud);
int sl_select_visit(struct sl_select *sel, struct sl_ingester *ing, struct sl_bytes tenant,
                    const struct sl_index_matcher *eq, size_t neq, sl_index_label_fn match,
                    void *match_ud, int64_t from, int64_t through, sl_select_fn fn, void *ud);

/* Entries of the series with from <= ts < through, ascending (descending if
 * backward), without duplicates. Same contract as sl_stream_reader_scan. */
int sl_select_reader_scan(struct sl_select_reader *r, int64_t from, int64_t through, bool backward,
                          sl_entry_fn fn, void *ud);

#endif
