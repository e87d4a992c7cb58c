noinst_LIBRARIES += libkvfsstore.a
libkvfsstore_a_SOURCES = \
	src/store/record.c src/store/record.h \
	src/store/txn.c src/store/txn.h \
	src/store/kv.c src/store/kv.h src/store/kv_internal.h \
	src/store/kv_apply.c src/store/kv_pending.c src/store/kv_snap.c src/store/kv_bloom.c src/store/kv_wal.c \
	src/store/kv_meta.c \
	src/store/kv_env.cc src/store/kv_env.h src/store/kv_crc.cc \
	src/store/log.c src/store/log.h
