/* Compression helpers: zstd (the default everywhere) and gzip (interop).
 *
 * All functions append to `out` (they do not clear it) and return 0 or an
 * SL_E* code: SL_ECORRUPT for undecodable input, SL_ETOOBIG when the
 * decompressed size would exceed max_out (a guard against decompression
 * bombs). Thread-safe; each call uses its own stream state. */
#ifndef SL_COMPRESS_H
#define SL_COMPRESS_H

#include <stddef.h>

#include "common/buf.h"

enum sl_codec { SL_CODEC_NONE = 0, SL_CODEC_ZSTD = 1, SL_CODEC_GZIP = 2 };

/* "zstd", "gzip", "none" or "" (none); also accepts "identity". Returns 0 or
 * SL_EUNSUPP. Used for Content-Encoding and config values. */
int sl_codec_parse(const char *name, size_t n, enum sl_codec *out);
const char *sl_codec_name(enum sl_codec c);

int sl_zstd_compress(struct sl_buf *out, const void *in, size_t n, int level);

/* A zstd compression context kept across calls, for callers that compress
 * one body after another (the agent's batches): sl_zstd_compress makes and
 * frees one per call, ~0.6 MiB at level 1 for 1 MiB inputs. Not thread-safe:
 * one call at a time per context, from any thread. The caller owns it.
 * sl_zstd_cctx_new aborts when out of memory, as sl_malloc does. */
struct sl_zstd_cctx;
struct sl_zstd_cctx *sl_zstd_cctx_new(void);
void sl_zstd_cctx_free(struct sl_zstd_cctx *c); /* NULL is fine */
/* As sl_zstd_compress (same output, same errors), with c's memory. */
int sl_zstd_compress_cctx(struct sl_zstd_cctx *c, struct sl_buf *out, const void *in, size_t n,
                          int level);
int sl_zstd_decompress(struct sl_buf *out, const void *in, size_t n, size_t max_out);
int sl_gzip_compress(struct sl_buf *out, const void *in, size_t n, int level);
/* Accepts gzip and zlib framing, and concatenated gzip members. */
int sl_gzip_decompress(struct sl_buf *out, const void *in, size_t n, size_t max_out);

/* Dispatch on codec; level 0 picks the codec's default (zstd 1, gzip 6).
 * SL_CODEC_NONE copies. */
int sl_compress(enum sl_codec c, struct sl_buf *out, const void *in, size_t n, int level);
int sl_decompress(enum sl_codec c, struct sl_buf *out, const void *in, size_t n, size_t max_out);

#endif
