/*
 * Membership and leadership endpoints (kvfs-api(7), CLUSTER):
 *
 *   GET    /cluster/members                 the configuration, with roles and the leader
 *   POST   /cluster/members                 {"id":N,"peer":"tcp://H:P","learner":true}
 *   DELETE /cluster/members/{id}            remove (the leader too)
 *   POST   /cluster/members/{id}/promote    learner -> voter
 *   POST   /cluster/leader/transfer         {"id":N} or {} for the most caught-up voter
 *
 * Changes go through the Raft core one at a time: a change is answered once
 * its configuration entry is committed and applied. Only the leader proposes
 * them; a follower answers 503 naming the leader, and the kvfs CLI moves on
 * to the next endpoint.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_internal.h"
#include "common/err.h"

static enum MHD_Result member_list(struct http_req *req)
{
	struct node_status st;
	node_status(req->srv->node, &st);
	json_t *o = json_object(), *arr = json_array();
	for (int i = 0; i < st.n_peers; i++) {
		const struct node_peer_status *p = &st.peers[i];
		json_t *m = json_object();
		json_object_set_new(m, "id", json_integer((json_int_t)p->id));
		json_object_set_new(m, "peer", json_string(p->addr));
		json_object_set_new(m, "http", p->http[0] ? json_string(p->http) : json_null());
		json_object_set_new(m, "learner", json_boolean(p->learner));
		json_object_set_new(m, "leader", json_boolean(p->id == st.leader_id));
		json_object_set_new(m, "connected", json_boolean(p->connected));
		json_array_append_new(arr, m);
	}
	json_object_set_new(o, "members", arr);
	json_object_set_new(o, "leader_id", json_integer((json_int_t)st.leader_id));
	return http_respond_json(req, 200, o);
}

static enum MHD_Result change_done(struct http_req *req)
{
	int rc = req->nreq.result;
	if (rc == KVFS_ENOTLEADER && req->nreq.leader_hint)
		return http_respond_detail(req, 503,
					   "Not the leader: send membership changes to node %" PRIu64,
					   req->nreq.leader_hint);
	if (rc == KVFS_ENOTFOUND)
		return http_respond_detail(req, 404, "No member with id %" PRIu64,
					   req->nreq.member_id);
	if (rc == KVFS_ECONFIG && req->nreq.type == NODE_REQ_TRANSFER)
		return http_respond_detail(req, 409,
					   "Leadership transfer refused: the target is not another voter");
	if (rc == KVFS_ECONFIG)
		return http_respond_detail(req, 409,
					   "Membership change refused: unknown or duplicate member, "
					   "the last voter, or too many members");
	if (rc)
		return http_respond_code(req, rc);
	json_t *o = json_object();
	json_object_set_new(o, "status", json_string("success"));
	if (req->nreq.type == NODE_REQ_MEMBER)
		json_object_set_new(o, "revision", json_integer((json_int_t)req->nreq.index));
	return http_respond_json(req, 200, o);
}

static enum MHD_Result submit(struct http_req *req, enum node_req_type type, int kind,
			      uint64_t id, const char *addr)
{
	req->nreq.member_kind = kind;
	req->nreq.member_id = id;
	snprintf(req->nreq.member_addr, sizeof req->nreq.member_addr, "%s", addr ? addr : "");
	return http_submit(req, type, change_done);
}

static json_t *body_object(struct http_req *req, bool allow_empty)
{
	json_error_t e;
	if (req->body.len == 0 && allow_empty)
		return json_object();
	json_t *o = json_loadb((const char *)req->body.data, req->body.len, 0, &e);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		http_respond_422(req, "json_invalid", "Body must be a JSON object", -1);
		return NULL;
	}
	return o;
}

static int parse_id(const char *s, uint64_t *id)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || v == 0 || (*end && *end != '/'))
		return -1;
	*id = v;
	return 0;
}

enum MHD_Result api_members(struct http_req *req, const char *url)
{
	const char *m = req->method;
	const char *rest = url + strlen("/cluster/members");
	if (*rest == 0 || strcmp(rest, "/") == 0) {
		if (strcmp(m, "GET") == 0 || req->head)
			return member_list(req);
		if (strcmp(m, "POST") != 0)
			return http_respond_detail(req, 405, "Method Not Allowed");
		json_t *o = body_object(req, false);
		if (!o)
			return MHD_YES;
		json_t *jid = json_object_get(o, "id"), *peer = json_object_get(o, "peer"),
		       *learner = json_object_get(o, "learner");
		enum MHD_Result r;
		if (!json_is_integer(jid) || json_integer_value(jid) < 1 || !json_is_string(peer) ||
		    strncmp(json_string_value(peer), "tcp://", 6) != 0 ||
		    json_string_length(peer) >= sizeof req->nreq.member_addr ||
		    (learner && !json_is_boolean(learner)))
			r = http_respond_detail(req, 400,
						"Want {\"id\": N >= 1, \"peer\": \"tcp://HOST:PORT\", "
						"\"learner\": true|false}");
		else
			r = submit(req, NODE_REQ_MEMBER,
				   (!learner || json_is_true(learner)) ? NODE_ADD_LEARNER
								       : NODE_ADD_VOTER,
				   (uint64_t)json_integer_value(jid), json_string_value(peer));
		json_decref(o);
		return r;
	}
	uint64_t id;
	if (*rest != '/' || parse_id(rest + 1, &id) < 0)
		return http_respond_detail(req, 404, "Not Found");
	const char *tail = strchr(rest + 1, '/');
	if (!tail) {
		if (strcmp(m, "DELETE") != 0)
			return http_respond_detail(req, 405, "Method Not Allowed");
		return submit(req, NODE_REQ_MEMBER, NODE_REMOVE, id, NULL);
	}
	if (strcmp(tail, "/promote") != 0)
		return http_respond_detail(req, 404, "Not Found");
	if (strcmp(m, "POST") != 0)
		return http_respond_detail(req, 405, "Method Not Allowed");
	return submit(req, NODE_REQ_MEMBER, NODE_PROMOTE, id, NULL);
}

enum MHD_Result api_transfer(struct http_req *req)
{
	if (strcmp(req->method, "POST") != 0)
		return http_respond_detail(req, 405, "Method Not Allowed");
	json_t *o = body_object(req, true);
	if (!o)
		return MHD_YES;
	json_t *jid = json_object_get(o, "id");
	uint64_t id = 0;
	if (jid && !json_is_null(jid)) {
		if (!json_is_integer(jid) || json_integer_value(jid) < 1) {
			json_decref(o);
			return http_respond_detail(req, 400, "Want {\"id\": N >= 1} or {}");
		}
		id = (uint64_t)json_integer_value(jid);
	}
	json_decref(o);
	return submit(req, NODE_REQ_TRANSFER, 0, id, NULL);
}
