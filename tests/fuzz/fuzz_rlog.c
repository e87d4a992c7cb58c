/*
 * libFuzzer target for the Raft log's reader (store/log.c, rlog_open and
 * rlog_load): what it finds in its segment files after a crash, or on a
 * damaged disk, it must refuse (KVFS_ECORRUPT) or load consistently.
 *
 * Every frame carries two CRC-32Cs (log.h), so random bytes almost never
 * reach the records. The input is therefore the frames' payloads, framed
 * here with correct checksums:
 *   byte 0         flags: bit 0 the segment's magic is damaged, bit 1 the
 *                  bytes after the last frame are written raw (a torn or
 *                  damaged tail), bits 2-3 how many frames (1-4)
 *   then per frame 2 bytes LE payload length (cut to what is left), payload
 *   then           the rest (the raw tail, when bit 1)
 *
 * Oracle: besides ASan/UBSan, rlog_open gives 0, KVFS_ECORRUPT or -ENOMEM
 * (KVFS_ECONFIG needs a file this harness never writes) and what opens
 * loads; it cuts nothing from a segment with no raw tail (every frame in it
 * is whole and checksummed, so none is a torn write); and a second open of
 * what the first left (it may have cut a torn tail) succeeds and loads the
 * same hard state, snapshot, indexes and entry bytes.
 *
 * Seed corpus: tests/fuzz/corpus/rlog (tests/fuzz/gen_rlog_corpus.py).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "store/log.h"

static char dir[64];

static void empty_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[128];
	if (!d)
		abort();
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
}

static void remove_dir(void)
{
	empty_dir();
	rmdir(dir);
}

struct loaded {
	struct rlog_hard_state hs;
	struct rlog_snapshot_meta snap;
	uint64_t first, last, n, next;
	uint32_t sum; /* of the entries' index, term, type and data */
};

static int on_entry(const struct rlog_entry *e, void *ud)
{
	struct loaded *l = ud;
	if (l->n && e->index != l->next)
		abort();
	l->next = e->index + 1;
	l->n++;
	l->sum = crc32c(l->sum, &e->index, sizeof e->index);
	l->sum = crc32c(l->sum, &e->term, sizeof e->term);
	l->sum = crc32c(l->sum, &e->type, 1);
	l->sum = crc32c(l->sum, e->data, e->len);
	return 0;
}

/* Opens and loads the log; returns rlog_open's code. */
static int load(struct loaded *l)
{
	struct rlog *log;
	memset(l, 0, sizeof *l);
	int rc = rlog_open(dir, &log);
	if (rc != 0)
		return rc;
	if (rlog_load(log, &l->hs, &l->snap, on_entry, l) != 0)
		abort(); /* what opened must load */
	l->first = rlog_first_index(log);
	l->last = rlog_last_index(log);
	if (l->n ? l->first != l->next - l->n || l->last != l->next - 1 : l->first || l->last)
		abort();
	rlog_close(log);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		log_threshold = -1; /* the reader's complaints are expected here */
		snprintf(dir, sizeof dir, "/tmp/fuzz-rlog.XXXXXX");
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
	}
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	size_t pos = 1;
	struct byte_buf seg;
	bb_init(&seg);
	bb_put(&seg, "kvfslog1", 8);
	if (flags & 1)
		seg.data[size % 8] ^= 0x20;
	for (int f = 0; f <= (flags >> 2 & 3) && size - pos >= 2; f++) {
		size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
		pos += 2;
		if (len > size - pos)
			len = size - pos;
		uint8_t h[12];
		put_le32(h, crc32c(0, data + pos, len));
		put_le32(h + 4, (uint32_t)len);
		put_le32(h + 8, crc32c(0, h, 8));
		bb_put(&seg, h, sizeof h);
		bb_put(&seg, data + pos, len);
		pos += len;
	}
	if (flags & 2)
		bb_put(&seg, data + pos, size - pos);
	if (seg.err)
		abort();
	empty_dir();
	char path[128];
	snprintf(path, sizeof path, "%s/0000000000000001.seg", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, seg.data, seg.len) != (ssize_t)seg.len || close(fd) != 0)
		abort();
	size_t written = seg.len;
	bb_free(&seg);

	struct loaded a, b;
	int rc = load(&a);
	if (rc == KVFS_ECORRUPT || rc == -ENOMEM)
		return 0;
	struct stat st;
	if (rc != 0 || stat(path, &st) != 0 || (!(flags & 2) && (size_t)st.st_size != written) ||
	    load(&b) != 0)
		abort();
	if (a.hs.term != b.hs.term || a.hs.vote != b.hs.vote || a.snap.index != b.snap.index ||
	    a.snap.term != b.snap.term || a.snap.membership_len != b.snap.membership_len ||
	    (a.snap.membership_len &&
	     memcmp(a.snap.membership, b.snap.membership, a.snap.membership_len) != 0) ||
	    a.first != b.first || a.last != b.last || a.n != b.n || a.sum != b.sum)
		abort();
	free(a.snap.membership);
	free(b.snap.membership);
	return 0;
}
