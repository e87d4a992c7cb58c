/*
 * ReadIndex (thesis §6.4): linearizable reads without writing to the log.
 *   1. The leader records its commit index as the read index (once it has
 *      committed an entry of its own term, so that index is up to date), or
 *      the highest index it announced as durable, if higher: a follower may
 *      already have committed and acknowledged a write up to there (COMMIT
 *      INFERENCE in raft.h), and a read that comes after must see it.
 *   2. It confirms it is still leader with a heartbeat round: every read
 *      received since the previous record shares one round (seq), so a burst
 *      of reads costs one heartbeat per follower.
 *   3. Once a majority echoed a seq, all reads of that round (and earlier)
 *      are safe to serve once the state machine applied the read index.
 * Followers forward the request to the leader (RAFT_MSG_READ_INDEX) and get
 * the index back; every accepted ctx comes back to the driver exactly once,
 * as a result or as a failure (leadership lost, leader unknown, timeout), so
 * no client waits forever.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/impl.h"

uint64_t raft_read_floor(const struct raft_core *c)
{
#if RAFT_PLANT_BUG == 7
	return c->commit; /* BUG: misses writes followers committed by inference */
#endif
	return c->durable_sent > c->commit ? c->durable_sent : c->commit;
}

static void deliver(struct raft_core *c, const struct pending_read *r, int status)
{
	if (r->from == c->id) {
		raft_push_read_result(c, r->ctx, r->index, status);
		return;
	}
	struct raft_msg *m = raft_send_msg(c, true, RAFT_MSG_READ_INDEX_RESP, r->from);
	m->ctx = r->ctx;
	m->index = r->index;
	m->reject = status != 0;
}

int raft_leader_read(struct raft_core *c, uint64_t ctx, uint64_t from)
{
	struct pending_read r = {.ctx = ctx, .from = from, .index = 0, .seq = 0};
	bool ready_term = c->commit >= c->term_start;

	if (ready_term)
		r.index = raft_read_floor(c);
#if RAFT_PLANT_BUG == 5
	/* BUG: answers at once, without confirming leadership. */
	r.index = c->commit;
	deliver(c, &r, 0);
	return 0;
#endif
	if (ready_term && raft_conf_voters(&c->conf) == 1 && raft_is_voter(c, c->id)) {
		deliver(c, &r, 0);
		return 0;
	}
	if (c->n_reads == c->cap_reads) {
		size_t cap = c->cap_reads ? c->cap_reads * 2 : 16;
		struct pending_read *v = realloc(c->reads, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->reads = v;
		c->cap_reads = cap;
	}
	c->reads[c->n_reads++] = r;
	return 0;
}

/* The leader's first commit in its term: reads waiting for it get the index. */
void raft_reads_on_commit(struct raft_core *c)
{
	for (size_t i = 0; i < c->n_reads; i++)
		if (!c->reads[i].index)
			c->reads[i].index = raft_read_floor(c);
	if (raft_conf_voters(&c->conf) == 1 && raft_is_voter(c, c->id)) {
		for (size_t i = 0; i < c->n_reads; i++)
			deliver(c, &c->reads[i], 0);
		c->n_reads = 0;
	}
}

/* Called when a record is built: one heartbeat round for all new reads. */
void raft_reads_start_round(struct raft_core *c)
{
	bool any = false;
	for (size_t i = 0; i < c->n_reads; i++) {
		if (c->reads[i].index && !c->reads[i].seq) {
			if (!any)
				c->read_seq++;
			any = true;
			c->reads[i].seq = c->read_seq;
		}
	}
	if (any) {
		raft_rtrace(c, RAFT_TRACE_DEBUG, "read round %llu",
			    (unsigned long long)c->read_seq);
		raft_bcast_heartbeat(c);
	}
}

/* Delivers every read whose round a majority of voters confirmed. */
void raft_reads_check(struct raft_core *c)
{
	size_t k = 0;
	unsigned q = raft_quorum(c);
	for (size_t i = 0; i < c->n_reads; i++) {
		struct pending_read *r = &c->reads[i];
		unsigned acks = raft_is_voter(c, c->id) ? 1 : 0;
		if (r->seq) {
			for (unsigned j = 0; j < c->n_prs; j++)
				if (c->prs[j].voter && c->prs[j].read_acked >= r->seq)
					acks++;
		}
		if (r->seq && acks >= q)
			deliver(c, r, 0);
		else
			c->reads[k++] = *r;
	}
	c->n_reads = k;
}

void raft_reads_fail_all(struct raft_core *c, int status)
{
	for (size_t i = 0; i < c->n_reads; i++)
		deliver(c, &c->reads[i], status);
	c->n_reads = 0;
}

/* Fails forwarded reads: all of them, or those sent to another leader than
 * the current one. */
void raft_fwd_fail(struct raft_core *c, bool all, int status)
{
	size_t k = 0;
	for (size_t i = 0; i < c->n_fwd; i++) {
		if (all || c->fwd[i].leader != c->leader)
			raft_push_read_result(c, c->fwd[i].ctx, 0, status);
		else
			c->fwd[k++] = c->fwd[i];
	}
	c->n_fwd = k;
}

void raft_fwd_tick(struct raft_core *c)
{
	size_t k = 0;
	for (size_t i = 0; i < c->n_fwd; i++) {
		if (++c->fwd[i].ticks >= 2 * c->cfg.election_ticks)
			raft_push_read_result(c, c->fwd[i].ctx, 0, KVFS_ETIMEDOUT);
		else
			c->fwd[k++] = c->fwd[i];
	}
	c->n_fwd = k;
}

int raft_read_index(struct raft_core *c, uint64_t ctx)
{
	assert(!c->in_ready);
	if (c->state == RAFT_LEADER)
		return raft_leader_read(c, ctx, c->id);
	if (!c->leader)
		return KVFS_ENOLEADER;
	if (c->n_fwd == c->cap_fwd) {
		size_t cap = c->cap_fwd ? c->cap_fwd * 2 : 16;
		struct fwd_read *v = realloc(c->fwd, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->fwd = v;
		c->cap_fwd = cap;
	}
	c->fwd[c->n_fwd++] = (struct fwd_read){ctx, c->leader, 0};
	raft_send_msg(c, true, RAFT_MSG_READ_INDEX, c->leader)->ctx = ctx;
	return 0;
}

void raft_step_read_index(struct raft_core *c, const struct raft_msg *m)
{
	if (c->state != RAFT_LEADER) {
		struct raft_msg *r = raft_send_msg(c, true, RAFT_MSG_READ_INDEX_RESP, m->from);
		r->ctx = m->ctx;
		r->reject = 1;
		return;
	}
	if (raft_leader_read(c, m->ctx, m->from) != 0) {
		struct pending_read r = {.ctx = m->ctx, .from = m->from};
		deliver(c, &r, KVFS_EBUSY);
	}
}

void raft_step_read_index_resp(struct raft_core *c, const struct raft_msg *m)
{
	for (size_t i = 0; i < c->n_fwd; i++) {
		if (c->fwd[i].ctx != m->ctx || c->fwd[i].leader != m->from)
			continue;
		raft_push_read_result(c, m->ctx, m->index, m->reject ? KVFS_ENOTLEADER : 0);
		c->fwd[i] = c->fwd[--c->n_fwd];
		return;
	}
}
