/*
 * Transaction encoding and validation (format table in txn.h). The decoder is
 * the first thing to see bytes from the log and from peers, so it checks every
 * length against what remains and allocates only in proportion to the input
 * (the op count is bounded by the bytes present: every op takes >= 6 bytes).
 */
#include <errno.h>
#include <stdlib.h>

#include "common/err.h"
#include "store/record.h"
#include "store/txn.h"

void txn_begin(struct byte_buf *b, int64_t mtime_ns)
{
	b->len = 0;
	bb_u8(b, TXN_VERSION);
	bb_u8(b, 0);
	bb_le64(b, (uint64_t)mtime_ns);
	bb_le32(b, 0); /* op count, patched by txn_finish */
}

static void op_head(struct byte_buf *b, uint8_t type, uint8_t flags, const void *key, size_t klen)
{
	bb_u8(b, type);
	bb_u8(b, flags);
	bb_le32(b, (uint32_t)klen);
	bb_put(b, key, klen);
	if (!b->err && b->len >= TXN_HEADER_SIZE)
		put_le32(b->data + 10, get_le32(b->data + 10) + 1);
}

void txn_add_put(struct byte_buf *b, const void *key, size_t klen, uint8_t kind, uint32_t mode,
		 uint8_t flags, const void *val, size_t vlen)
{
	op_head(b, TXN_PUT, flags, key, klen);
	bb_u8(b, kind);
	bb_le32(b, mode);
	bb_le32(b, (uint32_t)vlen);
	bb_put(b, val, vlen);
}

void txn_add_check(struct byte_buf *b, const void *key, size_t klen, uint64_t rev, uint8_t flags)
{
	op_head(b, TXN_CHECK, flags, key, klen);
	bb_le64(b, rev);
}

void txn_add_delete(struct byte_buf *b, const void *key, size_t klen, uint8_t flags)
{
	op_head(b, TXN_DELETE, flags, key, klen);
}

void txn_add_delete_prefix(struct byte_buf *b, const void *prefix, size_t plen, uint32_t max_keys)
{
	op_head(b, TXN_DELETE_PREFIX, 0, prefix, plen);
	bb_le32(b, max_keys);
}

void txn_add_rename(struct byte_buf *b, const void *src, size_t slen, const void *dst, size_t dlen,
		    uint8_t flags)
{
	op_head(b, TXN_RENAME, flags, src, slen);
	bb_le32(b, (uint32_t)dlen);
	bb_put(b, dst, dlen);
}

void txn_add_rename_prefix(struct byte_buf *b, const void *src, size_t slen, const void *dst,
			   size_t dlen, uint32_t max_keys)
{
	op_head(b, TXN_RENAME_PREFIX, 0, src, slen);
	bb_le32(b, (uint32_t)dlen);
	bb_put(b, dst, dlen);
	bb_le32(b, max_keys);
}

void txn_add_touch(struct byte_buf *b, const void *key, size_t klen, uint8_t flags, uint32_t mode,
		   int64_t mtime_ns)
{
	op_head(b, TXN_TOUCH, flags, key, klen);
	bb_le32(b, mode);
	bb_le64(b, (uint64_t)mtime_ns);
}

int txn_finish(struct byte_buf *b)
{
	return b->err ? -ENOMEM : 0;
}

void txn_free(struct txn *txn)
{
	free(txn->ops);
	txn->ops = NULL;
	txn->n_ops = 0;
}

/* Reads a length-prefixed byte string of 1..max bytes. */
static const uint8_t *read_str(struct byte_reader *r, uint32_t *len, uint32_t max)
{
	*len = br_le32(r);
	if (r->err || *len == 0 || *len > max) {
		r->err = 1;
		return NULL;
	}
	return br_bytes(r, *len);
}

int txn_decode(const void *buf, size_t len, struct txn *txn)
{
	struct byte_reader r;
	br_init(&r, buf, len);
	txn->ops = NULL;
	txn->n_ops = 0;

	uint8_t version = br_u8(&r);
	uint8_t flags = br_u8(&r);
	txn->mtime_ns = (int64_t)br_le64(&r);
	uint32_t n = br_le32(&r);
	if (r.err || version != TXN_VERSION || flags != 0 || n == 0 || n > TXN_MAX_OPS ||
	    n > r.left / 6)
		return KVFS_EPROTO;
	txn->ops = calloc(n, sizeof *txn->ops);
	if (!txn->ops)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && !r.err; i++) {
		struct txn_op *op = &txn->ops[i];
		op->type = br_u8(&r);
		op->flags = br_u8(&r);
		op->key = read_str(&r, &op->key_len, TXN_MAX_KEY);
		switch (op->type) {
		case TXN_PUT:
			op->kind = br_u8(&r);
			op->mode = br_le32(&r);
			op->value_len = br_le32(&r);
			op->value = br_bytes(&r, op->value_len);
			if (op->kind > RECORD_DIR)
				r.err = 1;
			break;
		case TXN_CHECK:
			op->rev = br_le64(&r);
			break;
		case TXN_DELETE:
			break;
		case TXN_DELETE_PREFIX:
			op->max_keys = br_le32(&r);
			break;
		case TXN_RENAME:
			op->dst = read_str(&r, &op->dst_len, TXN_MAX_KEY);
			break;
		case TXN_RENAME_PREFIX:
			op->dst = read_str(&r, &op->dst_len, TXN_MAX_KEY);
			op->max_keys = br_le32(&r);
			break;
		case TXN_TOUCH:
			op->mode = br_le32(&r);
			op->mtime_ns = (int64_t)br_le64(&r);
			break;
		default:
			r.err = 1;
		}
	}
	if (r.err || r.left != 0) {
		txn_free(txn);
		return KVFS_EPROTO;
	}
	txn->n_ops = n;
	return 0;
}
