/* A small JSON writer for API responses. Parsing of request bodies uses
 * jansson (a Debian package); this file only writes.
 *
 * Strings are escaped the way Go's encoding/json does by default, which is what
 * Loki's responses contain: \" \\ \n \r \t, other control bytes as \u00XX,
 * '<' '>' '&' as \u003c \u003e \u0026, U+2028/U+2029 as \u2028/\u2029, and
 * each byte of invalid UTF-8 as \ufffd. The caller writes punctuation; the
 * helpers keep the comma state so objects and arrays come out valid.
 * Not thread-safe. */
#ifndef SL_JSONW_H
#define SL_JSONW_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"

#define SL_JSONW_MAX_DEPTH 32

struct sl_jsonw {
    struct sl_buf *out; /* borrowed */
    int depth;
    bool need_comma[SL_JSONW_MAX_DEPTH];
};

void sl_jsonw_init(struct sl_jsonw *w, struct sl_buf *out);
void sl_jsonw_obj_open(struct sl_jsonw *w);
void sl_jsonw_obj_close(struct sl_jsonw *w);
void sl_jsonw_arr_open(struct sl_jsonw *w);
void sl_jsonw_arr_close(struct sl_jsonw *w);
/* Object key (call before the value). */
void sl_jsonw_key(struct sl_jsonw *w, const char *key);
void sl_jsonw_key_bytes(struct sl_jsonw *w, struct sl_bytes key);
void sl_jsonw_str(struct sl_jsonw *w, const char *s);
void sl_jsonw_bytes(struct sl_jsonw *w, struct sl_bytes s);
void sl_jsonw_i64(struct sl_jsonw *w, int64_t v);
/* Integer written as a JSON string, as Loki writes nanosecond timestamps. */
void sl_jsonw_i64_str(struct sl_jsonw *w, int64_t v);
/* Shortest round-trip form, as Go's strconv.FormatFloat(v, 'f'/'e', -1, 64)
 * would give for Prometheus sample values; NaN/+Inf/-Inf as strings. */
void sl_jsonw_f64(struct sl_jsonw *w, double v);
/* The same value as a JSON string, the way Prometheus and Loki write sample
 * values ("1.5", "NaN", "+Inf", "1e-07"). */
void sl_jsonw_f64_str(struct sl_jsonw *w, double v);
/* Appends v as Prometheus formats a float (no quotes): shortest round-trip
 * digits, exponent form when |v| < 1e-6 or >= 1e21, NaN, +Inf, -Inf. */
void sl_f64_format(struct sl_buf *b, double v);
void sl_jsonw_bool(struct sl_jsonw *w, bool v);
void sl_jsonw_null(struct sl_jsonw *w);
/* Appends an escaped string with its quotes to out (no comma handling). */
void sl_json_escape(struct sl_buf *out, struct sl_bytes s);

#endif
