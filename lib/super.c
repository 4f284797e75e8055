/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * super.c -- the superblock's transactional counters and their check value
 *
 * A leaf: object.c and namespace.c count the records they make and free
 * inside their own transactions; open (pool.c) verifies the counts.
 */

#include <stddef.h>

#include "vems_internal.h"

uint32_t
vems__super_mcheck(const struct vems_super *sb)
{
	uint64_t b[5] = {sb->next_id, sb->next_serial, sb->nobj_recs,
			 sb->nname_recs, 0x53555052u /* "SUPR" */};
	return vems__crc32c(b, sizeof(b));
}

void
vems__super_tx_count(struct vems_super *sb, int dobj, int dname)
{
	pmemobj_tx_add_range_direct(
		&sb->next_id,
		offsetof(struct vems_super, mreserved) -
			offsetof(struct vems_super, next_id));
	sb->nobj_recs += (uint64_t)(int64_t)dobj;
	sb->nname_recs += (uint64_t)(int64_t)dname;
	sb->mcheck = vems__super_mcheck(sb);
}
