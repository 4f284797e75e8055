/* SPDX-License-Identifier: BSD-3-Clause */
/* testutil.h -- helpers shared by the CMocka suites */
#ifndef VEMS_TESTUTIL_H
#define VEMS_TESTUTIL_H 1

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vems.h"

/* Fails the test with vems_errormsg() if expr is negative. */
#define TU_OK(expr)                                                            \
	do {                                                                   \
		long long tu_r_ = (long long)(expr);                           \
		if (tu_r_ < 0)                                                 \
			fail_msg("%s = %lld (%s): %s", #expr, tu_r_,           \
				 vems_strerror((int)tu_r_), vems_errormsg());  \
	} while (0)

struct tu_pool {
	char pmem[512];
	char block[512];
	struct vems_pool *pool;
};

/* Directory for pool files: $VEMS_TEST_DIR, else /dev/shm, else /tmp. */
const char *tu_dir(void);
/* Fresh, unused paths for a pool's two files (nothing created). */
void tu_paths(struct tu_pool *tp, const char *tag);
/* Creates a pool (paths from tu_paths) with the given sizes. */
void tu_create(struct tu_pool *tp, const char *tag, uint64_t pmem_size,
	       uint64_t block_size, uint64_t extent_size);
void tu_reopen(struct tu_pool *tp);
/* Closes (if open) and removes both files. */
void tu_destroy(struct tu_pool *tp);

/* Deterministic content: byte at object offset off for a given seed. */
void tu_fill(void *buf, size_t len, uint64_t seed, uint64_t off);
/* 1 if buf holds exactly tu_fill's bytes, else 0 (and reports where). */
int tu_verify(const void *buf, size_t len, uint64_t seed, uint64_t off);
uint64_t tu_rand(uint64_t *state);
/* SHA-less digest of a whole file, to prove it was not modified. */
uint64_t tu_file_digest(const char *path);

/*
 * One figure of the crash and fault harness, appended as a line
 * "<suite> <key> <value>" to $VEMS_HARNESS_LOG when that is set (CI sums
 * the lines of a whole run: scripts/harness-figures.sh). Appends are one
 * write(2) each on an O_APPEND file: tests running in parallel may share it.
 */
void tu_figure(const char *suite, const char *key, unsigned long long value);

#endif
