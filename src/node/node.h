/*
 * The node: owner of the consensus state, the durable log and the state
 * machine, driven by one thread (the node loop). Other threads (HTTP pool,
 * FUSE workers) hand it requests through a lock-protected queue plus an
 * eventfd and are called back when the request completes; nobody blocks
 * waiting for a commit.
 *
 * Write path: node_submit(WRITE) -> loop turn: proposals of the turn appended
 * to the log in one synced batch (group commit) -> committed -> applied in one
 * state-machine batch (in memory; flushed to LevelDB by the sync thread every
 * few tens of ms) -> req->done() with the result.
 *
 * Read path: node_submit(READ) -> the loop obtains a read index from the Raft
 * core (the leader confirms its leadership with a heartbeat round shared by
 * many reads; a follower asks the leader) -> once applied >= read index,
 * req->done(); the caller then reads the state machine directly
 * (kv_get/kv_iter from any thread).
 */
#ifndef KVFS_NODE_NODE_H
#define KVFS_NODE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/kv.h"

struct node;

#define NODE_MAX_MEMBERS 16

struct node_member {
	uint64_t id;
	char addr[96]; /* "tcp://HOST:PORT" */
};

struct node_config {
	uint64_t id;
	const char *data_dir;   /* holds raft/ and kv/ */
	/* Cluster. peer_addr NULL and no members: a single-voter node with no
	 * peer socket. Otherwise members bootstrap the membership at first
	 * start (a restarted node uses what it stored). */
	const char *peer_addr;  /* this node's listen address, "tcp://HOST:PORT" */
	struct node_member members[NODE_MAX_MEMBERS];
	int n_members;
	bool join;              /* start with no membership: wait to be added */
	bool log_cached;        /* write the Raft log through the page cache, not
				   with direct I/O (--log-writes cached) */
	int heartbeat_ms;       /* leader heartbeat (default 100) */
	int election_ms;        /* election timeout, randomised in [e, 2e) (default 1000) */
	uint64_t seed;          /* Raft PRNG seed (0: from the clock and id) */
	size_t max_pending;     /* queued + in-flight requests before KVFS_EBUSY */
	int tick_ms;            /* node loop tick */
	int request_timeout_ms; /* a request not completed by then fails (KVFS_ETIMEDOUT) */
	uint64_t snapshot_entries; /* compact the log after this many applied entries */
	uint64_t snapshot_bytes;   /* ... or after this many bytes of entries (default 16 MiB):
				      bounds the memory the in-memory log may take */
	int flush_ms;              /* write the applied state to LevelDB at most this often
				      (default 50; kv_sync) */
	uint64_t flush_max_bytes;  /* ... or at once past this much of it in memory
				      (default 16 MiB; the apply waits meanwhile) */
	uint64_t max_log_bytes;    /* most log that may wait in memory for the state
				      machine: new writes wait from half of it, a
				      follower drops entries at all of it
				      (default 64 MiB) */
	bool background_idle;      /* LevelDB's compactions under SCHED_IDLE while the
				      store keeps up (default false; node.c) */
	struct kv_options kv;
};

void node_config_default(struct node_config *c);

enum node_req_type {
	NODE_REQ_WRITE,     /* data/len: a transaction */
	NODE_REQ_READ,      /* completes when a linearizable read may be served */
	NODE_REQ_MEMBER,    /* member_kind/member_id/member_addr */
	NODE_REQ_TRANSFER,  /* member_id: target (0 = most caught-up voter) */
};

enum node_member_kind { NODE_ADD_LEARNER = 1, NODE_PROMOTE, NODE_ADD_VOTER, NODE_REMOVE };

struct node_req;
typedef void (*node_done_fn)(struct node_req *req);

/* A request. Allocated and owned by the caller; the node borrows it from
 * node_submit() until it calls done() (exactly once, from the node loop
 * thread, possibly before node_submit returns is NOT possible: always later).
 * done() must not block; it typically records the result and wakes the
 * submitter (MHD_resume_connection, fuse_reply_*). */
struct node_req {
	enum node_req_type type;
	const uint8_t *data; /* WRITE: encoded transaction (txn.h), borrowed until done */
	size_t len;
	node_done_fn done;
	void *ud;
	/* NODE_REQ_MEMBER / NODE_REQ_TRANSFER */
	int member_kind;
	uint64_t member_id;
	char member_addr[96];
	/* Results, valid in done(): */
	int result;       /* 0, or a negative code (txn precondition, no quorum, ...) */
	uint64_t index;   /* WRITE: the entry's index = revision; READ: the read index */
	uint64_t deleted; /* WRITE: keys removed */
	/* Private to the node. */
	struct node_req *next;
	int64_t deadline_ms;
	uint64_t term;
	uint64_t fwd_id;
	uint64_t leader_hint;
	int retries;
	bool held; /* WRITE: waited for the state machine (process_parked) */
};

/* Opens the stores under cfg->data_dir, replays log entries beyond the
 * state machine's applied index, and returns the node (loop not started).
 * Returns 0 or a negative code (logged). */
int node_create(const struct node_config *cfg, struct node **out);

/* Starts the loop thread. */
int node_start(struct node *n);

/* Stops the loop (pending requests fail with KVFS_ESHUTDOWN) and joins it. */
void node_stop(struct node *n);
void node_destroy(struct node *n);

/* Thread-safe. Returns 0 (done() will be called), KVFS_EBUSY when the queue
 * is full, KVFS_ESHUTDOWN after node_stop, KVFS_ESTORAGE on a failed node. */
int node_submit(struct node *n, struct node_req *req);

/* Thread-safe: true when a linearizable read may be served from local state
 * without a round (this node is the only voter and the leader; a leader of
 * several voters must confirm its leadership with a heartbeat round). */
bool node_local_read_ok(struct node *n);

/* The state machine, for reads from any thread. */
struct kv *node_kv(struct node *n);

/* A consistent copy of the node's status, for /health and /metrics.
 * Thread-safe. */
struct node_status {
	uint64_t id;
	uint64_t term, leader_id, commit, applied, last_index, first_index;
	bool is_leader, ready, failed;
	int voters, learners, connected;
	double last_commit_time; /* epoch seconds of the last local apply, 0 if none */
	double replication_lag_s; /* leader: slowest follower's lag; follower: its own */
	char state[16];          /* follower, candidate, leader ... */
	uint64_t snap_index;
	int n_peers;
	struct node_peer_status {
		uint64_t id;
		char addr[96];
		bool learner, connected, is_self;
		uint64_t match, lag_entries;
		double lag_seconds;
		double rtt_seconds; /* last heartbeat round trip (leader), 0 if unknown */
		uint64_t bytes_sent, bytes_received, msgs_dropped;
		char http[256]; /* REST URL it advertises ("" until heard) */
	} peers[NODE_MAX_MEMBERS];
	uint64_t leader_changes;
	uint64_t inferred_commits; /* commit index advances by inference (raft.h) */
	uint64_t snapshots_sent, snapshots_received;
	uint64_t wire_rejected;
	uint64_t fsyncs_log;     /* synced log writes */
	uint64_t applies;        /* state-machine apply batches */
	uint64_t entries_applied;
	uint64_t pending;
};
void node_status(struct node *n, struct node_status *out);

/* Where this node serves its REST API ("http://HOST:PORT"): shown for it in
 * the status, and sent to its peers every second so that each node can list
 * every member's REST URL. A URL over 255 bytes is not advertised.
 * Thread-safe. */
void node_set_rest_url(struct node *n, const char *url);

/* Registers the node's metrics (call once after node_create). */
int node_register_metrics(struct node *n);

/* Registers a function the node loop calls after each batch of entries is
 * durably applied, once per transaction that applied successfully (txn is
 * the encoded transaction, borrowed for the call; index its revision). It
 * runs on the node loop thread and must not block (the FUSE front end queues
 * kernel cache invalidations for a thread of its own). */
typedef void (*node_apply_hook)(void *ud, uint64_t index, const void *txn, size_t len);
/* Thread-safe; once it returns the previous hook is not running and is never
 * called again (fn NULL removes the hook). */
void node_set_apply_hook(struct node *n, node_apply_hook fn, void *ud);

/* Called (from the node loop) when storage fails and the node stops taking
 * part; the daemon uses it to shut down. */
void node_set_fatal_cb(struct node *n, void (*cb)(void *ud), void *ud);

#endif
