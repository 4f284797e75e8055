/* SPDX-License-Identifier: BSD-3-Clause */
/* stats.c -- counters and gauges of an open pool */

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vems_internal.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/*
 * Shards 1..VEMS_STAT_SHARDS-1 are each owned by one live thread, which
 * adds with a plain load and store (no locked instruction on the write
 * path); a thread that finds none free uses shard 0, shared, with atomic
 * adds. A thread's shard goes back to the free set when it exits (the
 * key's destructor), so a program that makes threads all day does not
 * run out. Shard numbers are the same in every pool.
 */
_Thread_local unsigned vems__my_shard
	__attribute__((tls_model("initial-exec"))) = UINT32_MAX;

#define ALL_SHARDS                                                             \
	((VEMS_STAT_SHARDS >= 64 ? ~UINT64_C(0)                                \
				 : (UINT64_C(1) << VEMS_STAT_SHARDS) - 1) &    \
	 ~UINT64_C(1))
static _Atomic uint64_t shards_free = ALL_SHARDS;
static pthread_key_t shard_key;
static bool shard_key_ok;
static pthread_once_t shard_once = PTHREAD_ONCE_INIT;

static void
shard_release(void *v)
{
	unsigned s = (unsigned)(uintptr_t)v;
	/* anything this thread still counts goes to the shared shard */
	vems__my_shard = 0;
	if (s > 0 && s < VEMS_STAT_SHARDS)
		atomic_fetch_or(&shards_free, UINT64_C(1) << s);
}

static void
shard_key_create(void)
{
	shard_key_ok = pthread_key_create(&shard_key, shard_release) == 0;
}

unsigned
vems__stat_shard_slow(void)
{
	pthread_once(&shard_once, shard_key_create);
	unsigned s = 0;
	uint64_t m = atomic_load(&shards_free);
	while (shard_key_ok && m != 0) {
		unsigned b = (unsigned)__builtin_ctzll(m);
		if (atomic_compare_exchange_weak(&shards_free, &m,
						 m & ~(UINT64_C(1) << b))) {
			s = b;
			break;
		}
	}
	if (s != 0 && pthread_setspecific(shard_key, (void *)(uintptr_t)s)) {
		atomic_fetch_or(&shards_free, UINT64_C(1) << s);
		s = 0;
	}
	vems__my_shard = s;
	return s;
}

static uint64_t
sum(const struct vems_pool *p, size_t field)
{
	uint64_t t = 0;
	for (int i = 0; i < VEMS_STAT_SHARDS; i++)
		t += atomic_load_explicit(
			(const _Atomic uint64_t *)((const char *)&p->st[i] +
						   field),
			memory_order_relaxed);
	return t;
}

int
vems_pool_stats(struct vems_pool *p, struct vems_pool_stats *s)
{
	if (p == NULL || s == NULL)
		return vems__fail(-EINVAL, "pool or stats is NULL");
	memset(s, 0, sizeof(*s));
	pthread_rwlock_rdlock(&p->meta_lock);
	s->objects = p->nobjects;
	s->names = p->nnames;
	pthread_rwlock_unlock(&p->meta_lock);
	pthread_mutex_lock(&p->alloc_lock);
	uint64_t free_frames = p->free_frames.n, free_slots = p->free_slots.n;
	pthread_mutex_unlock(&p->alloc_lock);
	s->pmem_bytes_free = free_frames * p->extent_size;
	s->inline_objects = LOAD(p->inl_count);
	s->inline_bytes = LOAD(p->inl_bytes);
	s->pmem_bytes_used =
		(uint64_t)(p->frames_present - free_frames) * p->extent_size +
		s->inline_bytes;
	s->block_bytes_free = free_slots * p->extent_size;
	s->block_bytes_used = (p->nslots - free_slots) * p->extent_size;
	s->extents_pmem = LOAD(p->nstate[VEMS_ES_PMEM]);
	s->extents_both = LOAD(p->nstate[VEMS_ES_BOTH]);
	s->extents_block = LOAD(p->nstate[VEMS_ES_BLOCK]);
	s->reads = sum(p, offsetof(struct vems_counters, reads));
	s->writes = sum(p, offsetof(struct vems_counters, writes));
	s->bytes_read = sum(p, offsetof(struct vems_counters, bytes_read));
	s->bytes_written =
		sum(p, offsetof(struct vems_counters, bytes_written));
	s->pmem_hits = sum(p, offsetof(struct vems_counters, pmem_hits));
	s->block_hits = sum(p, offsetof(struct vems_counters, block_hits));
	s->hole_reads = sum(p, offsetof(struct vems_counters, hole_reads));
	s->extents_allocated =
		sum(p, offsetof(struct vems_counters, extents_allocated));
	s->extents_freed =
		sum(p, offsetof(struct vems_counters, extents_freed));
	s->spills = sum(p, offsetof(struct vems_counters, spills));
	s->promotions = sum(p, offsetof(struct vems_counters, promotions));
	s->clean_drops = sum(p, offsetof(struct vems_counters, clean_drops));
	s->bytes_spilled =
		sum(p, offsetof(struct vems_counters, bytes_spilled));
	s->bytes_promoted =
		sum(p, offsetof(struct vems_counters, bytes_promoted));
	s->checksum_failures =
		sum(p, offsetof(struct vems_counters, checksum_failures));
	s->uring_max_inflight = LOAD(p->uring_max_inflight);
	s->sync_spills = sum(p, offsetof(struct vems_counters, sync_spills));
	s->block_fetches =
		sum(p, offsetof(struct vems_counters, block_fetches));
	s->block_errors = sum(p, offsetof(struct vems_counters, block_errors));
	s->bytes_block_read =
		sum(p, offsetof(struct vems_counters, bytes_block_read));
	s->inline_evictions =
		sum(p, offsetof(struct vems_counters, inline_evictions));
	return 0;
}
