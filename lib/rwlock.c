/* SPDX-License-Identifier: BSD-3-Clause */
/* rwlock.c -- the slow paths of the per-object lock: sleeping, waking */

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rwlock.h"

/*
 * Takes the lock once (w & mask) == 0, adding `add` (one reader, or the
 * writer bit); until then sleeps on the word with VEMS_RW_WAITING set,
 * so that whoever lets go next wakes it. A change of the word between
 * the check and the sleep makes the futex call return at once.
 */
void
vems__rw_wait(struct vems_rwlock *l, uint32_t mask, uint32_t add)
{
	uint32_t v = atomic_load_explicit(&l->w, memory_order_relaxed);
	for (;;) {
		if ((v & mask) == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &l->w, &v, v + add, memory_order_acquire,
				    memory_order_relaxed))
				return;
			continue;
		}
		if (!(v & VEMS_RW_WAITING)) {
			if (!atomic_compare_exchange_weak_explicit(
				    &l->w, &v, v | VEMS_RW_WAITING,
				    memory_order_relaxed, memory_order_relaxed))
				continue;
			v |= VEMS_RW_WAITING;
		}
		(void)syscall(SYS_futex, &l->w, FUTEX_WAIT_PRIVATE, v, NULL,
			      NULL, 0);
		v = atomic_load_explicit(&l->w, memory_order_relaxed);
	}
}

void
vems__rw_wake(struct vems_rwlock *l)
{
	(void)syscall(SYS_futex, &l->w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
		      0);
}
