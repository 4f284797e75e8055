/* SPDX-License-Identifier: BSD-3-Clause */
/* common.h -- helpers shared by the workloads (common.c) */
#ifndef VEMS_BENCH_COMMON_H
#define VEMS_BENCH_COMMON_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vems.h>

#include "bench.h"

struct vpool {
	struct vems_pool *pool;
	char pmem[4096], blk[4096];
	uint64_t capacity; /* pmem data capacity, bytes */
	uint64_t extent;
};
void vp_create(struct bench *b, struct vpool *vp, uint64_t pmem_size,
	       uint64_t block_size, uint64_t extent, unsigned low_wm,
	       unsigned block_flags);
void vp_destroy(struct vpool *vp);
/* A new object, its first `prefill` bytes written. */
struct vems_obj *vp_object(struct vpool *vp, uint64_t prefill);

/* The raw-pmem baseline: pmem_map_file of the same kind of file. */
struct rawpmem {
	char path[4096];
	void *addr;
	size_t len;
	int is_pmem;
};
void raw_map(struct bench *b, struct rawpmem *r, uint64_t size);
void raw_persist_copy(struct rawpmem *r, void *dst, const void *src, size_t n);
void raw_unmap(struct rawpmem *r);

/* An ordinary file in the disk directory, prefilled and synced. */
int file_open(struct bench *b, char *path, size_t len, uint64_t prefill,
	      bool direct);
double uring_run(int fd, bool write, const uint64_t *offs, size_t count,
		 size_t bs, unsigned qd, size_t sync_every, void *bufs);
long rss_anon_kib(void);

#endif /* VEMS_BENCH_COMMON_H */
