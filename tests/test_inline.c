/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_inline.c -- small objects kept inline (lib/inline.c): their space,
 * their semantics (holes, growth, truncation, the move to extents), their
 * eviction to the block file when pmem is short, and reopen after each.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "backend.h"
#include "vems_internal.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)

static struct vems_pool *
create_pool(struct tu_pool *tp, const char *tag, uint64_t pmem, uint64_t blk,
	    uint64_t inline_max)
{
	tu_paths(tp, tag);
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, pmem));
	TU_OK(vems_config_set_block_path(cfg, tp->block));
	TU_OK(vems_config_set_block_size(cfg, blk));
	if (inline_max != UINT64_MAX)
		TU_OK(vems_config_set_inline_max(cfg, inline_max));
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
	return tp->pool;
}

/* Sizes 100 B - 8 KiB, log-normal-ish around 2 KiB (as vems-bench). */
static size_t
small_size(uint64_t *rng)
{
	uint64_t r = tu_rand(rng);
	size_t s = 100 + (size_t)(r % 2000) + (size_t)((r >> 20) % 2000) +
		((r >> 40) % 4 == 0 ? (size_t)((r >> 44) % 4000) : 0);
	return s > 8192 ? 8192 : s;
}

static void
write_obj(struct vems_pool *p, struct vems_oid oid, size_t len, uint64_t seed)
{
	static uint8_t buf[64 * 1024];
	struct vems_obj *o;
	tu_fill(buf, len, seed, 0);
	TU_OK(vems_obj_open(p, oid, 0, &o));
	assert_int_equal(vems_obj_pwrite(o, buf, len, 0, 0), (ssize_t)len);
	TU_OK(vems_obj_close(&o));
}

static void
verify_obj(struct vems_pool *p, struct vems_oid oid, size_t len, uint64_t seed)
{
	static uint8_t buf[64 * 1024 + 1];
	struct vems_obj *o;
	TU_OK(vems_obj_open(p, oid, VEMS_O_RDONLY, &o));
	ssize_t got = vems_obj_pread(o, buf, sizeof(buf), 0);
	TU_OK(vems_obj_close(&o));
	if (got != (ssize_t)len || !tu_verify(buf, len, seed, 0))
		fail_msg("object %llu.%llu: read %zd of %zu bytes, or they "
			 "differ",
			 (unsigned long long)oid.partition,
			 (unsigned long long)oid.id, got, len);
}

/*
 * The budget: 10,000 objects of 100 B - 8 KiB take at most 1.5x
 * their bytes plus 256 B each in a pool whose pmem holds them; they read
 * back before and after a reopen, and check is clean. With inline off
 * (the old behaviour: an extent each) the same objects are far over it.
 */
static void
small_objects_space(uint64_t inline_max, bool expect_within)
{
	struct tu_pool tp;
	struct vems_pool *p =
		create_pool(&tp, "ispace", 64 * MIB, 1024 * MIB, inline_max);
	uint64_t rng = 77, bytes = 0;
	enum { N = 10000 };
	static size_t len[N];
	for (int i = 0; i < N; i++) {
		struct vems_oid oid = {5, (uint64_t)i + 1};
		len[i] = small_size(&rng);
		bytes += len[i];
		TU_OK(vems_obj_create(p, &oid));
		write_obj(p, oid, len[i], (uint64_t)i);
	}
	struct vems_pool_stats st;
	TU_OK(vems_pool_stats(p, &st));
	double held = (double)(st.pmem_bytes_used + st.block_bytes_used);
	double budget = 1.5 * (double)bytes + 256.0 * N;
	print_message("%d objects, %llu bytes: %.0f held (budget %.0f), "
		      "%llu inline\n",
		      N, (unsigned long long)bytes, held, budget,
		      (unsigned long long)st.inline_objects);
	if (expect_within) {
		assert_int_equal(st.inline_objects, N);
		assert_true(held <= budget);
		assert_true(st.inline_bytes >= bytes);
	} else {
		assert_int_equal(st.inline_objects, 0);
		assert_true(held > budget);
	}
	for (int i = 0; i < N; i += 7)
		verify_obj(p, (struct vems_oid){5, (uint64_t)i + 1}, len[i],
			   (uint64_t)i);
	tu_reopen(&tp);
	p = tp.pool;
	TU_OK(vems_pool_check(p, NULL, NULL));
	for (int i = 0; i < N; i++)
		verify_obj(p, (struct vems_oid){5, (uint64_t)i + 1}, len[i],
			   (uint64_t)i);
	TU_OK(vems_pool_stats(p, &st));
	assert_int_equal(st.inline_objects, expect_within ? N : 0);
	tu_destroy(&tp);
}

static void
test_space_within_budget(void **state)
{
	(void)state;
	small_objects_space(UINT64_MAX, true);
}

/* Regression: without inline data each object takes a 64 KiB extent. */
static void
test_space_without_inline(void **state)
{
	(void)state;
	small_objects_space(0, false);
}

/* Reads and writes against a model, through every change of form. */
struct model {
	uint8_t b[200 * 1024];
	uint64_t size;
};

static void
m_write(struct vems_obj *o, struct model *m, uint64_t off, size_t len,
	uint64_t seed)
{
	static uint8_t buf[200 * 1024];
	tu_fill(buf, len, seed, off);
	assert_int_equal(vems_obj_pwrite(o, buf, len, off, 0), (ssize_t)len);
	if (off > m->size)
		memset(m->b + m->size, 0, off - m->size);
	memcpy(m->b + off, buf, len);
	if (off + len > m->size)
		m->size = off + len;
}

static void
m_trunc(struct vems_obj *o, struct model *m, uint64_t size)
{
	TU_OK(vems_obj_truncate(o, size));
	if (size > m->size)
		memset(m->b + m->size, 0, size - m->size);
	m->size = size;
}

static void
m_check(struct vems_obj *o, const struct model *m, const char *when)
{
	static uint8_t buf[200 * 1024 + 1];
	ssize_t got = vems_obj_pread(o, buf, sizeof(buf), 0);
	if (got != (ssize_t)m->size || memcmp(buf, m->b, m->size) != 0)
		fail_msg("%s: read %zd bytes, model has %llu (or they differ)",
			 when, got, (unsigned long long)m->size);
	/* a read from the middle, and one past the end */
	if (m->size > 10) {
		got = vems_obj_pread(o, buf, 7, m->size / 2);
		assert_int_equal(got, 7);
		assert_memory_equal(buf, m->b + m->size / 2, 7);
	}
	assert_int_equal(vems_obj_pread(o, buf, 10, m->size + 5), 0);
}

static bool
is_inline(struct vems_obj *o)
{
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	return st.extents_pmem + st.extents_both + st.extents_block == 0 &&
		st.pmem_bytes > 0;
}

static void
test_forms(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_pool *p =
		create_pool(&tp, "iforms", 16 * MIB, 64 * MIB, UINT64_MAX);
	static struct model m;
	struct vems_oid oid = {1, 0};
	TU_OK(vems_obj_create(p, &oid));
	struct vems_obj *o;
	TU_OK(vems_obj_open(p, oid, 0, &o));
	m_check(o, &m, "empty");
	/* first write past a hole: zeros before it */
	m_write(o, &m, 300, 100, 1);
	assert_true(is_inline(o));
	m_check(o, &m, "hole");
	/* in place, then growth by small appends (new blocks), in place */
	m_write(o, &m, 0, 50, 2);
	for (int i = 0; i < 60; i++)
		m_write(o, &m, m.size, 97, (uint64_t)10 + (uint64_t)i);
	m_check(o, &m, "appends");
	assert_true(is_inline(o));
	/* shrink, then grow back: the bytes between read as zeros */
	m_trunc(o, &m, 1000);
	m_trunc(o, &m, 4000);
	m_check(o, &m, "truncated");
	m_trunc(o, &m, 12000); /* a larger block */
	m_check(o, &m, "grown by truncate");
	m_write(o, &m, 5000, 3000, 3); /* overwrite across old garbage */
	m_check(o, &m, "overwritten");
	assert_true(is_inline(o));
	TU_OK(vems_obj_close(&o));
	tu_reopen(&tp);
	p = tp.pool;
	TU_OK(vems_pool_check(p, NULL, NULL));
	TU_OK(vems_obj_open(p, oid, 0, &o));
	m_check(o, &m, "reopened inline");
	assert_true(is_inline(o));
	/* past the limit (16 KiB at 64 KiB extents): to extents */
	m_write(o, &m, 20000, 5000, 4);
	assert_false(is_inline(o));
	m_check(o, &m, "moved to extents");
	m_write(o, &m, 100, 50000, 5);
	m_check(o, &m, "large");
	TU_OK(vems_obj_close(&o));
	/* truncating past the limit moves another object to extents */
	struct vems_oid t = {1, 0};
	static struct model mt;
	TU_OK(vems_obj_create(p, &t));
	TU_OK(vems_obj_open(p, t, 0, &o));
	m_write(o, &mt, 0, 3000, 6);
	assert_true(is_inline(o));
	m_trunc(o, &mt, 100000);
	assert_false(is_inline(o));
	m_check(o, &mt, "truncated to extents");
	/* an object truncated to 0 has no extents: inline again */
	m_trunc(o, &mt, 0);
	m_write(o, &mt, 0, 700, 7);
	assert_true(is_inline(o));
	m_check(o, &mt, "inline again");
	TU_OK(vems_obj_close(&o));
	tu_reopen(&tp);
	p = tp.pool;
	TU_OK(vems_pool_check(p, NULL, NULL));
	TU_OK(vems_obj_open(p, oid, VEMS_O_RDONLY, &o));
	m_check(o, &m, "reopened");
	TU_OK(vems_obj_close(&o));
	TU_OK(vems_obj_open(p, t, VEMS_O_RDONLY, &o));
	m_check(o, &mt, "reopened");
	TU_OK(vems_obj_close(&o));
	/* removal frees the block */
	struct vems_pool_stats st;
	TU_OK(vems_pool_stats(p, &st));
	assert_int_equal(st.inline_objects, 1);
	TU_OK(vems_obj_remove(p, t));
	TU_OK(vems_pool_stats(p, &st));
	assert_int_equal(st.inline_objects, 0);
	assert_int_equal(st.inline_bytes, 0);
	TU_OK(vems_pool_check(p, NULL, NULL));
	tu_reopen(&tp);
	TU_OK(vems_pool_check(tp.pool, NULL, NULL));
	tu_destroy(&tp);
}

/*
 * An object grown by truncate has no block and no extents; a write that
 * ends below its size makes it inline, and the first block must hold the
 * whole size, not just the bytes written (it held only those: the zeros
 * up to the size went past the block's end, into its heap neighbours, and
 * the pool no longer opened, the record's size being above the block's).
 */
static void
test_first_block_below_size(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_pool *p =
		create_pool(&tp, "ifirst", 16 * MIB, 64 * MIB, UINT64_MAX);
	static struct model m[3];
	struct vems_obj *o[3];
	static const uint64_t size[3] = {3000, 1014, 12000};
	static const uint64_t off[3] = {0, 900, 5000};
	for (int i = 0; i < 3; i++) {
		struct vems_oid oid = {2, (uint64_t)i + 1};
		TU_OK(vems_obj_create(p, &oid));
		TU_OK(vems_obj_open(p, oid, 0, &o[i]));
		m_trunc(o[i], &m[i], size[i]);
		m_write(o[i], &m[i], off[i], 100, 20 + (uint64_t)i);
		assert_true(is_inline(o[i]));
		m_check(o[i], &m[i], "written below the size");
		TU_OK(vems_obj_close(&o[i]));
	}
	assert_int_equal(vems_pool_check(p, NULL, NULL), 0);
	tu_reopen(&tp);
	p = tp.pool;
	assert_int_equal(vems_pool_check(p, NULL, NULL), 0);
	for (int i = 0; i < 3; i++) {
		struct vems_oid oid = {2, (uint64_t)i + 1};
		TU_OK(vems_obj_open(p, oid, 0, &o[i]));
		m_check(o[i], &m[i], "reopened");
		TU_OK(vems_obj_close(&o[i]));
	}
	tu_destroy(&tp);
}

/*
 * When pmem is smaller than the small objects, the coldest move to the
 * block file (as one extent each) and come back when read; creating
 * objects and binding names never fails while the block file has room.
 */
static void
test_evicted_when_pmem_is_short(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_pool *p =
		create_pool(&tp, "ievict", 16 * MIB, 1024 * MIB, UINT64_MAX);
	enum { N = 10000 };
	static size_t len[N];
	uint64_t rng = 99, bytes = 0;
	char name[64];
	for (int i = 0; i < N; i++) {
		struct vems_oid oid = {6, (uint64_t)i + 1};
		len[i] = small_size(&rng);
		bytes += len[i];
		TU_OK(vems_obj_create(p, &oid));
		write_obj(p, oid, len[i], (uint64_t)i * 3);
		snprintf(name, sizeof(name), "small/%d", i);
		TU_OK(vems_name_bind(p, name, oid));
	}
	assert_true(bytes > 16 * MIB);
	struct vems_pool_stats st;
	TU_OK(vems_pool_stats(p, &st));
	print_message("%d objects of %llu bytes in 16 MiB: %llu inline, %llu "
		      "moved to the block file\n",
		      N, (unsigned long long)bytes,
		      (unsigned long long)st.inline_objects,
		      (unsigned long long)st.inline_evictions);
	assert_true(st.inline_evictions > 0);
	assert_true(st.inline_objects + st.extents_pmem + st.extents_both +
			    st.extents_block >=
		    N);
	TU_OK(vems_pool_check(p, NULL, NULL));
	for (int i = 0; i < N; i++)
		verify_obj(p, (struct vems_oid){6, (uint64_t)i + 1}, len[i],
			   (uint64_t)i * 3);
	tu_reopen(&tp);
	p = tp.pool;
	TU_OK(vems_pool_check(p, NULL, NULL));
	for (int i = N; i-- > 0;)
		verify_obj(p, (struct vems_oid){6, (uint64_t)i + 1}, len[i],
			   (uint64_t)i * 3);
	/* an evicted object written again: fetched back, changed */
	struct vems_oid first = {6, 1};
	struct vems_obj *o;
	static uint8_t buf[200];
	tu_fill(buf, sizeof(buf), 4242, 0);
	TU_OK(vems_obj_open(p, first, 0, &o));
	assert_int_equal(vems_obj_pwrite(o, buf, sizeof(buf), 0, 0),
			 (ssize_t)sizeof(buf));
	TU_OK(vems_obj_close(&o));
	TU_OK(vems_pool_check(p, NULL, NULL));
	tu_destroy(&tp);
}

/* With the block file full too, the error says so, and nothing is lost. */
static void
test_both_tiers_full(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_pool *p =
		create_pool(&tp, "ifull", 16 * MIB, 2 * MIB, UINT64_MAX);
	uint64_t rng = 5;
	int made = 0, err = 0;
	static size_t len[40000];
	for (int i = 0; i < 40000; i++) {
		struct vems_oid oid = {8, (uint64_t)i + 1};
		len[i] = small_size(&rng);
		int r = vems_obj_create(p, &oid);
		if (r == 0) {
			static uint8_t buf[8192];
			struct vems_obj *o;
			tu_fill(buf, len[i], (uint64_t)i, 0);
			TU_OK(vems_obj_open(p, oid, 0, &o));
			ssize_t w = vems_obj_pwrite(o, buf, len[i], 0, 0);
			TU_OK(vems_obj_close(&o));
			if (w == (ssize_t)len[i]) {
				made++;
				continue;
			}
			r = (int)w;
			TU_OK(vems_obj_remove(p, oid));
		}
		err = r;
		break;
	}
	assert_int_equal(err, -ENOSPC);
	print_message("%d objects, then: %s\n", made, vems_errormsg());
	assert_non_null(strstr(vems_errormsg(), "full"));
	TU_OK(vems_pool_check(p, NULL, NULL));
	for (int i = 0; i < made; i++)
		verify_obj(p, (struct vems_oid){8, (uint64_t)i + 1}, len[i],
			   (uint64_t)i);
	tu_reopen(&tp);
	TU_OK(vems_pool_check(tp.pool, NULL, NULL));
	for (int i = 0; i < made; i++)
		verify_obj(tp.pool, (struct vems_oid){8, (uint64_t)i + 1},
			   len[i], (uint64_t)i);
	tu_destroy(&tp);
}

static int
no_heap(void *arg, char op, int res, uint32_t len)
{
	(void)arg;
	(void)len;
	return op == 'I' ? -ENOMEM : res;
}

/* A block for the bytes that the heap cannot give: the object goes to
 * extents instead (fault 'I' makes every inline allocation fail). */
static void
test_no_heap_for_inline(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_pool *p =
		create_pool(&tp, "inoheap", 16 * MIB, 64 * MIB, UINT64_MAX);
	struct vems_oid oid = {1, 0};
	TU_OK(vems_obj_create(p, &oid));
	vems__fault_set(no_heap, NULL);
	write_obj(p, oid, 1000, 9);
	vems__fault_set(NULL, NULL);
	struct vems_obj *o;
	TU_OK(vems_obj_open(p, oid, 0, &o));
	assert_false(is_inline(o));
	TU_OK(vems_obj_close(&o));
	verify_obj(p, oid, 1000, 9);
	TU_OK(vems_pool_check(p, NULL, NULL));
	tu_destroy(&tp);
}

static void
test_config(void **state)
{
	(void)state;
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	assert_int_equal(vems_config_set_inline_max(cfg, 64 * KIB + 1),
			 -EINVAL);
	assert_int_equal(vems_config_set_inline_max(NULL, 0), -EINVAL);
	TU_OK(vems_config_set_inline_max(cfg, 0));
	TU_OK(vems_config_set_inline_max(cfg, 64 * KIB));
	vems_config_delete(&cfg);
	/* at most a quarter of the extent */
	assert_int_equal(vems__inline_limit(UINT64_MAX, 64 * KIB), 16 * KIB);
	assert_int_equal(vems__inline_limit(UINT64_MAX, 4 * KIB), 1 * KIB);
	assert_int_equal(vems__inline_limit(64 * KIB, 2 * MIB), 64 * KIB);
	assert_int_equal(vems__inline_limit(0, 2 * MIB), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_first_block_below_size),
		cmocka_unit_test(test_space_within_budget),
		cmocka_unit_test(test_space_without_inline),
		cmocka_unit_test(test_evicted_when_pmem_is_short),
		cmocka_unit_test(test_both_tiers_full),
		cmocka_unit_test(test_no_heap_for_inline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
