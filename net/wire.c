/*
 * Encoder and decoder of the peer wire format (the table is in wire.h).
 *
 * The encoders first validate the message and compute its exact size, reserve
 * that much once and then write it: a message is appended whole or not at
 * all, and big AppendEntries batches are copied without regrowing the buffer.
 *
 * The decoder checks the frame's size and trailing CRC-32C before it parses
 * anything or allocates, so a corrupted frame costs one pass and no memory.
 * Parsing goes through the bounds-checked byte_reader (common/bytes.h): a
 * truncated field sets its sticky error instead of reading past the buffer.
 * The one allocation, the entries array, happens only after the declared
 * count is proven to fit in the bytes left (an entry takes at least
 * WIRE_ENTRY_MIN bytes), so it stays proportional to the frame length
 * whatever the count field claims. The decoder is exactly as strict as the
 * encoder, which makes the format canonical (tests/fuzz/fuzz_wire.c relies on
 * that: anything that decodes re-encodes to the same bytes).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/wire.h"

/* Fixed part of a WIRE_RAFT message, CRC excluded: header, the 4 byte-sized
 * fields, 10 u64 scalars, then the entry count, conf length and chunk length. */
#define WIRE_RAFT_FIXED (WIRE_HEADER_SIZE + 4 + 10 * 8 + 3 * 4)
#define WIRE_ENTRY_MIN 21 /* term, index, type, length */
#define WIRE_FORWARD_FIXED (WIRE_HEADER_SIZE + 8 + 4)
#define WIRE_RESULT_SIZE (WIRE_HEADER_SIZE + 8 + 4 + 3 * 8 + WIRE_CRC_SIZE)

static_assert(WIRE_RAFT_FIXED + WIRE_CRC_SIZE == 126, "wire.h table: empty Raft message");
#define WIRE_ACCEPT_SIZE (WIRE_HEADER_SIZE + 3 * 8 + WIRE_CRC_SIZE)

static_assert(WIRE_RESULT_SIZE == 66, "wire.h table: forward result");
static_assert(WIRE_ACCEPT_SIZE == 54, "wire.h table: forward accept");

static int flag_ok(uint8_t v)
{
	return v <= 1;
}

/* Which variable fields each raft_msg type may carry (raft.h's table). */
static int has_entries(uint8_t type)
{
	return type == RAFT_MSG_APPEND;
}

static int has_snapshot_bytes(uint8_t type)
{
	return type == RAFT_MSG_SNAPSHOT;
}

static int raft_type_ok(uint8_t type)
{
	return type >= RAFT_MSG_APPEND && type < RAFT_MSG_TYPE_MAX;
}

static int entry_type_ok(uint8_t type, size_t len)
{
	switch (type) {
	case RAFT_ENTRY_NORMAL:
	case RAFT_ENTRY_CONF:
		return 1;
	case RAFT_ENTRY_EMPTY:
		return len == 0; /* raft.h: "len 0, apply as no-op" */
	default:
		return 0;
	}
}

/* Adds n to *total unless that passes WIRE_MAX_MESSAGE or n does not fit a
 * u32 length field. Returns 0 or -EINVAL. */
static int add_len(size_t *total, size_t n)
{
	if (n > UINT32_MAX || n > WIRE_MAX_MESSAGE - *total)
		return -EINVAL;
	*total += n;
	return 0;
}

static void put_header(struct byte_buf *out, uint8_t kind, uint64_t from, uint64_t to,
		       uint64_t term)
{
	bb_u8(out, WIRE_VERSION);
	bb_u8(out, kind);
	bb_le64(out, from);
	bb_le64(out, to);
	bb_le64(out, term);
}

/* Appends the CRC-32C of everything written since start. */
static void put_crc(struct byte_buf *out, size_t start)
{
	bb_le32(out, crc32c(0, out->data + start, out->len - start));
}

/* Checks m against the rules listed in wire.h and returns its encoded size
 * (CRC included) in *size, or -EINVAL. */
static int raft_size(const struct raft_msg *m, size_t *size)
{
	size_t total = WIRE_RAFT_FIXED + WIRE_CRC_SIZE;

	if (m->from == 0 || m->to == 0 || !raft_type_ok(m->type))
		return -EINVAL;
	if (!flag_ok(m->reject) || !flag_ok(m->transfer) || !flag_ok(m->done))
		return -EINVAL;
	if ((m->n_entries && !has_entries(m->type)) ||
	    ((m->conf_len || m->len) && !has_snapshot_bytes(m->type)))
		return -EINVAL;
	if ((m->n_entries && !m->entries) || (m->conf_len && !m->conf_data) ||
	    (m->len && !m->data))
		return -EINVAL;
	if (m->n_entries > (WIRE_MAX_MESSAGE - total) / WIRE_ENTRY_MIN)
		return -EINVAL;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		if (e->index != m->index + 1 + i || !entry_type_ok(e->type, e->len) ||
		    (e->len && !e->data))
			return -EINVAL;
		if (add_len(&total, WIRE_ENTRY_MIN) || add_len(&total, e->len))
			return -EINVAL;
	}
	if (add_len(&total, m->conf_len) || add_len(&total, m->len))
		return -EINVAL;
	*size = total;
	return 0;
}

int wire_encode_raft(struct byte_buf *out, const struct raft_msg *m)
{
	size_t size, start = out->len;
	int rv = raft_size(m, &size);
	if (rv)
		return rv;
	if (bb_reserve(out, size) < 0)
		return -ENOMEM;
	put_header(out, WIRE_RAFT, m->from, m->to, m->term);
	bb_u8(out, m->type);
	bb_u8(out, m->reject);
	bb_u8(out, m->transfer);
	bb_u8(out, m->done);
	bb_le64(out, m->index);
	bb_le64(out, m->log_term);
	bb_le64(out, m->commit);
	bb_le64(out, m->hint_index);
	bb_le64(out, m->hint_term);
	bb_le64(out, m->read_seq);
	bb_le64(out, m->ctx);
	bb_le64(out, m->snap_index);
	bb_le64(out, m->snap_term);
	bb_le64(out, m->offset);
	bb_le32(out, (uint32_t)m->n_entries);
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		bb_le64(out, e->term);
		bb_le64(out, e->index);
		bb_u8(out, e->type);
		bb_le32(out, (uint32_t)e->len);
		bb_put(out, e->data, e->len);
	}
	bb_le32(out, (uint32_t)m->conf_len);
	bb_put(out, m->conf_data, m->conf_len);
	bb_le32(out, (uint32_t)m->len);
	bb_put(out, m->data, m->len);
	put_crc(out, start);
	/* Defensive: the reserve above covers every byte written. */
	if (out->err || out->len - start != size)
		return -ENOMEM;
	return 0;
}

int wire_encode_forward(struct byte_buf *out, uint64_t from, uint64_t to,
			const struct wire_forward *f)
{
	size_t size = WIRE_FORWARD_FIXED + WIRE_CRC_SIZE, start = out->len;
	if (from == 0 || to == 0 || (f->len && !f->data) || add_len(&size, f->len))
		return -EINVAL;
	if (bb_reserve(out, size) < 0)
		return -ENOMEM;
	put_header(out, WIRE_FORWARD, from, to, 0);
	bb_le64(out, f->req_id);
	bb_le32(out, (uint32_t)f->len);
	bb_put(out, f->data, f->len);
	put_crc(out, start);
	if (out->err || out->len - start != size)
		return -ENOMEM;
	return 0;
}

int wire_encode_forward_result(struct byte_buf *out, uint64_t from, uint64_t to,
			       const struct wire_forward_result *r)
{
	size_t start = out->len;
	if (from == 0 || to == 0 || r->result > 0)
		return -EINVAL;
	if (bb_reserve(out, WIRE_RESULT_SIZE) < 0)
		return -ENOMEM;
	put_header(out, WIRE_FORWARD_RESULT, from, to, 0);
	bb_le64(out, r->req_id);
	bb_le32(out, (uint32_t)r->result);
	bb_le64(out, r->index);
	bb_le64(out, r->deleted);
	bb_le64(out, r->leader_hint);
	put_crc(out, start);
	if (out->err || out->len - start != WIRE_RESULT_SIZE)
		return -ENOMEM;
	return 0;
}

int wire_encode_forward_accept(struct byte_buf *out, uint64_t from, uint64_t to,
			       const struct wire_forward_accept *a)
{
	size_t start = out->len;
	if (from == 0 || to == 0)
		return -EINVAL;
	if (bb_reserve(out, WIRE_ACCEPT_SIZE) < 0)
		return -ENOMEM;
	put_header(out, WIRE_FORWARD_ACCEPT, from, to, 0);
	bb_le64(out, a->req_id);
	bb_le64(out, a->index);
	bb_le64(out, a->term);
	put_crc(out, start);
	if (out->err || out->len - start != WIRE_ACCEPT_SIZE)
		return -ENOMEM;
	return 0;
}

int wire_encode_hello(struct byte_buf *out, uint64_t from, uint64_t to,
		      const struct wire_hello *h)
{
	size_t start = out->len;
	if (from == 0 || to == 0 || h->len == 0 || h->len > WIRE_URL_MAX || !h->url)
		return -EINVAL;
	if (bb_reserve(out, WIRE_HEADER_SIZE + 1 + h->len + WIRE_CRC_SIZE) < 0)
		return -ENOMEM;
	put_header(out, WIRE_HELLO, from, to, 0);
	bb_u8(out, (uint8_t)h->len);
	bb_put(out, h->url, h->len);
	put_crc(out, start);
	if (out->err)
		return -ENOMEM;
	return 0;
}

/* Reads a u32 length and returns that many bytes (pointer into the buffer;
 * never NULL on success, even for length 0). */
static const uint8_t *read_blob(struct byte_reader *r, size_t *len)
{
	uint32_t n = br_le32(r);
	*len = n;
	return br_bytes(r, n);
}

static int decode_raft(struct byte_reader *r, struct wire_msg *out)
{
	struct raft_msg *m = &out->raft;
	m->from = out->from;
	m->to = out->to;
	m->term = out->term;
	m->type = br_u8(r);
	m->reject = br_u8(r);
	m->transfer = br_u8(r);
	m->done = br_u8(r);
	m->index = br_le64(r);
	m->log_term = br_le64(r);
	m->commit = br_le64(r);
	m->hint_index = br_le64(r);
	m->hint_term = br_le64(r);
	m->read_seq = br_le64(r);
	m->ctx = br_le64(r);
	m->snap_index = br_le64(r);
	m->snap_term = br_le64(r);
	m->offset = br_le64(r);
	uint32_t n = br_le32(r);
	if (r->err || !raft_type_ok(m->type) || !flag_ok(m->reject) ||
	    !flag_ok(m->transfer) || !flag_ok(m->done) || (n && !has_entries(m->type)))
		return KVFS_EPROTO;
	/* Bound the allocation by the bytes actually present. */
	if (n > r->left / WIRE_ENTRY_MIN)
		return KVFS_EPROTO;
	if (n) {
		out->entries_owned = calloc(n, sizeof(*out->entries_owned));
		if (!out->entries_owned)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct raft_entry *e = &out->entries_owned[i];
		e->term = br_le64(r);
		e->index = br_le64(r);
		e->type = br_u8(r);
		e->data = read_blob(r, &e->len);
		if (r->err || e->index != m->index + 1 + i || !entry_type_ok(e->type, e->len))
			return KVFS_EPROTO;
	}
	m->entries = out->entries_owned;
	m->n_entries = n;
	m->conf_data = read_blob(r, &m->conf_len);
	m->data = read_blob(r, &m->len);
	if (r->err || ((m->conf_len || m->len) && !has_snapshot_bytes(m->type)))
		return KVFS_EPROTO;
	return 0;
}

int wire_decode(const void *buf, size_t len, struct wire_msg *out)
{
	struct byte_reader r;
	int rv;

	memset(out, 0, sizeof(*out));
	if (len < WIRE_HEADER_SIZE + WIRE_CRC_SIZE || len > WIRE_MAX_MESSAGE)
		return KVFS_EPROTO;
	const uint8_t *p = buf;
	size_t body = len - WIRE_CRC_SIZE;
	if (crc32c(0, p, body) != get_le32(p + body))
		return KVFS_EPROTO;

	br_init(&r, p, body);
	uint8_t version = br_u8(&r);
	out->kind = br_u8(&r);
	out->from = br_le64(&r);
	out->to = br_le64(&r);
	out->term = br_le64(&r);
	if (r.err || version != WIRE_VERSION || out->from == 0 || out->to == 0)
		return KVFS_EPROTO;
	if (out->kind != WIRE_RAFT && out->term != 0)
		return KVFS_EPROTO;

	switch (out->kind) {
	case WIRE_RAFT:
		rv = decode_raft(&r, out);
		break;
	case WIRE_FORWARD:
		out->fwd.req_id = br_le64(&r);
		out->fwd.data = read_blob(&r, &out->fwd.len);
		rv = 0;
		break;
	case WIRE_FORWARD_RESULT:
		out->result.req_id = br_le64(&r);
		out->result.result = (int32_t)br_le32(&r);
		out->result.index = br_le64(&r);
		out->result.deleted = br_le64(&r);
		out->result.leader_hint = br_le64(&r);
		rv = out->result.result > 0 ? KVFS_EPROTO : 0;
		break;
	case WIRE_HELLO:
		out->hello.len = br_u8(&r);
		out->hello.url = (const char *)br_bytes(&r, out->hello.len);
		rv = r.err || out->hello.len == 0 ? KVFS_EPROTO : 0;
		break;
	case WIRE_FORWARD_ACCEPT:
		out->accept.req_id = br_le64(&r);
		out->accept.index = br_le64(&r);
		out->accept.term = br_le64(&r);
		rv = 0;
		break;
	default:
		rv = KVFS_EPROTO;
		break;
	}
	if (rv == 0 && (r.err || r.left != 0))
		rv = KVFS_EPROTO; /* truncated, or trailing bytes before the CRC */
	if (rv)
		wire_msg_free(out);
	return rv;
}

void wire_msg_free(struct wire_msg *m)
{
	if (!m)
		return;
	free(m->entries_owned);
	memset(m, 0, sizeof(*m));
}
