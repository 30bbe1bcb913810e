/* Configuration of sluice-aggregator: every key of DESIGN.md "Configuration
 * keys" (aggregator part), declared once in sl_agg_options[] (name, type,
 * default, field, doc). Loading, --help, --check-config and /config all come
 * from that table through common/config.h.
 *
 * Keys that no code reads yet (storage, ring, rate limits, ...) are declared
 * all the same so that real configuration files load. Not thread-safe: load
 * once at start. */
#ifndef SL_AGG_CONFIG_H
#define SL_AGG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"

struct sl_agg_config {
    /* server */
    char *server_listen;
    int64_t server_max_request_bytes;
    int64_t server_read_timeout_ns;
    char *server_log_level;
    /* auth */
    bool auth_enabled;
    /* top level */
    char *data_dir;
    char *target;
    /* storage */
    char *storage_backend;
    char *storage_fs_dir;
    char *s3_bucket;
    char *s3_region;
    char *s3_endpoint;
    bool s3_path_style;
    char *s3_access_key_id;
    char *s3_secret_access_key;
    char *s3_session_token;
    char *s3_ca_file;
    bool s3_insecure_skip_verify;
    int64_t s3_timeout_ns;
    int64_t s3_max_retries;
    /* wal */
    bool wal_enabled;
    char *wal_dir;
    char *wal_fsync;
    int64_t wal_segment_size;
    /* ingester */
    char *ing_chunk_encoding;
    int64_t ing_chunk_block_size;
    int64_t ing_chunk_target_size;
    int64_t ing_max_chunk_age_ns;
    int64_t ing_chunk_idle_period_ns;
    int64_t ing_flush_check_period_ns;
    bool ing_flush_on_shutdown;
    int64_t ing_index_upload_period_ns;
    int64_t ing_chunk_compression_level;
    int64_t ing_chunk_stored_block_size;
    int64_t ing_shutdown_flush_timeout_ns;
    /* ring */
    struct sl_strlist ring_members;
    char *ring_dns;
    int64_t ring_replication_factor;
    char *ring_secret;
    /* limits */
    /* Read as text so that fractions work ("0.5", as in Loki); the numbers
     * are in the _mb_f fields, filled by sl_agg_config_load. */
    char *lim_ingestion_rate_mb;
    char *lim_ingestion_burst_size_mb;
    double lim_ingestion_rate_mb_f;
    double lim_ingestion_burst_size_mb_f;
    int64_t lim_max_line_size;
    int64_t lim_max_structured_metadata_size;
    int64_t lim_max_structured_metadata_entries_count;
    int64_t lim_max_label_names_per_series;
    int64_t lim_max_label_name_length;
    int64_t lim_max_label_value_length;
    int64_t lim_max_streams_per_tenant;
    bool lim_reject_old_samples;
    int64_t lim_reject_old_samples_max_age_ns;
    int64_t lim_creation_grace_period_ns;
    int64_t lim_max_entries_limit_per_query;
    int64_t lim_max_query_series;
    int64_t lim_query_timeout_ns;
    int64_t lim_retention_period_ns;
    int64_t lim_max_concurrent_tail_requests;
    int64_t lim_max_query_bytes_read;
    /* querier */
    int64_t q_max_concurrency;
    int64_t q_split_queries_by_interval_ns;
    char *q_chunk_cache_dir;
    int64_t q_chunk_cache_max_size;
    int64_t q_index_cache_size;
    int64_t q_tail_max_duration_ns;
    int64_t q_tail_max_queued_bytes;
    /* compactor */
    bool compactor_enabled;
    int64_t compactor_interval_ns;
    int64_t compactor_orphan_grace_period_ns;
};

extern const struct sl_option sl_agg_options[];
extern const size_t sl_agg_noptions;

/* Loads defaults < file (path may be NULL) < sets, then checks the values
 * (enumerations, ranges). Returns 0, or SL_EINVAL/SL_ENOENT with one line in
 * err naming the key; on error cfg is released. cfg must be zeroed. */
int sl_agg_config_load(struct sl_agg_config *cfg, const char *path, const char *const *sets,
                       size_t nsets, struct sl_buf *err);
/* Checks enumerations and ranges of a loaded config. Returns 0 or SL_EINVAL
 * with a reason naming the key in err. */
int sl_agg_config_check(const struct sl_agg_config *cfg, struct sl_buf *err);
void sl_agg_config_release(struct sl_agg_config *cfg);

#endif
