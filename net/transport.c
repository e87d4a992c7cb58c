/*
 * ZeroMQ PUSH/PULL transport (see transport.h for the why). Peers live in a
 * small array: clusters have at most RAFT_MAX_SERVERS members.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "common/ports.h"
#include "net/transport.h"
#include "net/wire.h"

#define MAX_PEERS 32

struct peer {
	uint64_t id;
	char *addr;
	void *sock;
	struct transport_peer_stats st;
	zmq_msg_t held; /* the last message transport_hold was given */
	bool has_held;	/* held is initialised and not sent yet */
};

struct transport {
	uint64_t self;
	void *ctx;
	void *pull;
	zmq_msg_t in;
	int in_live;
	struct peer peers[MAX_PEERS];
	int n_peers;
	uint64_t rejected;
};

static void set_int(void *s, int opt, int v)
{
	zmq_setsockopt(s, opt, &v, sizeof v);
}

/* ZeroMQ binds numeric addresses only; a host name (a container's service
 * name in docker-compose) is resolved to the address it has here. */
static int bind_resolved(void *sock, const char *addr)
{
	if (zmq_bind(sock, addr) == 0)
		return 0;
	int err = zmq_errno(); /* what the caller reports, unless a retry fails */
	char host[256];
	struct in_addr numeric;
	const char *h = strncmp(addr, "tcp://", 6) == 0 ? addr + 6 : NULL;
	const char *colon = h ? strrchr(h, ':') : NULL;
	if (!colon || (size_t)(colon - h) >= sizeof host)
		goto failed;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = 0;
	if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, &numeric) == 1)
		goto failed; /* nothing to resolve: the bind itself failed */
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		goto failed;
	char ip[INET_ADDRSTRLEN], resolved[320];
	inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
	freeaddrinfo(res);
	snprintf(resolved, sizeof resolved, "tcp://%s%s", ip, colon);
	log_info("net", "%s resolves to %s", addr, resolved);
	return zmq_bind(sock, resolved);
failed:
	errno = err; /* zmq_errno() is errno */
	return -1;
}

int transport_create(uint64_t self_id, const char *bind_addr, struct transport **out)
{
	struct transport *t = calloc(1, sizeof *t);
	int rc = -ENOMEM;
	if (!t)
		return rc;
	t->self = self_id;
	t->ctx = zmq_ctx_new();
	if (!t->ctx)
		goto err_after_alloc;
	zmq_ctx_set(t->ctx, ZMQ_IO_THREADS, 1);
	t->pull = zmq_socket(t->ctx, ZMQ_PULL);
	if (!t->pull)
		goto err_after_ctx;
	int64_t maxsz = WIRE_MAX_MESSAGE;
	zmq_setsockopt(t->pull, ZMQ_MAXMSGSIZE, &maxsz, sizeof maxsz);
	set_int(t->pull, ZMQ_RCVHWM, 10000);
	set_int(t->pull, ZMQ_LINGER, 0);
	if (bind_resolved(t->pull, bind_addr) != 0) {
		int err = zmq_errno();
		char hint[320];
		ports_busy_hint_here(bind_addr, err, hint, sizeof hint);
		log_error("net", "cannot listen for peers on %s: %s%s", bind_addr,
			  zmq_strerror(err), hint);
		rc = err > 0 ? -err : -EINVAL;
		zmq_close(t->pull);
		goto err_after_ctx;
	}
	zmq_msg_init(&t->in);
	t->in_live = 1;
	log_info("net", "listening for peers on %s", bind_addr);
	*out = t;
	return 0;

err_after_ctx:
	zmq_ctx_term(t->ctx);
err_after_alloc:
	free(t);
	return rc;
}

static struct peer *find(struct transport *t, uint64_t id)
{
	for (int i = 0; i < t->n_peers; i++)
		if (t->peers[i].id == id)
			return &t->peers[i];
	return NULL;
}

/* Sends p's held message, as one more part (more) or as the last one. A
 * part refused (queue full, peer not connected, or the connection lost in
 * the middle of a multipart message, whose earlier parts ZeroMQ then rolls
 * back and whose later parts it discards) is dropped and counted; ZeroMQ
 * delivers a multipart message whole or not at all, so a receiver never
 * sees part of one. The counters are therefore approximate: parts
 * discarded after a mid-message failure count as sent. */
static void send_held(struct peer *p, bool more)
{
	if (!p->has_held)
		return;
	size_t len = zmq_msg_size(&p->held);
	if (zmq_msg_send(&p->held, p->sock, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0) {
		zmq_msg_close(&p->held);
		p->st.msgs_dropped++;
	} else {
		p->st.msgs_sent++;
		p->st.bytes_sent += len;
	}
	p->has_held = false;
}

static void close_peer(struct peer *p)
{
	if (p->sock) {
		send_held(p, false);
		zmq_close(p->sock);
	}
	free(p->addr);
	p->sock = NULL;
	p->addr = NULL;
}

int transport_set_peer(struct transport *t, uint64_t id, const char *addr)
{
	struct peer *p = find(t, id);
	if (p && p->addr && strcmp(p->addr, addr) == 0)
		return 0;
	if (!p) {
		if (t->n_peers == MAX_PEERS)
			return -ENOSPC;
		p = &t->peers[t->n_peers++];
		memset(p, 0, sizeof *p);
		p->id = id;
	} else {
		close_peer(p);
	}
	p->addr = strdup(addr);
	p->sock = zmq_socket(t->ctx, ZMQ_PUSH);
	if (!p->addr || !p->sock)
		goto err;
	set_int(p->sock, ZMQ_SNDHWM, 10000);
	set_int(p->sock, ZMQ_LINGER, 0);
	set_int(p->sock, ZMQ_IMMEDIATE, 1); /* never queue for a peer that is not there */
	set_int(p->sock, ZMQ_RECONNECT_IVL, 50);
	set_int(p->sock, ZMQ_RECONNECT_IVL_MAX, 1000);
	set_int(p->sock, ZMQ_TCP_KEEPALIVE, 1);
	if (zmq_connect(p->sock, addr) != 0) {
		log_error("net", "bad peer address %s for node %llu: %s", addr,
			  (unsigned long long)id, zmq_strerror(zmq_errno()));
		goto err;
	}
	return 0;
err:
	close_peer(p);
	send_held(&t->peers[t->n_peers - 1], false); /* a zmq_msg_t is not copied */
	*p = t->peers[--t->n_peers];
	return -EINVAL;
}

void transport_remove_peer(struct transport *t, uint64_t id)
{
	struct peer *p = find(t, id);
	if (!p)
		return;
	close_peer(p);
	send_held(&t->peers[t->n_peers - 1], false); /* a zmq_msg_t is not copied */
	*p = t->peers[--t->n_peers];
}

int transport_hold(struct transport *t, uint64_t to, const void *buf, size_t len)
{
	struct peer *p = find(t, to);
	if (!p)
		return -ENOENT;
	/* The new message first: should it fail, the previous one leaves as
	 * the last part, never leaving the socket in the middle of a message. */
	zmq_msg_t m;
	if (zmq_msg_init_size(&m, len) != 0) {
		p->st.msgs_dropped++;
		send_held(p, false);
		return 0;
	}
	memcpy(zmq_msg_data(&m), buf, len);
	send_held(p, true); /* held is now sent (empty) or closed */
	zmq_msg_init(&p->held);
	zmq_msg_move(&p->held, &m);
	zmq_msg_close(&m);
	p->has_held = true;
	return 0;
}

void transport_flush(struct transport *t)
{
	for (int i = 0; i < t->n_peers; i++)
		send_held(&t->peers[i], false);
}

int transport_send(struct transport *t, uint64_t to, const void *buf, size_t len)
{
	struct peer *p = find(t, to);
	if (!p)
		return -ENOENT;
	send_held(p, false);
	if (zmq_send(p->sock, buf, len, ZMQ_DONTWAIT) < 0) {
		p->st.msgs_dropped++;
		return -EAGAIN;
	}
	p->st.msgs_sent++;
	p->st.bytes_sent += len;
	return 0;
}

long transport_recv(struct transport *t, const void **buf)
{
	int n = zmq_msg_recv(&t->in, t->pull, ZMQ_DONTWAIT);
	if (n < 0)
		return zmq_errno() == EAGAIN ? -EAGAIN : -EIO;
	*buf = zmq_msg_data(&t->in);
	return n;
}

void *transport_socket(struct transport *t)
{
	return t->pull;
}

void transport_count_received(struct transport *t, uint64_t from, size_t len)
{
	struct peer *p = find(t, from);
	if (p) {
		p->st.msgs_received++;
		p->st.bytes_received += len;
	}
}

int transport_peer_stats(struct transport *t, uint64_t id, struct transport_peer_stats *out)
{
	struct peer *p = find(t, id);
	if (!p)
		return -ENOENT;
	*out = p->st;
	return 0;
}

uint64_t transport_rejected(struct transport *t)
{
	return t->rejected;
}

void transport_count_rejected(struct transport *t)
{
	t->rejected++;
}

void transport_destroy(struct transport *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->n_peers; i++)
		close_peer(&t->peers[i]);
	if (t->in_live)
		zmq_msg_close(&t->in);
	zmq_close(t->pull);
	zmq_ctx_term(t->ctx);
	free(t);
}
