/*
 * The state machine database: opening with the options that keep memory
 * bounded whatever the dataset size (block cache, memtable, open files),
 * point reads, iterators and the metadata kept beside the data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "store/kv_env.h"
#include "store/kv_internal.h"

#ifdef KVFS_STATIC_LEVELDB
#define STATIC_LEVELDB 1
#else
#define STATIC_LEVELDB 0
#endif

void kv_options_default(struct kv_options *o)
{
	*o = (struct kv_options){0};
	o->cache_bytes = 16u << 20;
	o->write_buffer = 16u << 20;
	o->max_open_files = 500;
	o->filter_min_keys = 1u << 20;
	o->filter_max_bytes = 64u << 20;
	o->meta_cache_bytes = 8u << 20;
}

static uint64_t read_meta_u64(struct kv *kv, const char *key, size_t klen, int *err)
{
	char *e = NULL;
	size_t len = 0;
	char *v = leveldb_get(kv->db, kv->ropts, key, klen, &len, &e);
	if (e) {
		log_error("kv", "reading metadata: %s", e);
		leveldb_free(e);
		*err = KVFS_ESTORAGE;
		return 0;
	}
	if (!v)
		return 0;
	uint64_t x = len == 8 ? get_le64((uint8_t *)v) : 0;
	if (len != 8)
		*err = KVFS_ECORRUPT;
	leveldb_free(v);
	return x;
}

/* Frees the LevelDB option objects and kv itself. */
static void free_options(struct kv *kv)
{
	leveldb_writeoptions_destroy(kv->sync_wopts);
	leveldb_readoptions_destroy(kv->ropts);
	leveldb_options_destroy(kv->opts);
	leveldb_filterpolicy_destroy(kv->filter);
	leveldb_cache_destroy(kv->cache);
	free(kv);
}

int kv_open(const char *path, const struct kv_options *o, struct kv **out)
{
	struct kv *kv = calloc(1, sizeof *kv);
	char *e = NULL;
	int rc = 0;
	if (!kv)
		return -ENOMEM;
	kv->opts = leveldb_options_create();
	kv->cache = leveldb_cache_create_lru(o->cache_bytes);
	kv->filter = leveldb_filterpolicy_create_bloom(10);
	leveldb_options_set_create_if_missing(kv->opts, 1);
	leveldb_options_set_paranoid_checks(kv->opts, 1);
	leveldb_options_set_cache(kv->opts, kv->cache);
	leveldb_options_set_filter_policy(kv->opts, kv->filter);
	leveldb_options_set_write_buffer_size(kv->opts, o->write_buffer);
	leveldb_options_set_max_open_files(kv->opts, o->max_open_files);
	leveldb_options_set_max_file_size(kv->opts, 8u << 20);
	leveldb_options_set_block_size(kv->opts, KV_TABLE_BLOCK);
	leveldb_options_set_compression(kv->opts, leveldb_no_compression);
	leveldb_options_set_env(kv->opts, o->table_mmap ? kv_plain_env() : kv_pread_env());
	kv->ropts = leveldb_readoptions_create();
	leveldb_readoptions_set_verify_checksums(kv->ropts, 1);
	kv->sync_wopts = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(kv->sync_wopts, 1);
	kv->bloom_min_keys = o->filter_min_keys ? o->filter_min_keys : 1;
	kv->bloom_max_bits = o->filter_max_bytes * 8;

	kv->db = leveldb_open(kv->opts, path, &e);
	if (e && strncmp(e, "Corruption:", 11) == 0 && kv_wal_fix_tail(path) > 0) {
		/* a power loss tore the write being synced: try again without it */
		leveldb_free(e);
		e = NULL;
		kv->db = leveldb_open(kv->opts, path, &e);
	}
	if (e) {
		log_error("kv", "cannot open %s: %s", path, e);
		leveldb_free(e);
		rc = KVFS_ESTORAGE;
		goto err_after_options;
	}
	/* (Opening read the manifest: LevelDB has checksummed by now.) */
	static int crc_logged;
	if (!__atomic_exchange_n(&crc_logged, 1, __ATOMIC_RELAXED)) {
		bool isal = kv_crc_replaced();
		if (STATIC_LEVELDB && !isal)
			log_warn("kv", "LevelDB is linked statically but checksums with its own "
				       "table-driven CRC-32C: kv_crc.cc's was not linked");
		else
			log_info("kv", "LevelDB checksums with %s",
				 isal ? "ISA-L's CRC-32C (static LevelDB)"
				      : "its own table-driven CRC-32C (shared LevelDB)");
	}
	kv->applied = read_meta_u64(kv, KV_META_APPLIED, sizeof KV_META_APPLIED - 1, &rc);
	kv->count = read_meta_u64(kv, KV_META_COUNT, sizeof KV_META_COUNT - 1, &rc);
	if (rc)
		goto err_after_open;
	{
		char *e2 = NULL, *g;
		size_t gl;
		g = leveldb_get(kv->db, kv->ropts, KV_META_GEN, sizeof KV_META_GEN - 1, &gl, &e2);
		if (e2) {
			leveldb_free(e2);
			rc = KVFS_ESTORAGE;
			goto err_after_open;
		}
		kv->gen = g && gl == 1 && g[0] == 1;
		leveldb_free(g);
	}
	pthread_rwlock_init(&kv->gen_lock, NULL);
	pthread_rwlock_init(&kv->ov_lock, NULL);
	pthread_mutex_init(&kv->view_lock, NULL);
	pthread_mutex_init(&kv->flush_lock, NULL);
	kv->active = &kv->tables[0];
	kv->durable = kv->applied; /* every write of the live state was synced */
	if (!(kv->path = strdup(path))) {
		rc = -ENOMEM;
		goto err_after_open;
	}
	kv->cleanup_pending = true; /* whatever an interrupted install left behind */
	pthread_mutex_init(&kv->cleanup_lock, NULL);
	pthread_cond_init(&kv->cleanup_cond, NULL);
	kv->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (kv->dir_fd < 0) {
		log_error("kv", "cannot open %s: %s", path, strerror(errno));
		free(kv->path);
		rc = KVFS_ESTORAGE;
		goto err_after_open;
	}
	kv->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (kv->notify_fd >= 0 &&
	    inotify_add_watch(kv->notify_fd, path,
			      IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO) < 0) {
		close(kv->notify_fd);
		kv->notify_fd = -1;
	}
	if (kv->notify_fd < 0)
		log_warn("kv", "no inotify watch on %s (%s): every sync lists the directory",
			 path, strerror(errno));
	kv_meta_init(kv, o->meta_cache_bytes);
	kv_bloom_start(kv);
	if ((rc = kv_cleanup_start(kv)) < 0) {
		kv_close(kv);
		return rc;
	}
	*out = kv;
	return 0;

err_after_open:
	leveldb_close(kv->db);
err_after_options:
	free_options(kv);
	return rc;
}

void kv_close(struct kv *kv)
{
	if (!kv)
		return;
	kv_cleanup_stop(kv);
	/* What was applied goes to LevelDB (then the saved key filter matches
	 * it); a failed flush leaves it to the log replay of the next start. */
	if (!kv->flush_failed && kv_sync(kv, kv_applied_index(kv)) != 0)
		log_warn("kv", "applied state not flushed at close: the next start replays the log");
	kv_bloom_stop(kv);
	kv_meta_free(kv);
	pthread_rwlock_destroy(&kv->gen_lock);
	ov_clear(&kv->tables[0]);
	ov_clear(&kv->tables[1]);
	free(kv->pend_members);
	free(kv->flush_members);
	pthread_rwlock_destroy(&kv->ov_lock);
	pthread_mutex_destroy(&kv->view_lock);
	pthread_mutex_destroy(&kv->flush_lock);
	pthread_mutex_destroy(&kv->cleanup_lock);
	pthread_cond_destroy(&kv->cleanup_cond);
	if (kv->notify_fd >= 0)
		close(kv->notify_fd);
	if (kv->dir_fd >= 0)
		close(kv->dir_fd);
	free(kv->path);
	leveldb_close(kv->db);
	free_options(kv);
}

uint64_t kv_applied_index(struct kv *kv)
{
	return __atomic_load_n(&kv->applied, __ATOMIC_ACQUIRE);
}

uint64_t kv_durable_index(struct kv *kv)
{
	return __atomic_load_n(&kv->durable, __ATOMIC_ACQUIRE);
}

uint64_t kv_key_count(struct kv *kv)
{
	return __atomic_load_n(&kv->count, __ATOMIC_RELAXED);
}

uint64_t kv_disk_size(struct kv *kv)
{
	const char *start = "", *limit = "\xff\xff\xff\xff";
	size_t sl = 0, ll = 4;
	uint64_t size = 0;
	leveldb_approximate_sizes(kv->db, 1, &start, &sl, &limit, &ll, &size);
	return size;
}

int kv_level_files(struct kv *kv, int level)
{
	char name[48];
	snprintf(name, sizeof name, "leveldb.num-files-at-level%d", level);
	char *v = leveldb_property_value(kv->db, name);
	int n = v ? atoi(v) : -1;
	leveldb_free(v);
	return n;
}

uint64_t kv_stats_debt(const char *stats)
{
	/* "Level  Files Size(MB) Time(sec) Read(MB) Write(MB)", a dashed line,
	 * then one line a level that has files: level, files, size, ... */
	uint64_t debt = 0;
	const char *p = stats ? strstr(stats, "\n--") : NULL;
	while (p && (p = strchr(p + 1, '\n'))) {
		int level, files;
		double mib;
		if (sscanf(p + 1, "%d %d %lf", &level, &files, &mib) != 3)
			break;
		double target = 10; /* MiB at level 1, ten times more a level down */
		for (int l = 1; l < level; l++)
			target *= 10;
		if (level >= 1 && level < KV_LEVELS - 1 && mib > target) /* (the last never moves) */
			debt += (uint64_t)((mib - target) * 1048576);
	}
	return debt;
}

uint64_t kv_compaction_debt(struct kv *kv)
{
	char *v = leveldb_property_value(kv->db, "leveldb.stats");
	uint64_t debt = kv_stats_debt(v);
	leveldb_free(v);
	return debt;
}

uint64_t kv_background_jobs(void)
{
	return kv_env_jobs();
}

int kv_read_raw(struct kv *kv, const leveldb_readoptions_t *ro, const void *key, size_t klen,
		char **val, size_t *vlen)
{
	char stackbuf[512], *k = stackbuf, *e = NULL;
	if (klen + 1 > sizeof stackbuf && !(k = malloc(klen + 1)))
		return -ENOMEM;
	k[0] = KV_GEN_PREFIX(kv->gen);
	memcpy(k + 1, key, klen);
	*val = leveldb_get(kv->db, ro, k, klen + 1, vlen, &e);
	if (k != stackbuf)
		free(k);
	if (e) {
		log_error("kv", "read failed: %s", e);
		leveldb_free(e);
		return KVFS_ESTORAGE;
	}
	return *val ? 0 : KVFS_ENOTFOUND;
}

int kv_get(struct kv *kv, const void *key, size_t klen, char **rec, size_t *rec_len)
{
	pthread_rwlock_rdlock(&kv->gen_lock);
	int rc = kv_pending_get(kv, key, klen, rec, rec_len);
	if (rc == 1)
		rc = kv_read_raw(kv, kv->ropts, key, klen, rec, rec_len);
	pthread_rwlock_unlock(&kv->gen_lock);
	return rc;
}

void kv_free(void *p)
{
	leveldb_free(p);
}

int kv_get_membership(struct kv *kv, char **blob, size_t *len)
{
	int rc = kv_pending_membership(kv, blob, len);
	if (rc != 1)
		return rc;
	char *e = NULL;
	*blob = leveldb_get(kv->db, kv->ropts, KV_META_MEMBERS, sizeof KV_META_MEMBERS - 1, len, &e);
	if (e) {
		log_error("kv", "reading membership: %s", e);
		leveldb_free(e);
		return KVFS_ESTORAGE;
	}
	return *blob ? 0 : KVFS_ENOTFOUND;
}

#define KV_ITER_CACHED (256u * 1024)

/* An iterator merges two sorted sources taken at the same moment: a copy of
 * the pending state (kv_pending.c), which wins on equal keys and whose
 * deletions hide keys, and a LevelDB snapshot. */
struct kv_iter {
	leveldb_iterator_t *it;
	leveldb_readoptions_t *ro;
	const leveldb_snapshot_t *snap;
	struct kv *kv;
	uint8_t *prefix; /* generation byte + the user prefix keys must have */
	size_t plen;
	uint8_t *lo, *hi; /* bounds (malloc'd copies), NULL when none */
	size_t lolen, hilen;
	size_t cached_left; /* bytes still read through the block cache */
	struct ov_copy *ov;
	size_t n_ov, oi;
	int cur; /* where the current key is: 0 LevelDB, 1 ov[oi], -1 nowhere */
	int err;
};

static uint8_t *dup_bytes(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

struct kv_iter *kv_iter_create_range(struct kv *kv, const struct kv_bounds *b)
{
	size_t plen = b->plen;
	struct kv_iter *it = calloc(1, sizeof *it);
	if (!it || !(it->prefix = malloc(plen + 1)) ||
	    (b->lolen && !(it->lo = dup_bytes(b->lo, b->lolen))) ||
	    (b->hi && !(it->hi = dup_bytes(b->hi, b->hilen)))) {
		if (it) {
			free(it->prefix);
			free(it->lo);
		}
		free(it);
		return NULL;
	}
	if (plen)
		memcpy(it->prefix + 1, b->prefix, plen);
	it->plen = plen + 1;
	it->lolen = b->lolen;
	it->hilen = b->hilen;
	it->kv = kv;
	it->cur = -1;
	pthread_rwlock_rdlock(&kv->gen_lock);
	pthread_rwlock_rdlock(&kv->ov_lock);
	it->prefix[0] = (uint8_t)KV_GEN_PREFIX(kv->gen);
	it->snap = leveldb_create_snapshot(kv->db);
	if (kv_pending_copy(kv, b, &it->ov, &it->n_ov) < 0)
		it->err = -ENOMEM;
	pthread_rwlock_unlock(&kv->ov_lock);
	pthread_rwlock_unlock(&kv->gen_lock);
	kv_pending_sort(it->ov, it->n_ov);
	it->ro = leveldb_readoptions_create();
	leveldb_readoptions_set_verify_checksums(it->ro, 1);
	/* The first KV_ITER_CACHED bytes go through the block cache, so that
	 * short ranges repeated over the same keys find their blocks there;
	 * the rest of a long scan does not, and cannot evict hot keys. */
	leveldb_readoptions_set_fill_cache(it->ro, 1);
	it->cached_left = KV_ITER_CACHED;
	leveldb_readoptions_set_snapshot(it->ro, it->snap);
	it->it = leveldb_create_iterator(kv->db, it->ro);
	return it;
}

struct kv_iter *kv_iter_create_prefix(struct kv *kv, const void *prefix, size_t plen)
{
	struct kv_bounds b = {.prefix = prefix, .plen = plen};
	return kv_iter_create_range(kv, &b);
}

struct kv_iter *kv_iter_create(struct kv *kv)
{
	return kv_iter_create_prefix(kv, "", 0);
}

/* Whether LevelDB's iterator is on a user key of the live generation
 * under the iterator's prefix. */
static bool db_valid(struct kv_iter *it)
{
	if (!leveldb_iter_valid(it->it))
		return false;
	size_t len;
	const char *k = leveldb_iter_key(it->it, &len);
	return len >= it->plen && memcmp(k, it->prefix, it->plen) == 0;
}

/* Picks the current key from the two sources' positions. */
static void settle(struct kv_iter *it)
{
	for (;;) {
		bool dv = !it->err && db_valid(it), ov = !it->err && it->oi < it->n_ov;
		if (!dv && !ov) {
			it->cur = -1;
			return;
		}
		int c = dv ? 1 : -1; /* with one source left, that one */
		if (dv && ov) {
			size_t kl;
			const uint8_t *k = (const uint8_t *)leveldb_iter_key(it->it, &kl);
			c = kv_key_cmp(it->ov[it->oi].key, it->ov[it->oi].klen, k + 1, kl - 1);
			if (c == 0) /* the pending state is newer */
				leveldb_iter_next(it->it);
		}
		if (!ov || c > 0) {
			it->cur = 0;
			break;
		}
		if (it->ov[it->oi].rec) {
			it->cur = 1;
			break;
		}
		it->oi++; /* deleted: hidden */
	}
	if (it->hi) { /* past hi: the end, as the copy has nothing there */
		size_t kl;
		const uint8_t *k = kv_iter_key(it, &kl);
		if (kv_key_cmp(k, kl, it->hi, it->hilen) > 0)
			it->cur = -1;
	}
}

void kv_iter_seek(struct kv_iter *it, const void *start, size_t slen)
{
	/* Not before the prefix or lo: LevelDB would show keys the copy
	 * lacks. */
	size_t up = it->plen - 1;
	if (kv_key_cmp(start, slen, it->prefix + 1, up) < 0) {
		start = it->prefix + 1;
		slen = up;
	}
	if (it->lo && kv_key_cmp(start, slen, it->lo, it->lolen) < 0) {
		start = it->lo;
		slen = it->lolen;
	}
	char stackbuf[512], *k = stackbuf;
	if (slen + 1 > sizeof stackbuf && !(k = malloc(slen + 1))) {
		it->err = -ENOMEM; /* degrade: end the scan, with an error */
		it->cur = -1;
		return;
	}
	k[0] = (char)it->prefix[0];
	memcpy(k + 1, start, slen);
	leveldb_iter_seek(it->it, k, slen + 1);
	if (k != stackbuf)
		free(k);
	it->oi = kv_pending_lower_bound(it->ov, it->n_ov, start, slen);
	settle(it);
}

bool kv_iter_valid(struct kv_iter *it)
{
	return it->cur >= 0;
}

/* Goes on reading without filling the block cache: a new LevelDB iterator
 * on the same snapshot, at the current key. Kept as it is on any error. */
static void stop_caching(struct kv_iter *it)
{
	char *e = NULL;
	leveldb_iter_get_error(it->it, &e);
	if (e) {
		leveldb_free(e);
		return;
	}
	size_t len;
	const char *k = leveldb_iter_key(it->it, &len);
	char stackbuf[512], *copy = len <= sizeof stackbuf ? stackbuf : malloc(len);
	if (!copy)
		return;
	memcpy(copy, k, len);
	leveldb_readoptions_set_fill_cache(it->ro, 0);
	leveldb_iterator_t *nit = leveldb_create_iterator(it->kv->db, it->ro);
	leveldb_iter_seek(nit, copy, len);
	/* It must stand on the same key (same snapshot), or the old one goes
	 * on: LevelDB's Next on an invalid iterator is undefined. */
	size_t nlen = 0;
	const char *nk = leveldb_iter_valid(nit) ? leveldb_iter_key(nit, &nlen) : NULL;
	leveldb_iter_get_error(nit, &e);
	bool same = !e && nk && nlen == len && memcmp(nk, copy, len) == 0;
	if (e)
		leveldb_free(e);
	if (copy != stackbuf)
		free(copy);
	if (!same) {
		leveldb_readoptions_set_fill_cache(it->ro, 1);
		leveldb_iter_destroy(nit);
		return;
	}
	leveldb_iter_destroy(it->it);
	it->it = nit;
}

void kv_iter_next(struct kv_iter *it)
{
	if (it->cur == 1) {
		it->oi++;
	} else if (it->cur == 0) {
		if (it->cached_left) {
			size_t kl, vl;
			leveldb_iter_key(it->it, &kl);
			leveldb_iter_value(it->it, &vl);
			it->cached_left = it->cached_left > kl + vl ? it->cached_left - kl - vl : 0;
			if (!it->cached_left)
				stop_caching(it);
		}
		leveldb_iter_next(it->it);
	}
	settle(it);
}

const uint8_t *kv_iter_key(struct kv_iter *it, size_t *klen)
{
	if (it->cur == 1) {
		*klen = it->ov[it->oi].klen;
		return it->ov[it->oi].key;
	}
	size_t len;
	const char *k = leveldb_iter_key(it->it, &len);
	*klen = len - 1;
	return (const uint8_t *)k + 1;
}

const uint8_t *kv_iter_record(struct kv_iter *it, size_t *len)
{
	if (it->cur == 1) {
		*len = it->ov[it->oi].rlen;
		return it->ov[it->oi].rec;
	}
	return (const uint8_t *)leveldb_iter_value(it->it, len);
}

int kv_iter_status(struct kv_iter *it)
{
	if (it->err) {
		log_error("kv", "iteration failed: %s", kvfs_strerror(it->err));
		return KVFS_ESTORAGE;
	}
	char *e = NULL;
	leveldb_iter_get_error(it->it, &e);
	if (e) {
		log_error("kv", "iteration failed: %s", e);
		leveldb_free(e);
		return KVFS_ESTORAGE;
	}
	return 0;
}

void kv_iter_destroy(struct kv_iter *it)
{
	if (!it)
		return;
	leveldb_iter_destroy(it->it);
	leveldb_readoptions_destroy(it->ro);
	leveldb_release_snapshot(it->kv->db, it->snap);
	free(it->ov);
	free(it->prefix);
	free(it->lo);
	free(it->hi);
	free(it);
}
