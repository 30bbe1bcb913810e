/* Test driver for the object store (aggregator/store/store.h) used by
 * tests/integration/test_s3.py: one store operation per run, through the
 * public interface, against whatever endpoint the environment names.
 *
 *   s3_driver put KEY FILE | get KEY | range KEY OFF LEN | list PREFIX |
 *             delete KEY | putmany PREFIX N SIZE [INTERVAL_MS]
 *
 * Settings (environment): SL_S3_BACKEND (default s3), SL_S3_BUCKET,
 * SL_S3_REGION, SL_S3_ENDPOINT, SL_S3_PATH_STYLE (1), SL_S3_ACCESS_KEY_ID,
 * SL_S3_SECRET_ACCESS_KEY, SL_S3_SESSION_TOKEN, SL_S3_TIMEOUT_MS,
 * SL_S3_MAX_RETRIES, SL_FS_DIR. The credential chain's AWS_* variables apply
 * as in the aggregator. After the operation the metrics are printed to stderr
 * between "--- metrics" lines. Exit status: 0, 2 for SL_ENOENT, 1 otherwise
 * (the store's reason on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/store/store.h"
#include "aggregator/store/store_backends.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/metrics.h"

/* A strong reference, so that the s3 backend is linked from the static
 * library whatever store.c does. */
int (*volatile sl_s3_driver_open_ref)(const struct sl_store_opts *, struct sl_metrics *,
                                      const struct sl_store_vtbl **, void **,
                                      struct sl_buf *) = sl__store_s3_open;

static const char *env(const char *k, const char *def)
{
    const char *v = getenv(k);
    return v && *v ? v : def;
}

static int print_key(const char *key, uint64_t size, void *ud)
{
    (void)ud;
    printf("%s %llu\n", key, (unsigned long long)size);
    return 0;
}

static int read_file(const char *path, struct sl_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        sl_buf_append(out, tmp, n);
    fclose(f);
    return 0;
}

static int run(struct sl_store *s, int argc, char **argv, struct sl_buf *err)
{
    const char *op = argv[1];
    struct sl_buf b = SL_BUF_INIT;
    int rc = SL_EINVAL;
    if (strcmp(op, "put") == 0 && argc == 4) {
        if (read_file(argv[3], &b) != 0) {
            sl_buf_appendf(err, "cannot read %s", argv[3]);
        } else {
            rc = sl_store_put(s, argv[2], b.data ? b.data : "", b.len, err);
        }
    } else if (strcmp(op, "get") == 0 && argc == 3) {
        rc = sl_store_get(s, argv[2], &b, err);
        if (rc == 0)
            fwrite(b.data ? b.data : "", 1, b.len, stdout);
    } else if (strcmp(op, "range") == 0 && argc == 5) {
        rc = sl_store_get_range(s, argv[2], strtoull(argv[3], NULL, 10),
                                strtoull(argv[4], NULL, 10), &b, err);
        if (rc == 0)
            fwrite(b.data ? b.data : "", 1, b.len, stdout);
    } else if (strcmp(op, "list") == 0 && argc == 3) {
        rc = sl_store_list(s, argv[2], print_key, NULL, err);
    } else if (strcmp(op, "delete") == 0 && argc == 3) {
        rc = sl_store_delete(s, argv[2], err);
    } else if (strcmp(op, "putmany") == 0 && (argc == 5 || argc == 6)) {
        int n = atoi(argv[3]);
        long interval_ms = argc == 6 ? atol(argv[5]) : 0;
        size_t size = strtoull(argv[4], NULL, 10);
        char *data = malloc(size + 1);
        for (size_t i = 0; i < size; i++)
            data[i] = (char)('a' + i % 26);
        rc = 0;
        for (int i = 0; rc == 0 && i < n; i++) {
            char key[512];
            if (i && interval_ms > 0) {
                struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            snprintf(key, sizeof(key), "%s%05d", argv[2], i);
            rc = sl_store_put(s, key, data, size, err);
        }
        free(data);
    } else {
        sl_buf_append_str(err, "usage: s3_driver put KEY FILE | get KEY | range KEY OFF LEN | "
                               "list PREFIX | delete KEY | putmany PREFIX N SIZE [INTERVAL_MS]");
    }
    sl_buf_release(&b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: s3_driver OP ARGS...\n");
        return 1;
    }
    struct sl_store_opts o = {
        .backend = env("SL_S3_BACKEND", "s3"),
        .fs_dir = env("SL_FS_DIR", "/tmp/sl-s3-driver"),
        .s3_bucket = env("SL_S3_BUCKET", ""),
        .s3_region = env("SL_S3_REGION", "us-east-1"),
        .s3_endpoint = env("SL_S3_ENDPOINT", ""),
        .s3_path_style = strcmp(env("SL_S3_PATH_STYLE", "0"), "1") == 0,
        .s3_access_key_id = env("SL_S3_ACCESS_KEY_ID", ""),
        .s3_secret_access_key = env("SL_S3_SECRET_ACCESS_KEY", ""),
        .s3_session_token = env("SL_S3_SESSION_TOKEN", ""),
        .s3_timeout_ns = atoll(env("SL_S3_TIMEOUT_MS", "10000")) * 1000000LL,
        .s3_max_retries = atoi(env("SL_S3_MAX_RETRIES", "3")),
    };
    struct sl_metrics *m = sl_metrics_new();
    struct sl_store *s = NULL;
    struct sl_buf err = SL_BUF_INIT, text = SL_BUF_INIT;
    int rc = sl_store_open(&o, m, &s, &err);
    if (rc == 0) {
        rc = run(s, argc, argv, &err);
        sl_store_close(s);
    }
    if (rc)
        fprintf(stderr, "error: %s: %s\n", sl_strerror(rc), err.data ? err.data : "");
    sl_metrics_render(m, &text);
    fprintf(stderr, "--- metrics\n%s--- metrics\n", text.data ? text.data : "");
    sl_buf_release(&text);
    sl_buf_release(&err);
    sl_metrics_free(m);
    fflush(stdout);
    return rc == 0 ? 0 : rc == SL_ENOENT ? 2 : 1;
}
