/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * inline.c -- small objects: their bytes in one allocation beside the record
 *
 * An object no larger than p->inl_max keeps its bytes in a struct
 * vems_inline of its own, named by its record's `inl`, instead of in an
 * extent (a whole frame, and a whole slot once spilled). The record's `inl`
 * is the truth: while it names a block, [0, size) of the object is there,
 * and any extent entry the object has is a leftover of a move that did not
 * commit, which open frees (extent.c). So every change of form is one
 * libpmemobj transaction, made after the bytes of the new form are durable:
 *
 *   first write, growth  the new block written and flushed, fence;
 *                        transaction: rec.inl = new, old block freed; then
 *                        the size store (io.c)
 *   to extents           the bytes written to extent 0 and committed
 *                        (io.c's write path); transaction: rec.inl = 0,
 *                        the block freed
 *   to the block file    (eviction) the bytes written to a free slot and
 *                        synced, a BLOCK entry for extent 0 committed
 *                        (extent.c); transaction: rec.inl = 0, block freed
 *   removal              the block freed in the record's own transaction
 *
 * A write inside the block's capacity is in place, as in a frame: bytes,
 * fence, then the size store if it grows. Bytes past the size are garbage,
 * and whatever grows the size zeroes them first, as for extents.
 *
 * Inline blocks share libpmemobj's heap with the records. When it is full,
 * vems__meta_full (chunk.c) gives the heap a data chunk or evicts the
 * coldest inline objects here: a CLOCK over them (every access sets a bit,
 * the hand clears it and passes over the object once).
 */

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "extent.h"
#include "vems_internal.h"

/* libpmemobj's allocation header in front of a block (compact headers) */
#define HEAP_HDR 16u
#define EVICT_BATCH 32u

/*
 * Inline blocks come from two allocation classes of their own rather than
 * libpmemobj's default ones (a run of each of dozens of size classes): a
 * 128-byte unit up to 8 KiB and a 1 KiB unit up to 64 KiB, each run one
 * 256 KiB chunk. Few classes keep the heap's slack to two partial runs, and
 * evicting the coldest objects, which were mostly allocated together,
 * empties whole runs: chunks the records and names can use again. A run
 * serves an allocation of at most 64 units.
 */
#define CLASS_UNITS_MAX 64u
static const struct {
	size_t unit;
	unsigned per_block;
} classes[2] = {{128, 2000}, {1024, 250}};

void
vems__inline_classes(struct vems_pool *p)
{
	for (int i = 0; i < 2; i++) {
		struct pobj_alloc_class_desc d = {
			.unit_size = classes[i].unit,
			.alignment = 0,
			.units_per_block = classes[i].per_block,
			.header_type = POBJ_HEADER_COMPACT,
		};
		/* without one, the default classes serve (and pack worse) */
		p->inl_class[i] =
			pmemobj_ctl_set(p->pop, "heap.alloc_class.new.desc",
					&d) == 0
			? d.class_id
			: 0;
	}
}

/* The class for an allocation of `size` bytes (0: libpmemobj's choice). */
static uint64_t
class_flag(const struct vems_pool *p, size_t size)
{
	for (int i = 0; i < 2; i++)
		if (p->inl_class[i] &&
		    size + HEAP_HDR <= CLASS_UNITS_MAX * classes[i].unit)
			return POBJ_CLASS_ID(p->inl_class[i]);
	return 0;
}

uint32_t
vems__inline_limit(uint64_t configured, uint64_t extent_size)
{
	uint64_t m =
		configured == UINT64_MAX ? VEMS_INLINE_MAX_DEFAULT : configured;
	/* a quarter of an extent at most: an object leaving the inline form
	 * fits its first extent, and an inline object is worth its keep */
	if (m > extent_size / 4)
		m = extent_size / 4;
	return (uint32_t)m;
}

PMEMoid
vems__pool_oid(const struct vems_pool *p, uint64_t off)
{
	PMEMoid o = {pmemobj_oid(p->sb).pool_uuid_lo, off};
	return o;
}

uint32_t
vems__inline_check(uint64_t serial, uint32_t cap)
{
	struct {
		uint64_t serial;
		uint32_t cap, magic;
	} b = {serial, cap, 0x4e4c4e49u /* "INLN" */};
	return vems__crc32c(&b, sizeof(b));
}

uint64_t
vems__inline_bytes(const struct vems_pool *p, const struct vems_inline *in)
{
	(void)p;
	return sizeof(*in) + in->cap + HEAP_HDR;
}

/* --- the eviction clock's list (inl_lock) -------------------------------- */

static void
list_unlink_locked(struct vems_pool *p, struct vems_objnode *n)
{
	if (n->inl_prev)
		n->inl_prev->inl_next = n->inl_next;
	else
		p->inl_head = n->inl_next;
	if (n->inl_next)
		n->inl_next->inl_prev = n->inl_prev;
	else
		p->inl_tail = n->inl_prev;
	n->inl_prev = n->inl_next = NULL;
}

static void
list_push_locked(struct vems_pool *p, struct vems_objnode *n)
{
	n->inl_prev = NULL;
	n->inl_next = p->inl_head;
	if (p->inl_head)
		p->inl_head->inl_prev = n;
	else
		p->inl_tail = n;
	p->inl_head = n;
}

/* n's inline block becomes `in` (NULL: none), with the pool's counts. */
static void
set_block(struct vems_pool *p, struct vems_objnode *n, struct vems_inline *in)
{
	pthread_mutex_lock(&p->inl_lock);
	if (n->inl) {
		atomic_fetch_sub(&p->inl_bytes, vems__inline_bytes(p, n->inl));
		if (in == NULL) {
			list_unlink_locked(p, n);
			atomic_fetch_sub(&p->inl_count, 1);
		}
	} else if (in) {
		list_push_locked(p, n);
		atomic_fetch_add(&p->inl_count, 1);
	}
	if (in)
		atomic_fetch_add(&p->inl_bytes, vems__inline_bytes(p, in));
	n->inl = in;
	atomic_fetch_add_explicit(&n->inl_gen, 1, memory_order_relaxed);
	pthread_mutex_unlock(&p->inl_lock);
}

void
vems__inline_unlink(struct vems_pool *p, struct vems_objnode *n)
{
	if (n->inl)
		set_block(p, n, NULL);
}

/* --- open ---------------------------------------------------------------- */

int
vems__inline_scan_add(struct vems_pool *p, PMEMoid o)
{
	if (p->inl_nscan == p->inl_capscan) {
		size_t nc = p->inl_capscan ? 2 * p->inl_capscan : 256;
		uint64_t *v = realloc(p->inl_scan, nc * sizeof(*v));
		if (v == NULL)
			return vems__fail(-ENOMEM, "out of memory");
		p->inl_scan = v;
		p->inl_capscan = nc;
	}
	p->inl_scan[p->inl_nscan++] = o.off;
	return 0;
}

static int
off_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int
attach_one(struct vems_pool *p, struct vems_objnode *n)
{
	const struct vems_obj_rec *r = n->rec;
	if (bsearch(&r->inl, p->inl_scan, p->inl_nscan, sizeof(uint64_t),
		    off_cmp) == NULL)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: object %" PRIu64 ":%" PRIu64
				  " names inline data at offset %" PRIu64
				  " that the heap does not hold: left as it "
				  "is for repair",
				  p->pmem_path, n->oid.partition, n->oid.id,
				  r->inl);
	PMEMoid o = vems__pool_oid(p, r->inl);
	struct vems_inline *in = pmemobj_direct(o);
	size_t usable = pmemobj_alloc_usable_size(o);
	if (usable < sizeof(*in) || in->serial != n->serial ||
	    in->check != vems__inline_check(in->serial, in->cap) ||
	    in->cap > usable - sizeof(*in) || vems__rec_size(r) > in->cap)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: the inline data of object %" PRIu64
				  ":%" PRIu64
				  " is damaged (check value mismatch): left "
				  "as it is for repair",
				  p->pmem_path, n->oid.partition, n->oid.id);
	set_block(p, n, in);
	return 0;
}

int
vems__inline_attach(struct vems_pool *p)
{
	int ret = 0;
	size_t named = 0;
	if (p->inl_nscan > 1)
		qsort(p->inl_scan, p->inl_nscan, sizeof(uint64_t), off_cmp);
	for (size_t i = 0; i < p->serials.nbuckets && ret == 0; i++)
		for (struct vems_hnode *h = p->serials.buckets[i];
		     h && ret == 0; h = h->next) {
			struct vems_objnode *n = vems_container_of(
				h, struct vems_objnode, by_serial);
			if (n->rec->inl == 0)
				continue;
			ret = attach_one(p, n);
			named++;
		}
	/* a block of a serial no record has (or two records naming one
	 * block: the second fails its serial above) */
	if (ret == 0 && named != p->inl_nscan)
		ret = vems__fail(VEMS_E_CORRUPT,
				 "%s: %zu inline data blocks belong to no "
				 "object (libpmemobj's heap is damaged?): "
				 "left as it is for repair",
				 p->pmem_path, p->inl_nscan - named);
	free(p->inl_scan);
	p->inl_scan = NULL;
	p->inl_nscan = p->inl_capscan = 0;
	return ret;
}

/* --- changes of form ------------------------------------------------------ */

/*
 * The transaction of vems__inline_replace, in a function of its own (a
 * setjmp: only unchanged arguments and volatile results live across it).
 */
static int
tx_replace(struct vems_pool *p, struct vems_objnode *n, uint64_t cap,
	   uint64_t keep, const uint8_t *src, uint64_t off, size_t len,
	   uint64_t live, struct vems_inline *volatile *out)
{
	volatile int ret = 0;
	struct vems_obj_rec *r = n->rec;
	PMEMoid old = r->inl ? vems__pool_oid(p, r->inl) : OID_NULL;
	TX_BEGIN(p->pop)
	{
		size_t want = sizeof(struct vems_inline) + (size_t)cap;
		PMEMoid o = pmemobj_tx_xalloc(want, VEMS_TYPE_INLINE,
					      POBJ_XALLOC_NO_FLUSH |
						      class_flag(p, want));
		struct vems_inline *in = pmemobj_direct(o);
		size_t usable = pmemobj_alloc_usable_size(o);
		uint64_t c = usable - sizeof(*in);
		if (c > VEMS_INLINE_MAX_LIMIT)
			c = VEMS_INLINE_MAX_LIMIT;
		in->serial = n->serial;
		in->cap = (uint32_t)c;
		in->check = vems__inline_check(in->serial, in->cap);
		/* the new block's bytes: durable before the record names it */
		struct vems_flushset fs = {0};
		int e = vems__flush_add(p, &fs, in, sizeof(*in));
		if (e == 0 && keep)
			e = vems__pmem_copy_to(p, &fs, in->data, n->inl->data,
					       (size_t)keep);
		if (e == 0 && off > keep)
			e = vems__pmem_zero_to(p, &fs, in->data + keep,
					       (size_t)(off - keep));
		if (e == 0 && len)
			e = vems__pmem_copy_to(p, &fs, in->data + off, src,
					       len);
		uint64_t lo = off + len > keep ? off + len : keep;
		if (e == 0 && live > lo)
			e = vems__pmem_zero_to(p, &fs, in->data + lo,
					       (size_t)(live - lo));
		if (e == 0)
			e = vems__flush_done(p, &fs);
		if (e)
			pmemobj_tx_abort(EIO);
		vems__pmem_drain(p);
		pmemobj_tx_add_range_direct(
			&r->flags, 2 * sizeof(uint32_t) + sizeof(uint64_t));
		r->inl = o.off;
		r->rcheck = vems__rec_check(r);
		if (!OID_IS_NULL(old))
			pmemobj_tx_free(old);
		*out = in;
	}
	TX_ONABORT
	{
		if (pmemobj_tx_errno() == EIO)
			ret = vems__fail(-EIO, "msync of pmem failed");
		else
			ret = vems__fail(VEMS__NOMETA,
					 "no pmem for a small object's data: "
					 "%s",
					 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

int
vems__inline_replace(struct vems_pool *p, struct vems_objnode *n, uint64_t cap,
		     uint64_t keep, const uint8_t *src, uint64_t off,
		     size_t len, uint64_t live)
{
	if (vems__fault_apply('I', 0, (uint32_t)cap) < 0)
		return vems__fail(VEMS__NOMETA,
				  "no pmem for a small object's data "
				  "(injected)");
	struct vems_inline *volatile in = NULL;
	int ret = tx_replace(p, n, cap, keep, src, off, len, live, &in);
	if (ret == 0)
		set_block(p, n, in);
	return ret;
}

static int
tx_drop(struct vems_pool *p, struct vems_objnode *n)
{
	volatile int ret = 0;
	struct vems_obj_rec *r = n->rec;
	PMEMoid old = vems__pool_oid(p, r->inl);
	TX_BEGIN(p->pop)
	{
		pmemobj_tx_add_range_direct(
			&r->flags, 2 * sizeof(uint32_t) + sizeof(uint64_t));
		r->inl = 0;
		r->rcheck = vems__rec_check(r);
		pmemobj_tx_free(old);
	}
	TX_ONABORT
	{
		ret = vems__fail(-ENOMEM,
				 "cannot free a small object's data: %s",
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

int
vems__inline_drop(struct vems_pool *p, struct vems_objnode *n)
{
	int ret = tx_drop(p, n);
	if (ret == 0)
		set_block(p, n, NULL);
	return ret;
}

void
vems__inline_tx_free(struct vems_pool *p, struct vems_objnode *n)
{
	if (n->rec->inl)
		pmemobj_tx_free(vems__pool_oid(p, n->rec->inl));
}

/* --- eviction ------------------------------------------------------------- */

struct ev {
	struct vems_objnode *n; /* valid while meta_lock is held */
	uint64_t serial;
	uint32_t gen, slot, crc, entry;
	uint8_t *buf;
	bool live;
	struct vems_bio bio;
};

static bool
meta_rdlock(struct vems_pool *p, struct vems_objnode *held)
{
	/* a caller holding an object must not wait for meta_lock (see
	 * spill.c's lock_meta) */
	if (held)
		return pthread_rwlock_tryrdlock(&p->meta_lock) == 0;
	pthread_rwlock_rdlock(&p->meta_lock);
	return true;
}

/*
 * The clock's choice: up to max cold inline objects. The hand is the
 * list's tail; each object it passes goes to the head, and one whose bit is
 * set only loses the bit. inl_lock held.
 */
static size_t
pick_locked(struct vems_pool *p, uint64_t want, struct vems_objnode *held,
	    struct ev *v, size_t max)
{
	size_t nv = 0;
	uint64_t got = 0;
	uint64_t budget = 2 * atomic_load(&p->inl_count) + 1;
	while (nv < max && got < want && budget-- > 0 && p->inl_tail) {
		struct vems_objnode *c = p->inl_tail;
		list_unlink_locked(p, c);
		list_push_locked(p, c);
		if (c == held || c->removing ||
		    atomic_exchange(&c->inl_ref, false))
			continue;
		bool again = false;
		for (size_t i = 0; i < nv && !again; i++)
			again = v[i].n == c;
		if (again)
			break; /* the hand went round */
		v[nv++] = (struct ev){.n = c, .serial = c->serial};
		got += vems__inline_bytes(p, c->inl);
	}
	return nv;
}

/* Phase a: the object's bytes copied out, a slot claimed and its page
 * checks filled; meta_lock held. false: not this one now. */
static bool
prepare(struct vems_pool *p, struct ev *e, bool *block_full)
{
	struct vems_objnode *n = e->n;
	if (!vems__obj_trylock(n, NULL, false))
		return false;
	bool ok = n->inl != NULL;
	if (ok && (e->buf = vems__bounce_alloc(p, p->extent_size)) == NULL)
		ok = false;
	if (ok) {
		uint64_t size = vems__rec_size(n->rec);
		memcpy(e->buf, n->inl->data, (size_t)size);
		memset(e->buf + size, 0, (size_t)(p->extent_size - size));
		e->gen =
			atomic_load_explicit(&n->inl_gen, memory_order_relaxed);
	}
	vems__rw_unlock(&n->lock);
	if (ok && !vems__slot_alloc(p, &e->slot)) {
		*block_full = true;
		ok = false;
	}
	if (!ok) {
		free(e->buf);
		e->buf = NULL;
		return false;
	}
	e->crc = vems__pchecks_fill(p, e->slot, e->buf);
	e->bio = (struct vems_bio){.buf = e->buf,
				   .off = vems__slot_off(p, e->slot),
				   .len = (uint32_t)p->extent_size,
				   .write = true,
				   .res = VEMS_BIO_PENDING};
	return true;
}

/* Phase c for one object, locked exclusively: 1 moved, 0 changed
 * meanwhile (nothing done), or -errno. */
static int
commit_one(struct vems_pool *p, struct vems_objnode *n, struct ev *e)
{
	if (n->inl == NULL ||
	    atomic_load_explicit(&n->inl_gen, memory_order_relaxed) != e->gen)
		return 0;
	pthread_mutex_lock(&p->alloc_lock);
	bool have = vems__fl_pop(&p->free_entries, &e->entry);
	pthread_mutex_unlock(&p->alloc_lock);
	if (!have)
		return vems__fail(-ENOSPC,
				  "the extent table is full (%u "
				  "entries)",
				  p->nentries);
	int ret = 0;
	if (vems__xidx_put(&n->idx, 0, e->entry))
		ret = vems__fail(-ENOMEM, "out of memory");
	if (ret == 0 &&
	    (ret = vems__ext_commit_block(p, n, e->entry, 0, e->slot,
					  e->crc)) != 0) {
		/* an msync failed: the pool has failed, and the entry and
		 * slot stay out of use until it is reopened */
		vems__xidx_del(&n->idx, 0);
		return ret;
	}
	if (ret == 0 && (ret = vems__inline_drop(p, n)) != 0) {
		vems__xidx_del(&n->idx, 0);
		if (vems__ext_uncommit(p, e->entry))
			return ret; /* as above */
	}
	if (ret) {
		pthread_mutex_lock(&p->alloc_lock);
		vems__fl_push(&p->free_entries, e->entry);
		pthread_mutex_unlock(&p->alloc_lock);
		return ret;
	}
	vems__ext_block_adopt(p, n, e->slot);
	struct vems_counters *c = VEMS_STATS(p);
	VEMS_STAT_ADD_TO(c, inline_evictions, 1);
	VEMS_STAT_ADD_TO(c, spills, 1);
	VEMS_STAT_ADD_TO(c, bytes_spilled, p->extent_size);
	return 1;
}

int64_t
vems__inline_evict(struct vems_pool *p, uint64_t want,
		   struct vems_objnode *held)
{
	int ret = vems__pool_writable(p);
	if (ret)
		return ret;
	struct ev v[EVICT_BATCH];
	struct vems_bio *bios[EVICT_BATCH];
	size_t nio = 0;
	bool block_full = false;

	if (!meta_rdlock(p, held))
		return 0;
	pthread_mutex_lock(&p->inl_lock);
	size_t nv = pick_locked(p, want, held, v, EVICT_BATCH);
	pthread_mutex_unlock(&p->inl_lock);
	for (size_t i = 0; i < nv; i++) {
		v[i].live = prepare(p, &v[i], &block_full);
		if (v[i].live)
			bios[nio++] = &v[i].bio;
	}
	pthread_rwlock_unlock(&p->meta_lock);

	/* b: the writes and one sync, no lock held */
	int io_err = nio ? vems__bio_run(p, bios, nio, true) : 0;

	int64_t freed = 0;
	int err = 0;
	bool have_meta = meta_rdlock(p, held);
	for (size_t i = 0; i < nv; i++) {
		struct ev *e = &v[i];
		if (!e->live)
			continue;
		int r = 0;
		struct vems_objnode *n =
			have_meta ? vems__obj_by_serial(p, e->serial) : NULL;
		if (e->bio.res == 0 && n && !n->removing &&
		    vems__obj_trylock(n, NULL, true)) {
			uint64_t b = n->inl ? vems__inline_bytes(p, n->inl) : 0;
			r = commit_one(p, n, e);
			vems__rw_unlock(&n->lock);
			if (r == 1) {
				freed += (int64_t)b;
				free(e->buf);
				continue;
			}
			if (r < 0 && err == 0)
				err = r;
			if (r < 0 && vems__pool_failed(p)) {
				free(e->buf);
				continue; /* the slot stays named */
			}
		}
		if (e->bio.res == VEMS_BIO_PENDING)
			continue; /* the kernel may still use buf and slot */
		vems__slot_free(p, e->slot);
		free(e->buf);
	}
	if (have_meta)
		pthread_rwlock_unlock(&p->meta_lock);
	if (freed > 0)
		return freed;
	if (io_err)
		return io_err;
	if (err)
		return err;
	if (block_full)
		return vems__fail(-ENOSPC,
				  "both tiers are full: pmem and the block "
				  "file %s (%u extents)",
				  p->block_path, p->nslots);
	return 0;
}
