/*
 * The durable Raft log on LevelDB (layout in log.h). LevelDB gives atomic
 * batches and, with sync=1, durability of the whole batch in one fsync: the
 * node loop hands it everything one turn produced, which is the group commit
 * that keeps fsyncs per write far below one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <leveldb/c.h>

#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "store/log.h"

#define ENTRY_VERSION 1
#define ENTRY_HEADER 10

struct rlog {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_cache_t *cache;
	leveldb_readoptions_t *ropts;
	leveldb_writeoptions_t *sync;
	uint64_t first, last;
	uint64_t syncs; /* atomic */
	/* Deleted entries are only tombstones until LevelDB compacts the files
	 * holding them, which its size-triggered compactions of a log that
	 * only grows at one end hardly ever do: a background thread compacts
	 * the deleted range so the log's disk use stays bounded. Protected by
	 * clock. */
	pthread_t compactor;
	pthread_mutex_t clock;
	pthread_cond_t ccond;
	uint64_t compact_upto, compacted_upto;
	bool cstop, cstarted;
};

static void entry_key(uint8_t k[9], uint64_t index)
{
	k[0] = 'e';
	put_be64(k + 1, index);
}

static void *compactor(void *arg);

int rlog_open(const char *path, struct rlog **out)
{
	struct rlog *l = calloc(1, sizeof *l);
	char *e = NULL;
	if (!l)
		return -ENOMEM;
	l->opts = leveldb_options_create();
	l->cache = leveldb_cache_create_lru(8u << 20);
	leveldb_options_set_create_if_missing(l->opts, 1);
	leveldb_options_set_paranoid_checks(l->opts, 1);
	leveldb_options_set_cache(l->opts, l->cache);
	leveldb_options_set_write_buffer_size(l->opts, 8u << 20);
	leveldb_options_set_max_open_files(l->opts, 200);
	leveldb_options_set_compression(l->opts, leveldb_no_compression);
	l->ropts = leveldb_readoptions_create();
	leveldb_readoptions_set_verify_checksums(l->ropts, 1);
	l->sync = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(l->sync, 1);
	pthread_mutex_init(&l->clock, NULL);
	pthread_cond_init(&l->ccond, NULL);
	l->db = leveldb_open(l->opts, path, &e);
	if (e) {
		log_error("log", "cannot open %s: %s", path, e);
		leveldb_free(e);
		rlog_close(l);
		return KVFS_ESTORAGE;
	}
	l->cstarted = pthread_create(&l->compactor, NULL, compactor, l) == 0;
	*out = l;
	return 0;
}

static void *compactor(void *arg)
{
	struct rlog *l = arg;
	pthread_mutex_lock(&l->clock);
	while (!l->cstop) {
		if (l->compact_upto <= l->compacted_upto) {
			pthread_cond_wait(&l->ccond, &l->clock);
			continue;
		}
		uint64_t from = l->compacted_upto, to = l->compact_upto;
		pthread_mutex_unlock(&l->clock);
		uint8_t a[9], b[9];
		entry_key(a, from);
		entry_key(b, to);
		leveldb_compact_range(l->db, (char *)a, 9, (char *)b, 9);
		pthread_mutex_lock(&l->clock);
		l->compacted_upto = to;
	}
	pthread_mutex_unlock(&l->clock);
	return NULL;
}

void rlog_close(struct rlog *l)
{
	if (!l)
		return;
	if (l->cstarted) {
		pthread_mutex_lock(&l->clock);
		l->cstop = true;
		pthread_cond_signal(&l->ccond);
		pthread_mutex_unlock(&l->clock);
		pthread_join(l->compactor, NULL);
	}
	pthread_mutex_destroy(&l->clock);
	pthread_cond_destroy(&l->ccond);
	if (l->db)
		leveldb_close(l->db);
	leveldb_writeoptions_destroy(l->sync);
	leveldb_readoptions_destroy(l->ropts);
	leveldb_options_destroy(l->opts);
	leveldb_cache_destroy(l->cache);
	free(l);
}

static int read_key(struct rlog *l, const char *key, size_t klen, char **v, size_t *vlen)
{
	char *e = NULL;
	*v = leveldb_get(l->db, l->ropts, key, klen, vlen, &e);
	if (e) {
		log_error("log", "read failed: %s", e);
		leveldb_free(e);
		return KVFS_ESTORAGE;
	}
	return 0;
}

int rlog_load(struct rlog *l, struct rlog_hard_state *hs, struct rlog_snapshot_meta *snap,
	      int (*cb)(const struct rlog_entry *e, void *ud), void *ud)
{
	char *v;
	size_t vlen;
	int rc;

	memset(hs, 0, sizeof *hs);
	memset(snap, 0, sizeof *snap);
	if ((rc = read_key(l, "h", 1, &v, &vlen)) < 0)
		return rc;
	if (v) {
		if (vlen != 16) {
			leveldb_free(v);
			return KVFS_ECORRUPT;
		}
		hs->term = get_le64((uint8_t *)v);
		hs->vote = get_le64((uint8_t *)v + 8);
		leveldb_free(v);
	}
	if ((rc = read_key(l, "s", 1, &v, &vlen)) < 0)
		return rc;
	if (v) {
		if (vlen < 16) {
			leveldb_free(v);
			return KVFS_ECORRUPT;
		}
		snap->index = get_le64((uint8_t *)v);
		snap->term = get_le64((uint8_t *)v + 8);
		snap->membership_len = vlen - 16;
		snap->membership = malloc(vlen - 16 + 1);
		if (snap->membership)
			memcpy(snap->membership, v + 16, vlen - 16);
		leveldb_free(v);
		if (!snap->membership)
			return -ENOMEM;
	}

	leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->ropts);
	uint8_t k[9];
	entry_key(k, 0);
	l->first = l->last = 0;
	rc = 0;
	for (leveldb_iter_seek(it, (char *)k, 9); leveldb_iter_valid(it); leveldb_iter_next(it)) {
		size_t kl, len;
		const uint8_t *key = (const uint8_t *)leveldb_iter_key(it, &kl);
		const uint8_t *val = (const uint8_t *)leveldb_iter_value(it, &len);
		if (kl != 9 || key[0] != 'e')
			break;
		struct rlog_entry ent = {.index = get_be64(key + 1)};
		if (len < ENTRY_HEADER || val[0] != ENTRY_VERSION ||
		    (l->last && ent.index != l->last + 1)) {
			log_error("log", "corrupt or missing entry at index %llu",
				  (unsigned long long)(l->last ? l->last + 1 : ent.index));
			rc = KVFS_ECORRUPT;
			break;
		}
		ent.type = val[1];
		ent.term = get_le64(val + 2);
		ent.data = val + ENTRY_HEADER;
		ent.len = len - ENTRY_HEADER;
		if (!l->first)
			l->first = ent.index;
		l->last = ent.index;
		if (cb && (rc = cb(&ent, ud)) != 0)
			break;
	}
	char *e = NULL;
	leveldb_iter_get_error(it, &e);
	if (e) {
		log_error("log", "iteration failed: %s", e);
		leveldb_free(e);
		rc = KVFS_ESTORAGE;
	}
	leveldb_iter_destroy(it);
	if (rc == 0 && l->first && snap->index && l->first > snap->index + 1) {
		log_error("log", "gap between snapshot %llu and first entry %llu",
			  (unsigned long long)snap->index, (unsigned long long)l->first);
		rc = KVFS_ECORRUPT;
	}
	return rc;
}

static int write_batch(struct rlog *l, leveldb_writebatch_t *wb)
{
	char *e = NULL;
	leveldb_write(l->db, l->sync, wb, &e);
	__atomic_fetch_add(&l->syncs, 1, __ATOMIC_RELAXED);
	if (e) {
		log_error("log", "synced write failed: %s", e);
		leveldb_free(e);
		return KVFS_ESTORAGE;
	}
	return 0;
}

int rlog_write(struct rlog *l, const struct rlog_hard_state *hs, uint64_t truncate_from,
	       const struct rlog_entry *entries, size_t n)
{
	leveldb_writebatch_t *wb = leveldb_writebatch_create();
	uint8_t k[9], hbuf[16];
	uint64_t first = l->first, last = l->last;
	uint8_t stackbuf[1024];
	int rc;

	if (truncate_from && truncate_from <= last) {
		/* Only keys that exist: after compaction truncate_from may lie
		 * below first, possibly by millions of entries. */
		for (uint64_t i = truncate_from > first ? truncate_from : first; i <= last; i++) {
			entry_key(k, i);
			leveldb_writebatch_delete(wb, (char *)k, 9);
		}
		last = truncate_from - 1;
		if (last < first)
			first = last = 0; /* no entry left: (0, 0), as rlog_load sees it */
	}
	for (size_t i = 0; i < n; i++) {
		const struct rlog_entry *ent = &entries[i];
		size_t len = ENTRY_HEADER + ent->len;
		uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
		if (!buf) {
			leveldb_writebatch_destroy(wb);
			return -ENOMEM;
		}
		buf[0] = ENTRY_VERSION;
		buf[1] = ent->type;
		put_le64(buf + 2, ent->term);
		if (ent->len)
			memcpy(buf + ENTRY_HEADER, ent->data, ent->len);
		entry_key(k, ent->index);
		/* LevelDB copies the bytes into the batch's representation. */
		leveldb_writebatch_put(wb, (char *)k, 9, (char *)buf, len);
		if (buf != stackbuf)
			free(buf);
		if (!first)
			first = ent->index;
		last = ent->index;
	}
	if (hs) {
		put_le64(hbuf, hs->term);
		put_le64(hbuf + 8, hs->vote);
		leveldb_writebatch_put(wb, "h", 1, (char *)hbuf, 16);
	}
	rc = write_batch(l, wb);
	leveldb_writebatch_destroy(wb);
	if (rc == 0) {
		l->first = first;
		l->last = last;
	}
	return rc;
}

int rlog_compact(struct rlog *l, const struct rlog_snapshot_meta *snap, uint64_t upto)
{
	leveldb_writebatch_t *wb = leveldb_writebatch_create();
	size_t len = 16 + snap->membership_len;
	uint8_t *buf = malloc(len);
	uint8_t k[9];
	int rc;
	if (!buf) {
		leveldb_writebatch_destroy(wb);
		return -ENOMEM;
	}
	put_le64(buf, snap->index);
	put_le64(buf + 8, snap->term);
	if (snap->membership_len)
		memcpy(buf + 16, snap->membership, snap->membership_len);
	leveldb_writebatch_put(wb, "s", 1, (char *)buf, len);
	free(buf);
	uint64_t first = l->first;
	if (upto > l->last)
		upto = l->last;
	for (uint64_t i = first; first && i <= upto; i++) {
		entry_key(k, i);
		leveldb_writebatch_delete(wb, (char *)k, 9);
	}
	rc = write_batch(l, wb);
	leveldb_writebatch_destroy(wb);
	if (rc == 0 && first && upto >= first) {
		pthread_mutex_lock(&l->clock);
		if (upto > l->compact_upto) {
			l->compact_upto = upto;
			pthread_cond_signal(&l->ccond);
		}
		pthread_mutex_unlock(&l->clock);
	}
	if (rc == 0 && first && upto >= first)
		l->first = upto < l->last ? upto + 1 : 0;
	if (rc == 0 && l->first == 0)
		l->last = 0;
	return rc;
}

uint64_t rlog_first_index(struct rlog *l)
{
	return l->first;
}

uint64_t rlog_last_index(struct rlog *l)
{
	return l->last;
}

uint64_t rlog_disk_size(struct rlog *l)
{
	const char *start = "", *limit = "\xff";
	size_t sl = 0, ll = 1;
	uint64_t size = 0;
	leveldb_approximate_sizes(l->db, 1, &start, &sl, &limit, &ll, &size);
	return size;
}

uint64_t rlog_sync_count(struct rlog *l)
{
	return __atomic_load_n(&l->syncs, __ATOMIC_RELAXED);
}
