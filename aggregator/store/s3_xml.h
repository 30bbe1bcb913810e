/* The few XML documents the S3 backend reads, with a tiny tolerant parser:
 * ListObjectsV2 results, S3 and STS error bodies, STS credentials.
 *
 * Not a general XML parser: no DTDs, no namespaces (prefixes are dropped from
 * element names), attributes skipped; comments, <?...?>, CDATA and the five
 * predefined entities plus &#N; / &#xH; are handled. Nesting deeper than
 * SL_S3_XML_MAX_DEPTH or a malformed document is SL_EINVAL. Inputs are
 * {ptr,len} bytes (not NUL-terminated); results are owned by the caller.
 * Pure and thread-safe. */
#ifndef SL_S3_XML_H
#define SL_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SL_S3_XML_MAX_DEPTH 16

/* Called at every element's end tag with the names of the open elements
 * (names[0] the root, names[depth-1] the element ending, NUL-terminated
 * copies) and the element's own decoded text (children's text excluded).
 * A non-zero return stops the walk and is returned. */
typedef int (*sl_s3_xml_fn)(void *ud, const char *const *names, int depth, const char *text,
                            size_t text_len);
int sl_s3_xml_walk(const char *p, size_t n, sl_s3_xml_fn fn, void *ud);

struct sl_s3_object {
    char *key;
    uint64_t size;
    int64_t mtime_ns; /* LastModified; 0 when absent or not RFC 3339 */
};

struct sl_s3_list {
    struct sl_s3_object *items;
    size_t n, cap;
    bool truncated;
    char *next_token; /* NextContinuationToken, NULL when absent */
};

/* Parses a ListObjectsV2 result (ListBucketResult); out must be zeroed or
 * released. Returns 0 or SL_EINVAL (also for a Contents without Key). */
int sl_s3_list_parse(const char *p, size_t n, struct sl_s3_list *out);
void sl_s3_list_release(struct sl_s3_list *l);

/* Error/Code and Error/Message of an S3 <Error> or an STS <ErrorResponse>:
 * appended to code and message. Returns 0, or SL_ENOENT when the body holds
 * no error code (not XML, empty, another document). */
int sl_s3_error_parse(const char *p, size_t n, struct sl_buf *code, struct sl_buf *message);

struct sl_s3_creds_xml {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
    int64_t expiration_ns; /* 0 when absent */
};

/* Credentials/{AccessKeyId,SecretAccessKey,SessionToken,Expiration} of an STS
 * AssumeRole* response. Returns 0, or SL_EINVAL when a key or the secret is
 * missing or Expiration is not RFC 3339. Release with sl_s3_creds_xml_release. */
int sl_s3_creds_parse(const char *p, size_t n, struct sl_s3_creds_xml *out);
void sl_s3_creds_xml_release(struct sl_s3_creds_xml *c);

#endif
