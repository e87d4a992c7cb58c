/*
 * Linearizability checking of key-value histories (lincheck.h): Wing & Gong's
 * search over the call/return events of one key, with Lowe's memoisation, as
 * Porcupine does it. The events form a doubly linked list sorted by time;
 * linearizing an operation "lifts" its call and return out of the list; a
 * return reached while its operation is still in the list means the current
 * choices cannot work, so the search backtracks. The cache of explored
 * (linearized set, state) pairs keeps the search polynomial in practice.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/lincheck.h"

void lc_history_init(struct lc_history *h)
{
	memset(h, 0, sizeof(*h));
}

void lc_history_free(struct lc_history *h)
{
	for (size_t i = 0; i < h->n_names; i++)
		free(h->names[i]);
	free(h->names);
	free(h->ops);
	memset(h, 0, sizeof(*h));
}

int lc_history_add(struct lc_history *h, const struct lc_op *op)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		struct lc_op *v = realloc(h->ops, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->ops = v;
		h->cap = cap;
	}
	h->ops[h->n++] = *op;
	return 0;
}

int64_t lc_intern(struct lc_history *h, const char *s)
{
	for (size_t i = 0; i < h->n_names; i++)
		if (strcmp(h->names[i], s) == 0)
			return (int64_t)i;
	if (h->n_names == h->cap_names) {
		size_t cap = h->cap_names ? h->cap_names * 2 : 64;
		char **v = realloc(h->names, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->names = v;
		h->cap_names = cap;
	}
	h->names[h->n_names] = strdup(s);
	if (!h->names[h->n_names])
		return -ENOMEM;
	return (int64_t)h->n_names++;
}

static const char *name_of(const struct lc_history *h, int64_t id, char *buf, size_t len)
{
	if (id == LC_ABSENT)
		return "absent";
	if (id >= 0 && (size_t)id < h->n_names)
		return h->names[id];
	snprintf(buf, len, "v%" PRId64, id);
	return buf;
}

static const char *key_of(const struct lc_history *h, int64_t id, char *buf, size_t len)
{
	if (id >= 0 && (size_t)id < h->n_names)
		return h->names[id];
	snprintf(buf, len, "k%" PRId64, id);
	return buf;
}

static int parse_time(const char *s, int64_t *out)
{
	char *end;
	if (strcmp(s, "-") == 0) {
		*out = LC_INF;
		return 0;
	}
	long long v = strtoll(s, &end, 10);
	if (*end || v < 0)
		return -1;
	*out = v;
	return 0;
}

int lc_history_load(struct lc_history *h, FILE *f, char *err, size_t errlen)
{
	char line[4096];
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), f)) {
		char *tok[9];
		int n = 0;
		char *save = NULL;
		lineno++;
		for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 9;
		     t = strtok_r(NULL, " \t\r\n", &save))
			tok[n++] = t;
		if (n == 0 || tok[0][0] == '#')
			continue;
		if (n != 8) {
			snprintf(err, errlen, "line %u: expected 8 fields, got %d", lineno, n);
			return -1;
		}
		struct lc_op op = {0};
		op.client = atoi(tok[0][0] == 'c' ? tok[0] + 1 : tok[0]);
		if (strcmp(tok[1], "put") == 0)
			op.kind = LC_PUT;
		else if (strcmp(tok[1], "get") == 0)
			op.kind = LC_GET;
		else if (strcmp(tok[1], "delete") == 0)
			op.kind = LC_DELETE;
		else if (strcmp(tok[1], "cas") == 0)
			op.kind = LC_CAS;
		else {
			snprintf(err, errlen, "line %u: unknown operation '%s'", lineno, tok[1]);
			return -1;
		}
		op.key = lc_intern(h, tok[2]);
		if (parse_time(tok[5], &op.call) || op.call == LC_INF ||
		    parse_time(tok[6], &op.ret)) {
			snprintf(err, errlen, "line %u: bad time", lineno);
			return -1;
		}
		const char *res = tok[7];
		if (strcmp(res, "error") == 0)
			continue;
		if (op.ret != LC_INF && op.ret < op.call) {
			snprintf(err, errlen, "line %u: returns before its call", lineno);
			return -1;
		}
		if (op.kind == LC_PUT || op.kind == LC_CAS) {
			if (strcmp(tok[3], "-") == 0 || strcmp(tok[3], "absent") == 0) {
				snprintf(err, errlen, "line %u: missing value", lineno);
				return -1;
			}
			op.value = lc_intern(h, tok[3]);
		}
		if (op.kind == LC_CAS)
			op.expected =
			    strcmp(tok[4], "absent") == 0 ? LC_ABSENT : lc_intern(h, tok[4]);
		if (strcmp(res, "?") == 0) {
			op.outcome = LC_UNKNOWN;
			op.ret = LC_INF;
		} else if (op.ret == LC_INF) {
			snprintf(err, errlen, "line %u: no return time but a result", lineno);
			return -1;
		} else if (op.kind == LC_GET) {
			op.outcome = LC_OK;
			op.value = strcmp(res, "absent") == 0 ? LC_ABSENT : lc_intern(h, res);
		} else if (op.kind == LC_PUT) {
			if (strcmp(res, "ok") != 0)
				goto bad_result;
			op.outcome = LC_OK;
		} else if (op.kind == LC_DELETE) {
			if (strcmp(res, "found") == 0)
				op.outcome = LC_OK;
			else if (strcmp(res, "absent") == 0)
				op.outcome = LC_FAIL;
			else
				goto bad_result;
		} else {
			if (strcmp(res, "ok") == 0)
				op.outcome = LC_OK;
			else if (strcmp(res, "fail") == 0)
				op.outcome = LC_FAIL;
			else
				goto bad_result;
		}
		if (lc_history_add(h, &op)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		continue;
	bad_result:
		snprintf(err, errlen, "line %u: bad result '%s' for %s", lineno, res, tok[1]);
		return -1;
	}
	return 0;
}

static void write_op(const struct lc_history *h, const struct lc_op *o, FILE *f)
{
	static const char *const kinds[] = {"?", "put", "get", "delete", "cas"};
	char b1[32], b2[32], b3[32], b4[32];
	const char *value = "-", *expected = "-", *res = "?";
	char ret[32] = "-";

	if (o->kind == LC_PUT || o->kind == LC_CAS)
		value = name_of(h, o->value, b1, sizeof(b1));
	if (o->kind == LC_CAS)
		expected = name_of(h, o->expected, b2, sizeof(b2));
	if (o->outcome != LC_UNKNOWN) {
		snprintf(ret, sizeof(ret), "%" PRId64, o->ret);
		switch (o->kind) {
		case LC_PUT:
			res = "ok";
			break;
		case LC_GET:
			res = name_of(h, o->value, b3, sizeof(b3));
			break;
		case LC_DELETE:
			res = o->outcome == LC_OK ? "found" : "absent";
			break;
		case LC_CAS:
			res = o->outcome == LC_OK ? "ok" : "fail";
			break;
		}
	}
	fprintf(f, "c%d %s %s %s %s %" PRId64 " %s %s\n", o->client, kinds[o->kind],
		key_of(h, o->key, b4, sizeof(b4)), value, expected, o->call, ret, res);
}

void lc_history_write(const struct lc_history *h, FILE *f)
{
	for (size_t i = 0; i < h->n; i++)
		write_op(h, &h->ops[i], f);
}

/* ---- the search ---------------------------------------------------------- */

struct ev {
	int64_t time;
	int op;	   /* index into the key's op array */
	bool ret;  /* return event */
	int match; /* call: index of its return event */
	int prev, next;
};

/* The model: one register that may be absent. Returns true if op may take
 * effect in state s with its recorded outcome; *ns = the state after. */
static bool model_step(const struct lc_op *o, int64_t s, int64_t *ns)
{
	*ns = s;
	switch (o->kind) {
	case LC_PUT:
		*ns = o->value;
		return true;
	case LC_GET:
		return o->value == s;
	case LC_DELETE:
		*ns = LC_ABSENT;
		if (o->outcome == LC_UNKNOWN)
			return true;
		return (o->outcome == LC_OK) == (s != LC_ABSENT);
	case LC_CAS:
		if (o->outcome == LC_UNKNOWN) {
			if (s == o->expected)
				*ns = o->value;
			return true;
		}
		if (o->outcome == LC_OK) {
			*ns = o->value;
			return s == o->expected;
		}
		return s != o->expected;
	}
	return false;
}

/* Memory the memoisation cache of one key may use. */
#define LC_CACHE_MAX_BYTES ((size_t)512 << 20)

struct cache {
	uint64_t *slots; /* each: [used|state] + W words of bitset */
	size_t cap, used, width;
};

static uint64_t hash_words(const uint64_t *w, size_t n, int64_t s)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)s;
	for (size_t i = 0; i < n; i++) {
		h ^= w[i];
		h *= 1099511628211ULL;
		h ^= h >> 29;
	}
	return h;
}

static int cache_grow(struct cache *c);

/* Inserts (bits, s); returns 1 if new, 0 if present, -1 on no memory. */
static int cache_insert(struct cache *c, const uint64_t *bits, int64_t s)
{
	size_t stride = c->width + 2;
	if ((c->used + 1) * 2 > c->cap && cache_grow(c))
		return -1;
	size_t i = hash_words(bits, c->width, s) & (c->cap - 1);
	for (;;) {
		uint64_t *slot = c->slots + i * stride;
		if (!slot[0]) {
			slot[0] = 1;
			slot[1] = (uint64_t)s;
			memcpy(slot + 2, bits, c->width * 8);
			c->used++;
			return 1;
		}
		if (slot[1] == (uint64_t)s && memcmp(slot + 2, bits, c->width * 8) == 0)
			return 0;
		i = (i + 1) & (c->cap - 1);
	}
}

static int cache_grow(struct cache *c)
{
	struct cache n = {.cap = c->cap ? c->cap * 2 : 1024, .width = c->width};
	size_t stride = c->width + 2;
	if (n.cap * stride * 8 > LC_CACHE_MAX_BYTES)
		return -1; /* the search gives up rather than swamp the machine */
	n.slots = calloc(n.cap, stride * 8);
	if (!n.slots)
		return -1;
	for (size_t i = 0; i < c->cap; i++) {
		uint64_t *slot = c->slots + i * stride;
		if (slot[0])
			cache_insert(&n, slot + 2, (int64_t)slot[1]);
	}
	free(c->slots);
	*c = n;
	return 0;
}

static int cmp_ev(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->ret != y->ret)
		return x->ret ? 1 : -1; /* calls first: equal times overlap */
	return x->op - y->op;
}

static void lift(struct ev *e, int i)
{
	struct ev *c = &e[i], *r = &e[c->match];
	e[c->prev].next = c->next;
	if (c->next >= 0)
		e[c->next].prev = c->prev;
	e[r->prev].next = r->next;
	if (r->next >= 0)
		e[r->next].prev = r->prev;
}

static void unlift(struct ev *e, int i)
{
	struct ev *c = &e[i], *r = &e[c->match];
	e[r->prev].next = c->match;
	if (r->next >= 0)
		e[r->next].prev = c->match;
	e[c->prev].next = i;
	if (c->next >= 0)
		e[c->next].prev = i;
}

struct frame {
	int call;
	int64_t state;
};

/* Checks the ops of one key. */
static enum lc_verdict check_key(const struct lc_history *h, const struct lc_op *ops, size_t n,
				 uint64_t max_steps, FILE *explain)
{
	size_t m = 2 * n;
	struct ev *e = calloc(m + 1, sizeof(*e));
	struct frame *stack = calloc(n + 1, sizeof(*stack));
	size_t width = (n + 63) / 64;
	uint64_t *bits = calloc(width + 1, 8);
	struct cache cache = {.width = width};
	enum lc_verdict verdict = LC_LINEARIZABLE;
	int64_t state = LC_ABSENT;
	size_t depth = 0, best = 0;
	int stuck_op = -1;
	int64_t stuck_state = LC_ABSENT;
	uint64_t steps = 0;

	if (!e || !stack || !bits) {
		verdict = LC_GAVE_UP;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		e[2 * i] = (struct ev){.time = ops[i].call, .op = (int)i, .ret = false};
		e[2 * i + 1] = (struct ev){.time = ops[i].ret, .op = (int)i, .ret = true};
	}
	qsort(e, m, sizeof(*e), cmp_ev);
	{
		int *ret_at = calloc(n + 1, sizeof(int));
		if (!ret_at) {
			verdict = LC_GAVE_UP;
			goto out;
		}
		for (size_t i = 0; i < m; i++)
			if (e[i].ret)
				ret_at[e[i].op] = (int)i;
		for (size_t i = 0; i < m; i++)
			if (!e[i].ret)
				e[i].match = ret_at[e[i].op];
		free(ret_at);
	}
	/* e[m] is the head sentinel. */
	for (size_t i = 0; i < m; i++) {
		e[i].prev = i == 0 ? (int)m : (int)i - 1;
		e[i].next = i + 1 < m ? (int)i + 1 : -1;
	}
	e[m].next = m ? 0 : -1;
	e[m].prev = -1;

	int cur = e[m].next;
	while (e[m].next >= 0) {
		if (++steps > max_steps) {
			verdict = LC_GAVE_UP;
			goto out;
		}
		if (cur < 0) {
			/* NEVER: the list ends with returns, which backtrack. */
			verdict = LC_GAVE_UP;
			goto out;
		}
		struct ev *ev = &e[cur];
		if (!ev->ret) {
			int64_t ns;
			const struct lc_op *o = &ops[ev->op];
			if (model_step(o, state, &ns)) {
				bits[ev->op / 64] |= 1ULL << (ev->op % 64);
				int fresh = cache_insert(&cache, bits, ns);
				if (fresh < 0) {
					verdict = LC_GAVE_UP;
					goto out;
				}
				if (fresh) {
					stack[depth++] = (struct frame){cur, state};
					state = ns;
					lift(e, cur);
					if (depth > best)
						best = depth;
					cur = e[m].next;
					continue;
				}
				bits[ev->op / 64] &= ~(1ULL << (ev->op % 64));
			}
			cur = ev->next;
		} else {
			if (depth == best && (stuck_op < 0 || depth >= best)) {
				stuck_op = ev->op;
				stuck_state = state;
			}
			if (depth == 0) {
				verdict = LC_VIOLATION;
				goto out;
			}
			struct frame f = stack[--depth];
			state = f.state;
			bits[e[f.call].op / 64] &= ~(1ULL << (e[f.call].op % 64));
			unlift(e, f.call);
			cur = e[f.call].next;
		}
	}
out:
	if (verdict == LC_VIOLATION && explain) {
		char b1[32], b2[32];
		fprintf(explain,
			"key %s: not linearizable. The longest linearizable prefix has %zu of %zu "
			"operations;\n",
			key_of(h, ops[0].key, b1, sizeof(b1)), best, n);
		if (stuck_op >= 0) {
			fprintf(explain,
				"  then no order explains this operation (register was %s):\n    ",
				name_of(h, stuck_state, b2, sizeof(b2)));
			write_op(h, &ops[stuck_op], explain);
			fprintf(explain, "  operations overlapping it:\n");
			int shown = 0;
			for (size_t i = 0; i < n && shown < 12; i++) {
				if ((int)i == stuck_op)
					continue;
				if (ops[i].call <= ops[stuck_op].ret &&
				    ops[stuck_op].call <= ops[i].ret) {
					fprintf(explain, "    ");
					write_op(h, &ops[i], explain);
					shown++;
				}
			}
		}
	}
	free(cache.slots);
	free(bits);
	free(stack);
	free(e);
	return verdict;
}

static int cmp_key(const void *a, const void *b)
{
	const struct lc_op *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->call != y->call)
		return x->call < y->call ? -1 : 1;
	return 0;
}

enum lc_verdict lc_check(const struct lc_history *h, uint64_t max_steps, FILE *explain)
{
	enum lc_verdict worst = LC_LINEARIZABLE;
	struct lc_op *ops;
	size_t n = 0;

	if (!max_steps)
		max_steps = 50000000;
	ops = malloc((h->n + 1) * sizeof(*ops));
	if (!ops)
		return LC_GAVE_UP;
	for (size_t i = 0; i < h->n; i++) {
		/* A read whose result is unknown constrains nothing. */
		if (h->ops[i].kind == LC_GET && h->ops[i].outcome == LC_UNKNOWN)
			continue;
		ops[n] = h->ops[i];
		if (ops[n].outcome == LC_UNKNOWN)
			ops[n].ret = LC_INF;
		n++;
	}
	qsort(ops, n, sizeof(*ops), cmp_key);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && ops[j].key == ops[i].key)
			j++;
		enum lc_verdict v = check_key(h, ops + i, j - i, max_steps, explain);
		if (v == LC_VIOLATION)
			worst = LC_VIOLATION;
		else if (v == LC_GAVE_UP && worst == LC_LINEARIZABLE)
			worst = LC_GAVE_UP;
		i = j;
	}
	free(ops);
	return worst;
}
