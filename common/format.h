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

/* --- chunks (aggregator/chunk/chunk.h has the layout) --- */
/* Magic at both ends: the head identifies the object, the tail lets a reader
 * that fetched only the end (a ranged GET) recognise the footer. */
#define SL_CHUNK_MAGIC   "SLCK"
#define SL_CHUNK_VERSION 1
/* magic 4 + version 1 + codec 1 + flags 2 + labels length 4. */
#define SL_CHUNK_HEADER_SIZE 12
/* entries 4 + min 8 + max 8 + raw_len 4 + zlen 4 + flags 1 + reserved 3;
 * fixed, so a block's time bounds are readable without decoding anything. */
#define SL_CHUNK_BLOCK_HEADER_SIZE 32
/* offset 8 + size 4 + entries 4 + min 8 + max 8: fixed-width table entries
 * allow skipping blocks by time straight from the table. */
#define SL_CHUNK_TABLE_ENTRY_SIZE 32
/* table offset 8 + nblocks 4 + table crc 4 + min 8 + max 8 + crc 4 + magic 4. */
#define SL_CHUNK_FOOTER_SIZE 40
/* A block never decompresses to more than this: blocks are ~256 KiB raw, and
 * one line is at most limits.max_line_size; the bound keeps a corrupt or
 * hostile raw_len from making a reader allocate without limit. */
#define SL_CHUNK_MAX_BLOCK_RAW (64u << 20)
/* The canonical label set of a stream is at most 15 * (1024 + 2048) bytes
 * plus quoting; anything longer in a header is corruption. */
#define SL_CHUNK_MAX_LABELS (256u << 10)

/* --- index (aggregator/index/index.h has the layout) --- */
#define SL_INDEX_MAGIC   "SLIX"
#define SL_INDEX_VERSION 1
/* magic 4 + version 1 + reserved 3. */
#define SL_INDEX_HEADER_SIZE 8
/* 6 section offsets of 8 bytes (symbols, symbol table, series, series
 * table, postings, postings table) + 3 counts of 4 + crc32c of the body 4 +
 * crc32c of the footer 4 + magic 4: fixed size, read first. */
#define SL_INDEX_FOOTER_SIZE 72
/* Fixed-width tables so that lookups are binary searches over the mapped
 * file: symbol offsets (u32), series offsets (u64), postings entries
 * (u32 name symbol, u32 value symbol, u64 offset). */
#define SL_INDEX_SYMTAB_ENTRY  4
#define SL_INDEX_SERIES_ENTRY  8
#define SL_INDEX_POSTING_ENTRY 16
/* Index files cover one UTC day: the period in keys is the day number since
 * the epoch (as Loki's index tables), so a query lists only its days. */
#define SL_INDEX_PERIOD_NS (86400LL * 1000000000LL)

/* --- tenants --- */
/* A tenant becomes part of object keys, so it is restricted (DESIGN.md). */
#define SL_TENANT_MAX_LEN 150
#define SL_TENANT_DEFAULT "anonymous"

/* --- agent positions file --- */
#define SL_POSITIONS_VERSION 1

#endif
