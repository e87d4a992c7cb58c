/*
 * Unit tests of the Raft core's API contract on single cores, driven by hand
 * (no simulator): creation, the Ready/Advance record, proposals, reads,
 * compaction and argument checking. Multi-server behaviour is covered by the
 * scenarios and the simulator (tests/sim).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "raft/raft.h"

static unsigned trace_lines;

static void tracer(void *data, uint64_t id, int level, const char *line)
{
	(void)data;
	(void)id;
	(void)level;
	(void)line;
	trace_lines++;
}

static struct raft_config config(uint64_t id)
{
	struct raft_config c;
	memset(&c, 0, sizeof(c));
	c.id = id;
	c.seed = 42;
	c.election_ticks = 10;
	c.heartbeat_ticks = 2;
	c.pre_vote = true;
	c.check_quorum = true;
	c.tracer.level = RAFT_TRACE_DEBUG;
	c.tracer.emit = tracer;
	return c;
}

static struct raft_conf voters(unsigned n)
{
	struct raft_conf c;
	memset(&c, 0, sizeof(c));
	for (unsigned i = 0; i < n; i++) {
		c.servers[i].id = i + 1;
		c.servers[i].role = RAFT_VOTER;
		snprintf(c.servers[i].addr, RAFT_ADDR_MAX, "tcp://127.0.0.1:%u", 7001 + i);
	}
	c.n = n;
	return c;
}

static struct raft_core *make(uint64_t id, unsigned n)
{
	struct raft_config cfg = config(id);
	struct raft_init init;
	struct raft_core *c = NULL;
	memset(&init, 0, sizeof(init));
	init.conf = voters(n);
	assert_int_equal(raft_create(&cfg, &init, &c), 0);
	return c;
}

/* Runs ready/advance until idle; returns the number of committed entries seen. */
static size_t drain(struct raft_core *c, uint64_t *last_committed)
{
	struct raft_update u;
	size_t n = 0;
	while (raft_ready(c, &u)) {
		n += u.n_committed;
		if (u.n_committed && last_committed)
			*last_committed = u.committed[u.n_committed - 1].index;
		raft_advance(c, &u);
	}
	return n;
}

static struct raft_core *single_leader(void)
{
	struct raft_core *c = make(1, 1);
	struct raft_status st;
	for (int i = 0; i < 20; i++)
		raft_tick(c);
	drain(c, NULL);
	raft_status(c, &st);
	assert_int_equal(st.state, RAFT_LEADER);
	return c;
}

/* Creation rejects invalid configurations and inconsistent persisted state. */
static void test_create_validation(void **state)
{
	struct raft_config cfg = config(1);
	struct raft_init init;
	struct raft_core *c = NULL;
	struct raft_entry es[2] = {{.term = 1, .index = 1, .type = RAFT_ENTRY_EMPTY},
				   {.term = 1, .index = 3, .type = RAFT_ENTRY_EMPTY}};
	(void)state;
	memset(&init, 0, sizeof(init));
	init.conf = voters(3);
	cfg.id = 0;
	assert_int_equal(raft_create(&cfg, &init, &c), -EINVAL);
	cfg = config(1);
	cfg.heartbeat_ticks = 10;
	assert_int_equal(raft_create(&cfg, &init, &c), -EINVAL);
	cfg = config(1);
	init.hs.term = 1;
	init.entries = es;
	init.n_entries = 2; /* index gap */
	assert_int_equal(raft_create(&cfg, &init, &c), -EINVAL);
	es[1].index = 2;
	es[1].term = 2; /* term beyond the hard state */
	assert_int_equal(raft_create(&cfg, &init, &c), -EINVAL);
	init.hs.term = 0;
	init.hs.vote = 2; /* a vote without a term */
	assert_int_equal(raft_create(&cfg, &init, &c), -EINVAL);
}

/* A restarted core resumes from its hard state, snapshot and entries. */
static void test_create_from_persisted_state(void **state)
{
	struct raft_config cfg = config(2);
	struct raft_init init;
	struct raft_core *c = NULL;
	struct raft_status st;
	struct raft_entry es[2] = {
	    {.term = 3, .index = 11, .type = RAFT_ENTRY_NORMAL, .data = "ab", .len = 2},
	    {.term = 4, .index = 12, .type = RAFT_ENTRY_EMPTY}};
	(void)state;
	memset(&init, 0, sizeof(init));
	init.hs.term = 5;
	init.hs.vote = 3;
	init.snap.index = 10;
	init.snap.term = 2;
	init.snap.conf = voters(3);
	init.entries = es;
	init.n_entries = 2;
	assert_int_equal(raft_create(&cfg, &init, &c), 0);
	raft_status(c, &st);
	assert_int_equal(st.term, 5);
	assert_int_equal(st.vote, 3);
	assert_int_equal(st.commit, 10);
	assert_int_equal(st.first_index, 11);
	assert_int_equal(st.last_index, 12);
	assert_int_equal(raft_term_at(c, 10), 2);
	assert_int_equal(raft_term_at(c, 12), 4);
	assert_int_equal(raft_term_at(c, 13), 0);
	assert_int_equal(raft_conf_voters(raft_conf_get(c)), 3);
	struct raft_update u;
	assert_false(raft_ready(c, &u)); /* nothing new to persist */
	raft_destroy(c);
}

/* A single voter elects itself and commits its no-op only after its own persist. */
static void test_single_node_commit_after_persist(void **state)
{
	struct raft_core *c = make(1, 1);
	struct raft_update u;
	struct raft_status st;
	(void)state;
	for (int i = 0; i < 20; i++)
		raft_tick(c);
	assert_true(raft_ready(c, &u));
	assert_true(u.has_hard_state);
	assert_int_equal(u.hs.term, 1);
	assert_int_equal(u.hs.vote, 1);
	assert_int_equal(u.n_entries, 1);
	assert_int_equal(u.entries[0].type, RAFT_ENTRY_EMPTY);
	assert_int_equal(u.n_committed, 0);
	raft_status(c, &st);
	assert_int_equal(st.commit, 0);
	raft_advance(c, &u);
	raft_status(c, &st);
	assert_int_equal(st.commit, 1);
	assert_true(raft_ready(c, &u));
	assert_int_equal(u.n_committed, 1);
	raft_advance(c, &u);
	raft_status(c, &st);
	assert_int_equal(st.applied, 1);
	assert_false(raft_ready(c, &u));
	raft_destroy(c);
}

/* Proposals are copied, get consecutive indexes and are applied in order. */
static void test_propose_and_apply(void **state)
{
	struct raft_core *c = single_leader();
	uint64_t idx = 0, term = 0, last = 0;
	char buf[4] = "abc";
	(void)state;
	assert_int_equal(raft_propose(c, buf, 3, &idx, &term, NULL), 0);
	assert_int_equal(idx, 2);
	assert_int_equal(term, 1);
	buf[0] = 'X'; /* the core holds its own copy */
	const void *d[2] = {"d", "ef"};
	size_t l[2] = {1, 2};
	uint64_t first = 0;
	assert_int_equal(raft_propose_batch(c, d, l, 2, &first, NULL, NULL), 0);
	assert_int_equal(first, 3);
	struct raft_update u;
	assert_true(raft_ready(c, &u));
	assert_int_equal(u.n_entries, 3);
	assert_memory_equal(u.entries[0].data, "abc", 3);
	raft_advance(c, &u);
	assert_true(raft_ready(c, &u));
	assert_int_equal(u.n_committed, 3);
	assert_memory_equal(u.committed[2].data, "ef", 2);
	raft_advance(c, &u);
	assert_int_equal(drain(c, &last), 0);
	assert_int_equal(raft_propose_batch(c, d, l, 0, NULL, NULL, NULL), -EINVAL);
	raft_destroy(c);
}

/* A follower refuses proposals, changes and transfers with a leader hint. */
static void test_follower_refuses(void **state)
{
	struct raft_core *c = make(1, 3);
	uint64_t hint = 99;
	(void)state;
	assert_int_equal(raft_propose(c, "x", 1, NULL, NULL, &hint), KVFS_ENOTLEADER);
	assert_int_equal(hint, 0);
	assert_int_equal(raft_change(c, RAFT_ADD_LEARNER, 4, "a", NULL), KVFS_ENOTLEADER);
	assert_int_equal(raft_transfer(c, 2), KVFS_ENOTLEADER);
	assert_int_equal(raft_read_index(c, 1), KVFS_ENOLEADER);
	uint64_t m, n;
	assert_int_equal(raft_progress(c, 2, &m, &n), KVFS_ENOTLEADER);
	raft_destroy(c);
}

/* A single-voter leader answers a read at once with its commit index. */
static void test_read_index_single(void **state)
{
	struct raft_core *c = single_leader();
	struct raft_update u;
	(void)state;
	assert_int_equal(raft_read_index(c, 77), 0);
	assert_true(raft_ready(c, &u));
	assert_int_equal(u.n_reads, 1);
	assert_int_equal(u.reads[0].ctx, 77);
	assert_int_equal(u.reads[0].index, 1);
	assert_int_equal(u.reads[0].status, 0);
	raft_advance(c, &u);
	raft_destroy(c);
}

/* Malformed messages are refused and change nothing. */
static void test_step_malformed(void **state)
{
	struct raft_core *c = make(1, 3);
	struct raft_msg m;
	(void)state;
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_APPEND;
	m.from = 2;
	m.to = 3; /* not us */
	assert_int_equal(raft_step(c, &m), KVFS_EPROTO);
	m.to = 1;
	m.type = 0;
	assert_int_equal(raft_step(c, &m), KVFS_EPROTO);
	m.type = RAFT_MSG_TYPE_MAX;
	assert_int_equal(raft_step(c, &m), KVFS_EPROTO);
	m.type = RAFT_MSG_APPEND;
	m.from = 1;
	assert_int_equal(raft_step(c, &m), KVFS_EPROTO);
	m.from = 2;
	m.n_entries = 1; /* entries missing */
	assert_int_equal(raft_step(c, &m), KVFS_EPROTO);
	raft_destroy(c);
}

/* A configuration entry this version cannot decode (a later format) is
 * refused with its append, like an InstallSnapshot's membership, and a log
 * holding one is refused at creation: taking it while ignoring the change
 * would leave the server in a membership that no longer is. The same
 * append with a readable configuration is taken. */
static void test_unreadable_configuration_refused(void **state)
{
	struct raft_core *c = make(1, 3);
	struct raft_status st;
	uint8_t good[RAFT_CONF_ENCODED_MAX], bad[RAFT_CONF_ENCODED_MAX];
	struct raft_conf four = voters(4);
	int n = raft_conf_encode(&four, good, sizeof good);
	(void)state;
	assert_true(n > 0);
	memcpy(bad, good, (size_t)n);
	bad[0] = 9; /* an unknown format version */
	struct raft_entry e = {.term = 1, .index = 1, .type = RAFT_ENTRY_CONF, .data = bad,
			       .len = (size_t)n};
	struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 2, .to = 1, .term = 1,
			     .entries = &e, .n_entries = 1};
	assert_int_equal(raft_step(c, &m), KVFS_EPROTO);
	raft_status(c, &st);
	assert_int_equal(st.last_index, 0);
	assert_int_equal(st.term, 0); /* refused before anything, the term included */
	e.data = good;
	assert_int_equal(raft_step(c, &m), 0);
	raft_status(c, &st);
	assert_int_equal(st.last_index, 1);
	assert_int_equal(raft_conf_voters(raft_conf_get(c)), 4);
	raft_destroy(c);

	struct raft_config cfg = config(1);
	struct raft_init init;
	memset(&init, 0, sizeof(init));
	init.hs.term = 1;
	init.conf = voters(3);
	init.entries = &e;
	init.n_entries = 1;
	assert_int_equal(raft_create(&cfg, &init, &c), 0);
	raft_destroy(c);
	e.data = bad;
	c = NULL;
	assert_int_equal(raft_create(&cfg, &init, &c), -EINVAL);
	assert_null(c);
}

/* A vote request with an up-to-date log is granted once per term, after persist. */
static void test_vote_granted_once(void **state)
{
	struct raft_core *c = make(1, 3);
	struct raft_msg m;
	struct raft_update u;
	(void)state;
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_VOTE;
	m.from = 2;
	m.to = 1;
	m.term = 1;
	assert_int_equal(raft_step(c, &m), 0);
	m.from = 3;
	assert_int_equal(raft_step(c, &m), 0);
	assert_true(raft_ready(c, &u));
	assert_true(u.has_hard_state);
	assert_int_equal(u.hs.vote, 2);
	assert_int_equal(u.n_msgs_early, 0); /* answers wait for the persist */
	assert_int_equal(u.n_msgs, 2);
	assert_int_equal(u.msgs[0].reject, 0);
	assert_int_equal(u.msgs[1].reject, 1);
	raft_advance(c, &u);
	raft_destroy(c);
}

/* A follower appends entries, acknowledges after persist and truncates conflicts. */
static void test_follower_append_and_truncate(void **state)
{
	struct raft_core *c = make(1, 3);
	struct raft_entry es[3] = {
	    {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .data = "a", .len = 1},
	    {.term = 1, .index = 2, .type = RAFT_ENTRY_NORMAL, .data = "b", .len = 1},
	    {.term = 1, .index = 3, .type = RAFT_ENTRY_NORMAL, .data = "c", .len = 1}};
	struct raft_msg m;
	struct raft_update u;
	(void)state;
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_APPEND;
	m.from = 2;
	m.to = 1;
	m.term = 1;
	m.entries = es;
	m.n_entries = 3;
	m.commit = 1;
	assert_int_equal(raft_step(c, &m), 0);
	assert_true(raft_ready(c, &u));
	assert_int_equal(u.n_entries, 3);
	assert_int_equal(u.n_msgs, 1);
	assert_int_equal(u.msgs[0].type, RAFT_MSG_APPEND_RESP);
	assert_int_equal(u.msgs[0].index, 3);
	assert_int_equal(u.n_committed, 1);
	raft_advance(c, &u);
	/* a new leader of term 2 overwrites index 2.. */
	struct raft_entry e2 = {
	    .term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL, .data = "B", .len = 1};
	m.from = 3;
	m.term = 2;
	m.index = 1;
	m.log_term = 1;
	m.entries = &e2;
	m.n_entries = 1;
	assert_int_equal(raft_step(c, &m), 0);
	assert_true(raft_ready(c, &u));
	assert_int_equal(u.truncate_from, 2);
	assert_int_equal(u.n_entries, 1);
	assert_int_equal(u.entries[0].term, 2);
	raft_advance(c, &u);
	struct raft_status st;
	raft_status(c, &st);
	assert_int_equal(st.last_index, 2);
	/* a mismatching prev gets a rejection with a hint */
	m.index = 5;
	m.log_term = 2;
	m.n_entries = 0;
	m.entries = NULL;
	assert_int_equal(raft_step(c, &m), 0);
	assert_true(raft_ready(c, &u));
	assert_int_equal(u.msgs[0].reject, 1);
	assert_int_equal(u.msgs[0].hint_index, 3);
	raft_advance(c, &u);
	raft_destroy(c);
}

/* Steps m into c, runs it to idle, returns its status. */
static struct raft_status stepped(struct raft_core *c, const struct raft_msg *m)
{
	struct raft_status st;
	assert_int_equal(raft_step(c, m), 0);
	drain(c, NULL);
	raft_status(c, &st);
	return st;
}

/* A follower knows how far its leader has committed even where its own
 * log does not reach (raft_status().leader_commit), but only what covers
 * every write acknowledged before the leader's term: a heartbeat's index
 * (the leader sends it once its own term's entry is committed), or an
 * append's commit or a snapshot's index of the current term; 0 before
 * this term's leader has said, and a leader reports its own commit. */
static void test_leader_commit_known(void **state)
{
	struct raft_core *c = make(1, 3);
	struct raft_entry e1 = {
	    .term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .data = "a", .len = 1};
	struct raft_entry e2 = {
	    .term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL, .data = "b", .len = 1};
	struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 2, .to = 1, .term = 1};
	struct raft_status st;
	(void)state;
	raft_status(c, &st);
	assert_int_equal(st.leader_commit, 0);
	m.entries = &e1;
	m.n_entries = 1;
	m.commit = 40; /* beyond what it holds: not known to be of this term */
	st = stepped(c, &m);
	assert_int_equal(st.commit, 1);
	assert_int_equal(st.leader_commit, 0);
	m.commit = 1; /* entry 1 is of this term */
	assert_int_equal(stepped(c, &m).leader_commit, 1);
	/* A heartbeat commits only what the follower is known to hold
	 * (commit), and tells how far the leader is (index); a lower one
	 * (reordered) does not lower what is known. */
	m = (struct raft_msg){.type = RAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 1};
	m.commit = 1;
	m.index = 55;
	st = stepped(c, &m);
	assert_int_equal(st.commit, 1);
	assert_int_equal(st.leader_commit, 55);
	m.index = 30;
	assert_int_equal(stepped(c, &m).leader_commit, 55);
	/* A new term's leader starts from what it says: nothing before its
	 * own term's entry is committed (index 0, and entry 1 is of term 1). */
	m = (struct raft_msg){.type = RAFT_MSG_HEARTBEAT, .from = 3, .to = 1, .term = 2};
	m.commit = 1;
	st = stepped(c, &m);
	assert_int_equal(st.leader, 3);
	assert_int_equal(st.leader_commit, 0);
	m = (struct raft_msg){.type = RAFT_MSG_APPEND, .from = 3, .to = 1, .term = 2};
	m.index = 1;
	m.log_term = 1;
	m.entries = &e2;
	m.n_entries = 1;
	m.commit = 1;
	assert_int_equal(stepped(c, &m).leader_commit, 0);
	m.index = 2;
	m.log_term = 2;
	m.n_entries = 0;
	m.entries = NULL;
	m.commit = 2; /* its own term's entry: an older leader's heartbeats */
	assert_int_equal(stepped(c, &m).leader_commit, 2); /* count this way too */
	/* Forgotten (the node has not heard its leader for long): 0 until
	 * the leader says again. */
	raft_forget_leader_commit(c);
	raft_status(c, &st);
	assert_int_equal(st.leader_commit, 0);
	m = (struct raft_msg){.type = RAFT_MSG_HEARTBEAT, .from = 3, .to = 1, .term = 2};
	m.index = 7;
	st = stepped(c, &m);
	assert_int_equal(st.leader_commit, 7);
	/* Once it campaigns, no leader: nothing known. */
	for (int i = 0; i < 40 && st.state == RAFT_FOLLOWER; i++) {
		raft_tick(c);
		drain(c, NULL);
		raft_status(c, &st);
	}
	assert_int_not_equal(st.state, RAFT_FOLLOWER);
	assert_int_equal(st.leader_commit, 0);
	raft_destroy(c);

	/* A snapshot's index counts when it is of the current term. */
	c = make(1, 3);
	struct raft_conf conf = voters(3);
	uint8_t cbuf[RAFT_CONF_ENCODED_MAX];
	int clen = raft_conf_encode(&conf, cbuf, sizeof cbuf);
	assert_true(clen > 0);
	m = (struct raft_msg){.type = RAFT_MSG_SNAPSHOT, .from = 2, .to = 1, .term = 3};
	m.snap_index = 70;
	m.snap_term = 2;
	m.conf_data = cbuf;
	m.conf_len = (size_t)clen;
	assert_int_equal(stepped(c, &m).leader_commit, 0);
	m.snap_index = 90;
	m.snap_term = 3;
	assert_int_equal(stepped(c, &m).leader_commit, 90);
	raft_destroy(c);

	/* A leader: its own commit index. */
	c = single_leader();
	uint64_t idx, term, hint;
	assert_int_equal(raft_propose(c, "x", 1, &idx, &term, &hint), 0);
	drain(c, NULL);
	raft_status(c, &st);
	assert_int_equal(st.leader_commit, st.commit);
	assert_true(st.commit >= idx);
	raft_destroy(c);
}

/* Collects the messages to `to` of type `type` that ready hands out. */
static size_t sent_to(struct raft_core *c, uint64_t to, uint8_t type, struct raft_msg *last)
{
	struct raft_update u;
	size_t n = 0;
	while (raft_ready(c, &u)) {
		for (size_t i = 0; i < u.n_msgs_early + u.n_msgs; i++) {
			const struct raft_msg *x =
			    i < u.n_msgs_early ? &u.msgs_early[i] : &u.msgs[i - u.n_msgs_early];
			if (x->to == to && x->type == type) {
				n++;
				if (last)
					*last = *x;
			}
		}
		raft_advance(c, &u);
	}
	return n;
}

/* A single leader with a learner, 2, that has acknowledged everything; st
 * is the leader's status then. */
static struct raft_core *leader_with_caught_up_learner(struct raft_status *st)
{
	struct raft_core *c = single_leader();
	uint64_t match = 0, next = 0;
	assert_int_equal(raft_change(c, RAFT_ADD_LEARNER, 2, "tcp://h:1", NULL), 0);
	drain(c, NULL);
	raft_status(c, st);
	struct raft_msg m = {.type = RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = st->term};
	m.index = st->last_index; /* it holds everything */
	assert_int_equal(raft_step(c, &m), 0);
	drain(c, NULL);
	assert_int_equal(raft_progress(c, 2, &match, &next), 0);
	assert_int_equal(match, st->last_index);
	return c;
}

/* A member added to an idle cluster whose first (empty) probe was lost is
 * probed again at its next heartbeat answer: with nothing written after the
 * configuration entry, no append would carry entries to it, and it never
 * caught up until the next write. */
static void test_lost_probe_of_a_new_member_is_sent_again(void **state)
{
	struct raft_core *c = single_leader();
	struct raft_status st;
	(void)state;
	assert_int_equal(raft_change(c, RAFT_ADD_LEARNER, 2, "tcp://h:1", NULL), 0);
	drain(c, NULL); /* everything sent to 2 is lost */
	raft_status(c, &st);
	struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = st.term};
	assert_int_equal(raft_step(c, &m), 0);
	assert_int_equal(sent_to(c, 2, RAFT_MSG_APPEND, NULL), 1);
	raft_destroy(c);
}

/* Learner 2 answers a heartbeat saying it has entry 1 only (it lost its
 * log): the leader probes it from there, its match unknown (0) until the
 * probe succeeds. Returns the probe. */
static struct raft_msg answer_lost_log(struct raft_core *c, uint64_t term)
{
	struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = term};
	struct raft_msg got;
	uint64_t match = 1, next = 0;
	m.reject = 1;
	m.index = 1;
	assert_int_equal(raft_step(c, &m), 0);
	assert_int_equal(sent_to(c, 2, RAFT_MSG_APPEND, &got), 1);
	assert_int_equal(got.index, 1);
	assert_int_equal(raft_progress(c, 2, &match, &next), 0);
	assert_int_equal(match, 0);
	return got;
}

/* A follower whose log lost entries it had acknowledged (a wiped data
 * directory) says so in its heartbeat answer, and the leader starts again
 * from what it has instead of waiting for a write that never comes. */
static void test_member_that_lost_its_log_is_replicated_again(void **state)
{
	(void)state;
	/* Follower side: a heartbeat's commit past the log is answered with
	 * reject and the last index. */
	struct raft_core *c = make(1, 3);
	struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 1};
	struct raft_msg got;
	m.commit = 0;
	assert_int_equal(raft_step(c, &m), 0);
	assert_int_equal(sent_to(c, 2, RAFT_MSG_HEARTBEAT_RESP, &got), 1);
	assert_int_equal(got.reject, 0);
	m.commit = 5;
	assert_int_equal(raft_step(c, &m), 0);
	assert_int_equal(sent_to(c, 2, RAFT_MSG_HEARTBEAT_RESP, &got), 1);
	assert_int_equal(got.reject, 1);
	assert_int_equal(got.index, 0);
	raft_destroy(c);

	/* Leader side: it starts again from what the member has. */
	struct raft_status st;
	uint64_t match = 0, next = 0;
	c = leader_with_caught_up_learner(&st);
	/* It says it has entry 1 only: probed from there with everything
	 * after it, and nothing is committed to it meanwhile. */
	got = answer_lost_log(c, st.term);
	assert_int_equal(got.n_entries, st.last_index - 1);
	/* A reject that says no less than its match changes nothing. */
	m = (struct raft_msg){.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = st.term};
	m.reject = 1;
	m.index = 5;
	assert_int_equal(raft_step(c, &m), 0);
	assert_int_equal(raft_progress(c, 2, &match, &next), 0);
	assert_int_equal(next, 2);
	raft_destroy(c);
}

/* A member removed and added again before the leader stopped replicating
 * to it (two election timeouts) starts from an unknown match, like any new
 * member: it may be a wiped machine under the old id, and its old match
 * would be counted for entries it no longer has. */
static void test_member_added_again_while_leaving_starts_afresh(void **state)
{
	struct raft_status st;
	uint64_t match = 0, next = 0;
	(void)state;
	struct raft_core *c = leader_with_caught_up_learner(&st);

	assert_int_equal(raft_change(c, RAFT_REMOVE, 2, NULL, NULL), 0);
	drain(c, NULL);
	/* still replicated to: it has not got the entry that removes it */
	assert_int_equal(raft_progress(c, 2, &match, &next), 0);
	assert_int_equal(match, st.last_index);

	assert_int_equal(raft_change(c, RAFT_ADD_LEARNER, 2, "tcp://h:1", NULL), 0);
	drain(c, NULL);
	assert_int_equal(raft_progress(c, 2, &match, &next), 0);
	assert_int_equal(match, 0);
	raft_destroy(c);
}

/* A probe rejected at the index the member had acknowledged (a late copy of
 * an earlier rejection, or a member that lost its log) is not answered with
 * the same probe again, which went on at every answer; the member's
 * heartbeat answer tells whether it lost its log (the test above). */
static void test_probe_rejected_at_the_match_is_not_sent_again(void **state)
{
	struct raft_status st;
	struct raft_msg got;
	uint64_t match = 0, next = 0;
	(void)state;
	struct raft_core *c = leader_with_caught_up_learner(&st);
	uint64_t acked = st.last_index;
	/* A write whose append is lost; two heartbeat rounds without
	 * progress make the leader probe again from the match. */
	assert_int_equal(raft_propose(c, "x", 1, NULL, NULL, NULL), 0);
	drain(c, NULL);
	struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = st.term};
	assert_int_equal(raft_step(c, &m), 0);
	drain(c, NULL);
	assert_int_equal(raft_step(c, &m), 0);
	assert_int_equal(sent_to(c, 2, RAFT_MSG_APPEND, &got), 1);
	assert_int_equal(got.index, acked);
	/* A rejection at that index: nothing is sent again, the match stays. */
	m = (struct raft_msg){.type = RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = st.term};
	m.reject = 1;
	m.index = acked;
	m.hint_index = 2;
	assert_int_equal(raft_step(c, &m), 0);
	assert_int_equal(sent_to(c, 2, RAFT_MSG_APPEND, NULL), 0);
	assert_int_equal(raft_progress(c, 2, &match, &next), 0);
	assert_int_equal(match, acked);
	/* Its heartbeat answer then says it lost its log: probed from there. */
	answer_lost_log(c, st.term);
	raft_destroy(c);
}

/* Compaction is bounded by the applied index and keeps the snapshot term. */
static void test_compact(void **state)
{
	struct raft_core *c = single_leader();
	struct raft_status st;
	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_equal(raft_propose(c, "x", 1, NULL, NULL, NULL), 0);
	drain(c, NULL);
	assert_int_equal(raft_compact(c, 12, 0), -EINVAL);
	assert_int_equal(raft_compact(c, 8, 2), 0);
	raft_status(c, &st);
	assert_int_equal(st.snap_index, 8);
	assert_int_equal(st.first_index, 7);
	assert_int_equal(raft_term_at(c, 8), 1);
	assert_int_equal(raft_compact(c, 5, 0), -EINVAL);
	assert_int_equal(raft_snapshot_installed(c, 8), -EINVAL);
	raft_destroy(c);
}

/* Membership changes on a single voter: learner added, second change and bad ones refused. */
static void test_change_rules(void **state)
{
	struct raft_core *c = single_leader();
	uint64_t idx = 0;
	(void)state;
	assert_int_equal(raft_change(c, RAFT_REMOVE, 1, NULL, NULL), KVFS_ECONFIG);
	assert_int_equal(raft_change(c, RAFT_PROMOTE, 1, NULL, NULL), KVFS_ECONFIG);
	assert_int_equal(raft_change(c, RAFT_ADD_LEARNER, 0, "x", NULL), KVFS_ECONFIG);
	assert_int_equal(raft_change(c, RAFT_ADD_LEARNER, 1, "x", NULL), KVFS_ECONFIG);
	assert_int_equal(raft_change(c, RAFT_ADD_LEARNER, 2, "tcp://h:1", &idx), 0);
	assert_int_equal(idx, 2);
	assert_int_equal(raft_change(c, RAFT_ADD_LEARNER, 3, "tcp://h:2", NULL), KVFS_EBUSY);
	struct raft_update u;
	assert_true(raft_ready(c, &u));
	assert_true(u.conf_changed);
	raft_advance(c, &u);
	drain(c, NULL);
	const struct raft_conf *conf = raft_conf_get(c);
	assert_int_equal(conf->n, 2);
	assert_int_equal(raft_conf_find(conf, 2)->role, RAFT_LEARNER);
	uint64_t m = 0, n = 0;
	assert_int_equal(raft_progress(c, 2, &m, &n), 0);
	assert_int_equal(raft_progress(c, 1, &m, &n), 0);
	assert_int_equal(raft_progress(c, 9, &m, &n), KVFS_ECONFIG);
	assert_int_equal(raft_transfer(c, 2), KVFS_ECONFIG); /* a learner cannot lead */
	assert_int_equal(raft_transfer(c, 1), KVFS_ECONFIG);
	assert_int_equal(raft_change(c, 99, 2, NULL, NULL), KVFS_ECONFIG);
	raft_destroy(c);
}

/* A leader refuses proposals beyond max_uncommitted bytes until some commit. */
static void test_max_uncommitted(void **state)
{
	struct raft_config cfg = config(1);
	struct raft_init init;
	struct raft_core *c = NULL;
	(void)state;
	memset(&init, 0, sizeof(init));
	init.conf = voters(1);
	cfg.max_uncommitted = 10;
	assert_int_equal(raft_create(&cfg, &init, &c), 0);
	for (int i = 0; i < 20; i++)
		raft_tick(c);
	drain(c, NULL);
	assert_int_equal(raft_propose(c, "12345678", 8, NULL, NULL, NULL), 0);
	assert_int_equal(raft_propose(c, "12345678", 8, NULL, NULL, NULL), KVFS_EBUSY);
	drain(c, NULL); /* persisted, hence committed */
	assert_int_equal(raft_propose(c, "12345678901234", 14, NULL, NULL, NULL), 0);
	raft_destroy(c);
}

/* Names of states and message types are printable; the tracer was used. */
static void test_names_and_tracer(void **state)
{
	(void)state;
	assert_string_equal(raft_state_name(RAFT_LEADER), "leader");
	assert_string_equal(raft_state_name(RAFT_PRECANDIDATE), "precandidate");
	assert_string_equal(raft_state_name(RAFT_CANDIDATE), "candidate");
	assert_string_equal(raft_state_name(RAFT_FOLLOWER), "follower");
	assert_string_equal(raft_state_name((enum raft_state)0), "?");
	assert_string_equal(raft_msg_name(RAFT_MSG_APPEND), "append");
	assert_string_equal(raft_msg_name(200), "?");
	assert_true(trace_lines > 0);
	raft_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_validation),
	    cmocka_unit_test(test_create_from_persisted_state),
	    cmocka_unit_test(test_single_node_commit_after_persist),
	    cmocka_unit_test(test_propose_and_apply),
	    cmocka_unit_test(test_follower_refuses),
	    cmocka_unit_test(test_read_index_single),
	    cmocka_unit_test(test_step_malformed),
	    cmocka_unit_test(test_unreadable_configuration_refused),
	    cmocka_unit_test(test_vote_granted_once),
	    cmocka_unit_test(test_follower_append_and_truncate),
	    cmocka_unit_test(test_leader_commit_known),
	    cmocka_unit_test(test_lost_probe_of_a_new_member_is_sent_again),
	    cmocka_unit_test(test_member_that_lost_its_log_is_replicated_again),
	    cmocka_unit_test(test_member_added_again_while_leaving_starts_afresh),
	    cmocka_unit_test(test_probe_rejected_at_the_match_is_not_sent_again),
	    cmocka_unit_test(test_compact),
	    cmocka_unit_test(test_change_rules),
	    cmocka_unit_test(test_max_uncommitted),
	    cmocka_unit_test(test_names_and_tracer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
