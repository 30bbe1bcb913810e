/* LogQL lexer, internal to aggregator/logql/. Turns the query text into an
 * array of tokens (allocated from the query arena), each with its 1-based
 * line and column for error messages. Strings are unescaped here: double
 * quotes with Go escapes, backticks raw. Comments (# to end of line) and
 * whitespace are skipped. */
#ifndef SL_LOGQL_LEX_H
#define SL_LOGQL_LEX_H

#include <stddef.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"

enum sl__logql_tok {
    SL__TOK_EOF,
    SL__TOK_IDENT,
    SL__TOK_STRING,
    SL__TOK_NUMBER, /* 12, 1.5, and number-led words such as 5m or 10KB */
    SL__TOK_LBRACE,
    SL__TOK_RBRACE,
    SL__TOK_LPAREN,
    SL__TOK_RPAREN,
    SL__TOK_LBRACKET,
    SL__TOK_RBRACKET,
    SL__TOK_COMMA,
    SL__TOK_DOT,
    SL__TOK_EQ,           /* =  */
    SL__TOK_NEQ,          /* != */
    SL__TOK_RE,           /* =~ */
    SL__TOK_NRE,          /* !~ */
    SL__TOK_PIPE_EXACT,   /* |= */
    SL__TOK_PIPE_MATCH,   /* |~ */
    SL__TOK_PIPE_PATTERN, /* |> */
    SL__TOK_NPA,          /* !> */
    SL__TOK_PIPE,         /* |  */
    SL__TOK_CMP_EQ,       /* == */
    SL__TOK_GT,
    SL__TOK_GTE,
    SL__TOK_LT,
    SL__TOK_LTE,
    SL__TOK_ADD,
    SL__TOK_SUB,
    SL__TOK_MUL,
    SL__TOK_DIV,
    SL__TOK_MOD,
    SL__TOK_POW,
};

struct sl__logql_token {
    enum sl__logql_tok kind;
    struct sl_bytes text; /* IDENT, NUMBER: as written; STRING: unescaped */
    int line, col;        /* 1-based */
};

/* Lexes s[0..n). On success returns 0 and *toks and *ntoks (the last token is
 * EOF). On a lexical error returns SL_EINVAL with a Loki-style message in
 * err. */
int sl__logql_lex(struct sl_arena *a, const char *s, size_t n, struct sl__logql_token **toks,
                  size_t *ntoks, struct sl_buf *err);

/* Name of a token kind for "unexpected X" messages. */
const char *sl__logql_tok_name(enum sl__logql_tok k);

#endif
