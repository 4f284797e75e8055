/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * index.c -- per-object DRAM extent index: extent number -> entry index
 *
 * Open addressing with linear probing and backward-shift deletion: two
 * uint32 per slot, at most 3/4 full, so about 11 bytes per mapped extent.
 * Rebuilt from the entry table at open; never persisted.
 */

#include <errno.h>
#include <stdlib.h>

#include "vems_internal.h"

static inline uint32_t
slot_of(uint32_t key, uint32_t cap)
{
	/* Fibonacci hashing: sequential extents spread over the table */
	return (uint32_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 32) &
		(cap - 1);
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
vems__xidx_get(const struct vems_xidx *x, uint32_t ext)
{
	if (x->count == 0)
		return UINT32_MAX;
	uint32_t key = ext + 1;
	for (uint32_t i = slot_of(key, x->cap);; i = (i + 1) & (x->cap - 1)) {
		if (x->keys[i] == key)
			return x->vals[i];
		if (x->keys[i] == 0)
			return UINT32_MAX;
	}
}

static void
raw_put(struct vems_xidx *x, uint32_t key, uint32_t val)
{
	uint32_t i = slot_of(key, x->cap);
	while (x->keys[i] != 0 && x->keys[i] != key)
		i = (i + 1) & (x->cap - 1);
	if (x->keys[i] == 0)
		x->count++;
	x->keys[i] = key;
	x->vals[i] = val;
}

static int
resize(struct vems_xidx *x, uint32_t cap)
{
	struct vems_xidx n = {calloc(cap, sizeof(uint32_t)),
			      malloc(cap * sizeof(uint32_t)), cap, 0};
	if (n.keys == NULL || n.vals == NULL) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < x->cap; i++)
		if (x->keys[i] != 0)
			raw_put(&n, x->keys[i], x->vals[i]);
	free(x->keys);
	free(x->vals);
	*x = n;
	return 0;
}

int
vems__xidx_put(struct vems_xidx *x, uint32_t ext, uint32_t entry)
{
	if ((uint64_t)(x->count + 1) * 4 > (uint64_t)x->cap * 3) {
		int ret = resize(x, x->cap ? x->cap * 2 : 16);
		if (ret)
			return ret;
	}
	raw_put(x, ext + 1, entry);
	return 0;
}

void
vems__xidx_del(struct vems_xidx *x, uint32_t ext)
{
	if (x->count == 0)
		return;
	uint32_t key = ext + 1, mask = x->cap - 1;
	uint32_t i = slot_of(key, x->cap);
	while (x->keys[i] != key) {
		if (x->keys[i] == 0)
			return;
		i = (i + 1) & mask;
	}
	/* backward-shift: pull later members of the cluster into the gap */
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (x->keys[j] == 0)
			break;
		uint32_t home = slot_of(x->keys[j], x->cap);
		/* can j's key live at i? only if home is not in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			x->keys[i] = x->keys[j];
			x->vals[i] = x->vals[j];
			i = j;
		}
	}
	x->keys[i] = 0;
	x->count--;
}

void
vems__xidx_foreach(const struct vems_xidx *x,
		   void (*fn)(uint32_t ext, uint32_t entry, void *arg),
		   void *arg)
{
	for (uint32_t i = 0; i < x->cap; i++)
		if (x->keys[i] != 0)
			fn(x->keys[i] - 1, x->vals[i], arg);
}
