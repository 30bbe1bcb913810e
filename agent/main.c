/* sluice-agent: command line, configuration, the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/config/config.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/version.h"

static void usage(FILE *out)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, "usage: sluice-agent [--config FILE] [--set key=value]... "
                          "[--check-config] [--version] [--help]\n\n"
                          "Tails Kubernetes pod logs and ships them to a sluice aggregator.\n\n"
                          "options (set in the YAML file or with --set):\n");
    sl_config_help(sl_agent_options, sl_agent_noptions, &b);
    fwrite(b.data, 1, b.len, out);
    sl_buf_release(&b);
}

struct args {
    const char *config;
    const char **sets;
    size_t nsets;
    bool check;
};

/* Returns -1 to continue, else an exit code. */
static int parse_args(int argc, char **argv, struct args *a)
{
    a->sets = sl_calloc((size_t)argc + 1, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(s, "--version")) {
            printf("sluice-agent %s\n", SL_VERSION);
            return 0;
        } else if (!strcmp(s, "--check-config")) {
            a->check = true;
        } else if ((!strcmp(s, "--config") || !strcmp(s, "--set")) && i + 1 < argc) {
            if (s[2] == 'c')
                a->config = argv[++i];
            else
                a->sets[a->nsets++] = argv[++i];
        } else if (!strncmp(s, "--config=", 9)) {
            a->config = s + 9;
        } else if (!strncmp(s, "--set=", 6)) {
            a->sets[a->nsets++] = s + 6;
        } else {
            fprintf(stderr, "sluice-agent: unknown or incomplete argument \"%s\" (see --help)\n",
                    s);
            return 2;
        }
    }
    return -1;
}

/* Memory and CPU, measured with the ship benchmark (docs/benchmarks.md). The
 * environment (UV_THREADPOOL_SIZE, and glibc's MALLOC_* variables) wins.
 * - One libuv pool thread: the agent queues one job at a time there
 *   (encoding a sealed batch), and every pool thread that allocates gets a
 *   glibc arena of its own keeping ~3 MiB of encode buffers resident: 4
 *   threads cost ~8 MiB of peak RSS for nothing.
 * - glibc's own (dynamic) malloc thresholds: the shipper reuses its batch
 *   and encoder buffers (agent/ship/ship.c), so they are no longer handed
 *   back and faulted in again per batch; fixed thresholds (M_MMAP_THRESHOLD
 *   4 MiB, M_TRIM_THRESHOLD 32 MiB), which stopped that churn before, now
 *   only add ~1.5 MiB of peak RSS. */
static void tune_memory(void)
{
    setenv("UV_THREADPOOL_SIZE", "1", 0);
}

int main(int argc, char **argv)
{
    tune_memory();
    struct args args = {0};
    struct sl_agent_config cfg;
    struct sl_buf err = SL_BUF_INIT, warn = SL_BUF_INIT;
    int rc = parse_args(argc, argv, &args);
    if (rc >= 0)
        goto out_args;
    memset(&cfg, 0, sizeof(cfg));
    rc = 1;
    if (sl_config_load(sl_agent_options, sl_agent_noptions, &cfg, args.config, args.sets,
                       args.nsets, &err) != 0) {
        fprintf(stderr, "sluice-agent: %s\n", err.data);
        goto out_args;
    }
    if (sl_agent_config_validate(&cfg, &err, &warn) != 0) {
        fprintf(stderr, "sluice-agent: %s\n", err.data);
        goto out_cfg;
    }
    if (args.check) {
        struct sl_buf dump = SL_BUF_INIT;
        sl_config_dump(sl_agent_options, sl_agent_noptions, &cfg, &dump);
        fwrite(dump.data, 1, dump.len, stdout);
        if (warn.len)
            fwrite(warn.data, 1, warn.len, stderr);
        sl_buf_release(&dump);
        rc = 0;
        goto out_cfg;
    }
    enum sl_log_level lvl;
    sl_log_level_parse(cfg.server_log_level, &lvl);
    sl_log_set_level(lvl);
    for (char *l = warn.data, *nl; l && *l; l = nl + 1) {
        nl = strchr(l, '\n');
        *nl = '\0';
        sl_warn("configuration", "note=\"%s\"", l);
    }
    sl_info("starting sluice-agent",
            "version=%s listen=%s url=%s pods_path=%s node=%s positions=%s", SL_VERSION,
            cfg.server_listen, cfg.client_url, cfg.k8s_pods_path, cfg.k8s_node_name,
            cfg.positions_file);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_agent *agent = sl_agent_new(&loop, &cfg);
    sl_agent_set_source(agent, args.config, args.sets, args.nsets); /* SIGHUP */
    if (sl_agent_start(agent, &err) != 0) {
        sl_error("cannot start", "err=\"%s\"", err.data);
        sl_agent_stop(agent);
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = 1;
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = 0;
    }
    sl_agent_free(agent);
    if (uv_loop_close(&loop) != 0)
        sl_warn("event loop closed with open handles", NULL);
out_cfg:
    sl_config_release(sl_agent_options, sl_agent_noptions, &cfg);
out_args:
    sl_free(args.sets);
    sl_buf_release(&err);
    sl_buf_release(&warn);
    return rc;
}
