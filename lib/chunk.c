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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
vems__chunk_frames_for(uint64_t nframes_max, uint64_t extent_size)
{
	/*
	 * About 4 MiB a chunk (at least 16 frames' worth), so that a pool
	 * has few allocations to walk at open and the alignment frame is a
	 * small share; and at least 8 chunks a pool, so that a chunk is a
	 * small share of it.
	 */
	uint64_t n = (UINT64_C(4) << 20) / extent_size;
	if (n < 16)
		n = 16;
	while (n > 2 && n * 8 > nframes_max)
		n /= 2;
	return (uint32_t)n - 1;
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
	p->parked_v = calloc(p->chunk_frames, sizeof(*p->parked_v));
	if (p->chunk_base == NULL || p->parked_v == NULL)
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
	free(p->parked_v);
	p->chunk_base = NULL;
	p->parked_v = NULL;
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

/* --- chunks for metadata, and back -------------------------------------- */

/* Frees chunk c (every frame parked) with its table slot. */
static int
tx_free_chunk(struct vems_pool *p, uint32_t c)
{
	struct vems_chunk *t = pmemobj_direct(p->sb->chunks);
	PMEMoid o = {pmemobj_oid(t).pool_uuid_lo, t[c].off};
	volatile int ret = 0;
	TX_BEGIN(p->pop)
	{
		pmemobj_tx_add_range_direct(&t[c], sizeof(t[c]));
		memset(&t[c], 0, sizeof(t[c]));
		pmemobj_tx_free(o);
	}
	TX_ONABORT
	{
		ret = vems__fail(-ENOSPC, "cannot free data chunk %u: %s", c,
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

/* Allocates a data chunk for empty table slot c; -ENOSPC: no room. */
static int
tx_new_chunk(struct vems_pool *p, uint32_t c)
{
	struct vems_chunk *t = pmemobj_direct(p->sb->chunks);
	uint64_t es = p->extent_size;
	uint32_t cf = p->chunk_frames;
	volatile int ret = 0;
	TX_BEGIN(p->pop)
	{
		PMEMoid o =
			pmemobj_tx_xalloc(vems__chunk_bytes(es, cf, false),
					  VEMS_TYPE_DATA, POBJ_XALLOC_NO_FLUSH);
		if (!chunk_fits(o, es, cf))
			pmemobj_tx_abort(ENOSPC);
		pmemobj_tx_add_range_direct(&t[c], sizeof(t[c]));
		t[c].off = o.off;
		t[c].pad = 0;
		t[c].check = chunk_check(c, o.off);
	}
	TX_ONABORT
	{
		ret = -ENOSPC;
	}
	TX_END
	return ret;
}

/* The chunk whose frames are cheapest to evict (most of them free), not
 * one with a frame a failed ring may still write; -1: none to give. */
static int64_t
pick_chunk(struct vems_pool *p, uint32_t *free_in_best)
{
	uint32_t cf = p->chunk_frames;
	uint32_t *nfree = calloc(p->nchunks, sizeof(*nfree));
	if (nfree == NULL)
		return -1;
	for (uint32_t i = 0; i < p->free_frames.n; i++)
		nfree[p->free_frames.v[i] / cf]++;
	int64_t best = -1;
	uint32_t present = 0;
	for (uint32_t c = 0; c < p->nchunks; c++) {
		if (p->chunk_base[c] == NULL)
			continue;
		present++;
		bool lost = false;
		for (uint32_t f = c * cf; f < (c + 1) * cf; f++)
			lost |= p->fr[f].lost;
		if (!lost && (best < 0 || nfree[c] > nfree[best]))
			best = c;
	}
	*free_in_best = best >= 0 ? nfree[best] : 0;
	free(nfree);
	return present > 1 ? best : -1; /* data keeps a chunk */
}

/* only_free: a chunk none of whose frames is in use, else -EAGAIN */
static int
reclaim_locked(struct vems_pool *p, bool only_free)
{
	uint32_t cf = p->chunk_frames;
	int ret = vems__pool_writable(p);
	if (ret)
		return ret;
	pthread_mutex_lock(&p->alloc_lock);
	uint32_t nfree = 0;
	int64_t c = pick_chunk(p, &nfree);
	if (only_free && (c < 0 || nfree < cf)) {
		pthread_mutex_unlock(&p->alloc_lock);
		return -EAGAIN;
	}
	if (c < 0) {
		pthread_mutex_unlock(&p->alloc_lock);
		return vems__fail(-ENOSPC,
				  "no data chunk to give: pmem holds %u "
				  "extent frames, the least data can keep",
				  (unsigned)p->frames_present);
	}
	/* park its free frames; the others follow as they are freed */
	atomic_store(&p->draining, c);
	uint32_t k = 0;
	for (uint32_t i = 0; i < p->free_frames.n; i++) {
		uint32_t f = p->free_frames.v[i];
		if (f / cf == (uint32_t)c)
			p->parked_v[p->parked++] = f;
		else
			p->free_frames.v[k++] = f;
	}
	p->free_frames.n = k;
	pthread_mutex_unlock(&p->alloc_lock);

	/* evict what is resident in it: spilled if dirty, dropped if clean */
	uint32_t f0 = (uint32_t)c * cf, f1 = f0 + cf;
	unsigned idle = 0;
	for (;;) {
		pthread_mutex_lock(&p->alloc_lock);
		bool done = p->parked == cf;
		pthread_mutex_unlock(&p->alloc_lock);
		if (done)
			break;
		int r = vems__spill_range(p, f0, f1);
		if (r < 0) {
			ret = r;
			break;
		}
		if (r > 0) {
			idle = 0;
			continue;
		}
		/* frames taken by writes or promotions in progress come back
		 * (parked) when those end; busy objects are tried again */
		if (++idle > 2000) {
			ret = vems__fail(-ENOSPC,
					 "data chunk %u could not be emptied: "
					 "its extents stay in use by writes in "
					 "progress",
					 (unsigned)c);
			break;
		}
		vems__spill_wait(p, 1);
	}
	/* every frame parked: nothing names them (each was freed only after
	 * the store that stopped naming it was durable) */
	if (ret == 0)
		ret = tx_free_chunk(p, (uint32_t)c);

	pthread_mutex_lock(&p->alloc_lock);
	if (ret == 0) {
		p->chunk_base[c] = NULL;
		for (uint32_t f = f0; f < f1; f++)
			p->fr[f].addr = NULL;
		p->frames_present -= cf;
	} else {
		for (uint32_t i = p->parked; i-- > 0;)
			vems__fl_push(&p->free_frames, p->parked_v[i]);
	}
	p->parked = 0;
	atomic_store(&p->draining, -1);
	pthread_mutex_unlock(&p->alloc_lock);
	if (ret == 0)
		vems__watermarks_set(p);
	return ret;
}

static int
reclaim(struct vems_pool *p, bool only_free)
{
	pthread_mutex_lock(&p->reclaim_lock);
	int ret = reclaim_locked(p, only_free);
	pthread_mutex_unlock(&p->reclaim_lock);
	return ret;
}

int
vems__chunk_reclaim(struct vems_pool *p)
{
	return reclaim(p, false);
}

/* heap asked of one round of eviction: a libpmemobj chunk */
#define EVICT_WANT (UINT64_C(256) << 10)
/* an allocation only a whole free chunk serves (a chunk less its header) */
#define CHUNK_PROBE ((size_t)(UINT64_C(256) << 10) - 17)

/* Whether the heap has a free chunk: what any new run, of any class,
 * needs. */
static bool
heap_has_chunk(struct vems_pool *p)
{
	PMEMoid o = OID_NULL;
	if (pmemobj_alloc(p->pop, &o, CHUNK_PROBE, 0, NULL, NULL) != 0)
		return false;
	pmemobj_free(&o);
	return true;
}

/*
 * 1: inline objects moved out until a chunk of the heap came free (or
 * none are left to move), 0: none could be, or -errno (not ENOSPC).
 * Evicting frees units in the inline classes' runs; a record or a name
 * of another class gains only when a whole run empties, so rounds go on
 * until one has.
 */
static int
evict_inline(struct vems_pool *p)
{
	bool moved = false;
	uint64_t rounds = atomic_load(&p->inl_count) + 1;
	while (rounds-- > 0 && atomic_load(&p->inl_count) > 0) {
		int64_t r = vems__inline_evict(p, EVICT_WANT, NULL);
		if (r <= 0) {
			if (moved || r == -ENOSPC || r == 0)
				break;
			return (int)r;
		}
		moved = true;
		if (heap_has_chunk(p))
			break;
	}
	return moved ? 1 : 0;
}

/*
 * The heap is full. What is cheapest goes first: a data chunk holding no
 * data (no I/O). Then, as pmem is shared between extents and inline
 * objects, the larger of the two gives way: inline objects move to the
 * block file, or a chunk is emptied by spilling its extents; if that one
 * cannot, the other is tried.
 */
int
vems__meta_full(struct vems_pool *p, const char *what)
{
	int ret = reclaim(p, true);
	if (ret != -EAGAIN)
		return ret;
	pthread_mutex_lock(&p->alloc_lock);
	uint64_t resident = (uint64_t)(p->frames_present - p->free_frames.n) *
		p->extent_size;
	pthread_mutex_unlock(&p->alloc_lock);
	bool inline_first = atomic_load(&p->inl_bytes) >= resident;
	if (inline_first && (ret = evict_inline(p)) != 0)
		return ret < 0 ? ret : 0;
	ret = vems__chunk_reclaim(p);
	if (ret == 0)
		return 0;
	if (ret != -ENOSPC)
		return ret;
	char why[512];
	snprintf(why, sizeof(why), "%s", vems_errormsg());
	if (!inline_first && (ret = evict_inline(p)) != 0)
		return ret < 0 ? ret : 0;
	return vems__fail(-ENOSPC,
			  "no metadata space for %s: pmem is full (%s)", what,
			  why);
}

int
vems__chunks_grow(struct vems_pool *p, uint64_t reserve)
{
	uint32_t cf = p->chunk_frames;
	for (uint32_t c = 0; c < p->nchunks; c++) {
		if (p->chunk_base[c] != NULL)
			continue;
		if (tx_new_chunk(p, c))
			break;
		/* room for metadata left? (else give it back) */
		PMEMoid big = OID_NULL;
		bool room = pmemobj_alloc(p->pop, &big, reserve, 0, NULL,
					  NULL) == 0;
		pmemobj_free(&big);
		if (!room) {
			int ret = tx_free_chunk(p, c);
			return ret;
		}
		const struct vems_chunk *t = pmemobj_direct(p->sb->chunks);
		PMEMoid o = {pmemobj_oid(t).pool_uuid_lo, t[c].off};
		pthread_mutex_lock(&p->alloc_lock);
		p->chunk_base[c] = frame0(pmemobj_direct(o));
		for (uint32_t f = c * cf; f < (c + 1) * cf; f++)
			p->fr[f].addr = vems__frame_addr_slow(p, f);
		for (uint32_t f = (c + 1) * cf; f-- > c * cf;)
			vems__fl_push(&p->free_frames, f);
		p->frames_present += cf;
		pthread_mutex_unlock(&p->alloc_lock);
		if (!p->is_pmem) /* as attach() does */
			(void)madvise(p->chunk_base[c],
				      (size_t)cf * p->extent_size, MADV_RANDOM);
	}
	return 0;
}
