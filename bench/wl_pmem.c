/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wl_pmem.c -- the fast tier's workloads: durable overwrites, appends,
 * read hits, small writes, and threads; against raw pmem (the physical
 * limit) and an ordinary file with pwrite + fdatasync
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <vems.h>

#include "common.h"

static bool
durable_mode(const struct bench *b)
{
	return strcmp(b->mode, "pmem") != 0;
}

/* Operations per round: msync and fdatasync cost ~0.1-1 ms each. */
static size_t
ops(const struct bench *b, bool slow)
{
	size_t n = slow ? 300 : durable_mode(b) ? 1500 : 20000;
	return b->quick ? n / 10 : n;
}

/* Random page-aligned offsets in [0, span). */
static uint64_t *
offsets(size_t n, uint64_t span, size_t align, uint64_t seed)
{
	uint64_t *v = malloc(n * sizeof(*v));
	if (!v)
		bench_die("out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = bench_rand(&seed) % (span / align) * align;
	return v;
}

/*
 * A round of n ops: the round's value is the mean latency of the whole
 * loop; one op in 16, picked by a hash of its index so that it does not
 * beat with a workload's own period (an append allocates every 16th op),
 * is timed alone for the p50/p99 samples. (Timing every
 * op perturbs what is timed: a clock read right after a persist waits for
 * it in ways a real caller does not, and not equally for every variant.)
 */
#define ROUND(s, n, i, expr)                                                   \
	do {                                                                   \
		double r0_ = bench_now_ns();                                   \
		for (size_t i = 0; i < (n); i++) {                             \
			if ((((i)*2654435761u) >> 28 & 15) == 0) {             \
				double t_ = bench_now_ns();                    \
				expr;                                          \
				series_lat((s), bench_now_ns() - t_);          \
			} else {                                               \
				expr;                                          \
			}                                                      \
		}                                                              \
		series_round((s), (bench_now_ns() - r0_) / (double)(n));       \
	} while (0)

/* Durable writes of `len` bytes at random offsets: vems, raw, file. */
static void
durable_writes(struct bench *b, const char *wl, size_t len, bool with_file)
{
	const uint64_t span = b->quick ? 4 * MIB : 16 * MIB;
	struct vpool vp;
	vp_create(b, &vp, b->pmem_size, 8 * b->pmem_size, 0,
		  VEMS_LOW_WATERMARK_DEFAULT, 0);
	struct vems_obj *o = vp_object(&vp, span);
	struct rawpmem raw;
	raw_map(b, &raw, span);
	char fpath[4096];
	int fd = with_file ? file_open(b, fpath, sizeof(fpath), span, false)
			   : -1;
	uint8_t *buf = aligned_alloc(4096, 4096);
	memset(buf, 0x77, 4096);
	size_t n = ops(b, false), nf = ops(b, true);
	uint64_t *off = offsets(n, span, len >= 4096 ? 4096 : 64, 1);
	struct series *sv = bench_series(b, wl, "vems", U_NS_OP);
	struct series *sr = bench_series(b, wl,
					 raw.is_pmem ? "raw pmem_memcpy_persist"
						     : "raw memcpy+msync",
					 U_NS_OP);
	struct series *sf = with_file
		? bench_series(b, wl, "file pwrite+fdatasync", U_NS_OP)
		: NULL;
	for (int r = 0; r < b->rounds; r++) {
		ROUND(sv, n, i, CHECK(vems_obj_pwrite(o, buf, len, off[i], 0)));
		ROUND(sr, n, i,
		      raw_persist_copy(&raw, (uint8_t *)raw.addr + off[i], buf,
				       len));
		if (!sf)
			continue;
		ROUND(sf, nf, i, {
			if (pwrite(fd, buf, len, (off_t)off[i]) !=
				    (ssize_t)len ||
			    fdatasync(fd))
				bench_die("pwrite/fdatasync: %s",
					  strerror(errno));
		});
	}
	free(off);
	free(buf);
	if (fd >= 0) {
		close(fd);
		unlink(fpath);
	}
	raw_unmap(&raw);
	vems_obj_close(&o);
	vp_destroy(&vp);
}

void
wl_overwrite(struct bench *b)
{
	durable_writes(b, "4k-overwrite", 4096, true);
	if (!durable_mode(b)) {
		bench_ratio(b, "4k-overwrite", "vems",
			    "raw pmem_memcpy_persist", true, 1.15,
			    "vems / raw pmem_memcpy_persist latency");
		bench_ratio(b, "4k-overwrite", "file pwrite+fdatasync", "vems",
			    false, 50,
			    "pwrite+fdatasync / vems latency (speed-up)");
	} else {
		bench_ratio(b, "4k-overwrite", "vems", "file pwrite+fdatasync",
			    true, 1.0, "vems / pwrite+fdatasync latency");
		bench_ratio(b, "4k-overwrite", "vems", "raw memcpy+msync", true,
			    NAN, "vems / raw memcpy+msync latency");
	}
}

void
wl_small_writes(struct bench *b)
{
	durable_writes(b, "64B-write", 64, false);
	durable_writes(b, "256B-write", 256, false);
	const char *raw = durable_mode(b) ? "raw memcpy+msync"
					  : "raw pmem_memcpy_persist";
	bench_ratio(b, "64B-write", "vems", raw, true,
		    durable_mode(b) ? NAN : 1.2, "vems / raw latency");
	bench_ratio(b, "256B-write", "vems", raw, true,
		    durable_mode(b) ? NAN : 1.2, "vems / raw latency");
}

void
wl_append(struct bench *b)
{
	const char *wl = "4k-append";
	size_t n = ops(b, false), nf = ops(b, true);
	struct vpool vp;
	/* room for every round's appends without spilling */
	uint64_t need = (uint64_t)n * 4096 * 2;
	vp_create(b, &vp, need * 2 > b->pmem_size ? need * 2 : b->pmem_size,
		  8 * b->pmem_size, 0, VEMS_LOW_WATERMARK_DEFAULT, 0);
	struct vems_obj *o = vp_object(&vp, 0);
	struct rawpmem raw;
	raw_map(b, &raw, (uint64_t)n * 4096);
	char fpath[4096];
	int fd = file_open(b, fpath, sizeof(fpath), 0, false);
	uint8_t *buf = aligned_alloc(4096, 4096);
	memset(buf, 0x11, 4096);
	struct series *sv = bench_series(b, wl, "vems", U_NS_OP);
	struct series *sr = bench_series(b, wl,
					 raw.is_pmem ? "raw pmem_memcpy_persist"
						     : "raw memcpy+msync",
					 U_NS_OP);
	/* the ordering floor of any append that never exposes bytes not
	 * yet durable: the data made durable, then a size word */
	const char *floor_name = raw.is_pmem ? "raw persist data, then size"
					     : "raw msync data, then size";
	struct series *sfl = bench_series(b, wl, floor_name, U_NS_OP);
	uint64_t *size_word = (uint64_t *)raw.addr; /* page 0: the size */
	struct series *sf =
		bench_series(b, wl, "file pwrite+fdatasync", U_NS_OP);
	for (int r = 0; r < b->rounds; r++) {
		/* a new end each round: truncate frees the extents */
		CHECK(vems_obj_truncate(o, 0));
		ROUND(sv, n, i,
		      CHECK(vems_obj_pwrite(o, buf, 4096, (uint64_t)i * 4096,
					    0)));
		/* the raw limit: fresh pages of a mapping (populated once:
		 * no allocation happens there at all) */
		ROUND(sr, n, i,
		      raw_persist_copy(&raw, (uint8_t *)raw.addr + i * 4096,
				       buf, 4096));
		ROUND(sfl, n - 1, i, {
			raw_persist_copy(&raw,
					 (uint8_t *)raw.addr + (i + 1) * 4096,
					 buf, 4096);
			uint64_t sz = (uint64_t)(i + 1) * 4096;
			raw_persist_copy(&raw, size_word, &sz, sizeof(sz));
		});
		if (ftruncate(fd, 0))
			bench_die("ftruncate: %s", strerror(errno));
		ROUND(sf, nf, i, {
			if (pwrite(fd, buf, 4096, (off_t)(i * 4096)) != 4096 ||
			    fdatasync(fd))
				bench_die("pwrite/fdatasync: %s",
					  strerror(errno));
		});
	}
	bench_ratio(b, wl, "vems",
		    raw.is_pmem ? "raw pmem_memcpy_persist"
				: "raw memcpy+msync",
		    true, durable_mode(b) ? NAN : 1.3,
		    "vems / raw latency (allocation per 64 KiB extent)");
	bench_ratio(b, wl, "vems", floor_name, true, NAN,
		    "vems / the two-barrier floor (data, then size)");
	bench_ratio(b, wl, floor_name,
		    raw.is_pmem ? "raw pmem_memcpy_persist"
				: "raw memcpy+msync",
		    true, NAN, "the two-barrier floor / raw latency");
	free(buf);
	close(fd);
	unlink(fpath);
	raw_unmap(&raw);
	vems_obj_close(&o);
	vp_destroy(&vp);
}

void
wl_read_hit(struct bench *b)
{
	const uint64_t span = b->quick ? 4 * MIB : 16 * MIB;
	struct vpool vp;
	vp_create(b, &vp, b->pmem_size, 8 * b->pmem_size, 0,
		  VEMS_LOW_WATERMARK_DEFAULT, 0);
	struct vems_obj *o = vp_object(&vp, span);
	struct rawpmem raw;
	raw_map(b, &raw, span);
	char fpath[4096];
	int fd = file_open(b, fpath, sizeof(fpath), span, false);
	uint8_t *buf = aligned_alloc(4096, 64 * KIB);
	size_t sizes[2] = {4096, 64 * KIB};
	const char *names[2] = {"4k-read-hit", "64k-read-hit"};
	for (int k = 0; k < 2; k++) {
		size_t len = sizes[k], n = ops(b, false);
		uint64_t *off = offsets(n, span, len, 7 + (uint64_t)k);
		struct series *sv = bench_series(b, names[k], "vems", U_NS_OP);
		struct series *sr =
			bench_series(b, names[k], "raw memcpy", U_NS_OP);
		struct series *sf = bench_series(
			b, names[k], "file pread (page cache)", U_NS_OP);
		for (int r = 0; r < b->rounds; r++) {
			ROUND(sv, n, i,
			      CHECK(vems_obj_pread(o, buf, len, off[i])));
			ROUND(sr, n, i,
			      memcpy(buf, (uint8_t *)raw.addr + off[i], len));
			ROUND(sf, n, i, {
				if (pread(fd, buf, len, (off_t)off[i]) !=
				    (ssize_t)len)
					bench_die("pread");
			});
		}
		bench_ratio(b, names[k], "vems", "raw memcpy", true, 1.3,
			    "vems / raw memcpy latency");
		free(off);
	}
	free(buf);
	close(fd);
	unlink(fpath);
	raw_unmap(&raw);
	vems_obj_close(&o);
	vp_destroy(&vp);
}

/* --- threads ----------------------------------------------------------- */

struct worker {
	struct vems_obj *o;
	uint64_t *off;
	size_t n;
	pthread_barrier_t *start;
	double t0, t1; /* this thread's own start and end */
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[4096];
	memset(buf, 0x42, sizeof(buf));
	pthread_barrier_wait(w->start);
	w->t0 = bench_now_ns();
	for (size_t i = 0; i < w->n; i++)
		CHECK(vems_obj_pwrite(w->o, buf, sizeof(buf), w->off[i], 0));
	w->t1 = bench_now_ns();
	return NULL;
}

/* n threads, each on its own object: aggregate ops/s */
static double
run_threads(struct vems_obj **objs, uint64_t **offs, size_t n, int nthreads)
{
	pthread_t t[2];
	struct worker w[2];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){objs[i], offs[i], n, &start, 0, 0};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	pthread_barrier_wait(&start);
	double t0 = 0, t1 = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		/* from the first start to the last end */
		t0 = i == 0 || w[i].t0 < t0 ? w[i].t0 : t0;
		t1 = w[i].t1 > t1 ? w[i].t1 : t1;
	}
	pthread_barrier_destroy(&start);
	return (double)n * nthreads / ((t1 - t0) / 1e9);
}

void
wl_threads(struct bench *b)
{
	const char *wl = "4k-overwrite-threads";
	const uint64_t span = b->quick ? 2 * MIB : 8 * MIB;
	struct vpool vp;
	vp_create(b, &vp, b->pmem_size, 8 * b->pmem_size, 0,
		  VEMS_LOW_WATERMARK_DEFAULT, 0);
	struct vems_obj *objs[2] = {vp_object(&vp, span), vp_object(&vp, span)};
	size_t n = ops(b, false) * 2;
	uint64_t *offs[2] = {offsets(n, span, 4096, 3),
			     offsets(n, span, 4096, 4)};
	struct series *s1 = bench_series(b, wl, "vems 1 thread", U_OPS);
	struct series *s2 = bench_series(b, wl, "vems 2 threads", U_OPS);
	for (int r = 0; r < b->rounds; r++) {
		series_round(s1, run_threads(objs, offs, n, 1));
		series_round(s2, run_threads(objs, offs, n, 2));
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	bench_ratio(b, wl, "vems 2 threads", "vems 1 thread", false,
		    cpus >= 2 && !durable_mode(b) ? 1.7 : NAN,
		    "2 threads / 1 thread throughput, disjoint objects");
	free(offs[0]);
	free(offs[1]);
	vems_obj_close(&objs[0]);
	vems_obj_close(&objs[1]);
	vp_destroy(&vp);
}

/* --- mechanisms -------------------------------------------------------- */

static long
minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static void lock_costs(struct bench *b);
static void msync_costs(struct bench *b);

/*
 * Costs of the mechanisms that explain the figures above, for reference:
 * the clocks an mtime can come from, a lock around a short persist (pmem
 * model), and (in durable mode) what a store +
 * msync costs against pwrite + fdatasync on the same file system: time per
 * msync or fdatasync call, and page faults per write.
 */
void
wl_mechanisms(struct bench *b)
{
	const char *wl = "mechanisms";
	size_t n = b->quick ? 100000 : 1000000;
	struct series *cr =
		bench_series(b, wl, "clock_gettime REALTIME", U_NS_OP);
	struct series *cc =
		bench_series(b, wl, "clock_gettime REALTIME_COARSE", U_NS_OP);
	struct timespec ts;
	for (int r = 0; r < b->rounds; r++) {
		double t0 = bench_now_ns();
		for (size_t i = 0; i < n; i++)
			clock_gettime(CLOCK_REALTIME, &ts);
		series_round(cr, (bench_now_ns() - t0) / (double)n);
		t0 = bench_now_ns();
		for (size_t i = 0; i < n; i++)
			clock_gettime(CLOCK_REALTIME_COARSE, &ts);
		series_round(cc, (bench_now_ns() - t0) / (double)n);
	}
	if (!durable_mode(b))
		lock_costs(b);
	else
		msync_costs(b);
}

/*
 * What a lock costs around a short durable write: 64 B persists at random
 * offsets of raw pmem, bare, inside pthread_rwlock_wrlock/unlock, and
 * inside one compare-and-swap and one exchange (lib/rwlock.h's shape
 * when nobody waits).
 */
static void
lock_costs(struct bench *b)
{
	const char *wl = "lock-around-64B-persist";
	const uint64_t span = 16 * MIB;
	struct rawpmem raw;
	raw_map(b, &raw, span);
	size_t n = ops(b, false);
	uint64_t *off = offsets(n, span, 64, 13);
	uint8_t buf[64];
	memset(buf, 0x44, sizeof(buf));
	pthread_rwlock_t rw;
	pthread_rwlock_init(&rw, NULL);
	_Atomic uint32_t word = 0;
	struct series *s0 = bench_series(b, wl, "bare", U_NS_OP);
	struct series *s1 =
		bench_series(b, wl, "in pthread_rwlock wrlock/unlock", U_NS_OP);
	struct series *s2 = bench_series(
		b, wl, "in CAS + exchange (lib/rwlock.h)", U_NS_OP);
	uint8_t *m = raw.addr;
	for (int r = 0; r < b->rounds; r++) {
		ROUND(s0, n, i, raw_persist_copy(&raw, m + off[i], buf, 64));
		ROUND(s1, n, i, {
			pthread_rwlock_wrlock(&rw);
			raw_persist_copy(&raw, m + off[i], buf, 64);
			pthread_rwlock_unlock(&rw);
		});
		ROUND(s2, n, i, {
			uint32_t z = 0;
			if (!atomic_compare_exchange_strong_explicit(
				    &word, &z, 1, memory_order_acquire,
				    memory_order_relaxed))
				bench_die("lock-around: taken");
			raw_persist_copy(&raw, m + off[i], buf, 64);
			atomic_exchange_explicit(&word, 0,
						 memory_order_release);
		});
	}
	bench_ratio(b, wl, "in pthread_rwlock wrlock/unlock", "bare", true, NAN,
		    "pthread_rwlock around it / bare persist");
	bench_ratio(b, wl, "in CAS + exchange (lib/rwlock.h)", "bare", true,
		    NAN, "CAS + exchange around it / bare persist");
	pthread_rwlock_destroy(&rw);
	free(off);
	raw_unmap(&raw);
}

/* durable mode: a store + msync against pwrite + fdatasync */
static void
msync_costs(struct bench *b)
{
	const char *wl = "mechanisms";

	/* a mapped file and the same file through its descriptor */
	const uint64_t span = 16 * MIB;
	char path[4096];
	int fd = file_open(b, path, sizeof(path), span, false);
	uint8_t *m =
		mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		bench_die("mmap: %s", strerror(errno));
	madvise(m, span, MADV_RANDOM); /* as libvems does */
	uint8_t buf[4096];
	memset(buf, 0x33, sizeof(buf));
	size_t k = ops(b, true);
	uint64_t *off = offsets(k, span, 4096, 11);
	struct series *ms =
		bench_series(b, wl, "msync call (4 KiB, MS_SYNC)", U_NS_OP);
	struct series *fs =
		bench_series(b, wl, "fdatasync call after pwrite", U_NS_OP);
	struct series *mf =
		bench_series(b, wl, "faults per memcpy+msync", U_RATIO);
	struct series *pf =
		bench_series(b, wl, "faults per pwrite+fdatasync", U_RATIO);
	for (int r = 0; r < b->rounds; r++) {
		double sum = 0;
		long f0 = minor_faults();
		for (size_t i = 0; i < k; i++) {
			memcpy(m + off[i], buf, sizeof(buf));
			double t0 = bench_now_ns();
			if (msync(m + off[i], sizeof(buf), MS_SYNC))
				bench_die("msync: %s", strerror(errno));
			sum += bench_now_ns() - t0;
		}
		series_round(mf, (double)(minor_faults() - f0) / (double)k);
		series_round(ms, sum / (double)k);
		sum = 0;
		f0 = minor_faults();
		for (size_t i = 0; i < k; i++) {
			if (pwrite(fd, buf, sizeof(buf), (off_t)off[i]) !=
			    (ssize_t)sizeof(buf))
				bench_die("pwrite: %s", strerror(errno));
			double t0 = bench_now_ns();
			if (fdatasync(fd))
				bench_die("fdatasync: %s", strerror(errno));
			sum += bench_now_ns() - t0;
		}
		series_round(pf, (double)(minor_faults() - f0) / (double)k);
		series_round(fs, sum / (double)k);
	}
	bench_ratio(b, wl, "msync call (4 KiB, MS_SYNC)",
		    "fdatasync call after pwrite", true, NAN,
		    "msync / fdatasync call time");
	/*
	 * The bandwidth of making bytes durable in a mapped file: what a
	 * spill in durable mode pays once per byte before the block file
	 * write (1 MiB stores, then msync of that MiB, over the whole span).
	 */
	struct series *mb = bench_series(
		b, wl, "memcpy+msync, 1 MiB sequential (durable pmem fill)",
		U_MIBS);
	uint8_t *big = malloc(MIB);
	if (!big)
		bench_die("out of memory");
	memset(big, 0x5c, MIB);
	for (int r = 0; r < b->rounds; r++) {
		double t0 = bench_now_ns();
		for (uint64_t o = 0; o < span; o += MIB) {
			big[0] = (uint8_t)r; /* a change in every MiB */
			memcpy(m + o, big, MIB);
			if (msync(m + o, MIB, MS_SYNC))
				bench_die("msync: %s", strerror(errno));
		}
		series_round(
			mb, (double)span / MIB / ((bench_now_ns() - t0) / 1e9));
	}
	free(big);
	free(off);
	munmap(m, span);
	close(fd);
	unlink(path);
}
