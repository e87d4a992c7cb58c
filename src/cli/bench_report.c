/*
 * How `kvfs bench` shows a run: a short text report, the same as one JSON
 * object, and the gnuplot chart (throughput and latency per second, and the
 * latency distribution by percentile, in the manner of HdrHistogram's
 * percentile plots, so the tail is visible).
 *
 * Latencies are kept in nanoseconds and shown in milliseconds; only
 * successful operations have a latency, failures are counted by kind.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/bench.h"
#include "cli/output.h"

static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99.9"};

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static const char *target_name(enum bench_target t)
{
	return t == BENCH_TARGET_ETCD ? "etcd" : "kvfs";
}

/* "HTTP 503: 4 (Too many pending requests: 3, Timed out waiting for
 * commit: 1), timeout: 2" or "none". */
static void errors_text(FILE *out, const struct bench_result *r)
{
	const char *sep = "";
	int i;
	unsigned j, n;

	for (i = 0; i < 600; i++) {
		if (!r->status[i])
			continue;
		fprintf(out, "%sHTTP %d: %llu", sep, i, (unsigned long long)r->status[i]);
		sep = ", ";
		for (j = n = 0; j < r->nreasons; j++)
			if (r->reasons[j].status == i && r->reasons[j].text[0])
				fprintf(out, "%s%s: %llu", n++ ? ", " : " (", r->reasons[j].text,
					(unsigned long long)r->reasons[j].count);
		if (n)
			fputc(')', out);
	}
	if (r->reasons_other)
		fprintf(out, "%sother reasons: %llu", sep, (unsigned long long)r->reasons_other);
	for (i = 0; i < BENCH_ERR__COUNT; i++)
		if (i != BENCH_ERR_HTTP && r->err[i]) {
			fprintf(out, "%s%s: %llu", sep, bench_err_name(i),
				(unsigned long long)r->err[i]);
			sep = ", ";
		}
	if (!*sep)
		fputs("none", out);
}

void bench_report_text(FILE *out, const struct bench_opts *o, const struct bench_job *job,
		       const char *endpoint, const struct bench_result *r,
		       const struct bench_verify *v)
{
	double el = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
	size_t i;

	fprintf(out, "%s on %s %s, %u connection%s, %u thread%s, ", bench_kind_name(job->kind),
		target_name(job->target), endpoint, job->conns, job->conns == 1 ? "" : "s",
		job->threads, job->threads == 1 ? "" : "s");
	if (job->rate > 0)
		fprintf(out, "open loop at %.0f ops/s\n", job->rate);
	else
		fprintf(out, "closed loop\n");
	fprintf(out, "  keys        %s, %u-byte keys, %zu-byte values", 
		job->nkeys ? (job->dist == BENCH_ZIPF ? "zipf" : "uniform") : "new keys",
		(unsigned)(job->keys.prefix_len + job->keys.digits), job->value_len);
	if (job->nkeys)
		fprintf(out, " over %llu keys", (unsigned long long)job->nkeys);
	if (job->kind == BENCH_BATCH || job->kind == BENCH_RANGE)
		fprintf(out, ", %u keys per request", job->batch);
	if (job->kind == BENCH_MIXED)
		fprintf(out, ", %.0f%% reads", job->read_ratio * 100);
	if (job->kind != BENCH_PUT && job->kind != BENCH_BATCH)
		fprintf(out, ", %s reads", job->stale ? "stale" : "linearizable");
	fprintf(out, "\n  operations  %llu ok, %llu failed in %.2f s\n",
		(unsigned long long)r->ops, (unsigned long long)r->errors, r->elapsed_s);
	fprintf(out, "  throughput  %.1f ops/s", (double)r->ops / el);
	if (job->kind == BENCH_BATCH || job->kind == BENCH_RANGE)
		fprintf(out, ", %.1f keys/s", (double)r->items / el);
	fprintf(out, "\n  latency ms  min %.3f", ms(r->lat.total ? r->lat.min : 0));
	for (i = 0; i < 4; i++)
		fprintf(out, "  %s %.3f", pct_names[i], ms(bench_hist_percentile(&r->lat, pcts[i])));
	fprintf(out, "  max %.3f  mean %.3f\n", ms(r->lat.max), bench_hist_mean(&r->lat) / 1e6);
	fputs("  errors      ", out);
	errors_text(out, r);
	fputc('\n', out);
	if (r->err[BENCH_ERR_UNSENT])
		fprintf(out, "  note        the target rate was not sustained: %llu operations "
			     "were due but never sent\n",
			(unsigned long long)r->err[BENCH_ERR_UNSENT]);
	if (v && v->done) {
		fprintf(out, "  verify      %llu acknowledged keys read back: %llu missing, %llu "
			     "with another value, %llu read errors\n",
			(unsigned long long)v->checked, (unsigned long long)v->missing,
			(unsigned long long)v->mismatched, (unsigned long long)v->errors);
		if (v->missing || v->mismatched) {
			char key[96];

			bench_key(&job->keys, v->first_missing, key);
			fprintf(out, "  LOST WRITES: this is not a valid result (first: %s)\n", key);
		}
	}
	(void)o;
}

/* s as a JSON string. */
static int json_text(struct cli_buf *out, const char *s)
{
	json_t *j = json_string(s); /* NULL for text that is not UTF-8: written "" */
	int rc = j ? cli_json_compact(j, out) : cli_buf_puts(out, "\"\"");

	json_decref(j);
	return rc;
}

int bench_report_json(struct cli_buf *out, const struct bench_opts *o,
		      const struct bench_job *job, const char *endpoint,
		      const struct bench_result *r, const struct bench_verify *v)
{
	double el = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
	int rc, i, first = 1;

	rc = cli_buf_printf(out,
			    "{\"workload\":\"%s\",\"target\":\"%s\",\"endpoint\":\"%s\","
			    "\"connections\":%u,\"threads\":%u,\"mode\":\"%s\",\"rate\":%.3f,"
			    "\"keys\":%llu,\"distribution\":\"%s\",\"key_size\":%u,"
			    "\"value_size\":%zu,\"batch_size\":%u,\"read_ratio\":%.3f,"
			    "\"consistency\":\"%s\",\"elapsed_s\":%.6f,\"ops\":%llu,\"items\":%llu,"
			    "\"ops_per_s\":%.3f,\"items_per_s\":%.3f,\"errors\":{\"total\":%llu",
			    bench_kind_name(job->kind), target_name(job->target), endpoint,
			    job->conns, job->threads, job->rate > 0 ? "open" : "closed", job->rate,
			    (unsigned long long)job->nkeys,
			    job->dist == BENCH_ZIPF ? "zipf" : "uniform",
			    (unsigned)(job->keys.prefix_len + job->keys.digits), job->value_len,
			    job->batch, job->read_ratio, job->stale ? "stale" : "linearizable",
			    r->elapsed_s, (unsigned long long)r->ops, (unsigned long long)r->items,
			    (double)r->ops / el, (double)r->items / el,
			    (unsigned long long)r->errors);
	for (i = 0; !rc && i < BENCH_ERR__COUNT; i++)
		rc = cli_buf_printf(out, ",\"%s\":%llu", bench_err_name(i),
				    (unsigned long long)r->err[i]);
	if (!rc)
		rc = cli_buf_puts(out, ",\"http_status\":{");
	for (i = 0; !rc && i < 600; i++)
		if (r->status[i]) {
			rc = cli_buf_printf(out, "%s\"%d\":%llu", first ? "" : ",", i,
					    (unsigned long long)r->status[i]);
			first = 0;
		}
	if (!rc)
		rc = cli_buf_puts(out, "},\"http_reasons\":[");
	for (i = 0; !rc && i < (int)r->nreasons; i++) {
		rc = cli_buf_printf(out, "%s{\"status\":%d,\"detail\":", i ? "," : "",
				    r->reasons[i].status);
		if (!rc)
			rc = json_text(out, r->reasons[i].text);
		if (!rc)
			rc = cli_buf_printf(out, ",\"count\":%llu}",
					    (unsigned long long)r->reasons[i].count);
	}
	if (!rc)
		rc = cli_buf_printf(out, "],\"http_reasons_other\":%llu",
				    (unsigned long long)r->reasons_other);
	if (!rc)
		rc = cli_buf_printf(out, "},\"latency_ms\":{\"min\":%.3f",
				    ms(r->lat.total ? r->lat.min : 0));
	for (i = 0; !rc && i < 4; i++)
		rc = cli_buf_printf(out, ",\"%s\":%.3f", pct_names[i],
				    ms(bench_hist_percentile(&r->lat, pcts[i])));
	if (!rc)
		rc = cli_buf_printf(out, ",\"max\":%.3f,\"mean\":%.3f}", ms(r->lat.max),
				    bench_hist_mean(&r->lat) / 1e6);
	if (!rc && v && v->done)
		rc = cli_buf_printf(out,
				    ",\"verify\":{\"checked\":%llu,\"missing\":%llu,"
				    "\"mismatched\":%llu,\"errors\":%llu}",
				    (unsigned long long)v->checked, (unsigned long long)v->missing,
				    (unsigned long long)v->mismatched, (unsigned long long)v->errors);
	if (!rc)
		rc = cli_buf_putc(out, '}');
	(void)o;
	return rc ? -ENOMEM : 0;
}

/* Percentile spectrum points: p = 1 - 10^(-x/10) for x = 0, 0.1, ... */
static void write_spectrum(FILE *f, const struct bench_hist *h)
{
	double x;

	for (x = 0; x <= 50; x += 0.5) {
		double p = 100.0 * (1.0 - 1.0 / pow(10.0, x / 10.0));

		if (p <= 0)
			p = 1e-9;
		fprintf(f, "%.6f %.4f\n", 1.0 / (1.0 - p / 100.0),
			ms(bench_hist_percentile(h, p)));
		if (h->total && 1.0 / (1.0 - p / 100.0) > (double)h->total)
			break;
	}
}

int bench_plot(const char *file, const char *title, const struct bench_result *r, char *err,
	       size_t err_len)
{
	size_t n = strlen(file), i;
	char *dat = malloc(n + 5), *gp = malloc(n + 4), *spec = malloc(n + 6);
	int svg = n > 4 && strcmp(file + n - 4, ".svg") == 0;
	FILE *f = NULL;
	int rc = 0, status;
	pid_t pid;

	if (!dat || !gp || !spec) {
		rc = -ENOMEM;
		snprintf(err, err_len, "out of memory");
		goto out;
	}
	sprintf(dat, "%s.dat", file);
	sprintf(spec, "%s.pdat", file);
	sprintf(gp, "%s.gp", file);

	f = fopen(dat, "w");
	if (!f)
		goto err_io;
	fprintf(f, "# second ops_per_s errors_per_s p50_ms p99_ms max_ms\n");
	for (i = 0; i < r->nseries; i++) {
		const struct bench_interval *iv = &r->series[i];

		fprintf(f, "%zu %llu %llu %.4f %.4f %.4f\n", i, (unsigned long long)iv->ops,
			(unsigned long long)iv->errors, ms(bench_hist_percentile(&iv->lat, 50)),
			ms(bench_hist_percentile(&iv->lat, 99)), ms(iv->lat.max));
	}
	if (fclose(f))
		goto err_io;
	f = fopen(spec, "w");
	if (!f)
		goto err_io;
	fprintf(f, "# 1/(1-p) latency_ms\n");
	write_spectrum(f, &r->lat);
	if (fclose(f))
		goto err_io;
	f = fopen(gp, "w");
	if (!f)
		goto err_io;
	fprintf(f,
		"# kvfs bench chart; run: gnuplot '%s'\n"
		"set terminal %s size 1000,900\n"
		"set output '%s'\n"
		"set multiplot layout 3,1 title '%s'\n"
		"set grid\n"
		"set xlabel 'time (s)'\n"
		"set ylabel 'operations/s'\n"
		"plot '%s' using 1:2 with linespoints title 'ok', '' using 1:3 with lines "
		"title 'errors'\n"
		"set ylabel 'latency (ms)'\n"
		"set logscale y\n"
		"plot '%s' using 1:4 with lines title 'p50', '' using 1:5 with lines title "
		"'p99', '' using 1:6 with lines title 'max'\n"
		"set xlabel 'percentile'\n"
		"set logscale x\n"
		"set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, '99.99%%%%' 10000, "
		"'99.999%%%%' 100000)\n"
		"plot '%s' using 1:2 with lines title 'latency by percentile'\n"
		"unset multiplot\n",
		gp, svg ? "svg" : "pngcairo", file, title, dat, dat, spec);
	if (fclose(f))
		goto err_io;
	f = NULL;

	pid = fork();
	if (pid < 0)
		goto err_io;
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", gp, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		goto err_io;
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) {
		rc = -ENOENT;
		snprintf(err, err_len, "gnuplot not found; the script is %s", gp);
	} else if (WEXITSTATUS(status)) {
		rc = -EIO;
		snprintf(err, err_len, "gnuplot failed on %s", gp);
	}
	goto out;

err_io:
	rc = -errno;
	snprintf(err, err_len, "cannot write the chart: %s", strerror(errno));
	if (f)
		fclose(f);
out:
	free(dat);
	free(gp);
	free(spec);
	return rc;
}
