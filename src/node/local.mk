noinst_LIBRARIES += libkvfsnode.a
libkvfsnode_a_SOURCES = \
	src/node/node.c src/node/node.h src/node/node_internal.h \
	src/node/node_raft.c src/node/node_recover.c src/node/node_net.c src/node/node_status.c \
	src/node/idmap.c src/node/idmap.h
libkvfsnode_a_CFLAGS = $(AM_CFLAGS) $(ZMQ_CFLAGS)
