/*
 * How the client turns server answers into human output and exit statuses.
 *
 * Pure functions over parsed JSON (jansson) appending to a struct cli_buf, so
 * every format is unit-tested without a server. Nothing here writes to a
 * stream. json_t arguments are borrowed.
 */
#ifndef KVFS_CLI_OUTPUT_H
#define KVFS_CLI_OUTPUT_H

#include <jansson.h>

#include "cli/buf.h"

/* Exit statuses, documented in kvfs.1 EXIT STATUS. */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_NOTFOUND = 1,    /* 404: key (or member) not found */
	CLI_EXIT_USAGE = 2,       /* bad command line or bad input data */
	CLI_EXIT_PRECOND = 3,     /* 412 (or 409): precondition failed */
	CLI_EXIT_REJECTED = 4,    /* any other 4xx */
	CLI_EXIT_UNAVAILABLE = 5, /* no endpoint answered, or all answered 502/503/504 */
	CLI_EXIT_ERROR = 6,       /* anything else: 500, bad reply, local I/O error */
};

/* Exit status for a final HTTP status. */
int cli_exit_for_status(long status);

/* Appends v as compact JSON. Unlike json_dumps(), reals are written with the
 * fewest digits that read back to the same double (1.1, not
 * 1.1000000000000001), so values round-trip as the user wrote them.
 * Returns 0, -ENOMEM or -EINVAL (a non-finite real). */
int cli_json_compact(const json_t *v, struct cli_buf *out);

/* Appends the value member of obj (a GET reply or a range result) as the
 * user sees it: a string as its raw text, bytes the server sent in base64
 * ("encoding":"base64") decoded, any other JSON value compact. No newline.
 * Returns 0, -ENOMEM, or -EPROTO when obj has no value or bad base64. */
int cli_render_value(const json_t *obj, struct cli_buf *out);

/* Appends the key member of obj, decoded when "key_encoding":"base64".
 * Returns 0, -ENOMEM or -EPROTO. */
int cli_render_key(const json_t *obj, struct cli_buf *out);

/* Appends the message of an error reply body ({"detail": ...}): the string
 * itself; for a list (422), the "msg" of each element (or the element as
 * JSON) joined by "; "; for anything else (not JSON, no detail), the body text
 * itself, cut at 200 bytes, or "(empty reply)". Returns 0 or -ENOMEM. */
int cli_render_error_detail(const char *body, size_t len, struct cli_buf *out);

/* Appends the readable summary `kvfs status` prints for one node from its
 * /health and /debug/replication documents (repl may be NULL). Missing fields
 * print as "-". Returns 0 or -ENOMEM. */
int cli_render_status(const char *endpoint, const json_t *health, const json_t *repl,
		      struct cli_buf *out);

/* Appends the table `kvfs member list` prints from a /cluster/members reply.
 * Returns 0, -ENOMEM, or -EPROTO when there is no "members" array. */
int cli_render_members(const json_t *doc, struct cli_buf *out);

#endif
