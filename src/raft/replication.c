/*
 * Leader-side log replication (Raft §5.3, thesis §3.5 and §10.2).
 *
 * Each follower has a progress record in one of three states: PROBE (we do
 * not know where its log matches ours: one AppendEntries at a time, backing
 * off with the conflict hint of its rejection), REPLICATE (it matches up to
 * match: stream batches optimistically, at most max_inflight unanswered) and
 * SNAPSHOT (its next entry was compacted away: send InstallSnapshot chunks,
 * snapshot.c). Batches are bounded by entries and bytes.
 *
 * Commit (§5.4.2, Figure 8): the leader advances commitIndex to the highest
 * N replicated on a majority *only if log[N].term == currentTerm*; earlier
 * entries commit indirectly. The leader's own entries count only once
 * persisted (thesis §10.2.1), although it sends them before its fsync.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/impl.h"

struct progress *raft_progress_get(struct raft_core *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n_prs; i++)
		if (c->prs[i].id == id)
			return &c->prs[i];
	return NULL;
}

static void progress_init(struct raft_core *c, struct progress *pr, uint64_t id)
{
	memset(pr, 0, sizeof(*pr));
	pr->id = id;
	pr->next = raft_log_last_index(&c->log) + 1;
	pr->state = PR_PROBE;
	pr->recent_active = true;
}

/* Makes the progress table list exactly the other servers of c->conf,
 * keeping what is known about servers that stay. */
void raft_progress_sync_conf(struct raft_core *c)
{
	struct progress old[RAFT_MAX_SERVERS + 2];
	unsigned n_old = c->n_prs;

	memcpy(old, c->prs, sizeof(old[0]) * n_old);
	c->n_prs = 0;
	for (unsigned i = 0; i < c->conf.n; i++) {
		const struct raft_server *s = &c->conf.servers[i];
		if (s->id == c->id)
			continue;
		struct progress *pr = &c->prs[c->n_prs++];
		unsigned j;
		for (j = 0; j < n_old; j++)
			if (old[j].id == s->id)
				break;
		/* A server removed and added again before it left (within two
		 * election timeouts) starts afresh: it may be a new machine or
		 * a wiped one under the old id, and its old match would make
		 * this leader send from there and count it for entries it no
		 * longer has. */
		if (j < n_old && !old[j].leaving)
			*pr = old[j];
		else
			progress_init(c, pr, s->id);
		pr->voter = s->role == RAFT_VOTER;
		pr->leaving = false;
	}
	/* A removed server keeps receiving the log until it has the entry
	 * that removes it (or for two election timeouts): otherwise it would
	 * never learn of its removal and would campaign in its old
	 * configuration. It never counts towards a quorum. */
	for (unsigned j = 0; j < n_old && c->n_prs < RAFT_MAX_SERVERS + 2; j++) {
		if (old[j].id == c->id || raft_conf_find(&c->conf, old[j].id))
			continue;
		struct progress *pr = &c->prs[c->n_prs++];
		*pr = old[j];
		if (!pr->leaving)
			pr->leaving_ticks = 0;
		pr->leaving = true;
		pr->voter = false;
	}
}

void raft_progress_drop_leavers(struct raft_core *c)
{
	unsigned k = 0;
	for (unsigned i = 0; i < c->n_prs; i++) {
		struct progress *pr = &c->prs[i];
		if (pr->leaving && (pr->match >= c->conf_index ||
				    pr->leaving_ticks >= 2 * c->cfg.election_ticks)) {
			raft_rtrace(c, RAFT_TRACE_INFO, "stop replicating to removed server %llu",
				    (unsigned long long)pr->id);
			continue;
		}
		c->prs[k++] = *pr;
	}
	c->n_prs = k;
}

void raft_progress_reset_all(struct raft_core *c)
{
	c->n_prs = 0;
	raft_progress_sync_conf(c);
	for (unsigned i = 0; i < c->n_prs; i++) {
		progress_init(c, &c->prs[i], c->prs[i].id);
		c->prs[i].voter = raft_is_voter(c, c->prs[i].id);
	}
}

static void become_probe(struct progress *pr)
{
	pr->state = PR_PROBE;
	pr->probe_sent = false;
	pr->in_count = 0;
	pr->in_head = 0;
}

static void become_replicate(struct progress *pr)
{
	pr->state = PR_REPLICATE;
	pr->next = pr->match + 1;
	pr->in_count = 0;
	pr->in_head = 0;
}

static void inflight_add(struct progress *pr, uint64_t last)
{
	pr->inflight[(pr->in_head + pr->in_count) % RAFT_INFLIGHT_CAP] = last;
	pr->in_count++;
}

static void inflight_free_to(struct progress *pr, uint64_t index)
{
	while (pr->in_count && pr->inflight[pr->in_head] <= index) {
		pr->in_head = (pr->in_head + 1) % RAFT_INFLIGHT_CAP;
		pr->in_count--;
	}
}

/* Sends the next AppendEntries to pr if its state allows. Returns true if a
 * message was queued. */
bool raft_send_append(struct raft_core *c, struct progress *pr, bool allow_empty)
{
	uint64_t last = raft_log_last_index(&c->log);
	uint64_t prev, n = 0;
	size_t bytes = 0;

	if (pr->state == PR_SNAPSHOT)
		return false;
	if (pr->state == PR_PROBE && pr->probe_sent)
		return false;
	if (pr->state == PR_REPLICATE && pr->in_count >= c->cfg.max_inflight)
		return false;
	prev = pr->next - 1;
	if (prev < c->log.offset) {
		raft_send_snapshot(c, pr);
		return true;
	}
	while (pr->next + n <= last && n < c->cfg.max_batch_entries) {
		const struct raft_entry *e = raft_log_get(&c->log, pr->next + n);
		if (n > 0 && bytes + e->len > c->cfg.max_batch_bytes)
			break;
		bytes += e->len;
		n++;
	}
	if (n == 0 && !allow_empty)
		return false;
	/* Thesis §10.2.1: may leave before the leader's own persist. */
	struct out_msg *o = raft_send_msg_entries(c, true, RAFT_MSG_APPEND, pr->id);
	o->m.index = prev;
	o->m.log_term = raft_log_term(&c->log, prev);
	o->m.commit = c->commit;
	/* What the follower will take: no more than the append's last entry,
	 * and only where it accepts appends (a probe may be refused). */
	if (pr->state == PR_REPLICATE) {
		uint64_t taken = c->commit < prev + n ? c->commit : prev + n;
		if (taken > pr->commit_sent)
			pr->commit_sent = taken;
	}
	o->m.n_entries = (size_t)n;
	if (n) {
		o->lo = pr->next;
		o->last_term = raft_log_term(&c->log, pr->next + n - 1);
	}
	raft_rtrace(c, RAFT_TRACE_DEBUG, "send append to %llu prev=%llu/%llu n=%llu commit=%llu",
		    (unsigned long long)pr->id, (unsigned long long)prev,
		    (unsigned long long)o->m.log_term, (unsigned long long)n,
		    (unsigned long long)c->commit);
	if (pr->state == PR_REPLICATE) {
		if (n) {
			pr->next += n;
			inflight_add(pr, pr->next - 1);
		}
	} else {
		pr->probe_sent = true;
	}
	return true;
}

void raft_bcast_append(struct raft_core *c)
{
	for (unsigned i = 0; i < c->n_prs; i++)
		raft_send_append(c, &c->prs[i], true);
}

/* After the commit index moved: tells the followers, except a voter that
 * commits as far by itself (COMMIT INFERENCE, raft.h) and has no entries to
 * receive. It was sent RAFT_MSG_DURABLE for an index at least the commit, of
 * this term, and a commit index covering the latest membership (its
 * inference waits for that); with at most three voters, the leader one of
 * them. The commit-only appends were a third of a leader's messages with
 * one client writing, and took the CPU the next write needed. Should the
 * follower not infer after all (a lost DURABLE or append, a restart), the
 * next heartbeat carries the commit index, and it infers from there on. */
void raft_bcast_commit(struct raft_core *c)
{
	uint64_t last = raft_log_last_index(&c->log);
	bool inferred = raft_quorum(c) <= 2 && raft_is_voter(c, c->id) &&
			raft_log_term(&c->log, c->commit) == c->term;
	for (unsigned i = 0; i < c->n_prs; i++) {
		struct progress *pr = &c->prs[i];
		if (inferred && pr->voter && pr->state == PR_REPLICATE && pr->next > last &&
		    pr->durable_sent >= c->commit && pr->commit_sent >= c->conf_index)
			continue;
		raft_send_append(c, pr, true);
	}
}

void raft_bcast_heartbeat(struct raft_core *c)
{
	for (unsigned i = 0; i < c->n_prs; i++) {
		struct progress *pr = &c->prs[i];
		struct raft_msg *m = raft_send_msg(c, true, RAFT_MSG_HEARTBEAT, pr->id);
		/* Only what the follower is known to hold may be committed there. */
		m->commit = pr->match < c->commit ? pr->match : c->commit;
		if (m->commit > pr->commit_sent)
			pr->commit_sent = m->commit;
		/* How far the cluster is (raft_status().leader_commit), once
		 * the commit index covers what earlier leaders acknowledged. */
		m->index = c->commit >= c->term_start ? c->commit : 0;
		m->read_seq = c->read_seq;
	}
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* COMMIT INFERENCE (raft.h): tells each voter that has not acknowledged
 * everything we just persisted how far our log is durable, so that it can
 * commit without waiting for our commit index. Only useful (and only sent)
 * where a follower and the leader make a quorum, and when the persisted
 * entry is of our term. */
void raft_bcast_durable(struct raft_core *c)
{
	uint64_t own = c->persisted < raft_log_last_index(&c->log) ? c->persisted
								   : raft_log_last_index(&c->log);
#if RAFT_PLANT_BUG != 6
	if (raft_quorum(c) > 2)
		return;
#endif
	if (own <= c->commit || raft_log_term(&c->log, own) != c->term)
		return;
	for (unsigned i = 0; i < c->n_prs; i++) {
		struct progress *pr = &c->prs[i];
		if (!pr->voter || pr->state != PR_REPLICATE || pr->match >= own)
			continue;
		raft_send_msg(c, true, RAFT_MSG_DURABLE, pr->id)->index = own;
		c->durable_sent = own;
		pr->durable_sent = own;
	}
}

/* Advances the commit index if a majority of voters hold an entry of the
 * current term. Returns true if it moved. */
bool raft_maybe_commit(struct raft_core *c)
{
	uint64_t m[RAFT_MAX_SERVERS];
	unsigned n = 0, q = raft_quorum(c);
	uint64_t own = c->persisted < raft_log_last_index(&c->log) ? c->persisted
								   : raft_log_last_index(&c->log);

	if (raft_is_voter(c, c->id))
		m[n++] = own;
	for (unsigned i = 0; i < c->n_prs; i++)
		if (c->prs[i].voter)
			m[n++] = c->prs[i].match;
	if (n < q)
		return false;
	qsort(m, n, sizeof(m[0]), cmp_desc);
	uint64_t idx = m[q - 1];
	if (idx <= c->commit)
		return false;
#if RAFT_PLANT_BUG == 3
	/* BUG: commits entries of earlier terms by counting (Figure 8). */
	if (raft_log_term(&c->log, idx) == 0)
		return false;
	if (raft_log_term(&c->log, idx) != c->term)
		raft_rtrace(c, RAFT_TRACE_INFO, "commit %llu of an earlier term by counting",
			    (unsigned long long)idx);
#else
	if (raft_log_term(&c->log, idx) != c->term)
		return false;
#endif
	bool first = c->commit < c->term_start;
	for (uint64_t i = c->commit + 1; i <= idx; i++) {
		size_t len = raft_log_get(&c->log, i)->len;
		c->uncommitted = c->uncommitted > len ? c->uncommitted - len : 0;
	}
	c->commit = idx;
	raft_rtrace(c, RAFT_TRACE_DEBUG, "commit %llu", (unsigned long long)idx);
	if (first && c->commit >= c->term_start)
		raft_reads_on_commit(c);
	/* Thesis §4.2.2: a leader removed by a committed configuration steps
	 * down once that configuration is committed. */
	if (!raft_is_voter(c, c->id) && c->conf_index <= c->commit) {
		raft_rtrace(c, RAFT_TRACE_INFO, "removed from the configuration: step down");
		raft_bcast_append(c); /* let followers learn the commit first */
		raft_become_follower(c, c->term, 0);
		return false;
	}
	return true;
}

void raft_send_timeout_now(struct raft_core *c, uint64_t to)
{
	raft_rtrace(c, RAFT_TRACE_INFO, "transfer: timeout-now to %llu", (unsigned long long)to);
	raft_send_msg(c, true, RAFT_MSG_TIMEOUT_NOW, to);
}

void raft_leader_tick(struct raft_core *c)
{
	c->heartbeat_elapsed++;
	c->election_elapsed++;
	if (c->election_elapsed >= c->cfg.election_ticks) {
		c->election_elapsed = 0;
		if (c->cfg.check_quorum) {
			unsigned active = raft_is_voter(c, c->id) ? 1 : 0;
			for (unsigned i = 0; i < c->n_prs; i++) {
				if (c->prs[i].voter && c->prs[i].recent_active)
					active++;
				c->prs[i].recent_active = false;
			}
			if (active < raft_quorum(c)) {
				raft_rtrace(c, RAFT_TRACE_INFO,
					    "check-quorum: heard from %u of %u voters, step down",
					    active, raft_conf_voters(&c->conf));
				raft_become_follower(c, c->term, 0);
				return;
			}
		}
		if (c->transferee) {
			raft_rtrace(c, RAFT_TRACE_INFO, "transfer to %llu abandoned",
				    (unsigned long long)c->transferee);
			c->transferee = 0;
		}
	}
	for (unsigned i = 0; i < c->n_prs; i++) {
		struct progress *pr = &c->prs[i];
		if (pr->state == PR_SNAPSHOT && ++pr->snap_idle >= c->cfg.election_ticks) {
			pr->snap_idle = 0;
			raft_send_snapshot(c, pr); /* resend the unanswered chunk */
		}
	}
	if (c->heartbeat_elapsed >= c->cfg.heartbeat_ticks) {
		c->heartbeat_elapsed = 0;
		raft_bcast_heartbeat(c);
	}
	for (unsigned i = 0; i < c->n_prs; i++)
		c->prs[i].leaving_ticks += c->prs[i].leaving;
	raft_progress_drop_leavers(c);
}

void raft_step_append_response(struct raft_core *c, const struct raft_msg *m)
{
	struct progress *pr = raft_progress_get(c, m->from);
	if (!pr)
		return;
	pr->recent_active = true;
	if (pr->state == PR_SNAPSHOT)
		return;
	if (m->reject) {
		/* Stale rejections (of an append we already moved past) are
		 * ignored, as etcd's maybeDecrTo does. */
		if (pr->state == PR_REPLICATE && m->index <= pr->match)
			return;
		if (pr->state == PR_PROBE && m->index != pr->next - 1)
			return;
		/* A probe at what it acknowledged, rejected: either a late
		 * copy of a rejection from before it caught up, or it lost
		 * entries (a wiped data directory). The two look alike here,
		 * and probing from match + 1 again would send this same probe
		 * at every answer; a lost log is told apart by its heartbeat
		 * answer within a round (raft_step_heartbeat_response), which
		 * also sends the probe again if this one was lost. */
		if (m->index <= pr->match)
			return;
		uint64_t next;
		if (m->hint_term) {
			/* Find our last entry of the conflicting term. */
			uint64_t i = m->index < raft_log_last_index(&c->log)
					 ? m->index
					 : raft_log_last_index(&c->log);
			while (i > c->log.offset && raft_log_term(&c->log, i) > m->hint_term)
				i--;
			if (i > c->log.offset && raft_log_term(&c->log, i) == m->hint_term)
				next = i + 1;
			else
				next = m->hint_index;
		} else {
			next = m->hint_index;
		}
		if (next > m->index)
			next = m->index;
		if (next < pr->match + 1)
			next = pr->match + 1;
		if (next < 1)
			next = 1;
		raft_rtrace(c, RAFT_TRACE_DEBUG,
			    "append to %llu rejected at %llu, hint %llu/%llu: next %llu",
			    (unsigned long long)m->from, (unsigned long long)m->index,
			    (unsigned long long)m->hint_index, (unsigned long long)m->hint_term,
			    (unsigned long long)next);
		pr->next = next;
		become_probe(pr);
		raft_send_append(c, pr, true);
		return;
	}
	if (m->index > pr->match) {
		pr->match = m->index;
		if (pr->next <= pr->match)
			pr->next = pr->match + 1;
		if (pr->state == PR_PROBE)
			become_replicate(pr);
		else
			inflight_free_to(pr, m->index);
		if (raft_maybe_commit(c))
			raft_bcast_commit(c);
		if (c->state != RAFT_LEADER)
			return;
		if (c->transferee == pr->id && pr->match == raft_log_last_index(&c->log))
			raft_send_timeout_now(c, pr->id);
	} else if (pr->state == PR_PROBE) {
		pr->probe_sent = false;
	}
	while (raft_send_append(c, pr, false))
		;
	if (pr->leaving)
		raft_progress_drop_leavers(c);
}

void raft_step_heartbeat_response(struct raft_core *c, const struct raft_msg *m)
{
	struct progress *pr = raft_progress_get(c, m->from);
	if (!pr)
		return;
	pr->recent_active = true;
	pr->probe_sent = false;
	if (m->read_seq > pr->read_acked) {
		pr->read_acked = m->read_seq;
		raft_reads_check(c);
	}
	if (m->reject && m->index < pr->match && pr->state != PR_SNAPSHOT) {
		/* It lost entries it had acknowledged (a wiped data
		 * directory): probe from what it says it has. Its match is
		 * unknown until a probe succeeds (what is left of its log may
		 * not be ours), so it is committed nothing meanwhile. */
		raft_rtrace(c, RAFT_TRACE_INFO, "%llu lost its log past %llu (had %llu): probing",
			    (unsigned long long)pr->id, (unsigned long long)m->index,
			    (unsigned long long)pr->match);
		pr->match = 0;
		pr->next = m->index + 1;
		pr->commit_sent = 0;
		pr->durable_sent = 0;
		become_probe(pr);
	}
	if (pr->match < raft_log_last_index(&c->log) && pr->match == pr->hb_match &&
	    pr->state == PR_REPLICATE) {
		/* No progress over a whole heartbeat round with entries
		 * outstanding: appends were lost. Probe again from match. */
		pr->next = pr->match + 1;
		become_probe(pr);
	}
	pr->hb_match = pr->match;
	/* Behind: send what it lacks, or probe again. A probe is empty when
	 * next is past the log (a member just added, whose first probe rode
	 * with the configuration entry): if that one was lost, nothing else
	 * would be sent to it until the next write. */
	if (pr->match < raft_log_last_index(&c->log))
		raft_send_append(c, pr, pr->state == PR_PROBE);
}
