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
#include <jansson.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_internal.h"
#include "api/json_text.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

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
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
		/* /kv/batch and /kv/range are also the keys "batch" and "range". */
		const char *allow = req->route == R_KV      ? "GET, HEAD, PUT, DELETE"
				    : req->route == R_BATCH ? "GET, HEAD, PUT, DELETE"
				    : req->route == R_RANGE ? "GET, HEAD, PUT, DELETE, POST"
				    : req->route == R_TRANSFER ? "POST"
				    : req->route == R_MEMBERS ? "GET, POST, DELETE"
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

enum MHD_Result http_respond_code(struct http_req *req, int code)
{
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

static void on_node_done(struct node_req *nreq)
{
	struct http_req *req = nreq->ud;
	MHD_resume_connection(req->conn);
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
	int rc = node_submit(req->srv->node, &req->nreq);
	if (rc < 0) {
		req->nreq.result = rc;
		req->resume = NULL; /* answer the error when MHD calls us again */
		MHD_resume_connection(req->conn);
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
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			 (cfg->use_poll ? MHD_USE_POLL : MHD_USE_EPOLL);
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, access_handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->use_poll ? 0 : cfg->threads ? cfg->threads : 1),
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
		cfg->conn_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
		MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, s,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		/* Room for the longest key percent-encoded in the URL (3 bytes a
		 * byte) plus headers; the body is streamed separately. No more:
		 * libmicrohttpd zeroes the whole pool before every request (with
		 * 64 KiB of slack that memset was 7% of the CPU under load). */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(3 * cfg->max_key + 16384), MHD_OPTION_END);
	if (!s->mhd) {
		log_error("http", "cannot listen on %s (address in use or not available)",
			  cfg->listen);
		free(s);
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (info && info->port)
		s->cfg.api_port = info->port;
	log_info("http", "serving REST on %s (port %u)", cfg->listen, s->cfg.api_port);
	*out = s;
	return 0;
}

int http_server_add_connection(struct http_server *s, int fd)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
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
	MHD_stop_daemon(s->mhd);
	free(s);
}
