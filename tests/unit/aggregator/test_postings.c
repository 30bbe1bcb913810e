/* Ingester postings: label names, values and equality selections from the
 * postings give exactly what a visit of every stream gives, on random
 * streams created, flushed away and re-created (slots reused), over random
 * time ranges; names and values stay readable after the streams they were
 * first taken from are gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/ingester/ingester.h"
#include "aggregator/ingester/postings.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/mem.h"

#define TENANT SL_BYTES_LIT("t")
/* More labels than postings.c keeps positions for inside a slot (6). */
#define INLINE_POS_TEST 6

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

/* ---- string sets ---- */

struct strset {
    char **s;
    size_t n, cap;
};

static void set_add(struct strset *set, const char *p, size_t len)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? 2 * set->cap : 64;
        set->s = sl_reallocarray(set->s, set->cap, sizeof *set->s);
    }
    set->s[set->n++] = sl_strndup(p, len);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts; fails if a string is there twice when unique is asked. */
static void set_sort(struct strset *set, bool unique)
{
    if (set->n)
        qsort(set->s, set->n, sizeof *set->s, str_cmp);
    if (unique)
        for (size_t i = 1; i < set->n; i++)
            assert_int_not_equal(strcmp(set->s[i - 1], set->s[i]), 0);
}

/* Sorted, repeats dropped. */
static void set_uniq(struct strset *set)
{
    if (set->n)
        qsort(set->s, set->n, sizeof *set->s, str_cmp);
    size_t out = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (out && strcmp(set->s[out - 1], set->s[i]) == 0)
            sl_free(set->s[i]);
        else
            set->s[out++] = set->s[i];
    }
    set->n = out;
}

static void set_equal(struct strset *a, struct strset *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(a->s[i], b->s[i]);
}

static void set_free(struct strset *set)
{
    for (size_t i = 0; i < set->n; i++)
        sl_free(set->s[i]);
    sl_free(set->s);
    memset(set, 0, sizeof *set);
}

static int on_bytes(struct sl_bytes v, void *ud)
{
    set_add(ud, v.ptr, v.len);
    return 0;
}

/* ---- the full-scan answers ---- */

struct scan {
    const struct sl_bytes *name; /* values of; NULL: names */
    const struct sl_label *eq;   /* select: pairs, or names/values when NULL */
    size_t neq;
    const struct sl_postings_pred *pred; /* select: value tests */
    size_t npred;
    bool select;
    int64_t from, through;
    struct strset *out;
};

static bool holds(const struct sl_labels *ls, const struct sl_label *l)
{
    for (size_t i = 0; i < ls->n; i++)
        if (sl_bytes_eq(ls->items[i].name, l->name) && sl_bytes_eq(ls->items[i].value, l->value))
            return true;
    return false;
}

/* A value test: the value starts with the prefix in ud (never ""). */
static bool has_prefix(struct sl_bytes v, void *ud)
{
    const char *prefix = ud;
    size_t n = strlen(prefix);
    return v.len >= n && memcmp(v.ptr, prefix, n) == 0;
}

static bool passes(const struct sl_labels *ls, const struct sl_postings_pred *pr)
{
    for (size_t i = 0; i < ls->n; i++)
        if (sl_bytes_eq(ls->items[i].name, pr->name))
            return pr->match(ls->items[i].value, pr->ud);
    return false;
}

static void add_canon(struct strset *out, const struct sl_labels *ls)
{
    struct sl_buf c = SL_BUF_INIT;
    sl_labels_format(ls, &c);
    set_add(out, c.data, c.len);
    sl_buf_release(&c);
}

static int on_full(const struct sl_stream_info *s, struct sl_stream_reader *r, void *ud)
{
    (void)r;
    struct scan *sc = ud;
    /* [from, through) with from >= through is empty, as the querier has it */
    if (sc->from >= sc->through || s->entries == 0 || s->max_ts < sc->from ||
        s->min_ts >= sc->through)
        return 0;
    if (sc->select) {
        for (size_t i = 0; i < sc->neq; i++)
            if (!holds(s->labels, &sc->eq[i]))
                return 0;
        for (size_t i = 0; i < sc->npred; i++)
            if (!passes(s->labels, &sc->pred[i]))
                return 0;
        add_canon(sc->out, s->labels);
        return 0;
    }
    for (size_t i = 0; i < s->labels->n; i++) {
        const struct sl_label *l = &s->labels->items[i];
        if (!sc->name)
            set_add(sc->out, l->name.ptr, l->name.len);
        else if (sl_bytes_eq(l->name, *sc->name) && l->value.len)
            set_add(sc->out, l->value.ptr, l->value.len);
    }
    return 0;
}

static int on_matching(const struct sl_stream_info *s, struct sl_stream_reader *r, void *ud)
{
    (void)r;
    struct scan *sc = ud;
    /* the postings give only streams in range */
    assert_true(s->entries > 0 && s->max_ts >= sc->from && s->min_ts < sc->through);
    add_canon(sc->out, s->labels);
    return 0;
}

/* ---- random streams in an ingester ---- */

static const char *names[] = {"app",  "container", "env",    "namespace",
                              "node", "pod",       "region", "team"};
#define NNAMES (sizeof names / sizeof *names)

static char vals[NNAMES][512][16];

/* A random label set: 1..8 names (more than fit inline), values from a small
 * set or unique (like pod names). */
static void random_labels(struct sl_label *items, struct sl_labels *ls, int serial)
{
    ls->items = items;
    ls->n = 0;
    for (size_t i = 0; i < NNAMES; i++) {
        if (i != 0 && rnd(3) == 0)
            continue;
        char *v = vals[i][ls->n + 8 * (size_t)(serial % 64)];
        if (i == 5)
            snprintf(v, 16, "pod-%d", serial);
        else
            snprintf(v, 16, "v%d", (int)rnd(i == 0 ? 12 : 4));
        items[ls->n++] = (struct sl_label){sl_bytes_str(names[i]), sl_bytes_str(v)};
    }
}

struct released {
    struct sl_arena arena;
    struct sl_labels *ls;
    uint64_t *fp, *id;
    size_t n, cap;
};

static void on_chunk(const struct sl_ingester_chunk *c, void *ud)
{
    struct released *r = ud;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->ls = sl_reallocarray(r->ls, r->cap, sizeof *r->ls);
        r->fp = sl_reallocarray(r->fp, r->cap, sizeof *r->fp);
        r->id = sl_reallocarray(r->id, r->cap, sizeof *r->id);
    }
    sl_labels_copy(&r->arena, c->labels, &r->ls[r->n]);
    r->fp[r->n] = c->fp;
    r->id[r->n++] = c->id;
}

static void push_random(struct sl_ingester *ing, int first, int n)
{
    for (int k = first; k < first + n; k++) {
        struct sl_label items[NNAMES];
        struct sl_labels ls;
        random_labels(items, &ls, k);
        struct sl_batch_entry e[3];
        size_t ne = 1 + rnd(3);
        int64_t base = (int64_t)rnd(1000);
        for (size_t i = 0; i < ne; i++)
            e[i] = (struct sl_batch_entry){base + (int64_t)rnd(50), sl_bytes_str("x"), NULL, 0};
        struct sl_push_result res = {0};
        assert_int_equal(sl_ingester_push(ing, TENANT, &ls, e, ne, NULL, &res), 0);
    }
}

/* Compares every postings answer with the full scan for one range. */
static void compare_once(struct sl_ingester *ing, int64_t from, int64_t through)
{
    struct strset got = {0}, want = {0};
    /* names */
    struct scan sc = {.from = from, .through = through, .out = &want};
    assert_int_equal(sl_ingester_visit(ing, TENANT, on_full, &sc), 0);
    set_uniq(&want);
    assert_int_equal(sl_ingester_labels(ing, TENANT, NULL, from, through, on_bytes, &got), 0);
    set_sort(&got, true);
    set_equal(&got, &want);
    set_free(&got);
    set_free(&want);
    /* values of each name */
    for (size_t i = 0; i < NNAMES; i++) {
        struct sl_bytes name = sl_bytes_str(names[i]);
        sc.name = &name;
        assert_int_equal(sl_ingester_visit(ing, TENANT, on_full, &sc), 0);
        set_uniq(&want);
        assert_int_equal(sl_ingester_labels(ing, TENANT, &name, from, through, on_bytes, &got), 0);
        set_sort(&got, true);
        set_equal(&got, &want);
        set_free(&got);
        set_free(&want);
    }
    /* selections by 0 to 3 pairs and 0 to 2 value tests */
    static const char *prefixes[] = {"v1", "v", "pod-1", "pod-2", "v3", "x"};
    for (int q = 0; q < 30; q++) {
        struct sl_postings_pred pred[2];
        size_t npred = rnd(3);
        for (size_t i = 0; i < npred; i++)
            pred[i] = (struct sl_postings_pred){sl_bytes_str(names[rnd(NNAMES)]), has_prefix,
                                                (void *)prefixes[rnd(6)]};
        struct sl_label eq[3];
        size_t neq = rnd(4);
        for (size_t i = 0; i < neq; i++) {
            size_t ni = rnd(NNAMES);
            static char v[3][16];
            if (ni == 5)
                snprintf(v[i], 16, "pod-%d", (int)rnd(3000));
            else
                snprintf(v[i], 16, "v%d", (int)rnd(ni == 0 ? 13 : 5)); /* some absent */
            eq[i] = (struct sl_label){sl_bytes_str(names[ni]), sl_bytes_str(v[i])};
        }
        struct scan ss = {.eq = eq,
                          .neq = neq,
                          .pred = pred,
                          .npred = npred,
                          .select = true,
                          .from = from,
                          .through = through,
                          .out = &want};
        assert_int_equal(sl_ingester_visit(ing, TENANT, on_full, &ss), 0);
        set_sort(&want, true);
        ss.out = &got;
        assert_int_equal(sl_ingester_visit_matching(ing, TENANT, eq, neq, pred, npred, from,
                                                    through, on_matching, &ss),
                         0);
        set_sort(&got, true);
        set_equal(&got, &want);
        set_free(&got);
        set_free(&want);
    }
}

static void compare_ranges(struct sl_ingester *ing)
{
    compare_once(ing, INT64_MIN, INT64_MAX); /* every stream: no bounds checked */
    compare_once(ing, 0, 2000);
    for (int r = 0; r < 15; r++) {
        int64_t a = (int64_t)rnd(1100), b = a + 1 + (int64_t)rnd(300);
        compare_once(ing, a, b);
    }
    compare_once(ing, 500, 500); /* empty range */
}

/* Releases the pending chunks (all, or a random two thirds); the rest stay
 * pending. */
static void release_some(struct sl_ingester *ing, struct released *rel, bool all)
{
    size_t keep = 0;
    for (size_t i = 0; i < rel->n; i++) {
        if (!all && rnd(3) == 0) {
            rel->ls[keep] = rel->ls[i];
            rel->fp[keep] = rel->fp[i];
            rel->id[keep++] = rel->id[i];
            continue;
        }
        sl_ingester_release(ing, TENANT, &rel->ls[i], rel->fp[i], rel->id[i]);
    }
    rel->n = keep;
}

static void test_random_against_full_scan(void **state)
{
    (void)state;
    struct sl_ingester_opts o = {.block_size = 1024, .max_chunk_age_ns = 2 * 3600 * 1000000000LL};
    struct sl_ingester *ing = sl_ingester_new(&o, NULL);
    struct released rel = {0};
    sl_arena_init(&rel.arena, 0);
    push_random(ing, 0, 1500);
    compare_ranges(ing);
    for (int round = 0; round < 3; round++) {
        /* Flush: every chunk handed out; release a random two thirds, whose
         * streams leave memory once all their chunks are released (their
         * slots are reused below). */
        size_t before = sl_ingester_streams(ing);
        sl_ingester_cut(ing, true, on_chunk, &rel);
        release_some(ing, &rel, false);
        assert_true(sl_ingester_streams(ing) < before);
        compare_ranges(ing);
        push_random(ing, 1500 * (round + 1), 700); /* new streams, some with old values */
        push_random(ing, 0, 300);                  /* some flushed streams come back */
        compare_ranges(ing);
    }
    /* Everything flushed and released: nothing is left. */
    sl_ingester_cut(ing, true, on_chunk, &rel);
    release_some(ing, &rel, true);
    assert_int_equal(sl_ingester_streams(ing), 0);
    compare_ranges(ing);
    struct strset got = {0};
    assert_int_equal(sl_ingester_labels(ing, TENANT, NULL, INT64_MIN, INT64_MAX, on_bytes, &got),
                     0);
    assert_int_equal(got.n, 0);
    sl_arena_release(&rel.arena);
    sl_free(rel.ls);
    sl_free(rel.fp);
    sl_free(rel.id);
    sl_ingester_free(ing);
}

/* ---- the postings alone ---- */

/* A heap label set {app=<app>, pod=<pod>}: freed (and so poisoned under
 * ASan) when its stream is removed, as the ingester frees its streams. */
static struct sl_labels *heap_labels(const char *app, const char *pod)
{
    struct sl_labels *ls = SL_NEW(struct sl_labels);
    ls->items = sl_calloc(2, sizeof *ls->items);
    ls->items[0] =
        (struct sl_label){sl_bytes(sl_strdup("app"), 3), sl_bytes(sl_strdup(app), strlen(app))};
    ls->items[1] =
        (struct sl_label){sl_bytes(sl_strdup("pod"), 3), sl_bytes(sl_strdup(pod), strlen(pod))};
    ls->n = 2;
    return ls;
}

static void heap_labels_free(struct sl_labels *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        sl_free((void *)ls->items[i].name.ptr);
        sl_free((void *)ls->items[i].value.ptr);
    }
    sl_free(ls->items);
    sl_free(ls);
}

static void test_strings_move_to_remaining_holder(void **state)
{
    (void)state;
    struct sl_postings *p = sl_postings_new();
    struct sl_labels *a = heap_labels("api", "pod-1"), *b = heap_labels("api", "pod-2");
    uint32_t sa = sl_postings_add(p, a, a), sb = sl_postings_add(p, b, b);
    sl_postings_set_bounds(p, sa, 10, 20);
    sl_postings_set_bounds(p, sb, 30, 40);
    /* The first holder of "app" and "api" goes, and its bytes with it. */
    sl_postings_remove(p, sa);
    heap_labels_free(a);
    struct strset got = {0};
    assert_int_equal(sl_postings_labels(p, NULL, 0, 100, on_bytes, &got), 0);
    set_sort(&got, true);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.s[0], "app");
    assert_string_equal(got.s[1], "pod");
    set_free(&got);
    struct sl_bytes app = SL_BYTES_LIT("app");
    assert_int_equal(sl_postings_labels(p, &app, 0, 100, on_bytes, &got), 0);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.s[0], "api");
    set_free(&got);
    /* Bounds: b is [30, 40]; [41, 100) and [0, 30) miss it. */
    assert_int_equal(sl_postings_labels(p, &app, 41, 100, on_bytes, &got), 0);
    assert_int_equal(sl_postings_labels(p, &app, 0, 30, on_bytes, &got), 0);
    assert_int_equal(got.n, 0);
    assert_int_equal(sl_postings_labels(p, &app, 40, 41, on_bytes, &got), 0);
    assert_int_equal(got.n, 1);
    set_free(&got);
    /* A stream without bounds yet overlaps nothing. */
    struct sl_labels *c = heap_labels("db", "pod-3");
    uint32_t sc = sl_postings_add(p, c, c);
    assert_int_equal(sl_postings_labels(p, &app, INT64_MIN, INT64_MAX, on_bytes, &got), 0);
    assert_int_equal(got.n, 1);
    set_free(&got);
    sl_postings_set_bounds(p, sc, 5, 5);
    assert_int_equal(sl_postings_labels(p, &app, INT64_MIN, INT64_MAX, on_bytes, &got), 0);
    assert_int_equal(got.n, 2);
    set_free(&got);
    assert_int_equal(sl_postings_streams(p), 2);
    sl_postings_remove(p, sb);
    sl_postings_remove(p, sc);
    heap_labels_free(b);
    heap_labels_free(c);
    assert_int_equal(sl_postings_streams(p), 0);
    assert_int_equal(sl_postings_labels(p, NULL, INT64_MIN, INT64_MAX, on_bytes, &got), 0);
    assert_int_equal(got.n, 0);
    sl_postings_free(p);
}

/* The ingester frees its streams and the postings in either order: freeing
 * the postings never reads a label set (checked under ASan). */
static void test_free_after_labels(void **state)
{
    (void)state;
    struct sl_postings *p = sl_postings_new();
    struct sl_labels *ls = SL_NEW(struct sl_labels);
    ls->n = INLINE_POS_TEST + 2;
    ls->items = sl_calloc(ls->n, sizeof *ls->items);
    char *text = sl_calloc(ls->n, 8);
    for (size_t i = 0; i < ls->n; i++) {
        snprintf(text + 8 * i, 8, "l%u", (unsigned)(i % 100));
        ls->items[i] = (struct sl_label){sl_bytes_str(text + 8 * i), sl_bytes_str(text + 8 * i)};
    }
    sl_postings_set_bounds(p, sl_postings_add(p, ls, ls), 1, 2);
    assert_true(sl_postings_bytes(p) > 0);
    sl_free(text);
    sl_free(ls->items);
    sl_free(ls);
    sl_postings_free(p);
}

static int count_owner(void *owner, void *ud)
{
    (void)owner;
    (*(size_t *)ud)++;
    return 0;
}

/* The memory the postings cost per stream at 100 000 streams shaped like
 * the labels benchmark's; printed for the docs, and bounded. */
static void test_bytes_per_stream(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct sl_postings *p = sl_postings_new();
    struct sl_labels *ls = sl_calloc(N, sizeof *ls);
    struct sl_label *items = sl_calloc(4 * (size_t)N, sizeof *items);
    char *text = sl_calloc(N, 64);
    for (size_t i = 0; i < N; i++) {
        char *t = text + 64 * i;
        int a = snprintf(t, 64, "app-%zu", i % 100), c = snprintf(t + 16, 48, "c-%zu", i % 5);
        int n = snprintf(t + 24, 40, "ns-%zu", i % 20), d = snprintf(t + 40, 24, "pod-%zu", i);
        struct sl_label *it = &items[4 * i];
        it[0] = (struct sl_label){SL_BYTES_LIT("app"), sl_bytes(t, (size_t)a)};
        it[1] = (struct sl_label){SL_BYTES_LIT("container"), sl_bytes(t + 16, (size_t)c)};
        it[2] = (struct sl_label){SL_BYTES_LIT("namespace"), sl_bytes(t + 24, (size_t)n)};
        it[3] = (struct sl_label){SL_BYTES_LIT("pod"), sl_bytes(t + 40, (size_t)d)};
        ls[i] = (struct sl_labels){it, 4};
        sl_postings_set_bounds(p, sl_postings_add(p, &ls[i], &ls[i]), (int64_t)i, (int64_t)i);
    }
    size_t bytes = sl_postings_bytes(p);
    printf("postings: %d streams, %zu bytes, %.1f bytes per stream\n", N, bytes, (double)bytes / N);
    assert_true(bytes / N < 200);
    struct sl_label eq[2] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("app-7")},
                             {SL_BYTES_LIT("container"), SL_BYTES_LIT("c-2")}};
    size_t n = 0, want = 0;
    assert_int_equal(sl_postings_select(p, eq, 2, NULL, 0, INT64_MIN, INT64_MAX, count_owner, &n),
                     0);
    for (size_t i = 0; i < N; i++)
        want += i % 100 == 7 && i % 5 == 2;
    assert_int_equal(n, want);
    eq[1] = (struct sl_label){SL_BYTES_LIT("pod"), SL_BYTES_LIT("pod-307")};
    n = 0;
    assert_int_equal(sl_postings_select(p, eq, 2, NULL, 0, INT64_MIN, INT64_MAX, count_owner, &n),
                     0);
    assert_int_equal(n, 1);
    eq[1] = (struct sl_label){SL_BYTES_LIT("pod"), SL_BYTES_LIT("pod-308")}; /* not app-7 */
    n = 0;
    assert_int_equal(sl_postings_select(p, eq, 2, NULL, 0, INT64_MIN, INT64_MAX, count_owner, &n),
                     0);
    assert_int_equal(n, 0);
    /* A value test on app (one value in 100) picks the candidates. */
    struct sl_postings_pred pr = {SL_BYTES_LIT("app"), has_prefix, (void *)"app-7"};
    n = 0;
    assert_int_equal(sl_postings_select(p, NULL, 0, &pr, 1, INT64_MIN, INT64_MAX, count_owner, &n),
                     0);
    assert_int_equal(n, N / 100 + N / 100 * 10); /* app-7 and app-70..app-79 */
    n = 0;
    pr.ud = (void *)"nope";
    assert_int_equal(sl_postings_select(p, NULL, 0, &pr, 1, INT64_MIN, INT64_MAX, count_owner, &n),
                     0);
    assert_int_equal(n, 0);
    n = 0; /* half the range: half the streams */
    assert_int_equal(sl_postings_select(p, eq, 1, NULL, 0, 0, N / 2, count_owner, &n), 0);
    assert_int_equal(n, N / 100 / 2);
    for (size_t i = 0; i < N; i++) /* removal is O(labels), whatever the list lengths */
        sl_postings_remove(p, (uint32_t)i);
    assert_int_equal(sl_postings_streams(p), 0);
    sl_postings_free(p);
    sl_free(text);
    sl_free(items);
    sl_free(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_full_scan),
        cmocka_unit_test(test_strings_move_to_remaining_holder),
        cmocka_unit_test(test_free_after_labels),
        cmocka_unit_test(test_bytes_per_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
