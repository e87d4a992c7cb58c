/*
 * Safety invariants, checked as the simulation runs (Raft paper Figure 3):
 *   Election Safety     at most one leader per term (check_leaders);
 *   Log Matching        two durable logs with an entry of the same index and
 *                       term agree on the whole prefix: every durable entry
 *                       carries a chain hash of its prefix, and the first
 *                       hash seen for an (index, term) must be the only one;
 *   Leader Completeness a leader's log holds every entry applied anywhere
 *                       before it was elected (checked on its first record);
 *   State Machine Safety no two nodes apply different entries at one index
 *                       (the applied ledger);
 *   plus: a node's commit index never goes back within one life, every
 *   acknowledged write is still in the ledger at the end (check_final), and
 *   no server lacking a committed entry could win an election in its own
 *   configuration (check_committed_safe, when s->check_committed).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

struct sim_it {
	uint64_t index, term, hash;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

uint64_t chain_hash(uint64_t prev, const struct raft_entry *e)
{
	uint64_t h = mix(prev, e->index);
	h = mix(h, e->term);
	h = mix(h, e->type);
	const uint8_t *p = e->data;
	for (size_t i = 0; i < e->len; i++)
		h = mix(h, p[i]);
	return h | 1; /* never 0, which means unknown */
}

static void it_grow(struct sim *s);

/* Returns the hash recorded for (index, term), recording h if none. */
static uint64_t it_put(struct sim *s, uint64_t index, uint64_t term, uint64_t h)
{
	if ((s->it_used + 1) * 2 > s->it_cap)
		it_grow(s);
	size_t i = (size_t)(mix(index, term) & (s->it_cap - 1));
	for (;;) {
		struct sim_it *e = &s->it[i];
		if (!e->hash) {
			*e = (struct sim_it){index, term, h};
			s->it_used++;
			return h;
		}
		if (e->index == index && e->term == term)
			return e->hash;
		i = (i + 1) & (s->it_cap - 1);
	}
}

static void it_grow(struct sim *s)
{
	struct sim_it *old = s->it;
	size_t old_cap = s->it_cap;
	s->it_cap = old_cap ? old_cap * 2 : 4096;
	s->it = calloc(s->it_cap, sizeof(*s->it));
	if (!s->it)
		abort();
	s->it_used = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].hash)
			it_put(s, old[i].index, old[i].term, old[i].hash);
	free(old);
}

void check_durable_entry(struct sim *s, struct sim_node *n, const struct sim_entry *e)
{
	uint64_t h = it_put(s, e->e.index, e->e.term, e->hash);
	if (h != e->hash)
		sim_violation(s, "log matching: n%llu holds %llu/%llu with a different prefix",
			      (unsigned long long)n->id, (unsigned long long)e->e.index,
			      (unsigned long long)e->e.term);
}

static void ledger_grow(struct sim *s, uint64_t index)
{
	if (index < s->n_ledger)
		return;
	size_t n = s->n_ledger ? s->n_ledger : 1024;
	while (n <= index)
		n *= 2;
	s->ledger = realloc(s->ledger, n * sizeof(*s->ledger));
	s->ledger_term = realloc(s->ledger_term, n * sizeof(*s->ledger_term));
	if (!s->ledger || !s->ledger_term)
		abort();
	memset(s->ledger + s->n_ledger, 0, (n - s->n_ledger) * sizeof(*s->ledger));
	memset(s->ledger_term + s->n_ledger, 0, (n - s->n_ledger) * sizeof(*s->ledger_term));
	s->n_ledger = n;
}

struct sim_term {
	uint64_t leader;
	uint64_t commit, commit_hash; /* highest index this term's leader committed */
	uint64_t commit_term;	      /* the term of that entry */
	bool checked;		      /* leader completeness verified */
};

void check_applied(struct sim *s, struct sim_node *n, uint64_t index, uint64_t hash)
{
	if (!index)
		return;
	ledger_grow(s, index);
	if (!s->ledger[index]) {
		s->ledger[index] = hash;
	} else if (s->ledger[index] != hash) {
		sim_violation(s, "state machine safety: n%llu applied a different entry at %llu",
			      (unsigned long long)n->id, (unsigned long long)index);
	}
}

static uint64_t disk_hash(const struct sim_disk *d, uint64_t index)
{
	if (index == d->snap.index)
		return d->snap_hash;
	if (index == d->base_index)
		return d->base_hash;
	if (index > d->base_index && index <= d->base_index + d->n_log)
		return d->log[index - d->base_index - 1].hash;
	return 0;
}

/* Figure 3, Leader Completeness: an entry committed in a term is in the
 * logs of the leaders of all higher terms. */
static void leader_complete(struct sim *s, struct sim_node *n, uint64_t term)
{
	uint64_t top = 0, top_hash = 0;
	for (uint64_t t = 1; t < term && t < s->n_terms; t++) {
		if (s->terms[t].commit > top) {
			top = s->terms[t].commit;
			top_hash = s->terms[t].commit_hash;
		}
	}
	s->terms[term].checked = true;
	if (!top || !top_hash)
		return;
	const struct sim_disk *d = &n->disk;
	uint64_t last = d->base_index + d->n_log;
	if (last < top && d->snap.index < top) {
		sim_violation(
		    s,
		    "leader completeness: n%llu leads t%llu with last index %llu but %llu "
		    "was committed before",
		    (unsigned long long)n->id, (unsigned long long)term, (unsigned long long)last,
		    (unsigned long long)top);
		return;
	}
	uint64_t h = disk_hash(d, top);
	if (h && h != top_hash)
		sim_violation(s, "leader completeness: n%llu (t%llu) lacks committed entry %llu",
			      (unsigned long long)n->id, (unsigned long long)term,
			      (unsigned long long)top);
}

static void terms_grow(struct sim *s, uint64_t term)
{
	if (term < s->n_terms)
		return;
	size_t nt = s->n_terms ? s->n_terms : 256;
	while (nt <= term)
		nt *= 2;
	s->terms = realloc(s->terms, nt * sizeof(*s->terms));
	if (!s->terms)
		abort();
	memset(s->terms + s->n_terms, 0, (nt - s->n_terms) * sizeof(*s->terms));
	s->n_terms = nt;
}

/* Records that n knows commit as committed in term. */
static void note_commit(struct sim *s, struct sim_node *n, uint64_t term, uint64_t commit)
{
	terms_grow(s, term);
	struct sim_term *t = &s->terms[term];
	if (commit <= t->commit)
		return;
	uint64_t h = disk_hash(&n->disk, commit);
	if (h) {
		t->commit = commit;
		t->commit_hash = h;
		t->commit_term = raft_term_at(n->core, commit);
	}
}

void check_leaders(struct sim *s)
{
	for (uint64_t i = 1; i <= s->o.nodes; i++) {
		struct sim_node *n = &s->nodes[i];
		if (!n->up)
			continue;
		struct raft_status st;
		raft_status(n->core, &st);
		if (st.commit < n->last_commit)
			sim_violation(s, "n%llu: commit index went back from %llu to %llu",
				      (unsigned long long)i, (unsigned long long)n->last_commit,
				      (unsigned long long)st.commit);
		n->last_commit = st.commit;
		if (st.state != RAFT_LEADER) {
			/* A follower's commit index counts too: it may have
			 * inferred it (raft.h, COMMIT INFERENCE). */
			if (st.term)
				note_commit(s, n, st.term, st.commit);
			continue;
		}
		terms_grow(s, st.term);
		struct sim_term *t = &s->terms[st.term];
		if (t->leader == 0) {
			t->leader = i;
			s->st.elections++;
			sim_log(s, "n%llu is leader of t%llu", (unsigned long long)i,
				(unsigned long long)st.term);
			if (s->crash_next_leader) {
				/* Nemesis: either cut the new leader off before
				 * its first AppendEntries leaves, then crash it;
				 * or crash it while it catches followers up. */
				s->crash_next_leader = false;
				if (sim_rand_range(s, 0, 1)) {
					sim_log(s, "n%llu isolated at its election, crashes soon",
						(unsigned long long)i);
					sim_isolate(s, i);
					n->crash_mode = 3;
				} else {
					sim_log(s, "n%llu will crash soon after its election",
						(unsigned long long)i);
					sim_crash_later(s, i, sim_rand_range(s, 5, 300) * 1000ULL);
				}
			}
		} else if (t->leader != i) {
			sim_violation(s, "election safety: n%llu and n%llu both lead t%llu",
				      (unsigned long long)t->leader, (unsigned long long)i,
				      (unsigned long long)st.term);
		}
		note_commit(s, n, st.term, st.commit);
	}
}

/* Last (term, index) of a node's durable log. */
static void durable_last(const struct sim_node *n, uint64_t *term, uint64_t *index)
{
	const struct sim_disk *d = &n->disk;
	*index = d->base_index + d->n_log;
	if (d->n_log)
		*term = d->log[d->n_log - 1].e.term;
	else if (*index == d->snap.index)
		*term = d->snap.term;
	else
		*term = 0; /* NEVER: the base of a compacted log is the snapshot */
}

/*
 * The configuration a node would campaign in (thesis §4.1: a server uses the
 * latest configuration in its log, committed or not). Up: its core's. Down:
 * what raft_create would rebuild from its disk (raft_conf_refresh): the
 * latest configuration entry after the snapshot, else the snapshot's
 * membership, else the bootstrap membership - or none, for a server added
 * later that has not received a configuration yet.
 */
static void campaign_conf(const struct sim *s, const struct sim_node *n, struct raft_conf *out)
{
	if (n->up) {
		*out = *raft_conf_get(n->core);
		return;
	}
	const struct sim_disk *d = &n->disk;
	for (size_t k = d->n_log; k-- > 0;) {
		const struct raft_entry *e = &d->log[k].e;
		if (e->index <= d->snap.index)
			break;
		if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(out, e->data, e->len) == 0)
			return;
	}
	if (d->snap.index)
		*out = d->snap.conf;
	else if (d->bootstrap)
		*out = sim_bootstrap_conf(s);
	else
		memset(out, 0, sizeof(*out));
}

/*
 * The invariant behind Leader Completeness (Raft §5.4.3): an entry committed
 * by a leader is durable on a quorum of voters whose logs are at least as
 * up-to-date as any log lacking it, so no server lacking it can collect a
 * quorum of votes. Checked directly, it fails as soon as a committed entry
 * becomes losable, without waiting for the crash that would lose it.
 *
 * Membership-aware: a server x lacking the entry campaigns in the latest
 * configuration of its own log (campaign_conf) and wins with a majority of
 * that configuration's voters (election.c, tally): only those voters'
 * votes count, x's own only if it is a voter there. Every voter grants
 * whatever its own configuration (it does not check the candidate's
 * membership), judged on its durable log; terms, votes already cast and
 * leases are ignored, since x can always try again in a later term. With
 * single-server changes (thesis §4.1) adjacent configurations share a voter
 * in any two majorities, so a stale configuration still meets a holder of
 * each committed entry, provided the next configuration was committed by a
 * leader that first committed an entry of its own term (the erratum guard
 * in propose.c): without it, two changes from different terms can leave
 * disjoint majorities, and this check fires.
 */
static void check_committed_safe(struct sim *s)
{
	uint64_t top = 0, top_term = 0;
	for (uint64_t t = 1; t < s->n_terms; t++) {
		if (s->terms[t].commit > top) {
			top = s->terms[t].commit;
			top_term = s->terms[t].commit_term;
		}
	}
	if (!top || !top_term)
		return;
	for (uint64_t x = 1; x <= s->o.nodes; x++) {
		struct sim_node *nx = &s->nodes[x];
		uint64_t xt, xi;
		bool has;
		if (nx->up) {
			struct raft_status st;
			raft_status(nx->core, &st);
			xi = st.last_index;
			xt = raft_term_at(nx->core, xi);
			has = st.snap_index >= top || raft_term_at(nx->core, top) == top_term;
		} else {
			durable_last(nx, &xt, &xi);
			const struct sim_disk *d = &nx->disk;
			has = d->snap.index >= top ||
			      (top > d->base_index && top <= d->base_index + d->n_log &&
			       d->log[top - d->base_index - 1].e.term == top_term);
		}
		if (has)
			continue;
		struct raft_conf conf;
		campaign_conf(s, nx, &conf);
		unsigned voters = 0, votes = 0;
		char who[96];
		size_t wl = 0;
		who[0] = 0;
		for (unsigned i = 0; i < conf.n; i++) {
			const struct raft_server *sv = &conf.servers[i];
			if (sv->role != RAFT_VOTER)
				continue; /* learners never vote */
			voters++;
			uint64_t v = sv->id, vt, vi;
			bool grants;
			if (v == x) {
				grants = true;
			} else if (v < 1 || v > s->o.nodes) {
				grants = false; /* no such server: never answers */
			} else {
				durable_last(&s->nodes[v], &vt, &vi);
				grants = xt > vt || (xt == vt && xi >= vi);
			}
			votes += grants;
			if (wl < sizeof(who))
				wl += (size_t)snprintf(who + wl, sizeof(who) - wl, "%sn%llu%s",
						       wl ? " " : "", (unsigned long long)v,
						       grants ? "+" : "-");
		}
		if (voters && votes >= voters / 2 + 1)
			sim_violation(
			    s,
			    "committed entry %llu (t%llu) is losable: n%llu (last %llu/%llu) "
			    "lacks it and could win %u of the %u voters of its "
			    "configuration (%s)",
			    (unsigned long long)top, (unsigned long long)top_term,
			    (unsigned long long)x, (unsigned long long)xi, (unsigned long long)xt,
			    votes, voters, who);
	}
}

void check_after_record(struct sim *s, struct sim_node *n)
{
	if (s->check_committed && n->up)
		check_committed_safe(s);
	struct raft_status st;
	if (!n->up)
		return;
	check_leaders(s);
	raft_status(n->core, &st);
	if (st.state == RAFT_LEADER && st.persisted >= st.last_index && !s->terms[st.term].checked)
		leader_complete(s, n, st.term);
}

void check_final(struct sim *s)
{
	for (size_t i = 0; i < s->n_acked; i++) {
		uint64_t idx = s->acked_idx[i];
		if (idx >= s->n_ledger || s->ledger[idx] != s->acked_hash[i])
			sim_violation(s, "acknowledged write at %llu lost",
				      (unsigned long long)idx);
	}
}
