/* sluice-agent configuration: one options table (sl_agent_options[]) declares
 * every key of DESIGN.md "Configuration keys" (agent part) with its default,
 * plus server.log_level. common/config.h loads it; sl_agent_config_validate()
 * checks what the table cannot express. Not thread-safe: load once at start. */
#ifndef SL_AGENT_CONFIG_H
#define SL_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/compress.h"
#include "common/config.h"

struct sl_agent_config {
    /* server */
    char *server_listen;
    char *server_log_level;
    /* positions */
    char *positions_file;
    int64_t positions_sync_period; /* ns */
    /* client */
    char *client_url;
    char *client_protocol;
    char *client_compression;
    char *client_tenant;
    char *client_bearer_token_file;
    char *client_tls_ca_file;
    bool client_tls_insecure_skip_verify;
    int64_t client_batch_size; /* bytes */
    int64_t client_batch_wait; /* ns */
    int64_t client_timeout;    /* ns */
    int64_t client_backoff_min;
    int64_t client_backoff_max;
    /* kubernetes */
    char *k8s_pods_path;
    char *k8s_node_name;
    bool k8s_api_enabled;
    char *k8s_api_host;       /* "": in-cluster (KUBERNETES_SERVICE_HOST/PORT) */
    char *k8s_api_token_file; /* "": the service-account token */
    char *k8s_api_ca_file;    /* "": the service-account ca.crt */
    struct sl_strlist k8s_api_pod_labels;
    /* files, pipeline: subtrees built by agent/discover and agent/pipeline (NULL when absent) */
    struct sl_cfgnode *files;
    struct sl_cfgnode *pipeline;
    /* read */
    int64_t read_rotate_wait; /* ns */
    int64_t read_max_line_size;
    int64_t read_sweep_period; /* ns */
    /* buffer */
    char *buffer_type; /* memory | disk */
    char *buffer_path; /* disk: "" becomes <dir of positions.file>/buffer in validate */
    int64_t buffer_max_size;

    /* derived by sl_agent_config_validate() */
    enum sl_codec codec;
};

extern const struct sl_option sl_agent_options[];
extern const size_t sl_agent_noptions;

/* Checks values and fills the derived fields. Returns 0, or SL_EINVAL with
 * "config: <key>: <reason>" in err. Features that are configured but not
 * implemented yet are reported in warn
 * (one line each; may be NULL) without failing. */
int sl_agent_config_validate(struct sl_agent_config *c, struct sl_buf *err, struct sl_buf *warn);

#endif
