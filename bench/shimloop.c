/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shimloop.c -- vems-bench's helper for the shim workloads: N durable
 * 4 KiB writes (pwrite + fdatasync) to PATH with plain POSIX calls, run
 * with or without libvems_preload.so. Prints the median ns per write.
 * With --open-close: N times open(O_RDWR | O_CLOEXEC) and close of PATH
 * (made first), the median ns per pair.
 *
 * Usage: vems-bench-shimloop [--open-close] PATH N
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SPAN 256 /* the writes cycle over 256 pages (1 MiB), prefilled */

static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int
open_close(const char *path, long n, double *lat)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) != 0) {
		perror(path);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		double t0 = now_ns();
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0 || close(fd) != 0) {
			perror(path);
			return 1;
		}
		lat[i] = now_ns() - t0;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("%.1f\n", lat[n / 2]);
	unlink(path);
	return 0;
}

int
main(int argc, char **argv)
{
	bool oc = argc == 4 && !strcmp(argv[1], "--open-close");
	if (argc != 3 && !oc) {
		fprintf(stderr,
			"usage: vems-bench-shimloop [--open-close] PATH N\n");
		return 2;
	}
	argv += oc;
	long n = atol(argv[2]);
	if (n <= 0)
		return 2;
	if (oc) {
		double *l = malloc((size_t)n * sizeof(*l));
		return l ? open_close(argv[1], n, l) : 1;
	}
	int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	static char buf[4096];
	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; i < SPAN; i++)
		if (pwrite(fd, buf, sizeof(buf), (off_t)i * 4096) != 4096) {
			perror("prefill");
			return 1;
		}
	if (fdatasync(fd) != 0) {
		perror("fdatasync");
		return 1;
	}
	double *lat = malloc((size_t)n * sizeof(*lat));
	if (lat == NULL)
		return 1;
	for (long i = 0; i < n; i++) {
		buf[0] = (char)i;
		double t0 = now_ns();
		if (pwrite(fd, buf, sizeof(buf), (off_t)(i % SPAN) * 4096) !=
			    4096 ||
		    fdatasync(fd) != 0) {
			perror("write");
			return 1;
		}
		lat[i] = now_ns() - t0;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("%.1f\n", lat[n / 2]);
	close(fd);
	unlink(argv[1]);
	return 0;
}
