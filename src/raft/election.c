/*
 * Elections: role transitions, timeouts, pre-vote and RequestVote.
 *
 * Figure 2, "Followers": if election timeout elapses without receiving
 * AppendEntries RPC from current leader or granting vote to candidate:
 * convert to candidate. "Candidates": increment currentTerm, vote for self,
 * reset election timer, send RequestVote RPCs to all other servers; if votes
 * received from majority of servers: become leader.
 *
 * Pre-vote (thesis §9.6): before incrementing its term a server asks whether
 * it could win; a partitioned server rejoining thus cannot disrupt a
 * working leader. Check-quorum (thesis §6.2): a leader that did not hear from
 * a majority within an election timeout steps down, and followers that heard
 * from a leader recently ignore vote requests (handled in core.c).
 */
#include <string.h>

#include "raft/impl.h"

void raft_become_follower(struct raft_core *c, uint64_t term, uint64_t leader)
{
	bool was_leader = c->state == RAFT_LEADER;

	if (term > c->term) {
		c->term = term;
		c->vote = 0;
		c->leader_commit = 0; /* until this term's leader says */
	}
	if (was_leader)
		raft_reads_fail_all(c, KVFS_ENOTLEADER);
	if (c->leader != leader || c->state != RAFT_FOLLOWER)
		raft_fwd_fail(c, false, KVFS_ENOTLEADER);
	c->state = RAFT_FOLLOWER;
	c->leader = leader;
	c->transferee = 0;
	c->election_elapsed = 0;
	c->heartbeat_elapsed = 0;
	raft_reset_randomized_timeout(c);
	raft_rtrace(c, RAFT_TRACE_INFO, "become follower leader=%llu", (unsigned long long)leader);
}

static void become_leader(struct raft_core *c)
{
	c->state = RAFT_LEADER;
	c->leader = c->id;
	c->transferee = 0;
	c->election_elapsed = 0;
	c->heartbeat_elapsed = 0;
	c->read_seq = 0;
	c->durable_sent = 0;
	raft_progress_reset_all(c);
	/* §8: a leader commits a blank no-op entry at the start of its term. */
	if (raft_log_append(&c->log, c->term, RAFT_ENTRY_EMPTY, NULL, 0) != 0) {
		raft_become_follower(c, c->term, 0); /* out of memory: let another lead */
		return;
	}
	c->term_start = raft_log_last_index(&c->log);
	c->uncommitted = 0;
	for (uint64_t i = c->commit + 1; i <= c->term_start; i++)
		c->uncommitted += raft_log_get(&c->log, i)->len;
	raft_rtrace(c, RAFT_TRACE_INFO, "become leader last=%llu",
		    (unsigned long long)c->term_start);
	raft_bcast_append(c);
	if (raft_maybe_commit(c))
		raft_bcast_append(c);
}

static void record_vote(struct raft_core *c, uint64_t from, bool granted)
{
	for (unsigned i = 0; i < c->n_votes; i++)
		if (c->votes_from[i] == from)
			return;
	if (c->n_votes < RAFT_MAX_SERVERS) {
		c->votes_from[c->n_votes] = from;
		c->votes_granted[c->n_votes] = granted;
		c->n_votes++;
	}
}

/* Returns 1 won, -1 lost, 0 pending. Only voters of the configuration count. */
static int tally(const struct raft_core *c)
{
	unsigned yes = 0, no = 0, q = raft_quorum(c);
	for (unsigned i = 0; i < c->n_votes; i++) {
		if (!raft_is_voter(c, c->votes_from[i]))
			continue;
		if (c->votes_granted[i])
			yes++;
		else
			no++;
	}
	if (yes >= q)
		return 1;
	if (no >= q)
		return -1;
	return 0;
}

void raft_campaign(struct raft_core *c, bool pre, bool transfer)
{
	uint64_t term;

	if (c->state == RAFT_LEADER)
		raft_reads_fail_all(c, KVFS_ENOTLEADER);
	raft_fwd_fail(c, true, KVFS_ENOTLEADER);
	c->n_votes = 0;
	c->leader = 0;
	c->leader_commit = 0;
	c->transferee = 0;
	c->election_elapsed = 0;
	raft_reset_randomized_timeout(c);
	if (pre) {
		c->state = RAFT_PRECANDIDATE;
		term = c->term + 1;
	} else {
		c->state = RAFT_CANDIDATE;
		c->term++;
		c->vote = c->id;
		term = c->term;
	}
	raft_rtrace(c, RAFT_TRACE_INFO, "campaign%s%s for t%llu", pre ? " (pre-vote)" : "",
		    transfer ? " (transfer)" : "", (unsigned long long)term);
	record_vote(c, c->id, true);
	if (tally(c) == 1) {
		if (pre)
			raft_campaign(c, false, transfer);
		else
			become_leader(c);
		return;
	}
	for (unsigned i = 0; i < c->conf.n; i++) {
		const struct raft_server *s = &c->conf.servers[i];
		if (s->id == c->id || s->role != RAFT_VOTER)
			continue;
		/* Sent after the persist of our new term and self-vote. */
		struct raft_msg *m =
		    raft_send_msg(c, false, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, s->id);
		m->term = term;
		m->index = raft_log_last_index(&c->log);
		m->log_term = raft_log_last_term(&c->log);
		m->transfer = transfer;
	}
}

void raft_tick_election(struct raft_core *c)
{
	c->election_elapsed++;
	raft_fwd_tick(c);
	if (c->install_pending)
		return;
	if (c->election_elapsed >= c->randomized_timeout && raft_is_voter(c, c->id)) {
		raft_rtrace(c, RAFT_TRACE_INFO, "election timeout (%u ticks)", c->election_elapsed);
		raft_campaign(c, c->cfg.pre_vote, false);
	}
}

/* §5.4.1: the voter denies its vote if its own log is more up-to-date. */
static bool log_ok(const struct raft_core *c, const struct raft_msg *m)
{
	uint64_t lt = raft_log_last_term(&c->log);
	return m->log_term > lt || (m->log_term == lt && m->index >= raft_log_last_index(&c->log));
}

int raft_step_vote_request(struct raft_core *c, const struct raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE;
	/* Figure 2, RequestVote: if votedFor is null or candidateId, and the
	 * candidate's log is at least as up-to-date as receiver's log, grant. */
	bool can =
	    c->vote == m->from || (c->vote == 0 && c->leader == 0) || (pre && m->term > c->term);
	bool grant = can && log_ok(c, m);
	struct raft_msg *r =
	    raft_send_msg(c, false, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);

	r->reject = !grant;
	if (grant && pre)
		r->term = m->term;
	if (grant && !pre) {
		c->vote = m->from;
		c->election_elapsed = 0;
	}
	raft_rtrace(c, RAFT_TRACE_INFO, "%s %s to %llu (their last %llu/%llu, ours %llu/%llu)",
		    grant ? "grant" : "reject", pre ? "pre-vote" : "vote",
		    (unsigned long long)m->from, (unsigned long long)m->index,
		    (unsigned long long)m->log_term,
		    (unsigned long long)raft_log_last_index(&c->log),
		    (unsigned long long)raft_log_last_term(&c->log));
	return 0;
}

void raft_step_vote_response(struct raft_core *c, const struct raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
	if ((pre && c->state != RAFT_PRECANDIDATE) || (!pre && c->state != RAFT_CANDIDATE))
		return;
	record_vote(c, m->from, !m->reject);
	int r = tally(c);
	if (r == 1) {
		if (pre)
			raft_campaign(c, false, false);
		else
			become_leader(c);
	} else if (r == -1) {
		raft_rtrace(c, RAFT_TRACE_INFO, "lost %s", pre ? "pre-vote" : "election");
		raft_become_follower(c, c->term, 0);
	}
}
