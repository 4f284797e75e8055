/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * extent.h -- the extent-entry state machine (extent.c): every transition
 * of a persistent mapping entry, with its fences and its recovery at open
 *
 * Nothing outside extent.c stores into a struct vems_entry's commit word.
 * Callers hold the owning object's lock exclusively for every transition
 * (at open, the pool is not shared yet).
 */
#ifndef VEMS_EXTENT_H
#define VEMS_EXTENT_H 1

#include "vems_internal.h"

/* The check value the entry's fields give for `state` (never 0 words). */
uint32_t vems__entry_check(const struct vems_entry *e, uint8_t state);

/* True if the entry is in use and its check value matches its fields. */
bool vems__entry_valid(const struct vems_entry *e);

/*
 * An entry's owner, read without its owner's lock (the spiller, the
 * policy): the serial if the entry is in use, else 0. The commit word and
 * the serial are only stored atomically, and an entry whose serial names a
 * locked object cannot change hands, so callers check this first and
 * re-read the other fields under the owner's lock.
 */
static inline uint64_t
vems__entry_owner(const struct vems_entry *e)
{
	uint64_t w = atomic_load_explicit((const _Atomic uint64_t *)&e->word,
					  memory_order_relaxed);
	if ((w & 0xff) == 0)
		return 0;
	return atomic_load_explicit((const _Atomic uint64_t *)&e->serial,
				    memory_order_relaxed);
}

/* --- the write path ---------------------------------------------------- */

/*
 * A new entry's fields, written and flushed (with set fs) while it is
 * still free (its commit word 0): committed by vems__ext_commit_write after
 * the data.
 */
int vems__ext_stage_new(struct vems_pool *p, struct vems_entry *e,
			uint64_t serial, uint32_t ext, uint32_t frame,
			struct vems_flushset *fs);
/* A BLOCK entry about to be wholly overwritten gets its new frame (not
 * covered by its check while BLOCK); committed like a new entry. */
int vems__ext_stage_frame(struct vems_pool *p, struct vems_entry *e,
			  uint32_t frame);

/* One extent a write maps into pmem. */
struct vems_xw {
	uint32_t ext, entry, frame, old_slot;
	bool is_new; /* else a BLOCK extent wholly overwritten */
};

/*
 * The commit of a write's new mappings: fence (data and staged fields
 * before the entries naming them), one commit-word store per entry, and a
 * second fence unless `size_follows` and every entry is new (then the
 * size's own fence orders them: see extent.c). Then the DRAM side:
 * counts, replacement policy, the overwritten extents' slots freed.
 */
int vems__ext_commit_write(struct vems_pool *p, struct vems_objnode *n,
			   const struct vems_xw *w, size_t nw,
			   bool size_follows);
/* Undoes what vems__ext_commit_write may have stored (on its failure). */
void vems__ext_abort_write(struct vems_pool *p, const struct vems_xw *w,
			   size_t nw);

/*
 * Clean (BOTH) extents about to be written become dirty (PMEM) first, so a
 * crash never leaves a BOTH extent whose frame differs from its slot: the
 * stores, one fence, then the slots are freed.
 */
int vems__ext_dirty(struct vems_pool *p, struct vems_objnode *n,
		    const uint32_t *entries, size_t cnt);

/*
 * Reads BLOCK extent `entry` into the reserved frame f and commits it as
 * dirty PMEM (for a partial overwrite). *consumed says whether f is now
 * the entry's: false on a failure before the commit (f is still the
 * caller's), true once the commit store was made, even if its msync failed
 * (then the error is returned and the pool has failed).
 */
int vems__ext_fetch(struct vems_pool *p, struct vems_objnode *n, uint32_t entry,
		    uint32_t f, bool *consumed);

/* Frees every extent at or past from_ext (truncate, remove). */
int vems__ext_free_from(struct vems_pool *p, struct vems_objnode *n,
			uint64_t from_ext);

/* --- spilling ------------------------------------------------------------ */

#define VEMS_SPILL_BATCH 64 /* extents per spill round (spill.c) */

/* One extent a spill switches to BLOCK (the slot already durable). */
struct vems_xspill {
	uint32_t entry, frame, slot, crc;
	uint8_t state; /* PMEM (slot and crc new) or BOTH (no I/O) */
	int res;       /* out: 1 switched and frame freed, or -errno */
};
/*
 * Slots and crcs of the dirty ones, fence, every commit-word store, fence,
 * then the frames are freed. All of one object, held exclusively.
 */
void vems__ext_spill_commit(struct vems_pool *p, struct vems_objnode *n,
			    struct vems_xspill *const *v, size_t cnt);

/*
 * A new BLOCK entry for extent ext of n (an inline object moving to the
 * block file; inline.c): the free entry's fields and the slot's page check
 * row (filled) flushed, fence, the commit store, fence. The slot's data is
 * durable already. Only the pmem side: the caller then drops the inline
 * block, and on success calls vems__ext_block_adopt. While the object
 * stays inline the entry is a leftover (open frees it).
 */
int vems__ext_commit_block(struct vems_pool *p, struct vems_objnode *n,
			   uint32_t entry, uint32_t ext, uint32_t slot,
			   uint32_t crc);
/* The DRAM side of that commit (its index entry is the caller's). */
void vems__ext_block_adopt(struct vems_pool *p, struct vems_objnode *n,
			   uint32_t slot);
/* Frees an entry just committed by vems__ext_commit_block (its
 * transaction failed): store, fence. */
int vems__ext_uncommit(struct vems_pool *p, uint32_t entry);

/* --- recovery at open -------------------------------------------------- */

/*
 * The entry pass of open, in two steps. vems__ext_scan reads the entry
 * table without writing anything: it fills the objects' DRAM indexes and
 * counts, marks used frames and slots, and collects the leftovers that an
 * interrupted operation provably left behind (entries past their object's
 * verified size; entries of an object whose removal was under way). Any
 * other inconsistency is VEMS_E_CORRUPT with a sentence naming the entry,
 * and the pool is left as it was. Only then vems__ext_repair frees the
 * leftovers (one fence before their frames and slots are reused).
 */
struct vems_xscan {
	uint8_t *frame_used; /* [nframes] */
	uint8_t *slot_used;  /* [nslots] */
	uint32_t *leftover;  /* entry indices to free */
	size_t nleft, capleft;
};
int vems__ext_scan(struct vems_pool *p, struct vems_xscan *s);
int vems__ext_repair(struct vems_pool *p, struct vems_xscan *s);
void vems__ext_scan_fini(struct vems_xscan *s);

#endif /* VEMS_EXTENT_H */
