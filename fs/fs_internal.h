/*
 * Internals shared by the fs module's files:
 *
 *   fs.c        session, mount (and recovery of a broken one), shutdown
 *   fs_name.c   path <-> key rules, which keys can be names (pure)
 *   fs_inode.c  inode table: ino <-> (parent, name), lookup counts
 *   fs_data.c   open-file content buffers
 *   fs_async.c  deferred replies: requests handed to the node
 *   fs_ops.c    lookup, getattr, setattr, xattrs, statfs, forget
 *   fs_file.c   create, open, read, write, flush, fsync, release
 *   fs_dir.c    opendir, readdirplus, mkdir, rmdir, unlink, rename
 *   fs_inval.c  kernel cache invalidation thread (fed by the apply hook)
 *
 * Locking: fs->lock protects the inode table and every struct fs_inode
 * field, and the refcount and pointer fields of struct fs_data; d->lock
 * protects a data buffer's bytes and state. Order: fs->lock before d->lock.
 * Neither is held across a call into the kernel (fuse_reply_*, notify) or a
 * LevelDB read of a whole value.
 */
#ifndef KVFS_FS_FS_INTERNAL_H
#define KVFS_FS_FS_INTERNAL_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/bytes.h"
#include "fs/fs.h"
#include "node/node.h"
#include "store/kv.h"
#include "store/record.h"
#include "store/txn.h"

#define FS_NAME_MAX 255

/* ---- fs_name.c: path <-> key ---- */

/* True when a key component can be a file name: 1..255 bytes, no NUL, not
 * "." or "..". */
bool fs_name_ok(const uint8_t *name, size_t len);

/* One directory entry found while scanning the keys under a directory's
 * prefix (see fs_dir.c). */
enum fs_scan_kind {
	FS_SCAN_SELF,    /* the directory's own marker key "prefix" */
	FS_SCAN_FILE,    /* key prefix+name: a file named name */
	FS_SCAN_SUBDIR,  /* key prefix+name+"/...": a subdirectory named name */
	FS_SCAN_HIDDEN,  /* a file key whose name cannot be a path */
	FS_SCAN_HIDDEN_SUBTREE, /* a subtree whose name cannot be a path */
};

/* Classifies key (which starts with prefix, plen bytes) and sets *name and
 * *nlen to the entry's name inside key. */
enum fs_scan_kind fs_scan_classify(const uint8_t *key, size_t klen, size_t plen,
				   const uint8_t **name, size_t *nlen);

/* ---- fs_data.c: content of open files ---- */

struct fs_data {
	pthread_mutex_t lock;
	uint32_t refs;      /* handles + inode's pointer; under fs->lock */
	uint8_t *buf;       /* content (malloc'd, cap bytes) */
	size_t len, cap;
	uint64_t rev;       /* revision loaded (0: not in the store) */
	uint32_t mode;      /* mode to store when mode_set */
	bool mode_set;      /* else the PUT keeps the stored mode */
	bool trunc_only;    /* emptied by O_TRUNC/create and not written since */
	int err;            /* sticky positive errno (EFBIG): never committed */
	uint64_t wgen;      /* bumped by every change */
	uint64_t committed; /* wgen of the last commit submitted (dirty: wgen > committed) */
};

struct fs_data *fs_data_new(void);
/* Copies len bytes of value into a new data buffer. NULL on ENOMEM. */
struct fs_data *fs_data_from(const uint8_t *value, size_t len, uint64_t rev);
void fs_data_free(struct fs_data *d);
/* Under d->lock. Return 0 or -EFBIG (d->err set: the file stays poisoned
 * until every handle is closed) or -ENOMEM. */
int fs_data_write(struct fs_data *d, off_t off, const void *buf, size_t len, size_t max);
int fs_data_truncate(struct fs_data *d, off_t size, size_t max);
/* Under d->lock. Changes not yet handed to a commit? */
bool fs_data_dirty(const struct fs_data *d);
/* Under d->lock: the content goes into a commit now; returns its
 * generation and the previous one in *prev, for fs_data_commit_failed. */
uint64_t fs_data_begin_commit(struct fs_data *d, uint64_t *prev);
/* Under d->lock: that commit failed; its changes are dirty again. */
void fs_data_commit_failed(struct fs_data *d, uint64_t gen, uint64_t prev);

/* An open file (fi->fh). */
struct fs_handle {
	struct fs_inode *ino; /* ref */
	struct fs_data *d;    /* ref */
	bool write, append;
	bool shared;          /* d is the inode's shared write buffer */
	uint64_t wgen;        /* d->wgen after this handle's last change (d->lock) */
};

/* ---- fs_inode.c: the inode table ---- */

struct fs_inode {
	uint64_t ino;
	uint64_t nlookup;          /* kernel references (FUSE lookup count) */
	uint32_t refs;             /* children + open handles + ops in flight */
	struct fs_inode *parent;   /* holds a ref; NULL for the root and detached inodes */
	char *name;                /* NUL-terminated, nlen bytes */
	uint32_t nlen;
	bool is_dir;
	bool linked;               /* reachable by (parent, name) */
	bool pending;              /* created on this mount, not committed yet */
	struct fs_inode *next_ino, *next_name; /* hash chains */
	struct fs_data *data;      /* shared content while open for write (a ref) */
	uint32_t writers;          /* handles open for writing */
};

struct fs_itable {
	struct fs_inode **by_ino, **by_name;
	size_t nbuckets, count;
	uint64_t next_ino;
	struct fs_inode *root;
};

int fs_itable_init(struct fs_itable *t);
void fs_itable_free(struct fs_itable *t);
/* Under fs->lock: */
struct fs_inode *fs_inode_get(struct fs_itable *t, uint64_t ino);
struct fs_inode *fs_inode_child(struct fs_itable *t, struct fs_inode *parent, const char *name,
				size_t nlen);
/* The inode at (parent, name) of the given type, created if needed (an
 * inode there of the other type is unlinked first). Does not change
 * nlookup. NULL on ENOMEM. */
struct fs_inode *fs_inode_make(struct fs_itable *t, struct fs_inode *parent, const char *name,
			       size_t nlen, bool is_dir);
/* Removes ino from the name table (unlink, replaced by rename). */
void fs_inode_unlink(struct fs_itable *t, struct fs_inode *ino);
/* Moves ino to (parent, name), unlinking what was there. -ENOMEM. */
int fs_inode_move(struct fs_itable *t, struct fs_inode *ino, struct fs_inode *parent,
		  const char *name, size_t nlen);
void fs_inode_ref(struct fs_inode *ino);
/* Drops a reference / lookups; frees the inode (and unreferenced ancestors)
 * when neither remains. */
void fs_inode_unref(struct fs_itable *t, struct fs_inode *ino);
void fs_inode_forget(struct fs_itable *t, struct fs_inode *ino, uint64_t n);
/* The key of ino into b (root: empty); for a directory without the
 * trailing slash. 0 or -ENOMEM. */
int fs_inode_key(struct fs_inode *ino, struct byte_buf *b);

/* ---- the fs ---- */

struct fs_inval; /* fs_inval.c */

struct fs {
	struct fs_config cfg;
	struct node *node;
	struct kv *kv;
	struct fuse_session *se;
	pthread_t loop_thread;
	bool loop_started;
	int loop_done;             /* set (atomically) when the loop returns */
	dev_t dev;                 /* the mount's device, for an abort at shutdown */
	int64_t start_ns;          /* mtime of directories without a marker */

	pthread_mutex_t lock;
	struct fs_itable it;

	pthread_mutex_t olock;     /* outstanding node requests */
	pthread_cond_t ocond;
	long outstanding;

	struct fs_inval *inval;
};

/* ---- fs_async.c: deferred replies ---- */

struct fs_op;
/* Called once with the node's result (0 or a negative code), on the node
 * loop thread or, when the request never reached the node, on the caller's.
 * It replies to op->req; the op is freed after it returns. */
typedef void (*fs_cont_fn)(struct fs_op *op, int rc);

struct fs_op {
	struct node_req nreq;      /* first: done() casts back */
	struct fs *fs;
	fuse_req_t req;
	fs_cont_fn cont;
	struct byte_buf txn;       /* WRITE: the transaction */
	struct fs_inode *ino, *parent, *newparent; /* refs held, dropped by fs_op_free */
	struct fs_data *d;         /* ref held */
	char *name, *newname;      /* owned */
	struct fuse_file_info fi;
	uint64_t gen, prev_gen; /* a data buffer committed with the op */
	int flags;
	mode_t mode;
	struct stat attr;
	int to_set;
	int retries;
};

struct fs_op *fs_op_new(struct fs *fs, fuse_req_t req);
/* The inode numbered ino with a reference taken (fs_inode_unref under
 * fs->lock to drop it), or NULL if the kernel's number is stale. */
struct fs_inode *fs_get_ref(struct fs *fs, fuse_ino_t ino);
/* A new op holding a reference to ino, or NULL after replying ENOMEM or
 * ESTALE. */
struct fs_op *fs_op_on(fuse_req_t req, fuse_ino_t ino);
/* The usual start of a request on one inode: fs_op_on (and a copy of fi,
 * if given), run through fs_op_read. */
void fs_op_read_on(fuse_req_t req, fuse_ino_t ino, const struct fuse_file_info *fi,
		   fs_cont_fn cont);
void fs_op_free(struct fs_op *op);
/* Hands op->txn (finished) to the node; cont runs when it completes. */
void fs_op_write(struct fs_op *op, fs_cont_fn cont);
/* Runs cont once a linearizable read may be served (at once when the mount
 * is FS_STALE or the node may read locally). */
void fs_op_read(struct fs_op *op, fs_cont_fn cont);
/* Positive errno for a node/store code. */
int fs_errno(int rc);
/* Transaction mtime: this node's clock. */
int64_t fs_now_ns(void);

/* ---- shared helpers (fs_ops.c) ---- */

/* What a key (or directory) looks like in the store. */
struct fs_stat {
	bool exists, is_dir;
	struct record_meta meta; /* file: its record; dir: its marker's (or zeroed) */
	uint64_t size;
};
/* Resolves the path key (a directory wins over a file of the same name).
 * 0 (st->exists says whether anything is there) or a storage error. Any
 * thread. */
int fs_resolve(struct fs *fs, const uint8_t *key, size_t klen, struct fs_stat *st);
void fs_fill_attr(struct fs *fs, uint64_t ino, const struct fs_stat *st, struct stat *attr);
/* attr for ino from its open data or the store. 0 or a negative code. */
int fs_inode_attr(struct fs *fs, struct fs_inode *ino, struct stat *attr);
/* Replies an entry for (parent, name) described by st, counting a lookup. */
void fs_reply_entry(struct fs *fs, fuse_req_t req, struct fs_inode *parent, const char *name,
		    const struct fs_stat *st);
/* Key of (parent, name) into b; -ENAMETOOLONG past the limits. */
int fs_child_key(struct fs *fs, struct fs_inode *parent, const char *name, struct byte_buf *b);
/* Adds "PUT parent-marker" to txn when parent is not the root and has no
 * marker, so removing its last entry does not make it vanish. */
void fs_keep_parent(struct fs *fs, struct byte_buf *txn, const uint8_t *key, size_t klen);

/* ---- operation tables ---- */

void fs_ops_fill(struct fuse_lowlevel_ops *ops);  /* fs_ops.c */
void fs_file_ops(struct fuse_lowlevel_ops *ops);  /* fs_file.c */
void fs_dir_ops(struct fuse_lowlevel_ops *ops);   /* fs_dir.c */

/* ---- fs_inval.c ---- */

int fs_inval_start(struct fs *fs);
void fs_inval_stop(struct fs *fs);
/* The node's apply hook (node loop thread; never blocks). */
void fs_inval_hook(void *ud, uint64_t index, const void *txn, size_t len);
/* Replies to an open after every invalidation queued so far was delivered
 * (so the kernel cannot serve stale pages or a stale size to this open). */
void fs_inval_reply_open(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi);

#endif
