/*
 * Where the client's data comes from: values from an argument, a file or
 * stdin, and the two input formats of `kvfs batch`.
 *
 * cli_put_body() and cli_batch_parse() are pure and unit-tested; the readers
 * do plain stdio I/O.
 */
#ifndef KVFS_CLI_INPUT_H
#define KVFS_CLI_INPUT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/buf.h"

/* Appends everything readable from f to out. Returns 0, -errno on a read
 * error, -ENOMEM. */
int cli_read_stream(FILE *f, struct cli_buf *out);

/* Appends the content of path ("-" means stdin) to out. Returns 0 or -errno
 * (-ENOENT, -EACCES, ...). */
int cli_read_path(const char *path, struct cli_buf *out);

/* How `put` sends a value. */
enum cli_value_mode {
	CLI_VALUE_STRING, /* the bytes are text, sent as one JSON string */
	CLI_VALUE_JSON,   /* the bytes are JSON text, sent as they are */
	CLI_VALUE_RAW,    /* the bytes are sent as application/octet-stream */
};

/* Builds the PUT body for a value into body (reset first) and points
 * *content_type at a static string. Returns 0, -ENOMEM, or -EINVAL with a
 * message in err: CLI_VALUE_STRING needs valid UTF-8, CLI_VALUE_JSON needs
 * one well-formed JSON value (checked locally so a typo fails before any
 * request is made). */
int cli_put_body(const char *value, size_t len, enum cli_value_mode mode, struct cli_buf *body,
		 const char **content_type, char *err, size_t err_len);

/* Parses `kvfs batch` input into the request body {"items":[...]} (new
 * reference in *doc). Two formats, told apart by the first non-blank byte:
 *  - '{': one JSON object holding an "items" array of {"key","value"} objects
 *    (the body of PUT /kv/batch), passed through after checking its shape;
 *  - anything else: lines "key<TAB>value", value taken to the end of the line
 *    (a final "\r" is kept: it is part of the value). Values are strings, or
 *    JSON text with json_values. Empty lines are skipped. Keys and string
 *    values must be valid UTF-8 and cannot hold a newline (the key no tab);
 *    use the JSON form for those.
 * Returns 0, -ENOMEM, or -EINVAL with "line N: why" in err. An input with no
 * item is -EINVAL. */
int cli_batch_parse(const char *data, size_t len, int json_values, json_t **doc, char *err,
		    size_t err_len);

#endif
