/* Configuration: one YAML file (libyaml), defaults from one options table,
 * ${VAR} / ${VAR:-default} expansion, --set a.b=c overrides.
 *
 * Each program declares `static const struct sl_option opts[]` describing
 * every key once (name, type, default, field offset, doc). From that table:
 * loading, validation, unknown-key errors, --help text, the effective config
 * dump (--check-config, /config), and the docs.
 *
 * Expansion, applied to every scalar in the file, in --set values and in
 * defaults: ${NAME} and ${NAME:-default}. If NAME is the key of a scalar
 * option of the same table (e.g. ${data_dir}), it resolves to that option's
 * final value; otherwise to the environment variable NAME (empty if unset, or
 * the default after :-). "$$" is a literal "$"; a "$" not followed by "{" or
 * "$" stays as is. Defaults may nest: ${A:-${B:-x}}. Inside a YAML flow
 * collection ({...} or [...]) quote values holding ${...}, as YAML requires.
 * Option references resolve after all layers are merged, so the default
 * "${data_dir}/store" follows a data_dir set in the file or by --set; a
 * reference cycle is an error naming the path (a -> b -> a).
 *
 * Precedence: default < file < --set. Errors name the offending key and, for
 * file values, the line: `config: server.listen: line 3: expected a scalar`,
 * `config: unknown key "server.lisen"`. Not thread-safe; load once at start
 * (and on reload into a fresh struct). */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum sl_opt_type {
    SL_OPT_STRING,   /* char *             (owned by the config; "" when empty) */
    SL_OPT_INT,      /* int64_t */
    SL_OPT_BOOL,     /* bool: true/false/yes/no/on/off/1/0 */
    SL_OPT_DURATION, /* int64_t nanoseconds, Go syntax (common/timeutil.h) */
    SL_OPT_SIZE,     /* int64_t bytes, 1MiB / 1MB / 1048576 */
    SL_OPT_STRLIST,  /* struct sl_strlist: YAML sequence of scalars, or one
                        comma-separated scalar from --set */
    SL_OPT_NODE,     /* struct sl_cfgnode *: any YAML subtree, interpreted by the
                        program (e.g. the agent's files: and pipeline: lists).
                        NULL when absent and the default is "". */
};

struct sl_strlist {
    char **items;
    size_t n;
};

enum sl_cfgnode_kind { SL_CFG_SCALAR, SL_CFG_SEQ, SL_CFG_MAP };

/* A parsed YAML subtree (for SL_OPT_NODE). Scalars are already expanded. */
struct sl_cfgnode {
    enum sl_cfgnode_kind kind;
    char *key;                 /* key in the parent map, or NULL */
    char *value;               /* scalars only */
    struct sl_cfgnode **items; /* seq items or map entries (each with key) */
    size_t n;
    int line; /* 1-based line in the file, 0 for --set/defaults */
};

/* Child of a map by key, or NULL (also when map is NULL or not a map). */
const struct sl_cfgnode *sl_cfgnode_get(const struct sl_cfgnode *map, const char *key);

/* Frees a node tree (the loader's trees are freed by sl_config_release). */
void sl_cfgnode_free(struct sl_cfgnode *n);

struct sl_option {
    const char *key; /* dotted path: "server.listen", "data_dir" */
    enum sl_opt_type type;
    const char *def; /* default as YAML text (expanded); for NODE e.g. "[]" */
    size_t offset;   /* offsetof(struct program_config, field) */
    const char *doc; /* one line, for --help and docs */
};

/* Fills cfg (zeroed by the caller) from defaults, then the file at path (NULL
 * for none), then each "a.b=c" string in sets. Returns 0, or SL_EINVAL/SL_ENOENT
 * with one line in err naming the key (or the file and line). On error cfg is
 * released. A missing file is SL_ENOENT (the path is in err); an empty file
 * means all defaults.
 *
 * File rules: the top level is a map; nested maps follow the dotted keys, and a
 * dotted key may also be written flat ("server.listen: x"). Unknown and
 * duplicate keys are errors. A plain null/~/empty value is "" for strings, an
 * empty list for STRLIST, NULL for NODE. STRLIST takes a sequence of scalars or
 * one comma-separated scalar. YAML anchors/aliases and multiple documents are
 * rejected.
 *
 * --set key=value: for scalar types the value is taken as is (unless it starts
 * with a quote, then it is read as one YAML scalar, so --set 'k=""' is empty);
 * STRLIST takes a YAML flow sequence ("[a, b]") or "a,b"; NODE and map prefixes
 * ("--set storage.s3={bucket: b}") take YAML flow text. */
int sl_config_load(const struct sl_option *opts, size_t nopts, void *cfg, const char *path,
                   const char *const *sets, size_t nsets, struct sl_buf *err);

/* Like sl_config_load, with the file contents given in memory (yaml, len;
 * need not be NUL-terminated; len 0 means all defaults). */
int sl_config_load_mem(const struct sl_option *opts, size_t nopts, void *cfg, const char *yaml,
                       size_t len, const char *const *sets, size_t nsets, struct sl_buf *err);

/* Frees every string, list and node the loader put into cfg. */
void sl_config_release(const struct sl_option *opts, size_t nopts, void *cfg);

/* Appends the effective configuration as YAML (nested maps from the dotted keys,
 * durations and sizes in their text form). Keys whose name ends in "secret",
 * "secret_access_key", "session_token" or "password" are printed as <redacted>
 * (as "" when empty, so an unset secret is visible as such). Strings are quoted
 * where YAML would read them otherwise, and "$" before "{" or "$" is doubled, so
 * the output loads again to the same values (except redacted ones). */
void sl_config_dump(const struct sl_option *opts, size_t nopts, const void *cfg,
                    struct sl_buf *out);

/* Appends one line per option: `  --set key=<type>  doc (default: X)`. */
void sl_config_help(const struct sl_option *opts, size_t nopts, struct sl_buf *out);

/* Expands ${NAME} / ${NAME:-def} using only the environment. Appends to out;
 * returns 0 or SL_EINVAL for an unterminated ${. */
int sl_config_expand_env(const char *s, struct sl_buf *out);

#endif
