/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vems.h -- libvems: an object store on persistent memory backed by a block
 * file ("virtually extended memory storage", in userspace).
 *
 * A pool is one pmem file (a DAX file, a device-dax node, or emulated pmem:
 * any regular or tmpfs file) plus one block file. Data is addressed by
 * OSD-style object IDs and byte offsets. A write that lands in pmem is
 * durable when the call returns; a read of pmem-resident data is one copy.
 *
 * Conventions, for every function below unless its comment says otherwise:
 *  - 0 (or a byte count) on success, a negative value on failure: either
 *    -errno (e.g. -EINVAL, -ENOENT, -ENOSPC) or one of the VEMS_E_* codes.
 *  - On failure, vems_errormsg() returns a sentence about what went wrong in
 *    this thread; vems_strerror(code) gives the static text for a code.
 *  - Handles are opaque; the _new and _open calls fill a pointer, _delete and
 *    _close take the address of that pointer, accept NULL and clear it.
 *  - Every function is thread-safe: any number of threads may use one pool,
 *    one object, or one object handle at the same time.
 *  - NULL where a pointer is required is -EINVAL.
 */
#ifndef VEMS_H
#define VEMS_H 1

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VEMS_API __attribute__((visibility("default")))
#else
#define VEMS_API
#endif

/* --- version -------------------------------------------------------- */

#define VEMS_VERSION_MAJOR 0
#define VEMS_VERSION_MINOR 1
#define VEMS_VERSION_PATCH 0
/* The on-media format this library writes and reads. */
#define VEMS_FORMAT_VERSION 5

/* The library's version as "MAJOR.MINOR.PATCH" (of the loaded library). */
VEMS_API const char *vems_version(void);

/* --- errors --------------------------------------------------------- */

/*
 * Library-only conditions. They sit below every -errno value so that the two
 * never collide.
 */
#define VEMS_E_BASE (-100000)
#define VEMS_E_NOTPOOL (VEMS_E_BASE - 1)  /* file is not a libvems pool */
#define VEMS_E_VERSION (VEMS_E_BASE - 2)  /* pool format is not ours */
#define VEMS_E_CORRUPT (VEMS_E_BASE - 3)  /* metadata fails validation */
#define VEMS_E_MISMATCH (VEMS_E_BASE - 4) /* pmem and block file differ */
/* Reserved: block data failing its checksum is reported as -EIO. */
#define VEMS_E_CHECKSUM (VEMS_E_BASE - 5)
#define VEMS_E_LAST VEMS_E_CHECKSUM

/*
 * Text for a code returned by any vems_* function: a negative errno (its
 * strerror text), a VEMS_E_* code, 0 ("success"), or any other value
 * ("unknown libvems error N"). Never NULL. The text of a VEMS_E_* code is
 * static; that of an errno or an unknown code is in a buffer of the
 * calling thread, valid until its next vems_strerror call.
 */
VEMS_API const char *vems_strerror(int code);

/*
 * The detail sentence of the last failure in the calling thread (for example
 * "pool file /x/p is 4194304 bytes, its header says 67108864: truncated?").
 * Only failing calls write it; it is "" if nothing failed in this thread yet.
 * The pointer is valid until the thread's next vems_* call.
 */
VEMS_API const char *vems_errormsg(void);

/* --- value types ---------------------------------------------------- */

/* An OSD-style object ID: a partition and an object number within it.
 * Messages (vems_errormsg(), vems_pool_check reports) and vemsctl write it
 * as PARTITION:ID, e.g. 0:17. */
struct vems_oid {
	uint64_t partition;
	uint64_t id;
};

/* Fixed unit of copying; objects are cut into pages of this size. */
#define VEMS_PAGE_SIZE 4096u
/* The largest byte offset + 1 an object may have (8 TiB): extent numbers
 * are 32-bit on media, and 2^43 / 4 KiB (the smallest extent) fits. */
#define VEMS_OBJ_MAX_SIZE (UINT64_C(1) << 43)
/* The longest name, in bytes, without the terminating NUL. */
#define VEMS_NAME_MAX 4095u

/* --- configuration -------------------------------------------------- */

struct vems_config;

/*
 * Creates a configuration with every default set:
 * pmem size 0 (create: required unless the pmem file exists with a size,
 * e.g. a device-dax node), block path NULL (create: "<pmem path>.blk"),
 * block size 0 (create: 8 x the pmem size), extent size 64 KiB.
 * Errors: -EINVAL (cfg NULL), -ENOMEM.
 */
VEMS_API int vems_config_new(struct vems_config **cfg);

/* Frees a configuration; accepts NULL and *cfg == NULL. */
VEMS_API void vems_config_delete(struct vems_config **cfg);

/*
 * Size of the pmem file to create, in bytes. At least VEMS_PMEM_MIN_SIZE.
 * Errors: -EINVAL (below the minimum or not a multiple of 4 KiB).
 */
#define VEMS_PMEM_MIN_SIZE (UINT64_C(16) << 20)
VEMS_API int vems_config_set_pmem_size(struct vems_config *cfg, uint64_t bytes);

/*
 * Path of the block file. At create: the file to create (it must not exist
 * unless it is a block device). At open: overrides the path recorded in the
 * pool (for a block file that was moved); its UUID must still match.
 * Errors: -EINVAL (empty), -ENAMETOOLONG (PATH_MAX or longer), -ENOMEM.
 */
VEMS_API int vems_config_set_block_path(struct vems_config *cfg,
					const char *path);

/*
 * Size of the block file to create, in bytes (rounded down to whole extents).
 * 0 picks the default. Errors: -EINVAL (not 0 and smaller than one extent).
 */
VEMS_API int vems_config_set_block_size(struct vems_config *cfg,
					uint64_t bytes);

/*
 * Extent size: the unit of placement and of spilling, a power of two from
 * 4 KiB to 2 MiB. Fixed for the pool's life. Errors: -EINVAL.
 */
VEMS_API int vems_config_set_extent_size(struct vems_config *cfg,
					 uint64_t bytes);

/*
 * The low watermark, in percent of pmem's extent frames (used by open and
 * create; default 5). A background spiller per pool keeps at least this
 * share of frames free by writing cold extents to the block file in
 * batches, up to 2.5% of the frames more than the mark. 0 turns the
 * spiller off: writers then spill synchronously when pmem is full, as they
 * always do when the spiller falls behind. Errors: -EINVAL (over 50).
 */
#define VEMS_LOW_WATERMARK_DEFAULT 5u
VEMS_API int vems_config_set_low_watermark(struct vems_config *cfg,
					   unsigned percent);

/* Block-file I/O flags (used by open and create; default 0). */
#define VEMS_BLOCK_BUFFERED (1u << 0) /* never O_DIRECT */
#define VEMS_BLOCK_DSYNC (1u << 1)    /* RWF_DSYNC writes, no fdatasync */
/*
 * How the block file is accessed. By default it is opened O_DIRECT where
 * the file system honours that (not tmpfs; checked at open) and spilled
 * data is made durable by one fdatasync per batch, which measured faster
 * here than RWF_DSYNC writes (see bench/README.md). Errors: -EINVAL
 * (unknown flags).
 */
VEMS_API int vems_config_set_block_io(struct vems_config *cfg, unsigned flags);

/*
 * Small objects (used by open and create; default: a quarter of the extent
 * size, at most 16 KiB). An object no larger than this keeps its bytes in
 * one pmem allocation of its own, sized to them, instead of a whole extent
 * in each tier; when pmem runs short the coldest move to the block file as
 * ordinary extents. An object that grows past the limit moves to extents.
 * 0 turns this off for new data (objects stored so far stay as they are).
 * Errors: -EINVAL (over 64 KiB).
 */
VEMS_API int vems_config_set_inline_max(struct vems_config *cfg,
					uint64_t bytes);

/* --- pools ---------------------------------------------------------- */

struct vems_pool;

/*
 * Creates a pool: the pmem file at pmem_path (created with the configured
 * size if it does not exist; an existing empty regular file is resized; an
 * existing device-dax node or non-empty file is used at its size) and the
 * block file, stamped with the pool's UUID. The new pool is left open.
 * cfg may be NULL only if the pmem file exists with a size.
 * Errors: -EINVAL, -EEXIST (block file exists, or the pmem file already
 * holds a pool), -ENOSPC / -EFBIG (sizes too small for the metadata),
 * -EBUSY (the pmem file is open in this or another process), other -errno
 * from the file system.
 */
VEMS_API int vems_pool_create(struct vems_pool **pool, const char *pmem_path,
			      const struct vems_config *cfg);

/*
 * Opens a pool, validates both files and rebuilds the DRAM index. A pool is
 * owned by one process (and one open handle) at a time. cfg may be NULL.
 * Errors: -ENOENT, -EBUSY (open elsewhere; the message names the pid),
 * VEMS_E_NOTPOOL (not a libvems pool, or a truncated one), VEMS_E_VERSION
 * (written by another format version), VEMS_E_CORRUPT, VEMS_E_MISMATCH (the
 * block file is not this pool's), other -errno. A damaged pool gives an
 * error, never a crash or a hang: everything is first validated in a child
 * process on a copy-on-write mapping. When open fails on bad or damaged
 * input the files are not modified. Failures after that validation (out of
 * memory, io_uring unavailable) come after libpmemobj's own open, which
 * updates its run id; a device-DAX pool (no copy-on-write mapping) is
 * validated in place.
 */
VEMS_API int vems_pool_open(struct vems_pool **pool, const char *pmem_path,
			    const struct vems_config *cfg);

/*
 * Makes everything durable, closes every object handle still open on the
 * pool (they become invalid), and frees the pool. Accepts NULL.
 * Returns 0 or the first error met while flushing (the pool is freed anyway).
 * -EBUSY, with the pool left open and untouched, while an asynchronous
 * context (vems_aio_ctx_new) of the pool exists: delete those first.
 */
VEMS_API int vems_pool_close(struct vems_pool **pool);

/*
 * The synchronous barrier for the whole pool. When it returns, durable are:
 * every write that returned before it on the calling thread, and every
 * write without VEMS_W_NODRAIN from any thread (those were durable when
 * they returned). A VEMS_W_NODRAIN write made on another thread is flushed
 * but not fenced by that thread, and a fence only orders its own CPU's
 * flushes: it becomes durable through a barrier (or a fenced write) on the
 * thread that made it. On a pool that is not real pmem (msync path) every
 * write is durable when it returns, so the barriers have nothing to add.
 */
VEMS_API int vems_pool_persist(struct vems_pool *pool);

/* Static facts about a pool. Strings point into the pool handle. */
struct vems_pool_info {
	uint8_t uuid[16];
	uint32_t format_version;
	uint32_t page_size;
	uint64_t extent_size;
	uint64_t pmem_size;	/* bytes of the pmem file */
	uint64_t pmem_extents;	/* extent frames in pmem (data capacity) */
	uint64_t block_size;	/* bytes of the block file's data area */
	uint64_t block_extents; /* extent slots in the block file */
	const char *pmem_path;
	const char *block_path;
	int is_pmem; /* 1: flushed with CPU cache ops; 0: msync */
	/* how the block file is accessed: "direct" (O_DIRECT) or "buffered",
	 * then "+fdatasync" (one per spill batch) or "+dsync" (RWF_DSYNC) */
	const char *block_io;
};
VEMS_API int vems_pool_info(struct vems_pool *pool,
			    struct vems_pool_info *info);

/* Counters and gauges of an open pool. */
struct vems_pool_stats {
	uint64_t objects;
	uint64_t names;
	uint64_t pmem_bytes_used; /* frames in use x extent size + inline */
	uint64_t pmem_bytes_free;
	uint64_t block_bytes_used; /* extent slots in use x extent size */
	uint64_t block_bytes_free;
	uint64_t extents_pmem;	/* dirty: only in pmem */
	uint64_t extents_both;	/* clean: in pmem and the block file */
	uint64_t extents_block; /* only in the block file */
	uint64_t reads;	 /* vems_obj_pread calls (and buffers of preadv) */
	uint64_t writes; /* vems_obj_pwrite calls (and buffers of pwritev) */
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t pmem_hits;  /* extent reads served from pmem */
	uint64_t block_hits; /* extent reads served from the block file */
	uint64_t hole_reads; /* extent reads of holes (zeros) */
	uint64_t extents_allocated;
	uint64_t extents_freed;
	uint64_t spills;      /* extents written to the block file */
	uint64_t promotions;  /* extents brought back into pmem */
	uint64_t clean_drops; /* clean extents dropped with no I/O */
	uint64_t bytes_spilled;
	uint64_t bytes_promoted;
	uint64_t checksum_failures;
	uint64_t uring_max_inflight; /* highest io_uring depth seen */
	uint64_t sync_spills;	     /* times a writer found pmem full */
	uint64_t block_fetches;	     /* BLOCK extents read back for a write */
	uint64_t block_errors;	     /* failed block-file transfers or syncs */
	uint64_t bytes_block_read;   /* read from the block file for data */
	uint64_t inline_objects;     /* small objects kept inline in pmem */
	uint64_t inline_bytes;	   /* their allocations (in pmem_bytes_used) */
	uint64_t inline_evictions; /* inline objects moved to the block file */
};
VEMS_API int vems_pool_stats(struct vems_pool *pool,
			     struct vems_pool_stats *stats);

/*
 * Verifies every invariant of the pool's metadata that can be checked on an
 * open pool (object table, namespace, extent mapping, frame and slot use,
 * block file header), and reads every block slot the mapping names to
 * verify its checksum (a clean extent's pmem copy must match it too), so it
 * costs a read of the block tier's used part. Calls report(msg, arg) once per problem found, if
 * report is not NULL. Returns the number of problems (0: consistent) or a
 * negative error if the check itself could not run.
 */
typedef void (*vems_report_fn)(const char *msg, void *arg);
VEMS_API int vems_pool_check(struct vems_pool *pool, vems_report_fn report,
			     void *arg);

/* --- objects -------------------------------------------------------- */

struct vems_obj;

/*
 * Creates an empty object. If oid->id is 0 the library assigns an unused id
 * in oid->partition and writes it to *oid; otherwise that id is used.
 * Metadata (object records, names) shares pmem with data: when the heap is
 * full, a chunk of data frames is emptied (its extents spilled) and given
 * to metadata, so creates and binds fail only when pmem is full of data
 * that cannot be spilled.
 * Errors: -EINVAL, -EEXIST (id taken), -ENOSPC (pmem full of metadata and
 * of data that cannot be spilled; the message says which).
 */
VEMS_API int vems_obj_create(struct vems_pool *pool, struct vems_oid *oid);

/*
 * Creates an empty object as vems_obj_create does and binds name to it
 * (see vems_name_bind) in the same crash-atomic step: after a crash the
 * object and its name are both there or neither is, so a file system
 * layer never leaks an unnamed object. Errors: those of vems_obj_create,
 * and -EEXIST (name bound), -EINVAL (NULL or empty name), -ENAMETOOLONG;
 * on any error nothing is created or bound.
 */
VEMS_API int vems_obj_create_named(struct vems_pool *pool, const char *name,
				   struct vems_oid *oid);

/*
 * Removes an object and frees its extents. The removal is crash-atomic.
 * Names bound to it are unbound in the same step. If handles are open on
 * it, it is removed as POSIX unlinks an open file: from the return on, it
 * cannot be found, opened, listed or named, and its id is not handed out,
 * but the open handles keep reading and writing it, and its space is
 * reclaimed when the last of them is closed (vems_obj_close). A crash or a
 * vems_pool_close before that leaves nothing of it behind: the next open
 * reclaims it. Errors: -ENOENT (no such object, or removed already).
 */
VEMS_API int vems_obj_remove(struct vems_pool *pool, struct vems_oid oid);

/* Object open flags. */
#define VEMS_O_RDONLY (1u << 0)	 /* writes and truncate give -EBADF */
#define VEMS_O_NODRAIN (1u << 1) /* every write behaves as VEMS_W_NODRAIN */

/*
 * Opens a handle on an object. Errors: -ENOENT, -EINVAL (unknown flags).
 */
VEMS_API int vems_obj_open(struct vems_pool *pool, struct vems_oid oid,
			   unsigned flags, struct vems_obj **obj);

/*
 * Closes a handle; pending deferred writes of this handle are made durable
 * first. The last close of a removed object reclaims its space (see
 * vems_obj_remove). Accepts NULL. Returns 0 or the error from making the
 * writes durable or from the reclaim (the handle is closed either way).
 */
VEMS_API int vems_obj_close(struct vems_obj **obj);

/*
 * Reads up to len bytes at byte offset off. Returns the number of bytes read:
 * less than len only at the end of the object, 0 at or past it. Holes read
 * as zeros. Errors: -EINVAL (off past VEMS_OBJ_MAX_SIZE), -EIO (a block-file
 * read failed or fails its checksum), -ENOMEM, or the error of setting up
 * block I/O (e.g. -EMFILE). After an error the contents of buf are
 * unspecified. A block read is waited for before the call returns, up to two
 * minutes if its io_uring failed; only past that (a device that no longer
 * answers) may the kernel still write into buf after the return.
 */
VEMS_API ssize_t vems_obj_pread(struct vems_obj *obj, void *buf, size_t len,
				uint64_t off);

/* Write flags. */
#define VEMS_W_NODRAIN                                                         \
	(1u << 0) /* skip the final fence: durable only after
				    vems_obj_persist / vems_pool_persist */

/*
 * Writes len bytes at byte offset off, growing the object if needed (a gap
 * reads as zeros). When it returns (without VEMS_W_NODRAIN) the data and the
 * new size are durable. Returns len, or fewer bytes written (a short write,
 * as POSIX allows) in one case: when pmem is full of extents that other
 * writers hold, a write larger than pmem can place at once is published in
 * parts, and if a later part then cannot be placed the count written is
 * returned. On an error nothing past the old size is published (the size
 * is unchanged), but bytes of the range below it may already hold the new
 * data; a crash during the call may leave part of it written (each byte
 * old or new). Errors: -EINVAL (off + len > VEMS_OBJ_MAX_SIZE, unknown
 * flags), -EBADF (handle opened read-only), -ENOSPC (no free space in
 * either tier), -EIO (block I/O failed, or the pool takes no more changes
 * after an msync failure: reopen it).
 */
VEMS_API ssize_t vems_obj_pwrite(struct vems_obj *obj, const void *buf,
				 size_t len, uint64_t off, unsigned flags);

/*
 * Vectored forms: the iovcnt buffers of iov (at most IOV_MAX) read or
 * written in order as one range starting at off, as that many consecutive
 * vems_obj_pread / vems_obj_pwrite calls, each buffer as one of them (a
 * concurrent reader may see some buffers written and not others). The
 * whole vector is checked before anything is done: -EINVAL for a bad
 * count, a NULL buffer of non-zero length, a total above SSIZE_MAX or (a
 * write) past VEMS_OBJ_MAX_SIZE, with nothing written.
 *
 * vems_obj_preadv returns the bytes read, fewer at the end of the object
 * or when a buffer past the first could not be read (vems_errormsg() says
 * why), or the error if nothing was read. vems_obj_pwritev costs one barrier for the whole vector: when it
 * returns (without VEMS_W_NODRAIN), what it wrote and the new size are
 * durable. It returns the total, or fewer bytes when a buffer past the
 * first could not be written (those counted are durable; vems_errormsg()
 * says what stopped it), or the error if nothing was written. Other errors
 * as vems_obj_pwrite's.
 */
VEMS_API ssize_t vems_obj_preadv(struct vems_obj *obj, const struct iovec *iov,
				 int iovcnt, uint64_t off);
VEMS_API ssize_t vems_obj_pwritev(struct vems_obj *obj, const struct iovec *iov,
				  int iovcnt, uint64_t off, unsigned flags);

/*
 * Sets the object's size. Shrinking frees whole extents past the new end
 * and makes the bytes past it read as zeros if the object grows again;
 * growing creates a hole. Crash-atomic. Errors: -EINVAL, -EBADF.
 */
VEMS_API int vems_obj_truncate(struct vems_obj *obj, uint64_t size);

/*
 * The synchronous barrier for one object: as vems_pool_persist, for the
 * writes to this object (the same rule for other threads' VEMS_W_NODRAIN
 * writes), and the object's modification time.
 */
VEMS_API int vems_obj_persist(struct vems_obj *obj);

struct vems_obj_stat {
	struct vems_oid oid;
	uint64_t size;	       /* logical size in bytes */
	int64_t ctime_ns;      /* creation, ns since the epoch */
	int64_t mtime_ns;      /* last data change (see README: precision) */
	uint64_t extents_pmem; /* mapped extents by state */
	uint64_t extents_both;
	uint64_t extents_block;
	uint64_t pmem_bytes;  /* pmem held by the object */
	uint64_t block_bytes; /* block file space held by the object */
};

/* Stat of an open object. */
VEMS_API int vems_obj_stat(struct vems_obj *obj, struct vems_obj_stat *st);

/* Stat by ID, without opening. Errors: -ENOENT. */
VEMS_API int vems_obj_stat_oid(struct vems_pool *pool, struct vems_oid oid,
			       struct vems_obj_stat *st);

/*
 * Calls fn(oid, arg) for every object of the pool, in ascending
 * (partition, id) order. If fn returns non-zero, the walk stops and that
 * value is returned. Objects created or removed by fn may or may not be seen.
 */
typedef int (*vems_oid_fn)(const struct vems_oid *oid, void *arg);
VEMS_API int vems_obj_list(struct vems_pool *pool, vems_oid_fn fn, void *arg);

/* --- asynchronous I/O ---------------------------------------------- */

/*
 * Adaptive sync/async I/O: many reads and writes submitted at once. A
 * request that pmem can serve (a read of resident data or holes, a write
 * that needs no block-file I/O) is done inside vems_aio_submit and its
 * completion is ready at once; a request that needs the block file (a read
 * of spilled data, a write that must fetch an extent or spill to make
 * room) completes later. Reap completions with vems_aio_poll (never
 * blocks) or vems_aio_wait; an event loop can watch vems_aio_eventfd.
 *
 * A context is used by one thread at a time (use one per thread). A read
 * returns the object's bytes as of its submission: spilled data it reads
 * is kept from reuse until it completes. Requests of one context are not
 * ordered against each other; a write completes (result set) only when it
 * is durable, like vems_obj_pwrite. The object handle and the buffer must
 * stay valid until the request is reaped.
 */
struct vems_aio_ctx;

#define VEMS_AIO_READ 0
#define VEMS_AIO_WRITE 1

struct vems_aio {
	struct vems_obj *obj;
	int op;		/* VEMS_AIO_READ or VEMS_AIO_WRITE */
	unsigned flags; /* writes: VEMS_W_NODRAIN */
	void *buf;
	size_t len;
	uint64_t off;
	void *user_data; /* the caller's, untouched */
	ssize_t result;	 /* at completion: bytes done, or -errno */
	void *internal;	 /* the library's */
};

/*
 * Creates a context that holds at most `depth` requests submitted and not
 * yet reaped (1 to 4096; 0 picks 64). Errors: -EINVAL, -ENOMEM, or the
 * io_uring setup's error.
 */
VEMS_API int vems_aio_ctx_new(struct vems_pool *pool, unsigned depth,
			      struct vems_aio_ctx **ctx);

/*
 * Waits for every request in flight, then frees the context. Requests
 * completed and not reaped are dropped. Accepts NULL and *ctx == NULL.
 */
VEMS_API void vems_aio_ctx_delete(struct vems_aio_ctx **ctx);

/*
 * Starts reqs[0..n). Returns how many were taken (from the front; fewer
 * than n when the context is full), or -EAGAIN if none could be, or
 * -EINVAL (NULL context or request). A request with bad arguments is taken
 * and completes with a negative result, like any other error.
 */
VEMS_API int vems_aio_submit(struct vems_aio_ctx *ctx,
			     struct vems_aio *const reqs[], size_t n);

/*
 * Stores up to max completed requests in done[] without blocking. Returns
 * how many (0 if none), or a negative error.
 */
VEMS_API int vems_aio_poll(struct vems_aio_ctx *ctx, struct vems_aio *done[],
			   size_t max);

/*
 * Like vems_aio_poll, but waits until at least min (<= max) are done or
 * timeout_ms passes (any negative value: no limit). Returns how many, possibly fewer than
 * min on timeout. Errors: -EINVAL (min > max, or min larger than what is
 * in flight).
 */
VEMS_API int vems_aio_wait(struct vems_aio_ctx *ctx, struct vems_aio *done[],
			   size_t min, size_t max, int timeout_ms);

/*
 * A file descriptor (an eventfd) that becomes readable when completions
 * may be waiting; then call vems_aio_poll until it returns 0. Owned by the
 * context.
 */
VEMS_API int vems_aio_eventfd(struct vems_aio_ctx *ctx);

/* --- names ---------------------------------------------------------- */

/*
 * A flat, persistent namespace from path strings (1 to VEMS_NAME_MAX bytes,
 * no NUL) to object IDs. Every change is crash-atomic.
 */

/* Binds name to oid. Errors: -EEXIST, -ENOENT (no such object),
 * -ENAMETOOLONG, -EINVAL (empty name), -ENOSPC. */
VEMS_API int vems_name_bind(struct vems_pool *pool, const char *name,
			    struct vems_oid oid);

/* Looks a name up. Errors: -ENOENT, -ENAMETOOLONG, -EINVAL. */
VEMS_API int vems_name_lookup(struct vems_pool *pool, const char *name,
			      struct vems_oid *oid);

/* Removes a binding (not the object). Errors: -ENOENT, -ENAMETOOLONG. */
VEMS_API int vems_name_unbind(struct vems_pool *pool, const char *name);

/*
 * Renames from -> to in one crash-atomic step, replacing an existing binding
 * of to. If replaced is not NULL it receives the OID to was bound to, and
 * *replaced_any is set to 1 (else 0), so the caller can remove the object.
 * Errors: -ENOENT (from unbound), -ENAMETOOLONG, -EINVAL.
 */
VEMS_API int vems_name_rename(struct vems_pool *pool, const char *from,
			      const char *to, struct vems_oid *replaced,
			      int *replaced_any);

/*
 * Calls fn(name, oid, arg) for every name that starts with prefix (NULL or
 * "" for all), in byte order. A non-zero return from fn stops the walk and
 * is returned.
 */
typedef int (*vems_name_fn)(const char *name, const struct vems_oid *oid,
			    void *arg);
VEMS_API int vems_name_list(struct vems_pool *pool, const char *prefix,
			    vems_name_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* VEMS_H */
