/* SPDX-License-Identifier: BSD-3-Clause */
/* test_errors.c -- error codes, vems_strerror() and vems_errormsg() */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define MIB (UINT64_C(1) << 20)

static const int vems_codes[] = {
	VEMS_E_NOTPOOL,	 VEMS_E_VERSION,  VEMS_E_CORRUPT,
	VEMS_E_MISMATCH, VEMS_E_CHECKSUM,
};
#define NCODES (int)(sizeof(vems_codes) / sizeof(vems_codes[0]))

/* Two sentences no call under test writes; see EXPECT_ERR. */
static struct vems_config *primer_cfg;

static void
prime_a(void)
{
	if (primer_cfg == NULL)
		TU_OK(vems_config_new(&primer_cfg));
	(void)vems_config_set_pmem_size(primer_cfg, 5);
}

static void
prime_b(void)
{
	(void)vems_config_new(NULL);
}

/*
 * expr must return exactly code and write its own non-empty sentence:
 * checked after two different primers, so a call that writes nothing (or
 * happens to write one primer's text) is caught.
 */
#define EXPECT_ERR(expr, code)                                                 \
	do {                                                                   \
		for (int ee_i_ = 0; ee_i_ < 2; ee_i_++) {                      \
			char ee_before_[1024];                                 \
			if (ee_i_ == 0)                                        \
				prime_a();                                     \
			else                                                   \
				prime_b();                                     \
			strcpy(ee_before_, vems_errormsg());                   \
			long long ee_r_ = (long long)(expr);                   \
			if (ee_r_ != (code))                                   \
				fail_msg("%s = %lld (%s), expected %d: %s",    \
					 #expr, ee_r_,                         \
					 vems_strerror((int)ee_r_), (code),    \
					 vems_errormsg());                     \
			if (vems_errormsg()[0] == '\0' ||                      \
			    strcmp(vems_errormsg(), ee_before_) == 0)          \
				fail_msg("%s left no message of its own",      \
					 #expr);                               \
		}                                                              \
	} while (0)

/* The pool a test made: removed by the teardown even when it fails. */
static struct tu_pool fx_pool;

static int
teardown(void **state)
{
	(void)state;
	tu_destroy(&fx_pool);
	memset(&fx_pool, 0, sizeof(fx_pool));
	return 0;
}

static void
test_strerror_vems_codes(void **state)
{
	(void)state;
	/* the range is contiguous and below every errno */
	assert_int_equal(VEMS_E_NOTPOOL, VEMS_E_BASE - 1);
	assert_int_equal(VEMS_E_LAST, VEMS_E_CHECKSUM);
	assert_int_equal(VEMS_E_BASE - NCODES, VEMS_E_LAST);
	assert_true(VEMS_E_BASE < -4095);

	char unknown[128];
	snprintf(unknown, sizeof(unknown), "%s",
		 vems_strerror(VEMS_E_LAST - 1));
	for (int i = 0; i < NCODES; i++) {
		const char *s = vems_strerror(vems_codes[i]);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		assert_string_not_equal(s, unknown);
		assert_null(strstr(s, "nknown"));
		/* static text: the same pointer contents every time */
		assert_string_equal(s, vems_strerror(vems_codes[i]));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(s,
						vems_strerror(vems_codes[j]));
		/* and not the text of any errno */
		for (int e = 1; e < 134; e++)
			assert_string_not_equal(s, strerror(e));
	}
}

static void
test_strerror_errno(void **state)
{
	(void)state;
	static const int common[] = {EINVAL, ENOENT, EEXIST,	   ENOSPC,
				     EFBIG,  EBUSY,  ENAMETOOLONG, EIO,
				     EBADF,  ENOMEM};
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
		const char *s = vems_strerror(-common[i]);
		assert_non_null(s);
		assert_string_equal(s, strerror(common[i]));
	}
	/* every errno glibc knows, and some it does not */
	for (int e = 1; e < 4096; e++) {
		char want[256];
		snprintf(want, sizeof(want), "%s", strerror(e));
		const char *s = vems_strerror(-e);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		if (e < 134)
			assert_string_equal(s, want);
	}
}

static void
test_strerror_other_values(void **state)
{
	(void)state;
	static const int odd[] = {
		0,
		1,
		77,
		INT_MAX,
		INT_MIN,
		INT_MIN + 1,
		VEMS_E_BASE,
		VEMS_E_LAST - 1,
		VEMS_E_LAST - 1000,
		VEMS_E_BASE + 1,
		-99999,
		-4096,
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		const char *s = vems_strerror(odd[i]);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		assert_true(strlen(s) < 256);
	}
	/* codes that are not ours are not reported as one of ours */
	for (int i = 0; i < NCODES; i++) {
		char ours[256];
		snprintf(ours, sizeof(ours), "%s",
			 vems_strerror(vems_codes[i]));
		assert_string_not_equal(vems_strerror(VEMS_E_BASE), ours);
		assert_string_not_equal(vems_strerror(VEMS_E_LAST - 1), ours);
		assert_string_not_equal(vems_strerror(5), ours);
	}
}

/* --- vems_errormsg ----------------------------------------------------- */

static void *
fresh_thread_msg(void *arg)
{
	const char **out = arg;
	const char *m = vems_errormsg();
	*out = m && m[0] == '\0' ? "empty" : m ? "not empty" : NULL;
	return NULL;
}

static void
test_errormsg_initially_empty(void **state)
{
	(void)state;
	/* fail here first: a new thread must not see this thread's text */
	assert_int_equal(vems_config_new(NULL), -EINVAL);
	assert_true(vems_errormsg()[0] != '\0');
	pthread_t t;
	const char *res = NULL;
	assert_int_equal(pthread_create(&t, NULL, fresh_thread_msg, &res), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_non_null(res);
	assert_string_equal(res, "empty");
}

static void
test_errormsg_survives_success(void **state)
{
	(void)state;
	struct vems_config *cfg;
	char saved[1024];

	assert_int_equal(vems_config_set_extent_size(NULL, 3), -EINVAL);
	snprintf(saved, sizeof(saved), "%s", vems_errormsg());
	assert_true(saved[0] != '\0');

	/* successful calls leave it alone */
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE));
	TU_OK(vems_config_set_block_path(cfg, "/nonexistent/x"));
	(void)vems_strerror(VEMS_E_CORRUPT);
	(void)vems_strerror(-4000);
	(void)vems_version();
	vems_config_delete(&cfg);
	assert_int_equal(vems_pool_close(NULL), 0);
	assert_string_equal(vems_errormsg(), saved);

	/* and so does a successful pool's life */
	struct tu_pool *tp = &fx_pool;
	tu_create(tp, "errsucc", VEMS_PMEM_MIN_SIZE, 8 * MIB, 0);
	assert_int_equal(vems_config_set_extent_size(NULL, 3), -EINVAL);
	struct vems_oid oid = {0, 0};
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_name_bind(tp->pool, "n", oid));
	tu_reopen(tp);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	assert_string_equal(vems_errormsg(), saved);
	tu_destroy(tp);
}

struct tmsg {
	int idx;
	int iterations;
	int bad; /* a message that was not this thread's own */
};

static void *
thread_failer(void *arg)
{
	struct tmsg *t = arg;
	char path[128], name[64];
	struct vems_pool *p;
	snprintf(path, sizeof(path), "/nonexistent-vems-dir/thread-%d.pool",
		 t->idx);
	snprintf(name, sizeof(name), "thread-%d.pool", t->idx);
	for (int i = 0; i < t->iterations; i++) {
		if (vems_pool_open(&p, path, NULL) != -ENOENT)
			t->bad++;
		/* other threads fail at the same time; this text is ours */
		if (strstr(vems_errormsg(), name) == NULL)
			t->bad++;
		(void)vems_strerror(-4000 - t->idx); /* thread-local too */
		if (strstr(vems_errormsg(), name) == NULL)
			t->bad++;
	}
	return NULL;
}

static void
test_errormsg_per_thread(void **state)
{
	(void)state;
	enum { NT = 8 };
	pthread_t th[NT];
	struct tmsg tm[NT];
	for (int i = 0; i < NT; i++) {
		tm[i] = (struct tmsg){.idx = i, .iterations = 2000, .bad = 0};
		assert_int_equal(
			pthread_create(&th[i], NULL, thread_failer, &tm[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(tm[i].bad, 0);
	}
}

/* A sentence about a very long path stays bounded and terminated. */
static void
test_errormsg_long(void **state)
{
	(void)state;
	char *path = malloc(PATH_MAX);
	struct vems_pool *p;
	assert_non_null(path);
	/* short components: a legal path of ~4000 bytes that is not there */
	size_t n = 0;
	n += (size_t)snprintf(path, PATH_MAX, "/nonexistent-vems-dir");
	while (n + 3 < PATH_MAX - 100)
		n += (size_t)snprintf(path + n, PATH_MAX - n, "/ab");
	EXPECT_ERR(vems_pool_open(&p, path, NULL), -ENOENT);
	size_t l = strlen(vems_errormsg());
	assert_true(l > 0);
	assert_true(l < 4096);
	assert_non_null(strstr(vems_errormsg(), "/nonexistent-vems-dir/ab"));

	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE));
	TU_OK(vems_config_set_block_path(cfg, path));
	EXPECT_ERR(vems_pool_create(&p, path, cfg), -ENAMETOOLONG);
	assert_true(strlen(vems_errormsg()) < 4096);
	vems_config_delete(&cfg);
	free(path);
}

static int
list_fn(const struct vems_oid *oid, void *arg)
{
	(void)oid;
	(void)arg;
	return 0;
}

static void
report_fn(const char *msg, void *arg)
{
	(void)arg;
	print_error("pool check: %s\n", msg);
}

/* Every failing call writes a sentence; NULL where a pointer is needed. */
static void
test_errormsg_after_failures(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pool;
	struct vems_pool_info info;
	struct vems_pool_stats st;
	struct vems_obj_stat ost;
	struct vems_obj *h = NULL, *ro = NULL;
	struct vems_pool *p;
	uint8_t buf[64] = {0};

	tu_create(tp, "errsweep", VEMS_PMEM_MIN_SIZE, 8 * MIB, 0);
	struct vems_oid oid = {4, 0};
	struct vems_oid missing = {4, 123456};
	TU_OK(vems_obj_create(tp->pool, &oid));

	/* NULL handles and result pointers */
	EXPECT_ERR(vems_pool_info(NULL, &info), -EINVAL);
	EXPECT_ERR(vems_pool_info(tp->pool, NULL), -EINVAL);
	EXPECT_ERR(vems_pool_stats(NULL, &st), -EINVAL);
	EXPECT_ERR(vems_pool_stats(tp->pool, NULL), -EINVAL);
	EXPECT_ERR(vems_pool_check(NULL, NULL, NULL), -EINVAL);
	EXPECT_ERR(vems_pool_persist(NULL), -EINVAL);
	EXPECT_ERR(vems_obj_create(NULL, &oid), -EINVAL);
	EXPECT_ERR(vems_obj_create(tp->pool, NULL), -EINVAL);
	EXPECT_ERR(vems_obj_remove(NULL, oid), -EINVAL);
	EXPECT_ERR(vems_obj_open(tp->pool, oid, 0, NULL), -EINVAL);
	EXPECT_ERR(vems_obj_pread(NULL, buf, sizeof(buf), 0), -EINVAL);
	EXPECT_ERR(vems_obj_pwrite(NULL, buf, sizeof(buf), 0, 0), -EINVAL);
	EXPECT_ERR(vems_obj_truncate(NULL, 0), -EINVAL);
	EXPECT_ERR(vems_obj_persist(NULL), -EINVAL);
	EXPECT_ERR(vems_obj_stat(NULL, &ost), -EINVAL);
	EXPECT_ERR(vems_obj_stat_oid(NULL, oid, &ost), -EINVAL);
	EXPECT_ERR(vems_obj_stat_oid(tp->pool, oid, NULL), -EINVAL);
	EXPECT_ERR(vems_obj_list(NULL, list_fn, NULL), -EINVAL);
	EXPECT_ERR(vems_obj_list(tp->pool, NULL, NULL), -EINVAL);
	EXPECT_ERR(vems_pool_open(NULL, tp->pmem, NULL), -EINVAL);
	EXPECT_ERR(vems_config_set_block_path(NULL, "x"), -EINVAL);
	struct vems_obj *hh;
	EXPECT_ERR(vems_obj_open(NULL, oid, 0, &hh), -EINVAL);

	/* real conditions */
	EXPECT_ERR(vems_obj_create(tp->pool, &oid), -EEXIST);
	/* an object ID is spelled PARTITION:ID in every message, as vemsctl
	 * prints it */
	{
		char want[64];
		snprintf(want, sizeof(want), "object %llu:%llu exists",
			 (unsigned long long)oid.partition,
			 (unsigned long long)oid.id);
		if (strstr(vems_errormsg(), want) == NULL)
			fail_msg("\"%s\" does not say \"%s\"", vems_errormsg(),
				 want);
	}
	EXPECT_ERR(vems_obj_remove(tp->pool, missing), -ENOENT);
	EXPECT_ERR(vems_obj_open(tp->pool, missing, 0, &h), -ENOENT);
	EXPECT_ERR(vems_obj_stat_oid(tp->pool, missing, &ost), -ENOENT);
	EXPECT_ERR(vems_obj_open(tp->pool, oid, 0x80, &h), -EINVAL);
	assert_null(h);
	TU_OK(vems_obj_open(tp->pool, oid, 0, &h));
	TU_OK(vems_obj_open(tp->pool, oid, VEMS_O_RDONLY, &ro));
	EXPECT_ERR(vems_obj_pwrite(ro, buf, sizeof(buf), 0, 0), -EBADF);
	EXPECT_ERR(vems_obj_truncate(ro, 0), -EBADF);
	EXPECT_ERR(vems_obj_pwrite(h, buf, sizeof(buf), 0, 0x80), -EINVAL);
	EXPECT_ERR(vems_obj_pwrite(h, buf, sizeof(buf), VEMS_OBJ_MAX_SIZE, 0),
		   -EINVAL);
	EXPECT_ERR(vems_obj_pwrite(h, NULL, sizeof(buf), 0, 0), -EINVAL);
	EXPECT_ERR(vems_obj_pread(h, NULL, sizeof(buf), 0), -EINVAL);
	EXPECT_ERR(vems_obj_truncate(h, VEMS_OBJ_MAX_SIZE + 1), -EINVAL);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), -EBUSY);
	TU_OK(vems_obj_close(&ro));
	TU_OK(vems_obj_close(&h));
	assert_int_equal(vems_pool_check(tp->pool, report_fn, NULL), 0);
	tu_destroy(tp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_strerror_vems_codes, teardown),
		cmocka_unit_test_teardown(test_strerror_errno, teardown),
		cmocka_unit_test_teardown(test_strerror_other_values, teardown),
		cmocka_unit_test_teardown(test_errormsg_initially_empty,
					  teardown),
		cmocka_unit_test_teardown(test_errormsg_survives_success,
					  teardown),
		cmocka_unit_test_teardown(test_errormsg_per_thread, teardown),
		cmocka_unit_test_teardown(test_errormsg_long, teardown),
		cmocka_unit_test_teardown(test_errormsg_after_failures,
					  teardown),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);
	vems_config_delete(&primer_cfg);
	return ret;
}
