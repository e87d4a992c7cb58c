/*
 * The inode table: the low-level FUSE API names files by inode number, the
 * store by key. Each inode is a node of a tree (parent pointer + name), so a
 * key is the names on the way up, and renaming a directory moves one node
 * and every descendant follows. Two chained hash tables index the inodes by
 * number and by (parent, name).
 *
 * Inode numbers are handed out in increasing order and never reused within
 * one mount; the generation is the mount's start time, so numbers stay
 * unique across restarts too.
 *
 * Lifetime, from fuse_lowlevel.h: "the lookup count [...] is increased by
 * every reply to lookup, mknod, mkdir, symlink, link, create and readdirplus
 * (except . and ..), and decreased by forget; an inode may be freed only
 * when it reaches zero". An inode is freed when its lookup count and its
 * references (children, open handles, operations in flight) are both zero;
 * freeing it drops its reference on its parent.
 *
 * Every function here runs under fs->lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_internal.h"

#define ROOT_INO FUSE_ROOT_ID

static size_t hash_u64(uint64_t v, size_t n)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)(v & (n - 1));
}

static size_t hash_name(uint64_t parent, const char *name, size_t nlen, size_t n)
{
	uint64_t h = 1469598103934665603ULL ^ parent;
	for (size_t i = 0; i < nlen; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ULL;
	return hash_u64(h, n);
}

static void link_ino(struct fs_itable *t, struct fs_inode *i)
{
	size_t b = hash_u64(i->ino, t->nbuckets);
	i->next_ino = t->by_ino[b];
	t->by_ino[b] = i;
}

static void link_name(struct fs_itable *t, struct fs_inode *i)
{
	size_t b = hash_name(i->parent->ino, i->name, i->nlen, t->nbuckets);
	i->next_name = t->by_name[b];
	t->by_name[b] = i;
	i->linked = true;
}

static int grow(struct fs_itable *t)
{
	size_t n = t->nbuckets * 2, old = t->nbuckets;
	struct fs_inode **bi = calloc(n, sizeof *bi), **bn = calloc(n, sizeof *bn);
	struct fs_inode **oi = t->by_ino, **on = t->by_name;
	if (!bi || !bn) {
		free(bi);
		free(bn);
		return -ENOMEM;
	}
	t->by_ino = bi;
	t->by_name = bn;
	t->nbuckets = n;
	for (size_t b = 0; b < old; b++) {
		for (struct fs_inode *i = oi[b], *nx; i; i = nx) {
			nx = i->next_ino;
			link_ino(t, i);
		}
		for (struct fs_inode *i = on[b], *nx; i; i = nx) {
			nx = i->next_name;
			link_name(t, i);
		}
	}
	free(oi);
	free(on);
	return 0;
}

int fs_itable_init(struct fs_itable *t)
{
	memset(t, 0, sizeof *t);
	t->nbuckets = 1024;
	t->by_ino = calloc(t->nbuckets, sizeof *t->by_ino);
	t->by_name = calloc(t->nbuckets, sizeof *t->by_name);
	t->root = calloc(1, sizeof *t->root);
	if (!t->by_ino || !t->by_name || !t->root || !(t->root->name = strdup(""))) {
		fs_itable_free(t);
		return -ENOMEM;
	}
	t->root->ino = ROOT_INO;
	t->root->is_dir = true;
	t->root->nlookup = 1; /* never forgotten */
	link_ino(t, t->root);
	t->count = 1;
	t->next_ino = ROOT_INO + 1;
	return 0;
}

void fs_itable_free(struct fs_itable *t)
{
	for (size_t b = 0; t->by_ino && b < t->nbuckets; b++)
		for (struct fs_inode *i = t->by_ino[b], *nx; i; i = nx) {
			nx = i->next_ino;
			if (i->data && --i->data->refs == 0)
				fs_data_free(i->data);
			free(i->name);
			free(i);
		}
	if (!t->by_ino && t->root) {
		free(t->root->name);
		free(t->root);
	}
	free(t->by_ino);
	free(t->by_name);
	memset(t, 0, sizeof *t);
}

struct fs_inode *fs_inode_get(struct fs_itable *t, uint64_t ino)
{
	for (struct fs_inode *i = t->by_ino[hash_u64(ino, t->nbuckets)]; i; i = i->next_ino)
		if (i->ino == ino)
			return i;
	return NULL;
}

struct fs_inode *fs_inode_child(struct fs_itable *t, struct fs_inode *parent, const char *name,
				size_t nlen)
{
	size_t b = hash_name(parent->ino, name, nlen, t->nbuckets);
	for (struct fs_inode *i = t->by_name[b]; i; i = i->next_name)
		if (i->parent == parent && i->nlen == nlen && memcmp(i->name, name, nlen) == 0)
			return i;
	return NULL;
}

void fs_inode_unlink(struct fs_itable *t, struct fs_inode *i)
{
	if (!i->linked)
		return;
	struct fs_inode **pp = &t->by_name[hash_name(i->parent->ino, i->name, i->nlen,
						     t->nbuckets)];
	while (*pp != i)
		pp = &(*pp)->next_name;
	*pp = i->next_name;
	i->linked = false;
	/* The parent reference stays until the inode is freed: a detached
	 * inode still answers getattr, but its key is no longer used. */
}

struct fs_inode *fs_inode_make(struct fs_itable *t, struct fs_inode *parent, const char *name,
			       size_t nlen, bool is_dir)
{
	struct fs_inode *i = fs_inode_child(t, parent, name, nlen);
	if (i && i->is_dir == is_dir)
		return i;
	if (i)
		fs_inode_unlink(t, i);
	if (t->count + 1 > t->nbuckets && grow(t) < 0)
		return NULL;
	if (!(i = calloc(1, sizeof *i)) || !(i->name = malloc(nlen + 1))) {
		free(i);
		return NULL;
	}
	memcpy(i->name, name, nlen);
	i->name[nlen] = 0;
	i->nlen = (uint32_t)nlen;
	i->is_dir = is_dir;
	i->ino = t->next_ino++;
	i->parent = parent;
	parent->refs++;
	link_ino(t, i);
	link_name(t, i);
	t->count++;
	return i;
}

int fs_inode_move(struct fs_itable *t, struct fs_inode *i, struct fs_inode *parent,
		  const char *name, size_t nlen)
{
	char *n = malloc(nlen + 1);
	if (!n)
		return -ENOMEM;
	memcpy(n, name, nlen);
	n[nlen] = 0;
	struct fs_inode *old = fs_inode_child(t, parent, name, nlen);
	if (old && old != i)
		fs_inode_unlink(t, old);
	fs_inode_unlink(t, i);
	parent->refs++;
	struct fs_inode *oldparent = i->parent;
	i->parent = parent;
	free(i->name);
	i->name = n;
	i->nlen = (uint32_t)nlen;
	link_name(t, i);
	if (oldparent)
		fs_inode_unref(t, oldparent);
	return 0;
}

void fs_inode_ref(struct fs_inode *i)
{
	i->refs++;
}

static void maybe_free(struct fs_itable *t, struct fs_inode *i)
{
	while (i && i->ino != ROOT_INO && i->nlookup == 0 && i->refs == 0) {
		struct fs_inode *parent = i->parent, **pp;
		fs_inode_unlink(t, i);
		pp = &t->by_ino[hash_u64(i->ino, t->nbuckets)];
		while (*pp != i)
			pp = &(*pp)->next_ino;
		*pp = i->next_ino;
		if (i->data && --i->data->refs == 0)
			fs_data_free(i->data);
		free(i->name);
		free(i);
		t->count--;
		i = parent;
		if (i)
			i->refs--;
	}
}

void fs_inode_unref(struct fs_itable *t, struct fs_inode *i)
{
	i->refs--;
	maybe_free(t, i);
}

void fs_inode_forget(struct fs_itable *t, struct fs_inode *i, uint64_t n)
{
	i->nlookup = n > i->nlookup ? 0 : i->nlookup - n;
	maybe_free(t, i);
}

int fs_inode_key(struct fs_inode *i, struct byte_buf *b)
{
	size_t len = 0;
	for (struct fs_inode *p = i; p && p->ino != ROOT_INO; p = p->parent)
		len += p->nlen + 1;
	b->len = 0;
	if (len == 0)
		return bb_reserve(b, 1);
	if (bb_reserve(b, len) < 0)
		return -ENOMEM;
	size_t pos = len - 1; /* no slash after the last name */
	for (struct fs_inode *p = i; p && p->ino != ROOT_INO; p = p->parent) {
		pos -= p->nlen;
		memcpy(b->data + pos, p->name, p->nlen);
		if (pos)
			b->data[--pos] = '/';
	}
	b->len = len - 1;
	return 0;
}
