/*
 * Scripted scenarios for the Raft core, each a named behaviour with one
 * sentence saying what it proves, run on the simulated cluster with fixed
 * network and disk latencies. Each scenario asserts its outcome and its
 * trace (core tracer + simulator events) must equal the golden trace in
 * tests/sim/golden/<name>.trace, so any change of behaviour shows up as a
 * readable diff.
 *
 *   raft-scenarios                 run all (golden traces from $top_srcdir)
 *   raft-scenarios NAME...         run some
 *   raft-scenarios --print NAME    print a scenario's trace
 *   raft-scenarios --update DIR    rewrite the golden traces into DIR
 */
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

struct sc {
	struct sim s;
	const char *name;
	char *buf;
	size_t len;
	FILE *out;
	int failed;
	/* observations */
	struct raft_read reads[64];
	unsigned n_reads;
	unsigned sent[RAFT_MSG_TYPE_MAX];
	unsigned appends_to[SIM_MAX_NODES + 1]; /* with entries */
	unsigned empty_appends_to[SIM_MAX_NODES + 1]; /* commit index only */
	size_t max_entries;
	uint64_t read_seqs[16];
	unsigned n_read_seqs;
	uint64_t snap_offsets[64];
	unsigned n_snap_offsets;
	/* message filter */
	uint64_t drop_from, drop_to, drop_index; /* drop appends carrying drop_index */
	unsigned drop_skip;			 /* ... except the first drop_skip */
	unsigned drop_snap_nth;			 /* drop the nth snapshot chunk */
	uint64_t drop_acks_from;		 /* drop its AppendEntries answers */
	uint64_t drop_durable_to;		 /* drop the DURABLE announcements to it */
};

#define S  (&c->s)
#define MS 1000ULL

static void expect(struct sc *c, bool ok, const char *what, int line)
{
	if (ok)
		return;
	c->failed++;
	fprintf(stderr, "%s: line %d: expectation failed: %s\n", c->name, line, what);
	sim_log(S, "EXPECTATION FAILED: %s", what);
}

#define EXPECT(cond) expect(c, (cond), #cond, __LINE__)

static void on_read(struct sim *s, uint64_t node, const struct raft_read *r)
{
	struct sc *c = s->user;
	sim_log(s, "n%llu read ctx=%llu index=%llu status=%d", (unsigned long long)node,
		(unsigned long long)r->ctx, (unsigned long long)r->index, r->status);
	if (c->n_reads < 64)
		c->reads[c->n_reads++] = *r;
}

static void on_send(struct sim *s, const struct raft_msg *m)
{
	struct sc *c = s->user;
	c->sent[m->type]++;
	if (m->type == RAFT_MSG_APPEND && !m->n_entries)
		c->empty_appends_to[m->to]++;
	if (m->type == RAFT_MSG_APPEND && m->n_entries) {
		c->appends_to[m->to]++;
		if (m->n_entries > c->max_entries)
			c->max_entries = m->n_entries;
	}
	if (m->type == RAFT_MSG_HEARTBEAT && m->read_seq) {
		bool seen = false;
		for (unsigned i = 0; i < c->n_read_seqs; i++)
			seen |= c->read_seqs[i] == m->read_seq;
		if (!seen && c->n_read_seqs < 16)
			c->read_seqs[c->n_read_seqs++] = m->read_seq;
	}
	if (m->type == RAFT_MSG_SNAPSHOT && c->n_snap_offsets < 64)
		c->snap_offsets[c->n_snap_offsets++] = m->offset;
}

static bool drop(struct sim *s, const struct raft_msg *m)
{
	struct sc *c = s->user;
	if (c->drop_index && m->type == RAFT_MSG_APPEND && m->from == c->drop_from &&
	    (!c->drop_to || m->to == c->drop_to)) {
		for (size_t i = 0; i < m->n_entries; i++) {
			if (m->entries[i].index != c->drop_index)
				continue;
			if (c->drop_skip) {
				c->drop_skip--;
				return false;
			}
			return true;
		}
	}
	if (c->drop_acks_from && m->type == RAFT_MSG_APPEND_RESP && m->from == c->drop_acks_from)
		return true;
	if (c->drop_durable_to && m->type == RAFT_MSG_DURABLE && m->to == c->drop_durable_to)
		return true;
	if (c->drop_snap_nth && m->type == RAFT_MSG_SNAPSHOT &&
	    c->sent[RAFT_MSG_SNAPSHOT] == c->drop_snap_nth) {
		sim_log(s, "drop snapshot chunk at offset %llu", (unsigned long long)m->offset);
		return true;
	}
	return false;
}

static uint64_t name_seed(const char *name)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 1099511628211ULL;
	return h;
}

static void sc_init(struct sc *c, unsigned nodes, unsigned initial, bool pre_vote, bool cq)
{
	struct sim_opts o;
	sim_default_opts(&o);
	o.seed = name_seed(c->name);
	o.nodes = nodes;
	o.initial = initial;
	o.trace = true;
	o.trace_out = c->out;
	o.clients = 0;
	o.snapshots = false;
	o.net_min_us = o.net_max_us = 1000;
	o.disk_min_us = o.disk_max_us = 500;
	o.pre_vote = pre_vote;
	o.check_quorum = cq;
	o.max_batch_entries = 16;
	o.max_inflight = 4;
	sim_init(S, &o);
	S->check_committed = true;
	S->user = c;
	S->on_read = on_read;
	S->on_send = on_send;
	S->drop = drop;
}

static void start_all(struct sc *c)
{
	for (uint64_t i = 1; i <= S->o.nodes; i++)
		sim_restart(S, i);
}

static void run(struct sc *c, uint64_t ms)
{
	sim_run_until(S, S->now + ms * MS);
}

static uint64_t leader_within(struct sc *c, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 5) {
		uint64_t l = sim_leader(S);
		if (l)
			return l;
		run(c, 5);
	}
	return sim_leader(S);
}

/* Waits for the node to finish its record: core calls are only allowed
 * between records. */
static struct raft_core *core(struct sc *c, uint64_t id)
{
	while (S->nodes[id].up && S->nodes[id].busy)
		sim_run_until(S, S->now + 100);
	return S->nodes[id].core;
}

static struct raft_status st(struct sc *c, uint64_t id)
{
	struct raft_status x;
	sim_node_status(S, id, &x);
	return x;
}

static int propose(struct sc *c, uint64_t id, const char *text, uint64_t *index, uint64_t *hint)
{
	uint64_t idx = 0, h = 0;
	int rv = raft_propose(core(c, id), text, strlen(text), &idx, NULL, &h);
	sim_log(S, "propose '%s' on n%llu: %d (index %llu, hint %llu)", text,
		(unsigned long long)id, rv, (unsigned long long)idx, (unsigned long long)h);
	if (index)
		*index = idx;
	if (hint)
		*hint = h;
	sim_pump(S, &S->nodes[id]);
	return rv;
}

static uint64_t propose_n(struct sc *c, uint64_t id, unsigned n)
{
	uint64_t idx = 0;
	for (unsigned i = 0; i < n; i++) {
		char b[32];
		snprintf(b, sizeof(b), "e%u", i);
		propose(c, id, b, &idx, NULL);
	}
	return idx;
}

static int read_index(struct sc *c, uint64_t id, uint64_t ctx)
{
	int rv = raft_read_index(core(c, id), ctx);
	sim_log(S, "read-index ctx=%llu on n%llu: %d", (unsigned long long)ctx,
		(unsigned long long)id, rv);
	sim_pump(S, &S->nodes[id]);
	return rv;
}

/* Times the node out at once (as if its election timer fired). */
static void force_campaign(struct sc *c, uint64_t id)
{
	struct raft_core *k = core(c, id);
	for (unsigned i = 0; i < 4 * S->o.election_ticks; i++) {
		struct raft_status x;
		raft_status(k, &x);
		if (x.state != RAFT_FOLLOWER)
			break;
		raft_tick(k);
	}
	sim_pump(S, &S->nodes[id]);
}

static int change(struct sc *c, uint64_t leader, enum raft_change_kind kind, uint64_t id)
{
	char addr[32];
	snprintf(addr, sizeof(addr), "sim://%llu", (unsigned long long)id);
	int rv = raft_change(core(c, leader), kind, id, addr, NULL);
	sim_log(S, "change %d n%llu via n%llu: %d", kind, (unsigned long long)id,
		(unsigned long long)leader, rv);
	sim_pump(S, &S->nodes[leader]);
	return rv;
}

static bool logs_equal(struct sc *c, uint64_t a, uint64_t b)
{
	struct raft_status x = st(c, a), y = st(c, b);
	if (x.last_index != y.last_index)
		return false;
	for (uint64_t i = 1; i <= x.last_index; i++)
		if (raft_term_at(S->nodes[a].core, i) != raft_term_at(S->nodes[b].core, i))
			return false;
	return true;
}

/* ------------------------------------------------------------------------ */

static void sc_election_single_leader(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	EXPECT(l != 0);
	run(c, 200);
	for (uint64_t i = 1; i <= 3; i++) {
		EXPECT(st(c, i).leader == l);
		EXPECT(st(c, i).commit >= 1);
	}
}

static void sc_election_split_vote(struct sc *c)
{
	sc_init(c, 4, 4, false, false);
	start_all(c);
	/* n3 hears only n1, n4 only n2: two votes each in term 1. */
	sim_cut(S, 2, 3, true);
	sim_cut(S, 1, 4, true);
	force_campaign(c, 1);
	force_campaign(c, 2);
	run(c, 50);
	EXPECT(sim_leader(S) == 0);
	EXPECT(st(c, 1).term == 1 && st(c, 2).term == 1);
	sim_heal(S);
	uint64_t l = leader_within(c, 2000);
	EXPECT(l != 0);
	EXPECT(st(c, l).term >= 2);
}

static void sc_prevote_blocks_rejoiner(struct sc *c)
{
	sc_init(c, 3, 3, true, false);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t term = st(c, l).term, f = l % 3 + 1;
	sim_isolate(S, f);
	run(c, 3000);
	EXPECT(st(c, f).term == term); /* pre-votes failed: no term inflation */
	sim_heal(S);
	run(c, 1000);
	EXPECT(sim_leader(S) == l);
	EXPECT(st(c, l).term == term);
}

static void sc_rejoiner_disrupts_without_prevote(struct sc *c)
{
	sc_init(c, 3, 3, false, false);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t term = st(c, l).term, f = l % 3 + 1;
	sim_isolate(S, f);
	run(c, 3000);
	EXPECT(st(c, f).term > term + 3);
	sim_heal(S);
	run(c, 1000);
	EXPECT(st(c, sim_leader(S)).term > term); /* the leader was deposed */
}

static void sc_check_quorum_step_down(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	sim_isolate(S, l);
	run(c, 2 * 10 * 20 + 50); /* two election timeouts */
	EXPECT(st(c, l).state != RAFT_LEADER);
	uint64_t nl = sim_leader(S);
	EXPECT(nl != 0 && nl != l);
}

static void sc_lease_ignores_disruptive_vote(struct sc *c)
{
	sc_init(c, 3, 3, false, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t term = st(c, l).term, f = l % 3 + 1;
	sim_cut(S, l, f, true); /* f cannot hear the leader, others can */
	run(c, 2000);
	EXPECT(st(c, f).term > term);
	EXPECT(sim_leader(S) == l);
	EXPECT(st(c, l).term == term);
}

static void sc_replication_commits_everywhere(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t idx = propose_n(c, l, 5);
	run(c, 100);
	for (uint64_t i = 1; i <= 3; i++) {
		EXPECT(S->nodes[i].applied == idx);
		EXPECT(logs_equal(c, l, i));
	}
}

static void sc_figure7_short_followers(struct sc *c)
{
	static const uint64_t lead[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
	static const uint64_t a[] = {1, 1, 1, 4, 4, 5, 5, 6, 6};
	static const uint64_t b[] = {1, 1, 1, 4};
	sc_init(c, 3, 3, true, true);
	sim_preload(S, 1, lead, 10, 6);
	sim_preload(S, 2, a, 9, 6);
	sim_preload(S, 3, b, 4, 6);
	start_all(c);
	force_campaign(c, 1);
	run(c, 300);
	EXPECT(sim_leader(S) == 1);
	EXPECT(st(c, 1).last_index == 11);
	EXPECT(logs_equal(c, 1, 2) && logs_equal(c, 1, 3));
	EXPECT(st(c, 2).commit == 11 && st(c, 3).commit == 11);
}

static void sc_figure7_extra_entries_truncated(struct sc *c)
{
	static const uint64_t lead[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
	static const uint64_t d[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7};
	static const uint64_t f[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
	sc_init(c, 3, 3, false, false);
	sim_preload(S, 1, lead, 10, 7);
	sim_preload(S, 2, d, 12, 7);
	sim_preload(S, 3, f, 11, 7);
	start_all(c);
	force_campaign(c, 1); /* n3 votes for n1: its last term 3 < 6 */
	run(c, 300);
	EXPECT(st(c, 1).term == 8);
	uint64_t l = sim_leader(S);
	EXPECT(l == 1);
	EXPECT(raft_term_at(S->nodes[2].core, 11) == 8); /* (d)'s term-7 suffix gone */
	EXPECT(logs_equal(c, 1, 2) && logs_equal(c, 1, 3));
}

static void sc_figure8_no_commit_by_counting(struct sc *c)
{
	static const uint64_t s1[] = {1, 2, 2};
	static const uint64_t one[] = {1};
	sc_init(c, 3, 3, false, false);
	S->o.max_batch_entries = 1;
	sim_preload(S, 1, s1, 3, 3);
	sim_preload(S, 2, one, 1, 3);
	sim_preload(S, 3, one, 1, 3);
	start_all(c);
	sim_cut(S, 1, 2, true);
	sim_cut(S, 2, 1, true);
	c->drop_from = 1;
	c->drop_index = 4; /* the term-4 no-op reaches n3 only in the first probe, */
	c->drop_skip = 1;  /* which n3 rejects (it lacks index 3) */
	force_campaign(c, 1);
	run(c, 300);
	EXPECT(sim_leader(S) == 1 && st(c, 1).term == 4);
	uint64_t m = 0, nx = 0;
	raft_progress(S->nodes[1].core, 3, &m, &nx);
	EXPECT(m == 3);		      /* index 3 (term 2) is on a majority ... */
	EXPECT(st(c, 1).commit == 0); /* ... but is not committed by counting */
	c->drop_index = 0;
	run(c, 200);
	EXPECT(st(c, 1).commit == 4); /* committed with the term-4 entry */
}

static void sc_fast_backtracking(struct sc *c)
{
	uint64_t lead[13], conflict[40];
	for (int i = 0; i < 13; i++)
		lead[i] = i < 3 ? 1 : 3;
	for (int i = 0; i < 40; i++)
		conflict[i] = i < 3 ? 1 : 2;
	sc_init(c, 3, 3, false, false);
	sim_preload(S, 1, lead, 13, 3);
	sim_preload(S, 2, conflict, 40, 3);
	sim_preload(S, 3, lead, 3, 3);
	start_all(c);
	force_campaign(c, 1);
	run(c, 300);
	EXPECT(sim_leader(S) == 1);
	EXPECT(logs_equal(c, 1, 2));
	/* one probe rejected, then the hint jumps over the whole term 2 */
	EXPECT(c->appends_to[2] <= 3);
}

static void sc_pipelining_window(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	S->o.max_batch_entries = 1;
	S->o.max_inflight = 2;
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t f = l % 3 + 1;
	run(c, 100);
	sim_cut(S, f, l, true); /* f's answers are lost */
	c->appends_to[f] = 0;
	uint64_t idx = propose_n(c, l, 10);
	run(c, 30);
	EXPECT(c->appends_to[f] == 2); /* two appends in flight, then the window is full */
	sim_heal(S);
	run(c, 300);
	EXPECT(S->nodes[f].applied == idx);
}

static void sc_batching(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	S->o.max_batch_entries = 4;
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	const void *data[10];
	size_t lens[10];
	for (int i = 0; i < 10; i++) {
		data[i] = "x";
		lens[i] = 1;
	}
	uint64_t first = 0;
	EXPECT(raft_propose_batch(core(c, l), data, lens, 10, &first, NULL, NULL) == 0);
	sim_pump(S, &S->nodes[l]);
	run(c, 100);
	EXPECT(c->max_entries == 4);
	for (uint64_t i = 1; i <= 3; i++)
		EXPECT(S->nodes[i].applied == first + 9);
}

static void sc_leader_counts_itself_after_persist(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t other = l % 3 + 1, down = other % 3 + 1;
	if (down == l)
		down = down % 3 + 1;
	run(c, 100);
	sim_crash(S, down);
	S->nodes[l].disk_extra_us = 50000; /* the leader's fsync takes 50 ms */
	uint64_t idx = 0;
	propose(c, l, "slow", &idx, NULL);
	run(c, 20);
	const struct sim_disk *fd = &S->nodes[other].disk, *ld = &S->nodes[l].disk;
	EXPECT(fd->base_index + fd->n_log >= idx); /* the follower persisted it ... */
	EXPECT(ld->base_index + ld->n_log < idx);  /* ... before the leader's fsync ended */
	EXPECT(st(c, l).commit < idx);		   /* which it waits for to count itself */
	run(c, 60);
	EXPECT(st(c, l).commit >= idx);
}

/* A follower whose acknowledgements are lost, with the third server down:
 * the leader cannot count a majority, yet the entry is durable on the two of
 * them, a majority of 3. n nodes, the others down. Returns the entry's
 * index; *l and *f are the leader and that follower. */
static uint64_t inference_setup(struct sc *c, unsigned n, uint64_t *l, uint64_t *f)
{
	sc_init(c, n, n, true, true);
	start_all(c);
	*l = leader_within(c, 1000);
	*f = *l % n + 1;
	run(c, 100);
	for (uint64_t i = 1; i <= n; i++)
		if (i != *l && i != *f)
			sim_crash(S, i);
	c->drop_acks_from = *f;
	uint64_t idx = 0;
	propose(c, *l, "inferred", &idx, NULL);
	run(c, 20);
	return idx;
}

static void sc_follower_infers_commit(struct sc *c)
{
	uint64_t l, f;
	uint64_t idx = inference_setup(c, 3, &l, &f);
	EXPECT(st(c, l).commit < idx); /* the leader heard no acknowledgement */
	EXPECT(st(c, f).commit >= idx); /* the follower knows both copies are durable */
	EXPECT(st(c, f).applied >= idx);
	EXPECT(st(c, f).inferred_commits > 0 && st(c, l).inferred_commits == 0);
	/* A read on the leader must not miss what the follower may have
	 * answered already: its index covers the entry. */
	EXPECT(read_index(c, l, 7) == 0);
	run(c, 20);
	EXPECT(c->n_reads == 1 && c->reads[0].status == 0 && c->reads[0].index >= idx);
	c->drop_acks_from = 0;
	run(c, 300);
	EXPECT(st(c, l).commit >= idx);
}

static void sc_no_inference_in_five_nodes(struct sc *c)
{
	uint64_t l, f;
	uint64_t idx = inference_setup(c, 5, &l, &f);
	EXPECT(st(c, f).commit < idx); /* two of five are no majority */
	EXPECT(st(c, l).commit < idx);
	EXPECT(c->sent[RAFT_MSG_DURABLE] == 0);
	EXPECT(st(c, f).inferred_commits == 0);
}

/* Followers with slow disks (5 ms) acknowledge after the leader persisted:
 * each was told by RAFT_MSG_DURABLE, commits by itself, and gets no
 * commit-only append. Then the leader's disk is the slow one (50 ms) and
 * the followers' acknowledgements wait behind its fsync: every server
 * still applies the next entry. */
static void sc_commit_inferred_needs_no_append(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	for (uint64_t i = 1; i <= 3; i++)
		if (i != l)
			S->nodes[i].disk_extra_us = 5000;
	memset(c->empty_appends_to, 0, sizeof c->empty_appends_to);
	uint64_t idx = 0, inferred[SIM_MAX_NODES + 1] = {0};
	for (uint64_t i = 1; i <= 3; i++)
		inferred[i] = st(c, i).inferred_commits;
	propose(c, l, "durable first", &idx, NULL);
	run(c, 20); /* less than a heartbeat interval (40 ms) */
	for (uint64_t i = 1; i <= 3; i++) {
		EXPECT(S->nodes[i].applied >= idx);
		if (i == l)
			continue;
		EXPECT(st(c, i).inferred_commits > inferred[i]);
		EXPECT(c->empty_appends_to[i] == 0);
	}
	EXPECT(st(c, l).commit >= idx);

	for (uint64_t i = 1; i <= 3; i++)
		S->nodes[i].disk_extra_us = i == l ? 50000 : 0;
	propose(c, l, "leader slow", &idx, NULL);
	run(c, 200);
	for (uint64_t i = 1; i <= 3; i++)
		EXPECT(S->nodes[i].applied >= idx);
}

/* The same, with one follower's DURABLE lost: the leader still sends it no
 * commit-only append, and it commits from the next heartbeat (every 40 ms
 * here) instead; the other infers at once. */
static void sc_lost_durable_commits_by_heartbeat(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t f = l % 3 + 1, g = f % 3 + 1;
	run(c, 100);
	S->nodes[f].disk_extra_us = S->nodes[g].disk_extra_us = 5000;
	c->drop_durable_to = f;
	uint64_t idx = 0;
	propose(c, l, "durable lost", &idx, NULL);
	run(c, 20);
	EXPECT(S->nodes[g].applied >= idx);
	run(c, 60); /* two heartbeat intervals in all */
	EXPECT(S->nodes[f].applied >= idx);
}

static void sc_read_index_batched(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	c->n_read_seqs = 0;
	struct raft_core *k = core(c, l);
	for (uint64_t ctx = 1; ctx <= 5; ctx++)
		EXPECT(raft_read_index(k, ctx) == 0);
	sim_pump(S, &S->nodes[l]);
	run(c, 10);
	EXPECT(c->n_reads == 5);
	EXPECT(c->n_read_seqs == 1); /* five reads, one heartbeat round */
	for (unsigned i = 0; i < c->n_reads; i++)
		EXPECT(c->reads[i].status == 0 && c->reads[i].index == st(c, l).commit);
}

static void sc_read_index_on_follower(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t f = l % 3 + 1;
	uint64_t idx = propose_n(c, l, 3);
	run(c, 5);
	EXPECT(read_index(c, f, 42) == 0);
	run(c, 20);
	EXPECT(c->n_reads == 1);
	EXPECT(c->reads[0].ctx == 42 && c->reads[0].status == 0 && c->reads[0].index == idx);
}

static void sc_read_index_fails_on_step_down(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	sim_isolate(S, l);
	EXPECT(read_index(c, l, 7) == 0);
	run(c, 500);
	EXPECT(st(c, l).state != RAFT_LEADER);
	EXPECT(c->n_reads == 1 && c->reads[0].ctx == 7 && c->reads[0].status == KVFS_ENOTLEADER);
}

static void sc_read_index_without_leader(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	EXPECT(read_index(c, 1, 9) == KVFS_ENOLEADER);
	EXPECT(c->n_reads == 0);
}

static void sc_propose_on_follower_refused(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 50);
	uint64_t hint = 0, f = l % 3 + 1;
	EXPECT(propose(c, f, "nope", NULL, &hint) == KVFS_ENOTLEADER);
	EXPECT(hint == l);
}

static void sc_transfer_leadership(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t term = st(c, l).term, t = l % 3 + 1;
	run(c, 100);
	EXPECT(raft_transfer(core(c, l), t) == 0);
	sim_pump(S, &S->nodes[l]);
	run(c, 30); /* well below an election timeout */
	EXPECT(sim_leader(S) == t);
	EXPECT(st(c, t).term == term + 1);
	EXPECT(c->sent[RAFT_MSG_TIMEOUT_NOW] == 1);
}

static void sc_transfer_catches_up_target(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t t = l % 3 + 1;
	run(c, 100);
	sim_cut(S, l, t, true);
	uint64_t idx = propose_n(c, l, 20);
	run(c, 50);
	EXPECT(st(c, t).last_index < idx);
	sim_heal(S);
	EXPECT(raft_transfer(core(c, l), t) == 0);
	sim_pump(S, &S->nodes[l]);
	run(c, 100);
	EXPECT(sim_leader(S) == t);
	EXPECT(st(c, t).last_index > idx);
}

static void sc_transfer_refuses_proposals(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t t = l % 3 + 1;
	run(c, 100);
	sim_cut(S, l, t, true); /* the transfer cannot complete */
	propose(c, l, "behind", NULL, NULL);
	EXPECT(raft_transfer(core(c, l), t) == 0);
	EXPECT(propose(c, l, "during", NULL, NULL) == KVFS_EBUSY);
	run(c, 300); /* abandoned after one election timeout */
	EXPECT(st(c, l).transferee == 0);
	EXPECT(propose(c, l, "after", NULL, NULL) == 0);
}

/* Three nodes that snapshot every 20 entries and send snapshots in 8-byte
 * chunks; a follower *f is down while the leader *l commits 60 more entries
 * (up to *idx) and compacts past them, so it can only catch up by snapshot. */
static void snapshot_behind(struct sc *c, uint64_t *l, uint64_t *f, uint64_t *idx)
{
	sc_init(c, 3, 3, true, true);
	S->o.snapshots = true;
	for (int i = 1; i <= 3; i++) {
		S->nodes[i].snap_every = 20;
		S->nodes[i].snap_keep = 0;
		S->nodes[i].chunk = 8;
	}
	start_all(c);
	*l = leader_within(c, 1000);
	*f = *l % 3 + 1;
	run(c, 50);
	sim_crash(S, *f);
	*idx = propose_n(c, *l, 60);
	run(c, 200);
}

static void sc_snapshot_install(struct sc *c)
{
	uint64_t l, f, idx;
	snapshot_behind(c, &l, &f, &idx);
	EXPECT(st(c, l).snap_index >= 20);
	sim_restart(S, f);
	run(c, 500);
	EXPECT(S->st.snap_installs == 1);
	EXPECT(c->sent[RAFT_MSG_SNAPSHOT] >= 3); /* in chunks */
	EXPECT(S->nodes[f].applied >= idx);
	EXPECT(memcmp(S->nodes[f].kv, S->nodes[l].kv, sizeof(S->nodes[l].kv)) == 0);
}

static void sc_snapshot_resumes_after_lost_chunk(struct sc *c)
{
	uint64_t l, f, idx;
	snapshot_behind(c, &l, &f, &idx);
	c->drop_snap_nth = 3; /* lose the third chunk once */
	sim_restart(S, f);
	run(c, 1000);
	EXPECT(S->st.snap_installs == 1);
	bool resent = false;
	for (unsigned i = 0; i + 1 < c->n_snap_offsets; i++)
		for (unsigned j = i + 1; j < c->n_snap_offsets; j++)
			resent |= c->snap_offsets[i] == c->snap_offsets[j] && c->snap_offsets[i];
	EXPECT(resent); /* the lost chunk was sent again at its offset */
	EXPECT(S->nodes[f].applied >= idx);
}

static void sc_learner_promotion(struct sc *c)
{
	sc_init(c, 4, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 50);
	EXPECT(change(c, l, RAFT_ADD_LEARNER, 4) == 0);
	uint64_t idx = propose_n(c, l, 3);
	run(c, 200);
	EXPECT(S->nodes[4].applied >= idx); /* the learner gets the log */
	EXPECT(raft_conf_voters(raft_conf_get(S->nodes[l].core)) == 3);
	EXPECT(st(c, 4).state == RAFT_FOLLOWER);
	/* with both other voters down, the learner's copy does not commit */
	uint64_t others[2], k = 0;
	for (uint64_t i = 1; i <= 3; i++)
		if (i != l)
			others[k++] = i;
	sim_crash(S, others[0]);
	sim_crash(S, others[1]);
	uint64_t x = 0;
	propose(c, l, "needs-a-voter", &x, NULL);
	run(c, 100);
	EXPECT(st(c, 4).last_index >= x);
	EXPECT(st(c, l).commit < x);
	sim_restart(S, others[0]);
	sim_restart(S, others[1]);
	run(c, 300);
	l = sim_leader(S);
	EXPECT(l != 0 && l != 4);
	if (!l)
		return;
	EXPECT(change(c, l, RAFT_PROMOTE, 4) == 0);
	run(c, 200);
	EXPECT(raft_conf_voters(raft_conf_get(S->nodes[l].core)) == 4);
}

static void sc_remove_leader(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	EXPECT(change(c, l, RAFT_REMOVE, l) == 0);
	run(c, 50);
	EXPECT(st(c, l).state == RAFT_FOLLOWER); /* stepped down once committed */
	uint64_t nl = leader_within(c, 1500);
	EXPECT(nl != 0 && nl != l);
	run(c, 2000);
	EXPECT(sim_leader(S) == nl); /* the removed server stays quiet */
	EXPECT(raft_conf_find(raft_conf_get(S->nodes[nl].core), l) == NULL);
}

static void sc_removed_follower_learns_removal(struct sc *c)
{
	sc_init(c, 3, 3, false, false);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t f = l % 3 + 1;
	run(c, 100);
	EXPECT(change(c, l, RAFT_REMOVE, f) == 0);
	run(c, 100);
	/* it received the entry removing it, so it knows it is out ... */
	EXPECT(raft_conf_find(raft_conf_get(S->nodes[f].core), f) == NULL);
	uint64_t term = st(c, l).term;
	run(c, 3000);
	/* ... and stays quiet even without pre-vote or leases */
	EXPECT(st(c, f).term == term);
	EXPECT(sim_leader(S) == l && st(c, l).term == term);
}

static void sc_second_change_refused(struct sc *c)
{
	sc_init(c, 5, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	EXPECT(change(c, l, RAFT_ADD_LEARNER, 4) == 0);
	EXPECT(change(c, l, RAFT_ADD_LEARNER, 5) == KVFS_EBUSY);
	run(c, 100);
	EXPECT(change(c, l, RAFT_ADD_LEARNER, 5) == 0);
	EXPECT(change(c, l, RAFT_REMOVE, 99) == KVFS_EBUSY);
	run(c, 100);
	EXPECT(change(c, l, RAFT_REMOVE, 99) == KVFS_ECONFIG);
}

/* Thesis §4.1 erratum: l's change C0 + n5 stays on l alone; k wins the next
 * term among the others, and its first entry does not reach m. Had k removed
 * m at once, C0 - m would commit on k and the third voter y, while l could
 * still win C0 + n5 with m and the empty n5: disjoint majorities (the
 * committed-entries check fires if raft_change allows it). k first has to
 * commit an entry of its term on a majority of C0, so on m or l, and that
 * entry makes them refuse l. */
static void sc_change_waits_for_term_commit(struct sc *c)
{
	sc_init(c, 5, 4, false, false);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	sim_isolate(S, l);
	EXPECT(change(c, l, RAFT_ADD_VOTER, 5) == 0);
	uint64_t at = st(c, l).last_index;
	uint64_t k = l % 4 + 1, m = k % 4 + 1;
	c->drop_from = k; /* k's no-op (at the same index) does not reach m */
	c->drop_to = m;
	c->drop_index = at;
	force_campaign(c, k);
	run(c, 20);
	EXPECT(sim_leader(S) == k);
	EXPECT(st(c, k).last_index == at && st(c, k).commit < at);
	EXPECT(change(c, k, RAFT_REMOVE, m) == KVFS_EBUSY);
	c->drop_index = 0;
	run(c, 200);
	EXPECT(st(c, k).commit >= at);
	EXPECT(change(c, k, RAFT_REMOVE, m) == 0);
	run(c, 100);
	sim_heal(S);
	run(c, 500);
	/* l's uncommitted change was overwritten: it has k's configuration */
	EXPECT(sim_leader(S) == k);
	const struct raft_conf *lc = raft_conf_get(core(c, l));
	EXPECT(raft_conf_voters(lc) == 3);
	EXPECT(raft_conf_find(lc, 5) == NULL && raft_conf_find(lc, m) == NULL);
}

static void sc_crash_loses_unpersisted(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t f = l % 3 + 1;
	run(c, 100);
	S->nodes[f].crash_mode = 1; /* crash in the middle of the next fsync */
	uint64_t idx = propose_n(c, l, 1);
	run(c, 5);
	EXPECT(!S->nodes[f].up);
	EXPECT(S->nodes[f].disk.base_index + S->nodes[f].disk.n_log < idx);
	sim_restart(S, f);
	run(c, 300);
	EXPECT(S->nodes[f].applied >= idx);
	EXPECT(logs_equal(c, l, f));
}

static void sc_overwritten_proposal_detected(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	sim_isolate(S, l);
	uint64_t idx = 0, term = st(c, l).term;
	propose(c, l, "doomed", &idx, NULL);
	run(c, 1000);
	uint64_t nl = sim_leader(S);
	EXPECT(nl != 0 && nl != l);
	propose_n(c, nl, 3);
	sim_heal(S);
	run(c, 500);
	/* the driver's rule: the entry applied at idx has another term */
	EXPECT(S->nodes[l].applied >= idx);
	EXPECT(raft_term_at(S->nodes[l].core, idx) != term);
}

static void sc_restart_keeps_committed(struct sc *c)
{
	sc_init(c, 3, 3, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	uint64_t idx = propose_n(c, l, 5);
	run(c, 100);
	uint64_t term = st(c, l).term;
	for (uint64_t i = 1; i <= 3; i++)
		sim_crash(S, i);
	for (uint64_t i = 1; i <= 3; i++)
		sim_restart(S, i);
	l = leader_within(c, 1500);
	EXPECT(l != 0);
	run(c, 100);
	EXPECT(st(c, l).term > term);
	for (uint64_t i = 1; i <= 3; i++)
		EXPECT(S->nodes[i].applied > idx); /* replayed plus the new no-op */
}

static void sc_five_node_minority_partition(struct sc *c)
{
	sc_init(c, 5, 5, true, true);
	start_all(c);
	uint64_t l = leader_within(c, 1000);
	run(c, 100);
	uint64_t side[2] = {l, l % 5 + 1};
	sim_partition(S, side, 2);
	uint64_t x = 0;
	propose(c, l, "minority", &x, NULL);
	run(c, 1000);
	EXPECT(st(c, l).commit < x); /* two of five cannot commit */
	uint64_t nl = sim_leader(S);
	EXPECT(nl != 0 && nl != l && nl != side[1]);
	sim_heal(S);
	run(c, 500);
	EXPECT(logs_equal(c, nl, l));
}

/* ------------------------------------------------------------------------ */

struct scenario {
	const char *name;
	void (*fn)(struct sc *c);
	const char *proves;
};

static const struct scenario scenarios[] = {
    {"election_single_leader", sc_election_single_leader,
     "a fresh 3-node cluster elects exactly one leader, known to all, which commits its no-op"},
    {"election_split_vote", sc_election_split_vote,
     "two candidates splitting the votes of a term elect nobody, and a later term elects one"},
    {"prevote_blocks_rejoiner", sc_prevote_blocks_rejoiner,
     "with pre-vote, an isolated follower does not inflate its term and cannot depose the "
     "leader when it rejoins"},
    {"rejoiner_disrupts_without_prevote", sc_rejoiner_disrupts_without_prevote,
     "without pre-vote or leases, the same rejoining follower deposes the leader (what "
     "pre-vote prevents)"},
    {"check_quorum_step_down", sc_check_quorum_step_down,
     "an isolated leader steps down within two election timeouts and the majority elects "
     "another"},
    {"lease_ignores_disruptive_vote", sc_lease_ignores_disruptive_vote,
     "with check-quorum, servers that hear from the leader ignore a higher-term vote request"},
    {"replication_commits_everywhere", sc_replication_commits_everywhere,
     "proposals on the leader are committed and applied in order on every server"},
    {"figure7_short_followers", sc_figure7_short_followers,
     "Figure 7 (a),(b): followers missing entries are brought up to the leader's log"},
    {"figure7_extra_entries_truncated", sc_figure7_extra_entries_truncated,
     "Figure 7 (d),(f): uncommitted conflicting suffixes are truncated and replaced"},
    {"figure8_no_commit_by_counting", sc_figure8_no_commit_by_counting,
     "Figure 8: an entry of an earlier term on a majority is not committed until an entry of "
     "the leader's term is"},
    {"fast_backtracking", sc_fast_backtracking,
     "the conflict hint skips a whole conflicting term in one round trip"},
    {"pipelining_window", sc_pipelining_window,
     "appends are pipelined to a follower up to the in-flight window and no further"},
    {"batching", sc_batching, "appends carry at most max_batch_entries entries"},
    {"follower_infers_commit", sc_follower_infers_commit,
     "a follower holding an entry of its leader's term that the leader says is durable commits it (3 voters), and a read on the leader covers it"},
    {"commit_inferred_needs_no_append", sc_commit_inferred_needs_no_append,
     "followers told that the leader's copy is durable commit by themselves, without a "
     "commit-only append; with the leader's disk the slow one, all still apply"},
    {"lost_durable_commits_by_heartbeat", sc_lost_durable_commits_by_heartbeat,
     "a follower whose DURABLE is lost gets no commit-only append either, and commits from "
     "the next heartbeat"},
    {"no_inference_in_five_nodes", sc_no_inference_in_five_nodes,
     "with 5 voters a follower and its leader are no majority: no inference, no durable announcements"},
    {"leader_counts_itself_after_persist", sc_leader_counts_itself_after_persist,
     "the leader sends before its fsync but counts its own copy only once persisted"},
    {"read_index_batched", sc_read_index_batched,
     "reads received together share one heartbeat round and get the commit index"},
    {"read_index_on_follower", sc_read_index_on_follower,
     "a follower's read obtains the leader's commit index"},
    {"read_index_fails_on_step_down", sc_read_index_fails_on_step_down,
     "a read pending on a leader that loses leadership comes back as a failure, not never"},
    {"read_index_without_leader", sc_read_index_without_leader,
     "a read on a server that knows no leader fails at once"},
    {"propose_on_follower_refused", sc_propose_on_follower_refused,
     "a proposal on a follower is refused with the leader's id as hint"},
    {"transfer_leadership", sc_transfer_leadership,
     "TimeoutNow hands leadership to the chosen follower without an election timeout"},
    {"transfer_catches_up_target", sc_transfer_catches_up_target,
     "a lagging transfer target is first brought up to date, then told to campaign"},
    {"transfer_refuses_proposals", sc_transfer_refuses_proposals,
     "proposals are refused during a transfer, which is abandoned after an election timeout"},
    {"snapshot_install", sc_snapshot_install,
     "a follower whose next entry was compacted away receives the snapshot in chunks"},
    {"snapshot_resumes_after_lost_chunk", sc_snapshot_resumes_after_lost_chunk,
     "a lost snapshot chunk is sent again at its offset and the transfer completes"},
    {"learner_promotion", sc_learner_promotion,
     "a learner receives the log without counting for commit, and counts once promoted"},
    {"remove_leader", sc_remove_leader,
     "a leader removing itself steps down once the change commits and stays quiet"},
    {"removed_follower_learns_removal", sc_removed_follower_learns_removal,
     "a removed follower still receives the entry removing it, so it never campaigns"},
    {"second_change_refused", sc_second_change_refused,
     "a second membership change is refused until the first commits"},
    {"change_waits_for_term_commit", sc_change_waits_for_term_commit,
     "a new leader makes no membership change before an entry of its term commits (thesis "
     "4.1 erratum), so an older uncommitted change cannot form a disjoint majority"},
    {"crash_loses_unpersisted", sc_crash_loses_unpersisted,
     "a crash during fsync loses the unpersisted entries, which the leader sends again"},
    {"overwritten_proposal_detected", sc_overwritten_proposal_detected,
     "a deposed leader's uncommitted proposal is overwritten, visible as another term at its "
     "index"},
    {"restart_keeps_committed", sc_restart_keeps_committed,
     "a whole-cluster restart keeps every committed entry"},
    {"five_node_minority_partition", sc_five_node_minority_partition,
     "a leader cut off with one follower of five cannot commit; the majority side can"},
};

#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0;
	*len = 0;
	for (;;) {
		if (*len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		size_t n = fread(buf + *len, 1, cap - *len, f);
		*len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	return buf;
}

/* Runs one scenario; returns 0 if it passed. */
static int run_one(const struct scenario *sc, const char *golden_dir, bool update, bool print)
{
	struct sc c;
	memset(&c, 0, sizeof(c));
	c.name = sc->name;
	c.out = open_memstream(&c.buf, &c.len);
	fprintf(c.out, "# %s: %s\n", sc->name, sc->proves);
	sc->fn(&c);
	if (c.s.violations)
		expect(&c, false, c.s.first_violation, 0);
	sim_free(&c.s);
	fclose(c.out);
	int rv = c.failed ? 1 : 0;
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s.trace", golden_dir, sc->name);
	if (print)
		fwrite(c.buf, 1, c.len, stdout);
	if (update) {
		FILE *f = fopen(path, "w");
		if (!f || fwrite(c.buf, 1, c.len, f) != c.len) {
			perror(path);
			rv = 1;
		}
		if (f)
			fclose(f);
	} else if (!print) {
		size_t glen = 0;
		char *g = read_file(path, &glen);
		if (!g) {
			fprintf(stderr, "%s: no golden trace %s\n", sc->name, path);
			rv = 1;
		} else if (glen != c.len || memcmp(g, c.buf, glen) != 0) {
			size_t i = 0, line = 1;
			while (i < glen && i < c.len && g[i] == c.buf[i])
				line += g[i++] == '\n';
			fprintf(stderr,
				"%s: trace differs from %s at line %zu "
				"(raft-scenarios --print %s)\n",
				sc->name, path, line, sc->name);
			rv = 1;
		}
		free(g);
	}
	printf("%s %s: %s\n", rv ? "FAIL" : "ok  ", sc->name, sc->proves);
	free(c.buf);
	return rv;
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir");
	char dir[900];
	bool update = false, print = false;
	int first = 1, failed = 0, ran = 0;

	snprintf(dir, sizeof(dir), "%s/tests/sim/golden", top ? top : ".");
	if (argc > 2 && !strcmp(argv[1], "--update")) {
		update = true;
		snprintf(dir, sizeof(dir), "%s", argv[2]);
		first = 3;
	} else if (argc > 1 && !strcmp(argv[1], "--print")) {
		print = true;
		first = 2;
	}
	for (size_t i = 0; i < N_SCENARIOS; i++) {
		bool want = first >= argc;
		for (int a = first; a < argc; a++)
			want |= !strcmp(argv[a], scenarios[i].name);
		if (!want)
			continue;
		ran++;
		failed += run_one(&scenarios[i], dir, update, print);
	}
	/* Determinism: the same scenario twice gives a byte-identical trace. */
	if (!print && first >= argc) {
		char *a = NULL, *b = NULL;
		size_t la = 0, lb = 0;
		for (int k = 0; k < 2; k++) {
			struct sc c;
			memset(&c, 0, sizeof(c));
			c.name = "replay";
			c.out = open_memstream(k ? &b : &a, k ? &lb : &la);
			sc_transfer_catches_up_target(&c);
			sim_free(&c.s);
			fclose(c.out);
		}
		bool same = la == lb && memcmp(a, b, la) == 0;
		printf("%s deterministic_replay: the same seed and inputs give a byte-identical "
		       "trace\n",
		       same ? "ok  " : "FAIL");
		failed += !same;
		ran++;
		free(a);
		free(b);
	}
	printf("scenarios=%d failed=%d\n", ran, failed);
	return failed ? 1 : 0;
}
