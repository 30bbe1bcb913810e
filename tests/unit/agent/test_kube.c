/* Kubernetes pod metadata: label sanitizing, the pod map and watch event
 * parsing (the HTTP side is exercised by tests/integration/test_agent_kube.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "agent/kube/kube.c"

static void check_sanitize(const char *in, const char *want)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_kube_sanitize_name(sl_bytes_str(in), &b);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    sl_buf_release(&b);
}

static void test_sanitize(void **state)
{
    (void)state;
    check_sanitize("app", "app");
    check_sanitize("app.kubernetes.io/name", "app_kubernetes_io_name");
    check_sanitize("team-x", "team_x");
    check_sanitize("9lives", "_9lives");
    check_sanitize("", "");
}

struct fx {
    uv_loop_t loop;
    struct sl_metrics *m;
    struct sl_kube *k;
    char *allow[3];
    struct sl_strlist list;
};

static int setup(void **state)
{
    struct fx *f = SL_NEW(struct fx);
    uv_loop_init(&f->loop);
    f->m = sl_metrics_new();
    f->allow[0] = "app.kubernetes.io/name";
    f->allow[1] = "app";
    f->allow[2] = "app_kubernetes_io/name"; /* sanitizes like [0]: first wins */
    f->list = (struct sl_strlist){f->allow, 3};
    struct sl_kube_opts o = {
        .host = "https://127.0.0.1:1/", .node_name = "n1", .pod_labels = &f->list};
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_kube_new(&f->loop, &o, f->m, &f->k, &err), 0);
    assert_string_equal(f->k->host, "https://127.0.0.1:1");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sl_kube_free(f->k);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_metrics_free(f->m);
    sl_free(f);
    return 0;
}

static const char *label(struct sl_kube *k, const char *uid, const char *name)
{
    static char out[128];
    const struct sl_label *l;
    size_t n = sl_kube_pod_labels(k, sl_bytes_str(uid), &l);
    for (size_t i = 0; i < n; i++)
        if (sl_bytes_eq_str(l[i].name, name)) {
            snprintf(out, sizeof(out), "%.*s", (int)l[i].value.len, l[i].value.ptr);
            return out;
        }
    return NULL;
}

static int feed(struct sl_kube *k, const char *s)
{
    return on_watch_body(200, sl_bytes_str(s), k);
}

static void test_watch_events(void **state)
{
    struct fx *f = *state;
    struct sl_kube *k = f->k;
    /* An event split over chunks, then two in one chunk. */
    assert_int_equal(feed(k, "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{"
                             "\"uid\":\"u1\",\"resourceVersion\":\"5\",\"labels\":{"
                             "\"app.kubernetes.io/name\":\"web\","),
                     0);
    assert_int_equal(sl_kube_npods(k), 0);
    assert_int_equal(feed(k, "\"app_kubernetes_io/name\":\"other\",\"app\":\"w\",\"x\":\"no\"}}}}\n"
                             "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"uid\":\"u2\","
                             "\"resourceVersion\":\"6\"}}}\n"
                             "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{"
                             "\"resourceVersion\":\"9\"}}}\n"),
                     0);
    assert_int_equal(sl_kube_npods(k), 2);
    assert_string_equal(k->rv, "9");
    assert_string_equal(label(k, "u1", "app_kubernetes_io_name"), "web");
    assert_string_equal(label(k, "u1", "app"), "w");
    assert_null(label(k, "u1", "x"));
    const struct sl_label *l;
    assert_int_equal(sl_kube_pod_labels(k, sl_bytes_str("u1"), &l), 2);
    assert_true(sl_bytes_eq_str(l[0].name, "app")); /* sorted */
    assert_int_equal(sl_kube_pod_labels(k, sl_bytes_str("u2"), &l), 0);
    assert_int_equal(sl_kube_pod_labels(k, sl_bytes_str("u3"), &l), 0);
    assert_int_equal(sl_metric_value(k->m_pods), 2);
    /* MODIFIED replaces, DELETED removes, junk is counted. */
    feed(k, "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"uid\":\"u1\",\"labels\":{"
            "\"app\":\"w2\"}}}}\n");
    assert_string_equal(label(k, "u1", "app"), "w2");
    assert_null(label(k, "u1", "app_kubernetes_io_name"));
    feed(k, "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"uid\":\"u2\"}}}\nnot json\n");
    assert_int_equal(sl_kube_npods(k), 1);
    assert_int_equal(sl_metric_value(k->m_errors), 1);
    assert_false(k->gone);
    feed(k, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}\n");
    assert_true(k->gone);
    /* A non-200 body is not parsed as events. */
    assert_int_equal(on_watch_body(410, sl_bytes_str("{\"type\":\"ADDED\"}\n"), k), 0);
    assert_int_equal(k->line.len, 0);
}

static void test_urls(void **state)
{
    struct fx *f = *state;
    struct sl_buf u = SL_BUF_INIT;
    pods_url(f->k, &u, false);
    assert_string_equal(u.data, "https://127.0.0.1:1/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&"
                                "resourceVersion=0");
    sl_buf_clear(&u);
    f->k->rv = sl_strdup("12 3");
    pods_url(f->k, &u, true);
    assert_string_equal(u.data, "https://127.0.0.1:1/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&"
                                "watch=1&allowWatchBookmarks=true&timeoutSeconds=300&"
                                "resourceVersion=12%203");
    sl_buf_release(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test_setup_teardown(test_watch_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
