/* SPDX-License-Identifier: BSD-3-Clause */
/* fuzz_common.c -- scratch directory, content, fence counter */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <dlfcn.h>
#include <libpmem.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

static char dir[PATH_MAX];
static pid_t dir_owner;

static void
rm_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *e;
	char sub[PATH_MAX + 256];
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
				     e->d_name) < sizeof(sub))
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

static void
rm_dir(void)
{
	if (getpid() == dir_owner) /* not in a forked child */
		rm_tree(dir);
}

/*
 * A run that crashed (the point of fuzzing) never removed its directory,
 * ~100 MiB of tmpfs: remove those of processes that are gone.
 */
static void
rm_stale(const char *top)
{
	DIR *d = opendir(top);
	if (d == NULL)
		return;
	struct dirent *e;
	char path[PATH_MAX + 256];
	while ((e = readdir(d)) != NULL) {
		int pid;
		char end;
		if (sscanf(e->d_name, "vems-fuzz.%d%c", &pid, &end) != 1 ||
		    pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", top,
				     e->d_name) < sizeof(path))
			rm_tree(path);
	}
	closedir(d);
}

const char *
fz_dir(void)
{
	if (dir[0])
		return dir;
	const char *top = getenv("VEMS_FUZZ_DIR");
	if (top == NULL || *top == '\0')
		top = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	rm_stale(top);
	FZ_SETUP((size_t)snprintf(dir, sizeof(dir), "%s/vems-fuzz.%d", top,
				  (int)getpid()) < sizeof(dir),
		 "VEMS_FUZZ_DIR is too long");
	FZ_SETUP(mkdir(dir, 0700) == 0 || access(dir, W_OK) == 0,
		 "cannot make %s", dir);
	dir_owner = getpid();
	atexit(rm_dir);
	return dir;
}

uint8_t
fz_byte(uint64_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ULL ^ seed;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 32;
	return (uint8_t)(x >> ((off & 7) * 8));
}

void
fz_fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		b[i] = fz_byte(seed, off + i);
}

int
fz_is_error_code(long long ret)
{
	return (ret < 0 && ret >= -4095) ||
		(ret < VEMS_E_BASE && ret >= VEMS_E_LAST);
}

/* --- the fence counter ---------------------------------------------- */

static long fences, die_at;

void
fz_die_at_fence(long k)
{
	fences = 0;
	die_at = k;
}

long
fz_fences(void)
{
	return fences;
}

static void
fence(void)
{
	fences++;
	if (die_at && fences == die_at)
		_exit(0); /* before the fence: what is stored stays stored */
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

void
pmem_drain(void)
{
	static __typeof__(&pmem_drain) real;
	if (!real)
		real = REAL(pmem_drain);
	fence();
	real();
}

void
pmem_persist(const void *addr, size_t len)
{
	static __typeof__(&pmem_persist) real;
	if (!real)
		real = REAL(pmem_persist);
	fence();
	real(addr, len);
}

int
pmem_msync(const void *addr, size_t len)
{
	static __typeof__(&pmem_msync) real;
	if (!real)
		real = REAL(pmem_msync);
	fence();
	return real(addr, len);
}

void *
pmem_memcpy(void *dst, const void *src, size_t len, unsigned flags)
{
	static __typeof__(&pmem_memcpy) real;
	if (!real)
		real = REAL(pmem_memcpy);
	if (!(flags & PMEM_F_MEM_NODRAIN)) {
		/* the copy, then the fence we may die before */
		void *r = real(dst, src, len, flags | PMEM_F_MEM_NODRAIN);
		pmem_drain();
		return r;
	}
	return real(dst, src, len, flags);
}

void *
pmem_memset(void *dst, int c, size_t len, unsigned flags)
{
	static __typeof__(&pmem_memset) real;
	if (!real)
		real = REAL(pmem_memset);
	if (!(flags & PMEM_F_MEM_NODRAIN)) {
		void *r = real(dst, c, len, flags | PMEM_F_MEM_NODRAIN);
		pmem_drain();
		return r;
	}
	return real(dst, c, len, flags);
}

void *
pmem_memcpy_persist(void *dst, const void *src, size_t len)
{
	return pmem_memcpy(dst, src, len, 0);
}

void *
pmem_memset_persist(void *dst, int c, size_t len)
{
	return pmem_memset(dst, c, len, 0);
}
