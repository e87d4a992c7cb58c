/*
 * Unit tests of the common byte helpers: CRC-32C (the wire checksum, so its
 * values are part of the protocol) and the bounds-checked reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"

static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* CRC-32C (through ISA-L, with its initial value and final inversion
 * mapped onto ours) gives the standard check value and matches the bitwise
 * definition for every alignment and length, short tails and long buffers
 * (its folding loops) alike. */
static void check_crc(uint32_t (*f)(uint32_t, const void *, size_t))
{
	uint8_t buf[600];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	assert_int_equal(f(0, "123456789", 9), 0xE3069283u);
	for (size_t off = 0; off < 16; off++)
		for (size_t n = 0; n + off <= sizeof buf; n += (n < 40 ? 1 : 37))
			assert_int_equal(f(9, buf + off, n), crc_bitwise(9, buf + off, n));
	/* Chaining: the CRC of a whole equals the CRC continued over its parts. */
	assert_int_equal(f(f(0, buf, 100), buf + 100, 200), f(0, buf, 300));
	/* Buffers of the size of log records and AppendEntries. */
	size_t big = 70000;
	uint8_t *b = malloc(big);
	assert_non_null(b);
	for (size_t i = 0; i < big; i++)
		b[i] = (uint8_t)(i * 2654435761u >> 13);
	for (size_t n = 1000; n <= big; n += 23001)
		assert_int_equal(f(5, b + 3, n - 3), crc_bitwise(5, b + 3, n - 3));
	assert_int_equal(f(f(0, b, 12345), b + 12345, big - 12345), f(0, b, big));
	free(b);
}

static void test_crc32c(void **state)
{
	(void)state;
	check_crc(crc32c);
}

/* The reader refuses to read past its buffer and stays failed. */
static void test_reader_bounds(void **state)
{
	uint8_t b[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	struct byte_reader r;
	br_init(&r, b, sizeof b);
	assert_int_equal(br_u8(&r), 1);
	assert_int_equal(br_le64(&r), get_le64(b + 1));
	assert_null(br_bytes(&r, 2));
	assert_true(r.err);
	assert_int_equal(br_u8(&r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_reader_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
