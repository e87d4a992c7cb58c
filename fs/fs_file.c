/*
 * Files: create, open, read, write, flush, fsync, release (and mknod, which
 * makes regular files only).
 *
 * open() waits for a linearizable read (close-to-open: it sees every write
 * committed before it, on any node), then snapshots the value (read-only) or
 * shares the inode's write buffer (fs_data.c). Writes edit the buffer;
 * flush (every close), fsync and release commit it as ONE PUT and reply
 * when the node has committed it, so close() returning 0 means the new
 * content is durable on a majority and visible on every node. A created
 * file is committed by its first flush (one Raft entry per new file), or at
 * once when created with O_EXCL (the exclusive check then holds cluster-wide).
 *
 * Every open is FOPEN_DIRECT_IO: reads are served from the handle's own
 * snapshot and writes go to the buffer, never through the kernel page
 * cache. The page cache is one per inode, shared by every open of it, and
 * its i_size moves with any writer (an O_TRUNC open sets it to 0), so a
 * reader going through it could see another open's half-written content or
 * a snapshot cut short by a concurrent change, here or on another node.
 * The price: MAP_SHARED mmap of a file on the mount fails with ENODEV
 * (MAP_PRIVATE works), and a re-read costs a FUSE round trip per 1 MiB.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "fs/fs_internal.h"
#include "fs/fs_metrics.h"

static void handle_free(struct fs *fs, struct fs_handle *h)
{
	pthread_mutex_lock(&fs->lock);
	if (h->d && --h->d->refs == 0)
		fs_data_free(h->d);
	fs_inode_unref(&fs->it, h->ino);
	pthread_mutex_unlock(&fs->lock);
	free(h);
}

/* ---- commit: flush, fsync, release ---- */

static void commit_cont(struct fs_op *op, int rc)
{
	struct fs *fs = op->fs;
	struct fs_data *d = op->d;
	pthread_mutex_lock(&d->lock);
	if (rc)
		fs_data_commit_failed(d, op->gen, op->prev_gen); /* a later flush retries */
	if (rc == 0)
		d->rev = op->nreq.index;
	pthread_mutex_unlock(&d->lock);
	if (rc == 0) {
		pthread_mutex_lock(&fs->lock);
		op->ino->pending = false;
		pthread_mutex_unlock(&fs->lock);
	}
	if (op->fi.fh) { /* release: the handle goes now */
		struct fs_handle *h = (struct fs_handle *)(uintptr_t)op->fi.fh;
		pthread_mutex_lock(&fs->lock);
		struct fs_inode *i = h->ino;
		if (i->writers == 0 && i->data == d) {
			/* Last writer gone: the next open reads the store
			 * (an uncommitted buffer is dropped; close said so). */
			i->data = NULL;
			d->refs--; /* op and handle still hold theirs */
		}
		pthread_mutex_unlock(&fs->lock);
		handle_free(fs, h);
	}
	fsm_reply_err(op->req, fs_errno(rc));
}

/* Commits h's buffer if it holds uncommitted writes, then replies (and,
 * when release is set, frees h).
 *
 * A buffer only emptied by O_TRUNC (or create) and not written since is
 * not committed by flush, only by fsync or release: the shell runs
 * `echo x > f` as open(O_TRUNC), dup2, close (a flush), write, close, and
 * committing at that first flush would show readers an empty file between
 * the old content and the new. */
static void commit(struct fs *fs, fuse_req_t req, struct fs_handle *h, bool release, bool sync)
{
	struct fs_op *op = fs_op_new(fs, req);
	struct fs_data *d = h->d;
	int rc = 0;
	if (!op) {
		fsm_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&fs->lock);
	bool linked = h->ino->linked;
	struct fs_inode *i = h->ino;
	if (fs_inode_key(i, &op->txn) < 0)
		rc = -ENOMEM;
	op->ino = i;
	fs_inode_ref(i);
	op->d = d;
	d->refs++;
	if (release) {
		op->fi.fh = (uint64_t)(uintptr_t)h;
		if (h->write)
			i->writers--;
	}
	pthread_mutex_unlock(&fs->lock);
	/* op->txn holds the key for now; move it aside. */
	struct byte_buf key = op->txn;
	bb_init(&op->txn);

	pthread_mutex_lock(&d->lock);
	/* Only changes made through this handle and not committed yet: a
	 * release arriving after another open truncated the shared buffer
	 * must not commit that other open's half-written content. */
	bool todo = h->write && fs_data_dirty(d) && h->wgen > d->committed && linked && !d->err &&
		    (release || sync || !d->trunc_only);
	log_debug("fs", "commit ino %llu todo %d len %zu trunc_only %d release %d sync %d",
		  (unsigned long long)i->ino, todo, d->len, d->trunc_only, release, sync);
	if (h->write && d->err)
		rc = -d->err; /* EFBIG: the stored value stays as it was */
	if (todo && rc == 0) {
		txn_begin(&op->txn, fs_now_ns());
		txn_add_put(&op->txn, key.data, key.len, RECORD_RAW, d->mode,
			    d->mode_set ? 0 : TXN_F_KEEP_MODE, d->buf, d->len);
		op->gen = fs_data_begin_commit(d, &op->prev_gen);
	}
	if (!linked && h->write)
		d->committed = d->wgen; /* unlinked while open: the writes go nowhere */
	pthread_mutex_unlock(&d->lock);
	bb_free(&key);
	if (todo && rc == 0) {
		fs_op_write(op, commit_cont);
		return;
	}
	if (release) {
		op->fi.fh = 0;
		pthread_mutex_lock(&fs->lock);
		if (i->writers == 0 && i->data == d) {
			i->data = NULL;
			d->refs--;
		}
		pthread_mutex_unlock(&fs->lock);
		handle_free(fs, h);
	}
	fsm_reply_err(req, fs_errno(rc));
	fs_op_free(op);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_FLUSH);
	commit(fuse_req_userdata(req), req, (struct fs_handle *)(uintptr_t)fi->fh, false, false);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_FSYNC);
	commit(fuse_req_userdata(req), req, (struct fs_handle *)(uintptr_t)fi->fh, false, true);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_RELEASE);
	commit(fuse_req_userdata(req), req, (struct fs_handle *)(uintptr_t)fi->fh, true, true);
}

/* ---- open ---- */

static void open_cont(struct fs_op *op, int rc)
{
	struct fs *fs = op->fs;
	struct fs_inode *i = op->ino;
	int acc = op->fi.flags & O_ACCMODE;
	bool write = acc != O_RDONLY, trunc = write && (op->fi.flags & O_TRUNC);
	struct fs_handle *h = NULL;
	struct fs_data *d = NULL;
	struct byte_buf key;
	bb_init(&key);
	if (rc)
		goto fail;
	if (!(h = calloc(1, sizeof *h))) {
		rc = -ENOMEM;
		goto fail;
	}
	h->write = write;
	h->append = write && (op->fi.flags & O_APPEND);

	pthread_mutex_lock(&fs->lock);
	if (write && i->data && (i->writers || fs_data_dirty(i->data))) {
		/* Open for writing here already: share its buffer. */
		d = i->data;
		d->refs++;
		h->shared = true;
		i->writers++;
		pthread_mutex_unlock(&fs->lock);
		if (trunc) {
			pthread_mutex_lock(&d->lock);
			rc = fs_data_truncate(d, 0, fs->cfg.max_value);
			d->trunc_only = rc == 0;
			pthread_mutex_unlock(&d->lock);
		}
		goto done;
	}
	rc = fs_inode_key(i, &key) < 0 ? -ENOMEM : 0;
	pthread_mutex_unlock(&fs->lock);
	if (rc)
		goto fail;

	char *rec = NULL;
	size_t rl, vl = 0;
	const uint8_t *v = NULL;
	struct record_meta m = {0};
	if ((rc = kv_get(fs->kv, key.data, key.len, &rec, &rl)) < 0)
		goto fail;
	if ((rc = record_decode(rec, rl, &m, &v, &vl)) < 0) {
		kv_free(rec);
		goto fail;
	}
	d = trunc ? fs_data_from(NULL, 0, m.mod_rev) : fs_data_from(v, vl, m.mod_rev);
	kv_free(rec);
	if (!d) {
		rc = -ENOMEM;
		goto fail;
	}
	if (trunc) {
		d->wgen = 1;
		d->trunc_only = true;
	}
	d->refs = 1;
	pthread_mutex_lock(&fs->lock);
	if (write) {
		if (i->data && (i->writers || fs_data_dirty(i->data))) {
			/* Another open won the race: share its buffer. */
			fs_data_free(d);
			d = i->data;
			d->refs++;
			if (trunc) {
				pthread_mutex_lock(&d->lock);
				rc = fs_data_truncate(d, 0, fs->cfg.max_value);
				d->trunc_only = rc == 0;
				pthread_mutex_unlock(&d->lock);
			}
		} else {
			if (i->data && --i->data->refs == 0)
				fs_data_free(i->data);
			i->data = d;
			d->refs++;
		}
		h->shared = true;
		i->writers++;
	}
	pthread_mutex_unlock(&fs->lock);
done:
	if (trunc) {
		pthread_mutex_lock(&d->lock);
		h->wgen = d->wgen;
		pthread_mutex_unlock(&d->lock);
	}
	op->fi.direct_io = 1;
	op->fi.keep_cache = 0;
	bb_free(&key);
	h->ino = i;
	h->d = d;
	pthread_mutex_lock(&fs->lock);
	fs_inode_ref(i); /* the handle's; op's own is dropped with the op */
	pthread_mutex_unlock(&fs->lock);
	if (rc) {
		op->fi.fh = 0;
		if (write) {
			pthread_mutex_lock(&fs->lock);
			i->writers--;
			pthread_mutex_unlock(&fs->lock);
		}
		handle_free(fs, h);
		fsm_reply_err(op->req, fs_errno(rc));
		return;
	}
	op->fi.fh = (uint64_t)(uintptr_t)h;
	fs_inval_reply_open(fs, op->req, &op->fi);
	return;
fail:
	bb_free(&key);
	free(h);
	fsm_reply_err(op->req, fs_errno(rc));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_OPEN);
	fs_op_read_on(req, ino, fi, open_cont);
}

/* ---- create / mknod ---- */

/* Makes the inode of a new file at (parent, name) with an empty buffer and
 * opens it; replies create (fi) or entry (no fi). committed: the file is
 * in the store already (O_EXCL, mknod). */
static void new_file(struct fs *fs, fuse_req_t req, struct fs_inode *parent, const char *name,
		     mode_t mode, struct fuse_file_info *fi, uint64_t rev)
{
	struct fuse_entry_param e;
	struct fs_handle *h = fi ? calloc(1, sizeof *h) : NULL;
	struct fs_data *d = fs_data_new();
	if ((fi && !h) || !d) {
		free(h);
		fs_data_free(d);
		fsm_reply_err(req, ENOMEM);
		return;
	}
	d->mode = mode & 07777;
	d->mode_set = true;
	if (rev == 0) {
		d->wgen = 1; /* a new file is a change even if never written */
		d->trunc_only = true;
	}
	d->rev = rev;
	memset(&e, 0, sizeof e);
	pthread_mutex_lock(&fs->lock);
	size_t nlen = strlen(name);
	struct fs_inode *old = fs_inode_child(&fs->it, parent, name, nlen);
	if (old && (old->data || old->is_dir))
		fs_inode_unlink(&fs->it, old); /* a fresh inode, not a stale one's buffer */
	struct fs_inode *i = fs_inode_make(&fs->it, parent, name, nlen, false);
	if (!i) {
		pthread_mutex_unlock(&fs->lock);
		free(h);
		fs_data_free(d);
		fsm_reply_err(req, ENOMEM);
		return;
	}
	i->nlookup++;
	i->pending = rev == 0;
	if (fi) {
		if (i->data && --i->data->refs == 0)
			fs_data_free(i->data);
		i->data = d;
		d->refs = 2; /* inode + handle */
		i->writers++;
		fs_inode_ref(i);
		h->ino = i;
		h->d = d;
		h->write = true;
		h->shared = true;
		h->append = fi->flags & O_APPEND;
		h->wgen = d->wgen;
		fi->fh = (uint64_t)(uintptr_t)h;
		fi->keep_cache = 0;
		fi->direct_io = 1;
	} else {
		fs_data_free(d);
	}
	e.ino = i->ino;
	pthread_mutex_unlock(&fs->lock);
	struct fs_stat st = {.exists = true};
	st.meta.mode = mode & 07777;
	st.meta.mtime_ns = fs_now_ns();
	e.generation = (uint64_t)fs->start_ns;
	e.attr_timeout = e.entry_timeout = fs->cfg.cache_timeout;
	fs_fill_attr(fs, e.ino, &st, &e.attr);
	if (fi)
		fsm_reply_create(req, &e, fi);
	else
		fsm_reply_entry(req, &e);
}

static void excl_cont(struct fs_op *op, int rc)
{
	if (rc == KVFS_EPRECOND)
		rc = -EEXIST;
	if (rc) {
		fsm_reply_err(op->req, fs_errno(rc));
		return;
	}
	new_file(op->fs, op->req, op->parent, op->name, op->mode,
		 op->flags ? &op->fi : NULL, op->nreq.index);
}

static void make_file(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi, bool excl)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_op *op = fs_op_new(fs, req);
	struct byte_buf key;
	int rc;
	bb_init(&key);
	if (!op || !(op->name = strdup(name))) {
		rc = -ENOMEM;
		goto fail;
	}
	if (!(op->parent = fs_get_ref(fs, parent))) {
		rc = -ESTALE;
		goto fail;
	}
	if ((rc = fs_child_key(fs, op->parent, name, &key)) < 0)
		goto fail;
	if (!excl) {
		new_file(fs, req, op->parent, name, mode, fi, 0);
		bb_free(&key);
		fs_op_free(op);
		return;
	}
	op->mode = mode;
	if (fi) {
		op->fi = *fi;
		op->flags = 1;
	}
	txn_begin(&op->txn, fs_now_ns());
	txn_add_check(&op->txn, key.data, key.len, 0, 0);
	bb_u8(&key, '/');
	txn_add_check(&op->txn, key.data, key.len, 0, 0);
	txn_add_put(&op->txn, key.data, key.len - 1, RECORD_RAW, mode & 07777, 0, NULL, 0);
	bb_free(&key);
	fs_op_write(op, excl_cont);
	return;
fail:
	bb_free(&key);
	fsm_reply_err(req, fs_errno(rc));
	if (op)
		fs_op_free(op);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_CREATE);
	make_file(req, parent, name, mode, fi, (fi->flags & O_EXCL) != 0);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	fsm_begin(req, FSM_MKNOD);
	if (!S_ISREG(mode)) {
		fsm_reply_err(req, EPERM); /* no FIFOs, sockets or device nodes */
		return;
	}
	make_file(req, parent, name, mode, NULL, true);
}

/* ---- read / write ---- */

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_READ);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	struct fs_data *d = h->d;
	if (!h->shared) { /* a private snapshot never changes */
		size_t n = off < 0 || (size_t)off >= d->len ? 0 : d->len - (size_t)off;
		fsm_reply_buf(req, n ? (const char *)d->buf + off : NULL, n < size ? n : size);
		return;
	}
	pthread_mutex_lock(&d->lock);
	size_t n = off < 0 || (size_t)off >= d->len ? 0 : d->len - (size_t)off;
	if (n > size)
		n = size;
	char *copy = n ? malloc(n) : NULL;
	if (copy)
		memcpy(copy, d->buf + off, n);
	pthread_mutex_unlock(&d->lock);
	if (n && !copy)
		fsm_reply_err(req, ENOMEM);
	else
		fsm_reply_buf(req, copy, n);
	free(copy);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	fsm_begin(req, FSM_WRITE);
	struct fs *fs = fuse_req_userdata(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	struct fs_data *d = h->d;
	if (!h->write) {
		fsm_reply_err(req, EBADF);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (h->append)
		off = (off_t)d->len; /* the kernel's idea of the size may be stale */
	int rc = fs_data_write(d, off, buf, size, fs->cfg.max_value);
	h->wgen = d->wgen;
	pthread_mutex_unlock(&d->lock);
	if (rc)
		fsm_reply_err(req, -rc);
	else
		fsm_reply_write(req, size);
}

void fs_file_ops(struct fuse_lowlevel_ops *ops)
{
	ops->create = op_create;
	ops->mknod = op_mknod;
	ops->open = op_open;
	ops->read = op_read;
	ops->write = op_write;
	ops->flush = op_flush;
	ops->fsync = op_fsync;
	ops->release = op_release;
}
