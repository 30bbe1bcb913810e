/* The logfmt scanner: every pair it reports has a key of key bytes; pairs
 * encoded again (values quoted and escaped) scan back to the same pairs.
 * The input also runs through a logfmt + labels + drop + timestamp pipeline
 * (lines split at '\n', with multiline joining), for the stages' invariants. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline/internal.h"
#include "agent/pipeline/pipeline.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/labels.h"

struct pairs {
    struct sl_buf keys, vals; /* each entry: u32 length + bytes */
    size_t n;
};

static void put(struct sl_buf *b, struct sl_bytes v)
{
    uint32_t len = (uint32_t)v.len;
    sl_buf_append(b, &len, sizeof(len));
    sl_buf_append(b, v.ptr, v.len);
}

static void on_pair(void *ud, struct sl_bytes k, struct sl_bytes v)
{
    struct pairs *p = ud;
    if (!k.len)
        abort();
    for (size_t i = 0; i < k.len; i++) {
        unsigned char c = (unsigned char)k.ptr[i];
        if (c <= ' ' || c == '=' || c == '"' || c == 0x7f)
            abort();
    }
    put(&p->keys, k);
    put(&p->vals, v);
    p->n++;
}

static void encode(const struct pairs *p, struct sl_buf *out)
{
    size_t ko = 0, vo = 0;
    for (size_t i = 0; i < p->n; i++) {
        uint32_t kl, vl;
        memcpy(&kl, p->keys.data + ko, 4);
        memcpy(&vl, p->vals.data + vo, 4);
        sl_buf_append(out, p->keys.data + ko + 4, kl);
        sl_buf_append_str(out, "=\"");
        for (uint32_t k = 0; k < vl; k++) {
            unsigned char c = (unsigned char)p->vals.data[vo + 4 + k];
            if (c == '"' || c == '\\')
                sl_buf_appendf(out, "\\%c", c);
            else if (c < 0x20)
                sl_buf_appendf(out, "\\u%04x", c);
            else
                sl_buf_append(out, (const char *)&c, 1);
        }
        sl_buf_append_str(out, "\" ");
        ko += 4 + kl;
        vo += 4 + vl;
    }
}

static void emit(void *ud, const struct sl_pipeline_out *o)
{
    (void)ud;
    if (o->labels->n > 15 || (o->dropped && !o->reason))
        abort();
    for (size_t i = 0; i < o->labels->n; i++)
        if (!sl_label_name_valid(o->labels->items[i].name) || !o->labels->items[i].value.len)
            abort();
}

struct cfg {
    struct sl_cfgnode *pipeline;
};

static struct sl_pipeline *pipeline(void)
{
    static struct sl_pipeline *p;
    if (p)
        return p;
    static const struct sl_option opts[] = {
        {"pipeline", SL_OPT_NODE, "[]", offsetof(struct cfg, pipeline), ""}};
    const char *yaml = "pipeline:\n"
                       "  - multiline: {firstline: '^\\S', max_lines: 4}\n"
                       "  - logfmt: {mapping: {level: \"\", app: \"\", t: ts, m: msg}}\n"
                       "  - labels: {level: \"\", app: \"\"}\n"
                       "  - structured_metadata: {m: \"\"}\n"
                       "  - drop: {source: [level, app], value: \"debug;x\"}\n"
                       "  - timestamp: {source: t, format: \"2006-01-02 15:04:05.000 -0700\", "
                       "fallback_formats: [Unix, RFC3339]}\n";
    struct cfg c = {0};
    if (sl_config_load_mem(opts, 1, &c, yaml, strlen(yaml), NULL, 0, NULL) != 0 ||
        sl_pipeline_new(c.pipeline, NULL, &p, NULL) != 0)
        abort();
    sl_config_release(opts, 1, &c);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct pairs p1 = {0}, p2 = {0};
    sl__pl_logfmt_scan(&a, sl_bytes((const char *)data, size), on_pair, &p1);
    struct sl_buf enc = SL_BUF_INIT;
    encode(&p1, &enc);
    sl__pl_logfmt_scan(&a, sl_buf_bytes(&enc), on_pair, &p2);
    if (p1.n != p2.n || p1.keys.len != p2.keys.len || p1.vals.len != p2.vals.len ||
        (p1.keys.len && memcmp(p1.keys.data, p2.keys.data, p1.keys.len)) ||
        (p1.vals.len && memcmp(p1.vals.data, p2.vals.data, p1.vals.len)))
        abort();
    sl_buf_release(&enc);
    sl_buf_release(&p1.keys);
    sl_buf_release(&p1.vals);
    sl_buf_release(&p2.keys);
    sl_buf_release(&p2.vals);
    sl_arena_release(&a);

    static struct sl_label items[] = {{SL_BYTES_LIT("pod"), SL_BYTES_LIT("p")}};
    static const struct sl_labels base = {items, 1};
    struct sl_pipeline *pl = pipeline();
    struct sl_pipeline_stream *st = sl_pipeline_stream_new(pl, &base, emit, NULL);
    const char *s = (const char *)data, *end = s + size;
    uint64_t off = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        off += len + 1;
        struct sl_pipeline_in in = {(int64_t)off, sl_bytes(s, len), (int)(len & 1), off};
        sl_pipeline_push(st, &in);
        s += len + (nl ? 1 : 0);
    }
    sl_pipeline_stream_flush(st);
    if (sl_pipeline_expire(pl, INT64_MAX) != -1)
        abort();
    sl_pipeline_stream_free(st);
    return 0;
}
