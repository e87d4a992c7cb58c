/*
 * libFuzzer target for kv_wal_scan (store/kv_wal.c), which reads LevelDB's
 * write-ahead log after LevelDB found it corrupt: whatever a damaged disk
 * holds, it must stay within the bytes and decide consistently.
 *
 * Oracle: besides ASan/UBSan, the end it reports lies within the input, and
 * when it would cut the log there (a torn tail), the cut log scans clean to
 * its own end (cutting once is enough), and no block after the cut's block
 * starts with a whole record (FULL or FIRST) whose checksum is good:
 * nothing a reader would find is cut off.
 *
 * Seed corpus: tests/fuzz/corpus/wal, logs written by LevelDB (a few small
 * records, one spanning blocks), whole and torn.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/kv_internal.h"

/* Whether a FULL or FIRST fragment with a good checksum starts at d + at. */
static int whole_record_at(const uint8_t *d, size_t size, size_t at)
{
	if (size - at < 7)
		return 0;
	size_t len = (size_t)d[at + 4] | (size_t)d[at + 5] << 8;
	if (7 + len > size - at || 7 + len > 32768 || (d[at + 6] != 1 && d[at + 6] != 2))
		return 0;
	uint32_t c = crc32c(0, d + at + 6, 1 + len);
	return get_le32(d + at) == ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t end = SIZE_MAX;
	if (!kv_wal_scan(data, size, &end))
		return 0;
	if (end > size)
		abort();
	if (end < size) {
		uint8_t *cut = malloc(end ? end : 1);
		size_t again = SIZE_MAX;
		if (!cut)
			return 0;
		/* From the first block after the cut's: a FIRST fragment at the
		 * cut itself (the cut is at a block's start) is the unfinished
		 * record being cut, whose continuation is damaged, not one a
		 * reader would find (found by this fuzzer in CI, 2026-11-27). */
		for (size_t b = end / 32768 * 32768 + 32768; b < size; b += 32768)
			if (whole_record_at(data, size, b))
				abort();
		memcpy(cut, data, end);
		if (!kv_wal_scan(cut, end, &again) || again != end)
			abort();
		free(cut);
	}
	return 0;
}
