/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * check.c -- verify every metadata invariant of an open pool
 *
 * Holds the pool still while it compares the entry table, the DRAM index
 * and the free lists (the metadata lock exclusively and every object's
 * lock: CPU work only), and notes and pins the slots to read; the block
 * file is then read with nothing held, so I/O goes on meanwhile.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "extent.h"
#include "vems_internal.h"

struct checker {
	vems_report_fn report;
	void *arg;
	int problems;
};

__attribute__((format(printf, 2, 3))) static void
problem(struct checker *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c->problems++;
	if (c->report)
		c->report(buf, c->arg);
}

/* Every object that owns space: the live ones and those removed while
 * handles were open (still in use) */
static struct vems_objnode **
all_nodes(struct vems_pool *p, size_t *cnt)
{
	struct vems_objnode **v =
		malloc((p->nobjects + p->removed.count + 1) * sizeof(*v));
	size_t n = 0;
	if (v == NULL)
		return NULL;
	const struct vems_htab *t[] = {&p->objects, &p->removed};
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < t[k]->nbuckets; i++)
			for (struct vems_hnode *e = t[k]->buckets[i]; e;
			     e = e->next)
				v[n++] = vems_container_of(
					e, struct vems_objnode, by_oid);
	*cnt = n;
	return v;
}

static int
serial_cmp(const void *a, const void *b)
{
	uint64_t x = (*(struct vems_objnode *const *)a)->serial;
	uint64_t y = (*(struct vems_objnode *const *)b)->serial;
	return x < y ? -1 : x > y;
}

/* A small object's inline block against its record (object held). */
static void
check_inline(struct vems_pool *p, struct vems_objnode *n, struct checker *c,
	     uint64_t *ninl, uint64_t *bytes)
{
	const struct vems_obj_rec *r = n->rec;
	if (n->inl == NULL) {
		if (r->inl)
			problem(c,
				"object %" PRIu64 ":%" PRIu64 ": its record "
				"names inline data it does not use",
				n->oid.partition, n->oid.id);
		return;
	}
	(*ninl)++;
	*bytes += vems__inline_bytes(p, n->inl);
	const struct vems_inline *in = n->inl;
	if (r->inl != pmemobj_oid(in).off || in->serial != n->serial ||
	    in->check != vems__inline_check(in->serial, in->cap) ||
	    vems__rec_size(r) > in->cap)
		problem(c,
			"object %" PRIu64 ":%" PRIu64 ": inline data "
			"damaged (check value mismatch)",
			n->oid.partition, n->oid.id);
}

static struct vems_objnode *
find_serial(struct vems_objnode **v, size_t cnt, uint64_t serial)
{
	size_t lo = 0, hi = cnt;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid]->serial < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < cnt && v[lo]->serial == serial ? v[lo] : NULL;
}

struct idx_walk {
	struct vems_pool *p;
	struct vems_objnode *n;
	struct checker *c;
};

static void
idx_fn(uint32_t ext, uint32_t entry, void *arg)
{
	struct idx_walk *w = arg;
	if (entry >= w->p->nentries) {
		problem(w->c,
			"object %" PRIu64 ":%" PRIu64 ": index names "
			"entry %u of %u",
			w->n->oid.partition, w->n->oid.id, entry,
			w->p->nentries);
		return;
	}
	const struct vems_entry *e = &w->p->entries[entry];
	if (e->serial != w->n->serial || e->ext_index != ext)
		problem(w->c,
			"object %" PRIu64 ":%" PRIu64 ": DRAM index "
			"maps extent %u to entry %u, which is not it",
			w->n->oid.partition, w->n->oid.id, ext, entry);
}

#define SLOT_BATCH 32

/* A mapped slot to verify, as the entry named it when the pool was held. */
struct slotref {
	uint32_t entry, slot, crc, ext;
	uint64_t serial;
	struct vems_oid oid;
};

static void
slot_problem(struct checker *c, struct vems_pool *p, const struct slotref *r,
	     const char *what)
{
	problem(c,
		"object %" PRIu64 ":%" PRIu64 " offset %" PRIu64
		": block slot %u %s",
		r->oid.partition, r->oid.id,
		(uint64_t)r->ext << p->extent_shift, r->slot, what);
}

/*
 * Phase 1, the pool held still: every slot a mapping names is noted and
 * pinned (so it cannot be reused while it is read), and a clean (BOTH)
 * extent's frame is compared with its CRC. Returns the list (or NULL
 * with *cnt 0 when there is nothing to read or no memory).
 */
static struct slotref *
snapshot_slots(struct vems_pool *p, struct vems_objnode **v, size_t cnt,
	       struct checker *c, size_t *nref)
{
	*nref = 0;
	size_t n = 0, cap = 0;
	for (uint32_t i = 0; i < p->nentries; i++) {
		const struct vems_entry *e = &p->entries[i];
		if (vems__entry_valid(e) &&
		    (e->state == VEMS_ES_BOTH || e->state == VEMS_ES_BLOCK))
			cap++;
	}
	struct slotref *r = cap ? malloc(cap * sizeof(*r)) : NULL;
	if (cap && r == NULL) {
		problem(c, "out of memory: block slots not verified");
		return NULL;
	}
	for (uint32_t i = 0; i < p->nentries && n < cap; i++) {
		const struct vems_entry *e = &p->entries[i];
		if (!vems__entry_valid(e) || e->slot >= p->nslots ||
		    (e->state != VEMS_ES_BOTH && e->state != VEMS_ES_BLOCK))
			continue;
		struct vems_objnode *o = find_serial(v, cnt, e->serial);
		if (o == NULL)
			continue; /* reported by the entry pass */
		r[n] = (struct slotref){
			i, e->slot, e->crc, e->ext_index, e->serial, o->oid};
		if (e->state == VEMS_ES_BOTH && e->frame < p->nframes &&
		    vems__frame_addr(p, e->frame) &&
		    vems__pchecks_crc(p, vems__frame_addr(p, e->frame)) !=
			    e->crc)
			slot_problem(c, p, &r[n],
				     "is clean but its pmem copy differs");
		vems__slot_pin(p, e->slot);
		n++;
	}
	*nref = n;
	return r;
}

/* Does the entry still name this slot with this CRC? (a mismatch found
 * without locks counts only if nothing changed the mapping meanwhile) */
static bool
still_mapped(struct vems_pool *p, const struct slotref *r)
{
	bool same = false;
	pthread_rwlock_rdlock(&p->meta_lock);
	struct vems_objnode *n = vems__obj_by_serial(p, r->serial);
	if (n) {
		vems__rw_rdlock(&n->lock);
		const struct vems_entry *e = &p->entries[r->entry];
		same = vems__entry_valid(e) && e->serial == r->serial &&
			e->ext_index == r->ext && e->slot == r->slot &&
			e->crc == r->crc &&
			(e->state == VEMS_ES_BOTH || e->state == VEMS_ES_BLOCK);
		vems__rw_unlock(&n->lock);
	}
	pthread_rwlock_unlock(&p->meta_lock);
	return same;
}

/*
 * Phase 2, nothing held (the pool serves I/O meanwhile): reads the pinned
 * slots and compares each with the CRC its entry had; unpins them all.
 * Returns 0: problems are counted in c.
 */
static int
check_slots(struct vems_pool *p, struct slotref *r, size_t nref,
	    struct checker *c)
{
	uint8_t *bufs = NULL;
	size_t a = p->be->align > 64 ? p->be->align : 64;
	bool keep = false; /* a read's ring failed: bufs may still change */
	if (nref &&
	    posix_memalign((void **)&bufs, a, SLOT_BATCH * p->extent_size)) {
		problem(c, "out of memory: block slots not verified");
		goto out;
	}
	for (size_t b = 0; b < nref && !keep; b += SLOT_BATCH) {
		size_t nb = nref - b < SLOT_BATCH ? nref - b : SLOT_BATCH;
		struct vems_bio bio[SLOT_BATCH], *bp[SLOT_BATCH];
		for (size_t k = 0; k < nb; k++) {
			bio[k] = (struct vems_bio){
				.buf = bufs + k * p->extent_size,
				.off = vems__slot_off(p, r[b + k].slot),
				.len = (uint32_t)p->extent_size,
				.res = VEMS_BIO_PENDING};
			bp[k] = &bio[k];
		}
		(void)vems__bio_run(p, bp, nb, false);
		for (size_t k = 0; k < nb; k++) {
			const struct slotref *x = &r[b + k];
			char what[96];
			if (bio[k].res == VEMS_BIO_PENDING)
				keep = true; /* may still be written */
			if (bio[k].res) {
				snprintf(what, sizeof(what),
					 "cannot be read: %s",
					 strerror(-bio[k].res));
				slot_problem(c, p, x, what);
				continue;
			}
			const uint32_t *row = vems__slot_pchecks(p, x->slot);
			uint32_t rc = vems__crc32c(row, (size_t)p->ppe * 4);
			uint32_t pg = 0, got = 0;
			if (rc == x->crc)
				for (; pg < p->ppe; pg++) {
					got = vems__crc32c(
						bio[k].buf +
							(size_t)pg *
								VEMS_PAGE_SIZE,
						VEMS_PAGE_SIZE);
					if (got != row[pg])
						break;
				}
			if ((rc != x->crc || pg < p->ppe) &&
			    still_mapped(p, x)) {
				if (rc != x->crc)
					snprintf(what, sizeof(what),
						 "has damaged page checks "
						 "(expected %08x, found %08x)",
						 x->crc, rc);
				else
					snprintf(what, sizeof(what),
						 "fails the checksum of page "
						 "%u (expected %08x, read "
						 "%08x)",
						 pg, row[pg], got);
				slot_problem(c, p, x, what);
			}
		}
	}
	if (keep)
		problem(c,
			"block reads lost in a failed ring: the rest of "
			"the slots not verified");
	else
		free(bufs);
out:
	for (size_t i = 0; i < nref; i++)
		vems__slot_unpin(p, r[i].slot);
	return 0;
}

int
vems_pool_check(struct vems_pool *p, vems_report_fn report, void *arg)
{
	if (p == NULL)
		return vems__fail(-EINVAL, "vems_pool_check: pool is NULL");
	struct checker c = {report, arg, 0};
	pthread_rwlock_wrlock(&p->meta_lock);
	size_t cnt = 0;
	struct vems_objnode **v = all_nodes(p, &cnt);
	uint8_t *fused = calloc(p->nframes, 1);
	uint8_t *sused = calloc(p->nslots + 1, 1);
	if (v == NULL || fused == NULL || sused == NULL) {
		pthread_rwlock_unlock(&p->meta_lock);
		free(v);
		free(fused);
		free(sused);
		return vems__fail(-ENOMEM, "out of memory");
	}
	qsort(v, cnt, sizeof(*v), serial_cmp);
	for (size_t i = 0; i < cnt; i++)
		vems__rw_wrlock(&v[i]->lock);
	pthread_mutex_lock(&p->alloc_lock);

	struct vems_super *sb = p->sb;
	if (sb->csum != vems__crc32c(sb, offsetof(struct vems_super, csum)))
		problem(&c, "superblock checksum mismatch");
	/* (the chunk being emptied for metadata is in flux: its slot is
	 * cleared before its DRAM address, both under alloc_lock's watch) */
	int64_t drain = atomic_load(&p->draining);
	for (uint32_t k = 0; k < p->nchunks; k++)
		if (k != drain && !vems__chunk_slot_ok(p, k))
			problem(&c,
				"chunk table slot %u is damaged or names "
				"another chunk than the one in use",
				k);
	for (size_t i = 1; i < cnt; i++)
		if (v[i]->serial == v[i - 1]->serial)
			problem(&c, "two objects share serial %" PRIu64,
				v[i]->serial);

	/* the entry table against the objects */
	uint64_t mapped = 0, nstate[4] = {0};
	for (uint32_t i = 0; i < p->nentries; i++) {
		const struct vems_entry *e = &p->entries[i];
		if (e->word == 0)
			continue;
		if (!vems__entry_valid(e)) {
			problem(&c, "entry %u: damaged (check value mismatch)",
				i);
			continue;
		}
		struct vems_objnode *n = find_serial(v, cnt, e->serial);
		if (n == NULL) {
			problem(&c,
				"entry %u belongs to no object (serial %" PRIu64
				")",
				i, e->serial);
			continue;
		}
		mapped++;
		if (n->inl)
			problem(&c,
				"entry %u: object %" PRIu64 ":%" PRIu64
				" is inline and has an extent too",
				i, n->oid.partition, n->oid.id);
		uint64_t size = vems__rec_size(n->rec);
		uint64_t next = (size + p->extent_size - 1) >> p->extent_shift;
		if (e->ext_index >= next)
			problem(&c,
				"entry %u: extent %u of object %" PRIu64
				":%" PRIu64 " lies past its size %" PRIu64,
				i, e->ext_index, n->oid.partition, n->oid.id,
				size);
		if (vems__xidx_get(&n->idx, e->ext_index) != i)
			problem(&c,
				"entry %u: not in the DRAM index of its "
				"object",
				i);
		bool in_pmem =
			e->state == VEMS_ES_PMEM || e->state == VEMS_ES_BOTH;
		bool in_block =
			e->state == VEMS_ES_BOTH || e->state == VEMS_ES_BLOCK;
		if (!in_pmem && !in_block) {
			problem(&c, "entry %u: invalid state %u", i, e->state);
			continue;
		}
		nstate[e->state]++;
		if (in_pmem &&
		    (e->frame >= p->nframes || !vems__frame_addr(p, e->frame) ||
		     fused[e->frame]++))
			problem(&c,
				"entry %u: frame %u out of range or "
				"shared",
				i, e->frame);
		if (in_block && (e->slot >= p->nslots || sused[e->slot]++))
			problem(&c, "entry %u: slot %u out of range or shared",
				i, e->slot);
	}
	/* the DRAM side against the entry table */
	uint64_t indexed = 0, ninl = 0, inl_bytes = 0;
	for (size_t i = 0; i < cnt; i++) {
		struct idx_walk w = {p, v[i], &c};
		vems__xidx_foreach(&v[i]->idx, idx_fn, &w);
		indexed += v[i]->idx.count;
		const struct vems_obj_rec *r = v[i]->rec;
		if (r->sizew != vems__sizew(vems__rec_size(r), r->serial))
			problem(&c,
				"object %" PRIu64 ":%" PRIu64 ": size word "
				"damaged (check value mismatch)",
				v[i]->oid.partition, v[i]->oid.id);
		if (r->rcheck != vems__rec_check(r))
			problem(&c,
				"object %" PRIu64 ":%" PRIu64 ": record "
				"damaged (check value mismatch)",
				v[i]->oid.partition, v[i]->oid.id);
		check_inline(p, v[i], &c, &ninl, &inl_bytes);
	}
	if (ninl != atomic_load(&p->inl_count) ||
	    inl_bytes != atomic_load(&p->inl_bytes))
		problem(&c,
			"%" PRIu64 " inline objects of %" PRIu64
			" bytes, the counters say %" PRIu64 " and %" PRIu64,
			ninl, inl_bytes, (uint64_t)atomic_load(&p->inl_count),
			(uint64_t)atomic_load(&p->inl_bytes));
	/* the heap walk, unless a chunk's reclaim (which takes no lock we
	 * hold out) is changing the heap right now */
	uint64_t heap_inl = ninl;
	if (pthread_mutex_trylock(&p->reclaim_lock) == 0) {
		PMEMoid ho;
		heap_inl = 0;
		POBJ_FOREACH(p->pop, ho)
		{
			heap_inl += pmemobj_type_num(ho) == VEMS_TYPE_INLINE;
		}
		pthread_mutex_unlock(&p->reclaim_lock);
	}
	if (heap_inl != ninl)
		problem(&c,
			"the heap holds %" PRIu64 " inline blocks, objects "
			"name %" PRIu64,
			heap_inl, ninl);
	if (indexed != mapped)
		problem(&c,
			"DRAM index holds %" PRIu64 " extents, the entry "
			"table %" PRIu64,
			indexed, mapped);
	for (int s = VEMS_ES_PMEM; s <= VEMS_ES_BLOCK; s++)
		if (nstate[s] != atomic_load(&p->nstate[s]))
			problem(&c,
				"state %d: %" PRIu64 " entries, counter "
				"says %" PRIu64,
				s, nstate[s],
				(uint64_t)atomic_load(&p->nstate[s]));
	/* free lists: exactly the unused frames and slots */
	for (uint32_t i = 0; i < p->free_frames.n; i++) {
		uint32_t f = p->free_frames.v[i];
		if (f >= p->nframes || !vems__frame_addr(p, f) || fused[f]++)
			problem(&c, "frame %u is free and in use, or is none",
				f);
	}
	/* parked: free, in a chunk being emptied for metadata (chunk.c) */
	for (uint32_t i = 0; i < p->parked; i++) {
		uint32_t f = p->parked_v[i];
		if (fused[f]++)
			problem(&c, "frame %u is parked and in use", f);
	}
	for (uint32_t f = 0; f < p->nframes; f++)
		if (!fused[f] && vems__frame_addr(p, f))
			problem(&c, "frame %u is neither free nor used", f);
	for (uint32_t i = 0; i < p->free_slots.n; i++) {
		uint32_t s = p->free_slots.v[i];
		if (s >= p->nslots || sused[s]++)
			problem(&c, "slot %u is free and in use", s);
	}
	for (uint32_t s = 0; s < p->nslots; s++)
		if (!sused[s] && p->slot_flags[s]) /* in flight, or pinned */
			sused[s] = 1;
	for (uint32_t s = 0; s < p->nslots; s++)
		if (!sused[s])
			problem(&c, "slot %u is neither free nor used", s);
	if (p->free_entries.n + mapped != p->nentries)
		problem(&c, "%u free entries + %" PRIu64 " mapped != %u",
			p->free_entries.n, mapped, p->nentries);

	/* names */
	for (size_t i = 0; i < p->names.nbuckets; i++)
		for (struct vems_hnode *e = p->names.buckets[i]; e;
		     e = e->next) {
			struct vems_name *nm =
				vems_container_of(e, struct vems_name, node);
			struct vems_oid o = {nm->rec->partition, nm->rec->id};
			if (vems__obj_find(p, &o) == NULL)
				problem(&c,
					"name \"%.128s\" is bound to "
					"missing object %" PRIu64 ":%" PRIu64,
					nm->rec->name, o.partition, o.id);
		}

	pthread_mutex_unlock(&p->alloc_lock);
	/* which slots to read, noted and pinned with every object held */
	size_t nref;
	struct slotref *refs = snapshot_slots(p, v, cnt, &c, &nref);
	for (size_t i = cnt; i-- > 0;)
		vems__rw_unlock(&v[i]->lock);
	c.problems += vems__block_check(p, report, arg);
	pthread_rwlock_unlock(&p->meta_lock);
	free(v);
	free(fused);
	free(sused);
	/* the block copies, read with nothing held: I/O goes on meanwhile */
	c.problems += check_slots(p, refs, nref, &c);
	free(refs);
	return c.problems;
}
