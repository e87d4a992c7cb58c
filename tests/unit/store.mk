# Unit tests of the storage layer (src/store), one cmocka binary per module,
# and the sources of its fuzz target (built outside automake: see the comment
# at the top of tests/fuzz/fuzz_txn.c). Included from the top-level Makefile.am.
STORE_TEST_LDADD = libkvfsstore.a libkvfscommon.a $(LEVELDB_LIBS) $(CMOCKA_LIBS) -lpthread

check_PROGRAMS += test_record test_txn test_kv test_kv_nofd test_log
TESTS += test_record test_txn test_kv test_kv_nofd test_log
UNIT_TESTS += test_record test_txn test_kv test_kv_nofd test_log

test_record_SOURCES = tests/unit/test_record.c
test_record_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_record_LDADD = $(STORE_TEST_LDADD)

test_txn_SOURCES = tests/unit/test_txn.c
test_txn_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_txn_LDADD = $(STORE_TEST_LDADD)

test_kv_SOURCES = tests/unit/test_kv.c tests/unit/store_test_util.h
test_kv_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_kv_LDADD = $(STORE_TEST_LDADD)

# test_kv again, with LevelDB's table files opened for each read
# (kv_env.cc's path beyond its budget of kept-open files).
test_kv_nofd_SOURCES = tests/unit/test_kv.c tests/unit/store_test_util.h
test_kv_nofd_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) -DKV_TEST_NO_KEPT_FILES
test_kv_nofd_LDADD = $(STORE_TEST_LDADD)

test_log_SOURCES = tests/unit/test_log.c tests/unit/store_test_util.h
test_log_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_log_LDADD = $(STORE_TEST_LDADD)
# The log's pwrite goes through the test's __wrap_pwrite (a refused direct
# write); pwrite64 where the headers name it so (_FILE_OFFSET_BITS=64).
test_log_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=pwrite -Wl,--wrap=pwrite64

EXTRA_DIST += tests/fuzz/fuzz_txn.c tests/fuzz/gen_txn_corpus.c tests/fuzz/corpus/txn
