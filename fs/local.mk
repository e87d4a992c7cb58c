# FUSE front end (fs/): the keyspace mounted as a directory tree.
noinst_LIBRARIES += libkvfsfs.a
libkvfsfs_a_SOURCES = \
	fs/fs.c fs/fs.h fs/fs_internal.h \
	fs/fs_name.c fs/fs_inode.c fs/fs_data.c fs/fs_async.c \
	fs/fs_ops.c fs/fs_file.c fs/fs_dir.c fs/fs_inval.c \
	fs/fs_metrics.c fs/fs_metrics.h
libkvfsfs_a_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS)

check_PROGRAMS += test_fs_name
TESTS += test_fs_name
UNIT_TESTS += test_fs_name
test_fs_name_SOURCES = tests/unit/test_fs_name.c
test_fs_name_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(FUSE3_CFLAGS)
test_fs_name_LDADD = libkvfsfs.a libkvfsstore.a libkvfscommon.a $(CMOCKA_LIBS) $(FUSE3_LIBS) \
	$(LEVELDB_LIBS) $(PTHREAD_LIBS)

TESTS += tests/integration/test_fs.py
EXTRA_DIST += tests/integration/test_fs.py tests/lib/fsharness.py bench/fs_bench.py
