/*
 * CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected), as used by iSCSI,
 * ext4 and SCTP: the checksum of cattree's on-disk records. Uses the SSE4.2
 * crc32 instruction when the CPU has it (checked once at run time) and an
 * eight-table software version otherwise; both give the same value. Pure
 * functions: no state beyond the tables built on first use, never fails.
 */
#ifndef DEMI_LIBOS_CATTREE_CRC32C_H
#define DEMI_LIBOS_CATTREE_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Extends @crc (0 to start) over @len bytes at @p. crc32c(0, "123456789", 9)
 * is 0xE3069283. Chaining calls over consecutive pieces gives the CRC of the
 * concatenation. */
uint32_t crc32c(uint32_t crc, const void *p, size_t len);

/* The software version alone, for tests that compare the two. */
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t len);

/* True when crc32c() uses the SSE4.2 instruction. */
bool crc32c_hw(void);

#endif
