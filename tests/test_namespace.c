/* SPDX-License-Identifier: BSD-3-Clause */
/* test_namespace.c -- the persistent namespace: names to object IDs */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vems_internal.h"

#define PMEM_SZ (UINT64_C(32) << 20)
#define BLOCK_SZ (UINT64_C(16) << 20)

/*
 * Leaves a sentence in vems_errormsg() that no name call writes, so a test
 * can tell that the call under test wrote its own.
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
		int ee_r_ = (int)(expr);                                       \
		if (ee_r_ != (code))                                           \
			fail_msg("%s = %d (%s), expected %d (%s): %s", #expr,  \
				 ee_r_, vems_strerror(ee_r_), (code),          \
				 vems_strerror(code), vems_errormsg());        \
		assert_true(vems_errormsg()[0] != '\0');                       \
		assert_string_not_equal(vems_errormsg(), ee_before_);          \
	} while (0)

static void
report_fn(const char *msg, void *arg)
{
	(void)arg;
	print_error("pool check: %s\n", msg);
}

#define CHECK_POOL(pool)                                                       \
	assert_int_equal(vems_pool_check((pool), report_fn, NULL), 0)

static void
assert_oid(struct vems_oid got, struct vems_oid want)
{
	assert_int_equal(got.partition, want.partition);
	assert_int_equal(got.id, want.id);
}

/* name must be bound to want. */
static void
assert_bound(struct vems_pool *pool, const char *name, struct vems_oid want)
{
	struct vems_oid got = {~0ull, ~0ull};
	int r = vems_name_lookup(pool, name, &got);
	if (r != 0)
		fail_msg("lookup \"%.64s\" = %d: %s", name, r, vems_errormsg());
	assert_oid(got, want);
}

static void
assert_unbound(struct vems_pool *pool, const char *name)
{
	struct vems_oid got;
	EXPECT_ERR(vems_name_lookup(pool, name, &got), -ENOENT);
}

static struct vems_oid
new_obj(struct vems_pool *pool, uint64_t partition)
{
	struct vems_oid oid = {partition, 0};
	TU_OK(vems_obj_create(pool, &oid));
	assert_true(oid.id != 0);
	return oid;
}

static uint64_t
nnames(struct vems_pool *pool)
{
	struct vems_pool_stats st;
	TU_OK(vems_pool_stats(pool, &st));
	return st.names;
}

/* Collects what vems_name_list reports. */
struct listed {
	char **names;
	struct vems_oid *oids;
	size_t n, cap;
	size_t stop_after; /* 0: never stop */
	int stop_value;
};

static int
collect_fn(const char *name, const struct vems_oid *oid, void *arg)
{
	struct listed *l = arg;
	assert_non_null(name);
	assert_non_null(oid);
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->names = realloc(l->names, l->cap * sizeof(*l->names));
		l->oids = realloc(l->oids, l->cap * sizeof(*l->oids));
		assert_non_null(l->names);
		assert_non_null(l->oids);
	}
	l->names[l->n] = strdup(name);
	assert_non_null(l->names[l->n]);
	l->oids[l->n] = *oid;
	l->n++;
	if (l->stop_after && l->n == l->stop_after)
		return l->stop_value;
	return 0;
}

static void
listed_free(struct listed *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->oids);
	memset(l, 0, sizeof(*l));
}

/* Byte order: unsigned bytes, a prefix sorts before its extensions. */
static int
bytecmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a;
	const unsigned char *y = (const unsigned char *)b;
	while (*x && *x == *y) {
		x++;
		y++;
	}
	return (int)*x - (int)*y;
}

static int
bytecmp_qsort(const void *a, const void *b)
{
	return bytecmp(*(char *const *)a, *(char *const *)b);
}

static struct tu_pool *
pool_of(void **state)
{
	return *state;
}

static int
setup(void **state)
{
	struct tu_pool *tp = calloc(1, sizeof(*tp));
	if (tp == NULL)
		return -1;
	tu_create(tp, "names", PMEM_SZ, BLOCK_SZ, 0);
	*state = tp;
	return 0;
}

static int
teardown(void **state)
{
	struct tu_pool *tp = *state;
	tu_destroy(tp);
	free(tp);
	return 0;
}

/* --- tests ----------------------------------------------------------- */

static void
test_bind_lookup_unbind(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 0);
	struct vems_oid b = new_obj(pool, 5);

	assert_unbound(pool, "alpha");
	TU_OK(vems_name_bind(pool, "alpha", a));
	TU_OK(vems_name_bind(pool, "beta", b));
	/* two names for one object */
	TU_OK(vems_name_bind(pool, "alpha2", a));
	assert_bound(pool, "alpha", a);
	assert_bound(pool, "beta", b);
	assert_bound(pool, "alpha2", a);
	/* a prefix of a bound name is not bound */
	assert_unbound(pool, "alph");
	assert_unbound(pool, "alpha22");
	assert_int_equal(nnames(pool), 3);
	CHECK_POOL(pool);

	TU_OK(vems_name_unbind(pool, "alpha"));
	assert_unbound(pool, "alpha");
	assert_bound(pool, "alpha2", a);
	EXPECT_ERR(vems_name_unbind(pool, "alpha"), -ENOENT);
	assert_int_equal(nnames(pool), 2);

	/* unbinding a name does not remove the object */
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat_oid(pool, a, &st));
	/* and the name can be bound again, to something else */
	TU_OK(vems_name_bind(pool, "alpha", b));
	assert_bound(pool, "alpha", b);
	CHECK_POOL(pool);

	tu_reopen(tp);
	pool = tp->pool;
	assert_bound(pool, "alpha", b);
	assert_bound(pool, "alpha2", a);
	assert_bound(pool, "beta", b);
	assert_int_equal(nnames(pool), 3);
	CHECK_POOL(pool);
	TU_OK(vems_name_unbind(pool, "alpha"));
	TU_OK(vems_name_unbind(pool, "alpha2"));
	TU_OK(vems_name_unbind(pool, "beta"));
	assert_int_equal(nnames(pool), 0);
}

/* Create and bind in one step; an error creates and binds nothing. */
static void
test_create_named(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = {3, 0}, b = {3, 77};
	TU_OK(vems_obj_create_named(pool, "dir/a", &a));
	assert_true(a.id != 0);
	assert_bound(pool, "dir/a", a);
	TU_OK(vems_obj_create_named(pool, "dir/b", &b));
	assert_int_equal(b.id, 77);
	assert_bound(pool, "dir/b", b);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat_oid(pool, b, &st));
	assert_int_equal(st.size, 0);
	struct vems_pool_stats ps;
	TU_OK(vems_pool_stats(pool, &ps));
	uint64_t objects = ps.objects, names = ps.names;

	/* the name is taken: no object */
	struct vems_oid c = {3, 0}, d = {3, 78};
	EXPECT_ERR(vems_obj_create_named(pool, "dir/a", &c), -EEXIST);
	EXPECT_ERR(vems_obj_create_named(pool, "dir/a", &d), -EEXIST);
	EXPECT_ERR(vems_obj_stat_oid(pool, d, &st), -ENOENT);
	/* the id is taken: no name */
	struct vems_oid e = b;
	EXPECT_ERR(vems_obj_create_named(pool, "dir/e", &e), -EEXIST);
	assert_unbound(pool, "dir/e");
	/* bad names and arguments */
	EXPECT_ERR(vems_obj_create_named(pool, "", &d), -EINVAL);
	EXPECT_ERR(vems_obj_create_named(pool, NULL, &d), -EINVAL);
	EXPECT_ERR(vems_obj_create_named(NULL, "x", &d), -EINVAL);
	EXPECT_ERR(vems_obj_create_named(pool, "x", NULL), -EINVAL);
	static char longname[VEMS_NAME_MAX + 2];
	memset(longname, 'n', VEMS_NAME_MAX + 1);
	EXPECT_ERR(vems_obj_create_named(pool, longname, &d), -ENAMETOOLONG);
	EXPECT_ERR(vems_obj_stat_oid(pool, d, &st), -ENOENT);
	TU_OK(vems_pool_stats(pool, &ps));
	assert_int_equal(ps.objects, objects);
	assert_int_equal(ps.names, names);
	CHECK_POOL(pool);

	/* both persist; removal unbinds */
	tu_reopen(tp);
	pool = tp->pool;
	assert_bound(pool, "dir/a", a);
	assert_bound(pool, "dir/b", b);
	CHECK_POOL(pool);
	TU_OK(vems_obj_remove(pool, a));
	assert_unbound(pool, "dir/a");
	TU_OK(vems_obj_remove(pool, b));
	CHECK_POOL(pool);
}

static void
test_odd_bytes(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 0);
	struct vems_oid b = new_obj(pool, 0);
	static const char *const names[] = {
		"/",	    "/a/b/c", " ",	 "a b", "\xff",
		"\xff\xfe", "\x01",   "ütf-8 ✓", "..",	"a\tb\nc",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		TU_OK(vems_name_bind(pool, names[i], (i & 1) ? a : b));
	tu_reopen(tp);
	pool = tp->pool;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_bound(pool, names[i], (i & 1) ? a : b);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		TU_OK(vems_name_unbind(pool, names[i]));
	CHECK_POOL(pool);
}

static void
test_bad_names(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 0);
	struct vems_oid got;
	int any = 7;

	EXPECT_ERR(vems_name_bind(pool, "", a), -EINVAL);
	EXPECT_ERR(vems_name_bind(pool, NULL, a), -EINVAL);
	EXPECT_ERR(vems_name_lookup(pool, "", &got), -EINVAL);
	EXPECT_ERR(vems_name_lookup(pool, NULL, &got), -EINVAL);
	EXPECT_ERR(vems_name_unbind(pool, ""), -EINVAL);
	EXPECT_ERR(vems_name_unbind(pool, NULL), -EINVAL);
	EXPECT_ERR(vems_name_rename(pool, "", "x", NULL, NULL), -EINVAL);
	EXPECT_ERR(vems_name_rename(pool, NULL, "x", NULL, NULL), -EINVAL);

	/* NULL pool or result pointer */
	EXPECT_ERR(vems_name_bind(NULL, "x", a), -EINVAL);
	EXPECT_ERR(vems_name_lookup(NULL, "x", &got), -EINVAL);
	EXPECT_ERR(vems_name_lookup(pool, "x", NULL), -EINVAL);
	EXPECT_ERR(vems_name_unbind(NULL, "x"), -EINVAL);
	EXPECT_ERR(vems_name_rename(NULL, "x", "y", NULL, NULL), -EINVAL);
	EXPECT_ERR(vems_name_list(NULL, NULL, collect_fn, NULL), -EINVAL);
	EXPECT_ERR(vems_name_list(pool, NULL, NULL, NULL), -EINVAL);

	/* a bad target leaves the source where it was */
	TU_OK(vems_name_bind(pool, "src", a));
	EXPECT_ERR(vems_name_rename(pool, "src", "", NULL, &any), -EINVAL);
	EXPECT_ERR(vems_name_rename(pool, "src", NULL, NULL, &any), -EINVAL);
	assert_bound(pool, "src", a);
	TU_OK(vems_name_unbind(pool, "src"));
	assert_int_equal(nnames(pool), 0);
	CHECK_POOL(pool);
}

static void
test_name_length(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 0);
	struct vems_oid b = new_obj(pool, 0);
	struct vems_oid got;
	struct listed l = {0};

	char *max = malloc(VEMS_NAME_MAX + 1);
	char *over = malloc(VEMS_NAME_MAX + 2);
	char *huge = malloc(3 * VEMS_NAME_MAX);
	assert_non_null(max);
	assert_non_null(over);
	assert_non_null(huge);
	assert_int_equal(VEMS_NAME_MAX, 4095);
	tu_fill(max, VEMS_NAME_MAX, 1, 0);
	for (size_t i = 0; i < VEMS_NAME_MAX; i++)
		max[i] = (char)('a' + (unsigned char)max[i] % 26);
	max[VEMS_NAME_MAX] = '\0';
	memcpy(over, max, VEMS_NAME_MAX);
	over[VEMS_NAME_MAX] = 'z';
	over[VEMS_NAME_MAX + 1] = '\0';
	memset(huge, 'h', 3 * VEMS_NAME_MAX - 1);
	huge[3 * VEMS_NAME_MAX - 1] = '\0';

	/* exactly 4095 bytes: a name like any other */
	TU_OK(vems_name_bind(pool, max, a));
	assert_bound(pool, max, a);
	EXPECT_ERR(vems_name_bind(pool, max, b), -EEXIST);

	/* 4096 bytes (and far more) for every call */
	EXPECT_ERR(vems_name_bind(pool, over, b), -ENAMETOOLONG);
	EXPECT_ERR(vems_name_bind(pool, huge, b), -ENAMETOOLONG);
	EXPECT_ERR(vems_name_lookup(pool, over, &got), -ENAMETOOLONG);
	EXPECT_ERR(vems_name_unbind(pool, over), -ENAMETOOLONG);
	EXPECT_ERR(vems_name_rename(pool, over, "x", NULL, NULL),
		   -ENAMETOOLONG);
	EXPECT_ERR(vems_name_rename(pool, max, over, NULL, NULL),
		   -ENAMETOOLONG);
	EXPECT_ERR(vems_name_rename(pool, max, huge, NULL, NULL),
		   -ENAMETOOLONG);
	assert_bound(pool, max, a);

	TU_OK(vems_name_list(pool, NULL, collect_fn, &l));
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], max);
	assert_oid(l.oids[0], a);
	listed_free(&l);

	/* the long name survives reopen and renames both ways */
	tu_reopen(tp);
	pool = tp->pool;
	assert_bound(pool, max, a);
	TU_OK(vems_name_rename(pool, max, "short", NULL, NULL));
	assert_bound(pool, "short", a);
	assert_unbound(pool, max);
	TU_OK(vems_name_rename(pool, "short", max, NULL, NULL));
	assert_bound(pool, max, a);
	TU_OK(vems_name_unbind(pool, max));
	assert_int_equal(nnames(pool), 0);
	CHECK_POOL(pool);
	free(max);
	free(over);
	free(huge);
}

static void
test_bind_missing_and_duplicate(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 3);
	struct vems_oid b = new_obj(pool, 3);
	struct vems_oid missing = {3, 999999};
	struct vems_oid other_part = {a.partition + 1, a.id};

	EXPECT_ERR(vems_name_bind(pool, "m", missing), -ENOENT);
	EXPECT_ERR(vems_name_bind(pool, "m", other_part), -ENOENT);
	assert_unbound(pool, "m");

	TU_OK(vems_name_bind(pool, "dup", a));
	EXPECT_ERR(vems_name_bind(pool, "dup", b), -EEXIST);
	EXPECT_ERR(vems_name_bind(pool, "dup", a), -EEXIST);
	assert_bound(pool, "dup", a);
	assert_int_equal(nnames(pool), 1);

	/* a removed object cannot be bound */
	TU_OK(vems_name_unbind(pool, "dup"));
	TU_OK(vems_obj_remove(pool, b));
	EXPECT_ERR(vems_name_bind(pool, "b", b), -ENOENT);
	assert_int_equal(nnames(pool), 0);
	CHECK_POOL(pool);
}

static void
test_rename(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 1);
	struct vems_oid b = new_obj(pool, 2);
	struct vems_oid c = new_obj(pool, 3);
	struct vems_oid rep;
	int any;

	TU_OK(vems_name_bind(pool, "a", a));
	TU_OK(vems_name_bind(pool, "b", b));
	TU_OK(vems_name_bind(pool, "c", c));

	/* to a free name: nothing replaced */
	any = 7;
	rep.partition = rep.id = 77;
	TU_OK(vems_name_rename(pool, "a", "a2", &rep, &any));
	assert_int_equal(any, 0);
	assert_unbound(pool, "a");
	assert_bound(pool, "a2", a);
	assert_int_equal(nnames(pool), 3);

	/* onto a bound name: it is replaced and reported */
	any = 7;
	memset(&rep, 0, sizeof(rep));
	TU_OK(vems_name_rename(pool, "a2", "b", &rep, &any));
	assert_int_equal(any, 1);
	assert_oid(rep, b);
	assert_unbound(pool, "a2");
	assert_bound(pool, "b", a);
	assert_int_equal(nnames(pool), 2);
	/* the replaced object itself is still there */
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat_oid(pool, b, &st));
	assert_oid(st.oid, b);
	CHECK_POOL(pool);

	/* replaced pointers may be NULL */
	TU_OK(vems_name_rename(pool, "b", "c", NULL, NULL));
	assert_bound(pool, "c", a);
	assert_unbound(pool, "b");
	any = 7;
	TU_OK(vems_name_rename(pool, "c", "d", NULL, &any));
	assert_int_equal(any, 0);
	TU_OK(vems_name_bind(pool, "e", c));
	memset(&rep, 0, sizeof(rep));
	TU_OK(vems_name_rename(pool, "d", "e", &rep, NULL));
	assert_oid(rep, c);
	assert_bound(pool, "e", a);
	assert_int_equal(nnames(pool), 1);

	/* onto itself: nothing changes, nothing is replaced */
	any = 7;
	rep.partition = rep.id = 77;
	TU_OK(vems_name_rename(pool, "e", "e", &rep, &any));
	assert_int_equal(any, 0);
	assert_int_equal(rep.partition, 77);
	assert_bound(pool, "e", a);
	assert_int_equal(nnames(pool), 1);

	/* from a missing name: -ENOENT, the target untouched */
	TU_OK(vems_name_bind(pool, "f", b));
	any = 7;
	EXPECT_ERR(vems_name_rename(pool, "nope", "f", &rep, &any), -ENOENT);
	EXPECT_ERR(vems_name_rename(pool, "nope", "nope", NULL, NULL), -ENOENT);
	EXPECT_ERR(vems_name_rename(pool, "nope", "new", NULL, NULL), -ENOENT);
	assert_bound(pool, "f", b);
	assert_unbound(pool, "new");
	assert_int_equal(nnames(pool), 2);
	CHECK_POOL(pool);

	/* every rename is durable */
	tu_reopen(tp);
	pool = tp->pool;
	assert_bound(pool, "e", a);
	assert_bound(pool, "f", b);
	assert_unbound(pool, "a");
	assert_unbound(pool, "a2");
	assert_unbound(pool, "b");
	assert_unbound(pool, "c");
	assert_unbound(pool, "d");
	assert_int_equal(nnames(pool), 2);
	CHECK_POOL(pool);
	TU_OK(vems_name_unbind(pool, "e"));
	TU_OK(vems_name_unbind(pool, "f"));
}

/*
 * Renames in a chain many times over one name set: a replaced record's OID
 * must be read before its memory is given back.
 */
static void
test_rename_replace_many(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	enum { N = 64 };
	struct vems_oid o[N];
	char from[32], to[32];

	for (int i = 0; i < N; i++) {
		o[i] = new_obj(pool, (uint64_t)i);
		snprintf(from, sizeof(from), "n%02d", i);
		TU_OK(vems_name_bind(pool, from, o[i]));
	}
	/* n00 -> n01 -> ... : each step replaces the next object's name */
	for (int i = 0; i + 1 < N; i++) {
		struct vems_oid rep = {0, 0};
		int any = 0;
		snprintf(from, sizeof(from), "n%02d", i);
		snprintf(to, sizeof(to), "n%02d", i + 1);
		TU_OK(vems_name_rename(pool, from, to, &rep, &any));
		assert_int_equal(any, 1);
		assert_oid(rep, o[i + 1]);
		assert_bound(pool, to, o[0]);
	}
	assert_int_equal(nnames(pool), 1);
	snprintf(to, sizeof(to), "n%02d", N - 1);
	TU_OK(vems_name_unbind(pool, to));
	CHECK_POOL(pool);
}

static void
test_list_many(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	enum { N = 2000, NOBJ = 16 };
	struct vems_oid objs[NOBJ];
	char **want = calloc(N, sizeof(*want));
	struct listed l = {0};
	uint64_t seed = 42;
	assert_non_null(want);

	for (int i = 0; i < NOBJ; i++)
		objs[i] = new_obj(pool, (uint64_t)i % 3);
	/* names in random order, some with a shared longer prefix */
	for (int i = 0; i < N; i++) {
		want[i] = malloc(64);
		assert_non_null(want[i]);
		snprintf(want[i], 64, "dir/%s%llx-%d", (i % 5) ? "" : "sub/",
			 (unsigned long long)(tu_rand(&seed) & 0xffffff), i);
	}
	for (int i = 0; i < N; i++)
		TU_OK(vems_name_bind(pool, want[i], objs[i % NOBJ]));
	/* outside the prefix */
	TU_OK(vems_name_bind(pool, "dir", objs[0]));
	TU_OK(vems_name_bind(pool, "dio/x", objs[0]));
	TU_OK(vems_name_bind(pool, "dir0", objs[1]));
	TU_OK(vems_name_bind(pool, "a", objs[2]));
	TU_OK(vems_name_bind(pool, "\xff-last", objs[3]));
	assert_int_equal(nnames(pool), N + 5);
	CHECK_POOL(pool);

	char **sorted = malloc(N * sizeof(*sorted));
	assert_non_null(sorted);
	memcpy(sorted, want, N * sizeof(*sorted));
	qsort(sorted, N, sizeof(*sorted), bytecmp_qsort);

	for (int round = 0; round < 2; round++) {
		/* "dir/": exactly the N names, in byte order */
		TU_OK(vems_name_list(pool, "dir/", collect_fn, &l));
		assert_int_equal(l.n, N);
		for (size_t i = 0; i < l.n; i++) {
			assert_string_equal(l.names[i], sorted[i]);
			/* the index after the last '-' says which object */
			int idx = atoi(strrchr(l.names[i], '-') + 1);
			assert_oid(l.oids[i], objs[idx % NOBJ]);
		}
		listed_free(&l);

		/* a longer prefix */
		size_t nsub = 0;
		TU_OK(vems_name_list(pool, "dir/sub/", collect_fn, &l));
		for (int i = 0; i < N; i++)
			nsub += strncmp(want[i], "dir/sub/", 8) == 0;
		assert_int_equal(l.n, nsub);
		assert_int_equal(nsub, N / 5);
		for (size_t i = 0; i < l.n; i++) {
			assert_memory_equal(l.names[i], "dir/sub/", 8);
			if (i)
				assert_true(bytecmp(l.names[i - 1],
						    l.names[i]) < 0);
		}
		listed_free(&l);

		/* everything: NULL and "" are the same */
		TU_OK(vems_name_list(pool, NULL, collect_fn, &l));
		assert_int_equal(l.n, N + 5);
		assert_string_equal(l.names[0], "a");
		assert_string_equal(l.names[1], "dio/x");
		assert_string_equal(l.names[2], "dir");
		assert_string_equal(l.names[3 + N], "dir0");
		assert_string_equal(l.names[4 + N], "\xff-last");
		for (size_t i = 1; i < l.n; i++)
			assert_true(bytecmp(l.names[i - 1], l.names[i]) < 0);
		struct listed l2 = {0};
		TU_OK(vems_name_list(pool, "", collect_fn, &l2));
		assert_int_equal(l2.n, l.n);
		for (size_t i = 0; i < l.n; i++)
			assert_string_equal(l.names[i], l2.names[i]);
		listed_free(&l2);
		listed_free(&l);

		/* a prefix that is a whole name, and one nothing has */
		TU_OK(vems_name_list(pool, "dir0", collect_fn, &l));
		assert_int_equal(l.n, 1);
		listed_free(&l);
		TU_OK(vems_name_list(pool, "zzz", collect_fn, &l));
		assert_int_equal(l.n, 0);
		TU_OK(vems_name_list(pool, "dir/sub/zzzzzzzzzzzzzzzzzzzzzzzz",
				     collect_fn, &l));
		assert_int_equal(l.n, 0);
		listed_free(&l);

		tu_reopen(tp);
		pool = tp->pool;
		assert_int_equal(nnames(pool), N + 5);
		CHECK_POOL(pool);
	}

	for (int i = 0; i < N; i++) {
		TU_OK(vems_name_unbind(pool, want[i]));
		free(want[i]);
	}
	free(want);
	free(sorted);
	TU_OK(vems_name_unbind(pool, "dir"));
	TU_OK(vems_name_unbind(pool, "dio/x"));
	TU_OK(vems_name_unbind(pool, "dir0"));
	TU_OK(vems_name_unbind(pool, "a"));
	TU_OK(vems_name_unbind(pool, "\xff-last"));
	assert_int_equal(nnames(pool), 0);
	TU_OK(vems_name_list(pool, NULL, collect_fn, &l));
	assert_int_equal(l.n, 0);
	CHECK_POOL(pool);
}

static void
test_list_stop(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 0);
	char name[32];
	struct listed l = {0};

	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "s%03d", i);
		TU_OK(vems_name_bind(pool, name, a));
	}
	/* a positive value after the 10th call */
	l.stop_after = 10;
	l.stop_value = 7;
	assert_int_equal(vems_name_list(pool, "s", collect_fn, &l), 7);
	assert_int_equal(l.n, 10);
	assert_string_equal(l.names[9], "s009");
	listed_free(&l);

	/* a negative one at the first call */
	l.stop_after = 1;
	l.stop_value = -12345;
	assert_int_equal(vems_name_list(pool, NULL, collect_fn, &l), -12345);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], "s000");
	listed_free(&l);

	/* at the very last call: still returned */
	l.stop_after = 50;
	l.stop_value = 3;
	assert_int_equal(vems_name_list(pool, NULL, collect_fn, &l), 3);
	assert_int_equal(l.n, 50);
	listed_free(&l);

	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "s%03d", i);
		TU_OK(vems_name_unbind(pool, name));
	}
	CHECK_POOL(pool);
}

/* A callback may change the namespace it walks (it runs unlocked). */
struct unbind_walk {
	struct vems_pool *pool;
	int calls;
};

static int
unbind_fn(const char *name, const struct vems_oid *oid, void *arg)
{
	struct unbind_walk *w = arg;
	struct vems_oid got;
	(void)oid;
	w->calls++;
	assert_int_equal(vems_name_lookup(w->pool, name, &got), 0);
	assert_int_equal(vems_name_unbind(w->pool, name), 0);
	return 0;
}

static void
test_list_callback_reenters(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 0);
	char name[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "r/%d", i);
		TU_OK(vems_name_bind(pool, name, a));
	}
	TU_OK(vems_name_bind(pool, "keep", a));
	struct unbind_walk w = {pool, 0};
	assert_int_equal(vems_name_list(pool, "r/", unbind_fn, &w), 0);
	assert_int_equal(w.calls, 100);
	assert_int_equal(nnames(pool), 1);
	assert_bound(pool, "keep", a);
	TU_OK(vems_name_unbind(pool, "keep"));
	CHECK_POOL(pool);
}

static void
test_remove_object_unbinds(void **state)
{
	struct tu_pool *tp = pool_of(state);
	struct vems_pool *pool = tp->pool;
	struct vems_oid a = new_obj(pool, 9);
	struct vems_oid b = new_obj(pool, 9);
	struct vems_obj *h;
	char name[32];
	uint8_t buf[5000];

	/* a has data, so removal frees extents too */
	TU_OK(vems_obj_open(pool, a, 0, &h));
	tu_fill(buf, sizeof(buf), 1, 0);
	assert_int_equal(vems_obj_pwrite(h, buf, sizeof(buf), 0, 0),
			 (ssize_t)sizeof(buf));
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "a/%d", i);
		TU_OK(vems_name_bind(pool, name, a));
		snprintf(name, sizeof(name), "b/%d", i);
		TU_OK(vems_name_bind(pool, name, b));
	}
	assert_int_equal(nnames(pool), 80);

	/* an open handle keeps the object's data, not its names */
	TU_OK(vems_obj_remove(pool, a));
	assert_int_equal(nnames(pool), 40);
	assert_int_equal(vems_obj_pread(h, buf, sizeof(buf), 0),
			 (ssize_t)sizeof(buf));
	assert_true(tu_verify(buf, sizeof(buf), 1, 0));
	TU_OK(vems_obj_close(&h));
	assert_int_equal(nnames(pool), 40);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "a/%d", i);
		assert_unbound(pool, name);
		snprintf(name, sizeof(name), "b/%d", i);
		assert_bound(pool, name, b);
	}
	struct listed l = {0};
	TU_OK(vems_name_list(pool, "a/", collect_fn, &l));
	assert_int_equal(l.n, 0);
	listed_free(&l);
	CHECK_POOL(pool);
	/* the removed object's names may be bound again, to b */
	TU_OK(vems_name_bind(pool, "a/0", b));

	tu_reopen(tp);
	pool = tp->pool;
	assert_int_equal(nnames(pool), 41);
	assert_bound(pool, "a/0", b);
	for (int i = 1; i < 40; i++) {
		snprintf(name, sizeof(name), "a/%d", i);
		assert_unbound(pool, name);
	}
	CHECK_POOL(pool);

	/* removing the last one empties the namespace */
	TU_OK(vems_obj_remove(pool, b));
	assert_int_equal(nnames(pool), 0);
	TU_OK(vems_name_list(pool, NULL, collect_fn, &l));
	assert_int_equal(l.n, 0);
	CHECK_POOL(pool);
	tu_reopen(tp);
	assert_int_equal(nnames(tp->pool), 0);
	CHECK_POOL(tp->pool);
}

/* Creates *oid and writes every pmem frame's worth of dirty data
 * (tu_fill, seed 9); its bytes in *bufp if wanted. */
static uint64_t
fill_pmem(struct vems_pool *pool, struct vems_oid *oid, uint8_t **bufp)
{
	TU_OK(vems_obj_create(pool, oid));
	uint64_t size = (uint64_t)pool->frames_present * pool->extent_size;
	uint8_t *buf = malloc(size);
	tu_fill(buf, size, 9, 0);
	struct vems_obj *o;
	TU_OK(vems_obj_open(pool, *oid, 0, &o));
	assert_int_equal(vems_obj_pwrite(o, buf, size, 0, 0), (ssize_t)size);
	vems_obj_close(&o);
	if (bufp)
		*bufp = buf;
	else
		free(buf);
	return size;
}

/* Object `oid` holds `size` bytes of tu_fill(seed 9). */
static void
verify_data(struct vems_pool *pool, struct vems_oid oid, uint64_t size)
{
	struct vems_obj *o;
	uint8_t *buf = malloc(size + 1);
	TU_OK(vems_obj_open(pool, oid, VEMS_O_RDONLY, &o));
	assert_int_equal(vems_obj_pread(o, buf, size + 1, 0), (ssize_t)size);
	assert_true(tu_verify(buf, size, 9, 0));
	vems_obj_close(&o);
	free(buf);
}

/*
 * Issue 9: metadata grows into pmem, a data chunk at a time, instead of
 * stopping at a space fixed at create. A 16 MiB pool whose pmem was full
 * of data stopped at about 2,000 names with its block file nearly empty,
 * and a name of VEMS_NAME_MAX bytes did not bind at all. Now: the long
 * name binds, tens of thousands of names and objects follow (the data
 * they displace is spilled, and reads back), and when pmem really is
 * full the error says so.
 */
static void
test_metadata_grows_into_pmem(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "metagrow", 16 << 20, 256 << 20, 64 << 10);
	struct vems_pool *p = tp.pool;
	uint32_t present0 = p->frames_present;
	struct vems_oid data = {3, 0};
	uint64_t size = fill_pmem(p, &data, NULL);

	struct vems_oid target = new_obj(p, 4);
	char *longname = malloc(VEMS_NAME_MAX + 1);
	memset(longname, 'x', VEMS_NAME_MAX);
	longname[VEMS_NAME_MAX] = '\0';
	TU_OK(vems_name_bind(p, longname, target));
	enum { NNAMES = 30000, NOBJS = 5000 };
	char nm[32];
	for (int i = 0; i < NNAMES; i++) {
		snprintf(nm, sizeof(nm), "n/%06d", i);
		int r = vems_name_bind(p, nm, target);
		if (r)
			fail_msg("name %d of %d: %s", i, NNAMES,
				 vems_errormsg());
		if (i < NOBJS) {
			struct vems_oid x = {5, 0};
			r = vems_obj_create(p, &x);
			if (r)
				fail_msg("object %d of %d: %s", i, NOBJS,
					 vems_errormsg());
		}
	}
	print_message("pmem frames: %u at create, %u after %d names and %d "
		      "objects\n",
		      present0, (unsigned)p->frames_present, NNAMES, NOBJS);
	assert_true(p->frames_present < present0);
	verify_data(p, data, size);
	CHECK_POOL(p);

	/* all of it durable: after a reopen, the same */
	TU_OK(vems_pool_close(&tp.pool));
	TU_OK(vems_pool_open(&tp.pool, tp.pmem, NULL));
	p = tp.pool;
	assert_bound(p, longname, target);
	for (int i = 0; i < NNAMES; i += 997) {
		snprintf(nm, sizeof(nm), "n/%06d", i);
		assert_bound(p, nm, target);
	}
	verify_data(p, data, size);
	CHECK_POOL(p);

	/* until pmem is full of metadata, but for the last chunk of data */
	int more = 0, r = 0;
	while (r == 0) {
		snprintf(nm, sizeof(nm), "m/%07d", more);
		prime_errormsg();
		r = vems_name_bind(p, nm, target);
		more += r == 0;
	}
	assert_int_equal(r, -ENOSPC);
	if (strstr(vems_errormsg(), "pmem is full") == NULL)
		fail_msg("the error does not say what is full: %s",
			 vems_errormsg());
	print_message("%d more names, then: %s\n", more, vems_errormsg());
	assert_int_equal(p->frames_present, p->chunk_frames);
	verify_data(p, data, size);
	CHECK_POOL(p);
	/* room again once names go */
	for (int i = 0; i < 200; i++) {
		snprintf(nm, sizeof(nm), "m/%07d", i);
		TU_OK(vems_name_unbind(p, nm));
	}
	TU_OK(vems_name_bind(p, "after/unbind", target));
	CHECK_POOL(p);
	free(longname);
	tu_destroy(&tp);
}

/*
 * Metadata needs a chunk whose data cannot be spilled (the block file is
 * full): the bind fails with ENOSPC saying both tiers are full, the frames
 * the attempt freed go back to use, and nothing is lost.
 */
static void
test_metadata_full_when_data_cannot_spill(void **state)
{
	(void)state;
	struct tu_pool tp;
	/* 16 block slots of 64 KiB, far fewer than pmem's frames */
	tu_create(&tp, "metafull", 16 << 20, 1 << 20, 64 << 10);
	struct vems_pool *p = tp.pool;
	uint32_t present0 = p->frames_present;
	struct vems_oid data = {3, 0};
	uint8_t *buf;
	uint64_t size = fill_pmem(p, &data, &buf);
	struct vems_obj *o;
	struct vems_oid target = new_obj(p, 4);
	char nm[64];
	int r = 0, n = 0;
	for (; r == 0 && n < 100000; n++) {
		snprintf(nm, sizeof(nm), "f/%06d", n);
		prime_errormsg();
		r = vems_name_bind(p, nm, target);
	}
	assert_int_equal(r, -ENOSPC);
	print_message("%d names, then: %s\n", n - 1, vems_errormsg());
	if (strstr(vems_errormsg(), "both tiers are full") == NULL)
		fail_msg("the error does not say what is full: %s",
			 vems_errormsg());
	/* no chunk went, and the frames freed by the attempt are in use */
	assert_int_equal(p->frames_present, present0);
	assert_int_equal(p->parked, 0);
	assert_int_equal(p->draining, -1);
	CHECK_POOL(p);
	verify_data(p, data, size);
	struct vems_pool_stats st;
	TU_OK(vems_pool_stats(p, &st));
	assert_true(st.pmem_bytes_free > 0);
	/* (a new object would need metadata too: the named one takes it) */
	TU_OK(vems_obj_open(p, target, 0, &o));
	assert_int_equal(vems_obj_pwrite(o, buf, st.pmem_bytes_free, 0, 0),
			 (ssize_t)st.pmem_bytes_free);
	vems_obj_close(&o);
	CHECK_POOL(p);
	tu_reopen(&tp);
	verify_data(tp.pool, data, size);
	assert_bound(tp.pool, "f/000000", target);
	CHECK_POOL(tp.pool);
	free(buf);
	tu_destroy(&tp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bind_lookup_unbind, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_create_named, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_odd_bytes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_name_length, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bind_missing_and_duplicate,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_replace_many, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_many, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_stop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_callback_reenters,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_object_unbinds,
						setup, teardown),
		cmocka_unit_test(test_metadata_grows_into_pmem),
		cmocka_unit_test(test_metadata_full_when_data_cannot_spill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
