/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * policy.c -- which resident extent leaves pmem next
 *
 * S3-FIFO (Yang et al., SOSP '23) over extent frames, in DRAM only:
 *   - a new extent enters the small probation queue S (about 10% of the
 *     resident frames), unless it was evicted recently (a ghost hit), in
 *     which case it goes straight to the main queue M;
 *   - a hit sets a 2-bit frequency with one relaxed atomic store, no lock
 *     and no pmem write on the read path;
 *   - eviction takes S's oldest: touched since it came in -> moved to M,
 *     else it is the victim (and becomes a ghost); when S is small, M's
 *     oldest: touched -> reinserted with freq - 1, else the victim.
 * One-hit wonders (a scan) leave through S without flushing M, which is
 * what plain CLOCK cannot do on skewed workloads.
 *
 * Ghosts are 32-bit fingerprints of (object serial, extent) in a
 * direct-mapped table of about the frame count: an approximate, bounded
 * FIFO, 4 bytes per frame. A second, smaller table (4-way sets)
 * remembers extents read in part from the block file (io.c's miss plan).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "extent.h"
#include "vems_internal.h"

#define NIL VEMS_NO_FRAME
#define SEEN_WAYS 4

uint32_t vems__seen_sets_min = 16; /* tests: a larger table */

int
vems__pol_init(struct vems_pool *p)
{
	p->fr = calloc(p->nframes ? p->nframes : 1, sizeof(*p->fr));
	uint32_t g = 64;
	while (g < p->nframes && g < (1u << 30))
		g <<= 1;
	p->ghost = calloc(g, sizeof(*p->ghost));
	/* remembers part-misses of about 1/16 of the frame count: a uniform
	 * spread over 8x pmem meets an extent again in about 1 in 128 */
	uint32_t sg = g / 16 / SEEN_WAYS > vems__seen_sets_min
		? g / 16 / SEEN_WAYS
		: vems__seen_sets_min;
	p->seen = calloc((size_t)sg * SEEN_WAYS, sizeof(*p->seen));
	if (p->fr == NULL || p->ghost == NULL || p->seen == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	p->ghost_mask = g - 1;
	p->seen_mask = sg - 1;
	for (uint32_t f = 0; f < p->nframes; f++) {
		p->fr[f].prev = p->fr[f].next = NIL;
		p->fr[f].addr = vems__frame_addr_slow(p, f);
	}
	p->small.head = p->small.tail = NIL;
	p->main.head = p->main.tail = NIL;
	pthread_mutex_init(&p->pol_lock, NULL);
	return 0;
}

void
vems__pol_fini(struct vems_pool *p)
{
	if (p->fr)
		pthread_mutex_destroy(&p->pol_lock);
	free(p->fr);
	free(p->ghost);
	free(p->seen);
	p->fr = NULL;
	p->ghost = NULL;
	p->seen = NULL;
}

static struct vems_fifo *
fifo_of(struct vems_pool *p, uint8_t q)
{
	return q == VEMS_FQ_SMALL ? &p->small : &p->main;
}

/* pol_lock held */
static void
push_head(struct vems_pool *p, uint32_t f, uint8_t q)
{
	struct vems_fifo *l = fifo_of(p, q);
	struct vems_frame *x = &p->fr[f];
	x->q = q;
	x->prev = NIL;
	x->next = l->head;
	if (l->head != NIL)
		p->fr[l->head].prev = f;
	else
		l->tail = f;
	l->head = f;
	l->n++;
}

/* pol_lock held; f is in S or M */
static void
unlink_frame(struct vems_pool *p, uint32_t f)
{
	struct vems_frame *x = &p->fr[f];
	struct vems_fifo *l = fifo_of(p, x->q);
	if (x->prev != NIL)
		p->fr[x->prev].next = x->next;
	else
		l->head = x->next;
	if (x->next != NIL)
		p->fr[x->next].prev = x->prev;
	else
		l->tail = x->prev;
	x->prev = x->next = NIL;
	l->n--;
	x->q = VEMS_FQ_NONE;
}

void
vems__pol_insert(struct vems_pool *p, uint32_t frame, uint32_t entry, bool hot)
{
	pthread_mutex_lock(&p->pol_lock);
	struct vems_frame *x = &p->fr[frame];
	if (x->q == VEMS_FQ_SMALL || x->q == VEMS_FQ_MAIN)
		unlink_frame(p, frame);
	x->entry = entry;
	atomic_store_explicit(&x->freq, 0, memory_order_relaxed);
	push_head(p, frame, hot ? VEMS_FQ_MAIN : VEMS_FQ_SMALL);
	pthread_mutex_unlock(&p->pol_lock);
}

void
vems__pol_remove(struct vems_pool *p, uint32_t frame)
{
	pthread_mutex_lock(&p->pol_lock);
	struct vems_frame *x = &p->fr[frame];
	if (x->q == VEMS_FQ_SMALL || x->q == VEMS_FQ_MAIN)
		unlink_frame(p, frame);
	/* a BUSY frame is disowned: the spill sees NONE and leaves it */
	x->q = VEMS_FQ_NONE;
	pthread_mutex_unlock(&p->pol_lock);
}

uint32_t
vems__pol_victims(struct vems_pool *p, uint32_t *out, uint32_t max)
{
	uint32_t got = 0;
	pthread_mutex_lock(&p->pol_lock);
	/* each frame is moved at most ~4 times before it must be chosen */
	uint64_t budget = 4 * ((uint64_t)p->small.n + p->main.n) + 8;
	while (got < max && budget-- > 0) {
		uint32_t resident = p->small.n + p->main.n;
		if (resident == 0)
			break;
		bool from_small = p->small.n > 0 &&
			(p->main.n == 0 || p->small.n * 10 >= resident);
		uint32_t f = from_small ? p->small.tail : p->main.tail;
		struct vems_frame *x = &p->fr[f];
		uint8_t freq =
			atomic_load_explicit(&x->freq, memory_order_relaxed);
		unlink_frame(p, f);
		if (freq > 0) {
			/* S -> M keeps nothing of its count; M decays */
			atomic_store_explicit(
				&x->freq, from_small ? 0 : (uint8_t)(freq - 1),
				memory_order_relaxed);
			push_head(p, f, VEMS_FQ_MAIN);
			continue;
		}
		x->q = VEMS_FQ_BUSY;
		out[got++] = f;
	}
	pthread_mutex_unlock(&p->pol_lock);
	return got;
}

void
vems__pol_putback(struct vems_pool *p, uint32_t frame)
{
	pthread_mutex_lock(&p->pol_lock);
	if (p->fr[frame].q == VEMS_FQ_BUSY)
		push_head(p, frame, VEMS_FQ_MAIN);
	pthread_mutex_unlock(&p->pol_lock);
}

static uint32_t
ghost_key(uint64_t serial, uint32_t ext, uint32_t *cell)
{
	uint64_t h = vems__hash64(serial, ext);
	*cell = (uint32_t)h;
	return (uint32_t)(h >> 32) | 1; /* 0 marks an empty cell */
}

bool
vems__ghost_take(struct vems_pool *p, uint64_t serial, uint32_t ext)
{
	uint32_t c, k = ghost_key(serial, ext, &c);
	pthread_mutex_lock(&p->pol_lock);
	uint32_t *cell = &p->ghost[c & p->ghost_mask];
	bool hit = *cell == k;
	if (hit)
		*cell = 0;
	pthread_mutex_unlock(&p->pol_lock);
	return hit;
}

bool
vems__seen_again(struct vems_pool *p, uint64_t serial, uint32_t ext)
{
	uint32_t c, k = ghost_key(serial, ext, &c);
	pthread_mutex_lock(&p->pol_lock);
	/* 4-way sets, newest first: a FIFO per set */
	uint32_t *set = &p->seen[(size_t)(c & p->seen_mask) * SEEN_WAYS];
	int w = 0;
	while (w < SEEN_WAYS && set[w] != k)
		w++;
	bool again = w < SEEN_WAYS;
	if (again) { /* forgotten: the next part-miss counts anew */
		for (; w + 1 < SEEN_WAYS; w++)
			set[w] = set[w + 1];
		set[SEEN_WAYS - 1] = 0;
	} else {
		memmove(set + 1, set, (SEEN_WAYS - 1) * sizeof(*set));
		set[0] = k;
	}
	pthread_mutex_unlock(&p->pol_lock);
	return again;
}

void
vems__ghost_add(struct vems_pool *p, uint64_t serial, uint32_t ext)
{
	uint32_t c, k = ghost_key(serial, ext, &c);
	pthread_mutex_lock(&p->pol_lock);
	p->ghost[c & p->ghost_mask] = k;
	pthread_mutex_unlock(&p->pol_lock);
}

uint32_t
vems__pol_victims_range(struct vems_pool *p, uint32_t f0, uint32_t f1,
			uint32_t *out, uint32_t max)
{
	uint32_t got = 0;
	pthread_mutex_lock(&p->pol_lock);
	for (uint32_t f = f0; f < f1 && got < max; f++) {
		uint8_t q = p->fr[f].q;
		if (q == VEMS_FQ_SMALL || q == VEMS_FQ_MAIN) {
			unlink_frame(p, f);
			p->fr[f].q = VEMS_FQ_BUSY;
			out[got++] = f;
		}
	}
	pthread_mutex_unlock(&p->pol_lock);
	return got;
}

uint32_t
vems__pol_victims_own(struct vems_pool *p, uint64_t serial, uint32_t lo,
		      uint32_t hi, uint32_t *out, uint32_t max)
{
	uint32_t got = 0, budget = 4096;
	pthread_mutex_lock(&p->pol_lock);
	struct vems_fifo *qs[2] = {&p->small, &p->main};
	for (int qi = 0; qi < 2; qi++) {
		uint32_t f = qs[qi]->tail;
		while (f != NIL && got < max && budget-- > 0) {
			uint32_t prev = p->fr[f].prev;
			const struct vems_entry *e =
				&p->entries[p->fr[f].entry];
			/* the caller holds `serial`'s object: its entries
			 * cannot change, so ext_index may be read */
			if (vems__entry_owner(e) == serial &&
			    (e->ext_index < lo || e->ext_index > hi)) {
				unlink_frame(p, f);
				p->fr[f].q = VEMS_FQ_BUSY;
				out[got++] = f;
			}
			f = prev;
		}
	}
	pthread_mutex_unlock(&p->pol_lock);
	return got;
}
