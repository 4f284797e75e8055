/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * common.c -- what the workloads share: vems pools, the raw-pmem mapping,
 * the ordinary file, and the block tier alone through io_uring
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>
#include <libpmem.h>
#include <vems.h>

#include "common.h"

void
vp_create(struct bench *b, struct vpool *vp, uint64_t pmem_size,
	  uint64_t block_size, uint64_t extent, unsigned low_wm,
	  unsigned block_flags)
{
	struct vems_config *cfg;
	memset(vp, 0, sizeof(*vp));
	bench_path(b, vp->pmem, sizeof(vp->pmem), b->pmem_dir, "pool");
	bench_path(b, vp->blk, sizeof(vp->blk), b->disk_dir, "blk");
	CHECK(vems_config_new(&cfg));
	CHECK(vems_config_set_pmem_size(cfg, pmem_size));
	CHECK(vems_config_set_block_path(cfg, vp->blk));
	CHECK(vems_config_set_block_size(cfg, block_size));
	if (extent)
		CHECK(vems_config_set_extent_size(cfg, extent));
	CHECK(vems_config_set_low_watermark(cfg, low_wm));
	CHECK(vems_config_set_block_io(cfg, block_flags));
	CHECK(vems_pool_create(&vp->pool, vp->pmem, cfg));
	vems_config_delete(&cfg);
	struct vems_pool_info in;
	CHECK(vems_pool_info(vp->pool, &in));
	vp->capacity = in.pmem_extents * in.extent_size;
	vp->extent = in.extent_size;
}

void
vp_destroy(struct vpool *vp)
{
	if (vp->pool)
		CHECK(vems_pool_close(&vp->pool));
	unlink(vp->pmem);
	unlink(vp->blk);
}

struct vems_obj *
vp_object(struct vpool *vp, uint64_t prefill)
{
	struct vems_oid oid = {1, 0};
	struct vems_obj *o;
	CHECK(vems_obj_create(vp->pool, &oid));
	CHECK(vems_obj_open(vp->pool, oid, 0, &o));
	if (prefill) {
		uint8_t *buf = malloc(MIB);
		memset(buf, 0xa5, MIB);
		for (uint64_t off = 0; off < prefill; off += MIB) {
			size_t n = prefill - off < MIB ? (size_t)(prefill - off)
						       : MIB;
			CHECK(vems_obj_pwrite(o, buf, n, off, 0));
		}
		free(buf);
	}
	return o;
}

void
raw_map(struct bench *b, struct rawpmem *r, uint64_t size)
{
	bench_path(b, r->path, sizeof(r->path), b->pmem_dir, "raw");
	r->addr = pmem_map_file(r->path, size, PMEM_FILE_CREATE, 0600, &r->len,
				&r->is_pmem);
	if (!r->addr)
		bench_die("pmem_map_file %s: %s", r->path, pmem_errormsg());
	/* populate it, as a pool's frames are after their first write */
	pmem_memset_persist(r->addr, 0x5a, r->len);
}

void
raw_persist_copy(struct rawpmem *r, void *dst, const void *src, size_t n)
{
	/* the physical limit: one copy and one barrier, as libpmem does it */
	if (r->is_pmem) {
		pmem_memcpy_persist(dst, src, n);
	} else {
		memcpy(dst, src, n);
		if (pmem_msync(dst, n))
			bench_die("pmem_msync: %s", strerror(errno));
	}
}

void
raw_unmap(struct rawpmem *r)
{
	pmem_unmap(r->addr, r->len);
	unlink(r->path);
}

int
file_open(struct bench *b, char *path, size_t len, uint64_t prefill,
	  bool direct)
{
	bench_path(b, path, len, b->disk_dir, "file");
	int fd =
		open(path, O_RDWR | O_CREAT | O_TRUNC | (direct ? O_DIRECT : 0),
		     0600);
	if (fd < 0)
		bench_die("open %s: %s", path, strerror(errno));
	if (prefill) {
		uint8_t *buf = aligned_alloc(4096, MIB);
		memset(buf, 0x3c, MIB);
		for (uint64_t off = 0; off < prefill; off += MIB)
			if (pwrite(fd, buf, MIB, (off_t)off) != (ssize_t)MIB)
				bench_die("pwrite %s: %s", path,
					  strerror(errno));
		if (fdatasync(fd))
			bench_die("fdatasync: %s", strerror(errno));
		free(buf);
	}
	return fd;
}

/*
 * The block tier alone: `count` transfers of `bs` bytes at `offs`,
 * `qd` in flight, O_DIRECT, through io_uring; writes get one fdatasync
 * (IORING_OP_FSYNC) after every `sync_every`. Returns seconds.
 */
double
uring_run(int fd, bool write, const uint64_t *offs, size_t count, size_t bs,
	  unsigned qd, size_t sync_every, void *bufs)
{
	struct io_uring ring;
	if (io_uring_queue_init(qd + 1, &ring, 0) < 0)
		bench_die("io_uring_queue_init");
	double t0 = bench_now_ns();
	size_t next = 0, done = 0, since_sync = 0;
	unsigned inflight = 0;
	while (done < count) {
		while (inflight < qd && next < count &&
		       (!write || !sync_every || since_sync < sync_every)) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			void *buf = (uint8_t *)bufs + (size_t)inflight * bs;
			if (write)
				io_uring_prep_write(sqe, fd, buf, (unsigned)bs,
						    offs[next]);
			else
				io_uring_prep_read(sqe, fd, buf, (unsigned)bs,
						   offs[next]);
			next++;
			since_sync++;
			inflight++;
		}
		io_uring_submit(&ring);
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&ring, &cqe) < 0)
			bench_die("io_uring_wait_cqe");
		if (cqe->res != (int)bs)
			bench_die("block tier I/O: %d", cqe->res);
		io_uring_cqe_seen(&ring, cqe);
		inflight--;
		done++;
		if (write && sync_every && since_sync >= sync_every &&
		    inflight == 0) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
			io_uring_submit(&ring);
			if (io_uring_wait_cqe(&ring, &cqe) < 0 || cqe->res < 0)
				bench_die("fsync through io_uring");
			io_uring_cqe_seen(&ring, cqe);
			since_sync = 0;
		}
	}
	if (write && since_sync && fdatasync(fd))
		bench_die("fdatasync");
	double s = (bench_now_ns() - t0) / 1e9;
	io_uring_queue_exit(&ring);
	return s;
}

long
rss_anon_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}
