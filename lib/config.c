/* SPDX-License-Identifier: BSD-3-Clause */
/* config.c -- pool configuration: defaults in one place, checked at once */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "vems_internal.h"

#define EXTENT_MIN (UINT64_C(4) << 10)
#define EXTENT_MAX VEMS_EXTENT_MAX
#define EXTENT_DEFAULT (UINT64_C(64) << 10)

void
vems__config_defaults(struct vems_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->extent_size = EXTENT_DEFAULT;
	cfg->low_watermark = VEMS_LOW_WATERMARK_DEFAULT;
	cfg->inline_max = UINT64_MAX;
}

int
vems_config_new(struct vems_config **cfg)
{
	if (cfg == NULL)
		return vems__fail(-EINVAL, "vems_config_new: cfg is NULL");
	struct vems_config *c = malloc(sizeof(*c));
	if (c == NULL)
		return vems__fail(-ENOMEM, "vems_config_new: out of memory");
	vems__config_defaults(c);
	*cfg = c;
	return 0;
}

void
vems_config_delete(struct vems_config **cfg)
{
	if (cfg == NULL || *cfg == NULL)
		return;
	free((*cfg)->block_path);
	free(*cfg);
	*cfg = NULL;
}

int
vems_config_set_pmem_size(struct vems_config *cfg, uint64_t bytes)
{
	if (cfg == NULL)
		return vems__fail(-EINVAL, "config is NULL");
	if (bytes < VEMS_PMEM_MIN_SIZE || bytes % VEMS_PAGE_SIZE != 0)
		return vems__fail(-EINVAL,
				  "pmem size %llu: must be a multiple of 4 KiB "
				  "and at least %llu bytes",
				  (unsigned long long)bytes,
				  (unsigned long long)VEMS_PMEM_MIN_SIZE);
	cfg->pmem_size = bytes;
	return 0;
}

int
vems_config_set_block_path(struct vems_config *cfg, const char *path)
{
	if (cfg == NULL || path == NULL)
		return vems__fail(-EINVAL, "config or path is NULL");
	size_t len = strlen(path);
	if (len == 0)
		return vems__fail(-EINVAL, "block path is empty");
	if (len >= PATH_MAX)
		return vems__fail(-ENAMETOOLONG, "block path is %zu bytes",
				  len);
	char *copy = strdup(path);
	if (copy == NULL)
		return vems__fail(-ENOMEM, "out of memory");
	free(cfg->block_path);
	cfg->block_path = copy;
	return 0;
}

int
vems_config_set_block_size(struct vems_config *cfg, uint64_t bytes)
{
	if (cfg == NULL)
		return vems__fail(-EINVAL, "config is NULL");
	if (bytes != 0 && bytes < EXTENT_MAX && bytes < cfg->extent_size)
		return vems__fail(-EINVAL,
				  "block size %llu is smaller than one extent",
				  (unsigned long long)bytes);
	cfg->block_size = bytes;
	return 0;
}

int
vems_config_set_extent_size(struct vems_config *cfg, uint64_t bytes)
{
	if (cfg == NULL)
		return vems__fail(-EINVAL, "config is NULL");
	if (bytes < EXTENT_MIN || bytes > EXTENT_MAX ||
	    (bytes & (bytes - 1)) != 0)
		return vems__fail(-EINVAL,
				  "extent size %llu: must be a power of two "
				  "from 4 KiB to 2 MiB",
				  (unsigned long long)bytes);
	cfg->extent_size = bytes;
	return 0;
}

int
vems_config_set_low_watermark(struct vems_config *cfg, unsigned percent)
{
	if (cfg == NULL)
		return vems__fail(-EINVAL, "config is NULL");
	if (percent > 50)
		return vems__fail(-EINVAL,
				  "low watermark %u%%: must be 0 to 50",
				  percent);
	cfg->low_watermark = percent;
	return 0;
}

int
vems_config_set_block_io(struct vems_config *cfg, unsigned flags)
{
	if (cfg == NULL)
		return vems__fail(-EINVAL, "config is NULL");
	if (flags & ~(VEMS_BLOCK_BUFFERED | VEMS_BLOCK_DSYNC))
		return vems__fail(-EINVAL, "unknown block I/O flags %#x",
				  flags);
	cfg->block_flags = flags;
	return 0;
}

int
vems_config_set_inline_max(struct vems_config *cfg, uint64_t bytes)
{
	if (cfg == NULL)
		return vems__fail(-EINVAL, "config is NULL");
	if (bytes > VEMS_INLINE_MAX_LIMIT)
		return vems__fail(-EINVAL,
				  "inline limit %llu: must be at most 64 KiB",
				  (unsigned long long)bytes);
	cfg->inline_max = bytes;
	return 0;
}
