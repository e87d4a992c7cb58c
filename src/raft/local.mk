# The Raft core (pure library), its simulator, the linearizability checker
# and their tests. Issue 3.
RAFT_CORE_SOURCES = \
	src/raft/raft.h src/raft/impl.h \
	src/raft/core.c src/raft/log.c src/raft/conf.c src/raft/election.c \
	src/raft/replication.c src/raft/recv_append.c src/raft/read.c \
	src/raft/snapshot.c src/raft/propose.c

noinst_LIBRARIES += libkvfsraft.a
libkvfsraft_a_SOURCES = $(RAFT_CORE_SOURCES)

# The linearizability checker (library + CLI).
noinst_LIBRARIES += libkvfslincheck.a
libkvfslincheck_a_SOURCES = tests/lib/lincheck.c tests/lib/lincheck.h
noinst_PROGRAMS += kvfs-lincheck
kvfs_lincheck_SOURCES = tests/lib/kvfs-lincheck.c
kvfs_lincheck_LDADD = libkvfslincheck.a

# The deterministic simulator.
SIM_SOURCES = tests/sim/sim.h tests/sim/sim_cluster.c tests/sim/sim_check.c \
	tests/sim/sim_client.c
noinst_PROGRAMS += kvfs-sim
kvfs_sim_SOURCES = tests/sim/kvfs-sim.c $(SIM_SOURCES)
kvfs_sim_LDADD = libkvfsraft.a libkvfslincheck.a
