/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uring.c -- the block backend: extent slots in a file through io_uring
 *
 * O_DIRECT is used where it is real: not on tmpfs (which accepts the flag
 * and still goes through the page cache), and only after an aligned probe
 * read succeeds. Either way block data is durable only after a sync: the
 * disk has a write-back cache. Two ways are offered, measured by
 * `vems-bench`: one IORING_OP_FSYNC(DATASYNC) after a batch of writes
 * (default), or RWF_DSYNC on every write.
 *
 * A ring is trusted only while every call on it succeeded. When one fails
 * (a submit, a wait, a resubmission) the queue is "broken": entries left in
 * its SQ were published already (liburing writes the SQ tail before it
 * enters the kernel), so any later io_uring_enter would start them. A
 * broken queue is never submitted on again: what the kernel took is waited
 * for (drain, bounded by DRAIN_MS), then the ring is destroyed, never
 * cached. Transfers that cannot be waited for keep VEMS_BIO_PENDING; their
 * owners keep the buffers out of use (backend.h).
 *
 * Sync errors are attributed per batch (one queue_get .. queue_put): the
 * kernel reports a writeback error of the file to whichever fdatasync asks
 * first, which may be another batch's. Syncs are serialised with a count
 * of failed ones; a batch's sync fails if any sync failed since the batch
 * began, its own success notwithstanding. With RWF_DSYNC in buffered mode
 * each write is such a sync, so there the batches' writes are serialised
 * (batch_lock) from their first submit to the end of the batch.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "backend.h"
#include "vems_internal.h"

#define MAX_TRIES 64	/* resubmissions of one transfer before giving up */
#define SUBMIT_TRIES 8	/* io_uring_submit calls for one set of entries */
#define DRAIN_MS 120000 /* waiting for a broken ring's transfers, in all */

struct vems_bq {
	struct io_uring ring;
	struct uring_backend *b;
	unsigned depth;
	unsigned inflight;    /* entries the kernel took, completions unseen */
	bool broken;	      /* a call on the ring failed: drain, destroy */
	bool batch_locked;    /* holds b->batch_lock */
	uint64_t sync_seq;    /* b->sync_fails when the batch began */
	int64_t drain_end;    /* CLOCK_MONOTONIC ms; 0: not draining */
	struct vems_bq *next; /* idle cache */
	int efd;
};

struct uring_backend {
	struct vems_backend pub;
	int fd;
	bool dsync;
	bool buffered;
	pthread_mutex_t lock; /* the idle-queue cache */
	struct vems_bq *idle;
	/*
	 * Syncs and their attribution: sync_fails only grows, under
	 * sync_lock; it is read unlocked (seq_cst) when a batch begins.
	 */
	pthread_mutex_t sync_lock;
	_Atomic uint64_t sync_fails;
	pthread_mutex_t batch_lock; /* buffered RWF_DSYNC write batches */
};

/* --- test hooks ----------------------------------------------------- */

int (*vems__backend_wrap)(struct vems_backend **bp);

/* --- fault injection ------------------------------------------------- */

static _Atomic(vems_fault_fn) fault_fn;
static void *_Atomic fault_arg;

void
vems__fault_set(vems_fault_fn fn, void *arg)
{
	atomic_store(&fault_arg, arg);
	atomic_store(&fault_fn, fn);
}

int
vems__fault_apply(char op, int res, uint32_t len)
{
	vems_fault_fn fn =
		atomic_load_explicit(&fault_fn, memory_order_acquire);
	if (fn == NULL)
		return res;
	return fn(atomic_load(&fault_arg), op, res, len);
}

/*
 * io_uring_submit through the fault hook. The hook may fail the call (the
 * kernel takes nothing) or let the kernel take only the first k entries: the
 * SQ tail that liburing publishes is held back for the call and restored
 * after it, so the rest stays queued and unseen, as after a real short
 * submit. Only entries not yet published can be held back.
 */
static int
ring_submit(struct io_uring *ring)
{
	unsigned queued = io_uring_sq_ready(ring);
	int k = vems__fault_apply('s', (int)queued, queued);
	if (k < 0)
		return k;
	if ((unsigned)k >= queued)
		return io_uring_submit(ring);
	unsigned hold = queued - (unsigned)k;
	unsigned unpublished = ring->sq.sqe_tail - ring->sq.sqe_head;
	if (hold > unpublished)
		hold = unpublished;
	ring->sq.sqe_tail -= hold;
	int ret = io_uring_submit(ring);
	ring->sq.sqe_tail += hold;
	return ret;
}

/* io_uring_wait_cqe through the fault hook. */
static int
ring_wait(struct io_uring *ring, struct io_uring_cqe **cqe)
{
	int ret = vems__fault_apply('c', 0, 0);
	return ret < 0 ? ret : io_uring_wait_cqe(ring, cqe);
}

/* --- queues ------------------------------------------------------------ */

static int
queue_get(struct vems_backend *vb, unsigned depth, struct vems_bq **qp)
{
	struct uring_backend *b = (struct uring_backend *)vb;
	struct vems_bq *q = NULL;

	pthread_mutex_lock(&b->lock);
	for (struct vems_bq **pp = &b->idle; *pp; pp = &(*pp)->next)
		if ((*pp)->depth >= depth) {
			q = *pp;
			*pp = q->next;
			break;
		}
	pthread_mutex_unlock(&b->lock);
	if (q == NULL) {
		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return vems__fail(-ENOMEM, "out of memory");
		/* a sync may be queued behind a full window of transfers */
		int ret = vems__fault_apply('i', 0, depth + 1);
		if (ret >= 0)
			ret = io_uring_queue_init(depth + 1, &q->ring, 0);
		if (ret < 0) {
			free(q);
			return vems__fail(ret, "io_uring_queue_init(%u): %s",
					  depth + 1, strerror(-ret));
		}
		q->b = b;
		q->depth = depth;
		q->efd = -1;
	}
	/*
	 * A batch begins: a sync failing from now on may have consumed an
	 * error of this batch's writes, which are all submitted after this
	 * load (seq_cst: not moved past them).
	 */
	q->sync_seq = atomic_load(&b->sync_fails);
	*qp = q;
	return 0;
}

static void
queue_free(struct vems_bq *q)
{
	io_uring_queue_exit(&q->ring);
	free(q);
}

static void
batch_unlock(struct vems_bq *q)
{
	if (q->batch_locked) {
		q->batch_locked = false;
		pthread_mutex_unlock(&q->b->batch_lock);
	}
}

static void
queue_put(struct vems_backend *vb, struct vems_bq *q)
{
	struct uring_backend *b = (struct uring_backend *)vb;
	batch_unlock(q);
	if (q->efd >= 0 || q->broken || q->inflight > 0) {
		/* event loops' queues are not shared; a broken ring (or one
		 * with transfers in flight, a caller's bug) is not reused */
		queue_free(q);
		return;
	}
	pthread_mutex_lock(&b->lock);
	q->next = b->idle;
	b->idle = q;
	pthread_mutex_unlock(&b->lock);
}

/* Prepares the remaining part of bio; the SQ has room (caller's window). */
static int
prep(struct vems_bq *q, struct vems_bio *bio)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	if (sqe == NULL)
		return -EBUSY; /* more in flight than the ring was made for */
	uint8_t *buf = (uint8_t *)bio->buf + bio->done;
	unsigned len = bio->len - bio->done;
	uint64_t off = bio->off + bio->done;
	if (bio->write) {
		io_uring_prep_write(sqe, q->b->fd, buf, len, off);
		if (q->b->dsync)
			sqe->rw_flags = RWF_DSYNC;
	} else {
		io_uring_prep_read(sqe, q->b->fd, buf, len, off);
	}
	io_uring_sqe_set_data(sqe, bio);
	return 0;
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Hands what is queued in the SQ to the kernel; after a short submit the
 * rest is submitted again, a bounded number of times. Returns 0 when the
 * kernel took everything; else -errno and the queue is broken: what is left
 * in the SQ was never started and must never be (see the top of the file).
 * q->inflight counts what left the SQ, whatever the call returned.
 */
static int
flush(struct vems_bq *q)
{
	int err = -EIO;
	for (unsigned tries = 0; tries < SUBMIT_TRIES; tries++) {
		unsigned before = io_uring_sq_ready(&q->ring);
		if (before == 0)
			return 0;
		int ret = ring_submit(&q->ring);
		unsigned after = io_uring_sq_ready(&q->ring);
		q->inflight += before - after;
		if (after == 0)
			return 0;
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN &&
		    ret != -EBUSY) {
			err = ret;
			break;
		}
		if (ret < 0)
			err = ret;
	}
	q->broken = true;
	return vems__fail(err,
			  "io_uring_submit: %s (%u requests not started; the "
			  "ring is not used again)",
			  strerror(-err), io_uring_sq_ready(&q->ring));
}

static int
submit(struct vems_bq *q, struct vems_bio *const *v, size_t n)
{
	struct uring_backend *b = q->b;
	size_t queued = 0;
	int err = 0;
	if (q->broken) {
		/* its SQ may hold entries that must never start */
		err = vems__fail(-EIO, "io_uring: the queue failed before");
		for (size_t i = 0; i < n; i++)
			v[i]->res = err;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i]->write && b->buffered && b->dsync &&
		    !q->batch_locked) {
			/* each RWF_DSYNC write is a sync: one batch's at a
			 * time, so that a writeback error reaches its own */
			pthread_mutex_lock(&b->batch_lock);
			q->batch_locked = true;
		}
		v[i]->done = 0;
		v[i]->tries = 0;
		v[i]->res = VEMS_BIO_PENDING;
		if ((err = prep(q, v[i])) != 0) {
			q->broken = true;
			vems__fail(err, "io_uring: cannot queue: %s",
				   strerror(-err));
			break;
		}
		queued++;
	}
	if (queued > 0) {
		int ret = flush(q);
		err = err ? err : ret;
	}
	/*
	 * The SQ was empty before (a healthy queue leaves nothing in it) and
	 * the kernel takes entries in order: those left are the last ones.
	 */
	size_t started = queued - io_uring_sq_ready(&q->ring);
	for (size_t i = started; i < n; i++)
		v[i]->res = err;
	return (int)started;
}

/*
 * Handles one completion. Returns true when bio is finished (->res set),
 * false when what is left of it was resubmitted.
 */
static bool
complete(struct vems_bq *q, struct vems_bio *bio, int res)
{
	unsigned want = bio->len - bio->done;
	res = vems__fault_apply(bio->write ? 'w' : 'r', res, want);
	if (res > 0 && (unsigned)res > want)
		res = (int)want; /* a hook or a kernel that overshoots */
	if (res == (int)want) {
		bio->done = bio->len;
		bio->res = 0; /* the only place a transfer becomes done */
		return true;
	}
	if (res == -EINTR || res == -EAGAIN || res > 0) {
		/* short transfer or a transient refusal: go on from where it
		 * stopped, a bounded number of times; never on a broken ring,
		 * whose SQ may hold what must not start */
		if (res > 0)
			bio->done += (unsigned)res;
		if (!q->broken && ++bio->tries <= MAX_TRIES) {
			int ret = prep(q, bio);
			if (ret == 0)
				ret = flush(q);
			if (ret == 0)
				return false;
			q->broken = true; /* not taken: nothing in flight */
			res = ret;
		}
		res = res > 0 ? -EIO : res;
	}
	if (res == 0)
		res = -EIO; /* end of file inside a slot: the file shrank */
	bio->res = res;
	return true;
}

/*
 * Collects what a broken queue still has in flight. Waits on the ring's
 * fd with poll(), which never submits (what is left in the SQ must not
 * start), for at most DRAIN_MS from the first call.
 */
static int
drain(struct vems_bq *q, struct vems_bio **out, size_t max)
{
	q->broken = true;
	if (q->drain_end == 0)
		q->drain_end = now_ms() + DRAIN_MS;
	size_t got = 0;
	int err = 0;
	while (q->inflight > 0) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_peek_cqe(&q->ring, &cqe);
		if (ret == 0 && got == max && io_uring_cqe_get_data(cqe))
			break; /* no room for it: the next call's */
		if (ret == -EAGAIN) {
			int64_t left = q->drain_end - now_ms();
			if (left <= 0) {
				err = -ETIMEDOUT;
				break;
			}
			if ((ret = vems__fault_apply('c', 0, 0)) < 0) {
				err = ret;
				break;
			}
			struct pollfd pfd = {.fd = q->ring.ring_fd,
					     .events = POLLIN};
			if (poll(&pfd, 1, left < 1000 ? (int)left : 1000) < 0 &&
			    errno != EINTR) {
				err = -errno;
				break;
			}
			continue;
		}
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			err = ret;
			break;
		}
		struct vems_bio *bio = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		q->inflight--;
		if (bio == NULL)
			continue;	     /* a sync's */
		(void)complete(q, bio, res); /* broken: always finishes it */
		out[got++] = bio;
	}
	if (got > 0 || q->inflight == 0)
		return (int)got;
	return vems__fail(err,
			  "io_uring: %u block transfers of a failed ring "
			  "cannot be waited for (%s); their buffers are kept "
			  "out of use",
			  q->inflight, strerror(-err));
}

static int
reap(struct vems_bq *q, struct vems_bio **out, size_t max, bool wait)
{
	if (q->broken)
		return drain(q, out, max);
	size_t got = 0;
	while (got < max && q->inflight > 0) {
		struct io_uring_cqe *cqe;
		int ret = (wait && got == 0)
			? ring_wait(&q->ring, &cqe)
			: io_uring_peek_cqe(&q->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret == -EAGAIN && !(wait && got == 0))
			break; /* a peek that found nothing */
		if (ret < 0) {
			/* a wait that failed, even with -EAGAIN, reaped
			 * nothing: what is in flight is for drain() */
			q->broken = true;
			if (got > 0)
				break;
			return vems__fail(ret, "io_uring_wait_cqe: %s",
					  strerror(-ret));
		}
		struct vems_bio *bio = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		q->inflight--;
		if (bio != NULL && complete(q, bio, res))
			out[got++] = bio;
	}
	return (int)got;
}

/* One IORING_OP_FSYNC(DATASYNC); *taken once the kernel has it. */
static int
fsync_once(struct vems_bq *q, bool *taken)
{
	for (unsigned tries = 0;; tries++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
		if (sqe == NULL) {
			q->broken = true;
			return vems__fail(-EBUSY, "io_uring: queue full");
		}
		io_uring_prep_fsync(sqe, q->b->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(sqe, NULL);
		int ret = flush(q);
		if (ret)
			return ret;
		*taken = true;
		struct io_uring_cqe *cqe;
		do
			ret = ring_wait(&q->ring, &cqe);
		while (ret == -EINTR);
		if (ret < 0) {
			q->broken = true; /* drain() collects the sync */
			return vems__fail(ret, "io_uring_wait_cqe: %s",
					  strerror(-ret));
		}
		/* nothing else is in flight (sync_data checked): the sync's */
		int res = vems__fault_apply('f', cqe->res, 0);
		io_uring_cqe_seen(&q->ring, cqe);
		q->inflight--;
		if ((res == -EINTR || res == -EAGAIN) && tries < MAX_TRIES)
			continue;
		if (res < 0)
			return vems__fail(res,
					  "fdatasync of the block file: %s",
					  strerror(-res));
		return 0;
	}
}

static int
sync_data(struct vems_bq *q)
{
	struct uring_backend *b = q->b;
	if (q->broken || q->inflight > 0)
		return vems__fail(-EIO,
				  "io_uring: no sync on a failed or "
				  "busy queue");
	if (b->dsync)
		return 0; /* every write was RWF_DSYNC, and attributed */
	/*
	 * Under sync_lock, a failed sync and its count are one step: a sync
	 * that consumed this batch's error has counted it before ours runs,
	 * or ours runs first and gets the error itself.
	 */
	pthread_mutex_lock(&b->sync_lock);
	bool taken = false;
	int ret = fsync_once(q, &taken);
	if (ret < 0 && taken) /* it ran (or may have): an error is spent */
		atomic_fetch_add(&b->sync_fails, 1);
	uint64_t fails = atomic_load(&b->sync_fails);
	pthread_mutex_unlock(&b->sync_lock);
	if (ret == 0 && fails != q->sync_seq)
		ret = vems__fail(-EIO,
				 "the block file's sync succeeded, but another "
				 "sync failed while this batch was written: "
				 "the kernel reports a writeback error once, "
				 "so this batch's writes count as lost");
	return ret;
}

static int
set_eventfd(struct vems_bq *q, int efd)
{
	int ret = efd >= 0 ? io_uring_register_eventfd(&q->ring, efd)
			   : io_uring_unregister_eventfd(&q->ring);
	if (ret < 0)
		return vems__fail(ret, "io_uring_register_eventfd: %s",
				  strerror(-ret));
	q->efd = efd;
	return 0;
}

static void
backend_close(struct vems_backend *vb)
{
	struct uring_backend *b = (struct uring_backend *)vb;
	while (b->idle) {
		struct vems_bq *q = b->idle;
		b->idle = q->next;
		queue_free(q);
	}
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->sync_lock);
	pthread_mutex_destroy(&b->batch_lock);
	free(b);
}

static const struct vems_backend_ops uring_ops = {
	.version = VEMS_BACKEND_OPS_V2,
	.name = "io_uring",
	.close = backend_close,
	.queue_get = queue_get,
	.queue_put = queue_put,
	.submit = submit,
	.reap = reap,
	.sync = sync_data,
	.set_eventfd = set_eventfd,
	.drain = drain,
};

/*
 * Turns O_DIRECT on for fd if the file system really bypasses the page
 * cache for it; false means buffered I/O.
 */
static bool
try_direct(int fd)
{
	struct stat st;
	struct statfs sfs;
	if (fstat(fd, &st) != 0)
		return false;
	/* a device node's file system is devtmpfs: ask only for files */
	if (!S_ISBLK(st.st_mode) &&
	    (fstatfs(fd, &sfs) != 0 || sfs.f_type == TMPFS_MAGIC ||
	     sfs.f_type == RAMFS_MAGIC))
		return false;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) != 0)
		return false;
	/* the header page, aligned: proves the flag is honoured */
	void *page = NULL;
	bool ok = posix_memalign(&page, 4096, 4096) == 0 &&
		pread(fd, page, 4096, 0) == 4096;
	free(page);
	if (!ok)
		(void)fcntl(fd, F_SETFL, fl);
	return ok;
}

int
vems__uring_open(int fd, const char *path, enum vems_bsync sync,
		 bool allow_direct, struct vems_backend **bp)
{
	struct uring_backend *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	b->fd = fd;
	b->dsync = sync == VEMS_BSYNC_DSYNC;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->sync_lock, NULL);
	pthread_mutex_init(&b->batch_lock, NULL);
	b->pub.ops = &uring_ops;
	bool direct = allow_direct && try_direct(fd);
	b->buffered = !direct;
	b->pub.mode = direct ? "direct" : "buffered";
	b->pub.sync_mode = b->dsync ? "dsync" : "fdatasync";
	/* frames and slots are 4 KiB aligned; so is every transfer */
	b->pub.align = direct ? 4096 : 1;

	/* io_uring may be disabled (sysctl, seccomp): say so at open */
	struct vems_bq *q;
	int ret = queue_get(&b->pub, 1, &q);
	if (ret) {
		vems__errmsg_append("block file %s", path);
		backend_close(&b->pub);
		return ret;
	}
	queue_put(&b->pub, q);
	*bp = &b->pub;
	return 0;
}
