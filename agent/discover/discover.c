/* Discovery: each source is a root directory and a list of per-level name
 * patterns (the kubelet layout is three fixed levels); every directory on the
 * way to a match gets one watch. Watches are found by path through a hash. */
#include "agent/discover/discover.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"

/* Kubelet levels: below pods_path, the pod directory, the container
 * directory, the log file. */
#define PODS_LEVELS 3

struct root {
    char *dir;    /* the fixed directory the patterns start below */
    char **comps; /* one pattern per level (NULL for the kubelet layout) */
    size_t ncomp;
    char *pattern; /* the whole include pattern (globs) */
    int source;    /* SL_DISCOVER_PODS or the glob's index */
    char *const *exclude;
    size_t nexclude;
    bool missing_logged;
};

struct watch {
    uv_fs_event_t h;
    struct sl_discover *d;
    char *path;
    size_t root;
    size_t level; /* number of patterns the directory matched */
    bool seen;    /* mark for the sweep */
    bool started;
    bool counted;        /* its close is awaited by sl_discover_free */
    struct watch *next;  /* all watches */
    struct watch *hnext; /* hash chain */
};

struct sl_discover {
    uv_loop_t *loop;
    struct root *roots;
    size_t nroots;
    struct sl_strlist *excl; /* copies of the globs' exclude lists */
    size_t nexcl;
    int64_t sweep_ns;
    sl_discover_file_cb cb;
    void *ud;
    uv_timer_t sweep;
    struct watch *watches;
    struct watch **hash;
    size_t hcap;
    size_t nwatches;
    bool closing;
    int pending_closes;
};

int sl_discover_parse_pod_dir(struct sl_bytes name, struct sl_log_path *out)
{
    const char *u1 = memchr(name.ptr, '_', name.len);
    if (!u1)
        return SL_EINVAL;
    const char *end = name.ptr + name.len;
    const char *u2 = memchr(u1 + 1, '_', (size_t)(end - u1 - 1));
    if (!u2 || memchr(u2 + 1, '_', (size_t)(end - u2 - 1)))
        return SL_EINVAL;
    out->ns = sl_bytes(name.ptr, (size_t)(u1 - name.ptr));
    out->pod = sl_bytes(u1 + 1, (size_t)(u2 - u1 - 1));
    out->uid = sl_bytes(u2 + 1, (size_t)(end - u2 - 1));
    if (!out->ns.len || !out->pod.len || !out->uid.len)
        return SL_EINVAL;
    return 0;
}

bool sl_discover_is_log_name(struct sl_bytes name)
{
    return name.len > 4 && name.ptr[0] != '.' && !memchr(name.ptr, '/', name.len) &&
           !memcmp(name.ptr + name.len - 4, ".log", 4);
}

int sl_discover_parse_path(const char *pods_path, const char *path, struct sl_log_path *out)
{
    size_t pl = strlen(pods_path);
    while (pl > 1 && pods_path[pl - 1] == '/')
        pl--;
    if (strncmp(path, pods_path, pl) != 0 || path[pl] != '/')
        return SL_EINVAL;
    const char *p = path + pl + 1;
    const char *s1 = strchr(p, '/');
    if (!s1)
        return SL_EINVAL;
    const char *s2 = strchr(s1 + 1, '/');
    if (!s2 || strchr(s2 + 1, '/'))
        return SL_EINVAL;
    if (sl_discover_parse_pod_dir(sl_bytes(p, (size_t)(s1 - p)), out) != 0)
        return SL_EINVAL;
    out->container = sl_bytes(s1 + 1, (size_t)(s2 - s1 - 1));
    out->file = sl_bytes_str(s2 + 1);
    if (!out->container.len || out->container.ptr[0] == '.' || !sl_discover_is_log_name(out->file))
        return SL_EINVAL;
    return 0;
}

/* --- watch table --- */

static size_t hslot(const struct sl_discover *d, const char *path, size_t root)
{
    return (size_t)((sl_xxh3(path, strlen(path)) + root * 0x9E3779B97F4A7C15ull) & (d->hcap - 1));
}

static void hash_grow(struct sl_discover *d)
{
    size_t ncap = d->hcap ? d->hcap * 2 : 64;
    struct watch **nh = sl_calloc(ncap, sizeof(*nh));
    struct watch **old = d->hash;
    size_t ocap = d->hcap;
    d->hash = nh;
    d->hcap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        for (struct watch *w = old[i], *nx; w; w = nx) {
            nx = w->hnext;
            size_t s = hslot(d, w->path, w->root);
            w->hnext = nh[s];
            nh[s] = w;
        }
    }
    sl_free(old);
}

static struct watch *find_watch(struct sl_discover *d, const char *path, size_t root)
{
    if (!d->hcap)
        return NULL;
    for (struct watch *w = d->hash[hslot(d, path, root)]; w; w = w->hnext)
        if (w->root == root && !strcmp(w->path, path))
            return w;
    return NULL;
}

static void hash_remove(struct sl_discover *d, struct watch *w)
{
    for (struct watch **pp = &d->hash[hslot(d, w->path, w->root)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == w) {
            *pp = w->hnext;
            return;
        }
    }
}

static void free_discover(struct sl_discover *d)
{
    for (size_t i = 0; i < d->nroots; i++) {
        struct root *r = &d->roots[i];
        sl_free(r->dir);
        sl_free(r->pattern);
        for (size_t j = 0; j < r->ncomp && r->comps; j++)
            sl_free(r->comps[j]);
        sl_free(r->comps);
    }
    for (size_t i = 0; i < d->nexcl; i++) {
        for (size_t j = 0; j < d->excl[i].n; j++)
            sl_free(d->excl[i].items[j]);
        sl_free(d->excl[i].items);
    }
    sl_free(d->excl);
    sl_free(d->roots);
    sl_free(d->hash);
    sl_free(d);
}

static void on_watch_closed(uv_handle_t *h)
{
    struct watch *w = h->data;
    struct sl_discover *d = w->d;
    bool counted = w->counted;
    sl_free(w->path);
    sl_free(w);
    if (counted && --d->pending_closes == 0)
        free_discover(d);
}

static void drop_watch(struct sl_discover *d, struct watch *w)
{
    d->nwatches--;
    hash_remove(d, w);
    if (w->started)
        uv_fs_event_stop(&w->h);
    if (d->closing) {
        d->pending_closes++;
        w->counted = true;
    }
    uv_close((uv_handle_t *)&w->h, on_watch_closed);
}

/* Removes the watches of one root on dir and everything below it. */
static void drop_tree(struct sl_discover *d, size_t root, const char *dir)
{
    size_t n = strlen(dir);
    struct watch **pp = &d->watches;
    while (*pp) {
        struct watch *w = *pp;
        if (w->root == root && !strncmp(w->path, dir, n) &&
            (w->path[n] == '\0' || w->path[n] == '/')) {
            *pp = w->next;
            sl_debug("stopped watching", "dir=%s", w->path);
            drop_watch(d, w);
        } else {
            pp = &w->next;
        }
    }
}

static void scan_dir(struct sl_discover *d, size_t root, const char *path, size_t level);
static void on_event(uv_fs_event_t *h, const char *filename, int events, int status);

/* Watches dir (if not yet) and marks it seen. Returns the watch. */
static struct watch *ensure_watch(struct sl_discover *d, size_t root, const char *dir, size_t level)
{
    struct watch *w = find_watch(d, dir, root);
    if (w) {
        w->seen = true;
        return w;
    }
    if (d->nwatches + 1 > d->hcap)
        hash_grow(d);
    w = SL_NEW(struct watch);
    w->d = d;
    w->path = sl_strdup(dir);
    w->root = root;
    w->level = level;
    w->seen = true;
    uv_fs_event_init(d->loop, &w->h);
    w->h.data = w;
    int rc = uv_fs_event_start(&w->h, on_event, dir, 0);
    if (rc != 0) {
        static struct sl_log_limit lim;
        sl_log_limited(&lim, SL_LOG_WARN, "cannot watch directory, relying on the sweep",
                       "dir=%s err=%s", dir, uv_strerror(rc));
    } else {
        w->started = true;
    }
    w->next = d->watches;
    d->watches = w;
    size_t s = hslot(d, dir, root);
    w->hnext = d->hash[s];
    d->hash[s] = w;
    d->nwatches++;
    sl_debug("watching", "dir=%s level=%zu", dir, level);
    return w;
}

static bool is_dir(const char *path, unsigned char dtype)
{
    if (dtype == DT_DIR)
        return true;
    if (dtype != DT_UNKNOWN && dtype != DT_LNK)
        return false;
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool excluded(const struct root *r, const char *path)
{
    for (size_t i = 0; i < r->nexclude; i++)
        if (fnmatch(r->exclude[i], path, FNM_PATHNAME | FNM_PERIOD) == 0)
            return true;
    return false;
}

/* Does name (an entry of a directory that matched `level` patterns) match
 * the next pattern? */
static bool name_matches(const struct root *r, size_t level, const char *name)
{
    struct sl_log_path lp;
    struct sl_bytes nb = sl_bytes_str(name);
    if (r->comps)
        return fnmatch(r->comps[level], name, FNM_PATHNAME | FNM_PERIOD) == 0;
    switch (level) {
    case 0:
        return sl_discover_parse_pod_dir(nb, &lp) == 0;
    case 1:
        return name[0] != '.';
    default:
        return sl_discover_is_log_name(nb);
    }
}

/* Handles one entry `name` of directory `dir` (a watch of root at level). */
static void on_child(struct sl_discover *d, size_t root, const char *dir, size_t level,
                     const char *name, unsigned char dtype)
{
    const struct root *r = &d->roots[root];
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return;
    struct sl_buf p = SL_BUF_INIT;
    sl_buf_appendf(&p, "%s/%s", dir, name);
    bool match = name_matches(r, level, name);
    if (level + 1 == r->ncomp) {
        if (match && !excluded(r, p.data) && dtype != DT_DIR)
            d->cb(d->ud, p.data, r->source);
    } else if (match && is_dir(p.data, dtype)) {
        ensure_watch(d, root, p.data, level + 1);
        scan_dir(d, root, p.data, level + 1);
    } else {
        drop_tree(d, root, p.data); /* gone (or replaced by a file) */
    }
    sl_buf_release(&p);
}

static void scan_dir(struct sl_discover *d, size_t root, const char *path, size_t level)
{
    DIR *dir = opendir(path);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        on_child(d, root, path, level, de->d_name, de->d_type);
    closedir(dir);
}

static void on_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct watch *w = h->data;
    struct sl_discover *d = w->d;
    (void)events;
    if (d->closing)
        return;
    /* on_child may drop this very watch: work on copies. */
    char *dir = sl_strdup(w->path);
    size_t root = w->root, level = w->level;
    if (status < 0 || !filename || !*filename)
        scan_dir(d, root, dir, level);
    else
        on_child(d, root, dir, level, filename, DT_UNKNOWN);
    sl_free(dir);
}

void sl_discover_sweep(struct sl_discover *d)
{
    for (struct watch *w = d->watches; w; w = w->next)
        w->seen = false;
    for (size_t i = 0; i < d->nroots; i++) {
        struct root *r = &d->roots[i];
        struct stat st;
        if (stat(r->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            if (!r->missing_logged)
                sl_warn("log directory is missing, will retry", "dir=%s", r->dir);
            r->missing_logged = true;
            continue;
        }
        r->missing_logged = false;
        ensure_watch(d, i, r->dir, 0);
        scan_dir(d, i, r->dir, 0);
    }
    struct watch **pp = &d->watches;
    while (*pp) {
        struct watch *w = *pp;
        if (!w->seen) {
            *pp = w->next;
            drop_watch(d, w);
        } else {
            pp = &w->next;
        }
    }
}

static void on_sweep(uv_timer_t *t)
{
    sl_discover_sweep(t->data);
}

static char *trim_slashes(const char *s)
{
    char *c = sl_strdup(s);
    size_t n = strlen(c);
    while (n > 1 && c[n - 1] == '/')
        c[--n] = '\0';
    return c;
}

/* Splits a glob into the fixed leading directory and per-level patterns. */
static void add_glob_root(struct sl_discover *d, const char *pattern, int source,
                          const struct sl_strlist *excl)
{
    struct root *r = &d->roots[d->nroots++];
    r->source = source;
    r->pattern = trim_slashes(pattern);
    r->exclude = excl->items;
    r->nexclude = excl->n;
    const char *p = r->pattern;
    const char *first_wild = strpbrk(p, "*?[");
    const char *cut = first_wild ? first_wild : p + strlen(p);
    while (cut > p && *cut != '/')
        cut--;
    if (*cut == '/') {
        r->dir = cut == p ? sl_strdup("/") : sl_strndup(p, (size_t)(cut - p));
        cut++;
    } else {
        r->dir = sl_strdup(".");
    }
    for (const char *c = cut; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL)
        r->ncomp++;
    r->comps = sl_calloc(r->ncomp, sizeof(char *));
    const char *c = cut;
    for (size_t i = 0; i < r->ncomp; i++) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        r->comps[i] = sl_strndup(c, len);
        c = e ? e + 1 : c + len;
    }
}

struct sl_discover *sl_discover_new(uv_loop_t *loop, const char *pods_path,
                                    const struct sl_discover_glob *globs, size_t nglobs,
                                    int64_t sweep_ns, sl_discover_file_cb cb, void *ud)
{
    struct sl_discover *d = SL_NEW(struct sl_discover);
    size_t nroots = pods_path && *pods_path ? 1 : 0;
    for (size_t i = 0; i < nglobs; i++)
        nroots += globs[i].ninclude;
    d->roots = sl_calloc(nroots ? nroots : 1, sizeof(struct root));
    d->excl = sl_calloc(nglobs ? nglobs : 1, sizeof(struct sl_strlist));
    d->nexcl = nglobs;
    if (pods_path && *pods_path) {
        struct root *r = &d->roots[d->nroots++];
        r->dir = trim_slashes(pods_path);
        r->ncomp = PODS_LEVELS;
        r->source = SL_DISCOVER_PODS;
    }
    for (size_t i = 0; i < nglobs; i++) {
        struct sl_strlist *x = &d->excl[i];
        x->n = globs[i].nexclude;
        x->items = sl_calloc(x->n ? x->n : 1, sizeof(char *));
        for (size_t j = 0; j < x->n; j++)
            x->items[j] = sl_strdup(globs[i].exclude[j]);
        for (size_t j = 0; j < globs[i].ninclude; j++)
            add_glob_root(d, globs[i].include[j], (int)i, x);
    }
    d->loop = loop;
    d->sweep_ns = sweep_ns;
    d->cb = cb;
    d->ud = ud;
    uv_timer_init(loop, &d->sweep);
    d->sweep.data = d;
    return d;
}

bool sl_discover_source_of(const struct sl_discover *d, const char *path, int *source)
{
    struct sl_log_path lp;
    for (size_t i = 0; i < d->nroots; i++) {
        const struct root *r = &d->roots[i];
        bool m = r->comps ? fnmatch(r->pattern, path, FNM_PATHNAME | FNM_PERIOD) == 0 &&
                                !excluded(r, path)
                          : sl_discover_parse_path(r->dir, path, &lp) == 0;
        if (m) {
            *source = r->source;
            return true;
        }
    }
    return false;
}

int sl_discover_start(struct sl_discover *d)
{
    uint64_t ms = (uint64_t)(d->sweep_ns / 1000000);
    sl_discover_sweep(d);
    uv_timer_start(&d->sweep, on_sweep, ms ? ms : 1, ms ? ms : 1);
    return 0;
}

size_t sl_discover_nwatches(const struct sl_discover *d)
{
    return d->nwatches;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct sl_discover *d = h->data;
    if (--d->pending_closes == 0)
        free_discover(d);
}

void sl_discover_free(struct sl_discover *d)
{
    d->closing = true;
    d->pending_closes = 1; /* the timer */
    uv_timer_stop(&d->sweep);
    uv_close((uv_handle_t *)&d->sweep, on_timer_closed);
    while (d->watches) {
        struct watch *w = d->watches;
        d->watches = w->next;
        drop_watch(d, w);
    }
}
