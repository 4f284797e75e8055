/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * alloc.c -- free frames and slots, and the pins of slots being read
 *
 * DRAM only, under alloc_lock (never held across I/O). A leaf below the
 * extent state machine: extent.c hands a frame or slot back only after
 * the store that stops naming it is fenced.
 */

#include <stdatomic.h>

#include "vems_internal.h"

void
vems__frame_free(struct vems_pool *p, uint32_t frame)
{
	vems__pol_remove(p, frame);
	/* a spill in flight on this frame sees the change and gives up */
	atomic_fetch_add_explicit(&p->fr[frame].gen, 1, memory_order_relaxed);
	pthread_mutex_lock(&p->alloc_lock);
	vems__frame_back_locked(p, frame);
	pthread_mutex_unlock(&p->alloc_lock);
}

void
vems__frame_back_locked(struct vems_pool *p, uint32_t frame)
{
	if ((int64_t)(frame / p->chunk_frames) ==
	    atomic_load_explicit(&p->draining, memory_order_relaxed))
		p->parked_v[p->parked++] = frame;
	else
		vems__fl_push(&p->free_frames, frame);
}

void
vems__frames_unreserve(struct vems_pool *p, const uint32_t *v, uint32_t n)
{
	pthread_mutex_lock(&p->alloc_lock);
	for (uint32_t i = 0; i < n; i++)
		if (!p->fr[v[i]].lost) /* else the kernel may still write it */
			vems__frame_back_locked(p, v[i]);
	pthread_mutex_unlock(&p->alloc_lock);
}

void
vems__slot_free(struct vems_pool *p, uint32_t slot)
{
	pthread_mutex_lock(&p->alloc_lock);
	p->slot_flags[slot] &= (uint8_t)~VEMS_SLOT_SPILLING;
	if (p->slot_pins[slot] > 0)
		p->slot_flags[slot] |= VEMS_SLOT_FREE_PENDING;
	else
		vems__fl_push(&p->free_slots, slot);
	pthread_mutex_unlock(&p->alloc_lock);
}

void
vems__slot_committed(struct vems_pool *p, uint32_t slot)
{
	pthread_mutex_lock(&p->alloc_lock);
	p->slot_flags[slot] &= (uint8_t)~VEMS_SLOT_SPILLING;
	pthread_mutex_unlock(&p->alloc_lock);
}

void
vems__slot_pin(struct vems_pool *p, uint32_t slot)
{
	pthread_mutex_lock(&p->alloc_lock);
	p->slot_pins[slot]++;
	pthread_mutex_unlock(&p->alloc_lock);
}

void
vems__slot_unpin(struct vems_pool *p, uint32_t slot)
{
	pthread_mutex_lock(&p->alloc_lock);
	if (--p->slot_pins[slot] == 0 &&
	    (p->slot_flags[slot] & VEMS_SLOT_FREE_PENDING)) {
		p->slot_flags[slot] &= (uint8_t)~VEMS_SLOT_FREE_PENDING;
		vems__fl_push(&p->free_slots, slot);
	}
	pthread_mutex_unlock(&p->alloc_lock);
}

bool
vems__slot_alloc(struct vems_pool *p, uint32_t *slot)
{
	pthread_mutex_lock(&p->alloc_lock);
	bool ok = vems__fl_pop(&p->free_slots, slot);
	if (ok)
		p->slot_flags[*slot] |= VEMS_SLOT_SPILLING;
	pthread_mutex_unlock(&p->alloc_lock);
	return ok;
}

uint32_t
vems__free_frames(struct vems_pool *p)
{
	pthread_mutex_lock(&p->alloc_lock);
	uint32_t n = p->free_frames.n;
	pthread_mutex_unlock(&p->alloc_lock);
	return n;
}
