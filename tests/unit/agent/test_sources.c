/* files: sources from YAML: globs, formats, sorted static labels, and errors
 * that name the entry and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/config/config.h"
#include "agent/discover/sources.h"
#include "common/err.h"

static int load(const char *yaml, struct sl_file_sources *out, struct sl_buf *err)
{
    struct sl_agent_config c;
    memset(&c, 0, sizeof(c));
    int rc = sl_config_load_mem(sl_agent_options, sl_agent_noptions, &c, yaml, strlen(yaml), NULL,
                                0, err);
    if (rc == 0)
        rc = sl_file_sources_parse(c.files, out, err);
    sl_config_release(sl_agent_options, sl_agent_noptions, &c);
    return rc;
}

static void test_parse(void **state)
{
    (void)state;
    struct sl_file_sources s;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(load("files:\n"
                          "  - include: [\"/var/log/a/x.log\", \"/var/log/b/y.log\"]\n"
                          "    exclude: \"/var/log/a/debug.log\"\n"
                          "    format: docker\n"
                          "    labels: {team: infra, job: app}\n"
                          "  - include: /srv/z.log\n",
                          &s, &err),
                     0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.items[0].include.n, 2);
    assert_string_equal(s.items[0].include.items[1], "/var/log/b/y.log");
    assert_int_equal(s.items[0].exclude.n, 1);
    assert_int_equal(s.items[0].format, SL_FORMAT_DOCKER);
    assert_int_equal(s.items[0].nlabels, 2);
    assert_string_equal(s.items[0].label_names[0], "job"); /* sorted */
    assert_string_equal(s.items[0].label_values[0], "app");
    assert_string_equal(s.items[0].label_names[1], "team");
    assert_int_equal(s.items[1].format, SL_FORMAT_RAW);
    assert_int_equal(s.items[1].nlabels, 0);
    sl_file_sources_release(&s);

    assert_int_equal(load("files: []\n", &s, &err), 0);
    assert_int_equal(s.n, 0);
    sl_file_sources_release(&s);

    const char *bad[][2] = {
        {"files:\n  - format: raw\n", "files[0].include"},
        {"files:\n  - include: /a.log\n    format: json\n", "files[0].format"},
        {"files:\n  - include: /a.log\n  - include: /b.log\n    labels: {\"9x\": y}\n",
         "files[1].labels"},
        {"files:\n  - include: /a.log\n    labels: {filename: y}\n", "files[0].labels"},
        {"files:\n  - include: /a.log\n    color: red\n", "files[0].color"},
        {"files: {include: /a.log}\n", "config: files"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_buf_clear(&err);
        assert_int_equal(load(bad[i][0], &s, &err), SL_EINVAL);
        assert_non_null(strstr(err.data, bad[i][1]));
        assert_int_equal(s.n, 0);
    }
    sl_buf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
