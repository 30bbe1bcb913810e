/* Push: Loki JSON decoding and the WAL record round trip into the ingester. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/api/push.h"
#include "common/err.h"

static int decode(const char *json, struct sl_arena *a, struct sl_batch *b, struct sl_buf *err)
{
    sl_buf_clear(err);
    return sl_push_json_decode(a, json, strlen(json), b, err);
}

static void test_json_ok(void **state)
{
    (void)state;
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_batch b;
    struct sl_buf err = SL_BUF_INIT;
    const char *body = "{\"streams\":[{\"stream\":{\"app\":\"api\",\"env\":\"prod\"},"
                       "\"values\":[[\"1700000000000000001\",\"hello\"],"
                       "[\"1700000000000000002\",\"nul\\u0000byte\",{\"trace\":\"abc\"}]]},"
                       "{\"stream\":{\"app\":\"db\"},\"values\":[]}]}";
    assert_int_equal(decode(body, &a, &b, &err), 0);
    assert_int_equal(b.nstreams, 2);
    assert_int_equal(b.nentries, 2);
    assert_int_equal(b.line_bytes, 5 + 8);
    assert_int_equal(b.streams[0].labels.n, 2);
    assert_int_equal(b.streams[0].entries[0].ts_ns, 1700000000000000001LL);
    assert_true(sl_bytes_eq_str(b.streams[0].entries[0].line, "hello"));
    assert_int_equal(b.streams[0].entries[1].line.len, 8);
    assert_int_equal(memcmp(b.streams[0].entries[1].line.ptr, "nul\0byte", 8), 0);
    assert_int_equal(b.streams[0].entries[1].nmeta, 1);
    assert_true(sl_bytes_eq_str(b.streams[0].entries[1].meta[0].value, "abc"));
    assert_int_equal(b.streams[1].nentries, 0);
    sl_buf_release(&err);
    sl_arena_release(&a);
}

static void test_json_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"streams\":{}}",
        "{\"streams\":[1]}",
        "{\"streams\":[{\"stream\":{\"a\":1},\"values\":[]}]}",
        "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[1,\"x\"]]}]}",
        "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"12a\",\"x\"]]}]}",
        "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"99999999999999999999\",\"x\"]]}]}",
        "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\"]]}]}",
        "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",2]]}]}",
        "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",[]]]}]}",
    };
    struct sl_buf err = SL_BUF_INIT;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sl_arena a;
        sl_arena_init(&a, 0);
        struct sl_batch b;
        assert_int_equal(decode(bad[i], &a, &b, &err), SL_EINVAL);
        assert_true(err.len > 0);
        sl_arena_release(&a);
    }
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_batch b;
    decode("{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\"],[\"x\",\"y\"]]}]}",
           &a, &b, &err);
    assert_non_null(strstr(err.data, "streams[0].values[1]"));
    sl_arena_release(&a);
    sl_buf_release(&err);
}

/* Loki's clients send keys in any order and Loki ignores unknown ones. */
static void test_json_key_order_unknown_keys_escapes(void **state)
{
    (void)state;
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_batch b;
    struct sl_buf err = SL_BUF_INIT;
    const char *body = "{\"extra\":{\"x\":[1,2.5,true,null,{\"y\":\"z\"}]},"
                       "\"streams\":[{\"values\":[[\"-5\",\"a \\\"q\\\" \\u00e9 \\ud83d\\ude00\"],"
                       "[\"+7\",\"plain\",{}]],\"hash\":123,\"stream\":{\"app\":\"a\\/b\"}}]}";
    assert_int_equal(decode(body, &a, &b, &err), 0);
    assert_int_equal(b.nstreams, 1);
    assert_int_equal(b.nentries, 2);
    assert_true(sl_bytes_eq_str(b.streams[0].labels.items[0].name, "app"));
    assert_true(sl_bytes_eq_str(b.streams[0].labels.items[0].value, "a/b"));
    assert_int_equal(b.streams[0].entries[0].ts_ns, -5);
    assert_true(sl_bytes_eq_str(b.streams[0].entries[0].line, "a \"q\" \xc3\xa9 \xf0\x9f\x98\x80"));
    assert_int_equal(b.streams[0].entries[1].ts_ns, 7);
    assert_int_equal(b.streams[0].entries[1].nmeta, 0);
    assert_int_equal(b.line_bytes, b.streams[0].entries[0].line.len + 5);
    /* A plain line is not copied: it points into the body. */
    const char *plain = strstr(body, "plain");
    assert_ptr_equal(b.streams[0].entries[1].line.ptr, plain);
    sl_buf_release(&err);
    sl_arena_release(&a);
}

/* What jansson refused stays refused, with the same precedence of errors. */
static void test_json_strictness_and_precedence(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"streams\":[],\"streams\":[]}",                  /* duplicate key */
        "{\"x\":{\"a\":1,\"a\":1},\"streams\":[]}",         /* ... anywhere */
        "{\"streams\":[{\"stream\":{\"\\u0000\":\"v\"}}]}", /* NUL in a key */
        "{\"streams\":[{\"stream\":{\"a\":\"\\ud800\"}}]}", /* lone surrogate */
        "{\"streams\":[{\"stream\":{\"a\":\"\\udc00\"}}]}",
        "{\"streams\":[{\"stream\":{\"a\":\"\\ud800\\u0041\"}}]}",
        "{\"streams\":[{\"stream\":{\"a\":\"\xc0\x80\"}}]}",     /* overlong */
        "{\"streams\":[{\"stream\":{\"a\":\"\xed\xa0\x80\"}}]}", /* UTF-8 surrogate */
        "{\"x\":9223372036854775808,\"streams\":[]}",            /* integer overflow */
        "{\"x\":1e400,\"streams\":[]}",                          /* real overflow */
        "{\"streams\":\v[]}",                                    /* not JSON whitespace */
        "{\"streams\":[]} x",
    };
    struct sl_buf err = SL_BUF_INIT;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sl_arena a;
        sl_arena_init(&a, 0);
        struct sl_batch b;
        assert_int_equal(decode(bad[i], &a, &b, &err), SL_EINVAL);
        assert_true(err.len > 0);
        sl_arena_release(&a);
    }
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_batch b;
    /* Accepted at the limits. */
    assert_int_equal(decode("{\"x\":[-9223372036854775808,1e-400],\"streams\":[]}", &a, &b, &err),
                     0);
    /* Deeper than 2048 values is refused, as before. */
    struct sl_buf deep = SL_BUF_INIT;
    sl_buf_append_str(&deep, "{\"streams\":[],\"x\":");
    for (int i = 0; i < 2046; i++)
        sl_buf_append_str(&deep, "[");
    sl_buf_append_str(&deep, "1");
    for (int i = 0; i < 2046; i++)
        sl_buf_append_str(&deep, "]");
    sl_buf_append_str(&deep, "}");
    assert_int_equal(decode(deep.data, &a, &b, &err), 0);
    sl_buf_clear(&deep);
    sl_buf_append_str(&deep, "{\"streams\":[],\"x\":");
    for (int i = 0; i < 2047; i++)
        sl_buf_append_str(&deep, "[");
    sl_buf_append_str(&deep, "1");
    for (int i = 0; i < 2047; i++)
        sl_buf_append_str(&deep, "]");
    sl_buf_append_str(&deep, "}");
    assert_int_equal(decode(deep.data, &a, &b, &err), SL_EINVAL);
    assert_non_null(strstr(err.data, "depth"));
    sl_buf_release(&deep);
    /* The labels of a stream are reported before its entries, wherever the
     * keys are; an earlier stream before a later one. */
    decode("{\"streams\":[{\"values\":[[\"x\",\"y\"]],\"stream\":{\"a\":1}},{\"stream\":3}]}", &a,
           &b, &err);
    assert_string_equal(err.data, "streams[0].stream: expected an object of strings");
    decode("{\"streams\":[{\"values\":[[\"1\",\"y\"],[\"1\",2,3,4],[\"x\"]]}]}", &a, &b, &err);
    assert_string_equal(err.data, "streams[0].stream: expected an object of strings");
    decode("{\"streams\":[{\"stream\":{},\"values\":[[\"1\",\"y\"],[\"x\",2,3,4],[\"x\"]]}]}", &a,
           &b, &err);
    assert_string_equal(err.data, "streams[0].values[1]: expected [\"<ns>\", \"<line>\"]");
    decode("{\"streams\":[{\"stream\":{},\"values\":[[\"1\",\"y\",{\"m\":1}]]}]}", &a, &b, &err);
    assert_string_equal(err.data, "streams[0].values[0]: metadata must be an object of strings");
    decode("{\"streams\":[{\"stream\":{},\"values\":{}}]}", &a, &b, &err);
    assert_string_equal(err.data, "streams[0].values: expected an array");
    decode("{\"streams\":[{\"stream\":{},\"values\":[]}, 7]}", &a, &b, &err);
    assert_string_equal(err.data, "streams[1]: expected an object");
    /* A syntax error anywhere wins over the first semantic one. */
    decode("{\"streams\":[{\"stream\":5}],\"x\":tru}", &a, &b, &err);
    assert_non_null(strstr(err.data, "line 1 column"));
    sl_arena_release(&a);
    sl_buf_release(&err);
}

static int count_entries(const struct sl_stream_info *s, struct sl_stream_reader *r, void *ud)
{
    (void)r;
    *(size_t *)ud += s->entries;
    return 0;
}

static void test_record_round_trip(void **state)
{
    (void)state;
    struct sl_ingester_opts o = {.max_chunk_age_ns = 7200000000000LL};
    struct sl_ingester *ing = sl_ingester_new(&o, NULL);
    struct sl_label l[1] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
    struct sl_labels ls = {l, 1};
    struct sl_batch_enc enc;
    sl_batch_enc_init(&enc);
    sl_batch_enc_stream(&enc, &ls, 2);
    sl_batch_enc_entry(&enc, 10, SL_BYTES_LIT("a"), NULL, 0);
    sl_batch_enc_entry(&enc, 20, SL_BYTES_LIT("b"), NULL, 0);
    struct sl_buf body = SL_BUF_INIT, rec = SL_BUF_INIT;
    assert_int_equal(sl_batch_enc_finish(&enc, &body), 0);
    sl_push_record_encode(SL_BYTES_LIT("team-a"), sl_buf_bytes(&body), &rec);
    struct sl_push_result r = {0};
    assert_int_equal(sl_push_record_apply(ing, sl_buf_bytes(&rec), &r), 0);
    assert_int_equal(r.accepted, 2);
    /* Replaying the same record again is harmless. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(sl_push_record_apply(ing, sl_buf_bytes(&rec), &r), 0);
    assert_int_equal(r.accepted, 0);
    assert_int_equal(r.duplicates, 2);
    size_t n = 0;
    sl_ingester_visit(ing, SL_BYTES_LIT("team-a"), count_entries, &n);
    assert_int_equal(n, 2);
    /* Damaged records are refused. */
    assert_int_equal(sl_push_record_apply(ing, sl_bytes(rec.data, 2), NULL), SL_ECORRUPT);
    rec.data[0] = 9;
    assert_int_equal(sl_push_record_apply(ing, sl_buf_bytes(&rec), NULL), SL_EUNSUPP);
    rec.data[0] = SL_PUSH_RECORD_V1;
    rec.data[1] = 100;
    assert_int_equal(sl_push_record_apply(ing, sl_buf_bytes(&rec), NULL), SL_ECORRUPT);
    sl_buf_release(&body);
    sl_buf_release(&rec);
    sl_batch_enc_release(&enc);
    sl_ingester_free(ing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_ok),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_key_order_unknown_keys_escapes),
        cmocka_unit_test(test_json_strictness_and_precedence),
        cmocka_unit_test(test_record_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
