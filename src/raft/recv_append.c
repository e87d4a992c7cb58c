/*
 * Follower side of AppendEntries and heartbeats (Figure 2, AppendEntries RPC,
 * receiver implementation):
 *   1. Reply false if term < currentTerm (core.c).
 *   2. Reply false if log doesn't contain an entry at prevLogIndex whose term
 *      matches prevLogTerm.
 *   3. If an existing entry conflicts with a new one (same index but
 *      different terms), delete the existing entry and all that follow it.
 *   4. Append any new entries not already in the log.
 *   5. If leaderCommit > commitIndex, set commitIndex =
 *      min(leaderCommit, index of last new entry).
 * A rejection carries a conflict hint (the "fast backup" of §5.3) so the
 * leader skips a whole term per round trip. The acknowledgement goes out
 * only after the appended entries are persisted (queued as a late message).
 */
#include <stdlib.h>
#include <string.h>

#include "raft/impl.h"

/* Applies a configuration entry as soon as it is appended (thesis §4.1). */
static void note_conf(struct raft_core *c, const struct raft_entry *e, uint64_t index)
{
	struct raft_conf conf;
	if (e->type != RAFT_ENTRY_CONF || raft_conf_decode(&conf, e->data, e->len) != 0)
		return;
	c->conf = conf;
	c->conf_index = index;
	c->conf_changed = true;
	raft_rtrace(c, RAFT_TRACE_INFO, "configuration at %llu: %u servers, %u voters",
		    (unsigned long long)index, conf.n, raft_conf_voters(&conf));
	if (c->state == RAFT_LEADER)
		raft_progress_sync_conf(c);
}

/* Appends copies of entries (already checked to follow the log). */
int raft_append_entries_local(struct raft_core *c, const struct raft_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rv = raft_log_append(&c->log, e[i].term, e[i].type, e[i].data, e[i].len);
		if (rv)
			return rv;
		note_conf(c, &e[i], raft_log_last_index(&c->log));
	}
	return 0;
}

static void truncate_from(struct raft_core *c, uint64_t from)
{
	assert(from > c->commit);
	raft_rtrace(c, RAFT_TRACE_INFO, "truncate conflicting suffix from %llu (last %llu)",
		    (unsigned long long)from, (unsigned long long)raft_log_last_index(&c->log));
	raft_log_truncate(&c->log, from);
	if (from <= c->persisted) {
		c->persisted = from - 1;
		if (!c->truncate_from || from < c->truncate_from)
			c->truncate_from = from;
	}
	if (c->conf_index >= from)
		raft_conf_refresh(c);
}

static void reply(struct raft_core *c, const struct raft_msg *m, bool reject, uint64_t index)
{
#if RAFT_PLANT_BUG == 1
	bool early = true; /* BUG: acknowledges entries before persisting them */
#else
	bool early = false;
#endif
	struct raft_msg *r = raft_send_msg(c, early, RAFT_MSG_APPEND_RESP, m->from);
	r->reject = reject;
	r->index = index;
	if (reject) {
		uint64_t last = raft_log_last_index(&c->log);
		if (m->index > last) {
			r->hint_index = last + 1;
			r->hint_term = 0;
		} else {
			uint64_t t = raft_log_term(&c->log, m->index);
			uint64_t i = m->index;
			while (i - 1 > c->log.offset && i - 1 > c->commit &&
			       raft_log_term(&c->log, i - 1) == t)
				i--;
			r->hint_index = i;
			r->hint_term = t;
		}
	}
}

/* raft_status().leader_commit learns idx, a commit index this term's leader
 * sent. A leader's commit index covers every write acknowledged before its
 * term only once an entry of its own term is committed (its no-op), so a
 * value not known to be past that (trusted) counts only where this node
 * holds the entry at idx and it is of the current term. */
void raft_learn_commit(struct raft_core *c, uint64_t idx, bool trusted)
{
	if (idx <= c->leader_commit)
		return;
	if (!trusted && (idx > raft_log_last_index(&c->log) || raft_log_term(&c->log, idx) != c->term))
		return;
	c->leader_commit = idx;
}

int raft_step_append(struct raft_core *c, const struct raft_msg *m)
{
	uint64_t last;

	c->leader = m->from;
	c->election_elapsed = 0;
	raft_learn_commit(c, m->commit, false); /* again below, past the new entries */
	if (c->install_pending)
		return 0; /* the leader retries after the install */
	if (m->index < c->commit) {
		reply(c, m, false, c->commit);
		return 0;
	}
	last = raft_log_last_index(&c->log);
	if (m->index > last || raft_log_term(&c->log, m->index) != m->log_term) {
		raft_rtrace(c, RAFT_TRACE_DEBUG, "reject append prev=%llu/%llu (last %llu)",
			    (unsigned long long)m->index, (unsigned long long)m->log_term,
			    (unsigned long long)last);
		reply(c, m, true, m->index);
		return 0;
	}
	size_t k = 0;
	for (; k < m->n_entries; k++) {
		const struct raft_entry *e = &m->entries[k];
		uint64_t idx = m->index + 1 + k;
		if (idx > raft_log_last_index(&c->log))
			break;
		if (raft_log_term(&c->log, idx) != e->term) {
#if RAFT_PLANT_BUG == 4
			/* BUG: replaces the conflicting entries but keeps the
			 * stale suffix beyond the new ones. */
			uint64_t old_last = raft_log_last_index(&c->log);
			uint64_t new_last = m->index + m->n_entries;
			size_t ns = old_last > new_last ? (size_t)(old_last - new_last) : 0;
			struct raft_entry *saved = calloc(ns + 1, sizeof(*saved));
			for (size_t j = 0; j < ns; j++) {
				const struct raft_entry *x =
				    raft_log_get(&c->log, new_last + 1 + j);
				saved[j] = *x;
				void *d = x->len ? malloc(x->len) : NULL;
				if (x->len)
					memcpy(d, x->data, x->len);
				saved[j].data = d;
			}
			truncate_from(c, idx);
			raft_append_entries_local(c, m->entries + k, m->n_entries - k);
			raft_append_entries_local(c, saved, ns);
			for (size_t j = 0; j < ns; j++)
				free((void *)saved[j].data);
			free(saved);
			k = m->n_entries;
#else
			truncate_from(c, idx);
#endif
			break;
		}
	}
	if (k < m->n_entries) {
		int rv = raft_append_entries_local(c, m->entries + k, m->n_entries - k);
		if (rv)
			return rv;
	}
	uint64_t last_new = m->index + m->n_entries;
	uint64_t nc = m->commit < last_new ? m->commit : last_new;
	if (nc > c->commit) {
		c->commit = nc;
		raft_rtrace(c, RAFT_TRACE_DEBUG, "commit %llu", (unsigned long long)nc);
	}
	raft_infer_commit(c); /* the commit may have just covered the membership */
	raft_learn_commit(c, m->commit, false);
	reply(c, m, false, last_new);
	return 0;
}

void raft_step_heartbeat(struct raft_core *c, const struct raft_msg *m)
{
	c->leader = m->from;
	c->election_elapsed = 0;
	/* index: the leader's commit index once its own term's first entry
	 * is committed, else 0 (and always 0 from an older leader); commit is
	 * only what this node is known to hold. */
	raft_learn_commit(c, m->index, true);
	uint64_t last = raft_log_last_index(&c->log);
	uint64_t nc = m->commit < last ? m->commit : last;
	if (nc > c->commit && !c->install_pending)
		c->commit = nc;
	/* The leader sends no commit-only append where it expects inference
	 * (raft_bcast_commit): should that be wrong (this node restarted, or
	 * lost the message that covered the membership), the heartbeat that
	 * lifts the commit over the membership lets it infer the rest. */
	raft_infer_commit(c);
	raft_learn_commit(c, m->commit, false);
	struct raft_msg *r = raft_send_msg(c, true, RAFT_MSG_HEARTBEAT_RESP, m->from);
	r->read_seq = m->read_seq;
	/* The leader commits here only what it knows this node holds: a
	 * commit past the log means entries it acknowledged are gone (its
	 * data directory was wiped). Say so, or an idle leader, believing
	 * them held, would send nothing until the next write. */
	if (m->commit > last && !c->install_pending) {
		r->reject = 1;
		r->index = last;
	}
}

/* COMMIT INFERENCE (raft.h): commits what this follower and its leader have
 * both persisted, when the two are a majority of the voters. */
void raft_infer_commit(struct raft_core *c)
{
	if (c->state != RAFT_FOLLOWER || !c->leader || c->install_pending ||
	    c->durable_from != c->leader || c->durable_term != c->term)
		return;
#if RAFT_PLANT_BUG != 6
	/* The membership must be committed as far as we know (so the leader
	 * uses it or one change beyond it), with both of us voters that make
	 * a quorum by ourselves. */
	if (c->conf_index > c->commit || raft_quorum(c) > 2 || !raft_is_voter(c, c->id) ||
	    !raft_is_voter(c, c->leader))
		return;
#endif
	uint64_t idx = raft_log_last_index(&c->log);
	if (c->persisted < idx)
		idx = c->persisted;
	if (c->durable_index < idx)
		idx = c->durable_index;
	/* Only an entry of the leader's term is known to be the leader's own
	 * (earlier ones commit with it). */
	if (idx <= c->commit || raft_log_term(&c->log, idx) != c->term)
		return;
	c->commit = idx;
	c->inferred_commits++;
	raft_rtrace(c, RAFT_TRACE_DEBUG, "commit %llu (inferred)", (unsigned long long)idx);
}

void raft_step_durable(struct raft_core *c, const struct raft_msg *m)
{
	c->leader = m->from;
	c->election_elapsed = 0;
	if (c->durable_from != m->from || c->durable_term != c->term) {
		c->durable_from = m->from;
		c->durable_term = c->term;
		c->durable_index = 0;
	}
	if (m->index > c->durable_index)
		c->durable_index = m->index;
	raft_infer_commit(c);
}
