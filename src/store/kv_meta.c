/*
 * The metadata cache: the create revision, modify revision, version and mode
 * of keys the apply stage has read, so that writing an existing key again
 * does not read its old record.
 *
 * A put of an existing key keeps the key's create revision and counts its
 * version up, so the apply stage must know the current record. Once the key's
 * last write has been flushed to LevelDB, that takes a LevelDB read: about
 * 5 us on a store of a million keys (memtable, level-0 tables, a block that
 * LevelDB reads and checksums unless its cache holds it), done one key after
 * another on the node loop. Overwriting batches ran 4 times slower than
 * batches of new keys. etcd keeps every key's revisions in memory; kvfs keeps
 * the keys it has seen overwritten or checked, within a fixed budget.
 *
 * Coherence: an entry holds the metadata of the key's newest applied state,
 * which exists (deleted keys are dropped). The node loop is the only thread
 * that applies, installs snapshots and uses the cache, so it takes no lock:
 * - a read the apply stage makes outside its running batch (pending tables
 *   or LevelDB: the state before the batch) fills an entry;
 * - at the end of each batch every key the batch changed is updated in, or
 *   dropped from, the cache before its state joins the applied state;
 * - a snapshot install, or a failed apply, empties it.
 * Hits return what a read would have found, so replicas apply alike whether
 * or not a key is cached; test_kv checks this against a store without one.
 *
 * Layout: sets of META_WAYS 64-byte entries picked by the key's hash; a
 * full set replaces an entry not used since the last replacement there.
 * Keys longer than META_KEY_MAX are not cached (the read path serves them,
 * as before). The table is an anonymous mapping: pages are used as sets
 * fill, and emptying it gives them back.
 */
#include <string.h>
#include <sys/mman.h>

#include "common/log.h"
#include "store/kv_internal.h"

#define META_WAYS 4
#define META_KEY_MAX 29

struct kv_meta_ent {
	uint64_t create_rev, mod_rev, version;
	uint32_t hash, mode;
	uint8_t used, ref, klen;
	uint8_t key[META_KEY_MAX];
};

_Static_assert(sizeof(struct kv_meta_ent) == 64, "a cache entry is one cache line");

static size_t table_bytes(const struct kv *kv)
{
	return kv->meta_sets * META_WAYS * sizeof(struct kv_meta_ent);
}

void kv_meta_init(struct kv *kv, size_t bytes)
{
	size_t sets = 1, want = bytes / (META_WAYS * sizeof(struct kv_meta_ent));
	kv->meta = NULL;
	kv->meta_sets = 0;
	if (!want)
		return;
	while (sets * 2 <= want) /* a power of two, rounded down */
		sets *= 2;
	void *p = mmap(NULL, sets * META_WAYS * sizeof(struct kv_meta_ent),
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_warn("kv", "no metadata cache (%zu MiB: out of memory): overwrites read "
			       "the old record",
			 bytes >> 20);
		return;
	}
	kv->meta = p;
	kv->meta_sets = sets;
}

void kv_meta_free(struct kv *kv)
{
	if (kv->meta)
		munmap(kv->meta, table_bytes(kv));
	kv->meta = NULL;
	kv->meta_sets = 0;
}

void kv_meta_clear(struct kv *kv)
{
	/* The pages go back to the system and read as zeros (empty) again;
	 * if that failed, emptying them by hand is as good. */
	if (kv->meta && madvise(kv->meta, table_bytes(kv), MADV_DONTNEED) != 0)
		memset(kv->meta, 0, table_bytes(kv));
}

static struct kv_meta_ent *set_of(struct kv *kv, uint32_t hash)
{
	/* the low bits pick the hash tables' slots: take the high ones */
	uint64_t h = (uint64_t)hash * 0x9e3779b97f4a7c15ull;
	return &kv->meta[((size_t)(h >> 32) & (kv->meta_sets - 1)) * META_WAYS];
}

static struct kv_meta_ent *find(struct kv *kv, const uint8_t *key, size_t klen, uint32_t hash)
{
	if (!kv->meta || klen > META_KEY_MAX)
		return NULL;
	struct kv_meta_ent *s = set_of(kv, hash);
	for (int w = 0; w < META_WAYS; w++)
		if (s[w].used && s[w].hash == hash && s[w].klen == klen &&
		    memcmp(s[w].key, key, klen) == 0)
			return &s[w];
	return NULL;
}

static void fill(struct kv_meta_ent *e, const struct kv_revs *m)
{
	e->create_rev = m->create_rev;
	e->mod_rev = m->mod_rev;
	e->version = m->version;
	e->mode = m->mode;
}

bool kv_meta_get(struct kv *kv, const uint8_t *key, size_t klen, uint32_t hash,
		 struct kv_revs *m)
{
	if (!kv->meta)
		return false;
	struct kv_meta_ent *e = find(kv, key, klen, hash);
	if (!e)
		return false;
	e->ref = 1;
	*m = (struct kv_revs){.create_rev = e->create_rev,
			      .mod_rev = e->mod_rev,
			      .version = e->version,
			      .mode = e->mode};
	__atomic_store_n(&kv->meta_hits, kv->meta_hits + 1, __ATOMIC_RELAXED);
	return true;
}

void kv_meta_put(struct kv *kv, const uint8_t *key, size_t klen, uint32_t hash,
		 const struct kv_revs *m)
{
	if (!kv->meta)
		return;
	/* called for each existing key the cache did not know: a miss */
	__atomic_store_n(&kv->meta_misses, kv->meta_misses + 1, __ATOMIC_RELAXED);
	if (klen > META_KEY_MAX)
		return;
	struct kv_meta_ent *e = find(kv, key, klen, hash);
	if (!e) {
		/* an empty way, else the first not used since the last
		 * replacement in this set (not recently used) */
		struct kv_meta_ent *s = set_of(kv, hash);
		for (int w = 0; !e && w < META_WAYS; w++)
			if (!s[w].used)
				e = &s[w];
		for (int w = 0; !e && w < 2 * META_WAYS; w++) {
			if (!s[w % META_WAYS].ref)
				e = &s[w % META_WAYS];
			s[w % META_WAYS].ref = 0;
		}
		e->used = 1;
		e->hash = hash;
		e->klen = (uint8_t)klen;
		memcpy(e->key, key, klen);
	}
	e->ref = 1;
	fill(e, m);
}

void kv_meta_written(struct kv *kv, const uint8_t *key, size_t klen, uint32_t hash,
		     const uint8_t *rec, size_t rlen)
{
	struct kv_meta_ent *e = find(kv, key, klen, hash);
	if (!e)
		return;
	struct record_meta m;
	const uint8_t *val;
	size_t vlen;
	if (rec && record_decode(rec, rlen, &m, &val, &vlen) == 0)
		fill(e, &(struct kv_revs){m.create_rev, m.mod_rev, m.version, m.mode});
	else
		e->used = 0; /* deleted (or, never, a record that does not decode) */
}

void kv_meta_stats(struct kv *kv, uint64_t *hits, uint64_t *misses)
{
	*hits = __atomic_load_n(&kv->meta_hits, __ATOMIC_RELAXED);
	*misses = __atomic_load_n(&kv->meta_misses, __ATOMIC_RELAXED);
}
