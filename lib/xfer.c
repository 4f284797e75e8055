/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * xfer.c -- running block transfers through the backend, reading slots
 *
 * A leaf above the backend (backend.h): a transfer counts as done only
 * when its completion says so (design rule 8).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "vems_internal.h"

#define QD 32 /* block transfers in flight per caller */

static void
note_depth(struct vems_pool *p, uint64_t depth)
{
	uint64_t cur = atomic_load_explicit(&p->uring_max_inflight,
					    memory_order_relaxed);
	while (depth > cur &&
	       !atomic_compare_exchange_weak(&p->uring_max_inflight, &cur,
					     depth))
		;
}

/*
 * Runs the transfers through one queue, at most QD in flight. Nothing is
 * left running when it returns, unless the queue broke and what it had in
 * flight could not be waited for: those transfers keep VEMS_BIO_PENDING
 * and their owners must keep the buffers (and, for writes, the slots) out
 * of use. Every other transfer ends with 0 (its completion said so) or an
 * error; one never started gets the reason.
 */
int
vems__bio_run(struct vems_pool *p, struct vems_bio **v, size_t n, bool sync)
{
	const struct vems_backend_ops *ops = p->be->ops;
	struct vems_bq *q;
	int ret = ops->queue_get(p->be, QD, &q);
	if (ret) {
		/* nothing started: each transfer fails for that reason */
		for (size_t i = 0; i < n; i++)
			v[i]->res = ret;
		VEMS_STAT_ADD(p, block_errors, 1);
		vems__errmsg_append("block file %s", p->block_path);
		return ret;
	}
	if (VEMS_PLANTED(VEMS_PLANT_PHANTOM_WRITE) && n > 0 && v[0]->write) {
		/* the planted bug: writes counted done, never started */
		for (size_t i = 0; i < n; i++)
			v[i]->res = 0;
		ops->queue_put(p->be, q);
		return 0;
	}
	size_t next = 0, inflight = 0;
	int first_err = 0;
	bool wrote = false, broken = false, lost = false;
	while (inflight > 0 || (next < n && !broken)) {
		size_t room = QD - inflight, left = n - next;
		size_t k = room < left ? room : left;
		if (!broken && k > 0) {
			int s = ops->submit(q, v + next, k);
			if (s > 0) {
				inflight += (size_t)s;
				note_depth(p, inflight);
			}
			if ((size_t)s < k) {
				/* the queue broke: the rest never starts */
				broken = true;
				first_err = first_err ? first_err
						      : v[next + s]->res;
			}
			next += k;
			continue;
		}
		struct vems_bio *done[QD];
		int got = broken ? ops->drain(q, done, QD)
				 : ops->reap(q, done, QD, true);
		if (got < 0 && !broken) {
			/* the ring failed: collect what it has in flight */
			broken = true;
			first_err = first_err ? first_err : got;
			continue;
		}
		if (got == 0 && !broken) {
			/* a wait that reaped nothing while transfers are in
			 * flight: never give them up unwaited; drain them */
			broken = true;
			first_err = first_err ? first_err : -EIO;
			continue;
		}
		if (got <= 0) {
			/* cannot be waited for (or the backend says nothing is
			 * in flight while we count some): state unknown */
			lost = true;
			first_err = first_err ? first_err
				: got < 0     ? got
					      : -EIO;
			break;
		}
		for (int i = 0; i < got; i++) {
			if (done[i]->res && !first_err)
				first_err = done[i]->res;
			if (done[i]->res == 0 && done[i]->write)
				wrote = true;
		}
		inflight -= (size_t)got;
	}
	for (size_t i = next; i < n; i++)
		v[i]->res = first_err; /* never started */
	if (first_err) {
		VEMS_STAT_ADD(p, block_errors, 1);
		vems__fail(first_err, "block file %s: %s%s", p->block_path,
			   strerror(-first_err),
			   lost ? " (transfers lost in a failed ring: "
				  "their buffers are kept out of use)"
				: "");
	}
	/*
	 * The writes that did succeed are durable only after the sync: a
	 * caller commits a transfer on res == 0, so if the sync fails (or
	 * cannot run, the queue being broken) every write of the batch
	 * counts as failed.
	 */
	if (sync && wrote) {
		ret = broken ? vems__fail(-EIO,
					  "block file %s: no sync after "
					  "its ring failed",
					  p->block_path)
			     : ops->sync(q);
		/* a sync whose wait failed may still run: it has no buffer,
		 * and queue_put destroys its ring */
		if (ret) {
			VEMS_STAT_ADD(p, block_errors, 1);
			first_err = first_err ? first_err : ret;
			for (size_t i = 0; i < n; i++)
				if (v[i]->write && v[i]->res == 0)
					v[i]->res = ret;
		}
	}
	ops->queue_put(p->be, q);
	return first_err;
}

int
vems__crc_fail(struct vems_pool *p, const struct vems_objnode *n, uint32_t ext,
	       uint32_t slot, uint32_t page, uint32_t want, uint32_t got)
{
	VEMS_STAT_ADD(p, checksum_failures, 1);
	return vems__fail(-EIO,
			  "object %" PRIu64 ":%" PRIu64 " offset %" PRIu64
			  ": page %u of block slot %u of %s fails its "
			  "checksum (expected %08x, read %08x)",
			  n->oid.partition, n->oid.id,
			  ((uint64_t)ext << p->extent_shift) +
				  (uint64_t)page * VEMS_PAGE_SIZE,
			  page, slot, p->block_path, want, got);
}

/*
 * A read into buf may still be in flight after its ring failed (see
 * vems__bio_run): if buf is a frame, it never goes back to the free list
 * while the pool is open (vems__frames_unreserve skips it; the next open
 * rebuilds the free frames from the mapping). Any other buffer is the
 * caller's to keep.
 */
static void
quarantine(struct vems_pool *p, const void *buf)
{
	uint32_t f;
	/* under alloc_lock: a chunk's reclaim changes the table */
	pthread_mutex_lock(&p->alloc_lock);
	if (vems__frame_of(p, buf, &f))
		p->fr[f].lost = true;
	pthread_mutex_unlock(&p->alloc_lock);
}

int
vems__slot_read(struct vems_pool *p, const struct vems_objnode *n, uint32_t ext,
		uint32_t slot, uint32_t crc, void *buf)
{
	struct vems_bio bio = {.buf = buf,
			       .off = vems__slot_off(p, slot),
			       .len = (uint32_t)p->extent_size,
			       .res = VEMS_BIO_PENDING};
	struct vems_bio *v = &bio;
	int ret = vems__bio_run(p, &v, 1, false);
	VEMS_STAT_ADD(p, bytes_block_read, p->extent_size);
	if (bio.res == VEMS_BIO_PENDING)
		quarantine(p, buf);
	if (ret == 0 && bio.res != 0)
		ret = vems__fail(-EIO, "block read of slot %u not done", slot);
	if (ret) {
		vems__errmsg_append("reading slot %u for object %" PRIu64
				    ":%" PRIu64 " offset %" PRIu64,
				    slot, n->oid.partition, n->oid.id,
				    (uint64_t)ext << p->extent_shift);
		return ret;
	}
	return vems__pages_verify(p, n, ext, slot, crc, 0, p->ppe, buf);
}
