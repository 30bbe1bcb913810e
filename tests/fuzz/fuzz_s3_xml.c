/* Fuzz target for the S3/STS XML reader (aggregator/store/s3_xml.c).
 *
 * Arbitrary bytes go through every parser (ListObjectsV2, error, STS
 * credentials) and through the walker itself, which must never report a depth
 * outside [1, SL_S3_XML_MAX_DEPTH] or a text that is not NUL-terminated. Whatever
 * a parser accepts must be self-consistent: keys are NUL-terminated strings,
 * a credentials result has a non-empty key id and secret. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/store/s3_xml.h"
#include "common/buf.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static int walk_cb(void *ud, const char *const *names, int depth, const char *text, size_t len)
{
    size_t *count = ud;
    CHECK(depth >= 1 && depth <= SL_S3_XML_MAX_DEPTH);
    for (int i = 0; i < depth; i++)
        CHECK(names[i] && names[i][0] != '\0');
    CHECK(text[len] == '\0');
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t count = 0;
    sl_s3_xml_walk(p, size, walk_cb, &count);

    struct sl_s3_list l = {0};
    if (sl_s3_list_parse(p, size, &l) == 0) {
        for (size_t i = 0; i < l.n; i++)
            CHECK(l.items[i].key != NULL);
        CHECK(!l.next_token || strlen(l.next_token) <= size);
    }
    sl_s3_list_release(&l);

    struct sl_buf code = SL_BUF_INIT, msg = SL_BUF_INIT;
    if (sl_s3_error_parse(p, size, &code, &msg) == 0)
        CHECK(code.len > 0 && code.len <= size);
    else
        CHECK(code.len == 0);
    sl_buf_release(&code);
    sl_buf_release(&msg);

    struct sl_s3_creds_xml c;
    if (sl_s3_creds_parse(p, size, &c) == 0) {
        CHECK(c.access_key_id && *c.access_key_id);
        CHECK(c.secret_access_key && *c.secret_access_key);
        sl_s3_creds_xml_release(&c);
    } else {
        CHECK(!c.access_key_id && !c.secret_access_key && !c.session_token);
    }
    return 0;
}
