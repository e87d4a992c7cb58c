/* Shared by the REST handler files; not an interface for other modules. */
#ifndef KVFS_API_HTTP_INTERNAL_H
#define KVFS_API_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>

#include "api/http.h"
#include "common/bytes.h"
#include "common/metrics.h"
#include "node/node.h"

enum http_op { OP_PUT, OP_BATCH_PUT, OP_DELETE, OP_GET, OP_RANGE, OP_NONE, OP_COUNT = OP_NONE };

/* One HTTP worker: a daemon in MHD's external epoll mode and the thread
 * that runs it (see worker_main in http.c). */
struct http_worker {
	struct http_server *srv;
	struct MHD_Daemon *mhd;
	int epfd;    /* the daemon's epoll fd, wake_fd and the server's stop_fd */
	int wake_fd; /* eventfd: a connection of this daemon was resumed */
	unsigned suspended; /* its requests waiting on the node (its thread only) */
	unsigned closed;    /* connections it closed, ever (its thread only) */
	pthread_t thread;
	bool running;
};

struct http_server {
	struct http_config cfg;
	struct node *node;
	struct MHD_Daemon *mhd; /* use_poll (fuzzing): one daemon, MHD's own thread */
	int listen_fd;          /* shared by the workers' daemons */
	int stop_fd;            /* eventfd, readable once destroy begins */
	unsigned nworkers;
	struct http_worker *workers;
};

struct http_req;
/* A handler stage: answers (queues a response) or suspends the connection
 * after setting req->resume to the stage to run when the node completes. */
typedef enum MHD_Result (*http_stage_fn)(struct http_req *req);

/* One HTTP request. Allocated on the first handler call, freed when MHD
 * reports the request completed. Owned by the connection's worker thread,
 * except req->nreq while the node holds it. */
struct http_req {
	struct http_server *srv;
	struct http_worker *worker; /* whose daemon serves the connection */
	struct MHD_Connection *conn;
	const char *method;
	bool head;
	int route;
	enum http_op op;
	int64_t t0_ns;
	int status; /* answered status, for metrics */
	unsigned retry_after_s; /* > 0: the answer carries Retry-After */
	struct byte_buf body;
	bool body_overflow;
	uint8_t *key; /* decoded key (malloc'd) */
	size_t klen;
	struct byte_buf txn;
	struct node_req nreq;
	bool suspended;
	http_stage_fn resume;
	void *state; /* stage-specific (range scan) */
	void (*state_free)(void *);
};

/* Responses. Each returns MHD's result of queueing. */
enum MHD_Result http_respond(struct http_req *req, unsigned status, const char *ctype,
			     struct byte_buf *body);
/* Serialises o compactly (taking the reference) and answers with it. */
enum MHD_Result http_respond_json(struct http_req *req, unsigned status, json_t *o);
enum MHD_Result http_respond_detail(struct http_req *req, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* {"detail": <code's message>} with the code's HTTP status. */
enum MHD_Result http_respond_code(struct http_req *req, int code);
/* FastAPI-shaped validation error: {"detail":[{"type":..,"loc":["body",..],"msg":..}]} */
enum MHD_Result http_respond_422(struct http_req *req, const char *type, const char *msg,
				 long pos);

/* Hands req->nreq to the node and suspends the connection; the stage runs
 * when the node completes. On submit failure answers with the error. */
enum MHD_Result http_submit(struct http_req *req, enum node_req_type type, http_stage_fn stage);

/* Percent-decodes [s, s+len) into malloc'd bytes. Returns 0 or -1 on a bad
 * escape. '+' is kept as '+' (paths) unless plus_is_space. */
int http_pct_decode(const char *s, size_t len, bool plus_is_space, uint8_t **out, size_t *out_len);

/* Raw (undecoded) query argument, or NULL. */
const char *http_arg(struct http_req *req, const char *name);
const char *http_header(struct http_req *req, const char *name);

/* Handlers (api_kv.c, api_status.c). */
enum MHD_Result api_kv_dispatch(struct http_req *req, const char *path);
enum MHD_Result api_batch(struct http_req *req);
enum MHD_Result api_range(struct http_req *req);
enum MHD_Result api_health(struct http_req *req);
enum MHD_Result api_replication(struct http_req *req);
enum MHD_Result api_livez(struct http_req *req);
enum MHD_Result api_readyz(struct http_req *req);
enum MHD_Result api_metrics(struct http_req *req);
enum MHD_Result api_members(struct http_req *req, const char *url);
enum MHD_Result api_transfer(struct http_req *req);

/* Metrics of the seed's families, indexed by enum http_op. */
void http_count_op(enum http_op op, bool success, double seconds);

#endif
