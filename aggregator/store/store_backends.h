/* Internal contract between the object-store dispatch (store.c) and its
 * backends (store_fs.c, store_s3.c). Nothing outside aggregator/store/
 * includes this file.
 *
 * A backend's open function checks its options, allocates its own state and
 * returns it in *impl together with its vtable in *vt. store.c wraps the pair
 * in the public struct sl_store, counts every call in the metrics of store.h
 * and forwards it unchanged: the vtable functions have exactly the semantics,
 * error codes and threading rules of the public functions of store.h (keys are
 * already checked: relative, '/'-separated, no "." or ".." segment, no empty
 * segment, no leading '/'). close releases impl; it is called once, after
 * every other call has returned.
 *
 * Both open functions are always linked: store.c calls them directly. */
#ifndef SL_STORE_BACKENDS_H
#define SL_STORE_BACKENDS_H

#include "aggregator/store/store.h"

struct sl_store_vtbl {
    const char *name; /* "filesystem", "s3" (the metrics' backend label) */
    int (*put)(void *impl, const char *key, const void *data, size_t len, struct sl_buf *err);
    int (*get)(void *impl, const char *key, struct sl_buf *out, struct sl_buf *err);
    int (*get_range)(void *impl, const char *key, uint64_t off, uint64_t len, struct sl_buf *out,
                     struct sl_buf *err);
    int (*list)(void *impl, const char *prefix, sl_store_list_objects_fn fn, void *ud,
                struct sl_buf *err);
    int (*del)(void *impl, const char *key, struct sl_buf *err);
    void (*close)(void *impl);
};

/* Each returns 0 or an SL_E* code with a reason appended to err (may be
 * NULL). metrics may be NULL; a backend may register its own extra series. */
int sl__store_fs_open(const struct sl_store_opts *o, struct sl_metrics *metrics,
                      const struct sl_store_vtbl **vt, void **impl, struct sl_buf *err);
int sl__store_s3_open(const struct sl_store_opts *o, struct sl_metrics *metrics,
                      const struct sl_store_vtbl **vt, void **impl, struct sl_buf *err);

#endif
