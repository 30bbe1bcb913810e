/* The positions file: where reading of each file may resume after a restart.
 *
 * JSON (common/format.h SL_POSITIONS_VERSION):
 *   {"version": 1, "files": [{"path": "...", "device": N, "inode": N,
 *     "fingerprint": {"len": N, "xxh3": "<16 hex>"}, "offset": N}, ...]}
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

/* Adds or replaces the entry for path (copied). */
void sl_positions_set(struct sl_positions *p, const char *path, uint64_t dev, uint64_t ino,
                      struct sl_fingerprint fp, uint64_t offset);
/* Entry for path or NULL; valid until the next change to p. */
const struct sl_position *sl_positions_get(const struct sl_positions *p, const char *path);

/* Fingerprint of an open file from its first min(SL_FINGERPRINT_MAX, size)
 * bytes (pread, does not move the offset). Returns 0 or SL_EIO. */
int sl_fingerprint_fd(int fd, uint64_t size, struct sl_fingerprint *out);
/* Fingerprint of the first want->len bytes; true if the file still starts with
 * the bytes the fingerprint was taken from. */
bool sl_fingerprint_match(int fd, const struct sl_fingerprint *want);

#endif
