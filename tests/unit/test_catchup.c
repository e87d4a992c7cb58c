/*
 * Unit tests of a follower's "catching up" state (/readyz), the pure rule
 * of src/node/catchup.h, driven with a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "node/catchup.h"

/* A node that starts behind is catching up until it has applied what was
 * committed when it first heard the leader, however much is committed
 * meanwhile; not before, and no sample without a leader counts. */
static void test_ready_after_applying_what_was_committed_at_start(void **state)
{
	struct catchup cu;
	(void)state;
	catchup_init(&cu);
	assert_true(catchup_step(&cu, CATCHUP_NO_LEADER, 100, 0, 0));
	/* A leader, but no commit index from it yet. */
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, 100, 0, 10));
	/* The cluster is at 5,000: the node applies, the cluster goes on. */
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, 100, 5000, 20));
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, 2000, 5100, 30));
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, 4999, 5200, 40));
	assert_false(catchup_step(&cu, CATCHUP_FOLLOWER, 5000, 5300, 50));
	/* Under load it never sees applied == commit, and stays ready. */
	for (int64_t t = 60; t < 60000; t += 50)
		assert_false(catchup_step(&cu, CATCHUP_FOLLOWER, (uint64_t)t * 10,
					  (uint64_t)t * 10 + 300, t));
}

/* A node whose state machine stalls for more than CATCHUP_LAG_MS behind
 * the commit index it knows is catching up again, until it applies an
 * index committed less than half the bound before. */
static void test_behind_longer_than_the_bound(void **state)
{
	struct catchup cu;
	(void)state;
	catchup_init(&cu);
	assert_false(catchup_step(&cu, CATCHUP_FOLLOWER, 10, 10, 0));
	/* Stalled at 10 while the cluster commits: ready up to the bound. */
	int64_t t = 100;
	for (; t <= 100 + CATCHUP_LAG_MS; t += 100)
		assert_false(catchup_step(&cu, CATCHUP_FOLLOWER, 10, 10 + (uint64_t)t, t));
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, 10, 10 + (uint64_t)t, t));
	/* It applies the old probe (committed long ago): still behind. */
	t += 100;
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, 200, 10 + (uint64_t)t, t));
	/* An index committed less than the bound but more than half of it
	 * before: still behind (no turning ready and back about the bound). */
	uint64_t probe = 10 + (uint64_t)t;
	t += CATCHUP_RESYNC_MS + 100;
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, probe, probe + 5000, t));
	/* And an index committed just now: caught up. */
	uint64_t now_commit = probe + 5000;
	t += 100;
	assert_false(catchup_step(&cu, CATCHUP_FOLLOWER, now_commit, now_commit + 50, t));
}

/* A follower that loses its leader starts over; a leader never catches up. */
static void test_leader_lost_and_leading(void **state)
{
	struct catchup cu;
	(void)state;
	catchup_init(&cu);
	assert_false(catchup_step(&cu, CATCHUP_FOLLOWER, 10, 10, 0));
	assert_true(catchup_step(&cu, CATCHUP_NO_LEADER, 10, 0, 100));
	/* The new leader has committed far more while this node was cut off. */
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, 10, 90000, 200));
	assert_true(catchup_step(&cu, CATCHUP_FOLLOWER, 89999, 90000, 300));
	assert_false(catchup_step(&cu, CATCHUP_FOLLOWER, 90000, 90000, 400));
	catchup_init(&cu);
	assert_false(catchup_step(&cu, CATCHUP_LEADER, 5, 10, 0));
	/* A leader that steps down is a follower that was ready. */
	assert_false(catchup_step(&cu, CATCHUP_FOLLOWER, 10, 12, 10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ready_after_applying_what_was_committed_at_start),
	    cmocka_unit_test(test_behind_longer_than_the_bound),
	    cmocka_unit_test(test_leader_lost_and_leading),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
