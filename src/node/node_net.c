/*
 * The node's peer traffic: Raft messages out (with InstallSnapshot chunks
 * filled from the state machine's snapshot stream) and in, forwarded client
 * writes and their results, heartbeat round-trip times, and the transport's
 * peer list kept in step with the membership.
 *
 * A follower forwards each write to the leader; a forward ZeroMQ refuses never
 * left and is retried; once sent, its outcome belongs to that leader, and if
 * leadership moves first the client is told "outcome unknown" at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "net/wire.h"
#include "node/node_internal.h"

#define SNAP_CHUNK (1u << 20)
#define MAX_RECV_PER_TURN 4096

void node_sync_peers(struct node *n)
{
	if (!n->net)
		return;
	const struct raft_conf *c = raft_conf_get(n->raft);
	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].id != n->cfg.id && c->servers[i].addr[0])
			transport_set_peer(n->net, c->servers[i].id, c->servers[i].addr);
	/* Peers no longer in the configuration keep their socket until the
	 * removal is applied: they must hear about their own removal. */
	for (unsigned i = 0; i < n->applied_conf.n; i++) {
		uint64_t id = n->applied_conf.servers[i].id;
		if (id != n->cfg.id && !raft_conf_find(c, id))
			log_info("node", "node %llu left the configuration", (unsigned long long)id);
	}
}
/* ---- sending ---- */

/* The slot of peer id in the per-peer arrays (allocated on first sight). */
int node_peer_slot(struct node *n, uint64_t id)
{
	for (int i = 0; i < NODE_MAX_MEMBERS; i++) {
		if (n->peer_heard_id[i] == id || n->peer_heard_id[i] == 0) {
			n->peer_heard_id[i] = id;
			return i;
		}
	}
	return -1;
}
static void peer_heard(struct node *n, uint64_t id)
{
	int i = node_peer_slot(n, id);
	if (i >= 0)
		n->peer_heard_ms[i] = node_now_ms();
}
/* Heartbeat round-trip times: a heartbeat carries read_seq and its answer
 * echoes it, so the time between them is the peer's round trip (its
 * processing included). */
static void rtt_sent(struct node *n, const struct raft_msg *m)
{
	int i = node_peer_slot(n, m->to);
	if (i >= 0 && (!n->hb_sent_ns[i] || m->read_seq != n->hb_seq[i])) {
		n->hb_seq[i] = m->read_seq;
		n->hb_sent_ns[i] = clock_mono_ns();
	}
}
static void rtt_received(struct node *n, const struct raft_msg *m)
{
	int i = node_peer_slot(n, m->from);
	if (i < 0 || !n->hb_sent_ns[i] || m->read_seq != n->hb_seq[i])
		return;
	double s = (double)(clock_mono_ns() - n->hb_sent_ns[i]) / 1e9;
	n->hb_sent_ns[i] = 0;
	n->rtt_s[i] = s;
	metric_observe(&n->rtt_hist, s);
}
/* Raft messages and forwarded writes' results: held, and sent per peer as
 * one multipart message when node_flush runs (transport_hold). */
static void send_buf(struct node *n, uint64_t to)
{
	if (!n->net || n->wbuf.err)
		return;
	transport_hold(n->net, to, n->wbuf.data, n->wbuf.len);
}
void node_flush(struct node *n)
{
	if (n->net)
		transport_flush(n->net);
}
/* Fills a SNAPSHOT message's chunk from our state machine (raft.h: the
 * leader's driver fills data/len/done). Returns false to drop it. */
static bool fill_snapshot(struct node *n, struct raft_msg *m)
{
	struct snap_out *so = NULL;
	for (int i = 0; i < NODE_MAX_MEMBERS && !so; i++)
		if (n->snap_out[i].peer == m->to)
			so = &n->snap_out[i];
	for (int i = 0; i < NODE_MAX_MEMBERS && !so; i++)
		if (!n->snap_out[i].peer)
			so = &n->snap_out[i];
	if (!so)
		return false;
	if (!so->reader || m->offset == 0) {
		kv_snap_reader_destroy(so->reader);
		so->peer = m->to;
		so->reader = kv_snap_reader_create(n->kv);
		if (!so->reader)
			return false;
		metric_inc(&n->snapshots_sent);
		log_info("node", "streaming snapshot (applied %llu) to node %llu",
			 (unsigned long long)kv_snap_reader_index(so->reader),
			 (unsigned long long)m->to);
	}
	bool done;
	long got = kv_snap_read(so->reader, m->offset, n->chunk_buf, SNAP_CHUNK, &done);
	if (got < 0) {
		log_error("node", "snapshot read for node %llu failed: %s",
			  (unsigned long long)m->to, kvfs_strerror((int)got));
		return false;
	}
	m->data = n->chunk_buf;
	m->len = (size_t)got;
	m->done = done;
	return true;
}
void node_send_msgs(struct node *n, struct raft_msg *msgs, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct raft_msg *m = &msgs[i];
		if (m->type == RAFT_MSG_SNAPSHOT && !m->data && !fill_snapshot(n, m))
			continue;
		if (m->type == RAFT_MSG_HEARTBEAT)
			rtt_sent(n, m);
		n->wbuf.len = 0;
		if (wire_encode_raft(&n->wbuf, m) == 0)
			send_buf(n, m->to);
		else
			log_warn("node", "cannot encode %s for node %llu", raft_msg_name(m->type),
				 (unsigned long long)m->to);
	}
	node_flush(n);
}
void node_send_result(struct node *n, uint64_t to, uint64_t req_id, int result, uint64_t index,
			uint64_t deleted)
{
	struct raft_status st;
	raft_status(n->raft, &st);
	struct wire_forward_result r = {.req_id = req_id, .result = result, .index = index,
					.deleted = deleted, .leader_hint = st.leader};
	n->wbuf.len = 0;
	if (wire_encode_forward_result(&n->wbuf, n->cfg.id, to, &r) == 0)
		send_buf(n, to);
}
/* Forwards a write to the leader. A message ZeroMQ refuses (the leader is
 * not connected) never left: the write is parked and retried, which is safe.
 * Once sent, its outcome belongs to that leader (on_leader_change). */
void node_forward(struct node *n, struct node_req *r, uint64_t leader)
{
	struct wire_forward f = {.req_id = n->next_id, .data = r->data, .len = r->len};
	n->wbuf.len = 0;
	if (wire_encode_forward(&n->wbuf, n->cfg.id, leader, &f) < 0 || n->wbuf.err) {
		node_complete(n, r, -ENOMEM);
		return;
	}
	/* Sent at once, not held (transport_hold): whether it left decides
	 * between parking it and waiting for the leader's answer. Holding
	 * forwards too measured within noise (+0-5% PUT 64 connections). */
	if (transport_send(n->net, leader, n->wbuf.data, n->wbuf.len) < 0) {
		node_park(n, r);
		return;
	}
	r->fwd_id = n->next_id++;
	r->leader_hint = leader;
	if (idmap_put(&n->forwarded, r->fwd_id, r) < 0) {
		node_complete(n, r, -ENOMEM);
		return;
	}
	metric_inc(&n->forwarded_writes);
}
/* The leader changed: writes forwarded to another node will get no answer
 * we can trust, and may or may not have been applied. Tell their clients
 * now (503, outcome unknown) rather than at their deadline. */
void node_on_leader_change(struct node *n, uint64_t leader)
{
	struct idmap *m = &n->forwarded;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		struct node_req *r = m->vals[i];
		if (r->leader_hint == leader)
			continue;
		idmap_del(m, m->keys[i]);
		node_complete(n, r, KVFS_EUNKNOWN);
		i--; /* backward shift may have moved another entry here */
	}
}
/* ---- incoming peer messages ---- */

static void on_forward(struct node *n, const struct wire_msg *m)
{
	uint64_t index, term, hint = 0;
	/* --max-log-memory holds for writes forwarded here too, from half of
	 * it on as for this node's own (process_parked): refused before
	 * proposing, the write is certainly not applied, and its follower
	 * holds it and asks again shortly (on_forward_result). What this turn
	 * took counts too: log_bytes grows only when the turn persists, and
	 * followers let go of their held writes together. */
	uint64_t waiting = __atomic_load_n(&n->log_bytes, __ATOMIC_RELAXED) + n->fwd_turn_bytes;
	int rc = waiting > n->cfg.max_log_bytes / 2
		 ? KVFS_EBEHIND
		 : raft_propose(n->raft, m->fwd.data, m->fwd.len, &index, &term, &hint);
	if (rc == 0)
		n->fwd_turn_bytes += m->fwd.len;
	if (rc) {
		node_send_result(n, m->from, m->fwd.req_id, rc, 0, 0);
		return;
	}
	struct remote_write *w = calloc(1, sizeof *w);
	if (!w)
		return; /* the follower times out: outcome unknown, as it must say */
	*w = (struct remote_write){.from = m->from, .req_id = m->fwd.req_id, .index = index,
				   .term = term};
	/* Held, so it leaves with (and before) the AppendEntries carrying the
	 * entry: the follower knows what to wait for before it can apply it. */
	struct wire_forward_accept a = {.req_id = m->fwd.req_id, .index = index, .term = term};
	n->wbuf.len = 0;
	if (wire_encode_forward_accept(&n->wbuf, n->cfg.id, m->from, &a) == 0)
		send_buf(n, m->from);
	if (n->remote_tail)
		n->remote_tail->next = w;
	else
		n->remote = w;
	n->remote_tail = w;
}
static void on_forward_result(struct node *n, const struct wire_msg *m)
{
	struct node_req *r = idmap_del(&n->forwarded, m->result.req_id);
	if (!r)
		return; /* timed out already */
	int res = m->result.result;
	if (res == KVFS_ENOTLEADER || res == KVFS_ENOLEADER || res == KVFS_EBUSY) {
		node_park(n, r); /* leadership moved before proposing: safe to retry */
		return;
	}
	if (res == KVFS_EBEHIND) {
		/* The leader's state machine is behind: not proposed. Our
		 * clients' writes wait here, held like our own backpressure's,
		 * and ask again after LEADER_BEHIND_MS, or get 503 at their
		 * deadline (sweep). Refused at once instead, a client that
		 * retries at once got hundreds of 503s a second (bench/large.sh). */
		if (!r->held)
			metric_inc(&n->writes_held);
		r->held = true;
		n->leader_behind_ms = node_now_ms() + LEADER_BEHIND_MS;
		node_park(n, r);
		return;
	}
	r->index = m->result.index;
	r->deleted = m->result.deleted;
	if (res != 0 || kv_applied_index(n->kv) >= r->index) {
		node_complete(n, r, res);
		return;
	}
	r->result = 0;
	list_push(&n->apply_wait, r);
}
/* The leader proposed our forwarded write at index/term: from now on our own
 * apply of that index decides it (settle, node_raft.c), as for a write we
 * proposed ourselves. Should that index be applied already (the accept came
 * late), the leader's result decides it, as before. */
static void on_forward_accept(struct node *n, const struct wire_msg *m)
{
	struct node_req *r = idmap_get(&n->forwarded, m->accept.req_id);
	if (!r || m->accept.index <= kv_applied_index(n->kv))
		return;
	idmap_del(&n->forwarded, m->accept.req_id);
	r->index = m->accept.index;
	r->term = m->accept.term;
	node_writes_insert(n, r);
}
void node_set_rest_url(struct node *n, const char *url)
{
	/* One that does not fit a WIRE_HELLO is not advertised at all, rather
	 * than cut short. */
	size_t len = url ? strlen(url) : 0;
	pthread_mutex_lock(&n->slock);
	if (len > WIRE_URL_MAX)
		len = 0;
	if (len)
		memcpy(n->rest_url, url, len);
	n->rest_url[len] = 0;
	pthread_mutex_unlock(&n->slock);
}
void node_send_hellos(struct node *n)
{
	char url[sizeof n->rest_url];
	pthread_mutex_lock(&n->slock);
	memcpy(url, n->rest_url, sizeof url);
	pthread_mutex_unlock(&n->slock);
	struct wire_hello h = {.url = url, .len = strlen(url)};
	const struct raft_conf *c = raft_conf_get(n->raft);
	for (unsigned i = 0; n->net && h.len && i < c->n; i++) {
		uint64_t id = c->servers[i].id;
		n->wbuf.len = 0;
		if (id != n->cfg.id && wire_encode_hello(&n->wbuf, n->cfg.id, id, &h) == 0)
			send_buf(n, id);
	}
}
static void on_hello(struct node *n, const struct wire_msg *m)
{
	/* A URL is printable ASCII without spaces; anything else is not shown
	 * (it would not survive JSON or a terminal) but counted as rejected. */
	for (size_t k = 0; k < m->hello.len; k++) {
		if (m->hello.url[k] <= ' ' || m->hello.url[k] > '~') {
			transport_count_rejected(n->net);
			return;
		}
	}
	int i = node_peer_slot(n, m->from);
	if (i < 0)
		return;
	memcpy(n->peer_url[i], m->hello.url, m->hello.len); /* len <= 255 < sizeof */
	n->peer_url[i][m->hello.len] = 0;
}
/* A follower whose state machine is behind by more than --max-log-memory
 * of log (LevelDB stalls, and the log is compacted only up to what was
 * flushed) drops AppendEntries that bring entries, as if they were lost:
 * the leader sends them again later, and its heartbeats still arrive, so
 * no election starts. A leader holds new writes from half of the bound on
 * instead (its own in process_parked, forwarded ones in on_forward). */
static bool over_log_memory(struct node *n, const struct raft_msg *m)
{
	if (m->type != RAFT_MSG_APPEND || !m->n_entries)
		return false;
	bool over = node_log_over_bound(n);
	if (over != n->dropping_appends) {
		n->dropping_appends = over;
		if (over)
			log_warn("node", "state machine behind: more than --max-log-memory of "
				 "log waits in memory; new entries refused until it catches up");
		else
			log_info("node", "state machine caught up: taking new entries again");
	}
	return over;
}

void node_receive(struct node *n)
{
	const void *buf;
	long len;
	n->fwd_turn_bytes = 0;
	for (int i = 0; i < MAX_RECV_PER_TURN && (len = transport_recv(n->net, &buf)) >= 0; i++) {
		struct wire_msg m;
		if (wire_decode(buf, (size_t)len, &m) != 0 || m.to != n->cfg.id) {
			transport_count_rejected(n->net);
			log_debug("net", "rejected a malformed or misaddressed peer message");
			continue;
		}
		transport_count_received(n->net, m.from, (size_t)len);
		peer_heard(n, m.from);
		switch (m.kind) {
		case WIRE_RAFT:
			if (m.raft.type == RAFT_MSG_HEARTBEAT_RESP)
				rtt_received(n, &m.raft);
			if (over_log_memory(n, &m.raft))
				break;
			if (raft_step(n->raft, &m.raft) == KVFS_EPROTO)
				transport_count_rejected(n->net);
			break;
		case WIRE_FORWARD:
			on_forward(n, &m);
			break;
		case WIRE_FORWARD_RESULT:
			on_forward_result(n, &m);
			break;
		case WIRE_FORWARD_ACCEPT:
			on_forward_accept(n, &m);
			break;
		case WIRE_HELLO:
			on_hello(n, &m);
			break;
		}
		wire_msg_free(&m);
	}
}
