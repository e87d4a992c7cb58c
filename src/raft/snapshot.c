/*
 * Snapshots: compaction on the driver's word, InstallSnapshot in chunks
 * (Raft §7, Figure 13), without the core ever holding snapshot data.
 *
 * Leader: a follower whose next entry was compacted away moves to SNAPSHOT
 * state; the core emits InstallSnapshot messages naming the snapshot and an
 * offset, and the driver fills the bytes. One chunk is in flight at a time;
 * the follower's answer carries the next offset it expects, so a transfer
 * resumes where it stopped (a lost chunk is resent after an election timeout
 * of silence; a restarted follower answers "resume at 0").
 *
 * Follower: chunks must arrive in order (offset 0 starts a transfer); each
 * accepted chunk is copied into the record for the driver to write, and
 * acknowledged after that write. On the last chunk the record asks the
 * driver to install; the core then waits for raft_snapshot_installed().
 * Figure 13: "If existing log entry has same index and term as snapshot's
 * last included entry, retain log entries following it and reply; discard
 * the entire log" otherwise.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/impl.h"

void raft_send_snapshot(struct raft_core *c, struct progress *pr)
{
	if (pr->state != PR_SNAPSHOT || pr->snap_index != c->snap.index) {
		pr->state = PR_SNAPSHOT;
		pr->snap_index = c->snap.index;
		pr->snap_offset = 0;
		raft_rtrace(c, RAFT_TRACE_INFO,
			    "send snapshot %llu/%llu to %llu (next %llu compacted)",
			    (unsigned long long)c->snap.index, (unsigned long long)c->snap.term,
			    (unsigned long long)pr->id, (unsigned long long)pr->next);
	}
	pr->snap_idle = 0;
	struct raft_msg *m = raft_send_msg(c, true, RAFT_MSG_SNAPSHOT, pr->id);
	m->snap_index = c->snap.index;
	m->snap_term = c->snap.term;
	m->offset = pr->snap_offset;
	/* conf_data is attached by raft_ready; data/len/done by the driver. */
}

void raft_step_snapshot_response(struct raft_core *c, const struct raft_msg *m)
{
	struct progress *pr = raft_progress_get(c, m->from);
	if (!pr)
		return;
	pr->recent_active = true;
	if (pr->state != PR_SNAPSHOT || m->snap_index != pr->snap_index)
		return;
	if (m->done && !m->reject) {
		raft_rtrace(c, RAFT_TRACE_INFO, "snapshot %llu installed on %llu",
			    (unsigned long long)m->snap_index, (unsigned long long)m->from);
		if (pr->match < m->snap_index)
			pr->match = m->snap_index;
		pr->next = pr->match + 1;
		pr->state = PR_PROBE;
		pr->probe_sent = false;
		pr->in_count = 0;
		if (raft_maybe_commit(c))
			raft_bcast_append(c);
		if (c->state == RAFT_LEADER)
			raft_send_append(c, pr, true);
		return;
	}
	if (m->snap_index != c->snap.index) {
		raft_send_snapshot(c, pr); /* we have a newer snapshot: restart */
		return;
	}
	pr->snap_offset = m->offset;
	raft_send_snapshot(c, pr);
}

static void snap_reply(struct raft_core *c, uint64_t to, uint64_t index, uint64_t offset, bool done,
		       bool reject)
{
	struct raft_msg *r = raft_send_msg(c, false, RAFT_MSG_SNAPSHOT_RESP, to);
	r->snap_index = index;
	r->offset = offset;
	r->done = done;
	r->reject = reject;
}

int raft_step_snapshot(struct raft_core *c, const struct raft_msg *m)
{
	c->leader = m->from;
	c->election_elapsed = 0;
	/* A snapshot holds committed entries only; of this term, it covers
	 * every write acknowledged before (raft_learn_commit). */
	raft_learn_commit(c, m->snap_index, m->snap_term == c->term);
	if (c->install_pending)
		return 0;
	if (m->snap_index <= c->commit) {
		/* Already have everything it covers (committed entries match). */
		snap_reply(c, m->from, m->snap_index, 0, true, false);
		return 0;
	}
	if (m->offset == 0) {
		struct raft_conf conf;
		if (raft_conf_decode(&conf, m->conf_data, m->conf_len) != 0)
			return KVFS_EPROTO;
		c->in_active = true;
		c->in_index = m->snap_index;
		c->in_term = m->snap_term;
		c->in_offset = 0;
		c->in_conf = conf;
		raft_rtrace(c, RAFT_TRACE_INFO, "receiving snapshot %llu/%llu from %llu",
			    (unsigned long long)m->snap_index, (unsigned long long)m->snap_term,
			    (unsigned long long)m->from);
	}
	if (!c->in_active || c->in_index != m->snap_index || c->in_term != m->snap_term ||
	    m->offset != c->in_offset) {
		uint64_t want = c->in_active && c->in_index == m->snap_index ? c->in_offset : 0;
		if (m->offset < want) /* a duplicate of an acknowledged chunk */
			snap_reply(c, m->from, m->snap_index, want, false, false);
		else
			snap_reply(c, m->from, m->snap_index, want, false, true);
		return 0;
	}
	if (c->n_chunks == c->cap_chunks) {
		size_t cap = c->cap_chunks ? c->cap_chunks * 2 : 8;
		struct raft_chunk *v = realloc(c->chunks, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->chunks = v;
		c->cap_chunks = cap;
	}
	void *copy = NULL;
	if (m->len) {
		copy = malloc(m->len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, m->data, m->len);
	}
	c->chunks[c->n_chunks++] =
	    (struct raft_chunk){m->snap_index, m->snap_term, m->offset, copy, m->len};
	c->in_offset += m->len;
	if (!m->done) {
		snap_reply(c, m->from, m->snap_index, c->in_offset, false, false);
		return 0;
	}
	c->in_active = false;
	c->install_pending = true;
	c->install_emit = true;
	c->install_discard = raft_log_term(&c->log, m->snap_index) != m->snap_term;
	raft_rtrace(c, RAFT_TRACE_INFO, "snapshot %llu complete (%llu bytes): install",
		    (unsigned long long)m->snap_index, (unsigned long long)c->in_offset);
	return 0;
}

int raft_snapshot_installed(struct raft_core *c, uint64_t index)
{
	assert(!c->in_ready);
	if (!c->install_pending || index != c->in_index)
		return -EINVAL;
	c->install_pending = false;
	c->snap.index = c->in_index;
	c->snap.term = c->in_term;
	c->snap.conf = c->in_conf;
	raft_conf_update_snap_buf(c);
	c->base_conf = c->in_conf;
	if (c->install_discard) {
		raft_log_reset(&c->log, c->in_index, c->in_term);
		c->persisted = c->in_index;
	} else {
		raft_log_compact(&c->log, c->in_index);
		if (c->persisted < c->in_index)
			c->persisted = c->in_index;
	}
	c->truncate_from = 0;
	if (c->commit < c->in_index)
		c->commit = c->in_index;
	c->applied = c->in_index;
	raft_conf_refresh(c);
	c->conf_changed = true;
	raft_rtrace(c, RAFT_TRACE_INFO, "snapshot %llu installed%s", (unsigned long long)index,
		    c->install_discard ? ", log discarded" : "");
	if (c->leader)
		snap_reply(c, c->leader, index, c->in_offset, true, false);
	return 0;
}

int raft_compact(struct raft_core *c, uint64_t index, uint64_t keep)
{
	assert(!c->in_ready);
	if (index > c->applied || index < c->snap.index || index < c->log.offset)
		return -EINVAL;
	if (index > c->snap.index) {
		c->snap.index = index;
		c->snap.term = raft_log_term(&c->log, index);
		raft_conf_at(c, index, &c->snap.conf);
		raft_conf_update_snap_buf(c);
	}
	uint64_t upto = index > keep ? index - keep : 0;
	if (upto > c->log.offset) {
		raft_conf_at(c, upto, &c->base_conf);
		raft_log_compact(&c->log, upto);
		raft_rtrace(c, RAFT_TRACE_INFO, "compacted up to %llu (snapshot %llu)",
			    (unsigned long long)upto, (unsigned long long)index);
	}
	return 0;
}
