/*
 * Key handlers: PUT, GET (and HEAD), DELETE of one key; batch PUT; range.
 *
 * Addressing (kvfs-api(7)): a key is the percent-decoded rest of the path
 * after "/kv/" ("/kv/a/b%2Fc" is the key "a/b/c"), or the percent-decoded
 * query argument of "/kv?key=..." — the query form reaches every key,
 * including "batch" and "range", whose path form PUT/POST are the batch and
 * range endpoints. Keys are 1..max_key arbitrary bytes.
 *
 * Values: with no Content-Type or application/json, the body is one JSON value
 * (not null), stored as its minified text (kind JSON) and returned as the same
 * JSON; any other content type stores the bytes as they are (kind RAW),
 * returned as a JSON string when they are UTF-8, else base64 with
 * "encoding":"base64". Accept: application/octet-stream returns the stored
 * bytes (the JSON text for JSON values).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/http_internal.h"
#include "api/json_text.h"
#include "common/clock.h"
#include "common/err.h"
#include "store/kv.h"
#include "store/record.h"
#include "store/txn.h"

/* ---- common pieces ---- */

static enum MHD_Result check_key(struct http_req *req, const uint8_t *key, size_t klen)
{
	if (klen == 0)
		return http_respond_detail(req, 400, "Invalid key: keys must not be empty");
	if (klen > req->srv->cfg.max_key)
		return http_respond_detail(req, 413,
					   "Key too long: %zu bytes exceeds the limit of %zu "
					   "(--max-key-size)",
					   klen, req->srv->cfg.max_key);
	return MHD_YES;
}

/* Decodes the key of a single-key request into req->key. Returns MHD_YES with
 * req->key set, or the result of an error response (req->key NULL). */
static enum MHD_Result extract_key(struct http_req *req, const char *url)
{
	const char *q = http_arg(req, "key");
	const char *path = strncmp(url, "/kv/", 4) == 0 ? url + 4 : "";
	int rc;
	if (*path && q)
		return http_respond_detail(req, 400,
					   "Key given twice: use either /kv/{key} or /kv?key=");
	if (*path)
		rc = http_pct_decode(path, strlen(path), false, &req->key, &req->klen);
	else if (q)
		rc = http_pct_decode(q, strlen(q), true, &req->key, &req->klen);
	else
		return http_respond_detail(req, 400, "Missing key: use /kv/{key} or /kv?key={key}");
	if (rc < 0) {
		req->key = NULL;
		return http_respond_detail(req, 400, "Invalid percent-encoding in key");
	}
	enum MHD_Result r = check_key(req, req->key, req->klen);
	if (req->status) {
		free(req->key);
		req->key = NULL;
	}
	return r;
}

/* Parses an If-Match value: "*", "N" or "\"N\"". Returns 0 and *rev (0 = any
 * existing), or -1. */
static int parse_etag(const char *s, uint64_t *rev, bool *any)
{
	*any = false;
	while (*s == ' ')
		s++;
	if (strcmp(s, "*") == 0) {
		*any = true;
		*rev = 0;
		return 0;
	}
	if (strncmp(s, "W/", 2) == 0)
		s += 2;
	bool quoted = *s == '"';
	s += quoted;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || v == 0)
		return -1;
	if (quoted && *end++ != '"')
		return -1;
	while (*end == ' ')
		end++;
	if (*end)
		return -1;
	*rev = v;
	return 0;
}

/* Adds CHECK ops for If-Match / If-None-Match: * to req->txn. */
static enum MHD_Result add_preconditions(struct http_req *req)
{
	const char *im = http_header(req, "If-Match");
	const char *inm = http_header(req, "If-None-Match");
	uint64_t rev;
	bool any;
	if (im) {
		if (parse_etag(im, &rev, &any) < 0)
			return http_respond_detail(req, 400,
						   "Bad If-Match header: want \"<revision>\" or *");
		txn_add_check(&req->txn, req->key, req->klen, rev, any ? TXN_F_MUST_EXIST : 0);
	}
	if (inm) {
		while (*inm == ' ')
			inm++;
		if (strcmp(inm, "*") != 0)
			return http_respond_detail(
				req, 400, "Bad If-None-Match header: writes accept only *");
		txn_add_check(&req->txn, req->key, req->klen, 0, 0);
	}
	return MHD_YES;
}

static void add_etag(struct MHD_Response *r, uint64_t rev)
{
	char etag[32];
	snprintf(etag, sizeof etag, "\"%" PRIu64 "\"", rev);
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
}

static enum MHD_Result respond_with_etag(struct http_req *req, unsigned status, const char *ctype,
					 struct byte_buf *b, uint64_t rev)
{
	size_t len;
	void *data = bb_take(b, &len);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (rev)
		add_etag(r, rev);
	req->status = (int)status;
	enum MHD_Result ret = MHD_queue_response(req->conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Answers a completed write: 200 with the revision, or the error. */
static enum MHD_Result write_done(struct http_req *req)
{
	int rc = req->nreq.result;
	if (rc == KVFS_EPRECOND)
		return http_respond_detail(req, 412,
					   "Precondition failed: the key's revision does not match");
	if (rc == KVFS_ENOTFOUND)
		return http_respond_detail(req, 404, "Key not found");
	if (rc)
		return http_respond_code(req, rc);
	struct byte_buf b;
	char tmp[96];
	bb_init(&b);
	int n = snprintf(tmp, sizeof tmp, "{\"status\":\"success\",\"revision\":%" PRIu64 "}",
			 req->nreq.index);
	bb_put(&b, tmp, (size_t)n);
	return respond_with_etag(req, 200, "application/json", &b, req->nreq.index);
}

static bool is_json_type(const char *ctype)
{
	if (!ctype || !*ctype)
		return true;
	while (*ctype == ' ')
		ctype++;
	size_t n = strlen("application/json");
	return strncasecmp(ctype, "application/json", n) == 0 &&
	       (ctype[n] == 0 || ctype[n] == ';' || ctype[n] == ' ');
}

/* Validates and minifies a JSON value body in place. Returns the minified
 * length, or -1 after answering 422. */
static long json_body(struct http_req *req, uint8_t *p, size_t len)
{
	struct json_text_error err;
	size_t out;
	if (len == 0) {
		http_respond_422(req, "missing", "Field required", -1);
		return -1;
	}
	if (json_text_minify(p, len, p, &out, &err) < 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "JSON decode error: %s", err.msg);
		http_respond_422(req, "json_invalid", msg, (long)err.pos);
		return -1;
	}
	if (out == 4 && memcmp(p, "null", 4) == 0) {
		http_respond_422(req, "missing", "Field required: the value must not be null", -1);
		return -1;
	}
	return (long)out;
}

/* ---- PUT /kv/{key} ---- */

static enum MHD_Result do_put(struct http_req *req)
{
	uint8_t kind = RECORD_RAW;
	size_t vlen = req->body.len;
	req->op = OP_PUT;
	if (is_json_type(http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		long n = json_body(req, req->body.data, req->body.len);
		if (n < 0)
			return MHD_YES;
		kind = RECORD_JSON;
		vlen = (size_t)n;
	}
	if (vlen > req->srv->cfg.max_value)
		return http_respond_detail(req, 413,
					   "Value too large: %zu bytes exceeds the limit of %zu "
					   "(--max-value-size)",
					   vlen, req->srv->cfg.max_value);
	txn_begin(&req->txn, clock_real_ns());
	if (add_preconditions(req) != MHD_YES || req->status)
		return MHD_YES;
	txn_add_put(&req->txn, req->key, req->klen, kind, 0, TXN_F_KEEP_MODE, req->body.data, vlen);
	if (txn_finish(&req->txn) < 0)
		return http_respond_code(req, -ENOMEM);
	return http_submit(req, NODE_REQ_WRITE, write_done);
}

/* ---- DELETE /kv/{key} ---- */

static enum MHD_Result do_delete(struct http_req *req)
{
	req->op = OP_DELETE;
	txn_begin(&req->txn, clock_real_ns());
	if (add_preconditions(req) != MHD_YES || req->status)
		return MHD_YES;
	txn_add_delete(&req->txn, req->key, req->klen, TXN_F_MUST_EXIST);
	if (txn_finish(&req->txn) < 0)
		return http_respond_code(req, -ENOMEM);
	return http_submit(req, NODE_REQ_WRITE, write_done);
}

/* ---- GET /kv/{key} ---- */

static bool wants_raw(struct http_req *req)
{
	const char *a = http_header(req, MHD_HTTP_HEADER_ACCEPT);
	return a && strstr(a, "application/octet-stream") != NULL;
}

/* Appends "value" (and "encoding") members for a record's value. */
static void put_value_json(struct byte_buf *b, uint8_t kind, const uint8_t *v, size_t vlen)
{
	if (kind == RECORD_JSON) {
		bb_put(b, "\"value\":", 8);
		bb_put(b, v, vlen);
	} else if (utf8_valid(v, vlen)) {
		bb_put(b, "\"value\":", 8);
		json_put_string(b, v, vlen);
	} else {
		bb_put(b, "\"value\":\"", 9);
		base64_put(b, v, vlen);
		bb_put(b, "\",\"encoding\":\"base64\"", 21);
	}
	if (kind == RECORD_DIR)
		bb_put(b, ",\"kind\":\"directory\"", 19);
}

static enum MHD_Result get_read(struct http_req *req)
{
	char *rec;
	size_t rlen, vlen;
	const uint8_t *v;
	struct record_meta m;
	if (req->nreq.result)
		return http_respond_code(req, req->nreq.result);
	int rc = kv_get(node_kv(req->srv->node), req->key, req->klen, &rec, &rlen);
	if (rc == KVFS_ENOTFOUND)
		return http_respond_detail(req, 404, "Key not found");
	if (rc)
		return http_respond_code(req, rc);
	rc = record_decode(rec, rlen, &m, &v, &vlen);
	if (rc) {
		kv_free(rec);
		return http_respond_code(req, rc);
	}
	const char *inm = http_header(req, "If-None-Match");
	uint64_t rev;
	bool any;
	if (inm && parse_etag(inm, &rev, &any) == 0 && (any || rev == m.mod_rev)) {
		kv_free(rec);
		struct byte_buf empty;
		bb_init(&empty);
		return respond_with_etag(req, 304, "application/json", &empty, m.mod_rev);
	}
	struct byte_buf b;
	bb_init(&b);
	enum MHD_Result ret;
	if (wants_raw(req)) {
		bb_put(&b, v, vlen);
		ret = respond_with_etag(req, 200, "application/octet-stream", &b, m.mod_rev);
	} else {
		bb_reserve(&b, vlen + 32);
		bb_u8(&b, '{');
		put_value_json(&b, m.kind, v, vlen);
		bb_u8(&b, '}');
		ret = b.err ? http_respond_code(req, -ENOMEM)
			    : respond_with_etag(req, 200, "application/json", &b, m.mod_rev);
		bb_free(&b);
	}
	kv_free(rec);
	return ret;
}

/* Returns 1 for a stale read, 0 for linearizable, -1 after answering 400. */
static int read_consistency(struct http_req *req, const char *arg)
{
	if (!arg || strcmp(arg, "linearizable") == 0 || strcmp(arg, "strong") == 0)
		return 0;
	if (strcmp(arg, "stale") == 0 || strcmp(arg, "serializable") == 0)
		return 1;
	http_respond_detail(req, 400, "Bad consistency '%.40s': want linearizable or stale", arg);
	return -1;
}

/* Runs stage now when a local read is safe, else after a read index round. */
static enum MHD_Result read_then(struct http_req *req, bool stale, http_stage_fn stage)
{
	if (stale || node_local_read_ok(req->srv->node)) {
		req->nreq.result = 0;
		return stage(req);
	}
	return http_submit(req, NODE_REQ_READ, stage);
}

static enum MHD_Result do_get(struct http_req *req)
{
	req->op = OP_GET;
	int stale = read_consistency(req, http_arg(req, "consistency"));
	if (stale < 0)
		return MHD_YES;
	return read_then(req, stale, get_read);
}

enum MHD_Result api_kv_dispatch(struct http_req *req, const char *url)
{
	const char *m = req->method;
	bool get = strcmp(m, "GET") == 0 || req->head;
	bool put = strcmp(m, "PUT") == 0, del = strcmp(m, "DELETE") == 0;
	if (!get && !put && !del)
		return http_respond_detail(req, 405, "Method Not Allowed");
	enum MHD_Result r = extract_key(req, url);
	if (!req->key)
		return r;
	if (get)
		return do_get(req);
	if (put)
		return do_put(req);
	return do_delete(req);
}

/* ---- PUT /kv/batch ---- */

static enum MHD_Result batch_422(struct http_req *req, long item, const char *field,
				 const char *type, const char *msg)
{
	char buf[400];
	int n;
	if (item < 0)
		n = snprintf(buf, sizeof buf,
			     "{\"detail\":[{\"type\":\"%s\",\"loc\":[\"body\",\"%s\"],\"msg\":\"%s\"}]}",
			     type, field, msg);
	else
		n = snprintf(buf, sizeof buf,
			     "{\"detail\":[{\"type\":\"%s\",\"loc\":[\"body\",\"items\",%ld,\"%s\"],"
			     "\"msg\":\"%s\"}]}",
			     type, item, field, msg);
	struct byte_buf b;
	bb_init(&b);
	bb_put(&b, buf, (size_t)n);
	return http_respond(req, 422, "application/json", &b);
}

static bool span_is(const uint8_t *k, size_t klen, const char *name)
{
	size_t n = strlen(name);
	return klen == n + 2 && memcmp(k + 1, name, n) == 0;
}

enum MHD_Result api_batch(struct http_req *req)
{
	struct http_config *cfg = &req->srv->cfg;
	req->op = OP_BATCH_PUT;
	long n = json_body(req, req->body.data, req->body.len);
	if (n < 0)
		return MHD_YES;
	const uint8_t *p = req->body.data, *end = p + n, *cur = NULL, *k, *v, *items = NULL;
	size_t kl, vl, items_len = 0;
	if (*p != '{')
		return batch_422(req, -1, "items", "model_attributes_type",
				 "Input should be an object with an items list");
	while (json_span_member(p, end, &cur, &k, &kl, &v, &vl))
		if (span_is(k, kl, "items")) {
			items = v;
			items_len = vl;
		}
	if (!items)
		return batch_422(req, -1, "items", "missing", "Field required");
	if (*items != '[')
		return batch_422(req, -1, "items", "list_type", "Input should be a valid list");

	txn_begin(&req->txn, clock_real_ns());
	const uint8_t *ecur = NULL, *item;
	size_t ilen, count = 0;
	while (json_span_element(items, items + items_len, &ecur, &item, &ilen)) {
		if (++count > cfg->max_batch_items)
			return http_respond_detail(req, 413,
						   "Too many items in batch: limit is %zu "
						   "(--max-batch-items)",
						   cfg->max_batch_items);
		long idx = (long)count - 1;
		if (*item != '{')
			return batch_422(req, idx, "key", "model_attributes_type",
					 "Item should be an object with key and value");
		const uint8_t *icur = NULL, *key = NULL, *val = NULL;
		size_t keyl = 0, vall = 0;
		while (json_span_member(item, item + ilen, &icur, &k, &kl, &v, &vl)) {
			if (span_is(k, kl, "key")) {
				key = v;
				keyl = vl;
			} else if (span_is(k, kl, "value")) {
				val = v;
				vall = vl;
			}
		}
		if (!key)
			return batch_422(req, idx, "key", "missing", "Field required");
		if (*key != '"')
			return batch_422(req, idx, "key", "string_type",
					 "Input should be a valid string");
		if (!val || (vall == 4 && memcmp(val, "null", 4) == 0))
			return batch_422(req, idx, "value", "missing", "Field required");
		uint8_t *dk;
		size_t dkl;
		if (json_span_string(key, keyl, &dk, &dkl) < 0)
			return http_respond_code(req, -ENOMEM);
		enum MHD_Result r = check_key(req, dk, dkl);
		if (req->status) {
			free(dk);
			return r;
		}
		if (vall > cfg->max_value) {
			free(dk);
			return http_respond_detail(req, 413,
						   "Value too large in item %ld: %zu bytes exceeds "
						   "the limit of %zu (--max-value-size)",
						   idx, vall, cfg->max_value);
		}
		txn_add_put(&req->txn, dk, dkl, RECORD_JSON, 0, TXN_F_KEEP_MODE, val, vall);
		free(dk);
	}
	if (count == 0) {
		struct byte_buf b;
		bb_init(&b);
		bb_put(&b, "{\"status\":\"success\"}", 20);
		return http_respond(req, 200, "application/json", &b);
	}
	if (txn_finish(&req->txn) < 0)
		return http_respond_code(req, -ENOMEM);
	return http_submit(req, NODE_REQ_WRITE, write_done);
}

/* ---- POST /kv/range ---- */

struct range_scan {
	struct kv_iter *it;
	uint8_t *end, *prefix;
	size_t elen, plen;
	bool has_end, keys_only;
	uint64_t limit, count;
	int phase; /* 0 header, 1 items, 2 done */
	struct byte_buf out;
	size_t off;
	int error;
};

static void range_free(void *p)
{
	struct range_scan *r = p;
	kv_iter_destroy(r->it);
	free(r->end);
	free(r->prefix);
	bb_free(&r->out);
	free(r);
}

static void put_key_json(struct byte_buf *b, const uint8_t *k, size_t kl)
{
	if (utf8_valid(k, kl)) {
		bb_put(b, "\"key\":", 6);
		json_put_string(b, k, kl);
	} else {
		bb_put(b, "\"key\":\"", 7);
		base64_put(b, k, kl);
		bb_put(b, "\",\"key_encoding\":\"base64\"", 25);
	}
}

static bool in_range(struct range_scan *r, const uint8_t *k, size_t kl)
{
	if (r->prefix && (kl < r->plen || memcmp(k, r->prefix, r->plen) != 0))
		return false;
	if (r->has_end) {
		size_t n = kl < r->elen ? kl : r->elen;
		int c = memcmp(k, r->end, n);
		if (c > 0 || (c == 0 && kl > r->elen))
			return false;
	}
	return true;
}

/* A range whose whole reply fits in this many bytes is sent as one buffer
 * with a Content-Length: one send for the headers and body together, where
 * a streamed reply takes three (headers, chunk, last chunk), each waking the
 * client. Larger replies stream in pieces of RANGE_PIECE. No more than a
 * streamed reply holds at once (its piece and MHD's copy of it), so that
 * many connections ranging at once need no more memory than before. */
#define RANGE_WHOLE (128 * 1024)
#define RANGE_PIECE (64 * 1024)

/* Produces the next piece of the response into r->out (about `budget`
 * bytes). */
static void range_fill(struct range_scan *r, size_t budget)
{
	r->out.len = 0;
	r->off = 0;
	if (r->phase == 0) {
		bb_put(&r->out, "{\"results\":[", 12);
		r->phase = 1;
	}
	while (r->phase == 1 && r->out.len < budget && !r->out.err) {
		if (!kv_iter_valid(r->it)) {
			if (kv_iter_status(r->it))
				r->error = 1;
			bb_put(&r->out, "]}", 2);
			r->phase = 2;
			break;
		}
		size_t kl, rl, vl;
		const uint8_t *k = kv_iter_key(r->it, &kl), *rec = kv_iter_record(r->it, &rl), *v;
		if (!in_range(r, k, kl)) {
			bb_put(&r->out, "]}", 2);
			r->phase = 2;
			break;
		}
		if (r->limit && r->count == r->limit) {
			bb_put(&r->out, "],\"continue\":\"", 14);
			base64_put(&r->out, k, kl);
			bb_put(&r->out, "\"}", 2);
			r->phase = 2;
			break;
		}
		struct record_meta m;
		if (record_decode(rec, rl, &m, &v, &vl) < 0) {
			r->error = 1; /* a corrupt record ends the stream early */
			r->phase = 2;
			break;
		}
		if (r->count++)
			bb_u8(&r->out, ',');
		bb_u8(&r->out, '{');
		put_key_json(&r->out, k, kl);
		if (!r->keys_only) {
			bb_u8(&r->out, ',');
			put_value_json(&r->out, m.kind, v, vl);
		}
		bb_u8(&r->out, '}');
		kv_iter_next(r->it);
	}
}

static ssize_t range_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct range_scan *r = cls;
	if (r->off == r->out.len) {
		if (r->phase == 2 || r->error)
			return r->error ? MHD_CONTENT_READER_END_WITH_ERROR
					: MHD_CONTENT_READER_END_OF_STREAM;
		range_fill(r, RANGE_PIECE);
		if (r->out.err)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (r->out.len == 0)
			return r->error ? MHD_CONTENT_READER_END_WITH_ERROR
					: MHD_CONTENT_READER_END_OF_STREAM;
	}
	size_t n = r->out.len - r->off;
	if (n > max)
		n = max;
	memcpy(buf, r->out.data + r->off, n);
	r->off += n;
	return (ssize_t)n;
}

static enum MHD_Result range_stream(struct http_req *req)
{
	struct range_scan *r = req->state;
	if (req->nreq.result)
		return http_respond_code(req, req->nreq.result);
	/* Bounded: only the pending changes in the range are copied. */
	struct kv_bounds b = {.prefix = r->prefix, .plen = r->plen, .lo = req->key,
			      .lolen = req->klen, .hi = r->has_end ? r->end : NULL,
			      .hilen = r->elen};
	r->it = kv_iter_create_range(node_kv(req->srv->node), &b);
	if (!r->it)
		return http_respond_code(req, -ENOMEM);
	kv_iter_seek(r->it, req->key, req->klen); /* req->key: effective start */
	range_fill(r, RANGE_WHOLE);
	if (r->out.err)
		return http_respond_code(req, -ENOMEM);
	if (r->phase == 2 && !r->error)
		return http_respond(req, 200, "application/json", &r->out); /* state frees r */
	req->state = NULL; /* now owned by the response, which goes on from r->out */
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, RANGE_PIECE,
								      range_reader, r, range_free);
	if (!resp) {
		range_free(r);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	req->status = 200;
	enum MHD_Result ret = MHD_queue_response(req->conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result range_field_422(struct http_req *req, const char *field, const char *type,
				       const char *msg)
{
	char buf[300];
	int n = snprintf(buf, sizeof buf,
			 "{\"detail\":[{\"type\":\"%s\",\"loc\":[\"body\",\"%s\"],\"msg\":\"%s\"}]}",
			 type, field, msg);
	struct byte_buf b;
	bb_init(&b);
	bb_put(&b, buf, (size_t)n);
	return http_respond(req, 422, "application/json", &b);
}

/* Copies a JSON string member into malloc'd bytes; 1 found, 0 absent, -1
 * wrong type (answered). */
static int str_field(struct http_req *req, json_t *o, const char *name, uint8_t **out,
		     size_t *len)
{
	json_t *v = json_object_get(o, name);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		range_field_422(req, name, "string_type", "Input should be a valid string");
		return -1;
	}
	*len = json_string_length(v);
	*out = malloc(*len + 1);
	if (!*out) {
		http_respond_code(req, -ENOMEM);
		return -1;
	}
	memcpy(*out, json_string_value(v), *len);
	return 1;
}

enum MHD_Result api_range(struct http_req *req)
{
	req->op = OP_RANGE;
	json_error_t jerr;
	if (req->body.len == 0)
		return http_respond_422(req, "missing", "Field required", -1);
	json_t *o = json_loadb((const char *)req->body.data, req->body.len,
			       JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!o) {
		char msg[200];
		snprintf(msg, sizeof msg, "JSON decode error: %s", jerr.text);
		return http_respond_422(req, "json_invalid", msg, (long)jerr.position);
	}
	enum MHD_Result ret = MHD_YES;
	struct range_scan *r = calloc(1, sizeof *r);
	uint8_t *start = NULL, *tok = NULL;
	size_t slen = 0, toklen = 0;
	int rc = 0;
	if (!r) {
		ret = http_respond_code(req, -ENOMEM);
		goto out;
	}
	bb_init(&r->out);
	if (!json_is_object(o)) {
		ret = range_field_422(req, "start_key", "model_attributes_type",
				      "Input should be an object");
		goto out;
	}
	if ((rc = str_field(req, o, "start_key", &start, &slen)) < 0 ||
	    (rc = str_field(req, o, "end_key", &r->end, &r->elen)) < 0 ||
	    (rc = str_field(req, o, "prefix", &r->prefix, &r->plen)) < 0 ||
	    (rc = str_field(req, o, "continue", &tok, &toklen)) < 0)
		goto out;
	r->has_end = r->end != NULL;
	if (!r->prefix && !start) {
		ret = range_field_422(req, "start_key", "missing", "Field required");
		goto out;
	}
	if (!r->prefix && !r->has_end) {
		ret = range_field_422(req, "end_key", "missing", "Field required");
		goto out;
	}
	json_t *lim = json_object_get(o, "limit"), *ko = json_object_get(o, "keys_only");
	if (lim && !json_is_null(lim)) {
		if (!json_is_integer(lim) || json_integer_value(lim) < 1) {
			ret = range_field_422(req, "limit", "greater_than_equal",
					      "Input should be an integer >= 1");
			goto out;
		}
		r->limit = (uint64_t)json_integer_value(lim);
	}
	if (ko && !json_is_null(ko)) {
		if (!json_is_boolean(ko)) {
			ret = range_field_422(req, "keys_only", "bool_type",
					      "Input should be a valid boolean");
			goto out;
		}
		r->keys_only = json_is_true(ko);
	}
	/* The effective start: the continuation token, else the greater of
	 * start_key and prefix. */
	if (tok) {
		free(req->key);
		req->key = malloc(toklen + 3);
		if (!req->key || base64_decode((char *)tok, toklen, req->key, &req->klen) < 0) {
			ret = http_respond_detail(req, 400, "Bad continue token");
			goto out;
		}
	} else {
		const uint8_t *s = start ? start : r->prefix;
		size_t sl = start ? slen : r->plen;
		if (start && r->prefix) {
			size_t n = slen < r->plen ? slen : r->plen;
			int c = memcmp(start, r->prefix, n);
			if (c < 0 || (c == 0 && slen < r->plen)) {
				s = r->prefix;
				sl = r->plen;
			}
		}
		req->key = malloc(sl + 1);
		if (!req->key) {
			ret = http_respond_code(req, -ENOMEM);
			goto out;
		}
		memcpy(req->key, s, sl);
		req->klen = sl;
	}
	int stale = read_consistency(req, http_arg(req, "consistency"));
	json_t *cons = json_object_get(o, "consistency");
	if (stale == 0 && json_is_string(cons))
		stale = read_consistency(req, json_string_value(cons));
	if (stale < 0)
		goto out;
	req->state = r;
	req->state_free = range_free;
	r = NULL;
	ret = read_then(req, stale, range_stream);
out:
	if (r)
		range_free(r);
	free(start);
	free(tok);
	json_decref(o);
	return ret;
}
