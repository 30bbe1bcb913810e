/* sluice: command-line client of the aggregator's Loki-compatible API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/cli/cli.h"
#include "common/version.h"

static const char usage[] =
    "usage: sluice [--addr URL] [--org-id T] <command> [options] [args]\n"
    "\n"
    "Commands:\n"
    "  query '<logql>'   run a log or metric query (sluice query --help)\n"
    "  tail '<logql>'    follow a log query live, until Ctrl-C (sluice tail --help)\n"
    "  labels [name]     list label names, or the values of one label\n"
    "  series '<sel>'    list the label sets of the streams a selector matches\n"
    "  stats '<sel>'     streams, chunks, entries and bytes under a selector\n"
    "\n"
    "Global options:\n"
    "  --addr URL        aggregator address (env SLUICE_ADDR, default " SL_CLI_DEFAULT_ADDR ")\n"
    "  --org-id T        tenant, sent as X-Scope-OrgID (env SLUICE_ORG_ID)\n"
    "  --color           colour entries (default: only on a terminal, and not with NO_COLOR)\n"
    "  --no-color        never colour\n"
    "  --help            this help\n"
    "  --version         print the version\n";

int main(int argc, char **argv)
{
    struct sl_cli cli = {.addr = getenv("SLUICE_ADDR"), .org_id = getenv("SLUICE_ORG_ID")};
    if (!cli.addr || !*cli.addr)
        cli.addr = SL_CLI_DEFAULT_ADDR;
    struct sl_cli_args a = {.argc = argc, .argv = argv, .i = 1};
    while (a.i < argc) {
        int r;
        if (sl_cli_color_opt(&cli, &a))
            continue;
        if ((r = sl_cli_opt(&a, "addr", true, &cli.addr)) ||
            (r = sl_cli_opt(&a, "org-id", true, &cli.org_id))) {
            if (r < 0)
                return 1;
            continue;
        }
        const char *arg = argv[a.i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("sluice %s\n", SL_VERSION);
            return 0;
        }
        a.i++;
        if (strcmp(arg, "query") == 0)
            return sl_cli_cmd_query(&cli, &a);
        if (strcmp(arg, "tail") == 0)
            return sl_cli_cmd_tail(&cli, &a);
        if (strcmp(arg, "labels") == 0)
            return sl_cli_cmd_labels(&cli, &a);
        if (strcmp(arg, "series") == 0)
            return sl_cli_cmd_series(&cli, &a);
        if (strcmp(arg, "stats") == 0)
            return sl_cli_cmd_stats(&cli, &a);
        fprintf(stderr, "sluice: unknown command or option %s\n\n%s", arg, usage);
        return 1;
    }
    fputs(usage, stderr);
    return 1;
}
