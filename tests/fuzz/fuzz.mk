# libFuzzer targets, built only with ./configure --enable-fuzzers CC=clang
# (`make fuzzers`). scripts/check-extra.sh runs each for a bounded time over
# its committed corpus tests/fuzz/corpus/<name without fuzz_>/.
FUZZ_PROGS =
if FUZZERS
FUZZ_LINK = -fsanitize=fuzzer,address,undefined
# What the fuzzers of the store's decoders link.
FUZZ_STORE_LIBS = libkvfsstore.a libkvfscommon.a $(LEVELDB_LIBS) $(PTHREAD_LIBS)
FUZZ_PROGS += fuzz_txn
fuzz_txn_SOURCES = tests/fuzz/fuzz_txn.c
fuzz_txn_LDFLAGS = $(FUZZ_LINK)
fuzz_txn_LDADD = $(FUZZ_STORE_LIBS)
FUZZ_PROGS += fuzz_wal
fuzz_wal_SOURCES = tests/fuzz/fuzz_wal.c
fuzz_wal_LDFLAGS = $(FUZZ_LINK)
fuzz_wal_LDADD = $(FUZZ_STORE_LIBS)
FUZZ_PROGS += fuzz_snap
fuzz_snap_SOURCES = tests/fuzz/fuzz_snap.c
fuzz_snap_LDFLAGS = $(FUZZ_LINK)
fuzz_snap_LDADD = $(FUZZ_STORE_LIBS)
FUZZ_PROGS += fuzz_resp
fuzz_resp_SOURCES = tests/fuzz/fuzz_resp.c
fuzz_resp_LDFLAGS = $(FUZZ_LINK)
fuzz_resp_LDADD = $(KVFS_CLI_LIBS)
FUZZ_PROGS += fuzz_rlog
fuzz_rlog_SOURCES = tests/fuzz/fuzz_rlog.c
fuzz_rlog_LDFLAGS = $(FUZZ_LINK)
fuzz_rlog_LDADD = $(FUZZ_STORE_LIBS)
FUZZ_PROGS += fuzz_http
fuzz_http_SOURCES = tests/fuzz/fuzz_http.c
fuzz_http_LDFLAGS = $(FUZZ_LINK)
fuzz_http_LDADD = libkvfsapi.a libkvfsnode.a libkvfsnet.a libkvfsraft.a libkvfsstore.a \
	libkvfscommon.a $(MHD_LIBS) $(ZMQ_LIBS) $(JANSSON_LIBS) $(LEVELDB_LIBS) $(PTHREAD_LIBS)
FUZZ_PROGS += fuzz_wire
fuzz_wire_SOURCES = tests/fuzz/fuzz_wire.c
fuzz_wire_LDFLAGS = $(FUZZ_LINK)
fuzz_wire_LDADD = libkvfsnet.a libkvfsraft.a libkvfscommon.a $(PTHREAD_LIBS)
EXTRA_PROGRAMS = $(FUZZ_PROGS)
endif
EXTRA_DIST += tests/fuzz/fuzz_wal.c tests/fuzz/corpus/wal tests/fuzz/fuzz_wire.c tests/fuzz/gen_wire_corpus.c tests/fuzz/corpus/wire \
	tests/fuzz/fuzz_snap.c tests/fuzz/gen_snap_corpus.py tests/fuzz/corpus/snap \
	tests/fuzz/fuzz_resp.c tests/fuzz/gen_resp_corpus.py tests/fuzz/corpus/resp \
	tests/fuzz/fuzz_rlog.c tests/fuzz/gen_rlog_corpus.py tests/fuzz/corpus/rlog
CLEANFILES += $(FUZZ_PROGS)

fuzzers: $(FUZZ_PROGS)
print-fuzzers:
	@echo $(FUZZ_PROGS)
print-unit-tests:
	@echo $(UNIT_TESTS)
.PHONY: fuzzers print-fuzzers print-unit-tests
