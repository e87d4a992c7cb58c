/*
 * The filesystem face of a node: the keyspace mounted as a directory tree
 * through libfuse3's low-level API (DESIGN.md §6, kvfsd(8) FILESYSTEM).
 *
 * Key "a/b/c" is the file a/b/c; directories are the prefixes between
 * slashes; an empty directory made with mkdir is remembered by a marker key
 * "a/b/" (trailing slash, RECORD_DIR kind). Every change is one transaction
 * submitted to the node; FUSE requests are answered from the node's done()
 * callback, so no FUSE worker ever blocks on a commit. Changes applied on
 * this node (from any node) invalidate the kernel's caches from a thread of
 * the fs module's own.
 */
#ifndef KVFS_FS_FS_H
#define KVFS_FS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "node/node.h"

struct fs;

enum fs_consistency {
	FS_LINEARIZABLE = 0, /* open, opendir, lookup and getattr see every committed write */
	FS_STALE = 1,        /* serve this node's state as it is; works without quorum */
};

struct fs_config {
	const char *mountpoint;        /* required */
	const char *data_dir;          /* statfs reports this filesystem's space */
	enum fs_consistency consistency; /* default FS_LINEARIZABLE */
	double cache_timeout;          /* kernel entry + attribute cache, seconds (default 5) */
	bool allow_other;              /* other users may use the mount (default false) */
	uid_t uid;                     /* owner shown for everything (default: our euid) */
	gid_t gid;                     /* group shown (default: our egid) */
	mode_t umask;                  /* applied to modes a key does not store (default 022) */
	size_t max_value;              /* largest file content (default 1 MiB), EFBIG past it */
	size_t max_key;                /* longest key (default 4096), ENAMETOOLONG past it */
	uint32_t rename_limit;         /* most keys a directory rename moves (default 10000) */
	int threads;                   /* most FUSE worker threads (default 16) */
};

void fs_config_default(struct fs_config *cfg);

/* Mounts cfg->mountpoint (recovering a mount left broken by a crash first)
 * and starts the FUSE worker threads and the invalidation thread. The node
 * must be started and must outlive the fs (call fs_destroy before
 * node_stop). cfg strings are borrowed for the fs's lifetime. Returns 0 and
 * *out, or a negative code (logged); nothing stays mounted on failure.
 * Main thread only. */
int fs_create(const struct fs_config *cfg, struct node *node, struct fs **out);

/* Unmounts, joins the workers, waits (bounded by the node's request
 * timeout) for requests still in the node, and frees everything. Returns
 * true then (and for NULL). Returns false, freeing nothing, when files stay
 * open on the mount and the FUSE connection cannot be aborted (no FUSE
 * control filesystem, and no privilege to mount it): the workers wait in
 * the kernel for the last of those files to be closed, which a process
 * blocked in the mount never does. The caller must then stop the node (the
 * workers' requests get KVFS_ESHUTDOWN), not destroy it, and end the
 * process: the kernel ends the connection when kvfsd's /dev/fuse closes.
 * Main thread only. */
bool fs_destroy(struct fs *fs);

/* Registers the FUSE operation metrics (fs_metrics.h); once per process,
 * before /metrics is served. Returns 0 or -ENOMEM. */
int fs_metrics_register(void);

#endif
