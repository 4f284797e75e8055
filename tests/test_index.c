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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_ops_vs_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
