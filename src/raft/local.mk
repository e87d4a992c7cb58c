# The Raft core (pure library), its deterministic simulator, the
# linearizability checker and their tests (issue 3).
RAFT_CORE_SOURCES = \
	src/raft/raft.h src/raft/impl.h \
	src/raft/core.c src/raft/log.c src/raft/conf.c src/raft/election.c \
	src/raft/replication.c src/raft/recv_append.c src/raft/read.c \
	src/raft/snapshot.c src/raft/propose.c

noinst_LIBRARIES += libkvfsraft.a
libkvfsraft_a_SOURCES = $(RAFT_CORE_SOURCES)

# The linearizability checker: a library for the simulator and for the
# Jepsen-style integration tests, and a CLI reading history files.
noinst_LIBRARIES += libkvfslincheck.a
libkvfslincheck_a_SOURCES = tests/lib/lincheck.c tests/lib/lincheck.h
noinst_PROGRAMS += kvfs-lincheck
kvfs_lincheck_SOURCES = tests/lib/kvfs-lincheck.c
kvfs_lincheck_LDADD = libkvfslincheck.a

# The deterministic simulator. A sanitizer build runs fewer seeds by default
# (kvfs-sim --ci-seeds tells tests/sim/sim-check.sh how many).
SIM_SOURCES = tests/sim/sim.h tests/sim/sim_cluster.c tests/sim/sim_check.c \
	tests/sim/sim_client.c
noinst_PROGRAMS += kvfs-sim
kvfs_sim_SOURCES = tests/sim/kvfs-sim.c $(SIM_SOURCES)
kvfs_sim_LDADD = libkvfsraft.a libkvfslincheck.a
kvfs_sim_CPPFLAGS = $(AM_CPPFLAGS) $(RAFT_SIM_FLAGS)
if SANITIZERS
RAFT_SIM_FLAGS = -DKVFS_SIM_CI_SEEDS=200
else
RAFT_SIM_FLAGS =
endif

# Scripted scenarios with golden traces.
check_PROGRAMS += raft-scenarios
raft_scenarios_SOURCES = tests/sim/scenarios.c $(SIM_SOURCES)
raft_scenarios_LDADD = libkvfsraft.a libkvfslincheck.a

# Unit tests (cmocka).
RAFT_UNIT_TESTS = test_raft_core test_raft_conf test_lincheck
check_PROGRAMS += $(RAFT_UNIT_TESTS)
UNIT_TESTS += $(RAFT_UNIT_TESTS)
test_raft_core_SOURCES = tests/raft/test_raft_core.c
test_raft_core_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_raft_core_LDADD = libkvfsraft.a libkvfscommon.a $(CMOCKA_LIBS)
test_raft_conf_SOURCES = tests/raft/test_raft_conf.c
test_raft_conf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_raft_conf_LDADD = libkvfsraft.a $(CMOCKA_LIBS)
test_lincheck_SOURCES = tests/raft/test_lincheck.c
test_lincheck_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_lincheck_LDADD = libkvfslincheck.a $(CMOCKA_LIBS)

# The simulator with planted bugs (impl.h lists them): the planted test
# shows that each is caught within the CI seed budget.
RAFT_BUG_SOURCES = tests/sim/kvfs-sim.c $(SIM_SOURCES) $(RAFT_CORE_SOURCES) \
	tests/lib/lincheck.c tests/lib/lincheck.h
check_PROGRAMS += kvfs-sim-bug1 kvfs-sim-bug2 kvfs-sim-bug3 kvfs-sim-bug4 kvfs-sim-bug5 \
	kvfs-sim-bug6 kvfs-sim-bug7
kvfs_sim_bug1_SOURCES = $(RAFT_BUG_SOURCES)
kvfs_sim_bug1_CPPFLAGS = $(AM_CPPFLAGS) -DRAFT_PLANT_BUG=1
kvfs_sim_bug2_SOURCES = $(RAFT_BUG_SOURCES)
kvfs_sim_bug2_CPPFLAGS = $(AM_CPPFLAGS) -DRAFT_PLANT_BUG=2
kvfs_sim_bug3_SOURCES = $(RAFT_BUG_SOURCES)
kvfs_sim_bug3_CPPFLAGS = $(AM_CPPFLAGS) -DRAFT_PLANT_BUG=3
kvfs_sim_bug4_SOURCES = $(RAFT_BUG_SOURCES)
kvfs_sim_bug4_CPPFLAGS = $(AM_CPPFLAGS) -DRAFT_PLANT_BUG=4
kvfs_sim_bug5_SOURCES = $(RAFT_BUG_SOURCES)
kvfs_sim_bug5_CPPFLAGS = $(AM_CPPFLAGS) -DRAFT_PLANT_BUG=5
kvfs_sim_bug6_SOURCES = $(RAFT_BUG_SOURCES)
kvfs_sim_bug6_CPPFLAGS = $(AM_CPPFLAGS) -DRAFT_PLANT_BUG=6
kvfs_sim_bug7_SOURCES = $(RAFT_BUG_SOURCES)
kvfs_sim_bug7_CPPFLAGS = $(AM_CPPFLAGS) -DRAFT_PLANT_BUG=7

RAFT_SH_TESTS = tests/sim/sim-check.sh tests/sim/planted.sh tests/sim/lincheck-cli.sh
TESTS += $(RAFT_UNIT_TESTS) raft-scenarios $(RAFT_SH_TESTS)
EXTRA_DIST += $(RAFT_SH_TESTS) tests/sim/regress.txt tests/sim/golden tests/sim/README.md \
	tests/sim/histories

# Line coverage of the core (configure --enable-coverage, then make check).
raft-coverage:
	gcovr -r $(top_srcdir) --filter '$(top_srcdir)/src/raft/' $(top_builddir)
.PHONY: raft-coverage
