/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * object.c -- the object table: create, remove, open, close, stat, list
 *
 * Object records are libpmemobj allocations of type VEMS_TYPE_OBJ, created
 * and freed in transactions; open finds them all with POBJ_FOREACH, so no
 * persistent table or list has to be kept in step with them. Each record
 * verifies on its own (layout.h): rcheck over the fields that change in
 * transactions, a check value inside the size word for the size.
 *
 * Removal is two-phase so that open never has to guess: a transaction
 * unbinds the names and marks the record VEMS_OBJ_REMOVING (the commit
 * point: the object is gone), then its extents are freed (extent.c), then
 * a second transaction frees the record. Open finishes a marked removal.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "extent.h"
#include "vems_internal.h"

static uint64_t
oid_hash(const struct vems_oid *oid)
{
	return vems__hash64(oid->partition, oid->id);
}

/* CRC-32C of an object record's transactional fields. */
uint32_t
vems__rec_check(const struct vems_obj_rec *r)
{
	struct {
		uint64_t partition, id, serial;
		int64_t ctime_ns;
		uint32_t flags, magic;
		uint64_t inl;
	} b;
	memset(&b, 0, sizeof(b));
	b.partition = r->partition;
	b.id = r->id;
	b.serial = r->serial;
	b.ctime_ns = r->ctime_ns;
	b.flags = r->flags;
	b.inl = r->inl;
	b.magic = 0x4f424a52u; /* "OBJR": a zeroed record never verifies */
	return vems__crc32c(&b, sizeof(b));
}

/*
 * The size word: the size (< 2^43) in the low 48 bits and 16 bits of
 * check above. The check is CRC-32C of (size, serial) folded to 16 bits;
 * tests/test_object.c proves that it detects every single damaged byte of
 * the word, since a CRC's change depends only on the change of its input.
 */
uint64_t
vems__sizew(uint64_t size, uint64_t serial)
{
	uint64_t b[2] = {size, serial};
	uint32_t c = vems__crc32c(b, sizeof(b));
	uint64_t c16 = (c ^ (c >> 16)) & 0xffff;
	return size | (c16 << VEMS_SIZEW_BITS);
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
	vems__rw_init(&n->lock);
	vems__xidx_init(&n->idx);
	return n;
}

void
vems__obj_free_node(struct vems_objnode *n)
{
	vems__xidx_fini(&n->idx);
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
	uint64_t size = vems__rec_size(r);
	if (r->rcheck != vems__rec_check(r) || r->id == 0 || r->serial == 0 ||
	    (r->flags & ~VEMS_OBJ_REMOVING))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: object record %" PRIu64 ":%" PRIu64
				  " is damaged (check value mismatch): left "
				  "as it is for repair",
				  p->pmem_path, r->partition, r->id);
	if (r->sizew != vems__sizew(size, r->serial) ||
	    size > VEMS_OBJ_MAX_SIZE)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: object %" PRIu64 ":%" PRIu64
				  ": its size word is damaged (check value "
				  "mismatch): left as it is for repair",
				  p->pmem_path, r->partition, r->id);
	bool removing = (r->flags & VEMS_OBJ_REMOVING) != 0;
	/* a record whose removal was under way may share its id with a live
	 * object created after the removal's commit point */
	if (!removing && vems__obj_find(p, &oid))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: object %" PRIu64 ":%" PRIu64
				  " recorded twice",
				  p->pmem_path, r->partition, r->id);
	if (vems__obj_by_serial(p, r->serial))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: object %" PRIu64 ":%" PRIu64
				  " shares serial %" PRIu64 " with another",
				  p->pmem_path, r->partition, r->id, r->serial);
	struct vems_objnode *n = node_new(rec_oid);
	if (n == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	n->removing = removing;
	vems__htab_insert(&p->serials, &n->by_serial, n->serial);
	if (n->removing)
		return 0; /* its entries find it; users do not */
	vems__htab_insert(&p->objects, &n->by_oid, oid_hash(&oid));
	p->nobjects++;
	return 0;
}

/* Frees an object's record in a transaction; 0 or -1. */
static int
free_record(struct vems_pool *p, struct vems_objnode *n)
{
	volatile int ret = 0;
	TX_BEGIN(p->pop)
	{
		vems__super_tx_count(p->sb, -1, 0);
		vems__inline_tx_free(p, n);
		pmemobj_tx_free(n->rec_oid);
	}
	TX_ONABORT
	{
		ret = -1;
	}
	TX_END
	return ret;
}

/*
 * At open, after the entry pass freed their extents: the records whose
 * removal was under way go (a transaction each).
 */
int
vems__obj_finish_removals(struct vems_pool *p)
{
	for (size_t i = 0; i < p->serials.nbuckets; i++) {
		struct vems_hnode *e = p->serials.buckets[i];
		while (e) {
			struct vems_hnode *next = e->next;
			struct vems_objnode *n = vems_container_of(
				e, struct vems_objnode, by_serial);
			if (n->removing) {
				if (free_record(p, n))
					return vems__fail(
						-ENOSPC,
						"cannot finish removing an "
						"object: %s",
						pmemobj_errormsg());
				vems__inline_unlink(p, n);
				vems__htab_remove(&p->serials, &n->by_serial);
				vems__obj_free_node(n);
			}
			e = next;
		}
	}
	return 0;
}

/*
 * Creates the object and, if name is not NULL, binds name to it in the
 * same transaction: after a crash both are there or neither is.
 */
static int
obj_create_once(struct vems_pool *p, struct vems_oid *oid, const char *name)
{
	volatile int ret = vems__pool_writable(p);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&p->meta_lock);
	struct vems_oid want = *oid;
	size_t nlen = 0;
	if (name && (ret = vems__name_can_bind(p, name, &nlen)) != 0)
		goto out;
	if (want.id == 0) {
		want.id = p->sb->next_id;
		while (want.id == 0 || vems__obj_taken(p, &want))
			want.id++;
	} else if (vems__obj_taken(p, &want)) {
		ret = vems__fail(-EEXIST,
				 "object %" PRIu64 ":%" PRIu64 " exists",
				 want.partition, want.id);
		goto out;
	}
	PMEMoid rec_oid = OID_NULL, name_oid = OID_NULL;
	struct vems_super *sb = p->sb;
	TX_BEGIN(p->pop)
	{
		rec_oid = pmemobj_tx_alloc(sizeof(struct vems_obj_rec),
					   VEMS_TYPE_OBJ);
		struct vems_obj_rec *r = pmemobj_direct(rec_oid);
		memset(r, 0, sizeof(*r));
		r->partition = want.partition;
		r->id = want.id;
		vems__super_tx_count(sb, 1, 0); /* adds the counters' range */
		r->serial = sb->next_serial++;
		if (oid->id == 0)
			sb->next_id = want.id + 1;
		sb->mcheck = vems__super_mcheck(sb);
		r->ctime_ns = r->mtime_ns = vems__now_ns();
		r->sizew = vems__sizew(0, r->serial);
		r->rcheck = vems__rec_check(r);
		if (name)
			name_oid = vems__name_tx_new(p, name, nlen, &want);
	}
	TX_ONABORT
	{
		ret = vems__fail(VEMS__NOMETA,
				 "no metadata space for a new object: %s",
				 pmemobj_errormsg());
	}
	TX_END
	if (ret)
		goto out;
	struct vems_objnode *n = node_new(rec_oid);
	if (n == NULL || (name && vems__name_add(p, name_oid) != 0)) {
		/* keep DRAM and pmem in step: undo the creation (the id and
		 * serial stay used: they are never handed out twice) */
		TX_BEGIN(p->pop)
		{
			vems__super_tx_count(sb, -1, name ? -1 : 0);
			if (name)
				pmemobj_tx_free(name_oid);
			pmemobj_tx_free(rec_oid);
		}
		TX_END
		if (n)
			vems__obj_free_node(n);
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

static int
obj_create(struct vems_pool *p, struct vems_oid *oid, const char *name)
{
	int ret = obj_create_once(p, oid, name);
	for (int k = 0; ret == VEMS__NOMETA; k++) {
		/* the heap is full: a data chunk becomes metadata space */
		if (k == VEMS__META_TRIES)
			return vems__fail(-ENOSPC,
					  "no metadata space for a new object "
					  "(pmem heap fragmented)");
		if ((ret = vems__meta_full(p, "a new object")) == 0)
			ret = obj_create_once(p, oid, name);
	}
	return ret;
}

int
vems_obj_create(struct vems_pool *p, struct vems_oid *oid)
{
	if (p == NULL || oid == NULL)
		return vems__fail(-EINVAL, "vems_obj_create: pool or oid NULL");
	return obj_create(p, oid, NULL);
}

int
vems_obj_create_named(struct vems_pool *p, const char *name,
		      struct vems_oid *oid)
{
	if (p == NULL || oid == NULL)
		return vems__fail(-EINVAL,
				  "vems_obj_create_named: pool or oid NULL");
	if (name == NULL)
		return vems__fail(-EINVAL, "name is NULL");
	return obj_create(p, oid, name);
}

/*
 * The commit point of a removal: names unbound and the record marked, in
 * one transaction. In a function of its own because TX_BEGIN is a
 * setjmp(): the caller's lookup cursor (vems__obj_find, inlined) would
 * share its frame, and gcc at -O3 cannot prove it is not read after an
 * abort's longjmp (-Wclobbered). A function calling setjmp is never
 * inlined; its only state is unchanged arguments and a volatile result.
 */
static int
tx_mark_removed(struct vems_pool *p, struct vems_obj_rec *r,
		struct vems_name **names, size_t nnames)
{
	volatile int ret = 0;
	TX_BEGIN(p->pop)
	{
		vems__names_tx_free(names, nnames);
		vems__super_tx_count(p->sb, 0, -(int)nnames);
		pmemobj_tx_add_range_direct(&r->flags, 2 * sizeof(uint32_t));
		r->flags |= VEMS_OBJ_REMOVING;
		r->rcheck = vems__rec_check(r);
	}
	TX_ONABORT
	{
		ret = vems__fail(-ENOMEM, "cannot remove object: %s",
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

/*
 * The whole removal of an object that no handle has open and that has no
 * extents (empty, or its bytes inline): names, inline block and record in
 * one transaction, instead of a mark and a reclaim.
 */
static int
tx_remove_whole(struct vems_pool *p, struct vems_objnode *n,
		struct vems_name **names, size_t nnames)
{
	volatile int ret = 0;
	TX_BEGIN(p->pop)
	{
		vems__names_tx_free(names, nnames);
		vems__super_tx_count(p->sb, -1, -(int)nnames);
		vems__inline_tx_free(p, n);
		pmemobj_tx_free(n->rec_oid);
	}
	TX_ONABORT
	{
		ret = vems__fail(-ENOMEM, "cannot remove object: %s",
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

/*
 * Reclaims the space of a removed object (marked VEMS_OBJ_REMOVING, out of
 * the by-oid table) once no handle is open on it. meta_lock is held for
 * writing and no handle is open: nothing else uses n. On failure it stays
 * marked (and its node listed by serial, so its extents keep an owner):
 * the next open finishes it.
 */
static int
reclaim_removed(struct vems_pool *p, struct vems_objnode *n)
{
	int ret = vems__ext_free_from(p, n, 0);
	if (ret == 0 && free_record(p, n) != 0)
		ret = vems__fail(-ENOMEM, "cannot free an object record: %s",
				 pmemobj_errormsg());
	if (ret) {
		vems__errmsg_append("object %" PRIu64 ":%" PRIu64
				    " is removed; its space is reclaimed at "
				    "the next open",
				    n->oid.partition, n->oid.id);
		return ret;
	}
	vems__htab_remove(&p->removed, &n->by_oid);
	vems__inline_unlink(p, n);
	vems__htab_remove(&p->serials, &n->by_serial);
	vems__obj_free_node(n);
	return 0;
}

int
vems_obj_remove(struct vems_pool *p, struct vems_oid oid)
{
	if (p == NULL)
		return vems__fail(-EINVAL, "vems_obj_remove: pool is NULL");
	volatile int ret = vems__pool_writable(p);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&p->meta_lock);
	struct vems_objnode *n = vems__obj_find(p, &oid);
	if (n == NULL) {
		ret = vems__fail(-ENOENT, "no object %" PRIu64 ":%" PRIu64,
				 oid.partition, oid.id);
		goto out;
	}
	struct vems_name **names;
	size_t nnames;
	if (vems__names_of_oid(p, &oid, &names, &nnames) != 0) {
		ret = vems__fail(-ENOMEM, "out of memory");
		goto out;
	}
	if (n->opens == 0 && n->idx.count == 0) {
		ret = tx_remove_whole(p, n, names, nnames);
		if (ret == 0) {
			vems__names_drop(p, names, nnames);
			vems__htab_remove(&p->objects, &n->by_oid);
			p->nobjects--;
			vems__inline_unlink(p, n);
			vems__htab_remove(&p->serials, &n->by_serial);
			vems__obj_free_node(n);
		}
		free(names);
		goto out;
	}
	/*
	 * From here the object is gone for everyone but the handles open on
	 * it; what follows only reclaims its space (now, or at the last
	 * close), and open finishes it after a crash.
	 */
	ret = tx_mark_removed(p, n->rec, names, nnames);
	if (ret == 0)
		vems__names_drop(p, names, nnames);
	free(names);
	if (ret)
		goto out;
	vems__htab_remove(&p->objects, &n->by_oid);
	p->nobjects--;
	n->removing = true;
	/* its id stays taken until the space is reclaimed */
	vems__htab_insert(&p->removed, &n->by_oid, oid_hash(&oid));
	if (n->opens == 0)
		ret = reclaim_removed(p, n);
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
		return vems__fail(-ENOENT, "no object %" PRIu64 ":%" PRIu64,
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
	struct vems_objnode *n = h->node;
	n->opens--;
	if (h->prev)
		h->prev->next = h->next;
	else
		p->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	if (n->opens == 0 && n->removing && vems__pool_writable(p) == 0) {
		/* the last handle on a removed object: its space goes now
		 * (or, in a pool that takes no more changes, at next open) */
		int r = reclaim_removed(p, n);
		if (ret == 0)
			ret = r;
	}
	pthread_rwlock_unlock(&p->meta_lock);
	free(h);
	*objp = NULL;
	return ret;
}

static void
fill_stat(struct vems_pool *p, struct vems_objnode *n, struct vems_obj_stat *st)
{
	vems__rw_rdlock(&n->lock);
	memset(st, 0, sizeof(*st));
	st->oid = n->oid;
	st->size = vems__rec_size(n->rec);
	st->ctime_ns = n->rec->ctime_ns;
	st->mtime_ns = n->mtime_ns;
	st->extents_pmem = n->nstate[VEMS_ES_PMEM];
	st->extents_both = n->nstate[VEMS_ES_BOTH];
	st->extents_block = n->nstate[VEMS_ES_BLOCK];
	st->pmem_bytes = (st->extents_pmem + st->extents_both) * p->extent_size;
	st->block_bytes =
		(st->extents_both + st->extents_block) * p->extent_size;
	if (n->inl)
		st->pmem_bytes += vems__inline_bytes(p, n->inl);
	vems__rw_unlock(&n->lock);
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
		return vems__fail(-ENOENT, "no object %" PRIu64 ":%" PRIu64,
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
