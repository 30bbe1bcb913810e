/* Metrics registry and Prometheus text exposition 0.0.4 (metrics.h).
 *
 * Values are doubles kept as their IEEE bits in an _Atomic uint64_t: set is a
 * store, add a compare-and-swap loop, so updates never take a lock. Histogram
 * buckets are plain atomic counts per bucket (not cumulative) plus an atomic
 * double sum; render accumulates them and derives _count from the buckets so
 * _count always equals the +Inf bucket. Registration and child lookup take
 * mutexes; they are meant for start-up and cached pointers. */
#include "common/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM, M_GAUGE_FUNC };

static const char *const mtype_names[] = {"counter", "gauge", "histogram", "gauge"};

struct sl_metric {
    struct sl_metric_family *fam;
    struct sl_metric *hnext; /* hash chain */
    uint64_t hash;
    char **values;             /* fam->nlabels label values */
    _Atomic uint64_t bits;     /* counter/gauge value, histogram sum (double bits) */
    _Atomic uint64_t *buckets; /* histogram: nbounds + 1 counts, last is +Inf */
};

struct sl_metric_family {
    char *name;
    char *help;
    enum mtype type;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    double (*fn)(void *ud);
    void *ud;
    pthread_mutex_t mu; /* guards the child table and list */
    struct sl_metric **table;
    size_t tcap;
    struct sl_metric **children; /* creation order */
    size_t nchildren, cchildren;
};

struct sl_metrics {
    pthread_mutex_t mu; /* guards fams */
    struct sl_metric_family **fams;
    size_t nfams, cfams;
};

static const double default_buckets[] = {.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

static void __attribute__((noreturn)) misuse(const char *what, const char *name)
{
    sl_log(SL_LOG_ERROR, "metrics registry misuse, aborting", "error=\"%s\" metric=%s", what, name);
    abort();
}

/* ------------------------------------------------------------ atomic f64 */

static inline uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static inline double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static inline void atomic_add_f64(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, d2u(u2d(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* --------------------------------------------------------------- registry */

struct sl_metrics *sl_metrics_new(void)
{
    struct sl_metrics *r = SL_NEW(struct sl_metrics);
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void child_free(struct sl_metric_family *f, struct sl_metric *m)
{
    for (size_t k = 0; k < f->nlabels; k++)
        sl_free(m->values[k]);
    sl_free(m->values);
    sl_free(m->buckets);
    sl_free(m);
}

static void family_free(struct sl_metric_family *f)
{
    for (size_t k = 0; k < f->nchildren; k++)
        child_free(f, f->children[k]);
    for (size_t k = 0; k < f->nlabels; k++)
        sl_free(f->labels[k]);
    sl_free(f->labels);
    sl_free(f->children);
    sl_free(f->table);
    sl_free(f->bounds);
    sl_free(f->name);
    sl_free(f->help);
    pthread_mutex_destroy(&f->mu);
    sl_free(f);
}

void sl_metrics_free(struct sl_metrics *r)
{
    if (!r)
        return;
    for (size_t k = 0; k < r->nfams; k++)
        family_free(r->fams[k]);
    sl_free(r->fams);
    pthread_mutex_destroy(&r->mu);
    sl_free(r);
}

static bool name_valid(const char *s, bool colon)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Splits "a,b" into names (spaces around commas allowed). */
static size_t split_labels(const char *spec, const char *metric, char ***out)
{
    *out = NULL;
    if (!spec || !*spec)
        return 0;
    size_t n = 1;
    for (const char *p = spec; *p; p++)
        n += *p == ',';
    char **v = sl_mallocarray(n, sizeof(*v));
    const char *p = spec;
    for (size_t k = 0; k < n; k++) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        const char *a = p, *b = e;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        v[k] = sl_strndup(a, (size_t)(b - a));
        if (!name_valid(v[k], false) || strncmp(v[k], "__", 2) == 0)
            misuse("invalid label name", metric);
        p = *e ? e + 1 : e;
    }
    *out = v;
    return n;
}

static bool same_labels(const struct sl_metric_family *f, char **labels, size_t n)
{
    if (f->nlabels != n)
        return false;
    for (size_t k = 0; k < n; k++)
        if (strcmp(f->labels[k], labels[k]) != 0)
            return false;
    return true;
}

/* Finds or inserts (keeping fams sorted by name) under r->mu. */
static struct sl_metric_family *family_get(struct sl_metrics *r, const char *name, const char *help,
                                           enum mtype type, const char *label_names)
{
    char **labels;
    if (!name_valid(name, true))
        misuse("invalid metric name", name);
    size_t nlabels = split_labels(label_names, name, &labels);
    if (type == M_HISTOGRAM)
        for (size_t k = 0; k < nlabels; k++)
            if (strcmp(labels[k], "le") == 0)
                misuse("histogram label \"le\" is reserved", name);
    pthread_mutex_lock(&r->mu);
    size_t lo = 0, hi = r->nfams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->fams[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->nfams && strcmp(r->fams[lo]->name, name) == 0) {
        struct sl_metric_family *f = r->fams[lo];
        pthread_mutex_unlock(&r->mu);
        if (f->type != type || type == M_GAUGE_FUNC || !same_labels(f, labels, nlabels))
            misuse("registered twice with different type or labels", name);
        for (size_t k = 0; k < nlabels; k++)
            sl_free(labels[k]);
        sl_free(labels);
        return f;
    }
    struct sl_metric_family *f = SL_NEW(struct sl_metric_family);
    f->name = sl_strdup(name);
    f->help = sl_strdup(help ? help : "");
    f->type = type;
    f->labels = labels;
    f->nlabels = nlabels;
    pthread_mutex_init(&f->mu, NULL);
    if (r->nfams == r->cfams) {
        r->cfams = r->cfams ? r->cfams * 2 : 16;
        r->fams = sl_reallocarray(r->fams, r->cfams, sizeof(*r->fams));
    }
    memmove(r->fams + lo + 1, r->fams + lo, (r->nfams - lo) * sizeof(*r->fams));
    r->fams[lo] = f;
    r->nfams++;
    pthread_mutex_unlock(&r->mu);
    return f;
}

struct sl_metric_family *sl_metrics_counter(struct sl_metrics *r, const char *name,
                                            const char *help, const char *label_names)
{
    struct sl_metric_family *f = family_get(r, name, help, M_COUNTER, label_names);
    if (f->nlabels == 0)
        sl_metric_withv(f, NULL); /* an unlabelled series shows 0 from the start */
    return f;
}

struct sl_metric_family *sl_metrics_gauge(struct sl_metrics *r, const char *name, const char *help,
                                          const char *label_names)
{
    struct sl_metric_family *f = family_get(r, name, help, M_GAUGE, label_names);
    if (f->nlabels == 0)
        sl_metric_withv(f, NULL);
    return f;
}

struct sl_metric_family *sl_metrics_histogram(struct sl_metrics *r, const char *name,
                                              const char *help, const char *label_names,
                                              const double *buckets, size_t nbuckets)
{
    if (!buckets) {
        buckets = default_buckets;
        nbuckets = SL_ARRAY_LEN(default_buckets);
    }
    for (size_t k = 0; k < nbuckets; k++)
        if (isnan(buckets[k]) || (k > 0 && !(buckets[k] > buckets[k - 1])))
            misuse("histogram buckets must be ascending", name);
    if (nbuckets > 0 && isinf(buckets[nbuckets - 1]) && buckets[nbuckets - 1] > 0)
        nbuckets--; /* +Inf is implicit */
    struct sl_metric_family *f = family_get(r, name, help, M_HISTOGRAM, label_names);
    pthread_mutex_lock(&f->mu);
    if (!f->bounds && nbuckets) {
        f->bounds = sl_memdup(buckets, nbuckets * sizeof(double));
        f->nbounds = nbuckets;
    }
    pthread_mutex_unlock(&f->mu);
    if (f->nlabels == 0)
        sl_metric_withv(f, NULL);
    return f;
}

void sl_metrics_gauge_func(struct sl_metrics *r, const char *name, const char *help,
                           double (*fn)(void *ud), void *ud)
{
    struct sl_metric_family *f = family_get(r, name, help, M_GAUGE_FUNC, NULL);
    f->fn = fn;
    f->ud = ud;
}

/* ----------------------------------------------------------------- children */

static uint64_t values_hash(size_t n, const char *const *values)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t k = 0; k < n; k++) {
        for (const unsigned char *p = (const unsigned char *)values[k]; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* separator no UTF-8 byte equals */
    }
    return h;
}

static bool values_eq(const struct sl_metric *m, size_t n, const char *const *values)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(m->values[k], values[k]) != 0)
            return false;
    return true;
}

static void table_grow(struct sl_metric_family *f)
{
    size_t cap = f->tcap ? f->tcap * 2 : 16;
    struct sl_metric **t = sl_calloc(cap, sizeof(*t));
    for (size_t k = 0; k < f->nchildren; k++) {
        struct sl_metric *m = f->children[k];
        size_t i = m->hash & (cap - 1);
        m->hnext = t[i];
        t[i] = m;
    }
    sl_free(f->table);
    f->table = t;
    f->tcap = cap;
}

/* Under f->mu. */
static struct sl_metric *child_new(struct sl_metric_family *f, const char *const *values)
{
    struct sl_metric *m = SL_NEW(struct sl_metric);
    m->fam = f;
    m->hash = values_hash(f->nlabels, values);
    if (f->nlabels) {
        m->values = sl_mallocarray(f->nlabels, sizeof(char *));
        for (size_t k = 0; k < f->nlabels; k++)
            m->values[k] = sl_strdup(values[k] ? values[k] : "");
    }
    atomic_init(&m->bits, d2u(0.0));
    if (f->type == M_HISTOGRAM) {
        m->buckets = sl_mallocarray(f->nbounds + 1, sizeof(*m->buckets));
        for (size_t k = 0; k <= f->nbounds; k++)
            atomic_init(&m->buckets[k], 0);
    }
    if (f->nchildren == f->cchildren) {
        f->cchildren = f->cchildren ? f->cchildren * 2 : 4;
        f->children = sl_reallocarray(f->children, f->cchildren, sizeof(*f->children));
    }
    f->children[f->nchildren++] = m;
    if (f->nchildren * 2 > f->tcap) {
        table_grow(f); /* rehashes m too */
    } else {
        size_t i = m->hash & (f->tcap - 1);
        m->hnext = f->table[i];
        f->table[i] = m;
    }
    return m;
}

struct sl_metric *sl_metric_withv(struct sl_metric_family *f, const char *const *values)
{
    static const char *const none[1] = {""};
    if (f->type == M_GAUGE_FUNC)
        misuse("gauge funcs have no children", f->name);
    if (!values)
        values = none;
    for (size_t k = 0; k < f->nlabels; k++)
        if (!values[k])
            misuse("NULL label value", f->name);
    uint64_t h = values_hash(f->nlabels, values);
    pthread_mutex_lock(&f->mu);
    struct sl_metric *m = f->tcap ? f->table[h & (f->tcap - 1)] : NULL;
    for (; m; m = m->hnext)
        if (m->hash == h && values_eq(m, f->nlabels, values))
            break;
    if (!m)
        m = child_new(f, values);
    pthread_mutex_unlock(&f->mu);
    return m;
}

struct sl_metric *sl_metric_with(struct sl_metric_family *f, ...)
{
    const char *stackv[16];
    const char **values = stackv;
    va_list ap;
    if (f->nlabels > SL_ARRAY_LEN(stackv))
        values = sl_mallocarray(f->nlabels, sizeof(*values));
    va_start(ap, f);
    for (size_t k = 0; k < f->nlabels; k++)
        values[k] = va_arg(ap, const char *);
    va_end(ap);
    struct sl_metric *m = sl_metric_withv(f, values);
    if (values != stackv)
        sl_free(values);
    return m;
}

/* ----------------------------------------------------------------- updates */

void sl_counter_add(struct sl_metric *m, double v)
{
    /* Counters only go up; a negative or NaN add is a caller bug that would
     * make rate() see a reset, so it is ignored. */
    if (!(v >= 0))
        return;
    atomic_add_f64(&m->bits, v);
}

void sl_counter_inc(struct sl_metric *m)
{
    atomic_add_f64(&m->bits, 1.0);
}

void sl_gauge_set(struct sl_metric *m, double v)
{
    atomic_store_explicit(&m->bits, d2u(v), memory_order_relaxed);
}

void sl_gauge_add(struct sl_metric *m, double v)
{
    atomic_add_f64(&m->bits, v);
}

void sl_histogram_observe(struct sl_metric *m, double v)
{
    const struct sl_metric_family *f = m->fam;
    size_t lo = 0, hi = f->nbounds;
    /* First bound >= v (le is inclusive); NaN lands in +Inf. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->bounds[mid] < v || isnan(v))
            lo = mid + 1;
        else
            hi = mid;
    }
    atomic_fetch_add_explicit(&m->buckets[lo], 1, memory_order_relaxed);
    atomic_add_f64(&m->bits, v);
}

double sl_metric_value(struct sl_metric *m)
{
    return u2d(atomic_load_explicit(&m->bits, memory_order_relaxed));
}

/* ------------------------------------------------------------------ render */

/* Go's strconv 'g'-style shortest form as Prometheus clients print it, with
 * integers in plain digits. */
static void append_value(struct sl_buf *out, double v)
{
    char tmp[40];
    if (isnan(v)) {
        sl_buf_append_str(out, "NaN");
    } else if (isinf(v)) {
        sl_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        sl_buf_append_i64(out, (long long)v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
        sl_buf_append_str(out, tmp);
    }
}

/* Label values escape \ " and newline; HELP escapes \ and newline. */
static void append_escaped(struct sl_buf *out, const char *s, bool quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            sl_buf_append_str(out, "\\\\");
        else if (*p == '\n')
            sl_buf_append_str(out, "\\n");
        else if (*p == '"' && quote)
            sl_buf_append_str(out, "\\\"");
        else
            sl_buf_append_char(out, *p);
    }
}

/* name{l1="v1",...[,le="x"]} value\n */
static void append_sample(struct sl_buf *out, const struct sl_metric_family *f,
                          const struct sl_metric *m, const char *suffix, const char *le, double v)
{
    sl_buf_append_str(out, f->name);
    sl_buf_append_str(out, suffix);
    size_t n = m ? f->nlabels : 0;
    if (n || le) {
        sl_buf_append_char(out, '{');
        for (size_t k = 0; k < n; k++) {
            if (k)
                sl_buf_append_char(out, ',');
            sl_buf_append_str(out, f->labels[k]);
            sl_buf_append_str(out, "=\"");
            append_escaped(out, m->values[k], true);
            sl_buf_append_char(out, '"');
        }
        if (le) {
            if (n)
                sl_buf_append_char(out, ',');
            sl_buf_append_str(out, "le=\"");
            sl_buf_append_str(out, le);
            sl_buf_append_char(out, '"');
        }
        sl_buf_append_char(out, '}');
    }
    sl_buf_append_char(out, ' ');
    append_value(out, v);
    sl_buf_append_char(out, '\n');
}

static void render_histogram(struct sl_buf *out, const struct sl_metric_family *f,
                             const struct sl_metric *m)
{
    struct sl_buf le = SL_BUF_INIT;
    uint64_t cum = 0;
    for (size_t k = 0; k <= f->nbounds; k++) {
        cum += atomic_load_explicit(&m->buckets[k], memory_order_relaxed);
        sl_buf_clear(&le);
        append_value(&le, k < f->nbounds ? f->bounds[k] : INFINITY);
        append_sample(out, f, m, "_bucket", le.data, (double)cum);
    }
    sl_buf_release(&le);
    append_sample(out, f, m, "_sum", NULL, sl_metric_value((struct sl_metric *)m));
    append_sample(out, f, m, "_count", NULL, (double)cum);
}

static int child_cmp(const void *a, const void *b)
{
    const struct sl_metric *x = *(struct sl_metric *const *)a, *y = *(struct sl_metric *const *)b;
    for (size_t k = 0; k < x->fam->nlabels; k++) {
        int c = strcmp(x->values[k], y->values[k]);
        if (c)
            return c;
    }
    return 0;
}

static void render_family(struct sl_buf *out, struct sl_metric_family *f)
{
    pthread_mutex_lock(&f->mu);
    if (f->type != M_GAUGE_FUNC && f->nchildren == 0) {
        pthread_mutex_unlock(&f->mu);
        return; /* a labelled family nobody has used yet */
    }
    sl_buf_appendf(out, "# HELP %s ", f->name);
    append_escaped(out, f->help, false);
    sl_buf_appendf(out, "\n# TYPE %s %s\n", f->name, mtype_names[f->type]);
    if (f->type == M_GAUGE_FUNC) {
        pthread_mutex_unlock(&f->mu);
        append_sample(out, f, NULL, "", NULL, f->fn(f->ud));
        return;
    }
    /* Children in label-value order, as client libraries print them. */
    struct sl_metric **kids = sl_memdup(f->children, f->nchildren * sizeof(*kids));
    size_t n = f->nchildren;
    pthread_mutex_unlock(&f->mu);
    qsort(kids, n, sizeof(*kids), child_cmp);
    for (size_t k = 0; k < n; k++) {
        if (f->type == M_HISTOGRAM)
            render_histogram(out, f, kids[k]);
        else
            append_sample(out, f, kids[k], "", NULL, sl_metric_value(kids[k]));
    }
    sl_free(kids);
}

void sl_metrics_render(struct sl_metrics *r, struct sl_buf *out)
{
    /* fams is kept sorted by name at registration. */
    pthread_mutex_lock(&r->mu);
    for (size_t k = 0; k < r->nfams; k++)
        render_family(out, r->fams[k]);
    pthread_mutex_unlock(&r->mu);
}
