/* The `sluice` command-line client: shared state and helpers of its
 * commands (the files of aggregator/cli/). Single-threaded; blocking HTTP. */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"

#define SL_CLI_DEFAULT_ADDR "http://127.0.0.1:3100"

enum sl_cli_color { SL_CLI_COLOR_AUTO, SL_CLI_COLOR_NEVER, SL_CLI_COLOR_ALWAYS };

struct sl_cli {
    const char *addr;        /* --addr, $SLUICE_ADDR, or the default */
    const char *org_id;      /* --org-id, $SLUICE_ORG_ID, or NULL */
    enum sl_cli_color color; /* --color / --no-color; AUTO by default */
};

/* Command-line arguments after the command name: options are matched by
 * sl_cli_opt, everything else is positional. */
struct sl_cli_args {
    int argc;
    char **argv;
    int i;
};

/* If argv[i] is --name (value in the next argument) or --name=value, stores
 * the value, advances and returns 1; returns -1 (after a message) when the
 * value is missing; 0 if argv[i] is another argument. has_value=false for
 * flags (value is then "1"). */
int sl_cli_opt(struct sl_cli_args *a, const char *name, bool has_value, const char **value);

/* Appends "&name=<percent-encoded value>" (no '&' when q is empty). */
void sl_cli_param(struct sl_buf *q, const char *name, const char *value);

/* GET addr+path+"?"+query. On a 2xx JSON answer returns 0 and the parsed
 * document in *out (caller json_decref's). Otherwise prints the reason on
 * stderr (server's text for non-2xx, transport error) and returns non-zero. */
int sl_cli_get_json(const struct sl_cli *cli, const char *path, const struct sl_buf *query,
                    json_t **out);

/* Time range options shared by commands: --since D, --from T, --to T.
 * Appends start/end parameters to q. Returns 0 or -1 after a message. */
struct sl_cli_range {
    const char *since, *from, *to;
};
int sl_cli_range_params(const struct sl_cli_range *r, const char *default_since, struct sl_buf *q);

/* Appends the canonical {a="b", c="d"} of a JSON object of string labels
 * (sorted by name) to out. */
void sl_cli_labels_format(json_t *obj, struct sl_buf *out);

/* Prints data.result of a metric answer (resultType matrix, vector or
 * scalar) in the given output format: "default", "raw" or "jsonl".
 * Returns 0, or 1 after a message. */
int sl_cli_print_metric(json_t *doc, const char *output);

/* --color / --no-color at argv[i]: sets cli->color, advances, returns 1;
 * else 0. Accepted globally and by the commands that print entries. */
int sl_cli_color_opt(struct sl_cli *cli, struct sl_cli_args *a);
/* Whether to colour: --color, or (auto) stdout is a terminal, NO_COLOR is
 * unset or empty and TERM is not "dumb". */
bool sl_cli_use_color(const struct sl_cli *cli);
/* Appends one entry in the default format, "<RFC3339 time> {labels} line",
 * with logcli's colours when color: the time blue, the labels in one of
 * ten colours picked by the FNV-32 hash of their text. */
void sl_cli_format_entry(struct sl_buf *b, bool color, int64_t ts, struct sl_bytes labels,
                         struct sl_bytes line);

/* `sluice tail` and `sluice query --tail`: follows /loki/api/v1/tail over a
 * WebSocket until Ctrl-C (exit 0) or the server closes. */
int sl_cli_cmd_tail(struct sl_cli *cli, struct sl_cli_args *a);
int sl_cli_cmd_query(struct sl_cli *cli, struct sl_cli_args *a);
int sl_cli_cmd_labels(struct sl_cli *cli, struct sl_cli_args *a);
int sl_cli_cmd_series(struct sl_cli *cli, struct sl_cli_args *a);
int sl_cli_cmd_stats(struct sl_cli *cli, struct sl_cli_args *a);

#endif
