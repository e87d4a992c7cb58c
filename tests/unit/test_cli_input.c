/*
 * Unit tests of the client's input handling: how `put` encodes a value in
 * each mode, and the two input formats of `batch` with their error messages.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/input.h"
#include "cli/output.h"

/* Default mode sends the bytes as one JSON string, escaping what JSON needs. */
static void test_put_body_string(void **state)
{
	struct cli_buf body = CLI_BUF_INIT;
	const char *ct = NULL;
	char err[128];

	assert_int_equal(cli_put_body("say \"hi\"\n", 9, CLI_VALUE_STRING, &body, &ct, err, sizeof(err)), 0);
	assert_string_equal(body.data, "\"say \\\"hi\\\"\\n\"");
	assert_string_equal(ct, "application/json");
	assert_int_equal(cli_put_body("42", 2, CLI_VALUE_STRING, &body, &ct, err, sizeof(err)), 0);
	assert_string_equal(body.data, "\"42\"");
	assert_int_equal(cli_put_body("", 0, CLI_VALUE_STRING, &body, &ct, err, sizeof(err)), 0);
	assert_string_equal(body.data, "\"\"");
	assert_int_equal(cli_put_body("\xff", 1, CLI_VALUE_STRING, &body, &ct, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--raw"));
	cli_buf_free(&body);
}

/* --json-value sends the text unchanged once it parses; --raw sends bytes. */
static void test_put_body_json_and_raw(void **state)
{
	struct cli_buf body = CLI_BUF_INIT;
	const char *ct = NULL;
	char err[128];

	assert_int_equal(cli_put_body(" {\"a\": 1.10} ", 13, CLI_VALUE_JSON, &body, &ct, err, sizeof(err)), 0);
	assert_string_equal(body.data, " {\"a\": 1.10} ");
	assert_string_equal(ct, "application/json");
	assert_int_equal(cli_put_body("42", 2, CLI_VALUE_JSON, &body, &ct, err, sizeof(err)), 0);
	assert_int_equal(cli_put_body("{", 1, CLI_VALUE_JSON, &body, &ct, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not valid JSON"));
	assert_int_equal(cli_put_body("a\0\xff", 3, CLI_VALUE_RAW, &body, &ct, err, sizeof(err)), 0);
	assert_int_equal(body.len, 3);
	assert_memory_equal(body.data, "a\0\xff", 3);
	assert_string_equal(ct, "application/octet-stream");
	cli_buf_free(&body);
}

/* Parses text and compares the compact JSON of the result with want. */
static void expect_batch(const char *text, int json_values, const char *want)
{
	struct cli_buf out = CLI_BUF_INIT;
	json_t *doc = NULL;
	char err[128] = "";

	if (cli_batch_parse(text, strlen(text), json_values, &doc, err, sizeof(err)))
		fail_msg("batch parse failed: %s", err);
	assert_int_equal(cli_json_compact(doc, &out), 0);
	assert_string_equal(out.data, want);
	json_decref(doc);
	cli_buf_free(&out);
}

static void expect_batch_error(const char *text, int json_values, const char *want_err)
{
	json_t *doc = NULL;
	char err[128] = "";

	assert_int_equal(cli_batch_parse(text, strlen(text), json_values, &doc, err, sizeof(err)), -EINVAL);
	assert_null(doc);
	if (!strstr(err, want_err))
		fail_msg("error '%s' lacks '%s'", err, want_err);
}

/* Lines "key<TAB>value": values are strings (the rest of the line, tabs and
 * a final CR included), empty lines skipped, last newline optional. */
static void test_batch_lines(void **state)
{
	expect_batch("a\t1\nb\tx\ty\n\nc\t\n", 0,
		     "{\"items\":[{\"key\":\"a\",\"value\":\"1\"},{\"key\":\"b\",\"value\":\"x\\ty\"},"
		     "{\"key\":\"c\",\"value\":\"\"}]}");
	expect_batch("k\tv\r", 0, "{\"items\":[{\"key\":\"k\",\"value\":\"v\\r\"}]}");
	expect_batch("\tempty key", 0, "{\"items\":[{\"key\":\"\",\"value\":\"empty key\"}]}");
}

/* With json_values, line values are JSON text. */
static void test_batch_json_values(void **state)
{
	expect_batch("n\t1.5\no\t{\"a\":[1]}\ns\t\"t\"\n", 1,
		     "{\"items\":[{\"key\":\"n\",\"value\":1.5},{\"key\":\"o\",\"value\":{\"a\":[1]}},"
		     "{\"key\":\"s\",\"value\":\"t\"}]}");
	expect_batch_error("n\t1\nbad\t{\n", 1, "line 2: value is not valid JSON");
}

/* Input starting with '{' is the PUT /kv/batch body itself. */
static void test_batch_json_form(void **state)
{
	expect_batch("  {\"items\":[{\"key\":\"batch\",\"value\":{\"x\":null}}]}\n", 0,
		     "{\"items\":[{\"key\":\"batch\",\"value\":{\"x\":null}}]}");
	expect_batch_error("{\"items\":[{\"key\":1,\"value\":2}]}", 0, "item 1");
	expect_batch_error("{\"items\":[{\"key\":\"k\"}]}", 0, "item 1");
	expect_batch_error("{\"things\":[]}", 0, "no \"items\"");
	expect_batch_error("{\"items\":[]}", 0, "no items");
	expect_batch_error("{\"items\":[", 0, "invalid JSON");
}

/* Malformed lines are reported with their line number. */
static void test_batch_errors(void **state)
{
	expect_batch_error("a\t1\nno tab here\n", 0, "line 2: no TAB");
	expect_batch_error("\xff\tv\n", 0, "line 1: key is not valid UTF-8");
	expect_batch_error("k\t\xfe\n", 0, "line 1: value is not valid UTF-8");
	expect_batch_error("", 0, "no items");
	expect_batch_error("\n\n", 0, "no items");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_body_string),
		cmocka_unit_test(test_put_body_json_and_raw),
		cmocka_unit_test(test_batch_lines),
		cmocka_unit_test(test_batch_json_values),
		cmocka_unit_test(test_batch_json_form),
		cmocka_unit_test(test_batch_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
