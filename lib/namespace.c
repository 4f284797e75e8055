/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * namespace.c -- persistent flat namespace: path string -> object ID
 *
 * Each binding is one libpmemobj allocation of type VEMS_TYPE_NAME holding
 * the OID and the name; bind, unbind and rename are transactions, so a crash
 * leaves each of them wholly done or not at all. DRAM keeps a hash table.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vems_internal.h"

/* CRC-32C of a name record's fields and bytes (layout.h). */
static uint32_t
rec_check(uint64_t partition, uint64_t id, const char *name, uint32_t len)
{
	uint64_t h[3] = {partition, id, ((uint64_t)len << 32) | 0x4e414d45u};
	uint32_t c = vems__crc32c(h, sizeof(h));
	/* continue the CRC over the name (ISA-L takes a running value) */
	return vems__crc32c_update(c, name, len);
}

/*
 * Validates a name; *lenp is its length on success and 0 on failure. Set
 * on every path: callers test the return value, which the compiler cannot
 * see is non-zero after vems__fail(), and an unset length read by find()
 * would be a real bug if it ever were zero.
 */
static int
check_name(const char *name, size_t *lenp)
{
	*lenp = 0;
	if (name == NULL)
		return vems__fail(-EINVAL, "name is NULL");
	size_t len = strnlen(name, VEMS_NAME_MAX + 1);
	if (len == 0)
		return vems__fail(-EINVAL, "name is empty");
	if (len > VEMS_NAME_MAX)
		return vems__fail(-ENAMETOOLONG, "name is longer than %u bytes",
				  VEMS_NAME_MAX);
	*lenp = len;
	return 0;
}

static struct vems_name *
find(struct vems_pool *p, const char *name, size_t len)
{
	uint64_t h = vems__hash_str(name, len);
	for (struct vems_hnode *e = vems__htab_first(&p->names, h); e;
	     e = vems__htab_next_same(e)) {
		struct vems_name *n =
			vems_container_of(e, struct vems_name, node);
		if (n->rec->len == len && memcmp(n->rec->name, name, len) == 0)
			return n;
	}
	return NULL;
}

static int
add_node(struct vems_pool *p, PMEMoid rec_oid)
{
	struct vems_name *n = malloc(sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->rec_oid = rec_oid;
	n->rec = pmemobj_direct(rec_oid);
	vems__htab_insert(&p->names, &n->node,
			  vems__hash_str(n->rec->name, n->rec->len));
	p->nnames++;
	return 0;
}

static void
drop_node(struct vems_pool *p, struct vems_name *n)
{
	vems__htab_remove(&p->names, &n->node);
	p->nnames--;
	free(n);
}

int
vems__name_load(struct vems_pool *p, PMEMoid rec_oid)
{
	struct vems_name_rec *r = pmemobj_direct(rec_oid);
	size_t usable = pmemobj_alloc_usable_size(rec_oid);
	if (usable < sizeof(*r) || r->len == 0 || r->len > VEMS_NAME_MAX ||
	    usable < sizeof(*r) + r->len + 1 || r->name[r->len] != '\0' ||
	    strlen(r->name) != r->len ||
	    r->check != rec_check(r->partition, r->id, r->name, r->len))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: a name record is damaged (check value "
				  "mismatch): left as it is for repair",
				  p->pmem_path);
	if (find(p, r->name, r->len))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: name \"%.64s\" bound "
				  "twice",
				  p->pmem_path, r->name);
	if (add_node(p, rec_oid))
		return vems__fail(-ENOMEM, "out of memory");
	return 0;
}

int
vems__names_verify(struct vems_pool *p)
{
	for (size_t i = 0; i < p->names.nbuckets; i++)
		for (struct vems_hnode *e = p->names.buckets[i]; e;
		     e = e->next) {
			struct vems_name *n =
				vems_container_of(e, struct vems_name, node);
			struct vems_oid o = {n->rec->partition, n->rec->id};
			/* removal unbinds in the same transaction */
			if (vems__obj_find(p, &o) == NULL)
				return vems__fail(
					VEMS_E_CORRUPT,
					"%s: name \"%.128s\" is bound "
					"to missing object %" PRIu64
					":%" PRIu64,
					p->pmem_path, n->rec->name, o.partition,
					o.id);
		}
	return 0;
}

void
vems__names_fini(struct vems_pool *p)
{
	for (size_t i = 0; i < p->names.nbuckets; i++) {
		struct vems_hnode *e = p->names.buckets[i];
		while (e) {
			struct vems_hnode *next = e->next;
			free(vems_container_of(e, struct vems_name, node));
			e = next;
		}
		p->names.buckets[i] = NULL;
	}
	p->names.count = 0;
	p->nnames = 0;
}

/* Inside a transaction: allocates a record binding name to oid. */
static PMEMoid
tx_new_rec(const char *name, size_t len, const struct vems_oid *oid)
{
	PMEMoid o = pmemobj_tx_alloc(sizeof(struct vems_name_rec) + len + 1,
				     VEMS_TYPE_NAME);
	struct vems_name_rec *r = pmemobj_direct(o);
	r->partition = oid->partition;
	r->id = oid->id;
	r->len = (uint32_t)len;
	memcpy(r->name, name, len);
	r->name[len] = '\0';
	r->check = rec_check(oid->partition, oid->id, name, (uint32_t)len);
	return o;
}

int
vems__name_can_bind(struct vems_pool *p, const char *name, size_t *len)
{
	int ret = check_name(name, len);
	if (ret == 0 && find(p, name, *len))
		ret = vems__fail(-EEXIST, "name \"%.256s\" is bound", name);
	return ret;
}

PMEMoid
vems__name_tx_new(struct vems_pool *p, const char *name, size_t len,
		  const struct vems_oid *oid)
{
	PMEMoid o = tx_new_rec(name, len, oid);
	vems__super_tx_count(p->sb, 0, 1);
	return o;
}

int
vems__name_add(struct vems_pool *p, PMEMoid rec_oid)
{
	return add_node(p, rec_oid);
}

/*
 * The transactions, each in a function of its own. TX_BEGIN is a setjmp():
 * after an abort's longjmp, a local of the function holding it that was
 * changed after the setjmp is indeterminate (C11 7.13.2.1), and at -O3 gcc
 * cannot prove that of the callers' loop cursors and lengths either
 * (-Wclobbered). A function calling setjmp is never inlined, so these
 * frames hold only their arguments, which are not changed, and a volatile
 * result; what the transaction produces goes out through a pointer into the
 * caller's frame (memory, which a longjmp does not restore).
 */
static int
tx_bind(struct vems_pool *p, const char *name, size_t len,
	const struct vems_oid *oid, PMEMoid *out)
{
	volatile int ret = 0;
	TX_BEGIN(p->pop)
	{
		*out = vems__name_tx_new(p, name, len, oid);
	}
	TX_ONABORT
	{
		ret = vems__fail(VEMS__NOMETA,
				 "no metadata space for a name: %s",
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

static int
tx_unbind(struct vems_pool *p, PMEMoid rec_oid)
{
	volatile int ret = 0;
	TX_BEGIN(p->pop)
	{
		pmemobj_tx_free(rec_oid);
		vems__super_tx_count(p->sb, 0, -1);
	}
	TX_ONABORT
	{
		ret = vems__fail(-ENOMEM, "cannot unbind: %s",
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

/* New binding, old binding, replaced binding (if any): one transaction. */
static int
tx_rename(struct vems_pool *p, const char *to, size_t tlen,
	  const struct vems_oid *oid, PMEMoid from_rec,
	  const PMEMoid *replaced_rec, PMEMoid *out)
{
	volatile int ret = 0;
	TX_BEGIN(p->pop)
	{
		*out = tx_new_rec(to, tlen, oid);
		pmemobj_tx_free(from_rec);
		if (replaced_rec) {
			pmemobj_tx_free(*replaced_rec);
			vems__super_tx_count(p->sb, 0, -1);
		}
	}
	TX_ONABORT
	{
		ret = vems__fail(VEMS__NOMETA,
				 "no metadata space to rename: %s",
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

static int
name_bind_once(struct vems_pool *p, const char *name, struct vems_oid oid)
{
	size_t len;
	int ret;
	if (p == NULL)
		return vems__fail(-EINVAL, "pool is NULL");
	if ((ret = check_name(name, &len)))
		return ret;
	pthread_rwlock_wrlock(&p->meta_lock);
	if ((ret = vems__name_can_bind(p, name, &len)) != 0)
		goto out;
	if (vems__obj_find(p, &oid) == NULL) {
		ret = vems__fail(-ENOENT, "no object %" PRIu64 ":%" PRIu64,
				 oid.partition, oid.id);
		goto out;
	}
	PMEMoid o = OID_NULL;
	ret = tx_bind(p, name, len, &oid, &o);
	if (ret == 0 && add_node(p, o) != 0) {
		/* keep DRAM and pmem in step: undo the binding */
		TX_BEGIN(p->pop)
		{
			pmemobj_tx_free(o);
			vems__super_tx_count(p->sb, 0, -1);
		}
		TX_END
		ret = vems__fail(-ENOMEM, "out of memory");
	}
out:
	pthread_rwlock_unlock(&p->meta_lock);
	return ret;
}

int
vems_name_bind(struct vems_pool *p, const char *name, struct vems_oid oid)
{
	int ret = name_bind_once(p, name, oid);
	for (int k = 0; ret == VEMS__NOMETA; k++) {
		/* the heap is full: a data chunk becomes metadata space */
		if (k == VEMS__META_TRIES)
			return vems__fail(-ENOSPC,
					  "no metadata space for a name (pmem "
					  "heap fragmented)");
		if ((ret = vems__meta_full(p, "a name")) == 0)
			ret = name_bind_once(p, name, oid);
	}
	return ret;
}

int
vems_name_lookup(struct vems_pool *p, const char *name, struct vems_oid *oid)
{
	size_t len;
	int ret;
	if (p == NULL || oid == NULL)
		return vems__fail(-EINVAL, "pool or oid is NULL");
	if ((ret = check_name(name, &len)))
		return ret;
	pthread_rwlock_rdlock(&p->meta_lock);
	struct vems_name *n = find(p, name, len);
	if (n) {
		oid->partition = n->rec->partition;
		oid->id = n->rec->id;
	}
	pthread_rwlock_unlock(&p->meta_lock);
	if (n == NULL)
		return vems__fail(-ENOENT, "no name \"%.256s\"", name);
	return 0;
}

int
vems_name_unbind(struct vems_pool *p, const char *name)
{
	size_t len;
	int ret;
	if (p == NULL)
		return vems__fail(-EINVAL, "pool is NULL");
	if ((ret = check_name(name, &len)))
		return ret;
	pthread_rwlock_wrlock(&p->meta_lock);
	struct vems_name *n = find(p, name, len);
	if (n == NULL) {
		ret = vems__fail(-ENOENT, "no name \"%.256s\"", name);
		goto out;
	}
	ret = tx_unbind(p, n->rec_oid);
	if (ret == 0)
		drop_node(p, n);
out:
	pthread_rwlock_unlock(&p->meta_lock);
	return ret;
}

static int
name_rename_once(struct vems_pool *p, const char *from, const char *to,
		 struct vems_oid *replaced, int *replaced_any)
{
	size_t flen, tlen;
	int ret;
	if (p == NULL)
		return vems__fail(-EINVAL, "pool is NULL");
	if ((ret = check_name(from, &flen)) || (ret = check_name(to, &tlen)))
		return ret;
	if (replaced_any)
		*replaced_any = 0;
	pthread_rwlock_wrlock(&p->meta_lock);
	struct vems_name *f = find(p, from, flen);
	if (f == NULL) {
		ret = vems__fail(-ENOENT, "no name \"%.256s\"", from);
		goto out;
	}
	if (flen == tlen && memcmp(from, to, flen) == 0)
		goto out; /* POSIX rename(2): same name, nothing to do */
	struct vems_name *t = find(p, to, tlen);
	struct vems_oid oid = {f->rec->partition, f->rec->id};
	/* read before the transaction frees the replaced record */
	struct vems_oid toid = {t ? t->rec->partition : 0, t ? t->rec->id : 0};
	PMEMoid o = OID_NULL;
	ret = tx_rename(p, to, tlen, &oid, f->rec_oid, t ? &t->rec_oid : NULL,
			&o);
	if (ret)
		goto out;
	if (t) {
		if (replaced)
			*replaced = toid;
		if (replaced_any)
			*replaced_any = 1;
		/* t->rec is freed memory now: only its DRAM node goes */
		drop_node(p, t);
	}
	drop_node(p, f);
	if (add_node(p, o)) {
		/* the binding is durable; only DRAM failed: reload names */
		ret = vems__fail(-ENOMEM, "out of memory after rename");
	}
out:
	pthread_rwlock_unlock(&p->meta_lock);
	return ret;
}

int
vems_name_rename(struct vems_pool *p, const char *from, const char *to,
		 struct vems_oid *replaced, int *replaced_any)
{
	int ret = name_rename_once(p, from, to, replaced, replaced_any);
	for (int k = 0; ret == VEMS__NOMETA; k++) {
		if (k == VEMS__META_TRIES)
			return vems__fail(-ENOSPC,
					  "no metadata space to rename (pmem "
					  "heap fragmented)");
		if ((ret = vems__meta_full(p, "a renamed name")) == 0)
			ret = name_rename_once(p, from, to, replaced,
					       replaced_any);
	}
	return ret;
}

/*
 * The names bound to oid, collected before the transaction that frees
 * their records (after it, the records must not be read). *v is malloc()ed.
 */
int
vems__names_of_oid(struct vems_pool *p, const struct vems_oid *oid,
		   struct vems_name ***v, size_t *cnt)
{
	size_t n = 0, cap = 4;
	struct vems_name **out = malloc(cap * sizeof(*out));
	if (out == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->names.nbuckets; i++)
		for (struct vems_hnode *e = p->names.buckets[i]; e;
		     e = e->next) {
			struct vems_name *nm =
				vems_container_of(e, struct vems_name, node);
			if (nm->rec->partition != oid->partition ||
			    nm->rec->id != oid->id)
				continue;
			if (n == cap) {
				struct vems_name **bigger =
					realloc(out, 2 * cap * sizeof(*out));
				if (bigger == NULL) {
					free(out);
					return -ENOMEM;
				}
				out = bigger;
				cap *= 2;
			}
			out[n++] = nm;
		}
	*v = out;
	*cnt = n;
	return 0;
}

/* Inside a transaction: frees the records of the collected names. */
void
vems__names_tx_free(struct vems_name **v, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++)
		pmemobj_tx_free(v[i]->rec_oid);
}

/* After that transaction committed: drops their DRAM nodes. */
void
vems__names_drop(struct vems_pool *p, struct vems_name **v, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++)
		drop_node(p, v[i]);
}

struct nent {
	char *name;
	struct vems_oid oid;
};

static int
nent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct nent *)a)->name,
		      ((const struct nent *)b)->name);
}

int
vems_name_list(struct vems_pool *p, const char *prefix, vems_name_fn fn,
	       void *arg)
{
	if (p == NULL || fn == NULL)
		return vems__fail(-EINVAL, "vems_name_list: NULL argument");
	size_t plen = prefix ? strlen(prefix) : 0;
	int ret = 0;
	pthread_rwlock_rdlock(&p->meta_lock);
	size_t n = 0;
	struct nent *v = malloc((p->nnames ? p->nnames : 1) * sizeof(*v));
	if (v == NULL) {
		pthread_rwlock_unlock(&p->meta_lock);
		return vems__fail(-ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->names.nbuckets && ret == 0; i++)
		for (struct vems_hnode *e = p->names.buckets[i]; e;
		     e = e->next) {
			struct vems_name *nm =
				vems_container_of(e, struct vems_name, node);
			if (nm->rec->len < plen ||
			    (plen > 0 &&
			     memcmp(nm->rec->name, prefix, plen) != 0))
				continue;
			v[n].name = strdup(nm->rec->name);
			if (v[n].name == NULL) {
				ret = vems__fail(-ENOMEM, "out of memory");
				break;
			}
			v[n].oid.partition = nm->rec->partition;
			v[n].oid.id = nm->rec->id;
			n++;
		}
	pthread_rwlock_unlock(&p->meta_lock);
	/* callbacks run unlocked, so they may call back into the pool */
	qsort(v, n, sizeof(*v), nent_cmp);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = fn(v[i].name, &v[i].oid, arg);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	return ret;
}
