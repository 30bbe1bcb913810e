/* Distributor: each rejection reason, compaction of the kept entries, and the
 * reply message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/distributor/distributor.h"
#include "common/buf.h"

#define SEC 1000000000LL
#define NOW (1700000000LL * SEC)

static const struct sl_distributor_limits lim = {
    .labels = {15, 1024, 2048},
    .max_line_size = 16,
    .reject_old_samples = true,
    .reject_old_samples_max_age_ns = 168 * 3600 * SEC,
    .creation_grace_period_ns = 600 * SEC,
};

static void test_entries(void **state)
{
    (void)state;
    struct sl_label l[2] = {{SL_BYTES_LIT("pod"), SL_BYTES_LIT("p1")},
                            {SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
    struct sl_batch_entry e[5] = {
        {NOW, SL_BYTES_LIT("ok 1"), NULL, 0},
        {NOW, SL_BYTES_LIT("this line is far too long"), NULL, 0},
        {NOW - 169 * 3600 * SEC, SL_BYTES_LIT("old"), NULL, 0},
        {NOW + 601 * SEC, SL_BYTES_LIT("future"), NULL, 0},
        {NOW + 599 * SEC, SL_BYTES_LIT("ok 2"), NULL, 0},
    };
    struct sl_batch_stream s = {{l, 2}, e, 5};
    struct sl_rejects rej;
    sl_rejects_init(&rej);
    assert_int_equal(sl_distributor_validate_stream(&lim, &s, NOW, &rej), 2);
    assert_int_equal(s.nentries, 2);
    assert_true(sl_bytes_eq_str(s.entries[0].line, "ok 1"));
    assert_true(sl_bytes_eq_str(s.entries[1].line, "ok 2"));
    /* Labels were sorted. */
    assert_true(sl_bytes_eq_str(s.labels.items[0].name, "app"));
    assert_int_equal(rej.count[SL_REJECT_LINE_TOO_LONG], 1);
    assert_int_equal(rej.count[SL_REJECT_TOO_OLD], 1);
    assert_int_equal(rej.count[SL_REJECT_TOO_NEW], 1);
    assert_int_equal(rej.count[SL_REJECT_INVALID_LABELS], 0);
    assert_int_equal(sl_rejects_total(&rej), 3);
    struct sl_buf msg = SL_BUF_INIT;
    sl_rejects_format(&rej, &msg);
    assert_non_null(strstr(msg.data, "3 entries rejected: "));
    assert_non_null(strstr(msg.data, "line_too_long: 1 (first: stream {app=\"api\", pod=\"p1\"}"));
    assert_non_null(strstr(msg.data, "greater_than_max_sample_age: 1"));
    assert_non_null(strstr(msg.data, "too_far_in_future: 1"));
    sl_buf_release(&msg);
    sl_rejects_release(&rej);
}

static void test_old_samples_allowed(void **state)
{
    (void)state;
    struct sl_distributor_limits l2 = lim;
    l2.reject_old_samples = false;
    struct sl_label l[1] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
    struct sl_batch_entry e[1] = {{NOW - 1000 * 3600 * SEC, SL_BYTES_LIT("old"), NULL, 0}};
    struct sl_batch_stream s = {{l, 1}, e, 1};
    struct sl_rejects rej;
    sl_rejects_init(&rej);
    assert_int_equal(sl_distributor_validate_stream(&l2, &s, NOW, &rej), 1);
    assert_int_equal(sl_rejects_total(&rej), 0);
    sl_rejects_release(&rej);
}

static size_t reject_labels(struct sl_label *l, size_t n, struct sl_rejects *rej)
{
    struct sl_batch_entry e[3] = {{NOW, SL_BYTES_LIT("a"), NULL, 0},
                                  {NOW, SL_BYTES_LIT("b"), NULL, 0},
                                  {NOW, SL_BYTES_LIT("c"), NULL, 0}};
    struct sl_batch_stream s = {{l, n}, e, 3};
    return sl_distributor_validate_stream(&lim, &s, NOW, rej);
}

static void test_invalid_labels(void **state)
{
    (void)state;
    struct sl_rejects rej;
    sl_rejects_init(&rej);
    struct sl_label bad_name[1] = {{SL_BYTES_LIT("x-y"), SL_BYTES_LIT("v")}};
    assert_int_equal(reject_labels(bad_name, 1, &rej), 0);
    assert_int_equal(rej.count[SL_REJECT_INVALID_LABELS], 3);
    assert_true(rej.first[SL_REJECT_INVALID_LABELS].len > 0);
    /* No labels at all. */
    assert_int_equal(reject_labels(NULL, 0, &rej), 0);
    /* Too many labels. */
    struct sl_label many[16];
    char names[16][16];
    for (int i = 0; i < 16; i++) {
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        many[i] = (struct sl_label){sl_bytes_str(names[i]), SL_BYTES_LIT("v")};
    }
    assert_int_equal(reject_labels(many, 16, &rej), 0);
    assert_int_equal(reject_labels(many, 15, &rej), 3);
    /* Value too long. */
    static char big[2049];
    memset(big, 'v', sizeof(big));
    struct sl_label long_value[1] = {{SL_BYTES_LIT("app"), sl_bytes(big, 2049)}};
    assert_int_equal(reject_labels(long_value, 1, &rej), 0);
    assert_int_equal(rej.count[SL_REJECT_INVALID_LABELS], 12);
    sl_rejects_release(&rej);
}

static void test_ingester_reasons_in_message(void **state)
{
    (void)state;
    struct sl_rejects rej;
    sl_rejects_init(&rej);
    sl_rejects_add(&rej, SL_REJECT_OUT_OF_ORDER, 2, "first %s", "ooo");
    sl_rejects_add(&rej, SL_REJECT_OUT_OF_ORDER, 1, "second");
    sl_rejects_add(&rej, SL_REJECT_STREAM_LIMIT, 0, "never");
    struct sl_buf msg = SL_BUF_INIT;
    sl_rejects_format(&rej, &msg);
    assert_string_equal(msg.data, "3 entries rejected: out_of_order: 3 (first: first ooo)");
    sl_buf_release(&msg);
    assert_string_equal(sl_reject_reason_name(SL_REJECT_STREAM_LIMIT), "stream_limit");
    sl_rejects_release(&rej);
}

static void test_structured_metadata_limits(void **state)
{
    (void)state;
    struct sl_distributor_limits ml = lim;
    ml.max_meta_size = 12;
    ml.max_meta_entries = 2;
    struct sl_label l[1] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
    struct sl_label ok[2] = {{SL_BYTES_LIT("trace"), SL_BYTES_LIT("abc")},
                             {SL_BYTES_LIT("u"), SL_BYTES_LIT("1")}}; /* 10 bytes */
    struct sl_label big[1] = {{SL_BYTES_LIT("trace"), SL_BYTES_LIT("abcdefgh")}};
    struct sl_label many[3] = {{SL_BYTES_LIT("a"), SL_BYTES_LIT("1")},
                               {SL_BYTES_LIT("b"), SL_BYTES_LIT("2")},
                               {SL_BYTES_LIT("c"), SL_BYTES_LIT("3")}};
    struct sl_batch_entry e[4] = {
        {NOW, SL_BYTES_LIT("fits"), ok, 2},
        {NOW, SL_BYTES_LIT("large"), big, 1},
        {NOW, SL_BYTES_LIT("many"), many, 3},
        {NOW, SL_BYTES_LIT("none"), NULL, 0},
    };
    struct sl_batch_stream s = {{l, 1}, e, 4};
    struct sl_rejects rej;
    sl_rejects_init(&rej);
    assert_int_equal(sl_distributor_validate_stream(&ml, &s, NOW, &rej), 2);
    assert_true(sl_bytes_eq_str(s.entries[0].line, "fits"));
    assert_true(sl_bytes_eq_str(s.entries[1].line, "none"));
    assert_int_equal(rej.count[SL_REJECT_META_TOO_LARGE], 1);
    assert_int_equal(rej.count[SL_REJECT_META_TOO_MANY], 1);
    struct sl_buf msg = SL_BUF_INIT;
    sl_rejects_format(&rej, &msg);
    assert_non_null(strstr(msg.data, "structured_metadata_too_large: 1 (first: stream "
                                     "{app=\"api\"}: structured metadata of 13 bytes exceeds "
                                     "the limit of 12"));
    assert_non_null(strstr(msg.data, "structured_metadata_too_many: 1"));
    sl_buf_release(&msg);
    sl_rejects_release(&rej);
    /* 0: no limit */
    struct sl_batch_entry e2[1] = {{NOW, SL_BYTES_LIT("many"), many, 3}};
    struct sl_batch_stream s2 = {{l, 1}, e2, 1};
    sl_rejects_init(&rej);
    assert_int_equal(sl_distributor_validate_stream(&lim, &s2, NOW, &rej), 1);
    sl_rejects_release(&rej);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_old_samples_allowed),
        cmocka_unit_test(test_invalid_labels),
        cmocka_unit_test(test_ingester_reasons_in_message),
        cmocka_unit_test(test_structured_metadata_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
