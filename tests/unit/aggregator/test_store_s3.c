/* S3 backend without a server: addressing (path-style, virtual-hosted, AWS
 * default, IP endpoints), request signing headers, failure classification and
 * the operator's messages; the credential chain's order. Round trips against
 * s3rver are in tests/integration/test_s3.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aggregator/store/s3_creds.c"
#include "aggregator/store/store_s3.c"

static struct s3 *open_s3(const char *endpoint, const char *bucket, bool path_style)
{
    struct sl_store_opts o = {.backend = "s3",
                              .s3_bucket = bucket,
                              .s3_region = "eu-west-1",
                              .s3_endpoint = endpoint,
                              .s3_path_style = path_style,
                              .s3_access_key_id = "AKIAIOSFODNN7EXAMPLE",
                              .s3_secret_access_key = "secret",
                              .s3_session_token = "tok"};
    const struct sl_store_vtbl *vt = NULL;
    void *impl = NULL;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl__store_s3_open(&o, NULL, &vt, &impl, &err), 0);
    assert_ptr_equal(vt, &s3_vtbl);
    sl_buf_release(&err);
    return impl;
}

static void test_addressing(void **state)
{
    (void)state;
    struct s3 *s = open_s3("", "logs", false);
    assert_string_equal(s->base_url, "https://logs.s3.eu-west-1.amazonaws.com");
    assert_string_equal(s->host, "logs.s3.eu-west-1.amazonaws.com");
    assert_string_equal(s->path_base, "");
    struct sl_buf p = SL_BUF_INIT;
    build_path(s, "chunks/t/a b+c", &p);
    assert_string_equal(p.data, "/chunks/t/a%20b%2Bc");
    sl_buf_clear(&p);
    build_path(s, NULL, &p);
    assert_string_equal(p.data, "/");
    s3_close(s);

    s = open_s3("http://minio.example:9000", "logs", true);
    assert_string_equal(s->base_url, "http://minio.example:9000");
    assert_string_equal(s->host, "minio.example:9000");
    sl_buf_clear(&p);
    build_path(s, "index/1/t/f", &p);
    assert_string_equal(p.data, "/logs/index/1/t/f");
    sl_buf_clear(&p);
    build_path(s, NULL, &p);
    assert_string_equal(p.data, "/logs");
    s3_close(s);

    /* An IP endpoint, or a bucket with a dot, cannot be virtual-hosted. */
    s = open_s3("127.0.0.1:4568", "logs", false);
    assert_string_equal(s->base_url, "https://127.0.0.1:4568");
    assert_string_equal(s->path_base, "/logs");
    s3_close(s);
    s = open_s3("https://s3.example.com", "my.logs", false);
    assert_string_equal(s->host, "s3.example.com");
    assert_string_equal(s->path_base, "/my.logs");
    s3_close(s);
    s = open_s3("http://s3.localhost:4568/", "logs", false);
    assert_string_equal(s->host, "logs.s3.localhost:4568");
    s3_close(s);
    sl_buf_release(&p);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct sl_store_opts o = {.backend = "s3", .s3_bucket = "", .s3_endpoint = ""};
    const struct sl_store_vtbl *vt;
    void *impl;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl__store_s3_open(&o, NULL, &vt, &impl, &err), SL_EINVAL);
    assert_non_null(strstr(err.data, "storage.s3.bucket"));
    sl_buf_clear(&err);
    o.s3_bucket = "b";
    o.s3_endpoint = "ftp://x";
    assert_int_equal(sl__store_s3_open(&o, NULL, &vt, &impl, &err), SL_EINVAL);
    assert_non_null(strstr(err.data, "storage.s3.endpoint"));
    sl_buf_clear(&err);
    o.s3_endpoint = "";
    o.s3_access_key_id = "AK";
    assert_int_equal(sl__store_s3_open(&o, NULL, &vt, &impl, &err), SL_EINVAL);
    assert_non_null(strstr(err.data, "secret_access_key"));
    sl_buf_release(&err);
}

static void test_signed_headers(void **state)
{
    (void)state;
    struct s3 *s = open_s3("http://127.0.0.1:9", "logs", true);
    struct sl_s3_credentials cr = {"AKIAIOSFODNN7EXAMPLE", "secret", "tok", 0};
    struct req r = {.method = "PUT", .key = "k", .body = "abc", .body_len = 3, .range = NULL};
    struct curl_slist *l = sign(s, &r, "/logs/k", &cr);
    bool auth = false, sha = false, tok = false, host = false;
    for (struct curl_slist *i = l; i; i = i->next) {
        static const char pfx[] =
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/";
        if (strncmp(i->data, pfx, sizeof(pfx) - 1) == 0) {
            auth = true;
            assert_non_null(strstr(i->data, "/eu-west-1/s3/aws4_request, SignedHeaders="
                                            "host;x-amz-content-sha256;x-amz-date;"
                                            "x-amz-security-token, Signature="));
        }
        if (strcmp(i->data,
                   "x-amz-content-sha256: "
                   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0)
            sha = true;
        tok |= strcmp(i->data, "x-amz-security-token: tok") == 0;
        host |= strcmp(i->data, "host: 127.0.0.1:9") == 0;
    }
    assert_true(auth && sha && tok && host);
    curl_slist_free_all(l);
    s3_close(s);
}

static void test_classify(void **state)
{
    (void)state;
    struct req r = {.method = "GET"};
    r.status = 200;
    assert_int_equal(classify(0, &r), V_OK);
    assert_int_equal(classify(SL_ETIMEDOUT, &r), V_RETRY);
    assert_int_equal(classify(SL_ECONN, &r), V_RETRY);
    assert_int_equal(classify(SL_ETOOBIG, &r), V_FINAL);
    struct {
        long status;
        const char *code;
        enum verdict v;
        int err;
    } cases[] = {
        {503, "SlowDown", V_RETRY, SL_EREMOTE},
        {500, "InternalError", V_RETRY, SL_EREMOTE},
        {400, "RequestTimeout", V_RETRY, SL_EREMOTE},
        {429, "HTTP429", V_RETRY, SL_EREMOTE},
        {400, "ExpiredToken", V_REFRESH, SL_EPERM},
        {403, "SignatureDoesNotMatch", V_FINAL, SL_EPERM},
        {403, "InvalidAccessKeyId", V_FINAL, SL_EPERM},
        {403, "AccessDenied", V_FINAL, SL_EPERM},
        {403, "RequestTimeTooSkewed", V_FINAL, SL_EREMOTE},
        {404, "NoSuchBucket", V_FINAL, SL_EREMOTE},
        {404, "NoSuchKey", V_FINAL, SL_ENOENT},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        sl_buf_clear(&r.code);
        sl_buf_append_str(&r.code, cases[i].code);
        r.status = cases[i].status;
        assert_int_equal(classify(0, &r), cases[i].v);
        assert_int_equal(code_to_err(0, &r), cases[i].err);
    }
    /* Range past the end of a get_range: no bytes, not an error. */
    sl_buf_clear(&r.code);
    sl_buf_append_str(&r.code, "InvalidRange");
    r.status = 416;
    assert_int_equal(classify(0, &r), V_FINAL);
    r.range = "bytes=10-19";
    assert_int_equal(classify(0, &r), V_OK);
    req_release(&r);
}

static void test_hints_and_messages(void **state)
{
    (void)state;
    struct s3 *s = open_s3("http://127.0.0.1:9", "logs", true);
    struct sl_metrics *m = sl_metrics_new();
    register_metrics(s, m);
    struct req r = {.method = "PUT", .op = "put", .key = "chunks/x", .status = 403};
    sl_buf_append_str(&r.code, "RequestTimeTooSkewed");
    sl_buf_append_str(&r.message, "The difference between the request time and the current "
                                  "time is too large.");
    struct sl_buf err = SL_BUF_INIT;
    fail_report(s, &r, 0, SL_EREMOTE, 1, &err);
    assert_non_null(strstr(err.data, "s3 PUT chunks/x: 403 RequestTimeTooSkewed: The difference"));
    assert_non_null(strstr(err.data, "NTP"));
    assert_float_equal(sl_metric_value(sl_metric_with(s->m_errors, "s3", "RequestTimeTooSkewed")),
                       1, 0);
    /* A missing key is reported to the caller but not counted as a failure. */
    sl_buf_clear(&err);
    sl_buf_clear(&r.code);
    sl_buf_append_str(&r.code, "NoSuchKey");
    fail_report(s, &r, 0, SL_ENOENT, 1, &err);
    assert_non_null(strstr(err.data, "NoSuchKey"));
    assert_float_equal(sl_metric_value(sl_metric_with(s->m_errors, "s3", "NoSuchKey")), 0, 0);
    sl_buf_release(&err);
    req_release(&r);
    s3_close(s);
    sl_metrics_free(m);
}

static void clear_aws_env(void)
{
    const char *vars[] = {"AWS_ACCESS_KEY_ID",           "AWS_SECRET_ACCESS_KEY",
                          "AWS_SESSION_TOKEN",           "AWS_ROLE_ARN",
                          "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL_STS",
                          "AWS_ROLE_SESSION_NAME",       "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                          "AWS_EC2_METADATA_DISABLED"};
    for (size_t i = 0; i < SL_ARRAY_LEN(vars); i++)
        unsetenv(vars[i]);
}

static void test_credential_chain_order(void **state)
{
    (void)state;
    clear_aws_env();
    struct sl_s3_creds *c;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_s3_creds_opts o = {
        .access_key_id = "CFG", .secret_access_key = "cfgsecret", .region = "eu-west-1"};
    setenv("AWS_ACCESS_KEY_ID", "ENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtok", 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent", 1);
    assert_int_equal(sl_s3_creds_new(&o, &c, &err), 0);
    assert_string_equal(sl_s3_creds_source(c), "config");
    struct sl_s3_credentials cr;
    assert_int_equal(sl_s3_creds_get(c, &cr, &err), 0);
    assert_string_equal(cr.access_key_id, "CFG");
    assert_null(cr.session_token);
    sl_s3_credentials_release(&cr);
    sl_s3_creds_free(c);

    o.access_key_id = o.secret_access_key = "";
    assert_int_equal(sl_s3_creds_new(&o, &c, &err), 0);
    assert_string_equal(sl_s3_creds_source(c), "environment");
    assert_int_equal(sl_s3_creds_get(c, &cr, &err), 0);
    assert_string_equal(cr.secret_access_key, "envsecret");
    assert_string_equal(cr.session_token, "envtok");
    sl_s3_credentials_release(&cr);
    sl_s3_creds_free(c);

    unsetenv("AWS_ACCESS_KEY_ID");
    assert_int_equal(sl_s3_creds_new(&o, &c, &err), SL_EINVAL); /* half a pair */
    assert_non_null(strstr(err.data, "AWS_ACCESS_KEY_ID"));
    unsetenv("AWS_SECRET_ACCESS_KEY");

    assert_int_equal(sl_s3_creds_new(&o, &c, &err), 0);
    assert_string_equal(sl_s3_creds_source(c), "web_identity");
    assert_string_equal(c->sts_endpoint, "https://sts.eu-west-1.amazonaws.com");
    sl_buf_clear(&err);
    assert_int_equal(sl_s3_creds_get(c, &cr, &err), SL_EIO); /* the token file is missing */
    assert_non_null(strstr(err.data, "/nonexistent"));
    sl_s3_creds_free(c);

    unsetenv("AWS_ROLE_ARN");
    assert_int_equal(sl_s3_creds_new(&o, &c, &err), 0);
    assert_string_equal(sl_s3_creds_source(c), "imds");
    assert_string_equal(c->imds_endpoint, "http://169.254.169.254");
    sl_s3_creds_free(c);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    sl_buf_clear(&err);
    assert_int_equal(sl_s3_creds_new(&o, &c, &err), SL_EINVAL);
    assert_non_null(strstr(err.data, "no credentials"));
    clear_aws_env();
    sl_buf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addressing),         cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_signed_headers),     cmocka_unit_test(test_classify),
        cmocka_unit_test(test_hints_and_messages), cmocka_unit_test(test_credential_chain_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
