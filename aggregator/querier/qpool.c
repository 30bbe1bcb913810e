/* Worker pool: a ring of attached sources served round-robin, one unit of
 * work per turn, under one mutex (a turn is a chunk's worth of work, so the
 * lock is taken a few hundred times a second at most). */
#include "aggregator/querier/qpool.h"

#include <pthread.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"

struct sl_qpool {
    pthread_mutex_t mu;
    pthread_cond_t work;          /* a source was attached or kicked, or stopping */
    pthread_cond_t idle;          /* a worker left a callback (detach waits on it) */
    struct sl_qpool_source *ring; /* next source to serve; circular list */
    pthread_t *threads;
    size_t nthreads;
    bool stop;
};

/* Next source with work after the ring's head, moving the head past it. */
static struct sl_qpool_source *take(struct sl_qpool *p)
{
    struct sl_qpool_source *s = p->ring;
    if (!s)
        return NULL;
    do {
        if (!s->empty) {
            p->ring = s->next;
            return s;
        }
        s = s->next;
    } while (s != p->ring);
    return NULL;
}

static void *worker(void *arg)
{
    struct sl_qpool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct sl_qpool_source *s = take(p);
        if (!s) {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        s->running++;
        unsigned gen = s->gen;
        pthread_mutex_unlock(&p->mu);
        bool did = s->fn(s->ud);
        pthread_mutex_lock(&p->mu);
        s->running--;
        if (!did && gen == s->gen)
            s->empty = true; /* until kicked */
        pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

size_t sl_qpool_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

struct sl_qpool *sl_qpool_new(size_t nthreads)
{
    struct sl_qpool *p = SL_NEW(struct sl_qpool);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->threads = sl_calloc(nthreads ? nthreads : 1, sizeof *p->threads);
    for (size_t i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            sl_warn("query pool: cannot start a worker thread", "started=%zu wanted=%zu", i,
                    nthreads);
            break;
        }
        p->nthreads++;
    }
    return p;
}

void sl_qpool_free(struct sl_qpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    sl_free(p->threads);
    pthread_cond_destroy(&p->idle);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    sl_free(p);
}

size_t sl_qpool_threads(const struct sl_qpool *p)
{
    return p ? p->nthreads : 0;
}

void sl_qpool_attach(struct sl_qpool *p, struct sl_qpool_source *s, sl_qpool_work_fn fn, void *ud)
{
    s->fn = fn;
    s->ud = ud;
    s->running = 0;
    s->gen = 0;
    s->empty = false;
    if (!p || p->nthreads == 0)
        return;
    pthread_mutex_lock(&p->mu);
    if (!p->ring) {
        s->prev = s->next = s;
        p->ring = s;
    } else { /* just before the head: served last in this round */
        s->next = p->ring;
        s->prev = p->ring->prev;
        s->prev->next = s;
        p->ring->prev = s;
    }
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void sl_qpool_kick(struct sl_qpool *p, struct sl_qpool_source *s)
{
    if (!p || p->nthreads == 0)
        return;
    pthread_mutex_lock(&p->mu);
    s->gen++;
    if (s->empty) {
        s->empty = false;
        pthread_cond_broadcast(&p->work);
    }
    pthread_mutex_unlock(&p->mu);
}

void sl_qpool_detach(struct sl_qpool *p, struct sl_qpool_source *s)
{
    if (!p || p->nthreads == 0)
        return;
    pthread_mutex_lock(&p->mu);
    if (s->next == s) {
        p->ring = NULL;
    } else {
        s->prev->next = s->next;
        s->next->prev = s->prev;
        if (p->ring == s)
            p->ring = s->next;
    }
    s->prev = s->next = NULL;
    while (s->running)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
