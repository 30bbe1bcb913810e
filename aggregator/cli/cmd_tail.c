/* `sluice tail` (and `sluice query --tail`): a WebSocket client of
 * /loki/api/v1/tail on a blocking socket. Frames are built and parsed by
 * common/websocket.h (client side: our frames masked, the server's not).
 * Ctrl-C sends a close frame and exits 0. https:// addresses go through
 * OpenSSL with the system's CA certificates (SSL_CERT_FILE and SSL_CERT_DIR
 * are honoured) and the host name checked. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregator/cli/cli.h"
#include "common/jsonw.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/websocket.h"

#define MAX_RESPONSE_HEAD (64u * 1024)
/* The initial batch can be large: limit entries of up to 256 KiB. */
#define MAX_SERVER_MESSAGE (512u << 20)
#define CLOSE_WAIT_MS      1000

enum output { OUT_DEFAULT, OUT_RAW, OUT_JSONL };

struct topts {
    const char *limit, *since, *from, *delay_for, *output, *query;
};

struct conn {
    int fd;
    SSL_CTX *ctx; /* https only */
    SSL *ssl;
    struct sl_ws_parser p;
    enum output out;
    bool color;
    struct sl_buf line; /* output scratch */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char tail_help[] =
    "usage: sluice [--addr URL] [--org-id T] tail [options] '<logql>'\n"
    "       sluice query --tail [options] '<logql>'\n"
    "\n"
    "Follows a log query live over the aggregator's /loki/api/v1/tail: prints the\n"
    "newest --limit entries since --since, then every new entry as it arrives, until\n"
    "Ctrl-C.\n"
    "\n"
    "  --since D       start this long ago (default 1h)\n"
    "  --from T        start (RFC3339 or Unix seconds/nanoseconds); overrides --since\n"
    "  --limit N       entries of the initial batch (default 30)\n"
    "  --delay-for N   hold entries back N seconds (0-5) so late ones come in order\n"
    "  --output F      default: <time> {labels} <line>; raw: the line only;\n"
    "                  jsonl: one {\"timestamp\",\"labels\",\"line\"} object per entry\n"
    "  --color         colour the default output even when not on a terminal\n"
    "  --no-color      never colour (also: NO_COLOR=1 in the environment)\n"
    "\n"
    "--addr may be http:// or https:// (TLS; CA certificates from the system, or\n"
    "SSL_CERT_FILE / SSL_CERT_DIR).\n";

static int parse_args(struct sl_cli *cli, struct sl_cli_args *a, struct topts *o)
{
    while (a->i < a->argc) {
        const char *flag = NULL;
        int r;
        if (sl_cli_color_opt(cli, a))
            continue;
        if ((r = sl_cli_opt(a, "since", true, &o->since)) ||
            (r = sl_cli_opt(a, "from", true, &o->from)) ||
            (r = sl_cli_opt(a, "limit", true, &o->limit)) ||
            (r = sl_cli_opt(a, "delay-for", true, &o->delay_for)) ||
            (r = sl_cli_opt(a, "output", true, &o->output)) ||
            (r = sl_cli_opt(a, "tail", false, &flag))) {
            if (r < 0)
                return -1;
            continue;
        }
        const char *arg = a->argv[a->i++];
        if (strcmp(arg, "-t") == 0)
            continue;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(tail_help, stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) == 0 || o->query) {
            fprintf(stderr, "sluice: tail: unexpected argument %s (see sluice tail --help)\n", arg);
            return -1;
        }
        o->query = arg;
    }
    if (!o->query) {
        fprintf(stderr, "sluice: tail: missing the LogQL query (see sluice tail --help)\n");
        return -1;
    }
    return 0;
}

/* ---- connection ---- */

struct target {
    bool tls;
    char host[256], port[16];
    char prefix[512]; /* path before /loki/..., without a trailing '/' */
};

static int parse_addr(const char *addr, struct target *t)
{
    const char *p = addr;
    t->tls = false;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strncmp(p, "ws://", 5) == 0)
        p += 5;
    else if (strncmp(p, "https://", 8) == 0 || strncmp(p, "wss://", 6) == 0) {
        p += p[0] == 'h' ? 8 : 6;
        t->tls = true;
    } else if (strstr(p, "://")) {
        fprintf(stderr, "sluice: tail: the address must be http:// or https://, not %s\n", addr);
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    char hp[256];
    if (hl == 0 || hl >= sizeof hp) {
        fprintf(stderr, "sluice: tail: invalid address %s\n", addr);
        return -1;
    }
    memcpy(hp, p, hl);
    hp[hl] = 0;
    snprintf(t->prefix, sizeof t->prefix, "%s", slash ? slash : "");
    size_t pl = strlen(t->prefix);
    while (pl && t->prefix[pl - 1] == '/')
        t->prefix[--pl] = 0;
    char *colon = hp[0] == '[' ? strstr(hp, "]:") : strrchr(hp, ':');
    const char *host = hp;
    snprintf(t->port, sizeof t->port, "%s", t->tls ? "443" : "80");
    if (hp[0] == '[') {
        char *rb = strchr(hp, ']');
        if (!rb) {
            fprintf(stderr, "sluice: tail: invalid address %s\n", addr);
            return -1;
        }
        *rb = 0;
        host = hp + 1;
        if (colon)
            snprintf(t->port, sizeof t->port, "%s", colon + 2);
    } else if (colon) {
        *colon = 0;
        snprintf(t->port, sizeof t->port, "%s", colon + 1);
    }
    snprintf(t->host, sizeof t->host, "%s", host);
    return 0;
}

static int dial(const struct target *t)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc) {
        fprintf(stderr, "sluice: cannot resolve %s: %s\n", t->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "sluice: cannot reach %s:%s: %s\n", t->host, t->port, strerror(err));
    return fd;
}

/* ---- bytes over TCP or TLS ---- */

static void print_tls_error(const char *what, SSL *ssl)
{
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    fprintf(stderr, "sluice: tail: %s: %s%s%s\n", what,
            v != X509_V_OK ? X509_verify_cert_error_string(v) : "", v != X509_V_OK && e ? ": " : "",
            buf);
}

static int tls_start(struct conn *c, const struct target *t)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_verify_paths(c->ctx);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        goto fail;
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, t->host, ip) == 1 || inet_pton(AF_INET6, t->host, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, t->host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, t->host);
        SSL_set1_host(c->ssl, t->host);
    }
    if (SSL_connect(c->ssl) != 1)
        goto fail;
    return 0;
fail:
    print_tls_error("TLS handshake failed", c->ssl);
    return -1;
}

/* Returns the bytes read, 0 at the end of the stream, -1 on an error
 * (errno EINTR when a signal interrupted it). */
static ssize_t conn_recv(struct conn *c, void *p, size_t n)
{
    if (!c->ssl)
        return recv(c->fd, p, n, 0);
    int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_SYSCALL && errno == EINTR)
        return -1;
    errno = EIO;
    return -1;
}

static int send_all(struct conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_SYSCALL && errno == EINTR)
                continue;
            w = r;
        } else {
            w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends a masked frame (a client must mask). */
static int send_frame(struct conn *c, enum sl_ws_opcode op, const void *p, size_t n, int close_code)
{
    uint8_t mask[4];
    if (RAND_bytes(mask, sizeof mask) != 1)
        memset(mask, 0x5a, sizeof mask);
    struct sl_buf b = SL_BUF_INIT;
    if (op == SL_WS_CLOSE) {
        char pl[2] = {(char)(close_code >> 8), (char)close_code};
        sl_ws_frame_append(&b, op, true, pl, 2, mask);
    } else {
        sl_ws_frame_append(&b, op, true, p, n, mask);
    }
    int rc = send_all(c, b.data, b.len);
    sl_buf_release(&b);
    return rc;
}

/* Reads until the response head is complete; what follows it stays in in. */
static int read_head(struct conn *c, struct sl_buf *in, size_t *head_len)
{
    for (;;) {
        char *end = in->len ? memmem(in->data, in->len, "\r\n\r\n", 4) : NULL;
        if (end) {
            *head_len = (size_t)(end - in->data) + 4;
            return 0;
        }
        if (in->len > MAX_RESPONSE_HEAD)
            return -1;
        char *p = sl_buf_reserve(in, 4096);
        ssize_t r = conn_recv(c, p, 4096);
        if (r < 0 && errno == EINTR) {
            if (interrupted)
                return -1;
            continue;
        }
        if (r <= 0)
            return -1;
        sl_buf_commit(in, (size_t)r);
    }
}

/* Value of a header in a response head (case-insensitive name). */
static struct sl_bytes head_header(struct sl_bytes head, const char *name)
{
    size_t nl = strlen(name);
    const char *p = head.ptr, *end = head.ptr + head.len;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            return sl_bytes(v, (size_t)(ve - v));
        }
        p = eol + 2;
    }
    return sl_bytes(NULL, 0);
}

/* A refusal (400 and friends): print the server's reason. */
static void print_refusal(struct conn *c, int status, struct sl_buf *in, size_t head_len)
{
    struct sl_bytes cl = head_header(sl_bytes(in->data, head_len), "Content-Length");
    size_t want = cl.ptr ? (size_t)strtoull(cl.ptr, NULL, 10) : SIZE_MAX;
    while (in->len - head_len < want && in->len - head_len < (1u << 20)) {
        char *p = sl_buf_reserve(in, 4096);
        ssize_t r = conn_recv(c, p, 4096);
        if (r <= 0)
            break;
        sl_buf_commit(in, (size_t)r);
    }
    size_t n = in->len - head_len;
    if (n > want)
        n = want;
    const char *b = in->data + head_len;
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
        n--;
    fprintf(stderr, "sluice: server answered %d: %.*s\n", status, (int)n, b);
}

/* The opening handshake. Returns 0 with leftover bytes fed to the parser. */
static int handshake(struct conn *c, const struct sl_cli *cli, const struct target *t,
                     const struct sl_buf *q)
{
    uint8_t raw[16];
    char key[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        fprintf(stderr, "sluice: no randomness for the WebSocket key\n");
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    struct sl_buf req = SL_BUF_INIT, in = SL_BUF_INIT;
    sl_buf_appendf(&req,
                   "GET %s/loki/api/v1/tail?%s HTTP/1.1\r\nHost: %s:%s\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                   t->prefix, q->data, t->host, t->port, key);
    if (cli->org_id && *cli->org_id)
        sl_buf_appendf(&req, "X-Scope-OrgID: %s\r\n", cli->org_id);
    sl_buf_append_str(&req, "\r\n");
    int rc = -1;
    size_t head_len = 0;
    if (send_all(c, req.data, req.len) || read_head(c, &in, &head_len)) {
        if (!interrupted)
            fprintf(stderr, "sluice: tail: no answer from %s:%s\n", t->host, t->port);
        goto out;
    }
    int status = 0;
    if (sscanf(in.data, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "sluice: tail: not an HTTP answer\n");
        goto out;
    }
    if (status != 101) {
        print_refusal(c, status, &in, head_len);
        goto out;
    }
    char want[SL_WS_ACCEPT_LEN];
    sl_ws_accept_key(sl_bytes_str(key), want);
    struct sl_bytes acc = head_header(sl_bytes(in.data, head_len), "Sec-WebSocket-Accept");
    if (!sl_bytes_eq_str(acc, want)) {
        fprintf(stderr, "sluice: tail: the server did not accept the WebSocket handshake\n");
        goto out;
    }
    sl_ws_parser_feed(&c->p, in.data + head_len, in.len - head_len);
    rc = 0;
out:
    sl_buf_release(&req);
    sl_buf_release(&in);
    return rc;
}

/* ---- output ---- */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* labels as a JSON object, sorted by name, escaped as the server's JSON. */
static void labels_json_format(json_t *labels, struct sl_buf *out)
{
    const char *k;
    json_t *v;
    size_t n = json_object_size(labels), i = 0;
    const char **keys = sl_mallocarray(n ? n : 1, sizeof *keys);
    json_object_foreach(labels, k, v) keys[i++] = k;
    qsort(keys, n, sizeof *keys, str_cmp);
    sl_buf_append_char(out, '{');
    for (i = 0; i < n; i++) {
        json_t *val = json_object_get(labels, keys[i]);
        if (i)
            sl_buf_append_char(out, ',');
        sl_json_escape(out, sl_bytes_str(keys[i]));
        sl_buf_append_char(out, ':');
        sl_json_escape(out, sl_bytes(json_string_value(val) ? json_string_value(val) : "",
                                     json_string_length(val)));
    }
    sl_buf_append_char(out, '}');
    sl_free(keys);
}

static void print_values(struct conn *c, json_t *labels, json_t *values)
{
    struct sl_buf canon = SL_BUF_INIT, lj = SL_BUF_INIT;
    const struct sl_buf *labels_json = &lj;
    sl_cli_labels_format(labels, &canon);
    if (c->out == OUT_JSONL)
        labels_json_format(labels, &lj);
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v)
    {
        const char *tss = json_string_value(json_array_get(v, 0));
        json_t *lj = json_array_get(v, 1);
        int64_t ts = tss ? strtoll(tss, NULL, 10) : 0;
        struct sl_bytes line =
            sl_bytes(json_string_value(lj) ? json_string_value(lj) : "", json_string_length(lj));
        struct sl_buf *b = &c->line;
        sl_buf_clear(b);
        if (c->out == OUT_RAW) {
            sl_buf_append_bytes(b, line);
        } else if (c->out == OUT_DEFAULT) {
            sl_cli_format_entry(b, c->color, ts, sl_buf_bytes(&canon), line);
        } else {
            /* As `sluice query --output jsonl`: timestamp, labels, line. */
            struct sl_buf tsb = SL_BUF_INIT;
            sl_rfc3339_format(&tsb, ts);
            sl_buf_append_str(b, "{\"timestamp\":");
            sl_json_escape(b, sl_buf_bytes(&tsb));
            sl_buf_append_str(b, ",\"labels\":");
            sl_buf_append_bytes(b, sl_buf_bytes(labels_json));
            sl_buf_append_str(b, ",\"line\":");
            sl_json_escape(b, line);
            sl_buf_append_char(b, '}');
            sl_buf_release(&tsb);
        }
        sl_buf_append_char(b, '\n');
        fwrite(b->data, 1, b->len, stdout);
    }
    sl_buf_release(&canon);
    sl_buf_release(&lj);
}

static int on_message(struct conn *c, struct sl_bytes payload)
{
    json_error_t e;
    json_t *doc = json_loadb(payload.ptr, payload.len, JSON_ALLOW_NUL, &e);
    if (!doc) {
        fprintf(stderr, "sluice: tail: the server sent a message that is not JSON: %s\n", e.text);
        return -1;
    }
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "streams"), i, s)
        print_values(c, json_object_get(s, "stream"), json_object_get(s, "values"));
    size_t nd = json_array_size(json_object_get(doc, "dropped_entries"));
    fflush(stdout);
    if (nd)
        fprintf(stderr,
                "sluice: the server dropped %zu entries: this client did not read fast enough\n",
                nd);
    json_decref(doc);
    return 0;
}

/* ---- main loop ---- */

/* 0: go on; 1: the server closed normally; -1: failed. */
static int drain(struct conn *c)
{
    struct sl_ws_msg m;
    int r;
    while ((r = sl_ws_parser_next(&c->p, &m)) > 0) {
        if (m.op == SL_WS_TEXT || m.op == SL_WS_BINARY) {
            if (on_message(c, m.payload))
                return -1;
        } else if (m.op == SL_WS_PING) {
            send_frame(c, SL_WS_PONG, m.payload.ptr, m.payload.len, 0);
        } else if (m.op == SL_WS_CLOSE) {
            send_frame(c, SL_WS_CLOSE, NULL, 0, m.close_code == 1005 ? 1000 : m.close_code);
            if (m.close_code == SL_WS_CLOSE_NORMAL || m.close_code == 1005) {
                if (m.payload.len)
                    fprintf(stderr, "sluice: tail ended by the server: %.*s\n", (int)m.payload.len,
                            m.payload.ptr);
                return 1;
            }
            fprintf(stderr, "sluice: tail closed by the server (%d): %.*s\n", m.close_code,
                    (int)m.payload.len, m.payload.ptr);
            return -1;
        }
    }
    if (r < 0) {
        fprintf(stderr, "sluice: tail: bad frame from the server: %s\n", c->p.reason);
        send_frame(c, SL_WS_CLOSE, NULL, 0, c->p.err_code);
        return -1;
    }
    return 0;
}

/* Ctrl-C: say goodbye and wait briefly for the server's close. */
static void close_politely(struct conn *c)
{
    send_frame(c, SL_WS_CLOSE, NULL, 0, SL_WS_CLOSE_NORMAL);
    if (!c->ssl)
        shutdown(c->fd, SHUT_WR);
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int64_t deadline = sl_mono_ns() + (int64_t)CLOSE_WAIT_MS * 1000000;
    char buf[4096];
    while (sl_mono_ns() < deadline) {
        if (!(c->ssl && SSL_pending(c->ssl)) && poll(&pfd, 1, 100) <= 0)
            continue;
        if (conn_recv(c, buf, sizeof buf) <= 0)
            break;
    }
}

static int run(struct conn *c)
{
    int rc = drain(c);
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    while (rc == 0) {
        if (interrupted) {
            close_politely(c);
            return 0;
        }
        /* TLS may hold decrypted bytes the socket no longer shows. */
        int pr = c->ssl && SSL_pending(c->ssl) ? 1 : poll(&pfd, 1, 500);
        if (pr < 0 && errno != EINTR) {
            perror("sluice: poll");
            return 1;
        }
        if (pr <= 0)
            continue;
        static char p[65536];
        ssize_t r = conn_recv(c, p, sizeof p);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "sluice: tail: the server closed the connection\n");
            return 1;
        }
        sl_ws_parser_feed(&c->p, p, (size_t)r);
        rc = drain(c);
    }
    return rc > 0 ? 0 : 1;
}

static int build_query(const struct topts *o, struct sl_buf *q)
{
    sl_cli_param(q, "query", o->query);
    sl_cli_param(q, "limit", o->limit);
    if (o->delay_for)
        sl_cli_param(q, "delay_for", o->delay_for);
    if (o->from) {
        sl_cli_param(q, "start", o->from);
        return 0;
    }
    int64_t since;
    if (sl_duration_parse(o->since, strlen(o->since), &since) || since <= 0) {
        fprintf(stderr, "sluice: invalid --since %s: expected a duration such as 30m or 2h\n",
                o->since);
        return -1;
    }
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, sl_now_ns() - since);
    sl_cli_param(q, "start", num);
    return 0;
}

int sl_cli_cmd_tail(struct sl_cli *cli, struct sl_cli_args *a)
{
    struct topts o = {.limit = "30", .since = "1h", .output = "default"};
    int rc = parse_args(cli, a, &o);
    if (rc)
        return rc < 0 ? 1 : 0;
    struct conn c = {.fd = -1, .line = SL_BUF_INIT};
    if (strcmp(o.output, "default") == 0)
        c.out = OUT_DEFAULT;
    else if (strcmp(o.output, "raw") == 0)
        c.out = OUT_RAW;
    else if (strcmp(o.output, "jsonl") == 0)
        c.out = OUT_JSONL;
    else {
        fprintf(stderr, "sluice: --output must be default, raw or jsonl\n");
        return 1;
    }
    c.color = sl_cli_use_color(cli);
    struct target t;
    struct sl_buf q = SL_BUF_INIT;
    if (parse_addr(cli->addr, &t) || build_query(&o, &q)) {
        sl_buf_release(&q);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wake poll */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(2): a closed peer is EPIPE */
    sl_ws_parser_init(&c.p, MAX_SERVER_MESSAGE);
    c.p.require_mask = false; /* a server does not mask */
    rc = 1;
    c.fd = dial(&t);
    if (c.fd >= 0 && (!t.tls || tls_start(&c, &t) == 0) && handshake(&c, cli, &t, &q) == 0)
        rc = run(&c);
    else if (interrupted)
        rc = 0;
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    SSL_CTX_free(c.ctx);
    if (c.fd >= 0)
        close(c.fd);
    sl_ws_parser_release(&c.p);
    sl_buf_release(&c.line);
    sl_buf_release(&q);
    return rc;
}
