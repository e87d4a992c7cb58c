/*
 * Unit tests for the transaction encoding (store/txn.h): the builder and the
 * decoder agree on every op type, and the decoder refuses every malformed
 * input with KVFS_EPROTO without reading past its buffer. Malformed inputs
 * are decoded from exact-size heap copies so valgrind (or ASan) catches any
 * over-read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/err.h"
#include "store/record.h"
#include "store/txn.h"

#define MTIME 1700000000123456789LL

/* Decodes a copy of buf[0..len) sitting in an allocation of exactly len
 * bytes; returns txn_decode's code and frees the txn. */
static int decode_exact(const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct txn t;
	assert_non_null(copy);
	memcpy(copy, buf, len);
	int rc = txn_decode(copy, len, &t);
	if (rc == 0)
		txn_free(&t);
	else
		assert_null(t.ops); /* nothing left to free on failure */
	free(copy);
	return rc;
}

/* A transaction with one op of every type, in type order. */
static void build_every_op(struct byte_buf *b)
{
	txn_begin(b, MTIME);
	txn_add_put(b, "k/put", 5, RECORD_RAW, 0644, TXN_F_KEEP_MODE, "value", 5);
	txn_add_check(b, "k/check", 7, 99, TXN_F_MUST_EXIST);
	txn_add_delete(b, "k/del", 5, TXN_F_MUST_EXIST);
	txn_add_delete_prefix(b, "k/dp/", 5, 100);
	txn_add_rename(b, "k/src", 5, "k/dst", 5, TXN_F_NO_REPLACE);
	txn_add_rename_prefix(b, "k/a/", 4, "k/bb/", 5, 7);
	txn_add_touch(b, "k/touch", 7, TXN_F_SET_MODE | TXN_F_SET_MTIME, 0600, -5);
	assert_int_equal(txn_finish(b), 0);
}

/* Builds a one-op transaction with a single DELETE of key "a" (20 bytes +
 * key: header 14, type, flags, key length 4, key 1). */
static void build_one_delete(struct byte_buf *b)
{
	txn_begin(b, 0);
	txn_add_delete(b, "a", 1, 0);
	assert_int_equal(txn_finish(b), 0);
	assert_int_equal(b->len, TXN_HEADER_SIZE + 7);
}

static void assert_key(const uint8_t *p, uint32_t len, const char *want)
{
	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
}

static void test_round_trip_every_op(void **state)
{
	/* Each op type's fields come back from the decoder as the builder wrote them. */
	struct byte_buf b;
	struct txn t;
	bb_init(&b);
	build_every_op(&b);
	assert_int_equal(txn_decode(b.data, b.len, &t), 0);
	assert_true(t.mtime_ns == MTIME);
	assert_int_equal(t.n_ops, 7);

	const struct txn_op *op = t.ops;
	assert_int_equal(op->type, TXN_PUT);
	assert_int_equal(op->flags, TXN_F_KEEP_MODE);
	assert_key(op->key, op->key_len, "k/put");
	assert_int_equal(op->kind, RECORD_RAW);
	assert_int_equal(op->mode, 0644);
	assert_key(op->value, op->value_len, "value");

	op++;
	assert_int_equal(op->type, TXN_CHECK);
	assert_int_equal(op->flags, TXN_F_MUST_EXIST);
	assert_key(op->key, op->key_len, "k/check");
	assert_int_equal(op->rev, 99);

	op++;
	assert_int_equal(op->type, TXN_DELETE);
	assert_int_equal(op->flags, TXN_F_MUST_EXIST);
	assert_key(op->key, op->key_len, "k/del");

	op++;
	assert_int_equal(op->type, TXN_DELETE_PREFIX);
	assert_key(op->key, op->key_len, "k/dp/");
	assert_int_equal(op->max_keys, 100);

	op++;
	assert_int_equal(op->type, TXN_RENAME);
	assert_int_equal(op->flags, TXN_F_NO_REPLACE);
	assert_key(op->key, op->key_len, "k/src");
	assert_key(op->dst, op->dst_len, "k/dst");

	op++;
	assert_int_equal(op->type, TXN_RENAME_PREFIX);
	assert_key(op->key, op->key_len, "k/a/");
	assert_key(op->dst, op->dst_len, "k/bb/");
	assert_int_equal(op->max_keys, 7);

	op++;
	assert_int_equal(op->type, TXN_TOUCH);
	assert_int_equal(op->flags, TXN_F_SET_MODE | TXN_F_SET_MTIME);
	assert_key(op->key, op->key_len, "k/touch");
	assert_int_equal(op->mode, 0600);
	assert_true(op->mtime_ns == -5);

	/* Keys and values are borrowed from the encoded buffer. */
	assert_true(t.ops[0].key >= b.data && t.ops[0].key < b.data + b.len);
	txn_free(&t);
	assert_null(t.ops);
	bb_free(&b);
}

static void test_empty_value_and_binary_key(void **state)
{
	/* A PUT with an empty value and a key holding NUL and 0xff bytes round-trips. */
	struct byte_buf b;
	struct txn t;
	const char key[] = {'\0', 'x', (char)0xff};
	bb_init(&b);
	txn_begin(&b, 0);
	txn_add_put(&b, key, sizeof key, RECORD_JSON, 0, 0, NULL, 0);
	assert_int_equal(txn_finish(&b), 0);
	assert_int_equal(txn_decode(b.data, b.len, &t), 0);
	assert_int_equal(t.n_ops, 1);
	assert_int_equal(t.ops[0].key_len, sizeof key);
	assert_memory_equal(t.ops[0].key, key, sizeof key);
	assert_int_equal(t.ops[0].value_len, 0);
	txn_free(&t);
	bb_free(&b);
}

static void test_builder_reuses_buffer(void **state)
{
	/* txn_begin restarts the buffer: a second transaction built in it holds only its own ops. */
	struct byte_buf b;
	struct txn t;
	bb_init(&b);
	build_every_op(&b);
	build_one_delete(&b);
	assert_int_equal(txn_decode(b.data, b.len, &t), 0);
	assert_int_equal(t.n_ops, 1);
	assert_int_equal(t.ops[0].type, TXN_DELETE);
	txn_free(&t);
	bb_free(&b);
}

static void test_every_truncation_rejected(void **state)
{
	/* Every strict prefix of a valid transaction (one op of each type) is KVFS_EPROTO. */
	struct byte_buf b;
	bb_init(&b);
	build_every_op(&b);
	assert_int_equal(decode_exact(b.data, b.len), 0);
	for (size_t len = 0; len < b.len; len++)
		assert_int_equal(decode_exact(b.data, len), KVFS_EPROTO);
	bb_free(&b);
}

static void test_trailing_bytes_rejected(void **state)
{
	/* Bytes after the last op are KVFS_EPROTO, even a single zero byte. */
	struct byte_buf b;
	bb_init(&b);
	build_every_op(&b);
	bb_u8(&b, 0);
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_put(&b, "more", 4);
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_free(&b);
}

static void test_bad_version_or_flags_rejected(void **state)
{
	/* A version other than TXN_VERSION, or non-zero reserved flags, is KVFS_EPROTO. */
	struct byte_buf b;
	bb_init(&b);
	build_one_delete(&b);
	const uint8_t versions[] = {0, TXN_VERSION + 1, 0xff};
	for (size_t i = 0; i < sizeof versions; i++) {
		b.data[0] = versions[i];
		assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	}
	b.data[0] = TXN_VERSION;
	b.data[1] = 1;
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_free(&b);
}

static void test_op_count_rejected(void **state)
{
	/* Zero ops, more ops than the bytes could hold, more than TXN_MAX_OPS, or one
	 * more op than encoded are all KVFS_EPROTO (and allocate nothing huge). */
	struct byte_buf b;
	bb_init(&b);
	build_one_delete(&b);
	const uint32_t counts[] = {0, 2, 3, 1000, TXN_MAX_OPS, TXN_MAX_OPS + 1, UINT32_MAX};
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		put_le32(b.data + 10, counts[i]);
		assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	}

	/* A long key leaves room for the count to pass the bytes-per-op bound, so
	 * the decoder must notice the missing ops while reading them. */
	txn_begin(&b, 0);
	txn_add_delete(&b, "a-twenty-byte-key...", 20, 0);
	for (uint32_t n = 2; n <= (b.len - TXN_HEADER_SIZE) / 6; n++) {
		put_le32(b.data + 10, n);
		assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	}
	bb_free(&b);
}

static void test_bad_op_type_rejected(void **state)
{
	/* Op types outside TXN_PUT..TXN_TOUCH are KVFS_EPROTO. */
	struct byte_buf b;
	bb_init(&b);
	build_one_delete(&b);
	const uint8_t types[] = {0, TXN_TOUCH + 1, 0x80, 0xff};
	for (size_t i = 0; i < sizeof types; i++) {
		b.data[TXN_HEADER_SIZE] = types[i];
		assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	}
	bb_free(&b);
}

static void test_bad_key_length_rejected(void **state)
{
	/* A zero-length key, a key longer than the bytes present, and a key longer
	 * than TXN_MAX_KEY are KVFS_EPROTO. */
	struct byte_buf b;
	bb_init(&b);
	build_one_delete(&b);
	const uint32_t lens[] = {0, 2, TXN_MAX_KEY + 1, UINT32_MAX};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		put_le32(b.data + TXN_HEADER_SIZE + 2, lens[i]);
		assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	}
	bb_free(&b);

	/* The builder itself does not refuse an empty key; the decoder does. */
	bb_init(&b);
	txn_begin(&b, 0);
	txn_add_put(&b, "", 0, RECORD_RAW, 0, 0, "v", 1);
	assert_int_equal(txn_finish(&b), 0);
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_free(&b);
}

static void test_bad_rename_destination_rejected(void **state)
{
	/* RENAME and RENAME_PREFIX with an empty destination are KVFS_EPROTO. */
	struct byte_buf b;
	bb_init(&b);
	txn_begin(&b, 0);
	txn_add_rename(&b, "a", 1, "", 0, 0);
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	txn_begin(&b, 0);
	txn_add_rename_prefix(&b, "a", 1, "", 0, 0);
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_free(&b);
}

static void test_bad_put_fields_rejected(void **state)
{
	/* A PUT with an unknown record kind, or a value length past the end, is KVFS_EPROTO. */
	struct byte_buf b;
	bb_init(&b);
	txn_begin(&b, 0);
	txn_add_put(&b, "a", 1, RECORD_RAW, 0, 0, "vv", 2);
	size_t kind_at = TXN_HEADER_SIZE + 6 + 1, vlen_at = kind_at + 5;
	assert_int_equal(decode_exact(b.data, b.len), 0);
	b.data[kind_at] = RECORD_DIR + 1;
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	b.data[kind_at] = RECORD_RAW;
	put_le32(b.data + vlen_at, 3);
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	put_le32(b.data + vlen_at, UINT32_MAX);
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	put_le32(b.data + vlen_at, 1); /* shorter value: one trailing byte */
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_free(&b);
}

static void test_every_byte_flip_is_safe(void **state)
{
	/* Changing any single byte of a valid transaction to any value either
	 * decodes or fails with KVFS_EPROTO: never a crash or an over-read. */
	struct byte_buf b;
	bb_init(&b);
	build_every_op(&b);
	for (size_t i = 0; i < b.len; i++) {
		uint8_t saved = b.data[i];
		const uint8_t vals[] = {0, 1, 0x7f, 0x80, 0xff, (uint8_t)(saved + 1)};
		for (size_t j = 0; j < sizeof vals; j++) {
			b.data[i] = vals[j];
			int rc = decode_exact(b.data, b.len);
			assert_true(rc == 0 || rc == KVFS_EPROTO);
		}
		b.data[i] = saved;
	}
	bb_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_op),
		cmocka_unit_test(test_empty_value_and_binary_key),
		cmocka_unit_test(test_builder_reuses_buffer),
		cmocka_unit_test(test_every_truncation_rejected),
		cmocka_unit_test(test_trailing_bytes_rejected),
		cmocka_unit_test(test_bad_version_or_flags_rejected),
		cmocka_unit_test(test_op_count_rejected),
		cmocka_unit_test(test_bad_op_type_rejected),
		cmocka_unit_test(test_bad_key_length_rejected),
		cmocka_unit_test(test_bad_rename_destination_rejected),
		cmocka_unit_test(test_bad_put_fields_rejected),
		cmocka_unit_test(test_every_byte_flip_is_safe),
	};
	return cmocka_run_group_tests_name("txn", tests, NULL, NULL);
}
