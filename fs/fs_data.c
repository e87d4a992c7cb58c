/*
 * Content of files open on this mount. A file open for writing is edited
 * in memory (bounded by --max-value-size) and committed whole, as one PUT,
 * by flush, fsync or release: readers on any node see the old content or
 * the new, never a mix (DESIGN.md §4). Handles of one inode on this mount
 * share one buffer while it is open for writing, so they see each other's
 * writes as on a local filesystem; a file opened only for reading gets a
 * private snapshot of the committed value taken at open (close-to-open).
 *
 * A write or truncate past the limit fails with EFBIG and poisons the
 * buffer: it is never committed, so the stored value stays as it was.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_internal.h"

struct fs_data *fs_data_new(void)
{
	struct fs_data *d = calloc(1, sizeof *d);
	if (d)
		pthread_mutex_init(&d->lock, NULL);
	return d;
}

struct fs_data *fs_data_from(const uint8_t *value, size_t len, uint64_t rev)
{
	struct fs_data *d = fs_data_new();
	if (!d)
		return NULL;
	if (len && !(d->buf = malloc(len))) {
		fs_data_free(d);
		return NULL;
	}
	if (len)
		memcpy(d->buf, value, len);
	d->len = d->cap = len;
	d->rev = rev;
	return d;
}

void fs_data_free(struct fs_data *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d->buf);
	free(d);
}

static int reserve(struct fs_data *d, size_t need)
{
	if (need <= d->cap)
		return 0;
	size_t cap = d->cap ? d->cap : 4096;
	while (cap < need)
		cap *= 2;
	uint8_t *nb = realloc(d->buf, cap);
	if (!nb)
		return -ENOMEM;
	d->buf = nb;
	d->cap = cap;
	return 0;
}

int fs_data_write(struct fs_data *d, off_t off, const void *buf, size_t len, size_t max)
{
	if (d->err)
		return -d->err;
	if (off < 0 || (uint64_t)off + len > max) {
		d->err = EFBIG;
		return -EFBIG;
	}
	size_t end = (size_t)off + len;
	if (reserve(d, end) < 0)
		return -ENOMEM;
	if ((size_t)off > d->len)
		memset(d->buf + d->len, 0, (size_t)off - d->len);
	memcpy(d->buf + off, buf, len);
	if (end > d->len)
		d->len = end;
	d->trunc_only = false;
	d->wgen++;
	return 0;
}

int fs_data_truncate(struct fs_data *d, off_t size, size_t max)
{
	if (d->err)
		return -d->err;
	if (size < 0 || (uint64_t)size > max) {
		d->err = EFBIG;
		return -EFBIG;
	}
	if (reserve(d, (size_t)size) < 0)
		return -ENOMEM;
	if ((size_t)size > d->len)
		memset(d->buf + d->len, 0, (size_t)size - d->len);
	d->len = (size_t)size;
	d->trunc_only = false;
	d->wgen++;
	return 0;
}

bool fs_data_dirty(const struct fs_data *d)
{
	return d->wgen > d->committed;
}

uint64_t fs_data_begin_commit(struct fs_data *d, uint64_t *prev)
{
	*prev = d->committed;
	d->committed = d->wgen;
	return d->wgen;
}

void fs_data_commit_failed(struct fs_data *d, uint64_t gen, uint64_t prev)
{
	if (d->committed == gen)
		d->committed = prev;
}
