/*
 * The frame every kvfs subcommand runs in: the command table entry, the
 * context (global options, the lazily created HTTP client, output streams)
 * and the helpers commands share for parsing their options and making a
 * request with uniform error reporting.
 *
 * Commands are functions returning an exit status (enum cli_exit in
 * output.h), not a negative code: the exit status is their result.
 * Single-threaded: a context belongs to the one thread running the command.
 */
#ifndef KVFS_CLI_CLI_H
#define KVFS_CLI_CLI_H

#include <stdio.h>

#include "cli/args.h"
#include "cli/http.h"
#include "cli/output.h"

#define CLI_DEFAULT_ENDPOINT "http://127.0.0.1:8000"
#define CLI_DEFAULT_TIMEOUT 10.0

struct cli_ctx;

struct cli_command {
	const char *name;    /* NULL ends a table */
	const char *usage;   /* operands after "kvfs <name> ", e.g. "[options] KEY" */
	const char *summary; /* one line for the command list */
	const char *help;    /* description and options, printed by --help */
	/* Runs the command on the arguments after its name (argv[argc] == NULL)
	 * and returns an exit status. NULL for a group. */
	int (*run)(struct cli_ctx *ctx, int argc, char **argv);
	const struct cli_command *subs; /* a group's subcommands, or NULL */
};

struct cli_ctx {
	/* Global options, from the command line or the environment. */
	const char *endpoints; /* borrowed: argv or getenv(); NULL = default */
	double timeout_s;
	int json;
	int verbose;

	const struct cli_command *cmd;   /* command being run (for --help) */
	const struct cli_command *group; /* its group, or NULL */
	struct cli_http *http;           /* owned; created by cli_ctx_http() */
	FILE *out;                       /* borrowed: stdout in kvfs */
	FILE *err;                       /* borrowed: stderr in kvfs */
};

/* Initialises ctx with defaults writing to out/err; KVFS_ENDPOINTS is read
 * here. cli_ctx_close() frees the HTTP client. */
void cli_ctx_init(struct cli_ctx *ctx, FILE *out, FILE *err);
void cli_ctx_close(struct cli_ctx *ctx);

/* Runs the whole command line (argv[0] is the program name) and returns the
 * exit status. The entry point of kvfs, also used by tests. */
int cli_main(struct cli_ctx *ctx, int argc, char **argv);

/* Parses a command's arguments against its table plus the common options
 * (--endpoints, --json, --timeout, --verbose, --help), handled here. Operands
 * end up at argv[0..n). Returns n >= 0, or -1 when the command must stop:
 * *exit_status is then CLI_EXIT_OK (--help was printed) or CLI_EXIT_USAGE
 * (the error was printed). */
int cli_parse_command(struct cli_ctx *ctx, int argc, char **argv,
		      const struct cli_optspec *specs, int (*on_opt)(void *ud, int id, const char *arg),
		      void *ud, int *exit_status);

/* Prints "kvfs: <message>" and a hint to run --help on ctx->err; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "kvfs: <message>" on ctx->err; returns status. */
int cli_fail(struct cli_ctx *ctx, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The HTTP client for ctx's endpoints and timeout, created on first use.
 * NULL after printing why (bad endpoint list, out of memory). */
struct cli_http *cli_ctx_http(struct cli_ctx *ctx);

/* Performs req with failover and maps the outcome to an exit status. On any
 * status other than CLI_EXIT_OK the error has been printed as
 * "kvfs: <what>: <detail>". resp (initialised by the caller) holds the reply
 * whenever a server answered. */
int cli_call(struct cli_ctx *ctx, const char *what, const struct cli_http_request *req,
	     struct cli_http_response *resp);

/* Writes len bytes to ctx->out; returns CLI_EXIT_OK or prints the error and
 * returns CLI_EXIT_ERROR. */
int cli_write(struct cli_ctx *ctx, const void *data, size_t len);

/* Prints a server reply body as it came, plus a newline (the --json output). */
int cli_print_body(struct cli_ctx *ctx, const struct cli_http_response *resp);

/* Command groups, one file each. The table itself is in commands.c. */
int cli_cmd_put(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_batch(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_range(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_member_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_member_add(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_member_remove(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_member_promote(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_leader_transfer(struct cli_ctx *ctx, int argc, char **argv);

#endif
