/*
 * kvfs range: keys (and values) between two keys or under a prefix, in key
 * order, paging through POST /kv/range with the continuation token.
 *
 * Output is streamed page by page — the client never holds more than one
 * page — including with --json, where one {"results":[...]} document is
 * written incrementally. Each page asks for at most what --limit still
 * allows, so when the limit stops the listing exactly at a page boundary the
 * server's token is the right place to resume; --json then reports it as
 * "continue".
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { OPT_PREFIX = 1, OPT_LIMIT, OPT_KEYS_ONLY, OPT_PAGE_SIZE };

#define RANGE_DEFAULT_PAGE 1000

struct range_opts {
	struct cli_ctx *ctx;
	const char *prefix;
	unsigned long long limit; /* 0: no limit */
	unsigned long long page;
	int keys_only;
};

static const struct cli_optspec range_opts_table[] = {
	{"prefix", 'p', 1, OPT_PREFIX, NULL},
	{"limit", 'n', 1, OPT_LIMIT, NULL},
	{"keys-only", 'k', 0, OPT_KEYS_ONLY, NULL},
	{"page-size", 0, 1, OPT_PAGE_SIZE, NULL},
	{NULL, 0, 0, 0, NULL},
};

static int on_range_opt(void *ud, int id, const char *arg)
{
	struct range_opts *o = ud;

	switch (id) {
	case OPT_PREFIX:
		o->prefix = arg;
		return 0;
	case OPT_KEYS_ONLY:
		o->keys_only = 1;
		return 0;
	case OPT_LIMIT:
		if (cli_parse_u64(arg, &o->limit) || o->limit == 0) {
			cli_usage_error(o->ctx, "bad --limit '%s' (want a count > 0)", arg);
			return -ECANCELED;
		}
		return 0;
	case OPT_PAGE_SIZE:
		if (cli_parse_u64(arg, &o->page) || o->page == 0 || o->page > 1000000) {
			cli_usage_error(o->ctx, "bad --page-size '%s' (want 1..1000000)", arg);
			return -ECANCELED;
		}
		return 0;
	default:
		return -EINVAL;
	}
}

/* Sets member name of req to the string s; -EINVAL when s is not UTF-8. */
static int set_key(json_t *req, const char *name, const char *s)
{
	json_t *v = json_string(s);

	if (!v)
		return -EINVAL;
	return json_object_set_new(req, name, v) ? -ENOMEM : 0;
}

/* Appends one result to out as the user sees it. */
static int render_result(const struct cli_ctx *ctx, const struct range_opts *o, const json_t *item,
			 int first, struct cli_buf *out)
{
	int rc;

	if (ctx->json) {
		rc = first ? 0 : cli_buf_putc(out, ',');
		return rc ? rc : cli_json_compact(item, out);
	}
	rc = cli_render_key(item, out);
	if (!rc && !o->keys_only) {
		rc = cli_buf_putc(out, '\t');
		if (!rc)
			rc = cli_render_value(item, out);
	}
	return rc ? rc : cli_buf_putc(out, '\n');
}

int cli_cmd_range(struct cli_ctx *ctx, int argc, char **argv)
{
	struct range_opts o = {.ctx = ctx, .page = RANGE_DEFAULT_PAGE};
	struct cli_buf body = CLI_BUF_INIT, out = CLI_BUF_INIT;
	struct cli_http_response resp;
	struct cli_http_request req = {0};
	unsigned long long printed = 0, want;
	json_t *rq = NULL, *reply = NULL, *results, *item, *token = NULL;
	size_t i;
	int n, status, rc, first = 1;

	n = cli_parse_command(ctx, argc, argv, range_opts_table, on_range_opt, &o, &status);
	if (n < 0)
		return status;
	if (o.prefix && n)
		return cli_usage_error(ctx, "give either START END or --prefix, not both");
	if (n == 1 || n > 2)
		return cli_usage_error(ctx, "range needs START and END, or --prefix PREFIX");

	cli_http_response_init(&resp);
	rq = json_object();
	if (!rq)
		goto err_nomem;
	rc = n == 2 ? set_key(rq, "start_key", argv[0]) : set_key(rq, "prefix", o.prefix ? o.prefix : "");
	if (!rc && n == 2)
		rc = set_key(rq, "end_key", argv[1]);
	if (rc == -EINVAL) {
		status = cli_usage_error(ctx, "range keys must be UTF-8 text");
		goto out;
	}
	if (rc || json_object_set_new(rq, "keys_only", json_boolean(o.keys_only)))
		goto err_nomem;
	if (ctx->json && cli_buf_puts(&out, "{\"results\":["))
		goto err_nomem;

	for (;;) {
		want = o.page;
		if (o.limit && o.limit - printed < want)
			want = o.limit - printed;
		if (json_object_set_new(rq, "limit", json_integer((json_int_t)want)))
			goto err_nomem;
		if (token && json_object_set(rq, "continue", token))
			goto err_nomem;
		cli_buf_reset(&body);
		if (cli_json_compact(rq, &body))
			goto err_nomem;
		req.method = "POST";
		req.target = "/kv/range";
		req.content_type = "application/json";
		req.body = body.data;
		req.body_len = body.len;
		status = cli_call(ctx, "range", &req, &resp);
		if (status != CLI_EXIT_OK)
			goto out;

		json_decref(reply);
		reply = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, JSON_ALLOW_NUL, NULL);
		results = json_object_get(reply, "results");
		if (!json_is_array(results)) {
			status = cli_fail(ctx, CLI_EXIT_ERROR, "range: the reply has no \"results\" array");
			goto out;
		}
		json_array_foreach(results, i, item) {
			if (o.limit && printed == o.limit)
				break;
			if (render_result(ctx, &o, item, first, &out)) {
				status = cli_fail(ctx, CLI_EXIT_ERROR, "range: cannot render result %zu", i + 1);
				goto out;
			}
			first = 0;
			printed++;
		}
		status = cli_write(ctx, out.data, out.len);
		if (status != CLI_EXIT_OK)
			goto out;
		cli_buf_reset(&out);

		item = json_object_get(reply, "continue");
		if (!json_is_string(item) || (o.limit && printed == o.limit))
			break;
		if (token && json_equal(token, item)) {
			status = cli_fail(ctx, CLI_EXIT_ERROR, "range: the server repeated its continuation token");
			goto out;
		}
		json_decref(token);
		token = json_incref(item);
	}

	if (ctx->json) {
		item = json_object_get(reply, "continue");
		if (cli_buf_putc(&out, ']') ||
		    (json_is_string(item) && (cli_buf_puts(&out, ",\"continue\":") ||
					      cli_json_compact(item, &out))) ||
		    cli_buf_puts(&out, "}\n"))
			goto err_nomem;
		status = cli_write(ctx, out.data, out.len);
	}
	goto out;

err_nomem:
	status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
out:
	json_decref(token);
	json_decref(reply);
	json_decref(rq);
	cli_http_response_free(&resp);
	cli_buf_free(&out);
	cli_buf_free(&body);
	return status;
}
