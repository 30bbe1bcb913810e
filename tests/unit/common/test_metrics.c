/* Tests for common/metrics.c: exact text rendering, escaping, histograms,
 * gauge funcs, concurrent lock-free updates, and promtool's own check of the
 * output when promtool is installed. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/metrics.h"

static double uptime(void *ud)
{
    return *(double *)ud;
}

/* A registry exercising every kind of family; registration order is not
 * name order on purpose. */
static struct sl_metrics *sample_registry(double *up)
{
    struct sl_metrics *r = sl_metrics_new();
    struct sl_metric_family *lines = sl_metrics_counter(
        r, "sluice_test_lines_total", "Lines seen, by tenant and reason.", "tenant, reason");
    struct sl_metric_family *files =
        sl_metrics_gauge(r, "sluice_test_files_active", "Files open.", NULL);
    sl_metrics_counter(r, "sluice_test_bytes_total", "Bytes, with a \\ backslash and\na newline.",
                       NULL);
    sl_metrics_counter(r, "sluice_test_unused_total", "Never used.", "tenant");
    static const double b[] = {0.1, 1};
    struct sl_metric_family *lat = sl_metrics_histogram(r, "sluice_test_request_duration_seconds",
                                                        "Request latency.", "route", b, 2);
    sl_metrics_gauge_func(r, "sluice_test_uptime_seconds", "Seconds since start.", uptime, up);
    struct sl_metric_family *ratio =
        sl_metrics_gauge(r, "sluice_test_ratio", "A fractional gauge.", "kind");

    sl_counter_add(sl_metric_with(lines, "b\"q\\\n", "x"), 1e20);
    struct sl_metric *m = sl_metric_with(lines, "a", "too_long");
    sl_counter_inc(m);
    sl_counter_add(m, 1);
    sl_counter_add(m, -5); /* ignored: counters never go down */
    sl_gauge_set(sl_metric_with(files), 3.5);
    struct sl_metric *h = sl_metric_with(lat, "push");
    sl_histogram_observe(h, 0.0625);
    sl_histogram_observe(h, 1); /* le is inclusive */
    sl_histogram_observe(h, 4.5);
    sl_metric_with(lat, "query"); /* a child with no observations */
    struct sl_metric *g = sl_metric_with(ratio, "sum");
    sl_gauge_set(g, 0.1);
    sl_gauge_add(g, 0.2);
    sl_gauge_set(sl_metric_with(ratio, "neg"), -2.5e-7);
    sl_gauge_set(sl_metric_with(ratio, "inf"), -1.0 / 0.0);
    return r;
}

static const char expected[] =
    "# HELP sluice_test_bytes_total Bytes, with a \\\\ backslash and\\na newline.\n"
    "# TYPE sluice_test_bytes_total counter\n"
    "sluice_test_bytes_total 0\n"
    "# HELP sluice_test_files_active Files open.\n"
    "# TYPE sluice_test_files_active gauge\n"
    "sluice_test_files_active 3.5\n"
    "# HELP sluice_test_lines_total Lines seen, by tenant and reason.\n"
    "# TYPE sluice_test_lines_total counter\n"
    "sluice_test_lines_total{tenant=\"a\",reason=\"too_long\"} 2\n"
    "sluice_test_lines_total{tenant=\"b\\\"q\\\\\\n\",reason=\"x\"} 1e+20\n"
    "# HELP sluice_test_ratio A fractional gauge.\n"
    "# TYPE sluice_test_ratio gauge\n"
    "sluice_test_ratio{kind=\"inf\"} -Inf\n"
    "sluice_test_ratio{kind=\"neg\"} -2.5e-07\n"
    "sluice_test_ratio{kind=\"sum\"} 0.30000000000000004\n"
    "# HELP sluice_test_request_duration_seconds Request latency.\n"
    "# TYPE sluice_test_request_duration_seconds histogram\n"
    "sluice_test_request_duration_seconds_bucket{route=\"push\",le=\"0.1\"} 1\n"
    "sluice_test_request_duration_seconds_bucket{route=\"push\",le=\"1\"} 2\n"
    "sluice_test_request_duration_seconds_bucket{route=\"push\",le=\"+Inf\"} 3\n"
    "sluice_test_request_duration_seconds_sum{route=\"push\"} 5.5625\n"
    "sluice_test_request_duration_seconds_count{route=\"push\"} 3\n"
    "sluice_test_request_duration_seconds_bucket{route=\"query\",le=\"0.1\"} 0\n"
    "sluice_test_request_duration_seconds_bucket{route=\"query\",le=\"1\"} 0\n"
    "sluice_test_request_duration_seconds_bucket{route=\"query\",le=\"+Inf\"} 0\n"
    "sluice_test_request_duration_seconds_sum{route=\"query\"} 0\n"
    "sluice_test_request_duration_seconds_count{route=\"query\"} 0\n"
    "# HELP sluice_test_uptime_seconds Seconds since start.\n"
    "# TYPE sluice_test_uptime_seconds gauge\n"
    "sluice_test_uptime_seconds 12.25\n";

static void test_render(void **state)
{
    (void)state;
    double up = 12.25;
    struct sl_metrics *r = sample_registry(&up);
    struct sl_buf out = SL_BUF_INIT;
    sl_buf_append_str(&out, ""); /* render appends */
    sl_metrics_render(r, &out);
    assert_string_equal(out.data, expected);
    /* gauge funcs are called at each render */
    up = 13;
    sl_buf_clear(&out);
    sl_metrics_render(r, &out);
    assert_non_null(strstr(out.data, "\nsluice_test_uptime_seconds 13\n"));
    sl_buf_release(&out);
    sl_metrics_free(r);
}

static void test_values_and_lookup(void **state)
{
    (void)state;
    struct sl_metrics *r = sl_metrics_new();
    struct sl_metric_family *f = sl_metrics_counter(r, "sluice_x_total", "X.", "tenant,reason");
    /* same name, type and labels: the same family */
    assert_ptr_equal(sl_metrics_counter(r, "sluice_x_total", "X.", "tenant, reason"), f);
    struct sl_metric *a = sl_metric_with(f, "t1", "r");
    assert_ptr_equal(sl_metric_with(f, "t1", "r"), a);
    const char *v[] = {"t1", "r"};
    assert_ptr_equal(sl_metric_withv(f, v), a);
    /* values are not concatenated: ("t1r", "") differs from ("t1", "r") */
    assert_ptr_not_equal(sl_metric_with(f, "t1r", ""), a);
    /* many children (the table grows) keep their identity */
    struct sl_metric *kids[300];
    char name[16];
    for (int k = 0; k < 300; k++) {
        snprintf(name, sizeof(name), "t%d", k);
        kids[k] = sl_metric_with(f, name, "r");
        sl_counter_add(kids[k], k);
    }
    for (int k = 0; k < 300; k++) {
        snprintf(name, sizeof(name), "t%d", k);
        assert_ptr_equal(sl_metric_with(f, name, "r"), kids[k]);
        assert_true(sl_metric_value(kids[k]) == k);
    }
    sl_counter_add(a, 0.5);
    sl_counter_add(a, 0.0 / 0.0); /* NaN ignored */
    assert_true(sl_metric_value(a) == 1.5);
    struct sl_metric_family *g = sl_metrics_gauge(r, "sluice_g", "G.", NULL);
    struct sl_metric *gm = sl_metric_with(g);
    sl_gauge_add(gm, -4);
    assert_true(sl_metric_value(gm) == -4);
    /* default buckets */
    struct sl_metric_family *h = sl_metrics_histogram(r, "sluice_h_seconds", "H.", NULL, NULL, 0);
    sl_histogram_observe(sl_metric_with(h), 0.003);
    struct sl_buf out = SL_BUF_INIT;
    sl_metrics_render(r, &out);
    assert_non_null(strstr(out.data, "sluice_h_seconds_bucket{le=\"0.001\"} 0\n"
                                     "sluice_h_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(out.data, "sluice_h_seconds_bucket{le=\"10\"} 1\n"
                                     "sluice_h_seconds_bucket{le=\"+Inf\"} 1\n"
                                     "sluice_h_seconds_sum 0.003\n"
                                     "sluice_h_seconds_count 1\n"));
    sl_buf_release(&out);
    sl_metrics_free(r);
}

/* Misuse is a programming error: the process aborts. */
static int aborts(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        dup2(fd, 2);
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void misuse_type(void)
{
    struct sl_metrics *r = sl_metrics_new();
    sl_metrics_counter(r, "sluice_a_total", "A.", NULL);
    sl_metrics_gauge(r, "sluice_a_total", "A.", NULL);
}

static void misuse_labels(void)
{
    struct sl_metrics *r = sl_metrics_new();
    sl_metrics_counter(r, "sluice_a_total", "A.", "x");
    sl_metrics_counter(r, "sluice_a_total", "A.", "y");
}

static void misuse_name(void)
{
    sl_metrics_counter(sl_metrics_new(), "sluice-a", "A.", NULL);
}

static void misuse_le(void)
{
    sl_metrics_histogram(sl_metrics_new(), "sluice_h", "H.", "le", NULL, 0);
}

static void misuse_buckets(void)
{
    static const double b[] = {1, 0.5};
    sl_metrics_histogram(sl_metrics_new(), "sluice_h", "H.", NULL, b, 2);
}

static void fine(void)
{
    struct sl_metrics *r = sl_metrics_new();
    sl_metrics_counter(r, "sluice_a_total", "A.", "x");
    sl_metrics_counter(r, "sluice_a_total", "A.", "x");
    sl_metrics_free(r);
}

static void test_misuse_aborts(void **state)
{
    (void)state;
    assert_true(aborts(misuse_type));
    assert_true(aborts(misuse_labels));
    assert_true(aborts(misuse_name));
    assert_true(aborts(misuse_le));
    assert_true(aborts(misuse_buckets));
    assert_false(aborts(fine));
}

struct worker {
    struct sl_metric *c, *g, *h;
};

#define ROUNDS 200000

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int k = 0; k < ROUNDS; k++) {
        sl_counter_inc(w->c);
        sl_gauge_add(w->g, 0.5);
        sl_histogram_observe(w->h, (k & 1) ? 0.01 : 100);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    struct sl_metrics *r = sl_metrics_new();
    struct worker w = {
        sl_metric_with(sl_metrics_counter(r, "sluice_c_total", "C.", NULL)),
        sl_metric_with(sl_metrics_gauge(r, "sluice_g", "G.", NULL)),
        sl_metric_with(sl_metrics_histogram(r, "sluice_h_seconds", "H.", NULL, NULL, 0)),
    };
    pthread_t t[4];
    for (int k = 0; k < 4; k++)
        pthread_create(&t[k], NULL, work, &w);
    for (int k = 0; k < 4; k++)
        pthread_join(t[k], NULL);
    assert_true(sl_metric_value(w.c) == 4.0 * ROUNDS);
    assert_true(sl_metric_value(w.g) == 2.0 * ROUNDS);
    struct sl_buf out = SL_BUF_INIT;
    sl_metrics_render(r, &out);
    assert_non_null(strstr(out.data, "sluice_h_seconds_bucket{le=\"0.01\"} 400000\n"));
    assert_non_null(strstr(out.data, "sluice_h_seconds_bucket{le=\"10\"} 400000\n"
                                     "sluice_h_seconds_bucket{le=\"+Inf\"} 800000\n"));
    assert_non_null(strstr(out.data, "sluice_h_seconds_count 800000\n"));
    sl_buf_release(&out);
    sl_metrics_free(r);
}

static void test_promtool_accepts(void **state)
{
    (void)state;
    if (access("/usr/bin/promtool", X_OK) != 0)
        skip();
    double up = 1;
    struct sl_metrics *r = sample_registry(&up);
    struct sl_buf out = SL_BUF_INIT;
    sl_metrics_render(r, &out);
    char path[] = "/tmp/sluice-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, out.data, out.len), (ssize_t)out.len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
    int st = system(cmd);
    unlink(path);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    sl_buf_release(&out);
    sl_metrics_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),           cmocka_unit_test(test_values_and_lookup),
        cmocka_unit_test(test_misuse_aborts),    cmocka_unit_test(test_concurrent_updates),
        cmocka_unit_test(test_promtool_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
