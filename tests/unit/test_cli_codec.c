/*
 * Unit tests of the client's byte encodings: key percent-encoding (every byte
 * outside the unreserved set and '/' escaped, so any key reaches the server
 * intact) and base64 decoding of non-UTF-8 keys and values.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "cli/codec.h"

static void expect_encoded(const char *key, size_t len, const char *want)
{
	struct cli_buf out = CLI_BUF_INIT;

	assert_int_equal(cli_percent_encode(key, len, &out), 0);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data ? out.data : "", want, out.len);
	cli_buf_free(&out);
}

/* Unreserved characters and '/' pass through; everything else is %XX. */
static void test_percent_encode_sets(void **state)
{
	expect_encoded("AZaz09-._~", 10, "AZaz09-._~");
	expect_encoded("a/b/c", 5, "a/b/c");
	expect_encoded("a b+c%d", 7, "a%20b%2Bc%25d");
	expect_encoded("?&=#", 4, "%3F%26%3D%23");
	expect_encoded("", 0, "");
}

/* Arbitrary bytes, NUL and high bytes included, are encoded with upper-case
 * hex; UTF-8 is encoded byte by byte. */
static void test_percent_encode_bytes(void **state)
{
	expect_encoded("\x00\xff\x7f\x80", 4, "%00%FF%7F%80");
	expect_encoded("\xc3\xa9", 2, "%C3%A9");
	expect_encoded("\t\n", 2, "%09%0A");
}

/* Every key uses the query form, so "batch", "range" and "" are plain keys. */
static void test_kv_target(void **state)
{
	struct cli_buf out = CLI_BUF_INIT;

	assert_int_equal(cli_kv_target("batch", 5, NULL, &out), 0);
	assert_string_equal(out.data, "/kv?key=batch");
	assert_int_equal(cli_kv_target("range", 5, "consistency=stale", &out), 0);
	assert_string_equal(out.data, "/kv?key=range&consistency=stale");
	assert_int_equal(cli_kv_target("", 0, NULL, &out), 0);
	assert_string_equal(out.data, "/kv?key=");
	assert_int_equal(cli_kv_target("a b/c", 5, NULL, &out), 0);
	assert_string_equal(out.data, "/kv?key=a%20b/c");
	cli_buf_free(&out);
}

static void expect_decoded(const char *text, const char *want, size_t want_len)
{
	struct cli_buf out = CLI_BUF_INIT;

	assert_int_equal(cli_base64_decode(text, strlen(text), &out), 0);
	assert_int_equal(out.len, want_len);
	if (want_len)
		assert_memory_equal(out.data, want, want_len);
	cli_buf_free(&out);
}

/* Standard base64 decodes with or without padding. */
static void test_base64_valid(void **state)
{
	expect_decoded("", "", 0);
	expect_decoded("Zg==", "f", 1);
	expect_decoded("Zm8=", "fo", 2);
	expect_decoded("Zm9v", "foo", 3);
	expect_decoded("Zm9vYg", "foob", 4);
	expect_decoded("AP8=", "\x00\xff", 2);
	expect_decoded("+/+/", "\xfb\xff\xbf", 3);
}

/* Malformed base64 is rejected and leaves the buffer as it was. */
static void test_base64_invalid(void **state)
{
	static const char *bad[] = {"Z", "Zm9v!", "Zg=", "Z===", "Zh==", "Zm 9v", "=", NULL};
	struct cli_buf out = CLI_BUF_INIT;
	const char **p;

	assert_int_equal(cli_buf_puts(&out, "keep"), 0);
	for (p = bad; *p; p++) {
		assert_int_equal(cli_base64_decode(*p, strlen(*p), &out), -EINVAL);
		assert_string_equal(out.data, "keep");
	}
	cli_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percent_encode_sets),
		cmocka_unit_test(test_percent_encode_bytes),
		cmocka_unit_test(test_kv_target),
		cmocka_unit_test(test_base64_valid),
		cmocka_unit_test(test_base64_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
