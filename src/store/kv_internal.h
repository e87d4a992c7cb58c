/* Shared between kv.c and kv_apply.c; not part of the store's interface. */
#ifndef KVFS_STORE_KV_INTERNAL_H
#define KVFS_STORE_KV_INTERNAL_H

#include <leveldb/c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/kv.h"

/* Key layout in the kv/ database:
 *   P[gen] + user key     value record (record.h); P = {'k', 'l'}
 *   "\0applied"           u64 LE: last applied Raft index
 *   "\0count"             u64 LE: number of user keys
 *   "\0members"           membership blob (Raft configuration)
 *   "\0gen"               u8: the generation holding the live keys (absent = 0)
 *
 * Generations make snapshot installation atomic without swapping databases:
 * a received snapshot is written under the other generation's prefix in as
 * many batches as it takes, then one small synced batch flips "\0gen" (with
 * the applied index, count and membership); the old generation is deleted
 * afterwards, a little per node loop turn. A crash before the flip leaves the
 * old state live and some garbage under the other prefix, removed at the next
 * install or start.
 */
#define KV_GEN_PREFIX(gen) ((char)((gen) ? 'l' : 'k'))
#define KV_META_APPLIED "\0applied"
#define KV_META_COUNT "\0count"
#define KV_META_MEMBERS "\0members"
#define KV_META_GEN "\0gen"

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
	/* The live generation. Readers hold gen_lock (read) across reading gen
	 * and using it, so a flip never lands in the middle of a read. */
	pthread_rwlock_t gen_lock;
	int gen;
	char *path;        /* database directory, for kv_sync */
	/* kv_sync's view of the directory (kv_sync's thread only): the
	 * LevelDB log files kept open, and an inotify watch that says when
	 * the set may have changed (then it is listed again and the directory
	 * synced too). notify_fd < 0: list and sync the directory every time. */
	int notify_fd, dir_fd;
	int *log_fds;
	size_t n_log_fds, cap_log_fds;
	bool listed;
	bool sync_writes;  /* apply batches written with sync=1 */
	uint64_t durable;  /* atomic: applied index known to be on disk */
	/* Old-generation cleanup still to do (node loop only). */
	int cleanup_pending;
	/* The key filter (kv_bloom.c): bloom is the apply path's own; the
	 * others are shared with the builder thread under bloom_lock
	 * (bloom_next is set while a build runs). */
	struct kv_bloom *bloom, *bloom_next, *bloom_done;
	pthread_mutex_t bloom_lock;
	pthread_t bloom_thread;
	bool bloom_thread_started, bloom_stop;
	uint64_t bloom_epoch, bloom_min_keys;
};

/* Key filter (kv_bloom.c). Start/stop at open/close; the rest on the apply
 * path: adopt a finished build and start one when needed (before a batch),
 * whether key may exist (false: certainly absent), record written keys, drop
 * the filter when the live generation changes. kv_bloom_ready adopts a
 * finished build and says whether a filter is in use (for tests). */
void kv_bloom_start(struct kv *kv);
void kv_bloom_stop(struct kv *kv);
void kv_bloom_before_apply(struct kv *kv);
bool kv_bloom_may_have(struct kv *kv, const void *key, size_t klen);
/* Starts loading the cache lines kv_bloom_may_have will read for key. */
void kv_bloom_prefetch(const struct kv *kv, const void *key, size_t klen);
/* keys[0..n) were written; fresh[i]: kv_bloom_may_have said no to keys[i]
 * during this batch (the others the filter in use already holds). */
void kv_bloom_added(struct kv *kv, const void *const *keys, const size_t *lens, const bool *fresh,
		    size_t n);
void kv_bloom_invalidate(struct kv *kv);
bool kv_bloom_ready(struct kv *kv);
/* Waits for a build in progress to end, then kv_bloom_ready (for tests). */
bool kv_bloom_wait(struct kv *kv);
/* Layers of the filter in use, 0 without one (for tests). */
int kv_bloom_layers(const struct kv *kv);

/* Reads prefix+key (caller holds gen_lock) into a malloc'd record. Returns 0, KVFS_ENOTFOUND, KVFS_ESTORAGE. */
int kv_read_raw(struct kv *kv, const leveldb_readoptions_t *ro, const void *key, size_t klen,
		char **val, size_t *vlen);

#endif
