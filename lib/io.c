/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * io.c -- the data path: pread, pwrite, truncate, persist barriers
 *
 * The VEMS rules: a read of pmem-resident data is one copy from the frame;
 * a write is one copy into the frame, flushed and fenced before the call
 * returns. Ordering of a write that needs new extents or a new size:
 *
 *   1. data (and the new entries' fields) copied and flushed,   fence
 *   2. each new entry's serial stored (its commit point),       fence
 *   3. the object's size stored (8-byte atomic),                fence
 *
 * so a crash never exposes an extent or a size whose bytes are not durable.
 * Invariant: bytes of a mapped extent past the object's size are garbage;
 * whatever grows the size zeroes them first (only the extent holding the
 * old end can have such bytes: extents wholly past the end are freed).
 */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "vems_internal.h"

static int
check_range(uint64_t off, size_t len)
{
	if (off > VEMS_OBJ_MAX_SIZE || len > VEMS_OBJ_MAX_SIZE - off)
		return vems__fail(-EINVAL,
				  "range %" PRIu64 "+%zu is past the maximum "
				  "object size %" PRIu64,
				  off, len, (uint64_t)VEMS_OBJ_MAX_SIZE);
	return 0;
}

static inline uint64_t
ext_count(const struct vems_pool *p, uint64_t size)
{
	return (size + p->extent_size - 1) >> p->extent_shift;
}

/* --- reads ------------------------------------------------------------ */

#define MISS_BATCH 32 /* block reads in flight per call */

/* Part of a read served by the block file: the whole extent is read (its
 * checksum covers all of it) into the caller's buffer when that is the
 * exact, aligned extent, else into a bounce buffer. */
struct miss {
	uint32_t ext, entry, slot, crc;
	uint8_t *dst;
	size_t in, chunk;
	uint8_t *buf;
	bool bounce, hot;
	struct vems_bio bio;
};

static int
fetch_misses(struct vems_pool *p, const struct vems_objnode *n, struct miss *m,
	     size_t cnt)
{
	struct vems_bio *bios[MISS_BATCH];
	for (size_t i = 0; i < cnt; i++) {
		m[i].bio =
			(struct vems_bio){.buf = m[i].buf,
					  .off = vems__slot_off(p, m[i].slot),
					  .len = (uint32_t)p->extent_size,
					  .res = VEMS_BIO_PENDING};
		bios[i] = &m[i].bio;
	}
	int ret = vems__bio_run(p, bios, cnt, false);
	for (size_t i = 0; i < cnt; i++) {
		if (m[i].bio.res == VEMS_BIO_PENDING && m[i].bounce) {
			/* may still be written by the kernel: never freed
			 * (the caller's own buffer cannot be kept from it:
			 * vems_obj_pread's contract after an error) */
			m[i].bounce = false;
			m[i].buf = NULL;
		}
		if (ret == 0 && m[i].bio.res != 0)
			ret = vems__fail(-EIO, "block read not done");
	}
	for (size_t i = 0; i < cnt && ret == 0; i++) {
		uint32_t got = vems__crc32c(m[i].buf, p->extent_size);
		if (got != m[i].crc)
			return vems__crc_fail(p, n, m[i].ext, m[i].slot,
					      m[i].crc, got);
		if (m[i].bounce)
			memcpy(m[i].dst, m[i].buf + m[i].in, m[i].chunk);
	}
	for (size_t i = 0; i < cnt && ret; i++)
		if (m[i].bio.res) {
			vems__errmsg_append(
				"reading object %" PRIu64 ".%" PRIu64
				" offset %" PRIu64 " (block slot %u)",
				n->oid.partition, n->oid.id,
				(uint64_t)m[i].ext << p->extent_shift,
				m[i].slot);
			break;
		}
	VEMS_STAT_ADD(p, block_hits, cnt);
	return ret;
}

void *
vems__bounce_alloc(const struct vems_pool *p)
{
	void *b = NULL;
	size_t a = p->be->align > 64 ? p->be->align : 64;
	if (vems__fault_apply('m', 0, (uint32_t)p->extent_size) < 0 ||
	    posix_memalign(&b, a, p->extent_size) != 0)
		return NULL;
	return b;
}

/*
 * Brings verified copies of BLOCK extents back into free frames as clean
 * (BOTH) extents. Best effort: without a free frame, or if the extent
 * changed since it was read, it stays where it is.
 */
void
vems__promote(struct vems_pool *p, struct vems_objnode *n, struct vems_promo *v,
	      size_t cnt)
{
	if (cnt > MISS_BATCH) {
		vems__promote(p, n, v, MISS_BATCH);
		vems__promote(p, n, v + MISS_BATCH, cnt - MISS_BATCH);
		return;
	}
	uint32_t frames[MISS_BATCH];
	size_t done[MISS_BATCH], nd = 0;
	pthread_rwlock_wrlock(&n->lock);
	for (size_t i = 0; i < cnt; i++) {
		struct vems_entry *e = &p->entries[v[i].entry];
		if (vems__entry_serial(e) != n->serial ||
		    e->ext_index != v[i].ext || e->state != VEMS_ES_BLOCK ||
		    e->slot != v[i].slot ||
		    vems__xidx_get(&n->idx, v[i].ext) != v[i].entry)
			continue;
		uint32_t f;
		pthread_mutex_lock(&p->alloc_lock);
		bool ok = vems__fl_pop(&p->free_frames, &f);
		pthread_mutex_unlock(&p->alloc_lock);
		if (!ok)
			break; /* the spiller will make room for next time */
		atomic_fetch_add_explicit(&p->fr[f].gen, 1,
					  memory_order_relaxed);
		/* the frame is unreferenced until the state store below */
		if (vems__pmem_copy(p, vems__frame_addr(p, f), v[i].src,
				    p->extent_size) != 0) {
			vems__frames_unreserve(p, &f, 1);
			continue;
		}
		e->frame = f;
		if (vems__pmem_flush(p, &e->frame, sizeof(e->frame)) != 0) {
			vems__frames_unreserve(p, &f, 1);
			continue;
		}
		frames[nd] = f;
		done[nd++] = i;
	}
	vems__pmem_drain(p); /* frame bytes and field before the state */
	for (size_t k = 0; k < nd; k++) {
		struct vems_entry *e = &p->entries[v[done[k]].entry];
		if (vems__pmem_store8(p, &e->state, VEMS_ES_BOTH) != 0) {
			/* msync failed: the store may or may not be durable;
			 * both readings are valid (the slot is kept) */
			e->state = VEMS_ES_BLOCK;
			vems__frames_unreserve(p, &frames[k], 1);
			frames[k] = VEMS_NO_FRAME;
		}
	}
	vems__pmem_drain(p); /* clean copy committed */
	for (size_t k = 0; k < nd; k++) {
		if (frames[k] == VEMS_NO_FRAME)
			continue;
		n->nstate[VEMS_ES_BLOCK]--;
		n->nstate[VEMS_ES_BOTH]++;
		atomic_fetch_sub(&p->nstate[VEMS_ES_BLOCK], 1);
		atomic_fetch_add(&p->nstate[VEMS_ES_BOTH], 1);
		vems__pol_insert(p, frames[k], v[done[k]].entry,
				 v[done[k]].hot);
		VEMS_STAT_ADD(p, promotions, 1);
		VEMS_STAT_ADD(p, bytes_promoted, p->extent_size);
	}
	pthread_rwlock_unlock(&n->lock);
	vems__spill_kick(p);
}

/* Reads misses [0, cnt) in batches; collects up to MISS_BATCH promotions
 * (their buffers and pins kept); unpins and frees everything else. */
static int
serve_misses(struct vems_pool *p, const struct vems_objnode *n, struct miss *m,
	     size_t cnt, struct vems_promo *pr, size_t *np)
{
	int ret = 0;
	for (size_t b = 0; b < cnt; b += MISS_BATCH) {
		size_t k = cnt - b < MISS_BATCH ? cnt - b : MISS_BATCH;
		struct miss *x = m + b;
		for (size_t i = 0; i < k && ret == 0; i++) {
			x[i].buf =
				x[i].bounce ? vems__bounce_alloc(p) : x[i].dst;
			if (x[i].buf == NULL)
				ret = vems__fail(-ENOMEM, "out of memory");
		}
		if (ret == 0)
			ret = fetch_misses(p, n, x, k);
		for (size_t i = 0; i < k; i++) {
			if (ret == 0 && *np < MISS_BATCH) {
				/* S3-FIFO admission: a miss comes back on
				 * probation (small queue), or to the main
				 * queue if it was evicted lately */
				pr[(*np)++] = (struct vems_promo){
					x[i].ext, x[i].entry,  x[i].slot,
					x[i].buf, x[i].bounce, x[i].hot};
				continue; /* stays pinned until promoted */
			}
			if (x[i].bounce)
				free(x[i].buf);
			vems__slot_unpin(p, x[i].slot);
		}
		if (ret) {
			for (size_t i = b + k; i < cnt; i++)
				vems__slot_unpin(p, m[i].slot);
			break;
		}
	}
	return ret;
}

/*
 * Resident extents and holes are copied under the object's shared lock;
 * the slots of spilled ones are pinned there and read after it is dropped,
 * so block I/O never holds an object lock and the result is the object as
 * of that instant. Misses are then promoted (vems__promote), pins held
 * until then so a slot cannot have been reused for other bytes.
 */
ssize_t
vems_obj_pread(struct vems_obj *obj, void *buf, size_t len, uint64_t off)
{
	if (obj == NULL || (buf == NULL && len > 0))
		return vems__fail(-EINVAL, "vems_obj_pread: obj or buf NULL");
	/* reading across the maximum is just reading past the end */
	int ret = check_range(off, 0);
	if (ret)
		return ret;
	struct vems_pool *p = obj->pool;
	struct vems_objnode *n = obj->node;
	uint64_t es = p->extent_size;
	uint8_t *out = buf;
	size_t done = 0;
	struct miss stackm[MISS_BATCH], *m = stackm;
	size_t nm = 0, capm = MISS_BATCH;
	struct vems_promo pr[MISS_BATCH];
	size_t np = 0;

	pthread_rwlock_rdlock(&n->lock);
	uint64_t size = n->rec->size;
	if (off >= size)
		len = 0;
	else if (len > size - off)
		len = (size_t)(size - off);
	uint64_t hits = 0, holes = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint32_t ext = (uint32_t)(pos >> p->extent_shift);
		uint64_t in = pos & (es - 1);
		size_t chunk = (size_t)(es - in);
		if (chunk > len - done)
			chunk = len - done;
		uint32_t ei;
		if (!vems__read_local(p, n, ext, in, out + done, chunk, &ei,
				      &hits, &holes)) {
			if (nm == capm) {
				size_t nc = 4 * capm;
				struct miss *v = malloc(nc * sizeof(*v));
				if (v == NULL) {
					ret = vems__fail(-ENOMEM,
							 "out of memory");
					break;
				}
				memcpy(v, m, nm * sizeof(*v));
				if (m != stackm)
					free(m);
				m = v;
				capm = nc;
			}
			const struct vems_entry *e = &p->entries[ei];
			struct miss *x = &m[nm++];
			*x = (struct miss){.ext = ext,
					   .entry = ei,
					   .slot = e->slot,
					   .crc = e->crc,
					   .dst = out + done,
					   .in = (size_t)in,
					   .chunk = chunk};
			x->bounce = !(chunk == es &&
				      ((uintptr_t)x->dst % p->be->align) == 0);
			x->hot = vems__ghost_take(p, n->serial, ext);
			/* the slot keeps these bytes until we are done */
			vems__slot_pin(p, x->slot);
		}
		done += chunk;
	}
	pthread_rwlock_unlock(&n->lock);
	struct vems_counters *c = VEMS_STATS(p);
	if (hits)
		VEMS_STAT_ADD_TO(c, pmem_hits, hits);
	if (holes)
		VEMS_STAT_ADD_TO(c, hole_reads, holes);

	if (ret)
		for (size_t i = 0; i < nm; i++)
			vems__slot_unpin(p, m[i].slot);
	else if (nm > 0)
		ret = serve_misses(p, n, m, nm, pr, &np);
	if (np > 0)
		vems__promote(p, n, pr, np);
	for (size_t i = 0; i < np; i++) {
		vems__slot_unpin(p, pr[i].slot);
		if (pr[i].own)
			free(pr[i].src);
	}
	if (m != stackm)
		free(m);
	if (ret)
		return ret;
	VEMS_STAT_ADD_TO(c, reads, 1);
	VEMS_STAT_ADD_TO(c, bytes_read, done);
	return (ssize_t)done;
}

/* --- bringing extents into pmem for a write ---------------------------- */

/*
 * Reads a BLOCK extent into frame f (reserved by the caller) and commits it
 * as a dirty PMEM extent: frame bytes and entry.frame durable, then the
 * state store. Object held exclusively. On failure f is still the caller's.
 */
static int
fetch_extent(struct vems_pool *p, struct vems_objnode *n, uint32_t ei,
	     uint32_t f)
{
	struct vems_entry *e = &p->entries[ei];
	uint8_t *fa = vems__frame_addr(p, f);
	atomic_fetch_add_explicit(&p->fr[f].gen, 1, memory_order_relaxed);
	/* straight into the pmem frame: it is page-aligned */
	int ret = vems__slot_read(p, n, e->ext_index, e->slot, e->crc, fa);
	if (ret == 0) /* the transfer wrote memory, not the CPU cache */
		ret = vems__pmem_flush(p, fa, p->extent_size);
	if (ret)
		return ret;
	e->frame = f;
	if ((ret = vems__pmem_flush(p, &e->frame, sizeof(e->frame))))
		return ret;
	vems__pmem_drain(p); /* bytes and frame before the state naming them */
	if ((ret = vems__pmem_store8(p, &e->state, VEMS_ES_PMEM))) {
		e->state = VEMS_ES_BLOCK;
		return ret;
	}
	vems__pmem_drain(p); /* committed before the slot is reused */
	vems__slot_free(p, e->slot);
	n->nstate[VEMS_ES_BLOCK]--;
	n->nstate[VEMS_ES_PMEM]++;
	atomic_fetch_sub(&p->nstate[VEMS_ES_BLOCK], 1);
	atomic_fetch_add(&p->nstate[VEMS_ES_PMEM], 1);
	/* admitted like any miss: main queue only if evicted lately */
	vems__pol_insert(p, f, ei,
			 vems__ghost_take(p, n->serial, e->ext_index));
	VEMS_STAT_ADD(p, block_fetches, 1);
	return 0;
}

/*
 * A clean extent is about to be written: it becomes dirty first, so that a
 * crash can never leave a BOTH extent whose frame differs from its slot.
 * The state store is flushed; the caller fences before writing the frame.
 */
static int
dirty_clean(struct vems_pool *p, struct vems_objnode *n, uint32_t ei)
{
	struct vems_entry *e = &p->entries[ei];
	int ret = vems__pmem_store8(p, &e->state, VEMS_ES_PMEM);
	if (ret)
		return ret;
	n->nstate[VEMS_ES_BOTH]--;
	n->nstate[VEMS_ES_PMEM]++;
	atomic_fetch_sub(&p->nstate[VEMS_ES_BOTH], 1);
	atomic_fetch_add(&p->nstate[VEMS_ES_PMEM], 1);
	return 0;
}

/* Makes one mapped extent a PMEM extent (for zeroing its tail). */
static int
make_dirty(struct vems_pool *p, struct vems_objnode *n, uint32_t ext)
{
	uint32_t ei = vems__xidx_get(&n->idx, ext);
	if (ei == UINT32_MAX || p->entries[ei].state == VEMS_ES_PMEM)
		return 0;
	struct vems_entry *e = &p->entries[ei];
	if (e->state == VEMS_ES_BOTH) {
		uint32_t slot = e->slot;
		int ret = dirty_clean(p, n, ei);
		vems__pmem_drain(p); /* dirty before the frame changes */
		if (ret == 0)
			vems__slot_free(p, slot);
		return ret;
	}
	uint32_t f;
	int ret = vems__frames_reserve(p, 1, &f, n, ext, ext);
	if (ret)
		return ret;
	if ((ret = fetch_extent(p, n, ei, f)))
		vems__frames_unreserve(p, &f, 1);
	return ret;
}

/* Zeroes [from, to) of the object if that range lies in a mapped extent. */
static int
zero_mapped(struct vems_pool *p, struct vems_objnode *n, uint64_t from,
	    uint64_t to)
{
	if (from >= to)
		return 0;
	uint32_t ext = (uint32_t)(from >> p->extent_shift);
	uint32_t ei = vems__xidx_get(&n->idx, ext);
	if (ei == UINT32_MAX)
		return 0;
	int ret = make_dirty(p, n, ext);
	if (ret)
		return ret;
	uint64_t ext_end = ((uint64_t)ext + 1) << p->extent_shift;
	if (to > ext_end)
		to = ext_end;
	const struct vems_entry *e = &p->entries[ei];
	atomic_fetch_add_explicit(&p->fr[e->frame].gen, 1,
				  memory_order_relaxed);
	return vems__pmem_zero(p,
			       vems__frame_addr(p, e->frame) +
				       (from & (p->extent_size - 1)),
			       (size_t)(to - from));
}

/* Persists the DRAM mtime if it moved; flushed, not fenced. */
static int
store_mtime(struct vems_pool *p, struct vems_objnode *n)
{
	int64_t m = atomic_load(&n->mtime_ns);
	if (n->rec->mtime_ns == m)
		return 0;
	return vems__pmem_store64(p, (uint64_t *)&n->rec->mtime_ns,
				  (uint64_t)m);
}

/* Publishes a new size: mtime and size stores, then a fence. */
static int
set_size(struct vems_pool *p, struct vems_objnode *n, uint64_t size)
{
	/*
	 * size and mtime share the record's cache line: two 8-byte atomic
	 * stores, one flush of the line (one msync on the msync path), one
	 * fence. Each store is failure-atomic on its own; mtime may lag.
	 */
	struct vems_obj_rec *r = n->rec;
	int64_t m = atomic_load(&n->mtime_ns);
	atomic_store_explicit((_Atomic int64_t *)&r->mtime_ns, m,
			      memory_order_relaxed);
	atomic_store_explicit((_Atomic uint64_t *)&r->size, size,
			      memory_order_relaxed);
	int ret = vems__pmem_flush(p, &r->size,
				   offsetof(struct vems_obj_rec, mtime_ns) +
					   sizeof(r->mtime_ns) -
					   offsetof(struct vems_obj_rec, size));
	vems__pmem_drain(p);
	return ret;
}

/* --- writes ------------------------------------------------------------ */

/*
 * The most extents one piece of a write brings into pmem at once: a write
 * larger than pmem is done in pieces, each with its own frames (and the
 * spills that free them), under the same object lock.
 */
#define PIECE_MAX 64u

/* An extent of a piece that gets a frame: a new one, or a BLOCK extent
 * wholly overwritten (nothing to read; its slot is freed at commit). */
struct wext {
	uint32_t ext, entry, frame, old_slot;
	bool is_new;
};

static void
release_new(struct vems_pool *p, struct vems_objnode *n, const struct wext *w,
	    size_t cnt)
{
	pthread_mutex_lock(&p->alloc_lock);
	for (size_t i = 0; i < cnt; i++) {
		vems__fl_push(&p->free_frames, w[i].frame);
		if (w[i].is_new)
			vems__fl_push(&p->free_entries, w[i].entry);
	}
	pthread_mutex_unlock(&p->alloc_lock);
	for (size_t i = 0; i < cnt; i++)
		if (w[i].is_new)
			vems__xidx_del(&n->idx, w[i].ext);
}

/*
 * Writes [off, off+len) (inside one piece) in the VEMS order:
 *   0. frames for new and BLOCK extents (spilling if pmem is full); BLOCK
 *      extents partly overwritten are fetched and committed dirty first;
 *      clean ones are made dirty (state store, fence);
 *   1. data (and new entries' fields and zeros) copied and flushed, fence;
 *   2. new entries' serials / overwritten BLOCK entries' states, fence.
 */
static int
write_piece(struct vems_pool *p, struct vems_objnode *n, const uint8_t *src,
	    size_t len, uint64_t off, uint64_t new_size, bool drain,
	    bool nowait, bool size_follows)
{
	uint64_t es = p->extent_size, end = off + len;
	uint32_t pf = (uint32_t)(off >> p->extent_shift);
	uint32_t pl = (uint32_t)((end - 1) >> p->extent_shift);
	uint32_t frames[PIECE_MAX], need = 0, k = 0;
	struct wext w[PIECE_MAX];
	uint32_t flips[PIECE_MAX], nflip = 0;
	size_t nw = 0;
	int ret;

	for (uint32_t ext = pf; ext <= pl; ext++) {
		uint32_t ei = vems__xidx_get(&n->idx, ext);
		if (ei == UINT32_MAX || p->entries[ei].state == VEMS_ES_BLOCK)
			need++;
	}
	if (nowait) {
		/* the async API's pmem-only attempt: no spill, no I/O */
		pthread_mutex_lock(&p->alloc_lock);
		bool ok = p->free_frames.n >= need;
		for (uint32_t i = 0; ok && i < need; i++)
			(void)vems__fl_pop(&p->free_frames, &frames[i]);
		pthread_mutex_unlock(&p->alloc_lock);
		if (!ok)
			return -EAGAIN;
	} else if ((ret = vems__frames_reserve(p, need, frames, n, pf, pl))) {
		return ret;
	}

	for (uint32_t ext = pf; ext <= pl && ret == 0; ext++) {
		uint32_t ei = vems__xidx_get(&n->idx, ext);
		uint64_t xs = (uint64_t)ext << p->extent_shift;
		if (ei == UINT32_MAX) {
			struct wext x = {ext, 0, frames[k], 0, true};
			pthread_mutex_lock(&p->alloc_lock);
			bool ok = vems__fl_pop(&p->free_entries, &x.entry);
			pthread_mutex_unlock(&p->alloc_lock);
			if (!ok) {
				ret = vems__fail(-ENOSPC,
						 "the extent table is full "
						 "(%u entries)",
						 p->nentries);
				break;
			}
			if (vems__xidx_put(&n->idx, ext, x.entry)) {
				pthread_mutex_lock(&p->alloc_lock);
				vems__fl_push(&p->free_entries, x.entry);
				pthread_mutex_unlock(&p->alloc_lock);
				ret = vems__fail(-ENOMEM, "out of memory");
				break;
			}
			k++;
			w[nw++] = x;
			continue;
		}
		struct vems_entry *e = &p->entries[ei];
		if (e->state == VEMS_ES_BLOCK && xs >= off && xs + es <= end) {
			/* wholly overwritten: nothing to read */
			struct wext x = {ext, ei, frames[k++], e->slot, false};
			e->frame = x.frame;
			ret = vems__pmem_flush(p, &e->frame, sizeof(e->frame));
			w[nw++] = x;
		} else if (e->state == VEMS_ES_BLOCK) {
			/* read-modify-write: fetched and committed first */
			if ((ret = fetch_extent(p, n, ei, frames[k])) == 0)
				k++;
		} else if (e->state == VEMS_ES_BOTH) {
			uint32_t slot = e->slot;
			if ((ret = dirty_clean(p, n, ei)) == 0)
				flips[nflip++] = slot;
		}
	}
	if (nflip > 0) {
		vems__pmem_drain(p); /* dirty before the frames change */
		for (uint32_t i = 0; i < nflip; i++)
			vems__slot_free(p, flips[i]);
	}
	if (ret)
		goto fail;

	/* 1. data; new extents also get their fields and their zeros */
	size_t wi = 0;
	for (size_t done = 0; done < len;) {
		uint64_t pos = off + done;
		uint32_t ext = (uint32_t)(pos >> p->extent_shift);
		uint64_t in = pos & (es - 1);
		size_t chunk = (size_t)(es - in);
		if (chunk > len - done)
			chunk = len - done;
		uint32_t ei = vems__xidx_get(&n->idx, ext);
		struct vems_entry *e = &p->entries[ei];
		uint8_t *f;
		while (wi < nw && w[wi].ext < ext)
			wi++;
		if (wi < nw && w[wi].ext == ext && w[wi].is_new) {
			struct wext *x = &w[wi];
			f = vems__frame_addr(p, x->frame);
			uint64_t xs = (uint64_t)ext << p->extent_shift;
			uint64_t live = new_size - xs < es ? new_size - xs : es;
			/* bytes of this extent below the end that the write
			 * does not cover must read as zeros */
			if (in > 0)
				ret = vems__pmem_zero(p, f, (size_t)in);
			if (ret == 0 && in + chunk < live)
				ret = vems__pmem_zero(
					p, f + in + chunk,
					(size_t)(live - in - chunk));
			e->ext_index = ext;
			e->frame = x->frame;
			e->slot = 0;
			e->crc = 0;
			e->state = VEMS_ES_PMEM;
			if (ret == 0)
				ret = vems__pmem_flush(
					p, &e->ext_index,
					sizeof(*e) - sizeof(e->serial));
		} else {
			f = vems__frame_addr(p, e->frame);
			vems__pol_touch(p, e->frame);
		}
		atomic_fetch_add_explicit(&p->fr[e->frame].gen, 1,
					  memory_order_relaxed);
		if (ret == 0)
			ret = vems__pmem_copy(p, f + in, src + done, chunk);
		if (ret)
			goto fail;
		done += chunk;
	}
	if (nw > 0 || drain)
		vems__pmem_drain(p); /* data before the entries naming it */

	/* 2. commit: new entries' serials, overwritten BLOCK extents' state */
	if (nw > 0) {
		for (size_t i = 0; i < nw && ret == 0; i++) {
			struct vems_entry *e = &p->entries[w[i].entry];
			ret = w[i].is_new
				? vems__pmem_store64(p, &e->serial, n->serial)
				: vems__pmem_store8(p, &e->state, VEMS_ES_PMEM);
		}
		if (ret)
			goto fail;
		/*
		 * Before a freed slot is reused, and before the size that
		 * covers them. The latter fence is the size's own when only
		 * new entries are committed and a size store follows: a
		 * crash may then make either durable first, and both orders
		 * are safe (a size over an unmapped extent reads zeros, as
		 * past the old end; an entry past the size is freed at
		 * open).
		 */
		bool late = false;
		for (size_t i = 0; i < nw; i++)
			late |= !w[i].is_new;
		if (late || !size_follows)
			vems__pmem_drain(p);
		uint32_t nnew = 0;
		for (size_t i = 0; i < nw; i++) {
			if (w[i].is_new) {
				nnew++;
				n->nstate[VEMS_ES_PMEM]++;
				atomic_fetch_add(&p->nstate[VEMS_ES_PMEM], 1);
			} else {
				n->nstate[VEMS_ES_BLOCK]--;
				n->nstate[VEMS_ES_PMEM]++;
				atomic_fetch_sub(&p->nstate[VEMS_ES_BLOCK], 1);
				atomic_fetch_add(&p->nstate[VEMS_ES_PMEM], 1);
				vems__slot_free(p, w[i].old_slot);
			}
			/* S3-FIFO: probation, or main if evicted lately */
			bool hot = vems__ghost_take(p, n->serial, w[i].ext);
			vems__pol_insert(p, w[i].frame, w[i].entry, hot);
		}
		VEMS_STAT_ADD(p, extents_allocated, nnew);
	}
	if (k < need)
		vems__frames_unreserve(p, frames + k, need - k);
	return 0;
fail:
	/*
	 * Nothing of w is committed (new serials still 0, BLOCK states
	 * untouched unless a store failed at its msync): give it back.
	 * Bytes already copied into resident extents stay; the object's
	 * size is unchanged.
	 */
	for (size_t i = 0; i < nw; i++) {
		struct vems_entry *e = &p->entries[w[i].entry];
		if (w[i].is_new && e->serial != 0)
			(void)vems__pmem_store64(p, &e->serial, 0);
		if (!w[i].is_new && e->state == VEMS_ES_PMEM)
			(void)vems__pmem_store8(p, &e->state, VEMS_ES_BLOCK);
	}
	vems__pmem_drain(p);
	release_new(p, n, w, nw);
	if (k < need)
		vems__frames_unreserve(p, frames + k, need - k);
	return ret;
}

/*
 * True if a write of [off, end) can be served by pmem alone: no extent in
 * it (or the one holding the old end, which gets zeroed) is only in the
 * block file, and it fits one piece. Object held exclusively.
 */
static bool
pmem_only(struct vems_pool *p, struct vems_objnode *n, uint64_t off,
	  uint64_t end, uint64_t old)
{
	uint32_t pf = (uint32_t)(off >> p->extent_shift);
	uint32_t pl = (uint32_t)((end - 1) >> p->extent_shift);
	if (pl - pf + 1 > PIECE_MAX || pl - pf + 1 > p->nframes / 2)
		return false;
	for (uint64_t ext = pf; ext <= pl; ext++) {
		uint32_t ei = vems__xidx_get(&n->idx, (uint32_t)ext);
		if (ei != UINT32_MAX && p->entries[ei].state == VEMS_ES_BLOCK)
			return false;
	}
	if (end > old && off > old) {
		uint32_t ei = vems__xidx_get(
			&n->idx, (uint32_t)(old >> p->extent_shift));
		if (ei != UINT32_MAX && p->entries[ei].state == VEMS_ES_BLOCK)
			return false;
	}
	return true;
}

static int
write_locked(struct vems_obj *obj, const uint8_t *src, size_t len, uint64_t off,
	     bool drain, bool nowait, size_t *written)
{
	struct vems_pool *p = obj->pool;
	struct vems_objnode *n = obj->node;
	uint64_t old = n->rec->size, end = off + len;
	uint64_t new_size = end > old ? end : old;
	int ret;

	/*
	 * The hot path: a write inside one dirty resident extent that leaves
	 * no gap. An overwrite is one copy and one fence; an append adds the
	 * size store and its fence. No entry or allocation to touch.
	 */
	if (off <= old &&
	    (off >> p->extent_shift) == ((end - 1) >> p->extent_shift)) {
		uint32_t ei = vems__xidx_get(
			&n->idx, (uint32_t)(off >> p->extent_shift));
		if (ei != UINT32_MAX && p->entries[ei].state == VEMS_ES_PMEM) {
			uint32_t f = p->entries[ei].frame;
			vems__pol_touch(p, f);
			atomic_fetch_add_explicit(&p->fr[f].gen, 1,
						  memory_order_relaxed);
			ret = vems__pmem_copy(
				p,
				vems__frame_addr(p, f) +
					(off & (p->extent_size - 1)),
				src, len);
			atomic_store_explicit(&n->mtime_ns, vems__now_ns(),
					      memory_order_relaxed);
			/* an append within the extent: data, then size */
			if (ret == 0 && end > old) {
				vems__pmem_drain(p);
				return set_size(p, n, end);
			}
			if (drain)
				vems__pmem_drain(p);
			return ret;
		}
	}
	if (nowait && !pmem_only(p, n, off, end, old))
		return -EAGAIN;
	/*
	 * Growing: old garbage past the end, before this write, becomes 0.
	 * Done first, so it only meets extents mapped before this call; if
	 * the write then fails, only bytes past the end changed.
	 */
	if (end > old && off > old && (ret = zero_mapped(p, n, old, off)) != 0)
		return ret;

	/* pieces of at most PIECE_MAX extents, and at most half of pmem */
	uint64_t piece_ext = p->nframes / 2 ? p->nframes / 2 : 1;
	if (piece_ext > PIECE_MAX)
		piece_ext = PIECE_MAX;
	for (uint64_t pos = off; pos < end;) {
		uint64_t stop = ((pos >> p->extent_shift) + piece_ext)
			<< p->extent_shift;
		if (stop > end)
			stop = end;
		ret = write_piece(p, n, src + (pos - off), (size_t)(stop - pos),
				  pos, new_size,
				  drain || (stop == end && new_size != old),
				  nowait, new_size != old);
		if (ret == VEMS__RETRY && pos > off) {
			/* the caller lets go of the object for a moment:
			 * publish the pieces written so far, as a shorter
			 * write would have */
			atomic_store(&n->mtime_ns, vems__now_ns());
			*written = (size_t)(pos - off);
			int r = pos > old ? set_size(p, n, pos) : 0;
			return r ? r : ret;
		}
		if (ret && pos > off && end > old) {
			/*
			 * A later piece failed: the size stays, so extents
			 * the earlier pieces mapped past the old end go, as
			 * a truncate would free them (their bytes must not
			 * reappear when the object grows later).
			 */
			int r = vems__obj_free_extents(p, n, ext_count(p, old));
			if (r)
				vems__errmsg_append("while undoing a failed "
						    "write");
		}
		if (ret)
			return ret;
		pos = stop;
	}
	atomic_store(&n->mtime_ns, vems__now_ns());
	/* 3. the size */
	if (new_size != old)
		ret = set_size(p, n, new_size);
	return ret;
}

static ssize_t
pwrite_common(struct vems_obj *obj, const void *buf, size_t len, uint64_t off,
	      unsigned flags, bool nowait)
{
	if (obj == NULL || (buf == NULL && len > 0))
		return vems__fail(-EINVAL, "vems_obj_pwrite: obj or buf NULL");
	if (flags & ~VEMS_W_NODRAIN)
		return vems__fail(-EINVAL, "vems_obj_pwrite: unknown flags %#x",
				  flags);
	if (obj->flags & VEMS_O_RDONLY)
		return vems__fail(-EBADF, "object handle is read-only");
	int ret = check_range(off, len);
	if (ret)
		return ret;
	if (len == 0)
		return 0;
	bool drain =
		!((flags & VEMS_W_NODRAIN) || (obj->flags & VEMS_O_NODRAIN));
	struct vems_objnode *n = obj->node;
	const uint8_t *src = buf;
	size_t done = 0;
	int64_t deadline = 0;
	for (;;) {
		size_t w = 0;
		pthread_rwlock_wrlock(&n->lock);
		ret = write_locked(obj, src + done, len - done, off + done,
				   drain, nowait, &w);
		if (ret == 0 && !drain)
			n->nodrain_pending = true;
		pthread_rwlock_unlock(&n->lock);
		done += w;
		if (ret != VEMS__RETRY)
			break;
		/*
		 * pmem is full of extents that other writers hold while they
		 * wait, like us, for room: with our object let go, they (or
		 * the spiller) get through. Bounded: a pool that stays stuck
		 * this long has a real shortage.
		 */
		int64_t now = vems__now_ns();
		if (deadline == 0)
			deadline = now + INT64_C(10000000000);
		if (w == 0 && now > deadline) {
			ret = vems__fail(-ENOSPC,
					 "pmem is full: no extent could be "
					 "evicted for 10 s (all %u frames in "
					 "use by writes in progress)",
					 obj->pool->nframes);
			break;
		}
		if (w > 0)
			deadline = 0;
		vems__spill_wait(obj->pool, 1);
	}
	if (ret)
		return ret;
	struct vems_counters *c = VEMS_STATS(obj->pool);
	VEMS_STAT_ADD_TO(c, writes, 1);
	VEMS_STAT_ADD_TO(c, bytes_written, len);
	return (ssize_t)len;
}

ssize_t
vems_obj_pwrite(struct vems_obj *obj, const void *buf, size_t len, uint64_t off,
		unsigned flags)
{
	return pwrite_common(obj, buf, len, off, flags, false);
}

ssize_t
vems__pwrite_nowait(struct vems_obj *obj, const void *buf, size_t len,
		    uint64_t off, unsigned flags)
{
	return pwrite_common(obj, buf, len, off, flags, true);
}

int
vems_obj_truncate(struct vems_obj *obj, uint64_t size)
{
	if (obj == NULL)
		return vems__fail(-EINVAL, "vems_obj_truncate: obj is NULL");
	if (obj->flags & VEMS_O_RDONLY)
		return vems__fail(-EBADF, "object handle is read-only");
	if (size > VEMS_OBJ_MAX_SIZE)
		return vems__fail(-EINVAL,
				  "size %" PRIu64 " is past the "
				  "maximum object size",
				  size);
	struct vems_pool *p = obj->pool;
	struct vems_objnode *n = obj->node;
	int ret = 0;
retry:
	pthread_rwlock_wrlock(&n->lock);
	uint64_t old = n->rec->size;
	if (size == old)
		goto out;
	atomic_store(&n->mtime_ns, vems__now_ns());
	if (size < old) {
		/* size first: a crash after it leaves extents past the end,
		 * which open frees */
		if ((ret = set_size(p, n, size)) == 0)
			ret = vems__obj_free_extents(p, n, ext_count(p, size));
	} else {
		ret = zero_mapped(p, n, old, size);
		if (ret == VEMS__RETRY) {
			/* the old end's extent must come back from the block
			 * file first: see pwrite_common */
			pthread_rwlock_unlock(&n->lock);
			vems__spill_wait(p, 1);
			goto retry;
		}
		if (ret == 0) {
			vems__pmem_drain(p); /* zeros before the size */
			ret = set_size(p, n, size);
		}
	}
out:
	pthread_rwlock_unlock(&n->lock);
	return ret;
}

int
vems_obj_persist(struct vems_obj *obj)
{
	if (obj == NULL)
		return vems__fail(-EINVAL, "vems_obj_persist: obj is NULL");
	struct vems_pool *p = obj->pool;
	struct vems_objnode *n = obj->node;
	pthread_rwlock_wrlock(&n->lock);
	int ret = store_mtime(p, n);
	/* every write flushed its stores; the fence makes them durable */
	vems__pmem_drain(p);
	n->nodrain_pending = false;
	pthread_rwlock_unlock(&n->lock);
	return ret;
}
