/* SPDX-License-Identifier: BSD-3-Clause */
/* name_store.c -- files stored as named objects, listed and read back */

/*
 * Usage: name_store [--dir DIR] FILE...
 *
 * Creates a pool in DIR (default: a new directory under /dev/shm), stores
 * each FILE as an object bound to the name FILE (as given on the command
 * line), lists the names with their sizes, reads the first one back and
 * compares it byte for byte with the file on disk. Exits 1 on any error or
 * difference. The pool's files are removed at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vems.h>

#define BUF_SIZE ((size_t)1 << 20)

static int
fail(const char *what, long rc)
{
	fprintf(stderr, "name_store: %s: %s (%s)\n", what, vems_errormsg(),
		vems_strerror((int)rc));
	return 1;
}

/* Copies the file at path into a new object and binds path to it. */
static int
store(struct vems_pool *pool, const char *path, char *buf)
{
	struct vems_oid oid = {0, 0};
	struct vems_obj *obj = NULL;
	uint64_t off = 0;
	ssize_t n, w;
	int fd, rc, ret = 1;

	fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "name_store: %s: %s\n", path, strerror(errno));
		return 1;
	}
	rc = vems_obj_create(pool, &oid);
	if (rc) {
		fail("vems_obj_create", rc);
		goto out;
	}
	rc = vems_obj_open(pool, oid, 0, &obj);
	if (rc) {
		fail("vems_obj_open", rc);
		goto out;
	}
	while ((n = read(fd, buf, BUF_SIZE)) > 0) {
		/* defer the fence; vems_obj_persist below is the barrier */
		w = vems_obj_pwrite(obj, buf, (size_t)n, off, VEMS_W_NODRAIN);
		if (w != n) {
			fail("vems_obj_pwrite", w < 0 ? w : -EIO);
			goto out;
		}
		off += (uint64_t)n;
	}
	if (n < 0) {
		fprintf(stderr, "name_store: %s: %s\n", path, strerror(errno));
		goto out;
	}
	rc = vems_obj_persist(obj);
	if (rc) {
		fail("vems_obj_persist", rc);
		goto out;
	}
	/* the name is bound only once the data is durable */
	rc = vems_name_bind(pool, path, oid);
	if (rc) {
		fail("vems_name_bind", rc);
		goto out;
	}
	ret = 0;
out:
	vems_obj_close(&obj);
	close(fd);
	return ret;
}

static int
print_name(const char *name, const struct vems_oid *oid, void *arg)
{
	struct vems_pool *pool = arg;
	struct vems_obj_stat st;

	if (vems_obj_stat_oid(pool, *oid, &st))
		st.size = 0;
	printf("  %-40s %" PRIu64 ":%" PRIu64 " %12" PRIu64 " bytes\n", name,
	       oid->partition, oid->id, st.size);
	return 0;
}

/* Reads the object named path and compares it with the file itself. */
static int
compare(struct vems_pool *pool, const char *path, char *buf, char *fbuf)
{
	struct vems_obj *obj = NULL;
	struct vems_oid oid;
	uint64_t off = 0;
	ssize_t n, m;
	int fd, rc, ret = 1;

	rc = vems_name_lookup(pool, path, &oid);
	if (rc)
		return fail("vems_name_lookup", rc);
	rc = vems_obj_open(pool, oid, VEMS_O_RDONLY, &obj);
	if (rc)
		return fail("vems_obj_open", rc);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "name_store: %s: %s\n", path, strerror(errno));
		vems_obj_close(&obj);
		return 1;
	}
	for (;;) {
		n = vems_obj_pread(obj, buf, BUF_SIZE, off);
		if (n < 0) {
			fail("vems_obj_pread", n);
			break;
		}
		m = pread(fd, fbuf, BUF_SIZE, (off_t)off);
		if (m != n || memcmp(buf, fbuf, (size_t)n)) {
			fprintf(stderr,
				"name_store: %s differs from its object "
				"in the 1 MiB at offset %" PRIu64 "\n",
				path, off);
			break;
		}
		if (n == 0) {
			printf("read back %s: %" PRIu64 " bytes, identical\n",
			       path, off);
			ret = 0;
			break;
		}
		off += (uint64_t)n;
	}
	close(fd);
	vems_obj_close(&obj);
	return ret;
}

/* Sizes the pool for the files: 64 MiB of pmem, a block file for twice all
 * of them (and at least the library's default of 8 x pmem). */
static int
make_pool(struct vems_pool **pool, const char *pmem, const char *blk,
	  char **files, int nfiles)
{
	struct vems_config *cfg = NULL;
	uint64_t total = 0, pmem_size = 64u << 20, block_size;
	struct stat sb;
	int i, rc;

	for (i = 0; i < nfiles; i++)
		if (stat(files[i], &sb) == 0)
			total += (uint64_t)sb.st_size;
	block_size = 2 * total + (64u << 20);
	if (block_size < 8 * pmem_size)
		block_size = 8 * pmem_size;
	rc = vems_config_new(&cfg);
	if (rc)
		return fail("vems_config_new", rc);
	if ((rc = vems_config_set_pmem_size(cfg, pmem_size)) ||
	    (rc = vems_config_set_block_path(cfg, blk)) ||
	    (rc = vems_config_set_block_size(cfg, block_size))) {
		vems_config_delete(&cfg);
		return fail("vems_config_set_*", rc);
	}
	rc = vems_pool_create(pool, pmem, cfg);
	vems_config_delete(&cfg);
	if (rc)
		return fail("vems_pool_create", rc);
	return 0;
}

int
main(int argc, char **argv)
{
	char tmpl[64], pmem[4096], blk[4096];
	struct vems_pool *pool = NULL;
	char *buf = NULL, *fbuf = NULL;
	const char *dir = NULL;
	int i, first = 1, ret = 1;

	if (argc > 2 && !strcmp(argv[1], "--dir")) {
		dir = argv[2];
		first = 3;
	}
	if (first >= argc || argv[first][0] == '-') {
		fprintf(stderr, "usage: name_store [--dir DIR] FILE...\n");
		return 2;
	}
	if (!dir) {
		snprintf(tmpl, sizeof(tmpl), "%s/name_store.XXXXXX",
			 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
		dir = mkdtemp(tmpl);
		if (!dir) {
			perror("name_store: mkdtemp");
			return 1;
		}
	}
	snprintf(pmem, sizeof(pmem), "%s/name_store.pool", dir);
	snprintf(blk, sizeof(blk), "%s/name_store.blk", dir);
	buf = malloc(BUF_SIZE);
	fbuf = malloc(BUF_SIZE);
	if (!buf || !fbuf ||
	    make_pool(&pool, pmem, blk, argv + first, argc - first))
		goto out;

	for (i = first; i < argc; i++) {
		if (store(pool, argv[i], buf))
			goto out;
		printf("stored %s\n", argv[i]);
	}
	printf("names in the pool:\n");
	if (vems_name_list(pool, NULL, print_name, pool) < 0)
		goto out;
	ret = compare(pool, argv[first], buf, fbuf);
out:
	i = vems_pool_close(&pool);
	if (i && ret == 0)
		ret = fail("vems_pool_close", i);
	unlink(pmem);
	unlink(blk);
	if (first == 1)
		rmdir(dir);
	free(buf);
	free(fbuf);
	return ret;
}
