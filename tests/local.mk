# Shared test helpers and integration tests (modules add their own unit tests
# in their local.mk). Integration tests start real kvfsd processes on free
# ports and clean up after themselves; they need python3 (stdlib only),
# curl and promtool (Debian: python3, curl, prometheus).
PYTHON3 = python3

TESTS += tests/integration/test_api.py tests/integration/test_cluster.py \
	tests/integration/test_storage.py tests/integration/test_quickstart.py
EXTRA_DIST += tests/lib/harness.py tests/lib/kvfsd.sh tests/integration/test_api.py tests/integration/test_cluster.py \
	tests/integration/test_storage.py tests/integration/test_quickstart.py
CLEANFILES += jepsen-history.txt

# The power-loss test: kvfsd on powerfs (tests/lib/powerfs.c), a FUSE
# pass-through file system that loses what was never fsynced when it is
# unmounted. Needs root and /dev/fuse.
check_PROGRAMS += powerfs
powerfs_SOURCES = tests/lib/powerfs.c
powerfs_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS)
powerfs_LDADD = $(FUSE3_LIBS)
TESTS += tests/integration/test_powerloss.py
EXTRA_DIST += tests/integration/test_powerloss.py
