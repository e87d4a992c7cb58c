/*
 * libmicrohttpd daemon, routing, request lifecycle and response helpers.
 *
 * MHD calls the access handler several times per request: once with the
 * headers (we allocate struct http_req and route), once per body chunk (we
 * append to req->body, bounded by max_body), and once at the end (we run the
 * route's handler). A handler that needs the node suspends the connection;
 * when the node completes, the callback resumes it and MHD calls the access
 * handler once more, which runs req->resume.
 *
 * URLs reach us undecoded (the unescape callback is a no-op) so that keys
 * can hold any byte, '/' and NUL included, and so that a bad escape is a 400
 * rather than something MHD silently passes through.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <jansson.h>
#include <netdb.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_internal.h"
#include "api/json_text.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/ports.h"

enum route {
	R_NOT_FOUND,
	R_KV,
	R_BATCH,
	R_RANGE,
	R_HEALTH,
	R_REPLICATION,
	R_LIVEZ,
	R_READYZ,
	R_METRICS,
	R_MEMBERS,
	R_TRANSFER,
	R_COUNT
};

static const char *const route_names[R_COUNT] = {
	"other", "kv", "batch", "range", "health", "replication", "livez", "readyz", "metrics",
	"members", "transfer"};
static const unsigned metric_codes[] = {200, 304, 400, 404, 405, 409, 412, 413, 422, 500, 503};
#define N_CODES (sizeof metric_codes / sizeof metric_codes[0])
static struct metric_counter http_requests[R_COUNT][N_CODES + 1];

static const char *const op_names[OP_COUNT] = {"put", "batch_put", "delete", "get", "read_range"};
static struct metric_counter op_total[OP_COUNT][2];
static struct metric_histogram op_latency[OP_COUNT];

void http_config_default(struct http_config *c)
{
	memset(c, 0, sizeof *c);
	c->listen = "127.0.0.1:8000";
	c->threads = 2;
	c->busy_poll_us = HTTP_BUSY_POLL_DEFAULT_US;
	c->max_connections = 1024;
	c->conn_timeout_s = 60;
	c->max_key = 4096;
	c->max_value = 1u << 20;
	c->max_batch_items = 10000;
	c->max_body = 16u << 20;
	c->node_address = "127.0.0.1:7000";
	c->api_port = 8000;
}

int http_register_metrics(void)
{
	static char labels[R_COUNT][N_CODES + 1][48];
	static char op_labels[OP_COUNT][2][64], op_only[OP_COUNT][32];
	int rc = 0;
	for (int o = 0; o < OP_COUNT; o++) {
		for (int s = 0; s < 2; s++) {
			snprintf(op_labels[o][s], sizeof op_labels[o][s],
				 "operation=\"%s\",status=\"%s\"", op_names[o],
				 s ? "failure" : "success");
			rc |= metrics_counter("kvstore_operations_total",
					      "Key-value operations by operation and outcome.",
					      op_labels[o][s], &op_total[o][s]);
		}
	}
	for (int o = 0; o < OP_COUNT; o++) {
		snprintf(op_only[o], sizeof op_only[o], "operation=\"%s\"", op_names[o]);
		metric_histogram_init(&op_latency[o], metric_latency_buckets, metric_latency_n);
		rc |= metrics_histogram("kvstore_operation_latency_seconds",
					"Latency of key-value operations, from request to reply.",
					op_only[o], &op_latency[o]);
	}
	for (int r = 0; r < R_COUNT; r++) {
		for (size_t c = 0; c <= N_CODES; c++) {
			if (c < N_CODES)
				snprintf(labels[r][c], sizeof labels[r][c], "route=\"%s\",code=\"%u\"",
					 route_names[r], metric_codes[c]);
			else
				snprintf(labels[r][c], sizeof labels[r][c],
					 "route=\"%s\",code=\"other\"", route_names[r]);
			rc |= metrics_counter("kvfs_http_requests_total",
					      "HTTP requests by route and status code.", labels[r][c],
					      &http_requests[r][c]);
		}
	}
	return rc ? -ENOMEM : 0;
}

void http_count_op(enum http_op op, bool success, double seconds)
{
	if (op >= OP_COUNT)
		return;
	metric_inc(&op_total[op][success ? 0 : 1]);
	metric_observe(&op_latency[op], seconds);
}

static void count_request(struct http_req *req)
{
	size_t c = 0;
	while (c < N_CODES && metric_codes[c] != (unsigned)req->status)
		c++;
	metric_inc(&http_requests[req->route][c]);
	if (req->op != OP_NONE && req->status)
		http_count_op(req->op, req->status < 400 || (req->op == OP_GET && req->status == 404),
			      (double)(clock_mono_ns() - req->t0_ns) / 1e9);
}

/* ---- responses ---- */

enum MHD_Result http_respond(struct http_req *req, unsigned status, const char *ctype,
			     struct byte_buf *body)
{
	size_t len = 0;
	void *data = body ? bb_take(body, &len) : NULL;
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, data ? data : (void *)"", data ? MHD_RESPMEM_MUST_FREE
										 : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	if (ctype)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (req->retry_after_s) {
		char secs[16];
		snprintf(secs, sizeof secs, "%u", req->retry_after_s);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
		req->retry_after_s = 0;
	}
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
		/* /kv/batch and /kv/range are also the keys "batch" and "range". */
		const char *allow = req->route == R_KV      ? "GET, HEAD, PUT, DELETE"
				    : req->route == R_BATCH ? "GET, HEAD, PUT, DELETE"
				    : req->route == R_RANGE ? "GET, HEAD, PUT, DELETE, POST"
				    : req->route == R_TRANSFER ? "POST"
				    : req->route == R_MEMBERS ? "GET, HEAD, POST, DELETE"
							    : "GET, HEAD";
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	}
	req->status = (int)status;
	enum MHD_Result ret = MHD_queue_response(req->conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result http_respond_json(struct http_req *req, unsigned status, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return http_respond_code(req, -ENOMEM);
	struct byte_buf b;
	bb_init(&b);
	bb_put(&b, s, strlen(s));
	free(s);
	return http_respond(req, status, "application/json", &b);
}

enum MHD_Result http_respond_detail(struct http_req *req, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct byte_buf b;
	bb_init(&b);
	bb_put(&b, "{\"detail\":", 10);
	json_put_string(&b, (const uint8_t *)msg, strlen(msg));
	bb_u8(&b, '}');
	return http_respond(req, status, "application/json", &b);
}

/* A 503 that will likely pass if the client waits a little: the node is
 * holding writes while its state machine catches up, has too many requests
 * waiting, or the cluster is electing a leader (about a second). Clients
 * that honour Retry-After (RFC 9110 10.2.3) back off instead of hammering
 * the node. The others (storage failure, shutting down, an outcome unknown
 * after a timeout or a leader change) are not a matter of waiting here. */
static unsigned retry_after(int code)
{
	return code == KVFS_EBEHIND || code == KVFS_EBUSY || code == KVFS_ENOLEADER ? 1 : 0;
}

enum MHD_Result http_respond_code(struct http_req *req, int code)
{
	req->retry_after_s = retry_after(code);
	return http_respond_detail(req, (unsigned)kvfs_err_http(code), "%s", kvfs_strerror(code));
}

enum MHD_Result http_respond_422(struct http_req *req, const char *type, const char *msg,
				 long pos)
{
	char head[160];
	struct byte_buf b;
	bb_init(&b);
	snprintf(head, sizeof head, "{\"detail\":[{\"type\":\"%s\",\"loc\":[\"body\"", type);
	bb_put(&b, head, strlen(head));
	if (pos >= 0) {
		snprintf(head, sizeof head, ",%ld", pos);
		bb_put(&b, head, strlen(head));
	}
	bb_put(&b, "],\"msg\":", 8);
	/* msg may quote the client's input (jansson does): escape it. */
	json_put_string(&b, (const uint8_t *)msg, strlen(msg));
	bb_put(&b, pos >= 0 ? ",\"input\":{}}]}" : ",\"input\":null}]}", pos >= 0 ? 14 : 16);
	return http_respond(req, 422, "application/json", &b);
}

/* ---- node round trips ---- */

/* The worker running this thread's daemon (NULL on MHD's own thread in
 * use_poll mode). */
static __thread struct http_worker *current_worker;

/* Resumes a suspended connection from another thread and wakes the worker
 * whose daemon holds it. MHD's own inter-thread channel is in the daemon's
 * epoll set, but MHD_run handles resumptions before it drains that channel:
 * a resume landing between the two would leave the worker asleep with the
 * connection ready. The worker's wake_fd (level-triggered, read only after
 * it wakes) cannot be lost that way. */
static void resume_from_afar(struct http_req *req)
{
	struct http_worker *w = req->worker; /* req may be gone once resumed */
	MHD_resume_connection(req->conn);
	if (w) {
		uint64_t one = 1;
		if (write(w->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_error("http", "cannot wake a worker: %s", strerror(errno));
	}
}

static void on_node_done(struct node_req *nreq)
{
	resume_from_afar(nreq->ud);
}

enum MHD_Result http_submit(struct http_req *req, enum node_req_type type, http_stage_fn stage)
{
	req->nreq.type = type;
	req->nreq.data = req->txn.data;
	req->nreq.len = req->txn.len;
	req->nreq.done = on_node_done;
	req->nreq.ud = req;
	req->resume = stage;
	/* Suspend before submitting: the completion may run at once on the
	 * node thread, and resuming a connection that is not suspended is
	 * undefined in MHD. */
	MHD_suspend_connection(req->conn);
	req->suspended = true;
	if (req->worker)
		req->worker->suspended++;
	int rc = node_submit(req->srv->node, &req->nreq);
	if (rc < 0) {
		req->nreq.result = rc;
		req->resume = NULL; /* answer the error when MHD calls us again */
		resume_from_afar(req); /* the worker's loop must still learn of it */
	}
	return MHD_YES;
}

/* ---- URL helpers ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int http_pct_decode(const char *s, size_t len, bool plus_is_space, uint8_t **out, size_t *out_len)
{
	uint8_t *o = malloc(len + 1), *w = o;
	if (!o)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int h, l;
			if (len - i < 3 || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0) {
				free(o);
				return -1;
			}
			*w++ = (uint8_t)(h << 4 | l);
			i += 2;
		} else if (s[i] == '+' && plus_is_space) {
			*w++ = ' ';
		} else {
			*w++ = (uint8_t)s[i];
		}
	}
	*w = 0;
	*out = o;
	*out_len = (size_t)(w - o);
	return 0;
}

const char *http_arg(struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* Keeps URLs and arguments as they came: we decode with validation ourselves. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

/* ---- routing ---- */

static int route_of(const char *url)
{
	static const struct {
		const char *path;
		int route;
	} fixed[] = {{"/kv/batch", R_BATCH},   {"/kv/range", R_RANGE},
		     {"/health", R_HEALTH},    {"/debug/replication", R_REPLICATION},
		     {"/livez", R_LIVEZ},      {"/readyz", R_READYZ},
		     {"/metrics", R_METRICS},   {"/cluster/leader/transfer", R_TRANSFER}};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (strcmp(url, fixed[i].path) == 0)
			return fixed[i].route;
	if (strcmp(url, "/kv") == 0 || strcmp(url, "/kv/") == 0 || strncmp(url, "/kv/", 4) == 0)
		return R_KV;
	if (strncmp(url, "/cluster/members", 16) == 0 && (url[16] == 0 || url[16] == '/'))
		return R_MEMBERS;
	return R_NOT_FOUND;
}

static bool is(const char *m, const char *want)
{
	return strcmp(m, want) == 0;
}

static enum MHD_Result dispatch(struct http_req *req, const char *url)
{
	const char *m = req->method;
	bool get = is(m, "GET") || is(m, "HEAD");
	switch (req->route) {
	case R_BATCH:
		/* GET/DELETE /kv/batch address the key "batch". */
		if (is(m, "PUT"))
			return api_batch(req);
		return api_kv_dispatch(req, url);
	case R_RANGE:
		if (is(m, "POST"))
			return api_range(req);
		return api_kv_dispatch(req, url);
	case R_KV:
		return api_kv_dispatch(req, url);
	case R_HEALTH:
		return get ? api_health(req) : http_respond_detail(req, 405, "Method Not Allowed");
	case R_REPLICATION:
		return get ? api_replication(req) : http_respond_detail(req, 405, "Method Not Allowed");
	case R_LIVEZ:
		return get ? api_livez(req) : http_respond_detail(req, 405, "Method Not Allowed");
	case R_READYZ:
		return get ? api_readyz(req) : http_respond_detail(req, 405, "Method Not Allowed");
	case R_METRICS:
		return get ? api_metrics(req) : http_respond_detail(req, 405, "Method Not Allowed");
	case R_MEMBERS:
		return api_members(req, url);
	case R_TRANSFER:
		return api_transfer(req);
	default:
		return http_respond_detail(req, 404, "Not Found");
	}
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *req = *con_cls;

	if (!req) {
		req = calloc(1, sizeof *req);
		if (!req)
			return MHD_NO;
		req->srv = s;
		req->worker = current_worker;
		req->conn = conn;
		req->method = method;
		req->head = is(method, "HEAD");
		req->route = route_of(url);
		req->op = OP_NONE;
		req->t0_ns = clock_mono_ns();
		bb_init(&req->body);
		bb_init(&req->txn);
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!req->body_overflow && req->body.len + *upload_size > s->cfg.max_body)
			req->body_overflow = true;
		if (!req->body_overflow)
			bb_put(&req->body, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->suspended) {
		/* Resumed after the node completed our request. */
		req->suspended = false;
		if (req->worker)
			req->worker->suspended--;
		if (!req->resume)
			return http_respond_code(req, req->nreq.result);
		http_stage_fn stage = req->resume;
		req->resume = NULL;
		return stage(req);
	}
	if (req->body_overflow)
		return http_respond_detail(req, 413,
					   "Request body too large: limit is %zu bytes (--max-body)",
					   s->cfg.max_body);
	if (req->body.err)
		return http_respond_detail(req, 503, "Out of memory reading the request body");
	return dispatch(req, url);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	struct http_req *req = *con_cls;
	if (!req)
		return;
	if (req->suspended && req->worker) /* ended while the node had it */
		req->worker->suspended--;
	count_request(req);
	bb_free(&req->body);
	bb_free(&req->txn);
	free(req->key);
	if (req->state && req->state_free)
		req->state_free(req->state);
	free(req);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = 0;
	log_warn("http", "%s", msg);
}

/* Splits "host:port" / "[v6]:port" and resolves it. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen + strlen(listen) - 1)
		return -EINVAL;
	size_t hl = (size_t)(colon - listen);
	if (hl >= sizeof host)
		return -EINVAL;
	memcpy(host, listen, hl);
	host[hl] = 0;
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = 0;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
			*res;
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0)
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* ---- workers ---- */

/* Counts the closes of the worker's connections (see worker_main). */
static void conn_notify(void *cls, struct MHD_Connection *c, void **ctx,
			enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)c;
	(void)ctx;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED && current_worker)
		current_worker->closed++;
}

/* A worker runs its daemon until the server's stop_fd becomes readable and
 * none of its requests waits on the node any more (stopping the node first
 * answers those; MHD must not stop a daemon with suspended connections).
 * After every burst of work it polls its sockets without sleeping for
 * cfg.busy_poll_us before it blocks in epoll_wait: on a virtual machine,
 * waking a sleeping thread on another CPU costs tens of microseconds, more
 * than serving a GET, so a client sending its next request right after an
 * answer finds the worker awake. An idle server does not spin: it blocks
 * until a socket, a resumed connection (its wake_fd, resume_from_afar) or a
 * timeout wakes it. */
static void *worker_main(void *arg)
{
	struct http_worker *w = arg;
	const int64_t busy_ns = (int64_t)w->srv->cfg.busy_poll_us * 1000;
	struct epoll_event ev[3];
	current_worker = w;
	pthread_setname_np(pthread_self(), "kvfs-http");
	bool stopping = false;
	for (;;) {
		unsigned closed = w->closed;
		MHD_run(w->mhd);
		if (stopping && !w->suspended)
			return NULL;
		MHD_UNSIGNED_LONG_LONG ms;
		int timeout = -1, n = 0;
		if (MHD_get_timeout(w->mhd, &ms) == MHD_YES)
			timeout = ms > INT_MAX ? INT_MAX : (int)ms;
		/* A daemon at its connection limit stops listening, and starts
		 * again only at the run after a close: without a run at once, a
		 * connection waiting to be accepted would wait for some other
		 * event, maybe forever. (Not a plain rerun: stop_fd and wake_fd
		 * are still looked at.) */
		if (w->closed != closed)
			timeout = 0;
		/* No spinning while requests wait on the node: their answers
		 * come through wake_fd, and the node's threads need the CPU
		 * (spinning then cost a third of the throughput of 64
		 * connections on 2 cores). */
		if (timeout != 0 && busy_ns > 0 && !w->suspended) {
			int64_t until = clock_mono_ns() + busy_ns;
			while ((n = epoll_wait(w->epfd, ev, 3, 0)) == 0 && clock_mono_ns() < until)
				sched_yield(); /* a thread with work to do goes first */
		}
		if (n == 0)
			n = epoll_wait(w->epfd, ev, 3, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("http", "epoll_wait: %s; this worker stops", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t v;
			if (ev[i].data.fd == w->srv->stop_fd && !stopping) {
				/* Out of the set: it stays readable. */
				epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->srv->stop_fd, NULL);
				stopping = true;
			}
			if (ev[i].data.fd == w->wake_fd && read(w->wake_fd, &v, sizeof v) < 0 &&
			    errno != EAGAIN)
				log_error("http", "wake_fd: %s", strerror(errno));
		}
	}
	return NULL;
}

static int listen_socket(const struct sockaddr_storage *ss, socklen_t sl)
{
	int one = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)ss, sl) < 0 || listen(fd, 1024) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* A daemon listening on ss (MHD binds it), or else on listen_fd. */
static struct MHD_Daemon *start_daemon(struct http_server *s, unsigned flags, unsigned conn_limit,
				       const struct sockaddr_storage *ss, int listen_fd)
{
	struct MHD_OptionItem where[2] = {
		ss ? (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)ss}
		   : (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL},
		{MHD_OPTION_END, 0, NULL}};
	return MHD_start_daemon(
		flags, 0, NULL, NULL, access_handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_ARRAY, where,
		MHD_OPTION_CONNECTION_LIMIT, conn_limit, MHD_OPTION_CONNECTION_TIMEOUT,
		s->cfg.conn_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, conn_notify, s,
		MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, s,
		/* Room for the longest key percent-encoded in the URL (3 bytes a
		 * byte) plus headers; the body is streamed separately. No more:
		 * libmicrohttpd zeroes the whole pool before every request (with
		 * 64 KiB of slack that memset was 7% of the CPU under load). */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(3 * s->cfg.max_key + 16384), MHD_OPTION_END);
}

/* Stops and joins the running workers, then frees every daemon. */
static void stop_workers(struct http_server *s)
{
	uint64_t one = 1;
	if (s->stop_fd >= 0 && write(s->stop_fd, &one, sizeof one) != sizeof one)
		log_error("http", "cannot signal the workers to stop: %s", strerror(errno));
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct http_worker *w = &s->workers[i];
		if (w->running)
			pthread_join(w->thread, NULL);
		if (w->mhd && w->suspended)
			log_error("http", "a worker stopped with %u requests on the node; "
					  "its daemon is left as it is", w->suspended);
		else if (w->mhd)
			MHD_stop_daemon(w->mhd); /* closes its copy of the socket */
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->wake_fd >= 0)
			close(w->wake_fd);
	}
	free(s->workers);
	s->workers = NULL;
	s->nworkers = 0;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	s->listen_fd = s->stop_fd = -1;
}

static int start_workers(struct http_server *s, const struct sockaddr_storage *ss, socklen_t sl)
{
	unsigned n = s->cfg.threads ? s->cfg.threads : 1;
	if (n > s->cfg.max_connections)
		n = s->cfg.max_connections; /* a worker has at least one */
	unsigned flags = MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_EPOLL;
	if (ss->ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->listen_fd = listen_socket(ss, sl);
	if (s->listen_fd < 0)
		return s->listen_fd;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->workers = calloc(n, sizeof *s->workers);
	if (s->stop_fd < 0 || !s->workers)
		return -ENOMEM;
	s->nworkers = n;
	for (unsigned i = 0; i < n; i++)
		s->workers[i].epfd = s->workers[i].wake_fd = -1;
	for (unsigned i = 0; i < n; i++) {
		struct http_worker *w = &s->workers[i];
		w->srv = s;
		/* Each daemon owns a copy of the listening socket (it closes
		 * it when stopped, or may when it fails to start) and its share
		 * of the connection limit, as in MHD's own thread pool. */
		unsigned limit = s->cfg.max_connections / n + (i < s->cfg.max_connections % n);
		int fd = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (!(w->mhd = start_daemon(s, flags, limit, NULL, fd)))
			return -EIO;
		const union MHD_DaemonInfo *info =
			MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
		struct epoll_event in = {.events = EPOLLIN}, stop = {.events = EPOLLIN},
				   wake = {.events = EPOLLIN};
		in.data.fd = info ? info->epoll_fd : -1;
		stop.data.fd = s->stop_fd;
		if (!info || (w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    (w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			return -EIO;
		wake.data.fd = w->wake_fd;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, info->epoll_fd, &in) < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->stop_fd, &stop) < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &wake) < 0)
			return -EIO;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return -EAGAIN;
		w->running = true;
	}
	return 0;
}

int http_server_create(const struct http_config *cfg, struct node *node, struct http_server **out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct http_server *s;
	if (parse_listen(cfg->listen, &ss, &sl) < 0) {
		log_error("http", "bad listen address '%s' (want HOST:PORT)", cfg->listen);
		return KVFS_ECONFIG;
	}
	if (!(s = calloc(1, sizeof *s)))
		return -ENOMEM;
	s->cfg = *cfg;
	s->node = node;
	s->listen_fd = s->stop_fd = -1;
	int rc = 0;
	if (cfg->use_poll) {
		unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
				 MHD_USE_ERROR_LOG | MHD_USE_POLL |
				 (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
		if (!(s->mhd = start_daemon(s, flags, cfg->max_connections, &ss, -1)))
			rc = -EIO;
	} else {
		rc = start_workers(s, &ss, sl);
	}
	if (rc < 0) {
		char hint[320];
		ports_busy_hint_here(cfg->listen, -rc, hint, sizeof hint);
		log_error("http", "cannot serve on %s: %s%s", cfg->listen,
			  rc == -EIO ? "libmicrohttpd refused to start" : strerror(-rc), hint);
		stop_workers(s);
		free(s);
		return rc;
	}
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	if (s->listen_fd >= 0 && getsockname(s->listen_fd, (struct sockaddr *)&bound, &bl) == 0) {
		s->cfg.api_port = ntohs(bound.ss_family == AF_INET6
						? ((struct sockaddr_in6 *)&bound)->sin6_port
						: ((struct sockaddr_in *)&bound)->sin_port);
	} else if (s->mhd) {
		const union MHD_DaemonInfo *info =
			MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
		if (info && info->port)
			s->cfg.api_port = info->port;
	}
	log_info("http", "serving REST on %s (port %u, %u workers, busy poll %u us)", cfg->listen,
		 s->cfg.api_port, s->mhd ? 1 : s->nworkers, s->mhd ? 0 : cfg->busy_poll_us);
	*out = s;
	return 0;
}

int http_server_add_connection(struct http_server *s, int fd)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (!s->mhd) /* a worker's daemon is its thread's alone */
		return -ENOTSUP;
	return MHD_add_connection(s->mhd, fd, (struct sockaddr *)&peer, sizeof peer) == MHD_YES
		       ? 0
		       : -EIO;
}

unsigned http_server_port(struct http_server *s)
{
	return s->cfg.api_port;
}

void http_server_destroy(struct http_server *s)
{
	if (!s)
		return;
	stop_workers(s);
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	free(s);
}
