/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * harness.c -- vems-bench: options, the two fast-tier modes, statistics,
 * the table, JSON and gnuplot charts
 *
 * The two modes are separate processes, because libpmem reads
 * PMEM_IS_PMEM_FORCE once at load: without --mode, vems-bench runs itself
 * once per mode with the right environment and wraps their JSON.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vems.h>

#include "bench.h"

extern char **environ;

static const struct workload {
	const char *name;
	void (*fn)(struct bench *b);
	const char *what;
} workloads[] = {
	{"overwrite", wl_overwrite, "4 KiB durable overwrite, pmem-resident"},
	{"append", wl_append, "4 KiB durable append to new pages"},
	{"read-hit", wl_read_hit, "4 KiB and 64 KiB reads of resident data"},
	{"small-writes", wl_small_writes, "64 B and 256 B durable writes"},
	{"spill", wl_spill, "sequential 1 MiB writes of 4x pmem (spilling)"},
	{"random-reads", wl_random_reads,
	 "random 4 KiB reads, zipf 0.99 and uniform, 0.5x-8x pmem"},
	{"default-misses", wl_default_misses,
	 "random 4 KiB reads at the default 64 KiB extents, 2x-8x pmem"},
	{"cold-scan", wl_cold_scan,
	 "1 MiB sequential reads of a cold 8x-pmem object; the hot set after"},
	{"threads", wl_threads, "1 and 2 threads on disjoint objects"},
	{"small-objects", wl_small_objects,
	 "10,000 objects of 100 B-8 KiB: space, create and read rates"},
	{"open-scale", wl_open_scale,
	 "open time and DRAM per mapped extent, 1e4-1e6 extents"},
	{"shim-pwrite", wl_shim_pwrite,
	 "4 KiB pwrite+fdatasync through the LD_PRELOAD shim, the API, a file"},
	{"shim-sqlite", wl_shim_sqlite,
	 "sqlite3 inserts, synchronous=FULL, through the shim and on disk"},
	{"mechanisms", wl_mechanisms,
	 "clock costs, a lock around a persist; msync vs fdatasync (durable)"},
};

/* --- bookkeeping ------------------------------------------------------- */

void
bench_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vems-bench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	const char *m = vems_errormsg();
	fprintf(stderr, "%s%s\n", m && *m ? ": " : "", m ? m : "");
	exit(1);
}

double
bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

uint64_t
bench_rand(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static double
zeta(uint64_t n, double theta)
{
	double sum = 0;
	for (uint64_t i = 1; i <= n; i++)
		sum += 1.0 / pow((double)i, theta);
	return sum;
}

void
zipf_init(struct zipf *z, uint64_t n, double theta)
{
	z->n = n;
	z->theta = theta;
	z->zetan = zeta(n, theta);
	z->zeta2 = zeta(2, theta);
	z->alpha = 1.0 / (1.0 - theta);
	z->eta = (1 - pow(2.0 / (double)n, 1 - theta)) /
		(1 - z->zeta2 / z->zetan);
}

uint64_t
zipf_next(struct zipf *z, uint64_t *rng)
{
	double u = (double)(bench_rand(rng) >> 11) / (double)(1ull << 53);
	double uz = u * z->zetan;
	uint64_t v;
	if (uz < 1.0)
		v = 0;
	else if (uz < 1.0 + pow(0.5, z->theta))
		v = 1;
	else
		v = (uint64_t)((double)z->n *
			       pow(z->eta * u - z->eta + 1, z->alpha));
	if (v >= z->n)
		v = z->n - 1;
	/* scrambled: the hot items are spread over the id space */
	uint64_t h = v * UINT64_C(0x9e3779b97f4a7c15);
	return (h ^ (h >> 29)) % z->n;
}

struct series *
bench_series(struct bench *b, const char *workload, const char *variant,
	     enum unit u)
{
	for (size_t i = 0; i < b->ns; i++)
		if (!strcmp(b->s[i]->workload, workload) &&
		    !strcmp(b->s[i]->variant, variant))
			return b->s[i];
	if (b->ns == b->caps) {
		b->caps = b->caps ? 2 * b->caps : 64;
		b->s = realloc(b->s, b->caps * sizeof(*b->s));
		if (!b->s)
			bench_die("out of memory");
	}
	struct series *s = calloc(1, sizeof(*s));
	if (!s)
		bench_die("out of memory");
	snprintf(s->workload, sizeof(s->workload), "%s", workload);
	snprintf(s->variant, sizeof(s->variant), "%s", variant);
	s->unit = u;
	b->s[b->ns++] = s;
	return s;
}

void
series_round(struct series *s, double v)
{
	if (s->nrounds < MAX_ROUNDS)
		s->rounds[s->nrounds++] = v;
}

void
series_lat(struct series *s, double ns)
{
	if (s->nlat == s->caplat) {
		s->caplat = s->caplat ? 2 * s->caplat : 4096;
		s->lat = realloc(s->lat, s->caplat * sizeof(*s->lat));
		if (!s->lat)
			bench_die("out of memory");
	}
	s->lat[s->nlat++] = ns;
}

void
bench_ratio(struct bench *b, const char *workload, const char *num,
	    const char *den, bool at_most, double target, const char *what)
{
	if (b->nr == b->capr) {
		b->capr = b->capr ? 2 * b->capr : 32;
		b->r = realloc(b->r, b->capr * sizeof(*b->r));
		if (!b->r)
			bench_die("out of memory");
	}
	struct ratio *r = &b->r[b->nr++];
	memset(r, 0, sizeof(*r));
	snprintf(r->workload, sizeof(r->workload), "%s", workload);
	snprintf(r->num, sizeof(r->num), "%s", num);
	snprintf(r->den, sizeof(r->den), "%s", den);
	r->at_most = at_most;
	r->target = target;
	snprintf(r->what, sizeof(r->what), "%s", what);
}

void
bench_note(struct bench *b, const char *fmt, ...)
{
	if (b->nnotes >= (int)(sizeof(b->notes) / sizeof(b->notes[0])))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->notes[b->nnotes++], sizeof(b->notes[0]), fmt, ap);
	va_end(ap);
}

void
bench_path(struct bench *b, char *out, size_t len, const char *dir,
	   const char *ext)
{
	snprintf(out, len, "%s/vems-bench-%d-%u.%s", dir, (int)getpid(),
		 b->seq++, ext);
	unlink(out);
}

static int
dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return NAN;
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

double
series_median(const struct series *s)
{
	double v[MAX_ROUNDS];
	memcpy(v, s->rounds, sizeof(double) * (size_t)s->nrounds);
	qsort(v, (size_t)s->nrounds, sizeof(double), dcmp);
	return quantile(v, (size_t)s->nrounds, 0.5);
}

static struct series *
find(struct bench *b, const char *w, const char *v)
{
	for (size_t i = 0; i < b->ns; i++)
		if (!strcmp(b->s[i]->workload, w) &&
		    !strcmp(b->s[i]->variant, v))
			return b->s[i];
	return NULL;
}

static double
ratio_value(struct bench *b, const struct ratio *r)
{
	struct series *n = find(b, r->workload, r->num);
	struct series *d = r->den[0] ? find(b, r->workload, r->den) : NULL;
	if (!n || !n->nrounds || (r->den[0] && (!d || !d->nrounds)))
		return NAN;
	/* no denominator: an absolute target on the median itself */
	return d ? series_median(n) / series_median(d) : series_median(n);
}

/* --- output ------------------------------------------------------------ */

static const char *
unit_name(enum unit u)
{
	switch (u) {
	case U_NS_OP:
		return "us/op";
	case U_MIBS:
		return "MiB/s";
	case U_OPS:
		return "kops/s";
	case U_RATIO:
		return "ratio";
	case U_SECONDS:
		return "s";
	case U_BYTES:
		return "B";
	}
	return "?";
}

static double
shown(enum unit u, double v)
{
	return u == U_NS_OP ? v / 1000 : u == U_OPS ? v / 1000 : v;
}

static void
print_table(struct bench *b)
{
	printf("\n== vems-bench, %s mode: pmem file in %s%s, block and "
	       "ordinary files in %s; %d rounds ==\n",
	       b->mode, b->pmem_dir,
	       !strcmp(b->mode, "pmem") ? " with PMEM_IS_PMEM_FORCE=1"
					: " (msync)",
	       b->disk_dir, b->rounds);
	printf("%-22s %-34s %10s %10s %10s %10s %10s %-7s\n", "workload",
	       "variant", "median", "min", "max", "p50", "p99", "unit");
	for (size_t i = 0; i < b->ns; i++) {
		struct series *s = b->s[i];
		if (!s->nrounds)
			continue;
		double v[MAX_ROUNDS];
		memcpy(v, s->rounds, sizeof(double) * (size_t)s->nrounds);
		qsort(v, (size_t)s->nrounds, sizeof(double), dcmp);
		printf("%-22s %-34s %10.3f %10.3f %10.3f", s->workload,
		       s->variant,
		       shown(s->unit, quantile(v, (size_t)s->nrounds, 0.5)),
		       shown(s->unit, v[0]), shown(s->unit, v[s->nrounds - 1]));
		if (s->nlat) {
			qsort(s->lat, s->nlat, sizeof(double), dcmp);
			printf(" %10.3f %10.3f",
			       quantile(s->lat, s->nlat, 0.5) / 1000,
			       quantile(s->lat, s->nlat, 0.99) / 1000);
		} else {
			printf(" %10s %10s", "-", "-");
		}
		printf(" %-7s\n", unit_name(s->unit));
	}
	if (b->nr)
		printf("\ntargets (ratios of medians, same run):\n");
	for (size_t i = 0; i < b->nr; i++) {
		struct ratio *r = &b->r[i];
		double v = ratio_value(b, r);
		bool met = r->at_most ? v <= r->target : v >= r->target;
		if (isnan(r->target))
			printf("  %-22s %-52s %8.3f  (for reference)\n",
			       r->workload, r->what, v);
		else
			printf("  %-22s %-52s %8.3f  target %s %-6g %s\n",
			       r->workload, r->what, v,
			       r->at_most ? "<=" : ">=", r->target,
			       isnan(v)	     ? "n/a"
				       : met ? "met"
					     : "MISSED");
	}
	for (int i = 0; i < b->nnotes; i++)
		printf("  note: %s\n", b->notes[i]);
}

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void
json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void
write_json(struct bench *b, FILE *f)
{
	fprintf(f, "{\"mode\": ");
	json_str(f, b->mode);
	fprintf(f, ", \"pmem_dir\": ");
	json_str(f, b->pmem_dir);
	fprintf(f, ", \"disk_dir\": ");
	json_str(f, b->disk_dir);
	fprintf(f, ", \"rounds\": %d, \"quick\": %s, \"series\": [", b->rounds,
		b->quick ? "true" : "false");
	for (size_t i = 0; i < b->ns; i++) {
		struct series *s = b->s[i];
		double v[MAX_ROUNDS];
		memcpy(v, s->rounds, sizeof(double) * (size_t)s->nrounds);
		qsort(v, (size_t)s->nrounds, sizeof(double), dcmp);
		fprintf(f, "%s\n  {\"workload\": ", i ? "," : "");
		json_str(f, s->workload);
		fprintf(f, ", \"variant\": ");
		json_str(f, s->variant);
		fprintf(f, ", \"unit\": ");
		json_str(f,
			 s->unit == U_NS_OP	    ? "ns/op"
				 : s->unit == U_OPS ? "ops/s"
						    : unit_name(s->unit));
		fprintf(f, ", \"x\": ");
		json_num(f, s->x);
		fprintf(f, ", \"median\": ");
		json_num(f, quantile(v, (size_t)s->nrounds, 0.5));
		fprintf(f, ", \"min\": ");
		json_num(f, s->nrounds ? v[0] : NAN);
		fprintf(f, ", \"max\": ");
		json_num(f, s->nrounds ? v[s->nrounds - 1] : NAN);
		if (s->nlat) {
			qsort(s->lat, s->nlat, sizeof(double), dcmp);
			fprintf(f, ", \"p50_ns\": ");
			json_num(f, quantile(s->lat, s->nlat, 0.5));
			fprintf(f, ", \"p99_ns\": ");
			json_num(f, quantile(s->lat, s->nlat, 0.99));
		}
		fprintf(f, ", \"rounds\": [");
		for (int k = 0; k < s->nrounds; k++) {
			fprintf(f, "%s", k ? ", " : "");
			json_num(f, s->rounds[k]);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "],\n \"targets\": [");
	for (size_t i = 0; i < b->nr; i++) {
		struct ratio *r = &b->r[i];
		double v = ratio_value(b, r);
		fprintf(f, "%s\n  {\"workload\": ", i ? "," : "");
		json_str(f, r->workload);
		fprintf(f, ", \"what\": ");
		json_str(f, r->what);
		fprintf(f, ", \"value\": ");
		json_num(f, v);
		fprintf(f, ", \"target\": ");
		json_num(f, r->target);
		fprintf(f, ", \"at_most\": %s, \"met\": %s}",
			r->at_most ? "true" : "false",
			isnan(v) || isnan(r->target) ? "null"
				: (r->at_most ? v <= r->target : v >= r->target)
				? "true"
				: "false");
	}
	fprintf(f, "],\n \"notes\": [");
	for (int i = 0; i < b->nnotes; i++) {
		fprintf(f, "%s\n  ", i ? "," : "");
		json_str(f, b->notes[i]);
	}
	fprintf(f, "]}\n");
}

/* --- charts ------------------------------------------------------------ */

static void
slug(char *out, size_t len, const char *in)
{
	size_t k = 0;
	for (; *in && k + 1 < len; in++)
		out[k++] = (*in >= 'a' && *in <= 'z') ||
				(*in >= '0' && *in <= '9') || *in == '-'
			? *in
			: (*in >= 'A' && *in <= 'Z') ? (char)(*in + 32)
						     : '_';
	out[k] = 0;
}

/* The system a variant measures, as a colour index of the charts. */
static int
system_colour(const char *variant)
{
	/* the ordinary-file baselines' variants start with "file" */
	static const char *const pre[] = {"vems", "block tier", "fio", "raw",
					  "file"};
	for (int k = 0; k < 5; k++)
		if (strncmp(variant, pre[k], strlen(pre[k])) == 0)
			return k + 1;
	return 6;
}

static const char *
system_name(int colour)
{
	static const char *const names[] = {"vems",	     "block tier",
					    "fio",	     "raw pmem",
					    "ordinary file", "other"};
	return names[colour - 1];
}

static void
plots(struct bench *b, const char *dir)
{
	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		fprintf(stderr,
			"vems-bench: gnuplot not found; no charts "
			"(apt-get install gnuplot-nox)\n");
		return;
	}
	mkdir(dir, 0755);
	char gp[4096], dat[4096], name[128];
	snprintf(gp, sizeof(gp), "%s/%s.gp", dir, b->mode);
	FILE *g = fopen(gp, "w");
	if (!g)
		bench_die("cannot write %s", gp);
	fprintf(g,
		"set terminal pngcairo size 900,560 noenhanced\n"
		"set grid\nset key left top\n");

	/* latency CDFs: one chart per workload with samples */
	for (size_t i = 0; i < b->ns; i++) {
		struct series *s = b->s[i];
		bool first = true;
		if (!s->nlat)
			continue;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(b->s[j]->workload, s->workload) &&
			    b->s[j]->nlat)
				first = false;
		if (!first)
			continue;
		slug(name, sizeof(name), s->workload);
		fprintf(g,
			"set output '%s/%s-%s-latency-cdf.png'\n"
			"set title '%s: latency CDF (%s mode)'\n"
			"set xlabel 'latency (us, log)'\nset logscale x\n"
			"set ylabel 'fraction of operations'\n"
			"set yrange [0:1]\nplot ",
			dir, b->mode, name, s->workload, b->mode);
		int k = 0;
		for (size_t j = i; j < b->ns; j++) {
			struct series *t = b->s[j];
			if (strcmp(t->workload, s->workload) || !t->nlat)
				continue;
			char vs[96];
			slug(vs, sizeof(vs), t->variant);
			snprintf(dat, sizeof(dat), "%s/%s-%s-%s.cdf", dir,
				 b->mode, name, vs);
			FILE *d = fopen(dat, "w");
			if (!d)
				bench_die("cannot write %s", dat);
			qsort(t->lat, t->nlat, sizeof(double), dcmp);
			size_t step = t->nlat / 500 ? t->nlat / 500 : 1;
			for (size_t q = 0; q < t->nlat; q += step)
				fprintf(d, "%g %g\n", t->lat[q] / 1000,
					(double)(q + 1) / (double)t->nlat);
			fprintf(d, "%g 1\n", t->lat[t->nlat - 1] / 1000);
			fclose(d);
			fprintf(g, "%s'%s' with lines lw 2 title '%s'",
				k++ ? ", " : "", dat, t->variant);
		}
		fprintf(g, "\nunset logscale x\nset yrange [*:*]\n");
	}

	/*
	 * Throughput: one panel per unit (MiB/s, kops/s), each workload's
	 * bars together, one colour per system (vems, block tier, fio, raw
	 * pmem, ordinary file), a gap between workloads.
	 */
	static const enum unit tunits[] = {U_MIBS, U_OPS};
	int rows[2] = {0, 0};
	for (int ui = 0; ui < 2; ui++) {
		snprintf(dat, sizeof(dat), "%s/%s-throughput-%d.dat", dir,
			 b->mode, ui);
		FILE *d = fopen(dat, "w");
		if (!d)
			bench_die("cannot write %s", dat);
		int y = 0;
		for (size_t i = 0; i < b->ns; i++) {
			struct series *s = b->s[i];
			if (s->unit != tunits[ui] || s->x != 0 || !s->nrounds)
				continue;
			bool first = true; /* of its workload, in this unit */
			for (size_t j = 0; j < i && first; j++)
				if (b->s[j]->unit == s->unit &&
				    b->s[j]->x == 0 && b->s[j]->nrounds &&
				    !strcmp(b->s[j]->workload, s->workload))
					first = false;
			if (!first)
				continue;
			if (y > 0)
				y++; /* the gap between workloads */
			for (size_t j = i; j < b->ns; j++) {
				struct series *t = b->s[j];
				if (t->unit != s->unit || t->x != 0 ||
				    !t->nrounds ||
				    strcmp(t->workload, s->workload))
					continue;
				fprintf(d, "%d %g %d \"%s: %s\"\n", y++,
					shown(t->unit, series_median(t)),
					system_colour(t->variant), t->workload,
					t->variant);
			}
		}
		fclose(d);
		rows[ui] = y;
	}
	int panels = (rows[0] > 0) + (rows[1] > 0);
	if (panels) {
		int h = 0;
		for (int ui = 0; ui < 2; ui++)
			h += rows[ui] ? 110 + 18 * rows[ui] : 0;
		fprintf(g,
			"set output '%s/%s-throughput.png'\n"
			"set terminal pngcairo size 1100,%d noenhanced\n"
			"set multiplot layout %d,1 title 'throughput, medians "
			"(%s mode), one panel per unit'\n"
			"set style fill solid 0.7\nset logscale x\n"
			"set format x '%%g'\nset key below horizontal\n"
			"set ytics font ',8'\nunset ylabel\n",
			dir, b->mode, 80 + h, panels, b->mode);
		static const char *const uname[] = {"MiB/s", "kops/s"};
		for (int ui = 0; ui < 2; ui++) {
			if (rows[ui] == 0)
				continue;
			snprintf(dat, sizeof(dat), "%s/%s-throughput-%d.dat",
				 dir, b->mode, ui);
			fprintf(g,
				"set title '%s'\nset xlabel '%s (log "
				"scale)'\nset yrange [%d:-1]\n",
				uname[ui], uname[ui], rows[ui]);
			fprintf(g,
				"plot '%s' using 2:1:(0):2:($1-0.4):($1+0.4):"
				"3:ytic(4) with boxxyerror lc variable "
				"notitle",
				dat);
			for (int k = 1; k <= 6; k++)
				fprintf(g, ", NaN with boxes lc %d title '%s'",
					k, system_name(k));
			fprintf(g, "\n");
		}
		fprintf(g,
			"unset multiplot\nunset logscale x\nset format x\n"
			"set xrange [*:*]\nset yrange [*:*]\nset key default\n"
			"set terminal pngcairo size 900,560 noenhanced\n");
	}

	/* hit ratio vs working set: ratio series with an x */
	snprintf(dat, sizeof(dat), "%s/%s-hit-ratio.gp.dat", dir, b->mode);
	int curves = 0;
	fprintf(g,
		"set output '%s/%s-hit-ratio.png'\n"
		"set title 'pmem hit ratio vs working set (%s mode)'\n"
		"set xlabel 'working set / pmem capacity'\n"
		"set ylabel 'hit ratio'\nset yrange [0:1.05]\n"
		"set key left bottom\n"
		"set logscale x 2\nplot ",
		dir, b->mode, b->mode);
	for (size_t i = 0; i < b->ns; i++) {
		struct series *s = b->s[i];
		bool first = true;
		if (s->unit != U_RATIO || s->x == 0)
			continue;
		for (size_t j = 0; j < i; j++)
			if (b->s[j]->unit == U_RATIO && b->s[j]->x != 0 &&
			    !strcmp(b->s[j]->variant, s->variant))
				first = false;
		if (!first)
			continue;
		char vs[96];
		slug(vs, sizeof(vs), s->variant);
		snprintf(dat, sizeof(dat), "%s/%s-hit-%s.dat", dir, b->mode,
			 vs);
		FILE *h = fopen(dat, "w");
		if (!h)
			bench_die("cannot write %s", dat);
		for (size_t j = i; j < b->ns; j++)
			if (b->s[j]->unit == U_RATIO && b->s[j]->x != 0 &&
			    !strcmp(b->s[j]->variant, s->variant))
				fprintf(h, "%g %g\n", b->s[j]->x,
					series_median(b->s[j]));
		fclose(h);
		fprintf(g, "%s'%s' with linespoints lw 2 title '%s'",
			curves++ ? ", " : "", dat, s->variant);
	}
	if (!curves)
		fprintf(g, "0 notitle");
	fprintf(g, "\n");
	fclose(g);
	char cmd[8300];
	snprintf(cmd, sizeof(cmd), "gnuplot '%s'", gp);
	if (system(cmd) != 0)
		fprintf(stderr, "vems-bench: gnuplot failed on %s\n", gp);
	else
		printf("charts: %s/%s-*.png\n", dir, b->mode);
}

/* --- main -------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: vems-bench [--quick] [--rounds N] [--json FILE] "
		"[--plot DIR]\n"
		"                  [--mode pmem|durable] [--only W[,W...]] "
		"[--pmem-dir DIR]\n"
		"                  [--disk-dir DIR] [--list]\n\n"
		"Runs each workload on vems and on its baselines back to back, "
		"in interleaved\nrounds, and reports medians, min, max, "
		"p50/p99 latency and the ratios\nvems/baseline against their "
		"targets. Without --mode it runs both fast-tier\nmodes, each "
		"in its own process:\n"
		"  pmem     pmem file on tmpfs (/dev/shm), "
		"PMEM_IS_PMEM_FORCE=1: the cost\n"
		"           structure of real persistent memory\n"
		"  durable  pmem file on disk (--disk-dir), flushed with msync:"
		" truly durable\n\n"
		"  --quick         small sizes and 5 rounds (about a minute); "
		"a smoke run\n"
		"  --rounds N      rounds per workload (default 7, at least "
		"5)\n"
		"  --json FILE     write every figure as JSON\n"
		"  --plot DIR      draw PNG charts with gnuplot into DIR\n"
		"  --only LIST     run only these workloads (see --list)\n"
		"  --pmem-dir DIR  pmem files in pmem mode (default /dev/shm)\n"
		"  --disk-dir DIR  block files, ordinary files, and pmem files "
		"in durable\n"
		"                  mode (default /var/tmp)\n"
		"  --list          list the workloads and exit\n"
		"  -h, --help      show this help\n");
}

static bool
selected(const char *only, const char *name)
{
	if (!only)
		return true;
	size_t n = strlen(name);
	for (const char *p = only; (p = strstr(p, name)) != NULL; p += n)
		if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return true;
	return false;
}

/* Runs one mode in a child process with its environment. */
static int
spawn_mode(char **argv, int argc, const char *mode, const char *json)
{
	char **av = calloc((size_t)argc + 6, sizeof(*av));
	int k = 0;
	av[k++] = argv[0];
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") &&
		    (i == 1 || strcmp(argv[i - 1], "--json")))
			av[k++] = argv[i];
	av[k++] = "--mode";
	av[k++] = (char *)mode;
	av[k++] = "--json";
	av[k++] = (char *)json;
	if (!strcmp(mode, "pmem"))
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
	else
		unsetenv("PMEM_IS_PMEM_FORCE");
	pid_t pid;
	int e = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, av, environ);
	free(av);
	if (e)
		bench_die("posix_spawn: %s", strerror(e));
	int st;
	if (waitpid(pid, &st, 0) < 0)
		bench_die("waitpid: %s", strerror(errno));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"quick", no_argument, NULL, 'q'},
		{"rounds", required_argument, NULL, 'r'},
		{"json", required_argument, NULL, 'j'},
		{"plot", required_argument, NULL, 'p'},
		{"mode", required_argument, NULL, 'm'},
		{"only", required_argument, NULL, 'o'},
		{"pmem-dir", required_argument, NULL, 'P'},
		{"disk-dir", required_argument, NULL, 'D'},
		{"list", no_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bench b = {.rounds = 0};
	const char *json = NULL, *plot = NULL, *only = NULL, *mode = NULL;
	const char *pmem_dir = "/dev/shm", *disk_dir = "/var/tmp";
	int c;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			b.quick = true;
			break;
		case 'r':
			b.rounds = atoi(optarg);
			if (b.rounds < 5 || b.rounds > MAX_ROUNDS) {
				fprintf(stderr,
					"vems-bench: --rounds: 5 to "
					"%d\n",
					MAX_ROUNDS);
				return 2;
			}
			break;
		case 'j':
			json = optarg;
			break;
		case 'p':
			plot = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "pmem") &&
			    strcmp(optarg, "durable")) {
				fprintf(stderr,
					"vems-bench: --mode: pmem or "
					"durable\n");
				return 2;
			}
			mode = optarg;
			break;
		case 'o':
			only = optarg;
			break;
		case 'P':
			pmem_dir = optarg;
			break;
		case 'D':
			disk_dir = optarg;
			break;
		case 'l':
			for (size_t i = 0;
			     i < sizeof(workloads) / sizeof(workloads[0]); i++)
				printf("%-14s %s\n", workloads[i].name,
				       workloads[i].what);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (only)
		for (const char *p = only; *p;) {
			size_t n = strcspn(p, ",");
			bool ok = false;
			for (size_t i = 0;
			     i < sizeof(workloads) / sizeof(workloads[0]); i++)
				ok |= strlen(workloads[i].name) == n &&
					!strncmp(workloads[i].name, p, n);
			if (!ok) {
				fprintf(stderr,
					"vems-bench: unknown workload '%.*s' "
					"(see --list)\n",
					(int)n, p);
				return 2;
			}
			p += n + (p[n] == ',');
		}

	if (!mode) {
		/* both modes, each in its own process; their JSON wrapped */
		char parts[2][4200];
		const char *modes[2] = {"pmem", "durable"};
		int rc = 0;
		for (int i = 0; i < 2; i++) {
			snprintf(parts[i], sizeof(parts[i]),
				 "%s/vems-bench-%d-%s.json", disk_dir,
				 (int)getpid(), modes[i]);
			rc |= spawn_mode(argv, argc, modes[i], parts[i]);
		}
		if (json) {
			FILE *o = fopen(json, "w");
			if (!o)
				bench_die("cannot write %s", json);
			fprintf(o, "{\"vems_version\": \"%s\", \"modes\": [\n",
				vems_version());
			for (int i = 0; i < 2; i++) {
				FILE *in = fopen(parts[i], "r");
				char buf[65536];
				size_t n;
				if (i)
					fputs(",\n", o);
				while (in &&
				       (n = fread(buf, 1, sizeof(buf), in)) > 0)
					fwrite(buf, 1, n, o);
				if (!in)
					fputs("null", o);
				else
					fclose(in);
			}
			fputs("]}\n", o);
			fclose(o);
			printf("json: %s\n", json);
		}
		unlink(parts[0]);
		unlink(parts[1]);
		return rc;
	}

	/* libpmem reads PMEM_IS_PMEM_FORCE once, at load: set it, go again */
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	bool want_force = !strcmp(mode, "pmem");
	bool has_force = force && !strcmp(force, "1");
	if (want_force != has_force && !getenv("VEMS_BENCH_REEXEC")) {
		if (want_force)
			setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		else
			unsetenv("PMEM_IS_PMEM_FORCE");
		setenv("VEMS_BENCH_REEXEC", "1", 1);
		execv("/proc/self/exe", argv);
		bench_die("execv: %s", strerror(errno));
	}
	b.mode = mode;
	b.pmem_dir = !strcmp(mode, "pmem") ? pmem_dir : disk_dir;
	b.disk_dir = disk_dir;
	if (!b.rounds)
		b.rounds = b.quick ? 5 : 7;
	b.pmem_size = b.quick ? 16 * MIB : 128 * MIB;
	if (want_force != has_force)
		bench_note(&b,
			   "PMEM_IS_PMEM_FORCE could not be set for "
			   "this mode: libpmem decided by itself");
	printf("vems-bench %s: %s mode%s\n", vems_version(), mode,
	       b.quick ? " (quick)" : "");
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		if (selected(only, workloads[i].name)) {
			double t0 = bench_now_ns();
			printf("  %-14s %s ...", workloads[i].name,
			       workloads[i].what);
			fflush(stdout);
			workloads[i].fn(&b);
			printf(" %.1f s\n", (bench_now_ns() - t0) / 1e9);
		}
	print_table(&b);
	if (json) {
		FILE *o = fopen(json, "w");
		if (!o)
			bench_die("cannot write %s", json);
		write_json(&b, o);
		fclose(o);
	}
	if (plot)
		plots(&b, plot);
	for (size_t i = 0; i < b.ns; i++) {
		free(b.s[i]->lat);
		free(b.s[i]);
	}
	free(b.s);
	free(b.r);
	return 0;
}
