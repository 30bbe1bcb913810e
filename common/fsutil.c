/* Filesystem helpers. errno is saved around cleanup calls (close, unlink) so
 * callers that log strerror(errno) name the step that actually failed. */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/mem.h"

static int fail_errno(void)
{
    return sl_err_from_errno(errno ? errno : EIO);
}

/* mkdir that accepts an existing directory. Checking with stat after any
 * failure (not only EEXIST) also accepts existing directories on read-only
 * mounts, where mkdir may report EROFS or EACCES first. */
static int mkdir_one(const char *p)
{
    if (mkdir(p, 0755) == 0)
        return 0;
    int e = errno;
    struct stat st;
    if (stat(p, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        e = ENOTDIR;
    }
    errno = e;
    return sl_err_from_errno(e);
}

int sl_mkdir_p(const char *path)
{
    if (!path[0]) {
        errno = ENOENT;
        return sl_err_from_errno(ENOENT);
    }
    char *p = sl_strdup(path);
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/' || s[-1] == '/')
            continue;
        *s = '\0';
        rc = mkdir_one(p);
        *s = '/';
    }
    if (rc == 0)
        rc = mkdir_one(p);
    int e = errno;
    sl_free(p);
    errno = e;
    return rc;
}

/* The directory part of file as a new string: "." without a slash, "/" for a
 * file in the root. */
static char *parent_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    if (!slash)
        return sl_strdup(".");
    if (slash == file)
        return sl_strdup("/");
    return sl_strndup(file, (size_t)(slash - file));
}

int sl_mkdir_parent(const char *file)
{
    if (!strchr(file, '/'))
        return 0;
    char *dir = parent_of(file);
    int rc = sl_mkdir_p(dir);
    int e = errno;
    sl_free(dir);
    errno = e;
    return rc;
}

int sl_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fail_errno();
        }
        if (w == 0) { /* not expected for n > 0; do not spin */
            errno = EIO;
            return SL_EIO;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int sl_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno();
    int rc = fsync(fd) == 0 ? 0 : fail_errno();
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int sl_fsync_parent(const char *file)
{
    char *dir = parent_of(file);
    int rc = sl_fsync_dir(dir);
    int e = errno;
    sl_free(dir);
    errno = e;
    return rc;
}

int sl_write_file_atomic(const char *path, const void *data, size_t len, struct sl_buf *err)
{
    struct sl_buf tmp = SL_BUF_INIT;
    sl_buf_appendf(&tmp, "%s.tmp", path);
    const char *what = "open";
    int rc = 0;
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    what = "write";
    if (sl_write_all(fd, data, len) != 0)
        goto fail;
    what = "fsync";
    if (fsync(fd) != 0)
        goto fail;
    close(fd);
    fd = -1;
    what = "rename";
    if (rename(tmp.data, path) != 0)
        goto fail;
    (void)sl_fsync_parent(path);
    sl_buf_release(&tmp);
    return 0;
fail:;
    int e = errno;
    rc = sl_err_from_errno(e ? e : EIO);
    if (err)
        sl_buf_appendf(err, "%s %s: %s", what, tmp.data, strerror(e));
    if (fd >= 0)
        close(fd);
    (void)unlink(tmp.data);
    sl_buf_release(&tmp);
    errno = e;
    return rc;
}
