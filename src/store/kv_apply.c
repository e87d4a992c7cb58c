/*
 * The apply stage: evaluates committed transactions against the state machine
 * and writes a whole batch of them with one LevelDB write.
 *
 * Transactions in one batch must see each other's effects, but nothing reaches
 * LevelDB until the batch is complete, so changes are staged in an overlay (a
 * hash map key -> record | deleted) consulted before the database. A failed
 * precondition must leave no trace of its transaction, so every overlay change
 * made by the current transaction is recorded in an undo list and rolled back
 * if a later op of the same transaction fails. At the end, the overlay's final
 * state of each key joins the store's pending state with the applied index,
 * the key count and (if given) the membership, in one step readers see
 * whole; kv_sync() writes it to LevelDB (kv_pending.c): the database is
 * always a consistent prefix of the log (DESIGN.md §2).
 *
 * Determinism: results depend only on the database state and the entries
 * (mtime comes from the transaction, never from this node's clock), so every
 * replica applies every entry identically.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "store/kv_internal.h"
#include "store/txn.h"

struct undo {
	const uint8_t *key; /* the overlay entry's */
	uint32_t klen, hash;
	uint8_t state;
	uint8_t *rec; /* previous record (in the batch's chunks, like the key) */
	size_t rlen;
};

struct apply_ctx {
	struct kv *kv;
	struct ov_table ov;
	struct undo *undo;
	size_t n_undo, cap_undo;
	int64_t count_delta, txn_count_delta;
	/* The key filter's hash of the op being applied (its key and
	 * length), computed when its lines were prefetched. */
	const void *hkey;
	size_t hklen;
	uint64_t hash;
};

/* Current record of key (hash h) as the running batch sees it. *owned tells
 * whether the caller must kv_free() *rec (database read) or not (borrowed
 * from overlay). With m, an existing key the metadata cache knows is
 * answered from it: 0 with *m filled and *rec NULL. */
static int lookup_h(struct apply_ctx *c, const uint8_t *key, size_t klen, uint32_t h,
		    struct kv_revs *m, const uint8_t **rec, size_t *rlen, bool *owned)
{
	*owned = false;
	struct ov_ent *e = ov_find(&c->ov, key, klen, h);
	if (e && e->key && e->state != OV_DB) {
		if (e->state == OV_ABSENT)
			return KVFS_ENOTFOUND;
		*rec = e->rec;
		*rlen = e->rlen;
		return 0;
	}
	/* The key filter holds every live key, those applied by earlier
	 * batches and not in the database yet included (note_written adds them
	 * before kv_pending_merge, a filter build starts from the pending ones):
	 * a "no" rules out the pending state and the database alike, and a
	 * write of a new key costs neither a look at the pending maps (two
	 * probes of tables much bigger than the CPU caches) nor a read. Marked,
	 * so that the filter is told of the key if it is written
	 * (note_written). */
	bool filter = c->kv->bloom != NULL;
	if (filter && !kv_bloom_may_have(c->kv, key == c->hkey && klen == c->hklen
						    ? c->hash
						    : kv_bloom_hash(key, klen))) {
		if (!e || !e->key) {
			if (!(e = ov_slot(&c->ov, key, klen)))
				return -ENOMEM;
		}
		e->fresh = true;
		return KVFS_ENOTFOUND;
	}
	/* (Asked after the filter: a new key costs no probe of the cache.) */
	if (m && kv_meta_get(c->kv, key, klen, h, m)) {
		*rec = NULL;
		return 0;
	}
	/* Applied by an earlier batch, not in the database yet. */
	char *v;
	int rc = kv_pending_get(c->kv, key, klen, &v, rlen);
	if (rc == 0) {
		*rec = (const uint8_t *)v;
		*owned = true;
		return 0;
	}
	if (rc != 1)
		return rc; /* KVFS_ENOTFOUND: its deletion is pending */
	rc = kv_read_raw(c->kv, c->kv->ropts, key, klen, &v, rlen);
	if (rc == 0) {
		*rec = (const uint8_t *)v;
		*owned = true;
	}
	return rc;
}

static int lookup(struct apply_ctx *c, const uint8_t *key, size_t klen, const uint8_t **rec,
		  size_t *rlen, bool *owned)
{
	return lookup_h(c, key, klen, ov_hash(key, klen), NULL, rec, rlen, owned);
}

/* The revisions, version and mode of key as the running batch sees it: 0
 * (*r filled), KVFS_ENOTFOUND, or a fatal code. Reads the record only when
 * the metadata cache does not know the key, and caches what it read. */
static int lookup_revs(struct apply_ctx *c, const uint8_t *key, size_t klen, struct kv_revs *r)
{
	const uint8_t *rec, *val;
	size_t rlen, vlen;
	bool owned;
	struct record_meta m;
	uint32_t h = ov_hash(key, klen);
	int rc = lookup_h(c, key, klen, h, r, &rec, &rlen, &owned);
	if (rc || !rec)
		return rc; /* not found, failed, or a hit of the cache */
	rc = record_decode(rec, rlen, &m, &val, &vlen);
	if (rc == 0)
		*r = (struct kv_revs){m.create_rev, m.mod_rev, m.version, m.mode};
	if (owned) { /* read outside the running batch (its own changes are
		      * cached at its end) */
		if (rc == 0)
			kv_meta_put(c->kv, key, klen, h, r);
		kv_free((void *)rec);
	}
	return rc;
}

/* Whether key exists as the running batch sees it: 0, KVFS_ENOTFOUND, or a
 * fatal code. The metadata cache answers for the keys it knows; others are
 * looked up, but neither decoded nor cached (a delete needs no more). */
static int lookup_exists(struct apply_ctx *c, const uint8_t *key, size_t klen)
{
	const uint8_t *rec;
	size_t rlen;
	bool owned;
	struct kv_revs r;
	int rc = lookup_h(c, key, klen, ov_hash(key, klen), &r, &rec, &rlen, &owned);
	if (rc == 0 && owned)
		kv_free((void *)rec);
	return rc;
}

/* Sets key to rec (from make_record) or, with rec NULL, to deleted. */
static int stage(struct apply_ctx *c, const uint8_t *key, size_t klen, uint8_t *rec, size_t rlen)
{
	struct ov_ent *e = ov_slot(&c->ov, key, klen);
	if (e && c->n_undo == c->cap_undo) {
		size_t nc = c->cap_undo ? c->cap_undo * 2 : 16;
		struct undo *u = realloc(c->undo, nc * sizeof *u);
		if (u) {
			c->undo = u;
			c->cap_undo = nc;
		} else {
			e = NULL;
		}
	}
	if (!e)
		return -ENOMEM; /* (rec stays in the batch's chunks, unused) */
	c->undo[c->n_undo++] = (struct undo){e->key, e->klen, e->hash, e->state, e->rec, e->rlen};
	e->state = rec ? OV_PRESENT : OV_ABSENT;
	e->rec = rec;
	e->rlen = rlen;
	return 0;
}

/* (The records a transaction replaced or a rollback drops stay in the
 * batch's chunks, like every record a pending table replaces: ov_alloc.) */
static void txn_commit(struct apply_ctx *c)
{
	c->n_undo = 0;
	c->count_delta += c->txn_count_delta;
	c->txn_count_delta = 0;
}

static void txn_rollback(struct apply_ctx *c)
{
	while (c->n_undo > 0) {
		struct undo *u = &c->undo[--c->n_undo];
		struct ov_ent *e = ov_find(&c->ov, u->key, u->klen, u->hash);
		e->state = u->state;
		e->rec = u->rec;
		e->rlen = u->rlen;
	}
	c->txn_count_delta = 0;
}

/* A record in the running batch's chunks (freed with its pending table). */
static uint8_t *make_record(struct apply_ctx *c, const struct record_meta *m, const void *val,
			    size_t vlen, size_t *rlen)
{
	size_t h = record_header_size(m);
	uint8_t *r = ov_alloc(&c->ov, h + vlen);
	if (!r)
		return NULL;
	record_encode_header(r, m);
	if (vlen)
		memcpy(r + h, val, vlen);
	*rlen = h + vlen;
	return r;
}

/* Takes the record of key out of the running transaction: *rec becomes a
 * malloc'd copy owned by the caller and key is staged as deleted. Returns 0,
 * KVFS_ENOTFOUND, or a fatal code. */
static int take_record(struct apply_ctx *c, const uint8_t *key, size_t klen, uint8_t **rec,
		       size_t *rlen)
{
	const uint8_t *cur;
	bool owned;
	int rc = lookup(c, key, klen, &cur, rlen, &owned);
	if (rc)
		return rc;
	*rec = malloc(*rlen ? *rlen : 1);
	if (*rec)
		memcpy(*rec, cur, *rlen);
	if (owned)
		kv_free((void *)cur);
	if (!*rec)
		return -ENOMEM;
	if ((rc = stage(c, key, klen, NULL, 0)) < 0) {
		free(*rec);
		*rec = NULL;
		return rc;
	}
	c->txn_count_delta--;
	return 0;
}

/* Puts a record taken by take_record() at dst, taking ownership of rec: it
 * becomes a new key created and modified by this entry, replacing what dst
 * holds (KVFS_EEXIST instead under TXN_F_NO_REPLACE). */
static int place_record(struct apply_ctx *c, const uint8_t *dst, size_t dlen, uint8_t *rec,
			size_t rlen, uint8_t flags, uint64_t index)
{
	const uint8_t *drec, *val, *dval;
	size_t drlen, vlen, dvlen;
	bool downed;
	struct record_meta m, dm;
	uint64_t dversion = 0;
	int rc = record_decode(rec, rlen, &m, &val, &vlen);
	if (rc)
		goto err;
	rc = lookup(c, dst, dlen, &drec, &drlen, &downed);
	if (rc == 0) {
		if (record_decode(drec, drlen, &dm, &dval, &dvlen) == 0)
			dversion = dm.version;
		if (downed)
			kv_free((void *)drec);
		if (flags & TXN_F_NO_REPLACE) {
			rc = KVFS_EEXIST;
			goto err;
		}
	} else if (rc == KVFS_ENOTFOUND) {
		c->txn_count_delta++;
	} else {
		goto err;
	}
	m.create_rev = index;
	m.mod_rev = index;
	m.version = dversion + 1;
	uint8_t *nrec = make_record(c, &m, val, vlen, &rlen); /* the header's size may change */
	free(rec);
	return nrec ? stage(c, dst, dlen, nrec, rlen) : -ENOMEM;
err:
	free(rec);
	return rc;
}

/* RENAME: moves the record at key to dst within the running transaction. */
static int rename_key(struct apply_ctx *c, const struct txn_op *op, uint64_t index)
{
	bool same = op->key_len == op->dst_len && memcmp(op->key, op->dst, op->key_len) == 0;
	uint8_t *rec = NULL;
	size_t rlen;
	int rc;
	if (same) { /* onto itself: only the existence check applies */
		const uint8_t *cur;
		bool owned;
		if ((rc = lookup(c, op->key, op->key_len, &cur, &rlen, &owned)) == 0 && owned)
			kv_free((void *)cur);
	} else {
		rc = take_record(c, op->key, op->key_len, &rec, &rlen);
	}
	if (rc == KVFS_ENOTFOUND && !(op->flags & TXN_F_MUST_EXIST))
		return 0; /* txn.h: a missing source is an error only under MUST_EXIST */
	if (rc || same)
		return rc;
	return place_record(c, op->dst, op->dst_len, rec, rlen, op->flags, index);
}

struct keylist {
	uint8_t **keys;
	uint32_t *lens;
	size_t n, cap;
};

static void keylist_free(struct keylist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->lens);
}

static int keylist_add(struct keylist *l, const uint8_t *k, size_t len)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		uint8_t **nk = realloc(l->keys, nc * sizeof *nk);
		if (!nk)
			return -ENOMEM;
		l->keys = nk;
		uint32_t *nl = realloc(l->lens, nc * sizeof *nl);
		if (!nl)
			return -ENOMEM;
		l->lens = nl;
		l->cap = nc;
	}
	if (!(l->keys[l->n] = malloc(len ? len : 1)))
		return -ENOMEM;
	memcpy(l->keys[l->n], k, len);
	l->lens[l->n++] = (uint32_t)len;
	return 0;
}

/* Collects every key under prefix that exists as the running batch sees it.
 * Fails with KVFS_ETOOMANY past max_keys (0 = no limit). */
static int collect_prefix(struct apply_ctx *c, const uint8_t *prefix, size_t plen,
			  uint32_t max_keys, struct keylist *out)
{
	struct kv_iter *it = kv_iter_create_prefix(c->kv, prefix, plen);
	int rc = 0;
	if (!it)
		return -ENOMEM;
	for (kv_iter_seek(it, prefix, plen); kv_iter_valid(it); kv_iter_next(it)) {
		size_t klen;
		const uint8_t *k = kv_iter_key(it, &klen);
		if (klen < plen || memcmp(k, prefix, plen) != 0)
			break;
		struct ov_ent *e = ov_find(&c->ov, k, klen, ov_hash(k, klen));
		if (e && e->key && e->state != OV_DB)
			continue; /* the overlay pass below decides */
		if ((rc = keylist_add(out, k, klen)) < 0)
			break;
		if (max_keys && out->n > max_keys) {
			rc = KVFS_ETOOMANY;
			break;
		}
	}
	if (rc == 0)
		rc = kv_iter_status(it);
	kv_iter_destroy(it);
	for (size_t i = 0; rc == 0 && i < c->ov.cap; i++) {
		struct ov_ent *e = &c->ov.tab[i];
		if (!e->key || e->state != OV_PRESENT || e->klen < plen ||
		    memcmp(e->key, prefix, plen) != 0)
			continue;
		if ((rc = keylist_add(out, e->key, e->klen)) == 0 && max_keys && out->n > max_keys)
			rc = KVFS_ETOOMANY;
	}
	return rc;
}

/* RENAME_PREFIX: moves every key under prefix key to prefix dst as one
 * simultaneous move, or none when a key would pass TXN_MAX_KEY
 * (KVFS_EKEYSIZE). All sources are taken out before any destination is
 * written: when one prefix contains the other ("a/" -> "a/b/" or back) a
 * destination can be another source, and moving key by key would overwrite
 * it before it moved (and make the result depend on the order keys are
 * visited, which differs between keys in LevelDB and keys in the overlay, so
 * between replicas that cut apply batches differently). Destinations are
 * distinct (same suffix, same new prefix), so phase 2 is order-free too. */
static int rename_prefix(struct apply_ctx *c, const struct txn_op *op, uint64_t index)
{
	struct keylist l = {0};
	uint8_t **recs = NULL;
	size_t *rlens = NULL, i;
	int rc = collect_prefix(c, op->key, op->key_len, op->max_keys, &l);
	if (rc || l.n == 0 ||
	    (op->key_len == op->dst_len && memcmp(op->key, op->dst, op->key_len) == 0))
		goto out; /* onto itself: nothing moves (max_keys still applies) */
	/* No key may grow past TXN_MAX_KEY, whatever --max-key-size a node
	 * has (the same on every replica): no client could name it. */
	for (i = 0; op->dst_len > op->key_len && i < l.n; i++)
		if (op->dst_len + l.lens[i] - op->key_len > TXN_MAX_KEY) {
			rc = KVFS_EKEYSIZE;
			goto out;
		}
	recs = calloc(l.n, sizeof *recs);
	rlens = calloc(l.n, sizeof *rlens);
	if (!recs || !rlens) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; rc == 0 && i < l.n; i++)
		rc = take_record(c, l.keys[i], l.lens[i], &recs[i], &rlens[i]);
	for (i = 0; rc == 0 && i < l.n; i++) {
		size_t nlen = op->dst_len + l.lens[i] - op->key_len;
		uint8_t *nk = malloc(nlen);
		if (!nk) {
			rc = -ENOMEM;
			break;
		}
		memcpy(nk, op->dst, op->dst_len);
		memcpy(nk + op->dst_len, l.keys[i] + op->key_len, l.lens[i] - op->key_len);
		rc = place_record(c, nk, nlen, recs[i], rlens[i], 0, index);
		recs[i] = NULL; /* owned by place_record */
		free(nk);
	}
out:
	for (i = 0; recs && i < l.n; i++)
		free(recs[i]);
	free(recs);
	free(rlens);
	keylist_free(&l);
	return rc;
}

static int apply_op(struct apply_ctx *c, const struct txn *t, const struct txn_op *op,
		    struct kv_entry *ent)
{
	const uint8_t *rec = NULL, *val;
	size_t rlen = 0, vlen;
	bool owned = false;
	struct record_meta m = {0};
	struct kv_revs revs = {0};
	int rc = 0, cur;

	switch (op->type) {
	case TXN_CHECK:
		cur = lookup_revs(c, op->key, op->key_len, &revs);
		if (cur != 0 && cur != KVFS_ENOTFOUND)
			return cur;
		if (op->rev == 0)
			rc = ((cur == 0) == !!(op->flags & TXN_F_MUST_EXIST)) ? 0 : KVFS_EPRECOND;
		else
			rc = (cur == 0 && revs.mod_rev == op->rev) ? 0 : KVFS_EPRECOND;
		break;
	case TXN_PUT: {
		cur = lookup_revs(c, op->key, op->key_len, &revs);
		if (cur != 0 && cur != KVFS_ENOTFOUND)
			return cur;
		struct record_meta nm = {.kind = op->kind,
					 .mode = op->mode,
					 .mtime_ns = t->mtime_ns,
					 .create_rev = ent->index,
					 .mod_rev = ent->index,
					 .version = 1};
		if (cur == 0) {
			nm.create_rev = revs.create_rev;
			nm.version = revs.version + 1;
			if (op->flags & TXN_F_KEEP_MODE)
				nm.mode = revs.mode;
		} else {
			c->txn_count_delta++;
		}
		size_t nlen;
		uint8_t *nrec = make_record(c, &nm, op->value, op->value_len, &nlen);
		rc = nrec ? stage(c, op->key, op->key_len, nrec, nlen) : -ENOMEM;
		break;
	}
	case TXN_DELETE:
		cur = lookup_exists(c, op->key, op->key_len);
		if (cur == KVFS_ENOTFOUND) {
			rc = (op->flags & TXN_F_MUST_EXIST) ? KVFS_ENOTFOUND : 0;
		} else if (cur == 0) {
			if ((rc = stage(c, op->key, op->key_len, NULL, 0)) == 0) {
				c->txn_count_delta--;
				ent->deleted++;
			}
		} else {
			return cur;
		}
		break;
	case TXN_DELETE_PREFIX: {
		struct keylist l = {0};
		rc = collect_prefix(c, op->key, op->key_len, op->max_keys, &l);
		for (size_t i = 0; rc == 0 && i < l.n; i++) {
			if ((rc = stage(c, l.keys[i], l.lens[i], NULL, 0)) == 0) {
				c->txn_count_delta--;
				ent->deleted++;
			}
		}
		keylist_free(&l);
		break;
	}
	case TXN_RENAME_PREFIX:
		rc = rename_prefix(c, op, ent->index);
		break;
	case TXN_RENAME:
		rc = rename_key(c, op, ent->index);
		break;
	case TXN_TOUCH: {
		cur = lookup(c, op->key, op->key_len, &rec, &rlen, &owned);
		if (cur == KVFS_ENOTFOUND) {
			rc = (op->flags & TXN_F_MUST_EXIST) ? KVFS_ENOTFOUND : 0;
			break;
		}
		if (cur != 0)
			return cur;
		if ((rc = record_decode(rec, rlen, &m, &val, &vlen)) != 0)
			break;
		if (op->flags & TXN_F_SET_MODE)
			m.mode = op->mode;
		if (op->flags & TXN_F_SET_MTIME)
			m.mtime_ns = op->mtime_ns;
		m.mod_rev = ent->index;
		size_t nlen;
		uint8_t *nrec = make_record(c, &m, val, vlen, &nlen);
		rc = nrec ? stage(c, op->key, op->key_len, nrec, nlen) : -ENOMEM;
		break;
	}
	default:
		rc = KVFS_EPROTO;
	}
	if (owned)
		kv_free((void *)rec);
	return rc;
}

static bool fatal(int rc)
{
	return rc == KVFS_ESTORAGE || rc == -ENOMEM || rc == KVFS_ECORRUPT;
}

/* Applies one transaction; returns a fatal error or 0 (ent->result says how
 * the transaction itself ended). */
static int apply_entry(struct apply_ctx *c, struct kv_entry *ent)
{
	struct txn t;
	int rc = txn_decode(ent->data, ent->len, &t);
	ent->result = 0;
	ent->deleted = 0;
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		log_error("kv", "entry %llu: undecodable transaction skipped",
			  (unsigned long long)ent->index);
		ent->result = KVFS_EPROTO;
		return 0;
	}
	/* The key filter is bigger than the CPU caches: each of its lookups
	 * misses, so the lines for the ops a few places ahead are requested
	 * while this one is applied. */
	enum { AHEAD = 8 };
	uint64_t ahead[AHEAD]; /* hashes of ops i..i+AHEAD-1, by op % AHEAD */
	/* (No filter in use, nothing to hash: none is adopted mid-entry.) */
	const bool filter = c->kv->bloom != NULL;
	for (uint32_t i = 0; filter && i < t.n_ops && i < AHEAD; i++) {
		ahead[i] = kv_bloom_hash(t.ops[i].key, t.ops[i].key_len);
		kv_bloom_prefetch(c->kv, ahead[i]);
	}
	for (uint32_t i = 0; i < t.n_ops && rc == 0; i++) {
		if (filter) {
			c->hkey = t.ops[i].key;
			c->hklen = t.ops[i].key_len;
			c->hash = ahead[i % AHEAD];
		}
		if (filter && i + AHEAD < t.n_ops) {
			const struct txn_op *o = &t.ops[i + AHEAD];
			ahead[i % AHEAD] = kv_bloom_hash(o->key, o->key_len);
			kv_bloom_prefetch(c->kv, ahead[i % AHEAD]);
		}
		rc = apply_op(c, &t, &t.ops[i], ent);
	}
	c->hkey = NULL;
	txn_free(&t);
	if (rc == 0) {
		txn_commit(c);
		return 0;
	}
	txn_rollback(c);
	ent->deleted = 0;
	if (fatal(rc))
		return rc;
	ent->result = rc;
	return 0;
}

static void ctx_free(struct apply_ctx *c)
{
	ov_clear(&c->ov);
	free(c->undo);
}

/* Tells the key filter every key the batch wrote (it must know them all);
 * fresh[i] says which ones it ruled out before. In the same pass, updates
 * or drops the keys of the metadata cache the batch changed. */
static int note_written(struct apply_ctx *c)
{
	const void *stackkeys[64] = {0}, **keys = stackkeys;
	size_t stacklens[64] = {0}, *lens = stacklens, n = 0;
	bool stackfresh[64] = {0}, *fresh = stackfresh;
	if (c->ov.used > 64) {
		keys = calloc(c->ov.used, sizeof *keys);
		lens = calloc(c->ov.used, sizeof *lens);
		fresh = calloc(c->ov.used, sizeof *fresh);
		if (!keys || !lens || !fresh) {
			if (keys != stackkeys)
				free(keys);
			if (lens != stacklens)
				free(lens);
			if (fresh != stackfresh)
				free(fresh);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < c->ov.cap; i++) {
		const struct ov_ent *oe = &c->ov.tab[i];
		if (!oe->key || oe->state == OV_DB)
			continue;
		if (!oe->fresh) /* (fresh: not live before, so not cached) */
			kv_meta_written(c->kv, oe->key, oe->klen, oe->hash,
					oe->state == OV_PRESENT ? oe->rec : NULL, oe->rlen);
		if (oe->state == OV_PRESENT) {
			keys[n] = oe->key;
			fresh[n] = oe->fresh;
			lens[n++] = oe->klen;
		}
	}
	kv_bloom_added(c->kv, keys, lens, fresh, n);
	if (keys != stackkeys) {
		free(keys);
		free(lens);
		free(fresh);
	}
	return 0;
}

int kv_apply(struct kv *kv, struct kv_entry *entries, size_t n, const void *membership,
	     size_t membership_len)
{
	struct apply_ctx c = {.kv = kv};
	uint64_t applied = kv_applied_index(kv);
	int rc = 0;

	kv_bloom_before_apply(kv);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct kv_entry *ent = &entries[i];
		if (ent->index <= applied) {
			ent->result = 0; /* already applied before a restart */
			continue;
		}
		applied = ent->index;
		if (ent->data && ent->len)
			rc = apply_entry(&c, ent);
		else
			ent->result = 0;
	}
	if (rc) {
		log_error("kv", "apply failed: %s", kvfs_strerror(rc));
		ctx_free(&c);
		kv_meta_clear(kv);
		return KVFS_ESTORAGE;
	}

	uint64_t count = (uint64_t)((int64_t)kv_key_count(kv) + c.count_delta);
	if (note_written(&c) < 0) {
		/* A filter that misses some of the batch's keys must go (and a
		 * build running now with it): rebuilt from a scan. The metadata
		 * cache was not told of the batch either: emptied. */
		log_warn("kv", "key filter dropped (out of memory): rebuilding it");
		kv_bloom_invalidate(kv);
		kv_meta_clear(kv);
	}
	rc = kv_pending_merge(kv, &c.ov, applied, count, membership, membership_len);
	ctx_free(&c);
	if (rc) {
		kv_meta_clear(kv);
		log_error("kv", "apply failed: %s", kvfs_strerror(rc));
		return KVFS_ESTORAGE;
	}
	return 0;
}
