/* Reloading the agent's configuration (SIGHUP): the same file and --set
 * overrides as at start are loaded into a fresh struct and validated; keys
 * that cannot change while the agent runs keep their running values, each
 * named in a warning. agent.c then drains what is in flight and rebuilds the
 * sources, pipeline, shipper (and the Kubernetes watcher when its keys
 * changed) from the new configuration, keeping the loop, the metrics and the
 * HTTP server.
 *
 * Threading: the loop thread (the loader is not thread-safe). */
#ifndef SL_AGENT_RELOAD_H
#define SL_AGENT_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/config/config.h"
#include "common/buf.h"

/* Where the configuration comes from: --config and the --set overrides, in
 * order. Borrowed; must stay valid while the agent runs. */
struct sl_reload_source {
    const char *file; /* NULL: defaults and --set only */
    const char *const *sets;
    size_t nsets;
};

/* Loads src into *out (zeroed first), validates it, and carries over from cur
 * the keys that cannot change live (server.listen, positions.file,
 * buffer.path): for each
 * that differs, out keeps cur's value and a line naming the key goes to warn.
 * Validation notes go to warn too. Returns 0 (the caller releases out with
 * sl_config_release), or SL_EINVAL / SL_ENOENT with one line naming the key
 * (or the file) in err; out is then released already. */
int sl_reload_load(const struct sl_reload_source *src, const struct sl_agent_config *cur,
                   struct sl_agent_config *out, struct sl_buf *err, struct sl_buf *warn);

/* True if the Kubernetes API watcher must be rebuilt to follow next: a
 * kubernetes.api.* key or kubernetes.node_name differs. Pure. */
bool sl_reload_kube_changed(const struct sl_agent_config *cur, const struct sl_agent_config *next);

#endif
