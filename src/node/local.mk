noinst_LIBRARIES += libkvfsnode.a
libkvfsnode_a_SOURCES = \
	src/node/node.c src/node/node.h
