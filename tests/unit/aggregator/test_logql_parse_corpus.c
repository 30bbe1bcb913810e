/* LogQL parser against a corpus of several hundred queries
 * (data/logql_queries.txt): valid ones print their canonical text, which
 * parses back to itself; invalid ones fail with Loki's message and position,
 * and constructs outside the subset are named as unsupported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/logql/logql.h"
#include "common/buf.h"
#include "common/err.h"

/* Parses q (n bytes); on success the canonical text goes to out, else the
 * error message. Returns the return code. */
static int parse_print(const char *q, size_t n, struct sl_buf *out)
{
    struct sl_logql_query *lq = NULL;
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_logql_parse(q, n, &lq, &err);
    sl_buf_clear(out);
    if (rc == 0) {
        assert_non_null(lq);
        assert_int_equal(err.len, 0);
        sl_logql_format(lq, out);
        sl_logql_query_free(lq);
    } else {
        assert_null(lq);
        sl_buf_append(out, err.data ? err.data : "", err.len);
    }
    sl_buf_release(&err);
    return rc;
}

static bool same(const struct sl_buf *b, const char *s)
{
    return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

struct counts {
    int valid, invalid, unsupported, bad;
};

/* Checks one query against its expectation line ("= ..." or "! RC msg"). */
static void check(const char *q, const char *want, int lineno, struct counts *c)
{
    struct sl_buf got = SL_BUF_INIT, again = SL_BUF_INIT;
    int rc = parse_print(q, strlen(q), &got);
    if (want[0] == '=') {
        const char *canon = want + 2;
        c->valid++;
        if (rc != 0 || !same(&got, canon)) {
            print_error("line %d: %s\n  got  rc %d: %.*s\n  want %s\n", lineno, q, rc, (int)got.len,
                        got.data ? got.data : "", canon);
            c->bad++;
        } else if (parse_print(canon, strlen(canon), &again) != 0 || !same(&again, canon)) {
            print_error("line %d: %s\n  not a fixed point: %s -> %.*s\n", lineno, q, canon,
                        (int)again.len, again.data ? again.data : "");
            c->bad++;
        }
    } else {
        int want_rc = strncmp(want + 2, "EUNSUPP ", 8) == 0 ? SL_EUNSUPP : SL_EINVAL;
        const char *msg = strchr(want + 2, ' ');
        assert_non_null(msg);
        msg++;
        if (want_rc == SL_EUNSUPP)
            c->unsupported++;
        else
            c->invalid++;
        if (rc != want_rc || !same(&got, msg)) {
            print_error("line %d: %s\n  got  rc %d: %.*s\n  want rc %d: %s\n", lineno, q, rc,
                        (int)got.len, got.data ? got.data : "", want_rc, msg);
            c->bad++;
        }
    }
    sl_buf_release(&got);
    sl_buf_release(&again);
}

static void test_corpus(void **state)
{
    (void)state;
    char path[1024];
    const char *me = __FILE__, *slash = strrchr(me, '/');
    snprintf(path, sizeof path, "%.*sdata/logql_queries.txt", slash ? (int)(slash - me + 1) : 0,
             me);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    static char line[16384], query[16384];
    struct counts c = {0};
    bool have_query = false;
    int lineno = 0, qline = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = 0;
        if (n == 0 || line[0] == '#')
            continue;
        if (strncmp(line, "q ", 2) == 0) {
            if (have_query)
                fail_msg("line %d: query without an expectation", qline);
            snprintf(query, sizeof query, "%s", line + 2);
            have_query = true;
            qline = lineno;
        } else if (line[0] == '=' || line[0] == '!') {
            if (!have_query)
                fail_msg("line %d: expectation without a query", lineno);
            check(query, line, qline, &c);
            have_query = false;
        } else {
            fail_msg("line %d: cannot read \"%s\"", lineno, line);
        }
    }
    fclose(f);
    if (have_query)
        fail_msg("line %d: query without an expectation", qline);
    /* the corpus is whole: a truncated file must not pass */
    assert_true(c.valid >= 250);
    assert_true(c.invalid >= 100);
    assert_true(c.unsupported >= 8);
    assert_int_equal(c.bad, 0);
}

/* The parser never crashes or leaks on any prefix of a corpus query, and
 * each prefix either parses to a fixed point or fails with a message. */
static void test_prefixes(void **state)
{
    (void)state;
    static const char *const qs[] = {
        "sum by (level) (count_over_time({app=\"api\"} | logfmt | level=~\"warn|error\" "
        "| line_format \"{{.msg}}\" [5m] offset 1m)) / on (level) group_left sum by (level) "
        "(rate({app=\"web\"} |= \"x\" or \"y\" [1m]))",
        "quantile_over_time(0.99, ({app=\"api\"} | json | dur > 1s, size <= 10KB or "
        "addr = ip(\"10.0.0.0/8\") | unwrap duration(dur) | __error__=\"\" [5m])) by (route)",
        "topk(3, label_replace(sum(rate({a=\"b\"}[1m])) by (x), \"y\", \"$1\", \"x\", \"(.*)\")) "
        "> bool 2 ^ -1",
    };
    struct sl_buf got = SL_BUF_INIT, again = SL_BUF_INIT;
    size_t parsed = 0;
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        size_t n = strlen(qs[k]);
        for (size_t i = 0; i <= n; i++) {
            int rc = parse_print(qs[k], i, &got);
            if (rc == 0) {
                char *canon = strndup(got.data ? got.data : "", got.len);
                assert_int_equal(parse_print(canon, strlen(canon), &again), 0);
                assert_true(same(&again, canon));
                free(canon);
                parsed++;
            } else {
                assert_true(rc == SL_EINVAL || rc == SL_EUNSUPP);
                assert_true(got.len > 0);
            }
        }
        /* the whole query parses */
        assert_int_equal(parse_print(qs[k], n, &got), 0);
    }
    assert_true(parsed >= 3);
    sl_buf_release(&got);
    sl_buf_release(&again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
