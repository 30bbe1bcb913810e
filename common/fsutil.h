/* Small filesystem helpers shared by the binaries: mkdir -p, complete writes,
 * directory fsyncs and the write-temporary / fsync / rename idiom.
 *
 * Errors: every function returns 0 or a negative SL_E* code converted with
 * sl_err_from_errno(); on failure errno is left as set by the call that failed,
 * so callers can still log strerror(errno) with their own context.
 * Threading: no shared state, thread-safe. All of them block on the disk, so
 * keep them off event-loop callbacks on hot paths. Paths are C strings and are
 * never retained. */
#ifndef SL_FSUTIL_H
#define SL_FSUTIL_H

#include <stddef.h>

#include "common/buf.h"

/* mkdir -p path (mode 0755 for what it creates). An existing directory is
 * fine; an existing non-directory in the way fails with errno ENOTDIR. */
int sl_mkdir_p(const char *path);

/* mkdir -p of the directory holding file ("a/b/c" -> "a/b"); 0 if file has no
 * directory part. */
int sl_mkdir_parent(const char *file);

/* Writes all n bytes of p to fd, retrying on EINTR and short writes. */
int sl_write_all(int fd, const void *p, size_t n);

/* fsync of a directory, making renames and creations in it durable. */
int sl_fsync_dir(const char *dir);

/* fsync of the directory holding file ("." when file has no slash). */
int sl_fsync_parent(const char *file);

/* Replaces path with data[0..len) so that readers see the old or the new
 * content, never a mix: writes "<path>.tmp", fsyncs it, renames it over path
 * and fsyncs the directory (best effort: the rename has happened by then, so a
 * failing directory fsync is not reported). On failure the temporary file is
 * removed and, if err is non-NULL, "<step> <path>.tmp: <strerror>" is appended
 * to it. Two writers of one path must be serialised by the caller. */
int sl_write_file_atomic(const char *path, const void *data, size_t len, struct sl_buf *err);

#endif
