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
 * afterwards by the store's cleanup thread (kv_snap.c). A crash before the
 * flip leaves the old state live and some garbage under the other prefix,
 * removed after the next start.
 */
#define KV_GEN_PREFIX(gen) ((char)((gen) ? 'l' : 'k'))
#define KV_META_APPLIED "\0applied"
#define KV_META_COUNT "\0count"
#define KV_META_MEMBERS "\0members"
#define KV_META_GEN "\0gen"
/* LevelDB's table block size (its default is 4 KiB). With 16 KiB blocks a
 * compaction has a quarter of the blocks to read (one pread each), check,
 * build, index and finish: bench/large.sh's 20 million keys took 62.1-63.8
 * CPU-seconds of compaction instead of 69.9-71.1 in four alternated pairs
 * (bench/LARGE.md), and the index blocks that open tables keep in memory
 * are a quarter as big. A point read that misses the block cache copies
 * and checks 16 KiB instead of 4. */
#define KV_TABLE_BLOCK (16u << 10)

/* A hash map user key -> record | deleted (kv_pending.c). The apply stage
 * stages each batch in one (state OV_DB: looked up, not changed); the store
 * keeps what was applied but is not in LevelDB yet in two more (kv.pending). */
enum ov_state { OV_DB = 0, OV_PRESENT, OV_ABSENT };

struct ov_ent {
	uint8_t *key; /* in the table's chunks; NULL = empty slot */
	uint32_t klen;
	uint32_t hash;
	uint8_t state;
	bool fresh;   /* the key filter ruled the key out when it was looked up */
	uint8_t *rec; /* when OV_PRESENT, in the table's chunks */
	size_t rlen;
};

/* A pending change: the key, and its record (NULL: deleted). */
struct ov_copy {
	const uint8_t *key, *rec;
	size_t klen, rlen;
};

/* The changes of a pending table sorted by key, built for iterators once the
 * table has stayed unchanged across two of them (kv_pending_copy), dropped
 * at its next change. Points into the table's keys and records. */
struct ov_view {
	size_t n;
	struct ov_copy e[];
};

/* The memory the keys and records of a table are carved from (ov_alloc):
 * freed all at once with the table, not one key and one record at a time
 * (the flush freed every entry of a window, on another thread than the one
 * that had allocated them: both sides took the allocator's arena lock,
 * about 8% of the machine's CPU under batch writes). A record replaced
 * while the table lives stays in its chunk until then. */
struct ov_chunk {
	struct ov_chunk *next;
	size_t used, cap;
	uint64_t data[]; /* cap bytes */
};

struct ov_table {
	struct ov_ent *tab;
	size_t cap, used;
	struct ov_chunk *chunks;
	size_t bytes; /* of the chunks, for the memory bound (slots apart) */
	/* Of the store's two tables only; changed under view_lock and a read
	 * lock of ov_lock, or under its write lock. */
	struct ov_view *view;
	unsigned scans; /* iterators that scanned the table since it changed */
};

uint32_t ov_hash(const uint8_t *k, size_t n);
/* LevelDB's bytewise order of user keys (<0, 0, >0). */
int kv_key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);
/* The slot of key: its entry, or the empty slot where it would go (NULL for
 * a table never grown). */
struct ov_ent *ov_find(const struct ov_table *t, const uint8_t *key, size_t klen, uint32_t h);
/* The entry of key, inserted in state OV_DB (key copied) if new; NULL when
 * out of memory. */
struct ov_ent *ov_slot(struct ov_table *t, const uint8_t *key, size_t klen);
/* n bytes (8-byte aligned) that live as long as t's chunks: until ov_clear,
 * or those of the table they are handed to (kv_pending_merge). NULL when out
 * of memory. */
void *ov_alloc(struct ov_table *t, size_t n);
/* Frees every entry and the slots; t is empty and usable afterwards. */
void ov_clear(struct ov_table *t);

struct kv {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *filter;
	leveldb_readoptions_t *ropts;
	/* Written by the node loop, read by any thread. */
	uint64_t applied; /* atomic */
	uint64_t count;   /* atomic */
	/* The live generation. Readers hold gen_lock (read) across reading gen
	 * and using it, so a flip never lands in the middle of a read. */
	pthread_rwlock_t gen_lock;
	int gen;
	char *path;        /* database directory */
	/* Applied, not yet written to LevelDB (kv_pending.c): the batches
	 * applied since the last flush (active) and the ones being flushed
	 * (frozen, NULL when no flush runs), each key's newest state, under
	 * ov_lock; readers look here before LevelDB. applied and count above
	 * change with active, under the same lock. pend_members: a membership
	 * applied with them, flush_members: with frozen. Lock order: gen_lock, then
 * ov_lock. */
	pthread_rwlock_t ov_lock;
	pthread_mutex_t view_lock; /* building a table's view (struct ov_view) */
	struct ov_table tables[2];
	struct ov_table *active, *frozen;
	uint8_t *pend_members, *flush_members; /* in active, in frozen */
	size_t pend_members_len, flush_members_len;
	uint64_t pend_bytes; /* atomic: bytes held by active and frozen */
	/* kv_sync: one at a time (flush_lock); sync=1 writes; an inotify watch
	 * on the directory says when LevelDB created or removed a file since
	 * the last flush, then the directory is synced too (notify_fd < 0:
	 * every time). flush_failed: a flush failed, nothing more is written. */
	pthread_mutex_t flush_lock;
	leveldb_writeoptions_t *sync_wopts;
	int notify_fd, dir_fd;
	bool dir_synced, flush_failed;
	uint64_t durable;  /* atomic: applied index known to be on disk */
	/* The dead generation's cleanup (kv_snap.c): a thread of the store's
	 * deletes it a step at a time, holding cleanup_lock for each step
	 * (lock order: cleanup_lock, then gen_lock; never the other way); it
	 * stays off while an install (install_owner) writes into that
	 * generation, after a failed flush, and after cleanup_error (sticky,
	 * atomic: a failed step, or a failed commit of an install, after which
	 * the generation on disk may differ from gen). cleanup_resume: the
	 * last key deleted, where the next step seeks (not over the
	 * tombstones of the earlier ones). cleanup_hook: tests only. */
	pthread_mutex_t cleanup_lock;
	pthread_cond_t cleanup_cond;
	pthread_t cleanup_thread;
	bool cleanup_started, cleanup_stop, cleanup_pending;
	struct kv_snap_writer *install_owner;
	char *cleanup_resume;
	size_t cleanup_resume_len;
	int cleanup_error;
	void (*cleanup_hook)(struct kv *kv);
	/* The key filter (kv_bloom.c): bloom is the apply path's own; the
	 * others are shared with the builder thread under bloom_lock
	 * (bloom_next is set while a build runs). */
	struct kv_bloom *bloom, *bloom_next, *bloom_done;
	pthread_mutex_t bloom_lock;
	pthread_t bloom_thread;
	bool bloom_thread_started, bloom_stop;
	uint64_t bloom_epoch, bloom_min_keys;
	uint64_t bloom_max_bits; /* all layers together at most (0: no bound) */
	uint64_t bloom_bytes;	 /* bytes of every filter held: in use, built, done (atomic) */
	bool bloom_full;	 /* at that bound: no more layers (logged once) */
	/* The metadata cache (kv_meta.c): node loop only; the counters are
	 * read by any thread. */
	struct kv_meta_ent *meta;
	size_t meta_sets;
	uint64_t meta_hits, meta_misses;
};

/* What the metadata cache keeps of a record (kv_meta.c): the fields a put,
 * a check or a delete of an existing key needs, and nothing else, so that
 * no code can read a field a hit does not have (kind, mtime). */
struct kv_revs {
	uint64_t create_rev, mod_rev, version;
	uint32_t mode;
};

/* Metadata cache (kv_meta.c), node loop only. init with a budget in bytes
 * (0: no cache); get: the metadata of key's newest applied state if cached
 * (the key exists); put: caches it (read outside the running batch; counts
 * a miss);
 * written: a batch changed key to rec (NULL: deleted), at its end; clear:
 * forgets everything (snapshot install, failed apply). */
void kv_meta_init(struct kv *kv, size_t bytes);
void kv_meta_free(struct kv *kv);
void kv_meta_clear(struct kv *kv);
bool kv_meta_get(struct kv *kv, const uint8_t *key, size_t klen, uint32_t hash,
		 struct kv_revs *m);
void kv_meta_put(struct kv *kv, const uint8_t *key, size_t klen, uint32_t hash,
		 const struct kv_revs *m);
void kv_meta_written(struct kv *kv, const uint8_t *key, size_t klen, uint32_t hash,
		     const uint8_t *rec, size_t rlen);

/* Key filter (kv_bloom.c). Start/stop at open/close; the rest on the apply
 * path: adopt a finished build and start one when needed (before a batch),
 * whether key may exist (false: certainly absent), record written keys, drop
 * the filter when the live generation changes. kv_bloom_ready adopts a
 * finished build and says whether a filter is in use (for tests). */
void kv_bloom_start(struct kv *kv);
void kv_bloom_stop(struct kv *kv);
void kv_bloom_before_apply(struct kv *kv);
/* A key's hash for the two calls below (computed once for both). */
uint64_t kv_bloom_hash(const void *key, size_t klen);
bool kv_bloom_may_have(struct kv *kv, uint64_t hash);
/* Starts loading the cache lines kv_bloom_may_have will read for hash. */
void kv_bloom_prefetch(const struct kv *kv, uint64_t hash);
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

/* ---- kv_pending.c ---- */

/* The newest applied state of key if it is not in LevelDB yet: 0 with a
 * malloc'd copy in *rec (kv_free), KVFS_ENOTFOUND when it was deleted, 1
 * when the database holds its state, -ENOMEM. */
int kv_pending_get(struct kv *kv, const void *key, size_t klen, char **rec, size_t *rec_len);
/* Makes the changes staged in batch (entries not in state OV_DB; their keys
 * and records are taken, batch is left to be cleared) part of the applied
 * state, with the new applied index, key count and membership. Node loop.
 * Returns 0 or -ENOMEM (nothing changed). */
int kv_pending_merge(struct kv *kv, struct ov_table *batch, uint64_t applied, uint64_t count,
		     const void *membership, size_t membership_len);
/* The newest membership applied but not in LevelDB yet: 0 with a malloc'd
 * copy, 1 when there is none, -ENOMEM. */
int kv_pending_membership(struct kv *kv, char **blob, size_t *len);
/* Drops every pending change (a snapshot replaces them); caller holds
 * gen_lock for writing, so no flush runs. */
void kv_pending_discard(struct kv *kv);
/* Calls fn for every key pending as present (caller holds ov_lock). */
void kv_pending_each_present(struct kv *kv, void (*fn)(void *ud, const uint8_t *k, size_t klen),
			     void *ud);

/* Copies the pending state of the keys within b (caller holds ov_lock):
 * *out and the bytes it points into, one malloc'd block freed with
 * free(*out), in no order (kv_pending_sort, without the lock). Returns 0 or
 * -ENOMEM. */
int kv_pending_copy(struct kv *kv, const struct kv_bounds *b, struct ov_copy **out, size_t *n);
void kv_pending_sort(struct ov_copy *c, size_t n);
/* An entry of a flush and 8 bytes of its key that order it: those after the
 * prefix every key of the flush shares, big-endian, zero-padded. Keys whose
 * 8 bytes differ compare as the bytes do (a key that ended, padded with
 * zeros, before one that goes on is also the smaller of the two keys);
 * only equal ones need a look at the whole keys. */
struct kv_sort_ent {
	uint64_t pfx;
	const struct ov_ent *e;
};
/* Puts s[0..n) (e set) in LevelDB's bytewise order of their keys; tmp has
 * room for n. */
void kv_sort_entries(struct kv_sort_ent *s, struct kv_sort_ent *tmp, size_t n);
/* The first of c[0..n) (sorted) whose key is >= key: n when none. */
size_t kv_pending_lower_bound(const struct ov_copy *c, size_t n, const void *key, size_t klen);
/* The dead generation's cleanup thread (kv_snap.c), started by kv_open and
 * stopped by kv_close. */
int kv_cleanup_start(struct kv *kv);
void kv_cleanup_stop(struct kv *kv);

/* Syncs the database directory if LevelDB created or removed a file since
 * it was last synced. Returns 0 or KVFS_ESTORAGE. */
int kv_sync_dir(struct kv *kv);

/* Reads prefix+key (caller holds gen_lock) into a malloc'd record. Returns 0, KVFS_ENOTFOUND, KVFS_ESTORAGE. */
int kv_read_raw(struct kv *kv, const leveldb_readoptions_t *ro, const void *key, size_t klen,
		char **val, size_t *vlen);

/* After LevelDB found its database in dir corrupt: drops the torn last
 * write from the end of the newest write-ahead log, the unsynced write of a
 * power loss (kv_wal.c). Returns 1 if it cut it, 0 if there was nothing to
 * cut (the damage is elsewhere), KVFS_ECORRUPT when the log is damaged in a
 * way no torn write explains (then nothing was changed), or -errno. */
int kv_wal_fix_tail(const char *dir);
/* Scans the size bytes of a LevelDB log at d: *end is where its last whole
 * record ends (size when nothing is damaged or cut short); false when a
 * damaged record has a good one after it (damage to synced data). */
bool kv_wal_scan(const uint8_t *d, size_t size, size_t *end);

/* One item of a snapshot stream (kv_snap.c), pointing into the bytes read. */
enum kv_snap_kind { KV_SNAP_END, KV_SNAP_KEY, KV_SNAP_APPLIED, KV_SNAP_COUNT };
struct kv_snap_item {
	enum kv_snap_kind kind;
	const uint8_t *key; /* KV_SNAP_KEY: 'k' + user key */
	size_t klen;
	const uint8_t *value; /* KV_SNAP_KEY: a record (record.h); else 8 bytes LE */
	size_t vlen;
};
/* Decodes the item at the start of the len bytes at p: its length (> 0),
 * 0 when the bytes are a plausible start of an item but not all of it, or
 * KVFS_EPROTO when no stream holds them (a key of 0 or more than 1 MiB,
 * another key than a user key or the metadata a snapshot carries, a
 * metadata value of other than 8 bytes, a user key's value over
 * KV_VALUE_LIMIT + RECORD_HEADER_MAX or whose record does not decode).
 * Decided on as few bytes as possible (all but the record's decoding
 * before the value's bytes are waited for), and the same whatever follows:
 * more bytes never turn an item into an error, so where a chunk ends does
 * not matter. */
long kv_snap_next(const uint8_t *p, size_t len, struct kv_snap_item *it);

#endif
