/*
 * kvfs put, get and delete: the single-key commands.
 *
 * Every key goes in the query (/kv?key=<percent-encoded>), never in the path,
 * so "batch", "range" and keys with '/' need no special case.
 * Revisions travel in the ETag / If-Match headers as the REST API defines.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/codec.h"
#include "cli/input.h"

enum {
	OPT_FILE = 1,
	OPT_JSON_VALUE,
	OPT_RAW,
	OPT_IF_MATCH,
	OPT_IF_ABSENT,
	OPT_REV,
	OPT_STALE,
};

struct kv_opts {
	struct cli_ctx *ctx;
	const char *file;
	const char *if_match;
	int json_value;
	int raw;
	int if_absent;
	int rev;
	int stale;
};

static int on_kv_opt(void *ud, int id, const char *arg)
{
	struct kv_opts *o = ud;
	unsigned long long rev;

	switch (id) {
	case OPT_FILE:
		o->file = arg;
		break;
	case OPT_JSON_VALUE:
		o->json_value = 1;
		break;
	case OPT_RAW:
		o->raw = 1;
		break;
	case OPT_IF_MATCH:
		if (cli_parse_u64(arg, &rev)) {
			cli_usage_error(o->ctx, "bad revision '%s' for --if-match", arg);
			return -ECANCELED;
		}
		o->if_match = arg;
		break;
	case OPT_IF_ABSENT:
		o->if_absent = 1;
		break;
	case OPT_REV:
		o->rev = 1;
		break;
	case OPT_STALE:
		o->stale = 1;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

/* The revision a write or read reported: the ETag, else the body's
 * "revision". Returns 0 and fills buf, or -ENOENT. */
static int reply_revision(const struct cli_http_response *resp, char *buf, size_t len)
{
	json_t *doc, *rev;
	int rc = -ENOENT;

	if (resp->etag[0]) {
		snprintf(buf, len, "%s", resp->etag);
		return 0;
	}
	doc = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
	rev = json_object_get(doc, "revision");
	if (json_is_integer(rev)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(rev));
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

static void print_revision(struct cli_ctx *ctx, const struct cli_http_response *resp)
{
	char rev[64];

	if (reply_revision(resp, rev, sizeof(rev)) == 0)
		fprintf(ctx->err, "%s\n", rev);
	else
		fprintf(ctx->err, "kvfs: the server reported no revision\n");
}

/* Output of a successful write: the reply with --json, the revision with
 * --rev, nothing otherwise. */
static int write_done(struct cli_ctx *ctx, const struct kv_opts *o,
		      const struct cli_http_response *resp)
{
	int rc = CLI_EXIT_OK;

	if (ctx->json)
		rc = cli_print_body(ctx, resp);
	if (o->rev)
		print_revision(ctx, resp);
	return rc;
}

static const struct cli_optspec put_opts[] = {
	{"file", 'f', 1, OPT_FILE, NULL},
	{"json-value", 'J', 0, OPT_JSON_VALUE, NULL},
	{"raw", 'r', 0, OPT_RAW, NULL},
	{"if-match", 'm', 1, OPT_IF_MATCH, NULL},
	{"if-absent", 'a', 0, OPT_IF_ABSENT, NULL},
	{"rev", 0, 0, OPT_REV, NULL},
	{NULL, 0, 0, 0, NULL},
};

int cli_cmd_put(struct cli_ctx *ctx, int argc, char **argv)
{
	struct kv_opts o = {.ctx = ctx};
	struct cli_buf value = CLI_BUF_INIT, body = CLI_BUF_INIT, target = CLI_BUF_INIT;
	struct cli_http_response resp;
	struct cli_http_request req = {0};
	enum cli_value_mode mode;
	const char *what_path = NULL;
	char err[256], what[64];
	int n, status, rc;

	n = cli_parse_command(ctx, argc, argv, put_opts, on_kv_opt, &o, &status);
	if (n < 0)
		return status;
	if (n == 0)
		return cli_usage_error(ctx, "put needs a KEY");
	if (n > 2 || (n == 2 && o.file))
		return cli_usage_error(ctx, "put takes one KEY and one value (argument, -f FILE or stdin)");
	if (o.raw && o.json_value)
		return cli_usage_error(ctx, "--raw and --json-value exclude each other");
	if (o.if_match && o.if_absent)
		return cli_usage_error(ctx, "--if-match and --if-absent exclude each other");

	cli_http_response_init(&resp);
	if (o.file)
		what_path = o.file;
	else if (n == 1 || strcmp(argv[1], "-") == 0)
		what_path = "-";
	if (what_path) {
		rc = cli_read_path(what_path, &value);
		if (rc) {
			status = cli_fail(ctx, CLI_EXIT_ERROR, "cannot read %s: %s",
					  strcmp(what_path, "-") ? what_path : "standard input",
					  strerror(-rc));
			goto out;
		}
	} else if (cli_buf_puts(&value, argv[1])) {
		goto err_nomem;
	}

	mode = o.raw ? CLI_VALUE_RAW : o.json_value ? CLI_VALUE_JSON : CLI_VALUE_STRING;
	rc = cli_put_body(value.data ? value.data : "", value.len, mode, &body, &req.content_type,
			  err, sizeof(err));
	if (rc == -EINVAL) {
		status = cli_usage_error(ctx, "%s", err);
		goto out;
	}
	if (rc || cli_kv_target(argv[0], strlen(argv[0]), NULL, &target))
		goto err_nomem;

	req.method = "PUT";
	req.target = target.data;
	req.body = body.data ? body.data : "";
	req.body_len = body.len;
	req.if_match = o.if_match;
	req.if_none_match_any = o.if_absent;
	snprintf(what, sizeof(what), "put %.50s", argv[0]);
	status = cli_call(ctx, what, &req, &resp);
	if (status == CLI_EXIT_OK)
		status = write_done(ctx, &o, &resp);
	goto out;

err_nomem:
	status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
out:
	cli_http_response_free(&resp);
	cli_buf_free(&target);
	cli_buf_free(&body);
	cli_buf_free(&value);
	return status;
}

static const struct cli_optspec get_opts[] = {
	{"raw", 'r', 0, OPT_RAW, NULL},
	{"stale", 's', 0, OPT_STALE, NULL},
	{"rev", 0, 0, OPT_REV, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* Prints a GET reply as the options ask. */
static int print_get(struct cli_ctx *ctx, const struct kv_opts *o,
		     const struct cli_http_response *resp)
{
	struct cli_buf out = CLI_BUF_INIT;
	json_t *doc = NULL;
	char rev[64];
	int status;

	if (o->raw) {
		status = cli_write(ctx, resp->body.data, resp->body.len);
		goto out;
	}
	if (ctx->json && !o->rev) {
		status = cli_print_body(ctx, resp);
		goto out;
	}
	doc = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, JSON_ALLOW_NUL,
			 NULL);
	if (!json_is_object(doc)) {
		status = cli_fail(ctx, CLI_EXIT_ERROR, "get: the server's reply is not a JSON object");
		goto out;
	}
	if (ctx->json) {
		/* --json --rev: the reply with the revision added. */
		if (reply_revision(resp, rev, sizeof(rev)) == 0)
			json_object_set_new(doc, "revision",
					    json_integer(strtoll(rev, NULL, 10)));
		if (cli_json_compact(doc, &out) || cli_buf_putc(&out, '\n'))
			goto err_render;
	} else {
		if (cli_render_value(doc, &out) || cli_buf_putc(&out, '\n'))
			goto err_render;
	}
	status = cli_write(ctx, out.data, out.len);
	if (status == CLI_EXIT_OK && o->rev && !ctx->json)
		print_revision(ctx, resp);
	goto out;

err_render:
	status = cli_fail(ctx, CLI_EXIT_ERROR, "get: cannot render the server's reply");
out:
	json_decref(doc);
	cli_buf_free(&out);
	return status;
}

int cli_cmd_get(struct cli_ctx *ctx, int argc, char **argv)
{
	struct kv_opts o = {.ctx = ctx};
	struct cli_buf target = CLI_BUF_INIT;
	struct cli_http_response resp;
	struct cli_http_request req = {0};
	char what[64];
	int n, status;

	n = cli_parse_command(ctx, argc, argv, get_opts, on_kv_opt, &o, &status);
	if (n < 0)
		return status;
	if (n != 1)
		return cli_usage_error(ctx, "get takes exactly one KEY");
	if (o.raw && ctx->json)
		return cli_usage_error(ctx, "--raw and --json exclude each other");

	cli_http_response_init(&resp);
	if (cli_kv_target(argv[0], strlen(argv[0]), o.stale ? "consistency=stale" : NULL, &target)) {
		status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
		goto out;
	}
	req.method = "GET";
	req.target = target.data;
	req.accept = o.raw ? "application/octet-stream" : NULL;
	snprintf(what, sizeof(what), "get %.50s", argv[0]);
	status = cli_call(ctx, what, &req, &resp);
	if (status == CLI_EXIT_OK)
		status = print_get(ctx, &o, &resp);
out:
	cli_http_response_free(&resp);
	cli_buf_free(&target);
	return status;
}

static const struct cli_optspec delete_opts[] = {
	{"if-match", 'm', 1, OPT_IF_MATCH, NULL},
	{"rev", 0, 0, OPT_REV, NULL},
	{NULL, 0, 0, 0, NULL},
};

int cli_cmd_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	struct kv_opts o = {.ctx = ctx};
	struct cli_buf target = CLI_BUF_INIT;
	struct cli_http_response resp;
	struct cli_http_request req = {0};
	char what[64];
	int n, status;

	n = cli_parse_command(ctx, argc, argv, delete_opts, on_kv_opt, &o, &status);
	if (n < 0)
		return status;
	if (n != 1)
		return cli_usage_error(ctx, "delete takes exactly one KEY");

	cli_http_response_init(&resp);
	if (cli_kv_target(argv[0], strlen(argv[0]), NULL, &target)) {
		status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
		goto out;
	}
	req.method = "DELETE";
	req.target = target.data;
	req.if_match = o.if_match;
	snprintf(what, sizeof(what), "delete %.50s", argv[0]);
	status = cli_call(ctx, what, &req, &resp);
	if (status == CLI_EXIT_OK)
		status = write_done(ctx, &o, &resp);
out:
	cli_http_response_free(&resp);
	cli_buf_free(&target);
	return status;
}
