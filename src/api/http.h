/*
 * The REST front end: libmicrohttpd daemons in external epoll mode, one per
 * worker thread of ours, sharing one listening socket; workers poll briefly
 * without sleeping after work (busy_poll_us). Handlers never block on
 * consensus. A request that needs the node
 * (every write, linearizable reads on a replicated node) is handed to
 * node_submit() and its connection suspended; the node loop's completion
 * callback resumes it and the handler runs again to answer.
 *
 * Threads: http_server_create/destroy from the main thread; handlers run on
 * the workers; completion callbacks on the node loop thread.
 */
#ifndef KVFS_API_HTTP_H
#define KVFS_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node;
struct http_server;

struct http_config {
	const char *listen;       /* "HOST:PORT" ("127.0.0.1:8000") */
	unsigned threads;         /* worker threads, a daemon each (default 2) */
	unsigned busy_poll_us;    /* poll without sleeping this long after work */
	unsigned max_connections; /* default 1024 */
	unsigned conn_timeout_s;  /* idle keep-alive timeout (default 60) */
	size_t max_key;           /* bytes (default 4096) */
	size_t max_value;         /* bytes (default 1 MiB) */
	size_t max_batch_items;   /* default 10000 */
	size_t max_body;          /* bytes (default 16 MiB) */
	bool use_poll;            /* poll(2) instead of epoll, one thread (fuzzing) */
	/* Values reported by /health (the seed's fields). */
	const char *node_address; /* "host:port" of this node's peer endpoint */
	unsigned api_port;
};

#define HTTP_BUSY_POLL_DEFAULT_US 50

void http_config_default(struct http_config *c);

/* Starts serving. Returns 0 or a negative code (bad address, port in use:
 * logged). */
int http_server_create(const struct http_config *cfg, struct node *node, struct http_server **out);
/* The bound TCP port (useful after listening on port 0). */
unsigned http_server_port(struct http_server *s);
/* Serves an already-connected stream socket (the daemon takes ownership of
 * fd). Used by the HTTP fuzzer to feed requests through a socketpair; only
 * with use_poll. Returns 0, -EIO, or -ENOTSUP without use_poll. */
int http_server_add_connection(struct http_server *s, int fd);
/* Stops accepting, waits for in-flight handlers and for the requests that
 * wait on the node (stop the node first: node_stop answers them), frees. */
void http_server_destroy(struct http_server *s);

/* Registers the HTTP metrics (seed's kvstore_* families and per-route
 * request counters). Call once before serving. */
int http_register_metrics(void);

#endif
