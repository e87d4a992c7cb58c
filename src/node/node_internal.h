/* The node's private state, shared by node.c (lifecycle, queue, status) and
 * node_raft.c (one turn of the loop: driving the Raft core). */
#ifndef KVFS_NODE_NODE_INTERNAL_H
#define KVFS_NODE_NODE_INTERNAL_H

#include <pthread.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "net/transport.h"
#include "node/catchup.h"
#include "node/idmap.h"
#include "node/node.h"
#include "raft/raft.h"
#include "store/log.h"

/* A write forwarded to us by a follower, waiting for its entry to apply. */
struct remote_write {
	uint64_t from, req_id, index, term;
	struct remote_write *next;
};

/* A snapshot being streamed to one follower. */
struct snap_out {
	uint64_t peer;
	struct kv_snap_reader *reader;
};

struct req_list {
	struct node_req *head, *tail;
};

struct node {
	struct node_config cfg;
	struct rlog *log;
	struct kv *kv;
	struct raft_core *raft;
	struct transport *net; /* NULL for a single node without --peer */
	int efd;
	pthread_t thread;
	bool started;

	/* Request queue: protected by qlock. */
	pthread_mutex_t qlock;
	struct req_list queue;
	bool stopping;
	uint64_t inflight; /* atomic: accepted, not completed */
	int failed;        /* atomic, sticky */
	bool local_reads;  /* atomic: single-voter leader */

	/* ---- node loop only ---- */
	struct req_list parked;     /* waiting for a leader (retried every turn) */
	struct req_list writes;     /* proposed here, by index, until applied */
	struct req_list apply_wait; /* reads/forwarded writes waiting for applied >= index */
	struct idmap reads;         /* read ctx -> req */
	struct idmap forwarded;     /* forwarded write id -> req */
	struct remote_write *remote, *remote_tail;
	uint64_t next_id;
	struct raft_conf applied_conf; /* membership in effect at the applied index */
	uint64_t applied_conf_index;   /* ... and the index of the entry that made it */
	struct kv_snap_writer *snap_in;
	struct snap_out snap_out[NODE_MAX_MEMBERS];
	struct byte_buf wbuf; /* wire encoding scratch */
	uint8_t *chunk_buf;
	int64_t next_tick_ms, next_sweep_ms;
	uint64_t last_leader;
	uint64_t fwd_leader; /* leader when forwarded writes were last checked */
	uint64_t log_bytes; /* payload bytes appended since the last compaction
			       (node loop writes; HTTP threads read, atomically) */
	bool removed; /* no longer a member: no more ticks, no campaigns */
	bool dropping_appends; /* over --max-log-memory: entries refused (node_net.c) */
	bool holding_writes;   /* new writes wait for the state machine (node_raft.c) */
	int64_t leader_behind_ms; /* the leader holds writes: ours wait until then */
	uint64_t fwd_turn_bytes;  /* leader: forwarded writes proposed this turn */
	int l0_files;	       /* LevelDB's level-0 tables, as of the last tick */
	int64_t peer_heard_ms[NODE_MAX_MEMBERS]; /* by index in applied_conf order */
	uint64_t peer_heard_id[NODE_MAX_MEMBERS];
	char peer_url[NODE_MAX_MEMBERS][256]; /* REST URLs peers advertise, by slot */
	char rest_url[256];		      /* ours (node_set_rest_url, under slock) */
	unsigned hello_ticks;
	int64_t peer_caught_up_ms[NODE_MAX_MEMBERS]; /* by peer slot */
	/* Leader, by peer slot: its match index as last seen (every tick) and
	 * when that last moved; whether the last compaction kept a longer tail
	 * for a follower behind (node_raft.c, tail_for_followers). */
	uint64_t peer_match_seen[NODE_MAX_MEMBERS];
	int64_t peer_match_moved_ms[NODE_MAX_MEMBERS];
	bool tail_pinned;
	int64_t self_caught_up_ms;                    /* follower: last time applied >= commit */
	struct catchup catchup;                       /* /readyz "catching up" (catchup.h) */
	/* Heartbeat round trips, by peer id slot (peer_heard_id order). */
	uint64_t hb_seq[NODE_MAX_MEMBERS];
	int64_t hb_sent_ns[NODE_MAX_MEMBERS];
	double rtt_s[NODE_MAX_MEMBERS];
	int64_t last_apply_ms;
	bool applied_now;
	pthread_mutex_t hook_lock; /* protects apply_hook/apply_hook_ud */
	node_apply_hook apply_hook;
	void *apply_hook_ud;
	void (*fatal_cb)(void *);
	void *fatal_ud;

	/* The state machine's flush to LevelDB (kv_sync) runs on its own
	 * thread, off the reply path, at most every cfg.flush_ms (node.c): the
	 * loop asks for one after each apply batch. sync_hurry counts waiters
	 * (node_wait_synced), sync_full says the pending state outgrew its
	 * bound (the apply is held meanwhile), both flush at once; the thread
	 * wakes the loop (sync_wake) when it is done. Protected by sync_lock. */
	pthread_t sync_thread;
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	uint64_t sync_requested, sync_done;
	int64_t sync_last_ns; /* start of the last flush, monotonic */
	int64_t sync_flush_ns; /* start of the flush running, 0: none */
	int sync_error, sync_hurry;
	bool sync_stop, sync_started, sync_wake, sync_full;

	/* Background CPU priority (cfg.background_idle, node.c): LevelDB's
	 * compactions run under SCHED_IDLE (bg_idle) while the store keeps up.
	 * bg_ok: this process may leave SCHED_IDLE again, so it may enter it.
	 * Protected by sync_lock (bg_ok is set before the threads start). */
	bool bg_ok, bg_idle, bg_stuck; /* bg_stuck: leaving SCHED_IDLE failed */

	/* Status snapshot: protected by slock. */
	pthread_mutex_t slock;
	struct node_status st;

	struct metric_histogram fsync_hist, apply_hist, rtt_hist, kvsync_hist;
	struct level_gauge {
		struct node *n;
		int level;
	} level_gauges[KV_LEVELS]; /* kvfs_disk_backend_files{level} */
	struct metric_counter proposals_committed, proposals_failed, reads_served;
	struct metric_counter leader_changes, snapshots_sent, snapshots_received;
	struct metric_counter forwarded_writes;
	struct metric_counter writes_held; /* writes that waited for the log (node_raft.c) */
	struct metric_counter bg_boosts;   /* background raised to normal priority */
	struct metric_counter entries_applied;
};

/* node.c */
void node_complete(struct node *n, struct node_req *req, int result);
void node_fail(struct node *n, int rc);
/* More than --max-log-memory of log waits in memory for the state machine
 * (the log is compacted only up to what was flushed): a follower drops new
 * entries (node_net.c). Any thread. */
bool node_log_over_bound(struct node *n);
/* Over half of it: new writes wait (node_raft.c), and a leader refuses
 * forwarded ones (node_net.c). */
bool node_log_over_half(struct node *n);
void list_push(struct req_list *l, struct node_req *r);
struct node_req *list_take(struct req_list *l);

/* Waits until every batch applied so far is in LevelDB and durable (node
 * loop). Returns 0 or KVFS_ESTORAGE. */
int node_wait_synced(struct node *n);
/* Without waiting: 1 while the applied state waiting for its flush is over
 * cfg.flush_max_bytes (the sync thread wakes the loop when the flush is
 * done), 0 when the next batch may be applied, KVFS_ESTORAGE when a flush
 * failed. */
int node_sync_busy(struct node *n);
void node_request_sync(struct node *n, uint64_t upto);
/* Sets the CPU priority of LevelDB's compactions from how far behind the
 * store is (node loop, every tick; node.c). */
void node_background_tick(struct node *n);

static inline int64_t node_now_ms(void)
{
	return clock_mono_ms();
}

/* How long a follower holds its clients' writes after its leader refused
 * one because its state machine is behind (node_net.c, on_forward_result). */
#define LEADER_BEHIND_MS 100
/* A held write closer than this to its deadline is not forwarded again. */
#define HELD_FORWARD_MS 20

/* Parks a request until a leader can take it (retried every turn). */
static inline void node_park(struct node *n, struct node_req *r)
{
	list_push(&n->parked, r);
}

/* node_net.c */
void node_sync_peers(struct node *n);
int node_peer_slot(struct node *n, uint64_t id);
/* Sends msgs; they leave before it returns (node_flush). */
void node_send_msgs(struct node *n, struct raft_msg *msgs, size_t count);
/* Sends the messages held for batching (results of forwarded writes). */
void node_flush(struct node *n);
void node_send_result(struct node *n, uint64_t to, uint64_t req_id, int result, uint64_t index,
		      uint64_t deleted);
void node_forward(struct node *n, struct node_req *r, uint64_t leader);
/* Adds r (index and term set) to the writes settled by the apply. */
void node_writes_insert(struct node *n, struct node_req *r);
void node_on_leader_change(struct node *n, uint64_t leader);
void node_receive(struct node *n);
/* Sends our REST URL to every other member (WIRE_HELLO). */
void node_send_hellos(struct node *n);

/* node_status.c */
void node_update_status(struct node *n);

/* node_raft.c (turns) and node_recover.c (open/close) */
int node_raft_open(struct node *n);   /* recovery: rlog + kv -> raft core */
void node_turn(struct node *n, struct node_req *reqs, bool tick);
void node_fail_all(struct node *n, int rc);
void node_raft_close(struct node *n);

#endif
