/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_crash.c -- SIGKILL a writer at random moments, reopen, verify
 *
 * A child process writes random ranges (overwrites, appends, holes, and
 * now and then a truncate) into a few objects. Before each call it logs
 * the operation in shared memory, after the call returns it marks it done.
 * The parent kills it at a random moment, reopens the pool and checks:
 *  - vems_pool_check() finds nothing wrong;
 *  - every byte is what the completed operations say, except bytes of the
 *    one operation that was in flight, which may hold old or new data;
 *  - the size is the logged size, or (if an op was in flight) between the
 *    old and the new one.
 * The parent then adopts what it read as the new truth, and goes again.
 *
 * test_sigkill_spilling does the same over three times more data than pmem
 * holds, with reads mixed in: kills land in spills (background and
 * synchronous), fetches of spilled extents and promotions.
 */

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define MIB (UINT64_C(1) << 20)
#define NOBJ 3
#define SPAN_MAX (16 * MIB)

/* per object address range, and one truncate in how many ops */
static uint64_t SPAN = 3 * MIB;
static unsigned trunc_every = 40;
#define MAXOPS 100000

enum { OP_WRITE = 1, OP_TRUNC = 2, OP_READ = 3 };

struct op {
	int obj, kind;
	uint64_t off, len, seed;
	volatile int done;
};

struct shared {
	volatile uint64_t nops; /* ops started (logged) */
	struct op ops[MAXOPS];
};

static int
iterations(void)
{
	const char *e = getenv("VEMS_CRASH_ITERATIONS");
	return e ? atoi(e) : 200;
}

/* The child's work: random operations until killed or done. */
static void
child(const char *pmem, struct vems_oid *oids, struct shared *sh, uint64_t seed)
{
	struct vems_pool *pool;
	struct vems_obj *o[NOBJ];
	if (vems_pool_open(&pool, pmem, NULL) != 0)
		_exit(3);
	for (int i = 0; i < NOBJ; i++)
		if (vems_obj_open(pool, oids[i], 0, &o[i]) != 0)
			_exit(4);
	static uint8_t buf[300000];
	uint64_t rng = seed;
	for (uint64_t k = 0; k < MAXOPS; k++) {
		struct op *op = &sh->ops[k];
		op->obj = (int)(tu_rand(&rng) % NOBJ);
		uint64_t dice = tu_rand(&rng);
		op->kind = dice % trunc_every == 0 ? OP_TRUNC
			: dice % 4 == 1		   ? OP_READ
						   : OP_WRITE;
		op->off = tu_rand(&rng) % SPAN;
		op->len = 1 + tu_rand(&rng) % (k % 7 == 0 ? sizeof(buf) : 9000);
		if (op->off + op->len > SPAN)
			op->len = SPAN - op->off;
		op->seed = seed * 1000003 + k;
		op->done = 0;
		__atomic_store_n(&sh->nops, k + 1, __ATOMIC_SEQ_CST);
		int r;
		if (op->kind == OP_TRUNC) {
			r = vems_obj_truncate(o[op->obj], op->off);
		} else if (op->kind == OP_READ) {
			/* reads change nothing, but bring extents back */
			r = vems_obj_pread(o[op->obj], buf, op->len, op->off) <
				0;
		} else {
			tu_fill(buf, op->len, op->seed, op->off);
			r = (int)vems_obj_pwrite(o[op->obj], buf, op->len,
						 op->off, 0);
			r = r == (int)op->len ? 0 : -1;
		}
		if (r != 0)
			_exit(5);
		__atomic_store_n(&op->done, 1, __ATOMIC_SEQ_CST);
	}
	_exit(0);
}

static void
apply(uint8_t *shadow, uint64_t *size, const struct op *op)
{
	if (op->kind == OP_READ)
		return;
	if (op->kind == OP_TRUNC) {
		if (op->off < *size)
			memset(shadow + op->off, 0, *size - op->off);
		*size = op->off;
		return;
	}
	if (op->off > *size)
		memset(shadow + *size, 0, op->off - *size);
	tu_fill(shadow + op->off, op->len, op->seed, op->off);
	if (op->off + op->len > *size)
		*size = op->off + op->len;
}

/* Until the child has started its first operation (a hang guard of 60 s,
 * not a timing verdict: a child that never gets there fails the test). */
static void
wait_for_ops(pid_t pid, struct shared *sh)
{
	for (long spins = 0; __atomic_load_n(&sh->nops, __ATOMIC_SEQ_CST) == 0;
	     spins++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			fail_msg("child ended before its first operation "
				 "(status %#x)",
				 status);
		if (spins > 600000)
			fail_msg("child started no operation in 60 s");
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
}

/* The operation log shared with the children, and the run's seed. */
static struct shared *
shared_log(uint64_t *seed)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	*seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	print_message("seed %llu\n", (unsigned long long)*seed);
	return sh;
}

/* Kills the child after delay_ns, reaps it, reopens the pool and checks
 * its metadata. */
static void
kill_and_reopen(struct tu_pool *tp, pid_t pid, uint64_t delay_ns)
{
	struct timespec ts = {0, (long)delay_ns};
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		fail_msg("child exited with %d before the kill",
			 WEXITSTATUS(status));
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
}

static void
run(uint64_t pmem_size, uint64_t span, unsigned trunc, bool prefill, int n)
{
	struct tu_pool tp;
	SPAN = span;
	trunc_every = trunc;
	tu_create(&tp, "crash", pmem_size, 8 * span, 0);
	struct vems_oid oids[NOBJ];
	uint8_t *shadow[NOBJ], *rd = malloc(SPAN + 1);
	uint64_t size[NOBJ] = {0};
	for (int i = 0; i < NOBJ; i++) {
		oids[i] = (struct vems_oid){1, 0};
		TU_OK(vems_obj_create(tp.pool, &oids[i]));
		shadow[i] = calloc(1, SPAN);
		if (!prefill)
			continue;
		struct vems_obj *o;
		TU_OK(vems_obj_open(tp.pool, oids[i], 0, &o));
		tu_fill(shadow[i], SPAN, (uint64_t)i + 1, 0);
		assert_int_equal(vems_obj_pwrite(o, shadow[i], SPAN, 0, 0),
				 (ssize_t)SPAN);
		size[i] = SPAN;
		vems_obj_close(&o);
	}
	TU_OK(vems_pool_close(&tp.pool));

	uint64_t rng;
	struct shared *sh = shared_log(&rng);
	int inflight_seen = 0;
	for (int it = 0; it < n; it++) {
		sh->nops = 0;
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child(tp.pmem, oids, sh, tu_rand(&rng));
		/*
		 * A random moment: one kill in 8 from before the open on (the
		 * open and its validation take most of the first tens of
		 * ms); the others once the child runs operations, so that
		 * most land inside one (they follow each other at once).
		 */
		long span_ns = 30000000;
		if (tu_rand(&rng) % 8 != 0) {
			wait_for_ops(pid, sh);
			span_ns = 3000000;
		}
		kill_and_reopen(&tp, pid, tu_rand(&rng) % (uint64_t)span_ns);
		uint64_t nops = sh->nops;
		const struct op *open_op = NULL;
		for (uint64_t k = 0; k < nops; k++) {
			if (sh->ops[k].done)
				apply(shadow[sh->ops[k].obj],
				      &size[sh->ops[k].obj], &sh->ops[k]);
			else
				open_op = &sh->ops[k]; /* only the last one */
		}
		inflight_seen += open_op != NULL;
		for (int i = 0; i < NOBJ; i++) {
			struct vems_obj *o;
			struct vems_obj_stat st;
			TU_OK(vems_obj_open(tp.pool, oids[i], VEMS_O_RDONLY,
					    &o));
			TU_OK(vems_obj_stat(o, &st));
			ssize_t got = vems_obj_pread(o, rd, SPAN + 1, 0);
			assert_int_equal(got, (ssize_t)st.size);
			vems_obj_close(&o);
			if (open_op == NULL || open_op->obj != i) {
				assert_int_equal(st.size, size[i]);
				if (memcmp(rd, shadow[i], size[i]) != 0)
					fail_msg("iteration %d: object %d "
						 "differs from its completed "
						 "writes",
						 it, i);
				continue;
			}
			/* the op in flight: each byte old or new */
			uint8_t *after = malloc(SPAN);
			memcpy(after, shadow[i], SPAN);
			uint64_t asize = size[i];
			apply(after, &asize, open_op);
			uint64_t lo = size[i] < asize ? size[i] : asize;
			uint64_t hi = size[i] < asize ? asize : size[i];
			if (st.size < lo || st.size > hi)
				fail_msg("iteration %d: size %llu not in "
					 "[%llu, %llu]",
					 it, (unsigned long long)st.size,
					 (unsigned long long)lo,
					 (unsigned long long)hi);
			for (uint64_t b = 0; b < st.size; b++) {
				uint8_t old = b < size[i] ? shadow[i][b] : 0;
				uint8_t nw = b < asize ? after[b] : 0;
				if (rd[b] != old && rd[b] != nw)
					fail_msg("iteration %d: object %d byte "
						 "%llu is %#x, neither old "
						 "%#x nor new %#x",
						 it, i, (unsigned long long)b,
						 rd[b], old, nw);
			}
			/* what is on media is the truth from now on */
			memcpy(shadow[i], rd, st.size);
			memset(shadow[i] + st.size, 0, SPAN - st.size);
			size[i] = st.size;
			free(after);
		}
		TU_OK(vems_pool_close(&tp.pool));
	}
	struct vems_pool_stats ps;
	TU_OK(vems_pool_open(&tp.pool, tp.pmem, NULL));
	TU_OK(vems_pool_stats(tp.pool, &ps));
	tu_figure("sigkill", "cycles", (unsigned long long)n);
	tu_figure("sigkill", "inflight", (unsigned long long)inflight_seen);
	print_message("%d kills, %d with an operation in flight; "
		      "%llu of %llu extents in the block file at the end\n",
		      n, inflight_seen,
		      (unsigned long long)(ps.extents_block + ps.extents_both),
		      (unsigned long long)(ps.extents_block + ps.extents_both +
					   ps.extents_pmem));
	TU_OK(vems_pool_close(&tp.pool));
	for (int i = 0; i < NOBJ; i++)
		free(shadow[i]);
	free(rd);
	munmap(sh, sizeof(*sh));
	tu_destroy(&tp);
}

/* --- small objects --------------------------------------------------- */

/*
 * Many small objects in a pmem too small for them: the child writes,
 * grows, truncates and reads them, so that they are created and grown
 * inline, moved to extents past the limit, and evicted to the block file
 * when the heap is full (and read back from it); the kill lands anywhere
 * in that.
 */
#define NSMALL 3000
#define SMALL_SPAN (24 * 1024)

static void
small_child(const char *pmem, const struct vems_oid *oids, struct shared *sh,
	    uint64_t seed)
{
	struct vems_pool *pool;
	if (vems_pool_open(&pool, pmem, NULL) != 0)
		_exit(3);
	static uint8_t buf[SMALL_SPAN];
	uint64_t rng = seed;
	for (uint64_t k = 0; k < MAXOPS; k++) {
		struct op *op = &sh->ops[k];
		op->obj = (int)(tu_rand(&rng) % NSMALL);
		uint64_t dice = tu_rand(&rng);
		op->kind = dice % 16 == 0 ? OP_TRUNC
			: dice % 4 == 1	  ? OP_READ
					  : OP_WRITE;
		op->off = tu_rand(&rng) % (dice % 8 == 2 ? SMALL_SPAN : 4000);
		op->len = 1 + tu_rand(&rng) % 3000;
		if (op->off + op->len > SMALL_SPAN)
			op->len = SMALL_SPAN - op->off;
		op->seed = seed * 1000003 + k;
		op->done = 0;
		__atomic_store_n(&sh->nops, k + 1, __ATOMIC_SEQ_CST);
		struct vems_obj *o;
		int r = vems_obj_open(pool, oids[op->obj], 0, &o);
		if (r == 0 && op->kind == OP_TRUNC) {
			r = vems_obj_truncate(o, op->off);
		} else if (r == 0 && op->kind == OP_READ) {
			r = vems_obj_pread(o, buf, op->len, op->off) < 0;
		} else if (r == 0) {
			tu_fill(buf, op->len, op->seed, op->off);
			r = vems_obj_pwrite(o, buf, op->len, op->off, 0) ==
					(ssize_t)op->len
				? 0
				: -1;
		}
		if (r != 0)
			_exit(5);
		vems_obj_close(&o);
		__atomic_store_n(&op->done, 1, __ATOMIC_SEQ_CST);
	}
	_exit(0);
}

/* Object i against its completed operations (and the one in flight,
 * open_op: each byte old or new); adopts what it read. */
static void
small_verify(struct vems_pool *pool, struct vems_oid oid, uint8_t *shadow,
	     uint64_t *size, const struct op *open_op, int it, int i)
{
	static uint8_t rd[SMALL_SPAN + 1], after[SMALL_SPAN];
	struct vems_obj *o;
	struct vems_obj_stat st;
	TU_OK(vems_obj_open(pool, oid, VEMS_O_RDONLY, &o));
	TU_OK(vems_obj_stat(o, &st));
	ssize_t got = vems_obj_pread(o, rd, sizeof(rd), 0);
	assert_int_equal(got, (ssize_t)st.size);
	vems_obj_close(&o);
	memcpy(after, shadow, SMALL_SPAN);
	uint64_t asize = *size;
	if (open_op)
		apply(after, &asize, open_op);
	uint64_t lo = *size < asize ? *size : asize;
	uint64_t hi = *size < asize ? asize : *size;
	if (st.size < lo || st.size > hi)
		fail_msg("iteration %d: small object %d has size %llu, not in "
			 "[%llu, %llu]",
			 it, i, (unsigned long long)st.size,
			 (unsigned long long)lo, (unsigned long long)hi);
	for (uint64_t b = 0; b < st.size; b++) {
		uint8_t old = b < *size ? shadow[b] : 0;
		uint8_t nw = b < asize ? after[b] : 0;
		if (rd[b] != old && rd[b] != nw)
			fail_msg("iteration %d: small object %d byte %llu is "
				 "%#x, neither old %#x nor new %#x",
				 it, i, (unsigned long long)b, rd[b], old, nw);
	}
	memcpy(shadow, rd, st.size);
	memset(shadow + st.size, 0, SMALL_SPAN - st.size);
	*size = st.size;
}

static void
test_sigkill_small_objects(void **state)
{
	(void)state;
	struct tu_pool tp;
	tu_create(&tp, "crashsmall", 16 * MIB, 512 * MIB, 0);
	static struct vems_oid oids[NSMALL];
	static uint64_t size[NSMALL];
	uint8_t *shadow = calloc(NSMALL, SMALL_SPAN);
	assert_non_null(shadow);
	for (int i = 0; i < NSMALL; i++) {
		oids[i] = (struct vems_oid){7, (uint64_t)i + 1};
		TU_OK(vems_obj_create(tp.pool, &oids[i]));
		struct vems_obj *o;
		TU_OK(vems_obj_open(tp.pool, oids[i], 0, &o));
		size[i] = 100 + (uint64_t)i % 5000;
		tu_fill(shadow + (size_t)i * SMALL_SPAN, size[i], (uint64_t)i,
			0);
		assert_int_equal(
			vems_obj_pwrite(o, shadow + (size_t)i * SMALL_SPAN,
					size[i], 0, 0),
			(ssize_t)size[i]);
		vems_obj_close(&o);
	}
	struct vems_pool_stats ps;
	TU_OK(vems_pool_stats(tp.pool, &ps));
	print_message("%d small objects: %llu inline, %llu evicted\n", NSMALL,
		      (unsigned long long)ps.inline_objects,
		      (unsigned long long)ps.inline_evictions);
	/* the premise: pmem could not hold them all inline */
	assert_true(ps.inline_evictions > 0);
	assert_true(ps.inline_objects > 0);
	TU_OK(vems_pool_close(&tp.pool));

	uint64_t rng;
	struct shared *sh = shared_log(&rng);
	/* an open of 3,000 objects per kill: fewer kills than above */
	int n = iterations() / 16 > 2 ? iterations() / 16 : 2;
	int inflight_seen = 0;
	for (int it = 0; it < n; it++) {
		sh->nops = 0;
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			small_child(tp.pmem, oids, sh, tu_rand(&rng));
		wait_for_ops(pid, sh);
		kill_and_reopen(&tp, pid, tu_rand(&rng) % UINT64_C(20000000));
		uint64_t nops = sh->nops;
		const struct op *open_op = NULL;
		for (uint64_t k = 0; k < nops; k++) {
			const struct op *op = &sh->ops[k];
			if (op->done)
				apply(shadow + (size_t)op->obj * SMALL_SPAN,
				      &size[op->obj], op);
			else
				open_op = op; /* only the last one */
		}
		inflight_seen += open_op != NULL;
		for (int i = 0; i < NSMALL; i++)
			small_verify(tp.pool, oids[i],
				     shadow + (size_t)i * SMALL_SPAN, &size[i],
				     open_op && open_op->obj == i ? open_op
								  : NULL,
				     it, i);
		TU_OK(vems_pool_close(&tp.pool));
	}
	TU_OK(vems_pool_open(&tp.pool, tp.pmem, NULL));
	TU_OK(vems_pool_stats(tp.pool, &ps));
	print_message("%d kills, %d inside an operation; then %llu inline\n", n,
		      inflight_seen, (unsigned long long)ps.inline_objects);
	assert_true(inflight_seen > 0);
	munmap(sh, sizeof(*sh));
	free(shadow);
	tu_destroy(&tp);
}

static void
test_sigkill_writer(void **state)
{
	(void)state;
	const char *small = getenv("VEMS_CRASH_SMALL_PMEM");
	run(small ? 16 * MIB : 64 * MIB, 3 * MIB, 40, false, iterations());
}

/*
 * Three objects of up to 16 MiB over 16 MiB of pmem: after the first
 * dozen iterations most data lives in the block file. The pool is
 * prefilled so that the kills start with spilling already under way.
 */
static void
test_sigkill_spilling(void **state)
{
	(void)state;
	run(16 * MIB, SPAN_MAX, 400, true, iterations());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill_writer),
		cmocka_unit_test(test_sigkill_spilling),
		cmocka_unit_test(test_sigkill_small_objects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
