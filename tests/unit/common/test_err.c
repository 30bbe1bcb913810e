#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "common/err.h"

static void test_strerror_names_every_code(void **state)
{
    (void)state;
    for (int e = SL_OK; e > SL_ERR_MIN_; e--) {
        const char *s = sl_strerror(e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(sl_strerror(-999), "unknown error");
    assert_string_equal(sl_strerror(SL_ENOENT), "not found");
}

static void test_from_errno(void **state)
{
    (void)state;
    assert_int_equal(sl_err_from_errno(0), SL_OK);
    assert_int_equal(sl_err_from_errno(ENOENT), SL_ENOENT);
    assert_int_equal(sl_err_from_errno(EEXIST), SL_EEXIST);
    assert_int_equal(sl_err_from_errno(EACCES), SL_EPERM);
    assert_int_equal(sl_err_from_errno(ETIMEDOUT), SL_ETIMEDOUT);
    assert_int_equal(sl_err_from_errno(ECONNREFUSED), SL_ECONN);
    assert_int_equal(sl_err_from_errno(EAGAIN), SL_EAGAIN);
    assert_int_equal(sl_err_from_errno(ENOMEM), SL_ENOMEM);
    assert_int_equal(sl_err_from_errno(EINVAL), SL_EINVAL);
    assert_int_equal(sl_err_from_errno(EIO), SL_EIO);
    assert_int_equal(sl_err_from_errno(ENOSPC), SL_ETOOBIG);
}

static void test_from_uv(void **state)
{
    (void)state;
    assert_int_equal(sl_err_from_uv(0), SL_OK);
    assert_int_equal(sl_err_from_uv(5), SL_OK);
    assert_int_equal(sl_err_from_uv(UV_ENOENT), SL_ENOENT);
    assert_int_equal(sl_err_from_uv(UV_ECONNRESET), SL_ECONN);
    assert_int_equal(sl_err_from_uv(UV_ETIMEDOUT), SL_ETIMEDOUT);
    assert_int_equal(sl_err_from_uv(UV_ECANCELED), SL_ECANCELED);
    assert_int_equal(sl_err_from_uv(UV_EOF), SL_EIO);
    assert_int_equal(sl_err_from_uv(UV_EAI_NONAME), SL_ECONN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names_every_code),
        cmocka_unit_test(test_from_errno),
        cmocka_unit_test(test_from_uv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
