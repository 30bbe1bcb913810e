/* Tests for common/batch.c: encoder/decoder round trips, bodies built by hand
 * with msgpack-c and as raw bytes, and the exact reason of every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "common/arena.h"
#include "common/batch.h"
#include "common/buf.h"
#include "common/err.h"

/* ---------------------------------------------------------------- helpers */

struct mp {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void mp_init(struct mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_str(struct mp *m, const char *s)
{
    msgpack_pack_str_with_body(&m->pk, s, strlen(s));
}

static void mp_done(struct mp *m)
{
    msgpack_sbuffer_destroy(&m->sb);
}

/* Decodes and returns the rc; the reason is left in *reason. */
static int decode(struct sl_arena *a, const void *p, size_t n, struct sl_batch *b,
                  struct sl_buf *reason)
{
    sl_buf_clear(reason);
    return sl_batch_decode(a, p, n, b, reason);
}

static void expect_reason(const void *p, size_t n, const char *want)
{
    struct sl_arena a;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_batch b;
    sl_arena_init(&a, 0);
    int rc = decode(&a, p, n, &b, &err);
    if (rc != SL_EINVAL || strcmp(err.data ? err.data : "", want) != 0)
        fail_msg("rc=%d reason='%s' want '%s'", rc, err.data ? err.data : "", want);
    assert_int_equal(b.nstreams, 0);
    assert_null(b.streams);
    /* err is appended to, not replaced, and NULL err is fine */
    sl_batch_decode(&a, p, n, &b, &err);
    assert_int_equal(err.len, 2 * strlen(want));
    assert_int_equal(sl_batch_decode(&a, p, n, &b, NULL), SL_EINVAL);
    sl_buf_release(&err);
    sl_arena_release(&a);
}

/* Body prefix {"streams": [ {"labels": {"app": "api"}, "entries": [  with
 * one stream and nentries entries to follow. */
static void mp_one_stream(struct mp *m, uint32_t nentries)
{
    msgpack_pack_map(&m->pk, 1);
    mp_str(m, "streams");
    msgpack_pack_array(&m->pk, 1);
    msgpack_pack_map(&m->pk, 2);
    mp_str(m, "labels");
    msgpack_pack_map(&m->pk, 1);
    mp_str(m, "app");
    mp_str(m, "api");
    mp_str(m, "entries");
    msgpack_pack_array(&m->pk, nentries);
}

/* ------------------------------------------------------------- round trip */

static void test_round_trip(void **state)
{
    (void)state;
    struct sl_label l1[] = {{SL_BYTES_LIT("namespace"), SL_BYTES_LIT("prod")},
                            {SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
    struct sl_label l2[] = {{SL_BYTES_LIT("job"), SL_BYTES_LIT("x\"y")}};
    struct sl_labels ls1 = {l1, 2}, ls2 = {l2, 1};
    struct sl_label meta[] = {{SL_BYTES_LIT("trace_id"), SL_BYTES_LIT("abc123")},
                              {SL_BYTES_LIT("user"), SL_BYTES_LIT("")}};
    static const char bin_line[] = "a\0b\xff\n";
    struct sl_batch_enc e;
    struct sl_buf out = SL_BUF_INIT;
    sl_batch_enc_init(&e);
    sl_batch_enc_stream(&e, &ls1, 3);
    sl_batch_enc_entry(&e, 1700000000123456789, SL_BYTES_LIT("hello world"), meta, 2);
    sl_batch_enc_entry(&e, -5, sl_bytes(bin_line, sizeof(bin_line) - 1), NULL, 0);
    sl_batch_enc_entry(&e, INT64_MIN, SL_BYTES_LIT(""), NULL, 0);
    sl_batch_enc_stream(&e, &ls2, 1);
    sl_batch_enc_entry(&e, INT64_MAX, SL_BYTES_LIT("last"), meta + 1, 1);
    sl_batch_enc_stream(&e, &ls2, 0);
    sl_buf_append_str(&out, "XY"); /* finish appends */
    assert_int_equal(sl_batch_enc_finish(&e, &out), 0);
    assert_memory_equal(out.data, "XY", 2);

    struct sl_arena a;
    struct sl_batch b;
    struct sl_buf err = SL_BUF_INIT;
    sl_arena_init(&a, 0);
    assert_int_equal(decode(&a, out.data + 2, out.len - 2, &b, &err), 0);
    assert_int_equal(err.len, 0);
    assert_int_equal(b.nstreams, 3);
    assert_int_equal(b.nentries, 4);
    assert_int_equal(b.line_bytes, 11 + 5 + 0 + 4);

    struct sl_batch_stream *s = &b.streams[0];
    assert_int_equal(s->labels.n, 2);
    assert_true(sl_bytes_eq_str(s->labels.items[0].name, "namespace"));
    assert_true(sl_bytes_eq_str(s->labels.items[0].value, "prod"));
    assert_true(sl_bytes_eq_str(s->labels.items[1].name, "app"));
    assert_int_equal(s->nentries, 3);
    assert_int_equal(s->entries[0].ts_ns, 1700000000123456789);
    assert_true(sl_bytes_eq_str(s->entries[0].line, "hello world"));
    /* views into the body, not copies */
    assert_true(s->entries[0].line.ptr > out.data && s->entries[0].line.ptr < out.data + out.len);
    assert_int_equal(s->entries[0].nmeta, 2);
    assert_true(sl_bytes_eq_str(s->entries[0].meta[0].name, "trace_id"));
    assert_true(sl_bytes_eq_str(s->entries[0].meta[0].value, "abc123"));
    assert_true(sl_bytes_eq_str(s->entries[0].meta[1].value, ""));
    assert_int_equal(s->entries[1].ts_ns, -5);
    assert_int_equal(s->entries[1].line.len, 5);
    assert_memory_equal(s->entries[1].line.ptr, bin_line, 5);
    assert_null(s->entries[1].meta);
    assert_int_equal(s->entries[1].nmeta, 0);
    assert_int_equal(s->entries[2].ts_ns, INT64_MIN);
    assert_int_equal(s->entries[2].line.len, 0);

    s = &b.streams[1];
    assert_int_equal(s->labels.n, 1);
    assert_true(sl_bytes_eq_str(s->labels.items[0].value, "x\"y"));
    assert_int_equal(s->entries[0].ts_ns, INT64_MAX);
    assert_int_equal(s->entries[0].nmeta, 1);
    assert_true(sl_bytes_eq_str(s->entries[0].meta[0].name, "user"));
    assert_int_equal(b.streams[2].nentries, 0);

    /* The encoder was cleared: a second batch does not repeat the first. */
    sl_buf_clear(&out);
    sl_batch_enc_stream(&e, &ls2, 1);
    sl_batch_enc_entry(&e, 7, SL_BYTES_LIT("again"), NULL, 0);
    assert_int_equal(sl_batch_enc_finish(&e, &out), 0);
    assert_int_equal(decode(&a, out.data, out.len, &b, &err), 0);
    assert_int_equal(b.nstreams, 1);
    assert_int_equal(b.nentries, 1);
    assert_int_equal(b.streams[0].entries[0].ts_ns, 7);

    /* No streams at all is a valid (empty) body. */
    sl_buf_clear(&out);
    assert_int_equal(sl_batch_enc_finish(&e, &out), 0);
    assert_int_equal(decode(&a, out.data, out.len, &b, &err), 0);
    assert_int_equal(b.nstreams, 0);
    assert_int_equal(b.nentries, 0);

    sl_batch_enc_release(&e);
    sl_buf_release(&out);
    sl_buf_release(&err);
    sl_arena_release(&a);
}

static void test_encoder_count_mismatch(void **state)
{
    (void)state;
    struct sl_label l[] = {{SL_BYTES_LIT("a"), SL_BYTES_LIT("b")}};
    struct sl_labels ls = {l, 1};
    struct sl_batch_enc e;
    struct sl_buf out = SL_BUF_INIT;
    sl_batch_enc_init(&e);

    /* fewer entries than announced, on the last stream */
    sl_batch_enc_stream(&e, &ls, 2);
    sl_batch_enc_entry(&e, 1, SL_BYTES_LIT("x"), NULL, 0);
    assert_int_equal(sl_batch_enc_finish(&e, &out), SL_EINVAL);
    assert_int_equal(out.len, 0);

    /* fewer on an earlier stream */
    sl_batch_enc_stream(&e, &ls, 2);
    sl_batch_enc_entry(&e, 1, SL_BYTES_LIT("x"), NULL, 0);
    sl_batch_enc_stream(&e, &ls, 0);
    assert_int_equal(sl_batch_enc_finish(&e, &out), SL_EINVAL);
    assert_int_equal(out.len, 0);

    /* more entries than announced */
    sl_batch_enc_stream(&e, &ls, 1);
    sl_batch_enc_entry(&e, 1, SL_BYTES_LIT("x"), NULL, 0);
    sl_batch_enc_entry(&e, 2, SL_BYTES_LIT("y"), NULL, 0);
    assert_int_equal(sl_batch_enc_finish(&e, &out), SL_EINVAL);
    assert_int_equal(out.len, 0);

    /* and the encoder is usable again afterwards */
    sl_batch_enc_stream(&e, &ls, 1);
    sl_batch_enc_entry(&e, 1, SL_BYTES_LIT("x"), NULL, 0);
    assert_int_equal(sl_batch_enc_finish(&e, &out), 0);
    assert_true(out.len > 0);
    sl_batch_enc_release(&e);
    sl_buf_release(&out);
}

/* ------------------------------------------------------ hand-built bodies */

/* {"streams":[{"labels":{"a":<bin "b">},"entries":[[<ts>, <bin "xy">]]}]}
 * written byte by byte, with every timestamp encoding. */
static void test_raw_bytes_and_int_encodings(void **state)
{
    (void)state;
    static const struct {
        const char *enc;
        size_t n;
        int64_t want;
    } ts[] = {
        {"\x05", 1, 5},
        {"\xcc\xff", 2, 255},
        {"\xcd\x01\x00", 3, 256},
        {"\xce\xff\xff\xff\xff", 5, 4294967295},
        {"\xcf\x17\x97\x9c\xfe\x36\x2a\x00\x00", 9, 1700000000000000000},
        {"\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, INT64_MAX},
        {"\xff", 1, -1},
        {"\xe0", 1, -32},
        {"\xd0\x80", 2, -128},
        {"\xd0\x05", 2, 5},
        {"\xd1\x80\x00", 3, -32768},
        {"\xd2\xff\xff\xff\xfe", 5, -2},
        {"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, INT64_MIN},
        {"\xd3\x00\x00\x00\x00\x00\x00\x00\x2a", 9, 42},
    };
    static const char head[] = "\x81\xa7streams\x91\x82\xa6labels\x81\xa1"
                               "a\xc4\x01"
                               "b"
                               "\xa7"
                               "entries\x91\x92";
    static const char tail[] = "\xc4\x02xy";
    struct sl_arena a;
    struct sl_buf err = SL_BUF_INIT, body = SL_BUF_INIT;
    struct sl_batch b;
    sl_arena_init(&a, 0);
    for (size_t k = 0; k < sizeof(ts) / sizeof(ts[0]); k++) {
        sl_buf_clear(&body);
        sl_buf_append(&body, head, sizeof(head) - 1);
        sl_buf_append(&body, ts[k].enc, ts[k].n);
        sl_buf_append(&body, tail, sizeof(tail) - 1);
        if (decode(&a, body.data, body.len, &b, &err) != 0)
            fail_msg("case %zu: %s", k, err.data);
        assert_int_equal(b.streams[0].entries[0].ts_ns, ts[k].want);
        assert_true(sl_bytes_eq_str(b.streams[0].labels.items[0].value, "b"));
        assert_true(sl_bytes_eq_str(b.streams[0].entries[0].line, "xy"));
    }
    sl_buf_release(&body);
    sl_buf_release(&err);
    sl_arena_release(&a);
}

/* Unknown keys (of any type, holding any value), nil metadata, and extra
 * entry elements are skipped. */
static void test_tolerates_extras(void **state)
{
    (void)state;
    struct mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_str(&m, "version");
    msgpack_pack_uint8(&m.pk, 2);
    msgpack_pack_array(&m.pk, 2); /* a container as a key */
    msgpack_pack_map(&m.pk, 1);
    msgpack_pack_nil(&m.pk);
    msgpack_pack_nil(&m.pk);
    msgpack_pack_int8(&m.pk, 1);
    msgpack_pack_ext_with_body(&m.pk, "abcd", 4, 7);
    mp_str(&m, "streams");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_map(&m.pk, 3);
    mp_str(&m, "entries");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_array(&m.pk, 3);
    msgpack_pack_int64(&m.pk, 10);
    mp_str(&m, "l1");
    msgpack_pack_nil(&m.pk);
    msgpack_pack_array(&m.pk, 5);
    msgpack_pack_int64(&m.pk, 11);
    msgpack_pack_bin_with_body(&m.pk, "l2", 2);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "k");
    msgpack_pack_bin_with_body(&m.pk, "v", 1);
    msgpack_pack_double(&m.pk, 1.5);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "deep");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_array(&m.pk, 0);
    mp_str(&m, "shard");
    msgpack_pack_true(&m.pk);
    mp_str(&m, "labels");
    msgpack_pack_map(&m.pk, 0);
    mp_str(&m, "zzz");
    mp_str(&m, "trailing key");

    struct sl_arena a;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_batch b;
    sl_arena_init(&a, 0);
    if (decode(&a, m.sb.data, m.sb.size, &b, &err) != 0)
        fail_msg("%s", err.data);
    assert_int_equal(b.nstreams, 1);
    assert_int_equal(b.streams[0].labels.n, 0);
    assert_int_equal(b.nentries, 2);
    assert_int_equal(b.streams[0].entries[0].nmeta, 0);
    assert_true(sl_bytes_eq_str(b.streams[0].entries[0].line, "l1"));
    assert_int_equal(b.streams[0].entries[1].ts_ns, 11);
    assert_int_equal(b.streams[0].entries[1].nmeta, 1);
    assert_true(sl_bytes_eq_str(b.streams[0].entries[1].meta[0].value, "v"));
    sl_buf_release(&err);
    sl_arena_release(&a);
    mp_done(&m);
}

/* ----------------------------------------------------------------- errors */

#define RAW(s) s, sizeof(s) - 1

static void test_errors_top_level(void **state)
{
    (void)state;
    expect_reason("", 0, "empty body");
    expect_reason(RAW("\x90"), "body must be a map, got array");
    expect_reason(RAW("\xc1"), "invalid msgpack byte 0xc1 at offset 0");
    expect_reason(RAW("\x80"), "missing \"streams\"");
    expect_reason(RAW("\x81\xa7streams\x01"), "streams must be an array, got uint");
    expect_reason(RAW("\x81\xa7streams\xc0"), "streams must be an array, got nil");
    expect_reason(RAW("\x82\xa7streams\x90\xa7streams\x90"), "duplicate key \"streams\"");
    expect_reason(RAW("\x81\xa7streams\x90\xc0"), "1 trailing bytes after the body at offset 10");
    expect_reason(RAW("\x81\xa7streams\x90\x81\xa7streams\x90"),
                  "10 trailing bytes after the body at offset 10");
    expect_reason(RAW("\x81\xa7streams"), "streams: unexpected end of input");
    expect_reason(RAW("\x82\xa7streams\x90"), "unexpected end of input");
    expect_reason(RAW("\x81\xa7streams\x91"), "streams: unexpected end of input");
    expect_reason(RAW("\x81\xa1x\xc1"), "invalid msgpack byte 0xc1 at offset 3");
    /* skipping an unknown value stops at its truncation */
    expect_reason(RAW("\x81\xa1x\x92\x01"), "unexpected end of input");
    expect_reason(RAW("\x81\xa1x\xdb\xff\xff\xff\xff"
                      "abc"),
                  "unexpected end of input");
}

static void test_errors_stream(void **state)
{
    (void)state;
    expect_reason(RAW("\x81\xa7streams\x91\x01"), "streams[0]: stream must be a map, got uint");
    expect_reason(RAW("\x81\xa7streams\x91\x80"), "streams[0]: missing \"labels\"");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa6labels\x80"), "streams[0]: missing \"entries\"");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa7"
                      "entries\x90"),
                  "streams[0]: missing \"labels\"");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa6labels\x90"),
                  "streams[0]: labels must be a map, got array");
    expect_reason(RAW("\x81\xa7streams\x91\x82\xa6labels\x80\xa6labels\x80"),
                  "streams[0]: duplicate key \"labels\"");
    expect_reason(RAW("\x81\xa7streams\x91\x82\xa7"
                      "entries\x90\xa7"
                      "entries\x90"),
                  "streams[0]: duplicate key \"entries\"");
    expect_reason(RAW("\x81\xa7streams\x91\x82\xa6labels\x80\xa7"
                      "entries\x80"),
                  "streams[0]: entries must be an array, got map");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa6labels\x81\x01\xa1v"),
                  "streams[0].labels: name 0 must be a string, got uint");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa6labels\x81\xc4\x01k\xa1v"),
                  "streams[0].labels: name 0 must be a string, got bin");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa6labels\x82\xa1k\xa1v\xa3"
                      "app\x2a"),
                  "streams[0].labels: value of \"app\" must be a string, got uint");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa6labels\x81\xa3"
                      "a\"\x01\xc0"),
                  "streams[0].labels: value of \"a\\x22\\x01\" must be a string, got nil");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa6labels\x81\xa1k"),
                  "streams[0].labels: unexpected end of input");
    /* a later stream is named by its index */
    expect_reason(RAW("\x81\xa7streams\x92\x82\xa6labels\x80\xa7"
                      "entries\x90\x90"),
                  "streams[1]: stream must be a map, got array");
}

static void test_errors_entry(void **state)
{
    (void)state;
    static const char pre[] = "\x81\xa7streams\x91\x82\xa6labels\x80\xa7"
                              "entries\x92\x92\x01\xa0";
    static const struct {
        const char *tail;
        size_t n;
        const char *want;
    } t[] = {
        {RAW("\xa1x"),
         "streams[0].entries[1]: entry must be an array [ts, line, metadata?], got str"},
        {RAW("\x91\x01"), "streams[0].entries[1]: entry must have 2 or 3 elements, got 1"},
        {RAW("\x90"), "streams[0].entries[1]: entry must have 2 or 3 elements, got 0"},
        {RAW("\x92\xcb\x00\x00\x00\x00\x00\x00\x00\x00\xa0"),
         "streams[0].entries[1]: timestamp must be an integer, got float"},
        {RAW("\x92\xa2"
             "12\xa0"),
         "streams[0].entries[1]: timestamp must be an integer, got str"},
        {RAW("\x92\xc0\xa0"), "streams[0].entries[1]: timestamp must be an integer, got nil"},
        {RAW("\x92\xcf\xff\xff\xff\xff\xff\xff\xff\xff\xa0"),
         "streams[0].entries[1]: timestamp 18446744073709551615 out of range"},
        {RAW("\x92\xcf\x80\x00\x00\x00\x00\x00\x00\x00\xa0"),
         "streams[0].entries[1]: timestamp 9223372036854775808 out of range"},
        {RAW("\x92\x01\x01"), "streams[0].entries[1]: line must be a string, got uint"},
        {RAW("\x92\x01\xc3"), "streams[0].entries[1]: line must be a string, got bool"},
        {RAW("\x92\x01\xd4\x01\x00"), "streams[0].entries[1]: line must be a string, got ext"},
        {RAW("\x93\x01\xa0\x90"), "streams[0].entries[1]: metadata must be a map, got array"},
        {RAW("\x93\x01\xa0\xa0"), "streams[0].entries[1]: metadata must be a map, got str"},
        {RAW("\x93\x01\xa0\x81\xa1k\x01"),
         "streams[0].entries[1].metadata: value of \"k\" must be a string, got uint"},
        {RAW("\x93\x01\xa0\x81\x01\xa1v"),
         "streams[0].entries[1].metadata: name 0 must be a string, got uint"},
        {RAW("\x92\x01"), "streams[0].entries[1]: unexpected end of input"},
        {RAW("\x92\x01\xa5"
             "abc"),
         "streams[0].entries[1]: unexpected end of input"},
        {RAW("\x94\x01\xa0\xc0\xc1"),
         "streams[0].entries[1]: invalid msgpack byte 0xc1 at offset 35"},
    };
    struct sl_buf body = SL_BUF_INIT;
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
        sl_buf_clear(&body);
        sl_buf_append(&body, pre, sizeof(pre) - 1);
        sl_buf_append(&body, t[k].tail, t[k].n);
        expect_reason(body.data, body.len, t[k].want);
    }
    sl_buf_release(&body);

    /* The error names the stream and entry index deep in a body built with
     * msgpack-c: streams[2].entries[5]. */
    struct mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "streams");
    msgpack_pack_array(&m.pk, 3);
    for (int s = 0; s < 3; s++) {
        msgpack_pack_map(&m.pk, 2);
        mp_str(&m, "labels");
        msgpack_pack_map(&m.pk, 1);
        mp_str(&m, "s");
        msgpack_pack_bin_with_body(&m.pk, "v", 1);
        mp_str(&m, "entries");
        msgpack_pack_array(&m.pk, 6);
        for (int e = 0; e < 6; e++) {
            msgpack_pack_array(&m.pk, 2);
            if (s == 2 && e == 5)
                msgpack_pack_float(&m.pk, 1.0f);
            else
                msgpack_pack_int64(&m.pk, e);
            mp_str(&m, "line");
        }
    }
    expect_reason(m.sb.data, m.sb.size,
                  "streams[2].entries[5]: timestamp must be an integer, got float");
    mp_done(&m);
}

/* Declared sizes larger than the input are refused before anything big is
 * allocated, yet the reason still names the first bad element. */
static void test_lying_sizes(void **state)
{
    (void)state;
    expect_reason(RAW("\x81\xa7streams\xdd\xff\xff\xff\xff"), "streams: unexpected end of input");
    expect_reason(RAW("\x81\xa7streams\xdd\x00\x01\x00\x00\x01"),
                  "streams: unexpected end of input");
    expect_reason(RAW("\x81\xa7streams\xdd\x00\x00\x00\x03\x01\x02\x03"),
                  "streams[0]: stream must be a map, got uint");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa6labels\xdf\xff\xff\xff\xff"),
                  "streams[0].labels: unexpected end of input");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa7"
                      "entries\xdd\x00\x00\x00\x04\x01\x01\x01\x01"),
                  "streams[0].entries[0]: entry must be an array [ts, line, metadata?], got uint");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa7"
                      "entries\xdd\x00\x00\x00\x02\x92\x01\xa0"),
                  "streams[0].entries[1]: unexpected end of input");
    expect_reason(RAW("\x81\xa7streams\x91\x81\xa7"
                      "entries\x91\x92\x01\xdb\x7f\xff\xff\xff"),
                  "streams[0].entries[0]: unexpected end of input");

    /* A body with many small streams in little space: the arena grows by a
     * bounded multiple of the body. */
    struct sl_arena a;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_batch b;
    static char body[4096];
    memcpy(body, "\x81\xa7streams\xdd\x00\x00\x0f\x00", 13);
    memset(body + 13, 0x80, sizeof(body) - 13);
    sl_arena_init(&a, 0);
    assert_int_equal(decode(&a, body, sizeof(body), &b, &err), SL_EINVAL);
    assert_string_equal(err.data, "streams[0]: missing \"labels\"");
    assert_true(a.used_total <= 4 * sizeof(body));
    sl_buf_release(&err);
    sl_arena_release(&a);
}

/* Every strict prefix of a valid body is rejected with a reason. */
static void test_every_truncation(void **state)
{
    (void)state;
    struct sl_label l[] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
    struct sl_labels ls = {l, 1};
    struct sl_batch_enc e;
    struct sl_buf out = SL_BUF_INIT, err = SL_BUF_INIT;
    struct sl_arena a;
    struct sl_batch b;
    sl_batch_enc_init(&e);
    sl_batch_enc_stream(&e, &ls, 2);
    sl_batch_enc_entry(&e, 1700000000000000000, SL_BYTES_LIT("first line"), l, 1);
    sl_batch_enc_entry(&e, -1, SL_BYTES_LIT("second"), NULL, 0);
    assert_int_equal(sl_batch_enc_finish(&e, &out), 0);
    sl_arena_init(&a, 0);
    assert_int_equal(decode(&a, out.data, out.len, &b, &err), 0);
    for (size_t n = 0; n < out.len; n++) {
        if (decode(&a, out.data, n, &b, &err) != SL_EINVAL)
            fail_msg("prefix of %zu bytes accepted", n);
        assert_true(err.len > 0);
        assert_int_equal(b.nstreams, 0);
    }
    sl_batch_enc_release(&e);
    sl_buf_release(&out);
    sl_buf_release(&err);
    sl_arena_release(&a);
}

static void test_msgpack_c_agrees(void **state)
{
    (void)state;
    /* Our encoder's output parses with msgpack-c to the same shape. */
    struct sl_label l[] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
    struct sl_labels ls = {l, 1};
    struct sl_batch_enc e;
    struct sl_buf out = SL_BUF_INIT;
    sl_batch_enc_init(&e);
    sl_batch_enc_stream(&e, &ls, 1);
    sl_batch_enc_entry(&e, 300, SL_BYTES_LIT("msg"), l, 1);
    assert_int_equal(sl_batch_enc_finish(&e, &out), 0);
    msgpack_unpacked up;
    size_t off = 0;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, out.data, out.len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, out.len);
    msgpack_object o = up.data;
    assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
    msgpack_object streams = o.via.map.ptr[0].val;
    msgpack_object entry = streams.via.array.ptr[0].via.map.ptr[1].val.via.array.ptr[0];
    assert_int_equal(entry.via.array.size, 3);
    assert_int_equal(entry.via.array.ptr[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(entry.via.array.ptr[0].via.u64, 300);
    assert_int_equal(entry.via.array.ptr[1].type, MSGPACK_OBJECT_STR);
    msgpack_unpacked_destroy(&up);
    sl_batch_enc_release(&e);
    sl_buf_release(&out);

    /* a one-stream body written with msgpack-c decodes with us */
    struct mp m;
    struct sl_arena a;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_batch b;
    mp_init(&m);
    mp_one_stream(&m, 1);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_int64(&m.pk, -1000);
    mp_str(&m, "z");
    sl_arena_init(&a, 0);
    assert_int_equal(decode(&a, m.sb.data, m.sb.size, &b, &err), 0);
    assert_int_equal(b.streams[0].entries[0].ts_ns, -1000);
    assert_true(sl_bytes_eq_str(b.streams[0].labels.items[0].name, "app"));
    sl_buf_release(&err);
    sl_arena_release(&a);
    mp_done(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encoder_count_mismatch),
        cmocka_unit_test(test_raw_bytes_and_int_encodings),
        cmocka_unit_test(test_tolerates_extras),
        cmocka_unit_test(test_errors_top_level),
        cmocka_unit_test(test_errors_stream),
        cmocka_unit_test(test_errors_entry),
        cmocka_unit_test(test_lying_sizes),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_msgpack_c_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
