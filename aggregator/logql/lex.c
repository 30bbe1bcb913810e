/* LogQL lexer. Token rules follow Loki's lexer (text/scanner underneath):
 * Go string literals, `raw` strings, identifiers, numbers with unit suffixes
 * (durations, bytes) kept as one NUMBER token, and LogQL's two-character
 * operators. Columns count characters, not bytes, as text/scanner does. */
#include "aggregator/logql/lex.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/gostr.h"
#include "common/mem.h"

struct lexer {
    struct sl_arena *a;
    const char *s;
    size_t n, i;
    int line;
    size_t line_start; /* offset of the current line's first byte */
    struct sl_buf *err;
    struct sl_buf scratch; /* unescaped string being built */
};

const char *sl__logql_tok_name(enum sl__logql_tok k)
{
    static const char *const names[] = {
        [SL__TOK_EOF] = "$end",
        [SL__TOK_IDENT] = "IDENTIFIER",
        [SL__TOK_STRING] = "STRING",
        [SL__TOK_NUMBER] = "NUMBER",
        [SL__TOK_LBRACE] = "{",
        [SL__TOK_RBRACE] = "}",
        [SL__TOK_LPAREN] = "(",
        [SL__TOK_RPAREN] = ")",
        [SL__TOK_LBRACKET] = "[",
        [SL__TOK_RBRACKET] = "]",
        [SL__TOK_COMMA] = ",",
        [SL__TOK_DOT] = ".",
        [SL__TOK_EQ] = "=",
        [SL__TOK_NEQ] = "!=",
        [SL__TOK_RE] = "=~",
        [SL__TOK_NRE] = "!~",
        [SL__TOK_PIPE_EXACT] = "|=",
        [SL__TOK_PIPE_MATCH] = "|~",
        [SL__TOK_PIPE_PATTERN] = "|>",
        [SL__TOK_NPA] = "!>",
        [SL__TOK_PIPE] = "|",
        [SL__TOK_CMP_EQ] = "==",
        [SL__TOK_GT] = ">",
        [SL__TOK_GTE] = ">=",
        [SL__TOK_LT] = "<",
        [SL__TOK_LTE] = "<=",
        [SL__TOK_ADD] = "+",
        [SL__TOK_SUB] = "-",
        [SL__TOK_MUL] = "*",
        [SL__TOK_DIV] = "/",
        [SL__TOK_MOD] = "%",
        [SL__TOK_POW] = "^",
    };
    if ((size_t)k < SL_ARRAY_LEN(names) && names[k])
        return names[k];
    return "?";
}

/* 1-based column of byte offset off on the current line, in characters. */
static int column_at(const struct lexer *lx, size_t off)
{
    int col = 1;
    for (size_t j = lx->line_start; j < off && j < lx->n; j++)
        if (((unsigned char)lx->s[j] & 0xC0) != 0x80)
            col++;
    return col;
}

static int lex_error(struct lexer *lx, size_t off, const char *msg)
{
    if (lx->err)
        sl_buf_appendf(lx->err, "parse error at line %d, col %d: %s", lx->line, column_at(lx, off),
                       msg);
    return SL_EINVAL;
}

/* One escape sequence after a backslash (lx->i is past the backslash). Errors
 * point at the backslash and use text/scanner's wording, not the decoder's. */
static int lex_escape(struct lexer *lx, size_t esc_off)
{
    if (lx->i >= lx->n)
        return lex_error(lx, esc_off, "literal not terminated");
    char u[4];
    int len = sl_go_unescape(lx->s, lx->n, &lx->i, u, NULL);
    if (len < 0)
        return lex_error(lx, esc_off, "invalid char escape");
    sl_buf_append(&lx->scratch, u, (size_t)len);
    return 0;
}

static int lex_string(struct lexer *lx, struct sl__logql_token *t)
{
    size_t start = lx->i;
    char q = lx->s[lx->i++];
    sl_buf_clear(&lx->scratch);
    for (;;) {
        if (lx->i >= lx->n)
            return lex_error(lx, start, "literal not terminated");
        char c = lx->s[lx->i];
        if (c == q) {
            lx->i++;
            break;
        }
        if (q == '"' && c == '\n')
            return lex_error(lx, start, "literal not terminated");
        if (q == '"' && c == '\\') {
            size_t esc = lx->i++;
            int rc = lex_escape(lx, esc);
            if (rc)
                return rc;
            continue;
        }
        if (c == '\n') { /* raw strings may span lines */
            lx->line++;
            lx->line_start = lx->i + 1;
        }
        if (!(q == '`' && c == '\r')) /* Go drops \r from raw strings */
            sl_buf_append_char(&lx->scratch, c);
        lx->i++;
    }
    t->kind = SL__TOK_STRING;
    t->text = sl_arena_bytes(lx->a, sl_buf_bytes(&lx->scratch));
    return 0;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static bool decimal_mantissa(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return false;
    return n > 0;
}

/* Two-character operators first, then single characters. */
static bool lex_operator(struct lexer *lx, struct sl__logql_token *t)
{
    static const struct {
        const char *s;
        enum sl__logql_tok k;
    } ops[] = {
        {"=~", SL__TOK_RE},         {"==", SL__TOK_CMP_EQ},
        {"!=", SL__TOK_NEQ},        {"!~", SL__TOK_NRE},
        {"!>", SL__TOK_NPA},        {"|=", SL__TOK_PIPE_EXACT},
        {"|~", SL__TOK_PIPE_MATCH}, {"|>", SL__TOK_PIPE_PATTERN},
        {">=", SL__TOK_GTE},        {"<=", SL__TOK_LTE},
        {"=", SL__TOK_EQ},          {"|", SL__TOK_PIPE},
        {"{", SL__TOK_LBRACE},      {"}", SL__TOK_RBRACE},
        {"(", SL__TOK_LPAREN},      {")", SL__TOK_RPAREN},
        {"[", SL__TOK_LBRACKET},    {"]", SL__TOK_RBRACKET},
        {",", SL__TOK_COMMA},       {".", SL__TOK_DOT},
        {">", SL__TOK_GT},          {"<", SL__TOK_LT},
        {"+", SL__TOK_ADD},         {"-", SL__TOK_SUB},
        {"*", SL__TOK_MUL},         {"/", SL__TOK_DIV},
        {"%", SL__TOK_MOD},         {"^", SL__TOK_POW},
    };
    for (size_t k = 0; k < SL_ARRAY_LEN(ops); k++) {
        size_t len = strlen(ops[k].s);
        if (lx->n - lx->i >= len && memcmp(lx->s + lx->i, ops[k].s, len) == 0) {
            t->kind = ops[k].k;
            t->text = sl_bytes(lx->s + lx->i, len);
            lx->i += len;
            return true;
        }
    }
    return false;
}

/* Skips whitespace and comments. */
static void skip_space(struct lexer *lx)
{
    while (lx->i < lx->n) {
        char c = lx->s[lx->i];
        if (c == '\n') {
            lx->line++;
            lx->line_start = ++lx->i;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            lx->i++;
        } else if (c == '#') {
            while (lx->i < lx->n && lx->s[lx->i] != '\n')
                lx->i++;
        } else {
            break;
        }
    }
}

static int lex_one(struct lexer *lx, struct sl__logql_token *t)
{
    skip_space(lx);
    t->line = lx->line;
    t->col = column_at(lx, lx->i);
    if (lx->i >= lx->n) {
        t->kind = SL__TOK_EOF;
        t->text = sl_bytes(lx->s + lx->n, 0);
        return 0;
    }
    char c = lx->s[lx->i];
    size_t start = lx->i;
    if (c == '"' || c == '`')
        return lex_string(lx, t);
    if (is_ident_start(c)) {
        while (lx->i < lx->n && is_ident_char(lx->s[lx->i]))
            lx->i++;
        t->kind = SL__TOK_IDENT;
        t->text = sl_bytes(lx->s + start, lx->i - start);
        return 0;
    }
    /* a number, or (Go's text/scanner) a float with no integer part: .5 */
    if ((c >= '0' && c <= '9') ||
        (c == '.' && lx->i + 1 < lx->n && lx->s[lx->i + 1] >= '0' && lx->s[lx->i + 1] <= '9')) {
        while (lx->i < lx->n) {
            char d = lx->s[lx->i];
            /* 1e+21, 1.5E-3: a signed exponent after a decimal mantissa */
            if ((d == '+' || d == '-') && (lx->s[lx->i - 1] == 'e' || lx->s[lx->i - 1] == 'E') &&
                lx->i + 1 < lx->n && lx->s[lx->i + 1] >= '0' && lx->s[lx->i + 1] <= '9' &&
                decimal_mantissa(lx->s + start, lx->i - 1 - start)) {
                lx->i++;
                continue;
            }
            if (!is_ident_char(d) && d != '.')
                break;
            lx->i++;
        }
        t->kind = SL__TOK_NUMBER;
        t->text = sl_bytes(lx->s + start, lx->i - start);
        return 0;
    }
    if (lex_operator(lx, t))
        return 0;
    char msg[64];
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7F)
        snprintf(msg, sizeof msg, "syntax error: unexpected character '%c'", c);
    else
        snprintf(msg, sizeof msg, "syntax error: unexpected character 0x%02x", (unsigned char)c);
    return lex_error(lx, start, msg);
}

int sl__logql_lex(struct sl_arena *a, const char *s, size_t n, struct sl__logql_token **toks,
                  size_t *ntoks, struct sl_buf *err)
{
    struct lexer lx = {.a = a, .s = s, .n = n, .line = 1, .err = err};
    sl_buf_init(&lx.scratch);
    size_t cap = 16, len = 0;
    struct sl__logql_token *v = sl_arena_alloc(a, cap * sizeof *v);
    int rc = 0;
    for (;;) {
        if (len == cap) {
            struct sl__logql_token *nv = sl_arena_alloc(a, 2 * cap * sizeof *v);
            memcpy(nv, v, len * sizeof *v);
            v = nv;
            cap *= 2;
        }
        rc = lex_one(&lx, &v[len]);
        if (rc)
            break;
        if (v[len++].kind == SL__TOK_EOF)
            break;
    }
    sl_buf_release(&lx.scratch);
    if (rc)
        return rc;
    *toks = v;
    *ntoks = len;
    return 0;
}
