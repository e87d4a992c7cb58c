/*
 * Unit tests of the membership encoding (raft.h table) and lookups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "raft/raft.h"

static struct raft_conf three(void)
{
	struct raft_conf c;
	memset(&c, 0, sizeof(c));
	for (unsigned i = 0; i < 3; i++) {
		c.servers[i].id = i + 1;
		c.servers[i].role = i == 2 ? RAFT_LEARNER : RAFT_VOTER;
		snprintf(c.servers[i].addr, RAFT_ADDR_MAX, "tcp://127.0.0.1:700%u", i + 1);
	}
	c.n = 3;
	return c;
}

/* A configuration survives encode then decode unchanged. */
static void test_round_trip(void **state)
{
	struct raft_conf c = three(), d;
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	int n = raft_conf_encode(&c, buf, sizeof(buf));
	(void)state;
	assert_true(n > 2);
	assert_int_equal(raft_conf_decode(&d, buf, (size_t)n), 0);
	assert_int_equal(d.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(d.servers[i].id, c.servers[i].id);
		assert_int_equal(d.servers[i].role, c.servers[i].role);
		assert_string_equal(d.servers[i].addr, c.servers[i].addr);
	}
	assert_int_equal(raft_conf_voters(&d), 2);
	assert_non_null(raft_conf_find(&d, 3));
	assert_null(raft_conf_find(&d, 4));
}

/* Every truncation of a valid encoding, and trailing garbage, is rejected. */
static void test_truncated_rejected(void **state)
{
	struct raft_conf c = three(), d;
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	int n = raft_conf_encode(&c, buf, sizeof(buf));
	(void)state;
	for (int k = 0; k < n; k++)
		assert_int_equal(raft_conf_decode(&d, buf, (size_t)k), KVFS_EPROTO);
	buf[n] = 0;
	assert_int_equal(raft_conf_decode(&d, buf, (size_t)n + 1), KVFS_EPROTO);
}

/* Malformed fields (version, count, role, zero or duplicate id, an address
 * with a NUL inside) are rejected. */
static void test_bad_fields_rejected(void **state)
{
	struct raft_conf c = three(), d;
	uint8_t buf[RAFT_CONF_ENCODED_MAX], b2[RAFT_CONF_ENCODED_MAX];
	int n = raft_conf_encode(&c, buf, sizeof(buf));
	(void)state;
	memcpy(b2, buf, (size_t)n);
	b2[0] = 2;
	assert_int_equal(raft_conf_decode(&d, b2, (size_t)n), KVFS_EPROTO);
	memcpy(b2, buf, (size_t)n);
	b2[1] = RAFT_MAX_SERVERS + 1;
	assert_int_equal(raft_conf_decode(&d, b2, (size_t)n), KVFS_EPROTO);
	memcpy(b2, buf, (size_t)n);
	b2[2 + 8] = 9; /* role */
	assert_int_equal(raft_conf_decode(&d, b2, (size_t)n), KVFS_EPROTO);
	memcpy(b2, buf, (size_t)n);
	memset(b2 + 2, 0, 8); /* id 0 */
	assert_int_equal(raft_conf_decode(&d, b2, (size_t)n), KVFS_EPROTO);
	memcpy(b2, buf, (size_t)n);
	b2[2 + 11 + 3] = 0; /* a NUL inside the first address ("tcp\0//...") */
	assert_int_equal(raft_conf_decode(&d, b2, (size_t)n), KVFS_EPROTO);
	c.servers[1].id = 1; /* duplicate */
	assert_int_equal(raft_conf_encode(&c, buf, sizeof(buf)), -EINVAL);
	c = three();
	assert_int_equal(raft_conf_encode(&c, buf, 10), -EINVAL);
	assert_int_equal(raft_conf_encode(&c, buf, 1), -EINVAL);
}

/* An empty configuration encodes to two bytes and back. */
static void test_empty(void **state)
{
	struct raft_conf c, d;
	uint8_t buf[4];
	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(raft_conf_encode(&c, buf, sizeof(buf)), 2);
	assert_int_equal(raft_conf_decode(&d, buf, 2), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(raft_conf_voters(&d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_truncated_rejected),
	    cmocka_unit_test(test_bad_fields_rejected),
	    cmocka_unit_test(test_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
