# The Raft core (pure library), its simulator, the linearizability checker
# and their tests. Issue 3.
RAFT_CORE_SOURCES = \
	src/raft/raft.h src/raft/impl.h \
	src/raft/core.c src/raft/log.c src/raft/conf.c src/raft/election.c \
	src/raft/replication.c src/raft/recv_append.c src/raft/read.c \
	src/raft/snapshot.c src/raft/propose.c

noinst_LIBRARIES += libkvfsraft.a
libkvfsraft_a_SOURCES = $(RAFT_CORE_SOURCES)
