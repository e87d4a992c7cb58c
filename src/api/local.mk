noinst_LIBRARIES += libkvfsapi.a
libkvfsapi_a_SOURCES = \
	src/api/http.c src/api/http.h src/api/http_internal.h \
	src/api/api_kv.c src/api/api_status.c src/api/api_cluster.c \
	src/api/json_text.c src/api/json_text.h
libkvfsapi_a_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
