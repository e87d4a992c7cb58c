/*
 * Encoding and decoding of value records (layout in record.h).
 */
#include <string.h>

#include "common/bytes.h"
#include "common/err.h"
#include "store/record.h"

#define V1_HEADER_SIZE 40

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static size_t put_uvarint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static size_t uvarint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Reads a uvarint from p[*off..len): 0, or -1 if it is cut short or does not
 * fit 64 bits. */
static int get_uvarint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; *off < len && shift < 64; shift += 7) {
		uint8_t b = p[(*off)++];
		if (shift == 63 && b > 1)
			return -1; /* past 64 bits */
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

size_t record_header_size(const struct record_meta *m)
{
	return 2 + uvarint_len(m->mode) + uvarint_len(zigzag(m->mtime_ns)) +
	       uvarint_len(m->create_rev) + uvarint_len(zigzag((int64_t)(m->mod_rev - m->create_rev))) +
	       uvarint_len(m->version);
}

size_t record_encode_header(uint8_t *out, const struct record_meta *m)
{
	size_t n = 0;
	out[n++] = RECORD_VERSION;
	out[n++] = m->kind;
	n += put_uvarint(out + n, m->mode);
	n += put_uvarint(out + n, zigzag(m->mtime_ns));
	n += put_uvarint(out + n, m->create_rev);
	n += put_uvarint(out + n, zigzag((int64_t)(m->mod_rev - m->create_rev)));
	n += put_uvarint(out + n, m->version);
	return n;
}

static int decode_v1(const uint8_t *p, size_t len, struct record_meta *meta, size_t *hlen)
{
	if (len < V1_HEADER_SIZE)
		return KVFS_ECORRUPT;
	meta->mode = get_le32(p + 4);
	meta->mtime_ns = (int64_t)get_le64(p + 8);
	meta->create_rev = get_le64(p + 16);
	meta->mod_rev = get_le64(p + 24);
	meta->version = get_le64(p + 32);
	*hlen = V1_HEADER_SIZE;
	return 0;
}

static int decode_v2(const uint8_t *p, size_t len, struct record_meta *meta, size_t *hlen)
{
	size_t off = 2;
	uint64_t mode, mtime, create, delta, version;
	if (get_uvarint(p, len, &off, &mode) < 0 || mode > UINT32_MAX ||
	    get_uvarint(p, len, &off, &mtime) < 0 || get_uvarint(p, len, &off, &create) < 0 ||
	    get_uvarint(p, len, &off, &delta) < 0 || get_uvarint(p, len, &off, &version) < 0)
		return KVFS_ECORRUPT;
	meta->mode = (uint32_t)mode;
	meta->mtime_ns = unzigzag(mtime);
	meta->create_rev = create;
	meta->mod_rev = create + (uint64_t)unzigzag(delta);
	meta->version = version;
	*hlen = off;
	return 0;
}

int record_decode(const void *buf, size_t len, struct record_meta *meta, const uint8_t **value,
		  size_t *value_len)
{
	const uint8_t *p = buf;
	size_t hlen = 0;
	if (len < 2 || p[1] > RECORD_DIR)
		return KVFS_ECORRUPT;
	meta->kind = p[1];
	int rc = p[0] == 2 ? decode_v2(p, len, meta, &hlen)
		 : p[0] == 1 ? decode_v1(p, len, meta, &hlen)
			     : KVFS_ECORRUPT;
	if (rc)
		return rc;
	*value = p + hlen;
	*value_len = len - hlen;
	return 0;
}
