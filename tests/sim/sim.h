/*
 * The deterministic cluster simulator shared by kvfs-sim (random faults) and
 * the scripted scenario tests: N Raft cores over a simulated network and
 * simulated storage, plus a small key-value state machine and the safety
 * invariant checks. Everything is driven by one event queue in simulated
 * microseconds and one PRNG; nothing reads a clock.
 *
 * Model of one node (what kvfsd's node loop does):
 *   - a tick every tick_us;
 *   - after each input it takes a record (raft_ready), sends the "early"
 *     messages at once, and is busy for a simulated fsync; when the fsync
 *     completes the record becomes durable, the late messages leave, the
 *     committed entries are applied, and raft_advance is called;
 *   - while busy or paused, inputs wait in an inbox;
 *   - a crash drops the core, the inbox and every not-yet-durable write; a
 *     restart rebuilds the core from the durable state only.
 */
#ifndef KVFS_TESTS_SIM_H
#define KVFS_TESTS_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "raft/raft.h"
#include "tests/lib/lincheck.h"

#define SIM_MAX_NODES 7
#define SIM_KEYS      4

struct sim;
struct sim_term;

/* One durable log entry of a node, with the chain hash of the log prefix it
 * ends (used by the log-matching and state-machine-safety checks). */
struct sim_entry {
	struct raft_entry e; /* data owned */
	uint64_t hash;
};

/* The simulated disk of one node. */
struct sim_disk {
	struct raft_hard_state hs;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	size_t snap_len;
	uint64_t snap_hash;    /* chain hash at snap.index */
	struct sim_entry *log; /* consecutive, log[0].e.index == first */
	size_t n_log, cap_log;
	uint64_t base_hash; /* chain hash of the entry before log[0] */
	uint64_t base_index;
	bool bootstrap; /* has the initial membership */
};

struct sim_pkt;

struct sim_req; /* a client request held by a node */

struct sim_node {
	uint64_t id;
	bool up, paused, busy;
	struct raft_core *core;
	struct sim_disk disk;
	struct raft_update u; /* record in progress while busy */
	/* inbox while busy/paused */
	struct sim_pkt **inbox;
	size_t n_inbox, cap_inbox;
	unsigned pending_ticks;
	struct sim_req **reqs_in;
	size_t n_reqs_in, cap_reqs_in;
	/* incoming snapshot file */
	uint8_t *in_snap;
	size_t in_len, in_cap;
	uint64_t in_index;
	uint64_t install_pending; /* index to report installed */
	/* state machine (volatile, rebuilt from the snapshot on restart) */
	int64_t kv[SIM_KEYS];
	uint64_t applied;
	uint64_t applied_hash;
	struct raft_conf applied_conf; /* membership as of applied */
	/* invariant bookkeeping */
	uint64_t last_commit;
	uint64_t life;	/* restart counter */
	int crash_mode; /* 0 none, 1 crash instead of the next fsync,
			   2 crash right after persisting a vote for another */
	unsigned snap_every, snap_keep, chunk;
	unsigned disk_extra_us; /* a slow disk */
	/* requests waiting at this node */
	struct sim_req **waiting;
	size_t n_waiting, cap_waiting;
};

struct sim_opts {
	uint64_t seed;
	unsigned nodes;	  /* cores created (ids 1..nodes) */
	unsigned initial; /* voters at bootstrap (ids 1..initial) */
	unsigned tick_us;
	unsigned election_ticks, heartbeat_ticks;
	unsigned net_min_us, net_max_us; /* delay range */
	unsigned disk_min_us, disk_max_us;
	bool trace; /* print the readable trace */
	FILE *trace_out;
	int trace_level;
	bool pre_vote, check_quorum;
	unsigned clients;
	bool snapshots;
	unsigned max_batch_entries, max_inflight;
	size_t max_uncommitted;
};

struct sim_stats {
	uint64_t msgs, delivered, dropped, records, applied_entries;
	uint64_t ops_ok, ops_failed, ops_unknown, elections, snap_installs;
};

struct sim {
	struct sim_opts o;
	uint64_t now;
	uint64_t rng;
	struct sim_node nodes[SIM_MAX_NODES + 1]; /* index = id */
	/* network faults */
	bool cut[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1]; /* cut[a][b]: a->b dropped */
	unsigned loss_pct, dup_pct, spike_pct;
	bool crash_next_leader; /* fault: the next new leader crashes soon */
	bool crash_next_ok;	/* faults still on (delayed crashes happen) */
	bool check_committed;	/* check that committed entries are unlosable */
	/* event queue */
	struct sim_ev *heap;
	size_t n_heap, cap_heap;
	uint64_t ev_seq;
	/* invariants */
	struct sim_term *terms; /* per term: leader, what it committed */
	size_t n_terms;
	uint64_t *ledger; /* applied index -> chain hash (0 = unknown) */
	uint64_t *ledger_term;
	size_t n_ledger;
	struct sim_it *it; /* (index, term) -> hash table */
	size_t it_cap, it_used;
	unsigned violations;
	char first_violation[768];
	/* clients */
	struct sim_client *clients;
	struct lc_history hist;
	uint64_t next_value;
	uint64_t next_req;
	struct sim_req **reqs; /* every request of the run (freed at the end) */
	size_t n_reqs, cap_reqs;
	bool clients_on;
	uint64_t liveness_from; /* client timeouts from then on are violations */
	struct sim_stats st;
	/* acked writes (no acknowledged write lost) */
	uint64_t *acked_idx, *acked_hash;
	size_t n_acked, cap_acked;
	/* script hooks (scenarios) */
	void *user;
	void (*on_read)(struct sim *s, uint64_t node, const struct raft_read *r);
	void (*on_send)(struct sim *s, const struct raft_msg *m);
	bool (*drop)(struct sim *s, const struct raft_msg *m); /* true: lose it */
};

/* sim_cluster.c */
void sim_default_opts(struct sim_opts *o);
int sim_init(struct sim *s, const struct sim_opts *o);
void sim_free(struct sim *s);
uint64_t sim_rand(struct sim *s);
unsigned sim_rand_range(struct sim *s, unsigned lo, unsigned hi); /* [lo, hi] */
void sim_log(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_violation(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_run_until(struct sim *s, uint64_t t);
void sim_crash(struct sim *s, uint64_t id);
int sim_restart(struct sim *s, uint64_t id);
/* The operator's remove, wipe and add again: node id (removed in the
 * up-to-date leader's membership) loses its disk and restarts empty,
 * waiting to be added, like kvfsd --join. */
void sim_wipe(struct sim *s, uint64_t id);
void sim_restart_later(struct sim *s, uint64_t id, uint64_t after_us);
void sim_crash_later(struct sim *s, uint64_t id, uint64_t after_us); /* if faults are on */
void sim_pause(struct sim *s, uint64_t id, bool on);
void sim_partition(struct sim *s, const uint64_t *side, unsigned n); /* side vs rest */
void sim_isolate(struct sim *s, uint64_t id);
void sim_cut(struct sim *s, uint64_t from, uint64_t to, bool cut);
void sim_heal(struct sim *s);
void sim_pump(struct sim *s, struct sim_node *n);
uint64_t sim_leader(struct sim *s); /* the up leader of the highest term, or 0 */
struct raft_core *sim_core(struct sim *s, uint64_t id);
void sim_node_status(struct sim *s, uint64_t id, struct raft_status *st);
/* The membership the initial servers bootstrap with (voters 1..initial). */
struct raft_conf sim_bootstrap_conf(const struct sim *s);
/* Seeds node id's disk with a log (terms[i] for index i+1) before start. */
void sim_preload(struct sim *s, uint64_t id, const uint64_t *terms, size_t n, uint64_t term);
void sim_schedule_fn(struct sim *s, uint64_t at, void (*fn)(struct sim *, void *), void *arg);

/* sim_check.c */
void check_after_record(struct sim *s, struct sim_node *n);
void check_applied(struct sim *s, struct sim_node *n, uint64_t index, uint64_t hash);
void check_durable_entry(struct sim *s, struct sim_node *n, const struct sim_entry *e);
void check_leaders(struct sim *s);
void check_final(struct sim *s);
uint64_t chain_hash(uint64_t prev, const struct raft_entry *e);

/* sim_client.c */
void kv_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e);
void kv_snapshot(const struct sim_node *n, uint8_t **data, size_t *len);
int kv_restore(struct sim_node *n, const uint8_t *data, size_t len);
void clients_start(struct sim *s, unsigned n);
void clients_stop(struct sim *s);
void clients_free(struct sim *s);
void clients_node_down(struct sim *s, struct sim_node *n);
void clients_snapshot_installed(struct sim *s, struct sim_node *n, uint64_t index);
void clients_read_result(struct sim *s, struct sim_node *n, const struct raft_read *r);
void clients_check_reads(struct sim *s, struct sim_node *n);
void node_handle_req(struct sim *s, struct sim_node *n, struct sim_req *r);
enum lc_verdict clients_check(struct sim *s, FILE *explain);
unsigned clients_pending(struct sim *s, uint64_t older_than);

#endif
