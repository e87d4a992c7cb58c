/*
 * Status endpoints: /health and /debug/replication in the seed's shapes (with
 * real values: leader, connected peers, per-peer match index and lag), /livez
 * and /readyz with proper status codes for orchestrators, and /metrics in the
 * Prometheus text format.
 *
 * Addresses are shown as the seed showed them, "host:port" of each node's
 * peer endpoint (the tcp:// scheme dropped); a node started without --peer
 * shows its REST address.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_internal.h"
#include "common/clock.h"

static const char *bare(const char *addr)
{
	return strncmp(addr, "tcp://", 6) == 0 ? addr + 6 : addr;
}

/* The seed-style address of peer p (or of this node without a peer socket). */
static const char *addr_of(struct http_req *req, const struct node_peer_status *p)
{
	if (p && p->addr[0])
		return bare(p->addr);
	return req->srv->cfg.listen;
}

static unsigned port_of(const char *addr)
{
	const char *c = addr ? strrchr(addr, ':') : NULL;
	return c ? (unsigned)strtoul(c + 1, NULL, 10) : 0;
}

static const struct node_peer_status *find_peer(const struct node_status *st, uint64_t id)
{
	for (int i = 0; i < st->n_peers; i++)
		if (st->peers[i].id == id)
			return &st->peers[i];
	return NULL;
}

static json_t *leader_addr(struct http_req *req, const struct node_status *st)
{
	if (!st->leader_id)
		return json_null();
	const struct node_peer_status *p = find_peer(st, st->leader_id);
	return json_string(addr_of(req, p));
}

/* The connected peers' addresses (the seed's connected_node_addresses). */
static json_t *connected_addrs(struct http_req *req, const struct node_status *st)
{
	json_t *a = json_array();
	for (int i = 0; i < st->n_peers; i++)
		if (st->peers[i].connected)
			json_array_append_new(a, json_string(addr_of(req, &st->peers[i])));
	return a;
}

/* kvfs's own Raft fields, in both /health and /debug/replication. */
static void raft_fields(json_t *o, const struct node_status *st)
{
	json_object_set_new(o, "node_id", json_integer((json_int_t)st->id));
	json_object_set_new(o, "state", json_string(st->state));
	json_object_set_new(o, "leader_id", json_integer((json_int_t)st->leader_id));
	json_object_set_new(o, "term", json_integer((json_int_t)st->term));
	json_object_set_new(o, "commit_index", json_integer((json_int_t)st->commit));
	json_object_set_new(o, "applied_index", json_integer((json_int_t)st->applied));
}

/* Why the node is not ready (/readyz's detail), or NULL when it is. */
static const char *not_ready_reason(const struct node_status *st)
{
	if (st->failed)
		return "not ready: storage failure, node stopped";
	if (!find_peer(st, st->id))
		return "not ready: not a member of the cluster (yet)";
	if (!st->leader_id)
		return "not ready: no leader (no quorum)";
	if (!st->ready)
		return "not ready: catching up";
	return NULL;
}

enum MHD_Result api_health(struct http_req *req)
{
	struct node_status st;
	const struct http_config *cfg = &req->srv->cfg;
	node_status(req->srv->node, &st);
	const struct node_peer_status *self = find_peer(&st, st.id);
	json_t *o = json_object(), *ports = json_array(), *others = json_array();
	for (int i = 0; i < st.n_peers; i++) {
		const struct node_peer_status *p = &st.peers[i];
		json_array_append_new(ports, json_integer(port_of(addr_of(req, p))));
		if (!p->is_self)
			json_array_append_new(others, json_string(addr_of(req, p)));
	}
	json_object_set_new(o, "status", json_string(st.ready ? "healthy" : "degraded"));
	json_object_set_new(o, "cluster_size", json_integer(st.voters + st.learners));
	json_object_set_new(o, "connected_nodes", json_integer(st.connected));
	json_object_set_new(o, "connected_node_addresses", connected_addrs(req, &st));
	json_object_set_new(o, "is_leader", json_boolean(st.is_leader));
	json_object_set_new(o, "leader_node", leader_addr(req, &st));
	json_object_set_new(o, "last_commit_time", json_real(st.last_commit_time));
	json_object_set_new(o, "replication_lag", json_real(st.replication_lag_s));
	json_object_set_new(o, "ready", json_boolean(st.ready));
	const char *why = not_ready_reason(&st);
	json_object_set_new(o, "ready_detail", why ? json_string(why) : json_null());
	json_object_set_new(o, "node_port", json_integer(port_of(addr_of(req, self))));
	json_object_set_new(o, "api_port", json_integer(cfg->api_port));
	json_object_set_new(o, "cluster_ports", ports);
	json_object_set_new(o, "other_nodes", others);
	raft_fields(o, &st);
	return http_respond_json(req, 200, o);
}

enum MHD_Result api_replication(struct http_req *req)
{
	struct node_status st;
	node_status(req->srv->node, &st);
	const struct node_peer_status *self = find_peer(&st, st.id);
	json_t *o = json_object(), *conn = json_object(), *peers = json_array();
	for (int i = 0; i < st.n_peers; i++) {
		const struct node_peer_status *p = &st.peers[i];
		json_t *j = json_object();
		json_object_set_new(j, "id", json_integer((json_int_t)p->id));
		json_object_set_new(j, "address", json_string(addr_of(req, p)));
		json_object_set_new(j, "self", json_boolean(p->is_self));
		json_object_set_new(j, "learner", json_boolean(p->learner));
		json_object_set_new(j, "connected", json_boolean(p->connected));
		if (st.is_leader || p->is_self) {
			json_object_set_new(j, "match_index", json_integer((json_int_t)p->match));
			json_object_set_new(j, "lag_entries",
					    json_integer((json_int_t)p->lag_entries));
			json_object_set_new(j, "lag_seconds", json_real(p->lag_seconds));
		}
		json_object_set_new(j, "bytes_sent", json_integer((json_int_t)p->bytes_sent));
		json_object_set_new(j, "bytes_received",
				    json_integer((json_int_t)p->bytes_received));
		json_array_append_new(peers, j);
	}
	json_object_set_new(conn, "count", json_integer(st.connected));
	json_object_set_new(conn, "addresses", connected_addrs(req, &st));
	json_object_set_new(o, "node_address", json_string(addr_of(req, self)));
	json_object_set_new(o, "is_leader", json_boolean(st.is_leader));
	json_object_set_new(o, "leader", leader_addr(req, &st));
	json_object_set_new(o, "is_ready", json_boolean(st.ready));
	json_object_set_new(o, "connected_nodes", conn);
	json_object_set_new(o, "total_nodes", json_integer(st.voters + st.learners));
	json_object_set_new(o, "last_commit_time", json_real(st.last_commit_time));
	json_object_set_new(o, "replication_lag", json_real(st.replication_lag_s));
	json_object_set_new(o, "cluster_time", json_real((double)clock_real_ns() / 1e9));
	json_object_set_new(o, "data_size",
			    json_integer((json_int_t)kv_key_count(node_kv(req->srv->node))));
	raft_fields(o, &st);
	json_object_set_new(o, "first_index", json_integer((json_int_t)st.first_index));
	json_object_set_new(o, "last_index", json_integer((json_int_t)st.last_index));
	json_object_set_new(o, "snapshot_index", json_integer((json_int_t)st.snap_index));
	json_object_set_new(o, "peers", peers);
	return http_respond_json(req, 200, o);
}

enum MHD_Result api_livez(struct http_req *req)
{
	json_t *o = json_object();
	json_object_set_new(o, "status", json_string("ok"));
	return http_respond_json(req, 200, o);
}

enum MHD_Result api_readyz(struct http_req *req)
{
	struct node_status st;
	node_status(req->srv->node, &st);
	const char *why = not_ready_reason(&st);
	if (why)
		return http_respond_detail(req, 503, "%s", why);
	json_t *o = json_object();
	json_object_set_new(o, "status", json_string("ready"));
	json_object_set_new(o, "leader_id", json_integer((json_int_t)st.leader_id));
	return http_respond_json(req, 200, o);
}

enum MHD_Result api_metrics(struct http_req *req)
{
	struct byte_buf b;
	bb_init(&b);
	metrics_write(&b);
	return http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
