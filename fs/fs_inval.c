/*
 * Kernel cache invalidation. The node calls fs_inval_hook() on its loop
 * thread for every transaction applied on this node (written through any
 * node, this mount included). The hook only copies the keys the
 * transaction touched into a queue; a thread of this module's own turns
 * them into fuse_lowlevel_notify_inval_inode() (attributes and page cache)
 * and fuse_lowlevel_notify_inval_entry() (names removed or renamed).
 *
 * Why a thread: the notify calls can block in the kernel on locks that a
 * FUSE request holds (inval_entry takes the parent directory's lock), and
 * that request may itself be waiting for the node loop to finish a commit:
 * calling them from the node loop, or from a FUSE worker, can deadlock.
 *
 * open() replies are ordered behind the queue (fs_inval_reply_open): an
 * open that saw revision N is answered only after the invalidations of
 * every entry up to N were delivered, so the attributes the kernel shows
 * to that process (fstat, ls -l) are not older than what it reads.
 *
 * The queue is bounded; past the bound the hook records an overflow and the
 * thread invalidates every inode it knows instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/fs_internal.h"
#include "fs/fs_metrics.h"

#define INVAL_MAX_QUEUED 65536

enum { IT_KEYS, IT_OPEN };
enum { K_CHANGED = 0, K_GONE = 1 }; /* K_GONE: name removed or replaced */

struct inval_key {
	uint32_t off, len;
	uint8_t what;
};

struct inval_item {
	struct inval_item *next;
	int type;
	fuse_req_t req;              /* IT_OPEN */
	struct fuse_file_info fi;    /* IT_OPEN */
	size_t n;                    /* IT_KEYS */
	struct inval_key *keys;      /* points into the same allocation */
	uint8_t *bytes;
};

struct fs_inval {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct inval_item *head, *tail;
	size_t queued;
	bool busy, stop, overflow;
};

static void push(struct fs_inval *q, struct inval_item *it)
{
	it->next = NULL;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->queued++;
	pthread_cond_signal(&q->cond);
}

void fs_inval_hook(void *ud, uint64_t index, const void *buf, size_t len)
{
	struct fs *fs = ud;
	struct fs_inval *q = fs->inval;
	struct txn t;
	if (txn_decode(buf, len, &t) != 0)
		return;
	size_t n = 0, bytes = 0;
	for (uint32_t k = 0; k < t.n_ops; k++) {
		const struct txn_op *op = &t.ops[k];
		if (op->type == TXN_CHECK)
			continue;
		n++;
		bytes += op->key_len;
		if (op->type == TXN_RENAME || op->type == TXN_RENAME_PREFIX) {
			n++;
			bytes += op->dst_len;
		}
	}
	struct inval_item *it = n ? malloc(sizeof *it + n * sizeof(struct inval_key) + bytes) : NULL;
	if (!it) {
		txn_free(&t);
		if (n) {
			pthread_mutex_lock(&q->lock);
			q->overflow = true;
			pthread_cond_signal(&q->cond);
			pthread_mutex_unlock(&q->lock);
		}
		return;
	}
	it->type = IT_KEYS;
	it->keys = (struct inval_key *)(it + 1);
	it->bytes = (uint8_t *)(it->keys + n);
	it->n = 0;
	size_t at = 0;
	for (uint32_t k = 0; k < t.n_ops; k++) {
		const struct txn_op *op = &t.ops[k];
		if (op->type == TXN_CHECK)
			continue;
		bool gone = op->type != TXN_PUT && op->type != TXN_TOUCH;
		it->keys[it->n++] = (struct inval_key){(uint32_t)at, op->key_len, gone};
		memcpy(it->bytes + at, op->key, op->key_len);
		at += op->key_len;
		if (op->type == TXN_RENAME || op->type == TXN_RENAME_PREFIX) {
			it->keys[it->n++] = (struct inval_key){(uint32_t)at, op->dst_len, K_GONE};
			memcpy(it->bytes + at, op->dst, op->dst_len);
			at += op->dst_len;
		}
	}
	txn_free(&t);
	pthread_mutex_lock(&q->lock);
	if (q->stop || q->queued >= INVAL_MAX_QUEUED) {
		q->overflow = !q->stop;
		free(it);
		pthread_cond_signal(&q->cond);
	} else {
		push(q, it);
	}
	pthread_mutex_unlock(&q->lock);
}

void fs_inval_reply_open(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi)
{
	struct fs_inval *q = fs->inval;
	pthread_mutex_lock(&q->lock);
	if (!q->head && !q->busy && !q->overflow) {
		pthread_mutex_unlock(&q->lock);
		fsm_reply_open(req, fi);
		return;
	}
	struct inval_item *it = calloc(1, sizeof *it);
	if (!it) {
		pthread_mutex_unlock(&q->lock);
		fsm_reply_open(req, fi); /* better early than never */
		return;
	}
	it->type = IT_OPEN;
	it->req = req;
	it->fi = *fi;
	push(q, it);
	pthread_mutex_unlock(&q->lock);
}

/* What to tell the kernel about one key, found under fs->lock. */
struct target {
	uint64_t ino;        /* the key's inode, 0 if not cached */
	uint64_t parent;     /* its parent's inode, 0 if not cached */
	char name[FS_NAME_MAX + 1];
	size_t nlen;
};

static void find_target(struct fs *fs, const uint8_t *key, size_t len, struct target *t)
{
	memset(t, 0, sizeof *t);
	if (len && key[len - 1] == '/')
		len--; /* a directory marker stands for its directory */
	struct fs_inode *cur = fs->it.root;
	size_t pos = 0;
	while (cur) {
		const uint8_t *slash = memchr(key + pos, '/', len - pos);
		size_t nlen = slash ? (size_t)(slash - (key + pos)) : len - pos;
		if (!fs_name_ok(key + pos, nlen))
			return;
		struct fs_inode *child =
			fs_inode_child(&fs->it, cur, (const char *)key + pos, nlen);
		if (!slash) {
			t->parent = cur->ino;
			memcpy(t->name, key + pos, nlen);
			t->name[nlen] = 0;
			t->nlen = nlen;
			if (child)
				t->ino = child->ino;
			return;
		}
		cur = child;
		pos += nlen + 1;
	}
}

static void process_keys(struct fs *fs, struct inval_item *it)
{
	for (size_t k = 0; k < it->n; k++) {
		struct target t;
		pthread_mutex_lock(&fs->lock);
		find_target(fs, it->bytes + it->keys[k].off, it->keys[k].len, &t);
		pthread_mutex_unlock(&fs->lock);
		if (t.ino)
			fuse_lowlevel_notify_inval_inode(fs->se, t.ino, 0, 0);
		if (t.parent && it->keys[k].what == K_GONE)
			fuse_lowlevel_notify_inval_entry(fs->se, t.parent, t.name, t.nlen);
	}
}

/* After an overflow: every inode known may be stale. */
static void invalidate_all(struct fs *fs)
{
	size_t n = 0, cap = 0;
	uint64_t *inos = NULL;
	pthread_mutex_lock(&fs->lock);
	cap = fs->it.count;
	inos = malloc(cap * sizeof *inos);
	for (size_t b = 0; inos && b < fs->it.nbuckets; b++)
		for (struct fs_inode *i = fs->it.by_ino[b]; i && n < cap; i = i->next_ino)
			inos[n++] = i->ino;
	pthread_mutex_unlock(&fs->lock);
	for (size_t k = 0; k < n; k++)
		fuse_lowlevel_notify_inval_inode(fs->se, inos[k], 0, 0);
	free(inos);
}

static void *inval_main(void *arg)
{
	struct fs *fs = arg;
	pthread_setname_np(pthread_self(), "kvfs-inval");
	struct fs_inval *q = fs->inval;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->head && !q->overflow && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->overflow) {
			q->overflow = false;
			q->busy = true;
			pthread_mutex_unlock(&q->lock);
			invalidate_all(fs);
			pthread_mutex_lock(&q->lock);
			q->busy = false;
			continue;
		}
		struct inval_item *it = q->head;
		if (!it)
			break; /* stop, and everything delivered */
		q->head = it->next;
		if (!q->head)
			q->tail = NULL;
		q->queued--;
		q->busy = true;
		pthread_mutex_unlock(&q->lock);
		if (it->type == IT_OPEN)
			fsm_reply_open(it->req, &it->fi);
		else
			process_keys(fs, it);
		free(it);
		pthread_mutex_lock(&q->lock);
		q->busy = false;
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int fs_inval_start(struct fs *fs)
{
	struct fs_inval *q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	fs->inval = q;
	int rc = pthread_create(&q->thread, NULL, inval_main, fs);
	if (rc) {
		pthread_cond_destroy(&q->cond);
		pthread_mutex_destroy(&q->lock);
		free(q);
		fs->inval = NULL;
		return -rc;
	}
	return 0;
}

void fs_inval_stop(struct fs *fs)
{
	struct fs_inval *q = fs->inval;
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
	fs->inval = NULL;
}
