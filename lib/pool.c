/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pool.c -- creating, opening, validating and closing a pool
 *
 * Open checks everything it can before libpmemobj touches the file: a
 * failing pmemobj_open() may already have written to it (seen with a
 * truncated pool), and a bad input must change nothing on media. So the
 * pool's size, format, UUID and block path live in the layout name, which
 * libpmemobj keeps in plain text at a fixed offset, and are checked with
 * plain reads (the block file's header included) first.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpmem.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "extent.h"
#include "vems_internal.h"

#define MIB (UINT64_C(1) << 20)
/* libpmemobj's own space: lanes and headers (~4 MiB), plus per zone. */
#define OBJ_BASE_OVERHEAD (5 * MIB)

/*
 * The entry table is allocated in whole MiB: libpmemobj serves smaller
 * allocations from runs of an allocation class, which in a small pool can
 * take the contiguous heap chunks the data chunks need (format 3, one data
 * allocation: a 16 MiB pool with a 200 KiB table had 58 frames of 64 KiB;
 * in whole MiB, 121).
 */
#define ENT_ROUND(b) (((b) + MIB - 1) / MIB * MIB)
#define OBJ_ZONE_BYTES (UINT64_C(16) << 30)
#define OBJ_ZONE_OVERHEAD (MIB)

/*
 * Heap space kept free for metadata when data chunks are allocated (at
 * create, and at open for empty table slots). Metadata that needs more
 * takes a data chunk (chunk.c), so this is only what saves the first
 * records that trouble.
 */
static uint64_t
meta_reserve(uint64_t pmem_size)
{
	return pmem_size / 256 > MIB ? pmem_size / 256 : MIB;
}

/* --- in-process registry of open pools ----------------------------- */

/*
 * The OFD lock below already stops a second open in this process, but a
 * failed attempt would close() its fd, and closing any fd of a file drops
 * the process's classic POSIX locks on it -- the one that advertises our
 * pid. So same-process attempts are refused here, before any open().
 */
struct reg {
	dev_t dev;
	ino_t ino;
	pid_t pid; /* a child after fork() inherits the list, not the pools */
	struct reg *next;
};
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg *reg_head;

static int
reg_add(const struct stat *st, const char *path)
{
	int ret = 0;
	pthread_mutex_lock(&reg_lock);
	pid_t me = getpid();
	for (struct reg *r = reg_head; r; r = r->next)
		if (r->dev == st->st_dev && r->ino == st->st_ino &&
		    r->pid == me) {
			ret = vems__fail(-EBUSY,
					 "pool %s is already open in this "
					 "process (pid %d)",
					 path, (int)getpid());
			goto out;
		}
	struct reg *r = malloc(sizeof(*r));
	if (r == NULL) {
		ret = vems__fail(-ENOMEM, "out of memory");
		goto out;
	}
	r->dev = st->st_dev;
	r->ino = st->st_ino;
	r->pid = me;
	r->next = reg_head;
	reg_head = r;
out:
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

static void
reg_del(dev_t dev, ino_t ino)
{
	pthread_mutex_lock(&reg_lock);
	pid_t me = getpid();
	for (struct reg **pp = &reg_head; *pp; pp = &(*pp)->next)
		if ((*pp)->dev == dev && (*pp)->ino == ino &&
		    (*pp)->pid == me) {
			struct reg *r = *pp;
			*pp = r->next;
			free(r);
			break;
		}
	pthread_mutex_unlock(&reg_lock);
}

/* --- ownership lock ------------------------------------------------ */

/*
 * Byte 0 of the pmem file carries an OFD write lock: it is what excludes
 * other openers, and it survives unrelated close()s (libpmemobj opens and
 * closes the file itself). Byte 1 carries a classic POSIX lock whose only
 * job is to let F_GETLK tell a refused opener the holder's pid.
 */
static int
lock_owner(int fd, const char *path)
{
	struct flock fl = {.l_type = F_WRLCK,
			   .l_whence = SEEK_SET,
			   .l_start = 0,
			   .l_len = 1};
	/*
	 * Briefly retried: an opener killed while its validation process
	 * (see probe) had just been forked leaves that process holding a
	 * copy of the locked fd for the moment it takes to close it (it
	 * also dies with its parent).
	 */
	for (int i = 0; i < 100; i++) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES)
			break;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (errno != EAGAIN && errno != EACCES)
		return vems__fail(-errno, "cannot lock %s: %s", path,
				  strerror(errno));
	struct flock q = {.l_type = F_WRLCK,
			  .l_whence = SEEK_SET,
			  .l_start = 1,
			  .l_len = 1};
	if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
		return vems__fail(-EBUSY, "pool %s is open in process %d", path,
				  (int)q.l_pid);
	return vems__fail(-EBUSY, "pool %s is open in another process", path);
}

static void
advertise_pid(int fd)
{
	struct flock fl = {.l_type = F_WRLCK,
			   .l_whence = SEEK_SET,
			   .l_start = 1,
			   .l_len = 1};
	(void)fcntl(fd, F_SETLK, &fl); /* best effort: only for messages */
}

/* --- layout name --------------------------------------------------- */

struct layout_info {
	unsigned fmt;
	uint64_t size;
	uint8_t uuid[16];
	char block[VEMS_BLOCK_PATH_MAX + 1];
};

static void
hex16(char out[33], const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", u[i]);
}

static int
unhex16(uint8_t u[16], const char *s)
{
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		u[i] = (uint8_t)v;
	}
	return 0;
}

static void
make_layout(char *out, size_t outlen, uint64_t size, const uint8_t uuid[16],
	    const char *block)
{
	char u[33];
	hex16(u, uuid);
	snprintf(out, outlen,
		 VEMS_LAYOUT_PREFIX "fmt=%u size=%" PRIu64 " uuid=%s block=%s",
		 VEMS_FORMAT, size, u, block);
}

/* Reads and parses the layout name with plain I/O, libpmemobj untouched. */
static int
read_layout(int fd, const char *path, char raw[PMEMOBJ_MAX_LAYOUT],
	    struct layout_info *li)
{
	char sig[8];
	if (pread(fd, sig, sizeof(sig), 0) != (ssize_t)sizeof(sig) ||
	    memcmp(sig, VEMS_PMEMOBJ_SIGNATURE, 8) != 0)
		return vems__fail(VEMS_E_NOTPOOL,
				  "%s is not a libvems pool (no pool header)",
				  path);
	ssize_t n = pread(fd, raw, PMEMOBJ_MAX_LAYOUT, VEMS_PMEMOBJ_LAYOUT_OFF);
	if (n != (ssize_t)PMEMOBJ_MAX_LAYOUT)
		return vems__fail(VEMS_E_NOTPOOL, "%s: too short for a pool",
				  path);
	raw[PMEMOBJ_MAX_LAYOUT - 1] = '\0';
	if (strncmp(raw, VEMS_LAYOUT_PREFIX, strlen(VEMS_LAYOUT_PREFIX)) != 0)
		return vems__fail(
			VEMS_E_NOTPOOL,
			"%s is a libpmemobj pool of layout \"%.64s\", "
			"not a libvems pool",
			path, raw);
	char u[33];
	int off = 0;
	if (sscanf(raw, VEMS_LAYOUT_PREFIX "fmt=%u", &li->fmt) != 1)
		return vems__fail(VEMS_E_CORRUPT, "%s: unreadable layout name",
				  path);
	if (li->fmt != VEMS_FORMAT)
		return vems__fail(VEMS_E_VERSION,
				  "%s has pool format %u, this library (%s) "
				  "reads format %u",
				  path, li->fmt, vems_version(), VEMS_FORMAT);
	if (sscanf(raw,
		   VEMS_LAYOUT_PREFIX "fmt=%u size=%" SCNu64
				      " uuid=%32[0-9a-f] block=%n",
		   &li->fmt, &li->size, u, &off) != 3 ||
	    off == 0 || strlen(u) != 32 || unhex16(li->uuid, u) != 0 ||
	    strlen(raw + off) > VEMS_BLOCK_PATH_MAX || raw[off] == '\0')
		return vems__fail(VEMS_E_CORRUPT, "%s: unreadable layout name",
				  path);
	strcpy(li->block, raw + off);
	return 0;
}

/* --- DRAM state ---------------------------------------------------- */

static struct vems_pool *
pool_alloc(void)
{
	struct vems_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->lock_fd = p->block_fd = -1;
	pthread_rwlock_init(&p->meta_lock, NULL);
	pthread_mutex_init(&p->alloc_lock, NULL);
	pthread_mutex_init(&p->reclaim_lock, NULL);
	pthread_mutex_init(&p->inl_lock, NULL);
	p->draining = -1;
	pthread_mutex_init(&p->sp_lock, NULL);
	pthread_cond_init(&p->sp_cond, NULL);
	pthread_cond_init(&p->sp_done, NULL);
	if (vems__htab_init(&p->objects, 64) ||
	    vems__htab_init(&p->removed, 8) || vems__htab_init(&p->names, 64) ||
	    vems__htab_init(&p->serials, 64)) {
		vems__htab_fini(&p->objects);
		vems__htab_fini(&p->removed);
		vems__htab_fini(&p->names);
		vems__htab_fini(&p->serials);
		free(p);
		return NULL;
	}
	return p;
}

static void
pool_free(struct vems_pool *p)
{
	vems__spill_stop(p); /* first: it uses everything below */
	while (p->handles) {
		struct vems_obj *h = p->handles;
		p->handles = h->next;
		free(h);
	}
	/* every node is listed by serial (removed ones too) */
	for (size_t i = 0; i < p->serials.nbuckets; i++) {
		struct vems_hnode *e = p->serials.buckets[i];
		while (e) {
			struct vems_hnode *next = e->next;
			vems__obj_free_node(vems_container_of(
				e, struct vems_objnode, by_serial));
			e = next;
		}
	}
	vems__htab_fini(&p->objects);
	vems__htab_fini(&p->removed);
	vems__htab_fini(&p->serials);
	vems__names_fini(p);
	vems__htab_fini(&p->names);
	vems__fl_fini(&p->free_frames);
	vems__fl_fini(&p->free_entries);
	vems__fl_fini(&p->free_slots);
	free(p->slot_pins);
	free(p->slot_flags);
	vems__pol_fini(p);
	vems__chunks_detach(p);
	if (p->be)
		p->be->ops->close(p->be);
	if (p->pop)
		pmemobj_close(p->pop);
	if (p->block_fd >= 0)
		close(p->block_fd);
	if (p->lock_fd >= 0) {
		struct stat st;
		if (fstat(p->lock_fd, &st) == 0)
			reg_del(st.st_dev, st.st_ino);
		close(p->lock_fd);
	}
	pthread_rwlock_destroy(&p->meta_lock);
	pthread_mutex_destroy(&p->alloc_lock);
	pthread_mutex_destroy(&p->reclaim_lock);
	pthread_mutex_destroy(&p->inl_lock);
	free(p->inl_scan);
	pthread_mutex_destroy(&p->sp_lock);
	pthread_cond_destroy(&p->sp_cond);
	pthread_cond_destroy(&p->sp_done);
	free(p->pmem_path);
	free(p->block_path);
	free(p);
}

/* Points the DRAM handle at the pool's structures; decides persistence. */
static int
attach_map(struct vems_pool *p)
{
	struct vems_super *sb = p->sb;
	p->extent_size = sb->extent_size;
	p->extent_shift = (unsigned)__builtin_ctzll(sb->extent_size);
	p->nframes = (uint32_t)sb->nframes;
	p->nslots = (uint32_t)sb->nslots;
	p->nentries = (uint32_t)sb->nentries;
	p->entries = pmemobj_direct(sb->entries);
	p->pchecks = (uint32_t *)(p->entries + p->nentries);
	p->ppe = (uint32_t)(sb->extent_size / VEMS_PAGE_SIZE);
	int ret = vems__chunks_attach(p);
	if (ret)
		return ret;
	/*
	 * Decided once: real pmem (or PMEM_IS_PMEM_FORCE) is flushed with
	 * cache write-back + fence, anything else with msync. One chunk
	 * stands for all: they are parts of one mapping.
	 */
	for (uint32_t c = 0; c < p->nchunks; c++)
		if (p->chunk_base[c]) {
			p->is_pmem = pmem_is_pmem(p->chunk_base[c],
						  (size_t)p->chunk_frames *
							  p->extent_size) != 0;
			break;
		}
	return 0;
}

/* The capacity tier and the mapping's access pattern. */
static int
attach(struct vems_pool *p, const struct vems_config *cfg)
{
	struct vems_super *sb = p->sb;
	int ret = attach_map(p);
	if (ret)
		return ret;
	/*
	 * An msync writes back whole folios; with the kernel's large folios
	 * a 4 KiB durable write costs ~2 MiB of write-back. MADV_RANDOM
	 * keeps page-sized folios for the data chunks.
	 */
	for (uint32_t c = 0; c < p->nchunks && !p->is_pmem; c++)
		if (p->chunk_base[c])
			(void)madvise(p->chunk_base[c],
				      (size_t)p->chunk_frames * p->extent_size,
				      MADV_RANDOM);
	vems__inline_classes(p);
	p->inl_max = vems__inline_limit(cfg ? cfg->inline_max : UINT64_MAX,
					p->extent_size);
	/* the capacity tier: O_DIRECT where real, one sync per batch */
	unsigned bf = cfg ? cfg->block_flags : 0;
	p->block_data_off = sb->block_data_off;
	ret = vems__uring_open(p->block_fd, p->block_path,
			       (bf & VEMS_BLOCK_DSYNC) ? VEMS_BSYNC_DSYNC
						       : VEMS_BSYNC_FDATASYNC,
			       !(bf & VEMS_BLOCK_BUFFERED), &p->be);
	if (ret)
		return ret;
	if (vems__backend_wrap && (ret = vems__backend_wrap(&p->be)))
		return ret;
	if (p->be->ops->version < VEMS_BACKEND_OPS_V2 ||
	    p->be->ops->drain == NULL)
		return vems__fail(-EINVAL,
				  "block backend %s: ops version %u, needs %u "
				  "(drain)",
				  p->be->ops->name, p->be->ops->version,
				  VEMS_BACKEND_OPS_V2);
	snprintf(p->block_io_buf, sizeof(p->block_io_buf), "%s+%s", p->be->mode,
		 p->be->sync_mode);
	p->block_io = p->block_io_buf;
	return 0;
}

static int
check_super(struct vems_pool *p, const struct layout_info *li)
{
	struct vems_super *sb = p->sb;
	const char *path = p->pmem_path;
	if (pmemobj_root_size(p->pop) < sizeof(*sb) ||
	    memcmp(sb->magic, VEMS_SUPER_MAGIC, 8) != 0)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: no superblock (creation interrupted?)",
				  path);
	if (sb->csum != vems__crc32c(sb, offsetof(struct vems_super, csum)))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: superblock checksum mismatch", path);
	if (sb->mcheck != vems__super_mcheck(sb))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: superblock counters are damaged (check "
				  "value mismatch)",
				  path);
	if (sb->format != VEMS_FORMAT)
		return vems__fail(VEMS_E_VERSION, "%s: superblock format %u",
				  path, sb->format);
	if (memcmp(sb->uuid, li->uuid, 16) != 0 ||
	    (li->size != 0 && sb->pmem_size != li->size))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: superblock and layout name disagree",
				  path);
	uint64_t es = sb->extent_size;
	if (sb->page_size != VEMS_PAGE_SIZE || es < VEMS_PAGE_SIZE ||
	    (es & (es - 1)) || es > VEMS_EXTENT_MAX || sb->nframes == 0 ||
	    sb->nframes >= UINT32_MAX || sb->nslots >= UINT32_MAX ||
	    sb->chunk_frames == 0 || sb->chunk_frames > VEMS_CHUNK_FRAMES_MAX ||
	    sb->nframes % sb->chunk_frames ||
	    sb->nentries < sb->nframes + sb->nslots ||
	    sb->nentries >= UINT32_MAX)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: superblock geometry is "
				  "invalid",
				  path);
	/* our own bounds first: the calls below read libpmemobj headers */
	uint64_t psize = li->size ? li->size : sb->pmem_size;
	uint64_t ent_bytes = sb->nentries * sizeof(struct vems_entry) +
		vems__pchecks_bytes(sb->nslots, es);
	uint64_t ntab = sb->chunk_frames ? sb->nframes / sb->chunk_frames : 0;
	uint64_t tab_bytes = ntab * sizeof(struct vems_chunk);
	PMEMoid none = pmemobj_root(p->pop, 0);
	if (sb->entries.pool_uuid_lo != none.pool_uuid_lo ||
	    sb->chunks.pool_uuid_lo != none.pool_uuid_lo ||
	    sb->entries.off < 8192 || sb->chunks.off < 8192 ||
	    (psize &&
	     (sb->entries.off > psize || ent_bytes > psize - sb->entries.off ||
	      sb->chunks.off > psize || tab_bytes > psize - sb->chunks.off)))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: entry table or chunk table lies outside "
				  "the pool",
				  path);
	if (pmemobj_type_num(sb->entries) != VEMS_TYPE_ENTRIES ||
	    pmemobj_alloc_usable_size(sb->entries) < ent_bytes ||
	    pmemobj_type_num(sb->chunks) != VEMS_TYPE_CHUNKS ||
	    pmemobj_alloc_usable_size(sb->chunks) < tab_bytes)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: entry table or chunk table missing or "
				  "too small",
				  path);
	return vems__chunks_validate(p, psize);
}

/*
 * Rebuilds every DRAM structure from pmem. Everything is validated first
 * without a store (records, then entries: extent.c's scan); only a pool
 * that passes is repaired, i.e. what interrupted operations provably left
 * behind is freed. A failure leaves libvems' metadata as it was.
 */
static int
rebuild(struct vems_pool *p)
{
	int ret = 0;
	PMEMoid o;
	uint64_t ndata = 0;

	if ((ret = vems__fl_init(&p->free_frames, p->nframes)) ||
	    (ret = vems__fl_init(&p->free_entries, p->nentries)) ||
	    (ret = vems__fl_init(&p->free_slots, p->nslots)))
		return vems__fail(ret, "out of memory");
	p->slot_pins = calloc(p->nslots + 1, sizeof(*p->slot_pins));
	p->slot_flags = calloc(p->nslots + 1, 1);
	if (p->slot_pins == NULL || p->slot_flags == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	if ((ret = vems__pol_init(p)))
		return ret;

	POBJ_FOREACH(p->pop, o)
	{
		uint64_t t = pmemobj_type_num(o);
		if (t == VEMS_TYPE_OBJ)
			ret = vems__obj_load(p, o);
		else if (t == VEMS_TYPE_NAME)
			ret = vems__name_load(p, o);
		else if (t == VEMS_TYPE_DATA)
			ndata++;
		else if (t == VEMS_TYPE_INLINE)
			ret = vems__inline_scan_add(p, o);
		else if (t == VEMS_TYPE_ENTRIES || t == VEMS_TYPE_CHUNKS)
			ret = 0;
		else
			ret = vems__fail(VEMS_E_CORRUPT,
					 "%s: unknown record type %" PRIu64,
					 p->pmem_path, t);
		if (ret)
			return ret;
	}
	/* a damaged allocation header can make the heap walk skip records
	 * (or invent some): the counts kept with every change must match */
	uint64_t nobj = 0, nremoving = 0;
	for (size_t i = 0; i < p->serials.nbuckets; i++)
		for (struct vems_hnode *h = p->serials.buckets[i]; h;
		     h = h->next)
			nremoving += vems_container_of(h, struct vems_objnode,
						       by_serial)
					     ->removing;
	nobj = p->nobjects + nremoving;
	if (ndata * p->chunk_frames != p->frames_present)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: found %" PRIu64
				  " data chunks, the chunk table names %u "
				  "(libpmemobj's heap is damaged?): left as it "
				  "is for repair",
				  p->pmem_path, ndata,
				  p->frames_present / p->chunk_frames);
	if (nobj != p->sb->nobj_recs || p->nnames != p->sb->nname_recs)
		return vems__fail(
			VEMS_E_CORRUPT,
			"%s: found %" PRIu64 " object and %" PRIu64
			" name records, the superblock counts %" PRIu64
			" and %" PRIu64
			" (libpmemobj's heap is damaged?): left as "
			"it is for repair",
			p->pmem_path, nobj, p->nnames, p->sb->nobj_recs,
			p->sb->nname_recs);
	if ((ret = vems__names_verify(p)) || (ret = vems__inline_attach(p)))
		return ret;
	struct vems_xscan scan;
	ret = vems__ext_scan(p, &scan);
	/* validated: from here on, repairs */
	if (ret == 0)
		ret = vems__ext_repair(p, &scan);
	vems__ext_scan_fini(&scan);
	if (ret == 0)
		ret = vems__obj_finish_removals(p);
	return ret;
}

static int
dup_paths(struct vems_pool *p, const char *pmem, const char *block)
{
	p->pmem_path = strdup(pmem);
	p->block_path = strdup(block);
	if (p->pmem_path == NULL || p->block_path == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	return 0;
}

/* Opens the pmem file, refuses a second owner, returns the locked fd. */
static int
open_locked(const char *path, int oflags, struct stat *st, int *fdp)
{
	memset(st, 0, sizeof(*st));
	if (stat(path, st) == 0) {
		int ret = reg_add(st, path);
		if (ret)
			return ret;
	} else if (!(oflags & O_CREAT)) {
		return vems__fail(-errno, "cannot open pool %s: %s", path,
				  strerror(errno));
	}
	int fd = open(path, O_RDWR | O_CLOEXEC | oflags, 0600);
	if (fd < 0) {
		int err = errno;
		if (!(oflags & O_CREAT) || err != EEXIST)
			reg_del(st->st_dev, st->st_ino);
		return vems__fail(-err, "cannot open pool %s: %s", path,
				  strerror(err));
	}
	struct stat st2;
	if (fstat(fd, &st2) == 0 &&
	    (st2.st_dev != st->st_dev || st2.st_ino != st->st_ino)) {
		/* created just now (or replaced): register the real file */
		int ret = reg_add(&st2, path);
		if (ret) {
			close(fd);
			return ret;
		}
		*st = st2;
	}
	int ret = lock_owner(fd, path);
	if (ret) {
		reg_del(st->st_dev, st->st_ino);
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

/* --- create --------------------------------------------------------- */

static int
abs_path(const char *in, char *out, size_t outlen)
{
	if (in[0] == '/') {
		if (strlen(in) >= outlen)
			return -ENAMETOOLONG;
		strcpy(out, in);
		return 0;
	}
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -errno;
	if ((size_t)snprintf(out, outlen, "%s/%s", cwd, in) >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

static int
create_layout(struct vems_pool *p, const struct vems_config *cfg,
	      uint64_t pmem_size, const char *block_path, uint8_t uuid[16],
	      uint8_t buuid[16], uint64_t nslots)
{
	PMEMobjpool *pop = p->pop;
	uint64_t es = cfg->extent_size;
	uint32_t cf = vems__chunk_frames_for(pmem_size / es, es);
	uint64_t nframes_max = (pmem_size / es + cf - 1) / cf * cf;
	uint64_t nentries = nframes_max + nslots;
	if (nentries >= UINT32_MAX)
		return vems__fail(-EFBIG,
				  "%llu extents of %llu bytes are more than a "
				  "pool can map; use a larger extent size",
				  (unsigned long long)nentries,
				  (unsigned long long)es);
	uint64_t ent_bytes = ENT_ROUND(nentries * sizeof(struct vems_entry) +
				       vems__pchecks_bytes(nslots, es));
	uint64_t tab_bytes = nframes_max / cf * sizeof(struct vems_chunk);
	uint64_t zones = (pmem_size + OBJ_ZONE_BYTES - 1) / OBJ_ZONE_BYTES;
	uint64_t reserve = meta_reserve(pmem_size);
	uint64_t overhead = OBJ_BASE_OVERHEAD + zones * OBJ_ZONE_OVERHEAD +
		ent_bytes + tab_bytes + reserve;
	if (pmem_size <= overhead + vems__chunk_bytes(es, cf, false))
		return vems__fail(-ENOSPC,
				  "pmem size %llu is too small for the "
				  "metadata of this geometry (%llu bytes)",
				  (unsigned long long)pmem_size,
				  (unsigned long long)overhead);

	PMEMoid root = pmemobj_root(pop, sizeof(struct vems_super));
	if (OID_IS_NULL(root))
		return vems__fail(-ENOSPC, "cannot allocate superblock: %s",
				  pmemobj_errormsg());
	struct vems_super *sb = pmemobj_direct(root);
	p->sb = sb;
	/* zeroed entries: every entry starts free (serial 0); the page
	 * check table after them (a free slot's row is never read) */
	if (pmemobj_zalloc(pop, &sb->entries, ent_bytes, VEMS_TYPE_ENTRIES))
		return vems__fail(-ENOSPC, "cannot allocate entry table: %s",
				  pmemobj_errormsg());
	if (pmemobj_zalloc(pop, &sb->chunks, tab_bytes, VEMS_TYPE_CHUNKS))
		return vems__fail(-ENOSPC, "cannot allocate chunk table: %s",
				  pmemobj_errormsg());
	/* the fields the chunks are made from; the rest comes below */
	sb->extent_size = es;
	sb->nframes = nframes_max;
	sb->chunk_frames = cf;
	/* no byte of a frame is read before it was written: no zeroing */
	if (vems__chunks_create(pop, sb, reserve))
		return vems__fail(-ENOSPC,
				  "pmem size %llu is too small for the "
				  "metadata of this geometry",
				  (unsigned long long)pmem_size);

	/* the superblock is complete (magic and checksum) in one step */
	int ret = 0;
	TX_BEGIN(pop)
	{
		pmemobj_tx_add_range(root, 0, sizeof(*sb));
		memcpy(sb->magic, VEMS_SUPER_MAGIC, 8);
		sb->format = VEMS_FORMAT;
		sb->page_size = VEMS_PAGE_SIZE;
		memcpy(sb->uuid, uuid, 16);
		memcpy(sb->block_uuid, buuid, 16);
		sb->pmem_size = pmem_size;
		sb->extent_size = es;
		sb->nframes = nframes_max;
		sb->chunk_frames = cf;
		sb->nslots = nslots;
		sb->nentries = nentries;
		sb->block_data_off = VEMS_BLOCK_DATA_OFF;
		memset(sb->block_path, 0, sizeof(sb->block_path));
		strcpy(sb->block_path, block_path);
		sb->csum = vems__crc32c(sb, offsetof(struct vems_super, csum));
		sb->next_id = 1;
		sb->next_serial = 1;
		sb->nobj_recs = 0;
		sb->nname_recs = 0;
		sb->mcheck = vems__super_mcheck(sb);
	}
	TX_ONABORT
	{
		ret = vems__fail(-ENOSPC, "cannot write superblock: %s",
				 pmemobj_errormsg());
	}
	TX_END
	return ret;
}

int
vems_pool_create(struct vems_pool **poolp, const char *path,
		 const struct vems_config *ucfg)
{
	struct vems_config cfg;
	char block_path[PATH_MAX];
	int ret;

	if (poolp == NULL || path == NULL || path[0] == '\0')
		return vems__fail(-EINVAL,
				  "vems_pool_create: pool or path is "
				  "NULL or empty");
	*poolp = NULL;
	if (ucfg)
		cfg = *ucfg;
	else
		vems__config_defaults(&cfg);

	/* the pmem file: new, an empty file, or a device (used whole) */
	struct stat st;
	bool exists = stat(path, &st) == 0;
	bool is_dev = exists && S_ISCHR(st.st_mode);
	if (exists && !is_dev && st.st_size != 0)
		return vems__fail(-EEXIST,
				  "%s exists and is not empty; refusing to "
				  "overwrite it",
				  path);
	if (!is_dev && cfg.pmem_size == 0)
		return vems__fail(-EINVAL, "pmem size not set for %s", path);
	if (!is_dev && cfg.pmem_size < VEMS_PMEM_MIN_SIZE)
		return vems__fail(-EINVAL,
				  "pmem size %llu below the minimum "
				  "%llu",
				  (unsigned long long)cfg.pmem_size,
				  (unsigned long long)VEMS_PMEM_MIN_SIZE);

	const char *bp = cfg.block_path;
	char defbp[PATH_MAX];
	if (bp == NULL) {
		if ((size_t)snprintf(defbp, sizeof(defbp), "%s.blk", path) >=
		    sizeof(defbp))
			return vems__fail(-ENAMETOOLONG, "path too long");
		bp = defbp;
	}
	if ((ret = abs_path(bp, block_path, sizeof(block_path))) != 0 ||
	    strlen(block_path) > VEMS_BLOCK_PATH_MAX)
		return vems__fail(-ENAMETOOLONG,
				  "block path %s: its absolute form must be at "
				  "most %u bytes",
				  bp, VEMS_BLOCK_PATH_MAX);
	struct stat bst;
	if (stat(block_path, &bst) == 0 && !S_ISBLK(bst.st_mode))
		return vems__fail(-EEXIST, "block file %s already exists",
				  block_path);

	struct vems_pool *p = pool_alloc();
	if (p == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	bool made_pmem = false, made_block = false;
	if ((ret = dup_paths(p, path, block_path)))
		goto fail;
	if ((ret = open_locked(path, exists ? 0 : O_CREAT | O_EXCL, &st,
			       &p->lock_fd)))
		goto fail;
	made_pmem = !exists;

	uint64_t pmem_size = is_dev ? 0 : cfg.pmem_size;
	uint64_t eff_size = pmem_size;
	if (is_dev) {
		/* a device-dax node: its size is what pmem_map_file sees */
		size_t mlen;
		void *m = pmem_map_file(path, 0, 0, 0, &mlen, NULL);
		if (m == NULL) {
			ret = vems__fail(-errno, "cannot map %s: %s", path,
					 pmem_errormsg());
			goto fail;
		}
		pmem_unmap(m, mlen);
		eff_size = mlen;
	} else if (ftruncate(p->lock_fd, (off_t)pmem_size) != 0) {
		ret = vems__fail(-errno, "cannot size %s: %s", path,
				 strerror(errno));
		goto fail;
	}
	uint64_t bsize = cfg.block_size ? cfg.block_size : 8 * eff_size;
	uint64_t nslots = bsize / cfg.extent_size;
	if (nslots == 0) {
		ret = vems__fail(-EINVAL, "block size holds no extent");
		goto fail;
	}

	uint8_t uuid[16], buuid[16];
	if (getrandom(uuid, 16, 0) != 16 || getrandom(buuid, 16, 0) != 16) {
		ret = vems__fail(-EIO, "getrandom failed");
		goto fail;
	}
	uuid[6] = (uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
	buuid[6] = (buuid[6] & 0x0f) | 0x40;
	buuid[8] = (buuid[8] & 0x3f) | 0x80;

	char layout[PMEMOBJ_MAX_LAYOUT];
	make_layout(layout, sizeof(layout), pmem_size, uuid, block_path);
	p->pop = pmemobj_create(path, layout, 0, 0600);
	if (p->pop == NULL) {
		ret = vems__fail(errno == ENOMEM ? -ENOSPC : -errno,
				 "cannot create pool in %s: %s", path,
				 pmemobj_errormsg());
		goto fail;
	}
	advertise_pid(p->lock_fd);
	if ((ret = create_layout(p, &cfg, eff_size, block_path, uuid, buuid,
				 nslots)))
		goto fail;
	/*
	 * The block file last: an interrupted create leaves a pmem file
	 * with a superblock but no block file, which open reports clearly.
	 */
	if ((ret = vems__block_create(block_path, nslots, cfg.extent_size, uuid,
				      buuid, &p->block_fd)))
		goto fail;
	made_block = true;
	if ((ret = attach(p, &cfg)) || (ret = rebuild(p)) ||
	    (ret = vems__spill_start(p, &cfg)))
		goto fail;
	*poolp = p;
	return 0;
fail:
	pool_free(p);
	if (made_pmem)
		unlink(path);
	else if (exists && !is_dev)
		(void)truncate(path, 0);
	if (made_block)
		unlink(block_path);
	return ret;
}

/* --- open / close ---------------------------------------------------- */

/*
 * pmemobj_open, waiting up to 2 s for libpmemobj's own file lock (flock).
 * The caller holds the pool's ownership lock, so a holder of that flock is
 * no libvems owner: it is the validation process of an opener that was
 * just killed, which dies with it (PR_SET_PDEATHSIG) a moment later.
 */
static PMEMobjpool *
obj_open(const char *path, const char *layout)
{
	for (int i = 0;; i++) {
		PMEMobjpool *pop = pmemobj_open(path, layout);
		if (pop || (errno != EAGAIN && errno != EWOULDBLOCK) ||
		    i >= 200)
			return pop;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/*
 * libpmemobj trusts its lanes and heap headers: a damaged one makes
 * pmemobj_open, a heap walk or a usable-size query crash or spin forever
 * (tests/test_corrupt.c has such images). So before the pool is opened for
 * real, a child process opens it with libpmemobj's copy-on-write mapping
 * (nothing it does reaches the file: interrupted transactions are replayed
 * in private memory) and runs the whole validation of libvems' metadata.
 * A crash, a hang past the deadline or an error there is reported here,
 * and the file has not been written at all. Device DAX has no
 * copy-on-write mapping: there the probe is skipped.
 */
#ifdef VEMS_PLANT_BUGS
int vems__plant;

__attribute__((constructor)) static void
plant_init(void)
{
	const char *e = getenv("VEMS_PLANT");
	vems__plant = e ? atoi(e) : 0;
}
#endif

unsigned vems__probe_timeout_ms; /* tests: 0 means the default */
bool vems__probe_skip;		 /* tests that verify the same otherwise */

struct probe_msg {
	int code;
	char msg[500];
};

static int
probe_child(const char *path, const char *layout, const struct layout_info *li)
{
	int one = 1;
	if (pmemobj_ctl_set(NULL, "copy_on_write.at_open", &one) != 0)
		return vems__fail(-ENOTSUP, "copy-on-write open: %s",
				  pmemobj_errormsg());
	struct vems_pool *p = pool_alloc();
	if (p == NULL || (p->pmem_path = strdup(path)) == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	p->pop = obj_open(path, layout);
	if (p->pop == NULL)
		return vems__fail(errno == EAGAIN || errno == EWOULDBLOCK
					  ? -EBUSY
					  : VEMS_E_CORRUPT,
				  "libpmemobj cannot open %s: %s", path,
				  pmemobj_errormsg());
	p->sb = pmemobj_direct(pmemobj_root(p->pop, 0));
	if (p->sb == NULL)
		return vems__fail(VEMS_E_CORRUPT, "%s has no superblock", path);
	int ret = check_super(p, li);
	if (ret == 0 && (ret = attach_map(p)) == 0)
		ret = rebuild(p);
	return ret; /* the process exits: nothing to free */
}

static int
probe(struct vems_pool *p, const char *layout, const struct layout_info *li,
      uint64_t size)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return vems__fail(-errno, "pipe: %s", strerror(errno));
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		close(fds[0]);
		close(fds[1]);
		return vems__fail(-err, "fork (to validate %s): %s",
				  p->pmem_path, strerror(err));
	}
	if (pid == 0) {
		/* default actions: a crash must end this process */
		static const int sigs[] = {SIGSEGV, SIGFPE, SIGBUS, SIGILL,
					   SIGABRT};
		for (size_t i = 0; i < VEMS_ARRAY_SIZE(sigs); i++)
			signal(sigs[i], SIG_DFL);
		/*
		 * The parent's ownership lock lives on as long as any copy
		 * of its fd does: drop ours at once, and die with the parent
		 * so that a killed opener leaves nothing holding the pool.
		 */
		close(p->lock_fd);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(fds[0]);
		struct probe_msg m;
		memset(&m, 0, sizeof(m));
		m.code = probe_child(p->pmem_path, layout, li);
		if (m.code)
			snprintf(m.msg, sizeof(m.msg), "%s", vems_errormsg());
		ssize_t w = write(fds[1], &m, sizeof(m));
		_exit(w == (ssize_t)sizeof(m) ? 0 : 1);
	}
	close(fds[1]);
	/* a generous deadline: 10 s, and 2 s more per GiB of pmem */
	unsigned ms = vems__probe_timeout_ms
		? vems__probe_timeout_ms
		: 10000u + (unsigned)(2000 * (size >> 30));
	struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
	int pr;
	do
		pr = poll(&pfd, 1, (int)ms);
	while (pr < 0 && errno == EINTR);
	struct probe_msg m;
	ssize_t got = pr > 0 ? read(fds[0], &m, sizeof(m)) : 0;
	close(fds[0]);
	if (pr == 0)
		kill(pid, SIGKILL);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (got == (ssize_t)sizeof(m)) {
		if (m.code == 0)
			return 0;
		m.msg[sizeof(m.msg) - 1] = '\0';
		return vems__fail(m.code, "%s", m.msg);
	}
	if (pr == 0)
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: validating the pool did not end within "
				  "%u ms (libpmemobj's heap is damaged?); the "
				  "file is unchanged",
				  p->pmem_path, ms);
	if (WIFSIGNALED(st))
		return vems__fail(VEMS_E_CORRUPT,
				  "%s: libpmemobj crashed (signal %d) reading "
				  "the pool's lanes or heap: they are "
				  "damaged; the file is unchanged",
				  p->pmem_path, WTERMSIG(st));
	return vems__fail(-EIO, "%s: the validation process failed",
			  p->pmem_path);
}

int
vems_pool_open(struct vems_pool **poolp, const char *path,
	       const struct vems_config *cfg)
{
	int ret;
	if (poolp == NULL || path == NULL || path[0] == '\0')
		return vems__fail(-EINVAL,
				  "vems_pool_open: pool or path is "
				  "NULL or empty");
	*poolp = NULL;
	struct vems_pool *p = pool_alloc();
	if (p == NULL)
		return vems__fail(-ENOMEM, "out of memory");

	struct stat st;
	if ((ret = open_locked(path, 0, &st, &p->lock_fd)))
		goto fail;
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		ret = vems__fail(VEMS_E_NOTPOOL, "%s is not a file", path);
		goto fail;
	}
	char layout[PMEMOBJ_MAX_LAYOUT];
	struct layout_info li;
	if ((ret = read_layout(p->lock_fd, path, layout, &li)))
		goto fail;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size != li.size) {
		ret = vems__fail(VEMS_E_NOTPOOL,
				 "pool file %s is %llu bytes, its header says "
				 "%llu: truncated or damaged",
				 path, (unsigned long long)st.st_size,
				 (unsigned long long)li.size);
		goto fail;
	}
	const char *bp = cfg && cfg->block_path ? cfg->block_path : li.block;
	if ((ret = dup_paths(p, path, bp)))
		goto fail;

	/*
	 * The block file's header names this pool's UUID; checking it now,
	 * before pmemobj_open, keeps a wrong pairing from touching either
	 * file. The geometry is checked again against the superblock below.
	 */
	if ((ret = vems__block_precheck(bp, path, li.uuid)))
		goto fail;

	/* everything is validated in a throw-away copy first (see probe) */
	if (S_ISREG(st.st_mode) && !vems__probe_skip &&
	    (ret = probe(p, layout, &li, li.size)))
		goto fail;
	p->pop = obj_open(path, layout);
	if (p->pop == NULL) {
		ret = vems__fail(errno == EAGAIN || errno == EWOULDBLOCK
					 ? -EBUSY
					 : VEMS_E_CORRUPT,
				 "libpmemobj cannot open %s: %s", path,
				 pmemobj_errormsg());
		goto fail;
	}
	advertise_pid(p->lock_fd);
	p->sb = pmemobj_direct(pmemobj_root(p->pop, 0));
	if (p->sb == NULL) {
		ret = vems__fail(VEMS_E_CORRUPT, "%s has no superblock", path);
		goto fail;
	}
	if ((ret = check_super(p, &li)))
		goto fail;
	if ((ret = vems__block_open(bp, p->sb->nslots, p->sb->extent_size,
				    p->sb->uuid, p->sb->block_uuid,
				    &p->block_fd)))
		goto fail;
	if ((ret = attach(p, cfg)) || (ret = rebuild(p)) ||
	    (ret = vems__chunks_grow(
		     p, meta_reserve((uint64_t)p->nframes * p->extent_size))) ||
	    (ret = vems__spill_start(p, cfg)))
		goto fail;
	*poolp = p;
	return 0;
fail:
	pool_free(p);
	return ret;
}

int
vems_pool_persist(struct vems_pool *p)
{
	if (p == NULL)
		return vems__fail(-EINVAL, "pool is NULL");
	/*
	 * Every write already flushed its stores (or msync()ed them); what a
	 * deferred-drain write skipped is the fence, issued here. A fence
	 * orders the calling CPU's flushes only: see vems.h for what that
	 * means for deferred-drain writes made on other threads.
	 */
	vems__pmem_drain(p);
	return 0;
}

int
vems_pool_close(struct vems_pool **poolp)
{
	if (poolp == NULL || *poolp == NULL)
		return 0;
	struct vems_pool *p = *poolp;
	int ret = 0;
	unsigned live = atomic_load(&p->aio_ctxs);
	if (live > 0)
		return vems__fail(-EBUSY,
				  "pool %s has %u asynchronous context(s): "
				  "delete them first (the pool stays open)",
				  p->pmem_path, live);
	/* make the DRAM mtimes of open objects durable, then fence */
	for (struct vems_obj *h = p->handles; h; h = h->next) {
		int r = vems_obj_persist(h);
		if (r && !ret)
			ret = r;
	}
	vems__pmem_drain(p);
	pool_free(p);
	*poolp = NULL;
	return ret;
}

int
vems_pool_info(struct vems_pool *p, struct vems_pool_info *info)
{
	if (p == NULL || info == NULL)
		return vems__fail(-EINVAL, "pool or info is NULL");
	memset(info, 0, sizeof(*info));
	memcpy(info->uuid, p->sb->uuid, 16);
	info->format_version = p->sb->format;
	info->page_size = p->sb->page_size;
	info->extent_size = p->extent_size;
	info->pmem_size = p->sb->pmem_size;
	info->pmem_extents = p->frames_present;
	info->block_size = (uint64_t)p->nslots * p->extent_size;
	info->block_extents = p->nslots;
	info->pmem_path = p->pmem_path;
	info->block_path = p->block_path;
	info->is_pmem = p->is_pmem;
	info->block_io = p->block_io;
	return 0;
}
