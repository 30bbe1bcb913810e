/* Little-endian integers and unsigned varints (LEB128, as protobuf and Go's
 * encoding/binary write them) for the disk formats: chunks, index files and
 * the ingester's blocks. Pure inline functions, thread-safe. */
#ifndef SL_WIRE_H
#define SL_WIRE_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

static inline void sl_put_le32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

static inline void sl_put_le64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (8 * i));
}

static inline uint32_t sl_get_le32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static inline uint64_t sl_get_le64(const char *p)
{
    return (uint64_t)sl_get_le32(p) | (uint64_t)sl_get_le32(p + 4) << 32;
}

/* Appends v as an unsigned varint (1 to 10 bytes). */
static inline void sl_buf_put_uvarint(struct sl_buf *b, uint64_t v)
{
    char *p = sl_buf_reserve(b, 10);
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (char)v;
    sl_buf_commit(b, n);
}

/* Reads a varint at *p (not past end) and advances *p. Returns 0, or
 * SL_ECORRUPT if the input ends first or the varint is longer than 10 bytes. */
static inline int sl_get_uvarint(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char c = (unsigned char)*(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return SL_ECORRUPT;
}

#endif
