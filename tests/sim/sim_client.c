/*
 * The key-value state machine and the simulated clients.
 *
 * An entry is a little transaction record (put / delete / compare-and-swap on
 * one of SIM_KEYS keys). Clients issue one request at a time through a node
 * of their choice (the last leader hint, or a random node), exactly as HTTP
 * clients would: writes are proposals that complete when the entry is applied
 * on that node (success if the applied entry at the proposal's index has the
 * proposal's term, definite failure otherwise: raft.h, "lost proposals");
 * reads go through ReadIndex and are served once the node applied the read
 * index. A crash or a client timeout makes a write's outcome indeterminate.
 * Every call and return is recorded for the linearizability checker.
 */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "tests/sim/sim.h"

struct sim_req {
	uint64_t id;
	int client;
	enum lc_kind kind;
	int key;
	int64_t value, expected;
	uint64_t call, node;
	uint64_t index, term; /* writes, once proposed */
	uint64_t read_index;
	bool read_ok; /* read index known */
	bool done;
};

struct sim_client {
	int id;
	struct sim_req *cur;
	uint64_t hint;
	int64_t seen[SIM_KEYS];
};

#define CLIENT_TIMEOUT_US 3000000

void finish_req(struct sim *s, struct sim_req *r, enum lc_outcome o, bool rec);

/* Entry layout: req id u64, kind u8, key u8, value i64, expected i64. */
#define ENTRY_LEN 26

void kv_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
	if (e->type == RAFT_ENTRY_CONF) {
		raft_conf_decode(&n->applied_conf, e->data, e->len);
		return;
	}
	if (e->type != RAFT_ENTRY_NORMAL || e->len != ENTRY_LEN)
		return;
	const uint8_t *p = e->data;
	uint64_t rid = get_le64(p);
	enum lc_kind kind = p[8];
	int key = p[9] % SIM_KEYS;
	int64_t value = (int64_t)get_le64(p + 10), expected = (int64_t)get_le64(p + 18);
	enum lc_outcome out = LC_OK;
	switch (kind) {
	case LC_PUT:
		n->kv[key] = value;
		break;
	case LC_DELETE:
		out = n->kv[key] != LC_ABSENT ? LC_OK : LC_FAIL;
		n->kv[key] = LC_ABSENT;
		break;
	case LC_CAS:
		if (n->kv[key] == expected)
			n->kv[key] = value;
		else
			out = LC_FAIL;
		break;
	default:
		break;
	}
	/* Complete the write waiting here, if any. */
	for (size_t i = 0; i < n->n_waiting; i++) {
		struct sim_req *r = n->waiting[i];
		if (r->done || r->kind == LC_GET || r->index != e->index)
			continue;
		if (r->term == e->term && r->id == rid) {
			if (s->n_acked == s->cap_acked) {
				s->cap_acked = s->cap_acked ? s->cap_acked * 2 : 256;
				s->acked_idx = realloc(s->acked_idx, s->cap_acked * 8);
				s->acked_hash = realloc(s->acked_hash, s->cap_acked * 8);
				if (!s->acked_idx || !s->acked_hash)
					abort();
			}
			s->acked_idx[s->n_acked] = e->index;
			s->acked_hash[s->n_acked++] = n->applied_hash;
			finish_req(s, r, out, true);
		} else {
			finish_req(s, r, LC_FAIL, false); /* overwritten: never applies */
		}
	}
}

void kv_snapshot(const struct sim_node *n, uint8_t **data, size_t *len)
{
	*len = 8 + 8 * SIM_KEYS + 8;
	*data = malloc(*len);
	if (!*data)
		abort();
	put_le64(*data, n->applied);
	for (int k = 0; k < SIM_KEYS; k++)
		put_le64(*data + 8 + 8 * k, (uint64_t)n->kv[k]);
	put_le64(*data + 8 + 8 * SIM_KEYS, n->applied_hash);
}

int kv_restore(struct sim_node *n, const uint8_t *data, size_t len)
{
	if (len != 8 + 8 * SIM_KEYS + 8)
		return -1;
	for (int k = 0; k < SIM_KEYS; k++)
		n->kv[k] = (int64_t)get_le64(data + 8 + 8 * k);
	n->applied_hash = get_le64(data + 8 + 8 * SIM_KEYS);
	return 0;
}

static void client_next(struct sim *s, void *arg);

/* Ends a request: records it in the history (unless it definitely had no
 * effect) and lets the client go on. */
void finish_req(struct sim *s, struct sim_req *r, enum lc_outcome o, bool rec)
{
	struct sim_client *c = &s->clients[r->client];
	if (r->done)
		return;
	r->done = true;
	if (rec) {
		struct lc_op op = {.client = r->client,
				   .kind = r->kind,
				   .key = r->key,
				   .value = r->value,
				   .expected = r->expected,
				   .call = (int64_t)r->call,
				   .ret = o == LC_UNKNOWN ? LC_INF : (int64_t)s->now,
				   .outcome = o};
		lc_history_add(&s->hist, &op);
		if (o == LC_UNKNOWN)
			s->st.ops_unknown++;
		else
			s->st.ops_ok++;
		if (o != LC_UNKNOWN && r->kind == LC_GET)
			c->seen[r->key] = r->value;
		else if (o == LC_OK && (r->kind == LC_PUT || r->kind == LC_CAS))
			c->seen[r->key] = r->value;
	} else {
		s->st.ops_failed++;
	}
	if (c->cur == r) {
		c->cur = NULL;
		if (s->clients_on)
			sim_schedule_fn(s, s->now + sim_rand_range(s, 0, 30000), client_next, c);
	}
}

static void on_timeout(struct sim *s, void *arg)
{
	struct sim_req *r = arg;
	if (r->done)
		return;
	/* Liveness: once the faults stopped and the cluster settled, requests
	 * to members of the configuration must complete, not time out. */
	uint64_t leader = sim_leader(s);
	if (s->liveness_from && s->now >= s->liveness_from && leader &&
	    raft_conf_find(raft_conf_get(s->nodes[leader].core), r->node))
		sim_violation(s,
			      "liveness: request %llu to n%llu (called at %.3fms) timed out after "
			      "the faults stopped",
			      (unsigned long long)r->id, (unsigned long long)r->node,
			      (double)r->call / 1000.0);
	/* The client gives up: a write may still take effect later. */
	finish_req(s, r, LC_UNKNOWN, r->kind != LC_GET);
}

static void waiting_add(struct sim_node *n, struct sim_req *r)
{
	if (n->n_waiting == n->cap_waiting) {
		n->cap_waiting = n->cap_waiting ? n->cap_waiting * 2 : 16;
		n->waiting = realloc(n->waiting, n->cap_waiting * sizeof(*n->waiting));
		if (!n->waiting)
			abort();
	}
	n->waiting[n->n_waiting++] = r;
}

static void waiting_gc(struct sim_node *n)
{
	size_t k = 0;
	for (size_t i = 0; i < n->n_waiting; i++)
		if (!n->waiting[i]->done)
			n->waiting[k++] = n->waiting[i];
	n->n_waiting = k;
}

void node_handle_req(struct sim *s, struct sim_node *n, struct sim_req *r)
{
	struct sim_client *c = &s->clients[r->client];
	uint64_t hint = 0;
	int rv;

	if (r->done)
		return;
	waiting_gc(n);
	if (r->kind == LC_GET) {
		rv = raft_read_index(n->core, r->id);
		if (rv) {
			finish_req(s, r, LC_FAIL, false);
			return;
		}
		waiting_add(n, r);
		return;
	}
	uint8_t e[ENTRY_LEN];
	put_le64(e, r->id);
	e[8] = (uint8_t)r->kind;
	e[9] = (uint8_t)r->key;
	put_le64(e + 10, (uint64_t)r->value);
	put_le64(e + 18, (uint64_t)r->expected);
	rv = raft_propose(n->core, e, sizeof(e), &r->index, &r->term, &hint);
	if (rv) {
		if (hint)
			c->hint = hint;
		finish_req(s, r, LC_FAIL, false);
		return;
	}
	waiting_add(n, r);
}

/* A snapshot replaced the entries up to index: writes waiting for them
 * cannot learn their outcome here (raft.h, lost proposals). */
void clients_snapshot_installed(struct sim *s, struct sim_node *n, uint64_t index)
{
	for (size_t i = 0; i < n->n_waiting; i++) {
		struct sim_req *r = n->waiting[i];
		if (!r->done && r->kind != LC_GET && r->index <= index)
			finish_req(s, r, LC_UNKNOWN, true);
	}
}

void clients_read_result(struct sim *s, struct sim_node *n, const struct raft_read *rr)
{
	for (size_t i = 0; i < n->n_waiting; i++) {
		struct sim_req *r = n->waiting[i];
		if (r->done || r->kind != LC_GET || r->id != rr->ctx)
			continue;
		if (rr->status) {
			finish_req(s, r, LC_FAIL, false);
			return;
		}
		r->read_ok = true;
		r->read_index = rr->index;
		return;
	}
}

void clients_check_reads(struct sim *s, struct sim_node *n)
{
	for (size_t i = 0; i < n->n_waiting; i++) {
		struct sim_req *r = n->waiting[i];
		if (r->done || r->kind != LC_GET || !r->read_ok || n->applied < r->read_index)
			continue;
		r->value = n->kv[r->key];
		finish_req(s, r, LC_OK, true);
	}
	waiting_gc(n);
}

void clients_node_down(struct sim *s, struct sim_node *n)
{
	for (size_t i = 0; i < n->n_waiting; i++) {
		struct sim_req *r = n->waiting[i];
		if (r->kind == LC_GET)
			finish_req(s, r, LC_FAIL, false);
		else
			finish_req(s, r, LC_UNKNOWN, true);
	}
	n->n_waiting = 0;
	for (size_t i = 0; i < n->n_reqs_in; i++)
		finish_req(s, n->reqs_in[i], LC_FAIL, false); /* never reached Raft */
	n->n_reqs_in = 0;
}

static void client_next(struct sim *s, void *arg)
{
	struct sim_client *c = arg;
	if (!s->clients_on || c->cur)
		return;
	struct sim_req *r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	if (s->n_reqs == s->cap_reqs) {
		s->cap_reqs = s->cap_reqs ? s->cap_reqs * 2 : 1024;
		s->reqs = realloc(s->reqs, s->cap_reqs * sizeof(*s->reqs));
		if (!s->reqs)
			abort();
	}
	s->reqs[s->n_reqs++] = r;
	r->id = ++s->next_req;
	r->client = c->id;
	r->key = (int)sim_rand_range(s, 0, SIM_KEYS - 1);
	r->call = s->now;
	unsigned p = sim_rand_range(s, 1, 100);
	if (p <= 40) {
		r->kind = LC_GET;
	} else if (p <= 70) {
		r->kind = LC_PUT;
		r->value = (int64_t)++s->next_value;
	} else if (p <= 80) {
		r->kind = LC_DELETE;
	} else {
		r->kind = LC_CAS;
		r->value = (int64_t)++s->next_value;
		r->expected = sim_rand_range(s, 0, 3) ? c->seen[r->key] : LC_ABSENT;
	}
	uint64_t node =
	    c->hint && sim_rand_range(s, 0, 2) ? c->hint : sim_rand_range(s, 1, s->o.nodes);
	r->node = node;
	c->cur = r;
	struct sim_node *n = &s->nodes[node];
	sim_schedule_fn(s, s->now + CLIENT_TIMEOUT_US, on_timeout, r);
	if (!n->up) {
		finish_req(s, r, LC_FAIL, false); /* connection refused */
		return;
	}
	if (n->busy || n->paused) {
		if (n->n_reqs_in == n->cap_reqs_in) {
			n->cap_reqs_in = n->cap_reqs_in ? n->cap_reqs_in * 2 : 16;
			n->reqs_in = realloc(n->reqs_in, n->cap_reqs_in * sizeof(*n->reqs_in));
			if (!n->reqs_in)
				abort();
		}
		n->reqs_in[n->n_reqs_in++] = r;
		return;
	}
	node_handle_req(s, n, r);
	sim_pump(s, n);
}

void clients_start(struct sim *s, unsigned n)
{
	s->clients = calloc(n + 1, sizeof(*s->clients));
	if (!s->clients)
		abort();
	s->clients_on = true;
	for (unsigned i = 0; i < n; i++) {
		s->clients[i].id = (int)i;
		for (int k = 0; k < SIM_KEYS; k++)
			s->clients[i].seen[k] = LC_ABSENT;
		sim_schedule_fn(s, s->now + sim_rand_range(s, 0, 50000), client_next,
				&s->clients[i]);
	}
}

void clients_stop(struct sim *s)
{
	s->clients_on = false;
}

void clients_free(struct sim *s)
{
	s->clients_on = false;
	for (size_t i = 0; i < s->n_reqs; i++)
		free(s->reqs[i]);
	free(s->reqs);
	s->reqs = NULL;
	s->n_reqs = 0;
	s->cap_reqs = 0;
	free(s->clients);
	s->clients = NULL;
}

unsigned clients_pending(struct sim *s, uint64_t older_than)
{
	unsigned k = 0;
	for (size_t i = 0; i < s->n_reqs; i++)
		if (!s->reqs[i]->done && s->reqs[i]->call < older_than)
			k++;
	return k;
}

enum lc_verdict clients_check(struct sim *s, FILE *explain)
{
	return lc_check(&s->hist, 2000000, explain);
}
