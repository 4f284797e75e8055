/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spill.c -- moving cold extents to the block file
 *
 * Above extent.c (which commits the switch), alloc.c (frames and slots)
 * and xfer.c (the block transfers).
 *
 * A spill of a dirty (PMEM) extent, in design rule 2's order:
 *
 *   a. object locked shared: note the frame's generation, CRC-32C of the
 *      frame, claim a free slot (DRAM only);                 unlocked
 *   b. write frame -> slot through the backend, then one block-file sync
 *      for the whole batch;                                  no lock held
 *   c. object locked exclusively: if the frame's generation is unchanged
 *      (nobody wrote it during b), store slot and crc into the entry,
 *      fence, then the 1-byte state store PMEM -> BLOCK (the commit),
 *      fence; only then the frame goes back to the free list.
 *
 * A crash before c's state store leaves the extent PMEM and the slot
 * unreferenced: the next open's rebuild() derives the free slots from the
 * entries, so it is not even leaked. A write during b bumps the generation
 * and the spill of that extent is abandoned (the slot is freed). A clean
 * (BOTH) extent only needs c's state store: no I/O.
 *
 * Locks: a spill never holds an object lock across I/O and only try-locks
 * objects (see lock_obj); a writer that spills synchronously holds its own
 * object, whose extents need no lock.
 */

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "extent.h"
#include "vems_internal.h"

#define SPILL_BATCH VEMS_SPILL_BATCH

/* --- spilling -------------------------------------------------------- */

struct victim {
	/* entry, frame, slot, crc, state (at pick time: PMEM, which needs
	 * I/O, or BOTH) and, after phase c, res: 1 freed, or -errno */
	struct vems_xspill x;
	uint32_t gen, ext;
	uint64_t serial;
	bool live; /* prepared, still to be committed */
	struct vems_bio bio;
};

/* CLOCK_REALTIME `ms` from now, for timed waits. */
static struct timespec
deadline_in(unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	while (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/*
 * Locks n for a spill phase; the held object needs none. Never waits: a
 * writer that spills synchronously holds its own object and may be waiting
 * for this very spill to end, and the background spiller holds meta_lock
 * shared (which creates and removes wait for). An object busy through a
 * few tries is in use, hence not cold anyway: it is passed over.
 */
bool
vems__obj_trylock(struct vems_objnode *n, struct vems_objnode *held, bool excl)
{
	if (n == held)
		return true;
	for (int i = 0; i < 64; i++) {
		if ((excl ? vems__rw_trywrlock(&n->lock)
			  : vems__rw_tryrdlock(&n->lock)) == 0)
			return true;
		sched_yield();
	}
	return false;
}

static void
unlock_obj(struct vems_objnode *n, struct vems_objnode *held)
{
	if (n != held)
		vems__rw_unlock(&n->lock);
}

static bool
lock_meta(struct vems_pool *p, struct vems_objnode *held)
{
	/*
	 * vems_pool_check takes meta_lock exclusively and then every object
	 * lock: a writer holding its object must not wait for meta_lock.
	 */
	if (held)
		return pthread_rwlock_tryrdlock(&p->meta_lock) == 0;
	pthread_rwlock_rdlock(&p->meta_lock);
	return true;
}

static struct vems_objnode *
owner(struct vems_pool *p, uint64_t serial, struct vems_objnode *held,
      bool have_meta)
{
	if (held && serial == held->serial)
		return held;
	return have_meta ? vems__obj_by_serial(p, serial) : NULL;
}

/* Phase a for one victim, its object locked shared; false: not now. */
static bool
prepare(struct vems_pool *p, struct victim *v, struct vems_objnode *n,
	struct vems_objnode *held, uint32_t lo, uint32_t hi, bool *block_full)
{
	const struct vems_entry *e = &p->entries[v->x.entry];
	/* re-read under the lock: the frame may have changed owner */
	if (vems__entry_owner(e) != v->serial || e->frame != v->x.frame ||
	    (e->state != VEMS_ES_PMEM && e->state != VEMS_ES_BOTH) ||
	    (n == held && e->ext_index >= lo && e->ext_index <= hi))
		return false;
	v->ext = e->ext_index;
	v->x.state = e->state;
	v->gen = atomic_load_explicit(&p->fr[v->x.frame].gen,
				      memory_order_relaxed);
	if (v->x.state == VEMS_ES_BOTH)
		return true; /* clean: no I/O */
	if (!vems__slot_alloc(p, &v->x.slot)) {
		*block_full = true;
		return false;
	}
	uint8_t *f = vems__frame_addr(p, v->x.frame);
	v->x.crc = vems__pchecks_fill(p, v->x.slot, f);
	v->bio = (struct vems_bio){.buf = f,
				   .off = vems__slot_off(p, v->x.slot),
				   .len = (uint32_t)p->extent_size,
				   .write = true,
				   .res = VEMS_BIO_PENDING};
	return true;
}

/* Still what phase a saw (nobody wrote, moved or freed it)? n locked. */
static bool
unchanged(struct vems_pool *p, const struct victim *v)
{
	const struct vems_entry *e = &p->entries[v->x.entry];
	return vems__entry_owner(e) == v->serial && e->frame == v->x.frame &&
		e->state == v->x.state &&
		atomic_load_explicit(&p->fr[v->x.frame].gen,
				     memory_order_relaxed) == v->gen;
}

/*
 * Phase c for the victims [0, cnt) of one object, locked exclusively: the
 * ones nobody changed meanwhile switch together (extent.c: slots and crcs,
 * fence, states, fence, frames freed). Sets x.res: 1 freed, -EAGAIN
 * changed meanwhile, other < 0 failed at an msync.
 */
static void
commit_group(struct vems_pool *p, struct vems_objnode *n, struct victim *v,
	     size_t cnt)
{
	struct vems_xspill *go[SPILL_BATCH];
	size_t ngo = 0;
	for (size_t i = 0; i < cnt; i++) {
		if (!unchanged(p, &v[i]))
			v[i].x.res = -EAGAIN;
		else
			go[ngo++] = &v[i].x;
	}
	if (ngo)
		vems__ext_spill_commit(p, n, go, ngo);
}

static int
victim_cmp(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	if (x->serial != y->serial)
		return x->serial < y->serial ? -1 : 1;
	return x->x.frame < y->x.frame ? -1 : x->x.frame > y->x.frame;
}

static int
victim_ext_cmp(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	return x->ext < y->ext ? -1 : x->ext > y->ext;
}

/* Ends a spill round; true if other spills are still in flight. */
static bool
spill_end(struct vems_pool *p)
{
	unsigned left = atomic_fetch_sub(&p->spills_inflight, 1) - 1;
	pthread_mutex_lock(&p->sp_lock);
	pthread_cond_broadcast(&p->sp_done);
	pthread_mutex_unlock(&p->sp_lock);
	return left > 0;
}

/* Which victims a spill round takes. */
enum pick {
	PICK_POLICY, /* the replacement policy's */
	PICK_OWN,    /* the held object's own cold extents */
	PICK_RANGE,  /* whatever is resident in frames [lo, hi) */
};

static int
spill_round(struct vems_pool *p, uint32_t want, struct vems_objnode *held,
	    uint32_t lo, uint32_t hi, enum pick pick)
{
	uint32_t frames[SPILL_BATCH];
	struct victim vs[SPILL_BATCH];
	struct vems_bio *bios[SPILL_BATCH];
	if (want > SPILL_BATCH)
		want = SPILL_BATCH;
	if (vems__pool_failed(p))
		return vems__pool_writable(p);
	atomic_fetch_add(&p->spills_inflight, 1);
	uint32_t nv = pick == PICK_OWN
		? vems__pol_victims_own(p, held->serial, lo, hi, frames, want)
		: pick == PICK_RANGE
		? vems__pol_victims_range(p, lo, hi, frames, want)
		: vems__pol_victims(p, frames, want);
	if (pick == PICK_RANGE)
		lo = hi = 0; /* (no object is held) */
	if (nv == 0) {
		spill_end(p);
		return 0;
	}
	/* owners, then grouped: one lock per object and phase */
	pthread_mutex_lock(&p->pol_lock);
	for (uint32_t i = 0; i < nv; i++) {
		vs[i] = (struct victim){.x = {.frame = frames[i],
					      .entry = p->fr[frames[i]].entry}};
		vs[i].serial = vems__entry_owner(&p->entries[vs[i].x.entry]);
	}
	pthread_mutex_unlock(&p->pol_lock);
	qsort(vs, nv, sizeof(*vs), victim_cmp);

	bool block_full = false;
	bool have_meta = lock_meta(p, held);
	size_t nio = 0;
	for (uint32_t i = 0, j; i < nv; i = j) {
		for (j = i; j < nv && vs[j].serial == vs[i].serial; j++)
			;
		struct vems_objnode *n =
			owner(p, vs[i].serial, held, have_meta);
		bool locked = n && vems__obj_trylock(n, held, false);
		if (locked) {
			/* in extent order, so that an object's consecutive
			 * extents get consecutive slots (reads of them are
			 * then one transfer: io.c, aio.c); prepare checks
			 * that each entry is still the object's */
			for (uint32_t k = i; k < j; k++)
				vs[k].ext = p->entries[vs[k].x.entry].ext_index;
			qsort(vs + i, j - i, sizeof(*vs), victim_ext_cmp);
		}
		for (uint32_t k = i; k < j; k++) {
			vs[k].live = locked &&
				prepare(p, &vs[k], n, held, lo, hi,
					&block_full);
			if (!vs[k].live)
				vems__pol_putback(p, vs[k].x.frame);
			else if (vs[k].x.state == VEMS_ES_PMEM)
				bios[nio++] = &vs[k].bio;
		}
		if (locked)
			unlock_obj(n, held);
	}
	if (have_meta)
		pthread_rwlock_unlock(&p->meta_lock);

	/* b: the batch's writes, then one sync (no lock held) */
	int io_err = nio
		? vems__bio_run(p, bios, nio,
				!VEMS_PLANTED(VEMS_PLANT_EARLY_SPILL_ACK))
		: 0;

	have_meta = lock_meta(p, held);
	int freed = 0, err = 0;
	for (uint32_t i = 0, j; i < nv; i = j) {
		for (j = i; j < nv && vs[j].serial == vs[i].serial; j++)
			;
		/* failed transfers drop out; the rest commit together */
		uint32_t k = i;
		for (uint32_t x = i; x < j; x++) {
			if (!vs[x].live)
				continue;
			if (vs[x].x.state == VEMS_ES_PMEM && vs[x].bio.res) {
				vs[x].x.res = vs[x].bio.res;
				vs[x].live = false;
			}
			struct victim t = vs[k];
			vs[k] = vs[x];
			vs[x] = t;
			k++;
		}
		/* now [i, k) were prepared; of them, live ones to commit */
		uint32_t c = i;
		for (uint32_t x = i; x < k; x++)
			if (vs[x].live) {
				struct victim t = vs[c];
				vs[c] = vs[x];
				vs[x] = t;
				c++;
			}
		struct vems_objnode *n =
			c > i ? owner(p, vs[i].serial, held, have_meta) : NULL;
		if (n && vems__obj_trylock(n, held, true)) {
			commit_group(p, n, vs + i, c - i);
			unlock_obj(n, held);
		} else {
			for (uint32_t x = i; x < c; x++)
				vs[x].x.res = -EAGAIN; /* removed, or busy */
		}
		for (uint32_t x = i; x < k; x++) {
			struct victim *v = &vs[x];
			int r = v->x.res;
			if (r == 1) {
				freed++;
				vems__ghost_add(p, v->serial, v->ext);
				if (v->x.state == VEMS_ES_PMEM) {
					VEMS_STAT_ADD(p, spills, 1);
					VEMS_STAT_ADD(p, bytes_spilled,
						      p->extent_size);
				} else {
					VEMS_STAT_ADD(p, clean_drops, 1);
				}
				continue;
			}
			if (r != -EAGAIN && err == 0)
				err = r;
			/*
			 * The slot was never named by the entry unless a
			 * commit failed at its msync (then the state store
			 * may be durable: keep the slot; the next open
			 * settles it).
			 */
			bool unknown = v->bio.res == VEMS_BIO_PENDING;
			/* unknown: the kernel may still write the slot, which
			 * stays out of use until the next open */
			if (v->x.state == VEMS_ES_PMEM && !unknown &&
			    (v->bio.res != 0 || r == -EAGAIN))
				vems__slot_free(p, v->x.slot);
			vems__pol_putback(p, v->x.frame);
		}
	}
	if (have_meta)
		pthread_rwlock_unlock(&p->meta_lock);
	bool others = spill_end(p);
	if (freed == 0 && io_err)
		return io_err;
	if (freed == 0 && err)
		return err;
	if (freed == 0 && block_full && others)
		return 0; /* slots held by spills in flight: wait for them */
	if (freed == 0 && block_full)
		return vems__fail(-ENOSPC,
				  "both tiers are full: pmem (%u extents) "
				  "and the block file %s (%u extents)",
				  p->frames_present, p->block_path, p->nslots);
	return freed;
}

int
vems__spill(struct vems_pool *p, uint32_t want, struct vems_objnode *held,
	    uint32_t lo, uint32_t hi, bool own)
{
	return spill_round(p, want, held, lo, hi, own ? PICK_OWN : PICK_POLICY);
}

int
vems__spill_range(struct vems_pool *p, uint32_t f0, uint32_t f1)
{
	return spill_round(p, SPILL_BATCH, NULL, f0, f1, PICK_RANGE);
}

int
vems__frames_reserve(struct vems_pool *p, uint32_t need, uint32_t *out,
		     struct vems_objnode *held, uint32_t lo, uint32_t hi)
{
	if (need == 0)
		return 0;
	if (need > p->frames_present)
		return vems__fail(-ENOSPC,
				  "a write needs %u extent frames, "
				  "pmem has %u",
				  need, p->frames_present);
	/* tests: as if every other frame were held by writers that wait
	 * for room like this one (the caller lets go and retries) */
	if (held && vems__fault_apply('R', 0, need) < 0)
		return VEMS__RETRY;
	unsigned idle = 0;
	for (;;) {
		pthread_mutex_lock(&p->alloc_lock);
		uint32_t have = p->free_frames.n;
		if (have >= need) {
			/* all or nothing: a writer never sits on part of
			 * what it needs while it waits for the rest */
			for (uint32_t i = 0; i < need; i++)
				(void)vems__fl_pop(&p->free_frames, &out[i]);
			bool low = p->free_frames.n < p->low_frames;
			pthread_mutex_unlock(&p->alloc_lock);
			if (low)
				vems__spill_kick(p);
			return 0;
		}
		pthread_mutex_unlock(&p->alloc_lock);
		VEMS_STAT_ADD(p, sync_spills, 1);
		/*
		 * With a watermark, spill a batch ahead: the block-file
		 * sync is per spill, so a spill per write would pay it per
		 * write. Without one (0%), exactly what is needed.
		 */
		uint32_t batch = p->frames_present / 8 < SPILL_BATCH
			? p->frames_present / 8
			: SPILL_BATCH;
		if (p->low_pct == 0)
			batch = 0;
		uint32_t want = need - have > batch ? need - have : batch;
		int r = vems__spill(p, want, held, lo, hi, false);
		if (r == 0 && held)
			/* every candidate's object was busy: our own cold
			 * extents (not those of this piece) always work */
			r = vems__spill(p, want, held, lo, hi, true);
		if (r < 0)
			return r;
		if (r > 0) {
			idle = 0;
			continue;
		}
		/*
		 * Nothing could be freed now: the rest is reserved by other
		 * writers, taken by spills in flight, or belongs to objects
		 * that other writers hold while they wait like us. After a
		 * few rounds the caller drops its object lock (VEMS__RETRY),
		 * which is what lets those writers through.
		 */
		if (++idle > 8)
			return VEMS__RETRY;
		vems__spill_wait(p, 1);
	}
}

void
vems__spill_wait(struct vems_pool *p, unsigned ms)
{
	struct timespec ts = deadline_in(ms);
	pthread_mutex_lock(&p->sp_lock);
	pthread_cond_timedwait(&p->sp_done, &p->sp_lock, &ts);
	pthread_mutex_unlock(&p->sp_lock);
}

/* --- the background spiller ------------------------------------------ */

/*
 * The reserve the watermarks keep: free frames and clean (BOTH) ones,
 * which a writer or a promotion gets by dropping them (a metadata commit,
 * no I/O). Counting only free frames would keep 5-7.5% of pmem empty in a
 * read-mostly pool, that much less of it serving hits.
 */
static uint32_t
reserve_frames(struct vems_pool *p)
{
	uint64_t clean = atomic_load(&p->nstate[VEMS_ES_BOTH]);
	uint64_t r = vems__free_frames(p) + clean;
	return r < p->frames_present ? (uint32_t)r : p->frames_present;
}

void
vems__spill_kick(struct vems_pool *p)
{
	if (!p->spiller_running || reserve_frames(p) >= p->low_frames)
		return;
	if (atomic_exchange(&p->sp_kicked, true))
		return; /* already signalled */
	pthread_mutex_lock(&p->sp_lock);
	pthread_cond_signal(&p->sp_cond);
	pthread_mutex_unlock(&p->sp_lock);
}

static void *
spiller_main(void *arg)
{
	struct vems_pool *p = arg;
	pthread_mutex_lock(&p->sp_lock);
	while (!p->sp_stop) {
		atomic_store(&p->sp_kicked, false);
		uint32_t have = reserve_frames(p);
		if (have < p->low_frames) {
			/* refill up to the high mark, one batch at a time,
			 * with the lock dropped so stop is never delayed */
			while (!p->sp_stop && have < p->high_frames) {
				pthread_mutex_unlock(&p->sp_lock);
				int r = vems__spill(p, p->high_frames - have,
						    NULL, 0, 0, false);
				pthread_mutex_lock(&p->sp_lock);
				if (r <= 0)
					break; /* full or failing: writers
						  will see it themselves */
				have = reserve_frames(p);
			}
			if (have >= p->low_frames)
				continue;
		}
		struct timespec ts = deadline_in(50);
		pthread_cond_timedwait(&p->sp_cond, &p->sp_lock, &ts);
	}
	pthread_mutex_unlock(&p->sp_lock);
	return NULL;
}

void
vems__watermarks_set(struct vems_pool *p)
{
	uint32_t n = p->frames_present;
	uint32_t low = (uint32_t)((uint64_t)n * p->low_pct / 100);
	uint32_t step = n / 40 > 1 ? n / 40 : 1;
	uint32_t high = low + step < n ? low + step : n;
	p->low_frames = low;
	p->high_frames = high;
}

int
vems__spill_start(struct vems_pool *p, const struct vems_config *cfg)
{
	p->low_pct = cfg ? cfg->low_watermark : VEMS_LOW_WATERMARK_DEFAULT;
	vems__watermarks_set(p);
	pthread_mutex_init(&p->sp_lock, NULL);
	pthread_cond_init(&p->sp_cond, NULL);
	if (p->low_frames == 0 || p->nslots == 0)
		return 0; /* tiny pmem or no watermark: writers spill */
	int ret = pthread_create(&p->spiller, NULL, spiller_main, p);
	if (ret)
		return vems__fail(-ret, "cannot start the spiller thread: %s",
				  strerror(ret));
	p->spiller_running = true;
	return 0;
}

void
vems__spill_stop(struct vems_pool *p)
{
	if (p->spiller_running) {
		pthread_mutex_lock(&p->sp_lock);
		p->sp_stop = true;
		pthread_cond_signal(&p->sp_cond);
		pthread_mutex_unlock(&p->sp_lock);
		pthread_join(p->spiller, NULL);
		p->spiller_running = false;
	}
}
