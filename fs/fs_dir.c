/*
 * Directories: opendir, readdir(plus), mkdir, rmdir, unlink, rename.
 *
 * Listing never loads a directory into memory. A directory handle holds a
 * LevelDB iterator over the keys under "dir/" (one consistent snapshot,
 * taken at the first readdir after opendir's linearizable read); each
 * readdirplus call emits entries from where the last one stopped. When the
 * scan meets "dir/sub/x" it emits "sub" once and seeks to "dir/sub0" ('0'
 * is the byte after '/'), skipping the whole subtree. If the kernel asks to
 * resume inside the last batch (a short getdents buffer), the handle
 * remembers each entry's resume key and seeks there; any other offset
 * rescans from the start.
 *
 * Offsets: 1 is ".", 2 is "..", entries count from 3.
 *
 * Writes are single transactions: mkdir = CHECK absent + PUT "dir/"
 * (RECORD_DIR); rmdir = CHECK marker + DELETE_PREFIX "dir/" max 1 (so only
 * the marker can go: anything else fails the whole entry, ENOTEMPTY);
 * unlink = DELETE; rename of a file = RENAME (replacing the target in the
 * same entry); rename of a directory = RENAME_PREFIX with max_keys =
 * --mount-rename-limit (E2BIG past it, nothing moved). Removing or moving
 * the last entry out of a directory also puts its marker, so the directory
 * stays until rmdir, as on a local filesystem.
 */
#include <errno.h>
#include <stdio.h> /* RENAME_NOREPLACE */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fs/fs_internal.h"
#include "fs/fs_metrics.h"

struct hist {
	off_t off;
	size_t at, len; /* resume key in the arena */
};

struct fs_dirh {
	pthread_mutex_t lock;
	struct fs_inode *ino; /* ref */
	struct kv_iter *it, *probe;
	struct byte_buf prefix; /* "dir/" (root: empty) */
	off_t pos;              /* offset of the last entry emitted */
	struct byte_buf arena;  /* resume keys of the last batch */
	struct hist *hist;
	size_t nhist, caphist;
};

/* ---- opendir / releasedir ---- */

static void dirh_free(struct fs *fs, struct fs_dirh *dh);

static void opendir_cont(struct fs_op *op, int rc)
{
	struct fs *fs = op->fs;
	struct fs_dirh *dh = NULL;
	if (rc == 0 && !(dh = calloc(1, sizeof *dh)))
		rc = -ENOMEM;
	if (rc) {
		fsm_reply_err(op->req, fs_errno(rc));
		return;
	}
	pthread_mutex_init(&dh->lock, NULL);
	bb_init(&dh->prefix);
	bb_init(&dh->arena);
	pthread_mutex_lock(&fs->lock);
	dh->ino = op->ino;
	fs_inode_ref(op->ino);
	rc = fs_inode_key(op->ino, &dh->prefix);
	pthread_mutex_unlock(&fs->lock);
	if (dh->prefix.len)
		bb_u8(&dh->prefix, '/');
	op->fi.fh = (uint64_t)(uintptr_t)dh;
	op->fi.keep_cache = 0;
	op->fi.cache_readdir = 0;
	if (rc < 0 || dh->prefix.err) {
		dirh_free(fs, dh); /* no releasedir follows a failed opendir */
		fsm_reply_err(op->req, ENOMEM);
		return;
	}
	fsm_reply_open(op->req, &op->fi);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_OPENDIR);
	fs_op_read_on(req, ino, fi, opendir_cont);
}

static void dirh_free(struct fs *fs, struct fs_dirh *dh)
{
	if (dh->it)
		kv_iter_destroy(dh->it);
	if (dh->probe)
		kv_iter_destroy(dh->probe);
	bb_free(&dh->prefix);
	bb_free(&dh->arena);
	free(dh->hist);
	pthread_mutex_lock(&fs->lock);
	fs_inode_unref(&fs->it, dh->ino);
	pthread_mutex_unlock(&fs->lock);
	pthread_mutex_destroy(&dh->lock);
	free(dh);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_RELEASEDIR);
	struct fs *fs = fuse_req_userdata(req);
	dirh_free(fs, (struct fs_dirh *)(uintptr_t)fi->fh);
	fsm_reply_err(req, 0);
}

/* ---- readdir ---- */

/* Seeks dh->it to prefix + name + tail (tail_len 0 or 1 byte). */
static void seek_to(struct fs_dirh *dh, const uint8_t *name, size_t nlen, const char *tail,
		    size_t tail_len, struct byte_buf *tmp)
{
	tmp->len = 0;
	bb_put(tmp, dh->prefix.data, dh->prefix.len);
	bb_put(tmp, name, nlen);
	bb_put(tmp, tail, tail_len);
	kv_iter_seek(dh->it, tmp->data ? tmp->data : (const uint8_t *)"", tmp->len);
}

static void reset(struct fs *fs, struct fs_dirh *dh)
{
	if (dh->it)
		kv_iter_destroy(dh->it);
	if (dh->probe)
		kv_iter_destroy(dh->probe);
	const uint8_t *pfx = dh->prefix.data ? dh->prefix.data : (const uint8_t *)"";
	dh->it = kv_iter_create_prefix(fs->kv, pfx, dh->prefix.len);
	dh->probe = kv_iter_create_prefix(fs->kv, pfx, dh->prefix.len);
	if (dh->it)
		kv_iter_seek(dh->it, dh->prefix.data ? dh->prefix.data : (const uint8_t *)"",
			     dh->prefix.len);
	dh->pos = 0;
}

/* One directory entry from the scan. */
struct dent {
	char name[FS_NAME_MAX + 1];
	struct fs_stat st;
	const uint8_t *resume; /* where to seek for the entry after it */
	size_t rlen;
};

/* Advances the scan to the next entry and fills e (true), or returns false
 * at the end. The iterator is left on the entry's key; the caller moves
 * past it with e->resume once the entry is taken. */
static bool scan_next(struct fs *fs, struct fs_dirh *dh, struct dent *e, struct byte_buf *tmp)
{
	const uint8_t *pfx = dh->prefix.data;
	size_t plen = dh->prefix.len;
	while (dh->it && kv_iter_valid(dh->it)) {
		size_t klen, nlen, rl, vl;
		const uint8_t *k = kv_iter_key(dh->it, &klen), *name, *v;
		if (klen < plen || (plen && memcmp(k, pfx, plen) != 0))
			return false;
		switch (fs_scan_classify(k, klen, plen, &name, &nlen)) {
		case FS_SCAN_SELF:
		case FS_SCAN_HIDDEN:
			kv_iter_next(dh->it);
			continue;
		case FS_SCAN_HIDDEN_SUBTREE:
			seek_to(dh, name, nlen, "0", 1, tmp);
			continue;
		case FS_SCAN_FILE: {
			memset(e, 0, sizeof *e);
			memcpy(e->name, name, nlen);
			e->st.exists = true;
			/* A key that is also a directory prefix is the
			 * directory (the file is hidden, fs_name.c). */
			tmp->len = 0;
			bb_put(tmp, k, klen);
			bb_u8(tmp, '/');
			kv_iter_seek(dh->probe, tmp->data, tmp->len);
			if (kv_iter_valid(dh->probe)) {
				size_t pl;
				const uint8_t *pk = kv_iter_key(dh->probe, &pl);
				if (pl >= tmp->len && memcmp(pk, tmp->data, tmp->len) == 0) {
					e->st.is_dir = true;
					if (pl == tmp->len) {
						const uint8_t *r = kv_iter_record(dh->probe, &rl);
						record_decode(r, rl, &e->st.meta, &v, &vl);
					}
				}
			}
			if (!e->st.is_dir) {
				const uint8_t *r = kv_iter_record(dh->it, &rl);
				if (record_decode(r, rl, &e->st.meta, &v, &vl) == 0)
					e->st.size = vl;
			}
			/* Resume at the key's successor: key + "\0". */
			tmp->len = 0;
			bb_put(tmp, k, klen);
			bb_u8(tmp, 0);
			e->resume = tmp->data;
			e->rlen = tmp->len;
			return true;
		}
		case FS_SCAN_SUBDIR: {
			/* Emitted already where its file twin sorted? */
			char *rec;
			size_t rlen2;
			if (kv_get(fs->kv, k, plen + nlen, &rec, &rlen2) == 0) {
				kv_free(rec);
				seek_to(dh, name, nlen, "0", 1, tmp);
				continue;
			}
			memset(e, 0, sizeof *e);
			memcpy(e->name, name, nlen);
			e->st.exists = e->st.is_dir = true;
			if (klen == plen + nlen + 1) { /* the marker sorts first */
				const uint8_t *r = kv_iter_record(dh->it, &rl);
				record_decode(r, rl, &e->st.meta, &v, &vl);
			}
			tmp->len = 0;
			bb_put(tmp, k, plen + nlen);
			bb_u8(tmp, '0');
			e->resume = tmp->data;
			e->rlen = tmp->len;
			return true;
		}
		}
	}
	return false;
}

static int hist_add(struct fs_dirh *dh, off_t off, const uint8_t *key, size_t len)
{
	if (array_grow(&dh->hist, &dh->caphist, dh->nhist, sizeof *dh->hist, 64) < 0)
		return -ENOMEM;
	dh->hist[dh->nhist++] = (struct hist){off, dh->arena.len, len};
	bb_put(&dh->arena, key, len);
	return dh->arena.err ? -ENOMEM : 0;
}

/* Positions the scan so the next entry emitted has offset off + 1. */
static void position(struct fs *fs, struct fs_dirh *dh, off_t off, struct byte_buf *tmp)
{
	if (!dh->it)
		reset(fs, dh);
	if (off == dh->pos)
		return;
	if (off <= 2) {
		reset(fs, dh);
		dh->pos = off;
		return;
	}
	for (size_t k = 0; k < dh->nhist; k++)
		if (dh->hist[k].off == off) {
			kv_iter_seek(dh->it, dh->arena.data + dh->hist[k].at, dh->hist[k].len);
			dh->pos = off;
			return;
		}
	/* Anywhere else (seekdir): count from the start. */
	reset(fs, dh);
	dh->pos = 2;
	struct dent e;
	while (dh->pos < off && scan_next(fs, dh, &e, tmp)) {
		kv_iter_seek(dh->it, e.resume, e.rlen);
		dh->pos++;
	}
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_dirh *dh = (struct fs_dirh *)(uintptr_t)fi->fh;
	struct byte_buf tmp;
	char *buf = malloc(size);
	size_t used = 0;
	if (!buf) {
		fsm_reply_err(req, ENOMEM);
		return;
	}
	bb_init(&tmp);
	pthread_mutex_lock(&dh->lock);
	position(fs, dh, off, &tmp);
	dh->nhist = 0;
	dh->arena.len = 0;
	while (dh->pos < 2) { /* "." and ".." */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		e.attr.st_mode = S_IFDIR;
		e.attr.st_ino = dh->pos == 0 ? dh->ino->ino : FUSE_ROOT_ID;
		const char *n = dh->pos == 0 ? "." : "..";
		size_t sz = plus ? fuse_add_direntry_plus(req, buf + used, size - used, n, &e,
							  dh->pos + 1)
				 : fuse_add_direntry(req, buf + used, size - used, n, &e.attr,
						     dh->pos + 1);
		if (sz > size - used)
			goto out;
		used += sz;
		dh->pos++;
	}
	struct dent d;
	while (scan_next(fs, dh, &d, &tmp)) {
		struct fuse_entry_param e;
		struct fs_inode *i = NULL;
		memset(&e, 0, sizeof e);
		if (plus) {
			pthread_mutex_lock(&fs->lock);
			i = fs_inode_make(&fs->it, dh->ino, d.name, strlen(d.name), d.st.is_dir);
			if (i)
				i->nlookup++;
			pthread_mutex_unlock(&fs->lock);
			if (!i)
				break;
			e.ino = i->ino;
			e.generation = (uint64_t)fs->start_ns;
			e.attr_timeout = e.entry_timeout = fs->cfg.cache_timeout;
			fs_fill_attr(fs, i->ino, &d.st, &e.attr);
		} else {
			e.attr.st_ino = (ino_t)-1; /* not known yet (0 reads as a deleted entry) */
			e.attr.st_mode = d.st.is_dir ? S_IFDIR : S_IFREG;
		}
		size_t sz = plus ? fuse_add_direntry_plus(req, buf + used, size - used, d.name, &e,
							  dh->pos + 1)
				 : fuse_add_direntry(req, buf + used, size - used, d.name, &e.attr,
						     dh->pos + 1);
		if (sz > size - used) {
			if (i) { /* not sent: the kernel never counted it */
				pthread_mutex_lock(&fs->lock);
				fs_inode_forget(&fs->it, i, 1);
				pthread_mutex_unlock(&fs->lock);
			}
			break;
		}
		used += sz;
		dh->pos++;
		hist_add(dh, dh->pos, d.resume, d.rlen);
		kv_iter_seek(dh->it, d.resume, d.rlen);
	}
out:
	pthread_mutex_unlock(&dh->lock);
	bb_free(&tmp);
	fsm_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_READDIR);
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_READDIR);
	do_readdir(req, ino, size, off, fi, true);
}

/* ---- mkdir ---- */

static void mkdir_cont(struct fs_op *op, int rc)
{
	if (rc == KVFS_EPRECOND)
		rc = -EEXIST;
	if (rc) {
		fsm_reply_err(op->req, fs_errno(rc));
		return;
	}
	struct fs_stat st = {.exists = true, .is_dir = true};
	st.meta.mode = op->mode & 07777;
	st.meta.mtime_ns = fs_now_ns();
	fs_reply_entry(op->fs, op->req, op->parent, op->name, &st);
}

/* Starts an op on (parent, name) with its key in *key. */
static struct fs_op *name_op(fuse_req_t req, fuse_ino_t parent, const char *name,
			     struct byte_buf *key)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_op *op = fs_op_new(fs, req);
	int rc = -ENOMEM;
	bb_init(key);
	if (!op || !(op->name = strdup(name)))
		goto fail;
	rc = -ESTALE;
	if (!(op->parent = fs_get_ref(fs, parent)))
		goto fail;
	if ((rc = fs_child_key(fs, op->parent, name, key)) < 0)
		goto fail;
	return op;
fail:
	bb_free(key);
	fsm_reply_err(req, -rc);
	if (op)
		fs_op_free(op);
	return NULL;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fsm_begin(req, FSM_MKDIR);
	struct byte_buf key;
	struct fs_op *op = name_op(req, parent, name, &key);
	if (!op)
		return;
	op->mode = mode;
	txn_begin(&op->txn, fs_now_ns());
	txn_add_check(&op->txn, key.data, key.len, 0, 0);
	bb_u8(&key, '/');
	txn_add_check(&op->txn, key.data, key.len, 0, 0);
	txn_add_put(&op->txn, key.data, key.len, RECORD_DIR, mode & 07777, 0, NULL, 0);
	bb_free(&key);
	fs_op_write(op, mkdir_cont);
}

/* ---- rmdir / unlink ---- */

static void remove_cont(struct fs_op *op, int rc)
{
	struct fs *fs = op->fs;
	if (rc == KVFS_ETOOMANY)
		rc = -ENOTEMPTY;
	else if (rc == KVFS_EPRECOND)
		rc = -ENOENT;
	if (rc == 0) {
		pthread_mutex_lock(&fs->lock);
		struct fs_inode *i =
			fs_inode_child(&fs->it, op->parent, op->name, strlen(op->name));
		if (i)
			fs_inode_unlink(&fs->it, i);
		pthread_mutex_unlock(&fs->lock);
	}
	fsm_reply_err(op->req, fs_errno(rc));
}

/* Counts keys under prefix (stops at 3): 0 absent, 1 marker only ... */
static int count_under(struct fs *fs, const uint8_t *prefix, size_t plen, bool *marker)
{
	struct kv_iter *it = kv_iter_create_prefix(fs->kv, prefix, plen);
	int n = 0;
	*marker = false;
	if (!it)
		return -ENOMEM;
	for (kv_iter_seek(it, prefix, plen); kv_iter_valid(it) && n < 3; kv_iter_next(it)) {
		size_t kl;
		const uint8_t *k = kv_iter_key(it, &kl);
		if (kl < plen || memcmp(k, prefix, plen) != 0)
			break;
		if (kl == plen)
			*marker = true;
		n++;
	}
	int rc = kv_iter_status(it);
	kv_iter_destroy(it);
	return rc < 0 ? rc : n;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fsm_begin(req, FSM_RMDIR);
	struct byte_buf key;
	struct fs_op *op = name_op(req, parent, name, &key);
	bool marker;
	if (!op)
		return;
	bb_u8(&key, '/');
	int n = count_under(op->fs, key.data, key.len, &marker);
	int rc = n < 0 ? n : n == 0 ? -ENOENT : (n > 1 || !marker) ? -ENOTEMPTY : 0;
	if (rc) {
		bb_free(&key);
		fsm_reply_err(req, fs_errno(rc));
		fs_op_free(op);
		return;
	}
	txn_begin(&op->txn, fs_now_ns());
	txn_add_check(&op->txn, key.data, key.len, 0, TXN_F_MUST_EXIST);
	txn_add_delete_prefix(&op->txn, key.data, key.len, 1);
	fs_keep_parent(op->fs, &op->txn, key.data, key.len - 1);
	bb_free(&key);
	fs_op_write(op, remove_cont);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fsm_begin(req, FSM_UNLINK);
	struct byte_buf key;
	struct fs_op *op = name_op(req, parent, name, &key);
	struct fs *fs = fuse_req_userdata(req);
	if (!op)
		return;
	/* A file created here and not committed yet exists only here. */
	pthread_mutex_lock(&fs->lock);
	struct fs_inode *i = fs_inode_child(&fs->it, op->parent, name, strlen(name));
	bool pending = i && i->pending;
	pthread_mutex_unlock(&fs->lock);
	char *rec;
	size_t rl;
	if (pending && kv_get(fs->kv, key.data, key.len, &rec, &rl) == KVFS_ENOTFOUND) {
		bb_free(&key);
		remove_cont(op, 0);
		fs_op_free(op);
		return;
	}
	if (pending)
		kv_free(rec);
	txn_begin(&op->txn, fs_now_ns());
	txn_add_delete(&op->txn, key.data, key.len, TXN_F_MUST_EXIST);
	fs_keep_parent(fs, &op->txn, key.data, key.len);
	bb_free(&key);
	fs_op_write(op, remove_cont);
}

/* ---- rename ---- */

static void rename_cont(struct fs_op *op, int rc)
{
	struct fs *fs = op->fs;
	if (rc == 0) {
		pthread_mutex_lock(&fs->lock);
		struct fs_inode *i =
			fs_inode_child(&fs->it, op->parent, op->name, strlen(op->name));
		if (i) {
			fs_inode_move(&fs->it, i, op->newparent, op->newname,
				      strlen(op->newname));
			i->pending = false;
		} else {
			struct fs_inode *t = fs_inode_child(&fs->it, op->newparent, op->newname,
							    strlen(op->newname));
			if (t)
				fs_inode_unlink(&fs->it, t);
		}
		pthread_mutex_unlock(&fs->lock);
	}
	if (op->d) {
		pthread_mutex_lock(&op->d->lock);
		if (rc && op->gen)
			fs_data_commit_failed(op->d, op->gen, op->prev_gen);
		pthread_mutex_unlock(&op->d->lock);
	}
	fsm_reply_err(op->req, fs_errno(rc));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fsm_begin(req, FSM_RENAME);
	struct fs *fs = fuse_req_userdata(req);
	struct byte_buf src, dst;
	struct fs_stat ss, ds;
	struct fs_op *op = name_op(req, parent, name, &src);
	int rc;
	if (!op)
		return;
	bb_init(&dst);
	if (flags & ~RENAME_NOREPLACE) {
		rc = -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
		goto fail;
	}
	rc = -ENOMEM;
	if (!(op->newname = strdup(newname)))
		goto fail;
	rc = -ESTALE;
	if (!(op->newparent = fs_get_ref(fs, newparent)))
		goto fail;
	if ((rc = fs_child_key(fs, op->newparent, newname, &dst)) < 0)
		goto fail;
	if ((rc = fs_resolve(fs, src.data, src.len, &ss)) < 0 ||
	    (rc = fs_resolve(fs, dst.data, dst.len, &ds)) < 0)
		goto fail;

	pthread_mutex_lock(&fs->lock);
	struct fs_inode *si = fs_inode_child(&fs->it, op->parent, name, strlen(name));
	struct fs_data *d = si && !si->is_dir && si->data ? si->data : NULL;
	if (d) {
		d->refs++;
		op->d = d;
	}
	bool pending = si && si->pending;
	pthread_mutex_unlock(&fs->lock);

	txn_begin(&op->txn, fs_now_ns());
	if (ss.exists && ss.is_dir) {
		if (ds.exists && !ds.is_dir) {
			rc = -ENOTDIR;
			goto fail;
		}
		bb_u8(&src, '/');
		bb_u8(&dst, '/');
		if (ds.exists) {
			bool marker;
			int n = count_under(fs, dst.data, dst.len, &marker);
			if (flags & RENAME_NOREPLACE)
				rc = -EEXIST;
			else if (n < 0 || n > 1 || (n == 1 && !marker))
				rc = n < 0 ? n : -ENOTEMPTY;
			if (rc < 0)
				goto fail;
			txn_add_check(&op->txn, dst.data, dst.len, 0, TXN_F_MUST_EXIST);
			txn_add_delete(&op->txn, dst.data, dst.len, 0);
		}
		txn_add_rename_prefix(&op->txn, src.data, src.len, dst.data, dst.len,
				      fs->cfg.rename_limit);
		src.len--;
	} else {
		if (!ss.exists && !pending) {
			rc = -ENOENT;
			goto fail;
		}
		if (ds.exists && ds.is_dir) {
			rc = -EISDIR;
			goto fail;
		}
		if (d) { /* uncommitted writes move with the file */
			pthread_mutex_lock(&d->lock);
			if (fs_data_dirty(d) && !d->err) {
				txn_add_put(&op->txn, src.data, src.len, RECORD_RAW, d->mode,
					    d->mode_set ? 0 : TXN_F_KEEP_MODE, d->buf, d->len);
				op->gen = fs_data_begin_commit(d, &op->prev_gen);
			}
			pthread_mutex_unlock(&d->lock);
		}
		txn_add_rename(&op->txn, src.data, src.len, dst.data, dst.len,
			       TXN_F_MUST_EXIST |
				       ((flags & RENAME_NOREPLACE) ? TXN_F_NO_REPLACE : 0));
	}
	if (parent != newparent)
		fs_keep_parent(fs, &op->txn, src.data, src.len);
	bb_free(&src);
	bb_free(&dst);
	fs_op_write(op, rename_cont);
	return;
fail:
	bb_free(&src);
	bb_free(&dst);
	fsm_reply_err(req, fs_errno(rc));
	fs_op_free(op);
}

void fs_dir_ops(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = op_opendir;
	ops->releasedir = op_releasedir;
	ops->readdir = op_readdir;
	ops->readdirplus = op_readdirplus;
	ops->mkdir = op_mkdir;
	ops->rmdir = op_rmdir;
	ops->unlink = op_unlink;
	ops->rename = op_rename;
}
