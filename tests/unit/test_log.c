/*
 * Unit tests for the durable Raft log (store/log.h): entries, hard state and
 * snapshot metadata come back from rlog_load as written, across close and
 * reopen; truncation and compaction keep the in-memory first/last index equal
 * to what a reload finds; a hole in the entries is reported as corruption;
 * every write is one synced batch, counted.
 *
 * Each test gets a fresh log in its own temporary directory. Helpers:
 * append() writes a run of entries whose payload names their index and term,
 * load() reads everything back into f->got, reopen() closes and reloads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <leveldb/c.h>

#include "common/bytes.h"
#include "common/err.h"
#include "store/log.h"
#include "tests/unit/store_test_util.h"

#define MAX_GOT 64

struct got {
	uint64_t index, term;
	uint8_t type;
	char data[64];
	size_t len;
};

struct fx {
	char *dir;
	char path[4096];
	struct rlog *log;
	struct rlog_hard_state hs;
	struct rlog_snapshot_meta snap;
	struct got got[MAX_GOT];
	size_t n_got;
	int stop_after; /* callback returns -42 after this many entries (0 = never) */
};

/* --- scenario helpers ---------------------------------------------------- */

static int collect(const struct rlog_entry *e, void *ud)
{
	struct fx *f = ud;
	if (f->n_got == MAX_GOT)
		return -1;
	struct got *g = &f->got[f->n_got++];
	g->index = e->index;
	g->term = e->term;
	g->type = e->type;
	g->len = e->len;
	memcpy(g->data, e->data, e->len < sizeof g->data ? e->len : sizeof g->data);
	if (f->stop_after && (int)f->n_got == f->stop_after)
		return -42;
	return 0;
}

/* Loads the log into f (hard state, snapshot, entries); returns rlog_load's code. */
static int load(struct fx *f)
{
	free(f->snap.membership);
	f->n_got = 0;
	return rlog_load(f->log, &f->hs, &f->snap, collect, f);
}

static void open_and_load(struct fx *f)
{
	assert_int_equal(rlog_open(f->path, &f->log), 0);
	assert_int_equal(load(f), 0);
}

static void reopen(struct fx *f)
{
	rlog_close(f->log);
	f->log = NULL;
	open_and_load(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f || !(f->dir = tmpdir_create("log")))
		return -1;
	path_join(f->path, sizeof f->path, f->dir, "raft");
	*state = f;
	open_and_load(f);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	rlog_close(f->log);
	free(f->snap.membership);
	tmpdir_destroy(f->dir);
	free(f);
	return 0;
}

static void payload(char *buf, size_t cap, uint64_t index, uint64_t term)
{
	snprintf(buf, cap, "i%llu-t%llu", (unsigned long long)index, (unsigned long long)term);
}

/* Writes entries from..to (inclusive) of the given term in one batch, after
 * truncating from truncate_from (0 = no truncation); hs may be NULL. */
static int write_run(struct fx *f, const struct rlog_hard_state *hs, uint64_t truncate_from,
		     uint64_t from, uint64_t to, uint64_t term)
{
	static char bufs[MAX_GOT][32];
	struct rlog_entry ents[MAX_GOT];
	size_t n = 0;
	for (uint64_t i = from; from && i <= to; i++, n++) {
		assert_true(n < MAX_GOT);
		payload(bufs[n], sizeof bufs[n], i, term);
		ents[n] = (struct rlog_entry){.index = i, .term = term, .type = (uint8_t)(i % 3),
					      .data = bufs[n], .len = strlen(bufs[n])};
	}
	return rlog_write(f->log, hs, truncate_from, ents, n);
}

static void append(struct fx *f, uint64_t from, uint64_t to, uint64_t term)
{
	assert_int_equal(write_run(f, NULL, 0, from, to, term), 0);
}

/* Checks f->got holds exactly entries from..to, entries up to term_change - 1
 * of term t1 and the rest of term t2. */
static void assert_got(struct fx *f, uint64_t from, uint64_t to, uint64_t t1,
		       uint64_t term_change, uint64_t t2)
{
	char want[32];
	assert_int_equal(f->n_got, from ? to - from + 1 : 0);
	for (size_t k = 0; k < f->n_got; k++) {
		uint64_t i = from + k, term = i < term_change ? t1 : t2;
		payload(want, sizeof want, i, term);
		assert_int_equal(f->got[k].index, i);
		assert_int_equal(f->got[k].term, term);
		assert_int_equal(f->got[k].type, i % 3);
		assert_int_equal(f->got[k].len, strlen(want));
		assert_memory_equal(f->got[k].data, want, f->got[k].len);
	}
}

static void assert_range(struct fx *f, uint64_t first, uint64_t last)
{
	assert_int_equal(rlog_first_index(f->log), first);
	assert_int_equal(rlog_last_index(f->log), last);
}

/* The first/last index the open log reports are those a reload finds. */
static void assert_reload_agrees(struct fx *f)
{
	uint64_t first = rlog_first_index(f->log), last = rlog_last_index(f->log);
	reopen(f);
	assert_range(f, first, last);
}

/* Deletes entry index straight from the closed LevelDB database. */
static void delete_entry_behind_the_logs_back(struct fx *f, uint64_t index)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	char *err = NULL, key[9];
	rlog_close(f->log);
	f->log = NULL;
	leveldb_t *db = leveldb_open(o, f->path, &err);
	assert_null(err);
	key[0] = 'e';
	put_be64((uint8_t *)key + 1, index);
	leveldb_delete(db, wo, key, sizeof key, &err);
	assert_null(err);
	leveldb_close(db);
	leveldb_writeoptions_destroy(wo);
	leveldb_options_destroy(o);
	assert_int_equal(rlog_open(f->path, &f->log), 0);
}

/* --- tests --------------------------------------------------------------- */

static void test_empty_log(void **state)
{
	/* A new log loads with zero hard state, no snapshot and no entries. */
	struct fx *f = *state;
	assert_int_equal(f->hs.term, 0);
	assert_int_equal(f->hs.vote, 0);
	assert_int_equal(f->snap.index, 0);
	assert_null(f->snap.membership);
	assert_int_equal(f->n_got, 0);
	assert_range(f, 0, 0);
}

static void test_append_load_round_trip(void **state)
{
	/* Appended entries load back in order with index, term, type and payload. */
	struct fx *f = *state;
	append(f, 1, 3, 1);
	append(f, 4, 5, 2);
	assert_range(f, 1, 5);
	assert_int_equal(load(f), 0);
	assert_got(f, 1, 5, 1, 4, 2);
	assert_range(f, 1, 5);
}

struct payload_check {
	const char *big;
	size_t big_len, n;
};

static int check_payloads(const struct rlog_entry *e, void *ud)
{
	struct payload_check *pc = ud;
	pc->n++;
	if (e->index == 1)
		return e->len == pc->big_len && memcmp(e->data, pc->big, e->len) == 0 ? 0 : -1;
	return e->len == 0 ? 0 : -1;
}

static void test_large_and_empty_payloads(void **state)
{
	/* Payloads larger than the write's stack buffer, and empty ones, round-trip. */
	struct fx *f = *state;
	struct payload_check pc = {.big_len = 100000};
	char *big = malloc(pc.big_len);
	assert_non_null(big);
	for (size_t i = 0; i < pc.big_len; i++)
		big[i] = (char)(i * 7);
	pc.big = big;
	struct rlog_entry ents[2] = {{.index = 1, .term = 1, .data = big, .len = pc.big_len},
				     {.index = 2, .term = 1, .data = NULL, .len = 0}};
	assert_int_equal(rlog_write(f->log, NULL, 0, ents, 2), 0);
	rlog_close(f->log);
	assert_int_equal(rlog_open(f->path, &f->log), 0);
	free(f->snap.membership);
	assert_int_equal(rlog_load(f->log, &f->hs, &f->snap, check_payloads, &pc), 0);
	assert_int_equal(pc.n, 2);
	free(big);
}

static void test_hard_state(void **state)
{
	/* The hard state is stored alone or with entries, the last write wins, and it survives reopen. */
	struct fx *f = *state;
	struct rlog_hard_state hs = {.term = 3, .vote = 2};
	assert_int_equal(rlog_write(f->log, &hs, 0, NULL, 0), 0);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->hs.term, 3);
	assert_int_equal(f->hs.vote, 2);

	hs = (struct rlog_hard_state){.term = 4, .vote = 0};
	assert_int_equal(write_run(f, &hs, 0, 1, 2, 4), 0);
	reopen(f);
	assert_int_equal(f->hs.term, 4);
	assert_int_equal(f->hs.vote, 0);
	assert_got(f, 1, 2, 4, 0, 4);
}

static void test_truncate_then_append(void **state)
{
	/* Truncating a suffix and appending in the same write replaces the conflicting entries. */
	struct fx *f = *state;
	append(f, 1, 5, 1);
	assert_int_equal(write_run(f, NULL, 3, 3, 4, 2), 0);
	assert_range(f, 1, 4);
	assert_int_equal(load(f), 0);
	assert_got(f, 1, 4, 1, 3, 2);
	assert_reload_agrees(f);
}

static void test_truncate_without_append(void **state)
{
	/* Truncation alone drops the suffix; dropping every entry leaves an empty log (0, 0). */
	struct fx *f = *state;
	append(f, 1, 5, 1);
	assert_int_equal(write_run(f, NULL, 4, 0, 0, 0), 0);
	assert_range(f, 1, 3);
	assert_reload_agrees(f);
	assert_got(f, 1, 3, 1, 0, 1);

	assert_int_equal(write_run(f, NULL, 1, 0, 0, 0), 0);
	assert_range(f, 0, 0);
	assert_reload_agrees(f);
	assert_int_equal(f->n_got, 0);
}

static void test_truncate_everything_after_compaction(void **state)
{
	/* After compaction, truncating every remaining entry leaves an empty log, as a reload sees it. */
	struct fx *f = *state;
	struct rlog_snapshot_meta snap = {.index = 3, .term = 1};
	append(f, 1, 6, 1);
	assert_int_equal(rlog_compact(f->log, &snap, 3), 0);
	assert_range(f, 4, 6);
	assert_int_equal(write_run(f, NULL, 4, 0, 0, 0), 0);
	assert_range(f, 0, 0);
	assert_reload_agrees(f);

	/* and appending after the snapshot starts the log again */
	append(f, 4, 5, 2);
	assert_range(f, 4, 5);
	assert_reload_agrees(f);
	assert_got(f, 4, 5, 2, 0, 2);
}

static void test_compaction(void **state)
{
	/* Compaction deletes the prefix up to the snapshot and stores the snapshot's index, term and membership. */
	struct fx *f = *state;
	struct rlog_snapshot_meta snap = {.index = 6, .term = 2, .membership = "members", .membership_len = 7};
	append(f, 1, 4, 1);
	append(f, 5, 10, 2);
	assert_int_equal(rlog_compact(f->log, &snap, 6), 0);
	assert_range(f, 7, 10);
	assert_int_equal(load(f), 0);
	assert_got(f, 7, 10, 2, 0, 2);
	assert_int_equal(f->snap.index, 6);
	assert_int_equal(f->snap.term, 2);
	assert_int_equal(f->snap.membership_len, 7);
	assert_memory_equal(f->snap.membership, "members", 7);
	assert_reload_agrees(f);
}

static void test_compaction_past_the_end(void **state)
{
	/* Compacting beyond the last entry (a snapshot from the leader) empties the
	 * log, and the next append starts right after the snapshot. */
	struct fx *f = *state;
	struct rlog_snapshot_meta snap = {.index = 20, .term = 3};
	append(f, 1, 5, 1);
	assert_int_equal(rlog_compact(f->log, &snap, 20), 0);
	assert_range(f, 0, 0);
	assert_reload_agrees(f);
	assert_int_equal(f->snap.index, 20);
	assert_int_equal(f->snap.membership_len, 0);
	append(f, 21, 22, 3);
	assert_range(f, 21, 22);
	assert_reload_agrees(f);
	assert_got(f, 21, 22, 3, 0, 3);
}

static void test_reopen_keeps_everything(void **state)
{
	/* Close and reopen keep hard state, snapshot metadata and entries. */
	struct fx *f = *state;
	struct rlog_hard_state hs = {.term = 7, .vote = 3};
	struct rlog_snapshot_meta snap = {.index = 2, .term = 7, .membership = "m", .membership_len = 1};
	assert_int_equal(write_run(f, &hs, 0, 1, 6, 7), 0);
	assert_int_equal(rlog_compact(f->log, &snap, 2), 0);
	reopen(f);
	assert_int_equal(f->hs.term, 7);
	assert_int_equal(f->hs.vote, 3);
	assert_int_equal(f->snap.index, 2);
	assert_int_equal(f->snap.term, 7);
	assert_memory_equal(f->snap.membership, "m", 1);
	assert_got(f, 3, 6, 7, 0, 7);
	assert_range(f, 3, 6);
}

static void test_gap_detected(void **state)
{
	/* A hole in the entries (one deleted behind the log's back) fails the load with KVFS_ECORRUPT. */
	struct fx *f = *state;
	append(f, 1, 5, 1);
	delete_entry_behind_the_logs_back(f, 3);
	assert_int_equal(load(f), KVFS_ECORRUPT);
}

static void test_gap_after_snapshot_detected(void **state)
{
	/* A hole between the snapshot and the first entry fails the load with KVFS_ECORRUPT. */
	struct fx *f = *state;
	struct rlog_snapshot_meta snap = {.index = 2, .term = 1};
	append(f, 1, 5, 1);
	assert_int_equal(rlog_compact(f->log, &snap, 2), 0);
	delete_entry_behind_the_logs_back(f, 3);
	assert_int_equal(load(f), KVFS_ECORRUPT);
}

static void test_callback_stops_load(void **state)
{
	/* A non-zero callback return stops the load and is returned. */
	struct fx *f = *state;
	append(f, 1, 5, 1);
	f->stop_after = 2;
	assert_int_equal(load(f), -42);
	assert_int_equal(f->n_got, 2);
}

static void test_sync_counter(void **state)
{
	/* Every write and every compaction is one synced batch, counted once. */
	struct fx *f = *state;
	struct rlog_hard_state hs = {.term = 1};
	struct rlog_snapshot_meta snap = {.index = 2, .term = 1};
	uint64_t before = rlog_sync_count(f->log);
	append(f, 1, 10, 1);                                          /* 1 */
	assert_int_equal(rlog_write(f->log, &hs, 0, NULL, 0), 0);     /* 2 */
	assert_int_equal(write_run(f, &hs, 5, 5, 6, 2), 0);           /* 3 */
	assert_int_equal(rlog_compact(f->log, &snap, 2), 0);          /* 4 */
	assert_int_equal(rlog_sync_count(f->log) - before, 4);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_empty_log),
		T(test_append_load_round_trip),
		T(test_large_and_empty_payloads),
		T(test_hard_state),
		T(test_truncate_then_append),
		T(test_truncate_without_append),
		T(test_truncate_everything_after_compaction),
		T(test_compaction),
		T(test_compaction_past_the_end),
		T(test_reopen_keeps_everything),
		T(test_gap_detected),
		T(test_gap_after_snapshot_detected),
		T(test_callback_stops_load),
		T(test_sync_counter),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
