/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_msyncfail.c -- a failed msync never lets a frame be named twice
 *
 * On the msync path a failed msync leaves its range's stores in memory and
 * maybe, maybe not, on media. Format 1's promote and spill commit then gave
 * the frame back (or re-queued it) although the state store naming it may
 * have been durable; a later write reused the frame, and after a crash two
 * entries named one frame and open refused the pool.
 *
 * This binary defines pmem_msync (libvems binds to it, like
 * test_powerfail's interposer) and fails the N-th call after arming, for
 * every N a promotion and a spill make. At the failure it records the
 * range's bytes: what media holds if the write-back happened after all.
 * The test then keeps writing (the pool must refuse: -EIO), closes, lays
 * the recorded bytes over the file (that "crash" outcome), and reopens:
 * the pool must open, check clean and read back every acknowledged byte.
 */

#include <dlfcn.h>
#include <fcntl.h>
#include <libpmem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vems_internal.h"

#define MIB (UINT64_C(1) << 20)
#define KIB (UINT64_C(1) << 10)
#define ES (64 * KIB)

static struct {
	long arm; /* fail the arm-th msync from now (0: off) */
	long seen;
	bool fired;
	const uint8_t *base; /* the pool's mapping */
	size_t off, len;     /* the failed range, in the file */
	uint8_t *bytes;	     /* its contents at the failure */
	uint8_t later[4096]; /* pages msync'ed (successfully) since */
} M;

#define EXPORT __attribute__((visibility("default")))

EXPORT int
pmem_msync(const void *addr, size_t len)
{
	static __typeof__(&pmem_msync) real;
	if (!real)
		real = (__typeof__(&pmem_msync))dlsym(RTLD_NEXT, "pmem_msync");
	int r = real(addr, len);
	if (M.fired && r == 0) {
		/* a later write-back of a page supersedes what the failed
		 * one may have left there (msync works on whole pages) */
		size_t a = (size_t)((const uint8_t *)addr - M.base);
		for (size_t pg = a / 4096;
		     pg <= (a + len - 1) / 4096 && pg < sizeof(M.later); pg++)
			M.later[pg] = 1;
	}
	if (M.arm && !M.fired && ++M.seen == M.arm) {
		M.fired = true;
		M.off = (size_t)((const uint8_t *)addr - M.base);
		M.len = len;
		M.bytes = malloc(len);
		memcpy(M.bytes, addr, len);
		errno = EIO;
		return -1;
	}
	return r;
}

static void
report(const char *msg, void *arg)
{
	print_message("check: %s (after msync #%ld failed)\n", msg,
		      *(long *)arg);
}

static void
one_run(long n, bool spill_phase, int *fired)
{
	struct tu_pool tp;
	tu_create(&tp, "msyncfail", 16 * MIB, 16 * MIB, ES);
	struct vems_pool *p = tp.pool;
	if (p->is_pmem) {
		tu_destroy(&tp);
		skip(); /* the msync path only (PMEM_IS_PMEM_FORCE=0) */
	}
	M.base = (const uint8_t *)p->pop;
	struct vems_oid oid = {0, 0};
	TU_OK(vems_obj_create(p, &oid));
	struct vems_obj *o;
	TU_OK(vems_obj_open(p, oid, 0, &o));
	uint8_t *buf = malloc(8 * ES);
	tu_fill(buf, 8 * ES, 3, 0);
	assert_int_equal(vems_obj_pwrite(o, buf, 8 * ES, 0, 0), 8 * ES);
	if (!spill_phase)
		while (vems__spill(p, 64, NULL, 0, 0, false) > 0)
			;
	/* arm, then promote everything (or spill everything) */
	M = (__typeof__(M)){.arm = n, .base = (const uint8_t *)p->pop};
	if (spill_phase)
		(void)vems__spill(p, 64, NULL, 0, 0, false);
	else /* 2 extents a call: a longer read is a scan, not promoted */
		for (int x = 0; x < 8; x += 2)
			(void)vems_obj_pread(o, buf + (size_t)x * ES, 2 * ES,
					     (uint64_t)x * ES);
	/*
	 * Go on writing, as an application would: whatever the pool accepts
	 * now must survive (the fix: a failed pool accepts nothing, -EIO).
	 * New extents are where a frame given back too early is reused.
	 */
	struct vems_oid o2 = {0, 0};
	bool o2_made = false, o2_written = false;
	if (M.fired) {
		(*fired)++;
		o2_made = vems_obj_create(p, &o2) == 0;
		if (o2_made) {
			struct vems_obj *h2;
			TU_OK(vems_obj_open(p, o2, 0, &h2));
			uint8_t *x = malloc(4 * ES);
			tu_fill(x, 4 * ES, 9, 0);
			o2_written =
				vems_obj_pwrite(h2, x, 4 * ES, 0, 0) == 4 * ES;
			free(x);
			vems_obj_close(&h2);
		}
		assert_true(vems__pool_failed(p));
	}
	M.arm = 0;
	vems_obj_close(&o);
	vems_pool_close(&tp.pool);
	if (M.fired) {
		/* the crash outcome where the failed write-back landed,
		 * on the pages nothing wrote back since */
		int fd = open(tp.pmem, O_RDWR);
		assert_true(fd >= 0);
		for (size_t b = 0; b < M.len;) {
			size_t at = M.off + b, pg = at / 4096;
			size_t k = 4096 - at % 4096;
			k = k < M.len - b ? k : M.len - b;
			if (pg >= sizeof(M.later) || !M.later[pg])
				assert_int_equal(
					pwrite(fd, M.bytes + b, k, (off_t)at),
					(ssize_t)k);
			b += k;
		}
		close(fd);
		free(M.bytes);
		M.bytes = NULL;
	}
	int r = vems_pool_open(&tp.pool, tp.pmem, NULL);
	if (r)
		fail_msg("msync #%ld (%s) failed: reopen gives %d: %s", n,
			 spill_phase ? "spill" : "promote", r, vems_errormsg());
	assert_int_equal(vems_pool_check(tp.pool, report, &n), 0);
	TU_OK(vems_obj_open(tp.pool, oid, VEMS_O_RDONLY, &o));
	memset(buf, 0, 8 * ES);
	assert_int_equal(vems_obj_pread(o, buf, 8 * ES, 0), 8 * ES);
	assert_true(tu_verify(buf, 8 * ES, 3, 0));
	vems_obj_close(&o);
	if (o2_written) {
		TU_OK(vems_obj_open(tp.pool, o2, VEMS_O_RDONLY, &o));
		assert_int_equal(vems_obj_pread(o, buf, 4 * ES, 0), 4 * ES);
		assert_true(tu_verify(buf, 4 * ES, 9, 0));
		vems_obj_close(&o);
	}
	/* the fix refuses changes on a failed pool */
	assert_false(o2_made);
	free(buf);
	tu_destroy(&tp);
}

static void
test_promote_msync_failures(void **state)
{
	(void)state;
	int fired = 0;
	long n;
	for (n = 1; n < 200; n++) {
		int before = fired;
		one_run(n, false, &fired);
		if (fired == before)
			break; /* past the last msync of the promotion */
	}
	print_message("promote: %d msync failures, each reopened clean\n",
		      fired);
	/* three msyncs per promoting read (bytes, fields, commit words),
	 * four reads */
	assert_int_equal(fired, 12);
}

static void
test_spill_msync_failures(void **state)
{
	(void)state;
	int fired = 0;
	for (long n = 1; n < 200; n++) {
		int before = fired;
		one_run(n, true, &fired);
		if (fired == before)
			break;
	}
	print_message("spill: %d msync failures, each reopened clean\n", fired);
	/* one group's commit is two msyncs however many extents it has:
	 * slots, crcs and page checks; then the commit words */
	assert_int_equal(fired, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_promote_msync_failures),
		cmocka_unit_test(test_spill_msync_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
