/*
 * Deferred replies. A FUSE handler that needs the node (a write to commit,
 * a linearizable read to wait for) packs its state in a struct fs_op,
 * hands op->nreq to node_submit() and returns at once; the node calls
 * done() on its loop thread when the request completes and the op's
 * continuation replies (fuse_lowlevel.h: "the reply may be sent [...] from
 * a different thread, after the handler returned"). So a FUSE worker never
 * waits for a commit, and a slow or partitioned cluster ties up memory, not
 * threads. Every request ends within the node's --request-timeout.
 *
 * fs->outstanding counts ops inside the node so fs_destroy can wait for
 * them before freeing the session they reply on.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "fs/fs_internal.h"
#include "fs/fs_metrics.h"

struct fs_inode *fs_get_ref(struct fs *fs, fuse_ino_t ino)
{
	pthread_mutex_lock(&fs->lock);
	struct fs_inode *i = fs_inode_get(&fs->it, ino);
	if (i)
		fs_inode_ref(i);
	pthread_mutex_unlock(&fs->lock);
	return i;
}

struct fs_op *fs_op_on(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_op *op = fs_op_new(fs, req);
	if (!op) {
		fsm_reply_err(req, ENOMEM);
		return NULL;
	}
	if (!(op->ino = fs_get_ref(fs, ino))) {
		fsm_reply_err(req, ESTALE);
		fs_op_free(op);
		return NULL;
	}
	return op;
}

void fs_op_read_on(fuse_req_t req, fuse_ino_t ino, const struct fuse_file_info *fi,
		   fs_cont_fn cont)
{
	struct fs_op *op = fs_op_on(req, ino);
	if (!op)
		return;
	if (fi)
		op->fi = *fi;
	fs_op_read(op, cont);
}

struct fs_op *fs_op_new(struct fs *fs, fuse_req_t req)
{
	struct fs_op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->fs = fs;
	op->req = req;
	bb_init(&op->txn);
	return op;
}

void fs_op_free(struct fs_op *op)
{
	struct fs *fs = op->fs;
	if (op->ino || op->parent || op->newparent || op->d) {
		pthread_mutex_lock(&fs->lock);
		if (op->ino)
			fs_inode_unref(&fs->it, op->ino);
		if (op->parent)
			fs_inode_unref(&fs->it, op->parent);
		if (op->newparent)
			fs_inode_unref(&fs->it, op->newparent);
		if (op->d && --op->d->refs == 0)
			fs_data_free(op->d);
		pthread_mutex_unlock(&fs->lock);
	}
	bb_free(&op->txn);
	free(op->name);
	free(op->newname);
	free(op);
}

int fs_errno(int rc)
{
	if (rc == 0)
		return 0;
	return kvfs_err_errno(rc);
}

int64_t fs_now_ns(void)
{
	return clock_real_ns();
}

static void op_done(struct node_req *nreq)
{
	struct fs_op *op = (struct fs_op *)nreq;
	struct fs *fs = op->fs;
	op->cont(op, nreq->result);
	fs_op_free(op);
	pthread_mutex_lock(&fs->olock);
	if (--fs->outstanding == 0)
		pthread_cond_broadcast(&fs->ocond);
	pthread_mutex_unlock(&fs->olock);
}

static void submit(struct fs_op *op, enum node_req_type type, fs_cont_fn cont)
{
	struct fs *fs = op->fs;
	op->cont = cont;
	op->nreq.type = type;
	op->nreq.done = op_done;
	pthread_mutex_lock(&fs->olock);
	fs->outstanding++;
	pthread_mutex_unlock(&fs->olock);
	int rc = node_submit(fs->node, &op->nreq);
	if (rc < 0) {
		pthread_mutex_lock(&fs->olock);
		fs->outstanding--;
		pthread_mutex_unlock(&fs->olock);
		cont(op, rc);
		fs_op_free(op);
	}
}

void fs_op_write(struct fs_op *op, fs_cont_fn cont)
{
	if (op->txn.err || txn_finish(&op->txn) < 0) {
		cont(op, -ENOMEM);
		fs_op_free(op);
		return;
	}
	op->nreq.data = op->txn.data;
	op->nreq.len = op->txn.len;
	submit(op, NODE_REQ_WRITE, cont);
}

void fs_op_read(struct fs_op *op, fs_cont_fn cont)
{
	struct fs *fs = op->fs;
	if (fs->cfg.consistency == FS_STALE || node_local_read_ok(fs->node)) {
		cont(op, 0);
		fs_op_free(op);
		return;
	}
	submit(op, NODE_REQ_READ, cont);
}
