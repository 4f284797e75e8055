/* SPDX-License-Identifier: BSD-3-Clause */
/* test_io.c -- the data path: pread/pwrite/truncate/persist semantics */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "testutil.h"

#define MIB (UINT64_C(1) << 20)

static int
setup(void **state)
{
	struct tu_pool *tp = calloc(1, sizeof(*tp));
	tu_create(tp, "io", 128 * MIB, 256 * MIB, 0);
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

static struct vems_obj *
new_obj(struct tu_pool *tp, struct vems_oid *oidp)
{
	struct vems_oid oid = {7, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	if (oidp)
		*oidp = oid;
	return o;
}

static void
test_empty_and_eof(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_obj *o = new_obj(tp, NULL);
	char buf[16] = {1};
	assert_int_equal(vems_obj_pread(o, buf, sizeof(buf), 0), 0);
	assert_int_equal(vems_obj_pwrite(o, "abc", 3, 0, 0), 3);
	assert_int_equal(vems_obj_pread(o, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(vems_obj_pread(o, buf, sizeof(buf), 3), 0);
	assert_int_equal(vems_obj_pread(o, buf, sizeof(buf), 1000), 0);
	/* zero-length write: no change of size */
	assert_int_equal(vems_obj_pwrite(o, buf, 0, 5000, 0), 0);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, 3);
	vems_obj_close(&o);
}

static void
test_holes_read_zero(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_obj *o = new_obj(tp, NULL);
	uint8_t data[100];
	tu_fill(data, sizeof(data), 1, 0);
	uint64_t off = 3 * MIB + 17;
	assert_int_equal(vems_obj_pwrite(o, data, sizeof(data), off, 0), 100);
	size_t len = (size_t)(off + 100);
	uint8_t *buf = malloc(len);
	memset(buf, 0xee, len);
	assert_int_equal(vems_obj_pread(o, buf, len, 0), (ssize_t)len);
	for (size_t i = 0; i < off; i++)
		if (buf[i] != 0)
			fail_msg("byte %zu of the hole is %#x", i, buf[i]);
	assert_memory_equal(buf + off, data, 100);
	/* the hole costs nothing: one extent mapped */
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.extents_pmem, 1);
	free(buf);
	vems_obj_close(&o);
}

/* Random unaligned writes against a DRAM shadow, then reopen. */
static void
test_random_vs_shadow(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid;
	struct vems_obj *o = new_obj(tp, &oid);
	const size_t span = 2 * MIB + 12345;
	uint8_t *shadow = calloc(1, span), *buf = malloc(span);
	uint64_t size = 0, rng = 42;
	for (int i = 0; i < 2000; i++) {
		uint64_t off = tu_rand(&rng) % span;
		size_t len = 1 + tu_rand(&rng) % (i % 10 == 0 ? 200000 : 5000);
		if (off + len > span)
			len = span - off;
		tu_fill(buf, len, (uint64_t)i, off);
		assert_int_equal(vems_obj_pwrite(o, buf, len, off, 0),
				 (ssize_t)len);
		memcpy(shadow + off, buf, len);
		if (off + len > size)
			size = off + len;
	}
	for (int pass = 0; pass < 2; pass++) {
		memset(buf, 0xaa, span);
		assert_int_equal(vems_obj_pread(o, buf, span, 0),
				 (ssize_t)size);
		assert_memory_equal(buf, shadow, size);
		/* unaligned partial reads too */
		for (int i = 0; i < 200; i++) {
			uint64_t off = tu_rand(&rng) % size;
			size_t len = 1 + tu_rand(&rng) % 70000;
			ssize_t want =
				(ssize_t)(off + len > size ? size - off : len);
			assert_int_equal(vems_obj_pread(o, buf, len, off),
					 want);
			assert_memory_equal(buf, shadow + off, (size_t)want);
		}
		vems_obj_close(&o);
		assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
		tu_reopen(tp);
		TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	}
	vems_obj_close(&o);
	free(shadow);
	free(buf);
}

static void
test_sparse_huge_offsets(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid;
	struct vems_obj *o = new_obj(tp, &oid);
	const uint64_t t40 = UINT64_C(1) << 40;
	char buf[32];
	assert_int_equal(vems_obj_pwrite(o, "tera", 4, t40 - 2, 0), 4);
	assert_int_equal(vems_obj_pwrite(o, "end", 3, VEMS_OBJ_MAX_SIZE - 3, 0),
			 3);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, VEMS_OBJ_MAX_SIZE);
	assert_int_equal(st.extents_pmem, 3); /* tera spans two extents */
	assert_int_equal(vems_obj_pread(o, buf, 8, t40 - 4), 8);
	assert_memory_equal(buf, "\0\0tera\0\0", 8);
	assert_int_equal(vems_obj_pread(o, buf, 10, VEMS_OBJ_MAX_SIZE - 3), 3);
	assert_memory_equal(buf, "end", 3);
	/* past the maximum */
	assert_int_equal(vems_obj_pwrite(o, "x", 1, VEMS_OBJ_MAX_SIZE, 0),
			 -EINVAL);
	assert_int_equal(vems_obj_pwrite(o, "xy", 2, VEMS_OBJ_MAX_SIZE - 1, 0),
			 -EINVAL);
	assert_int_equal(vems_obj_pread(o, buf, 2, UINT64_MAX - 1), -EINVAL);
	assert_int_equal(vems_obj_truncate(o, VEMS_OBJ_MAX_SIZE + 1), -EINVAL);
	assert_true(strlen(vems_errormsg()) > 0);
	vems_obj_close(&o);
	tu_reopen(tp);
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	assert_int_equal(vems_obj_pread(o, buf, 4, t40 - 2), 4);
	assert_memory_equal(buf, "tera", 4);
	vems_obj_close(&o);
}

static void
test_truncate(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid;
	struct vems_obj *o = new_obj(tp, &oid);
	size_t len = 300000;
	uint8_t *buf = malloc(len), *rd = malloc(len);
	tu_fill(buf, len, 9, 0);
	assert_int_equal(vems_obj_pwrite(o, buf, len, 0, 0), (ssize_t)len);
	struct vems_pool_stats s0, s1;
	TU_OK(vems_pool_stats(tp->pool, &s0));
	/* shrink into the middle of an extent: whole extents past are freed */
	TU_OK(vems_obj_truncate(o, 70000));
	TU_OK(vems_pool_stats(tp->pool, &s1));
	assert_int_equal(s0.extents_pmem - s1.extents_pmem, 3);
	/* grow again: the old bytes past 70000 must read as zeros */
	TU_OK(vems_obj_truncate(o, 200000));
	assert_int_equal(vems_obj_pread(o, rd, len, 0), 200000);
	assert_true(tu_verify(rd, 70000, 9, 0));
	for (size_t i = 70000; i < 200000; i++)
		if (rd[i] != 0)
			fail_msg("byte %zu after regrow is %#x", i, rd[i]);
	/* a write past the end after a shrink: the gap reads as zeros */
	TU_OK(vems_obj_truncate(o, 1000));
	assert_int_equal(vems_obj_pwrite(o, "Z", 1, 5000, 0), 1);
	assert_int_equal(vems_obj_pread(o, rd, len, 0), 5001);
	assert_true(tu_verify(rd, 1000, 9, 0));
	for (size_t i = 1000; i < 5000; i++)
		if (rd[i] != 0)
			fail_msg("gap byte %zu is %#x", i, rd[i]);
	assert_int_equal(rd[5000], 'Z');
	TU_OK(vems_obj_truncate(o, 0));
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, 0);
	assert_int_equal(st.extents_pmem, 0);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	vems_obj_close(&o);
	tu_reopen(tp);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	TU_OK(vems_obj_stat_oid(tp->pool, oid, &st));
	assert_int_equal(st.size, 0);
	free(buf);
	free(rd);
}

static void
test_flags_and_bad_args(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid;
	struct vems_obj *o = new_obj(tp, &oid), *ro;
	char b[8];
	assert_int_equal(vems_obj_pwrite(NULL, b, 1, 0, 0), -EINVAL);
	assert_int_equal(vems_obj_pwrite(o, NULL, 1, 0, 0), -EINVAL);
	assert_int_equal(vems_obj_pread(NULL, b, 1, 0), -EINVAL);
	assert_int_equal(vems_obj_pread(o, NULL, 1, 0), -EINVAL);
	assert_int_equal(vems_obj_pwrite(o, b, 1, 0, 0x80), -EINVAL);
	assert_int_equal(vems_obj_truncate(NULL, 0), -EINVAL);
	assert_int_equal(vems_obj_persist(NULL), -EINVAL);
	assert_int_equal(vems_obj_open(tp->pool, oid, 0x100, &ro), -EINVAL);
	TU_OK(vems_obj_open(tp->pool, oid, VEMS_O_RDONLY, &ro));
	assert_int_equal(vems_obj_pwrite(ro, b, 1, 0, 0), -EBADF);
	assert_int_equal(vems_obj_truncate(ro, 0), -EBADF);
	/* deferred drain, then the barriers */
	assert_int_equal(vems_obj_pwrite(o, "abcd", 4, 0, VEMS_W_NODRAIN), 4);
	TU_OK(vems_obj_persist(o));
	assert_int_equal(vems_obj_pwrite(o, "efgh", 4, 4, VEMS_W_NODRAIN), 4);
	TU_OK(vems_pool_persist(tp->pool));
	assert_int_equal(vems_obj_pread(ro, b, 8, 0), 8);
	assert_memory_equal(b, "abcdefgh", 8);
	vems_obj_close(&ro);
	vems_obj_close(&o);
	/* a handle opened NODRAIN: every write deferred, close persists */
	TU_OK(vems_obj_open(tp->pool, oid, VEMS_O_NODRAIN, &o));
	assert_int_equal(vems_obj_pwrite(o, "IJ", 2, 8, 0), 2);
	TU_OK(vems_obj_close(&o));
	assert_null(o);
	tu_reopen(tp);
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	assert_int_equal(vems_obj_pread(o, b, 8, 4), 6);
	assert_memory_equal(b, "efghIJ", 6);
	vems_obj_close(&o);
}

/* Vectored I/O: the buffers as one range, short only at the end. */
static void
test_vectored(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid;
	struct vems_obj *o = new_obj(tp, &oid);
	/* across an extent boundary, with an empty buffer in the middle */
	static uint8_t a[100], c[70000], d[5], back[71105];
	tu_fill(a, sizeof(a), 9, 1000);
	tu_fill(c, sizeof(c), 9, 1100);
	tu_fill(d, sizeof(d), 9, 71100);
	struct iovec w[] = {
		{a, sizeof(a)}, {NULL, 0}, {c, sizeof(c)}, {d, sizeof(d)}};
	assert_int_equal(vems_obj_pwritev(o, w, 4, 1000, 0), 70105);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, 71105);
	assert_int_equal(vems_obj_pread(o, back, sizeof(back), 0), 71105);
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(back[i], 0); /* the gap below the write */
	assert_true(tu_verify(back + 1000, 70105, 9, 1000));

	/* a read into three buffers that ends at the object's end */
	static uint8_t r1[50], r2[70000], r3[200];
	memset(r3, 0xee, sizeof(r3));
	struct iovec r[] = {
		{r1, sizeof(r1)}, {r2, sizeof(r2)}, {r3, sizeof(r3)}};
	assert_int_equal(vems_obj_preadv(o, r, 3, 1000), 70105);
	assert_true(tu_verify(r1, sizeof(r1), 9, 1000));
	assert_true(tu_verify(r2, sizeof(r2), 9, 1050));
	assert_true(tu_verify(r3, 55, 9, 71050));
	assert_int_equal(r3[55], 0xee); /* nothing past the end */
	assert_int_equal(vems_obj_preadv(o, r, 3, 71105), 0);
	assert_int_equal(vems_obj_preadv(o, r, 0, 0), 0);
	assert_int_equal(vems_obj_preadv(o, NULL, 0, 0), 0);
	assert_int_equal(vems_obj_pwritev(o, NULL, 0, 5000000, 0), 0);
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, 71105);

	/* deferred: durable after the barrier; a handle opened NODRAIN too */
	struct iovec w2[] = {{a, 10}, {a + 10, 20}};
	assert_int_equal(vems_obj_pwritev(o, w2, 2, 1000, VEMS_W_NODRAIN), 30);
	TU_OK(vems_obj_persist(o));
	vems_obj_close(&o);
	tu_reopen(tp);
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	memset(back, 0, sizeof(back));
	assert_int_equal(vems_obj_preadv(o, r, 3, 1000), 70105);
	assert_true(tu_verify(r1, sizeof(r1), 9, 1000));
	assert_true(tu_verify(r2, sizeof(r2), 9, 1050));
	vems_obj_close(&o);
}

/* A bad vector is refused whole: nothing written, a clear message. */
static void
test_vectored_bad_args(void **state)
{
	struct tu_pool *tp = *state;
	struct vems_oid oid;
	struct vems_obj *o = new_obj(tp, &oid), *ro;
	uint8_t a[64], b[64];
	memset(a, 0x11, sizeof(a));
	assert_int_equal(vems_obj_pwrite(o, a, sizeof(a), 0, 0), 64);
	memset(a, 0x22, sizeof(a));
	struct iovec good = {a, sizeof(a)};
	assert_int_equal(vems_obj_pwritev(NULL, &good, 1, 0, 0), -EINVAL);
	assert_int_equal(vems_obj_preadv(NULL, &good, 1, 0), -EINVAL);
	assert_int_equal(vems_obj_pwritev(o, &good, -1, 0, 0), -EINVAL);
	assert_non_null(strstr(vems_errormsg(), "iovcnt -1"));
	assert_int_equal(vems_obj_preadv(o, &good, IOV_MAX + 1, 0), -EINVAL);
	assert_int_equal(vems_obj_pwritev(o, NULL, 1, 0, 0), -EINVAL);
	assert_int_equal(vems_obj_pwritev(o, &good, 1, 0, 0x80), -EINVAL);
	/* the first buffer is good, the second is not: neither is written */
	struct iovec v[] = {{a, sizeof(a)}, {NULL, 8}};
	assert_int_equal(vems_obj_pwritev(o, v, 2, 0, 0), -EINVAL);
	assert_non_null(strstr(vems_errormsg(), "iov[1].iov_base is NULL"));
	assert_int_equal(vems_obj_preadv(o, v, 2, 0), -EINVAL);
	struct iovec huge[] = {{a, (size_t)SSIZE_MAX / 2 + 1},
			       {a, (size_t)SSIZE_MAX / 2 + 1}};
	assert_int_equal(vems_obj_pwritev(o, huge, 2, 0, 0), -EINVAL);
	assert_non_null(strstr(vems_errormsg(), "SSIZE_MAX"));
	struct iovec past[] = {{a, sizeof(a)}, {a, sizeof(a)}};
	assert_int_equal(
		vems_obj_pwritev(o, past, 2, VEMS_OBJ_MAX_SIZE - sizeof(a), 0),
		-EINVAL);
	assert_int_equal(vems_obj_preadv(o, past, 2, VEMS_OBJ_MAX_SIZE + 1),
			 -EINVAL);
	TU_OK(vems_obj_open(tp->pool, oid, VEMS_O_RDONLY, &ro));
	assert_int_equal(vems_obj_pwritev(ro, &good, 1, 0, 0), -EBADF);
	vems_obj_close(&ro);
	/* none of it changed the object */
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, 64);
	assert_int_equal(vems_obj_pread(o, b, sizeof(b), 0), 64);
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(b[i], 0x11);
	vems_obj_close(&o);
}

/*
 * A buffer past the first that cannot be placed whole: the count of what
 * was written (the first buffer, and maybe a part of the second, which
 * vems_obj_pwrite may publish in parts), durable and all that changed;
 * and once nothing can be written, the error.
 */
static void
test_vectored_short(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "iovfull", 16 * MIB, 4 * 64 * 1024, 0);
	struct vems_oid oid = {1, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp.pool, &oid));
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	static uint8_t a[4096], big[64 * MIB];
	tu_fill(a, sizeof(a), 3, 0);
	struct iovec v[] = {{a, sizeof(a)}, {big, sizeof(big)}};
	ssize_t r = vems_obj_pwritev(o, v, 2, 0, 0);
	assert_true(r >= (ssize_t)sizeof(a));
	assert_true(r < (ssize_t)(sizeof(a) + sizeof(big)));
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, r);
	/* nothing more fits: the error itself, the size unchanged */
	ssize_t r2 = 0;
	for (int i = 0; i < 64 && r2 >= 0; i++) {
		r2 = vems_obj_pwritev(o, v + 1, 1, st.size, 0);
		if (r2 >= 0) {
			assert_true(r2 > 0);
			TU_OK(vems_obj_stat(o, &st));
		}
	}
	assert_int_equal(r2, -ENOSPC);
	assert_non_null(strstr(vems_errormsg(), "full"));
	uint64_t size = st.size;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, size);
	vems_obj_close(&o);
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 0);
	tu_reopen(&tp);
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	uint8_t back[4096];
	assert_int_equal(vems_obj_pread(o, back, sizeof(back), 0), 4096);
	assert_true(tu_verify(back, sizeof(back), 3, 0));
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, size);
	vems_obj_close(&o);
	tu_destroy(&tp);
}

/* pmem full: ENOSPC, nothing written before is lost, mapped extents
 * remain writable. The block tier here holds a single extent. */
static void
test_full_pool_enospc(void **state)
{
	(void)state;
	struct tu_pool tp;
	/* a block file of 4 extents: both tiers fill up */
	tu_create(&tp, "full", 16 * MIB, 4 * 64 * 1024, 0);
	struct vems_oid oid = {1, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp.pool, &oid));
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	uint8_t buf[65536];
	uint64_t off = 0;
	ssize_t r;
	for (;;) {
		tu_fill(buf, sizeof(buf), 5, off);
		r = vems_obj_pwrite(o, buf, sizeof(buf), off, 0);
		if (r < 0)
			break;
		off += sizeof(buf);
		assert_true(off < 64 * MIB);
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(strstr(vems_errormsg(), "both tiers are full") != NULL);
	struct vems_pool_stats ps;
	TU_OK(vems_pool_stats(tp.pool, &ps));
	assert_int_equal(ps.block_bytes_free, 0); /* pmem spilled first */
	assert_int_equal(ps.extents_block, 4);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, off); /* the failed write changed nothing */
	/* a write spanning a mapped and an unmapped extent fails whole */
	assert_int_equal(vems_obj_pwrite(o, buf, 100, off - 50, 0), -ENOSPC);
	TU_OK(vems_obj_stat(o, &st));
	assert_int_equal(st.size, off);
	/* rewriting resident data needs no new space */
	tu_fill(buf, 2, 5, off - 2);
	assert_int_equal(vems_obj_pwrite(o, buf, 2, off - 2, 0), 2);
	vems_obj_close(&o);
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 0);
	tu_reopen(&tp);
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	for (uint64_t p = 0; p < off; p += sizeof(buf)) {
		assert_int_equal(vems_obj_pread(o, buf, sizeof(buf), p),
				 (ssize_t)sizeof(buf));
		assert_true(tu_verify(buf, sizeof(buf), 5, p));
	}
	/* freeing space makes room again */
	TU_OK(vems_obj_truncate(o, 0));
	assert_int_equal(vems_obj_pwrite(o, buf, sizeof(buf), 0, 0),
			 (ssize_t)sizeof(buf));
	vems_obj_close(&o);
	tu_destroy(&tp);
}

/* Thousands of random extents with known content survive close+reopen. */
static void
test_reopen_thousands_of_extents(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "many", 512 * MIB, 64 * MIB, 16384);
	enum { NOBJ = 4, EXTS = 8192, ES = 16384, WRITES = 6000 };
	struct vems_oid oids[NOBJ];
	struct vems_obj *o[NOBJ];
	uint8_t *shadow[NOBJ];
	uint64_t size[NOBJ] = {0}, rng = 7;
	for (int i = 0; i < NOBJ; i++) {
		oids[i] = (struct vems_oid){(uint64_t)i, 0};
		TU_OK(vems_obj_create(tp.pool, &oids[i]));
		TU_OK(vems_obj_open(tp.pool, oids[i], 0, &o[i]));
		shadow[i] = calloc(EXTS, ES);
	}
	uint8_t *buf = malloc(2 * ES);
	for (int w = 0; w < WRITES; w++) {
		int i = (int)(tu_rand(&rng) % NOBJ);
		uint64_t ext = tu_rand(&rng) % EXTS;
		uint64_t in = tu_rand(&rng) % ES;
		size_t len = 1 + tu_rand(&rng) % ES;
		uint64_t off = ext * ES + in;
		if (off + len > (uint64_t)EXTS * ES)
			len = (size_t)((uint64_t)EXTS * ES - off);
		tu_fill(buf, len, (uint64_t)w, off);
		assert_int_equal(vems_obj_pwrite(o[i], buf, len, off, 0),
				 (ssize_t)len);
		memcpy(shadow[i] + off, buf, len);
		if (off + len > size[i])
			size[i] = off + len;
	}
	for (int i = 0; i < NOBJ; i++)
		vems_obj_close(&o[i]);
	tu_reopen(&tp);
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 0);
	uint8_t *rd = malloc((size_t)EXTS * ES);
	for (int i = 0; i < NOBJ; i++) {
		TU_OK(vems_obj_open(tp.pool, oids[i], VEMS_O_RDONLY, &o[i]));
		assert_int_equal(vems_obj_pread(o[i], rd, (size_t)EXTS * ES, 0),
				 (ssize_t)size[i]);
		assert_memory_equal(rd, shadow[i], size[i]);
		vems_obj_close(&o[i]);
		free(shadow[i]);
	}
	free(rd);
	free(buf);
	tu_destroy(&tp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_and_eof, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_holes_read_zero, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_random_vs_shadow, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sparse_huge_offsets, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_truncate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_and_bad_args, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vectored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vectored_bad_args, setup,
						teardown),
		cmocka_unit_test(test_vectored_short),
		cmocka_unit_test(test_full_pool_enospc),
		cmocka_unit_test(test_reopen_thousands_of_extents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
