/* SPDX-License-Identifier: BSD-3-Clause */
/* stats.c -- counters and gauges of an open pool */

#include <errno.h>
#include <string.h>

#include <stddef.h>

#include "vems_internal.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static _Atomic unsigned next_shard;
/* initial-exec: one TLS access, no __tls_get_addr call per counter */
static _Thread_local unsigned my_shard
	__attribute__((tls_model("initial-exec"))) = UINT32_MAX;

unsigned
vems__stat_shard(void)
{
	if (my_shard == UINT32_MAX)
		my_shard = atomic_fetch_add_explicit(&next_shard, 1,
						     memory_order_relaxed) %
			VEMS_STAT_SHARDS;
	return my_shard;
}

/* The sum of one counter over every shard (relaxed: a snapshot). */
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
