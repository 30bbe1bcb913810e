/* File tailing with acknowledged offsets and rotation handling. */
#include "agent/tail/tail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/mem.h"

static void setup(struct sl_tail *t, int fd, const struct stat *st, const char *path,
                  const char *name, const struct sl_tail_opts *o, uint64_t start)
{
    t->path = sl_strdup(path);
    t->name = sl_strdup(name ? name : path);
    t->fd = fd;
    t->dev = (uint64_t)st->st_dev;
    t->ino = (uint64_t)st->st_ino;
    t->read_off = start;
    t->acked_off = start;
    t->size_seen = (uint64_t)st->st_size;
    if (sl_fingerprint_fd(fd, (uint64_t)st->st_size, &t->fp) != 0)
        t->fp = (struct sl_fingerprint){0, 0};
    sl_parser_init(&t->parser, o->format, o->max_line, start);
}

static int open_regular(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sl_err_from_errno(errno);
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return SL_EIO;
    }
    return fd;
}

static bool same_file(int fd, const struct stat *st, const struct sl_position *pos)
{
    return pos->dev == (uint64_t)st->st_dev && pos->ino == (uint64_t)st->st_ino &&
           pos->offset <= (uint64_t)st->st_size && sl_fingerprint_match(fd, &pos->fp);
}

int sl_tail_open(struct sl_tail *t, const char *path, const struct sl_tail_opts *o,
                 const struct sl_positions *pos, bool *resumed)
{
    struct stat st;
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    *resumed = false;
    int fd = open_regular(path, &st);
    if (fd < 0)
        return fd;
    const struct sl_position *p =
        pos ? sl_positions_find(pos, (uint64_t)st.st_dev, (uint64_t)st.st_ino) : NULL;
    uint64_t start = 0;
    if (p && same_file(fd, &st, p)) {
        start = p->offset;
        *resumed = true;
    }
    setup(t, fd, &st, path, NULL, o, start);
    return 0;
}

void sl_tail_release(struct sl_tail *t)
{
    if (t->fd >= 0)
        close(t->fd);
    sl_parser_release(&t->parser);
    sl_free(t->path);
    sl_free(t->name);
    t->path = t->name = NULL;
    t->fd = -1;
}

/* --- directory searches --- */

/* Calls match() for every regular file of path's directory but *.gz and the
 * ones taken; stops at the first that returns a descriptor (>= 0), which is
 * returned with its stat and full name. */
typedef int (*match_fn)(const char *full, const struct stat *st, void *ctx);

static int search_dir(const char *path, sl_tail_taken_fn taken, void *ud, match_fn match, void *ctx,
                      struct stat *st_out, struct sl_buf *name_out)
{
    const char *slash = strrchr(path, '/');
    struct sl_buf dir = SL_BUF_INIT;
    if (slash == path)
        sl_buf_append_char(&dir, '/');
    else if (slash)
        sl_buf_append(&dir, path, (size_t)(slash - path));
    else
        sl_buf_append_char(&dir, '.');
    DIR *d = opendir(dir.data);
    int found = SL_ENOENT;
    if (!d)
        goto out;
    struct dirent *de;
    while (found < 0 && (de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] == '.' || (nl > 3 && !strcmp(de->d_name + nl - 3, ".gz")))
            continue;
        sl_buf_clear(name_out);
        sl_buf_appendf(name_out, "%s/%s", dir.data, de->d_name);
        struct stat st;
        if (lstat(name_out->data, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (taken && taken(ud, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
            continue;
        found = match(name_out->data, &st, ctx);
        if (found >= 0 && fstat(found, st_out) != 0) {
            close(found);
            found = SL_EIO;
        }
    }
    closedir(d);
out:
    sl_buf_release(&dir);
    return found;
}

/* The saved position's own file (renamed) or a copy of it. */
struct known_ctx {
    const struct sl_position *pos;
    bool copy; /* second pass: accept a copy */
};

static int match_known(const char *full, const struct stat *st, void *vctx)
{
    struct known_ctx *c = vctx;
    const struct sl_position *p = c->pos;
    bool same_id = p->dev == (uint64_t)st->st_dev && p->ino == (uint64_t)st->st_ino;
    if ((!c->copy && !same_id) || (uint64_t)st->st_size < p->offset)
        return SL_ENOENT;
    /* A copy is recognised by the fingerprint of its first bytes, so an entry
     * without one (the file was empty) cannot be matched. An entry at offset 0
     * can: its lines were read but not yet acknowledged when the agent stopped,
     * and a copytruncate while it was down moved them into the copy. */
    if (c->copy && p->fp.len == 0)
        return SL_ENOENT;
    struct stat fst;
    int fd = open_regular(full, &fst);
    if (fd < 0)
        return SL_ENOENT;
    if (!sl_fingerprint_match(fd, &p->fp)) {
        close(fd);
        return SL_ENOENT;
    }
    return fd;
}

int sl_tail_open_known(struct sl_tail *t, const struct sl_position *pos,
                       const struct sl_tail_opts *o, sl_tail_taken_fn taken, void *ud)
{
    struct stat st;
    struct sl_buf name = SL_BUF_INIT;
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    int fd = open_regular(pos->path, &st);
    if (fd >= 0 && !same_file(fd, &st, pos)) {
        close(fd);
        fd = SL_ENOENT;
    }
    if (fd >= 0) {
        sl_buf_append_str(&name, pos->path);
    } else {
        struct known_ctx c = {pos, false};
        fd = search_dir(pos->path, taken, ud, match_known, &c, &st, &name);
        if (fd < 0) {
            c.copy = true;
            fd = search_dir(pos->path, taken, ud, match_known, &c, &st, &name);
        }
    }
    if (fd >= 0)
        setup(t, fd, &st, name.data, pos->name ? pos->name : pos->path, o, pos->offset);
    sl_buf_release(&name);
    return fd >= 0 ? 0 : SL_ENOENT;
}

static int match_inode(const char *full, const struct stat *st, void *vctx)
{
    const struct sl_tail *t = vctx;
    (void)full;
    return (uint64_t)st->st_dev == t->dev && (uint64_t)st->st_ino == t->ino ? dup(t->fd)
                                                                            : SL_ENOENT;
}

int sl_tail_find_name(struct sl_tail *t)
{
    struct stat st;
    struct sl_buf name = SL_BUF_INIT;
    int fd = search_dir(t->path, NULL, NULL, match_inode, t, &st, &name);
    if (fd >= 0) {
        close(fd);
        sl_free(t->path);
        t->path = sl_buf_detach(&name, NULL);
    }
    sl_buf_release(&name);
    return fd >= 0 ? 0 : SL_ENOENT;
}

static int match_copy(const char *full, const struct stat *st, void *vctx)
{
    const struct sl_tail *t = vctx;
    if ((uint64_t)st->st_size < t->read_off ||
        ((uint64_t)st->st_dev == t->dev && (uint64_t)st->st_ino == t->ino))
        return SL_ENOENT;
    struct stat fst;
    int fd = open_regular(full, &fst);
    if (fd < 0)
        return SL_ENOENT;
    if (!sl_fingerprint_match(fd, &t->fp)) {
        close(fd);
        return SL_ENOENT;
    }
    return fd;
}

int sl_tail_follow_copy(struct sl_tail *t, sl_tail_taken_fn taken, void *ud)
{
    struct stat st;
    struct sl_buf name = SL_BUF_INIT;
    if (t->fp.len == 0 || t->read_off == 0)
        return SL_ENOENT;
    int fd = search_dir(t->path, taken, ud, match_copy, t, &st, &name);
    if (fd >= 0) {
        close(t->fd);
        t->fd = fd;
        t->dev = (uint64_t)st.st_dev;
        t->ino = (uint64_t)st.st_ino;
        t->size_seen = (uint64_t)st.st_size;
        t->check = false;
        sl_free(t->path);
        t->path = sl_buf_detach(&name, NULL);
    }
    sl_buf_release(&name);
    return fd >= 0 ? 0 : SL_ENOENT;
}

void sl_tail_restart(struct sl_tail *t, uint64_t *missed)
{
    *missed = t->size_seen > t->read_off ? t->size_seen - t->read_off : 0;
    sl_parser_reset(&t->parser, 0);
    t->stale += t->unacked;
    t->unacked = 0;
    t->read_off = 0;
    t->acked_off = 0;
    t->size_seen = 0;
    t->epoch++;
    t->check = false;
    struct stat st;
    if (fstat(t->fd, &st) != 0 || sl_fingerprint_fd(t->fd, (uint64_t)st.st_size, &t->fp) != 0)
        t->fp = (struct sl_fingerprint){0, 0};
}

/* --- reading --- */

/* The file shrank below what we read, or its first bytes changed. */
static bool truncated(struct sl_tail *t, const struct stat *st)
{
    if ((uint64_t)st->st_size < t->read_off)
        return true;
    return t->fp.len > 0 && !sl_fingerprint_match(t->fd, &t->fp);
}

static int at_eof(struct sl_tail *t)
{
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return SL_EIO;
    if ((uint64_t)st.st_size > t->size_seen)
        t->size_seen = (uint64_t)st.st_size;
    if ((uint64_t)st.st_size < t->read_off)
        return SL_TAIL_TRUNCATED;
    t->check = true; /* first bytes are checked when it grows again */
    if (st.st_nlink == 0)
        return SL_TAIL_DELETED;
    struct stat now;
    if (stat(t->path, &now) != 0 || (uint64_t)now.st_ino != t->ino ||
        (uint64_t)now.st_dev != t->dev)
        return SL_TAIL_ROTATED;
    return SL_TAIL_EOF;
}

/* Nothing outstanding: everything the parser consumed is settled. */
static void settle(struct sl_tail *t)
{
    uint64_t off = sl_parser_safe_off(&t->parser);
    if (t->unacked == 0 && off > t->acked_off)
        t->acked_off = off;
}

static void grow_fingerprint(struct sl_tail *t)
{
    if (t->fp.len < SL_FINGERPRINT_MAX && t->read_off > t->fp.len) {
        struct sl_fingerprint fp;
        if (sl_fingerprint_fd(t->fd, t->read_off, &fp) == 0)
            t->fp = fp;
    }
}

int sl_tail_read(struct sl_tail *t, char *scratch, size_t cap, const struct sl_parse_cbs *cbs,
                 void *ud, size_t *consumed)
{
    ssize_t n;
    *consumed = 0;
    if (t->check) {
        /* Woken after EOF: the file may have been truncated and rewritten past
         * our offset since (copytruncate); its first bytes tell. */
        struct stat st;
        if (fstat(t->fd, &st) != 0)
            return SL_EIO;
        if (truncated(t, &st))
            return SL_TAIL_TRUNCATED;
        t->check = false;
    }
    do {
        n = pread(t->fd, scratch, cap, (off_t)t->read_off);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return SL_EIO;
    if (n > 0) {
        if (t->read_off + (uint64_t)n > t->size_seen)
            t->size_seen = t->read_off + (uint64_t)n;
        /* A full buffer without a newline is a physical line longer than we
         * buffer: the parser takes it in pieces (force). */
        size_t c = sl_parser_feed(&t->parser, scratch, (size_t)n, (size_t)n == cap, cbs, ud);
        t->read_off += c;
        *consumed = c;
        grow_fingerprint(t);
        settle(t); /* only skipped lines, or all acknowledged: settled */
        if (c > 0)
            return SL_TAIL_DATA;
    }
    return at_eof(t);
}

void sl_tail_ack(struct sl_tail *t, size_t n, uint64_t cookie)
{
    size_t old = n < t->stale ? n : t->stale;
    t->stale -= old;
    n -= old;
    if (n == 0 || (cookie >> 48) != (t->epoch & 0xffff))
        return; /* lines of the contents before a truncation: nothing to move */
    uint64_t last_safe = cookie & ((1ull << 48) - 1);
    t->unacked = n > t->unacked ? 0 : t->unacked - n;
    uint64_t off = t->unacked == 0 ? sl_parser_safe_off(&t->parser) : last_safe;
    if (off > t->acked_off)
        t->acked_off = off;
}
