/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pcheck.c -- block data checked per page
 *
 * Each block slot has a row in the page check table (pmem, indexed by
 * slot): one CRC-32C per 4 KiB page of the extent it holds. The entry that
 * names the slot carries the CRC-32C of that row, covered by the entry's
 * own check value, so every link is verified: the entry by its check, the
 * row by the entry's crc, each page by its word of the row.
 *
 * A row is written by the spill that fills its slot, while the slot is
 * still free (no committed entry names it), and flushed before the fence
 * that precedes the entry's commit (extent.c); it does not change while an
 * entry names the slot, and a reader pins the slot, so a row read under a
 * pin is the row of the bytes being read.
 *
 * The point is the read of part of a spilled extent: it reads only the
 * pages it needs (io.c, aio.c), and a 4 KiB miss costs 4 KiB of block I/O
 * however large the extent.
 */

#include <errno.h>
#include <inttypes.h>

#include "vems_internal.h"

/* The CRC-32Cs of the extent's pages into row, and the row's own. */
static uint32_t
page_crcs(const struct vems_pool *p, const void *ext, uint32_t *row)
{
	const uint8_t *b = ext;
	for (uint32_t i = 0; i < p->ppe; i++)
		row[i] = vems__crc32c(b + (uint64_t)i * VEMS_PAGE_SIZE,
				      VEMS_PAGE_SIZE);
	return vems__crc32c(row, (size_t)p->ppe * sizeof(*row));
}

uint32_t
vems__pchecks_fill(struct vems_pool *p, uint32_t slot, const void *ext)
{
	return page_crcs(p, ext, vems__slot_pchecks(p, slot));
}

uint32_t
vems__pchecks_crc(const struct vems_pool *p, const void *ext)
{
	uint32_t row[VEMS_EXTENT_MAX / VEMS_PAGE_SIZE];
	return page_crcs(p, ext, row);
}

int
vems__pages_verify(struct vems_pool *p, const struct vems_objnode *n,
		   uint32_t ext, uint32_t slot, uint32_t crc, uint32_t pg,
		   uint32_t npg, const void *buf)
{
	const uint32_t *row = vems__slot_pchecks(p, slot);
	uint64_t off = (uint64_t)ext << p->extent_shift;
	uint32_t rc = vems__crc32c(row, (size_t)p->ppe * sizeof(*row));
	if (rc != crc) {
		VEMS_STAT_ADD(p, checksum_failures, 1);
		return vems__fail(
			-EIO,
			"object %" PRIu64 ":%" PRIu64 " offset %" PRIu64
			": the page checks of block slot %u are "
			"damaged (expected %08x, found %08x)",
			n->oid.partition, n->oid.id, off, slot, crc, rc);
	}
	const uint8_t *b = buf;
	for (uint32_t i = 0; i < npg; i++) {
		uint32_t got = vems__crc32c(b + (uint64_t)i * VEMS_PAGE_SIZE,
					    VEMS_PAGE_SIZE);
		if (got != row[pg + i])
			return vems__crc_fail(p, n, ext, slot, pg + i,
					      row[pg + i], got);
	}
	return 0;
}
