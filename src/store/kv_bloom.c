/*
 * The state machine's key filter: a Bloom filter over every live user key,
 * so that a write of a key that does not exist yet (the common case of a
 * growing keyspace) skips LevelDB's lookup of the old record, about a third
 * of the time an apply batch takes. A "no" is certain; a "maybe" (every key
 * that exists, and about 1% of those that do not) still reads LevelDB.
 *
 * It must hold every live key whenever it is used, so:
 *   - it is built in the background from a LevelDB snapshot of the live
 *     generation (at open and after a snapshot install), while the apply
 *     path adds every key it writes both to the filter in use and to the one
 *     built from an earlier snapshot (running, or finished and not adopted
 *     yet);
 *   - only the apply path (the node loop) reads or swaps the filter in use,
 *     so the builder never frees what the loop is reading: it hands a
 *     finished filter over (done), and the loop adopts it before its next
 *     batch;
 *   - a snapshot install drops the filter in use and bumps the epoch, so a
 *     build started before the install is discarded rather than adopted.
 * Without a filter (while the first build runs) every lookup reads LevelDB.
 *
 * Sizing: 20 bits a key (rounded up to a power of two) for the key count at
 * build time, at least kv_options.filter_min_keys (default 1 Mi keys:
 * 4 MiB), 7 probes: about 0.1% false positives when full. All layers
 * together take at most kv_options.filter_max_bytes (kvfsd --key-filter-max,
 * default 64 MiB: 4+8+16+32 MiB, about 25 million keys): memory stays
 * bounded whatever the dataset (a node of 28 million keys had grown a 64 MiB
 * fifth layer, 124 MiB of filter, and 232 MiB resident), and past that
 * bound new keys go into the newest layer, whose false positives then grow
 * (at 10 bits a key about 1%, at 5 about 10%), each costing a read of the
 * database, as without a filter.
 *
 * Growing: a Bloom filter cannot be resized without its keys, and reading
 * them all back from LevelDB again would, each time the keyspace doubles,
 * read the whole database through LevelDB's memory maps (left resident in
 * the process: 160 MiB of a 200 MiB node after one such scan in
 * bench/compare.sh) and cost a full scan of a dataset larger than RAM. So
 * the filter is a stack of layers (a scalable Bloom filter, Almeida et al.
 * 2007): new keys go into the newest layer, a key may be present if any
 * layer says so (keys it already has, written again, are not added), and
 * once the newest layer holds as many new keys as it was sized for, a layer
 * twice its size goes on top. Each full layer adds about 0.1% of false
 * positives (20 bits a key, not 10, for that: at 10 bits four full layers
 * let 4% through, and with a dataset larger than memory each costs a read
 * from disk: bench/large.sh's last 10% of the load ran at 66% of the first's
 * rate, against 79% with rebuilds); doubling keeps them few (4 layers, 60
 * MiB, for 20 Mi keys). Deleted keys stay in the filter (it has no
 * deletion), so when the layers could hold 4 times the live keys or more (a
 * keyspace that churns), or there are 8, it is rebuilt from a scan after
 * all.
 *
 * Blocked: a key's 7 bits all lie in one 64-byte block (one cache line)
 * chosen by one hash, placed in it by the other. A plain Bloom filter of a
 * few MiB costs 7 cache misses a key, which profiles showed as 8% of all
 * CPU under batch load; a blocked one costs one, for a slightly higher
 * false-positive rate at the same size (at 10 bits a key, about 1.1% instead
 * of 0.8% when full).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/log.h"
#include "store/kv_internal.h"

#define BLOOM_BITS_PER_KEY 20
#define BLOOM_PROBES	   7
#define BLOCK_BITS	   512		/* one cache line */
#define MAX_LAYERS	   8		/* rebuilt from a scan at this many */
#define MAX_GROWN	   64		/* never more, even while that rebuild runs */
#define MAX_BITS	   (1ull << 38) /* 32 GiB, 13 billion keys, in one layer */
#define MAX_SLACK	   4		/* rebuild when the layers could hold 4x the live keys */
#define HUGE_PAGE	   ((size_t)2 << 20)

/* One layer; the filter in use is the newest, older layers hang below it. */
struct kv_bloom {
	uint64_t *words; /* bits (layer_add); 64-byte aligned in mem */
	void *mem;	 /* the allocation */
	size_t map_len;	 /* mem is a mapping of this many bytes (0: calloc'd) */
	uint64_t mask;	 /* number of blocks - 1 (a power of two) */
	uint64_t capacity;
	uint64_t added; /* keys put in: scanned, or new to the whole filter */
	struct kv_bloom *older;
	int layers; /* this one and the older ones */
	uint64_t total_capacity;
};

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A key's filter hash: word-at-a-time (MurmurHash64A's step and constants,
 * the length in the seed, so that keys differing only in trailing zero
 * bytes differ), then mixed. The apply path computes it for an op's key
 * when it prefetches the key's lines and hands it to the lookup; the add
 * after the batch hashes the new keys again (a key's bytes are at hand
 * there, its hash is not). The byte-at-a-time FNV-1a it replaces, computed
 * three times, took a tenth of the node loop. */
uint64_t kv_bloom_hash(const void *key, size_t klen)
{
	const uint64_t m = 0xc6a4a7935bd1e995ull;
	const uint8_t *p = key;
	uint64_t h = 0x8445d61a4e774912ull ^ (klen * m);
	for (; klen >= 8; p += 8, klen -= 8) {
		uint64_t k = get_le64(p) * m;
		h = (h ^ ((k ^ (k >> 47)) * m)) * m;
	}
	if (klen) {
		uint64_t k = 0;
		for (size_t i = 0; i < klen; i++)
			k |= (uint64_t)p[i] << (8 * i);
		h = (h ^ k) * m;
	}
	return mix64(h);
}

/* The block (h1) and the bits in it (h2) of hash h. */
static void key_hashes(uint64_t h, uint64_t *h1, uint64_t *h2)
{
	*h1 = h;
	*h2 = mix64(h ^ 0x9e3779b97f4a7c15ull);
}

/* Memory of one layer's bits (what kv->bloom_bytes counts). */
static uint64_t layer_bytes(const struct kv_bloom *b)
{
	return (b->mask + 1) * (BLOCK_BITS / 8);
}

/* One empty layer of nbits (a power of two, at least BLOCK_BITS). */
static struct kv_bloom *layer_new(struct kv *kv, uint64_t nbits)
{
	struct kv_bloom *b = malloc(sizeof *b);
	if (!b)
		return NULL;
	/* Fresh zero pages, not aligned_alloc and memset: the node loop
	 * (which starts builds) does not zero tens of MiB, and pages are only
	 * committed when first set. A layer of 2 MiB or more is mapped on a
	 * 2 MiB boundary and asked for huge pages: each lookup lands on a
	 * random page of every layer, and with 4 KiB pages each of those was
	 * a TLB miss too (a page walk per layer per key under batch load).
	 * Every page of a layer is soon set anyway, so huge pages cost no
	 * memory. */
	size_t len = nbits / 8;
	b->map_len = 0;
	if (len >= HUGE_PAGE) {
		b->map_len = len + HUGE_PAGE;
		b->mem = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		if (b->mem == MAP_FAILED) {
			free(b);
			return NULL;
		}
		b->words = (uint64_t *)(((uintptr_t)b->mem + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
		(void)madvise(b->words, len, MADV_HUGEPAGE); /* a hint: fine if refused */
	} else {
		if (!(b->mem = calloc(1, len + BLOCK_BITS / 8))) {
			free(b);
			return NULL;
		}
		b->words = (uint64_t *)(((uintptr_t)b->mem + BLOCK_BITS / 8 - 1) &
					~(uintptr_t)(BLOCK_BITS / 8 - 1));
	}
	b->mask = nbits / BLOCK_BITS - 1;
	__atomic_fetch_add(&kv->bloom_bytes, layer_bytes(b), __ATOMIC_RELAXED);
	b->capacity = b->total_capacity = nbits / BLOOM_BITS_PER_KEY;
	b->added = 0;
	b->older = NULL;
	b->layers = 1;
	return b;
}

/* A layer for keys (at least min_keys), of at most max_bits (0: no bound;
 * never less than one block). */
static struct kv_bloom *bloom_new(struct kv *kv, uint64_t keys, uint64_t min_keys,
				   uint64_t max_bits)
{
	if (keys < min_keys)
		keys = min_keys;
	if (keys > MAX_BITS / BLOOM_BITS_PER_KEY)
		keys = MAX_BITS / BLOOM_BITS_PER_KEY; /* a damaged count must not loop */
	uint64_t want = keys * BLOOM_BITS_PER_KEY;
	uint64_t nbits = BLOCK_BITS;
	while (nbits < want && (!max_bits || nbits * 2 <= max_bits))
		nbits <<= 1;
	return layer_new(kv, nbits);
}

/* Bits of all of b's layers. */
static uint64_t bloom_bits(const struct kv_bloom *b)
{
	uint64_t bits = 0;
	for (; b; b = b->older)
		bits += layer_bytes(b) * 8;
	return bits;
}

static void bloom_free(struct kv *kv, struct kv_bloom *b)
{
	while (b) {
		struct kv_bloom *older = b->older;
		__atomic_fetch_sub(&kv->bloom_bytes, layer_bytes(b), __ATOMIC_RELAXED);
		if (b->map_len)
			munmap(b->mem, b->map_len);
		else
			free(b->mem);
		free(b);
		b = older;
	}
}

/* The block (cache line) of layer b that holds a key's bits. */
static uint64_t *block_of(const struct kv_bloom *b, uint64_t h1)
{
	return b->words + (h1 & b->mask) * (BLOCK_BITS / 64);
}

/* Sets key's bits in layer b. shared: another thread may set bits in it at
 * the same time (a build), so each is a locked OR; otherwise only the node
 * loop writes to it (the filter in use: the builder that made it has
 * finished), and plain loads and stores do. */
static void layer_add(struct kv_bloom *b, uint64_t h1, uint64_t h2, bool shared)
{
	uint64_t *blk = block_of(b, h1);
	for (int i = 0; i < BLOOM_PROBES; i++, h2 >>= 9) {
		unsigned bit = h2 & (BLOCK_BITS - 1);
		uint64_t *w = &blk[bit >> 6], m = 1ull << (bit & 63);
		if (shared)
			__atomic_fetch_or(w, m, __ATOMIC_RELAXED);
		else
			__atomic_store_n(w, __atomic_load_n(w, __ATOMIC_RELAXED) | m,
					 __ATOMIC_RELAXED);
	}
}

static bool layer_has(const struct kv_bloom *b, uint64_t h1, uint64_t h2)
{
	const uint64_t *blk = block_of(b, h1);
	for (int i = 0; i < BLOOM_PROBES; i++, h2 >>= 9) {
		unsigned bit = h2 & (BLOCK_BITS - 1);
		if (!(__atomic_load_n(&blk[bit >> 6], __ATOMIC_RELAXED) & (1ull << (bit & 63))))
			return false;
	}
	return true;
}

/* Into the newest layer (b itself) of a filter being built. */
static void bloom_add(struct kv_bloom *b, const void *key, size_t klen)
{
	uint64_t h1, h2;
	key_hashes(kv_bloom_hash(key, klen), &h1, &h2);
	layer_add(b, h1, h2, true);
}

static bool bloom_has(const struct kv_bloom *b, uint64_t h)
{
	uint64_t h1, h2;
	key_hashes(h, &h1, &h2);
	for (; b; b = b->older)
		if (layer_has(b, h1, h2))
			return true;
	return false;
}

/* Adds a key (hash h) the filter in use ruled out to its newest layer b. */
static void bloom_add_fresh(struct kv_bloom *b, uint64_t h)
{
	uint64_t h1, h2;
	key_hashes(h, &h1, &h2);
	layer_add(b, h1, h2, false);
	b->added++;
}

/* ---- the builder ---- */

struct build {
	struct kv *kv;
	struct kv_bloom *b;
	uint64_t epoch;
	int gen;
	const leveldb_snapshot_t *snap;
};

static void *build_main(void *arg)
{
	struct build *bd = arg;
	struct kv *kv = bd->kv;
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	leveldb_readoptions_set_fill_cache(ro, 0);
	leveldb_readoptions_set_snapshot(ro, bd->snap);
	leveldb_iterator_t *it = leveldb_create_iterator(kv->db, ro);
	char prefix = KV_GEN_PREFIX(bd->gen);
	uint64_t n = 0;
	bool stop = false;
	for (leveldb_iter_seek(it, &prefix, 1); leveldb_iter_valid(it) && !stop;
	     leveldb_iter_next(it)) {
		size_t kl;
		const char *k = leveldb_iter_key(it, &kl);
		if (!kl || k[0] != prefix)
			break;
		bloom_add(bd->b, k + 1, kl - 1);
		if ((++n & 0xffff) == 0)
			stop = __atomic_load_n(&kv->bloom_epoch, __ATOMIC_RELAXED) != bd->epoch ||
			       __atomic_load_n(&kv->bloom_stop, __ATOMIC_RELAXED);
	}
	char *e = NULL;
	leveldb_iter_get_error(it, &e);
	leveldb_iter_destroy(it);
	leveldb_readoptions_destroy(ro);
	leveldb_release_snapshot(kv->db, bd->snap);

	pthread_mutex_lock(&kv->bloom_lock);
	bd->b->added += n;
	bool keep = !e && !stop && kv->bloom_epoch == bd->epoch;
	if (keep)
		kv->bloom_done = bd->b;
	kv->bloom_next = NULL;
	pthread_mutex_unlock(&kv->bloom_lock);
	if (e) {
		log_warn("kv", "key filter not built (%s): lookups read the database", e);
		leveldb_free(e);
	} else if (keep) {
		log_info("kv", "key filter built from a scan of %llu keys", (unsigned long long)n);
	}
	if (!keep)
		bloom_free(kv, bd->b);
	free(bd);
	return NULL;
}

static void add_pending(void *ud, const uint8_t *k, size_t klen)
{
	struct kv_bloom *b = ud;
	bloom_add(b, k, klen);
	b->added++;
}

/* Starts a build sized for keys (caller: the node loop, or kv_open). */
static void start_build(struct kv *kv, uint64_t keys)
{
	struct build *bd = calloc(1, sizeof *bd);
	struct kv_bloom *b = bd ? bloom_new(kv, keys, kv->bloom_min_keys, kv->bloom_max_bits) : NULL;
	if (!b) {
		free(bd);
		return; /* no filter: lookups read the database */
	}
	if (kv->bloom_thread_started) {
		pthread_join(kv->bloom_thread, NULL);
		kv->bloom_thread_started = false;
	}
	/* The snapshot and generation are taken together, under the lock the
	 * generation flip takes, so the build sees exactly one generation; and
	 * with the keys applied but not in the database yet, which the scan
	 * cannot see (the lock the flush takes to drop them). */
	pthread_rwlock_rdlock(&kv->gen_lock);
	pthread_rwlock_rdlock(&kv->ov_lock);
	pthread_mutex_lock(&kv->bloom_lock);
	*bd = (struct build){.kv = kv,
			     .b = b,
			     .epoch = kv->bloom_epoch,
			     .gen = kv->gen,
			     .snap = leveldb_create_snapshot(kv->db)};
	kv_pending_each_present(kv, add_pending, b);
	kv->bloom_next = b;
	pthread_mutex_unlock(&kv->bloom_lock);
	pthread_rwlock_unlock(&kv->ov_lock);
	pthread_rwlock_unlock(&kv->gen_lock);
	if (pthread_create(&kv->bloom_thread, NULL, build_main, bd) != 0) {
		pthread_mutex_lock(&kv->bloom_lock);
		kv->bloom_next = NULL;
		pthread_mutex_unlock(&kv->bloom_lock);
		leveldb_release_snapshot(kv->db, bd->snap);
		bloom_free(kv, b);
		free(bd);
		return;
	}
	kv->bloom_thread_started = true;
}

/* ---- used by kv.c, kv_apply.c, kv_snap.c ---- */

void kv_bloom_before_apply(struct kv *kv)
{
	pthread_mutex_lock(&kv->bloom_lock);
	struct kv_bloom *done = kv->bloom_done;
	kv->bloom_done = NULL;
	bool building = kv->bloom_next != NULL;
	pthread_mutex_unlock(&kv->bloom_lock);
	if (done) {
		bloom_free(kv, kv->bloom);
		kv->bloom = done;
		kv->bloom_full = false;
	}
	if (building || done)
		return;
	struct kv_bloom *b = kv->bloom;
	uint64_t count = kv_key_count(kv);
	uint64_t live = count > kv->bloom_min_keys ? count : kv->bloom_min_keys;
	if (!b || b->layers >= MAX_LAYERS || b->total_capacity / MAX_SLACK > live)
		start_build(kv, count);
}

/* Puts a layer twice the size of the full newest one on top (the loop),
 * within the filter's bound. */
static void grow(struct kv *kv)
{
	struct kv_bloom *b = kv->bloom;
	uint64_t next = (b->mask + 1) * BLOCK_BITS * 2;
	if (kv->bloom_full)
		return;
	if (kv->bloom_max_bits && bloom_bits(b) + next > kv->bloom_max_bits) {
		uint64_t bytes = kv->bloom_max_bits / 8;
		kv->bloom_full = true;
		log_warn("kv", "key filter at its bound (--key-filter-max, %llu %s, %d layer(s)): "
			       "new keys go into its newest layer, and more writes of new keys "
			       "read the database first",
			 (unsigned long long)(bytes >= 1u << 20 ? bytes >> 20 : bytes >> 10),
			 bytes >= 1u << 20 ? "MiB" : "KiB", b->layers);
		return; /* the full layer stays in use, with more false positives */
	}
	struct kv_bloom *top = b->layers < MAX_GROWN ? bloom_new(kv, 2 * b->capacity, 1, 0) : NULL;
	if (!top)
		return; /* the full layer stays in use, with more false positives */
	top->older = b;
	top->layers = b->layers + 1;
	top->total_capacity = top->capacity + b->total_capacity;
	kv->bloom = top;
	log_info("kv", "key filter: layer %d for %llu more keys", top->layers,
		 (unsigned long long)top->capacity);
}

void kv_bloom_prefetch(const struct kv *kv, uint64_t h)
{
	for (const struct kv_bloom *b = kv->bloom; b; b = b->older)
		__builtin_prefetch(block_of(b, h));
}

bool kv_bloom_may_have(struct kv *kv, uint64_t h)
{
	return !kv->bloom || bloom_has(kv->bloom, h);
}

void kv_bloom_added(struct kv *kv, const void *const *keys, const size_t *lens, const bool *fresh,
		    size_t n)
{
	/* The others are in some layer already: bits are never cleared. A
	 * block of keys at a time: hashed, their lines of the newest layer
	 * requested, then set, so that the adds' cache misses overlap (one
	 * at a time, they were an eighth of the node loop). */
	enum { BLOCK = 64 };
	uint64_t h[BLOCK];
	for (size_t at = 0; kv->bloom && at < n; at += BLOCK) {
		size_t end = n - at < BLOCK ? n : at + BLOCK, k = 0;
		for (size_t i = at; i < end; i++) {
			if (!fresh[i])
				continue;
			h[k] = kv_bloom_hash(keys[i], lens[i]);
			__builtin_prefetch(block_of(kv->bloom, h[k++]), 1);
		}
		for (size_t i = 0; i < k; i++) {
			bloom_add_fresh(kv->bloom, h[i]);
			if (kv->bloom->added >= kv->bloom->capacity)
				grow(kv);
		}
	}
	/* A build started before this batch was written misses its keys:
	 * they go into it, whether it is still running or already done (not
	 * yet adopted). */
	pthread_mutex_lock(&kv->bloom_lock);
	struct kv_bloom *later = kv->bloom_next ? kv->bloom_next : kv->bloom_done;
	for (size_t i = 0; later && i < n; i++)
		bloom_add(later, keys[i], lens[i]);
	if (later) {
		/* new keys only, as far as the filter in use can tell */
		size_t fresh_n = 0;
		for (size_t i = 0; i < n; i++)
			fresh_n += fresh[i];
		later->added += kv->bloom ? fresh_n : n;
	}
	pthread_mutex_unlock(&kv->bloom_lock);
}

void kv_bloom_invalidate(struct kv *kv)
{
	pthread_mutex_lock(&kv->bloom_lock);
	__atomic_fetch_add(&kv->bloom_epoch, 1, __ATOMIC_RELAXED);
	bloom_free(kv, kv->bloom_done);
	kv->bloom_done = NULL;
	pthread_mutex_unlock(&kv->bloom_lock);
	bloom_free(kv, kv->bloom);
	kv->bloom = NULL;
	kv->bloom_full = false;
}

/* ---- kept across a clean restart ----
 *
 * At close the filter in use is written into the database directory
 * (kvfs.filter: LevelDB leaves files it does not know alone), through a
 * temporary file and a rename, not synced, and read back at the next open
 * if it was saved at exactly the state the database opens with (applied
 * index, generation, key count), by this filter's parameters (probes, block
 * size, bits a key, hash, byte order), and its checksum holds; the file is
 * removed either way. A filter of the same applied index holds every key of
 * that state: Raft gives one state per index, and a database directory
 * copied elsewhere takes its own filter with it. After a crash, or when the
 * file is unusable, the filter is built from a scan as before. So a restart
 * does not read the whole database back (4.2 million keys: 1.5 s, and 684
 * MiB of table pages left mapped; a dataset larger than RAM reads all of
 * it).
 *
 * Format: "KVFSKF01"; applied index u64 and key count u64, little-endian;
 * generation u8, layers u8, probes u8, log2 of the block bits u8, bits a
 * key u8, hash version u8, byte-order mark u16 (0x0102 as the host stores
 * it: the bits are host-order words); per layer, oldest first: bits u64 and
 * keys added u64, little-endian, then the bits; CRC-32C of all that, u32
 * little-endian. */

#define SAVE_MAGIC	  "KVFSKF01"
#define SAVE_HEADER	  32
#define SAVE_HASH_VERSION 2 /* bump when kv_bloom_hash or the bit placement changes */
#define SAVE_NAME	  "kvfs.filter"

static char *saved_path(const struct kv *kv, const char *suffix)
{
	char *p = NULL;
	if (asprintf(&p, "%s/" SAVE_NAME "%s", kv->path, suffix) < 0)
		return NULL;
	return p;
}

static void save_header(uint8_t h[SAVE_HEADER], uint64_t applied, uint64_t count, int gen,
			int layers)
{
	uint16_t bom = 0x0102;
	memset(h, 0, SAVE_HEADER);
	memcpy(h, SAVE_MAGIC, 8);
	put_le64(h + 8, applied);
	put_le64(h + 16, count);
	h[24] = (uint8_t)gen;
	h[25] = (uint8_t)layers;
	h[26] = BLOOM_PROBES;
	h[27] = (uint8_t)__builtin_ctz(BLOCK_BITS);
	h[28] = BLOOM_BITS_PER_KEY;
	h[29] = SAVE_HASH_VERSION;
	memcpy(h + 30, &bom, 2);
}

static bool put_all(FILE *f, const void *buf, size_t len, uint32_t *crc)
{
	*crc = crc32c(*crc, buf, len);
	return fwrite(buf, 1, len, f) == len;
}

static void bloom_save(struct kv *kv)
{
	struct kv_bloom *b = kv->bloom, *layer[MAX_GROWN];
	char *path = saved_path(kv, ""), *tmp = saved_path(kv, ".tmp");
	const char *why = NULL;
	FILE *f = NULL;
	int n = 0;
	if (!b || !path || !tmp || b->layers > MAX_GROWN)
		goto out;
	for (struct kv_bloom *l = b; l; l = l->older)
		layer[n++] = l;
	if (!(f = fopen(tmp, "wbe"))) {
		why = strerror(errno);
		goto out;
	}
	uint8_t h[SAVE_HEADER], c[4];
	uint32_t crc = 0;
	save_header(h, kv->applied, kv_key_count(kv), kv->gen, n);
	bool ok = put_all(f, h, sizeof h, &crc);
	for (int i = n - 1; ok && i >= 0; i--) {
		uint8_t lh[16];
		uint64_t nbits = (layer[i]->mask + 1) * BLOCK_BITS;
		put_le64(lh, nbits);
		put_le64(lh + 8, layer[i]->added);
		ok =
		    put_all(f, lh, sizeof lh, &crc) && put_all(f, layer[i]->words, nbits / 8, &crc);
	}
	put_le32(c, crc);
	ok = ok && fwrite(c, 1, 4, f) == 4;
	if (!ok)
		why = strerror(errno);
	if (fclose(f) != 0 && ok)
		why = strerror(errno);
	if (!why && rename(tmp, path) != 0)
		why = strerror(errno);
	if (!why)
		log_info("kv", "key filter saved for the next start (%d layer(s), applied %llu)", n,
			 (unsigned long long)kv->applied);
out:
	if (why) {
		log_warn("kv", "key filter not saved (%s): the next start scans the database", why);
		unlink(tmp);
	}
	free(path);
	free(tmp);
}

static bool get_all(FILE *f, void *buf, size_t len, uint32_t *crc)
{
	if (fread(buf, 1, len, f) != len)
		return false;
	*crc = crc32c(*crc, buf, len);
	return true;
}

/* The filter saved at the last clean close, if it fits the database as
 * opened; NULL otherwise. Removes the file. Sizes are checked against the
 * file's before anything is allocated. */
static struct kv_bloom *bloom_load(struct kv *kv)
{
	char *path = saved_path(kv, "");
	FILE *f = path ? fopen(path, "rbe") : NULL;
	struct kv_bloom *top = NULL;
	const char *why = "unreadable";
	struct stat st;
	if (!f) {
		free(path);
		return NULL;
	}
	uint8_t h[SAVE_HEADER], want[SAVE_HEADER];
	uint32_t crc = 0;
	if (fstat(fileno(f), &st) != 0 || !get_all(f, h, sizeof h, &crc))
		goto bad;
	uint64_t left = (uint64_t)st.st_size - SAVE_HEADER;
	save_header(want, kv->applied, kv_key_count(kv), kv->gen, h[25]);
	why = "of another format";
	if (memcmp(h, want, 8) != 0 || memcmp(h + 26, want + 26, SAVE_HEADER - 26) != 0)
		goto bad;
	why = "saved at another state";
	if (memcmp(h + 8, want + 8, 17) != 0) /* applied index, key count, generation */
		goto bad;
	why = "damaged";
	if (h[25] == 0 || h[25] > MAX_GROWN)
		goto bad;
	for (int i = 0; i < h[25]; i++) {
		uint8_t lh[16];
		if (left < sizeof lh || !get_all(f, lh, sizeof lh, &crc))
			goto bad;
		left -= sizeof lh;
		uint64_t nbits = get_le64(lh);
		if (nbits < BLOCK_BITS || (nbits & (nbits - 1)) || nbits > MAX_BITS ||
		    nbits / 8 > left)
			goto bad;
		left -= nbits / 8;
		struct kv_bloom *l = layer_new(kv, nbits);
		if (!l) {
			why = "out of memory";
			goto bad;
		}
		l->added = get_le64(lh + 8);
		if (top) {
			l->older = top;
			l->layers = top->layers + 1;
			l->total_capacity += top->total_capacity;
		}
		top = l;
		if (!get_all(f, l->words, nbits / 8, &crc))
			goto bad;
	}
	uint8_t c[4];
	if (left != 4 || fread(c, 1, 4, f) != 4 || get_le32(c) != crc || fgetc(f) != EOF)
		goto bad;
	fclose(f);
	unlink(path);
	free(path);
	log_info("kv", "key filter loaded from the last clean stop (%d layer(s))", top->layers);
	return top;
bad:
	log_warn("kv", "saved key filter %s %s: building it from the database", path, why);
	fclose(f);
	unlink(path);
	free(path);
	bloom_free(kv, top);
	return NULL;
}

void kv_bloom_start(struct kv *kv)
{
	pthread_mutex_init(&kv->bloom_lock, NULL);
	kv->bloom = bloom_load(kv);
	if (kv->bloom && kv->bloom_max_bits && bloom_bits(kv->bloom) > kv->bloom_max_bits) {
		log_info("kv", "key filter: the saved one is larger than --key-filter-max; "
			       "built again from a scan");
		bloom_free(kv, kv->bloom);
		kv->bloom = NULL;
	}
	if (!kv->bloom)
		start_build(kv, kv_key_count(kv));
}

void kv_bloom_stop(struct kv *kv)
{
	__atomic_store_n(&kv->bloom_stop, true, __ATOMIC_RELAXED);
	if (kv->bloom_thread_started)
		pthread_join(kv->bloom_thread, NULL);
	kv->bloom_thread_started = false;
	if (kv->bloom_done) { /* a finished build, not adopted yet: complete */
		bloom_free(kv, kv->bloom);
		kv->bloom = kv->bloom_done;
		kv->bloom_done = NULL;
	}
	bloom_save(kv);
	bloom_free(kv, kv->bloom);
	bloom_free(kv, kv->bloom_done);
	kv->bloom = kv->bloom_done = NULL;
	pthread_mutex_destroy(&kv->bloom_lock);
}

bool kv_bloom_ready(struct kv *kv)
{
	kv_bloom_before_apply(kv);
	return kv->bloom != NULL;
}

bool kv_bloom_wait(struct kv *kv)
{
	if (kv->bloom_thread_started) {
		pthread_join(kv->bloom_thread, NULL);
		kv->bloom_thread_started = false;
	}
	return kv_bloom_ready(kv);
}

uint64_t kv_key_filter_bytes(const struct kv *kv)
{
	return __atomic_load_n(&kv->bloom_bytes, __ATOMIC_RELAXED);
}

int kv_bloom_layers(const struct kv *kv)
{
	return kv->bloom ? kv->bloom->layers : 0;
}
