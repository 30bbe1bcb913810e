/* zstd and gzip helpers (compress.h).
 *
 * Decompression always streams into `out` with at most max_out + 1 bytes of
 * room, so a bomb is detected after producing one byte too many rather than
 * after allocating what its header claims (zstd frames may omit the content
 * size, and gzip never states it reliably). On any error out is restored to
 * its length on entry. */
#include "common/compress.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"

#define ZSTD_DEFAULT_LEVEL 1
#define GZIP_DEFAULT_LEVEL 6
/* First output step when the size is unknown; doubled as output grows. */
#define DECOMP_STEP (64u << 10)
/* zlib counts in uInt: feed big inputs in slices. */
#define ZLIB_SLICE (1u << 30)
/* Window limits for decompression (log2 bytes): 23 covers every standard
 * level without --long; 27 is zstd's own default limit (its constant sits in
 * the unstable part of zstd.h). */
#define ZSTD_WLOG_MIN 23
#define ZSTD_WLOG_MAX 27

int sl_codec_parse(const char *name, size_t n, enum sl_codec *out)
{
    static const struct {
        const char *name;
        enum sl_codec c;
    } names[] = {
        {"zstd", SL_CODEC_ZSTD}, {"gzip", SL_CODEC_GZIP},     {"x-gzip", SL_CODEC_GZIP},
        {"none", SL_CODEC_NONE}, {"identity", SL_CODEC_NONE},
    };
    if (n == 0) {
        *out = SL_CODEC_NONE;
        return 0;
    }
    /* Content-Encoding tokens are case-insensitive (RFC 9110). */
    for (size_t k = 0; k < SL_ARRAY_LEN(names); k++) {
        if (strlen(names[k].name) == n && strncasecmp(names[k].name, name, n) == 0) {
            *out = names[k].c;
            return 0;
        }
    }
    return SL_EUNSUPP;
}

const char *sl_codec_name(enum sl_codec c)
{
    switch (c) {
    case SL_CODEC_ZSTD:
        return "zstd";
    case SL_CODEC_GZIP:
        return "gzip";
    case SL_CODEC_NONE:
        return "none";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ zstd */

int sl_zstd_compress(struct sl_buf *out, const void *in, size_t n, int level)
{
    if (level == 0)
        level = ZSTD_DEFAULT_LEVEL;
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return SL_EINVAL;
    size_t bound = ZSTD_compressBound(n);
    if (ZSTD_isError(bound))
        return SL_ETOOBIG;
    char *p = sl_buf_reserve(out, bound);
    size_t r = ZSTD_compress(p, bound, in, n, level);
    if (ZSTD_isError(r))
        return SL_EINVAL; /* cannot happen with a bound-sized buffer */
    sl_buf_commit(out, r);
    return 0;
}

struct sl_zstd_cctx {
    ZSTD_CCtx *z;
};

struct sl_zstd_cctx *sl_zstd_cctx_new(void)
{
    struct sl_zstd_cctx *c = SL_NEW(struct sl_zstd_cctx);
    c->z = ZSTD_createCCtx();
    if (!c->z) {
        sl_log(SL_LOG_ERROR, "out of memory for a zstd context, aborting", NULL);
        abort();
    }
    return c;
}

void sl_zstd_cctx_free(struct sl_zstd_cctx *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->z);
    sl_free(c);
}

int sl_zstd_compress_cctx(struct sl_zstd_cctx *c, struct sl_buf *out, const void *in, size_t n,
                          int level)
{
    if (level == 0)
        level = ZSTD_DEFAULT_LEVEL;
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return SL_EINVAL;
    size_t bound = ZSTD_compressBound(n);
    if (ZSTD_isError(bound))
        return SL_ETOOBIG;
    char *p = sl_buf_reserve(out, bound);
    /* Same frame as ZSTD_compress: it is this call with a context of its own. */
    size_t r = ZSTD_compressCCtx(c->z, p, bound, in, n, level);
    if (ZSTD_isError(r))
        return SL_EINVAL; /* cannot happen with a bound-sized buffer */
    sl_buf_commit(out, r);
    return 0;
}

static size_t ceil_log2(size_t v)
{
    size_t l = 0;
    while (l < 63 && ((size_t)1 << l) < v)
        l++;
    return l;
}

/* Room for the next output step: grows with what is already out, never past
 * one byte beyond max_out (that byte is how a bomb shows itself). */
static size_t next_room(size_t produced, size_t max_out, size_t hint)
{
    size_t room = produced > hint ? produced : hint;
    size_t left = max_out - produced; /* produced <= max_out here */
    if (room > left)
        room = left;
    return room + 1;
}

static int zstd_map_error(size_t r)
{
    ZSTD_ErrorCode e = ZSTD_getErrorCode(r);
    if (e == ZSTD_error_frameParameter_windowTooLarge)
        return SL_ETOOBIG;
    if (e == ZSTD_error_memory_allocation)
        return SL_ENOMEM;
    return SL_ECORRUPT;
}

static int zstd_stream(ZSTD_DCtx *dctx, struct sl_buf *out, const void *in, size_t n,
                       size_t max_out, size_t hint)
{
    ZSTD_inBuffer ib = {in, n, 0};
    size_t produced = 0, ret = 1;
    for (;;) {
        size_t room = next_room(produced, max_out, hint);
        ZSTD_outBuffer ob = {sl_buf_reserve(out, room), room, 0};
        ret = ZSTD_decompressStream(dctx, &ob, &ib);
        if (ZSTD_isError(ret))
            return zstd_map_error(ret);
        sl_buf_commit(out, ob.pos);
        produced += ob.pos;
        if (produced > max_out)
            return SL_ETOOBIG;
        /* Output not full: the decoder flushed all it could from the input. */
        if (ib.pos == ib.size && ob.pos < ob.size)
            break;
    }
    /* ret == 0: the last frame is complete; anything else is a cut body. */
    return ret == 0 ? 0 : SL_ECORRUPT;
}

int sl_zstd_decompress(struct sl_buf *out, const void *in, size_t n, size_t max_out)
{
    size_t start = out->len, hint = DECOMP_STEP;
    if (n == 0)
        return SL_ECORRUPT;
    /* Cheap early answers from the first frame header, when it has one. */
    unsigned long long csize = ZSTD_getFrameContentSize(in, n);
    if (csize == ZSTD_CONTENTSIZE_ERROR)
        return SL_ECORRUPT;
    if (csize != ZSTD_CONTENTSIZE_UNKNOWN) {
        if (csize > max_out)
            return SL_ETOOBIG;
        if (csize + 1 > hint)
            hint = (size_t)csize + 1;
    }
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx)
        return SL_ENOMEM;
    /* The window is memory the decoder allocates up front: no larger than
     * needed for max_out, but never below what standard levels use (8 MiB)
     * nor above zstd's default limit (128 MiB). */
    size_t wlog = ceil_log2(max_out);
    wlog = wlog < ZSTD_WLOG_MIN ? ZSTD_WLOG_MIN : wlog > ZSTD_WLOG_MAX ? ZSTD_WLOG_MAX : wlog;
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, (int)wlog);
    int rc = zstd_stream(dctx, out, in, n, max_out, hint);
    ZSTD_freeDCtx(dctx);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* ------------------------------------------------------------------ gzip */

int sl_gzip_compress(struct sl_buf *out, const void *in, size_t n, int level)
{
    z_stream z;
    if (level == 0)
        level = GZIP_DEFAULT_LEVEL;
    if (level < 1 || level > 9)
        return SL_EINVAL;
    memset(&z, 0, sizeof(z));
    /* windowBits 15 + 16: gzip wrapper rather than zlib's. */
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return SL_ENOMEM;
    const unsigned char *src = in;
    size_t left = n;
    int zr;
    do {
        size_t room = deflateBound(&z, left > ZLIB_SLICE ? ZLIB_SLICE : left);
        if (room > ZLIB_SLICE)
            room = ZLIB_SLICE;
        z.next_out = (unsigned char *)sl_buf_reserve(out, room);
        z.avail_out = (uInt)room;
        if (z.avail_in == 0) {
            z.next_in = (unsigned char *)src;
            z.avail_in = (uInt)(left > ZLIB_SLICE ? ZLIB_SLICE : left);
            src += z.avail_in;
            left -= z.avail_in;
        }
        zr = deflate(&z, left ? Z_NO_FLUSH : Z_FINISH);
        sl_buf_commit(out, room - z.avail_out);
    } while (zr == Z_OK || zr == Z_BUF_ERROR);
    deflateEnd(&z);
    return zr == Z_STREAM_END ? 0 : SL_EINVAL;
}

static int gzip_stream(z_stream *z, struct sl_buf *out, const unsigned char *in, size_t n,
                       size_t max_out)
{
    size_t produced = 0, left = n;
    int zr = Z_OK;
    for (;;) {
        if (z->avail_in == 0 && left) {
            z->next_in = (unsigned char *)in;
            z->avail_in = (uInt)(left > ZLIB_SLICE ? ZLIB_SLICE : left);
            in += z->avail_in;
            left -= z->avail_in;
        }
        size_t room = next_room(produced, max_out, DECOMP_STEP);
        if (room > ZLIB_SLICE)
            room = ZLIB_SLICE;
        z->next_out = (unsigned char *)sl_buf_reserve(out, room);
        z->avail_out = (uInt)room;
        zr = inflate(z, Z_NO_FLUSH);
        sl_buf_commit(out, room - z->avail_out);
        produced += room - z->avail_out;
        if (produced > max_out)
            return SL_ETOOBIG;
        if (zr == Z_STREAM_END) {
            if (z->avail_in == 0 && left == 0)
                return 0;
            /* Another member follows (gzip allows concatenation; so does
             * the 15+32 auto-detection for zlib). Trailing garbage fails the
             * next header check. */
            if (inflateReset(z) != Z_OK)
                return SL_ECORRUPT;
            continue;
        }
        if (zr == Z_MEM_ERROR)
            return SL_ENOMEM;
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return SL_ECORRUPT; /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
        /* No progress possible: input is exhausted mid-stream. */
        if (z->avail_in == 0 && left == 0 && z->avail_out > 0)
            return SL_ECORRUPT;
    }
}

int sl_gzip_decompress(struct sl_buf *out, const void *in, size_t n, size_t max_out)
{
    z_stream z;
    size_t start = out->len;
    if (n == 0)
        return SL_ECORRUPT;
    memset(&z, 0, sizeof(z));
    /* 15 + 32: detect gzip or zlib framing from the header. */
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return SL_ENOMEM;
    int rc = gzip_stream(&z, out, in, n, max_out);
    inflateEnd(&z);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* -------------------------------------------------------------- dispatch */

int sl_compress(enum sl_codec c, struct sl_buf *out, const void *in, size_t n, int level)
{
    switch (c) {
    case SL_CODEC_ZSTD:
        return sl_zstd_compress(out, in, n, level);
    case SL_CODEC_GZIP:
        return sl_gzip_compress(out, in, n, level);
    case SL_CODEC_NONE:
        sl_buf_append(out, in, n);
        return 0;
    }
    return SL_EUNSUPP;
}

int sl_decompress(enum sl_codec c, struct sl_buf *out, const void *in, size_t n, size_t max_out)
{
    switch (c) {
    case SL_CODEC_ZSTD:
        return sl_zstd_decompress(out, in, n, max_out);
    case SL_CODEC_GZIP:
        return sl_gzip_decompress(out, in, n, max_out);
    case SL_CODEC_NONE:
        if (n > max_out)
            return SL_ETOOBIG;
        sl_buf_append(out, in, n);
        return 0;
    }
    return SL_EUNSUPP;
}
