/* Tailing one file: bounded reads at the current offset, fed to the format
 * parser, with the bookkeeping that makes delivery at-least-once:
 *
 *   read_off   next byte to read (everything before it went through the parser)
 *   acked_off  restart position: every entry from bytes before it is
 *              acknowledged (or counted as dropped) by the receiver, and no
 *              unfinished partial line starts before it
 *   unacked    entries handed on but not yet acknowledged
 *
 * I/O is plain pread(2) on the loop thread: pod logs are local files, almost
 * always in the page cache, and each read is bounded by the caller's scratch
 * size (256 KiB in the agent), so one busy file cannot starve the others.
 * An incomplete last line is not consumed: it is read again once its newline
 * has been written. Not thread-safe; the struct is embedded by its owner. */
#ifndef SL_AGENT_TAIL_H
#define SL_AGENT_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/parse/cri.h"
#include "agent/positions/positions.h"

struct sl_tail {
    char *path; /* owned */
    int fd;
    uint64_t dev;
    uint64_t ino;
    uint64_t read_off;
    uint64_t acked_off;
    size_t unacked;
    uint32_t epoch; /* bumped when the file is truncated */
    struct sl_cri cri;
};

enum sl_tail_status {
    SL_TAIL_DATA = 0,  /* bytes were consumed; more may follow */
    SL_TAIL_EOF,       /* nothing new */
    SL_TAIL_TRUNCATED, /* the file shrank (copytruncate): restarted at 0 */
    SL_TAIL_DELETED,   /* at EOF and unlinked */
    SL_TAIL_ROTATED,   /* at EOF and the path now names another file (or none) */
};

/* Opens path. If pos (may be NULL) names the same device + inode and the file
 * still starts with pos's fingerprint, resumes at pos->offset (*resumed =
 * true), else starts at 0. Returns 0 or SL_ENOENT / SL_EIO / SL_EPERM. */
int sl_tail_open(struct sl_tail *t, const char *path, size_t max_line,
                 const struct sl_position *pos, bool *resumed);
void sl_tail_release(struct sl_tail *t);

/* One bounded read of at most cap bytes into scratch, parsed with cbs.
 * *consumed: bytes that went through the parser. Returns a status >= 0 or
 * SL_EIO. Entry callbacks should call sl_tail_hold() for entries they keep. */
int sl_tail_read(struct sl_tail *t, char *scratch, size_t cap, const struct sl_parse_cbs *cbs,
                 void *ud, size_t *consumed);

/* Counts one entry handed to the shipper. */
static inline void sl_tail_hold(struct sl_tail *t)
{
    t->unacked++;
}

/* The cookie to ship with an entry whose safe_off is given: the offset plus
 * the truncation epoch, so that acknowledgements of lines read before a
 * truncation cannot move the position in the new contents. */
static inline uint64_t sl_tail_cookie(const struct sl_tail *t, uint64_t safe_off)
{
    return ((uint64_t)(t->epoch & 0xffff) << 48) | (safe_off & ((1ull << 48) - 1));
}

/* n entries were acknowledged (or dropped for good); cookie is the
 * sl_tail_cookie() of the last of them. Advances acked_off. */
void sl_tail_ack(struct sl_tail *t, size_t n, uint64_t cookie);

/* Current fingerprint and size (for the positions file). Returns 0 or SL_EIO. */
int sl_tail_fingerprint(struct sl_tail *t, struct sl_fingerprint *fp);

#endif
