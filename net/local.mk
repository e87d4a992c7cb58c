# The peer transport library: the wire codec (net/wire.[ch]), the ZeroMQ
# transport (net/transport.[ch]) and their unit tests. Included from the
# top-level Makefile.am.
noinst_LIBRARIES += libkvfsnet.a
libkvfsnet_a_SOURCES = net/wire.c net/wire.h net/transport.c net/transport.h
libkvfsnet_a_CFLAGS = $(AM_CFLAGS) $(ZMQ_CFLAGS)

check_PROGRAMS += test_wire
TESTS += test_wire
UNIT_TESTS += test_wire
test_wire_SOURCES = tests/unit/test_wire.c
test_wire_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_wire_LDADD = libkvfsnet.a libkvfsraft.a libkvfscommon.a $(CMOCKA_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += test_transport
TESTS += test_transport
UNIT_TESTS += test_transport
test_transport_SOURCES = tests/unit/test_transport.c
test_transport_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(ZMQ_CFLAGS)
test_transport_LDADD = libkvfsnet.a libkvfscommon.a $(CMOCKA_LIBS) $(ZMQ_LIBS) $(PTHREAD_LIBS)
