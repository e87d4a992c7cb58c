/*
 * Unit tests of the client's command line: the option parser (GNU-style
 * long/short options mixed with operands), the parsers of option values, and
 * the dispatcher's help and usage errors, which need no server.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/args.h"
#include "cli/cli.h"

static const struct cli_optspec table[] = {
	{"file", 'f', 1, 1, NULL},
	{"raw", 'r', 0, 2, NULL},
	{"json", 'j', 0, 3, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* Records every option the parser reports as "id=arg;" text. */
struct seen {
	char log[256];
};

static int record(void *ud, int id, const char *arg)
{
	struct seen *s = ud;
	size_t used = strlen(s->log);

	snprintf(s->log + used, sizeof(s->log) - used, "%d=%s;", id, arg ? arg : "-");
	return 0;
}

static int parse(struct seen *s, int stop, char **argv, char *err, size_t err_len)
{
	struct cli_opt_handler h = {record, s};
	int argc = 0;

	while (argv[argc])
		argc++;
	memset(s, 0, sizeof(*s));
	return cli_args_parse(argc, argv, table, NULL, stop, &h, err, err_len);
}

/* Options and operands mix freely; operands keep their order at the front. */
static void test_mixed(void **state)
{
	char *argv[] = {"key", "-r", "--file", "F", "value", "-fG", "--file=H", "-", NULL};
	struct seen s;
	char err[128];

	assert_int_equal(parse(&s, 0, argv, err, sizeof(err)), 3);
	assert_string_equal(argv[0], "key");
	assert_string_equal(argv[1], "value");
	assert_string_equal(argv[2], "-");
	assert_string_equal(s.log, "2=-;1=F;1=G;1=H;");
}

/* Clustered flags, and a value glued to the last short option. */
static void test_clustered(void **state)
{
	char *argv[] = {"-rj", "-rfX", NULL};
	struct seen s;
	char err[128];

	assert_int_equal(parse(&s, 0, argv, err, sizeof(err)), 0);
	assert_string_equal(s.log, "2=-;3=-;2=-;1=X;");
}

/* "--" ends options: what follows is an operand even if it starts with '-'. */
static void test_double_dash(void **state)
{
	char *argv[] = {"-r", "--", "-5", "--raw", NULL};
	struct seen s;
	char err[128];

	assert_int_equal(parse(&s, 0, argv, err, sizeof(err)), 2);
	assert_string_equal(argv[0], "-5");
	assert_string_equal(argv[1], "--raw");
	assert_string_equal(s.log, "2=-;");
}

/* With stop_at_operand, everything from the first operand on is untouched. */
static void test_stop_at_operand(void **state)
{
	char *argv[] = {"-j", "put", "-r", "k", NULL};
	struct seen s;
	char err[128];

	assert_int_equal(parse(&s, 1, argv, err, sizeof(err)), 3);
	assert_string_equal(argv[0], "put");
	assert_string_equal(argv[1], "-r");
	assert_string_equal(s.log, "3=-;");
}

/* Unknown options, missing values and values given to flags are errors with
 * a message naming the option; a negative number hints at "--". */
static void test_errors(void **state)
{
	char *a1[] = {"--nope", NULL}, *a2[] = {"--file", NULL}, *a3[] = {"--raw=1", NULL};
	char *a4[] = {"-f", NULL}, *a5[] = {"-5", NULL}, *a6[] = {"-x", NULL};
	struct seen s;
	char err[128];

	assert_int_equal(parse(&s, 0, a1, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown option --nope");
	assert_int_equal(parse(&s, 0, a2, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "option --file needs a value");
	assert_int_equal(parse(&s, 0, a3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "option --raw takes no value");
	assert_int_equal(parse(&s, 0, a4, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "option -f needs a value");
	assert_int_equal(parse(&s, 0, a5, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "\"--\""));
	assert_int_equal(parse(&s, 0, a6, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown option -x");
}

static int stop_at_two(void *ud, int id, const char *arg)
{
	return id == 2 ? -ECANCELED : 0;
}

/* A handler's error stops parsing and is returned unchanged. */
static void test_handler_error(void **state)
{
	char *argv[] = {"-j", "-r", "-j", NULL};
	struct cli_opt_handler h = {stop_at_two, NULL};
	char err[64];

	assert_int_equal(cli_args_parse(3, argv, table, NULL, 0, &h, err, sizeof(err)), -ECANCELED);
}

/* Endpoint lists: blanks and empty items dropped, scheme added, trailing
 * slash removed; nothing left is an error. */
static void test_endpoints(void **state)
{
	char **list;
	size_t n;

	assert_int_equal(cli_endpoints_parse(" 127.0.0.1:8000 ,, https://h:1/ ,http://x:2", &list, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0], "http://127.0.0.1:8000");
	assert_string_equal(list[1], "https://h:1");
	assert_string_equal(list[2], "http://x:2");
	assert_null(list[3]);
	cli_endpoints_free(list);
	assert_int_equal(cli_endpoints_parse(" , ,", &list, &n), -EINVAL);
	assert_int_equal(cli_endpoints_parse("", &list, &n), -EINVAL);
}

/* Timeouts are positive finite seconds; counts are plain decimal. */
static void test_values(void **state)
{
	unsigned long long u;
	double d;

	assert_int_equal(cli_parse_seconds("10", &d), 0);
	assert_true(d == 10.0);
	assert_int_equal(cli_parse_seconds("0.25", &d), 0);
	assert_true(d == 0.25);
	assert_int_equal(cli_parse_seconds("0", &d), -EINVAL);
	assert_int_equal(cli_parse_seconds("-1", &d), -EINVAL);
	assert_int_equal(cli_parse_seconds("inf", &d), -EINVAL);
	assert_int_equal(cli_parse_seconds("5s", &d), -EINVAL);
	assert_int_equal(cli_parse_seconds("", &d), -EINVAL);
	assert_int_equal(cli_parse_u64("0", &u), 0);
	assert_int_equal(cli_parse_u64("9223372036854775807", &u), 0);
	assert_true(u == 9223372036854775807ULL);
	assert_int_equal(cli_parse_u64("9223372036854775808", &u), -EINVAL);
	assert_int_equal(cli_parse_u64("+1", &u), -EINVAL);
	assert_int_equal(cli_parse_u64("1 ", &u), -EINVAL);
	assert_int_equal(cli_parse_u64("", &u), -EINVAL);
}

/* Runs the whole command line with captured output; returns the status. */
static int run(const char *line, char **out_text, char **err_text)
{
	char *argv[16], *copy = strdup(line), *save = NULL, *tok;
	size_t out_len, err_len;
	struct cli_ctx ctx;
	FILE *out, *err;
	int argc = 0, status;

	assert_non_null(copy);
	for (tok = strtok_r(copy, " ", &save); tok && argc < 15; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	out = open_memstream(out_text, &out_len);
	err = open_memstream(err_text, &err_len);
	assert_non_null(out);
	assert_non_null(err);
	cli_ctx_init(&ctx, out, err);
	status = cli_main(&ctx, argc, argv);
	cli_ctx_close(&ctx);
	fclose(out);
	fclose(err);
	free(copy);
	return status;
}

static void expect_run(const char *line, int status, const char *in_out, const char *in_err)
{
	char *o = NULL, *e = NULL;

	assert_int_equal(run(line, &o, &e), status);
	if (in_out && !strstr(o, in_out))
		fail_msg("stdout of '%s' lacks '%s':\n%s", line, in_out, o);
	if (in_err && !strstr(e, in_err))
		fail_msg("stderr of '%s' lacks '%s':\n%s", line, in_err, e);
	free(o);
	free(e);
}

/* Every command has help three ways: COMMAND --help, help COMMAND, --help
 * COMMAND; groups list their subcommands. */
static void test_help(void **state)
{
	expect_run("kvfs --help", CLI_EXIT_OK, "usage: kvfs [options] COMMAND", NULL);
	expect_run("kvfs help", CLI_EXIT_OK, "member promote", NULL);
	expect_run("kvfs put --help", CLI_EXIT_OK, "usage: kvfs put", NULL);
	expect_run("kvfs help put", CLI_EXIT_OK, "--if-absent", NULL);
	expect_run("kvfs --help range", CLI_EXIT_OK, "--keys-only", NULL);
	expect_run("kvfs get k --help", CLI_EXIT_OK, "--stale", NULL);
	expect_run("kvfs member --help", CLI_EXIT_OK, "promote", NULL);
	expect_run("kvfs help member add", CLI_EXIT_OK, "--learner", NULL);
	expect_run("kvfs member add --help", CLI_EXIT_OK, "PEER_URL", NULL);
	expect_run("kvfs leader transfer -h", CLI_EXIT_OK, "caught-up", NULL);
	expect_run("kvfs --version", CLI_EXIT_OK, "kvfs " PACKAGE_VERSION, NULL);
}

/* Bad command lines exit 2 with "kvfs: <why>" before any request is made. */
static void test_usage_errors(void **state)
{
	expect_run("kvfs", CLI_EXIT_USAGE, NULL, NULL);
	expect_run("kvfs frob", CLI_EXIT_USAGE, NULL, "kvfs: unknown command 'frob'");
	expect_run("kvfs help frob", CLI_EXIT_USAGE, NULL, "unknown command");
	expect_run("kvfs member", CLI_EXIT_USAGE, "list", NULL);
	expect_run("kvfs member frob", CLI_EXIT_USAGE, NULL, "unknown command 'member frob'");
	expect_run("kvfs get", CLI_EXIT_USAGE, NULL, "get takes exactly one KEY");
	expect_run("kvfs get a b", CLI_EXIT_USAGE, NULL, "get takes exactly one KEY");
	expect_run("kvfs get a --bogus", CLI_EXIT_USAGE, NULL, "unknown option --bogus");
	expect_run("kvfs get a --raw --json", CLI_EXIT_USAGE, NULL, "exclude");
	expect_run("kvfs get a --timeout 0", CLI_EXIT_USAGE, NULL, "bad --timeout");
	expect_run("kvfs put", CLI_EXIT_USAGE, NULL, "put needs a KEY");
	expect_run("kvfs put k v extra", CLI_EXIT_USAGE, NULL, "one KEY");
	expect_run("kvfs put k v -f file", CLI_EXIT_USAGE, NULL, "one KEY");
	expect_run("kvfs put k v --raw --json-value", CLI_EXIT_USAGE, NULL, "exclude");
	expect_run("kvfs put k v --if-match 3 --if-absent", CLI_EXIT_USAGE, NULL, "exclude");
	expect_run("kvfs put k v --if-match x", CLI_EXIT_USAGE, NULL, "bad revision");
	expect_run("kvfs put k {bad --json-value", CLI_EXIT_USAGE, NULL, "not valid JSON");
	expect_run("kvfs delete", CLI_EXIT_USAGE, NULL, "delete takes exactly one KEY");
	expect_run("kvfs range a", CLI_EXIT_USAGE, NULL, "START and END");
	expect_run("kvfs range a b --prefix p", CLI_EXIT_USAGE, NULL, "not both");
	expect_run("kvfs range --limit 0", CLI_EXIT_USAGE, NULL, "bad --limit");
	expect_run("kvfs batch a b", CLI_EXIT_USAGE, NULL, "at most one FILE");
	expect_run("kvfs status x", CLI_EXIT_USAGE, NULL, "no operand");
	expect_run("kvfs member add 1", CLI_EXIT_USAGE, NULL, "ID PEER_URL");
	expect_run("kvfs member add 1 tcp://x h:1 extra", CLI_EXIT_USAGE, NULL, "ID PEER_URL");
	expect_run("kvfs member remove 0", CLI_EXIT_USAGE, NULL, "bad member id");
	expect_run("kvfs member promote", CLI_EXIT_USAGE, NULL, "one ID");
	expect_run("kvfs leader transfer 1 2", CLI_EXIT_USAGE, NULL, "at most one ID");
	expect_run("kvfs -e , get k", CLI_EXIT_USAGE, NULL, "no endpoint");
}

/* A missing batch file is an I/O error (6), not a usage error. */
static void test_missing_file(void **state)
{
	expect_run("kvfs batch /nonexistent/kvfs-batch", CLI_EXIT_ERROR, NULL, "cannot read");
	expect_run("kvfs put k -f /nonexistent/kvfs-value", CLI_EXIT_ERROR, NULL, "cannot read");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_clustered),
		cmocka_unit_test(test_double_dash),
		cmocka_unit_test(test_stop_at_operand),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_handler_error),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_missing_file),
	};

	unsetenv("KVFS_ENDPOINTS");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
