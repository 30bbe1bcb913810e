/* Kubernetes watch stream fuzz target: the input is fed to the watch body
 * handler in chunks whose size comes from the first byte, as newline-delimited
 * events arrive from the API server. Checks that the pod map stays consistent:
 * every pod's labels are sorted, valid Loki names, and found again by uid. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/kube/kube.c"

static bool valid_name(struct sl_bytes n)
{
    if (!n.len || (n.ptr[0] >= '0' && n.ptr[0] <= '9'))
        return false;
    for (size_t i = 0; i < n.len; i++) {
        char c = n.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 128 + 1;
    data++;
    size--;
    static char *allow[] = {"app.kubernetes.io/name", "app", "9x", "app_kubernetes_io/name"};
    struct sl_strlist list = {allow, 4};
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_metrics *m = sl_metrics_new();
    struct sl_kube *k;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_kube_opts o = {.host = "https://127.0.0.1:1", .node_name = "n", .pod_labels = &list};
    if (sl_kube_new(&loop, &o, m, &k, &err) != 0)
        abort();
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (on_watch_body(200, sl_bytes((const char *)data + off, n), k) != 0)
            break;
    }
    for (size_t i = 0; i < k->npods; i++) {
        const struct pod *p = &k->pods[i];
        const struct sl_label *l;
        if (sl_kube_pod_labels(k, sl_bytes_str(p->uid), &l) != p->n || (p->n && l != p->lab))
            abort();
        for (size_t j = 0; j < p->n; j++) {
            if (!valid_name(p->lab[j].name))
                abort();
            if (j && sl_bytes_cmp(p->lab[j - 1].name, p->lab[j].name) >= 0)
                abort();
        }
    }
    sl_kube_free(k);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    sl_metrics_free(m);
    return 0;
}
