/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_powerfail.c -- simulated power failure at every fence of a workload
 *
 * A SIGKILLed process loses nothing that reached its CPU caches, so it
 * cannot show a missing flush or a store ordered after the wrong fence.
 * This test can: it defines libpmem's flush/fence calls itself (the
 * dynamic linker binds libvems' and libpmemobj's calls to these, which
 * forward to the real libpmem), and keeps a "media" image of the pool that
 * receives a flushed range only when a later pmem_drain() orders it; at the
 * crash, any subset of the flushed-but-unfenced ranges also lands. That is
 * what design rule 5 exists for.
 *
 * For each fence K of a fixed workload: run the workload on a fresh copy
 * of the pool, take the media image as it was just before fence K, write
 * it back as the pool file, reopen, and check that vems_pool_check() is
 * clean and that every write that had returned before fence K is intact
 * (the one in flight: each byte old or new).
 */

#include <dlfcn.h>
#include <fcntl.h>
#include <libpmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "vems_internal.h"

#define MIB (UINT64_C(1) << 20)

/* --- the interposed libpmem calls ----------------------------------- */

struct range {
	size_t off, len;
};

static struct {
	bool on;
	uint8_t *base; /* the live mapping of the pool file */
	size_t len;
	uint8_t *media; /* what would survive a power failure */
	struct range *pend;
	size_t npend, cap;
	long drains;   /* fences seen since tracking began */
	long crash_at; /* take the image before this fence (0: never) */
	uint8_t *image;
	bool taken;
} T;

static void
note(const void *addr, size_t len)
{
	const uint8_t *a = addr;
	if (!T.on || a + len <= T.base || a >= T.base + T.len)
		return;
	if (a < T.base) {
		len -= (size_t)(T.base - a);
		a = T.base;
	}
	if (a + len > T.base + T.len)
		len = (size_t)(T.base + T.len - a);
	if (T.npend == T.cap) {
		T.cap = T.cap ? 2 * T.cap : 1024;
		T.pend = realloc(T.pend, T.cap * sizeof(*T.pend));
	}
	T.pend[T.npend++] = (struct range){(size_t)(a - T.base), len};
}

static void
fence(void)
{
	if (!T.on)
		return;
	T.drains++;
	if (T.drains == T.crash_at && !T.taken) {
		/*
		 * Power fails before this fence: the media image, plus any
		 * subset of the lines flushed since the last fence (the
		 * hardware may write them back in any order).
		 */
		uint64_t rng = (uint64_t)T.crash_at * 2654435761u + 1;
		memcpy(T.image, T.media, T.len);
		for (size_t i = 0; i < T.npend; i++)
			if (tu_rand(&rng) & 1)
				memcpy(T.image + T.pend[i].off,
				       T.base + T.pend[i].off, T.pend[i].len);
		T.taken = true;
	}
	/* what was flushed before the fence is on media after it */
	for (size_t i = 0; i < T.npend; i++)
		memcpy(T.media + T.pend[i].off, T.base + T.pend[i].off,
		       T.pend[i].len);
	T.npend = 0;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))
/*
 * The build uses hidden visibility: without this the definitions below
 * are not exported, and libpmemobj's own flushes and fences (every
 * transaction's) bypass the model; only the static libvems binds to them.
 */
#define EXPORT __attribute__((visibility("default")))

EXPORT void
pmem_flush(const void *addr, size_t len)
{
	static __typeof__(&pmem_flush) real;
	if (!real)
		real = REAL(pmem_flush);
	real(addr, len);
	note(addr, len);
}

EXPORT void
pmem_drain(void)
{
	static __typeof__(&pmem_drain) real;
	if (!real)
		real = REAL(pmem_drain);
	real();
	fence();
}

EXPORT void
pmem_persist(const void *addr, size_t len)
{
	pmem_flush(addr, len);
	pmem_drain();
}

EXPORT int
pmem_msync(const void *addr, size_t len)
{
	static __typeof__(&pmem_msync) real;
	if (!real)
		real = REAL(pmem_msync);
	int r = real(addr, len);
	note(addr, len);
	fence();
	return r;
}

EXPORT void *
pmem_memcpy(void *dst, const void *src, size_t len, unsigned flags)
{
	static __typeof__(&pmem_memcpy) real;
	if (!real)
		real = REAL(pmem_memcpy);
	void *r = real(dst, src, len, flags | PMEM_F_MEM_NODRAIN);
	if (!(flags & PMEM_F_MEM_NOFLUSH))
		note(dst, len);
	if (!(flags & PMEM_F_MEM_NODRAIN))
		fence();
	return r;
}

EXPORT void *
pmem_memset(void *dst, int c, size_t len, unsigned flags)
{
	static __typeof__(&pmem_memset) real;
	if (!real)
		real = REAL(pmem_memset);
	void *r = real(dst, c, len, flags | PMEM_F_MEM_NODRAIN);
	if (!(flags & PMEM_F_MEM_NOFLUSH))
		note(dst, len);
	if (!(flags & PMEM_F_MEM_NODRAIN))
		fence();
	return r;
}

EXPORT void *
pmem_memcpy_persist(void *dst, const void *src, size_t len)
{
	return pmem_memcpy(dst, src, len, 0);
}

EXPORT void *
pmem_memset_persist(void *dst, int c, size_t len)
{
	return pmem_memset(dst, c, len, 0);
}

EXPORT void *
pmem_memmove_persist(void *dst, const void *src, size_t len)
{
	static __typeof__(&pmem_memmove) real;
	if (!real)
		real = REAL(pmem_memmove);
	void *r = real(dst, src, len, PMEM_F_MEM_NODRAIN);
	note(dst, len);
	fence();
	return r;
}

/* --- the workload and its model ------------------------------------- */

#define NOPS 60
#define SPAN (600 * 1024)

struct op {
	int obj, trunc;
	uint64_t off, len, seed;
};

static void
make_ops(struct op *ops)
{
	uint64_t rng = 12345;
	for (int i = 0; i < NOPS; i++) {
		ops[i].obj = (int)(tu_rand(&rng) % 2);
		ops[i].trunc = tu_rand(&rng) % 12 == 0;
		ops[i].off = tu_rand(&rng) % SPAN;
		ops[i].len = 1 + tu_rand(&rng) % (i % 5 ? 9000 : 150000);
		if (ops[i].off + ops[i].len > SPAN)
			ops[i].len = SPAN - ops[i].off;
		ops[i].seed = (uint64_t)i + 1;
	}
}

static void
apply(uint8_t *m, uint64_t *size, const struct op *op)
{
	if (op->trunc) {
		if (op->off < *size)
			memset(m + op->off, 0, *size - op->off);
		*size = op->off;
		return;
	}
	if (op->off > *size)
		memset(m + *size, 0, op->off - *size);
	tu_fill(m + op->off, op->len, op->seed, op->off);
	if (op->off + op->len > *size)
		*size = op->off + op->len;
}

static void
put_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	close(fd);
}

static void *
get_file(const char *path, size_t *len)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	*len = (size_t)st.st_size;
	uint8_t *b = malloc(*len);
	int fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, b, *len, 0), (ssize_t)*len);
	close(fd);
	return b;
}

/* The closed pool's bytes, and the model's buffers sized for them. */
static uint8_t *
track_init(const char *pmem, size_t *flen)
{
	uint8_t *pristine = get_file(pmem, flen);
	T.len = *flen;
	T.media = malloc(*flen);
	T.image = malloc(*flen);
	return pristine;
}

/* Tracking on, from the pool's current bytes as the media image. */
static void
track_start(struct vems_pool *pool)
{
	T.base = (uint8_t *)pool->pop;
	memcpy(T.media, T.base, T.len);
	T.npend = 0;
	T.drains = 0;
	T.taken = false;
	T.on = true;
}

/*
 * Runs the workload with tracking on; returns the number of fences, and in
 * done_before[i] the fence count when op i returned.
 */
static long
run_workload(struct tu_pool *tp, const struct vems_oid *oids,
	     const struct op *ops, long *done_at)
{
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	struct vems_obj *o[2];
	for (int i = 0; i < 2; i++)
		TU_OK(vems_obj_open(tp->pool, oids[i], 0, &o[i]));
	track_start(tp->pool);
	static uint8_t buf[200000];
	for (int i = 0; i < NOPS; i++) {
		const struct op *op = &ops[i];
		if (op->trunc) {
			TU_OK(vems_obj_truncate(o[op->obj], op->off));
		} else {
			tu_fill(buf, op->len, op->seed, op->off);
			assert_int_equal(vems_obj_pwrite(o[op->obj], buf,
							 op->len, op->off, 0),
					 (ssize_t)op->len);
		}
		done_at[i] = T.drains;
	}
	T.on = false;
	for (int i = 0; i < 2; i++)
		vems_obj_close(&o[i]);
	TU_OK(vems_pool_close(&tp->pool));
	return T.drains;
}

static void
test_crash_at_every_fence(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "pfail", 16 * MIB, 16 * MIB, 16384);
	struct vems_oid oids[2] = {{1, 0}, {1, 0}};
	for (int i = 0; i < 2; i++)
		TU_OK(vems_obj_create(tp.pool, &oids[i]));
	TU_OK(vems_pool_close(&tp.pool));
	size_t flen;
	uint8_t *pristine = track_init(tp.pmem, &flen);

	struct op ops[NOPS];
	long done_at[NOPS];
	make_ops(ops);
	T.crash_at = 0;
	long total = run_workload(&tp, oids, ops, done_at);
	assert_true(total >= NOPS); /* every write fences at least once */

	uint8_t *model[2], *after = malloc(SPAN), *rd = malloc(SPAN + 1);
	model[0] = malloc(SPAN);
	model[1] = malloc(SPAN);
	int checked = 0, short_runs = 0;
	for (long k = 1; k <= total; k++) {
		put_file(tp.pmem, pristine, flen);
		T.crash_at = k;
		run_workload(&tp, oids, ops, done_at);
		if (!T.taken) {
			/*
			 * This run fenced fewer times than the first: mtimes
			 * come from a coarse clock and are stored only when
			 * they moved, so the count varies by a few.
			 */
			short_runs++;
			continue;
		}
		put_file(tp.pmem, T.image, flen);

		TU_OK(vems_pool_open(&tp.pool, tp.pmem, NULL));
		if (vems_pool_check(tp.pool, NULL, NULL) != 0)
			fail_msg("check fails after a crash at fence %ld", k);
		uint64_t size[2] = {0, 0};
		memset(model[0], 0, SPAN);
		memset(model[1], 0, SPAN);
		int inflight = -1;
		for (int i = 0; i < NOPS; i++) {
			if (done_at[i] < k) {
				apply(model[ops[i].obj], &size[ops[i].obj],
				      &ops[i]);
			} else {
				inflight = i;
				break;
			}
		}
		for (int j = 0; j < 2; j++) {
			struct vems_obj *o;
			struct vems_obj_stat st;
			TU_OK(vems_obj_open(tp.pool, oids[j], 0, &o));
			TU_OK(vems_obj_stat(o, &st));
			ssize_t got = vems_obj_pread(o, rd, SPAN + 1, 0);
			vems_obj_close(&o);
			assert_int_equal(got, (ssize_t)st.size);
			memcpy(after, model[j], SPAN);
			uint64_t asize = size[j];
			if (inflight >= 0 && ops[inflight].obj == j)
				apply(after, &asize, &ops[inflight]);
			uint64_t lo = size[j] < asize ? size[j] : asize;
			uint64_t hi = size[j] < asize ? asize : size[j];
			if (st.size < lo || st.size > hi)
				fail_msg("fence %ld: object %d size %llu not "
					 "in [%llu, %llu]",
					 k, j, (unsigned long long)st.size,
					 (unsigned long long)lo,
					 (unsigned long long)hi);
			for (uint64_t b = 0; b < st.size; b++) {
				uint8_t old = b < size[j] ? model[j][b] : 0;
				uint8_t nw = b < asize ? after[b] : 0;
				if (rd[b] != old && rd[b] != nw)
					fail_msg("fence %ld: object %d byte "
						 "%llu is %#x, neither %#x "
						 "nor %#x",
						 k, j, (unsigned long long)b,
						 rd[b], old, nw);
			}
		}
		TU_OK(vems_pool_close(&tp.pool));
		checked++;
	}
	tu_figure("powerfail", "crash_points", (unsigned long long)checked);
	print_message("%d crash points checked (%d runs fenced fewer times)\n",
		      checked, short_runs);
	assert_true(checked >= total - total / 8);
	free(pristine);
	free(T.media);
	free(T.image);
	free(model[0]);
	free(model[1]);
	free(after);
	free(rd);
	tu_destroy(&tp);
}

/* --- a data chunk given to metadata (chunk.c) ------------------------ */

#define RNAMES 2000 /* binds in the tracked part, at most */
#define RLEN 4000   /* bytes of a name (a chunk holds hundreds) */

static void
rname(char *buf, int i)
{
	memset(buf, 'a' + i % 26, RLEN);
	snprintf(buf, 16, "r/%05d/", i);
	buf[strlen(buf)] = '-';
	buf[RLEN] = '\0';
}

static struct vems_pool *
open_nowm(struct tu_pool *tp)
{
	struct vems_config *cfg;
	struct vems_pool *p;
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_low_watermark(cfg, 0)); /* no spiller thread */
	TU_OK(vems_pool_open(&p, tp->pmem, cfg));
	vems_config_delete(&cfg);
	return p;
}

/*
 * Binds names from `first` on until `reclaims` chunks went to metadata
 * and 4 more binds returned (the run is deterministic: no spiller); per bind, the fence count when it returned.
 * Returns the binds made; *rec_op: the first bind that took a chunk.
 */
static int
run_binds(struct tu_pool *tp, struct vems_oid target, int first, int reclaims,
	  long *done_at, int *rec_op)
{
	tp->pool = open_nowm(tp);
	track_start(tp->pool);
	static char nm[RLEN + 1];
	int n = 0, seen = 0, tail = -1;
	*rec_op = -1;
	for (; n < RNAMES && tail != 0; n++) {
		uint32_t before = tp->pool->frames_present;
		rname(nm, first + n);
		TU_OK(vems_name_bind(tp->pool, nm, target));
		done_at[n] = T.drains;
		if (tp->pool->frames_present < before) {
			if (*rec_op < 0)
				*rec_op = n;
			if (++seen == reclaims)
				tail = 5;
		}
		if (tail > 0)
			tail--;
	}
	T.on = false;
	TU_OK(vems_pool_close(&tp->pool));
	return n;
}

/*
 * Power fails at every fence while names take data chunks: each reclaim
 * spills the chunk's dirty extents, drops the clean ones and frees the
 * chunk with its table slot in one transaction. After the crash: the
 * pool opens and checks clean, the data reads back whole, and every name
 * bound before the fence is there (the one in flight may be).
 */
static void
test_reclaim_at_every_fence(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_paths(&tp, "pfreclaim");
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, 16 * MIB));
	TU_OK(vems_config_set_block_path(cfg, tp.block));
	TU_OK(vems_config_set_block_size(cfg, 64 * MIB));
	TU_OK(vems_config_set_extent_size(cfg, 4096));
	TU_OK(vems_config_set_low_watermark(cfg, 0));
	TU_OK(vems_pool_create(&tp.pool, tp.pmem, cfg));
	vems_config_delete(&cfg);
	/* pmem full of dirty data, and names until the heap is full */
	struct vems_oid data = {3, 0}, target = {4, 0};
	TU_OK(vems_obj_create(tp.pool, &data));
	TU_OK(vems_obj_create(tp.pool, &target));
	uint64_t size = (uint64_t)tp.pool->frames_present * 4096;
	uint8_t *buf = malloc(size + 1);
	tu_fill(buf, size, 21, 0);
	struct vems_obj *o;
	TU_OK(vems_obj_open(tp.pool, data, 0, &o));
	assert_int_equal(vems_obj_pwrite(o, buf, size, 0, 0), (ssize_t)size);
	vems_obj_close(&o);
	char nm[RLEN + 1];
	int pre = 0;
	for (uint32_t fp = tp.pool->frames_present;
	     tp.pool->frames_present == fp; pre++) {
		rname(nm, pre);
		TU_OK(vems_name_bind(tp.pool, nm, target));
	}
	TU_OK(vems_pool_close(&tp.pool));
	size_t flen;
	uint8_t *pristine = track_init(tp.pmem, &flen);

	long done_at[RNAMES];
	int rec_op;
	T.crash_at = 0;
	int nb = run_binds(&tp, target, pre, 1, done_at, &rec_op);
	assert_true(rec_op >= 0);
	/*
	 * The fences of the bind that took a chunk and of the one after it:
	 * exhaustive where the chunk is chosen and freed (its first and last
	 * 40), every 4th in between (the spills, which every other crash
	 * suite covers too).
	 */
	long k0 = rec_op > 0 ? done_at[rec_op - 1] + 1 : 1;
	long k1 = done_at[rec_op], total = done_at[rec_op + 1];
	int checked = 0, short_runs = 0;
	for (long k = k0; k <= total; k++) {
		if (k > k0 + 40 && k < k1 - 40 && (k - k0) % 4)
			continue;
		put_file(tp.pmem, pristine, flen);
		T.crash_at = k;
		long at[RNAMES];
		int n = run_binds(&tp, target, pre, 1, at, &rec_op);
		if (!T.taken) {
			short_runs++;
			continue;
		}
		put_file(tp.pmem, T.image, flen);
		tp.pool = open_nowm(&tp);
		if (vems_pool_check(tp.pool, NULL, NULL) != 0)
			fail_msg("check fails after a crash at fence %ld", k);
		TU_OK(vems_obj_open(tp.pool, data, VEMS_O_RDONLY, &o));
		assert_int_equal(vems_obj_pread(o, buf, size + 1, 0),
				 (ssize_t)size);
		vems_obj_close(&o);
		if (!tu_verify(buf, size, 21, 0))
			fail_msg("fence %ld: the data does not read back", k);
		struct vems_oid got;
		for (int i = 0; i < pre + n; i++) {
			rname(nm, i);
			int r = vems_name_lookup(tp.pool, nm, &got);
			bool before = i < pre || at[i - pre] < k;
			bool inflight =
				!before && (i == pre || at[i - pre - 1] < k);
			if (before && r != 0)
				fail_msg("fence %ld: name %d (bound before "
					 "the crash) is gone: %s",
					 k, i, vems_errormsg());
			if (!before && !inflight && r == 0)
				fail_msg("fence %ld: name %d bound after the "
					 "crash is there",
					 k, i);
		}
		/* and the pool goes on: names still take chunks */
		rname(nm, 99999);
		TU_OK(vems_name_bind(tp.pool, nm, target));
		TU_OK(vems_pool_check(tp.pool, NULL, NULL));
		TU_OK(vems_pool_close(&tp.pool));
		checked++;
	}
	tu_figure("powerfail", "crash_points", (unsigned long long)checked);
	print_message("%d names before, %d tracked; %d crash points checked "
		      "(fences %ld-%ld, %d runs fenced fewer times)\n",
		      pre, nb, checked, k0, total, short_runs);
	assert_true(short_runs == 0 && checked > 0);
	free(pristine);
	free(T.media);
	free(T.image);
	free(buf);
	tu_destroy(&tp);
}

/* --- create and bind in one step -------------------------------------- */

#define CNOPS 6

static void
cname(char *buf, size_t len, int i)
{
	snprintf(buf, len, "made/%d", i);
}

/* Creates CNOPS named objects; per call, the fence count when it returned. */
static long
run_creates(struct tu_pool *tp, long *done_at)
{
	tp->pool = open_nowm(tp);
	track_start(tp->pool);
	for (int i = 0; i < CNOPS; i++) {
		char nm[32];
		cname(nm, sizeof(nm), i);
		struct vems_oid o = {5, 100 + (uint64_t)i};
		TU_OK(vems_obj_create_named(tp->pool, nm, &o));
		done_at[i] = T.drains;
	}
	T.on = false;
	TU_OK(vems_pool_close(&tp->pool));
	return T.drains;
}

/*
 * Power fails at every fence of vems_obj_create_named calls: after the
 * crash each object and its name are both there or both absent (an
 * object without its name would be a leak a file system layer cannot
 * find), all of those that returned before the fence are there, and none
 * that started after it.
 */
static void
test_create_named_at_every_fence(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "pfnamed", 16 * MIB, 16 * MIB, 0);
	TU_OK(vems_pool_close(&tp.pool));
	size_t flen;
	uint8_t *pristine = track_init(tp.pmem, &flen);
	long done_at[CNOPS];
	T.crash_at = 0;
	long total = run_creates(&tp, done_at);
	assert_true(total >= CNOPS);
	int checked = 0, short_runs = 0, halves = 0;
	for (long k = 1; k <= total; k++) {
		put_file(tp.pmem, pristine, flen);
		T.crash_at = k;
		long at[CNOPS];
		run_creates(&tp, at);
		if (!T.taken) {
			short_runs++;
			continue;
		}
		put_file(tp.pmem, T.image, flen);
		tp.pool = open_nowm(&tp);
		if (vems_pool_check(tp.pool, NULL, NULL) != 0)
			fail_msg("check fails after a crash at fence %ld", k);
		for (int i = 0; i < CNOPS; i++) {
			char nm[32];
			cname(nm, sizeof(nm), i);
			struct vems_oid want = {5, 100 + (uint64_t)i}, got;
			struct vems_obj_stat st;
			bool named = vems_name_lookup(tp.pool, nm, &got) == 0;
			bool exists =
				vems_obj_stat_oid(tp.pool, want, &st) == 0;
			bool before = at[i] < k;
			bool started = i == 0 || at[i - 1] < k;
			if (named != exists) {
				halves++;
				fail_msg("fence %ld: object %d %s without its "
					 "name",
					 k, i, exists ? "exists" : "is gone");
			}
			if (named && (got.partition != 5 || got.id != want.id))
				fail_msg("fence %ld: name %d bound elsewhere",
					 k, i);
			if (before && !exists)
				fail_msg("fence %ld: object %d, created before "
					 "the crash, is gone",
					 k, i);
			if (!started && exists)
				fail_msg("fence %ld: object %d, created after "
					 "the crash, is there",
					 k, i);
		}
		TU_OK(vems_pool_close(&tp.pool));
		checked++;
	}
	tu_figure("powerfail", "crash_points", (unsigned long long)checked);
	print_message("create_named: %d crash points checked (%d runs fenced "
		      "fewer times)\n",
		      checked, short_runs);
	assert_int_equal(halves, 0);
	assert_true(checked >= total - total / 8);
	free(pristine);
	free(T.media);
	free(T.image);
	tu_destroy(&tp);
}

/* --- removal of an open object -------------------------------------- */

#define RV_LEN (300 * 1024)
static const struct vems_oid rv_victim = {6, 1}, rv_keeper = {6, 2};

/* Opens the victim, removes it, writes through the handle, closes it: the
 * fence counts when remove and close returned. */
static long
run_remove_open(struct tu_pool *tp, long *removed_at, long *closed_at)
{
	tp->pool = open_nowm(tp);
	struct vems_obj *h;
	TU_OK(vems_obj_open(tp->pool, rv_victim, 0, &h));
	track_start(tp->pool);
	TU_OK(vems_obj_remove(tp->pool, rv_victim));
	*removed_at = T.drains;
	static uint8_t more[65536];
	tu_fill(more, sizeof(more), 61, RV_LEN);
	assert_int_equal(vems_obj_pwrite(h, more, sizeof(more), RV_LEN, 0),
			 (ssize_t)sizeof(more));
	TU_OK(vems_obj_close(&h));
	*closed_at = T.drains;
	T.on = false;
	TU_OK(vems_pool_close(&tp->pool));
	return T.drains;
}

/*
 * Power fails at every fence of a removal of an open object and of the
 * last close that reclaims it: after the crash the object is whole (the
 * removal had not committed) or gone with all its space reclaimed, never
 * half; once vems_obj_remove returned it is gone; the other object is
 * untouched.
 */
static void
test_remove_open_at_every_fence(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "pfrmopen", 16 * MIB, 16 * MIB, 0);
	static uint8_t data[RV_LEN], got[RV_LEN];
	tu_fill(data, sizeof(data), 60, 0);
	struct vems_oid v = rv_victim, k2 = rv_keeper;
	TU_OK(vems_obj_create_named(tp.pool, "victim", &v));
	TU_OK(vems_obj_create(tp.pool, &k2));
	struct vems_obj *h;
	TU_OK(vems_obj_open(tp.pool, v, 0, &h));
	assert_int_equal(vems_obj_pwrite(h, data, sizeof(data), 0, 0),
			 (ssize_t)sizeof(data));
	TU_OK(vems_obj_close(&h));
	TU_OK(vems_obj_open(tp.pool, k2, 0, &h));
	assert_int_equal(vems_obj_pwrite(h, data, 100000, 0, 0), 100000);
	TU_OK(vems_obj_close(&h));
	struct vems_pool_stats s0;
	TU_OK(vems_pool_stats(tp.pool, &s0));
	TU_OK(vems_pool_close(&tp.pool));
	size_t flen;
	uint8_t *pristine = track_init(tp.pmem, &flen);
	long removed_at, closed_at;
	T.crash_at = 0;
	long total = run_remove_open(&tp, &removed_at, &closed_at);
	assert_true(removed_at > 0 && closed_at > removed_at);
	int checked = 0, short_runs = 0, whole = 0, gone = 0;
	for (long k = 1; k <= total; k++) {
		put_file(tp.pmem, pristine, flen);
		T.crash_at = k;
		long ra, ca;
		run_remove_open(&tp, &ra, &ca);
		if (!T.taken) {
			short_runs++;
			continue;
		}
		put_file(tp.pmem, T.image, flen);
		tp.pool = open_nowm(&tp);
		if (vems_pool_check(tp.pool, NULL, NULL) != 0)
			fail_msg("check fails after a crash at fence %ld", k);
		struct vems_oid got_oid;
		bool named = vems_name_lookup(tp.pool, "victim", &got_oid) == 0;
		struct vems_pool_stats s;
		TU_OK(vems_pool_stats(tp.pool, &s));
		if (vems_obj_open(tp.pool, rv_victim, VEMS_O_RDONLY, &h) == 0) {
			if (!named || k > removed_at)
				fail_msg("fence %ld: the object is there "
					 "(%s), its removal returned at "
					 "fence %ld",
					 k, named ? "named" : "unnamed",
					 removed_at);
			assert_int_equal(vems_obj_pread(h, got, sizeof(got), 0),
					 (ssize_t)sizeof(got));
			if (memcmp(got, data, sizeof(got)) != 0)
				fail_msg("fence %ld: the object's data "
					 "changed",
					 k);
			TU_OK(vems_obj_close(&h));
			assert_int_equal(s.objects, s0.objects);
			whole++;
		} else {
			if (named)
				fail_msg("fence %ld: name without object", k);
			/* all its space is back: only the keeper's remains */
			assert_int_equal(s.objects, s0.objects - 1);
			assert_int_equal(s.extents_pmem + s.extents_both +
						 s.extents_block,
					 2);
			gone++;
		}
		TU_OK(vems_obj_open(tp.pool, rv_keeper, VEMS_O_RDONLY, &h));
		assert_int_equal(vems_obj_pread(h, got, 100000, 0), 100000);
		if (memcmp(got, data, 100000) != 0)
			fail_msg("fence %ld: the other object changed", k);
		TU_OK(vems_obj_close(&h));
		TU_OK(vems_pool_close(&tp.pool));
		checked++;
	}
	tu_figure("powerfail", "crash_points", (unsigned long long)checked);
	print_message("remove_open: %d crash points checked, %d whole, %d "
		      "gone (remove returned at fence %ld, close at %ld; %d "
		      "runs fenced fewer times)\n",
		      checked, whole, gone, removed_at, closed_at, short_runs);
	assert_true(whole > 0 && gone > 0);
	assert_true(checked >= total - total / 8);
	free(pristine);
	free(T.media);
	free(T.image);
	tu_destroy(&tp);
}

/* --- removal of a small, closed object -------------------------------- */

#define RW_LEN 3000
static const struct vems_oid rw_victim = {7, 1}, rw_keeper = {7, 2};

static long
run_remove_small(struct tu_pool *tp, long *removed_at)
{
	tp->pool = open_nowm(tp);
	track_start(tp->pool);
	TU_OK(vems_obj_remove(tp->pool, rw_victim));
	*removed_at = T.drains;
	T.on = false;
	TU_OK(vems_pool_close(&tp->pool));
	return T.drains;
}

/*
 * A small object (its bytes inline) that no handle has open is removed in
 * one transaction with its name: power fails at every fence of it, and the
 * object is whole and named, or gone with its name and its pmem, never a
 * name without an object or a record without a name.
 */
static void
test_remove_small_at_every_fence(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "pfrmsmall", 16 * MIB, 16 * MIB, 0);
	static uint8_t data[RW_LEN], got[RW_LEN];
	tu_fill(data, sizeof(data), 70, 0);
	struct vems_oid v = rw_victim, k2 = rw_keeper;
	TU_OK(vems_obj_create_named(tp.pool, "small", &v));
	TU_OK(vems_obj_create_named(tp.pool, "keeper", &k2));
	struct vems_obj *h;
	TU_OK(vems_obj_open(tp.pool, v, 0, &h));
	assert_int_equal(vems_obj_pwrite(h, data, sizeof(data), 0, 0),
			 (ssize_t)sizeof(data));
	TU_OK(vems_obj_close(&h));
	TU_OK(vems_obj_open(tp.pool, k2, 0, &h));
	assert_int_equal(vems_obj_pwrite(h, data, 100, 0, 0), 100);
	TU_OK(vems_obj_close(&h));
	struct vems_pool_stats s0;
	TU_OK(vems_pool_stats(tp.pool, &s0));
	assert_int_equal(s0.inline_objects, 2);
	TU_OK(vems_pool_close(&tp.pool));
	size_t flen;
	uint8_t *pristine = track_init(tp.pmem, &flen);
	long removed_at;
	T.crash_at = 0;
	long total = run_remove_small(&tp, &removed_at);
	assert_true(removed_at > 0);
	int checked = 0, short_runs = 0, whole = 0, gone = 0;
	for (long k = 1; k <= total; k++) {
		put_file(tp.pmem, pristine, flen);
		T.crash_at = k;
		long ra;
		run_remove_small(&tp, &ra);
		if (!T.taken) {
			short_runs++;
			continue;
		}
		put_file(tp.pmem, T.image, flen);
		tp.pool = open_nowm(&tp);
		if (vems_pool_check(tp.pool, NULL, NULL) != 0)
			fail_msg("check fails after a crash at fence %ld", k);
		struct vems_oid got_oid;
		bool named = vems_name_lookup(tp.pool, "small", &got_oid) == 0;
		struct vems_pool_stats s;
		TU_OK(vems_pool_stats(tp.pool, &s));
		if (vems_obj_open(tp.pool, rw_victim, VEMS_O_RDONLY, &h) == 0) {
			if (!named || k > removed_at)
				fail_msg("fence %ld: the object is there "
					 "(%s), its removal returned at "
					 "fence %ld",
					 k, named ? "named" : "unnamed",
					 removed_at);
			assert_int_equal(vems_obj_pread(h, got, sizeof(got), 0),
					 (ssize_t)sizeof(got));
			if (memcmp(got, data, sizeof(got)) != 0)
				fail_msg("fence %ld: the object's data "
					 "changed",
					 k);
			TU_OK(vems_obj_close(&h));
			assert_int_equal(s.objects, s0.objects);
			assert_int_equal(s.names, s0.names);
			whole++;
		} else {
			if (named)
				fail_msg("fence %ld: name without object", k);
			assert_int_equal(s.objects, s0.objects - 1);
			assert_int_equal(s.names, s0.names - 1);
			assert_int_equal(s.inline_objects, 1);
			assert_true(s.pmem_bytes_used < s0.pmem_bytes_used);
			gone++;
		}
		TU_OK(vems_obj_open(tp.pool, rw_keeper, VEMS_O_RDONLY, &h));
		assert_int_equal(vems_obj_pread(h, got, 100, 0), 100);
		if (memcmp(got, data, 100) != 0)
			fail_msg("fence %ld: the other object changed", k);
		TU_OK(vems_obj_close(&h));
		TU_OK(vems_pool_close(&tp.pool));
		checked++;
	}
	tu_figure("powerfail", "crash_points", (unsigned long long)checked);
	print_message("remove_small: %d crash points checked, %d whole, %d "
		      "gone (remove returned at fence %ld; %d runs fenced "
		      "fewer times)\n",
		      checked, whole, gone, removed_at, short_runs);
	assert_true(whole > 0 && gone > 0);
	assert_true(checked >= total - total / 8);
	free(pristine);
	free(T.media);
	free(T.image);
	tu_destroy(&tp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_at_every_fence),
		cmocka_unit_test(test_reclaim_at_every_fence),
		cmocka_unit_test(test_create_named_at_every_fence),
		cmocka_unit_test(test_remove_open_at_every_fence),
		cmocka_unit_test(test_remove_small_at_every_fence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
