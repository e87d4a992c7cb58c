/*
 * Metrics registry and Prometheus text exposition. Families are written in
 * registration order of their first member; members of a family registered
 * later are gathered under the same HELP/TYPE header.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/metrics.h"

const double metric_latency_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					  0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
					  1,      2.5,     5,      10};
const int metric_latency_n = sizeof metric_latency_buckets / sizeof metric_latency_buckets[0];

enum metric_type { M_COUNTER, M_GAUGE, M_GAUGE_FN, M_COUNTER_FN, M_HISTOGRAM, M_COLLECTOR };

struct metric {
	const char *name, *help, *labels;
	enum metric_type type;
	void *p;
	double (*fn)(void *ud);
	void (*collect)(struct byte_buf *out, void *ud);
};

static struct metric *reg;
static size_t n_reg, cap_reg;

static int add(const char *name, const char *help, const char *labels, enum metric_type t,
	       void *p, double (*fn)(void *))
{
	if (n_reg == cap_reg) {
		size_t nc = cap_reg ? cap_reg * 2 : 64;
		struct metric *r = realloc(reg, nc * sizeof *r);
		if (!r)
			return -ENOMEM;
		reg = r;
		cap_reg = nc;
	}
	reg[n_reg++] = (struct metric){name, help, labels, t, p, fn, NULL};
	return 0;
}

int metrics_collector(void (*fn)(struct byte_buf *out, void *ud), void *ud)
{
	int rc = add("", "", NULL, M_COLLECTOR, ud, NULL);
	if (rc == 0)
		reg[n_reg - 1].collect = fn;
	return rc;
}

int metrics_counter(const char *name, const char *help, const char *labels,
		    struct metric_counter *c)
{
	return add(name, help, labels, M_COUNTER, c, NULL);
}

int metrics_gauge(const char *name, const char *help, const char *labels, struct metric_gauge *g)
{
	return add(name, help, labels, M_GAUGE, g, NULL);
}

int metrics_gauge_fn(const char *name, const char *help, const char *labels,
		     double (*fn)(void *ud), void *ud)
{
	return add(name, help, labels, M_GAUGE_FN, ud, fn);
}

int metrics_counter_fn(const char *name, const char *help, const char *labels,
		       double (*fn)(void *ud), void *ud)
{
	return add(name, help, labels, M_COUNTER_FN, ud, fn);
}

int metrics_histogram(const char *name, const char *help, const char *labels,
		      struct metric_histogram *h)
{
	return add(name, help, labels, M_HISTOGRAM, h, NULL);
}

void metrics_reset(void)
{
	free(reg);
	reg = NULL;
	n_reg = cap_reg = 0;
}

void metric_histogram_init(struct metric_histogram *h, const double *bounds, int n)
{
	memset(h, 0, sizeof *h);
	h->bounds = bounds;
	h->n_bounds = n > METRIC_MAX_BUCKETS ? METRIC_MAX_BUCKETS : n;
}

void metric_observe(struct metric_histogram *h, double s)
{
	int i = 0;
	while (i < h->n_bounds && s > h->bounds[i])
		i++;
	__atomic_fetch_add(&h->counts[i], 1, __ATOMIC_RELAXED);
	if (s > 0)
		__atomic_fetch_add(&h->sum_ns, (uint64_t)(s * 1e9), __ATOMIC_RELAXED);
}

static void printf_buf(struct byte_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_buf(struct byte_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		bb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static const char *type_name(enum metric_type t)
{
	switch (t) {
	case M_COUNTER:
	case M_COUNTER_FN:
		return "counter";
	case M_HISTOGRAM:
		return "histogram";
	default:
		return "gauge";
	}
}

/* Formats a sample value the way Prometheus clients do (integers plainly). */
static void fmt_value(char *out, size_t cap, double v)
{
	if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
		snprintf(out, cap, "%lld", (long long)v);
	else {
		/* The shortest of %.15g..%.17g that reads back as v. */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(out, cap, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				break;
		}
	}
}

static void write_sample(struct byte_buf *b, const char *name, const char *suffix,
			 const char *labels, const char *extra, double v)
{
	char val[64];
	fmt_value(val, sizeof val, v);
	int has = labels && *labels, hasx = extra && *extra;
	printf_buf(b, "%s%s%s%s%s%s%s %s\n", name, suffix, (has || hasx) ? "{" : "",
		   has ? labels : "", (has && hasx) ? "," : "", hasx ? extra : "",
		   (has || hasx) ? "}" : "", val);
}

static void write_metric(struct byte_buf *b, const struct metric *m)
{
	switch (m->type) {
	case M_COUNTER:
		write_sample(b, m->name, "", m->labels, NULL,
			     (double)metric_get((struct metric_counter *)m->p));
		break;
	case M_GAUGE:
		write_sample(b, m->name, "", m->labels, NULL,
			     (double)__atomic_load_n(&((struct metric_gauge *)m->p)->v,
						     __ATOMIC_RELAXED));
		break;
	case M_GAUGE_FN:
	case M_COUNTER_FN:
		write_sample(b, m->name, "", m->labels, NULL, m->fn(m->p));
		break;
	case M_COLLECTOR:
		break;
	case M_HISTOGRAM: {
		struct metric_histogram *h = m->p;
		uint64_t cum = 0;
		char le[64], num[48];
		for (int i = 0; i <= h->n_bounds; i++) {
			cum += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
			if (i < h->n_bounds) {
				fmt_value(num, sizeof num, h->bounds[i]);
				snprintf(le, sizeof le, "le=\"%s\"", num);
			} else {
				snprintf(le, sizeof le, "le=\"+Inf\"");
			}
			write_sample(b, m->name, "_bucket", m->labels, le, (double)cum);
		}
		write_sample(b, m->name, "_sum", m->labels, NULL,
			     (double)__atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED) / 1e9);
		write_sample(b, m->name, "_count", m->labels, NULL, (double)cum);
		break;
	}
	}
}

void metrics_family(struct byte_buf *out, const char *name, const char *type, const char *help)
{
	printf_buf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(struct byte_buf *out, const char *name, const char *labels, double v)
{
	write_sample(out, name, "", labels, NULL, v);
}

void metrics_histogram_samples(struct byte_buf *out, const char *name, const char *labels,
			       struct metric_histogram *h)
{
	struct metric m = {name, "", labels, M_HISTOGRAM, h, NULL, NULL};
	write_metric(out, &m);
}

void metrics_write(struct byte_buf *b)
{
	for (size_t i = 0; i < n_reg; i++) {
		int seen = 0;
		if (reg[i].type == M_COLLECTOR) {
			reg[i].collect(b, reg[i].p);
			continue;
		}
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(reg[j].name, reg[i].name) == 0;
		if (seen)
			continue;
		printf_buf(b, "# HELP %s %s\n# TYPE %s %s\n", reg[i].name, reg[i].help, reg[i].name,
			   type_name(reg[i].type));
		for (size_t j = i; j < n_reg; j++)
			if (strcmp(reg[j].name, reg[i].name) == 0)
				write_metric(b, &reg[j]);
	}
}

/* Process metrics, read from /proc/self as the Prometheus client libraries do. */
static double process_start;

static double proc_rss(void *ud)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return ud ? (double)pages * (double)sysconf(_SC_PAGESIZE)
		  : (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static double proc_cpu(void *ud)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static double proc_fds(void *ud)
{
	DIR *d = opendir("/proc/self/fd");
	double n = 0;
	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own descriptor */
}

static double proc_max_fds(void *ud)
{
	struct rlimit rl;
	return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : 0;
}

static double proc_start(void *ud)
{
	return process_start;
}

int metrics_register_process(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	process_start = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	int rc = 0;
	rc |= metrics_gauge_fn("process_resident_memory_bytes", "Resident memory size in bytes.",
			       NULL, proc_rss, NULL);
	rc |= metrics_gauge_fn("process_virtual_memory_bytes", "Virtual memory size in bytes.",
			       NULL, proc_rss, (void *)1);
	rc |= metrics_counter_fn("process_cpu_seconds_total",
				 "Total user and system CPU time spent in seconds.", NULL, proc_cpu,
				 NULL);
	rc |= metrics_gauge_fn("process_open_fds", "Number of open file descriptors.", NULL,
			       proc_fds, NULL);
	rc |= metrics_gauge_fn("process_max_fds", "Maximum number of open file descriptors.", NULL,
			       proc_max_fds, NULL);
	rc |= metrics_gauge_fn("process_start_time_seconds",
			       "Start time of the process since unix epoch in seconds.", NULL,
			       proc_start, NULL);
	return rc ? -ENOMEM : 0;
}
