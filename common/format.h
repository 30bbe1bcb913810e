/* Wire and disk formats: magics, versions, limits and key layouts, each with
 * the reason for its value. Readers check the version and refuse newer ones
 * with SL_EUNSUPP rather than guessing. */
#ifndef SL_FORMAT_H
#define SL_FORMAT_H

/* --- native push protocol (common/batch.h) --- */
/* Media type of the native push body; anything else on /api/v1/push is 415. */
#define SL_PUSH_CONTENT_TYPE "application/x-msgpack"
/* A decoded batch may expand to at most this many bytes: a guard against
 * decompression bombs, independent of server.max_request_bytes (which limits
 * the compressed body). Four times the default request limit. */
#define SL_PUSH_MAX_DECODED_BYTES (256ull << 20)

/* --- WAL (aggregator/wal) --- */
/* Segment files: "<dir>/<16 hex digit sequence>.wal". Each starts with an
 * 8-byte header: magic "SLWAL" + version byte + 2 reserved bytes, so a file
 * from another program or a future version is recognised, not misread. */
#define SL_WAL_MAGIC       "SLWAL"
#define SL_WAL_VERSION     1
#define SL_WAL_HEADER_SIZE 8
/* Record: [u32 length LE][u32 crc32c LE of payload][payload]. The length is
 * bounded so a torn or corrupt length cannot make replay allocate gigabytes. */
#define SL_WAL_RECORD_HEADER 8
#define SL_WAL_MAX_RECORD    (SL_PUSH_MAX_DECODED_BYTES + (1u << 20))

/* --- chunks (aggregator/chunk, a later issue) --- */
#define SL_CHUNK_MAGIC   "SLCK"
#define SL_CHUNK_VERSION 1

/* --- tenants --- */
/* A tenant becomes part of object keys, so it is restricted (DESIGN.md). */
#define SL_TENANT_MAX_LEN 150
#define SL_TENANT_DEFAULT "anonymous"

/* --- agent positions file --- */
#define SL_POSITIONS_VERSION 1

#endif
