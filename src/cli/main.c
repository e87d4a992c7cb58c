/*
 * kvfs: the command-line client of the kvfs replicated key-value store.
 *
 * main() only sets up process-wide state (libcurl, the output streams) and
 * hands the command line to cli_main() in commands.c, where the command
 * table lives; everything it does is testable without a process.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
	struct cli_ctx ctx;
	int status;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fputs("kvfs: cannot initialise libcurl\n", stderr);
		return CLI_EXIT_ERROR;
	}
	cli_ctx_init(&ctx, stdout, stderr);
	status = cli_main(&ctx, argc, argv);
	cli_ctx_close(&ctx);
	curl_global_cleanup();
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kvfs: write error: %s\n", strerror(errno));
		if (status == CLI_EXIT_OK)
			status = CLI_EXIT_ERROR;
	}
	return status;
}
