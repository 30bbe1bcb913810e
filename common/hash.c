/* CRC-32C and XXH3. The CRC uses the SSE4.2 crc32 instruction when the CPU
 * has it (checked once at run time) and a byte table otherwise. */
#include "common/hash.h"

#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[256];
static int crc_table_ready; /* 0 no, 1 yes; benign race: same contents */

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        crc_table[i] = c;
    }
    __atomic_store_n(&crc_table_ready, 1, __ATOMIC_RELEASE);
}

/* Works on the inverted register; callers invert in and out. */
static uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t n)
{
    if (!__atomic_load_n(&crc_table_ready, __ATOMIC_ACQUIRE))
        crc_table_init();
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p,
                                                               size_t n)
{
    uint64_t c = crc;
    while (n > 0 && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    while (n > 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    return (uint32_t)c;
}

static bool have_sse42(void)
{
    /* -1 unknown, 0 no, 1 yes. */
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}
#endif

uint32_t sl_crc32c(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    crc = ~crc;
#if defined(__x86_64__)
    if (have_sse42())
        return ~crc32c_sse42(crc, b, n);
#endif
    return ~crc32c_table(crc, b, n);
}

uint64_t sl_xxh3(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}
