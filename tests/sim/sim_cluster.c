/*
 * The simulated cluster: event queue, network, disks, and the node loop
 * that drives each Raft core exactly as kvfsd's node loop does (see sim.h).
 * Everything is deterministic: one PRNG (splitmix64) seeded from the run's
 * seed decides delays, losses and fault timings, and events at the same
 * simulated time run in the order they were scheduled.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

enum ev_type { EV_TICK = 1, EV_DELIVER, EV_FSYNC, EV_FN };

struct sim_pkt {
	struct raft_msg m;
	/* followed by entries, their data, conf bytes and snapshot bytes */
};

struct sim_ev {
	uint64_t time, seq;
	int type;
	uint64_t node, life;
	void *p;
	void (*fn)(struct sim *, void *);
};

/* ---- utilities ----------------------------------------------------------- */

uint64_t sim_rand(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

unsigned sim_rand_range(struct sim *s, unsigned lo, unsigned hi)
{
	return lo + (unsigned)(sim_rand(s) % (uint64_t)(hi - lo + 1));
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		fprintf(stderr, "kvfs-sim: out of memory\n");
		abort();
	}
	return q;
}

#define PUSH(arr, n, cap, val)                                                                     \
	do {                                                                                       \
		if ((n) == (cap)) {                                                                \
			(cap) = (cap) ? (cap)*2 : 16;                                              \
			(arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                           \
		}                                                                                  \
		(arr)[(n)++] = (val);                                                              \
	} while (0)

void sim_log(struct sim *s, const char *fmt, ...)
{
	va_list ap;
	if (!s->o.trace)
		return;
	fprintf(s->o.trace_out, "%10.3f sim ", (double)s->now / 1000.0);
	va_start(ap, fmt);
	vfprintf(s->o.trace_out, fmt, ap);
	va_end(ap);
	fputc('\n', s->o.trace_out);
}

void sim_violation(struct sim *s, const char *fmt, ...)
{
	char buf[480];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!s->violations)
		snprintf(s->first_violation, sizeof(s->first_violation), "t=%.3fms %s",
			 (double)s->now / 1000.0, buf);
	s->violations++;
	if (s->o.trace)
		fprintf(s->o.trace_out, "%10.3f VIOLATION %s\n", (double)s->now / 1000.0, buf);
}

static void tracer_emit(void *data, uint64_t id, int level, const char *line)
{
	struct sim *s = data;
	(void)level;
	fprintf(s->o.trace_out, "%10.3f n%llu %s\n", (double)s->now / 1000.0,
		(unsigned long long)id, line);
}

/* ---- event queue (binary heap on (time, seq)) ---------------------------- */

static bool ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void ev_push(struct sim *s, struct sim_ev ev)
{
	ev.seq = s->ev_seq++;
	if (s->n_heap == s->cap_heap) {
		s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 1024;
		s->heap = xrealloc(s->heap, s->cap_heap * sizeof(*s->heap));
	}
	size_t i = s->n_heap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_less(&ev, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = ev;
}

static struct sim_ev ev_pop(struct sim *s)
{
	struct sim_ev top = s->heap[0], last = s->heap[--s->n_heap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct sim_ev *best = &last;
		if (l < s->n_heap && ev_less(&s->heap[l], best))
			m = l, best = &s->heap[l];
		if (r < s->n_heap && ev_less(&s->heap[r], best))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (s->n_heap)
		s->heap[i] = last;
	return top;
}

void sim_schedule_fn(struct sim *s, uint64_t at, void (*fn)(struct sim *, void *), void *arg)
{
	ev_push(s, (struct sim_ev){.time = at, .type = EV_FN, .fn = fn, .p = arg});
}

/* ---- network ------------------------------------------------------------- */

static struct sim_pkt *pkt_copy(const struct raft_msg *m)
{
	size_t size = sizeof(struct sim_pkt) + m->n_entries * sizeof(struct raft_entry) +
		      m->conf_len + m->len;
	for (size_t i = 0; i < m->n_entries; i++)
		size += m->entries[i].len;
	struct sim_pkt *p = xrealloc(NULL, size);
	uint8_t *cur = (uint8_t *)(p + 1);
	p->m = *m;
	if (m->n_entries) {
		struct raft_entry *e = (struct raft_entry *)cur;
		cur += m->n_entries * sizeof(*e);
		for (size_t i = 0; i < m->n_entries; i++) {
			e[i] = m->entries[i];
			if (e[i].len) {
				memcpy(cur, m->entries[i].data, e[i].len);
				e[i].data = cur;
				cur += e[i].len;
			}
		}
		p->m.entries = e;
	}
	if (m->conf_len) {
		memcpy(cur, m->conf_data, m->conf_len);
		p->m.conf_data = cur;
		cur += m->conf_len;
	}
	if (m->len) {
		memcpy(cur, m->data, m->len);
		p->m.data = cur;
	}
	return p;
}

static void net_send(struct sim *s, struct sim_node *n, struct raft_msg *m)
{
	s->st.msgs++;
	if (s->on_send)
		s->on_send(s, m);
	if (m->type == RAFT_MSG_SNAPSHOT) {
		/* The driver fills the chunk from its own snapshot. */
		if (n->disk.snap.index != m->snap_index || !n->disk.snap_data) {
			s->st.dropped++;
			return;
		}
		size_t off = (size_t)m->offset;
		if (off > n->disk.snap_len)
			off = n->disk.snap_len;
		size_t len = n->disk.snap_len - off;
		if (len > n->chunk)
			len = n->chunk;
		m->data = n->disk.snap_data + off;
		m->len = len;
		m->done = off + len == n->disk.snap_len;
	}
	if (m->to > s->o.nodes || m->to == 0 || s->cut[m->from][m->to] ||
	    (s->drop && s->drop(s, m))) {
		s->st.dropped++;
		return;
	}
	if (s->loss_pct && sim_rand_range(s, 1, 100) <= s->loss_pct) {
		s->st.dropped++;
		return;
	}
	unsigned copies = 1;
	if (s->dup_pct && sim_rand_range(s, 1, 100) <= s->dup_pct)
		copies = 2;
	for (unsigned k = 0; k < copies; k++) {
		uint64_t d = sim_rand_range(s, s->o.net_min_us, s->o.net_max_us);
		if (s->spike_pct && sim_rand_range(s, 1, 100) <= s->spike_pct)
			d += sim_rand_range(s, 5000, 60000); /* reordering spike */
		ev_push(s, (struct sim_ev){.time = s->now + d,
					   .type = EV_DELIVER,
					   .node = m->to,
					   .p = pkt_copy(m)});
	}
}

static void send_all(struct sim *s, struct sim_node *n, struct raft_msg *msgs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		net_send(s, n, &msgs[i]);
}

void sim_cut(struct sim *s, uint64_t from, uint64_t to, bool cut)
{
	s->cut[from][to] = cut;
}

void sim_heal(struct sim *s)
{
	memset(s->cut, 0, sizeof(s->cut));
}

void sim_partition(struct sim *s, const uint64_t *side, unsigned n)
{
	bool in[SIM_MAX_NODES + 1] = {0};
	for (unsigned i = 0; i < n; i++)
		in[side[i]] = true;
	for (uint64_t a = 1; a <= s->o.nodes; a++)
		for (uint64_t b = 1; b <= s->o.nodes; b++)
			if (in[a] != in[b])
				s->cut[a][b] = true;
}

void sim_isolate(struct sim *s, uint64_t id)
{
	sim_partition(s, &id, 1);
}

/* ---- disk ---------------------------------------------------------------- */

static struct sim_entry *disk_get(struct sim_disk *d, uint64_t index)
{
	if (index <= d->base_index || index > d->base_index + d->n_log)
		return NULL;
	return &d->log[index - d->base_index - 1];
}

static uint64_t disk_hash_at(struct sim_disk *d, uint64_t index)
{
	if (index == d->base_index)
		return d->base_hash;
	if (index == d->snap.index)
		return d->snap_hash;
	struct sim_entry *e = disk_get(d, index);
	return e ? e->hash : 0;
}

static void disk_truncate(struct sim_disk *d, uint64_t from)
{
	while (d->n_log && d->base_index + d->n_log >= from) {
		d->n_log--;
		free((void *)d->log[d->n_log].e.data);
	}
}

static void disk_drop_prefix(struct sim_disk *d, uint64_t upto)
{
	if (upto <= d->base_index)
		return;
	size_t k = (size_t)(upto - d->base_index);
	if (k > d->n_log)
		k = d->n_log;
	if (k == 0)
		return;
	d->base_hash = d->log[k - 1].hash;
	for (size_t i = 0; i < k; i++)
		free((void *)d->log[i].e.data);
	memmove(d->log, d->log + k, (d->n_log - k) * sizeof(*d->log));
	d->n_log -= k;
	d->base_index += k;
}

static void disk_reset(struct sim_disk *d, uint64_t index, uint64_t hash)
{
	disk_truncate(d, 0);
	d->n_log = 0;
	d->base_index = index;
	d->base_hash = hash;
}

static void disk_append(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
	struct sim_disk *d = &n->disk;
	struct sim_entry se;
	if (e->index != d->base_index + d->n_log + 1) {
		sim_violation(s, "n%llu: driver asked to append index %llu after %llu",
			      (unsigned long long)n->id, (unsigned long long)e->index,
			      (unsigned long long)(d->base_index + d->n_log));
		return;
	}
	se.e = *e;
	if (e->len) {
		void *p = xrealloc(NULL, e->len);
		memcpy(p, e->data, e->len);
		se.e.data = p;
	} else {
		se.e.data = NULL;
	}
	se.hash = chain_hash(disk_hash_at(d, e->index - 1), e);
	PUSH(d->log, d->n_log, d->cap_log, se);
	check_durable_entry(s, n, &d->log[d->n_log - 1]);
}

static void disk_free(struct sim_disk *d)
{
	disk_truncate(d, 0);
	free(d->log);
	free(d->snap_data);
	memset(d, 0, sizeof(*d));
}

/* ---- the node loop ------------------------------------------------------- */

static void schedule_tick(struct sim *s, struct sim_node *n)
{
	ev_push(
	    s, (struct sim_ev){
		   .time = s->now + s->o.tick_us, .type = EV_TICK, .node = n->id, .life = n->life});
}

static void take_snapshot(struct sim *s, struct sim_node *n)
{
	struct raft_status st;
	raft_status(n->core, &st);
	if (!s->o.snapshots || n->applied < n->disk.snap.index + n->snap_every ||
	    n->applied <= st.snap_index)
		return;
	uint64_t idx = n->applied;
	struct sim_entry *e = disk_get(&n->disk, idx);
	if (!e)
		return;
	uint8_t *data;
	size_t len;
	kv_snapshot(n, &data, &len);
	/* Durable before the log prefix it replaces is deleted. */
	free(n->disk.snap_data);
	n->disk.snap_data = data;
	n->disk.snap_len = len;
	n->disk.snap.index = idx;
	n->disk.snap.term = e->e.term;
	n->disk.snap.conf = n->applied_conf;
	n->disk.snap_hash = e->hash;
	uint64_t keep = n->snap_keep;
	if (raft_compact(n->core, idx, keep) != 0) {
		sim_violation(s, "n%llu: raft_compact(%llu) refused", (unsigned long long)n->id,
			      (unsigned long long)idx);
		return;
	}
	sim_log(s, "n%llu snapshot at %llu (keep %llu)", (unsigned long long)n->id,
		(unsigned long long)idx, (unsigned long long)keep);
	disk_drop_prefix(&n->disk, idx > keep ? idx - keep : 0);
}

static void step_input(struct sim *s, struct sim_node *n, struct sim_pkt *p)
{
	int rv = raft_step(n->core, &p->m);
	if (rv != 0)
		sim_violation(s, "n%llu: raft_step(%s) = %d", (unsigned long long)n->id,
			      raft_msg_name(p->m.type), rv);
	s->st.delivered++;
	free(p);
}

void sim_pump(struct sim *s, struct sim_node *n)
{
	if (!n->up || n->paused || n->busy)
		return;
	/* Inputs that queued up while the node was busy, in arrival order. */
	while (n->pending_ticks || n->n_inbox || n->n_reqs_in) {
		for (size_t i = 0; i < n->n_inbox; i++)
			step_input(s, n, n->inbox[i]);
		n->n_inbox = 0;
		for (; n->pending_ticks; n->pending_ticks--)
			raft_tick(n->core);
		size_t nr = n->n_reqs_in;
		n->n_reqs_in = 0;
		for (size_t i = 0; i < nr; i++)
			node_handle_req(s, n, n->reqs_in[i]);
	}
	check_leaders(s);
	if (!raft_ready(n->core, &n->u))
		return;
	s->st.records++;
	n->busy = true;
	send_all(s, n, n->u.msgs_early, n->u.n_msgs_early);
	ev_push(s, (struct sim_ev){.time = s->now + n->disk_extra_us +
					   sim_rand_range(s, s->o.disk_min_us, s->o.disk_max_us),
				   .type = EV_FSYNC,
				   .node = n->id,
				   .life = n->life});
}

static void write_chunk(struct sim_node *n, const struct raft_chunk *c)
{
	if (c->offset == 0) {
		n->in_len = 0;
		n->in_index = c->snap_index;
	}
	if (c->snap_index != n->in_index || c->offset != n->in_len)
		return; /* the core validated the order; stays unreachable */
	if (n->in_len + c->len > n->in_cap) {
		n->in_cap = (n->in_len + c->len) * 2;
		n->in_snap = xrealloc(n->in_snap, n->in_cap);
	}
	memcpy(n->in_snap + n->in_len, c->data, c->len);
	n->in_len += c->len;
}

static void on_fsync(struct sim *s, struct sim_node *n)
{
	struct raft_update *u = &n->u;

	if (n->crash_mode == 1) {
		sim_log(s, "n%llu crashes during fsync", (unsigned long long)n->id);
		sim_crash(s, n->id);
		return;
	}
	/* 1: the record becomes durable (atomically) */
	if (u->truncate_from)
		disk_truncate(&n->disk, u->truncate_from);
	for (size_t i = 0; i < u->n_entries; i++)
		disk_append(s, n, &u->entries[i]);
	if (u->has_hard_state)
		n->disk.hs = u->hs;
	for (size_t i = 0; i < u->n_chunks; i++)
		write_chunk(n, &u->chunks[i]);
	/* 2: send */
	send_all(s, n, u->msgs, u->n_msgs);
	/* 3: install, apply, reads */
	if (u->has_install) {
		const struct raft_install *in = &u->install;
		if (n->in_index != in->snap.index || kv_restore(n, n->in_snap, n->in_len) != 0) {
			sim_violation(s, "n%llu: snapshot %llu incomplete (%zu bytes)",
				      (unsigned long long)n->id, (unsigned long long)in->snap.index,
				      n->in_len);
		} else {
			uint64_t h = n->applied_hash;
			free(n->disk.snap_data);
			n->disk.snap_data = xrealloc(NULL, n->in_len);
			memcpy(n->disk.snap_data, n->in_snap, n->in_len);
			n->disk.snap_len = n->in_len;
			n->disk.snap = in->snap;
			n->disk.snap_hash = h;
			if (in->discard_log)
				disk_reset(&n->disk, in->snap.index, h);
			else
				disk_drop_prefix(&n->disk, in->snap.index);
			n->applied = in->snap.index;
			n->applied_conf = in->snap.conf;
			check_applied(s, n, in->snap.index, h);
			n->install_pending = in->snap.index;
			clients_snapshot_installed(s, n, in->snap.index);
			s->st.snap_installs++;
			sim_log(s, "n%llu installed snapshot %llu", (unsigned long long)n->id,
				(unsigned long long)in->snap.index);
		}
	}
	for (size_t i = 0; i < u->n_committed; i++) {
		const struct raft_entry *e = &u->committed[i];
		struct sim_entry *de = disk_get(&n->disk, e->index);
		if (e->index != n->applied + 1) {
			sim_violation(s, "n%llu: applies %llu after %llu",
				      (unsigned long long)n->id, (unsigned long long)e->index,
				      (unsigned long long)n->applied);
		}
		uint64_t h = de ? de->hash : chain_hash(n->applied_hash, e);
		if (!de || de->e.term != e->term)
			sim_violation(s, "n%llu: applies %llu which is not durable",
				      (unsigned long long)n->id, (unsigned long long)e->index);
		n->applied = e->index;
		n->applied_hash = h;
		kv_apply(s, n, e);
		s->st.applied_entries++;
		check_applied(s, n, e->index, h);
	}
	for (size_t i = 0; i < u->n_reads; i++) {
		if (s->on_read)
			s->on_read(s, n->id, &u->reads[i]);
		clients_read_result(s, n, &u->reads[i]);
	}
	bool voted = false; /* granted a vote in this record */
	for (size_t i = 0; i < u->n_msgs; i++)
		if (u->msgs[i].type == RAFT_MSG_VOTE_RESP && !u->msgs[i].reject)
			voted = true;
	raft_advance(n->core, u);
	n->busy = false;
	if (n->crash_mode == 3 && sim_rand_range(s, 0, 20) == 0) {
		sim_log(s, "n%llu (new leader) crashes", (unsigned long long)n->id);
		sim_crash(s, n->id);
		sim_restart_later(s, n->id, sim_rand_range(s, 200, 2000) * 1000ULL);
		return;
	}
	if (n->crash_mode == 2 && voted) {
		sim_log(s, "n%llu crashes right after voting", (unsigned long long)n->id);
		sim_crash(s, n->id);
		sim_restart_later(s, n->id, sim_rand_range(s, 50, 2000));
		return;
	}
	if (n->install_pending) {
		if (raft_snapshot_installed(n->core, n->install_pending) != 0)
			sim_violation(s, "n%llu: raft_snapshot_installed refused",
				      (unsigned long long)n->id);
		n->install_pending = 0;
	}
	take_snapshot(s, n);
	clients_check_reads(s, n);
	check_after_record(s, n);
	sim_pump(s, n);
}

static void on_deliver(struct sim *s, uint64_t id, struct sim_pkt *p)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up) {
		s->st.dropped++;
		free(p);
		return;
	}
	if (n->busy || n->paused) {
		if (n->n_inbox > 4096) { /* a full socket buffer drops */
			free(p);
			return;
		}
		PUSH(n->inbox, n->n_inbox, n->cap_inbox, p);
		return;
	}
	step_input(s, n, p);
	sim_pump(s, n);
}

static void on_tick(struct sim *s, struct sim_node *n)
{
	schedule_tick(s, n);
	if (n->busy || n->paused) {
		n->pending_ticks++;
		return;
	}
	raft_tick(n->core);
	sim_pump(s, n);
}

void sim_run_until(struct sim *s, uint64_t t)
{
	while (s->n_heap && s->heap[0].time <= t) {
		struct sim_ev ev = ev_pop(s);
		s->now = ev.time;
		struct sim_node *n = ev.node ? &s->nodes[ev.node] : NULL;
		switch (ev.type) {
		case EV_TICK:
			if (n->up && n->life == ev.life)
				on_tick(s, n);
			break;
		case EV_DELIVER:
			on_deliver(s, ev.node, ev.p);
			break;
		case EV_FSYNC:
			if (n->up && n->life == ev.life && n->busy)
				on_fsync(s, n);
			break;
		case EV_FN:
			ev.fn(s, ev.p);
			break;
		}
	}
	if (s->now < t)
		s->now = t;
}

/* ---- lifecycle ----------------------------------------------------------- */

void sim_crash(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up)
		return;
	sim_log(s, "n%llu crash (busy=%d)", (unsigned long long)id, n->busy);
	n->up = false;
	n->busy = false;
	n->paused = false;
	n->crash_mode = 0;
	raft_destroy(n->core); /* frees the unacknowledged record too */
	n->core = NULL;
	for (size_t i = 0; i < n->n_inbox; i++)
		free(n->inbox[i]);
	n->n_inbox = 0;
	n->pending_ticks = 0;
	n->in_len = 0;
	n->install_pending = 0;
	clients_node_down(s, n);
}

struct raft_conf sim_bootstrap_conf(const struct sim *s)
{
	struct raft_conf c;
	memset(&c, 0, sizeof(c));
	for (unsigned i = 1; i <= s->o.initial; i++) {
		c.servers[c.n].id = i;
		c.servers[c.n].role = RAFT_VOTER;
		snprintf(c.servers[c.n].addr, RAFT_ADDR_MAX, "sim://%u", i);
		c.n++;
	}
	return c;
}

int sim_restart(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];
	struct raft_config cfg = {0};
	struct raft_init init = {0};
	struct raft_entry *es = NULL;
	size_t ne = 0;
	int rv;

	if (n->up)
		return 0;
	n->life++;
	cfg.id = id;
	cfg.seed = s->o.seed * 31 + n->life;
	cfg.election_ticks = s->o.election_ticks;
	cfg.heartbeat_ticks = s->o.heartbeat_ticks;
	cfg.max_batch_entries = s->o.max_batch_entries;
	cfg.max_batch_bytes = 512;
	cfg.max_inflight = s->o.max_inflight;
	cfg.max_apply = 64;
	cfg.max_uncommitted = s->o.max_uncommitted;
	cfg.pre_vote = s->o.pre_vote;
	cfg.check_quorum = s->o.check_quorum;
	if (s->o.trace) {
		cfg.tracer.data = s;
		cfg.tracer.level = s->o.trace_level;
		cfg.tracer.emit = tracer_emit;
	}
	init.hs = n->disk.hs;
	init.snap = n->disk.snap;
	if (n->disk.bootstrap)
		init.conf = sim_bootstrap_conf(s);
	es = xrealloc(NULL, (n->disk.n_log + 1) * sizeof(*es));
	for (size_t i = 0; i < n->disk.n_log; i++)
		if (n->disk.log[i].e.index > n->disk.snap.index)
			es[ne++] = n->disk.log[i].e;
	init.entries = es;
	init.n_entries = ne;
	rv = raft_create(&cfg, &init, &n->core);
	free(es);
	if (rv) {
		sim_violation(s, "n%llu: raft_create failed: %d", (unsigned long long)id, rv);
		return rv;
	}
	if (n->disk.snap.index) {
		if (kv_restore(n, n->disk.snap_data, n->disk.snap_len))
			sim_violation(s, "n%llu: bad durable snapshot", (unsigned long long)id);
		n->applied_hash = n->disk.snap_hash;
		n->applied_conf = n->disk.snap.conf;
	} else {
		n->applied_conf = init.conf;
		for (unsigned k = 0; k < SIM_KEYS; k++)
			n->kv[k] = LC_ABSENT;
		n->applied_hash = 0;
	}
	n->applied = n->disk.snap.index;
	n->last_commit = 0;
	n->up = true;
	n->busy = false;
	n->paused = false;
	sim_log(s, "n%llu start (life %llu, snapshot %llu, %zu entries)", (unsigned long long)id,
		(unsigned long long)n->life, (unsigned long long)n->disk.snap.index, ne);
	/* spread the tick phases */
	ev_push(s, (struct sim_ev){.time = s->now + sim_rand_range(s, 1, s->o.tick_us),
				   .type = EV_TICK,
				   .node = id,
				   .life = n->life});
	return 0;
}

static void restart_fn(struct sim *s, void *arg)
{
	sim_restart(s, (uint64_t)(uintptr_t)arg);
}

void sim_wipe(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];
	sim_crash(s, id);
	sim_log(s, "n%llu wiped", (unsigned long long)id);
	disk_free(&n->disk); /* no bootstrap membership either */
	sim_restart(s, id);
}

void sim_restart_later(struct sim *s, uint64_t id, uint64_t after_us)
{
	sim_schedule_fn(s, s->now + after_us, restart_fn, (void *)(uintptr_t)id);
}

static void crash_fn(struct sim *s, void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	if (!s->nodes[id].up || !s->crash_next_ok)
		return;
	sim_crash(s, id);
	sim_restart_later(s, id, sim_rand_range(s, 100, 2000) * 1000ULL);
}

void sim_crash_later(struct sim *s, uint64_t id, uint64_t after_us)
{
	sim_schedule_fn(s, s->now + after_us, crash_fn, (void *)(uintptr_t)id);
}

void sim_pause(struct sim *s, uint64_t id, bool on)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up || n->paused == on)
		return;
	sim_log(s, "n%llu %s", (unsigned long long)id, on ? "paused" : "resumed");
	n->paused = on;
	if (!on)
		sim_pump(s, n);
}

void sim_preload(struct sim *s, uint64_t id, const uint64_t *terms, size_t n, uint64_t term)
{
	struct sim_node *nd = &s->nodes[id];
	for (size_t i = 0; i < n; i++) {
		struct raft_entry e = {.term = terms[i], .index = i + 1, .type = RAFT_ENTRY_EMPTY};
		disk_append(s, nd, &e);
	}
	nd->disk.hs.term = term;
}

uint64_t sim_leader(struct sim *s)
{
	uint64_t best = 0, best_term = 0;
	for (uint64_t i = 1; i <= s->o.nodes; i++) {
		struct sim_node *n = &s->nodes[i];
		if (!n->up)
			continue;
		struct raft_status st;
		raft_status(n->core, &st);
		if (st.state == RAFT_LEADER && st.term >= best_term) {
			best = i;
			best_term = st.term;
		}
	}
	return best;
}

struct raft_core *sim_core(struct sim *s, uint64_t id)
{
	return s->nodes[id].up ? s->nodes[id].core : NULL;
}

void sim_node_status(struct sim *s, uint64_t id, struct raft_status *st)
{
	memset(st, 0, sizeof(*st));
	if (s->nodes[id].up)
		raft_status(s->nodes[id].core, st);
}

void sim_default_opts(struct sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->nodes = 3;
	o->initial = 3;
	o->tick_us = 20000;
	o->election_ticks = 10;
	o->heartbeat_ticks = 2;
	o->net_min_us = 200;
	o->net_max_us = 3000;
	o->disk_min_us = 100;
	o->disk_max_us = 2000;
	o->trace_out = stdout;
	o->trace_level = RAFT_TRACE_INFO;
	o->pre_vote = true;
	o->check_quorum = true;
	o->clients = 4;
	o->snapshots = true;
	o->max_batch_entries = 16;
	o->max_inflight = 4;
}

int sim_init(struct sim *s, const struct sim_opts *o)
{
	memset(s, 0, sizeof(*s));
	s->o = *o;
	if (o->nodes < 1 || o->nodes > SIM_MAX_NODES || o->initial > o->nodes)
		return -EINVAL;
	s->rng = o->seed * 0x2545f4914f6cdd1dULL + 7;
	lc_history_init(&s->hist);
	for (uint64_t i = 1; i <= o->nodes; i++) {
		struct sim_node *n = &s->nodes[i];
		n->id = i;
		n->disk.bootstrap = i <= o->initial;
		n->snap_every = sim_rand_range(s, 20, 80);
		n->snap_keep = sim_rand_range(s, 0, 10);
		n->chunk = sim_rand_range(s, 5, 24);
	}
	return 0;
}

void sim_start_all(struct sim *s);

void sim_free(struct sim *s)
{
	for (uint64_t i = 1; i <= s->o.nodes; i++) {
		struct sim_node *n = &s->nodes[i];
		if (n->up)
			raft_destroy(n->core);
		for (size_t k = 0; k < n->n_inbox; k++)
			free(n->inbox[k]);
		free(n->inbox);
		free(n->reqs_in);
		free(n->waiting);
		free(n->in_snap);
		disk_free(&n->disk);
	}
	while (s->n_heap) {
		struct sim_ev ev = ev_pop(s);
		if (ev.type == EV_DELIVER)
			free(ev.p);
	}
	free(s->heap);
	free(s->terms);
	free(s->ledger);
	free(s->ledger_term);
	free(s->it);
	free(s->acked_idx);
	free(s->acked_hash);
	clients_free(s);
	lc_history_free(&s->hist);
}
