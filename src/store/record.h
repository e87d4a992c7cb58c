/*
 * Value records: what the state machine database (kv/) stores for each key.
 *
 * On-disk layout (all integers little-endian), version 1:
 *
 *   offset  size  field
 *   ------  ----  ------------------------------------------------------
 *        0     1  format version (RECORD_VERSION = 1)
 *        1     1  kind: 0 JSON text (compact), 1 raw bytes, 2 directory marker
 *        2     2  reserved, zero
 *        4     4  mode (permission bits shown on the mount; 0 = default)
 *        8     8  mtime, nanoseconds since the epoch (set by the leader at
 *                 proposal time, so every replica stores the same value)
 *       16     8  create revision (Raft index of the entry that created it)
 *       24     8  modify revision (Raft index of the last entry that wrote it)
 *       32     8  version (number of writes since creation, starting at 1)
 *       40     n  value bytes (n = record length - 40)
 *
 * Integrity: LevelDB checksums every block; the store opens with
 * paranoid_checks and reads with verify_checksums, so a corrupt record is an
 * error (KVFS_ECORRUPT), never garbage. A record shorter than the header or
 * with an unknown version is KVFS_ECORRUPT too.
 */
#ifndef KVFS_STORE_RECORD_H
#define KVFS_STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_VERSION 1
#define RECORD_HEADER_SIZE 40

enum record_kind {
	RECORD_JSON = 0, /* value is compact JSON text (never "null") */
	RECORD_RAW = 1,  /* value is opaque bytes */
	RECORD_DIR = 2,  /* empty-directory marker created by mkdir on the mount */
};

struct record_meta {
	uint8_t kind;
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t create_rev;
	uint64_t mod_rev;
	uint64_t version;
};

/* Writes the 40-byte header for meta into out. */
void record_encode_header(uint8_t out[RECORD_HEADER_SIZE], const struct record_meta *meta);

/* Parses a record. On success fills meta and points value and value_len into buf
 * (borrowed, no copy) and returns 0; returns KVFS_ECORRUPT on a malformed
 * record. */
int record_decode(const void *buf, size_t len, struct record_meta *meta, const uint8_t **value,
		  size_t *value_len);

#endif
