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
        cmocka_unit_test(test_record_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
