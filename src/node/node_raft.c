/*
 * One turn of the node loop: the Raft core driven by real storage, real
 * sockets and real clients (the contract is the loop in src/raft/raft.h).
 *
 * Requests: a write on the leader becomes a proposal (all writes of a turn in
 * one batch); on a follower it is forwarded to the leader over the peer
 * socket and answered when the leader's result arrives and the entry is
 * applied here. A linearizable read asks the core for a read index (the core
 * batches them into one heartbeat round, and followers ask the leader) and
 * completes once the applied index reaches it. Requests that find no leader
 * are parked and retried every turn until their deadline, so a node without
 * quorum answers within --request-timeout, never hangs.
 *
 * A proposal succeeds iff the entry applied at its index has its term
 * (raft.h, LOST PROPOSALS); when leadership moves, pending proposals stay
 * until their index is applied, which decides them.
 *
 * Recovery: the state machine is trusted up to its applied index (it is
 * synced with every apply batch); the core is rebuilt from the hard state,
 * the snapshot metadata and the log entries after it, and re-delivers
 * committed entries, which kv_apply skips up to the applied index.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "net/wire.h"
#include "node/node_internal.h"

#define SNAP_CHUNK (1u << 20)
#define MAX_RECV_PER_TURN 4096

static int64_t now_ms(void)
{
	return clock_mono_ms();
}

/* ---- membership helpers ---- */

static const struct raft_server *conf_self(const struct raft_conf *c, uint64_t id)
{
	return raft_conf_find(c, id);
}

static void sync_peers(struct node *n)
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

static void tracer(void *data, uint64_t id, int level, const char *line)
{
	if (level <= RAFT_TRACE_INFO)
		log_info("raft", "%s", line);
	else
		log_debug("raft", "%s", line);
}

/* ---- recovery ---- */

struct load_ctx {
	struct raft_entry *ents;
	size_t n, cap;
	uint64_t bytes;
	uint64_t after;
	int rc;
};

static int load_cb(const struct rlog_entry *e, void *ud)
{
	struct load_ctx *lc = ud;
	if (e->index <= lc->after)
		return 0;
	if (lc->n == lc->cap) {
		size_t nc = lc->cap ? lc->cap * 2 : 1024;
		struct raft_entry *ne = realloc(lc->ents, nc * sizeof *ne);
		if (!ne)
			return -ENOMEM;
		lc->ents = ne;
		lc->cap = nc;
	}
	void *copy = NULL;
	if (e->len && !(copy = malloc(e->len)))
		return -ENOMEM;
	if (e->len)
		memcpy(copy, e->data, e->len);
	lc->bytes += e->len;
	lc->ents[lc->n++] = (struct raft_entry){
		.term = e->term, .index = e->index, .type = e->type, .data = copy, .len = e->len};
	return 0;
}

static void load_free(struct load_ctx *lc)
{
	for (size_t i = 0; i < lc->n; i++)
		free((void *)lc->ents[i].data);
	free(lc->ents);
}

static void bootstrap_conf(struct node *n, struct raft_conf *c)
{
	memset(c, 0, sizeof *c);
	if (n->cfg.join)
		return;
	if (n->cfg.n_members == 0) {
		c->n = 1;
		c->servers[0].id = n->cfg.id;
		c->servers[0].role = RAFT_VOTER;
		snprintf(c->servers[0].addr, RAFT_ADDR_MAX, "%s",
			 n->cfg.peer_addr ? n->cfg.peer_addr : "");
		return;
	}
	for (int i = 0; i < n->cfg.n_members && i < RAFT_MAX_SERVERS; i++) {
		c->servers[c->n].id = n->cfg.members[i].id;
		c->servers[c->n].role = RAFT_VOTER;
		snprintf(c->servers[c->n].addr, RAFT_ADDR_MAX, "%s", n->cfg.members[i].addr);
		c->n++;
	}
}

/* Persists the bootstrap membership (as snapshot metadata at index 0) so
 * that a restart does not depend on the flags it is given. */
static int store_bootstrap(struct node *n, const struct raft_conf *c)
{
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	int len = raft_conf_encode(c, buf, sizeof buf);
	if (len < 0)
		return KVFS_ECONFIG;
	struct rlog_snapshot_meta meta = {.index = 0, .term = 0, .membership = buf,
					  .membership_len = (size_t)len};
	return rlog_compact(n->log, &meta, 0);
}

int node_raft_open(struct node *n)
{
	struct rlog_hard_state hs;
	struct rlog_snapshot_meta snap;
	struct load_ctx lc = {0};
	struct raft_init init;
	int rc;
	int64_t t0 = clock_mono_ns();

	/* Entries at or below the snapshot index are still on disk when the
	 * log kept a tail for lagging followers; the core starts after it. */
	rc = rlog_load(n->log, &hs, &snap, NULL, NULL);
	if (rc == 0) {
		lc.after = snap.index;
		free(snap.membership);
		rc = rlog_load(n->log, &hs, &snap, load_cb, &lc);
	}
	if (rc < 0) {
		log_error("node", "cannot load the Raft log: %s", kvfs_strerror(rc));
		goto out;
	}
	memset(&init, 0, sizeof init);
	init.hs.term = hs.term;
	init.hs.vote = hs.vote;
	if (snap.index) {
		init.snap.index = snap.index;
		init.snap.term = snap.term;
		if ((rc = raft_conf_decode(&init.snap.conf, snap.membership, snap.membership_len))) {
			log_error("node", "corrupt membership in snapshot metadata");
			goto out;
		}
		n->applied_conf = init.snap.conf;
	} else if (snap.membership_len) {
		/* The membership stored at first start (below): the flags only
		 * bootstrap, a restarted node keeps what it had. */
		if ((rc = raft_conf_decode(&init.conf, snap.membership, snap.membership_len))) {
			log_error("node", "corrupt stored membership");
			goto out;
		}
		n->applied_conf = init.conf;
	} else {
		bootstrap_conf(n, &init.conf);
		n->applied_conf = init.conf;
		if (init.conf.n && (rc = store_bootstrap(n, &init.conf)) < 0)
			goto out;
	}
	init.entries = lc.ents;
	init.n_entries = lc.n;
	n->log_bytes = lc.bytes;
	/* The membership in effect at the state machine's applied index. */
	uint64_t applied = kv_applied_index(n->kv);
	for (size_t i = 0; i < lc.n && lc.ents[i].index <= applied; i++)
		if (lc.ents[i].type == RAFT_ENTRY_CONF)
			raft_conf_decode(&n->applied_conf, lc.ents[i].data, lc.ents[i].len);

	int tick_ms = n->cfg.heartbeat_ms / 2 > 0 ? n->cfg.heartbeat_ms / 2 : 1;
	struct raft_config rc_cfg = {
		.id = n->cfg.id,
		.seed = n->cfg.seed ? n->cfg.seed : (uint64_t)clock_real_ns() ^ (uint64_t)getpid(),
		.election_ticks = (unsigned)(n->cfg.election_ms / tick_ms),
		.heartbeat_ticks = 2,
		.max_batch_entries = 512,
		.max_batch_bytes = 4u << 20,
		.max_inflight = 16,
		.max_apply = 1024,
		.pre_vote = true,
		.check_quorum = true,
		.tracer = {.data = n, .level = log_threshold >= LOG_DEBUG ? RAFT_TRACE_DEBUG
						: RAFT_TRACE_INFO,
			   .emit = tracer},
	};
	if (rc_cfg.election_ticks <= rc_cfg.heartbeat_ticks)
		rc_cfg.election_ticks = rc_cfg.heartbeat_ticks + 1;
	if ((rc = raft_create(&rc_cfg, &init, &n->raft)) < 0) {
		log_error("node", "cannot start the Raft core: %s (inconsistent log?)",
			  kvfs_strerror(rc));
		if (rc == -EINVAL)
			rc = KVFS_ECORRUPT;
		goto out;
	}
	if (!(n->chunk_buf = malloc(SNAP_CHUNK))) {
		rc = -ENOMEM;
		goto out;
	}
	sync_peers(n);
	/* A joining node has no membership until its entry reaches it, but must
	 * answer the leader before that: --cluster tells it where members are. */
	if (n->net && n->cfg.join)
		for (int i = 0; i < n->cfg.n_members; i++)
			if (n->cfg.members[i].id != n->cfg.id)
				transport_set_peer(n->net, n->cfg.members[i].id, n->cfg.members[i].addr);
	/* A lone voter has nobody to wait for: let its election timer run out
	 * now instead of after a randomised timeout (time is an input of the
	 * core, so this is simply ticking ahead). */
	const struct raft_conf *c0 = raft_conf_get(n->raft);
	if (raft_conf_voters(c0) == 1 && raft_conf_find(c0, n->cfg.id) &&
	    raft_conf_find(c0, n->cfg.id)->role == RAFT_VOTER)
		for (unsigned i = 0; i < 2 * rc_cfg.election_ticks; i++)
			raft_tick(n->raft);
	log_info("node",
		 "recovered term=%llu snapshot=%llu log=%zu entries applied=%llu keys=%llu "
		 "members=%u in %.1f ms",
		 (unsigned long long)hs.term, (unsigned long long)snap.index, lc.n,
		 (unsigned long long)applied, (unsigned long long)kv_key_count(n->kv),
		 raft_conf_get(n->raft)->n, (double)(clock_mono_ns() - t0) / 1e6);
out:
	free(snap.membership);
	load_free(&lc);
	return rc;
}

void node_raft_close(struct node *n)
{
	for (int i = 0; i < NODE_MAX_MEMBERS; i++)
		kv_snap_reader_destroy(n->snap_out[i].reader);
	memset(n->snap_out, 0, sizeof n->snap_out);
	kv_snap_writer_destroy(n->snap_in);
	n->snap_in = NULL;
	raft_destroy(n->raft);
	n->raft = NULL;
	free(n->chunk_buf);
	n->chunk_buf = NULL;
}

/* ---- sending ---- */

/* The slot of peer id in the per-peer arrays (allocated on first sight). */
static int peer_slot(struct node *n, uint64_t id)
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
	int i = peer_slot(n, id);
	if (i >= 0)
		n->peer_heard_ms[i] = now_ms();
}

/* Heartbeat round-trip times: a heartbeat carries read_seq and its answer
 * echoes it, so the time between them is the peer's round trip (its
 * processing included). */
static void rtt_sent(struct node *n, const struct raft_msg *m)
{
	int i = peer_slot(n, m->to);
	if (i >= 0 && (!n->hb_sent_ns[i] || m->read_seq != n->hb_seq[i])) {
		n->hb_seq[i] = m->read_seq;
		n->hb_sent_ns[i] = clock_mono_ns();
	}
}

static void rtt_received(struct node *n, const struct raft_msg *m)
{
	int i = peer_slot(n, m->from);
	if (i < 0 || !n->hb_sent_ns[i] || m->read_seq != n->hb_seq[i])
		return;
	double s = (double)(clock_mono_ns() - n->hb_sent_ns[i]) / 1e9;
	n->hb_sent_ns[i] = 0;
	n->rtt_s[i] = s;
	metric_observe(&n->rtt_hist, s);
}

static void send_buf(struct node *n, uint64_t to)
{
	if (!n->net || n->wbuf.err)
		return;
	transport_send(n->net, to, n->wbuf.data, n->wbuf.len);
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

static void send_msgs(struct node *n, struct raft_msg *msgs, size_t count)
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
}

static void send_result(struct node *n, uint64_t to, uint64_t req_id, int result, uint64_t index,
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

/* ---- requests ---- */

static void park(struct node *n, struct node_req *r)
{
	list_push(&n->parked, r);
}

/* Inserts r into the local writes list, ordered by index. */
static void writes_insert(struct node *n, struct node_req *r)
{
	struct req_list *l = &n->writes;
	if (!l->tail || l->tail->index < r->index) {
		list_push(l, r);
		return;
	}
	struct node_req **pp = &l->head;
	while (*pp && (*pp)->index < r->index)
		pp = &(*pp)->next;
	r->next = *pp;
	*pp = r;
	if (!r->next)
		l->tail = r;
}

/* Forwards a write to the leader. A message ZeroMQ refuses (the leader is
 * not connected) never left: the write is parked and retried, which is safe.
 * Once sent, its outcome belongs to that leader (on_leader_change). */
static void forward(struct node *n, struct node_req *r, uint64_t leader)
{
	struct wire_forward f = {.req_id = n->next_id, .data = r->data, .len = r->len};
	n->wbuf.len = 0;
	if (wire_encode_forward(&n->wbuf, n->cfg.id, leader, &f) < 0 || n->wbuf.err) {
		node_complete(n, r, -ENOMEM);
		return;
	}
	if (transport_send(n->net, leader, n->wbuf.data, n->wbuf.len) < 0) {
		park(n, r);
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
static void on_leader_change(struct node *n, uint64_t leader)
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

static void process_parked(struct node *n)
{
	struct node_req *r = list_take(&n->parked);
	struct raft_status st;
	raft_status(n->raft, &st);
	bool leader = st.state == RAFT_LEADER;

	/* Leader: all writes of the turn in one batch proposal. */
	size_t nw = 0;
	for (struct node_req *p = r; p; p = p->next)
		nw += p->type == NODE_REQ_WRITE;
	const void **datas = NULL;
	size_t *lens = NULL;
	struct node_req **wr = NULL;
	if (leader && nw) {
		datas = malloc(nw * sizeof *datas);
		lens = malloc(nw * sizeof *lens);
		wr = malloc(nw * sizeof *wr);
	}
	size_t k = 0;
	while (r) {
		struct node_req *next = r->next;
		int rc;
		uint64_t idx, hint = 0;
		switch (r->type) {
		case NODE_REQ_WRITE:
			if (leader && wr) {
				datas[k] = r->data;
				lens[k] = r->len;
				wr[k++] = r;
			} else if (leader) {
				node_complete(n, r, -ENOMEM);
			} else if (st.leader && st.leader != n->cfg.id && n->net) {
				forward(n, r, st.leader);
			} else {
				park(n, r);
			}
			break;
		case NODE_REQ_READ:
			rc = raft_read_index(n->raft, n->next_id);
			if (rc == 0 && idmap_put(&n->reads, n->next_id, r) == 0)
				n->next_id++;
			else if (rc == 0)
				node_complete(n, r, -ENOMEM);
			else
				park(n, r);
			break;
		case NODE_REQ_MEMBER:
			if (!leader) {
				r->leader_hint = st.leader;
				node_complete(n, r, st.leader ? KVFS_ENOTLEADER : KVFS_ENOLEADER);
				break;
			}
			if ((r->member_kind == NODE_PROMOTE || r->member_kind == NODE_REMOVE) &&
			    !raft_conf_find(raft_conf_get(n->raft), r->member_id)) {
				node_complete(n, r, KVFS_ENOTFOUND);
				break;
			}
			rc = raft_change(n->raft, (enum raft_change_kind)r->member_kind, r->member_id,
					 r->member_addr, &idx);
			if (rc == 0) {
				r->index = idx;
				r->term = st.term;
				writes_insert(n, r);
				sync_peers(n);
			} else if (rc == KVFS_EBUSY) {
				park(n, r);
			} else {
				node_complete(n, r, rc);
			}
			break;
		case NODE_REQ_TRANSFER:
			if (!leader) {
				r->leader_hint = st.leader;
				node_complete(n, r, st.leader ? KVFS_ENOTLEADER : KVFS_ENOLEADER);
			} else {
				node_complete(n, r, raft_transfer(n->raft, r->member_id));
			}
			break;
		}
		(void)hint;
		r = next;
	}
	if (k) {
		uint64_t first, term, hint;
		int rc = raft_propose_batch(n->raft, datas, lens, k, &first, &term, &hint);
		for (size_t i = 0; i < k; i++) {
			if (rc == 0) {
				wr[i]->index = first + i;
				wr[i]->term = term;
				writes_insert(n, wr[i]);
			} else if (rc == KVFS_ENOTLEADER || rc == KVFS_EBUSY) {
				park(n, wr[i]);
			} else {
				node_complete(n, wr[i], rc);
			}
		}
	}
	free(datas);
	free(lens);
	free(wr);
}

/* ---- incoming peer messages ---- */

static void on_forward(struct node *n, const struct wire_msg *m)
{
	uint64_t index, term, hint = 0;
	int rc = raft_propose(n->raft, m->fwd.data, m->fwd.len, &index, &term, &hint);
	if (rc) {
		send_result(n, m->from, m->fwd.req_id, rc, 0, 0);
		return;
	}
	struct remote_write *w = calloc(1, sizeof *w);
	if (!w)
		return; /* the follower times out: outcome unknown, as it must say */
	*w = (struct remote_write){.from = m->from, .req_id = m->fwd.req_id, .index = index,
				   .term = term};
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
		park(n, r); /* leadership moved before proposing: safe to retry */
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

static void receive(struct node *n)
{
	const void *buf;
	long len;
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
			if (raft_step(n->raft, &m.raft) == KVFS_EPROTO)
				transport_count_rejected(n->net);
			break;
		case WIRE_FORWARD:
			on_forward(n, &m);
			break;
		case WIRE_FORWARD_RESULT:
			on_forward_result(n, &m);
			break;
		}
		wire_msg_free(&m);
	}
}

/* ---- output records ---- */

static int persist(struct node *n, const struct raft_update *u)
{
	if (!u->n_entries && !u->has_hard_state && !u->truncate_from)
		return 0;
	struct rlog_entry stackents[64], *ents = stackents;
	if (u->n_entries > 64 && !(ents = malloc(u->n_entries * sizeof *ents)))
		return -ENOMEM;
	for (size_t i = 0; i < u->n_entries; i++)
		n->log_bytes += u->entries[i].len;
	for (size_t i = 0; i < u->n_entries; i++)
		ents[i] = (struct rlog_entry){.index = u->entries[i].index,
					      .term = u->entries[i].term,
					      .type = u->entries[i].type,
					      .data = u->entries[i].data,
					      .len = u->entries[i].len};
	struct rlog_hard_state hs = {.term = u->hs.term, .vote = u->hs.vote};
	int64_t t0 = clock_mono_ns();
	int rc = rlog_write(n->log, u->has_hard_state ? &hs : NULL, u->truncate_from, ents,
			    u->n_entries);
	metric_observe(&n->fsync_hist, (double)(clock_mono_ns() - t0) / 1e9);
	if (ents != stackents)
		free(ents);
	return rc;
}

static int write_chunks(struct node *n, const struct raft_update *u)
{
	for (size_t i = 0; i < u->n_chunks; i++) {
		const struct raft_chunk *c = &u->chunks[i];
		int rc;
		if (c->offset == 0 || !n->snap_in) {
			kv_snap_writer_destroy(n->snap_in);
			n->snap_in = NULL;
			if (c->offset != 0)
				continue; /* lost our partial state: the install will fail */
			if ((rc = kv_snap_writer_create(n->kv, &n->snap_in)) < 0)
				return rc;
			log_info("node", "receiving snapshot %llu", (unsigned long long)c->snap_index);
		}
		rc = kv_snap_write(n->snap_in, c->offset, c->data, c->len);
		if (rc == KVFS_EPROTO) {
			log_error("node", "malformed snapshot stream at offset %llu",
				  (unsigned long long)c->offset);
			kv_snap_writer_destroy(n->snap_in);
			n->snap_in = NULL;
		} else if (rc) {
			return rc;
		}
	}
	return 0;
}

/* Completes the waiters of entry e (applied with result, keys deleted). */
static void settle(struct node *n, const struct raft_entry *e, int result, uint64_t deleted)
{
	struct req_list *l = &n->writes;
	while (l->head && l->head->index <= e->index) {
		struct node_req *r = l->head;
		l->head = r->next;
		if (!l->head)
			l->tail = NULL;
		if (r->index == e->index && r->term == e->term) {
			r->deleted = deleted;
			metric_inc(result ? &n->proposals_failed : &n->proposals_committed);
			node_complete(n, r, result);
		} else {
			/* Another leader's entry took this index: ours never applies. */
			metric_inc(&n->proposals_failed);
			node_complete(n, r, KVFS_ENOTLEADER);
		}
	}
	while (n->remote && n->remote->index <= e->index) {
		struct remote_write *w = n->remote;
		n->remote = w->next;
		if (!n->remote)
			n->remote_tail = NULL;
		bool ours = w->index == e->index && w->term == e->term;
		send_result(n, w->from, w->req_id, ours ? result : KVFS_ENOTLEADER, e->index,
			    ours ? deleted : 0);
		free(w);
	}
}

static int apply(struct node *n, const struct raft_update *u)
{
	if (!u->n_committed)
		return 0;
	struct kv_entry stackents[64], *ke = stackents;
	if (u->n_committed > 64 && !(ke = malloc(u->n_committed * sizeof *ke)))
		return -ENOMEM;
	for (size_t i = 0; i < u->n_committed; i++) {
		const struct raft_entry *e = &u->committed[i];
		bool normal = e->type == RAFT_ENTRY_NORMAL;
		ke[i] = (struct kv_entry){.index = e->index,
					  .data = normal ? e->data : NULL,
					  .len = normal ? e->len : 0};
	}
	/* The previous batch must be durable before this one is written: then a
	 * power loss can only cost the last batch, never leave a hole (kv.h). */
	int64_t t0 = clock_mono_ns();
	int rc = node_wait_synced(n);
	if (rc == 0)
		rc = kv_apply(n->kv, ke, u->n_committed, NULL, 0);
	if (rc == 0)
		node_request_sync(n, kv_applied_index(n->kv));
	metric_observe(&n->apply_hist, (double)(clock_mono_ns() - t0) / 1e9);
	if (rc == 0) {
		pthread_mutex_lock(&n->hook_lock);
		for (size_t i = 0; i < u->n_committed; i++) {
			const struct raft_entry *e = &u->committed[i];
			if (e->type == RAFT_ENTRY_CONF) {
				raft_conf_decode(&n->applied_conf, e->data, e->len);
				log_info("node", "membership change applied at index %llu (%u members)",
					 (unsigned long long)e->index, n->applied_conf.n);
				/* Whoever is told the change is done must see it in
				 * /cluster/members at once. */
				node_update_status(n);
			}
			settle(n, e, ke[i].result, ke[i].deleted);
			if (n->apply_hook && e->type == RAFT_ENTRY_NORMAL && ke[i].result == 0)
				n->apply_hook(n->apply_hook_ud, e->index, e->data, e->len);
		}
		pthread_mutex_unlock(&n->hook_lock);
		n->applied_now = true;
		n->last_apply_ms = now_ms();
		metric_add(&n->entries_applied, u->n_committed);
	}
	if (ke != stackents)
		free(ke);
	return rc;
}

static void complete_applied(struct node *n)
{
	uint64_t applied = kv_applied_index(n->kv);
	struct node_req *r = list_take(&n->apply_wait);
	while (r) {
		struct node_req *next = r->next;
		if (r->index <= applied)
			node_complete(n, r, r->type == NODE_REQ_READ ? 0 : r->result);
		else
			list_push(&n->apply_wait, r);
		r = next;
	}
}

static void on_reads(struct node *n, const struct raft_update *u)
{
	for (size_t i = 0; i < u->n_reads; i++) {
		struct node_req *r = idmap_del(&n->reads, u->reads[i].ctx);
		if (!r)
			continue;
		int st = u->reads[i].status;
		if (st == KVFS_ENOTLEADER || st == KVFS_ENOLEADER) {
			park(n, r);
			continue;
		}
		if (st) {
			node_complete(n, r, st);
			continue;
		}
		metric_inc(&n->reads_served);
		r->index = u->reads[i].index;
		list_push(&n->apply_wait, r);
	}
}

static int install(struct node *n, const struct raft_install *in)
{
	int rc;
	if (!n->snap_in) {
		log_error("node", "asked to install snapshot %llu that was not received whole",
			  (unsigned long long)in->snap.index);
		return KVFS_ECORRUPT;
	}
	if ((rc = kv_snap_commit(n->snap_in)) < 0)
		return rc;
	kv_snap_writer_destroy(n->snap_in);
	n->snap_in = NULL;
	uint8_t conf[RAFT_CONF_ENCODED_MAX];
	int clen = raft_conf_encode(&in->snap.conf, conf, sizeof conf);
	struct rlog_snapshot_meta meta = {.index = in->snap.index, .term = in->snap.term,
					  .membership = conf,
					  .membership_len = clen > 0 ? (size_t)clen : 0};
	if ((rc = rlog_compact(n->log, &meta, in->discard_log ? UINT64_MAX : in->snap.index)) < 0)
		return rc;
	n->applied_conf = in->snap.conf;
	metric_inc(&n->snapshots_received);
	log_info("node", "installed snapshot %llu (state machine at %llu, %llu keys)",
		 (unsigned long long)in->snap.index, (unsigned long long)kv_applied_index(n->kv),
		 (unsigned long long)kv_key_count(n->kv));
	return 0;
}

static void drain(struct node *n)
{
	struct raft_update u;
	while (raft_ready(n->raft, &u)) {
		int rc;
		uint64_t installed = 0;
		send_msgs(n, u.msgs_early, u.n_msgs_early);
		if ((rc = persist(n, &u)) < 0 || (rc = write_chunks(n, &u)) < 0) {
			node_fail(n, rc);
			return;
		}
		send_msgs(n, u.msgs, u.n_msgs);
		if (u.has_install) {
			if ((rc = install(n, &u.install)) < 0) {
				node_fail(n, rc);
				return;
			}
			installed = u.install.snap.index;
		}
		if ((rc = apply(n, &u)) < 0) {
			node_fail(n, rc);
			return;
		}
		on_reads(n, &u);
		if (u.conf_changed)
			sync_peers(n);
		raft_advance(n->raft, &u);
		if (installed)
			raft_snapshot_installed(n->raft, installed);
	}
	complete_applied(n);
}

/* ---- housekeeping ---- */

static void maybe_compact(struct node *n)
{
	struct raft_status st;
	raft_status(n->raft, &st);
	uint64_t applied = kv_applied_index(n->kv);
	if (applied != st.applied || applied <= st.snap_index ||
	    (applied < st.snap_index + n->cfg.snapshot_entries && n->log_bytes < n->cfg.snapshot_bytes))
		return;
	/* The state machine is the snapshot: it must be on disk before the log
	 * entries it replaces go. */
	if (node_wait_synced(n) < 0) {
		node_fail(n, KVFS_ESTORAGE);
		return;
	}
	uint64_t keep = n->cfg.snapshot_entries / 2 < 5000 ? n->cfg.snapshot_entries / 2 : 5000;
	/* The kept tail must not hold the memory the byte limit frees. */
	if (n->log_bytes >= n->cfg.snapshot_bytes)
		keep = keep < 100 ? keep : 100;
	uint64_t term = raft_term_at(n->raft, applied);
	if (!term || raft_compact(n->raft, applied, keep) < 0)
		return;
	uint8_t conf[RAFT_CONF_ENCODED_MAX];
	int clen = raft_conf_encode(&n->applied_conf, conf, sizeof conf);
	struct rlog_snapshot_meta meta = {.index = applied, .term = term, .membership = conf,
					  .membership_len = clen > 0 ? (size_t)clen : 0};
	int rc = rlog_compact(n->log, &meta, applied > keep ? applied - keep : 0);
	if (rc == KVFS_ESTORAGE)
		node_fail(n, rc);
	else if (rc < 0)
		log_warn("node", "log compaction postponed: %s", kvfs_strerror(rc));
	else {
		n->log_bytes = 0;
		log_debug("node", "log compacted: snapshot at %llu, kept %llu entries",
			  (unsigned long long)applied, (unsigned long long)keep);
	}
}

static bool expired(const struct node_req *r, int64_t now)
{
	return r->deadline_ms <= now;
}

static void sweep_list(struct node *n, struct req_list *l, int64_t now, int code)
{
	struct node_req *r = list_take(l);
	while (r) {
		struct node_req *next = r->next;
		if (expired(r, now))
			node_complete(n, r, code);
		else
			list_push(l, r);
		r = next;
	}
}

static void sweep_map(struct node *n, struct idmap *m, int64_t now, int code)
{
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		struct node_req *r = m->vals[i];
		if (expired(r, now)) {
			idmap_del(m, m->keys[i]);
			node_complete(n, r, code);
			i--; /* backward shift may have moved another entry here */
		}
	}
}

static void sweep(struct node *n, int64_t now)
{
	struct raft_status st;
	raft_status(n->raft, &st);
	sweep_list(n, &n->parked, now, st.leader ? KVFS_ETIMEDOUT : KVFS_ENOLEADER);
	sweep_list(n, &n->writes, now, KVFS_ETIMEDOUT);
	sweep_list(n, &n->apply_wait, now, KVFS_ETIMEDOUT);
	sweep_map(n, &n->reads, now, st.leader ? KVFS_ETIMEDOUT : KVFS_ENOLEADER);
	sweep_map(n, &n->forwarded, now, KVFS_ETIMEDOUT);
}

void node_fail_all(struct node *n, int rc)
{
	struct req_list *lists[] = {&n->parked, &n->writes, &n->apply_wait};
	for (int i = 0; i < 3; i++) {
		struct node_req *r = list_take(lists[i]);
		while (r) {
			struct node_req *next = r->next;
			node_complete(n, r, rc);
			r = next;
		}
	}
	struct idmap *maps[] = {&n->reads, &n->forwarded};
	for (int i = 0; i < 2; i++) {
		for (size_t j = 0; j < maps[i]->cap; j++)
			if (maps[i]->keys[j])
				node_complete(n, maps[i]->vals[j], rc);
		idmap_free(maps[i]);
	}
	while (n->remote) {
		struct remote_write *w = n->remote;
		n->remote = w->next;
		free(w);
	}
	n->remote_tail = NULL;
}

void node_update_status(struct node *n)
{
	struct raft_status rs;
	raft_status(n->raft, &rs);
	const struct raft_conf *c = raft_conf_get(n->raft);
	int64_t now = now_ms();
	struct node_status st;
	pthread_mutex_lock(&n->slock);
	st = n->st;
	pthread_mutex_unlock(&n->slock);

	st.id = n->cfg.id;
	st.term = rs.term;
	st.leader_id = rs.leader;
	st.is_leader = rs.state == RAFT_LEADER;
	snprintf(st.state, sizeof st.state, "%s", raft_state_name(rs.state));
	st.commit = rs.commit;
	st.applied = kv_applied_index(n->kv);
	st.last_index = rs.last_index;
	st.first_index = rs.first_index;
	st.snap_index = rs.snap_index;
	st.failed = __atomic_load_n(&n->failed, __ATOMIC_RELAXED);
	st.voters = (int)raft_conf_voters(c);
	st.learners = (int)c->n - st.voters;
	st.wire_rejected = n->net ? transport_rejected(n->net) : 0;
	if (n->applied_now)
		st.last_commit_time = (double)clock_real_ns() / 1e9;
	n->applied_now = false;
	if (rs.leader != n->last_leader) {
		if (rs.leader)
			metric_inc(&n->leader_changes);
		n->last_leader = rs.leader;
	}
	int64_t alive = 2 * (int64_t)n->cfg.election_ms;
	st.connected = 0;
	st.n_peers = 0;
	double worst = 0;
	for (unsigned i = 0; i < c->n && i < NODE_MAX_MEMBERS; i++) {
		const struct raft_server *s = &c->servers[i];
		struct node_peer_status *p = &st.peers[st.n_peers++];
		memset(p, 0, sizeof *p);
		p->id = s->id;
		snprintf(p->addr, sizeof p->addr, "%s", s->addr);
		p->learner = s->role == RAFT_LEARNER;
		p->is_self = s->id == n->cfg.id;
		if (p->is_self) {
			p->connected = true;
			p->match = rs.last_index;
		} else {
			for (int j = 0; j < NODE_MAX_MEMBERS; j++)
				if (n->peer_heard_id[j] == s->id) {
					p->connected = now - n->peer_heard_ms[j] < alive;
					p->rtt_seconds = n->rtt_s[j];
				}
			struct transport_peer_stats ps;
			if (n->net && transport_peer_stats(n->net, s->id, &ps) == 0) {
				p->bytes_sent = ps.bytes_sent;
				p->bytes_received = ps.bytes_received;
				p->msgs_dropped = ps.msgs_dropped;
			}
			uint64_t match, next;
			if (st.is_leader && raft_progress(n->raft, s->id, &match, &next) == 0) {
				p->match = match;
				p->lag_entries = rs.last_index > match ? rs.last_index - match : 0;
				int slot = peer_slot(n, s->id);
				if (slot < 0)
					slot = 0;
				if (p->lag_entries == 0 || !n->peer_caught_up_ms[slot])
					n->peer_caught_up_ms[slot] = now;
				p->lag_seconds = p->lag_entries
							 ? (double)(now - n->peer_caught_up_ms[slot]) / 1e3
							 : 0;
				if (!p->learner && p->lag_seconds > worst)
					worst = p->lag_seconds;
			}
		}
		st.connected += p->connected;
	}
	if (!st.is_leader) {
		/* A follower's own lag: how long it has been behind the commit
		 * index it knows of. */
		if (st.applied >= rs.commit || !n->self_caught_up_ms)
			n->self_caught_up_ms = now;
		worst = (double)(now - n->self_caught_up_ms) / 1e3;
	}
	st.replication_lag_s = worst;
	st.ready = !st.failed && rs.leader != 0 && raft_conf_find(c, n->cfg.id) != NULL;
	__atomic_store_n(&n->local_reads, st.is_leader && st.voters == 1 && !rs.transferee,
			 __ATOMIC_RELEASE);
	pthread_mutex_lock(&n->slock);
	n->st = st;
	pthread_mutex_unlock(&n->slock);
}

void node_turn(struct node *n, struct node_req *reqs, bool tick)
{
	int64_t now = now_ms();
	if (__atomic_load_n(&n->failed, __ATOMIC_ACQUIRE)) {
		while (reqs) {
			struct node_req *next = reqs->next;
			node_complete(n, reqs, KVFS_ESTORAGE);
			reqs = next;
		}
		return;
	}
	if (n->net)
		receive(n);
	/* A node removed from the membership stops taking part: it must not
	 * campaign in the configuration it was removed from (raft.h). */
	if (!n->removed && n->applied_conf.n && !raft_conf_find(&n->applied_conf, n->cfg.id) &&
	    !raft_conf_find(raft_conf_get(n->raft), n->cfg.id)) {
		n->removed = true;
		log_warn("node", "this node was removed from the cluster: it stops taking part "
				 "(stop it, or wipe its data to join again)");
	}
	if (tick && !n->removed)
		raft_tick(n->raft);
	struct raft_status rs;
	raft_status(n->raft, &rs);
	if (rs.leader != n->fwd_leader) {
		n->fwd_leader = rs.leader;
		if (n->forwarded.n)
			on_leader_change(n, rs.leader);
	}
	while (reqs) {
		struct node_req *next = reqs->next;
		park(n, reqs);
		reqs = next;
	}
	drain(n); /* a tick or a message may have changed leadership */
	if (n->parked.head)
		process_parked(n);
	drain(n);
	if (tick) {
		sweep(n, now);
		maybe_compact(n);
		if (kv_cleanup_step(n->kv, 10000) < 0)
			node_fail(n, KVFS_ESTORAGE);
		node_update_status(n);
	} else if (n->applied_now) {
		node_update_status(n);
	}
	(void)conf_self;
}
