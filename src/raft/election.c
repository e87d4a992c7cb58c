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

void become_follower(struct raft_core *c, uint64_t term, uint64_t leader)
{
	bool was_leader = c->state == RAFT_LEADER;

	if (term > c->term) {
		c->term = term;
		c->vote = 0;
	}
	if (was_leader)
		reads_fail_all(c, KVFS_ENOTLEADER);
	if (c->leader != leader || c->state != RAFT_FOLLOWER)
		fwd_fail(c, false, KVFS_ENOTLEADER);
	c->state = RAFT_FOLLOWER;
	c->leader = leader;
	c->transferee = 0;
	c->election_elapsed = 0;
	c->heartbeat_elapsed = 0;
	reset_randomized_timeout(c);
	rtrace(c, RAFT_TRACE_INFO, "become follower leader=%llu", (unsigned long long)leader);
}

static void become_leader(struct raft_core *c)
{
	c->state = RAFT_LEADER;
	c->leader = c->id;
	c->transferee = 0;
	c->election_elapsed = 0;
	c->heartbeat_elapsed = 0;
	c->read_seq = 0;
	progress_reset_all(c);
	/* §8: a leader commits a blank no-op entry at the start of its term. */
	if (log_append(&c->log, c->term, RAFT_ENTRY_EMPTY, NULL, 0) != 0) {
		become_follower(c, c->term, 0); /* out of memory: let another lead */
		return;
	}
	c->term_start = log_last_index(&c->log);
	rtrace(c, RAFT_TRACE_INFO, "become leader last=%llu", (unsigned long long)c->term_start);
	bcast_append(c);
	if (maybe_commit(c))
		bcast_append(c);
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
	unsigned yes = 0, no = 0, q = quorum(c);
	for (unsigned i = 0; i < c->n_votes; i++) {
		if (!is_voter(c, c->votes_from[i]))
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

void campaign(struct raft_core *c, bool pre, bool transfer)
{
	uint64_t term;

	if (c->state == RAFT_LEADER)
		reads_fail_all(c, KVFS_ENOTLEADER);
	fwd_fail(c, true, KVFS_ENOTLEADER);
	c->n_votes = 0;
	c->leader = 0;
	c->transferee = 0;
	c->election_elapsed = 0;
	reset_randomized_timeout(c);
	if (pre) {
		c->state = RAFT_PRECANDIDATE;
		term = c->term + 1;
	} else {
		c->state = RAFT_CANDIDATE;
		c->term++;
		c->vote = c->id;
		term = c->term;
	}
	rtrace(c, RAFT_TRACE_INFO, "campaign%s%s for t%llu", pre ? " (pre-vote)" : "",
	       transfer ? " (transfer)" : "", (unsigned long long)term);
	record_vote(c, c->id, true);
	if (tally(c) == 1) {
		if (pre)
			campaign(c, false, transfer);
		else
			become_leader(c);
		return;
	}
	for (unsigned i = 0; i < c->conf.n; i++) {
		const struct raft_server *s = &c->conf.servers[i];
		if (s->id == c->id || s->role != RAFT_VOTER)
			continue;
		/* Sent after the persist of our new term and self-vote. */
		struct raft_msg *m = send_msg(c, false, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, s->id);
		m->term = term;
		m->index = log_last_index(&c->log);
		m->log_term = log_last_term(&c->log);
		m->transfer = transfer;
	}
}

void tick_election(struct raft_core *c)
{
	c->election_elapsed++;
	fwd_tick(c);
	if (c->install_pending)
		return;
	if (c->election_elapsed >= c->randomized_timeout && is_voter(c, c->id)) {
		rtrace(c, RAFT_TRACE_INFO, "election timeout (%u ticks)", c->election_elapsed);
		campaign(c, c->cfg.pre_vote, false);
	}
}

/* §5.4.1: the voter denies its vote if its own log is more up-to-date. */
static bool log_ok(const struct raft_core *c, const struct raft_msg *m)
{
	uint64_t lt = log_last_term(&c->log);
	return m->log_term > lt || (m->log_term == lt && m->index >= log_last_index(&c->log));
}

int step_vote_request(struct raft_core *c, const struct raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE;
	/* Figure 2, RequestVote: if votedFor is null or candidateId, and the
	 * candidate's log is at least as up-to-date as receiver's log, grant. */
	bool can = c->vote == m->from || (c->vote == 0 && c->leader == 0) ||
		   (pre && m->term > c->term);
	bool grant = can && log_ok(c, m);
	struct raft_msg *r = send_msg(c, false, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP,
				      m->from);

	r->reject = !grant;
	if (grant && pre)
		r->term = m->term;
	if (grant && !pre) {
		c->vote = m->from;
		c->election_elapsed = 0;
	}
	rtrace(c, RAFT_TRACE_INFO, "%s %s to %llu (their last %llu/%llu, ours %llu/%llu)",
	       grant ? "grant" : "reject", pre ? "pre-vote" : "vote",
	       (unsigned long long)m->from, (unsigned long long)m->index,
	       (unsigned long long)m->log_term, (unsigned long long)log_last_index(&c->log),
	       (unsigned long long)log_last_term(&c->log));
	return 0;
}

void step_vote_response(struct raft_core *c, const struct raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
	if ((pre && c->state != RAFT_PRECANDIDATE) || (!pre && c->state != RAFT_CANDIDATE))
		return;
	record_vote(c, m->from, !m->reject);
	int r = tally(c);
	if (r == 1) {
		if (pre)
			campaign(c, false, false);
		else
			become_leader(c);
	} else if (r == -1) {
		rtrace(c, RAFT_TRACE_INFO, "lost %s", pre ? "pre-vote" : "election");
		become_follower(c, c->term, 0);
	}
}
