/*
 * Unit tests of what the client prints: exit statuses for HTTP statuses, the
 * compact JSON writer, values and keys as the user sees them, error details
 * and the status and member summaries.
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

#include "cli/output.h"

/* Each documented exit status comes from its HTTP statuses. */
static void test_exit_for_status(void **state)
{
	assert_int_equal(cli_exit_for_status(200), CLI_EXIT_OK);
	assert_int_equal(cli_exit_for_status(204), CLI_EXIT_OK);
	assert_int_equal(cli_exit_for_status(404), CLI_EXIT_NOTFOUND);
	assert_int_equal(cli_exit_for_status(412), CLI_EXIT_PRECOND);
	assert_int_equal(cli_exit_for_status(409), CLI_EXIT_PRECOND);
	assert_int_equal(cli_exit_for_status(400), CLI_EXIT_REJECTED);
	assert_int_equal(cli_exit_for_status(413), CLI_EXIT_REJECTED);
	assert_int_equal(cli_exit_for_status(422), CLI_EXIT_REJECTED);
	assert_int_equal(cli_exit_for_status(503), CLI_EXIT_UNAVAILABLE);
	assert_int_equal(cli_exit_for_status(504), CLI_EXIT_UNAVAILABLE);
	assert_int_equal(cli_exit_for_status(500), CLI_EXIT_ERROR);
	assert_int_equal(cli_exit_for_status(302), CLI_EXIT_ERROR);
}

/* Renders text (parsed as JSON) with fn and compares with want. */
static void expect_render(int (*fn)(const json_t *, struct cli_buf *), const char *text,
			  const char *want, size_t want_len)
{
	struct cli_buf out = CLI_BUF_INIT;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

	assert_non_null(v);
	assert_int_equal(fn(v, &out), 0);
	assert_int_equal(out.len, want_len);
	if (want_len)
		assert_memory_equal(out.data, want, want_len);
	json_decref(v);
	cli_buf_free(&out);
}

static int compact(const json_t *v, struct cli_buf *out)
{
	return cli_json_compact(v, out);
}

#define EXPECT(fn, text, want) expect_render(fn, text, want, sizeof(want) - 1)

/* Compact JSON keeps member order, escapes what JSON requires and writes
 * reals in their shortest round-trip form. */
static void test_json_compact(void **state)
{
	EXPECT(compact, "{ \"b\" : 1, \"a\" : [true, false, null, \"x\"] }",
	       "{\"b\":1,\"a\":[true,false,null,\"x\"]}");
	EXPECT(compact, "[1.1, 0.1, 1e300, 2.0, -0.5, 1e-7]", "[1.1,0.1,1e+300,2.0,-0.5,1e-07]");
	EXPECT(compact, "[0.30000000000000004]", "[0.30000000000000004]");
	EXPECT(compact, "\"q\\\"b\\\\n\\n\\t\\u0001\\u0000/\\u00e9\"",
	       "\"q\\\"b\\\\n\\n\\t\\u0001\\u0000/\xc3\xa9\"");
	EXPECT(compact, "{\"k\\n\":{}}", "{\"k\\n\":{}}");
	EXPECT(compact, "-9223372036854775808", "-9223372036854775808");
}

static int value(const json_t *v, struct cli_buf *out)
{
	return cli_render_value(v, out);
}

static int key(const json_t *v, struct cli_buf *out)
{
	return cli_render_key(v, out);
}

/* A string value prints as its text; other JSON compact; base64 decoded. */
static void test_render_value(void **state)
{
	EXPECT(value, "{\"value\":\"hello\\nworld\"}", "hello\nworld");
	EXPECT(value, "{\"value\":42}", "42");
	EXPECT(value, "{\"value\":{\"a\": [1, 2.5]}}", "{\"a\":[1,2.5]}");
	EXPECT(value, "{\"value\":\"\"}", "");
	EXPECT(value, "{\"value\":\"AP9h\",\"encoding\":\"base64\"}", "\x00\xff" "a");
	EXPECT(value, "{\"value\":\"a\\u0000b\"}", "a\0b");
}

/* Replies without a value, or with broken base64, are protocol errors. */
static void test_render_value_errors(void **state)
{
	struct cli_buf out = CLI_BUF_INIT;
	json_t *v;

	v = json_loads("{\"detail\":\"x\"}", 0, NULL);
	assert_int_equal(cli_render_value(v, &out), -EPROTO);
	json_decref(v);
	v = json_loads("{\"value\":\"!!\",\"encoding\":\"base64\"}", 0, NULL);
	assert_int_equal(cli_render_value(v, &out), -EPROTO);
	json_decref(v);
	v = json_loads("{\"key\":5}", 0, NULL);
	assert_int_equal(cli_render_key(v, &out), -EPROTO);
	json_decref(v);
	cli_buf_free(&out);
}

/* Keys print as their bytes, decoded when the server sent base64. */
static void test_render_key(void **state)
{
	EXPECT(key, "{\"key\":\"a/b\",\"value\":1}", "a/b");
	EXPECT(key, "{\"key\":\"/w==\",\"key_encoding\":\"base64\"}", "\xff");
}

static void expect_detail(const char *body, const char *want)
{
	struct cli_buf out = CLI_BUF_INIT;

	assert_int_equal(cli_render_error_detail(body, strlen(body), &out), 0);
	assert_string_equal(out.data, want);
	cli_buf_free(&out);
}

/* Error details: a string as is, a 422 list as its messages, anything else
 * as text. */
static void test_error_detail(void **state)
{
	expect_detail("{\"detail\":\"Key not found\"}", "Key not found");
	expect_detail("{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"invalid JSON\"},{\"msg\":\"null\"}]}",
		      "invalid JSON; null");
	expect_detail("{\"detail\":[\"x\",1]}", "\"x\"; 1");
	expect_detail("{\"detail\":{\"why\":1}}", "{\"why\":1}");
	expect_detail("Bad Gateway", "Bad Gateway");
	expect_detail("", "(empty reply)");
}

/* The status summary shows the node's role, indexes and each peer's lag. */
static void test_render_status(void **state)
{
	const char *health_text =
		"{\"status\":\"healthy\",\"ready\":true,\"is_leader\":false,\"node_id\":2,"
		"\"leader_node\":\"127.0.0.1:7001\",\"leader_id\":1,\"term\":7,\"commit_index\":120,"
		"\"applied_index\":119,\"cluster_size\":3,\"connected_nodes\":2,"
		"\"last_commit_time\":0,\"replication_lag\":0.5}";
	const char *repl_text =
		"{\"data_size\":42,\"peers\":[{\"id\":3,\"address\":\"tcp://h:7003\","
		"\"match_index\":100,\"lag_entries\":20,\"lag_seconds\":1.25,\"connected\":false,"
		"\"learner\":true}]}";
	json_t *health = json_loads(health_text, 0, NULL), *repl = json_loads(repl_text, 0, NULL);
	struct cli_buf out = CLI_BUF_INIT;

	assert_int_equal(cli_render_status("http://h:8000", health, repl, &out), 0);
	assert_non_null(strstr(out.data, "endpoint      http://h:8000\n"));
	assert_non_null(strstr(out.data, "node          2 (healthy, ready, follower)\n"));
	assert_non_null(strstr(out.data, "leader        1 (127.0.0.1:7001)\n"));
	assert_non_null(strstr(out.data, "term          7\n"));
	assert_non_null(strstr(out.data, "commit index  120 (applied 119)\n"));
	assert_non_null(strstr(out.data, "cluster       3 nodes, 2 connected\n"));
	assert_non_null(strstr(out.data, "last commit   -\n"));
	assert_non_null(strstr(out.data, "keys          42\n"));
	assert_non_null(strstr(out.data, "tcp://h:7003"));
	assert_non_null(strstr(out.data, "1.25 no        learner\n"));
	cli_buf_reset(&out);
	/* A node that is not ready says why, where it tells. */
	json_object_set_new(health, "status", json_string("degraded"));
	json_object_set_new(health, "ready", json_false());
	json_object_set_new(health, "ready_detail", json_string("not ready: catching up"));
	assert_int_equal(cli_render_status("http://h:8000", health, repl, &out), 0);
	assert_non_null(strstr(out.data, "node          2 (degraded, not ready: catching up, follower)\n"));
	cli_buf_reset(&out);
	json_object_del(health, "ready_detail");
	assert_int_equal(cli_render_status("http://h:8000", health, repl, &out), 0);
	assert_non_null(strstr(out.data, "node          2 (degraded, not ready, follower)\n"));
	cli_buf_reset(&out);
	/* Missing fields print as "-" rather than failing. */
	assert_int_equal(cli_render_status(NULL, repl, NULL, &out), 0);
	assert_non_null(strstr(out.data, "term          -\n"));
	assert_non_null(strstr(out.data, "leader        -\n")); /* no leader known */
	json_decref(health);
	json_decref(repl);
	cli_buf_free(&out);
}

/* member list shows one row per member with its role. */
static void test_render_members(void **state)
{
	json_t *doc = json_loads(
		"{\"members\":[{\"id\":1,\"peer\":\"tcp://a:1\",\"http\":\"a:8000\",\"leader\":true},"
		"{\"id\":4,\"peer\":\"tcp://b:1\",\"http\":\"b:8000\",\"learner\":true},"
		"{\"id\":5,\"peer\":\"tcp://c:1\",\"http\":\"c:8000\"}]}",
		0, NULL);
	struct cli_buf out = CLI_BUF_INIT;
	json_t *bad = json_object();

	assert_int_equal(cli_render_members(doc, &out), 0);
	assert_non_null(strstr(out.data, "ID "));
	assert_non_null(strstr(out.data, "1      tcp://a:1"));
	assert_non_null(strstr(out.data, "a:8000                 leader\n"));
	assert_non_null(strstr(out.data, "b:8000                 learner\n"));
	assert_non_null(strstr(out.data, "c:8000                 voter\n"));
	assert_int_equal(cli_render_members(bad, &out), -EPROTO);
	json_decref(bad);
	json_decref(doc);
	cli_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_for_status),
		cmocka_unit_test(test_json_compact),
		cmocka_unit_test(test_render_value),
		cmocka_unit_test(test_render_value_errors),
		cmocka_unit_test(test_render_key),
		cmocka_unit_test(test_error_detail),
		cmocka_unit_test(test_render_status),
		cmocka_unit_test(test_render_members),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
