/* sluice-loggen: a deterministic generator of CRI pod-log lines.
 *
 * The text of line i depends only on --seed and i, so benchmarks and tests are
 * repeatable; timestamps start at --start (default: now) and advance 1 us per
 * line so they stay within the aggregator's accepted window. Lines mix the
 * shapes pods really print: logfmt, JSON and web access logs, about 200 bytes
 * on average, with an optional share split into CRI partial (P) pieces.
 *
 * Two modes:
 *   file:  --out FILE (or -) with --bytes/--lines: write and exit.
 *   demo:  --pods-dir DIR: create a kubelet tree of --pods pods and append
 *          --rate lines per second among them until killed.
 * With --numbered, each line's text is "<seq> <payload>" so tests can check
 * that every line arrived exactly once. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fsutil.h"
#include "common/timeutil.h"

struct gen {
    uint64_t seed;
    int64_t ts_ns;
    uint64_t seq;
    unsigned partial_every;
    bool numbered;
    struct sl_buf line;
};

static uint64_t mix(uint64_t x)
{
    /* splitmix64: a good stateless mix, so line i needs no history. */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static const char *const levels[] = {"debug", "info", "info", "info", "info", "warn", "error"};
static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
static const char *const paths[] = {"/api/v1/users",      "/api/v1/orders", "/healthz",
                                    "/api/v1/cart/items", "/static/app.js", "/login"};
static const int statuses[] = {200, 200, 200, 200, 201, 204, 301, 404, 500, 503};
static const char *const msgs[] = {
    "request served",    "cache miss",     "slow query",        "connection reset by peer",
    "retrying upstream", "user logged in", "payment authorised"};

#define PICK(arr, r) (arr[(r) % (sizeof(arr) / sizeof(arr[0]))])

/* Writes the payload of line `seq` into g->line (cleared first). */
static void gen_payload(struct gen *g, uint64_t seq)
{
    uint64_t r = mix(g->seed ^ (seq * 0x100000001b3ull));
    uint64_t r2 = mix(r);
    struct sl_buf *b = &g->line;
    sl_buf_clear(b);
    if (g->numbered)
        sl_buf_appendf(b, "%" PRIu64 " ", seq);
    unsigned shape = r % 10;
    unsigned dur = (unsigned)(r2 % 5000);
    unsigned bytes = (unsigned)((r2 >> 16) % 90000);
    if (shape < 5) {
        sl_buf_appendf(b,
                       "level=%s caller=handler.go:%u msg=\"%s\" method=%s path=%s/%u "
                       "status=%d duration_ms=%u bytes=%u trace_id=%016" PRIx64,
                       PICK(levels, r >> 8), (unsigned)(r >> 20) % 900 + 10, PICK(msgs, r >> 12),
                       PICK(methods, r >> 16), PICK(paths, r >> 24), (unsigned)(r2 >> 40) % 100000,
                       PICK(statuses, r >> 28), dur, bytes, r2);
    } else if (shape < 8) {
        sl_buf_appendf(b,
                       "{\"level\":\"%s\",\"msg\":\"%s\",\"component\":\"%s\",\"duration_ms\":%u,"
                       "\"rows\":%u,\"user\":{\"id\":%u,\"region\":\"eu-west-%u\"}}",
                       PICK(levels, r >> 8), PICK(msgs, r >> 12),
                       (r >> 32) & 1 ? "db" : "scheduler", dur, (unsigned)(r2 >> 20) % 1000,
                       (unsigned)(r2 >> 36) % 100000, (unsigned)(r >> 40) % 3 + 1);
    } else {
        sl_buf_appendf(
            b,
            "10.%u.%u.%u - - \"%s %s HTTP/1.1\" %d %u \"-\" \"Mozilla/5.0 (X11; Linux "
            "x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\"",
            (unsigned)(r >> 8) & 255, (unsigned)(r >> 16) & 255, (unsigned)(r >> 24) & 255,
            PICK(methods, r >> 16), PICK(paths, r >> 24), PICK(statuses, r >> 28), bytes);
    }
}

/* Appends line `seq` in CRI form to out, possibly as several P pieces. */
static void gen_cri(struct gen *g, uint64_t seq, struct sl_buf *out)
{
    gen_payload(g, seq);
    const char *stream = (mix(seq ^ 0x5555) % 8) == 0 ? "stderr" : "stdout";
    size_t len = g->line.len, off = 0;
    bool split = g->partial_every && seq % g->partial_every == g->partial_every - 1 && len > 8;
    size_t piece = split ? len / 3 + 1 : len;
    do {
        size_t n = len - off < piece ? len - off : piece;
        bool last = off + n == len;
        sl_rfc3339_format(out, g->ts_ns);
        sl_buf_appendf(out, " %s %c ", stream, last ? 'F' : 'P');
        sl_buf_append(out, g->line.data + off, n);
        sl_buf_append_char(out, '\n');
        off += n;
        g->ts_ns += 1000;
    } while (off < len);
}

static int run_file(struct gen *g, const char *out, int64_t max_bytes, int64_t max_lines)
{
    int fd = strcmp(out, "-") == 0 ? 1 : open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        fprintf(stderr, "sluice-loggen: %s: %s\n", out, strerror(errno));
        return 1;
    }
    struct sl_buf b = SL_BUF_INIT;
    int64_t written = 0, lines = 0;
    while ((max_bytes <= 0 || written < max_bytes) && (max_lines <= 0 || lines < max_lines)) {
        size_t before = b.len;
        gen_cri(g, g->seq++, &b);
        written += (int64_t)(b.len - before);
        lines++;
        if (b.len >= 1 << 20) {
            if (sl_write_all(fd, b.data, b.len) < 0)
                goto fail;
            sl_buf_clear(&b);
        }
    }
    if (sl_write_all(fd, b.data, b.len) < 0)
        goto fail;
    sl_buf_release(&b);
    if (fd != 1)
        close(fd);
    return 0;
fail:
    fprintf(stderr, "sluice-loggen: write %s: %s\n", out, strerror(errno));
    sl_buf_release(&b);
    if (fd != 1)
        close(fd);
    return 1;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int run_demo(struct gen *g, const char *dir, int pods, double rate)
{
    static const char *const ns[] = {"shop", "shop", "payments", "kube-system"};
    static const char *const app[] = {"frontend", "checkout", "ledger", "coredns"};
    int fds[64];
    if (pods > 64)
        pods = 64;
    for (int i = 0; i < pods; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s_%s-%d-7f9c_%08x-0000-4000-8000-%012x/%s", dir,
                 ns[i % 4], app[i % 4], i, (unsigned)mix((uint64_t)i) & 0xffffffffu, i, app[i % 4]);
        if (sl_mkdir_p(path) < 0) {
            fprintf(stderr, "sluice-loggen: mkdir %s: %s\n", path, strerror(errno));
            return 1;
        }
        strncat(path, "/0.log", sizeof(path) - strlen(path) - 1);
        fds[i] = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fds[i] < 0) {
            fprintf(stderr, "sluice-loggen: %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct sl_buf b = SL_BUF_INIT;
    int64_t interval = (int64_t)(1e9 / (rate > 0 ? rate : 1));
    while (!stop) {
        g->ts_ns = sl_now_ns();
        sl_buf_clear(&b);
        gen_cri(g, g->seq, &b);
        int i = (int)(mix(g->seq) % (uint64_t)pods);
        g->seq++;
        if (sl_write_all(fds[i], b.data, b.len) < 0) {
            fprintf(stderr, "sluice-loggen: write: %s\n", strerror(errno));
            break;
        }
        struct timespec ts = {interval / SL_NS_PER_SEC, interval % SL_NS_PER_SEC};
        nanosleep(&ts, NULL);
    }
    sl_buf_release(&b);
    for (int i = 0; i < pods; i++)
        close(fds[i]);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: sluice-loggen [options]\n"
          "  --out FILE         write CRI lines to FILE (appends; - for stdout)\n"
          "  --bytes SIZE       stop after SIZE bytes (e.g. 200MiB)\n"
          "  --lines N          stop after N lines\n"
          "  --seed N           content seed (default 1)\n"
          "  --start RFC3339    first timestamp (default: now)\n"
          "  --first-seq N      number of the first line (default 0)\n"
          "  --partial-every N  split every Nth line into CRI partial pieces (default 0)\n"
          "  --numbered         start each line's text with its sequence number\n"
          "  --pods-dir DIR     demo: kubelet tree under DIR, append until killed\n"
          "  --pods N           demo: number of pods (default 4, at most 64)\n"
          "  --rate N           demo: lines per second over all pods (default 20)\n",
          f);
}

int main(int argc, char **argv)
{
    struct gen g = {.seed = 1, .ts_ns = sl_now_ns()};
    const char *out = NULL, *pods_dir = NULL;
    int64_t max_bytes = 0, max_lines = 0;
    int pods = 4;
    double rate = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--numbered") == 0) {
            g.numbered = true;
            takes = false;
        } else if (!v) {
            fprintf(stderr, "sluice-loggen: %s needs a value\n", a);
            return 2;
        } else if (strcmp(a, "--out") == 0) {
            out = v;
        } else if (strcmp(a, "--bytes") == 0) {
            if (sl_size_parse(v, strlen(v), &max_bytes) < 0) {
                fprintf(stderr, "sluice-loggen: --bytes: invalid size %s\n", v);
                return 2;
            }
        } else if (strcmp(a, "--lines") == 0) {
            max_lines = strtoll(v, NULL, 10);
        } else if (strcmp(a, "--seed") == 0) {
            g.seed = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--first-seq") == 0) {
            g.seq = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--start") == 0) {
            if (sl_rfc3339_parse(v, strlen(v), &g.ts_ns) < 0) {
                fprintf(stderr, "sluice-loggen: --start: invalid RFC3339 time %s\n", v);
                return 2;
            }
        } else if (strcmp(a, "--partial-every") == 0) {
            g.partial_every = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--pods-dir") == 0) {
            pods_dir = v;
        } else if (strcmp(a, "--pods") == 0) {
            pods = atoi(v);
        } else if (strcmp(a, "--rate") == 0) {
            rate = atof(v);
        } else {
            fprintf(stderr, "sluice-loggen: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (takes)
            i++;
    }
    int rc;
    if (pods_dir)
        rc = run_demo(&g, pods_dir, pods < 1 ? 1 : pods, rate);
    else if (out)
        rc = run_file(&g, out, max_bytes, max_lines);
    else {
        usage(stderr);
        rc = 2;
    }
    sl_buf_release(&g.line);
    return rc;
}
