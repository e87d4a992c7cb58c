/*
 * A small Prometheus metrics registry: counters, gauges (stored or computed by
 * a callback at scrape time) and histograms with fixed buckets. Updates are
 * lock-free atomics, callable from any thread; registration happens at start
 * up (not thread-safe) and metrics live for the whole process.
 *
 * Exposition (metrics_write) follows the Prometheus text format 0.0.4: one
 * HELP and TYPE line per family, samples of a family together.
 */
#ifndef KVFS_COMMON_METRICS_H
#define KVFS_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

struct metric_counter {
	uint64_t v; /* atomic */
};

struct metric_gauge {
	int64_t v; /* atomic, scaled by 1 (integers) */
};

#define METRIC_MAX_BUCKETS 20

struct metric_histogram {
	const double *bounds; /* upper bounds, ascending, borrowed (static) */
	int n_bounds;
	uint64_t counts[METRIC_MAX_BUCKETS + 1]; /* atomic; last = +Inf */
	uint64_t sum_ns;                          /* atomic, sum in units of 1e-9 */
};

/* Standard bucket sets (seconds). */
extern const double metric_latency_buckets[];
extern const int metric_latency_n;

static inline void metric_inc(struct metric_counter *c)
{
	__atomic_fetch_add(&c->v, 1, __ATOMIC_RELAXED);
}
static inline void metric_add(struct metric_counter *c, uint64_t n)
{
	__atomic_fetch_add(&c->v, n, __ATOMIC_RELAXED);
}
static inline uint64_t metric_get(const struct metric_counter *c)
{
	return __atomic_load_n(&c->v, __ATOMIC_RELAXED);
}
static inline void metric_set(struct metric_gauge *g, int64_t v)
{
	__atomic_store_n(&g->v, v, __ATOMIC_RELAXED);
}

void metric_histogram_init(struct metric_histogram *h, const double *bounds, int n);
/* Records one observation of `seconds`. */
void metric_observe(struct metric_histogram *h, double seconds);

/* Registration. name must be a valid metric name, labels either NULL or a
 * label set without braces (`operation="put",status="success"`). All strings
 * are borrowed and must be static. Families with the same name must share
 * help text and type. Returns 0 or -ENOMEM. */
int metrics_counter(const char *name, const char *help, const char *labels,
		    struct metric_counter *c);
int metrics_gauge(const char *name, const char *help, const char *labels, struct metric_gauge *g);
int metrics_gauge_fn(const char *name, const char *help, const char *labels,
		     double (*fn)(void *ud), void *ud);
int metrics_counter_fn(const char *name, const char *help, const char *labels,
		       double (*fn)(void *ud), void *ud);
int metrics_histogram(const char *name, const char *help, const char *labels,
		      struct metric_histogram *h);

/* A collector writes whole families itself (HELP, TYPE and samples), for
 * metrics whose label sets change at run time (per-peer figures). It is
 * called at scrape time from the scraping thread. */
int metrics_collector(void (*fn)(struct byte_buf *out, void *ud), void *ud);

/* Helpers for collectors: one family header, one sample. */
void metrics_family(struct byte_buf *out, const char *name, const char *type, const char *help);
void metrics_sample(struct byte_buf *out, const char *name, const char *labels, double v);
/* The _bucket/_sum/_count samples of h under name with labels. */
void metrics_histogram_samples(struct byte_buf *out, const char *name, const char *labels,
			       struct metric_histogram *h);

/* Appends the exposition of every registered metric to out. */
void metrics_write(struct byte_buf *out);

/* Drops every registration (tests, shutdown). */
void metrics_reset(void);

/* Registers the standard process metrics (process_resident_memory_bytes,
 * process_cpu_seconds_total, process_open_fds, process_start_time_seconds,
 * process_virtual_memory_bytes, process_max_fds). */
int metrics_register_process(void);

#endif
