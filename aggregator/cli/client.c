/* HTTP and argument helpers of the `sluice` CLI. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/cli/cli.h"
#include "common/err.h"
#include "common/http_client.h"
#include "common/timeutil.h"

/* Queries may run up to the server's query_timeout (1m by default). */
#define CLI_TIMEOUT_MS (5 * 60 * 1000)

int sl_cli_opt(struct sl_cli_args *a, const char *name, bool has_value, const char **value)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0)
        return 0;
    const char *rest = arg + 2 + n;
    if (*rest == '=' && has_value) {
        *value = rest + 1;
        a->i++;
        return 1;
    }
    if (*rest)
        return 0;
    if (!has_value) {
        *value = "1";
        a->i++;
        return 1;
    }
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "sluice: option --%s needs a value\n", name);
        return -1;
    }
    *value = a->argv[a->i + 1];
    a->i += 2;
    return 1;
}

void sl_cli_param(struct sl_buf *q, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (q->len)
        sl_buf_append_char(q, '&');
    sl_buf_append_str(q, name);
    sl_buf_append_char(q, '=');
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            sl_buf_append_char(q, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sl_buf_append(q, e, 3);
        }
    }
}

int sl_cli_range_params(const struct sl_cli_range *r, const char *default_since, struct sl_buf *q)
{
    int64_t now = sl_now_ns(), since;
    const char *s = r->since ? r->since : default_since;
    if (sl_duration_parse(s, strlen(s), &since) || since <= 0) {
        fprintf(stderr, "sluice: invalid --since %s: expected a duration such as 30m or 2h\n", s);
        return -1;
    }
    char num[32];
    if (r->from) {
        sl_cli_param(q, "start", r->from);
    } else {
        snprintf(num, sizeof num, "%" PRId64, now - since);
        sl_cli_param(q, "start", num);
    }
    if (r->to) {
        sl_cli_param(q, "end", r->to);
    } else {
        snprintf(num, sizeof num, "%" PRId64, now);
        sl_cli_param(q, "end", num);
    }
    return 0;
}

static void print_reason(const struct sl_http_response *resp)
{
    struct sl_bytes b = sl_buf_bytes(&resp->body);
    while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
        b.len--;
    fprintf(stderr, "sluice: server answered %d: %.*s\n", resp->status, (int)b.len,
            b.ptr ? b.ptr : "");
}

int sl_cli_get_json(const struct sl_cli *cli, const char *path, const struct sl_buf *query,
                    json_t **out)
{
    struct sl_buf url = SL_BUF_INIT, org = SL_BUF_INIT;
    const char *addr = cli->addr;
    size_t al = strlen(addr);
    while (al && addr[al - 1] == '/')
        al--;
    sl_buf_append(&url, addr, al);
    sl_buf_append_str(&url, path);
    if (query && query->len) {
        sl_buf_append_char(&url, '?');
        sl_buf_append_bytes(&url, sl_buf_bytes(query));
    }
    const char *headers[2] = {NULL, NULL};
    if (cli->org_id && *cli->org_id) {
        sl_buf_appendf(&org, "X-Scope-OrgID: %s", cli->org_id);
        headers[0] = org.data;
    }
    struct sl_http_req_opts r = {
        .method = "GET", .url = url.data, .headers = headers, .timeout_ms = CLI_TIMEOUT_MS};
    struct sl_http_response resp;
    int rc = sl_http_fetch(NULL, &r, &resp);
    int ret = 1;
    if (rc) {
        fprintf(stderr, "sluice: cannot reach %.*s: %s%s%s\n", (int)al, addr, sl_strerror(rc),
                resp.errmsg[0] ? ": " : "", resp.errmsg);
    } else if (resp.status < 200 || resp.status > 299) {
        print_reason(&resp);
    } else {
        json_error_t e;
        *out = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &e);
        if (*out)
            ret = 0;
        else
            fprintf(stderr, "sluice: the server's answer is not JSON: %s\n", e.text);
    }
    sl_http_response_release(&resp);
    sl_buf_release(&url);
    sl_buf_release(&org);
    return ret;
}
