/*
 * Unit tests for the durable Raft log (store/log.h): entries, hard state and
 * snapshot metadata come back from rlog_load as written, across close and
 * reopen; truncation and compaction keep the in-memory first/last index equal
 * to what a reload finds; a hole in the entries is reported as corruption;
 * every write is one synced batch, counted; a write cut short at the end of
 * the last segment is dropped at open while damage anywhere else is
 * corruption; segments rotate and compaction deletes the ones it covers; a
 * log of the old LevelDB format and a second opener are refused.
 *
 * Each test gets a fresh log in its own temporary directory. Helpers:
 * append() writes a run of entries whose payload names their index and term,
 * load() reads everything back into f->got, reopen() closes and reloads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

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
	uint64_t snap_at_first, term_at_first; /* f->snap.index, f->hs.term at the first callback */
};

/* --- scenario helpers ---------------------------------------------------- */

static int collect(const struct rlog_entry *e, void *ud)
{
	struct fx *f = ud;
	if (f->n_got == MAX_GOT)
		return -1;
	if (!f->n_got) {
		f->snap_at_first = f->snap.index;
		f->term_at_first = f->hs.term;
	}
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

static bool set_immutable_path(const char *path, bool on);

static int teardown(void **state)
{
	struct fx *f = *state;
	rlog_close(f->log);
	/* A test that failed while a segment was immutable
	 * (test_segment_that_cannot_be_deleted_holds_back_later_ones) must not
	 * leave it behind. */
	DIR *d = opendir(f->path);
	struct dirent *de;
	char path[4096 + 300];
	while (d && (de = readdir(d))) {
		snprintf(path, sizeof path, "%s/%s", f->path, de->d_name);
		if (de->d_type == DT_REG)
			set_immutable_path(path, false);
	}
	if (d)
		closedir(d);
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

/* Names of the segment files, sorted; returns how many (at most 16). */
static int segments(struct fx *f, char names[16][64])
{
	DIR *d = opendir(f->path);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strlen(de->d_name) == 20 && strcmp(de->d_name + 16, ".seg") == 0 && n < 16)
			snprintf(names[n++], 64, "%s", de->d_name);
	closedir(d);
	qsort(names, (size_t)n, 64, (int (*)(const void *, const void *))strcmp);
	return n;
}

/* Size of segment file k (in sorted order). */
static off_t segment_size(struct fx *f, int k, char *path, size_t cap)
{
	char names[16][64];
	struct stat st;
	assert_true(k < segments(f, names));
	snprintf(path, cap, "%s/%s", f->path, names[k]);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Whether segment k (in sorted order) holds no frame: the magic, then zeros. */
static bool segment_is_empty(struct fx *f, int k)
{
	char path[4200];
	off_t size = segment_size(f, k, path, sizeof path);
	unsigned char *all = malloc((size_t)size + 1);
	int fd = open(path, O_RDONLY);
	assert_non_null(all);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, all, (size_t)size, 0), size);
	close(fd);
	bool empty = size >= 8 && memcmp(all, "kvfslog1", 8) == 0;
	for (off_t i = 8; empty && i < size; i++)
		empty = all[i] == 0;
	free(all);
	return empty;
}

/* Whether file path has extents that are allocated but not written
 * (fallocate): 1, 0, or -1 when the filesystem cannot tell (FIEMAP). */
static int has_unwritten_extents(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	size_t n = 64;
	struct fiemap *fm = calloc(1, sizeof *fm + n * sizeof(struct fiemap_extent));
	assert_non_null(fm);
	fm->fm_length = FIEMAP_MAX_OFFSET;
	fm->fm_flags = FIEMAP_FLAG_SYNC;
	fm->fm_extent_count = (uint32_t)n;
	int rc = ioctl(fd, FS_IOC_FIEMAP, fm) < 0 ? -1 : 0;
	for (uint32_t i = 0; rc == 0 && i < fm->fm_mapped_extents; i++)
		if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN)
			rc = 1;
	free(fm);
	close(fd);
	return rc;
}

/* Segments that hold frames (not counting an empty spare prepared ahead). */
static int data_segments(struct fx *f)
{
	char names[16][64];
	int n = segments(f, names), data = 0;
	for (int k = 0; k < n; k++)
		data += !segment_is_empty(f, k);
	return data;
}

/* Changes (XOR 0xff) the byte at offset off (negative: from the end) of
 * segment k with the log closed, then reopens it: returns rlog_open's code. */
static int damage_and_reopen(struct fx *f, int k, off_t off)
{
	char path[4200];
	rlog_close(f->log);
	f->log = NULL;
	off_t size = segment_size(f, k, path, sizeof path);
	if (off < 0)
		off += size;
	int fd = open(path, O_RDWR);
	unsigned char c;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0xff;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
	return rlog_open(f->path, &f->log);
}

/* With the log closed, cuts delta bytes off the end of the data in the last
 * segment that holds frames (delta < 0), or writes garbage right after it
 * (delta > 0): the two shapes a write cut short by a crash leaves. Segments
 * are preallocated, so the data ends at the last non-zero byte (test
 * payloads end in one). */
static void resize_last_segment(struct fx *f, off_t delta)
{
	char names[16][64], path[4200];
	rlog_close(f->log);
	f->log = NULL;
	int n = segments(f, names);
	while (n > 1 && segment_is_empty(f, n - 1))
		n--;
	off_t end = segment_size(f, n - 1, path, sizeof path);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char *all = malloc((size_t)end);
	assert_non_null(all);
	assert_int_equal(pread(fd, all, (size_t)end, 0), end);
	while (end > 0 && all[end - 1] == 0)
		end--;
	free(all);
	if (delta < 0)
		assert_int_equal(ftruncate(fd, end + delta), 0);
	else
		assert_int_equal(pwrite(fd, "\x07garbage-of-a-torn-write", (size_t)delta, end),
				 delta);
	close(fd);
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

/* Entry i's payload in test_direct_and_buffered_writes_interleave. */
static uint8_t sized_byte(uint64_t i, size_t j)
{
	return (uint8_t)(i * 31 + j * 7 + 1);
}

struct sized_check {
	const size_t *sizes;
	size_t n;
};

static int check_sized(const struct rlog_entry *e, void *ud)
{
	struct sized_check *c = ud;
	assert_int_equal(e->index, c->n + 1);
	assert_int_equal(e->len, c->sizes[c->n]);
	for (size_t j = 0; j < e->len; j++)
		if (((const uint8_t *)e->data)[j] != sized_byte(e->index, j))
			fail_msg("entry %llu byte %zu differs", (unsigned long long)e->index, j);
	c->n++;
	return 0;
}

/* Closes and reopens f's log and loads it: entries 1..n, entry i of
 * sizes[i-1] bytes of sized_byte(i, ...). */
static void assert_loads_sized(struct fx *f, const size_t *sizes, size_t n)
{
	rlog_close(f->log);
	assert_int_equal(rlog_open(f->path, &f->log), 0);
	struct sized_check c = {.sizes = sizes};
	free(f->snap.membership);
	assert_int_equal(rlog_load(f->log, &f->hs, &f->snap, check_sized, &c), 0);
	assert_int_equal(c.n, n);
}

#define FRAME_OVERHEAD 34 /* frame header 12, record header 5, entry header 17 */
#define EXACT ((size_t)-1) /* a payload that ends its frame on a 4 KiB boundary */

static void test_direct_and_buffered_writes_interleave(void **state)
{
	/* Frames of many sizes written directly (each rewriting the last
	 * partial block in front of it, kept in memory) or through the page
	 * cache, with reopens in between (which read that block back from the
	 * file): frames that end exactly on a 4 KiB block and the ones that
	 * then start on one, frames of several 256 KiB chunks, and a switch to
	 * a spare segment (zeros) written directly. All load back byte for
	 * byte. A file system that takes O_DIRECT gets direct writes. */
	struct fx *f = *state;
	static const struct {
		size_t size;
		bool buffered, reopen;
	} plan[] = {
	    {1, false, false},	     {100, false, true},	{EXACT, false, false},
	    {4096, false, false},    {4097, true, true},	{0, false, false},
	    {3000, true, false},     {EXACT, false, true},	{9000, false, false},
	    {1 << 20, false, false}, {(4u << 20) + 3, false, false}, {17, false, false},
	    {3u << 20, false, false}, {4095, false, false},	{EXACT, false, true},
	    {300, false, false},
	};
	size_t n = sizeof plan / sizeof *plan, sizes[sizeof plan / sizeof *plan];
	char probe[4200];
	snprintf(probe, sizeof probe, "%s/probe", f->path);
	int pfd = open(probe, O_WRONLY | O_CREAT | O_DIRECT, 0600);
	bool direct_ok = pfd >= 0;
	if (pfd >= 0) {
		close(pfd);
		unlink(probe);
	} else {
		print_message("(%s takes no O_DIRECT: only writes through the page cache "
			      "are tested)\n",
			      f->path);
	}
	assert_int_equal(rlog_direct(f->log), direct_ok);
	uint8_t *buf = malloc(5u << 20);
	assert_non_null(buf);
	uint64_t off = 8, spares = 0; /* after the magic */
	for (size_t k = 0; k < n; k++) {
		uint64_t i = k + 1;
		if (off >= (8u << 20))
			off = 8; /* the log moves to the next segment */
		sizes[k] = plan[k].size;
		if (sizes[k] == EXACT)
			sizes[k] = (size_t)((8192 - (off + FRAME_OVERHEAD) % 4096) % 4096);
		if (plan[k].buffered) {
			rlog_set_buffered(f->log);
			assert_false(rlog_direct(f->log));
		}
		for (size_t j = 0; j < sizes[k]; j++)
			buf[j] = sized_byte(i, j);
		struct rlog_entry e = {.index = i, .term = 1, .data = buf, .len = sizes[k]};
		if (k == 13)
			spares = rlog_spares_used(f->log);
		assert_int_equal(rlog_write(f->log, NULL, 0, &e, 1), 0);
		if (k == 13) /* the first frame of the next segment, a spare */
			assert_int_equal(rlog_spares_used(f->log), spares + 1);
		off += FRAME_OVERHEAD + sizes[k];
		if (plan[k].size == EXACT)
			assert_int_equal(off % 4096, 0);
		if (k == 2 || k == 7) /* one segment so far: its size */
			assert_int_equal(rlog_disk_size(f->log), off);
		if (plan[k].reopen) {
			reopen(f);
			assert_int_equal(rlog_direct(f->log), direct_ok);
		}
	}
	free(buf);
	assert_loads_sized(f, sizes, n);
}

/* pwrite as the log calls it (linked with -Wl,--wrap=pwrite and
 * --wrap=pwrite64, whichever the build's headers name): after refuse_after
 * more writes to a file opened for direct I/O, each further one fails with
 * EINVAL, as on a device whose alignment is stricter than the log's 4 KiB,
 * or a file system that takes O_DIRECT at fcntl and refuses the writes.
 * Off (negative) outside test_refused_direct_write. */
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __real_pwrite64(int fd, const void *buf, size_t n, off64_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off64_t off);
static int refuse_after = -1;
static unsigned refused;

static bool refuse(int fd)
{
	int fl = refuse_after >= 0 ? fcntl(fd, F_GETFL) : 0;
	if (fl > 0 && (fl & O_DIRECT) && refuse_after-- == 0) {
		refuse_after = 0;
		refused++;
		errno = EINVAL;
		return true;
	}
	return false;
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return refuse(fd) ? -1 : __real_pwrite(fd, buf, n, off);
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	return refuse(fd) ? -1 : __real_pwrite64(fd, buf, n, off);
}

static void test_refused_direct_write(void **state)
{
	/* A direct write refused with EINVAL is written again through the
	 * page cache, and so are the writes after it, into the next segment
	 * too, until the log is reopened (which tries direct writes again):
	 * the refused frame and every other one load back byte for byte.
	 * Refused at a frame's first write, and after the first of its 256 KiB
	 * chunks (the whole frame is then written again through the page
	 * cache, over the chunk already written). */
	struct fx *f = *state;
	if (!rlog_direct(f->log))
		skip(); /* the file system takes no O_DIRECT: nothing to refuse */
	static const size_t sizes[] = {100, 5000, 1, (1u << 20) + 5, 300, 4096, 7,
				       3u << 20, 3u << 20, 3u << 20, 10};
	static const int refuse_at[] = {-1, 0, -1, 1, -1, -1, 0, -1, -1, -1, -1};
	static const bool reopen_after[] = {false, false, true, false, true, false,
					    false, false, false, false, false};
	size_t n = sizeof sizes / sizeof *sizes;
	uint8_t *buf = malloc(3u << 20);
	assert_non_null(buf);
	uint64_t written = 8; /* the segment's magic */
	for (size_t k = 0; k < n; k++) {
		uint64_t i = k + 1;
		for (size_t j = 0; j < sizes[k]; j++)
			buf[j] = sized_byte(i, j);
		struct rlog_entry e = {.index = i, .term = 1, .data = buf, .len = sizes[k]};
		bool was_direct = rlog_direct(f->log);
		if (refuse_at[k] >= 0)
			assert_true(was_direct);
		if (k == n - 1) /* the three 3 MiB frames filled the segment */
			assert_true(written >= (8u << 20));
		refused = 0;
		refuse_after = refuse_at[k];
		int rc = rlog_write(f->log, NULL, 0, &e, 1);
		refuse_after = -1;
		assert_int_equal(rc, 0);
		written += FRAME_OVERHEAD + sizes[k];
		if (refuse_at[k] >= 0) {
			assert_int_equal(refused, 1);
			assert_false(rlog_direct(f->log)); /* and stays so */
		} else {
			assert_int_equal(refused, 0);
			assert_int_equal(rlog_direct(f->log), was_direct);
		}
		if (reopen_after[k]) {
			reopen(f);
			assert_true(rlog_direct(f->log));
		}
	}
	free(buf);
	assert_loads_sized(f, sizes, n);
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
	/* Close and reopen keep hard state, snapshot metadata and entries; a load
	 * fills the hard state and snapshot before its first callback. */
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
	/* the hard state and snapshot are there before the first entry arrives */
	assert_int_equal(f->snap_at_first, 2);
	assert_int_equal(f->term_at_first, 7);
}

static void test_gap_detected(void **state)
{
	/* A hole in the entries (entry 4 never written) fails the load with KVFS_ECORRUPT. */
	struct fx *f = *state;
	append(f, 1, 3, 1);
	append(f, 5, 6, 1);
	assert_int_equal(load(f), KVFS_ECORRUPT);
	rlog_close(f->log);
	f->log = NULL;
	assert_int_equal(rlog_open(f->path, &f->log), KVFS_ECORRUPT);
}

static void test_gap_after_snapshot_detected(void **state)
{
	/* A hole between the snapshot and the first entry fails the load with KVFS_ECORRUPT. */
	struct fx *f = *state;
	struct rlog_snapshot_meta snap = {.index = 2, .term = 1};
	append(f, 1, 5, 1);
	assert_int_equal(rlog_compact(f->log, &snap, 5), 0);
	append(f, 7, 8, 1);
	assert_int_equal(load(f), KVFS_ECORRUPT);
}

static void test_torn_tail_dropped(void **state)
{
	/* A write cut short at the end of the last segment (a crash before its
	 * fdatasync returned, so never acknowledged) is dropped at open: every
	 * complete write before it loads, and the log takes new writes. */
	struct fx *f = *state;
	struct rlog_hard_state hs = {.term = 2, .vote = 1};
	assert_int_equal(write_run(f, &hs, 0, 1, 5, 2), 0);
	append(f, 6, 8, 2);
	resize_last_segment(f, -3); /* the last write loses its end: all of it goes */
	assert_int_equal(rlog_open(f->path, &f->log), 0);
	assert_int_equal(load(f), 0);
	assert_got(f, 1, 5, 2, 0, 2);
	assert_int_equal(f->hs.term, 2);
	append(f, 6, 7, 3);
	reopen(f);
	assert_got(f, 1, 7, 2, 6, 3);

	resize_last_segment(f, 10); /* garbage after the last record */
	assert_int_equal(rlog_open(f->path, &f->log), 0);
	assert_int_equal(load(f), 0);
	assert_got(f, 1, 7, 2, 6, 3);
	assert_reload_agrees(f);

	/* a new segment whose creation was cut short (empty, part of the
	 * magic, zeros) is taken over; a leftover .seg.tmp is removed */
	char path[4200];
	const char *shapes[] = {"", "kvfs", "\0\0\0\0\0\0\0\0\0\0\0\0"};
	const size_t lens[] = {0, 4, 12};
	for (int k = 0; k < 3; k++) {
		rlog_close(f->log);
		f->log = NULL;
		snprintf(path, sizeof path, "%s/00000000000000%02x.seg", f->path, 0x70 + k);
		FILE *fp = fopen(path, "w");
		assert_non_null(fp);
		assert_int_equal(fwrite(shapes[k], 1, lens[k], fp), lens[k]);
		fclose(fp);
		snprintf(path, sizeof path, "%s/00000000000000%02x.seg.tmp", f->path, 0x71 + k);
		fp = fopen(path, "w");
		assert_non_null(fp);
		fclose(fp);
		assert_int_equal(rlog_open(f->path, &f->log), 0);
		assert_int_equal(access(path, F_OK), -1);
		assert_int_equal(load(f), 0);
		assert_got(f, 1, 7 + (uint64_t)k, 2, 6, 3);
		append(f, 8 + (uint64_t)k, 8 + (uint64_t)k, 3);
		reopen(f);
		assert_got(f, 1, 8 + (uint64_t)k, 2, 6, 3);
	}
}

static void test_torn_frame_holding_frames_dropped(void **state)
{
	/* A cut-short write whose payload (a client's value) holds bytes that
	 * look like a valid frame is still a cut-short write, not damage. */
	struct fx *f = *state;
	char names[16][64], path[4200];
	append(f, 1, 1, 1);
	assert_true(segments(f, names) == 1);
	snprintf(path, sizeof path, "%s/%s", f->path, names[0]);
	unsigned char frame[256];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, frame, sizeof frame, 8), (ssize_t)sizeof frame);
	close(fd);
	size_t flen = 12 + (frame[4] | frame[5] << 8); /* the first frame, whole */
	assert_true(flen < sizeof frame);
	char value[600];
	memset(value, 'v', sizeof value);
	memcpy(value + 100, frame, flen);
	struct rlog_entry e = {.index = 2, .term = 1, .data = value, .len = sizeof value};
	assert_int_equal(rlog_write(f->log, NULL, 0, &e, 1), 0);
	resize_last_segment(f, -3);
	assert_int_equal(rlog_open(f->path, &f->log), 0);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->n_got, 1);
	assert_int_equal(f->got[0].index, 1);
}

static void test_damage_is_corruption(void **state)
{
	/* A damaged record with a valid one after it, or damage in an older
	 * segment, is corruption (KVFS_ECORRUPT), never silently dropped. */
	struct fx *f = *state;
	append(f, 1, 3, 1);
	append(f, 4, 6, 1);
	/* offset 8 + 4 + 1: inside the first frame's length field */
	assert_int_equal(damage_and_reopen(f, 0, 13), KVFS_ECORRUPT);
	assert_int_equal(damage_and_reopen(f, 0, 13), 0); /* undone */
	assert_int_equal(damage_and_reopen(f, 0, 30), KVFS_ECORRUPT); /* a payload byte */
	assert_int_equal(damage_and_reopen(f, 0, 30), 0);
	assert_int_equal(damage_and_reopen(f, 0, 0), KVFS_ECORRUPT); /* the magic */
	assert_int_equal(damage_and_reopen(f, 0, 0), 0);
	assert_int_equal(load(f), 0);
	assert_got(f, 1, 6, 1, 0, 1);
}

/* A payload of len bytes for entry i. */
static struct rlog_entry big_entry(char *buf, size_t len, uint64_t i)
{
	memset(buf, (int)('a' + i % 26), len);
	return (struct rlog_entry){.index = i, .term = 1, .data = buf, .len = len};
}

static void test_segments_rotate_and_compaction_deletes_them(void **state)
{
	/* Writes go to a new segment once one reaches 8 MiB; compaction deletes
	 * the old segments whose entries it covers (never the current one) and
	 * the disk size follows; everything still loads, across reopen. */
	struct fx *f = *state;
	char names[16][64];
	size_t len = 1u << 20;
	char *buf = malloc(len);
	assert_non_null(buf);
	for (uint64_t i = 1; i <= 30; i++) {
		struct rlog_entry e = big_entry(buf, len, i);
		assert_int_equal(rlog_write(f->log, NULL, 0, &e, 1), 0);
	}
	int n = segments(f, names);
	assert_true(n >= 3);
	assert_true(rlog_disk_size(f->log) >= 30 * len);
	/* damage in an older segment is corruption even at its end */
	assert_int_equal(damage_and_reopen(f, 0, -1), KVFS_ECORRUPT);
	assert_int_equal(damage_and_reopen(f, 0, -1), 0);
	struct rlog_snapshot_meta snap = {.index = 25, .term = 1, .membership = "m",
					  .membership_len = 1};
	assert_int_equal(rlog_compact(f->log, &snap, 25), 0);
	rlog_settle(f->log); /* the spare thread deletes them */
	assert_true(segments(f, names) < n);
	assert_true(rlog_disk_size(f->log) < 16 * len);
	assert_range(f, 26, 30);
	reopen(f);
	assert_int_equal(f->snap.index, 25);
	assert_int_equal(f->n_got, 5);
	assert_int_equal(f->got[0].index, 26);
	assert_int_equal(f->got[4].index, 30);

	/* everything compacted: only the current segment is left (and the
	 * spare prepared ahead of it); closing the log right after the
	 * compaction finishes the deletions first */
	snap.index = 30;
	assert_int_equal(rlog_compact(f->log, &snap, 30), 0);
	reopen(f);
	assert_int_equal(data_segments(f), 1);
	assert_int_equal(f->n_got, 0);
	assert_int_equal(f->snap.index, 30);
	free(buf);
}

/* Writes entries from..to of 1 MiB each, one write each. */
static void append_big(struct fx *f, uint64_t from, uint64_t to)
{
	size_t len = 1u << 20;
	char *buf = malloc(len);
	assert_non_null(buf);
	for (uint64_t i = from; i <= to; i++) {
		struct rlog_entry e = big_entry(buf, len, i);
		assert_int_equal(rlog_write(f->log, NULL, 0, &e, 1), 0);
	}
	free(buf);
}

/* Sets or clears the immutable attribute of a file; false where the file
 * system or the process cannot. */
static bool set_immutable_path(const char *path, bool on)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), flags = 0;
	if (fd < 0)
		return false;
	bool ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
	flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
	ok = ok && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
	close(fd);
	return ok;
}

/* The same for segment file k (sorted order). */
static bool set_immutable(struct fx *f, int k, bool on)
{
	char names[16][64], path[4096 + 64];
	assert_true(k < segments(f, names));
	snprintf(path, sizeof path, "%s/%s", f->path, names[k]);
	return set_immutable_path(path, on);
}

/* Compacts up to index and waits for the spare thread's deletions. */
static void compact_settled(struct fx *f, struct rlog_snapshot_meta *snap, uint64_t index)
{
	snap->index = index;
	assert_int_equal(rlog_compact(f->log, snap, index), 0);
	rlog_settle(f->log);
}

static void test_segment_that_cannot_be_deleted_holds_back_later_ones(void **state)
{
	/* Compaction hands the segments it lets go to the spare thread, which
	 * deletes them oldest first. One it cannot delete stays, and so does
	 * every later one: a hole between the segments left would make the
	 * next open fail. They load after a reopen, and go once deletable. */
	struct fx *f = *state;
	char names[16][64];
	append_big(f, 1, 30); /* 1 MiB entries in 8 MiB segments: at least 4 */
	int n = segments(f, names);
	assert_true(n >= 4);
	if (!set_immutable(f, 0, true)) {
		print_message("cannot make a file immutable here: skipped\n");
		return;
	}
	struct rlog_snapshot_meta snap = {.term = 1, .membership = "m", .membership_len = 1};
	compact_settled(f, &snap, 30);
	assert_true(segments(f, names) >= n); /* none deleted (a spare may be new) */
	/* the next compaction tries again, even one that lets no segment go */
	assert_true(set_immutable(f, 0, false));
	append_big(f, 31, 31);
	compact_settled(f, &snap, 31);
	assert_int_equal(data_segments(f), 1);
	/* and one that stays there loads after a reopen */
	append_big(f, 32, 50);
	assert_true(set_immutable(f, 0, true));
	compact_settled(f, &snap, 50);
	reopen(f);
	assert_int_equal(f->snap.index, 50);
	assert_int_equal(f->n_got, 0);
	assert_true(set_immutable(f, 0, false));
	append_big(f, 51, 52);
	compact_settled(f, &snap, 52);
	assert_int_equal(data_segments(f), 1);
	reopen(f);
	assert_int_equal(f->snap.index, 52);
	assert_int_equal(f->n_got, 0);
}

static void test_next_segment_prepared_ahead(void **state)
{
	/* Once the current segment is half full the next one is prepared
	 * ahead (magic and zeros, under its final name); the switch takes it
	 * up. Left empty by a close, it is where the reopened log writes. */
	struct fx *f = *state;
	char names[16][64];
	append_big(f, 1, 5); /* past 4 MiB: the spare is asked for */
	rlog_close(f->log);  /* waits for it */
	f->log = NULL;
	assert_int_equal(segments(f, names), 2);
	assert_false(segment_is_empty(f, 0));
	assert_true(segment_is_empty(f, 1));
	char path[4200];
	assert_true(segment_size(f, 1, path, sizeof path) >= (8 << 20));
	/* written with zeros, not only allocated (where the filesystem says) */
	assert_int_not_equal(has_unwritten_extents(path), 1);
	open_and_load(f);
	assert_int_equal(f->n_got, 5);
	append_big(f, 6, 6);
	assert_int_equal(data_segments(f), 2); /* written into the spare */
	append_big(f, 7, 20);                  /* seg 2 fills: its spare is taken */
	assert_true(rlog_spares_used(f->log) >= 1);
	assert_int_equal(data_segments(f), 3); /* and seg 4 may be on its way */
	reopen(f);
	assert_int_equal(f->n_got, 20);
	assert_int_equal(f->got[0].index, 1);
	assert_int_equal(f->got[19].index, 20);
}

static void test_torn_tail_before_a_spare(void **state)
{
	/* A write cut short in the segment written last, with the empty spare
	 * prepared after it, is still a write cut short: dropped at open, and
	 * the log goes on in the spare. Damage in it (a valid frame after the
	 * bad one) is still corruption. */
	struct fx *f = *state;
	append_big(f, 1, 5);
	append(f, 6, 8, 1);
	append(f, 9, 9, 1);
	resize_last_segment(f, -3); /* closes: the spare is on disk */
	assert_int_equal(data_segments(f), 1);
	assert_int_equal(rlog_open(f->path, &f->log), 0);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->n_got, 8);
	assert_int_equal(f->got[7].index, 8);
	append(f, 9, 10, 2);
	reopen(f);
	assert_int_equal(f->n_got, 10);
	assert_int_equal(f->got[9].term, 2);
	assert_int_equal(data_segments(f), 2);

	/* segment 0's last frame, now that segment 1 holds frames */
	assert_int_equal(damage_and_reopen(f, 0, -10), KVFS_ECORRUPT);
	assert_int_equal(damage_and_reopen(f, 0, -10), 0); /* undone */
	assert_int_equal(load(f), 0);
	assert_int_equal(f->n_got, 10);
}

static void test_hard_state_survives_segment_deletion(void **state)
{
	/* The hard state written in a segment that compaction deletes is still there. */
	struct fx *f = *state;
	struct rlog_hard_state hs = {.term = 9, .vote = 2};
	size_t len = 1u << 20;
	char *buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(rlog_write(f->log, &hs, 0, NULL, 0), 0);
	for (uint64_t i = 1; i <= 20; i++) {
		struct rlog_entry e = big_entry(buf, len, i);
		assert_int_equal(rlog_write(f->log, NULL, 0, &e, 1), 0);
	}
	struct rlog_snapshot_meta snap = {.index = 20, .term = 9};
	assert_int_equal(rlog_compact(f->log, &snap, 20), 0);
	reopen(f);
	assert_int_equal(f->hs.term, 9);
	assert_int_equal(f->hs.vote, 2);
	free(buf);
}

static void test_refuses_old_format_and_second_opener(void **state)
{
	/* A LevelDB-format log (a CURRENT file) is refused with KVFS_ECONFIG, and
	 * a log already open is refused to a second opener (KVFS_ESTORAGE). */
	struct fx *f = *state;
	struct rlog *other = NULL;
	char path[4200];
	assert_int_equal(rlog_open(f->path, &other), KVFS_ESTORAGE);
	rlog_close(f->log);
	f->log = NULL;
	snprintf(path, sizeof path, "%s/CURRENT", f->path);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(rlog_open(f->path, &f->log), KVFS_ECONFIG);
	assert_null(f->log);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rlog_open(f->path, &f->log), 0);
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
		T(test_direct_and_buffered_writes_interleave),
		T(test_refused_direct_write),
		T(test_hard_state),
		T(test_truncate_then_append),
		T(test_truncate_without_append),
		T(test_truncate_everything_after_compaction),
		T(test_compaction),
		T(test_compaction_past_the_end),
		T(test_reopen_keeps_everything),
		T(test_gap_detected),
		T(test_gap_after_snapshot_detected),
		T(test_torn_tail_dropped),
		T(test_torn_frame_holding_frames_dropped),
		T(test_damage_is_corruption),
		T(test_segments_rotate_and_compaction_deletes_them),
		T(test_segment_that_cannot_be_deleted_holds_back_later_ones),
		T(test_next_segment_prepared_ahead),
		T(test_torn_tail_before_a_spare),
		T(test_hard_state_survives_segment_deletion),
		T(test_refuses_old_format_and_second_opener),
		T(test_callback_stops_load),
		T(test_sync_counter),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
