/* Pipeline core: building from the config, the per-entry state, label
 * interning, multiline blocks and their deadlines. The stage families live
 * in their own files (extract.c, labels.c, drop.c, timestamp.c). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline/internal.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/utf8.h"

#define OFF_MASK          ((1ull << 48) - 1)
#define MAX_LABELS        15
#define MAX_NAME_LEN      1024
#define MAX_VALUE_LEN     2048
#define REGEX_MATCH_LIMIT 1000000

/* A multiline block being collected for one source stream. */
struct block {
    struct sl_buf buf;
    bool active;
    int64_t ts_ns;
    size_t nlines;
    uint64_t start_cookie; /* restart point before its first line */
    uint64_t cookie;       /* of its last line */
    int64_t deadline;      /* monotonic */
    struct sl_pipeline_stream *s;
    struct block *prev, *next; /* in the pipeline's pending list, by deadline */
};

struct lset {
    uint64_t hash;
    struct sl_labels labels;
};

struct sl_pipeline_stream {
    struct sl_pipeline *p; /* NULL once the pipeline is freed */
    const struct sl_labels *base;
    sl_pipeline_emit_fn emit;
    void *ud;
    struct block blk[2];
    uint64_t prev_cookie;
    bool have_prev;
    int64_t last_ts;
    struct lset **sets;
    size_t nsets;
    struct sl_pipeline_stream *prev, *next;
};

struct sl__pl_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
};

struct sl_pipeline {
    struct sl__pl_stage *stages;
    size_t n;
    struct sl__pl_regex *ml_first; /* multiline stage, NULL if none */
    int64_t ml_wait;
    size_t ml_max_lines;
    struct sl_arena arena;
    struct sl_buf hashbuf;
    struct block *pend_head, *pend_tail;
    struct sl_pipeline_stream *streams;
    struct sl_metrics *metrics;
    struct sl_metric_family *dropped;
    struct sl_metric *m_skip_name, *m_skip_value, *m_skip_many, *m_skip_sets, *m_skip_meta;
    struct sl_log_limit drop_lim, skip_lim;
    int64_t (*mono)(void);
    int64_t (*wall)(void);
};

static void count(struct sl_metric *m)
{
    if (m)
        sl_counter_inc(m);
}

/* --- build helpers --- */

int sl__pl_fail(struct sl__pl_build *b, const struct sl_cfgnode *at, const char *key,
                const char *fmt, ...)
{
    int line = at && at->line ? at->line : b->line;
    sl_buf_appendf(b->err, "config: pipeline[%d] (%s): ", b->index, b->stage ? b->stage : "?");
    if (line)
        sl_buf_appendf(b->err, "line %d: ", line);
    if (key)
        sl_buf_appendf(b->err, "%s: ", key);
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    sl_buf_append_str(b->err, tmp);
    return SL_EINVAL;
}

const char *sl__pl_opt_str(const struct sl_cfgnode *opts, const char *key)
{
    const struct sl_cfgnode *n = sl_cfgnode_get(opts, key);
    return n && n->kind == SL_CFG_SCALAR ? (n->value ? n->value : "") : NULL;
}

int sl__pl_check_keys(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      const char *const *allowed)
{
    if (!opts || opts->kind != SL_CFG_MAP)
        return sl__pl_fail(b, opts, NULL, "expected a map of options");
    for (size_t i = 0; i < opts->n; i++) {
        const struct sl_cfgnode *it = opts->items[i];
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(it->key, *a);
        if (!ok) {
            struct sl_buf known = SL_BUF_INIT;
            for (const char *const *a = allowed; *a; a++)
                sl_buf_appendf(&known, "%s%s", a == allowed ? "" : ", ", *a);
            int rc = sl__pl_fail(b, it, it->key, "unknown option (known: %s)", known.data);
            sl_buf_release(&known);
            return rc;
        }
    }
    return 0;
}

int sl__pl_opt_map(struct sl__pl_build *b, const struct sl_cfgnode *opts, const char *key,
                   bool required, const struct sl_cfgnode **out)
{
    const struct sl_cfgnode *n = sl_cfgnode_get(opts, key);
    *out = NULL;
    if (!n || (n->kind == SL_CFG_SCALAR && (!n->value || !*n->value))) {
        if (required)
            return sl__pl_fail(b, n ? n : opts, key, "required");
        return 0;
    }
    if (n->kind != SL_CFG_MAP)
        return sl__pl_fail(b, n, key, "expected a map");
    for (size_t i = 0; i < n->n; i++)
        if (n->items[i]->kind != SL_CFG_SCALAR)
            return sl__pl_fail(b, n->items[i], key, "%s: expected a scalar", n->items[i]->key);
    *out = n;
    return 0;
}

/* --- regexes --- */

int sl__pl_regex_new(struct sl__pl_build *b, const struct sl_cfgnode *at, const char *key,
                     const char *pattern, struct sl__pl_regex **out)
{
    int ec;
    PCRE2_SIZE eoff;
    uint32_t opts =
        PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &ec, &eoff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return sl__pl_fail(b, at, key, "%s at offset %zu", (const char *)msg, (size_t)eoff);
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter works too */
    struct sl__pl_regex *re = SL_NEW(struct sl__pl_regex);
    re->code = code;
    re->md = pcre2_match_data_create_from_pattern(code, NULL);
    re->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(re->mctx, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, REGEX_MATCH_LIMIT / 10);
    *out = re;
    return 0;
}

void sl__pl_regex_free(struct sl__pl_regex *re)
{
    if (!re)
        return;
    pcre2_match_data_free(re->md);
    pcre2_match_context_free(re->mctx);
    pcre2_code_free(re->code);
    sl_free(re);
}

static int regex_run(struct sl__pl_regex *re, struct sl_bytes subject)
{
    return pcre2_match(re->code, (PCRE2_SPTR)(subject.len ? subject.ptr : ""), subject.len, 0, 0,
                       re->md, re->mctx);
}

int sl__pl_regex_match(struct sl__pl_regex *re, struct sl_bytes subject)
{
    return regex_run(re, subject) > 0;
}

int sl__pl_regex_extract(struct sl__pl_regex *re, struct sl__pl_run *r, struct sl_bytes subject)
{
    if (regex_run(re, subject) <= 0)
        return 0;
    uint32_t namecount = 0, entry = 0;
    PCRE2_SPTR table;
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &namecount);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
    uint32_t nov = pcre2_get_ovector_count(re->md);
    for (uint32_t i = 0; i < namecount; i++) {
        PCRE2_SPTR e = table + (size_t)i * entry;
        uint32_t g = ((uint32_t)e[0] << 8) | e[1];
        if (g >= nov || ov[2 * g] == PCRE2_UNSET)
            continue;
        const char *name = (const char *)e + 2;
        struct sl_bytes v = sl_bytes(subject.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        sl__pl_set(r, sl_bytes_str(name), sl_arena_bytes(r->arena, v));
    }
    return 1;
}

/* --- entry state --- */

bool sl__pl_get(const struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes *value)
{
    const struct sl__pl_entry *e = r->e;
    for (size_t i = e->nex; i-- > 0;) {
        if (sl_bytes_eq(e->ex[i].name, name)) {
            *value = e->ex[i].value;
            return true;
        }
    }
    return false;
}

static void *grow(struct sl_arena *a, void *old, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return old;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = sl_arena_alloc(a, nc * size);
    if (n)
        memcpy(p, old, n * size);
    *cap = nc;
    return p;
}

void sl__pl_set(struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes value)
{
    struct sl__pl_entry *e = r->e;
    e->ex = grow(r->arena, e->ex, e->nex, &e->capex, sizeof(*e->ex));
    e->ex[e->nex++] = (struct sl__pl_kv){name, value};
}

static void own_labels(struct sl__pl_run *r)
{
    struct sl__pl_entry *e = r->e;
    if (e->lab_changed)
        return;
    size_t cap = e->nlab + 8;
    struct sl_label *l = sl_arena_alloc(r->arena, cap * sizeof(*l));
    if (e->nlab)
        memcpy(l, e->lab, e->nlab * sizeof(*l));
    e->lab = l;
    e->caplab = cap;
    e->lab_changed = true;
}

static void skipped(struct sl__pl_run *r, struct sl_metric *m, const char *what,
                    struct sl_bytes name)
{
    char q[96];
    count(m);
    sl_log_limited(&r->p->skip_lim, SL_LOG_WARN, "pipeline skipped a label", "reason=%s name=%s",
                   what, SL_LOGQ(q, name.ptr, name.len));
}

static bool name_ok(struct sl__pl_run *r, struct sl_bytes name, struct sl_metric *m)
{
    if (name.len <= MAX_NAME_LEN && sl_label_name_valid(name))
        return true;
    skipped(r, m ? m : r->p->m_skip_name, "invalid_name", name);
    return false;
}

static bool value_ok(struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes v,
                     struct sl_metric *m)
{
    if (v.len <= MAX_VALUE_LEN && sl_utf8_valid(v.ptr, v.len))
        return true;
    skipped(r, m ? m : r->p->m_skip_value, "invalid_value", name);
    return false;
}

void sl__pl_label_del(struct sl__pl_run *r, struct sl_bytes name)
{
    struct sl__pl_entry *e = r->e;
    for (size_t i = 0; i < e->nlab; i++) {
        if (sl_bytes_eq(e->lab[i].name, name)) {
            own_labels(r);
            memmove(&e->lab[i], &e->lab[i + 1], (e->nlab - i - 1) * sizeof(*e->lab));
            e->nlab--;
            return;
        }
    }
}

void sl__pl_label_set(struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes value)
{
    struct sl__pl_entry *e = r->e;
    if (!name_ok(r, name, NULL))
        return;
    if (value.len == 0) {
        sl__pl_label_del(r, name);
        return;
    }
    if (!value_ok(r, name, value, NULL))
        return;
    for (size_t i = 0; i < e->nlab; i++) {
        if (sl_bytes_eq(e->lab[i].name, name)) {
            if (sl_bytes_eq(e->lab[i].value, value))
                return;
            own_labels(r);
            e->lab[i].value = value;
            return;
        }
    }
    if (e->nlab >= MAX_LABELS) {
        skipped(r, r->p->m_skip_many, "too_many_labels", name);
        return;
    }
    own_labels(r);
    e->lab = grow(r->arena, e->lab, e->nlab, &e->caplab, sizeof(*e->lab));
    e->lab[e->nlab++] = (struct sl_label){name, value};
}

void sl__pl_label_keep(struct sl__pl_run *r, const struct sl_bytes *names, size_t n)
{
    struct sl__pl_entry *e = r->e;
    for (size_t i = 0; i < e->nlab;) {
        bool keep = false;
        for (size_t k = 0; k < n && !keep; k++)
            keep = sl_bytes_eq(e->lab[i].name, names[k]);
        if (keep) {
            i++;
            continue;
        }
        own_labels(r);
        memmove(&e->lab[i], &e->lab[i + 1], (e->nlab - i - 1) * sizeof(*e->lab));
        e->nlab--;
    }
}

void sl__pl_meta_set(struct sl__pl_run *r, struct sl_bytes name, struct sl_bytes value)
{
    struct sl__pl_entry *e = r->e;
    if (!name_ok(r, name, r->p->m_skip_meta) || !value_ok(r, name, value, r->p->m_skip_meta))
        return;
    for (size_t i = 0; i < e->nmeta; i++) {
        if (sl_bytes_eq(e->meta[i].name, name)) {
            e->meta[i].value = value;
            return;
        }
    }
    e->meta = grow(r->arena, e->meta, e->nmeta, &e->capmeta, sizeof(*e->meta));
    e->meta[e->nmeta++] = (struct sl_label){name, value};
}

struct sl_metric *sl__pl_drop_counter(struct sl_pipeline *p, const char *reason)
{
    return p->dropped ? sl_metric_with(p->dropped, reason) : NULL;
}

void sl__pl_drop(struct sl__pl_run *r, struct sl_metric *m, const char *reason)
{
    char q[160];
    count(m);
    r->e->drop_reason = reason;
    sl_log_limited(&r->p->drop_lim, SL_LOG_INFO, "pipeline dropped a line", "reason=%s line=%s",
                   reason, SL_LOGQ(q, r->e->line.ptr, r->e->line.len));
}

int64_t sl__pl_wall(const struct sl_pipeline *p)
{
    return p->wall();
}

int64_t *sl__pl_last_ts(struct sl_pipeline_stream *s)
{
    return &s->last_ts;
}

/* --- label sets --- */

static uint64_t lset_hash(struct sl_pipeline *p, const struct sl_label *l, size_t n)
{
    sl_buf_clear(&p->hashbuf);
    for (size_t i = 0; i < n; i++) {
        sl_buf_append(&p->hashbuf, l[i].name.ptr, l[i].name.len);
        sl_buf_append(&p->hashbuf, "\0", 1);
        sl_buf_append(&p->hashbuf, l[i].value.ptr, l[i].value.len);
        sl_buf_append(&p->hashbuf, "\0", 1);
    }
    return sl_xxh3(p->hashbuf.data ? p->hashbuf.data : "", p->hashbuf.len);
}

static bool lset_eq(const struct sl_label *a, size_t na, const struct sl_labels *b)
{
    if (na != b->n)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!sl_bytes_eq(a[i].name, b->items[i].name) ||
            !sl_bytes_eq(a[i].value, b->items[i].value))
            return false;
    return true;
}

/* The stable id of the entry's labels: 0 for the base set. */
static uint32_t intern(struct sl_pipeline_stream *s, struct sl__pl_entry *e,
                       const struct sl_labels **out)
{
    struct sl_labels cur = {e->lab, e->nlab};
    sl_labels_sort(&cur);
    if (lset_eq(e->lab, e->nlab, s->base)) {
        *out = s->base;
        return 0;
    }
    uint64_t h = lset_hash(s->p, e->lab, e->nlab);
    for (size_t i = 0; i < s->nsets; i++) {
        if (s->sets[i]->hash == h && lset_eq(e->lab, e->nlab, &s->sets[i]->labels)) {
            *out = &s->sets[i]->labels;
            return (uint32_t)i + 1;
        }
    }
    if (s->nsets >= SL_PIPELINE_MAX_LABEL_SETS) {
        count(s->p->m_skip_sets);
        sl_log_limited(&s->p->skip_lim, SL_LOG_WARN,
                       "pipeline produced too many label sets for one file; keeping its own labels",
                       "max=%d", SL_PIPELINE_MAX_LABEL_SETS);
        *out = s->base;
        return 0;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < e->nlab; i++)
        bytes += e->lab[i].name.len + e->lab[i].value.len;
    struct lset *ls = sl_malloc(sizeof(*ls) + e->nlab * sizeof(struct sl_label) + bytes + 1);
    struct sl_label *items = (struct sl_label *)(ls + 1);
    char *mem = (char *)(items + e->nlab);
    for (size_t i = 0; i < e->nlab; i++) {
        memcpy(mem, e->lab[i].name.ptr, e->lab[i].name.len);
        items[i].name = sl_bytes(mem, e->lab[i].name.len);
        mem += e->lab[i].name.len;
        if (e->lab[i].value.len)
            memcpy(mem, e->lab[i].value.ptr, e->lab[i].value.len);
        items[i].value = sl_bytes(mem, e->lab[i].value.len);
        mem += e->lab[i].value.len;
    }
    ls->hash = h;
    ls->labels = (struct sl_labels){items, e->nlab};
    s->sets = sl_reallocarray(s->sets, s->nsets + 1, sizeof(*s->sets));
    s->sets[s->nsets++] = ls;
    *out = &ls->labels;
    return (uint32_t)s->nsets;
}

/* --- running --- */

static uint64_t cap_cookie(uint64_t c, uint64_t start)
{
    if ((c >> 48) == (start >> 48) && (start & OFF_MASK) < (c & OFF_MASK))
        return start;
    return c;
}

/* Runs the stages after multiline on one entry and reports it. */
static void run_entry(struct sl_pipeline_stream *s, int64_t ts, struct sl_bytes line,
                      uint64_t cookie)
{
    struct sl_pipeline *p = s->p;
    sl_arena_clear(&p->arena);
    struct sl__pl_entry e = {.ts_ns = ts, .line = line};
    e.lab = s->base->items;
    e.nlab = s->base->n;
    struct sl__pl_run r = {p, s, &p->arena, &e};
    for (size_t i = 0; i < p->n && !e.drop_reason; i++)
        p->stages[i].run(&p->stages[i], &r);
    struct sl_pipeline_out o = {.ts_ns = e.ts_ns, .line = e.line, .cookie = cookie};
    for (int k = 0; k < 2; k++)
        if (s->blk[k].active)
            o.cookie = cap_cookie(o.cookie, s->blk[k].start_cookie);
    if (e.drop_reason) {
        o.dropped = true;
        o.reason = e.drop_reason;
        o.labels = s->base;
    } else {
        o.label_set = e.lab_changed ? intern(s, &e, &o.labels) : 0;
        if (!e.lab_changed)
            o.labels = s->base;
        o.meta = e.meta;
        o.nmeta = e.nmeta;
    }
    s->emit(s->ud, &o);
}

static void pend_unlink(struct sl_pipeline *p, struct block *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else if (p && p->pend_head == b)
        p->pend_head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else if (p && p->pend_tail == b)
        p->pend_tail = b->prev;
    b->prev = b->next = NULL;
}

static void pend_append(struct sl_pipeline *p, struct block *b)
{
    b->prev = p->pend_tail;
    b->next = NULL;
    if (p->pend_tail)
        p->pend_tail->next = b;
    else
        p->pend_head = b;
    p->pend_tail = b;
}

static void emit_block(struct sl_pipeline_stream *s, struct block *b)
{
    pend_unlink(s->p, b);
    b->active = false;
    run_entry(s, b->ts_ns, sl_buf_bytes(&b->buf), b->cookie);
}

bool sl_pipeline_push(struct sl_pipeline_stream *s, const struct sl_pipeline_in *in)
{
    struct sl_pipeline *p = s->p;
    uint64_t before = s->have_prev ? s->prev_cookie : (in->cookie & ~OFF_MASK);
    s->prev_cookie = in->cookie;
    s->have_prev = true;
    if (!p->ml_first) {
        run_entry(s, in->ts_ns, in->line, in->cookie);
        return true;
    }
    struct block *b = &s->blk[in->stream ? 1 : 0];
    if (b->active && sl__pl_regex_match(p->ml_first, in->line))
        emit_block(s, b);
    bool started = !b->active;
    if (started) {
        sl_buf_clear(&b->buf);
        b->active = true;
        b->ts_ns = in->ts_ns;
        b->nlines = 0;
        b->start_cookie = before;
        b->s = s;
    } else {
        sl_buf_append(&b->buf, "\n", 1);
        pend_unlink(p, b);
    }
    sl_buf_append(&b->buf, in->line.ptr, in->line.len);
    b->nlines++;
    b->cookie = in->cookie;
    b->deadline = p->mono() + p->ml_wait;
    pend_append(p, b);
    if (b->nlines >= p->ml_max_lines)
        emit_block(s, b);
    return started;
}

void sl_pipeline_stream_flush(struct sl_pipeline_stream *s)
{
    /* Oldest first, so the entries keep their order. */
    for (int round = 0; round < 2; round++) {
        struct block *a = &s->blk[0], *b = &s->blk[1];
        struct block *first = a->active && (!b->active || a->ts_ns <= b->ts_ns) ? a : b;
        if (first->active)
            emit_block(s, first);
    }
}

int64_t sl_pipeline_expire(struct sl_pipeline *p, int64_t now)
{
    while (p->pend_head && p->pend_head->deadline <= now)
        emit_block(p->pend_head->s, p->pend_head);
    return p->pend_head ? p->pend_head->deadline : -1;
}

void sl_pipeline_flush_all(struct sl_pipeline *p)
{
    while (p->pend_head)
        emit_block(p->pend_head->s, p->pend_head);
}

bool sl_pipeline_has_multiline(const struct sl_pipeline *p)
{
    return p && p->ml_first;
}

/* --- streams --- */

struct sl_pipeline_stream *sl_pipeline_stream_new(struct sl_pipeline *p,
                                                  const struct sl_labels *base,
                                                  sl_pipeline_emit_fn emit, void *ud)
{
    struct sl_pipeline_stream *s = SL_NEW(struct sl_pipeline_stream);
    s->p = p;
    s->base = base;
    s->emit = emit;
    s->ud = ud;
    s->next = p->streams;
    if (p->streams)
        p->streams->prev = s;
    p->streams = s;
    return s;
}

void sl_pipeline_stream_free(struct sl_pipeline_stream *s)
{
    if (!s)
        return;
    struct sl_pipeline *p = s->p;
    for (int k = 0; k < 2; k++) {
        if (s->blk[k].active && p)
            pend_unlink(p, &s->blk[k]);
        sl_buf_release(&s->blk[k].buf);
    }
    if (p) {
        if (s->prev)
            s->prev->next = s->next;
        else
            p->streams = s->next;
        if (s->next)
            s->next->prev = s->prev;
    }
    for (size_t i = 0; i < s->nsets; i++)
        sl_free(s->sets[i]);
    sl_free(s->sets);
    sl_free(s);
}

/* --- building --- */

static int build_multiline(struct sl__pl_build *b, const struct sl_cfgnode *opts)
{
    static const char *const keys[] = {"firstline", "max_wait_time", "max_lines", NULL};
    struct sl_pipeline *p = b->p;
    if (b->index != 0)
        return sl__pl_fail(b, opts, NULL, "multiline must be the first stage");
    int rc = sl__pl_check_keys(b, opts, keys);
    if (rc)
        return rc;
    const char *first = sl__pl_opt_str(opts, "firstline");
    if (!first || !*first)
        return sl__pl_fail(b, opts, "firstline", "required (a regular expression)");
    const char *wait = sl__pl_opt_str(opts, "max_wait_time");
    p->ml_wait = 3 * SL_NS_PER_SEC;
    if (wait && *wait &&
        (sl_duration_parse(wait, strlen(wait), &p->ml_wait) != 0 || p->ml_wait <= 0))
        return sl__pl_fail(b, sl_cfgnode_get(opts, "max_wait_time"), "max_wait_time",
                           "expected a positive duration such as 3s, got \"%s\"", wait);
    const char *ml = sl__pl_opt_str(opts, "max_lines");
    p->ml_max_lines = 128;
    if (ml && *ml) {
        char *end;
        long v = strtol(ml, &end, 10);
        if (*end || v <= 0 || v > 1000000)
            return sl__pl_fail(b, sl_cfgnode_get(opts, "max_lines"), "max_lines",
                               "expected a positive integer, got \"%s\"", ml);
        p->ml_max_lines = (size_t)v;
    }
    return sl__pl_regex_new(b, sl_cfgnode_get(opts, "firstline"), "firstline", first, &p->ml_first);
}

typedef int (*build_fn)(struct sl__pl_build *, const struct sl_cfgnode *, struct sl__pl_stage *);

static const struct {
    const char *name;
    build_fn fn;
} builders[] = {
    {"json", sl__pl_build_json},
    {"logfmt", sl__pl_build_logfmt},
    {"regex", sl__pl_build_regex},
    {"labels", sl__pl_build_labels},
    {"structured_metadata", sl__pl_build_meta},
    {"static_labels", sl__pl_build_static},
    {"labeldrop", sl__pl_build_labeldrop},
    {"labelkeep", sl__pl_build_labelkeep},
    {"labelallow", sl__pl_build_labelkeep},
    {"drop", sl__pl_build_drop},
    {"timestamp", sl__pl_build_timestamp},
    {"output", sl__pl_build_output},
};

static int build_stage(struct sl__pl_build *b, const struct sl_cfgnode *item)
{
    if (item->kind != SL_CFG_MAP || item->n != 1)
        return sl__pl_fail(b, item, NULL,
                           "expected a map with one key, the stage name (e.g. - json: {...})");
    const struct sl_cfgnode *opts = item->items[0];
    b->stage = opts->key;
    if (!strcmp(opts->key, "multiline"))
        return build_multiline(b, opts);
    for (size_t i = 0; i < SL_ARRAY_LEN(builders); i++) {
        if (strcmp(opts->key, builders[i].name) != 0)
            continue;
        struct sl_pipeline *p = b->p;
        struct sl__pl_stage st = {.name = builders[i].name, .index = b->index};
        int rc = builders[i].fn(b, opts, &st);
        if (rc) {
            if (st.free && st.impl)
                st.free(st.impl);
            return rc;
        }
        p->stages = sl_reallocarray(p->stages, p->n + 1, sizeof(*p->stages));
        p->stages[p->n++] = st;
        return 0;
    }
    return sl__pl_fail(b, opts, NULL,
                       "unknown stage (known: json, logfmt, regex, labels, structured_metadata, "
                       "static_labels, labeldrop, labelkeep, drop, multiline, timestamp, output)");
}

static bool node_empty(const struct sl_cfgnode *n)
{
    return !n || (n->kind == SL_CFG_SEQ && n->n == 0) ||
           (n->kind == SL_CFG_SCALAR && (!n->value || !*n->value || !strcmp(n->value, "[]")));
}

int sl_pipeline_new(const struct sl_cfgnode *node, struct sl_metrics *metrics,
                    struct sl_pipeline **out, struct sl_buf *err)
{
    *out = NULL;
    if (node_empty(node))
        return 0;
    struct sl_buf scratch = SL_BUF_INIT;
    if (!err)
        err = &scratch;
    if (node->kind != SL_CFG_SEQ) {
        sl_buf_appendf(err, "config: pipeline: line %d: expected a list of stages", node->line);
        sl_buf_release(&scratch);
        return SL_EINVAL;
    }
    struct sl_pipeline *p = SL_NEW(struct sl_pipeline);
    p->mono = sl_mono_ns;
    p->wall = sl_now_ns;
    p->drop_lim.period_ms = 60000;
    p->drop_lim.burst = 5;
    sl_arena_init(&p->arena, 16 * 1024);
    if (metrics) {
        p->metrics = metrics;
        p->dropped = sl_metrics_counter(metrics, "sluice_agent_lines_dropped_total",
                                        "Lines dropped, by reason.", "reason");
        struct sl_metric_family *sk = sl_metrics_counter(
            metrics, "sluice_agent_pipeline_labels_skipped_total",
            "Labels or metadata a pipeline stage could not set, by reason.", "reason");
        p->m_skip_name = sl_metric_with(sk, "invalid_name");
        p->m_skip_value = sl_metric_with(sk, "invalid_value");
        p->m_skip_many = sl_metric_with(sk, "too_many_labels");
        p->m_skip_sets = sl_metric_with(sk, "label_sets");
        p->m_skip_meta = sl_metric_with(sk, "invalid_metadata");
    }
    struct sl__pl_build b = {.p = p, .err = err};
    for (size_t i = 0; i < node->n; i++) {
        b.index = (int)i;
        b.stage = NULL;
        b.line = node->items[i]->line;
        int rc = build_stage(&b, node->items[i]);
        if (rc) {
            sl_pipeline_free(p);
            sl_buf_release(&scratch);
            return rc;
        }
    }
    sl_buf_release(&scratch);
    *out = p;
    return 0;
}

void sl_pipeline_set_clocks(struct sl_pipeline *p, int64_t (*mono)(void), int64_t (*wall)(void))
{
    p->mono = mono ? mono : sl_mono_ns;
    p->wall = wall ? wall : sl_now_ns;
}

void sl_pipeline_free(struct sl_pipeline *p)
{
    if (!p)
        return;
    for (struct sl_pipeline_stream *s = p->streams; s; s = s->next) {
        s->p = NULL;
        for (int k = 0; k < 2; k++)
            s->blk[k].prev = s->blk[k].next = NULL;
    }
    for (size_t i = 0; i < p->n; i++)
        if (p->stages[i].free)
            p->stages[i].free(p->stages[i].impl);
    sl_free(p->stages);
    sl__pl_regex_free(p->ml_first);
    sl_arena_release(&p->arena);
    sl_buf_release(&p->hashbuf);
    sl_free(p);
}
