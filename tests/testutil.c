/* SPDX-License-Identifier: BSD-3-Clause */
/* testutil.c -- helpers shared by the CMocka suites */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

const char *
tu_dir(void)
{
	const char *d = getenv("VEMS_TEST_DIR");
	if (d && *d)
		return d;
	return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

void
tu_paths(struct tu_pool *tp, const char *tag)
{
	static int seq;
	memset(tp, 0, sizeof(*tp));
	snprintf(tp->pmem, sizeof(tp->pmem), "%s/vemstest-%s-%d-%d.pool",
		 tu_dir(), tag, (int)getpid(), seq);
	snprintf(tp->block, sizeof(tp->block), "%s/vemstest-%s-%d-%d.blk",
		 tu_dir(), tag, (int)getpid(), seq);
	seq++;
	unlink(tp->pmem);
	unlink(tp->block);
}

void
tu_create(struct tu_pool *tp, const char *tag, uint64_t pmem_size,
	  uint64_t block_size, uint64_t extent_size)
{
	struct vems_config *cfg;
	tu_paths(tp, tag);
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, pmem_size));
	TU_OK(vems_config_set_block_path(cfg, tp->block));
	if (extent_size)
		TU_OK(vems_config_set_extent_size(cfg, extent_size));
	TU_OK(vems_config_set_block_size(cfg, block_size));
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
}

void
tu_reopen(struct tu_pool *tp)
{
	TU_OK(vems_pool_close(&tp->pool));
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
}

void
tu_destroy(struct tu_pool *tp)
{
	vems_pool_close(&tp->pool);
	unlink(tp->pmem);
	unlink(tp->block);
}

static inline uint8_t
byte_at(uint64_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ULL ^ seed;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 32;
	return (uint8_t)(x >> ((off & 7) * 8));
}

void
tu_fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		b[i] = byte_at(seed, off + i);
}

int
tu_verify(const void *buf, size_t len, uint64_t seed, uint64_t off)
{
	const uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		if (b[i] != byte_at(seed, off + i)) {
			print_error("mismatch at offset %llu: got %#x want "
				    "%#x (seed %llu)\n",
				    (unsigned long long)(off + i), b[i],
				    byte_at(seed, off + i),
				    (unsigned long long)seed);
			return 0;
		}
	return 1;
}

uint64_t
tu_rand(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s ? *s : 0x2545F4914F6CDD1DULL;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

uint64_t
tu_file_digest(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	uint64_t h = 0xcbf29ce484222325ULL;
	static uint8_t buf[1 << 16];
	ssize_t n;
	uint64_t total = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			h ^= buf[i];
			h *= 0x100000001b3ULL;
		}
		total += (uint64_t)n;
	}
	close(fd);
	return h ^ total;
}

void
tu_figure(const char *suite, const char *key, unsigned long long value)
{
	const char *path = getenv("VEMS_HARNESS_LOG");
	if (path == NULL || *path == '\0')
		return;
	char line[256];
	int n = snprintf(line, sizeof(line), "%s %s %llu\n", suite, key, value);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || n <= 0 || (size_t)n >= sizeof(line) ||
	    write(fd, line, (size_t)n) != n)
		fail_msg("VEMS_HARNESS_LOG %s: cannot append", path);
	close(fd);
}
