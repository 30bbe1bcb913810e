/* Discovery of log files: the kubelet layout
 *
 *   <pods_path>/<namespace>_<pod>_<uid>/<container>/<name>.log
 *
 * and glob sources (below).
 * Watches with inotify through libuv: one uv_fs_event per directory (the pods
 * directory, each pod directory, each container directory, each directory on
 * the way to a glob's files), never per file,
 * plus a periodic sweep (rescan) as a fallback for filesystems where inotify
 * says nothing and to forget directories that went away.
 *
 * The callback is told about a log file whenever it may have appeared or
 * changed: on a container-directory event naming it, and for every matching
 * file at each scan. It may be called for a path that no longer exists (a
 * deletion event). Rotated siblings (0.log.20240101-000000, *.gz) are not
 * reported.
 *
 * Threading: one loop; all calls and callbacks on the loop thread. */
#ifndef SL_AGENT_DISCOVER_H
#define SL_AGENT_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/bytes.h"

/* Views into the parsed path. */
struct sl_log_path {
    struct sl_bytes ns;
    struct sl_bytes pod;
    struct sl_bytes uid;
    struct sl_bytes container;
    struct sl_bytes file;
};

/* "<ns>_<pod>_<uid>": namespaces and pod names are DNS names (no '_'), so
 * exactly two '_' with three non-empty parts. Returns 0 or SL_EINVAL. */
int sl_discover_parse_pod_dir(struct sl_bytes name, struct sl_log_path *out);
/* True for "<something>.log" (not rotated siblings, not hidden files). */
bool sl_discover_is_log_name(struct sl_bytes name);
/* Parses a full path below pods_path (with or without trailing '/').
 * Returns 0 or SL_EINVAL if it is not <pods_path>/<pod dir>/<container>/<x>.log. */
int sl_discover_parse_path(const char *pods_path, const char *path, struct sl_log_path *out);

/* An extra glob source (the agent's files: list). Patterns are shell globs
 * matched one path component at a time (fnmatch with FNM_PATHNAME |
 * FNM_PERIOD: '*' never crosses a '/', "**" is not special), e.g.
 * "/var/log/containers/" followed by "*.log", or a Docker container
 * directory pattern with '*' for the container id. Directories leading to a match are watched, one
 * watch per directory; a file matching an exclude pattern is never reported. */
struct sl_discover_glob {
    char *const *include;
    size_t ninclude;
    char *const *exclude;
    size_t nexclude;
};

/* source: SL_DISCOVER_PODS for the kubelet layout, else the index of the glob
 * source (several sources may report one path). */
#define SL_DISCOVER_PODS (-1)

struct sl_discover;

typedef void (*sl_discover_file_cb)(void *ud, const char *path, int source);

/* pods_path ("" for none) and the glob sources are copied. Nothing happens
 * until sl_discover_start(). */
struct sl_discover *sl_discover_new(uv_loop_t *loop, const char *pods_path,
                                    const struct sl_discover_glob *globs, size_t nglobs,
                                    int64_t sweep_ns, sl_discover_file_cb cb, void *ud);
/* First scan, watches and the sweep timer. A missing directory is not an
 * error: it is retried at every sweep (logged once). Returns 0. */
int sl_discover_start(struct sl_discover *d);
/* Rescans everything now (also run by the sweep timer). */
void sl_discover_sweep(struct sl_discover *d);
/* Which source path belongs to (first match: pods, then globs in order).
 * Returns true and sets *source, or false. Used to relabel files found again
 * from saved positions. */
bool sl_discover_source_of(const struct sl_discover *d, const char *path, int *source);
/* Number of directory watches (for metrics and tests). */
size_t sl_discover_nwatches(const struct sl_discover *d);
/* Stops everything; memory is freed once libuv has closed the handles. */
void sl_discover_free(struct sl_discover *d);

#endif
