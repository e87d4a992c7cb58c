/* Listening ports outside the range of outgoing connections (ports.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ports.h"

int ports_outgoing_range(unsigned *lo, unsigned *hi)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	if (!f)
		return -errno;
	int n = fscanf(f, "%u %u", lo, hi);
	fclose(f);
	return n == 2 && *lo <= *hi ? 0 : -EINVAL;
}

/* The port at the end of addr, or 0. */
static unsigned addr_port(const char *addr)
{
	const char *c = strrchr(addr, ':');
	if (!c || c[1] < '0' || c[1] > '9')
		return 0;
	char *end;
	errno = 0;
	unsigned long p = strtoul(c + 1, &end, 10);
	return errno == 0 && *end == '\0' && p <= 65535 ? (unsigned)p : 0;
}

void ports_busy_hint(const char *addr, int err, unsigned lo, unsigned hi, char *buf, size_t len)
{
	unsigned port = addr_port(addr);
	if (len)
		buf[0] = '\0';
	if (err != EADDRINUSE || !port || port < lo || port > hi)
		return;
	snprintf(buf, len,
		 " (port %u is in the range this machine gives outgoing connections, %u-%u: "
		 "besides another listener, any process's outgoing connection may hold it for a "
		 "while; listen on a port outside net.ipv4.ip_local_port_range, or reserve it in "
		 "net.ipv4.ip_local_reserved_ports)",
		 port, lo, hi);
}

void ports_busy_hint_here(const char *addr, int err, char *buf, size_t len)
{
	unsigned lo, hi;
	if (ports_outgoing_range(&lo, &hi) < 0)
		lo = 1, hi = 0; /* no range known: an empty one, no hint */
	ports_busy_hint(addr, err, lo, hi, buf, len);
}
