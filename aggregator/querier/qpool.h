/* The querier's worker pool: a few threads (querier.max_concurrency, the
 * number of CPUs by default) that run the CPU-heavy parts of queries
 * (fetching and decoding stored chunks) so that one large query uses every
 * core.
 *
 * Work is pulled, not pushed: each running query attaches a source, a
 * callback that runs one unit of its work (e.g. one chunk) and says whether
 * there was any. Workers take the attached sources in turn, one unit each,
 * so many small queries share the pool fairly and a large one cannot starve
 * them; a source with nothing to do is skipped until it is kicked again.
 * The query's own thread does work too (a unit it needs next is run inline
 * when no worker has started it), so a query never waits on a busy pool.
 *
 * Threading: every call may come from any thread. A source must stay valid
 * until sl_qpool_detach returns, which waits for the workers inside its
 * callback. A pool of 0 threads is valid: nothing runs in the background. */
#ifndef SL_QPOOL_H
#define SL_QPOOL_H

#include <stdbool.h>
#include <stddef.h>

struct sl_qpool;

/* Runs one unit of work; returns false if there was none to run now. */
typedef bool (*sl_qpool_work_fn)(void *ud);

struct sl_qpool_source {
    sl_qpool_work_fn fn;
    void *ud;
    /* private to the pool */
    struct sl_qpool_source *prev, *next;
    size_t running;
    unsigned gen; /* kicks so far */
    bool empty;
};

/* nthreads 0: no background threads (every unit runs on the query's own
 * thread). */
struct sl_qpool *sl_qpool_new(size_t nthreads);
/* Stops and joins the threads; every source must be detached. NULL is ok. */
void sl_qpool_free(struct sl_qpool *p);
size_t sl_qpool_threads(const struct sl_qpool *p);

/* Starts offering s's work to the workers. p may be NULL (no-op). */
void sl_qpool_attach(struct sl_qpool *p, struct sl_qpool_source *s, sl_qpool_work_fn fn, void *ud);
/* s has new work: wake a worker. */
void sl_qpool_kick(struct sl_qpool *p, struct sl_qpool_source *s);
/* Stops offering s and waits until no worker runs its callback. */
void sl_qpool_detach(struct sl_qpool *p, struct sl_qpool_source *s);

/* The number of online CPUs (at least 1): the default pool size. */
size_t sl_qpool_ncpu(void);

#endif
