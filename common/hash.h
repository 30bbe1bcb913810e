/* Checksums and fingerprints. Pure functions, thread-safe. */
#ifndef SL_HASH_H
#define SL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli), as in the WAL records and chunk blocks. Uses the
 * SSE4.2 instruction when the CPU has it, a table otherwise; same result.
 * Pass crc = 0 to start; feed the previous result to continue. */
uint32_t sl_crc32c(uint32_t crc, const void *p, size_t n);

/* XXH3-64 with seed 0 (libxxhash). */
uint64_t sl_xxh3(const void *p, size_t n);

#endif
