/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_concurrency.c -- many threads on one pool
 *
 * - disjoint objects: each thread writes and verifies its own object;
 * - one object: writers store whole pages of one repeated byte, readers
 *   check that no page they read is torn (a read sees a write wholly
 *   before or after it);
 * - metadata churn (create/bind/remove) racing the data path;
 * - names that take data chunks (chunk.c) racing writers, readers and
 *   vems_pool_check.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#define MIB (UINT64_C(1) << 20)
#define NTHREADS 4

struct ctx {
	struct tu_pool tp;
	struct vems_oid shared_oid;
	atomic_int stop;
	atomic_int errors;
	atomic_int done;
};

struct targ {
	struct ctx *c;
	int id;
};

static void *
disjoint_worker(void *arg)
{
	struct targ *t = arg;
	struct vems_oid oid = {(uint64_t)t->id + 100, 0};
	struct vems_obj *o;
	if (vems_obj_create(t->c->tp.pool, &oid) ||
	    vems_obj_open(t->c->tp.pool, oid, 0, &o)) {
		fprintf(stderr, "thread %d: create/open: %s\n", t->id,
			vems_errormsg());
		atomic_fetch_add(&t->c->errors, 1);
		return NULL;
	}
	const size_t span = 1 * MIB;
	uint8_t *shadow = calloc(1, span), *buf = malloc(70000);
	uint64_t rng = (uint64_t)t->id + 1, size = 0;
	for (int i = 0; i < 3000; i++) {
		uint64_t off = tu_rand(&rng) % span;
		size_t len = 1 + tu_rand(&rng) % 65536;
		if (off + len > span)
			len = span - off;
		tu_fill(buf, len, (uint64_t)(t->id * 100000 + i), off);
		ssize_t w = vems_obj_pwrite(o, buf, len, off, 0);
		if (w != (ssize_t)len) {
			fprintf(stderr,
				"thread %d, op %d: write of %zu at %llu "
				"gave %zd: %s\n",
				t->id, i, len, (unsigned long long)off, w,
				vems_errormsg());
			atomic_fetch_add(&t->c->errors, 1);
		}
		memcpy(shadow + off, buf, len);
		if (off + len > size)
			size = off + len;
		uint64_t roff = tu_rand(&rng) % size;
		size_t rlen = 1 + tu_rand(&rng) % 65536;
		ssize_t got = vems_obj_pread(o, buf, rlen, roff);
		ssize_t want =
			(ssize_t)(roff + rlen > size ? size - roff : rlen);
		if (got != want || memcmp(buf, shadow + roff, (size_t)want)) {
			fprintf(stderr,
				"thread %d, op %d: read of %zu at %llu "
				"gave %zd (want %zd) or other bytes: %s\n",
				t->id, i, rlen, (unsigned long long)roff, got,
				want, got < 0 ? vems_errormsg() : "");
			atomic_fetch_add(&t->c->errors, 1);
		}
	}
	vems_obj_close(&o);
	free(shadow);
	free(buf);
	return NULL;
}

static void
run(struct ctx *c, void *(*fn)(void *), int n)
{
	pthread_t th[NTHREADS * 2];
	struct targ ta[NTHREADS * 2];
	for (int i = 0; i < n; i++) {
		ta[i] = (struct targ){c, i};
		assert_int_equal(pthread_create(&th[i], NULL, fn, &ta[i]), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

static void
test_disjoint_objects(void **state)
{
	(void)state;
	struct ctx c = {0};
	tu_create(&c.tp, "conc", 256 * MIB, 256 * MIB, 0);
	run(&c, disjoint_worker, NTHREADS);
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_int_equal(vems_pool_check(c.tp.pool, NULL, NULL), 0);
	tu_destroy(&c.tp);
}

#define PAGES 64
static void *
page_writer(void *arg)
{
	struct targ *t = arg;
	struct vems_obj *o;
	if (vems_obj_open(t->c->tp.pool, t->c->shared_oid, 0, &o)) {
		atomic_fetch_add(&t->c->errors, 1);
		return NULL;
	}
	static _Thread_local uint8_t page[3 * VEMS_PAGE_SIZE];
	uint64_t rng = (uint64_t)t->id * 77 + 1;
	while (!atomic_load(&t->c->stop)) {
		uint64_t pg = tu_rand(&rng) % (PAGES - 2);
		size_t npg = 1 + tu_rand(&rng) % 3;
		memset(page, (int)(tu_rand(&rng) & 0xff), sizeof(page));
		if (vems_obj_pwrite(o, page, npg * VEMS_PAGE_SIZE,
				    pg * VEMS_PAGE_SIZE, 0) < 0)
			atomic_fetch_add(&t->c->errors, 1);
	}
	vems_obj_close(&o);
	return NULL;
}

static void *
page_reader(void *arg)
{
	struct targ *t = arg;
	struct vems_obj *o;
	if (vems_obj_open(t->c->tp.pool, t->c->shared_oid, VEMS_O_RDONLY, &o)) {
		atomic_fetch_add(&t->c->errors, 1);
		return NULL;
	}
	static _Thread_local uint8_t buf[PAGES * VEMS_PAGE_SIZE];
	for (int i = 0; i < 3000; i++) {
		ssize_t n = vems_obj_pread(o, buf, sizeof(buf), 0);
		if (n != (ssize_t)sizeof(buf)) {
			atomic_fetch_add(&t->c->errors, 1);
			continue;
		}
		for (int pg = 0; pg < PAGES; pg++) {
			const uint8_t *p = buf + pg * VEMS_PAGE_SIZE;
			for (unsigned b = 1; b < VEMS_PAGE_SIZE; b++)
				if (p[b] != p[0]) {
					atomic_fetch_add(&t->c->errors, 1);
					break;
				}
		}
	}
	return (vems_obj_close(&o), NULL);
}

static void *
mixed_worker(void *arg)
{
	struct targ *t = arg;
	if (t->id % 2 == 0)
		return page_writer(arg);
	void *r = page_reader(arg);
	atomic_store(&t->c->stop, 1);
	return r;
}

static void
test_same_object_no_torn_pages(void **state)
{
	(void)state;
	struct ctx c = {0};
	tu_create(&c.tp, "torn", 64 * MIB, 64 * MIB, 0);
	c.shared_oid = (struct vems_oid){1, 0};
	TU_OK(vems_obj_create(c.tp.pool, &c.shared_oid));
	struct vems_obj *o;
	TU_OK(vems_obj_open(c.tp.pool, c.shared_oid, 0, &o));
	static uint8_t zero[PAGES * VEMS_PAGE_SIZE];
	assert_int_equal(vems_obj_pwrite(o, zero, sizeof(zero), 0, 0),
			 (ssize_t)sizeof(zero));
	vems_obj_close(&o);
	run(&c, mixed_worker, NTHREADS);
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_int_equal(vems_pool_check(c.tp.pool, NULL, NULL), 0);
	tu_destroy(&c.tp);
}

static void *
meta_worker(void *arg)
{
	struct targ *t = arg;
	if (t->id == 0)
		return disjoint_worker(arg);
	struct vems_pool *p = t->c->tp.pool;
	char name[64];
	for (int i = 0; i < 500; i++) {
		struct vems_oid oid = {(uint64_t)t->id, 0};
		snprintf(name, sizeof(name), "t%d/obj%d", t->id, i);
		struct vems_obj *o;
		if (vems_obj_create(p, &oid) || vems_name_bind(p, name, oid) ||
		    vems_obj_open(p, oid, 0, &o)) {
			atomic_fetch_add(&t->c->errors, 1);
			continue;
		}
		if (vems_obj_pwrite(o, name, strlen(name), (uint64_t)i * 1000,
				    0) < 0)
			atomic_fetch_add(&t->c->errors, 1);
		vems_obj_close(&o);
		if (i % 3 == 0 && vems_obj_remove(p, oid) != 0)
			atomic_fetch_add(&t->c->errors, 1);
	}
	return NULL;
}

static int
count_name(const char *name, const struct vems_oid *oid, void *arg)
{
	(void)name;
	(void)oid;
	(*(int *)arg)++;
	return 0;
}

static void
test_metadata_races_data_path(void **state)
{
	(void)state;
	struct ctx c = {0};
	tu_create(&c.tp, "meta", 256 * MIB, 64 * MIB, 0);
	run(&c, meta_worker, NTHREADS);
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_int_equal(vems_pool_check(c.tp.pool, NULL, NULL), 0);
	int names = 0;
	TU_OK(vems_name_list(c.tp.pool, "t", count_name, &names));
	assert_int_equal(names, (NTHREADS - 1) * (500 - 167));
	tu_reopen(&c.tp);
	assert_int_equal(vems_pool_check(c.tp.pool, NULL, NULL), 0);
	names = 0;
	TU_OK(vems_name_list(c.tp.pool, "t", count_name, &names));
	assert_int_equal(names, (NTHREADS - 1) * (500 - 167));
	tu_destroy(&c.tp);
}

#define RECLAIM_NAMES 300

static void
print_problem(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "pool check: %s\n", msg);
}

static void *
reclaim_worker(void *arg)
{
	struct targ *t = arg;
	struct ctx *c = t->c;
	struct vems_pool *p = c->tp.pool;
	if (t->id < 2) {
		disjoint_worker(arg);
	} else if (t->id < 4) {
		/* long names: 64 of them take a 256 KiB heap chunk */
		static _Thread_local char name[4001];
		for (int i = 0; i < RECLAIM_NAMES; i++) {
			memset(name, 'a' + i % 26, 4000);
			int n = snprintf(name, 32, "r%d/%05d", t->id, i);
			name[n] = '-';
			name[4000] = '\0';
			if (vems_name_bind(p, name, c->shared_oid)) {
				fprintf(stderr, "bind %d: %s\n", i,
					vems_errormsg());
				atomic_fetch_add(&c->errors, 1);
			}
		}
	} else {
		/* checks see parked frames as what they are */
		while (atomic_load(&c->done) < 4)
			if (vems_pool_check(p, print_problem, NULL) != 0)
				atomic_fetch_add(&c->errors, 1);
		return NULL;
	}
	atomic_fetch_add(&c->done, 1);
	return NULL;
}

static void
test_reclaim_races_data_path(void **state)
{
	(void)state;
	struct ctx c = {0};
	tu_create(&c.tp, "reclaim", 16 * MIB, 256 * MIB, 0);
	struct vems_pool *p = c.tp.pool;
	struct vems_pool_info in;
	TU_OK(vems_pool_info(p, &in));
	/* pmem full of data first: the writers' frames come from spills */
	c.shared_oid = (struct vems_oid){1, 0};
	TU_OK(vems_obj_create(p, &c.shared_oid));
	uint64_t size = in.pmem_extents * in.extent_size;
	uint8_t *buf = malloc(size + 1);
	tu_fill(buf, size, 5, 0);
	struct vems_obj *o;
	TU_OK(vems_obj_open(p, c.shared_oid, 0, &o));
	assert_int_equal(vems_obj_pwrite(o, buf, size, 0, 0), (ssize_t)size);
	run(&c, reclaim_worker, 5);
	assert_int_equal(atomic_load(&c.errors), 0);
	struct vems_pool_info in2;
	TU_OK(vems_pool_info(p, &in2));
	print_message("pmem extents: %llu, then %llu after %d long names\n",
		      (unsigned long long)in.pmem_extents,
		      (unsigned long long)in2.pmem_extents, 2 * RECLAIM_NAMES);
	assert_true(in2.pmem_extents < in.pmem_extents);
	assert_int_equal(vems_obj_pread(o, buf, size + 1, 0), (ssize_t)size);
	assert_true(tu_verify(buf, size, 5, 0));
	vems_obj_close(&o);
	assert_int_equal(vems_pool_check(p, NULL, NULL), 0);
	tu_reopen(&c.tp);
	assert_int_equal(vems_pool_check(c.tp.pool, NULL, NULL), 0);
	int names = 0;
	TU_OK(vems_name_list(c.tp.pool, "r", count_name, &names));
	assert_int_equal(names, 2 * RECLAIM_NAMES);
	free(buf);
	tu_destroy(&c.tp);
}

/*
 * The event counters are exact however many threads add to them: more
 * threads at once than there are owned shards (stats.c: the rest share
 * shard 0 with atomic adds), and a second wave that takes the shards the
 * first gave back when its threads exited. A shard handed to two threads,
 * or shared adds that are not atomic, lose counts.
 */
#define COUNT_THREADS 40
#define COUNT_WRITES 2000
struct count_arg {
	struct ctx *c;
	pthread_barrier_t *start;
	int id;
};

static void *
count_worker(void *arg)
{
	struct count_arg *a = arg;
	struct vems_oid oid = {(uint64_t)a->id + 5000, 0};
	struct vems_obj *o = NULL;
	static _Thread_local uint8_t buf[32768];
	memset(buf, a->id, sizeof(buf));
	if (vems_obj_create(a->c->tp.pool, &oid) ||
	    vems_obj_open(a->c->tp.pool, oid, 0, &o) ||
	    vems_obj_pwrite(o, buf, sizeof(buf), 0, 0) != sizeof(buf))
		atomic_fetch_add(&a->c->errors, 1);
	pthread_barrier_wait(a->start); /* all alive at once from here */
	for (int i = 1; o && i < COUNT_WRITES; i++)
		if (vems_obj_pwrite(o, buf, 512, (uint64_t)(i % 64) * 512, 0) !=
		    512)
			atomic_fetch_add(&a->c->errors, 1);
	if (o)
		vems_obj_close(&o);
	return NULL;
}

static void
test_counters_exact(void **state)
{
	(void)state;
	struct ctx c = {0};
	tu_create(&c.tp, "count", 256 * MIB, 256 * MIB, 0);
	struct vems_pool_stats s0, s1;
	assert_int_equal(vems_pool_stats(c.tp.pool, &s0), 0);
	for (int wave = 0; wave < 2; wave++) {
		pthread_t th[COUNT_THREADS];
		struct count_arg a[COUNT_THREADS];
		pthread_barrier_t start;
		assert_int_equal(
			pthread_barrier_init(&start, NULL, COUNT_THREADS), 0);
		for (int i = 0; i < COUNT_THREADS; i++) {
			a[i] = (struct count_arg){&c, &start,
						  wave * COUNT_THREADS + i};
			assert_int_equal(pthread_create(&th[i], NULL,
							count_worker, &a[i]),
					 0);
		}
		for (int i = 0; i < COUNT_THREADS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&start);
	}
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_int_equal(vems_pool_stats(c.tp.pool, &s1), 0);
	uint64_t threads = 2 * COUNT_THREADS;
	assert_int_equal(s1.writes - s0.writes, threads * COUNT_WRITES);
	assert_int_equal(s1.bytes_written - s0.bytes_written,
			 threads * (32768 + (COUNT_WRITES - 1) * 512));
	tu_destroy(&c.tp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disjoint_objects),
		cmocka_unit_test(test_same_object_no_torn_pages),
		cmocka_unit_test(test_metadata_races_data_path),
		cmocka_unit_test(test_reclaim_races_data_path),
		cmocka_unit_test(test_counters_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
