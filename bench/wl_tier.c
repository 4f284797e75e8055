/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wl_tier.c -- the capacity tier's workloads: spill throughput, random
 * reads over working sets larger than pmem (hit ratio against an exact LRU
 * of pmem's size, throughput against the block tier alone), and pool open
 * time and DRAM use as the number of mapped extents grows
 */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vems.h>

#include "common.h"

static bool
durable_mode(const struct bench *b)
{
	return strcmp(b->mode, "pmem") != 0;
}

/* --- spill throughput ------------------------------------------------ */

/* Writes `total` bytes sequentially in 1 MiB calls; MiB/s. */
static double
vems_seq_write(struct bench *b, uint64_t total, unsigned flags,
	       uint64_t *spills)
{
	struct vpool vp;
	vp_create(b, &vp, b->pmem_size, 8 * b->pmem_size, 0,
		  VEMS_LOW_WATERMARK_DEFAULT, flags);
	struct vems_obj *o = vp_object(&vp, 0);
	uint8_t *buf = aligned_alloc(4096, MIB);
	memset(buf, 0x6b, MIB);
	double t0 = bench_now_ns();
	for (uint64_t off = 0; off < total; off += MIB)
		CHECK(vems_obj_pwrite(o, buf, MIB, off, 0));
	double s = (bench_now_ns() - t0) / 1e9;
	struct vems_pool_stats st;
	CHECK(vems_pool_stats(vp.pool, &st));
	*spills = st.spills;
	free(buf);
	vems_obj_close(&o);
	vp_destroy(&vp);
	return (double)total / MIB / s;
}

/* fio's bandwidth (MiB/s) for one sequential job on the disk, or a
 * negative number without fio. */
static double
fio_seq(struct bench *b, const char *rw, const char *bs, unsigned qd,
	uint64_t total, const char *extra)
{
	if (system("command -v fio >/dev/null 2>&1") != 0)
		return -1;
	char path[4096], cmd[9000];
	bench_path(b, path, sizeof(path), b->disk_dir, "fio");
	snprintf(cmd, sizeof(cmd),
		 "fio --name=seq --filename=%s --rw=%s --bs=%s "
		 "--iodepth=%u --ioengine=io_uring --direct=1 --size=%llu "
		 "%s --output-format=json 2>/dev/null",
		 path, rw, bs, qd, (unsigned long long)total, extra);
	FILE *p = popen(cmd, "r");
	char line[512];
	double bw = -1;
	while (p && fgets(line, sizeof(line), p)) {
		/* read, write and trim sections each have one: the job's
		 * own is the only non-zero one */
		char *k = strstr(line, "\"bw_bytes\" : ");
		double v = k ? strtod(k + 13, NULL) / MIB : 0;
		if (v > bw)
			bw = v;
	}
	if (p)
		pclose(p);
	unlink(path);
	return bw > 0 ? bw : -1;
}

/* fio's figure for the spill's shape. */
static double
fio_seq_write(struct bench *b, uint64_t total)
{
	return fio_seq(b, "write", "64k", 32, total, "--fdatasync=64");
}

void
wl_spill(struct bench *b)
{
	const char *wl = "seq-1m-write-4x-pmem";
	/* the data capacity of the pools below, 4 times over */
	struct vpool probe;
	vp_create(b, &probe, b->pmem_size, 8 * b->pmem_size, 0,
		  VEMS_LOW_WATERMARK_DEFAULT, 0);
	uint64_t total = probe.capacity * 4 / MIB * MIB;
	vp_destroy(&probe);

	struct series *sv =
		bench_series(b, wl, "vems (fdatasync per batch)", U_MIBS);
	struct series *sd = bench_series(b, wl, "vems (RWF_DSYNC)", U_MIBS);
	struct series *sb = bench_series(
		b, wl, "block tier O_DIRECT 64k QD32 +fdatasync/64", U_MIBS);
	struct series *sf = NULL;
	size_t n = total / (64 * KIB);
	uint64_t *offs = malloc(n * sizeof(*offs));
	for (size_t i = 0; i < n; i++)
		offs[i] = (uint64_t)i * 64 * KIB;
	void *bufs = aligned_alloc(4096, 32 * 64 * KIB);
	memset(bufs, 0x29, 32 * 64 * KIB);
	uint64_t spills = 0;
	for (int r = 0; r < b->rounds; r++) {
		series_round(sv, vems_seq_write(b, total, 0, &spills));
		series_round(
			sd,
			vems_seq_write(b, total, VEMS_BLOCK_DSYNC, &spills));
		char path[4096];
		int fd = file_open(b, path, sizeof(path), 0, true);
		if (ftruncate(fd, (off_t)total))
			bench_die("ftruncate: %s", strerror(errno));
		double s = uring_run(fd, true, offs, n, 64 * KIB, 32, 64, bufs);
		series_round(sb, (double)total / MIB / s);
		close(fd);
		unlink(path);
		double f = fio_seq_write(b, total);
		if (f > 0) {
			if (!sf)
				sf = bench_series(
					b, wl, "fio io_uring direct 64k QD32",
					U_MIBS);
			series_round(sf, f);
		}
	}
	if (!sf)
		bench_note(b, "fio not installed: no fio baseline");
	bench_note(b,
		   "%s: %.0f MiB written, %llu extents spilled in the "
		   "last round",
		   wl, (double)total / MIB, (unsigned long long)spills);
	/* in durable mode, msync of the pmem file is the limit: no target */
	/* durable mode: each byte goes to the disk twice (pmem file and
	 * block file) */
	bench_ratio(b, wl, "vems (fdatasync per batch)",
		    "block tier O_DIRECT 64k QD32 +fdatasync/64", false,
		    durable_mode(b) ? 0.4 : 0.9,
		    "vems spill / block tier sequential write bandwidth");
	bench_ratio(b, wl, "vems (RWF_DSYNC)", "vems (fdatasync per batch)",
		    true, NAN, "RWF_DSYNC / fdatasync-per-batch throughput");
	free(offs);
	free(bufs);
}

/* --- random reads over 0.5x - 8x pmem ------------------------------- */

/* An exact LRU of `cap` pages over ids in [0, n): O(1) per access. */
struct lru {
	uint32_t *prev, *next;
	uint8_t *in;
	uint32_t head, tail, count, cap;
};
#define NIL UINT32_MAX

static void
lru_init(struct lru *l, uint64_t n, uint32_t cap)
{
	l->prev = malloc(n * sizeof(uint32_t));
	l->next = malloc(n * sizeof(uint32_t));
	l->in = calloc(n, 1);
	l->head = l->tail = NIL;
	l->count = 0;
	l->cap = cap;
}

static void
lru_unlink(struct lru *l, uint32_t x)
{
	if (l->prev[x] != NIL)
		l->next[l->prev[x]] = l->next[x];
	else
		l->head = l->next[x];
	if (l->next[x] != NIL)
		l->prev[l->next[x]] = l->prev[x];
	else
		l->tail = l->prev[x];
}

static bool
lru_access(struct lru *l, uint32_t x)
{
	bool hit = l->in[x];
	if (hit) {
		lru_unlink(l, x);
	} else {
		if (l->count == l->cap) {
			uint32_t v = l->tail;
			lru_unlink(l, v);
			l->in[v] = 0;
			l->count--;
		}
		l->in[x] = 1;
		l->count++;
	}
	l->prev[x] = NIL;
	l->next[x] = l->head;
	if (l->head != NIL)
		l->prev[l->head] = x;
	else
		l->tail = x;
	l->head = x;
	return hit;
}

static void
lru_fini(struct lru *l)
{
	free(l->prev);
	free(l->next);
	free(l->in);
}

/*
 * The next n pages of a trace over [0, npages): zipf if z, else uniform.
 * Returns the hits of the exact LRU l over it, which holds units of `unit`
 * pages (1, or an extent's pages).
 */
static size_t
next_trace(uint32_t *tr, size_t n, struct zipf *z, uint32_t npages,
	   uint64_t *rng, struct lru *l, uint32_t unit)
{
	size_t lh = 0;
	for (size_t i = 0; i < n; i++) {
		tr[i] = z ? (uint32_t)zipf_next(z, rng)
			  : (uint32_t)(bench_rand(rng) % npages);
		lh += lru_access(l, tr[i] / unit);
	}
	return lh;
}

/* Blocking reads of the trace; returns ops/s, *hit = pmem hit ratio. */
static double
vems_trace(struct vpool *vp, struct vems_obj *o, const uint32_t *tr, size_t n,
	   double *hit)
{
	uint8_t *buf = aligned_alloc(4096, 4096);
	struct vems_pool_stats a, z;
	CHECK(vems_pool_stats(vp->pool, &a));
	double t0 = bench_now_ns();
	for (size_t i = 0; i < n; i++)
		CHECK(vems_obj_pread(o, buf, 4096, (uint64_t)tr[i] * 4096));
	double s = (bench_now_ns() - t0) / 1e9;
	CHECK(vems_pool_stats(vp->pool, &z));
	double h = (double)(z.pmem_hits - a.pmem_hits);
	double m = (double)(z.block_hits - a.block_hits);
	*hit = h + m > 0 ? h / (h + m) : 0;
	free(buf);
	return (double)n / s;
}

/* The same trace through the async API, qd in flight; ops/s. */
static double
vems_trace_async(struct vpool *vp, struct vems_obj *o, const uint32_t *tr,
		 size_t n, unsigned qd)
{
	struct vems_aio_ctx *c;
	CHECK(vems_aio_ctx_new(vp->pool, qd, &c));
	struct vems_aio *req = calloc(qd, sizeof(*req));
	struct vems_aio **done = calloc(qd, sizeof(*done));
	uint8_t *bufs = aligned_alloc(4096, (size_t)qd * 4096);
	size_t next = 0, finished = 0;
	double t0 = bench_now_ns();
	for (unsigned i = 0; i < qd && next < n; i++, next++) {
		req[i] = (struct vems_aio){.obj = o,
					   .op = VEMS_AIO_READ,
					   .buf = bufs + (size_t)i * 4096,
					   .len = 4096,
					   .off = (uint64_t)tr[next] * 4096};
		struct vems_aio *p = &req[i];
		CHECK(vems_aio_submit(c, &p, 1));
	}
	while (finished < n) {
		int k = vems_aio_wait(c, done, 1, qd, -1);
		CHECK(k);
		for (int i = 0; i < k; i++) {
			if (done[i]->result != 4096)
				bench_die("async read: %zd", done[i]->result);
			finished++;
			if (next < n) {
				done[i]->off = (uint64_t)tr[next++] * 4096;
				CHECK(vems_aio_submit(c, &done[i], 1));
			}
		}
	}
	double s = (bench_now_ns() - t0) / 1e9;
	vems_aio_ctx_delete(&c);
	free(req);
	free(done);
	free(bufs);
	return (double)n / s;
}

/* The block tier alone: n uniform random 4 KiB reads, QD32, O_DIRECT, of
 * a file of ws bytes, as workload wl's baseline. */
static void
block_random_reads(struct bench *b, const char *wl, uint64_t ws, size_t n,
		   uint64_t rng)
{
	char path[4096];
	int fd = file_open(b, path, sizeof(path), ws, true);
	uint64_t *offs = malloc(n * sizeof(*offs));
	for (size_t i = 0; i < n; i++)
		offs[i] = bench_rand(&rng) % (ws / 4096) * 4096;
	void *bufs = aligned_alloc(4096, 32 * 4096);
	struct series *st =
		bench_series(b, wl, "block tier O_DIRECT QD32", U_OPS);
	for (int r = 0; r < b->rounds; r++)
		series_round(st,
			     (double)n /
				     uring_run(fd, false, offs, n, 4096, 32, 0,
					       bufs));
	close(fd);
	unlink(path);
	free(offs);
	free(bufs);
}

void
wl_random_reads(struct bench *b)
{
	/* quick: a smoke run; in durable mode every promotion is an msync,
	 * so only the 4x point */
	static const double all[] = {0.5, 2, 4, 8}, quick[] = {0.5, 4, 8};
	static const double quick_durable[] = {4};
	const double *fracs = !b->quick ? all
		: durable_mode(b)	? quick_durable
					: quick;
	size_t nf = !b->quick ? 4 : durable_mode(b) ? 1 : 3;
	static const char *dists[] = {"zipf", "uniform"};
	uint64_t pmem = b->quick ? 16 * MIB : 64 * MIB;
	/* durable mode: each promotion is a few msyncs (~0.1 ms each) */
	size_t n = b->quick ? (durable_mode(b) ? 1000 : 4000)
			    : (durable_mode(b) ? 8000 : 40000);
	for (size_t fi = 0; fi < nf; fi++) {
		double f = fracs[fi];
		struct vpool vp;
		/* 4 KiB extents: a miss reads what was asked, not 64 KiB */
		vp_create(b, &vp, pmem, (uint64_t)(10 * pmem), 4096,
			  VEMS_LOW_WATERMARK_DEFAULT, 0);
		uint64_t ws = (uint64_t)((double)vp.capacity * f) / MIB * MIB;
		uint32_t npages = (uint32_t)(ws / 4096);
		struct vems_obj *o = vp_object(&vp, ws);
		uint32_t *tr = malloc(n * sizeof(*tr));
		char wl[64], hw[64];
		for (int d = 0; d < 2; d++) {
			uint64_t rng = 1000 + fi * 10 + (uint64_t)d;
			struct zipf z;
			if (d == 0)
				zipf_init(&z, npages, 0.99);
			struct lru l;
			lru_init(&l, npages, (uint32_t)(vp.capacity / 4096));
			snprintf(wl, sizeof(wl), "rand-read-%s-%gx", dists[d],
				 f);
			snprintf(hw, sizeof(hw), "hit-ratio-%s-%gx", dists[d],
				 f);
			struct series *sb =
				bench_series(b, wl, "vems blocking", U_OPS);
			struct series *sa =
				bench_series(b, wl, "vems async QD32", U_OPS);
			struct series *hv =
				bench_series(b, hw,
					     d ? "vems S3-FIFO, uniform"
					       : "vems S3-FIFO, zipf 0.99",
					     U_RATIO);
			struct series *hl =
				bench_series(b, hw,
					     d ? "exact LRU, uniform"
					       : "exact LRU, zipf 0.99",
					     U_RATIO);
			hv->x = hl->x = f;
			/* one warm-up pass, then the measured rounds, each
			 * on a fresh stretch of the same distribution */
			for (int r = -1; r < b->rounds; r++) {
				size_t lh = next_trace(tr, n, d ? NULL : &z,
						       npages, &rng, &l, 1);
				double hit;
				double ops = vems_trace(&vp, o, tr, n, &hit);
				if (r < 0)
					continue;
				series_round(sb, ops);
				series_round(hv, hit);
				series_round(hl, (double)lh / (double)n);
				series_round(
					sa,
					vems_trace_async(&vp, o, tr, n, 32));
			}
			lru_fini(&l);
			if (d == 0 && f == 4)
				bench_ratio(b, hw, hv->variant, hl->variant,
					    false, durable_mode(b) ? NAN : 1.0,
					    "vems / exact LRU hit ratio");
		}
		snprintf(wl, sizeof(wl), "rand-read-uniform-%gx", f);
		block_random_reads(b, wl, ws, n, 77);
		if (f == 8)
			bench_ratio(b, wl, "vems async QD32",
				    "block tier O_DIRECT QD32", false,
				    durable_mode(b) ? NAN : 0.7,
				    "vems async / block tier IOPS (~88% miss)");
		free(tr);
		vems_obj_close(&o);
		vp_destroy(&vp);
	}
}

/* --- open time and DRAM per mapped extent ---------------------------- */

static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/*
 * b->rounds opens of the closed pool vp (left open after the last), as
 * workload wl's series: open time, per 1e6 of n extents, and DRAM per
 * extent beyond `empty` (the same pool with none mapped); with `all`,
 * also DRAM per extent counting everything the open pool holds.
 */
static void
timed_opens(struct bench *b, struct vpool *vp, const char *wl, uint64_t n,
	    size_t empty, bool all)
{
	struct series *so = bench_series(b, wl, "open time", U_SECONDS);
	struct series *sp =
		bench_series(b, wl, "open seconds per 1e6 extents", U_SECONDS);
	struct series *sm =
		bench_series(b, wl, "DRAM bytes per extent", U_BYTES);
	struct series *sa = all ? bench_series(b, wl,
					       "DRAM bytes per extent, free "
					       "lists included",
					       U_BYTES)
				: NULL;
	for (int r = 0; r < b->rounds; r++) {
		size_t h0 = heap_in_use();
		double t0 = bench_now_ns();
		CHECK(vems_pool_open(&vp->pool, vp->pmem, NULL));
		double s = (bench_now_ns() - t0) / 1e9;
		size_t h1 = heap_in_use();
		series_round(so, s);
		series_round(sp, s * 1e6 / (double)n);
		series_round(sm,
			     ((double)(h1 - h0) - (double)empty) / (double)n);
		if (sa)
			series_round(sa, (double)(h1 - h0) / (double)n);
		if (r < b->rounds - 1)
			CHECK(vems_pool_close(&vp->pool));
	}
}

/*
 * Issue 9's scale: 10^6 objects of 10 extents each (10^7 mapped extents,
 * 4 KiB; 40 GB in the block file, which is sparse elsewhere), opened
 * after a close. Each extent is mapped by one byte written at its start,
 * so nearly all of them are spilled. Full pmem-mode runs only: building
 * the pool takes minutes.
 */
static void
open_many_objects(struct bench *b)
{
	/* VEMS_BENCH_OPEN_OBJECTS: fewer, for a quick look */
	const char *env = getenv("VEMS_BENCH_OPEN_OBJECTS");
	const uint64_t nobj = env ? strtoull(env, NULL, 0) : 1000000;
	const uint64_t per = 10, n = nobj * per;
	if (n == 0)
		return;
	struct vpool vp;
	vp_create(b, &vp, n / 5 * 1024 + 256 * MIB, n * 4096 + 256 * MIB, 4096,
		  VEMS_LOW_WATERMARK_DEFAULT, 0);
	/* the same pool empty: what its geometry costs (free lists) */
	CHECK(vems_pool_close(&vp.pool));
	size_t h0 = heap_in_use();
	CHECK(vems_pool_open(&vp.pool, vp.pmem, NULL));
	size_t empty_heap = heap_in_use() - h0;
	uint8_t one = 0x5a;
	double t0 = bench_now_ns();
	for (uint64_t i = 0; i < nobj; i++) {
		struct vems_oid oid = {9, i + 1};
		struct vems_obj *o;
		CHECK(vems_obj_create(vp.pool, &oid));
		CHECK(vems_obj_open(vp.pool, oid, 0, &o));
		for (uint64_t x = 0; x < per; x++)
			if (vems_obj_pwrite(o, &one, 1, x * 4096,
					    VEMS_W_NODRAIN) != 1)
				bench_die("open-scale: object %llu: %s",
					  (unsigned long long)i,
					  vems_errormsg());
		vems_obj_close(&o);
	}
	CHECK(vems_pool_persist(vp.pool));
	struct vems_pool_stats st;
	CHECK(vems_pool_stats(vp.pool, &st));
	bench_note(b,
		   "open-scale: %llu objects, %llu extents (%llu spilled) "
		   "built in %.0f s",
		   (unsigned long long)nobj,
		   (unsigned long long)(st.extents_pmem + st.extents_both +
					st.extents_block),
		   (unsigned long long)st.extents_block,
		   (bench_now_ns() - t0) / 1e9);
	CHECK(vems_pool_close(&vp.pool));
	const char *wl = "open-1e6-objects-1e7-extents";
	timed_opens(b, &vp, wl, n, empty_heap, true);
	bench_ratio(b, wl, "open seconds per 1e6 extents", "", true, 1.0,
		    "open time per million mapped extents (s)");
	/* judged with everything the open pool holds in DRAM */
	bench_ratio(b, wl, "DRAM bytes per extent, free lists included", "",
		    true, 64,
		    "DRAM per mapped extent, objects and free lists (B)");
	vp_destroy(&vp);
}

/*
 * One pool whose pmem holds the largest count; DRAM is measured as the
 * heap of the open pool with n extents mapped minus that of the same pool
 * with none, so the per-pool costs (libpmemobj's runtime, the free lists
 * sized by the geometry) are not charged to the extents.
 */
void
wl_open_scale(struct bench *b)
{
	uint64_t counts[3] = {10000, 100000, 1000000};
	/* durable mode writes the pmem file through msync, 4 KiB a time */
	int nc = !b->quick ? (durable_mode(b) ? 2 : 3)
			   : (durable_mode(b) ? 1 : 2);
	if (nc < 3)
		bench_note(b,
			   "open-scale: 1e6 extents only in a full pmem-mode "
			   "run (4 GiB of pmem)");
	uint64_t max = counts[nc - 1] * 4096;
	struct vpool vp;
	vp_create(b, &vp, max + max / 4 + 32 * MIB, 64 * MIB, 4096, 0, 0);
	if (vp.capacity < max)
		bench_die("open-scale: pmem holds %llu < %llu",
			  (unsigned long long)vp.capacity,
			  (unsigned long long)max);
	struct vems_obj *o = vp_object(&vp, 0);
	vems_obj_close(&o);
	CHECK(vems_pool_close(&vp.pool));
	size_t h0 = heap_in_use();
	CHECK(vems_pool_open(&vp.pool, vp.pmem, NULL));
	size_t empty = heap_in_use() - h0;
	uint8_t *buf = malloc(MIB);
	memset(buf, 0x19, MIB);
	uint64_t written = 0;
	for (int k = 0; k < nc; k++) {
		uint64_t n = counts[k], data = n * 4096;
		struct vems_oid oid = {1, 1};
		CHECK(vems_obj_open(vp.pool, oid, 0, &o));
		for (; written < data; written += MIB)
			CHECK(vems_obj_pwrite(
				o, buf,
				data - written < MIB ? data - written : MIB,
				written, VEMS_W_NODRAIN));
		written = data;
		CHECK(vems_obj_persist(o));
		vems_obj_close(&o);
		CHECK(vems_pool_close(&vp.pool));
		char wl[64];
		snprintf(wl, sizeof(wl), "open-%llu-extents",
			 (unsigned long long)n);
		timed_opens(b, &vp, wl, n, empty, false);
		/* judged at the largest count: open walks the whole entry
		 * table and the geometry's free lists, so with few extents
		 * mapped in a pool sized for many the fixed part dominates */
		bench_ratio(b, wl, "open seconds per 1e6 extents", "", true,
			    k == nc - 1 ? 1.0 : NAN,
			    "open time per million mapped extents (s)");
		bench_ratio(b, wl, "DRAM bytes per extent", "", true, 64,
			    "DRAM index per mapped extent (B)");
	}
	free(buf);
	vp_destroy(&vp);
	if (nc == 3)
		open_many_objects(b);
}

/* --- misses at the default geometry ----------------------------------- */

/*
 * Random 4 KiB reads over working sets of 2x-8x pmem in a pool of the
 * default geometry (64 KiB extents): a miss reads only the pages it needs
 * (format 3's page checks), so the block file serves about the bytes
 * asked. Hit ratio against an exact LRU of pmem's extents (the unit pmem
 * holds) over the same trace; IOPS and block bytes per byte asked through
 * the async API at QD32, against the block tier alone.
 */
void
wl_default_misses(struct bench *b)
{
	static const double all[] = {2, 4, 8}, quick[] = {8};
	const double *fracs = b->quick ? quick : all;
	size_t nf = b->quick ? 1 : 3;
	static const char *dists[] = {"zipf", "uniform"};
	uint64_t pmem = b->quick ? 16 * MIB : 64 * MIB;
	size_t n = b->quick ? (durable_mode(b) ? 2000 : 8000)
			    : (durable_mode(b) ? 8000 : 40000);
	for (size_t fi = 0; fi < nf; fi++) {
		double f = fracs[fi];
		struct vpool vp;
		vp_create(b, &vp, pmem, (uint64_t)(10 * pmem), 0,
			  VEMS_LOW_WATERMARK_DEFAULT, 0);
		uint64_t ws = (uint64_t)((double)vp.capacity * f) / MIB * MIB;
		uint32_t npages = (uint32_t)(ws / 4096);
		uint32_t ppe = (uint32_t)(vp.extent / 4096);
		struct vems_obj *o = vp_object(&vp, ws);
		uint32_t *tr = malloc(n * sizeof(*tr));
		char wl[64], hw[64];
		for (int d = 0; d < 2; d++) {
			uint64_t rng = 5000 + fi * 10 + (uint64_t)d;
			struct zipf z;
			if (d == 0)
				zipf_init(&z, npages, 0.99);
			struct lru l;
			lru_init(&l, npages / ppe + 1,
				 (uint32_t)(vp.capacity / vp.extent));
			snprintf(wl, sizeof(wl), "default-misses-%s-%gx",
				 dists[d], f);
			snprintf(hw, sizeof(hw), "default-hit-ratio-%s-%gx",
				 dists[d], f);
			struct series *sa =
				bench_series(b, wl, "vems async QD32", U_OPS);
			struct series *sy = bench_series(
				b, wl, "block bytes per byte asked", U_RATIO);
			struct series *hv = bench_series(
				b, hw, d ? "vems, uniform" : "vems, zipf 0.99",
				U_RATIO);
			struct series *hl = bench_series(
				b, hw,
				d ? "exact LRU of extents, uniform"
				  : "exact LRU of extents, zipf 0.99",
				U_RATIO);
			hv->x = hl->x = f;
			for (int r = -1; r < b->rounds; r++) {
				size_t lh = next_trace(tr, n, d ? NULL : &z,
						       npages, &rng, &l, ppe);
				double hit;
				(void)vems_trace(&vp, o, tr, n, &hit);
				if (r < 0)
					continue; /* warm-up */
				series_round(hv, hit);
				series_round(hl, (double)lh / (double)n);
				struct vems_pool_stats a, z2;
				CHECK(vems_pool_stats(vp.pool, &a));
				series_round(
					sa,
					vems_trace_async(&vp, o, tr, n, 32));
				CHECK(vems_pool_stats(vp.pool, &z2));
				series_round(sy,
					     (double)(z2.bytes_block_read -
						      a.bytes_block_read) /
						     ((double)n * 4096));
			}
			lru_fini(&l);
			bench_ratio(b, hw, hv->variant, hl->variant, false,
				    durable_mode(b) ? NAN
					    : d	    ? 0.97
						    : 1.0,
				    "vems / exact LRU hit ratio (64 KiB "
				    "extents)");
			if (d == 1 && f == 8)
				bench_ratio(b, wl, "block bytes per byte asked",
					    "", true,
					    durable_mode(b) ? NAN : 1.25,
					    "block bytes read per byte asked "
					    "(uniform 8x, 64 KiB extents)");
		}
		snprintf(wl, sizeof(wl), "default-misses-uniform-%gx", f);
		block_random_reads(b, wl, ws, n, 78);
		if (f == 8)
			bench_ratio(b, wl, "vems async QD32",
				    "block tier O_DIRECT QD32", false,
				    durable_mode(b) ? 0.5 : 0.8,
				    "vems async / block tier IOPS, uniform "
				    "8x, 64 KiB extents");
		free(tr);
		vems_obj_close(&o);
		vp_destroy(&vp);
	}
}

/* --- a cold sequential scan, and what it leaves of the hot set --------- */

/* Object {1, id} with `bytes` of data written in 1 MiB calls. */
static struct vems_obj *
written(struct vpool *vp, uint64_t id, uint64_t bytes)
{
	struct vems_oid oid = {1, id};
	struct vems_obj *o;
	CHECK(vems_obj_create(vp->pool, &oid));
	CHECK(vems_obj_open(vp->pool, oid, 0, &o));
	uint8_t *buf = malloc(MIB);
	memset(buf, 0x3c, MIB);
	for (uint64_t off = 0; off < bytes; off += MIB)
		CHECK(vems_obj_pwrite(o, buf, MIB, off, 0));
	free(buf);
	return o;
}

/* Reads the whole object sequentially in 1 MiB calls; MiB/s. */
static double
vems_seq_read(struct vems_obj *o, uint64_t bytes)
{
	uint8_t *buf = aligned_alloc(4096, MIB);
	double t0 = bench_now_ns();
	for (uint64_t off = 0; off < bytes; off += MIB)
		CHECK(vems_obj_pread(o, buf, MIB, off));
	double s = (bench_now_ns() - t0) / 1e9;
	free(buf);
	return (double)bytes / MIB / s;
}

/* The same through the async API, qd 1 MiB reads in flight; MiB/s. */
static double
vems_seq_read_async(struct vpool *vp, struct vems_obj *o, uint64_t bytes,
		    unsigned qd)
{
	struct vems_aio_ctx *c;
	CHECK(vems_aio_ctx_new(vp->pool, qd, &c));
	struct vems_aio *req = calloc(qd, sizeof(*req));
	struct vems_aio **done = calloc(qd, sizeof(*done));
	uint8_t *bufs = aligned_alloc(4096, (size_t)qd * MIB);
	uint64_t next = 0, finished = 0;
	double t0 = bench_now_ns();
	for (unsigned i = 0; i < qd && next < bytes; i++, next += MIB) {
		req[i] = (struct vems_aio){.obj = o,
					   .op = VEMS_AIO_READ,
					   .buf = bufs + (size_t)i * MIB,
					   .len = MIB,
					   .off = next};
		struct vems_aio *p = &req[i];
		CHECK(vems_aio_submit(c, &p, 1));
	}
	while (finished < bytes) {
		int k = vems_aio_wait(c, done, 1, qd, -1);
		CHECK(k);
		for (int i = 0; i < k; i++) {
			if (done[i]->result != (ssize_t)MIB)
				bench_die("async read: %zd", done[i]->result);
			finished += MIB;
			if (next < bytes) {
				done[i]->off = next;
				next += MIB;
				CHECK(vems_aio_submit(c, &done[i], 1));
			}
		}
	}
	double s = (bench_now_ns() - t0) / 1e9;
	vems_aio_ctx_delete(&c);
	free(req);
	free(done);
	free(bufs);
	return (double)bytes / MIB / s;
}

/*
 * The default geometry. A cold object of 8x pmem, written first (so it
 * is spilled), is read once from end to end in 1 MiB calls, against the
 * device's sequential read bandwidth (io_uring O_DIRECT 1 MiB QD8 of a
 * file of the same size, and fio's). Around each scan, the hit ratio of a
 * zipf 0.99 trace of 4 KiB reads over a hot object of a quarter of pmem:
 * a one-pass scan must not evict the hot set.
 */
void
wl_cold_scan(struct bench *b)
{
	const char *wl = "seq-1m-read-cold-8x-pmem";
	const char *hw = "hot-set-after-scan";
	struct vpool vp;
	vp_create(b, &vp, b->pmem_size, 10 * b->pmem_size, 0,
		  VEMS_LOW_WATERMARK_DEFAULT, 0);
	uint64_t cold = vp.capacity * 8 / MIB * MIB;
	uint64_t hot = vp.capacity / 4 / MIB * MIB;
	struct vems_obj *co = written(&vp, 2, cold);
	struct vems_obj *ho = written(&vp, 3, hot);
	uint32_t npages = (uint32_t)(hot / 4096);
	size_t n = b->quick ? 20000 : 100000;
	uint32_t *tr = malloc(n * sizeof(*tr));
	struct zipf z;
	zipf_init(&z, npages, 0.99);
	uint64_t rng = 4242;
	struct lru l;
	lru_init(&l, npages, 1);
	struct series *sv = bench_series(b, wl, "vems 1 MiB reads", U_MIBS);
	struct series *sq =
		bench_series(b, wl, "vems async 1 MiB reads QD8", U_MIBS);
	struct series *sb =
		bench_series(b, wl, "block tier O_DIRECT 1m QD8", U_MIBS);
	struct series *sf = NULL;
	struct series *hb =
		bench_series(b, hw, "hot-set hit ratio before", U_RATIO);
	struct series *ha =
		bench_series(b, hw, "hot-set hit ratio after", U_RATIO);
	struct series *hr = bench_series(b, hw, "after / before", U_RATIO);
	size_t nb = cold / MIB;
	uint64_t *offs = malloc(nb * sizeof(*offs));
	for (size_t i = 0; i < nb; i++)
		offs[i] = (uint64_t)i * MIB;
	void *bufs = aligned_alloc(4096, 8 * MIB);
	double hit;
	(void)next_trace(tr, n, &z, npages, &rng, &l, 1);
	(void)vems_trace(&vp, ho, tr, n, &hit); /* warm-up */
	for (int r = 0; r < b->rounds; r++) {
		(void)next_trace(tr, n, &z, npages, &rng, &l, 1);
		double before;
		(void)vems_trace(&vp, ho, tr, n, &before);
		series_round(sv, vems_seq_read(co, cold));
		series_round(sq, vems_seq_read_async(&vp, co, cold, 8));
		(void)next_trace(tr, n, &z, npages, &rng, &l, 1);
		double after;
		(void)vems_trace(&vp, ho, tr, n, &after);
		series_round(hb, before);
		series_round(ha, after);
		series_round(hr, before > 0 ? after / before : 0);
		char path[4096];
		int fd = file_open(b, path, sizeof(path), cold, true);
		double s = uring_run(fd, false, offs, nb, MIB, 8, 0, bufs);
		series_round(sb, (double)cold / MIB / s);
		close(fd);
		unlink(path);
		double f = fio_seq(b, "read", "1m", 8, cold, "");
		if (f > 0) {
			if (!sf)
				sf = bench_series(b, wl,
						  "fio io_uring direct 1m QD8",
						  U_MIBS);
			series_round(sf, f);
		}
	}
	bench_note(b, "%s: %.0f MiB cold object, %.0f MiB hot object", wl,
		   (double)cold / MIB, (double)hot / MIB);
	bench_ratio(b, wl, "vems async 1 MiB reads QD8",
		    "block tier O_DIRECT 1m QD8", false,
		    durable_mode(b) ? NAN : 0.9,
		    "vems cold sequential read / device sequential read");
	bench_ratio(b, hw, "after / before", "", false, 0.9,
		    "hot-set hit ratio after a one-pass scan / before");
	lru_fini(&l);
	free(offs);
	free(bufs);
	free(tr);
	vems_obj_close(&co);
	vems_obj_close(&ho);
	vp_destroy(&vp);
}
