sbin_PROGRAMS += kvfsd
kvfsd_SOURCES = src/kvfsd.c
# fs: the FUSE front end (libkvfsfs.a, libfuse3).
kvfsd_LDADD = libkvfsfs.a libkvfsapi.a libkvfsnode.a libkvfsnet.a libkvfsraft.a libkvfsstore.a \
	libkvfscommon.a $(MHD_LIBS) $(ZMQ_LIBS) $(JANSSON_LIBS) $(LEVELDB_LIBS) $(FUSE3_LIBS) $(PTHREAD_LIBS)
