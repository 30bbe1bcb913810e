/* AWS Signature Version 4 (HMAC-SHA256, OpenSSL), as S3 and STS verify it.
 *
 * Written here rather than taken from libcurl (CURLOPT_AWS_SIGV4) because curl's
 * signer does not sort the query string, and ListObjectsV2 with a continuation
 * token needs it sorted.
 *
 *   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n PAYLOAD-HASH
 *   string to sign    = AWS4-HMAC-SHA256 \n DATE \n SCOPE \n hex(sha256(creq))
 *   signing key       = HMAC chain "AWS4"+secret -> date -> region -> service -> aws4_request
 *
 * URI: S3 signs the path exactly as sent (already URI-encoded once by the caller
 * with sl_sigv4_uri_encode(keep_slash)); other services (normalize_path) remove
 * "." and ".." segments, collapse repeated '/', and encode the path once more.
 * QUERY: every parameter percent-decoded, re-encoded per RFC 3986 (unreserved
 * A-Z a-z 0-9 - _ . ~ kept, everything else %XX upper case), sorted by key then
 * value, "k=v" joined by '&' ('=' present even for an empty value).
 * HEADERS: names lower-cased, values trimmed with inner runs of spaces collapsed
 * to one, repeated names joined with ',' in order, sorted by name; every header
 * passed in is signed.
 *
 * All functions are pure and thread-safe; inputs are borrowed C strings. */
#ifndef SL_SIGV4_H
#define SL_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SL_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

struct sl_sigv4_header {
    const char *name;
    const char *value;
};

struct sl_sigv4_request {
    const char *method; /* "GET", "PUT", ... */
    const char *path;   /* as on the wire, without the query; "" means "/" */
    const char *query;  /* as on the wire, without '?'; NULL or "" for none */
    /* Headers to sign; must include host and x-amz-date (and
     * x-amz-content-sha256 / x-amz-security-token where used). */
    const struct sl_sigv4_header *headers;
    size_t nheaders;
    const char *payload_hash; /* lower-case hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
    bool normalize_path;      /* false for S3, true for every other service */
};

struct sl_sigv4_scope {
    const char *access_key_id;
    const char *secret_access_key;
    const char *region;
    const char *service;  /* "s3", "sts" */
    const char *amz_date; /* "20150830T123600Z", the x-amz-date header's value */
};

/* Lower-case hex SHA-256 of p[0..n) into out (65 bytes, NUL-terminated). */
void sl_sigv4_sha256_hex(const void *p, size_t n, char out[65]);

/* Appends s[0..n) URI-encoded per RFC 3986; '/' kept when keep_slash. */
void sl_sigv4_uri_encode(struct sl_buf *out, const char *s, size_t n, bool keep_slash);

/* Formats unix seconds as an x-amz-date value "YYYYMMDDTHHMMSSZ". */
void sl_sigv4_amz_date(int64_t unix_s, char out[17]);

/* Appends the canonical request. */
void sl_sigv4_canonical_request(const struct sl_sigv4_request *r, struct sl_buf *out);

/* Appends the signed-headers list ("host;x-amz-date"). */
void sl_sigv4_signed_headers(const struct sl_sigv4_request *r, struct sl_buf *out);

/* Appends the string to sign for a canonical request. */
void sl_sigv4_string_to_sign(const struct sl_sigv4_scope *sc, const char *creq, size_t creq_len,
                             struct sl_buf *out);

/* Hex signature of a string to sign (65 bytes, NUL-terminated). */
void sl_sigv4_signature(const struct sl_sigv4_scope *sc, const char *sts, size_t sts_len,
                        char out[65]);

/* Appends the whole Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AK/date/region/service/aws4_request,
 *  SignedHeaders=a;b, Signature=hex" (with ", " separators as AWS prints it). */
void sl_sigv4_authorization(const struct sl_sigv4_request *r, const struct sl_sigv4_scope *sc,
                            struct sl_buf *out);

#endif
