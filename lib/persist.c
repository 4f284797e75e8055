/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * persist.c -- every flush and fence libvems issues goes through here
 *
 * Two regimes, chosen once at open (pool->is_pmem, from pmem_is_pmem() of
 * the mapping): real persistent memory (or PMEM_IS_PMEM_FORCE=1), where
 * durability is a cache write-back plus a fence, and a mapping of an
 * ordinary file, where only msync() makes stores durable. Only libpmem's
 * exported calls are used, never intrinsics, so that a library interposed
 * on libpmem sees every persistence action (rule 5 of docs/design.md).
 *
 * On the msync path each call is durable when it returns, so "drain" has
 * nothing left to do; callers write the same code for both regimes.
 */

#include <errno.h>
#include <string.h>

#include <libpmem.h>

#include "vems_internal.h"

/*
 * A failed msync leaves the range's stores in memory and maybe, maybe not,
 * on media: the pool stops taking changes (vems__pool_writable) so that
 * nothing it named can be handed out again before a reopen settles it.
 */
static int
msync_range(struct vems_pool *p, const void *addr, size_t len)
{
	if (pmem_msync(addr, len) != 0) {
		int err = errno;
		atomic_store(&p->failed, true);
		return vems__fail(
			-EIO,
			"msync of pmem failed (%s): the pool takes no "
			"more changes until it is reopened",
			strerror(err));
	}
	return 0;
}

int
vems__pmem_copy(struct vems_pool *p, void *dst, const void *src, size_t len)
{
	if (p->is_pmem) {
		/* non-temporal for large copies, write-back queued; the
		 * caller's vems__pmem_drain() orders it before what follows */
		pmem_memcpy(dst, src, len, PMEM_F_MEM_NODRAIN);
		return 0;
	}
	memcpy(dst, src, len);
	return msync_range(p, dst, len);
}

int
vems__pmem_copy_to(struct vems_pool *p, struct vems_flushset *s, void *dst,
		   const void *src, size_t len)
{
	if (p->is_pmem) {
		pmem_memcpy(dst, src, len, PMEM_F_MEM_NODRAIN);
		return 0;
	}
	memcpy(dst, src, len);
	return vems__flush_add(p, s, dst, len);
}

int
vems__pmem_zero_to(struct vems_pool *p, struct vems_flushset *s, void *dst,
		   size_t len)
{
	if (p->is_pmem) {
		pmem_memset(dst, 0, len, PMEM_F_MEM_NODRAIN);
		return 0;
	}
	memset(dst, 0, len);
	return vems__flush_add(p, s, dst, len);
}

int
vems__pmem_zero(struct vems_pool *p, void *dst, size_t len)
{
	if (p->is_pmem) {
		pmem_memset(dst, 0, len, PMEM_F_MEM_NODRAIN);
		return 0;
	}
	memset(dst, 0, len);
	return msync_range(p, dst, len);
}

int
vems__pmem_flush(struct vems_pool *p, const void *addr, size_t len)
{
	if (p->is_pmem) {
		pmem_flush(addr, len);
		return 0;
	}
	return msync_range(p, addr, len);
}

/*
 * A set of ranges made durable together. The pmem path flushes each range
 * as it is added (cache write-back is per line anyway); the msync path
 * makes one msync over their span when the set is done, which writes back
 * only the span's dirty pages, instead of an msync per range. That is
 * sound because on the msync path any store may reach media at any time
 * (the kernel writes dirty pages back when it likes): what the callers
 * order is only that the set is durable before their next step.
 */
int
vems__flush_add(struct vems_pool *p, struct vems_flushset *s, const void *addr,
		size_t len)
{
	if (p->is_pmem) {
		pmem_flush(addr, len);
		return 0;
	}
	const uint8_t *a = addr;
	if (s->lo == NULL || a < s->lo)
		s->lo = a;
	if (a + len > s->hi)
		s->hi = a + len;
	return 0;
}

int
vems__flush_done(struct vems_pool *p, struct vems_flushset *s)
{
	int ret = 0;
	if (!p->is_pmem && s->lo != NULL)
		ret = msync_range(p, s->lo, (size_t)(s->hi - s->lo));
	s->lo = s->hi = NULL;
	return ret;
}

void
vems__pmem_drain(struct vems_pool *p)
{
	/* orders every flush/NT store above before any later store */
	if (p->is_pmem)
		pmem_drain();
}

int
vems__pmem_store64(struct vems_pool *p, uint64_t *dst, uint64_t v)
{
	/*
	 * An aligned 8-byte store is failure-atomic on x86 persistent memory:
	 * after a crash the old or the new value is there, never a mix. The
	 * relaxed atomic keeps the compiler from splitting it.
	 */
	atomic_store_explicit((_Atomic uint64_t *)dst, v, memory_order_relaxed);
	return vems__pmem_flush(p, dst, sizeof(*dst));
}

int
vems__pmem_store8(struct vems_pool *p, uint8_t *dst, uint8_t v)
{
	atomic_store_explicit((_Atomic uint8_t *)dst, v, memory_order_relaxed);
	return vems__pmem_flush(p, dst, sizeof(*dst));
}

int
vems__pool_writable(struct vems_pool *p)
{
	if (!vems__pool_failed(p))
		return 0;
	return vems__fail(-EIO,
			  "pool %s takes no changes: an msync of pmem failed "
			  "earlier; close and reopen it",
			  p->pmem_path);
}
