/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_format.c -- docs/format.md says what lib/layout.h says
 *
 * Reads the document's "### `struct NAME` (N bytes)" sections and their
 * "| offset | size | `field` | ... |" rows, and compares each with the
 * compiler's offsetof and sizeof of the same field: every field of every
 * on-media structure must have a row with its offset and size, every row
 * must name a real field, and the format number must be VEMS_FORMAT.
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "layout.h"

#ifndef VEMS_DOCS_DIR
#error "VEMS_DOCS_DIR: the directory of format.md"
#endif

struct field {
	const char *type, *name;
	size_t off, size; /* size 0: a flexible array ("-" in the doc) */
	bool seen;
};

#define F(t, f)                                                                \
	{                                                                      \
#t, #f, offsetof(struct t, f), sizeof(((struct t *)0)->f), 0   \
	}
#define FLEX(t, f)                                                             \
	{                                                                      \
#t, #f, offsetof(struct t, f), 0, 0                            \
	}

static struct field fields[] = {
	F(vems_super, magic),
	F(vems_super, format),
	F(vems_super, page_size),
	F(vems_super, uuid),
	F(vems_super, block_uuid),
	F(vems_super, pmem_size),
	F(vems_super, extent_size),
	F(vems_super, nframes),
	F(vems_super, nslots),
	F(vems_super, nentries),
	F(vems_super, block_data_off),
	F(vems_super, entries),
	F(vems_super, chunks),
	F(vems_super, chunk_frames),
	F(vems_super, reserved),
	F(vems_super, block_path),
	F(vems_super, pad),
	F(vems_super, csum),
	F(vems_super, next_id),
	F(vems_super, next_serial),
	F(vems_super, nobj_recs),
	F(vems_super, nname_recs),
	F(vems_super, mcheck),
	F(vems_super, mpad),
	F(vems_super, mreserved),
	F(vems_obj_rec, partition),
	F(vems_obj_rec, id),
	F(vems_obj_rec, serial),
	F(vems_obj_rec, sizew),
	F(vems_obj_rec, ctime_ns),
	F(vems_obj_rec, mtime_ns),
	F(vems_obj_rec, flags),
	F(vems_obj_rec, rcheck),
	F(vems_obj_rec, inl),
	F(vems_name_rec, partition),
	F(vems_name_rec, id),
	F(vems_name_rec, len),
	F(vems_name_rec, check),
	FLEX(vems_name_rec, name),
	F(vems_inline, serial),
	F(vems_inline, cap),
	F(vems_inline, check),
	FLEX(vems_inline, data),
	F(vems_entry, serial),
	F(vems_entry, ext_index),
	F(vems_entry, frame),
	F(vems_entry, slot),
	F(vems_entry, crc),
	F(vems_entry, word),
	F(vems_entry, state),
	F(vems_entry, pad),
	F(vems_entry, check),
	F(vems_chunk, off),
	F(vems_chunk, check),
	F(vems_chunk, pad),
	F(vems_block_hdr, magic),
	F(vems_block_hdr, format),
	F(vems_block_hdr, hdr_size),
	F(vems_block_hdr, pool_uuid),
	F(vems_block_hdr, block_uuid),
	F(vems_block_hdr, extent_size),
	F(vems_block_hdr, nslots),
	F(vems_block_hdr, data_off),
	F(vems_block_hdr, reserved),
	F(vems_block_hdr, pad),
	F(vems_block_hdr, csum),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const struct {
	const char *type;
	size_t size;
} structs[] = {
	{"vems_super", sizeof(struct vems_super)},
	{"vems_obj_rec", sizeof(struct vems_obj_rec)},
	{"vems_name_rec", sizeof(struct vems_name_rec)},
	{"vems_inline", sizeof(struct vems_inline)},
	{"vems_entry", sizeof(struct vems_entry)},
	{"vems_chunk", sizeof(struct vems_chunk)},
	{"vems_block_hdr", sizeof(struct vems_block_hdr)},
};
#define NSTRUCTS (sizeof(structs) / sizeof(structs[0]))

static struct field *
find(const char *type, const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (!strcmp(fields[i].type, type) &&
		    !strcmp(fields[i].name, name))
			return &fields[i];
	return NULL;
}

static void
test_doc_matches_layout(void **state)
{
	(void)state;
	const char *path = VEMS_DOCS_DIR "/format.md";
	FILE *f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	char line[1024], type[64] = "";
	int errors = 0, format = -1;
	bool struct_seen[NSTRUCTS] = {0};
	while (fgets(line, sizeof(line), f)) {
		unsigned fmt;
		if (sscanf(line, "Current format: **%u**", &fmt) == 1)
			format = (int)fmt;
		char t[64];
		size_t bytes;
		if (sscanf(line, "### `struct %63[a-z_]` (%zu bytes)", t,
			   &bytes) == 2) {
			strcpy(type, t);
			size_t k = 0;
			while (k < NSTRUCTS && strcmp(structs[k].type, t))
				k++;
			if (k == NSTRUCTS) {
				fprintf(stderr,
					"%s: struct %s is not in "
					"layout.h's list here\n",
					path, t);
				errors++;
			} else {
				struct_seen[k] = true;
				if (structs[k].size != bytes) {
					fprintf(stderr,
						"%s: struct %s is %zu bytes, "
						"the doc says %zu\n",
						path, t, structs[k].size,
						bytes);
					errors++;
				}
			}
			continue;
		}
		if (line[0] == '#')
			type[0] = '\0'; /* a section that is not a struct */
		size_t off;
		char size[16], name[64];
		if (!type[0] ||
		    sscanf(line, "| %zu | %15[0-9-] | `%63[a-z_0-9]` |", &off,
			   size, name) != 3)
			continue;
		struct field *fl = find(type, name);
		if (fl == NULL) {
			fprintf(stderr, "%s: struct %s has no field %s\n", path,
				type, name);
			errors++;
			continue;
		}
		fl->seen = true;
		size_t sz = strcmp(size, "-") ? strtoull(size, NULL, 10) : 0;
		if (fl->off != off || fl->size != sz) {
			fprintf(stderr,
				"%s: %s.%s is at %zu, %zu bytes; the doc says "
				"%zu, %s\n",
				path, type, name, fl->off, fl->size, off, size);
			errors++;
		}
	}
	fclose(f);
	for (size_t i = 0; i < NFIELDS; i++)
		if (!fields[i].seen) {
			fprintf(stderr, "%s: no row for %s.%s\n", path,
				fields[i].type, fields[i].name);
			errors++;
		}
	for (size_t k = 0; k < NSTRUCTS; k++)
		if (!struct_seen[k]) {
			fprintf(stderr, "%s: no section for struct %s\n", path,
				structs[k].type);
			errors++;
		}
	if (format != (int)VEMS_FORMAT) {
		fprintf(stderr, "%s: format %d, layout.h has %u\n", path,
			format, VEMS_FORMAT);
		errors++;
	}
	assert_int_equal(errors, 0);
}

/*
 * The list above must itself cover every byte of each structure (a field
 * added to layout.h but not to the list would escape the check): the
 * fields' extents, padding counted by the compiler aside, reach the end.
 */
static void
test_field_list_covers_structs(void **state)
{
	(void)state;
	for (size_t k = 0; k < NSTRUCTS; k++) {
		size_t end = 0, named = 0;
		for (size_t i = 0; i < NFIELDS; i++) {
			if (strcmp(fields[i].type, structs[k].type))
				continue;
			size_t e = fields[i].off + fields[i].size;
			if (e > end)
				end = e;
			if (strcmp(fields[i].name, "word")) /* its parts */
				named += fields[i].size;
		}
		/* flexible arrays end at sizeof; the rest must reach it, and
		 * the named bytes leave at most the alignment padding */
		if (end != structs[k].size || structs[k].size - named > 7)
			fail_msg("struct %s: fields reach %zu of %zu bytes, "
				 "%zu named",
				 structs[k].type, end, structs[k].size, named);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_matches_layout),
		cmocka_unit_test(test_field_list_covers_structs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
