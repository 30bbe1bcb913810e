/* LogQL parser: arbitrary bytes must parse or fail cleanly; a parsed query's
 * canonical text must parse to the same canonical text; evaluation of the
 * parsed query against the input itself must not crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/logql.h"
#include "common/buf.h"

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
    const struct sl_logql_log_expr *e = sl_logql_log_expr(q);
    struct sl_label l = {{"app", 3}, {(const char *)data, size}};
    struct sl_labels ls = {&l, 1};
    (void)sl_logql_match_labels(q, e, &ls);
    (void)sl_logql_match_line(q, e, sl_bytes((const char *)data, size));
out:
    sl_logql_query_free(q);
    sl_logql_query_free(q2);
    sl_buf_release(&err);
    sl_buf_release(&c1);
    sl_buf_release(&c2);
    return 0;
}
