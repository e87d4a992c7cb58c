/*
 * Recovery: rebuilding the Raft core from what the node persisted (hard
 * state, snapshot metadata, the log entries after it) and the membership in
 * effect at the state machine's applied index. The state machine is trusted
 * up to its applied index; the core re-delivers committed entries and
 * kv_apply skips those it already holds. At first start the bootstrap
 * membership (from --cluster, or this node alone) is stored, so a restart
 * never depends on its flags.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "net/wire.h"
#include "node/node_internal.h"

#define SNAP_CHUNK (1u << 20)

static void tracer(void *data, uint64_t id, int level, const char *line)
{
	if (level <= RAFT_TRACE_INFO)
		log_info("raft", "%s", line);
	else
		log_debug("raft", "%s", line);
}
/* ---- recovery ---- */

struct load_ctx {
	struct raft_entry *ents;
	size_t n, cap;
	uint64_t bytes;
	const struct rlog_snapshot_meta *snap; /* filled before the first entry */
	int rc;
};
static int load_cb(const struct rlog_entry *e, void *ud)
{
	struct load_ctx *lc = ud;
	if (e->index <= lc->snap->index)
		return 0;
	if (array_grow(&lc->ents, &lc->cap, lc->n, sizeof *lc->ents, 1024) < 0)
		return -ENOMEM;
	void *copy = NULL;
	if (e->len && !(copy = malloc(e->len)))
		return -ENOMEM;
	if (e->len)
		memcpy(copy, e->data, e->len);
	lc->bytes += e->len;
	lc->ents[lc->n++] = (struct raft_entry){
		.term = e->term, .index = e->index, .type = e->type, .data = copy, .len = e->len};
	return 0;
}
static void load_free(struct load_ctx *lc)
{
	for (size_t i = 0; i < lc->n; i++)
		free((void *)lc->ents[i].data);
	free(lc->ents);
}
static void bootstrap_conf(struct node *n, struct raft_conf *c)
{
	memset(c, 0, sizeof *c);
	if (n->cfg.join)
		return;
	if (n->cfg.n_members == 0) {
		c->n = 1;
		c->servers[0].id = n->cfg.id;
		c->servers[0].role = RAFT_VOTER;
		snprintf(c->servers[0].addr, RAFT_ADDR_MAX, "%s",
			 n->cfg.peer_addr ? n->cfg.peer_addr : "");
		return;
	}
	for (int i = 0; i < n->cfg.n_members && i < RAFT_MAX_SERVERS; i++) {
		c->servers[c->n].id = n->cfg.members[i].id;
		c->servers[c->n].role = RAFT_VOTER;
		snprintf(c->servers[c->n].addr, RAFT_ADDR_MAX, "%s", n->cfg.members[i].addr);
		c->n++;
	}
}
/* Persists the bootstrap membership (as snapshot metadata at index 0) so
 * that a restart does not depend on the flags it is given. */
static int store_bootstrap(struct node *n, const struct raft_conf *c)
{
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	int len = raft_conf_encode(c, buf, sizeof buf);
	if (len < 0)
		return KVFS_ECONFIG;
	struct rlog_snapshot_meta meta = {.index = 0, .term = 0, .membership = buf,
					  .membership_len = (size_t)len};
	return rlog_compact(n->log, &meta, 0);
}
int node_raft_open(struct node *n)
{
	struct rlog_hard_state hs;
	struct rlog_snapshot_meta snap;
	struct load_ctx lc = {0};
	struct raft_init init;
	int rc;
	int64_t t0 = clock_mono_ns();

	/* Entries at or below the snapshot index are still on disk when the
	 * log kept a tail for lagging followers; the core starts after it. */
	lc.snap = &snap;
	rc = rlog_load(n->log, &hs, &snap, load_cb, &lc);
	if (rc < 0) {
		log_error("node", "cannot load the Raft log: %s", kvfs_strerror(rc));
		goto out;
	}
	memset(&init, 0, sizeof init);
	init.hs.term = hs.term;
	init.hs.vote = hs.vote;
	if (snap.index) {
		init.snap.index = snap.index;
		init.snap.term = snap.term;
		if ((rc = raft_conf_decode(&init.snap.conf, snap.membership, snap.membership_len))) {
			log_error("node", "corrupt membership in snapshot metadata");
			goto out;
		}
		n->applied_conf = init.snap.conf;
	} else if (snap.membership_len) {
		/* The membership stored at first start (below): the flags only
		 * bootstrap, a restarted node keeps what it had. */
		if ((rc = raft_conf_decode(&init.conf, snap.membership, snap.membership_len))) {
			log_error("node", "corrupt stored membership");
			goto out;
		}
		n->applied_conf = init.conf;
	} else {
		bootstrap_conf(n, &init.conf);
		n->applied_conf = init.conf;
		if (init.conf.n && (rc = store_bootstrap(n, &init.conf)) < 0)
			goto out;
	}
	init.entries = lc.ents;
	init.n_entries = lc.n;
	__atomic_store_n(&n->log_bytes, lc.bytes, __ATOMIC_RELAXED);
	/* The log was only ever compacted up to what the state machine held
	 * durably, and a snapshot installed before the log learnt of it: a
	 * state machine behind the log's snapshot has lost durable writes (its
	 * directory replaced or emptied, a disk that lost synced data). The
	 * core would hand out only the entries after the snapshot, and the
	 * node would serve a state with a hole in it. (The kept tail of the
	 * log may still hold the missing entries; replaying them from there
	 * is not done: such a node is refused as well.) */
	uint64_t applied = kv_applied_index(n->kv);
	if (applied < snap.index) {
		log_error("node",
			  "the state machine (applied index %llu) is behind the Raft log's snapshot "
			  "(%llu): it lost writes that were durable; not starting on it (restore the "
			  "data directory from a backup, or, in a cluster, remove the member with "
			  "'kvfs member remove', empty its whole data directory, start it with "
			  "--join under a new id and add it with 'kvfs member add': it copies the "
			  "state from the others; never reuse the old id, kvfsd(8) CAVEATS)",
			  (unsigned long long)applied, (unsigned long long)snap.index);
		rc = KVFS_ECORRUPT;
		goto out;
	}
	/* A membership entry this version cannot read (a later version wrote
	 * it): the Raft core would refuse the log; say why. */
	for (size_t i = 0; i < lc.n; i++) {
		struct raft_conf conf;
		if (lc.ents[i].type == RAFT_ENTRY_CONF &&
		    raft_conf_decode(&conf, lc.ents[i].data, lc.ents[i].len) != 0) {
			log_error("node",
				  "the Raft log holds a membership entry at index %llu in a format "
				  "this version cannot read (version byte %u): a later version of "
				  "kvfsd wrote it; run that version",
				  (unsigned long long)lc.ents[i].index,
				  lc.ents[i].len ? ((const uint8_t *)lc.ents[i].data)[0] : 0u);
			rc = KVFS_ECONFIG;
			goto out;
		}
	}
	/* The membership in effect at the state machine's applied index. */
	for (size_t i = 0; i < lc.n && lc.ents[i].index <= applied; i++)
		if (lc.ents[i].type == RAFT_ENTRY_CONF)
			if (raft_conf_decode(&n->applied_conf, lc.ents[i].data, lc.ents[i].len) == 0)
				n->applied_conf_index = lc.ents[i].index;

	int tick_ms = n->cfg.heartbeat_ms / 2 > 0 ? n->cfg.heartbeat_ms / 2 : 1;
	struct raft_config rc_cfg = {
		.id = n->cfg.id,
		.seed = n->cfg.seed ? n->cfg.seed : (uint64_t)clock_real_ns() ^ (uint64_t)getpid(),
		.election_ticks = (unsigned)(n->cfg.election_ms / tick_ms),
		.heartbeat_ticks = 2,
		.max_batch_entries = 512,
		.max_batch_bytes = 4u << 20,
		.max_inflight = 16,
		.max_apply = 256,
		.pre_vote = true,
		.check_quorum = true,
		.tracer = {.data = n, .level = log_threshold >= LOG_DEBUG ? RAFT_TRACE_DEBUG
						: RAFT_TRACE_INFO,
			   .emit = tracer},
	};
	if (rc_cfg.election_ticks <= rc_cfg.heartbeat_ticks)
		rc_cfg.election_ticks = rc_cfg.heartbeat_ticks + 1;
	if ((rc = raft_create(&rc_cfg, &init, &n->raft)) < 0) {
		log_error("node", "cannot start the Raft core: %s (inconsistent log?)",
			  kvfs_strerror(rc));
		if (rc == -EINVAL)
			rc = KVFS_ECORRUPT;
		goto out;
	}
	if (!(n->chunk_buf = malloc(SNAP_CHUNK))) {
		rc = -ENOMEM;
		goto out;
	}
	node_sync_peers(n);
	/* A joining node has no membership until its entry reaches it, but must
	 * answer the leader before that: --cluster tells it where members are. */
	if (n->net && n->cfg.join)
		for (int i = 0; i < n->cfg.n_members; i++)
			if (n->cfg.members[i].id != n->cfg.id)
				transport_set_peer(n->net, n->cfg.members[i].id, n->cfg.members[i].addr);
	/* A lone voter has nobody to wait for: let its election timer run out
	 * now instead of after a randomised timeout (time is an input of the
	 * core, so this is simply ticking ahead). */
	const struct raft_conf *c0 = raft_conf_get(n->raft);
	if (raft_conf_voters(c0) == 1 && raft_conf_find(c0, n->cfg.id) &&
	    raft_conf_find(c0, n->cfg.id)->role == RAFT_VOTER)
		for (unsigned i = 0; i < 2 * rc_cfg.election_ticks; i++)
			raft_tick(n->raft);
	log_info("node",
		 "recovered term=%llu snapshot=%llu log=%zu entries applied=%llu keys=%llu "
		 "members=%u in %.1f ms",
		 (unsigned long long)hs.term, (unsigned long long)snap.index, lc.n,
		 (unsigned long long)applied, (unsigned long long)kv_key_count(n->kv),
		 raft_conf_get(n->raft)->n, (double)(clock_mono_ns() - t0) / 1e6);
out:
	free(snap.membership);
	load_free(&lc);
	return rc;
}
void node_raft_close(struct node *n)
{
	for (int i = 0; i < NODE_MAX_MEMBERS; i++)
		kv_snap_reader_destroy(n->snap_out[i].reader);
	memset(n->snap_out, 0, sizeof n->snap_out);
	kv_snap_writer_destroy(n->snap_in);
	n->snap_in = NULL;
	raft_destroy(n->raft);
	n->raft = NULL;
	free(n->chunk_buf);
	n->chunk_buf = NULL;
}
