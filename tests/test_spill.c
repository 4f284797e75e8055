/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_spill.c -- the capacity tier: data sets many times larger than pmem,
 * synchronous and background spills, promotions, clean drops, overwrites of
 * spilled extents, and writes racing a spill in flight
 *
 * Worker threads never call CMocka's assertions (they longjmp into the main
 * thread's context): they record the first failure as a sentence, and the
 * main thread asserts on it after the join.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "backend.h"
#include "vems_internal.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)

/* --- helpers ----------------------------------------------------------- */

static void
report(const char *msg, void *arg)
{
	(void)arg;
	print_error("pool check: %s\n", msg);
}

static void
check_pool(struct vems_pool *pool)
{
	assert_int_equal(vems_pool_check(pool, report, NULL), 0);
}

/* A pool with an explicit low watermark (tu_create takes none). */
static void
create_wm(struct tu_pool *tp, const char *tag, uint64_t pmem_size,
	  uint64_t block_size, uint64_t extent_size, unsigned wm)
{
	struct vems_config *cfg;
	tu_paths(tp, tag);
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, pmem_size));
	TU_OK(vems_config_set_block_path(cfg, tp->block));
	TU_OK(vems_config_set_block_size(cfg, block_size));
	TU_OK(vems_config_set_extent_size(cfg, extent_size));
	TU_OK(vems_config_set_low_watermark(cfg, wm));
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
}

static void
reopen_wm(struct tu_pool *tp, unsigned wm)
{
	struct vems_config *cfg;
	TU_OK(vems_pool_close(&tp->pool));
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_low_watermark(cfg, wm));
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
}

static struct vems_pool_stats
stats(struct vems_pool *pool)
{
	struct vems_pool_stats s;
	TU_OK(vems_pool_stats(pool, &s));
	return s;
}

static uint64_t
pmem_extents(struct vems_pool *pool)
{
	struct vems_pool_info info;
	TU_OK(vems_pool_info(pool, &info));
	return info.pmem_extents;
}

/* Offset of the first byte where a and b differ, or -1. */
static long long
first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	if (memcmp(a, b, n) == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (long long)i;
	return -1;
}

/* Reads the whole object at once and compares it with shadow[0, size):
 * a check, not a use, so what is in pmem stays as it is. */
static void
verify_shadow(struct vems_pool *pool, struct vems_oid oid,
	      const uint8_t *shadow, uint64_t size)
{
	struct vems_obj *o;
	TU_OK(vems_obj_open(pool, oid, VEMS_O_RDONLY, &o));
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(o, &st));
	size_t len = (size_t)size + 4096; /* asks past the end on purpose */
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	memset(buf, 0xa5, len);
	vems__read_no_promote = true;
	ssize_t got = vems_obj_pread(o, buf, len, 0);
	vems__read_no_promote = false;
	long long d = got == (ssize_t)size
		? first_diff(buf, shadow, (size_t)size)
		: -2;
	int at = d >= 0 ? buf[d] : 0;
	vems_obj_close(&o);
	free(buf);
	assert_int_equal(st.size, size);
	if (got != (ssize_t)size)
		fail_msg("object %llu.%llu: read %zd bytes, want %llu: %s",
			 (unsigned long long)oid.partition,
			 (unsigned long long)oid.id, got,
			 (unsigned long long)size, vems_errormsg());
	if (d >= 0)
		fail_msg("object %llu.%llu: byte %lld is %#x, the shadow "
			 "says %#x",
			 (unsigned long long)oid.partition,
			 (unsigned long long)oid.id, d, at, shadow[d]);
}

/* Writes len bytes of tu_fill(seed) at off and applies them to shadow. */
static void
write_shadow(struct vems_obj *o, uint8_t *shadow, uint64_t *size, uint64_t off,
	     size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	tu_fill(buf, len, seed, off);
	ssize_t r = vems_obj_pwrite(o, buf, len, off, 0);
	if (r == (ssize_t)len) {
		memcpy(shadow + off, buf, len);
		if (off + len > *size)
			*size = off + len;
	}
	free(buf);
	if (r != (ssize_t)len)
		fail_msg("write %llu+%zu = %zd (%s): %s",
			 (unsigned long long)off, len, r, vems_strerror((int)r),
			 vems_errormsg());
}

/* Reads [off, off+len) and compares it with the shadow. */
static void
read_shadow(struct vems_obj *o, const uint8_t *shadow, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	ssize_t r = vems_obj_pread(o, buf, len, off);
	long long d =
		r == (ssize_t)len ? first_diff(buf, shadow + off, len) : -2;
	free(buf);
	if (r != (ssize_t)len)
		fail_msg("read %llu+%zu = %zd (%s): %s",
			 (unsigned long long)off, len, r, vems_strerror((int)r),
			 vems_errormsg());
	if (d >= 0)
		fail_msg("read %llu+%zu: byte %llu differs from the shadow",
			 (unsigned long long)off, len,
			 (unsigned long long)(off + (uint64_t)d));
}

/*
 * Internals, for preconditions the public API cannot express: the state
 * of one extent of an object (0: unmapped), and whether its frame is taken
 * by a spill in flight. Only used while no other thread changes o.
 */
static int
ext_state(struct vems_obj *o, uint32_t ext)
{
	struct vems_pool *p = o->pool;
	struct vems_objnode *n = o->node;
	vems__rw_rdlock(&n->lock);
	uint32_t ei = vems__xidx_get(&n->idx, ext);
	int st = ei == UINT32_MAX ? 0 : p->entries[ei].state;
	vems__rw_unlock(&n->lock);
	return st;
}

static bool
ext_spilling(struct vems_obj *o, uint32_t ext)
{
	struct vems_pool *p = o->pool;
	struct vems_objnode *n = o->node;
	bool busy = false;
	vems__rw_rdlock(&n->lock);
	uint32_t ei = vems__xidx_get(&n->idx, ext);
	if (ei != UINT32_MAX && p->entries[ei].state != VEMS_ES_BLOCK) {
		uint32_t f = p->entries[ei].frame;
		pthread_mutex_lock(&p->pol_lock);
		busy = p->fr[f].q == VEMS_FQ_BUSY;
		pthread_mutex_unlock(&p->pol_lock);
	}
	vems__rw_unlock(&n->lock);
	return busy;
}

/* --- random writes against DRAM shadows, one object per thread ---------- */

struct worker {
	struct vems_pool *pool;
	struct vems_oid oid;
	unsigned id;
	uint8_t *shadow;
	uint64_t span;	/* offsets written: [0, span) */
	uint64_t quota; /* bytes to write in total */
	size_t maxw;	/* longest write / read */
	uint64_t rng;
	uint64_t size, written, nwrites, nreads;
	char err[512];
};

#define W_FAIL(w, ...)                                                         \
	do {                                                                   \
		if ((w)->err[0] == '\0')                                       \
			snprintf((w)->err, sizeof((w)->err), __VA_ARGS__);     \
	} while (0)

/* Reads [off, off+len) (clipped at the size) and compares with the shadow. */
static bool
worker_read(struct worker *w, struct vems_obj *o, uint8_t *rd, uint64_t off,
	    size_t len)
{
	size_t want = off >= w->size  ? 0
		: off + len > w->size ? (size_t)(w->size - off)
				      : len;
	ssize_t got = vems_obj_pread(o, rd, len, off);
	w->nreads++;
	if (got != (ssize_t)want) {
		W_FAIL(w, "thread %u: read %llu+%zu = %zd, want %zu: %s", w->id,
		       (unsigned long long)off, len, got, want,
		       vems_errormsg());
		return false;
	}
	long long d = first_diff(rd, w->shadow + off, want);
	if (d >= 0) {
		W_FAIL(w,
		       "thread %u: read %llu+%zu after %llu writes: byte "
		       "%llu is %#x, the shadow says %#x",
		       w->id, (unsigned long long)off, len,
		       (unsigned long long)w->nwrites,
		       (unsigned long long)(off + (uint64_t)d), rd[d],
		       w->shadow[off + (uint64_t)d]);
		return false;
	}
	return true;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct vems_obj *o = NULL;
	uint8_t *buf = malloc(w->maxw), *rd = malloc(w->maxw), *all = NULL;
	if (buf == NULL || rd == NULL) {
		W_FAIL(w, "thread %u: out of memory", w->id);
		goto out;
	}
	int r = vems_obj_open(w->pool, w->oid, 0, &o);
	if (r < 0) {
		W_FAIL(w, "thread %u: open: %s", w->id, vems_errormsg());
		goto out;
	}
	while (w->written < w->quota) {
		uint64_t off = tu_rand(&w->rng) % w->span;
		/* a quarter of the writes are small (at most a page) */
		size_t len = tu_rand(&w->rng) % 4 == 0
			? 1 + (size_t)(tu_rand(&w->rng) % 4096)
			: 1 + (size_t)(tu_rand(&w->rng) % w->maxw);
		if (off + len > w->span)
			len = (size_t)(w->span - off);
		uint64_t seed = ((uint64_t)w->id << 32) | w->nwrites;
		tu_fill(buf, len, seed, off);
		ssize_t got = vems_obj_pwrite(o, buf, len, off, 0);
		if (got != (ssize_t)len) {
			W_FAIL(w, "thread %u: write %llu+%zu = %zd (%s): %s",
			       w->id, (unsigned long long)off, len, got,
			       vems_strerror((int)got), vems_errormsg());
			goto out;
		}
		memcpy(w->shadow + off, buf, len);
		if (off + len > w->size)
			w->size = off + len;
		w->written += len;
		w->nwrites++;
		/* read back what was just written, now and then */
		if (w->nwrites % 8 == 0 && !worker_read(w, o, rd, off, len))
			goto out;
		/* and anywhere else, about every other write */
		if (tu_rand(&w->rng) % 2 == 0) {
			uint64_t roff = tu_rand(&w->rng) % w->span;
			size_t rlen = 1 + (size_t)(tu_rand(&w->rng) % w->maxw);
			if (!worker_read(w, o, rd, roff, rlen))
				goto out;
		}
	}
	/* the whole object in one read */
	all = malloc((size_t)w->span + 4096);
	if (all == NULL) {
		W_FAIL(w, "thread %u: out of memory", w->id);
		goto out;
	}
	ssize_t got = vems_obj_pread(o, all, (size_t)w->span + 4096, 0);
	if (got != (ssize_t)w->size) {
		W_FAIL(w, "thread %u: whole read = %zd, want %llu: %s", w->id,
		       got, (unsigned long long)w->size, vems_errormsg());
		goto out;
	}
	long long d = first_diff(all, w->shadow, (size_t)w->size);
	if (d >= 0)
		W_FAIL(w, "thread %u: whole read: byte %lld differs", w->id, d);
out:
	vems_obj_close(&o);
	free(all);
	free(buf);
	free(rd);
	return NULL;
}

/*
 * nthreads threads, each on its own object of `span` bytes with a DRAM
 * shadow, write `quota` bytes each at random and read at random; then the
 * shadows are compared with the objects before and after a reopen.
 */
static void
shadow_workload(const char *tag, uint64_t pmem_size, uint64_t block_size,
		uint64_t extent_size, uint64_t max_pmem_extents,
		unsigned nthreads, uint64_t span, uint64_t quota)
{
	struct tu_pool tp;
	tu_create(&tp, tag, pmem_size, block_size, extent_size);
	uint64_t frames = pmem_extents(tp.pool);
	assert_true(frames > 0);
	if (max_pmem_extents)
		assert_true(frames <= max_pmem_extents);
	/* the objects' extents cannot all fit in pmem, by far */
	assert_true((uint64_t)nthreads * quota >= 8 * pmem_size);
	assert_true((uint64_t)nthreads * span >= 8 * frames * extent_size);

	struct worker *w = calloc(nthreads, sizeof(*w));
	pthread_t *th = calloc(nthreads, sizeof(*th));
	assert_non_null(w);
	assert_non_null(th);
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct worker){.pool = tp.pool,
				       .oid = {1, 0},
				       .id = i,
				       .span = span,
				       .quota = quota,
				       .maxw = 300 * KIB,
				       .rng = 0x5eed0000 + i};
		TU_OK(vems_obj_create(tp.pool, &w[i].oid));
		w[i].shadow = calloc(1, (size_t)span);
		assert_non_null(w[i].shadow);
	}
	for (unsigned i = 0; i < nthreads; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	for (unsigned i = 0; i < nthreads; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	char err[sizeof(w->err)] = "";
	for (unsigned i = 0; i < nthreads && !err[0]; i++)
		memcpy(err, w[i].err, sizeof(err));
	if (err[0]) {
		/* clean up first: a failure must not show up as leaks too */
		for (unsigned i = 0; i < nthreads; i++)
			free(w[i].shadow);
		free(w);
		free(th);
		tu_destroy(&tp);
		fail_msg("%s", err);
	}

	struct vems_pool_stats s = stats(tp.pool);
	print_message(
		"%s: %u frames of %llu KiB; %llu writes, %llu reads; "
		"spills %llu, promotions %llu, clean drops %llu, "
		"sync spills %llu, fetches %llu, block hits %llu, "
		"pmem hits %llu, extents pmem/both/block "
		"%llu/%llu/%llu, max in flight %llu\n",
		tag, (unsigned)frames, (unsigned long long)(extent_size / KIB),
		(unsigned long long)s.writes, (unsigned long long)s.reads,
		(unsigned long long)s.spills, (unsigned long long)s.promotions,
		(unsigned long long)s.clean_drops,
		(unsigned long long)s.sync_spills,
		(unsigned long long)s.block_fetches,
		(unsigned long long)s.block_hits,
		(unsigned long long)s.pmem_hits,
		(unsigned long long)s.extents_pmem,
		(unsigned long long)s.extents_both,
		(unsigned long long)s.extents_block,
		(unsigned long long)s.uring_max_inflight);
	assert_true(s.bytes_written >= 8 * pmem_size);
	assert_true(s.spills > 0);
	assert_true(s.extents_block > 0);
	assert_true(s.block_hits > 0);
	assert_int_equal(s.checksum_failures, 0);
	assert_int_equal(s.block_errors, 0);
	/* what is mapped cannot be resident: most of it is in the block file */
	assert_true(s.extents_pmem + s.extents_both <= frames);
	assert_true(s.extents_block > s.extents_pmem + s.extents_both);
	check_pool(tp.pool);

	tu_reopen(&tp);
	s = stats(tp.pool);
	assert_true(s.extents_block > 0);
	for (unsigned i = 0; i < nthreads; i++)
		verify_shadow(tp.pool, w[i].oid, w[i].shadow, w[i].size);
	check_pool(tp.pool);

	for (unsigned i = 0; i < nthreads; i++)
		free(w[i].shadow);
	free(w);
	free(th);
	tu_destroy(&tp);
}

/* 4 threads, 16 MiB of pmem, 4 x 40 MiB objects, 160 MiB written. */
static void
test_8x_pmem_threads(void **state)
{
	(void)state;
	shadow_workload("spill8x", 16 * MIB, 256 * MIB, 64 * KIB, 0, 4,
			40 * MIB, 40 * MIB);
}

/* pmem that holds only a handful of 2 MiB extents, 2 threads. */
static void
test_tiny_pmem(void **state)
{
	(void)state;
	shadow_workload("spilltiny", 16 * MIB, 256 * MIB, 2 * MIB, 8, 2,
			64 * MIB, 64 * MIB);
}

/* --- synchronous spills ------------------------------------------------ */

/* No background spiller: the writer spills whatever it needs itself. */
static void
test_sync_spill(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB, total = 64 * MIB;
	create_wm(&tp, "spillsync", 16 * MIB, 128 * MIB, es, 0);
	uint64_t frames = pmem_extents(tp.pool);
	struct vems_oid oid = {2, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp.pool, &oid));
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	/* sequential writes of an odd size: extents are filled in parts */
	const size_t chunk = 100003;
	uint8_t *buf = malloc(chunk);
	assert_non_null(buf);
	for (uint64_t off = 0; off < total; off += chunk) {
		size_t len =
			off + chunk > total ? (size_t)(total - off) : chunk;
		tu_fill(buf, len, 3, off);
		ssize_t r = vems_obj_pwrite(o, buf, len, off, 0);
		if (r != (ssize_t)len)
			fail_msg("write at %llu = %zd: %s",
				 (unsigned long long)off, r, vems_errormsg());
	}
	struct vems_pool_stats s = stats(tp.pool);
	uint64_t next = total / es;
	assert_true(s.sync_spills > 0);
	assert_true(s.spills > 0);
	/* only spills free frames here: at most `frames` extents resident */
	assert_true(s.extents_pmem + s.extents_both <= frames);
	assert_int_equal(s.extents_pmem + s.extents_both + s.extents_block,
			 next);
	assert_true(s.extents_block >= next - frames);
	assert_true(s.spills >= next - frames);
	assert_int_equal(s.bytes_spilled, s.spills * es);
	assert_int_equal(s.block_errors, 0);
	vems_obj_close(&o);
	check_pool(tp.pool);

	for (int pass = 0; pass < 2; pass++) {
		TU_OK(vems_obj_open(tp.pool, oid, VEMS_O_RDONLY, &o));
		struct vems_obj_stat st;
		TU_OK(vems_obj_stat(o, &st));
		assert_int_equal(st.size, total);
		assert_true(st.extents_block >= next - frames);
		for (uint64_t off = 0; off < total; off += chunk) {
			size_t len = off + chunk > total ? (size_t)(total - off)
							 : chunk;
			memset(buf, 0, len);
			assert_int_equal(vems_obj_pread(o, buf, len, off),
					 (ssize_t)len);
			if (!tu_verify(buf, len, 3, off))
				fail_msg("pass %d: bad data at %llu", pass,
					 (unsigned long long)off);
		}
		vems_obj_close(&o);
		if (pass == 0)
			reopen_wm(&tp, 0);
	}
	assert_int_equal(stats(tp.pool).checksum_failures, 0);
	check_pool(tp.pool);
	free(buf);
	tu_destroy(&tp);
}

/* --- promotion, then a clean drop -------------------------------------- */

/*
 * A spilled extent read again is promoted (BLOCK -> BOTH, a clean copy in
 * pmem); when it is evicted again it needs no I/O (BOTH -> BLOCK, a clean
 * drop). The watermark is 0 so that no background thread changes anything
 * between the steps; frames for the promotion are freed by removing a
 * scratch object.
 */
static void
test_promotion_and_clean_drop(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	create_wm(&tp, "spillpromo", 16 * MIB, 128 * MIB, es, 0);
	uint64_t frames = pmem_extents(tp.pool);
	const uint64_t next = 2 * frames;
	const size_t span = (size_t)(next * es);
	uint8_t *shadow = calloc(1, span);
	assert_non_null(shadow);
	uint64_t size = 0, ssize = 0;

	struct vems_oid oid = {3, 0}, scratch = {3, 0};
	struct vems_obj *o, *so;
	TU_OK(vems_obj_create(tp.pool, &oid));
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	for (uint64_t x = 0; x < next; x++)
		write_shadow(o, shadow, &size, x * es, (size_t)es, 100 + x);
	/* the first extents written are the first spilled */
	struct vems_pool_stats s0 = stats(tp.pool);
	assert_true(s0.extents_block >= next - frames);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BLOCK);
	assert_int_equal(s0.extents_both, 0);

	/* free frames: a scratch object written last, then removed */
	TU_OK(vems_obj_create(tp.pool, &scratch));
	TU_OK(vems_obj_open(tp.pool, scratch, 0, &so));
	uint8_t *sbuf = calloc(1, span);
	assert_non_null(sbuf);
	for (uint64_t x = 0; x < 8; x++)
		write_shadow(so, sbuf, &ssize, x * es, (size_t)es, 7);
	vems_obj_close(&so);
	free(sbuf);
	TU_OK(vems_obj_remove(tp.pool, scratch));
	s0 = stats(tp.pool);
	assert_true(s0.pmem_bytes_free >= es);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BLOCK);

	/* first read: served from the block file, correct */
	const uint64_t roff = 1000;
	const size_t rlen = 5000;
	read_shadow(o, shadow, roff, rlen);
	struct vems_pool_stats s1 = stats(tp.pool);
	assert_int_equal(s1.block_hits, s0.block_hits + 1);
	/* second read: correct; by now the extent was promoted (the spill
	 * itself leaves a ghost, so the first read may already have been
	 * the second touch) */
	read_shadow(o, shadow, roff, rlen);
	struct vems_pool_stats s2 = stats(tp.pool);
	assert_int_equal(s2.promotions, s0.promotions + 1);
	assert_int_equal(s2.bytes_promoted, s0.bytes_promoted + es);
	assert_int_equal(s2.extents_both, 1);
	assert_int_equal(s2.extents_block, s0.extents_block - 1);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BOTH);
	/* and now it is served from pmem */
	read_shadow(o, shadow, 0, (size_t)es);
	struct vems_pool_stats s3 = stats(tp.pool);
	assert_int_equal(s3.block_hits, s2.block_hits);
	assert_int_equal(s3.pmem_hits, s2.pmem_hits + 1);
	check_pool(tp.pool); /* the clean copy matches its slot */

	/*
	 * Rewrite the other extents (the spilled ones come back hot, into
	 * the main queue, where the promoted extent sits) until the promoted
	 * extent is evicted: without I/O, as a clean drop.
	 */
	int pass;
	for (pass = 0; pass < 8; pass++) {
		for (uint64_t x = 1; x < next; x++)
			write_shadow(o, shadow, &size, x * es, (size_t)es,
				     1000 * (uint64_t)(pass + 1) + x);
		if (ext_state(o, 0) != VEMS_ES_BOTH)
			break;
	}
	print_message("promoted extent dropped after %d rewrite passes\n",
		      pass + 1);
	struct vems_pool_stats s4 = stats(tp.pool);
	assert_true(pass < 8);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BLOCK);
	assert_true(s4.clean_drops > s3.clean_drops);
	assert_int_equal(s4.extents_both, 0);
	/* the dropped extent reads from its slot, unchanged */
	read_shadow(o, shadow, 0, (size_t)es);
	struct vems_pool_stats s5 = stats(tp.pool);
	assert_int_equal(s5.block_hits, s4.block_hits + 1);
	assert_int_equal(s5.checksum_failures, 0);
	/*
	 * and comes back: with no frame free (clean frames count as the
	 * reserve), the promotion evicted the policy's victim to make room
	 */
	assert_int_equal(ext_state(o, 0), VEMS_ES_BOTH);
	assert_true(s5.spills + s5.clean_drops > s4.spills + s4.clean_drops);
	vems_obj_close(&o);
	verify_shadow(tp.pool, oid, shadow, size);
	check_pool(tp.pool);

	/* the clean copy is committed: still there after a reopen */
	reopen_wm(&tp, 0);
	TU_OK(vems_obj_open(tp.pool, oid, VEMS_O_RDONLY, &o));
	assert_int_equal(ext_state(o, 0), VEMS_ES_BOTH);
	struct vems_pool_stats s6 = stats(tp.pool);
	read_shadow(o, shadow, 0, (size_t)es);
	assert_int_equal(stats(tp.pool).pmem_hits, s6.pmem_hits + 1);
	vems_obj_close(&o);
	verify_shadow(tp.pool, oid, shadow, size);
	check_pool(tp.pool);
	free(shadow);
	tu_destroy(&tp);
}

/*
 * Object {part, 0} of `next` whole extents written in order (seeds seed0 +
 * x), so the first ones are the first spilled; *shadow holds its bytes.
 */
static struct vems_obj *
written_object(struct tu_pool *tp, uint64_t part, uint64_t next, uint64_t seed0,
	       uint8_t **shadow, uint64_t *size)
{
	uint64_t es = tp->pool->extent_size;
	*shadow = calloc(1, (size_t)(next * es));
	assert_non_null(*shadow);
	*size = 0;
	struct vems_oid oid = {part, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_obj_open(tp->pool, oid, 0, &o));
	for (uint64_t x = 0; x < next; x++)
		write_shadow(o, *shadow, size, x * es, (size_t)es, seed0 + x);
	return o;
}

/*
 * Clean frames are the reserve (spill.c): a pmem full of clean copies
 * keeps serving hits, none of them dropped to keep frames free, and a
 * promotion makes its own room by dropping a clean one. Counting only
 * free frames, the spiller kept 5-7.5% of pmem empty in a read-mostly
 * pool (a uniform hit ratio 0.93 of an exact LRU's in vems-bench).
 */
static void
test_clean_frames_are_the_reserve(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	create_wm(&tp, "cleanres", 16 * MIB, 64 * MIB, es,
		  VEMS_LOW_WATERMARK_DEFAULT);
	uint64_t n = pmem_extents(tp.pool), size;
	uint8_t *shadow;
	struct vems_obj *o =
		written_object(&tp, 12, 2 * n, 500, &shadow, &size);
	/* everything to the block file: every frame free (the spiller may
	 * hold the last victims for a while: vems__spill then gives 0) */
	for (int k = 0; k < 10000 && stats(tp.pool).extents_block < 2 * n; k++)
		if (vems__spill(tp.pool, 64, NULL, 0, 0, false) == 0)
			vems__spill_wait(tp.pool, 1);
	struct vems_pool_stats s0 = stats(tp.pool);
	assert_int_equal(s0.extents_block, 2 * n);
	assert_int_equal(s0.pmem_bytes_used, 0);

	/* one whole extent a read: each comes back, until pmem is full */
	for (uint64_t x = 0; x < n; x++)
		read_shadow(o, shadow, x * es, (size_t)es);
	struct vems_pool_stats s1 = stats(tp.pool);
	assert_int_equal(s1.promotions, s0.promotions + n);
	assert_int_equal(s1.extents_both, n);
	assert_int_equal(s1.pmem_bytes_free, 0);
	assert_int_equal(s1.clean_drops, s0.clean_drops);

	/* all of them hits the second time */
	for (uint64_t x = 0; x < n; x++)
		read_shadow(o, shadow, x * es, (size_t)es);
	struct vems_pool_stats s2 = stats(tp.pool);
	assert_int_equal(s2.pmem_hits, s1.pmem_hits + n);
	assert_int_equal(s2.block_hits, s1.block_hits);

	/* a miss now drops one clean copy for its own */
	read_shadow(o, shadow, n * es, (size_t)es);
	struct vems_pool_stats s3 = stats(tp.pool);
	assert_int_equal(ext_state(o, (uint32_t)n), VEMS_ES_BOTH);
	assert_int_equal(s3.clean_drops, s2.clean_drops + 1);
	assert_int_equal(s3.spills, s2.spills); /* every victim clean */
	assert_int_equal(s3.extents_both, n);
	struct vems_oid oid = o->node->oid;
	vems_obj_close(&o);
	check_pool(tp.pool);
	reopen_wm(&tp, VEMS_LOW_WATERMARK_DEFAULT);
	verify_shadow(tp.pool, oid, shadow, size);
	check_pool(tp.pool);
	free(shadow);
	tu_destroy(&tp);
}

/* --- reads of part of a spilled extent --------------------------------- */

/* The block slot of a spilled extent. */
static uint32_t
ext_slot(struct vems_obj *o, uint32_t ext)
{
	struct vems_pool *p = o->pool;
	vems__rw_rdlock(&o->node->lock);
	uint32_t ei = vems__xidx_get(&o->node->idx, ext);
	uint32_t slot = ei == UINT32_MAX ? UINT32_MAX : p->entries[ei].slot;
	vems__rw_unlock(&o->node->lock);
	assert_int_not_equal(slot, UINT32_MAX);
	return slot;
}

/*
 * Two async reads of one spilled extent reaped together bring it back
 * twice in one batch: the promotion must take one frame, not two (the
 * second replaced the first, which was then neither free nor used, and
 * the extent was counted clean twice: seen by vems_pool_check under load).
 */
static void
test_promote_twice_in_a_batch(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	create_wm(&tp, "promo2", 16 * MIB, 64 * MIB, es, 0);
	uint64_t frames = pmem_extents(tp.pool), size;
	uint8_t *shadow;
	struct vems_obj *o =
		written_object(&tp, 13, frames + 8, 700, &shadow, &size);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BLOCK);
	/* frames free for it: the last extents cut */
	TU_OK(vems_obj_truncate(o, (frames + 4) * es));
	size = (frames + 4) * es;
	vems__rw_rdlock(&o->node->lock);
	uint32_t ei = vems__xidx_get(&o->node->idx, 0);
	vems__rw_unlock(&o->node->lock);
	struct vems_promo pr[2] = {
		{0, ei, ext_slot(o, 0), shadow, false, false},
		{0, ei, ext_slot(o, 0), shadow, false, false}};
	struct vems_pool_stats s0 = stats(tp.pool);
	vems__promote(tp.pool, o->node, pr, 2);
	struct vems_pool_stats s1 = stats(tp.pool);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BOTH);
	assert_int_equal(s1.promotions, s0.promotions + 1);
	assert_int_equal(s1.extents_both, s0.extents_both + 1);
	assert_int_equal(s1.pmem_bytes_free, s0.pmem_bytes_free - es);
	check_pool(tp.pool);
	read_shadow(o, shadow, 0, (size_t)es);
	assert_int_equal(stats(tp.pool).pmem_hits, s1.pmem_hits + 1);
	vems_obj_close(&o);
	free(shadow);
	tu_destroy(&tp);
}

/* Bytes the pool has read from the block file for data so far. */
static uint64_t
block_bytes(struct vems_pool *pool)
{
	return stats(pool).bytes_block_read;
}

/*
 * Format 3: a read of part of a spilled extent reads only the pages it
 * needs (4 KiB for an aligned 4 KiB read, not the 64 KiB extent), through
 * both the synchronous and the asynchronous path; a second part-miss of
 * the same extent brings it back whole. Each page is judged by its own
 * check value: a damaged page fails only the reads that need it, and a
 * damaged check row fails every read of the slot; check names both.
 */
static void
test_partial_miss_reads_pages(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	create_wm(&tp, "spillpages", 16 * MIB, 128 * MIB, es, 0);
	const uint64_t next = pmem_extents(tp.pool) + 24;
	uint8_t *shadow;
	uint64_t size;
	struct vems_obj *o = written_object(&tp, 9, next, 900, &shadow, &size);
	struct vems_oid oid = o->node->oid;
	for (uint32_t x = 0; x < 8; x++)
		assert_int_equal(ext_state(o, x), VEMS_ES_BLOCK);
	uint8_t *buf = NULL;
	assert_int_equal(posix_memalign((void **)&buf, 4096, (size_t)es), 0);

	/* aligned 4 KiB, straight into the caller's buffer: one page */
	uint64_t b0 = block_bytes(tp.pool);
	assert_int_equal(vems_obj_pread(o, buf, 4096, 3 * 4096), 4096);
	assert_memory_equal(buf, shadow + 3 * 4096, 4096);
	assert_int_equal(block_bytes(tp.pool) - b0, 4096);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BLOCK);
	/* unaligned, across a page boundary (extent 1): two pages */
	b0 = block_bytes(tp.pool);
	assert_int_equal(vems_obj_pread(o, buf + 1, 100, es + 8190), 100);
	assert_memory_equal(buf + 1, shadow + es + 8190, 100);
	assert_int_equal(block_bytes(tp.pool) - b0, 8192);
	/* async, extents 2-5: a page each */
	struct vems_aio_ctx *ctx;
	TU_OK(vems_aio_ctx_new(tp.pool, 8, &ctx));
	struct vems_aio io[4], *iov[4], *done[4];
	b0 = block_bytes(tp.pool);
	for (int i = 0; i < 4; i++) {
		io[i] = (struct vems_aio){.obj = o,
					  .op = VEMS_AIO_READ,
					  .buf = buf + (size_t)i * 4096,
					  .len = 4096,
					  .off = (uint64_t)(2 + i) * es + 4096};
		iov[i] = &io[i];
	}
	assert_int_equal(vems_aio_submit(ctx, iov, 4), 4);
	assert_int_equal(vems_aio_wait(ctx, done, 4, 4, -1), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(io[i].result, 4096);
		assert_memory_equal(buf + (size_t)i * 4096,
				    shadow + (2 + i) * es + 4096, 4096);
	}
	assert_int_equal(block_bytes(tp.pool) - b0, 4 * 4096);
	vems_aio_ctx_delete(&ctx);

	/* extent 0 again (another page): read whole and brought back, once
	 * frames are free (the tail truncated away) */
	TU_OK(vems_obj_truncate(o, (next - 8) * es));
	size = (next - 8) * es;
	b0 = block_bytes(tp.pool);
	read_shadow(o, shadow, 7 * 4096, 4096);
	assert_int_equal(block_bytes(tp.pool) - b0, es);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BOTH);
	check_pool(tp.pool);

	/* a damaged page fails the reads that need it, and only those */
	uint32_t slot = ext_slot(o, 6);
	uint64_t at =
		tp.pool->block_data_off + (uint64_t)slot * es + 5 * 4096 + 17;
	int fd = open(tp.block, O_RDWR);
	assert_true(fd >= 0);
	uint8_t c;
	assert_int_equal(pread(fd, &c, 1, (off_t)at), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)at), 1);
	assert_int_equal(vems_obj_pread(o, buf, 4096, 6 * es + 4 * 4096), 4096);
	assert_memory_equal(buf, shadow + 6 * es + 4 * 4096, 4096);
	assert_int_equal(vems_obj_pread(o, buf, 4096, 6 * es + 5 * 4096), -EIO);
	assert_non_null(strstr(vems_errormsg(), "page 5 of block slot"));
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)at), 1);
	close(fd);
	check_pool(tp.pool);

	/* a damaged check row fails every read of its slot */
	slot = ext_slot(o, 7);
	uint32_t *row = vems__slot_pchecks(tp.pool, slot);
	row[2] ^= 1;
	assert_int_equal(vems_obj_pread(o, buf, 4096, 7 * es + 9 * 4096), -EIO);
	assert_non_null(strstr(vems_errormsg(), "page checks"));
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 1);
	row[2] ^= 1;
	check_pool(tp.pool);
	assert_true(stats(tp.pool).checksum_failures >= 2);

	vems_obj_close(&o);
	verify_shadow(tp.pool, oid, shadow, size);
	reopen_wm(&tp, 0);
	verify_shadow(tp.pool, oid, shadow, size);
	check_pool(tp.pool);
	free(buf);
	free(shadow);
	tu_destroy(&tp);
}

/* --- overwriting spilled extents --------------------------------------- */

/*
 * A write that covers part of a BLOCK extent reads it back first (a block
 * fetch); one that covers it wholly just takes a frame. Both leave the
 * extent dirty in pmem with the right bytes.
 */
static void
test_overwrite_spilled(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	create_wm(&tp, "spillow", 16 * MIB, 128 * MIB, es, 0);
	uint64_t frames = pmem_extents(tp.pool);
	const uint64_t next = 2 * frames + 3;
	uint8_t *shadow;
	uint64_t size;
	struct vems_obj *o = written_object(&tp, 4, next, 200, &shadow, &size);
	struct vems_oid oid = o->node->oid;
	const size_t span = (size_t)(next * es);
	/* extents 0 .. frames-1 went to the block file first */
	for (uint32_t x = 0; x < 16; x++)
		assert_int_equal(ext_state(o, x), VEMS_ES_BLOCK);

	/* partial: read-modify-write, one fetch */
	struct vems_pool_stats s0 = stats(tp.pool);
	write_shadow(o, shadow, &size, 1 * es + 1000, 3000, 301);
	struct vems_pool_stats s1 = stats(tp.pool);
	assert_int_equal(s1.block_fetches, s0.block_fetches + 1);
	assert_int_equal(ext_state(o, 1), VEMS_ES_PMEM);
	read_shadow(o, shadow, 1 * es, (size_t)es);

	/* whole, extent-aligned: no fetch, no block read */
	write_shadow(o, shadow, &size, 3 * es, (size_t)es, 302);
	struct vems_pool_stats s2 = stats(tp.pool);
	assert_int_equal(s2.block_fetches, s1.block_fetches);
	assert_int_equal(s2.block_hits, s1.block_hits);
	assert_int_equal(ext_state(o, 3), VEMS_ES_PMEM);
	read_shadow(o, shadow, 3 * es, (size_t)es);

	/* one write: partial head, two whole extents, partial tail: two
	 * fetches, for the ends only */
	write_shadow(o, shadow, &size, 5 * es + 777, (size_t)(3 * es), 303);
	struct vems_pool_stats s3 = stats(tp.pool);
	assert_int_equal(s3.block_fetches, s2.block_fetches + 2);
	for (uint32_t x = 5; x <= 8; x++)
		assert_int_equal(ext_state(o, x), VEMS_ES_PMEM);
	read_shadow(o, shadow, 4 * es, (size_t)(6 * es));

	/* the first and last byte of a spilled extent */
	assert_int_equal(ext_state(o, 10), VEMS_ES_BLOCK);
	write_shadow(o, shadow, &size, 10 * es, 1, 304);
	assert_int_equal(ext_state(o, 12), VEMS_ES_BLOCK);
	write_shadow(o, shadow, &size, 13 * es - 1, 1, 305);
	struct vems_pool_stats s4 = stats(tp.pool);
	assert_int_equal(s4.block_fetches, s3.block_fetches + 2);

	/* many more, whatever their state by now, partial and whole */
	uint64_t rng = 99;
	for (int i = 0; i < 300; i++) {
		uint64_t x = tu_rand(&rng) % next;
		if (i % 3 == 0) {
			write_shadow(o, shadow, &size, x * es, (size_t)es,
				     400 + (uint64_t)i);
		} else {
			uint64_t off = x * es + tu_rand(&rng) % es;
			size_t len = 1 + (size_t)(tu_rand(&rng) % (2 * es));
			if (off + len > span)
				len = span - (size_t)off;
			write_shadow(o, shadow, &size, off, len,
				     400 + (uint64_t)i);
		}
	}
	struct vems_pool_stats s5 = stats(tp.pool);
	assert_true(s5.block_fetches > s4.block_fetches);
	assert_true(s5.extents_block > 0);
	assert_int_equal(s5.checksum_failures, 0);
	vems_obj_close(&o);
	verify_shadow(tp.pool, oid, shadow, size);
	check_pool(tp.pool);

	reopen_wm(&tp, 0);
	verify_shadow(tp.pool, oid, shadow, size);
	check_pool(tp.pool);
	free(shadow);
	tu_destroy(&tp);
}

/* --- a write racing a spill in flight ---------------------------------- */

/*
 * The fault hook parks the first block write completion after it is armed
 * (the spill's phase b, no object lock held) until the test releases it.
 */
struct park {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool armed, parked, released;
	unsigned writes;
};

static int
park_hook(void *arg, char op, int res, uint32_t len)
{
	(void)len;
	struct park *k = arg;
	if (op != 'w')
		return res;
	pthread_mutex_lock(&k->mu);
	k->writes++;
	if (k->armed) {
		k->armed = false;
		k->parked = true;
		pthread_cond_broadcast(&k->cv);
		while (!k->released)
			pthread_cond_wait(&k->cv, &k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return res;
}

struct bwriter {
	struct vems_pool *pool;
	struct vems_oid oid;
	size_t len;
	ssize_t ret;
	char err[512];
};

static void *
bwriter_main(void *arg)
{
	struct bwriter *b = arg;
	struct vems_obj *o = NULL;
	uint8_t *buf = malloc(b->len);
	b->ret = -ENOMEM;
	if (buf == NULL)
		return NULL;
	tu_fill(buf, b->len, 77, 0);
	int r = vems_obj_open(b->pool, b->oid, 0, &o);
	b->ret = r < 0 ? r : vems_obj_pwrite(o, buf, b->len, 0, 0);
	if (b->ret < 0)
		snprintf(b->err, sizeof(b->err), "%s", vems_errormsg());
	vems_obj_close(&o);
	free(buf);
	return NULL;
}

/* Waits for the hook to park; false after a minute (a hang, not a race). */
static bool
wait_parked(struct park *k)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60;
	pthread_mutex_lock(&k->mu);
	while (!k->parked)
		if (pthread_cond_timedwait(&k->cv, &k->mu, &ts) == ETIMEDOUT)
			break;
	bool ok = k->parked;
	pthread_mutex_unlock(&k->mu);
	return ok;
}

static void
test_write_during_spill(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	create_wm(&tp, "spillrace", 16 * MIB, 64 * MIB, es, 0);
	uint64_t frames = pmem_extents(tp.pool);
	const size_t span = (size_t)(frames * es);
	uint8_t *shadow = calloc(1, span);
	assert_non_null(shadow);
	uint64_t size = 0;

	/* object A fills pmem exactly: nothing spilled yet */
	struct vems_oid a = {5, 0}, b = {5, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp.pool, &a));
	TU_OK(vems_obj_open(tp.pool, a, 0, &o));
	for (uint64_t x = 0; x < frames; x++)
		write_shadow(o, shadow, &size, x * es, (size_t)es, 500 + x);
	struct vems_pool_stats s0 = stats(tp.pool);
	assert_int_equal(s0.spills, 0);
	assert_int_equal(s0.pmem_bytes_free, 0);

	/* T writes 4 new extents of B: it must spill A's 4 oldest itself */
	TU_OK(vems_obj_create(tp.pool, &b));
	struct park k = {.armed = true};
	pthread_mutex_init(&k.mu, NULL);
	pthread_cond_init(&k.cv, NULL);
	vems__fault_set(park_hook, &k);
	struct bwriter bw = {
		.pool = tp.pool, .oid = b, .len = (size_t)(4 * es)};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bwriter_main, &bw), 0);

	bool parked = wait_parked(&k);
	bool spilling[4] = {false}, dirty[4] = {false};
	ssize_t w0 = 0, w2 = 0;
	uint8_t *buf = malloc((size_t)es), *rd = malloc((size_t)es);
	assert_non_null(buf);
	assert_non_null(rd);
	ssize_t r1 = 0;
	int d1 = -1;
	if (parked) {
		/* A's extents 0-3 are being written to the block file, not
		 * committed: still dirty in pmem, their frames taken */
		for (uint32_t x = 0; x < 4; x++) {
			spilling[x] = ext_spilling(o, x);
			dirty[x] = ext_state(o, x) == VEMS_ES_PMEM;
		}
		/* overwrite extent 0 wholly and extent 2 in part: neither
		 * needs a frame, nor a lock the spill holds */
		tu_fill(buf, (size_t)es, 601, 0);
		w0 = vems_obj_pwrite(o, buf, (size_t)es, 0, 0);
		if (w0 == (ssize_t)es)
			memcpy(shadow, buf, (size_t)es);
		tu_fill(buf, 1000, 602, 2 * es + 100);
		w2 = vems_obj_pwrite(o, buf, 1000, 2 * es + 100, 0);
		if (w2 == 1000)
			memcpy(shadow + 2 * es + 100, buf, 1000);
		/* a read of an extent in flight is served from pmem */
		r1 = vems_obj_pread(o, rd, (size_t)es, es);
		d1 = r1 == (ssize_t)es
			? (int)first_diff(rd, shadow + es, (size_t)es)
			: -2;
	}
	pthread_mutex_lock(&k.mu);
	k.armed = false;
	k.released = true;
	pthread_cond_broadcast(&k.cv);
	pthread_mutex_unlock(&k.mu);
	assert_int_equal(pthread_join(t, NULL), 0);
	vems__fault_set(NULL, NULL);
	pthread_cond_destroy(&k.cv);
	pthread_mutex_destroy(&k.mu);
	free(buf);
	free(rd);

	if (!parked)
		fail_msg("no block write was seen in a minute (writer: %zd %s)",
			 bw.ret, bw.err);
	if (bw.ret != (ssize_t)(4 * es))
		fail_msg("the spilling write = %zd: %s", bw.ret, bw.err);
	for (uint32_t x = 0; x < 4; x++) {
		if (!spilling[x])
			fail_msg("extent %u of A was not in the parked spill",
				 x);
		if (!dirty[x])
			fail_msg("extent %u of A was committed while its "
				 "write was parked",
				 x);
	}
	assert_int_equal(w0, (ssize_t)es);
	assert_int_equal(w2, 1000);
	assert_int_equal(r1, (ssize_t)es);
	assert_int_equal(d1, -1);

	/* the spills of 0 and 2 were abandoned, 1 and 3 committed */
	assert_int_equal(ext_state(o, 0), VEMS_ES_PMEM);
	assert_int_equal(ext_state(o, 2), VEMS_ES_PMEM);
	assert_int_equal(ext_state(o, 1), VEMS_ES_BLOCK);
	assert_int_equal(ext_state(o, 3), VEMS_ES_BLOCK);
	struct vems_pool_stats s1 = stats(tp.pool);
	assert_true(s1.spills >= 4);
	assert_true(s1.sync_spills > 0);
	assert_int_equal(s1.block_errors, 0);
	read_shadow(o, shadow, 0, span);
	vems_obj_close(&o);

	uint8_t *bsh = malloc((size_t)(4 * es));
	assert_non_null(bsh);
	tu_fill(bsh, (size_t)(4 * es), 77, 0);
	verify_shadow(tp.pool, a, shadow, size);
	verify_shadow(tp.pool, b, bsh, 4 * es);
	check_pool(tp.pool);

	reopen_wm(&tp, 0);
	verify_shadow(tp.pool, a, shadow, size);
	verify_shadow(tp.pool, b, bsh, 4 * es);
	TU_OK(vems_obj_open(tp.pool, a, VEMS_O_RDONLY, &o));
	assert_int_equal(ext_state(o, 0), VEMS_ES_PMEM);
	assert_int_equal(ext_state(o, 1), VEMS_ES_BLOCK);
	vems_obj_close(&o);
	check_pool(tp.pool);
	free(bsh);
	free(shadow);
	tu_destroy(&tp);
}

/* --- one read over many extents spilled lately ------------------------- */

/*
 * Every extent spilled lately is a ghost, so a read that crosses many of
 * them in one call marks each as a promotion candidate, batch after batch
 * of MISS_BATCH block reads. Free frames exist, so promotions happen.
 * At most MISS_BATCH candidates can be kept per call: a read that marks
 * more (np is checked when a miss is queued, but only grows after its
 * batch is fetched) writes past vems_obj_pread's pr[] on the stack.
 */
static void
test_read_many_spilled(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	/* a table of extents missed lately that the steps below cannot
	 * overflow (4-way sets: 40 entries could collide in 16 sets) */
	vems__seen_sets_min = 4096;
	create_wm(&tp, "spillmany", 16 * MIB, 64 * MIB, es, 0);
	vems__seen_sets_min = 16;
	uint64_t frames = pmem_extents(tp.pool);
	const uint64_t next = frames + 160;
	const size_t span = (size_t)(next * es);
	uint8_t *shadow = calloc(1, span);
	assert_non_null(shadow);
	uint64_t size = 0, ssize = 0;
	struct vems_oid oid = {8, 0}, scratch = {8, 0};
	struct vems_obj *o, *so;
	TU_OK(vems_obj_create(tp.pool, &oid));
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	for (uint64_t x = 0; x < next; x++)
		write_shadow(o, shadow, &size, x * es, (size_t)es, 800 + x);
	/* the scratch object's frames are freed below, for the promotions */
	TU_OK(vems_obj_create(tp.pool, &scratch));
	TU_OK(vems_obj_open(tp.pool, scratch, 0, &so));
	uint8_t *sbuf = calloc(1, (size_t)(64 * es));
	assert_non_null(sbuf);
	for (uint64_t x = 0; x < 64; x++)
		write_shadow(so, sbuf, &ssize, x * es, (size_t)es, 9);
	vems_obj_close(&so);
	free(sbuf);
	/* pmem is full; a read of 16 extents is a scan: it promotes
	 * nothing (it only marks them as missed lately) */
	struct vems_pool_stats s0 = stats(tp.pool);
	assert_int_equal(s0.pmem_bytes_free, 0);
	read_shadow(o, shadow, 0, (size_t)(16 * es));
	assert_int_equal(stats(tp.pool).promotions, s0.promotions);
	/* the big read (extents 16-149, a scan too) brings back the extents
	 * missed lately: make those 24-63 and not 0-23, so that its first
	 * batch (16-47) has 24 candidates, fewer than MISS_BATCH, and the
	 * second one brings the rest of the MISS_BATCH it keeps */
	for (uint32_t x = 0; x < 16; x++)
		assert_true(vems__seen_again(o->pool, o->node->serial, x));
	for (uint32_t x = 24; x < 64; x++)
		assert_false(vems__seen_again(o->pool, o->node->serial, x));
	TU_OK(vems_obj_remove(tp.pool, scratch));
	for (uint32_t x = 0; x < 150; x++)
		assert_int_equal(ext_state(o, x), VEMS_ES_BLOCK);

	/* one read over 134 spilled extents, unaligned at both ends */
	s0 = stats(tp.pool);
	read_shadow(o, shadow, 16 * es + 100, (size_t)(134 * es - 200));
	struct vems_pool_stats s1 = stats(tp.pool);
	print_message("one read over 134 spilled extents: %llu promotions\n",
		      (unsigned long long)(s1.promotions - s0.promotions));
	assert_int_equal(s1.block_hits, s0.block_hits + 134);
	assert_int_equal(s1.promotions, s0.promotions + 32);
	assert_int_equal(s1.extents_both, s1.promotions - s0.promotions);
	/* and again, now partly from the clean copies */
	read_shadow(o, shadow, 0, (size_t)(150 * es));
	vems_obj_close(&o);
	check_pool(tp.pool);
	verify_shadow(tp.pool, oid, shadow, size);
	reopen_wm(&tp, 0);
	verify_shadow(tp.pool, oid, shadow, size);
	check_pool(tp.pool);
	free(shadow);
	tu_destroy(&tp);
}

/* --- a busy object is no reason for ENOSPC ----------------------------- */

/* Parks the first block read completion after it is armed. */
static int
park_read_hook(void *arg, char op, int res, uint32_t len)
{
	(void)len;
	struct park *k = arg;
	if (op != 'r')
		return res;
	pthread_mutex_lock(&k->mu);
	if (k->armed) {
		k->armed = false;
		k->parked = true;
		pthread_cond_broadcast(&k->cv);
		while (!k->released)
			pthread_cond_wait(&k->cv, &k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return res;
}

struct reader {
	struct vems_pool *pool;
	struct vems_oid oid;
	const uint8_t *shadow;
	size_t len;
	ssize_t ret;
	long long diff;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct vems_obj *o = NULL;
	uint8_t *buf = malloc(r->len);
	r->ret = -ENOMEM;
	r->diff = -2;
	if (buf == NULL)
		return NULL;
	int e = vems_obj_open(r->pool, r->oid, VEMS_O_RDONLY, &o);
	r->ret = e < 0 ? e : vems_obj_pread(o, buf, r->len, 0);
	if (r->ret == (ssize_t)r->len)
		r->diff = first_diff(buf, r->shadow, r->len);
	vems_obj_close(&o);
	free(buf);
	return NULL;
}

struct done_writer {
	struct bwriter bw;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void *
done_writer_main(void *arg)
{
	struct done_writer *d = arg;
	bwriter_main(&d->bw);
	pthread_mutex_lock(&d->mu);
	d->done = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/*
 * Every resident extent belongs to object B, and a reader of B is in the
 * middle of a block read (holding B shared, which a spill's commit cannot
 * take exclusively). A writer of another object, A, needs one frame: it
 * must wait until one can be freed, not fail with -ENOSPC while both
 * tiers are almost empty (vems.h: -ENOSPC is "no free space in either
 * tier"). The reader is released when the writer returns, or after 2 s
 * at most if the writer (rightly) waits: the bound is a hang guard, the
 * verdict is the writer's result.
 */
static void
test_busy_object_no_enospc(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	create_wm(&tp, "spillbusy", 16 * MIB, 64 * MIB, es, 0);
	uint64_t frames = pmem_extents(tp.pool);
	const size_t span = (size_t)((frames + 1) * es);
	uint8_t *shadow = calloc(1, span);
	assert_non_null(shadow);
	uint64_t size = 0;
	struct vems_oid a = {6, 0}, b = {6, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp.pool, &b));
	TU_OK(vems_obj_open(tp.pool, b, 0, &o));
	for (uint64_t x = 0; x <= frames; x++)
		write_shadow(o, shadow, &size, x * es, (size_t)es, 700 + x);
	assert_int_equal(ext_state(o, 0), VEMS_ES_BLOCK);
	vems_obj_close(&o);
	struct vems_pool_stats s0 = stats(tp.pool);
	assert_int_equal(s0.pmem_bytes_free, 0);
	assert_int_equal(s0.extents_pmem, frames);
	TU_OK(vems_obj_create(tp.pool, &a));

	struct park k = {.armed = true};
	pthread_mutex_init(&k.mu, NULL);
	pthread_cond_init(&k.cv, NULL);
	vems__fault_set(park_read_hook, &k);
	/* R reads extent 0 of B (in the block file) and parks in the read */
	struct reader rd = {
		.pool = tp.pool, .oid = b, .shadow = shadow, .len = (size_t)es};
	pthread_t tr, tw;
	assert_int_equal(pthread_create(&tr, NULL, reader_main, &rd), 0);
	bool parked = wait_parked(&k);

	/* W writes one new extent of A */
	struct done_writer dw = {.bw = {.pool = tp.pool, .oid = a, .len = 100}};
	pthread_mutex_init(&dw.mu, NULL);
	pthread_cond_init(&dw.cv, NULL);
	bool started = false;
	if (parked) {
		started = pthread_create(&tw, NULL, done_writer_main, &dw) == 0;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		pthread_mutex_lock(&dw.mu);
		while (started && !dw.done)
			if (pthread_cond_timedwait(&dw.cv, &dw.mu, &ts) ==
			    ETIMEDOUT)
				break;
		pthread_mutex_unlock(&dw.mu);
	}
	pthread_mutex_lock(&k.mu);
	k.armed = false;
	k.released = true;
	pthread_cond_broadcast(&k.cv);
	pthread_mutex_unlock(&k.mu);
	assert_int_equal(pthread_join(tr, NULL), 0);
	if (started)
		assert_int_equal(pthread_join(tw, NULL), 0);
	vems__fault_set(NULL, NULL);
	pthread_cond_destroy(&k.cv);
	pthread_mutex_destroy(&k.mu);
	pthread_cond_destroy(&dw.cv);
	pthread_mutex_destroy(&dw.mu);

	int problems = vems_pool_check(tp.pool, report, NULL);
	free(shadow);
	tu_destroy(&tp);
	assert_true(parked);
	assert_true(started);
	assert_int_equal(rd.ret, (ssize_t)es);
	assert_int_equal(rd.diff, -1);
	if (dw.bw.ret != 100)
		fail_msg("writing 100 bytes to another object while a reader "
			 "is in a block read = %zd (%s): %s",
			 dw.bw.ret, vems_strerror((int)dw.bw.ret), dw.bw.err);
	assert_int_equal(problems, 0);
}

/*
 * With a watermark, a writer that finds pmem full spills a batch ahead
 * (an eighth of pmem, at most 64 extents), so the next writes need no
 * spill of their own; with the watermark at 0 it spills exactly what it
 * needs (test_sync_spill). The background spiller is stopped here so that
 * only the writer frees frames.
 */
static void
test_sync_spill_batch_ahead(void **state)
{
	(void)state;
	struct tu_pool tp;
	const uint64_t es = 64 * KIB;
	create_wm(&tp, "spillahead", 16 * MIB, 128 * MIB, es, 5);
	vems__spill_stop(tp.pool);
	uint64_t frames = pmem_extents(tp.pool);
	uint64_t batch = frames / 8 < 64 ? frames / 8 : 64;
	assert_true(batch > 1);
	struct vems_oid oid = {4, 0};
	struct vems_obj *o;
	TU_OK(vems_obj_create(tp.pool, &oid));
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	uint8_t *buf = malloc(es);
	assert_non_null(buf);
	uint64_t x = 0;
	for (; stats(tp.pool).sync_spills == 0; x++) {
		assert_true(x <= frames);
		tu_fill(buf, es, 40, x * es);
		assert_int_equal(vems_obj_pwrite(o, buf, es, x * es, 0),
				 (ssize_t)es);
	}
	/* the write that spilled took one of the batch's frames */
	struct vems_pool_stats s = stats(tp.pool);
	assert_int_equal(x, frames + 1);
	assert_int_equal(s.spills, batch);
	assert_int_equal(s.pmem_bytes_free, (batch - 1) * es);
	/* and the next batch - 1 writes spill nothing */
	for (uint64_t k = 0; k < batch - 1; k++, x++) {
		tu_fill(buf, es, 40, x * es);
		assert_int_equal(vems_obj_pwrite(o, buf, es, x * es, 0),
				 (ssize_t)es);
	}
	assert_int_equal(stats(tp.pool).sync_spills, 1);
	free(buf);
	vems_obj_close(&o);
	check_pool(tp.pool);
	tu_destroy(&tp);
}

/* Opening without a config gives the documented default watermark (it
 * gave 10%), and the refill band is the documented 2.5% of the frames. */
static void
test_null_config_watermark(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "wmdef", 64 * MIB, 128 * MIB, 64 * KIB);
	TU_OK(vems_pool_close(&tp.pool));
	TU_OK(vems_pool_open(&tp.pool, tp.pmem, NULL));
	struct vems_pool *p = tp.pool;
	assert_int_equal(p->low_pct, VEMS_LOW_WATERMARK_DEFAULT);
	assert_int_equal(p->low_frames,
			 p->frames_present * VEMS_LOW_WATERMARK_DEFAULT / 100);
	assert_int_equal(p->high_frames - p->low_frames,
			 p->frames_present / 40);
	tu_destroy(&tp);
}

/* More than 65535 readers pinning one slot: the count must not wrap (it
 * was 16 bits), or a freed slot would be reused under a pending read. */
static void
test_slot_pins_do_not_wrap(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "pins", 16 * MIB, 16 * MIB, 64 * KIB);
	struct vems_pool *p = tp.pool;
	uint32_t slot;
	pthread_mutex_lock(&p->alloc_lock);
	assert_true(vems__fl_pop(&p->free_slots, &slot));
	uint32_t nfree = p->free_slots.n;
	pthread_mutex_unlock(&p->alloc_lock);
	enum { PINS = 70000 };
	for (int i = 0; i < PINS; i++)
		vems__slot_pin(p, slot);
	vems__slot_free(p, slot); /* freed while pinned: pending */
	for (int i = 0; i < PINS - 1; i++)
		vems__slot_unpin(p, slot);
	assert_int_equal(p->free_slots.n, nfree); /* still pinned once */
	vems__slot_unpin(p, slot);
	assert_int_equal(p->free_slots.n, nfree + 1);
	tu_destroy(&tp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_8x_pmem_threads),
		cmocka_unit_test(test_tiny_pmem),
		cmocka_unit_test(test_sync_spill),
		cmocka_unit_test(test_sync_spill_batch_ahead),
		cmocka_unit_test(test_promotion_and_clean_drop),
		cmocka_unit_test(test_overwrite_spilled),
		cmocka_unit_test(test_write_during_spill),
		cmocka_unit_test(test_busy_object_no_enospc),
		/* last: it may crash the process (see the test) */
		cmocka_unit_test(test_read_many_spilled),
		cmocka_unit_test(test_promote_twice_in_a_batch),
		cmocka_unit_test(test_clean_frames_are_the_reserve),
		cmocka_unit_test(test_partial_miss_reads_pages),
		cmocka_unit_test(test_null_config_watermark),
		cmocka_unit_test(test_slot_pins_do_not_wrap),
	};
	/* a subset, by cmocka pattern: VEMS_TEST_FILTER=test_sync_spill */
	if (getenv("VEMS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VEMS_TEST_FILTER"));
	if (getenv("VEMS_TEST_SKIP"))
		cmocka_set_skip_filter(getenv("VEMS_TEST_SKIP"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
