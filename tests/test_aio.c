/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_aio.c -- the adaptive sync/async API: pmem-served requests complete
 * inside submit, block-file ones later; results, eventfd, errors
 */

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MIB (UINT64_C(1) << 20)
#define ES (64 * 1024)

/* A pool with no background spiller, and an object filled with `bytes`
 * of tu_fill(seed 7) data; more than pmem holds means early extents are
 * in the block file. */
static void
setup(struct tu_pool *tp, const char *tag, uint64_t bytes, struct vems_obj **o)
{
	struct vems_config *cfg;
	tu_paths(tp, tag);
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, 16 * MIB));
	TU_OK(vems_config_set_block_path(cfg, tp->block));
	TU_OK(vems_config_set_block_size(cfg, 128 * MIB));
	TU_OK(vems_config_set_low_watermark(cfg, 0));
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
	struct vems_oid oid = {1, 0};
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_obj_open(tp->pool, oid, 0, o));
	uint8_t *buf = malloc(MIB);
	for (uint64_t off = 0; off < bytes; off += MIB) {
		tu_fill(buf, MIB, 7, off);
		assert_int_equal(vems_obj_pwrite(*o, buf, MIB, off, 0),
				 (ssize_t)MIB);
	}
	free(buf);
}

/* Every request served by pmem is complete when submit returns. */
static void
test_pmem_requests_complete_in_submit(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_obj *o;
	setup(&tp, "aio-sync", 4 * MIB, &o);
	struct vems_aio_ctx *c;
	TU_OK(vems_aio_ctx_new(tp.pool, 32, &c));
	enum { N = 32 };
	struct vems_aio req[N], *rp[N], *done[N];
	uint8_t *bufs = malloc(N * 5000);
	for (int i = 0; i < N; i++) {
		req[i] = (struct vems_aio){.obj = o,
					   .op = i % 2 ? VEMS_AIO_WRITE
						       : VEMS_AIO_READ,
					   .buf = bufs + i * 5000,
					   .len = 5000,
					   .off = (uint64_t)i * 100000,
					   .user_data = &req[i]};
		if (req[i].op == VEMS_AIO_WRITE)
			tu_fill(req[i].buf, 5000, 9, req[i].off);
		rp[i] = &req[i];
	}
	assert_int_equal(vems_aio_submit(c, rp, N), N);
	/* nothing to wait for: a poll gets them all */
	assert_int_equal(vems_aio_poll(c, done, N), N);
	for (int i = 0; i < N; i++) {
		struct vems_aio *r = done[i]->user_data;
		assert_ptr_equal(r, done[i]);
		assert_int_equal(r->result, 5000);
		if (r->op == VEMS_AIO_READ)
			assert_true(tu_verify(r->buf, 5000, 7, r->off));
	}
	/* the writes are durable and visible to blocking reads */
	for (int i = 1; i < N; i += 2) {
		uint8_t b[5000];
		assert_int_equal(vems_obj_pread(o, b, 5000, req[i].off), 5000);
		assert_true(tu_verify(b, 5000, 9, req[i].off));
	}
	vems_aio_ctx_delete(&c);
	assert_null(c);
	free(bufs);
	vems_obj_close(&o);
	tu_destroy(&tp);
}

/*
 * Random reads over data mostly in the block file: block ones complete
 * only when reaped, up to the queue depth run at once, every byte checked.
 */
static void
test_block_reads_async(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_obj *o;
	const uint64_t total = 48 * MIB; /* 3x pmem */
	setup(&tp, "aio-block", total, &o);
	struct vems_pool_stats ps;
	TU_OK(vems_pool_stats(tp.pool, &ps));
	assert_true(ps.extents_block > 0);
	uint64_t block_hits0 = ps.block_hits;

	struct vems_aio_ctx *c;
	TU_OK(vems_aio_ctx_new(tp.pool, 32, &c));
	enum { N = 32, ROUNDS = 20 };
	struct vems_aio req[N], *rp[N], *done[N];
	uint8_t *bufs = aligned_alloc(4096, (size_t)N * ES);
	uint64_t rng = 42;
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < N; i++) {
			/* whole aligned extents (straight into the buffer)
			 * and odd ranges (through a bounce buffer) */
			bool whole = i % 2 == 0;
			uint64_t off = (tu_rand(&rng) % (total / ES)) * ES;
			req[i] = (struct vems_aio){
				.obj = o,
				.op = VEMS_AIO_READ,
				.buf = bufs + (size_t)i * ES,
				.len = whole ? ES : 1 + tu_rand(&rng) % 9000,
				.off = whole ? off : off + 1234};
			rp[i] = &req[i];
		}
		assert_int_equal(vems_aio_submit(c, rp, N), N);
		int got = 0;
		while (got < N) {
			int r = vems_aio_wait(c, done + got, 1, N - got, -1);
			assert_true(r > 0);
			got += r;
		}
		for (int i = 0; i < N; i++) {
			assert_int_equal(req[i].result, (ssize_t)req[i].len);
			assert_true(tu_verify(req[i].buf, req[i].len, 7,
					      req[i].off));
		}
	}
	TU_OK(vems_pool_stats(tp.pool, &ps));
	assert_true(ps.block_hits > block_hits0);
	assert_true(ps.uring_max_inflight >= 16);
	assert_int_equal(ps.checksum_failures, 0);

	/*
	 * Extent 0 was written first and never touched again, so it was
	 * spilled: its read is still in flight when submit returns, while a
	 * read of the last extent, written again now (the promotions above
	 * may have evicted it), is already done.
	 */
	uint64_t last = total - ES;
	tu_fill(bufs, ES, 7, last);
	assert_int_equal(vems_obj_pwrite(o, bufs, ES, last, 0), (ssize_t)ES);
	req[0] = (struct vems_aio){.obj = o,
				   .op = VEMS_AIO_READ,
				   .buf = bufs,
				   .len = ES,
				   .off = 0};
	req[1] = (struct vems_aio){.obj = o,
				   .op = VEMS_AIO_READ,
				   .buf = bufs + ES,
				   .len = ES,
				   .off = last};
	rp[0] = &req[0];
	rp[1] = &req[1];
	assert_int_equal(vems_aio_submit(c, rp, 2), 2);
	assert_non_null(req[0].internal); /* waits for the block file */
	assert_null(req[1].internal);	  /* served by pmem in submit */
	assert_int_equal(req[1].result, ES);
	assert_int_equal(vems_aio_wait(c, done, 2, 2, -1), 2);
	assert_null(req[0].internal);
	assert_int_equal(req[0].result, ES);
	assert_true(tu_verify(bufs, ES, 7, 0));
	assert_true(tu_verify(bufs + ES, ES, 7, last));

	vems_aio_ctx_delete(&c);
	free(bufs);
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 0);
	vems_obj_close(&o);
	tu_destroy(&tp);
}

/* Writes that need the block file (a fetch, a spill) complete later. */
static void
test_writes_needing_block(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_obj *o;
	const uint64_t total = 40 * MIB;
	setup(&tp, "aio-write", total, &o);
	struct vems_aio_ctx *c;
	TU_OK(vems_aio_ctx_new(tp.pool, 64, &c));
	enum { N = 48 };
	struct vems_aio req[N], *rp[N], *done[N];
	uint8_t *bufs = malloc((size_t)N * 3000);
	for (int i = 0; i < N; i++) {
		/* partial writes all over: spilled extents need a fetch,
		 * and bringing them back needs spills */
		uint64_t off = (uint64_t)i * (total / N) + 177;
		req[i] = (struct vems_aio){.obj = o,
					   .op = VEMS_AIO_WRITE,
					   .buf = bufs + (size_t)i * 3000,
					   .len = 3000,
					   .off = off};
		tu_fill(req[i].buf, 3000, 11, off);
		rp[i] = &req[i];
	}
	assert_int_equal(vems_aio_submit(c, rp, N), N);
	int got = 0;
	while (got < N) {
		int r = vems_aio_wait(c, done + got, 1, N - got, -1);
		assert_true(r > 0);
		got += r;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(req[i].result, 3000);
	struct vems_pool_stats ps;
	TU_OK(vems_pool_stats(tp.pool, &ps));
	assert_true(ps.block_fetches > 0);
	vems_aio_ctx_delete(&c);
	tu_reopen(&tp);
	struct vems_oid oid = {1, 1};
	TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
	uint8_t b[3000 + 200];
	for (int i = 0; i < N; i++) {
		assert_int_equal(
			vems_obj_pread(o, b, sizeof(b), req[i].off - 100),
			(ssize_t)sizeof(b));
		assert_true(tu_verify(b, 100, 7, req[i].off - 100));
		assert_true(tu_verify(b + 100, 3000, 11, req[i].off));
		assert_true(tu_verify(b + 3100, 100, 7, req[i].off + 3000));
	}
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 0);
	free(bufs);
	vems_obj_close(&o);
	tu_destroy(&tp);
}

/* An event loop: poll(2) the eventfd, reap until empty, repeat. */
static void
test_eventfd_loop(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_obj *o;
	const uint64_t total = 32 * MIB;
	setup(&tp, "aio-efd", total, &o);
	struct vems_aio_ctx *c;
	TU_OK(vems_aio_ctx_new(tp.pool, 16, &c));
	int efd = vems_aio_eventfd(c);
	assert_true(efd >= 0);
	enum { N = 64 };
	struct vems_aio req[N], *done[16];
	uint8_t *bufs = malloc((size_t)N * 4096);
	int submitted = 0, reaped = 0;
	while (reaped < N) {
		while (submitted < N) {
			struct vems_aio *r = &req[submitted];
			*r = (struct vems_aio){
				.obj = o,
				.op = VEMS_AIO_READ,
				.buf = bufs + (size_t)submitted * 4096,
				.len = 4096,
				.off = (uint64_t)submitted * (total / N)};
			int k = vems_aio_submit(c, &r, 1);
			if (k == -EAGAIN)
				break; /* full: reap first */
			assert_int_equal(k, 1);
			submitted++;
		}
		struct pollfd pfd = {.fd = efd, .events = POLLIN};
		assert_int_equal(poll(&pfd, 1, -1), 1);
		int k;
		while ((k = vems_aio_poll(c, done, 16)) > 0) {
			for (int i = 0; i < k; i++) {
				assert_int_equal(done[i]->result, 4096);
				assert_true(tu_verify(done[i]->buf, 4096, 7,
						      done[i]->off));
			}
			reaped += k;
		}
		assert_true(k == 0);
	}
	vems_aio_ctx_delete(&c);
	free(bufs);
	vems_obj_close(&o);
	tu_destroy(&tp);
}

/* A read returns the bytes of its submission even if they are rewritten
 * before it is reaped; the slot it reads is not reused meanwhile. */
static void
test_read_snapshot(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_obj *o;
	setup(&tp, "aio-snap", 32 * MIB, &o);
	struct vems_aio_ctx *c;
	TU_OK(vems_aio_ctx_new(tp.pool, 4, &c));
	uint8_t *buf = aligned_alloc(4096, ES), *nw = malloc(ES);
	struct vems_aio req = {
		.obj = o, .op = VEMS_AIO_READ, .buf = buf, .len = ES, .off = 0};
	struct vems_aio *rp = &req, *done;
	assert_int_equal(vems_aio_submit(c, &rp, 1), 1);
	tu_fill(nw, ES, 13, 0);
	assert_int_equal(vems_obj_pwrite(o, nw, ES, 0, 0), ES);
	/* more writes: spills may reuse any free slot */
	for (uint64_t off = 32 * MIB; off < 40 * MIB; off += ES) {
		tu_fill(nw, ES, 13, off);
		assert_int_equal(vems_obj_pwrite(o, nw, ES, off, 0), ES);
	}
	assert_int_equal(vems_aio_wait(c, &done, 1, 1, -1), 1);
	assert_int_equal(req.result, ES);
	assert_true(tu_verify(buf, ES, 7, 0)); /* as submitted */
	assert_int_equal(vems_obj_pread(o, buf, ES, 0), ES);
	assert_true(tu_verify(buf, ES, 13, 0)); /* as now */
	assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 0);
	vems_aio_ctx_delete(&c);
	free(buf);
	free(nw);
	vems_obj_close(&o);
	tu_destroy(&tp);
}

/*
 * Closing a pool under a live context used to free the pool (returning 0)
 * and make the context's later delete use freed memory. Now close refuses
 * with -EBUSY and leaves the pool working.
 */
static void
test_close_with_live_context(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_obj *o;
	setup(&tp, "aio-close", 2 * MIB, &o);
	struct vems_aio_ctx *c;
	TU_OK(vems_aio_ctx_new(tp.pool, 8, &c));
	struct vems_pool *keep = tp.pool;
	assert_int_equal(vems_pool_close(&tp.pool), -EBUSY);
	assert_ptr_equal(tp.pool, keep);
	assert_non_null(strstr(vems_errormsg(), "asynchronous"));
	/* the pool and the context still work */
	uint8_t buf[4096];
	struct vems_aio req = {.obj = o,
			       .op = VEMS_AIO_READ,
			       .buf = buf,
			       .len = sizeof(buf),
			       .off = 8192};
	struct vems_aio *rp = &req, *done;
	assert_int_equal(vems_aio_submit(c, &rp, 1), 1);
	assert_int_equal(vems_aio_wait(c, &done, 1, 1, -1), 1);
	assert_int_equal(done->result, (ssize_t)sizeof(buf));
	assert_true(tu_verify(buf, sizeof(buf), 7, 8192));
	vems_aio_ctx_delete(&c);
	vems_obj_close(&o);
	TU_OK(vems_pool_close(&tp.pool));
	assert_null(tp.pool);
	tu_destroy(&tp);
}

static void
test_bad_arguments(void **state)
{
	(void)state;
	struct tu_pool tp;
	struct vems_obj *o;
	setup(&tp, "aio-args", MIB, &o);
	struct vems_aio_ctx *c = NULL;
	assert_int_equal(vems_aio_ctx_new(NULL, 4, &c), -EINVAL);
	assert_int_equal(vems_aio_ctx_new(tp.pool, 4, NULL), -EINVAL);
	assert_int_equal(vems_aio_ctx_new(tp.pool, 100000, &c), -EINVAL);
	vems_aio_ctx_delete(NULL);
	vems_aio_ctx_delete(&c);
	TU_OK(vems_aio_ctx_new(tp.pool, 2, &c));
	assert_int_equal(vems_aio_eventfd(NULL), -EINVAL);
	struct vems_aio *done[4];
	assert_int_equal(vems_aio_submit(NULL, NULL, 1), -EINVAL);
	assert_int_equal(vems_aio_poll(NULL, done, 4), -EINVAL);
	assert_int_equal(vems_aio_wait(c, done, 1, 4, 0), -EINVAL);
	assert_int_equal(vems_aio_wait(c, done, 3, 2, 0), -EINVAL);
	struct vems_aio *nul = NULL;
	assert_int_equal(vems_aio_submit(c, &nul, 1), -EINVAL);

	/* bad requests are taken and complete with -EINVAL */
	uint8_t b[16];
	struct vems_aio bad[2] = {
		{.obj = o, .op = 7, .buf = b, .len = 16},
		{.obj = NULL, .op = VEMS_AIO_READ, .buf = b, .len = 16}};
	struct vems_aio *bp[2] = {&bad[0], &bad[1]};
	assert_int_equal(vems_aio_submit(c, bp, 2), 2);
	/* the context holds 2 until they are reaped */
	struct vems_aio more = {
		.obj = o, .op = VEMS_AIO_READ, .buf = b, .len = 16};
	struct vems_aio *mp = &more;
	assert_int_equal(vems_aio_submit(c, &mp, 1), -EAGAIN);
	assert_int_equal(vems_aio_poll(c, done, 4), 2);
	assert_int_equal(bad[0].result, -EINVAL);
	assert_int_equal(bad[1].result, -EINVAL);
	/* a read-only handle refuses writes, through aio as well */
	struct vems_obj *ro;
	TU_OK(vems_obj_open(tp.pool, (struct vems_oid){1, 1}, VEMS_O_RDONLY,
			    &ro));
	struct vems_aio w = {
		.obj = ro, .op = VEMS_AIO_WRITE, .buf = b, .len = 16};
	struct vems_aio *wp = &w;
	assert_int_equal(vems_aio_submit(c, &wp, 1), 1);
	assert_int_equal(vems_aio_wait(c, done, 1, 4, -1), 1);
	assert_int_equal(w.result, -EBADF);
	/* a read past the end returns 0 bytes */
	more.off = 100 * MIB;
	assert_int_equal(vems_aio_submit(c, &mp, 1), 1);
	assert_int_equal(vems_aio_poll(c, done, 4), 1);
	assert_int_equal(more.result, 0);
	vems_aio_ctx_delete(&c);
	vems_obj_close(&ro);
	vems_obj_close(&o);
	tu_destroy(&tp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pmem_requests_complete_in_submit),
		cmocka_unit_test(test_block_reads_async),
		cmocka_unit_test(test_writes_needing_block),
		cmocka_unit_test(test_eventfd_loop),
		cmocka_unit_test(test_read_snapshot),
		cmocka_unit_test(test_close_with_live_context),
		cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
