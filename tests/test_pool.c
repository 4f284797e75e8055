/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_pool.c -- creating, opening and closing pools, and every bad input
 * that open and create must refuse without changing a byte of either file
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpmemobj.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define PMEM_SZ VEMS_PMEM_MIN_SIZE
#define BLOCK_SZ (UINT64_C(16) << 20)

/* Where the layout name sits in a libpmemobj pool, and how ours starts. */
#define LAYOUT_OFF 4096
#define LAYOUT_FMT "libvems fmt=5"
/* Offset of the checksum in the block file's header (layout.h). */
#define BLOCK_CSUM_OFF 124

/* --- helpers --------------------------------------------------------- */

/*
 * Leaves a sentence in vems_errormsg() that no pool call writes, so a test
 * can tell that the call under test wrote its own.
 */
static void
prime_errormsg(void)
{
	struct vems_obj *h;
	struct vems_oid o = {0, 0};
	(void)vems_obj_open(NULL, o, 0, &h);
}

/* expr must return exactly code and leave a new, non-empty errormsg. */
#define EXPECT_ERR(expr, code)                                                 \
	do {                                                                   \
		prime_errormsg();                                              \
		char ee_before_[1024];                                         \
		strcpy(ee_before_, vems_errormsg());                           \
		int ee_r_ = (int)(expr);                                       \
		if (ee_r_ != (code))                                           \
			fail_msg("%s = %d (%s), expected %d (%s): %s", #expr,  \
				 ee_r_, vems_strerror(ee_r_), (code),          \
				 vems_strerror(code), vems_errormsg());        \
		assert_true(vems_errormsg()[0] != '\0');                       \
		assert_string_not_equal(vems_errormsg(), ee_before_);          \
	} while (0)

static int
file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static uint64_t
file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void
write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void
write_random_file(const char *path, size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	tu_fill(buf, len, seed, 0);
	write_file(path, buf, len);
	free(buf);
}

/* Copies the first len bytes of src to a new file dst. */
static void
copy_file(const char *src, const char *dst, uint64_t len)
{
	int in = open(src, O_RDONLY);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(in >= 0);
	assert_true(out >= 0);
	static uint8_t buf[1 << 16];
	while (len > 0) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		assert_int_equal(read(in, buf, n), (ssize_t)n);
		assert_int_equal(write(out, buf, n), (ssize_t)n);
		len -= n;
	}
	close(in);
	assert_int_equal(close(out), 0);
}

static void
pread_file(const char *path, off_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void
pwrite_file(const char *path, off_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Flips every bit of the byte at off. */
static void
flip_byte(const char *path, off_t off)
{
	uint8_t b;
	pread_file(path, off, &b, 1);
	b ^= 0xff;
	pwrite_file(path, off, &b, 1);
}

/* Digests of a pool's two files, to prove a refused call changed nothing. */
struct digests {
	uint64_t pmem, block;
};

static void
snap(const struct tu_pool *tp, struct digests *d)
{
	assert_true(file_exists(tp->pmem));
	assert_true(file_exists(tp->block));
	d->pmem = tu_file_digest(tp->pmem);
	d->block = tu_file_digest(tp->block);
}

#define assert_unchanged(tp, d) assert_unchanged_at((tp), (d), __LINE__)
static void
assert_unchanged_at(const struct tu_pool *tp, const struct digests *d, int line)
{
	if (tu_file_digest(tp->pmem) != d->pmem)
		fail_msg("line %d: pmem file %s was modified", line, tp->pmem);
	if (tu_file_digest(tp->block) != d->block)
		fail_msg("line %d: block file %s was modified", line,
			 tp->block);
}

/* A closed pool with one object holding known bytes, named "obj". */
static struct vems_oid
make_closed_pool(struct tu_pool *tp, const char *tag)
{
	struct vems_oid oid = {7, 0};
	struct vems_obj *h;
	uint8_t buf[10000];

	tu_create(tp, tag, PMEM_SZ, BLOCK_SZ, 0);
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_name_bind(tp->pool, "obj", oid));
	TU_OK(vems_obj_open(tp->pool, oid, 0, &h));
	tu_fill(buf, sizeof(buf), oid.id, 0);
	assert_int_equal(vems_obj_pwrite(h, buf, sizeof(buf), 0, 0),
			 (ssize_t)sizeof(buf));
	TU_OK(vems_obj_close(&h));
	TU_OK(vems_pool_close(&tp->pool));
	assert_null(tp->pool);
	return oid;
}

/* The pool's data is exactly what make_closed_pool wrote. */
static void
verify_pool(struct vems_pool *pool, struct vems_oid oid)
{
	struct vems_oid got;
	struct vems_obj *h;
	uint8_t buf[10000];

	TU_OK(vems_name_lookup(pool, "obj", &got));
	assert_int_equal(got.partition, oid.partition);
	assert_int_equal(got.id, oid.id);
	TU_OK(vems_obj_open(pool, oid, VEMS_O_RDONLY, &h));
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vems_obj_pread(h, buf, sizeof(buf), 0),
			 (ssize_t)sizeof(buf));
	assert_true(tu_verify(buf, sizeof(buf), oid.id, 0));
	TU_OK(vems_obj_close(&h));
	assert_int_equal(vems_pool_check(pool, NULL, NULL), 0);
}

/*
 * Paths with no digits in them, so that a pid in an error message cannot
 * be confused with the test's pid inside the path.
 */
static void
letter_paths(struct tu_pool *tp, const char *tag)
{
	static uint64_t s;
	char letters[13];
	if (s == 0)
		s = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^
			(uint64_t)getpid() << 32 ^ (uint64_t)clock();
	for (size_t i = 0; i < sizeof(letters) - 1; i++)
		letters[i] = (char)('a' + tu_rand(&s) % 26);
	letters[sizeof(letters) - 1] = '\0';
	memset(tp, 0, sizeof(*tp));
	snprintf(tp->pmem, sizeof(tp->pmem), "%s/vemstest-%s-%s.pool", tu_dir(),
		 tag, letters);
	snprintf(tp->block, sizeof(tp->block), "%s/vemstest-%s-%s.blk",
		 tu_dir(), tag, letters);
	unlink(tp->pmem);
	unlink(tp->block);
}

static void
create_at(struct tu_pool *tp)
{
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_pmem_size(cfg, PMEM_SZ));
	TU_OK(vems_config_set_block_path(cfg, tp->block));
	TU_OK(vems_config_set_block_size(cfg, BLOCK_SZ));
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
}

/* 1 if n appears in msg as a whole decimal number. */
static int
has_number(const char *msg, long n)
{
	char num[32];
	snprintf(num, sizeof(num), "%ld", n);
	size_t l = strlen(num);
	for (const char *s = msg; (s = strstr(s, num)) != NULL; s++)
		if ((s == msg || !isdigit((unsigned char)s[-1])) &&
		    !isdigit((unsigned char)s[l]))
			return 1;
	return 0;
}

static struct vems_config *
cfg_sized(uint64_t pmem, const char *block, uint64_t bsize, uint64_t es)
{
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	if (pmem)
		TU_OK(vems_config_set_pmem_size(cfg, pmem));
	if (es)
		TU_OK(vems_config_set_extent_size(cfg, es));
	if (block)
		TU_OK(vems_config_set_block_path(cfg, block));
	TU_OK(vems_config_set_block_size(cfg, bsize));
	return cfg;
}

/* Builds a directory chain so that dir + "/" + name can be any length. */
struct longpath {
	char dirs[8][PATH_MAX];
	int ndirs;
};

static const char *
longpath_make(struct longpath *lp, size_t total)
{
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "%s/vemstest-long-%d", tu_dir(),
		 (int)getpid());
	lp->ndirs = 0;
	assert_int_equal(mkdir(base, 0700), 0);
	strcpy(lp->dirs[lp->ndirs++], base);
	while (total - strlen(lp->dirs[lp->ndirs - 1]) - 1 > 250) {
		char *d = lp->dirs[lp->ndirs];
		size_t l = strlen(lp->dirs[lp->ndirs - 1]);
		strcpy(d, lp->dirs[lp->ndirs - 1]);
		d[l] = '/';
		memset(d + l + 1, 'd', 200);
		d[l + 201] = '\0';
		assert_int_equal(mkdir(d, 0700), 0);
		lp->ndirs++;
	}
	return lp->dirs[lp->ndirs - 1];
}

/* dir + "/" + 'f's, exactly total bytes long. */
static void
longpath_file(char *out, const char *dir, size_t total)
{
	size_t l = strlen(dir);
	assert_true(total > l + 1);
	strcpy(out, dir);
	out[l] = '/';
	memset(out + l + 1, 'f', total - l - 1);
	out[total] = '\0';
	assert_int_equal(strlen(out), total);
}

static void
longpath_remove(struct longpath *lp)
{
	while (lp->ndirs > 0)
		rmdir(lp->dirs[--lp->ndirs]);
}

/* --- fixture: whatever a test leaves behind, even when it fails ------ */

static struct tu_pool fx_pools[3];
static char fx_extra[8][PATH_MAX + 16];
static int fx_nextra;
static struct longpath fx_lp;
static int fx_cwd = -1;

/* Removes path in the teardown (it may or may not exist by then). */
static const char *
track(const char *path)
{
	assert_true(fx_nextra < 8);
	assert_true(strlen(path) < sizeof(fx_extra[0]));
	strcpy(fx_extra[fx_nextra], path);
	return fx_extra[fx_nextra++];
}

static int
teardown(void **state)
{
	(void)state;
	if (fx_cwd >= 0)
		(void)fchdir(fx_cwd);
	for (int i = 0; i < 3; i++) {
		char defblk[2 * PATH_MAX];
		struct tu_pool *tp = &fx_pools[i];
		snprintf(defblk, sizeof(defblk), "%s.blk", tp->pmem);
		tu_destroy(tp);
		if (tp->pmem[0])
			unlink(defblk);
	}
	for (int i = 0; i < fx_nextra; i++)
		unlink(fx_extra[i]);
	longpath_remove(&fx_lp);
	memset(fx_pools, 0, sizeof(fx_pools));
	memset(fx_extra, 0, sizeof(fx_extra));
	fx_nextra = 0;
	return 0;
}

/* --- create ---------------------------------------------------------- */

static void
test_create_null_args(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = (struct vems_pool *)(uintptr_t)1;
	tu_paths(tp, "cnull");
	struct vems_config *cfg = cfg_sized(PMEM_SZ, tp->block, BLOCK_SZ, 0);

	EXPECT_ERR(vems_pool_create(NULL, tp->pmem, cfg), -EINVAL);
	EXPECT_ERR(vems_pool_create(&p, NULL, cfg), -EINVAL);
	EXPECT_ERR(vems_pool_create(&p, "", cfg), -EINVAL);
	assert_false(file_exists(tp->pmem));
	assert_false(file_exists(tp->block));

	/* a directory that does not exist */
	char bad[600];
	snprintf(bad, sizeof(bad), "%s/vemstest-nodir-%d/x.pool", tu_dir(),
		 (int)getpid());
	EXPECT_ERR(vems_pool_create(&p, bad, cfg), -ENOENT);
	assert_null(p);
	assert_false(file_exists(tp->block));
	vems_config_delete(&cfg);
}

static void
test_create_no_size(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	tu_paths(tp, "cnosize");
	struct vems_config *cfg = cfg_sized(0, tp->block, BLOCK_SZ, 0);

	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EINVAL);
	assert_null(p);
	/* no config at all: only for a pmem file that has a size */
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, NULL), -EINVAL);
	assert_null(p);
	assert_false(file_exists(tp->pmem));
	assert_false(file_exists(tp->block));

	/* nor for an existing but empty one: it stays as it was */
	write_file(tp->pmem, "", 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, NULL), -EINVAL);
	assert_int_equal(file_size(tp->pmem), 0);
	assert_false(file_exists(tp->block));
	vems_config_delete(&cfg);
	tu_destroy(tp);
}

static void
test_create_existing_pmem(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	tu_paths(tp, "cexist");
	struct vems_config *cfg = cfg_sized(PMEM_SZ, tp->block, BLOCK_SZ, 0);

	write_random_file(tp->pmem, 1 << 20, 11);
	uint64_t d = tu_file_digest(tp->pmem);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EEXIST);
	assert_null(p);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, NULL), -EEXIST);
	assert_true(tu_file_digest(tp->pmem) == d);
	assert_false(file_exists(tp->block));
	unlink(tp->pmem);

	/* a closed pool, and the same pool while open */
	struct digests dg;
	make_closed_pool(tp, "cexist");
	snap(tp, &dg);
	vems_config_delete(&cfg);
	cfg = cfg_sized(PMEM_SZ, NULL, BLOCK_SZ, 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EEXIST);
	assert_unchanged(tp, &dg);
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EEXIST);
	assert_null(p);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	TU_OK(vems_pool_close(&tp->pool));
	vems_config_delete(&cfg);
	tu_destroy(tp);
}

static void
test_create_existing_block(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	tu_paths(tp, "cexblk");
	struct vems_config *cfg = cfg_sized(PMEM_SZ, tp->block, BLOCK_SZ, 0);

	write_random_file(tp->block, 100000, 12);
	uint64_t d = tu_file_digest(tp->block);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EEXIST);
	assert_null(p);
	assert_true(tu_file_digest(tp->block) == d);
	assert_false(file_exists(tp->pmem));

	/* empty counts as existing: only block devices are reused */
	write_file(tp->block, "", 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EEXIST);
	assert_int_equal(file_size(tp->block), 0);
	assert_false(file_exists(tp->pmem));

	/* the default "<pmem>.blk" is checked the same way */
	char defblk[600];
	snprintf(defblk, sizeof(defblk), "%s.blk", tp->pmem);
	write_random_file(defblk, 5000, 13);
	d = tu_file_digest(defblk);
	vems_config_delete(&cfg);
	cfg = cfg_sized(PMEM_SZ, NULL, BLOCK_SZ, 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EEXIST);
	assert_true(tu_file_digest(defblk) == d);
	assert_false(file_exists(tp->pmem));
	unlink(defblk);
	vems_config_delete(&cfg);
	tu_destroy(tp);
}

/* An existing empty pmem file is sized and used. */
static void
test_create_empty_pmem_file(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool_info info;
	tu_paths(tp, "cempty");
	struct vems_config *cfg = cfg_sized(PMEM_SZ, tp->block, BLOCK_SZ, 0);

	write_file(tp->pmem, "", 0);
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	TU_OK(vems_pool_info(tp->pool, &info));
	assert_int_equal(info.pmem_size, PMEM_SZ);
	assert_int_equal(file_size(tp->pmem), PMEM_SZ);
	tu_reopen(tp);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	vems_config_delete(&cfg);
	tu_destroy(tp);
}

static void
test_create_too_small(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	struct vems_config *cfg;
	tu_paths(tp, "csmall");

	/* 2^24 slots of 64 KiB: a 512 MiB entry table in 16 MiB of pmem */
	cfg = cfg_sized(PMEM_SZ, tp->block, UINT64_C(1) << 40, 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -ENOSPC);
	assert_null(p);
	assert_false(file_exists(tp->pmem));
	assert_false(file_exists(tp->block));
	vems_config_delete(&cfg);

	/* 2^33 slots of 4 KiB: more extents than 32-bit entry numbers */
	cfg = cfg_sized(PMEM_SZ, tp->block, UINT64_C(1) << 45, 4096);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EFBIG);
	assert_false(file_exists(tp->pmem));
	assert_false(file_exists(tp->block));

	/* the same into an existing empty pmem file: left empty, not gone */
	write_file(tp->pmem, "", 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EFBIG);
	assert_int_equal(file_size(tp->pmem), 0);
	assert_false(file_exists(tp->block));
	vems_config_delete(&cfg);
	cfg = cfg_sized(PMEM_SZ, tp->block, UINT64_C(1) << 40, 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -ENOSPC);
	assert_int_equal(file_size(tp->pmem), 0);
	assert_false(file_exists(tp->block));
	vems_config_delete(&cfg);

	/* a block size set before a larger extent size holds no extent */
	cfg = cfg_sized(PMEM_SZ, tp->block, 64 * KIB, 0);
	TU_OK(vems_config_set_extent_size(cfg, 2 * MIB));
	unlink(tp->pmem);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EINVAL);
	assert_false(file_exists(tp->pmem));
	assert_false(file_exists(tp->block));
	vems_config_delete(&cfg);

	/* and the paths are usable afterwards */
	create_at(tp);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	tu_destroy(tp);
}

static void
test_create_long_block_path(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	struct vems_pool_info info;
	char blk[PATH_MAX];
	tu_paths(tp, "clong");

	const char *dir = longpath_make(&fx_lp, 900);

	/* 901 bytes: refused before anything is created */
	longpath_file(blk, dir, 901);
	track(blk);
	struct vems_config *cfg = cfg_sized(PMEM_SZ, blk, BLOCK_SZ, 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -ENAMETOOLONG);
	assert_null(p);
	assert_false(file_exists(tp->pmem));
	assert_false(file_exists(blk));
	vems_config_delete(&cfg);

	/* far longer than the layout, still shorter than PATH_MAX */
	char far[3001];
	memset(far, 'x', sizeof(far) - 1);
	far[0] = '/';
	far[sizeof(far) - 1] = '\0';
	cfg = cfg_sized(PMEM_SZ, far, BLOCK_SZ, 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -ENAMETOOLONG);
	assert_false(file_exists(tp->pmem));
	vems_config_delete(&cfg);

	/* relative: its absolute form (cwd + "/" + name) is what counts */
	int cwd = open(".", O_RDONLY | O_DIRECTORY);
	assert_true(cwd >= 0);
	assert_int_equal(chdir(dir), 0);
	char here[PATH_MAX];
	assert_non_null(getcwd(here, sizeof(here)));
	size_t rel_len = 901 - strlen(here) - 1;
	char rel[PATH_MAX];
	memset(rel, 'r', rel_len);
	rel[rel_len] = '\0';
	char relabs[2 * PATH_MAX + 2];
	snprintf(relabs, sizeof(relabs), "%s/%s", here, rel);
	track(relabs);
	cfg = cfg_sized(PMEM_SZ, rel, BLOCK_SZ, 0);
	prime_errormsg();
	int r = vems_pool_create(&p, tp->pmem, cfg);
	int exists_rel = file_exists(rel);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	vems_config_delete(&cfg);
	assert_int_equal(r, -ENAMETOOLONG);
	assert_false(exists_rel);
	assert_false(file_exists(tp->pmem));

	/* exactly 900 bytes: fits, and survives reopen */
	longpath_file(blk, dir, 900);
	track(blk);
	cfg = cfg_sized(PMEM_SZ, blk, BLOCK_SZ, 0);
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
	TU_OK(vems_pool_info(tp->pool, &info));
	assert_string_equal(info.block_path, blk);
	tu_reopen(tp);
	TU_OK(vems_pool_info(tp->pool, &info));
	assert_string_equal(info.block_path, blk);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	TU_OK(vems_pool_close(&tp->pool));
	unlink(blk);
	tu_destroy(tp);
	longpath_remove(&fx_lp);
}

static void
test_create_info(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool_info info, info2;
	struct vems_pool_stats st;
	tu_paths(tp, "cinfo");
	/* 10 MiB + 5000 bytes: rounded down to 80 whole 128 KiB extents */
	struct vems_config *cfg =
		cfg_sized(32 * MIB, tp->block, 10 * MIB + 5000, 128 * KIB);
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);

	TU_OK(vems_pool_info(tp->pool, &info));
	assert_int_equal(info.format_version, VEMS_FORMAT_VERSION);
	assert_int_equal(info.page_size, VEMS_PAGE_SIZE);
	assert_int_equal(info.extent_size, 128 * KIB);
	assert_int_equal(info.pmem_size, 32 * MIB);
	assert_true(info.pmem_extents > 0);
	assert_true(info.pmem_extents * info.extent_size < info.pmem_size);
	/* the metadata must not eat most of the pool */
	assert_true(info.pmem_extents * info.extent_size >= 16 * MIB);
	assert_int_equal(info.block_extents, 80);
	assert_int_equal(info.block_size, 80 * 128 * KIB);
	assert_string_equal(info.pmem_path, tp->pmem);
	assert_string_equal(info.block_path, tp->block);
	assert_non_null(info.block_io);
	/* tmpfs takes O_DIRECT and still caches: never direct there */
	if (strncmp(tp->block, "/dev/shm/", 9) == 0)
		assert_string_equal(info.block_io, "buffered+fdatasync");
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	if (force && strcmp(force, "1") == 0)
		assert_int_equal(info.is_pmem, 1);
	/* a random (version 4) UUID */
	assert_int_equal(info.uuid[6] >> 4, 4);
	assert_int_equal(info.uuid[8] >> 6, 2);

	/* the files are as large as the info says */
	assert_int_equal(file_size(tp->pmem), 32 * MIB);
	assert_int_equal(file_size(tp->block), 4096 + 80 * 128 * KIB);

	TU_OK(vems_pool_stats(tp->pool, &st));
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.names, 0);
	assert_int_equal(st.pmem_bytes_used, 0);
	assert_int_equal(st.pmem_bytes_free,
			 info.pmem_extents * info.extent_size);
	assert_int_equal(st.block_bytes_used, 0);
	assert_int_equal(st.block_bytes_free, info.block_size);
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);

	/* the same facts after reopen */
	tu_reopen(tp);
	TU_OK(vems_pool_info(tp->pool, &info2));
	assert_memory_equal(info.uuid, info2.uuid, 16);
	assert_int_equal(info2.extent_size, info.extent_size);
	assert_int_equal(info2.pmem_extents, info.pmem_extents);
	assert_int_equal(info2.block_extents, info.block_extents);
	assert_int_equal(info2.pmem_size, info.pmem_size);
	assert_string_equal(info2.block_path, tp->block);

	/* info with NULL arguments */
	EXPECT_ERR(vems_pool_info(NULL, &info), -EINVAL);
	EXPECT_ERR(vems_pool_info(tp->pool, NULL), -EINVAL);
	tu_destroy(tp);
}

static void
test_create_uuids_differ(void **state)
{
	(void)state;
	struct tu_pool *a = &fx_pools[0], *b = &fx_pools[1];
	struct vems_pool_info ia, ib;
	tu_create(a, "cuuid", PMEM_SZ, BLOCK_SZ, 0);
	tu_create(b, "cuuid", PMEM_SZ, BLOCK_SZ, 0);
	TU_OK(vems_pool_info(a->pool, &ia));
	TU_OK(vems_pool_info(b->pool, &ib));
	assert_memory_not_equal(ia.uuid, ib.uuid, 16);
	tu_destroy(a);
	tu_destroy(b);
}

static void
test_create_default_block_path(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool_info info;
	char defblk[600];
	tu_paths(tp, "cdefblk");
	snprintf(defblk, sizeof(defblk), "%s.blk", tp->pmem);

	struct vems_config *cfg = cfg_sized(PMEM_SZ, NULL, 0, 0);
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
	TU_OK(vems_pool_info(tp->pool, &info));
	assert_string_equal(info.block_path, defblk);
	assert_true(file_exists(defblk));
	assert_int_equal(info.block_size, 8 * PMEM_SZ);
	assert_int_equal(file_size(defblk), 4096 + 8 * PMEM_SZ);
	tu_reopen(tp);
	TU_OK(vems_pool_info(tp->pool, &info));
	assert_string_equal(info.block_path, defblk);
	tu_destroy(tp);
	unlink(defblk);

	/*
	 * A relative pmem path: the recorded block path is absolute, so the
	 * pool opens from any working directory.
	 */
	struct tu_pool *rp = &fx_pools[2];
	letter_paths(rp, "crel");
	const char *name = strrchr(rp->pmem, '/') + 1;
	char dir[600], absblk[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%.*s", (int)(name - rp->pmem - 1),
		 rp->pmem);
	int cwd = open(".", O_RDONLY | O_DIRECTORY);
	assert_true(cwd >= 0);
	assert_int_equal(chdir(dir), 0);
	char here[PATH_MAX];
	assert_non_null(getcwd(here, sizeof(here)));
	snprintf(absblk, sizeof(absblk), "%s/%s.blk", here, name);
	track(absblk);
	cfg = cfg_sized(PMEM_SZ, NULL, BLOCK_SZ, 0);
	int r = vems_pool_create(&rp->pool, name, cfg);
	vems_config_delete(&cfg);
	int r2 = r ? r : vems_pool_close(&rp->pool);
	assert_int_equal(chdir("/"), 0);
	if (r == 0)
		r2 = vems_pool_open(&rp->pool, rp->pmem, NULL);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	assert_int_equal(r, 0);
	assert_int_equal(r2, 0);
	TU_OK(vems_pool_info(rp->pool, &info));
	assert_string_equal(info.block_path, absblk);
	assert_int_equal(vems_pool_check(rp->pool, NULL, NULL), 0);
	TU_OK(vems_pool_close(&rp->pool));
	unlink(rp->pmem);
	unlink(absblk);
}

/* --- open ------------------------------------------------------------ */

static void
test_open_null_args(void **state)
{
	(void)state;
	struct vems_pool *p = (struct vems_pool *)(uintptr_t)1;
	EXPECT_ERR(vems_pool_open(NULL, "/dev/null", NULL), -EINVAL);
	EXPECT_ERR(vems_pool_open(&p, NULL, NULL), -EINVAL);
	EXPECT_ERR(vems_pool_open(&p, "", NULL), -EINVAL);
}

static void
test_open_nonexistent(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = (struct vems_pool *)(uintptr_t)1;
	tu_paths(tp, "onoent");
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), -ENOENT);
	assert_null(p);
	assert_false(file_exists(tp->pmem));
	assert_false(file_exists(tp->block));
}

static void
test_open_random_file(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = (struct vems_pool *)(uintptr_t)1;
	tu_paths(tp, "orand");

	write_random_file(tp->pmem, PMEM_SZ, 21);
	uint64_t d = tu_file_digest(tp->pmem);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_null(p);
	assert_true(tu_file_digest(tp->pmem) == d);

	/* libpmemobj's signature, then garbage */
	pwrite_file(tp->pmem, 0, "PMEMOBJ", 8);
	d = tu_file_digest(tp->pmem);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_true(tu_file_digest(tp->pmem) == d);

	/* a few bytes only */
	write_random_file(tp->pmem, 100, 22);
	d = tu_file_digest(tp->pmem);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_true(tu_file_digest(tp->pmem) == d);
	assert_false(file_exists(tp->block));
	tu_destroy(tp);
}

static void
test_open_empty_file(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	tu_paths(tp, "oempty");
	write_file(tp->pmem, "", 0);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_null(p);
	assert_int_equal(file_size(tp->pmem), 0);
	/* the refused open left no registration behind: create works */
	struct vems_config *cfg = cfg_sized(PMEM_SZ, tp->block, BLOCK_SZ, 0);
	TU_OK(vems_pool_create(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
	tu_destroy(tp);
}

static void
test_open_foreign_pmemobj(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	tu_paths(tp, "oforeign");

	PMEMobjpool *pop = pmemobj_create(tp->pmem, "some-other-application",
					  PMEM_SZ, 0600);
	assert_non_null(pop);
	pmemobj_close(pop);
	uint64_t d = tu_file_digest(tp->pmem);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_null(p);
	assert_true(tu_file_digest(tp->pmem) == d);
	/* and create refuses to overwrite it */
	struct vems_config *cfg = cfg_sized(PMEM_SZ, tp->block, BLOCK_SZ, 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EEXIST);
	assert_true(tu_file_digest(tp->pmem) == d);
	assert_false(file_exists(tp->block));
	unlink(tp->pmem);

	/* our prefix, but not our fields */
	pop = pmemobj_create(tp->pmem, "libvems fmt=5 nothing else", PMEM_SZ,
			     0600);
	assert_non_null(pop);
	pmemobj_close(pop);
	d = tu_file_digest(tp->pmem);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_CORRUPT);
	assert_true(tu_file_digest(tp->pmem) == d);
	vems_config_delete(&cfg);
	tu_destroy(tp);
}

static void
test_open_truncated_pool(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0], *cp = &fx_pools[1];
	struct vems_pool *p = NULL;
	struct digests dg;
	struct vems_oid oid = make_closed_pool(tp, "otrunc");
	snap(tp, &dg);
	tu_paths(cp, "otrunccopy");

	/* half the file */
	copy_file(tp->pmem, cp->pmem, PMEM_SZ / 2);
	uint64_t d = tu_file_digest(cp->pmem);
	EXPECT_ERR(vems_pool_open(&p, cp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_null(p);
	assert_true(tu_file_digest(cp->pmem) == d);
	assert_int_equal(file_size(cp->pmem), PMEM_SZ / 2);
	assert_unchanged(tp, &dg);
	unlink(cp->pmem);

	/* all but the last page */
	copy_file(tp->pmem, cp->pmem, PMEM_SZ - 4096);
	d = tu_file_digest(cp->pmem);
	EXPECT_ERR(vems_pool_open(&p, cp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_true(tu_file_digest(cp->pmem) == d);
	unlink(cp->pmem);

	/* cut inside the layout name */
	copy_file(tp->pmem, cp->pmem, LAYOUT_OFF + 100);
	d = tu_file_digest(cp->pmem);
	EXPECT_ERR(vems_pool_open(&p, cp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_true(tu_file_digest(cp->pmem) == d);
	unlink(cp->pmem);

	/* grown by a page: not the size the pool was made with either */
	copy_file(tp->pmem, cp->pmem, PMEM_SZ);
	assert_int_equal(truncate(cp->pmem, PMEM_SZ + 4096), 0);
	d = tu_file_digest(cp->pmem);
	EXPECT_ERR(vems_pool_open(&p, cp->pmem, NULL), VEMS_E_NOTPOOL);
	assert_true(tu_file_digest(cp->pmem) == d);
	unlink(cp->pmem);

	assert_unchanged(tp, &dg);
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	verify_pool(tp->pool, oid);
	tu_destroy(tp);
}

static void
test_open_format_version(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	struct digests dg;
	char lay[sizeof(LAYOUT_FMT)];
	struct vems_oid oid = make_closed_pool(tp, "ofmt");

	pread_file(tp->pmem, LAYOUT_OFF, lay, sizeof(LAYOUT_FMT) - 1);
	lay[sizeof(LAYOUT_FMT) - 1] = '\0';
	assert_string_equal(lay, LAYOUT_FMT);
	/* a pool of the previous format (4) */
	pwrite_file(tp->pmem, LAYOUT_OFF + sizeof(LAYOUT_FMT) - 2, "4", 1);
	snap(tp, &dg);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_VERSION);
	assert_null(p);
	assert_unchanged(tp, &dg);
	/* twice: the refused open left nothing behind (lock, registry) */
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_VERSION);
	assert_unchanged(tp, &dg);

	/* fmt=10 is not fmt=5 either */
	pwrite_file(tp->pmem, LAYOUT_OFF + sizeof(LAYOUT_FMT) - 2, "10", 2);
	snap(tp, &dg);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_VERSION);
	assert_unchanged(tp, &dg);

	/* that byte was the only difference */
	pwrite_file(tp->pmem, LAYOUT_OFF + sizeof(LAYOUT_FMT) - 2, "5 ", 2);
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	verify_pool(tp->pool, oid);
	tu_destroy(tp);
}

static void
test_open_foreign_block(void **state)
{
	(void)state;
	struct tu_pool *a = &fx_pools[0], *b = &fx_pools[1];
	struct vems_pool *p = NULL;
	struct digests da, db;
	struct vems_config *cfg;
	struct vems_oid oa = make_closed_pool(a, "oblka");
	struct vems_oid ob = make_closed_pool(b, "oblkb");
	snap(a, &da);
	snap(b, &db);

	/* through the config override */
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_block_path(cfg, b->block));
	EXPECT_ERR(vems_pool_open(&p, a->pmem, cfg), VEMS_E_MISMATCH);
	assert_null(p);
	assert_unchanged(a, &da);
	assert_unchanged(b, &db);

	/* through the recorded path: b's block file moved into a's place */
	char saved[600];
	snprintf(saved, sizeof(saved), "%s.saved", a->block);
	track(saved);
	assert_int_equal(rename(a->block, saved), 0);
	assert_int_equal(link(b->block, a->block), 0);
	EXPECT_ERR(vems_pool_open(&p, a->pmem, NULL), VEMS_E_MISMATCH);
	assert_null(p);
	assert_true(tu_file_digest(a->pmem) == da.pmem);
	assert_unchanged(b, &db);
	assert_int_equal(rename(saved, a->block), 0);
	assert_unchanged(a, &da);

	/* a's own block file through the override is fine */
	TU_OK(vems_config_set_block_path(cfg, a->block));
	TU_OK(vems_pool_open(&a->pool, a->pmem, cfg));
	verify_pool(a->pool, oa);
	TU_OK(vems_pool_open(&b->pool, b->pmem, NULL));
	verify_pool(b->pool, ob);
	vems_config_delete(&cfg);
	tu_destroy(a);
	tu_destroy(b);
}

static void
test_open_missing_block(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	struct vems_pool_info info;
	struct vems_config *cfg;
	char moved[600];
	struct vems_oid oid = make_closed_pool(tp, "omissblk");
	snprintf(moved, sizeof(moved), "%s.moved", tp->block);
	track(moved);
	assert_int_equal(rename(tp->block, moved), 0);

	uint64_t d = tu_file_digest(tp->pmem);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), -ENOENT);
	assert_null(p);
	assert_true(tu_file_digest(tp->pmem) == d);
	assert_false(file_exists(tp->block));

	/* a moved block file is found through the override */
	TU_OK(vems_config_new(&cfg));
	TU_OK(vems_config_set_block_path(cfg, moved));
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, cfg));
	vems_config_delete(&cfg);
	TU_OK(vems_pool_info(tp->pool, &info));
	assert_string_equal(info.block_path, moved);
	verify_pool(tp->pool, oid);
	TU_OK(vems_pool_close(&tp->pool));
	unlink(moved);
	tu_destroy(tp);
}

static void
test_open_block_bad_checksum(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	struct digests dg;
	struct vems_oid oid = make_closed_pool(tp, "obadcsum");

	/* the checksum itself */
	flip_byte(tp->block, BLOCK_CSUM_OFF);
	snap(tp, &dg);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_CORRUPT);
	assert_null(p);
	assert_unchanged(tp, &dg);
	flip_byte(tp->block, BLOCK_CSUM_OFF);

	/* a byte it covers (a reserved one: only the checksum sees it) */
	flip_byte(tp->block, 80);
	snap(tp, &dg);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_CORRUPT);
	assert_unchanged(tp, &dg);
	flip_byte(tp->block, 80);

	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	verify_pool(tp->pool, oid);
	tu_destroy(tp);
}

static void
test_open_block_truncated(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	struct digests dg;
	struct vems_oid oid = make_closed_pool(tp, "oblktrunc");
	uint64_t full = file_size(tp->block);
	assert_int_equal(full, 4096 + BLOCK_SZ);

	/* half the slots gone */
	assert_int_equal(truncate(tp->block, 4096 + BLOCK_SZ / 2), 0);
	snap(tp, &dg);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_CORRUPT);
	assert_null(p);
	assert_unchanged(tp, &dg);
	assert_int_equal(file_size(tp->block), 4096 + BLOCK_SZ / 2);

	/* the header only */
	assert_int_equal(truncate(tp->block, 4096), 0);
	snap(tp, &dg);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), VEMS_E_CORRUPT);
	assert_unchanged(tp, &dg);

	/* the data was never written to the block file: growing it back
	 * (zeros) restores a valid pool */
	assert_int_equal(truncate(tp->block, (off_t)full), 0);
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	verify_pool(tp->pool, oid);
	tu_destroy(tp);
}

static void
test_open_busy_same_process(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = (struct vems_pool *)(uintptr_t)1;
	letter_paths(tp, "obusy");
	create_at(tp);

	/* still open from create */
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), -EBUSY);
	assert_null(p);
	assert_true(has_number(vems_errormsg(), (long)getpid()));

	/* and from open */
	tu_reopen(tp);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), -EBUSY);
	assert_true(has_number(vems_errormsg(), (long)getpid()));

	/* another name of the same file */
	char alias[600];
	snprintf(alias, sizeof(alias), "%s.alias", tp->pmem);
	track(alias);
	assert_int_equal(link(tp->pmem, alias), 0);
	EXPECT_ERR(vems_pool_open(&p, alias, NULL), -EBUSY);
	unlink(alias);

	/* the refused attempts did not hurt the open handle */
	struct vems_oid oid = {1, 0};
	TU_OK(vems_obj_create(tp->pool, &oid));
	TU_OK(vems_name_bind(tp->pool, "x", oid));
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);

	/* once closed, it opens again */
	TU_OK(vems_pool_close(&tp->pool));
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	struct vems_oid got;
	TU_OK(vems_name_lookup(tp->pool, "x", &got));
	assert_int_equal(got.id, oid.id);
	tu_destroy(tp);
}

/* Reads exactly len bytes or returns -1 (EOF or error). */
static int
read_full(int fd, void *buf, size_t len)
{
	uint8_t *b = buf;
	while (len > 0) {
		ssize_t n = read(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
test_open_busy_other_process(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	int ready[2], release[2];
	letter_paths(tp, "obusyproc");
	create_at(tp);
	TU_OK(vems_pool_close(&tp->pool));

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* the child: open, report, wait, close. No cmocka here. */
		struct vems_pool *kid_pool = NULL;
		close(ready[0]);
		close(release[1]);
		int r = vems_pool_open(&kid_pool, tp->pmem, NULL);
		if (write(ready[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(2);
		char c;
		(void)read_full(release[0], &c, 1); /* or EOF: parent died */
		if (r == 0 && vems_pool_close(&kid_pool) != 0)
			_exit(3);
		_exit(r == 0 ? 0 : 1);
	}
	close(ready[1]);
	close(release[0]);
	int cr = -1;
	assert_int_equal(read_full(ready[0], &cr, sizeof(cr)), 0);
	close(ready[0]);
	if (cr != 0)
		fail_msg("child could not open the pool: %d (%s)", cr,
			 vems_strerror(cr));

	struct digests dg;
	snap(tp, &dg);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), -EBUSY);
	assert_null(p);
	if (!has_number(vems_errormsg(), (long)child))
		fail_msg("message does not name child pid %d: %s", (int)child,
			 vems_errormsg());
	/* create refuses too, and nothing was written */
	struct vems_config *cfg = cfg_sized(PMEM_SZ, NULL, BLOCK_SZ, 0);
	EXPECT_ERR(vems_pool_create(&p, tp->pmem, cfg), -EEXIST);
	vems_config_delete(&cfg);
	assert_unchanged(tp, &dg);

	assert_int_equal(write(release[1], "x", 1), 1);
	close(release[1]);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* the child is gone: the pool is ours now */
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	tu_destroy(tp);
}

/*
 * The other direction: this process holds the pool (and has just been
 * refused a second open of it, which must not drop its lock), a child
 * process tries to open it and must be told this process's pid.
 */
struct childres {
	int ret;
	char msg[512];
};

static void
test_open_busy_seen_from_child(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool *p = NULL;
	int res[2];
	letter_paths(tp, "obusychild");
	create_at(tp);
	EXPECT_ERR(vems_pool_open(&p, tp->pmem, NULL), -EBUSY);

	assert_int_equal(pipe(res), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct childres cres;
		struct vems_pool *kid_pool = NULL;
		close(res[0]);
		memset(&cres, 0, sizeof(cres));
		cres.ret = vems_pool_open(&kid_pool, tp->pmem, NULL);
		snprintf(cres.msg, sizeof(cres.msg), "%s", vems_errormsg());
		if (write(res[1], &cres, sizeof(cres)) != (ssize_t)sizeof(cres))
			_exit(2);
		if (cres.ret == 0)
			vems_pool_close(&kid_pool);
		_exit(0);
	}
	close(res[1]);
	struct childres cres = {.ret = 1};
	assert_int_equal(read_full(res[0], &cres, sizeof(cres)), 0);
	close(res[0]);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(cres.ret, -EBUSY);
	/* the message names the holder (this process), not the child */
	if (!has_number(cres.msg, (long)getpid()))
		fail_msg("child %d was refused with \"%s\", which does not "
			 "name the holder, pid %d",
			 (int)child, cres.msg, (int)getpid());

	assert_int_equal(vems_pool_check(tp->pool, NULL, NULL), 0);
	tu_destroy(tp);
}

static void
test_reopen_cycles(void **state)
{
	(void)state;
	struct tu_pool *tp = &fx_pools[0];
	struct vems_pool_info info, info2;
	struct vems_pool_stats st;
	struct vems_oid oid = make_closed_pool(tp, "reopen");
	TU_OK(vems_pool_open(&tp->pool, tp->pmem, NULL));
	TU_OK(vems_pool_info(tp->pool, &info));
	for (int i = 0; i < 5; i++) {
		verify_pool(tp->pool, oid);
		TU_OK(vems_pool_stats(tp->pool, &st));
		assert_int_equal(st.objects, 1);
		assert_int_equal(st.names, 1);
		tu_reopen(tp);
		TU_OK(vems_pool_info(tp->pool, &info2));
		assert_memory_equal(info.uuid, info2.uuid, 16);
		assert_int_equal(info.pmem_extents, info2.pmem_extents);
	}
	verify_pool(tp->pool, oid);
	tu_destroy(tp);
}

static void
test_close_null(void **state)
{
	(void)state;
	struct vems_pool *p = NULL;
	assert_int_equal(vems_pool_close(NULL), 0);
	assert_int_equal(vems_pool_close(&p), 0);
	assert_null(p);

	struct tu_pool *tp = &fx_pools[0];
	tu_create(tp, "closenull", PMEM_SZ, BLOCK_SZ, 0);
	assert_int_equal(vems_pool_close(&tp->pool), 0);
	assert_null(tp->pool);
	assert_int_equal(vems_pool_close(&tp->pool), 0);
	tu_destroy(tp);
}

/*
 * The block I/O mode is decided at open: O_DIRECT on a disk file system
 * (probed), buffered on tmpfs, and what the config asks for.
 */
static void
test_block_io_mode(void **state)
{
	(void)state;
	static const struct {
		const char *dir;
		unsigned flags;
		const char *want; /* NULL: direct or buffered, both fine */
	} cases[] = {
		{"/dev/shm", 0, "buffered+fdatasync"},
		{"/dev/shm", VEMS_BLOCK_DSYNC, "buffered+dsync"},
		{"/var/tmp", VEMS_BLOCK_BUFFERED, "buffered+fdatasync"},
		{"/var/tmp", 0, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (access(cases[i].dir, W_OK) != 0)
			continue;
		struct tu_pool tp;
		tu_paths(&tp, "iomode");
		snprintf(tp.block, sizeof(tp.block),
			 "%s/vemstest-iomode-%d.blk", cases[i].dir,
			 (int)getpid());
		unlink(tp.block);
		struct vems_config *cfg;
		TU_OK(vems_config_new(&cfg));
		TU_OK(vems_config_set_pmem_size(cfg, 16 * MIB));
		TU_OK(vems_config_set_block_path(cfg, tp.block));
		TU_OK(vems_config_set_block_io(cfg, cases[i].flags));
		TU_OK(vems_pool_create(&tp.pool, tp.pmem, cfg));
		struct vems_pool_info info;
		TU_OK(vems_pool_info(tp.pool, &info));
		if (cases[i].want)
			assert_string_equal(info.block_io, cases[i].want);
		else
			assert_true(strcmp(info.block_io, "direct+fdatasync") ==
					    0 ||
				    strcmp(info.block_io,
					   "buffered+fdatasync") == 0);
		/* data goes through the block file either way */
		struct vems_oid oid = {1, 0};
		struct vems_obj *o;
		TU_OK(vems_obj_create(tp.pool, &oid));
		TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
		uint8_t *buf = malloc(MIB);
		for (uint64_t off = 0; off < 24 * MIB; off += MIB) {
			tu_fill(buf, MIB, 3, off);
			assert_int_equal(vems_obj_pwrite(o, buf, MIB, off, 0),
					 (ssize_t)MIB);
		}
		vems_obj_close(&o);
		TU_OK(vems_pool_close(&tp.pool));
		TU_OK(vems_pool_open(&tp.pool, tp.pmem, cfg));
		TU_OK(vems_pool_info(tp.pool, &info));
		if (cases[i].want)
			assert_string_equal(info.block_io, cases[i].want);
		TU_OK(vems_obj_open(tp.pool, oid, 0, &o));
		for (uint64_t off = 0; off < 24 * MIB; off += MIB) {
			assert_int_equal(vems_obj_pread(o, buf, MIB, off),
					 (ssize_t)MIB);
			assert_true(tu_verify(buf, MIB, 3, off));
		}
		vems_obj_close(&o);
		assert_int_equal(vems_pool_check(tp.pool, NULL, NULL), 0);
		free(buf);
		vems_config_delete(&cfg);
		tu_destroy(&tp);
	}
	/* unknown flags are refused at once */
	struct vems_config *cfg;
	TU_OK(vems_config_new(&cfg));
	assert_int_equal(vems_config_set_block_io(cfg, 1u << 7), -EINVAL);
	assert_int_equal(vems_config_set_block_io(NULL, 0), -EINVAL);
	assert_int_equal(vems_config_set_low_watermark(cfg, 51), -EINVAL);
	assert_int_equal(vems_config_set_low_watermark(NULL, 5), -EINVAL);
	TU_OK(vems_config_set_low_watermark(cfg, 0));
	TU_OK(vems_config_set_low_watermark(cfg, 50));
	vems_config_delete(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_create_null_args, teardown),
		cmocka_unit_test_teardown(test_create_no_size, teardown),
		cmocka_unit_test_teardown(test_create_existing_pmem, teardown),
		cmocka_unit_test_teardown(test_create_existing_block, teardown),
		cmocka_unit_test_teardown(test_create_empty_pmem_file,
					  teardown),
		cmocka_unit_test_teardown(test_create_too_small, teardown),
		cmocka_unit_test_teardown(test_create_long_block_path,
					  teardown),
		cmocka_unit_test_teardown(test_create_info, teardown),
		cmocka_unit_test_teardown(test_create_uuids_differ, teardown),
		cmocka_unit_test_teardown(test_create_default_block_path,
					  teardown),
		cmocka_unit_test_teardown(test_open_null_args, teardown),
		cmocka_unit_test_teardown(test_open_nonexistent, teardown),
		cmocka_unit_test_teardown(test_open_random_file, teardown),
		cmocka_unit_test_teardown(test_open_empty_file, teardown),
		cmocka_unit_test_teardown(test_open_foreign_pmemobj, teardown),
		cmocka_unit_test_teardown(test_open_truncated_pool, teardown),
		cmocka_unit_test_teardown(test_open_format_version, teardown),
		cmocka_unit_test_teardown(test_open_foreign_block, teardown),
		cmocka_unit_test_teardown(test_open_missing_block, teardown),
		cmocka_unit_test_teardown(test_open_block_bad_checksum,
					  teardown),
		cmocka_unit_test_teardown(test_open_block_truncated, teardown),
		cmocka_unit_test_teardown(test_open_busy_same_process,
					  teardown),
		cmocka_unit_test_teardown(test_open_busy_other_process,
					  teardown),
		cmocka_unit_test_teardown(test_open_busy_seen_from_child,
					  teardown),
		cmocka_unit_test_teardown(test_reopen_cycles, teardown),
		cmocka_unit_test_teardown(test_close_null, teardown),
		cmocka_unit_test(test_block_io_mode),
	};
	fx_cwd = open(".", O_RDONLY | O_DIRECTORY);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
