/* Batching and delivery to the aggregator (native protocol, DESIGN.md
 * "Agent -> aggregator protocol") or to a Loki push endpoint.
 *
 * Entries are added to the batch being built (one per agent: the agent has
 * one tenant, client.tenant). The batch is sealed when it holds batch_size
 * line bytes or batch_wait after its first entry; a sealed batch is encoded
 * and compressed on the libuv thread pool, then POSTed with the async client
 * (common/http_client.h). Encodings (client.protocol):
 *   sluice         msgpack (common/batch.h), Content-Encoding from codec;
 *   loki-json      Loki's JSON push body, gzip unless codec is none (Loki
 *                  reads no zstd, so zstd means gzip here);
 *   loki-protobuf  Loki's PushRequest (common/lokipb.h) in a snappy block
 *                  (common/snappy.h), as Promtail sends it; codec is ignored.
 *
 * Memory mode (the default): at most one batch is in flight and one is
 * being built, so memory is bounded: sl_ship_full() turns true when the
 * building batch is full while another is in flight, and the caller must stop
 * reading until cbs->resume. cbs->ack runs when the receiver answered.
 *
 * Disk mode (buffer_disk): a sealed batch is encoded and appended to the disk
 * buffer (agent/buffer/buffer.h, fsync'd) on the thread pool, and cbs->ack
 * runs as soon as it is durable; reading goes on during an outage. A sender
 * takes the oldest record, POSTs it with the same retry rules, and marks it
 * done. When the buffer reaches buffer_max_size its oldest records are
 * dropped (sluice_agent_lines_dropped_total{reason="buffer_full"}); torn or
 * corrupt records found are dropped (reason="buffer_corrupt"); both are
 * logged with the segment file. Memory holds the building batch, the one
 * being appended and the record being sent. sl_ship_full() is true only
 * while the building batch is full and the previous one is still being
 * written (or the disk fails: then appends are retried every second).
 * Records left from an earlier run are sent first, in order.
 *
 * Memory is reused: a finished batch is kept as a spare (lengths reset,
 * capacity kept) for the next one, and the encoder keeps its msgpack buffer
 * and zstd context across batches, so a steady stream allocates nothing per
 * batch. A buffer grown past 4 * batch_size (a huge line) is freed instead.
 *
 * Replies: 2xx acknowledges every entry. 429, 5xx and transport errors are
 * retried with exponential backoff (backoff_min doubling up to backoff_max,
 * with jitter; a longer Retry-After wins) without limit. Any other status
 * drops the batch: its lines are counted in
 * sluice_agent_lines_dropped_total{reason="rejected"} (a 400 with
 * {"rejected": N} counts N, the rest were kept and count as sent) and the
 * server's reason is logged. Either way, cbs->ack is then called once per
 * stream of the batch, in order, so positions can advance (disk mode: after
 * the append, see above).
 *
 * sluice_agent_last_send_timestamp_seconds is the unix time of the last 2xx.
 *
 * Threading: one loop; call from the loop thread; callbacks run there. */
#ifndef SL_AGENT_SHIP_H
#define SL_AGENT_SHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/bytes.h"
#include "common/compress.h"
#include "common/labels.h"

struct sl_metrics;

/* Embedded by the owner of a source (a tailed file). labels must stay valid
 * and unchanged, and the struct must not move or be freed, while entries
 * added through it are unacknowledged. */
struct sl_ship_stream {
    const struct sl_labels *labels;
    /* internal */
    uint64_t gen;
    uint32_t idx;
};

enum sl_ship_protocol {
    SL_SHIP_NATIVE = 0,    /* "sluice" */
    SL_SHIP_LOKI_JSON,     /* "loki-json" */
    SL_SHIP_LOKI_PROTOBUF, /* "loki-protobuf" */
};

/* "sluice", "loki-json" or "loki-protobuf". Returns 0 or SL_EINVAL. */
int sl_ship_protocol_parse(const char *name, enum sl_ship_protocol *out);

struct sl_ship_opts {
    const char *url;
    enum sl_ship_protocol protocol;
    const char *ca_file;           /* "" or NULL: the system store (https URLs) */
    bool insecure_skip_verify;     /* testing only */
    const char *tenant;            /* "" or NULL: no X-Scope-OrgID */
    const char *bearer_token_file; /* "" or NULL: no Authorization */
    enum sl_codec codec;
    size_t batch_size;
    int64_t batch_wait_ns;
    int64_t timeout_ns;
    int64_t backoff_min_ns;
    int64_t backoff_max_ns;
    bool buffer_disk;         /* buffer.type: disk */
    const char *buffer_path;  /* directory of the disk buffer (buffer_disk) */
    uint64_t buffer_max_size; /* bytes of unsent records kept (buffer_disk) */
};

struct sl_ship_cbs {
    /* n entries of s in the finished batch; cookie of the last of them.
     * delivered is false when they were dropped (already counted). */
    void (*ack)(void *ud, struct sl_ship_stream *s, size_t n, uint64_t last_cookie, bool delivered);
    /* A batch finished: sl_ship_full() may have turned false. */
    void (*resume)(void *ud);
};

struct sl_ship;

/* Strings in o are copied. Registers its metrics in m. */
struct sl_ship *sl_ship_new(uv_loop_t *loop, const struct sl_ship_opts *o,
                            const struct sl_ship_cbs *cbs, void *ud, struct sl_metrics *m);
/* Reports a disk buffer that could not be opened in sl_ship_new (the ship then
 * works in memory mode): returns 0, or SL_EIO / SL_EINVAL with
 * "buffer.path: ..." in err. Call once after sl_ship_new. */
int sl_ship_start(struct sl_ship *s, struct sl_buf *err);
/* Adds one entry (line copied). May seal the batch. */
void sl_ship_add(struct sl_ship *s, struct sl_ship_stream *st, int64_t ts_ns, struct sl_bytes line,
                 uint64_t cookie);
/* Same, with structured metadata (names and values copied; at most 64 pairs
 * are kept). Sent in every protocol: the native entry's third element,
 * Loki JSON's third value element, Loki protobuf's structuredMetadata. */
void sl_ship_add_meta(struct sl_ship *s, struct sl_ship_stream *st, int64_t ts_ns,
                      struct sl_bytes line, const struct sl_label *meta, size_t nmeta,
                      uint64_t cookie);
/* True while the caller must not add more (see above). */
bool sl_ship_full(const struct sl_ship *s);
/* Sends what is buffered as soon as possible, and from now on seals every
 * batch at once (shutdown). */
void sl_ship_drain(struct sl_ship *s);
/* Nothing buffered, nothing in flight. */
bool sl_ship_idle(const struct sl_ship *s);
/* Entries buffered or in flight. */
size_t sl_ship_pending(const struct sl_ship *s);
/* Cancels what is in flight (no ack callbacks), frees once libuv is done. */
void sl_ship_free(struct sl_ship *s);

#endif
