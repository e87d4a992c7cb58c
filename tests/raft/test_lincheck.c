/*
 * Unit tests of the linearizability checker (tests/lib/lincheck.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/lib/lincheck.h"

static enum lc_verdict check_text(const char *text)
{
	struct lc_history h;
	char err[128];
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	lc_history_init(&h);
	assert_int_equal(lc_history_load(&h, f, err, sizeof(err)), 0);
	fclose(f);
	enum lc_verdict v = lc_check(&h, 0, NULL);
	lc_history_free(&h);
	return v;
}

/* Sequential put/get/delete/cas histories that follow the register are accepted. */
static void test_sequential_ok(void **state)
{
	(void)state;
	assert_int_equal(check_text("c1 put k a - 0 1 ok\n"
				    "c1 get k - - 2 3 a\n"
				    "c1 cas k b a 4 5 ok\n"
				    "c1 cas k c a 6 7 fail\n"
				    "c1 delete k - - 8 9 found\n"
				    "c1 delete k - - 10 11 absent\n"
				    "c1 get k - - 12 13 absent\n"),
			 LC_LINEARIZABLE);
}

/* A read that misses a write completed before it started is a violation. */
static void test_stale_read(void **state)
{
	(void)state;
	assert_int_equal(check_text("c1 put k a - 0 1 ok\nc2 get k - - 2 3 absent\n"),
			 LC_VIOLATION);
}

/* Concurrent operations may take effect in either order. */
static void test_concurrent_either_order(void **state)
{
	(void)state;
	assert_int_equal(check_text("c1 put k a - 0 10 ok\nc2 put k b - 1 9 ok\n"
				    "c3 get k - - 11 12 a\n"),
			 LC_LINEARIZABLE);
	assert_int_equal(check_text("c1 put k a - 0 10 ok\nc2 put k b - 1 9 ok\n"
				    "c3 get k - - 11 12 b\n"),
			 LC_LINEARIZABLE);
}

/* An indeterminate write may take effect late, or never. */
static void test_indeterminate(void **state)
{
	(void)state;
	assert_int_equal(check_text("c1 put k a - 0 1 ?\nc2 get k - - 50 51 absent\n"
				    "c2 get k - - 60 61 a\n"),
			 LC_LINEARIZABLE);
	assert_int_equal(check_text("c1 put k a - 0 1 ?\nc2 get k - - 50 51 a\n"
				    "c2 get k - - 60 61 absent\n"),
			 LC_VIOLATION);
	assert_int_equal(check_text("c1 get k - - 0 - ?\nc1 put k a - 5 6 error\n"),
			 LC_LINEARIZABLE);
}

/* Keys are checked independently; a violation on one key is found. */
static void test_per_key(void **state)
{
	(void)state;
	assert_int_equal(check_text("c1 put x a - 0 1 ok\nc1 put y b - 2 3 ok\n"
				    "c2 get x - - 4 5 a\nc2 get y - - 6 7 a\n"),
			 LC_VIOLATION);
}

/* Malformed lines are reported with their line number. */
static void test_parse_errors(void **state)
{
	static const char *bad[] = {"c1 put k\n",
				    "c1 frob k a - 0 1 ok\n",
				    "c1 put k a - x 1 ok\n",
				    "c1 put k a - 5 1 ok\n",
				    "c1 put k a - 0 - ok\n",
				    "c1 cas k a b 0 1 maybe\n",
				    "c1 put k - - 0 1 ok\n",
				    "c1 delete k - - 0 1 what\n",
				    "c1 put k a - 0 1 fail\n"};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lc_history h;
		char err[128] = "";
		FILE *f = fmemopen((void *)bad[i], strlen(bad[i]), "r");
		lc_history_init(&h);
		assert_int_equal(lc_history_load(&h, f, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "line 1"));
		fclose(f);
		lc_history_free(&h);
	}
}

/* The explanation names the operation that cannot be placed; write round-trips. */
static void test_explain_and_write(void **state)
{
	const char *text = "c1 put k a - 0 1 ok\nc2 get k - - 2 3 absent\n";
	struct lc_history h;
	char err[64], *out = NULL;
	size_t len = 0;
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	(void)state;
	lc_history_init(&h);
	assert_int_equal(lc_history_load(&h, f, err, sizeof(err)), 0);
	fclose(f);
	FILE *m = open_memstream(&out, &len);
	assert_int_equal(lc_check(&h, 0, m), LC_VIOLATION);
	lc_history_write(&h, m);
	fclose(m);
	assert_non_null(strstr(out, "not linearizable"));
	assert_non_null(strstr(out, "c2 get k - - 2 3 absent"));
	free(out);
	lc_history_free(&h);
}

/* A tiny step budget makes a concurrent search give up rather than run forever. */
static void test_budget(void **state)
{
	struct lc_history h;
	(void)state;
	lc_history_init(&h);
	for (int i = 0; i < 12; i++) {
		struct lc_op op = {.client = i,
				   .kind = LC_PUT,
				   .key = 0,
				   .value = i,
				   .call = 0,
				   .ret = 100,
				   .outcome = LC_OK};
		lc_history_add(&h, &op);
	}
	struct lc_op rd = {.client = 99,
			   .kind = LC_GET,
			   .key = 0,
			   .value = 77,
			   .call = 200,
			   .ret = 201,
			   .outcome = LC_OK};
	lc_history_add(&h, &rd);
	assert_int_equal(lc_check(&h, 5, NULL), LC_GAVE_UP);
	assert_int_equal(lc_check(&h, 0, NULL), LC_VIOLATION);
	assert_int_equal(lc_intern(&h, "x"), 0);
	assert_int_equal(lc_intern(&h, "x"), 0);
	lc_history_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sequential_ok),
	    cmocka_unit_test(test_stale_read),
	    cmocka_unit_test(test_concurrent_either_order),
	    cmocka_unit_test(test_indeterminate),
	    cmocka_unit_test(test_per_key),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_explain_and_write),
	    cmocka_unit_test(test_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
