/* Snappy block format (libsnappy, snappy-c.h): the compression of Loki's
 * protobuf push body. Block format, as Loki reads it (Go's snappy.Decode), not
 * the framed stream format.
 *
 * Both functions append to out (they do not clear it) and return 0 or an SL_E*
 * code: SL_ECORRUPT for input that is not a valid snappy block, SL_ETOOBIG when
 * the block declares more than max_out decompressed bytes (checked from the
 * block's header before anything is allocated: a guard against decompression
 * bombs). Thread-safe. */
#ifndef SL_SNAPPY_H
#define SL_SNAPPY_H

#include <stddef.h>

#include "common/buf.h"

int sl_snappy_compress(struct sl_buf *out, const void *in, size_t n);
int sl_snappy_decompress(struct sl_buf *out, const void *in, size_t n, size_t max_out);

#endif
