/* Error names and the single place where errno and libuv codes are mapped. */
#include "common/err.h"

#include <errno.h>
#include <uv.h>

const char *sl_strerror(int err)
{
    switch (err) {
    case SL_OK:
        return "ok";
    case SL_EINVAL:
        return "invalid argument or input";
    case SL_ENOMEM:
        return "out of memory";
    case SL_EIO:
        return "i/o error";
    case SL_ENOENT:
        return "not found";
    case SL_EEXIST:
        return "already exists";
    case SL_ETOOBIG:
        return "exceeds limit";
    case SL_ECORRUPT:
        return "corrupt data";
    case SL_EAGAIN:
        return "try again later";
    case SL_ETIMEDOUT:
        return "timed out";
    case SL_ECONN:
        return "connection failed";
    case SL_EUNSUPP:
        return "unsupported";
    case SL_ECANCELED:
        return "canceled";
    case SL_EPERM:
        return "permission denied";
    case SL_EREMOTE:
        return "remote error";
    default:
        return "unknown error";
    }
}

int sl_err_from_errno(int e)
{
    switch (e) {
    case 0:
        return SL_OK;
    case EINVAL:
    case EBADF:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
        return SL_EINVAL;
    case ENOMEM:
        return SL_ENOMEM;
    case ENOENT:
    case ESRCH:
        return SL_ENOENT;
    case EEXIST:
    case EADDRINUSE:
        return SL_EEXIST;
    case EFBIG:
    case E2BIG:
    case EMSGSIZE:
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
        return SL_ETOOBIG;
    case EAGAIN:
    case EINTR:
    case EBUSY:
    case ENOBUFS:
        return SL_EAGAIN;
    case ETIMEDOUT:
        return SL_ETIMEDOUT;
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
    case ENOTCONN:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EADDRNOTAVAIL:
        return SL_ECONN;
    case ENOSYS:
    case ENOTSUP:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
        return SL_EUNSUPP;
    case ECANCELED:
        return SL_ECANCELED;
    case EPERM:
    case EACCES:
    case EROFS:
        return SL_EPERM;
    default:
        return SL_EIO;
    }
}

int sl_err_from_uv(int uverr)
{
    if (uverr >= 0)
        return SL_OK;
    switch (uverr) {
    case UV_EOF:
        return SL_EIO;
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_FAIL:
    case UV_EAI_AGAIN:
        return SL_ECONN;
    case UV_ECANCELED:
        return SL_ECANCELED;
    default:
        break;
    }
    /* On Unix libuv's codes are negated errno values. */
    if (uverr > -4096)
        return sl_err_from_errno(-uverr);
    return SL_EIO;
}
