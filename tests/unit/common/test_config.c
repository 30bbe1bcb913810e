/* Tests for common/config.c: layering, expansion, --set, errors, dump, help. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/timeutil.h"

struct tcfg {
    char *listen;
    int64_t max_request_bytes;
    int64_t read_timeout;
    bool auth;
    char *data_dir;
    char *store_dir;
    int64_t max_retries;
    char *s3_secret;
    char *wal_dir;
    struct sl_strlist members;
    char *node_name;
    struct sl_strlist pod_labels;
    struct sl_cfgnode *files;
    struct sl_cfgnode *pipeline;
};

#define F(x) offsetof(struct tcfg, x)
static const struct sl_option opts[] = {
    {"server.listen", SL_OPT_STRING, "127.0.0.1:3100", F(listen), "HTTP listen address"},
    {"server.max_request_bytes", SL_OPT_SIZE, "64MiB", F(max_request_bytes), "body limit"},
    {"server.read_timeout", SL_OPT_DURATION, "30s", F(read_timeout), "read timeout"},
    {"auth.enabled", SL_OPT_BOOL, "false", F(auth), "require X-Scope-OrgID"},
    {"data_dir", SL_OPT_STRING, "./data", F(data_dir), "data directory"},
    {"storage.filesystem.dir", SL_OPT_STRING, "${data_dir}/store", F(store_dir), "chunks"},
    {"storage.s3.max_retries", SL_OPT_INT, "5", F(max_retries), "retries"},
    {"storage.s3.secret_access_key", SL_OPT_STRING, "", F(s3_secret), "S3 secret key"},
    {"wal.dir", SL_OPT_STRING, "${data_dir}/wal", F(wal_dir), "WAL directory"},
    {"ring.members", SL_OPT_STRLIST, "[]", F(members), "peers"},
    {"kubernetes.node_name", SL_OPT_STRING, "${SLTEST_NODE:-}", F(node_name), "node"},
    {"kubernetes.api.pod_labels", SL_OPT_STRLIST, "[\"app.kubernetes.io/name\", app]",
     F(pod_labels), "pod labels to copy"},
    {"files", SL_OPT_NODE, "[]", F(files), "extra file sources"},
    {"pipeline", SL_OPT_NODE, "", F(pipeline), "pipeline stages"},
};
#define NOPTS SL_ARRAY_LEN(opts)

static struct sl_buf err;

static int setup(void **state)
{
    (void)state;
    sl_buf_init(&err);
    unsetenv("SLTEST_NODE");
    unsetenv("SLTEST_UNSET");
    setenv("SLTEST_HOST", "0.0.0.0", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_buf_release(&err);
    return 0;
}

static int load(struct tcfg *c, const char *yaml, const char *const *sets, size_t nsets)
{
    memset(c, 0, sizeof(*c));
    sl_buf_clear(&err);
    return sl_config_load_mem(opts, NOPTS, c, yaml, yaml ? strlen(yaml) : 0, sets, nsets, &err);
}

/* Loads text expecting failure; returns the message. */
static const char *load_err(const char *yaml, const char *const *sets, size_t nsets)
{
    struct tcfg c;
    int rc = load(&c, yaml, sets, nsets);
    assert_int_equal(rc, SL_EINVAL);
    assert_true(err.len > 0);
    /* released on error */
    assert_null(c.listen);
    assert_null(c.data_dir);
    assert_null(c.files);
    assert_null(c.pod_labels.items);
    return err.data;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));                           \
    } while (0)

static void test_defaults(void **state)
{
    (void)state;
    struct tcfg c;
    assert_int_equal(load(&c, NULL, NULL, 0), 0);
    assert_string_equal(c.listen, "127.0.0.1:3100");
    assert_int_equal(c.max_request_bytes, 64 << 20);
    assert_int_equal(c.read_timeout, 30 * SL_NS_PER_SEC);
    assert_false(c.auth);
    assert_string_equal(c.data_dir, "./data");
    assert_string_equal(c.store_dir, "./data/store");
    assert_string_equal(c.wal_dir, "./data/wal");
    assert_int_equal(c.max_retries, 5);
    assert_string_equal(c.s3_secret, "");
    assert_int_equal(c.members.n, 0);
    assert_string_equal(c.node_name, "");
    assert_int_equal(c.pod_labels.n, 2);
    assert_string_equal(c.pod_labels.items[0], "app.kubernetes.io/name");
    assert_string_equal(c.pod_labels.items[1], "app");
    assert_non_null(c.files);
    assert_int_equal(c.files->kind, SL_CFG_SEQ);
    assert_int_equal(c.files->n, 0);
    assert_null(c.pipeline);
    sl_config_release(opts, NOPTS, &c);
    assert_null(c.listen);
    assert_null(c.files);

    /* an empty or comment-only file is all defaults too */
    assert_int_equal(load(&c, "# nothing\n", NULL, 0), 0);
    assert_string_equal(c.listen, "127.0.0.1:3100");
    sl_config_release(opts, NOPTS, &c);
    assert_int_equal(load(&c, "", NULL, 0), 0);
    assert_int_equal(c.max_retries, 5);
    sl_config_release(opts, NOPTS, &c);
}

static void test_file_values(void **state)
{
    (void)state;
    struct tcfg c;
    const char *y = "server:\n"
                    "  listen: 0.0.0.0:8080\n"
                    "  max_request_bytes: 1MB\n"
                    "  read_timeout: 1h30m\n"
                    "auth: {enabled: yes}\n"
                    "data_dir: /var/lib/sluice\n"
                    "storage.s3.max_retries: -3\n" /* a flat dotted key */
                    "wal:\n"
                    "  dir: \"/fast/wal\"\n"
                    "ring:\n"
                    "  members: ~\n";
    assert_int_equal(load(&c, y, NULL, 0), 0);
    assert_string_equal(c.listen, "0.0.0.0:8080");
    assert_int_equal(c.max_request_bytes, 1000000);
    assert_int_equal(c.read_timeout, 5400 * SL_NS_PER_SEC);
    assert_true(c.auth);
    assert_string_equal(c.data_dir, "/var/lib/sluice");
    assert_string_equal(c.store_dir, "/var/lib/sluice/store");
    assert_string_equal(c.wal_dir, "/fast/wal");
    assert_int_equal(c.max_retries, -3);
    assert_int_equal(c.members.n, 0);
    sl_config_release(opts, NOPTS, &c);

    /* a null section keeps the defaults below it */
    assert_int_equal(load(&c, "server:\nauth:\n", NULL, 0), 0);
    assert_string_equal(c.listen, "127.0.0.1:3100");
    sl_config_release(opts, NOPTS, &c);
}

static void test_env_expansion(void **state)
{
    (void)state;
    struct tcfg c;
    setenv("SLTEST_NODE", "node-7", 1);
    const char *y = "server:\n"
                    "  listen: ${SLTEST_HOST}:${SLTEST_PORT:-3100}\n"
                    "data_dir: \"/cost/$$5/$${HOME}/${SLTEST_UNSET}x\"\n"
                    "wal:\n"
                    "  dir: ${SLTEST_UNSET:-${SLTEST_HOST:-no}}/w\n"
                    "storage:\n"
                    "  s3:\n"
                    "    max_retries: ${SLTEST_UNSET:-9}\n";
    assert_int_equal(load(&c, y, NULL, 0), 0);
    assert_string_equal(c.listen, "0.0.0.0:3100");
    assert_string_equal(c.data_dir, "/cost/$5/${HOME}/x");
    assert_string_equal(c.wal_dir, "0.0.0.0/w");
    assert_int_equal(c.max_retries, 9);
    assert_string_equal(c.node_name, "node-7"); /* expanded default */
    sl_config_release(opts, NOPTS, &c);

    /* a lone $ stays */
    assert_int_equal(load(&c, "data_dir: a$b$\n", NULL, 0), 0);
    assert_string_equal(c.data_dir, "a$b$");
    sl_config_release(opts, NOPTS, &c);

    const char *e = load_err("\n\ndata_dir: ${SLTEST_HOST\n", NULL, 0);
    assert_contains(e, "config: data_dir: line 3: unterminated ${");
    e = load_err("data_dir: ${SLTEST HOST}\n", NULL, 0);
    assert_contains(e, "data_dir: line 1: invalid reference");
    e = load_err("data_dir: ${X:=y}\n", NULL, 0);
    assert_contains(e, "invalid reference");

    struct sl_buf b = SL_BUF_INIT;
    assert_int_equal(sl_config_expand_env("h=${SLTEST_HOST} $$ ${SLTEST_UNSET:-d}", &b), 0);
    assert_string_equal(b.data, "h=0.0.0.0 $ d");
    sl_buf_clear(&b);
    assert_int_equal(sl_config_expand_env("${data_dir}", &b), 0); /* env only: unset */
    assert_int_equal(b.len, 0);
    assert_int_equal(sl_config_expand_env("x${oops", &b), SL_EINVAL);
    sl_buf_release(&b);
}

static void test_option_references(void **state)
{
    (void)state;
    struct tcfg c;
    /* the default ${data_dir}/store sees data_dir after file and --set */
    const char *sets[] = {"data_dir=/from/set"};
    assert_int_equal(load(&c, "data_dir: /from/file\n", sets, 1), 0);
    assert_string_equal(c.data_dir, "/from/set");
    assert_string_equal(c.store_dir, "/from/set/store");
    assert_string_equal(c.wal_dir, "/from/set/wal");
    sl_config_release(opts, NOPTS, &c);

    /* references chain, and work in the file and in --set too */
    const char *sets2[] = {"wal.dir=${storage.filesystem.dir}/wal"};
    assert_int_equal(
        load(&c, "data_dir: /d\nstorage: {filesystem: {dir: \"${data_dir}/s\"}}\n", sets2, 1), 0);
    assert_string_equal(c.store_dir, "/d/s");
    assert_string_equal(c.wal_dir, "/d/s/wal");
    sl_config_release(opts, NOPTS, &c);

    /* a cycle is an error naming the key */
    const char *e = load_err("data_dir: ${wal.dir}\n", NULL, 0);
    assert_string_equal(e, "config: data_dir: line 1: reference cycle: data_dir -> wal.dir -> "
                           "data_dir");
    e = load_err("server: {listen: \"${server.listen}\"}\n", NULL, 0);
    assert_string_equal(e, "config: server.listen: line 1: reference cycle: server.listen -> "
                           "server.listen");
}

static void test_set_precedence(void **state)
{
    (void)state;
    struct tcfg c;
    const char *sets[] = {
        "server.listen=1.2.3.4:1",
        "server.listen=5.6.7.8:2", /* the later one wins */
        "auth.enabled=on",
        "server.read_timeout=250ms",
        "storage.s3={max_retries: 11}", /* a map prefix takes YAML */
        "kubernetes.node_name=\"\"",    /* quoted: a YAML scalar */
        "data_dir=a: b #c",             /* unquoted: taken as is */
    };
    assert_int_equal(load(&c, "server: {listen: 9.9.9.9:9}\nkubernetes: {node_name: n}\n", sets,
                          SL_ARRAY_LEN(sets)),
                     0);
    assert_string_equal(c.listen, "5.6.7.8:2");
    assert_true(c.auth);
    assert_int_equal(c.read_timeout, 250 * SL_NS_PER_MS);
    assert_int_equal(c.max_retries, 11);
    assert_string_equal(c.node_name, "");
    assert_string_equal(c.data_dir, "a: b #c");
    sl_config_release(opts, NOPTS, &c);

    const char *bad[] = {"novalue"};
    assert_contains(load_err(NULL, bad, 1), "expected key=value");
    const char *bad2[] = {"server.read_timeout=soon"};
    assert_contains(load_err(NULL, bad2, 1),
                    "config: server.read_timeout: --set: expected a duration");
    const char *bad3[] = {"storage.s3=[1]"};
    assert_contains(load_err(NULL, bad3, 1), "storage.s3: --set: expected a map");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    const char *e = load_err("server:\n  lisen: x\n", NULL, 0);
    assert_contains(e, "config: unknown key \"server.lisen\" at line 2");
    assert_contains(e, "did you mean \"server.listen\"?");

    e = load_err("servr:\n  listen: x\n", NULL, 0);
    assert_contains(e, "unknown key \"servr\"");
    assert_contains(e, "did you mean \"server\"?");

    e = load_err("completely_different: 1\n", NULL, 0);
    assert_contains(e, "unknown key \"completely_different\" at line 1");
    assert_null(strstr(e, "did you mean"));

    const char *sets[] = {"storage.s3.max_retrys=1"};
    e = load_err(NULL, sets, 1);
    assert_contains(e, "\"storage.s3.max_retrys\" in --set");
    assert_contains(e, "did you mean \"storage.s3.max_retries\"?");
}

static void test_type_errors(void **state)
{
    (void)state;
    const char *e;
    e = load_err("server:\n  listen: x\n  read_timeout: fast\n", NULL, 0);
    assert_string_equal(e, "config: server.read_timeout: line 3: expected a duration (e.g. "
                           "500ms, 1h30m), got \"fast\"");
    e = load_err("\nstorage:\n  s3:\n    max_retries: 5x\n", NULL, 0);
    assert_contains(e, "config: storage.s3.max_retries: line 4: expected an integer, got \"5x\"");
    e = load_err("auth:\n  enabled: maybe\n", NULL, 0);
    assert_contains(e, "auth.enabled: line 2: expected a boolean");
    e = load_err("server:\n  max_request_bytes: lots\n", NULL, 0);
    assert_contains(e, "server.max_request_bytes: line 2: expected a size");
    e = load_err("server:\n  listen: {a: 1}\n", NULL, 0);
    assert_contains(e, "server.listen: line 2: expected a scalar, got a map");
    e = load_err("server: [1, 2]\n", NULL, 0);
    assert_contains(e, "config: server: line 1: expected a map, got a sequence");
    e = load_err("ring:\n  members:\n    - a\n    - [b]\n", NULL, 0);
    assert_contains(e, "ring.members: line 4: expected a list of scalars, got a sequence");
    e = load_err("- a\n- b\n", NULL, 0);
    assert_contains(e, "top level must be a map");
    e = load_err("server:\n  listen: [a\n", NULL, 0);
    assert_contains(e, "config: line ");
    e = load_err("data_dir: a\ndata_dir: b\n", NULL, 0);
    assert_contains(e, "line 2: duplicate key \"data_dir\"");
    e = load_err("base: &b x\nother: *b\n", NULL, 0);
    assert_contains(e, "anchors (&b) are not supported");
    e = load_err("a: 1\n---\nb: 2\n", NULL, 0);
    assert_contains(e, "only one YAML document");
    e = load_err("server:\n  listen: x\nstorage:\n  s3:\n    max_retries: 99999999999999999999\n",
                 NULL, 0);
    assert_contains(e, "storage.s3.max_retries: line 5: expected an integer");
}

static void test_node_subtree(void **state)
{
    (void)state;
    struct tcfg c;
    const char *y = "files:\n"
                    "  - include: [\"/x/*.log\", /y/*.log]\n"
                    "    format: cri\n"
                    "    labels:\n"
                    "      team: ${SLTEST_HOST}\n"
                    "      empty:\n"
                    "pipeline:\n"
                    "  - json: {expressions: {level: lvl}}\n";
    assert_int_equal(load(&c, y, NULL, 0), 0);
    assert_non_null(c.files);
    assert_int_equal(c.files->kind, SL_CFG_SEQ);
    assert_int_equal(c.files->n, 1);
    const struct sl_cfgnode *f0 = c.files->items[0];
    assert_int_equal(f0->kind, SL_CFG_MAP);
    assert_int_equal(f0->line, 2);
    const struct sl_cfgnode *inc = sl_cfgnode_get(f0, "include");
    assert_non_null(inc);
    assert_int_equal(inc->kind, SL_CFG_SEQ);
    assert_int_equal(inc->n, 2);
    assert_string_equal(inc->items[0]->value, "/x/*.log");
    assert_string_equal(inc->items[1]->value, "/y/*.log");
    assert_string_equal(sl_cfgnode_get(f0, "format")->value, "cri");
    assert_int_equal(sl_cfgnode_get(f0, "format")->line, 3);
    const struct sl_cfgnode *labels = sl_cfgnode_get(f0, "labels");
    assert_string_equal(sl_cfgnode_get(labels, "team")->value, "0.0.0.0");
    assert_string_equal(sl_cfgnode_get(labels, "empty")->value, "");
    assert_null(sl_cfgnode_get(labels, "nope"));
    assert_null(sl_cfgnode_get(inc, "include")); /* not a map */
    assert_null(sl_cfgnode_get(NULL, "x"));
    const struct sl_cfgnode *json = sl_cfgnode_get(c.pipeline->items[0], "json");
    assert_string_equal(sl_cfgnode_get(sl_cfgnode_get(json, "expressions"), "level")->value, "lvl");
    sl_config_release(opts, NOPTS, &c);

    const char *sets[] = {"files=[{include: [\"/z/*.log\"]}]", "pipeline="};
    assert_int_equal(load(&c, y, sets, 2), 0);
    assert_int_equal(c.files->n, 1);
    inc = sl_cfgnode_get(c.files->items[0], "include");
    assert_string_equal(inc->items[0]->value, "/z/*.log");
    assert_int_equal(inc->line, 0);
    assert_null(c.pipeline);
    sl_config_release(opts, NOPTS, &c);

    const char *e = load_err("files:\n  - include: ${SLTEST_UNSET\n", NULL, 0);
    assert_contains(e, "config: files: line 2: unterminated ${");
}

static void test_strlist_forms(void **state)
{
    (void)state;
    struct tcfg c;
    assert_int_equal(load(&c, "ring:\n  members:\n    - a:1\n    - \"b, c\"\n", NULL, 0), 0);
    assert_int_equal(c.members.n, 2);
    assert_string_equal(c.members.items[0], "a:1");
    assert_string_equal(c.members.items[1], "b, c");
    sl_config_release(opts, NOPTS, &c);

    assert_int_equal(load(&c, "ring: {members: \"x, y,,z \"}\n", NULL, 0), 0);
    assert_int_equal(c.members.n, 3);
    assert_string_equal(c.members.items[0], "x");
    assert_string_equal(c.members.items[2], "z");
    sl_config_release(opts, NOPTS, &c);

    setenv("SLTEST_PEERS", "p1,p2", 1);
    const char *sets[] = {"ring.members=${SLTEST_PEERS}, p3",
                          "kubernetes.api.pod_labels=[one, 'two,three']"};
    assert_int_equal(load(&c, NULL, sets, 2), 0);
    assert_int_equal(c.members.n, 3);
    assert_string_equal(c.members.items[0], "p1");
    assert_string_equal(c.members.items[1], "p2");
    assert_string_equal(c.members.items[2], "p3");
    assert_int_equal(c.pod_labels.n, 2);
    assert_string_equal(c.pod_labels.items[1], "two,three");
    sl_config_release(opts, NOPTS, &c);

    const char *clear[] = {"kubernetes.api.pod_labels="};
    assert_int_equal(load(&c, NULL, clear, 1), 0);
    assert_int_equal(c.pod_labels.n, 0);
    sl_config_release(opts, NOPTS, &c);

    assert_contains(load_err("ring: {members: {a: b}}\n", NULL, 0),
                    "ring.members: line 1: expected a list or a comma-separated scalar");
}

static void test_dump_round_trip(void **state)
{
    (void)state;
    struct tcfg c, d;
    const char *y = "server:\n"
                    "  listen: \"[::1]:80\"\n"
                    "  max_request_bytes: 256KiB\n"
                    "  read_timeout: 90m\n"
                    "data_dir: \"tab\\there \\\"q\\\" back\\\\slash $${x} $$$$ \\u00e9 \\x85\"\n"
                    "storage: {s3: {max_retries: 0, secret_access_key: s3cr3t}}\n"
                    "wal: {dir: \"true\"}\n"
                    "ring: {members: [\"a,b\", '#c', 123, \"\"]}\n"
                    "kubernetes: {node_name: \"line1\\nline2\"}\n"
                    "files: [{include: [\"/x/*.log\"], labels: {\"k: v\": \"$${y}\", n: null}}]\n"
                    "pipeline: {}\n";
    assert_int_equal(load(&c, y, NULL, 0), 0);
    assert_string_equal(c.data_dir, "tab\there \"q\" back\\slash ${x} $$ \xc3\xa9 \xc2\x85");

    struct sl_buf out = SL_BUF_INIT, out2 = SL_BUF_INIT;
    sl_config_dump(opts, NOPTS, &c, &out);
    assert_contains(out.data, "server:\n  listen: \"[::1]:80\"\n  max_request_bytes: 256KiB\n"
                              "  read_timeout: 1h30m0s\n");
    assert_contains(out.data, "storage:\n  filesystem:\n    dir: ");
    assert_contains(out.data, "  s3:\n    max_retries: 0\n    secret_access_key: <redacted>\n");
    assert_null(strstr(out.data, "s3cr3t"));
    assert_contains(out.data, "wal:\n  dir: \"true\"\n");
    assert_contains(out.data, "auth:\n  enabled: false\n");

    /* the dump loads again to the same values (the secret is redacted) */
    memset(&d, 0, sizeof(d));
    sl_buf_clear(&err);
    int rc = sl_config_load_mem(opts, NOPTS, &d, out.data, out.len, NULL, 0, &err);
    if (rc)
        fail_msg("reload failed: %s\n%s", err.data, out.data);
    assert_string_equal(d.listen, c.listen);
    assert_int_equal(d.max_request_bytes, c.max_request_bytes);
    assert_int_equal(d.read_timeout, c.read_timeout);
    assert_string_equal(d.data_dir, c.data_dir);
    assert_string_equal(d.store_dir, c.store_dir);
    assert_string_equal(d.wal_dir, "true");
    assert_string_equal(d.node_name, "line1\nline2");
    assert_string_equal(d.s3_secret, "<redacted>");
    assert_int_equal(d.members.n, 4);
    assert_string_equal(d.members.items[0], "a,b");
    assert_string_equal(d.members.items[1], "#c");
    assert_string_equal(d.members.items[2], "123");
    assert_string_equal(d.members.items[3], "");
    const struct sl_cfgnode *labels = sl_cfgnode_get(d.files->items[0], "labels");
    assert_string_equal(sl_cfgnode_get(labels, "k: v")->value, "${y}");
    assert_string_equal(sl_cfgnode_get(labels, "n")->value, "");
    assert_int_equal(d.pipeline->kind, SL_CFG_MAP);
    sl_config_dump(opts, NOPTS, &d, &out2);
    assert_string_equal(out.data, out2.data);

    sl_config_release(opts, NOPTS, &c);
    sl_config_release(opts, NOPTS, &d);
    sl_buf_release(&out);
    sl_buf_release(&out2);

    /* a NODE key longer than YAML's 1024-character implicit key limit */
    struct sl_buf y2 = SL_BUF_INIT;
    sl_buf_append_str(&y2, "files: {? \"");
    for (int i = 0; i < 1500; i++)
        sl_buf_append_char(&y2, (char)('a' + i % 26));
    sl_buf_append_str(&y2, "\": v}\n");
    assert_int_equal(load(&c, y2.data, NULL, 0), 0);
    sl_config_dump(opts, NOPTS, &c, &out);
    assert_contains(out.data, "files: {? ");
    memset(&d, 0, sizeof(d));
    assert_int_equal(sl_config_load_mem(opts, NOPTS, &d, out.data, out.len, NULL, 0, &err), 0);
    assert_int_equal(strlen(d.files->items[0]->key), 1500);
    assert_string_equal(d.files->items[0]->key, c.files->items[0]->key);
    sl_config_release(opts, NOPTS, &c);
    sl_config_release(opts, NOPTS, &d);
    sl_buf_release(&y2);
    sl_buf_release(&out);

    /* null NODE and empty secret */
    assert_int_equal(load(&c, NULL, NULL, 0), 0);
    sl_config_dump(opts, NOPTS, &c, &out);
    assert_contains(out.data, "pipeline: null\n");
    assert_contains(out.data, "files: []\n");
    assert_contains(out.data, "secret_access_key: \"\"\n");
    assert_contains(out.data, "dir: ./data/store\n");
    sl_config_release(opts, NOPTS, &c);
    sl_buf_release(&out);
}

static void test_help(void **state)
{
    (void)state;
    struct sl_buf out = SL_BUF_INIT;
    sl_config_help(opts, NOPTS, &out);
    size_t lines = 0;
    for (size_t i = 0; i < out.len; i++)
        lines += out.data[i] == '\n';
    assert_int_equal(lines, NOPTS);
    assert_contains(out.data, "  --set server.listen=<string>");
    assert_contains(out.data, "HTTP listen address (default: 127.0.0.1:3100)\n");
    assert_contains(out.data, "  --set server.read_timeout=<duration>");
    assert_contains(out.data, "  --set ring.members=<list>");
    assert_contains(out.data, "  --set files=<yaml>");
    assert_contains(out.data, "S3 secret key (default: \"\")\n");
    /* docs line up in one column */
    const char *a = strstr(out.data, "HTTP listen");
    const char *b = strstr(out.data, "body limit");
    const char *la = a, *lb = b;
    while (la > out.data && la[-1] != '\n')
        la--;
    while (lb > out.data && lb[-1] != '\n')
        lb--;
    assert_int_equal(a - la, b - lb);
    sl_buf_release(&out);
}

static void test_files_on_disk(void **state)
{
    (void)state;
    struct tcfg c;
    memset(&c, 0, sizeof(c));
    sl_buf_clear(&err);
    assert_int_equal(sl_config_load(opts, NOPTS, &c, "/nonexistent/sluice.yaml", NULL, 0, &err),
                     SL_ENOENT);
    assert_contains(err.data, "/nonexistent/sluice.yaml");

    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = "server:\n  listen: 1.1.1.1:1\n  bogus: 1\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    sl_buf_clear(&err);
    assert_int_equal(sl_config_load(opts, NOPTS, &c, path, NULL, 0, &err), SL_EINVAL);
    assert_contains(err.data, "unknown key \"server.bogus\" at line 3");

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    close(fd);
    sl_buf_clear(&err);
    assert_int_equal(sl_config_load(opts, NOPTS, &c, path, NULL, 0, &err), 0);
    assert_string_equal(c.listen, "127.0.0.1:3100");
    sl_config_release(opts, NOPTS, &c);
    unlink(path);

    const char *sets[] = {"data_dir=/x"};
    assert_int_equal(sl_config_load(opts, NOPTS, &c, NULL, sets, 1, &err), 0);
    assert_string_equal(c.store_dir, "/x/store");
    sl_config_release(opts, NOPTS, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_env_expansion),  cmocka_unit_test(test_option_references),
        cmocka_unit_test(test_set_precedence), cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_type_errors),    cmocka_unit_test(test_node_subtree),
        cmocka_unit_test(test_strlist_forms),  cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_help),           cmocka_unit_test(test_files_on_disk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
