/* SPDX-License-Identifier: BSD-3-Clause */
/* hello_object.c -- the smallest libvems program: one object, written, read */

/*
 * Usage: hello_object [DIR]
 *
 * Creates a pool in DIR (default: a new directory under /dev/shm, emulated
 * pmem), creates an object, writes a greeting into it, reads it back, closes
 * and reopens the pool to show that the data persisted, prints a few
 * statistics and removes everything it created.
 *
 * Build against an installed libvems:
 *   cc hello_object.c $(pkg-config --cflags --libs libvems) -o hello_object
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vems.h>

/* Prints what failed and the library's sentence about why. */
static int
fail(const char *what, long rc)
{
	fprintf(stderr, "hello_object: %s: %s (%s)\n", what, vems_errormsg(),
		vems_strerror((int)rc));
	return 1;
}

/* Writes the greeting into a new object; returns its ID in *oid. */
static int
write_greeting(struct vems_pool *pool, struct vems_oid *oid, const char *msg)
{
	struct vems_obj *obj = NULL;
	ssize_t n;
	int rc;

	/* id 0: the library picks a free ID in partition 0 */
	oid->partition = 0;
	oid->id = 0;
	rc = vems_obj_create(pool, oid);
	if (rc)
		return fail("vems_obj_create", rc);
	rc = vems_obj_open(pool, *oid, 0, &obj);
	if (rc)
		return fail("vems_obj_open", rc);
	/* durable when it returns: the data went to pmem and was flushed */
	n = vems_obj_pwrite(obj, msg, strlen(msg) + 1, 0, 0);
	if (n < 0) {
		fail("vems_obj_pwrite", n);
		vems_obj_close(&obj);
		return 1;
	}
	rc = vems_obj_close(&obj);
	if (rc)
		return fail("vems_obj_close", rc);
	return 0;
}

/* Reads the object back and compares it with what was written. */
static int
read_greeting(struct vems_pool *pool, struct vems_oid oid, const char *msg)
{
	struct vems_obj *obj = NULL;
	char buf[128] = "";
	ssize_t n;
	int rc;

	rc = vems_obj_open(pool, oid, VEMS_O_RDONLY, &obj);
	if (rc)
		return fail("vems_obj_open", rc);
	n = vems_obj_pread(obj, buf, sizeof(buf) - 1, 0);
	vems_obj_close(&obj);
	if (n < 0)
		return fail("vems_obj_pread", n);
	if ((size_t)n != strlen(msg) + 1 || strcmp(buf, msg)) {
		fprintf(stderr,
			"hello_object: read back %zd bytes '%s', "
			"expected '%s'\n",
			n, buf, msg);
		return 1;
	}
	printf("object %" PRIu64 ":%" PRIu64 " holds: %s\n", oid.partition,
	       oid.id, buf);
	return 0;
}

static int
hello(const char *pmem_path, const char *block_path)
{
	static const char msg[] = "Hello, persistent world!";
	struct vems_config *cfg = NULL;
	struct vems_pool *pool = NULL;
	struct vems_pool_stats st;
	struct vems_oid oid;
	int rc;

	/* the pool: 16 MiB of (emulated) pmem over a 64 MiB block file */
	rc = vems_config_new(&cfg);
	if (rc)
		return fail("vems_config_new", rc);
	if ((rc = vems_config_set_pmem_size(cfg, 16u << 20)) ||
	    (rc = vems_config_set_block_path(cfg, block_path)) ||
	    (rc = vems_config_set_block_size(cfg, 64u << 20))) {
		vems_config_delete(&cfg);
		return fail("vems_config_set_*", rc);
	}
	rc = vems_pool_create(&pool, pmem_path, cfg);
	vems_config_delete(&cfg);
	if (rc)
		return fail("vems_pool_create", rc);
	printf("created pool %s (block file %s)\n", pmem_path, block_path);

	if (write_greeting(pool, &oid, msg) || read_greeting(pool, oid, msg))
		goto err;

	/* close and reopen: what was written is still there */
	rc = vems_pool_close(&pool);
	if (rc)
		return fail("vems_pool_close", rc);
	rc = vems_pool_open(&pool, pmem_path, NULL);
	if (rc)
		return fail("vems_pool_open", rc);
	printf("reopened the pool\n");
	if (read_greeting(pool, oid, msg))
		goto err;

	rc = vems_pool_stats(pool, &st);
	if (rc) {
		fail("vems_pool_stats", rc);
		goto err;
	}
	printf("stats: %" PRIu64 " object(s), %" PRIu64 " bytes of pmem in "
	       "use, %" PRIu64 " free; %" PRIu64 " read(s), %" PRIu64
	       " bytes read\n",
	       st.objects, st.pmem_bytes_used, st.pmem_bytes_free, st.reads,
	       st.bytes_read);

	rc = vems_obj_remove(pool, oid);
	if (rc) {
		fail("vems_obj_remove", rc);
		goto err;
	}
	rc = vems_pool_close(&pool);
	if (rc)
		return fail("vems_pool_close", rc);
	return 0;
err:
	vems_pool_close(&pool);
	return 1;
}

int
main(int argc, char **argv)
{
	char tmpl[64], pmem_path[4096], block_path[4096];
	const char *dir;
	int ret;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: hello_object [DIR]\n");
		return 2;
	}
	if (argc == 2) {
		dir = argv[1];
	} else {
		/* tmpfs: emulated pmem; /tmp where there is none */
		snprintf(tmpl, sizeof(tmpl), "%s/hello_object.XXXXXX",
			 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
		dir = mkdtemp(tmpl);
		if (!dir) {
			perror("hello_object: mkdtemp");
			return 1;
		}
	}
	snprintf(pmem_path, sizeof(pmem_path), "%s/hello.pool", dir);
	snprintf(block_path, sizeof(block_path), "%s/hello.blk", dir);

	ret = hello(pmem_path, block_path);

	/* clean up: the pool's two files, and the directory if it is ours */
	unlink(pmem_path);
	unlink(block_path);
	if (argc < 2)
		rmdir(dir);
	if (ret == 0)
		printf("done\n");
	return ret;
}
