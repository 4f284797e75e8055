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
#include <stdlib.h>
#include <string.h>

#include "vems_internal.h"

#define MAX_EXT_PER_CALL 1024 /* new extents tracked on the stack */

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

	pthread_rwlock_rdlock(&n->lock);
	uint64_t size = n->rec->size;
	if (off >= size)
		goto out;
	if (len > size - off)
		len = (size_t)(size - off);
	uint64_t hits = 0, holes = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint32_t ext = (uint32_t)(pos >> p->extent_shift);
		uint64_t in = pos & (es - 1);
		size_t chunk = (size_t)(es - in);
		if (chunk > len - done)
			chunk = len - done;
		uint32_t ei = vems__xidx_get(&n->idx, ext);
		if (ei == UINT32_MAX) {
			memset(out + done, 0, chunk);
			holes++;
		} else {
			const struct vems_entry *e = &p->entries[ei];
			if (e->state == VEMS_ES_BLOCK) {
				ret = vems__fail(
					-EIO,
					"extent %u of object %" PRIu64
					".%" PRIu64 " is in the block "
					"file, which this build cannot "
					"read",
					ext, n->oid.partition, n->oid.id);
				break;
			}
			memcpy(out + done, vems__frame_addr(p, e->frame) + in,
			       chunk);
			hits++;
		}
		done += chunk;
	}
	VEMS_STAT_ADD(p, pmem_hits, hits);
	VEMS_STAT_ADD(p, hole_reads, holes);
out:
	pthread_rwlock_unlock(&n->lock);
	if (ret)
		return ret;
	VEMS_STAT_ADD(p, reads, 1);
	VEMS_STAT_ADD(p, bytes_read, done);
	return (ssize_t)done;
}

/* A new extent claimed by a write, committed only once its data is. */
struct newext {
	uint32_t ext, entry, frame;
};

static void
release_new(struct vems_pool *p, struct vems_objnode *n, const struct newext *v,
	    size_t cnt)
{
	pthread_mutex_lock(&p->alloc_lock);
	for (size_t i = 0; i < cnt; i++) {
		vems__fl_push(&p->free_frames, v[i].frame);
		vems__fl_push(&p->free_entries, v[i].entry);
	}
	pthread_mutex_unlock(&p->alloc_lock);
	for (size_t i = 0; i < cnt; i++)
		vems__xidx_del(&n->idx, v[i].ext);
}

/*
 * Claims a frame and an entry for every unmapped extent of [off, end) and
 * puts them in the DRAM index (invisible to readers: we hold the object
 * exclusively). Nothing is durable yet. All or nothing.
 */
static int
claim_extents(struct vems_pool *p, struct vems_objnode *n, uint64_t off,
	      uint64_t end, struct newext *v, size_t *cnt)
{
	uint32_t first = (uint32_t)(off >> p->extent_shift);
	uint32_t last = (uint32_t)((end - 1) >> p->extent_shift);
	*cnt = 0;
	for (uint64_t ext = first; ext <= last; ext++) {
		if (vems__xidx_get(&n->idx, (uint32_t)ext) != UINT32_MAX)
			continue;
		struct newext ne = {(uint32_t)ext, 0, 0};
		pthread_mutex_lock(&p->alloc_lock);
		bool ok = vems__fl_pop(&p->free_frames, &ne.frame);
		if (ok && !vems__fl_pop(&p->free_entries, &ne.entry)) {
			vems__fl_push(&p->free_frames, ne.frame);
			ok = false;
		}
		pthread_mutex_unlock(&p->alloc_lock);
		if (!ok) {
			release_new(p, n, v, *cnt);
			return vems__fail(-ENOSPC,
					  "pmem is full (%u extent frames in "
					  "use) and the block tier is not "
					  "in use",
					  p->nframes);
		}
		if (vems__xidx_put(&n->idx, ne.ext, ne.entry)) {
			pthread_mutex_lock(&p->alloc_lock);
			vems__fl_push(&p->free_frames, ne.frame);
			vems__fl_push(&p->free_entries, ne.entry);
			pthread_mutex_unlock(&p->alloc_lock);
			release_new(p, n, v, *cnt);
			return vems__fail(-ENOMEM, "out of memory");
		}
		v[(*cnt)++] = ne;
	}
	return 0;
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
	uint64_t ext_end = ((uint64_t)ext + 1) << p->extent_shift;
	if (to > ext_end)
		to = ext_end;
	const struct vems_entry *e = &p->entries[ei];
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
	int ret = store_mtime(p, n);
	if (ret == 0)
		ret = vems__pmem_store64(p, &n->rec->size, size);
	vems__pmem_drain(p);
	return ret;
}

static int
write_locked(struct vems_obj *obj, const uint8_t *src, size_t len, uint64_t off,
	     bool drain)
{
	struct vems_pool *p = obj->pool;
	struct vems_objnode *n = obj->node;
	uint64_t es = p->extent_size;
	uint64_t old = n->rec->size, end = off + len;
	uint64_t new_size = end > old ? end : old;
	struct newext stackv[32], *v = stackv;
	size_t nnew = 0;
	int ret;

	uint64_t span =
		((end - 1) >> p->extent_shift) - (off >> p->extent_shift) + 1;
	if (span > VEMS_ARRAY_SIZE(stackv)) {
		v = malloc(span * sizeof(*v));
		if (v == NULL)
			return vems__fail(-ENOMEM, "out of memory");
	}
	/*
	 * Growing: old garbage past the end, before this write, becomes 0.
	 * Done before claiming, so it only meets extents mapped before this
	 * call; if the claim then fails, only bytes past the end changed.
	 */
	if (end > old && off > old && (ret = zero_mapped(p, n, old, off)) != 0)
		goto out;
	if ((ret = claim_extents(p, n, off, end, v, &nnew)))
		goto out;

	/* 1. data; new extents also get their fields and their zeros */
	size_t k = 0;
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
		if (k < nnew && v[k].ext == ext) {
			struct newext *ne = &v[k++];
			f = vems__frame_addr(p, ne->frame);
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
			e->frame = ne->frame;
			e->slot = 0;
			e->crc = 0;
			e->state = VEMS_ES_PMEM;
			if (ret == 0)
				ret = vems__pmem_flush(
					p, &e->ext_index,
					sizeof(*e) - sizeof(e->serial));
		} else {
			f = vems__frame_addr(p, e->frame);
		}
		if (ret == 0)
			ret = vems__pmem_copy(p, f + in, src + done, chunk);
		if (ret)
			goto fail;
		done += chunk;
	}
	if (nnew > 0 || new_size != old || drain)
		vems__pmem_drain(
			p); /* data before the entries/size naming it */

	/* 2. commit the new extents */
	if (nnew > 0) {
		for (size_t i = 0; i < nnew && ret == 0; i++)
			ret = vems__pmem_store64(
				p, &p->entries[v[i].entry].serial, n->serial);
		if (ret)
			goto fail;
		if (new_size != old || drain)
			vems__pmem_drain(p); /* entries before the size */
		n->nstate[VEMS_ES_PMEM] += nnew;
		atomic_fetch_add(&p->st.nstate[VEMS_ES_PMEM], nnew);
		VEMS_STAT_ADD(p, extents_allocated, nnew);
	}
	atomic_store(&n->mtime_ns, vems__now_ns());
	/* 3. the size */
	if (new_size != old)
		ret = set_size(p, n, new_size);
	goto out;
fail:
	/*
	 * Nothing new is committed (serials still 0): give the extents
	 * back. Bytes already copied into existing extents stay; the
	 * object's size is unchanged.
	 */
	for (size_t i = 0; i < nnew; i++)
		if (p->entries[v[i].entry].serial != 0)
			(void)vems__pmem_store64(
				p, &p->entries[v[i].entry].serial, 0);
	vems__pmem_drain(p);
	release_new(p, n, v, nnew);
out:
	if (v != stackv)
		free(v);
	return ret;
}

ssize_t
vems_obj_pwrite(struct vems_obj *obj, const void *buf, size_t len, uint64_t off,
		unsigned flags)
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
	pthread_rwlock_wrlock(&n->lock);
	ret = write_locked(obj, buf, len, off, drain);
	if (ret == 0 && !drain)
		n->nodrain_pending = true;
	pthread_rwlock_unlock(&n->lock);
	if (ret)
		return ret;
	VEMS_STAT_ADD(obj->pool, writes, 1);
	VEMS_STAT_ADD(obj->pool, bytes_written, len);
	return (ssize_t)len;
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
