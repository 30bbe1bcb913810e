/* `sluice series <selector>` (/loki/api/v1/series) and `sluice stats
 * <selector>` (/loki/api/v1/index/stats). */
#include <stdio.h>
#include <string.h>

#include "aggregator/cli/cli.h"
#include "common/buf.h"

static const char series_help[] =
    "usage: sluice [--addr URL] [--org-id T] series [options] '<selector>'\n"
    "\n"
    "Prints the label sets of the streams matching the selector, one per line.\n"
    "\n"
    "  --since D       look back this long from now (default 1h)\n"
    "  --from T        start (RFC3339 or Unix seconds/nanoseconds); overrides --since\n"
    "  --to T          end, exclusive (default now)\n";

static const char stats_help[] =
    "usage: sluice [--addr URL] [--org-id T] stats [options] '<selector>'\n"
    "\n"
    "Prints how many streams, chunks, entries and bytes the selector covers.\n"
    "\n"
    "  --since D       look back this long from now (default 1h)\n"
    "  --from T        start (RFC3339 or Unix seconds/nanoseconds); overrides --since\n"
    "  --to T          end, exclusive (default now)\n";

/* Options shared by both commands; returns 0, 1 (help printed) or -1. */
static int parse_args(struct sl_cli_args *a, const char *cmd, const char *help,
                      struct sl_cli_range *range, const char **sel)
{
    while (a->i < a->argc) {
        int r;
        if ((r = sl_cli_opt(a, "since", true, &range->since)) ||
            (r = sl_cli_opt(a, "from", true, &range->from)) ||
            (r = sl_cli_opt(a, "to", true, &range->to))) {
            if (r < 0)
                return -1;
            continue;
        }
        const char *arg = a->argv[a->i++];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(help, stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) == 0 || *sel) {
            fprintf(stderr, "sluice: %s: unexpected argument %s (see sluice %s --help)\n", cmd, arg,
                    cmd);
            return -1;
        }
        *sel = arg;
    }
    if (!*sel) {
        fprintf(stderr, "sluice: %s: missing the selector (see sluice %s --help)\n", cmd, cmd);
        return -1;
    }
    return 0;
}

static int fetch(struct sl_cli *cli, struct sl_cli_args *a, const char *cmd, const char *help,
                 const char *path, const char *param, json_t **doc)
{
    struct sl_cli_range range = {0};
    const char *sel = NULL;
    int r = parse_args(a, cmd, help, &range, &sel);
    if (r)
        return r < 0 ? 1 : -1;
    struct sl_buf q = SL_BUF_INIT;
    sl_cli_param(&q, param, sel);
    r = sl_cli_range_params(&range, "1h", &q) ? 1 : sl_cli_get_json(cli, path, &q, doc) ? 1 : 0;
    sl_buf_release(&q);
    return r;
}

int sl_cli_cmd_series(struct sl_cli *cli, struct sl_cli_args *a)
{
    json_t *doc = NULL, *v;
    int rc = fetch(cli, a, "series", series_help, "/loki/api/v1/series", "match[]", &doc);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct sl_buf b = SL_BUF_INIT;
    size_t i;
    json_array_foreach(json_object_get(doc, "data"), i, v)
    {
        sl_cli_labels_format(v, &b);
        sl_buf_append_char(&b, '\n');
    }
    if (b.len)
        fwrite(b.data, 1, b.len, stdout);
    sl_buf_release(&b);
    json_decref(doc);
    return fflush(stdout) == 0 ? 0 : 1;
}

int sl_cli_cmd_stats(struct sl_cli *cli, struct sl_cli_args *a)
{
    json_t *doc = NULL;
    int rc = fetch(cli, a, "stats", stats_help, "/loki/api/v1/index/stats", "query", &doc);
    if (rc)
        return rc < 0 ? 0 : rc;
    static const char *const keys[] = {"streams", "chunks", "entries", "bytes"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        printf("%s: %lld\n", keys[i], (long long)json_integer_value(json_object_get(doc, keys[i])));
    json_decref(doc);
    return fflush(stdout) == 0 ? 0 : 1;
}
