/* ip("...") matchers: a single address, a CIDR (10.0.0.0/8, ::1/128) or a
 * range (192.168.0.1-192.168.0.20), IPv4 or IPv6, as Loki's ip() accepts.
 * As a line filter, any address-looking run of the line may match. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/internal.h"

/* Parses one address into 16 bytes (v4 mapped into the last 4). */
static bool parse_addr(const char *s, size_t n, uint8_t out[16], bool *v6)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    memset(out, 0, 16);
    if (inet_pton(AF_INET, tmp, out + 12) == 1) {
        *v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, tmp, out) == 1) {
        *v6 = true;
        return true;
    }
    return false;
}

bool sl__logql_ip_parse(struct sl_bytes s, struct sl_logql_ip *m)
{
    memset(m, 0, sizeof *m);
    m->text = s;
    const char *slash = memchr(s.ptr, '/', s.len);
    const char *dash = memchr(s.ptr, '-', s.len);
    if (slash) {
        size_t an = (size_t)(slash - s.ptr);
        if (!parse_addr(s.ptr, an, m->lo, &m->v6))
            return false;
        size_t pn = s.len - an - 1;
        if (pn == 0 || pn > 3)
            return false;
        int bits = 0;
        for (size_t i = 0; i < pn; i++) {
            if (!isdigit((unsigned char)slash[1 + i]))
                return false;
            bits = bits * 10 + (slash[1 + i] - '0');
        }
        int maxbits = m->v6 ? 128 : 32;
        if (bits > maxbits)
            return false;
        int start = m->v6 ? 0 : 96, total = start + bits;
        memcpy(m->hi, m->lo, 16);
        for (int b = total; b < 128; b++) {
            m->lo[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
            m->hi[b / 8] |= (uint8_t)(0x80 >> (b % 8));
        }
        return true;
    }
    if (dash) {
        bool v6b;
        size_t an = (size_t)(dash - s.ptr);
        if (!parse_addr(s.ptr, an, m->lo, &m->v6) ||
            !parse_addr(dash + 1, s.len - an - 1, m->hi, &v6b) || v6b != m->v6)
            return false;
        return memcmp(m->lo, m->hi, 16) <= 0;
    }
    if (!parse_addr(s.ptr, s.len, m->lo, &m->v6))
        return false;
    memcpy(m->hi, m->lo, 16);
    return true;
}

static bool in_range(const struct sl_logql_ip *m, const uint8_t a[16], bool v6)
{
    return v6 == m->v6 && memcmp(a, m->lo, 16) >= 0 && memcmp(a, m->hi, 16) <= 0;
}

bool sl__logql_ip_match(const struct sl_logql_ip *m, struct sl_bytes v)
{
    uint8_t a[16];
    bool v6;
    return parse_addr(v.ptr, v.len, a, &v6) && in_range(m, a, v6);
}

static bool hexd(char c)
{
    return isxdigit((unsigned char)c) != 0;
}

/* Loki's hints: where an IPv4 or IPv6 address may start. */
static bool v4_hint(const char *p)
{
    return isdigit((unsigned char)p[0]) && (p[1] == '.' || p[2] == '.' || p[3] == '.');
}

static bool v6_hint(const char *p)
{
    return (p[0] == ':' && p[1] == ':' && hexd(p[2])) || (hexd(p[0]) && p[1] == ':') ||
           (hexd(p[0]) && hexd(p[1]) && p[2] == ':') ||
           (hexd(p[0]) && hexd(p[1]) && hexd(p[2]) && p[3] == ':') ||
           (hexd(p[0]) && hexd(p[1]) && hexd(p[2]) && hexd(p[3]) && p[4] == ':');
}

static size_t span(const char *s, size_t n, bool v6)
{
    size_t i = 0;
    while (i < n &&
           (isdigit((unsigned char)s[i]) || s[i] == '.' || (v6 && (hexd(s[i]) || s[i] == ':'))))
        i++;
    return i;
}

/* As Loki's ipFilter.filter: scan for address-looking runs (IPv4 charset
 * after a v4 hint, IPv6 charset after a v6 hint), skipping each run that
 * does not match. */
bool sl__logql_ip_in_line(const struct sl_logql_ip *m, struct sl_bytes line)
{
    const char *s = line.ptr;
    size_t n = line.len;
    for (size_t i = 0; i < n; i++) {
        bool v4 = i + 3 < n && v4_hint(s + i);
        bool v6 = !v4 && i + 4 < n && v6_hint(s + i);
        if (!v4 && !v6)
            continue;
        size_t len = span(s + i, n - i, v6);
        if (sl__logql_ip_match(m, sl_bytes(s + i, len)))
            return true;
        i += len;
    }
    return false;
}
