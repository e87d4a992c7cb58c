noinst_LIBRARIES += libkvfscommon.a
libkvfscommon_a_SOURCES = \
	src/common/err.c src/common/err.h \
	src/common/log.c src/common/log.h \
	src/common/bytes.c src/common/bytes.h
libkvfscommon_a_SOURCES += src/common/metrics.c src/common/metrics.h \
	src/common/clock.c src/common/clock.h
ARFLAGS = cr
