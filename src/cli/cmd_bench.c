/*
 * kvfs bench: load generator and benchmark of a kvfs cluster (or of etcd,
 * for comparison), and the seed's benchmark side by side with its published
 * numbers.
 *
 * A measured run is up to three engine runs: the preload of the key space
 * (get, mixed, range), the workload itself, and with --verify the read-back
 * of every key the workload saw acknowledged. Only the middle one is
 * measured. The pieces are in bench_*.c; this file only strings them
 * together and prints.
 *
 * SIGINT during a run ends it early (in-flight requests are awaited) and the
 * partial results are still reported.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/http.h"

#define ETCD_MAX_TXN_OPS 128 /* etcd's --max-txn-ops default */

struct bench_env {
	struct cli_ctx *ctx;
	const struct bench_opts *o;
	struct bench_endpoint *eps;
	size_t neps;
	char label[300]; /* endpoint(s), for the reports */
	char *value;
	FILE *progress;
	int range_loaded; /* seed suite: the range keys are in place */
};

/* One run of the workload, with its preload and verification. */
struct bench_test {
	enum bench_kind kind;
	unsigned conns, batch;
	uint64_t count, nkeys;
	double duration_s, rate;
	const char *prefix;
	unsigned key_size;
	int preload;
};

static struct bench_job *volatile running;

static double ms_of(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void on_sigint(int sig)
{
	struct bench_job *job = running;

	(void)sig;
	if (job)
		atomic_store(&job->stop, 1);
}

static void job_setup(struct bench_job *job, const struct bench_env *env,
		      const struct bench_test *t, enum bench_kind kind)
{
	const struct bench_opts *o = env->o;

	memset(job, 0, sizeof(*job));
	job->target = o->target;
	job->kind = kind;
	/* Keys are spread over the key space, except for range, which needs them
	 * in index order (bench_work.c). */
	bench_keys_init(&job->keys, t->prefix, t->key_size, t->kind != BENCH_RANGE);
	if ((kind == BENCH_BATCH || kind == BENCH_PUT) && !t->nkeys) {
		/* New keys: from --key-start, or an index of the run's own
		 * (splitmix64 of the seed, batch size and connections, so that
		 * the seed suite's rows do not rewrite each other's keys). */
		uint64_t z = (o->seed ^ ((uint64_t)t->batch << 32) ^ t->conns) +
			     0x9e3779b97f4a7c15ull;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		job->keys.base = o->has_key_start ? o->key_start : z ^ (z >> 31);
	}
	job->value = env->value;
	job->value_len = o->value_size;
	job->batch = t->batch;
	job->nkeys = t->nkeys;
	job->dist = o->dist;
	job->zipf.theta = o->theta;
	job->read_ratio = o->read_ratio;
	job->stale = o->stale;
	job->conns = t->conns;
	job->threads = o->threads;
	job->busy_poll_us = o->busy_poll_us;
	job->spread = o->spread;
	job->timeout_s = env->ctx->timeout_s;
	job->seed = o->seed;
}

/* Runs job; CLI_EXIT_OK or the printed failure. */
static int engine(struct bench_env *env, struct bench_job *job, struct bench_result *res,
		  const char *label)
{
	char err[512];
	int rc;

	rc = bench_job_prepare(job);
	if (rc)
		return cli_fail(env->ctx, CLI_EXIT_ERROR, "bench: %s",
				rc == -ENOMEM ? "out of memory" : "bad Zipf parameters");
	running = job;
	rc = bench_engine_run(job, env->eps, env->neps, res, env->progress, label, err,
			      sizeof(err));
	running = NULL;
	if (rc)
		return cli_fail(env->ctx, rc == -EHOSTUNREACH ? CLI_EXIT_UNAVAILABLE : CLI_EXIT_ERROR,
				"bench: %s", err);
	return CLI_EXIT_OK;
}

/* Writes keys 0 .. nkeys-1 of the test in batches; every one must succeed. */
static int preload(struct bench_env *env, const struct bench_test *t)
{
	struct bench_test p = *t;
	struct bench_job job;
	struct bench_result res;
	int status;

	p.batch = env->o->target == BENCH_TARGET_ETCD ? 100 : 1000;
	p.conns = t->conns < 8 ? t->conns : 8;
	job_setup(&job, env, t, BENCH_PRELOAD);
	job.batch = p.batch;
	job.conns = p.conns;
	if (bench_result_init(&res)) {
		bench_job_close(&job);
		return cli_fail(env->ctx, CLI_EXIT_ERROR, "out of memory");
	}
	status = engine(env, &job, &res, "preload");
	if (status == CLI_EXIT_OK && (res.errors || res.items != t->nkeys)) {
		/* the reason most replies gave, which usually says what to do */
		const struct bench_reason *top = NULL;
		char why[BENCH_REASON_LEN + 32] = "";
		unsigned i;

		for (i = 0; i < res.nreasons; i++)
			if (res.reasons[i].text[0] && (!top || res.reasons[i].count > top->count))
				top = &res.reasons[i];
		if (top)
			snprintf(why, sizeof(why), "; HTTP %d: %s", top->status, top->text);
		status = cli_fail(env->ctx, res.ops ? CLI_EXIT_ERROR : CLI_EXIT_UNAVAILABLE,
				  "bench: preloading %llu keys failed (%llu requests failed, "
				  "%llu HTTP errors, %llu connect errors%s)",
				  (unsigned long long)t->nkeys, (unsigned long long)res.errors,
				  (unsigned long long)res.err[BENCH_ERR_HTTP],
				  (unsigned long long)res.err[BENCH_ERR_CONNECT], why);
	}
	bench_result_close(&res);
	bench_job_close(&job);
	return status;
}

/* Before a measured run the bench waits (at most --settle seconds, default
 * 10, looking every SETTLE_POLL_NS) until every member of the cluster is
 * quiet: nothing applied waits for its LevelDB write, no LevelDB compaction
 * is scheduled or running. A run then measures its own operations, not the previous run's
 * or the preload's aftermath: on one machine, the three nodes' compactions
 * after the seed suite's batch rows (half a million keys) went on for most
 * of a second and took the CPU that its range rows (1,000 queries, about
 * 30 ms when quiet) were measuring, which made them 2-4x slower. etcd writes
 * its state as it commits: nothing to wait for. */
#define SETTLE_POLL_NS (10 * 1000000ull)

/* The value of an unlabelled sample of metric in a /metrics body
 * (NUL-terminated); -1 when it is not there. */
static double metric_value(const char *body, const char *metric)
{
	size_t len = strlen(metric);
	const char *p = body;

	while ((p = strstr(p, metric))) {
		if ((p == body || p[-1] == '\n') && p[len] == ' ') {
			char *end;
			double v = strtod(p + len + 1, &end);

			return end == p + len + 1 || v < 0 ? -1 : v;
		}
		p += len;
	}
	return -1;
}

/* Whether member i has nothing waiting for LevelDB and no compaction. One
 * that does not answer, or does not say, counts as quiet: the wait is for
 * the work a node reports, not for the node. */
static bool member_quiet(struct cli_http *h, size_t i)
{
	struct cli_http_request req = {.method = "GET", .target = "/metrics",
				       .accept = "text/plain"};
	struct cli_http_response resp;
	char err[256];
	bool quiet = true;

	cli_http_response_init(&resp);
	if (cli_http_do_at(h, i, &req, &resp, err, sizeof(err)) == 0 && resp.status == 200 &&
	    cli_buf_putc(&resp.body, '\0') == 0)
		quiet = metric_value(resp.body.data, "kvfs_disk_backend_pending_bytes") <= 0 &&
			metric_value(resp.body.data, "kvfs_disk_backend_compactions") <= 0;
	cli_http_response_free(&resp);
	return quiet;
}

/* The HTTP addresses of the cluster's members, from the first endpoint's
 * /cluster/members; the endpoints measured when it does not list them. */
static struct cli_http *members_client(struct bench_env *env)
{
	struct cli_http_request req = {.method = "GET", .target = "/cluster/members"};
	struct cli_http_response resp;
	struct cli_http *h = cli_ctx_http(env->ctx), *m = NULL;
	const char *urls[64];
	char err[256];
	json_t *doc = NULL, *arr, *it;
	size_t i, n = 0;

	if (!h)
		return NULL;
	cli_http_response_init(&resp);
	if (cli_http_do_at(h, 0, &req, &resp, err, sizeof(err)) == 0 && resp.status == 200 &&
	    (doc = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL)) &&
	    json_is_array(arr = json_object_get(doc, "members")))
		json_array_foreach(arr, i, it) {
			const char *u = json_string_value(json_object_get(it, "http"));

			if (u && *u && n < sizeof(urls) / sizeof(urls[0]))
				urls[n++] = u;
		}
	if (!n)
		for (i = 0; i < env->neps && i < cli_http_endpoint_count(h); i++)
			urls[n++] = cli_http_endpoint(h, i);
	/* A second at most a look: a member that does not answer in time
	 * counts as quiet, and must not hold the run for -t seconds. */
	if (n)
		m = cli_http_create((char *const *)urls, n,
				    env->ctx->timeout_s < 1 ? env->ctx->timeout_s : 1, 0,
				    env->ctx->err);
	json_decref(doc);
	cli_http_response_free(&resp);
	return m;
}

static void settle(struct bench_env *env)
{
	struct timespec ts = {0, SETTLE_POLL_NS};
	uint64_t t0 = bench_now_ns(), spent = 0, max = (uint64_t)(env->o->settle_s * 1e9);
	struct cli_http *h;
	size_t i = 0, n;

	if (env->o->target != BENCH_TARGET_KVFS || max == 0 || !(h = members_client(env)))
		return;
	n = cli_http_endpoint_count(h);
	while (i < n && (spent = bench_now_ns() - t0) < max) {
		if (member_quiet(h, i))
			i++;
		else
			nanosleep(&ts, NULL);
	}
	/* Measuring a busy cluster is worth a warning; a quiet one, with -v. */
	if (i < n || env->ctx->verbose)
		fprintf(env->ctx->err, "bench: %zu member%s %s after %.0f ms\n", n, n == 1 ? "" : "s",
			i < n ? "still busy, measuring anyway," : "quiet", (double)spent / 1e6);
	cli_http_destroy(h);
}

/* Reads back every key acknowledged in res. */
static int verify(struct bench_env *env, const struct bench_test *t, const struct bench_job *run,
		  const struct bench_result *res, struct bench_verify *v)
{
	struct bench_job job;
	struct bench_result vr;
	int status;

	job_setup(&job, env, t, BENCH_VERIFY);
	job.keys.base = run->keys.base;
	job.verify_bits = res->acked;
	job.verify_nbits = res->acked_words * 64;
	job.conns = run->conns < 64 ? run->conns : 64;
	if (bench_result_init(&vr)) {
		bench_job_close(&job);
		return cli_fail(env->ctx, CLI_EXIT_ERROR, "out of memory");
	}
	status = engine(env, &job, &vr, "verify");
	memset(v, 0, sizeof(*v));
	v->done = status == CLI_EXIT_OK;
	v->checked = vr.ops + vr.errors;
	v->missing = vr.err[BENCH_ERR_NOTFOUND];
	v->mismatched = vr.err[BENCH_ERR_MISMATCH];
	v->errors = vr.errors - v->missing - v->mismatched;
	v->first_missing = vr.lost_index;
	bench_result_close(&vr);
	bench_job_close(&job);
	return status;
}

/* Preload, run, verify. On CLI_EXIT_OK, job and res hold the run (the caller
 * closes both) and v the verification. */
static int run_test(struct bench_env *env, const struct bench_test *t, const char *label,
		    struct bench_job *job, struct bench_result *res, struct bench_verify *v)
{
	int status;

	memset(v, 0, sizeof(*v));
	job_setup(job, env, t, t->kind);
	job->count = t->count;
	job->duration_s = t->duration_s;
	job->rate = t->rate;
	job->record_acks = env->o->verify;
	job->keep_series = env->o->plot != NULL;
	if (bench_result_init(res))
		return cli_fail(env->ctx, CLI_EXIT_ERROR, "out of memory");
	if (t->preload) {
		status = preload(env, t);
		if (status)
			return status;
	}
	settle(env);
	status = engine(env, job, res, label);
	if (status)
		return status;
	if (env->o->verify && res->acked_words)
		status = verify(env, t, job, res, v);
	else if (env->o->verify)
		v->done = 1;
	return status;
}

static void test_from_opts(const struct bench_opts *o, struct bench_test *t)
{
	memset(t, 0, sizeof(*t));
	t->kind = o->kind;
	t->conns = o->conns;
	t->batch = o->kind == BENCH_BATCH || o->kind == BENCH_RANGE ? o->batch : 1;
	t->count = o->count;
	t->duration_s = o->duration_s;
	t->rate = o->rate;
	t->nkeys = o->keys;
	t->prefix = o->prefix;
	t->key_size = o->key_size;
	t->preload = !o->no_preload &&
		     (o->kind == BENCH_GET || o->kind == BENCH_MIXED || o->kind == BENCH_RANGE);
}

static int finish_status(struct bench_env *env, const struct bench_result *res,
			 const struct bench_verify *v)
{
	if (v->done && (v->missing || v->mismatched))
		return cli_fail(env->ctx, CLI_EXIT_ERROR,
				"bench: %llu acknowledged keys missing, %llu changed",
				(unsigned long long)v->missing, (unsigned long long)v->mismatched);
	if (!res->ops && res->errors)
		return cli_fail(env->ctx, CLI_EXIT_UNAVAILABLE, "bench: no operation succeeded");
	return CLI_EXIT_OK;
}

static int run_single(struct bench_env *env)
{
	const struct bench_opts *o = env->o;
	struct bench_test t;
	struct bench_job job;
	struct bench_result res;
	struct bench_verify v;
	int status;

	test_from_opts(o, &t);
	if (o->target == BENCH_TARGET_ETCD && o->kind == BENCH_BATCH && o->batch > ETCD_MAX_TXN_OPS)
		fprintf(env->ctx->err,
			"kvfs: note: a batch of %u exceeds etcd's default --max-txn-ops (%d); "
			"etcd rejects such transactions unless started with a larger limit\n",
			o->batch, ETCD_MAX_TXN_OPS);
	status = run_test(env, &t, bench_kind_name(t.kind), &job, &res, &v);
	if (status == CLI_EXIT_OK) {
		if (env->ctx->json) {
			struct cli_buf out = CLI_BUF_INIT;

			if (bench_report_json(&out, o, &job, env->label, &res, &v) ||
			    cli_buf_putc(&out, '\n'))
				status = cli_fail(env->ctx, CLI_EXIT_ERROR, "out of memory");
			else
				status = cli_write(env->ctx, out.data, out.len);
			cli_buf_free(&out);
		} else {
			bench_report_text(env->ctx->out, o, &job, env->label, &res, &v);
		}
		if (o->plot) {
			char err[512], title[256];

			snprintf(title, sizeof(title), "kvfs bench %s, %u connections",
				 bench_kind_name(t.kind), t.conns);
			if (bench_plot(o->plot, title, &res, err, sizeof(err)))
				cli_fail(env->ctx, CLI_EXIT_OK, "bench: %s", err);
		}
		if (status == CLI_EXIT_OK)
			status = finish_status(env, &res, &v);
	}
	bench_result_close(&res);
	bench_job_close(&job);
	return status;
}

/* ------------------------------------------------------------ seed suite -- */

/* The seed's published benchmark (seed/API.md): 1000 operations per test,
 * random 10-character keys, 100-character values. */
static const struct seed_row {
	const char *name;
	enum bench_kind kind;
	unsigned conns, batch;
	const char *unit;
	double seed;
} seed_rows[] = {
	{"single PUT", BENCH_PUT, 1, 1, "ops/s", 6.42},
	{"GET", BENCH_GET, 1, 1, "ops/s", 542.34},
	{"batch 10", BENCH_BATCH, 1, 10, "items/s", 63.88},
	{"batch 50", BENCH_BATCH, 1, 50, "items/s", 308.81},
	{"batch 100", BENCH_BATCH, 1, 100, "items/s", 796.44},
	{"batch 500", BENCH_BATCH, 1, 500, "items/s", 1767.32},
	{"range 10", BENCH_RANGE, 1, 10, "queries/s", 327.95},
	{"range 50", BENCH_RANGE, 1, 50, "queries/s", 269.29},
	{"range 100", BENCH_RANGE, 1, 100, "queries/s", 219.02},
	{"range 500", BENCH_RANGE, 1, 500, "queries/s", 82.10},
	{"5 clients", BENCH_PUT, 5, 1, "ops/s", 5.98},
	{"10 clients", BENCH_PUT, 10, 1, "ops/s", 5.96},
	{"25 clients", BENCH_PUT, 25, 1, "ops/s", 5.96},
	{"50 clients", BENCH_PUT, 50, 1, "ops/s", 6.00},
	{"100 clients", BENCH_PUT, 100, 1, "ops/s", 6.35},
};

#define SEED_RANGE_KEYS 10000

static int run_suite(struct bench_env *env)
{
	const struct bench_opts *o = env->o;
	const char *tname = o->target == BENCH_TARGET_ETCD ? "etcd" : "kvfs";
	struct cli_buf json = CLI_BUF_INIT;
	size_t i, nrows = sizeof(seed_rows) / sizeof(seed_rows[0]);
	int status = CLI_EXIT_OK, st;
	FILE *out = env->ctx->out;

	if (env->ctx->json) {
		if (cli_buf_printf(&json,
				   "{\"suite\":\"seed\",\"target\":\"%s\",\"endpoint\":\"%s\","
				   "\"count\":%llu,\"consistency\":\"%s\",\"tests\":[",
				   tname, env->label, (unsigned long long)o->count,
				   o->stale ? "stale" : "linearizable"))
			return cli_fail(env->ctx, CLI_EXIT_ERROR, "out of memory");
	} else {
		fprintf(out,
			"The seed's benchmark against %s %s: %llu operations per test, 10-byte "
			"keys,\n100-byte values, closed loop, reads %s. seed: its published "
			"figures (MacBook Pro,\n2.3 GHz 8-core Intel; its reads were a node's "
			"local copy); %s: measured now,\none run on this machine.\n\n",
			tname, env->label, (unsigned long long)o->count,
			o->stale ? (o->target == BENCH_TARGET_ETCD ? "serializable" : "stale")
				 : "linearizable",
			tname);
		fprintf(out, "%-12s %-10s %10s %12s %9s %8s %8s %7s%s\n", "test", "unit", "seed",
			tname, "ratio", "p50 ms", "p99 ms", "errors", o->verify ? "   lost" : "");
	}
	for (i = 0; i < nrows; i++) {
		const struct seed_row *row = &seed_rows[i];
		struct bench_test t = {0};
		struct bench_job job;
		struct bench_result res;
		struct bench_verify v;
		double el, measured;

		t.kind = row->kind;
		t.conns = row->conns;
		t.batch = row->batch;
		t.count = o->count;
		t.key_size = 10;
		t.prefix = row->kind == BENCH_RANGE ? "r" : "s";
		if (row->kind == BENCH_GET) {
			t.nkeys = o->count;
			t.preload = 1;
		} else if (row->kind == BENCH_RANGE) {
			t.nkeys = SEED_RANGE_KEYS;
			t.preload = !env->range_loaded;
			env->range_loaded = 1;
		}
		st = run_test(env, &t, row->name, &job, &res, &v);
		if (st) {
			status = st;
			bench_result_close(&res);
			bench_job_close(&job);
			break;
		}
		el = res.elapsed_s > 0 ? res.elapsed_s : 1e-9;
		measured = (double)(row->kind == BENCH_BATCH ? res.items : res.ops) / el;
		if (env->ctx->json) {
			st = cli_buf_printf(&json,
					    "%s{\"test\":\"%s\",\"unit\":\"%s\",\"seed\":%.2f,"
					    "\"measured\":%.3f,\"ratio\":%.3f,\"result\":",
					    i ? "," : "", row->name, row->unit, row->seed, measured,
					    measured / row->seed);
			if (st || bench_report_json(&json, o, &job, env->label, &res, &v) ||
			    cli_buf_putc(&json, '}'))
				status = cli_fail(env->ctx, CLI_EXIT_ERROR, "out of memory");
		} else {
			fprintf(out, "%-12s %-10s %10.2f %12.2f %8.1fx %8.3f %8.3f %7llu", row->name,
				row->unit, row->seed, measured, measured / row->seed,
				ms_of(bench_hist_percentile(&res.lat, 50)),
				ms_of(bench_hist_percentile(&res.lat, 99)),
				(unsigned long long)res.errors);
			if (o->verify)
				fprintf(out, " %6llu",
					(unsigned long long)(v.missing + v.mismatched));
			if (o->target == BENCH_TARGET_ETCD && row->kind == BENCH_BATCH &&
			    row->batch > ETCD_MAX_TXN_OPS)
				fprintf(out, "  (over etcd's max-txn-ops %d)", ETCD_MAX_TXN_OPS);
			fputc('\n', out);
			fflush(out);
		}
		st = finish_status(env, &res, &v);
		if (st && (v.missing || v.mismatched || status == CLI_EXIT_OK))
			status = st;
		bench_result_close(&res);
		bench_job_close(&job);
	}
	if (env->ctx->json && status != CLI_EXIT_USAGE) {
		if (cli_buf_puts(&json, "]}\n"))
			status = cli_fail(env->ctx, CLI_EXIT_ERROR, "out of memory");
		else if (cli_write(env->ctx, json.data, json.len))
			status = CLI_EXIT_ERROR;
	}
	cli_buf_free(&json);
	return status;
}

/* ------------------------------------------------------------ the command -- */

struct parse_state {
	struct cli_ctx *ctx;
	struct bench_opts *o;
};

static int on_bench_opt(void *ud, int id, const char *arg)
{
	struct parse_state *ps = ud;
	char err[256];

	if (bench_opts_set(ps->o, id, arg, err, sizeof(err))) {
		cli_usage_error(ps->ctx, "%s", err);
		return -ECANCELED;
	}
	return 0;
}

/* The run's value: value_size letters and digits that differ from run to run. */
static char *make_value(const struct bench_opts *o)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	struct bench_rng rng = {o->seed ^ 0x5eedull};
	char *v = malloc(o->value_size + 1);
	unsigned i;

	if (!v)
		return NULL;
	for (i = 0; i < o->value_size; i++)
		v[i] = abc[bench_rng_below(&rng, sizeof(abc) - 1)];
	v[o->value_size] = '\0';
	return v;
}

static int setup_endpoints(struct bench_env *env)
{
	struct cli_ctx *ctx = env->ctx;
	char **list = NULL;
	size_t n = 0, i;
	int rc;

	rc = cli_endpoints_parse(ctx->endpoints ? ctx->endpoints : CLI_DEFAULT_ENDPOINT, &list, &n);
	if (rc == -EINVAL)
		return cli_usage_error(ctx, "no endpoint in '%s'", ctx->endpoints);
	if (rc)
		return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
	env->neps = env->o->spread ? n : 1;
	env->eps = calloc(env->neps, sizeof(*env->eps));
	if (!env->eps) {
		cli_endpoints_free(list);
		return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
	}
	for (i = 0; i < env->neps; i++) {
		if (bench_endpoint_parse(list[i], &env->eps[i])) {
			rc = cli_usage_error(ctx, "bench needs http://host[:port] endpoints, not '%s'",
					     list[i]);
			cli_endpoints_free(list);
			return rc;
		}
	}
	if (env->neps == 1)
		snprintf(env->label, sizeof(env->label), "%s", list[0]);
	else
		snprintf(env->label, sizeof(env->label), "%s and %zu more", list[0],
			 env->neps - 1);
	cli_endpoints_free(list);
	return CLI_EXIT_OK;
}

int cli_cmd_bench(struct cli_ctx *ctx, int argc, char **argv)
{
	struct bench_opts o;
	struct parse_state ps = {ctx, &o};
	struct bench_env env = {0};
	struct sigaction sa, old;
	char err[256];
	int n, status;

	bench_opts_defaults(&o);
	n = cli_parse_command(ctx, argc, argv, bench_optspecs, on_bench_opt, &ps, &status);
	if (n < 0)
		return status;
	if (n > 0)
		return cli_usage_error(ctx, "bench takes no operands");
	if (bench_opts_check(&o, err, sizeof(err)))
		return cli_usage_error(ctx, "%s", err);
	if (!o.seed)
		o.seed = (bench_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL)) |
			 1;
	if (o.seed_suite) {
		o.value_size = 100;
		/* The seed's reads were its node's local copy: compare like
		 * with like unless told otherwise. */
		if (!o.consistency_set)
			o.stale = 1;
	}
	env.ctx = ctx;
	env.o = &o;
	status = setup_endpoints(&env);
	if (status)
		goto out;
	env.value = make_value(&o);
	if (!env.value) {
		status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
		goto out;
	}
	env.progress = isatty(fileno(ctx->err)) ? ctx->err : NULL;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	status = o.seed_suite ? run_suite(&env) : run_single(&env);
	sigaction(SIGINT, &old, NULL);
out:
	free(env.eps);
	free(env.value);
	return status;
}
