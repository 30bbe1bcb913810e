/* Positions file: JSON written with common/jsonw.h, read with jansson. */
#include "agent/positions/positions.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/format.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/jsonw.h"
#include "common/mem.h"

void sl_positions_init(struct sl_positions *p)
{
    memset(p, 0, sizeof(*p));
}

void sl_positions_clear(struct sl_positions *p)
{
    for (size_t i = 0; i < p->n; i++) {
        sl_free(p->items[i].path);
        sl_free(p->items[i].name);
    }
    p->n = 0;
}

void sl_positions_release(struct sl_positions *p)
{
    sl_positions_clear(p);
    sl_free(p->items);
    sl_positions_init(p);
}

const struct sl_position *sl_positions_get(const struct sl_positions *p, const char *path)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->items[i].path, path))
            return &p->items[i];
    return NULL;
}

const struct sl_position *sl_positions_find(const struct sl_positions *p, uint64_t dev,
                                            uint64_t ino)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->items[i].ino == ino && p->items[i].dev == dev)
            return &p->items[i];
    return NULL;
}

void sl_positions_add(struct sl_positions *p, const char *path, const char *name, uint64_t dev,
                      uint64_t ino, struct sl_fingerprint fp, uint64_t offset)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->items = sl_reallocarray(p->items, p->cap, sizeof(*p->items));
    }
    struct sl_position *e = &p->items[p->n++];
    e->path = sl_strdup(path);
    e->name = name && strcmp(name, path) != 0 ? sl_strdup(name) : NULL;
    e->dev = dev;
    e->ino = ino;
    e->fp = fp;
    e->offset = offset;
}

void sl_positions_set(struct sl_positions *p, const char *path, uint64_t dev, uint64_t ino,
                      struct sl_fingerprint fp, uint64_t offset)
{
    struct sl_position *e = (struct sl_position *)sl_positions_find(p, dev, ino);
    if (!e) {
        sl_positions_add(p, path, NULL, dev, ino, fp, offset);
        return;
    }
    if (strcmp(e->path, path) != 0) {
        sl_free(e->path);
        e->path = sl_strdup(path);
    }
    e->dev = dev;
    e->ino = ino;
    e->fp = fp;
    e->offset = offset;
}

static int load_entry(struct sl_positions *p, json_t *f, size_t i, struct sl_buf *err)
{
    json_t *path = json_object_get(f, "path");
    json_t *dev = json_object_get(f, "device");
    json_t *ino = json_object_get(f, "inode");
    json_t *off = json_object_get(f, "offset");
    json_t *fp = json_object_get(f, "fingerprint");
    json_t *fpl = fp ? json_object_get(fp, "len") : NULL;
    json_t *fph = fp ? json_object_get(fp, "xxh3") : NULL;
    if (!json_is_string(path) || !json_is_integer(dev) || !json_is_integer(ino) ||
        !json_is_integer(off) || !json_is_integer(fpl) || !json_is_string(fph) ||
        json_integer_value(off) < 0 || json_integer_value(fpl) < 0 ||
        json_integer_value(fpl) > SL_FINGERPRINT_MAX) {
        sl_buf_appendf(err, "files[%zu]: missing or invalid field", i);
        return SL_ECORRUPT;
    }
    char *end;
    errno = 0;
    unsigned long long h = strtoull(json_string_value(fph), &end, 16);
    if (errno || *end || end == json_string_value(fph)) {
        sl_buf_appendf(err, "files[%zu]: invalid fingerprint", i);
        return SL_ECORRUPT;
    }
    json_t *name = json_object_get(f, "name");
    if (name && !json_is_string(name)) {
        sl_buf_appendf(err, "files[%zu]: invalid name", i);
        return SL_ECORRUPT;
    }
    struct sl_fingerprint fpv = {(uint32_t)json_integer_value(fpl), h};
    uint64_t d = (uint64_t)json_integer_value(dev), n = (uint64_t)json_integer_value(ino);
    if (sl_positions_find(p, d, n))
        return 0; /* written by an older agent keyed by path: the first wins */
    sl_positions_add(p, json_string_value(path), name ? json_string_value(name) : NULL, d, n, fpv,
                     (uint64_t)json_integer_value(off));
    return 0;
}

int sl_positions_load(struct sl_positions *p, const char *file, struct sl_buf *err)
{
    sl_positions_clear(p);
    json_error_t jerr;
    json_t *root = json_load_file(file, 0, &jerr);
    if (!root) {
        if (access(file, F_OK) != 0 && errno == ENOENT)
            return 0;
        sl_buf_appendf(err, "%s: line %d: %s", file, jerr.line, jerr.text);
        return SL_ECORRUPT;
    }
    int rc = 0;
    json_t *ver = json_object_get(root, "version");
    json_t *files = json_object_get(root, "files");
    if (!json_is_integer(ver) || !json_is_array(files)) {
        sl_buf_appendf(err, "%s: expected {\"version\": N, \"files\": [...]}", file);
        rc = SL_ECORRUPT;
    } else if (json_integer_value(ver) > SL_POSITIONS_VERSION) {
        sl_buf_appendf(err, "%s: version %lld is newer than %d", file,
                       (long long)json_integer_value(ver), SL_POSITIONS_VERSION);
        rc = SL_EUNSUPP;
    } else {
        for (size_t i = 0; i < json_array_size(files) && rc == 0; i++)
            rc = load_entry(p, json_array_get(files, i), i, err);
    }
    json_decref(root);
    if (rc)
        sl_positions_clear(p);
    return rc;
}

static void encode(const struct sl_positions *p, struct sl_buf *out)
{
    struct sl_jsonw w;
    char hex[17];
    sl_jsonw_init(&w, out);
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "version");
    sl_jsonw_i64(&w, SL_POSITIONS_VERSION);
    sl_jsonw_key(&w, "files");
    sl_jsonw_arr_open(&w);
    for (size_t i = 0; i < p->n; i++) {
        const struct sl_position *e = &p->items[i];
        sl_jsonw_obj_open(&w);
        sl_jsonw_key(&w, "path");
        sl_jsonw_str(&w, e->path);
        sl_jsonw_key(&w, "device");
        sl_jsonw_i64(&w, (int64_t)e->dev);
        sl_jsonw_key(&w, "inode");
        sl_jsonw_i64(&w, (int64_t)e->ino);
        sl_jsonw_key(&w, "fingerprint");
        sl_jsonw_obj_open(&w);
        sl_jsonw_key(&w, "len");
        sl_jsonw_i64(&w, e->fp.len);
        sl_jsonw_key(&w, "xxh3");
        snprintf(hex, sizeof(hex), "%016" PRIx64, e->fp.hash);
        sl_jsonw_str(&w, hex);
        sl_jsonw_obj_close(&w);
        sl_jsonw_key(&w, "offset");
        sl_jsonw_i64(&w, (int64_t)e->offset);
        if (e->name) {
            sl_jsonw_key(&w, "name");
            sl_jsonw_str(&w, e->name);
        }
        sl_jsonw_obj_close(&w);
    }
    sl_jsonw_arr_close(&w);
    sl_jsonw_obj_close(&w);
    sl_buf_append_char(out, '\n');
}

int sl_positions_save(const struct sl_positions *p, const char *file, struct sl_buf *err)
{
    struct sl_buf body = SL_BUF_INIT;
    encode(p, &body);
    /* A parent that cannot be created shows up as the failing open below. */
    (void)sl_mkdir_parent(file);
    int rc = sl_write_file_atomic(file, body.data, body.len, err);
    sl_buf_release(&body);
    return rc ? SL_EIO : 0;
}

static int read_first(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, buf + got, want - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return SL_EIO;
        got += (size_t)r;
    }
    return 0;
}

int sl_fingerprint_fd(int fd, uint64_t size, struct sl_fingerprint *out)
{
    char buf[SL_FINGERPRINT_MAX];
    size_t n = size < SL_FINGERPRINT_MAX ? (size_t)size : SL_FINGERPRINT_MAX;
    if (read_first(fd, buf, n) != 0)
        return SL_EIO;
    out->len = (uint32_t)n;
    out->hash = sl_xxh3(buf, n);
    return 0;
}

bool sl_fingerprint_match(int fd, const struct sl_fingerprint *want)
{
    char buf[SL_FINGERPRINT_MAX];
    if (want->len > SL_FINGERPRINT_MAX || read_first(fd, buf, want->len) != 0)
        return false;
    return sl_xxh3(buf, want->len) == want->hash;
}
