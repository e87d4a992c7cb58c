/*
 * Snapshots of the state machine as a byte stream, for followers that fell
 * behind the compacted log.
 *
 * The state machine database is itself the durable snapshot (it holds the
 * state of the applied index it records, kv_pending.c), so a snapshot is
 * just a consistent read of it: a LevelDB snapshot iterated in key order
 * and serialised as
 *
 *   record: 4 key length K (LE) | K key bytes | 4 value length V | V bytes
 *   end:    4 bytes 0xFFFFFFFF
 *
 * where user keys appear as 'k' + key whatever generation holds them, and the
 * metadata keys (applied index, key count) as they are. The stream is
 * produced on demand at increasing offsets (a chunk at a time; a resumed
 * transfer that asks for an earlier offset restarts the iteration). Its
 * integrity in flight is guarded by the wire checksum; kv_snap_next decodes
 * it an item at a time, and refuses (KVFS_EPROTO) bytes no snapshot holds,
 * down to a user key's record that does not decode, before any is live.
 *
 * The receiving side writes the records under the generation that is not
 * live (kv_internal.h), in synced 4 MiB batches, then commit() flips the live
 * generation in one synced batch: installation is atomic, and a crash at any
 * point before the flip leaves the old state live.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "store/kv_internal.h"

#define END_MARK 0xFFFFFFFFu
/* The longest key a stream may carry: 'k' + TXN_MAX_KEY bytes is the most a
 * store takes now, but a store written before renames were bounded
 * (kv_apply.c) may hold longer keys, and must still reach its followers. */
#define SNAP_KEY_MAX (1u << 20)

struct kv_snap_reader {
	struct kv *kv;
	const leveldb_snapshot_t *snap;
	leveldb_readoptions_t *ro;
	leveldb_iterator_t *it;
	char prefix;
	uint64_t applied;
	uint64_t pos;         /* stream offset of out[off] */
	struct byte_buf out;  /* bytes produced, not yet handed out */
	size_t off;
	int phase;            /* 0 meta, 1 user keys, 2 end written */
};

static void put_record(struct byte_buf *b, const void *k, size_t kl, const void *v, size_t vl)
{
	bb_le32(b, (uint32_t)kl);
	bb_put(b, k, kl);
	bb_le32(b, (uint32_t)vl);
	bb_put(b, v, vl);
}

static void reader_rewind(struct kv_snap_reader *r)
{
	r->pos = 0;
	r->out.len = 0;
	r->off = 0;
	r->phase = 0;
	char k = r->prefix;
	leveldb_iter_seek(r->it, &k, 1);
}

struct kv_snap_reader *kv_snap_reader_create(struct kv *kv)
{
	struct kv_snap_reader *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->kv = kv;
	bb_init(&r->out);
	pthread_rwlock_rdlock(&kv->gen_lock);
	r->prefix = KV_GEN_PREFIX(kv->gen);
	r->snap = leveldb_create_snapshot(kv->db);
	pthread_rwlock_unlock(&kv->gen_lock);
	r->ro = leveldb_readoptions_create();
	leveldb_readoptions_set_snapshot(r->ro, r->snap);
	leveldb_readoptions_set_fill_cache(r->ro, 0);
	leveldb_readoptions_set_verify_checksums(r->ro, 1);
	r->it = leveldb_create_iterator(kv->db, r->ro);
	char *e = NULL;
	size_t len;
	char *v = leveldb_get(kv->db, r->ro, KV_META_APPLIED, sizeof KV_META_APPLIED - 1, &len, &e);
	if (e)
		leveldb_free(e);
	r->applied = v && len == 8 ? get_le64((uint8_t *)v) : 0;
	leveldb_free(v);
	reader_rewind(r);
	return r;
}

uint64_t kv_snap_reader_index(struct kv_snap_reader *r)
{
	return r->applied;
}

/* Produces more stream bytes into r->out. */
static int reader_fill(struct kv_snap_reader *r)
{
	if (r->off == r->out.len) {
		r->out.len = 0;
		r->off = 0;
	}
	if (r->phase == 0) {
		static const char *const metas[] = {KV_META_APPLIED, KV_META_COUNT};
		static const size_t mlen[] = {sizeof KV_META_APPLIED - 1, sizeof KV_META_COUNT - 1};
		for (int i = 0; i < 2; i++) {
			char *e = NULL;
			size_t len;
			char *v = leveldb_get(r->kv->db, r->ro, metas[i], mlen[i], &len, &e);
			if (e) {
				leveldb_free(e);
				return KVFS_ESTORAGE;
			}
			if (v)
				put_record(&r->out, metas[i], mlen[i], v, len);
			leveldb_free(v);
		}
		r->phase = 1;
	}
	while (r->phase == 1 && r->out.len - r->off < 256 * 1024) {
		size_t kl, vl;
		if (!leveldb_iter_valid(r->it)) {
			char *e = NULL;
			leveldb_iter_get_error(r->it, &e);
			if (e) {
				log_error("kv", "snapshot iteration: %s", e);
				leveldb_free(e);
				return KVFS_ESTORAGE;
			}
			bb_le32(&r->out, END_MARK);
			r->phase = 2;
			break;
		}
		const char *k = leveldb_iter_key(r->it, &kl);
		if (kl < 1 || k[0] != r->prefix) {
			bb_le32(&r->out, END_MARK);
			r->phase = 2;
			break;
		}
		const char *v = leveldb_iter_value(r->it, &vl);
		bb_le32(&r->out, (uint32_t)kl);
		bb_u8(&r->out, 'k');
		bb_put(&r->out, k + 1, kl - 1);
		bb_le32(&r->out, (uint32_t)vl);
		bb_put(&r->out, v, vl);
		leveldb_iter_next(r->it);
	}
	return r->out.err ? -ENOMEM : 0;
}

long kv_snap_read(struct kv_snap_reader *r, uint64_t offset, void *buf, size_t max, bool *done)
{
	int rc;
	*done = false;
	if (offset < r->pos)
		reader_rewind(r);
	/* Skip forward to offset (a resumed transfer). */
	while (r->pos + (r->out.len - r->off) < offset) {
		r->pos += r->out.len - r->off;
		r->off = r->out.len;
		if (r->phase == 2)
			return KVFS_EPROTO; /* offset beyond the end */
		if ((rc = reader_fill(r)) < 0)
			return rc;
	}
	size_t skip = (size_t)(offset - r->pos);
	r->off += skip;
	r->pos += skip;
	size_t n = 0;
	while (n < max) {
		if (r->off == r->out.len) {
			if (r->phase == 2)
				break;
			if ((rc = reader_fill(r)) < 0)
				return rc;
			continue;
		}
		size_t take = r->out.len - r->off;
		if (take > max - n)
			take = max - n;
		memcpy((char *)buf + n, r->out.data + r->off, take);
		r->off += take;
		r->pos += take;
		n += take;
	}
	*done = r->phase == 2 && r->off == r->out.len;
	return (long)n;
}

void kv_snap_reader_destroy(struct kv_snap_reader *r)
{
	if (!r)
		return;
	leveldb_iter_destroy(r->it);
	leveldb_readoptions_destroy(r->ro);
	leveldb_release_snapshot(r->kv->db, r->snap);
	bb_free(&r->out);
	free(r);
}

/* ---- receiving side ---- */

struct kv_snap_writer {
	struct kv *kv;
	char prefix; /* the generation being written (not live) */
	uint64_t received;
	struct byte_buf partial; /* an incomplete record carried between chunks */
	leveldb_writebatch_t *wb;
	size_t wb_bytes;
	uint64_t applied, count;
	bool ended;
	bool over; /* its generation was handed back to the cleanup thread */
};

/* Synced, as every write kvfs gives LevelDB: after a power loss only the
 * write being synced can be torn, which is what kv_wal.c relies on. */
static int write_batch(struct kv *kv, leveldb_writebatch_t *wb)
{
	char *e = NULL;
	leveldb_write(kv->db, kv->sync_wopts, wb, &e);
	leveldb_writebatch_clear(wb);
	if (e) {
		log_error("kv", "snapshot write failed: %s", e);
		leveldb_free(e);
		return KVFS_ESTORAGE;
	}
	return 0;
}

static bool flushes_failed(struct kv *kv)
{
	return __atomic_load_n(&kv->flush_failed, __ATOMIC_ACQUIRE);
}

/* A new cleanup starts from the beginning of the dead generation (caller
 * holds cleanup_lock). */
static void cleanup_restart(struct kv *kv)
{
	kv->cleanup_pending = true;
	free(kv->cleanup_resume);
	kv->cleanup_resume = NULL;
	kv->cleanup_resume_len = 0;
}

/* Deletes up to max_keys of the dead generation; caller holds cleanup_lock
 * (so no install writes there meanwhile) and gen_lock (so the generations
 * do not flip). Returns 1 while more remains, 0 when clean, or
 * KVFS_ESTORAGE. */
static int cleanup_step(struct kv *kv, size_t max_keys)
{
	if (!kv->cleanup_pending)
		return 0;
	char dead = KV_GEN_PREFIX(!kv->gen), *e = NULL;
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	leveldb_readoptions_set_fill_cache(ro, 0);
	leveldb_iterator_t *it = leveldb_create_iterator(kv->db, ro);
	leveldb_writebatch_t *wb = leveldb_writebatch_create();
	const char *k = NULL;
	size_t n = 0, kl = 0;
	if (kv->cleanup_resume)
		leveldb_iter_seek(it, kv->cleanup_resume, kv->cleanup_resume_len);
	else
		leveldb_iter_seek(it, &dead, 1);
	for (; leveldb_iter_valid(it) && n < max_keys; leveldb_iter_next(it), n++) {
		k = leveldb_iter_key(it, &kl);
		if (kl < 1 || k[0] != dead)
			break;
		leveldb_writebatch_delete(wb, k, kl);
	}
	bool more = n == max_keys;
	int rc = 0;
	char *resume = NULL;
	leveldb_iter_get_error(it, &e);
	if (e) { /* a scan cut short must not pass for a clean generation */
		log_error("kv", "cleanup of the replaced state failed: %s", e);
		leveldb_free(e);
		rc = KVFS_ESTORAGE;
	} else if (more && !(resume = malloc(kl))) {
		rc = -ENOMEM;
	} else if (more) {
		memcpy(resume, k, kl);
	}
	leveldb_iter_destroy(it);
	leveldb_readoptions_destroy(ro);
	if (rc == 0 && kv->cleanup_hook)
		kv->cleanup_hook(kv);
	if (rc == 0 && n)
		rc = write_batch(kv, wb);
	leveldb_writebatch_destroy(wb);
	if (rc) {
		free(resume);
		return rc < 0 && rc != -ENOMEM ? rc : KVFS_ESTORAGE;
	}
	free(kv->cleanup_resume);
	kv->cleanup_resume = resume;
	kv->cleanup_resume_len = resume ? kl : 0;
	if (!more)
		kv->cleanup_pending = false;
	return more ? 1 : 0;
}

/* The cleanup thread: a step at a time while something is left, no install
 * is writing into the dead generation and nothing failed. 10,000 keys a
 * step (a synced write of as many deletes, about 10 ms), then a 10 ms
 * pause with the lock free, so that an install or the stop gets it, and
 * the deletes do not take the disk and LevelDB from the live state's
 * flushes: at most about 500,000 keys a second. Off the node loop, which
 * used to take these steps between its turns and stalled for each. */
static void *cleanup_main(void *arg)
{
	struct kv *kv = arg;
	pthread_setname_np(pthread_self(), "kvfs-cleanup");
	pthread_mutex_lock(&kv->cleanup_lock);
	for (;;) {
		while (!kv->cleanup_stop && (!kv->cleanup_pending || kv->install_owner ||
					     kv_cleanup_error(kv) || flushes_failed(kv)))
			pthread_cond_wait(&kv->cleanup_cond, &kv->cleanup_lock);
		if (kv->cleanup_stop)
			break;
		pthread_rwlock_rdlock(&kv->gen_lock);
		int rc = cleanup_step(kv, 10000);
		pthread_rwlock_unlock(&kv->gen_lock);
		if (rc < 0) {
			/* nothing more is written: no flush after a failed write
			 * (kv_sync), and the node stops (kv_cleanup_error) */
			__atomic_store_n(&kv->cleanup_error, rc, __ATOMIC_RELEASE);
			pthread_mutex_lock(&kv->flush_lock);
			kv->flush_failed = true;
			pthread_mutex_unlock(&kv->flush_lock);
		}
		pthread_cond_broadcast(&kv->cleanup_cond); /* kv_cleanup_wait */
		if (rc > 0) {
			int64_t until = clock_real_ns() + 10 * 1000000;
			struct timespec ts = {.tv_sec = until / 1000000000,
					      .tv_nsec = until % 1000000000};
			pthread_cond_timedwait(&kv->cleanup_cond, &kv->cleanup_lock, &ts);
		}
	}
	pthread_mutex_unlock(&kv->cleanup_lock);
	return NULL;
}

int kv_cleanup_start(struct kv *kv)
{
	if (pthread_create(&kv->cleanup_thread, NULL, cleanup_main, kv) != 0)
		return -ENOMEM;
	kv->cleanup_started = true;
	return 0;
}

void kv_cleanup_stop(struct kv *kv)
{
	if (kv->cleanup_started) {
		pthread_mutex_lock(&kv->cleanup_lock);
		kv->cleanup_stop = true;
		pthread_cond_broadcast(&kv->cleanup_cond);
		pthread_mutex_unlock(&kv->cleanup_lock);
		pthread_join(kv->cleanup_thread, NULL);
		kv->cleanup_started = false;
	}
	free(kv->cleanup_resume);
	kv->cleanup_resume = NULL;
}

int kv_cleanup_error(struct kv *kv)
{
	return __atomic_load_n(&kv->cleanup_error, __ATOMIC_ACQUIRE);
}

int kv_cleanup_wait(struct kv *kv)
{
	pthread_mutex_lock(&kv->cleanup_lock);
	while (kv->cleanup_pending && !kv_cleanup_error(kv) && !flushes_failed(kv) &&
	       kv->cleanup_started)
		pthread_cond_wait(&kv->cleanup_cond, &kv->cleanup_lock);
	pthread_mutex_unlock(&kv->cleanup_lock);
	return kv_cleanup_error(kv);
}

/* w's install is over (committed, or given up: what it wrote is dead too):
 * the dead generation is the thread's again. */
static void install_over(struct kv *kv, struct kv_snap_writer *w)
{
	if (w->over)
		return;
	w->over = true;
	pthread_mutex_lock(&kv->cleanup_lock);
	if (kv->install_owner == w) {
		kv->install_owner = NULL;
		cleanup_restart(kv);
		pthread_cond_broadcast(&kv->cleanup_cond);
	}
	pthread_mutex_unlock(&kv->cleanup_lock);
}

int kv_snap_writer_create(struct kv *kv, struct kv_snap_writer **out)
{
	struct kv_snap_writer *w = calloc(1, sizeof *w);
	int rc;
	if (!w)
		return -ENOMEM;
	if (kv_cleanup_error(kv) || flushes_failed(kv)) {
		free(w);
		return KVFS_ESTORAGE; /* the node is stopping */
	}
	/* What is left of the dead generation (an earlier install's or an
	 * interrupted one's) goes first, here if the cleanup thread has not
	 * finished it: the snapshot is written into that generation. The
	 * thread stays off it until the install is over. */
	pthread_mutex_lock(&kv->cleanup_lock);
	kv->install_owner = w;
	cleanup_restart(kv);
	pthread_rwlock_rdlock(&kv->gen_lock);
	while ((rc = cleanup_step(kv, 100000)) > 0)
		;
	pthread_rwlock_unlock(&kv->gen_lock);
	if (rc < 0) {
		kv->install_owner = NULL;
		__atomic_store_n(&kv->cleanup_error, rc, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&kv->cleanup_lock);
	if (rc < 0) {
		free(w);
		return rc;
	}
	w->kv = kv;
	w->prefix = KV_GEN_PREFIX(!kv->gen);
	bb_init(&w->partial);
	w->wb = leveldb_writebatch_create();
	*out = w;
	return 0;
}

long kv_snap_next(const uint8_t *p, size_t len, struct kv_snap_item *it)
{
	if (len < 4)
		return 0;
	uint32_t kl = get_le32(p);
	if (kl == END_MARK) {
		*it = (struct kv_snap_item){.kind = KV_SNAP_END};
		return 4;
	}
	if (kl == 0 || kl > SNAP_KEY_MAX)
		return KVFS_EPROTO;
	if (len - 4 < (size_t)kl + 4)
		return 0;
	const uint8_t *k = p + 4;
	uint32_t vl = get_le32(p + 4 + kl);
	enum kv_snap_kind kind;
	if (k[0] == 'k')
		kind = KV_SNAP_KEY;
	else if (kl == sizeof KV_META_APPLIED - 1 && memcmp(k, KV_META_APPLIED, kl) == 0)
		kind = KV_SNAP_APPLIED;
	else if (kl == sizeof KV_META_COUNT - 1 && memcmp(k, KV_META_COUNT, kl) == 0)
		kind = KV_SNAP_COUNT;
	else
		return KVFS_EPROTO;
	if (kind == KV_SNAP_KEY ? vl > KV_VALUE_LIMIT + RECORD_HEADER_MAX : vl != 8)
		return KVFS_EPROTO;
	if (len - 8 - kl < vl)
		return 0;
	const uint8_t *v = p + 8 + kl;
	if (kind == KV_SNAP_KEY) {
		struct record_meta meta;
		const uint8_t *val;
		size_t val_len;
		if (record_decode(v, vl, &meta, &val, &val_len) != 0)
			return KVFS_EPROTO;
	}
	*it = (struct kv_snap_item){.kind = kind, .key = k, .klen = kl, .value = v, .vlen = vl};
	return 8 + (long)kl + (long)vl;
}

/* Takes the whole items at p; returns bytes consumed or a negative code. */
static long parse(struct kv_snap_writer *w, const uint8_t *p, size_t len)
{
	size_t used = 0;
	while (!w->ended) {
		struct kv_snap_item it;
		long n = kv_snap_next(p + used, len - used, &it);
		if (n <= 0) {
			if (n < 0)
				return n;
			break;
		}
		used += (size_t)n;
		switch (it.kind) {
		case KV_SNAP_END:
			w->ended = true;
			break;
		case KV_SNAP_APPLIED:
			w->applied = get_le64(it.value);
			break;
		case KV_SNAP_COUNT:
			w->count = get_le64(it.value);
			break;
		case KV_SNAP_KEY: {
			char stackbuf[512];
			char *nk = it.klen <= sizeof stackbuf ? stackbuf : malloc(it.klen);
			if (!nk)
				return -ENOMEM;
			nk[0] = w->prefix;
			memcpy(nk + 1, it.key + 1, it.klen - 1);
			leveldb_writebatch_put(w->wb, nk, it.klen, (const char *)it.value, it.vlen);
			if (nk != stackbuf)
				free(nk);
			w->wb_bytes += it.klen + it.vlen;
			break;
		}
		}
		if (w->wb_bytes > (4u << 20)) {
			/* Synced: after a power loss LevelDB does not promise that
			 * unsynced writes before a later synced one survive, and the
			 * flip below must never expose a half-written generation. */
			int rc = write_batch(w->kv, w->wb);
			if (rc)
				return rc;
			w->wb_bytes = 0;
		}
	}
	return (long)used;
}

int kv_snap_write(struct kv_snap_writer *w, uint64_t offset, const void *data, size_t len)
{
	if (offset != w->received)
		return KVFS_EPROTO;
	if (w->ended && len)
		return KVFS_EPROTO;
	w->received += len;
	const uint8_t *p = data;
	size_t plen = len;
	if (w->partial.len) {
		bb_put(&w->partial, data, len);
		if (w->partial.err)
			return -ENOMEM;
		p = w->partial.data;
		plen = w->partial.len;
	}
	long used = parse(w, p, plen);
	if (used < 0)
		return (int)used;
	size_t rest = plen - (size_t)used;
	if (w->partial.len) {
		memmove(w->partial.data, w->partial.data + used, rest);
		w->partial.len = rest;
	} else if (rest) {
		bb_put(&w->partial, p + used, rest);
		if (w->partial.err)
			return -ENOMEM;
	}
	return 0;
}

int kv_snap_commit(struct kv_snap_writer *w)
{
	struct kv *kv = w->kv;
	if (!w->ended || w->partial.len)
		return KVFS_EPROTO;
	uint8_t a[8], c[8], g = (uint8_t)!kv->gen;
	put_le64(a, w->applied);
	put_le64(c, w->count);
	leveldb_writebatch_put(w->wb, KV_META_APPLIED, sizeof KV_META_APPLIED - 1, (char *)a, 8);
	leveldb_writebatch_put(w->wb, KV_META_COUNT, sizeof KV_META_COUNT - 1, (char *)c, 8);
	leveldb_writebatch_put(w->wb, KV_META_GEN, sizeof KV_META_GEN - 1, (char *)&g, 1);
	/* Earlier batches were synced; this one carries the last records and
	 * the flip together. */
	int rc;
	pthread_rwlock_wrlock(&kv->gen_lock);
	rc = write_batch(kv, w->wb);
	if (rc == 0) /* the new state may be in a new LevelDB log file */
		rc = kv_sync_dir(kv);
	if (rc == 0) {
		/* What was applied before and not flushed is older than the
		 * snapshot; no flush runs (it holds gen_lock until it has
		 * dropped what it wrote). */
		kv_pending_discard(kv);
		kv->gen = g;
		kv_bloom_invalidate(kv); /* it knew the other generation's keys */
		__atomic_store_n(&kv->count, w->count, __ATOMIC_RELAXED);
		__atomic_store_n(&kv->applied, w->applied, __ATOMIC_RELEASE);
		__atomic_store_n(&kv->durable, w->applied, __ATOMIC_RELEASE);
	}
	pthread_rwlock_unlock(&kv->gen_lock);
	if (rc == 0) {
		kv_meta_clear(kv);   /* node loop only: no lock, no reader waits */
		install_over(kv, w); /* the replaced generation is dead */
	} else {
		/* The flip may be on disk though gen says otherwise: the thread
		 * must not delete what may be live. The node stops; the next
		 * start reads the generation from LevelDB. */
		__atomic_store_n(&kv->cleanup_error, rc, __ATOMIC_RELEASE);
	}
	return rc;
}

uint64_t kv_snap_writer_index(struct kv_snap_writer *w)
{
	return w->applied;
}

void kv_snap_writer_destroy(struct kv_snap_writer *w)
{
	if (!w)
		return;
	install_over(w->kv, w); /* (if not committed, what it wrote is dead too) */
	leveldb_writebatch_destroy(w->wb);
	bb_free(&w->partial);
	free(w);
}
