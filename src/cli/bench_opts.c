/*
 * The options of `kvfs bench`: their table, their help text (the same text
 * kvfs.1 documents), their parsing and the checks across options. Pure, so
 * the unit tests drive it without a server.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"

enum {
	OPT_WORKLOAD = 1,
	OPT_CONNECTIONS,
	OPT_THREADS,
	OPT_COUNT,
	OPT_DURATION,
	OPT_RATE,
	OPT_READ_RATIO,
	OPT_KEYS,
	OPT_KEY_SIZE,
	OPT_VALUE_SIZE,
	OPT_BATCH,
	OPT_DIST,
	OPT_THETA,
	OPT_CONSISTENCY,
	OPT_SPREAD,
	OPT_TARGET,
	OPT_SEED_SUITE,
	OPT_VERIFY,
	OPT_PLOT,
	OPT_PREFIX,
	OPT_SEED,
	OPT_NO_PRELOAD,
	OPT_NO_SETTLE,
	OPT_SETTLE,
	OPT_KEY_START,
	OPT_BUSY_POLL,
};

const struct cli_optspec bench_optspecs[] = {
	{"workload", 'w', 1, OPT_WORKLOAD, NULL},
	{"connections", 'c', 1, OPT_CONNECTIONS, NULL},
	{"threads", 0, 1, OPT_THREADS, NULL},
	{"count", 'n', 1, OPT_COUNT, NULL},
	{"duration", 'd', 1, OPT_DURATION, NULL},
	{"rate", 'r', 1, OPT_RATE, NULL},
	{"read-ratio", 0, 1, OPT_READ_RATIO, NULL},
	{"keys", 'k', 1, OPT_KEYS, NULL},
	{"key-size", 0, 1, OPT_KEY_SIZE, NULL},
	{"value-size", 0, 1, OPT_VALUE_SIZE, NULL},
	{"batch-size", 'b', 1, OPT_BATCH, NULL},
	{"dist", 0, 1, OPT_DIST, NULL},
	{"zipf-theta", 0, 1, OPT_THETA, NULL},
	{"consistency", 0, 1, OPT_CONSISTENCY, NULL},
	{"spread", 0, 0, OPT_SPREAD, NULL},
	{"target", 0, 1, OPT_TARGET, NULL},
	{"seed-suite", 0, 0, OPT_SEED_SUITE, NULL},
	{"verify", 0, 0, OPT_VERIFY, NULL},
	{"plot", 0, 1, OPT_PLOT, NULL},
	{"key-prefix", 0, 1, OPT_PREFIX, NULL},
	{"seed", 0, 1, OPT_SEED, NULL},
	{"no-preload", 0, 0, OPT_NO_PRELOAD, NULL},
	{"no-settle", 0, 0, OPT_NO_SETTLE, NULL},
	{"settle", 0, 1, OPT_SETTLE, NULL},
	{"key-start", 0, 1, OPT_KEY_START, NULL},
	{"busy-poll", 0, 1, OPT_BUSY_POLL, NULL},
	{NULL, 0, 0, 0, NULL},
};

const char bench_help[] =
	"Measures throughput and latency with N keep-alive connections driven by an\n"
	"event loop, for a number of operations or a time, as fast as possible\n"
	"(closed loop) or at a fixed rate (open loop, latency counted from each\n"
	"request's scheduled time). Reports p50/p90/p99/p99.9/max latency,\n"
	"throughput and errors by kind.\n\n"
	"Options:\n"
	"  -w, --workload W     put, get, mixed, batch or range (default put)\n"
	"  -c, --connections N  concurrent connections (default 16)\n"
	"      --threads N      event-loop threads sharing them (default 1)\n"
	"      --busy-poll US   a thread waiting on one reply polls without\n"
	"                       sleeping this long before it blocks (default 50;\n"
	"                       0: off)\n"
	"  -n, --count N        stop after N operations (in all)\n"
	"  -d, --duration SECS  stop after SECS seconds (default 10)\n"
	"  -r, --rate R         open loop: R operations per second in all\n"
	"      --read-ratio F   mixed: share of reads, 0 to 1 (default 0.9)\n"
	"  -k, --keys N         key space of get, mixed and range, preloaded before\n"
	"                       the run (default 10000); put and batch overwrite N\n"
	"                       keys instead of writing new ones\n"
	"      --key-size N     key length in bytes (default 16)\n"
	"      --value-size N   value length in bytes (default 100)\n"
	"  -b, --batch-size K   keys per batch or range request (default 100)\n"
	"      --dist D         key choice: uniform or zipf (default uniform)\n"
	"      --zipf-theta T   Zipf exponent, 0 < T < 1 (default 0.99)\n"
	"      --consistency C  reads: linearizable or stale (default linearizable)\n"
	"      --spread         connections round-robin over all endpoints (default:\n"
	"                       all to the first)\n"
	"      --target T       kvfs, or etcd (its v3 JSON gateway) (default kvfs)\n"
	"      --verify         after a write workload, read back every acknowledged\n"
	"                       key and report the missing ones\n"
	"      --plot FILE      draw latency and throughput over time with gnuplot\n"
	"                       (PNG, or SVG if FILE ends in .svg)\n"
	"      --seed-suite     run the seed's benchmark and compare with its\n"
	"                       published numbers (--count operations per test,\n"
	"                       default 1000; reads stale, as the seed's were,\n"
	"                       unless --consistency says otherwise)\n"
	"      --key-prefix P   keys start with P (default \"bench/\")\n"
	"      --key-start N    put and batch: number of the first new key (default:\n"
	"                       drawn from the seed, so runs do not overwrite each\n"
	"                       other's keys)\n"
	"      --seed N         random seed (default: from the clock)\n"
	"      --no-preload     do not write the key space before get, mixed, range\n"
	"      --settle S       before measuring, wait up to S seconds (default 10)\n"
	"                       until no member has applied state waiting for\n"
	"                       LevelDB or a compaction running (kvfs runs only)\n"
	"      --no-settle      start measuring at once (--settle 0)\n\n"
	"With --json the results are one JSON object. Exit status 6 when --verify\n"
	"finds a key missing, 5 when no operation succeeded.\n";

static const char *const kind_names[] = {"put",   "get",     "mixed", "batch",
					 "range", "preload", "verify"};

const char *bench_kind_name(enum bench_kind k)
{
	return (unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[k] : "?";
}

void bench_opts_defaults(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = BENCH_PUT;
	o->target = BENCH_TARGET_KVFS;
	o->dist = BENCH_UNIFORM;
	o->conns = 16;
	o->threads = 1;
	o->busy_poll_us = BENCH_BUSY_POLL_DEFAULT_US;
	o->read_ratio = 0.9;
	o->settle_s = 10;
	o->key_size = 16;
	o->value_size = 100;
	o->batch = 100;
	o->theta = 0.99;
	o->prefix = "bench/";
}

static int fail(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* An integer in [lo, hi]. */
static int parse_range(const char *arg, unsigned long long lo, unsigned long long hi,
		       unsigned long long *v)
{
	return cli_parse_u64(arg, v) || *v < lo || *v > hi ? -EINVAL : 0;
}

/* A finite number in [lo, hi]. */
static int parse_double(const char *arg, double lo, double hi, double *v)
{
	char *end;

	if (!*arg || *arg == ' ')
		return -EINVAL;
	errno = 0;
	*v = strtod(arg, &end);
	return errno || *end || !isfinite(*v) || *v < lo || *v > hi ? -EINVAL : 0;
}

int bench_opts_set(struct bench_opts *o, int id, const char *arg, char *err, size_t err_len)
{
	unsigned long long u;
	size_t i;

	switch (id) {
	case OPT_WORKLOAD:
		for (i = 0; i <= BENCH_RANGE; i++)
			if (strcmp(arg, kind_names[i]) == 0) {
				o->kind = (enum bench_kind)i;
				return 0;
			}
		return fail(err, err_len, "bad --workload '%s' (want put, get, mixed, batch or range)",
			    arg);
	case OPT_CONNECTIONS:
		if (parse_range(arg, 1, 65536, &u))
			return fail(err, err_len, "bad --connections '%s' (want 1..65536)", arg);
		o->conns = (unsigned)u;
		return 0;
	case OPT_THREADS:
		if (parse_range(arg, 1, 64, &u))
			return fail(err, err_len, "bad --threads '%s' (want 1..64)", arg);
		o->threads = (unsigned)u;
		return 0;
	case OPT_BUSY_POLL:
		if (parse_range(arg, 0, 100000, &u))
			return fail(err, err_len, "bad --busy-poll '%s' (want 0..100000 us)", arg);
		o->busy_poll_us = (unsigned)u;
		return 0;
	case OPT_COUNT:
		if (parse_range(arg, 1, 1ull << 48, &u))
			return fail(err, err_len, "bad --count '%s' (want a count > 0)", arg);
		o->count = u;
		return 0;
	case OPT_DURATION:
		if (cli_parse_seconds(arg, &o->duration_s))
			return fail(err, err_len, "bad --duration '%s' (want seconds > 0)", arg);
		return 0;
	case OPT_RATE:
		if (parse_double(arg, 1e-3, 1e9, &o->rate))
			return fail(err, err_len, "bad --rate '%s' (want operations/s > 0)", arg);
		return 0;
	case OPT_READ_RATIO:
		if (parse_double(arg, 0, 1, &o->read_ratio))
			return fail(err, err_len, "bad --read-ratio '%s' (want 0 to 1)", arg);
		return 0;
	case OPT_KEYS:
		if (parse_range(arg, 1, 1ull << 40, &u))
			return fail(err, err_len, "bad --keys '%s' (want a count > 0)", arg);
		o->keys = u;
		return 0;
	case OPT_KEY_SIZE:
		if (parse_range(arg, 1, 63, &u))
			return fail(err, err_len, "bad --key-size '%s' (want 1..63)", arg);
		o->key_size = (unsigned)u;
		return 0;
	case OPT_VALUE_SIZE:
		if (parse_range(arg, 1, 1 << 20, &u))
			return fail(err, err_len, "bad --value-size '%s' (want 1..1048576)", arg);
		o->value_size = (unsigned)u;
		return 0;
	case OPT_BATCH:
		if (parse_range(arg, 1, 100000, &u))
			return fail(err, err_len, "bad --batch-size '%s' (want 1..100000)", arg);
		o->batch = (unsigned)u;
		return 0;
	case OPT_DIST:
		if (strcmp(arg, "uniform") == 0)
			o->dist = BENCH_UNIFORM;
		else if (strcmp(arg, "zipf") == 0 || strcmp(arg, "zipfian") == 0)
			o->dist = BENCH_ZIPF;
		else
			return fail(err, err_len, "bad --dist '%s' (want uniform or zipf)", arg);
		return 0;
	case OPT_THETA:
		if (parse_double(arg, 0, 1, &o->theta) || o->theta <= 0 || o->theta >= 1)
			return fail(err, err_len, "bad --zipf-theta '%s' (want 0 < T < 1)", arg);
		return 0;
	case OPT_CONSISTENCY:
		if (strcmp(arg, "linearizable") == 0 || strcmp(arg, "strong") == 0)
			o->stale = 0;
		else if (strcmp(arg, "stale") == 0 || strcmp(arg, "serializable") == 0)
			o->stale = 1;
		else
			return fail(err, err_len,
				    "bad --consistency '%s' (want linearizable or stale)", arg);
		o->consistency_set = 1;
		return 0;
	case OPT_SPREAD:
		o->spread = 1;
		return 0;
	case OPT_TARGET:
		if (strcmp(arg, "kvfs") == 0)
			o->target = BENCH_TARGET_KVFS;
		else if (strcmp(arg, "etcd") == 0)
			o->target = BENCH_TARGET_ETCD;
		else
			return fail(err, err_len, "bad --target '%s' (want kvfs or etcd)", arg);
		return 0;
	case OPT_SEED_SUITE:
		o->seed_suite = 1;
		return 0;
	case OPT_VERIFY:
		o->verify = 1;
		return 0;
	case OPT_PLOT:
		if (!*arg)
			return fail(err, err_len, "empty --plot file name");
		o->plot = arg;
		return 0;
	case OPT_PREFIX:
		o->prefix = arg;
		return 0;
	case OPT_SEED:
		if (parse_range(arg, 1, UINT64_MAX >> 1, &u))
			return fail(err, err_len, "bad --seed '%s' (want a number > 0)", arg);
		o->seed = u;
		return 0;
	case OPT_NO_PRELOAD:
		o->no_preload = 1;
		return 0;
	case OPT_NO_SETTLE:
		o->settle_s = 0;
		return 0;
	case OPT_SETTLE:
		if (parse_double(arg, 0, 3600, &o->settle_s))
			return fail(err, err_len, "bad --settle '%s' (want seconds, 0..3600)", arg);
		return 0;
	case OPT_KEY_START:
		if (parse_range(arg, 0, UINT64_MAX >> 1, &u))
			return fail(err, err_len, "bad --key-start '%s' (want a number >= 0)", arg);
		o->key_start = u;
		o->has_key_start = 1;
		return 0;
	default:
		return fail(err, err_len, "unknown option");
	}
}

int bench_opts_check(struct bench_opts *o, char *err, size_t err_len)
{
	struct bench_keys k;
	unsigned key_size = o->seed_suite ? 10 : o->key_size;

	if (o->count && o->duration_s > 0)
		return fail(err, err_len, "give --count or --duration, not both");
	if (o->seed_suite && (o->duration_s > 0 || o->rate > 0))
		return fail(err, err_len, "--seed-suite runs --count operations per test, closed "
					  "loop: no --duration or --rate");
	if (!o->count && o->duration_s <= 0 && !o->seed_suite)
		o->duration_s = 10;
	if (o->seed_suite && !o->count)
		o->count = 1000;
	if (bench_keys_init(&k, o->seed_suite ? "s" : o->prefix, key_size, 1))
		return fail(err, err_len,
			    "bad --key-prefix '%s': use [A-Za-z0-9._~/-] and leave 1 to 16 "
			    "bytes of --key-size (%u) for the key number",
			    o->prefix, key_size);
	if (o->keys && o->keys > bench_keys_capacity(&k))
		return fail(err, err_len, "--keys %llu does not fit in --key-size %u",
			    (unsigned long long)o->keys, key_size);
	if (o->seed_suite)
		return 0;
	if (!o->keys && o->kind != BENCH_PUT && o->kind != BENCH_BATCH)
		o->keys = 10000;
	if ((o->kind == BENCH_RANGE || (o->kind == BENCH_BATCH && o->keys)) && o->keys < o->batch)
		return fail(err, err_len, "%s: --keys (%llu) must be at least --batch-size (%u)",
			    o->kind == BENCH_RANGE ? "range" : "batch", (unsigned long long)o->keys,
			    o->batch);
	if (o->verify && (o->kind == BENCH_GET || o->kind == BENCH_RANGE))
		return fail(err, err_len, "--verify applies to the write workloads (put, mixed, "
					  "batch)");
	return 0;
}
