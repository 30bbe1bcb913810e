/* Terminal colours of the `sluice` CLI, as logcli's default output: the
 * timestamp in blue, each stream's labels in a colour of their own so the
 * streams of a tail can be told apart at a glance. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/cli/cli.h"
#include "common/timeutil.h"

#define ANSI_RESET "\033[0m"
#define ANSI_BLUE  "\033[34m"

/* logcli's palette, in its order: hi-cyan, cyan, hi-green, green,
 * hi-magenta, magenta, hi-yellow, yellow, hi-red, red. */
static const char *const palette[] = {
    "\033[96m", "\033[36m", "\033[92m", "\033[32m", "\033[95m",
    "\033[35m", "\033[93m", "\033[33m", "\033[91m", "\033[31m",
};

int sl_cli_color_opt(struct sl_cli *cli, struct sl_cli_args *a)
{
    const char *arg = a->argv[a->i];
    if (strcmp(arg, "--color") == 0)
        cli->color = SL_CLI_COLOR_ALWAYS;
    else if (strcmp(arg, "--no-color") == 0)
        cli->color = SL_CLI_COLOR_NEVER;
    else
        return 0;
    a->i++;
    return 1;
}

bool sl_cli_use_color(const struct sl_cli *cli)
{
    if (cli->color != SL_CLI_COLOR_AUTO)
        return cli->color == SL_CLI_COLOR_ALWAYS;
    const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
    if (no && *no)
        return false;
    if (term && strcmp(term, "dumb") == 0)
        return false;
    return isatty(STDOUT_FILENO) == 1;
}

/* FNV-1 (32-bit), as Go's hash/fnv New32 that logcli uses. */
static uint32_t fnv32(struct sl_bytes s)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < s.len; i++) {
        h *= 16777619u;
        h ^= (unsigned char)s.ptr[i];
    }
    return h;
}

void sl_cli_format_entry(struct sl_buf *b, bool color, int64_t ts, struct sl_bytes labels,
                         struct sl_bytes line)
{
    if (color)
        sl_buf_append_str(b, ANSI_BLUE);
    sl_rfc3339_format(b, ts);
    if (color)
        sl_buf_append_str(b, ANSI_RESET);
    sl_buf_append_char(b, ' ');
    if (color)
        sl_buf_append_str(b, palette[fnv32(labels) % (sizeof palette / sizeof *palette)]);
    sl_buf_append_bytes(b, labels);
    if (color)
        sl_buf_append_str(b, ANSI_RESET);
    sl_buf_append_char(b, ' ');
    sl_buf_append_bytes(b, line);
}
