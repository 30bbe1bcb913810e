/* Label set parser: parse, validate, format, and check that the canonical
 * form parses back to the same labels with the same fingerprint. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_arena arena;
    struct sl_buf err = SL_BUF_INIT, out = SL_BUF_INIT, out2 = SL_BUF_INIT;
    struct sl_labels ls, back;
    sl_arena_init(&arena, 4096);
    if (sl_labels_parse(&arena, (const char *)data, size, &ls, &err) != 0)
        goto done;
    struct sl_label_limits lim = {15, 1024, 2048};
    (void)sl_labels_validate(&ls, &lim, &err);
    /* Format works on any parsed set once sorted, valid or not. */
    sl_labels_sort(&ls);
    sl_labels_format(&ls, &out);
    if (sl_labels_parse(&arena, out.data, out.len, &back, &err) != 0)
        abort();
    if (back.n != ls.n)
        abort();
    for (size_t i = 0; i < ls.n; i++) {
        if (!sl_bytes_eq(back.items[i].name, ls.items[i].name) ||
            !sl_bytes_eq(back.items[i].value, ls.items[i].value))
            abort();
    }
    sl_labels_format(&back, &out2);
    if (!sl_bytes_eq(sl_buf_bytes(&out), sl_buf_bytes(&out2)))
        abort();
    if (sl_labels_fingerprint(&ls) != sl_labels_fingerprint(&back))
        abort();
    struct sl_labels copy;
    sl_labels_copy(&arena, &ls, &copy);
    if (ls.n && !sl_labels_get(&copy, "app") != !sl_labels_get(&ls, "app"))
        abort();
done:
    sl_buf_release(&err);
    sl_buf_release(&out);
    sl_buf_release(&out2);
    sl_arena_release(&arena);
    return 0;
}
