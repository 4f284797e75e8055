/* SPDX-License-Identifier: BSD-3-Clause */
/* hashmap.c -- intrusive chained hash table for DRAM lookups by key */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vems_internal.h"

int
vems__htab_init(struct vems_htab *h, size_t expect)
{
	size_t n = 16;
	while (n < expect)
		n <<= 1;
	h->buckets = calloc(n, sizeof(*h->buckets));
	if (h->buckets == NULL)
		return -ENOMEM;
	h->nbuckets = n;
	h->count = 0;
	return 0;
}

void
vems__htab_fini(struct vems_htab *h)
{
	free(h->buckets);
	h->buckets = NULL;
	h->nbuckets = h->count = 0;
}

static void
grow(struct vems_htab *h)
{
	size_t n = h->nbuckets * 2;
	struct vems_hnode **b = calloc(n, sizeof(*b));
	if (b == NULL)
		return; /* keep working, just with longer chains */
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct vems_hnode *e = h->buckets[i];
		while (e != NULL) {
			struct vems_hnode *next = e->next;
			size_t j = e->hash & (n - 1);
			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = n;
}

void
vems__htab_insert(struct vems_htab *h, struct vems_hnode *n, uint64_t hash)
{
	if (h->count + 1 > h->nbuckets)
		grow(h);
	n->hash = hash;
	size_t i = hash & (h->nbuckets - 1);
	n->next = h->buckets[i];
	h->buckets[i] = n;
	h->count++;
}

void
vems__htab_remove(struct vems_htab *h, struct vems_hnode *n)
{
	struct vems_hnode **pp = &h->buckets[n->hash & (h->nbuckets - 1)];
	while (*pp != NULL) {
		if (*pp == n) {
			*pp = n->next;
			h->count--;
			return;
		}
		pp = &(*pp)->next;
	}
}

struct vems_hnode *
vems__htab_first(const struct vems_htab *h, uint64_t hash)
{
	struct vems_hnode *e = h->buckets[hash & (h->nbuckets - 1)];
	while (e != NULL && e->hash != hash)
		e = e->next;
	return e;
}

struct vems_hnode *
vems__htab_next_same(const struct vems_hnode *n)
{
	struct vems_hnode *e = n->next;
	while (e != NULL && e->hash != n->hash)
		e = e->next;
	return e;
}

/* splitmix64 finaliser: cheap, and good enough to spread sequential ids */
static uint64_t
mix(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

uint64_t
vems__hash64(uint64_t a, uint64_t b)
{
	return mix(a * UINT64_C(0x9e3779b97f4a7c15) ^ mix(b));
}

uint64_t
vems__hash_str(const char *s, size_t len)
{
	/* FNV-1a, then mixed */
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return mix(h);
}
