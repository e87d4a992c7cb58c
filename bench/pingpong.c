/*
 * Round trip of a 200-byte message between two processes on loopback,
 * through ZeroMQ PUSH/PULL sockets (as kvfsd's peer transport) or through a
 * plain TCP socket, for bench/hop.sh: how much of a Raft hop is ZeroMQ's I/O
 * threads and the machine's thread wake-ups.
 *
 * Usage: pingpong zmq|tcp server|client PORT [COUNT]
 * The client prints the mean round trip in microseconds.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MSG 200

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int full(ssize_t r)
{
	return r == MSG;
}

static int run_zmq(int server, int port, int count)
{
	char addr[256], buf[MSG] = {0};
	size_t alen = sizeof addr;
	void *ctx = zmq_ctx_new();
	void *pull = zmq_socket(ctx, ZMQ_PULL), *push = zmq_socket(ctx, ZMQ_PUSH);
	/* The server's PULL socket is on PORT; the client's on a port of its
	 * own, which its first message names for the server to connect to. */
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
	if (server) {
		if (zmq_bind(pull, addr) != 0 || zmq_recv(pull, addr, sizeof addr - 1, 0) < 0)
			return fprintf(stderr, "pingpong: %s\n", zmq_strerror(zmq_errno())), 1;
		addr[sizeof addr - 1] = 0;
		zmq_connect(push, addr);
	} else {
		if (zmq_bind(pull, "tcp://127.0.0.1:*") != 0 || zmq_connect(push, addr) != 0 ||
		    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, addr, &alen) != 0)
			return fprintf(stderr, "pingpong: %s\n", zmq_strerror(zmq_errno())), 1;
		zmq_send(push, addr, strlen(addr) + 1, 0);
	}
	double t0 = 0;
	for (int i = 0; i <= count; i++) {
		if (!server && i == 1)
			t0 = now(); /* the first round trip waits for the connections */
		if (server) {
			if (zmq_recv(pull, buf, MSG, 0) != MSG || zmq_send(push, buf, MSG, 0) != MSG)
				return 1;
		} else if (zmq_send(push, buf, MSG, 0) != MSG || zmq_recv(pull, buf, MSG, 0) != MSG) {
			return 1;
		}
	}
	if (!server)
		printf("%.1f\n", (now() - t0) / count * 1e6);
	zmq_close(pull);
	zmq_close(push);
	zmq_ctx_term(ctx);
	return 0;
}

static int run_tcp(int server, int port, int count)
{
	char buf[MSG] = {0};
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (server) {
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1) != 0)
			return perror("pingpong: bind"), 1;
		int c = accept(s, NULL, NULL);
		close(s);
		s = c;
	} else {
		for (int i = 0; connect(s, (struct sockaddr *)&a, sizeof a) != 0; i++) {
			if (i == 5000)
				return perror("pingpong: connect"), 1;
			usleep(1000);
		}
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	double t0 = 0;
	for (int i = 0; i <= count; i++) {
		if (!server && i == 1)
			t0 = now();
		if (server) {
			if (!full(recv(s, buf, MSG, MSG_WAITALL)) || !full(send(s, buf, MSG, 0)))
				return 1;
		} else if (!full(send(s, buf, MSG, 0)) || !full(recv(s, buf, MSG, MSG_WAITALL))) {
			return 1;
		}
	}
	if (!server)
		printf("%.1f\n", (now() - t0) / count * 1e6);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "zmq") && strcmp(argv[1], "tcp")) ||
	    (strcmp(argv[2], "server") && strcmp(argv[2], "client"))) {
		fprintf(stderr, "usage: pingpong zmq|tcp server|client PORT [COUNT]\n");
		return 2;
	}
	int server = strcmp(argv[2], "server") == 0, port = atoi(argv[3]);
	int count = argc > 4 ? atoi(argv[4]) : 5000;
	return strcmp(argv[1], "zmq") == 0 ? run_zmq(server, port, count)
					   : run_tcp(server, port, count);
}
