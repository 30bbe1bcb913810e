/* Discovery: path -> labels parsing, name filters, and a real scan of a
 * kubelet-layout tree on a libuv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "agent/discover/discover.h"
#include "common/err.h"

static bool eq(struct sl_bytes b, const char *s)
{
    return sl_bytes_eq_str(b, s);
}

static void test_parse_path(void **state)
{
    (void)state;
    struct sl_log_path lp;
    assert_int_equal(sl_discover_parse_path(
                         "/var/log/pods",
                         "/var/log/pods/kube-system_coredns-5d78c9869d-abcde_0f1e2d3c-aaaa-bbbb/"
                         "coredns/0.log",
                         &lp),
                     0);
    assert_true(eq(lp.ns, "kube-system"));
    assert_true(eq(lp.pod, "coredns-5d78c9869d-abcde"));
    assert_true(eq(lp.uid, "0f1e2d3c-aaaa-bbbb"));
    assert_true(eq(lp.container, "coredns"));
    assert_true(eq(lp.file, "0.log"));
    /* trailing slash on the root, multi-digit restart counts */
    assert_int_equal(sl_discover_parse_path("/p/", "/p/my-ns.x_web-0_u-1/side-car/12.log", &lp), 0);
    assert_true(eq(lp.ns, "my-ns.x"));
    assert_true(eq(lp.pod, "web-0"));
    assert_true(eq(lp.container, "side-car"));
}

static void test_rejects_non_matching(void **state)
{
    (void)state;
    struct sl_log_path lp;
    const char *bad[] = {
        "/p/ns_pod_uid/c/0.log.20240101-000000",
        "/p/ns_pod_uid/c/0.log.gz",
        "/p/ns_pod_uid/c/.0.log",
        "/p/ns_pod_uid/c/.log",
        "/p/ns_pod/c/0.log",
        "/p/ns_pod_uid_extra/c/0.log",
        "/p/_pod_uid/c/0.log",
        "/p/ns__uid/c/0.log",
        "/p/ns_pod_/c/0.log",
        "/p/ns_pod_uid/0.log",
        "/p/ns_pod_uid/c/d/0.log",
        "/q/ns_pod_uid/c/0.log",
        "/pp/ns_pod_uid/c/0.log",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sl_discover_parse_path("/p", bad[i], &lp), SL_EINVAL);
    assert_true(sl_discover_is_log_name(SL_BYTES_LIT("0.log")));
    assert_false(sl_discover_is_log_name(SL_BYTES_LIT("0.log.20240101-000000")));
    assert_false(sl_discover_is_log_name(SL_BYTES_LIT("0.log.gz")));
}

struct seen {
    int n;
    char paths[8][512];
};

static void on_file(void *ud, const char *path, int source)
{
    struct seen *s = ud;
    assert_int_equal(source, SL_DISCOVER_PODS);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->paths[i], path))
            return;
    assert_true(s->n < 8);
    snprintf(s->paths[s->n++], 512, "%s", path);
}

static void touch(const char *p)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
}

static void on_tick(uv_timer_t *t)
{
    struct seen *s = t->data;
    if (s->n >= 2 || uv_now(t->loop) > 5000 + (uint64_t)0)
        uv_stop(t->loop);
}

static void test_scan_and_watch(void **state)
{
    (void)state;
    char root[] = "/tmp/sluice-test-discover-XXXXXX";
    char p[512];
    assert_non_null(mkdtemp(root));
    snprintf(p, sizeof(p), "%s/ns_pod-a_u1", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ns_pod-a_u1/app", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ns_pod-a_u1/app/0.log", root);
    touch(p);
    snprintf(p, sizeof(p), "%s/ns_pod-a_u1/app/0.log.20240101-000000", root);
    touch(p);
    snprintf(p, sizeof(p), "%s/not-a-pod", root);
    mkdir(p, 0755);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen s = {0};
    struct sl_discover *d = sl_discover_new(&loop, root, NULL, 0, 60LL * 1000000000LL, on_file, &s);
    sl_discover_start(d);
    assert_int_equal(s.n, 1);
    assert_non_null(strstr(s.paths[0], "/ns_pod-a_u1/app/0.log"));
    assert_int_equal(sl_discover_nwatches(d), 3); /* root, pod, container */

    /* A pod created later is found through inotify, well before the sweep. */
    snprintf(p, sizeof(p), "%s/ns2_pod-b_u2", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ns2_pod-b_u2/web", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ns2_pod-b_u2/web/0.log", root);
    touch(p);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &s;
    uv_timer_start(&t, on_tick, 10, 10);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.n, 2);
    assert_non_null(strstr(s.paths[1], "/ns2_pod-b_u2/web/0.log"));

    /* A removed pod directory loses its watches at the sweep. */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/ns2_pod-b_u2'", root);
    assert_int_equal(system(cmd), 0);
    sl_discover_sweep(d);
    assert_int_equal(sl_discover_nwatches(d), 3);

    uv_close((uv_handle_t *)&t, NULL);
    sl_discover_free(d);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_path),
        cmocka_unit_test(test_rejects_non_matching),
        cmocka_unit_test(test_scan_and_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
