# Shared test helpers and integration tests (modules add their own unit tests
# in their local.mk). Integration tests start real kvfsd processes on free
# ports and clean up after themselves; they need python3 (stdlib only),
# curl and promtool (Debian: python3, curl, prometheus).
PYTHON3 = python3

TESTS += tests/integration/test_api.py tests/integration/test_cluster.py \
	tests/integration/test_storage.py
EXTRA_DIST += tests/lib/harness.py tests/lib/kvfsd.sh tests/integration/test_api.py tests/integration/test_cluster.py \
	tests/integration/test_storage.py
CLEANFILES += jepsen-history.txt
