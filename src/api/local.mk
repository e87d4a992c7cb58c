noinst_LIBRARIES += libkvfsapi.a
libkvfsapi_a_SOURCES = \
	src/api/http.c src/api/http.h src/api/http_internal.h \
	src/api/api_kv.c src/api/api_status.c src/api/api_cluster.c \
	src/api/json_text.c src/api/json_text.h
libkvfsapi_a_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)

check_PROGRAMS += test_json_text
TESTS += test_json_text
UNIT_TESTS += test_json_text
test_json_text_SOURCES = tests/unit/test_json_text.c
test_json_text_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(MHD_CFLAGS)
test_json_text_LDADD = libkvfsapi.a libkvfsnode.a libkvfsnet.a libkvfsraft.a libkvfsstore.a \
	libkvfscommon.a $(CMOCKA_LIBS) $(MHD_LIBS) $(JANSSON_LIBS) $(ZMQ_LIBS) $(LEVELDB_LIBS) \
	$(PTHREAD_LIBS)
