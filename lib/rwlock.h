/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rwlock.h -- the per-object reader-writer lock
 *
 * One 32-bit word and a futex: one compare-and-swap to take it and one
 * exchange to give it back when nobody waits. glibc's pthread_rwlock_t
 * takes several locked instructions each way, and around a durable 64 B
 * write (about 0.2 us of persist in the pmem model) that showed: with
 * this lock and the direct write path, `vems-bench --mode pmem --only
 * small-writes` went from 1.54-1.86x raw to 1.16-1.17x (bench/README.md,
 * the build before and after, back to back). `--only mechanisms`
 * measures both lock shapes around a raw persist (lock-around-64B-persist).
 *
 * Semantics are those of a default (reader-preferring) pthread rwlock:
 * readers enter whenever no writer holds it, so a thread may take it
 * shared twice even while a writer waits; writers wait for all readers.
 * Not recursive for writers. The try functions return 0 or EBUSY.
 *
 * Word: VEMS_RW_WRITER (held exclusively), VEMS_RW_WAITING (someone
 * sleeps on the futex: the holder who lets go wakes them all), and the
 * count of readers in the low 30 bits.
 */
#ifndef VEMS_RWLOCK_H
#define VEMS_RWLOCK_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

struct vems_rwlock {
	_Atomic uint32_t w;
};

#define VEMS_RW_WRITER (UINT32_C(1) << 31)
#define VEMS_RW_WAITING (UINT32_C(1) << 30)
#define VEMS_RW_READERS (VEMS_RW_WAITING - 1)

void vems__rw_wait(struct vems_rwlock *l, uint32_t mask, uint32_t add);
void vems__rw_wake(struct vems_rwlock *l);

static inline void
vems__rw_init(struct vems_rwlock *l)
{
	atomic_init(&l->w, 0);
}

static inline int
vems__rw_trywrlock(struct vems_rwlock *l)
{
	uint32_t v = atomic_load_explicit(&l->w, memory_order_relaxed);
	while ((v & ~VEMS_RW_WAITING) == 0)
		if (atomic_compare_exchange_weak_explicit(
			    &l->w, &v, v | VEMS_RW_WRITER, memory_order_acquire,
			    memory_order_relaxed))
			return 0;
	return EBUSY;
}

static inline int
vems__rw_tryrdlock(struct vems_rwlock *l)
{
	uint32_t v = atomic_load_explicit(&l->w, memory_order_relaxed);
	while (!(v & VEMS_RW_WRITER))
		if (atomic_compare_exchange_weak_explicit(&l->w, &v, v + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return 0;
	return EBUSY;
}

static inline void
vems__rw_wrlock(struct vems_rwlock *l)
{
	uint32_t v = 0;
	if (!atomic_compare_exchange_strong_explicit(&l->w, &v, VEMS_RW_WRITER,
						     memory_order_acquire,
						     memory_order_relaxed))
		vems__rw_wait(l, ~VEMS_RW_WAITING, VEMS_RW_WRITER);
}

static inline void
vems__rw_rdlock(struct vems_rwlock *l)
{
	if (vems__rw_tryrdlock(l) != 0)
		vems__rw_wait(l, VEMS_RW_WRITER, 1);
}

/* Lets go of the lock, held either way by the caller. */
static inline void
vems__rw_unlock(struct vems_rwlock *l)
{
	uint32_t v = atomic_load_explicit(&l->w, memory_order_relaxed);
	if (v & VEMS_RW_WRITER) {
		/* a writer holds it alone: no reader can be counted */
		v = atomic_exchange_explicit(&l->w, 0, memory_order_release);
		if (v & VEMS_RW_WAITING)
			vems__rw_wake(l);
		return;
	}
	v = atomic_fetch_sub_explicit(&l->w, 1, memory_order_release);
	if ((v & VEMS_RW_READERS) == 1 && (v & VEMS_RW_WAITING)) {
		/* the last reader: clear the bit if nobody came in since */
		uint32_t want = VEMS_RW_WAITING;
		if (atomic_compare_exchange_strong_explicit(
			    &l->w, &want, 0, memory_order_relaxed,
			    memory_order_relaxed))
			vems__rw_wake(l);
	}
}

#endif /* VEMS_RWLOCK_H */
