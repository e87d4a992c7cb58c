/*
 * JSON validation + minification in one pass (a recursive-descent scanner
 * with an explicit depth bound), span walking over minified text, string
 * escaping, UTF-8 validation and base64. See json_text.h for why values do
 * not go through jansson.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_text.h"

struct scan {
	const uint8_t *p, *end, *start;
	uint8_t *o;
	const char *msg;
	const uint8_t *errp;
};

static int fail(struct scan *s, const char *msg)
{
	if (!s->msg) {
		s->msg = msg;
		s->errp = s->p;
	}
	return -1;
}

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Length of the UTF-8 sequence at p if valid, else 0. */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end)
{
	uint8_t c = p[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

bool utf8_valid(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = utf8_seq(p, end);
		if (!n)
			return false;
		p += n;
	}
	return true;
}

static int hex4(const uint8_t *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static int scan_string(struct scan *s)
{
	const uint8_t *q = s->p;
	q++; /* opening quote */
	while (q < s->end) {
		uint8_t c = *q;
		if (c == '"') {
			q++;
			size_t n = (size_t)(q - s->p);
			memmove(s->o, s->p, n);
			s->o += n;
			s->p = q;
			return 0;
		}
		if (c < 0x20) {
			s->p = q;
			return fail(s, "control character in string");
		}
		if (c == '\\') {
			if (q + 1 >= s->end) {
				s->p = q;
				return fail(s, "unterminated string");
			}
			uint8_t e = q[1];
			if (e == 'u') {
				unsigned v;
				if (s->end - q < 6 || hex4(q + 2, &v) < 0) {
					s->p = q;
					return fail(s, "bad \\u escape");
				}
				q += 6;
				if (v >= 0xD800 && v <= 0xDBFF) {
					unsigned lo;
					if (s->end - q < 6 || q[0] != '\\' || q[1] != 'u' ||
					    hex4(q + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
						s->p = q;
						return fail(s, "unpaired surrogate in \\u escape");
					}
					q += 6;
				} else if (v >= 0xDC00 && v <= 0xDFFF) {
					s->p = q;
					return fail(s, "unpaired surrogate in \\u escape");
				}
				continue;
			}
			if (!strchr("\"\\/bfnrt", e) || e == 0) {
				s->p = q;
				return fail(s, "bad escape in string");
			}
			q += 2;
			continue;
		}
		if (c >= 0x80) {
			size_t n = utf8_seq(q, s->end);
			if (!n) {
				s->p = q;
				return fail(s, "invalid UTF-8 in string");
			}
			q += n;
			continue;
		}
		q++;
	}
	s->p = q;
	return fail(s, "unterminated string");
}

static int scan_number(struct scan *s)
{
	const uint8_t *q = s->p;
	if (q < s->end && *q == '-')
		q++;
	if (q >= s->end)
		goto bad;
	if (*q == '0') {
		q++;
	} else if (*q >= '1' && *q <= '9') {
		while (q < s->end && *q >= '0' && *q <= '9')
			q++;
	} else {
		goto bad;
	}
	if (q < s->end && *q == '.') {
		q++;
		if (q >= s->end || *q < '0' || *q > '9')
			goto bad;
		while (q < s->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < s->end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < s->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= s->end || *q < '0' || *q > '9')
			goto bad;
		while (q < s->end && *q >= '0' && *q <= '9')
			q++;
	}
	memmove(s->o, s->p, (size_t)(q - s->p));
	s->o += q - s->p;
	s->p = q;
	return 0;
bad:
	s->p = q;
	return fail(s, "invalid number");
}

static int scan_value(struct scan *s, int depth);

static int scan_container(struct scan *s, int depth, uint8_t close, bool object)
{
	if (depth >= JSON_MAX_DEPTH)
		return fail(s, "nesting too deep");
	*s->o++ = *s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		*s->o++ = *s->p++;
		return 0;
	}
	for (;;) {
		if (object) {
			if (s->p >= s->end || *s->p != '"')
				return fail(s, "expected string key");
			if (scan_string(s) < 0)
				return -1;
			ws(s);
			if (s->p >= s->end || *s->p != ':')
				return fail(s, "expected ':'");
			*s->o++ = *s->p++;
			ws(s);
		}
		if (scan_value(s, depth + 1) < 0)
			return -1;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			*s->o++ = *s->p++;
			ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			*s->o++ = *s->p++;
			return 0;
		}
		return fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int scan_literal(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return fail(s, "invalid literal");
	memmove(s->o, s->p, n);
	s->o += n;
	s->p += n;
	return 0;
}

static int scan_value(struct scan *s, int depth)
{
	if (s->p >= s->end)
		return fail(s, "unexpected end of input");
	switch (*s->p) {
	case '{':
		return scan_container(s, depth, '}', true);
	case '[':
		return scan_container(s, depth, ']', false);
	case '"':
		return scan_string(s);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return scan_number(s);
		return fail(s, "expected a JSON value");
	}
}

int json_text_minify(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len,
		     struct json_text_error *err)
{
	struct scan s = {.p = in, .end = in + len, .start = in, .o = out};
	ws(&s);
	if (scan_value(&s, 0) == 0) {
		ws(&s);
		if (s.p == s.end) {
			*out_len = (size_t)(s.o - out);
			return 0;
		}
		fail(&s, "extra data after the JSON value");
	}
	err->msg = s.msg;
	err->pos = (size_t)(s.errp - in);
	return -1;
}

const uint8_t *json_span_skip(const uint8_t *p, const uint8_t *end)
{
	int depth = 0;
	bool in_str = false;
	const uint8_t *q = p;
	for (; q < end; q++) {
		uint8_t c = *q;
		if (in_str) {
			if (c == '\\')
				q++;
			else if (c == '"') {
				in_str = false;
				if (depth == 0)
					return q + 1;
			}
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth <= 0)
				return depth == 0 ? q + 1 : q;
		} else if (depth == 0 && (c == ',' || c == ':')) {
			return q;
		}
	}
	return q;
}

bool json_span_member(const uint8_t *p, const uint8_t *end, const uint8_t **cur,
		      const uint8_t **key, size_t *klen, const uint8_t **val, size_t *vlen)
{
	const uint8_t *q = *cur ? *cur : p + 1;
	if (q >= end || *q == '}')
		return false;
	if (*q == ',')
		q++;
	const uint8_t *ke = json_span_skip(q, end);
	*key = q;
	*klen = (size_t)(ke - q);
	q = ke + 1; /* ':' */
	const uint8_t *ve = json_span_skip(q, end);
	*val = q;
	*vlen = (size_t)(ve - q);
	*cur = ve;
	return true;
}

bool json_span_element(const uint8_t *p, const uint8_t *end, const uint8_t **cur,
		       const uint8_t **val, size_t *vlen)
{
	const uint8_t *q = *cur ? *cur : p + 1;
	if (q >= end || *q == ']')
		return false;
	if (*q == ',')
		q++;
	const uint8_t *ve = json_span_skip(q, end);
	*val = q;
	*vlen = (size_t)(ve - q);
	*cur = ve;
	return true;
}

static size_t put_utf8(uint8_t *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xC0 | (cp >> 6));
		o[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xE0 | (cp >> 12));
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | (cp >> 18));
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

int json_span_string(const uint8_t *s, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *o = malloc(len + 1), *w = o;
	if (!o)
		return -ENOMEM;
	const uint8_t *p = s + 1, *end = s + len - 1;
	while (p < end) {
		if (*p != '\\') {
			*w++ = *p++;
			continue;
		}
		uint8_t e = p[1];
		p += 2;
		switch (e) {
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			unsigned v, lo;
			hex4(p, &v);
			p += 4;
			if (v >= 0xD800 && v <= 0xDBFF) {
				hex4(p + 2, &lo);
				p += 6;
				v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
			}
			w += put_utf8(w, v);
			break;
		}
		default: *w++ = e;
		}
	}
	*w = 0;
	*out = o;
	*out_len = (size_t)(w - o);
	return 0;
}

void json_put_string(struct byte_buf *b, const uint8_t *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	bb_reserve(b, len + 2);
	bb_u8(b, '"');
	const uint8_t *run = p, *end = p + len;
	for (; p < end; p++) {
		uint8_t c = *p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		bb_put(b, run, (size_t)(p - run));
		run = p + 1;
		switch (c) {
		case '"': bb_put(b, "\\\"", 2); break;
		case '\\': bb_put(b, "\\\\", 2); break;
		case '\n': bb_put(b, "\\n", 2); break;
		case '\r': bb_put(b, "\\r", 2); break;
		case '\t': bb_put(b, "\\t", 2); break;
		case '\b': bb_put(b, "\\b", 2); break;
		case '\f': bb_put(b, "\\f", 2); break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			bb_put(b, u, 6);
		}
		}
	}
	bb_put(b, run, (size_t)(end - run));
	bb_u8(b, '"');
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_put(struct byte_buf *b, const uint8_t *p, size_t len)
{
	if (bb_reserve(b, (len + 2) / 3 * 4) < 0)
		return;
	uint8_t *o = b->data + b->len;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = (uint8_t)b64[v >> 18];
		*o++ = (uint8_t)b64[(v >> 12) & 63];
		*o++ = (uint8_t)b64[(v >> 6) & 63];
		*o++ = (uint8_t)b64[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = (uint8_t)b64[v >> 18];
		*o++ = (uint8_t)b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? (uint8_t)b64[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	b->len = (size_t)(o - b->data);
}

int base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	while (len && in[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		const char *pos = memchr(b64, in[i], 64);
		if (!pos || !in[i])
			return -1;
		acc = (acc << 6) | (uint32_t)(pos - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6)
		return -1;
	*out_len = n;
	return 0;
}
