/* S3/STS XML reader: the documented response shapes, entities, CDATA,
 * namespaces, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "aggregator/store/s3_xml.h"
#include "common/err.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_list(void **state)
{
    (void)state;
    static const char xml[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>logs</Name><Prefix>chunks/</Prefix><KeyCount>2</KeyCount>"
        "<IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
        "NextContinuationToken>"
        "<Contents><Key>chunks/a/1</Key><LastModified>2023-11-14T22:13:20.000Z</LastModified>"
        "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>chunks/a/odd &amp; &lt;key&gt; &#xE9;&#233;</Key><Size>0</Size>"
        "</Contents></ListBucketResult>";
    struct sl_s3_list l = {0};
    assert_int_equal(sl_s3_list_parse(S(xml), &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].key, "chunks/a/1");
    assert_int_equal(l.items[0].size, 434234);
    assert_string_equal(l.items[1].key, "chunks/a/odd & <key> \xc3\xa9\xc3\xa9");
    assert_int_equal(l.items[1].size, 0);
    /* LastModified is the object's write time; absent: 0 */
    assert_int_equal(l.items[0].mtime_ns, 1700000000LL * 1000000000LL);
    assert_int_equal(l.items[1].mtime_ns, 0);
    assert_true(l.truncated);
    assert_string_equal(l.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    sl_s3_list_release(&l);

    static const char empty[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                                "<Contents/></ListBucketResult>";
    /* A Contents without a Key is malformed. */
    assert_int_equal(sl_s3_list_parse(S(empty), &l), SL_EINVAL);
    sl_s3_list_release(&l);
    static const char none[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                               "</ListBucketResult>";
    assert_int_equal(sl_s3_list_parse(S(none), &l), 0);
    assert_int_equal(l.n, 0);
    assert_false(l.truncated);
    assert_null(l.next_token);
    sl_s3_list_release(&l);
    /* Another document, a bad size, unbalanced tags. */
    assert_int_equal(sl_s3_list_parse(S("<Error><Code>x</Code></Error>"), &l), SL_EINVAL);
    sl_s3_list_release(&l);
    assert_int_equal(
        sl_s3_list_parse(S("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents>"
                           "</ListBucketResult>"),
                         &l),
        SL_EINVAL);
    sl_s3_list_release(&l);
    /* An unreadable date is no error: the object just has no known age. */
    assert_int_equal(
        sl_s3_list_parse(S("<ListBucketResult><Contents><Key>k</Key><LastModified>yesterday"
                           "</LastModified></Contents></ListBucketResult>"),
                         &l),
        0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.items[0].mtime_ns, 0);
    sl_s3_list_release(&l);
    assert_int_equal(sl_s3_list_parse(S("<ListBucketResult><Name>x</Nam></ListBucketResult>"), &l),
                     SL_EINVAL);
    sl_s3_list_release(&l);
}

static void test_errors(void **state)
{
    (void)state;
    struct sl_buf code = SL_BUF_INIT, msg = SL_BUF_INIT;
    static const char s3[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>"
        "<Message>The specified bucket does not exist</Message><BucketName>x</BucketName>"
        "<HostId><![CDATA[a<b>]]></HostId></Error>";
    assert_int_equal(sl_s3_error_parse(S(s3), &code, &msg), 0);
    assert_string_equal(code.data, "NoSuchBucket");
    assert_string_equal(msg.data, "The specified bucket does not exist");
    sl_buf_clear(&code);
    sl_buf_clear(&msg);
    static const char sts[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><!-- c -->"
        "<Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
        "<Message>Couldn&apos;t retrieve verification key</Message></Error>"
        "<RequestId>c1d5e7f3</RequestId></ErrorResponse>";
    assert_int_equal(sl_s3_error_parse(S(sts), &code, &msg), 0);
    assert_string_equal(code.data, "InvalidIdentityToken");
    assert_string_equal(msg.data, "Couldn't retrieve verification key");
    sl_buf_clear(&code);
    assert_int_equal(sl_s3_error_parse(S(""), &code, &msg), SL_ENOENT);
    assert_int_equal(sl_s3_error_parse(S("Service Unavailable"), &code, &msg), SL_ENOENT);
    assert_int_equal(sl_s3_error_parse(S("<Error><Message>m</Message></Error>"), &code, &msg),
                     SL_ENOENT);
    assert_int_equal(code.len, 0);
    sl_buf_release(&code);
    sl_buf_release(&msg);
}

static void test_sts_credentials(void **state)
{
    (void)state;
    static const char xml[] =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials>"
        "<SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>"
        "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
        "<Expiration>2014-10-24T23:00:23Z</Expiration>"
        "<AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId></Credentials>"
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    struct sl_s3_creds_xml c;
    assert_int_equal(sl_s3_creds_parse(S(xml), &c), 0);
    assert_string_equal(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
    assert_string_equal(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    assert_string_equal(c.session_token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
    assert_int_equal(c.expiration_ns, 1414191623LL * 1000000000LL);
    sl_s3_creds_xml_release(&c);
    assert_int_equal(sl_s3_creds_parse(S("<R><Credentials><AccessKeyId>a</AccessKeyId>"
                                         "</Credentials></R>"),
                                       &c),
                     SL_EINVAL);
    assert_null(c.access_key_id);
    assert_int_equal(sl_s3_creds_parse(S("<R><Credentials><AccessKeyId>a</AccessKeyId>"
                                         "<SecretAccessKey>s</SecretAccessKey>"
                                         "<Expiration>tomorrow</Expiration></Credentials></R>"),
                                       &c),
                     SL_EINVAL);
}

static int count_cb(void *ud, const char *const *names, int depth, const char *text, size_t len)
{
    (void)names;
    (void)text;
    (void)len;
    int *max = ud;
    if (depth > *max)
        *max = depth;
    return 0;
}

static void test_walk_limits(void **state)
{
    (void)state;
    char deep[1024] = "";
    for (int i = 0; i < SL_S3_XML_MAX_DEPTH + 1; i++)
        strcat(deep, "<a>");
    int max = 0;
    assert_int_equal(sl_s3_xml_walk(deep, strlen(deep), count_cb, &max), SL_EINVAL);
    /* Namespace prefixes are dropped; self-closing elements count. */
    max = 0;
    assert_int_equal(sl_s3_xml_walk(S("<s:a><s:b/><c x='1'>t</c></s:a>"), count_cb, &max), 0);
    assert_int_equal(max, 2);
    assert_int_equal(sl_s3_xml_walk(S("plain text"), count_cb, &max), SL_EINVAL);
    assert_int_equal(sl_s3_xml_walk(S("<a><!-- unterminated"), count_cb, &max), SL_EINVAL);
    assert_int_equal(sl_s3_xml_walk(S("<a></b>"), count_cb, &max), SL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sts_credentials),
        cmocka_unit_test(test_walk_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
