/*
 * Unit tests of the mount's path rules (fs/fs_name.c) and its file buffers
 * (fs/fs_data.c): which keys can be names, how a listing classifies keys,
 * and the EFBIG limit that leaves a file's stored value untouched.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fs/fs_internal.h"

static bool ok(const char *s)
{
	return fs_name_ok((const uint8_t *)s, strlen(s));
}

/* Ordinary names are names; "", ".", "..", NUL bytes and >255 bytes are not. */
static void test_name_rules(void **state)
{
	char longname[300];
	assert_true(ok("a"));
	assert_true(ok("..."));
	assert_true(ok(".hidden"));
	assert_true(ok("..x"));
	assert_false(ok(""));
	assert_false(ok("."));
	assert_false(ok(".."));
	assert_false(fs_name_ok((const uint8_t *)"a\0b", 3));
	memset(longname, 'x', sizeof longname);
	assert_true(fs_name_ok((const uint8_t *)longname, 255));
	assert_false(fs_name_ok((const uint8_t *)longname, 256));
}

static enum fs_scan_kind classify(const char *key, size_t plen, char *name)
{
	const uint8_t *n;
	size_t nl;
	enum fs_scan_kind k = fs_scan_classify((const uint8_t *)key, strlen(key), plen, &n, &nl);
	memcpy(name, n, nl);
	name[nl] = 0;
	return k;
}

/* Keys under "d/" are files, subdirectories, the marker, or hidden. */
static void test_scan_classify(void **state)
{
	char name[300];
	assert_int_equal(classify("d/", 2, name), FS_SCAN_SELF);
	assert_int_equal(classify("d/f", 2, name), FS_SCAN_FILE);
	assert_string_equal(name, "f");
	assert_int_equal(classify("d/s/x/y", 2, name), FS_SCAN_SUBDIR);
	assert_string_equal(name, "s");
	assert_int_equal(classify("d/s/", 2, name), FS_SCAN_SUBDIR);
	assert_int_equal(classify("d//x", 2, name), FS_SCAN_HIDDEN_SUBTREE);
	assert_string_equal(name, "");
	assert_int_equal(classify("d/./x", 2, name), FS_SCAN_HIDDEN_SUBTREE);
	assert_int_equal(classify("d/..", 2, name), FS_SCAN_HIDDEN);
	assert_int_equal(classify("/abs", 0, name), FS_SCAN_HIDDEN_SUBTREE);
	assert_int_equal(classify("top", 0, name), FS_SCAN_FILE);
}

/* Writes grow the buffer with zero fill; past the limit EFBIG sticks. */
static void test_data_limits(void **state)
{
	struct fs_data *d = fs_data_new();
	assert_non_null(d);
	assert_int_equal(fs_data_write(d, 0, "hello", 5, 16), 0);
	assert_int_equal(fs_data_write(d, 8, "xy", 2, 16), 0);
	assert_int_equal(d->len, 10);
	assert_memory_equal(d->buf, "hello\0\0\0xy", 10);
	assert_true(fs_data_dirty(d));
	assert_int_equal(fs_data_truncate(d, 3, 16), 0);
	assert_int_equal(d->len, 3);
	assert_int_equal(fs_data_write(d, 10, "1234567", 7, 16), -EFBIG);
	assert_int_equal(d->err, EFBIG);
	assert_int_equal(fs_data_write(d, 0, "a", 1, 16), -EFBIG);
	assert_int_equal(d->len, 3);
	fs_data_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_rules),
		cmocka_unit_test(test_scan_classify),
		cmocka_unit_test(test_data_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
