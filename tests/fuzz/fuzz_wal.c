/*
 * libFuzzer target for kv_wal_scan (store/kv_wal.c), which reads LevelDB's
 * write-ahead log after LevelDB found it corrupt: whatever a damaged disk
 * holds, it must stay within the bytes and decide consistently.
 *
 * Oracle: besides ASan/UBSan, the end it reports lies within the input, and
 * when it would cut the log there (a torn tail), the cut log scans clean to
 * its own end: cutting once is enough, and nothing whole is cut off.
 *
 * Seed corpus: tests/fuzz/corpus/wal, logs written by LevelDB (a few small
 * records, one spanning blocks), whole and torn.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/kv_internal.h"

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
		memcpy(cut, data, end);
		if (!kv_wal_scan(cut, end, &again) || again != end)
			abort();
		free(cut);
	}
	return 0;
}
