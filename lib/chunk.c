/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * chunk.c -- the data area as a table of chunks (format 4)
 *
 * Frames live in data chunks: libpmemobj allocations of chunk_frames
 * frames each, named by the chunk table (layout.h). Frame f is frame
 * f % chunk_frames of chunk f / chunk_frames; a chunk's frame 0 is the
 * first page boundary inside its allocation. Frames of an empty table slot
 * do not exist: they are never free, never mapped, and their heap space is
 * libpmemobj's to give to metadata.
 *
 * A chunk's allocation is (chunk_frames + 1) * extent_size - 16 bytes:
 * with libpmemobj's 16-byte header that is whole heap chunks (256 KiB)
 * when chunk_frames + 1 is a multiple of 256 KiB / extent_size, and the
 * extra frame's worth is the room to align frame 0 to a page. If the heap
 * hands out another alignment, a larger size is used (chunk_bytes).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vems_internal.h"

uint32_t vems__crc32c(const void *buf, size_t len);

/* Check value of table slot `i` naming offset `off`. */
static uint32_t
chunk_check(uint64_t i, uint64_t off)
{
	uint64_t v[2] = {i, off};
	return vems__crc32c(v, sizeof(v));
}

uint32_t
vems__chunk_frames_for(uint64_t nframes_max)
{
	/* at least 8 chunks a pool, so that a chunk is a small share of it;
	 * at most 63 frames (4 MiB of 64 KiB extents) */
	uint64_t cf = 64;
	while (cf > 2 && cf * 8 > nframes_max)
		cf /= 2;
	return (uint32_t)cf - 1;
}

uint64_t
vems__chunk_bytes(uint64_t extent_size, uint32_t cf, bool fallback)
{
	uint64_t b = ((uint64_t)cf + 1) * extent_size - 16;
	return fallback ? b + 16 + VEMS_PAGE_SIZE : b;
}

/* Frame 0 of the chunk allocated at `d` (page-aligned). */
static uint8_t *
frame0(void *d)
{
	uintptr_t a = (uintptr_t)d;
	return (uint8_t *)((a + VEMS_PAGE_SIZE - 1) &
			   ~(uintptr_t)(VEMS_PAGE_SIZE - 1));
}

/* Does the allocation `o` hold cf page-aligned frames? */
static bool
chunk_fits(PMEMoid o, uint64_t es, uint32_t cf)
{
	uint8_t *d = pmemobj_direct(o);
	uint64_t pad = (uint64_t)(frame0(d) - d);
	return pmemobj_alloc_usable_size(o) >= pad + (uint64_t)cf * es;
}

/*
 * One data chunk for table slot i of a pool being created (not yet a
 * pool anyone can open: plain atomic allocations). 0, or -ENOMEM when the
 * heap has no room for another.
 */
static int
create_one(PMEMobjpool *pop, struct vems_chunk *slot, uint64_t i, uint64_t es,
	   uint32_t cf)
{
	for (int fb = 0; fb < 2; fb++) {
		PMEMoid o;
		if (pmemobj_alloc(pop, &o, vems__chunk_bytes(es, cf, fb),
				  VEMS_TYPE_DATA, NULL, NULL))
			return -ENOMEM;
		if (chunk_fits(o, es, cf)) {
			slot->off = o.off;
			slot->pad = 0;
			slot->check = chunk_check(i, o.off);
			return 0;
		}
		pmemobj_free(&o);
	}
	return -ENOMEM;
}

static void
free_one(struct vems_chunk *slot)
{
	PMEMoid o = {pmemobj_oid(slot).pool_uuid_lo, slot->off};
	pmemobj_free(&o);
	memset(slot, 0, sizeof(*slot));
}

int
vems__chunks_create(PMEMobjpool *pop, struct vems_super *sb, uint64_t reserve)
{
	struct vems_chunk *t = pmemobj_direct(sb->chunks);
	uint64_t n = sb->nframes / sb->chunk_frames, have = 0;
	uint32_t cf = (uint32_t)sb->chunk_frames;
	while (have < n &&
	       create_one(pop, &t[have], have, sb->extent_size, cf) == 0)
		have++;
	/*
	 * Give back chunks until `reserve` contiguous bytes and a small
	 * record still fit next to them: libpmemobj's heap has overheads
	 * (runs per allocation class) no estimate sees.
	 */
	for (;;) {
		PMEMoid big = OID_NULL, small = OID_NULL;
		bool room =
			pmemobj_alloc(pop, &big, reserve, 0, NULL, NULL) == 0 &&
			pmemobj_alloc(pop, &small, sizeof(struct vems_obj_rec),
				      0, NULL, NULL) == 0;
		pmemobj_free(&big);
		pmemobj_free(&small);
		if (room)
			break;
		if (have <= 1)
			return -ENOSPC;
		free_one(&t[--have]);
	}
	pmemobj_persist(pop, t, n * sizeof(*t));
	return have > 0 ? 0 : -ENOSPC;
}

int
vems__chunks_validate(struct vems_pool *p, uint64_t psize)
{
	struct vems_super *sb = p->sb;
	const struct vems_chunk *t = pmemobj_direct(sb->chunks);
	uint64_t n = sb->nframes / sb->chunk_frames, es = sb->extent_size;
	uint32_t cf = (uint32_t)sb->chunk_frames;
	uint64_t present = 0;
	PMEMoid none = pmemobj_root(p->pop, 0);
	for (uint64_t i = 0; i < n; i++) {
		if (t[i].off == 0 && t[i].check == 0 && t[i].pad == 0)
			continue;
		PMEMoid o = {none.pool_uuid_lo, t[i].off};
		if (t[i].check != chunk_check(i, t[i].off) || t[i].pad ||
		    t[i].off < 8192 || (psize && t[i].off >= psize) ||
		    pmemobj_type_num(o) != VEMS_TYPE_DATA ||
		    !chunk_fits(o, es, cf) ||
		    (psize && pmemobj_alloc_usable_size(o) > psize - t[i].off))
			return vems__fail(VEMS_E_CORRUPT,
					  "%s: data chunk %" PRIu64
					  " of the chunk table is damaged "
					  "(offset %" PRIu64 ")",
					  p->pmem_path, i, t[i].off);
		present++;
	}
	if (present == 0)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: the chunk table names no data chunk",
				  p->pmem_path);
	return 0;
}

int
vems__chunks_attach(struct vems_pool *p)
{
	struct vems_super *sb = p->sb;
	const struct vems_chunk *t = pmemobj_direct(sb->chunks);
	p->chunk_frames = (uint32_t)sb->chunk_frames;
	p->nchunks = (uint32_t)(sb->nframes / sb->chunk_frames);
	p->chunk_base = calloc(p->nchunks, sizeof(*p->chunk_base));
	if (p->chunk_base == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	uint32_t present = 0;
	for (uint32_t i = 0; i < p->nchunks; i++) {
		if (t[i].off == 0)
			continue;
		PMEMoid o = {pmemobj_oid(t).pool_uuid_lo, t[i].off};
		p->chunk_base[i] = frame0(pmemobj_direct(o));
		present++;
	}
	p->frames_present = present * p->chunk_frames;
	return 0;
}

void
vems__chunks_detach(struct vems_pool *p)
{
	free(p->chunk_base);
	p->chunk_base = NULL;
}

bool
vems__chunk_slot_ok(const struct vems_pool *p, uint32_t i)
{
	const struct vems_chunk *t = pmemobj_direct(p->sb->chunks);
	if (t[i].off == 0 && t[i].check == 0 && t[i].pad == 0)
		return p->chunk_base[i] == NULL;
	if (t[i].check != chunk_check(i, t[i].off) || t[i].pad ||
	    p->chunk_base[i] == NULL)
		return false;
	PMEMoid o = {pmemobj_oid(t).pool_uuid_lo, t[i].off};
	return frame0(pmemobj_direct(o)) == p->chunk_base[i];
}

uint8_t *
vems__frame_addr_slow(const struct vems_pool *p, uint32_t frame)
{
	uint32_t c = frame / p->chunk_frames;
	if (c >= p->nchunks || p->chunk_base[c] == NULL)
		return NULL;
	return p->chunk_base[c] +
		((uint64_t)(frame % p->chunk_frames) << p->extent_shift);
}

bool
vems__frame_of(const struct vems_pool *p, const void *addr, uint32_t *frame)
{
	const uint8_t *a = addr;
	uint64_t span = (uint64_t)p->chunk_frames << p->extent_shift;
	for (uint32_t c = 0; c < p->nchunks; c++) {
		const uint8_t *b = p->chunk_base[c];
		if (b && a >= b && a < b + span) {
			*frame = c * p->chunk_frames +
				(uint32_t)((uint64_t)(a - b) >>
					   p->extent_shift);
			return true;
		}
	}
	return false;
}
