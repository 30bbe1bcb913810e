/* Tests for common/lokipb.c: bytes of known encodings, round trips with
 * structured metadata and negative timestamps, unknown fields, malformed
 * input, and a body captured from winston-loki (tests/unit/common/data). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/lokipb.h"
#include "common/mem.h"
#include "common/snappy.h"

#define B(s) sl_bytes((s), sizeof(s) - 1)

static int decode(const char *p, size_t n, struct sl_arena *a, struct sl_lokipb_push *out,
                  struct sl_buf *err)
{
    sl_buf_clear(err);
    return sl_lokipb_decode(a, p, n, out, err);
}

/* One stream {a="b"} with one entry at 1.5 s, line "hi": the expected bytes are
 * assembled from the protobuf encoding rules, lengths computed. */
static void test_known_bytes(void **state)
{
    (void)state;
    /* Build the expected encoding from parts so lengths are computed, not typed. */
    struct sl_buf want = SL_BUF_INIT;
    const char ts[] = "\x08\x01\x10\x80\xca\xb5\xee\x01"; /* 8 bytes */
    const char entry_hdr[] = "\x0a\x08";                  /* timestamp, 8 bytes */
    struct sl_buf entry = SL_BUF_INIT;
    sl_buf_append(&entry, entry_hdr, 2);
    sl_buf_append(&entry, ts, 8);
    sl_buf_append(&entry, "\x12\x02hi", 4);
    struct sl_buf stream = SL_BUF_INIT;
    sl_buf_append(&stream, "\x0a\x07{a=\"b\"}", 9);
    sl_buf_append_char(&stream, 0x12);
    sl_buf_append_char(&stream, (char)entry.len);
    sl_buf_append_bytes(&stream, sl_buf_bytes(&entry));
    sl_buf_append_char(&want, 0x0a);
    sl_buf_append_char(&want, (char)stream.len);
    sl_buf_append_bytes(&want, sl_buf_bytes(&stream));

    struct sl_batch_entry e = {.ts_ns = 1500000000, .line = B("hi")};
    struct sl_buf got = SL_BUF_INIT;
    sl_lokipb_encode_stream(&got, B("{a=\"b\"}"), &e, 1);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);

    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_lokipb_push p;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(decode(want.data, want.len, &a, &p, &err), 0);
    assert_int_equal(p.nstreams, 1);
    assert_int_equal(p.nentries, 1);
    assert_int_equal(p.line_bytes, 2);
    assert_true(sl_bytes_eq_str(p.streams[0].labels, "{a=\"b\"}"));
    assert_int_equal(p.streams[0].entries[0].ts_ns, 1500000000);
    assert_true(sl_bytes_eq_str(p.streams[0].entries[0].line, "hi"));
    assert_int_equal(p.streams[0].entries[0].nmeta, 0);
    sl_arena_release(&a);
    sl_buf_release(&err);
    sl_buf_release(&got);
    sl_buf_release(&want);
    sl_buf_release(&entry);
    sl_buf_release(&stream);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct sl_label meta[] = {{B("trace_id"), B("abc123")}, {B("user"), B("")}, {B(""), B("v")}};
    struct sl_batch_entry es[] = {
        {.ts_ns = 0, .line = B("epoch")},
        {.ts_ns = -1, .line = B("one ns before the epoch")},
        {.ts_ns = INT64_MAX, .line = B("")},
        {.ts_ns = INT64_MIN, .line = B("min")},
        {.ts_ns = 1700000000123456789,
         .line = sl_bytes("nul\0inside", 10),
         .meta = meta,
         .nmeta = 3},
    };
    struct sl_buf body = SL_BUF_INIT;
    sl_lokipb_encode_stream(&body, B("{app=\"x\", env=\"prod\"}"), es, 5);
    sl_lokipb_encode_stream(&body, B("{app=\"y\"}"), NULL, 0);
    sl_lokipb_encode_stream(&body, sl_bytes("", 0), es, 1);

    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_lokipb_push p;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(decode(body.data, body.len, &a, &p, &err), 0);
    assert_int_equal(p.nstreams, 3);
    assert_int_equal(p.nentries, 6);
    assert_true(sl_bytes_eq_str(p.streams[0].labels, "{app=\"x\", env=\"prod\"}"));
    assert_true(sl_bytes_eq_str(p.streams[1].labels, "{app=\"y\"}"));
    assert_int_equal(p.streams[1].nentries, 0);
    assert_int_equal(p.streams[2].labels.len, 0);
    for (size_t i = 0; i < 5; i++) {
        const struct sl_batch_entry *g = &p.streams[0].entries[i];
        assert_int_equal(g->ts_ns, es[i].ts_ns);
        assert_true(sl_bytes_eq(g->line, es[i].line));
        assert_int_equal(g->nmeta, es[i].nmeta);
        for (size_t k = 0; k < g->nmeta; k++) {
            assert_true(sl_bytes_eq(g->meta[k].name, meta[k].name));
            assert_true(sl_bytes_eq(g->meta[k].value, meta[k].value));
        }
    }
    /* views point into the body: no copies of lines */
    const char *l = p.streams[0].entries[0].line.ptr;
    assert_true(l >= body.data && l < body.data + body.len);
    sl_arena_release(&a);
    sl_buf_release(&err);
    sl_buf_release(&body);
}

static void test_unknown_fields_and_merge(void **state)
{
    (void)state;
    /* PushRequest.format (2, string), StreamAdapter.hash (3, varint), an
     * unknown fixed64 and fixed32 field, EntryAdapter.parsed (4), labels given
     * twice (last wins), the timestamp split over two messages (merged). */
    static const char entry[] = "\x0a\x02\x08\x07"         /* timestamp {seconds 7} */
                                "\x12\x01x"                /* line x */
                                "\x0a\x02\x10\x09"         /* timestamp {nanos 9}: merges */
                                "\x22\x04\x0a\x00\x12\x00" /* parsed (unknown) */
                                "\x12\x01y";               /* line y: last wins */
    struct sl_buf s = SL_BUF_INIT, body = SL_BUF_INIT;
    sl_buf_append(&s, "\x0a\x03{a}", 5);
    sl_buf_append(&s, "\x18\xff\x01", 3);                         /* hash */
    sl_buf_append(&s, "\x21\x01\x02\x03\x04\x05\x06\x07\x08", 9); /* field 4 fixed64 */
    sl_buf_append(&s, "\x2d\x01\x02\x03\x04", 5);                 /* field 5 fixed32 */
    sl_buf_append_char(&s, 0x12);
    sl_buf_append_char(&s, (char)(sizeof(entry) - 1));
    sl_buf_append(&s, entry, sizeof(entry) - 1);
    sl_buf_append(&s, "\x0a\x07{b=\"c\"}", 9);
    sl_buf_append(&body, "\x12\x04loki", 6); /* format */
    sl_buf_append_char(&body, 0x0a);
    sl_buf_append_char(&body, (char)s.len);
    sl_buf_append_bytes(&body, sl_buf_bytes(&s));

    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_lokipb_push p;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(decode(body.data, body.len, &a, &p, &err), 0);
    assert_int_equal(p.nstreams, 1);
    assert_true(sl_bytes_eq_str(p.streams[0].labels, "{b=\"c\"}"));
    assert_int_equal(p.streams[0].nentries, 1);
    assert_int_equal(p.streams[0].entries[0].ts_ns, 7000000009);
    assert_true(sl_bytes_eq_str(p.streams[0].entries[0].line, "y"));
    sl_arena_release(&a);
    sl_buf_release(&err);
    sl_buf_release(&s);
    sl_buf_release(&body);
}

struct bad_case {
    const char *body;
    size_t n;
    const char *msg;
};

#define BAD(s, m)                                                                                  \
    {                                                                                              \
        (s), sizeof(s) - 1, (m)                                                                    \
    }

static void test_malformed(void **state)
{
    (void)state;
    const struct bad_case cases[] = {
        BAD("\x0a", "length-delimited field runs past its message"),
        BAD("\x0a\x05{}", "length-delimited field runs past its message"),
        BAD("\x08", "truncated or overlong varint"),
        BAD("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "truncated or overlong varint"),
        BAD("\x80", "truncated or overlong field tag"),
        BAD("\x00\x00", "invalid field number"),
        BAD("\x0b", "groups are not supported"),
        BAD("\x0e", "invalid wire type"),
        BAD("\x09\x01\x02", "truncated fixed-size field"),
        BAD("\x08\x01", "field streams has the wrong wire type"),
        BAD("\x0a\x02\x08\x01", "streams[0]: field labels has the wrong wire type"),
        BAD("\x0a\x02\x10\x01", "streams[0]: field entries has the wrong wire type"),
        BAD("\x0a\x04\x12\x02\x10\x01", "streams[0].entries[0]: field line has the wrong"),
        BAD("\x0a\x06\x12\x04\x0a\x02\x10\xff",
            "streams[0].entries[0].timestamp: truncated or overlong varint"),
        BAD("\x0a\x06\x12\x04\x0a\x02\x12\x00",
            "streams[0].entries[0].timestamp: field nanos has the wrong wire type"),
        /* nanos = -1 (ten-byte varint) */
        BAD("\x0a\x0f\x12\x0d\x0a\x0b\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            "streams[0].entries[0].timestamp: nanos -1 out of range"),
        /* nanos = 1e9 */
        BAD("\x0a\x0a\x12\x08\x0a\x06\x10\x80\x94\xeb\xdc\x03",
            "streams[0].entries[0].timestamp: nanos 1000000000 out of range"),
        /* seconds = 2^62: past int64 nanoseconds */
        BAD("\x0a\x0e\x12\x0c\x0a\x0a\x08\x80\x80\x80\x80\x80\x80\x80\x80\x40",
            "streams[0].entries[0].timestamp: seconds 4611686018427387904 out of"),
        BAD("\x0a\x06\x12\x04\x1a\x02\x08\x01",
            "streams[0].entries[0].structuredMetadata[0]: field name has the wrong"),
    };
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_buf err = SL_BUF_INIT;
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        struct sl_lokipb_push p;
        int rc = decode(cases[i].body, cases[i].n, &a, &p, &err);
        if (rc != SL_EINVAL || !err.data || !strstr(err.data, cases[i].msg))
            fail_msg("case %zu: rc=%d err=\"%s\", want \"%s\"", i, rc, err.data ? err.data : "",
                     cases[i].msg);
        assert_int_equal(p.nstreams, 0);
        assert_null(p.streams);
    }
    sl_arena_release(&a);
    sl_buf_release(&err);
}

static void test_empty_body(void **state)
{
    (void)state;
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_lokipb_push p;
    assert_int_equal(sl_lokipb_decode(&a, "", 0, &p, NULL), 0);
    assert_int_equal(p.nstreams, 0);
    assert_int_equal(p.nentries, 0);
    /* errors without an err buffer */
    assert_int_equal(sl_lokipb_decode(&a, "\x0a", 1, &p, NULL), SL_EINVAL);
    sl_arena_release(&a);
}

static void test_encode_batch(void **state)
{
    (void)state;
    struct sl_label ls[] = {{B("app"), B("a\"b")}, {B("env"), B("prod")}};
    struct sl_batch_entry es[] = {{.ts_ns = 5, .line = B("l1")}, {.ts_ns = 6, .line = B("l2")}};
    struct sl_batch_stream st = {.labels = {ls, 2}, .entries = es, .nentries = 2};
    struct sl_batch b = {.streams = &st, .nstreams = 1, .nentries = 2, .line_bytes = 4};
    struct sl_buf body = SL_BUF_INIT;
    sl_lokipb_encode_batch(&b, &body);
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_lokipb_push p;
    assert_int_equal(sl_lokipb_decode(&a, body.data, body.len, &p, NULL), 0);
    assert_int_equal(p.nstreams, 1);
    assert_true(sl_bytes_eq_str(p.streams[0].labels, "{app=\"a\\\"b\", env=\"prod\"}"));
    assert_int_equal(p.streams[0].nentries, 2);
    assert_int_equal(p.streams[0].entries[1].ts_ns, 6);
    sl_arena_release(&a);
    sl_buf_release(&body);
}

/* The body winston-loki 6.1 sent (json: false) for four lines, two streams. */
static void test_winston_loki_capture(void **state)
{
    (void)state;
    char path[512];
    const char *me = __FILE__;
    const char *slash = strrchr(me, '/');
    snprintf(path, sizeof(path), "%.*sdata/winston_loki_push.bin",
             slash ? (int)(slash - me + 1) : 0, me);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    char raw[4096];
    size_t n = fread(raw, 1, sizeof(raw), f);
    fclose(f);
    assert_true(n > 0 && n < sizeof(raw));

    struct sl_buf body = SL_BUF_INIT;
    assert_int_equal(sl_snappy_decompress(&body, raw, n, 1 << 20), 0);
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_lokipb_push p;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(decode(body.data, body.len, &a, &p, &err), 0);
    assert_int_equal(p.nstreams, 2);
    assert_int_equal(p.nentries, 4);
    assert_true(sl_bytes_eq_str(p.streams[0].labels,
                                "{level=\"info\",app=\"winston-test\",run=\"fixture\"}"));
    assert_true(sl_bytes_eq_str(p.streams[1].labels,
                                "{level=\"warn\",app=\"winston-test\",run=\"fixture\"}"));
    assert_true(sl_bytes_eq_str(p.streams[0].entries[1].line,
                                "winston line 2 of fixture {\"level\":\"info\"}"));
    assert_true(sl_bytes_eq_str(p.streams[1].entries[0].line,
                                "winston line 1 of fixture {\"level\":\"warn\"}"));
    /* Date.now() in milliseconds, as seconds + nanos */
    assert_int_equal(p.streams[0].entries[0].ts_ns, 1795496085314000000LL);
    assert_int_equal(p.streams[0].entries[0].ts_ns % 1000000, 0);

    /* Our encoder gives a body that decodes to the same thing. */
    struct sl_buf again = SL_BUF_INIT;
    for (size_t i = 0; i < p.nstreams; i++)
        sl_lokipb_encode_stream(&again, p.streams[i].labels, p.streams[i].entries,
                                p.streams[i].nentries);
    assert_int_equal(again.len, body.len);
    assert_memory_equal(again.data, body.data, body.len);
    sl_arena_release(&a);
    sl_buf_release(&err);
    sl_buf_release(&body);
    sl_buf_release(&again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_unknown_fields_and_merge),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_encode_batch),
        cmocka_unit_test(test_winston_loki_capture),
    };
    return cmocka_run_group_tests_name("lokipb", tests, NULL, NULL);
}
