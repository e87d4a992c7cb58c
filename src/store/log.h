/*
 * The durable Raft log (raft/ LevelDB database): entries, hard state and
 * snapshot metadata. Every write is one synced LevelDB batch, so entries and
 * the hard state that goes with them become durable together (a follower's
 * acknowledgement, a vote, are only sent after that batch returned).
 *
 * Key layout:
 *   'e' + index (u64 big-endian)  entry: 1 format version (1), 1 type,
 *                                 8 term (LE), payload bytes
 *   'h'                           hard state: 8 term, 8 vote (LE)
 *   's'                           snapshot metadata: 8 index, 8 term, then
 *                                 the membership blob of the snapshot
 * Integrity: LevelDB block checksums, paranoid_checks and verify_checksums;
 * a malformed record fails the load with KVFS_ECORRUPT.
 *
 * Thread: the node loop only (rlog_open/rlog_load before it starts).
 * On any write failure the functions return KVFS_ESTORAGE and the log must
 * not be written again (the node stops: STYLE.md point 8).
 */
#ifndef KVFS_STORE_LOG_H
#define KVFS_STORE_LOG_H

#include <stddef.h>
#include <stdint.h>

struct rlog;

struct rlog_entry {
	uint64_t index, term;
	uint8_t type;
	const void *data; /* borrowed */
	size_t len;
};

struct rlog_hard_state {
	uint64_t term, vote;
};

struct rlog_snapshot_meta {
	uint64_t index, term;
	void *membership; /* malloc'd on load, caller frees */
	size_t membership_len;
};

int rlog_open(const char *path, struct rlog **out);
void rlog_close(struct rlog *log);

/* Loads everything: hard state, snapshot metadata (index 0 when none), and
 * each entry in index order through the callback (data borrowed for the
 * call). Entries must be contiguous; a gap is KVFS_ECORRUPT. Returns 0 or a
 * negative code (callback's non-zero return stops and is returned). */
int rlog_load(struct rlog *log, struct rlog_hard_state *hs, struct rlog_snapshot_meta *snap,
	      int (*cb)(const struct rlog_entry *e, void *ud), void *ud);

/* One synced batch: if truncate_from > 0, deletes entries >= truncate_from;
 * then appends entries (contiguous, the first == truncate_from or last+1);
 * then stores hs if non-NULL. Returns 0 or KVFS_ESTORAGE. */
int rlog_write(struct rlog *log, const struct rlog_hard_state *hs, uint64_t truncate_from,
	       const struct rlog_entry *entries, size_t n);

/* Records a snapshot (already durable elsewhere) and deletes the entries up to
 * and including upto. Returns 0 or KVFS_ESTORAGE. */
int rlog_compact(struct rlog *log, const struct rlog_snapshot_meta *snap, uint64_t upto);

uint64_t rlog_first_index(struct rlog *log); /* 0 when empty */
uint64_t rlog_last_index(struct rlog *log);  /* 0 when empty */
uint64_t rlog_disk_size(struct rlog *log);

/* Count of synced writes issued (fsyncs), for metrics and benchmarks. */
uint64_t rlog_sync_count(struct rlog *log);

#endif
