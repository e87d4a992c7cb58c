/*
 * Names and attributes: lookup, forget, getattr, setattr, statfs, extended
 * attributes, and the operations kvfs refuses (symlink, link, special
 * files).
 *
 * Attributes come from the value record (record.h): size = value length,
 * mode = the stored permission bits (0 = the default 0666/0777 less the
 * mount's umask), mtime = the record's mtime (atime and ctime show it too).
 * Every file and directory shows the mount's --uid/--gid. Ownership is not
 * stored: chown to the owner shown succeeds and changes nothing, chown to
 * anyone else fails with EPERM (as on vfat). Directories show nlink 1
 * ("unknown", so find does not try the leaf optimisation).
 *
 * Read-only extended attributes describe the key: user.kvfs.revision
 * (modify revision, the REST ETag), user.kvfs.create_revision,
 * user.kvfs.version, user.kvfs.kind (json, raw, dir) and user.kvfs.key.
 * Setting any of them is EPERM; other namespaces are not supported
 * (EOPNOTSUPP, which ls and cp remember per device).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/err.h"
#include "common/log.h"
#include "fs/fs_internal.h"
#include "fs/fs_metrics.h"

/* ---- shared helpers ---- */

int fs_resolve(struct fs *fs, const uint8_t *key, size_t klen, struct fs_stat *st)
{
	memset(st, 0, sizeof *st);
	if (klen == 0) {
		st->exists = st->is_dir = true;
		return 0;
	}
	/* Directory: any key under key + "/" (the marker sorts first). */
	uint8_t stackbuf[512], *dk = stackbuf;
	if (klen + 1 > sizeof stackbuf && !(dk = malloc(klen + 1)))
		return -ENOMEM;
	memcpy(dk, key, klen);
	dk[klen] = '/';
	struct kv_iter *it = kv_iter_create_prefix(fs->kv, dk, klen + 1);
	int rc = 0;
	if (!it) {
		rc = -ENOMEM;
		goto out;
	}
	kv_iter_seek(it, dk, klen + 1);
	if (kv_iter_valid(it)) {
		size_t kl, rl, vl;
		const uint8_t *k = kv_iter_key(it, &kl), *v;
		if (kl >= klen + 1 && memcmp(k, dk, klen + 1) == 0) {
			st->exists = st->is_dir = true;
			if (kl == klen + 1) {
				const uint8_t *r = kv_iter_record(it, &rl);
				if (record_decode(r, rl, &st->meta, &v, &vl) != 0)
					memset(&st->meta, 0, sizeof st->meta);
			}
		}
	}
	if (!st->exists)
		rc = kv_iter_status(it);
	kv_iter_destroy(it);
	if (st->exists || rc)
		goto out;
	char *rec;
	size_t rl, vl;
	const uint8_t *v;
	rc = kv_get(fs->kv, key, klen, &rec, &rl);
	if (rc == 0) {
		rc = record_decode(rec, rl, &st->meta, &v, &vl);
		st->exists = rc == 0;
		st->size = vl;
		kv_free(rec);
	} else if (rc == KVFS_ENOTFOUND) {
		rc = 0;
	}
out:
	if (dk != stackbuf)
		free(dk);
	return rc;
}

void fs_fill_attr(struct fs *fs, uint64_t ino, const struct fs_stat *st, struct stat *a)
{
	memset(a, 0, sizeof *a);
	uint32_t perm = st->meta.mode & 07777;
	a->st_ino = ino;
	if (st->is_dir) {
		a->st_mode = S_IFDIR | (perm ? perm : (0777 & ~fs->cfg.umask));
		a->st_nlink = 1;
	} else {
		a->st_mode = S_IFREG | (perm ? perm : (0666 & ~fs->cfg.umask));
		a->st_nlink = 1;
		a->st_size = (off_t)st->size;
		a->st_blocks = (blkcnt_t)((st->size + 511) / 512);
	}
	a->st_uid = fs->cfg.uid;
	a->st_gid = fs->cfg.gid;
	a->st_blksize = 4096;
	int64_t t = st->meta.mtime_ns ? st->meta.mtime_ns : fs->start_ns;
	a->st_mtim.tv_sec = t / 1000000000;
	a->st_mtim.tv_nsec = t % 1000000000;
	a->st_atim = a->st_ctim = a->st_mtim;
}

int fs_inode_attr(struct fs *fs, struct fs_inode *i, struct stat *attr)
{
	struct byte_buf key;
	struct fs_stat st;
	bb_init(&key);
	pthread_mutex_lock(&fs->lock);
	int rc = fs_inode_key(i, &key);
	bool is_dir = i->is_dir, pending = i->pending;
	struct fs_data *d = i->data && (i->writers || fs_data_dirty(i->data)) ? i->data : NULL;
	if (d)
		d->refs++;
	pthread_mutex_unlock(&fs->lock);
	if (rc == 0)
		rc = fs_resolve(fs, key.data, key.len, &st);
	bb_free(&key);
	if (rc == 0 && st.exists && st.is_dir != is_dir)
		st.exists = false; /* the name now holds the other kind: stale inode */
	if (rc == 0 && !st.exists && !(pending && d))
		rc = KVFS_ENOTFOUND;
	if (rc == 0) {
		if (!st.exists) {
			st.exists = true;
			st.meta.mtime_ns = fs_now_ns();
		}
		if (d) {
			pthread_mutex_lock(&d->lock);
			st.size = d->len;
			if (d->mode_set)
				st.meta.mode = d->mode;
			pthread_mutex_unlock(&d->lock);
		}
		fs_fill_attr(fs, i->ino, &st, attr);
	}
	if (d) {
		pthread_mutex_lock(&fs->lock);
		if (--d->refs == 0)
			fs_data_free(d);
		pthread_mutex_unlock(&fs->lock);
	}
	return rc;
}

void fs_reply_entry(struct fs *fs, fuse_req_t req, struct fs_inode *parent, const char *name,
		    const struct fs_stat *st)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	pthread_mutex_lock(&fs->lock);
	struct fs_inode *i = fs_inode_make(&fs->it, parent, name, strlen(name), st->is_dir);
	if (i) {
		i->nlookup++;
		e.ino = i->ino;
	}
	pthread_mutex_unlock(&fs->lock);
	if (!i) {
		fsm_reply_err(req, ENOMEM);
		return;
	}
	e.generation = (uint64_t)fs->start_ns;
	e.attr_timeout = e.entry_timeout = fs->cfg.cache_timeout;
	fs_fill_attr(fs, e.ino, st, &e.attr);
	fsm_reply_entry(req, &e);
}

int fs_child_key(struct fs *fs, struct fs_inode *parent, const char *name, struct byte_buf *b)
{
	size_t nlen = strlen(name);
	if (nlen > FS_NAME_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&fs->lock);
	int rc = fs_inode_key(parent, b);
	pthread_mutex_unlock(&fs->lock);
	if (rc < 0)
		return -ENOMEM;
	if (b->len)
		bb_u8(b, '/');
	bb_put(b, name, nlen);
	if (b->err)
		return -ENOMEM;
	/* A directory's marker needs one more byte than its path. */
	if (b->len + 1 > fs->cfg.max_key)
		return -ENAMETOOLONG;
	return 0;
}

void fs_keep_parent(struct fs *fs, struct byte_buf *txn, const uint8_t *key, size_t klen)
{
	const uint8_t *slash = NULL;
	for (size_t i = klen; i > 0; i--)
		if (key[i - 1] == '/') {
			slash = key + i - 1;
			break;
		}
	if (!slash)
		return; /* the root never vanishes */
	size_t mlen = (size_t)(slash - key) + 1;
	char *rec;
	size_t rl;
	if (kv_get(fs->kv, key, mlen, &rec, &rl) == 0) {
		kv_free(rec);
		return;
	}
	txn_add_put(txn, key, mlen, RECORD_DIR, 0, TXN_F_KEEP_MODE, NULL, 0);
}

/* Takes a reference on inode ino; NULL (and the reply sent) if unknown. */
static struct fs_inode *get_ref(struct fs *fs, fuse_req_t req, fuse_ino_t ino)
{
	struct fs_inode *i = fs_get_ref(fs, ino);
	if (!i)
		fsm_reply_err(req, ESTALE);
	return i;
}

/* ---- lookup / forget ---- */

static void lookup_cont(struct fs_op *op, int rc)
{
	struct fs *fs = op->fs;
	struct byte_buf key;
	struct fs_stat st;
	if (rc) {
		fsm_reply_err(op->req, fs_errno(rc));
		return;
	}
	bb_init(&key);
	if ((rc = fs_child_key(fs, op->parent, op->name, &key)) == 0)
		rc = fs_resolve(fs, key.data, key.len, &st);
	bb_free(&key);
	if (rc == 0 && !st.exists) {
		/* A file created on this mount and not committed yet is
		 * visible here (others see it after close). */
		pthread_mutex_lock(&fs->lock);
		struct fs_inode *i =
			fs_inode_child(&fs->it, op->parent, op->name, strlen(op->name));
		bool pending = i && i->pending && i->data;
		if (pending) {
			st.exists = true;
			st.meta.mode = i->data->mode;
			st.meta.mtime_ns = fs_now_ns();
			st.size = i->data->len;
		}
		pthread_mutex_unlock(&fs->lock);
	}
	if (rc == 0 && !st.exists)
		rc = KVFS_ENOTFOUND;
	if (rc)
		fsm_reply_err(op->req, fs_errno(rc));
	else
		fs_reply_entry(fs, op->req, op->parent, op->name, &st);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fsm_begin(req, FSM_LOOKUP);
	struct fs *fs = fuse_req_userdata(req);
	struct fs_op *op;
	if (strlen(name) > FS_NAME_MAX) {
		fsm_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (!(op = fs_op_new(fs, req)) || !(op->name = strdup(name))) {
		if (op)
			fs_op_free(op);
		fsm_reply_err(req, ENOMEM);
		return;
	}
	if (!(op->parent = get_ref(fs, req, parent))) {
		fs_op_free(op);
		return;
	}
	fs_op_read(op, lookup_cont);
}

static void forget_one(struct fs *fs, fuse_ino_t ino, uint64_t n)
{
	struct fs_inode *i = fs_inode_get(&fs->it, ino);
	if (i)
		fs_inode_forget(&fs->it, i, n);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fsm_begin(req, FSM_FORGET);
	struct fs *fs = fuse_req_userdata(req);
	pthread_mutex_lock(&fs->lock);
	forget_one(fs, ino, nlookup);
	pthread_mutex_unlock(&fs->lock);
	fsm_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	fsm_begin(req, FSM_FORGET);
	struct fs *fs = fuse_req_userdata(req);
	pthread_mutex_lock(&fs->lock);
	for (size_t k = 0; k < count; k++)
		forget_one(fs, forgets[k].ino, forgets[k].nlookup);
	pthread_mutex_unlock(&fs->lock);
	fsm_reply_none(req);
}

/* ---- getattr / setattr ---- */

static void attr_cont(struct fs_op *op, int rc)
{
	struct stat attr;
	if (rc == 0)
		rc = fs_inode_attr(op->fs, op->ino, &attr);
	if (rc)
		fsm_reply_err(op->req, fs_errno(rc));
	else
		fsm_reply_attr(op->req, &attr, op->fs->cfg.cache_timeout);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_GETATTR);
	struct fs_op *op = fs_op_on(req, ino);
	if (!op)
		return;
	if (fi || ino == FUSE_ROOT_ID) {
		/* fstat of an open file: its own state is current; the root
		 * always exists. */
		attr_cont(op, 0);
		fs_op_free(op);
	} else {
		fs_op_read(op, attr_cont);
	}
}

/* After a committed setattr: the data buffer committed with it is clean
 * unless written again meanwhile. */
static void setattr_cont(struct fs_op *op, int rc)
{
	struct fs *fs = op->fs;
	if (op->d) {
		pthread_mutex_lock(&op->d->lock);
		if (rc && op->gen) /* nothing committed: still to do */
			fs_data_commit_failed(op->d, op->gen, op->prev_gen);
		pthread_mutex_unlock(&op->d->lock);
	}
	if (rc == 0) {
		pthread_mutex_lock(&fs->lock);
		op->ino->pending = false;
		pthread_mutex_unlock(&fs->lock);
	}
	attr_cont(op, rc);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_SETATTR);
	struct fs *fs = fuse_req_userdata(req);
	struct fs_op *op = fs_op_on(req, ino);
	struct byte_buf key;
	int rc = 0;
	if (!op)
		return;
	bb_init(&key);
	log_debug("fs", "setattr ino %llu to_set 0x%x size %lld", (unsigned long long)ino, to_set,
		  (long long)attr->st_size);
	if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != fs->cfg.uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != fs->cfg.gid)) {
		rc = -EPERM; /* ownership is not stored (see the top of this file) */
		goto fail;
	}
	int64_t mtime = 0;
	uint8_t tflags = 0;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		mtime = fs_now_ns();
		tflags |= TXN_F_SET_MTIME;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		mtime = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
		tflags |= TXN_F_SET_MTIME;
	}
	if (to_set & FUSE_SET_ATTR_MODE)
		tflags |= TXN_F_SET_MODE;
	uint32_t mode = attr->st_mode & 07777;

	pthread_mutex_lock(&fs->lock);
	rc = fs_inode_key(op->ino, &key) < 0 ? -ENOMEM : 0;
	bool is_dir = op->ino->is_dir;
	struct fs_data *d = op->ino->data && (op->ino->writers || fs_data_dirty(op->ino->data))
				    ? op->ino->data
				    : NULL;
	if (d) {
		d->refs++;
		op->d = d;
	}
	pthread_mutex_unlock(&fs->lock);
	if (rc)
		goto fail;

	txn_begin(&op->txn, fs_now_ns());
	if (is_dir) {
		if (!tflags) {
			attr_cont(op, 0);
			fs_op_free(op);
			bb_free(&key);
			return;
		}
		/* Directory attributes live in its marker, made if needed. */
		struct fs_stat st;
		bb_u8(&key, '/');
		if ((rc = fs_resolve(fs, key.data, key.len - 1, &st)) < 0)
			goto fail;
		char *rec;
		size_t rl;
		if (kv_get(fs->kv, key.data, key.len, &rec, &rl) == 0)
			kv_free(rec);
		else
			txn_add_put(&op->txn, key.data, key.len, RECORD_DIR, 0, TXN_F_KEEP_MODE,
				    NULL, 0);
		txn_add_touch(&op->txn, key.data, key.len, tflags, mode, mtime);
		fs_op_write(op, setattr_cont);
		bb_free(&key);
		return;
	}

	bool commit_now = false;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (d) {
			/* ftruncate through a writable handle edits its
			 * buffer (committed at close); truncate(2) by path
			 * while the file is open here commits now. */
			struct fs_handle *h = fi ? (struct fs_handle *)(uintptr_t)fi->fh : NULL;
			pthread_mutex_lock(&d->lock);
			rc = fs_data_truncate(d, attr->st_size, fs->cfg.max_value);
			if (h && h->write && h->d == d)
				h->wgen = d->wgen;
			else
				commit_now = true;
			pthread_mutex_unlock(&d->lock);
			if (rc)
				goto fail;
		} else {
			/* truncate(1) on a file nobody here has open: read,
			 * resize, commit (last writer wins, as for close). */
			char *rec;
			size_t rl, vl;
			const uint8_t *v;
			struct record_meta m;
			if ((uint64_t)attr->st_size > fs->cfg.max_value) {
				rc = -EFBIG;
				goto fail;
			}
			if ((rc = kv_get(fs->kv, key.data, key.len, &rec, &rl)) < 0)
				goto fail;
			if ((rc = record_decode(rec, rl, &m, &v, &vl)) < 0) {
				kv_free(rec);
				goto fail;
			}
			size_t nl = (size_t)attr->st_size;
			uint8_t *nv = calloc(1, nl ? nl : 1);
			if (!nv) {
				kv_free(rec);
				rc = -ENOMEM;
				goto fail;
			}
			memcpy(nv, v, vl < nl ? vl : nl);
			kv_free(rec);
			txn_add_put(&op->txn, key.data, key.len, RECORD_RAW, 0, TXN_F_KEEP_MODE, nv,
				    nl);
			free(nv);
			if (!tflags) {
				fs_op_write(op, setattr_cont);
				bb_free(&key);
				return;
			}
		}
	}
	if (!tflags && !commit_now) {
		attr_cont(op, 0);
		fs_op_free(op);
		bb_free(&key);
		return;
	}
	if (d) {
		/* Commit what is written so far with the new attributes, so
		 * a later close does not undo them (cp -p sets times before
		 * close). */
		pthread_mutex_lock(&d->lock);
		if (d->err) {
			rc = -d->err;
			pthread_mutex_unlock(&d->lock);
			goto fail;
		}
		if (fs_data_dirty(d)) {
			txn_add_put(&op->txn, key.data, key.len, RECORD_RAW, d->mode,
				    d->mode_set ? 0 : TXN_F_KEEP_MODE, d->buf, d->len);
			op->gen = fs_data_begin_commit(d, &op->prev_gen);
		}
		pthread_mutex_unlock(&d->lock);
	}
	if (tflags)
		txn_add_touch(&op->txn, key.data, key.len, tflags | TXN_F_MUST_EXIST, mode, mtime);
	if (d && (tflags & TXN_F_SET_MODE)) {
		pthread_mutex_lock(&d->lock);
		d->mode = mode;
		d->mode_set = true;
		pthread_mutex_unlock(&d->lock);
	}
	fs_op_write(op, setattr_cont);
	bb_free(&key);
	return;
fail:
	bb_free(&key);
	fsm_reply_err(req, fs_errno(rc));
	fs_op_free(op);
}

/* ---- statfs ---- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	fsm_begin(req, FSM_STATFS);
	struct fs *fs = fuse_req_userdata(req);
	struct statvfs sv;
	memset(&sv, 0, sizeof sv);
	if (statvfs(fs->cfg.data_dir ? fs->cfg.data_dir : "/", &sv) < 0) {
		fsm_reply_err(req, errno);
		return;
	}
	/* Space is the data directory's filesystem's; "inodes" are keys. */
	uint64_t keys = kv_key_count(fs->kv);
	sv.f_files = keys + sv.f_ffree;
	sv.f_namemax = FS_NAME_MAX;
	sv.f_flag = 0;
	fsm_reply_statfs(req, &sv);
}

/* ---- extended attributes ---- */

static const char *const xattr_names[] = {
	"user.kvfs.revision", "user.kvfs.create_revision", "user.kvfs.version",
	"user.kvfs.kind", "user.kvfs.key",
};
#define N_XATTR (sizeof xattr_names / sizeof xattr_names[0])

static void reply_xattr(fuse_req_t req, const void *val, size_t len, size_t size)
{
	if (size == 0)
		fsm_reply_xattr(req, len);
	else if (size < len)
		fsm_reply_err(req, ERANGE);
	else
		fsm_reply_buf(req, val, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	fsm_begin(req, FSM_GETXATTR);
	struct fs *fs = fuse_req_userdata(req);
	size_t n;
	for (n = 0; n < N_XATTR; n++)
		if (strcmp(name, xattr_names[n]) == 0)
			break;
	if (n == N_XATTR) {
		fsm_reply_err(req, strncmp(name, "user.", 5) == 0 ? ENODATA : EOPNOTSUPP);
		return;
	}
	struct fs_inode *i = get_ref(fs, req, ino);
	if (!i)
		return;
	struct byte_buf key;
	struct fs_stat st;
	bb_init(&key);
	pthread_mutex_lock(&fs->lock);
	int rc = fs_inode_key(i, &key) < 0 ? -ENOMEM : 0;
	bool is_dir = i->is_dir;
	fs_inode_unref(&fs->it, i);
	pthread_mutex_unlock(&fs->lock);
	if (rc == 0)
		rc = fs_resolve(fs, key.data, key.len, &st);
	if (rc == 0 && !st.exists)
		rc = KVFS_ENOTFOUND;
	if (rc) {
		bb_free(&key);
		fsm_reply_err(req, rc == KVFS_ENOTFOUND ? ENODATA : fs_errno(rc));
		return;
	}
	char val[64];
	int len = 0;
	static const char *const kinds[] = {"json", "raw", "dir"};
	switch (n) {
	case 0:
		len = snprintf(val, sizeof val, "%" PRIu64, st.meta.mod_rev);
		break;
	case 1:
		len = snprintf(val, sizeof val, "%" PRIu64, st.meta.create_rev);
		break;
	case 2:
		len = snprintf(val, sizeof val, "%" PRIu64, st.meta.version);
		break;
	case 3:
		len = snprintf(val, sizeof val, "%s",
			       is_dir ? "dir" : st.meta.kind < 3 ? kinds[st.meta.kind] : "unknown");
		break;
	case 4:
		if (is_dir && key.len)
			bb_u8(&key, '/');
		reply_xattr(req, key.data, key.len, size);
		bb_free(&key);
		return;
	}
	bb_free(&key);
	reply_xattr(req, val, (size_t)len, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	fsm_begin(req, FSM_LISTXATTR);
	char buf[256];
	size_t len = 0;
	for (size_t n = 0; n < N_XATTR; n++) {
		size_t l = strlen(xattr_names[n]) + 1;
		memcpy(buf + len, xattr_names[n], l);
		len += l;
	}
	reply_xattr(req, buf, len, size);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	fsm_begin(req, FSM_SETXATTR);
	fsm_reply_err(req, strncmp(name, "user.kvfs.", 10) == 0 ? EPERM : EOPNOTSUPP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fsm_begin(req, FSM_REMOVEXATTR);
	fsm_reply_err(req, strncmp(name, "user.kvfs.", 10) == 0 ? EPERM : EOPNOTSUPP);
}

/* ---- refused: symlinks, hard links, special files ---- */

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fsm_begin(req, FSM_SYMLINK);
	fsm_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fsm_begin(req, FSM_LINK);
	fsm_reply_err(req, EPERM);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	fsm_begin(req, FSM_READLINK);
	fsm_reply_err(req, EINVAL);
}

void fs_ops_fill(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = op_lookup;
	ops->forget = op_forget;
	ops->forget_multi = op_forget_multi;
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->statfs = op_statfs;
	ops->getxattr = op_getxattr;
	ops->listxattr = op_listxattr;
	ops->setxattr = op_setxattr;
	ops->removexattr = op_removexattr;
	ops->symlink = op_symlink;
	ops->link = op_link;
	ops->readlink = op_readlink;
}
