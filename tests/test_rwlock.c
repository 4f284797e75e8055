/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_rwlock.c -- the per-object lock (lib/rwlock.h)
 *
 * - the try calls: who may enter while it is held which way;
 * - exclusion: writers change two words that readers and writers check
 *   are equal, with threads that sleep on the futex and wake (more
 *   threads than cores, writers preferring to take it while readers
 *   hold it);
 * - a reader that takes it shared a second time while a writer waits
 *   gets in (reader-preferring, as the default pthread rwlock; the
 *   library's read paths rely on it);
 * - every waiter is woken: a writer blocked behind readers, readers
 *   blocked behind a writer.
 */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "rwlock.h"

static void
test_try(void **state)
{
	(void)state;
	struct vems_rwlock l;
	vems__rw_init(&l);
	assert_int_equal(vems__rw_tryrdlock(&l), 0);
	assert_int_equal(vems__rw_tryrdlock(&l), 0);
	assert_int_equal(vems__rw_trywrlock(&l), EBUSY);
	vems__rw_unlock(&l);
	assert_int_equal(vems__rw_trywrlock(&l), EBUSY);
	vems__rw_unlock(&l);
	assert_int_equal(atomic_load(&l.w), 0);
	assert_int_equal(vems__rw_trywrlock(&l), 0);
	assert_int_equal(vems__rw_trywrlock(&l), EBUSY);
	assert_int_equal(vems__rw_tryrdlock(&l), EBUSY);
	vems__rw_unlock(&l);
	assert_int_equal(atomic_load(&l.w), 0);
	vems__rw_wrlock(&l);
	vems__rw_unlock(&l);
	vems__rw_rdlock(&l);
	vems__rw_unlock(&l);
	assert_int_equal(atomic_load(&l.w), 0);
}

struct shared {
	struct vems_rwlock l;
	uint64_t a, b; /* equal whenever nobody holds it exclusively */
	atomic_int bad;
	atomic_int stop;
	atomic_long reads, writes;
};

static void *
hammer(void *arg)
{
	struct shared *s = arg;
	uint64_t rng = (uint64_t)(uintptr_t)&rng;
	while (!atomic_load(&s->stop)) {
		uint64_t r = tu_rand(&rng);
		if (r % 4 == 0) {
			if (r % 8 == 0)
				vems__rw_wrlock(&s->l);
			else if (vems__rw_trywrlock(&s->l) != 0)
				continue;
			uint64_t a = s->a;
			s->a = a + 1;
			if (r % 32 == 0)
				sched_yield(); /* others block meanwhile */
			if (s->b != a)
				atomic_fetch_add(&s->bad, 1);
			s->b = a + 1;
			vems__rw_unlock(&s->l);
			atomic_fetch_add(&s->writes, 1);
		} else {
			if (r % 3 == 0) {
				if (vems__rw_tryrdlock(&s->l) != 0)
					continue;
			} else {
				vems__rw_rdlock(&s->l);
			}
			uint64_t a = s->a;
			if (r % 64 == 1)
				sched_yield();
			if (s->b != a)
				atomic_fetch_add(&s->bad, 1);
			vems__rw_unlock(&s->l);
			atomic_fetch_add(&s->reads, 1);
		}
	}
	return NULL;
}

static void
test_exclusion(void **state)
{
	(void)state;
	enum { THREADS = 6 };
	struct shared *s = calloc(1, sizeof(*s));
	vems__rw_init(&s->l);
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, s), 0);
	/* a fixed amount of work, not a time: stop after enough of both */
	while (atomic_load(&s->writes) < 200000 ||
	       atomic_load(&s->reads) < 200000)
		sched_yield();
	atomic_store(&s->stop, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&s->bad), 0);
	assert_int_equal(s->a, (uint64_t)atomic_load(&s->writes));
	assert_int_equal(atomic_load(&s->l.w), 0);
	free(s);
}

struct waiter {
	struct vems_rwlock *l;
	bool excl;
	atomic_int entered;
};

static void *
wait_for_it(void *arg)
{
	struct waiter *w = arg;
	if (w->excl)
		vems__rw_wrlock(w->l);
	else
		vems__rw_rdlock(w->l);
	atomic_store(&w->entered, 1);
	vems__rw_unlock(w->l);
	return NULL;
}

/* Spins until the lock word shows a sleeper (no timing involved). */
static void
until_waiting(struct vems_rwlock *l)
{
	while (!(atomic_load(&l->w) & VEMS_RW_WAITING))
		sched_yield();
}

static void
test_reader_enters_while_writer_waits(void **state)
{
	(void)state;
	struct vems_rwlock l;
	vems__rw_init(&l);
	vems__rw_rdlock(&l);
	struct waiter w = {&l, true, 0};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_for_it, &w), 0);
	until_waiting(&l);
	/* a second shared hold by the same thread: must not deadlock */
	vems__rw_rdlock(&l);
	assert_int_equal(atomic_load(&w.entered), 0);
	vems__rw_unlock(&l);
	assert_int_equal(atomic_load(&w.entered), 0);
	vems__rw_unlock(&l); /* the last reader wakes the writer */
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&w.entered), 1);
	assert_int_equal(atomic_load(&l.w), 0);
}

static void
test_all_waiters_woken(void **state)
{
	(void)state;
	enum { N = 5 };
	struct vems_rwlock l;
	vems__rw_init(&l);
	vems__rw_wrlock(&l);
	struct waiter w[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		w[i] = (struct waiter){&l, i % 2 == 0, 0};
		assert_int_equal(
			pthread_create(&t[i], NULL, wait_for_it, &w[i]), 0);
	}
	until_waiting(&l);
	for (int i = 0; i < N; i++)
		assert_int_equal(atomic_load(&w[i].entered), 0);
	vems__rw_unlock(&l);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(atomic_load(&w[i].entered), 1);
	}
	assert_int_equal(atomic_load(&l.w), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_try),
		cmocka_unit_test(test_exclusion),
		cmocka_unit_test(test_reader_enters_while_writer_waits),
		cmocka_unit_test(test_all_waiters_woken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
