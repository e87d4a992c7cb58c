# Shared test helpers and integration tests (modules add their own unit tests
# in their local.mk).
