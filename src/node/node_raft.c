/*
 * One turn of the node loop: the Raft core driven by real storage, real
 * sockets and real clients (the contract is the loop in src/raft/raft.h).
 *
 * Requests: a write on the leader becomes a proposal (all writes of a turn in
 * one batch); on a follower it is forwarded to the leader over the peer
 * socket. The leader tells the follower the index and term it gave the
 * entry (an accept), and the follower then answers it like its own
 * proposal, from its own apply of that index: with commit inference
 * (raft.h) that is two hops sooner than the leader's result, which still
 * follows and answers the write if the accept was lost. A linearizable read
 * asks the core for a read index (the core batches them into one heartbeat
 * round, and followers ask the leader) and completes once the applied index
 * reaches it. Requests that find no leader are parked and retried every turn
 * until their deadline, so a node without quorum answers within
 * --request-timeout, never hangs.
 *
 * A proposal succeeds iff the entry applied at its index has its term
 * (raft.h, LOST PROPOSALS); when leadership moves, pending proposals stay
 * until their index is applied, which decides them.
 *
 * Each output record is carried out in the contract's order: the leader's
 * AppendEntries go out first, then the turn's entries and hard state are
 * persisted in one synced batch, then the other messages leave, then the
 * committed entries are applied in one batch (written to LevelDB by the sync
 * thread, a few times a second, node.c) and their waiters completed. Recovery is
 * node_recover.c, peer traffic node_net.c, status node_status.c.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "net/wire.h"
#include "node/node_internal.h"

/* Inserts r into the local writes list, ordered by index. */
void node_writes_insert(struct node *n, struct node_req *r)
{
	struct req_list *l = &n->writes;
	if (!l->tail || l->tail->index < r->index) {
		list_push(l, r);
		return;
	}
	struct node_req **pp = &l->head;
	while (*pp && (*pp)->index < r->index)
		pp = &(*pp)->next;
	r->next = *pp;
	*pp = r;
	if (!r->next)
		l->tail = r;
}
/* LevelDB stops writes at 12 level-0 tables (and slows them from 8, one
 * millisecond per write: nothing for one flush every 50 ms); at 10 the
 * node's new writes wait for its compaction (process_parked). In
 * bench/compare.sh, batch 500 from 16 connections outran the compaction
 * of all three nodes: they stalled together, and writes got 503. */
#define HOLD_L0_FILES 10

static void process_parked(struct node *n)
{
	struct node_req *r = list_take(&n->parked);
	struct raft_status st;
	raft_status(n->raft, &st);
	bool leader = st.state == RAFT_LEADER;
	int64_t now = node_now_ms();

	/* Leader: all writes of the turn in one batch proposal. */
	size_t nw = 0;
	for (struct node_req *p = r; p; p = p->next)
		nw += p->type == NODE_REQ_WRITE;
	const void **datas = NULL;
	size_t *lens = NULL;
	struct node_req **wr = NULL;
	/* Backpressure: while more than half of --max-log-memory of log waits
	 * for the state machine, or LevelDB's compaction is so far behind that
	 * it is about to stop writes (HOLD_L0_FILES), this node's clients' new
	 * writes wait here, and their clients with them, instead of adding to
	 * the log until a follower drops entries, or every node stalls at
	 * once. They go on once the log is compacted below half and compaction
	 * caught up, or fail with 503 at their deadline, never applied. On a
	 * follower they also wait while the leader refuses forwarded writes
	 * (leader_behind_ms, on_forward_result). */
	bool hold = node_log_over_half(n) || n->l0_files >= HOLD_L0_FILES;
	if (hold != n->holding_writes) {
		n->holding_writes = hold;
		if (hold)
			log_warn("node", "state machine behind (%s): new writes wait until it "
				 "catches up", n->l0_files >= HOLD_L0_FILES
				 ? "LevelDB's compaction is behind"
				 : "more than half of --max-log-memory of log waits in memory");
		else
			log_info("node", "state machine caught up: new writes go on");
	}
	if (leader && nw && !hold) { /* (held writes are not proposed) */
		datas = malloc(nw * sizeof *datas);
		lens = malloc(nw * sizeof *lens);
		wr = malloc(nw * sizeof *wr);
	}
	size_t k = 0;
	while (r) {
		struct node_req *next = r->next;
		int rc;
		uint64_t idx, hint = 0;
		switch (r->type) {
		case NODE_REQ_WRITE:
			if (r->held && now >= r->deadline_ms) {
				/* Its deadline passed while it waited: answered as
				 * held (sweep_list), not sent on to time out as a
				 * forwarded write of unknown outcome. */
				node_complete(n, r, KVFS_EBEHIND);
			} else if (hold) {
				if (!r->held)
					metric_inc(&n->writes_held);
				r->held = true;
				node_park(n, r);
			} else if (leader && wr) {
				datas[k] = r->data;
				lens[k] = r->len;
				wr[k++] = r;
			} else if (leader) {
				node_complete(n, r, -ENOMEM);
			} else if (st.leader && st.leader != n->cfg.id && n->net &&
				   now < n->leader_behind_ms) {
				if (!r->held) /* the leader holds writes (on_forward_result) */
					metric_inc(&n->writes_held);
				r->held = true;
				node_park(n, r);
			} else if (st.leader && st.leader != n->cfg.id && n->net && r->held &&
				   r->deadline_ms - now < HELD_FORWARD_MS) {
				/* Too late to ask the leader again: at its deadline
				 * it would be a forwarded write of unknown outcome. */
				node_complete(n, r, KVFS_EBEHIND);
			} else if (st.leader && st.leader != n->cfg.id && n->net) {
				node_forward(n, r, st.leader);
			} else {
				node_park(n, r);
			}
			break;
		case NODE_REQ_READ:
			rc = raft_read_index(n->raft, n->next_id);
			if (rc == 0 && idmap_put(&n->reads, n->next_id, r) == 0)
				n->next_id++;
			else if (rc == 0)
				node_complete(n, r, -ENOMEM);
			else
				node_park(n, r);
			break;
		case NODE_REQ_MEMBER:
			if (!leader) {
				r->leader_hint = st.leader;
				node_complete(n, r, st.leader ? KVFS_ENOTLEADER : KVFS_ENOLEADER);
				break;
			}
			if ((r->member_kind == NODE_PROMOTE || r->member_kind == NODE_REMOVE) &&
			    !raft_conf_find(raft_conf_get(n->raft), r->member_id)) {
				node_complete(n, r, KVFS_ENOTFOUND);
				break;
			}
			rc = raft_change(n->raft, (enum raft_change_kind)r->member_kind, r->member_id,
					 r->member_addr, &idx);
			if (rc == 0) {
				r->index = idx;
				r->term = st.term;
				node_writes_insert(n, r);
				node_sync_peers(n);
			} else if (rc == KVFS_EBUSY) {
				node_park(n, r);
			} else {
				node_complete(n, r, rc);
			}
			break;
		case NODE_REQ_TRANSFER:
			if (!leader) {
				r->leader_hint = st.leader;
				node_complete(n, r, st.leader ? KVFS_ENOTLEADER : KVFS_ENOLEADER);
			} else {
				node_complete(n, r, raft_transfer(n->raft, r->member_id));
			}
			break;
		}
		(void)hint;
		r = next;
	}
	if (k) {
		uint64_t first, term, hint;
		int rc = raft_propose_batch(n->raft, datas, lens, k, &first, &term, &hint);
		for (size_t i = 0; i < k; i++) {
			if (rc == 0) {
				wr[i]->index = first + i;
				wr[i]->term = term;
				wr[i]->fwd_id = 0; /* ours now, even if forwarded before */
				node_writes_insert(n, wr[i]);
			} else if (rc == KVFS_ENOTLEADER || rc == KVFS_EBUSY) {
				node_park(n, wr[i]);
			} else {
				node_complete(n, wr[i], rc);
			}
		}
	}
	free(datas);
	free(lens);
	free(wr);
}
/* ---- output records ---- */

static int persist(struct node *n, const struct raft_update *u)
{
	if (!u->n_entries && !u->has_hard_state && !u->truncate_from)
		return 0;
	struct rlog_entry stackents[64], *ents = stackents;
	if (u->n_entries > 64 && !(ents = malloc(u->n_entries * sizeof *ents)))
		return -ENOMEM;
	for (size_t i = 0; i < u->n_entries; i++)
		__atomic_fetch_add(&n->log_bytes, u->entries[i].len, __ATOMIC_RELAXED);
	for (size_t i = 0; i < u->n_entries; i++)
		ents[i] = (struct rlog_entry){.index = u->entries[i].index,
					      .term = u->entries[i].term,
					      .type = u->entries[i].type,
					      .data = u->entries[i].data,
					      .len = u->entries[i].len};
	struct rlog_hard_state hs = {.term = u->hs.term, .vote = u->hs.vote};
	int64_t t0 = clock_mono_ns();
	int rc = rlog_write(n->log, u->has_hard_state ? &hs : NULL, u->truncate_from, ents,
			    u->n_entries);
	metric_observe(&n->fsync_hist, (double)(clock_mono_ns() - t0) / 1e9);
	if (ents != stackents)
		free(ents);
	return rc;
}
static int write_chunks(struct node *n, const struct raft_update *u)
{
	for (size_t i = 0; i < u->n_chunks; i++) {
		const struct raft_chunk *c = &u->chunks[i];
		int rc;
		if (c->offset == 0 || !n->snap_in) {
			kv_snap_writer_destroy(n->snap_in);
			n->snap_in = NULL;
			if (c->offset != 0)
				continue; /* lost our partial state: the install will fail */
			if ((rc = kv_snap_writer_create(n->kv, &n->snap_in)) < 0)
				return rc;
			log_info("node", "receiving snapshot %llu", (unsigned long long)c->snap_index);
		}
		rc = kv_snap_write(n->snap_in, c->offset, c->data, c->len);
		if (rc == KVFS_EPROTO) {
			log_error("node", "malformed snapshot stream at offset %llu",
				  (unsigned long long)c->offset);
			kv_snap_writer_destroy(n->snap_in);
			n->snap_in = NULL;
		} else if (rc) {
			return rc;
		}
	}
	return 0;
}
/* Completes the waiters of entry e (applied with result, keys deleted). */
static void settle(struct node *n, const struct raft_entry *e, int result, uint64_t deleted)
{
	struct req_list *l = &n->writes;
	while (l->head && l->head->index <= e->index) {
		struct node_req *r = l->head;
		l->head = r->next;
		if (!l->head)
			l->tail = NULL;
		/* Proposals of this node count in the metrics, not the
		 * forwarded writes its leader proposed for it (fwd_id). */
		bool own = !r->fwd_id;
		if (r->index == e->index && r->term == e->term) {
			r->deleted = deleted;
			if (own)
				metric_inc(result ? &n->proposals_failed : &n->proposals_committed);
			node_complete(n, r, result);
		} else if (!own) {
			/* Another leader's entry took the index our leader gave
			 * this forwarded write: it never applies, so it is
			 * safe to send it again, to the new leader. */
			r->fwd_id = 0;
			node_park(n, r);
		} else {
			/* Another leader's entry took this index: ours never applies. */
			metric_inc(&n->proposals_failed);
			node_complete(n, r, KVFS_ENOTLEADER);
		}
	}
	while (n->remote && n->remote->index <= e->index) {
		struct remote_write *w = n->remote;
		n->remote = w->next;
		if (!n->remote)
			n->remote_tail = NULL;
		bool ours = w->index == e->index && w->term == e->term;
		node_send_result(n, w->from, w->req_id, ours ? result : KVFS_ENOTLEADER, e->index,
			    ours ? deleted : 0);
		free(w);
	}
}
/* Applies the committed entries ents[0..count) as one batch. */
static int apply(struct node *n, const struct raft_entry *ents, size_t count)
{
	if (!count)
		return 0;
	struct kv_entry stackents[64], *ke = stackents;
	if (count > 64 && !(ke = malloc(count * sizeof *ke)))
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const struct raft_entry *e = &ents[i];
		bool normal = e->type == RAFT_ENTRY_NORMAL;
		ke[i] = (struct kv_entry){.index = e->index,
					  .data = normal ? e->data : NULL,
					  .len = normal ? e->len : 0};
	}
	/* Into memory: the sync thread writes it to LevelDB (node.c). */
	int64_t t0 = clock_mono_ns();
	int rc = kv_apply(n->kv, ke, count, NULL, 0);
	if (rc == 0)
		node_request_sync(n, kv_applied_index(n->kv));
	metric_observe(&n->apply_hist, (double)(clock_mono_ns() - t0) / 1e9);
	if (rc == 0) {
		pthread_mutex_lock(&n->hook_lock);
		for (size_t i = 0; i < count; i++) {
			const struct raft_entry *e = &ents[i];
			if (e->type == RAFT_ENTRY_CONF) {
				raft_conf_decode(&n->applied_conf, e->data, e->len);
				n->applied_conf_index = e->index;
				log_info("node", "membership change applied at index %llu (%u members)",
					 (unsigned long long)e->index, n->applied_conf.n);
				/* Whoever is told the change is done must see it in
				 * /cluster/members at once. */
				node_update_status(n);
			}
			settle(n, e, ke[i].result, ke[i].deleted);
			if (n->apply_hook && e->type == RAFT_ENTRY_NORMAL && ke[i].result == 0)
				n->apply_hook(n->apply_hook_ud, e->index, e->data, e->len);
		}
		pthread_mutex_unlock(&n->hook_lock);
		node_flush(n); /* the forwarded writes' results, one message per peer */
		n->applied_now = true;
		n->last_apply_ms = node_now_ms();
		metric_add(&n->entries_applied, count);
	}
	if (ke != stackents)
		free(ke);
	return rc;
}
static void complete_applied(struct node *n)
{
	uint64_t applied = kv_applied_index(n->kv);
	struct node_req *r = list_take(&n->apply_wait);
	while (r) {
		struct node_req *next = r->next;
		if (r->index <= applied)
			node_complete(n, r, r->type == NODE_REQ_READ ? 0 : r->result);
		else
			list_push(&n->apply_wait, r);
		r = next;
	}
}
static void on_reads(struct node *n, const struct raft_update *u)
{
	for (size_t i = 0; i < u->n_reads; i++) {
		struct node_req *r = idmap_del(&n->reads, u->reads[i].ctx);
		if (!r)
			continue;
		int st = u->reads[i].status;
		if (st == KVFS_ENOTLEADER || st == KVFS_ENOLEADER) {
			node_park(n, r);
			continue;
		}
		if (st) {
			node_complete(n, r, st);
			continue;
		}
		metric_inc(&n->reads_served);
		r->index = u->reads[i].index;
		list_push(&n->apply_wait, r);
	}
}
static int install(struct node *n, const struct raft_install *in)
{
	int rc;
	if (!n->snap_in) {
		log_error("node", "asked to install snapshot %llu that was not received whole",
			  (unsigned long long)in->snap.index);
		return KVFS_ECORRUPT;
	}
	/* No flush may run across the flip, and what is applied is older. */
	if ((rc = node_wait_synced(n)) < 0 || (rc = kv_snap_commit(n->snap_in)) < 0)
		return rc;
	kv_snap_writer_destroy(n->snap_in);
	n->snap_in = NULL;
	uint8_t conf[RAFT_CONF_ENCODED_MAX];
	int clen = raft_conf_encode(&in->snap.conf, conf, sizeof conf);
	struct rlog_snapshot_meta meta = {.index = in->snap.index, .term = in->snap.term,
					  .membership = conf,
					  .membership_len = clen > 0 ? (size_t)clen : 0};
	if ((rc = rlog_compact(n->log, &meta, in->discard_log ? UINT64_MAX : in->snap.index)) < 0)
		return rc;
	n->applied_conf = in->snap.conf;
	n->applied_conf_index = in->snap.index;
	metric_inc(&n->snapshots_received);
	log_info("node", "installed snapshot %llu (state machine at %llu, %llu keys)",
		 (unsigned long long)in->snap.index, (unsigned long long)kv_applied_index(n->kv),
		 (unsigned long long)kv_key_count(n->kv));
	return 0;
}
static void drain(struct node *n)
{
	struct raft_update u;
	for (;;) {
		/* While the applied state waiting for its flush is over its
		 * bound, committed entries wait in the core; the sync thread
		 * wakes the loop when the flush is done. */
		int rc = node_sync_busy(n);
		if (rc < 0) {
			node_fail(n, rc);
			return;
		}
		raft_hold_apply(n->raft, rc > 0);
		if (!raft_ready(n->raft, &u))
			break;
		uint64_t installed = 0;
		node_send_msgs(n, u.msgs_early, u.n_msgs_early);
		/* Committed entries this node already holds durably (all of them on
		 * a leader) are applied, and their clients answered, before this
		 * record's fsync rather than after it: that fsync only concerns
		 * newer entries. Not when a snapshot is installed (it comes first). */
		size_t early = 0;
		if (!u.has_install && u.n_committed) {
			struct raft_status st;
			raft_status(n->raft, &st);
			while (early < u.n_committed && u.committed[early].index <= st.persisted)
				early++;
			if ((rc = apply(n, u.committed, early)) < 0) {
				node_fail(n, rc);
				return;
			}
		}
		if ((rc = persist(n, &u)) < 0 || (rc = write_chunks(n, &u)) < 0) {
			node_fail(n, rc);
			return;
		}
		node_send_msgs(n, u.msgs, u.n_msgs);
		if (u.has_install) {
			if ((rc = install(n, &u.install)) < 0) {
				node_fail(n, rc);
				return;
			}
			installed = u.install.snap.index;
			/* Their entries will never be handed out here (raft.h,
			 * LOST PROPOSALS): the outcome is unknown. */
			struct req_list *l = &n->writes;
			while (l->head && l->head->index <= installed) {
				struct node_req *r = l->head;
				if (!(l->head = r->next))
					l->tail = NULL;
				node_complete(n, r, KVFS_EUNKNOWN);
			}
			/* Nor can a former leader tell the followers whose writes
			 * it proposed there whether they applied: not "not the
			 * leader" (they would send them again). */
			while (n->remote && n->remote->index <= installed) {
				struct remote_write *w = n->remote;
				if (!(n->remote = w->next))
					n->remote_tail = NULL;
				node_send_result(n, w->from, w->req_id, KVFS_EUNKNOWN, w->index, 0);
				free(w);
			}
		}
		if ((rc = apply(n, u.committed + early, u.n_committed - early)) < 0) {
			node_fail(n, rc);
			return;
		}
		on_reads(n, &u);
		if (u.conf_changed)
			node_sync_peers(n);
		raft_advance(n->raft, &u);
		if (installed)
			raft_snapshot_installed(n->raft, installed);
	}
	complete_applied(n);
}
/* ---- housekeeping ---- */

/* On a leader, every tick: notes when each voter's match index last moved
 * (tail_for_followers). A match of 0 (a new leader's, before the voter
 * answered) is not a position to keep a tail for. */
static void track_followers(struct node *n, const struct raft_status *st)
{
	if (st->state != RAFT_LEADER) { /* what a later term sees starts afresh */
		memset(n->peer_match_seen, 0, sizeof n->peer_match_seen);
		return;
	}
	int64_t now = node_now_ms();
	for (int j = 0; j < NODE_MAX_MEMBERS; j++) {
		uint64_t match, next;
		if (!n->peer_heard_id[j] || n->peer_heard_id[j] == n->cfg.id ||
		    raft_progress(n->raft, n->peer_heard_id[j], &match, &next) != 0 || !match)
			continue;
		if (match != n->peer_match_seen[j]) {
			n->peer_match_seen[j] = match;
			n->peer_match_moved_ms[j] = now;
		}
	}
}

/* On a leader: how many entries before upto the kept tail must hold so that
 * every voter that is catching up can still be sent entries instead of the
 * whole state machine, as long as that tail holds at most half of
 * --max-log-memory of entry data. A follower that stops taking entries for
 * a while (its state machine stalled: over --max-log-memory itself, see
 * node_net.c; or restarted) then catches up from the log; cut off by a tail
 * of 100 entries it needed a snapshot, which for a dataset of gigabytes
 * took longer than the stall (bench/large.sh). A voter counts while we
 * heard from it and its match index moved within the last 10 election
 * timeouts: a dead one, or one that lost its disk (it rejects every append
 * at its old match index, and only a snapshot helps it), must not pin the
 * log. */
static uint64_t tail_for_followers(struct node *n, const struct raft_status *st, uint64_t upto)
{
	if (st->state != RAFT_LEADER)
		return 0;
	const struct raft_conf *conf = raft_conf_get(n->raft);
	int64_t now = node_now_ms(), window = 10 * (int64_t)n->cfg.election_ms;
	uint64_t floor = upto;
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		if (s->id == n->cfg.id || s->role == RAFT_LEARNER)
			continue;
		for (int j = 0; j < NODE_MAX_MEMBERS; j++)
			if (n->peer_heard_id[j] == s->id && n->peer_match_seen[j] &&
			    now - n->peer_heard_ms[j] < window &&
			    now - n->peer_match_moved_ms[j] < window && n->peer_match_seen[j] < floor)
				floor = n->peer_match_seen[j];
	}
	return raft_entries_within(n->raft, upto, upto - floor, n->cfg.max_log_bytes / 2);
}

/* Entries kept before the snapshot index when no follower needs more. */
static uint64_t base_keep(const struct node *n)
{
	return n->cfg.snapshot_entries / 2 < 5000 ? n->cfg.snapshot_entries / 2 : 5000;
}

/* Between compactions: once no follower needs the tail a compaction kept
 * for followers behind (tail_for_followers), the in-memory log drops it
 * (the segments on disk go at the next compaction). */
static void release_tail(struct node *n, const struct raft_status *st)
{
	if (!n->tail_pinned)
		return;
	uint64_t keep = tail_for_followers(n, st, st->snap_index);
	if (keep < base_keep(n))
		keep = base_keep(n);
	if (st->state != RAFT_LEADER || st->snap_index < st->first_index ||
	    st->snap_index - st->first_index < keep) {
		n->tail_pinned = st->state == RAFT_LEADER && keep > base_keep(n);
		return;
	}
	if (raft_compact(n->raft, st->snap_index, keep) == 0)
		n->tail_pinned = keep > base_keep(n);
}

/* Bytes of log after which it is compacted: at most a quarter of
 * --max-log-memory, so that a smaller bound (below 16 MiB the log was
 * never compacted before it refused writes, nor, under 32 MiB, before
 * writes waited for it) still leaves room for the log to drain. */
static uint64_t compact_bytes(const struct node *n)
{
	uint64_t quarter = n->cfg.max_log_bytes / 4;
	return n->cfg.snapshot_bytes < quarter ? n->cfg.snapshot_bytes : quarter;
}

static void maybe_compact(struct node *n)
{
	struct raft_status st;
	raft_status(n->raft, &st);
	track_followers(n, &st);
	uint64_t applied = kv_applied_index(n->kv);
	if (applied != st.applied || applied <= st.snap_index ||
	    (applied < st.snap_index + n->cfg.snapshot_entries && n->log_bytes < compact_bytes(n))) {
		release_tail(n, &st);
		return;
	}
	/* The state machine is the snapshot, as far as it is on disk: the log
	 * is compacted up to the durable index, which trails the applied one
	 * by at most a flush (node.c), and, with the membership stored with
	 * it, not past a membership change that is not durable yet. The loop
	 * never waits for the flush here: a node stuck behind a LevelDB stall
	 * sends no heartbeats (a leader) or falls behind the leader's kept
	 * tail (a follower, which then needs the whole state machine). */
	uint64_t upto = kv_durable_index(n->kv);
	if (upto <= st.snap_index || n->applied_conf_index > upto)
		return;
	uint64_t keep = base_keep(n);
	/* The kept tail must not hold the memory the byte limit frees. */
	if (n->log_bytes >= compact_bytes(n))
		keep = keep < 100 ? keep : 100;
	uint64_t slow = tail_for_followers(n, &st, upto);
	bool pinned = slow > keep && slow > base_keep(n);
	if (slow > keep)
		keep = slow;
	uint64_t term = raft_term_at(n->raft, upto);
	if (!term || raft_compact(n->raft, upto, keep) < 0)
		return;
	n->tail_pinned = pinned;
	uint8_t conf[RAFT_CONF_ENCODED_MAX];
	int clen = raft_conf_encode(&n->applied_conf, conf, sizeof conf);
	struct rlog_snapshot_meta meta = {.index = upto, .term = term, .membership = conf,
					  .membership_len = clen > 0 ? (size_t)clen : 0};
	int rc = rlog_compact(n->log, &meta, upto > keep ? upto - keep : 0);
	if (rc == KVFS_ESTORAGE)
		node_fail(n, rc);
	else if (rc < 0)
		log_warn("node", "log compaction postponed: %s", kvfs_strerror(rc));
	else {
		__atomic_store_n(&n->log_bytes, 0, __ATOMIC_RELAXED);
		/* The entries just dropped were the node's largest allocations:
		 * give the memory back instead of keeping it in malloc's arenas. */
		malloc_trim(0);
		log_debug("node", "log compacted: snapshot at %llu, kept %llu entries",
			  (unsigned long long)upto, (unsigned long long)keep);
	}
}
static bool expired(const struct node_req *r, int64_t now)
{
	return r->deadline_ms <= now;
}
static void sweep_list(struct node *n, struct req_list *l, int64_t now, int code)
{
	struct node_req *r = list_take(l);
	while (r) {
		struct node_req *next = r->next;
		if (expired(r, now) && r->held && l == &n->parked)
			node_complete(n, r, KVFS_EBEHIND); /* held: not applied */
		else if (expired(r, now))
			node_complete(n, r, code);
		else
			list_push(l, r);
		r = next;
	}
}
static void sweep_map(struct node *n, struct idmap *m, int64_t now, int code)
{
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		struct node_req *r = m->vals[i];
		if (expired(r, now)) {
			idmap_del(m, m->keys[i]);
			node_complete(n, r, code);
			i--; /* backward shift may have moved another entry here */
		}
	}
}
static void sweep(struct node *n, int64_t now)
{
	struct raft_status st;
	raft_status(n->raft, &st);
	sweep_list(n, &n->parked, now, st.leader ? KVFS_ETIMEDOUT : KVFS_ENOLEADER);
	sweep_list(n, &n->writes, now, KVFS_ETIMEDOUT);
	sweep_list(n, &n->apply_wait, now, KVFS_ETIMEDOUT);
	sweep_map(n, &n->reads, now, st.leader ? KVFS_ETIMEDOUT : KVFS_ENOLEADER);
	sweep_map(n, &n->forwarded, now, KVFS_ETIMEDOUT);
}
void node_fail_all(struct node *n, int rc)
{
	struct req_list *lists[] = {&n->parked, &n->writes, &n->apply_wait};
	for (int i = 0; i < 3; i++) {
		struct node_req *r = list_take(lists[i]);
		while (r) {
			struct node_req *next = r->next;
			node_complete(n, r, rc);
			r = next;
		}
	}
	struct idmap *maps[] = {&n->reads, &n->forwarded};
	for (int i = 0; i < 2; i++) {
		for (size_t j = 0; j < maps[i]->cap; j++)
			if (maps[i]->keys[j])
				node_complete(n, maps[i]->vals[j], rc);
		idmap_free(maps[i]);
	}
	while (n->remote) {
		struct remote_write *w = n->remote;
		n->remote = w->next;
		free(w);
	}
	n->remote_tail = NULL;
}
void node_turn(struct node *n, struct node_req *reqs, bool tick)
{
	int64_t now = node_now_ms();
	if (__atomic_load_n(&n->failed, __ATOMIC_ACQUIRE)) {
		while (reqs) {
			struct node_req *next = reqs->next;
			node_complete(n, reqs, KVFS_ESTORAGE);
			reqs = next;
		}
		return;
	}
	/* What this holds for the peers (accepts and refusals of forwarded
	 * writes) leaves with the turn's AppendEntries, in one message per
	 * peer (node_send_msgs), or at the end of the turn. */
	if (n->net)
		node_receive(n);
	/* A node removed from the membership stops taking part: it must not
	 * campaign in the configuration it was removed from (raft.h). */
	if (!n->removed && n->applied_conf.n && !raft_conf_find(&n->applied_conf, n->cfg.id) &&
	    !raft_conf_find(raft_conf_get(n->raft), n->cfg.id)) {
		n->removed = true;
		log_warn("node", "this node was removed from the cluster: it stops taking part "
				 "(stop it; to add this machine again, wipe its data and add it "
				 "under a new id, never this one: kvfsd(8), CAVEATS)");
	}
	if (tick && !n->removed)
		raft_tick(n->raft);
	struct raft_status rs;
	raft_status(n->raft, &rs);
	if (rs.leader != n->fwd_leader) {
		n->fwd_leader = rs.leader;
		n->leader_behind_ms = 0; /* that was the old leader's state */
		if (n->forwarded.n)
			node_on_leader_change(n, rs.leader);
	}
	while (reqs) {
		struct node_req *next = reqs->next;
		node_park(n, reqs);
		reqs = next;
	}
	/* New writes are proposed before the turn's output is taken: one
	 * record then carries them and the entries committed by the messages
	 * just received, so their AppendEntries leave before that apply batch
	 * runs (a follower starts its fsync an apply batch earlier) instead of
	 * in a second record after it. PUT 64 connections, 3 nodes: about
	 * +5%. The core has already stepped those messages: process_parked
	 * sees the current leadership. */
	if (n->parked.head)
		process_parked(n);
	drain(n);
	if (tick) {
		/* Our REST URL to the peers, about every second (20 ticks of
		 * heartbeat/2), the first time at the first tick. */
		if (n->hello_ticks++ % 20 == 0)
			node_send_hellos(n);
		sweep(n, now);
		maybe_compact(n);
		n->l0_files = kv_level_files(n->kv, 0);
		node_background_tick(n);
		if (kv_cleanup_error(n->kv) < 0) /* the store's cleanup thread */
			node_fail(n, KVFS_ESTORAGE);
		node_update_status(n);
	} else if (n->applied_now) {
		node_update_status(n);
	}
	node_flush(n); /* nothing is held while the loop waits */
}
