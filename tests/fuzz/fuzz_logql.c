/* LogQL parser and evaluator: arbitrary bytes must parse or fail cleanly; a
 * parsed query's canonical text must parse to the same canonical text; a log
 * query's pipeline runs over the input as a line; a metric query is
 * evaluated (one instant step) over a few lines including the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/logql.h"
#include "common/buf.h"

static void run_pipeline(struct sl_logql_query *q, const struct sl_logql_log_expr *e,
                         const struct sl_labels *ls, struct sl_bytes line)
{
    (void)sl_logql_match_labels(q, e, ls);
    (void)sl_logql_match_line(q, e, line);
    struct sl_logql_pipeline *p = sl_logql_pipeline_new(q, e);
    sl_logql_pipeline_stream(p, ls);
    struct sl_bytes out;
    const struct sl_labels *ols;
    static const char *const lines[] = {"level=info msg=\"a b\" dur=1s size=2KB n=3",
                                        "{\"a\":{\"b\":[1,\"x\"]},\"n\":2.5,\"s\":\"v\"}",
                                        "10.0.0.1 - GET /x 200"};
    (void)sl_logql_pipeline_run(p, 1, line, &out, &ols);
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        (void)sl_logql_pipeline_run(p, 2, sl_bytes_str(lines[i]), &out, &ols);
    sl_logql_pipeline_free(p);
}

static void run_metric(struct sl_logql_query *q, const struct sl_labels *ls, struct sl_bytes line)
{
    const int64_t s = 1000000000LL;
    struct sl_logql_metric_params pr = {100 * s, 100 * s, s, true, 50};
    struct sl_logql_metric *m = NULL;
    struct sl_buf err = SL_BUF_INIT;
    if (sl_logql_metric_new(q, &pr, &m, &err) == 0) {
        for (size_t i = 0; i < sl_logql_metric_nsources(m); i++) {
            int64_t from, through;
            sl_logql_metric_source(m, i, &from, &through);
            if (!sl_logql_metric_stream(m, i, ls))
                continue;
            sl_logql_metric_entry(m, i, 99 * s, line);
            sl_logql_metric_entry(m, i, 99 * s + 1, sl_bytes_str("level=warn n=7 dur=5ms"));
            sl_logql_metric_entry(m, i, 100 * s, sl_bytes_str("{\"n\":1}"));
        }
        (void)sl_logql_metric_eval(m, &err);
    }
    sl_logql_metric_free(m);
    sl_buf_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_logql_query *q = NULL, *q2 = NULL;
    struct sl_buf err = SL_BUF_INIT, c1 = SL_BUF_INIT, c2 = SL_BUF_INIT;
    if (sl_logql_parse((const char *)data, size, &q, &err) != 0) {
        if (q || err.len == 0)
            abort(); /* failures must come with a reason and no query */
        goto out;
    }
    sl_logql_format(q, &c1);
    if (sl_logql_parse(c1.data, c1.len, &q2, NULL) != 0)
        abort();
    sl_logql_format(q2, &c2);
    if (c1.len != c2.len || memcmp(c1.data, c2.data, c1.len) != 0)
        abort();
    struct sl_label l[] = {{{"app", 3}, {(const char *)data, size < 64 ? size : 64}},
                           {{"env", 3}, {"prod", 4}}};
    struct sl_labels ls = {l, 2};
    struct sl_bytes line = sl_bytes((const char *)data, size);
    const struct sl_logql_log_expr *e = sl_logql_log_expr(q);
    if (e)
        run_pipeline(q, e, &ls, line);
    else
        run_metric(q, &ls, line);
out:
    sl_logql_query_free(q);
    sl_logql_query_free(q2);
    sl_buf_release(&err);
    sl_buf_release(&c1);
    sl_buf_release(&c2);
    return 0;
}
