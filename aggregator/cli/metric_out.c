/* Printing of metric answers (matrix, vector, scalar) and label sets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/cli/cli.h"
#include "common/arena.h"
#include "common/jsonw.h"
#include "common/labels.h"
#include "common/timeutil.h"

void sl_cli_labels_format(json_t *obj, struct sl_buf *out)
{
    struct sl_arena a;
    struct sl_labels ls = {0};
    json_t *v;
    const char *k;
    sl_arena_init(&a, 0);
    ls.items = sl_arena_alloc(&a, (json_object_size(obj) + 1) * sizeof *ls.items);
    json_object_foreach(obj, k, v)
    {
        const char *s = json_string_value(v);
        ls.items[ls.n].name = sl_bytes_str(k);
        ls.items[ls.n].value = sl_bytes(s ? s : "", s ? json_string_length(v) : 0);
        ls.n++;
    }
    sl_labels_sort(&ls);
    sl_labels_format(&ls, out);
    sl_arena_release(&a);
}

/* A sample [<unix seconds, float>, "<value>"]: time as RFC3339 (Loki's
 * metric timestamps have millisecond precision). */
static void sample_time(json_t *sample, struct sl_buf *b)
{
    double t = json_number_value(json_array_get(sample, 0));
    sl_rfc3339_format(b, (int64_t)llround(t * 1000.0) * 1000000);
}

static const char *sample_value(json_t *sample)
{
    const char *v = json_string_value(json_array_get(sample, 1));
    return v ? v : "";
}

static void jsonl_sample(json_t *metric, json_t *sample, struct sl_buf *b)
{
    struct sl_jsonw w;
    struct sl_buf ts = SL_BUF_INIT;
    sample_time(sample, &ts);
    sl_jsonw_init(&w, b);
    sl_jsonw_obj_open(&w);
    if (metric) {
        json_t *v;
        const char *k;
        sl_jsonw_key(&w, "labels");
        sl_jsonw_obj_open(&w);
        json_object_foreach(metric, k, v)
        {
            sl_jsonw_key(&w, k);
            sl_jsonw_bytes(&w, sl_bytes(json_string_value(v) ? json_string_value(v) : "",
                                        json_string_length(v)));
        }
        sl_jsonw_obj_close(&w);
    }
    sl_jsonw_key(&w, "timestamp");
    sl_jsonw_bytes(&w, sl_buf_bytes(&ts));
    sl_jsonw_key(&w, "value");
    sl_jsonw_str(&w, sample_value(sample));
    sl_jsonw_obj_close(&w);
    sl_buf_append_char(b, '\n');
    sl_buf_release(&ts);
}

/* default: vector "{labels} value"; matrix "{labels}" then "time value"
 * rows; scalar "value". jsonl: one object per sample. */
static void print_series(json_t *s, bool matrix, bool jsonl, struct sl_buf *b)
{
    json_t *metric = json_object_get(s, "metric"), *sample;
    size_t i;
    if (jsonl) {
        if (!matrix)
            jsonl_sample(metric, json_object_get(s, "value"), b);
        else
            json_array_foreach(json_object_get(s, "values"), i, sample)
                jsonl_sample(metric, sample, b);
        return;
    }
    sl_cli_labels_format(metric, b);
    if (!matrix) {
        sl_buf_appendf(b, " %s\n", sample_value(json_object_get(s, "value")));
        return;
    }
    sl_buf_append_char(b, '\n');
    json_array_foreach(json_object_get(s, "values"), i, sample)
    {
        sample_time(sample, b);
        sl_buf_appendf(b, " %s\n", sample_value(sample));
    }
}

int sl_cli_print_metric(json_t *doc, const char *output)
{
    json_t *data = json_object_get(doc, "data");
    const char *type = json_string_value(json_object_get(data, "resultType"));
    json_t *result = json_object_get(data, "result"), *s;
    bool jsonl = strcmp(output, "jsonl") == 0;
    if (strcmp(output, "raw") == 0) {
        char *txt = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
        if (txt)
            puts(txt);
        free(txt);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    struct sl_buf b = SL_BUF_INIT;
    size_t i;
    if (type && strcmp(type, "scalar") == 0) {
        if (jsonl)
            jsonl_sample(NULL, result, &b);
        else
            sl_buf_appendf(&b, "%s\n", sample_value(result));
    } else if (type && (strcmp(type, "vector") == 0 || strcmp(type, "matrix") == 0) &&
               json_is_array(result)) {
        bool matrix = strcmp(type, "matrix") == 0;
        json_array_foreach(result, i, s) print_series(s, matrix, jsonl, &b);
    } else {
        fprintf(stderr, "sluice: unexpected answer: resultType %s\n", type ? type : "missing");
        sl_buf_release(&b);
        return 1;
    }
    if (b.len)
        fwrite(b.data, 1, b.len, stdout);
    sl_buf_release(&b);
    return fflush(stdout) == 0 ? 0 : 1;
}
