/* AWS credentials for the S3 backend, from the first source that is set:
 *
 *   1. config       storage.s3.access_key_id / secret_access_key / session_token
 *   2. environment  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   3. web identity (IRSA) AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE: STS
 *                   AssumeRoleWithWebIdentity (unsigned POST) at
 *                   AWS_ENDPOINT_URL_STS, else https://sts.<region>.amazonaws.com;
 *                   session name AWS_ROLE_SESSION_NAME or "sluice-<unix time>";
 *                   the token file is re-read on every refresh (kubelet rotates it)
 *   4. EC2 IMDSv2   PUT /latest/api/token, then GET
 *                   /latest/meta-data/iam/security-credentials/[<role>] at
 *                   AWS_EC2_METADATA_SERVICE_ENDPOINT (default
 *                   http://169.254.169.254); off with AWS_EC2_METADATA_DISABLED=true
 *
 * The source is chosen once, at sl_s3_creds_new (which does no I/O).
 * Temporary credentials (3, 4) are fetched on first use and again when they
 * are within SL_S3_CREDS_REFRESH_NS of their expiration, or after
 * sl_s3_creds_invalidate (S3 answered ExpiredToken).
 *
 * Threading: sl_s3_creds_get blocks (HTTP) and may be called from many threads;
 * one refresh runs at a time (mutex), the others wait for its result. */
#ifndef SL_S3_CREDS_H
#define SL_S3_CREDS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

#define SL_S3_CREDS_REFRESH_NS (5 * 60 * 1000000000LL)

struct sl_s3_creds;

struct sl_s3_creds_opts {
    const char *access_key_id; /* config keys; "" or NULL when unset */
    const char *secret_access_key;
    const char *session_token;
    const char *region; /* for the regional STS endpoint */
    const char *ca_file;
    bool insecure_skip_verify;
    int64_t timeout_ns; /* per HTTP request to STS / IMDS; 0: 10 s */
};

/* A snapshot, owned by the caller (sl_s3_credentials_release). */
struct sl_s3_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;   /* NULL when none */
    int64_t expiration_ns; /* 0: does not expire */
};

/* Picks the source. Returns 0, or SL_EINVAL (config key without its secret,
 * an incomplete environment pair) with the reason in err. */
int sl_s3_creds_new(const struct sl_s3_creds_opts *o, struct sl_s3_creds **out, struct sl_buf *err);
void sl_s3_creds_free(struct sl_s3_creds *c);

/* "config", "environment", "web_identity" or "imds". */
const char *sl_s3_creds_source(const struct sl_s3_creds *c);

/* Current credentials, fetched or refreshed when needed. Returns 0, or
 * SL_EPERM (STS/IMDS refused), SL_ETIMEDOUT/SL_ECONN, SL_EREMOTE, SL_EIO
 * (token file) with a one-line reason in err. */
int sl_s3_creds_get(struct sl_s3_creds *c, struct sl_s3_credentials *out, struct sl_buf *err);
void sl_s3_credentials_release(struct sl_s3_credentials *cr);

/* Drops cached temporary credentials so that the next get fetches new ones. */
void sl_s3_creds_invalidate(struct sl_s3_creds *c);

#endif
