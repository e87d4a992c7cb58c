/*
 * The torn tail of LevelDB's write-ahead log after a power loss.
 *
 * Every write kvfs gives LevelDB is synced, so after a power loss only the
 * last one, whose sync never returned, can be missing from the newest log:
 * whole, in part, or with its 4 KiB pages kept in any order (the disk's
 * write-back stores any subset). LevelDB's reader reports such a torn
 * record as corruption, and with paranoid checks (kv.c) the database no
 * longer opens. The write was never acknowledged, and the Raft log holds
 * the entries it carried; dropping it is what a clean crash would have
 * done. Anything else that fails its checksum, a bad record with a good
 * one after it, or a bad record in an older log, is damage to synced
 * data: the node must not run on it, and nothing is changed.
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

/* Checks (and, newest, truncates) the log file name in dir. */
static int wal_fix_file(const char *dir, const char *name, bool newest, int *fixed)
{
	char path[4096];
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return -ENAMETOOLONG;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint8_t *d = NULL;
	size_t size = 0, end = 0;
	int rc = read_all(fd, &d, &size);
	if (rc == 0) {
		if (!kv_wal_scan(d, size, &end)) {
			log_error("kv", "%s: a damaged record with whole records after it: "
					"synced data is damaged", path);
			rc = KVFS_ECORRUPT;
		} else if (end < size && !newest) {
			log_error("kv", "%s: damaged at offset %zu, and a newer log follows: "
					"synced data is damaged", path, end);
			rc = KVFS_ECORRUPT;
		} else if (end < size) {
			if (ftruncate(fd, (off_t)end) < 0 || fsync(fd) < 0) {
				rc = -errno;
			} else {
				log_warn("kv", "%s: dropped a torn write at its end (%zu bytes from "
					       "offset %zu), the unsynced last write of a power loss",
					 path, size - end, end);
				(*fixed)++;
			}
		}
		free(d);
	}
	close(fd);
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
	rewinddir(dh);
	int rc = 0, fixed = 0;
	while (rc == 0 && (de = readdir(dh)))
		if (wal_name(de->d_name, &num))
			rc = wal_fix_file(dir, de->d_name, num == newest, &fixed);
	closedir(dh);
	if (rc == 0 && fixed) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return rc ? rc : fixed;
}
