/* Loading a configuration again for SIGHUP (reload.h). */
#include "agent/reload.h"

#include <string.h>

#include "common/config.h"
#include "common/err.h"
#include "common/mem.h"

/* A string key that only takes effect at start: keep the running value. */
static void keep(char **next, const char *cur, const char *key, struct sl_buf *warn)
{
    if (!strcmp(*next, cur))
        return;
    if (warn)
        sl_buf_appendf(warn, "%s cannot change without a restart: keeping %s (the file says %s)\n",
                       key, cur, *next);
    sl_free(*next);
    *next = sl_strdup(cur);
}

int sl_reload_load(const struct sl_reload_source *src, const struct sl_agent_config *cur,
                   struct sl_agent_config *out, struct sl_buf *err, struct sl_buf *warn)
{
    memset(out, 0, sizeof(*out));
    int rc = sl_config_load(sl_agent_options, sl_agent_noptions, out, src->file, src->sets,
                            src->nsets, err);
    if (rc != 0)
        return rc; /* released by the loader */
    rc = sl_agent_config_validate(out, err, warn);
    if (rc != 0) {
        sl_config_release(sl_agent_options, sl_agent_noptions, out);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    keep(&out->server_listen, cur->server_listen, "server.listen", warn);
    keep(&out->positions_file, cur->positions_file, "positions.file", warn);
    /* Batches buffered under the old path would wait there for a restart. */
    keep(&out->buffer_path, cur->buffer_path, "buffer.path", warn);
    return 0;
}

static bool str_differs(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") != 0;
}

bool sl_reload_kube_changed(const struct sl_agent_config *cur, const struct sl_agent_config *next)
{
    if (cur->k8s_api_enabled != next->k8s_api_enabled)
        return true;
    if (!next->k8s_api_enabled)
        return false;
    if (str_differs(cur->k8s_api_host, next->k8s_api_host) ||
        str_differs(cur->k8s_api_token_file, next->k8s_api_token_file) ||
        str_differs(cur->k8s_api_ca_file, next->k8s_api_ca_file) ||
        str_differs(cur->k8s_node_name, next->k8s_node_name) ||
        cur->k8s_api_pod_labels.n != next->k8s_api_pod_labels.n)
        return true;
    for (size_t i = 0; i < next->k8s_api_pod_labels.n; i++)
        if (strcmp(cur->k8s_api_pod_labels.items[i], next->k8s_api_pod_labels.items[i]) != 0)
            return true;
    return false;
}
