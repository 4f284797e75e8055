/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_names.c -- libFuzzer target: the namespace against a DRAM model
 *
 * One pool is created at start with three objects. Each input is a list of
 * namespace operations on arbitrary byte strings (0 to VEMS_NAME_MAX + 1
 * bytes, embedded NULs, any bytes at all); every result is compared with a
 * model of what the namespace must hold: a bound name is found with its
 * object, an unbound one is not, lists are sorted and complete, errors are
 * the documented ones. At the end of each input every name is unbound
 * again, so inputs do not depend on each other.
 *
 * FORMAT: a sequence of operations, each
 *   byte op      bits 0-2: 0 bind, 1 lookup, 2 unbind, 3 rename,
 *                4 list (prefix), 5 list (NULL prefix), 6 or 7 lookup
 *                every model name, except that the byte 0x06 exactly
 *                reopens the pool and checks every model name (a reopen
 *                costs milliseconds, so it is kept rare);
 *                bits 3-4: the object (0-2, 3: one that does not exist);
 *                bit 5: the first name is a bound one (next byte picks it)
 *   name         u16 length (taken modulo VEMS_NAME_MAX + 2), then that
 *                many bytes (clipped at the input's end); a NUL is added,
 *                so an embedded NUL shortens the name as a C string does
 *   rename takes a second name after the first. At most MAX_OPS
 *   operations are run per input.
 */

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "vems_internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_LSAN 1
#endif
#elif defined(__SANITIZE_ADDRESS__)
#define FZ_LSAN 1
#endif
#ifdef FZ_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/*
 * libpmemobj keeps pointers to its DRAM runtime inside the pool's mapping,
 * which LeakSanitizer does not scan: while the pool stays open between
 * inputs, that runtime would be reported as leaked. The mapping is
 * registered as a root region while the pool is open.
 */
static void
lsan_roots(struct vems_pool *p, bool on)
{
#ifdef FZ_LSAN
	struct vems_pool_info info;
	FZ_SETUP(vems_pool_info(p, &info) == 0, "info");
	if (on)
		__lsan_register_root_region(p->pop, info.pmem_size);
	else
		__lsan_unregister_root_region(p->pop, info.pmem_size);
#else
	(void)p;
	(void)on;
#endif
}

#define MAX_MODEL 512
#define MAX_OPS 64 /* per input */

struct ment {
	char *name;
	struct vems_oid oid;
};

static struct vems_pool *pool;
static char pool_path[4096], blk_path[4096];
static struct vems_oid objs[4];
static struct ment model[MAX_MODEL];
static int nmodel;
static struct vems_config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("PMEM_IS_PMEM_FORCE", "1", 0);
	FZ_SETUP((size_t)snprintf(pool_path, sizeof(pool_path), "%s/names.pool",
				  fz_dir()) < sizeof(pool_path) &&
			 (size_t)snprintf(blk_path, sizeof(blk_path),
					  "%s/names.blk",
					  fz_dir()) < sizeof(blk_path),
		 "path too long");
	FZ_SETUP(vems_config_new(&cfg) == 0, "config");
	/* 32 MiB: a 16 MiB pool cannot bind names past ~100 bytes */
	vems_config_set_pmem_size(cfg, 2 * VEMS_PMEM_MIN_SIZE);
	vems_config_set_block_path(cfg, blk_path);
	vems_config_set_block_size(cfg, 1 << 20);
	vems_config_set_low_watermark(cfg, 0);
	FZ_SETUP(vems_pool_create(&pool, pool_path, cfg) == 0, "create");
	lsan_roots(pool, true);
	struct vems_oid want[3] = {{0, 1}, {0, 2}, {5, 77}};
	for (int i = 0; i < 3; i++) {
		objs[i] = want[i];
		FZ_SETUP(vems_obj_create(pool, &objs[i]) == 0, "obj");
	}
	objs[3] = (struct vems_oid){9, 9}; /* never created */
	return 0;
}

static int
mfind(const char *name)
{
	for (int i = 0; i < nmodel; i++)
		if (strcmp(model[i].name, name) == 0)
			return i;
	return -1;
}

static void
madd(const char *name, struct vems_oid oid)
{
	FZ_SETUP(nmodel < MAX_MODEL, "model full");
	model[nmodel].name = strdup(name);
	FZ_SETUP(model[nmodel].name != NULL, "strdup");
	model[nmodel++].oid = oid;
}

static void
mdel(int i)
{
	free(model[i].name);
	model[i] = model[--nmodel];
}

static bool
same(struct vems_oid a, struct vems_oid b)
{
	return a.partition == b.partition && a.id == b.id;
}

/* The error a well-formed call must give for this name, or 0. */
static int
name_error(const char *name)
{
	size_t len = strlen(name);
	if (len == 0)
		return -EINVAL;
	if (len > VEMS_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* Reads a name at *pos into buf (NUL-terminated); false at the end. */
static bool
get_name(const uint8_t *d, size_t size, size_t *pos, char *buf)
{
	if (*pos + 2 > size)
		return false;
	size_t len = (d[*pos] | (size_t)d[*pos + 1] << 8) % (VEMS_NAME_MAX + 2);
	*pos += 2;
	if (len > size - *pos)
		len = size - *pos;
	memcpy(buf, d + *pos, len);
	buf[len] = '\0';
	*pos += len;
	return true;
}

struct listing {
	const char *prefix;
	char *last;
	int n;
};

static int
list_cb(const char *name, const struct vems_oid *oid, void *arg)
{
	struct listing *l = arg;
	size_t plen = l->prefix ? strlen(l->prefix) : 0;
	FZ_CHECK(plen == 0 || strncmp(name, l->prefix, plen) == 0,
		 "listed \"%.40s\" lacks the prefix", name);
	int i = mfind(name);
	FZ_CHECK(i >= 0, "listed \"%.40s\" is not bound", name);
	FZ_CHECK(same(model[i].oid, *oid), "listed \"%.40s\": other object",
		 name);
	FZ_CHECK(l->last == NULL || strcmp(l->last, name) < 0,
		 "list not in byte order at \"%.40s\"", name);
	free(l->last);
	l->last = strdup(name);
	l->n++;
	return 0;
}

static void
check_list(const char *prefix)
{
	struct listing l = {prefix, NULL, 0};
	int r = vems_name_list(pool, prefix, list_cb, &l);
	free(l.last);
	FZ_CHECK(r == 0, "list = %d", r);
	size_t plen = prefix ? strlen(prefix) : 0;
	int want = 0;
	for (int i = 0; i < nmodel; i++)
		want += strncmp(model[i].name, prefix ? prefix : "", plen) == 0;
	FZ_CHECK(l.n == want, "list of %zu-byte prefix: %d names, model %d",
		 plen, l.n, want);
}

static void
check_lookup(const char *name)
{
	struct vems_oid got = {~0ull, ~0ull};
	int r = vems_name_lookup(pool, name, &got);
	int i = mfind(name), err = name_error(name);
	if (err)
		FZ_CHECK(r == err, "lookup of a bad name = %d, want %d", r,
			 err);
	else if (i < 0)
		FZ_CHECK(r == -ENOENT, "lookup of unbound \"%.40s\" = %d", name,
			 r);
	else
		FZ_CHECK(r == 0 && same(got, model[i].oid),
			 "lookup of bound \"%.40s\" = %d", name, r);
}

static void
reopen(void)
{
	lsan_roots(pool, false);
	FZ_CHECK(vems_pool_close(&pool) == 0, "close");
	struct vems_config *c;
	FZ_SETUP(vems_config_new(&c) == 0, "config");
	vems_config_set_block_path(c, blk_path);
	vems_config_set_low_watermark(c, 0);
	int r = vems_pool_open(&pool, pool_path, c);
	vems_config_delete(&c);
	FZ_CHECK(r == 0, "reopen = %d", r);
	lsan_roots(pool, true);
	FZ_CHECK(vems_pool_check(pool, NULL, NULL) == 0, "check after reopen");
	for (int i = 0; i < nmodel; i++)
		check_lookup(model[i].name);
	check_list(NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[VEMS_NAME_MAX + 2], b[VEMS_NAME_MAX + 2];
	size_t pos = 0;
	/* bounded: a 2-byte op can hash a 4 KiB bound name */
	for (int nops = 0; pos < size && nops < MAX_OPS; nops++) {
		uint8_t op = data[pos++];
		int kind = op & 7;
		struct vems_oid oid = objs[(op >> 3) & 3];
		if (op == 6) { /* costly (~10 ms): only this one value */
			reopen();
			continue;
		}
		if (kind == 6 || kind == 7) {
			for (int i = 0; i < nmodel; i++)
				check_lookup(model[i].name);
			continue;
		}
		if ((op & 0x20) && nmodel > 0 && pos < size) {
			snprintf(a, sizeof(a), "%s",
				 model[data[pos++] % nmodel].name);
		} else if (!get_name(data, size, &pos, a)) {
			break;
		}
		int r, err = name_error(a), i = mfind(a);
		switch (kind) {
		case 0:
			r = vems_name_bind(pool, a, oid);
			if (err)
				FZ_CHECK(r == err, "bind bad name = %d", r);
			else if (i >= 0)
				FZ_CHECK(r == -EEXIST, "rebind = %d", r);
			else if ((op >> 3 & 3) == 3)
				FZ_CHECK(r == -ENOENT, "bind to none = %d", r);
			else
				FZ_CHECK(r == 0 || r == -ENOSPC, "bind = %d",
					 r);
			if (r == 0)
				madd(a, oid);
			break;
		case 1:
			check_lookup(a);
			break;
		case 2:
			r = vems_name_unbind(pool, a);
			if (err)
				FZ_CHECK(r == err, "unbind bad name = %d", r);
			else
				FZ_CHECK(r == (i >= 0 ? 0 : -ENOENT),
					 "unbind = %d (bound: %d)", r, i >= 0);
			if (r == 0)
				mdel(i);
			break;
		case 3: {
			if (!get_name(data, size, &pos, b))
				goto out;
			struct vems_oid rep = {~0ull, ~0ull};
			int any = -1;
			r = vems_name_rename(pool, a, b, &rep, &any);
			int errb = name_error(b), j = mfind(b);
			if (err || errb) {
				FZ_CHECK(r == (err ? err : errb),
					 "rename bad name = %d", r);
			} else if (i < 0) {
				FZ_CHECK(r == -ENOENT, "rename unbound = %d",
					 r);
			} else if (i == j) {
				FZ_CHECK(r == 0 && any == 0, "rename to self");
			} else {
				FZ_CHECK(r == 0 || r == -ENOSPC, "rename = %d",
					 r);
				if (r == 0) {
					FZ_CHECK(any == (j >= 0),
						 "replaced_any");
					if (j >= 0)
						FZ_CHECK(
							same(rep, model[j].oid),
							"replaced oid");
					struct vems_oid moved = model[i].oid;
					if (j >= 0) {
						mdel(j);
						i = mfind(a);
					}
					mdel(i);
					madd(b, moved);
				}
			}
			check_lookup(a);
			check_lookup(b);
			break;
		}
		case 4:
			check_list(a);
			break;
		default:
			check_list(NULL);
			break;
		}
	}
out:
	check_list(NULL);
	while (nmodel > 0) {
		int r = vems_name_unbind(pool, model[nmodel - 1].name);
		FZ_CHECK(r == 0, "unbind at the end = %d", r);
		mdel(nmodel - 1);
	}
	check_list(NULL);
	return 0;
}
