/* SPDX-License-Identifier: BSD-3-Clause */
/* block.c -- the block file: create, stamp, open and validate its header */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vems_internal.h"

static uint64_t
needed_size(uint64_t nslots, uint64_t extent_size)
{
	return VEMS_BLOCK_DATA_OFF + nslots * extent_size;
}

static int
dev_size(int fd, const struct stat *st, uint64_t *size)
{
	if (S_ISBLK(st->st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) != 0)
			return -errno;
		return 0;
	}
	*size = (uint64_t)st->st_size;
	return 0;
}

int
vems__block_create(const char *path, uint64_t nslots, uint64_t extent_size,
		   const uint8_t pool_uuid[16], const uint8_t block_uuid[16],
		   int *fdp)
{
	struct stat st;
	int fd;
	bool made = false;
	int ret;

	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		fd = open(path, O_RDWR | O_CLOEXEC);
	} else {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		made = fd >= 0;
	}
	if (fd < 0)
		return vems__fail(-errno, "cannot create block file %s: %s",
				  path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		ret = vems__fail(-errno, "fstat %s: %s", path, strerror(errno));
		goto fail;
	}
	uint64_t need = needed_size(nslots, extent_size);
	if (S_ISBLK(st.st_mode)) {
		uint64_t have;
		if ((ret = dev_size(fd, &st, &have)) != 0) {
			vems__fail(ret, "cannot size block device %s", path);
			goto fail;
		}
		if (have < need) {
			ret = vems__fail(-ENOSPC,
					 "block device %s has %llu bytes, the "
					 "pool needs %llu",
					 path, (unsigned long long)have,
					 (unsigned long long)need);
			goto fail;
		}
	} else if (ftruncate(fd, (off_t)need) != 0) {
		ret = vems__fail(-errno,
				 "cannot size block file %s to %llu: %s", path,
				 (unsigned long long)need, strerror(errno));
		goto fail;
	}

	static _Alignas(4096) uint8_t page[VEMS_BLOCK_DATA_OFF];
	struct vems_block_hdr *h = (struct vems_block_hdr *)page;
	memset(page, 0, sizeof(page));
	memcpy(h->magic, VEMS_BLOCK_MAGIC, sizeof(h->magic));
	h->format = VEMS_FORMAT;
	h->hdr_size = sizeof(*h);
	memcpy(h->pool_uuid, pool_uuid, 16);
	memcpy(h->block_uuid, block_uuid, 16);
	h->extent_size = extent_size;
	h->nslots = nslots;
	h->data_off = VEMS_BLOCK_DATA_OFF;
	h->csum = vems__crc32c(h, offsetof(struct vems_block_hdr, csum));
	/* the header must be durable before the pool that names it is */
	if (pwrite(fd, page, sizeof(page), 0) != (ssize_t)sizeof(page) ||
	    fdatasync(fd) != 0) {
		ret = vems__fail(errno ? -errno : -EIO,
				 "cannot write block file header to %s: %s",
				 path, strerror(errno));
		goto fail;
	}
	*fdp = fd;
	return 0;
fail:
	close(fd);
	if (made)
		unlink(path);
	return ret;
}

/* Reads and checks the header; fills *h. */
static int
read_hdr(int fd, const char *path, struct vems_block_hdr *h)
{
	/* a whole aligned page: fd may be O_DIRECT once the pool is open */
	static _Thread_local _Alignas(4096) uint8_t page[VEMS_BLOCK_DATA_OFF];
	ssize_t n = pread(fd, page, sizeof(page), 0);
	if (n < 0)
		return vems__fail(-errno, "cannot read block file %s: %s", path,
				  strerror(errno));
	memcpy(h, page, (size_t)n < sizeof(*h) ? (size_t)n : sizeof(*h));
	if ((size_t)n < sizeof(*h) ||
	    memcmp(h->magic, VEMS_BLOCK_MAGIC, sizeof(h->magic)) != 0)
		return vems__fail(VEMS_E_MISMATCH,
				  "%s is not a libvems block file (no header)",
				  path);
	if (h->csum != vems__crc32c(h, offsetof(struct vems_block_hdr, csum)))
		return vems__fail(VEMS_E_CORRUPT,
				  "block file %s: header checksum mismatch",
				  path);
	if (h->format != VEMS_FORMAT)
		return vems__fail(VEMS_E_VERSION,
				  "block file %s has format %u, this library "
				  "reads %u",
				  path, h->format, VEMS_FORMAT);
	return 0;
}

static int
validate(int fd, const char *path, uint64_t nslots, uint64_t extent_size,
	 const uint8_t pool_uuid[16], const uint8_t block_uuid[16])
{
	struct vems_block_hdr h;
	int ret = read_hdr(fd, path, &h);
	if (ret)
		return ret;
	if (memcmp(h.pool_uuid, pool_uuid, 16) != 0 ||
	    memcmp(h.block_uuid, block_uuid, 16) != 0)
		return vems__fail(VEMS_E_MISMATCH,
				  "block file %s belongs to another pool "
				  "(UUID differs)",
				  path);
	if (h.nslots != nslots || h.extent_size != extent_size ||
	    h.data_off != VEMS_BLOCK_DATA_OFF)
		return vems__fail(VEMS_E_CORRUPT,
				  "block file %s: geometry %llu x %llu differs "
				  "from the pool's %llu x %llu",
				  path, (unsigned long long)h.nslots,
				  (unsigned long long)h.extent_size,
				  (unsigned long long)nslots,
				  (unsigned long long)extent_size);
	struct stat st;
	uint64_t have;
	if (fstat(fd, &st) != 0 || dev_size(fd, &st, &have) != 0)
		return vems__fail(-errno, "cannot size block file %s", path);
	if (have < needed_size(nslots, extent_size))
		return vems__fail(
			VEMS_E_CORRUPT,
			"block file %s is %llu bytes, the pool needs "
			"%llu: truncated?",
			path, (unsigned long long)have,
			(unsigned long long)needed_size(nslots, extent_size));
	return 0;
}

/*
 * Everything that can be checked of the block file from its own header,
 * before libpmemobj opens (and writes to) the pmem file: header, checksum,
 * format, the pool's UUID, and the size its geometry needs.
 */
int
vems__block_precheck(const char *path, const char *pool_path,
		     const uint8_t pool_uuid[16])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vems__fail(-errno,
				  "cannot open block file %s of pool "
				  "%s: %s",
				  path, pool_path, strerror(errno));
	struct vems_block_hdr h;
	int ret = read_hdr(fd, path, &h);
	if (ret == 0 && memcmp(h.pool_uuid, pool_uuid, 16) != 0)
		ret = vems__fail(VEMS_E_MISMATCH,
				 "block file %s belongs to another pool, not "
				 "%s (UUID differs)",
				 path, pool_path);
	struct stat st;
	uint64_t have = 0;
	if (ret == 0 && (fstat(fd, &st) != 0 || dev_size(fd, &st, &have)))
		ret = vems__fail(-errno, "cannot size block file %s", path);
	if (ret == 0 &&
	    (h.extent_size == 0 || h.nslots > UINT32_MAX ||
	     have < h.data_off + h.nslots * h.extent_size))
		ret = vems__fail(
			VEMS_E_CORRUPT,
			"block file %s is %llu bytes, its header "
			"needs %llu: truncated?",
			path, (unsigned long long)have,
			(unsigned long long)(h.data_off +
					     h.nslots * h.extent_size));
	close(fd);
	return ret;
}

int
vems__block_open(const char *path, uint64_t nslots, uint64_t extent_size,
		 const uint8_t pool_uuid[16], const uint8_t block_uuid[16],
		 int *fdp)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vems__fail(-errno, "cannot open block file %s: %s", path,
				  strerror(errno));
	int ret =
		validate(fd, path, nslots, extent_size, pool_uuid, block_uuid);
	if (ret) {
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

int
vems__block_check(struct vems_pool *p, vems_report_fn report, void *arg)
{
	int ret = validate(p->block_fd, p->block_path, p->nslots,
			   p->extent_size, p->sb->uuid, p->sb->block_uuid);
	if (ret == 0)
		return 0;
	if (report)
		report(vems_errormsg(), arg);
	return 1;
}
