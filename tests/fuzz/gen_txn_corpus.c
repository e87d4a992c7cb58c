/*
 * Writes the seed corpus of fuzz_txn.c: a few valid transactions built with
 * the txn.h builder, one file per transaction, covering every op type and
 * flag. Rerun after a format change and commit the files:
 *
 *   cc -I src -I . src/store/txn.c src/common/bytes.c src/common/err.c \
 *       tests/fuzz/gen_txn_corpus.c -o gen_txn_corpus
 *   ./gen_txn_corpus tests/fuzz/corpus/txn
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/record.h"
#include "store/txn.h"

#define S(s) s, sizeof(s) - 1

static void save(const char *dir, const char *name, struct byte_buf *b)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (txn_finish(b) != 0 || !f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct byte_buf b;
	const char *dir = argc > 1 ? argv[1] : ".";
	const int64_t t = 1700000000000000000LL;
	bb_init(&b);

	txn_begin(&b, t);
	txn_add_put(&b, S("key"), RECORD_JSON, 0, 0, S("{\"a\":[1,2]}"));
	save(dir, "put-json", &b);

	txn_begin(&b, t);
	txn_add_put(&b, S("dir/file"), RECORD_RAW, 0644, TXN_F_KEEP_MODE, S("\x00\x01\xff"));
	save(dir, "put-raw-keep-mode", &b);

	txn_begin(&b, 0);
	txn_add_put(&b, S("dir/"), RECORD_DIR, 0755, 0, NULL, 0);
	save(dir, "put-dir-marker", &b);

	txn_begin(&b, t);
	for (int i = 0; i < 4; i++) {
		char k[8];
		snprintf(k, sizeof k, "b/%d", i);
		txn_add_put(&b, k, strlen(k), RECORD_JSON, 0, 0, S("true"));
	}
	save(dir, "batch-put", &b);

	txn_begin(&b, t);
	txn_add_check(&b, S("cas"), 42, 0);
	txn_add_put(&b, S("cas"), RECORD_JSON, 0, 0, S("\"new\""));
	save(dir, "compare-and-swap", &b);

	txn_begin(&b, t);
	txn_add_check(&b, S("new"), 0, 0);
	txn_add_check(&b, S("old"), 0, TXN_F_MUST_EXIST);
	txn_add_put(&b, S("new"), RECORD_RAW, 0600, 0, S("x"));
	save(dir, "create-if-absent", &b);

	txn_begin(&b, t);
	txn_add_delete(&b, S("gone"), TXN_F_MUST_EXIST);
	save(dir, "delete-must-exist", &b);

	txn_begin(&b, t);
	txn_add_delete(&b, S("maybe"), 0);
	txn_add_delete_prefix(&b, S("tree/"), 10000);
	save(dir, "delete-prefix", &b);

	txn_begin(&b, t);
	txn_add_rename(&b, S("a/x"), S("a/y"), TXN_F_MUST_EXIST | TXN_F_NO_REPLACE);
	save(dir, "rename-noreplace", &b);

	txn_begin(&b, t);
	txn_add_rename_prefix(&b, S("a/"), S("a/b/"), 0);
	save(dir, "rename-prefix", &b);

	txn_begin(&b, t);
	txn_add_touch(&b, S("f"), TXN_F_SET_MODE | TXN_F_SET_MTIME | TXN_F_MUST_EXIST, 0444, -1);
	save(dir, "touch", &b);

	txn_begin(&b, t);
	txn_add_check(&b, S("dir/"), 7, TXN_F_MUST_EXIST);
	txn_add_put(&b, S("dir/f"), RECORD_RAW, 0644, 0, S("data"));
	txn_add_delete(&b, S("dir/old"), 0);
	txn_add_delete_prefix(&b, S("tmp/"), 0);
	txn_add_rename(&b, S("dir/f"), S("dir/g"), 0);
	txn_add_rename_prefix(&b, S("x/"), S("y/"), 5);
	txn_add_touch(&b, S("dir/g"), TXN_F_SET_MTIME, 0, t);
	save(dir, "every-op", &b);

	bb_free(&b);
	return 0;
}
