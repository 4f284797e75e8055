/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wl_small.c -- small objects: what they cost in space, and the rates of
 * creating, writing and reading them, against files on the disk's file
 * system (create + write + fsync, open + read) in the same run.
 */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vems.h>

#include "common.h"

#define SMALL_MIN 100
#define SMALL_MAX 8192

/* Sizes 100 B - 8 KiB, log-normal around a median of 2 KiB. */
static size_t
small_size(uint64_t *rng)
{
	double u1 =
		((double)(bench_rand(rng) >> 11) + 0.5) / 9007199254740992.0;
	double u2 = (double)(bench_rand(rng) >> 11) / 9007199254740992.0;
	double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
	double s = 2048 * exp(0.8 * z);
	if (s < SMALL_MIN)
		s = SMALL_MIN;
	if (s > SMALL_MAX)
		s = SMALL_MAX;
	return (size_t)s;
}

static void
fill(uint8_t *buf, size_t len, uint64_t id)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(id * 131 + i * 7);
}

/*
 * n objects (10,000; 1,000 with --quick) in a pool of 64 MiB of pmem,
 * more than their bytes: each is created, written in one durable write
 * and closed, then all are read back and checked (those spilled come back
 * from the block file). Space is both tiers' extents in use (a clean
 * extent counts twice) and the small objects' inline allocations, against
 * the budget of 1.5x the bytes plus 256 B an object; object
 * records and names are not counted.
 */
void
wl_small_objects(struct bench *b)
{
	const char *wl = "small-objects";
	size_t n = b->quick ? 1000 : 10000;
	/* files: create + write + fsync costs a journal commit each */
	size_t nf = n < 2000 ? n : 2000;
	uint64_t rng = 0x5a11;
	size_t *len = malloc(n * sizeof(*len));
	uint8_t *buf = malloc(SMALL_MAX), *rbuf = malloc(SMALL_MAX);
	if (len == NULL || buf == NULL || rbuf == NULL)
		bench_die("out of memory");
	uint64_t bytes = 0, fbytes = 0;
	for (size_t i = 0; i < n; i++) {
		len[i] = small_size(&rng);
		bytes += len[i];
		if (i < nf)
			fbytes += len[i];
	}
	/* room in the block file for an extent an object */
	uint64_t blk = (uint64_t)n * 64 * 1024 * 5 / 4 + 64 * MIB;
	struct series *sc = bench_series(b, wl, "vems create+write", U_OPS);
	struct series *sr = bench_series(b, wl, "vems open+read", U_OPS);
	struct series *fc =
		bench_series(b, wl, "file create+write+fsync", U_OPS);
	struct series *fr = bench_series(b, wl, "file open+read", U_OPS);
	char sw[64];
	snprintf(sw, sizeof(sw), "%s-space", wl);
	struct series *space =
		bench_series(b, sw, "vems bytes held (both tiers)", U_BYTES);
	struct series *budget = bench_series(
		b, sw, "budget: 1.5x the bytes + 256 B an object", U_BYTES);
	struct series *fspace =
		bench_series(b, sw, "files: blocks allocated", U_BYTES);
	for (int r = 0; r < b->rounds; r++) {
		struct vpool vp;
		vp_create(b, &vp, 64 * MIB, blk, 0, VEMS_LOW_WATERMARK_DEFAULT,
			  0);
		double t0 = bench_now_ns();
		for (size_t i = 0; i < n; i++) {
			struct vems_oid oid = {7, i + 1};
			struct vems_obj *o;
			fill(buf, len[i], i);
			CHECK(vems_obj_create(vp.pool, &oid));
			CHECK(vems_obj_open(vp.pool, oid, 0, &o));
			if (vems_obj_pwrite(o, buf, len[i], 0, 0) !=
			    (ssize_t)len[i])
				bench_die("small object %zu: write", i);
			vems_obj_close(&o);
		}
		series_round(sc, (double)n * 1e9 / (bench_now_ns() - t0));
		struct vems_pool_stats st;
		CHECK(vems_pool_stats(vp.pool, &st));
		series_round(
			space,
			(double)(st.pmem_bytes_used + st.block_bytes_used));
		series_round(budget, 1.5 * (double)bytes + 256.0 * (double)n);
		t0 = bench_now_ns();
		for (size_t i = 0; i < n; i++) {
			struct vems_oid oid = {7, i + 1};
			struct vems_obj *o;
			CHECK(vems_obj_open(vp.pool, oid, VEMS_O_RDONLY, &o));
			ssize_t got = vems_obj_pread(o, rbuf, SMALL_MAX, 0);
			vems_obj_close(&o);
			fill(buf, len[i], i);
			if (got != (ssize_t)len[i] ||
			    memcmp(rbuf, buf, len[i]) != 0)
				bench_die("small object %zu: read back %zd of "
					  "%zu bytes, or they differ",
					  i, got, len[i]);
		}
		series_round(sr, (double)n * 1e9 / (bench_now_ns() - t0));
		vp_destroy(&vp);

		/* the same on the disk's file system, one file each */
		char dir[4096];
		bench_path(b, dir, sizeof(dir), b->disk_dir, "dir");
		if (mkdir(dir, 0700))
			bench_die("mkdir %s: %s", dir, strerror(errno));
		char path[4200];
		t0 = bench_now_ns();
		for (size_t i = 0; i < nf; i++) {
			snprintf(path, sizeof(path), "%s/%zu", dir, i);
			fill(buf, len[i], i);
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
			if (fd < 0 ||
			    write(fd, buf, len[i]) != (ssize_t)len[i] ||
			    fsync(fd) || close(fd))
				bench_die("file %s: %s", path, strerror(errno));
		}
		/* the new names are durable with the directory */
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		if (dfd < 0 || fsync(dfd) || close(dfd))
			bench_die("fsync %s: %s", dir, strerror(errno));
		series_round(fc, (double)nf * 1e9 / (bench_now_ns() - t0));
		uint64_t alloc = 0;
		t0 = bench_now_ns();
		for (size_t i = 0; i < nf; i++) {
			snprintf(path, sizeof(path), "%s/%zu", dir, i);
			int fd = open(path, O_RDONLY);
			ssize_t got = fd < 0 ? -1 : read(fd, rbuf, SMALL_MAX);
			struct stat sb;
			if (got != (ssize_t)len[i] || fstat(fd, &sb) ||
			    close(fd))
				bench_die("file %s: read %zd", path, got);
			alloc += (uint64_t)sb.st_blocks * 512;
		}
		series_round(fr, (double)nf * 1e9 / (bench_now_ns() - t0));
		/* scaled to n objects: the files are the first nf of them */
		series_round(fspace,
			     (double)alloc * (double)bytes / (double)fbytes);
		for (size_t i = 0; i < nf; i++) {
			snprintf(path, sizeof(path), "%s/%zu", dir, i);
			unlink(path);
		}
		rmdir(dir);
	}
	bench_ratio(b, sw, "vems bytes held (both tiers)",
		    "budget: 1.5x the bytes + 256 B an object", true, 1.0,
		    "space of small objects / the issue's budget");
	bench_ratio(b, wl, "vems create+write", "file create+write+fsync",
		    false, NAN, "vems / file creation rate");
	bench_ratio(b, wl, "vems open+read", "file open+read", false, NAN,
		    "vems / file read rate");
	bench_note(b,
		   "small-objects: %zu objects, %.0f B each on average "
		   "(median about 2 KiB); files: the first %zu of them",
		   n, (double)bytes / (double)n, nf);
	free(len);
	free(buf);
	free(rbuf);
}
