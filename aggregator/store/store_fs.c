/* Filesystem backend: a key is a path under the store's directory. A put
 * writes a temporary file next to the object (a unique name ending in
 * TMP_SUFFIX, never listed), fsyncs it, renames it over the key and fsyncs
 * the directory, so readers, restarts and crashes see the old object or the
 * new one, never a part. Concurrent puts of one key are safe (last rename
 * wins) because every put has its own temporary name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/store/store_backends.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/mem.h"

#define TMP_SUFFIX "~sltmp"

struct fs {
    char *dir;
    uint64_t tmp_counter; /* atomic */
};

static char *key_path(const struct fs *f, const char *key)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_appendf(&b, "%s/%s", f->dir, key);
    return sl_buf_detach(&b, NULL);
}

static int io_error(struct sl_buf *err, const char *what, const char *key, int e)
{
    if (err)
        sl_buf_appendf(err, "filesystem %s %s: %s", what, key, strerror(e));
    return e == ENOENT ? SL_ENOENT : SL_EIO;
}

static int fs_put(void *impl, const char *key, const void *data, size_t len, struct sl_buf *err)
{
    struct fs *f = impl;
    char *path = key_path(f, key);
    struct sl_buf tmp = SL_BUF_INIT;
    sl_buf_appendf(&tmp, "%s.%d.%llu" TMP_SUFFIX, path, (int)getpid(),
                   (unsigned long long)__atomic_add_fetch(&f->tmp_counter, 1, __ATOMIC_RELAXED));
    int rc = 0, fd = -1;
    if (sl_mkdir_parent(path) != 0) {
        rc = io_error(err, "mkdir for", key, errno);
        goto out;
    }
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = io_error(err, "create", key, errno);
        goto out;
    }
    if (sl_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        rc = io_error(err, "write", key, errno);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = io_error(err, "close", key, errno);
        goto out;
    }
    fd = -1;
    if (rename(tmp.data, path) != 0) {
        rc = io_error(err, "rename", key, errno);
        goto out;
    }
    if (sl_fsync_parent(path) != 0) {
        /* The object is in place; only its durability across a power cut is
         * in doubt. Say so and report the put as failed so it is retried. */
        rc = io_error(err, "fsync directory of", key, errno);
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp.data);
    sl_buf_release(&tmp);
    sl_free(path);
    if (rc == SL_ENOENT)
        rc = SL_EIO; /* a put never means "no such key" */
    return rc;
}

static int read_range(const char *key, int fd, uint64_t off, uint64_t len, struct sl_buf *out,
                      struct sl_buf *err)
{
    while (len > 0) {
        size_t want = len > (1u << 20) ? (1u << 20) : (size_t)len;
        char *p = sl_buf_reserve(out, want);
        ssize_t n = pread(fd, p, want, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_error(err, "read", key, errno);
        }
        if (n == 0)
            break;
        sl_buf_commit(out, (size_t)n);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static int fs_get_range(void *impl, const char *key, uint64_t off, uint64_t len, struct sl_buf *out,
                        struct sl_buf *err)
{
    struct fs *f = impl;
    char *path = key_path(f, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    sl_free(path);
    if (fd < 0)
        return io_error(err, "open", key, errno);
    int rc = read_range(key, fd, off, len, out, err);
    close(fd);
    return rc;
}

static int fs_get(void *impl, const char *key, struct sl_buf *out, struct sl_buf *err)
{
    return fs_get_range(impl, key, 0, UINT64_MAX, out, err);
}

static int fs_del(void *impl, const char *key, struct sl_buf *err)
{
    struct fs *f = impl;
    char *path = key_path(f, key);
    int rc = 0;
    if (unlink(path) != 0 && errno != ENOENT)
        rc = io_error(err, "delete", key, errno);
    sl_free(path);
    return rc;
}

/* ---- list: a walk in lexical key order ---- */

struct ent {
    char *name; /* directories with a trailing '/', so they sort as keys do */
    bool dir;
    uint64_t size;
    int64_t mtime_ns;
};

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static int read_dir(const char *path, struct ent **out, size_t *n)
{
    DIR *d = opendir(path);
    *out = NULL;
    *n = 0;
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : SL_EIO;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (ends_with(de->d_name, TMP_SUFFIX))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0)
            continue; /* removed meanwhile */
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            *out = sl_reallocarray(*out, cap, sizeof(**out));
        }
        struct ent *e = &(*out)[(*n)++];
        e->dir = S_ISDIR(st.st_mode);
        e->size = (uint64_t)st.st_size;
        e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        size_t len = strlen(de->d_name);
        e->name = sl_malloc(len + 2);
        memcpy(e->name, de->d_name, len);
        e->name[len] = e->dir ? '/' : '\0';
        e->name[len + 1] = '\0';
    }
    closedir(d);
    if (*n)
        qsort(*out, *n, sizeof(**out), ent_cmp);
    return 0;
}

struct walk {
    const struct fs *f;
    const char *prefix;
    size_t plen;
    sl_store_list_objects_fn fn;
    void *ud;
};

/* Walks the directory holding keys that start with base (which ends in '/'
 * or is empty). */
static int walk_dir(struct walk *w, struct sl_buf *base)
{
    struct sl_buf path = SL_BUF_INIT;
    sl_buf_appendf(&path, "%s/%.*s", w->f->dir, (int)base->len, base->data ? base->data : "");
    struct ent *ents;
    size_t n;
    int rc = read_dir(path.data, &ents, &n);
    sl_buf_release(&path);
    size_t blen = base->len;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sl_buf_append_str(base, ents[i].name);
        size_t cmp = base->len < w->plen ? base->len : w->plen;
        if (memcmp(base->data, w->prefix, cmp) == 0) {
            if (ents[i].dir)
                rc = walk_dir(w, base);
            else if (base->len >= w->plen)
                rc = w->fn(&(struct sl_store_object){base->data, ents[i].size, ents[i].mtime_ns},
                           w->ud);
        }
        base->len = blen;
        if (base->data)
            base->data[blen] = '\0';
    }
    for (size_t i = 0; i < n; i++)
        sl_free(ents[i].name);
    sl_free(ents);
    return rc;
}

static int fs_list(void *impl, const char *prefix, sl_store_list_objects_fn fn, void *ud,
                   struct sl_buf *err)
{
    struct walk w = {impl, prefix, strlen(prefix), fn, ud};
    struct sl_buf base = SL_BUF_INIT;
    const char *slash = strrchr(prefix, '/');
    if (slash)
        sl_buf_append(&base, prefix, (size_t)(slash - prefix) + 1);
    int rc = walk_dir(&w, &base);
    sl_buf_release(&base);
    if (rc == SL_EIO && err)
        sl_buf_appendf(err, "filesystem list %s: cannot read a directory", prefix);
    return rc;
}

static void fs_close(void *impl)
{
    struct fs *f = impl;
    sl_free(f->dir);
    sl_free(f);
}

static const struct sl_store_vtbl fs_vtbl = {
    .name = "filesystem",
    .put = fs_put,
    .get = fs_get,
    .get_range = fs_get_range,
    .list = fs_list,
    .del = fs_del,
    .close = fs_close,
};

int sl__store_fs_open(const struct sl_store_opts *o, struct sl_metrics *metrics,
                      const struct sl_store_vtbl **vt, void **impl, struct sl_buf *err)
{
    (void)metrics;
    if (!o->fs_dir || !*o->fs_dir) {
        if (err)
            sl_buf_append_str(err, "storage.filesystem.dir is empty");
        return SL_EINVAL;
    }
    if (sl_mkdir_p(o->fs_dir) != 0) {
        if (err)
            sl_buf_appendf(err, "storage.filesystem.dir %s: %s", o->fs_dir, strerror(errno));
        return SL_EIO;
    }
    struct fs *f = SL_NEW(struct fs);
    size_t n = strlen(o->fs_dir);
    while (n > 1 && o->fs_dir[n - 1] == '/')
        n--;
    f->dir = sl_strndup(o->fs_dir, n);
    *vt = &fs_vtbl;
    *impl = f;
    return 0;
}
