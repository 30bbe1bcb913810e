/* Fuzz target for the native push body decoder (common/batch.c).
 *
 * Arbitrary bytes are decoded. When the decoder accepts them:
 *  - msgpack-c must parse the same bytes as exactly one value, and walking its
 *    object tree must find the same streams, labels and entries (a
 *    differential check of the hand-written reader);
 *  - re-encoding the batch with the encoder and decoding that again must give
 *    the same batch. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/arena.h"
#include "common/batch.h"
#include "common/buf.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void same_labels(const struct sl_label *a, size_t na, const struct sl_label *b, size_t nb)
{
    CHECK(na == nb);
    for (size_t k = 0; k < na; k++) {
        CHECK(sl_bytes_eq(a[k].name, b[k].name));
        CHECK(sl_bytes_eq(a[k].value, b[k].value));
    }
}

static void same_batch(const struct sl_batch *a, const struct sl_batch *b)
{
    CHECK(a->nstreams == b->nstreams);
    CHECK(a->nentries == b->nentries);
    CHECK(a->line_bytes == b->line_bytes);
    for (size_t s = 0; s < a->nstreams; s++) {
        const struct sl_batch_stream *x = &a->streams[s], *y = &b->streams[s];
        same_labels(x->labels.items, x->labels.n, y->labels.items, y->labels.n);
        CHECK(x->nentries == y->nentries);
        for (size_t e = 0; e < x->nentries; e++) {
            CHECK(x->entries[e].ts_ns == y->entries[e].ts_ns);
            CHECK(sl_bytes_eq(x->entries[e].line, y->entries[e].line));
            same_labels(x->entries[e].meta, x->entries[e].nmeta, y->entries[e].meta,
                        y->entries[e].nmeta);
        }
    }
}

static int key_is(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, s, n) == 0;
}

/* Last value for key in map (the decoder rejects duplicates it cares about). */
static const msgpack_object *get(const msgpack_object *m, const char *key)
{
    CHECK(m->type == MSGPACK_OBJECT_MAP);
    const msgpack_object *v = NULL;
    for (uint32_t k = 0; k < m->via.map.size; k++)
        if (key_is(&m->via.map.ptr[k].key, key))
            v = &m->via.map.ptr[k].val;
    CHECK(v != NULL);
    return v;
}

static struct sl_bytes obj_bytes(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR)
        return sl_bytes(o->via.str.ptr, o->via.str.size);
    CHECK(o->type == MSGPACK_OBJECT_BIN);
    return sl_bytes(o->via.bin.ptr, o->via.bin.size);
}

static void same_map(const msgpack_object *m, const struct sl_label *l, size_t n)
{
    CHECK(m->type == MSGPACK_OBJECT_MAP && m->via.map.size == n);
    for (size_t k = 0; k < n; k++) {
        CHECK(sl_bytes_eq(obj_bytes(&m->via.map.ptr[k].key), l[k].name));
        CHECK(m->via.map.ptr[k].key.type == MSGPACK_OBJECT_STR);
        CHECK(sl_bytes_eq(obj_bytes(&m->via.map.ptr[k].val), l[k].value));
    }
}

static void same_as_msgpack_c(const uint8_t *data, size_t size, const struct sl_batch *b)
{
    msgpack_unpacked up;
    size_t off = 0;
    msgpack_unpacked_init(&up);
    msgpack_unpack_return rc = msgpack_unpack_next(&up, (const char *)data, size, &off);
    /* msgpack-c refuses nesting deeper than its fixed stack (it reports that
     * as NOMEM_ERROR) and some malformed input as PARSE_ERROR; the decoder
     * skips unknown values of any depth, so only these may differ. */
    if (rc == MSGPACK_UNPACK_PARSE_ERROR || rc == MSGPACK_UNPACK_NOMEM_ERROR) {
        msgpack_unpacked_destroy(&up);
        return;
    }
    CHECK(rc == MSGPACK_UNPACK_SUCCESS);
    CHECK(off == size);
    const msgpack_object *streams = get(&up.data, "streams");
    CHECK(streams->type == MSGPACK_OBJECT_ARRAY && streams->via.array.size == b->nstreams);
    for (size_t s = 0; s < b->nstreams; s++) {
        const msgpack_object *so = &streams->via.array.ptr[s];
        const struct sl_batch_stream *st = &b->streams[s];
        same_map(get(so, "labels"), st->labels.items, st->labels.n);
        const msgpack_object *entries = get(so, "entries");
        CHECK(entries->type == MSGPACK_OBJECT_ARRAY && entries->via.array.size == st->nentries);
        for (size_t e = 0; e < st->nentries; e++) {
            const msgpack_object *eo = &entries->via.array.ptr[e];
            const struct sl_batch_entry *en = &st->entries[e];
            CHECK(eo->type == MSGPACK_OBJECT_ARRAY && eo->via.array.size >= 2);
            const msgpack_object *ts = &eo->via.array.ptr[0];
            if (ts->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                CHECK(ts->via.u64 == (uint64_t)en->ts_ns && en->ts_ns >= 0);
            else
                CHECK(ts->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && ts->via.i64 == en->ts_ns);
            CHECK(sl_bytes_eq(obj_bytes(&eo->via.array.ptr[1]), en->line));
            if (eo->via.array.size >= 3 && eo->via.array.ptr[2].type != MSGPACK_OBJECT_NIL)
                same_map(&eo->via.array.ptr[2], en->meta, en->nmeta);
            else
                CHECK(en->nmeta == 0);
        }
    }
    msgpack_unpacked_destroy(&up);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_arena a;
    struct sl_batch b, b2;
    struct sl_buf err = SL_BUF_INIT, body = SL_BUF_INIT;
    sl_arena_init(&a, 0);
    if (sl_batch_decode(&a, data, size, &b, &err) != 0) {
        CHECK(err.len > 0);
        CHECK(b.nstreams == 0 && b.streams == NULL);
        goto out;
    }
    CHECK(err.len == 0);
    same_as_msgpack_c(data, size, &b);

    struct sl_batch_enc e;
    sl_batch_enc_init(&e);
    for (size_t s = 0; s < b.nstreams; s++) {
        sl_batch_enc_stream(&e, &b.streams[s].labels, b.streams[s].nentries);
        for (size_t k = 0; k < b.streams[s].nentries; k++) {
            const struct sl_batch_entry *en = &b.streams[s].entries[k];
            sl_batch_enc_entry(&e, en->ts_ns, en->line, en->meta, en->nmeta);
        }
    }
    CHECK(sl_batch_enc_finish(&e, &body) == 0);
    sl_batch_enc_release(&e);
    CHECK(sl_batch_decode(&a, body.data, body.len, &b2, &err) == 0);
    same_batch(&b, &b2);
out:
    sl_buf_release(&body);
    sl_buf_release(&err);
    sl_arena_release(&a);
    return 0;
}
