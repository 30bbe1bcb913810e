/* The json stage's fast path against jansson on the same input. The whole
 * input is checked by both: they must agree on whether it is a JSON object
 * (except where jansson refuses what the fast path only checks for syntax:
 * integers or reals out of range, NUL in keys, nesting depth; jansson's
 * acceptance of a raw NUL after a number). For accepted
 * objects, every key down to depth 3 (and array elements 0, 1, -1) is
 * looked up by the fast path and compared with jansson's value: strings
 * byte for byte after unescaping, numbers by value, objects and arrays by
 * parsing the raw text again. The input also runs through a json stage with
 * labels and metadata, for the stage's own invariants. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline/internal.h"
#include "agent/pipeline/pipeline.h"
#include "common/arena.h"
#include "common/config.h"
#include "common/err.h"
#include "common/labels.h"

#define MAXDEPTH 3

static void fail(const char *what, const char *s, size_t n)
{
    fprintf(stderr, "mismatch: %s on %.*s\n", what, (int)(n > 300 ? 300 : n), s);
    abort();
}

static void compare(struct sl_arena *a, const char *s, size_t n, struct sl__pl_jseg *segs,
                    size_t depth, json_t *want)
{
    struct sl__pl_jpath path = {segs, depth};
    struct sl_bytes raw;
    enum sl__pl_jtype t = sl__pl_json_find(s, n, &path, &raw);
    switch (t) {
    case SL_PL_J_STRING: {
        if (!json_is_string(want))
            fail("string", s, n);
        struct sl_bytes v = sl__pl_json_unquote(a, raw);
        if (v.len != json_string_length(want) ||
            (v.len && memcmp(v.ptr, json_string_value(want), v.len) != 0))
            fail("string value", s, n);
        break;
    }
    case SL_PL_J_NUMBER: {
        char buf[512];
        if (!json_is_number(want) || raw.len >= sizeof(buf))
            fail("number", s, n);
        memcpy(buf, raw.ptr, raw.len);
        buf[raw.len] = 0;
        if (json_is_integer(want) ? strtoll(buf, NULL, 10) != json_integer_value(want)
                                  : strtod(buf, NULL) != json_real_value(want))
            fail("number value", s, n);
        break;
    }
    case SL_PL_J_BOOL:
        if (!json_is_boolean(want) || (raw.ptr[0] == 't') != json_is_true(want))
            fail("bool", s, n);
        break;
    case SL_PL_J_NULL:
        if (!json_is_null(want))
            fail("null", s, n);
        break;
    case SL_PL_J_OBJECT:
    case SL_PL_J_ARRAY: {
        json_t *again = json_loadb(raw.ptr, raw.len, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
        if (!again || !json_equal(again, want))
            fail("container", s, n);
        json_decref(again);
        break;
    }
    default:
        fail("not found", s, n);
    }
    if (depth >= MAXDEPTH)
        return;
    if (json_is_object(want)) {
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            segs[depth] = (struct sl__pl_jseg){.key = sl_bytes(k, strlen(k))};
            compare(a, s, n, segs, depth + 1, v);
        }
        segs[depth] = (struct sl__pl_jseg){.key = SL_BYTES_LIT("\x01missing")};
        struct sl__pl_jpath p2 = {segs, depth + 1};
        if (sl__pl_json_find(s, n, &p2, &raw) != SL_PL_J_NONE)
            fail("missing key found", s, n);
    } else if (json_is_array(want)) {
        size_t len = json_array_size(want);
        static const long idx[] = {0, 1, -1, -2};
        for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
            long at = idx[i] < 0 ? (long)len + idx[i] : idx[i];
            segs[depth] = (struct sl__pl_jseg){.is_index = true, .index = idx[i]};
            if (at >= 0 && at < (long)len) {
                compare(a, s, n, segs, depth + 1, json_array_get(want, (size_t)at));
            } else {
                struct sl__pl_jpath p2 = {segs, depth + 1};
                if (sl__pl_json_find(s, n, &p2, &raw) != SL_PL_J_NONE)
                    fail("index out of range found", s, n);
            }
        }
    }
}

/* The one-pass lookup of the json stage agrees with the single lookups. */
static void check_find_all(const char *s, size_t n, json_t *j)
{
    size_t np = json_object_size(j) + 1, k = 0;
    struct sl__pl_jseg *segs = calloc(np * 2, sizeof(*segs));
    struct sl__pl_jpath *paths = calloc(np, sizeof(*paths));
    size_t *at = calloc(np, sizeof(*at));
    enum sl__pl_jtype *types = calloc(np, sizeof(*types));
    struct sl_bytes *raws = calloc(np, sizeof(*raws));
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        segs[2 * k] = (struct sl__pl_jseg){.key = sl_bytes(key, strlen(key))};
        segs[2 * k + 1] = (struct sl__pl_jseg){.is_index = true, .index = 0};
        paths[k] = (struct sl__pl_jpath){&segs[2 * k], json_is_array(v) ? 2 : 1};
        k++;
    }
    segs[2 * k] = (struct sl__pl_jseg){.key = SL_BYTES_LIT("\x01missing")};
    paths[k] = (struct sl__pl_jpath){&segs[2 * k], 1};
    sl__pl_json_find_all(s, n, paths, np, at, types, raws);
    for (size_t i = 0; i < np; i++) {
        struct sl_bytes raw;
        enum sl__pl_jtype t = sl__pl_json_find(s, n, &paths[i], &raw);
        if (t != types[i] ||
            (t != SL_PL_J_NONE && (raw.ptr != raws[i].ptr || raw.len != raws[i].len)))
            fail("find_all", s, n);
    }
    free(segs);
    free(paths);
    free(at);
    free(types);
    free(raws);
}

static void emit(void *ud, const struct sl_pipeline_out *o)
{
    (void)ud;
    for (size_t i = 0; i < o->labels->n; i++)
        if (!sl_label_name_valid(o->labels->items[i].name) || !o->labels->items[i].value.len)
            abort();
    if (o->labels->n > 15)
        abort();
}

struct cfg {
    struct sl_cfgnode *pipeline;
};

static struct sl_pipeline *stage(void)
{
    static struct sl_pipeline *p;
    if (p)
        return p;
    static const struct sl_option opts[] = {
        {"pipeline", SL_OPT_NODE, "[]", offsetof(struct cfg, pipeline), ""}};
    const char *yaml = "pipeline:\n"
                       "  - json:\n"
                       "      expressions: {level: level, a: a.b, first: \"x[0]\", key: '\"k\"'}\n"
                       "  - labels: {level: \"\", a: \"\"}\n"
                       "  - structured_metadata: {first: \"\", key: \"\"}\n"
                       "  - output: {source: key}\n";
    struct cfg c = {0};
    if (sl_config_load_mem(opts, 1, &c, yaml, strlen(yaml), NULL, 0, NULL) != 0 ||
        sl_pipeline_new(c.pipeline, NULL, &p, NULL) != 0)
        abort();
    sl_config_release(opts, 1, &c);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int mine = sl__pl_json_check(s, size);
    json_error_t je;
    json_t *j = json_loadb(s, size, JSON_ALLOW_NUL, &je);
    bool obj = j && json_is_object(j);
    if (mine == SL_ETOOBIG || (!j && (strstr(je.text, "too big") || strstr(je.text, "overflow") ||
                                      strstr(je.text, "NUL") || strstr(je.text, "depth")))) {
        json_decref(j);
        return 0;
    }
    /* jansson ignores a NUL byte right after a number ({"a":5\0} loads); a raw
     * NUL is no JSON anywhere, and the fast path refuses it. */
    if (mine != 0 && obj && memchr(s, 0, size)) {
        json_decref(j);
        return 0;
    }
    if ((mine == 0) != obj)
        fail(mine == 0 ? "fast path accepts what jansson refuses" : "fast path refuses", s, size);
    if (obj) {
        struct sl_arena a;
        sl_arena_init(&a, 0);
        struct sl__pl_jseg segs[MAXDEPTH + 1];
        compare(&a, s, size, segs, 0, j);
        check_find_all(s, size, j);
        sl_arena_release(&a);
    }
    json_decref(j);

    static struct sl_label items[] = {{SL_BYTES_LIT("pod"), SL_BYTES_LIT("p")}};
    static const struct sl_labels base = {items, 1};
    struct sl_pipeline_stream *st = sl_pipeline_stream_new(stage(), &base, emit, NULL);
    struct sl_pipeline_in in = {1, sl_bytes(s, size), 0, 1};
    sl_pipeline_push(st, &in);
    sl_pipeline_stream_free(st);
    return 0;
}
