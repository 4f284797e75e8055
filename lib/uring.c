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
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <liburing.h>

#include "backend.h"
#include "vems_internal.h"

#define MAX_TRIES 64 /* resubmissions of one transfer before giving up */

struct vems_bq {
	struct io_uring ring;
	struct uring_backend *b;
	unsigned depth;
	struct vems_bq *next; /* idle cache */
	int efd;
};

struct uring_backend {
	struct vems_backend pub;
	int fd;
	bool dsync;
	pthread_mutex_t lock; /* the idle-queue cache */
	struct vems_bq *idle;
};

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
queue_put(struct vems_backend *vb, struct vems_bq *q)
{
	struct uring_backend *b = (struct uring_backend *)vb;
	if (q->efd >= 0) {
		/* event loops' queues are not shared */
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
	if (sqe == NULL) {
		/* flush what is queued and try once more */
		int ret = ring_submit(&q->ring);
		if (ret < 0)
			return ret;
		sqe = io_uring_get_sqe(&q->ring);
		if (sqe == NULL)
			return -EBUSY;
	}
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

static int
submit(struct vems_bq *q, struct vems_bio *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		v[i]->done = 0;
		v[i]->tries = 0;
		v[i]->res = 0;
		int ret = prep(q, v[i]);
		if (ret)
			return vems__fail(ret, "io_uring: cannot queue: %s",
					  strerror(-ret));
	}
	int ret = ring_submit(&q->ring);
	if (ret < 0)
		return vems__fail(ret, "io_uring_submit: %s", strerror(-ret));
	return 0;
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
		bio->res = 0;
		return true;
	}
	if (res == -EINTR || res == -EAGAIN || res > 0) {
		/* short transfer or a transient refusal: go on from where it
		 * stopped, a bounded number of times */
		if (res > 0)
			bio->done += (unsigned)res;
		if (++bio->tries <= MAX_TRIES && prep(q, bio) == 0 &&
		    ring_submit(&q->ring) >= 0)
			return false;
		res = res > 0 ? -EIO : res;
	}
	if (res == 0)
		res = -EIO; /* end of file inside a slot: the file shrank */
	bio->res = res;
	return true;
}

static int
reap(struct vems_bq *q, struct vems_bio **out, size_t max, bool wait)
{
	size_t got = 0;
	while (got < max) {
		struct io_uring_cqe *cqe;
		int ret = (wait && got == 0)
			? ring_wait(&q->ring, &cqe)
			: io_uring_peek_cqe(&q->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret == -EAGAIN)
			break;
		if (ret < 0)
			return vems__fail(ret, "io_uring_wait_cqe: %s",
					  strerror(-ret));
		struct vems_bio *bio = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		if (complete(q, bio, res))
			out[got++] = bio;
	}
	return (int)got;
}

static int
sync_data(struct vems_bq *q)
{
	if (q->b->dsync)
		return 0; /* every write was RWF_DSYNC */
	for (unsigned tries = 0;; tries++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
		if (sqe == NULL)
			return vems__fail(-EBUSY, "io_uring: queue full");
		io_uring_prep_fsync(sqe, q->b->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(sqe, NULL);
		int ret = ring_submit(&q->ring);
		if (ret < 0)
			return vems__fail(ret, "io_uring_submit: %s",
					  strerror(-ret));
		struct io_uring_cqe *cqe;
		do
			ret = ring_wait(&q->ring, &cqe);
		while (ret == -EINTR);
		if (ret < 0)
			return vems__fail(ret, "io_uring_wait_cqe: %s",
					  strerror(-ret));
		/* the caller drained its transfers: this is the sync's */
		int res = vems__fault_apply('f', cqe->res, 0);
		io_uring_cqe_seen(&q->ring, cqe);
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
	free(b);
}

static const struct vems_backend_ops uring_ops = {
	.version = VEMS_BACKEND_OPS_V1,
	.name = "io_uring",
	.close = backend_close,
	.queue_get = queue_get,
	.queue_put = queue_put,
	.submit = submit,
	.reap = reap,
	.sync = sync_data,
	.set_eventfd = set_eventfd,
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
	b->pub.ops = &uring_ops;
	bool direct = allow_direct && try_direct(fd);
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
