/*
 * The command table of kvfs, the dispatcher and the help texts, plus the
 * helpers every command shares (option parsing with the common options,
 * requests with uniform error reporting).
 *
 * Adding a command is one entry in cli_commands[] and one function declared
 * in cli.h, living in its own cmd_*.c file. The planned `bench` subcommand
 * goes in cmd_bench.c and is dispatched from here like every other command:
 * it will reuse cli_ctx_http() (one keep-alive handle per worker thread is
 * its own business) and must not grow this file beyond its table entry.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"

/* Ids of the common options; command tables use ids below 900. */
enum {
	OPT_ENDPOINTS = 900,
	OPT_JSON,
	OPT_TIMEOUT,
	OPT_VERBOSE,
	OPT_HELP,
	OPT_VERSION,
};

static const struct cli_optspec common_opts[] = {
	{"endpoints", 'e', 1, OPT_ENDPOINTS, NULL},
	{"json", 'j', 0, OPT_JSON, NULL},
	{"timeout", 't', 1, OPT_TIMEOUT, NULL},
	{"verbose", 'v', 0, OPT_VERBOSE, NULL},
	{"help", 'h', 0, OPT_HELP, NULL},
	{NULL, 0, 0, 0, NULL},
};

static const struct cli_optspec global_only_opts[] = {
	{"version", 'V', 0, OPT_VERSION, NULL},
	{NULL, 0, 0, 0, NULL},
};

static const char common_help[] =
	"Common options (accepted before or after the command):\n"
	"  -e, --endpoints URLS  comma-separated base URLs, tried in order when one is\n"
	"                        down (default $KVFS_ENDPOINTS, else " CLI_DEFAULT_ENDPOINT ")\n"
	"  -j, --json            print the server's JSON reply\n"
	"  -t, --timeout SECS    time limit of each request on one endpoint (default 10)\n"
	"  -v, --verbose         log every HTTP request and its outcome on stderr\n"
	"  -h, --help            show help\n";

static const char exit_help[] =
	"Exit status: 0 success, 1 not found, 2 usage error, 3 precondition failed,\n"
	"4 request rejected, 5 cluster unavailable, 6 other error.\n";

static const struct cli_command member_cmds[] = {
	{"list", "[options]", "list the cluster members",
	 "Prints one line per member: id, peer address, HTTP address (the REST URL\n"
	 "it advertises; - until the answering node has heard it) and role (leader,\n"
	 "voter or learner).\n",
	 cli_cmd_member_list, NULL},
	{"add", "[options] [--learner] ID PEER_URL", "add a member to the cluster",
	 "Adds node ID, reachable by its peers at PEER_URL (tcp://host:port); the\n"
	 "node advertises its REST URL itself (member list). A third argument, the\n"
	 "HTTP address older versions asked for, is accepted and ignored. Add it with\n"
	 "--learner first, let it catch up (kvfs status shows its lag), then\n"
	 "`kvfs member promote ID`.\n\n"
	 "Options:\n"
	 "  -l, --learner  add as a non-voting learner\n",
	 cli_cmd_member_add, NULL},
	{"remove", "[options] ID", "remove a member from the cluster",
	 "Removes node ID from the configuration. Removing the leader makes it step\n"
	 "down once the change is committed.\n",
	 cli_cmd_member_remove, NULL},
	{"promote", "[options] ID", "make a learner a voting member",
	 "Promotes learner ID to a voting member.\n", cli_cmd_member_promote, NULL},
	{NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct cli_command leader_cmds[] = {
	{"transfer", "[options] [ID]", "hand leadership to another member",
	 "Asks the leader to hand over to member ID, or, without ID, to the most\n"
	 "caught-up voter.\n",
	 cli_cmd_leader_transfer, NULL},
	{NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct cli_command cli_commands[] = {
	{"put", "[options] KEY [VALUE | -]\n       kvfs put [options] -f FILE KEY",
	 "store a value",
	 "Stores VALUE under KEY. The value is the second operand; with -f the\n"
	 "content of FILE; with \"-\" or no value, standard input. Input is taken\n"
	 "byte for byte (a trailing newline is part of the value).\n"
	 "By default the value is stored as a JSON string (it must be UTF-8 text).\n\n"
	 "Options:\n"
	 "  -f, --file FILE   read the value from FILE\n"
	 "  -J, --json-value  the value is JSON text (number, object, ...), stored as JSON\n"
	 "  -r, --raw         store the value as raw bytes (application/octet-stream)\n"
	 "  -m, --if-match REV  write only if the key's revision is REV (else exit 3)\n"
	 "  -a, --if-absent   write only if the key does not exist (else exit 3)\n"
	 "      --rev         print the new revision on stderr\n",
	 cli_cmd_put, NULL},
	{"get", "[options] KEY", "print a value",
	 "Prints the value of KEY: a string as its text plus a newline, any other\n"
	 "JSON value in compact form plus a newline.\n\n"
	 "Options:\n"
	 "  -r, --raw    ask for the stored bytes and write them unmodified (no newline)\n"
	 "  -s, --stale  read this node's copy without asking the leader (faster, may be\n"
	 "               stale)\n"
	 "      --rev    print the revision on stderr (with --json: in the JSON)\n",
	 cli_cmd_get, NULL},
	{"delete", "[options] KEY", "delete a key",
	 "Deletes KEY. Exit status 1 when it does not exist.\n\n"
	 "Options:\n"
	 "  -m, --if-match REV  delete only if the key's revision is REV (else exit 3)\n"
	 "      --rev           print the revision of the delete on stderr\n",
	 cli_cmd_delete, NULL},
	{"batch", "[options] [FILE | -]", "store many values atomically",
	 "Stores every item of FILE (or standard input) in one atomic write.\n"
	 "The input is either lines \"KEY<TAB>VALUE\" (values stored as strings;\n"
	 "empty lines skipped) or one JSON object {\"items\":[{\"key\":K,\"value\":V},...]}.\n\n"
	 "Options:\n"
	 "  -J, --json-values  line values are JSON text, not strings\n"
	 "      --rev          print the revision of the batch on stderr\n",
	 cli_cmd_batch, NULL},
	{"range", "[options] START END\n       kvfs range [options] --prefix PREFIX",
	 "list keys and values in key order",
	 "Prints \"KEY<TAB>VALUE\" lines for keys from START to END (both included),\n"
	 "or for keys starting with PREFIX, sorted by key bytes, fetching page after\n"
	 "page until the range or --limit is exhausted. Without operands or\n"
	 "--prefix: every key.\n\n"
	 "Options:\n"
	 "  -p, --prefix PREFIX  keys starting with PREFIX\n"
	 "  -n, --limit N        stop after N keys\n"
	 "  -k, --keys-only      print keys only\n"
	 "      --page-size N    keys asked for per request (default 1000)\n",
	 cli_cmd_range, NULL},
	{"status", "[options]", "show the state of a node and its replication",
	 "Prints a summary of /health and /debug/replication of the first endpoint\n"
	 "that answers (with --json: {\"endpoint\":...,\"health\":...,\"replication\":...}).\n\n"
	 "Options:\n"
	 "  -a, --all  every endpoint in turn, not just the first that answers\n",
	 cli_cmd_status, NULL},
	{"member", "COMMAND [options] ...", "list and change the cluster membership", NULL, NULL,
	 member_cmds},
	{"leader", "COMMAND [options] ...", "leadership operations", NULL, NULL, leader_cmds},
	{"bench", "[options]", "measure throughput and latency", bench_help, cli_cmd_bench, NULL},
	{NULL, NULL, NULL, NULL, NULL, NULL},
};

void cli_ctx_init(struct cli_ctx *ctx, FILE *out, FILE *err)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->endpoints = getenv("KVFS_ENDPOINTS");
	if (ctx->endpoints && !*ctx->endpoints)
		ctx->endpoints = NULL;
	ctx->timeout_s = CLI_DEFAULT_TIMEOUT;
	ctx->out = out;
	ctx->err = err;
}

void cli_ctx_close(struct cli_ctx *ctx)
{
	cli_http_destroy(ctx->http);
	ctx->http = NULL;
}

static const struct cli_command *find_command(const struct cli_command *table, const char *name)
{
	for (; table->name; table++)
		if (strcmp(table->name, name) == 0)
			return table;
	return NULL;
}

static void print_main_help(struct cli_ctx *ctx)
{
	const struct cli_command *c, *s;

	fprintf(ctx->out,
		"usage: kvfs [options] COMMAND [ARGS...]\n\n"
		"Client of the kvfs replicated key-value store.\n\nCommands:\n");
	for (c = cli_commands; c->name; c++) {
		if (!c->subs) {
			fprintf(ctx->out, "  %-18s %s\n", c->name, c->summary);
			continue;
		}
		for (s = c->subs; s->name; s++) {
			char name[64];

			snprintf(name, sizeof(name), "%s %s", c->name, s->name);
			fprintf(ctx->out, "  %-18s %s\n", name, s->summary);
		}
	}
	fprintf(ctx->out,
		"  %-18s %s\n\n%s\nBefore the command only:\n  -V, --version         print the version\n\n"
		"Run `kvfs COMMAND --help` for the options of a command.\n%s",
		"help [COMMAND]", "show help for a command", common_help, exit_help);
}

static void print_group_help(struct cli_ctx *ctx, const struct cli_command *group)
{
	const struct cli_command *s;

	fprintf(ctx->out, "usage: kvfs %s %s\n\n%s.\n\nCommands:\n", group->name, group->usage,
		group->summary);
	for (s = group->subs; s->name; s++)
		fprintf(ctx->out, "  %-10s %s\n", s->name, s->summary);
	fprintf(ctx->out, "\nRun `kvfs %s COMMAND --help` for its options.\n", group->name);
}

static void print_command_help(struct cli_ctx *ctx, const struct cli_command *group,
			       const struct cli_command *cmd)
{
	fprintf(ctx->out, "usage: kvfs %s%s%s %s\n\n%c%s.\n\n%s\n%s\n%s", group ? group->name : "",
		group ? " " : "", cmd->name, cmd->usage, toupper((unsigned char)cmd->summary[0]),
		cmd->summary + 1, cmd->help, common_help, exit_help);
}

/* `kvfs help [COMMAND [SUBCOMMAND]]` and `kvfs --help ...`. */
static int run_help(struct cli_ctx *ctx, int argc, char **argv)
{
	const struct cli_command *cmd, *sub;

	if (argc == 0) {
		print_main_help(ctx);
		return CLI_EXIT_OK;
	}
	cmd = find_command(cli_commands, argv[0]);
	if (!cmd)
		return cli_usage_error(ctx, "unknown command '%s'", argv[0]);
	if (!cmd->subs) {
		print_command_help(ctx, NULL, cmd);
		return CLI_EXIT_OK;
	}
	if (argc == 1) {
		print_group_help(ctx, cmd);
		return CLI_EXIT_OK;
	}
	sub = find_command(cmd->subs, argv[1]);
	if (!sub)
		return cli_usage_error(ctx, "unknown command '%s %s'", cmd->name, argv[1]);
	print_command_help(ctx, cmd, sub);
	return CLI_EXIT_OK;
}

struct common_state {
	struct cli_ctx *ctx;
	int (*on_opt)(void *ud, int id, const char *arg);
	void *ud;
	int help;
	int version;
};

static int on_common_opt(void *ud, int id, const char *arg)
{
	struct common_state *st = ud;
	struct cli_ctx *ctx = st->ctx;

	switch (id) {
	case OPT_ENDPOINTS:
		ctx->endpoints = arg;
		return 0;
	case OPT_JSON:
		ctx->json = 1;
		return 0;
	case OPT_TIMEOUT:
		if (cli_parse_seconds(arg, &ctx->timeout_s)) {
			cli_usage_error(ctx, "bad --timeout '%s' (want seconds > 0)", arg);
			return -ECANCELED;
		}
		return 0;
	case OPT_VERBOSE:
		ctx->verbose = 1;
		return 0;
	case OPT_HELP:
		st->help = 1;
		return 0;
	case OPT_VERSION:
		st->version = 1;
		return 0;
	default:
		return st->on_opt ? st->on_opt(st->ud, id, arg) : -EINVAL;
	}
}

int cli_parse_command(struct cli_ctx *ctx, int argc, char **argv,
		      const struct cli_optspec *specs, int (*on_opt)(void *ud, int id, const char *arg),
		      void *ud, int *exit_status)
{
	struct common_state st = {ctx, on_opt, ud, 0, 0};
	struct cli_opt_handler h = {on_common_opt, &st};
	char err[256];
	int n;

	n = cli_args_parse(argc, argv, specs, common_opts, 0, &h, err, sizeof(err));
	if (st.help) {
		print_command_help(ctx, ctx->group, ctx->cmd);
		*exit_status = CLI_EXIT_OK;
		return -1;
	}
	if (n == -ECANCELED) {
		*exit_status = CLI_EXIT_USAGE;
		return -1;
	}
	if (n < 0) {
		*exit_status = cli_usage_error(ctx, "%s", err[0] ? err : "bad arguments");
		return -1;
	}
	return n;
}

int cli_main(struct cli_ctx *ctx, int argc, char **argv)
{
	struct common_state st = {ctx, NULL, NULL, 0, 0};
	struct cli_opt_handler h = {on_common_opt, &st};
	const struct cli_command *cmd, *group = NULL;
	char err[256];
	int n;

	n = cli_args_parse(argc - 1, argv + 1, common_opts, global_only_opts, 1, &h, err,
			   sizeof(err));
	if (n == -ECANCELED)
		return CLI_EXIT_USAGE;
	if (n < 0)
		return cli_usage_error(ctx, "%s", err);
	argv++;
	if (st.version) {
		fprintf(ctx->out, "kvfs %s\n", PACKAGE_VERSION);
		return CLI_EXIT_OK;
	}
	if (st.help || n == 0) {
		if (st.help)
			return run_help(ctx, n, argv);
		print_main_help(ctx);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[0], "help") == 0)
		return run_help(ctx, n - 1, argv + 1);
	cmd = find_command(cli_commands, argv[0]);
	if (!cmd)
		return cli_usage_error(ctx, "unknown command '%s'", argv[0]);
	argv++;
	n--;
	if (cmd->subs) {
		group = cmd;
		if (n == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
			print_group_help(ctx, group);
			return n == 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
		}
		cmd = find_command(group->subs, argv[0]);
		if (!cmd)
			return cli_usage_error(ctx, "unknown command '%s %s'", group->name,
					       argv[0]);
		argv++;
		n--;
	}
	ctx->cmd = cmd;
	ctx->group = group;
	return cmd->run(ctx, n, argv);
}

int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fputs("kvfs: ", ctx->err);
	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	if (ctx->cmd)
		fprintf(ctx->err, "\nRun 'kvfs %s%s%s --help' for usage.\n",
			ctx->group ? ctx->group->name : "", ctx->group ? " " : "", ctx->cmd->name);
	else
		fputs("\nRun 'kvfs --help' for usage.\n", ctx->err);
	return CLI_EXIT_USAGE;
}

int cli_fail(struct cli_ctx *ctx, int status, const char *fmt, ...)
{
	va_list ap;

	fputs("kvfs: ", ctx->err);
	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	fputc('\n', ctx->err);
	return status;
}

struct cli_http *cli_ctx_http(struct cli_ctx *ctx)
{
	char **list = NULL;
	size_t n = 0;
	int rc;

	if (ctx->http)
		return ctx->http;
	rc = cli_endpoints_parse(ctx->endpoints ? ctx->endpoints : CLI_DEFAULT_ENDPOINT, &list,
				 &n);
	if (rc == -EINVAL) {
		cli_usage_error(ctx, "no endpoint in '%s'", ctx->endpoints);
		return NULL;
	}
	if (rc) {
		cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
		return NULL;
	}
	ctx->http = cli_http_create(list, n, ctx->timeout_s, ctx->verbose, ctx->err);
	cli_endpoints_free(list);
	if (!ctx->http)
		cli_fail(ctx, CLI_EXIT_ERROR, "cannot set up the HTTP client");
	return ctx->http;
}

int cli_call(struct cli_ctx *ctx, const char *what, const struct cli_http_request *req,
	     struct cli_http_response *resp)
{
	struct cli_buf detail = CLI_BUF_INIT;
	struct cli_http *h = cli_ctx_http(ctx);
	char err[1024];
	int rc, status;

	if (!h)
		return ctx->endpoints ? CLI_EXIT_USAGE : CLI_EXIT_ERROR;
	rc = cli_http_do(h, req, resp, err, sizeof(err));
	if (rc == -EHOSTUNREACH)
		return cli_fail(ctx, CLI_EXIT_UNAVAILABLE, "%s: cluster unavailable: %s", what, err);
	if (rc)
		return cli_fail(ctx, CLI_EXIT_ERROR, "%s: %s", what, strerror(-rc));
	status = cli_exit_for_status(resp->status);
	if (status == CLI_EXIT_OK)
		return status;
	if (cli_render_error_detail(resp->body.data, resp->body.len, &detail))
		return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
	cli_fail(ctx, status, "%s: %s (HTTP %ld)", what, detail.data, resp->status);
	cli_buf_free(&detail);
	return status;
}

int cli_write(struct cli_ctx *ctx, const void *data, size_t len)
{
	if (len && fwrite(data, 1, len, ctx->out) != len)
		return cli_fail(ctx, CLI_EXIT_ERROR, "write error: %s", strerror(errno));
	return CLI_EXIT_OK;
}

int cli_print_body(struct cli_ctx *ctx, const struct cli_http_response *resp)
{
	int rc = cli_write(ctx, resp->body.data, resp->body.len);

	if (!rc && (!resp->body.len || resp->body.data[resp->body.len - 1] != '\n'))
		rc = cli_write(ctx, "\n", 1);
	return rc;
}
