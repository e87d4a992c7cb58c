/*
 * libFuzzer target for txn_decode (store/txn.h), the first code to see
 * transaction bytes from the log and from peers.
 *
 * Build and run (outside automake, from the top of the tree):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src -I . \
 *       src/store/txn.c src/common/bytes.c src/common/err.c \
 *       tests/fuzz/fuzz_txn.c -o fuzz_txn
 *   ./fuzz_txn -max_total_time=60 tests/fuzz/corpus/txn   (add a scratch dir
 *       first to keep new inputs out of the committed corpus)
 *
 * The seed corpus is written by tests/fuzz/gen_txn_corpus.c.
 *
 * Oracle: besides ASan/UBSan (no over-read, no overflow), a transaction that
 * decodes must re-encode, field by field following the table in txn.h, to
 * exactly the input bytes: the decoder neither skips nor invents anything.
 * Anything else must be KVFS_EPROTO.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/err.h"
#include "store/txn.h"

static void reencode(struct byte_buf *b, const struct txn *t)
{
	bb_u8(b, TXN_VERSION);
	bb_u8(b, 0);
	bb_le64(b, (uint64_t)t->mtime_ns);
	bb_le32(b, t->n_ops);
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct txn_op *op = &t->ops[i];
		bb_u8(b, op->type);
		bb_u8(b, op->flags);
		bb_le32(b, op->key_len);
		bb_put(b, op->key, op->key_len);
		switch (op->type) {
		case TXN_PUT:
			bb_u8(b, op->kind);
			bb_le32(b, op->mode);
			bb_le32(b, op->value_len);
			bb_put(b, op->value, op->value_len);
			break;
		case TXN_CHECK:
			bb_le64(b, op->rev);
			break;
		case TXN_DELETE:
			break;
		case TXN_DELETE_PREFIX:
			bb_le32(b, op->max_keys);
			break;
		case TXN_RENAME:
			bb_le32(b, op->dst_len);
			bb_put(b, op->dst, op->dst_len);
			break;
		case TXN_RENAME_PREFIX:
			bb_le32(b, op->dst_len);
			bb_put(b, op->dst, op->dst_len);
			bb_le32(b, op->max_keys);
			break;
		case TXN_TOUCH:
			bb_le32(b, op->mode);
			bb_le64(b, (uint64_t)op->mtime_ns);
			break;
		default:
			abort(); /* the decoder accepted an unknown op type */
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct txn t;
	int rc = txn_decode(data, size, &t);
	if (rc == KVFS_EPROTO || rc == -ENOMEM)
		return 0;
	if (rc != 0)
		abort(); /* undocumented return code */
	if (t.n_ops == 0 || t.n_ops > TXN_MAX_OPS)
		abort();
	for (uint32_t i = 0; i < t.n_ops; i++) {
		const struct txn_op *op = &t.ops[i];
		if (op->key_len == 0 || op->key_len > TXN_MAX_KEY || op->key < data ||
		    op->key + op->key_len > data + size)
			abort();
	}
	struct byte_buf b;
	bb_init(&b);
	reencode(&b, &t);
	if (b.err || b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	bb_free(&b);
	txn_free(&t);
	return 0;
}
