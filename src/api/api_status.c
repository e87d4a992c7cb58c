/*
 * Status endpoints: /health and /debug/replication in the seed's shapes (with
 * real values), /livez and /readyz with proper status codes for
 * orchestrators, and /metrics in the Prometheus text format.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_internal.h"
#include "common/clock.h"

static enum MHD_Result respond_json(struct http_req *req, unsigned status, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return MHD_NO;
	struct byte_buf b;
	bb_init(&b);
	bb_put(&b, s, strlen(s));
	free(s);
	return http_respond(req, status, "application/json", &b);
}

/* Seconds since the last local apply, the seed's "replication_lag". */
static double lag_seconds(const struct node_status *st)
{
	if (st->last_commit_time <= 0)
		return 0;
	double now = (double)clock_real_ns() / 1e9;
	return now > st->last_commit_time ? now - st->last_commit_time : 0;
}

static unsigned port_of(const char *addr)
{
	const char *c = addr ? strrchr(addr, ':') : NULL;
	return c ? (unsigned)strtoul(c + 1, NULL, 10) : 0;
}

enum MHD_Result api_health(struct http_req *req)
{
	struct node_status st;
	const struct http_config *cfg = &req->srv->cfg;
	node_status(req->srv->node, &st);
	json_t *o = json_object(), *addrs = json_array(), *ports = json_array();
	json_array_append_new(addrs, json_string(cfg->node_address));
	json_array_append_new(ports, json_integer(port_of(cfg->node_address)));
	json_object_set_new(o, "status", json_string(st.ready ? "healthy" : "degraded"));
	json_object_set_new(o, "cluster_size", json_integer(st.voters + st.learners));
	json_object_set_new(o, "connected_nodes", json_integer(st.connected));
	json_object_set_new(o, "connected_node_addresses", addrs);
	json_object_set_new(o, "is_leader", json_boolean(st.is_leader));
	json_object_set_new(o, "leader_node",
			    st.leader_id ? json_string(cfg->node_address) : json_null());
	json_object_set_new(o, "last_commit_time", json_real(st.last_commit_time));
	json_object_set_new(o, "replication_lag", json_real(lag_seconds(&st)));
	json_object_set_new(o, "ready", json_boolean(st.ready));
	json_object_set_new(o, "node_port", json_integer(port_of(cfg->node_address)));
	json_object_set_new(o, "api_port", json_integer(cfg->api_port));
	json_object_set_new(o, "cluster_ports", ports);
	json_object_set_new(o, "other_nodes", json_array());
	json_object_set_new(o, "node_id", json_integer((json_int_t)st.id));
	json_object_set_new(o, "term", json_integer((json_int_t)st.term));
	json_object_set_new(o, "commit_index", json_integer((json_int_t)st.commit));
	json_object_set_new(o, "applied_index", json_integer((json_int_t)st.applied));
	return respond_json(req, 200, o);
}

enum MHD_Result api_replication(struct http_req *req)
{
	struct node_status st;
	const struct http_config *cfg = &req->srv->cfg;
	node_status(req->srv->node, &st);
	json_t *o = json_object(), *conn = json_object(), *addrs = json_array();
	json_array_append_new(addrs, json_string(cfg->node_address));
	json_object_set_new(conn, "count", json_integer(st.connected));
	json_object_set_new(conn, "addresses", addrs);
	json_object_set_new(o, "node_address", json_string(cfg->node_address));
	json_object_set_new(o, "is_leader", json_boolean(st.is_leader));
	json_object_set_new(o, "leader", st.leader_id ? json_string(cfg->node_address) : json_null());
	json_object_set_new(o, "is_ready", json_boolean(st.ready));
	json_object_set_new(o, "connected_nodes", conn);
	json_object_set_new(o, "total_nodes", json_integer(st.voters + st.learners));
	json_object_set_new(o, "last_commit_time", json_real(st.last_commit_time));
	json_object_set_new(o, "replication_lag", json_real(lag_seconds(&st)));
	json_object_set_new(o, "cluster_time", json_real((double)clock_real_ns() / 1e9));
	json_object_set_new(o, "data_size", json_integer((json_int_t)kv_key_count(node_kv(req->srv->node))));
	json_object_set_new(o, "node_id", json_integer((json_int_t)st.id));
	json_object_set_new(o, "term", json_integer((json_int_t)st.term));
	json_object_set_new(o, "commit_index", json_integer((json_int_t)st.commit));
	json_object_set_new(o, "applied_index", json_integer((json_int_t)st.applied));
	json_object_set_new(o, "first_index", json_integer((json_int_t)st.first_index));
	json_object_set_new(o, "last_index", json_integer((json_int_t)st.last_index));
	json_object_set_new(o, "peers", json_array());
	return respond_json(req, 200, o);
}

enum MHD_Result api_livez(struct http_req *req)
{
	json_t *o = json_object();
	json_object_set_new(o, "status", json_string("ok"));
	return respond_json(req, 200, o);
}

enum MHD_Result api_readyz(struct http_req *req)
{
	struct node_status st;
	node_status(req->srv->node, &st);
	if (st.failed)
		return http_respond_detail(req, 503, "not ready: storage failure, node stopped");
	if (!st.leader_id)
		return http_respond_detail(req, 503, "not ready: no leader (no quorum)");
	if (!st.ready)
		return http_respond_detail(req, 503, "not ready: catching up");
	json_t *o = json_object();
	json_object_set_new(o, "status", json_string("ready"));
	return respond_json(req, 200, o);
}

enum MHD_Result api_metrics(struct http_req *req)
{
	struct byte_buf b;
	bb_init(&b);
	metrics_write(&b);
	return http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
