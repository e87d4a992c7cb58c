/*
 * kvfs status: what one node says about itself (/health) and about its
 * followers (/debug/replication), as a readable summary or as JSON.
 *
 * Without --all the first endpoint that answers is described (the usual
 * failover); with --all every endpoint is asked in turn and one that cannot
 * answer is reported without stopping the others.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "cli/cli.h"

enum { OPT_ALL = 1 };

static const struct cli_optspec status_opts[] = {
	{"all", 'a', 0, OPT_ALL, NULL},
	{NULL, 0, 0, 0, NULL},
};

static int on_status_opt(void *ud, int id, const char *arg)
{
	int *all = ud;

	if (id != OPT_ALL)
		return -EINVAL;
	*all = 1;
	return 0;
}

static json_t *parse_object(const struct cli_http_response *resp)
{
	json_t *doc = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);

	if (!json_is_object(doc)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* Fetches path from endpoint i (or with failover when i < 0) into *doc.
 * Returns an exit status; errors are printed. */
static int fetch(struct cli_ctx *ctx, struct cli_http *h, long i, const char *path,
		 json_t **doc, const char **endpoint)
{
	struct cli_http_request req = {.method = "GET", .target = path};
	struct cli_http_response resp;
	struct cli_buf detail = CLI_BUF_INIT;
	char err[1024], what[64];
	int status, rc;

	cli_http_response_init(&resp);
	snprintf(what, sizeof(what), "status: %s", path);
	if (i < 0) {
		status = cli_call(ctx, what, &req, &resp);
	} else {
		rc = cli_http_do_at(h, (size_t)i, &req, &resp, err, sizeof(err));
		if (rc == -EHOSTUNREACH)
			status = cli_fail(ctx, CLI_EXIT_UNAVAILABLE, "%s", err);
		else if (rc)
			status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
		else if ((status = cli_exit_for_status(resp.status)) != CLI_EXIT_OK) {
			cli_render_error_detail(resp.body.data, resp.body.len, &detail);
			cli_fail(ctx, status, "%s%s: %s (HTTP %ld)", resp.endpoint, path,
				 detail.data ? detail.data : "", resp.status);
			cli_buf_free(&detail);
		}
	}
	if (status == CLI_EXIT_OK) {
		*doc = parse_object(&resp);
		if (!*doc)
			status = cli_fail(ctx, CLI_EXIT_ERROR, "%s: the reply is not a JSON object", what);
		*endpoint = resp.endpoint;
	}
	cli_http_response_free(&resp);
	return status;
}

/* Describes one node: endpoint index i, or the first that answers (i < 0). */
static int status_one(struct cli_ctx *ctx, struct cli_http *h, long i, json_t *all_docs)
{
	struct cli_buf out = CLI_BUF_INIT;
	json_t *health = NULL, *repl = NULL, *doc = NULL;
	const char *endpoint = NULL;
	int status;

	status = fetch(ctx, h, i, "/health", &health, &endpoint);
	if (status != CLI_EXIT_OK)
		goto out;
	/* Same node for the second request: the one that just answered. */
	for (i = 0; (size_t)i < cli_http_endpoint_count(h); i++)
		if (cli_http_endpoint(h, (size_t)i) == endpoint)
			break;
	status = fetch(ctx, h, i, "/debug/replication", &repl, &endpoint);
	if (status != CLI_EXIT_OK)
		goto out;

	if (ctx->json) {
		doc = json_pack("{s:s,s:O,s:O}", "endpoint", endpoint, "health", health,
				"replication", repl);
		if (!doc)
			goto err_nomem;
		if (all_docs) {
			json_array_append(all_docs, doc);
			goto out;
		}
		if (cli_json_compact(doc, &out) || cli_buf_putc(&out, '\n'))
			goto err_nomem;
	} else {
		if (all_docs && cli_http_endpoint(h, 0) != endpoint && cli_buf_putc(&out, '\n'))
			goto err_nomem;
		if (cli_render_status(endpoint, health, repl, &out))
			goto err_nomem;
	}
	status = cli_write(ctx, out.data, out.len);
	goto out;

err_nomem:
	status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
out:
	json_decref(doc);
	json_decref(repl);
	json_decref(health);
	cli_buf_free(&out);
	return status;
}

int cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_buf out = CLI_BUF_INIT;
	struct cli_http *h;
	json_t *docs = NULL;
	int all = 0, n, status, worst = CLI_EXIT_OK;
	size_t i;

	n = cli_parse_command(ctx, argc, argv, status_opts, on_status_opt, &all, &status);
	if (n < 0)
		return status;
	if (n)
		return cli_usage_error(ctx, "status takes no operand");
	h = cli_ctx_http(ctx);
	if (!h)
		return CLI_EXIT_USAGE;
	if (!all)
		return status_one(ctx, h, -1, NULL);

	/* --all: every endpoint; the exit status is the first failure's. */
	docs = ctx->json ? json_array() : NULL;
	for (i = 0; i < cli_http_endpoint_count(h); i++) {
		status = status_one(ctx, h, (long)i, docs);
		if (worst == CLI_EXIT_OK)
			worst = status;
	}
	if (docs) {
		if (cli_json_compact(docs, &out) || cli_buf_putc(&out, '\n'))
			status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
		else
			status = cli_write(ctx, out.data, out.len);
		if (worst == CLI_EXIT_OK)
			worst = status;
	}
	json_decref(docs);
	cli_buf_free(&out);
	return worst;
}
