/* Push endpoints (DESIGN.md "Agent -> aggregator protocol"):
 *
 *   POST /api/v1/push        native: msgpack (common/batch.h), Content-Encoding
 *                            zstd | gzip | none; another Content-Type is 415.
 *   POST /loki/api/v1/push   Loki JSON (Content-Type application/json, optionally
 *                            Content-Encoding gzip):
 *                              {"streams":[{"stream":{"app":"x"},
 *                                           "values":[["<ns>","<line>"],
 *                                                     ["<ns>","<line>",{"k":"v"}]]}]}
 *                            or Loki protobuf (Content-Type application/x-protobuf,
 *                            or none, as Loki assumes): a snappy block (inside any
 *                            Content-Encoding) holding a logproto.PushRequest
 *                            (common/lokipb.h), structured metadata included; each
 *                            stream's labels string is parsed with sl_labels_parse
 *                            and an unparsable one rejects that stream only
 *                            (invalid_labels). Another Content-Type is 415.
 *
 * Flow (loop thread): tenant -> decompress (at most SL_PUSH_MAX_DECODED_BYTES)
 * -> decode -> validate each stream (aggregator/distributor) -> per-tenant rate
 * limit on the raw line bytes that passed (aggregator/distributor/ratelimit.h)
 * -> ingester -> one WAL record of the accepted entries -> reply once the
 * record is durable.
 *
 * Replies: 204 all kept; 400 {"error": "...", "rejected": N} (the valid entries
 * are kept; the message names each kind of rejection, how many, and a first
 * example); 400 for an undecodable body; 401 without a tenant under auth; 413
 * body too large (decoded); 415 content type or encoding; 429 rate limited,
 * with Retry-After (whole seconds until the same push would pass) and nothing
 * kept, the entries counted as rejected with reason "rate_limited"; 503 once
 * the WAL has failed (nothing more is accepted; restart the process).
 *
 * WAL record payload (version 1), written by this module and read back by
 * sl_push_record_apply():
 *   [u8 SL_PUSH_RECORD_V1][u16 LE tenant length][tenant][native msgpack batch]
 * The batch holds the accepted entries with their metadata, labels sorted. */
#ifndef SL_PUSH_H
#define SL_PUSH_H

#include <stdbool.h>
#include <stddef.h>

#include "aggregator/distributor/distributor.h"
#include "aggregator/ingester/ingester.h"
#include "common/arena.h"
#include "common/batch.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/http_server.h"

#define SL_PUSH_RECORD_V1 1

struct sl_metrics;
struct sl_wal;
struct sl_push_api;

struct sl_push_opts {
    bool auth_enabled;
    struct sl_distributor_limits limits;
};

/* Registers both push routes on srv. wal may be NULL (wal.enabled: false: a
 * push is acknowledged once it is in memory). ing, wal and m must outlive the
 * returned object. Loop thread. */
struct sl_push_api *sl_push_api_new(struct sl_http_server *srv, struct sl_ingester *ing,
                                    struct sl_wal *wal, struct sl_metrics *m,
                                    const struct sl_push_opts *o);
void sl_push_api_free(struct sl_push_api *p);

/* Decodes a Loki JSON push body into out (push_json.c: yajl's streaming
 * parser, straight into the batch). Keys "streams", "stream" and "values" in
 * any order; unknown keys are skipped. Arrays and strings that had escapes
 * are allocated from arena; other strings point into body, which must
 * outlive out. Returns 0, or SL_EINVAL with a reason naming the position in
 * err (may be NULL): a syntax error ("line L column C: ..."), else the first
 * of: the root, then each stream in order (its labels, its values, then its
 * entries in order). */
int sl_push_json_decode(struct sl_arena *arena, const void *body, size_t n, struct sl_batch *out,
                        struct sl_buf *err);

/* Appends a WAL record payload for tenant and an encoded batch body. */
void sl_push_record_encode(struct sl_bytes tenant, struct sl_bytes batch_body, struct sl_buf *out);

/* Applies one WAL record payload to the ingester (replay). Duplicates are
 * dropped by the ingester, so applying a record twice is harmless. Returns 0,
 * or SL_ECORRUPT/SL_EUNSUPP for a payload it cannot read. res may be NULL. */
int sl_push_record_apply(struct sl_ingester *ing, struct sl_bytes payload,
                         struct sl_push_result *res);

#endif
