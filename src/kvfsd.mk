sbin_PROGRAMS += kvfsd
kvfsd_SOURCES = src/kvfsd.c
kvfsd_LDADD = libkvfsapi.a libkvfsnode.a libkvfsnet.a libkvfsraft.a libkvfsstore.a \
	libkvfscommon.a $(MHD_LIBS) $(ZMQ_LIBS) $(JANSSON_LIBS) $(LEVELDB_LIBS) $(PTHREAD_LIBS)
