/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * index.c -- per-object DRAM extent index: extent number -> entry index
 *
 * Rebuilt from the entry table at open; never persisted. Two forms:
 *
 * - dense: vals[ext] is the entry of extent ext (UINT32_MAX: unmapped),
 *   kept while the mapped extents fill at least half of [0, cap), which
 *   is what objects written from the start look like: 4 to 8 bytes per
 *   mapped extent, and a lookup is one load;
 * - hash: open addressing with linear probing and backward-shift
 *   deletion, two uint32 per slot, at most 3/4 full (about 11 to 21
 *   bytes per mapped extent), for sparse objects.
 *
 * A dense index whose next extent would leave it more than half empty
 * becomes a hash table; a hash table that grows checks whether its
 * extents are dense enough to go back. An index left empty frees its
 * arrays, so an object truncated to nothing starts dense again.
 */

#include <errno.h>
#include <stdlib.h>

#include "vems_internal.h"

#define NIL UINT32_MAX
#define MIN_CAP 16u

static inline uint32_t
slot_of(uint32_t key, uint32_t cap)
{
	/* Fibonacci hashing: sequential extents spread over the table */
	return (uint32_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 32) &
		(cap - 1);
}

/* The least power of two >= n, at least MIN_CAP (n <= 2^32). */
static uint64_t
pow2_at_least(uint64_t n)
{
	uint64_t c = MIN_CAP;
	while (c < n)
		c <<= 1;
	return c;
}

/* May `count` extents, the last at most max_ext, be held dense? */
static bool
dense_fits(uint64_t max_ext, uint64_t count)
{
	uint64_t cap = pow2_at_least(max_ext + 1);
	return cap <= MIN_CAP || (cap <= 2 * count && cap <= UINT32_MAX / 2);
}

void
vems__xidx_init(struct vems_xidx *x)
{
	x->keys = x->vals = NULL;
	x->cap = x->count = 0;
}

void
vems__xidx_fini(struct vems_xidx *x)
{
	free(x->keys);
	free(x->vals);
	vems__xidx_init(x);
}

uint32_t
vems__xidx_hget(const struct vems_xidx *x, uint32_t ext)
{
	uint32_t key = ext + 1;
	for (uint32_t i = slot_of(key, x->cap);; i = (i + 1) & (x->cap - 1)) {
		if (x->keys[i] == key)
			return x->vals[i];
		if (x->keys[i] == 0)
			return NIL;
	}
}

static void
hash_put(struct vems_xidx *x, uint32_t key, uint32_t val)
{
	uint32_t i = slot_of(key, x->cap);
	while (x->keys[i] != 0 && x->keys[i] != key)
		i = (i + 1) & (x->cap - 1);
	if (x->keys[i] == 0)
		x->count++;
	x->keys[i] = key;
	x->vals[i] = val;
}

/* Calls fn for each (ext, entry) in either form. */
void
vems__xidx_foreach(const struct vems_xidx *x,
		   void (*fn)(uint32_t ext, uint32_t entry, void *arg),
		   void *arg)
{
	for (uint32_t i = 0; i < x->cap; i++) {
		if (x->keys == NULL) {
			if (x->vals[i] != NIL)
				fn(i, x->vals[i], arg);
		} else if (x->keys[i] != 0) {
			fn(x->keys[i] - 1, x->vals[i], arg);
		}
	}
}

static void
copy_fn(uint32_t ext, uint32_t entry, void *arg)
{
	struct vems_xidx *n = arg;
	if (n->keys == NULL) {
		n->vals[ext] = entry;
		n->count++;
	} else {
		hash_put(n, ext + 1, entry);
	}
}

/* Moves x's extents into a new index of form `dense` and capacity cap. */
static int
rebuild(struct vems_xidx *x, bool dense, uint64_t cap)
{
	struct vems_xidx n = {NULL, malloc(cap * sizeof(uint32_t)),
			      (uint32_t)cap, 0};
	if (!dense)
		n.keys = calloc(cap, sizeof(uint32_t));
	if (n.vals == NULL || (!dense && n.keys == NULL)) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	if (dense)
		for (uint64_t i = 0; i < cap; i++)
			n.vals[i] = NIL;
	vems__xidx_foreach(x, copy_fn, &n);
	free(x->keys);
	free(x->vals);
	*x = n;
	return 0;
}

static void
max_fn(uint32_t ext, uint32_t entry, void *arg)
{
	(void)entry;
	uint32_t *m = arg;
	if (ext > *m)
		*m = ext;
}

int
vems__xidx_put(struct vems_xidx *x, uint32_t ext, uint32_t entry)
{
	int ret;
	if (x->keys == NULL) {
		if (ext < x->cap) {
			x->count += x->vals[ext] == NIL;
			x->vals[ext] = entry;
			return 0;
		}
		/* past the end: grow dense, or go to a hash table */
		if (dense_fits(ext, (uint64_t)x->count + 1))
			ret = rebuild(x, true,
				      pow2_at_least((uint64_t)ext + 1));
		else
			ret = rebuild(
				x, false,
				pow2_at_least(((uint64_t)x->count + 1) * 2));
		if (ret)
			return ret;
		if (x->keys == NULL) {
			x->vals[ext] = entry;
			x->count++;
			return 0;
		}
	} else if ((uint64_t)(x->count + 1) * 4 > (uint64_t)x->cap * 3) {
		/* full: dense again if the extents now allow it */
		uint32_t max = ext;
		vems__xidx_foreach(x, max_fn, &max);
		if (dense_fits(max, (uint64_t)x->count + 1)) {
			if ((ret = rebuild(x, true,
					   pow2_at_least((uint64_t)max + 1))))
				return ret;
			x->count += x->vals[ext] == NIL;
			x->vals[ext] = entry;
			return 0;
		}
		if ((ret = rebuild(x, false, (uint64_t)x->cap * 2)))
			return ret;
	}
	hash_put(x, ext + 1, entry);
	return 0;
}

void
vems__xidx_del(struct vems_xidx *x, uint32_t ext)
{
	if (x->count == 0)
		return;
	if (x->keys == NULL) {
		if (ext >= x->cap || x->vals[ext] == NIL)
			return;
		x->vals[ext] = NIL;
	} else {
		uint32_t key = ext + 1, mask = x->cap - 1;
		uint32_t i = slot_of(key, x->cap);
		while (x->keys[i] != key) {
			if (x->keys[i] == 0)
				return;
			i = (i + 1) & mask;
		}
		/* backward-shift: pull later members of the cluster into
		 * the gap */
		uint32_t j = i;
		for (;;) {
			j = (j + 1) & mask;
			if (x->keys[j] == 0)
				break;
			uint32_t home = slot_of(x->keys[j], x->cap);
			/* can j's key live at i? only if home is not in
			 * (i, j] */
			if (((j - home) & mask) >= ((j - i) & mask)) {
				x->keys[i] = x->keys[j];
				x->vals[i] = x->vals[j];
				i = j;
			}
		}
		x->keys[i] = 0;
	}
	if (--x->count == 0)
		vems__xidx_fini(x); /* the next extent starts dense */
}
