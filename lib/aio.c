/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * aio.c -- adaptive sync/async I/O: submit many, reap completions
 *
 * The VEMS rule, per request: what pmem can serve is done inside submit
 * (a copy, or a copy + persist), so its completion is ready at once; only
 * what needs the block file is asynchronous.
 *
 *   reads:  under the object's shared lock, resident extents and holes are
 *           copied at once; each BLOCK extent becomes one io_uring read of
 *           the whole slot (its CRC covers it), the slot pinned so that it
 *           is not reused before the read completes. Checked, copied out
 *           and unpinned when reaped.
 *   writes: tried without block I/O (vems__pwrite_nowait); one that would
 *           need a fetch or a spill goes to the context's worker thread,
 *           which runs the blocking write and posts the completion.
 *
 * The context's io_uring signals its eventfd on every completion; so do
 * immediate and worker completions.
 *
 * When a call on the context's ring fails, the ring is broken (uring.c):
 * what it has in flight is drained, then it is destroyed and the next read
 * gets a new one. A read that cannot be waited for (the drain gave up)
 * fails, and its bounce buffer is never freed: the kernel may still write
 * it (a read straight into the caller's buffer cannot be kept from it).
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "vems_internal.h"

#define QDEPTH 64 /* block reads in flight per context */
#define DEPTH_DEFAULT 64u
#define DEPTH_MAX 4096u

struct sub {
	struct vems_bio bio; /* bio.priv -> this */
	struct areq *r;
	struct sub *prev, *next; /* the context's reads in flight */
	uint32_t ext, entry, slot, crc;
	uint32_t pg, npg; /* the pages read (vems__miss_plan) */
	uint8_t *dst;
	size_t in, chunk;
	uint8_t *buf;
	bool bounce, promote, hot;
	/* the next nfol subs of the request ride on this one's bio (their
	 * slots' bytes follow on, and so do their buffers) */
	unsigned nfol;
	bool follower;
};

struct areq {
	struct vems_aio *u;
	unsigned pending; /* subs not yet completed */
	int err;
	size_t len; /* bytes a read returns */
	struct sub *subs;
	struct areq *next; /* worker queue */
};

struct vems_aio_ctx {
	struct vems_pool *p;
	struct vems_bq *q;
	int efd;
	unsigned depth;
	unsigned outstanding;	/* taken by submit, not yet reaped */
	unsigned bios_inflight; /* submitting thread only */
	struct sub *fly;	/* those reads; submitting thread only */
	bool broken;		/* q failed: drain it, then a new one */

	pthread_mutex_t lock; /* done ring, worker queue */
	pthread_cond_t wcond;
	struct vems_aio **done;
	size_t dhead, dcount;
	struct areq *wq_head, *wq_tail;
	pthread_t worker;
	bool worker_running, stop;
};

static void
signal_efd(struct vems_aio_ctx *c)
{
	uint64_t one = 1;
	/* cannot fail short of a counter overflow; the poll finds it anyway */
	(void)!write(c->efd, &one, sizeof(one));
}

/* A request is done: its result is set and it joins the done ring. */
static void
finish(struct vems_aio_ctx *c, struct areq *r, ssize_t result)
{
	struct vems_aio *u = r->u;
	u->result = result;
	u->internal = NULL;
	free(r->subs);
	free(r);
	pthread_mutex_lock(&c->lock);
	c->done[(c->dhead + c->dcount++) % c->depth] = u;
	pthread_mutex_unlock(&c->lock);
	signal_efd(c);
}

/* --- reads ------------------------------------------------------------ */

/* One block read came back: check it and copy it out. */
static void
sub_check(struct vems_aio_ctx *c, struct sub *s)
{
	struct vems_pool *p = c->p;
	struct areq *r = s->r;
	struct vems_objnode *n = r->u->obj->node;
	int err = s->bio.res;
	if (err) {
		VEMS_STAT_ADD(p, block_errors, 1);
		vems__fail(err,
			   "reading object %" PRIu64 ":%" PRIu64
			   " offset %" PRIu64 " (block slot %u): %s",
			   n->oid.partition, n->oid.id,
			   (uint64_t)s->ext << p->extent_shift, s->slot,
			   strerror(-err));
	} else {
		err = vems__pages_verify(p, n, s->ext, s->slot, s->crc, s->pg,
					 s->npg, s->buf);
		if (err == 0 && s->bounce)
			memcpy(s->dst,
			       s->buf + s->in - (size_t)s->pg * VEMS_PAGE_SIZE,
			       s->chunk);
	}
	s->promote = s->promote && err == 0;
	if (err && r->err == 0)
		r->err = err;
}

/* After promotion: unpin, free, and maybe finish the request. */
static void
sub_release(struct vems_aio_ctx *c, struct sub *s)
{
	struct areq *r = s->r;
	vems__slot_unpin(c->p, s->slot);
	if (s->bounce)
		free(s->buf);
	if (--r->pending == 0)
		finish(c, r, r->err ? r->err : (ssize_t)r->len);
}

static void
fly_add(struct vems_aio_ctx *c, struct sub *s)
{
	s->prev = NULL;
	s->next = c->fly;
	if (c->fly)
		c->fly->prev = s;
	c->fly = s;
	c->bios_inflight++;
}

static void
fly_del(struct vems_aio_ctx *c, struct sub *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->fly = s->next;
	if (s->next)
		s->next->prev = s->prev;
	c->bios_inflight--;
}

/* A broken ring with nothing in flight goes; the next read makes one. */
static void
retire(struct vems_aio_ctx *c)
{
	if (!c->broken || c->bios_inflight > 0)
		return;
	c->p->be->ops->queue_put(c->p->be, c->q); /* destroyed, not cached */
	c->q = NULL;
	c->broken = false;
}

/* The context's ring, made anew after a failure. */
static int
ctx_queue(struct vems_aio_ctx *c)
{
	if (c->q)
		return 0;
	const struct vems_backend_ops *ops = c->p->be->ops;
	int ret = ops->queue_get(c->p->be, QDEPTH, &c->q);
	if (ret)
		return ret;
	if ((ret = ops->set_eventfd(c->q, c->efd))) {
		ops->queue_put(c->p->be, c->q);
		c->q = NULL;
	}
	return ret;
}

/*
 * The drain of a broken ring gave up: every read still in flight fails,
 * its bounce buffer kept out of use for good (the kernel may write it).
 */
/* Releases a bio's subs: its own and its followers'. */
static void
group_release(struct vems_aio_ctx *c, struct sub *lead)
{
	unsigned cnt = 1 + lead->nfol;
	/* the last release may finish the request and free the array */
	for (unsigned g = 0; g < cnt; g++)
		sub_release(c, lead + g);
}

static void
lose_all(struct vems_aio_ctx *c, int err)
{
	while (c->fly) {
		struct sub *s = c->fly;
		fly_del(c, s);
		if (s->bounce) {
			s->bounce = false; /* leaked on purpose */
			s->buf = NULL;
		}
		if (s->r->err == 0)
			s->r->err = err;
		group_release(c, s);
	}
	retire(c);
}

static int
node_cmp(const void *a, const void *b)
{
	const struct sub *x = *(struct sub *const *)a;
	const struct sub *y = *(struct sub *const *)b;
	uintptr_t nx = (uintptr_t)x->r->u->obj->node;
	uintptr_t ny = (uintptr_t)y->r->u->obj->node;
	return nx < ny ? -1 : nx > ny;
}

/*
 * Handles block completions; waits for one if `wait`. The misses of one
 * batch are promoted together, per object: one exclusive lock and one pair
 * of fences for all of them (S3-FIFO admission, as in vems_obj_pread). The
 * slots stay pinned until then.
 */
static int
reap_bios(struct vems_aio_ctx *c, bool wait)
{
	struct vems_bio *out[QDEPTH];
	struct sub *subs[QDEPTH], *pro[QDEPTH];
	struct vems_promo pr[QDEPTH];
	const struct vems_backend_ops *ops = c->p->be->ops;
	if (c->q == NULL)
		return 0;
	int got = c->broken ? ops->drain(c->q, out, QDEPTH)
			    : ops->reap(c->q, out, QDEPTH, wait);
	if (got < 0 && !c->broken) {
		/* the ring failed: what it has in flight is collected now,
		 * each read with its own result */
		c->broken = true;
		got = ops->drain(c->q, out, QDEPTH);
	}
	if (got < 0) {
		int lost = (int)c->bios_inflight;
		lose_all(c, got);
		return lost;
	}
	size_t np = 0;
	for (int i = 0; i < got; i++) {
		subs[i] = out[i]->priv;
		fly_del(c, subs[i]);
		for (unsigned g = 0; g <= subs[i]->nfol; g++) {
			struct sub *x = subs[i] + g;
			x->bio.res = subs[i]->bio.res;
			sub_check(c, x);
		}
		/* a bio with followers has no promotions (vems__bio_joins) */
		if (subs[i]->promote)
			pro[np++] = subs[i];
	}
	qsort(pro, np, sizeof(*pro), node_cmp);
	for (size_t i = 0; i < np;) {
		struct vems_objnode *n = pro[i]->r->u->obj->node;
		size_t k = 0;
		for (; i + k < np && pro[i + k]->r->u->obj->node == n; k++) {
			struct sub *s = pro[i + k];
			pr[k] = (struct vems_promo){s->ext, s->entry, s->slot,
						    s->buf, false,    s->hot};
		}
		vems__promote(c->p, n, pr, k);
		vems__spill_kick(c->p); /* promotions took frames */
		i += k;
	}
	for (int i = 0; i < got; i++)
		group_release(c, subs[i]);
	retire(c);
	return got;
}

static void
submit_read(struct vems_aio_ctx *c, struct areq *r)
{
	struct vems_pool *p = c->p;
	struct vems_aio *u = r->u;
	struct vems_objnode *n = u->obj->node;
	uint64_t es = p->extent_size;
	uint8_t *out = u->buf;
	size_t nsub = 0, done = 0, lead = 0;
	int err = 0;

	vems__rw_rdlock(&n->lock);
	uint64_t size = vems__rec_size(n->rec);
	size_t len = u->off >= size	 ? 0
		: u->len > size - u->off ? (size_t)(size - u->off)
					 : u->len;
	r->len = len;
	size_t maxsub = len ? (len + es - 1) / es + 1 : 0;
	if (maxsub && (r->subs = calloc(maxsub, sizeof(*r->subs))) == NULL)
		err = vems__fail(-ENOMEM, "out of memory");
	uint64_t hits = 0, holes = 0;
	if (err == 0 && n->inl && len > 0) {
		/* a small object: one copy from its inline block */
		memcpy(out, n->inl->data + u->off, len);
		vems__inline_touch(n);
		done = len;
		hits++;
	}
	while (err == 0 && done < len) {
		uint64_t pos = u->off + done;
		uint32_t ext = (uint32_t)(pos >> p->extent_shift);
		uint64_t in = pos & (es - 1);
		size_t chunk = (size_t)(es - in);
		if (chunk > len - done)
			chunk = len - done;
		uint32_t ei;
		if (!vems__read_local(p, n, ext, in, out + done, chunk, &ei,
				      &hits, &holes)) {
			const struct vems_entry *e = &p->entries[ei];
			struct sub *s = &r->subs[nsub];
			/* planned and admitted as in vems_obj_pread */
			struct vems_plan pl;
			vems__miss_plan(p, n, ext, in, chunk, len, out + done,
					&pl);
			*s = (struct sub){.r = r,
					  .ext = ext,
					  .entry = ei,
					  .slot = e->slot,
					  .crc = e->crc,
					  .pg = pl.pg,
					  .npg = pl.npg,
					  .dst = out + done,
					  .in = (size_t)in,
					  .chunk = chunk,
					  .bounce = pl.bounce,
					  .promote = pl.promote,
					  .hot = pl.hot};
			size_t blen = (size_t)pl.npg * VEMS_PAGE_SIZE;
			s->buf = s->bounce ? vems__bounce_alloc(p, blen)
					   : s->dst;
			if (s->buf == NULL) {
				err = vems__fail(-ENOMEM, "out of memory");
				break;
			}
			s->bio = (struct vems_bio){
				.buf = s->buf,
				.off = vems__slot_off(p, s->slot) +
					(uint64_t)pl.pg * VEMS_PAGE_SIZE,
				.len = (uint32_t)blen,
				.res = VEMS_BIO_PENDING,
				.priv = s};
			VEMS_STAT_ADD(p, bytes_block_read, blen);
			/* the slot outlives a rewrite until this read ends */
			vems__slot_pin(p, s->slot);
			struct sub *ld = nsub ? &r->subs[lead] : NULL;
			if (ld && !ld->bounce && !ld->promote && !s->bounce &&
			    !s->promote && vems__bio_joins(&ld->bio, &s->bio)) {
				ld->bio.len += s->bio.len;
				ld->nfol++;
				s->follower = true;
			} else {
				lead = nsub;
			}
			nsub++;
		}
		done += chunk;
	}
	vems__rw_unlock(&n->lock);
	VEMS_STAT_ADD(p, pmem_hits, hits);
	VEMS_STAT_ADD(p, hole_reads, holes);
	VEMS_STAT_ADD(p, reads, 1);
	if (err == 0) {
		VEMS_STAT_ADD(p, bytes_read, len);
		VEMS_STAT_ADD(p, block_hits, nsub);
	}

	/* one extra count keeps r alive until every sub is started */
	r->pending = (unsigned)nsub + 1;
	r->err = err;
	for (size_t i = 0; i < nsub;) {
		if (err) {
			/* not started: undo as if it had failed */
			vems__slot_unpin(p, r->subs[i].slot);
			if (r->subs[i].bounce)
				free(r->subs[i].buf);
			r->pending--;
			i++;
			continue;
		}
		while (c->bios_inflight >= QDEPTH)
			if ((err = reap_bios(c, true)) < 0)
				break;
			else
				err = 0;
		if (err || (err = ctx_queue(c)) != 0)
			continue;
		/* the bios of the next leaders, as many as there is room */
		size_t room = QDEPTH - c->bios_inflight, k = 0, at[QDEPTH];
		struct vems_bio *bv[QDEPTH];
		for (size_t x = i; x < nsub && k < room;
		     x += 1 + r->subs[x].nfol) {
			at[k] = x;
			bv[k++] = &r->subs[x].bio;
		}
		int started = p->be->ops->submit(c->q, bv, k);
		for (int j = 0; j < started; j++)
			fly_add(c, &r->subs[at[j]]);
		if ((size_t)started < k) {
			/* the ring broke: the rest is undone above */
			err = bv[started]->res;
			c->broken = true;
			retire(c);
			i = at[started];
		} else {
			i = at[k - 1] + 1 + r->subs[at[k - 1]].nfol;
		}
	}
	if (err && r->err == 0)
		r->err = err;
	if (--r->pending == 0)
		finish(c, r, r->err ? r->err : (ssize_t)r->len);
}

/* --- writes ----------------------------------------------------------- */

static void *
worker_main(void *arg)
{
	struct vems_aio_ctx *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->wq_head == NULL && !c->stop)
			pthread_cond_wait(&c->wcond, &c->lock);
		if (c->wq_head == NULL)
			break;
		struct areq *r = c->wq_head;
		c->wq_head = r->next;
		if (c->wq_head == NULL)
			c->wq_tail = NULL;
		pthread_mutex_unlock(&c->lock);
		struct vems_aio *u = r->u;
		ssize_t res = vems_obj_pwrite(u->obj, u->buf, u->len, u->off,
					      u->flags);
		finish(c, r, res);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void
submit_write(struct vems_aio_ctx *c, struct areq *r)
{
	struct vems_aio *u = r->u;
	ssize_t res =
		vems__pwrite_nowait(u->obj, u->buf, u->len, u->off, u->flags);
	if (res != -EAGAIN) {
		finish(c, r, res); /* served by pmem (or a plain error) */
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (!c->worker_running) {
		int e = pthread_create(&c->worker, NULL, worker_main, c);
		if (e) {
			pthread_mutex_unlock(&c->lock);
			finish(c, r,
			       vems__fail(-e, "cannot start the aio worker: %s",
					  strerror(e)));
			return;
		}
		c->worker_running = true;
	}
	r->next = NULL;
	if (c->wq_tail)
		c->wq_tail->next = r;
	else
		c->wq_head = r;
	c->wq_tail = r;
	pthread_cond_signal(&c->wcond);
	pthread_mutex_unlock(&c->lock);
}

/* --- the context ------------------------------------------------------ */

int
vems_aio_ctx_new(struct vems_pool *p, unsigned depth, struct vems_aio_ctx **cp)
{
	if (p == NULL || cp == NULL)
		return vems__fail(-EINVAL,
				  "vems_aio_ctx_new: pool or ctx "
				  "is NULL");
	if (depth == 0)
		depth = DEPTH_DEFAULT;
	if (depth > DEPTH_MAX)
		return vems__fail(-EINVAL, "aio depth %u: at most %u", depth,
				  DEPTH_MAX);
	struct vems_aio_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	c->p = p;
	c->depth = depth;
	c->efd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wcond, NULL);
	int ret = 0;
	c->done = calloc(depth, sizeof(*c->done));
	if (c->done == NULL) {
		ret = vems__fail(-ENOMEM, "out of memory");
		goto fail;
	}
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		ret = vems__fail(-errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((ret = p->be->ops->queue_get(p->be, QDEPTH, &c->q)))
		goto fail;
	if ((ret = p->be->ops->set_eventfd(c->q, c->efd))) {
		p->be->ops->queue_put(p->be, c->q);
		c->q = NULL;
		goto fail;
	}
	atomic_fetch_add(&p->aio_ctxs, 1); /* vems_pool_close waits for it */
	*cp = c;
	return 0;
fail:
	if (c->efd >= 0)
		close(c->efd);
	free(c->done);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wcond);
	free(c);
	return ret;
}

/* Takes up to max from the done ring. */
static size_t
take_done(struct vems_aio_ctx *c, struct vems_aio **out, size_t max)
{
	pthread_mutex_lock(&c->lock);
	size_t k = c->dcount < max ? c->dcount : max;
	for (size_t i = 0; i < k; i++) {
		out[i] = c->done[c->dhead];
		c->dhead = (c->dhead + 1) % c->depth;
	}
	c->dcount -= k;
	pthread_mutex_unlock(&c->lock);
	c->outstanding -= (unsigned)k;
	return k;
}

static int
collect(struct vems_aio_ctx *c, struct vems_aio **out, size_t max)
{
	uint64_t cnt;
	/* reset first: an event after this read is seen by the next poll */
	(void)!read(c->efd, &cnt, sizeof(cnt));
	while (c->bios_inflight > 0) {
		int r = reap_bios(c, false);
		if (r < 0)
			return r;
		if (r == 0)
			break;
	}
	return (int)take_done(c, out, max);
}

int
vems_aio_poll(struct vems_aio_ctx *c, struct vems_aio *done[], size_t max)
{
	if (c == NULL || (done == NULL && max > 0))
		return vems__fail(-EINVAL, "vems_aio_poll: ctx or done NULL");
	return collect(c, done, max);
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
vems_aio_wait(struct vems_aio_ctx *c, struct vems_aio *done[], size_t min,
	      size_t max, int timeout_ms)
{
	if (c == NULL || (done == NULL && max > 0))
		return vems__fail(-EINVAL, "vems_aio_wait: ctx or done NULL");
	if (min > max || min > c->outstanding)
		return vems__fail(-EINVAL,
				  "vems_aio_wait: min %zu exceeds max %zu or "
				  "the %u requests in flight",
				  min, max, c->outstanding);
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	size_t got = 0;
	for (;;) {
		int r = collect(c, done + got, max - got);
		if (r < 0)
			return got ? (int)got : r;
		got += (size_t)r;
		if (got >= min || got == max)
			return (int)got;
		int wait_ms = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				return (int)got;
			wait_ms = left > 1000000 ? 1000000 : (int)left;
		}
		struct pollfd pfd = {.fd = c->efd, .events = POLLIN};
		if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR)
			return got ? (int)got
				   : vems__fail(-errno, "poll: %s",
						strerror(errno));
	}
}

int
vems_aio_eventfd(struct vems_aio_ctx *c)
{
	if (c == NULL)
		return vems__fail(-EINVAL, "vems_aio_eventfd: ctx is NULL");
	return c->efd;
}

int
vems_aio_submit(struct vems_aio_ctx *c, struct vems_aio *const reqs[], size_t n)
{
	if (c == NULL || (reqs == NULL && n > 0))
		return vems__fail(-EINVAL, "vems_aio_submit: ctx or reqs NULL");
	for (size_t i = 0; i < n; i++)
		if (reqs[i] == NULL)
			return vems__fail(-EINVAL,
					  "vems_aio_submit: request %zu is "
					  "NULL",
					  i);
	size_t room = c->depth - c->outstanding;
	size_t k = n < room ? n : room;
	if (k == 0 && n > 0)
		return vems__fail(-EAGAIN,
				  "aio context full (%u requests not reaped)",
				  c->depth);
	for (size_t i = 0; i < k; i++) {
		struct vems_aio *u = reqs[i];
		struct areq *r = calloc(1, sizeof(*r));
		c->outstanding++;
		if (r == NULL) {
			/* no room to track it: complete it as failed */
			u->result = vems__fail(-ENOMEM, "out of memory");
			u->internal = NULL;
			pthread_mutex_lock(&c->lock);
			c->done[(c->dhead + c->dcount++) % c->depth] = u;
			pthread_mutex_unlock(&c->lock);
			signal_efd(c);
			continue;
		}
		r->u = u;
		u->internal = r;
		if (u->obj == NULL || (u->buf == NULL && u->len > 0) ||
		    (u->op != VEMS_AIO_READ && u->op != VEMS_AIO_WRITE)) {
			finish(c, r,
			       vems__fail(-EINVAL,
					  "aio request %zu: no "
					  "object, no buffer or bad op",
					  i));
		} else if (u->op == VEMS_AIO_READ) {
			if (u->off > VEMS_OBJ_MAX_SIZE)
				finish(c, r,
				       vems__fail(-EINVAL,
						  "offset %" PRIu64 " past "
						  "the maximum object size",
						  u->off));
			else
				submit_read(c, r);
		} else {
			submit_write(c, r);
		}
	}
	return (int)k;
}

void
vems_aio_ctx_delete(struct vems_aio_ctx **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	struct vems_aio_ctx *c = *cp;
	struct vems_aio *sink[64];
	while (c->outstanding > 0) {
		size_t want = c->outstanding < 64 ? c->outstanding : 64;
		if (vems_aio_wait(c, sink, 1, want, -1) < 0)
			break;
	}
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->wcond);
	pthread_mutex_unlock(&c->lock);
	if (c->worker_running)
		pthread_join(c->worker, NULL);
	if (c->fly) /* could not be collected: a failed ring */
		lose_all(c, -EIO);
	if (c->q)
		c->p->be->ops->queue_put(c->p->be, c->q);
	atomic_fetch_sub(&c->p->aio_ctxs, 1);
	close(c->efd);
	free(c->done);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wcond);
	free(c);
	*cp = NULL;
}
