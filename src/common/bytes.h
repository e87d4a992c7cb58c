/*
 * Little-endian and big-endian fixed-width integer helpers and a bounds-checked
 * reader used by every decoder (records, transactions, wire messages). A
 * decoder never reads past its input: each get_* checks the remaining length
 * and sets the reader's sticky error flag instead.
 */
#ifndef KVFS_COMMON_BYTES_H
#define KVFS_COMMON_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * (7 - i)));
}
static inline uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Bounds-checked sequential reader over a borrowed buffer. */
struct byte_reader {
	const uint8_t *p;
	size_t left;
	int err; /* sticky: set once any read ran past the end */
};

static inline void br_init(struct byte_reader *r, const void *buf, size_t len)
{
	r->p = buf;
	r->left = len;
	r->err = 0;
}
static inline int br_need(struct byte_reader *r, size_t n)
{
	if (r->err || r->left < n) {
		r->err = 1;
		return 0;
	}
	return 1;
}
static inline uint8_t br_u8(struct byte_reader *r)
{
	if (!br_need(r, 1))
		return 0;
	r->left--;
	return *r->p++;
}
static inline uint32_t br_le32(struct byte_reader *r)
{
	if (!br_need(r, 4))
		return 0;
	uint32_t v = get_le32(r->p);
	r->p += 4;
	r->left -= 4;
	return v;
}
static inline uint64_t br_le64(struct byte_reader *r)
{
	if (!br_need(r, 8))
		return 0;
	uint64_t v = get_le64(r->p);
	r->p += 8;
	r->left -= 8;
	return v;
}
/* Returns a pointer to the next n bytes (borrowed from the buffer) or NULL. */
static inline const uint8_t *br_bytes(struct byte_reader *r, size_t n)
{
	if (!br_need(r, n))
		return NULL;
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

/* Growable output buffer. On allocation failure the sticky flag is set and
 * later appends are ignored; callers check buf.err once at the end. */
struct byte_buf {
	uint8_t *data;
	size_t len, cap;
	int err;
};

void bb_init(struct byte_buf *b);
void bb_free(struct byte_buf *b);
int bb_reserve(struct byte_buf *b, size_t extra);
void bb_put_slow(struct byte_buf *b, const void *p, size_t n);
/* Appends n bytes; inline while they fit (JSON replies append a few bytes
 * at a time, and the call was 5% of a range's CPU). */
static inline void bb_put(struct byte_buf *b, const void *p, size_t n)
{
	if (n && !b->err && b->cap - b->len >= n) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
	} else {
		bb_put_slow(b, p, n);
	}
}
static inline void bb_u8(struct byte_buf *b, uint8_t v)
{
	if (!b->err && b->len < b->cap)
		b->data[b->len++] = v;
	else
		bb_put_slow(b, &v, 1);
}
void bb_le32(struct byte_buf *b, uint32_t v);
void bb_le64(struct byte_buf *b, uint64_t v);
/* Transfers ownership of the bytes to the caller (free()); b is reset. */
uint8_t *bb_take(struct byte_buf *b, size_t *len);

/* Makes room for one more element in the growable array *items (elements of
 * size elem, *cap of them allocated, n in use): doubles the allocation,
 * starting at first. Returns 0 or -ENOMEM (the array unchanged). */
int array_grow(void *items, size_t *cap, size_t n, size_t elem, size_t first);

/* CRC-32C (Castagnoli) of buf continued from crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
