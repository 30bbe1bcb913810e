/* Configuration loader: YAML (libyaml events) -> node tree -> per-option raw
 * values layered default < file < --set -> expansion -> typed fields.
 *
 * Expansion runs only after every layer is merged, so a default such as
 * "${data_dir}/store" sees data_dir as finally set by the file or --set. Each
 * option resolves lazily (with cycle detection) the first time it is referenced
 * or converted. */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/err.h"
#include "common/mem.h"
#include "common/timeutil.h"

/* Deeper nesting than any real config; bounds every recursion over trees. */
#define CFG_MAX_DEPTH 64
/* ${NAME} names longer than this are rejected (env names are short). */
#define CFG_MAX_NAME 255
/* Keys longer than this get no "did you mean" (edit distance is O(n*m)). */
#define CFG_MAX_SUGGEST 128

/* ---- nodes ---------------------------------------------------------------- */

static struct sl_cfgnode *node_new(enum sl_cfgnode_kind kind, int line)
{
    struct sl_cfgnode *n = SL_NEW(struct sl_cfgnode);
    n->kind = kind;
    n->line = line;
    return n;
}

/* Capacity is implicit: the array doubles whenever n reaches a power of two. */
static void node_add(struct sl_cfgnode *parent, struct sl_cfgnode *child)
{
    size_t n = parent->n;
    if (n == 0 || (n & (n - 1)) == 0)
        parent->items = sl_reallocarray(parent->items, n ? n * 2 : 4, sizeof(*parent->items));
    parent->items[parent->n++] = child;
}

void sl_cfgnode_free(struct sl_cfgnode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        sl_cfgnode_free(n->items[i]);
    sl_free(n->items);
    sl_free(n->key);
    sl_free(n->value);
    sl_free(n);
}

const struct sl_cfgnode *sl_cfgnode_get(const struct sl_cfgnode *map, const char *key)
{
    if (!map || map->kind != SL_CFG_MAP || !key)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (map->items[i]->key && strcmp(map->items[i]->key, key) == 0)
            return map->items[i];
    return NULL;
}

static struct sl_cfgnode *node_clone(const struct sl_cfgnode *n)
{
    if (!n)
        return NULL;
    struct sl_cfgnode *c = node_new(n->kind, n->line);
    c->key = n->key ? sl_strdup(n->key) : NULL;
    c->value = n->value ? sl_strdup(n->value) : NULL;
    for (size_t i = 0; i < n->n; i++)
        node_add(c, node_clone(n->items[i]));
    return c;
}

static bool node_is_null(const struct sl_cfgnode *n)
{
    return !n || (n->kind == SL_CFG_SCALAR && !n->value);
}

static const char *kind_name(enum sl_cfgnode_kind k)
{
    return k == SL_CFG_MAP ? "a map" : k == SL_CFG_SEQ ? "a sequence" : "a scalar";
}

/* ---- quoting (dump and error messages) ------------------------------------ */

static bool plain_safe(const char *s)
{
    static const char *const special[] = {"true", "false", "yes", "no",   "on",
                                          "off",  "y",     "n",   "null", "~"};
    if (!*s)
        return false;
    char c0 = s[0];
    bool ok0 = (c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 == '/' || c0 == '_' ||
               (c0 == '.' && (s[1] == '/' || s[1] == '.'));
    if (!ok0)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '/' || c == '-'))
            return false;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(special); i++)
        if (strcasecmp(s, special[i]) == 0)
            return false;
    return true;
}

/* Decodes one UTF-8 sequence at p (n bytes left); returns its length, or 0
 * when invalid. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (!len || len > n || p[0] > 0xF4)
        return 0;
    uint32_t v = p[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Code points libyaml accepts raw inside a double-quoted scalar. */
static bool yaml_printable(uint32_t c)
{
    return (c >= 0x20 && c <= 0x7E) || (c >= 0xA0 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD && c != 0xFEFF) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* Double-quoted YAML scalar. With dollar, "$" before "{" or "$" is doubled so
 * the loader's expansion gives the text back. Invalid UTF-8 becomes U+FFFD. */
static void put_quoted(struct sl_buf *b, const char *s, bool dollar)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    sl_buf_append_char(b, '"');
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_decode(p + i, n - i, &cp);
        if (!l) {
            sl_buf_append_str(b, "\\uFFFD");
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            sl_buf_append_char(b, '\\');
            sl_buf_append_char(b, (char)cp);
        } else if (cp == '$' && dollar && i + 1 < n && (p[i + 1] == '{' || p[i + 1] == '$')) {
            sl_buf_append_str(b, "$$");
        } else if (cp == '\n') {
            sl_buf_append_str(b, "\\n");
        } else if (cp == '\t') {
            sl_buf_append_str(b, "\\t");
        } else if (cp == '\r') {
            sl_buf_append_str(b, "\\r");
        } else if (yaml_printable(cp)) {
            sl_buf_append(b, p + i, l);
        } else if (cp < 0x100) {
            sl_buf_appendf(b, "\\x%02X", (unsigned)cp);
        } else if (cp < 0x10000) {
            sl_buf_appendf(b, "\\u%04X", (unsigned)cp);
        } else {
            sl_buf_appendf(b, "\\U%08X", (unsigned)cp);
        }
        i += l;
    }
    sl_buf_append_char(b, '"');
}

static void put_scalar(struct sl_buf *b, const char *s, bool dollar)
{
    if (plain_safe(s))
        sl_buf_append_str(b, s);
    else
        put_quoted(b, s, dollar);
}

/* ---- YAML -> nodes ---------------------------------------------------------- */

struct yparse {
    struct sl_cfgnode *root;
    struct sl_cfgnode *stack[CFG_MAX_DEPTH];
    size_t depth;
    char *key; /* pending map key, owned */
    bool have_key;
    bool lines;
};

static void perr_prefix(struct sl_buf *err, const char *what, int line)
{
    sl_buf_append_str(err, "config: ");
    if (what)
        sl_buf_appendf(err, "%s: ", what);
    if (line > 0)
        sl_buf_appendf(err, "line %d: ", line);
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)ev->data.scalar.value;
    return ev->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Hangs n under the current container (or makes it the root); takes n. */
static int yp_attach(struct yparse *y, struct sl_cfgnode *n, const char *what, struct sl_buf *err)
{
    if (y->depth == 0) {
        y->root = n;
        return 0;
    }
    struct sl_cfgnode *parent = y->stack[y->depth - 1];
    if (parent->kind == SL_CFG_MAP) {
        if (sl_cfgnode_get(parent, y->key)) {
            perr_prefix(err, what, n->line);
            sl_buf_appendf(err, "duplicate key ");
            put_quoted(err, y->key, false);
            sl_cfgnode_free(n);
            return SL_EINVAL;
        }
        n->key = y->key;
        y->key = NULL;
        y->have_key = false;
    }
    node_add(parent, n);
    return 0;
}

static int yp_event(struct yparse *y, yaml_event_t *ev, const char *what, struct sl_buf *err)
{
    int line = y->lines ? (int)ev->start_mark.line + 1 : 0;
    bool want_key = y->depth > 0 && y->stack[y->depth - 1]->kind == SL_CFG_MAP && !y->have_key;
    const yaml_char_t *anchor = NULL;
    if (ev->type == YAML_SCALAR_EVENT)
        anchor = ev->data.scalar.anchor;
    else if (ev->type == YAML_MAPPING_START_EVENT)
        anchor = ev->data.mapping_start.anchor;
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        anchor = ev->data.sequence_start.anchor;
    if (anchor || ev->type == YAML_ALIAS_EVENT) {
        perr_prefix(err, what, line);
        if (anchor)
            sl_buf_appendf(err, "YAML anchors (&%s) are not supported", (const char *)anchor);
        else
            sl_buf_appendf(err, "YAML aliases (*%s) are not supported",
                           (const char *)ev->data.alias.anchor);
        return SL_EINVAL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        char *v = is_null_scalar(ev)
                      ? NULL
                      : sl_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (want_key) {
            y->key = v ? v : sl_strdup("");
            y->have_key = true;
            return 0;
        }
        struct sl_cfgnode *n = node_new(SL_CFG_SCALAR, line);
        n->value = v;
        return yp_attach(y, n, what, err);
    }
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        if (want_key) {
            perr_prefix(err, what, line);
            sl_buf_append_str(err, "map keys must be scalars");
            return SL_EINVAL;
        }
        if (y->depth >= CFG_MAX_DEPTH) {
            perr_prefix(err, what, line);
            sl_buf_appendf(err, "nesting deeper than %d levels", CFG_MAX_DEPTH);
            return SL_EINVAL;
        }
        struct sl_cfgnode *n =
            node_new(ev->type == YAML_MAPPING_START_EVENT ? SL_CFG_MAP : SL_CFG_SEQ, line);
        int rc = yp_attach(y, n, what, err);
        if (rc)
            return rc;
        y->stack[y->depth++] = n;
        return 0;
    }
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        if (y->depth > 0)
            y->depth--;
        return 0;
    default:
        return 0;
    }
}

/* Parses one YAML document into *out (NULL for an empty stream). what names
 * the source in errors (NULL for none); lines=false records line 0. */
static int parse_yaml(const char *text, size_t len, const char *what, bool lines,
                      struct sl_cfgnode **out, struct sl_buf *err)
{
    yaml_parser_t p;
    struct yparse y = {.lines = lines};
    int docs = 0, rc = 0;
    bool done = false;

    *out = NULL;
    if (!yaml_parser_initialize(&p))
        abort(); /* only fails on OOM, fatal everywhere else too */
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            perr_prefix(err, what, lines ? (int)p.problem_mark.line + 1 : 0);
            sl_buf_append_str(err, p.problem ? p.problem : "invalid YAML");
            if (p.context)
                sl_buf_appendf(err, " %s", p.context);
            rc = SL_EINVAL;
            break;
        }
        if (ev.type == YAML_STREAM_END_EVENT) {
            done = true;
        } else if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            perr_prefix(err, what, lines ? (int)ev.start_mark.line + 1 : 0);
            sl_buf_append_str(err, "only one YAML document is allowed");
            rc = SL_EINVAL;
        } else {
            rc = yp_event(&y, &ev, what, err);
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    sl_free(y.key);
    if (rc) {
        sl_cfgnode_free(y.root);
        return rc;
    }
    *out = y.root;
    return 0;
}

/* ---- layering ---------------------------------------------------------------- */

struct slot {
    struct sl_cfgnode *raw; /* unexpanded value, owned; NULL = null */
    const char *src;        /* "default", "--set" or NULL for the file */
    int state;              /* 0 unresolved, 1 resolving, 2 resolved */
    char *val;              /* expanded text (scalar options) */
};

struct loader {
    const struct sl_option *opts;
    size_t nopts;
    struct slot *slots;
    struct sl_buf *err;
    struct sl_buf why; /* expansion error detail, reported by the owner */
    size_t *stack;     /* options being resolved, outermost first */
    size_t sp;
};

static bool is_scalar_type(enum sl_opt_type t)
{
    return t != SL_OPT_STRLIST && t != SL_OPT_NODE;
}

static long find_opt(const struct loader *L, const char *key)
{
    for (size_t i = 0; i < L->nopts; i++)
        if (strcmp(L->opts[i].key, key) == 0)
            return (long)i;
    return -1;
}

static bool is_prefix(const struct loader *L, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < L->nopts; i++)
        if (strncmp(L->opts[i].key, key, n) == 0 && L->opts[i].key[n] == '.')
            return true;
    return false;
}

/* "config: key: line 3: " / "config: key: --set: " */
static void key_prefix(struct sl_buf *err, const char *key, const struct sl_cfgnode *n,
                       const char *src)
{
    sl_buf_appendf(err, "config: %s: ", key);
    if (n && n->line > 0)
        sl_buf_appendf(err, "line %d: ", n->line);
    else if (src)
        sl_buf_appendf(err, "%s: ", src);
}

static size_t edit_distance(const char *a, size_t an, const char *b, size_t bn)
{
    size_t row[CFG_MAX_SUGGEST + 1];
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

/* Closest option key or key prefix, or NULL when nothing is close. */
static void suggest(const struct loader *L, const char *key, struct sl_buf *out)
{
    size_t kn = strlen(key), best = SIZE_MAX;
    const char *cand = NULL;
    size_t cand_len = 0;
    if (kn > CFG_MAX_SUGGEST)
        return;
    for (size_t i = 0; i < L->nopts; i++) {
        const char *o = L->opts[i].key;
        size_t on = strlen(o);
        if (on > CFG_MAX_SUGGEST)
            continue;
        for (size_t l = 1; l <= on; l++) {
            if (l < on && o[l] != '.')
                continue;
            size_t d = edit_distance(key, kn, o, l);
            if (d < best) {
                best = d;
                cand = o;
                cand_len = l;
            }
        }
    }
    size_t limit = kn / 3 < 3 ? kn / 3 : 3;
    if (cand && best > 0 && best <= (limit ? limit : 1))
        sl_buf_appendf(out, ", did you mean \"%.*s\"?", (int)cand_len, cand);
}

static int unknown_key(struct loader *L, const char *key, const struct sl_cfgnode *n,
                       const char *src)
{
    sl_buf_append_str(L->err, "config: unknown key ");
    put_quoted(L->err, key, false);
    if (n && n->line > 0)
        sl_buf_appendf(L->err, " at line %d", n->line);
    else if (src)
        sl_buf_appendf(L->err, " in %s", src);
    suggest(L, key, L->err);
    return SL_EINVAL;
}

/* Checks the shape of n for option i and stores a copy as its raw value. */
static int set_slot(struct loader *L, size_t i, const struct sl_cfgnode *n, const char *src)
{
    const struct sl_option *o = &L->opts[i];
    const struct sl_cfgnode *bad = NULL;
    const char *want = NULL;
    if (is_scalar_type(o->type) && n && n->kind != SL_CFG_SCALAR) {
        bad = n;
        want = "a scalar";
    } else if (o->type == SL_OPT_STRLIST && n && n->kind == SL_CFG_MAP) {
        bad = n;
        want = "a list or a comma-separated scalar";
    } else if (o->type == SL_OPT_STRLIST && n && n->kind == SL_CFG_SEQ) {
        for (size_t k = 0; k < n->n && !bad; k++)
            if (n->items[k]->kind != SL_CFG_SCALAR) {
                bad = n->items[k];
                want = "a list of scalars";
            }
    }
    if (bad) {
        key_prefix(L->err, o->key, bad, src);
        sl_buf_appendf(L->err, "expected %s, got %s", want, kind_name(bad->kind));
        return SL_EINVAL;
    }
    struct slot *s = &L->slots[i];
    sl_cfgnode_free(s->raw);
    s->raw = node_clone(n);
    s->src = src;
    return 0;
}

/* Applies a map whose keys continue the dotted path (the file root, nested
 * maps, or a --set of a key prefix). path is restored on return. */
static int apply_map(struct loader *L, const struct sl_cfgnode *map, struct sl_buf *path,
                     const char *src)
{
    int rc = 0;
    for (size_t k = 0; k < map->n && rc == 0; k++) {
        const struct sl_cfgnode *item = map->items[k];
        size_t save = path->len;
        if (save)
            sl_buf_append_char(path, '.');
        sl_buf_append_str(path, item->key);
        long i = find_opt(L, path->data);
        if (i >= 0) {
            rc = set_slot(L, (size_t)i, item, src);
        } else if (is_prefix(L, path->data)) {
            if (item->kind == SL_CFG_MAP) {
                rc = apply_map(L, item, path, src);
            } else if (!node_is_null(item)) {
                key_prefix(L->err, path->data, item, src);
                sl_buf_appendf(L->err, "expected a map, got %s", kind_name(item->kind));
                rc = SL_EINVAL;
            }
        } else {
            rc = unknown_key(L, path->data, item, src);
        }
        path->len = save;
        path->data[save] = '\0';
    }
    return rc;
}

static bool starts_flow_seq(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '[';
}

/* The raw node for a default or --set text of option type t. */
static int text_node(enum sl_opt_type t, const char *text, const char *what,
                     struct sl_cfgnode **out, struct sl_buf *err)
{
    bool yaml = t == SL_OPT_NODE || (t == SL_OPT_STRLIST && starts_flow_seq(text)) ||
                (is_scalar_type(t) && (text[0] == '"' || text[0] == '\''));
    if (yaml)
        return parse_yaml(text, strlen(text), what, false, out, err);
    *out = node_new(SL_CFG_SCALAR, 0);
    (*out)->value = sl_strdup(text);
    return 0;
}

static int load_default(struct loader *L, size_t i)
{
    const struct sl_option *o = &L->opts[i];
    struct sl_cfgnode *n = NULL;
    struct sl_buf what = SL_BUF_INIT;
    sl_buf_appendf(&what, "%s: default", o->key);
    int rc = text_node(o->type, o->def ? o->def : "", what.data, &n, L->err);
    if (rc == 0)
        rc = set_slot(L, i, n, "default");
    sl_cfgnode_free(n);
    sl_buf_release(&what);
    return rc;
}

static int apply_set(struct loader *L, const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        sl_buf_append_str(L->err, "config: --set ");
        put_quoted(L->err, s, false);
        sl_buf_append_str(L->err, ": expected key=value");
        return SL_EINVAL;
    }
    struct sl_buf key = SL_BUF_INIT, what = SL_BUF_INIT;
    struct sl_cfgnode *n = NULL;
    int rc;
    sl_buf_append(&key, s, (size_t)(eq - s));
    sl_buf_appendf(&what, "%s: --set", key.data);
    long i = find_opt(L, key.data);
    if (i >= 0) {
        rc = text_node(L->opts[i].type, eq + 1, what.data, &n, L->err);
        if (rc == 0)
            rc = set_slot(L, (size_t)i, n, "--set");
    } else if (is_prefix(L, key.data)) {
        rc = parse_yaml(eq + 1, strlen(eq + 1), what.data, false, &n, L->err);
        if (rc == 0 && n && n->kind == SL_CFG_MAP) {
            rc = apply_map(L, n, &key, "--set");
        } else if (rc == 0 && !node_is_null(n)) {
            key_prefix(L->err, key.data, NULL, "--set");
            sl_buf_appendf(L->err, "expected a map, got %s", kind_name(n->kind));
            rc = SL_EINVAL;
        }
    } else {
        rc = unknown_key(L, key.data, NULL, "--set");
    }
    sl_cfgnode_free(n);
    sl_buf_release(&key);
    sl_buf_release(&what);
    return rc;
}

/* ---- expansion ----------------------------------------------------------------- */

static int resolve(struct loader *L, size_t i, const char **out);

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > CFG_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* Expands s[0..n) into out. L may be NULL (environment only). On error returns
 * SL_EINVAL with the reason in why (empty when a referenced option already
 * reported its own error). */
static int expand(struct loader *L, const char *s, size_t n, int depth, struct sl_buf *out,
                  struct sl_buf *why)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] != '$' || i + 1 >= n || (s[i + 1] != '$' && s[i + 1] != '{')) {
            sl_buf_append_char(out, s[i++]);
            continue;
        }
        if (s[i + 1] == '$') {
            sl_buf_append_char(out, '$');
            i += 2;
            continue;
        }
        size_t j = i + 2, level = 1;
        for (; j < n; j++) {
            if (s[j] == '{')
                level++;
            else if (s[j] == '}' && --level == 0)
                break;
        }
        if (j >= n) {
            sl_buf_append_str(why, "unterminated ${");
            return SL_EINVAL;
        }
        const char *body = s + i + 2;
        size_t blen = j - i - 2;
        const char *colon = memchr(body, ':', blen);
        size_t nlen = colon ? (size_t)(colon - body) : blen;
        if (!valid_name(body, nlen) || (colon && (colon + 1 >= body + blen || colon[1] != '-'))) {
            sl_buf_appendf(why, "invalid reference \"${%.*s}\" (use ${NAME} or ${NAME:-default})",
                           (int)(blen > 64 ? 64 : blen), body);
            return SL_EINVAL;
        }
        char name[CFG_MAX_NAME + 1];
        memcpy(name, body, nlen);
        name[nlen] = '\0';
        const char *val = NULL;
        long k = L ? find_opt(L, name) : -1;
        if (k >= 0 && is_scalar_type(L->opts[k].type)) {
            int rc = resolve(L, (size_t)k, &val);
            if (rc)
                return rc;
        } else {
            val = getenv(name);
        }
        if (colon && (!val || !*val)) {
            if (depth >= CFG_MAX_DEPTH) {
                sl_buf_append_str(why, "${...} nested too deeply");
                return SL_EINVAL;
            }
            int rc = expand(L, colon + 2, (size_t)(body + blen - colon - 2), depth + 1, out, why);
            if (rc)
                return rc;
        } else if (val) {
            sl_buf_append_str(out, val);
        }
        i = j + 1;
    }
    return 0;
}

int sl_config_expand_env(const char *s, struct sl_buf *out)
{
    struct sl_buf why = SL_BUF_INIT;
    int rc = expand(NULL, s, strlen(s), 0, out, &why);
    sl_buf_release(&why);
    return rc;
}

/* Expands text belonging to option key at node n; reports errors itself. */
static int expand_owned(struct loader *L, size_t i, const struct sl_cfgnode *n, const char *text,
                        struct sl_buf *out)
{
    sl_buf_clear(&L->why);
    int rc = expand(L, text, strlen(text), 0, out, &L->why);
    if (rc && L->why.len) {
        key_prefix(L->err, L->opts[i].key, n, L->slots[i].src);
        sl_buf_append(L->err, L->why.data, L->why.len);
        sl_buf_clear(&L->why);
    }
    return rc;
}

static int resolve(struct loader *L, size_t i, const char **out)
{
    struct slot *s = &L->slots[i];
    if (s->state == 2) {
        *out = s->val;
        return 0;
    }
    if (s->state == 1) {
        /* reported here, at the option that closes the cycle, with the path */
        key_prefix(L->err, L->opts[i].key, s->raw, s->src);
        sl_buf_append_str(L->err, "reference cycle: ");
        size_t p = 0;
        while (p < L->sp && L->stack[p] != i)
            p++;
        for (; p < L->sp; p++)
            sl_buf_appendf(L->err, "%s -> ", L->opts[L->stack[p]].key);
        sl_buf_append_str(L->err, L->opts[i].key);
        return SL_EINVAL;
    }
    s->state = 1;
    L->stack[L->sp++] = i;
    struct sl_buf b = SL_BUF_INIT;
    const char *text = s->raw && s->raw->value ? s->raw->value : "";
    sl_buf_append_str(&b, ""); /* data non-NULL even when empty */
    int rc = expand(L, text, strlen(text), 0, &b, &L->why);
    L->sp--;
    if (rc) {
        if (L->why.len) {
            key_prefix(L->err, L->opts[i].key, s->raw, s->src);
            sl_buf_append(L->err, L->why.data, L->why.len);
            sl_buf_clear(&L->why);
        }
        sl_buf_release(&b);
        s->state = 0;
        return rc;
    }
    s->val = sl_buf_detach(&b, NULL);
    s->state = 2;
    *out = s->val;
    return 0;
}

/* Copy of a NODE value with every scalar expanded; nulls become "". */
static int expand_tree(struct loader *L, size_t i, const struct sl_cfgnode *n,
                       struct sl_cfgnode **out)
{
    struct sl_cfgnode *c = node_new(n->kind, n->line);
    c->key = n->key ? sl_strdup(n->key) : NULL;
    *out = c;
    if (n->kind == SL_CFG_SCALAR) {
        struct sl_buf b = SL_BUF_INIT;
        sl_buf_append_str(&b, "");
        int rc = expand_owned(L, i, n, n->value ? n->value : "", &b);
        c->value = sl_buf_detach(&b, NULL);
        return rc;
    }
    for (size_t k = 0; k < n->n; k++) {
        struct sl_cfgnode *child;
        int rc = expand_tree(L, i, n->items[k], &child);
        node_add(c, child);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- conversion -------------------------------------------------------------- */

static bool parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"true", "yes", "on", "1"};
    static const char *const f[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < SL_ARRAY_LEN(t); i++) {
        if (strcasecmp(s, t[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, f[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || (*s == ' ' || *s == '\t'))
        return false;
    *out = v;
    return true;
}

static void strlist_add(struct sl_strlist *l, const char *p, size_t n)
{
    l->items = sl_reallocarray(l->items, l->n + 1, sizeof(*l->items));
    l->items[l->n++] = sl_strndup(p, n);
}

/* Comma-separated items, blanks around each trimmed, empty ones skipped. */
static void strlist_split(struct sl_strlist *l, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, ",");
        const char *a = s, *e = s + n;
        while (a < e && (*a == ' ' || *a == '\t'))
            a++;
        while (e > a && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > a)
            strlist_add(l, a, (size_t)(e - a));
        s += n + (s[n] == ',');
    }
}

static int convert_strlist(struct loader *L, size_t i, struct sl_strlist *l)
{
    const struct sl_cfgnode *raw = L->slots[i].raw;
    struct sl_buf b = SL_BUF_INIT;
    int rc = 0;
    if (raw && raw->kind == SL_CFG_SCALAR && raw->value) {
        sl_buf_append_str(&b, "");
        rc = expand_owned(L, i, raw, raw->value, &b);
        if (rc == 0)
            strlist_split(l, b.data);
    } else if (raw && raw->kind == SL_CFG_SEQ) {
        for (size_t k = 0; k < raw->n && rc == 0; k++) {
            const struct sl_cfgnode *it = raw->items[k];
            sl_buf_clear(&b);
            sl_buf_append_str(&b, "");
            rc = expand_owned(L, i, it, it->value ? it->value : "", &b);
            if (rc == 0)
                strlist_add(l, b.data, b.len);
        }
    }
    sl_buf_release(&b);
    return rc;
}

static int convert(struct loader *L, size_t i, void *cfg)
{
    const struct sl_option *o = &L->opts[i];
    const struct slot *s = &L->slots[i];
    void *field = (char *)cfg + o->offset;
    const char *v = NULL, *want = NULL;
    int rc;

    if (o->type == SL_OPT_STRLIST)
        return convert_strlist(L, i, field);
    if (o->type == SL_OPT_NODE) {
        if (node_is_null(s->raw))
            return 0;
        return expand_tree(L, i, s->raw, (struct sl_cfgnode **)field);
    }
    rc = resolve(L, i, &v);
    if (rc)
        return rc;
    switch (o->type) {
    case SL_OPT_STRING:
        *(char **)field = sl_strdup(v);
        return 0;
    case SL_OPT_INT:
        if (!parse_int(v, field))
            want = "an integer";
        break;
    case SL_OPT_BOOL:
        if (!parse_bool(v, field))
            want = "a boolean (true/false)";
        break;
    case SL_OPT_DURATION:
        if (!*v || sl_duration_parse(v, strlen(v), field) != 0)
            want = "a duration (e.g. 500ms, 1h30m)";
        break;
    case SL_OPT_SIZE:
        if (!*v || sl_size_parse(v, strlen(v), field) != 0)
            want = "a size (e.g. 64MiB, 1MB, 1048576)";
        break;
    default:
        break;
    }
    if (!want)
        return 0;
    key_prefix(L->err, o->key, s->raw, s->src);
    sl_buf_appendf(L->err, "expected %s, got ", want);
    put_quoted(L->err, v, false);
    return SL_EINVAL;
}

/* ---- load ---------------------------------------------------------------------- */

static int apply_file(struct loader *L, const char *text, size_t len, const char *what)
{
    struct sl_cfgnode *root = NULL;
    int rc = parse_yaml(text, len, what, true, &root, L->err);
    if (rc)
        return rc;
    if (root && root->kind == SL_CFG_MAP) {
        struct sl_buf path = SL_BUF_INIT;
        sl_buf_append_str(&path, "");
        rc = apply_map(L, root, &path, NULL);
        sl_buf_release(&path);
    } else if (!node_is_null(root)) {
        perr_prefix(L->err, what, root->line);
        sl_buf_appendf(L->err, "the top level must be a map of keys, got %s",
                       kind_name(root->kind));
        rc = SL_EINVAL;
    }
    sl_cfgnode_free(root);
    return rc;
}

static int load(const struct sl_option *opts, size_t nopts, void *cfg, const char *text, size_t len,
                const char *what, const char *const *sets, size_t nsets, struct sl_buf *err)
{
    struct loader L = {.opts = opts, .nopts = nopts, .err = err, .why = SL_BUF_INIT};
    int rc = 0;
    L.slots = sl_calloc(nopts ? nopts : 1, sizeof(*L.slots));
    L.stack = sl_calloc(nopts ? nopts : 1, sizeof(*L.stack));
    for (size_t i = 0; i < nopts && rc == 0; i++)
        rc = load_default(&L, i);
    if (rc == 0 && text)
        rc = apply_file(&L, text, len, what);
    for (size_t i = 0; i < nsets && rc == 0; i++)
        rc = apply_set(&L, sets[i]);
    for (size_t i = 0; i < nopts && rc == 0; i++)
        rc = convert(&L, i, cfg);
    for (size_t i = 0; i < nopts; i++) {
        sl_cfgnode_free(L.slots[i].raw);
        sl_free(L.slots[i].val);
    }
    sl_free(L.slots);
    sl_free(L.stack);
    sl_buf_release(&L.why);
    if (rc)
        sl_config_release(opts, nopts, cfg);
    return rc;
}

int sl_config_load_mem(const struct sl_option *opts, size_t nopts, void *cfg, const char *yaml,
                       size_t len, const char *const *sets, size_t nsets, struct sl_buf *err)
{
    return load(opts, nopts, cfg, yaml ? yaml : "", yaml ? len : 0, NULL, sets, nsets, err);
}

int sl_config_load(const struct sl_option *opts, size_t nopts, void *cfg, const char *path,
                   const char *const *sets, size_t nsets, struct sl_buf *err)
{
    if (!path)
        return load(opts, nopts, cfg, NULL, 0, NULL, sets, nsets, err);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        sl_buf_appendf(err, "config: cannot open %s: %s", path, strerror(e));
        return e == ENOENT ? SL_ENOENT : sl_err_from_errno(e);
    }
    struct sl_buf text = SL_BUF_INIT;
    size_t n;
    do {
        char *p = sl_buf_reserve(&text, 65536);
        n = fread(p, 1, 65536, f);
        sl_buf_commit(&text, n);
    } while (n > 0);
    int rc = 0;
    if (ferror(f)) {
        int e = errno;
        sl_buf_appendf(err, "config: cannot read %s: %s", path, strerror(e));
        rc = e ? sl_err_from_errno(e) : SL_EIO;
    }
    fclose(f);
    if (rc == 0)
        rc = load(opts, nopts, cfg, text.data ? text.data : "", text.len, path, sets, nsets, err);
    sl_buf_release(&text);
    return rc;
}

void sl_config_release(const struct sl_option *opts, size_t nopts, void *cfg)
{
    for (size_t i = 0; i < nopts; i++) {
        void *field = (char *)cfg + opts[i].offset;
        if (opts[i].type == SL_OPT_STRING) {
            sl_free(*(char **)field);
            *(char **)field = NULL;
        } else if (opts[i].type == SL_OPT_STRLIST) {
            struct sl_strlist *l = field;
            for (size_t k = 0; k < l->n; k++)
                sl_free(l->items[k]);
            sl_free(l->items);
            l->items = NULL;
            l->n = 0;
        } else if (opts[i].type == SL_OPT_NODE) {
            sl_cfgnode_free(*(struct sl_cfgnode **)field);
            *(struct sl_cfgnode **)field = NULL;
        }
    }
}

/* ---- dump and help ------------------------------------------------------------- */

static bool is_secret(const char *key)
{
    static const char *const sfx[] = {"secret", "secret_access_key", "session_token", "password"};
    size_t n = strlen(key);
    for (size_t i = 0; i < SL_ARRAY_LEN(sfx); i++) {
        size_t m = strlen(sfx[i]);
        if (n >= m && strcmp(key + n - m, sfx[i]) == 0)
            return true;
    }
    return false;
}

/* Flow-style YAML of a node tree (keys are never expanded, so not escaped). */
static void dump_node(struct sl_buf *b, const struct sl_cfgnode *n)
{
    if (n->kind == SL_CFG_SCALAR) {
        put_scalar(b, n->value ? n->value : "", true);
        return;
    }
    bool map = n->kind == SL_CFG_MAP;
    sl_buf_append_char(b, map ? '{' : '[');
    for (size_t i = 0; i < n->n; i++) {
        if (i)
            sl_buf_append_str(b, ", ");
        if (map) {
            /* YAML caps implicit keys at 1024 characters; longer ones need "? " */
            size_t at = b->len;
            put_scalar(b, n->items[i]->key ? n->items[i]->key : "", false);
            if (b->len - at > 1000) {
                sl_buf_reserve(b, 2);
                memmove(b->data + at + 2, b->data + at, b->len - at);
                memcpy(b->data + at, "? ", 2);
                b->len += 2;
                b->data[b->len] = '\0';
            }
            sl_buf_append_str(b, ": ");
        }
        dump_node(b, n->items[i]);
    }
    sl_buf_append_char(b, map ? '}' : ']');
}

static void dump_value(const struct sl_option *o, const void *cfg, struct sl_buf *b)
{
    const void *field = (const char *)cfg + o->offset;
    bool secret = is_secret(o->key);
    switch (o->type) {
    case SL_OPT_STRING: {
        const char *s = *(char *const *)field;
        if (secret && s && *s)
            sl_buf_append_str(b, "<redacted>");
        else
            put_scalar(b, s ? s : "", true);
        break;
    }
    case SL_OPT_INT:
        sl_buf_append_i64(b, *(const int64_t *)field);
        break;
    case SL_OPT_BOOL:
        sl_buf_append_str(b, *(const bool *)field ? "true" : "false");
        break;
    case SL_OPT_DURATION:
        sl_duration_format(b, *(const int64_t *)field);
        break;
    case SL_OPT_SIZE:
        sl_size_format(b, *(const int64_t *)field);
        break;
    case SL_OPT_STRLIST: {
        const struct sl_strlist *l = field;
        if (secret && l->n) {
            sl_buf_append_str(b, "<redacted>");
            break;
        }
        sl_buf_append_char(b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i)
                sl_buf_append_str(b, ", ");
            put_scalar(b, l->items[i], true);
        }
        sl_buf_append_char(b, ']');
        break;
    }
    case SL_OPT_NODE: {
        const struct sl_cfgnode *n = *(struct sl_cfgnode *const *)field;
        if (!n)
            sl_buf_append_str(b, "null");
        else if (secret)
            sl_buf_append_str(b, "<redacted>");
        else
            dump_node(b, n);
        break;
    }
    }
}

/* Prints every option under prefix (its first plen bytes, ending in '.' or
 * empty), grouping keys by their next component in table order. */
static void dump_level(const struct sl_option *opts, size_t nopts, const void *cfg,
                       const char *prefix, size_t plen, int indent, struct sl_buf *out)
{
    for (size_t i = 0; i < nopts; i++) {
        const char *k = opts[i].key;
        if (strncmp(k, prefix, plen) != 0 || !k[plen])
            continue;
        size_t clen = strcspn(k + plen, ".");
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *o = opts[j].key;
            seen = strncmp(o, k, plen + clen) == 0 && (o[plen + clen] == '.' || !o[plen + clen]);
        }
        if (seen)
            continue;
        sl_buf_appendf(out, "%*s%.*s:", indent, "", (int)clen, k + plen);
        if (!k[plen + clen]) {
            sl_buf_append_char(out, ' ');
            dump_value(&opts[i], cfg, out);
            sl_buf_append_char(out, '\n');
        } else {
            sl_buf_append_char(out, '\n');
            dump_level(opts, nopts, cfg, k, plen + clen + 1, indent + 2, out);
        }
    }
}

void sl_config_dump(const struct sl_option *opts, size_t nopts, const void *cfg, struct sl_buf *out)
{
    dump_level(opts, nopts, cfg, "", 0, 0, out);
}

static const char *type_name(enum sl_opt_type t)
{
    switch (t) {
    case SL_OPT_STRING:
        return "string";
    case SL_OPT_INT:
        return "int";
    case SL_OPT_BOOL:
        return "bool";
    case SL_OPT_DURATION:
        return "duration";
    case SL_OPT_SIZE:
        return "size";
    case SL_OPT_STRLIST:
        return "list";
    case SL_OPT_NODE:
        return "yaml";
    }
    return "?";
}

void sl_config_help(const struct sl_option *opts, size_t nopts, struct sl_buf *out)
{
    int width = 0;
    for (size_t i = 0; i < nopts; i++) {
        int w = (int)(strlen(opts[i].key) + strlen(type_name(opts[i].type)) + 11);
        if (w > width)
            width = w;
    }
    if (width > 48)
        width = 48;
    for (size_t i = 0; i < nopts; i++) {
        const struct sl_option *o = &opts[i];
        size_t start = out->len;
        sl_buf_appendf(out, "  --set %s=<%s>", o->key, type_name(o->type));
        int w = (int)(out->len - start);
        sl_buf_appendf(out, "%*s  %s (default: %s)\n", w < width ? width - w : 0, "",
                       o->doc ? o->doc : "", o->def && *o->def ? o->def : "\"\"");
    }
}
