/*
 * kvfs bench: the pieces of the load generator behind `kvfs bench`.
 *
 *   bench_hist.c    log-linear (HDR-style) latency histogram
 *   bench_parse.c   incremental HTTP/1.1 response parser (Content-Length,
 *                   chunked, body to EOF), fed whatever read() returned
 *   bench_work.c    random numbers, Zipf generator, key and value texts,
 *                   the requests of each workload for kvfs and for etcd's
 *                   JSON gateway, and the check of each reply
 *   bench_engine.c  the epoll client engine: keep-alive connections, one
 *                   event loop per thread, closed and open loop
 *   bench_report.c  text, JSON, the seed-suite table and the gnuplot chart
 *   cmd_bench.c     options, preload, run, verify, seed suite
 *
 * The histogram, the parser, the generators and the option parser are pure
 * and unit-tested (tests/unit/test_bench.c); the engine is exercised by
 * tests/integration/bench.sh against a real kvfsd.
 *
 * Threads: a struct bench_job is written by the caller before
 * bench_engine_run() and then only read by the engine threads, except its
 * atomic counters. Each engine thread owns its struct bench_result until
 * bench_engine_run() merges them.
 */
#ifndef KVFS_CLI_BENCH_H
#define KVFS_CLI_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/args.h"
#include "cli/buf.h"

/* ---------------------------------------------------------------- time -- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* ------------------------------------------------------- random numbers -- */

/* splitmix64: tiny, fast, good enough for picking keys. Not thread-safe: one
 * per thread. */
struct bench_rng {
	uint64_t s;
};

uint64_t bench_rng_next(struct bench_rng *r);
/* Uniform in [0, 1). */
double bench_rng_unit(struct bench_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t bench_rng_below(struct bench_rng *r, uint64_t n);

/* Zipfian ranks in [0, n): rank 0 is the most popular, P(rank k) is
 * proportional to 1/(k+1)^theta. The generator of Gray et al., "Quickly
 * generating billion-record synthetic databases" (SIGMOD 1994), as in YCSB's
 * ZipfianGenerator; init is O(n) (it sums zeta(n)), each draw O(1). */
struct bench_zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half_pow_theta;
};

/* Returns 0, or -EINVAL unless n >= 1 and 0 < theta < 1. */
int bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta);
/* The rank for a uniform u in [0, 1). */
uint64_t bench_zipf_next(const struct bench_zipf *z, double u);

/* ------------------------------------------------------------ histogram -- */

/* Counts of values (nanoseconds) in log-linear buckets: values below 2^S
 * exactly, then 2^(S-1) buckets per power of two, so a value is known within
 * a relative error of 2^-(S-1) whatever its magnitude. Values of 2^44 ns
 * (4.9 hours) and more are counted as 2^44 - 1. min, max and mean are exact.
 * Memory: (2^S + (44 - S) * 2^(S-1)) counters; 147 KiB for S = 10. */
#define BENCH_HIST_MAX_BITS 44
#define BENCH_HIST_PRECISE  10 /* 0.2 %: the latency distribution */
#define BENCH_HIST_COARSE   5  /* 6 %: the per-second series of the chart */

struct bench_hist {
	unsigned sub_bits; /* S, 1 .. 16 */
	size_t nbuckets;
	uint64_t *counts; /* owned */
	uint64_t total;
	uint64_t min, max;
	double sum;
};

/* Returns 0, -EINVAL for a bad sub_bits, -ENOMEM. */
int bench_hist_init(struct bench_hist *h, unsigned sub_bits);
void bench_hist_close(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t value);
/* Adds src's counts to dst. -EINVAL when their precisions differ. */
int bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value at percentile p (0 < p <= 100) by nearest rank: the smallest
 * recorded value v such that at least p % of the values are <= v, within the
 * precision; p = 100 gives the exact max. 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);
double bench_hist_mean(const struct bench_hist *h);

/* ---------------------------------------------------- HTTP response parser -- */

struct bench_resp {
	int state;
	int status;      /* HTTP status, known once the status line is parsed */
	int chunked;     /* Transfer-Encoding: chunked */
	int has_length;  /* Content-Length seen */
	int conn_close;  /* Connection: close, or HTTP/1.0 without keep-alive */
	int no_body;     /* the request was HEAD */
	uint64_t remaining;
	size_t body_len; /* body bytes seen (decoded) */
	struct cli_buf *body; /* borrowed; body bytes appended when not NULL */
	size_t line_len;
	int line_overflow;
	char line[512];
};

/* Prepares r for one response; body (may be NULL) receives the decoded body. */
void bench_resp_init(struct bench_resp *r, struct cli_buf *body, int no_body);
/* Feeds the next n bytes of the stream. Returns the number of bytes consumed
 * (all of them unless the response ended inside the data) and sets *done when
 * the response is complete; or -EPROTO for a malformed response, -ENOMEM.
 * Any split of the stream into calls gives the same result. */
long bench_resp_feed(struct bench_resp *r, const char *p, size_t n, int *done);
/* The peer closed the connection: returns 1 when that completes the response
 * (a body delimited by the end of the connection), else 0. */
int bench_resp_eof(struct bench_resp *r);

/* ------------------------------------------------------------ workloads -- */

/* The workloads; PRELOAD (batches over indices 0 .. nkeys-1) and VERIFY (a
 * read-back of every bit of verify_bits) are the internal phases around a
 * run. */
enum bench_kind {
	BENCH_PUT,
	BENCH_GET,
	BENCH_MIXED,
	BENCH_BATCH,
	BENCH_RANGE,
	BENCH_PRELOAD,
	BENCH_VERIFY,
};
enum bench_target { BENCH_TARGET_KVFS, BENCH_TARGET_ETCD };
enum bench_dist { BENCH_UNIFORM, BENCH_ZIPF };

/* What goes wrong, by kind. An HTTP status other than the expected one is
 * counted under BENCH_ERR_HTTP and also by code in result->status. */
enum bench_err {
	BENCH_ERR_CONNECT,  /* connect() failed */
	BENCH_ERR_TIMEOUT,  /* no complete reply within --timeout */
	BENCH_ERR_CLOSED,   /* connection reset or closed before the reply ended */
	BENCH_ERR_PROTOCOL, /* a reply that is not HTTP/1.1 */
	BENCH_ERR_HTTP,     /* an unexpected HTTP status */
	BENCH_ERR_NOTFOUND, /* a read of a key that must exist found none */
	BENCH_ERR_SHORT,    /* a range returned fewer keys than asked */
	BENCH_ERR_ETCD,     /* etcd answered 200 with an error in the body */
	BENCH_ERR_MISMATCH, /* verify: the key holds another value */
	BENCH_ERR_UNSENT,   /* open loop: due before the end but never sent */
	BENCH_ERR__COUNT
};

const char *bench_err_name(enum bench_err e);

/* Key texts: prefix + fixed-width lower-case hex of f(index), where f is a
 * bijection on the digits' bits (keys look random and spread over the key
 * space, like the seed's random keys, yet each index has its own key) or the
 * identity (keys sort in index order: the range workload). */
struct bench_keys {
	char prefix[64];
	size_t prefix_len;
	unsigned digits; /* key length - prefix length, 1 .. 16 */
	int scramble;
	/* Added to every index: 0, or for workloads that write new keys an
	 * offset drawn from the run's seed, so that a run does not overwrite
	 * the keys of earlier runs (which would make them updates). */
	uint64_t base;
};

/* Returns 0, or -EINVAL when the prefix is not made of [A-Za-z0-9._~/-] or
 * leaves no room (1 to 16 hex digits) in key_size bytes. */
int bench_keys_init(struct bench_keys *k, const char *prefix, unsigned key_size, int scramble);
/* Writes the key of index (NUL-terminated) to out (at least key_size + 1
 * bytes); returns its length. Indices wrap at 16^digits. */
size_t bench_key(const struct bench_keys *k, uint64_t index, char *out);
/* Largest number of distinct keys. */
uint64_t bench_keys_capacity(const struct bench_keys *k);

/* Standard base64 of n bytes into out (4 * ceil(n / 3) + 1 bytes);
 * returns the length. */
size_t bench_base64(const void *in, size_t n, char *out);

/* One operation chosen by a generator. */
enum bench_op_type { BENCH_OP_PUT, BENCH_OP_GET, BENCH_OP_BATCH, BENCH_OP_RANGE };

struct bench_op {
	enum bench_op_type type;
	uint64_t index; /* key index, or the first of a batch or range */
	unsigned n;     /* keys of a batch or range */
	int record;     /* the writes are acknowledged keys (for --verify) */
	int verify;     /* a read-back: compare the value */
};

/* A run: the workload, the stop condition and the connections. Written by
 * the caller, read-only during bench_engine_run() but for the atomics. */
#define BENCH_BUSY_POLL_DEFAULT_US 50

struct bench_job {
	enum bench_target target;
	enum bench_kind kind;
	struct bench_keys keys;
	const char *value;     /* the value text (run-specific), borrowed */
	size_t value_len;
	char *value_json;      /* "value" as a JSON string, owned (bench_job_close) */
	char *value_b64;       /* base64 of value, owned */
	unsigned batch;        /* keys per batch or range op */
	uint64_t nkeys;        /* key space: 0 = unique keys (put, batch) */
	enum bench_dist dist;
	struct bench_zipf zipf;
	double read_ratio;     /* mixed: share of reads */
	int stale;             /* reads at consistency=stale / serializable */
	int record_acks;       /* keep a bitmap of acknowledged keys */
	int keep_series;       /* per-second series for --plot */

	uint64_t count;        /* operations; 0: run for duration_s */
	double duration_s;
	double rate;           /* open loop: operations per second in all; 0: closed */
	double timeout_s;
	unsigned conns, threads;
	unsigned busy_poll_us; /* poll without sleeping this long before blocking */
	int spread;            /* connections round-robin over all endpoints */
	uint64_t seed;

	/* BENCH_VERIFY reads back every set bit of this bitmap (borrowed). */
	const uint64_t *verify_bits;
	uint64_t verify_nbits;

	/* Shared between threads while running. */
	_Atomic uint64_t next_unique;  /* next unique key index (or block) */
	_Atomic uint64_t cursor;       /* next word of verify_bits / preload block */
	_Atomic uint64_t done;         /* completed operations (progress) */
	_Atomic uint64_t failed;       /* failed operations (progress) */
	_Atomic int stop;              /* set to end the run early */
};

/* Fills the derived fields of job (value encodings, Zipf table).
 * Returns 0, -EINVAL (bad Zipf parameters), -ENOMEM. */
int bench_job_prepare(struct bench_job *job);
void bench_job_close(struct bench_job *job);

/* Per-thread state of the generator. */
struct bench_gen {
	struct bench_rng rng;
	uint64_t quota;     /* operations left for this thread when job->count */
	uint64_t word;      /* verify: bits of the current bitmap word left */
	uint64_t word_base; /* verify: index of its bit 0 */
};

void bench_gen_init(struct bench_gen *g, const struct bench_job *job, unsigned thread,
		    uint64_t quota);
/* Chooses the next operation. Returns 0, or -ENODATA when the job has no
 * more (count reached, preload or verify exhausted). Thread-safe with
 * respect to other generators of the same job. */
int bench_gen_next(struct bench_gen *g, struct bench_job *job, struct bench_op *op);

/* Appends the HTTP/1.1 request of op to out. host is the Host header value.
 * Returns 0 or -ENOMEM. */
int bench_build_request(const struct bench_job *job, const struct bench_op *op, const char *host,
			struct cli_buf *out);

/* Judges a complete reply: returns -1 when it is a success, else the
 * enum bench_err of the failure. */
int bench_check_reply(const struct bench_job *job, const struct bench_op *op, int status,
		      const char *body, size_t body_len);

/* -------------------------------------------------------------- results -- */

struct bench_interval {
	uint64_t ops, errors;
	struct bench_hist lat; /* BENCH_HIST_COARSE */
};

/* Why the server answered an unexpected status: the text of its reply
 * (kvfs's "detail", etcd's "message"), counted per status and text. A 503
 * says little by itself: "Too many pending requests" (refused, not applied)
 * and "Timed out waiting for commit" (outcome unknown) call for different
 * conclusions. The first BENCH_REASONS distinct ones are kept, the rest
 * only counted (each thread keeps its own until they are merged, so a
 * named reason's count is exact unless a thread saw more than that many). */
#define BENCH_REASONS	 32
#define BENCH_REASON_LEN 120

struct bench_reason {
	int status;
	char text[BENCH_REASON_LEN]; /* "" when the reply named none */
	uint64_t count;
};

/* The reason in an error reply's body (JSON): the string "detail" (kvfs),
 * the "msg" of the first item of a "detail" list (kvfs's 422), or
 * "message" or "error" (etcd). Written to out (NUL-terminated, cut to
 * BENCH_REASON_LEN - 1 bytes on a character boundary, control characters
 * made spaces), "" when there is none. Returns the length. */
size_t bench_reply_reason(const char *body, size_t len, char out[BENCH_REASON_LEN]);

struct bench_result {
	struct bench_hist lat; /* successful operations, ns */
	uint64_t ops;          /* successful operations */
	uint64_t items;        /* keys written or read by them */
	uint64_t errors;       /* failed operations */
	uint64_t err[BENCH_ERR__COUNT];
	uint64_t status[600];  /* unexpected HTTP statuses by code */
	struct bench_reason reasons[BENCH_REASONS];
	unsigned nreasons;
	uint64_t reasons_other; /* replies whose reason did not fit in reasons */
	uint64_t lost_index;   /* verify: smallest key index found missing or changed */
	int has_lost;
	double elapsed_s;
	uint64_t *acked;       /* bitmap of acknowledged key indices, owned */
	uint64_t acked_words;
	struct bench_interval *series; /* one per second, owned */
	size_t nseries;
};

int bench_result_init(struct bench_result *r);
void bench_result_close(struct bench_result *r);
/* Adds src to dst (counters, histograms, bitmaps, series).
 * Returns 0 or -ENOMEM. */
int bench_result_merge(struct bench_result *dst, const struct bench_result *src);
/* Counts count replies of status with reason text. */
void bench_result_reason(struct bench_result *r, int status, const char *text, uint64_t count);
/* Marks key index i acknowledged. Returns 0 or -ENOMEM. */
int bench_result_ack(struct bench_result *r, uint64_t i);
/* Number of set bits of r->acked. */
uint64_t bench_result_acked(const struct bench_result *r);
/* Records one finished operation at time t_ns since the start. */
int bench_result_add(struct bench_result *r, const struct bench_job *job, uint64_t t_ns,
		     uint64_t latency_ns, int err, unsigned items);

/* --------------------------------------------------------------- engine -- */

struct bench_endpoint {
	char host[256];   /* host name or address, for connect() */
	char port[8];
	char hostport[272]; /* the Host header */
};

/* Parses a base URL "http://host[:port]" (http only; [v6] accepted).
 * Returns 0 or -EINVAL. */
int bench_endpoint_parse(const char *url, struct bench_endpoint *ep);

/* Runs job over its connections until its stop condition, spreading the
 * connections over job->threads threads (each with its own epoll loop), and
 * merges every thread's outcome into *result (initialised by the caller).
 * With progress, draws a progress line on progress (a terminal) every 0.2 s.
 * Returns 0 when the run took place (whatever the errors), or a negative
 * code with a message in err: no endpoint could be connected (-ECONNREFUSED
 * and friends), -ENOMEM, thread creation failures. */
int bench_engine_run(struct bench_job *job, const struct bench_endpoint *eps, size_t neps,
		     struct bench_result *result, FILE *progress, const char *label, char *err,
		     size_t err_len);

/* -------------------------------------------------------------- options -- */

struct bench_opts {
	enum bench_kind kind;
	enum bench_target target;
	enum bench_dist dist;
	unsigned conns, threads;
	unsigned busy_poll_us;
	uint64_t count;
	double duration_s;
	double rate;
	double read_ratio;
	double settle_s;      /* longest wait for a quiet cluster; 0: none */
	uint64_t keys;       /* 0: workload default */
	unsigned key_size, value_size, batch;
	double theta;
	int stale, spread, verify, seed_suite, no_preload;
	int consistency_set; /* --consistency given */
	const char *plot;
	const char *prefix;
	uint64_t seed;       /* 0: from the clock */
	uint64_t key_start;  /* first new key's index, when has_key_start */
	int has_key_start;
};

void bench_opts_defaults(struct bench_opts *o);
/* Handles one option of the bench table (ids from bench_optspecs). Returns 0,
 * or -EINVAL with a message in err. */
int bench_opts_set(struct bench_opts *o, int id, const char *arg, char *err, size_t err_len);
/* Cross-checks after parsing (count and duration exclusive, ...).
 * Returns 0 or -EINVAL with a message in err. */
int bench_opts_check(struct bench_opts *o, char *err, size_t err_len);
extern const struct cli_optspec bench_optspecs[];
extern const char bench_help[];

const char *bench_kind_name(enum bench_kind k);

/* --------------------------------------------------------------- report -- */

struct bench_verify {
	int done;
	uint64_t checked, missing, mismatched, errors;
	uint64_t first_missing; /* key index of the first missing key */
};

/* Human-readable report of one run. */
void bench_report_text(FILE *out, const struct bench_opts *o, const struct bench_job *job,
		       const char *endpoint, const struct bench_result *r,
		       const struct bench_verify *v);
/* The same as one JSON object (no newline); returns 0 or -ENOMEM. */
int bench_report_json(struct cli_buf *out, const struct bench_opts *o,
		      const struct bench_job *job, const char *endpoint,
		      const struct bench_result *r, const struct bench_verify *v);
/* Writes FILE.dat and FILE.gp and runs gnuplot on them to draw FILE (PNG, or
 * SVG when FILE ends in .svg). Returns 0, or -errno with a message in err
 * (gnuplot missing: -ENOENT, the script is left for later). */
int bench_plot(const char *file, const char *title, const struct bench_result *r, char *err,
	       size_t err_len);

/* ------------------------------------------------------------- command -- */

/* `kvfs bench` (cmd_bench.c), dispatched from the table in commands.c. */
struct cli_ctx;
int cli_cmd_bench(struct cli_ctx *ctx, int argc, char **argv);

#endif
