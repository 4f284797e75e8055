/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_pool_open.c -- libFuzzer target: open, check and read mutated pools
 *
 * A pool is at least 16 MiB, far too much for a fuzzer input, so the input
 * is a compact description of a damaged pool instead: which base image,
 * and a list of patches to apply to a scratch copy of it (see FORMAT
 * below). The base images are made by the library itself when the target
 * starts (LLVMFuzzerInitialize), so they follow the current on-media
 * format, and patch offsets are relative to anchors found in each image
 * (the superblock, the first object record, the entry table, ...), so that
 * the committed seed corpus keeps aiming at the same structures when the
 * format changes.
 *
 * Each run: restore the scratch copy of the chosen base (only the pages
 * that differ), apply the patches, vems_pool_open. Open must return 0 or a
 * clean error code (design rule 6 and 7); if it succeeds,
 * vems_pool_check, the objects' stats and bytes, and the names are read,
 * which must not crash, hang or leak. Where the outcome is known, it is
 * checked too:
 *  - a base image with no byte changed opens, and checks clean (for the
 *    crash images too: a process crash at any instant must reopen clean);
 *  - for the clean bases, if no byte of the pmem file or of the block
 *    file's header changed, every object reads back exactly what was
 *    written, or fails with an error (a damaged block slot must fail its
 *    CRC, never be returned as good).
 *
 * FORMAT (all integers little-endian):
 *   byte 0          base image: value % NBASE (0 small, 1 spilled, 2..4
 *                   crash images)
 *   then patches, each:
 *     byte op       bits 0-2 kind, bit 3 file (0 pmem, 1 block),
 *                   bits 4-7 anchor (ANCHOR_* below)
 *     i32 offset    relative to the anchor; the sum wraps modulo the
 *                   base file's size
 *     kind 0 SET    u8 n, then n bytes
 *     kind 1 FILL   u16 n, u8 value
 *     kind 2 XOR    u8 mask
 *     kind 3 SET64  u64 value
 *     kind 4 TRUNC  no payload: the file is truncated to the offset
 *     kind 5 ADD    u8 delta (added to the byte)
 *     kind 6 SET32  u32 value
 *     kind 7 ZERO   u16 n: n zero bytes
 *   A patch is clipped at the end of the file; an incomplete one ends the
 *   list; at most MAX_PATCHES are applied.
 *
 * Environment: VEMS_FUZZ_DIR (where the images go, default /dev/shm),
 * VEMS_FUZZ_VERBOSE=1 (print the bases and their anchors at start),
 * VEMS_FUZZ_SKIP_PMDK=1 (drop patches to libpmemobj's own headers, to get
 * past its known crashes to libvems' records), VEMS_FUZZ_STRICT=1 (also
 * check that a failed open wrote nothing; not yet true, see regress/).
 */

#include <errno.h>
#include <fcntl.h>
#include <libpmemobj.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "layout.h"
#include "vems_internal.h"

#define MIB (UINT64_C(1) << 20)
#define MAX_PATCHES 64
#define READ_CAP (8 * MIB) /* bytes read from the front of an object */
#define MAX_OBJS 256
#define MAX_NAMES 256

/* Anchors of the pmem file (file bit 0). */
enum {
	ANCHOR_ZERO,	   /* offset 0: libpmemobj's pool header */
	ANCHOR_LAYOUT,	   /* the pool descriptor (layout name) at 4 KiB */
	ANCHOR_LANES,	   /* libpmemobj's lanes */
	ANCHOR_HEAP,	   /* heap header */
	ANCHOR_ZONE0,	   /* zone 0 header */
	ANCHOR_CHUNKS,	   /* zone 0's chunk headers */
	ANCHOR_SUPER,	   /* the vems superblock (root object) */
	ANCHOR_OBJ0,	   /* first object record */
	ANCHOR_OBJ1,	   /* second object record */
	ANCHOR_NAME0,	   /* first name record */
	ANCHOR_NAME1,	   /* second name record */
	ANCHOR_ENTRIES,	   /* the entry table */
	ANCHOR_ENTRY_USED, /* first non-zero word of the entry table */
	ANCHOR_DATA,	   /* the data area */
	ANCHOR_END,	   /* the end of the file (offsets < 0 reach back) */
	ANCHOR_ZERO2,
};
/* Anchors of the block file (file bit 1); others are 0. */
enum {
	BANCHOR_HDR,  /* the header */
	BANCHOR_DATA, /* slot 0 */
	BANCHOR_USED, /* the first non-zero page of the data area */
	BANCHOR_END,  /* the end of the file */
};

struct mobj {
	struct vems_oid oid;
	uint64_t size, data_len, seed; /* bytes past data_len read as 0 */
	uint8_t *want;		       /* the data_len bytes written */
};

struct mname {
	char name[VEMS_NAME_MAX + 1];
	int obj;
};

struct base {
	const char *tag;
	char pool[PATH_MAX], blk[PATH_MAX];   /* pristine */
	char spool[PATH_MAX], sblk[PATH_MAX]; /* scratch */
	uint8_t *pm[2];			      /* pristine, mapped read-only */
	uint8_t *sm[2];			      /* scratch, mapped shared */
	int sfd[2];
	size_t size[2];
	int64_t anchor[2][16];
	bool clean; /* the model below is exact */
	bool crash; /* a process crash image: must reopen clean */
	struct mobj obj[8];
	int nobj;
	struct mname *names;
	int nnames;
};

#define NBASE 5
static struct base B[NBASE];
static struct vems_config *open_cfg;

/*
 * VEMS_FUZZ_SKIP_PMDK=1: patches that touch libpmemobj's pool header,
 * lanes, heap header or chunk headers are dropped, so that a campaign gets
 * past the known libpmemobj crashes (regress/README.md) to libvems' own
 * records. Allocation headers next to the records can still be hit.
 */
static bool skip_pmdk;
static bool strict; /* VEMS_FUZZ_STRICT=1: see check_untouched() */
static uint8_t tmp_page[1 << 16]; /* where skipped patches go */

/* --- making the base images ----------------------------------------- */

static void
copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY), out;
	FZ_SETUP(in >= 0, "open %s", src);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FZ_SETUP(out >= 0, "open %s", dst);
	static uint8_t buf[1 << 20];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		FZ_SETUP(write(out, buf, (size_t)n) == n, "write %s", dst);
	FZ_SETUP(n == 0, "read %s", src);
	close(in);
	close(out);
}

static struct vems_pool *
create_pool(struct base *b, uint64_t block_size, uint64_t extent)
{
	struct vems_config *cfg;
	struct vems_pool *p;
	FZ_SETUP(vems_config_new(&cfg) == 0, "config");
	vems_config_set_pmem_size(cfg, VEMS_PMEM_MIN_SIZE);
	vems_config_set_block_path(cfg, b->blk);
	vems_config_set_block_size(cfg, block_size);
	vems_config_set_extent_size(cfg, extent);
	vems_config_set_low_watermark(cfg, 0); /* writers spill: determinism */
	unlink(b->pool);
	unlink(b->blk);
	FZ_SETUP(vems_pool_create(&p, b->pool, cfg) == 0, "create %s", b->pool);
	vems_config_delete(&cfg);
	return p;
}

static struct vems_pool *
open_pool(const char *pool, const char *blk)
{
	struct vems_config *cfg;
	struct vems_pool *p;
	FZ_SETUP(vems_config_new(&cfg) == 0, "config");
	vems_config_set_block_path(cfg, blk);
	vems_config_set_low_watermark(cfg, 0);
	FZ_SETUP(vems_pool_open(&p, pool, cfg) == 0, "open %s", pool);
	vems_config_delete(&cfg);
	return p;
}

/* Writes [0, len) of fz_fill(seed) to an object, in 256 KiB pieces. */
static void
write_obj(struct vems_pool *p, struct vems_oid oid, uint64_t len, uint64_t seed)
{
	struct vems_obj *o;
	static uint8_t buf[256 << 10];
	FZ_SETUP(vems_obj_open(p, oid, 0, &o) == 0, "obj open");
	for (uint64_t off = 0; off < len; off += sizeof(buf)) {
		size_t n = len - off < sizeof(buf) ? (size_t)(len - off)
						   : sizeof(buf);
		fz_fill(buf, n, seed, off);
		FZ_SETUP(vems_obj_pwrite(o, buf, n, off, 0) == (ssize_t)n,
			 "pwrite");
	}
	vems_obj_close(&o);
}

/*
 * An object of `size` bytes of which `written` were written; if they
 * differ, it is cut to written / 2 and grown again, so that the rest reads
 * as zeros.
 */
static void
add_obj(struct base *b, struct vems_pool *p, uint64_t part, uint64_t id,
	uint64_t size, uint64_t written, uint64_t seed)
{
	struct vems_oid oid = {part, id};
	uint64_t data_len = written;
	FZ_SETUP(vems_obj_create(p, &oid) == 0, "obj create");
	write_obj(p, oid, written, seed);
	if (size != written) {
		/* a tail that reads as zeros: written, cut, grown again */
		struct vems_obj *o;
		FZ_SETUP(vems_obj_open(p, oid, 0, &o) == 0, "obj open");
		FZ_SETUP(vems_obj_truncate(o, data_len / 2) == 0, "trunc");
		FZ_SETUP(vems_obj_truncate(o, size) == 0, "trunc");
		vems_obj_close(&o);
		data_len /= 2;
	}
	/* kept in DRAM: a memcmp per read, not a byte function per byte */
	uint8_t *want = malloc(data_len ? data_len : 1);
	FZ_SETUP(want != NULL, "malloc");
	fz_fill(want, data_len, seed, 0);
	b->obj[b->nobj++] = (struct mobj){oid, size, data_len, seed, want};
}

static void
add_name(struct base *b, struct vems_pool *p, const char *name, int obj)
{
	FZ_SETUP(vems_name_bind(p, name, b->obj[obj].oid) == 0, "bind %.40s",
		 name);
	struct mname *m = &b->names[b->nnames++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->obj = obj;
}

static void
make_small(struct base *b)
{
	struct vems_pool *p = create_pool(b, 4 * MIB, 64 << 10);
	add_obj(b, p, 0, 1, 0, 0, 1);
	add_obj(b, p, 0, 2, 100, 100, 2);
	add_obj(b, p, 7, 3, 70000, 70000, 3);
	add_obj(b, p, 0, 4, 300000, 200000, 4); /* zeros from 100000 */
	add_name(b, p, "a", 0);
	add_name(b, p, "dir/", 1);
	add_name(b, p, "dir/file.txt", 2);
	add_name(b, p,
		 "\xc3\xbcnic\xc3\xb6"
		 "de/\xc3\xb1",
		 3);
	/* longer names do not fit a 16 MiB pool's metadata heap (only the
	 * record sizes of allocation classes already in use do; see the
	 * fuzz report), fuzz_names covers them on a larger pool */
	char name[201];
	memset(name, 'L', 200);
	name[200] = '\0';
	add_name(b, p, name, 2);
	FZ_SETUP(vems_pool_close(&p) == 0, "close");
}

static void
make_spilled(struct base *b)
{
	struct vems_pool *p = create_pool(b, 8 * MIB, 16 << 10);
	add_obj(b, p, 0, 1, 4 * MIB, 4 * MIB, 11);
	add_obj(b, p, 0, 2, 3 * MIB, 3 * MIB, 12);
	add_obj(b, p, 3, 3, MIB + 5000, MIB + 5000, 13);
	add_name(b, p, "big/one", 0);
	add_name(b, p, "big/two", 1);
	add_name(b, p, "big/three", 2);
	/* read the first object back, twice (promotions, if the policy
	 * admits them: clean BOTH extents) */
	struct vems_obj *o;
	static uint8_t buf[256 << 10];
	FZ_SETUP(vems_obj_open(p, b->obj[0].oid, VEMS_O_RDONLY, &o) == 0,
		 "open");
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t off = 0; off < 4 * MIB; off += sizeof(buf))
			FZ_SETUP(vems_obj_pread(o, buf, sizeof(buf), off) ==
					 (ssize_t)sizeof(buf),
				 "pread");
	vems_obj_close(&o);
	struct vems_pool_stats st;
	vems_pool_stats(p, &st);
	FZ_SETUP(st.extents_block > 0,
		 "spilled base has %llu BLOCK, %llu BOTH extents",
		 (unsigned long long)st.extents_block,
		 (unsigned long long)st.extents_both);
	FZ_SETUP(vems_pool_close(&p) == 0, "close");
}

/* A workload that is mid-way at every fence: transactions and writes. */
static void
workload(const char *pool, const char *blk, bool big)
{
	struct vems_pool *p = open_pool(pool, blk);
	struct vems_oid oid = {0, 0};
	if (big) /* room in both tiers first */
		FZ_SETUP(vems_obj_remove(p, (struct vems_oid){0, 2}) == 0,
			 "remove");
	FZ_SETUP(vems_obj_create(p, &oid) == 0, "create");
	FZ_SETUP(vems_name_bind(p, "new", oid) == 0, "bind");
	write_obj(p, oid, big ? 2 * MIB : 20000, 99);
	if (big) {
		write_obj(p, (struct vems_oid){0, 1}, 1 * MIB, 98);
	} else {
		struct vems_oid rep;
		int any;
		FZ_SETUP(vems_name_rename(p, "new", "a", &rep, &any) == 0,
			 "rename");
		FZ_SETUP(vems_obj_remove(p, (struct vems_oid){0, 2}) == 0,
			 "remove");
		struct vems_obj *o;
		FZ_SETUP(vems_obj_open(p, (struct vems_oid){0, 4}, 0, &o) == 0,
			 "open");
		FZ_SETUP(vems_obj_truncate(o, 1000) == 0, "truncate");
		vems_obj_close(&o);
	}
	vems_pool_close(&p);
}

/*
 * A crash image of `from`: the workload in a child that _exit()s at the
 * fence `num/den` of the way through it (counted on a dry run).
 */
static void
make_crash(struct base *b, const struct base *from, bool big, long num,
	   long den)
{
	char dpool[PATH_MAX + 8], dblk[PATH_MAX + 8];
	FZ_SETUP((size_t)snprintf(dpool, sizeof(dpool), "%s.dry", b->pool) <
				 sizeof(dpool) &&
			 (size_t)snprintf(dblk, sizeof(dblk), "%s.dry",
					  b->blk) < sizeof(dblk),
		 "path too long");
	copy_file(from->pool, dpool);
	copy_file(from->blk, dblk);
	fz_die_at_fence(0);
	workload(dpool, dblk, big);
	long n = fz_fences();
	unlink(dpool);
	unlink(dblk);

	copy_file(from->pool, b->pool);
	copy_file(from->blk, b->blk);
	fflush(NULL);
	pid_t pid = fork();
	FZ_SETUP(pid >= 0, "fork");
	if (pid == 0) {
		fz_die_at_fence(n * num / den);
		workload(b->pool, b->blk, big);
		_exit(1); /* did not reach the fence */
	}
	int status;
	FZ_SETUP(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
			 WEXITSTATUS(status) == 0,
		 "crash child of %s: status %d", b->tag, status);
	b->crash = true;
}

/* Reads the anchors of one image with libpmemobj, on a throwaway copy. */
static bool
find_anchors(struct base *b)
{
	char tmp[PATH_MAX + 8];
	FZ_SETUP((size_t)snprintf(tmp, sizeof(tmp), "%s.anchors", b->pool) <
			 sizeof(tmp),
		 "path too long");
	copy_file(b->pool, tmp);
	int64_t *a = b->anchor[0];
	a[ANCHOR_LAYOUT] = 4096;
	a[ANCHOR_END] = (int64_t)b->size[0];
	/* libpmemobj's pool descriptor: lanes_offset, nlanes, heap_offset
	 * follow the 1 KiB layout name */
	uint64_t lanes, heap;
	memcpy(&lanes, b->pm[0] + 4096 + 1024, 8);
	memcpy(&heap, b->pm[0] + 4096 + 1024 + 16, 8);
	a[ANCHOR_LANES] = (int64_t)lanes;
	a[ANCHOR_HEAP] = (int64_t)heap;
	a[ANCHOR_ZONE0] = (int64_t)heap + 1024;	      /* heap header: 1 KiB */
	a[ANCHOR_CHUNKS] = (int64_t)heap + 1024 + 64; /* zone header: 64 */
	PMEMobjpool *pop = pmemobj_open(tmp, NULL);
	if (pop == NULL) {
		unlink(tmp);
		return false;
	}
	PMEMoid root = pmemobj_root(pop, 0);
	a[ANCHOR_SUPER] = (int64_t)root.off;
	PMEMoid o = POBJ_FIRST_TYPE_NUM(pop, VEMS_TYPE_OBJ);
	a[ANCHOR_OBJ0] = (int64_t)o.off;
	if (!OID_IS_NULL(o))
		o = POBJ_NEXT_TYPE_NUM(o);
	a[ANCHOR_OBJ1] = (int64_t)o.off;
	o = POBJ_FIRST_TYPE_NUM(pop, VEMS_TYPE_NAME);
	a[ANCHOR_NAME0] = (int64_t)o.off;
	if (!OID_IS_NULL(o))
		o = POBJ_NEXT_TYPE_NUM(o);
	a[ANCHOR_NAME1] = (int64_t)o.off;
	o = POBJ_FIRST_TYPE_NUM(pop, VEMS_TYPE_ENTRIES);
	a[ANCHOR_ENTRIES] = (int64_t)o.off;
	if (!OID_IS_NULL(o)) {
		const uint64_t *w = pmemobj_direct(o);
		size_t n = pmemobj_alloc_usable_size(o) / 8, i = 0;
		while (i < n && w[i] == 0)
			i++;
		a[ANCHOR_ENTRY_USED] = (int64_t)(o.off + 8 * (i < n ? i : 0));
	}
	o = POBJ_FIRST_TYPE_NUM(pop, VEMS_TYPE_DATA);
	a[ANCHOR_DATA] = (int64_t)o.off;
	pmemobj_close(pop);
	unlink(tmp);

	int64_t *ba = b->anchor[1];
	ba[BANCHOR_DATA] = VEMS_BLOCK_DATA_OFF;
	ba[BANCHOR_END] = (int64_t)b->size[1];
	ba[BANCHOR_USED] = VEMS_BLOCK_DATA_OFF;
	for (size_t off = VEMS_BLOCK_DATA_OFF; off + 4096 <= b->size[1];
	     off += 4096) {
		static const uint8_t zero[4096];
		if (memcmp(b->pm[1] + off, zero, 4096) != 0) {
			ba[BANCHOR_USED] = (int64_t)off;
			break;
		}
	}
	return true;
}

static uint8_t *
map_file(const char *path, int *fdp, size_t *size, bool rw)
{
	int fd = open(path, rw ? O_RDWR : O_RDONLY);
	FZ_SETUP(fd >= 0, "open %s", path);
	struct stat st;
	FZ_SETUP(fstat(fd, &st) == 0, "stat");
	*size = (size_t)st.st_size;
	void *m = mmap(NULL, *size, rw ? PROT_READ | PROT_WRITE : PROT_READ,
		       MAP_SHARED, fd, 0);
	FZ_SETUP(m != MAP_FAILED, "mmap %s", path);
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return m;
}

static void
setup_base(struct base *b, int i, const char *tag)
{
	const char *d = fz_dir();
	b->tag = tag;
	bool ok =
		(size_t)snprintf(b->pool, sizeof(b->pool), "%s/base%d-%s.pool",
				 d, i, tag) < sizeof(b->pool) &&
		(size_t)snprintf(b->blk, sizeof(b->blk), "%s/base%d-%s.blk", d,
				 i, tag) < sizeof(b->blk) &&
		(size_t)snprintf(b->spool, sizeof(b->spool),
				 "%s/scratch%d.pool", d,
				 i) < sizeof(b->spool) &&
		(size_t)snprintf(b->sblk, sizeof(b->sblk), "%s/scratch%d.blk",
				 d, i) < sizeof(b->sblk);
	FZ_SETUP(ok, "paths under %s too long", d);
	if (b->names == NULL)
		b->names = calloc(MAX_NAMES, sizeof(*b->names));
	FZ_SETUP(b->names != NULL, "calloc");
}

static void
finish_base(struct base *b, const struct base *from)
{
	b->pm[0] = map_file(b->pool, NULL, &b->size[0], false);
	b->pm[1] = map_file(b->blk, NULL, &b->size[1], false);
	if (!find_anchors(b)) {
		FZ_SETUP(from != NULL, "no anchors in %s", b->pool);
		memcpy(b->anchor, from->anchor, sizeof(b->anchor));
	}
	copy_file(b->pool, b->spool);
	copy_file(b->blk, b->sblk);
	for (int f = 0; f < 2; f++) {
		size_t sz;
		b->sm[f] =
			map_file(f ? b->sblk : b->spool, &b->sfd[f], &sz, true);
		FZ_SETUP(sz == b->size[f], "scratch size");
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("PMEM_IS_PMEM_FORCE", "1", 0);
	/* a damaged heap that spins libpmemobj is cut off sooner */
	vems__probe_timeout_ms = 2000;
	const char *tags[NBASE] = {"small", "spilled", "crash-tx", "crash-tx2",
				   "crash-spill"};
	for (int i = 0; i < NBASE; i++)
		setup_base(&B[i], i, tags[i]);
	make_small(&B[0]);
	B[0].clean = true;
	finish_base(&B[0], NULL);
	make_spilled(&B[1]);
	B[1].clean = true;
	finish_base(&B[1], NULL);
	make_crash(&B[2], &B[0], false, 1, 3);
	finish_base(&B[2], &B[0]);
	make_crash(&B[3], &B[0], false, 2, 3);
	finish_base(&B[3], &B[0]);
	make_crash(&B[4], &B[1], true, 1, 2);
	finish_base(&B[4], &B[1]);

	FZ_SETUP(vems_config_new(&open_cfg) == 0, "config");
	vems_config_set_low_watermark(open_cfg, 0); /* no spiller thread */
	const char *sp = getenv("VEMS_FUZZ_SKIP_PMDK");
	skip_pmdk = sp && strcmp(sp, "1") == 0;
	sp = getenv("VEMS_FUZZ_STRICT");
	strict = sp && strcmp(sp, "1") == 0;
	if (getenv("VEMS_FUZZ_VERBOSE"))
		for (int i = 0; i < NBASE; i++) {
			fprintf(stderr, "base %d %s: %zu + %zu bytes; anchors",
				i, B[i].tag, B[i].size[0], B[i].size[1]);
			for (int a = 0; a < 16; a++)
				fprintf(stderr, " %lld",
					(long long)B[i].anchor[0][a]);
			fprintf(stderr, " | block %lld %lld %lld %lld\n",
				(long long)B[i].anchor[1][0],
				(long long)B[i].anchor[1][1],
				(long long)B[i].anchor[1][2],
				(long long)B[i].anchor[1][3]);
		}
	return 0;
}

/* --- one run ---------------------------------------------------------- */

/* Makes the scratch files equal to the base again, page by page. */
static void
restore(struct base *b)
{
	for (int f = 0; f < 2; f++) {
		struct stat st;
		FZ_SETUP(fstat(b->sfd[f], &st) == 0, "fstat");
		if ((size_t)st.st_size != b->size[f])
			FZ_SETUP(ftruncate(b->sfd[f], (off_t)b->size[f]) == 0,
				 "ftruncate");
		for (size_t off = 0; off < b->size[f]; off += 4096) {
			size_t n = b->size[f] - off < 4096 ? b->size[f] - off
							   : 4096;
			if (memcmp(b->sm[f] + off, b->pm[f] + off, n) != 0)
				memcpy(b->sm[f] + off, b->pm[f] + off, n);
		}
	}
}

struct patched {
	bool pmem, bhdr, bdata; /* some byte differs from the base */
	/* the patched ranges, for VEMS_FUZZ_STRICT */
	struct {
		int f;
		size_t off, len;
	} r[MAX_PATCHES];
	int nr;
	bool trunc;
};

static uint64_t
get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void
note_change(struct base *b, int f, size_t off, size_t len, struct patched *ch)
{
	if (len == 0 || memcmp(b->sm[f] + off, b->pm[f] + off, len) == 0)
		return;
	if (f == 0)
		ch->pmem = true;
	else if (off < VEMS_BLOCK_DATA_OFF)
		ch->bhdr = true;
	else
		ch->bdata = true;
}

static bool
skipped(const struct base *b, int f, size_t off)
{
	/* zone 0's chunk header array: 65528 headers of 8 bytes (PMDK) */
	return skip_pmdk && f == 0 &&
		(int64_t)off < b->anchor[0][ANCHOR_CHUNKS] + 8 * 65528;
}

/*
 * VEMS_FUZZ_STRICT=1: vems.h promises that a failed open modifies neither
 * file. Checked where it can be: a page that differs from the base but
 * holds no patched byte was written by the failed open. (Pages holding a
 * patch are not checked; inputs that truncate a file are skipped.)
 */
static void
check_untouched(const struct base *b, const struct patched *ch)
{
	if (!strict || ch->trunc)
		return;
	for (int f = 0; f < 2; f++)
		for (size_t off = 0; off < b->size[f]; off += 4096) {
			size_t n = b->size[f] - off < 4096 ? b->size[f] - off
							   : 4096;
			if (memcmp(b->sm[f] + off, b->pm[f] + off, n) == 0)
				continue;
			bool patched = false;
			for (int i = 0; i < ch->nr && !patched; i++)
				patched = ch->r[i].f == f &&
					ch->r[i].off < off + n &&
					ch->r[i].off + ch->r[i].len > off;
			size_t at = 0;
			while (b->sm[f][off + at] == b->pm[f][off + at])
				at++;
			FZ_CHECK(patched,
				 "failed open modified the %s file at offset "
				 "%zu",
				 f ? "block" : "pmem", off + at);
		}
}

static void
apply(struct base *b, const uint8_t *d, size_t size, struct patched *ch)
{
	size_t pos = 1;
	int64_t trunc[2] = {-1, -1};
	for (int np = 0; np < MAX_PATCHES && pos + 5 <= size; np++) {
		uint8_t op = d[pos];
		int kind = op & 7, f = (op >> 3) & 1, an = op >> 4;
		int64_t rel = (int32_t)get_le(d + pos + 1, 4);
		pos += 5;
		int64_t fsize = (int64_t)b->size[f];
		int64_t abs = (b->anchor[f][an] + rel) % fsize;
		if (abs < 0)
			abs += fsize;
		size_t off = (size_t)abs, room = (size_t)(fsize - abs), len;
		uint8_t *dst = b->sm[f] + off;
		uint8_t tmp[8];
		if (skipped(b, f, off) && kind != 4)
			dst = tmp_page, room = sizeof(tmp_page);
		switch (kind) {
		case 0: /* SET */
			if (pos + 1 > size)
				return;
			len = d[pos++];
			if (len > size - pos)
				len = size - pos;
			if (len > room)
				len = room;
			memcpy(dst, d + pos, len);
			pos += len;
			break;
		case 1: /* FILL */
			if (pos + 3 > size)
				return;
			len = get_le(d + pos, 2);
			if (len > room)
				len = room;
			memset(dst, d[pos + 2], len);
			pos += 3;
			break;
		case 2: /* XOR */
			if (pos + 1 > size)
				return;
			len = 1;
			*dst ^= d[pos++];
			break;
		case 3: /* SET64 */
		case 6: /* SET32 */
			len = kind == 3 ? 8 : 4;
			if (pos + len > size)
				return;
			memcpy(tmp, d + pos, len);
			pos += len;
			if (len > room)
				len = room;
			memcpy(dst, tmp, len);
			break;
		case 4: /* TRUNC */
			len = 0;
			trunc[f] = abs;
			break;
		case 5: /* ADD */
			if (pos + 1 > size)
				return;
			len = 1;
			*dst = (uint8_t)(*dst + d[pos++]);
			break;
		default: /* ZERO */
			if (pos + 2 > size)
				return;
			len = get_le(d + pos, 2);
			pos += 2;
			if (len > room)
				len = room;
			memset(dst, 0, len);
			break;
		}
		if (dst != tmp_page)
			note_change(b, f, off, len, ch);
		if (len > 0) {
			ch->r[ch->nr].f = f;
			ch->r[ch->nr].off = off;
			ch->r[ch->nr++].len = len;
		}
	}
	for (int f = 0; f < 2; f++)
		if (trunc[f] >= 0 && (size_t)trunc[f] != b->size[f]) {
			FZ_SETUP(ftruncate(b->sfd[f], trunc[f]) == 0,
				 "ftruncate");
			ch->trunc = true;
			if (f == 0)
				ch->pmem = true;
			else
				ch->bhdr = true; /* the header's promise */
		}
}

struct oids {
	struct vems_oid v[MAX_OBJS];
	int n;
};

static int
oid_cb(const struct vems_oid *oid, void *arg)
{
	struct oids *o = arg;
	if (o->n < MAX_OBJS)
		o->v[o->n++] = *oid;
	return 0;
}

struct names {
	struct base *b;
	struct vems_pool *p;
	int n;
	bool model; /* compare with the base's names */
};

static int
name_cb(const char *name, const struct vems_oid *oid, void *arg)
{
	struct names *nm = arg;
	struct vems_oid got;
	size_t len = strlen(name);
	FZ_CHECK(len > 0 && len <= VEMS_NAME_MAX, "listed name of %zu bytes",
		 len);
	int r = vems_name_lookup(nm->p, name, &got);
	FZ_CHECK(r == 0 && got.partition == oid->partition && got.id == oid->id,
		 "listed name \"%.40s\" looks up as %d", name, r);
	if (nm->model) {
		bool found = false;
		for (int i = 0; i < nm->b->nnames; i++) {
			const struct mname *m = &nm->b->names[i];
			const struct vems_oid *mo = &nm->b->obj[m->obj].oid;
			if (strcmp(m->name, name) == 0 &&
			    mo->partition == oid->partition &&
			    mo->id == oid->id)
				found = true;
		}
		FZ_CHECK(found, "name \"%.40s\" is not the base's", name);
	}
	nm->n++;
	return 0;
}

static const struct mobj *
model_obj(const struct base *b, const struct vems_oid *oid)
{
	for (int i = 0; i < b->nobj; i++)
		if (b->obj[i].oid.partition == oid->partition &&
		    b->obj[i].oid.id == oid->id)
			return &b->obj[i];
	return NULL;
}

static void
verify_bytes(const struct mobj *m, const uint8_t *buf, size_t n, uint64_t off)
{
	static const uint8_t zero[256 << 10];
	size_t data = off >= m->data_len ? 0
		: m->data_len - off < n	 ? (size_t)(m->data_len - off)
					 : n;
	bool ok = memcmp(buf, m->want + off, data) == 0 &&
		memcmp(buf + data, zero, n - data) == 0;
	if (ok)
		return;
	for (size_t i = 0; i < n; i++) {
		uint64_t o = off + i;
		uint8_t want = o < m->data_len ? m->want[o] : 0;
		FZ_CHECK(buf[i] == want,
			 "object %llu.%llu byte %llu is %u, was written %u",
			 (unsigned long long)m->oid.partition,
			 (unsigned long long)m->oid.id, (unsigned long long)o,
			 buf[i], want);
	}
}

/* Reads an object's front (up to READ_CAP) and its last 64 KiB. */
static void
read_obj(struct vems_pool *p, const struct vems_oid *oid, const struct mobj *m,
	 bool exact)
{
	static uint8_t buf[256 << 10];
	struct vems_obj_stat st;
	int r = vems_obj_stat_oid(p, *oid, &st);
	FZ_CHECK(r == 0 || fz_is_error_code(r), "stat_oid = %d", r);
	if (r)
		return;
	if (m)
		FZ_CHECK(st.size == m->size, "object size %llu, written %llu",
			 (unsigned long long)st.size,
			 (unsigned long long)m->size);
	struct vems_obj *o;
	r = vems_obj_open(p, *oid, VEMS_O_RDONLY, &o);
	FZ_CHECK(r == 0 || fz_is_error_code(r), "obj_open = %d", r);
	if (r)
		return;
	uint64_t front = st.size < READ_CAP ? st.size : READ_CAP;
	uint64_t tail =
		st.size > front + (64 << 10) ? st.size - (64 << 10) : front;
	for (uint64_t off = 0; off < st.size;) {
		ssize_t n = vems_obj_pread(o, buf, sizeof(buf), off);
		FZ_CHECK(n >= 0 || fz_is_error_code(n), "pread = %zd", n);
		if (n < 0 && exact)
			FZ_CHECK(false, "pread of an undamaged pool = %zd", n);
		if (n <= 0)
			break; /* an error, or the end */
		FZ_CHECK((size_t)n <= sizeof(buf), "pread = %zd", n);
		if (m)
			verify_bytes(m, buf, (size_t)n, off);
		off += (uint64_t)n;
		if (off >= front && off < tail)
			off = tail;
	}
	FZ_CHECK(vems_obj_close(&o) == 0 && o == NULL, "obj_close");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct base *b = &B[data[0] % NBASE];
	restore(b);
	struct patched ch;
	memset(&ch, 0, sizeof(ch));
	apply(b, data, size, &ch);
	bool unchanged = !ch.pmem && !ch.bhdr && !ch.bdata;

	vems_config_set_block_path(open_cfg, b->sblk);
	struct vems_pool *p = (struct vems_pool *)&p; /* not NULL */
	int r = vems_pool_open(&p, b->spool, open_cfg);
	FZ_CHECK(r == 0 || fz_is_error_code(r), "vems_pool_open = %d", r);
	if (r) {
		FZ_CHECK(p == NULL, "failed open left a pool");
		check_untouched(b, &ch);
		FZ_CHECK(vems_errormsg()[0] != '\0', "error %d, no message", r);
		FZ_CHECK(!unchanged, "base %s (unchanged) does not open: %d",
			 b->tag, r);
		return 0;
	}
	FZ_CHECK(p != NULL, "open returned 0 and no pool");

	struct vems_pool_info info;
	struct vems_pool_stats stats;
	FZ_CHECK(vems_pool_info(p, &info) == 0, "info");
	FZ_CHECK(vems_pool_stats(p, &stats) == 0, "stats");
	int probs = vems_pool_check(p, NULL, NULL);
	FZ_CHECK(probs >= 0 || fz_is_error_code(probs), "check = %d", probs);
	FZ_CHECK(!unchanged || probs == 0, "base %s (unchanged): check = %d",
		 b->tag, probs);

	/* the model holds if no metadata can have changed */
	bool model = b->clean && !ch.pmem && !ch.bhdr;
	struct oids *oids = malloc(sizeof(*oids));
	FZ_SETUP(oids != NULL, "malloc");
	oids->n = 0;
	r = vems_obj_list(p, oid_cb, oids);
	FZ_CHECK(r == 0 || fz_is_error_code(r), "obj_list = %d", r);
	if (model)
		FZ_CHECK(oids->n == b->nobj, "%d objects, the base has %d",
			 oids->n, b->nobj);
	for (int i = 0; i < oids->n; i++) {
		const struct mobj *m = model ? model_obj(b, &oids->v[i]) : NULL;
		if (model)
			FZ_CHECK(m != NULL, "object %llu.%llu not the base's",
				 (unsigned long long)oids->v[i].partition,
				 (unsigned long long)oids->v[i].id);
		read_obj(p, &oids->v[i], m, unchanged);
	}
	free(oids);

	struct names nm = {b, p, 0, model};
	r = vems_name_list(p, NULL, name_cb, &nm);
	FZ_CHECK(r == 0 || fz_is_error_code(r), "name_list = %d", r);
	if (model)
		FZ_CHECK(nm.n == b->nnames, "%d names, the base has %d", nm.n,
			 b->nnames);

	r = vems_pool_close(&p);
	FZ_CHECK((r == 0 || fz_is_error_code(r)) && p == NULL, "close = %d", r);
	return 0;
}
