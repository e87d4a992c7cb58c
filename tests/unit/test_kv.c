/*
 * Unit tests for the state machine (store/kv.h, kv_apply.c): transactions are
 * applied all-or-nothing, transactions of one batch see each other's effects,
 * failed ones leave no trace even over keys an earlier transaction of the same
 * batch wrote (the undo list), the result never depends on how entries are
 * cut into batches, and the applied index, key count and membership persist
 * with the data.
 *
 * Each test gets a fresh database in its own temporary directory. Scenario
 * helpers: txn_new() starts a transaction in f->txn, the txn_add_* builder
 * calls add ops, queue() turns it into the next Raft entry, flush() applies
 * every queued entry in one kv_apply batch, and run() is queue + flush.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <time.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/err.h"
#include "store/kv.h"
#include "store/kv_env.h"
#include "store/kv_internal.h"
#include "store/record.h"
#include "store/txn.h"
#include "tests/unit/store_test_util.h"

#define MTIME 1700000000000000000LL

struct fx {
	char *dir;
	struct kv *kv;
	uint64_t index;       /* last Raft index handed out */
	struct byte_buf txn;  /* the transaction being built */
	struct kv_entry *ents; /* queued entries (own their data) */
	size_t n, cap;
	int *res;             /* results of the last flush, by queue position */
	uint64_t *deleted;
	size_t meta_bytes;    /* metadata cache budget, when meta_set */
	bool meta_set;
	uint64_t filter_max;  /* key filter bound in bytes, when filter_max_set */
	bool filter_max_set;
};

/* --- scenario helpers ---------------------------------------------------- */

static void fx_open(struct fx *f)
{
	struct kv_options o;
	char path[4096];
	kv_options_default(&o);
	o.cache_bytes = 1u << 20;
	o.write_buffer = 1u << 20;
	o.filter_min_keys = 64; /* small key filters, outgrown by a few hundred keys */
	if (f->meta_set)
		o.meta_cache_bytes = f->meta_bytes;
	if (f->filter_max_set)
		o.filter_max_bytes = f->filter_max;
	assert_int_equal(kv_open(path_join(path, sizeof path, f->dir, "kv"), &o, &f->kv), 0);
}

static void fx_reopen(struct fx *f)
{
	kv_close(f->kv);
	f->kv = NULL;
	fx_open(f);
}

/* Reopens without the key filter saved at close: it is built from a scan. */
static void fx_reopen_scan(struct fx *f)
{
	char path[4096];
	kv_close(f->kv);
	f->kv = NULL;
	if (unlink(path_join(path, sizeof path, f->dir, "kv/kvfs.filter")) < 0)
		assert_int_equal(errno, ENOENT); /* none in use at close */
	fx_open(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f || !(f->dir = tmpdir_create("kv")))
		return -1;
	bb_init(&f->txn);
	*state = f;
	fx_open(f);
	return 0;
}

static void clear_queue(struct fx *f)
{
	for (size_t i = 0; i < f->n; i++)
		free((void *)f->ents[i].data);
	f->n = 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	clear_queue(f);
	free(f->ents);
	free(f->res);
	free(f->deleted);
	bb_free(&f->txn);
	kv_close(f->kv);
	tmpdir_destroy(f->dir);
	free(f);
	return 0;
}

static void txn_new(struct fx *f)
{
	txn_begin(&f->txn, MTIME);
}

static struct kv_entry *queue_entry(struct fx *f, uint64_t index, void *data, size_t len)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->ents = realloc(f->ents, f->cap * sizeof *f->ents);
		f->res = realloc(f->res, f->cap * sizeof *f->res);
		f->deleted = realloc(f->deleted, f->cap * sizeof *f->deleted);
		assert_non_null(f->ents);
		assert_non_null(f->res);
		assert_non_null(f->deleted);
	}
	struct kv_entry *e = &f->ents[f->n++];
	*e = (struct kv_entry){.index = index, .data = data, .len = len, .result = 12345};
	return e;
}

/* Queues the transaction in f->txn as the next entry; returns its index. */
static uint64_t queue(struct fx *f)
{
	size_t len;
	assert_int_equal(txn_finish(&f->txn), 0);
	uint8_t *data = bb_take(&f->txn, &len);
	queue_entry(f, ++f->index, data, len);
	return f->index;
}

/* Queues raw bytes (possibly not a transaction) as the next entry. */
static uint64_t queue_bytes(struct fx *f, const void *p, size_t len)
{
	void *data = malloc(len);
	assert_non_null(data);
	memcpy(data, p, len);
	queue_entry(f, ++f->index, data, len);
	return f->index;
}

/* Applies every queued entry in one batch; results land in f->res[]. */
static void flush_with(struct fx *f, const void *members, size_t mlen)
{
	assert_int_equal(kv_apply(f->kv, f->ents, f->n, members, mlen), 0);
	for (size_t i = 0; i < f->n; i++) {
		f->res[i] = f->ents[i].result;
		f->deleted[i] = f->ents[i].deleted;
	}
	clear_queue(f);
}

static void flush(struct fx *f)
{
	flush_with(f, NULL, 0);
}

/* Applies the transaction in f->txn alone; returns its result. */
static int run(struct fx *f)
{
	queue(f);
	flush(f);
	return f->res[0];
}

static int put(struct fx *f, const char *key, const char *val)
{
	txn_new(f);
	txn_add_put(&f->txn, key, strlen(key), RECORD_RAW, 0644, 0, val, strlen(val));
	return run(f);
}

static int del(struct fx *f, const char *key, uint8_t flags)
{
	txn_new(f);
	txn_add_delete(&f->txn, key, strlen(key), flags);
	return run(f);
}

/* Puts each "key=value" of a NULL-terminated list, each in its own entry,
 * all in one batch. */
static void put_all(struct fx *f, const char *const *kvs)
{
	for (; *kvs; kvs++) {
		const char *eq = strchr(*kvs, '=');
		txn_new(f);
		txn_add_put(&f->txn, *kvs, (size_t)(eq - *kvs), RECORD_RAW, 0644, 0, eq + 1,
			    strlen(eq + 1));
		queue(f);
	}
	flush(f);
}

/* Reads key: returns kv_get's code; on success fills *m and the value as a
 * NUL-terminated string in val (val may be NULL). */
static int get(struct fx *f, const char *key, struct record_meta *m, char *val, size_t vcap)
{
	char *rec;
	size_t rlen, vlen;
	const uint8_t *v;
	struct record_meta tmp;
	int rc = kv_get(f->kv, key, strlen(key), &rec, &rlen);
	if (rc)
		return rc;
	assert_int_equal(record_decode(rec, rlen, m ? m : &tmp, &v, &vlen), 0);
	if (val) {
		assert_true(vlen < vcap);
		memcpy(val, v, vlen);
		val[vlen] = '\0';
	}
	kv_free(rec);
	return 0;
}

static void assert_value(struct fx *f, const char *key, const char *want)
{
	char val[256];
	if (get(f, key, NULL, val, sizeof val) != 0)
		fail_msg("key \"%s\" missing, wanted \"%s\"", key, want);
	assert_string_equal(val, want);
}

static void assert_absent(struct fx *f, const char *key)
{
	if (get(f, key, NULL, NULL, 0) != KVFS_ENOTFOUND)
		fail_msg("key \"%s\" present, wanted absent", key);
}

static struct record_meta meta_of(struct fx *f, const char *key)
{
	struct record_meta m;
	assert_int_equal(get(f, key, &m, NULL, 0), 0);
	return m;
}

/* Dumps every user key as "k=v;" in iteration order into out. */
static void dump(struct fx *f, char *out, size_t cap)
{
	struct kv_iter *it = kv_iter_create(f->kv);
	size_t n = 0;
	assert_non_null(it);
	out[0] = '\0';
	for (kv_iter_seek(it, "", 0); kv_iter_valid(it); kv_iter_next(it)) {
		size_t klen, rlen, vlen;
		const uint8_t *k = kv_iter_key(it, &klen), *r = kv_iter_record(it, &rlen), *v;
		struct record_meta m;
		assert_int_equal(record_decode(r, rlen, &m, &v, &vlen), 0);
		int w = snprintf(out + n, cap - n, "%.*s=%.*s;", (int)klen, (const char *)k,
				 (int)vlen, (const char *)v);
		assert_true(w > 0 && (size_t)w < cap - n);
		n += (size_t)w;
	}
	assert_int_equal(kv_iter_status(it), 0);
	kv_iter_destroy(it);
}

/* Seeks it to start and checks that it then yields exactly the keys of
 * want (NULL-terminated), in order. */
static void assert_keys_from(struct kv_iter *it, const char *start, const char *const *want)
{
	size_t i = 0, n = 0;
	while (want[n])
		n++;
	for (kv_iter_seek(it, start, strlen(start)); kv_iter_valid(it); kv_iter_next(it), i++) {
		size_t klen;
		const uint8_t *k = kv_iter_key(it, &klen);
		assert_true(i < n);
		assert_int_equal(klen, strlen(want[i]));
		assert_memory_equal(k, want[i], klen);
	}
	assert_int_equal(i, n);
	assert_int_equal(kv_iter_status(it), 0);
}

static void assert_dump(struct fx *f, const char *want)
{
	char got[4096];
	dump(f, got, sizeof got);
	assert_string_equal(got, want);
}

/* --- basic reads and writes ---------------------------------------------- */

static void test_put_get(void **state)
{
	/* A PUT stores kind, mode, the transaction's mtime and the value; absent keys are KVFS_ENOTFOUND. */
	struct fx *f = *state;
	struct record_meta m;
	char val[64];
	assert_int_equal(put(f, "a", "hello"), 0);
	assert_int_equal(get(f, "a", &m, val, sizeof val), 0);
	assert_string_equal(val, "hello");
	assert_int_equal(m.kind, RECORD_RAW);
	assert_int_equal(m.mode, 0644);
	assert_true(m.mtime_ns == MTIME);
	assert_int_equal(get(f, "b", NULL, NULL, 0), KVFS_ENOTFOUND);
	assert_int_equal(kv_applied_index(f->kv), f->index);
}

static void test_sync_advances_durable_index(void **state)
{
	/* Unsynced apply batches become durable only through kv_sync, whose index only grows. */
	struct fx *f = *state;
	uint64_t start = kv_durable_index(f->kv);
	assert_int_equal(put(f, "d1", "x"), 0);
	assert_int_equal(put(f, "d2", "y"), 0);
	assert_int_equal(kv_durable_index(f->kv), start);
	assert_int_equal(kv_sync(f->kv, kv_applied_index(f->kv)), 0);
	assert_int_equal(kv_durable_index(f->kv), kv_applied_index(f->kv));
	assert_int_equal(kv_sync(f->kv, 1), 0); /* an older target never lowers it */
	assert_int_equal(kv_durable_index(f->kv), kv_applied_index(f->kv));
	fx_reopen(f);
	assert_int_equal(kv_durable_index(f->kv), kv_applied_index(f->kv));
	assert_value(f, "d2", "y");
}

static void test_revisions_and_versions(void **state)
{
	/* create_rev stays at the creating entry, mod_rev follows every write, version counts writes. */
	struct fx *f = *state;
	assert_int_equal(put(f, "a", "1"), 0);
	uint64_t created = f->index;
	struct record_meta m = meta_of(f, "a");
	assert_int_equal(m.create_rev, created);
	assert_int_equal(m.mod_rev, created);
	assert_int_equal(m.version, 1);

	assert_int_equal(put(f, "other", "x"), 0);
	assert_int_equal(put(f, "a", "2"), 0);
	m = meta_of(f, "a");
	assert_int_equal(m.create_rev, created);
	assert_int_equal(m.mod_rev, f->index);
	assert_int_equal(m.version, 2);

	/* Deleting and re-creating starts a new life: new create_rev, version 1. */
	assert_int_equal(del(f, "a", 0), 0);
	assert_int_equal(put(f, "a", "3"), 0);
	m = meta_of(f, "a");
	assert_int_equal(m.create_rev, f->index);
	assert_int_equal(m.version, 1);
}

static void test_put_keep_mode(void **state)
{
	/* PUT with KEEP_MODE keeps an existing record's mode and uses its own mode for new keys. */
	struct fx *f = *state;
	txn_new(f);
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0600, 0, "1", 1);
	assert_int_equal(run(f), 0);
	txn_new(f);
	txn_add_put(&f->txn, "a", 1, RECORD_JSON, 0644, TXN_F_KEEP_MODE, "2", 1);
	txn_add_put(&f->txn, "b", 1, RECORD_JSON, 0755, TXN_F_KEEP_MODE, "2", 1);
	assert_int_equal(run(f), 0);
	assert_int_equal(meta_of(f, "a").mode, 0600);
	assert_int_equal(meta_of(f, "a").kind, RECORD_JSON);
	assert_int_equal(meta_of(f, "b").mode, 0755);
}

static void test_key_count(void **state)
{
	/* The key count follows creations and deletions, not overwrites or misses. */
	struct fx *f = *state;
	assert_int_equal(kv_key_count(f->kv), 0);
	put_all(f, (const char *const[]){"a=1", "b=1", "c=1", NULL});
	assert_int_equal(kv_key_count(f->kv), 3);
	assert_int_equal(put(f, "a", "2"), 0);
	assert_int_equal(kv_key_count(f->kv), 3);
	assert_int_equal(del(f, "b", 0), 0);
	assert_int_equal(kv_key_count(f->kv), 2);
	assert_int_equal(del(f, "b", 0), 0);
	assert_int_equal(kv_key_count(f->kv), 2);
}

static void test_delete(void **state)
{
	/* DELETE removes a key and reports it; a missing key is fine unless MUST_EXIST, then KVFS_ENOTFOUND. */
	struct fx *f = *state;
	assert_int_equal(put(f, "a", "1"), 0);
	assert_int_equal(del(f, "a", TXN_F_MUST_EXIST), 0);
	assert_int_equal(f->deleted[0], 1);
	assert_absent(f, "a");
	assert_int_equal(del(f, "a", 0), 0);
	assert_int_equal(f->deleted[0], 0);
	assert_int_equal(del(f, "a", TXN_F_MUST_EXIST), KVFS_ENOTFOUND);
	assert_int_equal(kv_applied_index(f->kv), f->index); /* failed entries still count as applied */
}

/* --- preconditions ------------------------------------------------------- */

/* Runs CHECK(key, rev, flags) followed by PUT(marker); returns the result and
 * checks the PUT happened exactly when the CHECK passed. */
static int check_then_put(struct fx *f, const char *key, uint64_t rev, uint8_t flags)
{
	txn_new(f);
	txn_add_check(&f->txn, key, strlen(key), rev, flags);
	txn_add_put(&f->txn, "marker", 6, RECORD_RAW, 0, 0, "m", 1);
	uint64_t before = kv_key_count(f->kv);
	int rc = run(f);
	if (rc == 0) {
		assert_value(f, "marker", "m");
		assert_int_equal(del(f, "marker", TXN_F_MUST_EXIST), 0);
	} else {
		assert_absent(f, "marker");
		assert_int_equal(kv_key_count(f->kv), before);
	}
	return rc;
}

static void test_check_preconditions(void **state)
{
	/* CHECK passes on the exact modify revision, fails otherwise with KVFS_EPRECOND;
	 * revision 0 means absent, or present with MUST_EXIST. */
	struct fx *f = *state;
	assert_int_equal(put(f, "a", "1"), 0);
	uint64_t rev = f->index;
	assert_int_equal(check_then_put(f, "a", rev, 0), 0);
	assert_int_equal(check_then_put(f, "a", rev + 1, 0), KVFS_EPRECOND);
	assert_int_equal(check_then_put(f, "a", rev - 1, 0), KVFS_EPRECOND);
	assert_int_equal(check_then_put(f, "nope", rev, 0), KVFS_EPRECOND);
	assert_int_equal(check_then_put(f, "nope", 0, 0), 0);
	assert_int_equal(check_then_put(f, "a", 0, 0), KVFS_EPRECOND);
	assert_int_equal(check_then_put(f, "a", 0, TXN_F_MUST_EXIST), 0);
	assert_int_equal(check_then_put(f, "nope", 0, TXN_F_MUST_EXIST), KVFS_EPRECOND);
}

/* --- atomicity and batches ----------------------------------------------- */

static void test_failed_txn_rolls_back_earlier_txn_in_batch(void **state)
{
	/* A transaction whose last op fails leaves no trace, even where its earlier ops
	 * overwrote or deleted keys that an earlier transaction of the same batch wrote. */
	struct fx *f = *state;
	assert_int_equal(put(f, "db", "old"), 0);

	txn_new(f); /* T1: succeeds */
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0, 0, "t1", 2);
	txn_add_put(&f->txn, "b", 1, RECORD_RAW, 0, 0, "t1", 2);
	uint64_t t1 = queue(f);

	txn_new(f); /* T2: rewrites and deletes T1's keys, then fails */
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0, 0, "t2", 2);
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0, 0, "t2bis", 5);
	txn_add_delete(&f->txn, "b", 1, 0);
	txn_add_delete(&f->txn, "db", 2, 0);
	txn_add_put(&f->txn, "c", 1, RECORD_RAW, 0, 0, "t2", 2);
	txn_add_rename(&f->txn, "c", 1, "d", 1, 0);
	txn_add_check(&f->txn, "a", 1, t1, 0); /* a is now T2's: fails */
	queue(f);

	txn_new(f); /* T3: sees T1's state, not T2's */
	txn_add_check(&f->txn, "a", 1, t1, 0);
	txn_add_check(&f->txn, "c", 1, 0, 0);
	txn_add_put(&f->txn, "e", 1, RECORD_RAW, 0, 0, "t3", 2);
	queue(f);
	flush(f);

	assert_int_equal(f->res[0], 0);
	assert_int_equal(f->res[1], KVFS_EPRECOND);
	assert_int_equal(f->deleted[1], 0);
	assert_int_equal(f->res[2], 0);
	assert_dump(f, "a=t1;b=t1;db=old;e=t3;");
	assert_int_equal(meta_of(f, "a").version, 1);
	assert_int_equal(kv_key_count(f->kv), 4);
}

static void test_batch_txns_see_each_other(void **state)
{
	/* Later transactions of a batch see earlier ones' writes, revisions and deletions. */
	struct fx *f = *state;
	txn_new(f);
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0, 0, "1", 1);
	uint64_t t1 = queue(f);
	txn_new(f);
	txn_add_check(&f->txn, "a", 1, t1, 0);
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0, 0, "2", 1);
	queue(f);
	txn_new(f);
	txn_add_delete(&f->txn, "a", 1, TXN_F_MUST_EXIST);
	queue(f);
	txn_new(f);
	txn_add_check(&f->txn, "a", 1, 0, 0);
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0, 0, "4", 1);
	uint64_t t4 = queue(f);
	flush(f);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->res[i], 0);
	assert_value(f, "a", "4");
	struct record_meta m = meta_of(f, "a");
	assert_int_equal(m.create_rev, t4);
	assert_int_equal(m.version, 1);
	assert_int_equal(kv_key_count(f->kv), 1);
}

static void test_undecodable_entry_skipped(void **state)
{
	/* An undecodable payload gets KVFS_EPROTO and the rest of the batch still applies. */
	struct fx *f = *state;
	txn_new(f);
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0, 0, "1", 1);
	queue(f);
	queue_bytes(f, "\x01garbage", 8);
	txn_new(f);
	txn_add_put(&f->txn, "b", 1, RECORD_RAW, 0, 0, "2", 1);
	queue(f);
	flush(f);
	assert_int_equal(f->res[0], 0);
	assert_int_equal(f->res[1], KVFS_EPROTO);
	assert_int_equal(f->res[2], 0);
	assert_dump(f, "a=1;b=2;");
	assert_int_equal(kv_applied_index(f->kv), f->index);
}

static void test_empty_entries_advance_applied_index(void **state)
{
	/* Entries without a payload (leader no-ops, configuration) only advance the applied index. */
	struct fx *f = *state;
	queue_entry(f, ++f->index, NULL, 0);
	queue_entry(f, ++f->index, NULL, 0);
	flush(f);
	assert_int_equal(f->res[0], 0);
	assert_int_equal(kv_applied_index(f->kv), 2);
	assert_int_equal(kv_key_count(f->kv), 0);
}

static void test_replay_is_idempotent(void **state)
{
	/* Entries at or below the applied index are skipped, so replaying after a restart changes nothing. */
	struct fx *f = *state;
	assert_int_equal(put(f, "a", "1"), 0); /* index 1 */
	assert_int_equal(put(f, "a", "2"), 0); /* index 2 */

	/* Replay 1 and 2 with different payloads, then a new entry 3. */
	f->index = 0;
	txn_new(f);
	txn_add_put(&f->txn, "a", 1, RECORD_RAW, 0, 0, "replayed", 8);
	queue(f);
	txn_new(f);
	txn_add_delete(&f->txn, "a", 1, 0);
	queue(f);
	txn_new(f);
	txn_add_put(&f->txn, "b", 1, RECORD_RAW, 0, 0, "3", 1);
	queue(f);
	flush(f);
	assert_int_equal(f->res[0], 0);
	assert_int_equal(f->res[1], 0);
	assert_int_equal(f->res[2], 0);
	assert_value(f, "a", "2");
	assert_int_equal(meta_of(f, "a").version, 2);
	assert_value(f, "b", "3");
	assert_int_equal(kv_applied_index(f->kv), 3);
	assert_int_equal(kv_key_count(f->kv), 2);
}

static void test_state_persists_across_reopen(void **state)
{
	/* Data, applied index and key count survive close and reopen. */
	struct fx *f = *state;
	put_all(f, (const char *const[]){"a=1", "b=2", "c=3", NULL});
	assert_int_equal(del(f, "b", 0), 0);
	uint64_t applied = kv_applied_index(f->kv);
	fx_reopen(f);
	assert_int_equal(kv_applied_index(f->kv), applied);
	assert_int_equal(kv_key_count(f->kv), 2);
	assert_dump(f, "a=1;c=3;");
	/* and the reopened store keeps counting from there */
	assert_int_equal(put(f, "d", "4"), 0);
	assert_int_equal(kv_key_count(f->kv), 3);
}

static void test_membership_stored(void **state)
{
	/* The membership blob is stored with the batch, kept by later batches without one, and persisted. */
	struct fx *f = *state;
	char *blob;
	size_t len;
	assert_int_equal(kv_get_membership(f->kv, &blob, &len), KVFS_ENOTFOUND);
	queue_entry(f, ++f->index, NULL, 0);
	flush_with(f, "members-v1", 10);
	assert_int_equal(kv_get_membership(f->kv, &blob, &len), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(blob, "members-v1", 10);
	kv_free(blob);

	assert_int_equal(put(f, "a", "1"), 0);
	fx_reopen(f);
	assert_int_equal(kv_get_membership(f->kv, &blob, &len), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(blob, "members-v1", 10);
	kv_free(blob);
}

/* --- prefixes ------------------------------------------------------------ */

/* Keys p/1, p/2 and q/1 in the database, then one batch that creates p/3 and
 * deletes p/1 before the op under test. */
static void prefix_scenario_start(struct fx *f)
{
	put_all(f, (const char *const[]){"p/1=a", "p/2=b", "q/1=c", "p=d", NULL});
	txn_new(f);
	txn_add_put(&f->txn, "p/3", 3, RECORD_RAW, 0, 0, "e", 1);
	queue(f);
	txn_new(f);
	txn_add_delete(&f->txn, "p/1", 3, TXN_F_MUST_EXIST);
	queue(f);
}

static void test_delete_prefix(void **state)
{
	/* DELETE_PREFIX removes every key under the prefix as the batch sees it: keys
	 * created earlier in the batch go, keys deleted earlier are not counted twice. */
	struct fx *f = *state;
	prefix_scenario_start(f);
	txn_new(f);
	txn_add_delete_prefix(&f->txn, "p/", 2, 0);
	queue(f);
	flush(f);
	assert_int_equal(f->res[2], 0);
	assert_int_equal(f->deleted[2], 2); /* p/2 and p/3 */
	assert_dump(f, "p=d;q/1=c;");
	assert_int_equal(kv_key_count(f->kv), 2);
}

static void test_delete_prefix_max_keys(void **state)
{
	/* DELETE_PREFIX over more than max_keys keys fails with KVFS_ETOOMANY and changes
	 * nothing; exactly max_keys is allowed. */
	struct fx *f = *state;
	prefix_scenario_start(f);
	txn_new(f);
	txn_add_delete_prefix(&f->txn, "p/", 2, 1);
	queue(f);
	txn_new(f);
	txn_add_put(&f->txn, "p/4", 3, RECORD_RAW, 0, 0, "x", 1);
	txn_add_delete_prefix(&f->txn, "p/", 2, 2);
	queue(f);
	flush(f);
	assert_int_equal(f->res[2], KVFS_ETOOMANY);
	assert_int_equal(f->res[3], KVFS_ETOOMANY);
	assert_dump(f, "p=d;p/2=b;p/3=e;q/1=c;");
	assert_int_equal(kv_key_count(f->kv), 4);

	txn_new(f);
	txn_add_delete_prefix(&f->txn, "p/", 2, 2);
	assert_int_equal(run(f), 0);
	assert_dump(f, "p=d;q/1=c;");
}

static void test_rename_prefix(void **state)
{
	/* RENAME_PREFIX moves every key under the prefix as the batch sees it, and
	 * replaces keys already at the destination. */
	struct fx *f = *state;
	assert_int_equal(put(f, "r/2", "old"), 0);
	prefix_scenario_start(f);
	txn_new(f);
	txn_add_rename_prefix(&f->txn, "p/", 2, "r/", 2, 0);
	uint64_t idx = queue(f);
	flush(f);
	assert_int_equal(f->res[2], 0);
	assert_dump(f, "p=d;q/1=c;r/2=b;r/3=e;");
	assert_int_equal(kv_key_count(f->kv), 4);
	struct record_meta m = meta_of(f, "r/2");
	assert_int_equal(m.mod_rev, idx);
	assert_int_equal(m.version, 2); /* replaced r/2, which had one write */
}

static void test_rename_prefix_max_keys(void **state)
{
	/* RENAME_PREFIX over more than max_keys keys fails with KVFS_ETOOMANY and changes nothing. */
	struct fx *f = *state;
	prefix_scenario_start(f);
	txn_new(f);
	txn_add_rename_prefix(&f->txn, "p/", 2, "r/", 2, 1);
	queue(f);
	flush(f);
	assert_int_equal(f->res[2], KVFS_ETOOMANY);
	assert_dump(f, "p=d;p/2=b;p/3=e;q/1=c;");
	assert_int_equal(kv_key_count(f->kv), 4);
}

static void test_rename_prefix_keeps_keys_within_the_limit(void **state)
{
	/* A RENAME_PREFIX that would make a key longer than TXN_MAX_KEY fails
	 * with KVFS_EKEYSIZE and moves nothing; up to the limit it moves. */
	struct fx *f = *state;
	static char key[TXN_MAX_KEY + 1], dst[TXN_MAX_KEY + 1];
	memset(key, 'x', sizeof key - 1);
	memcpy(key, "a/", 2);
	size_t klen = 40000;
	key[klen] = '\0';
	txn_new(f);
	txn_add_put(&f->txn, key, klen, RECORD_RAW, 0, 0, "v", 1);
	assert_int_equal(run(f), 0);
	memset(dst, 'd', sizeof dst - 1);
	size_t over = TXN_MAX_KEY - (klen - 2) + 1; /* a prefix that makes it one too long */
	txn_new(f);
	txn_add_rename_prefix(&f->txn, "a/", 2, dst, over, 0);
	assert_int_equal(run(f), KVFS_EKEYSIZE);
	assert_int_equal(kv_key_count(f->kv), 1);
	assert_value(f, key, "v");
	txn_new(f);
	txn_add_rename_prefix(&f->txn, "a/", 2, dst, over - 1, 0);
	assert_int_equal(run(f), 0);
	char moved[TXN_MAX_KEY + 1]; /* the moved key: the new prefix, then the rest */
	memcpy(moved, dst, over - 1);
	memset(moved + over - 1, 'x', klen - 2);
	moved[TXN_MAX_KEY] = '\0';
	assert_value(f, moved, "v");
	assert_int_equal(kv_key_count(f->kv), 1);
}

/* Builds the same history either as one batch or as one batch per entry and
 * returns the final dump: "a/x" and "a/b/x" then RENAME_PREFIX from to. */
static void rename_overlap_history(struct fx *f, bool one_batch, const char *from, const char *to,
				   char *out, size_t cap)
{
	const char *keys[] = {"a/x", "a/b/x", "a/b/b/x"};
	for (size_t i = 0; i < 3; i++) {
		txn_new(f);
		txn_add_put(&f->txn, keys[i], strlen(keys[i]), RECORD_RAW, 0, 0, keys[i],
			    strlen(keys[i]));
		queue(f);
		if (!one_batch)
			flush(f);
	}
	txn_new(f);
	txn_add_rename_prefix(&f->txn, from, strlen(from), to, strlen(to), 0);
	size_t at = f->n;
	queue(f);
	flush(f);
	assert_int_equal(f->res[at], 0);
	dump(f, out, cap);
	txn_new(f); /* clean up for the next history */
	txn_add_delete_prefix(&f->txn, "a/", 2, 0);
	assert_int_equal(run(f), 0);
	assert_int_equal(kv_key_count(f->kv), 0);
}

static void test_rename_prefix_overlapping_and_batch_independent(void **state)
{
	/* RENAME_PREFIX into its own subtree (or out to its parent) moves every key as
	 * one simultaneous move, and the result does not depend on whether the source
	 * keys were written in the same batch or in earlier ones (replicas cut batches
	 * differently). */
	struct fx *f = *state;
	char batched[512], separate[512];

	rename_overlap_history(f, true, "a/", "a/b/", batched, sizeof batched);
	rename_overlap_history(f, false, "a/", "a/b/", separate, sizeof separate);
	assert_string_equal(batched, separate);
	assert_string_equal(batched, "a/b/b/b/x=a/b/b/x;a/b/b/x=a/b/x;a/b/x=a/x;");

	rename_overlap_history(f, true, "a/b/", "a/", batched, sizeof batched);
	rename_overlap_history(f, false, "a/b/", "a/", separate, sizeof separate);
	assert_string_equal(batched, separate);
	assert_string_equal(batched, "a/b/x=a/b/b/x;a/x=a/b/x;");
}

static void test_rename_prefix_onto_itself(void **state)
{
	/* RENAME_PREFIX with the same source and destination changes nothing. */
	struct fx *f = *state;
	put_all(f, (const char *const[]){"p/1=a", "p/2=b", NULL});
	txn_new(f);
	txn_add_rename_prefix(&f->txn, "p/", 2, "p/", 2, 0);
	assert_int_equal(run(f), 0);
	assert_dump(f, "p/1=a;p/2=b;");
	assert_int_equal(meta_of(f, "p/1").version, 1);
	assert_int_equal(kv_key_count(f->kv), 2);
}

/* --- rename and touch ---------------------------------------------------- */

static int rename1(struct fx *f, const char *src, const char *dst, uint8_t flags)
{
	txn_new(f);
	txn_add_rename(&f->txn, src, strlen(src), dst, strlen(dst), flags);
	return run(f);
}

static void test_rename(void **state)
{
	/* RENAME moves the record (kind, mode, value) to a new key and removes the source. */
	struct fx *f = *state;
	txn_new(f);
	txn_add_put(&f->txn, "a", 1, RECORD_JSON, 0600, 0, "[1]", 3);
	assert_int_equal(run(f), 0);
	assert_int_equal(rename1(f, "a", "b", TXN_F_MUST_EXIST), 0);
	assert_absent(f, "a");
	assert_value(f, "b", "[1]");
	struct record_meta m = meta_of(f, "b");
	assert_int_equal(m.kind, RECORD_JSON);
	assert_int_equal(m.mode, 0600);
	assert_int_equal(m.mod_rev, f->index);
	assert_int_equal(kv_key_count(f->kv), 1);
}

static void test_rename_replaces(void **state)
{
	/* RENAME onto an existing key replaces it (one key fewer); with NO_REPLACE it
	 * fails with KVFS_EEXIST and changes nothing. */
	struct fx *f = *state;
	put_all(f, (const char *const[]){"a=1", "b=2", "c=3", NULL});
	assert_int_equal(rename1(f, "a", "b", 0), 0);
	assert_dump(f, "b=1;c=3;");
	assert_int_equal(kv_key_count(f->kv), 2);
	assert_int_equal(rename1(f, "b", "c", TXN_F_NO_REPLACE), KVFS_EEXIST);
	assert_dump(f, "b=1;c=3;");
	assert_int_equal(kv_key_count(f->kv), 2);
}

static void test_rename_missing_source(void **state)
{
	/* RENAME of a missing key fails with KVFS_ENOTFOUND under MUST_EXIST and is a
	 * no-op without it (txn.h: the flag decides). */
	struct fx *f = *state;
	assert_int_equal(put(f, "b", "2"), 0);
	assert_int_equal(rename1(f, "a", "b", TXN_F_MUST_EXIST), KVFS_ENOTFOUND);
	assert_int_equal(rename1(f, "a", "b", 0), 0);
	assert_dump(f, "b=2;");
	assert_int_equal(kv_key_count(f->kv), 1);
}

static void test_rename_onto_itself(void **state)
{
	/* RENAME of a key onto itself leaves it as it was. */
	struct fx *f = *state;
	assert_int_equal(put(f, "a", "1"), 0);
	assert_int_equal(rename1(f, "a", "a", 0), 0);
	assert_dump(f, "a=1;");
	assert_int_equal(meta_of(f, "a").version, 1);
}

static int touch(struct fx *f, const char *key, uint8_t flags, uint32_t mode, int64_t mtime)
{
	txn_new(f);
	txn_add_touch(&f->txn, key, strlen(key), flags, mode, mtime);
	return run(f);
}

static void test_touch(void **state)
{
	/* TOUCH applies only the mode and/or mtime its flags name and keeps the value. */
	struct fx *f = *state;
	assert_int_equal(put(f, "a", "1"), 0);
	assert_int_equal(touch(f, "a", TXN_F_SET_MODE, 0700, 5), 0);
	struct record_meta m = meta_of(f, "a");
	assert_int_equal(m.mode, 0700);
	assert_true(m.mtime_ns == MTIME);
	assert_int_equal(m.mod_rev, f->index);
	assert_int_equal(touch(f, "a", TXN_F_SET_MTIME, 0111, 5), 0);
	m = meta_of(f, "a");
	assert_int_equal(m.mode, 0700);
	assert_true(m.mtime_ns == 5);
	assert_value(f, "a", "1");
	assert_int_equal(m.create_rev, 1);
}

static void test_touch_missing(void **state)
{
	/* TOUCH of a missing key is a no-op, or KVFS_ENOTFOUND with MUST_EXIST; it never creates the key. */
	struct fx *f = *state;
	assert_int_equal(touch(f, "a", TXN_F_SET_MODE, 0700, 0), 0);
	assert_absent(f, "a");
	assert_int_equal(touch(f, "a", TXN_F_SET_MODE | TXN_F_MUST_EXIST, 0700, 0), KVFS_ENOTFOUND);
	assert_int_equal(kv_key_count(f->kv), 0);
}

/* --- iteration and scale ------------------------------------------------- */

static bool may_have(struct fx *f, const void *key, size_t klen)
{
	return kv_bloom_may_have(f->kv, kv_bloom_hash(key, klen));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void test_filter_hash_tells_keys_apart(void **state)
{
	(void)state;
	/* Keys that differ only by trailing zero bytes, or in one byte of a
	 * word or of the tail, get different hashes: every key of 0-2 bytes,
	 * runs of zeros and of "a" up to 24 bytes, and "key/<i>" keys. */
	enum { KEYS = 65536 + 256 + 1 + 2 * 25 + 20000 };
	uint64_t *h = malloc(KEYS * sizeof *h);
	assert_non_null(h);
	size_t n = 0;
	uint8_t k[32] = {0};
	h[n++] = kv_bloom_hash(k, 0);
	for (int a = 0; a < 256; a++) {
		k[0] = (uint8_t)a;
		h[n++] = kv_bloom_hash(k, 1);
		for (int b = 0; b < 256; b++) {
			k[1] = (uint8_t)b;
			h[n++] = kv_bloom_hash(k, 2);
		}
	}
	memset(k, 0, sizeof k);
	for (size_t len = 3; len <= 24; len++)
		h[n++] = kv_bloom_hash(k, len);
	memset(k, 'a', sizeof k);
	for (size_t len = 3; len <= 24; len++)
		h[n++] = kv_bloom_hash(k, len);
	/* A filter's blocks are picked by the hash's low bits: 20000 keys over
	 * 256 blocks put 78 in each on average; 40-120 is 4 standard
	 * deviations. */
	unsigned blocks[256] = {0};
	for (int i = 0; i < 20000; i++) {
		char key[32];
		int kl = snprintf(key, sizeof key, "key/%d", i);
		h[n] = kv_bloom_hash(key, (size_t)kl);
		blocks[h[n++] & 255]++;
	}
	for (int b = 0; b < 256; b++) {
		assert_in_range(blocks[b], 40, 120);
	}
	qsort(h, n, sizeof *h, cmp_u64);
	for (size_t i = 1; i < n; i++)
		assert_true(h[i] != h[i - 1]);
	free(h);
}

/* Waits until the key filter is in use (the builder runs in the background). */
static void filter_in_use(struct fx *f)
{
	for (int i = 0; i < 3 && !kv_bloom_wait(f->kv); i++)
		;
	assert_true(kv_bloom_ready(f->kv));
}

/* Puts n keys "k<i>" (i in [0, n)) with value v, in batches of 100 entries. */
static void put_many(struct fx *f, int n, const char *v)
{
	char key[32];
	for (int i = 0; i < n; i++) {
		txn_new(f);
		int kl = snprintf(key, sizeof key, "k%d", i);
		txn_add_put(&f->txn, key, (size_t)kl, RECORD_RAW, 0644, 0, v, strlen(v));
		queue(f);
		if (i % 100 == 99 || i == n - 1)
			flush(f);
	}
}

/* Asserts that the key filter lets through every key "k<i>", i in [0, n)
 * by step: it never rules out a key that exists. */
static void assert_filter_has(struct fx *f, int n, int step)
{
	char key[32];
	for (int i = 0; i < n; i += step) {
		int kl = snprintf(key, sizeof key, "k%d", i);
		assert_true(may_have(f, key, (size_t)kl));
	}
}

static void assert_versions(struct fx *f, int n, uint64_t version)
{
	char key[32];
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "k%d", i);
		if (meta_of(f, key).version != version)
			fail_msg("%s has version %llu, wanted %llu", key,
				 (unsigned long long)meta_of(f, key).version,
				 (unsigned long long)version);
	}
}

static void test_filter_knows_keys_written_before_open(void **state)
{
	/* With the key filter in use after a reopen, overwriting keys written
	 * before keeps their create revision and counts their version on, and
	 * the key count stays exact. */
	struct fx *f = *state;
	put_many(f, 150, "1");
	uint64_t created = meta_of(f, "k7").create_rev;
	fx_reopen_scan(f);
	filter_in_use(f);
	put_many(f, 150, "2");
	assert_versions(f, 150, 2);
	assert_int_equal(meta_of(f, "k7").create_rev, created);
	assert_int_equal(kv_key_count(f->kv), 150);
	assert_int_equal(put(f, "new", "x"), 0);
	assert_int_equal(kv_key_count(f->kv), 151);
	/* a key the filter learnt from the apply path, not from a build */
	assert_int_equal(put(f, "new", "y"), 0);
	assert_int_equal(meta_of(f, "new").version, 2);
	assert_int_equal(kv_key_count(f->kv), 151);
}

/* Absent keys "absent/<i>" of 10000 that pass the filter. */
static int false_positives(struct fx *f)
{
	char key[32];
	int maybe = 0;
	for (int i = 0; i < 10000; i++) {
		int kl = snprintf(key, sizeof key, "absent/%d", i);
		maybe += may_have(f, key, (size_t)kl);
	}
	return maybe;
}

static void test_filter_lookahead_hashes_match_their_ops(void **state)
{
	/* apply_entry hashes each op's key AHEAD (8) ops before applying it:
	 * a lookup must get its own key's hash, or a key that exists would be
	 * ruled out by the filter and written as new (version 1, counted
	 * twice). One transaction of new and existing keys interleaved, twice
	 * as long as the look-ahead and more. */
	struct fx *f = *state;
	put_many(f, 10, "1");
	filter_in_use(f);
	txn_new(f);
	for (int i = 0; i < 10; i++) {
		char key[32];
		int kl = snprintf(key, sizeof key, "new%d", i);
		txn_add_put(&f->txn, key, (size_t)kl, RECORD_RAW, 0644, 0, "n", 1);
		kl = snprintf(key, sizeof key, "k%d", i);
		txn_add_put(&f->txn, key, (size_t)kl, RECORD_RAW, 0644, 0, "2", 1);
	}
	queue(f);
	flush(f);
	for (int i = 0; i < 10; i++) {
		char key[32];
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(meta_of(f, key).version, 2);
	}
	assert_int_equal(kv_key_count(f->kv), 20);
}

static void test_filter_grows_when_outgrown(void **state)
{
	/* Past the keys it was sized for, the filter grows a layer instead of
	 * being rebuilt from a scan: keys of every layer stay known, and absent
	 * keys are still ruled out. */
	struct fx *f = *state;
	filter_in_use(f);
	assert_int_equal(kv_bloom_layers(f->kv), 1);
	assert_int_equal(kv_key_filter_bytes(f->kv), 256); /* 64 keys x 20 bits, rounded up */
	put_many(f, 1500, "1"); /* a 64-key minimum: 102 keys a layer at first */
	assert_true(kv_bloom_ready(f->kv));
	int layers = kv_bloom_layers(f->kv);
	if (layers < 4)
		fail_msg("1500 keys into a 102-key filter: %d layer(s)", layers);
	/* 256, 512, 1024, ... bytes: each layer twice the one before */
	assert_int_equal(kv_key_filter_bytes(f->kv), 256u * ((1u << layers) - 1));
	assert_filter_has(f, 1500, 1);
	/* about 0.1% per full layer (6 of these 10000 through 4 layers) */
	int maybe = false_positives(f);
	if (maybe > 15 * layers)
		fail_msg("%d layers let %d of 10000 absent keys through", layers, maybe);
	put_many(f, 1500, "2"); /* overwrites: nothing new, no new layer */
	assert_int_equal(kv_bloom_layers(f->kv), layers);
	assert_versions(f, 1500, 2);
	assert_int_equal(kv_key_count(f->kv), 1500);
}

static void test_filter_stops_growing_at_its_bound(void **state)
{
	/* --key-filter-max: with 1 KiB for the filter, the 256-byte first layer
	 * grows one 512-byte layer and no more (a third would not fit); new
	 * keys then crowd the newest layer, but none is ever ruled out, so
	 * overwrites keep counting versions and the key count stays exact. A
	 * saved filter larger than a lower bound at the next open is built
	 * again within it. */
	struct fx *f = *state;
	f->filter_max_set = true;
	f->filter_max = 1024;
	fx_reopen_scan(f);
	filter_in_use(f);
	assert_int_equal(kv_bloom_layers(f->kv), 1);
	put_many(f, 1500, "1");
	assert_int_equal(kv_bloom_layers(f->kv), 2);
	assert_filter_has(f, 1500, 1);
	put_many(f, 1500, "2");
	assert_versions(f, 1500, 2);
	assert_int_equal(kv_key_count(f->kv), 1500);
	assert_int_equal(kv_bloom_layers(f->kv), 2);
	assert_int_equal(kv_key_filter_bytes(f->kv), 768);

	f->filter_max = 256; /* the saved filter (768 bytes) no longer fits */
	fx_reopen(f);
	filter_in_use(f);
	assert_int_equal(kv_bloom_layers(f->kv), 1);
	assert_int_equal(kv_key_filter_bytes(f->kv), 256); /* the saved one was let go */
	assert_filter_has(f, 1500, 1);
	put_many(f, 1500, "3");
	assert_versions(f, 1500, 3);
	assert_int_equal(kv_key_count(f->kv), 1500);
}

static void test_filter_rebuilt_after_churn(void **state)
{
	/* Deleted keys stay in the filter: once its layers could hold 4 times
	 * the live keys, it is rebuilt from a scan of the live ones, one layer
	 * again, and still knows every live key. */
	struct fx *f = *state;
	filter_in_use(f);
	put_many(f, 1500, "1");
	assert_true(kv_bloom_layers(f->kv) > 1);
	char key[32];
	for (int i = 0; i < 1500; i += 10) {
		txn_new(f);
		for (int j = i; j < i + 10; j++)
			if (j % 100) { /* keep k0, k100, ... */
				int kl = snprintf(key, sizeof key, "k%d", j);
				txn_add_delete(&f->txn, key, (size_t)kl, 0);
			}
		queue(f);
		flush(f);
	}
	assert_int_equal(kv_key_count(f->kv), 15);
	assert_int_equal(put(f, "after", "x"), 0); /* the batch that starts the build */
	filter_in_use(f);
	assert_int_equal(kv_bloom_layers(f->kv), 1);
	/* A filter rebuilt while the deletes ran may be in use, sized for more
	 * keys than are left, with another build under way (counted too):
	 * once that one is in use, the filter of 16 keys (the 64-key minimum)
	 * is all the memory held. */
	assert_true(kv_bloom_wait(f->kv));
	assert_true(kv_bloom_wait(f->kv));
	assert_int_equal(kv_key_filter_bytes(f->kv), 256);
	assert_filter_has(f, 1500, 100);
	assert_true(may_have(f, "after", 5));
	assert_int_equal(put(f, "k100", "2"), 0);
	assert_int_equal(meta_of(f, "k100").version, 2);
	assert_int_equal(put(f, "k101", "2"), 0);
	assert_int_equal(meta_of(f, "k101").version, 1);
}

static void test_filter_says_no_to_absent_keys(void **state)
{
	/* The filter knows every key written, and rules out nearly every key
	 * that was not: a filter that lets absent keys through saves no
	 * lookups. Built at open for 1000 keys: 1638 at 20 bits a key (32768
	 * bits). (Without the reopen, the layers in use depend on batch
	 * boundaries.) */
	struct fx *f = *state;
	put_many(f, 1000, "1");
	fx_reopen_scan(f);
	filter_in_use(f);
	assert_int_equal(kv_bloom_layers(f->kv), 1);
	assert_filter_has(f, 1000, 1);
	int maybe = false_positives(f);
	if (maybe > 10)
		fail_msg("%d of 10000 absent keys passed the filter", maybe);
	/* Filled to what it was sized for (1637 keys; the 1638th grows a
	 * layer), it still rules out all but about 0.1% (8 of these 10000:
	 * keys and hashes are fixed, so the count is too); 3 probes instead of
	 * 7 let 33 through, bits placed from overlapping slices of the hash 19. */
	put_many(f, 1637, "2");
	assert_int_equal(kv_bloom_layers(f->kv), 1);
	maybe = false_positives(f);
	if (maybe > 15)
		fail_msg("full: %d of 10000 absent keys passed the filter", maybe);
}

static void test_filter_kept_across_clean_restart(void **state)
{
	/* Saved at close and loaded at open: in use at once, with its layers,
	 * no scan; the file is gone once loaded. */
	struct fx *f = *state;
	char path[4096];
	path_join(path, sizeof path, f->dir, "kv/kvfs.filter");
	filter_in_use(f);
	put_many(f, 1500, "1");
	int layers = kv_bloom_layers(f->kv);
	assert_true(layers > 1);
	fx_reopen(f);
	assert_int_equal(kv_bloom_layers(f->kv), layers); /* no build: loaded in kv_open */
	assert_int_equal(kv_key_filter_bytes(f->kv), 256u * ((1u << layers) - 1));
	assert_int_equal(access(path, F_OK), -1);
	assert_filter_has(f, 1500, 1);
	if (false_positives(f) > 15 * layers)
		fail_msg("the loaded filter lets %d of 10000 absent keys through", false_positives(f));
	put_many(f, 1500, "2");
	assert_versions(f, 1500, 2);
	assert_int_equal(kv_key_count(f->kv), 1500);
}


/* Rewrites the CRC-32C at the end of a saved key filter (open "r+b") to
 * match the bytes before it. */
static void rewrite_crc(FILE *fp)
{
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	long len = ftell(fp);
	assert_true(len > 4);
	uint8_t *buf = malloc((size_t)len);
	assert_non_null(buf);
	assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
	assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
	put_le32(buf + len - 4, crc32c(0, buf, (size_t)len - 4));
	assert_int_equal(fseek(fp, len - 4, SEEK_SET), 0);
	assert_int_equal(fwrite(buf + len - 4, 1, 4, fp), 4);
	free(buf);
}
static void test_filter_saved_at_another_state_is_not_used(void **state)
{
	/* A filter file that does not match the database (older state, damaged)
	 * is ignored and removed, and the filter is built from a scan. */
	struct fx *f = *state;
	char path[4096], old[4096];
	path_join(path, sizeof path, f->dir, "kv/kvfs.filter");
	path_join(old, sizeof old, f->dir, "old.filter");
	put_many(f, 100, "1");
	fx_reopen(f);
	filter_in_use(f);
	kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(rename(path, old), 0); /* saved at 100 keys */
	fx_open(f);
	filter_in_use(f);
	put_many(f, 300, "2"); /* k100..k299 are new */
	kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(rename(old, path), 0); /* the stale one back */
	fx_open(f);
	assert_int_equal(access(path, F_OK), -1);
	filter_in_use(f);
	assert_int_equal(kv_bloom_layers(f->kv), 1); /* built, not loaded */
	assert_true(may_have(f, "k250", 4));
	assert_int_equal(put(f, "k250", "3"), 0);
	assert_int_equal(meta_of(f, "k250").version, 2);

	/* damaged: one bit flipped in the bits; another format: the probe
	 * count or the hash's version in the header changed (a filter of
	 * another hash would rule out keys that exist); a layer claiming more
	 * bits than the file holds (2^38, rejected before anything is
	 * allocated) */
	static const struct {
		long off;
		uint8_t byte[8];
		int n;
	} hurt[] = {{60, {0}, -1},
		    {26, {0}, -1},
		    {29, {0}, -1},
		    {32, {0, 0, 0, 0, 0x40, 0, 0, 0}, 8}};
	int keys = 300;
	for (size_t i = 0; i < sizeof hurt / sizeof hurt[0]; i++) {
		while (kv_bloom_layers(f->kv) < 2) { /* so that a build shows */
			keys += 1000;
			put_many(f, keys, "4");
		}
		char last[32];
		int ll = snprintf(last, sizeof last, "k%d", keys - 1);
		kv_close(f->kv);
		f->kv = NULL;
		FILE *fp = fopen(path, "r+b");
		assert_non_null(fp);
		assert_int_equal(fseek(fp, hurt[i].off, SEEK_SET), 0);
		if (hurt[i].n < 0) { /* flip the lowest bit */
			int c = fgetc(fp);
			assert_int_equal(fseek(fp, hurt[i].off, SEEK_SET), 0);
			fputc(c ^ 1, fp);
		} else {
			assert_int_equal(fwrite(hurt[i].byte, 1, (size_t)hurt[i].n, fp),
					 (size_t)hurt[i].n);
		}
		if (hurt[i].off < 32) /* the header: its CRC made right, so that
				       * only the header's check can refuse it */
			rewrite_crc(fp);
		assert_int_equal(fclose(fp), 0);
		fx_open(f);
		assert_int_equal(access(path, F_OK), -1);
		filter_in_use(f);
		assert_int_equal(kv_bloom_layers(f->kv), 1); /* built, not loaded */
		assert_true(may_have(f, last, (size_t)ll));
		assert_int_equal(kv_key_count(f->kv), keys);
	}
}

/* Streams the snapshot of src into w, up to limit bytes (0: all); returns
 * 0 or the first failing code (no cmocka asserts: callable from any
 * thread). */
static int stream_snapshot(struct kv_snap_writer *w, struct kv *src, uint64_t limit)
{
	struct kv_snap_reader *r = kv_snap_reader_create(src);
	char buf[4096];
	uint64_t off = 0;
	bool done = false;
	int rc = r ? 0 : -ENOMEM;
	while (rc == 0 && !done && (!limit || off < limit)) {
		long n = kv_snap_read(r, off, buf, sizeof buf, &done);
		if (n < 0)
			rc = (int)n;
		else if ((rc = kv_snap_write(w, off, buf, (size_t)n)) == 0)
			off += (uint64_t)n;
	}
	kv_snap_reader_destroy(r);
	return rc;
}

/* Installs the snapshot of src in dst; returns 0 or the failing code. */
static int install_rc(struct kv *dst, struct kv *src)
{
	struct kv_snap_writer *w;
	int rc = kv_snap_writer_create(dst, &w);
	if (rc)
		return rc;
	if ((rc = stream_snapshot(w, src, 0)) == 0)
		rc = kv_snap_commit(w);
	kv_snap_writer_destroy(w);
	return rc;
}

/* Installs the snapshot of src's database in f. */
static void install_from(struct fx *f, struct fx *src)
{
	assert_int_equal(install_rc(f->kv, src->kv), 0);
	f->index = kv_applied_index(f->kv);
}

/* Closes and removes a second store a test opened. */
static void fx_free(struct fx *f)
{
	kv_close(f->kv);
	clear_queue(f);
	free(f->ents);
	free(f->res);
	free(f->deleted);
	bb_free(&f->txn);
	tmpdir_destroy(f->dir);
}

static void test_filter_follows_snapshot_install(void **state)
{
	/* After installing another node's snapshot, the filter knows the keys of
	 * the new state, not those of the old one. */
	struct fx *f = *state;
	put_many(f, 120, "old");
	filter_in_use(f);
	struct fx src = {0};
	assert_non_null(src.dir = tmpdir_create("kvsrc"));
	fx_open(&src);
	src.index = f->index;
	put_all(&src, (const char *const[]){"k3=a", "other=b", NULL});
	assert_int_equal(put(&src, "k3", "again"), 0); /* version 2 there */
	/* A snapshot is what the database holds: the applied state once flushed. */
	assert_int_equal(kv_sync(src.kv, kv_applied_index(src.kv)), 0);

	install_from(f, &src);

	filter_in_use(f);
	assert_int_equal(put(f, "k3", "mine"), 0);
	assert_int_equal(meta_of(f, "k3").version, 3);
	assert_int_equal(put(f, "other", "mine"), 0); /* only in the installed state */
	assert_int_equal(meta_of(f, "other").version, 2);
	assert_int_equal(put(f, "k4", "new"), 0); /* existed only before the install */
	assert_int_equal(meta_of(f, "k4").version, 1);
	assert_int_equal(kv_key_count(f->kv), 3);
	fx_free(&src);
}

/* --- the metadata cache (kv_meta.c) -------------------------------------- */

static uint64_t meta_hits(struct fx *f)
{
	uint64_t hits, misses;
	kv_meta_stats(f->kv, &hits, &misses);
	return hits;
}

static void test_overwrites_take_revisions_from_the_meta_cache(void **state)
{
	/* A key overwritten once is known to the cache: later writes, checks and
	 * its delete read no record, and give what a read would have. */
	struct fx *f = *state;
	txn_new(f);
	txn_add_put(&f->txn, "k", 1, RECORD_RAW, 0600, 0, "v1", 2);
	uint64_t created = queue(f);
	flush(f);
	assert_int_equal(kv_sync(f->kv, f->index), 0); /* in LevelDB, out of the pending maps */
	assert_int_equal(put(f, "k", "v2"), 0);          /* read, then cached */
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	uint64_t hits = meta_hits(f);
	txn_new(f);
	txn_add_put(&f->txn, "k", 1, RECORD_RAW, 0, TXN_F_KEEP_MODE, "v3", 2);
	assert_int_equal(run(f), 0);
	assert_int_equal(meta_hits(f), hits + 1);
	struct record_meta m = meta_of(f, "k");
	assert_int_equal(m.create_rev, created);
	assert_int_equal(m.mod_rev, f->index);
	assert_int_equal(m.version, 3);
	assert_int_equal(m.mode, 0644); /* v2's, kept from the cached metadata */
	assert_value(f, "k", "v3");
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	assert_int_equal(check_then_put(f, "k", f->index, 0), 0); /* exact revision: passes */
	assert_int_equal(check_then_put(f, "k", f->index - 1, 0), KVFS_EPRECOND);
	assert_true(meta_hits(f) >= hits + 3);
	assert_int_equal(del(f, "k", TXN_F_MUST_EXIST), 0);
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	/* deleted: dropped from the cache, so a new write starts over */
	assert_int_equal(del(f, "k", TXN_F_MUST_EXIST), KVFS_ENOTFOUND);
	assert_int_equal(put(f, "k", "again"), 0);
	m = meta_of(f, "k");
	assert_int_equal(m.version, 1);
	assert_int_equal(m.create_rev, f->index);
	assert_int_equal(kv_key_count(f->kv), 1);
}

/* Every key with its full metadata, "key:create,mod,version,kind,mode=value;". */
static void dump_meta(struct fx *f, struct byte_buf *out)
{
	struct kv_iter *it = kv_iter_create(f->kv);
	assert_non_null(it);
	out->len = 0;
	for (kv_iter_seek(it, "", 0); kv_iter_valid(it); kv_iter_next(it)) {
		size_t klen, rlen, vlen;
		const uint8_t *k = kv_iter_key(it, &klen), *r = kv_iter_record(it, &rlen), *v;
		struct record_meta m;
		char head[160];
		assert_int_equal(record_decode(r, rlen, &m, &v, &vlen), 0);
		int w = snprintf(head, sizeof head, ":%llu,%llu,%llu,%u,%o=",
				 (unsigned long long)m.create_rev, (unsigned long long)m.mod_rev,
				 (unsigned long long)m.version, m.kind, m.mode);
		assert_true(w > 0 && (size_t)w < sizeof head);
		bb_put(out, k, klen);
		bb_put(out, head, (size_t)w);
		bb_put(out, v, vlen);
		bb_put(out, ";", 1);
	}
	assert_int_equal(out->err, 0);
	assert_int_equal(kv_iter_status(it), 0);
	kv_iter_destroy(it);
}

/* A random key of the test's small key space: short ones, and ones longer
 * than the cache takes. */
static int random_key(unsigned *seed, char *out)
{
	int i = rand_r(seed) % 24;
	if (i < 16)
		return sprintf(out, "d/k%d", i);
	return sprintf(out, "d/a-key-longer-than-the-cache-holds-%d", i);
}

/* Adds one random op to the transactions of both stores. */
static void random_op(struct fx *a, struct fx *b, unsigned *seed)
{
	char k[64], k2[64], v[32];
	int kl = random_key(seed, k), k2l = random_key(seed, k2);
	int vl = sprintf(v, "v%d", rand_r(seed) % 1000);
	uint64_t back = (uint64_t)(rand_r(seed) % 8);
	uint64_t rev = a->index > back ? a->index - back : 0;
	uint8_t flags = rand_r(seed) % 2 ? TXN_F_MUST_EXIST : 0;
	int kind = rand_r(seed) % 10;
	/* prefixes that make short keys long (past the cache's limit) and back */
	static const char *const pfx[] = {"d/k1", "d/k", "d/a-key-longer-than-the-cache-holds-",
					  "d/k2"};
	int p1 = rand_r(seed) % 4, p2 = rand_r(seed) % 4;
	struct byte_buf *ts[2] = {&a->txn, &b->txn};
	for (int s = 0; s < 2; s++) {
		struct byte_buf *t = ts[s];
		switch (kind) {
		case 0:
		case 1:
		case 2:
			txn_add_put(t, k, (size_t)kl, RECORD_RAW, 0640, 0, v, (size_t)vl);
			break;
		case 3:
			txn_add_put(t, k, (size_t)kl, RECORD_JSON, 0600, TXN_F_KEEP_MODE, "1", 1);
			break;
		case 4:
			txn_add_delete(t, k, (size_t)kl, flags);
			break;
		case 5:
			txn_add_check(t, k, (size_t)kl, rev, flags);
			break;
		case 6:
			txn_add_rename(t, k, (size_t)kl, k2, (size_t)k2l, 0);
			break;
		case 7:
			txn_add_delete_prefix(t, pfx[p1], strlen(pfx[p1]), 0);
			break;
		case 8:
			txn_add_rename_prefix(t, pfx[p1], strlen(pfx[p1]), pfx[p2], strlen(pfx[p2]),
					      0);
			break;
		default:
			txn_add_touch(t, k, (size_t)kl, TXN_F_SET_MODE, 0444, 0);
		}
	}
}

static void test_meta_cache_changes_no_result(void **state)
{
	/* Random transactions (puts, keep-mode puts, deletes, checks, renames,
	 * touches, deletes and renames of prefixes, over keys that fit the cache
	 * and keys that do not) applied in
	 * random batches with random flushes to a store whose cache is tiny
	 * (two sets: constant evictions) and to one without a cache: every
	 * result and every record, revisions included, are the same. */
	struct fx *a = *state, b = {0};
	struct byte_buf da, db;
	kv_close(a->kv);
	a->meta_set = true;
	a->meta_bytes = 2 * 4 * 64;
	fx_open(a);
	assert_non_null(b.dir = tmpdir_create("kvnometa"));
	bb_init(&b.txn);
	b.meta_set = true;
	b.meta_bytes = 0;
	fx_open(&b);
	bb_init(&da);
	bb_init(&db);
	unsigned seed = 20261127;
	for (int round = 0; round < 300; round++) {
		int n = 1 + rand_r(&seed) % 6;
		for (int i = 0; i < n; i++) {
			txn_new(a);
			txn_new(&b);
			for (int ops = 1 + rand_r(&seed) % 3; ops > 0; ops--)
				random_op(a, &b, &seed);
			queue(a);
			queue(&b);
		}
		flush(a);
		flush(&b);
		for (int i = 0; i < n; i++)
			assert_int_equal(a->res[i], b.res[i]);
		if (rand_r(&seed) % 3 == 0) {
			assert_int_equal(kv_sync(a->kv, a->index), 0);
			assert_int_equal(kv_sync(b.kv, b.index), 0);
		}
		dump_meta(a, &da);
		dump_meta(&b, &db);
		assert_int_equal(da.len, db.len);
		assert_memory_equal(da.data, db.data, da.len);
	}
	assert_true(meta_hits(a) > 0);
	uint64_t hits, misses;
	kv_meta_stats(b.kv, &hits, &misses);
	assert_int_equal(hits + misses, 0);
	bb_free(&da);
	bb_free(&db);
	fx_free(&b);
}

static void test_meta_cache_forgets_an_installed_over_state(void **state)
{
	/* A snapshot install replaces every key: what the cache knew of the
	 * old state must not number the next writes. */
	struct fx *f = *state, src = {0};
	for (int i = 0; i < 4; i++) { /* version 4 here, cached from the 2nd */
		assert_int_equal(put(f, "k", "old"), 0);
		assert_int_equal(kv_sync(f->kv, f->index), 0);
	}
	assert_true(meta_hits(f) > 0);
	assert_non_null(src.dir = tmpdir_create("kvsrc"));
	bb_init(&src.txn);
	fx_open(&src);
	src.index = f->index + 10;
	assert_int_equal(put(&src, "k", "a"), 0);
	assert_int_equal(put(&src, "k", "b"), 0); /* version 2 there */
	uint64_t created = src.index - 1;
	assert_int_equal(kv_sync(src.kv, kv_applied_index(src.kv)), 0);
	install_from(f, &src);
	assert_int_equal(put(f, "k", "mine"), 0);
	struct record_meta m = meta_of(f, "k");
	assert_int_equal(m.version, 3);
	assert_int_equal(m.create_rev, created);
	fx_free(&src);
}

static void test_meta_cache_install_drops_absent_keys(void **state)
{
	/* A key the cache knew and the installed state does not have is gone:
	 * no phantom revisions let a check or a delete pass. */
	struct fx *f = *state, src = {0};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(put(f, "gone", "old"), 0);
		assert_int_equal(kv_sync(f->kv, f->index), 0);
	}
	assert_non_null(src.dir = tmpdir_create("kvsrc"));
	bb_init(&src.txn);
	fx_open(&src);
	src.index = f->index + 10;
	assert_int_equal(put(&src, "other", "a"), 0);
	assert_int_equal(kv_sync(src.kv, kv_applied_index(src.kv)), 0);
	install_from(f, &src);
	assert_int_equal(check_then_put(f, "gone", 0, TXN_F_MUST_EXIST), KVFS_EPRECOND);
	assert_int_equal(del(f, "gone", TXN_F_MUST_EXIST), KVFS_ENOTFOUND);
	fx_free(&src);
}

/* --- the dead generation's cleanup ---------------------------------------- */

/* Keys LevelDB holds under generation prefix p. */
static size_t count_gen(struct fx *f, char p)
{
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	leveldb_iterator_t *it = leveldb_create_iterator(f->kv->db, ro);
	size_t n = 0;
	for (leveldb_iter_seek(it, &p, 1); leveldb_iter_valid(it); leveldb_iter_next(it)) {
		size_t kl;
		const char *k = leveldb_iter_key(it, &kl);
		if (kl < 1 || k[0] != p)
			break;
		n++;
	}
	leveldb_iter_destroy(it);
	leveldb_readoptions_destroy(ro);
	return n;
}

/* A second store holding keys s0..s(n-1) = v, flushed, its index past f's. */
static void source_store(struct fx *src, struct fx *f, int n, const char *v)
{
	char key[32];
	assert_non_null(src->dir = tmpdir_create("kvsrc"));
	bb_init(&src->txn);
	fx_open(src);
	src->index = f->index + 10;
	for (int i = 0; i < n; i++) {
		txn_new(src);
		int kl = snprintf(key, sizeof key, "s%d", i);
		txn_add_put(&src->txn, key, (size_t)kl, RECORD_RAW, 0644, 0, v, strlen(v));
		queue(src);
		if (i % 500 == 499 || i == n - 1)
			flush(src);
	}
	assert_int_equal(kv_sync(src->kv, kv_applied_index(src->kv)), 0);
}

static void assert_source_state(struct fx *f, int n, const char *v)
{
	char key[32];
	assert_int_equal(kv_key_count(f->kv), n);
	for (int i = 0; i < n; i += 97) {
		snprintf(key, sizeof key, "s%d", i);
		assert_value(f, key, v);
	}
	assert_absent(f, "k0");
	size_t live = count_gen(f, KV_GEN_PREFIX(f->kv->gen));
	assert_int_equal(live, (size_t)n);
}

static void test_replaced_state_is_deleted_in_the_background(void **state)
{
	/* After an install, the store's own thread deletes the replaced
	 * generation: nobody calls anything, and the live state is untouched. */
	struct fx *f = *state, src = {0};
	put_many(f, 25000, "old");
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	source_store(&src, f, 300, "new");
	install_from(f, &src);
	assert_int_equal(kv_cleanup_wait(f->kv), 0);
	assert_int_equal(count_gen(f, KV_GEN_PREFIX(!f->kv->gen)), 0);
	assert_source_state(f, 300, "new");
	fx_free(&src);
}

/* test_cleanup_step_holds_off_an_install: the cleanup thread stops in its
 * first step, with its deletes collected and not written. */
struct install_race {
	pthread_t main;
	bool hooked;
	sem_t in_step, go, done;
	struct kv *dst, *src;
	int rc;
};
static struct install_race *the_install_race;

static void race_hook(struct kv *kv)
{
	(void)kv;
	if (pthread_equal(pthread_self(), the_install_race->main) || the_install_race->hooked)
		return; /* an install's own steps, or a later step */
	the_install_race->hooked = true;
	sem_post(&the_install_race->in_step);
	sem_wait(&the_install_race->go);
}

static void *race_install(void *arg)
{
	struct install_race *r = arg;
	r->rc = install_rc(r->dst, r->src);
	sem_post(&r->done);
	return NULL;
}

static int sem_wait_ms(sem_t *s, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (sem_timedwait(s, &ts) != 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static void test_cleanup_step_holds_off_an_install(void **state)
{
	/* The old state and the next snapshot have the same key names. The
	 * cleanup thread collects the deletes of 10,000 old keys and is held
	 * there; an install starting then must wait for that step, or the
	 * deletes, written afterwards, would land on the keys it wrote into
	 * the same generation (in synced 4 MiB batches before its commit:
	 * hence 40,000 keys of 200 bytes). */
	struct fx *f = *state, a = {0}, b = {0};
	struct install_race r = {.main = pthread_self()};
	char key[32], big[201];
	memset(big, 'v', 200); /* 40,000 records of 200 bytes: two 4 MiB batches */
	big[200] = '\0';
	for (int i = 0; i < 30000; i++) {
		txn_new(f);
		int kl = snprintf(key, sizeof key, "s%d", i);
		txn_add_put(&f->txn, key, (size_t)kl, RECORD_RAW, 0644, 0, "old", 3);
		queue(f);
		if (i % 500 == 499)
			flush(f);
	}
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	source_store(&a, f, 200, "first");
	source_store(&b, f, 40000, big);
	assert_int_equal(sem_init(&r.in_step, 0, 0), 0);
	assert_int_equal(sem_init(&r.go, 0, 0), 0);
	assert_int_equal(sem_init(&r.done, 0, 0), 0);
	the_install_race = &r;
	f->kv->cleanup_hook = race_hook;
	install_from(f, &a); /* the 30,000 old keys are now the dead generation */
	assert_int_equal(sem_wait_ms(&r.in_step, 10000), 0);
	r.dst = f->kv;
	r.src = b.kv;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, race_install, &r), 0);
	int finished = sem_wait_ms(&r.done, 300) == 0;
	sem_post(&r.go);
	pthread_join(t, NULL);
	assert_false(finished); /* it waited for the step */
	assert_int_equal(r.rc, 0);
	f->index = kv_applied_index(f->kv);
	assert_source_state(f, 40000, big);
	assert_int_equal(kv_cleanup_wait(f->kv), 0);
	assert_int_equal(count_gen(f, KV_GEN_PREFIX(!f->kv->gen)), 0);
	assert_source_state(f, 40000, big);
	f->kv->cleanup_hook = NULL;
	fx_reopen(f);
	assert_source_state(f, 40000, big);
	sem_destroy(&r.in_step);
	sem_destroy(&r.go);
	sem_destroy(&r.done);
	fx_free(&a);
	fx_free(&b);
}

static void test_failed_install_commit_keeps_the_cleanup_off(void **state)
{
	/* The commit's synced write (the flip) succeeds and the directory sync
	 * after it fails: the flip may be on disk while the store still takes
	 * the old generation for live. The cleanup must then delete nothing
	 * (the node stops); the next start finds the installed state whole. */
	struct fx *f = *state, src = {0};
	struct kv_snap_writer *w;
	put_many(f, 25000, "old");
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	source_store(&src, f, 3000, "new");
	assert_int_equal(kv_snap_writer_create(f->kv, &w), 0);
	assert_int_equal(stream_snapshot(w, src.kv, 0), 0);
	int fd = f->kv->dir_fd;
	f->kv->dir_fd = -1; /* fsync(-1) fails */
	f->kv->dir_synced = false;
	assert_int_equal(kv_snap_commit(w), KVFS_ESTORAGE);
	f->kv->dir_fd = fd;
	kv_snap_writer_destroy(w);
	assert_true(kv_cleanup_wait(f->kv) < 0);
	assert_true(kv_cleanup_error(f->kv) < 0);
	struct kv_snap_writer *w2;
	assert_int_equal(kv_snap_writer_create(f->kv, &w2), KVFS_ESTORAGE); /* stopping */
	fx_reopen(f);
	assert_source_state(f, 3000, "new");
	assert_int_equal(kv_cleanup_wait(f->kv), 0);
	fx_free(&src);
}

/* The snapshot stream of src, whole, into a malloc'd buffer. */
static uint8_t *read_stream(struct kv *src, size_t *len)
{
	struct kv_snap_reader *r = kv_snap_reader_create(src);
	struct byte_buf b;
	bool done = false;
	bb_init(&b);
	assert_non_null(r);
	while (!done) {
		char buf[4096];
		long n = kv_snap_read(r, b.len, buf, sizeof buf, &done);
		assert_true(n >= 0);
		bb_put(&b, buf, (size_t)n);
	}
	kv_snap_reader_destroy(r);
	assert_false(b.err);
	*len = b.len;
	return b.data;
}

static void test_snapshot_stream_in_chunks_of_any_size(void **state)
{
	/* Where the chunks of a stream end does not matter: fed a byte at a
	 * time, or in uneven pieces, the install is the same. */
	struct fx *f = *state, src = {0};
	put_many(f, 50, "old");
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	source_store(&src, f, 300, "new");
	size_t len;
	uint8_t *stream = read_stream(src.kv, &len);
	for (size_t step = 1; step <= 7; step += 6) {
		struct kv_snap_writer *w;
		assert_int_equal(kv_snap_writer_create(f->kv, &w), 0);
		for (size_t off = 0; off < len; off += step) {
			size_t n = len - off < step ? len - off : step;
			assert_int_equal(kv_snap_write(w, off, stream + off, n), 0);
		}
		assert_int_equal(kv_snap_commit(w), 0);
		kv_snap_writer_destroy(w);
		assert_source_state(f, 300, "new");
	}
	/* The decoder says "not yet" on every proper prefix of an item, and
	 * the same length on the item followed by anything. */
	struct kv_snap_item it;
	long first = kv_snap_next(stream, len, &it);
	assert_true(first > 8);
	for (long cut = 0; cut < first; cut++)
		assert_int_equal(kv_snap_next(stream, (size_t)cut, &it), 0);
	free(stream);
	fx_free(&src);
}

/* Appends an item to b: key (klen bytes), then a value of vlen bytes of
 * which only have bytes are given (the rest of the stream cut short). */
static void item(struct byte_buf *b, const void *key, size_t klen, const void *v, size_t vlen,
		 size_t have)
{
	bb_le32(b, (uint32_t)klen);
	bb_put(b, key, klen);
	bb_le32(b, (uint32_t)vlen);
	bb_put(b, v, have);
}

static void test_snapshot_stream_refuses_what_no_snapshot_holds(void **state)
{
	/* A stream no snapshot holds gets KVFS_EPROTO, at its first bad item
	 * (a value length past any record is refused before its bytes are
	 * waited for), and the live state is untouched. */
	struct fx *f = *state;
	put_many(f, 40, "live");
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	uint8_t rec[64], idx[8] = {7};
	struct record_meta m = {.kind = RECORD_RAW, .create_rev = 3, .mod_rev = 3, .version = 1};
	size_t hl = record_encode_header(rec, &m);
	memcpy(rec + hl, "val", 3);
	struct byte_buf good, b;
	bb_init(&good);
	bb_init(&b);
	item(&good, KV_META_APPLIED, sizeof KV_META_APPLIED - 1, idx, 8, 8);
	uint8_t three[8] = {3};
	item(&good, KV_META_COUNT, sizeof KV_META_COUNT - 1, three, 8, 8);
	item(&good, "kx", 2, rec, hl + 3, hl + 3);
	/* The longest key a client can write, as a directory marker. */
	static char longkey[TXN_MAX_KEY + 2];
	memset(longkey, 'L', sizeof longkey - 1);
	longkey[0] = 'k';
	uint8_t dir[RECORD_HEADER_MAX];
	struct record_meta dm = {.kind = RECORD_DIR, .create_rev = 4, .mod_rev = 4, .version = 1};
	item(&good, longkey, TXN_MAX_KEY + 1, dir, record_encode_header(dir, &dm),
	     record_encode_header(dir, &dm));
	/* A record of version 1, as earlier builds wrote them (record.h). */
	uint8_t v1[40 + 5] = {1, RECORD_RAW};
	put_le32(v1 + 4, 0600);
	put_le64(v1 + 8, 1);
	put_le64(v1 + 16, 5);
	put_le64(v1 + 24, 6);
	put_le64(v1 + 32, 2);
	memcpy(v1 + 40, "v1val", 5);
	item(&good, "kold", 4, v1, sizeof v1, sizeof v1);
	/* A value of the largest length a record can have, its bytes still to
	 * come: not yet an error. */
	b.len = 0;
	item(&b, "kbig", 4, rec, KV_VALUE_LIMIT + RECORD_HEADER_MAX, hl);
	struct kv_snap_item it;
	assert_int_equal(kv_snap_next(b.data, b.len, &it), 0);
	enum { ZERO_KEY, LONG_KEY, HUGE_VALUE, NOT_A_RECORD, SHORT_INDEX, OTHER_META, BAD_END, N };
	for (int c = 0; c < N; c++) {
		b.len = 0;
		bb_put(&b, good.data, good.len);
		switch (c) {
		case ZERO_KEY:
			item(&b, "", 0, "", 0, 0);
			break;
		case LONG_KEY: /* past kv_snap.c's 1 MiB, refused before its bytes come */
			bb_le32(&b, (1u << 20) + 1);
			break;
		case HUGE_VALUE:
			item(&b, "ky", 2, rec, KV_VALUE_LIMIT + RECORD_HEADER_MAX + 1, hl);
			break;
		case NOT_A_RECORD:
			item(&b, "kz", 2, "\x09garbage", 8, 8);
			break;
		case SHORT_INDEX:
			item(&b, KV_META_APPLIED, sizeof KV_META_APPLIED - 1, idx, 4, 4);
			break;
		case OTHER_META: /* refused before its value's bytes come */
			item(&b, KV_META_MEMBERS, sizeof KV_META_MEMBERS - 1, idx, 1u << 20, 0);
			break;
		case BAD_END: /* bytes after the end mark */
			bb_le32(&b, 0xFFFFFFFFu);
			bb_put(&b, "x", 1);
			break;
		}
		assert_false(b.err);
		struct kv_snap_writer *w;
		assert_int_equal(kv_snap_writer_create(f->kv, &w), 0);
		int rc = kv_snap_write(w, 0, b.data, b.len);
		if (c == BAD_END) {
			assert_int_equal(rc, 0);
			rc = kv_snap_commit(w);
		}
		if (rc != KVFS_EPROTO)
			fail_msg("case %d: %d", c, rc);
		kv_snap_writer_destroy(w);
		assert_int_equal(kv_cleanup_wait(f->kv), 0);
		assert_int_equal(kv_key_count(f->kv), 40);
		assert_value(f, "k0", "live");
		assert_value(f, "k39", "live");
		assert_absent(f, "x");
	}
	/* Without its end mark a stream does not commit either. */
	struct kv_snap_writer *w;
	assert_int_equal(kv_snap_writer_create(f->kv, &w), 0);
	assert_int_equal(kv_snap_write(w, 0, good.data, good.len), 0);
	assert_int_equal(kv_snap_commit(w), KVFS_EPROTO);
	kv_snap_writer_destroy(w);
	assert_int_equal(kv_cleanup_wait(f->kv), 0);
	assert_int_equal(kv_key_count(f->kv), 40);
	/* With it, every item of the good stream is taken. */
	bb_le32(&good, 0xFFFFFFFFu);
	assert_int_equal(kv_snap_writer_create(f->kv, &w), 0);
	assert_int_equal(kv_snap_write(w, 0, good.data, good.len), 0);
	assert_int_equal(kv_snap_commit(w), 0);
	kv_snap_writer_destroy(w);
	assert_int_equal(kv_key_count(f->kv), 3);
	assert_int_equal(kv_applied_index(f->kv), 7);
	assert_value(f, "x", "val");
	assert_value(f, "old", "v1val");
	assert_value(f, longkey + 1, "");
	assert_absent(f, "k0");
	bb_free(&good);
	bb_free(&b);
}

static void test_abandoned_install_is_deleted(void **state)
{
	/* An install given up halfway (a new leader, a broken stream): what it
	 * wrote is dead and the thread deletes it; the live state stays. */
	struct fx *f = *state, src = {0};
	struct kv_snap_writer *w;
	put_many(f, 500, "live");
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	source_store(&src, f, 20000, "partial");
	assert_int_equal(kv_snap_writer_create(f->kv, &w), 0);
	assert_int_equal(stream_snapshot(w, src.kv, 1 << 20), 0); /* more than one synced batch */
	kv_snap_writer_destroy(w);
	assert_true(count_gen(f, KV_GEN_PREFIX(!f->kv->gen)) > 0 ||
		    !kv_cleanup_error(f->kv)); /* (maybe deleted already) */
	assert_int_equal(kv_cleanup_wait(f->kv), 0);
	assert_int_equal(count_gen(f, KV_GEN_PREFIX(!f->kv->gen)), 0);
	assert_int_equal(count_gen(f, KV_GEN_PREFIX(f->kv->gen)), 500);
	assert_int_equal(kv_key_count(f->kv), 500);
	assert_value(f, "k499", "live");
	fx_free(&src);
}

static void test_install_while_the_cleanup_runs(void **state)
{
	/* A second install right after a first, while the thread is still
	 * deleting what the first replaced: the second is written into that
	 * very generation, so the thread must stay off it. Every key of the
	 * second snapshot is there after its commit and after the cleanup of
	 * the first snapshot's keys. */
	struct fx *f = *state, a = {0}, b = {0};
	put_many(f, 30000, "old");
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	source_store(&a, f, 200, "first");
	source_store(&b, f, 2000, "second");
	install_from(f, &a);
	install_from(f, &b);
	assert_source_state(f, 2000, "second");
	assert_int_equal(kv_cleanup_wait(f->kv), 0);
	assert_int_equal(count_gen(f, KV_GEN_PREFIX(!f->kv->gen)), 0);
	assert_source_state(f, 2000, "second");
	fx_reopen(f); /* and as LevelDB has it */
	assert_source_state(f, 2000, "second");
	fx_free(&a);
	fx_free(&b);
}

static void test_iterator_order_and_snapshot(void **state)
{
	/* Iterators return user keys in byte order from the start key, hide metadata,
	 * and see the database as it was when they were created. */
	struct fx *f = *state;
	put_all(f, (const char *const[]){"c=3", "a=1", "b/2=5", "b=2", "\xff=9", NULL});
	struct kv_iter *it = kv_iter_create(f->kv);
	assert_non_null(it);
	assert_int_equal(put(f, "bb", "late"), 0);

	assert_keys_from(it, "b", (const char *const[]){"b", "b/2", "c", "\xff", NULL});

	kv_iter_seek(it, "", 0); /* seeking again restarts from the first user key */
	assert_true(kv_iter_valid(it));
	size_t klen;
	assert_memory_equal(kv_iter_key(it, &klen), "a", 1);
	kv_iter_destroy(it);
}

/* --- the applied state before and after its flush (kv_pending.c) --------- */

/* Keys and records of the applied state waiting for its flush live in chunks
 * freed with the whole table (ov_alloc): a record replaced before the flush
 * stays in memory until then, and the memory bound (kv_pending_bytes, which
 * --flush-max holds against) counts it: 400 overwrites of one key with 200
 * bytes weigh 400 records, not one; the flush frees them all. */
static void test_pending_bytes_count_replaced_records(void **state)
{
	struct fx *f = *state;
	char val[201];
	memset(val, 'v', 200);
	val[200] = 0;
	assert_int_equal(kv_pending_bytes(f->kv), 0);
	for (int i = 0; i < 400; i++) {
		val[0] = (char)('a' + i % 26);
		assert_int_equal(put(f, "k", val), 0);
	}
	assert_true(kv_pending_bytes(f->kv) >= 400 * 200);
	assert_true(kv_pending_bytes(f->kv) < 4 * 400 * 200);
	assert_value(f, "k", val);
	assert_int_equal(meta_of(f, "k").version, 400);
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	assert_int_equal(kv_pending_bytes(f->kv), 0);
	assert_value(f, "k", val);
}

/* A batch that changes nothing (its transactions failed, its lookups of
 * absent keys made slots) leaves no memory behind in the pending state:
 * its chunks go with it, not into a table that holds other keys. */
static void test_failed_batches_leave_no_pending_memory(void **state)
{
	struct fx *f = *state;
	assert_int_equal(put(f, "a", "1"), 0);
	uint64_t before = kv_pending_bytes(f->kv);
	assert_true(before > 0);
	char key[32];
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof key, "absent-%d", i);
		assert_int_equal(del(f, key, TXN_F_MUST_EXIST), KVFS_ENOTFOUND);
	}
	assert_int_equal(kv_pending_bytes(f->kv), before);
	assert_value(f, "a", "1");
}

static void test_pending_state_merges_with_database(void **state)
{
	/* Batches not flushed yet are what readers see: newer values and
	 * deletions win over the database, in gets, iteration order and the key
	 * count, before and after the flush and after a reopen; an iterator keeps
	 * the state it was created on. */
	struct fx *f = *state;
	put_all(f, (const char *const[]){"a=1", "b=2", "c=3", "d=4", NULL});
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	assert_int_equal(kv_pending_bytes(f->kv), 0);

	put_all(f, (const char *const[]){"b=20", "e=5", "bb=7", NULL});
	assert_int_equal(del(f, "c", 0), 0);
	assert_true(kv_pending_bytes(f->kv) > 0);
	assert_int_equal(kv_durable_index(f->kv) + 4, kv_applied_index(f->kv));
	assert_absent(f, "c");
	assert_value(f, "b", "20");
	assert_int_equal(meta_of(f, "b").version, 2);
	assert_int_equal(kv_key_count(f->kv), 5);
	assert_dump(f, "a=1;b=20;bb=7;d=4;e=5;");
	struct kv_iter *it = kv_iter_create(f->kv);
	assert_non_null(it);

	assert_int_equal(kv_sync(f->kv, f->index), 0);
	assert_int_equal(kv_pending_bytes(f->kv), 0);
	assert_int_equal(kv_durable_index(f->kv), kv_applied_index(f->kv));
	assert_int_equal(del(f, "a", 0), 0);
	assert_int_equal(put(f, "c", "33"), 0);
	assert_int_equal(meta_of(f, "c").version, 1); /* deleted, then created again */
	assert_dump(f, "b=20;bb=7;c=33;d=4;e=5;");

	assert_keys_from(it, "", (const char *const[]){"a", "b", "bb", "d", "e", NULL});
	kv_iter_seek(it, "bc", 2); /* a seek lands between pending and stored keys */
	assert_true(kv_iter_valid(it));
	size_t klen;
	assert_memory_equal(kv_iter_key(it, &klen), "d", 1);
	kv_iter_destroy(it);

	/* Limited to a prefix: only its keys, from either source, and a seek
	 * before the prefix starts at it. */
	assert_non_null(it = kv_iter_create_prefix(f->kv, "b", 1));
	assert_keys_from(it, "a", (const char *const[]){"b", "bb", NULL});
	kv_iter_destroy(it);

	/* Bounded: keys from lo to hi inclusive, pending or stored, nothing past
	 * hi even where the database has more; a seek before lo starts at lo. */
	assert_int_equal(put(f, "ba", "pending"), 0);  /* pending, inside */
	assert_int_equal(put(f, "bz", "pending"), 0);  /* pending, past hi */
	assert_int_equal(del(f, "bb", 0), 0);          /* a pending deletion hides it */
	struct kv_bounds bd = {.lo = "b", .lolen = 1, .hi = "c", .hilen = 1};
	assert_non_null(it = kv_iter_create_range(f->kv, &bd));
	assert_keys_from(it, "", (const char *const[]){"b", "ba", "bz", "c", NULL});
	kv_iter_destroy(it);
	bd = (struct kv_bounds){.lo = "ba", .lolen = 2, .hi = "by", .hilen = 2};
	assert_non_null(it = kv_iter_create_range(f->kv, &bd));
	assert_keys_from(it, "a", (const char *const[]){"ba", NULL});
	kv_iter_destroy(it);
	bd = (struct kv_bounds){.prefix = "b", .plen = 1, .lo = "bb", .lolen = 2};
	assert_non_null(it = kv_iter_create_range(f->kv, &bd));
	assert_keys_from(it, "", (const char *const[]){"bz", NULL});
	kv_iter_destroy(it);
	bd = (struct kv_bounds){.lo = "d", .lolen = 1, .hi = "c", .hilen = 1};
	assert_non_null(it = kv_iter_create_range(f->kv, &bd)); /* lo > hi: empty */
	assert_keys_from(it, "", (const char *const[]){NULL});
	kv_iter_destroy(it);
	assert_int_equal(put(f, "bb", "7"), 0);
	assert_int_equal(del(f, "ba", 0), 0);
	assert_int_equal(del(f, "bz", 0), 0);

	uint64_t applied = kv_applied_index(f->kv);
	fx_reopen(f); /* the close flushes */
	assert_int_equal(kv_applied_index(f->kv), applied);
	assert_int_equal(kv_key_count(f->kv), 5);
	assert_dump(f, "b=20;bb=7;c=33;d=4;e=5;");
}

/* The keys an iterator created on bounds b returns, as "k1,k2,". */
static void keys_of(struct fx *f, const struct kv_bounds *b, char *out, size_t cap)
{
	struct kv_iter *it = kv_iter_create_range(f->kv, b);
	assert_non_null(it);
	size_t used = 0;
	out[0] = 0;
	for (kv_iter_seek(it, "", 0); kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl;
		const uint8_t *k = kv_iter_key(it, &kl);
		assert_true(used + kl + 2 < cap);
		memcpy(out + used, k, kl);
		used += kl;
		out[used++] = ',';
		out[used] = 0;
	}
	assert_int_equal(kv_iter_status(it), 0);
	kv_iter_destroy(it);
}

static void test_iterators_over_a_pending_table_at_rest(void **state)
{
	/* A pending table unchanged across iterators gets a sorted view (built
	 * by the second one); iterators through it see exactly what a scan of
	 * the slots shows, for any bounds, and the next change drops it. */
	struct fx *f = *state;
	put_all(f, (const char *const[]){"a=1", "m/1=1", "m/3=3", "z=9", NULL});
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	char key[16];
	for (int i = 0; i < 300; i++) { /* pending: m/000..m/299, every 7th deleted */
		snprintf(key, sizeof key, "m/%03d", i);
		assert_int_equal(put(f, key, "v"), 0);
	}
	for (int i = 0; i < 300; i += 7) {
		snprintf(key, sizeof key, "m/%03d", i);
		assert_int_equal(del(f, key, 0), 0);
	}
	assert_int_equal(del(f, "m/3", 0), 0); /* a pending deletion of a stored key */
	const struct kv_bounds bounds[] = {
		{0},
		{.prefix = "m/", .plen = 2},
		{.lo = "m/1", .lolen = 3, .hi = "m/100", .hilen = 5},
		{.prefix = "m/", .plen = 2, .lo = "m/29", .lolen = 4},
		{.lo = "m/298", .lolen = 5, .hi = "z", .hilen = 1},
		{.prefix = "q", .plen = 1},
	};
	enum { NB = sizeof bounds / sizeof bounds[0] };
	static char scanned[NB][4096], viewed[NB][4096];
	struct ov_table *t = f->kv->active;
	assert_null(t->view);
	for (int i = 0; i < NB; i++) { /* each the first since a change: scans */
		free(t->view);
		t->view = NULL;
		t->scans = 0;
		keys_of(f, &bounds[i], scanned[i], sizeof scanned[i]);
		assert_null(t->view);
	}
	keys_of(f, &bounds[0], viewed[0], sizeof viewed[0]);
	assert_non_null(t->view); /* built by the second iterator */
	for (int i = 0; i < NB; i++) {
		keys_of(f, &bounds[i], viewed[i], sizeof viewed[i]);
		assert_string_equal(viewed[i], scanned[i]);
	}
	assert_string_equal(scanned[2], "m/1,m/100,");
	assert_string_equal(scanned[4], "m/298,m/299,z,");
	assert_string_equal(scanned[5], "");
	assert_null(strstr(scanned[1], "m/007,"));
	assert_null(strstr(scanned[0], "m/3,"));
	assert_int_equal(strncmp(scanned[0], "a,m/001,m/002,", 14), 0); /* m/000 deleted */

	assert_int_equal(put(f, "m/3", "back"), 0); /* a change drops the view */
	assert_null(f->kv->active->view);
	keys_of(f, &bounds[2], viewed[0], sizeof viewed[0]);
	assert_string_equal(viewed[0], "m/1,m/100,");
	keys_of(f, &bounds[1], viewed[1], sizeof viewed[1]);
	assert_non_null(strstr(viewed[1], "m/299,m/3,"));
}

static void test_long_scan_goes_on_past_the_cached_part(void **state)
{
	/* An iterator reads its first 256 KiB through the block cache, then goes
	 * on from a new LevelDB iterator on the same snapshot: nothing is lost,
	 * repeated or out of order at the switch, pending changes included, and
	 * a write after the iterator's creation stays unseen. */
	struct fx *f = *state;
	char key[16], val[1100];
	memset(val, 'v', sizeof val - 1);
	val[sizeof val - 1] = 0;
	for (int i = 0; i < 600; i++) { /* 600 KiB stored */
		snprintf(key, sizeof key, "s/%04d", i);
		assert_int_equal(put(f, key, val), 0);
	}
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	for (int i = 1; i < 600; i += 50) { /* pending: deletions and new keys */
		snprintf(key, sizeof key, "s/%04d", i);
		assert_int_equal(del(f, key, 0), 0);
		snprintf(key, sizeof key, "s/%04da", i);
		assert_int_equal(put(f, key, "new"), 0);
	}
	struct kv_iter *it = kv_iter_create_prefix(f->kv, "s/", 2);
	assert_non_null(it);
	assert_int_equal(put(f, "s/0300b", "late"), 0);
	int seen = 0, news = 0;
	char prev[32] = "";
	for (kv_iter_seek(it, "", 0); kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl;
		const uint8_t *k = kv_iter_key(it, &kl);
		char cur[32];
		assert_true(kl < sizeof cur);
		memcpy(cur, k, kl);
		cur[kl] = 0;
		assert_true(strcmp(prev, cur) < 0); /* strictly increasing: no repeat */
		assert_string_not_equal(cur, "s/0300b");
		strcpy(prev, cur);
		if (kl == 7)
			news++;
		seen++;
	}
	assert_int_equal(kv_iter_status(it), 0);
	kv_iter_destroy(it);
	assert_int_equal(news, 12);
	assert_int_equal(seen, 600 - 12 + 12);
}

static void test_crash_keeps_the_last_flushed_state(void **state)
{
	/* A process killed after a flush and more batches comes back with
	 * exactly the flushed state: its data, applied index and count, none of
	 * the later batches (the Raft log replays them), whole batches only. */
	struct fx *f = *state;
	kv_close(f->kv);
	f->kv = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fx_open(f);
		put_all(f, (const char *const[]){"a=1", "b=2", NULL});
		if (kv_sync(f->kv, f->index) != 0)
			_exit(2);
		put_all(f, (const char *const[]){"b=3", "c=4", NULL});
		if (del(f, "a", 0) != 0 || kv_key_count(f->kv) != 2)
			_exit(3);
		_exit(0); /* no close: as kill -9 */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	fx_open(f);
	assert_int_equal(kv_applied_index(f->kv), 2);
	assert_int_equal(kv_durable_index(f->kv), 2);
	assert_int_equal(kv_key_count(f->kv), 2);
	assert_dump(f, "a=1;b=2;");
}

/* The path of the newest write-ahead log of f's database, and its size. */
static off_t newest_log(struct fx *f, char *path, size_t cap)
{
	char dir[2048];
	unsigned long best = 0, num;
	bool any = false;
	path_join(dir, sizeof dir, f->dir, "kv");
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)))
		if (sscanf(de->d_name, "%lu.log", &num) == 1 && strstr(de->d_name, ".log") &&
		    (!any || num > best)) {
			best = num;
			any = true;
		}
	closedir(d);
	assert_true(any);
	snprintf(path, cap, "%s/%06lu.log", dir, best);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* A process that writes the two synced batches {a=1, b=2} and {c = n bytes
 * of 'c'} and is killed; returns the log's size after the first one. */
static off_t crash_after_two_writes(struct fx *f, size_t n)
{
	int fds[2];
	off_t first = 0;
	kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char path[4096], *big = malloc(n + 1);
		fx_open(f);
		put_all(f, (const char *const[]){"a=1", "b=2", NULL});
		if (!big || kv_sync(f->kv, f->index) != 0)
			_exit(2);
		first = newest_log(f, path, sizeof path);
		memset(big, 'c', n);
		big[n] = '\0';
		if (put(f, "c", big) != 0 || kv_sync(f->kv, f->index) != 0)
			_exit(3);
		if (write(fds[1], &first, sizeof first) != sizeof first)
			_exit(4);
		_exit(0); /* no close: as kill -9 */
	}
	close(fds[1]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(read(fds[0], &first, sizeof first), sizeof first);
	close(fds[0]);
	return first;
}

/* Writes len zero bytes at off of path (a page the disk never stored). */
static void zero_range(const char *path, off_t off, size_t len)
{
	char zeros[4096] = {0};
	FILE *fp = fopen(path, "r+");
	assert_non_null(fp);
	assert_true(len <= sizeof zeros);
	assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
	assert_int_equal(fwrite(zeros, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void test_torn_last_write_of_a_power_loss_is_dropped(void **state)
{
	/* The power went while the last batch (100 KB, four 32 KiB blocks of
	 * LevelDB's log) was being synced. First the disk kept its pages but
	 * one, in a different place each round: LevelDB, with paranoid
	 * checks, finds a checksum mismatch. The store drops that write,
	 * which was never acknowledged (the Raft log replays it), and opens
	 * at the first batch's state. Then rounds where each page survives
	 * with probability 1/2 and the file may end early: the store opens
	 * every time, with the last write whole or not at all. */
	struct fx *f = *state;
	static const off_t pages[] = {0, 4096, 40960, 69632};
	unsigned seed = 7;
	for (size_t i = 0; i < 4 + 16; i++) {
		char path[4096];
		tmpdir_destroy(f->dir);
		f->dir = tmpdir_create("kv");
		assert_non_null(f->dir);
		f->index = 0;
		off_t first = crash_after_two_writes(f, 100000);
		off_t size = newest_log(f, path, sizeof path);
		assert_true(size > first + 100000);
		bool whole = true;
		if (i < 4) {
			/* the page at first + pages[i], from first at the least */
			off_t at = (first + pages[i]) / 4096 * 4096;
			if (at < first)
				at = first;
			zero_range(path, at, 4096 - (size_t)(at % 4096));
			whole = false;
		} else {
			for (off_t at = first; at < size; at = (at / 4096 + 1) * 4096)
				if (rand_r(&seed) % 2) {
					off_t next = (at / 4096 + 1) * 4096;
					zero_range(path, at, (size_t)((next < size ? next : size) - at));
					whole = false;
				}
			if (rand_r(&seed) % 2) {
				assert_int_equal(truncate(path, first + rand_r(&seed) % (size - first)), 0);
				whole = false;
			}
		}
		fx_open(f);
		uint64_t applied = kv_applied_index(f->kv);
		assert_true(applied == 2 || (applied == 3 && whole));
		assert_int_equal(kv_key_count(f->kv), applied);
		if (applied == 2)
			assert_dump(f, "a=1;b=2;");
		/* it goes on from there */
		f->index = applied;
		put_all(f, (const char *const[]){"d=4", NULL});
		fx_reopen(f);
		assert_int_equal(kv_key_count(f->kv), applied + 1);
	}
}

/* Flips bits of the byte at off of path. */
static void flip(const char *path, off_t off, int bits)
{
	FILE *fp = fopen(path, "r+");
	assert_non_null(fp);
	assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
	int c = fgetc(fp);
	assert_true(c >= 0);
	assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
	assert_int_equal(fputc(c ^ bits, fp), c ^ bits);
	assert_int_equal(fclose(fp), 0);
}

static void test_damaged_synced_write_stops_the_open(void **state)
{
	/* A bit of a synced record changed on disk: in the first record's
	 * payload or length field (with the second whole after it), or in
	 * the last record's payload. No page was lost, so this is damage to
	 * synced data, not a torn last write: the store refuses to open and
	 * leaves the log as it was. Then the last record (6 KB) torn for
	 * real, its second page lost: it is dropped. */
	struct fx *f = *state;
	char path[4096], dir[4096];
	struct kv_options o;
	struct kv *kv = NULL;
	static const struct {
		off_t at; /* from the start, or (< 0) from the end */
		int bits;
	} damage[] = {{20, 0x40}, {4, 0x01}, {-10, 0x04}};
	off_t first = crash_after_two_writes(f, 6000);
	off_t size = newest_log(f, path, sizeof path);
	kv_options_default(&o);
	path_join(dir, sizeof dir, f->dir, "kv");
	for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
		off_t at = damage[i].at >= 0 ? damage[i].at : size + damage[i].at;
		flip(path, at, damage[i].bits);
		assert_int_equal(kv_open(dir, &o, &kv), KVFS_ESTORAGE);
		assert_int_equal(kv_wal_fix_tail(dir), KVFS_ECORRUPT);
		assert_int_equal(newest_log(f, path, sizeof path), size);
		flip(path, at, damage[i].bits);
	}
	/* the last record's second page: its header stays */
	off_t page = (first / 4096 + 1) * 4096;
	off_t page_end = page + 4096;
	assert_true(page > first + 7 && page < size);
	zero_range(path, page, (size_t)((page_end < size ? page_end : size) - page));
	assert_int_equal(kv_wal_fix_tail(dir), 1);
	assert_int_equal(newest_log(f, path, sizeof path), first);
	fx_open(f);
	assert_dump(f, "a=1;b=2;");
}

static void test_torn_manifest_is_left_alone(void **state)
{
	/* The manifest ends in a torn record (its header, then a lost page):
	 * LevelDB refuses to open, and so does the store, which does not cut
	 * the manifest (kv_wal.c says why): the start fails and the files are
	 * as they were. */
	struct fx *f = *state;
	char dir[4096], cur[256], path[4400];
	put_all(f, (const char *const[]){"a=1", "b=2", NULL});
	fx_reopen(f); /* the log becomes a table: a manifest change */
	kv_close(f->kv);
	f->kv = NULL;
	path_join(dir, sizeof dir, f->dir, "kv");
	snprintf(path, sizeof path, "%s/CURRENT", dir);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(cur, sizeof cur, fp));
	fclose(fp);
	cur[strcspn(cur, "\n")] = 0;
	snprintf(path, sizeof path, "%s/%s", dir, cur);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	/* a FULL record of 5000 bytes whose payload never reached the disk */
	uint8_t hdr[7] = {0x12, 0x34, 0x56, 0x78, 5000 & 0xff, 5000 >> 8, 1};
	fp = fopen(path, "a");
	assert_non_null(fp);
	assert_int_equal(fwrite(hdr, 1, sizeof hdr, fp), sizeof hdr);
	assert_int_equal(fclose(fp), 0);
	off_t torn = st.st_size + 7 + 5000;
	assert_int_equal(truncate(path, torn), 0);
	struct kv_options o;
	struct kv *kv = NULL;
	kv_options_default(&o);
	assert_int_equal(kv_open(dir, &o, &kv), KVFS_ESTORAGE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, torn);
	assert_int_equal(truncate(path, torn - 7 - 5000), 0); /* what an operator may do */
	fx_open(f);
	assert_dump(f, "a=1;b=2;");
}

static void test_filter_learns_keys_written_again_while_deletion_pending(void **state)
{
	/* A key created and deleted in one batch never reached the key filter;
	 * written again while that deletion waits for its flush, the filter
	 * must learn it, or after the flush the key would look absent: a second
	 * create (version 1 again, counted twice) and a delete that finds
	 * nothing, differently on replicas that flushed at other times. */
	struct fx *f = *state;
	filter_in_use(f);
	txn_new(f);
	txn_add_put(&f->txn, "k", 1, RECORD_RAW, 0644, 0, "1", 1);
	queue(f);
	txn_new(f);
	txn_add_delete(&f->txn, "k", 1, TXN_F_MUST_EXIST);
	queue(f);
	flush(f);
	assert_int_equal(f->res[0], 0);
	assert_int_equal(f->res[1], 0);
	assert_int_equal(put(f, "k", "2"), 0);
	assert_int_equal(kv_sync(f->kv, f->index), 0);
	assert_int_equal(put(f, "k", "3"), 0);
	assert_int_equal(meta_of(f, "k").version, 2);
	assert_int_equal(kv_key_count(f->kv), 1);
	assert_int_equal(del(f, "k", TXN_F_MUST_EXIST), 0);
	assert_absent(f, "k");
	assert_int_equal(kv_key_count(f->kv), 0);
}

/* test_readers_during_flushes: one thread applies, one flushes, one reads. */
enum { RACE_BATCHES = 400 };

struct race {
	struct kv *kv;
	int done; /* atomic */
	int bad;
};

static void *race_flusher(void *arg)
{
	struct race *r = arg;
	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
		if (kv_sync(r->kv, kv_applied_index(r->kv)) != 0)
			r->bad = 1;
	return NULL;
}

/* The value of key as a number, -1 when absent. */
static long race_get(struct kv *kv, const char *key)
{
	char *rec;
	size_t rlen, vlen;
	const uint8_t *v;
	struct record_meta m;
	if (kv_get(kv, key, strlen(key), &rec, &rlen) != 0)
		return -1;
	long x = -2;
	if (record_decode(rec, rlen, &m, &v, &vlen) == 0 && vlen < 16) {
		char buf[16];
		memcpy(buf, v, vlen);
		buf[vlen] = '\0';
		x = strtol(buf, NULL, 10);
	}
	kv_free(rec);
	return x;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	long last = -1;
	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) && !r->bad) {
		/* Batch i sets n=i, k<i>=i and deletes k<i-1>: whatever a flush
		 * is doing, n never goes back, and k<n> is there. */
		long n = race_get(r->kv, "n");
		char key[32];
		if (n < last) {
			r->bad = 2;
			break;
		}
		last = n;
		if (n < 0)
			continue;
		snprintf(key, sizeof key, "k%ld", n);
		if (race_get(r->kv, key) < n) /* a later batch may have moved on */
			if (race_get(r->kv, "n") == n)
				r->bad = 3;
		struct kv_iter *it = kv_iter_create(r->kv);
		size_t keys = 0;
		for (kv_iter_seek(it, "k", 1); kv_iter_valid(it); kv_iter_next(it)) {
			size_t kl;
			if (kv_iter_key(it, &kl)[0] != 'k')
				break;
			keys++;
		}
		if (kv_iter_status(it) != 0 || keys != 1)
			r->bad = 4;
		kv_iter_destroy(it);
	}
	return NULL;
}

static void test_readers_during_flushes(void **state)
{
	/* Readers on other threads see whole batches, in order, while flushes
	 * move the applied state to the database underneath them. */
	struct fx *f = *state;
	struct race r = {.kv = f->kv};
	pthread_t fl, rd;
	char key[32], prev[32], val[32];
	assert_int_equal(pthread_create(&fl, NULL, race_flusher, &r), 0);
	assert_int_equal(pthread_create(&rd, NULL, race_reader, &r), 0);
	for (int i = 0; i < RACE_BATCHES; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(prev, sizeof prev, "k%d", i - 1);
		snprintf(val, sizeof val, "%d", i);
		txn_new(f);
		txn_add_put(&f->txn, "n", 1, RECORD_RAW, 0644, 0, val, strlen(val));
		txn_add_put(&f->txn, key, strlen(key), RECORD_RAW, 0644, 0, val, strlen(val));
		if (i > 0)
			txn_add_delete(&f->txn, prev, strlen(prev), TXN_F_MUST_EXIST);
		assert_int_equal(run(f), 0);
	}
	__atomic_store_n(&r.done, 1, __ATOMIC_RELEASE);
	pthread_join(fl, NULL);
	pthread_join(rd, NULL);
	assert_int_equal(r.bad, 0);
	assert_int_equal(kv_key_count(f->kv), 2);
	snprintf(val, sizeof val, "%d", RACE_BATCHES - 1);
	assert_value(f, "n", val);
}

#define BIG 10000

/* A flush writes its keys to LevelDB in key order (kv_sort_entries): every
 * kind of key set comes out in kv_key_cmp order, each entry once. The sets
 * mix keys that share a long prefix (decided after the 8 bytes the radix
 * passes see), keys that are prefixes of others, zero bytes (like the
 * padding of short keys), empty keys and 0xff bytes. */
static void test_flush_order_is_key_order(void **state)
{
	(void)state;
	static const uint8_t alpha[] = {0x00, 0x01, 'a', 'b', 0x7f, 0xfe, 0xff};
	unsigned seed = 7;
	for (int round = 0; round < 200; round++) {
		size_t n = round < 4 ? (size_t)round : (size_t)(rand_r(&seed) % 2000);
		size_t shared = (size_t)(rand_r(&seed) % 24); /* a common prefix */
		struct ov_ent *ents = calloc(n ? n : 1, sizeof *ents);
		struct kv_sort_ent *s = calloc(2 * (n ? n : 1), sizeof *s);
		bool *seen = calloc(n ? n : 1, 1);
		assert_non_null(ents);
		assert_non_null(s);
		assert_non_null(seen);
		for (size_t i = 0; i < n; i++) {
			size_t len = (size_t)(rand_r(&seed) % 3 ? shared : 0) + (size_t)(rand_r(&seed) % 14);
			uint8_t *k = malloc(len ? len : 1);
			assert_non_null(k);
			for (size_t j = 0; j < len; j++)
				k[j] = j < shared ? (uint8_t)('p' + j % 3)
						  : alpha[rand_r(&seed) % (int)sizeof alpha];
			ents[i].key = k;
			ents[i].klen = (uint32_t)len;
			s[i].e = &ents[i];
		}
		kv_sort_entries(s, s + n, n);
		for (size_t i = 0; i < n; i++) {
			size_t at = (size_t)(s[i].e - ents);
			assert_true(at < n);
			assert_false(seen[at]);
			seen[at] = true;
			if (i > 0)
				assert_true(kv_key_cmp(s[i - 1].e->key, s[i - 1].e->klen, s[i].e->key,
						       s[i].e->klen) <= 0);
		}
		for (size_t i = 0; i < n; i++)
			free(ents[i].key);
		free(ents);
		free(s);
		free(seen);
	}
}

static void test_large_batch(void **state)
{
	/* 10k entries in one batch grow the overlay far past its first size, and a
	 * transaction that itself grows it and then fails still rolls back cleanly. */
	struct fx *f = *state;
	char key[32], val[32];

	txn_new(f); /* 5000 new keys, then a failing CHECK */
	for (int i = 0; i < BIG / 2; i++) {
		int n = snprintf(key, sizeof key, "k%05d", i);
		txn_add_put(&f->txn, key, (size_t)n, RECORD_RAW, 0, 0, "doomed", 6);
	}
	txn_add_check(&f->txn, "k00000", 6, 12345, 0);
	queue(f);
	for (int i = 0; i < BIG; i++) {
		int n = snprintf(key, sizeof key, "k%05d", i);
		int m = snprintf(val, sizeof val, "v%d", i);
		txn_new(f);
		txn_add_put(&f->txn, key, (size_t)n, RECORD_RAW, 0, 0, val, (size_t)m);
		queue(f);
	}
	txn_new(f); /* reads back across the grown table */
	txn_add_check(&f->txn, "k09999", 6, f->index, 0);
	txn_add_delete_prefix(&f->txn, "k0999", 5, 10);
	queue(f);
	flush(f);

	assert_int_equal(f->res[0], KVFS_EPRECOND);
	for (int i = 1; i <= BIG + 1; i++)
		assert_int_equal(f->res[i], 0);
	assert_int_equal(f->deleted[BIG + 1], 10);
	assert_int_equal(kv_key_count(f->kv), BIG - 10);
	for (int i = 0; i < BIG - 10; i += 997) {
		snprintf(key, sizeof key, "k%05d", i);
		snprintf(val, sizeof val, "v%d", i);
		assert_value(f, key, val);
		assert_int_equal(meta_of(f, key).version, 1);
	}
	assert_absent(f, "k09995");
}

/* Open descriptors of LevelDB table files (*.ldb). */
static int table_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char link[320], target[PATH_MAX];
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, sizeof target - 1);
		if (len > 4 && !memcmp(target + len - 4, ".ldb", 4))
			n++;
	}
	closedir(d);
	return n;
}

/* n keys "<prefix>00000".. holding val, synced into LevelDB and compacted
 * into tables. */
static void put_compacted(struct fx *f, char prefix, int n, const char *val)
{
	char key[16];
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "%c%05d", prefix, i);
		assert_int_equal(put(f, key, val), 0);
	}
	assert_int_equal(kv_sync(f->kv, kv_applied_index(f->kv)), 0);
	leveldb_compact_range(f->kv->db, NULL, 0, NULL, 0);
}

/* Calls fn with the path of each LevelDB table file of the store. */
static void each_table(struct fx *f, void (*fn)(const char *path, void *ud), void *ud)
{
	char dir[4096], p[sizeof dir + sizeof((struct dirent *)0)->d_name + 1];
	DIR *d = opendir(path_join(dir, sizeof dir, f->dir, "kv"));
	struct dirent *de;
	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		if (nl < 4 || strcmp(de->d_name + nl - 4, ".ldb") != 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		fn(p, ud);
	}
	closedir(d);
}

struct biggest {
	char path[4096];
	off_t size;
};

static void note_biggest(const char *path, void *ud)
{
	struct biggest *b = ud;
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	if (st.st_size > b->size) {
		b->size = st.st_size;
		snprintf(b->path, sizeof b->path, "%s", path);
	}
}

static void test_flipped_byte_in_a_table_is_an_error(void **state)
{
	/* Every block LevelDB reads is checked against its CRC-32C (in a
	 * static build ISA-L's, through kv_crc.cc): a byte flipped in a table
	 * file makes the reads of that block's keys fail with KVFS_ESTORAGE,
	 * never return another value. Fails if the checksum in use does not
	 * check (say one that always gives the same answer). */
	struct fx *f = *state;
	char key[16], val[201], got[256];
#ifdef KVFS_STATIC_LEVELDB
	assert_true(kv_crc_replaced());
#else
	assert_false(kv_crc_replaced());
#endif
	memset(val, 'v', sizeof val - 1);
	val[sizeof val - 1] = '\0';
	put_compacted(f, 'c', 3000, val);
	kv_close(f->kv);
	f->kv = NULL;

	/* one byte in the middle of the biggest table: inside a data block */
	struct biggest big = {.size = 0};
	each_table(f, note_biggest, &big);
	assert_true(big.size > 64 * 1024);
	int fd = open(big.path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char b;
	assert_int_equal(pread(fd, &b, 1, big.size / 2), 1);
	b ^= 0x20;
	assert_int_equal(pwrite(fd, &b, 1, big.size / 2), 1);
	close(fd);

	fx_open(f);
	int errors = 0;
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof key, "c%05d", i);
		int rc = get(f, key, NULL, got, sizeof got);
		if (rc == KVFS_ESTORAGE)
			errors++;
		else {
			assert_int_equal(rc, 0);
			assert_string_equal(got, val);
		}
	}
	assert_true(errors > 0);
	/* one block (KV_TABLE_BLOCK) of records of about 220 bytes */
	assert_true(errors <= (int)(KV_TABLE_BLOCK / 200));
}

/* Reads a varint of at most 64 bits at *p (below end), or fails the test. */
static uint64_t table_varint(const uint8_t **p, const uint8_t *end)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	fail_msg("bad varint in a table");
	return 0;
}

/* The sizes of a LevelDB table file's data blocks, in file order, from its
 * footer and index block (LevelDB's doc/table_format.md): *n of them, at
 * most max, into sizes. */
static void table_block_sizes(const char *path, uint64_t *sizes, size_t max, size_t *n)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t foot[48];
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size > 48);
	assert_int_equal(pread(fd, foot, 48, st.st_size - 48), 48);
	assert_true(get_le64(foot + 40) == 0xdb4775248b80fb57ull); /* the magic */
	const uint8_t *p = foot, *fe = foot + 40;
	(void)table_varint(&p, fe); /* the metaindex block */
	(void)table_varint(&p, fe);
	uint64_t off = table_varint(&p, fe), size = table_varint(&p, fe);
	assert_true(size >= 4 && off + size <= (uint64_t)st.st_size);
	uint8_t *ix = malloc(size);
	assert_non_null(ix);
	assert_int_equal(pread(fd, ix, size, (off_t)off), (ssize_t)size);
	close(fd);
	/* entries, then the restart offsets (32 bits each), then their count */
	uint32_t restarts = get_le32(ix + size - 4);
	assert_true(4 + 4 * (uint64_t)restarts <= size);
	const uint8_t *q = ix, *end = ix + size - 4 - 4 * (size_t)restarts;
	*n = 0;
	while (q < end) {
		uint64_t shared = table_varint(&q, end), unshared = table_varint(&q, end);
		uint64_t vlen = table_varint(&q, end);
		(void)shared;
		assert_true(unshared + vlen <= (uint64_t)(end - q));
		q += unshared;
		const uint8_t *v = q, *ve = q + vlen;
		(void)table_varint(&v, ve); /* the block's offset, */
		assert_true(*n < max);
		sizes[(*n)++] = table_varint(&v, ve); /* and size */
		q = ve;
	}
	free(ix);
}

/* Every data block of the table at path but its last (ud: their count). */
static void check_blocks(const char *path, void *ud)
{
	static uint64_t sizes[4096];
	size_t n;
	table_block_sizes(path, sizes, sizeof sizes / sizeof *sizes, &n);
	for (size_t i = 0; i + 1 < n; i++) {
		assert_in_range(sizes[i], KV_TABLE_BLOCK, KV_TABLE_BLOCK + 300);
		(*(size_t *)ud)++;
	}
}

static void test_tables_have_blocks_of_kv_table_block(void **state)
{
	/* The store's tables are cut into data blocks of KV_TABLE_BLOCK:
	 * LevelDB ends a block once it holds that much, so every block but a
	 * table's last is that size plus at most one entry (and its restart
	 * offset). Fails with LevelDB's default 4 KiB blocks. */
	struct fx *f = *state;
	char val[201];
	size_t blocks = 0;
	memset(val, 'b', sizeof val - 1);
	val[sizeof val - 1] = '\0';
	put_compacted(f, 'b', 12000, val);
	each_table(f, check_blocks, &blocks);
	assert_true(blocks >= 100); /* 2.6 MB of records */
}

static void test_tables_read_through_pread_env(void **state)
{
	/* Table files are opened through kv_env.cc's environment (pread, no
	 * memory maps) and written through its buffered writer: this fails if
	 * the C API's environment handle does not have the layout kv_env.cc
	 * assumes. 2.4 MiB of values through a 1 MiB write buffer make tables
	 * (bigger than the writer's buffer once compacted); reading every
	 * value back after a reopen and a full compaction, which reads and
	 * checksums every block, checks what the writer wrote. */
	struct fx *f = *state;
	char key[16], val[201];
	uint64_t before = kv_pread_env_files_opened();
	uint64_t written = kv_pread_env_tables_written();

	memset(val, 'v', sizeof val - 1);
	val[sizeof val - 1] = '\0';
	for (int i = 0; i < 12000; i++) {
		snprintf(key, sizeof key, "t%05d", i);
		val[0] = (char)('a' + i % 26);
		assert_int_equal(put(f, key, val), 0);
		if (i % 1000 == 999)
			assert_int_equal(kv_sync(f->kv, kv_applied_index(f->kv)), 0);
	}
	assert_int_equal(kv_sync(f->kv, kv_applied_index(f->kv)), 0);
	fx_reopen(f);
	/* a full compaction first: no table is being written during the reads */
	leveldb_compact_range(f->kv->db, NULL, 0, NULL, 0);
	for (int i = 0; i < 12000; i++) {
		snprintf(key, sizeof key, "t%05d", i);
		val[0] = (char)('a' + i % 26);
		assert_value(f, key, val);
	}
	assert_true(kv_pread_env_files_opened() > before);
	assert_true(kv_pread_env_tables_written() > written);
#ifdef KV_TEST_NO_KEPT_FILES
	assert_int_equal(table_fds(), 0); /* each read closed what it opened */
#else
	assert_true(table_fds() > 0); /* the tables read stay open */
#endif
}

static void test_compaction_debt_from_leveldb_stats(void **state)
{
	(void)state;
	/* LevelDB's "leveldb.stats" text: sizes in MiB; levels 1, 2, 3 are
	 * compacted down to 10, 100 and 1000 MiB. */
	const char *stats = "                               Compactions\n"
			    "Level  Files Size(MB) Time(sec) Read(MB) Write(MB)\n"
			    "--------------------------------------------------\n"
			    "  0        7      105         3        0       105\n"
			    "  1        3       16         1       51        51\n"
			    "  2       12       90         2      120       118\n"
			    "  3      140     1100        40     1500      1480\n";
	assert_int_equal(kv_stats_debt(stats), (uint64_t)(6 + 100) << 20);
	/* level 0 and levels under their size owe nothing; no text, nothing */
	const char *calm = "                               Compactions\n"
			   "Level  Files Size(MB) Time(sec) Read(MB) Write(MB)\n"
			   "--------------------------------------------------\n"
			   "  0        9      150         3        0       150\n"
			   "  1        1        8         0        0         8\n";
	assert_int_equal(kv_stats_debt(calm), 0);
	assert_int_equal(kv_stats_debt(NULL), 0);
	assert_int_equal(kv_stats_debt("garbage"), 0);
}

/* Scheduling policy of this process's thread named comm (-1: none). */
static int thread_policy(const char *comm)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int policy = -1;
	while (d && policy < 0 && (de = readdir(d))) {
		char path[300], buf[1024];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/stat", de->d_name);
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = '\0';
		char *open = strchr(buf, '('), *close = strrchr(buf, ')');
		if (!open || !close || (size_t)(close - open - 1) != strlen(comm) ||
		    strncmp(open + 1, comm, strlen(comm)) != 0)
			continue;
		char *p = close + 2; /* field 3 */
		for (int field = 3; field < 41 && p; field++)
			p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
		if (p)
			policy = atoi(p);
	}
	if (d)
		closedir(d);
	return policy;
}

static void test_background_thread_priority(void **state)
{
	/* kv_env_background_idle moves LevelDB's background thread, which
	 * the writes below start, to SCHED_IDLE and back. */
	struct fx *f = *state;
	char key[16], val[201];
	memset(val, 'b', sizeof val - 1);
	val[sizeof val - 1] = '\0';
	for (int i = 0; i < 12000; i++) {
		snprintf(key, sizeof key, "p%05d", i);
		assert_int_equal(put(f, key, val), 0);
		if (i % 1000 == 999)
			assert_int_equal(kv_sync(f->kv, kv_applied_index(f->kv)), 0);
	}
	assert_int_equal(kv_sync(f->kv, kv_applied_index(f->kv)), 0);
	leveldb_compact_range(f->kv->db, NULL, 0, NULL, 0); /* a job: the thread exists */
	/* Going back needs CAP_SYS_NICE (root, usually) or RLIMIT_NICE 20: do
	 * not leave the process's one compaction thread idle for later tests. */
	struct rlimit rl;
	if (thread_policy("kvfs-compact") != SCHED_OTHER ||
	    (geteuid() != 0 && (getrlimit(RLIMIT_NICE, &rl) != 0 || rl.rlim_cur < 20)))
		skip();
	assert_int_equal(kv_env_background_idle(true), 0);
	assert_int_equal(thread_policy("kvfs-compact"), SCHED_IDLE);
	int rc = kv_env_background_idle(false);
	if (rc == -EPERM)
		skip(); /* leaving SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE 20 */
	assert_int_equal(rc, 0);
	assert_int_equal(thread_policy("kvfs-compact"), SCHED_OTHER);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
#ifdef KV_TEST_NO_KEPT_FILES
	/* test_kv_nofd: kv_env.cc keeps a quarter of the open files limit it
	 * sees when the environment is created open; created under a limit
	 * of 3 it keeps none, so every table read opens and closes its file. */
	struct rlimit rl, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = 3;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	(void)kv_pread_env();
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
#endif
	const struct CMUnitTest tests[] = {
		T(test_put_get),
		T(test_compaction_debt_from_leveldb_stats),
		T(test_sync_advances_durable_index),
		T(test_revisions_and_versions),
		T(test_put_keep_mode),
		T(test_key_count),
		T(test_delete),
		T(test_check_preconditions),
		T(test_failed_txn_rolls_back_earlier_txn_in_batch),
		T(test_batch_txns_see_each_other),
		T(test_undecodable_entry_skipped),
		T(test_empty_entries_advance_applied_index),
		T(test_replay_is_idempotent),
		T(test_state_persists_across_reopen),
		T(test_membership_stored),
		T(test_delete_prefix),
		T(test_delete_prefix_max_keys),
		T(test_rename_prefix),
		T(test_rename_prefix_max_keys),
		T(test_rename_prefix_keeps_keys_within_the_limit),
		T(test_rename_prefix_overlapping_and_batch_independent),
		T(test_rename_prefix_onto_itself),
		T(test_rename),
		T(test_rename_replaces),
		T(test_rename_missing_source),
		T(test_rename_onto_itself),
		T(test_touch),
		T(test_touch_missing),
		T(test_iterator_order_and_snapshot),
		T(test_pending_state_merges_with_database),
		T(test_pending_bytes_count_replaced_records),
		T(test_failed_batches_leave_no_pending_memory),
		T(test_iterators_over_a_pending_table_at_rest),
		T(test_long_scan_goes_on_past_the_cached_part),
		T(test_crash_keeps_the_last_flushed_state),
		T(test_torn_last_write_of_a_power_loss_is_dropped),
		T(test_damaged_synced_write_stops_the_open),
		T(test_torn_manifest_is_left_alone),
		T(test_filter_learns_keys_written_again_while_deletion_pending),
		T(test_readers_during_flushes),
		T(test_filter_knows_keys_written_before_open),
		cmocka_unit_test(test_filter_hash_tells_keys_apart),
		T(test_filter_lookahead_hashes_match_their_ops),
		T(test_filter_grows_when_outgrown),
		T(test_filter_stops_growing_at_its_bound),
		T(test_filter_rebuilt_after_churn),
		T(test_filter_kept_across_clean_restart),
		T(test_filter_saved_at_another_state_is_not_used),
		T(test_filter_says_no_to_absent_keys),
		T(test_filter_follows_snapshot_install),
		T(test_overwrites_take_revisions_from_the_meta_cache),
		T(test_meta_cache_changes_no_result),
		T(test_meta_cache_forgets_an_installed_over_state),
		T(test_meta_cache_install_drops_absent_keys),
		T(test_replaced_state_is_deleted_in_the_background),
		T(test_install_while_the_cleanup_runs),
		T(test_cleanup_step_holds_off_an_install),
		T(test_failed_install_commit_keeps_the_cleanup_off),
		T(test_abandoned_install_is_deleted),
		T(test_snapshot_stream_in_chunks_of_any_size),
		T(test_snapshot_stream_refuses_what_no_snapshot_holds),
		T(test_flush_order_is_key_order),
		T(test_large_batch),
		T(test_tables_read_through_pread_env),
		T(test_tables_have_blocks_of_kv_table_block),
		T(test_flipped_byte_in_a_table_is_an_error),
		/* (last, as the one above: the tests that fork want no LevelDB
		 * background thread in the parent, which a child would lack) */
		T(test_background_thread_priority),
	};
	/* KVFS_TEST_ONLY=pattern runs the matching tests only (as in the
	 * integration tests) */
	if (getenv("KVFS_TEST_ONLY"))
		cmocka_set_test_filter(getenv("KVFS_TEST_ONLY"));
	return cmocka_run_group_tests_name("kv", tests, NULL, NULL);
}
