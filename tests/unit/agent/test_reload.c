/* Loading the configuration again for SIGHUP: the file and --set overrides
 * are applied in the same order as at start, an invalid file names its key,
 * keys that only take effect at start keep their running values (and say
 * so), and a Kubernetes watcher is rebuilt only when its keys changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/reload.h"
#include "common/err.h"
#include "common/timeutil.h"

static char path[64];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/sluice-test-reload-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void load_current(struct sl_agent_config *cur, const char *const *sets, size_t n)
{
    struct sl_buf err = SL_BUF_INIT;
    memset(cur, 0, sizeof(*cur));
    assert_int_equal(sl_config_load(sl_agent_options, sl_agent_noptions, cur, path, sets, n, &err),
                     0);
    assert_int_equal(sl_agent_config_validate(cur, &err, NULL), 0);
    sl_buf_release(&err);
}

static void test_new_values_and_overrides(void **state)
{
    (void)state;
    static const char *const sets[] = {"client.tenant=from-set"};
    struct sl_reload_source src = {path, sets, 1};
    write_file("client:\n  batch_wait: 2s\n  tenant: from-file\n");
    struct sl_agent_config cur, next;
    load_current(&cur, sets, 1);
    write_file("client:\n  batch_wait: 250ms\n  tenant: from-file\n"
               "pipeline:\n  - static_labels: {env: green}\n");
    struct sl_buf err = SL_BUF_INIT, warn = SL_BUF_INIT;
    assert_int_equal(sl_reload_load(&src, &cur, &next, &err, &warn), 0);
    assert_int_equal(next.client_batch_wait, 250 * SL_NS_PER_MS);
    assert_string_equal(next.client_tenant, "from-set"); /* --set still wins */
    assert_non_null(next.pipeline);
    assert_int_equal(warn.len, 0);
    sl_config_release(sl_agent_options, sl_agent_noptions, &next);
    sl_config_release(sl_agent_options, sl_agent_noptions, &cur);
    sl_buf_release(&err);
    sl_buf_release(&warn);
}

static void test_invalid_names_the_key(void **state)
{
    (void)state;
    struct sl_reload_source src = {path, NULL, 0};
    write_file("");
    struct sl_agent_config cur, next;
    load_current(&cur, NULL, 0);
    static const char *const bad[] = {
        "client:\n  batch_wait: soon\n",
        "client:\n  protocol: carrier-pigeon\n",
        "pipeline:\n  - regex: {expression: '(unclosed'}\n",
        "files:\n  - include: []\n    format: xml\n",
        "clinet:\n  url: http://x\n",
    };
    static const char *const keys[] = {"client.batch_wait", "client.protocol", "pipeline[0]",
                                       "files[0]", "clinet"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sl_buf err = SL_BUF_INIT;
        write_file(bad[i]);
        assert_int_equal(sl_reload_load(&src, &cur, &next, &err, NULL), SL_EINVAL);
        assert_non_null(strstr(err.data, keys[i]));
        sl_buf_release(&err);
    }
    unlink(path);
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_reload_load(&src, &cur, &next, &err, NULL), SL_ENOENT);
    assert_non_null(strstr(err.data, path));
    sl_buf_release(&err);
    sl_config_release(sl_agent_options, sl_agent_noptions, &cur);
}

static void test_start_only_keys_are_kept(void **state)
{
    (void)state;
    struct sl_reload_source src = {path, NULL, 0};
    write_file("server:\n  listen: 127.0.0.1:9080\npositions:\n  file: /a/positions.json\n");
    struct sl_agent_config cur, next;
    load_current(&cur, NULL, 0);
    write_file("server:\n  listen: 127.0.0.1:9999\n  log_level: debug\n"
               "positions:\n  file: /b/positions.json\n");
    struct sl_buf err = SL_BUF_INIT, warn = SL_BUF_INIT;
    assert_int_equal(sl_reload_load(&src, &cur, &next, &err, &warn), 0);
    assert_string_equal(next.server_listen, "127.0.0.1:9080");
    assert_string_equal(next.positions_file, "/a/positions.json");
    assert_string_equal(next.server_log_level, "debug"); /* this one applies */
    assert_non_null(strstr(warn.data, "server.listen"));
    assert_non_null(strstr(warn.data, "positions.file"));
    assert_non_null(strstr(warn.data, "127.0.0.1:9999"));
    sl_config_release(sl_agent_options, sl_agent_noptions, &next);
    sl_config_release(sl_agent_options, sl_agent_noptions, &cur);
    sl_buf_release(&err);
    sl_buf_release(&warn);
}

static void test_kube_changed(void **state)
{
    (void)state;
    struct sl_reload_source src = {path, NULL, 0};
    write_file("kubernetes:\n  node_name: n1\n  api: {enabled: true, host: 'https://k:6443', "
               "pod_labels: [app]}\n");
    struct sl_agent_config cur, next;
    load_current(&cur, NULL, 0);
    static const struct {
        const char *yaml;
        bool changed;
    } cases[] = {
        {"kubernetes:\n  node_name: n1\n  api: {enabled: true, host: 'https://k:6443', "
         "pod_labels: [app]}\nclient: {tenant: t}\n",
         false},
        {"kubernetes:\n  node_name: n2\n  api: {enabled: true, host: 'https://k:6443', "
         "pod_labels: [app]}\n",
         true},
        {"kubernetes:\n  node_name: n1\n  api: {enabled: true, host: 'https://k:6443', "
         "pod_labels: [app, team]}\n",
         true},
        {"kubernetes:\n  node_name: n1\n  api: {enabled: true, host: 'https://k:6443', "
         "pod_labels: [team]}\n",
         true},
        {"kubernetes:\n  node_name: n1\n  api: {enabled: false}\n", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_buf err = SL_BUF_INIT;
        write_file(cases[i].yaml);
        assert_int_equal(sl_reload_load(&src, &cur, &next, &err, NULL), 0);
        assert_int_equal(sl_reload_kube_changed(&cur, &next), cases[i].changed);
        sl_config_release(sl_agent_options, sl_agent_noptions, &next);
        sl_buf_release(&err);
    }
    sl_config_release(sl_agent_options, sl_agent_noptions, &cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_values_and_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_names_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_only_keys_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_changed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
