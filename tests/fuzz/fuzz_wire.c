/*
 * libFuzzer target for wire_decode (net/wire.h), the first code to see bytes
 * from another peer.
 *
 * Build and run (outside automake, from the top of the tree):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src -I . \
 *       net/wire.c src/raft/conf.c src/common/bytes.c src/common/err.c \
 *       tests/fuzz/fuzz_wire.c -o fuzz_wire
 *   ./fuzz_wire -max_total_time=60 tests/fuzz/corpus/wire   (add a scratch dir
 *       first to keep new inputs out of the committed corpus)
 *
 * or `make fuzzers` in a tree configured with --enable-fuzzers CC=clang. The
 * seed corpus is written by tests/fuzz/gen_wire_corpus.c.
 *
 * Every frame ends with a CRC-32C over everything before it, so a random
 * mutation almost never gets past the checksum. Each input is therefore
 * decoded twice: as it is, and with its last four bytes replaced by the
 * correct CRC, which sends the mutation through the structural checks.
 *
 * Oracle: besides ASan/UBSan (no over-read, no overflow, no leak), a frame
 * that decodes must re-encode with the wire_encode_* functions to exactly
 * the input bytes - the format is canonical (wire.h), so the decoder neither
 * skips nor invents anything and accepts nothing the encoders would refuse -
 * and every data pointer must lie inside the input; a membership inside
 * (a snapshot's, a configuration entry's) that raft_conf_decode takes must
 * re-encode to its bytes too. Anything else must be KVFS_EPROTO (or
 * -ENOMEM).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/err.h"
#include "net/wire.h"

static void check_inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
	const uint8_t *q = p;
	if (n == 0)
		return;
	if (!q || q < data || n > size || q - data > (ptrdiff_t)(size - n))
		abort();
}

/* A membership a peer sends (in a snapshot, or a configuration entry) that
 * decodes must encode to the same bytes: the decoder reads back exactly
 * what an encoder writes, nothing more (raft.h's table). */
static void check_conf(const void *p, size_t len)
{
	struct raft_conf c;
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	if (raft_conf_decode(&c, p, len) != 0)
		return;
	int n = raft_conf_encode(&c, buf, sizeof buf);
	if (n < 0 || (size_t)n != len || memcmp(buf, p, len) != 0)
		abort();
}

static void check(const uint8_t *data, size_t size)
{
	struct wire_msg m;
	int rc = wire_decode(data, size, &m);
	if (rc == KVFS_EPROTO || rc == -ENOMEM) {
		if (m.entries_owned)
			abort(); /* failure must leave nothing to free */
		return;
	}
	if (rc != 0)
		abort(); /* undocumented return code */

	struct byte_buf b;
	bb_init(&b);
	switch (m.kind) {
	case WIRE_RAFT:
		if (m.raft.from != m.from || m.raft.to != m.to || m.raft.term != m.term)
			abort();
		for (size_t i = 0; i < m.raft.n_entries; i++) {
			check_inside(m.raft.entries[i].data, m.raft.entries[i].len, data, size);
			if (m.raft.entries[i].type == RAFT_ENTRY_CONF)
				check_conf(m.raft.entries[i].data, m.raft.entries[i].len);
		}
		check_inside(m.raft.conf_data, m.raft.conf_len, data, size);
		if (m.raft.conf_len)
			check_conf(m.raft.conf_data, m.raft.conf_len);
		check_inside(m.raft.data, m.raft.len, data, size);
		rc = wire_encode_raft(&b, &m.raft);
		break;
	case WIRE_FORWARD:
		check_inside(m.fwd.data, m.fwd.len, data, size);
		rc = wire_encode_forward(&b, m.from, m.to, &m.fwd);
		break;
	case WIRE_FORWARD_RESULT:
		rc = wire_encode_forward_result(&b, m.from, m.to, &m.result);
		break;
	case WIRE_FORWARD_ACCEPT:
		rc = wire_encode_forward_accept(&b, m.from, m.to, &m.accept);
		break;
	case WIRE_HELLO:
		check_inside(m.hello.url, m.hello.len, data, size);
		rc = wire_encode_hello(&b, m.from, m.to, &m.hello);
		break;
	default:
		abort(); /* the decoder accepted an unknown kind */
	}
	if (rc != 0 || b.err || b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	bb_free(&b);
	wire_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	if (size < WIRE_HEADER_SIZE + WIRE_CRC_SIZE || size > WIRE_MAX_MESSAGE)
		return 0;
	uint8_t *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	put_le32(copy + size - WIRE_CRC_SIZE, crc32c(0, copy, size - WIRE_CRC_SIZE));
	check(copy, size);
	free(copy);
	return 0;
}
