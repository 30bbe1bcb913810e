/* Chunk writer and reader. The reader trusts nothing: every offset and
 * length is checked against the object before use (fuzzed). */
#include "aggregator/chunk/chunk.h"

#include <inttypes.h>
#include <string.h>

#include "common/err.h"
#include "common/format.h"
#include "common/hash.h"
#include "common/labels.h"
#include "common/mem.h"
#include "common/wire.h"

/* Fuzzing builds accept any checksum so that mutations reach the decoders
 * behind it; every other check stays. */
static bool crc_ok(uint32_t stored, uint32_t computed)
{
#ifdef SL_FUZZING
    (void)stored, (void)computed;
    return true;
#else
    return stored == computed;
#endif
}

static int get_bytes(const char **p, const char *end, struct sl_bytes *out)
{
    uint64_t n;
    if (sl_get_uvarint(p, end, &n) || n > (uint64_t)(end - *p))
        return SL_ECORRUPT;
    *out = sl_bytes(*p, (size_t)n);
    *p += n;
    return 0;
}

/* ---- payload ---- */

void sl_chunk_payload_put(struct sl_buf *raw, int64_t *prev, int64_t ts, struct sl_bytes line,
                          bool with_meta, const struct sl_label *meta, size_t n_meta)
{
    sl_buf_put_uvarint(raw, (uint64_t)ts - (uint64_t)*prev); /* wraps, decoded the same way */
    *prev = ts;
    sl_buf_put_uvarint(raw, line.len);
    sl_buf_append(raw, line.ptr, line.len);
    if (!with_meta)
        return;
    sl_buf_put_uvarint(raw, n_meta);
    for (size_t i = 0; i < n_meta; i++) {
        sl_buf_put_uvarint(raw, meta[i].name.len);
        sl_buf_append(raw, meta[i].name.ptr, meta[i].name.len);
        sl_buf_put_uvarint(raw, meta[i].value.len);
        sl_buf_append(raw, meta[i].value.ptr, meta[i].value.len);
    }
}

int sl_chunk_payload_next(const char **p, const char *end, int64_t *prev, bool with_meta,
                          struct sl_chunk_entry *e)
{
    uint64_t d;
    if (sl_get_uvarint(p, end, &d) || get_bytes(p, end, &e->line))
        return SL_ECORRUPT;
    e->ts = (int64_t)((uint64_t)*prev + d);
    *prev = e->ts;
    e->meta = sl_bytes(NULL, 0);
    e->n_meta = 0;
    if (!with_meta)
        return 0;
    uint64_t n;
    const char *start;
    if (sl_get_uvarint(p, end, &n) || n > (uint64_t)(end - *p) / 2)
        return SL_ECORRUPT;
    start = *p;
    for (uint64_t i = 0; i < n; i++) {
        struct sl_bytes k, v;
        if (get_bytes(p, end, &k) || get_bytes(p, end, &v))
            return SL_ECORRUPT;
    }
    e->meta = sl_bytes(start, (size_t)(*p - start));
    e->n_meta = (size_t)n;
    return 0;
}

int sl_chunk_meta_next(const struct sl_chunk_entry *e, size_t *pos, struct sl_bytes *name,
                       struct sl_bytes *value)
{
    if (*pos >= e->meta.len)
        return 0;
    const char *p = e->meta.ptr + *pos, *end = e->meta.ptr + e->meta.len;
    if (get_bytes(&p, end, name) || get_bytes(&p, end, value))
        return SL_ECORRUPT;
    *pos = (size_t)(p - e->meta.ptr);
    return 1;
}

int sl_chunk_meta_labels(const struct sl_chunk_entry *e, struct sl_label **buf, size_t *cap)
{
    if (e->n_meta > *cap) {
        *cap = e->n_meta > 8 ? e->n_meta : 8;
        *buf = sl_reallocarray(*buf, *cap, sizeof **buf);
    }
    size_t pos = 0, n = 0;
    struct sl_bytes k, v;
    while (n < e->n_meta && sl_chunk_meta_next(e, &pos, &k, &v) == 1)
        (*buf)[n++] = (struct sl_label){k, v};
    return n == e->n_meta && pos == e->meta.len ? (int)n : SL_ECORRUPT;
}

/* ---- writer ---- */

void sl_chunk_writer_init(struct sl_chunk_writer *w, enum sl_codec codec, int level,
                          struct sl_bytes labels)
{
    memset(w, 0, sizeof *w);
    w->codec = codec;
    w->level = level;
    char *h = sl_buf_reserve(&w->out, SL_CHUNK_HEADER_SIZE);
    memcpy(h, SL_CHUNK_MAGIC, 4);
    h[4] = SL_CHUNK_VERSION;
    h[5] = (char)codec;
    h[6] = h[7] = 0;
    sl_put_le32(h + 8, (uint32_t)labels.len);
    sl_buf_commit(&w->out, SL_CHUNK_HEADER_SIZE);
    sl_buf_append(&w->out, labels.ptr, labels.len);
}

void sl_chunk_writer_release(struct sl_chunk_writer *w)
{
    sl_buf_release(&w->out);
    sl_buf_release(&w->table);
}

int sl_chunk_writer_add_compressed(struct sl_chunk_writer *w, const struct sl_chunk_block_info *bi,
                                   const void *z, size_t zlen)
{
    if (bi->entries == 0 || bi->raw_len > SL_CHUNK_MAX_BLOCK_RAW || zlen > UINT32_MAX ||
        bi->min_ts > bi->max_ts)
        return SL_EINVAL;
    size_t off = w->out.len;
    char *h = sl_buf_reserve(&w->out, SL_CHUNK_BLOCK_HEADER_SIZE);
    sl_put_le32(h, bi->entries);
    sl_put_le64(h + 4, (uint64_t)bi->min_ts);
    sl_put_le64(h + 12, (uint64_t)bi->max_ts);
    sl_put_le32(h + 20, bi->raw_len);
    sl_put_le32(h + 24, (uint32_t)zlen);
    h[28] = (char)bi->flags;
    h[29] = h[30] = h[31] = 0;
    sl_buf_commit(&w->out, SL_CHUNK_BLOCK_HEADER_SIZE);
    sl_buf_append(&w->out, z, zlen);
    char crc[4];
    sl_put_le32(crc, sl_crc32c(0, w->out.data + off, w->out.len - off));
    sl_buf_append(&w->out, crc, 4);
    char *t = sl_buf_reserve(&w->table, SL_CHUNK_TABLE_ENTRY_SIZE);
    sl_put_le64(t, off);
    sl_put_le32(t + 8, (uint32_t)(w->out.len - off));
    sl_put_le32(t + 12, bi->entries);
    sl_put_le64(t + 16, (uint64_t)bi->min_ts);
    sl_put_le64(t + 24, (uint64_t)bi->max_ts);
    sl_buf_commit(&w->table, SL_CHUNK_TABLE_ENTRY_SIZE);
    if (w->nblocks == 0 || bi->min_ts < w->min_ts)
        w->min_ts = bi->min_ts;
    if (w->nblocks == 0 || bi->max_ts > w->max_ts)
        w->max_ts = bi->max_ts;
    w->nblocks++;
    w->entries += bi->entries;
    return 0;
}

int sl_chunk_writer_add_raw(struct sl_chunk_writer *w, const struct sl_chunk_block_info *bi,
                            const void *raw, size_t raw_len)
{
    if (raw_len > SL_CHUNK_MAX_BLOCK_RAW)
        return SL_EINVAL;
    struct sl_buf z = SL_BUF_INIT;
    int rc = sl_compress(w->codec, &z, raw, raw_len, w->level);
    if (rc == 0) {
        struct sl_chunk_block_info b = *bi;
        b.raw_len = (uint32_t)raw_len;
        rc = sl_chunk_writer_add_compressed(w, &b, z.data, z.len);
    }
    sl_buf_release(&z);
    return rc;
}

int sl_chunk_writer_finish(struct sl_chunk_writer *w, struct sl_buf *out,
                           struct sl_chunk_meta *meta)
{
    if (w->nblocks == 0) {
        sl_chunk_writer_release(w);
        return SL_EINVAL;
    }
    uint64_t table_off = w->out.len;
    sl_buf_append(&w->out, w->table.data, w->table.len);
    char *f = sl_buf_reserve(&w->out, SL_CHUNK_FOOTER_SIZE);
    sl_put_le64(f, table_off);
    sl_put_le32(f + 8, w->nblocks);
    sl_put_le32(f + 12, sl_crc32c(0, w->table.data, w->table.len));
    sl_put_le64(f + 16, (uint64_t)w->min_ts);
    sl_put_le64(f + 24, (uint64_t)w->max_ts);
    sl_put_le32(f + 32, sl_crc32c(0, f, 32));
    memcpy(f + 36, SL_CHUNK_MAGIC, 4);
    sl_buf_commit(&w->out, SL_CHUNK_FOOTER_SIZE);
    if (meta) {
        meta->from = w->min_ts;
        meta->through = w->max_ts;
        meta->entries = w->entries;
        meta->nblocks = w->nblocks;
        meta->crc = sl_crc32c(0, w->out.data, w->out.len);
    }
    sl_buf_release(out);
    *out = w->out;
    sl_buf_init(&w->out);
    sl_chunk_writer_release(w);
    return 0;
}

/* ---- reader ---- */

int sl_chunk_reader_open(struct sl_chunk_reader *r, const void *data, size_t len)
{
    memset(r, 0, sizeof *r);
    const char *d = data;
    if (len < SL_CHUNK_HEADER_SIZE + SL_CHUNK_FOOTER_SIZE || memcmp(d, SL_CHUNK_MAGIC, 4) != 0)
        return SL_ECORRUPT;
    if ((unsigned char)d[4] > SL_CHUNK_VERSION || d[4] == 0)
        return SL_EUNSUPP;
    unsigned codec = (unsigned char)d[5];
    if (codec != SL_CODEC_NONE && codec != SL_CODEC_ZSTD && codec != SL_CODEC_GZIP)
        return SL_EUNSUPP;
    uint32_t llen = sl_get_le32(d + 8);
    if (llen > SL_CHUNK_MAX_LABELS || llen > len - SL_CHUNK_HEADER_SIZE - SL_CHUNK_FOOTER_SIZE)
        return SL_ECORRUPT;
    const char *f = d + len - SL_CHUNK_FOOTER_SIZE;
    if (memcmp(f + 36, SL_CHUNK_MAGIC, 4) != 0 || !crc_ok(sl_get_le32(f + 32), sl_crc32c(0, f, 32)))
        return SL_ECORRUPT;
    uint64_t toff = sl_get_le64(f);
    uint32_t nb = sl_get_le32(f + 8);
    uint64_t body_end = len - SL_CHUNK_FOOTER_SIZE;
    uint64_t blocks_start = SL_CHUNK_HEADER_SIZE + (uint64_t)llen;
    if (nb == 0 || toff < blocks_start || toff > body_end ||
        (body_end - toff) != (uint64_t)nb * SL_CHUNK_TABLE_ENTRY_SIZE)
        return SL_ECORRUPT;
    if (!crc_ok(sl_get_le32(f + 12), sl_crc32c(0, d + toff, body_end - toff)))
        return SL_ECORRUPT;
    r->data = d;
    r->len = len;
    r->codec = (enum sl_codec)codec;
    r->labels = sl_bytes(d + SL_CHUNK_HEADER_SIZE, llen);
    r->nblocks = nb;
    r->table = d + toff;
    r->min_ts = (int64_t)sl_get_le64(f + 16);
    r->max_ts = (int64_t)sl_get_le64(f + 24);
    /* Every table entry must name a block inside [blocks_start, table). */
    for (uint32_t i = 0; i < nb; i++) {
        const char *t = r->table + (size_t)i * SL_CHUNK_TABLE_ENTRY_SIZE;
        uint64_t off = sl_get_le64(t), size = sl_get_le32(t + 8);
        if (off < blocks_start || off > toff || size > toff - off ||
            size < SL_CHUNK_BLOCK_HEADER_SIZE + 4 ||
            (int64_t)sl_get_le64(t + 16) > (int64_t)sl_get_le64(t + 24))
            return SL_ECORRUPT;
    }
    return 0;
}

void sl_chunk_reader_block(const struct sl_chunk_reader *r, uint32_t i,
                           struct sl_chunk_block_info *bi)
{
    const char *t = r->table + (size_t)i * SL_CHUNK_TABLE_ENTRY_SIZE;
    const char *b = r->data + sl_get_le64(t);
    bi->entries = sl_get_le32(t + 12);
    bi->min_ts = (int64_t)sl_get_le64(t + 16);
    bi->max_ts = (int64_t)sl_get_le64(t + 24);
    bi->raw_len = sl_get_le32(b + 20);
    bi->flags = (uint8_t)b[28];
}

int sl_chunk_reader_block_payload(struct sl_chunk_reader *r, uint32_t i, struct sl_buf *raw,
                                  struct sl_chunk_block_info *bi)
{
    const char *t = r->table + (size_t)i * SL_CHUNK_TABLE_ENTRY_SIZE;
    const char *b = r->data + sl_get_le64(t);
    uint32_t size = sl_get_le32(t + 8);
    if (!crc_ok(sl_get_le32(b + size - 4), sl_crc32c(0, b, size - 4)))
        return SL_ECORRUPT;
    sl_chunk_reader_block(r, i, bi);
    uint32_t zlen = sl_get_le32(b + 24);
    if (zlen != size - 4 - SL_CHUNK_BLOCK_HEADER_SIZE || sl_get_le32(b) != bi->entries ||
        (int64_t)sl_get_le64(b + 4) != bi->min_ts || (int64_t)sl_get_le64(b + 12) != bi->max_ts ||
        bi->raw_len > SL_CHUNK_MAX_BLOCK_RAW)
        return SL_ECORRUPT;
    sl_buf_clear(raw);
    int rc = sl_decompress(r->codec, raw, b + SL_CHUNK_BLOCK_HEADER_SIZE, zlen, bi->raw_len);
    if (rc != 0 || raw->len != bi->raw_len)
        return SL_ECORRUPT;
    return 0;
}

int sl_chunk_reader_scan(struct sl_chunk_reader *r, int64_t from, int64_t through,
                         sl_chunk_entry_fn fn, void *ud)
{
    struct sl_buf raw = SL_BUF_INIT;
    int rc = 0;
    for (uint32_t i = 0; i < r->nblocks && rc == 0; i++) {
        struct sl_chunk_block_info bi;
        sl_chunk_reader_block(r, i, &bi);
        if (bi.max_ts < from || bi.min_ts >= through) {
            r->blocks_skipped++;
            continue;
        }
        r->blocks_read++;
        rc = sl_chunk_reader_block_payload(r, i, &raw, &bi);
        if (rc)
            break;
        const char *p = raw.data, *end = raw.data + raw.len;
        int64_t prev = bi.min_ts;
        bool meta = bi.flags & SL_CHUNK_BLOCK_META;
        for (uint32_t k = 0; k < bi.entries && rc == 0; k++) {
            struct sl_chunk_entry e;
            if (sl_chunk_payload_next(&p, end, &prev, meta, &e) != 0 || e.ts < bi.min_ts ||
                e.ts > bi.max_ts) {
                rc = SL_ECORRUPT;
                break;
            }
            if (e.ts >= from && e.ts < through)
                rc = fn(&e, ud);
        }
        if (rc == 0 && p != end)
            rc = SL_ECORRUPT;
    }
    sl_buf_release(&raw);
    return rc;
}

void sl_chunk_key(struct sl_buf *out, struct sl_bytes tenant, uint64_t fp,
                  const struct sl_chunk_meta *meta)
{
    sl_buf_append_str(out, "chunks/");
    sl_buf_append(out, tenant.ptr, tenant.len);
    sl_buf_appendf(out, "/%016" PRIx64 "/%" PRId64 "-%" PRId64 "-%08" PRIx32, fp, meta->from,
                   meta->through, meta->crc);
}
