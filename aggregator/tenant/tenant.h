/* Tenant of a request (DESIGN.md "Data model"): the X-Scope-OrgID header,
 * 1-150 chars of [A-Za-z0-9_.-], not "." or "..". With auth off, a request
 * without the header belongs to "anonymous"; with auth on it is 401. An
 * invalid tenant is always 400. Loop thread (uses the request). */
#ifndef SL_TENANT_H
#define SL_TENANT_H

#include <stdbool.h>

#include "common/bytes.h"
#include "common/http_server.h"

bool sl_tenant_valid(struct sl_bytes t);

/* On success returns 0 and *out (a view into the request or a static string).
 * On failure it has already answered the request (400 or 401, with a reason)
 * and returns SL_EINVAL or SL_EPERM: the handler just returns. */
int sl_tenant_of_request(struct sl_http_request *req, bool auth_enabled, struct sl_bytes *out);

#endif
