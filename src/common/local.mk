noinst_LIBRARIES += libkvfscommon.a
libkvfscommon_a_SOURCES = \
	src/common/err.c src/common/err.h \
	src/common/log.c src/common/log.h \
	src/common/bytes.c src/common/bytes.h
