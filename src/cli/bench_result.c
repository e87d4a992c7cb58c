/*
 * The outcome of a bench run: a precise latency histogram of the successful
 * operations, counters of failures by kind and by HTTP status, the bitmap of
 * acknowledged keys --verify reads back, and a per-second series (coarse
 * histogram per second) for the chart.
 *
 * Each engine thread fills its own result without locks; the threads' results
 * are merged once at the end.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"

static const char *const err_names[BENCH_ERR__COUNT] = {
	[BENCH_ERR_CONNECT] = "connect",   [BENCH_ERR_TIMEOUT] = "timeout",
	[BENCH_ERR_CLOSED] = "closed",     [BENCH_ERR_PROTOCOL] = "protocol",
	[BENCH_ERR_HTTP] = "http",         [BENCH_ERR_NOTFOUND] = "not_found",
	[BENCH_ERR_SHORT] = "short_range", [BENCH_ERR_ETCD] = "etcd_error",
	[BENCH_ERR_MISMATCH] = "mismatch", [BENCH_ERR_UNSENT] = "unsent",
};

const char *bench_err_name(enum bench_err e)
{
	return (unsigned)e < BENCH_ERR__COUNT ? err_names[e] : "?";
}

int bench_result_init(struct bench_result *r)
{
	memset(r, 0, sizeof(*r));
	return bench_hist_init(&r->lat, BENCH_HIST_PRECISE);
}

void bench_result_close(struct bench_result *r)
{
	size_t i;

	bench_hist_close(&r->lat);
	for (i = 0; i < r->nseries; i++)
		bench_hist_close(&r->series[i].lat);
	free(r->series);
	free(r->acked);
	memset(r, 0, sizeof(*r));
}

static int grow_series(struct bench_result *r, size_t n)
{
	struct bench_interval *s;
	size_t i;

	if (n <= r->nseries)
		return 0;
	s = realloc(r->series, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	r->series = s;
	for (i = r->nseries; i < n; i++) {
		s[i].ops = s[i].errors = 0;
		if (bench_hist_init(&s[i].lat, BENCH_HIST_COARSE))
			return -ENOMEM; /* r->nseries covers the ones set up */
		r->nseries = i + 1;
	}
	return 0;
}

static int grow_acked(struct bench_result *r, uint64_t words)
{
	uint64_t *a, n;

	if (words <= r->acked_words)
		return 0;
	n = r->acked_words ? r->acked_words : 1024;
	while (n < words)
		n *= 2;
	a = realloc(r->acked, n * sizeof(*a));
	if (!a)
		return -ENOMEM;
	memset(a + r->acked_words, 0, (n - r->acked_words) * sizeof(*a));
	r->acked = a;
	r->acked_words = n;
	return 0;
}

int bench_result_ack(struct bench_result *r, uint64_t i)
{
	if (grow_acked(r, i / 64 + 1))
		return -ENOMEM;
	r->acked[i / 64] |= (uint64_t)1 << (i % 64);
	return 0;
}

uint64_t bench_result_acked(const struct bench_result *r)
{
	uint64_t i, n = 0;

	for (i = 0; i < r->acked_words; i++)
		n += (uint64_t)__builtin_popcountll(r->acked[i]);
	return n;
}

int bench_result_add(struct bench_result *r, const struct bench_job *job, uint64_t t_ns,
		     uint64_t latency_ns, int err, unsigned items)
{
	struct bench_interval *iv = NULL;
	size_t sec = (size_t)(t_ns / 1000000000u);

	if (job->keep_series) {
		if (grow_series(r, sec + 1))
			return -ENOMEM;
		iv = &r->series[sec];
	}
	if (err >= 0) {
		r->errors++;
		r->err[err]++;
		if (iv)
			iv->errors++;
		return 0;
	}
	r->ops++;
	r->items += items;
	bench_hist_record(&r->lat, latency_ns);
	if (iv) {
		iv->ops++;
		bench_hist_record(&iv->lat, latency_ns);
	}
	return 0;
}

void bench_result_reason(struct bench_result *r, int status, const char *text, uint64_t count)
{
	unsigned i;

	for (i = 0; i < r->nreasons; i++)
		if (r->reasons[i].status == status && !strcmp(r->reasons[i].text, text)) {
			r->reasons[i].count += count;
			return;
		}
	if (r->nreasons == BENCH_REASONS) {
		r->reasons_other += count;
		return;
	}
	r->reasons[i].status = status;
	snprintf(r->reasons[i].text, sizeof(r->reasons[i].text), "%s", text);
	r->reasons[i].count = count;
	r->nreasons++;
}

int bench_result_merge(struct bench_result *dst, const struct bench_result *src)
{
	uint64_t i;
	int rc;

	rc = bench_hist_merge(&dst->lat, &src->lat);
	if (rc)
		return rc;
	dst->ops += src->ops;
	dst->items += src->items;
	dst->errors += src->errors;
	for (i = 0; i < BENCH_ERR__COUNT; i++)
		dst->err[i] += src->err[i];
	for (i = 0; i < 600; i++)
		dst->status[i] += src->status[i];
	for (i = 0; i < src->nreasons; i++)
		bench_result_reason(dst, src->reasons[i].status, src->reasons[i].text,
				    src->reasons[i].count);
	dst->reasons_other += src->reasons_other;
	if (src->has_lost && (!dst->has_lost || src->lost_index < dst->lost_index)) {
		dst->has_lost = 1;
		dst->lost_index = src->lost_index;
	}
	if (src->elapsed_s > dst->elapsed_s)
		dst->elapsed_s = src->elapsed_s;
	if (grow_acked(dst, src->acked_words))
		return -ENOMEM;
	for (i = 0; i < src->acked_words; i++)
		dst->acked[i] |= src->acked[i];
	if (grow_series(dst, src->nseries))
		return -ENOMEM;
	for (i = 0; i < src->nseries; i++) {
		dst->series[i].ops += src->series[i].ops;
		dst->series[i].errors += src->series[i].errors;
		rc = bench_hist_merge(&dst->series[i].lat, &src->series[i].lat);
		if (rc)
			return rc;
	}
	return 0;
}
