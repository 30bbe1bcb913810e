/* Querier core over the ingester's memory. A log query keeps the best
 * `limit` entries in a bounded heap (worst at the root): a stream's scan runs
 * in the query's direction, so it stops as soon as its next timestamp cannot
 * beat the heap's worst; memory is bounded by `limit` lines, whatever the
 * number of streams. Streams' labels are copied only when they contribute. */
#include "aggregator/querier/querier.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/ingester/ingester.h"
#include "aggregator/ingester/postings.h"
#include "aggregator/logql/logql.h"
#include "aggregator/querier/select.h"
#include "aggregator/querier/split.h"
#include "common/arena.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/jsonw.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"

/* Returned by the entry callback to end one stream's scan early. */
#define SCAN_STOP 1
/* The deadline (a clock read) is checked every this many entries; the
 * cancel flag on every entry (see check_stop_at). */
#define DEADLINE_EVERY 1024

struct qstream {
    struct sl_labels labels; /* arena copy */
    struct sl_bytes canon;   /* arena copy of the canonical form */
    size_t rank;             /* position in label order */
};

struct kept {
    int64_t ts;
    uint32_t stream;
    uint64_t seq; /* scan order within its stream */
    char *line;   /* sl_malloc'd copy */
    size_t len;
};

struct logrun {
    const struct sl_querier_request *req;
    struct sl_logql_query *q;
    const struct sl_logql_log_expr *e;
    struct sl_arena arena;
    struct qstream *streams;
    size_t nstreams, capstreams;
    struct kept *heap;
    size_t nheap, limit;
    const struct sl_labels *cur_labels; /* stream being scanned */
    uint32_t cur;
    bool cur_has; /* cur is valid: the stream has been copied */
    uint64_t cur_seq;
    uint64_t lines, bytes;
    /* The pipeline beyond the leading line filters; relabel: its stages
     * change labels, so entries are grouped by their labels after it. */
    struct sl_logql_pipeline *pl;
    bool relabel;
    uint32_t *smap; /* canonical labels -> stream index + 1 (relabel) */
    size_t smap_cap;
    struct sl_buf key;
    struct sl_logql_log_expr tail; /* the stages after the leading line filters */
    struct sl_label *meta;         /* the entry's structured metadata, decoded */
    size_t capmeta;
    bool over_bytes; /* stopped at limits.max_query_bytes_read */
    size_t splits;   /* stats: parts of a split metric query */
};

/* ---- store access ---- */

/* The selector's equality matchers (non-empty values) narrow the series
 * through the index postings; the full label check runs on what remains. */
struct selmatch {
    struct sl_logql_query *q;
    const struct sl_logql_log_expr *e;
    struct sl_index_matcher eq[8];
    size_t neq;
    /* Matchers that reject an absent label (=~ "x.*", != ""...) narrow the
     * streams in memory through the ingester's postings. */
    struct sl_postings_pred pred[8];
    struct selpred {
        struct sl_logql_query *q;
        const struct sl_logql_matcher *m;
    } pctx[8];
    size_t npred;
};

static bool selmatch_pred(struct sl_bytes value, void *ud)
{
    const struct selpred *p = ud;
    return sl_logql_matcher_matches(p->q, p->m, value);
}

static bool selmatch_fn(const struct sl_labels *ls, void *ud)
{
    struct selmatch *sm = ud;
    return sl_logql_match_labels(sm->q, sm->e, ls);
}

static void selmatch_init(struct selmatch *sm, struct sl_logql_query *q,
                          const struct sl_logql_log_expr *e)
{
    sm->q = q;
    sm->e = e;
    sm->neq = 0;
    sm->npred = 0;
    for (size_t i = 0; i < e->nmatchers; i++) {
        const struct sl_logql_matcher *m = &e->matchers[i];
        if (m->op == SL_LOGQL_MATCH_EQ && m->value.len) {
            if (sm->neq < sizeof sm->eq / sizeof *sm->eq)
                sm->eq[sm->neq++] = (struct sl_index_matcher){m->name, m->value};
        } else if (m->op != SL_LOGQL_MATCH_EQ && sm->npred < sizeof sm->pred / sizeof *sm->pred &&
                   !sl_logql_matcher_matches(q, m, sl_bytes("", 0))) {
            sm->pctx[sm->npred] = (struct selpred){q, m};
            sm->pred[sm->npred] =
                (struct sl_postings_pred){m->name, selmatch_pred, &sm->pctx[sm->npred]};
            sm->npred++;
        }
    }
}

/* A visit of the series matching sm (NULL: all) over [from, through). */
static int select_run(const struct sl_querier_request *req, struct sl_ingester *ing,
                      struct selmatch *sm, int64_t from, int64_t through, bool prefetch,
                      bool backward, bool slice_memory, sl_select_fn fn, void *ud)
{
    struct sl_select_spec sp = {.tenant = req->tenant,
                                .eq = sm ? sm->eq : NULL,
                                .neq = sm ? sm->neq : 0,
                                .pred = sm ? sm->pred : NULL,
                                .npred = sm ? sm->npred : 0,
                                .match = sm ? selmatch_fn : NULL,
                                .match_ud = sm,
                                .from = from,
                                .through = through,
                                .prefetch = prefetch,
                                .backward = backward,
                                .slice_memory = slice_memory};
    return sl_select_run(req->select, ing, &sp, fn, ud);
}

/* SL_ETIMEDOUT past the deadline, SL_ECANCELED once canceled, else 0. */
static int check_stop(const struct sl_querier_request *req)
{
    if (req->canceled && atomic_load_explicit(req->canceled, memory_order_relaxed))
        return SL_ECANCELED;
    if (req->deadline_mono_ns && sl_mono_ns() > req->deadline_mono_ns)
        return SL_ETIMEDOUT;
    return 0;
}

/* check_stop for the n-th entry of a scan. The cancel flag costs a relaxed
 * load, so it is read on every entry: one line can take milliseconds (a
 * regex at its match limit), and a client that hung up or a shutdown should
 * not wait a thousand of them. */
static int check_stop_at(const struct sl_querier_request *req, uint64_t n)
{
    if (req->canceled && atomic_load_explicit(req->canceled, memory_order_relaxed))
        return SL_ECANCELED;
    return n % DEADLINE_EVERY == 0 ? check_stop(req) : 0;
}

static void result_text(struct sl_querier_result *res, int status, const char *msg, size_t n)
{
    res->status = status;
    res->json = false;
    sl_buf_clear(&res->body);
    sl_buf_append(&res->body, msg, n);
}

/* <0 if a is to be returned in preference to b. */
static int kept_cmp(const struct logrun *r, const struct kept *a, const struct kept *b)
{
    if (a->ts != b->ts) {
        bool a_first = r->req->forward ? a->ts < b->ts : a->ts > b->ts;
        return a_first ? -1 : 1;
    }
    if (a->stream != b->stream)
        return sl_bytes_cmp(r->streams[a->stream].canon, r->streams[b->stream].canon);
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void heap_swap(struct kept *h, size_t i, size_t j)
{
    struct kept t = h[i];
    h[i] = h[j];
    h[j] = t;
}

/* Root is the worst entry: a parent never compares better than a child. */
static void heap_up(struct logrun *r, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (kept_cmp(r, &r->heap[p], &r->heap[i]) >= 0)
            break;
        heap_swap(r->heap, p, i);
        i = p;
    }
}

static void heap_down(struct logrun *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, w = i;
        if (l < r->nheap && kept_cmp(r, &r->heap[l], &r->heap[w]) > 0)
            w = l;
        if (l + 1 < r->nheap && kept_cmp(r, &r->heap[l + 1], &r->heap[w]) > 0)
            w = l + 1;
        if (w == i)
            return;
        heap_swap(r->heap, i, w);
        i = w;
    }
}

static void copy_current_stream(struct logrun *r);

/* Stream of the labels a pipeline produced (relabel): found by canonical
 * text in an open-addressing map, created on first use. */
static uint32_t stream_of(struct logrun *r, const struct sl_labels *ls)
{
    sl_buf_clear(&r->key);
    sl_labels_format(ls, &r->key);
    if (2 * r->nstreams >= r->smap_cap) {
        size_t ncap = r->smap_cap ? 2 * r->smap_cap : 64;
        sl_free(r->smap);
        r->smap = sl_calloc(ncap, sizeof *r->smap);
        r->smap_cap = ncap;
        for (size_t i = 0; i < r->nstreams; i++) {
            size_t j = (size_t)sl_xxh3(r->streams[i].canon.ptr, r->streams[i].canon.len);
            while (r->smap[j & (ncap - 1)])
                j++;
            r->smap[j & (ncap - 1)] = (uint32_t)i + 1;
        }
    }
    size_t mask = r->smap_cap - 1, j = (size_t)sl_xxh3(r->key.data, r->key.len);
    for (;; j++) {
        uint32_t v = r->smap[j & mask];
        if (!v)
            break;
        if (sl_bytes_eq(r->streams[v - 1].canon, sl_buf_bytes(&r->key)))
            return v - 1;
    }
    r->cur_labels = ls;
    copy_current_stream(r);
    r->smap[j & mask] = r->cur + 1;
    return r->cur;
}

/* An entry with structured metadata, in a query whose stages keep the
 * stream's labels: its result stream is the labels with its metadata (as
 * Loki answers without categorize-labels); the stream of the entries
 * without metadata stays current. */
static uint32_t stream_of_meta(struct logrun *r, const struct sl_labels *ls)
{
    const struct sl_labels *cl = r->cur_labels;
    uint32_t cur = r->cur;
    bool has = r->cur_has;
    uint32_t s = stream_of(r, ls);
    r->cur_labels = cl;
    r->cur = cur;
    r->cur_has = has;
    return s;
}

static void copy_current_stream(struct logrun *r)
{
    if (r->nstreams == r->capstreams) {
        r->capstreams = r->capstreams ? 2 * r->capstreams : 16;
        r->streams = sl_reallocarray(r->streams, r->capstreams, sizeof *r->streams);
    }
    struct qstream *qs = &r->streams[r->nstreams];
    sl_labels_copy(&r->arena, r->cur_labels, &qs->labels);
    struct sl_buf c = SL_BUF_INIT;
    sl_labels_format(&qs->labels, &c);
    qs->canon = sl_arena_bytes(&r->arena, sl_buf_bytes(&c));
    sl_buf_release(&c);
    r->cur = (uint32_t)r->nstreams++;
    r->cur_has = true;
}

static int on_entry(const struct sl_chunk_entry *ce, void *ud)
{
    int64_t ts = ce->ts;
    struct sl_bytes line = ce->line;
    struct logrun *r = ud;
    r->lines++;
    r->bytes += line.len;
    if (r->req->max_bytes_read && r->bytes > r->req->max_bytes_read) {
        r->over_bytes = true;
        return SL_ETOOBIG;
    }
    int stop;
    if ((stop = check_stop_at(r->req, r->lines)) != 0)
        return stop;
    uint64_t seq = r->cur_seq++;
    if (r->nheap == r->limit) {
        int64_t worst = r->heap[0].ts;
        if (r->req->forward ? ts > worst : ts < worst)
            return SCAN_STOP; /* the rest of this stream is worse still */
    }
    if (!sl_logql_match_line(r->q, r->e, line))
        return 0;
    uint32_t stream = r->cur;
    int nmeta = ce->n_meta ? sl_chunk_meta_labels(ce, &r->meta, &r->capmeta) : 0;
    if (nmeta < 0)
        return nmeta;
    if (r->tail.nstages || nmeta) {
        const struct sl_labels *ls;
        if (!sl_logql_pipeline_run_meta(r->pl, ts, line, r->meta, (size_t)nmeta, &line, &ls))
            return 0;
        if (r->relabel)
            stream = stream_of(r, ls);
        else if (nmeta)
            stream = stream_of_meta(r, ls);
    }
    if (!r->relabel && !nmeta) {
        if (!r->cur_has)
            copy_current_stream(r);
        stream = r->cur;
    }
    struct kept k = {ts, stream, seq, NULL, line.len};
    if (r->nheap == r->limit) {
        if (kept_cmp(r, &k, &r->heap[0]) >= 0)
            return 0;
        sl_free(r->heap[0].line);
        k.line = sl_memdup(line.len ? line.ptr : "", line.len ? line.len : 1);
        r->heap[0] = k;
        heap_down(r, 0);
        return 0;
    }
    k.line = sl_memdup(line.len ? line.ptr : "", line.len ? line.len : 1);
    r->heap[r->nheap++] = k;
    heap_up(r, r->nheap - 1);
    return 0;
}

static int on_log_stream(const struct sl_stream_info *s, struct sl_select_reader *rd, void *ud)
{
    struct logrun *r = ud;
    const struct sl_querier_request *req = r->req;
    if (s->entries == 0 || s->max_ts < req->start_ns || s->min_ts >= req->end_ns)
        return 0;
    if (!sl_logql_match_labels(r->q, r->e, s->labels))
        return 0;
    r->cur_labels = s->labels;
    r->cur_has = false;
    r->cur_seq = 0;
    if (r->pl)
        sl_logql_pipeline_stream(r->pl, s->labels);
    int rc =
        sl_select_reader_scan_entries(rd, req->start_ns, req->end_ns, !req->forward, on_entry, r);
    return rc == SCAN_STOP ? 0 : rc;
}

static int rank_cmp(const void *a, const void *b, void *ud)
{
    const struct qstream *s = ud;
    return sl_bytes_cmp(s[*(const size_t *)a].canon, s[*(const size_t *)b].canon);
}

/* Streams in label order; in a stream, entries in the query's direction. */
static int out_cmp(const void *a, const void *b, void *ud)
{
    const struct logrun *r = ud;
    const struct kept *x = a, *y = b;
    if (x->stream != y->stream)
        return r->streams[x->stream].rank < r->streams[y->stream].rank ? -1 : 1;
    if (x->ts != y->ts)
        return (x->ts < y->ts) == r->req->forward ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void write_labels(struct sl_jsonw *w, const struct sl_labels *ls)
{
    sl_jsonw_obj_open(w);
    for (size_t i = 0; i < ls->n; i++) {
        sl_jsonw_key_bytes(w, ls->items[i].name);
        sl_jsonw_bytes(w, ls->items[i].value);
    }
    sl_jsonw_obj_close(w);
}

static void write_stats(struct sl_jsonw *w, const struct logrun *r, int64_t exec_ns)
{
    double secs = (double)exec_ns / 1e9;
    sl_jsonw_key(w, "stats");
    sl_jsonw_obj_open(w);
    sl_jsonw_key(w, "summary");
    sl_jsonw_obj_open(w);
    sl_jsonw_key(w, "bytesProcessedPerSecond");
    sl_jsonw_i64(w, secs > 0 ? (int64_t)((double)r->bytes / secs) : 0);
    sl_jsonw_key(w, "linesProcessedPerSecond");
    sl_jsonw_i64(w, secs > 0 ? (int64_t)((double)r->lines / secs) : 0);
    sl_jsonw_key(w, "totalBytesProcessed");
    sl_jsonw_i64(w, (int64_t)r->bytes);
    sl_jsonw_key(w, "totalLinesProcessed");
    sl_jsonw_i64(w, (int64_t)r->lines);
    sl_jsonw_key(w, "execTime");
    sl_jsonw_f64(w, secs);
    sl_jsonw_key(w, "queueTime");
    sl_jsonw_f64(w, 0);
    sl_jsonw_key(w, "totalEntriesReturned");
    sl_jsonw_i64(w, (int64_t)r->nheap);
    sl_jsonw_key(w, "splits"); /* parts a metric query was evaluated in */
    sl_jsonw_i64(w, r->splits ? (int64_t)r->splits : 1);
    sl_jsonw_obj_close(w);
    sl_jsonw_obj_close(w);
}

static void write_streams(struct logrun *r, struct sl_querier_result *res, int64_t exec_ns)
{
    size_t *order = sl_mallocarray(r->nstreams ? r->nstreams : 1, sizeof *order);
    for (size_t i = 0; i < r->nstreams; i++)
        order[i] = i;
    qsort_r(order, r->nstreams, sizeof *order, rank_cmp, r->streams);
    for (size_t i = 0; i < r->nstreams; i++)
        r->streams[order[i]].rank = i;
    sl_free(order);
    qsort_r(r->heap, r->nheap, sizeof *r->heap, out_cmp, r);

    struct sl_jsonw w;
    sl_jsonw_init(&w, &res->body);
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "status");
    sl_jsonw_str(&w, "success");
    sl_jsonw_key(&w, "data");
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "resultType");
    sl_jsonw_str(&w, "streams");
    sl_jsonw_key(&w, "result");
    sl_jsonw_arr_open(&w);
    for (size_t i = 0; i < r->nheap; i++) {
        const struct kept *k = &r->heap[i];
        if (i == 0 || k->stream != r->heap[i - 1].stream) {
            if (i)
                sl_jsonw_arr_close(&w), sl_jsonw_obj_close(&w);
            sl_jsonw_obj_open(&w);
            sl_jsonw_key(&w, "stream");
            write_labels(&w, &r->streams[k->stream].labels);
            sl_jsonw_key(&w, "values");
            sl_jsonw_arr_open(&w);
        }
        sl_jsonw_arr_open(&w);
        sl_jsonw_i64_str(&w, k->ts);
        sl_jsonw_bytes(&w, sl_bytes(k->line, k->len));
        sl_jsonw_arr_close(&w);
    }
    if (r->nheap)
        sl_jsonw_arr_close(&w), sl_jsonw_obj_close(&w);
    sl_jsonw_arr_close(&w);
    write_stats(&w, r, exec_ns);
    sl_jsonw_obj_close(&w);
    sl_jsonw_obj_close(&w);
    res->status = 200;
    res->json = true;
}

/* Parses a LogQL text; on failure fills res (400) and returns NULL. */
static struct sl_logql_query *parse_or_400(struct sl_bytes text, bool selector_only,
                                           struct sl_querier_result *res)
{
    struct sl_logql_query *q = NULL;
    struct sl_buf err = SL_BUF_INIT;
    int rc = selector_only ? sl_logql_parse_selector(text.ptr, text.len, &q, &err)
                           : sl_logql_parse(text.ptr, text.len, &q, &err);
    if (rc) {
        result_text(res, 400, err.data ? err.data : "invalid query", err.len);
        sl_buf_release(&err);
        return NULL;
    }
    sl_buf_release(&err);
    return q;
}

static void scan_error(struct sl_querier_result *res, int rc)
{
    if (rc == SL_ETIMEDOUT) {
        static const char msg[] = "query timed out";
        result_text(res, 504, msg, sizeof msg - 1);
    } else if (rc == SL_ECANCELED) {
        static const char msg[] = "query canceled: shutting down";
        result_text(res, 503, msg, sizeof msg - 1);
    } else {
        struct sl_buf b = SL_BUF_INIT;
        sl_buf_appendf(&b, "query failed: %s", sl_strerror(rc));
        result_text(res, 500, b.data, b.len);
        sl_buf_release(&b);
    }
}

/* ---- metric queries ---- */

struct metricrun {
    const struct sl_querier_request *req;
    struct sl_logql_metric *m;
    size_t src;
    int64_t from, through;
    uint64_t n;
    struct sl_label *meta; /* the entry's structured metadata, decoded */
    size_t capmeta;
    /* Stats and max_bytes_read count the entries in [own_from, through):
     * a split part's earlier ones were read by the previous part too and
     * count there (own_from is from for the first part). */
    int64_t own_from;
    uint64_t lines, bytes;
    _Atomic uint64_t *bytes_read; /* the query's total (all parts) */
    atomic_bool *abort;           /* split: another part failed */
    bool over_bytes;              /* stopped at limits.max_query_bytes_read */
};

static int on_metric_entry(const struct sl_chunk_entry *e, void *ud)
{
    struct metricrun *mr = ud;
    int stop;
    if ((stop = check_stop_at(mr->req, ++mr->n)) != 0)
        return stop;
    if (e->ts >= mr->own_from && e->ts < mr->through) {
        mr->lines++;
        mr->bytes += e->line.len;
        uint64_t max = mr->req->max_bytes_read;
        if (max && atomic_fetch_add_explicit(mr->bytes_read, e->line.len, memory_order_relaxed) +
                           e->line.len >
                       max) {
            mr->over_bytes = true;
            return SL_ETOOBIG;
        }
    }
    if (e->n_meta == 0) {
        sl_logql_metric_entry(mr->m, mr->src, e->ts, e->line);
        return 0;
    }
    int nmeta = sl_chunk_meta_labels(e, &mr->meta, &mr->capmeta);
    if (nmeta < 0)
        return nmeta;
    sl_logql_metric_entry_meta(mr->m, mr->src, e->ts, e->line, mr->meta, (size_t)nmeta);
    return 0;
}

static int on_metric_stream(const struct sl_stream_info *s, struct sl_select_reader *rd, void *ud)
{
    struct metricrun *mr = ud;
    if (mr->abort && atomic_load_explicit(mr->abort, memory_order_relaxed))
        return SL_ECANCELED;
    if (s->entries == 0 || s->max_ts < mr->from || s->min_ts >= mr->through)
        return 0;
    if (!sl_logql_metric_stream(mr->m, mr->src, s->labels))
        return 0;
    return sl_select_reader_scan_entries(rd, mr->from, mr->through, false, on_metric_entry, mr);
}

/* The JSON answer of a metric query: the matrix of m, or of the split
 * merge sm when m is NULL. */
static void write_metric_result(struct sl_logql_metric *m, struct sl_split_merge *sm, size_t splits,
                                uint64_t lines, uint64_t bytes, struct sl_querier_result *res,
                                int64_t exec_ns)
{
    struct sl_jsonw w;
    sl_jsonw_init(&w, &res->body);
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "status");
    sl_jsonw_str(&w, "success");
    sl_jsonw_key(&w, "data");
    sl_jsonw_obj_open(&w);
    if (m)
        sl_logql_metric_write(m, &w);
    else
        sl_split_merge_write(sm, &w);
    struct logrun stats = {.lines = lines, .bytes = bytes, .splits = splits};
    write_stats(&w, &stats, exec_ns);
    sl_jsonw_obj_close(&w);
    sl_jsonw_obj_close(&w);
    res->status = 200;
    res->json = true;
}

static void bytes_limit_error(struct sl_querier_result *res, uint64_t max)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_appendf(&b,
                   "the query would read too many bytes (query: more than %llu B, limit: %llu B, "
                   "limits.max_query_bytes_read); consider adding more specific stream "
                   "selectors or reduce the time range of the query",
                   (unsigned long long)max, (unsigned long long)max);
    result_text(res, 400, b.data, b.len);
    sl_buf_release(&b);
}

/* One evaluation of a metric query over req's steps: the whole query, or
 * one part of a split (querier/split.h). */
struct mpart {
    struct sl_ingester *ing;
    struct sl_querier_request req; /* start_ns, end_ns: the part's steps */
    int64_t prev_end;              /* last step of the previous part; INT64_MIN: none */
    struct sl_logql_query *q;      /* its own (PCRE2 match state is per query) */
    struct sl_logql_metric *m;
    _Atomic uint64_t bytes_read_local;
    _Atomic uint64_t *bytes_read;
    atomic_bool *abort;
    bool split; /* a part: the parts are the parallelism, memory is not sliced */
    int new_rc, scan_rc, eval_rc;
    bool over_bytes;
    struct sl_buf err;
    uint64_t lines, bytes;
};

static void part_run(struct mpart *p)
{
    const struct sl_querier_request *req = &p->req;
    struct sl_logql_metric_params pr = {
        .start_ns = req->kind == SL_QUERIER_INSTANT ? req->end_ns : req->start_ns,
        .end_ns = req->end_ns,
        .step_ns = req->step_ns,
        .instant = req->kind == SL_QUERIER_INSTANT,
        .max_series = req->max_series,
    };
    if (!p->bytes_read)
        p->bytes_read = &p->bytes_read_local;
    struct metricrun mr = {.req = req, .bytes_read = p->bytes_read, .abort = p->abort};
    if ((p->new_rc = sl_logql_metric_new(p->q, &pr, &p->m, &p->err)) != 0)
        return;
    mr.m = p->m;
    int rc = 0;
    for (mr.src = 0; rc == 0 && mr.src < sl_logql_metric_nsources(p->m); mr.src++) {
        struct selmatch sm;
        selmatch_init(&sm, p->q, sl_logql_metric_source(p->m, mr.src, &mr.from, &mr.through));
        /* the previous part read up to its through: prev_end - offset + 1 */
        mr.own_from = p->prev_end == INT64_MIN ? mr.from : p->prev_end + (mr.through - req->end_ns);
        rc = select_run(req, p->ing, &sm, mr.from, mr.through, true, false, !p->split,
                        on_metric_stream, &mr);
    }
    p->lines = mr.lines;
    p->bytes = mr.bytes;
    p->over_bytes = mr.over_bytes;
    sl_free(mr.meta);
    if (rc == 0)
        rc = check_stop(req);
    if (rc == 0 && (p->eval_rc = sl_logql_metric_eval(p->m, &p->err)) != 0)
        rc = p->eval_rc;
    else
        p->scan_rc = rc;
    if (rc && p->abort)
        atomic_store(p->abort, true);
}

static void *part_thread(void *arg)
{
    part_run(arg);
    return NULL;
}

static void part_release(struct mpart *p)
{
    sl_logql_metric_free(p->m);
    sl_buf_release(&p->err);
}

/* Runs the parts (the first on this thread, the others on threads of their
 * own) and, if they all succeeded, writes the concatenated matrix. Returns
 * false (res untouched) when the whole query must be evaluated instead: a
 * part failed in its evaluation (a pipeline error or too many series name a
 * series and a step that only the whole evaluation gives exactly). */
static bool run_split(struct sl_ingester *ing, const struct sl_querier_request *req,
                      struct sl_querier_result *res, struct sl_logql_query *q,
                      const struct sl_split_part *parts, size_t np, int64_t t0)
{
    struct mpart *ps = sl_calloc(np, sizeof *ps);
    pthread_t *th = sl_calloc(np, sizeof *th);
    bool *started = sl_calloc(np, sizeof *started);
    atomic_bool abort = false;
    _Atomic uint64_t bytes_read = 0;
    uint64_t hits0 = q->regex_limit_hits, hits = 0;
    bool done = false;
    for (size_t i = 0; i < np; i++) {
        struct mpart *p = &ps[i];
        p->ing = ing;
        p->req = *req;
        p->req.start_ns = parts[i].start_ns;
        p->req.end_ns = parts[i].end_ns;
        p->prev_end = i ? parts[i - 1].end_ns : INT64_MIN;
        p->abort = &abort;
        p->split = true;
        p->bytes_read = &bytes_read;
        sl_buf_init(&p->err);
        p->q = q;
        if (i && sl_logql_parse(req->query.ptr, req->query.len, &p->q, NULL) != 0)
            goto out; /* parsed once already: cannot happen */
    }
    for (size_t i = 1; i < np; i++)
        started[i] = pthread_create(&th[i], NULL, part_thread, &ps[i]) == 0;
    part_run(&ps[0]);
    for (size_t i = 1; i < np; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            part_run(&ps[i]);
    }
    uint64_t lines = 0, bytes = 0;
    int scan_rc = 0;
    bool over = false, eval_failed = false;
    for (size_t i = 0; i < np; i++) {
        lines += ps[i].lines;
        bytes += ps[i].bytes;
        over |= ps[i].over_bytes;
        eval_failed |= ps[i].new_rc != 0 || ps[i].eval_rc != 0;
        if (ps[i].scan_rc && (scan_rc == 0 || scan_rc == SL_ECANCELED))
            scan_rc = ps[i].scan_rc;
        if (i)
            hits += ps[i].q->regex_limit_hits;
    }
    bool canceled = req->canceled && atomic_load(req->canceled);
    if (over) {
        res->bytes_limited = true;
        bytes_limit_error(res, req->max_bytes_read);
    } else if (scan_rc && (scan_rc != SL_ECANCELED || canceled || !eval_failed)) {
        scan_error(res, scan_rc);
    } else if (eval_failed) {
        sl_info("split metric query: a part failed, evaluating the whole query", "parts=%zu", np);
        q->regex_limit_hits = hits0;
        res->split_fallback = true;
        goto out;
    } else {
        struct sl_split_merge sm;
        sl_split_merge_init(&sm);
        for (size_t i = 0; i < np; i++)
            for (size_t k = 0; k < sl_logql_metric_nseries(ps[i].m); k++) {
                const int64_t *ts;
                const double *v;
                size_t n;
                const struct sl_labels *ls = sl_logql_metric_series(ps[i].m, k, &ts, &v, &n);
                sl_split_merge_add(&sm, ls, ts, v, n);
            }
        if (req->max_series && sl_split_merge_nseries(&sm) > req->max_series) {
            struct sl_buf b = SL_BUF_INIT;
            sl_buf_appendf(&b, "maximum of series (%zu) reached for a single query",
                           req->max_series);
            result_text(res, 400, b.data, b.len);
            sl_buf_release(&b);
        } else {
            write_metric_result(NULL, &sm, np, lines, bytes, res, sl_mono_ns() - t0);
        }
        sl_split_merge_release(&sm);
    }
    res->lines_scanned = lines;
    res->bytes_scanned = bytes;
    res->regex_limit_hits = q->regex_limit_hits + hits;
    res->split_parts = np;
    done = true;
out:
    for (size_t i = 0; i < np; i++) {
        part_release(&ps[i]);
        if (i)
            sl_logql_query_free(ps[i].q);
    }
    sl_free(ps);
    sl_free(th);
    sl_free(started);
    return done;
}

/* The parts a metric query_range is split into (1: not split). */
static size_t split_parts(const struct sl_querier_request *req, struct sl_logql_query *q,
                          struct sl_split_part *parts)
{
    if (req->kind == SL_QUERIER_INSTANT || req->split_ns <= 0 || req->step_ns <= 0)
        return 1;
    size_t max = req->split_max;
    if (max == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        max = n > 0 ? (size_t)n : 1;
    }
    size_t np = sl_split_plan(req->start_ns, req->end_ns, req->step_ns, req->split_ns, max, parts);
    if (np <= 1)
        return 1;
    /* only a query that reads data is worth it (and valid parameters) */
    struct sl_logql_metric_params pr = {
        .start_ns = req->start_ns, .end_ns = req->end_ns, .step_ns = req->step_ns};
    struct sl_logql_metric *m = NULL;
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_logql_metric_new(q, &pr, &m, &err);
    sl_buf_release(&err);
    if (rc != 0)
        return 1;
    size_t nsrc = sl_logql_metric_nsources(m);
    sl_logql_metric_free(m);
    return nsrc ? np : 1;
}

/* A metric query (query_range with a step, or an instant query). */
static void run_metric(struct sl_ingester *ing, const struct sl_querier_request *req,
                       struct sl_querier_result *res, struct sl_logql_query *q)
{
    int64_t t0 = sl_mono_ns();
    struct sl_split_part parts[SL_SPLIT_MAX_PARTS];
    size_t np = split_parts(req, q, parts);
    if (np > 1 && run_split(ing, req, res, q, parts, np, t0))
        return;
    struct mpart p = {.ing = ing, .req = *req, .prev_end = INT64_MIN, .q = q};
    sl_buf_init(&p.err);
    part_run(&p);
    if (p.new_rc) {
        result_text(res, 400, p.err.data ? p.err.data : "invalid query", p.err.len);
    } else if (p.over_bytes) {
        res->bytes_limited = true;
        bytes_limit_error(res, req->max_bytes_read);
    } else if (p.scan_rc) {
        scan_error(res, p.scan_rc);
    } else if (p.eval_rc) {
        result_text(res, 400, p.err.data ? p.err.data : "query failed", p.err.len);
    } else {
        write_metric_result(p.m, NULL, 1, p.lines, p.bytes, res, sl_mono_ns() - t0);
    }
    res->lines_scanned = p.lines;
    res->bytes_scanned = p.bytes;
    res->regex_limit_hits = q->regex_limit_hits;
    part_release(&p);
}

static void run_logs(struct sl_ingester *ing, const struct sl_querier_request *req,
                     struct sl_querier_result *res)
{
    int64_t t0 = sl_mono_ns();
    struct logrun r = {.req = req, .limit = (size_t)req->limit};
    r.q = parse_or_400(req->query, false, res);
    if (!r.q)
        return;
    r.e = sl_logql_log_expr(r.q);
    if (!r.e) {
        run_metric(ing, req, res, r.q);
        sl_logql_query_free(r.q);
        return;
    }
    if (req->kind == SL_QUERIER_INSTANT) {
        static const char msg[] = "log queries are not supported as an instant query type, "
                                  "please change your query to a range query type";
        result_text(res, 400, msg, sizeof msg - 1);
        sl_logql_query_free(r.q);
        return;
    }
    r.tail = *r.e;
    while (r.tail.nstages && r.tail.stages[0].kind == SL_LOGQL_STAGE_LINE_FILTER)
        r.tail.stages++, r.tail.nstages--;
    /* also without stages: entries with structured metadata go through it */
    r.pl = sl_logql_pipeline_new(r.q, &r.tail);
    r.relabel = sl_logql_pipeline_changes_labels(r.pl);
    sl_buf_init(&r.key);
    sl_arena_init(&r.arena, 0);
    r.heap = sl_mallocarray(r.limit ? r.limit : 1, sizeof *r.heap);
    struct selmatch sm;
    selmatch_init(&sm, r.q, r.e);
    int rc = r.limit ? select_run(req, ing, &sm, req->start_ns, req->end_ns, true, !req->forward,
                                  false, on_log_stream, &r)
                     : 0;
    if (rc && r.over_bytes) {
        res->bytes_limited = true;
        bytes_limit_error(res, req->max_bytes_read);
    } else if (rc) {
        scan_error(res, rc);
    } else {
        write_streams(&r, res, sl_mono_ns() - t0);
    }
    res->lines_scanned = r.lines;
    res->bytes_scanned = r.bytes;
    res->entries_returned = rc ? 0 : r.nheap;
    res->regex_limit_hits = r.q->regex_limit_hits;
    for (size_t i = 0; i < r.nheap; i++)
        sl_free(r.heap[i].line);
    sl_free(r.heap);
    sl_free(r.streams);
    sl_free(r.smap);
    sl_buf_release(&r.key);
    sl_logql_pipeline_free(r.pl);
    sl_free(r.meta);
    sl_arena_release(&r.arena);
    sl_logql_query_free(r.q);
}

/* ---- labels, label values, series ---- */

struct metarun {
    const struct sl_querier_request *req;
    struct sl_logql_query **sel; /* selectors (values: 0 or 1; series: nmatch) */
    size_t nsel;
    struct sl_arena arena;
    struct sl_bytes *items; /* names, values, or canonical label sets */
    struct sl_labels *sets; /* series: label sets parallel to items */
    size_t n, cap;
    uint32_t *set; /* names and values: item index + 1 by hash (repeats kept once) */
    size_t setcap;
    uint64_t regex_limit_hits;
};

/* Open addressing over items; false if v is there already (else the caller
 * appends it as item n). */
static bool meta_set_insert(struct metarun *m, struct sl_bytes v)
{
    if (2 * (m->n + 1) > m->setcap) {
        size_t ncap = m->setcap ? 2 * m->setcap : 256;
        sl_free(m->set);
        m->set = sl_calloc(ncap, sizeof *m->set);
        m->setcap = ncap;
        for (size_t i = 0; i < m->n; i++) {
            size_t j = (size_t)sl_xxh3(m->items[i].ptr, m->items[i].len);
            while (m->set[j & (ncap - 1)])
                j++;
            m->set[j & (ncap - 1)] = (uint32_t)i + 1;
        }
    }
    size_t mask = m->setcap - 1, j = (size_t)sl_xxh3(v.ptr, v.len);
    for (;; j++) {
        uint32_t k = m->set[j & mask];
        if (!k)
            break;
        if (sl_bytes_eq(m->items[k - 1], v))
            return false;
    }
    m->set[j & mask] = (uint32_t)m->n + 1;
    return true;
}

static void meta_add(struct metarun *m, struct sl_bytes v, const struct sl_labels *ls)
{
    if (!ls && !meta_set_insert(m, v))
        return;
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->items = sl_reallocarray(m->items, m->cap, sizeof *m->items);
        if (m->req->kind == SL_QUERIER_SERIES)
            m->sets = sl_reallocarray(m->sets, m->cap, sizeof *m->sets);
    }
    m->items[m->n] = sl_arena_bytes(&m->arena, v);
    if (ls)
        sl_labels_copy(&m->arena, ls, &m->sets[m->n]);
    m->n++;
}

static bool meta_selected(struct metarun *m, const struct sl_labels *ls)
{
    if (m->nsel == 0)
        return true;
    for (size_t i = 0; i < m->nsel; i++)
        if (sl_logql_match_labels(m->sel[i], sl_logql_log_expr(m->sel[i]), ls))
            return true;
    return false;
}

static int on_meta_stream(const struct sl_stream_info *s, struct sl_select_reader *rd, void *ud)
{
    (void)rd;
    struct metarun *m = ud;
    const struct sl_querier_request *req = m->req;
    if (s->entries == 0 || s->max_ts < req->start_ns || s->min_ts >= req->end_ns)
        return 0;
    if (!meta_selected(m, s->labels))
        return 0;
    const struct sl_labels *ls = s->labels;
    if (req->kind == SL_QUERIER_LABELS) {
        for (size_t i = 0; i < ls->n; i++)
            meta_add(m, ls->items[i].name, NULL);
    } else if (req->kind == SL_QUERIER_LABEL_VALUES) {
        for (size_t i = 0; i < ls->n; i++)
            if (sl_bytes_eq(ls->items[i].name, req->label_name) && ls->items[i].value.len)
                meta_add(m, ls->items[i].value, NULL);
    } else {
        struct sl_buf c = SL_BUF_INIT;
        sl_labels_format(ls, &c);
        meta_add(m, sl_buf_bytes(&c), ls);
        sl_buf_release(&c);
    }
    return 0;
}

static int on_meta_item(struct sl_bytes v, void *ud)
{
    meta_add(ud, v, NULL);
    return 0;
}

static int bytes_cmp(const void *a, const void *b)
{
    return sl_bytes_cmp(*(const struct sl_bytes *)a, *(const struct sl_bytes *)b);
}

static int series_cmp(const void *a, const void *b, void *ud)
{
    const struct sl_bytes *items = ud;
    return sl_bytes_cmp(items[*(const size_t *)a], items[*(const size_t *)b]);
}

static void write_meta(struct metarun *m, struct sl_querier_result *res)
{
    struct sl_jsonw w;
    sl_jsonw_init(&w, &res->body);
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "status");
    sl_jsonw_str(&w, "success");
    sl_jsonw_key(&w, "data");
    sl_jsonw_arr_open(&w);
    if (m->req->kind == SL_QUERIER_SERIES) {
        size_t *order = sl_mallocarray(m->n ? m->n : 1, sizeof *order);
        for (size_t i = 0; i < m->n; i++)
            order[i] = i;
        qsort_r(order, m->n, sizeof *order, series_cmp, m->items);
        for (size_t i = 0; i < m->n; i++)
            if (i == 0 || !sl_bytes_eq(m->items[order[i]], m->items[order[i - 1]]))
                write_labels(&w, &m->sets[order[i]]);
        sl_free(order);
    } else {
        bool sorted = true; /* often so: one index file gives them in order */
        for (size_t i = 1; i < m->n && sorted; i++)
            sorted = sl_bytes_cmp(m->items[i - 1], m->items[i]) < 0;
        if (!sorted)
            qsort(m->items, m->n, sizeof *m->items, bytes_cmp);
        for (size_t i = 0; i < m->n; i++)
            if (i == 0 || !sl_bytes_eq(m->items[i], m->items[i - 1]))
                sl_jsonw_bytes(&w, m->items[i]);
    }
    sl_jsonw_arr_close(&w);
    sl_jsonw_obj_close(&w);
    res->status = 200;
    res->json = true;
}

static void run_meta(struct sl_ingester *ing, const struct sl_querier_request *req,
                     struct sl_querier_result *res)
{
    struct metarun m = {.req = req};
    size_t want = req->kind == SL_QUERIER_SERIES                             ? req->nmatch
                  : (req->kind == SL_QUERIER_LABEL_VALUES && req->query.len) ? 1
                                                                             : 0;
    m.sel = sl_calloc(want ? want : 1, sizeof *m.sel);
    for (; m.nsel < want; m.nsel++) {
        bool series = req->kind == SL_QUERIER_SERIES;
        struct sl_bytes text = series ? req->match[m.nsel] : req->query;
        m.sel[m.nsel] = parse_or_400(text, series, res);
        if (!m.sel[m.nsel])
            goto done;
        if (!sl_logql_log_expr(m.sel[m.nsel])) {
            static const char msg[] = "only log selectors are accepted here";
            result_text(res, 400, msg, sizeof msg - 1);
            m.nsel++;
            goto done;
        }
    }
    sl_arena_init(&m.arena, 0);
    int rc = 0;
    if (req->end_ns <= req->start_ns) {
        /* nothing */
    } else if (m.nsel == 0) { /* names, or values without a selector: the postings */
        rc = sl_select_labels(req->select, ing, req->tenant,
                              req->kind == SL_QUERIER_LABELS ? NULL : &req->label_name,
                              req->start_ns, req->end_ns, on_meta_item, &m);
    } else {
        /* One selector narrows through the index; several are checked on
         * each series (meta_selected). */
        struct selmatch sm;
        if (m.nsel == 1)
            selmatch_init(&sm, m.sel[0], sl_logql_log_expr(m.sel[0]));
        rc = select_run(req, ing, m.nsel == 1 ? &sm : NULL, req->start_ns, req->end_ns, false,
                        false, false, on_meta_stream, &m);
    }
    if (rc)
        scan_error(res, rc);
    else
        write_meta(&m, res);
    sl_arena_release(&m.arena);
done:
    for (size_t i = 0; i < m.nsel; i++) {
        if (m.sel[i])
            res->regex_limit_hits += m.sel[i]->regex_limit_hits;
        sl_logql_query_free(m.sel[i]);
    }
    sl_free(m.sel);
    sl_free(m.items);
    sl_free(m.sets);
    sl_free(m.set);
}

/* ---- index/stats ---- */

struct statsrun {
    const struct sl_querier_request *req;
    struct sl_logql_query *sel;
    uint64_t streams, chunks, entries, bytes;
    uint64_t cur_entries;
};

static int on_stats_entry(int64_t ts, struct sl_bytes line, void *ud)
{
    (void)ts;
    struct statsrun *s = ud;
    s->cur_entries++;
    s->bytes += line.len;
    return 0;
}

/* Exact entries and bytes of [start, end) (memory and store, duplicates
 * removed, as a query sees them). "chunks" counts the stored chunks of the
 * stream that overlap the range (as Loki counts them from its index), or
 * one for a stream with data only in memory. */
static int on_stats_stream(const struct sl_stream_info *si, struct sl_select_reader *rd, void *ud)
{
    struct statsrun *s = ud;
    const struct sl_querier_request *req = s->req;
    if (si->entries == 0 || si->max_ts < req->start_ns || si->min_ts >= req->end_ns)
        return 0;
    if (!sl_logql_match_labels(s->sel, sl_logql_log_expr(s->sel), si->labels))
        return 0;
    s->cur_entries = 0;
    int rc = sl_select_reader_scan(rd, req->start_ns, req->end_ns, false, on_stats_entry, s);
    if (rc)
        return rc;
    if (s->cur_entries) {
        size_t stored = sl_select_reader_chunks(rd, req->start_ns, req->end_ns);
        s->streams++;
        s->chunks += stored ? stored : 1;
        s->entries += s->cur_entries;
    }
    return check_stop(req);
}

static void run_index_stats(struct sl_ingester *ing, const struct sl_querier_request *req,
                            struct sl_querier_result *res)
{
    struct statsrun s = {.req = req};
    s.sel = parse_or_400(req->query, true, res);
    if (!s.sel)
        return;
    struct selmatch sm;
    selmatch_init(&sm, s.sel, sl_logql_log_expr(s.sel));
    int rc = req->end_ns > req->start_ns ? select_run(req, ing, &sm, req->start_ns, req->end_ns,
                                                      true, false, true, on_stats_stream, &s)
                                         : 0;
    res->regex_limit_hits += s.sel->regex_limit_hits;
    sl_logql_query_free(s.sel);
    res->lines_scanned = s.entries;
    res->bytes_scanned = s.bytes;
    if (rc) {
        scan_error(res, rc);
        return;
    }
    sl_buf_appendf(&res->body, "{\"streams\":%llu,\"chunks\":%llu,\"entries\":%llu,\"bytes\":%llu}",
                   (unsigned long long)s.streams, (unsigned long long)s.chunks,
                   (unsigned long long)s.entries, (unsigned long long)s.bytes);
    res->status = 200;
    res->json = true;
}

void sl_querier_run(struct sl_ingester *ing, const struct sl_querier_request *req,
                    struct sl_querier_result *res)
{
    memset(res, 0, sizeof *res);
    sl_buf_init(&res->body);
    if (req->kind == SL_QUERIER_LOGS || req->kind == SL_QUERIER_INSTANT)
        run_logs(ing, req, res);
    else if (req->kind == SL_QUERIER_INDEX_STATS)
        run_index_stats(ing, req, res);
    else
        run_meta(ing, req, res);
}
