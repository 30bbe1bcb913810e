/* The aggregator's options table. Defaults are DESIGN.md's; a key is renamed
 * never, only added. */
#include "aggregator/config/agg_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

#define OFF(f) offsetof(struct sl_agg_config, f)

/* clang-format off */
const struct sl_option sl_agg_options[] = {
    {"server.listen", SL_OPT_STRING, "127.0.0.1:3100", OFF(server_listen),
     "HTTP listen address host:port (--listen)"},
    {"server.max_request_bytes", SL_OPT_SIZE, "64MiB", OFF(server_max_request_bytes),
     "largest request body accepted (413 above)"},
    {"server.read_timeout", SL_OPT_DURATION, "30s", OFF(server_read_timeout_ns),
     "a request must arrive completely within this time"},
    {"server.log_level", SL_OPT_STRING, "info", OFF(server_log_level),
     "debug | info | warn | error"},
    {"auth.enabled", SL_OPT_BOOL, "false", OFF(auth_enabled),
     "require X-Scope-OrgID on every request (401 without)"},
    {"data_dir", SL_OPT_STRING, "./data", OFF(data_dir),
     "directory for the WAL and the local store (--data-dir)"},
    {"target", SL_OPT_STRING, "all", OFF(target),
     "roles of this process: all | write | read | backend (--target)"},
    {"storage.backend", SL_OPT_STRING, "filesystem", OFF(storage_backend),
     "object store: filesystem | s3"},
    {"storage.filesystem.dir", SL_OPT_STRING, "${data_dir}/store", OFF(storage_fs_dir),
     "directory of the filesystem object store"},
    {"storage.s3.bucket", SL_OPT_STRING, "", OFF(s3_bucket), "S3 bucket"},
    {"storage.s3.region", SL_OPT_STRING, "us-east-1", OFF(s3_region), "S3 region"},
    {"storage.s3.endpoint", SL_OPT_STRING, "", OFF(s3_endpoint),
     "S3-compatible endpoint URL; empty for AWS"},
    {"storage.s3.path_style", SL_OPT_BOOL, "false", OFF(s3_path_style),
     "path-style bucket addressing"},
    {"storage.s3.access_key_id", SL_OPT_STRING, "", OFF(s3_access_key_id),
     "static access key; empty to use IRSA or instance credentials"},
    {"storage.s3.secret_access_key", SL_OPT_STRING, "", OFF(s3_secret_access_key),
     "static secret key"},
    {"storage.s3.session_token", SL_OPT_STRING, "", OFF(s3_session_token),
     "static session token"},
    {"storage.s3.ca_file", SL_OPT_STRING, "", OFF(s3_ca_file), "extra CA bundle for TLS"},
    {"storage.s3.insecure_skip_verify", SL_OPT_BOOL, "false", OFF(s3_insecure_skip_verify),
     "do not verify the TLS certificate (testing only)"},
    {"storage.s3.timeout", SL_OPT_DURATION, "30s", OFF(s3_timeout_ns), "timeout per S3 request"},
    {"storage.s3.max_retries", SL_OPT_INT, "5", OFF(s3_max_retries),
     "retries of a failed S3 request"},
    {"wal.enabled", SL_OPT_BOOL, "true", OFF(wal_enabled),
     "write-ahead log; off means acknowledged data is lost on a crash"},
    {"wal.dir", SL_OPT_STRING, "${data_dir}/wal", OFF(wal_dir), "WAL segment directory"},
    {"wal.fsync", SL_OPT_STRING, "batch", OFF(wal_fsync),
     "batch (group commit) | always (same as batch) | never (no fsync: unsafe)"},
    {"wal.segment_size", SL_OPT_SIZE, "64MiB", OFF(wal_segment_size),
     "a new segment file is started past this size"},
    {"ingester.chunk_encoding", SL_OPT_STRING, "zstd", OFF(ing_chunk_encoding),
     "chunk codec: zstd | gzip"},
    {"ingester.chunk_block_size", SL_OPT_SIZE, "256KiB", OFF(ing_chunk_block_size),
     "raw bytes per compressed block"},
    {"ingester.chunk_target_size", SL_OPT_SIZE, "1536KiB", OFF(ing_chunk_target_size),
     "a chunk is closed at this compressed size"},
    {"ingester.max_chunk_age", SL_OPT_DURATION, "2h", OFF(ing_max_chunk_age_ns),
     "a chunk is closed at this age; out-of-order window is half of it"},
    {"ingester.chunk_idle_period", SL_OPT_DURATION, "30m", OFF(ing_chunk_idle_period_ns),
     "a chunk without new entries for this long is closed"},
    {"ingester.flush_check_period", SL_OPT_DURATION, "30s", OFF(ing_flush_check_period_ns),
     "how often chunks are checked for closing"},
    {"ingester.flush_on_shutdown", SL_OPT_BOOL, "true", OFF(ing_flush_on_shutdown),
     "flush every chunk to the store on shutdown"},
    {"ingester.index_upload_period", SL_OPT_DURATION, "5m", OFF(ing_index_upload_period_ns),
     "how often an index file is written for flushed chunks"},
    {"ingester.chunk_compression_level", SL_OPT_INT, "0", OFF(ing_chunk_compression_level),
     "compression level of stored chunks, applied by the flush workers; 0: the codec's "
     "default (zstd 9, gzip 6); zstd 1 stores the ingester's level-1 blocks as they are"},
    {"ingester.chunk_stored_block_size", SL_OPT_SIZE, "1MiB", OFF(ing_chunk_stored_block_size),
     "raw bytes per block of stored chunks: when recompressing, the flush joins consecutive "
     "blocks up to this size (better ratio; a query decompresses whole blocks); 0: keep the "
     "ingester's blocks"},
    {"ingester.shutdown_flush_timeout", SL_OPT_DURATION, "30s",
     OFF(ing_shutdown_flush_timeout_ns),
     "longest flush on shutdown; what is not stored by then stays in the WAL for the next start"},
    {"ring.members", SL_OPT_STRLIST, "[]", OFF(ring_members),
     "static list of write replicas (scale-out)"},
    {"ring.dns", SL_OPT_STRING, "", OFF(ring_dns),
     "headless service name resolving to the write replicas"},
    {"ring.replication_factor", SL_OPT_INT, "1", OFF(ring_replication_factor),
     "copies of each stream"},
    {"ring.secret", SL_OPT_STRING, "", OFF(ring_secret), "shared secret between replicas"},
    {"limits.ingestion_rate_mb", SL_OPT_STRING, "4", OFF(lim_ingestion_rate_mb),
     "per-tenant ingestion rate of raw line bytes, MB/s (2^20 bytes; fractions allowed; "
     "0: no limit); above it pushes get 429 with Retry-After"},
    {"limits.ingestion_burst_size_mb", SL_OPT_STRING, "6", OFF(lim_ingestion_burst_size_mb),
     "per-tenant ingestion burst, MB (fractions allowed)"},
    {"limits.max_line_size", SL_OPT_SIZE, "256KiB", OFF(lim_max_line_size),
     "longer lines are rejected (line_too_long)"},
    {"limits.max_structured_metadata_size", SL_OPT_SIZE, "64KiB",
     OFF(lim_max_structured_metadata_size),
     "bytes of an entry's structured metadata names and values; larger entries are rejected "
     "(structured_metadata_too_large); 0: no limit"},
    {"limits.max_structured_metadata_entries_count", SL_OPT_INT, "128",
     OFF(lim_max_structured_metadata_entries_count),
     "structured metadata pairs of an entry; more are rejected (structured_metadata_too_many); "
     "0: no limit"},
    {"limits.max_label_names_per_series", SL_OPT_INT, "15", OFF(lim_max_label_names_per_series),
     "labels per stream"},
    {"limits.max_label_name_length", SL_OPT_INT, "1024", OFF(lim_max_label_name_length),
     "bytes per label name"},
    {"limits.max_label_value_length", SL_OPT_INT, "2048", OFF(lim_max_label_value_length),
     "bytes per label value"},
    {"limits.max_streams_per_tenant", SL_OPT_INT, "10000", OFF(lim_max_streams_per_tenant),
     "streams in memory per tenant; 0 for no limit"},
    {"limits.reject_old_samples", SL_OPT_BOOL, "true", OFF(lim_reject_old_samples),
     "reject entries older than reject_old_samples_max_age"},
    {"limits.reject_old_samples_max_age", SL_OPT_DURATION, "168h",
     OFF(lim_reject_old_samples_max_age_ns), "age limit for reject_old_samples"},
    {"limits.creation_grace_period", SL_OPT_DURATION, "10m", OFF(lim_creation_grace_period_ns),
     "entries further in the future are rejected (too_far_in_future)"},
    {"limits.max_entries_limit_per_query", SL_OPT_INT, "5000",
     OFF(lim_max_entries_limit_per_query), "largest limit= of a log query"},
    {"limits.max_query_series", SL_OPT_INT, "500", OFF(lim_max_query_series),
     "series per metric query"},
    {"limits.query_timeout", SL_OPT_DURATION, "1m", OFF(lim_query_timeout_ns),
     "queries running longer are cancelled"},
    {"limits.retention_period", SL_OPT_DURATION, "0s", OFF(lim_retention_period_ns),
     "data older than this is deleted by the compactor; 0s keeps everything"},
    {"limits.max_query_bytes_read", SL_OPT_SIZE, "0B", OFF(lim_max_query_bytes_read),
     "raw line bytes one query may read (400 past it, as Loki); 0B: unlimited"},
    {"limits.max_concurrent_tail_requests", SL_OPT_INT, "10",
     OFF(lim_max_concurrent_tail_requests), "live tails (/loki/api/v1/tail) open per tenant"},
    {"querier.max_concurrency", SL_OPT_INT, "0", OFF(q_max_concurrency),
     "threads one query may use (chunk decoding); 0: the number of CPUs, 1: serial"},
    {"querier.split_queries_by_interval", SL_OPT_DURATION, "1h",
     OFF(q_split_queries_by_interval_ns),
     "a metric query_range longer than this is cut into step-aligned parts evaluated in "
     "parallel (at most max_concurrency); 0s disables"},
    {"querier.chunk_cache.dir", SL_OPT_STRING, "${data_dir}/cache/chunks",
     OFF(q_chunk_cache_dir), "local disk cache of chunks fetched from S3"},
    {"querier.chunk_cache.max_size", SL_OPT_SIZE, "1GiB", OFF(q_chunk_cache_max_size),
     "bytes kept in the chunk cache (least recently used evicted); 0 disables it"},
    {"querier.index_cache_size", SL_OPT_SIZE, "256MiB", OFF(q_index_cache_size),
     "bytes of index files kept in memory (least recently used dropped)"},
    {"querier.tail_max_duration", SL_OPT_DURATION, "1h", OFF(q_tail_max_duration_ns),
     "a live tail is closed after this long"},
    {"querier.tail_max_queued_bytes", SL_OPT_SIZE, "4MiB", OFF(q_tail_max_queued_bytes),
     "bytes a live tail may queue for a slow client before entries are dropped"},
    {"compactor.enabled", SL_OPT_BOOL, "true", OFF(compactor_enabled),
     "run the compactor in targets all and backend"},
    {"compactor.interval", SL_OPT_DURATION, "10m", OFF(compactor_interval_ns),
     "time between compactor runs (index merge and retention)"},
    {"compactor.orphan_grace_period", SL_OPT_DURATION, "24h",
     OFF(compactor_orphan_grace_period_ns),
     "chunk objects no index file references are deleted once older than this; "
     "0s: never (must exceed the longest index upload delay)"},
};
/* clang-format on */

const size_t sl_agg_noptions = sizeof(sl_agg_options) / sizeof(sl_agg_options[0]);

static bool one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0)
            return true;
    return false;
}

/* A non-negative decimal number of MB, e.g. "4" or "0.5". */
static int parse_mb(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno || !(v >= 0) || v > 1e9)
        return SL_EINVAL;
    *out = v;
    return 0;
}

static int bad(struct sl_buf *err, const char *key, const char *why)
{
    if (err)
        sl_buf_appendf(err, "config: %s: %s", key, why);
    return SL_EINVAL;
}

int sl_agg_config_check(const struct sl_agg_config *c, struct sl_buf *err)
{
    static const char *const targets[] = {"all", "write", "read", "backend", NULL};
    static const char *const fsyncs[] = {"batch", "always", "never", NULL};
    static const char *const backends[] = {"filesystem", "s3", NULL};
    static const char *const encodings[] = {"zstd", "gzip", NULL};
    enum sl_log_level lvl;

    if (!one_of(c->target, targets))
        return bad(err, "target", "expected all, write, read or backend");
    if (!one_of(c->wal_fsync, fsyncs))
        return bad(err, "wal.fsync", "expected batch, always or never");
    if (!one_of(c->storage_backend, backends))
        return bad(err, "storage.backend", "expected filesystem or s3");
    if (!one_of(c->ing_chunk_encoding, encodings))
        return bad(err, "ingester.chunk_encoding", "expected zstd or gzip");
    if (sl_log_level_parse(c->server_log_level, &lvl) != 0)
        return bad(err, "server.log_level", "expected debug, info, warn or error");
    if (c->server_listen[0] == '\0')
        return bad(err, "server.listen", "must not be empty");
    if (c->data_dir[0] == '\0')
        return bad(err, "data_dir", "must not be empty");
    if (c->wal_enabled && c->wal_dir[0] == '\0')
        return bad(err, "wal.dir", "must not be empty");
    if (c->server_max_request_bytes <= 0)
        return bad(err, "server.max_request_bytes", "must be positive");
    if (c->wal_segment_size < 4096)
        return bad(err, "wal.segment_size", "must be at least 4KiB");
    if (c->ing_chunk_block_size < 1024 || c->ing_chunk_block_size > (64 << 20))
        return bad(err, "ingester.chunk_block_size", "must be between 1KiB and 64MiB");
    if (c->ing_max_chunk_age_ns <= 0)
        return bad(err, "ingester.max_chunk_age", "must be positive");
    if (c->lim_max_concurrent_tail_requests < 1 || c->lim_max_concurrent_tail_requests > 100000)
        return bad(err, "limits.max_concurrent_tail_requests", "must be between 1 and 100000");
    if (c->q_tail_max_duration_ns <= 0)
        return bad(err, "querier.tail_max_duration", "must be positive");
    if (c->q_tail_max_queued_bytes < 4096)
        return bad(err, "querier.tail_max_queued_bytes", "must be at least 4KiB");
    if (c->compactor_interval_ns <= 0)
        return bad(err, "compactor.interval", "must be positive");
    if (c->compactor_orphan_grace_period_ns < 0)
        return bad(err, "compactor.orphan_grace_period", "must not be negative");
    if (c->ing_chunk_stored_block_size < 0 || c->ing_chunk_stored_block_size > (64 << 20))
        return bad(err, "ingester.chunk_stored_block_size", "must be between 0 and 64MiB");
    if (c->ing_shutdown_flush_timeout_ns <= 0)
        return bad(err, "ingester.shutdown_flush_timeout", "must be positive");
    if (c->ing_chunk_compression_level < 0 ||
        c->ing_chunk_compression_level > (strcmp(c->ing_chunk_encoding, "gzip") == 0 ? 9 : 19))
        return bad(err, "ingester.chunk_compression_level",
                   "expected 0 (default), 1-19 for zstd or 1-9 for gzip");
    if (c->lim_max_line_size <= 0)
        return bad(err, "limits.max_line_size", "must be positive");
    if (c->lim_max_structured_metadata_size < 0)
        return bad(err, "limits.max_structured_metadata_size", "must not be negative");
    if (c->lim_max_structured_metadata_entries_count < 0)
        return bad(err, "limits.max_structured_metadata_entries_count", "must not be negative");
    if (c->lim_max_label_names_per_series <= 0 || c->lim_max_label_name_length <= 0 ||
        c->lim_max_label_value_length <= 0)
        return bad(err, "limits.max_label_*", "must be positive");
    double mb;
    if (parse_mb(c->lim_ingestion_rate_mb, &mb) != 0)
        return bad(err, "limits.ingestion_rate_mb", "expected a number of MB/s, e.g. 4 or 0.5");
    if (parse_mb(c->lim_ingestion_burst_size_mb, &mb) != 0)
        return bad(err, "limits.ingestion_burst_size_mb", "expected a number of MB, e.g. 6");
    if (c->lim_max_streams_per_tenant < 0)
        return bad(err, "limits.max_streams_per_tenant", "must not be negative");
    return 0;
}

int sl_agg_config_load(struct sl_agg_config *cfg, const char *path, const char *const *sets,
                       size_t nsets, struct sl_buf *err)
{
    int rc = sl_config_load(sl_agg_options, sl_agg_noptions, cfg, path, sets, nsets, err);
    if (rc != 0)
        return rc;
    rc = sl_agg_config_check(cfg, err);
    if (rc != 0) {
        sl_agg_config_release(cfg);
        return rc;
    }
    parse_mb(cfg->lim_ingestion_rate_mb, &cfg->lim_ingestion_rate_mb_f);
    parse_mb(cfg->lim_ingestion_burst_size_mb, &cfg->lim_ingestion_burst_size_mb_f);
    return 0;
}

void sl_agg_config_release(struct sl_agg_config *cfg)
{
    sl_config_release(sl_agg_options, sl_agg_noptions, cfg);
}
