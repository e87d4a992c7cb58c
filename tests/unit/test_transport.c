/*
 * Unit tests of the peer transport (net/transport.c) over real ZeroMQ
 * sockets on loopback: held messages leave at the flush as the parts of one
 * multipart message and arrive as separate messages, in the order they were
 * given, whether held or sent at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "common/ports.h"
#include "net/transport.h"

/* A loopback address with a port the kernel just handed out. */
static void free_addr(char *buf, size_t len)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
	snprintf(buf, len, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
	close(s);
}

struct pair {
	struct transport *a, *b;
};

static long recv_wait(struct transport *t, char *buf, size_t cap);

/* Messages a has sent to b so far (the probe of setup included). */
static uint64_t sent(struct transport *a)
{
	struct transport_peer_stats st;
	assert_int_equal(transport_peer_stats(a, 2, &st), 0);
	return st.msgs_sent;
}

static int setup(void **state)
{
	static struct pair p;
	char aa[64], ba[64];
	free_addr(aa, sizeof aa);
	free_addr(ba, sizeof ba);
	assert_int_equal(transport_create(1, aa, &p.a), 0);
	assert_int_equal(transport_create(2, ba, &p.b), 0);
	assert_int_equal(transport_set_peer(p.a, 2, ba), 0);
	assert_int_equal(transport_set_peer(p.b, 1, aa), 0);
	/* Wait (bounded) until a's socket to b is connected: a send is refused
	 * until then (ZMQ_IMMEDIATE); the probe that gets through is received. */
	int rc = -EAGAIN;
	for (int i = 0; i < 5000 && (rc = transport_send(p.a, 2, "probe", 5)) == -EAGAIN; i++)
		usleep(1000);
	assert_int_equal(rc, 0);
	char buf[16];
	recv_wait(p.b, buf, sizeof buf);
	assert_string_equal(buf, "probe");
	*state = &p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;
	transport_destroy(p->a);
	transport_destroy(p->b);
	return 0;
}

/* Whether the last message received at t is followed by more parts of the
 * same ZeroMQ multipart message. */
static bool more_parts(struct transport *t)
{
	int more = 0;
	size_t sz = sizeof more;
	assert_int_equal(zmq_getsockopt(transport_socket(t), ZMQ_RCVMORE, &more, &sz), 0);
	return more != 0;
}

/* Receives the next message at t within 5 s into buf; returns its length. */
static long recv_wait(struct transport *t, char *buf, size_t cap)
{
	for (int i = 0; i < 500; i++) {
		const void *m;
		long n = transport_recv(t, &m);
		if (n >= 0) {
			assert_true((size_t)n < cap);
			memcpy(buf, m, (size_t)n);
			buf[n] = 0;
			return n;
		}
		zmq_pollitem_t it = {.socket = transport_socket(t), .events = ZMQ_POLLIN};
		zmq_poll(&it, 1, 10);
	}
	fail_msg("no message within 5 s");
	return -1;
}

static void test_held_messages_arrive_in_order(void **state)
{
	struct pair *p = *state;
	struct transport_peer_stats st0, st;
	assert_int_equal(transport_peer_stats(p->a, 2, &st0), 0);
	assert_int_equal(transport_hold(p->a, 2, "one", 3), 0);
	assert_int_equal(transport_hold(p->a, 2, "two", 3), 0);
	assert_int_equal(transport_send(p->a, 2, "three", 5), 0); /* the held ones leave first */
	assert_int_equal(transport_hold(p->a, 2, "four", 4), 0);
	assert_int_equal(transport_hold(p->a, 2, "five", 4), 0);
	transport_flush(p->a);
	/* Held messages travel as the parts of one multipart message, ended
	 * by the next immediate send or the flush: [one two] [three] [four five]. */
	const char *want[] = {"one", "two", "three", "four", "five"};
	const bool more[] = {true, false, false, true, false};
	char buf[16];
	for (int i = 0; i < 5; i++) {
		recv_wait(p->b, buf, sizeof buf);
		assert_string_equal(buf, want[i]);
		assert_int_equal(more_parts(p->b), more[i]);
	}
	assert_int_equal(transport_peer_stats(p->a, 2, &st), 0);
	assert_int_equal(st.msgs_sent - st0.msgs_sent, 5);
	assert_int_equal(st.msgs_dropped - st0.msgs_dropped, 0); /* setup's refused probes count */
	assert_int_equal(st.bytes_sent - st0.bytes_sent, 19);
}

static void test_flush_sends_what_is_held(void **state)
{
	/* A held message waits for the flush (or the next message); a flush
	 * with nothing held sends nothing. */
	struct pair *p = *state;
	uint64_t before = sent(p->a);
	transport_flush(p->a);
	assert_int_equal(sent(p->a), before);
	assert_int_equal(transport_hold(p->a, 2, "late", 4), 0);
	assert_int_equal(sent(p->a), before);
	transport_flush(p->a);
	transport_flush(p->a);
	assert_int_equal(sent(p->a), before + 1);
	char buf[16];
	recv_wait(p->b, buf, sizeof buf);
	assert_string_equal(buf, "late");
}

static void test_held_message_at_removal(void **state)
{
	/* A message still held when its peer is re-pointed, removed or the
	 * transport destroyed leaves or is freed, never leaks (valgrind runs
	 * this test) and never ends up on another peer's socket. */
	struct pair *p = *state;
	char addr[64];
	free_addr(addr, sizeof addr);
	assert_int_equal(transport_set_peer(p->a, 3, addr), 0);
	assert_int_equal(transport_hold(p->a, 3, "to3", 3), 0);
	assert_int_equal(transport_hold(p->a, 2, "to2", 3), 0);
	free_addr(addr, sizeof addr);
	assert_int_equal(transport_set_peer(p->a, 3, addr), 0); /* re-pointed */
	assert_int_equal(transport_hold(p->a, 3, "again", 5), 0);
	transport_remove_peer(p->a, 3);
	transport_flush(p->a);
	char buf[16];
	recv_wait(p->b, buf, sizeof buf);
	assert_string_equal(buf, "to2");
	assert_false(more_parts(p->b));
	assert_int_equal(transport_hold(p->a, 2, "left at destroy", 15), 0);
}

static void test_unknown_peer(void **state)
{
	struct pair *p = *state;
	assert_int_equal(transport_hold(p->a, 9, "x", 1), -ENOENT);
	assert_int_equal(transport_send(p->a, 9, "x", 1), -ENOENT);
}

/* The hint a bind failure gets: only for EADDRINUSE on a port in the range
 * of outgoing connections, whatever the address's form. */
static void test_busy_port_hint(void **state)
{
	(void)state;
	char h[400];
	ports_busy_hint("tcp://127.0.0.1:40000", EADDRINUSE, 32768, 60999, h, sizeof h);
	assert_non_null(strstr(h, "port 40000 is in the range"));
	assert_non_null(strstr(h, "32768-60999"));
	assert_int_equal(h[0], ' ');
	ports_busy_hint("[::1]:32768", EADDRINUSE, 32768, 60999, h, sizeof h);
	assert_non_null(strstr(h, "port 32768 "));
	ports_busy_hint("0.0.0.0:60999", EADDRINUSE, 32768, 60999, h, sizeof h);
	assert_non_null(strstr(h, "port 60999 "));
	const char *none[] = {"127.0.0.1:32767",
			      "127.0.0.1:61000",
			      "127.0.0.1:8000",
			      "127.0.0.1",
			      "127.0.0.1:",
			      "127.0.0.1:40000x",
			      "127.0.0.1:99999999999",
			      "127.0.0.1:-40000",
			      ""};
	for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
		strcpy(h, "left");
		ports_busy_hint(none[i], EADDRINUSE, 32768, 60999, h, sizeof h);
		assert_string_equal(h, "");
	}
	ports_busy_hint("127.0.0.1:40000", EACCES, 32768, 60999, h, sizeof h);
	assert_string_equal(h, "");
	char small[16];
	ports_busy_hint("127.0.0.1:40000", EADDRINUSE, 32768, 60999, small, sizeof small);
	assert_int_equal(strlen(small), sizeof small - 1);
	unsigned lo, hi;
	assert_int_equal(ports_outgoing_range(&lo, &hi), 0);
	assert_true(lo > 0 && lo <= hi && hi <= 65535);
}

/* transport_create(addr) with stderr (where the log goes) caught in buf:
 * returns what transport_create returned. */
static int create_logged(const char *addr, char *buf, size_t len)
{
	struct transport *t = NULL;
	FILE *f = tmpfile();
	assert_non_null(f);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(f), 2), 2);
	int rc = transport_create(1, addr, &t);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if (rc == 0)
		transport_destroy(t);
	rewind(f);
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return rc;
}

/* A peer port some other socket holds: transport_create fails with the
 * bind's errno and logs the address, the error, and (the port bind(0)
 * handed out lying in the range of outgoing connections) the hint; by
 * number, by host name (resolved here, then bound again) and as the
 * wildcard. */
static void test_port_taken(void **state)
{
	(void)state;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s, 1), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
	char addr[64], log[4096], want[128];
	const char *hosts[] = {"127.0.0.1", "localhost", "*"};
	for (int i = 0; i < 3; i++) {
		snprintf(addr, sizeof addr, "tcp://%s:%d", hosts[i], ntohs(a.sin_port));
		assert_int_equal(create_logged(addr, log, sizeof log), -EADDRINUSE);
		snprintf(want, sizeof want, "cannot listen for peers on %s: Address already in use",
			 addr);
		assert_non_null(strstr(log, want));
		snprintf(want, sizeof want, "(port %d is in the range this machine gives outgoing",
			 ntohs(a.sin_port));
		assert_non_null(strstr(log, want));
	}
	close(s);
	/* not a port: ZeroMQ's error (not "in use"), without the hint */
	int rc = create_logged("tcp://127.0.0.1:port", log, sizeof log);
	assert_true(rc < 0 && rc != -EADDRINUSE);
	assert_non_null(strstr(log, "cannot listen for peers on tcp://127.0.0.1:port: "));
	assert_null(strstr(log, "is in the range"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_held_messages_arrive_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_sends_what_is_held, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held_message_at_removal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_peer, setup, teardown),
	    cmocka_unit_test(test_busy_port_hint),
	    cmocka_unit_test(test_port_taken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
