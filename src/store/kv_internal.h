/* Shared between kv.c and kv_apply.c; not part of the store's interface. */
#ifndef KVFS_STORE_KV_INTERNAL_H
#define KVFS_STORE_KV_INTERNAL_H

#include <leveldb/c.h>
#include <stdint.h>

#include "store/kv.h"

/* Key layout in the kv/ database:
 *   'k' + user key        value record (record.h)
 *   "\0applied"           u64 LE: last applied Raft index
 *   "\0count"             u64 LE: number of user keys
 *   "\0members"           membership blob (Raft configuration)
 */
#define KV_USER_PREFIX 'k'
#define KV_META_APPLIED "\0applied"
#define KV_META_COUNT "\0count"
#define KV_META_MEMBERS "\0members"

struct kv {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *filter;
	leveldb_readoptions_t *ropts;
	leveldb_writeoptions_t *wopts;
	/* Written by the node loop, read by any thread. */
	uint64_t applied; /* atomic */
	uint64_t count;   /* atomic */
};

/* Reads 'k'+key into a malloc'd record. Returns 0, KVFS_ENOTFOUND, KVFS_ESTORAGE. */
int kv_read_raw(struct kv *kv, const leveldb_readoptions_t *ro, const void *key, size_t klen,
		char **val, size_t *vlen);

#endif
