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
#include "extent.h"
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

/* Part of a read served by the block file: the pages holding it (each has
 * its check value), or the whole extent when it is to be promoted. Read
 * into the caller's buffer when that is exactly those pages and aligned,
 * else into a bounce buffer. */
struct miss {
	uint32_t ext, entry, slot, crc;
	uint32_t pg, npg; /* the pages read */
	uint8_t *dst;
	size_t in, chunk;
	uint8_t *buf;
	bool bounce, hot, promote;
	struct vems_bio bio;
};

static int
fetch_misses(struct vems_pool *p, const struct vems_objnode *n, struct miss *m,
	     size_t cnt)
{
	struct vems_bio *bios[MISS_BATCH];
	size_t lead[MISS_BATCH], nb = 0;
	uint64_t bytes = 0;
	for (size_t i = 0; i < cnt; i++) {
		m[i].bio = (struct vems_bio){
			.buf = m[i].buf,
			.off = vems__slot_off(p, m[i].slot) +
				(uint64_t)m[i].pg * VEMS_PAGE_SIZE,
			.len = m[i].npg * VEMS_PAGE_SIZE,
			.res = VEMS_BIO_PENDING};
		bytes += m[i].bio.len;
		/* one transfer for the next extent of consecutive slots */
		struct miss *l = nb ? &m[lead[nb - 1]] : NULL;
		if (l && !l->bounce && !l->promote && !m[i].bounce &&
		    !m[i].promote && vems__bio_joins(&l->bio, &m[i].bio)) {
			l->bio.len += m[i].bio.len;
		} else {
			lead[nb] = i;
			bios[nb++] = &m[i].bio;
		}
	}
	int ret = vems__bio_run(p, bios, nb, false);
	for (size_t b = 0, i = 0; b < nb; b++) /* followers share the result */
		for (size_t end = b + 1 < nb ? lead[b + 1] : cnt; i < end; i++)
			m[i].bio.res = bios[b]->res;
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
	VEMS_STAT_ADD(p, bytes_block_read, bytes);
	for (size_t i = 0; i < cnt && ret == 0; i++) {
		ret = vems__pages_verify(p, n, m[i].ext, m[i].slot, m[i].crc,
					 m[i].pg, m[i].npg, m[i].buf);
		if (ret)
			return ret;
		if (m[i].bounce)
			memcpy(m[i].dst,
			       m[i].buf + m[i].in -
				       (size_t)m[i].pg * VEMS_PAGE_SIZE,
			       m[i].chunk);
	}
	for (size_t i = 0; i < cnt && ret; i++)
		if (m[i].bio.res) {
			vems__errmsg_append(
				"reading object %" PRIu64 ":%" PRIu64
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
vems__bounce_alloc(const struct vems_pool *p, size_t len)
{
	void *b = NULL;
	size_t a = p->be->align > 64 ? p->be->align : 64;
	if (vems__fault_apply('m', 0, (uint32_t)len) < 0 ||
	    posix_memalign(&b, a, len) != 0)
		return NULL;
	return b;
}

bool vems__read_no_promote; /* tests: reads leave pmem as it is */

void
vems__miss_plan(struct vems_pool *p, const struct vems_objnode *n, uint32_t ext,
		uint64_t in, size_t chunk, size_t len, const uint8_t *dst,
		struct vems_plan *pl)
{
	bool whole = in == 0 && chunk == p->extent_size;
	bool scan = len >= VEMS_SCAN_EXTENTS * p->extent_size &&
		len >= VEMS_SCAN_BYTES;
	/*
	 * A read of a whole extent brings it back (S3-FIFO admission:
	 * probation, or the main queue if it was evicted lately), unless the
	 * call is a scan (VEMS_SCAN_EXTENTS extents and VEMS_SCAN_BYTES): a
	 * scan's extents come back only if missed lately too, so a one-pass
	 * scan costs no copy into pmem and leaves its contents alone. A read
	 * of part of an extent reads only its pages, unless the extent was
	 * missed lately too: then it is read whole and brought back, so a
	 * hot extent returns to pmem while a uniform spread of small misses
	 * costs no more block I/O than it asks for.
	 */
	pl->promote = !vems__read_no_promote &&
		((whole && !scan) || vems__seen_again(p, n->serial, ext));
	if (pl->promote) {
		pl->pg = 0;
		pl->npg = p->ppe;
		pl->hot = vems__ghost_take(p, n->serial, ext);
	} else {
		pl->pg = (uint32_t)(in / VEMS_PAGE_SIZE);
		pl->npg = (uint32_t)((in + chunk + VEMS_PAGE_SIZE - 1) /
				     VEMS_PAGE_SIZE) -
			pl->pg;
		pl->hot = false;
	}
	pl->bounce = !(in == (uint64_t)pl->pg * VEMS_PAGE_SIZE &&
		       chunk == (size_t)pl->npg * VEMS_PAGE_SIZE &&
		       (uintptr_t)dst % p->be->align == 0);
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
			x[i].buf = x[i].bounce
				? vems__bounce_alloc(
					  p, (size_t)x[i].npg * VEMS_PAGE_SIZE)
				: x[i].dst;
			if (x[i].buf == NULL)
				ret = vems__fail(-ENOMEM, "out of memory");
		}
		if (ret == 0)
			ret = fetch_misses(p, n, x, k);
		for (size_t i = 0; i < k; i++) {
			if (ret == 0 && *np < MISS_BATCH && x[i].promote) {
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

	vems__rw_rdlock(&n->lock);
	uint64_t size = vems__rec_size(n->rec);
	if (off >= size)
		len = 0;
	else if (len > size - off)
		len = (size_t)(size - off);
	uint64_t hits = 0, holes = 0;
	if (n->inl && len > 0) {
		/* a small object: one copy from its inline block */
		memcpy(out, n->inl->data + off, len);
		vems__inline_touch(n);
		done = len;
		hits++;
	}
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
			struct vems_plan pl;
			vems__miss_plan(p, n, ext, in, chunk, len, out + done,
					&pl);
			*x = (struct miss){.ext = ext,
					   .entry = ei,
					   .slot = e->slot,
					   .crc = e->crc,
					   .pg = pl.pg,
					   .npg = pl.npg,
					   .dst = out + done,
					   .in = (size_t)in,
					   .chunk = chunk,
					   .bounce = pl.bounce,
					   .hot = pl.hot,
					   .promote = pl.promote};
			/* the slot keeps these bytes until we are done */
			vems__slot_pin(p, x->slot);
		}
		done += chunk;
	}
	vems__rw_unlock(&n->lock);
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
	if (np > 0) {
		vems__promote(p, n, pr, np);
		vems__spill_kick(p); /* promotions took frames */
	}
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

/* Makes one mapped extent a PMEM extent (for zeroing its tail). */
static int
make_dirty(struct vems_pool *p, struct vems_objnode *n, uint32_t ext)
{
	uint32_t ei = vems__xidx_get(&n->idx, ext);
	if (ei == UINT32_MAX || p->entries[ei].state == VEMS_ES_PMEM)
		return 0;
	if (p->entries[ei].state == VEMS_ES_BOTH)
		return vems__ext_dirty(p, n, &ei, 1);
	uint32_t f;
	int ret = vems__frames_reserve(p, 1, &f, n, ext, ext);
	if (ret)
		return ret;
	bool used;
	if ((ret = vems__ext_fetch(p, n, ei, f, &used)) && !used)
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

/*
 * Extents past the end that a failed shrink or write undo could not free
 * must go before the object grows over them, or their old bytes would
 * reappear.
 */
static int
free_stale_tail(struct vems_pool *p, struct vems_objnode *n, uint64_t size)
{
	if (!n->stale_tail)
		return 0;
	int ret = vems__ext_free_from(p, n, ext_count(p, size));
	if (ret == 0)
		n->stale_tail = false;
	return ret;
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
	/* the size and its check value: one failure-atomic store */
	atomic_store_explicit((_Atomic uint64_t *)&r->sizew,
			      vems__sizew(size, n->serial),
			      memory_order_relaxed);
	int ret = vems__pmem_flush(
		p, &r->sizew,
		offsetof(struct vems_obj_rec, mtime_ns) + sizeof(r->mtime_ns) -
			offsetof(struct vems_obj_rec, sizew));
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

/* Gives back the frames and new entries of a piece that did not commit. */
static void
release_new(struct vems_pool *p, struct vems_objnode *n,
	    const struct vems_xw *w, size_t cnt)
{
	pthread_mutex_lock(&p->alloc_lock);
	for (size_t i = 0; i < cnt; i++) {
		vems__frame_back_locked(p, w[i].frame);
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
 *      clean ones are made dirty (extent.c: store, fence);
 *   1. data (and new entries' staged fields and zeros) copied and flushed;
 *   2. vems__ext_commit_write: fence, the entries' commit stores, fence.
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
	struct vems_xw w[PIECE_MAX];
	uint32_t clean[PIECE_MAX], nclean = 0;
	size_t nw = 0;
	struct vems_flushset dfs = {0}, mfs = {0}; /* data, entry fields */
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
			struct vems_xw x = {ext, 0, frames[k], 0, true};
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
			struct vems_xw x = {ext, ei, frames[k++], e->slot,
					    false};
			ret = vems__ext_stage_frame(p, e, x.frame);
			w[nw++] = x;
		} else if (e->state == VEMS_ES_BLOCK) {
			/* read-modify-write: fetched and committed first */
			bool used;
			ret = vems__ext_fetch(p, n, ei, frames[k], &used);
			if (used)
				k++;
		} else if (e->state == VEMS_ES_BOTH) {
			clean[nclean++] = ei;
		}
	}
	if (ret == 0 && nclean > 0)
		ret = vems__ext_dirty(p, n, clean, nclean);
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
		uint32_t fi;
		while (wi < nw && w[wi].ext < ext)
			wi++;
		if (wi < nw && w[wi].ext == ext && w[wi].is_new) {
			struct vems_xw *x = &w[wi];
			fi = x->frame;
			f = vems__frame_addr(p, fi);
			uint64_t xs = (uint64_t)ext << p->extent_shift;
			uint64_t live = new_size - xs < es ? new_size - xs : es;
			/* bytes of this extent below the end that the write
			 * does not cover must read as zeros */
			if (in > 0)
				ret = vems__pmem_zero_to(p, &dfs, f,
							 (size_t)in);
			if (ret == 0 && in + chunk < live)
				ret = vems__pmem_zero_to(
					p, &dfs, f + in + chunk,
					(size_t)(live - in - chunk));
			if (ret == 0)
				ret = vems__ext_stage_new(p, e, n->serial, ext,
							  fi, &mfs);
		} else {
			fi = e->frame;
			f = vems__frame_addr(p, fi);
			vems__pol_touch(p, fi);
		}
		atomic_fetch_add_explicit(&p->fr[fi].gen, 1,
					  memory_order_relaxed);
		if (ret == 0)
			ret = vems__pmem_copy_to(p, &dfs, f + in, src + done,
						 chunk);
		if (ret)
			goto fail;
		done += chunk;
	}
	/* on the msync path: one msync for the data, one for the fields */
	ret = vems__flush_done(p, &dfs);
	if (ret == 0)
		ret = vems__flush_done(p, &mfs);
	if (ret)
		goto fail;
	/* 2. commit (extent.c fences the data before the entries) */
	if (nw > 0)
		ret = vems__ext_commit_write(p, n, w, nw, size_follows);
	else if (drain)
		vems__pmem_drain(p);
	if (ret)
		goto fail;
	if (k < need)
		vems__frames_unreserve(p, frames + k, need - k);
	return 0;
fail:
	/*
	 * Nothing of w is committed (or extent.c undoes it): give it back.
	 * Bytes already copied into resident extents stay; the object's
	 * size is unchanged.
	 */
	vems__ext_abort_write(p, w, nw);
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
	if (pl - pf + 1 > PIECE_MAX || pl - pf + 1 > p->frames_present / 2)
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

/*
 * A write of a small object (new size at most p->inl_max): in place inside
 * its inline block (bytes, fence, size), or into a new, larger block
 * (inline.c: one transaction), then the size. VEMS__NOMETA: the heap had
 * no room, nothing changed.
 */
static int
write_inline(struct vems_pool *p, struct vems_objnode *n, const uint8_t *src,
	     size_t len, uint64_t off, uint64_t old, bool drain, bool nowait)
{
	struct vems_inline *in = n->inl;
	uint64_t end = off + len, live = end > old ? end : old;
	int ret = 0;
	vems__inline_touch(n);
	if (in && end <= in->cap) {
		atomic_fetch_add_explicit(&n->inl_gen, 1, memory_order_relaxed);
		/* growing: the garbage between the old end and off is 0 */
		if (off > old)
			ret = vems__pmem_zero(p, in->data + old,
					      (size_t)(off - old));
		if (ret == 0)
			ret = vems__pmem_copy(p, in->data + off, src, len);
	} else {
		/*
		 * A first block sized to the bytes that will be live (an
		 * object grown by truncate has a size and no block: the
		 * write may end below it). Growth doubles it, and quadruples
		 * it for a write past the end: a file written by appends
		 * (SQLite's journal: a header, then page records) is moved
		 * half as often.
		 */
		uint64_t cap = live;
		if (in) {
			cap = (end > old ? 4 : 2) * (uint64_t)in->cap;
			if (cap > p->inl_max)
				cap = p->inl_max;
			if (cap < live)
				cap = live;
		}
		uint64_t keep = in ? (old < in->cap ? old : in->cap) : 0;
		ret = vems__inline_replace(p, n, cap, keep, src, off, len,
					   live);
		if (ret == VEMS__NOMETA && nowait)
			return -EAGAIN;
	}
	atomic_store_explicit(&n->mtime_ns, vems__now_ns(),
			      memory_order_relaxed);
	if (ret)
		return ret;
	if (end > old) {
		vems__pmem_drain(p); /* the bytes before the size */
		return set_size(p, n, end);
	}
	if (drain)
		vems__pmem_drain(p);
	return 0;
}

static int write_piece(struct vems_pool *p, struct vems_objnode *n,
		       const uint8_t *src, size_t len, uint64_t off,
		       uint64_t new_size, bool drain, bool nowait,
		       bool size_follows);

/*
 * A small object leaving the inline form (it grows past p->inl_max): its
 * bytes written to extent 0 and committed like any write, then one
 * transaction drops the block. A crash in between leaves the object
 * inline and the extent a leftover (open frees it).
 */
static int
inline_to_extents(struct vems_pool *p, struct vems_objnode *n, bool nowait)
{
	uint64_t size = vems__rec_size(n->rec);
	int ret = 0;
	if (size > 0)
		ret = write_piece(p, n, n->inl->data, (size_t)size, 0, size,
				  true, nowait, false);
	if (ret == 0 && (ret = vems__inline_drop(p, n)) != 0 &&
	    vems__ext_free_from(p, n, 0) != 0)
		n->stale_tail = true;
	return ret;
}

/*
 * The hot path: a write inside one dirty resident extent that leaves no
 * gap, of an object that is not inline. An overwrite is one copy and one
 * fence; an append adds the size store and its fence. No entry or
 * allocation to touch. NOT_HOT: not such a write, nothing done. Object
 * held exclusively.
 */
#define NOT_HOT 1
static inline __attribute__((always_inline)) int
write_hot(struct vems_pool *p, struct vems_objnode *n, const uint8_t *src,
	  size_t len, uint64_t off, uint64_t old, bool drain)
{
	uint64_t end = off + len;
	if (off > old ||
	    (off >> p->extent_shift) != ((end - 1) >> p->extent_shift))
		return NOT_HOT;
	uint32_t ei =
		vems__xidx_get(&n->idx, (uint32_t)(off >> p->extent_shift));
	if (ei == UINT32_MAX || p->entries[ei].state != VEMS_ES_PMEM)
		return NOT_HOT;
	uint32_t f = p->entries[ei].frame;
	vems__pol_touch(p, f);
	atomic_fetch_add_explicit(&p->fr[f].gen, 1, memory_order_relaxed);
	int ret = vems__pmem_copy(
		p, vems__frame_addr(p, f) + (off & (p->extent_size - 1)), src,
		len);
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

static int
write_locked(struct vems_obj *obj, const uint8_t *src, size_t len, uint64_t off,
	     bool drain, bool nowait, bool no_inline, size_t *written)
{
	struct vems_pool *p = obj->pool;
	struct vems_objnode *n = obj->node;
	uint64_t old = vems__rec_size(n->rec), end = off + len;
	uint64_t new_size = end > old ? end : old;
	int ret;

	/* small objects: inline while they stay small (and the heap has
	 * room: else no_inline, and they move to extents) */
	if (n->inl || (n->idx.count == 0 && !n->stale_tail)) {
		if (new_size <= p->inl_max && !no_inline)
			return write_inline(p, n, src, len, off, old, drain,
					    nowait);
		if (n->inl && (ret = inline_to_extents(p, n, nowait)) != 0)
			return ret;
	}

	ret = write_hot(p, n, src, len, off, old, drain);
	if (ret != NOT_HOT)
		return ret;
	if (nowait && (n->stale_tail || !pmem_only(p, n, off, end, old)))
		return -EAGAIN;
	if (end > old && (ret = free_stale_tail(p, n, old)) != 0)
		return ret;
	/*
	 * Growing: old garbage past the end, before this write, becomes 0.
	 * Done first, so it only meets extents mapped before this call; if
	 * the write then fails, only bytes past the end changed.
	 */
	if (end > old && off > old && (ret = zero_mapped(p, n, old, off)) != 0)
		return ret;

	/* pieces of at most PIECE_MAX extents, and at most half of pmem */
	uint64_t piece_ext = p->frames_present / 2 ? p->frames_present / 2 : 1;
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
			/* the earlier pieces ran without their final fence:
			 * their bytes before the size that covers them */
			vems__pmem_drain(p);
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
			int r = vems__ext_free_from(p, n, ext_count(p, old));
			if (r) {
				n->stale_tail = true;
				vems__errmsg_append("while undoing a failed "
						    "write");
			}
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
	if (ret == 0 && len > 0)
		ret = vems__pool_writable(obj->pool);
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
	bool no_inline = false;
	int meta_tries = 0;
	for (;;) {
		size_t w = 0;
		vems__rw_wrlock(&n->lock);
		ret = write_locked(obj, src + done, len - done, off + done,
				   drain, nowait, no_inline, &w);
		if (ret == 0 && !drain)
			n->nodrain_pending = true;
		vems__rw_unlock(&n->lock);
		done += w;
		if (ret == VEMS__NOMETA) {
			/* the heap is full: room is made with no lock held
			 * (chunk.c), or the object goes to extents */
			if (++meta_tries > 2 ||
			    vems__meta_full(obj->pool, "a small object") != 0)
				no_inline = true;
			continue;
		}
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
					 obj->pool->frames_present);
			break;
		}
		if (w > 0)
			deadline = 0;
		vems__spill_wait(obj->pool, 1);
	}
	if (ret && done > 0)
		len = done; /* published in parts under pressure: short */
	else if (ret)
		return ret;
	struct vems_counters *c = VEMS_STATS(obj->pool);
	VEMS_STAT_ADD_TO(c, writes, 1);
	VEMS_STAT_ADD_TO(c, bytes_written, len);
	return (ssize_t)len;
}

/*
 * A durable write that write_hot() serves (an overwrite or an append
 * inside one resident extent, the common case) goes straight there: the
 * checks, the lock, the copy, the counters. Anything else, or anything
 * wrong with the arguments, takes pwrite_common(), which says what.
 */
ssize_t
vems_obj_pwrite(struct vems_obj *obj, const void *buf, size_t len, uint64_t off,
		unsigned flags)
{
	if (obj != NULL && buf != NULL && len > 0 && flags == 0 &&
	    !(obj->flags & (VEMS_O_RDONLY | VEMS_O_NODRAIN)) &&
	    off <= VEMS_OBJ_MAX_SIZE && len <= VEMS_OBJ_MAX_SIZE - off &&
	    !vems__pool_failed(obj->pool)) {
		struct vems_pool *p = obj->pool;
		struct vems_objnode *n = obj->node;
		int ret = NOT_HOT;
		vems__rw_wrlock(&n->lock);
		if (n->inl == NULL && n->idx.count > 0)
			ret = write_hot(p, n, buf, len, off,
					vems__rec_size(n->rec), true);
		vems__rw_unlock(&n->lock);
		if (ret == 0) {
			struct vems_counters *c = VEMS_STATS(p);
			VEMS_STAT_ADD_TO(c, writes, 1);
			VEMS_STAT_ADD_TO(c, bytes_written, len);
			return (ssize_t)len;
		}
		if (ret != NOT_HOT)
			return ret;
	}
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
	int ret = vems__pool_writable(p);
	if (ret)
		return ret;
retry:
	vems__rw_wrlock(&n->lock);
	uint64_t old = vems__rec_size(n->rec);
	if (size == old)
		goto out;
	atomic_store(&n->mtime_ns, vems__now_ns());
	if (n->inl && size < old) {
		ret = set_size(p, n, size); /* bytes past it are garbage */
		goto out;
	}
	if (n->inl && size <= n->inl->cap) {
		atomic_fetch_add_explicit(&n->inl_gen, 1, memory_order_relaxed);
		ret = vems__pmem_zero(p, n->inl->data + old,
				      (size_t)(size - old));
		if (ret == 0) {
			vems__pmem_drain(p); /* zeros before the size */
			ret = set_size(p, n, size);
		}
		goto out;
	}
	if (n->inl && size <= p->inl_max) {
		ret = vems__inline_replace(p, n, size, old, NULL, old, 0, size);
		if (ret == 0) {
			vems__pmem_drain(p);
			ret = set_size(p, n, size);
		}
		if (ret != VEMS__NOMETA)
			goto out;
	}
	if (n->inl) {
		/* past the limit (or no heap for a larger block) */
		ret = inline_to_extents(p, n, false);
		if (ret == VEMS__RETRY) {
			vems__rw_unlock(&n->lock);
			vems__spill_wait(p, 1);
			goto retry;
		}
		if (ret)
			goto out;
	}
	if (size < old) {
		/* size first: a crash after it leaves extents past the end,
		 * which open frees */
		if ((ret = set_size(p, n, size)) == 0) {
			ret = vems__ext_free_from(p, n, ext_count(p, size));
			if (ret)
				n->stale_tail = true; /* freed before growth */
		}
	} else {
		ret = free_stale_tail(p, n, old);
		if (ret == 0)
			ret = zero_mapped(p, n, old, size);
		if (ret == VEMS__RETRY) {
			/* the old end's extent must come back from the block
			 * file first: see pwrite_common */
			vems__rw_unlock(&n->lock);
			vems__spill_wait(p, 1);
			goto retry;
		}
		if (ret == 0) {
			vems__pmem_drain(p); /* zeros before the size */
			ret = set_size(p, n, size);
		}
	}
out:
	vems__rw_unlock(&n->lock);
	return ret;
}

int
vems_obj_persist(struct vems_obj *obj)
{
	if (obj == NULL)
		return vems__fail(-EINVAL, "vems_obj_persist: obj is NULL");
	struct vems_pool *p = obj->pool;
	struct vems_objnode *n = obj->node;
	vems__rw_wrlock(&n->lock);
	int ret = store_mtime(p, n);
	/* every write flushed its stores; the fence makes them durable */
	vems__pmem_drain(p);
	n->nodrain_pending = false;
	vems__rw_unlock(&n->lock);
	return ret;
}
