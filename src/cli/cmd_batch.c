/*
 * kvfs batch: many puts in one atomic write (PUT /kv/batch).
 *
 * The whole input is read and turned into one request body; the client never
 * splits a batch, because splitting would silently give up atomicity. The
 * server's item and body limits apply (413 → exit 4).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/input.h"

enum { OPT_JSON_VALUES = 1, OPT_REV };

struct batch_opts {
	int json_values;
	int rev;
};

static const struct cli_optspec batch_opts_table[] = {
	{"json-values", 'J', 0, OPT_JSON_VALUES, NULL},
	{"rev", 0, 0, OPT_REV, NULL},
	{NULL, 0, 0, 0, NULL},
};

static int on_batch_opt(void *ud, int id, const char *arg)
{
	struct batch_opts *o = ud;

	if (id == OPT_JSON_VALUES)
		o->json_values = 1;
	else if (id == OPT_REV)
		o->rev = 1;
	else
		return -EINVAL;
	return 0;
}

int cli_cmd_batch(struct cli_ctx *ctx, int argc, char **argv)
{
	struct batch_opts o = {0, 0};
	struct cli_buf input = CLI_BUF_INIT, body = CLI_BUF_INIT;
	struct cli_http_response resp;
	struct cli_http_request req = {0};
	const char *path;
	json_t *doc = NULL, *rev;
	char err[256];
	int n, status, rc;

	n = cli_parse_command(ctx, argc, argv, batch_opts_table, on_batch_opt, &o, &status);
	if (n < 0)
		return status;
	if (n > 1)
		return cli_usage_error(ctx, "batch takes at most one FILE");
	path = n == 1 ? argv[0] : "-";

	cli_http_response_init(&resp);
	rc = cli_read_path(path, &input);
	if (rc) {
		status = cli_fail(ctx, CLI_EXIT_ERROR, "cannot read %s: %s",
				  strcmp(path, "-") ? path : "standard input", strerror(-rc));
		goto out;
	}
	rc = cli_batch_parse(input.data ? input.data : "", input.len, o.json_values, &doc, err,
			     sizeof(err));
	if (rc == -EINVAL) {
		status = cli_fail(ctx, CLI_EXIT_USAGE, "batch input %s: %s",
				  strcmp(path, "-") ? path : "(stdin)", err);
		goto out;
	}
	if (rc || cli_json_compact(doc, &body)) {
		status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
		goto out;
	}

	req.method = "PUT";
	req.target = "/kv/batch";
	req.content_type = "application/json";
	req.body = body.data;
	req.body_len = body.len;
	status = cli_call(ctx, "batch", &req, &resp);
	if (status != CLI_EXIT_OK)
		goto out;
	if (ctx->json)
		status = cli_print_body(ctx, &resp);
	if (o.rev) {
		json_decref(doc);
		doc = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
		rev = json_object_get(doc, "revision");
		if (resp.etag[0])
			fprintf(ctx->err, "%s\n", resp.etag);
		else if (json_is_integer(rev))
			fprintf(ctx->err, "%" JSON_INTEGER_FORMAT "\n", json_integer_value(rev));
		else
			fprintf(ctx->err, "kvfs: the server reported no revision\n");
	}
out:
	json_decref(doc);
	cli_http_response_free(&resp);
	cli_buf_free(&body);
	cli_buf_free(&input);
	return status;
}
