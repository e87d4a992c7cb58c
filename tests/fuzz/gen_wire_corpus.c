/*
 * Writes the seed corpus of fuzz_wire.c: one small valid frame per file, a
 * realistic message of every Raft type plus forwarded writes and their
 * results. Rerun after a format change and commit the files:
 *
 *   cc -D_GNU_SOURCE -I src -I . net/wire.c src/common/bytes.c src/common/err.c \
 *       tests/fuzz/gen_wire_corpus.c -o gen_wire_corpus -lpthread
 *   ./gen_wire_corpus tests/fuzz/corpus/wire
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/err.h"
#include "net/wire.h"

#define S(s) s, sizeof(s) - 1

static const char *dir = ".";

static void save(const char *name, struct byte_buf *b, int rc)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (rc != 0 || b->err || !f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f)) {
		fprintf(stderr, "%s: rc %d\n", path, rc);
		perror(path);
		exit(1);
	}
	b->len = 0;
}

static void raft(struct byte_buf *b, const char *name, struct raft_msg m)
{
	m.from = 1;
	m.to = 2;
	if (!m.term)
		m.term = 5;
	save(name, b, wire_encode_raft(b, &m));
}

int main(int argc, char **argv)
{
	struct byte_buf b;
	if (argc > 1)
		dir = argv[1];
	bb_init(&b);

	/* A small conf: one voter, one learner (raft.h's encoding, by hand). */
	static const uint8_t conf[] = {
		1, 2,
		1, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0, 't', 'c', 'p', ':', 'a',
		2, 0, 0, 0, 0, 0, 0, 0, 2, 5, 0, 't', 'c', 'p', ':', 'b',
	};
	const struct raft_entry entries[] = {
		{.term = 5, .index = 11, .type = RAFT_ENTRY_EMPTY},
		{.term = 5, .index = 12, .type = RAFT_ENTRY_NORMAL, .data = "put k v", .len = 7},
		{.term = 5, .index = 13, .type = RAFT_ENTRY_CONF, .data = conf, .len = sizeof conf},
		{.term = 5, .index = 14, .type = RAFT_ENTRY_NORMAL, .data = "", .len = 0},
	};

	raft(&b, "append", (struct raft_msg){.type = RAFT_MSG_APPEND, .index = 10, .log_term = 4,
					     .commit = 9, .entries = entries, .n_entries = 4});
	raft(&b, "append-empty", (struct raft_msg){.type = RAFT_MSG_APPEND, .index = 14,
						   .log_term = 5, .commit = 14});
	raft(&b, "append-resp", (struct raft_msg){.type = RAFT_MSG_APPEND_RESP, .index = 14});
	raft(&b, "append-resp-reject",
	     (struct raft_msg){.type = RAFT_MSG_APPEND_RESP, .reject = 1, .index = 10,
			       .hint_index = 7, .hint_term = 3});
	raft(&b, "heartbeat", (struct raft_msg){.type = RAFT_MSG_HEARTBEAT, .commit = 14,
						.index = 16, .read_seq = 77});
	raft(&b, "heartbeat-resp", (struct raft_msg){.type = RAFT_MSG_HEARTBEAT_RESP, .read_seq = 77});
	raft(&b, "vote", (struct raft_msg){.type = RAFT_MSG_VOTE, .index = 14, .log_term = 5,
					   .transfer = 1});
	raft(&b, "vote-resp", (struct raft_msg){.type = RAFT_MSG_VOTE_RESP, .reject = 1});
	raft(&b, "prevote", (struct raft_msg){.type = RAFT_MSG_PREVOTE, .term = 6, .index = 14,
					      .log_term = 5});
	raft(&b, "prevote-resp", (struct raft_msg){.type = RAFT_MSG_PREVOTE_RESP, .term = 6});
	raft(&b, "snapshot", (struct raft_msg){.type = RAFT_MSG_SNAPSHOT, .snap_index = 100,
					       .snap_term = 4, .conf_data = conf,
					       .conf_len = sizeof conf, .offset = 4096,
					       .data = "chunk bytes", .len = 11, .done = 1});
	raft(&b, "snapshot-resp", (struct raft_msg){.type = RAFT_MSG_SNAPSHOT_RESP,
						    .snap_index = 100, .offset = 4107, .done = 1});
	raft(&b, "timeout-now", (struct raft_msg){.type = RAFT_MSG_TIMEOUT_NOW});
	raft(&b, "read-index", (struct raft_msg){.type = RAFT_MSG_READ_INDEX, .ctx = 0x1234});
	raft(&b, "read-index-resp", (struct raft_msg){.type = RAFT_MSG_READ_INDEX_RESP,
						      .ctx = 0x1234, .index = 14});
	raft(&b, "durable", (struct raft_msg){.type = RAFT_MSG_DURABLE, .index = 14});

	struct wire_forward f = {.req_id = 9, .data = "\x01txn", .len = 4};
	save("forward", &b, wire_encode_forward(&b, 2, 1, &f));
	f = (struct wire_forward){.req_id = 10};
	save("forward-empty", &b, wire_encode_forward(&b, 2, 1, &f));
	struct wire_forward_result r = {.req_id = 9, .index = 15, .deleted = 1};
	save("forward-result", &b, wire_encode_forward_result(&b, 1, 2, &r));
	r = (struct wire_forward_result){.req_id = 10, .result = KVFS_ENOTLEADER, .leader_hint = 3};
	save("forward-result-error", &b, wire_encode_forward_result(&b, 1, 2, &r));
	struct wire_forward_accept a = {.req_id = 9, .index = 15, .term = 5};
	save("forward-accept", &b, wire_encode_forward_accept(&b, 1, 2, &a));
	struct wire_hello h = {.url = "http://127.0.0.1:8001", .len = 21};
	save("hello", &b, wire_encode_hello(&b, 1, 2, &h));

	bb_free(&b);
	return 0;
}
