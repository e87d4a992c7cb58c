/*
 * The core object: creation from persisted state, the tracer and PRNG, the
 * output queues and the Ready/Advance record (raft.h explains the contract),
 * the getters, and the dispatch of incoming messages by term (Figure 2, "All
 * Servers": if RPC request or response contains term T > currentTerm: set
 * currentTerm = T, convert to follower) plus the pre-vote and lease
 * exceptions of the thesis §9.6 and §6.4 / etcd.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/impl.h"

void raft_rtrace(struct raft_core *c, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (!c->cfg.tracer.emit || level > c->cfg.tracer.level)
		return;
	n = snprintf(line, sizeof(line), "t%llu %s ", (unsigned long long)c->term,
		     raft_state_name(c->state));
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	c->cfg.tracer.emit(c->cfg.tracer.data, c->id, level, line);
}

/* splitmix64: tiny, seedable, good enough for timeouts. */
uint64_t raft_rand_u64(struct raft_core *c)
{
	uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Raft §5.2: election timeouts chosen randomly from a fixed interval. */
void raft_reset_randomized_timeout(struct raft_core *c)
{
	c->randomized_timeout =
	    c->cfg.election_ticks + (unsigned)(raft_rand_u64(c) % c->cfg.election_ticks);
}

unsigned raft_quorum(const struct raft_core *c)
{
	return raft_conf_voters(&c->conf) / 2 + 1;
}

bool raft_is_voter(const struct raft_core *c, uint64_t id)
{
	const struct raft_server *s = raft_conf_find(&c->conf, id);
	return s && s->role == RAFT_VOTER;
}

static struct out_msg *out_push(struct out_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct out_msg *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			abort(); /* small, bounded by peers x window; treat as fatal */
		l->v = v;
		l->cap = cap;
	}
	struct out_msg *o = &l->v[l->n++];
	memset(o, 0, sizeof(*o));
	return o;
}

struct out_msg *raft_send_msg_entries(struct raft_core *c, bool early, uint8_t type, uint64_t to)
{
	struct out_msg *o = out_push(early ? &c->early : &c->late);
	o->m.type = type;
	o->m.from = c->id;
	o->m.to = to;
	o->m.term = c->term;
	return o;
}

struct raft_msg *raft_send_msg(struct raft_core *c, bool early, uint8_t type, uint64_t to)
{
	return &raft_send_msg_entries(c, early, type, to)->m;
}

int raft_push_read_result(struct raft_core *c, uint64_t ctx, uint64_t index, int status)
{
	if (c->n_out_reads == c->cap_out_reads) {
		size_t cap = c->cap_out_reads ? c->cap_out_reads * 2 : 16;
		struct raft_read *v = realloc(c->out_reads, cap * sizeof(*v));
		if (!v)
			abort();
		c->out_reads = v;
		c->cap_out_reads = cap;
	}
	c->out_reads[c->n_out_reads++] = (struct raft_read){ctx, index, status};
	return 0;
}

/* Whether every configuration entry among e[0..n) decodes. One that does
 * not (written by a later version, in a format this one cannot read) is
 * refused with its message, as an InstallSnapshot's membership is: taking
 * the entry while ignoring the change it makes would leave this server
 * counting votes and acknowledgements in a membership that no longer is. */
static bool confs_readable(struct raft_core *c, const struct raft_entry *e, size_t n,
			   uint64_t from)
{
	for (size_t i = 0; i < n; i++) {
		struct raft_conf conf;
		if (e[i].type == RAFT_ENTRY_CONF &&
		    raft_conf_decode(&conf, e[i].data, e[i].len) != 0) {
			raft_rtrace(c, RAFT_TRACE_INFO,
				    "configuration entry at %llu from %llu is in a format this "
				    "version cannot read (version byte %u): refused",
				    (unsigned long long)e[i].index, (unsigned long long)from,
				    e[i].len ? ((const uint8_t *)e[i].data)[0] : 0u);
			return false;
		}
	}
	return true;
}

int raft_create(const struct raft_config *cfg, const struct raft_init *init, struct raft_core **out)
{
	struct raft_core *c;

	if (!cfg->id || cfg->election_ticks < 2 || !cfg->heartbeat_ticks ||
	    cfg->heartbeat_ticks >= cfg->election_ticks || cfg->max_inflight > RAFT_INFLIGHT_CAP)
		return -EINVAL;
	if (init->hs.vote && !init->hs.term)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	if (!c->cfg.max_batch_entries)
		c->cfg.max_batch_entries = 64;
	if (!c->cfg.max_batch_bytes)
		c->cfg.max_batch_bytes = 1 << 20;
	if (!c->cfg.max_inflight)
		c->cfg.max_inflight = 8;
	if (!c->cfg.max_apply)
		c->cfg.max_apply = 256;
	c->id = cfg->id;
	c->rng = cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ULL);
	c->term = init->hs.term;
	c->vote = init->hs.vote;
	c->hs_saved = init->hs;
	c->snap = init->snap;
	c->base_conf = init->snap.index ? init->snap.conf : init->conf;
	if (init->snap.index == 0) {
		c->snap.term = 0;
		c->snap.conf = init->conf;
	}
	raft_log_init(&c->log, init->snap.index, init->snap.term);
	for (size_t i = 0; i < init->n_entries; i++) {
		const struct raft_entry *e = &init->entries[i];
		if (e->index != raft_log_last_index(&c->log) + 1 ||
		    e->term < raft_log_last_term(&c->log) || e->term > c->term ||
		    (e->len && !e->data) || !confs_readable(c, e, 1, c->id))
			goto err_after_alloc;
		if (raft_log_append(&c->log, e->term, e->type, e->data, e->len))
			goto err_after_alloc;
	}
	c->persisted = raft_log_last_index(&c->log);
	c->commit = c->applied = init->snap.index;
	raft_conf_update_snap_buf(c);
	c->state = RAFT_FOLLOWER;
	raft_conf_refresh(c);
	c->conf_changed = false;
	raft_reset_randomized_timeout(c);
	raft_rtrace(c, RAFT_TRACE_INFO, "start vote=%llu snap=%llu/%llu last=%llu voters=%u",
		    (unsigned long long)c->vote, (unsigned long long)c->snap.index,
		    (unsigned long long)c->snap.term,
		    (unsigned long long)raft_log_last_index(&c->log), raft_conf_voters(&c->conf));
	*out = c;
	return 0;

err_after_alloc:
	raft_log_free(&c->log);
	free(c);
	return -EINVAL;
}

void raft_destroy(struct raft_core *c)
{
	if (!c)
		return;
	raft_log_free(&c->log);
	for (size_t i = 0; i < c->n_chunks; i++)
		free((void *)c->chunks[i].data);
	free(c->chunks);
	free(c->early.v);
	free(c->early.flat);
	free(c->late.v);
	free(c->late.flat);
	free(c->reads);
	free(c->fwd);
	free(c->out_reads);
	free(c);
}

void raft_tick(struct raft_core *c)
{
	assert(!c->in_ready);
	if (c->state == RAFT_LEADER)
		raft_leader_tick(c);
	else
		raft_tick_election(c);
}

static bool from_leader(uint8_t t)
{
	return t == RAFT_MSG_APPEND || t == RAFT_MSG_HEARTBEAT || t == RAFT_MSG_SNAPSHOT ||
	       t == RAFT_MSG_DURABLE;
}

int raft_step(struct raft_core *c, const struct raft_msg *m)
{
	assert(!c->in_ready);
	if (m->to != c->id || m->from == 0 || m->from == c->id || m->type == 0 ||
	    m->type >= RAFT_MSG_TYPE_MAX || (m->n_entries && !m->entries))
		return KVFS_EPROTO;
	if (m->n_entries && !confs_readable(c, m->entries, m->n_entries, m->from))
		return KVFS_EPROTO;

	if (m->term > c->term) {
		if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
			/* Thesis §4.2.3: a server that has heard from a current
			 * leader within the minimum election timeout does not
			 * update its term or grant its vote (unless the
			 * election is a leadership transfer). */
			bool lease = c->cfg.check_quorum && c->leader != 0 &&
				     c->election_elapsed < c->cfg.election_ticks;
			if (lease && !m->transfer) {
				raft_rtrace(c, RAFT_TRACE_DEBUG,
					    "ignore %s from %llu t%llu: leader %llu is alive",
					    raft_msg_name(m->type), (unsigned long long)m->from,
					    (unsigned long long)m->term,
					    (unsigned long long)c->leader);
				return 0;
			}
		}
		if (m->type == RAFT_MSG_PREVOTE) {
			/* never changes our term */
		} else if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject) {
			/* a granted pre-vote carries the future term */
		} else {
			raft_rtrace(c, RAFT_TRACE_INFO, "newer term %llu from %llu (%s)",
				    (unsigned long long)m->term, (unsigned long long)m->from,
				    raft_msg_name(m->type));
			raft_become_follower(c, m->term, from_leader(m->type) ? m->from : 0);
		}
	} else if (m->term < c->term) {
		if ((c->cfg.check_quorum || c->cfg.pre_vote) &&
		    (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
			/* Tell a stale leader about the new term, or it would
			 * keep a lease-holding cluster from ever electing. */
			raft_send_msg(c, false, RAFT_MSG_APPEND_RESP, m->from)->reject = 0;
		} else if (m->type == RAFT_MSG_PREVOTE) {
			raft_send_msg(c, false, RAFT_MSG_PREVOTE_RESP, m->from)->reject = 1;
		}
		return 0;
	}

	switch (m->type) {
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PREVOTE:
		return raft_step_vote_request(c, m);
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PREVOTE_RESP:
		raft_step_vote_response(c, m);
		return 0;
	default:
		break;
	}

	if (c->state == RAFT_LEADER) {
		switch (m->type) {
		case RAFT_MSG_APPEND_RESP:
			raft_step_append_response(c, m);
			break;
		case RAFT_MSG_HEARTBEAT_RESP:
			raft_step_heartbeat_response(c, m);
			break;
		case RAFT_MSG_SNAPSHOT_RESP:
			raft_step_snapshot_response(c, m);
			break;
		case RAFT_MSG_READ_INDEX:
			raft_step_read_index(c, m);
			break;
		default:
			/* Two leaders in one term cannot exist. */
			raft_rtrace(c, RAFT_TRACE_DEBUG, "leader ignores %s from %llu",
				    raft_msg_name(m->type), (unsigned long long)m->from);
			break;
		}
		return 0;
	}

	if (from_leader(m->type) && c->state != RAFT_FOLLOWER)
		raft_become_follower(c, m->term, m->from); /* §5.2: lost the election */

	switch (m->type) {
	case RAFT_MSG_APPEND:
		return raft_step_append(c, m);
	case RAFT_MSG_HEARTBEAT:
		raft_step_heartbeat(c, m);
		return 0;
	case RAFT_MSG_DURABLE:
		raft_step_durable(c, m);
		return 0;
	case RAFT_MSG_SNAPSHOT:
		return raft_step_snapshot(c, m);
	case RAFT_MSG_TIMEOUT_NOW:
		if (raft_is_voter(c, c->id)) {
			raft_rtrace(c, RAFT_TRACE_INFO, "timeout-now from %llu: campaign",
				    (unsigned long long)m->from);
			raft_campaign(c, false, true);
		}
		return 0;
	case RAFT_MSG_READ_INDEX:
		raft_step_read_index(c, m); /* answers with a rejection */
		return 0;
	case RAFT_MSG_READ_INDEX_RESP:
		raft_step_read_index_resp(c, m);
		return 0;
	default:
		return 0; /* stale responses to a role we no longer have */
	}
}

/* Builds the flat message array of one queue, dropping appends whose entries
 * were truncated after they were queued. */
static size_t flatten(struct raft_core *c, struct out_list *l)
{
	size_t k = 0;
	if (l->flat_cap < l->n) {
		struct raft_msg *f = realloc(l->flat, l->n * sizeof(*f));
		if (!f)
			abort();
		l->flat = f;
		l->flat_cap = l->n;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct out_msg *o = &l->v[i];
		struct raft_msg m = o->m;
		if (o->lo) {
			uint64_t hi = o->lo + m.n_entries - 1;
			const struct raft_entry *e = raft_log_get(&c->log, o->lo);
			if (!e || !raft_log_get(&c->log, hi) ||
			    raft_log_term(&c->log, hi) != o->last_term)
				continue;
			m.entries = e;
		}
		if (m.type == RAFT_MSG_SNAPSHOT) {
			m.conf_data = c->snap_conf_buf;
			m.conf_len = c->snap_conf_len;
		}
		l->flat[k++] = m;
	}
	return k;
}

bool raft_ready(struct raft_core *c, struct raft_update *u)
{
	uint64_t last = raft_log_last_index(&c->log);

	assert(!c->in_ready);
	memset(u, 0, sizeof(*u));
	if (c->state == RAFT_LEADER)
		raft_reads_start_round(c);

	u->n_msgs_early = flatten(c, &c->early);
	u->msgs_early = c->early.flat;
	u->n_msgs = flatten(c, &c->late);
	u->msgs = c->late.flat;

	struct raft_hard_state hs = {c->term, c->vote};
#if RAFT_PLANT_BUG == 2
	if (hs.term == c->hs_saved.term)
		hs.vote = c->hs_saved.vote; /* BUG: the vote is never persisted */
	else
		hs.vote = 0;
#endif
	if (hs.term != c->hs_saved.term || hs.vote != c->hs_saved.vote) {
		u->has_hard_state = true;
		u->hs = hs;
	}
	u->truncate_from = c->truncate_from;
	c->ready_has_entries = false;
	if (c->persisted < last) {
		uint64_t from = c->persisted + 1;
		if (from <= c->log.offset)
			from = c->log.offset + 1;
		if (from <= last) {
			u->entries = raft_log_get(&c->log, from);
			u->n_entries = (size_t)(last - from + 1);
			c->ready_has_entries = true;
			c->ready_last_entry = last;
		}
	}
	u->chunks = c->chunks;
	u->n_chunks = c->n_chunks;
	if (c->install_emit) {
		u->has_install = true;
		u->install.snap.index = c->in_index;
		u->install.snap.term = c->in_term;
		u->install.snap.conf = c->in_conf;
		u->install.discard_log = c->install_discard;
	}
	c->ready_has_committed = false;
	if (!c->install_pending && !c->hold_apply) {
		uint64_t hi = c->commit < last ? c->commit : last;
		if (hi > c->applied) {
			uint64_t from = c->applied + 1;
			if (hi - from + 1 > c->cfg.max_apply)
				hi = from + c->cfg.max_apply - 1;
			u->committed = raft_log_get(&c->log, from);
			u->n_committed = (size_t)(hi - from + 1);
			c->ready_has_committed = true;
			c->ready_last_committed = hi;
		}
	}
	u->reads = c->out_reads;
	u->n_reads = c->n_out_reads;
	u->conf_changed = c->conf_changed;
	u->commit = c->commit;

	if (!u->n_msgs_early && !u->n_msgs && !u->has_hard_state && !u->truncate_from &&
	    !u->n_entries && !u->n_chunks && !u->has_install && !u->n_committed && !u->n_reads &&
	    !u->conf_changed) {
		c->early.n = c->late.n = 0; /* all dropped as stale */
		return false;
	}
	c->in_ready = true;
	return true;
}

void raft_hold_apply(struct raft_core *c, bool hold)
{
	c->hold_apply = hold;
}

void raft_advance(struct raft_core *c, struct raft_update *u)
{
	assert(c->in_ready);
	c->in_ready = false;
	if (u->has_hard_state)
		c->hs_saved = u->hs;
	c->truncate_from = 0;
	if (c->ready_has_entries)
		c->persisted = c->ready_last_entry;
	if (c->ready_has_committed)
		c->applied = c->ready_last_committed;
	for (size_t i = 0; i < c->n_chunks; i++)
		free((void *)c->chunks[i].data);
	c->n_chunks = 0;
	c->n_out_reads = 0;
	c->early.n = c->late.n = 0;
	c->install_emit = false;
	c->conf_changed = false;
	memset(u, 0, sizeof(*u));
	/* Thesis §10.2.1: the leader's own persist counts only now. */
	if (c->state == RAFT_LEADER && c->ready_has_entries)
		raft_bcast_durable(c);
	if (c->state == RAFT_LEADER && raft_maybe_commit(c))
		raft_bcast_commit(c);
	if (c->state == RAFT_FOLLOWER && c->ready_has_entries)
		raft_infer_commit(c);
}

void raft_forget_leader_commit(struct raft_core *c)
{
	c->leader_commit = 0;
}

void raft_status(const struct raft_core *c, struct raft_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = c->id;
	st->term = c->term;
	st->vote = c->vote;
	st->leader = c->leader;
	st->state = c->state;
	st->commit = c->commit;
	st->applied = c->applied;
	st->persisted = c->persisted;
	st->inferred_commits = c->inferred_commits;
	if (c->state == RAFT_LEADER)
		st->leader_commit = c->commit;
	else if (c->leader_commit)
		st->leader_commit = c->leader_commit > c->commit ? c->leader_commit : c->commit;
	st->first_index = c->log.offset + 1;
	st->last_index = raft_log_last_index(&c->log);
	st->snap_index = c->snap.index;
	st->snap_term = c->snap.term;
	st->transferee = c->transferee;
	st->term_start = c->state == RAFT_LEADER ? c->term_start : 0;
}

const struct raft_conf *raft_conf_get(const struct raft_core *c)
{
	return &c->conf;
}

uint64_t raft_term_at(const struct raft_core *c, uint64_t index)
{
	if (index == c->snap.index)
		return c->snap.term;
	return raft_log_term(&c->log, index);
}

uint64_t raft_entries_within(const struct raft_core *c, uint64_t index, uint64_t want,
			     uint64_t max_bytes)
{
	const struct raft_log *l = &c->log;
	uint64_t n = 0, bytes = 0;
	if (index > l->offset + l->n)
		index = l->offset + l->n;
	for (uint64_t i = index; i > l->offset && n < want; i--, n++) {
		bytes += l->e[i - l->offset - 1].len;
		if (bytes > max_bytes)
			break;
	}
	return n;
}

int raft_progress(const struct raft_core *c, uint64_t id, uint64_t *match, uint64_t *next)
{
	if (c->state != RAFT_LEADER)
		return KVFS_ENOTLEADER;
	if (id == c->id) {
		*match = c->persisted;
		*next = raft_log_last_index(&c->log) + 1;
		return 0;
	}
	for (unsigned i = 0; i < c->n_prs; i++) {
		if (c->prs[i].id == id) {
			*match = c->prs[i].match;
			*next = c->prs[i].next;
			return 0;
		}
	}
	return KVFS_ECONFIG;
}

const char *raft_state_name(enum raft_state s)
{
	switch (s) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_PRECANDIDATE:
		return "precandidate";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	}
	return "?";
}

const char *raft_msg_name(uint8_t type)
{
	static const char *const names[] = {
	    "?",	 "append",	"append-resp", "heartbeat",	 "heartbeat-resp",
	    "vote",	 "vote-resp",	"prevote",     "prevote-resp",	 "snapshot",
	    "snap-resp", "timeout-now", "read-index",  "read-index-resp", "durable"};
	return type < RAFT_MSG_TYPE_MAX ? names[type] : "?";
}
