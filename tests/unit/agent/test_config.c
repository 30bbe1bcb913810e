/* The agent's options table: every DESIGN.md agent key is declared, the
 * defaults load and validate, and bad values name their key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/config/config.h"
#include "common/err.h"
#include "common/timeutil.h"

static const char *const design_keys[] = {
    "server.listen",
    "server.log_level",
    "positions.file",
    "positions.sync_period",
    "client.url",
    "client.protocol",
    "client.compression",
    "client.tenant",
    "client.bearer_token_file",
    "client.batch_size",
    "client.batch_wait",
    "client.timeout",
    "client.backoff.min",
    "client.backoff.max",
    "kubernetes.pods_path",
    "kubernetes.node_name",
    "kubernetes.api.enabled",
    "kubernetes.api.pod_labels",
    "files",
    "pipeline",
    "read.rotate_wait",
    "read.max_line_size",
    "read.sweep_period",
};

static void test_every_key_declared(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(design_keys) / sizeof(design_keys[0]); i++) {
        bool found = false;
        for (size_t j = 0; j < sl_agent_noptions; j++)
            found |= !strcmp(sl_agent_options[j].key, design_keys[i]);
        if (!found)
            fail_msg("option %s is missing", design_keys[i]);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    struct sl_agent_config c;
    struct sl_buf err = SL_BUF_INIT, warn = SL_BUF_INIT;
    memset(&c, 0, sizeof(c));
    assert_int_equal(sl_config_load(sl_agent_options, sl_agent_noptions, &c, NULL, NULL, 0, &err),
                     0);
    assert_int_equal(sl_agent_config_validate(&c, &err, &warn), 0);
    assert_string_equal(c.server_listen, "127.0.0.1:9080");
    assert_string_equal(c.client_url, "http://127.0.0.1:3100/api/v1/push");
    assert_int_equal(c.client_batch_size, 1 << 20);
    assert_int_equal(c.client_batch_wait, SL_NS_PER_SEC);
    assert_int_equal(c.client_backoff_min, 500 * SL_NS_PER_MS);
    assert_int_equal(c.client_backoff_max, 300 * SL_NS_PER_SEC);
    assert_int_equal(c.read_max_line_size, 256 * 1024);
    assert_int_equal(c.codec, SL_CODEC_ZSTD);
    assert_string_equal(c.k8s_pods_path, "/var/log/pods");
    assert_int_equal(c.k8s_api_pod_labels.n, 2);
    assert_int_equal(warn.len, 0);
    sl_config_release(sl_agent_options, sl_agent_noptions, &c);
    sl_buf_release(&err);
    sl_buf_release(&warn);
}

static void expect_bad(const char *set, const char *key)
{
    struct sl_agent_config c;
    struct sl_buf err = SL_BUF_INIT;
    const char *sets[] = {set};
    memset(&c, 0, sizeof(c));
    int rc = sl_config_load(sl_agent_options, sl_agent_noptions, &c, NULL, sets, 1, &err);
    if (rc == 0) {
        rc = sl_agent_config_validate(&c, &err, NULL);
        sl_config_release(sl_agent_options, sl_agent_noptions, &c);
    }
    assert_int_equal(rc, SL_EINVAL);
    if (!strstr(err.data, key))
        fail_msg("error \"%s\" does not name %s", err.data, key);
    sl_buf_release(&err);
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_bad("client.compression=lz4", "client.compression");
    expect_bad("client.protocol=loki", "client.protocol");
    expect_bad("client.tls.ca_file=/nonexistent/ca.pem", "client.tls.ca_file");
    expect_bad("client.url=ftp://x", "client.url");
    expect_bad("client.backoff.max=1ms", "client.backoff.max");
    expect_bad("server.log_level=loud", "server.log_level");
    expect_bad("client.batch_wait=soon", "client.batch_wait");
    expect_bad("read.max_line_size=0", "read.max_line_size");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_declared),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
