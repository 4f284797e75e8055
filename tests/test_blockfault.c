/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_blockfault.c -- the block tier when its I/O goes wrong
 *
 * Faults are injected with vems__fault_set() (lib/backend.h): every
 * io_uring completion of the block backend passes through a hook that may
 * turn it into an error, a short count or -EAGAIN. Pools run without the
 * background spiller (low watermark 0), so every spill happens in the
 * writing thread and the hook only ever runs in the test's thread.
 *
 * Besides what each test states, every hook also keeps a model of block
 * durability: a write completion counts as durable only once a later sync
 * completion succeeded. The number of committed spills (stats.spills) must
 * never exceed that count: a committed BLOCK mapping must only name slot
 * data that was made durable first.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
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
#define PARTITION 1
#define BIG_EXTENTS 128 /* multi-extent buffers, in extents */

/* --- content -------------------------------------------------------------- */

/*
 * Deterministic bytes: byte at object offset off for a seed, as tu_fill()
 * does, but made a word at a time (sanitizer builds instrument every
 * store, and these suites move hundreds of MiB).
 */
static inline uint64_t
word_at(uint64_t seed, uint64_t w)
{
	uint64_t x = w * UINT64_C(0x9e3779b97f4a7c15) ^ seed;
	x ^= x >> 29;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 32;
	return x;
}

static void
fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *b = buf;
	size_t i = 0;
	for (; i < len && ((off + i) & 7); i++)
		b[i] = (uint8_t)(word_at(seed, (off + i) >> 3) >>
				 (((off + i) & 7) * 8));
	/* whole words, through a local block (little-endian, as PMDK) */
	uint64_t tmp[512];
	while (len - i >= 8) {
		size_t nw = (len - i) / 8 < 512 ? (len - i) / 8 : 512;
		for (size_t k = 0; k < nw; k++)
			tmp[k] = word_at(seed, ((off + i) >> 3) + k);
		memcpy(b + i, tmp, nw * 8);
		i += nw * 8;
	}
	for (; i < len; i++)
		b[i] = (uint8_t)(word_at(seed, (off + i) >> 3) >>
				 (((off + i) & 7) * 8));
}

/* 1 if buf holds fill()'s bytes, else 0 (and says where). */
static int
verify_fill(const void *buf, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *want = malloc(len ? len : 1);
	assert_non_null(want);
	fill(want, len, seed, off);
	int ok = memcmp(buf, want, len) == 0;
	if (!ok) {
		size_t i = 0;
		while (((const uint8_t *)buf)[i] == want[i])
			i++;
		print_error("mismatch at offset %" PRIu64 ": got %#x want "
			    "%#x (seed %" PRIu64 ")\n",
			    off + i, ((const uint8_t *)buf)[i], want[i], seed);
	}
	free(want);
	return ok;
}

/* --- fault hook -------------------------------------------------------- */

enum fault_kind {
	FK_NONE = 0, /* count only */
	FK_ERR,	     /* the result becomes f->err */
	FK_SHORT,    /* a complete transfer becomes a half one */
	FK_EAGAIN,   /* the result becomes -EAGAIN */
};

struct fault {
	const char *ops; /* which kinds are hit: "w", "r", "f", "rw", ... */
	enum fault_kind kind;
	int err;	     /* FK_ERR */
	unsigned from;	     /* first completion (1-based, per op) hit */
	unsigned every;	     /* then every n-th one (0 and 1: each) */
	unsigned count;	     /* at most this many hits in all (0: no limit) */
	atomic_uint seen[3]; /* completions seen: w, r, f */
	atomic_uint hits[3]; /* completions changed: w, r, f */
	/* durability model */
	struct vems_pool *pool;
	uint64_t spills_base;
	atomic_ullong pending; /* writes done since the last good sync */
	atomic_ullong durable; /* writes followed by a good sync */
	atomic_int violation;
	char why[256];
};

static int
op_index(char op)
{
	return op == 'w' ? 0 : op == 'r' ? 1 : 2;
}

/*
 * Spill commits so far. Called from the hook too, at write and sync
 * completions only: those come from spills, which hold no pool lock
 * during their I/O (the check, which holds the metadata lock, only
 * reads).
 */
static uint64_t
pool_spills(struct vems_pool *p)
{
	struct vems_pool_stats s;
	if (vems_pool_stats(p, &s) != 0)
		return UINT64_MAX;
	return s.spills;
}

/* Spills committed so far must all name writes that a sync made durable. */
static void
fault_check_order(struct fault *f, const char *where)
{
	if (f->pool == NULL || atomic_load(&f->violation))
		return;
	uint64_t committed = pool_spills(f->pool) - f->spills_base;
	uint64_t durable = atomic_load(&f->durable);
	if (committed > durable) {
		snprintf(f->why, sizeof(f->why),
			 "%s: %" PRIu64 " spills committed, only %" PRIu64
			 " block writes were followed by a successful sync "
			 "(%" PRIu64 " unsynced)",
			 where, committed, durable,
			 (uint64_t)atomic_load(&f->pending));
		atomic_store(&f->violation, 1);
	}
}

static int
fault_fn(void *arg, char op, int res, uint32_t len)
{
	struct fault *f = arg;
	if (op != 'w' && op != 'r' && op != 'f')
		return res; /* ring setup, submits, waits, buffers: not ours */
	int oi = op_index(op);
	unsigned k = atomic_fetch_add(&f->seen[oi], 1) + 1;
	if (op != 'r')
		fault_check_order(f,
				  op == 'w' ? "at a write completion"
					    : "at a sync completion");
	int out = res;
	bool hit = f->kind != FK_NONE && f->ops && strchr(f->ops, op) &&
		k >= f->from &&
		(f->every <= 1 || (k - f->from) % f->every == 0);
	if (hit && f->count) {
		unsigned all = atomic_load(&f->hits[0]) +
			atomic_load(&f->hits[1]) + atomic_load(&f->hits[2]);
		hit = all < f->count;
	}
	if (hit) {
		switch (f->kind) {
		case FK_ERR:
			out = f->err;
			break;
		case FK_SHORT:
			/* only a complete transfer of 2 bytes or more */
			if (op == 'f' || res != (int)len || len < 2)
				hit = false;
			else
				out = (int)(len / 2);
			break;
		case FK_EAGAIN:
			out = -EAGAIN;
			break;
		default:
			hit = false;
			break;
		}
		if (hit)
			atomic_fetch_add(&f->hits[oi], 1);
	}
	/* the model: what the library will see */
	if (op == 'w' && out == (int)len)
		atomic_fetch_add(&f->pending, 1);
	if (op == 'f' && out >= 0)
		atomic_fetch_add(&f->durable, atomic_exchange(&f->pending, 0));
	else if (op == 'f' && out != -EAGAIN && out != -EINTR)
		atomic_store(&f->pending, 0); /* unknown: never durable */
	return out;
}

/* Starts counting on pool p (hook installed, counters reset). */
static void
fault_install(struct fault *f, struct vems_pool *p)
{
	for (int i = 0; i < 3; i++) {
		atomic_store(&f->seen[i], 0);
		atomic_store(&f->hits[i], 0);
	}
	f->pool = p;
	f->spills_base = pool_spills(p);
	atomic_store(&f->pending, 0);
	atomic_store(&f->durable, 0);
	atomic_store(&f->violation, 0);
	f->why[0] = '\0';
	vems__fault_set(fault_fn, f);
}

/* Removes the hook; true if the durability model was broken (f->why). */
static bool
fault_remove_soft(struct fault *f)
{
	vems__fault_set(NULL, NULL);
	fault_check_order(f, "after the faults");
	f->pool = NULL;
	return atomic_load(&f->violation) != 0;
}

/* Removes the hook; fails the test if the durability model was broken. */
static void
fault_remove(struct fault *f)
{
	if (fault_remove_soft(f))
		fail_msg("spill committed before its data was durable: %s",
			 f->why);
}

/* --- fixture ------------------------------------------------------------- */

struct fx {
	struct tu_pool tp;
	struct vems_config *cfg;
	struct vems_oid oid;
	struct vems_obj *o;
	uint64_t es;	 /* extent size */
	uint64_t frames; /* pmem extent frames */
	uint8_t *buf, *rd;
	uint8_t *big, *big2; /* BIG_EXTENTS extents each */
	uint64_t *seed;	     /* per extent: fill() seed, 0 = never written */
	uint64_t nseed;
	uint64_t size; /* acknowledged object size */
};

static void
fx_open(struct fx *fx)
{
	TU_OK(vems_pool_open(&fx->tp.pool, fx->tp.pmem, fx->cfg));
	TU_OK(vems_obj_open(fx->tp.pool, fx->oid, 0, &fx->o));
}

static void
fx_close(struct fx *fx)
{
	TU_OK(vems_obj_close(&fx->o));
	TU_OK(vems_pool_close(&fx->tp.pool));
}

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
	assert_true(fx->frames > 40);
	assert_true(info.block_extents >= 2 * fx->frames);
	fx->oid = (struct vems_oid){PARTITION, 0};
	TU_OK(vems_obj_create(fx->tp.pool, &fx->oid));
	TU_OK(vems_obj_open(fx->tp.pool, fx->oid, 0, &fx->o));
	assert_int_equal(posix_memalign((void **)&fx->buf, 4096, fx->es), 0);
	assert_int_equal(posix_memalign((void **)&fx->rd, 4096, fx->es), 0);
	assert_int_equal(
		posix_memalign((void **)&fx->big, 4096, BIG_EXTENTS * fx->es),
		0);
	assert_int_equal(
		posix_memalign((void **)&fx->big2, 4096, BIG_EXTENTS * fx->es),
		0);
	fx->nseed = 4 * fx->frames;
	fx->seed = calloc(fx->nseed, sizeof(*fx->seed));
	assert_non_null(fx->seed);
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
	free(fx->big);
	free(fx->big2);
	free(fx->seed);
}

/* Writes extent ext whole with content `seed`; records it on success. */
static ssize_t
write_ext(struct fx *fx, uint64_t ext, uint64_t seed)
{
	assert_true(ext < fx->nseed);
	fill(fx->buf, fx->es, seed, ext * fx->es);
	ssize_t r = vems_obj_pwrite(fx->o, fx->buf, fx->es, ext * fx->es, 0);
	if (r == (ssize_t)fx->es) {
		fx->seed[ext] = seed;
		if ((ext + 1) * fx->es > fx->size)
			fx->size = (ext + 1) * fx->es;
	}
	return r;
}

/* Every acknowledged extent reads back whole; the size is the acked one. */
static void
verify_all(struct fx *fx)
{
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(fx->o, &st));
	assert_int_equal(st.size, fx->size);
	for (uint64_t e = 0; e * fx->es < fx->size; e++) {
		ssize_t r = vems_obj_pread(fx->o, fx->rd, fx->es, e * fx->es);
		if (r != (ssize_t)fx->es)
			fail_msg("extent %" PRIu64 ": pread = %zd (%s)", e, r,
				 vems_errormsg());
		if (fx->seed[e] == 0) {
			for (uint64_t i = 0; i < fx->es; i++)
				if (fx->rd[i])
					fail_msg("extent %" PRIu64
						 " should be a hole",
						 e);
		} else if (!verify_fill(fx->rd, fx->es, fx->seed[e],
					e * fx->es)) {
			fail_msg("extent %" PRIu64 " differs", e);
		}
	}
}

struct reports {
	int n;
	char text[8192];
};

static void
report_fn(const char *msg, void *arg)
{
	struct reports *r = arg;
	size_t used = strlen(r->text);
	r->n++;
	snprintf(r->text + used, sizeof(r->text) - used, "%s\n", msg);
}

/* vems_pool_check must find nothing. */
static void
check_clean(struct vems_pool *p, const char *when)
{
	struct reports r = {0};
	int n = vems_pool_check(p, report_fn, &r);
	if (n != 0)
		fail_msg("vems_pool_check %s: %d problem(s):\n%s", when, n,
			 r.text);
}

/* With block reads failing, the check may only complain about them. */
static void
check_clean_io_faults(struct vems_pool *p)
{
	struct reports r = {0};
	int n = vems_pool_check(p, report_fn, &r);
	assert_true(n >= 0);
	int unreadable = 0;
	for (const char *q = r.text; (q = strstr(q, "cannot be read")); q++)
		unreadable++;
	if (unreadable != n)
		fail_msg(
			"vems_pool_check: %d problem(s), %d of them unreadable "
			"slots:\n%s",
			n, unreadable, r.text);
}

static void
expect_msg(const char *needle)
{
	const char *m = vems_errormsg();
	if (strstr(m, needle) == NULL)
		fail_msg("error message \"%s\" lacks \"%s\"", m, needle);
}

static struct vems_pool_stats
stats(struct fx *fx)
{
	struct vems_pool_stats s;
	TU_OK(vems_pool_stats(fx->tp.pool, &s));
	return s;
}

/* Fills pmem exactly (no spill yet): extents [0, frames). */
static void
fill_pmem(struct fx *fx, uint64_t seed0)
{
	for (uint64_t e = 0; e < fx->frames; e++)
		assert_int_equal(write_ext(fx, e, seed0 + e), (ssize_t)fx->es);
	struct vems_pool_stats s = stats(fx);
	assert_int_equal(s.pmem_bytes_free, 0);
	assert_int_equal(s.spills, 0);
}

/* An extent of the object in the given state, found in the entry table. */
static bool
find_state(struct vems_pool *p, uint8_t state, uint32_t skip_ext, uint32_t *ext,
	   uint32_t *slot)
{
	for (uint32_t i = 0; i < p->nentries; i++) {
		const struct vems_entry *e = &p->entries[i];
		if (e->serial != 0 && e->state == state &&
		    e->ext_index != skip_ext) {
			*ext = e->ext_index;
			*slot = e->slot;
			return true;
		}
	}
	return false;
}

#define R_NOBJ 2
/* the objects together about twice what pmem holds (~120 frames) */
#define R_SPAN (8 * MIB)
#define R_OPS 24
#define R_MAXW (3 * MIB)

struct ctx {
	struct fx fx;
	/* test_fault_reopen_clean: R_NOBJ objects, not fx.o */
	struct vems_oid oids[R_NOBJ];
	struct vems_obj *o[R_NOBJ];
	uint8_t *shadow[R_NOBJ];
	uint64_t size[R_NOBJ];
	uint8_t *wbuf, *rbuf;
};

static int
setup(void **state)
{
	struct ctx *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	*state = t;
	return 0;
}

/* Cleans up whatever a test left, also when it failed half-way. */
static int
teardown(void **state)
{
	struct ctx *t = *state;
	vems__fault_set(NULL, NULL);
	for (int i = 0; i < R_NOBJ; i++) {
		vems_obj_close(&t->o[i]);
		free(t->shadow[i]);
	}
	free(t->wbuf);
	free(t->rbuf);
	fx_destroy(&t->fx);
	free(t);
	return 0;
}

/* --- 1. a flipped bit in a block slot ---------------------------------- */

static void
flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

static void
test_checksum_flip(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bfcrc");
	uint64_t n = fx->frames + 40;
	for (uint64_t e = 0; e < n; e++)
		assert_int_equal(write_ext(fx, e, 1000 + e), (ssize_t)fx->es);
	assert_true(stats(fx).extents_block > 0);

	/* which extents live where, from the entry table */
	fx_close(fx);
	fx_open(fx);
	struct vems_pool *p = fx->tp.pool;
	uint32_t bad = 0, slot = 0, other = 0, oslot = 0, res = 0, rslot = 0;
	assert_true(find_state(p, VEMS_ES_BLOCK, UINT32_MAX, &bad, &slot));
	assert_true(find_state(p, VEMS_ES_BLOCK, bad, &other, &oslot));
	assert_true(find_state(p, VEMS_ES_PMEM, UINT32_MAX, &res, &rslot));
	assert_int_equal(p->block_data_off, VEMS_BLOCK_DATA_OFF);
	fx_close(fx);
	flip_byte(fx->tp.block, VEMS_BLOCK_DATA_OFF + slot * fx->es + 777);
	fx_open(fx);

	char obj[64], offs[64], slots[64];
	snprintf(obj, sizeof(obj), "object %d:%" PRIu64, PARTITION, fx->oid.id);
	snprintf(offs, sizeof(offs), "offset %" PRIu64, bad * fx->es);
	snprintf(slots, sizeof(slots), "slot %u ", slot);

	/* the whole extent (read straight into the caller's buffer) */
	memset(fx->rd, 0, fx->es);
	assert_int_equal(vems_obj_pread(fx->o, fx->rd, fx->es, bad * fx->es),
			 -EIO);
	expect_msg(obj);
	expect_msg(offs);
	expect_msg(slots);
	expect_msg("checksum");
	/* part of it (through a bounce buffer): same, and no bytes leak */
	memset(fx->rd, 0xa5, 100);
	assert_int_equal(vems_obj_pread(fx->o, fx->rd, 100, bad * fx->es + 700),
			 -EIO);
	for (int i = 0; i < 100; i++)
		assert_int_equal(fx->rd[i], 0xa5);
	expect_msg(obj);
	expect_msg("checksum");
	/* a range across a good and the bad extent fails too */
	uint8_t *two = fx->big; /* 2 extents */
	uint64_t from = bad > 0 ? (bad - 1) * fx->es : bad * fx->es;
	assert_int_equal(vems_obj_pread(fx->o, two, 2 * fx->es, from), -EIO);
	assert_true(stats(fx).checksum_failures >= 3);

	/* other extents, in the block file and in pmem, read fine */
	assert_int_equal(vems_obj_pread(fx->o, fx->rd, fx->es, other * fx->es),
			 (ssize_t)fx->es);
	assert_true(
		verify_fill(fx->rd, fx->es, fx->seed[other], other * fx->es));
	assert_int_equal(vems_obj_pread(fx->o, fx->rd, fx->es, res * fx->es),
			 (ssize_t)fx->es);
	assert_true(verify_fill(fx->rd, fx->es, fx->seed[res], res * fx->es));

	/* the check names the slot */
	struct reports r = {0};
	int probs = vems_pool_check(fx->tp.pool, report_fn, &r);
	assert_true(probs >= 1);
	assert_int_equal(probs, r.n);
	if (strstr(r.text, slots) == NULL || strstr(r.text, "checksum") == NULL)
		fail_msg("check did not name slot %u: %s", slot, r.text);

	/* overwriting the whole extent needs no read and repairs it */
	assert_int_equal(write_ext(fx, bad, 77777), (ssize_t)fx->es);
	assert_int_equal(vems_obj_pread(fx->o, fx->rd, fx->es, bad * fx->es),
			 (ssize_t)fx->es);
	assert_true(verify_fill(fx->rd, fx->es, 77777, bad * fx->es));
	check_clean(fx->tp.pool, "after the repair");
	verify_all(fx);
	fx_close(fx);
	fx_open(fx);
	check_clean(fx->tp.pool, "after reopen");
	verify_all(fx);
}

/* --- 2./3. block writes fail ------------------------------------------- */

static void
write_error_case(void **state, const char *tag, int err)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, tag);
	fill_pmem(fx, 2000);
	/* the first 4 spill writes work, every one from the 5th fails */
	struct fault f = {.ops = "w", .kind = FK_ERR, .err = err, .from = 5};
	fault_install(&f, fx->tp.pool);
	uint64_t ext = fx->frames, ok = 0, failed = 0;
	for (int i = 0; i < 20; i++, ext++) {
		uint64_t before = fx->size;
		ssize_t r = write_ext(fx, ext, 3000 + ext);
		if (r == (ssize_t)fx->es) {
			assert_int_equal(failed, 0); /* all fail from then on */
			ok++;
			continue;
		}
		assert_int_equal(r, err);
		expect_msg("block file");
		expect_msg(fx->tp.block);
		struct vems_obj_stat st;
		TU_OK(vems_obj_stat(fx->o, &st));
		assert_int_equal(st.size, before);
		failed++;
		ext--; /* try the same extent again */
	}
	assert_int_equal(ok, 4);
	assert_true(failed > 0);
	struct vems_pool_stats s = stats(fx);
	assert_true(s.block_errors > 0);
	assert_int_equal(s.spills, 4);
	/* resident data can still be rewritten (no spill needed) */
	uint64_t last = ext - 1;
	assert_int_equal(write_ext(fx, last, 4444), (ssize_t)fx->es);
	/* everything acknowledged reads back, faults still on */
	verify_all(fx);
	check_clean(fx->tp.pool, "with write faults on");
	fault_remove(&f);

	/* spilling works again at once */
	assert_int_equal(write_ext(fx, ext++, 5555), (ssize_t)fx->es);
	verify_all(fx);
	fx_close(fx);
	fx_open(fx);
	check_clean(fx->tp.pool, "after reopen");
	verify_all(fx);
	/* pmem is full: each new extent evicts one (the reads above brought
	 * clean copies back, so some of them are dropped, not spilled) */
	struct vems_pool_stats s0 = stats(fx);
	for (int i = 0; i < 30; i++, ext++)
		assert_int_equal(write_ext(fx, ext, 6000 + ext),
				 (ssize_t)fx->es);
	struct vems_pool_stats s1 = stats(fx);
	assert_true(s1.spills + s1.clean_drops >=
		    s0.spills + s0.clean_drops + 30);
	assert_true(s1.spills > s0.spills);
	verify_all(fx);
	check_clean(fx->tp.pool, "after more spills");
}

static void
test_spill_write_eio(void **state)
{
	write_error_case(state, "bfweio", -EIO);
}

static void
test_spill_enospc_injected(void **state)
{
	write_error_case(state, "bfwnospc", -ENOSPC);
}

/* --- 4. short transfers are resubmitted -------------------------------- */

static void
test_short_writes_retried(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bfshort");
	/* every 3rd completion of a read or a write transfers half of it */
	struct fault f = {.ops = "rw", .kind = FK_SHORT, .from = 1, .every = 3};
	fault_install(&f, fx->tp.pool);
	uint64_t n = fx->frames + 100;
	for (uint64_t e = 0; e < n; e++)
		assert_int_equal(write_ext(fx, e, 7000 + e), (ssize_t)fx->es);
	/* a multi-extent write (one spill batch of many) too */
	uint8_t *big = fx->big; /* 16 extents */
	fill(big, 16 * fx->es, 8000, n * fx->es);
	assert_int_equal(
		vems_obj_pwrite(fx->o, big, 16 * fx->es, n * fx->es, 0),
		(ssize_t)(16 * fx->es));
	for (uint64_t e = n; e < n + 16; e++)
		fx->seed[e] = 8000; /* fill() depends on the offset only */
	fx->size = (n + 16) * fx->es;
	struct vems_pool_stats s = stats(fx);
	assert_true(s.spills >= 100);
	assert_int_equal(s.block_errors, 0);
	assert_true(atomic_load(&f.hits[0]) > 10);
	/* block reads with short transfers, one extent and many at once */
	verify_all(fx);
	uint8_t *all = fx->big2; /* 32 extents */
	assert_int_equal(vems_obj_pread(fx->o, all, 32 * fx->es, 0),
			 (ssize_t)(32 * fx->es));
	for (uint64_t e = 0; e < 32; e++)
		assert_true(verify_fill(all + e * fx->es, fx->es, fx->seed[e],
					e * fx->es));
	assert_true(stats(fx).block_hits > 0);
	assert_true(atomic_load(&f.hits[1]) > 0);
	check_clean(fx->tp.pool, "with short transfers");
	fault_remove(&f);
	fx_close(fx);
	fx_open(fx);
	check_clean(fx->tp.pool, "after reopen");
	verify_all(fx);
}

/* --- 5. the block-file sync fails -------------------------------------- */

static void
test_sync_failure(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bfsync");
	fill_pmem(fx, 9000);
	struct fault f = {.ops = "f", .kind = FK_ERR, .err = -EIO, .from = 1};
	fault_install(&f, fx->tp.pool);
	uint64_t ext = fx->frames;
	/* only dirty extents: a spill must write and sync, and cannot */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(write_ext(fx, ext, 9500 + ext), -EIO);
		expect_msg("fdatasync");
	}
	/* a multi-extent write: a batch of many, nothing committed either */
	uint8_t *big = fx->big; /* 8 extents */
	fill(big, 8 * fx->es, 1, ext * fx->es);
	assert_int_equal(
		vems_obj_pwrite(fx->o, big, 8 * fx->es, ext * fx->es, 0), -EIO);
	struct vems_pool_stats s = stats(fx);
	assert_int_equal(s.spills, 0);
	assert_int_equal(s.extents_block, 0);
	assert_int_equal(s.extents_both, 0);
	assert_int_equal(s.block_bytes_used, 0);
	assert_true(s.block_errors >= 4);
	assert_true(atomic_load(&f.hits[2]) >= 4);
	assert_true(atomic_load(&f.seen[0]) >= 4); /* the writes were done */
	check_clean(fx->tp.pool, "with sync faults on");
	verify_all(fx);
	fault_remove(&f);

	/*
	 * Clean extents can be dropped without I/O. Make pmem hold clean
	 * copies only: fill it with a second object B (B's extents spill),
	 * truncate away the first object and B's resident tail (their frames
	 * become free), and read B's spilled extents back (a block extent
	 * read while it is a recent ghost is promoted into a free frame as a
	 * clean copy). With syncs failing, a write may then succeed by
	 * dropping a clean copy, never by a spill, and fails when the victim
	 * is dirty.
	 */
	struct vems_oid ob = {PARTITION, 0};
	struct vems_obj *o2;
	TU_OK(vems_obj_create(fx->tp.pool, &ob));
	TU_OK(vems_obj_open(fx->tp.pool, ob, 0, &o2));
	for (uint64_t e = 0; e < 2 * fx->frames; e++) {
		fill(fx->buf, fx->es, 42, e * fx->es);
		assert_int_equal(
			vems_obj_pwrite(o2, fx->buf, fx->es, e * fx->es, 0),
			(ssize_t)fx->es);
	}
	uint64_t bkeep = fx->frames - 8;
	TU_OK(vems_obj_truncate(o2, bkeep * fx->es));
	TU_OK(vems_obj_truncate(fx->o, 0));
	memset(fx->seed, 0, fx->nseed * sizeof(*fx->seed));
	fx->size = 0;
	ext = 0;
	for (int rep = 0; rep < 2; rep++)
		for (uint64_t e = 0; e < bkeep; e++) {
			assert_int_equal(
				vems_obj_pread(o2, fx->rd, fx->es, e * fx->es),
				(ssize_t)fx->es);
			assert_true(
				verify_fill(fx->rd, fx->es, 42, e * fx->es));
		}
	s = stats(fx);
	assert_true(s.extents_both > 10);
	uint64_t spills0 = s.spills, ok = 0, drops = 0, failed = 0;
	fault_install(&f, fx->tp.pool);
	for (uint64_t i = 0; i < fx->frames; i++) {
		struct vems_pool_stats b = stats(fx);
		ssize_t r = write_ext(fx, ext, 9700 + ext);
		struct vems_pool_stats a = stats(fx);
		assert_int_equal(a.spills, spills0); /* never a dirty extent */
		if (r == (ssize_t)fx->es) {
			/* a free frame, or a clean copy dropped */
			assert_true(b.pmem_bytes_free > 0 ||
				    a.clean_drops > b.clean_drops);
			drops += a.clean_drops - b.clean_drops;
			ok++;
			ext++;
			continue;
		}
		assert_int_equal(r, -EIO);
		expect_msg("fdatasync");
		failed++;
	}
	assert_true(drops > 0);	 /* writes went on through clean drops */
	assert_true(failed > 0); /* and failed at dirty victims */
	fault_remove(&f);
	TU_OK(vems_obj_close(&o2));
	check_clean(fx->tp.pool, "after the second round");
	verify_all(fx);
	fx_close(fx);
	fx_open(fx);
	check_clean(fx->tp.pool, "after reopen");
	verify_all(fx);
	/* and spilling works again */
	for (int i = 0; i < 20; i++, ext++) {
		ssize_t r = write_ext(fx, ext, 9900 + ext);
		if (r != (ssize_t)fx->es)
			fail_msg("write after reopen: %zd: %s", r,
				 vems_errormsg());
	}
	verify_all(fx);
	check_clean(fx->tp.pool, "after more spills");
}

/* --- 6. block reads fail ----------------------------------------------- */

static void
test_read_eio(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bfread");
	uint64_t n = fx->frames + 30;
	for (uint64_t e = 0; e < n; e++)
		assert_int_equal(write_ext(fx, e, 11000 + e), (ssize_t)fx->es);
	uint32_t bext = 0, res = 0, sl = 0, bslot = 0;
	assert_true(find_state(fx->tp.pool, VEMS_ES_BLOCK, UINT32_MAX, &bext,
			       &bslot));
	assert_true(
		find_state(fx->tp.pool, VEMS_ES_PMEM, UINT32_MAX, &res, &sl));

	struct fault f = {.ops = "r", .kind = FK_ERR, .err = -EIO, .from = 1};
	fault_install(&f, fx->tp.pool);
	char obj[64], offs[64], slots[64];
	snprintf(obj, sizeof(obj), "object %d:%" PRIu64, PARTITION, fx->oid.id);
	snprintf(offs, sizeof(offs), "offset %" PRIu64, bext * fx->es);
	snprintf(slots, sizeof(slots), "slot %u", bslot);
	assert_int_equal(vems_obj_pread(fx->o, fx->rd, fx->es, bext * fx->es),
			 -EIO);
	expect_msg(obj);
	expect_msg(offs);
	expect_msg(slots);
	expect_msg(fx->tp.block);
	assert_int_equal(vems_obj_pread(fx->o, fx->rd, 10, bext * fx->es + 3),
			 -EIO);
	expect_msg(obj);
	/* pmem-resident data is unaffected */
	assert_int_equal(vems_obj_pread(fx->o, fx->rd, fx->es, res * fx->es),
			 (ssize_t)fx->es);
	assert_true(verify_fill(fx->rd, fx->es, fx->seed[res], res * fx->es));
	/* a partial overwrite of a block extent must read it first: fails,
	 * and the extent stays where it was (the frame reserved for it may
	 * have cost a spill of another extent: writes work) */
	assert_int_equal(vems_obj_pwrite(fx->o, "xyz", 3, bext * fx->es + 5, 0),
			 -EIO);
	expect_msg(obj);
	expect_msg(offs);
	uint32_t e2 = 0, s2 = 0;
	assert_true(
		find_state(fx->tp.pool, VEMS_ES_BLOCK, UINT32_MAX, &e2, &s2));
	assert_int_equal(e2, bext); /* the first BLOCK entry, as before */
	assert_int_equal(s2, bslot);
	check_clean_io_faults(fx->tp.pool);
	/* a whole-extent overwrite needs no read: it works */
	assert_int_equal(write_ext(fx, bext, 12345), (ssize_t)fx->es);
	/* the check reports what it cannot read */
	struct reports r = {0};
	assert_true(vems_pool_check(fx->tp.pool, report_fn, &r) > 0);
	if (strstr(r.text, "cannot be read") == NULL)
		fail_msg("check output: %s", r.text);
	assert_true(atomic_load(&f.hits[1]) > 0);
	fault_remove(&f);

	check_clean(fx->tp.pool, "after the read faults");
	verify_all(fx);
	fx_close(fx);
	fx_open(fx);
	check_clean(fx->tp.pool, "after reopen");
	verify_all(fx);
}

/* --- 7. -EAGAIN is retried --------------------------------------------- */

static void
test_eagain_retried(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bfagain");
	/* every other completion of any kind is refused once */
	struct fault f = {
		.ops = "rwf", .kind = FK_EAGAIN, .from = 1, .every = 2};
	fault_install(&f, fx->tp.pool);
	uint64_t n = fx->frames + 60;
	for (uint64_t e = 0; e < n; e++)
		assert_int_equal(write_ext(fx, e, 13000 + e), (ssize_t)fx->es);
	uint8_t *big = fx->big; /* 8 extents */
	fill(big, 8 * fx->es, 14000, n * fx->es);
	assert_int_equal(vems_obj_pwrite(fx->o, big, 8 * fx->es, n * fx->es, 0),
			 (ssize_t)(8 * fx->es));
	for (uint64_t e = n; e < n + 8; e++)
		fx->seed[e] = 14000;
	fx->size = (n + 8) * fx->es;
	verify_all(fx);
	check_clean(fx->tp.pool, "with -EAGAIN");
	struct vems_pool_stats s = stats(fx);
	assert_int_equal(s.block_errors, 0);
	assert_true(s.spills >= 60);
	assert_true(s.block_hits > 0);
	for (int i = 0; i < 3; i++)
		if (atomic_load(&f.hits[i]) == 0)
			fail_msg("no %c completion was refused", "wrf"[i]);
	fault_remove(&f);
	fx_close(fx);
	fx_open(fx);
	check_clean(fx->tp.pool, "after reopen");
	verify_all(fx);
}

/* --- one failed transfer in a spill batch ------------------------------ */

/*
 * A batch of spill writes where exactly one transfer fails: the others
 * completed, but no sync followed them. Committing them would make BLOCK
 * mappings name data that is not durable.
 */
static void
test_spill_batch_one_eio(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bfbatch");
	fill_pmem(fx, 15000);
	struct fault f = {
		.ops = "w", .kind = FK_ERR, .err = -EIO, .from = 5, .count = 1};
	fault_install(&f, fx->tp.pool);
	uint64_t ext = fx->frames;
	uint8_t *big = fx->big; /* 32 extents */
	fill(big, 32 * fx->es, 16000, ext * fx->es);
	ssize_t r = vems_obj_pwrite(fx->o, big, 32 * fx->es, ext * fx->es, 0);
	assert_true(r == (ssize_t)(32 * fx->es) || r == -EIO);
	assert_int_equal(atomic_load(&f.hits[0]), 1);
	fault_remove(&f); /* fails if a spill committed unsynced data */
	if (r > 0) {
		for (uint64_t e = ext; e < ext + 32; e++)
			fx->seed[e] = 16000; /* one seed for the whole write */
		fx->size = (ext + 32) * fx->es;
	}
	check_clean(fx->tp.pool, "after the failed batch");
	fx_close(fx);
	fx_open(fx);
	check_clean(fx->tp.pool, "after reopen");
	verify_all(fx);
}

/* --- a write of several pieces that fails in a later piece --------------- */

/*
 * A write larger than one piece (64 extents or half of pmem, whichever is
 * less) commits its pieces one by
 * one. When a later piece fails, the object's size stays, and nothing of
 * the write may be left mapped past it: vems_pool_check must be clean and
 * growing the object later must show zeros there, not the failed write.
 */
static void
test_failed_multipiece_write(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bfpiece");
	fill_pmem(fx, 17000);
	uint64_t ext = fx->frames, old = fx->size;
	/* pieces are at most 64 extents and at most half of pmem; the
	 * first piece needs one spill per extent, the second's fail */
	uint64_t piece = fx->frames / 2 < 64 ? fx->frames / 2 : 64;
	const uint64_t n = 2 * piece;
	assert_true(n <= BIG_EXTENTS);
	struct fault f = {.ops = "w",
			  .kind = FK_ERR,
			  .err = -EIO,
			  .from = (unsigned)piece + 1};
	fault_install(&f, fx->tp.pool);
	uint8_t *big = fx->big; /* n extents */
	fill(big, n * fx->es, 18000, ext * fx->es);
	assert_int_equal(
		vems_obj_pwrite(fx->o, big, n * fx->es, ext * fx->es, 0), -EIO);
	assert_int_equal(atomic_load(&f.seen[0]) - atomic_load(&f.hits[0]),
			 piece);
	assert_true(atomic_load(&f.hits[0]) > 0);
	fault_remove(&f);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(fx->o, &st));
	assert_int_equal(st.size, old);
	struct reports r = {0};
	int probs = vems_pool_check(fx->tp.pool, report_fn, &r);
	/* grow past the range the failed write covered: a hole */
	assert_int_equal(vems_obj_pwrite(fx->o, "E", 1, (ext + n) * fx->es, 0),
			 1);
	uint64_t stale = 0, first = 0;
	for (uint64_t e = ext; e < ext + n; e++) {
		assert_int_equal(
			vems_obj_pread(fx->o, fx->rd, fx->es, e * fx->es),
			(ssize_t)fx->es);
		for (uint64_t i = 0; i < fx->es; i++)
			if (fx->rd[i] != 0 && stale++ == 0)
				first = e * fx->es + i;
	}
	if (probs != 0 || stale != 0)
		fail_msg("after a write failed in its second piece: "
			 "vems_pool_check found %d problem(s), and the hole "
			 "later made over the failed range has %" PRIu64
			 " non-zero bytes (the first at %" PRIu64
			 "); check says:\n%.600s",
			 probs, stale, first, r.text);
	fx->size = (ext + n) * fx->es + 1;
	fx_close(fx);
	fx_open(fx);
	check_clean(fx->tp.pool, "after reopen");
}

/* --- a long read of many recently spilled extents ----------------------- */

/*
 * Spilled extents are recent ghosts, and a block extent read while it is
 * one is promoted after the read. A read is fetched in batches of 32
 * extents; one read of 64 spilled extents must not want to promote more
 * than it has room to remember (run under ASan/UBSan to see it).
 */
static void
test_long_read_of_spilled(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bflong");
	uint64_t n = fx->frames + 80;
	for (uint64_t e = 0; e < n; e++)
		assert_int_equal(write_ext(fx, e, 19000 + e), (ssize_t)fx->es);
	assert_true(stats(fx).extents_block >= 64);
	uint8_t *all = fx->big2; /* 64 extents */
	assert_int_equal(vems_obj_pread(fx->o, all, 64 * fx->es, 0),
			 (ssize_t)(64 * fx->es));
	for (uint64_t e = 0; e < 64; e++)
		assert_true(verify_fill(all + e * fx->es, fx->es, fx->seed[e],
					e * fx->es));
	check_clean(fx->tp.pool, "after a long read");
	verify_all(fx);
}

/* --- 8. random faults, then reopen --------------------------------------- */

/* 20 rounds; fewer under TSan (slow pool open/close); the environment
 * variable VEMS_BLOCKFAULT_ROUNDS overrides both. */
static int
rounds(void)
{
	const char *e = getenv("VEMS_BLOCKFAULT_ROUNDS");
	if (e && atoi(e) > 0)
		return atoi(e);
#if defined(__SANITIZE_THREAD__)
	return 8;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	return 8;
#endif
#endif
	return 20;
}

static bool
allowed_err(long long r)
{
	return r == -EIO || r == -ENOSPC || r == -EAGAIN;
}

/*
 * After a failed write or truncate of object i: hook off, the size is the
 * old one, bytes outside [off, off+len) are unchanged and bytes inside are
 * old or new; what is there becomes the truth.
 */
static void
settle_failure(struct ctx *t, struct fault *f, int i, uint64_t off,
	       uint64_t len, uint64_t seed, const char *desc)
{
	vems__fault_set(NULL, NULL);
	/* spills now (the spiller's) have real syncs, never failed ones */
	uint64_t spills0 = pool_spills(f->pool);
	struct vems_obj_stat st;
	TU_OK(vems_obj_stat(t->o[i], &st));
	if (st.size != t->size[i])
		fail_msg("%s: failed op changed size %" PRIu64 " -> %" PRIu64,
			 desc, t->size[i], st.size);
	/* a check, not a use: it brings nothing back into pmem */
	vems__read_no_promote = true;
	ssize_t got = vems_obj_pread(t->o[i], t->rbuf, R_SPAN, 0);
	vems__read_no_promote = false;
	TU_OK(got);
	assert_int_equal(got, (ssize_t)st.size);
	uint64_t end = off + len < st.size ? off + len : st.size;
	uint64_t a = off < st.size ? off : st.size;
	if (memcmp(t->rbuf, t->shadow[i], a) != 0 ||
	    memcmp(t->rbuf + end, t->shadow[i] + end, st.size - end) != 0)
		fail_msg("%s: a failed op changed bytes outside its "
			 "range",
			 desc);
	if (a < end) {
		uint8_t *nw = t->wbuf; /* the write's bytes */
		fill(nw, end - a, seed, a);
		for (uint64_t b = a; b < end; b++)
			if (t->rbuf[b] != t->shadow[i][b] &&
			    t->rbuf[b] != nw[b - a])
				fail_msg("%s: byte %" PRIu64
					 " is %#x, neither old %#x nor new "
					 "%#x",
					 desc, b, t->rbuf[b], t->shadow[i][b],
					 nw[b - a]);
		memcpy(t->shadow[i] + a, t->rbuf + a, end - a);
	}
	atomic_fetch_add(&f->durable, pool_spills(f->pool) - spills0);
	vems__fault_set(fault_fn, f);
}

static void
rnd_verify(struct ctx *t, const char *desc)
{
	for (int i = 0; i < R_NOBJ; i++) {
		struct vems_obj_stat st;
		TU_OK(vems_obj_stat(t->o[i], &st));
		if (st.size != t->size[i])
			fail_msg("%s: object %d size %" PRIu64
				 ", expected %" PRIu64,
				 desc, i, st.size, t->size[i]);
		ssize_t got = vems_obj_pread(t->o[i], t->rbuf, R_SPAN, 0);
		TU_OK(got);
		assert_int_equal(got, (ssize_t)st.size);
		if (memcmp(t->rbuf, t->shadow[i], st.size) != 0)
			fail_msg("%s: object %d differs from its "
				 "acknowledged writes",
				 desc, i);
	}
}

static void
test_fault_reopen_clean(void **state)
{
	struct ctx *t = *state;
	struct fx *fx = &t->fx;
	fx_create(fx, "bfrnd");
	TU_OK(vems_obj_close(&fx->o));
	for (int i = 0; i < R_NOBJ; i++) {
		t->oids[i] = (struct vems_oid){PARTITION, 0};
		TU_OK(vems_obj_create(fx->tp.pool, &t->oids[i]));
		t->shadow[i] = calloc(1, R_SPAN);
	}
	t->wbuf = malloc(R_MAXW);
	t->rbuf = malloc(R_SPAN);
	TU_OK(vems_pool_close(&fx->tp.pool));

	/* fixed, so that a failure repeats; VEMS_BLOCKFAULT_SEED varies it */
	const char *seed_env = getenv("VEMS_BLOCKFAULT_SEED");
	uint64_t rng = seed_env ? strtoull(seed_env, NULL, 0) : 0x5eed1234;
	print_message("seed %#llx\n", (unsigned long long)rng);
	static const char *const opnames[] = {"w", "r", "f"};
	int nviol = 0, total_failures = 0, nrounds = rounds();
	char viol[512] = "";
	for (int round = 0; round < nrounds; round++) {
		TU_OK(vems_pool_open(&fx->tp.pool, fx->tp.pmem, fx->cfg));
		for (int i = 0; i < R_NOBJ; i++)
			TU_OK(vems_obj_open(fx->tp.pool, t->oids[i], 0,
					    &t->o[i]));
		struct fault f = {0};
		f.ops = opnames[tu_rand(&rng) % 3];
		switch (tu_rand(&rng) % 4) {
		case 0:
			f.kind = FK_ERR;
			f.err = -EIO;
			break;
		case 1:
			f.kind = FK_ERR;
			f.err = -ENOSPC;
			break;
		case 2:
			/* a sync has no length: fail it instead */
			f.kind = f.ops[0] == 'f' ? FK_ERR : FK_SHORT;
			f.err = -EIO;
			break;
		default:
			f.kind = FK_EAGAIN;
			break;
		}
		/* a round sees tens of writes, fewer reads and syncs */
		unsigned span = f.ops[0] == 'w' ? 40 : f.ops[0] == 'r' ? 12 : 6;
		f.from = 1 + (unsigned)(tu_rand(&rng) % span);
		f.count = tu_rand(&rng) % 2 ? 1 : 0;
		char desc[160];
		snprintf(desc, sizeof(desc),
			 "round %d (%s completions: %s from #%u, %s)", round,
			 f.ops,
			 f.kind == FK_SHORT	       ? "half"
				 : f.kind == FK_EAGAIN ? "-EAGAIN"
				 : f.err == -EIO       ? "-EIO"
						       : "-ENOSPC",
			 f.from, f.count ? "once" : "every one");
		fault_install(&f, fx->tp.pool);
		int failures = 0;
		for (int k = 0; k < R_OPS; k++) {
			int i = (int)(tu_rand(&rng) % R_NOBJ);
			uint64_t kind = tu_rand(&rng) % 20;
			uint64_t off = tu_rand(&rng) % R_SPAN;
			uint64_t len = 1 +
				tu_rand(&rng) %
					(k % 5 == 0 ? R_MAXW : 400 * 1024);
			if (off + len > R_SPAN)
				len = R_SPAN - off;
			uint64_t seed =
				(uint64_t)round * 1000 + (uint64_t)k + 1;
			if (kind < 13) {
				fill(t->wbuf, len, seed, off);
				ssize_t r = vems_obj_pwrite(t->o[i], t->wbuf,
							    len, off, 0);
				if (r == (ssize_t)len) {
					if (off > t->size[i])
						memset(t->shadow[i] +
							       t->size[i],
						       0, off - t->size[i]);
					memcpy(t->shadow[i] + off, t->wbuf,
					       len);
					if (off + len > t->size[i])
						t->size[i] = off + len;
					continue;
				}
				if (!allowed_err(r))
					fail_msg("%s: pwrite = %zd (%s)", desc,
						 r, vems_errormsg());
				assert_true(vems_errormsg()[0] != '\0');
				failures++;
				settle_failure(t, &f, i, off, len, seed, desc);
			} else if (kind < 19) {
				ssize_t r = vems_obj_pread(t->o[i], t->rbuf,
							   len, off);
				if (r < 0) {
					if (!allowed_err(r))
						fail_msg("%s: pread = "
							 "%zd (%s)",
							 desc, r,
							 vems_errormsg());
					failures++;
					continue;
				}
				uint64_t want = off >= t->size[i] ? 0
					: t->size[i] - off < len
					? t->size[i] - off
					: len;
				assert_int_equal(r, (ssize_t)want);
				if (memcmp(t->rbuf, t->shadow[i] + off, want))
					fail_msg("%s: pread differs", desc);
			} else {
				uint64_t sz = tu_rand(&rng) % R_SPAN;
				int r = vems_obj_truncate(t->o[i], sz);
				if (r == 0) {
					if (sz < t->size[i])
						memset(t->shadow[i] + sz, 0,
						       t->size[i] - sz);
					else
						memset(t->shadow[i] +
							       t->size[i],
						       0, sz - t->size[i]);
					t->size[i] = sz;
					continue;
				}
				if (!allowed_err(r))
					fail_msg("%s: truncate = %d (%s)", desc,
						 r, vems_errormsg());
				failures++;
				settle_failure(t, &f, i, 0, 0, 0, desc);
			}
		}
		/* ordering violations are reported after all rounds ran (see
		 * test_spill_batch_one_eio): the rest is checked first */
		if (fault_remove_soft(&f) && nviol++ == 0)
			snprintf(viol, sizeof(viol), "%s: %s", desc, f.why);
		total_failures += failures;
		rnd_verify(t, desc);
		for (int i = 0; i < R_NOBJ; i++)
			TU_OK(vems_obj_close(&t->o[i]));
		TU_OK(vems_pool_close(&fx->tp.pool));
		TU_OK(vems_pool_open(&fx->tp.pool, fx->tp.pmem, fx->cfg));
		check_clean(fx->tp.pool, "after reopen");
		for (int i = 0; i < R_NOBJ; i++)
			TU_OK(vems_obj_open(fx->tp.pool, t->oids[i],
					    VEMS_O_RDONLY, &t->o[i]));
		rnd_verify(t, desc);
		for (int i = 0; i < R_NOBJ; i++)
			TU_OK(vems_obj_close(&t->o[i]));
		TU_OK(vems_pool_close(&fx->tp.pool));
	}
	print_message("%d operations failed by injection in %d rounds\n",
		      total_failures, nrounds);
	assert_true(total_failures > 0);
	if (nviol)
		fail_msg("in %d of %d rounds a spill committed before its data "
			 "was durable; the first: %s",
			 nviol, nrounds, viol);
}

/* --- check reads the block file while the pool serves I/O ------------- */

/*
 * vems_pool_check used to read every slot with the metadata lock and every
 * object's lock held, so no read or write of the pool could run for as
 * long as the whole block tier took to read. Here the first slot read of a
 * check (seen by the completion hook, in the checking thread) waits for a
 * write and a read on another thread; they must finish while the check is
 * still reading (the wait is a liveness bound, not a timing figure: with
 * the old locking they block until the check ends, after the bound).
 */
struct chk_io {
	struct fx *fx;
	atomic_bool armed, fired, done;
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool go;
	ssize_t wres, rres;
};
static struct chk_io chk;

static void *
chk_writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&chk.m);
	while (!chk.go)
		pthread_cond_wait(&chk.cv, &chk.m);
	pthread_mutex_unlock(&chk.m);
	chk.wres = write_ext(chk.fx, 1, 4242);
	chk.rres = vems_obj_pread(chk.fx->o, chk.fx->rd, chk.fx->es,
				  5 * chk.fx->es);
	pthread_mutex_lock(&chk.m);
	atomic_store(&chk.done, true);
	pthread_cond_broadcast(&chk.cv);
	pthread_mutex_unlock(&chk.m);
	return NULL;
}

static int
chk_hook(void *arg, char op, int res, uint32_t len)
{
	(void)arg;
	(void)len;
	if (op != 'r' || !atomic_load(&chk.armed) ||
	    atomic_exchange(&chk.fired, true))
		return res;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&chk.m);
	chk.go = true;
	pthread_cond_broadcast(&chk.cv);
	while (!atomic_load(&chk.done) &&
	       pthread_cond_timedwait(&chk.cv, &chk.m, &ts) == 0)
		;
	pthread_mutex_unlock(&chk.m);
	return res;
}

static void
test_check_leaves_io_running(void **state)
{
	struct fx *fx = &((struct ctx *)*state)->fx;
	fx_create(fx, "bfchk");
	uint64_t n = fx->frames + 40;
	for (uint64_t e = 0; e < n; e++)
		assert_int_equal(write_ext(fx, e, 1000 + e), (ssize_t)fx->es);
	assert_true(stats(fx).extents_block > 0);
	memset(&chk, 0, sizeof(chk));
	chk.fx = fx;
	pthread_mutex_init(&chk.m, NULL);
	pthread_cond_init(&chk.cv, NULL);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, chk_writer, NULL), 0);
	vems__fault_set(chk_hook, NULL);
	atomic_store(&chk.armed, true);
	int problems = vems_pool_check(fx->tp.pool, NULL, NULL);
	bool done_during = atomic_load(&chk.done);
	vems__fault_set(NULL, NULL);
	pthread_join(th, NULL);
	assert_int_equal(problems, 0);
	assert_true(atomic_load(&chk.fired));
	assert_true(done_during); /* the I/O ran while check was reading */
	assert_int_equal(chk.wres, (ssize_t)fx->es);
	assert_int_equal(chk.rres, (ssize_t)fx->es);
	pthread_mutex_destroy(&chk.m);
	pthread_cond_destroy(&chk.cv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checksum_flip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spill_write_eio, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spill_enospc_injected,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_writes_retried,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_failure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eagain_retried, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spill_batch_one_eio, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_long_read_of_spilled,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_multipiece_write,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_leaves_io_running,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_reopen_clean, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
