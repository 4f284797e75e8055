/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wl_shim.c -- the LD_PRELOAD shim's workloads (issue 10): the same
 * unmodified loop or program on a file under the shim's prefix, through
 * the direct API, and on an ordinary file in the disk directory, with the
 * same durability (fdatasync where the program syncs).
 *
 *   shim-pwrite   4 KiB pwrite + fdatasync: vems-bench-shimloop through
 *                 the shim, the same loop on an ordinary file, and
 *                 vems_obj_pwrite + vems_obj_persist in this process
 *   shim-sqlite   sqlite3 inserting rows one transaction each,
 *                 synchronous=FULL, through the shim and on the disk
 *
 * The shim and the loop are found next to vems-bench in the build tree
 * (../shim/libvems_preload.so, ./vems-bench-shimloop), or through
 * VEMS_BENCH_SHIM and VEMS_BENCH_SHIMLOOP. Child processes inherit the
 * mode's PMEM_IS_PMEM_FORCE. shim-pwrite times each write inside the
 * loop. shim-sqlite's transactions per second are the steady state: the
 * time of a run of n transactions less that of the same script with none
 * (process start, and through the shim the pool's open, 20-40 ms), on
 * both sides; the rates with the start included are reported beside them.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vems.h>

#include "bench.h"
#include "common.h"

static bool
find(const char *env, const char *rel, char *out, size_t len)
{
	const char *e = getenv(env);
	if (e && *e) {
		snprintf(out, len, "%s", e);
		return access(out, R_OK) == 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	char *sl = strrchr(self, '/');
	if (sl == NULL)
		return false;
	*sl = '\0';
	if (strlen(self) + 1 + strlen(rel) >= len)
		return false;
	strcpy(out, self);
	strcat(out, "/");
	strcat(out, rel);
	return access(out, R_OK) == 0;
}

/* Runs a shell command, returns its first line of output as a number
 * (or the wall time in ns when want_time), dies on failure. */
static double
run(const char *cmd, bool want_time)
{
	double t0 = bench_now_ns();
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		bench_die("popen %s", cmd);
	char line[256] = "";
	if (fgets(line, sizeof(line), p) == NULL)
		line[0] = '\0';
	while (fgetc(p) != EOF)
		;
	int st = pclose(p);
	double t = bench_now_ns() - t0;
	if (st != 0)
		bench_die("'%s' failed (status %d)", cmd, st);
	return want_time ? t : atof(line);
}

/* A pool for the shim, created and closed (the child opens it). */
static void
shim_pool(struct bench *b, char *pmem, char *blk, size_t len)
{
	struct vems_config *cfg;
	struct vems_pool *p;
	bench_path(b, pmem, len, b->pmem_dir, "pool");
	bench_path(b, blk, len, b->disk_dir, "blk");
	CHECK(vems_config_new(&cfg));
	CHECK(vems_config_set_pmem_size(cfg, 64 * MIB));
	CHECK(vems_config_set_block_path(cfg, blk));
	CHECK(vems_config_set_block_size(cfg, 256 * MIB));
	CHECK(vems_pool_create(&p, pmem, cfg));
	vems_config_delete(&cfg);
	CHECK(vems_pool_close(&p));
}

#define PREFIX "/vems-bench-shim"

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void
wl_shim_pwrite(struct bench *b)
{
	const char *wl = "shim-pwrite";
	char shim[PATH_MAX], loop[PATH_MAX];
	if (!find("VEMS_BENCH_SHIM", "../shim/libvems_preload.so", shim,
		  sizeof(shim)) ||
	    !find("VEMS_BENCH_SHIMLOOP", "vems-bench-shimloop", loop,
		  sizeof(loop))) {
		bench_note(b,
			   "%s: skipped: no libvems_preload.so or "
			   "vems-bench-shimloop (VEMS_BENCH_SHIM, "
			   "VEMS_BENCH_SHIMLOOP)",
			   wl);
		return;
	}
	bool durable = !strcmp(b->mode, "durable");
	long n = b->quick ? 200 : durable ? 1000 : 20000;
	char pmem[PATH_MAX], blk[PATH_MAX], file[PATH_MAX];
	shim_pool(b, pmem, blk, sizeof(pmem));
	struct vpool vp;
	vp_create(b, &vp, 64 * MIB, 256 * MIB, 0, VEMS_LOW_WATERMARK_DEFAULT,
		  0);
	struct vems_obj *o = vp_object(&vp, 256 * 4096);
	struct series *ss = bench_series(b, wl, "shim", U_NS_OP);
	struct series *sa = bench_series(b, wl, "api", U_NS_OP);
	struct series *sf =
		bench_series(b, wl, "file pwrite+fdatasync", U_NS_OP);
	/* for reference: what an open and close cost (SQLite makes two of
	 * each in every transaction) */
	struct series *soc = bench_series(b, wl, "shim open+close", U_NS_OP);
	struct series *sfoc = bench_series(b, wl, "file open+close", U_NS_OP);
	static char buf[4096];
	memset(buf, 0x5a, sizeof(buf));
	double *lat = malloc((size_t)n * sizeof(*lat));
	for (int r = 0; r < b->rounds; r++) {
		char cmd[4 * PATH_MAX];
		snprintf(cmd, sizeof(cmd),
			 "env LD_PRELOAD='%s' VEMS_POOL='%s' "
			 "VEMS_PREFIX=" PREFIX " '%s' " PREFIX "/f%d %ld",
			 shim, pmem, loop, r, n);
		series_round(ss, run(cmd, false));
		bench_path(b, file, sizeof(file), b->disk_dir, "dat");
		snprintf(cmd, sizeof(cmd), "'%s' '%s' %ld", loop, file, n);
		series_round(sf, run(cmd, false));
		snprintf(cmd, sizeof(cmd),
			 "env LD_PRELOAD='%s' VEMS_POOL='%s' "
			 "VEMS_PREFIX=" PREFIX " '%s' --open-close " PREFIX
			 "/oc%d %ld",
			 shim, pmem, loop, r, b->quick ? 200 : 20000L);
		series_round(soc, run(cmd, false));
		snprintf(cmd, sizeof(cmd), "'%s' --open-close '%s' %ld", loop,
			 file, b->quick ? 200 : 20000L);
		series_round(sfoc, run(cmd, false));
		for (long i = 0; i < n; i++) {
			buf[0] = (char)i;
			double t0 = bench_now_ns();
			CHECK(vems_obj_pwrite(o, buf, sizeof(buf),
					      (uint64_t)(i % 256) * 4096, 0));
			CHECK(vems_obj_persist(o));
			lat[i] = bench_now_ns() - t0;
		}
		/* the median, as the loop reports */
		qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
		series_round(sa, lat[n / 2]);
	}
	free(lat);
	CHECK(vems_obj_close(&o));
	vp_destroy(&vp);
	unlink(pmem);
	unlink(blk);
	bench_ratio(b, wl, "shim", "api", true, 1.5,
		    "shim / direct API latency (same loop, same durability)");
	bench_ratio(b, wl, "file pwrite+fdatasync", "shim", false,
		    durable ? NAN : 20,
		    "ordinary file / shim latency (speed-up)");
}

void
wl_shim_sqlite(struct bench *b)
{
	const char *wl = "shim-sqlite";
	char shim[PATH_MAX];
	if (!find("VEMS_BENCH_SHIM", "../shim/libvems_preload.so", shim,
		  sizeof(shim)) ||
	    system("sqlite3 -version >/dev/null 2>&1") != 0) {
		bench_note(b,
			   "%s: skipped: no libvems_preload.so or no sqlite3",
			   wl);
		return;
	}
	bool durable = !strcmp(b->mode, "durable");
	long n = b->quick ? 50 : durable ? 300 : 2000;
	char pmem[PATH_MAX], blk[PATH_MAX], sql[2][PATH_MAX], db[PATH_MAX];
	shim_pool(b, pmem, blk, sizeof(pmem));
	for (int k = 0; k < 2; k++) {
		bench_path(b, sql[k], sizeof(sql[k]), b->disk_dir,
			   k ? "sql" : "sql0");
		FILE *f = fopen(sql[k], "w");
		if (f == NULL)
			bench_die("%s", sql[k]);
		fprintf(f,
			"PRAGMA synchronous=FULL;\n"
			"CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);\n");
		for (long i = 0; k && i < n; i++)
			fprintf(f,
				"BEGIN; INSERT INTO t(b) VALUES('row %ld of "
				"the benchmark, a hundred bytes or so of text "
				"to make it a realistic small record'); "
				"COMMIT;\n",
				i);
		fclose(f);
	}
	struct series *ss = bench_series(b, wl, "shim", U_OPS);
	struct series *sf = bench_series(b, wl, "sqlite3 on disk", U_OPS);
	struct series *ssi =
		bench_series(b, wl, "shim, process start included", U_OPS);
	struct series *sfi = bench_series(
		b, wl, "sqlite3 on disk, process start included", U_OPS);
	struct series *st0 =
		bench_series(b, wl, "shim: start and pool open", U_NS_OP);
	int unmeasured = 0;
	for (int r = 0; r < b->rounds; r++) {
		char cmd[4 * PATH_MAX];
		double t[2][2]; /* [shim, disk][no transactions, n] */
		for (int k = 0; k < 2; k++) {
			snprintf(cmd, sizeof(cmd),
				 "env LD_PRELOAD='%s' VEMS_POOL='%s' "
				 "VEMS_PREFIX=" PREFIX " sqlite3 " PREFIX
				 "/db%d-%d <'%s'",
				 shim, pmem, r, k, sql[k]);
			t[0][k] = run(cmd, true);
			bench_path(b, db, sizeof(db), b->disk_dir, "db");
			snprintf(cmd, sizeof(cmd), "sqlite3 '%s' <'%s'", db,
				 sql[k]);
			t[1][k] = run(cmd, true);
			unlink(db);
		}
		/*
		 * The steady state is the difference of two process runs, so
		 * a round whose transactions took less than the jitter of
		 * the start (a quick run's 50 in pmem mode: under 2 ms next
		 * to a 50 ms start) measures nothing: it is left out and
		 * counted, not turned into a rate.
		 */
		double ds = t[0][1] - t[0][0], df = t[1][1] - t[1][0];
		if (ds > 0 && df > 0) {
			series_round(ss, (double)n / (ds / 1e9));
			series_round(sf, (double)n / (df / 1e9));
		} else {
			unmeasured++;
		}
		series_round(ssi, (double)n / (t[0][1] / 1e9));
		series_round(sfi, (double)n / (t[1][1] / 1e9));
		series_round(st0, t[0][0]);
	}
	if (unmeasured)
		bench_note(b,
			   "%s: steady state: %d of %d rounds left out, their "
			   "%ld transactions no longer than the start's jitter",
			   wl, unmeasured, b->rounds, n);
	unlink(sql[0]);
	unlink(sql[1]);
	unlink(pmem);
	unlink(blk);
	/*
	 * The 20x target is the fast tier's (pmem mode). In durable mode
	 * both sides wait for the same disk's cache flush at every commit
	 * (the pool's msync, ext4's fsync), so no such multiple is possible:
	 * the ratio is reported, as shim-pwrite's speed-up is.
	 */
	bench_ratio(b, wl, "shim", "sqlite3 on disk", false, durable ? NAN : 20,
		    "shim / disk transactions per second (steady state)");
	bench_ratio(b, wl, "shim, process start included",
		    "sqlite3 on disk, process start included", false, NAN,
		    "shim / disk transactions per second, process start "
		    "included");
}
