/*
 * Encoding and decoding of value records (layout table in record.h).
 */
#include <string.h>

#include "common/bytes.h"
#include "common/err.h"
#include "store/record.h"

void record_encode_header(uint8_t out[RECORD_HEADER_SIZE], const struct record_meta *meta)
{
	out[0] = RECORD_VERSION;
	out[1] = meta->kind;
	out[2] = out[3] = 0;
	put_le32(out + 4, meta->mode);
	put_le64(out + 8, (uint64_t)meta->mtime_ns);
	put_le64(out + 16, meta->create_rev);
	put_le64(out + 24, meta->mod_rev);
	put_le64(out + 32, meta->version);
}

int record_decode(const void *buf, size_t len, struct record_meta *meta, const uint8_t **value,
		  size_t *value_len)
{
	const uint8_t *p = buf;
	if (len < RECORD_HEADER_SIZE || p[0] != RECORD_VERSION || p[1] > RECORD_DIR)
		return KVFS_ECORRUPT;
	meta->kind = p[1];
	meta->mode = get_le32(p + 4);
	meta->mtime_ns = (int64_t)get_le64(p + 8);
	meta->create_rev = get_le64(p + 16);
	meta->mod_rev = get_le64(p + 24);
	meta->version = get_le64(p + 32);
	*value = p + RECORD_HEADER_SIZE;
	*value_len = len - RECORD_HEADER_SIZE;
	return 0;
}
