/* Tenant of a request. The tenant becomes part of object keys, so the rules
 * are strict: see tenant.h and common/format.h. */
#include "aggregator/tenant/tenant.h"

#include "common/err.h"
#include "common/format.h"

bool sl_tenant_valid(struct sl_bytes t)
{
    if (t.len == 0 || t.len > SL_TENANT_MAX_LEN)
        return false;
    if (sl_bytes_eq_str(t, ".") || sl_bytes_eq_str(t, ".."))
        return false;
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int sl_tenant_of_request(struct sl_http_request *req, bool auth_enabled, struct sl_bytes *out)
{
    const struct sl_bytes *h = sl_http_req_header(req, "X-Scope-OrgID");
    if (!h || h->len == 0) {
        if (auth_enabled) {
            sl_http_respond_text(req, 401, "no org id: the X-Scope-OrgID header is required");
            return SL_EPERM;
        }
        *out = SL_BYTES_LIT(SL_TENANT_DEFAULT);
        return 0;
    }
    if (!sl_tenant_valid(*h)) {
        sl_http_respond_text(req, 400,
                             "invalid X-Scope-OrgID: 1-%d characters of [A-Za-z0-9_.-], "
                             "not \".\" or \"..\"",
                             SL_TENANT_MAX_LEN);
        return SL_EINVAL;
    }
    *out = *h;
    return 0;
}
