/*
 * Growable byte buffer, growable arrays, and CRC-32C (Castagnoli), used for
 * checksums over wire messages and log frames. The CRC uses the CPU's
 * crc32 instruction where there is one (x86-64 with SSE4.2, checked at run
 * time), and is otherwise table-driven, slicing-by-8.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/bytes.h"

void bb_init(struct byte_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

void bb_free(struct byte_buf *b)
{
	free(b->data);
	bb_init(b);
}

int bb_reserve(struct byte_buf *b, size_t extra)
{
	if (b->err)
		return -1;
	if (b->len + extra <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra)
		cap *= 2;
	uint8_t *d = realloc(b->data, cap);
	if (!d) {
		b->err = 1;
		return -1;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

void bb_put_slow(struct byte_buf *b, const void *p, size_t n)
{
	if (n == 0 || bb_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void bb_le32(struct byte_buf *b, uint32_t v)
{
	uint8_t t[4];
	put_le32(t, v);
	bb_put(b, t, 4);
}

void bb_le64(struct byte_buf *b, uint64_t v)
{
	uint8_t t[8];
	put_le64(t, v);
	bb_put(b, t, 8);
}

uint8_t *bb_take(struct byte_buf *b, size_t *len)
{
	uint8_t *d = b->data;
	*len = b->len;
	bb_init(b);
	return d;
}

/* Slicing-by-8 (Intel's "slice-by-8" technique): eight tables let the loop
 * consume eight bytes per step instead of one, several times faster on the
 * megabyte-sized AppendEntries and snapshot chunks the wire checksums. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ get_le32(p), hi = get_le32(p + 4);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE4.2's crc32 instruction computes CRC-32C eight bytes per instruction,
 * several times faster than the tables: the checksums were 3.5% of all CPU
 * under batch load. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf,
							   size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;
	while (len >= 8) {
		c = __builtin_ia32_crc32di(c, get_le64(p));
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}

static uint32_t (*crc_impl)(uint32_t, const void *, size_t);
static pthread_once_t crc_pick_once = PTHREAD_ONCE_INIT;

static void crc_pick(void)
{
	__builtin_cpu_init();
	crc_impl = __builtin_cpu_supports("sse4.2") ? crc32c_hw : crc32c_sw;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_pick_once, crc_pick);
	return crc_impl(crc, buf, len);
}
#else
uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_sw(crc, buf, len);
}
#endif

int array_grow(void *items, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : first;
	void *p = realloc(*(void **)items, nc * elem);
	if (!p)
		return -ENOMEM;
	*(void **)items = p;
	*cap = nc;
	return 0;
}
