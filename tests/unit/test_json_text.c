/*
 * Unit tests of the REST layer's request parsing: JSON value validation and
 * minification (values keep their text), span walking used by batch PUT,
 * string decoding and escaping, UTF-8 validation, base64, and percent-decoding
 * of keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/http_internal.h"
#include "api/json_text.h"

/* Minifies s; returns the minified text (static buffer) or NULL if invalid. */
static const char *minify(const char *s)
{
	static uint8_t out[4096];
	struct json_text_error err;
	size_t n;
	if (json_text_minify((const uint8_t *)s, strlen(s), out, &n, &err) < 0)
		return NULL;
	out[n] = 0;
	return (const char *)out;
}

/* Valid values are minified without changing numbers or strings. */
static void test_minify_keeps_text(void **state)
{
	assert_string_equal(minify(" { \"a\" : [ 1 , 2.50 , 1e3 ] } "), "{\"a\":[1,2.50,1e3]}");
	assert_string_equal(minify("0.1"), "0.1");
	assert_string_equal(minify("123456789012345678901234567890"),
			    "123456789012345678901234567890");
	assert_string_equal(minify("\" spaces kept \\n \\u00e9 \""), "\" spaces kept \\n \\u00e9 \"");
	assert_string_equal(minify("[true,false,null,-0,-1.5E-3]"), "[true,false,null,-0,-1.5E-3]");
	assert_string_equal(minify("\"\xc3\xa9\xf0\x9f\x98\x80\""), "\"\xc3\xa9\xf0\x9f\x98\x80\"");
}

/* Every malformed input is rejected, with a position. */
static void test_minify_rejects(void **state)
{
	const char *bad[] = {"",      "{",     "[1,]",      "01",        "1.",     "-",
			     ".5",    "nan",   "[1 2]",     "{\"a\" 1}", "{1:2}",  "\"\\x\"",
			     "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\nb\"", "tru",  "1 2",
			     "\"\xff\"",  "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "[",  "{\"a\":}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct json_text_error err = {0};
		uint8_t out[64];
		size_t n;
		assert_int_equal(json_text_minify((const uint8_t *)bad[i], strlen(bad[i]), out, &n,
						  &err),
				 -1);
		assert_non_null(err.msg);
		assert_true(err.pos <= strlen(bad[i]));
	}
}

/* Nesting deeper than JSON_MAX_DEPTH is refused instead of recursing on. */
static void test_minify_depth_bound(void **state)
{
	size_t depth = JSON_MAX_DEPTH + 10;
	char *s = malloc(2 * depth + 1);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = 0;
	assert_null(minify(s));
	free(s);
}

/* Span walking finds batch items and their members in minified text. */
static void test_spans(void **state)
{
	const char *t = minify("{\"items\":[{\"key\":\"k\\\"1\",\"value\":{\"a\":[1,\"]\"]}},"
			       "{\"value\":2,\"key\":\"k2\"}],\"x\":3}");
	const uint8_t *p = (const uint8_t *)t, *end = p + strlen(t), *cur = NULL, *k, *v;
	size_t kl, vl;
	assert_true(json_span_member(p, end, &cur, &k, &kl, &v, &vl));
	assert_int_equal(kl, 7);
	assert_memory_equal(k, "\"items\"", 7);
	const uint8_t *ecur = NULL, *item;
	size_t il;
	int items = 0;
	while (json_span_element(v, v + vl, &ecur, &item, &il)) {
		const uint8_t *icur = NULL, *ik, *iv;
		size_t ikl, ivl;
		while (json_span_member(item, item + il, &icur, &ik, &ikl, &iv, &ivl)) {
			if (ikl == 7 && memcmp(ik, "\"value\"", 7) == 0 && items == 0) {
				assert_int_equal(ivl, strlen("{\"a\":[1,\"]\"]}"));
				assert_memory_equal(iv, "{\"a\":[1,\"]\"]}", ivl);
			}
			if (ikl == 5 && memcmp(ik, "\"key\"", 5) == 0 && items == 0) {
				uint8_t *dk;
				size_t dkl;
				assert_int_equal(json_span_string(iv, ivl, &dk, &dkl), 0);
				assert_int_equal(dkl, 3);
				assert_memory_equal(dk, "k\"1", 3);
				free(dk);
			}
		}
		items++;
	}
	assert_int_equal(items, 2);
	assert_true(json_span_member(p, end, &cur, &k, &kl, &v, &vl));
	assert_memory_equal(k, "\"x\"", 3);
	assert_false(json_span_member(p, end, &cur, &k, &kl, &v, &vl));
}

/* \u escapes, surrogate pairs included, decode to UTF-8. */
static void test_span_string_escapes(void **state)
{
	const char *s = "\"a\\u00e9\\ud83d\\ude00\\n\\u0000z\"";
	uint8_t *o;
	size_t n;
	assert_int_equal(json_span_string((const uint8_t *)s, strlen(s), &o, &n), 0);
	assert_int_equal(n, 1 + 2 + 4 + 1 + 1 + 1);
	assert_memory_equal(o, "a\xc3\xa9\xf0\x9f\x98\x80\n\0z", n);
	free(o);
}

/* Escaping produces valid JSON for control characters, quotes and backslashes. */
static void test_put_string(void **state)
{
	struct byte_buf b;
	bb_init(&b);
	json_put_string(&b, (const uint8_t *)"a\"b\\c\n\x01\0", 8);
	bb_u8(&b, 0);
	assert_string_equal((char *)b.data, "\"a\\\"b\\\\c\\n\\u0001\\u0000\"");
	bb_free(&b);
}

/* UTF-8 validation refuses overlongs, surrogates and truncated sequences. */
static void test_utf8(void **state)
{
	assert_true(utf8_valid((const uint8_t *)"plain \xc3\xa9 \xf4\x8f\xbf\xbf", 13));
	assert_false(utf8_valid((const uint8_t *)"\xc0\x80", 2));
	assert_false(utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));
	assert_false(utf8_valid((const uint8_t *)"\xe2\x82", 2));
	assert_false(utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));
	assert_false(utf8_valid((const uint8_t *)"\xff", 1));
}

/* base64 round-trips every length and rejects foreign characters. */
static void test_base64(void **state)
{
	uint8_t in[64], out[96];
	for (size_t len = 0; len < sizeof in; len++) {
		for (size_t i = 0; i < len; i++)
			in[i] = (uint8_t)(i * 37 + len);
		struct byte_buf b;
		bb_init(&b);
		base64_put(&b, in, len);
		size_t n;
		assert_int_equal(base64_decode((char *)b.data, b.len, out, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(out, in, len);
		bb_free(&b);
	}
	size_t n;
	assert_int_equal(base64_decode("ab!d", 4, out, &n), -1);
	assert_int_equal(base64_decode("a", 1, out, &n), -1);
}

/* Percent-decoding keeps '/', decodes %2F and %00, rejects bad escapes; '+'
 * is a space only in query strings. */
static void test_pct_decode(void **state)
{
	uint8_t *o;
	size_t n;
	assert_int_equal(http_pct_decode("a/b%2Fc%00d+e", 13, false, &o, &n), 0);
	assert_int_equal(n, 9);
	assert_memory_equal(o, "a/b/c\0d+e", 9);
	free(o);
	assert_int_equal(http_pct_decode("x+y", 3, true, &o, &n), 0);
	assert_memory_equal(o, "x y", 3);
	free(o);
	assert_int_equal(http_pct_decode("%zz", 3, false, &o, &n), -1);
	assert_int_equal(http_pct_decode("%4", 2, false, &o, &n), -1);
	assert_int_equal(http_pct_decode("ab%", 3, false, &o, &n), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minify_keeps_text),
		cmocka_unit_test(test_minify_rejects),
		cmocka_unit_test(test_minify_depth_bound),
		cmocka_unit_test(test_spans),
		cmocka_unit_test(test_span_string_escapes),
		cmocka_unit_test(test_put_string),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_pct_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
