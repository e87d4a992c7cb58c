/*
 * The peer transport: ZeroMQ sockets carrying wire messages (net/wire.h)
 * between kvfsd nodes.
 *
 * Each node binds one PULL socket on its peer address and keeps one PUSH
 * socket per peer, connected to that peer's PULL socket. ZeroMQ frames the
 * messages, reconnects after a peer restarts, and bounds every queue (high
 * water marks); a send that would block is dropped and counted, which Raft
 * tolerates by design (it retransmits). Oversized frames are refused by ZeroMQ
 * itself (ZMQ_MAXMSGSIZE), so a hostile peer cannot make us allocate
 * unbounded memory.
 *
 * Thread: every socket belongs to the node loop thread; all functions must be
 * called from it (transport_create may run before the thread starts).
 */
#ifndef KVFS_NET_TRANSPORT_H
#define KVFS_NET_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct transport;

struct transport_peer_stats {
	uint64_t bytes_sent, bytes_received;
	uint64_t msgs_sent, msgs_received, msgs_dropped;
};

/* Binds the PULL socket on bind_addr ("tcp://HOST:PORT"). Returns 0, or a
 * negative errno (logged): the bind's (-EADDRINUSE, -EINVAL for an address
 * ZeroMQ cannot take, ...), or -ENOMEM. */
int transport_create(uint64_t self_id, const char *bind_addr, struct transport **out);
void transport_destroy(struct transport *t);

/* Adds or re-points the peer id at addr (copied). Returns 0 or a negative
 * code. */
int transport_set_peer(struct transport *t, uint64_t id, const char *addr);
void transport_remove_peer(struct transport *t, uint64_t id);

/* Queues buf (copied) for peer `to` without blocking. Returns 0, -EAGAIN when
 * the peer's queue is full or it is not connected (message dropped and
 * counted), -ENOENT for an unknown peer. Messages held by transport_hold for
 * that peer leave first. */
int transport_send(struct transport *t, uint64_t to, const void *buf, size_t len);

/* Like transport_send, for a message whose loss Raft or a timeout already
 * covers: it may be held back and leave with the peer's next messages as
 * the parts of one ZeroMQ multipart message, which wakes ZeroMQ's I/O
 * threads (and the receiving loop) once instead of once per message.
 * Returns 0 or -ENOENT; a drop is counted, not reported. Every part is an
 * ordinary message to the receiver. transport_flush sends what is held;
 * call it before waiting on anything (an fsync, the poll). */
int transport_hold(struct transport *t, uint64_t to, const void *buf, size_t len);
void transport_flush(struct transport *t);

/* Receives the next frame without blocking into a buffer the transport owns
 * (valid until the next transport_recv). Returns the length, -EAGAIN when
 * nothing is pending, or another negative code. */
long transport_recv(struct transport *t, const void **buf);

/* The receiving socket, for zmq_poll() (a void * ZeroMQ socket). */
void *transport_socket(struct transport *t);

/* Accounts received bytes against the sender (after decoding the header). */
void transport_count_received(struct transport *t, uint64_t from, size_t len);

/* Statistics of peer id; returns 0 or -ENOENT. */
int transport_peer_stats(struct transport *t, uint64_t id, struct transport_peer_stats *out);

/* Frames rejected before decoding (oversized or malformed), for metrics. */
uint64_t transport_rejected(struct transport *t);
void transport_count_rejected(struct transport *t);

#endif
