/* Internal to agent/pipeline/: the stage interface shared by the stage
 * families (one .c each), the per-entry state and the JSON and logfmt
 * scanners (exposed for the fuzz targets and unit tests). */
#ifndef SL_AGENT_PIPELINE_INTERNAL_H
#define SL_AGENT_PIPELINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/pipeline/pipeline.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/labels.h"

struct sl_metric;
struct sl_metric_family;

struct sl__pl_kv {
    struct sl_bytes name;
    struct sl_bytes value;
};

/* One entry going through the stages. Arrays live in the pipeline's arena. */
struct sl__pl_entry {
    int64_t ts_ns;
    struct sl_bytes line;
    struct sl_label *lab; /* current labels (the base ones until changed) */
    size_t nlab, caplab;
    bool lab_changed;
    struct sl_label *meta;
    size_t nmeta, capmeta;
    struct sl__pl_kv *ex; /* extracted map, later entries win */
    size_t nex, capex;
    const char *drop_reason; /* set: the entry is dropped */
};

struct sl__pl_run {
    struct sl_pipeline *p;
    struct sl_pipeline_stream *s;
    struct sl_arena *arena;
    struct sl__pl_entry *e;
};

struct sl__pl_stage;
typedef void (*sl__pl_run_fn)(const struct sl__pl_stage *st, struct sl__pl_run *r);

struct sl__pl_stage {
    const char *name; /* stage kind, as configured */
    int index;
    sl__pl_run_fn run;
    void (*free)(void *impl);
    void *impl;
};

/* Build context: names the stage in errors. */
struct sl__pl_build {
    struct sl_pipeline *p;
    struct sl_buf *err;
    int index;
    const char *stage;
    int line;
};

/* Appends "config: pipeline[i] (stage): line N: key: why" and returns SL_EINVAL. */
int sl__pl_fail(struct sl__pl_build *b, const struct sl_cfgnode *at, const char *key,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Option helpers: scalar text of key in map (NULL if absent); a map of
 * scalars; a scalar or a sequence of scalars. Errors through sl__pl_fail. */
const char *sl__pl_opt_str(const struct sl_cfgnode *opts, const char *key);
int sl__pl_check_keys(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      const char *const *allowed);
int sl__pl_opt_map(struct sl__pl_build *b, const struct sl_cfgnode *opts, const char *key,
                   bool required, const struct sl_cfgnode **out);

/* A compiled PCRE2 regex with its match data (unanchored search). */
struct sl__pl_regex;
int sl__pl_regex_new(struct sl__pl_build *b, const struct sl_cfgnode *at, const char *key,
                     const char *pattern, struct sl__pl_regex **out);
void sl__pl_regex_free(struct sl__pl_regex *re);
/* 1 match, 0 no match (errors such as the match limit count as no match). */
int sl__pl_regex_match(struct sl__pl_regex *re, struct sl_bytes subject);
/* Runs and sets every named group that took part into the extracted map. */
int sl__pl_regex_extract(struct sl__pl_regex *re, struct sl__pl_run *r, struct sl_bytes subject);

/* Entry state (pipeline.c). */
bool sl__pl_get(const struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes *value);
void sl__pl_set(struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes value);
/* Sets or replaces a label; invalid ones are skipped and counted. An empty
 * value removes the label (Loki treats an empty label as absent). */
void sl__pl_label_set(struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes value);
void sl__pl_label_del(struct sl__pl_run *r, struct sl_bytes name);
void sl__pl_label_keep(struct sl__pl_run *r, const struct sl_bytes *names, size_t n);
void sl__pl_meta_set(struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes value);
/* Drops the entry, counted under m (reason is its label value). */
void sl__pl_drop(struct sl__pl_run *r, struct sl_metric *m, const char *reason);
struct sl_metric *sl__pl_drop_counter(struct sl_pipeline *p, const char *reason);
int64_t sl__pl_wall(const struct sl_pipeline *p);
/* Fudge state of the stream: last good timestamp (0: none yet). */
int64_t *sl__pl_last_ts(struct sl_pipeline_stream *s);

/* Stage builders, one per family. opts is the stage's value node. */
int sl__pl_build_json(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      struct sl__pl_stage *st);
int sl__pl_build_logfmt(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                        struct sl__pl_stage *st);
int sl__pl_build_regex(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                       struct sl__pl_stage *st);
int sl__pl_build_labels(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                        struct sl__pl_stage *st);
int sl__pl_build_meta(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      struct sl__pl_stage *st);
int sl__pl_build_static(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                        struct sl__pl_stage *st);
int sl__pl_build_labeldrop(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                           struct sl__pl_stage *st);
int sl__pl_build_labelkeep(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                           struct sl__pl_stage *st);
int sl__pl_build_output(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                        struct sl__pl_stage *st);
int sl__pl_build_drop(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      struct sl__pl_stage *st);
int sl__pl_build_timestamp(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                           struct sl__pl_stage *st);

/* --- JSON (json.c) --- */

enum sl__pl_jtype {
    SL_PL_J_NONE,
    SL_PL_J_STRING,
    SL_PL_J_NUMBER,
    SL_PL_J_BOOL,
    SL_PL_J_NULL,
    SL_PL_J_OBJECT,
    SL_PL_J_ARRAY
};

#define SL_PL_JSON_MAX_DEPTH 2048

/* Strict RFC 8259 check of a whole text whose top level is an object, with
 * jansson's rules: UTF-8 checked, escapes checked (surrogates must pair),
 * control bytes refused in strings, nesting at most SL_PL_JSON_MAX_DEPTH
 * (SL_ETOOBIG beyond). Numbers are checked for syntax only. \u0000 is
 * accepted. Returns 0, SL_EINVAL or SL_ETOOBIG. */
int sl__pl_json_check(const char *s, size_t n);

/* A path: segments are keys (bytes) or array indexes (negative from the end). */
struct sl__pl_jseg {
    bool is_index;
    long index;
    struct sl_bytes key;
};
struct sl__pl_jpath {
    struct sl__pl_jseg *segs;
    size_t n;
};
/* Parses a JMESPath-lite expression: identifiers and "quoted" keys joined by
 * '.', with [n] indexes: a.b, a[0].b, "@t", a."b.c", a[-1]. Segments are
 * allocated with sl_malloc (free with sl__pl_jpath_release). Returns 0 or
 * SL_EINVAL with a reason in *why. */
int sl__pl_jpath_parse(const char *expr, struct sl__pl_jpath *out, const char **why);
void sl__pl_jpath_release(struct sl__pl_jpath *p);
/* Finds path in a checked JSON text (sl__pl_json_check succeeded); when a
 * key repeats, the last one wins. *raw is the value's text (strings with
 * their quotes). Returns its type, SL_PL_J_NONE if absent. */
enum sl__pl_jtype sl__pl_json_find(const char *s, size_t n, const struct sl__pl_jpath *path,
                                   struct sl_bytes *raw);
/* The same for np paths at once, in one pass over the top-level members
 * (the json stage's path). at is scratch for np offsets. */
void sl__pl_json_find_all(const char *s, size_t n, const struct sl__pl_jpath *paths, size_t np,
                          size_t *at, enum sl__pl_jtype *types, struct sl_bytes *raws);
/* Decodes the JSON escape whose backslash is at s[*i] (surrogate pairs
 * joined, lone surrogates refused); writes UTF-8 to out and advances *i past
 * it. Returns the byte count, or 0 if invalid. */
size_t sl__pl_json_unescape(const char *s, size_t n, size_t *i, char out[4]);
/* Unescapes a checked JSON string (with quotes) into arena. */
struct sl_bytes sl__pl_json_unquote(struct sl_arena *a, struct sl_bytes raw);

/* --- logfmt (logfmt.c) --- */

/* go-logfmt's grammar: key=value pairs separated by spaces; keys are bytes
 * above ' ' other than '=' and '"'; values are bare (the same bytes) or
 * double-quoted with JSON-style escapes; a key without '=' has an empty
 * value. Malformed pairs are skipped (as Loki's logfmt parser does). Calls
 * fn for every pair, values unescaped into arena when quoted. Returns the
 * number of pairs. */
typedef void (*sl__pl_logfmt_fn)(void *ud, struct sl_bytes key, struct sl_bytes value);
size_t sl__pl_logfmt_scan(struct sl_arena *a, struct sl_bytes line, sl__pl_logfmt_fn fn, void *ud);

/* --- time (timestamp.c) --- */

/* Parses value with format (a named format or a Go reference layout); zone
 * offsets in the text win, else loc (NULL: UTC). A layout without a year
 * takes the year of now_ns. Returns 0 or SL_EINVAL. */
struct sl__pl_tz;
int sl__pl_time_parse(const char *format, struct sl_bytes value, const struct sl__pl_tz *loc,
                      int64_t now_ns, int64_t *out_ns);
int sl__pl_tz_load(const char *name, struct sl__pl_tz **out);
void sl__pl_tz_free(struct sl__pl_tz *tz);

#endif
