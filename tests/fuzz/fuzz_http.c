/*
 * libFuzzer target: whole HTTP requests through the real REST stack.
 *
 * One in-process node (LevelDB in a temporary directory, node loop running)
 * and one libmicrohttpd server. Each input is written, as raw bytes, into one
 * end of a socketpair whose other end is handed to the server, exactly as an
 * accepted TCP connection would be; the write side is then shut down and the
 * answer read to EOF. So MHD's parser, our routing, key decoding, JSON
 * validation, batch and range parsing, the write path through the node and
 * the reply builders all see fuzzed input, with ASan and UBSan watching.
 *
 * Build: ./configure --enable-fuzzers CC=clang && make fuzzers
 * Run:   ./fuzz_http -max_total_time=60 tests/fuzz/corpus/http
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http.h"
#include "common/log.h"
#include "node/node.h"

static struct node *node;
static struct http_server *srv;
static char datadir[] = "/tmp/kvfs-fuzz-http-XXXXXX";

static void cleanup(void)
{
	http_server_destroy(srv);
	node_destroy(node);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", datadir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", datadir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct node_config nc;
	struct http_config hc;
	log_set_level(LOG_ERROR);
	if (!mkdtemp(datadir))
		abort();
	node_config_default(&nc);
	nc.data_dir = datadir;
	node_config_default(&nc);
	nc.data_dir = datadir;
	http_config_default(&hc);
	hc.listen = "127.0.0.1:0";
	hc.threads = 1;
	hc.use_poll = true;
	hc.max_key = 64;
	hc.max_value = 4096;
	hc.max_batch_items = 16;
	hc.max_body = 16384;
	if (node_create(&nc, &node) || node_start(node) || http_server_create(&hc, node, &srv))
		abort();
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	char buf[65536];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (http_server_add_connection(srv, sv[0]) < 0) {
		close(sv[1]);
		return 0;
	}
	size_t off = 0;
	/* Write the request while draining answers, so neither side's buffer
	 * can fill up and stall the other. */
	while (off < size) {
		struct pollfd p = {.fd = sv[1], .events = POLLOUT | POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			break;
		if (p.revents & POLLIN) {
			ssize_t r = read(sv[1], buf, sizeof buf);
			if (r <= 0)
				break;
		}
		if (p.revents & POLLOUT) {
			ssize_t w = send(sv[1], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno != EAGAIN)
				break;
			if (w > 0)
				off += (size_t)w;
		}
		if (p.revents & (POLLHUP | POLLERR))
			break;
	}
	shutdown(sv[1], SHUT_WR);
	for (;;) {
		struct pollfd p = {.fd = sv[1], .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			break;
		ssize_t r = read(sv[1], buf, sizeof buf);
		if (r <= 0)
			break;
	}
	close(sv[1]);
	return 0;
}
