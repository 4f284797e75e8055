/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_faultinj.c -- every call the block tier makes, failed in turn
 *
 * design rule 8: a transfer counts as done only when its completion
 * says so, and a resource that cannot be obtained fails the operation that
 * needed it. The hook of lib/backend.h (vems__fault_set) sees every call
 * the block tier makes: ring setup ('i'), submit ('s'), the wait for a
 * completion ('c'), each completion ('r', 'w', 'f' for a sync) and the
 * bounce buffers of reads ('m'). The first tests are regressions for
 * defects found by review, each one a scenario that used to lose an
 * acknowledged write, hang, or reuse a ring in an unknown state. The last
 * one enumerates: for each call kind and each error kind it fails the N-th
 * such call of a workload larger than pmem, and checks that every call
 * either succeeded or returned a clear error and that every acknowledged
 * write reads back exactly, also after reopen, with a clean check.
 *
 * Pools run without the background spiller (low watermark 0): every block
 * transfer happens in the test's thread, so "the N-th call" is
 * deterministic. A SIGALRM watchdog turns a hang into a failure.
 */

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "testutil.h"
#include "vems_internal.h"

#define MIB (UINT64_C(1) << 20)
#define PMEM_SIZE (16 * MIB)
#define BLOCK_SIZE (64 * MIB)
#define INJ_SHORT 1 /* not an errno: a short transfer or submit */

/* --- content --------------------------------------------------------- */

static inline uint64_t
word_at(uint64_t seed, uint64_t w)
{
	uint64_t x = w * UINT64_C(0x9e3779b97f4a7c15) ^ seed;
	x ^= x >> 29;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 32;
	return x;
}

/* Deterministic bytes for object offset off, a word at a time. */
static void
fill(uint8_t *b, size_t len, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t pos = off + i;
		if ((pos & 7) == 0 && len - i >= 8) {
			uint64_t w = word_at(seed, pos >> 3);
			memcpy(b + i, &w, 8);
			i += 7;
			continue;
		}
		b[i] = (uint8_t)(word_at(seed, pos >> 3) >> ((pos & 7) * 8));
	}
}

/* --- the hook -------------------------------------------------------- */

struct inj {
	char op;	/* the call kind failed; 0: count only */
	int err;	/* -errno, or INJ_SHORT */
	unsigned nth;	/* which call of that kind (1-based) */
	bool persist;	/* from the nth on, every one */
	unsigned fired; /* calls changed */
	unsigned seen[128];
};

static int
inj_fn(void *arg, char op, int res, uint32_t len)
{
	struct inj *j = arg;
	unsigned k = ++j->seen[(unsigned char)op & 127];
	if (j->op != op || k < j->nth || (!j->persist && k != j->nth))
		return res;
	if (j->err != INJ_SHORT) {
		j->fired++;
		return j->err;
	}
	/* short: a completion of half the bytes, a submit of half of what
	 * is queued; calls without a length cannot be short */
	if ((op == 'r' || op == 'w') && res == (int)len && len >= 2) {
		j->fired++;
		return (int)(len / 2);
	}
	if (op == 's' && res >= 1) {
		j->fired++;
		return res / 2;
	}
	return res;
}

static void
inj_set(struct inj *j, char op, int err, unsigned nth)
{
	memset(j, 0, sizeof(*j));
	j->op = op;
	j->err = err;
	j->nth = nth;
	vems__fault_set(inj_fn, j);
}

/* --- watchdog -------------------------------------------------------- */

static const char *volatile watch_what = "";

static void
on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test_faultinj: hang (no progress in "
				  "the watchdog's time) in: ";
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, watch_what, strlen(watch_what));
	(void)!write(2, "\n", 1);
	_exit(1);
}

/* Arms the watchdog: a hang in what follows fails the test. */
static void
watch(const char *what, unsigned seconds)
{
	watch_what = what;
	alarm(seconds);
}

/* --- fixture ---------------------------------------------------------- */

struct fx {
	struct tu_pool tp;
	struct vems_config *cfg;
	struct vems_oid oid;
	struct vems_obj *o;
	uint64_t es, frames;
	uint8_t *buf, *rd;
};

static void
fx_create(struct fx *fx, const char *tag)
{
	memset(fx, 0, sizeof(*fx));
	tu_paths(&fx->tp, tag);
	TU_OK(vems_config_new(&fx->cfg));
	TU_OK(vems_config_set_pmem_size(fx->cfg, PMEM_SIZE));
	TU_OK(vems_config_set_block_path(fx->cfg, fx->tp.block));
	TU_OK(vems_config_set_block_size(fx->cfg, BLOCK_SIZE));
	TU_OK(vems_config_set_low_watermark(fx->cfg, 0));
	TU_OK(vems_pool_create(&fx->tp.pool, fx->tp.pmem, fx->cfg));
	struct vems_pool_info info;
	TU_OK(vems_pool_info(fx->tp.pool, &info));
	fx->es = info.extent_size;
	fx->frames = info.pmem_extents;
	assert_true(fx->frames > 8);
	assert_true(info.block_extents >= 2 * fx->frames);
	fx->oid = (struct vems_oid){3, 0};
	TU_OK(vems_obj_create(fx->tp.pool, &fx->oid));
	TU_OK(vems_obj_open(fx->tp.pool, fx->oid, 0, &fx->o));
	assert_int_equal(posix_memalign((void **)&fx->buf, 4096, 4 * fx->es),
			 0);
	assert_int_equal(posix_memalign((void **)&fx->rd, 4096, 4 * fx->es), 0);
}

static void
fx_destroy(struct fx *fx)
{
	vems__fault_set(NULL, NULL);
	vems_obj_close(&fx->o);
	tu_destroy(&fx->tp);
	vems_config_delete(&fx->cfg);
	free(fx->buf);
	free(fx->rd);
}

static struct vems_pool_stats
stats(struct fx *fx)
{
	struct vems_pool_stats s;
	TU_OK(vems_pool_stats(fx->tp.pool, &s));
	return s;
}

/* Extents [0, n) whole, content seed + extent. */
static void
write_exts(struct fx *fx, uint64_t n, uint64_t seed)
{
	for (uint64_t e = 0; e < n; e++) {
		fill(fx->buf, fx->es, seed + e, e * fx->es);
		ssize_t r =
			vems_obj_pwrite(fx->o, fx->buf, fx->es, e * fx->es, 0);
		if (r != (ssize_t)fx->es)
			fail_msg("write of extent %" PRIu64 " = %zd: %s", e, r,
				 vems_errormsg());
	}
}

/* Extent e reads back as written by write_exts (or fails the test). */
static void
expect_ext(struct fx *fx, uint64_t e, uint64_t seed, const char *when)
{
	/* a check, not a use: it brings nothing back into pmem, so it never
	 * evicts (a read that promotes may spill a victim to make room) */
	vems__read_no_promote = true;
	ssize_t r = vems_obj_pread(fx->o, fx->rd, fx->es, e * fx->es);
	vems__read_no_promote = false;
	if (r != (ssize_t)fx->es)
		fail_msg("%s: extent %" PRIu64 " reads %zd (%s): an "
			 "acknowledged write is lost",
			 when, e, r, vems_errormsg());
	fill(fx->buf, fx->es, seed + e, e * fx->es);
	if (memcmp(fx->rd, fx->buf, fx->es) != 0)
		fail_msg("%s: extent %" PRIu64 " differs", when, e);
}

/* An extent of the object in state st, from the entry table. */
static bool
find_state(struct fx *fx, uint8_t st, uint32_t *ext)
{
	struct vems_pool *p = fx->tp.pool;
	for (uint32_t i = 0; i < p->nentries; i++) {
		const struct vems_entry *e = &p->entries[i];
		if (e->serial != 0 && e->state == st) {
			*ext = e->ext_index;
			return true;
		}
	}
	return false;
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

struct reports {
	int n;
	char text[4096];
};

static void
report_fn(const char *msg, void *arg)
{
	struct reports *r = arg;
	size_t used = strlen(r->text);
	r->n++;
	snprintf(r->text + used, sizeof(r->text) - used, "%s\n", msg);
}

/* Reopens the pool and requires a clean check. */
static void
reopen_checked(struct fx *fx, const char *when)
{
	vems__fault_set(NULL, NULL);
	TU_OK(vems_obj_close(&fx->o));
	TU_OK(vems_pool_close(&fx->tp.pool));
	TU_OK(vems_pool_open(&fx->tp.pool, fx->tp.pmem, fx->cfg));
	struct reports r = {0};
	int n = vems_pool_check(fx->tp.pool, report_fn, &r);
	if (n != 0)
		fail_msg("%s: vems_pool_check after reopen = %d:\n%s", when, n,
			 r.text);
	TU_OK(vems_obj_open(fx->tp.pool, fx->oid, 0, &fx->o));
}

/* --- 1. no ring: the spill must fail, not commit ---------------------- */

/*
 * A spill whose ring cannot be set up (here: the cached one is busy and a
 * new one fails with EMFILE) used to leave every transfer's result at the
 * 0 its victim's preparation set, commit the extents to slots never
 * written and report the write as done: later reads fail their checksum.
 */
static void
test_spill_without_ring(void **state)
{
	(void)state;
	struct fx fx;
	fx_create(&fx, "fi-noring");
	write_exts(&fx, fx.frames, 100);
	struct vems_pool *p = fx.tp.pool;
	struct vems_pool_stats s0 = stats(&fx);

	/* the idle ring is ours: the spill needs a new one */
	struct vems_bq *held;
	TU_OK(p->be->ops->queue_get(p->be, 32, &held));
	struct inj j;
	inj_set(&j, 'i', -EMFILE, 1);
	j.persist = true;
	fill(fx.buf, fx.es, 100 + fx.frames, fx.frames * fx.es);
	ssize_t r = vems_obj_pwrite(fx.o, fx.buf, fx.es, fx.frames * fx.es, 0);
	vems__fault_set(NULL, NULL);
	p->be->ops->queue_put(p->be, held);
	assert_true(j.fired > 0);
	struct vems_pool_stats s1 = stats(&fx);
	if (r >= 0)
		fail_msg("a write that needed a spill without a ring returned "
			 "%zd (%" PRIu64 " spills committed meanwhile)",
			 r, s1.spills - s0.spills);
	assert_true(vems_errormsg()[0] != '\0');
	assert_int_equal(s1.spills, s0.spills);
	for (uint64_t e = 0; e < fx.frames; e++)
		expect_ext(&fx, e, 100, "after the failed spill");
	reopen_checked(&fx, "no ring");
	for (uint64_t e = 0; e < fx.frames; e++)
		expect_ext(&fx, e, 100, "after reopen");
	fx_destroy(&fx);
}

/* --- 2. a failed submit: the ring is not reused ----------------------- */

/*
 * io_uring_submit fails for a spill's writes: those writes are still in
 * the SQ, and the next user of a cached ring would start them with its own
 * (a reused frame onto a reused slot, completions naming a dead stack
 * frame's transfers). The next read must start only its own read.
 */
static void
test_submit_error_not_reused(void **state)
{
	(void)state;
	struct fx fx;
	fx_create(&fx, "fi-subm");
	write_exts(&fx, fx.frames + 2, 200);
	uint32_t bext = 0;
	assert_true(find_state(&fx, VEMS_ES_BLOCK, &bext));

	struct inj j;
	inj_set(&j, 's', -EIO, 1);
	fill(fx.buf, fx.es, 999, (fx.frames + 2) * fx.es);
	ssize_t r = vems_obj_pwrite(fx.o, fx.buf, fx.es,
				    (fx.frames + 2) * fx.es, 0);
	assert_int_equal(j.fired, 1);
	assert_true(r < 0);
	/* count only: a read of a spilled extent, one transfer */
	inj_set(&j, 0, 0, 0);
	expect_ext(&fx, bext, 200, "the read after a failed submit");
	if (j.seen['w'] != 0)
		fail_msg("a read after a failed submit started %u stale "
			 "block writes",
			 j.seen['w']);
	assert_int_equal(j.seen['r'], 1);
	reopen_checked(&fx, "submit error");
	for (uint64_t e = 0; e < fx.frames + 2; e++)
		expect_ext(&fx, e, 200, "after reopen");
	fx_destroy(&fx);
}

/* --- 3. a short submit: the rest is resubmitted ----------------------- */

/*
 * The kernel takes only part of a batch (io_uring_submit returns fewer
 * than queued). That used to count as success: the rest stayed queued and
 * the reap waited for completions that could never come, with a writer's
 * object lock held.
 */
static void
test_short_submit(void **state)
{
	(void)state;
	struct fx fx;
	fx_create(&fx, "fi-short");
	write_exts(&fx, fx.frames, 300);
	struct inj j;
	inj_set(&j, 's', INJ_SHORT, 1);
	/* four new extents: a spill of four, one submit */
	fill(fx.buf, 4 * fx.es, 777, fx.frames * fx.es);
	watch("a spill after a short submit", 60);
	ssize_t r =
		vems_obj_pwrite(fx.o, fx.buf, 4 * fx.es, fx.frames * fx.es, 0);
	alarm(0);
	vems__fault_set(NULL, NULL);
	assert_int_equal(j.fired, 1);
	if (r != (ssize_t)(4 * fx.es))
		fail_msg("write after a short submit = %zd: %s", r,
			 vems_errormsg());
	for (uint64_t e = 0; e < fx.frames; e++)
		expect_ext(&fx, e, 300, "after a short submit");
	reopen_checked(&fx, "short submit");
	for (uint64_t e = 0; e < fx.frames; e++)
		expect_ext(&fx, e, 300, "after reopen");
	fx_destroy(&fx);
}

/* --- 4. a failed wait: nothing left in flight ------------------------- */

/*
 * The wait for a completion fails while a read is in flight. The call used
 * to return at once, its buffer released with the kernel still owning it,
 * and the ring leaked. Now every submitted transfer is waited for before
 * the call returns (the hook sees its completion) and the ring is
 * destroyed, not leaked or cached.
 */
static void
test_wait_error_drains(void **state)
{
	(void)state;
	struct fx fx;
	fx_create(&fx, "fi-wait");
	write_exts(&fx, fx.frames + 2, 400);
	uint32_t bext = 0;
	assert_true(find_state(&fx, VEMS_ES_BLOCK, &bext));
	int fds0 = open_fds();
	/* -EAGAIN too: a wait that "found nothing" is no completion */
	static const int werr[] = {-EIO, -EAGAIN, -EBUSY, -ENOMEM};
	for (int round = 0; round < 8; round++) {
		struct inj j;
		inj_set(&j, 'c', werr[round % 4], 1);
		/* whole and aligned: straight into our buffer; no promotion
		 * (which could spill a victim first, another wait) */
		vems__read_no_promote = true;
		ssize_t r = vems_obj_pread(fx.o, fx.rd, fx.es, bext * fx.es);
		vems__read_no_promote = false;
		vems__fault_set(NULL, NULL);
		assert_int_equal(j.fired, 1);
		assert_true(r == (ssize_t)fx.es || r < 0);
		if (j.seen['r'] != 1)
			fail_msg("round %d (%s): the read returned %zd with "
				 "its transfer still in flight (%u "
				 "completions seen)",
				 round, strerror(-werr[round % 4]), r,
				 j.seen['r']);
		expect_ext(&fx, bext, 400, "after a failed wait");
	}
	int fds1 = open_fds();
	if (fds1 > fds0)
		fail_msg("%d rings leaked by failed waits", fds1 - fds0);
	reopen_checked(&fx, "wait error");
	fx_destroy(&fx);
}

/* Closes the pool and opens it again with its backend wrapped. */
static int
reopen_wrapped(struct fx *fx, int (*wrap)(struct vems_backend **))
{
	TU_OK(vems_obj_close(&fx->o));
	TU_OK(vems_pool_close(&fx->tp.pool));
	vems__backend_wrap = wrap;
	int r = vems_pool_open(&fx->tp.pool, fx->tp.pmem, fx->cfg);
	vems__backend_wrap = NULL;
	return r;
}

/*
 * A backend without drain (ops V1) could not collect what a failed ring
 * has in flight: open refuses it rather than calling a null drain later.
 */
static struct vems_backend_ops v1_ops;

static int
wrap_v1(struct vems_backend **bp)
{
	v1_ops = *(*bp)->ops;
	v1_ops.version = VEMS_BACKEND_OPS_V1;
	v1_ops.drain = NULL;
	(*bp)->ops = &v1_ops;
	return 0;
}

static void
test_backend_without_drain(void **state)
{
	(void)state;
	struct fx fx;
	fx_create(&fx, "fi-v1");
	int r = reopen_wrapped(&fx, wrap_v1);
	assert_int_equal(r, -EINVAL);
	assert_null(fx.tp.pool);
	assert_non_null(strstr(vems_errormsg(), "drain"));
	TU_OK(vems_pool_open(&fx.tp.pool, fx.tp.pmem, fx.cfg));
	TU_OK(vems_obj_open(fx.tp.pool, fx.oid, 0, &fx.o));
	fx_destroy(&fx);
}

/*
 * The drain of a broken ring gives up (its transfers cannot be waited
 * for): a fetch into a frame then fails, that frame is never handed out
 * again while the pool is open (the kernel may still write it), nothing
 * is committed, and the next open rebuilds the free frames and checks
 * clean with every acknowledged byte.
 */
static struct vems_backend_ops giveup_ops;
static const struct vems_backend_ops *giveup_real;
static _Atomic bool giveup_armed;

static int
giveup_reap(struct vems_bq *q, struct vems_bio **out, size_t max, bool wait)
{
	if (atomic_load(&giveup_armed))
		return -EIO; /* the ring failed: nothing reaped */
	return giveup_real->reap(q, out, max, wait);
}

static int
giveup_drain(struct vems_bq *q, struct vems_bio **out, size_t max)
{
	if (atomic_load(&giveup_armed))
		return -ETIMEDOUT; /* what is in flight cannot be waited for */
	return giveup_real->drain(q, out, max);
}

static int
wrap_giveup(struct vems_backend **bp)
{
	giveup_real = (*bp)->ops;
	giveup_ops = *giveup_real;
	giveup_ops.reap = giveup_reap;
	giveup_ops.drain = giveup_drain;
	(*bp)->ops = &giveup_ops;
	return 0;
}

static void
test_drain_gives_up(void **state)
{
	(void)state;
	struct fx fx;
	fx_create(&fx, "fi-giveup");
	write_exts(&fx, fx.frames + 2, 800);
	uint32_t bext = 0;
	assert_true(find_state(&fx, VEMS_ES_BLOCK, &bext));
	TU_OK(reopen_wrapped(&fx, wrap_giveup));
	TU_OK(vems_obj_open(fx.tp.pool, fx.oid, 0, &fx.o));
	struct vems_pool *p = fx.tp.pool;

	/* pmem is full: a partial overwrite of a spilled extent spills
	 * first, and the spill's writes are given up: nothing moves */
	atomic_store(&giveup_armed, true);
	memset(fx.buf, 0x5a, 100);
	ssize_t r = vems_obj_pwrite(fx.o, fx.buf, 100, bext * fx.es + 10, 0);
	atomic_store(&giveup_armed, false);
	if (r >= 0)
		fail_msg("the write returned %zd after its spill was lost", r);
	if (strstr(vems_errormsg(), "kept out of use") == NULL)
		fail_msg("no word of the lost transfers: %s", vems_errormsg());
	for (uint64_t e = 0; e < fx.frames + 2; e++)
		expect_ext(&fx, e, 800, "after a lost spill");
	/* with frames free (the last 4 extents cut), the same write reads
	 * the slot into a frame first, and that read is given up */
	TU_OK(vems_obj_truncate(fx.o, (fx.frames - 2) * fx.es));
	atomic_store(&giveup_armed, true);
	r = vems_obj_pwrite(fx.o, fx.buf, 100, bext * fx.es + 10, 0);
	atomic_store(&giveup_armed, false);
	if (r >= 0)
		fail_msg("the write returned %zd after its fetch was lost", r);
	if (strstr(vems_errormsg(), "kept out of use") == NULL)
		fail_msg("no word of the lost transfer: %s", vems_errormsg());
	uint32_t lost = 0, lf = 0;
	for (uint32_t f = 0; f < p->nframes; f++)
		if (p->fr[f].lost)
			lost++, lf = f;
	assert_int_equal(lost, 1);
	for (uint32_t i = 0; i < p->free_frames.n; i++)
		assert_int_not_equal(p->free_frames.v[i], lf);
	/* pmem reused through and through: never the lost frame */
	write_exts(&fx, fx.frames + 2, 900);
	for (uint32_t i = 0; i < p->nentries; i++) {
		const struct vems_entry *e = &p->entries[i];
		if ((e->state == VEMS_ES_PMEM || e->state == VEMS_ES_BOTH) &&
		    e->frame == lf)
			fail_msg("entry %u maps the frame a lost read may "
				 "still write",
				 i);
	}
	reopen_checked(&fx, "drain gave up");
	for (uint64_t e = 0; e < fx.frames + 2; e++)
		expect_ext(&fx, e, 900, "after reopen");
	fx_destroy(&fx);
}

/* --- 5. a sync error consumed by another batch ------------------------- */

/*
 * In buffered mode the kernel reports a writeback error to whichever sync
 * of the file asks first. Batch A's writes are done; before A's sync, batch
 * B runs whole and its sync fails (it may have consumed A's error); A's own
 * sync then succeeds. A must not commit on that.
 */
struct other {
	struct vems_pool *p;
	int phase;   /* 0: wait for A's write, 1: B running, 2: done */
	int b_ret;   /* B's result */
	void *b_buf; /* B's extent */
};

static int
other_fn(void *arg, char op, int res, uint32_t len)
{
	(void)len;
	struct other *o = arg;
	if (o->phase == 0 && op == 'w') {
		o->phase = 1;
		/* a free slot popped last: nobody else uses it here */
		struct vems_pool *p = o->p;
		struct vems_bio b = {
			.buf = o->b_buf,
			.off = vems__slot_off(p, p->free_slots.v[0]),
			.len = (uint32_t)p->extent_size,
			.write = true,
			.res = -EINPROGRESS};
		struct vems_bio *v = &b;
		o->b_ret = vems__bio_run(p, &v, 1, true);
		o->phase = 2;
		return res;
	}
	if (o->phase == 1 && op == 'f')
		return -EIO; /* B's sync */
	return res;
}

static void
test_sync_error_other_batch(void **state)
{
	(void)state;
	struct fx fx;
	fx_create(&fx, "fi-sync2");
	write_exts(&fx, fx.frames, 500);
	struct vems_pool *p = fx.tp.pool;
	if (strcmp(p->be->sync_mode, "fdatasync") != 0) {
		fx_destroy(&fx);
		skip();
	}
	struct vems_pool_stats s0 = stats(&fx);
	struct other o = {.p = p};
	assert_int_equal(posix_memalign(&o.b_buf, 4096, fx.es), 0);
	memset(o.b_buf, 0x5a, fx.es);
	vems__fault_set(other_fn, &o);
	fill(fx.buf, fx.es, 500 + fx.frames, fx.frames * fx.es);
	ssize_t r = vems_obj_pwrite(fx.o, fx.buf, fx.es, fx.frames * fx.es, 0);
	vems__fault_set(NULL, NULL);
	free(o.b_buf);
	assert_int_equal(o.phase, 2);
	assert_int_equal(o.b_ret, -EIO);
	struct vems_pool_stats s1 = stats(&fx);
	if (s1.spills != s0.spills)
		fail_msg("batch A committed %" PRIu64 " spills although a "
			 "sync failed during its lifetime (write = %zd)",
			 s1.spills - s0.spills, r);
	assert_true(r < 0);
	for (uint64_t e = 0; e < fx.frames; e++)
		expect_ext(&fx, e, 500, "after the other batch's failure");
	reopen_checked(&fx, "other batch");
	fx_destroy(&fx);
}

/* --- 6. the async API after ring errors ------------------------------- */

/*
 * A context's ring whose submit failed still held that read in its SQ:
 * the next read started it too (its sub freed already). And a failed wait
 * must not release a read's buffer in flight.
 */
static void
test_aio_ring_errors(void **state)
{
	(void)state;
	struct fx fx;
	fx_create(&fx, "fi-aio");
	write_exts(&fx, fx.frames + 4, 600);
	uint32_t bext = 0;
	assert_true(find_state(&fx, VEMS_ES_BLOCK, &bext));
	struct vems_aio_ctx *c;
	TU_OK(vems_aio_ctx_new(fx.tp.pool, 8, &c));
	static const char ops[] = {'s', 'c', 'm', 'r'};
	for (size_t k = 0; k < sizeof(ops); k++) {
		struct inj j;
		inj_set(&j, ops[k], -EIO, 1);
		/* unaligned: through a bounce buffer */
		struct vems_aio a = {.obj = fx.o,
				     .op = VEMS_AIO_READ,
				     .buf = fx.rd + 1,
				     .len = (size_t)fx.es - 1,
				     .off = bext * fx.es + 1};
		struct vems_aio *v = &a, *done[1];
		watch("an aio read after a ring error", 60);
		assert_int_equal(vems_aio_submit(c, &v, 1), 1);
		int n = vems_aio_wait(c, done, 1, 1, -1);
		if (n < 0) /* the wait's own failure: the request is still
			      ours to collect, now with the hook off */
			n = vems_aio_wait(c, done, 1, 1, -1);
		alarm(0);
		assert_int_equal(n, 1);
		assert_true(done[0] == &a);
		assert_true(a.result == (ssize_t)fx.es - 1 || a.result < 0);
		/* count only: the next read starts one transfer */
		inj_set(&j, 0, 0, 0);
		struct vems_aio b = {.obj = fx.o,
				     .op = VEMS_AIO_READ,
				     .buf = fx.rd,
				     .len = (size_t)fx.es,
				     .off = bext * fx.es};
		v = &b;
		watch("the aio read after", 60);
		assert_int_equal(vems_aio_submit(c, &v, 1), 1);
		assert_int_equal(vems_aio_wait(c, done, 1, 1, -1), 1);
		alarm(0);
		vems__fault_set(NULL, NULL);
		if (b.result != (ssize_t)fx.es)
			fail_msg("op %c: the aio read after = %zd", ops[k],
				 b.result);
		fill(fx.buf, fx.es, 600 + bext, bext * fx.es);
		assert_memory_equal(fx.rd, fx.buf, fx.es);
		if (j.seen['r'] > 1)
			fail_msg("op %c: the next aio read started %u "
				 "transfers (stale ones of a failed ring)",
				 ops[k], j.seen['r']);
	}
	vems_aio_ctx_delete(&c);
	reopen_checked(&fx, "aio");
	fx_destroy(&fx);
}

/* --- 7. every call, every error -------------------------------------- */

/*
 * The workload (one object, 1.5 x pmem): sequential writes that spill,
 * partial overwrites of spilled extents (fetch, read-modify-write), whole
 * and unaligned reads of spilled extents (into the caller's buffer and
 * through bounce buffers), a multi-extent write, and async reads.
 */
#define MAX_ACKED 128

struct run {
	struct fx *fx;
	struct inj *j; /* this run's hook */
	struct {
		uint64_t off, len;
	} ack[MAX_ACKED]; /* this run's acknowledged writes */
	unsigned nack;
	uint8_t *shadow, *tmp;
	uint64_t size, span;
	int injected; /* the error the run injects */
	unsigned calls, failures, acked, lost;
	char desc[96];
};

static bool
allowed(struct run *u, long long r)
{
	return r == u->injected || r == -EIO || r == -ENOMEM || r == -ENOSPC ||
		r == -EAGAIN || r == -EMFILE;
}

static void
op_failed(struct run *u, const char *what, long long r)
{
	if (!allowed(u, r))
		fail_msg("%s: %s = %lld (%s): %s", u->desc, what, r,
			 vems_strerror((int)r), vems_errormsg());
	if (vems_errormsg()[0] == '\0')
		fail_msg("%s: %s = %lld without a sentence", u->desc, what, r);
	u->failures++;
}

/*
 * A write of [off, off+len) failed: the size is unchanged, bytes outside
 * the range are unchanged, bytes inside are old or new; what is there
 * becomes the truth.
 */
static void
settle(struct run *u, uint64_t off, size_t len, const uint8_t *nw)
{
	struct fx *fx = u->fx;
	vems__fault_set(NULL, NULL); /* hook off while we look */
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(fx->o, &st));
	if (st.size != u->size)
		fail_msg("%s: a failed write changed the size", u->desc);
	ssize_t got = vems_obj_pread(fx->o, u->tmp, u->size, 0);
	if (got != (ssize_t)u->size)
		fail_msg("%s: read after a failed write = %zd: %s", u->desc,
			 got, vems_errormsg());
	uint64_t end = off + len < u->size ? off + len : u->size;
	uint64_t a = off < u->size ? off : u->size;
	if (memcmp(u->tmp, u->shadow, a) != 0 ||
	    memcmp(u->tmp + end, u->shadow + end, u->size - end) != 0)
		fail_msg("%s: a failed write changed bytes outside its range",
			 u->desc);
	for (uint64_t b = a; b < end; b++)
		if (u->tmp[b] != u->shadow[b] && u->tmp[b] != nw[b - off])
			fail_msg("%s: byte %" PRIu64 " neither old nor new",
				 u->desc, b);
	memcpy(u->shadow + a, u->tmp + a, end - a);
	vems__fault_set(inj_fn, u->j);
}

static void
do_write(struct run *u, uint64_t off, size_t len, uint64_t seed)
{
	struct fx *fx = u->fx;
	uint8_t *b = malloc(len);
	assert_non_null(b);
	fill(b, len, seed, off);
	u->calls++;
	ssize_t r = vems_obj_pwrite(fx->o, b, len, off, 0);
	if (r == (ssize_t)len) {
		if (off > u->size)
			memset(u->shadow + u->size, 0, off - u->size);
		memcpy(u->shadow + off, b, len);
		if (off + len > u->size)
			u->size = off + len;
		u->acked++;
		assert_true(u->nack < MAX_ACKED);
		u->ack[u->nack].off = off;
		u->ack[u->nack++].len = len;
	} else if (r >= 0) {
		fail_msg("%s: short write %zd of %zu", u->desc, r, len);
	} else {
		op_failed(u, "pwrite", r);
		settle(u, off, len, b);
	}
	free(b);
}

static void
do_read(struct run *u, uint64_t off, size_t len, bool aligned)
{
	struct fx *fx = u->fx;
	uint8_t *b = aligned ? u->tmp : u->tmp + 1;
	u->calls++;
	ssize_t r = vems_obj_pread(fx->o, b, len, off);
	if (r < 0) {
		op_failed(u, "pread", r);
		return;
	}
	uint64_t want = off >= u->size ? 0
		: u->size - off < len  ? u->size - off
				       : len;
	if (r != (ssize_t)want || memcmp(b, u->shadow + off, want) != 0)
		fail_msg("%s: pread of %zu at %" PRIu64 " = %zd, wrong bytes",
			 u->desc, len, off, r);
}

static void
do_aio(struct run *u, const uint64_t *offs, size_t n)
{
	struct fx *fx = u->fx;
	struct vems_aio_ctx *c;
	u->calls++;
	int ret = vems_aio_ctx_new(fx->tp.pool, 8, &c);
	if (ret < 0) {
		op_failed(u, "vems_aio_ctx_new", ret);
		return;
	}
	struct vems_aio a[4], *v[4];
	uint8_t *bufs = malloc(4 * fx->es);
	assert_non_null(bufs);
	assert_true(n <= 4);
	for (size_t i = 0; i < n; i++) {
		/* odd ones unaligned: bounce buffers */
		a[i] = (struct vems_aio){.obj = fx->o,
					 .op = VEMS_AIO_READ,
					 .buf = bufs + i * fx->es + (i & 1),
					 .len = (size_t)fx->es - (i & 1),
					 .off = offs[i]};
		v[i] = &a[i];
	}
	int k = vems_aio_submit(c, v, n);
	if (k < 0)
		fail_msg("%s: vems_aio_submit = %d", u->desc, k);
	assert_int_equal(k, (int)n);
	size_t got = 0;
	struct vems_aio *done[4];
	for (int tries = 0; got < n && tries < 8; tries++) {
		int w = vems_aio_wait(c, done, 1, n - got, -1);
		if (w < 0) {
			op_failed(u, "vems_aio_wait", w);
			continue;
		}
		got += (size_t)w;
	}
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		if (a[i].result < 0) {
			op_failed(u, "aio read", a[i].result);
			continue;
		}
		uint64_t want = a[i].off >= u->size	? 0
			: u->size - a[i].off < a[i].len ? u->size - a[i].off
							: a[i].len;
		if (a[i].result != (ssize_t)want ||
		    memcmp(a[i].buf, u->shadow + a[i].off, want) != 0)
			fail_msg("%s: aio read %zu: wrong bytes", u->desc, i);
	}
	vems_aio_ctx_delete(&c);
	free(bufs);
}

static void
workload(struct run *u)
{
	struct fx *fx = u->fx;
	uint64_t es = fx->es, n = fx->frames + fx->frames / 2;
	/* sequential, 4 extents a call: pmem fills, then spills */
	for (uint64_t e = 0; e < n; e += 4)
		do_write(u, e * es, (size_t)(4 * es), 10 + e);
	/* partial overwrites of the oldest (spilled): fetches */
	do_write(u, 1 * es + 100, 1000, 71);
	do_write(u, 3 * es + es - 10, 20, 72); /* across two extents */
	/* reads of spilled extents: whole into our buffer, unaligned */
	do_read(u, 5 * es, (size_t)es, true);
	do_read(u, 6 * es + 7, (size_t)(2 * es), false);
	do_read(u, 0, (size_t)(10 * es), true);
	/* async reads of spilled extents */
	uint64_t offs[3] = {8 * es, 9 * es + 3, 11 * es};
	do_aio(u, offs, 3);
	/* a write over spilled and resident extents at once */
	do_write(u, 12 * es + 5, (size_t)(3 * es), 73);
	do_read(u, 12 * es, (size_t)(4 * es), false);
}

/* Every acknowledged byte reads back; counts the writes that do not. */
static void
verify(struct run *u, const char *when)
{
	struct fx *fx = u->fx;
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(fx->o, &st));
	if (st.size != u->size)
		fail_msg("%s %s: size %" PRIu64 ", acknowledged %" PRIu64,
			 u->desc, when, st.size, u->size);
	ssize_t got = vems_obj_pread(fx->o, u->tmp, u->size, 0);
	if (got != (ssize_t)u->size)
		memset(u->tmp, 0xee, u->size); /* unreadable: all lost */
	unsigned lost = 0;
	for (unsigned i = 0; i < u->nack; i++)
		lost += memcmp(u->tmp + u->ack[i].off,
			       u->shadow + u->ack[i].off, u->ack[i].len) != 0;
	/* the shadow holds every acknowledged byte, later ones on top */
	if (lost == 0 && memcmp(u->tmp, u->shadow, u->size) != 0)
		lost = 1;
	if (lost && u->lost < 5)
		print_error("%s %s: read back %zd (%s): %u acknowledged "
			    "writes lost\n",
			    u->desc, when, got, got < 0 ? vems_errormsg() : "",
			    lost);
	u->lost += lost;
}

static const char kinds[] = {'i', 's', 'c', 'w', 'r', 'f', 'm'};
static const int errs[] = {-EIO, -ENOSPC, -EAGAIN, -EMFILE, -ENOMEM, INJ_SHORT};

/* Which N to try for a call made `count` times: all up to cap, else the
 * first half of cap and the rest spread evenly over what follows. */
static unsigned
pick_nth(unsigned i, unsigned count, unsigned cap)
{
	if (count <= cap)
		return i + 1;
	unsigned h = cap / 2;
	if (i < h)
		return i + 1;
	return h + 1 + (unsigned)((uint64_t)(i - h) * (count - h) / (cap - h));
}

static unsigned
cap(void)
{
	const char *e = getenv("VEMS_FAULTINJ_CAP");
	if (e && atoi(e) > 0)
		return (unsigned)atoi(e);
	return 12;
}

static void
one_run(struct run *u, char kind, int err, unsigned nth, struct inj *j)
{
	struct fx *fx = u->fx;
	fx_create(fx, "fi-enum");
	u->size = 0;
	u->nack = 0;
	u->j = j;
	memset(u->shadow, 0, u->span);
	if (kind)
		inj_set(j, kind, err, nth);
	else
		inj_set(j, 0, 0, 0);
	u->injected = err == INJ_SHORT ? -EIO : err;
	watch(u->desc, 120);
	workload(u);
	vems__fault_set(NULL, NULL);
	verify(u, "after the workload");
	reopen_checked(fx, u->desc);
	verify(u, "after reopen");
	alarm(0);
	fx_destroy(fx);
}

static void
test_every_call_every_error(void **state)
{
	(void)state;
	struct fx fx;
	struct run u = {.fx = &fx};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* a counting run: how often the workload makes each call */
	struct inj count;
	snprintf(u.desc, sizeof(u.desc), "counting run");
	fx_create(&fx, "fi-size");
	u.span = 2 * fx.frames * fx.es;
	fx_destroy(&fx);
	u.shadow = calloc(1, u.span);
	u.tmp = malloc(u.span + 1);
	assert_non_null(u.shadow);
	assert_non_null(u.tmp);
	one_run(&u, 0, 0, 0, &count);
	assert_int_equal(u.failures, 0);
	print_message("calls: i %u s %u c %u w %u r %u f %u m %u\n",
		      count.seen['i'], count.seen['s'], count.seen['c'],
		      count.seen['w'], count.seen['r'], count.seen['f'],
		      count.seen['m']);
	for (size_t k = 0; k < sizeof(kinds); k++)
		assert_true(count.seen[(unsigned char)kinds[k]] > 0);

	unsigned combos = 0, fired = 0, capn = cap();
	/* VEMS_FAULTINJ_ONLY=s32: only the 32nd submit, every error */
	const char *only = getenv("VEMS_FAULTINJ_ONLY");
	for (size_t k = 0; k < sizeof(kinds); k++) {
		char op = kinds[k];
		unsigned total = count.seen[(unsigned char)op];
		unsigned tries = total < capn ? total : capn;
		for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
			int err = errs[e];
			if (err == INJ_SHORT && op != 's' && op != 'r' &&
			    op != 'w')
				continue; /* no length to cut */
			for (unsigned i = 0; i < tries; i++) {
				unsigned nth = pick_nth(i, total, capn);
				char tag[16];
				snprintf(tag, sizeof(tag), "%c%u", op, nth);
				if (only && strcmp(only, tag) != 0)
					continue;
				struct inj j;
				snprintf(u.desc, sizeof(u.desc),
					 "call '%c' #%u of %u: %s", op, nth,
					 total,
					 err == INJ_SHORT ? "short"
							  : strerror(-err));
				one_run(&u, op, err, nth, &j);
				combos++;
				fired += j.fired > 0;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	tu_figure("faultinj", "combinations", combos);
	tu_figure("faultinj", "lost", u.lost);
	print_message("faultinj: %u fault combinations, %u acknowledged "
		      "writes lost\n",
		      combos, u.lost);
	print_message("(%u injections hit, %u of %u operations failed "
		      "cleanly, %u writes acknowledged; %.1f s)\n",
		      fired, u.failures, u.calls, u.acked, secs);
	assert_int_equal(u.lost, 0);
	assert_true(fired > combos / 2);
	free(u.shadow);
	free(u.tmp);
}

int
main(void)
{
	signal(SIGALRM, on_alarm);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spill_without_ring),
		cmocka_unit_test(test_submit_error_not_reused),
		cmocka_unit_test(test_short_submit),
		cmocka_unit_test(test_wait_error_drains),
		cmocka_unit_test(test_backend_without_drain),
		cmocka_unit_test(test_drain_gives_up),
		cmocka_unit_test(test_sync_error_other_batch),
		cmocka_unit_test(test_aio_ring_errors),
		cmocka_unit_test(test_every_call_every_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
