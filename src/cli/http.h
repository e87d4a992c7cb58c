/*
 * The client's HTTP layer: one libcurl easy handle for the whole process
 * (connections are kept alive between requests), a list of endpoints and the
 * failover rule.
 *
 * Failover rule: a request goes to the current endpoint; if that endpoint
 * cannot answer (connection refused, DNS failure, timeout, connection reset)
 * or answers 502, 503 or 504 (no leader, no quorum, shutting down), the same
 * request is tried on the next endpoint, each endpoint once. Any other answer
 * — success, a 4xx, a 500 — is final. The endpoint that answered becomes the
 * current one for later requests of the process.
 *
 * Not thread-safe: one struct cli_http per thread.
 */
#ifndef KVFS_CLI_HTTP_H
#define KVFS_CLI_HTTP_H

#include <stddef.h>
#include <stdio.h>

#include "cli/buf.h"

struct cli_http;

struct cli_http_request {
	const char *method;       /* "GET", "PUT", "POST", "DELETE" */
	const char *target;       /* path and query, e.g. "/kv?key=a" (borrowed) */
	const char *content_type; /* sent when body != NULL */
	const void *body;         /* borrowed; NULL for no body */
	size_t body_len;
	const char *accept;        /* Accept header, or NULL for application/json */
	const char *if_match;      /* revision, sent as If-Match: "<rev>"; or NULL */
	int if_none_match_any;     /* 1: send If-None-Match: * */
};

struct cli_http_response {
	long status;           /* HTTP status; 0 when no endpoint answered */
	struct cli_buf body;   /* response body, owned */
	char etag[64];         /* ETag value without quotes or W/, or "" */
	char content_type[128];
	const char *endpoint;  /* endpoint that answered (borrowed from the client) */
};

void cli_http_response_init(struct cli_http_response *resp);
void cli_http_response_free(struct cli_http_response *resp);

/* Creates a client over endpoints (n >= 1 base URLs; the array and strings are
 * copied). timeout_s bounds every request on one endpoint; the connect phase
 * is bounded by min(timeout_s, 3 s) so a dead host does not eat the whole
 * budget. With verbose, each attempt is logged to log. Returns NULL on
 * allocation or libcurl failure. curl_global_init() must have been called. */
struct cli_http *cli_http_create(char *const *endpoints, size_t n, double timeout_s, int verbose,
				 FILE *log);
void cli_http_destroy(struct cli_http *h);

size_t cli_http_endpoint_count(const struct cli_http *h);
const char *cli_http_endpoint(const struct cli_http *h, size_t i);

/* Performs req with failover (see above) and fills resp (reset first).
 * Returns 0 when an endpoint gave a final answer (any status: check
 * resp->status); -EHOSTUNREACH when every endpoint failed — resp->status is
 * then the last 5xx seen (or 0) and err describes the last failure;
 * -ENOMEM. */
int cli_http_do(struct cli_http *h, const struct cli_http_request *req,
		struct cli_http_response *resp, char *err, size_t err_len);

/* Same, on endpoint i only, without failover. Returns 0 when it answered
 * (any status), -EHOSTUNREACH when it could not (err says why), -ENOMEM. */
int cli_http_do_at(struct cli_http *h, size_t i, const struct cli_http_request *req,
		   struct cli_http_response *resp, char *err, size_t err_len);

#endif
