/*
 * powerfs: a FUSE pass-through file system that can lose power, for the
 * power-loss test (tests/integration/test_powerloss.py).
 *
 * Every write is held in memory, as the kernel's page cache would hold it,
 * until its file is fsynced (fsync or fdatasync); only then does it reach
 * the backing directory. Reads see the held writes, so the process above
 * sees an ordinary file system. When the file system is unmounted (the test
 * has killed the process that used it) the power goes: writes never synced
 * are lost. With --keep P each 4 KiB page of them survives independently
 * with probability P instead, the way a disk's write-back may have stored
 * any subset of what it was given, in no particular order: a torn page
 * write, a later write kept and an earlier one lost.
 *
 * Simplification: namespace and allocation changes (create, unlink, rename,
 * mkdir, truncate, fallocate) reach the backing directory at once, as if
 * each were followed by an fsync of its directory. The harness finds data
 * lost or reordered behind a process's back, not a missing directory fsync.
 * Held writes are known by path: renaming a directory that holds files
 * with unsynced writes would orphan them (kvfsd renames only files).
 *
 * With --cut-at N the power goes at the N-th fsync of a write-ahead file
 * (a name ending in .log or .seg, or in SUFFIX with --cut-suffix), before
 * that fsync does anything: the
 * moment that file holds the most unsynced data. From then on every
 * operation but getattr and release fails with EIO, as a dead disk would,
 * and the unsynced writes wait for the unmount to be lost. The line
 * "powerfs: power cut at ..." on stderr tells the test it happened.
 *
 * At the unmount it prints, on stderr, one line per file that held
 * unsynced data ("powerfs: PATH: K bytes kept, L lost") and a summary line.
 *
 * Usage: powerfs BACKING_DIR MOUNTPOINT [--keep P] [--seed N] [--cut-at N]
 *                [--cut-suffix SUFFIX]
 * Runs in the foreground, single-threaded; unmount with fusermount3 -u.
 */
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define PAGE 4096

/* One write not yet synced. */
struct held {
	off_t off;
	size_t len;
	char *data;
};

/* A file with writes not yet synced; size is its size as the process sees it. */
struct pending {
	char *path;
	struct held *w;
	size_t n, cap;
	off_t size;
	struct pending *next;
};

static struct pending *files;
static int backing = -1;
static double keep;
static unsigned seed = 1;
static long cut_at, wal_syncs;
static bool dead;

#define ALIVE()                                                                                    \
	do {                                                                                       \
		if (dead)                                                                          \
			return -EIO;                                                               \
	} while (0)

static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static struct pending *find(const char *path)
{
	for (struct pending *p = files; p; p = p->next)
		if (strcmp(p->path, path) == 0)
			return p;
	return NULL;
}

static void drop(const char *path)
{
	for (struct pending **pp = &files; *pp; pp = &(*pp)->next) {
		struct pending *p = *pp;
		if (strcmp(p->path, path) == 0) {
			*pp = p->next;
			for (size_t i = 0; i < p->n; i++)
				free(p->w[i].data);
			free(p->w);
			free(p->path);
			free(p);
			return;
		}
	}
}

/* Writes p's held writes to fd (all of them, or each page with probability
 * keep when the power goes) and forgets them. */
static int flush_to(struct pending *p, int fd, bool cut, size_t *kept, size_t *lost)
{
	int rc = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct held *h = &p->w[i];
		for (size_t o = 0; o < h->len && rc == 0;) {
			size_t n = PAGE - (size_t)((h->off + (off_t)o) % PAGE);
			if (n > h->len - o)
				n = h->len - o;
			if (cut && (double)rand_r(&seed) / RAND_MAX >= keep) {
				*lost += n;
			} else {
				if (pwrite(fd, h->data + o, n, h->off + (off_t)o) != (ssize_t)n)
					rc = -errno;
				*kept += n;
			}
			o += n;
		}
	}
	return rc;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	if (fstatat(backing, rel(path), st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	struct pending *p = find(path);
	if (p)
		st->st_size = p->size;
	return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	ALIVE();
	(void)off, (void)fi, (void)flags;
	int fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return -e;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (fill(buf, e->d_name, NULL, 0, 0))
			break;
	closedir(d);
	return 0;
}

static int op_mkdir(const char *path, mode_t mode)
{
	ALIVE();
	return mkdirat(backing, rel(path), mode) < 0 ? -errno : 0;
}

static int op_rmdir(const char *path)
{
	ALIVE();
	return unlinkat(backing, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int op_unlink(const char *path)
{
	ALIVE();
	if (unlinkat(backing, rel(path), 0) < 0)
		return -errno;
	drop(path);
	return 0;
}

static int repath(struct pending *p, const char *path)
{
	char *np = strdup(path);
	if (!np)
		return -ENOMEM;
	free(p->path);
	p->path = np;
	return 0;
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	ALIVE();
	if (renameat2(backing, rel(from), backing, rel(to), flags) < 0)
		return -errno;
	if (strcmp(from, to) == 0)
		return 0;
	struct pending *pf = find(from), *pt = find(to);
	if (flags & RENAME_EXCHANGE) {
		int rc = pf ? repath(pf, to) : 0;
		return rc ? rc : pt ? repath(pt, from) : 0;
	}
	if (pt)
		drop(to);
	return pf ? repath(pf, to) : 0;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	ALIVE();
	(void)fi;
	return fchmodat(backing, rel(path), mode, 0) < 0 ? -errno : 0;
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	ALIVE();
	(void)fi;
	return fchownat(backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	ALIVE();
	(void)fi;
	return utimensat(backing, rel(path), tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Truncation reaches the backing file at once and cuts the held writes. */
static int truncate_to(const char *path, int fd, off_t size)
{
	if (ftruncate(fd, size) < 0)
		return -errno;
	struct pending *p = find(path);
	if (!p)
		return 0;
	p->size = size;
	for (size_t i = 0; i < p->n; i++) {
		struct held *h = &p->w[i];
		if (h->off >= size)
			h->len = 0;
		else if (h->off + (off_t)h->len > size)
			h->len = (size_t)(size - h->off);
	}
	return 0;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	ALIVE();
	int fd = fi ? (int)fi->fh : openat(backing, rel(path), O_WRONLY);
	if (fd < 0)
		return -errno;
	int rc = truncate_to(path, fd, size);
	if (!fi)
		close(fd);
	return rc;
}

static int open_backing(const char *path, struct fuse_file_info *fi, int flags, mode_t mode)
{
	int fd = openat(backing, rel(path), O_RDWR | (flags & (O_CREAT | O_EXCL)), mode);
	if (fd < 0 && errno == EISDIR)
		fd = openat(backing, rel(path), O_RDONLY);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	if (flags & O_TRUNC)
		return truncate_to(path, fd, 0);
	return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	ALIVE();
	return open_backing(path, fi, fi->flags, 0);
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	ALIVE();
	return open_backing(path, fi, fi->flags | O_CREAT, mode);
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	ALIVE();
	struct pending *p = find(path);
	ssize_t n = pread((int)fi->fh, buf, size, off);
	if (n < 0)
		return -errno;
	if (!p)
		return (int)n;
	size_t len = off >= p->size		      ? 0
		     : (size_t)(p->size - off) < size ? (size_t)(p->size - off)
						      : size;
	if ((size_t)n < len)
		memset(buf + n, 0, len - (size_t)n);
	for (size_t i = 0; i < p->n; i++) {
		const struct held *h = &p->w[i];
		off_t a = h->off > off ? h->off : off;
		off_t b = h->off + (off_t)h->len < off + (off_t)len ? h->off + (off_t)h->len
								    : off + (off_t)len;
		if (a < b)
			memcpy(buf + (a - off), h->data + (a - h->off), (size_t)(b - a));
	}
	return (int)len;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ALIVE();
	struct pending *p = find(path);
	if (!p) {
		struct stat st;
		if (fstat((int)fi->fh, &st) < 0)
			return -errno;
		if (!(p = calloc(1, sizeof *p)) || !(p->path = strdup(path))) {
			free(p);
			return -ENOMEM;
		}
		p->size = st.st_size;
		p->next = files;
		files = p;
	}
	if (p->n == p->cap) {
		size_t nc = p->cap ? 2 * p->cap : 16;
		struct held *w = realloc(p->w, nc * sizeof *w);
		if (!w)
			return -ENOMEM;
		p->w = w;
		p->cap = nc;
	}
	char *d = malloc(size ? size : 1);
	if (!d)
		return -ENOMEM;
	memcpy(d, buf, size);
	p->w[p->n++] = (struct held){.off = off, .len = size, .data = d};
	if (off + (off_t)size > p->size)
		p->size = off + (off_t)size;
	return (int)size;
}

static const char *cut_suffix; /* --cut-suffix: only those files count */

static bool ends_with(const char *path, const char *suffix)
{
	size_t n = strlen(path), k = strlen(suffix);
	return n > k && strcmp(path + n - k, suffix) == 0;
}

static bool is_wal(const char *path)
{
	if (cut_suffix)
		return ends_with(path, cut_suffix);
	return ends_with(path, ".log") || ends_with(path, ".seg");
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	ALIVE();
	if (cut_at && is_wal(path) && ++wal_syncs == cut_at) {
		dead = true;
		fprintf(stderr, "powerfs: power cut at fsync %ld of a write-ahead file, %s\n",
			wal_syncs, path);
		return -EIO;
	}
	struct pending *p = find(path);
	size_t kept = 0, lost = 0;
	int rc = p ? flush_to(p, (int)fi->fh, false, &kept, &lost) : 0;
	if (rc)
		return rc;
	if (p)
		drop(path);
	return (datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh)) < 0 ? -errno : 0;
}

static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	ALIVE();
	(void)path, (void)datasync, (void)fi;
	return 0; /* namespace changes are already durable (see the top) */
}

static int op_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	ALIVE();
	if (fallocate((int)fi->fh, mode, off, len) < 0)
		return -errno;
	struct pending *p = find(path);
	if (p && !(mode & FALLOC_FL_KEEP_SIZE) && off + len > p->size)
		p->size = off + len;
	return 0;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static int op_statfs(const char *path, struct statvfs *st)
{
	ALIVE();
	(void)path;
	return fstatvfs(backing, st) < 0 ? -errno : 0;
}

static int op_access(const char *path, int mask)
{
	ALIVE();
	return faccessat(backing, rel(path), mask, 0) < 0 ? -errno : 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	return NULL;
}

/* The power goes: what was never synced is lost, page by page. */
static void op_destroy(void *ud)
{
	(void)ud;
	size_t kept = 0, lost = 0, nfiles = 0;
	while (files) {
		struct pending *p = files;
		int fd = openat(backing, rel(p->path), O_WRONLY);
		size_t k = 0, l = 0;
		if (fd >= 0) {
			flush_to(p, fd, true, &k, &l);
			close(fd);
		}
		fprintf(stderr, "powerfs: %s: %zu bytes kept, %zu lost\n", p->path, k, l);
		kept += k;
		lost += l;
		nfiles++;
		drop(p->path);
	}
	fprintf(stderr, "powerfs: power cut: %zu unsynced bytes kept, %zu lost, in %zu files\n",
		kept, lost, nfiles);
}

static const struct fuse_operations ops = {
    .getattr = op_getattr,
    .readdir = op_readdir,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .unlink = op_unlink,
    .rename = op_rename,
    .chmod = op_chmod,
    .chown = op_chown,
    .utimens = op_utimens,
    .truncate = op_truncate,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .fsync = op_fsync,
    .fsyncdir = op_fsyncdir,
    .fallocate = op_fallocate,
    .release = op_release,
    .statfs = op_statfs,
    .access = op_access,
    .init = op_init,
    .destroy = op_destroy,
};

int main(int argc, char **argv)
{
	const char *dir = NULL, *mnt = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc) {
			keep = strtod(argv[++i], NULL);
		} else if (strcmp(argv[i], "--cut-suffix") == 0 && i + 1 < argc) {
			cut_suffix = argv[++i];
		} else if (strcmp(argv[i], "--cut-at") == 0 && i + 1 < argc) {
			cut_at = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (!dir) {
			dir = argv[i];
		} else if (!mnt) {
			mnt = argv[i];
		} else {
			dir = NULL;
			break;
		}
	}
	if (!dir || !mnt || keep < 0 || keep > 1) {
		fprintf(stderr, "usage: powerfs BACKING_DIR MOUNTPOINT [--keep P] [--seed N] "
				"[--cut-at N] [--cut-suffix SUFFIX]\n");
		return 2;
	}
	if ((backing = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
		perror(dir);
		return 1;
	}
	char *fargv[] = {argv[0], (char *)mnt, "-f", "-s", "-o", "fsname=powerfs", NULL};
	return fuse_main(6, fargv, &ops, NULL);
}
