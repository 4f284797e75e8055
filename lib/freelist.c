/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * freelist.c -- LIFO free lists of uint32 indices (frames, entries, slots)
 *
 * A leaf: callers hold whatever lock guards the list (alloc_lock).
 */

#include <errno.h>
#include <stdlib.h>

#include "vems_internal.h"

int
vems__fl_init(struct vems_freelist *fl, uint32_t cap)
{
	fl->v = malloc((cap ? cap : 1) * sizeof(uint32_t));
	fl->n = 0;
	fl->cap = cap;
	return fl->v ? 0 : -ENOMEM;
}

void
vems__fl_fini(struct vems_freelist *fl)
{
	free(fl->v);
	fl->v = NULL;
	fl->n = fl->cap = 0;
}

void
vems__fl_push(struct vems_freelist *fl, uint32_t v)
{
	/* capacity is the resource's count, so a push never overflows */
	fl->v[fl->n++] = v;
}

bool
vems__fl_pop(struct vems_freelist *fl, uint32_t *v)
{
	if (fl->n == 0)
		return false;
	*v = fl->v[--fl->n];
	return true;
}
