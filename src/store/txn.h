/*
 * Transactions: the one kind of state-machine command kvfs replicates.
 *
 * Every write (single PUT, batch PUT, DELETE, compare-and-swap, FUSE rename,
 * mkdir, chmod ...) is one Raft entry holding one transaction: a list of
 * operations, including preconditions, applied all-or-nothing by the state
 * machine (store/kv.c) in one LevelDB write batch. If any precondition fails,
 * nothing is written and the transaction's result says which op failed.
 *
 * Encoding, version 1 (integers little-endian):
 *
 *   offset  size  field
 *        0     1  version (TXN_VERSION = 1)
 *        1     1  flags (reserved, zero)
 *        2     8  mtime, ns since epoch (leader's clock at proposal)
 *       10     4  number of ops N (1 .. TXN_MAX_OPS)
 *       14        N ops, each:
 *                   1  op type (enum txn_op_type)
 *                   1  op flags (enum txn_op_flags)
 *                   4  key length K (1 .. TXN_MAX_KEY)
 *                   K  key bytes
 *                 then by type:
 *                   PUT:           1 kind, 4 mode, 4 value length V, V bytes
 *                   CHECK:         8 revision (0 = key must be absent)
 *                   DELETE:        nothing
 *                   DELETE_PREFIX: 4 max keys
 *                   RENAME:        4 length D, D bytes destination key
 *                   RENAME_PREFIX: 4 length D, D bytes destination prefix, 4 max keys
 *                   TOUCH:         4 mode, 8 mtime (ns; flags say which apply)
 *
 * Integrity of the bytes is guarded where they travel (wire checksum) and
 * where they rest (LevelDB block checksums); txn_decode still validates every
 * length and type, and rejects trailing bytes.
 */
#ifndef KVFS_STORE_TXN_H
#define KVFS_STORE_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

#define TXN_VERSION 1
#define TXN_MAX_OPS 1000000
#define TXN_MAX_KEY 65535
#define TXN_HEADER_SIZE 14

enum txn_op_type {
	TXN_PUT = 1,
	TXN_CHECK = 2,         /* precondition on the key's modify revision */
	TXN_DELETE = 3,
	TXN_DELETE_PREFIX = 4, /* delete every key starting with key */
	TXN_RENAME = 5,        /* move the record at key to dst (replacing dst) */
	TXN_RENAME_PREFIX = 6, /* move every key under prefix key to prefix dst, as one
				  simultaneous move (either prefix may contain the other) */
	TXN_TOUCH = 7,         /* change mode and/or mtime, keep the value */
};

enum txn_op_flags {
	TXN_F_MUST_EXIST = 1 << 0, /* DELETE/RENAME/TOUCH: fail with KVFS_ENOTFOUND if absent;
				      CHECK with revision 0: key must exist (any revision) */
	TXN_F_KEEP_MODE = 1 << 1,  /* PUT: keep the existing record's mode (mode is the default) */
	TXN_F_SET_MODE = 1 << 2,   /* TOUCH: apply mode */
	TXN_F_SET_MTIME = 1 << 3,  /* TOUCH: apply mtime */
	TXN_F_NO_REPLACE = 1 << 4, /* RENAME: fail with KVFS_EEXIST if dst exists */
};

struct txn_op {
	uint8_t type, flags;
	const uint8_t *key; /* borrowed from the encoded buffer */
	uint32_t key_len;
	/* PUT */
	uint8_t kind;
	uint32_t mode;
	const uint8_t *value;
	uint32_t value_len;
	/* CHECK */
	uint64_t rev;
	/* RENAME, RENAME_PREFIX */
	const uint8_t *dst;
	uint32_t dst_len;
	/* DELETE_PREFIX, RENAME_PREFIX */
	uint32_t max_keys;
	/* TOUCH */
	int64_t mtime_ns;
};

struct txn {
	int64_t mtime_ns;
	uint32_t n_ops;
	struct txn_op *ops; /* owned; free with txn_free() */
};

/* Decodes an encoded transaction. The ops point into buf, which must outlive
 * the txn. Returns 0, KVFS_EPROTO on malformed input, -ENOMEM. */
int txn_decode(const void *buf, size_t len, struct txn *txn);
void txn_free(struct txn *txn);

/* Builder: txn_begin, then one call per op, then txn_finish. Errors are sticky
 * in the byte_buf (b->err); txn_finish returns 0 or -ENOMEM. */
void txn_begin(struct byte_buf *b, int64_t mtime_ns);
void txn_add_put(struct byte_buf *b, const void *key, size_t klen, uint8_t kind, uint32_t mode,
		 uint8_t flags, const void *val, size_t vlen);
void txn_add_check(struct byte_buf *b, const void *key, size_t klen, uint64_t rev, uint8_t flags);
void txn_add_delete(struct byte_buf *b, const void *key, size_t klen, uint8_t flags);
void txn_add_delete_prefix(struct byte_buf *b, const void *prefix, size_t plen, uint32_t max_keys);
void txn_add_rename(struct byte_buf *b, const void *src, size_t slen, const void *dst, size_t dlen,
		    uint8_t flags);
void txn_add_rename_prefix(struct byte_buf *b, const void *src, size_t slen, const void *dst,
			   size_t dlen, uint32_t max_keys);
void txn_add_touch(struct byte_buf *b, const void *key, size_t klen, uint8_t flags, uint32_t mode,
		   int64_t mtime_ns);
int txn_finish(struct byte_buf *b);

#endif
