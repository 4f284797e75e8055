/* SPDX-License-Identifier: BSD-3-Clause */
/* stats.c -- counters and gauges of an open pool */

#include <errno.h>
#include <string.h>

#include "vems_internal.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

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
	s->pmem_bytes_used = (p->nframes - free_frames) * p->extent_size;
	s->block_bytes_free = free_slots * p->extent_size;
	s->block_bytes_used = (p->nslots - free_slots) * p->extent_size;
	s->extents_pmem = LOAD(p->st.nstate[VEMS_ES_PMEM]);
	s->extents_both = LOAD(p->st.nstate[VEMS_ES_BOTH]);
	s->extents_block = LOAD(p->st.nstate[VEMS_ES_BLOCK]);
	s->reads = LOAD(p->st.reads);
	s->writes = LOAD(p->st.writes);
	s->bytes_read = LOAD(p->st.bytes_read);
	s->bytes_written = LOAD(p->st.bytes_written);
	s->pmem_hits = LOAD(p->st.pmem_hits);
	s->block_hits = LOAD(p->st.block_hits);
	s->hole_reads = LOAD(p->st.hole_reads);
	s->extents_allocated = LOAD(p->st.extents_allocated);
	s->extents_freed = LOAD(p->st.extents_freed);
	s->spills = LOAD(p->st.spills);
	s->promotions = LOAD(p->st.promotions);
	s->clean_drops = LOAD(p->st.clean_drops);
	s->bytes_spilled = LOAD(p->st.bytes_spilled);
	s->bytes_promoted = LOAD(p->st.bytes_promoted);
	s->checksum_failures = LOAD(p->st.checksum_failures);
	s->uring_max_inflight = LOAD(p->st.uring_max_inflight);
	s->sync_spills = LOAD(p->st.sync_spills);
	s->block_fetches = LOAD(p->st.block_fetches);
	s->block_errors = LOAD(p->st.block_errors);
	return 0;
}
