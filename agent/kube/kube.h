/* Pod metadata from the Kubernetes API (kubernetes.api.enabled).
 *
 * One LIST of the pods on this node (fieldSelector=spec.nodeName=<node>),
 * then a WATCH from the list's resourceVersion (newline-delimited JSON
 * events). The watch is re-established with a new LIST when it ends: on
 * expiry (the server's timeoutSeconds), 410 Gone, an ERROR event or a
 * disconnect; failures back off (0.5 s doubling to 30 s), are logged and
 * counted in sluice_agent_kube_api_errors_total. sluice_agent_kube_pods is the
 * number of pods known. The service-account token is re-read before every
 * request. While the API is unreachable, pods simply have no labels.
 *
 * For each pod (by uid) the allowlisted labels are kept, their names
 * sanitized to Loki label names (every byte outside [A-Za-z0-9_] becomes '_';
 * a leading digit gets a '_' prefix).
 *
 * Threading: one loop; every call on that loop's thread. */
#ifndef SL_AGENT_KUBE_H
#define SL_AGENT_KUBE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/bytes.h"
#include "common/config.h"
#include "common/labels.h"
#include "common/metrics.h"

struct sl_kube;

struct sl_kube_opts {
    const char *host;       /* "https://host:port"; NULL or "": from KUBERNETES_SERVICE_HOST/PORT */
    const char *token_file; /* NULL or "": the service-account token path */
    const char *ca_file;    /* NULL or "": the service-account ca.crt path */
    const char *node_name;  /* "" : every pod the account can see (logged) */
    const struct sl_strlist *pod_labels; /* allowlist of pod label names */
    int64_t watch_timeout_s;             /* server-side watch expiry; 0: 300 */
};

/* Creates the watcher (nothing is sent until sl_kube_start). Returns 0, or
 * SL_EINVAL with a message in err (no host in the environment). */
int sl_kube_new(uv_loop_t *loop, const struct sl_kube_opts *o, struct sl_metrics *m,
                struct sl_kube **out, struct sl_buf *err);
/* Starts listing. first_list (may be NULL) is called once, when the first
 * LIST has succeeded or failed (at most ~15 s: connect + request timeout), so
 * the caller can open files once labels are known. */
void sl_kube_start(struct sl_kube *k, void (*first_list)(void *ud), void *ud);
/* The labels of pod uid (sanitized names, sorted by name), or 0 if the pod is
 * unknown. The views are valid until control returns to the loop. */
size_t sl_kube_pod_labels(const struct sl_kube *k, struct sl_bytes uid,
                          const struct sl_label **out);
/* Number of pods known. */
size_t sl_kube_npods(const struct sl_kube *k);
/* Cancels requests and frees k once its handles are closed. k may be NULL. */
void sl_kube_free(struct sl_kube *k);

/* Sanitizes a label name into out (cleared first). Pure. */
void sl_kube_sanitize_name(struct sl_bytes name, struct sl_buf *out);

#endif
