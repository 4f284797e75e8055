/* SPDX-License-Identifier: BSD-3-Clause */
/* crc.c -- CRC-32C, from ISA-L (hardware-accelerated where available) */

#include <isa-l/crc.h>

#include "vems_internal.h"

uint32_t
vems__crc32c(const void *buf, size_t len)
{
	return vems__crc32c_update(0, buf, len);
}

uint32_t
vems__crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *b = buf;
	/* crc32_iscsi takes an int length: feed large buffers in pieces */
	while (len > 0) {
		int n = len > (1u << 30) ? (1 << 30) : (int)len;
		crc = crc32_iscsi((unsigned char *)b, n, crc);
		b += n;
		len -= (size_t)n;
	}
	return crc;
}
