/* SPDX-License-Identifier: BSD-3-Clause */
/* test_object.c -- object table: create, remove, open, stat, list */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MIB (UINT64_C(1) << 20)

static int
setup(void **state)
{
	struct tu_pool *tp = calloc(1, sizeof(*tp));
	tu_create(tp, "obj", 64 * MIB, 64 * MIB, 0);
	*state = tp;
	return 0;
}

static int
teardown(void **state)
{
	tu_destroy(*state);
	free(*state);
	return 0;
}

static void
test_create_ids(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid a = {5, 0}, b = {5, 0}, c = {5, 2}, d = {6, 0};
	TU_OK(vems_obj_create(tp->pool, &a));
	assert_int_equal(a.id, 1);
	/* an explicit id; the next automatic one skips it */
	TU_OK(vems_obj_create(tp->pool, &c));
	TU_OK(vems_obj_create(tp->pool, &b));
	assert_int_equal(b.partition, 5);
	assert_int_not_equal(b.id, a.id);
	assert_int_not_equal(b.id, c.id);
	TU_OK(vems_obj_create(tp->pool, &d));
	assert_int_equal(d.partition, 6);
	struct vems_oid dup = {5, 2};
	assert_int_equal(vems_obj_create(tp->pool, &dup), -EEXIST);
	assert_int_equal(vems_obj_create(NULL, &dup), -EINVAL);
	assert_int_equal(vems_obj_create(tp->pool, NULL), -EINVAL);
	/* ids survive reopen, and automatic ids are never reused */
	tu_reopen(tp);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat_oid(tp->pool, c, &st));
	assert_int_equal(st.size, 0);
	TU_OK(vems_obj_remove(tp->pool, b));
	struct vems_oid e = {5, 0};
	TU_OK(vems_obj_create(tp->pool, &e));
	assert_true(e.id > b.id);
}

static int
collect(const struct vems_oid *oid, void *arg)
{
	struct vems_oid *v = arg;
	size_t i = 0;
	while (v[i].id != 0)
		i++;
	v[i] = *oid;
	return 0;
}

static int
stop_at_two(const struct vems_oid *oid, void *arg)
{
	(void)oid;
	return ++*(int *)arg == 2 ? 42 : 0;
}

static void
test_list_sorted(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid ids[] = {{3, 9}, {1, 7}, {3, 1}, {2, 5}, {1, 8}};
	for (size_t i = 0; i < 5; i++)
		TU_OK(vems_obj_create(tp->pool, &ids[i]));
	struct vems_oid got[8];
	memset(got, 0, sizeof(got));
	TU_OK(vems_obj_list(tp->pool, collect, got));
	struct vems_oid want[] = {{1, 7}, {1, 8}, {2, 5}, {3, 1}, {3, 9}};
	assert_memory_equal(got, want, sizeof(want));
	assert_int_equal(got[5].id, 0);
	int n = 0;
	assert_int_equal(vems_obj_list(tp->pool, stop_at_two, &n), 42);
	assert_int_equal(n, 2);
	assert_int_equal(vems_obj_list(tp->pool, NULL, NULL), -EINVAL);
}

static int
count_oid(const struct vems_oid *oid, void *arg)
{
	(void)oid;
	++*(int *)arg;
	return 0;
}

static int
count_name(const char *name, const struct vems_oid *oid, void *arg)
{
	(void)name;
	(void)oid;
	++*(int *)arg;
	return 0;
}

/*
 * Removal of an object with open handles (POSIX unlink of an open file):
 * gone for lookups at once, readable and writable through the handles, its
 * space reclaimed at the last close. (It was -EBUSY until the shim needed
 * last-close semantics.)
 */
static void
test_remove_and_open(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid = {1, 0}, missing = {99, 99};
	struct vems_obj *o, *o2;
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_name_bind(tp->pool, "a/file", oid));
	assert_int_equal(vems_obj_open(tp->pool, missing, 0, &o), -ENOENT);
	assert_null(o);
	assert_int_equal(vems_obj_remove(tp->pool, missing), -ENOENT);
	assert_int_equal(vems_obj_stat_oid(tp->pool, missing,
					   &(struct vems_obj_stat){0}),
			 -ENOENT);
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	TU_OK(vems_obj_open(tp->pool, oid, VEMS_O_RDONLY, &o2));
	static uint8_t buf[200000], got[sizeof(buf)];
	tu_fill(buf, sizeof(buf), 3, 0);
	assert_int_equal(vems_obj_pwrite(o, buf, sizeof(buf), 0, 0),
			 (ssize_t)sizeof(buf));
	struct vems_pool_stats s0, s1;
	TU_OK(vems_pool_stats(tp->pool, &s0));
	assert_int_equal(s0.extents_pmem, 4);

	TU_OK(vems_obj_remove(tp->pool, oid));
	/* gone for everyone but the handles */
	struct vems_oid found;
	assert_int_equal(vems_name_lookup(tp->pool, "a/file", &found), -ENOENT);
	struct vems_obj *o3;
	assert_int_equal(vems_obj_open(tp->pool, oid, 0, &o3), -ENOENT);
	assert_int_equal(
		vems_obj_stat_oid(tp->pool, oid, &(struct vems_obj_stat){0}),
		-ENOENT);
	assert_int_equal(vems_obj_remove(tp->pool, oid), -ENOENT);
	assert_int_equal(vems_name_bind(tp->pool, "b", oid), -ENOENT);
	int nobj = 0, nnames = 0;
	TU_OK(vems_obj_list(tp->pool, count_oid, &nobj));
	TU_OK(vems_name_list(tp->pool, NULL, count_name, &nnames));
	assert_int_equal(nobj, 0);
	assert_int_equal(nnames, 0);
	TU_OK(vems_pool_stats(tp->pool, &s1));
	assert_int_equal(s1.objects, s0.objects - 1);
	/* its id may not be reused while handles hold it */
	struct vems_oid again = oid;
	assert_int_equal(vems_obj_create(tp->pool, &again), -EEXIST);

	/* the handles still work */
	assert_int_equal(vems_obj_pwrite(o, buf, 1000, sizeof(buf), 0), 1000);
	assert_int_equal(vems_obj_pread(o2, got, sizeof(got), 0),
			 (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o2, &st));
	assert_int_equal(st.size, sizeof(buf) + 1000);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	TU_OK(vems_obj_close(&o));
	TU_OK(vems_pool_stats(tp->pool, &s1));
	assert_int_equal(s1.extents_pmem, 4); /* o2 still holds it */
	assert_int_equal(vems_obj_pread(o2, got, 1000, sizeof(buf)), 1000);
	assert_memory_equal(got, buf, 1000);
	TU_OK(vems_obj_close(&o2));
	TU_OK(vems_pool_stats(tp->pool, &s1));
	assert_int_equal(s1.extents_pmem, 0);
	assert_int_equal(s1.pmem_bytes_used, 0);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	TU_OK(vems_obj_create(tp->pool, &again)); /* the id is free now */
	TU_OK(vems_obj_remove(tp->pool, again));
	tu_reopen(tp);
	assert_int_equal(vems_obj_open(tp->pool, oid, 0, &o), -ENOENT);
	TU_OK(vems_pool_stats(tp->pool, &s1));
	assert_int_equal(s1.pmem_bytes_used, 0);
	assert_int_equal(s1.objects, 0);
}

/*
 * The pool closed (or the process gone) while a removed object is still
 * open: the next open reclaims it, spilled extents included.
 */
static void
test_remove_open_then_reopen(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid = {2, 0}, keep = {2, 0};
	struct vems_obj *o, *k;
	TU_OK(vems_obj_create(tp->pool, &keep));
	TU_OK(vems_obj_open(tp->pool, keep, 0, &k));
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	/* more than pmem holds, so some of the removed object is spilled */
	static uint8_t buf[1 << 20];
	for (uint64_t off = 0; off < 96 * MIB; off += sizeof(buf)) {
		tu_fill(buf, sizeof(buf), 7, off);
		assert_int_equal(vems_obj_pwrite(o, buf, sizeof(buf), off, 0),
				 (ssize_t)sizeof(buf));
	}
	assert_int_equal(vems_obj_pwrite(k, "kept", 4, 0, 0), 4);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_true(st.extents_block + st.extents_both > 0);
	TU_OK(vems_obj_remove(tp->pool, oid));
	tu_fill(buf, sizeof(buf), 7, 0);
	static uint8_t got[sizeof(buf)];
	assert_int_equal(vems_obj_pread(o, got, sizeof(got), 0),
			 (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	/* close the pool with both handles open: no reclaim happens here */
	TU_OK(vems_pool_close(&tp->pool));
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	assert_int_equal(vems_obj_open(tp->pool, oid, 0, &o), -ENOENT);
	struct vems_pool_stats s;
	TU_OK(vems_pool_stats(tp->pool, &s));
	assert_int_equal(s.objects, 1);
	/* nothing of the removed object: "keep" is small, so inline */
	assert_int_equal(s.extents_pmem + s.extents_both + s.extents_block, 0);
	assert_int_equal(s.block_bytes_used, 0);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	TU_OK(vems_obj_open(tp->pool, keep, 0, &k));
	char four[4];
	assert_int_equal(vems_obj_pread(k, four, 4, 0), 4);
	assert_memory_equal(four, "kept", 4);
	TU_OK(vems_obj_close(&k));
}

static void
test_stat_times_and_usage(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid = {1, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	struct vems_obj_stat a, b;
	TU_OK(vems_obj_stat(o, &a));
	assert_true(a.ctime_ns > 0);
	assert_true(a.mtime_ns >= a.ctime_ns);
	assert_int_equal(a.oid.partition, 1);
	assert_int_equal(vems_obj_pwrite(o, "x", 1, 100000, 0), 1);
	TU_OK(vems_obj_stat(o, &b));
	assert_true(b.mtime_ns >= a.mtime_ns);
	assert_int_equal(b.size, 100001);
	assert_int_equal(b.extents_pmem, 1);
	assert_int_equal(b.pmem_bytes, 65536);
	assert_int_equal(b.block_bytes, 0);
	assert_int_equal(vems_obj_stat(NULL, &b), -EINVAL);
	assert_int_equal(vems_obj_stat(o, NULL), -EINVAL);
	vems_obj_close(&o);
	tu_reopen(tp);
	struct vems_obj_stat c;
	TU_OK(vems_obj_stat_oid(tp->pool, oid, &c));
	assert_int_equal(c.size, b.size);
	assert_int_equal(c.ctime_ns, a.ctime_ns);
	assert_int_equal(c.mtime_ns, b.mtime_ns);
}

/* Closing a pool with handles still open frees them; no leak, no crash. */
static void
test_close_with_open_handles(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid = {1, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_obj_open(tp->pool, oid, VEMS_O_NODRAIN, &o));
	assert_int_equal(vems_obj_pwrite(o, "abc", 3, 0, 0), 3);
	TU_OK(vems_pool_close(&tp->pool));
	assert_null(tp->pool);
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	char buf[3];
	assert_int_equal(vems_obj_pread(o, buf, 3, 0), 3);
	assert_memory_equal(buf, "abc", 3);
	vems_obj_close(&o);
}

/* Metadata space runs out: a clear -ENOSPC, and everything else intact. */
static void
test_metadata_full(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "metafull", 16 * MIB, 16 * MIB, 0);
	int made = 0, r;
	for (;;) {
		struct vems_oid oid = {1, 0};
		r = vems_obj_create(tp.pool, &oid);
		if (r)
			break;
		made++;
		assert_true(made < 1000000);
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(strlen(vems_errormsg()) > 0);
	struct vems_pool_stats st;
	TU_OK(vems_pool_stats(tp.pool, &st));
	assert_int_equal(st.objects, (uint64_t)made);
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 0);
	tu_reopen(&tp);
	TU_OK(vems_pool_stats(tp.pool, &st));
	assert_int_equal(st.objects, (uint64_t)made);
	/* removing one makes room for one */
	TU_OK(vems_obj_remove(tp.pool, (struct vems_oid){1, 1}));
	struct vems_oid oid = {1, 0};
	TU_OK(vems_obj_create(tp.pool, &oid));
	tu_destroy(&tp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_ids, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_sorted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_remove_and_open, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_remove_open_then_reopen,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_times_and_usage,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_with_open_handles,
						setup, teardown),
		cmocka_unit_test(test_metadata_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
