/*
 * What the bench engine sends and how it judges the replies: random numbers
 * and the Zipf generator, key and value texts, the choice of the next
 * operation of each workload, the HTTP request of each operation for kvfs
 * (REST API, kvfs-api(7)) and for etcd's v3 JSON gateway, and the check of
 * each reply.
 *
 * Keys are prefix + hex of a bijection of an index, so a run can name any
 * key by a number: unique writes take the next number of a shared counter,
 * reads pick a number by the distribution, and the keys a run acknowledged
 * fit in a bitmap that --verify walks. The value is one text per run (it
 * holds the run's seed), so a read-back also tells a value left by an
 * earlier run from the one this run wrote. etcd wants base64 keys and
 * values: the value's base64 is computed once, a key's (a few bytes) per
 * request.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/bench.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_rng_next(struct bench_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double bench_rng_unit(struct bench_rng *r)
{
	return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t bench_rng_below(struct bench_rng *r, uint64_t n)
{
	/* Lemire's multiply-shift; the bias (n / 2^64) does not matter here. */
	return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* Gray et al. 1994, "Quickly generating billion-record synthetic
 * databases", §6: zeta(n) = sum 1/i^theta, eta = (1 - (2/n)^(1-theta)) /
 * (1 - zeta(2)/zeta(n)), rank = n * (eta*u - eta + 1)^(1/(1-theta)). */
int bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta)
{
	double zeta2;
	uint64_t i;

	if (n < 1 || !(theta > 0.0 && theta < 1.0))
		return -EINVAL;
	z->n = n;
	z->theta = theta;
	z->zetan = 0;
	for (i = 1; i <= n; i++)
		z->zetan += 1.0 / pow((double)i, theta);
	zeta2 = 1.0 + pow(0.5, theta);
	z->alpha = 1.0 / (1.0 - theta);
	z->half_pow_theta = 1.0 + pow(0.5, theta);
	z->eta = n > 1 ? (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / z->zetan) : 0;
	return 0;
}

uint64_t bench_zipf_next(const struct bench_zipf *z, double u)
{
	double uz = u * z->zetan;
	uint64_t k;

	if (uz < 1.0 || z->n == 1)
		return 0;
	if (uz < z->half_pow_theta)
		return 1;
	k = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
	return k < z->n ? k : z->n - 1;
}

/* ----------------------------------------------------------------- keys -- */

int bench_keys_init(struct bench_keys *k, const char *prefix, unsigned key_size, int scramble)
{
	size_t len = strlen(prefix), i;

	memset(k, 0, sizeof(*k));
	if (len >= sizeof(k->prefix) || len >= key_size || key_size - len > 16)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		char c = prefix[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._~/-", c)))
			return -EINVAL;
	}
	memcpy(k->prefix, prefix, len + 1);
	k->prefix_len = len;
	k->digits = key_size - (unsigned)len;
	k->scramble = scramble;
	return 0;
}

uint64_t bench_keys_capacity(const struct bench_keys *k)
{
	return k->digits >= 16 ? UINT64_MAX : (uint64_t)1 << (4 * k->digits);
}

/* A bijection on the low `bits` bits: multiplications by odd constants and
 * xor-shifts are each invertible modulo 2^bits. */
static uint64_t scramble(uint64_t x, unsigned bits)
{
	uint64_t mask = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
	unsigned sh = bits / 2 ? bits / 2 : 1;

	x &= mask;
	x = (x * 0x9e3779b97f4a7c15ull) & mask;
	x ^= x >> sh;
	x = (x * 0xbf58476d1ce4e5b9ull) & mask;
	x ^= x >> sh;
	x = (x * 0x94d049bb133111ebull) & mask;
	x ^= x >> sh;
	return x;
}

size_t bench_key(const struct bench_keys *k, uint64_t index, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned bits = 4 * k->digits, i;
	index += k->base;
	uint64_t v = k->scramble ? scramble(index, bits) : index;

	memcpy(out, k->prefix, k->prefix_len);
	for (i = k->digits; i > 0; i--) {
		out[k->prefix_len + i - 1] = hex[v & 15];
		v >>= 4;
	}
	out[k->prefix_len + k->digits] = '\0';
	return k->prefix_len + k->digits;
}

size_t bench_base64(const void *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = in;
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* ------------------------------------------------------------------ job -- */

/* How many key numbers pick() chooses from: a range, or a batch over a key
 * space, starts where its whole batch fits. */
static uint64_t pick_space(const struct bench_job *job)
{
	int block = job->kind == BENCH_RANGE || (job->kind == BENCH_BATCH && job->nkeys);

	return block ? job->nkeys - job->batch + 1 : job->nkeys;
}

int bench_job_prepare(struct bench_job *job)
{
	size_t n = job->value_len;
	uint64_t space;

	job->value_json = malloc(n + 3);
	job->value_b64 = malloc(4 * ((n + 2) / 3) + 1);
	if (!job->value_json || !job->value_b64)
		return -ENOMEM;
	/* The value is plain [A-Za-z0-9] text (bench_opts): no JSON escapes. */
	job->value_json[0] = '"';
	memcpy(job->value_json + 1, job->value, n);
	job->value_json[n + 1] = '"';
	job->value_json[n + 2] = '\0';
	bench_base64(job->value, n, job->value_b64);
	space = pick_space(job);
	if (job->dist == BENCH_ZIPF && job->nkeys && job->kind != BENCH_PRELOAD &&
	    job->kind != BENCH_VERIFY)
		return bench_zipf_init(&job->zipf, space, job->zipf.theta);
	return 0;
}

void bench_job_close(struct bench_job *job)
{
	free(job->value_json);
	free(job->value_b64);
	job->value_json = NULL;
	job->value_b64 = NULL;
}

void bench_gen_init(struct bench_gen *g, const struct bench_job *job, unsigned thread,
		    uint64_t quota)
{
	memset(g, 0, sizeof(*g));
	g->rng.s = job->seed ^ (0xd1b54a32d192ed03ull * (thread + 1));
	g->quota = quota;
}

/* A key index (or range start) by the job's distribution. */
static uint64_t pick(struct bench_gen *g, const struct bench_job *job)
{
	uint64_t n = pick_space(job);

	if (job->dist == BENCH_ZIPF)
		return bench_zipf_next(&job->zipf, bench_rng_unit(&g->rng));
	return bench_rng_below(&g->rng, n);
}

static int next_verify(struct bench_gen *g, struct bench_job *job, struct bench_op *op)
{
	uint64_t words = (job->verify_nbits + 63) / 64;

	while (!g->word) {
		uint64_t w = atomic_fetch_add(&job->cursor, 1);

		if (w >= words)
			return -ENODATA;
		g->word = job->verify_bits[w];
		g->word_base = w * 64;
	}
	op->type = BENCH_OP_GET;
	op->index = g->word_base + (uint64_t)__builtin_ctzll(g->word);
	op->n = 1;
	op->verify = 1;
	g->word &= g->word - 1;
	return 0;
}

int bench_gen_next(struct bench_gen *g, struct bench_job *job, struct bench_op *op)
{
	uint64_t block;

	if (atomic_load_explicit(&job->stop, memory_order_relaxed))
		return -ENODATA;
	if (job->count && !g->quota)
		return -ENODATA;
	memset(op, 0, sizeof(*op));
	op->n = 1;
	switch (job->kind) {
	case BENCH_PUT:
		op->type = BENCH_OP_PUT;
		op->index = job->nkeys ? pick(g, job)
				       : atomic_fetch_add_explicit(&job->next_unique, 1,
								   memory_order_relaxed);
		op->record = job->record_acks;
		break;
	case BENCH_GET:
		op->type = BENCH_OP_GET;
		op->index = pick(g, job);
		break;
	case BENCH_MIXED:
		if (bench_rng_unit(&g->rng) < job->read_ratio) {
			op->type = BENCH_OP_GET;
		} else {
			op->type = BENCH_OP_PUT;
			op->record = job->record_acks;
		}
		op->index = pick(g, job);
		break;
	case BENCH_BATCH:
		op->type = BENCH_OP_BATCH;
		op->n = job->batch;
		/* Over a key space (--keys): batch-size consecutive key numbers
		 * from a random start, which the key mapping spreads over the
		 * space, written again and again; else new keys. */
		op->index = job->nkeys ? pick(g, job)
				       : job->batch * atomic_fetch_add_explicit(&job->next_unique, 1,
										memory_order_relaxed);
		op->record = job->record_acks;
		break;
	case BENCH_PRELOAD:
		block = atomic_fetch_add(&job->cursor, 1);
		if (block >= (job->nkeys + job->batch - 1) / job->batch)
			return -ENODATA;
		op->type = BENCH_OP_BATCH;
		op->index = block * job->batch;
		op->n = job->nkeys - op->index < job->batch ? (unsigned)(job->nkeys - op->index)
							     : job->batch;
		break;
	case BENCH_RANGE:
		op->type = BENCH_OP_RANGE;
		op->index = pick(g, job);
		op->n = job->batch;
		break;
	case BENCH_VERIFY:
		if (next_verify(g, job, op))
			return -ENODATA;
		break;
	}
	if (job->count)
		g->quota--;
	return 0;
}

/* ------------------------------------------------------------- requests -- */

struct keytext {
	char text[96];
	size_t len;
};

static void key_text(const struct bench_job *job, uint64_t index, struct keytext *k, int b64)
{
	char raw[96];
	size_t n = bench_key(&job->keys, index, raw);

	if (b64)
		k->len = bench_base64(raw, n, k->text);
	else
		memcpy(k->text, raw, (k->len = n) + 1);
}

#define PUTS(s)                                                                                    \
	do {                                                                                       \
		if (cli_buf_puts(out, (s)))                                                        \
			return -ENOMEM;                                                            \
	} while (0)
#define PUTN(s, n)                                                                                 \
	do {                                                                                       \
		if (cli_buf_append(out, (s), (n)))                                                 \
			return -ENOMEM;                                                            \
	} while (0)

/* The JSON body of op at the end of out. */
static int build_body(const struct bench_job *job, const struct bench_op *op, struct cli_buf *out)
{
	int etcd = job->target == BENCH_TARGET_ETCD;
	struct keytext k, e;
	char num[32];
	unsigned i;

	switch (op->type) {
	case BENCH_OP_PUT:
		if (!etcd) {
			PUTS(job->value_json);
			return 0;
		}
		key_text(job, op->index, &k, 1);
		PUTS("{\"key\":\"");
		PUTN(k.text, k.len);
		PUTS("\",\"value\":\"");
		PUTS(job->value_b64);
		PUTS("\"}");
		return 0;
	case BENCH_OP_GET:
		key_text(job, op->index, &k, 1);
		PUTS("{\"key\":\"");
		PUTN(k.text, k.len);
		PUTS(job->stale ? "\",\"serializable\":true}" : "\"}");
		return 0;
	case BENCH_OP_BATCH:
		PUTS(etcd ? "{\"success\":[" : "{\"items\":[");
		for (i = 0; i < op->n; i++) {
			key_text(job, op->index + i, &k, etcd);
			PUTS(i ? ",{" : "{");
			if (etcd)
				PUTS("\"request_put\":{");
			PUTS("\"key\":\"");
			PUTN(k.text, k.len);
			PUTS("\",\"value\":");
			if (etcd) {
				PUTS("\"");
				PUTS(job->value_b64);
				PUTS("\"}}");
			} else {
				PUTS(job->value_json);
				PUTS("}");
			}
		}
		PUTS("]}");
		return 0;
	case BENCH_OP_RANGE:
		key_text(job, op->index, &k, etcd);
		/* kvfs: both ends included; etcd: range_end excluded. */
		key_text(job, op->index + op->n - (etcd ? 0 : 1), &e, etcd);
		PUTS(etcd ? "{\"key\":\"" : "{\"start_key\":\"");
		PUTN(k.text, k.len);
		PUTS(etcd ? "\",\"range_end\":\"" : "\",\"end_key\":\"");
		PUTN(e.text, e.len);
		snprintf(num, sizeof(num), "\",\"limit\":%u", op->n);
		PUTS(num);
		PUTS(etcd && job->stale ? ",\"serializable\":true}" : "}");
		return 0;
	}
	return 0;
}

int bench_build_request(const struct bench_job *job, const struct bench_op *op, const char *host,
			struct cli_buf *out)
{
	static const char *const etcd_paths[] = {"/v3/kv/put", "/v3/kv/range", "/v3/kv/txn",
						 "/v3/kv/range"};
	int etcd = job->target == BENCH_TARGET_ETCD;
	const char *stale = job->stale ? "consistency=stale" : "";
	size_t start = out->len, blen;
	char head[512];
	struct keytext k;
	int hlen;

	if (!etcd && op->type == BENCH_OP_GET) {
		key_text(job, op->index, &k, 0);
		hlen = snprintf(head, sizeof(head), "GET /kv?key=%s%s%s HTTP/1.1\r\nHost: %s\r\n\r\n",
				k.text, *stale ? "&" : "", stale, host);
		PUTN(head, (size_t)hlen);
		return 0;
	}
	if (build_body(job, op, out))
		return -ENOMEM;
	blen = out->len - start;
	if (etcd) {
		hlen = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\n", etcd_paths[op->type]);
	} else if (op->type == BENCH_OP_PUT) {
		key_text(job, op->index, &k, 0);
		hlen = snprintf(head, sizeof(head), "PUT /kv?key=%s HTTP/1.1\r\n", k.text);
	} else if (op->type == BENCH_OP_BATCH) {
		hlen = snprintf(head, sizeof(head), "PUT /kv/batch HTTP/1.1\r\n");
	} else {
		hlen = snprintf(head, sizeof(head), "POST /kv/range%s%s HTTP/1.1\r\n",
				*stale ? "?" : "", stale);
	}
	hlen += snprintf(head + hlen, sizeof(head) - (size_t)hlen,
			 "Host: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			 host, blen);
	/* Put the head before the body that is already there. */
	if (cli_buf_append(out, head, (size_t)hlen))
		return -ENOMEM;
	memmove(out->data + start + hlen, out->data + start, blen);
	memcpy(out->data + start, head, (size_t)hlen);
	return 0;
}

/* ---------------------------------------------------------------- reply -- */

static size_t count_substr(const char *s, size_t n, const char *needle)
{
	size_t len = strlen(needle), count = 0;
	const char *p = s, *end = s + n;

	while (p < end) {
		const char *q = memmem(p, (size_t)(end - p), needle, len);

		if (!q)
			break;
		count++;
		p = q + len;
	}
	return count;
}

/* The objects of a range reply that start with a "key" member: results in
 * kvfs's reply, kvs in etcd's. memchr finds each '{' (one per object, as
 * none can be inside a JSON string) far faster than memmem finds a
 * five-byte needle, which showed in the latency of large ranges. */
static size_t count_key_objects(const char *s, size_t n)
{
	const char *p = s, *end = s + n;
	size_t count = 0;

	while ((p = memchr(p, '{', (size_t)(end - p))) != NULL) {
		p++;
		if ((size_t)(end - p) >= 5 && memcmp(p, "\"key\"", 5) == 0)
			count++;
	}
	return count;
}

/* Whether body holds exactly one member introduced by `name` and it is
 * `value` followed by `after`. */
static int value_is(const char *body, size_t n, const char *name, const char *value,
		    const char *after)
{
	size_t ln = strlen(name), lv = strlen(value), la = strlen(after);
	const char *p;

	if (count_substr(body, n, name) != 1)
		return 0;
	p = (const char *)memmem(body, n, name, ln) + ln;
	if ((size_t)(body + n - p) < lv + la)
		return 0;
	return memcmp(p, value, lv) == 0 && memcmp(p + lv, after, la) == 0;
}

size_t bench_reply_reason(const char *body, size_t len, char out[BENCH_REASON_LEN])
{
	json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *d = json_object_get(doc, "detail");
	const char *s = json_string_value(d);
	size_t n, i;

	if (!s && json_is_array(d))
		s = json_string_value(json_object_get(json_array_get(d, 0), "msg"));
	if (!s)
		s = json_string_value(json_object_get(doc, "message"));
	if (!s)
		s = json_string_value(json_object_get(doc, "error"));
	n = s ? strlen(s) : 0;
	if (n > BENCH_REASON_LEN - 1) {
		n = BENCH_REASON_LEN - 1;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--; /* s[n] continues a character: cut before it */
	}
	if (n)
		memcpy(out, s, n);
	out[n] = '\0';
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = ' '; /* the text report goes to a terminal */
	json_decref(doc);
	return n;
}

int bench_check_reply(const struct bench_job *job, const struct bench_op *op, int status,
		      const char *body, size_t body_len)
{
	int etcd = job->target == BENCH_TARGET_ETCD;

	if (status == 404 && !etcd && op->type == BENCH_OP_GET)
		return BENCH_ERR_NOTFOUND;
	if (status != 200)
		return BENCH_ERR_HTTP;
	switch (op->type) {
	case BENCH_OP_GET:
		if (etcd && !memmem(body, body_len, "\"kvs\"", 5))
			return BENCH_ERR_NOTFOUND;
		if (!op->verify)
			return -1;
		if (etcd)
			return value_is(body, body_len, "\"value\":\"", job->value_b64, "\"") ? -1
											: BENCH_ERR_MISMATCH;
		return value_is(body, body_len, "\"value\":", job->value_json, "") ? -1
										 : BENCH_ERR_MISMATCH;
	case BENCH_OP_RANGE:
		return count_key_objects(body, body_len) < op->n ? BENCH_ERR_SHORT : -1;
	case BENCH_OP_PUT:
	case BENCH_OP_BATCH:
		if (etcd && memmem(body, body_len, "\"error\"", 7))
			return BENCH_ERR_ETCD;
		return -1;
	}
	return -1;
}
