/*
 * Byte encodings the client needs to talk to kvfsd: percent-encoding of keys
 * for the request target, and base64 decoding of keys and values the server
 * returns in base64 because they are not valid UTF-8.
 *
 * Pure functions: no I/O, no global state; safe from any thread.
 */
#ifndef KVFS_CLI_CODEC_H
#define KVFS_CLI_CODEC_H

#include <stddef.h>

#include "cli/buf.h"

/* Appends key (len bytes, any values including NUL) to out, percent-encoding
 * every byte except the RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~)
 * and '/'. Hex digits are upper case. Returns 0 or -ENOMEM. */
int cli_percent_encode(const char *key, size_t len, struct cli_buf *out);

/* Builds the request target for a key operation into out (reset first):
 * "/kv?key=<percent-encoded key>", plus "&" extra_query when extra_query is
 * not NULL. The query form is used for every key so that keys named "batch"
 * or "range" and keys with '/' are all reachable.
 * Returns 0 or -ENOMEM. */
int cli_kv_target(const char *key, size_t len, const char *extra_query, struct cli_buf *out);

/* Appends the decoded bytes of base64 text (standard alphabet, '=' padding
 * optional, no whitespace) to out. Returns 0, -EINVAL on malformed input
 * (out is then left unchanged), or -ENOMEM. */
int cli_base64_decode(const char *text, size_t len, struct cli_buf *out);

#endif
