noinst_LIBRARIES += libkvfscommon.a
libkvfscommon_a_SOURCES = \
	src/common/err.c src/common/err.h \
	src/common/log.c src/common/log.h \
	src/common/bytes.c src/common/bytes.h
libkvfscommon_a_SOURCES += src/common/metrics.c src/common/metrics.h \
	src/common/clock.c src/common/clock.h \
	src/common/ports.c src/common/ports.h
ARFLAGS = cr

check_PROGRAMS += test_bytes
TESTS += test_bytes
UNIT_TESTS += test_bytes
test_bytes_SOURCES = tests/unit/test_bytes.c
test_bytes_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
test_bytes_LDADD = libkvfscommon.a $(CMOCKA_LIBS) $(PTHREAD_LIBS)
