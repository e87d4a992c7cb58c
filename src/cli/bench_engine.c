/*
 * The bench client engine: N keep-alive HTTP/1.1 connections driven by one
 * epoll loop per thread (--threads), each thread owning its share of the
 * connections, its generator and its result, so the hot path takes no lock
 * (the shared counters are relaxed atomics).
 *
 * A connection carries one request at a time (no pipelining): idle
 * connections wait on a free list; the loop hands each an operation, writes
 * the request with send() until EAGAIN, and feeds every read() to the
 * incremental response parser. Sockets are edge-triggered (registered once,
 * EPOLLIN|EPOLLOUT|EPOLLET), so the loop makes no epoll_ctl call per request.
 *
 * Closed loop: a connection that finishes a request starts the next one at
 * once, and latency runs from the moment the request is started.
 * Open loop (--rate): operation k of a thread is due at t0 + k/rate; a free
 * connection takes the oldest due operation, and its latency runs from the
 * due time, not from the send, so when the server (or the client) cannot
 * keep up the waiting shows in the percentiles instead of slowing the
 * schedule ("coordinated omission", Gil Tene). Operations still waiting for
 * a connection when a timed run ends are counted as "unsent".
 *
 * Connections are opened before the clock starts; a connection lost during
 * the run (reset, Connection: close, timeout) is reopened for its next
 * request, and that reconnect counts in that request's latency. A failed
 * connect waits 50 ms before the connection is used again, so a dead server
 * makes a steady trickle of connect errors rather than a busy loop.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench.h"

#define RETRY_NS 50000000ull /* wait after a failed connect */
#define SCAN_NS  20000000ull /* timeout and retry scan period */
#define READ_BUF 65536

enum { C_CLOSED, C_CONNECTING, C_IDLE, C_BUSY, C_WAIT };

struct conn {
	int fd;
	int state;
	size_t ep;
	struct worker *w;
	struct cli_buf wbuf;
	size_t woff;
	struct bench_resp resp;
	struct cli_buf body;
	struct bench_op op;
	int has_op;
	uint64_t t_start;  /* latency origin */
	uint64_t deadline; /* timeout of the request or connect */
	uint64_t retry_at; /* C_WAIT: usable again from then */
};

struct addr {
	struct sockaddr_storage sa;
	socklen_t len;
};

struct worker {
	struct bench_job *job;
	const struct bench_endpoint *eps;
	const struct addr *addrs;
	unsigned id;
	struct conn *conns;
	size_t nconns;
	size_t *free; /* stack of idle or closed connections */
	size_t nfree;
	size_t inflight;
	int epfd;
	struct bench_gen gen;
	struct bench_result res;
	pthread_barrier_t *barrier;
	pthread_t thread;
	_Atomic unsigned *finished; /* threads done, for the progress line */
	uint64_t t0, t_end, t_last;
	uint64_t interval_ns; /* open loop */
	uint64_t scheduled;   /* open loop: operations handed out */
	uint64_t timeout_ns;
	uint64_t next_scan;
	int gen_done;
	int fatal; /* -ENOMEM */
	char rbuf[READ_BUF];
};

int bench_endpoint_parse(const char *url, struct bench_endpoint *ep)
{
	const char *p = url, *host, *hend, *port = NULL, *end;
	size_t hl;

	memset(ep, 0, sizeof(*ep));
	if (strncmp(p, "http://", 7) != 0 || strpbrk(p, "\"\\ \t\r\n"))
		return -EINVAL;
	p += 7;
	end = p + strcspn(p, "/?#");
	if (*p == '[') {
		host = p + 1;
		hend = memchr(host, ']', (size_t)(end - host));
		if (!hend)
			return -EINVAL;
		if (hend + 1 < end) {
			if (hend[1] != ':')
				return -EINVAL;
			port = hend + 2;
		}
	} else {
		host = p;
		hend = memchr(p, ':', (size_t)(end - p));
		if (hend)
			port = hend + 1;
		else
			hend = end;
	}
	hl = (size_t)(hend - host);
	if (!hl || hl >= sizeof(ep->host) || (port && (end - port < 1 || end - port > 5)))
		return -EINVAL;
	memcpy(ep->host, host, hl);
	if (port) {
		memcpy(ep->port, port, (size_t)(end - port));
		if (strspn(ep->port, "0123456789") != strlen(ep->port))
			return -EINVAL;
	} else {
		strcpy(ep->port, "80");
	}
	snprintf(ep->hostport, sizeof(ep->hostport), "%.*s", (int)(end - p), p);
	return 0;
}

static void free_push(struct worker *w, struct conn *c)
{
	w->free[w->nfree++] = (size_t)(c - w->conns);
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_CLOSED;
}

/* Starts a non-blocking connect. 0, or -errno. */
static int conn_open(struct conn *c, uint64_t now)
{
	const struct addr *a = &c->w->addrs[c->ep];
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP};
	int one = 1, fd;

	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) < 0 && errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		return -e;
	}
	ev.data.ptr = c;
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	c->fd = fd;
	c->state = C_CONNECTING;
	c->deadline = now + c->w->timeout_ns;
	return 0;
}

static void count_done(struct worker *w, int failed)
{
	atomic_fetch_add_explicit(failed ? &w->job->failed : &w->job->done, 1,
				  memory_order_relaxed);
}

/* The operation of c failed with err; the connection is closed. */
static void op_fail(struct conn *c, int err, uint64_t now)
{
	struct worker *w = c->w;

	conn_close(c);
	if (c->has_op) {
		if (bench_result_add(&w->res, w->job, now - w->t0, 0, err, 0))
			w->fatal = -ENOMEM;
		count_done(w, 1);
		c->has_op = 0;
		w->inflight--;
		w->t_last = now;
	}
	if (err == BENCH_ERR_CONNECT) {
		c->state = C_WAIT;
		c->retry_at = now + RETRY_NS;
	} else {
		free_push(w, c);
	}
}

static void op_complete(struct conn *c, uint64_t now)
{
	struct worker *w = c->w;
	const struct bench_op *op = &c->op;
	int err, status = c->resp.status;
	unsigned i;

	err = bench_check_reply(w->job, op, status, c->body.data, c->body.len);
	if (err == BENCH_ERR_HTTP && status >= 0 && status < 600) {
		char why[BENCH_REASON_LEN];

		w->res.status[status]++;
		bench_reply_reason(c->body.data, c->body.len, why);
		bench_result_reason(&w->res, status, why, 1);
	}
	if (bench_result_add(&w->res, w->job, now - w->t0, now - c->t_start, err, op->n))
		w->fatal = -ENOMEM;
	if (op->verify && (err == BENCH_ERR_NOTFOUND || err == BENCH_ERR_MISMATCH) &&
	    (!w->res.has_lost || op->index < w->res.lost_index)) {
		w->res.has_lost = 1;
		w->res.lost_index = op->index;
	}
	if (err < 0 && op->record)
		for (i = 0; i < op->n; i++)
			if (bench_result_ack(&w->res, op->index + i))
				w->fatal = -ENOMEM;
	count_done(w, err >= 0);
	c->has_op = 0;
	w->inflight--;
	w->t_last = now;
	if (c->resp.conn_close)
		conn_close(c);
	else
		c->state = C_IDLE;
	free_push(w, c);
}

static void conn_write(struct conn *c, uint64_t now)
{
	while (c->woff < c->wbuf.len) {
		ssize_t n = send(c->fd, c->wbuf.data + c->woff, c->wbuf.len - c->woff,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			op_fail(c, BENCH_ERR_CLOSED, now);
			return;
		}
		c->woff += (size_t)n;
	}
}

static void conn_read(struct conn *c, uint64_t now)
{
	struct worker *w = c->w;

	for (;;) {
		ssize_t n = recv(c->fd, w->rbuf, sizeof(w->rbuf), 0);
		long used;
		int done;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (c->state == C_BUSY)
				op_fail(c, BENCH_ERR_CLOSED, now);
			else
				conn_close(c);
			return;
		}
		if (n == 0) {
			if (c->state != C_BUSY) {
				conn_close(c); /* an idle connection closed by the server */
				return;
			}
			if (bench_resp_eof(&c->resp))
				op_complete(c, now);
			else
				op_fail(c, BENCH_ERR_CLOSED, now);
			if (c->state != C_CLOSED)
				conn_close(c);
			return;
		}
		if (c->state != C_BUSY) { /* bytes nobody asked for */
			conn_close(c);
			return;
		}
		used = bench_resp_feed(&c->resp, w->rbuf, (size_t)n, &done);
		if (used < 0) {
			if (used == -ENOMEM)
				w->fatal = -ENOMEM;
			op_fail(c, BENCH_ERR_PROTOCOL, now);
			return;
		}
		if (done) {
			op_complete(c, now);
			if (used < n && c->state != C_CLOSED)
				conn_close(c); /* more than one reply: not ours to parse */
			return;
		}
	}
}

static void on_event(struct conn *c, uint32_t events, uint64_t now)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			op_fail(c, BENCH_ERR_CONNECT, now);
			return;
		}
		if (!c->has_op) {
			c->state = C_IDLE;
			return;
		}
		c->state = C_BUSY;
	}
	if (c->state == C_BUSY && (events & EPOLLOUT))
		conn_write(c, now);
	if ((c->state == C_BUSY || c->state == C_IDLE) &&
	    (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		conn_read(c, now);
}

/* Hands op to connection c (idle or closed), latency counted from t_start. */
static void op_start(struct worker *w, struct conn *c, const struct bench_op *op, uint64_t t_start,
		     uint64_t now)
{
	int rc;

	c->op = *op;
	c->has_op = 1;
	c->t_start = t_start;
	w->inflight++;
	cli_buf_reset(&c->wbuf);
	cli_buf_reset(&c->body);
	c->woff = 0;
	if (bench_build_request(w->job, op, w->eps[c->ep].hostport, &c->wbuf)) {
		w->fatal = -ENOMEM;
		op_fail(c, BENCH_ERR_PROTOCOL, now);
		return;
	}
	bench_resp_init(&c->resp, &c->body, 0);
	c->deadline = now + w->timeout_ns;
	if (c->state == C_CLOSED) {
		rc = conn_open(c, now);
		if (rc)
			op_fail(c, BENCH_ERR_CONNECT, now);
		return; /* the request goes out once connected */
	}
	c->state = C_BUSY;
	conn_write(c, now);
}

/* Gives due operations to free connections. */
static void dispatch(struct worker *w, uint64_t now)
{
	struct bench_op op;

	while (!w->gen_done && w->nfree && !w->fatal) {
		uint64_t t_start = now;

		if (w->t_end && now >= w->t_end) {
			w->gen_done = 1;
			break;
		}
		if (w->interval_ns) {
			t_start = w->t0 + w->scheduled * w->interval_ns;
			if (t_start > now)
				break;
			if (w->t_end && t_start >= w->t_end) {
				w->gen_done = 1;
				break;
			}
		}
		if (bench_gen_next(&w->gen, w->job, &op)) {
			w->gen_done = 1;
			break;
		}
		w->scheduled++;
		op_start(w, &w->conns[w->free[--w->nfree]], &op, t_start, now);
	}
}

/* Timeouts and the end of connect back-offs. */
static void scan(struct worker *w, uint64_t now)
{
	size_t i;

	for (i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		if ((c->state == C_BUSY || c->state == C_CONNECTING) && now >= c->deadline) {
			if (c->has_op)
				op_fail(c, c->state == C_CONNECTING ? BENCH_ERR_CONNECT
								    : BENCH_ERR_TIMEOUT,
					now);
			else
				op_fail(c, BENCH_ERR_CONNECT, now);
		} else if (c->state == C_WAIT && now >= c->retry_at) {
			c->state = C_CLOSED;
			free_push(w, c);
		}
	}
	w->next_scan = now + SCAN_NS;
}

static uint64_t next_wake(const struct worker *w, uint64_t now)
{
	uint64_t t = w->next_scan;

	if (!w->gen_done && w->interval_ns && w->nfree) {
		uint64_t due = w->t0 + w->scheduled * w->interval_ns;

		if (due < t)
			t = due;
	}
	if (!w->gen_done && w->t_end && w->t_end < t)
		t = w->t_end;
	return t > now ? t - now : 0;
}

/* Waits up to wait_ns for events. With --busy-poll, a thread waiting on a
 * single reply first polls without sleeping for up to that long: the reply
 * then finds it awake, which on a virtual machine saves tens of microseconds
 * a round trip (the cost of waking a sleeping CPU), so a sequential client
 * measures the server rather than the wake-up. With more requests in flight
 * replies come often enough, and spinning took CPU from the servers (-10% on
 * 64 connections). */
static int wait_events(struct worker *w, struct epoll_event *evs, int max, uint64_t wait_ns)
{
	uint64_t busy = (uint64_t)w->job->busy_poll_us * 1000;
	if (busy && wait_ns && w->inflight == 1) { /* waiting on one reply: sequential */
		uint64_t t0 = bench_now_ns(), spent = 0;
		int n;
		if (busy > wait_ns)
			busy = wait_ns;
		while ((n = epoll_wait(w->epfd, evs, max, 0)) == 0 &&
		       (spent = bench_now_ns() - t0) < busy)
			sched_yield(); /* a thread with work to do goes first */
		if (n != 0)
			return n;
		wait_ns -= spent < wait_ns ? spent : wait_ns;
	}
	struct timespec ts = {(time_t)(wait_ns / 1000000000u), (long)(wait_ns % 1000000000u)};
	int n = epoll_pwait2(w->epfd, evs, max, &ts, NULL);

	if (n < 0 && errno == ENOSYS)
		n = epoll_wait(w->epfd, evs, max, (int)((wait_ns + 999999) / 1000000));
	return n;
}

static void loop(struct worker *w, int warmup)
{
	struct epoll_event evs[64];
	int i, n;

	for (;;) {
		uint64_t now = bench_now_ns();

		if (now >= w->next_scan)
			scan(w, now);
		if (warmup) {
			size_t k, pending = 0;

			for (k = 0; k < w->nconns; k++)
				pending += w->conns[k].state == C_CONNECTING;
			if (!pending)
				return;
		} else {
			dispatch(w, now);
			if ((w->gen_done || w->fatal) && !w->inflight)
				return;
		}
		n = wait_events(w, evs, 64, next_wake(w, now));
		now = bench_now_ns();
		for (i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events, now);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench_job *job = w->job;
	uint64_t now = bench_now_ns();
	size_t i;

	/* Open every connection before the clock starts. */
	w->next_scan = now + SCAN_NS;
	for (i = 0; i < w->nconns; i++)
		if (conn_open(&w->conns[i], now) == 0)
			w->conns[i].state = C_CONNECTING;
	loop(w, 1);
	w->nfree = 0;
	for (i = 0; i < w->nconns; i++) {
		if (w->conns[i].state == C_WAIT)
			continue;
		if (w->conns[i].state != C_IDLE)
			conn_close(&w->conns[i]);
		free_push(w, &w->conns[i]);
	}
	pthread_barrier_wait(w->barrier);

	w->t0 = w->t_last = bench_now_ns();
	w->t_end = job->count || job->duration_s <= 0 ? 0 : w->t0 + (uint64_t)(job->duration_s * 1e9);
	loop(w, 0);
	w->res.elapsed_s = (double)(w->t_last - w->t0) / 1e9;
	if (w->interval_ns && w->t_end && !job->stop) {
		/* Operations due before the end that never got a connection. */
		uint64_t due = (w->t_end - w->t0 + w->interval_ns - 1) / w->interval_ns;

		if (due > w->scheduled) {
			w->res.errors += due - w->scheduled;
			w->res.err[BENCH_ERR_UNSENT] += due - w->scheduled;
		}
	}
	for (i = 0; i < w->nconns; i++)
		conn_close(&w->conns[i]);
	atomic_fetch_add(w->finished, 1);
	return NULL;
}

/* Resolves each endpoint once; the first address is used. */
static int resolve(const struct bench_endpoint *eps, size_t neps, struct addr *out, char *err,
		   size_t err_len)
{
	size_t i;

	for (i = 0; i < neps; i++) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
		int rc = getaddrinfo(eps[i].host, eps[i].port, &hints, &ai);

		if (rc) {
			snprintf(err, err_len, "cannot resolve %s: %s", eps[i].host,
				 gai_strerror(rc));
			return -EHOSTUNREACH;
		}
		memcpy(&out[i].sa, ai->ai_addr, ai->ai_addrlen);
		out[i].len = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	return 0;
}

static void draw_progress(FILE *f, const struct bench_job *job, const char *label, uint64_t t0,
			  uint64_t now)
{
	uint64_t done = atomic_load(&job->done), failed = atomic_load(&job->failed);
	double el = (double)(now - t0) / 1e9, frac;
	char bar[31];
	int i, fill;

	frac = job->count ? (double)(done + failed) / (double)job->count
			  : (job->duration_s > 0 ? el / job->duration_s : 0);
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * 30);
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '=' : ' ';
	bar[30] = '\0';
	fprintf(f, "\r%-8s [%s] %3d%% %llu ops %.0f/s %llu errors ", label, bar, (int)(frac * 100),
		(unsigned long long)done, el > 0 ? (double)done / el : 0.0,
		(unsigned long long)failed);
	fflush(f);
}

int bench_engine_run(struct bench_job *job, const struct bench_endpoint *eps, size_t neps,
		     struct bench_result *result, FILE *progress, const char *label, char *err,
		     size_t err_len)
{
	unsigned t, nthreads = job->threads ? job->threads : 1;
	struct worker **ws = NULL;
	struct addr *addrs = NULL;
	pthread_barrier_t barrier;
	_Atomic unsigned finished = 0;
	size_t j;
	int rc = 0;

	if (nthreads > job->conns)
		nthreads = job->conns;
	addrs = calloc(neps, sizeof(*addrs));
	ws = calloc(nthreads, sizeof(*ws));
	if (!addrs || !ws) {
		rc = -ENOMEM;
		goto out;
	}
	rc = resolve(eps, neps, addrs, err, err_len);
	if (rc)
		goto out;
	for (t = 0; t < nthreads; t++) {
		struct worker *w = calloc(1, sizeof(*w));
		size_t share = job->conns / nthreads + (t < job->conns % nthreads);
		uint64_t quota = job->count / nthreads + (t < job->count % nthreads);

		if (!w) {
			rc = -ENOMEM;
			goto out;
		}
		ws[t] = w;
		w->job = job;
		w->eps = eps;
		w->addrs = addrs;
		w->id = t;
		w->epfd = -1;
		w->conns = calloc(share, sizeof(*w->conns));
		w->free = calloc(share, sizeof(*w->free));
		if (!w->conns || !w->free || bench_result_init(&w->res)) {
			rc = -ENOMEM;
			goto out;
		}
		w->nconns = share;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0) {
			rc = -errno;
			snprintf(err, err_len, "epoll_create1: %s", strerror(errno));
			goto out;
		}
		for (j = 0; j < share; j++) {
			struct conn *c = &w->conns[j];
			size_t global = t + j * nthreads;

			c->fd = -1;
			c->w = w;
			c->ep = job->spread ? global % neps : 0;
		}
		w->timeout_ns = (uint64_t)(job->timeout_s * 1e9);
		if (job->rate > 0)
			w->interval_ns = (uint64_t)(1e9 * nthreads / job->rate);
		if (job->rate > 0 && !w->interval_ns)
			w->interval_ns = 1;
		bench_gen_init(&w->gen, job, t, quota);
	}
	if (pthread_barrier_init(&barrier, NULL, nthreads)) {
		rc = -ENOMEM;
		goto out;
	}
	for (t = 0; t < nthreads; t++) {
		ws[t]->barrier = &barrier;
		ws[t]->finished = &finished;
		if (pthread_create(&ws[t]->thread, NULL, worker_main, ws[t]))
			break;
	}
	/* NEVER expected: a thread that could not start would leave the others
	 * waiting at the barrier forever. */
	if (t < nthreads) {
		fprintf(stderr, "kvfs: cannot start bench threads\n");
		abort();
	}
	if (progress) {
		uint64_t t0 = bench_now_ns();

		while (atomic_load(&finished) < nthreads) {
			struct timespec ts = {0, 200000000};

			nanosleep(&ts, NULL);
			draw_progress(progress, job, label, t0, bench_now_ns());
		}
	}
	for (t = 0; t < nthreads; t++)
		pthread_join(ws[t]->thread, NULL);
	if (progress)
		fprintf(progress, "\r%80s\r", "");
	pthread_barrier_destroy(&barrier);
	for (t = 0; t < nthreads; t++) {
		if (ws[t]->fatal && !rc)
			rc = ws[t]->fatal;
		if (!rc && bench_result_merge(result, &ws[t]->res))
			rc = -ENOMEM;
	}
	if (rc == -ENOMEM)
		snprintf(err, err_len, "out of memory");
out:
	for (t = 0; ws && t < nthreads; t++) {
		struct worker *w = ws[t];

		if (!w)
			continue;
		for (j = 0; j < w->nconns; j++) {
			cli_buf_free(&w->conns[j].wbuf);
			cli_buf_free(&w->conns[j].body);
		}
		if (w->epfd >= 0)
			close(w->epfd);
		bench_result_close(&w->res);
		free(w->conns);
		free(w->free);
		free(w);
	}
	free(ws);
	free(addrs);
	return rc;
}
