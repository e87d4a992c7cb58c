/*
 * kvfs member list|add|remove|promote and kvfs leader transfer: the cluster
 * administration commands over /cluster/members and /cluster/leader/transfer.
 *
 * Any node accepts these requests (followers forward them to the leader), so
 * they use the ordinary failover. A membership change is one configuration
 * entry on the server; the client only reports the outcome.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "cli/cli.h"

enum { OPT_LEARNER = 1 };

static const struct cli_optspec no_opts[] = {
	{NULL, 0, 0, 0, NULL},
};

static const struct cli_optspec add_opts[] = {
	{"learner", 'l', 0, OPT_LEARNER, NULL},
	{NULL, 0, 0, 0, NULL},
};

static int on_member_opt(void *ud, int id, const char *arg)
{
	int *learner = ud;

	if (id != OPT_LEARNER)
		return -EINVAL;
	*learner = 1;
	return 0;
}

/* Sends one administration request and prints the outcome: the reply with
 * --json, done (a confirmation line) otherwise. body is borrowed, may be NULL. */
static int admin_request(struct cli_ctx *ctx, const char *what, const char *method,
			 const char *target, const json_t *body, const char *done)
{
	struct cli_buf text = CLI_BUF_INIT;
	struct cli_http_request req = {.method = method, .target = target};
	struct cli_http_response resp;
	int status;

	cli_http_response_init(&resp);
	if (body) {
		if (cli_json_compact(body, &text)) {
			status = cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
			goto out;
		}
		req.body = text.data;
		req.body_len = text.len;
		req.content_type = "application/json";
	}
	status = cli_call(ctx, what, &req, &resp);
	if (status != CLI_EXIT_OK)
		goto out;
	if (ctx->json)
		status = cli_print_body(ctx, &resp);
	else if (done)
		fprintf(ctx->out, "%s\n", done);
out:
	cli_http_response_free(&resp);
	cli_buf_free(&text);
	return status;
}

/* Parses a member id operand; prints a usage error and returns -1 if bad. */
static int parse_id(struct cli_ctx *ctx, const char *text, unsigned long long *id)
{
	if (cli_parse_u64(text, id) || *id == 0) {
		cli_usage_error(ctx, "bad member id '%s' (want an integer > 0)", text);
		return -1;
	}
	return 0;
}

int cli_cmd_member_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_http_request req = {.method = "GET", .target = "/cluster/members"};
	struct cli_http_response resp;
	struct cli_buf out = CLI_BUF_INIT;
	json_t *doc = NULL;
	int n, status;

	n = cli_parse_command(ctx, argc, argv, no_opts, NULL, NULL, &status);
	if (n < 0)
		return status;
	if (n)
		return cli_usage_error(ctx, "member list takes no operand");
	cli_http_response_init(&resp);
	status = cli_call(ctx, "member list", &req, &resp);
	if (status != CLI_EXIT_OK)
		goto out;
	if (ctx->json) {
		status = cli_print_body(ctx, &resp);
		goto out;
	}
	doc = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
	if (cli_render_members(doc, &out)) {
		status = cli_fail(ctx, CLI_EXIT_ERROR, "member list: the reply has no \"members\" array");
		goto out;
	}
	status = cli_write(ctx, out.data, out.len);
out:
	json_decref(doc);
	cli_buf_free(&out);
	cli_http_response_free(&resp);
	return status;
}

int cli_cmd_member_add(struct cli_ctx *ctx, int argc, char **argv)
{
	unsigned long long id;
	char done[128];
	json_t *body;
	int learner = 0, n, status;

	n = cli_parse_command(ctx, argc, argv, add_opts, on_member_opt, &learner, &status);
	if (n < 0)
		return status;
	if (n != 2 && n != 3)
		return cli_usage_error(ctx, "member add needs ID PEER_URL");
	if (parse_id(ctx, argv[0], &id))
		return CLI_EXIT_USAGE;
	/* A third argument (the HTTP address, which older versions asked
	 * for) is accepted and not sent: each node advertises its own. */
	body = json_pack("{s:I,s:s,s:b}", "id", (json_int_t)id, "peer", argv[1], "learner",
			 learner);
	if (!body)
		return cli_usage_error(ctx, "PEER_URL must be UTF-8 text");
	snprintf(done, sizeof(done), "member %llu added%s", id, learner ? " as a learner" : "");
	status = admin_request(ctx, "member add", "POST", "/cluster/members", body, done);
	json_decref(body);
	return status;
}

/* member remove and member promote: one id, no body. */
static int member_id_command(struct cli_ctx *ctx, int argc, char **argv, const char *verb)
{
	unsigned long long id;
	char target[96], what[64], done[96];
	int n, status, promote = strcmp(verb, "promote") == 0;
	json_t *empty = NULL;

	n = cli_parse_command(ctx, argc, argv, no_opts, NULL, NULL, &status);
	if (n < 0)
		return status;
	if (n != 1)
		return cli_usage_error(ctx, "member %s needs one ID", verb);
	if (parse_id(ctx, argv[0], &id))
		return CLI_EXIT_USAGE;
	snprintf(target, sizeof(target), "/cluster/members/%llu%s", id, promote ? "/promote" : "");
	snprintf(what, sizeof(what), "member %s %llu", verb, id);
	snprintf(done, sizeof(done), "member %llu %s", id, promote ? "promoted" : "removed");
	if (promote) {
		empty = json_object();
		if (!empty)
			return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
	}
	status = admin_request(ctx, what, promote ? "POST" : "DELETE", target, empty, done);
	json_decref(empty);
	return status;
}

int cli_cmd_member_remove(struct cli_ctx *ctx, int argc, char **argv)
{
	return member_id_command(ctx, argc, argv, "remove");
}

int cli_cmd_member_promote(struct cli_ctx *ctx, int argc, char **argv)
{
	return member_id_command(ctx, argc, argv, "promote");
}

int cli_cmd_leader_transfer(struct cli_ctx *ctx, int argc, char **argv)
{
	unsigned long long id = 0;
	char done[96];
	json_t *body;
	int n, status;

	n = cli_parse_command(ctx, argc, argv, no_opts, NULL, NULL, &status);
	if (n < 0)
		return status;
	if (n > 1)
		return cli_usage_error(ctx, "leader transfer takes at most one ID");
	if (n == 1 && parse_id(ctx, argv[0], &id))
		return CLI_EXIT_USAGE;
	body = n ? json_pack("{s:I}", "id", (json_int_t)id) : json_object();
	if (!body)
		return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
	if (n)
		snprintf(done, sizeof(done), "leadership transfer to member %llu accepted", id);
	else
		snprintf(done, sizeof(done), "leadership transfer accepted");
	status = admin_request(ctx, "leader transfer", "POST", "/cluster/leader/transfer", body,
			       done);
	json_decref(body);
	return status;
}
