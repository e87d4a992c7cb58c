/*
 * Listening ports and the kernel's range of source ports for outgoing
 * connections (net.ipv4.ip_local_port_range, 32768-60999 by default).
 *
 * A port in that range may be held by any process's outgoing connection,
 * for as long as the connection lives, and a node that connects to a peer
 * not listening yet can even be connected to itself on the peer's port. A
 * node told to listen there can then fail with EADDRINUSE on one start
 * and not the next; the error message says so (ports_busy_hint).
 */
#ifndef KVFS_COMMON_PORTS_H
#define KVFS_COMMON_PORTS_H

#include <stddef.h>

/* The range from /proc/sys/net/ipv4/ip_local_port_range: 0 or -errno. */
int ports_outgoing_range(unsigned *lo, unsigned *hi);

/* For a listening address ("HOST:PORT", "tcp://HOST:PORT", "[V6]:PORT")
 * whose bind failed with err: a hint (starting with a space) when err is
 * EADDRINUSE and the port lies in [lo, hi], else "". Always terminated. */
void ports_busy_hint(const char *addr, int err, unsigned lo, unsigned hi, char *buf, size_t len);

/* The same with this machine's range. */
void ports_busy_hint_here(const char *addr, int err, char *buf, size_t len);

#endif
