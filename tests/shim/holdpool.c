/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * holdpool.c -- holds a pool open through libvems until its stdin closes:
 * the other owner that unit.sh makes the shim wait for (VEMS_LOCK_TIMEOUT).
 * Prints "ready PID" once it holds the pool.
 */
#include <stdio.h>
#include <unistd.h>

#include "vems.h"

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: holdpool POOL\n");
		return 2;
	}
	struct vems_pool *p;
	if (vems_pool_open(&p, argv[1], NULL) != 0) {
		fprintf(stderr, "holdpool: %s\n", vems_errormsg());
		return 1;
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
	return vems_pool_close(&p) == 0 ? 0 : 1;
}
