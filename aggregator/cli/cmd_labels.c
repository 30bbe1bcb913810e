/* `sluice labels [name]`: label names, or the values of one label. */
#include <stdio.h>
#include <string.h>

#include "aggregator/cli/cli.h"
#include "common/buf.h"

static const char labels_help[] =
    "usage: sluice [--addr URL] [--org-id T] labels [options] [name]\n"
    "\n"
    "Without a name, prints the label names; with one, the values of that label.\n"
    "\n"
    "  --since D       look back this long from now (default 1h)\n"
    "  --from T        start (RFC3339 or Unix seconds/nanoseconds); overrides --since\n"
    "  --to T          end, exclusive (default now)\n"
    "  --query S       values only from streams matching this selector\n";

int sl_cli_cmd_labels(struct sl_cli *cli, struct sl_cli_args *a)
{
    struct sl_cli_range range = {0};
    const char *name = NULL, *sel = NULL;
    while (a->i < a->argc) {
        int r;
        if ((r = sl_cli_opt(a, "since", true, &range.since)) ||
            (r = sl_cli_opt(a, "from", true, &range.from)) ||
            (r = sl_cli_opt(a, "to", true, &range.to)) ||
            (r = sl_cli_opt(a, "query", true, &sel))) {
            if (r < 0)
                return 1;
            continue;
        }
        const char *arg = a->argv[a->i++];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(labels_help, stdout);
            return 0;
        }
        if (strncmp(arg, "--", 2) == 0 || name) {
            fprintf(stderr, "sluice: labels: unexpected argument %s (see sluice labels --help)\n",
                    arg);
            return 1;
        }
        name = arg;
    }
    struct sl_buf q = SL_BUF_INIT, path = SL_BUF_INIT;
    int rc = 1;
    if (sl_cli_range_params(&range, "1h", &q))
        goto out;
    if (name) {
        if (sel)
            sl_cli_param(&q, "query", sel);
        /* Percent-encode the name as a path segment (reuse the form encoder). */
        struct sl_buf enc = SL_BUF_INIT;
        sl_cli_param(&enc, "n", name);
        sl_buf_appendf(&path, "/loki/api/v1/label/%s/values", enc.data + 2);
        sl_buf_release(&enc);
    } else {
        sl_buf_append_str(&path, "/loki/api/v1/labels");
    }
    json_t *doc = NULL;
    if (sl_cli_get_json(cli, path.data, &q, &doc))
        goto out;
    json_t *data = json_object_get(doc, "data"), *v;
    size_t i;
    json_array_foreach(data, i, v)
    {
        fwrite(json_string_value(v), 1, json_string_length(v), stdout);
        fputc('\n', stdout);
    }
    json_decref(doc);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    sl_buf_release(&q);
    sl_buf_release(&path);
    return rc;
}
