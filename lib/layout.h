/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * layout.h -- the on-media format of a libvems pool, and nothing else
 *
 * docs/format.md describes every structure here field by field, with the
 * history of VEMS_FORMAT; tests/test_format.c fails when the two differ,
 * so a change here changes that document in the same commit.
 *
 * A pool is two files:
 *
 * pmem file: a libpmemobj pool. Its layout name (stored by libpmemobj in
 *   plain text at file offset 4096) carries what must be checked before the
 *   pool is handed to libpmemobj, because a failing pmemobj_open() may
 *   already have written to the file:
 *     "libvems fmt=1 size=<file bytes> uuid=<32 hex> block=<path>"
 *   size 0 means a device (its size cannot change). Inside the pool:
 *     root object      struct vems_super (one per pool)
 *     type OBJ records struct vems_obj_rec (one per object)
 *     type NAME recs   struct vems_name_rec (one per name binding)
 *     entry table      struct vems_entry[nentries], then the page check
 *                      table uint32_t[nslots][extent_size / page] (the
 *                      CRC-32C of each page of each block slot), one
 *                      allocation
 *     chunk table      struct vems_chunk[nchunks], one allocation
 *     type INLINE      struct vems_inline, then the bytes of a small
 *                      object (one per small object, named by its record)
 *     data chunks      type DATA allocations of chunk_frames extent frames
 *                      each (frame 0 page-aligned inside it), named by the
 *                      chunk table; frame f is frame f % chunk_frames of
 *                      chunk f / chunk_frames. A table slot may be empty:
 *                      its frames do not exist, and the heap space is free
 *                      for metadata.
 *
 * block file: struct vems_block_hdr in its first 4 KiB, then nslots extent
 *   slots. Which slot holds what is recorded only in the entry table.
 *
 * All integers are little-endian (the only byte order PMDK supports).
 */
#ifndef VEMS_LAYOUT_H
#define VEMS_LAYOUT_H 1

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include <libpmemobj.h>

#define VEMS_LAYOUT_PREFIX "libvems "
/*
 * 2: every metadata record verifies on its own (entry, object record,
 * name record and the superblock's counters carry check values); an object
 * being removed is marked first (VEMS_OBJ_REMOVING).
 */
/*
 * 3: block data is checked per page: the page check table holds one
 * CRC-32C per 4 KiB page of every slot, and an entry's crc is the CRC-32C
 * of its slot's row of that table, so a read of part of a spilled extent
 * reads and verifies only the pages it needs.
 */
/*
 * 4: the data area is a table of chunks, each its own libpmemobj
 * allocation, instead of one allocation: pmem is shared by data and
 * metadata, a chunk at a time.
 */
/*
 * 5: a small object keeps its bytes in one allocation of its own (struct
 * vems_inline, named by its record's `inl`) instead of a whole extent in
 * each tier.
 */
#define VEMS_FORMAT 5u
#define VEMS_SUPER_MAGIC "VEMSPOOL"
#define VEMS_BLOCK_MAGIC "VEMSBLK1"
/* Longest block path that fits the layout name next to the other fields. */
#define VEMS_BLOCK_PATH_MAX 900u
/* libpmemobj's pool header signature and where it keeps the layout name. */
#define VEMS_PMEMOBJ_SIGNATURE "PMEMOBJ"
#define VEMS_PMEMOBJ_LAYOUT_OFF 4096u

/* libpmemobj type numbers of our allocations (for pmemobj_first/next). */
enum vems_type {
	VEMS_TYPE_OBJ = 1,
	VEMS_TYPE_NAME = 2,
	VEMS_TYPE_ENTRIES = 3,
	VEMS_TYPE_DATA = 4,
	VEMS_TYPE_CHUNKS = 5,
	VEMS_TYPE_INLINE = 6,
};

/*
 * The superblock (libpmemobj root object). Everything up to `csum` is
 * written once at create and covered by csum (CRC-32C); the counters after
 * it change only inside libpmemobj transactions.
 */
struct vems_super {
	char magic[8];
	uint32_t format;
	uint32_t page_size;
	uint8_t uuid[16];
	uint8_t block_uuid[16];
	uint64_t pmem_size; /* file size, 0 for a device */
	uint64_t extent_size;
	uint64_t nframes;	 /* frames the chunk table can name */
	uint64_t nslots;	 /* extent slots in the block file */
	uint64_t nentries;	 /* entry table length */
	uint64_t block_data_off; /* offset of slot 0 in the block file */
	PMEMoid entries;	 /* entry table, then page check table */
	PMEMoid chunks;		 /* struct vems_chunk[nframes / chunk_frames] */
	uint64_t chunk_frames;	 /* frames in a data chunk */
	uint8_t reserved[56];
	char block_path[VEMS_BLOCK_PATH_MAX + 1];
	uint8_t pad[3];
	uint32_t csum; /* CRC-32C of all bytes before it */
	/* mutable, transactional */
	uint64_t next_id;     /* next id handed out by vems_obj_create */
	uint64_t next_serial; /* next object serial (never reused) */
	/* records that exist: open finds exactly these many, or the heap
	 * walk lost or invented one (a damaged allocation header) */
	uint64_t nobj_recs;
	uint64_t nname_recs;
	uint32_t mcheck; /* vems__super_mcheck() of the four above */
	uint32_t mpad;
	uint64_t mreserved[3];
};
static_assert(offsetof(struct vems_super, entries) == 96, "super layout");
static_assert(offsetof(struct vems_super, block_path) == 192, "super layout");
static_assert(offsetof(struct vems_super, csum) == 1096, "super layout");
static_assert(sizeof(struct vems_super) == 1164 + 4, "super layout");

/*
 * An object. `sizew` is changed by single 8-byte atomic stores (after the
 * data and entries it covers are durable): the size in its low 48 bits, a
 * 16-bit check of (size, serial) above them, so that a damaged size is
 * detected rather than trusted. `rcheck` covers the fields that change only
 * in transactions (all but sizew and mtime_ns). mtime_ns is advisory.
 */
#define VEMS_SIZEW_BITS 48
#define VEMS_SIZEW_MASK ((UINT64_C(1) << VEMS_SIZEW_BITS) - 1)
#define VEMS_OBJ_REMOVING 1u /* flags: removal under way (open finishes) */
struct vems_obj_rec {
	uint64_t partition;
	uint64_t id;
	uint64_t serial; /* identifies the object's entries */
	uint64_t sizew;	 /* size | check16 << 48 */
	int64_t ctime_ns;
	int64_t mtime_ns;
	uint32_t flags;	 /* VEMS_OBJ_* */
	uint32_t rcheck; /* CRC-32C of partition..serial, ctime_ns, flags,
			    inl */
	/* pool offset of the object's struct vems_inline, 0: none. While
	 * it is set, the object's bytes [0, size) are there and any extent
	 * entry of the object is a leftover (inline.c) */
	uint64_t inl;
};
static_assert(sizeof(struct vems_obj_rec) == 64, "obj rec layout");
static_assert(offsetof(struct vems_obj_rec, sizew) == 24, "obj rec layout");
static_assert(offsetof(struct vems_obj_rec, mtime_ns) == 40,
	      "obj rec layout: size and mtime in one cache line");

/* A name binding; `name` holds len bytes and a NUL. `check` is the
 * CRC-32C of partition, id, len and the name's bytes. */
struct vems_name_rec {
	uint64_t partition;
	uint64_t id;
	uint32_t len;
	uint32_t check;
	char name[];
};
static_assert(sizeof(struct vems_name_rec) == 24, "name rec layout");

/*
 * A small object's bytes (type INLINE allocation): `cap` bytes of data
 * follow the header. `check` is the CRC-32C of (serial, cap). Created,
 * replaced and freed only in transactions that also change the record's
 * `inl`; its data bytes change in place, like a frame's.
 */
struct vems_inline {
	uint64_t serial; /* the owning object's */
	uint32_t cap;
	uint32_t check;
	uint8_t data[];
};
static_assert(sizeof(struct vems_inline) == 16, "inline layout");

/* Extent states (vems_entry.state). */
enum vems_estate {
	VEMS_ES_PMEM = 1,  /* only in the frame (dirty) */
	VEMS_ES_BOTH = 2,  /* frame and slot hold the same bytes (clean) */
	VEMS_ES_BLOCK = 3, /* only in the slot */
};

/*
 * One mapped extent. An entry is in use iff state != 0. `word` (state and
 * check) is the entry's commit word: every transition (a new mapping, a
 * change of state, the free) is one failure-atomic 8-byte store of it, made
 * after the fields it covers are durable. `check` is the CRC-32C of the
 * fields valid in that state (serial, ext_index, state, and frame for PMEM
 * and BOTH, slot and crc for BOTH and BLOCK), so a damaged entry is
 * detected at open instead of being trusted or freed. See extent.c.
 * `crc` is the CRC-32C of the slot's row in the page check table (whose
 * words are the CRC-32Cs of the slot's pages, in order), so a damaged row
 * is detected before a page is judged by it (pcheck.c).
 */
struct vems_entry {
	uint64_t serial;    /* owning object */
	uint32_t ext_index; /* extent number within the object */
	uint32_t frame;	    /* valid in PMEM and BOTH */
	uint32_t slot;	    /* valid in BOTH and BLOCK */
	uint32_t crc;	    /* CRC-32C of its page check row */
	union {
		uint64_t word; /* the commit word: state | check << 32 */
		struct {
			uint8_t state; /* enum vems_estate, 0: free */
			uint8_t pad[3];
			uint32_t check;
		};
	};
};
static_assert(sizeof(struct vems_entry) == 32, "entry layout");
static_assert(offsetof(struct vems_entry, word) == 24, "entry layout");
static_assert(offsetof(struct vems_entry, check) == 28, "entry layout");

/*
 * A slot of the chunk table: the data chunk's offset in the pool (0: none)
 * and the CRC-32C of (its index, off) in `check`. Changed only inside
 * libpmemobj transactions, together with the allocation it names.
 */
#define VEMS_CHUNK_FRAMES_MAX 65535u
struct vems_chunk {
	uint64_t off;
	uint32_t check;
	uint32_t pad;
};
static_assert(sizeof(struct vems_chunk) == 16, "chunk layout");

/* The block file's header, in its first 4 KiB. */
struct vems_block_hdr {
	char magic[8];
	uint32_t format;
	uint32_t hdr_size;
	uint8_t pool_uuid[16];
	uint8_t block_uuid[16];
	uint64_t extent_size;
	uint64_t nslots;
	uint64_t data_off;
	uint8_t reserved[48];
	uint32_t pad;
	uint32_t csum; /* CRC-32C of all bytes before it */
};
static_assert(sizeof(struct vems_block_hdr) == 128, "block hdr layout");
#define VEMS_BLOCK_DATA_OFF 4096u

#endif /* VEMS_LAYOUT_H */
