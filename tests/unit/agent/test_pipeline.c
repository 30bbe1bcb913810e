/* agent/pipeline: building from YAML, every stage, label sets, drops and
 * their counters, multiline blocks, deadlines and cookies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/pipeline/internal.h"
#include "agent/pipeline/pipeline.h"
#include "common/config.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"

struct cfg {
    struct sl_cfgnode *pipeline;
};

static const struct sl_option opts[] = {
    {"pipeline", SL_OPT_NODE, "[]", offsetof(struct cfg, pipeline), "stages"},
};

static int build(const char *yaml, struct sl_metrics *m, struct sl_pipeline **out,
                 struct sl_buf *err)
{
    struct cfg c = {0};
    struct sl_buf e = SL_BUF_INIT;
    int rc = sl_config_load_mem(opts, 1, &c, yaml, strlen(yaml), NULL, 0, &e);
    if (rc) {
        fprintf(stderr, "yaml: %s\n", e.data);
        sl_buf_release(&e);
        return rc;
    }
    rc = sl_pipeline_new(c.pipeline, m, out, err ? err : &e);
    sl_config_release(opts, 1, &c);
    sl_buf_release(&e);
    return rc;
}

#define MAXOUT 32
struct got {
    size_t n;
    struct gotone {
        int64_t ts;
        char line[512];
        char labels[512];
        uint32_t set;
        char meta[256];
        uint64_t cookie;
        bool dropped;
        char reason[64];
    } o[MAXOUT];
};

static void emit(void *ud, const struct sl_pipeline_out *o)
{
    struct got *g = ud;
    assert_true(g->n < MAXOUT);
    struct gotone *x = &g->o[g->n++];
    memset(x, 0, sizeof(*x));
    x->ts = o->ts_ns;
    snprintf(x->line, sizeof(x->line), "%.*s", (int)o->line.len, o->line.ptr);
    struct sl_buf b = SL_BUF_INIT;
    sl_labels_format(o->labels, &b);
    snprintf(x->labels, sizeof(x->labels), "%s", b.data ? b.data : "{}");
    sl_buf_release(&b);
    for (size_t i = 0; i < o->nmeta; i++) {
        size_t l = strlen(x->meta);
        snprintf(x->meta + l, sizeof(x->meta) - l, "%s%.*s=%.*s", i ? "," : "",
                 (int)o->meta[i].name.len, o->meta[i].name.ptr, (int)o->meta[i].value.len,
                 o->meta[i].value.ptr);
    }
    x->set = o->label_set;
    x->cookie = o->cookie;
    x->dropped = o->dropped;
    if (o->reason)
        snprintf(x->reason, sizeof(x->reason), "%s", o->reason);
}

static struct sl_label base_items[] = {
    {SL_BYTES_LIT("namespace"), SL_BYTES_LIT("prod")},
    {SL_BYTES_LIT("pod"), SL_BYTES_LIT("api-1")},
};
static const struct sl_labels base = {base_items, 2};

static int64_t fake_mono, fake_wall;
static int64_t mono(void)
{
    return fake_mono;
}
static int64_t wall(void)
{
    return fake_wall;
}

static bool push(struct sl_pipeline_stream *s, const char *line, int stream, uint64_t cookie)
{
    struct sl_pipeline_in in = {1000, sl_bytes_str(line), stream, cookie};
    return sl_pipeline_push(s, &in);
}

static double counter(struct sl_metrics *m, const char *series)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_metrics_render(m, &b);
    double v = -1;
    const char *p = b.data ? strstr(b.data, series) : NULL;
    if (p)
        sscanf(p + strlen(series), " %lf", &v);
    sl_buf_release(&b);
    return v;
}

/* --- building --- */

static void expect_error(const char *yaml, const char *needle)
{
    struct sl_pipeline *p = (void *)1;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(build(yaml, NULL, &p, &err), SL_EINVAL);
    assert_null(p);
    if (!strstr(err.data, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err.data, needle);
    sl_buf_release(&err);
}

static void test_build_errors(void **state)
{
    (void)state;
    expect_error("pipeline:\n  - jsn: {expressions: {a: b}}\n", "pipeline[0] (jsn): line 2");
    expect_error("pipeline:\n  - json: {expressions: {a: b}}\n  - regex: {expression: \"(a\"}\n",
                 "pipeline[1] (regex): line 3: expression: missing closing parenthesis");
    expect_error("pipeline:\n  - json: {expressions: {a: \"b..c\"}}\n",
                 "pipeline[0] (json): line 2: expressions: a: \"b..c\"");
    expect_error("pipeline:\n  - json: {source: x}\n", "expressions: required");
    expect_error("pipeline:\n  - labels: {a: b}\n  - multiline: {firstline: x}\n",
                 "pipeline[1] (multiline): line 3: multiline must be the first stage");
    expect_error("pipeline:\n  - drop: {value: x}\n", "value: value needs a source");
    expect_error("pipeline:\n  - drop: {}\n", "needs at least one of");
    expect_error("pipeline:\n  - drop: {expression: a, colour: red}\n",
                 "colour: unknown option (known: source, separator");
    expect_error("pipeline:\n  - timestamp: {source: t, format: RFC3339, location: Mars/Base}\n",
                 "location: unknown time zone \"Mars/Base\"");
    expect_error("pipeline:\n  - timestamp: {source: t, format: Unix, action_on_failure: x}\n",
                 "expected fudge or skip");
    expect_error("pipeline:\n  - static_labels: {\"bad-name\": x}\n", "invalid label name");
    expect_error("pipeline:\n  - multiline: {firstline: x, max_wait_time: soon}\n",
                 "max_wait_time: expected a positive duration");
    expect_error("pipeline: {json: {}}\n", "expected a list of stages");

    struct sl_pipeline *p = (void *)1;
    assert_int_equal(build("pipeline: []\n", NULL, &p, NULL), 0);
    assert_null(p);
}

/* --- extraction and labels --- */

static void test_json_labels_metadata_output(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_pipeline *p;
    assert_int_equal(build("pipeline:\n"
                           "  - json:\n"
                           "      expressions:\n"
                           "        level: lvl\n"
                           "        msg:\n"
                           "        tid: ctx.trace\n"
                           "        first: tags[0]\n"
                           "        last: tags[-1]\n"
                           "        at: '\"@t\"'\n"
                           "        obj: ctx\n"
                           "  - labels: {level: \"\"}\n"
                           "  - structured_metadata: {trace_id: tid}\n"
                           "  - output: {source: msg}\n",
                           m, &p, NULL),
                     0);
    struct got g = {0};
    struct sl_pipeline_stream *s = sl_pipeline_stream_new(p, &base, emit, &g);
    assert_true(push(s,
                     "{\"lvl\":\"error\",\"msg\":\"disk \\\"full\\\"\\u00e9\",\"ctx\":{\"trace\":"
                     "\"abc\"},\"tags\":[\"x\",\"y\"],\"@t\":1}",
                     0, 7));
    assert_true(push(s, "{\"lvl\":\"error\",\"msg\":\"again\"}", 0, 8));
    assert_true(push(s, "not json", 0, 9));
    assert_true(push(s, "{\"lvl\":\"info\",\"msg\":\"ok\",\"lvl\":\"warn\"}", 0, 10));
    assert_int_equal(g.n, 4);
    assert_string_equal(g.o[0].labels, "{level=\"error\", namespace=\"prod\", pod=\"api-1\"}");
    assert_string_equal(g.o[0].line, "disk \"full\"\xc3\xa9");
    assert_string_equal(g.o[0].meta, "trace_id=abc");
    assert_int_equal(g.o[0].set, 1);
    assert_int_equal(g.o[0].cookie, 7);
    assert_int_equal(g.o[1].set, 1); /* same label set, same id */
    assert_string_equal(g.o[1].meta, "");
    assert_int_equal(g.o[2].set, 0); /* not JSON: untouched */
    assert_string_equal(g.o[2].line, "not json");
    assert_string_equal(g.o[2].labels, "{namespace=\"prod\", pod=\"api-1\"}");
    assert_string_equal(g.o[3].labels, "{level=\"warn\", namespace=\"prod\", pod=\"api-1\"}");
    assert_int_equal(g.o[3].set, 2);
    sl_pipeline_stream_free(s);
    sl_pipeline_free(p);
    sl_metrics_free(m);
}

static void test_json_values(void **state)
{
    (void)state;
    struct sl_pipeline *p;
    assert_int_equal(build("pipeline:\n"
                           "  - json:\n"
                           "      expressions: {n: num, b: flag, o: obj, a: arr, z: nil, "
                           "e: \"arr[5]\", f: \"arr[-2]\"}\n"
                           "  - output: {source: o}\n",
                           NULL, &p, NULL),
                     0);
    struct got g = {0};
    struct sl_pipeline_stream *s = sl_pipeline_stream_new(p, &base, emit, &g);
    push(s,
         "{\"num\": -1.5e3, \"flag\": true, \"obj\": {\"k\": [1, 2]}, \"arr\": [1, \"two\"], "
         "\"nil\": null}",
         0, 1);
    assert_string_equal(g.o[0].line, "{\"k\": [1, 2]}");
    sl_pipeline_stream_free(s);
    sl_pipeline_free(p);
    /* Checked against the extracted map directly. */
    struct sl__pl_jpath path;
    const char *why;
    struct sl_bytes raw;
    const char *doc = "{\"a\":{\"b\\u0063\":[10,{\"d\":\"x\"}]},\"a\":{\"bc\":[20]}}";
    assert_int_equal(sl__pl_json_check(doc, strlen(doc)), 0);
    assert_int_equal(sl__pl_jpath_parse("a.bc[0]", &path, &why), 0);
    assert_int_equal(sl__pl_json_find(doc, strlen(doc), &path, &raw), SL_PL_J_NUMBER);
    assert_int_equal(raw.len, 2);
    assert_memory_equal(raw.ptr, "20", 2); /* the last "a" wins */
    sl__pl_jpath_release(&path);
    assert_int_not_equal(sl__pl_json_check("{\"a\":1,}", 8), 0);
    assert_int_not_equal(sl__pl_json_check("{\"a\":\"\\ud800\"}", 14), 0);
    assert_int_not_equal(sl__pl_json_check("{\"a\":01}", 8), 0);
    assert_int_not_equal(sl__pl_json_check("[1]", 3), 0);
    assert_int_equal(sl__pl_json_check(" {\"a\" : [ ] } \n", 15), 0);
    assert_int_not_equal(sl__pl_jpath_parse("a.", &path, &why), 0);
    assert_int_not_equal(sl__pl_jpath_parse("a[x]", &path, &why), 0);
}

static void test_logfmt_regex_static_drop_keep(void **state)
{
    (void)state;
    struct sl_pipeline *p;
    assert_int_equal(build("pipeline:\n"
                           "  - logfmt: {mapping: {lvl: level, user: \"\"}}\n"
                           "  - regex: {expression: 'took=(?P<ms>\\d+)ms'}\n"
                           "  - labels: {level: lvl, user: \"\", ms: \"\"}\n"
                           "  - static_labels: {cluster: eu1, team: core}\n"
                           "  - labeldrop: [pod]\n"
                           "  - labelkeep: [namespace, level, user, cluster, ms]\n",
                           NULL, &p, NULL),
                     0);
    struct got g = {0};
    struct sl_pipeline_stream *s = sl_pipeline_stream_new(p, &base, emit, &g);
    push(s, "level=info user=\"ann lee\" msg=\"hi \\\"x\\\"\" took=15ms", 0, 1);
    assert_string_equal(g.o[0].labels, "{cluster=\"eu1\", level=\"info\", ms=\"15\", "
                                       "namespace=\"prod\", user=\"ann lee\"}");
    sl_pipeline_stream_free(s);
    sl_pipeline_free(p);
}

static void test_invalid_labels_skipped(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_pipeline *p;
    assert_int_equal(build("pipeline:\n"
                           "  - logfmt: {mapping: {v: \"\"}}\n"
                           "  - labels: {v: \"\"}\n"
                           "  - structured_metadata: {m: v}\n"
                           "  - static_labels: {l03: a, l04: a, l05: a, l06: a, l07: a, l08: a, "
                           "l09: a, l10: a, l11: a, l12: a, l13: a, l14: a, l15: a, l16: a}\n",
                           m, &p, NULL),
                     0);
    struct got g = {0};
    struct sl_pipeline_stream *s = sl_pipeline_stream_new(p, &base, emit, &g);
    push(s, "v=bad\xffutf8", 0, 1);
    assert_int_equal(g.n, 1);
    assert_null(strstr(g.o[0].labels, "v=")); /* invalid value skipped */
    assert_string_equal(g.o[0].meta, "");
    assert_non_null(strstr(g.o[0].labels, "l15=")); /* 15 labels: 2 + 13 */
    assert_null(strstr(g.o[0].labels, "l16="));
    assert_true(
        counter(m, "sluice_agent_pipeline_labels_skipped_total{reason=\"invalid_value\"}") == 1);
    assert_true(
        counter(m, "sluice_agent_pipeline_labels_skipped_total{reason=\"invalid_metadata\"}") == 1);
    assert_true(
        counter(m, "sluice_agent_pipeline_labels_skipped_total{reason=\"too_many_labels\"}") == 1);
    sl_pipeline_stream_free(s);
    sl_pipeline_free(p);
    sl_metrics_free(m);
}

static void test_drop(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_pipeline *p;
    assert_int_equal(build("pipeline:\n"
                           "  - logfmt: {mapping: {level: \"\", app: \"\"}}\n"
                           "  - drop: {expression: healthz, drop_counter_reason: health}\n"
                           "  - drop: {source: [app, level], value: \"web;debug\"}\n"
                           "  - drop: {longer_than: 20, expression: '^x'}\n"
                           "  - drop: {older_than: 1h}\n",
                           m, &p, NULL),
                     0);
    sl_pipeline_set_clocks(p, mono, wall);
    fake_wall = 1800 * SL_NS_PER_SEC;
    struct got g = {0};
    struct sl_pipeline_stream *s = sl_pipeline_stream_new(p, &base, emit, &g);
    push(s, "GET /healthz 200", 0, 1);
    push(s, "app=web level=debug", 0, 2);
    push(s, "app=web level=info", 0, 3);
    push(s, "x short", 0, 4);
    push(s, "xxxxxxxxxxxxxxxxxxxxxxxxxxxx long", 0, 5);
    struct sl_pipeline_in old = {-3600 * SL_NS_PER_SEC, SL_BYTES_LIT("ancient"), 0, 6};
    sl_pipeline_push(s, &old);
    assert_int_equal(g.n, 6);
    assert_true(g.o[0].dropped);
    assert_string_equal(g.o[0].reason, "health");
    assert_true(g.o[1].dropped);
    assert_string_equal(g.o[1].reason, "drop_stage");
    assert_false(g.o[2].dropped);
    assert_false(g.o[3].dropped);
    assert_true(g.o[4].dropped);
    assert_true(g.o[5].dropped);
    assert_int_equal(g.o[5].cookie, 6);
    assert_true(counter(m, "sluice_agent_lines_dropped_total{reason=\"health\"}") == 1);
    assert_true(counter(m, "sluice_agent_lines_dropped_total{reason=\"drop_stage\"}") == 3);
    sl_pipeline_stream_free(s);
    sl_pipeline_free(p);
    sl_metrics_free(m);
}

/* --- timestamps --- */

static int64_t tparse(const char *fmt, const char *v, const char *loc)
{
    struct sl__pl_tz *tz = NULL;
    if (loc)
        assert_int_equal(sl__pl_tz_load(loc, &tz), 0);
    int64_t ns = -1;
    int rc = sl__pl_time_parse(fmt, sl_bytes_str(v), tz, 1700000000 * SL_NS_PER_SEC, &ns);
    sl__pl_tz_free(tz);
    return rc == 0 ? ns : -1;
}

static void test_time_formats(void **state)
{
    (void)state;
    const int64_t S = SL_NS_PER_SEC;
    /* 2024-03-05T06:07:08Z = 1709618828 */
    assert_true(tparse("RFC3339", "2024-03-05T06:07:08Z", NULL) == 1709618828 * S);
    assert_true(tparse("RFC3339Nano", "2024-03-05T07:07:08.5+01:00", NULL) ==
                1709618828 * S + 500000000);
    assert_true(tparse("Unix", "1709618828", NULL) == 1709618828 * S);
    assert_true(tparse("Unix", "1709618828.25", NULL) == 1709618828 * S + 250000000);
    assert_true(tparse("UnixMs", "1709618828123", NULL) == 1709618828123 * SL_NS_PER_MS);
    assert_true(tparse("UnixUs", "1709618828123456", NULL) == 1709618828123456 * 1000);
    assert_true(tparse("UnixNs", "1709618828123456789", NULL) == 1709618828123456789);
    assert_true(tparse("UnixMs", "12x", NULL) == -1);
    assert_true(tparse("2006-01-02 15:04:05", "2024-03-05 06:07:08", NULL) == 1709618828 * S);
    assert_true(tparse("2006-01-02 15:04:05.000", "2024-03-05 06:07:08.123", NULL) ==
                1709618828 * S + 123000000);
    /* a fraction after the seconds is accepted even without one in the layout */
    assert_true(tparse("2006-01-02 15:04:05", "2024-03-05 06:07:08.5", NULL) ==
                1709618828 * S + 500000000);
    assert_true(tparse("2006-01-02 15:04:05.000", "2024-03-05 06:07:08.12", NULL) == -1);
    assert_true(tparse("02/Jan/2006:15:04:05 -0700", "05/Mar/2024:08:07:08 +0200", NULL) ==
                1709618828 * S);
    assert_true(tparse("RFC1123", "Tue, 05 Mar 2024 06:07:08 GMT", NULL) == 1709618828 * S);
    assert_true(tparse("RFC1123Z", "Tue, 05 Mar 2024 07:07:08 +0100", NULL) == 1709618828 * S);
    assert_true(tparse("ANSIC", "Tue Mar  5 06:07:08 2024", NULL) == 1709618828 * S);
    assert_true(tparse("Jan _2 3:04:05PM 2006", "Mar  5 6:07:08AM 2024", NULL) == 1709618828 * S);
    assert_true(tparse("2006-01-02", "2024-02-30", NULL) == -1);
    assert_true(tparse("2006-01-02 15:04", "2024-03-05 06:07 extra", NULL) == -1);
    /* no year: the current one (now = 2023-11-14) */
    assert_true(tparse("Stamp", "Mar  5 06:07:08", NULL) == 1677996428 * S);
    /* location: Berlin is UTC+1 in March, UTC+2 in July */
    assert_true(tparse("2006-01-02 15:04:05", "2024-03-05 07:07:08", "Europe/Berlin") ==
                1709618828 * S);
    assert_true(tparse("2006-01-02 15:04:05", "2024-07-05 08:07:08", "Europe/Berlin") ==
                (1709618828 + 122 * 86400) * S);
    /* an explicit offset wins over the location */
    assert_true(tparse("2006-01-02 15:04:05 -0700", "2024-03-05 06:07:08 +0000", "Europe/Berlin") ==
                1709618828 * S);
}

static void test_timestamp_stage(void **state)
{
    (void)state;
    struct sl_pipeline *p;
    assert_int_equal(build("pipeline:\n"
                           "  - logfmt: {mapping: {t: \"\"}}\n"
                           "  - timestamp: {source: t, format: UnixMs, fallback_formats: "
                           "[\"2006-01-02T15:04:05\"]}\n",
                           NULL, &p, NULL),
                     0);
    struct got g = {0};
    struct sl_pipeline_stream *s = sl_pipeline_stream_new(p, &base, emit, &g);
    push(s, "no time here", 0, 1);                   /* nothing known yet: kept as read */
    push(s, "t=1709618828000 a", 0, 2);              /* UnixMs */
    push(s, "t=bogus", 0, 3);                        /* fudge: last + 1 ns */
    push(s, "none", 0, 4);                           /* fudge again */
    push(s, "t=2024-03-05T06:07:09 fallback", 0, 5); /* fallback format */
    assert_int_equal(g.n, 5);
    assert_true(g.o[0].ts == 1000);
    assert_true(g.o[1].ts == 1709618828 * SL_NS_PER_SEC);
    assert_true(g.o[2].ts == 1709618828 * SL_NS_PER_SEC + 1);
    assert_true(g.o[3].ts == 1709618828 * SL_NS_PER_SEC + 2);
    assert_true(g.o[4].ts == 1709618829 * SL_NS_PER_SEC);
    sl_pipeline_stream_free(s);
    sl_pipeline_free(p);

    assert_int_equal(build("pipeline:\n"
                           "  - regex: {expression: '^(?P<t>\\S+)'}\n"
                           "  - timestamp: {source: t, format: RFC3339, action_on_failure: skip}\n",
                           NULL, &p, NULL),
                     0);
    memset(&g, 0, sizeof(g));
    s = sl_pipeline_stream_new(p, &base, emit, &g);
    push(s, "2024-03-05T06:07:08Z ok", 0, 1);
    push(s, "garbage", 0, 2);
    assert_true(g.o[0].ts == 1709618828 * SL_NS_PER_SEC);
    assert_true(g.o[1].ts == 1000); /* skip: as read */
    sl_pipeline_stream_free(s);
    sl_pipeline_free(p);
}

/* --- multiline --- */

static void test_multiline(void **state)
{
    (void)state;
    struct sl_pipeline *p;
    assert_int_equal(build("pipeline:\n"
                           "  - multiline: {firstline: '^\\d{4}-', max_wait_time: 2s, max_lines: "
                           "4}\n"
                           "  - regex: {expression: '^\\S+ (?P<level>[A-Z]+)'}\n"
                           "  - labels: {level: \"\"}\n",
                           NULL, &p, NULL),
                     0);
    assert_true(sl_pipeline_has_multiline(p));
    sl_pipeline_set_clocks(p, mono, wall);
    fake_mono = 100 * SL_NS_PER_SEC;
    struct got g = {0};
    struct sl_pipeline_stream *s = sl_pipeline_stream_new(p, &base, emit, &g);
    assert_true(push(s, "2024-03-05 ERROR boom", 0, 10));
    assert_false(push(s, "  at a.b(C.java:1)", 0, 20));
    assert_true(push(s, "2024-03-05 WARN other stream", 1, 30)); /* stderr: own block */
    assert_false(push(s, "  at c.d(D.java:2)", 0, 40));
    assert_int_equal(g.n, 0);
    assert_true(sl_pipeline_expire(p, fake_mono) == fake_mono + 2 * SL_NS_PER_SEC);
    assert_true(push(s, "2024-03-05 INFO next", 0, 50)); /* flushes the first block */
    assert_int_equal(g.n, 1);
    assert_string_equal(g.o[0].line,
                        "2024-03-05 ERROR boom\n  at a.b(C.java:1)\n  at c.d(D.java:2)");
    assert_string_equal(g.o[0].labels, "{level=\"ERROR\", namespace=\"prod\", pod=\"api-1\"}");
    /* the stderr block started after cookie 20: acking must not go past it */
    assert_int_equal(g.o[0].cookie, 20);
    /* max_lines */
    assert_false(push(s, "  1", 0, 60));
    assert_false(push(s, "  2", 0, 70));
    assert_int_equal(g.n, 1);
    assert_false(push(s, "  3", 0, 75));
    assert_int_equal(g.n, 2);
    assert_string_equal(g.o[1].line, "2024-03-05 INFO next\n  1\n  2\n  3");
    /* a line with no block yet starts one */
    assert_true(push(s, "orphan", 0, 80));
    /* max_wait_time: both blocks expire in deadline order */
    fake_mono += 3 * SL_NS_PER_SEC;
    assert_true(sl_pipeline_expire(p, fake_mono) == -1);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.o[2].line, "2024-03-05 WARN other stream");
    assert_int_equal(g.o[2].cookie, 30); /* its own: the stdout block started later */
    assert_string_equal(g.o[3].line, "orphan");
    assert_int_equal(g.o[3].cookie, 80);
    /* flush on shutdown */
    assert_true(push(s, "2024 pending", 0, 90));
    sl_pipeline_flush_all(p);
    assert_int_equal(g.n, 5);
    assert_true(sl_pipeline_expire(p, fake_mono) == -1);
    /* a stream freed with a block held, then the pipeline */
    push(s, "held", 1, 100);
    sl_pipeline_stream_free(s);
    assert_true(sl_pipeline_expire(p, fake_mono + 100 * SL_NS_PER_SEC) == -1);
    sl_pipeline_free(p);
}

static void test_stream_outlives_pipeline(void **state)
{
    (void)state;
    struct sl_pipeline *p;
    assert_int_equal(build("pipeline:\n  - multiline: {firstline: '^x'}\n", NULL, &p, NULL), 0);
    struct got g = {0};
    struct sl_pipeline_stream *s = sl_pipeline_stream_new(p, &base, emit, &g);
    struct sl_pipeline_stream *s2 = sl_pipeline_stream_new(p, &base, emit, &g);
    push(s, "x1", 0, 1);
    push(s2, "x2", 0, 1);
    sl_pipeline_stream_free(s2);
    sl_pipeline_free(p);
    sl_pipeline_stream_free(s);
    assert_int_equal(g.n, 0);
}

/* --- logfmt scanner --- */

struct pairs {
    int n;
    char buf[512];
};

static void pair(void *ud, struct sl_bytes k, struct sl_bytes v)
{
    struct pairs *p = ud;
    size_t l = strlen(p->buf);
    snprintf(p->buf + l, sizeof(p->buf) - l, "[%.*s=%.*s]", (int)k.len, k.ptr, (int)v.len, v.ptr);
    p->n++;
}

static void test_logfmt_scanner(void **state)
{
    (void)state;
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct pairs p = {0};
    const char *line = " a=1 b=\"x y\\n\" flag =bad c= d=\"unterminated";
    sl__pl_logfmt_scan(&a, sl_bytes_str(line), pair, &p);
    assert_string_equal(p.buf, "[a=1][b=x y\n][flag=][c=]");
    memset(&p, 0, sizeof(p));
    sl__pl_logfmt_scan(&a, sl_bytes_str("k=\"v\"junk z=\"\\u00e9\" \"q\"=1"), pair, &p);
    assert_string_equal(p.buf, "[z=\xc3\xa9]");
    sl_arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_json_labels_metadata_output),
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_logfmt_regex_static_drop_keep),
        cmocka_unit_test(test_invalid_labels_skipped),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_time_formats),
        cmocka_unit_test(test_timestamp_stage),
        cmocka_unit_test(test_multiline),
        cmocka_unit_test(test_stream_outlives_pipeline),
        cmocka_unit_test(test_logfmt_scanner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
