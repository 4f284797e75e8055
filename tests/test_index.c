/* SPDX-License-Identifier: BSD-3-Clause */
/* test_index.c -- the DRAM extent index against a reference array */

#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vems_internal.h"

static void
test_random_ops_vs_reference(void **state)
{
	(void)state;
	enum { RANGE = 5000, OPS = 200000 };
	uint32_t *ref = malloc(RANGE * sizeof(*ref));
	for (int i = 0; i < RANGE; i++)
		ref[i] = UINT32_MAX;
	struct vems_xidx x;
	vems__xidx_init(&x);
	assert_int_equal(vems__xidx_get(&x, 3), UINT32_MAX);
	uint64_t rng = 1;
	uint32_t count = 0;
	for (int i = 0; i < OPS; i++) {
		/* clustered keys (sequential extents) and far ones */
		uint32_t k = (uint32_t)(tu_rand(&rng) % RANGE);
		if (k % 7 == 0)
			k = UINT32_MAX - 1 - k; /* huge extent numbers */
		uint32_t slot = k < RANGE ? k : (UINT32_MAX - 1 - k);
		uint64_t what = tu_rand(&rng) % 3;
		if (what == 0) {
			if (ref[slot] == UINT32_MAX)
				count++;
			ref[slot] = (uint32_t)i;
			assert_int_equal(vems__xidx_put(&x, k, (uint32_t)i), 0);
		} else if (what == 1) {
			if (ref[slot] != UINT32_MAX)
				count--;
			ref[slot] = UINT32_MAX;
			vems__xidx_del(&x, k);
		} else {
			assert_int_equal(vems__xidx_get(&x, k), ref[slot]);
		}
		assert_int_equal(x.count, count);
	}
	vems__xidx_fini(&x);
	free(ref);
}

static void
count_fn(uint32_t ext, uint32_t entry, void *arg)
{
	uint32_t *ref = arg;
	/* every (ext, entry) visited is in the reference, once */
	assert_int_equal(ref[ext], entry);
	ref[ext] = UINT32_MAX - 1;
}

/*
 * Small ranges, so that the index moves between its dense and hash forms
 * (index.c) many times; foreach visits exactly the mapped extents.
 */
static void
test_forms_vs_reference(void **state)
{
	(void)state;
	enum { OPS = 100000 };
	static const uint32_t ranges[] = {8, 40, 300, 3000};
	for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		uint32_t range = ranges[r];
		uint32_t *ref = malloc(range * sizeof(*ref));
		uint32_t *seen = malloc(range * sizeof(*seen));
		for (uint32_t i = 0; i < range; i++)
			ref[i] = UINT32_MAX;
		struct vems_xidx x;
		vems__xidx_init(&x);
		uint64_t rng = 7 + r;
		uint32_t count = 0, dense = 0, hash = 0;
		for (int i = 0; i < OPS; i++) {
			if (i % 4000 == 0) {
				/* a truncate to 0: the index starts over */
				for (uint32_t e = 0; e < range; e++) {
					vems__xidx_del(&x, e);
					ref[e] = UINT32_MAX;
				}
				count = 0;
				assert_int_equal(x.cap, 0);
			}
			/* mostly near the mapped prefix, as objects grow;
			 * one in 8 anywhere in the range */
			uint32_t k = (uint32_t)(tu_rand(&rng) %
						(tu_rand(&rng) % 8
							 ? (count + 4 < range
								    ? count + 4
								    : range)
							 : range));
			/* phases: mostly puts, then mostly deletes */
			bool put = (i / 2000) % 2 ? tu_rand(&rng) % 4 == 0
						  : tu_rand(&rng) % 4 != 0;
			if (put) {
				count += ref[k] == UINT32_MAX;
				ref[k] = (uint32_t)i;
				assert_int_equal(
					vems__xidx_put(&x, k, (uint32_t)i), 0);
			} else {
				count -= ref[k] != UINT32_MAX;
				ref[k] = UINT32_MAX;
				vems__xidx_del(&x, k);
			}
			assert_int_equal(x.count, count);
			assert_int_equal(vems__xidx_get(&x, k), ref[k]);
			if (x.cap && x.keys)
				hash++;
			else if (x.cap)
				dense++;
			if (i % 997 == 0) {
				memcpy(seen, ref, range * sizeof(*seen));
				vems__xidx_foreach(&x, count_fn, seen);
				for (uint32_t e = 0; e < range; e++)
					assert_true(seen[e] == UINT32_MAX ||
						    seen[e] == UINT32_MAX - 1);
			}
		}
		print_message("range %u: %u ops dense, %u hashed\n", range,
			      dense, hash);
		/* both forms were used where they can be: the smallest
		 * dense array holds range 8 whole; random keys over 300 or
		 * 3000 extents stay hashed (a hash table checks whether it
		 * can go dense only when it grows, and it stops growing
		 * before the keys fill half of the range) */
		if (range <= 40)
			assert_true(dense > 0);
		if (range > 16)
			assert_true(hash > 0);
		vems__xidx_fini(&x);
		free(seen);
		free(ref);
	}
}

/* The forms' costs: sequential extents dense, sparse ones hashed. */
static void
test_forms(void **state)
{
	(void)state;
	struct vems_xidx x;
	vems__xidx_init(&x);
	/* written from the start: dense, at most twice the extents */
	for (uint32_t e = 0; e < 1000; e++)
		assert_int_equal(vems__xidx_put(&x, e, e * 3), 0);
	assert_null(x.keys);
	assert_true(x.cap >= 1000 && x.cap <= 2000);
	assert_int_equal(vems__xidx_get(&x, 999), 999 * 3);
	assert_int_equal(vems__xidx_get(&x, 1000), UINT32_MAX);
	assert_int_equal(vems__xidx_get(&x, UINT32_MAX - 1), UINT32_MAX);
	/* a far extent: hashed, everything still found */
	assert_int_equal(vems__xidx_put(&x, 1u << 30, 5), 0);
	assert_non_null(x.keys);
	for (uint32_t e = 0; e < 1000; e++)
		assert_int_equal(vems__xidx_get(&x, e), e * 3);
	assert_int_equal(vems__xidx_get(&x, 1u << 30), 5);
	/* emptied: the arrays go */
	vems__xidx_del(&x, 1u << 30);
	for (uint32_t e = 0; e < 1000; e++)
		vems__xidx_del(&x, e);
	assert_int_equal(x.count, 0);
	assert_int_equal(x.cap, 0);
	assert_null(x.vals);
	/* an index rebuilt at open in entry-table order: the extents come
	 * in any order, hashed at first, dense once they are */
	uint64_t rng = 3;
	uint32_t perm[4096];
	for (uint32_t e = 0; e < 4096; e++)
		perm[e] = e;
	for (uint32_t e = 4095; e > 0; e--) {
		uint32_t j = (uint32_t)(tu_rand(&rng) % (e + 1)), t = perm[e];
		perm[e] = perm[j];
		perm[j] = t;
	}
	for (uint32_t e = 0; e < 4096; e++)
		assert_int_equal(vems__xidx_put(&x, perm[e], perm[e] + 1), 0);
	assert_null(x.keys);
	assert_int_equal(x.cap, 4096);
	for (uint32_t e = 0; e < 4096; e++)
		assert_int_equal(vems__xidx_get(&x, e), e + 1);
	vems__xidx_fini(&x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_ops_vs_reference),
		cmocka_unit_test(test_forms_vs_reference),
		cmocka_unit_test(test_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
