/* Object store: one interface, two backends (DESIGN.md "Object store").
 *
 *   filesystem  keys are paths under a directory; put is write-temp, fsync,
 *               rename, fsync of the directory, so a reader sees a whole object
 *               or none (store_fs.c).
 *   s3          any S3-compatible endpoint, AWS Signature V4, path-style or
 *               virtual-hosted, credentials from config keys, the environment,
 *               IRSA web identity or EC2 IMDSv2 (store_s3.c).
 *
 * Keys are relative, '/'-separated, without "..": "chunks/<tenant>/<fp>/<name>",
 * "index/<period>/<tenant>/<file>". Objects are immutable once written; put of an
 * existing key replaces it whole.
 *
 * Threading: the calls block; make them from worker threads (flusher, query
 * pool, compactor), never from the loop thread. A store may be used from many
 * threads at once.
 *
 * Errors: 0, or SL_ENOENT (no such key), SL_EPERM (credentials refused: wrong
 * key, expired token), SL_ETIMEDOUT, SL_ECONN, SL_EREMOTE (the service answered
 * with another error), SL_EIO (local I/O). When err is not NULL, a one-line
 * reason is appended for the operator, with the service's error code when there
 * is one (e.g. `s3 PUT chunks/x: 403 SignatureDoesNotMatch: The request
 * signature we calculated does not match ...`). Retries of transient failures
 * (5xx, SlowDown, timeouts) happen inside, up to max_retries, with backoff. */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct sl_metrics;
struct sl_store;

struct sl_store_opts {
    const char *backend; /* "filesystem" or "s3" */
    const char *fs_dir;
    /* s3 */
    const char *s3_bucket;
    const char *s3_region;
    const char *s3_endpoint; /* "" for AWS: https://s3.<region>.amazonaws.com */
    bool s3_path_style;
    const char *s3_access_key_id;
    const char *s3_secret_access_key;
    const char *s3_session_token;
    const char *s3_ca_file;
    bool s3_insecure_skip_verify;
    int64_t s3_timeout_ns;
    int s3_max_retries;
};

/* Opens the store (creates fs_dir; for s3 checks the settings, not the bucket).
 * metrics may be NULL; with it the store counts operations and failures as
 * sluice_aggregator_store_requests_total{backend,op,result} and durations. */
int sl_store_open(const struct sl_store_opts *o, struct sl_metrics *metrics, struct sl_store **out,
                  struct sl_buf *err);
void sl_store_close(struct sl_store *s);
const char *sl_store_backend(const struct sl_store *s);

int sl_store_put(struct sl_store *s, const char *key, const void *data, size_t len,
                 struct sl_buf *err);
/* Appends the object to out. */
int sl_store_get(struct sl_store *s, const char *key, struct sl_buf *out, struct sl_buf *err);
/* Appends bytes [off, off+len) of the object to out (fewer at the end). */
int sl_store_get_range(struct sl_store *s, const char *key, uint64_t off, uint64_t len,
                       struct sl_buf *out, struct sl_buf *err);
/* Calls fn for every key starting with prefix, in lexical order. A non-zero
 * return from fn stops the listing and is returned. */
typedef int (*sl_store_list_fn)(const char *key, uint64_t size, void *ud);
int sl_store_list(struct sl_store *s, const char *prefix, sl_store_list_fn fn, void *ud,
                  struct sl_buf *err);
/* One listed object; valid during the call. mtime_ns: when it was written,
 * nanoseconds since the epoch by the store's clock (the file's mtime, S3's
 * LastModified, to the second); 0 when the backend did not say. */
struct sl_store_object {
    const char *key;
    uint64_t size;
    int64_t mtime_ns;
};
typedef int (*sl_store_list_objects_fn)(const struct sl_store_object *o, void *ud);
/* sl_store_list with the write time of each object. */
int sl_store_list_objects(struct sl_store *s, const char *prefix, sl_store_list_objects_fn fn,
                          void *ud, struct sl_buf *err);
/* Deleting a missing key is not an error. */
int sl_store_delete(struct sl_store *s, const char *key, struct sl_buf *err);

#endif
