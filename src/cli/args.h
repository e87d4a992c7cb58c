/*
 * Command-line parsing for kvfs: a small table-driven option parser (GNU
 * style: long options with "--name value" or "--name=value", clustered short
 * flags, "-xVALUE", "--" ends options, "-" alone is an operand, options and
 * operands may be mixed), plus the parsers of the values global options take.
 *
 * Pure functions; no global state (unlike getopt), so commands and unit tests
 * can call them any number of times.
 */
#ifndef KVFS_CLI_ARGS_H
#define KVFS_CLI_ARGS_H

#include <stddef.h>

struct cli_optspec {
	const char *name; /* long name without "--"; NULL ends a table */
	int short_name;   /* single-letter alias, or 0 */
	int has_arg;      /* 1: takes a value */
	int id;           /* passed to the callback; tables must not share ids */
	const char *help; /* unused by the parser; kept beside the spec */
};

/* Called for each option found, in command-line order. arg is NULL for a
 * flag; otherwise it points into argv (borrowed). Returns 0 to continue or a
 * negative code, which the parser returns unchanged. */
struct cli_opt_handler {
	int (*fn)(void *ud, int id, const char *arg);
	void *ud;
};

/* Parses argv[0..argc) against up to two option tables (either may be NULL).
 * Operands are moved, in order, to the front of argv, and their count is
 * returned. With stop_at_operand, parsing stops at the first operand and it and
 * every later argument are returned as operands untouched (used for the global
 * options before a command name).
 * Errors: -EINVAL for an unknown option, a missing value or a value given to a
 * flag, with a message in err (err_len bytes, always NUL-terminated); any
 * negative code the handler returns. */
int cli_args_parse(int argc, char **argv, const struct cli_optspec *table1,
		   const struct cli_optspec *table2, int stop_at_operand,
		   const struct cli_opt_handler *handler, char *err, size_t err_len);

/* Splits a comma-separated endpoint list into base URLs. Blanks around items
 * are dropped, empty items skipped, a trailing '/' removed and "http://"
 * prepended to an item without a scheme. On success *out is a NULL-terminated
 * array the caller frees with cli_endpoints_free() and *n its length (>= 1).
 * Returns 0, -EINVAL when no endpoint remains, or -ENOMEM. */
int cli_endpoints_parse(const char *spec, char ***out, size_t *n);
void cli_endpoints_free(char **endpoints);

/* Parses a positive number of seconds ("10", "0.5"), at most 1e6.
 * Returns 0 and sets *seconds, or -EINVAL. */
int cli_parse_seconds(const char *text, double *seconds);

/* Parses a decimal unsigned integer that fits in 63 bits, no sign, no blanks.
 * Returns 0 and sets *value, or -EINVAL. */
int cli_parse_u64(const char *text, unsigned long long *value);

#endif
