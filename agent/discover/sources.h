/* The agent's `files:` list (DESIGN.md "Configuration keys"):
 *
 *   files:
 *     - include: ["/var/log/app/app-[0-9].log"]  # globs: one or a list
 *       exclude: ["/var/log/app/app-0.log"]  # optional, on the full path
 *       format: raw                     # raw (default) | cri | docker
 *       labels: {job: app}              # static labels, optional
 *
 * Every stream of such a file also gets filename="<path>" (as Promtail's
 * __path__ gives `filename`), and node when kubernetes.node_name is set.
 * Owns its strings. Not thread-safe. */
#ifndef SL_AGENT_SOURCES_H
#define SL_AGENT_SOURCES_H

#include <stddef.h>

#include "agent/parse/parse.h"
#include "common/buf.h"
#include "common/config.h"

struct sl_file_source {
    struct sl_strlist include;
    struct sl_strlist exclude;
    enum sl_log_format format;
    char **label_names; /* sorted by name, validated */
    char **label_values;
    size_t nlabels;
};

struct sl_file_sources {
    struct sl_file_source *items;
    size_t n;
};

/* Parses the files: node (NULL or an empty sequence: none). Returns 0, or
 * SL_EINVAL with "config: files[i].key: reason" in err (out is then empty). */
int sl_file_sources_parse(const struct sl_cfgnode *files, struct sl_file_sources *out,
                          struct sl_buf *err);
void sl_file_sources_release(struct sl_file_sources *s);

#endif
