/*
 * Internals of the Raft core shared by its source files. Nothing here is
 * exported: the driver sees only raft.h.
 *
 * Ownership: struct raft_core belongs to the thread that drives it (see
 * raft.h); no field is shared with anything else. Log entries own their data
 * (malloc'd copies); every pointer handed out in a struct raft_update points
 * into these buffers and stays valid until raft_advance() because nothing may
 * change the log between raft_ready() and raft_advance().
 */
#ifndef KVFS_RAFT_IMPL_H
#define KVFS_RAFT_IMPL_H

#include <assert.h>

#include "raft/raft.h"

/*
 * Planted bugs, for proving the simulator has teeth (tests/sim/planted.sh).
 * Build with -DRAFT_PLANT_BUG=N; never set in a real build.
 *   1 followers acknowledge AppendEntries before persisting them
 *   2 the vote is not persisted (only the term is)
 *   3 a leader commits an entry of a previous term by counting replicas
 *   4 a follower does not truncate a conflicting suffix
 *   5 ReadIndex is served without confirming leadership
 *   6 a follower infers commits in any configuration (COMMIT INFERENCE in
 *     raft.h), not only where it and its leader are a majority
 *   7 the read index ignores what followers may have committed by inference
 */
#ifndef RAFT_PLANT_BUG
#define RAFT_PLANT_BUG 0
#endif

/* Defensive branches: conditions believed impossible, still handled. */
#define NEVER(x) (x)

#define RAFT_INFLIGHT_CAP 64

/* In-memory log: e[k] has index offset + 1 + k. */
struct raft_log {
	struct raft_entry *e;
	size_t n, cap;
	uint64_t offset;      /* index of the entry before e[0] */
	uint64_t offset_term; /* its term (0 when offset is 0) */
};

enum progress_state { PR_PROBE = 0, PR_REPLICATE, PR_SNAPSHOT };

/* What a leader knows about one other server (thesis §3.5, etcd's Progress). */
struct progress {
	uint64_t id;
	bool voter;
	uint64_t match, next;
	enum progress_state state;
	bool probe_sent;		      /* PROBE: one append in flight, wait for its answer */
	uint64_t inflight[RAFT_INFLIGHT_CAP]; /* REPLICATE: last index per append */
	unsigned in_head, in_count;
	bool recent_active;  /* heard from since the last check-quorum */
	uint64_t read_acked; /* highest read_seq echoed */
	uint64_t hb_match;   /* match at the previous heartbeat answer */
	uint64_t commit_sent;  /* highest commit index sent to it this term */
	uint64_t durable_sent; /* highest index announced to it in RAFT_MSG_DURABLE */
	bool leaving;	     /* removed: kept until it has the entry removing it */
	unsigned leaving_ticks;
	/* PR_SNAPSHOT */
	uint64_t snap_index, snap_offset;
	unsigned snap_idle; /* ticks since the last chunk answer */
};

/* A ReadIndex request held by the leader. */
struct pending_read {
	uint64_t ctx;
	uint64_t from;	/* self or the follower that forwarded it */
	uint64_t index; /* read index, 0 while the leader has no commit in its term */
	uint64_t seq;	/* heartbeat round confirming it, 0 = not yet sent */
};

/* A ReadIndex request a follower forwarded to its leader. */
struct fwd_read {
	uint64_t ctx;
	uint64_t leader;
	unsigned ticks;
};

/* An outgoing message; entries are kept as an index range and resolved to
 * pointers into the log by raft_ready(). */
struct out_msg {
	struct raft_msg m;
	uint64_t lo;	    /* first entry index, 0 = none */
	uint64_t last_term; /* term of the last entry, to detect truncation */
};

struct out_list {
	struct out_msg *v;
	size_t n, cap;
	struct raft_msg *flat; /* built by raft_ready */
	size_t flat_cap;
};

struct raft_core {
	struct raft_config cfg;
	uint64_t id;
	uint64_t rng;

	/* Persistent state (Figure 2) and what of it is durable. */
	uint64_t term, vote;
	struct raft_hard_state hs_saved;
	struct raft_log log;
	uint64_t persisted;	/* entries durable up to here */
	uint64_t truncate_from; /* pending truncation of durable entries */

	/* Volatile state. */
	enum raft_state state;
	uint64_t leader;
	uint64_t commit, applied;

	/* Snapshot and membership. */
	struct raft_snapshot_meta snap;
	uint8_t snap_conf_buf[RAFT_CONF_ENCODED_MAX];
	size_t snap_conf_len;
	struct raft_conf base_conf; /* membership as of log.offset */
	struct raft_conf conf;	    /* latest in the log */
	uint64_t conf_index;	    /* index of the entry holding conf (or <= offset) */
	bool conf_changed;

	/* Timers. */
	unsigned election_elapsed, heartbeat_elapsed, randomized_timeout;

	/* Elections. */
	uint64_t votes_from[RAFT_MAX_SERVERS];
	bool votes_granted[RAFT_MAX_SERVERS];
	unsigned n_votes;

	/* Leader. */
	struct progress prs[RAFT_MAX_SERVERS + 2]; /* + servers being removed */
	unsigned n_prs;
	uint64_t transferee;
	unsigned transfer_elapsed;
	uint64_t term_start; /* index of this leader's first entry */
	size_t uncommitted;  /* bytes of entries after commit (leader) */
	uint64_t durable_sent; /* highest index announced in RAFT_MSG_DURABLE this term:
				  followers may have committed (and answered) up to it */

	/* Follower: the leader's persisted index (RAFT_MSG_DURABLE), valid
	 * while durable_term == term and durable_from == leader. */
	uint64_t durable_from, durable_term, durable_index;
	uint64_t inferred_commits; /* raft_status().inferred_commits */
	/* The highest commit index this term's leader has sent this node, 0
	 * before it has (raft_status().leader_commit, raft_learn_commit). */
	uint64_t leader_commit;

	/* Reads. */
	struct pending_read *reads;
	size_t n_reads, cap_reads;
	uint64_t read_seq;
	struct fwd_read *fwd;
	size_t n_fwd, cap_fwd;

	/* Incoming snapshot (follower). */
	bool in_active;
	uint64_t in_index, in_term, in_offset;
	struct raft_conf in_conf;
	bool install_pending; /* waiting for raft_snapshot_installed */
	bool hold_apply;      /* raft_hold_apply: hand out no committed entries */
	bool install_emit;    /* to be put in the next record */
	bool install_discard;

	/* Output being assembled. */
	struct out_list early, late;
	struct raft_chunk *chunks;
	size_t n_chunks, cap_chunks;
	struct raft_read *out_reads;
	size_t n_out_reads, cap_out_reads;
	bool in_ready;
	uint64_t ready_last_entry, ready_last_committed;
	bool ready_has_entries, ready_has_committed;
};

/* core.c */
void raft_rtrace(struct raft_core *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
uint64_t raft_rand_u64(struct raft_core *c);
void raft_reset_randomized_timeout(struct raft_core *c);
struct raft_msg *raft_send_msg(struct raft_core *c, bool early, uint8_t type, uint64_t to);
struct out_msg *raft_send_msg_entries(struct raft_core *c, bool early, uint8_t type, uint64_t to);
int raft_push_read_result(struct raft_core *c, uint64_t ctx, uint64_t index, int status);
unsigned raft_quorum(const struct raft_core *c);
bool raft_is_voter(const struct raft_core *c, uint64_t id);

/* log.c */
void raft_log_init(struct raft_log *l, uint64_t offset, uint64_t offset_term);
void raft_log_free(struct raft_log *l);
uint64_t raft_log_last_index(const struct raft_log *l);
uint64_t raft_log_last_term(const struct raft_log *l);
uint64_t raft_log_term(const struct raft_log *l, uint64_t index);
const struct raft_entry *raft_log_get(const struct raft_log *l, uint64_t index);
int raft_log_append(struct raft_log *l, uint64_t term, uint8_t type, const void *data, size_t len);
void raft_log_truncate(struct raft_log *l, uint64_t from);
void raft_log_compact(struct raft_log *l, uint64_t upto);
void raft_log_reset(struct raft_log *l, uint64_t offset, uint64_t offset_term);

/* conf.c */
void raft_conf_at(const struct raft_core *c, uint64_t index, struct raft_conf *out);
void raft_conf_refresh(struct raft_core *c);
void raft_conf_update_snap_buf(struct raft_core *c);

/* election.c */
void raft_become_follower(struct raft_core *c, uint64_t term, uint64_t leader);
void raft_campaign(struct raft_core *c, bool pre, bool transfer);
void raft_tick_election(struct raft_core *c);
int raft_step_vote_request(struct raft_core *c, const struct raft_msg *m);
void raft_step_vote_response(struct raft_core *c, const struct raft_msg *m);

/* replication.c */
void raft_progress_reset_all(struct raft_core *c);
void raft_progress_sync_conf(struct raft_core *c);
void raft_progress_drop_leavers(struct raft_core *c);
struct progress *raft_progress_get(struct raft_core *c, uint64_t id);
bool raft_send_append(struct raft_core *c, struct progress *pr, bool allow_empty);
void raft_bcast_append(struct raft_core *c);
void raft_bcast_commit(struct raft_core *c);
void raft_bcast_heartbeat(struct raft_core *c);
bool raft_maybe_commit(struct raft_core *c);
void raft_leader_tick(struct raft_core *c);
void raft_step_append_response(struct raft_core *c, const struct raft_msg *m);
void raft_step_heartbeat_response(struct raft_core *c, const struct raft_msg *m);
void raft_send_timeout_now(struct raft_core *c, uint64_t to);
void raft_bcast_durable(struct raft_core *c);

/* recv_append.c */
int raft_step_append(struct raft_core *c, const struct raft_msg *m);
void raft_step_heartbeat(struct raft_core *c, const struct raft_msg *m);
void raft_step_durable(struct raft_core *c, const struct raft_msg *m);
void raft_infer_commit(struct raft_core *c);
void raft_learn_commit(struct raft_core *c, uint64_t idx, bool trusted);
int raft_append_entries_local(struct raft_core *c, const struct raft_entry *e, size_t n);

/* read.c */
uint64_t raft_read_floor(const struct raft_core *c);
int raft_leader_read(struct raft_core *c, uint64_t ctx, uint64_t from);
void raft_reads_on_commit(struct raft_core *c);
void raft_reads_start_round(struct raft_core *c);
void raft_reads_check(struct raft_core *c);
void raft_reads_fail_all(struct raft_core *c, int status);
void raft_fwd_fail(struct raft_core *c, bool all, int status);
void raft_fwd_tick(struct raft_core *c);
void raft_step_read_index(struct raft_core *c, const struct raft_msg *m);
void raft_step_read_index_resp(struct raft_core *c, const struct raft_msg *m);

/* snapshot.c */
void raft_send_snapshot(struct raft_core *c, struct progress *pr);
int raft_step_snapshot(struct raft_core *c, const struct raft_msg *m);
void raft_step_snapshot_response(struct raft_core *c, const struct raft_msg *m);

#endif
