/* Error codes shared by every module.
 *
 * Fallible functions return 0 or a negative SL_E* code; sl_strerror() names it.
 * errno and libuv codes are converted in exactly one place (sl_err_from_errno,
 * sl_err_from_uv) so callers never compare against raw errno values. */
#ifndef SL_ERR_H
#define SL_ERR_H

enum {
    SL_OK = 0,
    SL_EINVAL = -1,     /* malformed input or argument */
    SL_ENOMEM = -2,     /* allocation failed (only from size checks; sl_malloc aborts) */
    SL_EIO = -3,        /* read/write/fsync failed */
    SL_ENOENT = -4,     /* file, key or object not found */
    SL_EEXIST = -5,     /* already exists */
    SL_ETOOBIG = -6,    /* input exceeds a configured limit */
    SL_ECORRUPT = -7,   /* checksum or framing mismatch in stored data */
    SL_EAGAIN = -8,     /* try again later (rate limit, backpressure) */
    SL_ETIMEDOUT = -9,  /* operation timed out */
    SL_ECONN = -10,     /* connection failed or was reset */
    SL_EUNSUPP = -11,   /* valid but unsupported (version, codec, construct) */
    SL_ECANCELED = -12, /* cancelled by the caller or shutdown */
    SL_EPERM = -13,     /* permission denied, authentication failed */
    SL_EREMOTE = -14,   /* the remote peer answered with an error */
    SL_ERR_MIN_ = -15
};

/* Static string for an SL_E* code; never NULL. */
const char *sl_strerror(int err);

/* errno value (positive) to SL_E* code. */
int sl_err_from_errno(int e);

/* libuv error (negative UV_E*) to SL_E* code. */
int sl_err_from_uv(int uverr);

#endif
