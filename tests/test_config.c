/* SPDX-License-Identifier: BSD-3-Clause */
/* test_config.c -- the configuration builder: defaults and validation */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)

/*
 * Leaves a sentence in vems_errormsg() that no config call writes, so a
 * test can tell that the call under test wrote its own.
 */
static void
prime_errormsg(void)
{
	struct vems_obj *h;
	struct vems_oid o = {0, 0};
	(void)vems_obj_open(NULL, o, 0, &h);
}

/* expr must return exactly code and leave a new, non-empty errormsg. */
#define EXPECT_ERR(expr, code)                                                 \
	do {                                                                   \
		prime_errormsg();                                              \
		char ee_before_[1024];                                         \
		strcpy(ee_before_, vems_errormsg());                           \
		assert_int_equal((int)(expr), (code));                         \
		assert_true(vems_errormsg()[0] != '\0');                       \
		assert_string_not_equal(vems_errormsg(), ee_before_);          \
	} while (0)

static int
file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/*
 * Creates a pool with cfg at tp's paths (left open, for the test to
 * destroy) and returns its info: the only public way to see what a config
 * holds.
 */
static void
info_of(const struct vems_config *cfg, struct tu_pool *tp,
	struct vems_pool_info *info)
{
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	TU_OK(vems_pool_info(tp->pool, info));
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
}

/* Pools a test made: removed by the teardown even when the test fails. */
static struct tu_pool fx_pools[2];

static int
teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		char defblk[2 * PATH_MAX];
		snprintf(defblk, sizeof(defblk), "%s.blk", fx_pools[i].pmem);
		tu_destroy(&fx_pools[i]);
		if (fx_pools[i].pmem[0])
			unlink(defblk);
	}
	memset(fx_pools, 0, sizeof(fx_pools));
	return 0;
}

static void
test_new_delete(void **state)
{
	(void)state;
	struct vems_config *cfg = (struct vems_config *)(uintptr_t)1;

	EXPECT_ERR(vems_config_new(NULL), -EINVAL);

	TU_OK(vems_config_new(&cfg));
	assert_non_null(cfg);
	vems_config_delete(&cfg);
	assert_null(cfg);

	/* both NULL forms are accepted */
	vems_config_delete(NULL);
	cfg = NULL;
	vems_config_delete(&cfg);
	assert_null(cfg);

	/* a path set before delete is freed with it (ASan checks) */
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_block_path(cfg, "/nonexistent/a"));
	TU_OK(vems_config_set_block_path(cfg, "/nonexistent/b"));
	vems_config_delete(&cfg);
	assert_null(cfg);
}

static void
test_null_config(void **state)
{
	(void)state;
	EXPECT_ERR(vems_config_set_pmem_size(NULL, 64 * MIB), -EINVAL);
	EXPECT_ERR(vems_config_set_block_path(NULL, "/x"), -EINVAL);
	EXPECT_ERR(vems_config_set_block_size(NULL, 64 * MIB), -EINVAL);
	EXPECT_ERR(vems_config_set_extent_size(NULL, 64 * KIB), -EINVAL);

	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	EXPECT_ERR(vems_config_set_block_path(cfg, NULL), -EINVAL);
	vems_config_delete(&cfg);
}

static void
test_extent_size(void **state)
{
	(void)state;
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));

	static const uint64_t bad[] = {
		0,
		1,
		2048,
		4095,
		4097,
		3 * 4096,
		12 * KIB,
		(64 * KIB) + 4096,
		96 * KIB,
		2 * MIB - 4096,
		2 * MIB + 4096,
		3 * MIB,
		4 * MIB,
		1ull << 40,
		UINT64_MAX,
		UINT64_C(1) << 63,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERR(vems_config_set_extent_size(cfg, bad[i]), -EINVAL);

	/* every power of two from 4 KiB to 2 MiB, both ends included */
	for (uint64_t es = 4 * KIB; es <= 2 * MIB; es <<= 1)
		assert_int_equal(vems_config_set_extent_size(cfg, es), 0);
	vems_config_delete(&cfg);
}

static void
test_pmem_size(void **state)
{
	(void)state;
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));

	EXPECT_ERR(vems_config_set_pmem_size(cfg, 0), -EINVAL);
	EXPECT_ERR(vems_config_set_pmem_size(cfg, 4096), -EINVAL);
	EXPECT_ERR(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE - 4096),
		   -EINVAL);
	EXPECT_ERR(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE - 1),
		   -EINVAL);
	EXPECT_ERR(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE + 1),
		   -EINVAL);
	EXPECT_ERR(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE + 2048),
		   -EINVAL);
	EXPECT_ERR(vems_config_set_pmem_size(cfg, 64 * MIB + 512), -EINVAL);
	EXPECT_ERR(vems_config_set_pmem_size(cfg, UINT64_MAX), -EINVAL);

	assert_int_equal(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE), 0);
	assert_int_equal(
		vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE + 4096), 0);
	assert_int_equal(vems_config_set_pmem_size(cfg, 1ull << 40), 0);
	vems_config_delete(&cfg);
}

static void
test_block_path(void **state)
{
	(void)state;
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));

	EXPECT_ERR(vems_config_set_block_path(cfg, ""), -EINVAL);

	/* PATH_MAX bytes (no room for the NUL) and more: too long */
	char *p = malloc(PATH_MAX + 2);
	assert_non_null(p);
	memset(p, 'a', PATH_MAX + 1);
	p[0] = '/';
	p[PATH_MAX + 1] = '\0';
	EXPECT_ERR(vems_config_set_block_path(cfg, p), -ENAMETOOLONG);
	p[PATH_MAX] = '\0';
	EXPECT_ERR(vems_config_set_block_path(cfg, p), -ENAMETOOLONG);
	/* PATH_MAX - 1 bytes is a valid path string (create will refuse it
	 * later because the layout has no room; see test_pool) */
	p[PATH_MAX - 1] = '\0';
	assert_int_equal(vems_config_set_block_path(cfg, p), 0);
	free(p);

	/* relative paths are accepted here; create makes them absolute */
	assert_int_equal(vems_config_set_block_path(cfg, "rel.blk"), 0);
	vems_config_delete(&cfg);
}

static void
test_block_size(void **state)
{
	(void)state;
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	/* default extent 64 KiB: anything non-zero below it is refused */
	EXPECT_ERR(vems_config_set_block_size(cfg, 1), -EINVAL);
	EXPECT_ERR(vems_config_set_block_size(cfg, 4096), -EINVAL);
	EXPECT_ERR(vems_config_set_block_size(cfg, 64 * KIB - 1), -EINVAL);
	assert_int_equal(vems_config_set_block_size(cfg, 64 * KIB), 0);
	assert_int_equal(vems_config_set_block_size(cfg, 0), 0);
	vems_config_delete(&cfg);
}

/*
 * A refused setter must leave the earlier value in place: observed through
 * the pool that the config creates.
 */
static void
test_failed_set_keeps_value(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_config *cfg;
	struct vems_pool_info info;

	tu_paths(tp, "cfgkeep");
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, 32 * MIB));
	TU_OK(vems_config_set_extent_size(cfg, 128 * KIB));
	TU_OK(vems_config_set_block_path(cfg, tp->block));
	TU_OK(vems_config_set_block_size(cfg, 8 * MIB));

	EXPECT_ERR(vems_config_set_pmem_size(cfg, 5), -EINVAL);
	EXPECT_ERR(vems_config_set_extent_size(cfg, 3 * 4096), -EINVAL);
	EXPECT_ERR(vems_config_set_block_path(cfg, ""), -EINVAL);
	EXPECT_ERR(vems_config_set_block_size(cfg, 4096), -EINVAL);

	info_of(cfg, tp, &info);
	assert_int_equal(info.pmem_size, 32 * MIB);
	assert_int_equal(info.extent_size, 128 * KIB);
	assert_string_equal(info.block_path, tp->block);
	assert_int_equal(info.block_extents, 8 * MIB / (128 * KIB));
	assert_int_equal(info.block_size, 8 * MIB);
	assert_true(file_exists(tp->block));
	vems_config_delete(&cfg);
	tu_destroy(tp);
}

/* Defaults: 64 KiB extents, block file "<pmem>.blk" of 8 x the pmem size. */
static void
test_defaults(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_config *cfg;
	struct vems_pool_info info;
	char defblk[600];

	tu_paths(tp, "cfgdef");
	snprintf(defblk, sizeof(defblk), "%s.blk", tp->pmem);
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE));
	info_of(cfg, tp, &info);
	assert_int_equal(info.extent_size, 64 * KIB);
	assert_int_equal(info.page_size, VEMS_PAGE_SIZE);
	assert_int_equal(info.pmem_size, VEMS_PMEM_MIN_SIZE);
	assert_int_equal(info.block_size, 8 * VEMS_PMEM_MIN_SIZE);
	assert_int_equal(info.block_extents,
			 8 * VEMS_PMEM_MIN_SIZE / (64 * KIB));
	assert_string_equal(info.block_path, defblk);
	assert_true(file_exists(defblk));
	vems_config_delete(&cfg);
	tu_destroy(tp);
	unlink(defblk);
	assert_false(file_exists(defblk));
}

/* The config is copied at create: changing or freeing it later is fine. */
static void
test_config_reuse(void **state)
{
	(void)state;
	struct tu_pool *a = &fx_pools[0], *b = &fx_pools[1];
	struct vems_config *cfg;
	struct vems_pool_info ia, ib;

	tu_paths(a, "cfgreuse");
	tu_paths(b, "cfgreuse");
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE));
	TU_OK(vems_config_set_block_path(cfg, a->block));
	TU_OK(vems_config_set_block_size(cfg, 4 * MIB));
	TU_OK(vems_pool_create(&a->pool, a->pmem, cfg));
	TU_OK(vems_config_set_block_path(cfg, b->block));
	TU_OK(vems_config_set_extent_size(cfg, 4096));
	TU_OK(vems_pool_create(&b->pool, b->pmem, cfg));
	vems_config_delete(&cfg);

	TU_OK(vems_pool_info(a->pool, &ia));
	TU_OK(vems_pool_info(b->pool, &ib));
	assert_string_equal(ia.block_path, a->block);
	assert_string_equal(ib.block_path, b->block);
	assert_int_equal(ia.extent_size, 64 * KIB);
	assert_int_equal(ib.extent_size, 4096);
	assert_int_equal(ib.block_extents, 4 * MIB / 4096);
	tu_reopen(a);
	TU_OK(vems_pool_info(a->pool, &ia));
	assert_int_equal(ia.extent_size, 64 * KIB);
	tu_destroy(a);
	tu_destroy(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_new_delete, teardown),
		cmocka_unit_test_teardown(test_null_config, teardown),
		cmocka_unit_test_teardown(test_extent_size, teardown),
		cmocka_unit_test_teardown(test_pmem_size, teardown),
		cmocka_unit_test_teardown(test_block_path, teardown),
		cmocka_unit_test_teardown(test_block_size, teardown),
		cmocka_unit_test_teardown(test_failed_set_keeps_value,
					  teardown),
		cmocka_unit_test_teardown(test_defaults, teardown),
		cmocka_unit_test_teardown(test_config_reuse, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
