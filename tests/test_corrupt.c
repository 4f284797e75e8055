/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_corrupt.c -- damaged metadata is detected, reported and left alone
 *
 * design rule 7: open never destroys data on evidence that could be
 * damage. Format 1 freed any entry whose serial matched no object or whose
 * extent lay past its object's size, so one flipped byte silently zeroed
 * 64 KiB for good while check stayed clean. Here every single damaged byte
 * of an entry (in each state), of an object record and of a name record
 * must either be refused at open with VEMS_E_CORRUPT, leaving the entry
 * table and the record bytes as they were, or (a field that state does not
 * use) open and read back every byte exactly as written.
 */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "extent.h"
#include "testutil.h"
#include "vems_internal.h"

#define MIB (UINT64_C(1) << 20)
#define KIB (UINT64_C(1) << 10)
#define ES (64 * KIB)
#define OBJ_SIZE (6 * ES + 1000) /* the tail extent partly used */

static struct tu_pool fx;
static struct vems_oid fx_oid, fx_small;
#define SMALL_SIZE 3000 /* kept inline (lib/inline.c) */
static const char *fx_name = "dir/some object";

/* Region offsets in the pmem file, learnt from an open pool. */
static struct {
	size_t entries, nentries; /* table offset, length */
	size_t rec;		  /* the object's record */
	size_t name;		  /* its name record */
	size_t name_len;
	/* the data chunks' frames: data, no check values */
	size_t data[64], data_len, ndata;
	size_t chunks, nchunks;	     /* chunk table offset, slots */
	size_t small_rec, small_inl; /* the small object's record, block */
	uint32_t ent[3];	     /* one entry each: PMEM, BOTH, BLOCK */
} L;

/* The pool as setup() left it: a served open may promote (it reads). */
static char fx_pmem_copy[600], fx_block_copy[600];

static void
copy_file(const char *from, const char *to)
{
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static void
pread_at(const char *path, size_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void
pwrite_at(const char *path, size_t off, const void *buf, size_t len)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static int
read_all_ok(struct vems_pool *p)
{
	struct vems_obj *o;
	struct vems_oid oid;
	if (vems_name_lookup(p, fx_name, &oid) != 0 ||
	    oid.partition != fx_oid.partition || oid.id != fx_oid.id)
		return 0;
	/* no cmocka assertions: this also runs in forked children */
	if (vems_obj_open(p, fx_oid, VEMS_O_RDONLY, &o) != 0)
		return 0;
	uint8_t *buf = malloc(OBJ_SIZE + 1);
	ssize_t n = vems_obj_pread(o, buf, OBJ_SIZE + 1, 0);
	int ok = n == (ssize_t)OBJ_SIZE && tu_verify(buf, OBJ_SIZE, 7, 0);
	vems_obj_close(&o);
	if (ok && vems_obj_open(p, fx_small, VEMS_O_RDONLY, &o) == 0) {
		uint8_t small[SMALL_SIZE + 1];
		n = vems_obj_pread(o, small, sizeof(small), 0);
		ok = n == SMALL_SIZE && tu_verify(small, SMALL_SIZE, 8, 0);
		vems_obj_close(&o);
	} else {
		ok = 0;
	}
	free(buf);
	return ok && vems_pool_check(p, NULL, NULL) == 0;
}

/*
 * A pool whose object has extents in all three states: 0 and 1 spilled
 * (BLOCK), 1 promoted back by a read (BOTH), the rest dirty in pmem.
 */
static int
setup(void **state)
{
	(void)state;
	tu_create(&fx, "corrupt", 16 * MIB, 16 * MIB, ES);
	struct vems_pool *p = fx.pool;
	TU_OK(vems_obj_create(p, &fx_oid));
	TU_OK(vems_name_bind(p, fx_name, fx_oid));
	struct vems_obj *o;
	TU_OK(vems_obj_open(p, fx_oid, 0, &o));
	uint8_t *buf = malloc(OBJ_SIZE);
	tu_fill(buf, OBJ_SIZE, 7, 0);
	TU_OK(vems_obj_pwrite(o, buf, OBJ_SIZE, 0, 0));
	/* spill everything cold (all of it), then bring extent 1 back */
	while (vems__spill(p, 64, NULL, 0, 0, false) > 0)
		;
	TU_OK(vems_obj_pread(o, buf, ES, ES));
	/* and make extents 2.. dirty again */
	tu_fill(buf, OBJ_SIZE, 7, 0);
	TU_OK(vems_obj_pwrite(o, buf + 2 * ES, OBJ_SIZE - 2 * ES, 2 * ES, 0));
	/* and a small object, inline */
	struct vems_obj *so;
	TU_OK(vems_obj_create(p, &fx_small));
	TU_OK(vems_obj_open(p, fx_small, 0, &so));
	tu_fill(buf, SMALL_SIZE, 8, 0);
	TU_OK(vems_obj_pwrite(so, buf, SMALL_SIZE, 0, 0));
	assert_non_null(so->node->inl);
	L.small_rec = (size_t)((char *)so->node->rec - (char *)p->pop);
	L.small_inl = (size_t)((char *)so->node->inl - (char *)p->pop);
	vems_obj_close(&so);
	struct vems_objnode *n = o->node;
	L.entries = (size_t)((char *)p->entries - (char *)p->pop);
	L.nentries = p->nentries * sizeof(struct vems_entry);
	L.rec = (size_t)((char *)n->rec - (char *)p->pop);
	assert_true(p->nchunks <= 64);
	for (uint32_t c = 0; c < p->nchunks; c++)
		if (p->chunk_base[c])
			L.data[L.ndata++] = (size_t)((char *)p->chunk_base[c] -
						     (char *)p->pop);
	L.data_len = (size_t)p->chunk_frames * p->extent_size;
	L.chunks = (size_t)((char *)pmemobj_direct(p->sb->chunks) -
			    (char *)p->pop);
	L.nchunks = p->nchunks;
	/* the table has an empty slot too (test_chunk_table_bytes) */
	assert_true(L.ndata >= 2 && L.ndata < L.nchunks);
	uint32_t e0 = vems__xidx_get(&n->idx, 0),
		 e1 = vems__xidx_get(&n->idx, 1),
		 e2 = vems__xidx_get(&n->idx, 2);
	assert_int_equal(p->entries[e0].state, VEMS_ES_BLOCK);
	assert_int_equal(p->entries[e1].state, VEMS_ES_BOTH);
	assert_int_equal(p->entries[e2].state, VEMS_ES_PMEM);
	L.ent[0] = e2;
	L.ent[1] = e1;
	L.ent[2] = e0;
	for (size_t i = 0; i < p->names.nbuckets; i++)
		for (struct vems_hnode *h = p->names.buckets[i]; h;
		     h = h->next) {
			struct vems_name *nm =
				vems_container_of(h, struct vems_name, node);
			L.name = (size_t)((char *)nm->rec - (char *)p->pop);
			L.name_len = sizeof(*nm->rec) + nm->rec->len;
		}
	free(buf);
	vems_obj_close(&o);
	TU_OK(vems_pool_close(&fx.pool));
	snprintf(fx_pmem_copy, sizeof(fx_pmem_copy), "%s.orig", fx.pmem);
	snprintf(fx_block_copy, sizeof(fx_block_copy), "%s.orig", fx.block);
	copy_file(fx.pmem, fx_pmem_copy);
	copy_file(fx.block, fx_block_copy);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tu_destroy(&fx);
	unlink(fx_pmem_copy);
	unlink(fx_block_copy);
	return 0;
}

/* Damages `len` bytes at off with x, opens, checks the outcome, restores. */
static void
try_damage(size_t off, uint8_t x, int *refused, int *served)
{
	uint8_t old, bad;
	uint8_t *ent = malloc(L.nentries), *ent2 = malloc(L.nentries);
	uint8_t rec[64], rec2[64];
	pread_at(fx.pmem, off, &old, 1);
	bad = old ^ x;
	pwrite_at(fx.pmem, off, &bad, 1);
	pread_at(fx.pmem, L.entries, ent, L.nentries);
	pread_at(fx.pmem, L.rec, rec, sizeof(rec));
	uint64_t digest = tu_file_digest(fx.pmem);
	struct vems_pool *p = NULL;
	int r = vems_pool_open(&p, fx.pmem, NULL);
	if (r == 0) {
		if (!read_all_ok(p))
			fail_msg("byte at %zu ^ %#x: open succeeded and the "
				 "object does not read back as written",
				 off, x);
		(*served)++;
		TU_OK(vems_pool_close(&p));
		copy_file(fx_pmem_copy, fx.pmem);
		copy_file(fx_block_copy, fx.block);
	} else {
		if (r != VEMS_E_CORRUPT)
			fail_msg("byte at %zu ^ %#x: open gave %d (%s), not "
				 "VEMS_E_CORRUPT",
				 off, x, r, vems_errormsg());
		/* nothing of libvems' metadata changed */
		pread_at(fx.pmem, L.entries, ent2, L.nentries);
		pread_at(fx.pmem, L.rec, rec2, sizeof(rec2));
		if (memcmp(ent, ent2, L.nentries) || memcmp(rec, rec2, 64))
			fail_msg("byte at %zu ^ %#x: a refused open changed "
				 "the entry table or the record",
				 off, x);
		/* nor any other byte (libpmemobj's run id included) */
		if (tu_file_digest(fx.pmem) != digest)
			fail_msg("byte at %zu ^ %#x: a refused open changed "
				 "the pool file",
				 off, x);
		(*refused)++;
	}
	pwrite_at(fx.pmem, off, &old, 1);
	free(ent);
	free(ent2);
}

/*
 * The values each byte is XORed with. VEMS_CORRUPT_FLIPS=1 keeps only the
 * first (every bit of the byte): the sanitizer and Release sections of CI
 * use it, a third of the opens; the full set runs in the README's tests.
 */
static const uint8_t flips[] = {0xff, 0x01, 0x80};
static size_t nflips = sizeof(flips);

static void
test_entry_bytes(void **state)
{
	(void)state;
	for (int k = 0; k < 3; k++) {
		int refused = 0, served = 0;
		size_t base = L.entries + L.ent[k] * sizeof(struct vems_entry);
		for (size_t b = 0; b < sizeof(struct vems_entry); b++)
			for (size_t f = 0; f < nflips; f++)
				try_damage(base + b, flips[f], &refused,
					   &served);
		/* every byte of the fields a state uses is covered; the
		 * others (PMEM: slot, crc; BLOCK: frame) are ignored */
		static const char *names[] = {"PMEM", "BOTH", "BLOCK"};
		static const int unused[] = {8, 0, 4};
		print_message("entry in state %s: %d damaged versions "
			      "refused, %d harmless ones served\n",
			      names[k], refused, served);
		assert_int_equal(served, unused[k] * (int)nflips);
		assert_int_equal(refused, (32 - unused[k]) * (int)nflips);
	}
	/* the pool is still whole */
	struct vems_pool *p;
	TU_OK(vems_pool_open(&p, fx.pmem, NULL));
	assert_true(read_all_ok(p));
	TU_OK(vems_pool_close(&p));
}

/* Every byte of an object record but mtime_ns (advisory, 40..47). */
static void
damage_record(size_t rec, int *refused, int *served)
{
	for (size_t b = 0; b < sizeof(struct vems_obj_rec); b++) {
		if (b >= offsetof(struct vems_obj_rec, mtime_ns) &&
		    b < offsetof(struct vems_obj_rec, mtime_ns) + 8)
			continue;
		for (size_t f = 0; f < nflips; f++)
			try_damage(rec + b, flips[f], refused, served);
	}
}

static void
test_record_bytes(void **state)
{
	(void)state;
	int refused = 0, served = 0;
	damage_record(L.rec, &refused, &served);
	assert_int_equal(served, 0);
	int nrefused = refused;
	for (size_t b = 0; b < L.name_len; b++)
		try_damage(L.name + b, 0x20, &refused, &served);
	assert_int_equal(served, 0);
	print_message("object record: %d, name record: %d damaged versions "
		      "refused\n",
		      nrefused, refused - nrefused);
}

/*
 * A small object (format 5): the record's bytes that lead to its data
 * (its `inl` too) and its inline block's header are covered; damage is
 * refused, never served (the block would be read as another object's, or
 * lost).
 */
static void
test_inline_bytes(void **state)
{
	(void)state;
	int refused = 0, served = 0;
	/* the fields an inline object's reading depends on (the others are
	 * test_record_bytes's, under the same rcheck): serial, sizew,
	 * rcheck, inl */
	static const struct {
		size_t off, len;
	} fields[] = {
		{offsetof(struct vems_obj_rec, serial), 16},
		{offsetof(struct vems_obj_rec, rcheck), 12},
	};
	for (size_t k = 0; k < 2; k++)
		for (size_t b = 0; b < fields[k].len; b++)
			for (size_t f = 0; f < nflips; f++)
				try_damage(L.small_rec + fields[k].off + b,
					   flips[f], &refused, &served);
	int nrec = refused;
	for (size_t b = 0; b < sizeof(struct vems_inline); b++)
		for (size_t f = 0; f < nflips; f++)
			try_damage(L.small_inl + b, flips[f], &refused,
				   &served);
	print_message("small object: record %d, inline header %d damaged "
		      "versions refused\n",
		      nrec, refused - nrec);
	assert_int_equal(served, 0);
	assert_int_equal(refused, (16 + 12 + 16) * (int)nflips);
}

/*
 * The chunk table (format 4): every byte of a slot naming a chunk, and of
 * an empty one, is covered by its check value; a damaged slot is refused,
 * never served (its frames would be read as another chunk's, or lost).
 */
static void
test_chunk_table_bytes(void **state)
{
	(void)state;
	int refused = 0, served = 0;
	size_t slots[2] = {0, L.nchunks - 1};
	for (size_t k = 0; k < 2; k++)
		for (size_t b = 0; b < sizeof(struct vems_chunk); b++)
			for (size_t f = 0; f < nflips; f++)
				try_damage(L.chunks +
						   slots[k] *
							   sizeof(struct
								  vems_chunk) +
						   b,
					   flips[f], &refused, &served);
	print_message("chunk table: %d damaged versions refused\n", refused);
	assert_int_equal(served, 0);
	assert_int_equal(refused, 2 * 16 * (int)nflips);
}

/* Two damaged entries: refused, and neither was touched (format 1 zeroed
 * the first before it found the second). */
static void
test_two_damaged_entries(void **state)
{
	(void)state;
	size_t a = L.entries + L.ent[0] * sizeof(struct vems_entry);
	size_t b = L.entries + L.ent[2] * sizeof(struct vems_entry);
	uint8_t *before = malloc(L.nentries), *after = malloc(L.nentries);
	uint8_t x = 0x10, va, vb;
	pread_at(fx.pmem, a, &va, 1);
	pread_at(fx.pmem, b, &vb, 1);
	va ^= x;
	vb ^= x;
	pwrite_at(fx.pmem, a, &va, 1); /* serial of the first */
	pwrite_at(fx.pmem, b, &vb, 1); /* and of the second */
	pread_at(fx.pmem, L.entries, before, L.nentries);
	struct vems_pool *p = NULL;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vems_pool_open(&p, fx.pmem, NULL),
				 VEMS_E_CORRUPT);
		pread_at(fx.pmem, L.entries, after, L.nentries);
		assert_memory_equal(before, after, L.nentries);
	}
	va ^= x;
	vb ^= x;
	pwrite_at(fx.pmem, a, &va, 1);
	pwrite_at(fx.pmem, b, &vb, 1);
	TU_OK(vems_pool_open(&p, fx.pmem, NULL));
	assert_true(read_all_ok(p));
	TU_OK(vems_pool_close(&p));
	free(before);
	free(after);
}

/* The size word's 16-bit check catches every single damaged byte: a CRC's
 * change depends only on its input's change, so a few words prove it. */
static void
test_sizew_single_bytes(void **state)
{
	(void)state;
	uint64_t rng = 42;
	for (int t = 0; t < 8; t++) {
		uint64_t size = tu_rand(&rng) & (VEMS_OBJ_MAX_SIZE - 1);
		uint64_t serial = tu_rand(&rng) | 1;
		uint64_t w = vems__sizew(size, serial);
		for (int byte = 0; byte < 8; byte++)
			for (unsigned x = 1; x < 256; x++) {
				uint64_t bad = w ^ ((uint64_t)x << (8 * byte));
				uint64_t s2 = bad & VEMS_SIZEW_MASK;
				assert_true(bad != vems__sizew(s2, serial));
			}
	}
}

/* An entry's check covers each byte of each field its state uses. */
static void
test_entry_check_fields(void **state)
{
	(void)state;
	struct vems_entry e;
	memset(&e, 0, sizeof(e));
	e.serial = 12345;
	e.ext_index = 7;
	e.frame = 3;
	e.slot = 9;
	e.crc = 0xdeadbeef;
	e.state = VEMS_ES_BOTH;
	e.check = vems__entry_check(&e, VEMS_ES_BOTH);
	assert_true(vems__entry_valid(&e));
	uint8_t *b = (uint8_t *)&e;
	for (size_t i = 0; i < sizeof(e); i++)
		for (unsigned x = 1; x < 256; x++) {
			b[i] ^= (uint8_t)x;
			assert_false(vems__entry_valid(&e));
			b[i] ^= (uint8_t)x;
		}
	/* a zeroed (free) entry never verifies as in use */
	memset(&e, 0, sizeof(e));
	for (uint8_t s = VEMS_ES_PMEM; s <= VEMS_ES_BLOCK; s++) {
		e.state = s;
		assert_false(vems__entry_valid(&e));
	}
}

/*
 * Damage libpmemobj's own structures: the pool header, lanes, heap and
 * zone headers, chunk headers (every 64 KiB of the first 6 MiB, 64 bytes
 * of 0xff or 0x00), and the allocation headers in front of the object and
 * name records (each of their 16 bytes zeroed or flipped). Each open runs
 * in a child with a deadline: it must end, with either a clean refusal or
 * a pool that reads back as written. Format 1 crashed (SIGSEGV, SIGFPE
 * inside pmemobj_open / pmemobj_next) or spun forever on such images.
 */
static int
child_open(void)
{
	struct vems_pool *p = NULL;
	int r = vems_pool_open(&p, fx.pmem, NULL);
	if (r == 0) {
		int ok = read_all_ok(p);
		vems_pool_close(&p);
		return ok ? 0 : 3; /* 3: served wrong bytes */
	}
	return r == VEMS_E_CORRUPT || r == VEMS_E_NOTPOOL ? 1 : 4;
}

static void
damage_run(size_t off, const uint8_t *bytes, size_t len, int *outcome)
{
	uint8_t old[64];
	assert_true(len <= sizeof(old));
	pread_at(fx.pmem, off, old, len);
	pwrite_at(fx.pmem, off, bytes, len);
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka's handlers would resume the suite in the child */
		int sigs[] = {SIGSEGV, SIGFPE, SIGBUS, SIGILL, SIGABRT};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		alarm(20); /* a hang ends as SIGALRM */
		_exit(child_open());
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st)) {
		print_message("damage at %zu (+%zu): open died of signal %d\n",
			      off, len, WTERMSIG(st));
		outcome[2]++;
		copy_file(fx_pmem_copy, fx.pmem);
		copy_file(fx_block_copy, fx.block);
		return;
	}
	int code = WEXITSTATUS(st);
	if (code > 1)
		fail_msg("damage at %zu (+%zu): child exit %d (3: wrong bytes "
			 "served, 4: unclear error, other: crashed in cmocka)",
			 off, len, code);
	outcome[code]++;
	copy_file(fx_pmem_copy, fx.pmem);
	copy_file(fx_block_copy, fx.block);
}

static void
test_libpmemobj_damage(void **state)
{
	(void)state;
	int outcome[3] = {0, 0, 0};
	uint8_t ff[64], zero[64];
	memset(ff, 0xff, sizeof(ff));
	memset(zero, 0, sizeof(zero));
	/* pmem data has no check value (as in any file system without
	 * data checksums): the frames are left alone */
	size_t nruns = 0, step = 64 * KIB; /* VEMS_CORRUPT_STEP: other */
	if (getenv("VEMS_CORRUPT_STEP"))
		step = strtoul(getenv("VEMS_CORRUPT_STEP"), NULL, 0);
	for (size_t off = 0; off < 6 * MIB; off += step) {
		bool in_data = false;
		for (size_t c = 0; c < L.ndata; c++)
			in_data |= off + 4096 + 64 > L.data[c] &&
				off < L.data[c] + L.data_len;
		if (in_data)
			continue;
		damage_run(off, ff, 64, outcome);
		damage_run(off + 4096, zero, 64, outcome);
		nruns += 2;
	}
	print_message("%zu damaged images over libpmemobj's metadata and "
		      "ours (data area at %zu)\n",
		      nruns, L.data[0]);
	size_t hdrs[] = {L.rec - 16, L.name - 16};
	for (size_t h = 0; h < 2; h++)
		for (size_t b = 0; b < 16; b++) {
			uint8_t cur, x;
			pread_at(fx.pmem, hdrs[h] + b, &cur, 1);
			x = 0;
			damage_run(hdrs[h] + b, &x, 1, outcome);
			x = cur ^ 0xff;
			damage_run(hdrs[h] + b, &x, 1, outcome);
		}
	tu_figure("corrupt", "damaged_heap_images",
		  (unsigned long long)(nruns + 64));
	tu_figure("corrupt", "crashed_or_hung", (unsigned long long)outcome[2]);
	print_message("libpmemobj damage: %d opens served the data intact, "
		      "%d refused cleanly, %d crashed or hung\n",
		      outcome[0], outcome[1], outcome[2]);
	assert_int_equal(outcome[2], 0);
}

int
main(void)
{
	vems__probe_timeout_ms = 1500; /* a spinning libpmemobj, sooner */
	const char *nf = getenv("VEMS_CORRUPT_FLIPS");
	if (nf && strtoul(nf, NULL, 0) >= 1 &&
	    strtoul(nf, NULL, 0) < sizeof(flips))
		nflips = strtoul(nf, NULL, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizew_single_bytes),
		cmocka_unit_test(test_entry_check_fields),
		cmocka_unit_test(test_entry_bytes),
		cmocka_unit_test(test_record_bytes),
		cmocka_unit_test(test_inline_bytes),
		cmocka_unit_test(test_chunk_table_bytes),
		cmocka_unit_test(test_two_damaged_entries),
		cmocka_unit_test(test_libpmemobj_damage),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
