/*
 * Unit tests for value records (store/record.h): what is encoded decodes to
 * the same metadata and value, whatever the field values; the header sits
 * as record.h documents it and is as short as it says; records of version
 * 1 (the fixed 40-byte header) still decode; anything else (a header cut
 * short, an unknown version or kind, a varint past 64 bits, a mode past 32)
 * is refused with KVFS_ECORRUPT instead of being misread.
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

static const struct record_meta sample_meta = {
	.kind = RECORD_RAW,
	.mode = 0640,
	.mtime_ns = -1234567890123LL, /* negative times survive */
	.create_rev = 7,
	.mod_rev = 0x0102030405060708ULL,
	.version = 42,
};

/* Encodes meta + value into buf and returns the record length. */
static size_t make_record(uint8_t *buf, const struct record_meta *m, const char *value)
{
	size_t vlen = strlen(value), h = record_encode_header(buf, m);
	assert_int_equal(h, record_header_size(m));
	assert_true(h <= RECORD_HEADER_MAX);
	memcpy(buf + h, value, vlen);
	return h + vlen;
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

/* Encodes m with value "v!" and checks it decodes back exactly. */
static void assert_round_trip(const struct record_meta *in)
{
	uint8_t buf[RECORD_HEADER_MAX + 8];
	size_t len = make_record(buf, in, "v!");
	struct record_meta m;
	const uint8_t *v;
	size_t vlen;
	assert_int_equal(record_decode(buf, len, &m, &v, &vlen), 0);
	assert_meta_equal(&m, in);
	assert_int_equal(vlen, 2);
	assert_memory_equal(v, "v!", 2);
	assert_ptr_equal(v, buf + record_header_size(in)); /* borrowed, not copied */
}

static void test_round_trip(void **state)
{
	/* Every header field and the value bytes come back exactly as encoded. */
	assert_round_trip(&sample_meta);
}

static void test_round_trip_extremes(void **state)
{
	/* 0, 1, the varint byte boundaries, the largest values, negative
	 * times, a modify revision below the create revision: all exact. */
	const uint64_t u[] = {0, 1, 127, 128, 16383, 16384, (1ull << 35) - 1, 1ull << 56,
			      INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX};
	const int64_t t[] = {0, -1, 1, INT64_MIN, INT64_MAX, 1795000000123456789LL};
	for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
		for (size_t j = 0; j < sizeof u / sizeof u[0]; j++) {
			struct record_meta m = {.kind = RECORD_JSON, .mode = (uint32_t)u[i],
						.mtime_ns = t[(i + j) % 6], .create_rev = u[i],
						.mod_rev = u[j], .version = u[(i + 3 * j) % 12]};
			assert_round_trip(&m);
		}
	struct record_meta big = sample_meta;
	big.mode = UINT32_MAX;
	assert_round_trip(&big);
}

static void test_empty_value_and_every_kind(void **state)
{
	/* A header-only record is valid (empty value) for each of the three kinds. */
	for (uint8_t kind = RECORD_JSON; kind <= RECORD_DIR; kind++) {
		uint8_t buf[RECORD_HEADER_MAX];
		struct record_meta in = sample_meta, m;
		const uint8_t *v;
		size_t vlen = 99;
		in.kind = kind;
		size_t h = record_encode_header(buf, &in);
		assert_int_equal(record_decode(buf, h, &m, &v, &vlen), 0);
		assert_meta_equal(&m, &in);
		assert_int_equal(vlen, 0);
	}
}

static void test_layout_matches_table(void **state)
{
	/* The bytes are the ones the table in record.h documents, and a
	 * typical header (a file's mode, a current time, revisions in the
	 * millions, a few writes) is 19 bytes, not version 1's 40. */
	struct record_meta m = {.kind = RECORD_RAW, .mode = 0644,
				.mtime_ns = 1795000000123456789LL, .create_rev = 5000000,
				.mod_rev = 5000003, .version = 4};
	uint8_t buf[RECORD_HEADER_MAX];
	size_t h = record_encode_header(buf, &m);
	const uint8_t want_start[] = {RECORD_VERSION, RECORD_RAW, 0xa4, 0x03}; /* 420 */
	assert_memory_equal(buf, want_start, sizeof want_start);
	/* mtime: zigzag (doubled), 9 varint bytes; then 5000000 in 4 */
	assert_int_equal(buf[4] & 1, 0);
	for (int i = 4; i < 12; i++)
		assert_true(buf[i] & 0x80);
	assert_false(buf[12] & 0x80);
	const uint8_t want_end[] = {0xc0, 0x96, 0xb1, 0x02, /* 5000000 */
				    6,			    /* zigzag(+3) */
				    4};
	assert_int_equal(h, 13 + sizeof want_end);
	assert_memory_equal(buf + 13, want_end, sizeof want_end);
	assert_int_equal(h, 19);
}

static void test_version_1_still_read(void **state)
{
	/* A record of the fixed 40-byte layout of version 1 decodes. */
	uint8_t buf[48] = {1, RECORD_DIR, 0, 0};
	put_le32(buf + 4, 0755);
	put_le64(buf + 8, (uint64_t)-5);
	put_le64(buf + 16, 11);
	put_le64(buf + 24, 12);
	put_le64(buf + 32, 3);
	memcpy(buf + 40, "12345678", 8);
	struct record_meta m, want = {.kind = RECORD_DIR, .mode = 0755, .mtime_ns = -5,
				      .create_rev = 11, .mod_rev = 12, .version = 3};
	const uint8_t *v;
	size_t vlen;
	assert_int_equal(record_decode(buf, sizeof buf, &m, &v, &vlen), 0);
	assert_meta_equal(&m, &want);
	assert_ptr_equal(v, buf + 40);
	assert_int_equal(vlen, 8);
	assert_int_equal(record_decode(buf, 39, &m, &v, &vlen), KVFS_ECORRUPT);
}

static void test_truncated_rejected(void **state)
{
	/* Every length shorter than the header is KVFS_ECORRUPT, read without
	 * touching a byte past the end (each prefix sits in its own exact-size
	 * allocation, so valgrind/ASan see any over-read). */
	uint8_t buf[RECORD_HEADER_MAX];
	struct record_meta m;
	const uint8_t *v;
	size_t vlen, h = record_encode_header(buf, &sample_meta);
	for (size_t len = 0; len < h; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, buf, len);
		assert_int_equal(record_decode(copy, len, &m, &v, &vlen), KVFS_ECORRUPT);
		free(copy);
	}
}

static void test_bad_varints_rejected(void **state)
{
	/* A varint of more than 64 bits (11 bytes, or a 10th byte above 1)
	 * and a mode past 32 bits are KVFS_ECORRUPT. */
	struct record_meta m;
	const uint8_t *v;
	size_t vlen;
	uint8_t eleven[16] = {RECORD_VERSION, 0};
	memset(eleven + 2, 0x80, 10);
	eleven[12] = 0;
	assert_int_equal(record_decode(eleven, 13, &m, &v, &vlen), KVFS_ECORRUPT);
	uint8_t tenth[32] = {RECORD_VERSION, 0, 0};
	memset(tenth + 3, 0xff, 9);
	tenth[12] = 2; /* bit 64 */
	memset(tenth + 13, 0, 3);
	assert_int_equal(record_decode(tenth, 16, &m, &v, &vlen), KVFS_ECORRUPT);
	tenth[12] = 1; /* bit 63: fits */
	assert_int_equal(record_decode(tenth, 16, &m, &v, &vlen), 0);
	const uint8_t mode33[] = {RECORD_VERSION, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0};
	assert_int_equal(record_decode(mode33, sizeof mode33, &m, &v, &vlen), KVFS_ECORRUPT);
}

static void test_unknown_version_rejected(void **state)
{
	/* Version bytes other than 1 and RECORD_VERSION are KVFS_ECORRUPT. */
	uint8_t buf[64];
	size_t len = make_record(buf, &sample_meta, "x");
	struct record_meta m;
	const uint8_t *v;
	size_t vlen;
	const uint8_t bad[] = {0, 3, 0x7f, 0xff};
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
		cmocka_unit_test(test_round_trip_extremes),
		cmocka_unit_test(test_empty_value_and_every_kind),
		cmocka_unit_test(test_layout_matches_table),
		cmocka_unit_test(test_version_1_still_read),
		cmocka_unit_test(test_truncated_rejected),
		cmocka_unit_test(test_bad_varints_rejected),
		cmocka_unit_test(test_unknown_version_rejected),
		cmocka_unit_test(test_unknown_kind_rejected),
	};
	return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
