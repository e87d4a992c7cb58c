/*
 * The durable Raft log: an append-only stream of checksummed records in
 * segment files (layout in log.h). One rlog_write is one write(2) of all its
 * records and one fdatasync: the node loop hands it everything one turn
 * produced, which is the group commit that keeps fsyncs per write far below
 * one. Nothing is written twice: compaction appends a snapshot record and
 * deletes whole segments that hold only entries it covers.
 *
 * Replaying the stream in order rebuilds the state: an entry record appends,
 * a truncate record drops entries >= its index, a snapshot record replaces
 * the snapshot metadata and drops the entries it covers, the last hard-state
 * record wins. Deleting the oldest segments is therefore safe as long as
 * the current hard state and snapshot are recorded in a later segment
 * (compaction writes both before deleting anything) and every entry in the
 * deleted segments is covered by the snapshot.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "store/log.h"

#define SEG_MAGIC "kvfslog1"
#define SEG_MAGIC_LEN 8
#define SEG_TARGET (8u << 20) /* a new segment once the current one is this big */
#define FRAME_HEADER 12	      /* payload crc32c, payload length, crc32c of those 8 */
#define FRAME_MAX (1u << 30)  /* sanity bound on one frame's payload */
#define REC_HEADER 5	      /* type, payload length */
#define DIO_ALIGN 4096	      /* offset, length and memory alignment of direct writes */
#define DIO_CHUNK (256u << 10) /* the most a direct pwrite takes (multiple of DIO_ALIGN) */
_Static_assert(DIO_CHUNK % DIO_ALIGN == 0, "DIO_CHUNK must be whole blocks");

enum { REC_ENTRY = 1, REC_HARD_STATE = 2, REC_TRUNCATE = 3, REC_SNAPSHOT = 4 };

struct seg {
	uint64_t seq;
	uint64_t size;
	uint64_t max_index; /* highest entry index written in it (0: none) */
};

/* The next segment, prepared ahead by a thread of its own (see new_segment),
 * which also deletes the segments a compaction let go (rlog_compact). */
struct spare {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started, stop, busy, failed;
	uint64_t want;	 /* seq asked for, not taken up by the thread yet (0: none) */
	uint64_t seq;	 /* seq of the ready spare, whose fd is fd */
	int fd;		 /* -1: none ready */
	uint64_t taken;	 /* spares used (tests) */
	struct seg *doomed; /* segments to delete, strictly oldest first */
	size_t n_doomed, cap_doomed;
	bool deleting; /* the thread is deleting doomed[0] */
	bool stuck;    /* doomed[0] could not be deleted: again at the next compaction */
};

struct rlog {
	char *path;
	int dirfd, lockfd, fd; /* fd: the last segment, written at its end */
	struct seg *segs;
	size_t n_segs, cap_segs;
	uint64_t first, last;
	struct rlog_hard_state hs; /* the last one written, rewritten by compaction */
	bool failed;		   /* a write failed: refuse further writes */
	struct byte_buf rec;	   /* records of the write being built */
	uint64_t syncs;		   /* atomic */
	uint64_t disk_bytes;	   /* atomic */
	struct spare spare;
	bool direct;	      /* fd takes direct writes (write_frame); atomic (rlog_direct) */
	bool buffered;	      /* never use direct writes (rlog_set_buffered, or they failed) */
	uint8_t *dbuf;	      /* DIO_CHUNK bytes, DIO_ALIGN-aligned; while direct, its first
				 size % DIO_ALIGN bytes are the current segment's last
				 partial block */
};

/* ---- segments ---- */

static void seg_name(char *buf, size_t len, uint64_t seq)
{
	snprintf(buf, len, "%016" PRIx64 ".seg", seq);
}

static int seg_parse_name(const char *name, uint64_t *seq)
{
	char *end;
	if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
		return -1;
	errno = 0;
	*seq = strtoull(name, &end, 16);
	return errno || end != name + 16 ? -1 : 0;
}

static int seq_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int push_seg(struct rlog *l, uint64_t seq, uint64_t size)
{
	if (array_grow(&l->segs, &l->cap_segs, l->n_segs, sizeof *l->segs, 8) < 0)
		return -ENOMEM;
	l->segs[l->n_segs++] = (struct seg){.seq = seq, .size = size};
	return 0;
}

static int write_at(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return !n || (!p[0] && memcmp(p, p + 1, n - 1) == 0);
}

/* Writes segment seq's file, named seq only once it is whole and synced
 * (magic, then zeros up to SEG_TARGET) and the directory synced, so a crash
 * never leaves a segment without its magic (rlog_open deletes leftover
 * .seg.tmp files). With zeros the space is written, not only allocated: an
 * fdatasync of data written over it has no metadata to commit. Over
 * fallocate'd (unwritten) space every fdatasync converts extents, a journal
 * commit, which on ext4 waits for LevelDB's data in the same transaction.
 * Falls back to fallocate when zero is set false (the spare thread failed).
 * Returns the open fd or a negative errno. */
static int make_segment(struct rlog *l, uint64_t seq, bool zero)
{
	static const uint8_t zeros[1u << 16];
	char name[32], tmp[40];
	seg_name(name, sizeof name, seq);
	snprintf(tmp, sizeof tmp, "%s.tmp", name);
	int fd = openat(l->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -errno : 0;
	if (rc == 0)
		rc = write_at(fd, SEG_MAGIC, SEG_MAGIC_LEN, 0);
	for (uint64_t off = SEG_MAGIC_LEN; zero && rc == 0 && off < SEG_TARGET;) {
		size_t n = SEG_TARGET - off < sizeof zeros ? SEG_TARGET - off : sizeof zeros;
		rc = write_at(fd, zeros, n, off);
		off += n;
	}
	if (rc == 0 && !zero && fallocate(fd, 0, 0, SEG_TARGET) < 0)
		log_debug("log", "cannot preallocate %s/%s: %s", l->path, name, strerror(errno));
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (rc == 0) /* clean now; direct writes would only have to drop them */
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (rc == 0 && renameat(l->dirfd, tmp, l->dirfd, name) < 0)
		rc = -errno;
	if (rc == 0 && fsync(l->dirfd) < 0)
		rc = -errno;
	if (rc < 0) {
		if (fd >= 0) {
			close(fd);
			unlinkat(l->dirfd, tmp, 0);
		}
		return rc;
	}
	return fd;
}

/* Deletes segment s, whose entries a snapshot covers. On a file system
 * mounted with discard, unlinking 8 MiB waits for the device to discard it:
 * 2-30 ms here (bench batch 500), which the node loop no longer waits for.
 * Returns false if it stays on disk: then so must every later one, or the
 * next rlog_open would find a hole between the segments left and fail. So
 * segments are deleted strictly oldest first, one at a time, and one that
 * stays is tried again before any later one (a crash too leaves the newest
 * of those let go, in order; the next rlog_open lists them, and the next
 * compaction covers them again). */
static bool delete_segment(struct rlog *l, const struct seg *s)
{
	char name[32];
	seg_name(name, sizeof name, s->seq);
	if (unlinkat(l->dirfd, name, 0) < 0 && errno != ENOENT) {
		log_warn("log", "cannot delete %s/%s: %s (tried again at the next compaction)",
			 l->path, name, strerror(errno));
		return false;
	}
	__atomic_fetch_sub(&l->disk_bytes, s->size, __ATOMIC_RELAXED);
	return true;
}

static void *spare_main(void *arg);

/* Starts the spare thread the first time it is needed (under sp->mu). */
static void spare_start(struct rlog *l)
{
	struct spare *sp = &l->spare;
	if (!sp->started && !sp->failed) {
		if (pthread_create(&sp->thread, NULL, spare_main, l) == 0)
			sp->started = true;
		else
			sp->failed = true;
	}
}

/* Hands segment s to the spare thread for deletion (starting it if need
 * be). If it cannot take it, *here tells whether deleting it on this thread
 * keeps the order (nothing older waits to be deleted). */
static bool doom_segment(struct rlog *l, const struct seg *s, bool *here)
{
	struct spare *sp = &l->spare;
	bool ok = false;
	pthread_mutex_lock(&sp->mu);
	spare_start(l);
	if (sp->started && !sp->stop && sp->n_doomed == sp->cap_doomed) {
		size_t cap = sp->cap_doomed ? 2 * sp->cap_doomed : 8;
		struct seg *d = realloc(sp->doomed, cap * sizeof *d);
		if (d) {
			sp->doomed = d;
			sp->cap_doomed = cap;
		}
	}
	if (sp->started && !sp->stop && sp->n_doomed < sp->cap_doomed) {
		sp->doomed[sp->n_doomed++] = *s;
		sp->stuck = false;
		pthread_cond_broadcast(&sp->cv);
		ok = true;
	}
	*here = !sp->n_doomed && !sp->deleting;
	pthread_mutex_unlock(&sp->mu);
	return ok;
}

void rlog_settle(struct rlog *l)
{
	struct spare *sp = &l->spare;
	pthread_mutex_lock(&sp->mu);
	while (sp->want || sp->busy || (sp->n_doomed && !sp->stuck) || sp->deleting)
		pthread_cond_wait(&sp->cv, &sp->mu);
	pthread_mutex_unlock(&sp->mu);
}

/* The spare thread: prepares the segment asked for, one at a time, and
 * deletes the segments let go, oldest first, when none is asked for. */
static void *spare_main(void *arg)
{
	struct rlog *l = arg;
	struct spare *sp = &l->spare;
	/* (It inherited kvfs-raft, which made top -H and perf count its
	 * zero-filling as the node loop's work.) */
	pthread_setname_np(pthread_self(), "kvfs-segment");
	pthread_mutex_lock(&sp->mu);
	for (;;) {
		while (!sp->want && !(sp->n_doomed && !sp->stuck) && !sp->stop)
			pthread_cond_wait(&sp->cv, &sp->mu);
		if (!sp->want && sp->n_doomed && !sp->stuck) {
			/* (A segment asked for goes first: the loop may wait for it.) */
			struct seg s = sp->doomed[0];
			sp->deleting = true;
			pthread_mutex_unlock(&sp->mu);
			bool gone = delete_segment(l, &s);
			pthread_mutex_lock(&sp->mu);
			if (gone)
				memmove(sp->doomed, sp->doomed + 1,
					--sp->n_doomed * sizeof *sp->doomed);
			sp->stuck = !gone;
			sp->deleting = false;
			pthread_cond_broadcast(&sp->cv);
			continue;
		}
		if (!sp->want)
			break; /* stopping; a segment asked for, and deletions, are finished first
				(but for one that cannot be deleted) */
		uint64_t seq = sp->want;
		sp->busy = true;
		pthread_mutex_unlock(&sp->mu);
		int fd = make_segment(l, seq, true);
		if (fd < 0)
			log_warn("log", "cannot prepare log segment %" PRIu64 " in %s: %s", seq,
				 l->path, strerror(-fd));
		pthread_mutex_lock(&sp->mu);
		sp->busy = false;
		sp->want = 0;
		if (fd >= 0) {
			sp->fd = fd;
			sp->seq = seq;
		} else {
			sp->failed = true; /* segments are made in place from now on */
		}
		pthread_cond_broadcast(&sp->cv);
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

/* Asks the spare thread for segment seq (starting it the first time). */
static void spare_request(struct rlog *l, uint64_t seq)
{
	struct spare *sp = &l->spare;
	pthread_mutex_lock(&sp->mu);
	spare_start(l);
	if (sp->started && !sp->failed && !sp->want && !sp->busy && sp->fd < 0) {
		sp->want = seq;
		pthread_cond_broadcast(&sp->cv);
	}
	pthread_mutex_unlock(&sp->mu);
}

/* Takes the spare if it is segment seq (waiting for one being prepared):
 * its fd, or -1. */
static int spare_take(struct rlog *l, uint64_t seq)
{
	struct spare *sp = &l->spare;
	int fd = -1;
	pthread_mutex_lock(&sp->mu);
	while (sp->want || sp->busy)
		pthread_cond_wait(&sp->cv, &sp->mu);
	if (sp->fd >= 0 && sp->seq == seq) {
		fd = sp->fd;
		sp->taken++;
	} else if (sp->fd >= 0) {
		close(sp->fd); /* for another segment (cannot happen): an empty one, valid */
	}
	sp->fd = -1;
	pthread_mutex_unlock(&sp->mu);
	return fd;
}

/* Turns O_DIRECT on or off for fd: 0 or -errno. */
static int set_direct(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0)
		return -errno;
	return 0;
}

/* Makes fd, the segment now written, take direct writes (O_DIRECT) where
 * the file system allows it. Its last partial block, the tail_len bytes at
 * tail, is kept in l->dbuf and written again in front of the next frame
 * (write_frame). The fdatasync then has no dirty page to write back:
 * one-connection PUT 4-9% and 64 connections 5% faster on fresh 3-node
 * clusters (bench/NOTES.md); and the log no longer fills the page cache
 * (which a memory cgroup counts) with pages it never reads. */
static void use_segment(struct rlog *l, int fd, const void *tail, size_t tail_len)
{
	__atomic_store_n(&l->direct, false, __ATOMIC_RELAXED);
	if (l->buffered)
		return;
	if (!l->dbuf) {
		void *b;
		if (posix_memalign(&b, DIO_ALIGN, DIO_CHUNK) != 0)
			return;
		l->dbuf = b;
	}
	int rc = set_direct(fd, true);
	if (rc < 0) {
		log_info("log", "%s: the file system takes no direct writes (%s); the log is "
				"written through the page cache",
			 l->path, strerror(-rc));
		l->buffered = true;
		return;
	}
	memcpy(l->dbuf, tail, tail_len);
	__atomic_store_n(&l->direct, true, __ATOMIC_RELAXED);
}

/* Makes segment seq the one written: the spare prepared ahead when there is
 * one (commit_records asks for it once the current segment is half full, so
 * the switch costs the node loop nothing), else made here. */
static int new_segment(struct rlog *l, uint64_t seq)
{
	int fd = spare_take(l, seq);
	if (fd < 0)
		fd = make_segment(l, seq, false);
	int rc = fd < 0 ? fd : push_seg(l, seq, SEG_MAGIC_LEN);
	if (rc < 0) {
		char name[32];
		seg_name(name, sizeof name, seq);
		log_error("log", "cannot create log segment %s/%s: %s", l->path, name,
			  strerror(-rc));
		if (fd >= 0)
			close(fd);
		return KVFS_ESTORAGE;
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = fd;
	use_segment(l, fd, SEG_MAGIC, SEG_MAGIC_LEN);
	__atomic_fetch_add(&l->disk_bytes, SEG_MAGIC_LEN, __ATOMIC_RELAXED);
	return 0;
}

/* ---- reading: one pass over every segment ---- */

struct loc {
	const uint8_t *data;
	size_t len;
	uint64_t term;
	uint8_t type;
};

struct scan {
	struct loc *v; /* v[i] is entry first + i */
	size_t n, cap;
	uint64_t first;
	struct rlog_hard_state hs;
	struct rlog_snapshot_meta snap;
	void **maps;
	size_t *map_lens;
	size_t n_maps;
};

static void scan_free(struct scan *s)
{
	for (size_t i = 0; i < s->n_maps; i++)
		if (s->maps[i])
			munmap(s->maps[i], s->map_lens[i]);
	free(s->maps);
	free(s->map_lens);
	free(s->v);
	free(s->snap.membership);
}

static void drop_through(struct scan *s, uint64_t upto)
{
	if (!s->n || upto < s->first)
		return;
	uint64_t k = upto - s->first + 1;
	if (k >= s->n) {
		s->n = 0;
		return;
	}
	memmove(s->v, s->v + k, (size_t)(s->n - k) * sizeof *s->v);
	s->n -= (size_t)k;
	s->first += k;
}

/* Applies one record of segment seg. Returns 0 or KVFS_ECORRUPT. */
static int scan_record(struct scan *s, struct seg *seg, uint8_t type, const uint8_t *p,
		       size_t len)
{
	switch (type) {
	case REC_ENTRY: {
		if (len < 17)
			return KVFS_ECORRUPT;
		uint64_t index = get_le64(p);
		if (s->n && index != s->first + s->n) {
			log_error("log", "entry %" PRIu64 " follows entry %" PRIu64, index,
				  s->first + s->n - 1);
			return KVFS_ECORRUPT;
		}
		if (!index)
			return KVFS_ECORRUPT;
		if (array_grow(&s->v, &s->cap, s->n, sizeof *s->v, 1024) < 0)
			return -ENOMEM;
		if (!s->n)
			s->first = index;
		s->v[s->n++] = (struct loc){.term = get_le64(p + 8), .type = p[16],
					    .data = p + 17, .len = len - 17};
		if (index > seg->max_index)
			seg->max_index = index;
		return 0;
	}
	case REC_TRUNCATE: {
		if (len != 8)
			return KVFS_ECORRUPT;
		uint64_t from = get_le64(p);
		if (s->n && from < s->first + s->n)
			s->n = from <= s->first ? 0 : (size_t)(from - s->first);
		return 0;
	}
	case REC_HARD_STATE:
		if (len != 16)
			return KVFS_ECORRUPT;
		s->hs.term = get_le64(p);
		s->hs.vote = get_le64(p + 8);
		return 0;
	case REC_SNAPSHOT: {
		if (len < 24)
			return KVFS_ECORRUPT;
		void *m = malloc(len - 24 + 1);
		if (!m)
			return -ENOMEM;
		memcpy(m, p + 24, len - 24);
		free(s->snap.membership);
		s->snap = (struct rlog_snapshot_meta){.index = get_le64(p), .term = get_le64(p + 8),
						      .membership = m, .membership_len = len - 24};
		drop_through(s, get_le64(p + 16));
		return 0;
	}
	default:
		return KVFS_ECORRUPT;
	}
}

/* Length of the valid frame at p (of avail bytes), or 0 if there is none. */
static size_t valid_frame(const uint8_t *p, size_t avail)
{
	if (avail < FRAME_HEADER || crc32c(0, p, 8) != get_le32(p + 8))
		return 0;
	uint32_t len = get_le32(p + 4);
	if (len > FRAME_MAX || len > avail - FRAME_HEADER)
		return 0;
	if (crc32c(0, p + FRAME_HEADER, len) != get_le32(p))
		return 0;
	return FRAME_HEADER + (size_t)len;
}

/* Applies the records of one frame (one rlog_write or rlog_compact). */
static int scan_frame(struct scan *s, struct seg *seg, const uint8_t *p, size_t len)
{
	while (len) {
		if (len < REC_HEADER || get_le32(p + 1) > len - REC_HEADER)
			return KVFS_ECORRUPT;
		size_t n = get_le32(p + 1);
		int rc = scan_record(s, seg, p[0], p + REC_HEADER, n);
		if (rc < 0)
			return rc;
		p += REC_HEADER + n;
		len -= REC_HEADER + n;
	}
	return 0;
}

/* Whether a valid frame starts anywhere in p[0..avail): tells damage (valid
 * writes after it) from a write cut short (nothing valid after it). */
static bool frame_after(const uint8_t *p, size_t avail)
{
	for (size_t i = 1; i + FRAME_HEADER <= avail; i++)
		if (valid_frame(p + i, avail - i))
			return true;
	return false;
}

/* Whether segment file seq holds no frame: the magic (or a prefix of it, or
 * nothing but zeros: a creation cut short) and zeros. A spare prepared ahead
 * (make_segment) looks like that until it is written. */
static bool segment_empty(struct rlog *l, uint64_t seq)
{
	char name[32];
	seg_name(name, sizeof name, seq);
	int fd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC);
	uint8_t buf[1u << 16];
	uint64_t off = 0;
	bool empty = fd >= 0;
	ssize_t n = 0;
	while (empty && (n = pread(fd, buf, sizeof buf, (off_t)off)) > 0) {
		size_t skip = 0;
		if (off < SEG_MAGIC_LEN) { /* n >= 1: compare what was read of the magic */
			size_t m = (size_t)n < SEG_MAGIC_LEN - off ? (size_t)n : SEG_MAGIC_LEN - off;
			skip = memcmp(buf, &SEG_MAGIC[off], m) == 0 ? m : 0;
		}
		empty = all_zero(buf + skip, (size_t)n - skip);
		off += (uint64_t)n;
	}
	if (fd >= 0)
		close(fd);
	return empty && n == 0;
}

/* Whether every segment after segment i holds no frame. */
static bool nothing_after(struct rlog *l, size_t i)
{
	for (size_t k = i + 1; k < l->n_segs; k++)
		if (!segment_empty(l, l->segs[k].seq))
			return false;
	return true;
}

/* Reads segment i. In the last segment that holds frames (only empty spares
 * after it) a bad record with nothing valid after it is a write cut short by
 * a crash (never acknowledged: acknowledgements follow the fdatasync): when
 * repair is set the file is truncated there. Anywhere else a bad record is
 * corruption. */
static int scan_segment(struct rlog *l, struct scan *s, size_t i, bool repair)
{
	struct seg *seg = &l->segs[i];
	bool last = i + 1 == l->n_segs;
	char name[32];
	seg_name(name, sizeof name, seg->seq);
	int fd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_error("log", "cannot read log segment %s/%s: %s", l->path, name,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return KVFS_ESTORAGE;
	}
	size_t size = (size_t)st.st_size;
	const uint8_t *p = NULL;
	if (size) {
		p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			log_error("log", "cannot map log segment %s/%s: %s", l->path, name,
				  strerror(errno));
			close(fd);
			return KVFS_ESTORAGE;
		}
	}
	close(fd);
	s->maps[s->n_maps] = (void *)p;
	s->map_lens[s->n_maps++] = size;
	seg->max_index = 0;
	seg->size = size;

	size_t off = SEG_MAGIC_LEN;
	int rc = 0;
	if (size < SEG_MAGIC_LEN || memcmp(p, SEG_MAGIC, SEG_MAGIC_LEN) != 0) {
		/* Segments are renamed into place once synced (new_segment); on a
		 * filesystem that does not keep that order a crash could still
		 * leave the last one empty, zeroed or with part of its magic. */
		bool unfinished = last && (all_zero(p, size) || (size < SEG_MAGIC_LEN &&
								 memcmp(p, SEG_MAGIC, size) == 0));
		if (!unfinished) {
			log_error("log", "%s/%s is not a kvfs log segment", l->path, name);
			return KVFS_ECORRUPT;
		}
		off = 0; /* rewritten below */
	}
	while (off && off < size) {
		if (!p[off] && all_zero(p + off, size - off))
			break; /* allocated space not written yet */
		size_t n = valid_frame(p + off, size - off);
		if (!n)
			break;
		if ((rc = scan_frame(s, seg, p + off + FRAME_HEADER, n - FRAME_HEADER)) < 0) {
			log_error("log", "bad record in the frame at %s/%s offset %zu", l->path, name,
				  off);
			return rc;
		}
		off += n;
	}
	if (off && (off == size || all_zero(p + off, size - off))) {
		seg->size = off;
		return 0;
	}
	/* A bad record at off, or (off 0) a segment whose creation was cut short. */
	/* A torn frame whose header survived claims [off, end): search after
	 * it, since its payload may itself hold frame-like bytes (a client's
	 * value). */
	size_t from = off;
	if (off && size - off >= FRAME_HEADER && crc32c(0, p + off, 8) == get_le32(p + off + 8)) {
		size_t claimed = get_le32(p + off + 4);
		from = claimed <= size - off - FRAME_HEADER ? off + FRAME_HEADER + claimed - 1 : size;
	}
	if ((!last && !nothing_after(l, i)) ||
	    (off && from < size && frame_after(p + from, size - from))) {
		log_error("log", "corrupt record at %s/%s offset %zu", l->path, name, off);
		return KVFS_ECORRUPT;
	}
	if (!repair)
		return 0;
	if (off)
		log_warn("log", "%s/%s: dropping %zu bytes of a write cut short at offset %zu",
			 l->path, name, size - off, off);
	int wfd = openat(l->dirfd, name, O_WRONLY | O_CLOEXEC);
	rc = wfd < 0 ? -errno : 0;
	if (rc == 0 && ftruncate(wfd, (off_t)off) < 0)
		rc = -errno;
	if (rc == 0 && !off)
		rc = write_at(wfd, SEG_MAGIC, SEG_MAGIC_LEN, 0);
	if (rc == 0 && fdatasync(wfd) < 0)
		rc = -errno;
	if (wfd >= 0)
		close(wfd);
	if (rc < 0) {
		log_error("log", "cannot repair %s/%s: %s", l->path, name, strerror(-rc));
		return KVFS_ESTORAGE;
	}
	seg->size = off ? off : SEG_MAGIC_LEN;
	return 0;
}

static int scan_all(struct rlog *l, struct scan *s, bool repair)
{
	memset(s, 0, sizeof *s);
	s->maps = calloc(l->n_segs + 1, sizeof *s->maps);
	s->map_lens = calloc(l->n_segs + 1, sizeof *s->map_lens);
	if (!s->maps || !s->map_lens)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_segs; i++) {
		int rc = scan_segment(l, s, i, repair);
		if (rc < 0)
			return rc;
	}
	if (s->n && s->snap.index && s->first > s->snap.index + 1) {
		log_error("log", "gap between snapshot %" PRIu64 " and first entry %" PRIu64,
			  s->snap.index, s->first);
		return KVFS_ECORRUPT;
	}
	return 0;
}

static void adopt(struct rlog *l, const struct scan *s)
{
	l->first = s->n ? s->first : 0;
	l->last = s->n ? s->first + s->n - 1 : 0;
	l->hs = s->hs;
	uint64_t total = 0;
	for (size_t i = 0; i < l->n_segs; i++)
		total += l->segs[i].size;
	__atomic_store_n(&l->disk_bytes, total, __ATOMIC_RELAXED);
}

/* ---- open / close ---- */

static int list_segments(struct rlog *l)
{
	int fd = openat(l->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		uint64_t seq;
		size_t len = strlen(de->d_name);
		if (seg_parse_name(de->d_name, &seq) == 0)
			rc = push_seg(l, seq, 0);
		else if (len > 8 && strcmp(de->d_name + len - 8, ".seg.tmp") == 0 &&
			 unlinkat(l->dirfd, de->d_name, 0) == 0)
			log_info("log", "removed %s/%s, a segment whose creation a crash cut short",
				 l->path, de->d_name);
	}
	closedir(d);
	if (l->n_segs)
		qsort(l->segs, l->n_segs, sizeof *l->segs, seq_cmp);
	return rc;
}

int rlog_open(const char *path, struct rlog **out)
{
	struct rlog *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->dirfd = l->lockfd = l->fd = -1;
	bb_init(&l->rec);
	pthread_mutex_init(&l->spare.mu, NULL);
	pthread_cond_init(&l->spare.cv, NULL);
	l->spare.fd = -1;
	int rc = 0;
	struct scan s;
	if (!(l->path = strdup(path))) {
		free(l);
		return -ENOMEM;
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		log_error("log", "cannot create %s: %s", path, strerror(errno));
		rc = KVFS_ESTORAGE;
		goto fail;
	}
	if ((l->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		log_error("log", "cannot open %s: %s", path, strerror(errno));
		rc = KVFS_ESTORAGE;
		goto fail;
	}
	if (faccessat(l->dirfd, "CURRENT", F_OK, 0) == 0) {
		log_error("log", "%s holds a Raft log in the LevelDB format of kvfs 0.1.0 and "
				 "earlier; this version keeps the log in segment files. Start "
				 "this node from an empty data directory (it catches up from "
				 "its peers) or keep running the version that wrote it",
			  path);
		rc = KVFS_ECONFIG;
		goto fail;
	}
	l->lockfd = openat(l->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (l->lockfd < 0 || flock(l->lockfd, LOCK_EX | LOCK_NB) < 0) {
		log_error("log", "cannot lock %s/LOCK: %s", path,
			  errno == EWOULDBLOCK ? "in use by another process" : strerror(errno));
		rc = KVFS_ESTORAGE;
		goto fail;
	}
	if ((rc = list_segments(l)) < 0) {
		log_error("log", "cannot list %s: %s", path, strerror(-rc));
		rc = rc == -ENOMEM ? rc : KVFS_ESTORAGE;
		goto fail;
	}
	rc = scan_all(l, &s, true);
	if (rc == 0)
		adopt(l, &s);
	scan_free(&s);
	if (rc < 0)
		goto fail;
	if (!l->n_segs) {
		if ((rc = new_segment(l, 1)) < 0)
			goto fail;
	} else {
		char name[32];
		seg_name(name, sizeof name, l->segs[l->n_segs - 1].seq);
		uint64_t size = l->segs[l->n_segs - 1].size;
		uint8_t tail[DIO_ALIGN];
		size_t tail_len = (size_t)(size % DIO_ALIGN);
		l->fd = openat(l->dirfd, name, O_RDWR | O_CLOEXEC);
		rc = l->fd < 0 ? -errno : 0;
		ssize_t got = rc == 0 ? pread(l->fd, tail, tail_len, (off_t)(size - tail_len)) : 0;
		if (rc == 0 && got != (ssize_t)tail_len)
			rc = got < 0 ? -errno : -EIO;
		if (rc < 0) {
			log_error("log", "cannot open %s/%s: %s", path, name, strerror(-rc));
			rc = KVFS_ESTORAGE;
			goto fail;
		}
		use_segment(l, l->fd, tail, tail_len);
	}
	*out = l;
	return 0;
fail:
	rlog_close(l);
	return rc;
}

void rlog_close(struct rlog *l)
{
	if (!l)
		return;
	struct spare *sp = &l->spare;
	if (sp->started) {
		pthread_mutex_lock(&sp->mu);
		sp->stop = true;
		pthread_cond_broadcast(&sp->cv);
		pthread_mutex_unlock(&sp->mu);
		pthread_join(sp->thread, NULL);
	}
	if (sp->fd >= 0)
		close(sp->fd); /* the file stays: an empty segment, taken up at the next open */
	free(sp->doomed);
	pthread_cond_destroy(&sp->cv);
	pthread_mutex_destroy(&sp->mu);
	if (l->fd >= 0)
		close(l->fd);
	if (l->lockfd >= 0)
		close(l->lockfd);
	if (l->dirfd >= 0)
		close(l->dirfd);
	bb_free(&l->rec);
	free(l->dbuf);
	free(l->segs);
	free(l->path);
	free(l);
}

int rlog_load(struct rlog *l, struct rlog_hard_state *hs, struct rlog_snapshot_meta *snap,
	      int (*cb)(const struct rlog_entry *e, void *ud), void *ud)
{
	struct scan s;
	memset(hs, 0, sizeof *hs);
	memset(snap, 0, sizeof *snap);
	rlog_settle(l); /* adopt recounts disk_bytes from the segments listed */
	int rc = scan_all(l, &s, false);
	if (rc == 0) {
		adopt(l, &s);
		*hs = s.hs;
		*snap = s.snap;
		s.snap.membership = NULL; /* now the caller's */
		for (size_t i = 0; cb && i < s.n; i++) {
			struct rlog_entry e = {.index = s.first + i, .term = s.v[i].term,
					       .type = s.v[i].type, .data = s.v[i].data,
					       .len = s.v[i].len};
			if ((rc = cb(&e, ud)) != 0)
				break;
		}
	}
	scan_free(&s);
	return rc;
}

/* ---- writing ---- */

/* Adds a record to the frame being built (its header reserved first). */
static void put_record(struct byte_buf *b, uint8_t type, const void *a, size_t alen,
		       const void *c, size_t clen)
{
	if (!b->len) {
		uint8_t hdr[FRAME_HEADER] = {0};
		bb_put(b, hdr, sizeof hdr);
	}
	bb_u8(b, type);
	bb_le32(b, (uint32_t)(alen + clen));
	bb_put(b, a, alen);
	if (clen)
		bb_put(b, c, clen);
}

/* Writes the frame built in l->rec at offset off of the current segment
 * (its end). Direct: whole aligned blocks from the one off falls in, its
 * first bytes again (kept in l->dbuf), then the frame, then zeros, which
 * is what the space after the end holds anyway (a spare's zeros, or none);
 * the scan ends a segment at its first zeros. A frame longer than l->dbuf
 * goes through it in DIO_CHUNK pieces, each written before the next is
 * copied, so a batch never needs a second copy of itself. */
static int write_frame(struct rlog *l, uint64_t off)
{
	if (!l->direct)
		return write_at(l->fd, l->rec.data, l->rec.len, off);
	const uint8_t *src = l->rec.data;
	size_t left = l->rec.len, have = (size_t)(off % DIO_ALIGN);
	uint64_t pos = off - have;
	int rc = 0;
	while (rc == 0) {
		size_t n = left < DIO_CHUNK - have ? left : DIO_CHUNK - have;
		memcpy(l->dbuf + have, src, n);
		have += n;
		src += n;
		left -= n;
		if (!left)
			break;
		rc = write_at(l->fd, l->dbuf, have, pos); /* a full chunk: aligned */
		pos += have;
		have = 0;
	}
	size_t padded = (have + DIO_ALIGN - 1) / DIO_ALIGN * DIO_ALIGN;
	if (rc == 0) {
		memset(l->dbuf + have, 0, padded - have);
		rc = write_at(l->fd, l->dbuf, padded, pos);
	}
	if (rc == -EINVAL) {
		/* Alignment stricter than DIO_ALIGN, or a file system that
		 * accepted O_DIRECT and refuses the write: the same bytes
		 * through the page cache, and so from now on. */
		log_info("log", "%s: direct write refused (%s); the log is written through the "
				"page cache",
			 l->path, strerror(-rc));
		if ((rc = set_direct(l->fd, false)) < 0)
			return rc;
		__atomic_store_n(&l->direct, false, __ATOMIC_RELAXED);
		l->buffered = true;
		return write_at(l->fd, l->rec.data, l->rec.len, off);
	}
	if (rc < 0)
		return rc;
	size_t keep = have % DIO_ALIGN; /* the new last partial block */
	memmove(l->dbuf, l->dbuf + have - keep, keep);
	return 0;
}

/* Writes the records built in l->rec to the last segment and syncs them. */
static int commit_records(struct rlog *l)
{
	int rc = l->rec.err ? -ENOMEM : l->failed ? KVFS_ESTORAGE : 0;
	if (rc == 0 && !l->rec.len)
		return 0; /* nothing to write */
	if (rc == 0 && l->rec.len - FRAME_HEADER > FRAME_MAX)
		rc = -E2BIG;
	if (rc == 0) {
		uint8_t *h = l->rec.data;
		put_le32(h, crc32c(0, h + FRAME_HEADER, l->rec.len - FRAME_HEADER));
		put_le32(h + 4, (uint32_t)(l->rec.len - FRAME_HEADER));
		put_le32(h + 8, crc32c(0, h, 8));
	}
	if (rc == 0 && l->segs[l->n_segs - 1].size >= SEG_TARGET)
		rc = new_segment(l, l->segs[l->n_segs - 1].seq + 1);
	else if (rc == 0 && l->segs[l->n_segs - 1].size >= SEG_TARGET / 2)
		spare_request(l, l->segs[l->n_segs - 1].seq + 1);
	if (rc == 0) {
		rc = write_frame(l, l->segs[l->n_segs - 1].size);
		if (rc == 0 && fdatasync(l->fd) < 0)
			rc = -errno;
		__atomic_fetch_add(&l->syncs, 1, __ATOMIC_RELAXED);
		if (rc < 0) {
			log_error("log", "synced write to %s failed: %s", l->path, strerror(-rc));
			l->failed = true;
			rc = KVFS_ESTORAGE;
		}
	}
	if (rc == 0) {
		l->segs[l->n_segs - 1].size += l->rec.len;
		__atomic_fetch_add(&l->disk_bytes, l->rec.len, __ATOMIC_RELAXED);
	} else if (!l->failed) {
		/* Whatever failed (memory, a segment that could not be created),
		 * the log may be left half-written: refuse further writes. */
		log_error("log", "write to %s failed: %s", l->path, kvfs_strerror(rc));
		l->failed = true;
		rc = KVFS_ESTORAGE;
	} else {
		rc = KVFS_ESTORAGE;
	}
	if (l->rec.cap > (8u << 20))
		bb_free(&l->rec); /* do not keep the memory of one huge batch */
	l->rec.len = 0;
	l->rec.err = 0;
	return rc;
}

int rlog_write(struct rlog *l, const struct rlog_hard_state *hs, uint64_t truncate_from,
	       const struct rlog_entry *entries, size_t n)
{
	uint64_t first = l->first, last = l->last;
	uint8_t h[17];

	if (truncate_from && truncate_from <= last) {
		put_le64(h, truncate_from);
		put_record(&l->rec, REC_TRUNCATE, h, 8, NULL, 0);
		last = truncate_from - 1;
		if (last < first)
			first = last = 0; /* no entry left: (0, 0), as rlog_load sees it */
	}
	for (size_t i = 0; i < n; i++) {
		const struct rlog_entry *e = &entries[i];
		put_le64(h, e->index);
		put_le64(h + 8, e->term);
		h[16] = e->type;
		put_record(&l->rec, REC_ENTRY, h, 17, e->data, e->len);
		if (!first)
			first = e->index;
		last = e->index;
	}
	if (hs) {
		put_le64(h, hs->term);
		put_le64(h + 8, hs->vote);
		put_record(&l->rec, REC_HARD_STATE, h, 16, NULL, 0);
	}
	int rc = commit_records(l);
	if (rc == 0) {
		struct seg *cur = &l->segs[l->n_segs - 1];
		if (n && entries[n - 1].index > cur->max_index)
			cur->max_index = entries[n - 1].index;
		if (hs)
			l->hs = *hs;
		l->first = first;
		l->last = last;
	}
	return rc;
}

int rlog_compact(struct rlog *l, const struct rlog_snapshot_meta *snap, uint64_t upto)
{
	uint8_t h[24];
	if (upto > l->last)
		upto = l->last;
	put_le64(h, snap->index);
	put_le64(h + 8, snap->term);
	put_le64(h + 16, upto);
	put_record(&l->rec, REC_SNAPSHOT, h, 24, snap->membership, snap->membership_len);
	/* Older segments may hold the only copy of the hard state. */
	put_le64(h, l->hs.term);
	put_le64(h + 8, l->hs.vote);
	put_record(&l->rec, REC_HARD_STATE, h, 16, NULL, 0);
	int rc = commit_records(l);
	if (rc < 0)
		return rc;
	if (l->first && upto >= l->first)
		l->first = upto < l->last ? upto + 1 : 0;
	if (l->first == 0)
		l->last = 0;
	/* Whole segments whose entries the snapshot covers (never the last),
	 * deleted by the spare thread, oldest first (delete_segment), any time
	 * after the snapshot record above is durable: a covered segment found
	 * at the next open is only covered again. */
	size_t k = 0;
	bool here;
	struct spare *sp = &l->spare;
	pthread_mutex_lock(&sp->mu);
	if (sp->stuck) { /* one that could not be deleted: again now */
		sp->stuck = false;
		pthread_cond_broadcast(&sp->cv);
	}
	pthread_mutex_unlock(&sp->mu);
	while (k + 1 < l->n_segs && l->segs[k].max_index <= upto) {
		/* One that can be neither handed over nor deleted here stays,
		 * with the later ones, for the next compaction. */
		if (!doom_segment(l, &l->segs[k], &here) &&
		    !(here && delete_segment(l, &l->segs[k])))
			break;
		k++;
	}
	if (k) {
		memmove(l->segs, l->segs + k, (l->n_segs - k) * sizeof *l->segs);
		l->n_segs -= k;
	}
	return 0;
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
	return __atomic_load_n(&l->disk_bytes, __ATOMIC_RELAXED);
}

uint64_t rlog_spares_used(struct rlog *l)
{
	pthread_mutex_lock(&l->spare.mu);
	uint64_t n = l->spare.taken;
	pthread_mutex_unlock(&l->spare.mu);
	return n;
}

void rlog_set_buffered(struct rlog *l)
{
	int rc = l->direct ? set_direct(l->fd, false) : 0;
	if (rc == 0)
		__atomic_store_n(&l->direct, false, __ATOMIC_RELAXED);
	else
		log_warn("log", "%s: cannot stop direct writes: %s", l->path, strerror(-rc));
	l->buffered = !l->direct;
}

bool rlog_direct(struct rlog *l)
{
	return __atomic_load_n(&l->direct, __ATOMIC_RELAXED);
}

uint64_t rlog_sync_count(struct rlog *l)
{
	return __atomic_load_n(&l->syncs, __ATOMIC_RELAXED);
}
