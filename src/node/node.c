/*
 * The node loop. One thread owns the log, the consensus state and the apply
 * stage; each turn it
 *
 *   1. waits on the eventfd (new requests) or the tick timeout,
 *   2. takes every queued request at once,
 *   3. appends all proposals of the turn to the durable log in ONE synced
 *      LevelDB batch (group commit: fsyncs per write fall as load rises),
 *   4. applies everything committed in ONE synced state-machine batch with
 *      the applied index beside the data,
 *   5. completes the waiters (writes with their results, reads whose read
 *      index is now applied).
 *
 * This file is the single-voter form of that loop: an entry is committed as
 * soon as this node's log holds it durably, the read index is the commit
 * index. The replicated form replaces steps 3-4's commit rule with the Raft
 * core's output and adds the peer sockets to step 1's poll set; the request
 * queue, the waiters and the apply stage stay as they are.
 *
 * Storage errors are fatal (STYLE.md point 8): the node fails every pending
 * request with KVFS_ESTORAGE, refuses new ones, and calls the fatal callback.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "node/node.h"
#include "store/log.h"

#define ENTRY_NORMAL 0

struct node {
	struct node_config cfg;
	struct rlog *log;
	struct kv *kv;
	int efd;
	pthread_t thread;
	bool started;

	/* Request queue: protected by qlock. */
	pthread_mutex_t qlock;
	struct node_req *qhead, *qtail;
	bool stopping;
	/* Requests accepted and not completed (atomic). */
	uint64_t inflight;
	int failed; /* atomic, sticky */

	/* Loop-owned state. */
	uint64_t term, last_index, commit;
	void (*fatal_cb)(void *);
	void *fatal_ud;

	/* Status snapshot: protected by slock. */
	pthread_mutex_t slock;
	struct node_status st;

	struct metric_histogram fsync_hist, apply_hist;
	struct metric_counter proposals_committed, proposals_failed, reads_served;
};

void node_config_default(struct node_config *c)
{
	memset(c, 0, sizeof *c);
	c->id = 1;
	c->data_dir = "./kvfs-data";
	c->max_pending = 65536;
	c->tick_ms = 100;
	c->request_timeout_ms = 5000;
	c->snapshot_entries = 10000;
	kv_options_default(&c->kv);
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

/* Replays log entries the state machine has not applied yet: with a single
 * voter every durable entry is committed. */
struct replay {
	struct kv *kv;
	struct kv_entry *ents;
	uint8_t **bufs;
	size_t n, cap;
	int rc;
};

static int replay_flush(struct replay *r)
{
	int rc = r->n ? kv_apply(r->kv, r->ents, r->n, NULL, 0) : 0;
	for (size_t i = 0; i < r->n; i++)
		free(r->bufs[i]);
	r->n = 0;
	return rc;
}

static int replay_cb(const struct rlog_entry *e, void *ud)
{
	struct replay *r = ud;
	if (e->index <= kv_applied_index(r->kv))
		return 0;
	if (r->n == r->cap) {
		int rc = replay_flush(r);
		if (rc)
			return rc;
	}
	uint8_t *copy = malloc(e->len ? e->len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, e->data, e->len);
	r->bufs[r->n] = copy;
	r->ents[r->n] = (struct kv_entry){.index = e->index,
					  .data = e->type == ENTRY_NORMAL ? copy : NULL,
					  .len = e->type == ENTRY_NORMAL ? e->len : 0};
	r->n++;
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
	metric_histogram_init(&n->fsync_hist, metric_latency_buckets, metric_latency_n);
	metric_histogram_init(&n->apply_hist, metric_latency_buckets, metric_latency_n);

	if ((rc = mkdir_p(cfg->data_dir)) < 0) {
		log_error("node", "cannot create data directory %s: %s", cfg->data_dir,
			  strerror(-rc));
		goto err_after_alloc;
	}
	snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
	if ((rc = rlog_open(path, &n->log)) < 0)
		goto err_after_alloc;
	snprintf(path, sizeof path, "%s/kv", cfg->data_dir);
	if ((rc = kv_open(path, &cfg->kv, &n->kv)) < 0)
		goto err_after_log;

	struct rlog_hard_state hs;
	struct rlog_snapshot_meta snap;
	struct replay r = {.kv = n->kv, .cap = 1024};
	r.ents = calloc(r.cap, sizeof *r.ents);
	r.bufs = calloc(r.cap, sizeof *r.bufs);
	if (!r.ents || !r.bufs) {
		free(r.ents);
		free(r.bufs);
		rc = -ENOMEM;
		goto err_after_kv;
	}
	int64_t t0 = clock_mono_ns();
	rc = rlog_load(n->log, &hs, &snap, replay_cb, &r);
	if (rc == 0)
		rc = replay_flush(&r);
	else
		replay_flush(&r);
	free(r.ents);
	free(r.bufs);
	free(snap.membership);
	if (rc < 0) {
		log_error("node", "recovery failed: %s", kvfs_strerror(rc));
		goto err_after_kv;
	}
	n->term = hs.term ? hs.term : 1;
	n->last_index = rlog_last_index(n->log);
	if (n->last_index < snap.index)
		n->last_index = snap.index;
	if (n->last_index < kv_applied_index(n->kv)) {
		/* The state machine can only hold what the log once held. */
		log_error("node", "state machine applied %llu beyond log end %llu",
			  (unsigned long long)kv_applied_index(n->kv),
			  (unsigned long long)n->last_index);
		rc = KVFS_ECORRUPT;
		goto err_after_kv;
	}
	n->commit = n->last_index;
	if (!hs.term) {
		struct rlog_hard_state h = {.term = n->term, .vote = cfg->id};
		if ((rc = rlog_write(n->log, &h, 0, NULL, 0)) < 0)
			goto err_after_kv;
	}
	log_info("node", "recovered term=%llu log=[%llu,%llu] applied=%llu keys=%llu in %.1f ms",
		 (unsigned long long)n->term, (unsigned long long)rlog_first_index(n->log),
		 (unsigned long long)n->last_index, (unsigned long long)kv_applied_index(n->kv),
		 (unsigned long long)kv_key_count(n->kv), (double)(clock_mono_ns() - t0) / 1e6);

	if ((n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = -errno;
		goto err_after_kv;
	}
	n->st.id = cfg->id;
	*out = n;
	return 0;

err_after_kv:
	kv_close(n->kv);
err_after_log:
	rlog_close(n->log);
err_after_alloc:
	pthread_mutex_destroy(&n->qlock);
	pthread_mutex_destroy(&n->slock);
	free(n);
	return rc;
}

static void complete(struct node *n, struct node_req *req, int result)
{
	req->result = result;
	__atomic_fetch_sub(&n->inflight, 1, __ATOMIC_RELAXED);
	req->done(req);
}

static void fail_node(struct node *n, int rc)
{
	if (__atomic_exchange_n(&n->failed, 1, __ATOMIC_ACQ_REL))
		return;
	log_error("node", "storage failure (%s): node stops taking part", kvfs_strerror(rc));
	if (n->fatal_cb)
		n->fatal_cb(n->fatal_ud);
}

int node_submit(struct node *n, struct node_req *req)
{
	if (__atomic_load_n(&n->failed, __ATOMIC_ACQUIRE))
		return KVFS_ESTORAGE;
	if (__atomic_add_fetch(&n->inflight, 1, __ATOMIC_RELAXED) > n->cfg.max_pending) {
		__atomic_fetch_sub(&n->inflight, 1, __ATOMIC_RELAXED);
		return KVFS_EBUSY;
	}
	req->next = NULL;
	req->result = 0;
	req->index = req->deleted = 0;
	req->deadline_ms = clock_mono_ms() + n->cfg.request_timeout_ms;
	pthread_mutex_lock(&n->qlock);
	if (n->stopping) {
		pthread_mutex_unlock(&n->qlock);
		__atomic_fetch_sub(&n->inflight, 1, __ATOMIC_RELAXED);
		return KVFS_ESHUTDOWN;
	}
	bool was_empty = n->qhead == NULL;
	if (n->qtail)
		n->qtail->next = req;
	else
		n->qhead = req;
	n->qtail = req;
	pthread_mutex_unlock(&n->qlock);
	if (was_empty) {
		uint64_t one = 1;
		ssize_t w = write(n->efd, &one, sizeof one);
		(void)w; /* EAGAIN means the counter is already non-zero: loop will wake */
	}
	return 0;
}

static struct node_req *take_queue(struct node *n, bool *stopping)
{
	pthread_mutex_lock(&n->qlock);
	struct node_req *h = n->qhead;
	n->qhead = n->qtail = NULL;
	*stopping = n->stopping;
	pthread_mutex_unlock(&n->qlock);
	return h;
}

static void update_status(struct node *n, bool applied_now)
{
	pthread_mutex_lock(&n->slock);
	n->st.term = n->term;
	n->st.leader_id = n->cfg.id;
	n->st.is_leader = true;
	n->st.ready = !__atomic_load_n(&n->failed, __ATOMIC_RELAXED);
	n->st.failed = !n->st.ready;
	n->st.commit = n->commit;
	n->st.applied = kv_applied_index(n->kv);
	n->st.last_index = n->last_index;
	n->st.first_index = rlog_first_index(n->log);
	n->st.voters = 1;
	n->st.learners = 0;
	n->st.connected = 1;
	n->st.fsyncs_log = rlog_sync_count(n->log);
	n->st.pending = __atomic_load_n(&n->inflight, __ATOMIC_RELAXED);
	if (applied_now)
		n->st.last_commit_time = (double)clock_real_ns() / 1e9;
	pthread_mutex_unlock(&n->slock);
}

/* Compacts the log once enough applied entries sit in it. The state machine
 * is synced at every apply, so it is itself the durable snapshot. */
static void maybe_compact(struct node *n)
{
	uint64_t first = rlog_first_index(n->log), applied = kv_applied_index(n->kv);
	if (!first || applied < first || applied - first + 1 < n->cfg.snapshot_entries)
		return;
	struct rlog_snapshot_meta snap = {.index = applied, .term = n->term};
	int rc = rlog_compact(n->log, &snap, applied);
	if (rc)
		fail_node(n, rc);
	else
		log_debug("node", "log compacted up to %llu", (unsigned long long)applied);
}

/* One turn with the requests taken from the queue. */
static void process(struct node *n, struct node_req *reqs)
{
	size_t nw = 0, cap = 0;
	struct rlog_entry *ents = NULL;
	struct kv_entry *kents = NULL;
	struct node_req **wreqs = NULL;
	int rc = 0;

	for (struct node_req *r = reqs; r; r = r->next)
		if (r->type == NODE_REQ_WRITE)
			cap++;
	if (cap) {
		ents = malloc(cap * sizeof *ents);
		kents = malloc(cap * sizeof *kents);
		wreqs = malloc(cap * sizeof *wreqs);
		if (!ents || !kents || !wreqs)
			rc = -ENOMEM;
	}
	for (struct node_req *r = reqs; r && rc == 0; r = r->next) {
		if (r->type != NODE_REQ_WRITE)
			continue;
		ents[nw] = (struct rlog_entry){.index = n->last_index + 1 + nw,
					       .term = n->term,
					       .type = ENTRY_NORMAL,
					       .data = r->data,
					       .len = r->len};
		kents[nw] = (struct kv_entry){.index = ents[nw].index, .data = r->data, .len = r->len};
		wreqs[nw++] = r;
	}
	if (rc == 0 && nw) {
		int64_t t0 = clock_mono_ns();
		rc = rlog_write(n->log, NULL, 0, ents, nw);
		metric_observe(&n->fsync_hist, (double)(clock_mono_ns() - t0) / 1e9);
		if (rc == 0) {
			n->last_index += nw;
			n->commit = n->last_index;
			t0 = clock_mono_ns();
			rc = kv_apply(n->kv, kents, nw, NULL, 0);
			metric_observe(&n->apply_hist, (double)(clock_mono_ns() - t0) / 1e9);
			__atomic_fetch_add(&n->st.applies, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&n->st.entries_applied, nw, __ATOMIC_RELAXED);
		}
		if (rc)
			fail_node(n, rc);
	}
	if (rc == -ENOMEM)
		log_error("node", "out of memory processing %zu writes", cap);

	size_t wi = 0;
	struct node_req *r = reqs;
	while (r) {
		struct node_req *next = r->next; /* done() may free r */
		if (r->type == NODE_REQ_WRITE) {
			if (rc) {
				complete(n, r, rc == -ENOMEM ? rc : KVFS_ESTORAGE);
			} else {
				r->index = kents[wi].index;
				r->deleted = kents[wi].deleted;
				metric_inc(kents[wi].result ? &n->proposals_failed
							    : &n->proposals_committed);
				complete(n, r, kents[wi].result);
			}
			wi++;
		} else {
			/* Single voter: the read index is the commit index, and
			 * everything committed has been applied above. */
			r->index = n->commit;
			metric_inc(&n->reads_served);
			complete(n, r, __atomic_load_n(&n->failed, __ATOMIC_RELAXED) ? KVFS_ESTORAGE
										     : 0);
		}
		r = next;
	}
	free(ents);
	free(kents);
	free(wreqs);
	if (nw && rc == 0)
		maybe_compact(n);
	update_status(n, nw > 0);
}

static void *loop(void *arg)
{
	struct node *n = arg;
	struct pollfd pfd = {.fd = n->efd, .events = POLLIN};
	bool stopping = false;
	update_status(n, false);
	while (!stopping) {
		int pr = poll(&pfd, 1, n->cfg.tick_ms);
		if (pr > 0) {
			uint64_t v;
			ssize_t rd = read(n->efd, &v, sizeof v);
			(void)rd;
		}
		struct node_req *reqs = take_queue(n, &stopping);
		if (reqs)
			process(n, reqs);
	}
	return NULL;
}

int node_start(struct node *n)
{
	int rc = pthread_create(&n->thread, NULL, loop, n);
	if (rc)
		return -rc;
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
	uint64_t one = 1;
	ssize_t w = write(n->efd, &one, sizeof one);
	(void)w;
	pthread_join(n->thread, NULL);
	n->started = false;
	/* Requests queued after the last turn: fail them. */
	bool stopping;
	struct node_req *r = take_queue(n, &stopping);
	while (r) {
		struct node_req *next = r->next;
		complete(n, r, KVFS_ESHUTDOWN);
		r = next;
	}
}

void node_destroy(struct node *n)
{
	if (!n)
		return;
	node_stop(n);
	kv_close(n->kv);
	rlog_close(n->log);
	close(n->efd);
	pthread_mutex_destroy(&n->qlock);
	pthread_mutex_destroy(&n->slock);
	free(n);
}

bool node_local_read_ok(struct node *n)
{
	return !__atomic_load_n(&n->failed, __ATOMIC_RELAXED);
}

struct kv *node_kv(struct node *n)
{
	return n->kv;
}

void node_status(struct node *n, struct node_status *out)
{
	pthread_mutex_lock(&n->slock);
	*out = n->st;
	out->applies = __atomic_load_n(&n->st.applies, __ATOMIC_RELAXED);
	out->entries_applied = __atomic_load_n(&n->st.entries_applied, __ATOMIC_RELAXED);
	out->pending = __atomic_load_n(&n->inflight, __ATOMIC_RELAXED);
	out->fsyncs_log = rlog_sync_count(n->log);
	out->failed = __atomic_load_n(&n->failed, __ATOMIC_RELAXED);
	if (out->failed)
		out->ready = false;
	pthread_mutex_unlock(&n->slock);
}

void node_set_fatal_cb(struct node *n, void (*cb)(void *ud), void *ud)
{
	n->fatal_cb = cb;
	n->fatal_ud = ud;
}

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
static double m_fsyncs(void *ud)
{
	return (double)rlog_sync_count(((struct node *)ud)->log);
}
static double m_pending(void *ud)
{
	return (double)__atomic_load_n(&((struct node *)ud)->inflight, __ATOMIC_RELAXED);
}
static double m_applied(void *ud)
{
	return (double)kv_applied_index(((struct node *)ud)->kv);
}
static double m_commit(void *ud)
{
	struct node_status st;
	node_status(ud, &st);
	return (double)st.commit;
}
static double m_term(void *ud)
{
	struct node_status st;
	node_status(ud, &st);
	return (double)st.term;
}
static double m_is_leader(void *ud)
{
	struct node_status st;
	node_status(ud, &st);
	return st.is_leader;
}
static double m_has_leader(void *ud)
{
	struct node_status st;
	node_status(ud, &st);
	return st.leader_id != 0;
}

static double m_cluster_size(void *ud)
{
	struct node_status st;
	node_status(ud, &st);
	return st.voters + st.learners;
}
static double m_last_commit(void *ud)
{
	struct node_status st;
	node_status(ud, &st);
	return st.last_commit_time;
}
static double m_lag(void *ud)
{
	struct node_status st;
	node_status(ud, &st);
	return st.replication_lag_s;
}

int node_register_metrics(struct node *n)
{
	int rc = 0;
	rc |= metrics_gauge_fn("kvstore_replication_lag_seconds",
			       "Leader: the slowest follower's lag in seconds; follower: its own.",
			       NULL, m_lag, n);
	rc |= metrics_gauge_fn("kvstore_cluster_size", "Members of the cluster (voters and learners).",
			       NULL, m_cluster_size, n);
	rc |= metrics_gauge_fn("kvstore_last_commit_time",
			       "Epoch seconds of the last entry applied on this node.", NULL,
			       m_last_commit, n);
	rc |= metrics_histogram("kvfs_disk_wal_fsync_duration_seconds",
				"Latency of synced Raft log writes (one per node loop turn).",
				NULL, &n->fsync_hist);
	rc |= metrics_histogram("kvfs_disk_backend_commit_duration_seconds",
				"Latency of synced state-machine apply batches.", NULL,
				&n->apply_hist);
	rc |= metrics_counter_fn("kvfs_disk_wal_fsync_total", "Synced Raft log writes.", NULL,
				 m_fsyncs, n);
	rc |= metrics_counter("kvfs_server_proposals_committed_total",
			      "Proposals committed and applied successfully.", NULL,
			      &n->proposals_committed);
	rc |= metrics_counter("kvfs_server_proposals_failed_total",
			      "Proposals that failed (precondition, no quorum, storage).", NULL,
			      &n->proposals_failed);
	rc |= metrics_gauge_fn("kvfs_server_proposals_pending", "Requests accepted, not completed.",
			       NULL, m_pending, n);
	rc |= metrics_counter("kvfs_server_read_indexes_total",
			      "Linearizable read index requests served.", NULL, &n->reads_served);
	rc |= metrics_gauge_fn("kvfs_server_has_leader", "1 when a leader is known.", NULL,
			       m_has_leader, n);
	rc |= metrics_gauge_fn("kvfs_server_is_leader", "1 when this node is the leader.", NULL,
			       m_is_leader, n);
	rc |= metrics_gauge_fn("kvfs_server_term", "Current Raft term.", NULL, m_term, n);
	rc |= metrics_gauge_fn("kvfs_server_commit_index", "Raft commit index.", NULL, m_commit,
			       n);
	rc |= metrics_gauge_fn("kvfs_server_applied_index", "Last applied Raft index.", NULL,
			       m_applied, n);
	rc |= metrics_gauge_fn("kvfs_keys_total", "Number of keys in the state machine.", NULL,
			       m_keys, n);
	rc |= metrics_gauge_fn("kvfs_mvcc_db_total_size_in_bytes",
			       "Approximate on-disk size of the state machine database.", NULL,
			       m_kv_size, n);
	rc |= metrics_gauge_fn("kvfs_disk_wal_size_in_bytes",
			       "Approximate on-disk size of the Raft log database.", NULL,
			       m_log_size, n);
	return rc ? -ENOMEM : 0;
}
