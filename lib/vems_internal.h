/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vems_internal.h -- private structs and vems__ prototypes shared by lib/
 */
#ifndef VEMS_INTERNAL_H
#define VEMS_INTERNAL_H 1

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <libpmemobj.h>

#include "vems.h"
#include "layout.h"

#define VEMS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define VEMS_NO_FRAME UINT32_MAX

/* --- errormsg.c ----------------------------------------------------- */

/* Sets the thread's detail sentence and returns code (for `return`). */
int vems__fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends ": <text>" to the thread's sentence (for wrapping lower errors). */
void vems__errmsg_append(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* --- config.c ------------------------------------------------------- */

struct vems_config {
	uint64_t pmem_size;
	char *block_path;
	uint64_t block_size;
	uint64_t extent_size;
};
void vems__config_defaults(struct vems_config *cfg);

/* --- crc ------------------------------------------------------------ */

uint32_t vems__crc32c(const void *buf, size_t len);

/* --- hashmap.c: intrusive chained hash table ------------------------ */

struct vems_hnode {
	struct vems_hnode *next;
	uint64_t hash;
};
struct vems_htab {
	struct vems_hnode **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
};
int vems__htab_init(struct vems_htab *h, size_t expect);
void vems__htab_fini(struct vems_htab *h);
/* Inserts n (no duplicate check). -ENOMEM only when growing fails, and
 * then n is inserted anyway (the table just stays denser). */
void vems__htab_insert(struct vems_htab *h, struct vems_hnode *n,
		       uint64_t hash);
void vems__htab_remove(struct vems_htab *h, struct vems_hnode *n);
/* First node with this hash, then vems__htab_next_same() for more. */
struct vems_hnode *vems__htab_first(const struct vems_htab *h, uint64_t hash);
struct vems_hnode *vems__htab_next_same(const struct vems_hnode *n);
uint64_t vems__hash64(uint64_t a, uint64_t b);
uint64_t vems__hash_str(const char *s, size_t len);
#define vems_container_of(p, type, member)                                     \
	((type *)(void *)((char *)(p)-offsetof(type, member)))

/* --- index.c: per-object DRAM extent index (ext_index -> entry) ----- */

struct vems_xidx {
	uint32_t *keys; /* ext_index + 1; 0 = empty */
	uint32_t *vals; /* entry index */
	uint32_t cap;	/* power of two, or 0 */
	uint32_t count;
};
void vems__xidx_init(struct vems_xidx *x);
void vems__xidx_fini(struct vems_xidx *x);
/* Entry index of ext, or UINT32_MAX if unmapped. */
uint32_t vems__xidx_get(const struct vems_xidx *x, uint32_t ext);
int vems__xidx_put(struct vems_xidx *x, uint32_t ext, uint32_t entry);
void vems__xidx_del(struct vems_xidx *x, uint32_t ext);
/* Calls fn for each (ext, entry); fn may not modify the index. */
void vems__xidx_foreach(const struct vems_xidx *x,
			void (*fn)(uint32_t ext, uint32_t entry, void *arg),
			void *arg);

/* --- pool state ------------------------------------------------------ */

/* A simple LIFO of free uint32 indices (frames, entries, slots). */
struct vems_freelist {
	uint32_t *v;
	uint32_t n;
	uint32_t cap;
};

/* One per object, in DRAM, for as long as the pool is open. */
struct vems_objnode {
	struct vems_hnode by_oid;
	struct vems_oid oid;
	uint64_t serial;
	PMEMoid rec_oid;
	struct vems_obj_rec *rec;
	/*
	 * Readers of data take it shared, writers and truncate exclusive: a
	 * read sees a write wholly before or after it. Guards idx and the
	 * object's entries.
	 */
	pthread_rwlock_t lock;
	struct vems_xidx idx;
	_Atomic int64_t mtime_ns; /* DRAM copy, persisted with size */
	uint64_t nstate[4];	  /* mapped extents per vems_estate */
	int opens;		  /* handles open, under pool->meta_lock */
	bool nodrain_pending;	  /* a deferred-drain write happened */
};

struct vems_name {
	struct vems_hnode node;
	PMEMoid rec_oid;
	struct vems_name_rec *rec;
};

struct vems_obj {
	struct vems_pool *pool;
	struct vems_objnode *node;
	unsigned flags;
	struct vems_obj *next, *prev; /* pool's list of open handles */
};

struct vems_counters {
	_Atomic uint64_t reads, writes, bytes_read, bytes_written;
	_Atomic uint64_t pmem_hits, block_hits, hole_reads;
	_Atomic uint64_t extents_allocated, extents_freed;
	_Atomic uint64_t spills, promotions, clean_drops;
	_Atomic uint64_t bytes_spilled, bytes_promoted;
	_Atomic uint64_t checksum_failures, uring_max_inflight;
	_Atomic uint64_t nstate[4]; /* mapped extents per vems_estate */
};

struct vems_pool {
	PMEMobjpool *pop;
	struct vems_super *sb;
	struct vems_entry *entries;
	uint8_t *frames; /* frame 0 */
	uint64_t extent_size;
	unsigned extent_shift;
	uint32_t nframes, nslots, nentries;
	bool is_pmem; /* decided once at open: flush+fence, or msync */

	int lock_fd; /* pmem file, holds the ownership locks */
	int block_fd;
	char *pmem_path;
	char *block_path;
	const char *block_io;

	/* objects, names and the open-handle list */
	pthread_rwlock_t meta_lock;
	struct vems_htab objects; /* by oid */
	struct vems_htab names;	  /* by name */
	uint64_t nobjects, nnames;
	struct vems_obj *handles;

	/* free frames / entries / slots: alloc_lock, never held across I/O */
	pthread_mutex_t alloc_lock;
	struct vems_freelist free_frames, free_entries, free_slots;

	struct vems_counters st;
};

/* --- persist.c: every flush and fence of libvems -------------------- */

/*
 * Copies into pmem and starts the write-back; durable after vems__drain().
 * On a mapping that is not real pmem the range is msync()ed at once, so the
 * drain is a no-op there. Return 0 or -EIO (msync failed).
 */
int vems__pmem_copy(struct vems_pool *p, void *dst, const void *src,
		    size_t len);
int vems__pmem_zero(struct vems_pool *p, void *dst, size_t len);
int vems__pmem_flush(struct vems_pool *p, const void *addr, size_t len);
void vems__pmem_drain(struct vems_pool *p);
/* An 8-byte failure-atomic store, flushed (not drained). */
int vems__pmem_store64(struct vems_pool *p, uint64_t *dst, uint64_t v);
int vems__pmem_store8(struct vems_pool *p, uint8_t *dst, uint8_t v);

/* --- freelist (pool.c) ---------------------------------------------- */

int vems__fl_init(struct vems_freelist *fl, uint32_t cap);
void vems__fl_fini(struct vems_freelist *fl);
void vems__fl_push(struct vems_freelist *fl, uint32_t v);
bool vems__fl_pop(struct vems_freelist *fl, uint32_t *v);

/* --- block.c: the block file ---------------------------------------- */

int vems__block_create(const char *path, uint64_t nslots, uint64_t extent_size,
		       const uint8_t pool_uuid[16],
		       const uint8_t block_uuid[16], int *fdp);
int vems__block_precheck(const char *path, const char *pool_path,
			 const uint8_t pool_uuid[16]);
/* Opens and validates against the pool's identity. */
int vems__block_open(const char *path, uint64_t nslots, uint64_t extent_size,
		     const uint8_t pool_uuid[16], const uint8_t block_uuid[16],
		     int *fdp);
int vems__block_check(struct vems_pool *p, vems_report_fn report, void *arg);

/* --- object.c -------------------------------------------------------- */

struct vems_objnode *vems__obj_find(struct vems_pool *p,
				    const struct vems_oid *oid);
int vems__obj_load(struct vems_pool *p, PMEMoid rec_oid);
void vems__obj_free_node(struct vems_objnode *n);
/* Frees entries of n whose extent lies at or past `from_ext`; n locked. */
int vems__obj_free_extents(struct vems_pool *p, struct vems_objnode *n,
			   uint64_t from_ext);

/* --- namespace.c ----------------------------------------------------- */

int vems__name_load(struct vems_pool *p, PMEMoid rec_oid);
void vems__names_fini(struct vems_pool *p);
/* Names bound to oid (collect, free in a transaction, then drop). */
int vems__names_of_oid(struct vems_pool *p, const struct vems_oid *oid,
		       struct vems_name ***v, size_t *cnt);
void vems__names_tx_free(struct vems_name **v, size_t cnt);
void vems__names_drop(struct vems_pool *p, struct vems_name **v, size_t cnt);

/* --- io.c ------------------------------------------------------------ */

static inline uint8_t *
vems__frame_addr(const struct vems_pool *p, uint32_t frame)
{
	return p->frames + ((uint64_t)frame << p->extent_shift);
}

/* --- small helpers -------------------------------------------------- */

static inline int64_t
vems__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define VEMS_STAT_ADD(p, field, v)                                             \
	atomic_fetch_add_explicit(&(p)->st.field, (v), memory_order_relaxed)

#endif /* VEMS_INTERNAL_H */
