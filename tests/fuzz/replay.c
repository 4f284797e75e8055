/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * replay.c -- runs a fuzz target's inputs once each, without libFuzzer
 *
 * Linked with a target instead of libFuzzer's main, so that the committed
 * corpus replays as a plain regression test in any build (gcc, no
 * sanitizer): `fuzz_replay_X FILE|DIR...`. Exits non-zero if an input
 * crashes (the target aborts) or cannot be read.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	printf("replay: %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	LLVMFuzzerInitialize(&argc, &argv);
	int n = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]))
				return 1;
			n++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (d == NULL) {
			perror(argv[i]);
			return 1;
		}
		char **names = NULL;
		size_t cnt = 0;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			names = realloc(names, (cnt + 1) * sizeof(*names));
			size_t l = strlen(argv[i]) + strlen(e->d_name) + 2;
			names[cnt] = malloc(l);
			snprintf(names[cnt++], l, "%s/%s", argv[i], e->d_name);
		}
		closedir(d);
		qsort(names, cnt, sizeof(*names), cmp);
		for (size_t j = 0; j < cnt; j++) {
			if (run_file(names[j]))
				return 1;
			free(names[j]);
			n++;
		}
		free(names);
	}
	printf("replay: %d inputs, no failure\n", n);
	return 0;
}
