/*
 * The durable Raft log (raft/ directory): entries, hard state and snapshot
 * metadata as an append-only stream of records in segment files. Every write
 * is one frame, written (one pwrite, or several for a frame over 256 KiB)
 * and then fdatasync'd, so entries and the hard state that goes with them
 * become durable together (a follower's acknowledgement, a vote, are only
 * sent after the write returned). The write is direct (O_DIRECT: whole 4
 * KiB blocks, the last partial one rewritten with the frame that follows
 * it, zeros after the end) where the file system allows it, else through
 * the page cache.
 *
 * Files: NNNNNNNNNNNNNNNN.seg (16 hex digits, replayed in that order), each
 * starting with the 8 bytes "kvfslog1" followed by records; LOCK (flock'd
 * while open, so two processes cannot share a log). A new segment is started
 * once the current one reaches 8 MiB; compaction deletes whole old segments.
 * The next segment is prepared ahead by a thread of the log's own once the
 * current one is half full: written with zeros (so fdatasyncs of the data
 * later written over them commit no metadata), synced and named. Such a
 * spare, like the tail of any segment, holds zeros where no frame was
 * written yet, and a segment that holds no frame is valid anywhere.
 *
 * Each rlog_write or rlog_compact appends one frame: crc32c of the payload
 * (u32 LE), payload length n (u32 LE), crc32c of those 8 bytes (u32 LE), then
 * n bytes of records, so a write is all-or-nothing on reload. Record: type
 * (u8), payload length (u32 LE), payload; types and payloads (integers LE):
 *   1 entry       8 index, 8 term, 1 entry type, data
 *   2 hard state  8 term, 8 vote                  (the last one wins)
 *   3 truncate    8 index: drop the entries >= index written before it
 *   4 snapshot    8 index, 8 term, 8 upto, membership blob: the snapshot
 *                 metadata (the last one wins); drop the entries <= upto
 * Integrity: a bad frame (checksums, length) or record (length, unknown type,
 * an entry that does not follow the previous one) is KVFS_ECORRUPT, except a
 * bad frame in the last segment that holds frames (only spares after it)
 * with no valid frame anywhere after it: that
 * is a write cut short by a crash, never acknowledged (acknowledgements follow
 * the fdatasync), and rlog_open truncates it away with a warning. (Damage to
 * the very last frame looks the same and is dropped the same way.)
 *
 * Thread: the node loop only (rlog_open/rlog_load before it starts);
 * rlog_disk_size, rlog_sync_count, rlog_spares_used and rlog_direct from any
 * thread.
 * rlog_close waits for a spare being prepared and the deletions pending.
 * rlog_compact leaves the deletion of the segments it lets go to that
 * thread, so rlog_disk_size falls a little later. On any write failure
 * the functions return KVFS_ESTORAGE and refuse further writes (the node
 * stops: STYLE.md point 8).
 */
#ifndef KVFS_STORE_LOG_H
#define KVFS_STORE_LOG_H

#include <stdbool.h>
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

/* Opens (creating the directory if needed) and checks the log: 0,
 * KVFS_ESTORAGE, KVFS_ECORRUPT, or KVFS_ECONFIG for a log of an older
 * format. */
int rlog_open(const char *path, struct rlog **out);
void rlog_close(struct rlog *log);

/* Loads everything: hard state, snapshot metadata (index 0 when none), and
 * each entry in index order through the callback (data borrowed for the
 * call); *hs and *snap are filled before the first callback. Entries must be contiguous; a gap is KVFS_ECORRUPT. Returns 0 or a
 * negative code (callback's non-zero return stops and is returned). */
int rlog_load(struct rlog *log, struct rlog_hard_state *hs, struct rlog_snapshot_meta *snap,
	      int (*cb)(const struct rlog_entry *e, void *ud), void *ud);

/* One synced batch: if truncate_from > 0, deletes entries >= truncate_from;
 * then appends entries (contiguous, the first == truncate_from or last+1);
 * then stores hs if non-NULL. Returns 0 or KVFS_ESTORAGE. */
int rlog_write(struct rlog *log, const struct rlog_hard_state *hs, uint64_t truncate_from,
	       const struct rlog_entry *entries, size_t n);

/* Records a snapshot (already durable elsewhere) and drops the entries up to
 * and including upto (one synced write; segments holding only such entries
 * are deleted, by the spare thread). Returns 0 or KVFS_ESTORAGE. */
int rlog_compact(struct rlog *log, const struct rlog_snapshot_meta *snap, uint64_t upto);

uint64_t rlog_first_index(struct rlog *log); /* 0 when empty */
uint64_t rlog_last_index(struct rlog *log);  /* 0 when empty */
uint64_t rlog_disk_size(struct rlog *log);

/* Waits until the spare thread is idle: the segment asked for is ready and
 * the segments compactions let go are deleted (tests; rlog_close does it
 * too). */
void rlog_settle(struct rlog *log);

/* Count of synced writes issued (fsyncs), for metrics and benchmarks. */
uint64_t rlog_sync_count(struct rlog *log);

/* Segments that were prepared ahead when the log switched to them (tests). */
uint64_t rlog_spares_used(struct rlog *log);

/* Whether the segment being written takes direct writes (O_DIRECT, where the
 * file system allows it), and a switch to writes through the page cache
 * from now on (kvfsd --log-writes cached; node loop only). */
bool rlog_direct(struct rlog *log);
void rlog_set_buffered(struct rlog *log);

#endif
