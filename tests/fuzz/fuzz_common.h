/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_common.h -- shared by the libFuzzer targets and their replay driver:
 * scratch directory, deterministic content, invariant failures, and the
 * fence counter that makes crash images.
 */
#ifndef VEMS_FUZZ_COMMON_H
#define VEMS_FUZZ_COMMON_H 1

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "vems.h"

/* An invariant of the target failed: say which, then abort (a crash). */
#define FZ_CHECK(cond, ...)                                                    \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz invariant failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, " [errormsg: %s]\n", vems_errormsg()); \
			abort();                                               \
		}                                                              \
	} while (0)

/* Set-up failed (not a finding): report and exit. */
#define FZ_SETUP(cond, ...)                                                    \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz setup failed: %s: ", #cond);     \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, " [errormsg: %s]\n", vems_errormsg()); \
			exit(2);                                               \
		}                                                              \
	} while (0)

/*
 * The scratch directory of this process: $VEMS_FUZZ_DIR if set, else a new
 * directory under /dev/shm (or /tmp); removed with its files at exit.
 */
const char *fz_dir(void);

/* Deterministic content: the byte at object offset off for a seed. */
uint8_t fz_byte(uint64_t seed, uint64_t off);
void fz_fill(void *buf, size_t len, uint64_t seed, uint64_t off);

/* A return value is "a clean error": a negative errno or a VEMS_E_* code. */
int fz_is_error_code(long long ret);

/*
 * Crash images: after fz_die_at_fence(k), the k-th fence (pmem_drain,
 * pmem_persist, pmem_msync, or a draining pmem_memcpy/memset) of this
 * process _exit()s before it is issued, leaving the files as a process
 * crash at that instant would. These calls are defined by this program and
 * exported, so libpmemobj's calls bind to them as libvems' do.
 */
void fz_die_at_fence(long k);
long fz_fences(void);

#endif
