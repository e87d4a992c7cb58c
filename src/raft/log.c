/*
 * The in-memory Raft log: the entries after the last compaction point, each
 * owning a copy of its data. A plain array indexed by (index - offset - 1):
 * appends are amortised O(1), term lookups O(1); compaction moves the tail
 * down, which is rare (the driver compacts every many thousand entries).
 * Truncation frees the suffix. This file knows nothing about Raft rules; the
 * callers decide what may be truncated (never a committed entry).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/impl.h"

void raft_log_init(struct raft_log *l, uint64_t offset, uint64_t offset_term)
{
	memset(l, 0, sizeof(*l));
	l->offset = offset;
	l->offset_term = offset_term;
}

static void entry_free(struct raft_entry *e)
{
	free((void *)e->data);
	e->data = NULL;
}

void raft_log_free(struct raft_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		entry_free(&l->e[i]);
	free(l->e);
	l->e = NULL;
	l->n = l->cap = 0;
}

uint64_t raft_log_last_index(const struct raft_log *l)
{
	return l->offset + l->n;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
	return l->n ? l->e[l->n - 1].term : l->offset_term;
}

/* Term of index, or 0 when it is neither held nor the offset. */
uint64_t raft_log_term(const struct raft_log *l, uint64_t index)
{
	if (index == l->offset)
		return l->offset_term;
	if (index < l->offset || index > l->offset + l->n)
		return 0;
	return l->e[index - l->offset - 1].term;
}

const struct raft_entry *raft_log_get(const struct raft_log *l, uint64_t index)
{
	if (index <= l->offset || index > l->offset + l->n)
		return NULL;
	return &l->e[index - l->offset - 1];
}

/* Appends a copy of data as the next entry. Returns 0 or -ENOMEM. */
int raft_log_append(struct raft_log *l, uint64_t term, uint8_t type, const void *data, size_t len)
{
	void *copy = NULL;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct raft_entry *e = realloc(l->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	if (len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, data, len);
	}
	l->e[l->n] = (struct raft_entry){
	    .term = term, .index = l->offset + l->n + 1, .type = type, .data = copy, .len = len};
	l->n++;
	return 0;
}

/* Drops every entry with index >= from. */
void raft_log_truncate(struct raft_log *l, uint64_t from)
{
	assert(from > l->offset);
	while (l->offset + l->n >= from && l->n > 0) {
		l->n--;
		entry_free(&l->e[l->n]);
	}
}

/* Drops every entry with index <= upto (upto must be held). */
void raft_log_compact(struct raft_log *l, uint64_t upto)
{
	if (upto <= l->offset)
		return;
	assert(upto <= l->offset + l->n);
	size_t k = (size_t)(upto - l->offset);
	uint64_t t = l->e[k - 1].term;
	for (size_t i = 0; i < k; i++)
		entry_free(&l->e[i]);
	memmove(l->e, l->e + k, (l->n - k) * sizeof(*l->e));
	l->n -= k;
	l->offset = upto;
	l->offset_term = t;
}

/* Discards everything; the log restarts after offset. */
void raft_log_reset(struct raft_log *l, uint64_t offset, uint64_t offset_term)
{
	for (size_t i = 0; i < l->n; i++)
		entry_free(&l->e[i]);
	l->n = 0;
	l->offset = offset;
	l->offset_term = offset_term;
}
