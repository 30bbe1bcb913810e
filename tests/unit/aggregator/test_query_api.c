/* Querier core against the real ingester (sl_querier_run: request -> JSON),
 * and the HTTP layer end to end on 127.0.0.1 (parameters, errors, routes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>

#include "aggregator/ingester/ingester.h"
#include "aggregator/querier/querier.h"
#include "aggregator/querier/query_api.h"
#include "common/err.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/mem.h"
#include "common/timeutil.h"

#define S(x) ((int64_t)(x)*SL_NS_PER_SEC)
#define BASE S(1700000000)

static struct sl_ingester *ing;

static void push(const char *tenant, const char *labels, int64_t ts, const char *line)
{
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_labels ls;
    assert_int_equal(sl_labels_parse(&a, labels, strlen(labels), &ls, NULL), 0);
    sl_labels_sort(&ls);
    struct sl_batch_entry e = {.ts_ns = ts, .line = sl_bytes_str(line)};
    struct sl_push_result res = {0};
    assert_int_equal(sl_ingester_push(ing, sl_bytes_str(tenant), &ls, &e, 1, NULL, &res), 0);
    assert_int_equal(res.accepted, 1);
    sl_arena_release(&a);
}

static int setup(void **state)
{
    (void)state;
    struct sl_ingester_opts o = {.block_size = 256, .max_chunk_age_ns = S(7200)};
    ing = sl_ingester_new(&o, NULL);
    /* api: 10 lines at BASE+0,2,4..18 ; web: 10 lines at BASE+1,3..19 */
    for (int i = 0; i < 10; i++) {
        char line[64];
        snprintf(line, sizeof line, "api line %d %s", i, i % 3 == 0 ? "error" : "ok");
        push("t1", "{app=\"api\", env=\"prod\"}", BASE + S(2 * i), line);
        snprintf(line, sizeof line, "web line %d %s", i, i % 2 == 0 ? "error" : "ok");
        push("t1", "{app=\"web\", env=\"dev\", pod=\"w-1\"}", BASE + S(2 * i + 1), line);
    }
    push("t2", "{app=\"other\"}", BASE, "other tenant");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_ingester_free(ing);
    return 0;
}

static json_t *run(struct sl_querier_request *r, int want_status)
{
    struct sl_querier_result res;
    sl_querier_run(ing, r, &res);
    if (res.status != want_status)
        fail_msg("status %d (want %d): %.*s", res.status, want_status, (int)res.body.len,
                 res.body.data);
    json_t *j = NULL;
    if (res.json) {
        json_error_t e;
        j = json_loadb(res.body.data, res.body.len, 0, &e);
        assert_non_null(j);
    } else {
        j = json_stringn(res.body.data, res.body.len);
    }
    sl_buf_release(&res.body);
    return j;
}

static struct sl_querier_request logs(const char *q, int64_t limit, bool forward)
{
    struct sl_querier_request r = {.kind = SL_QUERIER_LOGS,
                                   .tenant = SL_BYTES_LIT("t1"),
                                   .query = sl_bytes_str(q),
                                   .start_ns = BASE,
                                   .end_ns = BASE + S(100),
                                   .limit = limit,
                                   .forward = forward};
    return r;
}

/* "app:ts-offset,ts-offset;app:..." summary of a streams result. */
static void summarize(json_t *j, char *out, size_t n)
{
    assert_string_equal(json_string_value(json_object_get(j, "status")), "success");
    json_t *data = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(data, "resultType")), "streams");
    json_t *result = json_object_get(data, "result"), *s;
    size_t i, k, o = 0;
    out[0] = 0;
    json_array_foreach(result, i, s)
    {
        const char *app = json_string_value(json_object_get(json_object_get(s, "stream"), "app"));
        o += (size_t)snprintf(out + o, n - o, "%s%s:", i ? ";" : "", app);
        json_t *v;
        json_array_foreach(json_object_get(s, "values"), k, v)
        {
            long long ts = atoll(json_string_value(json_array_get(v, 0)));
            o += (size_t)snprintf(out + o, n - o, "%s%lld", k ? "," : "", (ts - BASE) / S(1));
        }
    }
}

static void expect_logs(const char *q, int64_t limit, bool forward, const char *want)
{
    struct sl_querier_request r = logs(q, limit, forward);
    json_t *j = run(&r, 200);
    char got[1024];
    summarize(j, got, sizeof got);
    json_decref(j);
    if (strcmp(got, want) != 0)
        fail_msg("%s limit=%lld forward=%d: got %s want %s", q, (long long)limit, forward, got,
                 want);
}

static void test_limit_and_direction(void **state)
{
    (void)state;
    /* The limit applies across streams: the 5 newest are 19,18,17,16,15. */
    expect_logs("{env=~\".+\"}", 5, false, "api:18,16;web:19,17,15");
    expect_logs("{env=~\".+\"}", 5, true, "api:0,2,4;web:1,3");
    expect_logs("{app=\"api\"}", 100, true, "api:0,2,4,6,8,10,12,14,16,18");
    expect_logs("{app=\"api\"}", 3, false, "api:18,16,14");
    expect_logs("{app=\"nope\"}", 3, false, "");
}

static void test_filters(void **state)
{
    (void)state;
    expect_logs("{env=~\".+\"} |= \"error\"", 100, true, "api:0,6,12,18;web:1,5,9,13,17");
    expect_logs("{app=\"web\"} != \"error\" |~ \"line [0-3]\"", 100, true, "web:3,7");
    expect_logs("{app=~\"api|web\", env!=\"dev\"} !~ \"ok$\"", 2, false, "api:18,12");
}

static void test_time_range(void **state)
{
    (void)state;
    /* start inclusive, end exclusive */
    struct sl_querier_request r = logs("{app=\"api\"}", 100, true);
    r.start_ns = BASE + S(4);
    r.end_ns = BASE + S(10);
    json_t *j = run(&r, 200);
    char got[256];
    summarize(j, got, sizeof got);
    json_decref(j);
    assert_string_equal(got, "api:4,6,8");
}

static void test_response_shape(void **state)
{
    (void)state;
    struct sl_querier_request r = logs("{app=\"web\"} |= \"line 9\"", 100, false);
    json_t *j = run(&r, 200);
    json_t *res = json_object_get(json_object_get(j, "data"), "result");
    assert_int_equal(json_array_size(res), 1);
    json_t *s = json_array_get(res, 0);
    json_t *st = json_object_get(s, "stream");
    assert_int_equal(json_object_size(st), 3);
    assert_string_equal(json_string_value(json_object_get(st, "pod")), "w-1");
    json_t *v = json_array_get(json_object_get(s, "values"), 0);
    char want_ts[32];
    snprintf(want_ts, sizeof want_ts, "%lld", (long long)(BASE + S(19)));
    assert_string_equal(json_string_value(json_array_get(v, 0)), want_ts);
    assert_string_equal(json_string_value(json_array_get(v, 1)), "web line 9 ok");
    json_t *sum = json_object_get(json_object_get(json_object_get(j, "data"), "stats"), "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "totalEntriesReturned")), 1);
    assert_true(json_integer_value(json_object_get(sum, "totalLinesProcessed")) >= 10);
    json_decref(j);
}

static void test_bad_queries(void **state)
{
    (void)state;
    struct sl_querier_request r = logs("{app=\"api\"} | distinct x", 10, false);
    json_t *j = run(&r, 400);
    assert_string_equal(json_string_value(j), "unsupported in this version: stage \"distinct\"");
    json_decref(j);
    r = logs("approx_topk(2, rate({app=\"api\"}[1m]))", 10, false);
    j = run(&r, 400);
    assert_string_equal(json_string_value(j),
                        "unsupported in this version: function \"approx_topk\"");
    json_decref(j);
    r = logs("{app=\"api\"", 10, false);
    j = run(&r, 400);
    assert_non_null(strstr(json_string_value(j), "parse error at line 1, col 11"));
    json_decref(j);
}

static void test_tenants_isolated(void **state)
{
    (void)state;
    struct sl_querier_request r = logs("{app=~\".+\"}", 100, false);
    r.tenant = SL_BYTES_LIT("t2");
    json_t *j = run(&r, 200);
    char got[256];
    summarize(j, got, sizeof got);
    json_decref(j);
    assert_string_equal(got, "other:0");
    r.tenant = SL_BYTES_LIT("nobody");
    j = run(&r, 200);
    summarize(j, got, sizeof got);
    json_decref(j);
    assert_string_equal(got, "");
}

static char *dumps(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void test_labels_values_series(void **state)
{
    (void)state;
    struct sl_querier_request r = {.kind = SL_QUERIER_LABELS,
                                   .tenant = SL_BYTES_LIT("t1"),
                                   .start_ns = BASE,
                                   .end_ns = BASE + S(100)};
    char *s = dumps(run(&r, 200));
    assert_string_equal(s, "{\"status\":\"success\",\"data\":[\"app\",\"env\",\"pod\"]}");
    free(s);

    /* A window with no entries: nothing. */
    r.start_ns = BASE + S(50);
    s = dumps(run(&r, 200));
    assert_string_equal(s, "{\"status\":\"success\",\"data\":[]}");
    free(s);
    r.start_ns = BASE;

    r.kind = SL_QUERIER_LABEL_VALUES;
    r.label_name = SL_BYTES_LIT("app");
    s = dumps(run(&r, 200));
    assert_string_equal(s, "{\"status\":\"success\",\"data\":[\"api\",\"web\"]}");
    free(s);
    r.query = SL_BYTES_LIT("{env=\"dev\"}");
    s = dumps(run(&r, 200));
    assert_string_equal(s, "{\"status\":\"success\",\"data\":[\"web\"]}");
    free(s);
    r.query = SL_BYTES_LIT("{env=\"\"}");
    json_decref(run(&r, 400));

    struct sl_bytes m[] = {SL_BYTES_LIT("{app=\"web\"}"), SL_BYTES_LIT("{env=~\"pro.\"}"),
                           SL_BYTES_LIT("{app=\"web\"}")};
    r = (struct sl_querier_request){.kind = SL_QUERIER_SERIES,
                                    .tenant = SL_BYTES_LIT("t1"),
                                    .match = m,
                                    .nmatch = 3,
                                    .start_ns = BASE,
                                    .end_ns = BASE + S(100)};
    s = dumps(run(&r, 200));
    assert_string_equal(s, "{\"status\":\"success\",\"data\":[{\"app\":\"api\",\"env\":\"prod\"},"
                           "{\"app\":\"web\",\"env\":\"dev\",\"pod\":\"w-1\"}]}");
    free(s);
    r.nmatch = 1;
    s = dumps(run(&r, 200));
    assert_string_equal(s, "{\"status\":\"success\",\"data\":[{\"app\":\"web\",\"env\":\"dev\","
                           "\"pod\":\"w-1\"}]}");
    free(s);
    struct sl_bytes bad[] = {SL_BYTES_LIT("{app=\"web\"} |= \"x\"")};
    r.match = bad;
    json_decref(run(&r, 400));
}

static void test_deadline(void **state)
{
    (void)state;
    struct sl_querier_request r = logs("{env=~\".+\"}", 100, false);
    r.deadline_mono_ns = 1; /* long past; checked every 1024 lines */
    for (int i = 0; i < 3000; i++)
        push("t3", "{app=\"big\"}", BASE + i, "x");
    r.tenant = SL_BYTES_LIT("t3");
    r.query = SL_BYTES_LIT("{app=\"big\"} |= \"never\"");
    json_decref(run(&r, 504));
}

/* ---- HTTP end to end ---- */

struct http_case {
    const char *method, *path, *body, *org;
    int want_status;
    const char *want_substr;
};

static const struct http_case http_cases[] = {
    {"GET",
     "/loki/api/v1/query_range?query=%7Bapp%3D%22api%22%7D&start=1700000000&end=1700000100&limit=2",
     NULL, "t1", 200,
     "\"values\":[[\"1700000018000000000\",\"api line 9 error\"],"
     "[\"1700000016000000000\",\"api line 8 ok\"]]"},
    {"GET",
     "/loki/api/v1/query_range?query={app=\"api\"}&start=1700000000&end=1700000100"
     "&limit=1&direction=FORWARD",
     NULL, "t1", 200, "[[\"1700000000000000000\",\"api line 0 error\"]]"},
    {"POST", "/loki/api/v1/query_range",
     "query=%7Bapp%3D%22web%22%7D+%7C%3D+%22line+3%22&start=1700000000&end=1700000100", "t1", 200,
     "\"web line 3 ok\""},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}", NULL, "nobody", 200, "\"result\":[]"},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}&limit=6000", NULL, "t1", 400,
     "max entries limit per query exceeded, limit > max_entries_limit (6000 > 5000)"},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}&limit=0", NULL, "t1", 400,
     "limit must be a positive value"},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}&start=yesterday", NULL, "t1", 400,
     "invalid parameter \"start\""},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}&since=forever", NULL, "t1", 400,
     "invalid parameter \"since\""},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}&start=1700000100&end=1700000000", NULL,
     "t1", 400, "end timestamp must not be before or equal to start time"},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}&direction=up", NULL, "t1", 400,
     "invalid parameter \"direction\""},
    {"GET", "/loki/api/v1/query_range", NULL, "t1", 400, "invalid parameter \"query\""},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}|distinct%20a", NULL, "t1", 400,
     "unsupported in this version: stage \"distinct\""},
    {"GET", "/loki/api/v1/query_range?query={app=\"api\"}", NULL, "bad/tenant", 400, NULL},
    {"GET", "/loki/api/v1/query?query={app=\"api\"}", NULL, "t1", 400,
     "log queries are not supported as an instant query type"},
    {"GET", "/loki/api/v1/query?query=count_over_time({app=\"api\"}[1m])", NULL, "t1", 200,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\""},
    {"GET", "/loki/api/v1/labels?start=1700000000&end=1700000100", NULL, "t1", 200,
     "{\"status\":\"success\",\"data\":[\"app\",\"env\",\"pod\"]}"},
    {"GET", "/loki/api/v1/label/app/values?start=1700000000&end=1700000100&query={pod=\"w-1\"}",
     NULL, "t1", 200, "{\"status\":\"success\",\"data\":[\"web\"]}"},
    {"GET", "/loki/api/v1/label/a-b/values", NULL, "t1", 400, "invalid label name"},
    {"GET",
     "/loki/api/v1/series?match[]={app=\"api\"}&match%5B%5D={pod=\"w-1\"}"
     "&start=1700000000&end=1700000100",
     NULL, "t1", 200,
     "{\"status\":\"success\",\"data\":[{\"app\":\"api\",\"env\":\"prod\"},{\"app\":\"web\","
     "\"env\":\"dev\",\"pod\":\"w-1\"}]}"},
    {"POST", "/loki/api/v1/series", "match[]=%7Bapp%3D%22api%22%7D&start=1700000000", "t1", 200,
     "{\"app\":\"api\",\"env\":\"prod\"}"},
    {"GET", "/loki/api/v1/series", NULL, "t1", 400, "invalid parameter \"match[]\""},
};

struct http_env {
    uv_loop_t loop;
    uv_async_t stop;
    struct sl_http_server *srv;
    int port;
    int failures;
    char msg[2048];
};

static void server_closed(void *ud)
{
    (void)ud;
}

/* The client is done: close the server so that uv_run returns. */
static void on_stop(uv_async_t *a)
{
    struct http_env *env = a->data;
    uv_close((uv_handle_t *)a, NULL);
    sl_http_server_close(env->srv, server_closed, NULL);
}

static void *client_thread(void *ud)
{
    struct http_env *env = ud;
    for (size_t i = 0; i < SL_ARRAY_LEN(http_cases) && !env->failures; i++) {
        const struct http_case *c = &http_cases[i];
        char url[1024], org[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", env->port, c->path);
        snprintf(org, sizeof org, "X-Scope-OrgID: %s", c->org);
        const char *hdrs[] = {org, "Content-Type: application/x-www-form-urlencoded", NULL};
        struct sl_http_req_opts r = {.method = c->method,
                                     .url = url,
                                     .headers = hdrs,
                                     .body = c->body,
                                     .body_len = c->body ? strlen(c->body) : 0};
        struct sl_http_response resp;
        int rc = sl_http_fetch(NULL, &r, &resp);
        const char *body = resp.body.data ? resp.body.data : "";
        if (rc || resp.status != c->want_status ||
            (c->want_substr && !strstr(body, c->want_substr))) {
            env->failures++;
            snprintf(env->msg, sizeof env->msg, "%s %s: rc=%d status=%d body=%s", c->method,
                     c->path, rc, resp.status, body);
        }
        sl_http_response_release(&resp);
    }
    uv_async_send(&env->stop);
    return NULL;
}

static void test_http(void **state)
{
    (void)state;
    struct http_env env = {0};
    uv_loop_init(&env.loop);
    struct sl_http_server *srv = sl_http_server_new(&env.loop, &(struct sl_http_server_opts){0});
    struct sl_query_api_opts o = {.max_entries_limit = 5000,
                                  .max_query_series = 500,
                                  .query_timeout_ns = S(60),
                                  .loop = &env.loop};
    struct sl_query_api *api = sl_query_api_new(srv, ing, NULL, &o);
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_http_server_listen(srv, "127.0.0.1:0", &err), 0);
    sl_buf_release(&err);
    env.port = sl_http_server_port(srv);
    uv_async_init(&env.loop, &env.stop, on_stop);
    env.stop.data = &env;
    env.srv = srv;
    pthread_t th;
    pthread_create(&th, NULL, client_thread, &env);
    uv_run(&env.loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    sl_query_api_free(api);
    assert_int_equal(uv_loop_close(&env.loop), 0);
    if (env.failures)
        fail_msg("%s", env.msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_and_direction),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_response_shape),
        cmocka_unit_test(test_bad_queries),
        cmocka_unit_test(test_tenants_isolated),
        cmocka_unit_test(test_labels_values_series),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_deadline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
