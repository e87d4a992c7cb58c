/*
 * An incremental HTTP/1.1 response parser for the bench engine (RFC 9112):
 * status line, the three headers that frame a reply (Content-Length,
 * Transfer-Encoding: chunked, Connection), then the body delimited by its
 * length, by chunks, or by the end of the connection.
 *
 * The engine feeds it whatever each read() returned, so every state survives
 * a split at any byte, including inside "\r\n" and inside a chunk-size line.
 * Lines (status, headers, chunk sizes, trailers) are gathered in a small
 * buffer; a header line longer than the buffer is skipped rather than
 * failed, since only the short framing headers matter here. Bodies are
 * copied, decoded, into the caller's buffer only when it wants them.
 *
 * RFC 9112 §6.3: a 1xx, 204 or 304 reply, or a reply to HEAD, has no body;
 * chunked wins over Content-Length; otherwise without a length the body runs
 * to the end of the connection.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/bench.h"

enum {
	ST_STATUS,
	ST_HEADER,
	ST_BODY_LENGTH,
	ST_BODY_EOF,
	ST_CHUNK_SIZE,
	ST_CHUNK_DATA,
	ST_CHUNK_END, /* the CRLF after a chunk's data */
	ST_TRAILER,
	ST_DONE,
};

void bench_resp_init(struct bench_resp *r, struct cli_buf *body, int no_body)
{
	memset(r, 0, sizeof(*r) - sizeof(r->line));
	r->line[0] = '\0';
	r->state = ST_STATUS;
	r->body = body;
	r->no_body = no_body;
}

/* Case-insensitive search of a token in a header value (comma lists). */
static int value_has(const char *v, const char *token)
{
	size_t n = strlen(token);

	for (; *v; v++)
		if (strncasecmp(v, token, n) == 0)
			return 1;
	return 0;
}

static int parse_status(struct bench_resp *r, const char *l)
{
	int minor, code;

	if (strncmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
		return -EPROTO;
	minor = l[7] - '0';
	if (l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' ||
	    l[11] > '9' || (l[12] != ' ' && l[12] != '\0'))
		return -EPROTO;
	code = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	r->status = code;
	r->conn_close = minor == 0; /* HTTP/1.0 closes unless told keep-alive */
	return 0;
}

static int parse_header(struct bench_resp *r, char *l)
{
	char *colon = strchr(l, ':'), *v, *end;
	unsigned long long n;

	if (!colon)
		return -EPROTO;
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	if (strcasecmp(l, "content-length") == 0) {
		if (*v < '0' || *v > '9')
			return -EPROTO;
		errno = 0;
		n = strtoull(v, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (errno || *end)
			return -EPROTO;
		r->has_length = 1;
		r->remaining = n;
	} else if (strcasecmp(l, "transfer-encoding") == 0) {
		if (value_has(v, "chunked"))
			r->chunked = 1;
	} else if (strcasecmp(l, "connection") == 0) {
		if (value_has(v, "close"))
			r->conn_close = 1;
		else if (value_has(v, "keep-alive"))
			r->conn_close = 0;
	}
	return 0;
}

/* The blank line after the headers: decide how the body is framed. */
static void end_of_headers(struct bench_resp *r, int *done)
{
	if (r->status < 200) { /* 1xx: an interim reply; the real one follows */
		int close = r->conn_close;

		bench_resp_init(r, r->body, r->no_body);
		r->conn_close = close;
		return;
	}
	if (r->no_body || r->status == 204 || r->status == 304) {
		r->state = ST_DONE;
	} else if (r->chunked) {
		r->state = ST_CHUNK_SIZE;
	} else if (r->has_length) {
		r->state = r->remaining ? ST_BODY_LENGTH : ST_DONE;
	} else {
		r->state = ST_BODY_EOF;
		r->conn_close = 1;
	}
	*done = r->state == ST_DONE;
}

static int parse_chunk_size(struct bench_resp *r, const char *l)
{
	uint64_t n = 0;
	int digits = 0;

	for (; *l; l++, digits++) {
		int d;

		if (*l >= '0' && *l <= '9')
			d = *l - '0';
		else if (*l >= 'a' && *l <= 'f')
			d = *l - 'a' + 10;
		else if (*l >= 'A' && *l <= 'F')
			d = *l - 'A' + 10;
		else
			break;
		if (n >> 60)
			return -EPROTO;
		n = n << 4 | (uint64_t)d;
	}
	if (!digits || (*l && *l != ';' && *l != ' ' && *l != '\t'))
		return -EPROTO;
	r->remaining = n;
	r->state = n ? ST_CHUNK_DATA : ST_TRAILER;
	return 0;
}

/* A complete line (CR and LF removed) in the current state. */
static int on_line(struct bench_resp *r, int *done)
{
	char *l = r->line;

	switch (r->state) {
	case ST_STATUS:
		if (r->line_overflow)
			return -EPROTO;
		if (parse_status(r, l))
			return -EPROTO;
		r->state = ST_HEADER;
		return 0;
	case ST_HEADER:
		if (r->line_overflow)
			return 0; /* a long header we do not need */
		if (!*l) {
			end_of_headers(r, done);
			return 0;
		}
		return parse_header(r, l);
	case ST_CHUNK_SIZE:
		if (r->line_overflow)
			return -EPROTO;
		return parse_chunk_size(r, l);
	case ST_CHUNK_END:
		if (*l || r->line_overflow)
			return -EPROTO;
		r->state = ST_CHUNK_SIZE;
		return 0;
	case ST_TRAILER:
		if (!*l && !r->line_overflow) {
			r->state = ST_DONE;
			*done = 1;
		}
		return 0;
	default: /* NEVER */
		return -EPROTO;
	}
}

static int take_body(struct bench_resp *r, const char *p, size_t n)
{
	r->body_len += n;
	if (r->body && cli_buf_append(r->body, p, n))
		return -ENOMEM;
	return 0;
}

long bench_resp_feed(struct bench_resp *r, const char *p, size_t n, int *done)
{
	size_t used = 0;
	int rc;

	*done = r->state == ST_DONE;
	while (used < n && !*done) {
		const char *q = p + used;
		size_t avail = n - used, take;

		switch (r->state) {
		case ST_BODY_LENGTH:
		case ST_CHUNK_DATA:
			take = avail < r->remaining ? avail : (size_t)r->remaining;
			if (take_body(r, q, take))
				return -ENOMEM;
			used += take;
			r->remaining -= take;
			if (!r->remaining) {
				r->state = r->state == ST_CHUNK_DATA ? ST_CHUNK_END : ST_DONE;
				*done = r->state == ST_DONE;
			}
			continue;
		case ST_BODY_EOF:
			if (take_body(r, q, avail))
				return -ENOMEM;
			used += avail;
			continue;
		default:
			break;
		}
		/* Line states: gather up to LF. */
		{
			const char *lf = memchr(q, '\n', avail);
			size_t len = lf ? (size_t)(lf - q) : avail;
			size_t room = sizeof(r->line) - 1 - r->line_len;

			if (len > room) {
				r->line_overflow = 1;
				memcpy(r->line + r->line_len, q, room);
				r->line_len += room;
			} else {
				memcpy(r->line + r->line_len, q, len);
				r->line_len += len;
			}
			used += len + (lf ? 1 : 0);
			if (!lf)
				continue;
			if (r->line_len && r->line[r->line_len - 1] == '\r')
				r->line_len--;
			r->line[r->line_len] = '\0';
			rc = on_line(r, done);
			r->line_len = 0;
			r->line_overflow = 0;
			if (rc)
				return rc;
		}
	}
	return (long)used;
}

int bench_resp_eof(struct bench_resp *r)
{
	if (r->state == ST_BODY_EOF) {
		r->state = ST_DONE;
		return 1;
	}
	return r->state == ST_DONE;
}
