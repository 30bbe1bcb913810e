/* The agent's processing stages (DESIGN.md "Agent", config key `pipeline:`),
 * run on every entry between the format parser and the shipper. Promtail's
 * documented semantics, stage by stage:
 *
 *   multiline      joins lines into blocks (firstline regex, max_wait_time,
 *                  max_lines); must be the first stage; blocks are kept per
 *                  source stream (stdout and stderr apart)
 *   json           JMESPath-lite expressions (a.b, a[0], a[-1], "quoted.key")
 *                  into the extracted map; source; drop_malformed
 *   logfmt         mapping (extracted name: logfmt key); source
 *   regex          PCRE2 (JIT) named groups into the extracted map; source
 *   labels         extracted values -> stream labels (name: source)
 *   structured_metadata  extracted values -> entry metadata (name: source)
 *   static_labels  fixed labels
 *   labeldrop / labelkeep (alias labelallow)  remove labels by name
 *   drop           source(s)+separator with expression or value, older_than,
 *                  longer_than (all given conditions must hold); counted
 *                  under drop_counter_reason (default "drop_stage")
 *   timestamp      source, format (RFC3339, RFC3339Nano, Unix, UnixMs,
 *                  UnixUs, UnixNs, Go's named layouts and reference layouts
 *                  such as "2006-01-02 15:04:05.000"), fallback_formats,
 *                  location (IANA zone, from the system's zoneinfo),
 *                  action_on_failure fudge|skip
 *   output         source -> the entry's new line
 *
 * Extracted values are bytes: JSON strings unescaped, other JSON scalars as
 * their text, JSON objects and arrays as their JSON text, null absent.
 *
 * Labels a stage adds must be valid: names [A-Za-z_][A-Za-z0-9_]* of at most
 * 1024 bytes, values UTF-8 of 1..2048 bytes, at most 15 labels; anything
 * else is skipped and counted in
 * sluice_agent_pipeline_labels_skipped_total{reason}. Dropped entries are
 * counted in sluice_agent_lines_dropped_total{reason} and logged
 * (rate-limited).
 *
 * Memory: one arena per pipeline, cleared for every entry (the pipeline runs
 * on one thread, one entry at a time); regexes are compiled and JIT-compiled
 * once, with their match data. Multiline blocks use a buffer per source
 * stream that is reused. Nothing is allocated per line once warm.
 *
 * Threading: one loop thread; nothing here is thread-safe. */
#ifndef SL_AGENT_PIPELINE_H
#define SL_AGENT_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"
#include "common/config.h"
#include "common/labels.h"

struct sl_metrics;
struct sl_pipeline;
struct sl_pipeline_stream;

/* Distinct label sets one source may produce (beyond that an entry keeps
 * the source's own labels, counted as skipped, reason "label_sets"). */
#define SL_PIPELINE_MAX_LABEL_SETS 256

/* Builds the pipeline from the `pipeline:` node (a sequence of one-key maps,
 * {stage_name: options}). node NULL or an empty sequence: *out = NULL and 0
 * (no pipeline, nothing to run). metrics may be NULL (config validation).
 * Returns 0 or SL_EINVAL with one line in err naming the stage index, the
 * stage and the key, e.g.
 *   config: pipeline[2] (regex): line 14: expression: missing ")" at offset 3 */
int sl_pipeline_new(const struct sl_cfgnode *node, struct sl_metrics *metrics,
                    struct sl_pipeline **out, struct sl_buf *err);
void sl_pipeline_free(struct sl_pipeline *p);

/* Clocks (tests): monotonic for multiline deadlines, wall for older_than and
 * timestamps. Defaults sl_mono_ns and sl_now_ns. */
void sl_pipeline_set_clocks(struct sl_pipeline *p, int64_t (*mono)(void), int64_t (*wall)(void));

/* One input line. */
struct sl_pipeline_in {
    int64_t ts_ns;
    struct sl_bytes line; /* borrowed for the call */
    int stream;           /* 0 stdout, 1 stderr: separate multiline blocks */
    /* Opaque to the pipeline, except that two cookies with the same top 16
     * bits are ordered by their low 48 bits (agent/tail/tail.h's layout:
     * truncation epoch, restart offset). */
    uint64_t cookie;
};

/* One finished entry. Everything is valid during the callback only, except
 * labels, which stay valid until the stream is freed. */
struct sl_pipeline_out {
    int64_t ts_ns;
    struct sl_bytes line;
    const struct sl_labels *labels; /* sorted */
    /* 0: labels are the stream's base labels; otherwise 1..SL_PIPELINE_MAX_LABEL_SETS,
     * a stable id of this label set within the stream. */
    uint32_t label_set;
    const struct sl_label *meta; /* structured metadata, may be NULL */
    size_t nmeta;
    /* The input cookie of the entry's last line, lowered to the restart
     * point of any block still held for the other stream, so acknowledging
     * it never moves a position past a line not yet handed on. */
    uint64_t cookie;
    bool dropped;       /* the entry was dropped (already counted) */
    const char *reason; /* dropped: the counter's reason */
};

typedef void (*sl_pipeline_emit_fn)(void *ud, const struct sl_pipeline_out *o);

/* Per-source state (one per tailed file): multiline blocks, the last good
 * timestamp (fudge), interned label sets. base labels are borrowed and must
 * stay valid and sorted for the stream's life. */
struct sl_pipeline_stream *sl_pipeline_stream_new(struct sl_pipeline *p,
                                                  const struct sl_labels *base,
                                                  sl_pipeline_emit_fn emit, void *ud);
/* Frees the stream, discarding blocks still held (flush first to keep
 * them). May be called after sl_pipeline_free(). */
void sl_pipeline_stream_free(struct sl_pipeline_stream *s);

/* Runs one line. Returns true if the line starts a new entry, which is
 * reported exactly once through emit (kept or dropped) — possibly before
 * this call returns, possibly later (multiline); false if it joined a block
 * already held. A caller that counts entries in flight counts one before the
 * call and takes it back on false. */
bool sl_pipeline_push(struct sl_pipeline_stream *s, const struct sl_pipeline_in *in);

/* Emits the blocks s holds (shutdown, tests). */
void sl_pipeline_stream_flush(struct sl_pipeline_stream *s);

/* Emits every block whose max_wait_time has passed at now (monotonic ns).
 * Returns the monotonic deadline of the next held block, or -1 if none.
 * The owner arms one timer on its loop for it; a deadline only ever moves
 * later, so firing early is harmless. */
int64_t sl_pipeline_expire(struct sl_pipeline *p, int64_t now_mono_ns);

/* Flushes every stream's blocks (shutdown). */
void sl_pipeline_flush_all(struct sl_pipeline *p);

/* True if the pipeline has a multiline stage (the owner needs a timer). */
bool sl_pipeline_has_multiline(const struct sl_pipeline *p);

#endif
