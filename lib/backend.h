/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * backend.h -- the capacity tier's interface: what the data path, the
 * spiller and the async API need from "something that stores extent slots"
 *
 * The data path never calls io_uring itself: it fills struct vems_bio
 * records and hands them to a backend through a versioned ops table, so a
 * second capacity tier (e.g. an object store such as RADOS) can be added by
 * writing one more table. The table starts with its version and only grows
 * at its end (SQLite's sqlite3_vfs.iVersion is the model).
 *
 * One backend per open pool. I/O goes through queues: a queue is one
 * submission/completion context (one io_uring) used by one thread at a time;
 * the backend keeps a cache of idle queues so that concurrent callers each
 * get their own without a ring setup per call.
 */
#ifndef VEMS_BACKEND_H
#define VEMS_BACKEND_H 1

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A transfer's result before its completion says otherwise (design rule
 * 8): whoever makes a vems_bio sets res to this, and only a completion
 * that reports the whole transfer done sets it to 0. Anything but 0 is
 * "not done". After the call that ran it has returned, a transfer still
 * at VEMS_BIO_PENDING was started on a ring that then failed and could
 * not be waited for (see drain): the kernel may still read or write its
 * buffer, so that buffer (and, for a write, the slot) must never be
 * reused while the pool is open.
 */
#define VEMS_BIO_PENDING (-EINPROGRESS)

/* One transfer between memory and the block file. */
struct vems_bio {
	void *buf;	/* aligned to backend->align in direct mode */
	uint64_t off;	/* byte offset in the block file */
	uint32_t len;	/* bytes */
	bool write;	/* false: read */
	int res;	/* VEMS_BIO_PENDING, then 0 or -errno */
	uint32_t done;	/* bytes transferred so far (short transfers) */
	unsigned tries; /* resubmissions after -EAGAIN or short transfers */
	void *priv;	/* the submitter's */
};

struct vems_backend;
struct vems_bq;

#define VEMS_BACKEND_OPS_V1 1u
#define VEMS_BACKEND_OPS_V2 2u /* adds drain */

struct vems_backend_ops {
	uint32_t version; /* VEMS_BACKEND_OPS_V2 */
	const char *name;
	void (*close)(struct vems_backend *b);
	/*
	 * A queue able to hold `depth` transfers in flight. A queue is also
	 * one batch for sync attribution: a sync on it fails if any sync of
	 * the backend failed since queue_get (another batch's sync may have
	 * consumed the error the kernel had for this batch's writes).
	 */
	int (*queue_get)(struct vems_backend *b, unsigned depth,
			 struct vems_bq **q);
	/*
	 * Gives a queue back. An idle, healthy one goes to the cache; a
	 * broken one (any call on it failed) is destroyed, never reused.
	 */
	void (*queue_put)(struct vems_backend *b, struct vems_bq *q);
	/*
	 * Starts n transfers (res set to VEMS_BIO_PENDING); the caller keeps
	 * at most `depth` in flight. Returns how many were started: always
	 * the first ones of v. Fewer than n means the queue broke; those not
	 * started have res = -errno and nothing of them is in flight.
	 */
	int (*submit)(struct vems_bq *q, struct vems_bio *const *v, size_t n);
	/*
	 * Collects up to max finished transfers (each with ->res set),
	 * waiting for at least one when `wait` and one is in flight. Short
	 * transfers and -EAGAIN are resubmitted inside; they are never
	 * reported as finished. -errno: the ring failed and the queue is
	 * broken; what it has in flight must then be collected with drain.
	 */
	int (*reap)(struct vems_bq *q, struct vems_bio **out, size_t max,
		    bool wait);
	/* Makes every write finished before the call durable. */
	int (*sync)(struct vems_bq *q);
	/* Signals efd whenever a completion arrives (-1: stop). */
	int (*set_eventfd)(struct vems_bq *q, int efd);
	/*
	 * V2. Marks q broken and collects up to max transfers still in
	 * flight on it, waiting for them (bounded: the backend's deadline
	 * for the whole drain). Never submits or resubmits anything: a
	 * transfer cut short finishes failed. Returns the number collected,
	 * 0 once nothing is in flight, or -errno if what is left cannot be
	 * waited for: those transfers keep res == VEMS_BIO_PENDING.
	 */
	int (*drain)(struct vems_bq *q, struct vems_bio **out, size_t max);
};

struct vems_backend {
	const struct vems_backend_ops *ops;
	const char *mode;      /* "direct" or "buffered" */
	const char *sync_mode; /* "fdatasync" or "dsync" */
	size_t align;	       /* buffer/offset/length alignment of transfers */
};

/* Block-file durability: one fdatasync per batch, or RWF_DSYNC writes. */
enum vems_bsync { VEMS_BSYNC_FDATASYNC = 0, VEMS_BSYNC_DSYNC = 1 };

/*
 * The io_uring backend (uring.c) on an open block file. Decides once
 * whether O_DIRECT is honoured (not on tmpfs, not where the open or a probe
 * read fails) and falls back to buffered I/O.
 */
int vems__uring_open(int fd, const char *path, enum vems_bsync sync,
		     bool allow_direct, struct vems_backend **bp);

/*
 * Fault injection for tests, process-wide: when set, fn sees every call
 * the block tier makes and may change its outcome. `op` says which:
 *
 *   'r', 'w', 'f'  a read's, a write's or a sync's completion: res is
 *                  the kernel's result, len the bytes asked for; fn may
 *                  return an error, -EAGAIN or a short count
 *   'i'            io_uring_queue_init (a new ring), before it runs: res
 *                  0, len the depth; < 0 fails it with that error
 *   's'            io_uring_submit, before it runs: res = len = entries
 *                  queued; < 0 fails it (nothing taken), a smaller count
 *                  makes the kernel take only that many (a short submit)
 *   'c'            waiting for a completion (io_uring_wait_cqe, and the
 *                  drain's bounded wait): res 0; < 0 fails the wait
 *   'm'            an extent-sized bounce buffer for a read (res 0, len
 *                  its size); < 0 makes the allocation fail
 *   'R'            a writer's reservation of pmem frames (res 0, len the
 *                  frames); < 0 makes it give up as if all were held by
 *                  other waiting writers: the write publishes what it
 *                  wrote, lets go of the object and retries
 *   'I'            a small object's new inline block (res 0, len its
 *                  capacity); < 0 makes it fail as if the heap were full
 *
 * A hook that does not know an op must return res unchanged.
 */
typedef int (*vems_fault_fn)(void *arg, char op, int res, uint32_t len);
void vems__fault_set(vems_fault_fn fn, void *arg);
int vems__fault_apply(char op, int res, uint32_t len);

/*
 * Test hook: when set, called with the pool's backend right after
 * vems__uring_open() succeeds; it may replace *bp with a wrapper (a crash
 * harness interposes on the ops table to see every transfer and sync).
 * A non-zero return fails the open. NULL (no hook) outside tests.
 */
extern int (*vems__backend_wrap)(struct vems_backend **bp);

#define VEMS_BIO_JOIN_MAX (UINT32_C(1) << 20) /* largest joined read */
/*
 * Can read b ride on read a (a->len so far), as one transfer? Its bytes
 * follow a's in the block file (consecutive slots) and in memory. Callers
 * join only reads into the caller's buffer that promote nothing.
 */
static inline bool
vems__bio_joins(const struct vems_bio *a, const struct vems_bio *b)
{
	/* only page-aligned buffers: a 64 KiB O_DIRECT read into a buffer
	 * aligned to 2 KiB was seen never to complete (tmpfs, io_uring) */
	return (uintptr_t)a->buf % 4096 == 0 && a->off + a->len == b->off &&
		(const uint8_t *)a->buf + a->len == (const uint8_t *)b->buf &&
		a->len + b->len <= VEMS_BIO_JOIN_MAX;
}

#endif /* VEMS_BACKEND_H */
