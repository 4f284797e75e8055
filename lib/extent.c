/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * extent.c -- the extent-entry state machine: every transition of a
 * persistent mapping entry, its fences, and its recovery at open
 *
 * An entry (layout.h) is free (state 0), PMEM (only in its frame), BOTH
 * (frame and slot hold the same bytes) or BLOCK (only in its slot). Its
 * commit word holds the state and a check value over the fields valid in
 * that state, and every transition is one failure-atomic 8-byte store of
 * that word, made after the fields it newly covers are durable:
 *
 *   free  -> PMEM   a write maps a new extent     fields, data | fence | word
 *   BLOCK -> PMEM   a whole overwrite / a fetch   frame, data  | fence | word
 *   BOTH  -> PMEM   a write dirties a clean one   word | fence | frame written
 *   PMEM  -> BLOCK  a spill                       slot, crc (slot durable)
 *                                                 | fence | word | fence |
 *                                                 frame reused
 *   BOTH  -> BLOCK  a clean drop                  word | fence | frame reused
 *   BLOCK -> BOTH   a promotion                   frame bytes, frame | fence |
 *                                                 word
 *   any   -> free   truncate, remove              word | fence | frame and
 *                                                 slot reused
 *
 * Fields not covered in the state an entry is in may change freely (a
 * PMEM entry's slot and crc, a BLOCK entry's frame), which is what lets a
 * transition prepare them before its single commit store. A crash at any
 * instant leaves each entry either before or after its store, and every
 * check value matches its entry's fields; so at open a mismatch can only
 * be damage, and is reported, never "repaired" by freeing (design rule 7).
 *
 * The resources an entry names are handed back only after the store that
 * releases them is fenced: a frame after the spill's state store, a slot
 * after the store that stops naming it. After a failed msync (the msync
 * path only) the store may or may not be durable: the pool refuses further
 * changes (vems__pool_fail) and the resources stay owned until reopen, so
 * that no frame or slot can ever end up named twice.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "extent.h"

#define ENTRY_MAGIC 0x56454d53u /* "VEMS": a zeroed entry never verifies */

uint32_t
vems__entry_check(const struct vems_entry *e, uint8_t state)
{
	struct {
		uint64_t serial;
		uint32_t ext, frame, slot, crc, state, magic;
	} b;
	memset(&b, 0, sizeof(b));
	b.serial = atomic_load_explicit((const _Atomic uint64_t *)&e->serial,
					memory_order_relaxed);
	b.ext = e->ext_index;
	b.state = state;
	b.magic = ENTRY_MAGIC;
	if (state == VEMS_ES_PMEM || state == VEMS_ES_BOTH)
		b.frame = e->frame;
	if (state == VEMS_ES_BOTH || state == VEMS_ES_BLOCK) {
		b.slot = e->slot;
		b.crc = e->crc;
	}
	return vems__crc32c(&b, sizeof(b));
}

bool
vems__entry_valid(const struct vems_entry *e)
{
	uint8_t s = e->state;
	if (s < VEMS_ES_PMEM || s > VEMS_ES_BLOCK || e->pad[0] || e->pad[1] ||
	    e->pad[2])
		return false;
	return e->check == vems__entry_check(e, s);
}

/* The commit store: state and check in one 8-byte word, flushed. */
static int
commit(struct vems_pool *p, struct vems_entry *e, uint8_t state)
{
	uint64_t w = 0;
	if (state)
		w = ((uint64_t)vems__entry_check(e, state) << 32) | state;
	if (VEMS_PLANTED(VEMS_PLANT_NO_FLUSH)) {
		atomic_store_explicit((_Atomic uint64_t *)&e->word, w,
				      memory_order_relaxed);
		return 0;
	}
	return vems__pmem_store64(p, &e->word, w);
}

/* A commit store made durable with the rest of set fs. */
static void
commit_add(struct vems_pool *p, struct vems_flushset *fs, struct vems_entry *e,
	   uint8_t state)
{
	uint64_t w = 0;
	if (state)
		w = ((uint64_t)vems__entry_check(e, state) << 32) | state;
	atomic_store_explicit((_Atomic uint64_t *)&e->word, w,
			      memory_order_relaxed);
	if (!VEMS_PLANTED(VEMS_PLANT_NO_FLUSH))
		(void)vems__flush_add(p, fs, &e->word, sizeof(e->word));
}

/* DRAM counts of a transition (0: no state). Object held exclusively. */
static void
account(struct vems_pool *p, struct vems_objnode *n, int from, int to)
{
	if (from) {
		n->nstate[from]--;
		atomic_fetch_sub(&p->nstate[from], 1);
	}
	if (to) {
		n->nstate[to]++;
		atomic_fetch_add(&p->nstate[to], 1);
	}
}

/* --- the write path ---------------------------------------------------- */

int
vems__ext_stage_new(struct vems_pool *p, struct vems_entry *e, uint64_t serial,
		    uint32_t ext, uint32_t frame, struct vems_flushset *fs)
{
	/* free (word 0): nothing reads these fields until the commit */
	atomic_store_explicit((_Atomic uint64_t *)&e->serial, serial,
			      memory_order_relaxed);
	e->ext_index = ext;
	e->frame = frame;
	e->slot = 0;
	e->crc = 0;
	return vems__flush_add(p, fs, e, offsetof(struct vems_entry, word));
}

int
vems__ext_stage_frame(struct vems_pool *p, struct vems_entry *e, uint32_t frame)
{
	/* a BLOCK entry's frame is not covered by its check */
	e->frame = frame;
	return vems__pmem_flush(p, &e->frame, sizeof(e->frame));
}

int
vems__ext_commit_write(struct vems_pool *p, struct vems_objnode *n,
		       const struct vems_xw *w, size_t nw, bool size_follows)
{
	if (!VEMS_PLANTED(VEMS_PLANT_NO_FENCE))
		vems__pmem_drain(
			p); /* data, staged fields before the entries */
	bool late = false;
	struct vems_flushset fs = {0};
	for (size_t i = 0; i < nw; i++) {
		commit_add(p, &fs, &p->entries[w[i].entry], VEMS_ES_PMEM);
		late |= !w[i].is_new;
	}
	/* on the msync path, one msync for all of them */
	int ret = vems__flush_done(p, &fs);
	if (ret)
		return ret;
	/*
	 * Before an overwritten extent's old slot is reused, and before the
	 * size that covers new extents. The latter fence is the size's own
	 * when only new entries are committed and a size store follows: a
	 * crash may then make either durable first, and both orders are
	 * safe (a size over an unmapped extent reads zeros, as past the old
	 * end; a verified entry past a verified size is a leftover that
	 * open frees).
	 */
	if (late || !size_follows)
		vems__pmem_drain(p);
	uint32_t nnew = 0;
	for (size_t i = 0; i < nw; i++) {
		if (w[i].is_new) {
			nnew++;
			account(p, n, 0, VEMS_ES_PMEM);
		} else {
			account(p, n, VEMS_ES_BLOCK, VEMS_ES_PMEM);
			vems__slot_free(p, w[i].old_slot);
		}
		/* S3-FIFO: probation, or main if evicted lately */
		bool hot = vems__ghost_take(p, n->serial, w[i].ext);
		vems__pol_insert(p, w[i].frame, w[i].entry, hot);
	}
	VEMS_STAT_ADD(p, extents_allocated, nnew);
	return 0;
}

void
vems__ext_abort_write(struct vems_pool *p, const struct vems_xw *w, size_t nw)
{
	/* new entries back to free, overwritten ones back to their slot
	 * (whose fields the write never touched) */
	for (size_t i = 0; i < nw; i++) {
		struct vems_entry *e = &p->entries[w[i].entry];
		if (w[i].is_new && e->state != 0)
			(void)commit(p, e, 0);
		else if (!w[i].is_new && e->state == VEMS_ES_PMEM)
			(void)commit(p, e, VEMS_ES_BLOCK);
	}
	vems__pmem_drain(p); /* undone before the frames are reused */
}

int
vems__ext_dirty(struct vems_pool *p, struct vems_objnode *n,
		const uint32_t *entries, size_t cnt)
{
	uint32_t slots[64];
	int ret = 0;
	for (size_t b = 0; b < cnt && ret == 0; b += 64) {
		size_t k = cnt - b < 64 ? cnt - b : 64, done = 0;
		for (; done < k; done++) {
			struct vems_entry *e = &p->entries[entries[b + done]];
			slots[done] = e->slot;
			if ((ret = commit(p, e, VEMS_ES_PMEM)))
				break;
			account(p, n, VEMS_ES_BOTH, VEMS_ES_PMEM);
		}
		/* dirty before the frames change and the slots are reused */
		vems__pmem_drain(p);
		if (ret) {
			/* the store may be in memory: count it (the slot
			 * stays owned; the pool has failed) */
			account(p, n, VEMS_ES_BOTH, VEMS_ES_PMEM);
			break;
		}
		for (size_t i = 0; i < done; i++)
			vems__slot_free(p, slots[i]);
	}
	return ret;
}

int
vems__ext_fetch(struct vems_pool *p, struct vems_objnode *n, uint32_t ei,
		uint32_t f, bool *consumed)
{
	*consumed = false;
	struct vems_entry *e = &p->entries[ei];
	uint8_t *fa = vems__frame_addr(p, f);
	atomic_fetch_add_explicit(&p->fr[f].gen, 1, memory_order_relaxed);
	/* straight into the pmem frame: it is page-aligned */
	int ret = vems__slot_read(p, n, e->ext_index, e->slot, e->crc, fa);
	if (ret == 0) /* the transfer wrote memory, not the CPU cache */
		ret = vems__pmem_flush(p, fa, p->extent_size);
	if (ret == 0)
		ret = vems__ext_stage_frame(p, e, f);
	if (ret)
		return ret;  /* nothing committed: f is still the caller's */
	vems__pmem_drain(p); /* bytes and frame before the state naming them */
	uint32_t slot = e->slot;
	ret = commit(p, e, VEMS_ES_PMEM);
	vems__pmem_drain(p); /* committed before the slot is reused */
	/*
	 * From here f is the entry's, even if the store's msync failed (it
	 * is in memory, maybe on media: the pool has failed, and the slot
	 * stays owned so that neither reading can name a reused slot).
	 */
	*consumed = true;
	account(p, n, VEMS_ES_BLOCK, VEMS_ES_PMEM);
	/* admitted like any miss: main queue only if evicted lately */
	vems__pol_insert(p, f, ei,
			 vems__ghost_take(p, n->serial, e->ext_index));
	if (ret == 0) {
		vems__slot_free(p, slot);
		VEMS_STAT_ADD(p, block_fetches, 1);
	}
	return ret;
}

struct collect {
	uint32_t *ext, *entry;
	uint8_t *state;
	size_t n;
	uint64_t from;
	struct vems_pool *p;
};

static void
collect_fn(uint32_t ext, uint32_t entry, void *arg)
{
	struct collect *c = arg;
	if (ext >= c->from) {
		c->ext[c->n] = ext;
		c->entry[c->n] = entry;
		c->state[c->n] = c->p->entries[entry].state;
		c->n++;
	}
}

static void
collect_fini(struct collect *c)
{
	free(c->ext);
	free(c->entry);
	free(c->state);
}

int
vems__ext_free_from(struct vems_pool *p, struct vems_objnode *n,
		    uint64_t from_ext)
{
	if (n->idx.count == 0)
		return 0;
	struct collect l = {malloc(n->idx.count * sizeof(uint32_t)),
			    malloc(n->idx.count * sizeof(uint32_t)),
			    malloc(n->idx.count),
			    0,
			    from_ext,
			    p};
	if (l.ext == NULL || l.entry == NULL || l.state == NULL) {
		collect_fini(&l);
		return vems__fail(-ENOMEM, "out of memory");
	}
	vems__xidx_foreach(&n->idx, collect_fn, &l);
	int ret = 0;
	for (size_t i = 0; i < l.n && ret == 0; i++)
		ret = commit(p, &p->entries[l.entry[i]], 0);
	vems__pmem_drain(p); /* frees durable before any reuse */
	if (ret) {
		/* some stores may be in memory and not on media: keep every
		 * resource owned until reopen (the pool has failed) */
		collect_fini(&l);
		return ret;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct vems_entry *e = &p->entries[l.entry[i]];
		/* the fields keep their last values after the free */
		uint8_t st = l.state[i];
		if (st == VEMS_ES_PMEM || st == VEMS_ES_BOTH)
			vems__frame_free(p, e->frame);
		if (st == VEMS_ES_BOTH || st == VEMS_ES_BLOCK)
			vems__slot_free(p, e->slot);
		account(p, n, st, 0);
	}
	pthread_mutex_lock(&p->alloc_lock);
	for (size_t i = 0; i < l.n; i++)
		vems__fl_push(&p->free_entries, l.entry[i]);
	pthread_mutex_unlock(&p->alloc_lock);
	for (size_t i = 0; i < l.n; i++)
		vems__xidx_del(&n->idx, l.ext[i]);
	VEMS_STAT_ADD(p, extents_freed, l.n);
	collect_fini(&l);
	return 0;
}

/* --- promotion ------------------------------------------------------------ */

#define PROMO_BATCH 32

void
vems__promote(struct vems_pool *p, struct vems_objnode *n, struct vems_promo *v,
	      size_t cnt)
{
	if (cnt > PROMO_BATCH) {
		vems__promote(p, n, v, PROMO_BATCH);
		vems__promote(p, n, v + PROMO_BATCH, cnt - PROMO_BATCH);
		return;
	}
	uint32_t frames[PROMO_BATCH];
	size_t done[PROMO_BATCH], nd = 0;
	struct vems_flushset dfs = {0}, mfs = {0}; /* frames, entry fields */
	/*
	 * The watermarks count clean frames as free (spill.c): with too few
	 * free, make room now, nothing held, by evicting the policy's next
	 * victims in its order: clean ones are dropped (no I/O), a dirty one
	 * is written out first, as a cache writes back a dirty line it
	 * evicts for a read miss. (Dropping only clean victims and leaving
	 * dirty ones to the spiller measured 0.85-0.95 of an exact LRU's
	 * zipf hit ratio, against 1.01 this way.) Best effort: a frame may
	 * still be taken by someone else before we get it.
	 */
	uint32_t have = vems__free_frames(p);
	if (have < cnt && !vems__pool_failed(p))
		(void)vems__spill(p, (uint32_t)cnt - have, NULL, 0, 0, false);
	vems__rw_wrlock(&n->lock);
	if (vems__pool_failed(p))
		cnt = 0; /* best effort: nothing changes on a failed pool */
	for (size_t i = 0; i < cnt; i++) {
		struct vems_entry *e = &p->entries[v[i].entry];
		if (vems__entry_owner(e) != n->serial ||
		    e->ext_index != v[i].ext || e->state != VEMS_ES_BLOCK ||
		    e->slot != v[i].slot ||
		    vems__xidx_get(&n->idx, v[i].ext) != v[i].entry)
			continue;
		/*
		 * Twice in one batch (two async reads of the same extent
		 * reaped together): the state switches only below, so the
		 * checks above pass again. Once is enough: a second frame
		 * would replace the first, left neither free nor used, and
		 * the extent would be counted clean twice.
		 */
		bool twice = false;
		for (size_t k = 0; k < nd && !twice; k++)
			twice = v[done[k]].entry == v[i].entry;
		if (twice)
			continue;
		uint32_t f;
		pthread_mutex_lock(&p->alloc_lock);
		bool ok = vems__fl_pop(&p->free_frames, &f);
		pthread_mutex_unlock(&p->alloc_lock);
		if (!ok)
			break; /* taken by others since the room was made */
		atomic_fetch_add_explicit(&p->fr[f].gen, 1,
					  memory_order_relaxed);
		/* the frame is unreferenced until the commit below; a BLOCK
		 * entry's frame is not covered by its check */
		(void)vems__pmem_copy_to(p, &dfs, vems__frame_addr(p, f),
					 v[i].src, p->extent_size);
		e->frame = f;
		(void)vems__flush_add(p, &mfs, &e->frame, sizeof(e->frame));
		frames[nd] = f;
		done[nd++] = i;
	}
	/* on the msync path one msync each for the bytes and the fields */
	if (vems__flush_done(p, &dfs) != 0 || vems__flush_done(p, &mfs) != 0) {
		/* nothing committed: the frames are still ours (the pool
		 * has failed and takes no more changes) */
		vems__frames_unreserve(p, frames, nd);
		nd = 0;
	}
	vems__pmem_drain(p); /* frame bytes and field before the state */
	for (size_t k = 0; k < nd; k++)
		commit_add(p, &mfs, &p->entries[v[done[k]].entry],
			   VEMS_ES_BOTH);
	/*
	 * Even if the msync fails the stores are in memory (maybe on media):
	 * the frames are the entries' either way, never handed out again
	 * while they may be named (the pool has failed).
	 */
	(void)vems__flush_done(p, &mfs);
	vems__pmem_drain(p); /* clean copy committed */
	for (size_t k = 0; k < nd; k++) {
		account(p, n, VEMS_ES_BLOCK, VEMS_ES_BOTH);
		vems__pol_insert(p, frames[k], v[done[k]].entry,
				 v[done[k]].hot);
		VEMS_STAT_ADD(p, promotions, 1);
		VEMS_STAT_ADD(p, bytes_promoted, p->extent_size);
	}
	vems__rw_unlock(&n->lock);
}

/* --- spilling -------------------------------------------------------------- */

void
vems__ext_spill_commit(struct vems_pool *p, struct vems_objnode *n,
		       struct vems_xspill *const *v, size_t cnt)
{
	int err = 0;
	/* on the msync path, one msync per step for the whole group */
	struct vems_flushset fs = {0};
	for (size_t i = 0; i < cnt; i++) {
		v[i]->res = 1;
		if (v[i]->state != VEMS_ES_PMEM)
			continue;
		/* slot and crc are not covered while the state is PMEM */
		struct vems_entry *e = &p->entries[v[i]->entry];
		e->slot = v[i]->slot;
		e->crc = v[i]->crc;
		(void)vems__flush_add(p, &fs, &e->slot,
				      sizeof(e->slot) + sizeof(e->crc));
		/* the slot's page checks, filled when its write was queued */
		if (!VEMS_PLANTED(VEMS_PLANT_UNFLUSHED_PCHECKS))
			(void)vems__flush_add(
				p, &fs, vems__slot_pchecks(p, v[i]->slot),
				(size_t)p->ppe * sizeof(uint32_t));
	}
	err = vems__flush_done(p, &fs);
	if (!VEMS_PLANTED(VEMS_PLANT_TORN_ENTRY))
		vems__pmem_drain(p); /* slots and crcs before the states */
	bool stored[VEMS_SPILL_BATCH];
	if (cnt > VEMS_SPILL_BATCH)
		cnt = VEMS_SPILL_BATCH; /* the spiller's groups are smaller */
	for (size_t i = 0; i < cnt; i++) {
		stored[i] = false;
		if (err) {
			v[i]->res = err; /* nothing switched: keep it all */
			continue;
		}
		stored[i] = true;
		commit_add(p, &fs, &p->entries[v[i]->entry], VEMS_ES_BLOCK);
	}
	/* every store is in memory, if its msync failed maybe not on media */
	int r = err ? 0 : vems__flush_done(p, &fs);
	for (size_t i = 0; i < cnt && r; i++)
		v[i]->res = err = r;
	if (!VEMS_PLANTED(VEMS_PLANT_EARLY_FRAME_FREE))
		vems__pmem_drain(
			p); /* the switches, before frames are reused */
	for (size_t i = 0; i < cnt; i++) {
		if (!stored[i])
			continue;
		/*
		 * The store is in memory (if its msync failed, maybe not on
		 * media: then the frame is kept out of circulation, as the
		 * pool has failed, and the slot stays named).
		 */
		if (v[i]->state == VEMS_ES_PMEM)
			vems__slot_committed(p, v[i]->slot);
		account(p, n, v[i]->state, VEMS_ES_BLOCK);
		if (v[i]->res == 1)
			vems__frame_free(p, v[i]->frame);
		else
			vems__pol_remove(p, v[i]->frame);
	}
}

/* --- inline objects moving to the block file ------------------------------ */

int
vems__ext_commit_block(struct vems_pool *p, struct vems_objnode *n,
		       uint32_t entry, uint32_t ext, uint32_t slot,
		       uint32_t crc)
{
	(void)n;
	struct vems_entry *e = &p->entries[entry];
	struct vems_flushset fs = {0};
	/* free (word 0): nothing reads these fields until the commit */
	atomic_store_explicit((_Atomic uint64_t *)&e->serial, n->serial,
			      memory_order_relaxed);
	e->ext_index = ext;
	e->frame = 0;
	e->slot = slot;
	e->crc = crc;
	(void)vems__flush_add(p, &fs, e, offsetof(struct vems_entry, word));
	if (!VEMS_PLANTED(VEMS_PLANT_UNFLUSHED_PCHECKS))
		(void)vems__flush_add(p, &fs, vems__slot_pchecks(p, slot),
				      (size_t)p->ppe * sizeof(uint32_t));
	int ret = vems__flush_done(p, &fs);
	if (ret)
		return ret;
	if (!VEMS_PLANTED(VEMS_PLANT_TORN_ENTRY))
		vems__pmem_drain(p); /* fields and page checks, then state */
	ret = commit(p, e, VEMS_ES_BLOCK);
	vems__pmem_drain(p); /* the entry, before the inline block goes */
	return ret;
}

void
vems__ext_block_adopt(struct vems_pool *p, struct vems_objnode *n,
		      uint32_t slot)
{
	vems__slot_committed(p, slot);
	account(p, n, 0, VEMS_ES_BLOCK);
	VEMS_STAT_ADD(p, extents_allocated, 1);
}

int
vems__ext_uncommit(struct vems_pool *p, uint32_t entry)
{
	int ret = commit(p, &p->entries[entry], 0);
	vems__pmem_drain(p);
	return ret;
}

/* --- recovery at open ---------------------------------------------------- */

void
vems__ext_scan_fini(struct vems_xscan *s)
{
	free(s->frame_used);
	free(s->slot_used);
	free(s->leftover);
	memset(s, 0, sizeof(*s));
}

static int
add_leftover(struct vems_xscan *s, uint32_t i)
{
	if (s->nleft == s->capleft) {
		size_t nc = s->capleft ? 2 * s->capleft : 64;
		uint32_t *v = realloc(s->leftover, nc * sizeof(*v));
		if (v == NULL)
			return vems__fail(-ENOMEM, "out of memory");
		s->leftover = v;
		s->capleft = nc;
	}
	s->leftover[s->nleft++] = i;
	return 0;
}

int
vems__ext_scan(struct vems_pool *p, struct vems_xscan *s)
{
	memset(s, 0, sizeof(*s));
	s->frame_used = calloc(p->nframes, 1);
	s->slot_used = calloc(p->nslots ? p->nslots : 1, 1);
	if (s->frame_used == NULL || s->slot_used == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < p->nentries; i++) {
		const struct vems_entry *e = &p->entries[i];
		if (e->word == 0)
			continue;
		if (!vems__entry_valid(e))
			return vems__fail(VEMS_E_CORRUPT,
					  "%s: extent entry %u is damaged (its "
					  "check value does not match; state "
					  "%u): left as it is for repair",
					  p->pmem_path, i, e->state);
		struct vems_objnode *n = vems__obj_by_serial(p, e->serial);
		if (n == NULL)
			return vems__fail(VEMS_E_CORRUPT,
					  "%s: extent entry %u belongs to no "
					  "object (serial %" PRIu64
					  "): left as it is for repair",
					  p->pmem_path, i, e->serial);
		bool in_pmem =
			e->state == VEMS_ES_PMEM || e->state == VEMS_ES_BOTH;
		bool in_block =
			e->state == VEMS_ES_BOTH || e->state == VEMS_ES_BLOCK;
		if ((in_pmem &&
		     (e->frame >= p->nframes ||
		      !vems__frame_addr(p, e->frame) ||
		      s->frame_used[e->frame]++)) ||
		    (in_block &&
		     (e->slot >= p->nslots || s->slot_used[e->slot]++)))
			return vems__fail(VEMS_E_CORRUPT,
					  "%s: extent entry %u names a frame "
					  "or slot out of range or already "
					  "named",
					  p->pmem_path, i);
		uint64_t next = (vems__rec_size(n->rec) + p->extent_size - 1) >>
			p->extent_shift;
		if (n->removing || e->ext_index >= next || n->inl) {
			/*
			 * Provably left by an interrupted operation: the
			 * object's removal was under way, or the entry (its
			 * check verified) lies past the object's verified
			 * size, where only a shrinking truncate or a write
			 * that never returned leaves extents, or the object
			 * is still inline: a move of its bytes to extents
			 * had not committed (inline.c).
			 */
			int ret = add_leftover(s, i);
			if (ret)
				return ret;
			continue;
		}
		if (vems__xidx_get(&n->idx, e->ext_index) != UINT32_MAX)
			return vems__fail(VEMS_E_CORRUPT,
					  "%s: extent %u of object %" PRIu64
					  ":%" PRIu64 " is mapped twice",
					  p->pmem_path, e->ext_index,
					  n->oid.partition, n->oid.id);
		if (vems__xidx_put(&n->idx, e->ext_index, i))
			return vems__fail(-ENOMEM, "out of memory");
		n->nstate[e->state]++;
		atomic_fetch_add(&p->nstate[e->state], 1);
		/* recency is not persisted: everything resident starts in
		 * the main queue, in entry order */
		if (in_pmem)
			vems__pol_insert(p, e->frame, i, true);
	}
	return 0;
}

int
vems__ext_repair(struct vems_pool *p, struct vems_xscan *s)
{
	int ret = 0;
	for (size_t k = 0; k < s->nleft && ret == 0; k++) {
		struct vems_entry *e = &p->entries[s->leftover[k]];
		uint8_t st = e->state;
		if ((ret = commit(p, e, 0)) != 0)
			break;
		/* the fields keep their last values after the free */
		if (st == VEMS_ES_PMEM || st == VEMS_ES_BOTH)
			s->frame_used[e->frame] = 0;
		if (st == VEMS_ES_BOTH || st == VEMS_ES_BLOCK)
			s->slot_used[e->slot] = 0;
	}
	if (s->nleft)
		vems__pmem_drain(p); /* the frees, before any reuse */
	if (ret)
		return ret;
	/* free lists, lowest index handed out first */
	for (uint32_t i = p->nentries; i-- > 0;)
		if (p->entries[i].word == 0)
			vems__fl_push(&p->free_entries, i);
	for (uint32_t f = p->nframes; f-- > 0;)
		if (!s->frame_used[f] && vems__frame_addr(p, f))
			vems__fl_push(&p->free_frames, f);
	for (uint32_t x = p->nslots; x-- > 0;)
		if (!s->slot_used[x])
			vems__fl_push(&p->free_slots, x);
	return 0;
}
