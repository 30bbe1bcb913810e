/* Label sets (streams). Contract from DESIGN.md "Data model":
 *   names match [A-Za-z_][A-Za-z0-9_]*, values are UTF-8,
 *   canonical form is sorted by name: {app="api", namespace="prod"},
 *   fingerprint = XXH3-64 of the canonical form.
 *
 * A struct sl_labels does not own its bytes: they point into an arena, a
 * request body or another owner, stated by whoever fills it. Not thread-safe. */
#ifndef SL_LABELS_H
#define SL_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"

struct sl_label {
    struct sl_bytes name;
    struct sl_bytes value;
};

struct sl_labels {
    struct sl_label *items;
    size_t n;
};

struct sl_label_limits {
    size_t max_names;     /* 15 */
    size_t max_name_len;  /* 1024 */
    size_t max_value_len; /* 2048 */
};

/* Parses `{a="b", c="d"}` (Prometheus/Loki text form: double-quoted values with
 * Go escapes \" \\ \n \t \xNN \uNNNN; whitespace allowed; `{}` is empty) into
 * out, copying unescaped bytes into arena. On error returns SL_EINVAL and, if
 * err is not NULL, writes a reason with the byte offset into err. Does not sort
 * or validate limits. */
int sl_labels_parse(struct sl_arena *arena, const char *s, size_t n, struct sl_labels *out,
                    struct sl_buf *err);

/* True if name matches [A-Za-z_][A-Za-z0-9_]*. */
bool sl_label_name_valid(struct sl_bytes name);

/* Checks name syntax, UTF-8 values, duplicates (after sorting), empty set, and
 * the limits (NULL: no limits). Sorts in place first. Returns 0 or SL_EINVAL
 * with a human reason in err (e.g. `label name "x-y" is invalid`). */
int sl_labels_validate(struct sl_labels *ls, const struct sl_label_limits *lim, struct sl_buf *err);

/* Sorts by name (stable for duplicates). */
void sl_labels_sort(struct sl_labels *ls);

/* Appends the canonical form {a="b", c="d"} (values escaped as Go %q does for
 * \ " and control bytes) to out. Expects sorted labels. */
void sl_labels_format(const struct sl_labels *ls, struct sl_buf *out);

/* XXH3-64 of the canonical form. Expects sorted labels. */
uint64_t sl_labels_fingerprint(const struct sl_labels *ls);

/* Value of name, or NULL. */
const struct sl_bytes *sl_labels_get(const struct sl_labels *ls, const char *name);

/* Deep copy into arena. */
void sl_labels_copy(struct sl_arena *arena, const struct sl_labels *src, struct sl_labels *dst);

#endif
