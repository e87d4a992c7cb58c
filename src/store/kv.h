/*
 * The state machine database (kv/): user keys -> value records (record.h),
 * plus the applied index, the key count and the cluster membership, always
 * written in the same synced LevelDB batch as the data they describe.
 *
 * An applied batch is visible to readers at once but reaches LevelDB only
 * at the next kv_sync (kv_pending.c): LevelDB always holds the state of
 * some applied index, at most a flush behind.
 *
 * Threads: kv_apply() and snapshot installation are called by
 * the node loop only, kv_sync() by one thread at a time (any). kv_get(), the
 * iterators and the counters may be called from any thread at any time;
 * readers see whole apply batches only.
 */
#ifndef KVFS_STORE_KV_H
#define KVFS_STORE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/record.h"

struct kv;

struct kv_options {
	size_t cache_bytes;   /* LevelDB block cache (default 32 MiB) */
	size_t write_buffer;  /* LevelDB memtable size (default 16 MiB) */
	int max_open_files;   /* default 500 */
	int table_mmap;       /* read table files through LevelDB's memory maps
				 instead of pread (kv_env.cc; default 0) */
	uint64_t filter_min_keys; /* the key filter is sized for at least this
				     many keys (default 1 Mi; kv_bloom.c) */
	uint64_t filter_max_bytes; /* ... and takes at most this much memory
				      (default 64 MiB, 0 = no bound) */
	size_t meta_cache_bytes; /* metadata of overwritten keys, so that the
				    next write need not read the old record
				    (default 8 MiB, 0 = none; kv_meta.c) */
};

void kv_options_default(struct kv_options *o);

/* Opens (creating if needed) the database at path. On failure returns a
 * negative code, logs LevelDB's message, and *out is untouched. */
int kv_open(const char *path, const struct kv_options *opts, struct kv **out);
void kv_close(struct kv *kv);

/* Last Raft index whose effects are in the database. */
uint64_t kv_applied_index(struct kv *kv);
/* Number of user keys (directory markers included). */
uint64_t kv_key_count(struct kv *kv);
/* Approximate size of the database on disk, bytes. */
uint64_t kv_disk_size(struct kv *kv);
/* Memory the filter of live keys holds (kv_bloom.c), a build under way
 * included, bytes; at most about twice kv_options.filter_max_bytes. Any
 * thread. */
uint64_t kv_key_filter_bytes(const struct kv *kv);

/* The largest value a store holds (the bound of kvfsd --max-value-size). */
#define KV_VALUE_LIMIT (64u << 20)

#define KV_LEVELS 7 /* LevelDB's levels, 0 .. 6 */
/* Table files at a LevelDB level (0 .. KV_LEVELS-1), or -1 if LevelDB does
 * not say. Any thread. */
int kv_level_files(struct kv *kv, int level);
/* Bytes by which LevelDB's levels 1 and below exceed the sizes it compacts
 * them to (10 MiB at level 1, ten times more a level down): the size
 * compactions owe. Any thread. kv_stats_debt: the same from the text of
 * LevelDB's "leveldb.stats" property (NULL: 0). */
uint64_t kv_compaction_debt(struct kv *kv);
uint64_t kv_stats_debt(const char *stats);
/* LevelDB background jobs (memtable writes, compactions) scheduled or
 * running: 0 when the store is quiet. Counted for the process (all stores
 * open in it share LevelDB's one background thread). Any thread. */
uint64_t kv_background_jobs(void);

/* Reads the record of key. On success *rec is a malloc'd copy the caller
 * frees with kv_free(); returns 0, KVFS_ENOTFOUND, or KVFS_ESTORAGE. */
int kv_get(struct kv *kv, const void *key, size_t klen, char **rec, size_t *rec_len);
void kv_free(void *p);

/* One committed Raft entry for the apply stage. data/len is an encoded
 * transaction (txn.h), or NULL/0 for entries that only advance the applied
 * index (leader no-ops, membership changes). result is written by kv_apply:
 * 0 when the transaction applied, KVFS_EPRECOND / KVFS_ENOTFOUND /
 * KVFS_EEXIST / KVFS_ETOOMANY when a precondition failed (nothing of that
 * entry was written), KVFS_EPROTO for an undecodable payload (logged; the
 * entry is skipped identically on every replica). */
struct kv_entry {
	uint64_t index;
	const void *data;
	size_t len;
	int result;
	uint64_t deleted; /* keys removed by the entry, for replies */
};

/* Applies entries (in index order; those at or below the applied index are
 * skipped) as one atomic change of the applied state, which also records
 * the new applied index and, when membership is non-NULL, the membership
 * blob. It is visible to readers on return and durable after the next
 * kv_sync. Returns 0, or KVFS_ESTORAGE when it failed (out of memory, or a
 * database read): the caller must stop the node. */
int kv_apply(struct kv *kv, struct kv_entry *entries, size_t n, const void *membership,
	     size_t membership_len);

/*
 * Durability: writes everything applied so far to LevelDB in one synced
 * write (with the applied index, the key count and any new membership) and
 * syncs the directory when LevelDB created a file since the last time.
 * Every write of the live state goes this way, one after another, so after
 * a power loss the database is the state of exactly one applied index,
 * never a later batch without an earlier one, and the Raft log replays the
 * rest (DESIGN.md §2). Batches applied meanwhile go on in memory.
 *
 * Thread: one at a time, concurrently with kv_apply and readers. Returns 0
 * or KVFS_ESTORAGE; after a failure nothing more is written (the node must
 * stop). On success kv_durable_index() is at least upto.
 */
int kv_sync(struct kv *kv, uint64_t upto);
/* Lookups of the metadata cache (kv_options.meta_cache_bytes) that found
 * the key, and that did not; any thread. */
void kv_meta_stats(struct kv *kv, uint64_t *hits, uint64_t *misses);
/* Bytes of applied state waiting for kv_sync (the node bounds them). */
uint64_t kv_pending_bytes(struct kv *kv);
/* The applied index known to be on disk. */
uint64_t kv_durable_index(struct kv *kv);

/* Reads the membership blob stored by kv_apply (malloc'd, kv_free()).
 * Returns 0, KVFS_ENOTFOUND when none was stored, KVFS_ESTORAGE. */
int kv_get_membership(struct kv *kv, char **blob, size_t *len);

/* Iterates user keys in byte order from start (inclusive). The iterator sees
 * one consistent state of the database. */
struct kv_iter;
struct kv_iter *kv_iter_create(struct kv *kv);
/* The same, limited to the keys that start with prefix (kv_iter_valid is
 * false past them): cheaper while much applied state waits for its flush,
 * since only its keys under prefix are copied. */
struct kv_iter *kv_iter_create_prefix(struct kv *kv, const void *prefix, size_t plen);
/* Keys under prefix, from lo to hi inclusive (lolen 0: from the first; hi
 * NULL: to the last). Only the pending changes within the bounds are copied,
 * so a short range costs little even while much applied state waits for its
 * flush. kv_iter_valid is false past hi; a seek before lo lands on lo. */
struct kv_bounds {
	const void *prefix, *lo, *hi;
	size_t plen, lolen, hilen;
};
struct kv_iter *kv_iter_create_range(struct kv *kv, const struct kv_bounds *b);
void kv_iter_seek(struct kv_iter *it, const void *start, size_t slen);
bool kv_iter_valid(struct kv_iter *it);
void kv_iter_next(struct kv_iter *it);
/* Borrowed until the next move of the iterator. */
const uint8_t *kv_iter_key(struct kv_iter *it, size_t *klen);
const uint8_t *kv_iter_record(struct kv_iter *it, size_t *len);
/* 0, or KVFS_ESTORAGE when iteration stopped on an error. */
int kv_iter_status(struct kv_iter *it);
void kv_iter_destroy(struct kv_iter *it);

/* ---- snapshots (kv_snap.c): the state machine as a byte stream ---- */

/* A consistent view of the whole state machine, served as a stream at
 * increasing offsets. Node loop thread (it may run while kv_apply continues:
 * the view is a LevelDB snapshot). */
struct kv_snap_reader;
struct kv_snap_reader *kv_snap_reader_create(struct kv *kv);
/* The applied index the stream represents. */
uint64_t kv_snap_reader_index(struct kv_snap_reader *r);
/* Copies up to max bytes of the stream from offset into buf; sets *done when
 * the copied bytes reach the end. An offset lower than the last one restarts
 * the iteration. Returns the byte count or a negative code. */
long kv_snap_read(struct kv_snap_reader *r, uint64_t offset, void *buf, size_t max, bool *done);
void kv_snap_reader_destroy(struct kv_snap_reader *r);

/* Receives a stream into the non-live generation; commit flips it live in
 * one synced write. Node loop thread only. */
struct kv_snap_writer;
int kv_snap_writer_create(struct kv *kv, struct kv_snap_writer **out);
/* Offsets must be contiguous from 0. Returns 0, KVFS_EPROTO (malformed or
 * out of order), KVFS_ESTORAGE, -ENOMEM. */
int kv_snap_write(struct kv_snap_writer *w, uint64_t offset, const void *data, size_t len);
/* Requires the complete stream. Returns 0 or a negative code (old state
 * still live). */
int kv_snap_commit(struct kv_snap_writer *w);
uint64_t kv_snap_writer_index(struct kv_snap_writer *w);
void kv_snap_writer_destroy(struct kv_snap_writer *w);

/* The keys of a dead generation (the state an install replaced, or what an
 * interrupted install left) are deleted by a thread of the store, 10,000
 * at a time, in the background. kv_cleanup_error: 0, or the storage error
 * that stopped it (the node must stop); any thread. kv_cleanup_wait: waits
 * until nothing is left to delete or a step failed, returns
 * kv_cleanup_error (tests). */
int kv_cleanup_error(struct kv *kv);
int kv_cleanup_wait(struct kv *kv);

#endif
