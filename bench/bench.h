/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench.h -- vems-bench: the harness's interface to its workloads
 *
 * A workload measures vems and its baselines back to back, in rounds that
 * interleave the variants, and records per round a value (a latency in ns
 * per op, or a throughput) and optionally per-op latency samples. Ratios
 * between variants are declared with a target; the harness computes them
 * from medians and reports them, never fails on them.
 *
 * To add a workload: write `void wl_x(struct bench *b)` in a wl_*.c file,
 * declare it below and add it to the table in harness.c.
 */
#ifndef VEMS_BENCH_H
#define VEMS_BENCH_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIB (UINT64_C(1) << 20)
#define KIB (UINT64_C(1) << 10)
#define MAX_ROUNDS 64

enum unit {
	U_NS_OP,   /* latency: ns per operation (lower is better) */
	U_MIBS,	   /* throughput: MiB/s */
	U_OPS,	   /* throughput: operations/s */
	U_RATIO,   /* a fraction, e.g. a hit ratio */
	U_SECONDS, /* a duration */
	U_BYTES,   /* a size */
};

struct series {
	char workload[64];
	char variant[64];
	enum unit unit;
	double rounds[MAX_ROUNDS];
	int nrounds;
	double *lat; /* per-op latencies, ns */
	size_t nlat, caplat;
	double x; /* for plots over a parameter (working set etc.) */
};

struct ratio {
	char workload[64];
	char num[64], den[64]; /* variant names */
	bool at_most;	       /* target: ratio <= target (else >=) */
	double target;
	char what[128];
};

struct bench {
	bool quick;
	int rounds;
	const char *mode;     /* "pmem" or "durable" */
	const char *pmem_dir; /* where pmem files go */
	const char *disk_dir; /* where block files and ordinary files go */
	uint64_t pmem_size;   /* pool pmem size for most workloads */
	struct series **s;
	size_t ns, caps;
	struct ratio *r;
	size_t nr, capr;
	char notes[32][256];
	int nnotes;
	unsigned seq; /* unique file names */
};

/* A series for (workload, variant), created on first use. */
struct series *bench_series(struct bench *b, const char *workload,
			    const char *variant, enum unit u);
void series_round(struct series *s, double v);
void series_lat(struct series *s, double ns);
/* Declares target: median(num) / median(den) <= or >= target. */
void bench_ratio(struct bench *b, const char *workload, const char *num,
		 const char *den, bool at_most, double target,
		 const char *what);
void bench_note(struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A fresh path "<dir>/vems-bench-<pid>-<seq>.<ext>", unlinked first. */
void bench_path(struct bench *b, char *out, size_t len, const char *dir,
		const char *ext);
double bench_now_ns(void);
double series_median(const struct series *s);
/* Dies with a message: benchmarks have no error paths worth keeping. */
void bench_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
#define CHECK(expr)                                                            \
	do {                                                                   \
		long long c_r_ = (long long)(expr);                            \
		if (c_r_ < 0)                                                  \
			bench_die("%s:%d: %s = %lld", __FILE__, __LINE__,      \
				  #expr, c_r_);                                \
	} while (0)

uint64_t bench_rand(uint64_t *s);
/* Zipf(theta) over [0, n) (Gray et al.'s generator), ids scrambled. */
struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, zeta2;
};
void zipf_init(struct zipf *z, uint64_t n, double theta);
uint64_t zipf_next(struct zipf *z, uint64_t *rng);

/* The workloads. */
void wl_overwrite(struct bench *b);
void wl_append(struct bench *b);
void wl_read_hit(struct bench *b);
void wl_small_writes(struct bench *b);
void wl_spill(struct bench *b);
void wl_random_reads(struct bench *b);
void wl_default_misses(struct bench *b);
void wl_cold_scan(struct bench *b);
void wl_threads(struct bench *b);
void wl_open_scale(struct bench *b);
void wl_small_objects(struct bench *b);
void wl_mechanisms(struct bench *b);
void wl_shim_pwrite(struct bench *b);
void wl_shim_sqlite(struct bench *b);

#endif /* VEMS_BENCH_H */
