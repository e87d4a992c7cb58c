/*
 * Unit tests of the pure parts of `kvfs bench`: the log-linear histogram
 * against a sorted-array oracle, the Zipf and uniform generators, the
 * incremental HTTP response parser (every split of the stream, chunked
 * bodies, malformed replies), key texts and base64, the requests and reply
 * checks of both targets, the reasons of error replies and their counts,
 * and the option parser and its cross-checks.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli/args.h"
#include "cli/bench.h"

/* ------------------------------------------------------------ histogram -- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array: the oracle. */
static uint64_t oracle(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);

	return v[(rank ? rank : 1) - 1];
}

static void check_against_oracle(unsigned sub_bits, uint64_t *vals, size_t n)
{
	static const double ps[] = {0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
	struct bench_hist h;
	double sum = 0, tol = 1.0 / (double)(1u << (sub_bits - 1));
	size_t i;

	assert_int_equal(bench_hist_init(&h, sub_bits), 0);
	for (i = 0; i < n; i++) {
		bench_hist_record(&h, vals[i]);
		sum += (double)vals[i];
	}
	qsort(vals, n, sizeof(*vals), cmp_u64);
	assert_int_equal(h.total, n);
	assert_int_equal(h.min, vals[0]);
	assert_int_equal(h.max, vals[n - 1]);
	assert_true(fabs(bench_hist_mean(&h) - sum / (double)n) < 1e-6 * sum / (double)n + 1e-9);
	for (i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		uint64_t want = oracle(vals, n, ps[i]);
		uint64_t got = bench_hist_percentile(&h, ps[i]);
		double err = fabs((double)got - (double)want);

		if (err > tol * (double)want + 1)
			fail_msg("S=%u p%.2f: got %llu, want %llu", sub_bits, ps[i],
				 (unsigned long long)got, (unsigned long long)want);
	}
	assert_int_equal(bench_hist_percentile(&h, 100), vals[n - 1]);
	bench_hist_close(&h);
}

/* Percentiles are within the histogram's stated relative precision of the
 * exact nearest-rank percentiles, over values from nanoseconds to minutes. */
static void test_hist_oracle(void **state)
{
	struct bench_rng rng = {42};
	size_t n = 200000, i;
	uint64_t *vals = malloc(n * sizeof(*vals)), *copy = malloc(n * sizeof(*copy));

	assert_non_null(vals);
	assert_non_null(copy);
	for (i = 0; i < n; i++) /* log-uniform between 1 ns and ~100 s */
		vals[i] = (uint64_t)exp(bench_rng_unit(&rng) * log(1e11));
	memcpy(copy, vals, n * sizeof(*vals));
	check_against_oracle(BENCH_HIST_PRECISE, vals, n);
	check_against_oracle(BENCH_HIST_COARSE, copy, n);
	/* A narrow, realistic latency cluster: 200 us +- a little. */
	for (i = 0; i < n; i++)
		vals[i] = 200000 + bench_rng_below(&rng, 5000) + (i % 1000 == 0 ? 50000000 : 0);
	check_against_oracle(BENCH_HIST_PRECISE, vals, n);
	free(vals);
	free(copy);
}

/* Small values are exact; an empty histogram answers 0; huge values are
 * clamped; merging equals recording everything in one histogram. */
static void test_hist_edges(void **state)
{
	struct bench_hist a, b, all;
	uint64_t v;

	assert_int_equal(bench_hist_init(&a, 10), 0);
	assert_int_equal(bench_hist_init(&b, 10), 0);
	assert_int_equal(bench_hist_init(&all, 10), 0);
	assert_int_equal(bench_hist_percentile(&a, 50), 0);
	assert_true(bench_hist_mean(&a) == 0);
	for (v = 0; v < 1024; v++) {
		bench_hist_record(v % 2 ? &a : &b, v);
		bench_hist_record(&all, v);
	}
	assert_int_equal(bench_hist_percentile(&all, 50), 511);
	assert_int_equal(bench_hist_merge(&a, &b), 0);
	assert_int_equal(a.total, all.total);
	assert_memory_equal(a.counts, all.counts, a.nbuckets * sizeof(*a.counts));
	assert_int_equal(bench_hist_percentile(&a, 99), bench_hist_percentile(&all, 99));
	bench_hist_record(&a, UINT64_MAX);
	assert_int_equal(a.max, ((uint64_t)1 << BENCH_HIST_MAX_BITS) - 1);
	bench_hist_close(&b);
	assert_int_equal(bench_hist_init(&b, 5), 0);
	assert_int_equal(bench_hist_merge(&a, &b), -EINVAL);
	bench_hist_close(&a);
	bench_hist_close(&b);
	bench_hist_close(&all);
	assert_int_equal(bench_hist_init(&all, 0), -EINVAL);
	assert_int_equal(bench_hist_init(&all, 17), -EINVAL);
}

/* ----------------------------------------------------------- generators -- */

/* Zipf ranks stay in range, the head has the theoretical weight 1/zeta(n),
 * rank 0 is 2^theta times as frequent as rank 1, and frequencies fall with
 * the rank. */
static void test_zipf(void **state)
{
	struct bench_zipf z;
	struct bench_rng rng = {7};
	const uint64_t n = 1000;
	const int draws = 400000;
	uint64_t *count = calloc(n, sizeof(*count));
	double f0, ratio;
	int i;

	assert_non_null(count);
	assert_int_equal(bench_zipf_init(&z, n, 0), -EINVAL);
	assert_int_equal(bench_zipf_init(&z, n, 1), -EINVAL);
	assert_int_equal(bench_zipf_init(&z, 0, 0.5), -EINVAL);
	assert_int_equal(bench_zipf_init(&z, n, 0.99), 0);
	for (i = 0; i < draws; i++) {
		uint64_t k = bench_zipf_next(&z, bench_rng_unit(&rng));

		assert_true(k < n);
		count[k]++;
	}
	f0 = (double)count[0] / draws;
	assert_true(fabs(f0 - 1.0 / z.zetan) < 0.05 / z.zetan);
	ratio = (double)count[0] / (double)count[1];
	assert_true(fabs(ratio - pow(2, 0.99)) < 0.1 * pow(2, 0.99));
	assert_true(count[1] > count[9]);
	assert_true(count[9] > count[99]);
	assert_true(count[99] > count[n - 1]);
	assert_true(count[n - 1] > 0);
	/* A one-key space always answers rank 0. */
	assert_int_equal(bench_zipf_init(&z, 1, 0.5), 0);
	assert_int_equal(bench_zipf_next(&z, 0.999), 0);
	free(count);
}

/* Uniform choice fills ten equal buckets evenly (within 3 %). */
static void test_uniform(void **state)
{
	struct bench_rng rng = {1};
	uint64_t count[10] = {0};
	int i;

	for (i = 0; i < 100000; i++)
		count[bench_rng_below(&rng, 10)]++;
	for (i = 0; i < 10; i++)
		assert_true(count[i] > 9700 && count[i] < 10300);
	for (i = 0; i < 1000; i++) {
		double u = bench_rng_unit(&rng);

		assert_true(u >= 0 && u < 1);
	}
}

/* --------------------------------------------------------------- parser -- */

/* Feeds text split at every position into pieces of `step` bytes (step 0:
 * one split at `split`), expecting a complete response of `status` and
 * `body`. Returns the bytes consumed in all. */
static size_t feed_all(const char *text, size_t len, size_t step, int status, const char *body)
{
	struct cli_buf b = CLI_BUF_INIT;
	struct bench_resp r;
	size_t off = 0;
	int done = 0;

	bench_resp_init(&r, &b, 0);
	while (off < len && !done) {
		size_t n = step && len - off > step ? step : len - off;
		long used = bench_resp_feed(&r, text + off, n, &done);

		assert_true(used >= 0);
		off += (size_t)used;
		if (!done)
			assert_int_equal((size_t)used, n);
	}
	if (!done)
		done = bench_resp_eof(&r);
	assert_true(done);
	assert_int_equal(r.status, status);
	assert_int_equal(b.len, strlen(body));
	assert_memory_equal(b.data ? b.data : "", body, b.len);
	cli_buf_free(&b);
	return off;
}

static void feed_every_split(const char *text, int status, const char *body, size_t want_used)
{
	size_t len = strlen(text), step;

	for (step = 1; step <= len; step++)
		assert_int_equal(feed_all(text, len, step, status, body), want_used);
}

/* A Content-Length reply parses the same whatever the read sizes; bytes
 * after it are left unconsumed. */
static void test_parse_length(void **state)
{
	const char *r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			"content-length:  14 \r\n\r\n{\"value\":\"ab\"}HTTP/1.1";

	feed_every_split(r, 200, "{\"value\":\"ab\"}", strlen(r) - 8);
}

/* A chunked reply (extensions, upper-case hex, a trailer) is decoded whatever
 * the read sizes, including splits inside the CRLFs and size lines. */
static void test_parse_chunked(void **state)
{
	const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			"5;ext=1\r\n{\"res\r\nB\r\nults\":[1,2]\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n";

	feed_every_split(r, 200, "{\"results\":[1,2]}", strlen(r));
}

/* Without a length the body runs to the end of the connection; 204 and
 * replies to HEAD have none; a 100 Continue is skipped; HTTP/1.0 and
 * Connection: close are reported. */
static void test_parse_framing(void **state)
{
	const char *eof = "HTTP/1.0 200 OK\r\n\r\nabc";
	const char *empty = "HTTP/1.1 204 No Content\r\n\r\n";
	const char *cont = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\n"
			   "Connection: close\r\nContent-Length: 2\r\n\r\nno";
	struct bench_resp r;
	int done;

	feed_every_split(eof, 200, "abc", strlen(eof));
	feed_every_split(empty, 204, "", strlen(empty));
	feed_every_split(cont, 404, "no", strlen(cont));
	bench_resp_init(&r, NULL, 1);
	assert_int_equal(bench_resp_feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 38,
					 &done),
			 38);
	assert_true(done);
	bench_resp_init(&r, NULL, 0);
	assert_true(bench_resp_feed(&r, cont, strlen(cont), &done) > 0);
	assert_true(done && r.conn_close);
	assert_int_equal(r.body_len, 2);
	bench_resp_init(&r, NULL, 0);
	assert_true(bench_resp_feed(&r, eof, strlen(eof), &done) > 0);
	assert_false(done);
	assert_true(r.conn_close);
	/* A chunked reply cut short is not complete at EOF. */
	bench_resp_init(&r, NULL, 0);
	assert_true(bench_resp_feed(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
				    51, &done) > 0);
	assert_false(bench_resp_eof(&r));
}

/* Malformed replies are protocol errors; an over-long header is skipped. */
static void test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
	};
	char longhdr[2048];
	struct bench_resp r;
	size_t i;
	int done;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bench_resp_init(&r, NULL, 0);
		assert_int_equal(bench_resp_feed(&r, bad[i], strlen(bad[i]), &done), -EPROTO);
	}
	snprintf(longhdr, sizeof(longhdr), "HTTP/1.1 200 OK\r\nX-Long: %01500d\r\n"
		 "Content-Length: 1\r\n\r\nz", 0);
	feed_every_split(longhdr, 200, "z", strlen(longhdr));
}

/* ------------------------------------------------------- keys, requests -- */

/* Keys have the prefix and fixed width; scrambled keys are still distinct;
 * plain keys sort in index order. */
static void test_keys(void **state)
{
	struct bench_keys k;
	char key[64], prev[64] = "";
	static char seen[4096][8];
	uint64_t i;

	assert_int_equal(bench_keys_init(&k, "bench/", 16, 0), 0);
	assert_int_equal(bench_key(&k, 255, key), 16);
	assert_string_equal(key, "bench/00000000ff");
	assert_int_equal(bench_keys_init(&k, "bad key", 16, 0), -EINVAL);
	assert_int_equal(bench_keys_init(&k, "p\"", 16, 0), -EINVAL);
	assert_int_equal(bench_keys_init(&k, "abc", 3, 0), -EINVAL);
	assert_int_equal(bench_keys_init(&k, "", 17, 0), -EINVAL);
	assert_int_equal(bench_keys_init(&k, "", 3, 1), 0);
	assert_int_equal(bench_keys_capacity(&k), 4096);
	for (i = 0; i < 4096; i++)
		bench_key(&k, i, seen[i]);
	qsort(seen, 4096, sizeof(seen[0]), (int (*)(const void *, const void *))strcmp);
	for (i = 1; i < 4096; i++)
		assert_true(strcmp(seen[i - 1], seen[i]) < 0);
	assert_int_equal(bench_keys_init(&k, "r", 10, 0), 0);
	for (i = 0; i < 3000; i += 7) {
		bench_key(&k, i, key);
		assert_true(strcmp(prev, key) < 0);
		strcpy(prev, key);
	}
}

/* RFC 4648 §10 test vectors. */
static void test_base64(void **state)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					  "Zm9vYmFy"};
	char buf[16];
	size_t i;

	for (i = 0; i < 7; i++) {
		assert_int_equal(bench_base64(in[i], strlen(in[i]), buf), strlen(out[i]));
		assert_string_equal(buf, out[i]);
	}
}

static void make_job(struct bench_job *job, enum bench_target target, enum bench_kind kind)
{
	memset(job, 0, sizeof(*job));
	job->target = target;
	job->kind = kind;
	assert_int_equal(bench_keys_init(&job->keys, "k", 3, 0), 0);
	job->value = "vv";
	job->value_len = 2;
	job->batch = 2;
	job->nkeys = 10;
	assert_int_equal(bench_job_prepare(job), 0);
}

static void assert_request(const struct bench_job *job, const struct bench_op *op,
			   const char *want)
{
	struct cli_buf b = CLI_BUF_INIT;

	assert_int_equal(bench_build_request(job, op, "h:1", &b), 0);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	cli_buf_free(&b);
}

/* The requests of each operation, for kvfs and for etcd's JSON gateway. */
static void test_requests(void **state)
{
	struct bench_job job;
	struct bench_op put = {BENCH_OP_PUT, 1, 1, 0, 0}, get = {BENCH_OP_GET, 2, 1, 0, 0};
	struct bench_op batch = {BENCH_OP_BATCH, 3, 2, 0, 0}, range = {BENCH_OP_RANGE, 4, 2, 0, 0};

	make_job(&job, BENCH_TARGET_KVFS, BENCH_PUT);
	assert_request(&job, &put,
		       "PUT /kv?key=k01 HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
		       "Content-Length: 4\r\n\r\n\"vv\"");
	job.stale = 1;
	assert_request(&job, &get, "GET /kv?key=k02&consistency=stale HTTP/1.1\r\nHost: h:1\r\n\r\n");
	assert_request(&job, &batch,
		       "PUT /kv/batch HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
		       "Content-Length: 65\r\n\r\n"
		       "{\"items\":[{\"key\":\"k03\",\"value\":\"vv\"},{\"key\":\"k04\",\"value\":\"vv\"}]}");
	assert_request(&job, &range,
		       "POST /kv/range?consistency=stale HTTP/1.1\r\nHost: h:1\r\n"
		       "Content-Type: application/json\r\nContent-Length: 45\r\n\r\n"
		       "{\"start_key\":\"k04\",\"end_key\":\"k05\",\"limit\":2}");
	bench_job_close(&job);

	make_job(&job, BENCH_TARGET_ETCD, BENCH_PUT);
	assert_request(&job, &put,
		       "POST /v3/kv/put HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
		       "Content-Length: 29\r\n\r\n{\"key\":\"azAx\",\"value\":\"dnY=\"}");
	job.stale = 1;
	assert_request(&job, &get,
		       "POST /v3/kv/range HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
		       "Content-Length: 34\r\n\r\n{\"key\":\"azAy\",\"serializable\":true}");
	assert_request(&job, &batch,
		       "POST /v3/kv/txn HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
		       "Content-Length: 105\r\n\r\n{\"success\":[{\"request_put\":{\"key\":\"azAz\","
		       "\"value\":\"dnY=\"}},{\"request_put\":{\"key\":\"azA0\",\"value\":\"dnY=\"}}]}");
	/* etcd's range_end is excluded: key 6 ends the range of keys 4 and 5. */
	assert_request(&job, &range,
		       "POST /v3/kv/range HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
		       "Content-Length: 63\r\n\r\n{\"key\":\"azA0\",\"range_end\":\"azA2\",\"limit\":2,"
		       "\"serializable\":true}");
	bench_job_close(&job);
}

/* Replies are judged per operation: statuses, missing keys, short ranges,
 * and the value comparison of a read-back. */
static void test_check_reply(void **state)
{
	struct bench_job job;
	struct bench_op get = {BENCH_OP_GET, 2, 1, 0, 0}, ver = {BENCH_OP_GET, 2, 1, 0, 1};
	struct bench_op range = {BENCH_OP_RANGE, 4, 2, 0, 0}, put = {BENCH_OP_PUT, 1, 1, 0, 0};
	const char *two = "{\"results\":[{\"key\":\"k04\",\"value\":\"vv\"},{\"key\":\"k05\"}]}";

	make_job(&job, BENCH_TARGET_KVFS, BENCH_GET);
	assert_int_equal(bench_check_reply(&job, &get, 200, "{}", 2), -1);
	assert_int_equal(bench_check_reply(&job, &get, 404, "", 0), BENCH_ERR_NOTFOUND);
	assert_int_equal(bench_check_reply(&job, &put, 503, "", 0), BENCH_ERR_HTTP);
	assert_int_equal(bench_check_reply(&job, &ver, 200, "{\"value\":\"vv\"}", 14), -1);
	assert_int_equal(bench_check_reply(&job, &ver, 200, "{\"value\":\"vx\"}", 14),
			 BENCH_ERR_MISMATCH);
	assert_int_equal(bench_check_reply(&job, &range, 200, two, strlen(two)), -1);
	assert_int_equal(bench_check_reply(&job, &range, 200, "{\"results\":[]}", 14),
			 BENCH_ERR_SHORT);
	/* one result, whose value holds the text of another: still short */
	const char *one = "{\"results\":[{\"key\":\"k04\",\"value\":\"{\\\"key\\\":1}\"}]}";
	assert_int_equal(bench_check_reply(&job, &range, 200, one, strlen(one)), BENCH_ERR_SHORT);
	bench_job_close(&job);

	make_job(&job, BENCH_TARGET_ETCD, BENCH_GET);
	assert_int_equal(bench_check_reply(&job, &get, 200, "{\"header\":{}}", 13),
			 BENCH_ERR_NOTFOUND);
	assert_int_equal(bench_check_reply(&job, &ver, 200,
					   "{\"kvs\":[{\"key\":\"azAy\",\"value\":\"dnY=\"}]}", 39),
			 -1);
	assert_int_equal(bench_check_reply(&job, &ver, 200,
					   "{\"kvs\":[{\"key\":\"azAy\",\"value\":\"dnZ=\"}]}", 39),
			 BENCH_ERR_MISMATCH);
	const char *kvs = "{\"header\":{},\"kvs\":[{\"key\":\"azA0\"},{\"key\":\"azA1\"}]}";
	assert_int_equal(bench_check_reply(&job, &range, 200, kvs, strlen(kvs)), -1);
	assert_int_equal(bench_check_reply(&job, &range, 200, kvs, strlen(kvs) / 2), BENCH_ERR_SHORT);
	bench_job_close(&job);
}

/* The reason of an error reply: kvfs's detail (a string, or the msg of a
 * 422's first item), etcd's message or error; none in anything else; a
 * long one cut between characters. */
static void test_reply_reason(void **state)
{
	char why[BENCH_REASON_LEN], longer[480];
	const char *k503 = "{\"detail\":\"Timed out waiting for commit\"}";
	const char *k422 = "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\"],"
			   "\"msg\":\"Field required\",\"input\":null}]}";
	const char *etcd = "{\"error\":\"etcdserver: too many operations in txn request\","
			   "\"code\":3,\"message\":\"etcdserver: too many operations in txn "
			   "request\"}";
	const char *ctl = "{\"detail\":\"two\\nlines\\u001b[31m\\u007f!\"}";
	const char *none[] = {"", "<html>503</html>", "{\"detail\":7}", "[\"detail\"]",
			      "{\"detail\":\"cut"};
	size_t i, n;

	(void)state;
	assert_int_equal(bench_reply_reason(k503, strlen(k503), why), 28);
	assert_string_equal(why, "Timed out waiting for commit");
	bench_reply_reason(k422, strlen(k422), why);
	assert_string_equal(why, "Field required");
	bench_reply_reason(etcd, strlen(etcd), why);
	assert_string_equal(why, "etcdserver: too many operations in txn request");
	bench_reply_reason("{\"error\":\"boom\"}", 16, why);
	assert_string_equal(why, "boom");
	/* control characters would reach the terminal */
	bench_reply_reason(ctl, strlen(ctl), why);
	assert_string_equal(why, "two lines [31m !");
	for (i = 0; i < sizeof none / sizeof *none; i++) {
		strcpy(why, "x");
		assert_int_equal(bench_reply_reason(none[i], strlen(none[i]), why), 0);
		assert_string_equal(why, "");
	}
	assert_int_equal(bench_reply_reason(NULL, 0, why), 0);
	/* 200 two-byte characters: cut to the whole ones that fit */
	strcpy(longer, "{\"detail\":\"");
	for (i = 0; i < 200; i++)
		strcat(longer, "\xc3\xa9");
	strcat(longer, "\"}");
	n = bench_reply_reason(longer, strlen(longer), why);
	assert_int_equal(n, (BENCH_REASON_LEN - 1) / 2 * 2);
	assert_int_equal(strlen(why), n);
	assert_memory_equal(why + n - 2, "\xc3\xa9", 2);
}

/* Reasons are counted per status and text, merged across threads; past
 * BENCH_REASONS distinct ones only counted. Both reports show them: the
 * text report in its errors line, the JSON one escaped and parseable. */
static void test_result_reasons(void **state)
{
	struct bench_result a, b;
	struct bench_job job;
	struct bench_opts o;
	struct cli_buf out = CLI_BUF_INIT;
	char text[32], *txt = NULL;
	size_t txt_len = 0;
	unsigned i;
	FILE *f;
	json_t *doc, *reasons;

	(void)state;
	assert_int_equal(bench_result_init(&a), 0);
	assert_int_equal(bench_result_init(&b), 0);
	bench_result_reason(&a, 503, "Too many pending requests", 2);
	bench_result_reason(&a, 503, "Timed out waiting for commit", 1);
	bench_result_reason(&a, 503, "Too many pending requests", 1);
	bench_result_reason(&b, 500, "Too many pending requests", 4); /* another status */
	bench_result_reason(&b, 503, "Timed out waiting for commit", 5);
	bench_result_reason(&b, 413, "", 2); /* a reply that named none */
	assert_int_equal(bench_result_merge(&a, &b), 0);
	assert_int_equal(a.nreasons, 4);
	assert_int_equal(a.reasons[0].count, 3);
	assert_int_equal(a.reasons[1].count, 6);
	assert_int_equal(a.reasons[2].status, 500);
	assert_int_equal(a.reasons[2].count, 4);
	a.status[413] = 2;
	a.status[500] = 4;
	a.status[503] = 9;
	a.err[BENCH_ERR_HTTP] = 15;
	a.err[BENCH_ERR_TIMEOUT] = 1;

	memset(&o, 0, sizeof(o));
	make_job(&job, BENCH_TARGET_KVFS, BENCH_PUT);
	f = open_memstream(&txt, &txt_len);
	assert_non_null(f);
	bench_report_text(f, &o, &job, "http://x", &a, NULL);
	fclose(f);
	assert_non_null(strstr(txt, "  errors      HTTP 413: 2, HTTP 500: 4 (Too many pending "
				    "requests: 4), HTTP 503: 9 (Too many pending requests: 3, "
				    "Timed out waiting for commit: 6), timeout: 1\n"));
	free(txt);

	/* past the table: counted, and said so */
	for (i = 0; i < BENCH_REASONS + 1; i++) {
		snprintf(text, sizeof(text), "reason \"%u\"\\", i);
		bench_result_reason(&a, 503, text, 1);
	}
	assert_int_equal(a.nreasons, BENCH_REASONS);
	assert_int_equal(a.reasons_other, 5);
	txt = NULL;
	f = open_memstream(&txt, &txt_len);
	assert_non_null(f);
	bench_report_text(f, &o, &job, "http://x", &a, NULL);
	fclose(f);
	assert_non_null(strstr(txt, "reason \"27\"\\: 1), other reasons: 5, timeout: 1\n"));
	free(txt);

	assert_int_equal(bench_report_json(&out, &o, &job, "http://x", &a, NULL), 0);
	doc = json_loadb(out.data, out.len, 0, NULL);
	assert_non_null(doc);
	reasons = json_object_get(json_object_get(doc, "errors"), "http_reasons");
	assert_int_equal(json_array_size(reasons), BENCH_REASONS);
	assert_string_equal(json_string_value(json_object_get(json_array_get(reasons, 1),
							      "detail")),
			    "Timed out waiting for commit");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(reasons, 1), "count")),
			 6);
	assert_string_equal(json_string_value(json_object_get(json_array_get(reasons, 3),
							      "detail")),
			    "");
	assert_string_equal(json_string_value(json_object_get(json_array_get(reasons, 4),
							      "detail")),
			    "reason \"0\"\\");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "errors"),
							    "http_reasons_other")),
			 5);
	json_decref(doc);
	cli_buf_free(&out);
	bench_job_close(&job);
	bench_result_close(&a);
	bench_result_close(&b);
}

/* Unique writes take consecutive indices; verify visits exactly the set
 * bits; preload covers the key space in batches, the last one short. */
static void test_generators(void **state)
{
	struct bench_job job;
	struct bench_gen g;
	struct bench_op op;
	uint64_t bits[2] = {0x8001, 0x1};
	uint64_t want[] = {0, 15, 64};
	int i;

	make_job(&job, BENCH_TARGET_KVFS, BENCH_PUT);
	job.nkeys = 0;
	job.count = 3;
	bench_gen_init(&g, &job, 0, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(bench_gen_next(&g, &job, &op), 0);
		assert_int_equal(op.index, (uint64_t)i);
	}
	assert_int_equal(bench_gen_next(&g, &job, &op), -ENODATA);
	bench_job_close(&job);

	make_job(&job, BENCH_TARGET_KVFS, BENCH_VERIFY);
	job.verify_bits = bits;
	job.verify_nbits = 128;
	bench_gen_init(&g, &job, 0, 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(bench_gen_next(&g, &job, &op), 0);
		assert_int_equal(op.index, want[i]);
		assert_true(op.verify);
	}
	assert_int_equal(bench_gen_next(&g, &job, &op), -ENODATA);
	bench_job_close(&job);

	/* Batches of new keys take fresh numbers; over a key space (--keys)
	 * they start anywhere their batch fits, and reach both ends. */
	make_job(&job, BENCH_TARGET_KVFS, BENCH_BATCH);
	job.nkeys = 0;
	job.batch = 4;
	job.count = 3;
	bench_gen_init(&g, &job, 0, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(bench_gen_next(&g, &job, &op), 0);
		assert_int_equal(op.index, (uint64_t)i * 4);
		assert_int_equal(op.n, 4);
	}
	bench_job_close(&job);
	make_job(&job, BENCH_TARGET_KVFS, BENCH_BATCH);
	job.batch = 4; /* over 10 keys: starts 0 to 6 */
	job.count = 2000;
	bench_gen_init(&g, &job, 0, 2000);
	{
		unsigned seen = 0;
		for (i = 0; i < 2000; i++) {
			assert_int_equal(bench_gen_next(&g, &job, &op), 0);
			assert_int_equal(op.n, 4);
			assert_true(op.index + op.n <= job.nkeys);
			seen |= 1u << op.index;
		}
		assert_int_equal(seen, 0x7f);
	}
	bench_job_close(&job);

	make_job(&job, BENCH_TARGET_KVFS, BENCH_PRELOAD);
	job.batch = 4;
	bench_gen_init(&g, &job, 0, 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(bench_gen_next(&g, &job, &op), 0);
		assert_int_equal(op.index, (uint64_t)i * 4);
		assert_int_equal(op.n, i < 2 ? 4 : 2);
	}
	assert_int_equal(bench_gen_next(&g, &job, &op), -ENODATA);
	bench_job_close(&job);
}

/* ------------------------------------------------------------- options -- */

struct opt_state {
	struct bench_opts o;
	char err[256];
};

static int on_opt(void *ud, int id, const char *arg)
{
	struct opt_state *s = ud;

	return bench_opts_set(&s->o, id, arg, s->err, sizeof(s->err));
}

/* Parses argv (NULL-terminated) with the bench table; returns the parser's
 * result or the cross-check's. */
static int parse_bench(struct opt_state *s, char **argv)
{
	struct cli_opt_handler h = {on_opt, s};
	char err[256];
	int argc = 0, rc;

	while (argv[argc])
		argc++;
	bench_opts_defaults(&s->o);
	s->err[0] = '\0';
	rc = cli_args_parse(argc, argv, bench_optspecs, NULL, 0, &h, err, sizeof(err));
	if (rc < 0)
		return rc;
	return bench_opts_check(&s->o, s->err, sizeof(s->err));
}

/* Defaults, and every option reaching its field. */
static void test_options(void **state)
{
	char *none[] = {NULL};
	char *all[] = {"-w", "mixed", "-c8", "--threads=2", "-n", "500", "--rate", "1000",
		       "--read-ratio", "0.5", "-k", "100", "--key-size", "12", "--value-size", "7",
		       "--dist", "zipf", "--zipf-theta", "0.8", "--consistency", "stale",
		       "--spread", "--target", "etcd", "--verify", "--plot", "x.png",
		       "--key-prefix", "p-", "--seed", "9", "--busy-poll", "0", NULL};
	char *range[] = {"-w", "range", "-b", "50", NULL};
	struct opt_state s;

	assert_int_equal(parse_bench(&s, none), 0);
	assert_int_equal(s.o.kind, BENCH_PUT);
	assert_int_equal(s.o.conns, 16);
	assert_true(s.o.duration_s == 10);
	assert_int_equal(s.o.keys, 0);
	assert_int_equal(s.o.busy_poll_us, BENCH_BUSY_POLL_DEFAULT_US);
	assert_false(s.o.consistency_set);

	assert_int_equal(parse_bench(&s, all), 0);
	assert_int_equal(s.o.kind, BENCH_MIXED);
	assert_int_equal(s.o.conns, 8);
	assert_int_equal(s.o.threads, 2);
	assert_int_equal(s.o.count, 500);
	assert_true(s.o.duration_s == 0);
	assert_true(s.o.rate == 1000);
	assert_true(s.o.read_ratio == 0.5);
	assert_int_equal(s.o.keys, 100);
	assert_int_equal(s.o.key_size, 12);
	assert_int_equal(s.o.value_size, 7);
	assert_int_equal(s.o.dist, BENCH_ZIPF);
	assert_true(s.o.theta == 0.8);
	assert_true(s.o.stale && s.o.spread && s.o.verify);
	assert_int_equal(s.o.target, BENCH_TARGET_ETCD);
	assert_string_equal(s.o.plot, "x.png");
	assert_string_equal(s.o.prefix, "p-");
	assert_int_equal(s.o.seed, 9);
	assert_int_equal(s.o.busy_poll_us, 0);
	assert_true(s.o.consistency_set);

	assert_int_equal(parse_bench(&s, range), 0);
	assert_int_equal(s.o.keys, 10000); /* read workloads get a key space */
	assert_int_equal(s.o.batch, 50);
}

/* Bad values and contradictory options are refused with a message. */
static void test_option_errors(void **state)
{
	static const struct {
		const char *argv[6];
		const char *msg;
	} cases[] = {
		{{"-w", "scan"}, "bad --workload 'scan'"},
		{{"-c", "0"}, "bad --connections '0'"},
		{{"--threads", "65"}, "bad --threads"},
		{{"--busy-poll", "-1"}, "bad --busy-poll"},
		{{"--busy-poll", "100001"}, "bad --busy-poll"},
		{{"--read-ratio", "1.5"}, "bad --read-ratio"},
		{{"--zipf-theta", "1"}, "bad --zipf-theta"},
		{{"--consistency", "eventual"}, "bad --consistency"},
		{{"--target", "redis"}, "bad --target"},
		{{"--dist", "normal"}, "bad --dist"},
		{{"-n", "5", "-d", "1"}, "not both"},
		{{"-w", "range", "-k", "10", "-b", "20"}, "at least --batch-size"},
		{{"-w", "get", "--verify"}, "--verify applies"},
		{{"-w", "batch", "-k", "5"}, "batch: --keys (5) must be at least --batch-size"},
		{{"--key-prefix", "a b"}, "bad --key-prefix"},
		{{"--key-size", "4", "--key-prefix", "abcd"}, "bad --key-prefix"},
		{{"--seed-suite", "-d", "3"}, "--seed-suite"},
	};
	struct opt_state s;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[7] = {NULL};
		int j;

		for (j = 0; j < 6 && cases[i].argv[j]; j++)
			argv[j] = (char *)cases[i].argv[j];
		assert_int_equal(parse_bench(&s, argv), -EINVAL);
		if (!strstr(s.err, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, s.err, cases[i].msg);
	}
}

/* Endpoints: host, port, IPv6 literal, the Host header; https refused. */
static void test_endpoints(void **state)
{
	struct bench_endpoint ep;

	assert_int_equal(bench_endpoint_parse("http://127.0.0.1:8000", &ep), 0);
	assert_string_equal(ep.host, "127.0.0.1");
	assert_string_equal(ep.port, "8000");
	assert_string_equal(ep.hostport, "127.0.0.1:8000");
	assert_int_equal(bench_endpoint_parse("http://db/", &ep), 0);
	assert_string_equal(ep.port, "80");
	assert_string_equal(ep.hostport, "db");
	assert_int_equal(bench_endpoint_parse("http://[::1]:2379", &ep), 0);
	assert_string_equal(ep.host, "::1");
	assert_string_equal(ep.hostport, "[::1]:2379");
	assert_int_equal(bench_endpoint_parse("https://a:1", &ep), -EINVAL);
	assert_int_equal(bench_endpoint_parse("http://a:x", &ep), -EINVAL);
	assert_int_equal(bench_endpoint_parse("http://:1", &ep), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_oracle),  cmocka_unit_test(test_hist_edges),
		cmocka_unit_test(test_zipf),         cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_parse_length), cmocka_unit_test(test_parse_chunked),
		cmocka_unit_test(test_parse_framing), cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_keys),         cmocka_unit_test(test_base64),
		cmocka_unit_test(test_requests),     cmocka_unit_test(test_check_reply),
		cmocka_unit_test(test_reply_reason), cmocka_unit_test(test_result_reasons),
		cmocka_unit_test(test_generators),   cmocka_unit_test(test_options),
		cmocka_unit_test(test_option_errors), cmocka_unit_test(test_endpoints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
