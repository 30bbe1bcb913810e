/* line_format/label_format templates: arbitrary template text must parse
 * or fail with a reason, and a parsed template must render against a few
 * labels, the line and the timestamp without crashing, whatever functions
 * and arguments it calls. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/logql.h"
#include "common/arena.h"
#include "common/buf.h"

static bool get(void *ud, struct sl_bytes name, struct sl_bytes *val)
{
    (void)ud;
    static const char *const kv[][2] = {
        {"app", "api"}, {"n", "42"}, {"f", "2.5"}, {"msg", "hello world"}, {"empty", ""}};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        if (sl_bytes_eq_str(name, kv[i][0])) {
            *val = sl_bytes_str(kv[i][1]);
            return true;
        }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_logql_query *q = NULL;
    if (sl_logql_parse("{a=\"b\"}", 7, &q, NULL) != 0)
        abort();
    struct sl_buf err = SL_BUF_INIT, out = SL_BUF_INIT;
    struct sl_logql_template *t = NULL;
    int rc = sl__logql_template_parse(q, sl_bytes((const char *)data, size), &t, &err);
    if (rc != 0) {
        if (err.len == 0)
            abort(); /* a failure names its reason */
    } else {
        struct sl_arena a;
        sl_arena_init(&a, 0);
        struct sl__logql_tmpl_ctx c = {.get = get,
                                       .line = sl_bytes((const char *)data, size),
                                       .ts = 1700000000123456789LL,
                                       .q = q,
                                       .scratch = &a};
        for (int i = 0; i < 2; i++) {
            sl_buf_clear(&out);
            sl_buf_clear(&err);
            (void)sl__logql_template_exec(t, &c, &out, &err);
        }
        sl_arena_release(&a);
    }
    sl_buf_release(&err);
    sl_buf_release(&out);
    sl_logql_query_free(q);
    return 0;
}
