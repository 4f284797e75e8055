/* SPDX-License-Identifier: BSD-3-Clause */
/* demo.c -- the README's demo: objects written, read back and verified */

/*
 * Creates a pool on emulated pmem in a temporary directory (its block file
 * in a temporary directory on disk, where O_DIRECT works), writes a working
 * set of objects four times larger than pmem's data capacity, so that most
 * of it is spilled to the block file, and reads everything back:
 * sequentially, at random offsets (blocking, and through the asynchronous
 * API at queue depth 32), after partial overwrites, and after the pool is
 * closed and reopened. Every byte read is compared with what was written;
 * any difference, or any error, makes it exit 1. It prints the pool's
 * statistics (spills, promotions, where the extents are), runs
 * vems_pool_check (which reads every spilled extent back and verifies its
 * checksum) and removes its files.
 *
 * The content of byte b of object o in generation g is a pure function of
 * (o, g, b), so nothing needs to be kept in memory to verify it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vems.h>

#define CHUNK ((size_t)1 << 20)		    /* sequential transfer unit */
#define OBJ_SIZE_MAX (UINT64_C(4) << 20)    /* object size for large sets */
#define RANDOM_READS 2000		    /* per random-read pass */
#define RANDOM_READ_MAX ((size_t)256 << 10) /* longest random read */
#define AIO_QD 32			    /* async reads in flight */
#define AIO_READS 4096			    /* per async pass */
#define AIO_LEN 4096			    /* bytes per async read */

struct demo_obj {
	struct vems_oid oid;
	uint64_t ov_off, ov_len; /* the overwritten range (generation 1) */
};

struct demo {
	struct vems_pool *pool;
	struct demo_obj *objs;
	uint32_t nobjs;
	uint64_t obj_size;
	uint64_t rng;
	unsigned char *buf, *expect;
	uint64_t mismatches;   /* reads whose bytes differed */
	const char *disk_file; /* beside the block file: the pwrite baseline */
};

static int
fail(const char *what, long rc)
{
	fprintf(stderr, "demo: %s: %s (%s)\n", what, vems_errormsg(),
		vems_strerror((int)rc));
	return -1;
}

/* splitmix64: the content generator and the random offsets */
static uint64_t
mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static uint64_t
rnd(struct demo *d, uint64_t n)
{
	d->rng = mix(d->rng);
	return n ? d->rng % n : 0;
}

/* Fills p with bytes [off, off + len) of object o in generation gen. */
static void
fill(unsigned char *p, size_t len, uint32_t o, uint32_t gen, uint64_t off)
{
	uint64_t seed = (uint64_t)o << 32 | gen, w = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t pos = off + i;

		if (i == 0 || pos % 8 == 0)
			w = mix(seed ^ mix(pos / 8));
		p[i] = (unsigned char)(w >> (8 * (pos % 8)));
	}
}

/* What bytes [off, off + len) of object o must hold now. */
static void
expected(const struct demo *d, unsigned char *p, size_t len, uint32_t o,
	 uint64_t off)
{
	const struct demo_obj *ob = &d->objs[o];
	uint64_t a, b;

	fill(p, len, o, 0, off);
	a = ob->ov_off > off ? ob->ov_off : off;
	b = ob->ov_off + ob->ov_len < off + len ? ob->ov_off + ob->ov_len
						: off + len;
	if (ob->ov_len && a < b)
		fill(p + (a - off), (size_t)(b - a), o, 1, a);
}

/* Reads [off, off + len) of object o and compares every byte. */
static int
read_verify(struct demo *d, struct vems_obj *obj, uint32_t o, uint64_t off,
	    size_t len)
{
	uint64_t want = off >= d->obj_size ? 0
		: d->obj_size - off < len  ? d->obj_size - off
					   : len;
	ssize_t n;
	size_t i;

	n = vems_obj_pread(obj, d->buf, len, off);
	if (n < 0)
		return fail("vems_obj_pread", n);
	if ((uint64_t)n != want) {
		fprintf(stderr,
			"demo: object %u: read of %zu bytes at %" PRIu64
			" returned %zd, expected %" PRIu64 "\n",
			o, len, off, n, want);
		d->mismatches++;
		return -1;
	}
	expected(d, d->expect, (size_t)n, o, off);
	if (memcmp(d->buf, d->expect, (size_t)n) == 0)
		return 0;
	for (i = 0; d->buf[i] == d->expect[i]; i++)
		;
	fprintf(stderr,
		"demo: MISMATCH in object %u at byte %" PRIu64
		": read 0x%02x, expected 0x%02x\n",
		o, off + i, d->buf[i], d->expect[i]);
	d->mismatches++;
	return -1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
report(const char *phase, uint64_t bytes, double t0)
{
	double s = now_s() - t0;

	printf("  %-28s %8.1f MiB in %6.2f s (%.0f MiB/s)\n", phase,
	       (double)bytes / (1 << 20), s,
	       s > 0 ? (double)bytes / (1 << 20) / s : 0.0);
}

static int
open_obj(struct demo *d, uint32_t o, unsigned flags, struct vems_obj **obj)
{
	int rc = vems_obj_open(d->pool, d->objs[o].oid, flags, obj);

	return rc ? fail("vems_obj_open", rc) : 0;
}

/* Writes bytes [off, off + len) of object o, generation gen. */
static int
write_range(struct demo *d, struct vems_obj *obj, uint32_t o, uint32_t gen,
	    uint64_t off, uint64_t len)
{
	size_t n;
	ssize_t w;

	while (len) {
		n = len < CHUNK ? (size_t)len : CHUNK;
		fill(d->buf, n, o, gen, off);
		w = vems_obj_pwrite(obj, d->buf, n, off, 0);
		if (w != (ssize_t)n)
			return fail("vems_obj_pwrite", w < 0 ? w : -EIO);
		off += n;
		len -= n;
	}
	return 0;
}

/* Phase 1: every object created, named and written end to end. */
static int
write_all(struct demo *d)
{
	struct vems_obj *obj = NULL;
	char name[64];
	double t0 = now_s();
	uint32_t o;
	int rc;

	for (o = 0; o < d->nobjs; o++) {
		d->objs[o].oid.partition = 0;
		d->objs[o].oid.id = 0;
		rc = vems_obj_create(d->pool, &d->objs[o].oid);
		if (rc)
			return fail("vems_obj_create", rc);
		snprintf(name, sizeof(name), "demo/object-%05u", o);
		rc = vems_name_bind(d->pool, name, d->objs[o].oid);
		if (rc)
			return fail("vems_name_bind", rc);
		if (open_obj(d, o, 0, &obj))
			return -1;
		rc = write_range(d, obj, o, 0, 0, d->obj_size);
		vems_obj_close(&obj);
		if (rc)
			return -1;
	}
	report("write", d->nobjs * d->obj_size, t0);
	return 0;
}

/* Reads every object end to end and verifies all of it. */
static int
verify_all(struct demo *d, const char *phase)
{
	struct vems_obj *obj = NULL;
	double t0 = now_s();
	uint64_t off;
	uint32_t o;
	int ret = 0;

	for (o = 0; o < d->nobjs; o++) {
		if (open_obj(d, o, VEMS_O_RDONLY, &obj))
			return -1;
		for (off = 0; off < d->obj_size; off += CHUNK)
			if (read_verify(d, obj, o, off, CHUNK))
				ret = -1;
		/* and past the end: nothing */
		if (read_verify(d, obj, o, d->obj_size, 1))
			ret = -1;
		vems_obj_close(&obj);
	}
	report(phase, d->nobjs * d->obj_size, t0);
	return ret;
}

/* Random objects, offsets and lengths (unaligned, crossing extents). */
static int
verify_random(struct demo *d, const char *phase)
{
	struct vems_obj *obj = NULL;
	double t0 = now_s();
	uint64_t bytes = 0, off;
	size_t len;
	uint32_t o;
	int i, ret = 0;

	for (i = 0; i < RANDOM_READS; i++) {
		o = (uint32_t)rnd(d, d->nobjs);
		off = rnd(d, d->obj_size);
		len = 1 + (size_t)rnd(d, RANDOM_READ_MAX);
		if (open_obj(d, o, VEMS_O_RDONLY, &obj))
			return -1;
		if (read_verify(d, obj, o, off, len))
			ret = -1;
		vems_obj_close(&obj);
		bytes += len;
	}
	report(phase, bytes, t0);
	return ret;
}

/*
 * Random 4 KiB reads through the asynchronous API, AIO_QD in flight: the
 * ones pmem serves complete inside vems_aio_submit, the ones in the block
 * file when reaped.
 */
static int
verify_async(struct demo *d, const char *phase)
{
	struct vems_aio_ctx *ctx;
	struct vems_obj **objs;
	struct vems_aio req[AIO_QD], *rp, *done[AIO_QD];
	unsigned char *bufs, *exp;
	double t0 = now_s();
	uint32_t o, submitted = 0, reaped = 0, sync_done = 0;
	int rc, ret = 0, i, k;

	rc = vems_aio_ctx_new(d->pool, AIO_QD, &ctx);
	if (rc)
		return fail("vems_aio_ctx_new", rc);
	objs = calloc(d->nobjs, sizeof(*objs));
	bufs = malloc((size_t)AIO_QD * AIO_LEN);
	exp = malloc(AIO_LEN);
	if (!objs || !bufs || !exp) {
		ret = fail("malloc", -ENOMEM);
		goto out;
	}
	for (o = 0; o < d->nobjs; o++)
		if (open_obj(d, o, VEMS_O_RDONLY, &objs[o])) {
			ret = -1;
			goto out;
		}
	for (i = 0; i < AIO_QD; i++)
		req[i].user_data = NULL; /* free slot */
	while (reaped < AIO_READS) {
		/* refill every free request slot, one submit each */
		for (i = 0; i < AIO_QD && submitted < AIO_READS; i++) {
			if (req[i].user_data)
				continue;
			o = (uint32_t)rnd(d, d->nobjs);
			req[i] = (struct vems_aio){
				.obj = objs[o],
				.op = VEMS_AIO_READ,
				.buf = bufs + (size_t)i * AIO_LEN,
				.len = AIO_LEN,
				.off = rnd(d, d->obj_size / AIO_LEN) * AIO_LEN,
				.user_data = &d->objs[o]};
			rp = &req[i];
			rc = vems_aio_submit(ctx, &rp, 1);
			if (rc != 1) {
				ret = fail("vems_aio_submit", rc);
				goto out;
			}
			submitted++;
			if (req[i].internal == NULL)
				sync_done++; /* served by pmem inside submit */
		}
		k = vems_aio_wait(ctx, done, 1, AIO_QD, -1);
		if (k < 0) {
			ret = fail("vems_aio_wait", k);
			goto out;
		}
		for (i = 0; i < k; i++) {
			struct vems_aio *r = done[i];
			o = (uint32_t)((struct demo_obj *)r->user_data -
				       d->objs);
			expected(d, exp, AIO_LEN, o, r->off);
			if (r->result != AIO_LEN ||
			    memcmp(r->buf, exp, AIO_LEN) != 0) {
				fprintf(stderr,
					"demo: async read of object %u at "
					"%" PRIu64 " returned %zd or wrong "
					"bytes\n",
					o, r->off, r->result);
				d->mismatches++;
				ret = -1;
			}
			r->user_data = NULL;
		}
		reaped += (uint32_t)k;
	}
	report(phase, (uint64_t)AIO_READS * AIO_LEN, t0);
	printf("  %-28s %u of %u served by pmem inside submit\n", "", sync_done,
	       AIO_READS);
out:
	vems_aio_ctx_delete(&ctx);
	if (objs)
		for (o = 0; o < d->nobjs; o++)
			vems_obj_close(&objs[o]);
	free(objs);
	free(bufs);
	free(exp);
	return ret;
}

/* Every third object gets an unaligned range rewritten (generation 1):
 * a partial write into an extent that may have been spilled. */
static int
overwrite_some(struct demo *d)
{
	struct vems_obj *obj = NULL;
	double t0 = now_s();
	uint64_t bytes = 0;
	uint32_t o;
	int rc;

	for (o = 0; o < d->nobjs; o += 3) {
		struct demo_obj *ob = &d->objs[o];

		ob->ov_off = rnd(d, d->obj_size);
		ob->ov_len = 1 + rnd(d, d->obj_size - ob->ov_off);
		if (ob->ov_len > CHUNK + 12345)
			ob->ov_len = CHUNK + 12345;
		if (open_obj(d, o, 0, &obj))
			return -1;
		rc = write_range(d, obj, o, 1, ob->ov_off, ob->ov_len);
		vems_obj_close(&obj);
		if (rc)
			return -1;
		bytes += ob->ov_len;
	}
	report("overwrite (partial)", bytes, t0);
	return 0;
}

static void
print_stats(struct vems_pool *pool)
{
	struct vems_pool_stats s;
	int rc = vems_pool_stats(pool, &s);

	if (rc) {
		fail("vems_pool_stats", rc);
		return;
	}
	printf("  objects %" PRIu64 ", names %" PRIu64 "\n", s.objects,
	       s.names);
	printf("  pmem:  %8.1f MiB used, %8.1f MiB free\n",
	       (double)s.pmem_bytes_used / (1 << 20),
	       (double)s.pmem_bytes_free / (1 << 20));
	printf("  block: %8.1f MiB used, %8.1f MiB free\n",
	       (double)s.block_bytes_used / (1 << 20),
	       (double)s.block_bytes_free / (1 << 20));
	printf("  extents: %" PRIu64 " only in pmem, %" PRIu64
	       " in both, %" PRIu64 " only in the block file\n",
	       s.extents_pmem, s.extents_both, s.extents_block);
	printf("  reads %" PRIu64 " (%" PRIu64 " bytes), writes %" PRIu64
	       " (%" PRIu64 " bytes)\n",
	       s.reads, s.bytes_read, s.writes, s.bytes_written);
	printf("  extent reads: %" PRIu64 " from pmem, %" PRIu64
	       " from the block file, %" PRIu64 " holes\n",
	       s.pmem_hits, s.block_hits, s.hole_reads);
	printf("  spills %" PRIu64 " (%" PRIu64 " bytes), promotions %" PRIu64
	       " (%" PRIu64 " bytes), clean drops %" PRIu64 "\n",
	       s.spills, s.bytes_spilled, s.promotions, s.bytes_promoted,
	       s.clean_drops);
	printf("  writers that spilled synchronously %" PRIu64
	       ", extents fetched back for writes %" PRIu64 "\n",
	       s.sync_spills, s.block_fetches);
	printf("  checksum failures %" PRIu64 ", block I/O errors %" PRIu64
	       ", io_uring max in flight %" PRIu64 "\n",
	       s.checksum_failures, s.block_errors, s.uring_max_inflight);
}

static int
create_pool(struct demo *d, const char *pmem, const char *blk,
	    uint64_t pmem_size, uint64_t block_size, unsigned block_io)
{
	struct vems_config *cfg = NULL;
	int rc;

	rc = vems_config_new(&cfg);
	if (rc)
		return fail("vems_config_new", rc);
	if ((rc = vems_config_set_pmem_size(cfg, pmem_size)) ||
	    (rc = vems_config_set_block_path(cfg, blk)) ||
	    (rc = vems_config_set_block_size(cfg, block_size)) ||
	    (rc = vems_config_set_block_io(cfg, block_io))) {
		vems_config_delete(&cfg);
		return fail("vems_config_set_*", rc);
	}
	rc = vems_pool_create(&d->pool, pmem, cfg);
	vems_config_delete(&cfg);
	return rc ? fail("vems_pool_create", rc) : 0;
}

static void
check_report(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "demo: check: %s\n", msg);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define LAT_N 400

/*
 * What the library is for, in one line: the median durable 4 KiB write
 * (vems_obj_pwrite, durable on return) against pwrite + fdatasync of a
 * file on the block file's disk, both overwriting 4 KiB in place.
 */
static int
durable_write_line(struct demo *d)
{
	static double t[LAT_N];
	static unsigned char page[VEMS_PAGE_SIZE];
	struct vems_oid oid = {0, 0};
	struct vems_obj *obj = NULL;
	double v, f;
	int rc, fd, i;

	memset(page, 0x5a, sizeof(page));
	if ((rc = vems_obj_create(d->pool, &oid)) ||
	    (rc = vems_obj_open(d->pool, oid, 0, &obj)))
		return fail("vems_obj_create/open", rc);
	for (i = -10; i < LAT_N; i++) {
		double t0 = now_s();
		page[0] = (unsigned char)i;
		ssize_t n = vems_obj_pwrite(obj, page, sizeof(page), 0, 0);
		if (n != (ssize_t)sizeof(page)) {
			vems_obj_close(&obj);
			return fail("vems_obj_pwrite", n < 0 ? (int)n : -EIO);
		}
		if (i >= 0)
			t[i] = now_s() - t0;
	}
	qsort(t, LAT_N, sizeof(*t), cmp_double);
	v = t[LAT_N / 2];
	if ((rc = vems_obj_close(&obj)) || (rc = vems_obj_remove(d->pool, oid)))
		return fail("vems_obj_close/remove", rc);
	fd = open(d->disk_file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fail(d->disk_file, -errno);
	for (i = -10; i < LAT_N / 4; i++) {
		double t0 = now_s();
		page[0] = (unsigned char)i;
		if (pwrite(fd, page, sizeof(page), 0) !=
			    (ssize_t)sizeof(page) ||
		    fdatasync(fd) != 0) {
			rc = -errno;
			close(fd);
			unlink(d->disk_file);
			return fail("pwrite+fdatasync", rc);
		}
		if (i >= 0)
			t[i] = now_s() - t0;
	}
	close(fd);
	unlink(d->disk_file);
	qsort(t, LAT_N / 4, sizeof(*t), cmp_double);
	f = t[LAT_N / 8];
	printf("what it is for: a durable 4 KiB write takes %.2f us in the "
	       "pool, %.1f us as pwrite+fdatasync on the block file's disk "
	       "(%.0fx)\n",
	       v * 1e6, f * 1e6, f / v);
	return 0;
}

/* The whole demo on an open pool; working_set 0 means 4 x pmem capacity. */
static int
run(struct demo *d, const char *pmem, uint64_t working_set, unsigned block_io)
{
	struct vems_pool_info in;
	int rc, ret = 0;

	rc = vems_pool_info(d->pool, &in);
	if (rc)
		return fail("vems_pool_info", rc);
	if (!working_set)
		working_set = in.pmem_extents * in.extent_size * 4;
	d->obj_size = working_set / 16 < OBJ_SIZE_MAX ? working_set / 16
						      : OBJ_SIZE_MAX;
	d->obj_size -= d->obj_size % VEMS_PAGE_SIZE;
	if (d->obj_size < VEMS_PAGE_SIZE)
		d->obj_size = VEMS_PAGE_SIZE;
	d->nobjs = (uint32_t)((working_set + d->obj_size - 1) / d->obj_size);
	d->objs = calloc(d->nobjs, sizeof(*d->objs));
	if (!d->objs)
		return fail("calloc", -ENOMEM);

	printf("pool %s: pmem %.1f MiB holding %.1f MiB of data (%s), "
	       "block file %.1f MiB (%s)\n",
	       pmem, (double)in.pmem_size / (1 << 20),
	       (double)(in.pmem_extents * in.extent_size) / (1 << 20),
	       in.is_pmem ? "flushed with cache instructions" : "msync",
	       (double)in.block_size / (1 << 20), in.block_io);
	printf("working set: %u objects of %.2f MiB = %.1f MiB (%.1fx the "
	       "pmem data capacity)\n",
	       d->nobjs, (double)d->obj_size / (1 << 20),
	       (double)(d->nobjs * d->obj_size) / (1 << 20),
	       (double)(d->nobjs * d->obj_size) /
		       (double)(in.pmem_extents * in.extent_size));

	if (durable_write_line(d))
		return -1;
	if (write_all(d))
		return -1;
	if (verify_all(d, "read + verify, sequential"))
		ret = -1;
	if (verify_random(d, "read + verify, random"))
		ret = -1;
	if (verify_async(d, "async read + verify, QD32"))
		ret = -1;
	if (overwrite_some(d))
		return -1;
	if (verify_all(d, "read + verify after overwrite"))
		ret = -1;
	printf("statistics of this session:\n");
	print_stats(d->pool);

	rc = vems_pool_close(&d->pool);
	if (rc)
		return fail("vems_pool_close", rc);
	struct vems_config *cfg = NULL;
	if ((rc = vems_config_new(&cfg)) == 0 &&
	    (rc = vems_config_set_block_io(cfg, block_io)) == 0)
		rc = vems_pool_open(&d->pool, pmem, cfg);
	vems_config_delete(&cfg);
	if (rc)
		return fail("vems_pool_open", rc);
	printf("closed and reopened the pool\n");
	if (verify_all(d, "read + verify after reopen"))
		ret = -1;
	if (verify_random(d, "read + verify, random"))
		ret = -1;
	double t0 = now_s();
	rc = vems_pool_check(d->pool, check_report, NULL);
	if (rc != 0) {
		fprintf(stderr, "demo: check found %d problem(s)\n", rc);
		ret = -1;
	} else {
		report("check (reads every slot)", d->nobjs * d->obj_size, t0);
	}
	return ret;
}

/* "64M" style sizes: a number with an optional K, M, G or T suffix. */
static int
parse_size(const char *s, uint64_t *out)
{
	const char *units = "KMGT", *u;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		u = strchr(units, *end & ~0x20);
		if (!u || end[1])
			return -1;
		if (*out > (UINT64_MAX >> (10 * (u - units + 1))))
			return -1;
		*out <<= 10 * (u - units + 1);
	}
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: demo [--pmem-size SIZE] [--working-set SIZE] "
		"[--dir DIR]\n"
		"            [--block-dir DIR] [--block-io MODE]\n\n"
		"Writes a working set of objects to a new pool, then reads "
		"every byte\nback and verifies it (sequentially, at random, "
		"after partial overwrites\nand after reopening the pool), "
		"and prints statistics. Exits 1 on any\nmismatch or error."
		"\n\n"
		"  --pmem-size SIZE    pmem file size (default 64M, at least "
		"16M)\n"
		"  --working-set SIZE  bytes of objects to write (default: "
		"4 times the\n"
		"                      pool's pmem data capacity)\n"
		"  --dir DIR           directory for the pmem file (default: "
		"a new\n"
		"                      directory under /dev/shm, removed "
		"after)\n"
		"  --block-dir DIR     directory for the block file (default: "
		"a new\n"
		"                      directory under /var/tmp, on disk, "
		"removed after)\n"
		"  --block-io MODE     fdatasync (default: O_DIRECT where "
		"possible, one\n"
		"                      fdatasync per spill batch), dsync "
		"(RWF_DSYNC\n"
		"                      writes) or buffered (no O_DIRECT)\n"
		"  -h, --help          show this help\n"
		"SIZE: bytes or a number with K, M, G or T (powers of "
		"1024).\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"pmem-size", required_argument, NULL, 'p'},
		{"working-set", required_argument, NULL, 'w'},
		{"dir", required_argument, NULL, 'd'},
		{"block-dir", required_argument, NULL, 'b'},
		{"block-io", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t pmem_size = UINT64_C(64) << 20, ws = 0, block_size;
	char tmpl[64], btmpl[64], pmem[4096], blk[4096], lat[4096];
	struct demo d = {.rng = 42};
	const char *dir = NULL, *bdir = NULL;
	unsigned block_io = 0;
	int c, ret = 1;

	/* progress lines and errors in their order, also in a log file */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'w':
			if (parse_size(optarg, c == 'p' ? &pmem_size : &ws)) {
				fprintf(stderr, "demo: invalid size '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'd':
			dir = optarg;
			break;
		case 'b':
			bdir = optarg;
			break;
		case 'i':
			if (!strcmp(optarg, "fdatasync")) {
				block_io = 0;
			} else if (!strcmp(optarg, "dsync")) {
				block_io = VEMS_BLOCK_DSYNC;
			} else if (!strcmp(optarg, "buffered")) {
				block_io = VEMS_BLOCK_BUFFERED;
			} else {
				fprintf(stderr,
					"demo: --block-io: fdatasync, dsync "
					"or buffered, not '%s'\n",
					optarg);
				return 2;
			}
			break;
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
	if (!dir) {
		snprintf(tmpl, sizeof(tmpl), "%s/vems-demo.XXXXXX",
			 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
		dir = mkdtemp(tmpl);
		if (!dir) {
			perror("demo: mkdtemp");
			return 1;
		}
	}
	if (!bdir) {
		snprintf(btmpl, sizeof(btmpl), "%s/vems-demo.XXXXXX",
			 access("/var/tmp", W_OK) ? "/tmp" : "/var/tmp");
		bdir = mkdtemp(btmpl);
		if (!bdir) {
			perror("demo: mkdtemp");
			if (dir == tmpl)
				rmdir(dir);
			return 1;
		}
	}
	snprintf(pmem, sizeof(pmem), "%s/demo.pool", dir);
	snprintf(blk, sizeof(blk), "%s/demo.blk", bdir);
	snprintf(lat, sizeof(lat), "%s/demo.pwrite", bdir);
	d.disk_file = lat;
	/* room for the whole working set in the block file, twice over */
	block_size = 8 * pmem_size > 2 * ws ? 8 * pmem_size : 2 * ws;
	block_size =
		(block_size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);

	/* every read is at most CHUNK bytes (RANDOM_READ_MAX is less) */
	d.buf = malloc(CHUNK);
	d.expect = malloc(CHUNK);
	if (d.buf && d.expect &&
	    !create_pool(&d, pmem, blk, pmem_size, block_size, block_io))
		ret = run(&d, pmem, ws, block_io) ? 1 : 0;
	if (d.pool) {
		printf("final state:\n");
		print_stats(d.pool);
		if (vems_pool_close(&d.pool))
			ret = 1;
	}
	if (d.mismatches)
		fprintf(stderr, "demo: %" PRIu64 " read(s) did not match\n",
			d.mismatches);
	printf("%s\n", ret ? "demo: FAILED" : "demo: all data verified");
	unlink(pmem);
	unlink(blk);
	if (dir == tmpl)
		rmdir(dir);
	if (bdir == btmpl)
		rmdir(bdir);
	free(d.objs);
	free(d.buf);
	free(d.expect);
	return ret;
}
