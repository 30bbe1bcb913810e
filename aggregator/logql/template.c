/* The Go text/template subset that line_format and label_format use:
 *
 *   text {{ pipeline }} text, {{- trims -}}, comment actions,
 *   {{ if pipeline }} ... {{ else if pipeline }} ... {{ else }} ... {{ end }}
 *   pipeline := command ('|' command)*   (the value flows in as the last argument)
 *   command  := .label | . | "string" | `raw` | number | true | false | (pipeline)
 *             | function arg*
 *
 * Labels are read as strings (missing ones are "", Loki's missingkey=zero);
 * __line__ and __timestamp__ are functions, as in Loki. The functions are
 * Loki's common ones (Go's strings.* names and the sprig ones); see
 * func_table. An unknown function is a parse error, as in Go; a wrong
 * argument at run time is an execution error (TemplateFormatErr). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/regex.h"
#include "common/err.h"
#include "common/gostr.h"
#include "common/mem.h"

enum vkind { V_STR, V_INT, V_FLOAT, V_BOOL, V_TIME };

struct val {
    enum vkind k;
    struct sl_bytes s;
    int64_t i; /* INT, TIME (ns) */
    double f;
    bool b;
};

enum akind { A_FIELD, A_DOT, A_STR, A_NUM, A_BOOL, A_PIPE, A_FUNC };

struct pipeline;

struct arg {
    enum akind k;
    struct sl_bytes s; /* FIELD name, STR, NUM text */
    double num;
    bool isint;
    bool b;
    struct pipeline *pipe; /* A_PIPE */
    int fn;                /* A_FUNC: index in func_table (called without arguments) */
};

struct command {
    int fn; /* -1: a single operand */
    struct arg *args;
    size_t nargs;
};

struct pipeline {
    struct command *cmds;
    size_t n;
};

enum nkind { N_TEXT, N_ACTION, N_IF };

struct node {
    enum nkind k;
    struct sl_bytes text;
    struct pipeline *pipe;
    struct node *then, *els; /* IF: lists */
    struct node *next;
};

struct sl_logql_template {
    struct node *root;
};

struct exec {
    const struct sl__logql_tmpl_ctx *c;
    struct sl_buf *err;
};

typedef int (*fn_t)(struct exec *x, struct val *a, size_t n, struct val *out);

struct fdef {
    const char *name;
    int min, max; /* argument counts; max -1: variadic */
    fn_t f;
};

/* ---- values ---- */

static struct val vstr(struct sl_bytes s)
{
    return (struct val){.k = V_STR, .s = s};
}

static void go_float(struct sl_buf *b, double v)
{
    if (isnan(v)) {
        sl_buf_append_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sl_buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    int exp = atoi(strchr(tmp, 'e') + 1);
    if (exp < -4 || exp >= (prec > 21 ? prec : 21)) {
        /* Go: mantissa digits, then e+XX with at least two exponent digits */
        char *e = strchr(tmp, 'e');
        sl_buf_append(b, tmp, (size_t)(e - tmp));
        sl_buf_appendf(b, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
        return;
    }
    int decimals = prec - 1 - exp;
    snprintf(tmp, sizeof tmp, "%.*f", decimals > 0 ? decimals : 0, v);
    sl_buf_append_str(b, tmp);
}

static void go_time(struct sl_buf *b, int64_t ns)
{
    time_t s = (time_t)(ns / 1000000000LL);
    long frac = (long)(ns % 1000000000LL);
    if (frac < 0) {
        frac += 1000000000L;
        s--;
    }
    struct tm tm;
    gmtime_r(&s, &tm);
    char tmp[64];
    strftime(tmp, sizeof tmp, "%Y-%m-%d %H:%M:%S", &tm);
    sl_buf_append_str(b, tmp);
    if (frac) {
        char f[16];
        snprintf(f, sizeof f, ".%09ld", frac);
        size_t n = strlen(f);
        while (f[n - 1] == '0')
            n--;
        sl_buf_append(b, f, n);
    }
    sl_buf_append_str(b, " +0000 UTC");
}

static void print_val(struct sl_buf *b, const struct val *v)
{
    switch (v->k) {
    case V_STR:
        sl_buf_append_bytes(b, v->s);
        break;
    case V_INT:
        sl_buf_append_i64(b, v->i);
        break;
    case V_FLOAT:
        go_float(b, v->f);
        break;
    case V_BOOL:
        sl_buf_append_str(b, v->b ? "true" : "false");
        break;
    case V_TIME:
        go_time(b, v->i);
        break;
    }
}

static struct sl_bytes arena_str(struct exec *x, struct sl_buf *tmp)
{
    struct sl_bytes r = sl_arena_bytes(x->c->scratch, sl_buf_bytes(tmp));
    sl_buf_release(tmp);
    return r;
}

/* Any value as a string (sprig's toString). */
static struct sl_bytes to_str(struct exec *x, const struct val *v)
{
    if (v->k == V_STR)
        return v->s;
    struct sl_buf b = SL_BUF_INIT;
    print_val(&b, v);
    return arena_str(x, &b);
}

static bool truth(const struct val *v)
{
    switch (v->k) {
    case V_STR:
        return v->s.len > 0;
    case V_INT:
        return v->i != 0;
    case V_FLOAT:
        return v->f != 0;
    case V_BOOL:
        return v->b;
    case V_TIME:
        return true;
    }
    return false;
}

static int exec_error(struct exec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int exec_error(struct exec *x, const char *fmt, ...)
{
    if (x->err && x->err->len == 0) {
        va_list ap;
        va_start(ap, fmt);
        sl_buf_append_str(x->err, "template: line:1: ");
        sl_buf_vappendf(x->err, fmt, ap);
        va_end(ap);
    }
    return SL_EINVAL;
}

/* Integer argument: an int, or a string/float that is one (sprig's toInt). */
static int64_t to_int(const struct val *v)
{
    switch (v->k) {
    case V_INT:
    case V_TIME:
        return v->i;
    case V_FLOAT:
        return (int64_t)v->f;
    case V_BOOL:
        return v->b;
    case V_STR: {
        double d;
        return sl__logql_parse_float(v->s, &d) ? (int64_t)d : 0;
    }
    }
    return 0;
}

static double to_float(const struct val *v)
{
    switch (v->k) {
    case V_INT:
    case V_TIME:
        return (double)v->i;
    case V_FLOAT:
        return v->f;
    case V_BOOL:
        return v->b;
    case V_STR: {
        double d;
        return sl__logql_parse_float(v->s, &d) ? d : 0;
    }
    }
    return 0;
}

#include "aggregator/logql/template_funcs.inc"

/* ---- parser ---- */

struct tparser {
    struct sl_logql_query *q;
    const char *s;
    size_t n, i;
    struct sl_buf *err;
};

static int perr(struct tparser *p, const char *msg, struct sl_bytes what)
{
    if (p->err && p->err->len == 0)
        sl_buf_appendf(p->err, "template: line:1: %s%s%.*s", msg, what.len ? " " : "",
                       (int)what.len, what.ptr);
    return SL_EINVAL;
}

static void skip_ws(struct tparser *p)
{
    while (p->i < p->n && isspace((unsigned char)p->s[p->i]))
        p->i++;
}

static bool at_close(struct tparser *p)
{
    size_t i = p->i;
    if (i + 2 < p->n && p->s[i] == '-' && p->s[i + 1] == '}' && p->s[i + 2] == '}')
        return true;
    return i + 1 < p->n && p->s[i] == '}' && p->s[i + 1] == '}';
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static int find_func(struct sl_bytes name)
{
    for (size_t i = 0; i < func_count; i++)
        if (sl_bytes_eq_str(name, func_table[i].name))
            return (int)i;
    return -1;
}

static int parse_pipeline(struct tparser *p, struct pipeline **out, bool paren);

static int parse_string(struct tparser *p, struct arg *a)
{
    char qc = p->s[p->i++];
    struct sl_buf b = SL_BUF_INIT;
    while (p->i < p->n && p->s[p->i] != qc) {
        char c = p->s[p->i++];
        if (qc == '"' && c == '\\' && p->i < p->n) {
            /* Go's escapes (strconv.Unquote): \x1b, \u00e9, \101, \t ... */
            char u[4];
            int len = sl_go_unescape(p->s, p->n, &p->i, u, NULL);
            if (len < 0) {
                sl_buf_release(&b);
                return perr(p, "invalid syntax", sl_bytes("", 0));
            }
            sl_buf_append(&b, u, (size_t)len);
            continue;
        }
        sl_buf_append_char(&b, c);
    }
    if (p->i >= p->n) {
        sl_buf_release(&b);
        return perr(p, "unterminated quoted string", sl_bytes("", 0));
    }
    p->i++;
    a->k = A_STR;
    a->s = sl_arena_bytes(&p->q->arena, sl_buf_bytes(&b));
    sl_buf_release(&b);
    return 0;
}

static int parse_operand(struct tparser *p, struct arg *a)
{
    char c = p->s[p->i];
    size_t st = p->i;
    if (c == '"' || c == '`')
        return parse_string(p, a);
    if (c == '(') {
        p->i++;
        a->k = A_PIPE;
        return parse_pipeline(p, &a->pipe, true);
    }
    if (c == '.') {
        p->i++;
        while (p->i < p->n && ident_char(p->s[p->i]))
            p->i++;
        a->k = p->i - st == 1 ? A_DOT : A_FIELD;
        a->s = sl_bytes(p->s + st + 1, p->i - st - 1);
        if (p->i < p->n && p->s[p->i] == '.')
            return perr(p, "nested fields are not supported:", sl_bytes(p->s + st, p->i - st));
        return 0;
    }
    if (isdigit((unsigned char)c) ||
        ((c == '-' || c == '+') && p->i + 1 < p->n && isdigit((unsigned char)p->s[p->i + 1]))) {
        p->i++;
        while (p->i < p->n && (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '.'))
            p->i++;
        a->k = A_NUM;
        a->s = sl_bytes(p->s + st, p->i - st);
        if (!sl__logql_parse_float(a->s, &a->num))
            return perr(p, "bad number syntax:", a->s);
        a->isint = !memchr(a->s.ptr, '.', a->s.len) && !memchr(a->s.ptr, 'e', a->s.len);
        return 0;
    }
    if (isalpha((unsigned char)c) || c == '_') {
        while (p->i < p->n && ident_char(p->s[p->i]))
            p->i++;
        struct sl_bytes name = sl_bytes(p->s + st, p->i - st);
        if (sl_bytes_eq_str(name, "true") || sl_bytes_eq_str(name, "false")) {
            a->k = A_BOOL;
            a->b = name.len == 4;
            return 0;
        }
        a->k = A_FUNC;
        a->s = name;
        a->fn = find_func(name);
        if (a->fn < 0) {
            if (p->err && p->err->len == 0)
                sl_buf_appendf(p->err, "template: line:1: function \"%.*s\" not defined",
                               (int)name.len, name.ptr);
            return SL_EINVAL;
        }
        return 0;
    }
    if (c == '$')
        return perr(p, "variables are not supported", sl_bytes("", 0));
    return perr(p, "unexpected", sl_bytes(p->s + st, 1));
}

static int parse_command(struct tparser *p, struct command *cmd, bool paren)
{
    cmd->fn = -1;
    for (;;) {
        skip_ws(p);
        if (p->i >= p->n)
            return perr(p, "unclosed action", sl_bytes("", 0));
        char c = p->s[p->i];
        if (at_close(p) || c == '|' || (paren && c == ')'))
            break;
        cmd->args = sl__logql_grow(&p->q->arena, cmd->args, cmd->nargs, sizeof *cmd->args);
        int rc = parse_operand(p, &cmd->args[cmd->nargs]);
        if (rc)
            return rc;
        cmd->nargs++;
    }
    if (cmd->nargs == 0)
        return perr(p, "missing value for command", sl_bytes("", 0));
    if (cmd->args[0].k == A_FUNC) {
        cmd->fn = cmd->args[0].fn;
        cmd->args++;
        cmd->nargs--;
    } else if (cmd->nargs > 1) {
        return perr(p, "can't give argument to non-function", cmd->args[0].s);
    }
    return 0;
}

static int parse_pipeline(struct tparser *p, struct pipeline **out, bool paren)
{
    struct pipeline *pl = sl_arena_calloc(&p->q->arena, sizeof *pl);
    for (;;) {
        pl->cmds = sl__logql_grow(&p->q->arena, pl->cmds, pl->n, sizeof *pl->cmds);
        int rc = parse_command(p, &pl->cmds[pl->n++], paren);
        if (rc)
            return rc;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == '|') {
            p->i++;
            continue;
        }
        if (paren) {
            if (p->i >= p->n || p->s[p->i] != ')')
                return perr(p, "unclosed left paren", sl_bytes("", 0));
            p->i++;
        }
        break;
    }
    *out = pl;
    return 0;
}

/* Reads `{{` [-] ... up to the keyword or pipeline; returns the kind of
 * action: 0 pipeline, 1 if, 2 else, 3 end, 4 else if, 5 comment. */
static int action_kind(struct tparser *p)
{
    skip_ws(p);
    static const char *const kw[] = {"if", "else", "end"};
    if (p->i + 1 < p->n && p->s[p->i] == '/' && p->s[p->i + 1] == '*')
        return 5;
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(kw[k]);
        if (p->n - p->i >= l && memcmp(p->s + p->i, kw[k], l) == 0 &&
            (p->i + l == p->n || !ident_char(p->s[p->i + l]))) {
            p->i += l;
            if (k == 1) {
                skip_ws(p);
                if (p->n - p->i >= 2 && memcmp(p->s + p->i, "if", 2) == 0 &&
                    (p->i + 2 == p->n || !ident_char(p->s[p->i + 2]))) {
                    p->i += 2;
                    return 4;
                }
            }
            return k + 1;
        }
    }
    for (const char *bad = "range"; bad; bad = NULL)
        if (p->n - p->i >= 5 && memcmp(p->s + p->i, bad, 5) == 0)
            return -1;
    if (p->n - p->i >= 4 && (memcmp(p->s + p->i, "with", 4) == 0 ||
                             memcmp(p->s + p->i, "define", 6 <= p->n - p->i ? 6 : 4) == 0))
        return -1;
    return 0;
}

/* Closes an action: optional '-' trim, then "}}". Sets *trim_next. */
static int close_action(struct tparser *p, bool *trim_next)
{
    skip_ws(p);
    *trim_next = false;
    if (p->i < p->n && p->s[p->i] == '-') {
        *trim_next = true;
        p->i++;
    }
    if (p->i + 1 >= p->n || p->s[p->i] != '}' || p->s[p->i + 1] != '}')
        return perr(p, "unclosed action", sl_bytes("", 0));
    p->i += 2;
    return 0;
}

static int parse_list(struct tparser *p, struct node **out, int *stop, bool *trim);

/* After {{if cond}}: the branches up to the matching {{end}}. */
static int parse_if_body(struct tparser *p, struct node *n, int *stop, bool *trim)
{
    int rc = parse_list(p, &n->then, stop, trim);
    if (rc)
        return rc;
    if (*stop == 2) {
        if ((rc = parse_list(p, &n->els, stop, trim)))
            return rc;
        if (*stop != 3)
            return perr(p, "expected end; found", sl_bytes("EOF", 3));
        return 0;
    }
    if (*stop == 4) {
        struct node *e = sl_arena_calloc(&p->q->arena, sizeof *e);
        e->k = N_IF;
        if ((rc = parse_pipeline(p, &e->pipe, false)) || (rc = close_action(p, trim)))
            return rc;
        n->els = e;
        return parse_if_body(p, e, stop, trim);
    }
    if (*stop != 3)
        return perr(p, "unexpected EOF", sl_bytes("", 0));
    return 0;
}

/* Parses a node list until {{else}}, {{end}} or the end. *stop gets 2
 * (else), 3 (end), 4 (else if) or 0 (end of text). */
static int parse_list(struct tparser *p, struct node **out, int *stop, bool *trim)
{
    struct node head = {0}, *tail = &head;
    *stop = 0;
    while (p->i < p->n) {
        const char *open = NULL;
        for (size_t j = p->i; j + 1 < p->n; j++)
            if (p->s[j] == '{' && p->s[j + 1] == '{') {
                open = p->s + j;
                break;
            }
        size_t tend = open ? (size_t)(open - p->s) : p->n;
        size_t tstart = p->i;
        if (*trim)
            while (tstart < tend && isspace((unsigned char)p->s[tstart]))
                tstart++;
        bool trim_prev = open && (size_t)(open - p->s) + 2 < p->n && open[2] == '-' &&
                         (size_t)(open - p->s) + 3 < p->n && isspace((unsigned char)open[3]);
        size_t te = tend;
        if (trim_prev)
            while (te > tstart && isspace((unsigned char)p->s[te - 1]))
                te--;
        if (te > tstart) {
            struct node *n = sl_arena_calloc(&p->q->arena, sizeof *n);
            n->k = N_TEXT;
            n->text = sl_bytes(p->s + tstart, te - tstart);
            tail = tail->next = n;
        }
        *trim = false;
        if (!open) {
            p->i = p->n;
            break;
        }
        p->i = tend + 2 + (trim_prev ? 1 : 0);
        int kind = action_kind(p);
        if (kind < 0)
            return perr(p, "unsupported action", sl_bytes("", 0));
        if (kind == 5) {
            const char *e = NULL;
            for (size_t j = p->i; j + 1 < p->n; j++)
                if (p->s[j] == '*' && p->s[j + 1] == '/') {
                    e = p->s + j;
                    break;
                }
            if (!e)
                return perr(p, "unclosed comment", sl_bytes("", 0));
            p->i = (size_t)(e - p->s) + 2;
            int rc = close_action(p, trim);
            if (rc)
                return rc;
            continue;
        }
        if (kind == 2 || kind == 3 || kind == 4) {
            *stop = kind;
            if (kind == 4)
                break; /* the condition follows */
            int rc = close_action(p, trim);
            if (rc)
                return rc;
            break;
        }
        struct node *n = sl_arena_calloc(&p->q->arena, sizeof *n);
        n->k = kind == 1 ? N_IF : N_ACTION;
        int rc = parse_pipeline(p, &n->pipe, false);
        if (rc == 0)
            rc = close_action(p, trim);
        if (rc)
            return rc;
        tail = tail->next = n;
        if (kind == 1) {
            int st;
            if ((rc = parse_if_body(p, n, &st, trim)))
                return rc;
        }
    }
    *out = head.next;
    return 0;
}

int sl__logql_template_parse(struct sl_logql_query *q, struct sl_bytes text,
                             struct sl_logql_template **out, struct sl_buf *err)
{
    struct tparser p = {.q = q, .s = text.ptr, .n = text.len, .err = err};
    struct sl_logql_template *t = sl_arena_calloc(&q->arena, sizeof *t);
    int stop;
    bool trim = false;
    int rc = parse_list(&p, &t->root, &stop, &trim);
    if (rc == 0 && stop != 0)
        rc =
            perr(&p, "unexpected", sl_bytes(stop == 3 ? "{{end}}" : "{{else}}", stop == 3 ? 7 : 8));
    if (rc)
        return rc;
    *out = t;
    return 0;
}

/* ---- execution ---- */

static int eval_pipeline(struct exec *x, const struct pipeline *pl, struct val *out);

static int eval_arg(struct exec *x, const struct arg *a, struct val *out)
{
    switch (a->k) {
    case A_DOT:
        *out = vstr(sl_bytes("map[]", 5));
        return 0;
    case A_FIELD: {
        struct sl_bytes v = {"", 0};
        x->c->get(x->c->ud, a->s, &v);
        *out = vstr(v);
        return 0;
    }
    case A_STR:
        *out = vstr(a->s);
        return 0;
    case A_NUM:
        if (a->isint)
            *out = (struct val){.k = V_INT, .i = (int64_t)a->num};
        else
            *out = (struct val){.k = V_FLOAT, .f = a->num};
        return 0;
    case A_BOOL:
        *out = (struct val){.k = V_BOOL, .b = a->b};
        return 0;
    case A_PIPE:
        return eval_pipeline(x, a->pipe, out);
    case A_FUNC: {
        const struct fdef *f = &func_table[a->fn];
        if (f->min > 0)
            return exec_error(x, "wrong number of args for %s: want %d got 0", f->name, f->min);
        return f->f(x, NULL, 0, out);
    }
    }
    return 0;
}

#define MAX_ARGS 16

static int eval_command(struct exec *x, const struct command *c, const struct val *piped,
                        struct val *out)
{
    if (c->fn < 0) {
        if (piped)
            return exec_error(x, "can't give argument to non-function");
        return eval_arg(x, &c->args[0], out);
    }
    struct val av[MAX_ARGS];
    size_t n = 0;
    for (size_t i = 0; i < c->nargs && n < MAX_ARGS; i++) {
        int rc = eval_arg(x, &c->args[i], &av[n++]);
        if (rc)
            return rc;
    }
    if (piped && n < MAX_ARGS)
        av[n++] = *piped;
    const struct fdef *f = &func_table[c->fn];
    if ((int)n < f->min || (f->max >= 0 && (int)n > f->max))
        return exec_error(x, "wrong number of args for %s: want %d got %zu", f->name, f->min, n);
    return f->f(x, av, n, out);
}

static int eval_pipeline(struct exec *x, const struct pipeline *pl, struct val *out)
{
    struct val cur;
    for (size_t i = 0; i < pl->n; i++) {
        int rc = eval_command(x, &pl->cmds[i], i ? &cur : NULL, &cur);
        if (rc)
            return rc;
    }
    *out = cur;
    return 0;
}

static int exec_list(struct exec *x, const struct node *n, struct sl_buf *out)
{
    for (; n; n = n->next) {
        struct val v;
        int rc;
        switch (n->k) {
        case N_TEXT:
            sl_buf_append_bytes(out, n->text);
            break;
        case N_ACTION:
            if ((rc = eval_pipeline(x, n->pipe, &v)))
                return rc;
            print_val(out, &v);
            break;
        case N_IF:
            if ((rc = eval_pipeline(x, n->pipe, &v)))
                return rc;
            if ((rc = exec_list(x, truth(&v) ? n->then : n->els, out)))
                return rc;
            break;
        }
    }
    return 0;
}

int sl__logql_template_exec(const struct sl_logql_template *t, const struct sl__logql_tmpl_ctx *c,
                            struct sl_buf *out, struct sl_buf *err)
{
    struct exec x = {.c = c, .err = err};
    return exec_list(&x, t->root, out);
}
