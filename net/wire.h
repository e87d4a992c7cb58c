/*
 * The peer wire codec: one ZeroMQ frame between two kvfsd peers holds exactly
 * one wire message. Pure functions, no I/O, no global state: any thread may
 * call them on its own buffers.
 *
 * Every integer is little-endian and fixed-width; every variable field has
 * its length in front of it. Every message ends with a CRC-32C (Castagnoli,
 * crc32c() in common/bytes.h, initial value 0) over ALL the bytes before it,
 * header included, so a flipped bit anywhere - entry payload, commit index,
 * receiver id - is caught, and the fuzz target can repair any input's
 * checksum by rewriting the last four bytes.
 *
 * Header (all kinds):
 *
 *   offset size  field
 *   0      1     version (WIRE_VERSION = 1)
 *   1      1     kind (enum wire_kind)
 *   2      8     sender id (u64, nonzero)
 *   10     8     receiver id (u64, nonzero)
 *   18     8     term (u64): the Raft term for WIRE_RAFT, 0 otherwise
 *   26           kind-specific body
 *
 * WIRE_RAFT body (every scalar of struct raft_msg, whatever the type; the
 * header's sender/receiver/term are raft_msg.from/to/term):
 *
 *   26     1     raft_msg type (1 .. RAFT_MSG_TYPE_MAX-1)
 *   27     1     reject   (0 or 1)
 *   28     1     transfer (0 or 1)
 *   29     1     done     (0 or 1)
 *   30     8     index
 *   38     8     log_term
 *   46     8     commit
 *   54     8     hint_index
 *   62     8     hint_term
 *   70     8     read_seq
 *   78     8     ctx
 *   86     8     snap_index
 *   94     8     snap_term
 *   102    8     offset
 *   110    4     entry count N (u32; nonzero only for APPEND)
 *   114          N entries, each:
 *                +0   8  term
 *                +8   8  index (must be raft_msg.index + 1 + i)
 *                +16  1  type (enum raft_entry_type; EMPTY has length 0)
 *                +17  4  length L (u32)
 *                +21  L  bytes
 *   then   4     conf length C (u32; nonzero only for SNAPSHOT)
 *          C     encoded membership (opaque here; see raft_conf_decode)
 *   then   4     chunk length D (u32; nonzero only for SNAPSHOT)
 *          D     snapshot chunk bytes
 *   then   4     CRC-32C of bytes [0, here)
 *
 *   An empty Raft message (no entries, conf or chunk) is 126 bytes.
 *
 * WIRE_FORWARD body (a follower forwards a client's write to the leader):
 *
 *   26     8     req_id
 *   34     4     payload length P (u32)
 *   38     P     payload (an encoded transaction, opaque here)
 *   38+P   4     CRC-32C of bytes [0, 38+P)
 *
 * WIRE_FORWARD_RESULT body (the leader's answer), 66 bytes in all:
 *
 *   26     8     req_id
 *   34     4     result (i32: 0 or a negative error code)
 *   38     8     index
 *   46     8     deleted
 *   54     8     leader hint
 *   62     4     CRC-32C of bytes [0, 62)
 *
 * WIRE_FORWARD_ACCEPT body (the leader proposed a forwarded write; the
 * follower then answers it from its own apply of that entry), 54 bytes:
 *
 *   26     8     req_id
 *   34     8     index given to the entry
 *   42     8     term given to the entry
 *   50     4     CRC-32C of bytes [0, 50)
 *
 * WIRE_HELLO body (a node tells a peer where it serves its REST API; sent
 * every few seconds, so the peer can list every member's REST URL):
 *
 *   26     1     URL length U (1 .. WIRE_URL_MAX = 255)
 *   27     U     URL bytes ("http://HOST:PORT"; no NUL)
 *   27+U   4     CRC-32C of bytes [0, 27+U)
 *
 * The encoding is canonical: the decoder accepts exactly the byte strings the
 * encoders produce (no unused bits, no padding, no trailing bytes), so
 * anything that decodes re-encodes to the same bytes.
 */
#ifndef KVFS_NET_WIRE_H
#define KVFS_NET_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "raft/raft.h"

#define WIRE_VERSION 1
#define WIRE_MAX_MESSAGE (64u << 20) /* larger frames are rejected */

#define WIRE_HEADER_SIZE 26
#define WIRE_CRC_SIZE 4

enum wire_kind {
	WIRE_RAFT = 1,
	WIRE_FORWARD = 2,
	WIRE_FORWARD_RESULT = 3,
	WIRE_FORWARD_ACCEPT = 4,
	WIRE_HELLO = 5,
};

#define WIRE_URL_MAX 255 /* longest URL in a WIRE_HELLO */

/* A forwarded client write. data is borrowed (see each function). */
struct wire_forward {
	uint64_t req_id;
	const void *data;
	size_t len;
};

struct wire_forward_result {
	uint64_t req_id;
	int32_t result; /* 0 or a negative code (common/err.h) */
	uint64_t index, deleted, leader_hint;
};

struct wire_forward_accept {
	uint64_t req_id, index, term;
};

/* A REST URL; url points into the decoded buffer (not NUL-terminated). */
struct wire_hello {
	const char *url;
	size_t len;
};

/* One decoded message. Filled by wire_decode, released by wire_msg_free.
 * Only the member matching kind is meaningful; the others are zero. */
struct wire_msg {
	uint8_t kind;
	uint64_t from, to, term;
	struct raft_msg raft;              /* kind == WIRE_RAFT */
	struct wire_forward fwd;           /* kind == WIRE_FORWARD */
	struct wire_forward_result result; /* kind == WIRE_FORWARD_RESULT */
	struct wire_forward_accept accept; /* kind == WIRE_FORWARD_ACCEPT */
	struct wire_hello hello;           /* kind == WIRE_HELLO */
	struct raft_entry *entries_owned;  /* decoder-allocated array behind raft.entries */
};

/*
 * Encoders. Each appends one complete message to out; m, f and r (and the
 * bytes they point to) are borrowed for the call and copied into out.
 *
 * Returns 0; -ENOMEM if out could not grow (out->err is then set, sticky, and
 * also makes the call fail at once if it was set before); or -EINVAL if the
 * message is not encodable: zero from/to, a raft type out of range, a
 * reject/transfer/done flag other than 0 or 1, entries outside APPEND, conf or
 * chunk bytes outside SNAPSHOT, an entry of unknown type, an EMPTY entry with
 * data, entry indexes not consecutive after m->index, a NULL pointer with a
 * nonzero length, a positive forward result, or an encoding larger than
 * WIRE_MAX_MESSAGE. On any failure nothing is appended (out->len unchanged).
 */
int wire_encode_raft(struct byte_buf *out, const struct raft_msg *m);
int wire_encode_forward(struct byte_buf *out, uint64_t from, uint64_t to,
			const struct wire_forward *f);
int wire_encode_forward_result(struct byte_buf *out, uint64_t from, uint64_t to,
			       const struct wire_forward_result *r);
int wire_encode_forward_accept(struct byte_buf *out, uint64_t from, uint64_t to,
			       const struct wire_forward_accept *a);
/* -EINVAL also for a URL that is empty or longer than WIRE_URL_MAX. */
int wire_encode_hello(struct byte_buf *out, uint64_t from, uint64_t to,
		      const struct wire_hello *h);

/*
 * Decodes one frame buf[0..len) into *out (overwritten; caller-allocated).
 *
 * All data pointers (entry data, conf, chunk, forward payload) point INTO buf
 * (borrowed: buf must outlive the wire_msg and must not change meanwhile);
 * the entries array is allocated: free it with wire_msg_free(). For WIRE_RAFT
 * out->raft.from/to/term equal out->from/to/term (there is one copy on the
 * wire, so they cannot disagree).
 *
 * Returns 0; KVFS_EPROTO for anything malformed: bad version, unknown kind,
 * raft type or entry type, zero sender or receiver, nonzero term outside
 * WIRE_RAFT, a flag other than 0/1, variable fields in a type that has none,
 * non-consecutive entry indexes, truncated input, a count or length larger
 * than the bytes present, trailing bytes, checksum mismatch, len over
 * WIRE_MAX_MESSAGE; or -ENOMEM. On failure *out owns nothing (calling
 * wire_msg_free on it is harmless). Never reads outside buf[0..len); never
 * allocates more than about 2 * len bytes.
 */
int wire_decode(const void *buf, size_t len, struct wire_msg *out);

/* Frees what wire_decode allocated (not buf) and zeroes *m. NULL is fine. */
void wire_msg_free(struct wire_msg *m);

#endif
