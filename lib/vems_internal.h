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
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <libpmemobj.h>

#include "vems.h"
#include "layout.h"
#include "rwlock.h"

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
	unsigned low_watermark; /* percent of frames kept free, 0: off */
	unsigned block_flags;	/* VEMS_BLOCK_* */
	uint64_t inline_max;	/* UINT64_MAX: the default */
};
void vems__config_defaults(struct vems_config *cfg);

/* --- crc ------------------------------------------------------------ */

uint32_t vems__crc32c(const void *buf, size_t len);
/* Continues a CRC-32C over more bytes. */
uint32_t vems__crc32c_update(uint32_t crc, const void *buf, size_t len);

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

/*
 * Two forms (index.c): dense, while the mapped extents fill at least half
 * of [0, cap): keys NULL and vals[ext] the entry (UINT32_MAX: unmapped);
 * else a hash table: keys[i] = ext + 1 (0: empty), vals[i] its entry.
 */
struct vems_xidx {
	uint32_t *keys; /* NULL: the dense form */
	uint32_t *vals;
	uint32_t cap; /* power of two, or 0 */
	uint32_t count;
};
void vems__xidx_init(struct vems_xidx *x);
void vems__xidx_fini(struct vems_xidx *x);
uint32_t vems__xidx_hget(const struct vems_xidx *x, uint32_t ext);
/* Entry index of ext, or UINT32_MAX if unmapped. */
static inline uint32_t
vems__xidx_get(const struct vems_xidx *x, uint32_t ext)
{
	if (x->keys == NULL)
		return ext < x->cap ? x->vals[ext] : UINT32_MAX;
	return vems__xidx_hget(x, ext);
}
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
	struct vems_hnode by_serial; /* pool->serials, for the spiller */
	struct vems_oid oid;
	uint64_t serial;
	PMEMoid rec_oid;
	struct vems_obj_rec *rec;
	/*
	 * Readers of data take it shared, writers and truncate exclusive: a
	 * read sees a write wholly before or after it. Guards idx and the
	 * object's entries.
	 */
	struct vems_rwlock lock; /* rwlock.h */
	struct vems_xidx idx;
	_Atomic int64_t mtime_ns; /* DRAM copy, persisted with size */
	uint64_t nstate[4];	  /* mapped extents per vems_estate */
	int opens;		  /* handles open, under pool->meta_lock */
	bool nodrain_pending;	  /* a deferred-drain write happened */
	/* its removal is under way: at open (the next open finishes it), or
	 * a removal while handles were open (it is in p->removed, and the
	 * last close finishes it) */
	bool removing;
	bool stale_tail; /* extents past the end could not be freed */
	/*
	 * A small object's bytes (inline.c): the record's struct
	 * vems_inline, or NULL. Set and cleared under the exclusive lock;
	 * inl_gen bumped by every change of those bytes (an eviction in
	 * flight compares it), inl_ref set by every access (the eviction
	 * clock clears it). The list is pool->inl_lock's.
	 */
	_Atomic bool inl_ref;
	_Atomic uint32_t inl_gen;
	struct vems_inline *inl;
	struct vems_objnode *inl_prev, *inl_next;
};

/* An object record's size (the low bits of its size word). */
static inline uint64_t
vems__rec_size(const struct vems_obj_rec *r)
{
	return atomic_load_explicit((const _Atomic uint64_t *)&r->sizew,
				    memory_order_relaxed) &
		VEMS_SIZEW_MASK;
}

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

/*
 * DRAM state of one pmem extent frame: which entry maps it, and its place
 * in the replacement policy (policy.c). Never persisted.
 */
enum vems_fq {
	VEMS_FQ_NONE = 0,  /* free, or claimed by a write not yet committed */
	VEMS_FQ_SMALL = 1, /* S3-FIFO probation queue */
	VEMS_FQ_MAIN = 2,  /* S3-FIFO main queue */
	VEMS_FQ_BUSY = 3,  /* picked by a spill that is in flight */
};
struct vems_frame {
	uint32_t entry;	     /* entry mapping the frame while resident */
	uint32_t prev, next; /* queue links, VEMS_NO_FRAME at the ends */
	/*
	 * Bumped under the owning object's exclusive lock by anything that
	 * changes the frame's bytes or owner: a spill in flight compares it
	 * before committing, so a frame written meanwhile is not dropped.
	 */
	_Atomic uint32_t gen;
	_Atomic uint8_t freq; /* hits since insertion, saturating at 3 */
	uint8_t q;	      /* enum vems_fq, under policy lock */
	/* a block read into it may still be in flight (its ring failed):
	 * never handed out again while the pool is open; alloc_lock */
	bool lost;
	uint8_t *addr; /* the frame's bytes; NULL: its chunk does not exist */
};
struct vems_fifo {
	uint32_t head, tail; /* newest, oldest */
	uint32_t n;
};

/*
 * Event counters, sharded: each thread adds to its own cache line (one of
 * VEMS_STAT_SHARDS, picked once per thread), so threads on disjoint
 * objects never share a written line; vems_pool_stats() sums the shards.
 * A thread owns its shard alone (stats.c), so it adds without a locked
 * instruction; shard 0 is for threads beyond the rest, with atomic adds.
 */
#define VEMS_STAT_SHARDS 32
struct vems_counters {
	_Atomic uint64_t reads, writes, bytes_read, bytes_written;
	_Atomic uint64_t pmem_hits, block_hits, hole_reads;
	_Atomic uint64_t extents_allocated, extents_freed;
	_Atomic uint64_t spills, promotions, clean_drops;
	_Atomic uint64_t bytes_spilled, bytes_promoted;
	_Atomic uint64_t checksum_failures;
	_Atomic uint64_t sync_spills, block_fetches, block_errors;
	_Atomic uint64_t bytes_block_read;
	_Atomic uint64_t inline_evictions;
} __attribute__((aligned(64)));
extern _Thread_local unsigned vems__my_shard
	__attribute__((tls_model("initial-exec")));
unsigned vems__stat_shard_slow(void);
static inline unsigned
vems__stat_shard(void)
{
	unsigned s = vems__my_shard;
	return s != UINT32_MAX ? s : vems__stat_shard_slow();
}
/* Adds v to a counter of the calling thread's shard. */
static inline void
vems__stat_add(_Atomic uint64_t *c, uint64_t v)
{
	if (vems__my_shard != 0) /* owned: no other thread writes it */
		atomic_store_explicit(
			c, atomic_load_explicit(c, memory_order_relaxed) + v,
			memory_order_relaxed);
	else
		atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

struct vems_pool {
	PMEMobjpool *pop;
	struct vems_super *sb;
	struct vems_entry *entries;
	uint32_t *pchecks; /* [nslots][ppe]: page check table */
	uint32_t ppe;	   /* pages per extent */
	uint64_t extent_size;
	unsigned extent_shift;
	/* frame numbers run to nframes (the chunk table's capacity); only
	 * the frames_present of chunks that exist have memory (chunk.c) */
	uint32_t nframes, nslots, nentries;
	uint32_t nchunks, chunk_frames;
	uint8_t **chunk_base; /* [nchunks]: frame 0 of each, NULL: none */
	_Atomic uint32_t frames_present;
	/*
	 * A chunk being emptied for metadata (chunk.c), -1: none. Its frames
	 * never go back to the free list: they are counted in `parked`
	 * (alloc_lock) until all are, and the chunk is freed, or the attempt
	 * gives up and they are put back. One at a time (reclaim_lock).
	 */
	_Atomic int64_t draining;
	uint32_t parked;
	uint32_t *parked_v; /* [chunk_frames] */
	pthread_mutex_t reclaim_lock;
	bool is_pmem; /* decided once at open: flush+fence, or msync */

	int lock_fd; /* pmem file, holds the ownership locks */
	int block_fd;
	char *pmem_path;
	char *block_path;
	const char *block_io;
	char block_io_buf[48];

	/* objects, names and the open-handle list */
	pthread_rwlock_t meta_lock;
	struct vems_htab objects; /* by oid */
	/* by oid: removed objects with handles still open; their ids are
	 * not handed out again until the last close reclaims them */
	struct vems_htab removed;
	struct vems_htab names; /* by name */
	uint64_t nobjects, nnames;
	struct vems_obj *handles;

	struct vems_htab serials; /* objects by serial (meta_lock) */

	/* free frames / entries / slots: alloc_lock, never held across I/O */
	pthread_mutex_t alloc_lock;
	struct vems_freelist free_frames, free_entries, free_slots;
	/* async reads in flight per slot; a slot freed meanwhile is put on
	 * the free list by the last reader. Flags say why a slot that is
	 * neither free nor mapped is so (alloc_lock). */
	uint32_t *slot_pins;
	uint8_t *slot_flags;

	/* the capacity tier */
	struct vems_backend *be;
	uint64_t block_data_off;

	/* replacement policy (policy.c): pol_lock guards the queues */
	pthread_mutex_t pol_lock;
	struct vems_frame *fr; /* [nframes] */
	struct vems_fifo small, main;
	uint32_t *ghost; /* fingerprints of recently evicted extents */
	uint32_t ghost_mask;
	uint32_t *seen; /* ... of extents recently missed in part */
	uint32_t seen_mask;

	/* background spiller (spill.c) */
	unsigned low_pct;
	/* from frames_present, which a chunk's reclaim changes */
	_Atomic uint32_t low_frames, high_frames;
	pthread_t spiller;
	bool spiller_running;
	pthread_mutex_t sp_lock;
	pthread_cond_t sp_cond;
	bool sp_stop;
	_Atomic bool sp_kicked;
	/* spills between victim choice and commit; sp_done signalled as each
	 * batch ends (under sp_lock) */
	_Atomic unsigned spills_inflight;
	pthread_cond_t sp_done;

	/*
	 * Set when an msync of pmem failed (the msync path only): a store it
	 * covered may or may not be on media, so the pool refuses changes
	 * until it is reopened, and no frame or slot is handed out again.
	 */
	_Atomic bool failed;
	_Atomic unsigned aio_ctxs; /* live vems_aio_ctx (close refuses) */

	/* small objects' inline data (inline.c): the eviction clock's list
	 * (head newest), its allocations' bytes, and the size limit */
	pthread_mutex_t inl_lock;
	struct vems_objnode *inl_head, *inl_tail;
	_Atomic uint64_t inl_bytes, inl_count;
	uint32_t inl_max;
	unsigned inl_class[2]; /* allocation classes (inline.c), 0: none */
	uint64_t *inl_scan;    /* at open: offsets of the INLINE allocations */
	size_t inl_nscan, inl_capscan;

	struct vems_counters st[VEMS_STAT_SHARDS];
	/* gauges: extents per vems_estate; changed on (rare) state moves */
	_Atomic uint64_t nstate[4];
	_Atomic uint64_t uring_max_inflight;
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
/* Ranges made durable together (persist.c): on the msync path one msync
 * over their span at vems__flush_done, on the pmem path a flush each. */
struct vems_flushset {
	const uint8_t *lo, *hi;
};
int vems__flush_add(struct vems_pool *p, struct vems_flushset *s,
		    const void *addr, size_t len);
int vems__flush_done(struct vems_pool *p, struct vems_flushset *s);
/* vems__pmem_copy / vems__pmem_zero whose msync joins set s. */
int vems__pmem_copy_to(struct vems_pool *p, struct vems_flushset *s, void *dst,
		       const void *src, size_t len);
int vems__pmem_zero_to(struct vems_pool *p, struct vems_flushset *s, void *dst,
		       size_t len);
void vems__pmem_drain(struct vems_pool *p);
/* An 8-byte failure-atomic store, flushed (not drained). */
int vems__pmem_store64(struct vems_pool *p, uint64_t *dst, uint64_t v);
int vems__pmem_store8(struct vems_pool *p, uint8_t *dst, uint8_t v);

/*
 * Planted bugs, for proving that the crash harness catches each kind of
 * ordering mistake (tests/CMakeLists.txt, label plant). Compiled in only
 * with -DVEMS_PLANT=ON; VEMS_PLANT=<n> in the environment picks one.
 */
enum vems_plant {
	VEMS_PLANT_NONE = 0,
	VEMS_PLANT_NO_FLUSH = 1,   /* entry commit store never flushed */
	VEMS_PLANT_NO_FENCE = 2,   /* no fence between data and entries */
	VEMS_PLANT_TORN_ENTRY = 3, /* a spill's slot/crc and state unordered */
	VEMS_PLANT_EARLY_FRAME_FREE = 4,  /* frame reused before the switch */
	VEMS_PLANT_EARLY_SPILL_ACK = 5,	  /* spill commits before the sync */
	VEMS_PLANT_PHANTOM_WRITE = 6,	  /* a block write counted, never run */
	VEMS_PLANT_UNFLUSHED_PCHECKS = 7, /* a slot's page checks not flushed */
};
#ifdef VEMS_PLANT_BUGS
extern int vems__plant;
#define VEMS_PLANTED(x) (vems__plant == (x))
#else
#define VEMS_PLANTED(x) 0
#endif

/* Deadline of open's validation process (pool.c); tests set it lower. */
extern unsigned vems__probe_timeout_ms;
extern bool vems__probe_skip;
/* Tests (the crash verifier): vems_obj_pread never promotes a miss, so a
 * read does no persistence action at all (io.c). */
extern bool vems__read_no_promote;

/* True once an msync failed: writes then give -EIO until reopen. */
static inline bool
vems__pool_failed(struct vems_pool *p)
{
	return atomic_load_explicit(&p->failed, memory_order_relaxed);
}
/* -EIO with a sentence if the pool refuses changes (see `failed`);
 * persist.c. */
int vems__pool_writable(struct vems_pool *p);

/* --- freelist.c ---------------------------------------------- */

/* --- chunk.c: the data area's chunks -------------------------------- */

/* Frames a chunk holds in a pool of nframes_max possible frames. */
uint32_t vems__chunk_frames_for(uint64_t nframes_max, uint64_t extent_size);
/* Bytes of a chunk's allocation (fallback: for an unexpected alignment). */
uint64_t vems__chunk_bytes(uint64_t extent_size, uint32_t cf, bool fallback);
/* At create: as many chunks as fit, leaving `reserve` bytes for records. */
int vems__chunks_create(PMEMobjpool *pop, struct vems_super *sb,
			uint64_t reserve);
/* At open, before any other use: every table slot checked (psize: the
 * pool file's size, 0 for a device). */
int vems__chunks_validate(struct vems_pool *p, uint64_t psize);
int vems__chunks_attach(struct vems_pool *p);
void vems__chunks_detach(struct vems_pool *p);
/*
 * Gives a data chunk's heap space to metadata: empties the chunk whose
 * frames are cheapest to evict, then frees it with its table slot in one
 * transaction. Called with no lock held, by a metadata transaction that
 * found the heap full. 0, or -ENOSPC (with the reason) when no chunk can
 * be emptied: the last one, or data nobody can spill.
 */
int vems__chunk_reclaim(struct vems_pool *p);
/*
 * What a metadata transaction that found the heap full returns (with the
 * message set); the public call then makes room (vems__meta_full) and
 * tries again.
 */
#define VEMS__NOMETA (VEMS_E_BASE - 1001)
/* 0: room was made, retry; or the final -ENOSPC, saying what is full. */
int vems__meta_full(struct vems_pool *p, const char *what);
/* Tries of a metadata change before its ENOSPC stands (each freed a chunk,
 * and still the record did not fit: heap fragments too small). */
#define VEMS__META_TRIES 8
/* At open: chunks for the empty table slots while the heap keeps room for
 * metadata (`reserve` bytes). */
int vems__chunks_grow(struct vems_pool *p, uint64_t reserve);
/* A frame is free: to the free list, or parked if its chunk is being
 * emptied. alloc_lock held. */
void vems__frame_back_locked(struct vems_pool *p, uint32_t frame);
/* Table slot i as attached (vems_pool_check). */
bool vems__chunk_slot_ok(const struct vems_pool *p, uint32_t i);
/* The frame's bytes from the table (NULL: no such chunk). */
uint8_t *vems__frame_addr_slow(const struct vems_pool *p, uint32_t frame);
/* The frame holding addr, if any. */
bool vems__frame_of(const struct vems_pool *p, const void *addr,
		    uint32_t *frame);

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

/* Finds an object by OID in table t (p->objects or p->removed). */
static inline struct vems_objnode *
vems__obj_find_in(const struct vems_htab *t, const struct vems_oid *oid)
{
	uint64_t h = vems__hash64(oid->partition, oid->id);
	for (struct vems_hnode *e = vems__htab_first(t, h); e;
	     e = vems__htab_next_same(e)) {
		struct vems_objnode *n =
			vems_container_of(e, struct vems_objnode, by_oid);
		if (n->oid.partition == oid->partition && n->oid.id == oid->id)
			return n;
	}
	return NULL;
}

/* Finds a live object by OID; meta_lock held (either mode). */
static inline struct vems_objnode *
vems__obj_find(struct vems_pool *p, const struct vems_oid *oid)
{
	return vems__obj_find_in(&p->objects, oid);
}

/* Whether an OID is taken: by a live object, or by a removed one that
 * handles still hold. */
static inline bool
vems__obj_taken(struct vems_pool *p, const struct vems_oid *oid)
{
	return vems__obj_find(p, oid) || vems__obj_find_in(&p->removed, oid);
}
int vems__obj_load(struct vems_pool *p, PMEMoid rec_oid);
/* CRC-32C of an object record's transactional fields (its rcheck). */
uint32_t vems__rec_check(const struct vems_obj_rec *r);
void vems__obj_free_node(struct vems_objnode *n);
/* The size word for `size` of the object with `serial` (layout.h). */
uint64_t vems__sizew(uint64_t size, uint64_t serial);
/* super.c: the superblock's check of its transactional counters. */
uint32_t vems__super_mcheck(const struct vems_super *sb);
/* Inside a transaction: counts records made (+) or freed (-). */
void vems__super_tx_count(struct vems_super *sb, int dobj, int dname);
/* At open, after the entry pass: finishes interrupted removals. */
int vems__obj_finish_removals(struct vems_pool *p);

/* --- inline.c: small objects' bytes beside their record ------------ */

/* The default limit: a quarter of an extent, at most this. */
#define VEMS_INLINE_MAX_DEFAULT (UINT64_C(16) << 10)
/* The largest limit a configuration may set. */
#define VEMS_INLINE_MAX_LIMIT (UINT64_C(64) << 10)
uint32_t vems__inline_limit(uint64_t configured, uint64_t extent_size);
/* PMEMoid of an offset in the pool. */
PMEMoid vems__pool_oid(const struct vems_pool *p, uint64_t off);
/* At open, during the heap walk: one INLINE allocation. */
/* Registers inline blocks' allocation classes (runtime state of the heap,
 * at every open and create). */
void vems__inline_classes(struct vems_pool *p);

int vems__inline_scan_add(struct vems_pool *p, PMEMoid o);
/* At open, after the records: every INLINE allocation is named by the
 * record of its serial, and every record's names one (else
 * VEMS_E_CORRUPT); each object's `inl` set. Before the entry pass. */
int vems__inline_attach(struct vems_pool *p);
/* Allocation bytes an inline block takes (header, data, heap header). */
uint64_t vems__inline_bytes(const struct vems_pool *p,
			    const struct vems_inline *in);
/* Its header's check value. */
uint32_t vems__inline_check(uint64_t serial, uint32_t cap);
/*
 * n (held exclusively) gets a new inline block of at least cap bytes
 * holding the first `keep` bytes of its current one (or none), zeros up
 * to `live` but [off, off + len) from src; one transaction swaps it in and
 * frees the old one. The size is the caller's to store. 0, VEMS__NOMETA
 * (heap full, nothing changed) or -EIO.
 */
int vems__inline_replace(struct vems_pool *p, struct vems_objnode *n,
			 uint64_t cap, uint64_t keep, const uint8_t *src,
			 uint64_t off, size_t len, uint64_t live);
/* n (held exclusively) stops being inline: its block freed in one
 * transaction with the record's `inl` (the extents holding its bytes are
 * committed first). */
int vems__inline_drop(struct vems_pool *p, struct vems_objnode *n);
/* In the removal's transaction: frees the object's inline block. */
void vems__inline_tx_free(struct vems_pool *p, struct vems_objnode *n);
/* n's inline block leaves the eviction clock (it was freed). */
void vems__inline_unlink(struct vems_pool *p, struct vems_objnode *n);
/*
 * Moves the coldest inline objects (not `held`) to the block file, each
 * as one BLOCK extent, until about `want` bytes of heap are free: returns
 * the bytes freed, or -errno (-ENOSPC: the block file is full).
 */
/*
 * Locks n (shared or exclusive) if it comes free within a few tries; n ==
 * held: already held, nothing to do. A busy object is in use, hence not
 * cold: spilling and eviction pass it over (spill.c).
 */
bool vems__obj_trylock(struct vems_objnode *n, struct vems_objnode *held,
		       bool excl);

int64_t vems__inline_evict(struct vems_pool *p, uint64_t want,
			   struct vems_objnode *held);
/* Marks an access (the eviction clock). */
static inline void
vems__inline_touch(struct vems_objnode *n)
{
	if (!atomic_load_explicit(&n->inl_ref, memory_order_relaxed))
		atomic_store_explicit(&n->inl_ref, true, memory_order_relaxed);
}

/* --- namespace.c ----------------------------------------------------- */

int vems__name_load(struct vems_pool *p, PMEMoid rec_oid);
void vems__names_fini(struct vems_pool *p);
/* At open: every name is bound to a live object, else VEMS_E_CORRUPT. */
int vems__names_verify(struct vems_pool *p);
/* Names bound to oid (collect, free in a transaction, then drop). */
int vems__names_of_oid(struct vems_pool *p, const struct vems_oid *oid,
		       struct vems_name ***v, size_t *cnt);
void vems__names_tx_free(struct vems_name **v, size_t cnt);
void vems__names_drop(struct vems_pool *p, struct vems_name **v, size_t cnt);
/*
 * For vems_obj_create_named, meta_lock held exclusively: the name's checks
 * (0, -EINVAL, -ENAMETOOLONG, -EEXIST when bound), its record allocated
 * inside the caller's transaction (the name count with it), and its DRAM
 * node once that committed (-ENOMEM: nothing added).
 */
int vems__name_can_bind(struct vems_pool *p, const char *name, size_t *len);
PMEMoid vems__name_tx_new(struct vems_pool *p, const char *name, size_t len,
			  const struct vems_oid *oid);
int vems__name_add(struct vems_pool *p, PMEMoid rec_oid);

/* --- policy.c: S3-FIFO over resident frames, DRAM only -------------- */

int vems__pol_init(struct vems_pool *p);
void vems__pol_fini(struct vems_pool *p);
/* A frame became resident (committed): hot ones go to the main queue. */
void vems__pol_insert(struct vems_pool *p, uint32_t frame, uint32_t entry,
		      bool hot);
/* A frame is leaving pmem by another way than a spill (truncate, remove). */
void vems__pol_remove(struct vems_pool *p, uint32_t frame);
/* Takes up to max frames out of the queues as spill candidates (BUSY). */
uint32_t vems__pol_victims(struct vems_pool *p, uint32_t *out, uint32_t max);
/*
 * Candidates among the frames of one object (oldest first), other than its
 * extents [lo, hi]: a writer that holds that object and found nothing else
 * evictable (every other candidate's object busy) can always use these.
 */
uint32_t vems__pol_victims_own(struct vems_pool *p, uint64_t serial,
			       uint32_t lo, uint32_t hi, uint32_t *out,
			       uint32_t max);
/* Every resident frame in [f0, f1), whatever its recency (a chunk being
 * emptied). */
uint32_t vems__pol_victims_range(struct vems_pool *p, uint32_t f0, uint32_t f1,
				 uint32_t *out, uint32_t max);
/* A candidate that was not spilled goes back (main queue) if still BUSY. */
void vems__pol_putback(struct vems_pool *p, uint32_t frame);
/* The read/write hit path: no lock, no pmem write. */
static inline void
vems__pol_touch(struct vems_pool *p, uint32_t frame)
{
	_Atomic uint8_t *f = &p->fr[frame].freq;
	uint8_t v = atomic_load_explicit(f, memory_order_relaxed);
	if (v < 3)
		atomic_store_explicit(f, (uint8_t)(v + 1),
				      memory_order_relaxed);
}
/* Ghost entries: was (serial, ext) evicted recently? Consumes the hit. */
bool vems__ghost_take(struct vems_pool *p, uint64_t serial, uint32_t ext);
/* A part of extent ext was missed: true if a part was missed lately too
 * (then forgotten), else remembered (a small direct-mapped table). */
bool vems__seen_again(struct vems_pool *p, uint64_t serial, uint32_t ext);
extern uint32_t vems__seen_sets_min; /* sets of that table, at least */
void vems__ghost_add(struct vems_pool *p, uint64_t serial, uint32_t ext);

/* --- spill.c: moving extents between the tiers ----------------------- */

int vems__spill_start(struct vems_pool *p, const struct vems_config *cfg);
void vems__spill_stop(struct vems_pool *p);
/*
 * Frees up to `want` frames by spilling cold extents (one batch). `held`
 * is an object the caller holds exclusively (its extents [lo, hi] are
 * never chosen), or NULL. Returns the frames freed, or -errno.
 */
/* The marks from frames_present and the configured percentage. */
void vems__watermarks_set(struct vems_pool *p);
/* Evicts what is resident in frames [f0, f1) (spilled or dropped): one
 * batch; returns the frames freed, or -errno. */
int vems__spill_range(struct vems_pool *p, uint32_t f0, uint32_t f1);
int vems__spill(struct vems_pool *p, uint32_t want, struct vems_objnode *held,
		uint32_t lo, uint32_t hi, bool own);
/*
 * Internal: pmem is full of extents that cannot be evicted while the
 * caller holds its object (other writers hold theirs): drop the object
 * lock, wait a little, try again. Never returned to users.
 */
#define VEMS__RETRY (VEMS_E_BASE - 1000)
/* Waits up to `ms` for a spill to end or frames to come back. */
void vems__spill_wait(struct vems_pool *p, unsigned ms);
/* Takes `need` free frames, spilling synchronously while pmem is full;
 * VEMS__RETRY if nothing can be freed while `held` stays locked. */
int vems__frames_reserve(struct vems_pool *p, uint32_t need, uint32_t *out,
			 struct vems_objnode *held, uint32_t lo, uint32_t hi);
/* Returns frames that were reserved and never mapped. */
void vems__frames_unreserve(struct vems_pool *p, const uint32_t *v, uint32_t n);
/* A resident extent's frame is released (its entry no longer names it). */
void vems__frame_free(struct vems_pool *p, uint32_t frame);
/* alloc.c: a free slot for a spill (flagged SPILLING), false if none. */
bool vems__slot_alloc(struct vems_pool *p, uint32_t *slot);
/* alloc.c: how many frames are free now. */
uint32_t vems__free_frames(struct vems_pool *p);
/* A slot is no longer referenced; reused once no async read pins it. */
void vems__slot_free(struct vems_pool *p, uint32_t slot);
void vems__slot_pin(struct vems_pool *p, uint32_t slot);
void vems__slot_unpin(struct vems_pool *p, uint32_t slot);
#define VEMS_SLOT_FREE_PENDING 1 /* freed while pinned */
#define VEMS_SLOT_SPILLING 2	 /* taken by a spill not yet committed */
/* A spill's slot is now named by its entry. */
void vems__slot_committed(struct vems_pool *p, uint32_t slot);
/* Byte offset of a slot in the block file. */
static inline uint64_t
vems__slot_off(const struct vems_pool *p, uint32_t slot)
{
	return p->block_data_off + ((uint64_t)slot << p->extent_shift);
}
/* Runs n transfers to completion (at most 32 in flight) and, if `sync`,
 * a block-file sync that the successful writes need to count as done.
 * Returns 0 or the first error; each ->res says how its transfer ended
 * (VEMS_BIO_PENDING: may still be in flight, keep its buffer; backend.h). */
struct vems_bio;
int vems__bio_run(struct vems_pool *p, struct vems_bio **v, size_t n,
		  bool sync);
/* Reads a slot into buf (extent_size bytes, backend-aligned) and checks
 * it against crc; -EIO with a sentence naming the object on mismatch. */
int vems__slot_read(struct vems_pool *p, const struct vems_objnode *n,
		    uint32_t ext, uint32_t slot, uint32_t crc, void *buf);
/* A page read back failing its check as an -EIO with a sentence. */
int vems__crc_fail(struct vems_pool *p, const struct vems_objnode *n,
		   uint32_t ext, uint32_t slot, uint32_t page, uint32_t want,
		   uint32_t got);

/* --- pcheck.c: block data checked per page ---------------------------- */

#define VEMS_EXTENT_MAX (UINT64_C(2) << 20) /* largest extent size */

/* Bytes of the page check table (never an empty allocation). */
static inline uint64_t
vems__pchecks_bytes(uint64_t nslots, uint64_t extent_size)
{
	uint64_t b = nslots * (extent_size / VEMS_PAGE_SIZE) * sizeof(uint32_t);
	return b < 64 ? 64 : b;
}
/* A slot's row: the CRC-32Cs of its pages. */
static inline uint32_t *
vems__slot_pchecks(const struct vems_pool *p, uint32_t slot)
{
	return p->pchecks + (uint64_t)slot * p->ppe;
}
/*
 * Stores the page checks of `ext` (an extent's bytes about to be written
 * to the free slot) in the slot's row, with plain stores (the spill commit
 * flushes the row before the fence ahead of the entry naming it), and
 * returns the row's CRC-32C: the entry's crc.
 */
uint32_t vems__pchecks_fill(struct vems_pool *p, uint32_t slot,
			    const void *ext);
/* The crc an entry would have for an extent holding `ext` (check). */
uint32_t vems__pchecks_crc(const struct vems_pool *p, const void *ext);
/*
 * Verifies pages [pg, pg + npg) of slot, read into buf, against the slot's
 * row, and the row against the entry's crc. 0, or -EIO with a sentence.
 */
int vems__pages_verify(struct vems_pool *p, const struct vems_objnode *n,
		       uint32_t ext, uint32_t slot, uint32_t crc, uint32_t pg,
		       uint32_t npg, const void *buf);
/* Kicks the background spiller when free frames are below the mark. */
void vems__spill_kick(struct vems_pool *p);
/* Finds an object by serial (removed ones too); meta_lock held. */
static inline struct vems_objnode *
vems__obj_by_serial(struct vems_pool *p, uint64_t serial)
{
	for (struct vems_hnode *h = vems__htab_first(&p->serials, serial); h;
	     h = vems__htab_next_same(h)) {
		struct vems_objnode *n =
			vems_container_of(h, struct vems_objnode, by_serial);
		if (n->serial == serial)
			return n;
	}
	return NULL;
}

/* --- io.c ------------------------------------------------------------ */

/* A BLOCK extent read twice while recent: brought back after the read. */
struct vems_promo {
	uint32_t ext, entry, slot;
	uint8_t *src; /* verified bytes of the whole extent */
	bool own;     /* src is a bounce buffer to free */
	bool hot;     /* evicted lately (a ghost hit): main queue */
};
/* Brings verified copies back into free frames as clean extents (best
 * effort). With too few frames free it first evicts the policy's next
 * victims (vems__spill: may write a dirty one), holding nothing, then
 * takes n's lock exclusively. In extent.c; the caller kicks the spiller
 * afterwards (vems__spill_kick). */
void vems__promote(struct vems_pool *p, struct vems_objnode *n,
		   struct vems_promo *v, size_t cnt);
/* A buffer of len bytes aligned for the backend. */
void *vems__bounce_alloc(const struct vems_pool *p, size_t len);
/* How a read of [in, in + chunk) of spilled extent ext into dst, part of
 * a call of len bytes, goes to the block file: which pages, through a
 * bounce buffer or not, and whether the extent is then brought back (the
 * whole extent is read). */
struct vems_plan {
	uint32_t pg, npg;
	bool bounce, promote, hot;
};
/* a read at least this many extents and bytes long is a scan */
#define VEMS_SCAN_EXTENTS 4
#define VEMS_SCAN_BYTES (256u << 10)
void vems__miss_plan(struct vems_pool *p, const struct vems_objnode *n,
		     uint32_t ext, uint64_t in, size_t chunk, size_t len,
		     const uint8_t *dst, struct vems_plan *pl);
/* vems_obj_pwrite, or -EAGAIN (nothing changed) if it needs block I/O. */
ssize_t vems__pwrite_nowait(struct vems_obj *obj, const void *buf, size_t len,
			    uint64_t off, unsigned flags);

static inline uint8_t *
vems__frame_addr(const struct vems_pool *p, uint32_t frame)
{
	return p->fr[frame].addr;
}

/*
 * One extent's part of a read, the object held shared: zeros for a hole,
 * a copy from the frame for a resident extent (true). For a spilled one it
 * returns false with *ei set, and the caller reads the block file.
 */
static inline bool
vems__read_local(struct vems_pool *p, struct vems_objnode *n, uint32_t ext,
		 uint64_t in, uint8_t *dst, size_t chunk, uint32_t *ei,
		 uint64_t *hits, uint64_t *holes)
{
	*ei = vems__xidx_get(&n->idx, ext);
	if (*ei == UINT32_MAX) {
		memset(dst, 0, chunk);
		(*holes)++;
		return true;
	}
	const struct vems_entry *e = &p->entries[*ei];
	if (e->state == VEMS_ES_BLOCK)
		return false;
	memcpy(dst, vems__frame_addr(p, e->frame) + in, chunk);
	vems__pol_touch(p, e->frame);
	(*hits)++;
	return true;
}

/* --- small helpers -------------------------------------------------- */

/*
 * Wall-clock time for mtimes, at the kernel's own granularity for file
 * times (the coarse clock: one tick, a few ms), for about a quarter of
 * the cost of CLOCK_REALTIME (vems-bench --only mechanisms).
 */
static inline int64_t
vems__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The calling thread's shard, for several adds in a row. */
#define VEMS_STATS(p) (&(p)->st[vems__stat_shard()])
#define VEMS_STAT_ADD_TO(c, field, v) vems__stat_add(&(c)->field, (v))
#define VEMS_STAT_ADD(p, field, v)                                             \
	vems__stat_add(&(p)->st[vems__stat_shard()].field, (v))

#endif /* VEMS_INTERNAL_H */
