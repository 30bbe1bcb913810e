/* Index files (DESIGN.md "Index"; constants in common/format.h).
 *
 * Immutable, one tenant and one period (UTC day) each, stored at
 * "index/<day number>/<tenant>/<writer>-<seq>.idx". Layout (integers LE):
 *
 *   header     "SLIX" u8 version, 3 reserved bytes
 *   symbols    every label name and value once, sorted: uvarint len, bytes
 *   symtab     per symbol u32 offset from the start of the file
 *   series     sorted by (fingerprint, labels): u64 fingerprint, uvarint
 *              nlabels, per label uvarint name symbol and value symbol,
 *              uvarint nchunks, per chunk uvarint from, uvarint through-from,
 *              uvarint size, uvarint entries, uvarint key length, key
 *              (chunks sorted by from)
 *   seriestab  per series u64 offset
 *   postings   per (name, value) pair sorted by symbol ids: uvarint count,
 *              uvarint deltas of series ordinals (ascending)
 *   posttab    per pair u32 name symbol, u32 value symbol, u64 offset
 *   footer     u64 offsets of the six sections above, u32 nsymbols,
 *              u32 nseries, u32 npostings, u32 crc32c of every byte before
 *              the footer, u32 crc32c of the previous 64 footer bytes, "SLIX"
 *
 * Readers check both checksums and every offset when they open a file, so a
 * damaged file is refused whole rather than half read.
 *
 * Threading: a writer is used by one thread; a reader is immutable after
 * open (but for series time bounds computed once, under pthread_once) and
 * may be shared by threads. */
#ifndef SL_INDEX_H
#define SL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"
#include "common/labels.h"

struct sl_index_chunk_ref {
    int64_t from, through; /* min and max entry timestamp, inclusive */
    uint64_t size;         /* object bytes */
    uint64_t entries;
    struct sl_bytes key; /* object key */
};

/* ---- writer ---- */

struct sl_index_writer;

struct sl_index_writer *sl_index_writer_new(void);
void sl_index_writer_free(struct sl_index_writer *w);
/* Adds one chunk of the series labels (sorted; fp its fingerprint). Copies
 * everything. The same chunk key added twice is kept once. */
void sl_index_writer_add(struct sl_index_writer *w, const struct sl_labels *labels, uint64_t fp,
                         const struct sl_index_chunk_ref *ref);
size_t sl_index_writer_chunks(const struct sl_index_writer *w);
/* Appends the file to out. The writer stays usable (for more adds and
 * another finish). */
void sl_index_writer_finish(struct sl_index_writer *w, struct sl_buf *out);

/* ---- reader ---- */

struct sl_index_reader;

/* Over bytes the caller keeps alive and unchanged. Returns 0, SL_ECORRUPT, or
 * SL_EUNSUPP (newer version). */
int sl_index_reader_open_mem(const void *data, size_t len, struct sl_index_reader **out);
/* Maps the file read-only. Returns 0, SL_ENOENT, SL_EIO, SL_ECORRUPT,
 * SL_EUNSUPP. */
int sl_index_reader_open_file(const char *path, struct sl_index_reader **out);
void sl_index_reader_close(struct sl_index_reader *r);
size_t sl_index_reader_series(const struct sl_index_reader *r);

/* An equality matcher name="value" (value non-empty): narrows the series
 * through the postings before the label predicate runs. */
struct sl_index_matcher {
    struct sl_bytes name, value;
};

/* Decides on the full label set (e.g. every LogQL matcher); NULL keeps all. */
typedef bool (*sl_index_label_fn)(const struct sl_labels *ls, void *ud);
/* One matching series with its chunks overlapping the range; labels, refs
 * and keys are valid during the call only (keys point into the file). */
typedef int (*sl_index_series_fn)(const struct sl_labels *ls, uint64_t fp,
                                  const struct sl_index_chunk_ref *refs, size_t nrefs, void *ud);

/* Calls fn for every series that has every eq pair, passes match, and has at
 * least one chunk with from <= through_ns-1 and through >= from_ns (the
 * range is [from_ns, through_ns)), in fingerprint order. A non-zero return
 * from fn stops and is returned; SL_ECORRUPT on damaged records. */
int sl_index_reader_select(struct sl_index_reader *r, const struct sl_index_matcher *eq, size_t neq,
                           sl_index_label_fn match, void *match_ud, int64_t from_ns,
                           int64_t through_ns, sl_index_series_fn fn, void *ud);

/* Label names (name NULL), or the non-empty values of name, of the series
 * with a chunk overlapping [from_ns, through_ns): each once, in ascending
 * byte order, from the postings (the first call computes every series'
 * time bounds, kept with the reader). bytes point into the file. A non-zero
 * return from fn stops and is returned; SL_ECORRUPT on damaged records. */
typedef int (*sl_index_bytes_fn)(struct sl_bytes v, void *ud);
int sl_index_reader_label_names(struct sl_index_reader *r, int64_t from_ns, int64_t through_ns,
                                sl_index_bytes_fn fn, void *ud);
int sl_index_reader_label_values(struct sl_index_reader *r, struct sl_bytes name, int64_t from_ns,
                                 int64_t through_ns, sl_index_bytes_fn fn, void *ud);

/* "index/<day>/<tenant>/" for the day holding ts (day = floor(ts / 1 day)). */
int64_t sl_index_day(int64_t ts_ns);
void sl_index_prefix(struct sl_buf *out, int64_t day, struct sl_bytes tenant);

#endif
