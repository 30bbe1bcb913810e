/* Tailing one file: bounded reads at the current offset, fed to the format
 * parser, with the bookkeeping that makes delivery at-least-once:
 *
 *   read_off   next byte to read (everything before it went through the parser)
 *   acked_off  restart position: every entry from bytes before it is
 *              acknowledged (or counted as dropped) by the receiver, and no
 *              unfinished partial line starts before it
 *   unacked    entries of the current contents handed on, not yet acknowledged
 *   stale      entries handed on before the last truncation, not yet
 *              acknowledged: acknowledgements come in order, so the first
 *              `stale` acknowledged entries are those and move nothing
 *
 * Identity: device + inode, and the fingerprint of the first bytes (kept up
 * to date as the file grows to SL_FINGERPRINT_MAX), which tells a truncated
 * and rewritten file (copytruncate) or a reused inode from the file we read.
 *
 * Rotation (DESIGN.md "Rotation"): the tail keeps its descriptor, so a file
 * renamed or deleted under it is read to its end; sl_tail_find_name() learns
 * a renamed file's new name, sl_tail_follow_copy() continues a truncated file
 * in the copy logrotate made of it, sl_tail_restart() starts over at 0.
 *
 * I/O is plain pread(2) on the loop thread: pod logs are local files, almost
 * always in the page cache, and each read is bounded by the caller's scratch
 * size. An incomplete last line is not consumed: it is read again once its
 * newline has been written. Not thread-safe; the struct is embedded. */
#ifndef SL_AGENT_TAIL_H
#define SL_AGENT_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/parse/parser.h"
#include "agent/positions/positions.h"

struct sl_tail {
    char *path; /* owned: the file's current name (its rotated name once renamed) */
    char *name; /* owned: the name it was found under (labels, positions "name") */
    int fd;
    uint64_t dev;
    uint64_t ino;
    uint64_t read_off;
    uint64_t acked_off;
    size_t unacked;
    size_t stale;
    uint32_t epoch;           /* bumped when the file is truncated */
    uint64_t size_seen;       /* largest size observed */
    bool check;               /* verify size and fingerprint before the next read */
    struct sl_fingerprint fp; /* of the first min(size, SL_FINGERPRINT_MAX) bytes */
    struct sl_parser parser;
};

enum sl_tail_status {
    SL_TAIL_DATA = 0,  /* bytes were consumed; more may follow */
    SL_TAIL_EOF,       /* nothing new */
    SL_TAIL_TRUNCATED, /* shrank or rewritten: nothing reset yet, see below */
    SL_TAIL_DELETED,   /* at EOF and unlinked */
    SL_TAIL_ROTATED,   /* at EOF and the name now names another file (or none) */
};

struct sl_tail_opts {
    enum sl_log_format format;
    size_t max_line;
};

/* Opens path (name = path). If pos has an entry for its device + inode and
 * the file still starts with its fingerprint, resumes at its offset
 * (*resumed = true), else starts at 0. pos may be NULL. Returns 0 or
 * SL_ENOENT / SL_EIO / SL_EPERM. */
int sl_tail_open(struct sl_tail *t, const char *path, const struct sl_tail_opts *o,
                 const struct sl_positions *pos, bool *resumed);

/* Filter for the directory searches below: true if the file with this
 * device + inode is tailed already (and must not be opened twice). */
typedef bool (*sl_tail_taken_fn)(void *ud, uint64_t dev, uint64_t ino);

/* Finds the file of a saved position after a restart: at pos->path if it is
 * still that file, else in the same directory under another name (renamed:
 * same device + inode + fingerprint), else a copy of it there (copytruncate:
 * same fingerprint, at least offset bytes). Opens it at pos->offset with
 * t->name = pos->name. Returns 0, or SL_ENOENT if it is gone. */
int sl_tail_open_known(struct sl_tail *t, const struct sl_position *pos,
                       const struct sl_tail_opts *o, sl_tail_taken_fn taken, void *ud);

void sl_tail_release(struct sl_tail *t);

/* One bounded read of at most cap bytes into scratch, parsed with cbs.
 * *consumed: bytes that went through the parser. Returns a status >= 0 or
 * SL_EIO. Entry callbacks should call sl_tail_hold() for entries they keep.
 * After SL_TAIL_TRUNCATED the caller must call sl_tail_follow_copy() or
 * sl_tail_restart() before reading again. */
int sl_tail_read(struct sl_tail *t, char *scratch, size_t cap, const struct sl_parse_cbs *cbs,
                 void *ud, size_t *consumed);

/* After SL_TAIL_ROTATED: the file's new name in the same directory (found by
 * device + inode) becomes t->path. Returns 0 or SL_ENOENT (moved elsewhere or
 * deleted; t->path is left as it was). */
int sl_tail_find_name(struct sl_tail *t);

/* After SL_TAIL_TRUNCATED: looks in the directory for the copy logrotate's
 * copytruncate made before truncating (a regular file, not *.gz, that starts
 * with t's fingerprint and holds at least read_off bytes, not taken). On
 * success t goes on reading the copy where it was (same offsets, parser state
 * and unacknowledged entries) and 0 is returned: the caller should open the
 * original name afresh. Else SL_ENOENT and t is unchanged. */
int sl_tail_follow_copy(struct sl_tail *t, sl_tail_taken_fn taken, void *ud);

/* After SL_TAIL_TRUNCATED with no copy: starts over at 0. *missed: bytes
 * known to have been in the file and not read (a lower bound of the loss). */
void sl_tail_restart(struct sl_tail *t, uint64_t *missed);

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

/* n entries were acknowledged (or dropped for good), in the order they were
 * handed on; cookie is the sl_tail_cookie() of the last of them. Advances
 * acked_off. */
void sl_tail_ack(struct sl_tail *t, size_t n, uint64_t cookie);

/* True when nothing handed on awaits acknowledgement. */
static inline bool sl_tail_settled(const struct sl_tail *t)
{
    return t->unacked == 0 && t->stale == 0;
}

#endif
