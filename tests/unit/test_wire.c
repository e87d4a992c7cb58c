/*
 * Unit tests for the peer wire codec (net/wire.h): every Raft message type,
 * forwarded writes and their results come back from the decoder exactly as
 * they were encoded, and every malformed frame is refused with KVFS_EPROTO
 * without reading past it. Malformed frames are decoded from exact-size heap
 * copies so valgrind (or ASan) catches any over-read; frames edited on
 * purpose get their CRC recomputed (fix_crc) so the check under test is the
 * one that fires, not the checksum.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/err.h"
#include "net/wire.h"
#include "raft/raft.h"

/* Offsets from the table in wire.h. */
#define OFF_VERSION 0
#define OFF_KIND 1
#define OFF_FROM 2
#define OFF_TERM 18
#define OFF_RAFT_TYPE 26
#define OFF_RAFT_REJECT 27
#define OFF_RAFT_COUNT 110
#define OFF_RAFT_ENTRIES 114
#define OFF_FWD_LEN 34
#define OFF_RESULT_RESULT 34

static const uint8_t payload_a[] = "txn bytes: put k=v";
static const uint8_t payload_b[] = {0x00, 0xff, 0x01, 0xfe};

/* Rewrites the trailing CRC-32C of frame buf[0..len). */
static void fix_crc(uint8_t *buf, size_t len)
{
	put_le32(buf + len - WIRE_CRC_SIZE, crc32c(0, buf, len - WIRE_CRC_SIZE));
}

/* Decodes a copy of buf[0..len) sitting in an allocation of exactly len
 * bytes; returns wire_decode's code and frees the message. */
static int decode_exact(const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct wire_msg m;
	assert_non_null(copy);
	memcpy(copy, buf, len);
	int rc = wire_decode(copy, len, &m);
	if (rc != 0)
		assert_null(m.entries_owned); /* nothing left to free on failure */
	wire_msg_free(&m);
	free(copy);
	return rc;
}

static void assert_blob(const void *got, size_t got_len, const void *want, size_t want_len)
{
	assert_int_equal(got_len, want_len);
	if (want_len)
		assert_memory_equal(got, want, want_len);
}

static void assert_raft_equal(const struct raft_msg *a, const struct raft_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->from, b->from);
	assert_int_equal(a->to, b->to);
	assert_int_equal(a->term, b->term);
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->log_term, b->log_term);
	assert_int_equal(a->commit, b->commit);
	assert_int_equal(a->reject, b->reject);
	assert_int_equal(a->hint_index, b->hint_index);
	assert_int_equal(a->hint_term, b->hint_term);
	assert_int_equal(a->read_seq, b->read_seq);
	assert_int_equal(a->ctx, b->ctx);
	assert_int_equal(a->transfer, b->transfer);
	assert_int_equal(a->snap_index, b->snap_index);
	assert_int_equal(a->snap_term, b->snap_term);
	assert_int_equal(a->offset, b->offset);
	assert_int_equal(a->done, b->done);
	assert_int_equal(a->n_entries, b->n_entries);
	for (size_t i = 0; i < a->n_entries; i++) {
		assert_int_equal(a->entries[i].term, b->entries[i].term);
		assert_int_equal(a->entries[i].index, b->entries[i].index);
		assert_int_equal(a->entries[i].type, b->entries[i].type);
		assert_blob(a->entries[i].data, a->entries[i].len, b->entries[i].data,
			    b->entries[i].len);
	}
	assert_blob(a->conf_data, a->conf_len, b->conf_data, b->conf_len);
	assert_blob(a->data, a->len, b->data, b->len);
}

/* Encodes m, decodes it back, checks every field and that the decoded data
 * pointers lie inside the frame, then checks that the decoded message
 * re-encodes to the same bytes. */
static void round_trip_raft(const struct raft_msg *m)
{
	struct byte_buf b, again;
	struct wire_msg w;
	bb_init(&b);
	bb_init(&again);
	assert_int_equal(wire_encode_raft(&b, m), 0);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(w.kind, WIRE_RAFT);
	assert_int_equal(w.from, m->from);
	assert_int_equal(w.to, m->to);
	assert_int_equal(w.term, m->term);
	assert_raft_equal(&w.raft, m);
	for (size_t i = 0; i < w.raft.n_entries; i++) {
		const uint8_t *d = w.raft.entries[i].data;
		assert_true(d >= b.data && d + w.raft.entries[i].len <= b.data + b.len);
	}
	if (w.raft.len) {
		const uint8_t *d = w.raft.data;
		assert_true(d >= b.data && d + w.raft.len <= b.data + b.len);
	}
	assert_int_equal(wire_encode_raft(&again, &w.raft), 0);
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.data, b.data, b.len);
	wire_msg_free(&w);
	assert_null(w.entries_owned);
	bb_free(&b);
	bb_free(&again);
}

/* A realistic message of each type, as the core would send it. conf/chunk
 * and the entries are static data. */
static struct raft_entry append_entries[] = {
	{.term = 7, .index = 101, .type = RAFT_ENTRY_EMPTY, .data = NULL, .len = 0},
	{.term = 7, .index = 102, .type = RAFT_ENTRY_NORMAL, .data = payload_a,
	 .len = sizeof payload_a},
	{.term = 7, .index = 103, .type = RAFT_ENTRY_NORMAL, .data = NULL, .len = 0},
	{.term = 8, .index = 104, .type = RAFT_ENTRY_CONF, .data = payload_b,
	 .len = sizeof payload_b},
	{.term = 8, .index = 105, .type = RAFT_ENTRY_NORMAL, .data = payload_b, .len = 1},
};

static struct raft_msg sample_msg(uint8_t type)
{
	struct raft_msg m = {.type = type, .from = 1, .to = 3, .term = 8};
	switch (type) {
	case RAFT_MSG_APPEND:
		m.index = 100;
		m.log_term = 6;
		m.commit = 99;
		m.entries = append_entries;
		m.n_entries = sizeof append_entries / sizeof append_entries[0];
		break;
	case RAFT_MSG_APPEND_RESP:
		m.reject = 1;
		m.index = 100;
		m.hint_index = 90;
		m.hint_term = 5;
		break;
	case RAFT_MSG_HEARTBEAT:
		m.commit = 105;
		m.index = 107;
		m.read_seq = 4242;
		break;
	case RAFT_MSG_HEARTBEAT_RESP:
		m.read_seq = 4242;
		break;
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PREVOTE:
		m.index = 105;
		m.log_term = 8;
		m.transfer = 1;
		break;
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PREVOTE_RESP:
		m.reject = 1;
		break;
	case RAFT_MSG_SNAPSHOT:
		m.snap_index = 5000;
		m.snap_term = 7;
		m.offset = 1 << 20;
		m.conf_data = payload_b;
		m.conf_len = sizeof payload_b;
		m.data = payload_a;
		m.len = sizeof payload_a;
		m.done = 1;
		break;
	case RAFT_MSG_SNAPSHOT_RESP:
		m.snap_index = 5000;
		m.offset = 2 << 20;
		m.done = 1;
		break;
	case RAFT_MSG_TIMEOUT_NOW:
		break;
	case RAFT_MSG_READ_INDEX:
		m.ctx = 0xdeadbeefcafef00dull;
		break;
	case RAFT_MSG_READ_INDEX_RESP:
		m.ctx = 0xdeadbeefcafef00dull;
		m.index = 105;
		break;
	case RAFT_MSG_DURABLE:
		m.index = 106;
		break;
	default:
		fail();
	}
	return m;
}

/* Encodes sample_msg(type) into *b (initialised here). */
static void encode_sample(struct byte_buf *b, uint8_t type)
{
	struct raft_msg m = sample_msg(type);
	bb_init(b);
	assert_int_equal(wire_encode_raft(b, &m), 0);
}

static void encode_forward(struct byte_buf *b)
{
	struct wire_forward f = {.req_id = 77, .data = payload_a, .len = sizeof payload_a};
	bb_init(b);
	assert_int_equal(wire_encode_forward(b, 2, 1, &f), 0);
}

static void encode_result(struct byte_buf *b)
{
	struct wire_forward_result r = {.req_id = 77, .result = KVFS_EPRECOND, .index = 9,
					.deleted = 3, .leader_hint = 1};
	bb_init(b);
	assert_int_equal(wire_encode_forward_result(b, 1, 2, &r), 0);
}

static void encode_accept(struct byte_buf *b)
{
	struct wire_forward_accept a = {.req_id = 78, .index = 1234, .term = 7};
	bb_init(b);
	assert_int_equal(wire_encode_forward_accept(b, 1, 2, &a), 0);
}

static void encode_hello(struct byte_buf *b)
{
	static const char url[] = "http://10.0.0.7:8001";
	struct wire_hello h = {.url = url, .len = sizeof url - 1};
	bb_init(b);
	assert_int_equal(wire_encode_hello(b, 3, 1, &h), 0);
}

static void test_round_trip_every_raft_type(void **state)
{
	/* A realistic message of every Raft type comes back field for field and re-encodes to the same bytes. */
	for (uint8_t t = RAFT_MSG_APPEND; t < RAFT_MSG_TYPE_MAX; t++) {
		struct raft_msg m = sample_msg(t);
		round_trip_raft(&m);
	}
}

static void test_round_trip_append_entries(void **state)
{
	/* AppendEntries carries entries of every type, empty ones included, with their term, index and bytes. */
	struct byte_buf b;
	struct wire_msg w;
	encode_sample(&b, RAFT_MSG_APPEND);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(w.raft.n_entries, 5);
	assert_ptr_equal(w.raft.entries, w.entries_owned);
	assert_int_equal(w.raft.entries[0].type, RAFT_ENTRY_EMPTY);
	assert_int_equal(w.raft.entries[0].len, 0);
	assert_int_equal(w.raft.entries[2].len, 0);
	assert_int_equal(w.raft.entries[3].type, RAFT_ENTRY_CONF);
	assert_int_equal(w.raft.entries[3].term, 8);
	assert_int_equal(w.raft.entries[4].index, 105);
	assert_memory_equal(w.raft.entries[1].data, payload_a, sizeof payload_a);
	/* The header's from/to/term are the Raft message's. */
	assert_int_equal(w.raft.from, 1);
	assert_int_equal(w.raft.to, 3);
	assert_int_equal(w.raft.term, 8);
	wire_msg_free(&w);
	bb_free(&b);
}

static void test_round_trip_snapshot_with_real_conf(void **state)
{
	/* InstallSnapshot carries an encoded membership and a chunk of snapshot bytes untouched. */
	struct raft_conf conf = {.n = 2};
	uint8_t confbuf[RAFT_CONF_ENCODED_MAX], chunk[3000];
	conf.servers[0] = (struct raft_server){.id = 1, .role = RAFT_VOTER};
	conf.servers[1] = (struct raft_server){.id = 2, .role = RAFT_LEARNER};
	strcpy(conf.servers[0].addr, "tcp://127.0.0.1:7001");
	strcpy(conf.servers[1].addr, "tcp://127.0.0.1:7002");
	int n = raft_conf_encode(&conf, confbuf, sizeof confbuf);
	assert_true(n > 0);
	for (size_t i = 0; i < sizeof chunk; i++)
		chunk[i] = (uint8_t)(i * 31);
	struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 3,
			     .snap_index = 1000, .snap_term = 2, .offset = 0,
			     .conf_data = confbuf, .conf_len = (size_t)n,
			     .data = chunk, .len = sizeof chunk, .done = 0};
	round_trip_raft(&m);

	struct byte_buf b;
	struct wire_msg w;
	struct raft_conf back;
	bb_init(&b);
	assert_int_equal(wire_encode_raft(&b, &m), 0);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(raft_conf_decode(&back, w.raft.conf_data, w.raft.conf_len), 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.servers[1].addr, "tcp://127.0.0.1:7002");
	wire_msg_free(&w);
	bb_free(&b);
}

static void test_empty_raft_message_size(void **state)
{
	/* A message without entries, conf or chunk is the 126 bytes of the table in wire.h. */
	struct byte_buf b;
	encode_sample(&b, RAFT_MSG_TIMEOUT_NOW);
	assert_int_equal(b.len, 126);
	assert_int_equal(b.data[OFF_VERSION], WIRE_VERSION);
	assert_int_equal(b.data[OFF_KIND], WIRE_RAFT);
	assert_int_equal(get_le64(b.data + OFF_FROM), 1);
	assert_int_equal(get_le64(b.data + OFF_TERM), 8);
	assert_int_equal(b.data[OFF_RAFT_TYPE], RAFT_MSG_TIMEOUT_NOW);
	bb_free(&b);
}

static void test_round_trip_forward(void **state)
{
	/* A forwarded write keeps its request id and payload, which points into the frame. */
	struct byte_buf b;
	struct wire_msg w;
	encode_forward(&b);
	assert_int_equal(b.len, 38 + sizeof payload_a + 4);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(w.kind, WIRE_FORWARD);
	assert_int_equal(w.from, 2);
	assert_int_equal(w.to, 1);
	assert_int_equal(w.term, 0);
	assert_int_equal(w.fwd.req_id, 77);
	assert_ptr_equal(w.fwd.data, b.data + 38);
	assert_blob(w.fwd.data, w.fwd.len, payload_a, sizeof payload_a);
	assert_null(w.entries_owned);

	struct byte_buf again;
	bb_init(&again);
	assert_int_equal(wire_encode_forward(&again, w.from, w.to, &w.fwd), 0);
	assert_memory_equal(again.data, b.data, b.len);
	wire_msg_free(&w);
	bb_free(&again);

	/* An empty payload is allowed (the payload is opaque here). */
	struct wire_forward empty = {.req_id = 1};
	bb_free(&b);
	assert_int_equal(wire_encode_forward(&b, 2, 1, &empty), 0);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(w.fwd.len, 0);
	wire_msg_free(&w);
	bb_free(&b);
}

static void test_round_trip_forward_result(void **state)
{
	/* A forward result keeps its request id, negative result code, index, deleted count and leader hint. */
	struct byte_buf b;
	struct wire_msg w;
	encode_result(&b);
	assert_int_equal(b.len, 66);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(w.kind, WIRE_FORWARD_RESULT);
	assert_int_equal(w.result.req_id, 77);
	assert_int_equal(w.result.result, KVFS_EPRECOND);
	assert_int_equal(w.result.index, 9);
	assert_int_equal(w.result.deleted, 3);
	assert_int_equal(w.result.leader_hint, 1);
	wire_msg_free(&w);
	bb_free(&b);
}

static void test_round_trip_forward_accept(void **state)
{
	/* A forward accept keeps its request id and the entry's index and term. */
	struct byte_buf b;
	struct wire_msg w;
	encode_accept(&b);
	assert_int_equal(b.len, 54);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(w.kind, WIRE_FORWARD_ACCEPT);
	assert_int_equal(w.from, 1);
	assert_int_equal(w.to, 2);
	assert_int_equal(w.accept.req_id, 78);
	assert_int_equal(w.accept.index, 1234);
	assert_int_equal(w.accept.term, 7);
	wire_msg_free(&w);
	bb_free(&b);
}

static void test_round_trip_hello(void **state)
{
	/* A hello keeps its URL byte for byte; an empty URL or one over 255 bytes is not encodable. */
	struct byte_buf b;
	struct wire_msg w;
	encode_hello(&b);
	assert_int_equal(b.len, 26 + 1 + 20 + 4);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(w.kind, WIRE_HELLO);
	assert_int_equal(w.from, 3);
	assert_int_equal(w.hello.len, 20);
	assert_memory_equal(w.hello.url, "http://10.0.0.7:8001", 20);
	wire_msg_free(&w);
	bb_free(&b);

	char long_url[WIRE_URL_MAX + 1];
	memset(long_url, 'x', sizeof long_url);
	struct wire_hello h = {.url = long_url, .len = WIRE_URL_MAX};
	bb_init(&b);
	assert_int_equal(wire_encode_hello(&b, 3, 1, &h), 0);
	assert_int_equal(wire_decode(b.data, b.len, &w), 0);
	assert_int_equal(w.hello.len, WIRE_URL_MAX);
	wire_msg_free(&w);
	size_t len = b.len;
	h.len = WIRE_URL_MAX + 1;
	assert_int_equal(wire_encode_hello(&b, 3, 1, &h), -EINVAL);
	h.len = 0;
	assert_int_equal(wire_encode_hello(&b, 3, 1, &h), -EINVAL);
	assert_int_equal(b.len, len);
	bb_free(&b);
}

static void test_appends_to_existing_buffer(void **state)
{
	/* Encoders append after what the buffer already holds and the CRC covers only the new message. */
	struct byte_buf b;
	struct raft_msg m = sample_msg(RAFT_MSG_HEARTBEAT);
	struct wire_msg w;
	bb_init(&b);
	bb_put(&b, "prefix", 6);
	assert_int_equal(wire_encode_raft(&b, &m), 0);
	assert_int_equal(wire_decode(b.data + 6, b.len - 6, &w), 0);
	assert_raft_equal(&w.raft, &m);
	wire_msg_free(&w);
	bb_free(&b);
}

/* Checks that every proper prefix of buf[0..len) is refused. */
static void assert_every_truncation_rejected(const uint8_t *buf, size_t len)
{
	for (size_t n = 0; n < len; n++)
		assert_int_equal(decode_exact(buf, n), KVFS_EPROTO);
	assert_int_equal(decode_exact(buf, len), 0);
}

static void test_every_truncation_rejected(void **state)
{
	/* Every prefix of a valid frame of each kind is KVFS_EPROTO, with or without a repaired CRC. */
	struct byte_buf b;
	for (uint8_t t = RAFT_MSG_APPEND; t < RAFT_MSG_TYPE_MAX; t++) {
		encode_sample(&b, t);
		assert_every_truncation_rejected(b.data, b.len);
		/* Same with the CRC recomputed over each prefix, so the
		 * structural checks, not the checksum, must catch it. */
		for (size_t n = WIRE_HEADER_SIZE + WIRE_CRC_SIZE; n < b.len; n++) {
			uint8_t *copy = malloc(n);
			assert_non_null(copy);
			memcpy(copy, b.data, n);
			fix_crc(copy, n);
			assert_int_equal(decode_exact(copy, n), KVFS_EPROTO);
			free(copy);
		}
		bb_free(&b);
	}
	encode_forward(&b);
	assert_every_truncation_rejected(b.data, b.len);
	bb_free(&b);
	encode_result(&b);
	assert_every_truncation_rejected(b.data, b.len);
	bb_free(&b);
	encode_accept(&b);
	assert_every_truncation_rejected(b.data, b.len);
	bb_free(&b);
	encode_hello(&b);
	assert_every_truncation_rejected(b.data, b.len);
	bb_free(&b);
}

static void test_flipped_byte_fails_checksum(void **state)
{
	/* Any single flipped bit, in an entry payload, a chunk, a forwarded payload or a header field, is refused. */
	struct byte_buf b;
	encode_sample(&b, RAFT_MSG_APPEND);
	/* Entry 1's payload starts after entry 0 (21 bytes, no data) and entry 1's 21-byte head. */
	size_t at = OFF_RAFT_ENTRIES + 21 + 21 + 3;
	assert_int_equal(b.data[at], payload_a[3]);
	b.data[at] ^= 0x10;
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	b.data[at] ^= 0x10;
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b.data[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
			b.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	bb_free(&b);

	encode_sample(&b, RAFT_MSG_SNAPSHOT);
	b.data[b.len - WIRE_CRC_SIZE - 1] ^= 1; /* last chunk byte */
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_free(&b);

	encode_forward(&b);
	b.data[38] ^= 0x80;
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_free(&b);
}

/* Sets buf[off] = v in a copy of a sample frame, repairs the CRC and returns
 * the decoder's answer. */
static int decode_with_byte(struct byte_buf *b, size_t off, uint8_t v)
{
	uint8_t saved = b->data[off];
	b->data[off] = v;
	fix_crc(b->data, b->len);
	int rc = decode_exact(b->data, b->len);
	b->data[off] = saved;
	fix_crc(b->data, b->len);
	return rc;
}

static void test_bad_version_kind_type_rejected(void **state)
{
	/* Unknown versions, kinds, Raft types and entry types are refused even with a valid CRC. */
	struct byte_buf b;
	encode_sample(&b, RAFT_MSG_APPEND);
	assert_int_equal(decode_with_byte(&b, OFF_VERSION, 0), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_VERSION, 2), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_KIND, 0), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_KIND, 6), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_KIND, 0xff), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_KIND, WIRE_FORWARD), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_RAFT_TYPE, 0), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_RAFT_TYPE, RAFT_MSG_TYPE_MAX), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_RAFT_TYPE, 0xff), KVFS_EPROTO);
	/* Entries are only for APPEND. */
	assert_int_equal(decode_with_byte(&b, OFF_RAFT_TYPE, RAFT_MSG_HEARTBEAT), KVFS_EPROTO);
	/* Entry 1's type byte: 0, 4 and 0xff are unknown. */
	size_t etype = OFF_RAFT_ENTRIES + 21 + 16;
	assert_int_equal(b.data[etype], RAFT_ENTRY_NORMAL);
	assert_int_equal(decode_with_byte(&b, etype, 0), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, etype, 4), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, etype, 0xff), KVFS_EPROTO);
	/* An EMPTY entry must have no data. */
	assert_int_equal(decode_with_byte(&b, etype, RAFT_ENTRY_EMPTY), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, etype, RAFT_ENTRY_CONF), 0);
	/* Flags are 0 or 1. */
	assert_int_equal(decode_with_byte(&b, OFF_RAFT_REJECT, 2), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_RAFT_REJECT, 1), 0);
	/* Entry indexes follow the previous index. */
	assert_int_equal(decode_with_byte(&b, OFF_RAFT_ENTRIES + 8, 100), KVFS_EPROTO);
	/* Sender and receiver are nonzero. */
	for (size_t i = 0; i < 8; i++)
		b.data[OFF_FROM + i] = 0;
	fix_crc(b.data, b.len);
	assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
	bb_free(&b);

	/* A chunk in a message other than SNAPSHOT is refused. */
	encode_sample(&b, RAFT_MSG_SNAPSHOT);
	assert_int_equal(decode_with_byte(&b, OFF_RAFT_TYPE, RAFT_MSG_SNAPSHOT_RESP),
			 KVFS_EPROTO);
	bb_free(&b);

	/* Forwarded messages carry term 0 and results are never positive. */
	encode_forward(&b);
	assert_int_equal(decode_with_byte(&b, OFF_TERM, 1), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_KIND, WIRE_FORWARD_RESULT), KVFS_EPROTO);
	bb_free(&b);
	encode_result(&b);
	assert_int_equal(decode_with_byte(&b, OFF_RESULT_RESULT + 3, 0x00), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_TERM + 7, 0x80), KVFS_EPROTO);
	bb_free(&b);
	encode_accept(&b);
	assert_int_equal(decode_with_byte(&b, OFF_TERM, 1), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, OFF_KIND, 6), KVFS_EPROTO);
	bb_free(&b);
	/* A hello's URL length must be nonzero and match the bytes present. */
	encode_hello(&b);
	assert_int_equal(decode_with_byte(&b, OFF_TERM, 1), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, WIRE_HEADER_SIZE, 0), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, WIRE_HEADER_SIZE, 19), KVFS_EPROTO);
	assert_int_equal(decode_with_byte(&b, WIRE_HEADER_SIZE, 21), KVFS_EPROTO);
	bb_free(&b);
}

/* Writes a u32 at off in a copy of b, repairs the CRC and decodes. */
static int decode_with_u32(struct byte_buf *b, size_t off, uint32_t v)
{
	uint8_t *copy = malloc(b->len);
	assert_non_null(copy);
	memcpy(copy, b->data, b->len);
	put_le32(copy + off, v);
	fix_crc(copy, b->len);
	int rc = decode_exact(copy, b->len);
	free(copy);
	return rc;
}

static void test_huge_counts_and_lengths_rejected(void **state)
{
	/* Counts and lengths larger than the bytes present are refused before any allocation or read. */
	struct byte_buf b;
	encode_sample(&b, RAFT_MSG_APPEND);
	assert_int_equal(decode_with_u32(&b, OFF_RAFT_COUNT, UINT32_MAX), KVFS_EPROTO);
	assert_int_equal(decode_with_u32(&b, OFF_RAFT_COUNT, 6), KVFS_EPROTO);
	assert_int_equal(decode_with_u32(&b, OFF_RAFT_COUNT, 4), KVFS_EPROTO);
	/* Entry 1's length. */
	assert_int_equal(decode_with_u32(&b, OFF_RAFT_ENTRIES + 21 + 17, UINT32_MAX), KVFS_EPROTO);
	assert_int_equal(decode_with_u32(&b, OFF_RAFT_ENTRIES + 21 + 17, sizeof payload_a + 1),
			 KVFS_EPROTO);
	bb_free(&b);

	/* Conf and chunk lengths of a SNAPSHOT (chunk length sits before its bytes and the CRC). */
	encode_sample(&b, RAFT_MSG_SNAPSHOT);
	assert_int_equal(decode_with_u32(&b, OFF_RAFT_ENTRIES, UINT32_MAX), KVFS_EPROTO);
	size_t chunk_len_off = b.len - WIRE_CRC_SIZE - sizeof payload_a - 4;
	assert_int_equal(get_le32(b.data + chunk_len_off), sizeof payload_a);
	assert_int_equal(decode_with_u32(&b, chunk_len_off, UINT32_MAX), KVFS_EPROTO);
	assert_int_equal(decode_with_u32(&b, chunk_len_off, sizeof payload_a + 1), KVFS_EPROTO);
	assert_int_equal(decode_with_u32(&b, chunk_len_off, sizeof payload_a - 1), KVFS_EPROTO);
	bb_free(&b);

	encode_forward(&b);
	assert_int_equal(decode_with_u32(&b, OFF_FWD_LEN, UINT32_MAX), KVFS_EPROTO);
	assert_int_equal(decode_with_u32(&b, OFF_FWD_LEN, WIRE_MAX_MESSAGE), KVFS_EPROTO);
	bb_free(&b);

	/* A frame declaring more than WIRE_MAX_MESSAGE bytes is refused on its
	 * length alone: the decoder must not touch the buffer (it is small). */
	uint8_t small[WIRE_HEADER_SIZE + WIRE_CRC_SIZE] = {WIRE_VERSION, WIRE_RAFT};
	struct wire_msg w;
	assert_int_equal(wire_decode(small, (size_t)WIRE_MAX_MESSAGE + 1, &w), KVFS_EPROTO);
}

static void test_trailing_bytes_rejected(void **state)
{
	/* Bytes after the last field, whether the CRC covers them or not, are refused. */
	struct byte_buf b;
	for (int kind = 0; kind < 5; kind++) {
		if (kind == 0)
			encode_sample(&b, RAFT_MSG_READ_INDEX);
		else if (kind == 1)
			encode_forward(&b);
		else if (kind == 2)
			encode_result(&b);
		else if (kind == 3)
			encode_accept(&b);
		else
			encode_hello(&b);
		size_t len = b.len;
		/* One extra byte after the CRC. */
		bb_u8(&b, 0);
		assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
		/* One extra byte before a CRC that covers it. */
		b.data[len] = b.data[len - 1];
		b.data[len - WIRE_CRC_SIZE] = 0x5a;
		fix_crc(b.data, b.len);
		assert_int_equal(decode_exact(b.data, b.len), KVFS_EPROTO);
		bb_free(&b);
	}
}

static void test_encoder_refuses_unencodable(void **state)
{
	/* The encoders answer -EINVAL for messages the decoder would refuse and append nothing. */
	struct byte_buf b;
	bb_init(&b);
	struct raft_msg m = sample_msg(RAFT_MSG_APPEND);
	struct raft_entry bad[2] = {append_entries[1], append_entries[2]};

	m.from = 0;
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	m = sample_msg(RAFT_MSG_APPEND);
	m.type = RAFT_MSG_TYPE_MAX;
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	m = sample_msg(RAFT_MSG_APPEND);
	m.done = 2;
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	m = sample_msg(RAFT_MSG_APPEND);
	m.index = 99; /* entries start at 101, not 100 */
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	m = sample_msg(RAFT_MSG_APPEND);
	m.type = RAFT_MSG_HEARTBEAT; /* entries outside APPEND */
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	m = sample_msg(RAFT_MSG_APPEND);
	m.entries = bad;
	m.n_entries = 2;
	m.index = 101;
	bad[0].type = RAFT_ENTRY_EMPTY; /* EMPTY with data */
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	bad[0].type = 9;
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	bad[0].type = RAFT_ENTRY_NORMAL;
	bad[0].data = NULL; /* NULL with a length */
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	bad[0].data = payload_a;
	bad[0].len = (size_t)WIRE_MAX_MESSAGE; /* too large (never read) */
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);
	m = sample_msg(RAFT_MSG_SNAPSHOT);
	m.type = RAFT_MSG_SNAPSHOT_RESP; /* chunk outside SNAPSHOT */
	assert_int_equal(wire_encode_raft(&b, &m), -EINVAL);

	struct wire_forward f = {.req_id = 1, .data = NULL, .len = 3};
	assert_int_equal(wire_encode_forward(&b, 1, 2, &f), -EINVAL);
	f.data = payload_a;
	assert_int_equal(wire_encode_forward(&b, 0, 2, &f), -EINVAL);
	f.len = (size_t)WIRE_MAX_MESSAGE;
	assert_int_equal(wire_encode_forward(&b, 1, 2, &f), -EINVAL);
	struct wire_forward_result r = {.result = 1};
	assert_int_equal(wire_encode_forward_result(&b, 1, 2, &r), -EINVAL);
	r.result = 0;
	assert_int_equal(wire_encode_forward_result(&b, 1, 0, &r), -EINVAL);
	assert_int_equal(b.len, 0);
	bb_free(&b);
}

static void test_encoder_sticky_error(void **state)
{
	/* A buffer already in error makes every encoder fail with -ENOMEM and append nothing. */
	struct byte_buf b;
	struct raft_msg m = sample_msg(RAFT_MSG_HEARTBEAT);
	struct wire_forward f = {.req_id = 1};
	struct wire_forward_result r = {.req_id = 1};
	bb_init(&b);
	b.err = 1;
	assert_int_equal(wire_encode_raft(&b, &m), -ENOMEM);
	assert_int_equal(wire_encode_forward(&b, 1, 2, &f), -ENOMEM);
	assert_int_equal(wire_encode_forward_result(&b, 1, 2, &r), -ENOMEM);
	assert_int_equal(b.len, 0);
	bb_free(&b);
}

static void test_every_byte_change_is_safe(void **state)
{
	/* Setting any byte of a valid AppendEntries to any of a few values, CRC repaired, decodes or fails with KVFS_EPROTO, never crashes or over-reads. */
	struct byte_buf b;
	encode_sample(&b, RAFT_MSG_APPEND);
	for (size_t i = 0; i < b.len - WIRE_CRC_SIZE; i++) {
		const uint8_t vals[] = {0, 1, 2, 0x7f, 0x80, 0xff, (uint8_t)(b.data[i] + 1)};
		for (size_t j = 0; j < sizeof vals; j++) {
			int rc = decode_with_byte(&b, i, vals[j]);
			assert_true(rc == 0 || rc == KVFS_EPROTO);
		}
	}
	bb_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_raft_type),
		cmocka_unit_test(test_round_trip_append_entries),
		cmocka_unit_test(test_round_trip_snapshot_with_real_conf),
		cmocka_unit_test(test_empty_raft_message_size),
		cmocka_unit_test(test_round_trip_forward),
		cmocka_unit_test(test_round_trip_forward_result),
		cmocka_unit_test(test_round_trip_forward_accept),
		cmocka_unit_test(test_round_trip_hello),
		cmocka_unit_test(test_appends_to_existing_buffer),
		cmocka_unit_test(test_every_truncation_rejected),
		cmocka_unit_test(test_flipped_byte_fails_checksum),
		cmocka_unit_test(test_bad_version_kind_type_rejected),
		cmocka_unit_test(test_huge_counts_and_lengths_rejected),
		cmocka_unit_test(test_trailing_bytes_rejected),
		cmocka_unit_test(test_encoder_refuses_unencodable),
		cmocka_unit_test(test_encoder_sticky_error),
		cmocka_unit_test(test_every_byte_change_is_safe),
	};
	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
