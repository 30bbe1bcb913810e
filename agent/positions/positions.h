/* The positions file: where reading of each file may resume after a restart.
 *
 * JSON (common/format.h SL_POSITIONS_VERSION):
 *   {"version": 1, "files": [{"path": "...", "device": N, "inode": N,
 *     "fingerprint": {"len": N, "xxh3": "<16 hex>"}, "offset": N,
 *     "name": "..."}, ...]}
 *
 * Entries are keyed by device + inode (one per file, whatever its name). path
 * is the file's current name; name (optional, default path) is the name it
 * was discovered under: a rotated sibling (0.log.20240101-000000) keeps its
 * entry, under its new path, until the agent released it, so an agent
 * restarted mid-rotation finds it and reads it to its end.
 *
 * The fingerprint is XXH3-64 of the file's first len = min(1024, size) bytes,
 * taken when the entry is written: together with device + inode it tells a
 * file we know from a new one that reuses the inode. Offsets are only ever
 * acknowledged positions (see agent/tail). Saved atomically: write a temporary
 * file next to it, fsync, rename over, fsync the directory.
 *
 * Owns its strings. Not thread-safe; used on the loop thread. Saving does
 * blocking I/O (a few KB, every positions.sync_period). */
#ifndef SL_AGENT_POSITIONS_H
#define SL_AGENT_POSITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SL_FINGERPRINT_MAX 1024

struct sl_fingerprint {
    uint32_t len;
    uint64_t hash;
};

struct sl_position {
    char *path;
    char *name; /* NULL: same as path */
    uint64_t dev;
    uint64_t ino;
    struct sl_fingerprint fp;
    uint64_t offset;
};

struct sl_positions {
    struct sl_position *items;
    size_t n;
    size_t cap;
};

void sl_positions_init(struct sl_positions *p);
void sl_positions_release(struct sl_positions *p);
void sl_positions_clear(struct sl_positions *p);

/* Replaces p's contents with the file's. A missing file is an empty set (0).
 * Returns SL_ECORRUPT / SL_EUNSUPP (newer version) / SL_EIO with a reason in
 * err; p is then empty. */
int sl_positions_load(struct sl_positions *p, const char *file, struct sl_buf *err);
/* Writes atomically; creates missing parent directories. Leaves no temporary
 * file behind, also on failure. Returns 0 or SL_EIO with a reason in err. */
int sl_positions_save(const struct sl_positions *p, const char *file, struct sl_buf *err);

/* Adds or replaces the entry for dev + ino (path copied; name NULL). */
void sl_positions_set(struct sl_positions *p, const char *path, uint64_t dev, uint64_t ino,
                      struct sl_fingerprint fp, uint64_t offset);
/* Appends an entry without looking for an existing one (the caller knows the
 * key is new: saving a file table). path and name (may be NULL or equal to
 * path) are copied. */
void sl_positions_add(struct sl_positions *p, const char *path, const char *name, uint64_t dev,
                      uint64_t ino, struct sl_fingerprint fp, uint64_t offset);
/* Entry for dev + ino, or NULL; valid until the next change to p. */
const struct sl_position *sl_positions_find(const struct sl_positions *p, uint64_t dev,
                                            uint64_t ino);
/* Entry whose path is path, or NULL; valid until the next change to p. */
const struct sl_position *sl_positions_get(const struct sl_positions *p, const char *path);

/* Fingerprint of an open file from its first min(SL_FINGERPRINT_MAX, size)
 * bytes (pread, does not move the offset). Returns 0 or SL_EIO. */
int sl_fingerprint_fd(int fd, uint64_t size, struct sl_fingerprint *out);
/* Fingerprint of the first want->len bytes; true if the file still starts with
 * the bytes the fingerprint was taken from. */
bool sl_fingerprint_match(int fd, const struct sl_fingerprint *want);

#endif
