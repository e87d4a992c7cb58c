/*
 * libFuzzer target for bench_resp_feed (cli/bench_parse.c), the incremental
 * HTTP/1.1 response parser of `kvfs bench`: the code that reads whatever a
 * server (kvfsd, or etcd's gateway) sends back, a read() at a time.
 *
 * Input: one byte of flags (bit 0: the request was HEAD), one byte that
 * picks a split point, then the bytes the server sent.
 *
 * Oracle: besides ASan/UBSan, the parser promises (bench.h) that any split
 * of the stream into calls gives the same result, so the stream is fed
 * whole, in two pieces at the chosen point, and a byte at a time, and the
 * three must agree: the same error, or the same bytes consumed, the same
 * completion (also at the end of the connection), status and body. A
 * parser never consumes more than it was given.
 *
 * Seed corpus: tests/fuzz/corpus/resp (tests/fuzz/gen_resp_corpus.py).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/buf.h"

struct outcome {
	long rc; /* bytes consumed in all, or the error */
	int done, status;
	struct cli_buf body;
};

/* Feeds p in pieces of step bytes (0: cut bytes, when not 0, then the
 * rest). */
static void feed(const char *p, size_t n, int head, size_t step, size_t cut, struct outcome *o)
{
	struct bench_resp r;
	size_t off = 0;
	cli_buf_init(&o->body);
	bench_resp_init(&r, &o->body, head);
	o->done = 0;
	o->rc = 0;
	for (int piece = 0; off < n && !o->done; piece++) {
		size_t len = step ? step : piece == 0 && cut ? cut : n - off;
		if (len > n - off)
			len = n - off;
		long used = bench_resp_feed(&r, p + off, len, &o->done);
		if (used < 0) {
			o->rc = used;
			o->status = 0;
			return;
		}
		if ((size_t)used > len || (!o->done && (size_t)used != len))
			abort();
		off += (size_t)used;
	}
	if (o->body.len > off)
		abort(); /* a body of more bytes than came */
	if (!o->done)
		o->done = bench_resp_eof(&r) ? 2 : 0;
	o->rc = (long)off;
	o->status = r.status;
}

static void same(const struct outcome *a, const struct outcome *b)
{
	if (a->rc != b->rc)
		abort();
	if (a->rc < 0)
		return;
	if (a->done != b->done || a->status != b->status || a->body.len != b->body.len ||
	    (a->body.len && memcmp(a->body.data, b->body.data, a->body.len) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int head = data[0] & 1;
	const char *p = (const char *)data + 2;
	size_t n = size - 2, cut = n ? data[1] % (n + 1) : 0;
	struct outcome whole, two, bytes;
	feed(p, n, head, n ? n : 1, 0, &whole);
	feed(p, n, head, 0, cut, &two);
	feed(p, n, head, 1, 0, &bytes);
	same(&whole, &two);
	same(&whole, &bytes);
	cli_buf_free(&whole.body);
	cli_buf_free(&two.body);
	cli_buf_free(&bytes.body);
	return 0;
}
