/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * object.c -- the object table: create, remove, open, close, stat, list
 *
 * Object records are libpmemobj allocations of type VEMS_TYPE_OBJ, created
 * and freed in transactions; open finds them all with POBJ_FOREACH, so no
 * persistent table or list has to be kept in step with them.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vems_internal.h"

static uint64_t
oid_hash(const struct vems_oid *oid)
{
	return vems__hash64(oid->partition, oid->id);
}

/* Caller holds meta_lock (either mode). */
struct vems_objnode *
vems__obj_find(struct vems_pool *p, const struct vems_oid *oid)
{
	uint64_t h = oid_hash(oid);
	for (struct vems_hnode *e = vems__htab_first(&p->objects, h); e;
	     e = vems__htab_next_same(e)) {
		struct vems_objnode *n =
			vems_container_of(e, struct vems_objnode, by_oid);
		if (n->oid.partition == oid->partition && n->oid.id == oid->id)
			return n;
	}
	return NULL;
}

static struct vems_objnode *
node_new(PMEMoid rec_oid)
{
	struct vems_objnode *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->rec_oid = rec_oid;
	n->rec = pmemobj_direct(rec_oid);
	n->oid.partition = n->rec->partition;
	n->oid.id = n->rec->id;
	n->serial = n->rec->serial;
	n->mtime_ns = n->rec->mtime_ns;
	pthread_rwlock_init(&n->lock, NULL);
	vems__xidx_init(&n->idx);
	return n;
}

void
vems__obj_free_node(struct vems_objnode *n)
{
	vems__xidx_fini(&n->idx);
	pthread_rwlock_destroy(&n->lock);
	free(n);
}

/* At open: one object record into DRAM. */
int
vems__obj_load(struct vems_pool *p, PMEMoid rec_oid)
{
	if (pmemobj_alloc_usable_size(rec_oid) < sizeof(struct vems_obj_rec))
		return vems__fail(VEMS_E_CORRUPT, "%s: short object record",
				  p->pmem_path);
	struct vems_obj_rec *r = pmemobj_direct(rec_oid);
	struct vems_oid oid = {r->partition, r->id};
	if (r->id == 0 || r->serial == 0 || r->size > VEMS_OBJ_MAX_SIZE)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: object record %" PRIu64 ".%" PRIu64
				  " is invalid",
				  p->pmem_path, r->partition, r->id);
	if (vems__obj_find(p, &oid))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: object %" PRIu64 ".%" PRIu64
				  " recorded twice",
				  p->pmem_path, r->partition, r->id);
	struct vems_objnode *n = node_new(rec_oid);
	if (n == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	vems__htab_insert(&p->objects, &n->by_oid, oid_hash(&oid));
	vems__htab_insert(&p->serials, &n->by_serial, n->serial);
	p->nobjects++;
	return 0;
}

int
vems_obj_create(struct vems_pool *p, struct vems_oid *oid)
{
	if (p == NULL || oid == NULL)
		return vems__fail(-EINVAL, "vems_obj_create: pool or oid NULL");
	int ret = 0;
	pthread_rwlock_wrlock(&p->meta_lock);
	struct vems_oid want = *oid;
	if (want.id == 0) {
		want.id = p->sb->next_id;
		while (want.id == 0 || vems__obj_find(p, &want))
			want.id++;
	} else if (vems__obj_find(p, &want)) {
		ret = vems__fail(-EEXIST,
				 "object %" PRIu64 ".%" PRIu64 " exists",
				 want.partition, want.id);
		goto out;
	}
	PMEMoid rec_oid = OID_NULL;
	struct vems_super *sb = p->sb;
	TX_BEGIN(p->pop)
	{
		rec_oid = pmemobj_tx_alloc(sizeof(struct vems_obj_rec),
					   VEMS_TYPE_OBJ);
		struct vems_obj_rec *r = pmemobj_direct(rec_oid);
		memset(r, 0, sizeof(*r));
		r->partition = want.partition;
		r->id = want.id;
		pmemobj_tx_add_range_direct(&sb->next_id, 2 * sizeof(uint64_t));
		r->serial = sb->next_serial++;
		if (oid->id == 0)
			sb->next_id = want.id + 1;
		r->ctime_ns = r->mtime_ns = vems__now_ns();
	}
	TX_ONABORT
	{
		ret = vems__fail(-ENOSPC,
				 "no metadata space for a new object: %s",
				 pmemobj_errormsg());
	}
	TX_END
	if (ret)
		goto out;
	struct vems_objnode *n = node_new(rec_oid);
	if (n == NULL) {
		/* keep DRAM and pmem in step: undo the creation */
		pmemobj_free(&rec_oid);
		ret = vems__fail(-ENOMEM, "out of memory");
		goto out;
	}
	vems__htab_insert(&p->objects, &n->by_oid, oid_hash(&want));
	vems__htab_insert(&p->serials, &n->by_serial, n->serial);
	p->nobjects++;
	*oid = want;
out:
	pthread_rwlock_unlock(&p->meta_lock);
	return ret;
}

struct collect {
	uint32_t *ext, *entry;
	size_t n;
	uint64_t from;
};

static void
collect_fn(uint32_t ext, uint32_t entry, void *arg)
{
	struct collect *c = arg;
	if (ext >= c->from) {
		c->ext[c->n] = ext;
		c->entry[c->n] = entry;
		c->n++;
	}
}

/*
 * Frees the extents at or past from_ext of an object whose size (or whose
 * record) no longer covers them. Caller holds n->lock exclusively, or owns
 * n outright. Each entry's serial is cleared (the commit point of the free)
 * and fenced before its frame, slot and entry can be handed out again.
 */
int
vems__obj_free_extents(struct vems_pool *p, struct vems_objnode *n,
		       uint64_t from_ext)
{
	if (n->idx.count == 0)
		return 0;
	struct collect c = {malloc(n->idx.count * sizeof(uint32_t)),
			    malloc(n->idx.count * sizeof(uint32_t)), 0,
			    from_ext};
	if (c.ext == NULL || c.entry == NULL) {
		free(c.ext);
		free(c.entry);
		return vems__fail(-ENOMEM, "out of memory");
	}
	vems__xidx_foreach(&n->idx, collect_fn, &c);
	int ret = 0;
	for (size_t i = 0; i < c.n && ret == 0; i++)
		ret = vems__pmem_store64(p, &p->entries[c.entry[i]].serial, 0);
	vems__pmem_drain(p); /* frees durable before any reuse */
	if (ret) {
		free(c.ext);
		free(c.entry);
		return ret;
	}
	for (size_t i = 0; i < c.n; i++) {
		struct vems_entry *e = &p->entries[c.entry[i]];
		if (e->state == VEMS_ES_PMEM || e->state == VEMS_ES_BOTH)
			vems__frame_free(p, e->frame);
		if (e->state == VEMS_ES_BOTH || e->state == VEMS_ES_BLOCK)
			vems__slot_free(p, e->slot);
		n->nstate[e->state]--;
		atomic_fetch_sub(&p->nstate[e->state], 1);
	}
	pthread_mutex_lock(&p->alloc_lock);
	for (size_t i = 0; i < c.n; i++)
		vems__fl_push(&p->free_entries, c.entry[i]);
	pthread_mutex_unlock(&p->alloc_lock);
	for (size_t i = 0; i < c.n; i++)
		vems__xidx_del(&n->idx, c.ext[i]);
	VEMS_STAT_ADD(p, extents_freed, c.n);
	free(c.ext);
	free(c.entry);
	return 0;
}

/*
 * Names and record go in one transaction: the crash-atomic step. In a
 * function of its own because TX_BEGIN is a setjmp(): the caller's lookup
 * cursor (vems__obj_find, inlined) would share its frame, and gcc at -O3
 * cannot prove it is not read after an abort's longjmp (-Wclobbered). A
 * function calling setjmp is never inlined; its only state is unchanged
 * arguments and a volatile result.
 */
static int
tx_remove(PMEMobjpool *pop, struct vems_name **names, size_t nnames,
	  PMEMoid rec_oid)
{
	volatile int ret = 0;
	TX_BEGIN(pop)
	{
		vems__names_tx_free(names, nnames);
		pmemobj_tx_free(rec_oid);
	}
	TX_ONABORT
	{
		ret = vems__fail(-ENOMEM, "cannot remove object: %s",
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

int
vems_obj_remove(struct vems_pool *p, struct vems_oid oid)
{
	if (p == NULL)
		return vems__fail(-EINVAL, "vems_obj_remove: pool is NULL");
	int ret = 0;
	pthread_rwlock_wrlock(&p->meta_lock);
	struct vems_objnode *n = vems__obj_find(p, &oid);
	if (n == NULL) {
		ret = vems__fail(-ENOENT, "no object %" PRIu64 ".%" PRIu64,
				 oid.partition, oid.id);
		goto out;
	}
	if (n->opens > 0) {
		ret = vems__fail(-EBUSY,
				 "object %" PRIu64 ".%" PRIu64
				 " has %d open handle(s)",
				 oid.partition, oid.id, n->opens);
		goto out;
	}
	struct vems_name **names;
	size_t nnames;
	if (vems__names_of_oid(p, &oid, &names, &nnames) != 0) {
		ret = vems__fail(-ENOMEM, "out of memory");
		goto out;
	}
	ret = tx_remove(p->pop, names, nnames, n->rec_oid);
	if (ret == 0)
		vems__names_drop(p, names, nnames);
	free(names);
	if (ret)
		goto out;
	vems__htab_remove(&p->objects, &n->by_oid);
	vems__htab_remove(&p->serials, &n->by_serial);
	p->nobjects--;
	/*
	 * The record is gone, so its entries are orphans: a crash now would
	 * free them at the next open. Free them now for reuse.
	 */
	ret = vems__obj_free_extents(p, n, 0);
	vems__obj_free_node(n);
out:
	pthread_rwlock_unlock(&p->meta_lock);
	return ret;
}

int
vems_obj_open(struct vems_pool *p, struct vems_oid oid, unsigned flags,
	      struct vems_obj **objp)
{
	if (p == NULL || objp == NULL)
		return vems__fail(-EINVAL, "vems_obj_open: pool or obj NULL");
	*objp = NULL;
	if (flags & ~(VEMS_O_RDONLY | VEMS_O_NODRAIN))
		return vems__fail(-EINVAL, "vems_obj_open: unknown flags %#x",
				  flags);
	struct vems_obj *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	pthread_rwlock_wrlock(&p->meta_lock);
	struct vems_objnode *n = vems__obj_find(p, &oid);
	if (n == NULL) {
		pthread_rwlock_unlock(&p->meta_lock);
		free(h);
		return vems__fail(-ENOENT, "no object %" PRIu64 ".%" PRIu64,
				  oid.partition, oid.id);
	}
	n->opens++;
	h->pool = p;
	h->node = n;
	h->flags = flags;
	h->next = p->handles;
	if (p->handles)
		p->handles->prev = h;
	p->handles = h;
	pthread_rwlock_unlock(&p->meta_lock);
	*objp = h;
	return 0;
}

int
vems_obj_close(struct vems_obj **objp)
{
	if (objp == NULL || *objp == NULL)
		return 0;
	struct vems_obj *h = *objp;
	struct vems_pool *p = h->pool;
	int ret = vems_obj_persist(h);
	pthread_rwlock_wrlock(&p->meta_lock);
	h->node->opens--;
	if (h->prev)
		h->prev->next = h->next;
	else
		p->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_rwlock_unlock(&p->meta_lock);
	free(h);
	*objp = NULL;
	return ret;
}

static void
fill_stat(struct vems_pool *p, struct vems_objnode *n, struct vems_obj_stat *st)
{
	pthread_rwlock_rdlock(&n->lock);
	memset(st, 0, sizeof(*st));
	st->oid = n->oid;
	st->size = n->rec->size;
	st->ctime_ns = n->rec->ctime_ns;
	st->mtime_ns = n->mtime_ns;
	st->extents_pmem = n->nstate[VEMS_ES_PMEM];
	st->extents_both = n->nstate[VEMS_ES_BOTH];
	st->extents_block = n->nstate[VEMS_ES_BLOCK];
	st->pmem_bytes = (st->extents_pmem + st->extents_both) * p->extent_size;
	st->block_bytes =
		(st->extents_both + st->extents_block) * p->extent_size;
	pthread_rwlock_unlock(&n->lock);
}

int
vems_obj_stat(struct vems_obj *obj, struct vems_obj_stat *st)
{
	if (obj == NULL || st == NULL)
		return vems__fail(-EINVAL, "vems_obj_stat: obj or st NULL");
	fill_stat(obj->pool, obj->node, st);
	return 0;
}

int
vems_obj_stat_oid(struct vems_pool *p, struct vems_oid oid,
		  struct vems_obj_stat *st)
{
	if (p == NULL || st == NULL)
		return vems__fail(-EINVAL, "vems_obj_stat_oid: NULL argument");
	pthread_rwlock_rdlock(&p->meta_lock);
	struct vems_objnode *n = vems__obj_find(p, &oid);
	if (n)
		fill_stat(p, n, st);
	pthread_rwlock_unlock(&p->meta_lock);
	if (n == NULL)
		return vems__fail(-ENOENT, "no object %" PRIu64 ".%" PRIu64,
				  oid.partition, oid.id);
	return 0;
}

static int
oid_cmp(const void *a, const void *b)
{
	const struct vems_oid *x = a, *y = b;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return 0;
}

int
vems_obj_list(struct vems_pool *p, vems_oid_fn fn, void *arg)
{
	if (p == NULL || fn == NULL)
		return vems__fail(-EINVAL, "vems_obj_list: NULL argument");
	pthread_rwlock_rdlock(&p->meta_lock);
	size_t n = 0, cap = p->nobjects;
	struct vems_oid *v = malloc((cap ? cap : 1) * sizeof(*v));
	if (v == NULL) {
		pthread_rwlock_unlock(&p->meta_lock);
		return vems__fail(-ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->objects.nbuckets; i++)
		for (struct vems_hnode *e = p->objects.buckets[i]; e;
		     e = e->next)
			v[n++] = vems_container_of(e, struct vems_objnode,
						   by_oid)
					 ->oid;
	pthread_rwlock_unlock(&p->meta_lock);
	/* callbacks run unlocked, so they may call back into the pool */
	qsort(v, n, sizeof(*v), oid_cmp);
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = fn(&v[i], arg);
	free(v);
	return ret;
}
