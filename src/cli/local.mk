# kvfs, the command-line client. Everything but main() is in libkvfscli.a so
# the unit tests link the same code the program runs.
noinst_LIBRARIES += libkvfscli.a
libkvfscli_a_SOURCES = \
	src/cli/cli.h src/cli/commands.c \
	src/cli/args.c src/cli/args.h \
	src/cli/buf.c src/cli/buf.h \
	src/cli/codec.c src/cli/codec.h \
	src/cli/http.c src/cli/http.h \
	src/cli/input.c src/cli/input.h \
	src/cli/output.c src/cli/output.h \
	src/cli/cmd_kv.c src/cli/cmd_batch.c src/cli/cmd_range.c \
	src/cli/cmd_status.c src/cli/cmd_member.c \
	src/cli/bench.h src/cli/bench_hist.c src/cli/bench_parse.c \
	src/cli/bench_work.c src/cli/bench_result.c src/cli/bench_engine.c \
	src/cli/bench_opts.c src/cli/bench_report.c src/cli/cmd_bench.c
libkvfscli_a_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)

KVFS_CLI_LIBS = libkvfscli.a libkvfscommon.a $(CURL_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm

bin_PROGRAMS += kvfs
kvfs_SOURCES = src/cli/main.c
kvfs_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
kvfs_LDADD = $(KVFS_CLI_LIBS)

# Unit tests (cmocka): pure functions of the client, no server needed.
KVFS_CLI_TESTS = test_cli_codec test_cli_args test_cli_input test_cli_output test_bench
check_PROGRAMS += $(KVFS_CLI_TESTS)
TESTS += $(KVFS_CLI_TESTS)
UNIT_TESTS += $(KVFS_CLI_TESTS)

test_cli_codec_SOURCES = tests/unit/test_cli_codec.c
test_cli_codec_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
test_cli_codec_LDADD = $(KVFS_CLI_LIBS) $(CMOCKA_LIBS)

test_cli_args_SOURCES = tests/unit/test_cli_args.c
test_cli_args_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
test_cli_args_LDADD = $(KVFS_CLI_LIBS) $(CMOCKA_LIBS)

test_cli_input_SOURCES = tests/unit/test_cli_input.c
test_cli_input_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
test_cli_input_LDADD = $(KVFS_CLI_LIBS) $(CMOCKA_LIBS)

test_cli_output_SOURCES = tests/unit/test_cli_output.c
test_cli_output_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
test_cli_output_LDADD = $(KVFS_CLI_LIBS) $(CMOCKA_LIBS)

test_bench_SOURCES = tests/unit/test_bench.c
test_bench_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
test_bench_LDADD = $(KVFS_CLI_LIBS) $(CMOCKA_LIBS)

# Integration test: one real kvfsd and every kvfs command against it.
TESTS += tests/integration/cli.sh
dist_noinst_SCRIPTS += tests/integration/cli.sh

# Integration test of kvfs bench: every workload, bounded, with --verify.
TESTS += tests/integration/bench.sh
dist_noinst_SCRIPTS += tests/integration/bench.sh
