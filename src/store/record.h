/*
 * Value records: what the state machine database (kv/) stores for each key.
 *
 * On-disk layout, version 2 (the one written):
 *
 *   size  field
 *   ----  ------------------------------------------------------------
 *      1  format version (RECORD_VERSION = 2)
 *      1  kind: 0 JSON text (compact), 1 raw bytes, 2 directory marker
 *    var  mode (permission bits shown on the mount; 0 = default)
 *    var  mtime, nanoseconds since the epoch, zigzag (set by the leader at
 *         proposal time, so every replica stores the same value)
 *    var  create revision (Raft index of the entry that created it)
 *    var  modify revision minus create revision, zigzag
 *    var  version (number of writes since creation, starting at 1)
 *      n  value bytes (the rest of the record)
 *
 * "var" is an unsigned LEB128 varint (7 bits a byte, low bits first, at
 * most 10 bytes); zigzag maps a signed value to an unsigned one (0, -1, 1,
 * -2 ... to 0, 1, 2, 3 ...). A typical header is 17 to 19 bytes: every
 * byte of it is written again by each LevelDB compaction the record goes
 * through, and the 40-byte fixed header of version 1 was a quarter of a
 * record with a 100-byte value.
 *
 * Version 1 (written by earlier builds; still read, never written): 1, kind,
 * 2 reserved bytes, then little-endian mode u32, mtime i64, create revision
 * u64, modify revision u64 and version u64, 40 bytes in all, then the value.
 *
 * Integrity: LevelDB checksums every block; the store opens with
 * paranoid_checks and reads with verify_checksums, so a corrupt record is an
 * error (KVFS_ECORRUPT), never garbage. A record shorter than its header,
 * with an unknown version or kind, or a varint cut short or past 64 bits
 * (or a mode past 32 bits) is KVFS_ECORRUPT too.
 */
#ifndef KVFS_STORE_RECORD_H
#define KVFS_STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_VERSION 2
#define RECORD_HEADER_MAX 48 /* 2 + 5 varints of at most 10 bytes */

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

/* Length of the header record_encode_header writes for meta. */
size_t record_header_size(const struct record_meta *meta);

/* Writes the header for meta into out (record_header_size(meta) bytes, at
 * most RECORD_HEADER_MAX) and returns its length. */
size_t record_encode_header(uint8_t *out, const struct record_meta *meta);

/* Parses a record. On success fills meta and points value and value_len into buf
 * (borrowed, no copy) and returns 0; returns KVFS_ECORRUPT on a malformed
 * record. */
int record_decode(const void *buf, size_t len, struct record_meta *meta, const uint8_t **value,
		  size_t *value_len);

#endif
