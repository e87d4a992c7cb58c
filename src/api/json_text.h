/*
 * JSON text handling on the value path.
 *
 * Values must round-trip as the client wrote them (the seed's Python stored
 * them as parsed objects and printed them back: `0.1` stays `0.1`, a 30-digit
 * integer stays exact). jansson parses numbers into double/long long and
 * would print `0.10000000000000001` or refuse big integers, so stored values
 * never go through it: this module validates JSON text (RFC 8259, UTF-8
 * checked, nesting bounded) and minifies it in one pass, and walks minified
 * text by spans to pick batch items out without re-encoding them. jansson is
 * still used for small request bodies (range, membership) and for building
 * replies.
 */
#ifndef KVFS_API_JSON_TEXT_H
#define KVFS_API_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

#define JSON_MAX_DEPTH 256

struct json_text_error {
	size_t pos;      /* byte offset in the input */
	const char *msg; /* static */
};

/* Validates that in[0..len) is exactly one JSON value (surrounding white space
 * allowed) and writes its minified form to out (capacity >= len; out may equal
 * in). Returns 0 and sets *out_len, or -1 and fills err. */
int json_text_minify(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len,
		     struct json_text_error *err);

/* On minified, valid JSON text: returns the end of the value starting at p. */
const uint8_t *json_span_skip(const uint8_t *p, const uint8_t *end);

/* Iterates the members of the minified object [p, end) (p at '{'). Call with
 * *cur = NULL first; each call yields one member's key span (including the
 * quotes) and value span and returns true, false at the end. */
bool json_span_member(const uint8_t *p, const uint8_t *end, const uint8_t **cur,
		      const uint8_t **key, size_t *klen, const uint8_t **val, size_t *vlen);
/* Same for the elements of a minified array (p at '['). */
bool json_span_element(const uint8_t *p, const uint8_t *end, const uint8_t **cur,
		       const uint8_t **val, size_t *vlen);

/* Decodes a JSON string span (with quotes, valid per json_text_minify) into
 * malloc'd bytes (NUL-terminated for convenience; may contain NULs).
 * Returns 0 or -ENOMEM. */
int json_span_string(const uint8_t *s, size_t len, uint8_t **out, size_t *out_len);

/* True when [p, p+len) is valid UTF-8 (no surrogates, no overlongs). */
bool utf8_valid(const uint8_t *p, size_t len);

/* Appends bytes as a JSON string literal (with quotes). The bytes must be
 * valid UTF-8. */
void json_put_string(struct byte_buf *b, const uint8_t *p, size_t len);

/* Appends standard base64 (with padding) of p. */
void base64_put(struct byte_buf *b, const uint8_t *p, size_t len);
/* Decodes standard base64 (padding optional); returns 0 or -1 on bad input.
 * out must hold len*3/4+3 bytes. */
int base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len);

#endif
