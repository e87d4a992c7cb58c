/*
 * The node's status snapshot for /health, /debug/replication, /readyz and
 * /metrics: Raft state, membership with per-peer match index, lag (entries
 * and seconds), connectivity and traffic, and this node's own lag as a
 * follower. Built on the node loop, copied out under slock by node_status().
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

void node_update_status(struct node *n)
{
	struct raft_status rs;
	raft_status(n->raft, &rs);
	const struct raft_conf *c = raft_conf_get(n->raft);
	int64_t now = node_now_ms();
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
	st.inferred_commits = rs.inferred_commits;
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
			pthread_mutex_lock(&n->slock);
			memcpy(p->http, n->rest_url, sizeof p->http);
			pthread_mutex_unlock(&n->slock);
		} else {
			for (int j = 0; j < NODE_MAX_MEMBERS; j++)
				if (n->peer_heard_id[j] == s->id) {
					p->connected = now - n->peer_heard_ms[j] < alive;
					p->rtt_seconds = n->rtt_s[j];
					memcpy(p->http, n->peer_url[j], sizeof p->http);
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
				int slot = node_peer_slot(n, s->id);
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
	/* A leader not heard from for two election timeouts is none: a
	 * learner (it never campaigns) or a node installing a snapshot keeps
	 * Raft's leader through a partition, and would report it, and be
	 * ready, for as long as the partition lasts. */
	if (!st.is_leader && st.leader_id) {
		bool heard = false; /* "connected", as the peer table above says */
		for (int i = 0; i < st.n_peers; i++)
			if (st.peers[i].id == st.leader_id)
				heard = st.peers[i].connected;
		if (!heard) {
			st.leader_id = 0;
			/* What it said of its commit index is old news by
			 * the time it is heard again: catch up from its next
			 * word (catchup.h). */
			raft_forget_leader_commit(n->raft);
			rs.leader_commit = 0;
		}
	}
	/* A follower that has not applied what the cluster had committed
	 * when it heard its leader, or is more than CATCHUP_LAG_MS behind, is
	 * catching up: its stale reads would miss keys its peers hold. */
	bool behind = catchup_step(&n->catchup,
				   st.is_leader	   ? CATCHUP_LEADER
				   : st.leader_id ? CATCHUP_FOLLOWER
						  : CATCHUP_NO_LEADER,
				   st.applied, rs.leader_commit, now);
	st.ready = !st.failed && st.leader_id != 0 && raft_conf_find(c, n->cfg.id) != NULL && !behind;
	/* A sole voter reads locally once its state machine holds its term's
	 * no-op: before that, entries of an earlier term (acknowledged before
	 * a restart) may still be waiting to be applied, and a local read would
	 * miss them. Until then reads take the read-index path, which waits. */
	__atomic_store_n(&n->local_reads,
			 st.is_leader && st.voters == 1 && !rs.transferee &&
				 kv_applied_index(n->kv) >= rs.term_start,
			 __ATOMIC_RELEASE);
	pthread_mutex_lock(&n->slock);
	n->st = st;
	pthread_mutex_unlock(&n->slock);
}
