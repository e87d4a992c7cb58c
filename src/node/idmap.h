/*
 * A small open-addressing hash map from nonzero 64-bit ids to pointers, with
 * backward-shift deletion (no tombstones). Used by the node loop to find the
 * request behind a read-index context or a forwarded write's id.
 * Not thread-safe: the node loop owns its maps.
 */
#ifndef KVFS_NODE_IDMAP_H
#define KVFS_NODE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
	uint64_t *keys; /* 0 = empty */
	void **vals;
	size_t cap, n;
};

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);
/* Inserts or replaces; returns 0 or -ENOMEM. id must be nonzero. */
int idmap_put(struct idmap *m, uint64_t id, void *val);
void *idmap_get(const struct idmap *m, uint64_t id);
/* Removes id and returns its value (NULL if absent). */
void *idmap_del(struct idmap *m, uint64_t id);
/* Iteration: slots 0..cap-1, skipping empty ones (keys[i] == 0). */

#endif
