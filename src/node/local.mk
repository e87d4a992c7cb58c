noinst_LIBRARIES += libkvfsnode.a
libkvfsnode_a_SOURCES = \
	src/node/node.c src/node/node.h src/node/node_internal.h \
	src/node/node_raft.c src/node/node_recover.c src/node/node_net.c src/node/node_status.c \
	src/node/idmap.c src/node/idmap.h src/node/catchup.c src/node/catchup.h
libkvfsnode_a_CFLAGS = $(AM_CFLAGS) $(ZMQ_CFLAGS)

check_PROGRAMS += test_catchup
TESTS += test_catchup
UNIT_TESTS += test_catchup
test_catchup_SOURCES = tests/unit/test_catchup.c src/node/catchup.c src/node/catchup.h
test_catchup_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_catchup_LDADD = $(CMOCKA_LIBS)
