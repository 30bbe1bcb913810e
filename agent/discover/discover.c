/* Kubelet-layout discovery: a three-level tree of directory watches. */
#include "agent/discover/discover.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"

enum { LEVEL_PODS = 0, LEVEL_POD = 1, LEVEL_CONTAINER = 2 };

struct watch {
    uv_fs_event_t h;
    struct sl_discover *d;
    char *path;
    int level;
    bool seen; /* mark for the sweep */
    bool started;
    bool counted; /* its close is awaited by sl_discover_free */
    struct watch *next;
};

struct sl_discover {
    uv_loop_t *loop;
    char *pods_path;
    int64_t sweep_ns;
    sl_discover_file_cb cb;
    void *ud;
    uv_timer_t sweep;
    struct watch *watches;
    size_t nwatches;
    bool missing_logged;
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

static struct watch *find_watch(struct sl_discover *d, const char *path)
{
    for (struct watch *w = d->watches; w; w = w->next)
        if (!strcmp(w->path, path))
            return w;
    return NULL;
}

static void on_watch_closed(uv_handle_t *h)
{
    struct watch *w = h->data;
    struct sl_discover *d = w->d;
    bool counted = w->counted;
    sl_free(w->path);
    sl_free(w);
    if (counted && --d->pending_closes == 0) {
        sl_free(d->pods_path);
        sl_free(d);
    }
}

static void drop_watch(struct sl_discover *d, struct watch *w)
{
    d->nwatches--;
    if (w->started)
        uv_fs_event_stop(&w->h);
    if (d->closing) {
        d->pending_closes++;
        w->counted = true;
    }
    uv_close((uv_handle_t *)&w->h, on_watch_closed);
}

/* Removes the watch of dir and of everything below it. */
static void drop_tree(struct sl_discover *d, const char *dir)
{
    size_t n = strlen(dir);
    struct watch **pp = &d->watches;
    while (*pp) {
        struct watch *w = *pp;
        if (!strncmp(w->path, dir, n) && (w->path[n] == '\0' || w->path[n] == '/')) {
            *pp = w->next;
            sl_debug("stopped watching", "dir=%s", w->path);
            drop_watch(d, w);
        } else {
            pp = &w->next;
        }
    }
}

static void scan_dir(struct sl_discover *d, const char *path, int level);
static void on_event(uv_fs_event_t *h, const char *filename, int events, int status);

/* Watches dir (if not yet) and marks it seen. Returns the watch or NULL. */
static struct watch *ensure_watch(struct sl_discover *d, const char *dir, int level)
{
    struct watch *w = find_watch(d, dir);
    if (w) {
        w->seen = true;
        return w;
    }
    w = SL_NEW(struct watch);
    w->d = d;
    w->path = sl_strdup(dir);
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
    d->nwatches++;
    sl_debug("watching", "dir=%s level=%d", dir, level);
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

static void report_file(struct sl_discover *d, const char *path)
{
    struct sl_log_path lp;
    if (sl_discover_parse_path(d->pods_path, path, &lp) == 0)
        d->cb(d->ud, path, &lp);
}

/* Handles one entry `name` of directory `dir` (a watch of `level`). */
static void on_child(struct sl_discover *d, const char *dir, int level, const char *name,
                     unsigned char dtype)
{
    struct sl_buf p = SL_BUF_INIT;
    struct sl_log_path lp;
    struct sl_bytes nb = sl_bytes_str(name);
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return;
    sl_buf_appendf(&p, "%s/%s", dir, name);
    if (level == LEVEL_CONTAINER) {
        if (sl_discover_is_log_name(nb))
            report_file(d, p.data);
    } else if (level == LEVEL_PODS && sl_discover_parse_pod_dir(nb, &lp) != 0) {
        /* not a pod directory */
    } else if (is_dir(p.data, dtype)) {
        ensure_watch(d, p.data, level + 1);
        scan_dir(d, p.data, level + 1);
    } else {
        drop_tree(d, p.data); /* gone (or replaced by a file) */
    }
    sl_buf_release(&p);
}

static void scan_dir(struct sl_discover *d, const char *path, int level)
{
    DIR *dir = opendir(path);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        on_child(d, path, level, de->d_name, de->d_type);
    closedir(dir);
}

static void on_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct watch *w = h->data;
    struct sl_discover *d = w->d;
    (void)events;
    if (d->closing)
        return;
    if (status < 0 || !filename || !*filename) {
        scan_dir(d, w->path, w->level);
        return;
    }
    /* dtype unknown: on_child stats it. The watch may be dropped inside. */
    char *dir = sl_strdup(w->path);
    on_child(d, dir, w->level, filename, DT_UNKNOWN);
    sl_free(dir);
}

void sl_discover_sweep(struct sl_discover *d)
{
    struct stat st;
    for (struct watch *w = d->watches; w; w = w->next)
        w->seen = false;
    if (stat(d->pods_path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (!d->missing_logged)
            sl_warn("pods directory is missing, will retry", "dir=%s", d->pods_path);
        d->missing_logged = true;
    } else {
        d->missing_logged = false;
        ensure_watch(d, d->pods_path, LEVEL_PODS);
        scan_dir(d, d->pods_path, LEVEL_PODS);
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

struct sl_discover *sl_discover_new(uv_loop_t *loop, const char *pods_path, int64_t sweep_ns,
                                    sl_discover_file_cb cb, void *ud)
{
    struct sl_discover *d = SL_NEW(struct sl_discover);
    d->loop = loop;
    d->pods_path = sl_strdup(pods_path);
    size_t n = strlen(d->pods_path);
    while (n > 1 && d->pods_path[n - 1] == '/')
        d->pods_path[--n] = '\0';
    d->sweep_ns = sweep_ns;
    d->cb = cb;
    d->ud = ud;
    uv_timer_init(loop, &d->sweep);
    d->sweep.data = d;
    return d;
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
    if (--d->pending_closes == 0) {
        sl_free(d->pods_path);
        sl_free(d);
    }
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
