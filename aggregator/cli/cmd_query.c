/* `sluice query`: a log query over /loki/api/v1/query_range, printed like
 * logcli (entries of every stream merged in time order); a metric query
 * over query_range when a range is given (--since/--from), else as an
 * instant query (/loki/api/v1/query) at --to or now. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/cli/cli.h"
#include "common/arena.h"
#include "common/jsonw.h"
#include "common/labels.h"
#include "common/mem.h"
#include "common/timeutil.h"

enum output { OUT_DEFAULT, OUT_RAW, OUT_JSONL };

struct entry {
    int64_t ts;
    size_t stream; /* index into the result array */
    size_t seq;    /* order in the answer, for a stable sort */
    json_t *line;
};

struct qopts {
    struct sl_cli_range range;
    const char *limit, *output, *query, *step;
    bool forward;
};

static const char query_help[] =
    "usage: sluice [--addr URL] [--org-id T] query [options] '<logql>'\n"
    "\n"
    "Runs a LogQL query. A log query prints entries; a metric query (one that does\n"
    "not start with a stream selector) is evaluated over the range when --since or\n"
    "--from is given, else as an instant query at --to (default now).\n"
    "\n"
    "  --since D       look back this long from now (default 1h)\n"
    "  --from T        start (RFC3339 or Unix seconds/nanoseconds); overrides --since\n"
    "  --to T          end, exclusive (default now)\n"
    "  --limit N       at most N entries over all streams (default 30)\n"
    "  --forward       oldest entries first (default: newest first)\n"
    "  --step D        metric range queries: evaluation step (default: the server's)\n"
    "  --tail, -t      follow new entries live (as sluice tail; see sluice tail --help)\n"
    "  --color         colour the default output even when not on a terminal\n"
    "  --no-color      never colour (also: NO_COLOR=1 in the environment)\n"
    "  --output F      default: <time> {labels} <line>; raw: the line only;\n"
    "                  jsonl: one {\"timestamp\",\"labels\",\"line\"} object per entry\n"
    "                  metric queries, default: vector \"{labels} value\" per series,\n"
    "                  matrix \"{labels}\" then \"<time> value\" rows, scalar \"value\";\n"
    "                  raw: data.result as JSON; jsonl: one\n"
    "                  {\"labels\",\"timestamp\",\"value\"} object per sample\n"
    "Times: RFC3339 (2024-05-01T10:00:00Z), Unix seconds (1714557600, 1714557600.5)\n"
    "or Unix nanoseconds.\n";

static int entry_cmp(const void *a, const void *b, void *ud)
{
    const struct entry *x = a, *y = b;
    bool forward = *(const bool *)ud;
    if (x->ts != y->ts)
        return (x->ts < y->ts) == forward ? -1 : 1;
    return x->seq < y->seq ? -1 : 1;
}

/* Labels of a stream as a sorted sl_labels over jansson's strings. */
static void stream_labels(struct sl_arena *a, json_t *stream, struct sl_labels *ls)
{
    json_t *obj = json_object_get(stream, "stream"), *v;
    const char *k;
    ls->n = 0;
    ls->items = sl_arena_alloc(a, (json_object_size(obj) + 1) * sizeof *ls->items);
    json_object_foreach(obj, k, v)
    {
        ls->items[ls->n].name = sl_bytes_str(k);
        ls->items[ls->n].value =
            sl_bytes(json_string_value(v) ? json_string_value(v) : "", json_string_length(v));
        ls->n++;
    }
    sl_labels_sort(ls);
}

static void print_entry(enum output out, bool color, const struct entry *e,
                        const struct sl_labels *ls, const struct sl_buf *canon, struct sl_buf *b)
{
    struct sl_bytes line = sl_bytes(json_string_value(e->line), json_string_length(e->line));
    if (!line.ptr)
        line = sl_bytes("", 0);
    sl_buf_clear(b);
    if (out == OUT_RAW) {
        sl_buf_append_bytes(b, line);
    } else if (out == OUT_DEFAULT) {
        sl_cli_format_entry(b, color, e->ts, sl_buf_bytes(canon), line);
    } else {
        struct sl_jsonw w;
        struct sl_buf ts = SL_BUF_INIT;
        sl_rfc3339_format(&ts, e->ts);
        sl_jsonw_init(&w, b);
        sl_jsonw_obj_open(&w);
        sl_jsonw_key(&w, "timestamp");
        sl_jsonw_bytes(&w, sl_buf_bytes(&ts));
        sl_jsonw_key(&w, "labels");
        sl_jsonw_obj_open(&w);
        for (size_t i = 0; i < ls->n; i++) {
            sl_jsonw_key_bytes(&w, ls->items[i].name);
            sl_jsonw_bytes(&w, ls->items[i].value);
        }
        sl_jsonw_obj_close(&w);
        sl_jsonw_key(&w, "line");
        sl_jsonw_bytes(&w, line);
        sl_jsonw_obj_close(&w);
        sl_buf_release(&ts);
    }
    sl_buf_append_char(b, '\n');
    fwrite(b->data, 1, b->len, stdout);
}

static int print_result(json_t *doc, enum output out, bool color, bool forward)
{
    json_t *result = json_object_get(json_object_get(doc, "data"), "result");
    if (!json_is_array(result)) {
        fprintf(stderr, "sluice: unexpected answer: no data.result array\n");
        return 1;
    }
    size_t n = 0, cap = 64, i, k;
    struct entry *v = sl_mallocarray(cap, sizeof *v);
    json_t *s, *val;
    json_array_foreach(result, i, s)
    {
        json_array_foreach(json_object_get(s, "values"), k, val)
        {
            const char *ts = json_string_value(json_array_get(val, 0));
            if (n == cap)
                v = sl_reallocarray(v, cap *= 2, sizeof *v);
            v[n] = (struct entry){ts ? strtoll(ts, NULL, 10) : 0, i, n, json_array_get(val, 1)};
            n++;
        }
    }
    qsort_r(v, n, sizeof *v, entry_cmp, &forward);
    size_t ns = json_array_size(result);
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_labels *ls = sl_arena_alloc(&a, (ns + 1) * sizeof *ls);
    struct sl_buf *canon = sl_calloc(ns + 1, sizeof *canon);
    for (i = 0; i < ns; i++) {
        stream_labels(&a, json_array_get(result, i), &ls[i]);
        sl_labels_format(&ls[i], &canon[i]);
    }
    struct sl_buf b = SL_BUF_INIT;
    for (i = 0; i < n; i++)
        print_entry(out, color, &v[i], &ls[v[i].stream], &canon[v[i].stream], &b);
    sl_buf_release(&b);
    for (i = 0; i < ns; i++)
        sl_buf_release(&canon[i]);
    sl_free(canon);
    sl_arena_release(&a);
    sl_free(v);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* A log query starts with its stream selector; anything else (a function,
 * a parenthesis, a number) is a metric query. Comments are skipped. */
static bool is_metric_query(const char *q)
{
    for (;;) {
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        if (*q != '#')
            break;
        while (*q && *q != '\n')
            q++;
    }
    return *q && *q != '{';
}

static int parse_query_args(struct sl_cli *cli, struct sl_cli_args *a, struct qopts *o)
{
    while (a->i < a->argc) {
        const char *fwd = NULL;
        int r;
        if (sl_cli_color_opt(cli, a))
            continue;
        if ((r = sl_cli_opt(a, "since", true, &o->range.since)) ||
            (r = sl_cli_opt(a, "from", true, &o->range.from)) ||
            (r = sl_cli_opt(a, "to", true, &o->range.to)) ||
            (r = sl_cli_opt(a, "limit", true, &o->limit)) ||
            (r = sl_cli_opt(a, "output", true, &o->output)) ||
            (r = sl_cli_opt(a, "step", true, &o->step)) ||
            (r = sl_cli_opt(a, "forward", false, &fwd))) {
            if (r < 0)
                return -1;
            if (fwd)
                o->forward = true;
            continue;
        }
        const char *arg = a->argv[a->i++];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(query_help, stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) == 0 || o->query) {
            fprintf(stderr, "sluice: query: unexpected argument %s (see sluice query --help)\n",
                    arg);
            return -1;
        }
        o->query = arg;
    }
    if (!o->query) {
        fprintf(stderr, "sluice: query: missing the LogQL query (see sluice query --help)\n");
        return -1;
    }
    return 0;
}

int sl_cli_cmd_query(struct sl_cli *cli, struct sl_cli_args *a)
{
    for (int i = a->i; i < a->argc; i++)
        if (strcmp(a->argv[i], "--tail") == 0 || strcmp(a->argv[i], "-t") == 0)
            return sl_cli_cmd_tail(cli, a); /* logcli's query --tail */
    struct qopts o = {.limit = "30", .output = "default"};
    int rc = parse_query_args(cli, a, &o);
    if (rc)
        return rc < 0 ? 1 : 0;
    enum output out;
    if (strcmp(o.output, "default") == 0)
        out = OUT_DEFAULT;
    else if (strcmp(o.output, "raw") == 0)
        out = OUT_RAW;
    else if (strcmp(o.output, "jsonl") == 0)
        out = OUT_JSONL;
    else {
        fprintf(stderr, "sluice: --output must be default, raw or jsonl\n");
        return 1;
    }
    struct sl_buf q = SL_BUF_INIT;
    const char *path = "/loki/api/v1/query_range";
    sl_cli_param(&q, "query", o.query);
    sl_cli_param(&q, "limit", o.limit);
    if (is_metric_query(o.query) && !o.range.since && !o.range.from) {
        path = "/loki/api/v1/query";
        if (o.range.to)
            sl_cli_param(&q, "time", o.range.to);
    } else {
        sl_cli_param(&q, "direction", o.forward ? "forward" : "backward");
        if (o.step)
            sl_cli_param(&q, "step", o.step);
        if (sl_cli_range_params(&o.range, "1h", &q)) {
            sl_buf_release(&q);
            return 1;
        }
    }
    json_t *doc = NULL;
    rc = sl_cli_get_json(cli, path, &q, &doc);
    sl_buf_release(&q);
    if (rc)
        return 1;
    const char *type =
        json_string_value(json_object_get(json_object_get(doc, "data"), "resultType"));
    if (type && strcmp(type, "streams") != 0)
        rc = sl_cli_print_metric(doc, o.output);
    else
        rc = print_result(doc, out, sl_cli_use_color(cli), o.forward);
    json_decref(doc);
    return rc;
}
