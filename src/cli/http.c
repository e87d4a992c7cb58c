/*
 * libcurl wrapper with endpoint failover for the kvfs client.
 *
 * One easy handle serves every request of the process: curl_easy_reset()
 * between requests clears the options but keeps the connection cache, so a
 * command that pages through a range or a later `bench` reuses one
 * keep-alive connection. Every option is set afresh for each attempt, which
 * keeps attempts independent (no method or body leaking from the last one).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli/http.h"

struct cli_http {
	CURL *curl;
	char **endpoints; /* owned, n entries */
	size_t n;
	size_t current;   /* index of the endpoint tried first */
	long timeout_ms;
	long connect_timeout_ms;
	int verbose;
	FILE *log;        /* borrowed */
	struct cli_buf url;
};

void cli_http_response_init(struct cli_http_response *resp)
{
	resp->status = 0;
	cli_buf_init(&resp->body);
	resp->etag[0] = '\0';
	resp->content_type[0] = '\0';
	resp->endpoint = NULL;
}

void cli_http_response_free(struct cli_http_response *resp)
{
	cli_buf_free(&resp->body);
	cli_http_response_init(resp);
}

struct cli_http *cli_http_create(char *const *endpoints, size_t n, double timeout_s, int verbose,
				 FILE *log)
{
	struct cli_http *h;
	size_t i;

	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->endpoints = calloc(n, sizeof(*h->endpoints));
	if (!h->endpoints)
		goto err_after_h;
	for (h->n = 0; h->n < n; h->n++) {
		h->endpoints[h->n] = strdup(endpoints[h->n]);
		if (!h->endpoints[h->n])
			goto err_after_endpoints;
	}
	h->curl = curl_easy_init();
	if (!h->curl)
		goto err_after_endpoints;
	h->timeout_ms = (long)(timeout_s * 1000.0 + 0.5);
	if (h->timeout_ms < 1)
		h->timeout_ms = 1;
	h->connect_timeout_ms = h->timeout_ms < 3000 ? h->timeout_ms : 3000;
	h->verbose = verbose;
	h->log = log;
	cli_buf_init(&h->url);
	return h;

err_after_endpoints:
	for (i = 0; i < h->n; i++)
		free(h->endpoints[i]);
	free(h->endpoints);
err_after_h:
	free(h);
	return NULL;
}

void cli_http_destroy(struct cli_http *h)
{
	size_t i;

	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	for (i = 0; i < h->n; i++)
		free(h->endpoints[i]);
	free(h->endpoints);
	cli_buf_free(&h->url);
	free(h);
}

size_t cli_http_endpoint_count(const struct cli_http *h)
{
	return h->n;
}

const char *cli_http_endpoint(const struct cli_http *h, size_t i)
{
	return i < h->n ? h->endpoints[i] : NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct cli_http_response *resp = ud;
	size_t len = size * nmemb;

	if (cli_buf_append(&resp->body, data, len))
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	return len;
}

/* Copies the value of header line "Name: value\r\n" into dst, trimmed. */
static void copy_header_value(const char *line, size_t len, size_t name_len, char *dst,
			      size_t dst_len)
{
	const char *v = line + name_len;
	const char *end = line + len;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	if ((size_t)(end - v) >= dst_len)
		end = v + dst_len - 1;
	memcpy(dst, v, (size_t)(end - v));
	dst[end - v] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	struct cli_http_response *resp = ud;
	size_t len = size * nmemb;

	if (len > 5 && strncasecmp(line, "ETag:", 5) == 0) {
		char raw[sizeof(resp->etag) + 4];
		char *v = raw;
		size_t vlen;

		copy_header_value(line, len, 5, raw, sizeof(raw));
		if (strncmp(v, "W/", 2) == 0)
			v += 2;
		vlen = strlen(v);
		if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
			v[vlen - 1] = '\0';
			v++;
		}
		snprintf(resp->etag, sizeof(resp->etag), "%s", v);
	} else if (len > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
		copy_header_value(line, len, 13, resp->content_type, sizeof(resp->content_type));
	}
	return len;
}

static int is_failover_status(long status)
{
	return status == 502 || status == 503 || status == 504;
}

/* One attempt on endpoint i. Returns 0 with resp->status set when the
 * endpoint answered, -EHOSTUNREACH when it did not, -ENOMEM. */
static int attempt(struct cli_http *h, size_t i, const struct cli_http_request *req,
		   struct cli_http_response *resp, char *err, size_t err_len)
{
	struct curl_slist *headers = NULL, *grown;
	char line[160];
	CURLcode cc;
	int rc = 0;

	cli_buf_reset(&resp->body);
	resp->etag[0] = '\0';
	resp->content_type[0] = '\0';
	resp->status = 0;
	resp->endpoint = h->endpoints[i];

	cli_buf_reset(&h->url);
	if (cli_buf_puts(&h->url, h->endpoints[i]) || cli_buf_puts(&h->url, req->target))
		return -ENOMEM;

#define ADD_HEADER(text)                               \
	do {                                           \
		grown = curl_slist_append(headers, text); \
		if (!grown) {                          \
			rc = -ENOMEM;                  \
			goto out;                      \
		}                                      \
		headers = grown;                       \
	} while (0)

	snprintf(line, sizeof(line), "Accept: %s", req->accept ? req->accept : "application/json");
	ADD_HEADER(line);
	ADD_HEADER("Expect:"); /* no 100-continue round trip for large bodies */
	if (req->body) {
		snprintf(line, sizeof(line), "Content-Type: %s",
			 req->content_type ? req->content_type : "application/octet-stream");
		ADD_HEADER(line);
	}
	if (req->if_match) {
		snprintf(line, sizeof(line), "If-Match: \"%s\"", req->if_match);
		ADD_HEADER(line);
	}
	if (req->if_none_match_any)
		ADD_HEADER("If-None-Match: *");
#undef ADD_HEADER

	curl_easy_reset(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_URL, h->url.data);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "kvfs/" PACKAGE_VERSION);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, resp);
	if (req->body) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
		curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, req->method);

	cc = curl_easy_perform(h->curl);
	if (cc == CURLE_WRITE_ERROR) {
		rc = -ENOMEM;
		goto out;
	}
	if (cc != CURLE_OK) {
		snprintf(err, err_len, "%s: %s", h->endpoints[i], curl_easy_strerror(cc));
		rc = -EHOSTUNREACH;
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);

out:
	if (h->verbose && h->log) {
		if (rc == 0)
			fprintf(h->log, "kvfs: %s %s -> %ld\n", req->method, h->url.data,
				resp->status);
		else
			fprintf(h->log, "kvfs: %s %s -> %s\n", req->method, h->url.data,
				rc == -ENOMEM ? "out of memory" : err);
	}
	curl_slist_free_all(headers);
	return rc;
}

int cli_http_do_at(struct cli_http *h, size_t i, const struct cli_http_request *req,
		   struct cli_http_response *resp, char *err, size_t err_len)
{
	if (i >= h->n)
		return -EINVAL;
	return attempt(h, i, req, resp, err, err_len);
}

/* Appends "; <endpoint>: HTTP <status> (<detail>)" for a 5xx answer to err. */
static void note_5xx(char *err, size_t err_len, const char *endpoint,
		     const struct cli_http_response *resp)
{
	size_t used = strlen(err);
	const char *detail = NULL;
	json_t *doc = NULL, *d;

	if (resp->body.len) {
		doc = json_loadb(resp->body.data, resp->body.len, 0, NULL);
		d = json_object_get(doc, "detail");
		if (json_is_string(d))
			detail = json_string_value(d);
	}
	if (used < err_len)
		snprintf(err + used, err_len - used, "%s%s: HTTP %ld%s%s%s", used ? "; " : "",
			 endpoint, resp->status, detail ? " (" : "", detail ? detail : "",
			 detail ? ")" : "");
	json_decref(doc);
}

int cli_http_do(struct cli_http *h, const struct cli_http_request *req,
		struct cli_http_response *resp, char *err, size_t err_len)
{
	char one[256];
	long last_5xx = 0;
	size_t k, used;
	int rc;

	if (err_len)
		err[0] = '\0';
	for (k = 0; k < h->n; k++) {
		size_t i = (h->current + k) % h->n;

		rc = attempt(h, i, req, resp, one, sizeof(one));
		if (rc == -ENOMEM)
			return rc;
		if (rc == 0 && !is_failover_status(resp->status)) {
			h->current = i;
			return 0;
		}
		if (rc == 0) {
			last_5xx = resp->status;
			note_5xx(err, err_len, h->endpoints[i], resp);
		} else {
			used = strlen(err);
			if (used < err_len)
				snprintf(err + used, err_len - used, "%s%s", used ? "; " : "", one);
		}
	}
	if (resp->status == 0)
		resp->status = last_5xx;
	return -EHOSTUNREACH;
}
