/* Tenant rules. The two HTTP functions tenant.c calls are replaced here by
 * fakes that record the answer, so no server is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "aggregator/tenant/tenant.h"
#include "common/err.h"

static int answered_status;

const struct sl_bytes *sl_http_req_header(const struct sl_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name.len == strlen(name) &&
            strncasecmp(req->headers[i].name.ptr, name, req->headers[i].name.len) == 0)
            return &req->headers[i].value;
    return NULL;
}

void sl_http_respond_text(struct sl_http_request *req, int status, const char *fmt, ...)
{
    (void)fmt;
    req->responded = true;
    answered_status = status;
}

static int tenant_of(const char *value, bool auth, struct sl_bytes *out)
{
    struct sl_http_header h = {SL_BYTES_LIT("x-scope-orgid"), sl_bytes_str(value)};
    struct sl_http_request req;
    memset(&req, 0, sizeof(req));
    req.headers = &h;
    req.nheaders = value ? 1 : 0;
    answered_status = 0;
    return sl_tenant_of_request(&req, auth, out);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(sl_tenant_valid(SL_BYTES_LIT("team-a")));
    assert_true(sl_tenant_valid(SL_BYTES_LIT("A_b.9")));
    assert_true(sl_tenant_valid(SL_BYTES_LIT("...")));
    assert_false(sl_tenant_valid(SL_BYTES_LIT("")));
    assert_false(sl_tenant_valid(SL_BYTES_LIT(".")));
    assert_false(sl_tenant_valid(SL_BYTES_LIT("..")));
    assert_false(sl_tenant_valid(SL_BYTES_LIT("a/b")));
    assert_false(sl_tenant_valid(SL_BYTES_LIT("a b")));
    assert_false(sl_tenant_valid(SL_BYTES_LIT("t\xc3\xa9")));
    char longest[151];
    memset(longest, 'x', sizeof(longest));
    assert_true(sl_tenant_valid(sl_bytes(longest, 150)));
    assert_false(sl_tenant_valid(sl_bytes(longest, 151)));
}

static void test_of_request(void **state)
{
    (void)state;
    struct sl_bytes t;
    assert_int_equal(tenant_of("team-a", false, &t), 0);
    assert_true(sl_bytes_eq_str(t, "team-a"));
    assert_int_equal(answered_status, 0);
    assert_int_equal(tenant_of("team-a", true, &t), 0);
    assert_true(sl_bytes_eq_str(t, "team-a"));
    /* No header: anonymous without auth, 401 with it. */
    assert_int_equal(tenant_of(NULL, false, &t), 0);
    assert_true(sl_bytes_eq_str(t, "anonymous"));
    assert_int_equal(tenant_of(NULL, true, &t), SL_EPERM);
    assert_int_equal(answered_status, 401);
    assert_int_equal(tenant_of("", true, &t), SL_EPERM);
    /* An invalid tenant is always 400. */
    assert_int_equal(tenant_of("..", false, &t), SL_EINVAL);
    assert_int_equal(answered_status, 400);
    assert_int_equal(tenant_of("a/b", true, &t), SL_EINVAL);
    assert_int_equal(answered_status, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_of_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
