/* File tailing with acknowledged offsets. */
#include "agent/tail/tail.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/mem.h"

int sl_tail_open(struct sl_tail *t, const char *path, size_t max_line,
                 const struct sl_position *pos, bool *resumed)
{
    struct stat st;
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    *resumed = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return sl_err_from_errno(errno);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return SL_EIO;
    }
    uint64_t start = 0;
    if (pos && pos->dev == (uint64_t)st.st_dev && pos->ino == (uint64_t)st.st_ino &&
        pos->offset <= (uint64_t)st.st_size && sl_fingerprint_match(fd, &pos->fp)) {
        start = pos->offset;
        *resumed = true;
    }
    t->path = sl_strdup(path);
    t->fd = fd;
    t->dev = (uint64_t)st.st_dev;
    t->ino = (uint64_t)st.st_ino;
    t->read_off = start;
    t->acked_off = start;
    sl_cri_init(&t->cri, max_line, start);
    return 0;
}

void sl_tail_release(struct sl_tail *t)
{
    if (t->fd >= 0)
        close(t->fd);
    sl_cri_release(&t->cri);
    sl_free(t->path);
    t->path = NULL;
    t->fd = -1;
}

static int at_eof(struct sl_tail *t)
{
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return SL_EIO;
    if ((uint64_t)st.st_size < t->read_off) {
        sl_cri_reset(&t->cri, 0);
        t->read_off = 0;
        t->acked_off = 0;
        t->unacked = 0;
        t->epoch++;
        return SL_TAIL_TRUNCATED;
    }
    if (st.st_nlink == 0)
        return SL_TAIL_DELETED;
    struct stat now;
    if (stat(t->path, &now) != 0 || (uint64_t)now.st_ino != t->ino ||
        (uint64_t)now.st_dev != t->dev)
        return SL_TAIL_ROTATED;
    return SL_TAIL_EOF;
}

int sl_tail_read(struct sl_tail *t, char *scratch, size_t cap, const struct sl_parse_cbs *cbs,
                 void *ud, size_t *consumed)
{
    ssize_t n;
    *consumed = 0;
    do {
        n = pread(t->fd, scratch, cap, (off_t)t->read_off);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return SL_EIO;
    if (n > 0) {
        /* A full buffer without a newline is a physical line longer than we
         * buffer: the parser takes it in pieces (force). */
        size_t c = sl_cri_feed(&t->cri, scratch, (size_t)n, (size_t)n == cap, cbs, ud);
        t->read_off += c;
        *consumed = c;
        if (t->unacked == 0)
            sl_tail_ack(t, 0, sl_tail_cookie(t, 0)); /* only skipped lines: settled */
        if (c > 0)
            return SL_TAIL_DATA;
    }
    return at_eof(t);
}

void sl_tail_ack(struct sl_tail *t, size_t n, uint64_t cookie)
{
    if ((cookie >> 48) != (t->epoch & 0xffff))
        return; /* read before a truncation: already forgotten */
    uint64_t last_safe = cookie & ((1ull << 48) - 1);
    t->unacked = n > t->unacked ? 0 : t->unacked - n;
    /* Nothing outstanding: everything the parser consumed is settled. */
    uint64_t off = t->unacked == 0 ? sl_cri_safe_off(&t->cri) : last_safe;
    if (off > t->acked_off)
        t->acked_off = off;
}

int sl_tail_fingerprint(struct sl_tail *t, struct sl_fingerprint *fp)
{
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return SL_EIO;
    return sl_fingerprint_fd(t->fd, (uint64_t)st.st_size, fp);
}
