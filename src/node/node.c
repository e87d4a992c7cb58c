/*
 * The node: lifecycle, the request queue, the loop thread, status and
 * metrics. One thread (the node loop) owns the Raft core, the log, the peer
 * sockets and the apply stage; each turn it
 *
 *   1. polls the eventfd (new requests), the peer socket and the tick timer,
 *   2. takes every queued request at once and every received peer message,
 *   3. feeds them to the Raft core, then drains the core's output records:
 *      the leader's AppendEntries go out at once, the turn's entries and hard
 *      state are persisted in ONE synced LevelDB batch (group commit), then
 *      the remaining messages are sent and committed entries applied in ONE
 *      synced state-machine batch,
 *   4. completes waiters: writes with their results, reads whose read index
 *      is now applied, forwarded writes with the leader's answer.
 *
 * The turn itself is node_raft.c. Storage errors are fatal (STYLE.md point
 * 8): the node fails every pending request with KVFS_ESTORAGE, refuses new
 * ones, and calls the fatal callback so the daemon stops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "node/node_internal.h"
#include "store/kv_env.h"

void node_config_default(struct node_config *c)
{
	memset(c, 0, sizeof *c);
	c->id = 1;
	c->data_dir = "./kvfs-data";
	c->max_pending = 65536;
	c->request_timeout_ms = 5000;
	c->snapshot_entries = 10000;
	c->snapshot_bytes = 16u << 20;
	c->max_log_bytes = 64u << 20;
	c->heartbeat_ms = 100;
	c->election_ms = 1000;
	c->flush_ms = 50;
	c->flush_max_bytes = 16u << 20;
	c->background_idle = false;
	kv_options_default(&c->kv);
}

void list_push(struct req_list *l, struct node_req *r)
{
	r->next = NULL;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

struct node_req *list_take(struct req_list *l)
{
	struct node_req *h = l->head;
	l->head = l->tail = NULL;
	return h;
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof tmp)
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int node_create(const struct node_config *cfg, struct node **out)
{
	struct node *n = calloc(1, sizeof *n);
	char path[4096];
	int rc;
	if (!n)
		return -ENOMEM;
	n->cfg = *cfg;
	n->efd = -1;
	pthread_mutex_init(&n->qlock, NULL);
	pthread_mutex_init(&n->slock, NULL);
	pthread_mutex_init(&n->hook_lock, NULL);
	pthread_mutex_init(&n->sync_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* sync_loop's deadlines */
	pthread_cond_init(&n->sync_cond, &ca);
	pthread_condattr_destroy(&ca);
	idmap_init(&n->reads);
	idmap_init(&n->forwarded);
	bb_init(&n->wbuf);
	/* Request ids (forwarded writes, reads) start at the wall clock in
	 * nanoseconds: a restarted node never reuses an id of its previous
	 * run, so a late accept or result for an old forward cannot match a
	 * new request (ids grow by one per request, far slower than time). */
	n->next_id = (uint64_t)clock_real_ns() | 1;
	metric_histogram_init(&n->fsync_hist, metric_latency_buckets, metric_latency_n);
	metric_histogram_init(&n->apply_hist, metric_latency_buckets, metric_latency_n);
	metric_histogram_init(&n->kvsync_hist, metric_latency_buckets, metric_latency_n);
	metric_histogram_init(&n->rtt_hist, metric_latency_buckets, metric_latency_n);

	if ((rc = mkdir_p(cfg->data_dir)) < 0) {
		log_error("node", "cannot create data directory %s: %s", cfg->data_dir,
			  strerror(-rc));
		goto err_after_alloc;
	}
	snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
	if ((rc = rlog_open(path, &n->log)) < 0)
		goto err_after_alloc;
	if (cfg->log_cached)
		rlog_set_buffered(n->log);
	snprintf(path, sizeof path, "%s/kv", cfg->data_dir);
	if ((rc = kv_open(path, &cfg->kv, &n->kv)) < 0)
		goto err_after_log;
	if (cfg->peer_addr && (rc = transport_create(cfg->id, cfg->peer_addr, &n->net)) < 0)
		goto err_after_kv;
	if ((rc = node_raft_open(n)) < 0)
		goto err_after_net;
	if ((n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = -errno;
		goto err_after_raft;
	}
	n->st.id = cfg->id;
	catchup_init(&n->catchup);
	node_update_status(n);
	*out = n;
	return 0;

err_after_raft:
	node_raft_close(n);
err_after_net:
	transport_destroy(n->net);
err_after_kv:
	kv_close(n->kv);
err_after_log:
	rlog_close(n->log);
err_after_alloc:
	pthread_mutex_destroy(&n->qlock);
	pthread_mutex_destroy(&n->slock);
	bb_free(&n->wbuf);
	free(n);
	return rc;
}

void node_complete(struct node *n, struct node_req *req, int result)
{
	req->result = result;
	__atomic_fetch_sub(&n->inflight, 1, __ATOMIC_RELAXED);
	req->done(req);
}

void node_fail(struct node *n, int rc)
{
	if (__atomic_exchange_n(&n->failed, 1, __ATOMIC_ACQ_REL))
		return;
	log_error("node", "storage failure (%s): node stops taking part", kvfs_strerror(rc));
	node_fail_all(n, KVFS_ESTORAGE);
	if (n->fatal_cb)
		n->fatal_cb(n->fatal_ud);
}

/* Wakes the loop out of its poll. */
static void node_wake(struct node *n)
{
	uint64_t one = 1;
	ssize_t w = write(n->efd, &one, sizeof one);
	(void)w; /* EAGAIN: the counter is already non-zero, the loop will wake */
}

bool node_log_over_bound(struct node *n)
{
	return __atomic_load_n(&n->log_bytes, __ATOMIC_RELAXED) > n->cfg.max_log_bytes;
}

bool node_log_over_half(struct node *n)
{
	return __atomic_load_n(&n->log_bytes, __ATOMIC_RELAXED) > n->cfg.max_log_bytes / 2;
}

int node_submit(struct node *n, struct node_req *req)
{
	if (__atomic_load_n(&n->failed, __ATOMIC_ACQUIRE))
		return KVFS_ESTORAGE;
	if (__atomic_add_fetch(&n->inflight, 1, __ATOMIC_RELAXED) > n->cfg.max_pending) {
		__atomic_fetch_sub(&n->inflight, 1, __ATOMIC_RELAXED);
		return KVFS_EBUSY;
	}
	req->result = 0;
	req->index = req->deleted = req->term = req->fwd_id = req->leader_hint = 0;
	req->retries = 0;
	req->held = false;
	req->deadline_ms = clock_mono_ms() + n->cfg.request_timeout_ms;
	pthread_mutex_lock(&n->qlock);
	if (n->stopping) {
		pthread_mutex_unlock(&n->qlock);
		__atomic_fetch_sub(&n->inflight, 1, __ATOMIC_RELAXED);
		return KVFS_ESHUTDOWN;
	}
	bool was_empty = n->queue.head == NULL;
	list_push(&n->queue, req);
	pthread_mutex_unlock(&n->qlock);
	if (was_empty)
		node_wake(n);
	return 0;
}

static struct node_req *take_queue(struct node *n, bool *stopping)
{
	pthread_mutex_lock(&n->qlock);
	struct node_req *h = list_take(&n->queue);
	*stopping = n->stopping;
	pthread_mutex_unlock(&n->qlock);
	return h;
}

/* ---- background CPU priority ----
 *
 * LevelDB's compactions take more CPU than the write path itself (28% of
 * the machine's samples in the seed suite's batch-500 row), and on a busy
 * machine a client's request waits behind them at every hop: the node
 * loop, the ZeroMQ and HTTP threads each wake up to find the CPUs taken.
 * With cfg.background_idle (kvfsd --background-priority idle) LevelDB's
 * background thread runs under SCHED_IDLE while the store keeps up: any
 * thread of ordinary priority that wakes takes the CPU from it at once, and
 * it gets what the request path leaves. A debt cannot build up unseen: once
 * the store falls behind (writes held, BG_BEHIND_L0 level-0 tables, BG_DEBT
 * of levels over their size, a flush into LevelDB running for
 * BG_SLOW_FLUSH_MS, --flush-max of applied state waiting, or someone waiting
 * for a flush) it goes back to normal priority until the store is calm.
 *
 * Measured (bench/NOTES.md; nodes in one session, as
 * scripts/cluster.sh starts them): bursts on a small store go faster (the
 * seed suite's batch-500 row 171,000-193,000 -> 219,000-229,000 items/s),
 * but bench/large.sh's 20M keys lose: the fresh store's first tenth runs
 * faster on borrowed compaction, the last tenth no faster (61.7-71.6% of
 * the first in three runs, against 72.4-83.5% in three at normal priority
 * the same hour; 2-3 batches refused after holds past --request-timeout in
 * two of the three, and in one of the others). So it is not the default.
 * The state machine's flush (kvfs-sync) is never lowered: with it under
 * SCHED_IDLE too, the batch-500 row gained 15-25% more, but one node of one
 * large.sh run was killed for memory (anon 518 MiB; cause not found). Leaving SCHED_IDLE takes CAP_SYS_NICE or an RLIMIT_NICE of 20;
 * a process that could not leave it never enters it (bg_ok). LevelDB's
 * thread holds LevelDB's lock for moments, and a preempted idle thread
 * holding it makes readers, the flush and this node's own property reads
 * wait (priority inversion): one more reason for normal by default. */
#define BG_BEHIND_L0 5 /* LevelDB compacts level 0 from 4 tables, slows writes at 8 */
#define BG_CALM_L0 3 /* a quiet store rests at 0-3 */
#define BG_DEBT (32ull << 20) /* kv_compaction_debt */
#define BG_SLOW_FLUSH_MS 200 /* a flush into LevelDB usually takes 10-50 ms */

static void background_init(struct node *n)
{
	if (!n->cfg.background_idle)
		return;
	if (!kv_env_background_idle_possible()) {
		log_info("node", "background work runs at normal priority: leaving SCHED_IDLE "
				 "again needs CAP_SYS_NICE or an RLIMIT_NICE of 20");
		return;
	}
	n->bg_ok = true;
}

/* Caller holds sync_lock. A failure to enter SCHED_IDLE gives up on it; a
 * failure to leave it (RLIMIT_NICE lowered meanwhile) is tried again at
 * every call, since the debt it leaves unpaid is what the boost is for. */
static void set_background(struct node *n, bool idle)
{
	if (!n->bg_ok || idle == n->bg_idle)
		return;
	int rc = kv_env_background_idle(idle);
	if (rc < 0 && idle) {
		log_warn("node", "cannot lower the priority of LevelDB's compactions: %s; they "
				 "stay at normal priority", strerror(-rc));
		n->bg_ok = false;
		return;
	}
	if (rc < 0) {
		if (!n->bg_stuck)
			log_warn("node", "cannot raise LevelDB's compactions back to normal "
					 "priority: %s; trying again", strerror(-rc));
		n->bg_stuck = true;
		return;
	}
	n->bg_idle = idle;
	n->bg_stuck = false;
	if (!idle)
		metric_inc(&n->bg_boosts);
	log_debug("node", "LevelDB's compactions at %s priority", idle ? "idle" : "normal");
}

void node_background_tick(struct node *n)
{
	pthread_mutex_lock(&n->sync_lock);
	bool ok = n->bg_ok;
	pthread_mutex_unlock(&n->sync_lock);
	if (!ok)
		return;
	/* (The properties take LevelDB's lock, which its background thread
	 * holds for moments: see kvfsd(8) on priority inversion.) */
	uint64_t debt = kv_compaction_debt(n->kv);
	pthread_mutex_lock(&n->sync_lock);
	int64_t flushing = n->sync_flush_ns ? clock_mono_ns() - n->sync_flush_ns : 0;
	bool behind = n->holding_writes || n->l0_files >= BG_BEHIND_L0 || debt >= BG_DEBT ||
		      flushing >= BG_SLOW_FLUSH_MS * 1000000ll || n->sync_hurry || n->sync_full ||
		      n->sync_stop;
	bool calm = !behind && n->l0_files <= BG_CALM_L0 && debt < BG_DEBT / 2;
	if (n->bg_idle && behind)
		log_debug("node", "store behind (%s, %d level-0 tables, compactions owe %llu MiB, "
				  "flushing for %lld ms)",
			  n->holding_writes ? "writes held" : "writes flow", n->l0_files,
			  (unsigned long long)(debt >> 20), (long long)(flushing / 1000000));
	if (behind || calm) /* (in between: as it is) */
		set_background(n, calm);
	pthread_mutex_unlock(&n->sync_lock);
}

/* ---- the state machine's sync thread ----
 *
 * Applied batches live in memory until kv_sync writes them to LevelDB
 * (kv_pending.c). The thread flushes what was asked for at most every
 * cfg.flush_ms: the log's fsyncs then have the disk to themselves, and the
 * state machine is never more than a flush behind the log. It flushes at
 * once when someone waits for it (node_wait_synced: a snapshot install,
 * the stop) or when the pending state outgrows cfg.flush_max_bytes
 * (node_sync_busy holds the apply meanwhile). The log compaction does not
 * wait: it goes up to the durable index (node_raft.c). */

static void *sync_loop(void *arg)
{
	struct node *n = arg;
	pthread_setname_np(pthread_self(), "kvfs-sync");
	pthread_mutex_lock(&n->sync_lock);
	for (;;) {
		while (!n->sync_error && !(n->sync_stop && n->sync_requested <= n->sync_done)) {
			if (n->sync_requested > n->sync_done) {
				int64_t due = n->sync_last_ns + (int64_t)n->cfg.flush_ms * 1000000;
				if (n->sync_hurry || n->sync_full || n->sync_stop ||
				    clock_mono_ns() >= due)
					break;
				struct timespec ts = {.tv_sec = due / 1000000000,
						      .tv_nsec = due % 1000000000};
				pthread_cond_timedwait(&n->sync_cond, &n->sync_lock, &ts);
			} else {
				pthread_cond_wait(&n->sync_cond, &n->sync_lock);
			}
		}
		if (n->sync_error || (n->sync_stop && n->sync_requested <= n->sync_done))
			break;
		uint64_t target = n->sync_requested;
		int64_t t0 = clock_mono_ns();
		n->sync_flush_ns = t0;
		pthread_mutex_unlock(&n->sync_lock);
		uint64_t before = kv_durable_index(n->kv);
		int rc = kv_sync(n->kv, target);
		if (kv_durable_index(n->kv) != before) /* a write, not a no-op */
			metric_observe(&n->kvsync_hist, (double)(clock_mono_ns() - t0) / 1e9);
		pthread_mutex_lock(&n->sync_lock);
		n->sync_flush_ns = 0;
		n->sync_last_ns = t0;
		n->sync_full = false;
		if (rc)
			n->sync_error = rc;
		else
			n->sync_done = target;
		pthread_cond_broadcast(&n->sync_cond);
		if (n->sync_wake) {
			n->sync_wake = false;
			node_wake(n);
		}
	}
	pthread_mutex_unlock(&n->sync_lock);
	return NULL;
}

void node_request_sync(struct node *n, uint64_t upto)
{
	pthread_mutex_lock(&n->sync_lock);
	if (upto > n->sync_requested) {
		/* Woken only when it waits with nothing to do: with a request
		 * already there it is flushing or sleeping until the flush is
		 * due, which a later index does not change. (Woken at every
		 * apply, it took the lock from this thread and the CPU from
		 * the others hundreds of times a second, for nothing.) */
		bool idle = n->sync_requested <= n->sync_done;
		n->sync_requested = upto;
		if (idle)
			pthread_cond_broadcast(&n->sync_cond);
	}
	pthread_mutex_unlock(&n->sync_lock);
}

int node_sync_busy(struct node *n)
{
	pthread_mutex_lock(&n->sync_lock);
	int rc = n->sync_error;
	if (!rc && n->sync_started && kv_pending_bytes(n->kv) > n->cfg.flush_max_bytes) {
		/* Too much in memory: flush now, apply again once it is done. */
		n->sync_wake = true;
		n->sync_full = true;
		set_background(n, false);
		pthread_cond_broadcast(&n->sync_cond);
		rc = 1;
	}
	pthread_mutex_unlock(&n->sync_lock);
	return rc;
}

int node_wait_synced(struct node *n)
{
	int rc;
	pthread_mutex_lock(&n->sync_lock);
	if (!n->sync_started) {
		/* No thread (before start, after stop): sync inline. */
		uint64_t target = n->sync_requested;
		pthread_mutex_unlock(&n->sync_lock);
		rc = target > n->sync_done ? kv_sync(n->kv, target) : 0;
		pthread_mutex_lock(&n->sync_lock);
		if (rc == 0 && target > n->sync_done)
			n->sync_done = target;
	} else {
		n->sync_hurry++;
		set_background(n, false);
		pthread_cond_broadcast(&n->sync_cond);
		while (n->sync_done < n->sync_requested && !n->sync_error)
			pthread_cond_wait(&n->sync_cond, &n->sync_lock);
		n->sync_hurry--;
		rc = n->sync_error;
	}
	pthread_mutex_unlock(&n->sync_lock);
	return rc;
}

static void *loop(void *arg)
{
	struct node *n = arg;
	pthread_setname_np(pthread_self(), "kvfs-raft");
	bool stopping = false;
	int tick_ms = n->cfg.heartbeat_ms / 2 > 0 ? n->cfg.heartbeat_ms / 2 : 1;
	/* The first turn runs at once: recovery may have made this node the
	 * leader (a sole voter), with its no-op to persist and commit before
	 * any read or write can be answered. */
	n->next_tick_ms = clock_mono_ms();
	int64_t stop_deadline = 0;

	for (;;) {
		int64_t now = clock_mono_ms();
		long timeout = n->next_tick_ms > now ? (long)(n->next_tick_ms - now) : 0;
		zmq_pollitem_t items[2] = {{.fd = n->efd, .events = ZMQ_POLLIN},
					   {.socket = n->net ? transport_socket(n->net) : NULL,
					    .events = ZMQ_POLLIN}};
		int rc = zmq_poll(items, n->net ? 2 : 1, timeout);
		if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
			uint64_t v;
			ssize_t rd = read(n->efd, &v, sizeof v);
			(void)rd;
		}
		now = clock_mono_ms();
		bool tick = now >= n->next_tick_ms;
		if (tick)
			n->next_tick_ms = now + tick_ms;
		struct node_req *reqs = take_queue(n, &stopping);
		node_turn(n, reqs, tick);
		if (!stopping)
			continue;
		/* Graceful stop: a leader of several voters hands leadership
		 * over first (bounded by one election timeout). */
		if (!stop_deadline) {
			stop_deadline = now + n->cfg.election_ms;
			struct raft_status st;
			raft_status(n->raft, &st);
			if (st.state == RAFT_LEADER && raft_conf_voters(&n->applied_conf) > 1 &&
			    !__atomic_load_n(&n->failed, __ATOMIC_RELAXED) &&
			    raft_transfer(n->raft, 0) == 0) {
				log_info("node", "stopping: transferring leadership (term %llu)",
					 (unsigned long long)st.term);
				continue;
			}
			break;
		}
		struct raft_status st;
		raft_status(n->raft, &st);
		if (st.state != RAFT_LEADER || now >= stop_deadline)
			break;
	}
	return NULL;
}

/* Stops the sync thread once it has synced what was requested. */
static void sync_thread_stop(struct node *n)
{
	pthread_mutex_lock(&n->sync_lock);
	n->sync_stop = true;
	set_background(n, false);
	pthread_cond_broadcast(&n->sync_cond);
	pthread_mutex_unlock(&n->sync_lock);
	pthread_join(n->sync_thread, NULL);
	n->sync_started = false;
}

int node_start(struct node *n)
{
	background_init(n);
	pthread_mutex_lock(&n->sync_lock);
	set_background(n, true);
	pthread_mutex_unlock(&n->sync_lock);
	int rc = pthread_create(&n->sync_thread, NULL, sync_loop, n);
	if (rc) {
		pthread_mutex_lock(&n->sync_lock);
		set_background(n, false);
		pthread_mutex_unlock(&n->sync_lock);
		return -rc;
	}
	n->sync_started = true;
	rc = pthread_create(&n->thread, NULL, loop, n);
	if (rc) {
		sync_thread_stop(n); /* (normal priority again) */
		return -rc;
	}
	n->started = true;
	return 0;
}

void node_stop(struct node *n)
{
	if (!n->started)
		return;
	pthread_mutex_lock(&n->qlock);
	n->stopping = true;
	pthread_mutex_unlock(&n->qlock);
	node_wake(n);
	pthread_join(n->thread, NULL);
	n->started = false;
	/* The last batches become durable before we go. */
	node_wait_synced(n);
	sync_thread_stop(n);
	bool stopping;
	struct node_req *r = take_queue(n, &stopping);
	while (r) {
		struct node_req *next = r->next;
		node_complete(n, r, KVFS_ESHUTDOWN);
		r = next;
	}
	node_fail_all(n, KVFS_ESHUTDOWN);
}

void node_destroy(struct node *n)
{
	if (!n)
		return;
	node_stop(n);
	node_raft_close(n);
	transport_destroy(n->net);
	kv_close(n->kv);
	rlog_close(n->log);
	close(n->efd);
	idmap_free(&n->reads);
	idmap_free(&n->forwarded);
	bb_free(&n->wbuf);
	pthread_mutex_destroy(&n->qlock);
	pthread_mutex_destroy(&n->slock);
	pthread_mutex_destroy(&n->hook_lock);
	pthread_mutex_destroy(&n->sync_lock);
	pthread_cond_destroy(&n->sync_cond);
	free(n);
}

bool node_local_read_ok(struct node *n)
{
	return __atomic_load_n(&n->local_reads, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&n->failed, __ATOMIC_RELAXED);
}

struct kv *node_kv(struct node *n)
{
	return n->kv;
}

void node_status(struct node *n, struct node_status *out)
{
	pthread_mutex_lock(&n->slock);
	*out = n->st;
	pthread_mutex_unlock(&n->slock);
	out->pending = __atomic_load_n(&n->inflight, __ATOMIC_RELAXED);
	out->fsyncs_log = rlog_sync_count(n->log);
	out->failed = __atomic_load_n(&n->failed, __ATOMIC_RELAXED);
	out->applied = kv_applied_index(n->kv);
	/* The snapshot is refreshed at the end of a loop turn, after the turn's
	 * replies went out: a client that got its reply must still see its
	 * write's index as committed. */
	if (out->commit < out->applied)
		out->commit = out->applied;
	if (out->failed)
		out->ready = false;
	out->leader_changes = metric_get(&n->leader_changes);
	out->snapshots_sent = metric_get(&n->snapshots_sent);
	out->snapshots_received = metric_get(&n->snapshots_received);
}

void node_set_apply_hook(struct node *n, node_apply_hook fn, void *ud)
{
	/* The loop holds hook_lock while it calls the hook: once this returns,
	 * the previous hook is not running and will not be called again. */
	pthread_mutex_lock(&n->hook_lock);
	n->apply_hook = fn;
	n->apply_hook_ud = ud;
	pthread_mutex_unlock(&n->hook_lock);
}

void node_set_fatal_cb(struct node *n, void (*cb)(void *ud), void *ud)
{
	n->fatal_cb = cb;
	n->fatal_ud = ud;
}

/* ---- metrics ---- */

#define STATUS_GAUGE(fname, expr)                  \
	static double fname(void *ud)              \
	{                                          \
		struct node_status st;             \
		node_status(ud, &st);              \
		return (double)(expr);             \
	}

STATUS_GAUGE(m_commit, st.commit)
STATUS_GAUGE(m_inferred, st.inferred_commits)
STATUS_GAUGE(m_applied, st.applied)
STATUS_GAUGE(m_term, st.term)
STATUS_GAUGE(m_is_leader, st.is_leader)
STATUS_GAUGE(m_has_leader, st.leader_id != 0)
STATUS_GAUGE(m_cluster_size, st.voters + st.learners)
STATUS_GAUGE(m_last_commit, st.last_commit_time)
STATUS_GAUGE(m_lag, st.replication_lag_s)
STATUS_GAUGE(m_connected, st.connected)
STATUS_GAUGE(m_wire_rejected, st.wire_rejected)

static double m_keys(void *ud)
{
	return (double)kv_key_count(((struct node *)ud)->kv);
}
static double m_kv_size(void *ud)
{
	return (double)kv_disk_size(((struct node *)ud)->kv);
}
static double m_log_size(void *ud)
{
	return (double)rlog_disk_size(((struct node *)ud)->log);
}
static double m_log_direct(void *ud)
{
	return rlog_direct(((struct node *)ud)->log) ? 1 : 0;
}
static double m_fsyncs(void *ud)
{
	return (double)rlog_sync_count(((struct node *)ud)->log);
}
static double m_applied_total(void *ud)
{
	return (double)metric_get(&((struct node *)ud)->entries_applied);
}
static double m_level_files(void *ud)
{
	const struct level_gauge *g = ud;
	return (double)kv_level_files(g->n->kv, g->level);
}
static double m_kv_pending(void *ud)
{
	return (double)kv_pending_bytes(((struct node *)ud)->kv);
}
static double m_kv_filter(void *ud)
{
	return (double)kv_key_filter_bytes(((struct node *)ud)->kv);
}
static double m_kv_debt(void *ud)
{
	return (double)kv_compaction_debt(((struct node *)ud)->kv);
}
static double m_kv_jobs(void *ud)
{
	(void)ud;
	return (double)kv_background_jobs();
}
static double m_meta_hits(void *ud)
{
	uint64_t hits, misses;
	kv_meta_stats(((struct node *)ud)->kv, &hits, &misses);
	return (double)hits;
}
static double m_meta_misses(void *ud)
{
	uint64_t hits, misses;
	kv_meta_stats(((struct node *)ud)->kv, &hits, &misses);
	return (double)misses;
}
static double m_pending(void *ud)
{
	return (double)__atomic_load_n(&((struct node *)ud)->inflight, __ATOMIC_RELAXED);
}

/* Per-peer families are written by a collector: the peer set changes at run
 * time, the registry's labels are static. Names follow etcd's where the
 * concept is the same (etcd_network_peer_sent_bytes_total{To=...}). */
static void collect_peers(struct byte_buf *out, void *ud)
{
	struct node_status st;
	char labels[64];
	node_status(ud, &st);
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{"kvfs_network_peer_sent_bytes_total", "counter", "Bytes sent to each peer."},
		{"kvfs_network_peer_received_bytes_total", "counter", "Bytes received from each peer."},
		{"kvfs_network_peer_dropped_messages_total", "counter",
		 "Messages to each peer dropped because its queue was full or it was unreachable."},
		{"kvfs_network_peer_round_trip_time_seconds", "gauge",
		 "Last heartbeat round trip to each peer (leader only)."},
		{"kvfs_server_peer_match_index", "gauge",
		 "Highest log index known replicated on each member (leader only)."},
		{"kvfs_server_peer_lag_entries", "gauge",
		 "Log entries each member is behind the leader (leader only)."},
		{"kvfs_server_peer_lag_seconds", "gauge",
		 "Seconds each member has been behind the leader (leader only)."},
		{"kvfs_server_peer_connected", "gauge",
		 "1 when the member was heard from within two election timeouts."},
	};
	for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
		bool leader_only = f >= 3 && f <= 6;
		if (leader_only && !st.is_leader)
			continue;
		metrics_family(out, fam[f].name, fam[f].type, fam[f].help);
		for (int i = 0; i < st.n_peers; i++) {
			const struct node_peer_status *p = &st.peers[i];
			if (p->is_self && f != 4 && f != 7)
				continue;
			snprintf(labels, sizeof labels, "peer=\"%llu\"", (unsigned long long)p->id);
			double v = f == 0   ? (double)p->bytes_sent
				   : f == 1 ? (double)p->bytes_received
				   : f == 2 ? (double)p->msgs_dropped
				   : f == 3 ? p->rtt_seconds
				   : f == 4 ? (double)p->match
				   : f == 5 ? (double)p->lag_entries
				   : f == 6 ? p->lag_seconds
					    : (double)p->connected;
			metrics_sample(out, fam[f].name, labels, v);
		}
	}
}

int node_register_metrics(struct node *n)
{
	int rc = 0;
	rc |= metrics_collector(collect_peers, n);
	rc |= metrics_histogram("kvfs_network_heartbeat_round_trip_seconds",
				"Heartbeat round trips to all peers (leader only).", NULL,
				&n->rtt_hist);
	rc |= metrics_gauge_fn("kvstore_replication_lag_seconds",
			       "Leader: the slowest follower's lag in seconds; follower: its own.",
			       NULL, m_lag, n);
	rc |= metrics_gauge_fn("kvstore_cluster_size",
			       "Members of the cluster (voters and learners).", NULL,
			       m_cluster_size, n);
	rc |= metrics_gauge_fn("kvstore_last_commit_time",
			       "Epoch seconds of the last entry applied on this node.", NULL,
			       m_last_commit, n);
	rc |= metrics_histogram("kvfs_disk_wal_fsync_duration_seconds",
				"Latency of synced Raft log writes (one per node loop turn).", NULL,
				&n->fsync_hist);
	rc |= metrics_histogram("kvfs_disk_backend_commit_duration_seconds",
				"Latency of state-machine apply batches (in memory).", NULL,
				&n->apply_hist);
	rc |= metrics_histogram("kvfs_disk_backend_fsync_duration_seconds",
				"Latency of the applied state's synced writes to LevelDB (at "
				"most one per --flush-ms, off the reply path).",
				NULL, &n->kvsync_hist);
	rc |= metrics_gauge_fn("kvfs_disk_backend_pending_bytes",
			       "Applied state in memory waiting for its write to LevelDB.", NULL,
			       m_kv_pending, n);
	rc |= metrics_gauge_fn("kvfs_key_filter_bytes",
			       "Memory of the filter of live keys, which spares writes of new "
			       "keys a read (kvfsd --key-filter-max), a rebuild under way "
			       "included.",
			       NULL, m_kv_filter, n);
	rc |= metrics_gauge_fn("kvfs_disk_backend_compactions",
			       "LevelDB background jobs (memtable writes and compactions) "
			       "scheduled or running: 0 when the store is quiet.",
			       NULL, m_kv_jobs, n);
	rc |= metrics_gauge_fn("kvfs_disk_backend_compaction_debt_bytes",
			       "Bytes by which LevelDB's levels 1 to 5 exceed their target "
			       "sizes (10 MiB at level 1, ten times more each level down): "
			       "what its compactions still owe.",
			       NULL, m_kv_debt, n);
	static const char *const level_labels[KV_LEVELS] = {
	    "level=\"0\"", "level=\"1\"", "level=\"2\"", "level=\"3\"",
	    "level=\"4\"", "level=\"5\"", "level=\"6\""};
	for (int l = 0; l < KV_LEVELS; l++) {
		n->level_gauges[l] = (struct level_gauge){n, l};
		rc |= metrics_gauge_fn("kvfs_disk_backend_files",
				       "LevelDB table files per level. Level 0 is compaction's "
				       "backlog: from 8 files LevelDB slows writes down, at 12 "
				       "it stops them until compaction catches up.",
				       level_labels[l], m_level_files, &n->level_gauges[l]);
	}
	rc |= metrics_counter_fn("kvfs_disk_wal_fsync_total", "Synced Raft log writes.", NULL,
				 m_fsyncs, n);
	rc |= metrics_counter_fn("kvfs_disk_backend_meta_cache_lookups_total",
				 "Writes, checks and deletes of existing keys that found the key's "
				 "revisions in the metadata cache (hit) or read its record (miss).",
				 "result=\"hit\"", m_meta_hits, n);
	rc |= metrics_counter_fn("kvfs_disk_backend_meta_cache_lookups_total",
				 "Writes, checks and deletes of existing keys that found the key's "
				 "revisions in the metadata cache (hit) or read its record (miss).",
				 "result=\"miss\"", m_meta_misses, n);
	rc |= metrics_counter("kvfs_server_proposals_committed_total",
			      "Proposals committed and applied successfully.", NULL,
			      &n->proposals_committed);
	rc |= metrics_counter("kvfs_server_proposals_failed_total",
			      "Proposals that failed (precondition, lost leadership, timeout).",
			      NULL, &n->proposals_failed);
	rc |= metrics_counter_fn("kvfs_server_proposals_applied_total",
				 "Log entries applied to the state machine (this node's own and others').",
				 NULL, m_applied_total, n);
	rc |= metrics_gauge_fn("kvfs_server_proposals_pending",
			       "Requests accepted and not completed.", NULL, m_pending, n);
	rc |= metrics_counter("kvfs_server_forwarded_writes_total",
			      "Writes this follower forwarded to the leader.", NULL,
			      &n->forwarded_writes);
	rc |= metrics_counter("kvfs_disk_backend_background_boosts_total",
			      "Times LevelDB's compactions went from idle to normal CPU priority "
			      "(kvfsd --background-priority idle): the store fell behind, or a "
			      "flush was waited for (stop, snapshot install).",
			      NULL, &n->bg_boosts);
	rc |= metrics_counter("kvfs_server_writes_held_total",
			      "Writes that waited before being proposed because more than half of "
			      "--max-log-memory of log waited for the state machine (here or, for a "
			      "follower, on the leader), or LevelDB's compaction was behind (10 "
			      "level-0 tables).",
			      NULL, &n->writes_held);
	rc |= metrics_counter("kvfs_server_read_indexes_total",
			      "Linearizable reads that went through the node loop for a read index "
			      "(many share one round).", NULL, &n->reads_served);
	rc |= metrics_gauge_fn("kvfs_server_has_leader", "1 when a leader is known.", NULL,
			       m_has_leader, n);
	rc |= metrics_gauge_fn("kvfs_server_is_leader", "1 when this node is the leader.", NULL,
			       m_is_leader, n);
	rc |= metrics_counter("kvfs_server_leader_changes_seen_total",
			      "Leader changes seen by this node.", NULL, &n->leader_changes);
	rc |= metrics_gauge_fn("kvfs_server_term", "Current Raft term.", NULL, m_term, n);
	rc |= metrics_gauge_fn("kvfs_server_commit_index", "Raft commit index.", NULL, m_commit,
			       n);
	rc |= metrics_gauge_fn("kvfs_server_applied_index", "Last applied Raft index.", NULL,
			       m_applied, n);
	rc |= metrics_counter_fn("kvfs_server_commits_inferred_total",
				 "Times this follower committed entries itself: it and its leader "
				 "hold them durably, a majority of at most 3 voters.",
				 NULL, m_inferred, n);
	rc |= metrics_gauge_fn("kvfs_network_connected_peers",
			       "Peers heard from within the last two election timeouts (self included).",
			       NULL, m_connected, n);
	rc |= metrics_counter_fn("kvfs_network_rejected_messages_total",
				 "Peer messages rejected as malformed.", NULL, m_wire_rejected, n);
	rc |= metrics_counter("kvfs_snapshot_sent_total", "Snapshots streamed to followers.", NULL,
			      &n->snapshots_sent);
	rc |= metrics_counter("kvfs_snapshot_received_total",
			      "Snapshots received and installed.", NULL, &n->snapshots_received);
	rc |= metrics_gauge_fn("kvfs_keys", "Number of keys in the state machine.", NULL, m_keys,
			       n);
	rc |= metrics_gauge_fn("kvfs_mvcc_db_total_size_in_bytes",
			       "Approximate on-disk size of the state machine database.", NULL,
			       m_kv_size, n);
	rc |= metrics_gauge_fn("kvfs_disk_wal_size_in_bytes",
			       "On-disk size of the Raft log's segment files.", NULL,
			       m_log_size, n);
	rc |= metrics_gauge_fn("kvfs_disk_wal_direct_io",
			       "1 when the Raft log is written with direct I/O, 0 through the page "
			       "cache (--log-writes, or a file system that refuses direct I/O).",
			       NULL, m_log_direct, n);
	return rc ? -ENOMEM : 0;
}
