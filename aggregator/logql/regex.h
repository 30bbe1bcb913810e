/* PCRE2 wrapper, internal to aggregator/logql/. */
#ifndef SL_LOGQL_REGEX_H
#define SL_LOGQL_REGEX_H

#include <stdbool.h>

#include "aggregator/logql/logql.h"
#include "common/buf.h"
#include "common/bytes.h"

/* Compiles pattern (JIT when available) and links it into q->regexes.
 * anchored: must match the whole subject (stream matchers). On error
 * returns SL_EINVAL and appends PCRE2's reason to err. */
int sl__logql_regex_compile(struct sl_logql_query *q, struct sl_bytes pattern, bool anchored,
                            struct sl_logql_regex **out, struct sl_buf *err);

/* True on a match; false on no match and on any matching error (match
 * limit included, which also increments q->regex_limit_hits). */
bool sl__logql_regex_match(struct sl_logql_query *q, struct sl_logql_regex *re,
                           struct sl_bytes subject);

/* Runs re on subject from offset start, capturing groups: ovec gets up to
 * novec offsets (pairs; PCRE2_UNSET = ~0 for a group that did not take part).
 * Returns the number of pairs set (groups + 1), 0 on no match or error. */
int sl__logql_regex_exec(struct sl_logql_query *q, struct sl_logql_regex *re,
                         struct sl_bytes subject, size_t start, size_t *ovec, size_t novec);

/* An unanchored regex for pattern, compiled once per query and then found
 * by its text (template functions). Errors as sl__logql_regex_compile. */
int sl__logql_regex_cached(struct sl_logql_query *q, struct sl_bytes pattern,
                           struct sl_logql_regex **out, struct sl_buf *err);

/* Frees q->regexes. */
void sl__logql_regex_free_all(struct sl_logql_query *q);

#endif
