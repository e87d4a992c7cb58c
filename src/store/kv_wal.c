/*
 * The torn tail of LevelDB's write-ahead log after a power loss.
 *
 * Every write kvfs gives LevelDB is synced, so after a power loss only the
 * last one, whose sync never returned, can be missing from the newest log:
 * whole, in part, or with its 4 KiB pages kept in any order (the disk's
 * write-back stores any subset; a sector it never stored reads as zeros).
 * LevelDB's reader reports such a torn record as corruption, and with
 * paranoid checks (kv.c) the database no longer opens. The write was never
 * acknowledged, and the Raft log holds the entries it carried; dropping it
 * is what a clean crash would have done.
 *
 * Damage is taken for a torn write only when it looks like one: after the
 * last whole record, with a sector of zeros in it (or cut short by the end
 * of the file), and no whole record with a good checksum after it.
 * Anything else is damage to synced data: the node must not run on it, and
 * nothing is changed. Older logs are not looked at: they were synced whole
 * before the newest was started, or are obsolete, left for deletion.
 *
 * The manifest (the same format, one synced record per change of the table
 * set) is left alone: a torn last change would be safe to drop, but a
 * synced one that a damaged disk made look torn would not (the logs and
 * tables it retired are gone), and telling the two apart means decoding
 * LevelDB's version edits. A torn manifest still stops the start; its
 * records are small, so it takes one that straddles a sector boundary.
 *
 * The log format (LevelDB's doc/log_format.md): 32 KiB blocks of records
 * with a 7-byte header (masked CRC-32C of type and payload, u16 LE length,
 * type); a logical record is one FULL fragment, or FIRST, MIDDLE..., LAST;
 * a block's last 0..6 bytes are zero padding.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "store/kv_internal.h"

#define WAL_BLOCK 32768
#define WAL_HEADER 7
#define WAL_SECTOR 512

enum { WAL_ZERO = 0, WAL_FULL = 1, WAL_FIRST = 2, WAL_MIDDLE = 3, WAL_LAST = 4 };

/* LevelDB stores CRCs masked (crc32c.h: Mask). */
static uint32_t wal_crc(const uint8_t *type_and_payload, size_t n)
{
	uint32_t c = crc32c(0, type_and_payload, n);
	return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* The fragment whose header is at p (avail bytes left in its block): its
 * type, or -1 if it does not fit the block or fails its checksum. */
static int wal_fragment(const uint8_t *p, size_t avail, size_t *len)
{
	if (avail < WAL_HEADER)
		return -1;
	*len = (size_t)p[4] | (size_t)p[5] << 8;
	if (WAL_HEADER + *len > avail)
		return -1;
	if (p[6] == WAL_ZERO && *len == 0)
		return WAL_ZERO;
	if (get_le32(p) != wal_crc(p + 6, 1 + *len))
		return -1;
	return p[6];
}

/* Whether a whole record (FULL or FIRST) with a good checksum starts
 * anywhere a reader resynchronising after damage could find one, from pos
 * on: along the chain of fragments in pos's block, then from every later
 * block's start. */
static bool wal_good_record_after(const uint8_t *d, size_t size, size_t pos)
{
	for (;;) {
		if (pos >= size)
			return false;
		size_t block_end = (pos - pos % WAL_BLOCK) + WAL_BLOCK;
		if (block_end > size)
			block_end = size;
		size_t len;
		int type = wal_fragment(d + pos, block_end - pos, &len);
		if (type == WAL_FULL || type == WAL_FIRST)
			return true;
		if (type == WAL_MIDDLE || type == WAL_LAST)
			pos += WAL_HEADER + len;
		else /* damaged, zero or a trailer: on to the next block */
			pos = block_end;
	}
}

/* Whether a 512-byte sector of the file overlapping [from, to) is all
 * zeros from from on (and up to the end of the file): a sector the disk
 * never stored, the mark a lost write leaves (a disk stores whole sectors;
 * 512 bytes is the smallest, and a page of 4 KiB is eight of them). */
static bool zero_sector(const uint8_t *d, size_t size, size_t from, size_t to)
{
	for (size_t p = from - from % WAL_SECTOR; p < to && p < size; p += WAL_SECTOR) {
		size_t lo = p < from ? from : p, hi = p + WAL_SECTOR < size ? p + WAL_SECTOR : size;
		size_t i = lo;
		while (i < hi && d[i] == 0)
			i++;
		if (i == hi)
			return true;
	}
	return false;
}

bool kv_wal_scan(const uint8_t *d, size_t size, size_t *end)
{
	size_t pos = 0, good_end = 0;
	bool in_record = false;
	while (pos < size) {
		size_t full_end = (pos - pos % WAL_BLOCK) + WAL_BLOCK;
		size_t block_end = full_end < size ? full_end : size;
		if (block_end - pos < WAL_HEADER) {
			if (block_end < full_end) {
				/* a header cut short by the end of the file */
				*end = good_end;
				return true;
			}
			pos = block_end; /* the block's trailer */
			continue;
		}
		size_t len = 0;
		int type = wal_fragment(d + pos, block_end - pos, &len);
		bool ok;
		switch (type) {
		case WAL_FULL:
		case WAL_FIRST:
			ok = !in_record;
			break;
		case WAL_MIDDLE:
		case WAL_LAST:
			ok = in_record;
			break;
		case WAL_ZERO:
			/* Preallocated zeros LevelDB skips to the block's end; in
			 * the middle of a record a lost page. */
			ok = !in_record;
			if (ok) {
				pos = block_end;
				continue;
			}
			break;
		default:
			ok = false;
		}
		if (!ok) {
			*end = good_end;
			if (type == WAL_FULL || type == WAL_FIRST)
				return false; /* a good record after one left unfinished */
			size_t claimed = (size_t)d[pos + 4] | (size_t)d[pos + 5] << 8;
			if (type < 0 && block_end < full_end && pos + WAL_HEADER + claimed > size &&
			    pos + WAL_HEADER + claimed <= full_end)
				return true; /* a fragment cut short by the end of the file */
			/* Resume after the damaged fragment if its length fits the
			 * block (a bad checksum), else at the next block. */
			size_t next = pos + WAL_HEADER + claimed <= block_end
					      ? pos + WAL_HEADER + claimed : block_end;
			/* A torn write lost whole sectors, which read as zeros;
			 * damage without one is not a torn write. */
			if (!zero_sector(d, size, good_end, next))
				return false;
			return !wal_good_record_after(d, size, next);
		}
		in_record = type == WAL_FIRST || type == WAL_MIDDLE;
		pos += WAL_HEADER + len;
		if (!in_record)
			good_end = pos;
	}
	*end = in_record ? good_end : size;
	return true;
}

/* Reads the whole file at fd into memory. */
static int read_all(int fd, uint8_t **out, size_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	uint8_t *d = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!d)
		return -ENOMEM;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, d + got, (size_t)st.st_size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int rc = n < 0 ? -errno : -EIO;
			free(d);
			return rc;
		}
		got += (size_t)n;
	}
	*out = d;
	*size = got;
	return 0;
}

/* A log of dir to check: its path, contents and verdict. */
struct wal_file {
	char path[4096];
	uint8_t *d;
	size_t size, end;
};

/* Reads and scans dir/name into f; KVFS_ECORRUPT when it is damaged in a
 * way no torn last write explains. */
static int wal_check(const char *dir, const char *name, struct wal_file *f)
{
	if (snprintf(f->path, sizeof f->path, "%s/%s", dir, name) >= (int)sizeof f->path)
		return -ENAMETOOLONG;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = read_all(fd, &f->d, &f->size);
	close(fd);
	if (rc == 0 && !kv_wal_scan(f->d, f->size, &f->end)) {
		log_error("kv", "%s: a damaged record that no torn last write explains: "
				"synced data is damaged", f->path);
		rc = KVFS_ECORRUPT;
	}
	return rc;
}

/* Cuts f's torn last write off. */
static int wal_cut(struct wal_file *f)
{
	int fd = open(f->path, O_WRONLY | O_CLOEXEC), rc = 0;
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)f->end) < 0 || fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0)
		log_warn("kv", "%s: dropped a torn write at its end (%zu bytes from offset %zu), "
			       "the unsynced last write of a power loss", f->path, f->size - f->end,
			 f->end);
	return rc;
}

/* NNNNNN.log, LevelDB's name for a write-ahead log; its number in *num. */
static bool wal_name(const char *name, uint64_t *num)
{
	char *e;
	if (name[0] < '0' || name[0] > '9')
		return false;
	errno = 0;
	unsigned long long n = strtoull(name, &e, 10);
	if (errno || strcmp(e, ".log") != 0)
		return false;
	*num = n;
	return true;
}

int kv_wal_fix_tail(const char *dir)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return -errno;
	uint64_t newest = 0, num;
	bool any = false;
	struct dirent *de;
	while ((de = readdir(dh)))
		if (wal_name(de->d_name, &num) && (!any || num > newest)) {
			newest = num;
			any = true;
		}
	closedir(dh);
	if (!any)
		return 0;
	char name[32];
	snprintf(name, sizeof name, "%06llu.log", (unsigned long long)newest);
	struct wal_file f = {0};
	int rc = wal_check(dir, name, &f);
	if (rc == 0 && f.end < f.size && (rc = wal_cut(&f)) == 0)
		rc = 1;
	free(f.d);
	return rc;
}
