/*
 * The applied state that is not in LevelDB yet, and its flush.
 *
 * Applying a batch changes memory only: the final state of each key the
 * batch changed joins the pending map (kv->active), where every reader looks
 * before LevelDB. kv_sync, on the node's sync thread a few times a second,
 * freezes the map (a fresh one takes new batches meanwhile), writes it to
 * LevelDB as one synced write together with the applied index, the key count
 * and any new membership, and drops it.
 *
 * So LevelDB only ever receives synced writes of the live state, one after
 * another. After a crash or a power loss it holds exactly the state of the
 * applied index of the last flush that completed, never a later batch
 * without an earlier one (a synced write makes every earlier record of its
 * log durable too), and the node replays its Raft log from there: the log
 * keeps every entry past the durable index (DESIGN.md §2, kvfsd(8)
 * DURABILITY).
 *
 * Why not write each apply batch to LevelDB: that is a second fsync per
 * batch on the disk where the Raft log fsyncs every batch, and the two
 * contend. Skipping it made 64-connection writes 18% faster and
 * one-connection writes 43% faster on the development machine
 * (bench/NOTES.md). Flushing every few tens of milliseconds also merges
 * overwrites of hot keys, and takes LevelDB's memtable inserts off the node
 * loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "store/kv_internal.h"

/* ---- the hash map ---- */

int kv_key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	return c ? c : (al > bl) - (al < bl);
}

uint32_t ov_hash(const uint8_t *k, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

struct ov_ent *ov_find(const struct ov_table *t, const uint8_t *key, size_t klen, uint32_t h)
{
	if (!t->cap)
		return NULL;
	for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct ov_ent *e = &t->tab[i];
		if (!e->key)
			return e;
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
	}
}

/* Makes room for n entries at a load of at most one half. */
static int ov_reserve(struct ov_table *t, size_t n)
{
	size_t ncap = t->cap ? t->cap : 64;
	while ((n + 1) * 2 > ncap)
		ncap *= 2;
	if (ncap == t->cap)
		return 0;
	struct ov_ent *old = t->tab, *nt = calloc(ncap, sizeof *nt);
	size_t ocap = t->cap;
	if (!nt)
		return -ENOMEM;
	t->tab = nt;
	t->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key)
			*ov_find(t, old[i].key, old[i].klen, old[i].hash) = old[i];
	free(old);
	return 0;
}

/* A table's first chunk is small (a batch of one write needs little), each
 * next one twice the last, up to a size under glibc's mmap threshold, so
 * that chunks come from and go back to the heap without page faults. An
 * allocation bigger than the next chunk gets one of its own. */
#define OV_CHUNK_MIN 256u
#define OV_CHUNK_MAX (64u << 10)

void *ov_alloc(struct ov_table *t, size_t n)
{
	n = n ? (n + 7) & ~(size_t)7 : 8;
	struct ov_chunk *c = t->chunks;
	if (c && c->cap - c->used >= n) {
		void *p = (uint8_t *)c->data + c->used;
		c->used += n;
		return p;
	}
	size_t cap = c ? 2 * c->cap : OV_CHUNK_MIN;
	if (cap > OV_CHUNK_MAX)
		cap = OV_CHUNK_MAX;
	if (cap < n)
		cap = n;
	if (!(c = malloc(sizeof *c + cap)))
		return NULL;
	c->cap = cap;
	c->used = n;
	c->next = t->chunks;
	t->chunks = c;
	t->bytes += sizeof *c + cap;
	return c->data;
}

/* Hands from's chunks over to t (from keeps none). */
static void ov_give(struct ov_table *t, struct ov_table *from)
{
	struct ov_chunk *last = from->chunks;
	if (!last)
		return;
	while (last->next)
		last = last->next;
	last->next = t->chunks;
	t->chunks = from->chunks;
	t->bytes += from->bytes;
	from->chunks = NULL;
	from->bytes = 0;
}

static void ov_free_chunks(struct ov_chunk *c)
{
	while (c) {
		struct ov_chunk *next = c->next;
		free(c);
		c = next;
	}
}

struct ov_ent *ov_slot(struct ov_table *t, const uint8_t *key, size_t klen)
{
	uint32_t h = ov_hash(key, klen);
	if (ov_reserve(t, t->used + 1) < 0)
		return NULL;
	struct ov_ent *e = ov_find(t, key, klen, h);
	if (!e->key) {
		uint8_t *k = ov_alloc(t, klen);
		if (!k)
			return NULL;
		memcpy(k, key, klen);
		e->key = k;
		e->klen = (uint32_t)klen;
		e->hash = h;
		e->state = OV_DB;
		t->used++;
	}
	return e;
}

/* Forgets the sorted view: the table is about to change. */
static void ov_changed(struct ov_table *t)
{
	free(t->view);
	t->view = NULL;
	t->scans = 0;
}

void ov_clear(struct ov_table *t)
{
	ov_changed(t);
	ov_free_chunks(t->chunks);
	free(t->tab);
	*t = (struct ov_table){0};
}

static uint64_t table_bytes(const struct ov_table *t)
{
	return t && t->used ? t->bytes + t->cap * sizeof(struct ov_ent) : 0;
}

/* Caller holds ov_lock for writing. */
static void note_bytes(struct kv *kv)
{
	__atomic_store_n(&kv->pend_bytes, table_bytes(kv->active) + table_bytes(kv->frozen),
			 __ATOMIC_RELAXED);
}

uint64_t kv_pending_bytes(struct kv *kv)
{
	return __atomic_load_n(&kv->pend_bytes, __ATOMIC_RELAXED);
}

/* ---- readers ---- */

/* The pending entry of key (caller holds ov_lock), or NULL. */
static const struct ov_ent *pending_find(const struct kv *kv, const void *key, size_t klen)
{
	if (!kv->active->used && !kv->frozen)
		return NULL;
	uint32_t h = ov_hash(key, klen);
	const struct ov_ent *e = ov_find(kv->active, key, klen, h);
	if ((!e || !e->key) && kv->frozen)
		e = ov_find(kv->frozen, key, klen, h);
	return e && e->key && e->state != OV_DB ? e : NULL;
}

int kv_pending_get(struct kv *kv, const void *key, size_t klen, char **rec, size_t *rec_len)
{
	int rc = 1;
	pthread_rwlock_rdlock(&kv->ov_lock);
	const struct ov_ent *e = pending_find(kv, key, klen);
	if (e && e->state == OV_ABSENT) {
		rc = KVFS_ENOTFOUND;
	} else if (e) {
		rc = -ENOMEM;
		if ((*rec = malloc(e->rlen ? e->rlen : 1))) {
			memcpy(*rec, e->rec, e->rlen);
			*rec_len = e->rlen;
			rc = 0;
		}
	}
	pthread_rwlock_unlock(&kv->ov_lock);
	return rc;
}

int kv_pending_membership(struct kv *kv, char **blob, size_t *len)
{
	int rc = 1;
	pthread_rwlock_rdlock(&kv->ov_lock);
	const uint8_t *m = kv->pend_members ? kv->pend_members : kv->flush_members;
	size_t mlen = kv->pend_members ? kv->pend_members_len : kv->flush_members_len;
	if (m) {
		rc = -ENOMEM;
		if ((*blob = malloc(mlen ? mlen : 1))) {
			memcpy(*blob, m, mlen);
			*len = mlen;
			rc = 0;
		}
	}
	pthread_rwlock_unlock(&kv->ov_lock);
	return rc;
}

void kv_pending_each_present(struct kv *kv, void (*fn)(void *ud, const uint8_t *k, size_t klen),
			     void *ud)
{
	const struct ov_table *ts[2] = {kv->active->used ? kv->active : NULL,
					kv->frozen && kv->frozen->used ? kv->frozen : NULL};
	for (int j = 0; j < 2; j++)
		for (size_t i = 0; ts[j] && i < ts[j]->cap; i++)
			if (ts[j]->tab[i].key && ts[j]->tab[i].state == OV_PRESENT)
				fn(ud, ts[j]->tab[i].key, ts[j]->tab[i].klen);
}

/* Whether a frozen entry's key is hidden by a newer state in active. */
static bool shadowed(const struct kv *kv, const uint8_t *key, size_t klen, uint32_t hash)
{
	const struct ov_ent *a = ov_find(kv->active, key, klen, hash);
	return a && a->key;
}

static int copy_cmp(const void *a, const void *b)
{
	const struct ov_copy *x = a, *y = b;
	return kv_key_cmp(x->key, x->klen, y->key, y->klen);
}

/* Whether e is copied: a change, within b, not hidden by a newer one. */
static bool copied(const struct kv *kv, const struct ov_ent *e, bool frozen,
		   const struct kv_bounds *b)
{
	return e->key && e->state != OV_DB && e->klen >= b->plen &&
	       (!b->plen || memcmp(e->key, b->prefix, b->plen) == 0) &&
	       (!b->lolen || kv_key_cmp(e->key, e->klen, b->lo, b->lolen) >= 0) &&
	       (!b->hi || kv_key_cmp(e->key, e->klen, b->hi, b->hilen) <= 0) &&
	       !(frozen && shadowed(kv, e->key, e->klen, e->hash));
}

/* The sorted view of t (caller holds ov_lock for reading), built if this is
 * at least the second iterator since t last changed; NULL: scan the slots.
 * A table that keeps changing (writes flowing) is scanned, since sorting it
 * all for each iterator would cost more than a scan; one at rest (a load
 * just ended, its flush pending) is sorted once, and every later range finds
 * its keys by binary search instead of scanning up to 64K slots. */
static const struct ov_view *table_view(struct kv *kv, struct ov_table *t)
{
	pthread_mutex_lock(&kv->view_lock);
	if (!t->view && ++t->scans >= 2) {
		size_t n = 0;
		for (size_t i = 0; i < t->cap; i++)
			n += t->tab[i].key && t->tab[i].state != OV_DB;
		struct ov_view *v = malloc(sizeof *v + n * sizeof v->e[0]);
		if (v) { /* else scan, as before */
			v->n = 0;
			for (size_t i = 0; i < t->cap; i++) {
				const struct ov_ent *e = &t->tab[i];
				if (e->key && e->state != OV_DB)
					v->e[v->n++] = (struct ov_copy){
						.key = e->key, .klen = e->klen,
						.rec = e->state == OV_PRESENT ? e->rec : NULL,
						.rlen = e->state == OV_PRESENT ? e->rlen : 0};
			}
			kv_pending_sort(v->e, v->n);
			t->view = v;
		}
	}
	const struct ov_view *v = t->view;
	pthread_mutex_unlock(&kv->view_lock);
	return v;
}

/* Calls fn for each change of table j (0 active, 1 frozen) within b. */
static void each_copied(struct kv *kv, struct ov_table *t, const struct ov_view *v, int j,
			const struct kv_bounds *b, void (*fn)(void *ud, const uint8_t *key,
						       size_t klen, const uint8_t *rec, size_t rlen),
			void *ud)
{
	if (!v) {
		for (size_t i = 0; i < t->cap; i++) {
			const struct ov_ent *e = &t->tab[i];
			if (copied(kv, e, j == 1, b))
				fn(ud, e->key, e->klen, e->state == OV_PRESENT ? e->rec : NULL,
				   e->state == OV_PRESENT ? e->rlen : 0);
		}
		return;
	}
	/* From the first key >= max(lo, prefix), while under prefix and <= hi. */
	const uint8_t *from = b->lo;
	size_t flen = b->lolen;
	if (b->plen && (!flen || kv_key_cmp(from, flen, b->prefix, b->plen) < 0)) {
		from = b->prefix;
		flen = b->plen;
	}
	for (size_t i = kv_pending_lower_bound(v->e, v->n, from, flen); i < v->n; i++) {
		const struct ov_copy *e = &v->e[i];
		if (e->klen < b->plen || (b->plen && memcmp(e->key, b->prefix, b->plen) != 0) ||
		    (b->hi && kv_key_cmp(e->key, e->klen, b->hi, b->hilen) > 0))
			break;
		if (j == 1 && shadowed(kv, e->key, e->klen, ov_hash(e->key, e->klen)))
			continue;
		fn(ud, e->key, e->klen, e->rec, e->rlen);
	}
}

struct copy_pass {
	struct ov_copy *c; /* NULL: counting */
	uint8_t *p;
	size_t n, bytes;
};

static void copy_one(void *ud, const uint8_t *key, size_t klen, const uint8_t *rec, size_t rlen)
{
	struct copy_pass *cp = ud;
	if (!cp->c) {
		cp->n++;
		cp->bytes += klen + rlen;
		return;
	}
	struct ov_copy *c = &cp->c[cp->n++];
	*c = (struct ov_copy){.key = cp->p, .klen = klen};
	memcpy(cp->p, key, klen);
	cp->p += klen;
	if (rec) {
		c->rec = cp->p;
		c->rlen = rlen;
		memcpy(cp->p, rec, rlen);
		cp->p += rlen;
	}
}

int kv_pending_copy(struct kv *kv, const struct kv_bounds *b, struct ov_copy **out,
		    size_t *count)
{
	/* A table keeps its slots between flushes (KEEP_SLOTS): an empty one
	 * is skipped rather than scanned, which made every range over an idle
	 * store read 2.6 MB of empty slots. */
	struct ov_table *ts[2] = {kv->active->used ? kv->active : NULL,
				  kv->frozen && kv->frozen->used ? kv->frozen : NULL};
	const struct ov_view *vs[2] = {NULL, NULL};
	struct copy_pass cp = {0};
	*out = NULL;
	*count = 0;
	for (int j = 0; j < 2; j++)
		if (ts[j]) {
			vs[j] = table_view(kv, ts[j]);
			each_copied(kv, ts[j], vs[j], j, b, copy_one, &cp);
		}
	if (!cp.n)
		return 0;
	size_t n = cp.n;
	struct ov_copy *c = malloc(n * sizeof *c + cp.bytes + 1);
	if (!c)
		return -ENOMEM;
	cp = (struct copy_pass){.c = c, .p = (uint8_t *)(c + n)};
	for (int j = 0; j < 2; j++)
		if (ts[j])
			each_copied(kv, ts[j], vs[j], j, b, copy_one, &cp);
	*out = c;
	*count = n;
	return 0;
}

void kv_pending_sort(struct ov_copy *c, size_t n)
{
	if (n > 1)
		qsort(c, n, sizeof *c, copy_cmp);
}

size_t kv_pending_lower_bound(const struct ov_copy *c, size_t n, const void *key, size_t klen)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (kv_key_cmp(c[mid].key, c[mid].klen, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- the apply stage ---- */

int kv_pending_merge(struct kv *kv, struct ov_table *b, uint64_t applied, uint64_t count,
		     const void *membership, size_t membership_len)
{
	uint8_t *m = NULL;
	if (membership) {
		if (!(m = malloc(membership_len ? membership_len : 1)))
			return -ENOMEM;
		memcpy(m, membership, membership_len);
	}
	pthread_rwlock_wrlock(&kv->ov_lock);
	struct ov_table *t = kv->active;
	ov_changed(t);
	if (ov_reserve(t, t->used + b->used) < 0) {
		pthread_rwlock_unlock(&kv->ov_lock);
		free(m);
		return -ENOMEM;
	}
	bool moved = false;
	for (size_t i = 0; i < b->cap; i++) {
		struct ov_ent *be = &b->tab[i];
		if (!be->key || be->state == OV_DB)
			continue;
		moved = true;
		struct ov_ent *e = ov_find(t, be->key, be->klen, be->hash);
		if (!e->key) { /* the key itself is taken too (else a newer state
				* of a pending key: the old record stays in its
				* chunk until the table is flushed) */
			*e = (struct ov_ent){.key = be->key, .klen = be->klen, .hash = be->hash};
			t->used++;
		}
		e->state = be->state;
		e->rec = be->rec;
		e->rlen = be->rlen;
	}
	/* What the moved keys and records live in. (A batch that changed
	 * nothing, all lookups or rolled back, keeps its chunks: they go with
	 * it, not to a table whose bound would not see them while it is empty.) */
	if (moved)
		ov_give(t, b);
	if (m) {
		free(kv->pend_members);
		kv->pend_members = m;
		kv->pend_members_len = membership_len;
	}
	note_bytes(kv);
	__atomic_store_n(&kv->count, count, __ATOMIC_RELAXED);
	__atomic_store_n(&kv->applied, applied, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&kv->ov_lock);
	return 0;
}

void kv_pending_discard(struct kv *kv)
{
	pthread_rwlock_wrlock(&kv->ov_lock);
	ov_clear(kv->active);
	free(kv->pend_members);
	kv->pend_members = NULL;
	kv->pend_members_len = 0;
	note_bytes(kv);
	pthread_rwlock_unlock(&kv->ov_lock);
}

/* ---- the flush ---- */

/* Slots a flushed table keeps for the next window (about 3 MiB). */
#define KEEP_SLOTS (64u * 1024)

/* Whether the directory may have changed since it was last synced (always,
 * without inotify): reads every queued event. */
static bool dir_changed(struct kv *kv)
{
	bool changed = kv->notify_fd < 0 || !kv->dir_synced;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (kv->notify_fd >= 0 && read(kv->notify_fd, buf, sizeof buf) > 0)
		changed = true; /* any create, delete or rename (or an overflow) */
	return changed;
}

int kv_sync_dir(struct kv *kv)
{
	if (!dir_changed(kv))
		return 0;
	kv->dir_synced = fsync(kv->dir_fd) == 0;
	if (kv->dir_synced)
		return 0;
	log_error("kv", "syncing %s failed: %s", kv->path, strerror(errno));
	return KVFS_ESTORAGE;
}

static int sort_cmp(const void *a, const void *b)
{
	const struct kv_sort_ent *x = a, *y = b;
	if (x->pfx != y->pfx)
		return x->pfx < y->pfx ? -1 : 1;
	return kv_key_cmp(x->e->key, x->e->klen, y->e->key, y->e->klen);
}

/* A radix sort of the 8-byte prefixes, one pass a byte, skipping bytes all
 * entries share; then runs of equal prefixes by comparison. (qsort with
 * a comparison of the keys took a tenth of a node's CPU during batch
 * writes, most of it cache misses on two heap blocks per comparison.) */
void kv_sort_entries(struct kv_sort_ent *s, struct kv_sort_ent *tmp, size_t n)
{
	if (n < 2)
		return;
	const uint8_t *k0 = s[0].e->key;
	size_t common = s[0].e->klen;
	for (size_t i = 1; i < n && common; i++) {
		const uint8_t *k = s[i].e->key;
		size_t m = s[i].e->klen < common ? s[i].e->klen : common, j = 0;
		while (j < m && k[j] == k0[j])
			j++;
		common = j;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *k = s[i].e->key;
		size_t len = s[i].e->klen;
		uint64_t v = 0;
		for (size_t j = 0; j < 8; j++)
			v = v << 8 | (common + j < len ? k[common + j] : 0);
		s[i].pfx = v;
	}
	for (unsigned shift = 0; shift < 64; shift += 8) {
		size_t count[256] = {0};
		for (size_t i = 0; i < n; i++)
			count[s[i].pfx >> shift & 0xff]++;
		if (count[s[0].pfx >> shift & 0xff] == n)
			continue; /* one value: the pass would not move anything */
		for (size_t b = 0, sum = 0; b < 256; b++) {
			size_t c = count[b];
			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[s[i].pfx >> shift & 0xff]++] = s[i];
		memcpy(s, tmp, n * sizeof *s);
	}
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && s[j].pfx == s[i].pfx; j++)
			;
		if (j - i > 1)
			qsort(s + i, j - i, sizeof *s, sort_cmp);
	}
}

/* Writes t and the metadata in one synced LevelDB write (caller holds
 * gen_lock: the generation cannot flip meanwhile). */
static int flush(struct kv *kv, const struct ov_table *t, uint64_t applied, uint64_t count,
		 const uint8_t *members, size_t mlen)
{
	/* In key order: LevelDB inserts a batch into its memtable (a skip
	 * list) one key after another, and consecutive sorted inserts walk
	 * mostly the same, cached, nodes. */
	struct kv_sort_ent *sorted = t->used ? malloc(2 * t->used * sizeof *sorted) : NULL;
	size_t n = 0;
	char *e = NULL;
	int rc = 0;
	if (t->used && !sorted)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->tab[i].key && t->tab[i].state != OV_DB)
			sorted[n++].e = &t->tab[i];
	if (n > 1)
		kv_sort_entries(sorted, sorted + t->used, n);
	leveldb_writebatch_t *wb = leveldb_writebatch_create();
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct ov_ent *oe = sorted[i].e;
		char stackbuf[512], *k = stackbuf;
		if (oe->klen + 1 > sizeof stackbuf && !(k = malloc(oe->klen + 1))) {
			rc = -ENOMEM;
			break;
		}
		k[0] = KV_GEN_PREFIX(kv->gen);
		memcpy(k + 1, oe->key, oe->klen);
		if (oe->state == OV_PRESENT)
			leveldb_writebatch_put(wb, k, oe->klen + 1, (char *)oe->rec, oe->rlen);
		else
			leveldb_writebatch_delete(wb, k, oe->klen + 1);
		if (k != stackbuf)
			free(k);
	}
	uint8_t a[8], cnt[8];
	put_le64(a, applied);
	put_le64(cnt, count);
	leveldb_writebatch_put(wb, KV_META_APPLIED, sizeof KV_META_APPLIED - 1, (char *)a, 8);
	leveldb_writebatch_put(wb, KV_META_COUNT, sizeof KV_META_COUNT - 1, (char *)cnt, 8);
	if (members)
		leveldb_writebatch_put(wb, KV_META_MEMBERS, sizeof KV_META_MEMBERS - 1,
				       (const char *)members, mlen);
	if (rc == 0) {
		leveldb_write(kv->db, kv->sync_wopts, wb, &e);
		if (e) {
			log_error("kv", "write of the applied state failed: %s", e);
			leveldb_free(e);
			rc = KVFS_ESTORAGE;
		}
	}
	leveldb_writebatch_destroy(wb);
	free(sorted);
	/* LevelDB may have started a new log file in this write: its name
	 * must be on disk too, or the synced records in it are not. */
	if (rc == 0)
		rc = kv_sync_dir(kv);
	return rc;
}

int kv_sync(struct kv *kv, uint64_t upto)
{
	int rc = 0;
	pthread_mutex_lock(&kv->flush_lock);
	if (kv->flush_failed) {
		pthread_mutex_unlock(&kv->flush_lock);
		return KVFS_ESTORAGE;
	}
	/* Held to the end of the write: a snapshot install (which flips the
	 * generation and rewrites the metadata) waits for it. */
	pthread_rwlock_rdlock(&kv->gen_lock);
	pthread_rwlock_wrlock(&kv->ov_lock);
	struct ov_table *fz = kv->active;
	uint64_t applied = kv_applied_index(kv), count = kv_key_count(kv);
	uint8_t *members = kv->pend_members;
	size_t mlen = kv->pend_members_len;
	bool todo = fz->used || members || applied > kv_durable_index(kv);
	if (todo) {
		kv->frozen = fz;
		kv->active = fz == &kv->tables[0] ? &kv->tables[1] : &kv->tables[0];
		kv->flush_members = members;
		kv->flush_members_len = mlen;
		kv->pend_members = NULL;
		kv->pend_members_len = 0;
	}
	pthread_rwlock_unlock(&kv->ov_lock);
	if (todo)
		rc = flush(kv, fz, applied, count, members, mlen);
	if (rc == 0 && todo) {
		/* In LevelDB now: readers may stop looking here. The slots stay
		 * for the next window unless a burst made them big. */
		pthread_rwlock_wrlock(&kv->ov_lock);
		ov_changed(fz);
		struct ov_table done = *fz;
		*fz = (struct ov_table){0};
		if (done.cap <= KEEP_SLOTS) {
			fz->tab = done.tab;
			fz->cap = done.cap;
			done.tab = NULL;
			done.cap = 0;
		}
		kv->frozen = NULL;
		kv->flush_members = NULL;
		note_bytes(kv);
		pthread_rwlock_unlock(&kv->ov_lock);
		pthread_rwlock_unlock(&kv->gen_lock);
		if (fz->cap) /* no reader looks at fz now */
			memset(fz->tab, 0, fz->cap * sizeof *fz->tab);
		ov_clear(&done); /* the chunks, and the slots unless kept */
		free(members);
		uint64_t cur = kv_durable_index(kv);
		while (cur < applied &&
		       !__atomic_compare_exchange_n(&kv->durable, &cur, applied, false,
						    __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
			;
	} else {
		pthread_rwlock_unlock(&kv->gen_lock);
	}
	if (rc) {
		/* The frozen state stays readable; nothing more is written:
		 * the node stops and replays its log at the next start. */
		kv->flush_failed = true;
		rc = KVFS_ESTORAGE;
	}
	pthread_mutex_unlock(&kv->flush_lock);
	(void)upto; /* everything applied so far is flushed, upto included */
	return rc;
}
