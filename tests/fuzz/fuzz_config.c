/* Fuzzes the config loader: arbitrary bytes as the YAML file, plus any lines
 * starting with "#set " as --set arguments (they are YAML comments, so the
 * file stays valid). Whatever loads must dump to YAML that loads again to the
 * same dump. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/mem.h"

struct fcfg {
    char *listen;
    int64_t retries;
    bool enabled;
    int64_t timeout;
    int64_t size;
    char *data_dir;
    char *store;
    char *secret;
    struct sl_strlist members;
    struct sl_cfgnode *files;
    struct sl_cfgnode *pipeline;
};

#define F(x) offsetof(struct fcfg, x)
static const struct sl_option opts[] = {
    {"server.listen", SL_OPT_STRING, "127.0.0.1:3100", F(listen), "listen"},
    {"server.retries", SL_OPT_INT, "5", F(retries), "retries"},
    {"auth.enabled", SL_OPT_BOOL, "false", F(enabled), "auth"},
    {"client.backoff.max", SL_OPT_DURATION, "5m", F(timeout), "backoff"},
    {"client.batch_size", SL_OPT_SIZE, "1MiB", F(size), "batch"},
    {"data_dir", SL_OPT_STRING, "./data", F(data_dir), "dir"},
    {"storage.filesystem.dir", SL_OPT_STRING, "${data_dir}/store", F(store), "store"},
    {"ring.secret", SL_OPT_STRING, "", F(secret), "secret"},
    {"ring.members", SL_OPT_STRLIST, "[]", F(members), "members"},
    {"files", SL_OPT_NODE, "[]", F(files), "files"},
    {"pipeline", SL_OPT_NODE, "", F(pipeline), "stages"},
};
#define NOPTS    (sizeof(opts) / sizeof(opts[0]))
#define MAX_SETS 8

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("SLFUZZ_A", "alpha", 1);
    setenv("SLFUZZ_B", "${SLFUZZ_A}", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char *sets[MAX_SETS];
    size_t nsets = 0;
    for (size_t i = 0; i + 5 <= size && nsets < MAX_SETS; i++) {
        if ((i == 0 || text[i - 1] == '\n') && memcmp(text + i, "#set ", 5) == 0) {
            const char *s = text + i + 5;
            const char *nl = memchr(s, '\n', size - (size_t)(s - text));
            size_t n = nl ? (size_t)(nl - s) : size - (size_t)(s - text);
            sets[nsets++] = sl_strndup(s, n);
        }
    }

    struct fcfg c, d;
    struct sl_buf err = SL_BUF_INIT, out = SL_BUF_INIT, out2 = SL_BUF_INIT;
    memset(&c, 0, sizeof(c));
    memset(&d, 0, sizeof(d));
    int rc =
        sl_config_load_mem(opts, NOPTS, &c, text, size, (const char *const *)sets, nsets, &err);
    if (rc == 0) {
        sl_config_dump(opts, NOPTS, &c, &out);
        sl_buf_clear(&err);
        if (sl_config_load_mem(opts, NOPTS, &d, out.data, out.len, NULL, 0, &err) != 0)
            abort(); /* the dump must load again */
        sl_config_dump(opts, NOPTS, &d, &out2);
        if (out.len != out2.len || memcmp(out.data, out2.data, out.len) != 0)
            abort(); /* ... to the same values */
        sl_config_release(opts, NOPTS, &c);
        sl_config_release(opts, NOPTS, &d);
    }
    sl_config_help(opts, NOPTS, &out);
    sl_buf_release(&err);
    sl_buf_release(&out);
    sl_buf_release(&out2);
    for (size_t i = 0; i < nsets; i++)
        sl_free(sets[i]);
    return 0;
}
