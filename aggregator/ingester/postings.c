/* Postings: names and values in open-addressing tables (linear probing,
 * backward-shift deletion) over dense arrays, so that walking every name or
 * value reads one array; each value holds an unsorted list of slots, and
 * each slot remembers its position in the list of each of its labels, so
 * that a stream leaves in O(labels) (swap with the list's last), which
 * matters when a flush removes 100 000 streams that share a namespace.
 * Equality matchers walk the smallest list and check the other pairs on the
 * candidate's own labels instead of intersecting lists.
 *
 * Time bounds live in their own array (16 bytes per slot), apart from the
 * slots, so that checking many streams' bounds touches few cache lines; when
 * the range covers the bounds of every stream (tracked as an envelope that
 * only widens while streams exist), no bounds are checked at all. */
#include "aggregator/ingester/postings.h"

#include <stdbool.h>
#include <string.h>

#include "common/hash.h"
#include "common/mem.h"

/* Positions kept inside the slot for label sets up to this size. */
#define INLINE_POS 6
/* A value's list lives inside the value up to this many slots. */
#define INLINE_IDS 2
#define NO_SLOT    UINT32_MAX

struct slot {
    void *owner; /* NULL: free */
    const struct sl_labels *ls;
    uint32_t *pos; /* npos > INLINE_POS: position in each label's list */
    uint32_t ipos[INLINE_POS];
    uint32_t npos; /* ls->n, kept so that freeing never reads the labels */
    uint32_t next_free;
};

struct bound {
    int64_t min, max;
};

/* Tables hold item index + 1 (0: empty); the key is the first member of
 * every item type, so one probe routine serves names and values. */
struct htab {
    uint32_t *t;
    size_t cap; /* power of two, or 0 */
};

struct pvalue {
    struct sl_bytes v; /* key: into a holder's labels */
    uint32_t n, cap;
    union {
        uint32_t in[INLINE_IDS];
        uint32_t *heap;
    } ids;
};

struct pname {
    struct sl_bytes name; /* key: into a holder's labels */
    struct pvalue *vals;
    size_t nvals, capvals;
    struct htab tab;
};

struct sl_postings {
    struct slot *slots;
    struct bound *bounds;
    size_t nslots, capslots;
    uint32_t free_head;
    size_t nstreams, nempty; /* in use; in use without bounds */
    struct pname *names;
    size_t nnames, capnames;
    struct htab tab;
    int64_t env_min, env_max; /* envelope of every stream's bounds */
    bool env_any;
};

static const char empty_byte[1];

/* ---- tables ---- */

static const struct sl_bytes *key_at(const void *base, size_t stride, uint32_t i)
{
    return (const struct sl_bytes *)(const void *)((const char *)base + stride * i);
}

static size_t key_hash(struct sl_bytes k)
{
    return (size_t)sl_xxh3(k.ptr, k.len);
}

/* The table position holding key, or of the empty cell where it would go. */
static size_t htab_find(const struct htab *h, const void *base, size_t stride, struct sl_bytes k)
{
    size_t mask = h->cap - 1;
    for (size_t j = key_hash(k) & mask;; j = (j + 1) & mask) {
        uint32_t e = h->t[j];
        if (!e || sl_bytes_eq(*key_at(base, stride, e - 1), k))
            return j;
    }
}

static void htab_rebuild(struct htab *h, size_t cap, const void *base, size_t stride, size_t n)
{
    sl_free(h->t);
    h->t = sl_calloc(cap, sizeof *h->t);
    h->cap = cap;
    for (uint32_t i = 0; i < n; i++)
        h->t[htab_find(h, base, stride, *key_at(base, stride, i))] = i + 1;
}

/* Room for one more of n items, at most half full. */
static void htab_reserve(struct htab *h, const void *base, size_t stride, size_t n)
{
    if (2 * (n + 1) > h->cap)
        htab_rebuild(h, h->cap ? 2 * h->cap : 8, base, stride, n);
}

/* Empties cell j, shifting back the cells of its probe run. */
static void htab_del(struct htab *h, size_t j, const void *base, size_t stride)
{
    size_t mask = h->cap - 1, i = j;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t e = h->t[j];
        if (!e)
            break;
        size_t k = key_hash(*key_at(base, stride, e - 1)) & mask;
        /* e may move to i if its home k is not in (i, j] cyclically */
        bool stay = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!stay) {
            h->t[i] = e;
            i = j;
        }
    }
    h->t[i] = 0;
}

/* Removes item idx of a dense array of n items (the last moves into its
 * place); returns the new n. */
static size_t dense_del(struct htab *h, void *base, size_t stride, size_t n, uint32_t idx)
{
    htab_del(h, htab_find(h, base, stride, *key_at(base, stride, idx)), base, stride);
    uint32_t last = (uint32_t)(n - 1);
    if (idx != last) {
        size_t j = htab_find(h, base, stride, *key_at(base, stride, last));
        memcpy((char *)base + stride * idx, (char *)base + stride * last, stride);
        h->t[j] = idx + 1;
    }
    return n - 1;
}

/* ---- values and names ---- */

static uint32_t *value_ids(struct pvalue *v)
{
    return v->cap > INLINE_IDS ? v->ids.heap : v->ids.in;
}

static const uint32_t *value_ids_c(const struct pvalue *v)
{
    return v->cap > INLINE_IDS ? v->ids.heap : v->ids.in;
}

static void value_push(struct pvalue *v, uint32_t id)
{
    if (v->n == v->cap) {
        uint32_t ncap = v->cap * 2;
        uint32_t *ids = sl_mallocarray(ncap, sizeof *ids);
        memcpy(ids, value_ids(v), v->n * sizeof *ids);
        if (v->cap > INLINE_IDS)
            sl_free(v->ids.heap);
        v->ids.heap = ids;
        v->cap = ncap;
    }
    value_ids(v)[v->n++] = id;
}

static struct pname *name_get(struct sl_postings *p, struct sl_bytes name)
{
    htab_reserve(&p->tab, p->names, sizeof *p->names, p->nnames);
    size_t j = htab_find(&p->tab, p->names, sizeof *p->names, name);
    if (p->tab.t[j])
        return &p->names[p->tab.t[j] - 1];
    if (p->nnames == p->capnames) {
        p->capnames = p->capnames ? 2 * p->capnames : 8;
        p->names = sl_reallocarray(p->names, p->capnames, sizeof *p->names);
    }
    struct pname *pn = &p->names[p->nnames];
    memset(pn, 0, sizeof *pn);
    pn->name = name;
    p->tab.t[j] = (uint32_t)++p->nnames;
    return pn;
}

static struct pvalue *value_get(struct pname *pn, struct sl_bytes v)
{
    htab_reserve(&pn->tab, pn->vals, sizeof *pn->vals, pn->nvals);
    size_t j = htab_find(&pn->tab, pn->vals, sizeof *pn->vals, v);
    if (pn->tab.t[j])
        return &pn->vals[pn->tab.t[j] - 1];
    if (pn->nvals == pn->capvals) {
        pn->capvals = pn->capvals ? 2 * pn->capvals : 4;
        pn->vals = sl_reallocarray(pn->vals, pn->capvals, sizeof *pn->vals);
    }
    struct pvalue *pv = &pn->vals[pn->nvals];
    memset(pv, 0, sizeof *pv);
    pv->v = v;
    pv->cap = INLINE_IDS;
    pn->tab.t[j] = (uint32_t)++pn->nvals;
    return pv;
}

static const struct pname *name_find(const struct sl_postings *p, struct sl_bytes name)
{
    if (!p->tab.cap)
        return NULL;
    uint32_t e = p->tab.t[htab_find(&p->tab, p->names, sizeof *p->names, name)];
    return e ? &p->names[e - 1] : NULL;
}

static const struct pvalue *value_find(const struct pname *pn, struct sl_bytes v)
{
    if (!pn->tab.cap)
        return NULL;
    uint32_t e = pn->tab.t[htab_find(&pn->tab, pn->vals, sizeof *pn->vals, v)];
    return e ? &pn->vals[e - 1] : NULL;
}

/* ---- slots ---- */

static uint32_t *slot_pos(struct slot *s)
{
    return s->npos > INLINE_POS ? s->pos : s->ipos;
}

/* Index of name in the slot's labels (which hold it). */
static size_t slot_label(const struct slot *s, struct sl_bytes name)
{
    size_t lo = 0, hi = s->ls->n;
    while (lo < hi) { /* sorted by name */
        size_t mid = (lo + hi) / 2;
        int c = sl_bytes_cmp(s->ls->items[mid].name, name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < s->ls->n; i++) /* not sorted after all: still correct */
        if (sl_bytes_eq(s->ls->items[i].name, name))
            return i;
    return 0;
}

static struct sl_bytes stored(struct sl_bytes b)
{
    return b.len ? b : sl_bytes(empty_byte, 0);
}

struct sl_postings *sl_postings_new(void)
{
    struct sl_postings *p = SL_NEW(struct sl_postings);
    p->free_head = NO_SLOT;
    return p;
}

void sl_postings_free(struct sl_postings *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nnames; i++) {
        struct pname *pn = &p->names[i];
        for (size_t k = 0; k < pn->nvals; k++)
            if (pn->vals[k].cap > INLINE_IDS)
                sl_free(pn->vals[k].ids.heap);
        sl_free(pn->vals);
        sl_free(pn->tab.t);
    }
    for (size_t i = 0; i < p->nslots; i++)
        if (p->slots[i].owner && p->slots[i].npos > INLINE_POS)
            sl_free(p->slots[i].pos);
    sl_free(p->names);
    sl_free(p->tab.t);
    sl_free(p->slots);
    sl_free(p->bounds);
    sl_free(p);
}

static uint32_t slot_alloc(struct sl_postings *p)
{
    if (p->free_head != NO_SLOT) {
        uint32_t id = p->free_head;
        p->free_head = p->slots[id].next_free;
        return id;
    }
    if (p->nslots == p->capslots) {
        p->capslots = p->capslots ? 2 * p->capslots : 64;
        p->slots = sl_reallocarray(p->slots, p->capslots, sizeof *p->slots);
        p->bounds = sl_reallocarray(p->bounds, p->capslots, sizeof *p->bounds);
    }
    return (uint32_t)p->nslots++;
}

uint32_t sl_postings_add(struct sl_postings *p, const struct sl_labels *ls, void *owner)
{
    uint32_t id = slot_alloc(p);
    struct slot *s = &p->slots[id];
    memset(s, 0, sizeof *s);
    s->owner = owner;
    s->ls = ls;
    s->npos = (uint32_t)ls->n;
    if (ls->n > INLINE_POS)
        s->pos = sl_mallocarray(ls->n, sizeof *s->pos);
    p->bounds[id] = (struct bound){1, 0}; /* no entries yet */
    p->nstreams++;
    p->nempty++;
    uint32_t *pos = slot_pos(s);
    for (size_t i = 0; i < ls->n; i++) {
        struct pname *pn = name_get(p, stored(ls->items[i].name));
        struct pvalue *pv = value_get(pn, stored(ls->items[i].value));
        pos[i] = pv->n;
        value_push(pv, id);
    }
    return id;
}

/* Takes id out of the list of label i of s; the value and the name go when
 * empty, or point into a remaining holder if they pointed into s. */
static void unlink_label(struct sl_postings *p, struct slot *s, size_t i)
{
    struct sl_bytes name = stored(s->ls->items[i].name), val = stored(s->ls->items[i].value);
    uint32_t ni = p->tab.t[htab_find(&p->tab, p->names, sizeof *p->names, name)] - 1;
    struct pname *pn = &p->names[ni];
    uint32_t vi = pn->tab.t[htab_find(&pn->tab, pn->vals, sizeof *pn->vals, val)] - 1;
    struct pvalue *pv = &pn->vals[vi];
    uint32_t *ids = value_ids(pv), at = slot_pos(s)[i], last = ids[pv->n - 1];
    if (at != pv->n - 1) {
        ids[at] = last;
        struct slot *ms = &p->slots[last];
        slot_pos(ms)[slot_label(ms, name)] = at;
    }
    pv->n--;
    if (pv->n == 0) {
        if (pv->cap > INLINE_IDS)
            sl_free(pv->ids.heap);
        pn->nvals = dense_del(&pn->tab, pn->vals, sizeof *pn->vals, pn->nvals, vi);
    } else if (pv->v.ptr == val.ptr && val.len) {
        const struct slot *h = &p->slots[value_ids(pv)[0]];
        pv->v = h->ls->items[slot_label(h, name)].value;
    }
    if (pn->nvals == 0) {
        sl_free(pn->vals);
        sl_free(pn->tab.t);
        p->nnames = dense_del(&p->tab, p->names, sizeof *p->names, p->nnames, ni);
    } else if (pn->name.ptr == name.ptr) {
        const struct slot *h = &p->slots[value_ids(&pn->vals[0])[0]];
        pn->name = h->ls->items[slot_label(h, name)].name;
    }
}

void sl_postings_remove(struct sl_postings *p, uint32_t slot)
{
    struct slot *s = &p->slots[slot];
    for (size_t i = 0; i < s->ls->n; i++)
        unlink_label(p, s, i);
    if (s->npos > INLINE_POS)
        sl_free(s->pos);
    if (p->bounds[slot].min > p->bounds[slot].max)
        p->nempty--;
    s->owner = NULL;
    s->ls = NULL;
    s->next_free = p->free_head;
    p->free_head = slot;
    if (--p->nstreams == 0)
        p->env_any = false;
}

void sl_postings_set_bounds(struct sl_postings *p, uint32_t slot, int64_t min_ts, int64_t max_ts)
{
    struct bound *b = &p->bounds[slot];
    bool was_empty = b->min > b->max, empty = min_ts > max_ts;
    if (was_empty != empty) {
        if (empty)
            p->nempty++;
        else
            p->nempty--;
    }
    if (empty) {
        *b = (struct bound){1, 0};
        return;
    }
    *b = (struct bound){min_ts, max_ts};
    if (!p->env_any || min_ts < p->env_min)
        p->env_min = min_ts;
    if (!p->env_any || max_ts > p->env_max)
        p->env_max = max_ts;
    p->env_any = true;
}

/* ---- readers ---- */

static inline bool overlaps(const struct bound *b, int64_t from, int64_t through)
{
    return b->min <= b->max && b->max >= from && b->min < through;
}

/* Every stream overlaps [from, through): no bounds need checking. */
static bool covers_all(const struct sl_postings *p, int64_t from, int64_t through)
{
    return p->nempty == 0 && (!p->env_any || (p->env_min >= from && p->env_max < through));
}

static bool value_overlaps(const struct sl_postings *p, const struct pvalue *pv, int64_t from,
                           int64_t through)
{
    const uint32_t *ids = value_ids_c(pv);
    for (uint32_t k = 0; k < pv->n; k++)
        if (overlaps(&p->bounds[ids[k]], from, through))
            return true;
    return false;
}

int sl_postings_labels(const struct sl_postings *p, const struct sl_bytes *name, int64_t from,
                       int64_t through, sl_postings_bytes_fn fn, void *ud)
{
    if (from >= through)
        return 0;
    bool all = covers_all(p, from, through);
    int rc = 0;
    if (!name) {
        for (size_t i = 0; i < p->nnames && rc == 0; i++) {
            const struct pname *pn = &p->names[i];
            bool any = all;
            for (size_t k = 0; k < pn->nvals && !any; k++)
                any = value_overlaps(p, &pn->vals[k], from, through);
            if (any)
                rc = fn(pn->name, ud);
        }
        return rc;
    }
    const struct pname *pn = name_find(p, *name);
    for (size_t k = 0; pn && k < pn->nvals && rc == 0; k++) {
        const struct pvalue *pv = &pn->vals[k];
        if (pv->v.len && (all || value_overlaps(p, pv, from, through)))
            rc = fn(pv->v, ud);
    }
    return rc;
}

static bool slot_has(const struct slot *s, const struct sl_label *l)
{
    for (size_t i = 0; i < s->ls->n; i++)
        if (sl_bytes_eq(s->ls->items[i].name, l->name))
            return sl_bytes_eq(s->ls->items[i].value, l->value);
    return false;
}

static bool slot_passes(const struct slot *s, const struct sl_postings_pred *pr)
{
    for (size_t i = 0; i < s->ls->n; i++)
        if (sl_bytes_eq(s->ls->items[i].name, pr->name))
            return pr->match(s->ls->items[i].value, pr->ud);
    return false;
}

/* One selection: the matchers, and the one whose list gives the candidates
 * (not checked again). */
struct selctx {
    const struct sl_postings *p;
    const struct sl_label *eq;
    size_t neq, skip_eq;
    const struct sl_postings_pred *pred;
    size_t npred, skip_pred;
    bool all;
    int64_t from, through;
    sl_postings_owner_fn fn;
    void *ud;
};

static int sel_list(const struct selctx *c, const uint32_t *ids, uint32_t n)
{
    int rc = 0;
    for (uint32_t k = 0; k < n && rc == 0; k++) {
        const struct slot *s = &c->p->slots[ids[k]];
        if (!c->all && !overlaps(&c->p->bounds[ids[k]], c->from, c->through))
            continue;
        bool ok = true;
        for (size_t i = 0; i < c->neq && ok; i++)
            ok = i == c->skip_eq || slot_has(s, &c->eq[i]);
        for (size_t i = 0; i < c->npred && ok; i++)
            ok = i == c->skip_pred || slot_passes(s, &c->pred[i]);
        if (ok)
            rc = c->fn(s->owner, c->ud);
    }
    return rc;
}

/* The values of pred's name it accepts, into *out (owned by the caller);
 * returns how many streams hold them. */
static size_t pred_values(const struct sl_postings *p, const struct sl_postings_pred *pr,
                          const struct pvalue ***out, size_t *nout)
{
    const struct pname *pn = name_find(p, pr->name);
    *out = NULL;
    *nout = 0;
    if (!pn)
        return 0;
    size_t streams = 0;
    *out = sl_mallocarray(pn->nvals ? pn->nvals : 1, sizeof **out);
    for (size_t k = 0; k < pn->nvals; k++) {
        if (pr->match(pn->vals[k].v, pr->ud)) {
            (*out)[(*nout)++] = &pn->vals[k];
            streams += pn->vals[k].n;
        }
    }
    return streams;
}

int sl_postings_select(const struct sl_postings *p, const struct sl_label *eq, size_t neq,
                       const struct sl_postings_pred *pred, size_t npred, int64_t from,
                       int64_t through, sl_postings_owner_fn fn, void *ud)
{
    if (from >= through)
        return 0;
    struct selctx c = {p,    eq,      neq,      SIZE_MAX,
                       pred, npred,   SIZE_MAX, covers_all(p, from, through),
                       from, through, fn,       ud};
    const struct pvalue *best = NULL;
    for (size_t i = 0; i < neq; i++) {
        const struct pname *pn = name_find(p, eq[i].name);
        const struct pvalue *pv = pn ? value_find(pn, eq[i].value) : NULL;
        if (!pv)
            return 0;
        if (!best || pv->n < best->n) {
            best = pv;
            c.skip_eq = i;
        }
    }
    size_t bestn = best ? best->n : SIZE_MAX, nacc = 0;
    const struct pvalue **acc = NULL;
    for (size_t i = 0; i < npred; i++) {
        const struct pvalue **vals;
        size_t nvals, streams = pred_values(p, &pred[i], &vals, &nvals);
        if (streams == 0) {
            sl_free(vals);
            sl_free(acc);
            return 0;
        }
        if (streams < bestn) {
            sl_free(acc);
            acc = vals;
            nacc = nvals;
            bestn = streams;
            c.skip_pred = i;
            c.skip_eq = SIZE_MAX;
        } else {
            sl_free(vals);
        }
    }
    int rc = 0;
    if (acc) {
        for (size_t k = 0; k < nacc && rc == 0; k++)
            rc = sel_list(&c, value_ids_c(acc[k]), acc[k]->n);
        sl_free(acc);
    } else if (best) {
        rc = sel_list(&c, value_ids_c(best), best->n);
    } else {
        for (size_t i = 0; i < p->nslots && rc == 0; i++)
            if (p->slots[i].owner && (c.all || overlaps(&p->bounds[i], from, through)))
                rc = fn(p->slots[i].owner, ud);
    }
    return rc;
}

size_t sl_postings_streams(const struct sl_postings *p)
{
    return p->nstreams;
}

size_t sl_postings_bytes(const struct sl_postings *p)
{
    size_t b = sizeof *p + p->capslots * (sizeof *p->slots + sizeof *p->bounds);
    b += p->capnames * sizeof *p->names + p->tab.cap * sizeof *p->tab.t;
    for (size_t i = 0; i < p->nnames; i++) {
        const struct pname *pn = &p->names[i];
        b += pn->capvals * sizeof *pn->vals + pn->tab.cap * sizeof *pn->tab.t;
        for (size_t k = 0; k < pn->nvals; k++)
            if (pn->vals[k].cap > INLINE_IDS)
                b += pn->vals[k].cap * sizeof(uint32_t);
    }
    for (size_t i = 0; i < p->nslots; i++)
        if (p->slots[i].owner && p->slots[i].npos > INLINE_POS)
            b += p->slots[i].npos * sizeof(uint32_t);
    return b;
}
