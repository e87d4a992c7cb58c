/*
 * The Raft consensus core: a pure, deterministic state machine.
 *
 * The core never touches a socket, a file, a clock or a thread, keeps no
 * global state and draws randomness only from a PRNG seeded per instance.
 * Events go in (raft_tick, raft_step, raft_propose, raft_read_index,
 * raft_compact, raft_snapshot_installed, raft_change, raft_transfer) and the
 * decisions come out as one record, struct raft_update, fetched with
 * raft_ready() and acknowledged with raft_advance() (etcd-raft's Ready/Advance
 * contract). The same seed and the same inputs give the same outputs and the
 * same trace, byte for byte.
 *
 * THREADING. A core belongs to one thread (the node loop); no function may be
 * called concurrently on one core. Different cores are independent.
 *
 * THE DRIVER LOOP (one turn):
 *
 *     feed events: raft_tick / raft_step / raft_propose / raft_read_index ...
 *     while (raft_ready(core, &u)) {
 *         0. send u.msgs_early          (may leave before the persist below:
 *                                        the leader's AppendEntries, thesis
 *                                        §10.2.1; the leader counts itself
 *                                        only after its own persist)
 *         1. persist, in ONE synced write, in this order:
 *              if (u.truncate_from) delete log entries with index >= it;
 *              append u.entries[0..n_entries);
 *              if (u.has_hard_state) store u.hs;
 *              write each u.chunks[i] into the incoming snapshot file;
 *         2. send u.msgs                 (only after step 1 is durable)
 *         3. if (u.has_install) install the received snapshot (see below)
 *            apply u.committed[0..n_committed) in order (those with an
 *            index <= raft_status().persisted, already durable here - all
 *            of them on a leader - may be applied before step 1 instead,
 *            when there is no install: committed entries are never
 *            truncated, and step 1 only concerns newer ones);
 *            serve u.reads once applied index >= reads[i].index
 *         raft_advance(core, &u);
 *     }
 *
 * Between raft_ready() and raft_advance() NO other raft_* function may be
 * called on that core (except the const getters). Every pointer inside the
 * record (entries and their data, messages and their entries, chunk bytes,
 * read list, encoded membership) is owned by the core and stays valid until
 * raft_advance() returns; copy what must outlive it (a network layer that
 * queues messages must serialise them before raft_advance()).
 * raft_advance() declares that the whole record was carried out: entries
 * persisted, messages handed to the network, committed entries applied.
 * It may itself make new work (a single-voter leader commits on its own
 * persist), so always loop on raft_ready() until it returns false.
 *
 * ERRORS. Functions return 0 or a negative code from src/common/err.h
 * (KVFS_ENOTLEADER, KVFS_EBUSY, ...) or -ENOMEM / -EINVAL. On failure nothing
 * was changed unless the function says otherwise. Entry data that cannot be
 * copied is reported as -ENOMEM; failing to grow the small output queues
 * (messages, read results: bounded by peers, window and pending reads)
 * aborts the process, as a fail-stop (STYLE 8) rather than a silently
 * dropped message.
 *
 * LOST PROPOSALS. raft_propose() returns the index and term given to the
 * entry. The proposal succeeded if and only if the entry applied at that
 * index (u.committed[i].index) has that term; if an entry with another term is
 * applied at that index, the proposal was overwritten and will never apply:
 * fail the waiting client. If the node loses leadership the outcome is
 * unknown until that index is applied (which the cluster eventually does);
 * a driver that gives up earlier must report the outcome as indeterminate.
 * If the node installs a snapshot covering that index instead (u.install),
 * the entry is never handed out: the outcome is unknown to this node
 * (indeterminate, unless the state machine records request ids).
 *
 * COMMIT INFERENCE. An entry of the current term that is durable on the
 * leader and on a majority of the voters is committed, whoever observes it
 * (Raft §5.4.2). In a configuration of at most three voters a follower and
 * its leader are such a majority, so a follower that has persisted an entry
 * of its current term and has heard (RAFT_MSG_DURABLE, sent by the leader
 * after each persist to followers that have not acknowledged it yet) that
 * the leader has persisted it too, commits it at once, without waiting for
 * the leader to count acknowledgements and send the new commit index: two
 * network hops fewer before a follower can apply and answer a write it
 * forwarded. Only when the follower's latest configuration is committed as
 * far as it knows; one-change-at-a-time membership then keeps any quorum of
 * a configuration the leader may already use (one server more or fewer)
 * overlapping {leader, follower}. The leader sends such a follower no
 * commit-only AppendEntries (raft_bcast_commit); its heartbeats still carry
 * the commit index, should the follower not infer after all.
 */
#ifndef KVFS_RAFT_RAFT_H
#define KVFS_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ------------------------------------------------------------------------ */
/* Membership                                                                */

#define RAFT_MAX_SERVERS 16 /* voters + learners in one configuration */
#define RAFT_ADDR_MAX	 96 /* address string, NUL included */

enum raft_role {
	RAFT_VOTER = 1,	  /* counts towards quorums, may campaign */
	RAFT_LEARNER = 2, /* receives the log, never votes nor campaigns */
};

struct raft_server {
	uint64_t id; /* nonzero, unique in the configuration */
	enum raft_role role;
	char addr[RAFT_ADDR_MAX]; /* opaque to the core, e.g. tcp://127.0.0.1:7001 */
};

/* A configuration (plain data, copied by value). */
struct raft_conf {
	unsigned n;
	struct raft_server servers[RAFT_MAX_SERVERS];
};

/*
 * Encoded configuration, the form stored in configuration entries, in
 * snapshot metadata and in InstallSnapshot messages (little-endian):
 *
 *   offset size  field
 *   0      1     format version (1)
 *   1      1     number of servers n (<= RAFT_MAX_SERVERS)
 *   then n times:
 *   +0     8     id (u64, nonzero)
 *   +8     1     role (1 voter, 2 learner)
 *   +9     2     address length L (u16, < RAFT_ADDR_MAX)
 *   +11    L     address bytes (no NUL)
 */
#define RAFT_CONF_ENCODED_MAX (2 + RAFT_MAX_SERVERS * (11 + RAFT_ADDR_MAX))

/* Encodes conf into buf (cap bytes). Returns the encoded length, or -EINVAL
 * if cap is too small or conf is invalid (zero or duplicate ids). */
int raft_conf_encode(const struct raft_conf *conf, void *buf, size_t cap);

/* Decodes len bytes into *conf. Returns 0, or KVFS_EPROTO if malformed
 * (*conf is then unspecified). Never reads past len. */
int raft_conf_decode(struct raft_conf *conf, const void *buf, size_t len);

/* Looks up id; returns the server (pointer into conf) or NULL. */
const struct raft_server *raft_conf_find(const struct raft_conf *conf, uint64_t id);

/* Number of voters in conf. */
unsigned raft_conf_voters(const struct raft_conf *conf);

/* ------------------------------------------------------------------------ */
/* Log entries                                                               */

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 1, /* opaque driver bytes; the core never reads them */
	RAFT_ENTRY_CONF = 2,   /* an encoded struct raft_conf (raft_conf_decode) */
	RAFT_ENTRY_EMPTY = 3,  /* appended by a new leader; len 0, apply as no-op */
};

struct raft_entry {
	uint64_t term;
	uint64_t index;
	uint8_t type;	  /* enum raft_entry_type */
	const void *data; /* owned by the core (see the loop contract) */
	size_t len;
};

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

enum raft_msg_type {
	RAFT_MSG_APPEND = 1,  /* AppendEntries */
	RAFT_MSG_APPEND_RESP, /* its answer */
	RAFT_MSG_HEARTBEAT,   /* empty AppendEntries; carries read_seq, leader's commit */
	RAFT_MSG_HEARTBEAT_RESP,
	RAFT_MSG_VOTE, /* RequestVote */
	RAFT_MSG_VOTE_RESP,
	RAFT_MSG_PREVOTE, /* pre-vote (thesis §9.6): term is term+1 */
	RAFT_MSG_PREVOTE_RESP,
	RAFT_MSG_SNAPSHOT, /* InstallSnapshot, one chunk */
	RAFT_MSG_SNAPSHOT_RESP,
	RAFT_MSG_TIMEOUT_NOW, /* leadership transfer: campaign now */
	RAFT_MSG_READ_INDEX,  /* follower asks the leader for a read index */
	RAFT_MSG_READ_INDEX_RESP,
	RAFT_MSG_DURABLE, /* leader: my log is durable up to index (no answer) */
	RAFT_MSG_TYPE_MAX
};

/*
 * One message, plain data. Fields not listed for a type are zero.
 *
 *  type             fields used
 *  APPEND           index/log_term (of the entry before entries[0]), commit,
 *                   entries[n_entries]
 *  APPEND_RESP      reject; !reject: index = last index now matching;
 *                   reject: index = the rejected prev index, hint_index /
 *                   hint_term = conflict hint (first index of the follower's
 *                   conflicting term, or its last index + 1 with hint_term 0)
 *  HEARTBEAT        commit (at most what the follower is known to hold),
 *                   index = the leader's own commit index once an entry of
 *                   its term is committed, else 0 (how far the cluster has
 *                   committed, for raft_status().leader_commit; never
 *                   committed by), read_seq
 *  HEARTBEAT_RESP   read_seq (echoed); reject = 1 when the heartbeat's commit
 *                   is past this node's log (it lost entries it had
 *                   acknowledged), with index = its last index
 *  VOTE, PREVOTE    index/log_term = candidate's last entry; transfer = 1 if
 *                   the election is a leadership transfer (ignores leases)
 *  *_RESP of votes  reject
 *  SNAPSHOT         snap_index, snap_term, conf_data/conf_len (the
 *                   encoded membership at snap_index), offset, and
 *                   data/len/done which the LEADER'S DRIVER FILLS from its
 *                   snapshot snap_index before sending (the core leaves them
 *                   zero): bytes [offset, offset+len) of the snapshot, done = 1
 *                   on the last chunk. A driver that has no snapshot
 *                   snap_index drops the message.
 *  SNAPSHOT_RESP    snap_index, offset = next offset the follower expects,
 *                   done = 1 once installed, reject = 1 when the chunk was
 *                   out of order (offset says where to resume)
 *  TIMEOUT_NOW      -
 *  READ_INDEX       ctx
 *  READ_INDEX_RESP  ctx, index = the read index, reject = 1 on failure
 *  DURABLE          index = the leader's persisted last index (COMMIT
 *                   INFERENCE below)
 */
struct raft_msg {
	uint8_t type; /* enum raft_msg_type */
	uint64_t from, to, term;
	uint64_t index, log_term, commit;
	const struct raft_entry *entries;
	size_t n_entries;
	uint8_t reject;
	uint64_t hint_index, hint_term;
	uint64_t read_seq;
	uint64_t ctx;
	uint8_t transfer;
	uint64_t snap_index, snap_term;
	const void *conf_data;
	size_t conf_len;
	uint64_t offset;
	const void *data;
	size_t len;
	uint8_t done;
};

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */

/* Trace levels (the tracer receives lines up to its level). */
enum raft_trace_level { RAFT_TRACE_INFO = 1, RAFT_TRACE_DEBUG = 2 };

struct raft_tracer {
	void *data;
	int level; /* 0 = off */
	/* One event per call, a complete line without newline; borrowed. */
	void (*emit)(void *data, uint64_t id, int level, const char *line);
};

struct raft_config {
	uint64_t id;		    /* this server, nonzero */
	uint64_t seed;		    /* PRNG seed (mixed with id) */
	unsigned election_ticks;    /* election timeout, randomised in [e, 2e) */
	unsigned heartbeat_ticks;   /* < election_ticks */
	unsigned max_batch_entries; /* per AppendEntries (0: 64) */
	size_t max_batch_bytes;	    /* per AppendEntries (0: 1 MiB) */
	unsigned max_inflight;	    /* AppendEntries in flight per follower (0: 8) */
	unsigned max_apply;	    /* committed entries per record (0: 256) */
	size_t max_uncommitted;	    /* leader: bytes of uncommitted entries beyond
				       which proposals get KVFS_EBUSY (0: no limit) */
	bool pre_vote;		    /* thesis §9.6 */
	bool check_quorum;	    /* leader steps down without a majority, and
				       followers that hear from a leader ignore
				       vote requests (leases, thesis §4.2.3):
				       needed by clusters that change membership,
				       or removed servers disrupt them */
	struct raft_tracer tracer;  /* optional */
};

struct raft_hard_state {
	uint64_t term;
	uint64_t vote; /* 0 = none */
};

struct raft_snapshot_meta {
	uint64_t index;	       /* last index covered, 0 = no snapshot */
	uint64_t term;	       /* term of that entry */
	struct raft_conf conf; /* membership at index */
};

/*
 * What the driver persisted, handed to raft_create(). At first start: zero
 * hard state, no snapshot, no entries, and the bootstrap membership in conf
 * (identical on all initial servers); a server that joins later starts with
 * an empty conf (n = 0) and learns the membership from its leader.
 */
struct raft_init {
	struct raft_hard_state hs;
	struct raft_snapshot_meta snap;	  /* snap.index = 0 if none */
	struct raft_conf conf;		  /* used only when snap.index == 0 */
	const struct raft_entry *entries; /* the persisted entries after snap.index,
					     consecutive; borrowed (copied) */
	size_t n_entries;
};

struct raft_core;

/* Creates a core from persisted state. Returns 0 and *out, -EINVAL for a bad
 * config or inconsistent init (entries not consecutive after snap.index,
 * terms going back, a configuration entry raft_conf_decode refuses),
 * -ENOMEM. Everything in cfg/init is copied. */
int raft_create(const struct raft_config *cfg, const struct raft_init *init,
		struct raft_core **out);

/* Frees the core and everything it owns (including an unacknowledged record). */
void raft_destroy(struct raft_core *core);

/* ------------------------------------------------------------------------ */
/* Inputs                                                                    */

/* One unit of logical time. */
void raft_tick(struct raft_core *core);

/* Feeds one received message; m is borrowed for the call (entries and
 * snapshot data are copied when kept). Returns 0 (also when the message is
 * stale and ignored), KVFS_EPROTO if malformed (wrong to, unknown type, a
 * configuration entry or snapshot membership raft_conf_decode refuses, as
 * a later format would be), -ENOMEM. */
int raft_step(struct raft_core *core, const struct raft_msg *m);

/* Proposes one normal entry (data copied). On the leader returns 0 and the
 * entry's index and term (either pointer may be NULL). On a non-leader
 * returns KVFS_ENOTLEADER and *leader_hint (may be NULL) = the known leader
 * or 0; KVFS_EBUSY during a leadership transfer, or when the uncommitted
 * entries would exceed cfg.max_uncommitted bytes (a leader cut off from its
 * quorum does not grow without bound; one proposal is always admitted when
 * nothing is uncommitted). */
int raft_propose(struct raft_core *core, const void *data, size_t len, uint64_t *index,
		 uint64_t *term, uint64_t *leader_hint);

/* Proposes n entries at once (consecutive indexes from *first_index). Same
 * errors as raft_propose; all or nothing. */
int raft_propose_batch(struct raft_core *core, const void *const *data, const size_t *lens,
		       size_t n, uint64_t *first_index, uint64_t *term, uint64_t *leader_hint);

/*
 * Requests a linearizable read. ctx is the driver's cookie. A later record
 * lists {ctx, index, status}: status 0 means reads may be served once the
 * applied index reaches index; status < 0 (KVFS_ENOTLEADER, KVFS_ENOLEADER,
 * KVFS_ETIMEDOUT) means the read failed and the client must be told. Every
 * accepted ctx comes back exactly once. On a follower the request goes to the
 * leader. Returns 0 (queued), or KVFS_ENOLEADER immediately when no leader is
 * known (ctx will then not come back).
 */
int raft_read_index(struct raft_core *core, uint64_t ctx);

/* Membership change kinds (one server at a time, thesis §4.1). */
enum raft_change_kind {
	RAFT_ADD_LEARNER = 1, /* add id/addr as learner */
	RAFT_PROMOTE,	      /* learner id becomes a voter */
	RAFT_ADD_VOTER,	      /* add id/addr directly as a voter */
	RAFT_REMOVE,	      /* remove id (voter or learner, may be the leader) */
};

/* Proposes a configuration entry, in effect as soon as it is appended.
 * Leader only (KVFS_ENOTLEADER + hint).
 * KVFS_EBUSY while a previous change is uncommitted or the leader has not
 * committed an entry of its term yet; KVFS_ECONFIG if the change makes no
 * sense (unknown id, duplicate, would remove the last voter, too many). */
int raft_change(struct raft_core *core, enum raft_change_kind kind, uint64_t id, const char *addr,
		uint64_t *index);

/* A removed server keeps receiving the log until it acknowledges the entry
 * that removes it (or for two election timeouts), so it normally learns it
 * is out and stays quiet; one that could not be reached keeps its old
 * membership and may campaign in it. Leases (check_quorum) and pre-vote
 * keep such a server from disrupting the cluster; the driver should still
 * stop a server once the committed membership (applied RAFT_ENTRY_CONF) no
 * longer lists it, and operators should stop servers they removed. */

/* While hold is true, raft_ready() hands out no committed entries: they wait
 * in the core (commit keeps advancing) and come out, up to cfg.max_apply per
 * record, in the first record after the hold is lifted. For a driver whose
 * state machine is briefly not ready for its next batch (kvfs: the previous
 * batch is still being made durable), so it never has to block or copy. */
void raft_hold_apply(struct raft_core *core, bool hold);

/* Starts a leadership transfer to target (0: the most up-to-date voter).
 * Leader only. Proposals are refused (KVFS_EBUSY) until it completes or is
 * abandoned after one election timeout. KVFS_ECONFIG if target is not
 * another voter. */
int raft_transfer(struct raft_core *core, uint64_t target);

/*
 * The driver has a durable snapshot of the state machine covering every
 * entry up to index (<= the applied index). The core records its metadata
 * (term, membership at index) for InstallSnapshot, and drops from memory the
 * entries up to index - keep (keep > 0 lets slightly lagging followers catch
 * up from the log); the driver may then delete those persisted entries too.
 * Returns 0, -EINVAL if index is beyond the applied index or older than the
 * current snapshot (nothing changed).
 */
int raft_compact(struct raft_core *core, uint64_t index, uint64_t keep);

/* The driver installed the snapshot announced by u.install (see struct
 * raft_install); the core resumes replication from index. Returns 0, or
 * -EINVAL if no install with that index is pending. */
int raft_snapshot_installed(struct raft_core *core, uint64_t index);

/* ------------------------------------------------------------------------ */
/* Output record                                                             */

/* A chunk of an incoming snapshot to write at offset of the snapshot
 * file for snap_index (offset 0 starts a new file). */
struct raft_chunk {
	uint64_t snap_index, snap_term;
	uint64_t offset;
	const void *data;
	size_t len;
};

/* Install the fully received snapshot snap.index: load it into the state
 * machine, persist snap (metadata incl. membership), then delete persisted
 * log entries up to snap.index, or all of them if discard_log. Then call
 * raft_snapshot_installed(). Until then the core ignores AppendEntries. */
struct raft_install {
	struct raft_snapshot_meta snap;
	bool discard_log;
};

struct raft_read {
	uint64_t ctx;
	uint64_t index;
	int status; /* 0 or a negative code (see raft_read_index) */
};

struct raft_update {
	/* 0: may be sent at once */
	struct raft_msg *msgs_early;
	size_t n_msgs_early;
	/* 1: persist */
	bool has_hard_state;
	struct raft_hard_state hs;
	uint64_t truncate_from; /* 0 = nothing to truncate */
	const struct raft_entry *entries;
	size_t n_entries;
	const struct raft_chunk *chunks;
	size_t n_chunks;
	/* 2: send after the persist */
	struct raft_msg *msgs;
	size_t n_msgs;
	/* 3: apply */
	bool has_install;
	struct raft_install install;
	const struct raft_entry *committed;
	size_t n_committed;
	const struct raft_read *reads;
	size_t n_reads;
	/* information */
	bool conf_changed; /* raft_conf_get() changed since the last record */
	uint64_t commit;   /* commit index known when the record was made */
};

/* Fills *u with everything pending. Returns true if there is anything to do
 * (then raft_advance must follow), false if *u is empty (no advance needed). */
bool raft_ready(struct raft_core *core, struct raft_update *u);

/* Acknowledges the record from the last raft_ready (see the loop contract). */
void raft_advance(struct raft_core *core, struct raft_update *u);

/* ------------------------------------------------------------------------ */
/* Getters (const; may be called any time from the owning thread)           */

enum raft_state { RAFT_FOLLOWER = 1, RAFT_PRECANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

struct raft_status {
	uint64_t id, term, vote, leader;
	enum raft_state state;
	uint64_t commit, applied, persisted;
	uint64_t first_index, last_index; /* entries held in memory */
	uint64_t snap_index, snap_term;
	uint64_t transferee; /* leadership transfer in progress to */
	/* On a leader: the index of its term's first entry (its no-op). Once
	 * that is applied, so is every entry logged before this term. */
	uint64_t term_start;
	/* Follower: times it advanced its commit index by inference (COMMIT
	 * INFERENCE), since the core was created. */
	uint64_t inferred_commits;
	/* The highest index this node knows to be committed: on a leader its
	 * commit index; elsewhere the higher of its own and the highest this
	 * term's leader has told it (a heartbeat's index; an append's commit
	 * or a snapshot's index known to be of this term: a follower whose log
	 * lacks the entries cannot commit them yet), or 0 until that leader
	 * has told one. Every write acknowledged before it told is at or below
	 * it, so a follower whose applied index is below it is behind. */
	uint64_t leader_commit;
};

void raft_status(const struct raft_core *core, struct raft_status *st);

/* Forgets the commit index the leader told (raft_status().leader_commit is
 * 0 until it tells one again): for a node that has not heard its leader
 * for long, whose last word on it may be far behind the cluster. */
void raft_forget_leader_commit(struct raft_core *core);

/* The latest membership in the log (in effect, possibly uncommitted). */
const struct raft_conf *raft_conf_get(const struct raft_core *core);

/* Per-follower replication progress, on the leader (for /debug/replication).
 * Returns 0 and fills match/next, or KVFS_ENOTLEADER / KVFS_ECONFIG. */
int raft_progress(const struct raft_core *core, uint64_t id, uint64_t *match, uint64_t *next);

/* Term of the entry at index if it is held in memory or is the snapshot
 * index; 0 otherwise. */
uint64_t raft_term_at(const struct raft_core *core, uint64_t index);

/* How many of the entries at and before index (index, index - 1, ...) the
 * in-memory log holds within max_bytes of entry data, at most want. */
uint64_t raft_entries_within(const struct raft_core *core, uint64_t index, uint64_t want,
			     uint64_t max_bytes);

const char *raft_state_name(enum raft_state s);
const char *raft_msg_name(uint8_t type);

#endif
