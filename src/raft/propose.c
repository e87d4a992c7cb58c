/*
 * Client-facing leader operations: proposals, membership changes and
 * leadership transfer. Nothing is silently dropped: a non-leader refuses
 * with a leader hint, and a leader in the middle of a transfer refuses with
 * KVFS_EBUSY.
 *
 * Membership changes are single-server (thesis §4.1): a configuration entry
 * takes effect as soon as it is appended; a second change is refused until
 * the first is committed, and (thesis §4.1 erratum, raft-dev 2015) until the
 * leader has committed an entry of its own term.
 */
#include <errno.h>
#include <string.h>

#include "raft/impl.h"

static int check_leader(struct raft_core *c, uint64_t *leader_hint)
{
	if (leader_hint)
		*leader_hint = c->leader;
	if (c->state != RAFT_LEADER)
		return KVFS_ENOTLEADER;
	if (c->transferee)
		return KVFS_EBUSY;
	return 0;
}

int raft_propose_batch(struct raft_core *c, const void *const *data, const size_t *lens, size_t n,
		       uint64_t *first_index, uint64_t *term, uint64_t *leader_hint)
{
	int rv;

	assert(!c->in_ready);
	rv = check_leader(c, leader_hint);
	if (rv)
		return rv;
	if (n == 0)
		return -EINVAL;
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += lens[i];
	if (c->cfg.max_uncommitted && c->uncommitted > 0 &&
	    c->uncommitted + bytes > c->cfg.max_uncommitted) {
		raft_rtrace(c, RAFT_TRACE_DEBUG, "refuse proposal: %zu bytes uncommitted",
			    c->uncommitted);
		return KVFS_EBUSY;
	}
	uint64_t first = raft_log_last_index(&c->log) + 1;
	for (size_t i = 0; i < n; i++) {
		rv = raft_log_append(&c->log, c->term, RAFT_ENTRY_NORMAL, data[i], lens[i]);
		if (rv) {
			raft_log_truncate(&c->log, first); /* all or nothing */
			return rv;
		}
	}
	c->uncommitted += bytes;
	if (first_index)
		*first_index = first;
	if (term)
		*term = c->term;
	raft_rtrace(c, RAFT_TRACE_DEBUG, "propose %zu at %llu", n, (unsigned long long)first);
	raft_bcast_append(c);
	if (raft_maybe_commit(c))
		raft_bcast_append(c);
	return 0;
}

int raft_propose(struct raft_core *c, const void *data, size_t len, uint64_t *index, uint64_t *term,
		 uint64_t *leader_hint)
{
	return raft_propose_batch(c, &data, &len, 1, index, term, leader_hint);
}

int raft_change(struct raft_core *c, enum raft_change_kind kind, uint64_t id, const char *addr,
		uint64_t *index)
{
	struct raft_conf conf = c->conf;
	struct raft_server *s = NULL;
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	int rv, len;

	assert(!c->in_ready);
	rv = check_leader(c, NULL);
	if (rv)
		return rv;
	if (c->conf_index > c->commit || c->commit < c->term_start)
		return KVFS_EBUSY;
	if (id == 0)
		return KVFS_ECONFIG;
	for (unsigned i = 0; i < conf.n; i++)
		if (conf.servers[i].id == id)
			s = &conf.servers[i];
	switch (kind) {
	case RAFT_ADD_LEARNER:
	case RAFT_ADD_VOTER:
		if (s || conf.n == RAFT_MAX_SERVERS || !addr || strlen(addr) >= RAFT_ADDR_MAX)
			return KVFS_ECONFIG;
		s = &conf.servers[conf.n++];
		memset(s, 0, sizeof(*s));
		s->id = id;
		s->role = kind == RAFT_ADD_VOTER ? RAFT_VOTER : RAFT_LEARNER;
		strcpy(s->addr, addr);
		break;
	case RAFT_PROMOTE:
		if (!s || s->role != RAFT_LEARNER)
			return KVFS_ECONFIG;
		s->role = RAFT_VOTER;
		break;
	case RAFT_REMOVE:
		if (!s || (s->role == RAFT_VOTER && raft_conf_voters(&conf) == 1))
			return KVFS_ECONFIG;
		*s = conf.servers[--conf.n];
		break;
	default:
		return KVFS_ECONFIG;
	}
	len = raft_conf_encode(&conf, buf, sizeof(buf));
	if (len < 0)
		return KVFS_ECONFIG;
	struct raft_entry e = {
	    .term = c->term, .type = RAFT_ENTRY_CONF, .data = buf, .len = (size_t)len};
	rv = raft_append_entries_local(c, &e, 1);
	if (rv)
		return rv;
	if (index)
		*index = raft_log_last_index(&c->log);
	raft_bcast_append(c);
	if (raft_maybe_commit(c))
		raft_bcast_append(c);
	return 0;
}

int raft_transfer(struct raft_core *c, uint64_t target)
{
	assert(!c->in_ready);
	if (c->state != RAFT_LEADER)
		return KVFS_ENOTLEADER;
	if (target == 0) {
		uint64_t best = 0;
		for (unsigned i = 0; i < c->n_prs; i++) {
			if (c->prs[i].voter && (!target || c->prs[i].match > best)) {
				target = c->prs[i].id;
				best = c->prs[i].match;
			}
		}
	}
	if (target == c->id || !raft_is_voter(c, target))
		return KVFS_ECONFIG;
	struct progress *pr = raft_progress_get(c, target);
	if (NEVER(!pr))
		return KVFS_ECONFIG;
	c->transferee = target;
	c->election_elapsed = 0; /* the transfer gets one election timeout */
	raft_rtrace(c, RAFT_TRACE_INFO, "transfer leadership to %llu (match %llu of %llu)",
		    (unsigned long long)target, (unsigned long long)pr->match,
		    (unsigned long long)raft_log_last_index(&c->log));
	if (pr->match == raft_log_last_index(&c->log))
		raft_send_timeout_now(c, target);
	else
		raft_send_append(c, pr, true);
	return 0;
}
