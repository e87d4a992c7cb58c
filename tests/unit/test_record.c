/*
 * Unit tests for value records (store/record.h): what is encoded decodes to
 * the same metadata and value, and anything that is not a version-1 record of
 * a known kind is refused with KVFS_ECORRUPT instead of being misread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "store/record.h"

static const struct record_meta sample_meta = {
	.kind = RECORD_RAW,
	.mode = 0640,
	.mtime_ns = -1234567890123LL, /* negative times survive the cast */
	.create_rev = 7,
	.mod_rev = 0x0102030405060708ULL,
	.version = 42,
};

/* Encodes meta + value into buf and returns the record length. */
static size_t make_record(uint8_t *buf, const struct record_meta *m, const char *value)
{
	size_t vlen = strlen(value);
	record_encode_header(buf, m);
	memcpy(buf + RECORD_HEADER_SIZE, value, vlen);
	return RECORD_HEADER_SIZE + vlen;
}

static void assert_meta_equal(const struct record_meta *a, const struct record_meta *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->mode, b->mode);
	assert_true(a->mtime_ns == b->mtime_ns);
	assert_true(a->create_rev == b->create_rev);
	assert_true(a->mod_rev == b->mod_rev);
	assert_true(a->version == b->version);
}

static void test_round_trip(void **state)
{
	/* Every header field and the value bytes come back exactly as encoded. */
	uint8_t buf[128];
	size_t len = make_record(buf, &sample_meta, "hello, world");
	struct record_meta m;
	const uint8_t *v;
	size_t vlen;
	assert_int_equal(record_decode(buf, len, &m, &v, &vlen), 0);
	assert_meta_equal(&m, &sample_meta);
	assert_int_equal(vlen, 12);
	assert_memory_equal(v, "hello, world", 12);
	assert_ptr_equal(v, buf + RECORD_HEADER_SIZE); /* borrowed, not copied */
}

static void test_empty_value_and_every_kind(void **state)
{
	/* A header-only record is valid (empty value) for each of the three kinds. */
	for (uint8_t kind = RECORD_JSON; kind <= RECORD_DIR; kind++) {
		uint8_t buf[RECORD_HEADER_SIZE];
		struct record_meta in = sample_meta, m;
		const uint8_t *v;
		size_t vlen = 99;
		in.kind = kind;
		record_encode_header(buf, &in);
		assert_int_equal(record_decode(buf, sizeof buf, &m, &v, &vlen), 0);
		assert_meta_equal(&m, &in);
		assert_int_equal(vlen, 0);
	}
}

static void test_layout_matches_table(void **state)
{
	/* The bytes sit at the offsets the table in record.h documents. */
	uint8_t buf[RECORD_HEADER_SIZE];
	record_encode_header(buf, &sample_meta);
	assert_int_equal(buf[0], RECORD_VERSION);
	assert_int_equal(buf[1], RECORD_RAW);
	assert_int_equal(buf[2], 0);
	assert_int_equal(buf[3], 0);
	assert_int_equal(buf[4], 0640 & 0xff);
	assert_int_equal(buf[16], 7);
	assert_int_equal(buf[24], 0x08); /* little-endian */
	assert_int_equal(buf[31], 0x01);
	assert_int_equal(buf[32], 42);
}

static void test_truncated_rejected(void **state)
{
	/* Every length shorter than the header is KVFS_ECORRUPT, read without
	 * touching a byte past the end (each prefix sits in its own exact-size
	 * allocation, so valgrind/ASan see any over-read). */
	uint8_t buf[RECORD_HEADER_SIZE];
	struct record_meta m;
	const uint8_t *v;
	size_t vlen;
	record_encode_header(buf, &sample_meta);
	for (size_t len = 0; len < RECORD_HEADER_SIZE; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, buf, len);
		assert_int_equal(record_decode(copy, len, &m, &v, &vlen), KVFS_ECORRUPT);
		free(copy);
	}
}

static void test_unknown_version_rejected(void **state)
{
	/* Version bytes other than RECORD_VERSION are KVFS_ECORRUPT. */
	uint8_t buf[64];
	size_t len = make_record(buf, &sample_meta, "x");
	struct record_meta m;
	const uint8_t *v;
	size_t vlen;
	const uint8_t bad[] = {0, 2, 0x7f, 0xff};
	for (size_t i = 0; i < sizeof bad; i++) {
		buf[0] = bad[i];
		assert_int_equal(record_decode(buf, len, &m, &v, &vlen), KVFS_ECORRUPT);
	}
}

static void test_unknown_kind_rejected(void **state)
{
	/* A kind past RECORD_DIR is KVFS_ECORRUPT. */
	uint8_t buf[64];
	size_t len = make_record(buf, &sample_meta, "x");
	struct record_meta m;
	const uint8_t *v;
	size_t vlen;
	buf[1] = RECORD_DIR + 1;
	assert_int_equal(record_decode(buf, len, &m, &v, &vlen), KVFS_ECORRUPT);
	buf[1] = 0xff;
	assert_int_equal(record_decode(buf, len, &m, &v, &vlen), KVFS_ECORRUPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_value_and_every_kind),
		cmocka_unit_test(test_layout_matches_table),
		cmocka_unit_test(test_truncated_rejected),
		cmocka_unit_test(test_unknown_version_rejected),
		cmocka_unit_test(test_unknown_kind_rejected),
	};
	return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
