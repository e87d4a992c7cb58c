/*
 * libFuzzer target for kv_snap_next (store/kv_snap.c), which decodes the
 * snapshot stream a follower receives from its leader, a chunk at a time:
 * whatever bytes arrive, it must stay within them, refuse what no snapshot
 * holds, and decide the same wherever a chunk ends.
 *
 * Oracle: besides ASan/UBSan,
 *   - an item it returns lies within the input and is what it says: its
 *     length is 4 (the end mark) or 8 + key + value, a user key starts with
 *     'k' and its value decodes as a record, a metadata item has the name
 *     of its kind and 8 bytes;
 *   - on every prefix of the input it says "not yet" (0) where the whole
 *     input has an item longer than the prefix, the same item where the
 *     prefix holds it, and "not yet" or the same refusal where the whole
 *     input is refused: more bytes never turn an item into an error;
 *   - walking the input item by item ends.
 *
 * Seed corpus: tests/fuzz/corpus/snap (tests/fuzz/gen_snap_corpus.py).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/kv_internal.h"
#include "store/record.h"

static void check_item(const uint8_t *d, size_t size, long n, const struct kv_snap_item *it)
{
	if (n <= 0 || (size_t)n > size)
		abort();
	if (it->kind == KV_SNAP_END) {
		if (n != 4)
			abort();
		return;
	}
	if (it->key != d + 4 || it->value != d + 8 + it->klen ||
	    (size_t)n != 8 + it->klen + it->vlen)
		abort();
	if (it->kind == KV_SNAP_KEY) {
		struct record_meta m;
		const uint8_t *v;
		size_t vl;
		if (it->key[0] != 'k' || record_decode(it->value, it->vlen, &m, &v, &vl) != 0)
			abort();
		return;
	}
	const char *name = it->kind == KV_SNAP_APPLIED ? KV_META_APPLIED
			   : it->kind == KV_SNAP_COUNT ? KV_META_COUNT
						       : NULL;
	size_t nlen =
	    it->kind == KV_SNAP_APPLIED ? sizeof KV_META_APPLIED - 1 : sizeof KV_META_COUNT - 1;
	if (!name || it->klen != nlen || memcmp(it->key, name, nlen) != 0 || it->vlen != 8)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv_snap_item it, at;
	long whole = kv_snap_next(data, size, &it);
	if (whole > 0)
		check_item(data, size, whole, &it);
	else if (whole != 0 && whole != KVFS_EPROTO)
		abort();
	for (size_t cut = 0; cut < size; cut++) {
		long n = kv_snap_next(data, cut, &at);
		bool ok;
		if (whole > 0)
			ok = (size_t)whole <= cut ? n == whole && at.kind == it.kind &&
							at.klen == it.klen && at.vlen == it.vlen
						  : n == 0;
		else if (whole == 0)
			ok = n == 0;
		else
			ok = n == 0 || n == whole;
		if (!ok)
			abort();
	}
	/* Item by item, as the writer takes them. */
	size_t used = 0;
	long n;
	while (used < size && (n = kv_snap_next(data + used, size - used, &at)) > 0) {
		check_item(data + used, size - used, n, &at);
		used += (size_t)n;
		if (at.kind == KV_SNAP_END)
			break;
	}
	return 0;
}
