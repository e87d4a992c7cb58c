/*
 * A log-linear latency histogram in the manner of HdrHistogram: exact
 * counts below 2^S, then each power of two split into 2^(S-1) equal
 * buckets. The bucket of a value is found with one count-leading-zeros and
 * two shifts, so recording costs a few nanoseconds and memory is fixed
 * whatever the number of values, while every percentile is known within a
 * relative error of 2^-(S-1) (0.2 % at S = 10) — which a mean-and-stddev
 * summary or a fixed-width histogram cannot give across the microsecond to
 * second range a benchmark sees.
 *
 * Bucket index of v, with h the position of v's highest set bit:
 *   v < 2^S:  v
 *   else:     (shift << (S-1)) + (v >> shift), shift = h - S + 1
 * (v >> shift is in [2^(S-1), 2^S), so consecutive octaves are contiguous).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"

static size_t bucket_of(unsigned s, uint64_t v)
{
	unsigned h, shift;

	if (v >> s == 0)
		return (size_t)v;
	h = 63u - (unsigned)__builtin_clzll(v);
	shift = h - s + 1;
	return ((size_t)shift << (s - 1)) + (size_t)(v >> shift);
}

/* Lowest value of bucket i and its width. */
static uint64_t bucket_low(unsigned s, size_t i, uint64_t *width)
{
	unsigned shift;

	if (i < ((size_t)1 << s)) {
		*width = 1;
		return i;
	}
	shift = (unsigned)(i >> (s - 1)) - 1;
	*width = (uint64_t)1 << shift;
	return (uint64_t)(i - ((size_t)shift << (s - 1))) << shift;
}

int bench_hist_init(struct bench_hist *h, unsigned sub_bits)
{
	memset(h, 0, sizeof(*h));
	if (sub_bits < 1 || sub_bits > 16 || sub_bits >= BENCH_HIST_MAX_BITS)
		return -EINVAL;
	h->sub_bits = sub_bits;
	h->nbuckets = bucket_of(sub_bits, ((uint64_t)1 << BENCH_HIST_MAX_BITS) - 1) + 1;
	h->counts = calloc(h->nbuckets, sizeof(*h->counts));
	if (!h->counts)
		return -ENOMEM;
	h->min = UINT64_MAX;
	return 0;
}

void bench_hist_close(struct bench_hist *h)
{
	free(h->counts);
	h->counts = NULL;
	h->nbuckets = 0;
}

void bench_hist_record(struct bench_hist *h, uint64_t value)
{
	const uint64_t top = ((uint64_t)1 << BENCH_HIST_MAX_BITS) - 1;

	if (value > top)
		value = top;
	h->counts[bucket_of(h->sub_bits, value)]++;
	h->total++;
	h->sum += (double)value;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

int bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	size_t i;

	if (dst->sub_bits != src->sub_bits)
		return -EINVAL;
	if (!src->total)
		return 0;
	for (i = 0; i < dst->nbuckets; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	return 0;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
	uint64_t rank, seen = 0, low, width, v;
	size_t i;

	if (!h->total)
		return 0;
	if (p >= 100.0)
		return h->max;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->total);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < h->nbuckets; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			break;
	}
	if (i == h->nbuckets) /* NEVER: the counts add up to total */
		return h->max;
	low = bucket_low(h->sub_bits, i, &width);
	v = low + (width - 1) / 2;
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

double bench_hist_mean(const struct bench_hist *h)
{
	return h->total ? h->sum / (double)h->total : 0.0;
}
