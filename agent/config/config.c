/* The agent's options table. Defaults are DESIGN.md's; keep the two in step. */
#include "agent/config/config.h"

#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/discover/sources.h"
#include "agent/pipeline/pipeline.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"

#define OFF(f) offsetof(struct sl_agent_config, f)

const struct sl_option sl_agent_options[] = {
    {"server.listen", SL_OPT_STRING, "127.0.0.1:9080", OFF(server_listen),
     "address of the /metrics and /ready endpoints"},
    {"server.log_level", SL_OPT_STRING, "info", OFF(server_log_level),
     "log level of the agent itself: debug, info, warn, error"},
    {"positions.file", SL_OPT_STRING, "/var/lib/sluice/positions.json", OFF(positions_file),
     "where acknowledged read positions are saved"},
    {"positions.sync_period", SL_OPT_DURATION, "10s", OFF(positions_sync_period),
     "how often positions are saved (also on shutdown)"},
    {"client.url", SL_OPT_STRING, "http://127.0.0.1:3100/api/v1/push", OFF(client_url),
     "push endpoint of the aggregator"},
    {"client.protocol", SL_OPT_STRING, "sluice", OFF(client_protocol),
     "sluice (native msgpack), loki-json or loki-protobuf (Loki's push API: point client.url "
     "at .../loki/api/v1/push)"},
    {"client.compression", SL_OPT_STRING, "zstd", OFF(client_compression),
     "body compression: zstd, gzip or none (loki-json: gzip unless none; loki-protobuf: "
     "always snappy)"},
    {"client.tenant", SL_OPT_STRING, "", OFF(client_tenant),
     "X-Scope-OrgID sent with every push (empty: none)"},
    {"client.bearer_token_file", SL_OPT_STRING, "", OFF(client_bearer_token_file),
     "file holding a bearer token, re-read for every batch (empty: none)"},
    {"client.tls.ca_file", SL_OPT_STRING, "", OFF(client_tls_ca_file),
     "CA bundle that verifies an https client.url (empty: the system store)"},
    {"client.tls.insecure_skip_verify", SL_OPT_BOOL, "false", OFF(client_tls_insecure_skip_verify),
     "do not verify the server certificate (testing only)"},
    {"client.batch_size", SL_OPT_SIZE, "1MiB", OFF(client_batch_size),
     "a batch is sent once it holds this many line bytes"},
    {"client.batch_wait", SL_OPT_DURATION, "1s", OFF(client_batch_wait),
     "a non-empty batch is sent at the latest this long after its first line"},
    {"client.timeout", SL_OPT_DURATION, "10s", OFF(client_timeout),
     "timeout of one push request; also bounds delivery at shutdown"},
    {"client.backoff.min", SL_OPT_DURATION, "500ms", OFF(client_backoff_min),
     "first retry delay (doubles per attempt, with jitter)"},
    {"client.backoff.max", SL_OPT_DURATION, "5m", OFF(client_backoff_max), "longest retry delay"},
    {"kubernetes.pods_path", SL_OPT_STRING, "/var/log/pods", OFF(k8s_pods_path),
     "kubelet pod log directory; empty disables discovery"},
    {"kubernetes.node_name", SL_OPT_STRING, "${NODE_NAME:-}", OFF(k8s_node_name),
     "value of the node label (omitted when empty)"},
    {"kubernetes.api.enabled", SL_OPT_BOOL, "false", OFF(k8s_api_enabled),
     "add allowlisted pod labels from the Kubernetes API (watch of this node's pods)"},
    {"kubernetes.api.host", SL_OPT_STRING, "", OFF(k8s_api_host),
     "API server URL, e.g. https://10.0.0.1:443 (empty: in-cluster, from "
     "KUBERNETES_SERVICE_HOST/PORT)"},
    {"kubernetes.api.token_file", SL_OPT_STRING, "", OFF(k8s_api_token_file),
     "bearer token file, re-read on every (re)connect (empty: the service-account token)"},
    {"kubernetes.api.ca_file", SL_OPT_STRING, "", OFF(k8s_api_ca_file),
     "CA bundle of the API server (empty: the service-account ca.crt)"},
    {"kubernetes.api.pod_labels", SL_OPT_STRLIST, "[\"app.kubernetes.io/name\", app]",
     OFF(k8s_api_pod_labels), "pod labels copied to streams when the API is enabled"},
    {"files", SL_OPT_NODE, "[]", OFF(files),
     "extra glob sources: [{include, exclude, format: raw|cri|docker, labels}]"},
    {"pipeline", SL_OPT_NODE, "[]", OFF(pipeline),
     "processing stages, in order: json, logfmt, regex, labels, structured_metadata, "
     "static_labels, labeldrop, labelkeep, drop, multiline, timestamp, output"},
    {"read.rotate_wait", SL_OPT_DURATION, "5s", OFF(read_rotate_wait),
     "a rotated file is released after no bytes arrived for this long"},
    {"read.max_line_size", SL_OPT_SIZE, "256KiB", OFF(read_max_line_size),
     "longer lines (after joining partial lines) are split into entries of this size"},
    {"read.sweep_period", SL_OPT_DURATION, "10s", OFF(read_sweep_period),
     "period of the directory rescan backing up inotify"},
    {"buffer.type", SL_OPT_STRING, "memory", OFF(buffer_type),
     "memory (reading pauses while the receiver is down) or disk (batches are kept in "
     "buffer.path, so rotated-away files lose nothing during an outage)"},
    {"buffer.path", SL_OPT_STRING, "", OFF(buffer_path),
     "directory of the disk buffer (empty: a buffer directory next to positions.file)"},
    {"buffer.max_size", SL_OPT_SIZE, "1GiB", OFF(buffer_max_size),
     "disk buffer size; when full the oldest batches are dropped (counted, logged)"},
};

const size_t sl_agent_noptions = sizeof(sl_agent_options) / sizeof(sl_agent_options[0]);

static int bad(struct sl_buf *err, const char *key, const char *why)
{
    if (err)
        sl_buf_appendf(err, "config: %s: %s", key, why);
    return SL_EINVAL;
}

/* buffer.*: type, size, and the default path next to positions.file. */
static int validate_buffer(struct sl_agent_config *c, struct sl_buf *err)
{
    if (strcmp(c->buffer_type, "memory") != 0 && strcmp(c->buffer_type, "disk") != 0)
        return bad(err, "buffer.type", "expected memory or disk");
    if (c->buffer_max_size <= 0)
        return bad(err, "buffer.max_size", "must be positive");
    if (strcmp(c->buffer_type, "disk") != 0)
        return 0;
    if (c->buffer_max_size < 2 * c->client_batch_size)
        return bad(err, "buffer.max_size", "must be at least twice client.batch_size");
    if (!*c->buffer_path) {
        const char *slash = strrchr(c->positions_file, '/');
        struct sl_buf p = SL_BUF_INIT;
        if (slash)
            sl_buf_append(&p, c->positions_file, (size_t)(slash - c->positions_file) + 1);
        sl_buf_append_str(&p, "buffer");
        sl_free(c->buffer_path);
        c->buffer_path = sl_buf_detach(&p, NULL);
    }
    struct stat st;
    if (stat(c->buffer_path, &st) == 0 && !S_ISDIR(st.st_mode))
        return bad(err, "buffer.path", "exists and is not a directory");
    return 0;
}

int sl_agent_config_validate(struct sl_agent_config *c, struct sl_buf *err, struct sl_buf *warn)
{
    enum sl_log_level lvl;
    if (sl_log_level_parse(c->server_log_level, &lvl) != 0)
        return bad(err, "server.log_level", "expected debug, info, warn or error");
    if (!*c->server_listen)
        return bad(err, "server.listen", "must not be empty");
    if (!*c->positions_file)
        return bad(err, "positions.file", "must not be empty");
    if (c->positions_sync_period <= 0)
        return bad(err, "positions.sync_period", "must be positive");
    if (strncmp(c->client_url, "http://", 7) != 0 && strncmp(c->client_url, "https://", 8) != 0)
        return bad(err, "client.url", "expected an http:// or https:// URL");
    if (strcmp(c->client_protocol, "sluice") != 0 && strcmp(c->client_protocol, "loki-json") != 0 &&
        strcmp(c->client_protocol, "loki-protobuf") != 0)
        return bad(err, "client.protocol", "expected sluice, loki-json or loki-protobuf");
    if (sl_codec_parse(c->client_compression, strlen(c->client_compression), &c->codec) != 0)
        return bad(err, "client.compression", "expected zstd, gzip or none");
    if (!strcmp(c->client_protocol, "loki-json") && c->codec == SL_CODEC_ZSTD && warn)
        sl_buf_append_str(warn, "client.compression: Loki does not read zstd: loki-json "
                                "bodies are sent gzip-compressed\n");
    if (*c->client_tls_ca_file && access(c->client_tls_ca_file, R_OK) != 0)
        return bad(err, "client.tls.ca_file", "cannot read the file");
    if (c->client_batch_size <= 0)
        return bad(err, "client.batch_size", "must be positive");
    if (c->client_batch_wait <= 0)
        return bad(err, "client.batch_wait", "must be positive");
    if (c->client_timeout <= 0)
        return bad(err, "client.timeout", "must be positive");
    if (c->client_backoff_min <= 0)
        return bad(err, "client.backoff.min", "must be positive");
    if (c->client_backoff_max < c->client_backoff_min)
        return bad(err, "client.backoff.max", "must be at least client.backoff.min");
    if (c->read_max_line_size < 16)
        return bad(err, "read.max_line_size", "must be at least 16 bytes");
    if (c->read_sweep_period <= 0)
        return bad(err, "read.sweep_period", "must be positive");
    if (c->read_rotate_wait < 0)
        return bad(err, "read.rotate_wait", "must not be negative");
    int rc = validate_buffer(c, err);
    if (rc != 0)
        return rc;
    if (!*c->k8s_pods_path && warn)
        sl_buf_append_str(warn, "kubernetes.pods_path is empty: no files will be read\n");
    if (c->k8s_api_enabled && *c->k8s_api_host && strncmp(c->k8s_api_host, "https://", 8) != 0 &&
        strncmp(c->k8s_api_host, "http://", 7) != 0)
        return bad(err, "kubernetes.api.host", "expected an https:// URL");
    struct sl_file_sources files;
    if (sl_file_sources_parse(c->files, &files, err) != 0)
        return SL_EINVAL;
    sl_file_sources_release(&files);
    struct sl_pipeline *pl;
    if (sl_pipeline_new(c->pipeline, NULL, &pl, err) != 0)
        return SL_EINVAL;
    sl_pipeline_free(pl);
    return 0;
}
