/*
 * Rendering of server answers for humans, and the mapping from HTTP statuses
 * to exit statuses.
 *
 * The client prints what the server sent, not a re-encoding of it: strings as
 * their raw text, other JSON values in compact form with reals written in
 * their shortest round-trip form (jansson's json_dumps() writes 17 digits,
 * turning 1.1 into 1.1000000000000001), keys and values sent in base64
 * decoded back to their bytes.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/codec.h"
#include "cli/output.h"

int cli_exit_for_status(long status)
{
	if (status >= 200 && status < 300)
		return CLI_EXIT_OK;
	if (status == 404)
		return CLI_EXIT_NOTFOUND;
	if (status == 409 || status == 412)
		return CLI_EXIT_PRECOND;
	if (status >= 400 && status < 500)
		return CLI_EXIT_REJECTED;
	if (status == 502 || status == 503 || status == 504)
		return CLI_EXIT_UNAVAILABLE;
	return CLI_EXIT_ERROR;
}

static int dump_string(const char *s, size_t len, struct cli_buf *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;
	int rc = cli_buf_putc(out, '"');

	for (i = 0; !rc && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 0, 0, 0, 0, 0};
		size_t elen = 2;

		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (c >= 0x20)
				continue;
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		/* Flush the run of plain bytes before this escape. */
		rc = cli_buf_append(out, s + run, i - run);
		if (!rc)
			rc = cli_buf_append(out, esc, elen);
		run = i + 1;
	}
	if (!rc)
		rc = cli_buf_append(out, s + run, len - run);
	if (!rc)
		rc = cli_buf_putc(out, '"');
	return rc;
}

static int dump_real(double d, struct cli_buf *out)
{
	char tmp[40];
	int prec;

	if (!isfinite(d))
		return -EINVAL;
	for (prec = 15; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof(tmp), "%.17g", d);
	if (!strpbrk(tmp, ".eE"))
		strcat(tmp, ".0");
	return cli_buf_puts(out, tmp);
}

int cli_json_compact(const json_t *v, struct cli_buf *out)
{
	const char *key;
	json_t *item;
	size_t i;
	int rc = 0, first = 1;

	if (!v)
		return -EINVAL;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		rc = cli_buf_putc(out, '{');
		json_object_foreach((json_t *)v, key, item) {
			if (!rc && !first)
				rc = cli_buf_putc(out, ',');
			first = 0;
			if (!rc)
				rc = dump_string(key, strlen(key), out);
			if (!rc)
				rc = cli_buf_putc(out, ':');
			if (!rc)
				rc = cli_json_compact(item, out);
			if (rc)
				return rc;
		}
		return cli_buf_putc(out, '}');
	case JSON_ARRAY:
		rc = cli_buf_putc(out, '[');
		json_array_foreach(v, i, item) {
			if (!rc && i)
				rc = cli_buf_putc(out, ',');
			if (!rc)
				rc = cli_json_compact(item, out);
			if (rc)
				return rc;
		}
		return cli_buf_putc(out, ']');
	case JSON_STRING:
		return dump_string(json_string_value(v), json_string_length(v), out);
	case JSON_INTEGER:
		return cli_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_REAL:
		return dump_real(json_real_value(v), out);
	case JSON_TRUE:
		return cli_buf_puts(out, "true");
	case JSON_FALSE:
		return cli_buf_puts(out, "false");
	case JSON_NULL:
		return cli_buf_puts(out, "null");
	}
	return -EINVAL;
}

/* Appends member name of obj, base64-decoded when obj[enc_name] is "base64";
 * strings as raw text when raw_strings, other values compact. */
static int render_member(const json_t *obj, const char *name, const char *enc_name,
			 struct cli_buf *out)
{
	const json_t *v = json_object_get(obj, name);
	const char *enc = json_string_value(json_object_get(obj, enc_name));

	if (!v)
		return -EPROTO;
	if (enc && strcmp(enc, "base64") == 0) {
		if (!json_is_string(v))
			return -EPROTO;
		return cli_base64_decode(json_string_value(v), json_string_length(v), out) == -EINVAL
			       ? -EPROTO
			       : 0;
	}
	if (json_is_string(v))
		return cli_buf_append(out, json_string_value(v), json_string_length(v));
	return cli_json_compact(v, out);
}

int cli_render_value(const json_t *obj, struct cli_buf *out)
{
	return render_member(obj, "value", "encoding", out);
}

int cli_render_key(const json_t *obj, struct cli_buf *out)
{
	if (!json_is_string(json_object_get(obj, "key")))
		return -EPROTO;
	return render_member(obj, "key", "key_encoding", out);
}

int cli_render_error_detail(const char *body, size_t len, struct cli_buf *out)
{
	json_t *doc = NULL, *detail, *item;
	size_t i;
	int rc;

	if (len)
		doc = json_loadb(body, len, 0, NULL);
	detail = json_object_get(doc, "detail");
	if (!detail) {
		if (!len)
			rc = cli_buf_puts(out, "(empty reply)");
		else
			rc = cli_buf_append(out, body, len > 200 ? 200 : len);
	} else if (json_is_string(detail)) {
		rc = cli_buf_puts(out, json_string_value(detail));
	} else if (json_is_array(detail)) {
		rc = 0;
		json_array_foreach(detail, i, item) {
			const json_t *msg = json_object_get(item, "msg");

			if (!rc && i)
				rc = cli_buf_puts(out, "; ");
			if (!rc)
				rc = json_is_string(msg) ? cli_buf_puts(out, json_string_value(msg))
							 : cli_json_compact(item, out);
		}
	} else {
		rc = cli_json_compact(detail, out);
	}
	json_decref(doc);
	return rc;
}

/* Writes a scalar JSON value as text into dst ("-" when absent or null). */
static const char *scalar_text(const json_t *v, char *dst, size_t len)
{
	if (!v) {
		snprintf(dst, len, "-");
		return dst;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		snprintf(dst, len, "%s", json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(dst, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(dst, len, "%.2f", json_real_value(v));
		break;
	case JSON_TRUE:
		snprintf(dst, len, "yes");
		break;
	case JSON_FALSE:
		snprintf(dst, len, "no");
		break;
	default:
		snprintf(dst, len, "-");
		break;
	}
	return dst;
}

static const char *field(const json_t *obj, const char *name, char *dst, size_t len)
{
	return scalar_text(json_object_get(obj, name), dst, len);
}

static void epoch_text(const json_t *v, char *dst, size_t len)
{
	double t = json_number_value(v);
	time_t secs = (time_t)t;
	struct tm tm;

	if (!json_is_number(v) || t <= 0 || !gmtime_r(&secs, &tm)) {
		snprintf(dst, len, "-");
		return;
	}
	strftime(dst, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

int cli_render_status(const char *endpoint, const json_t *health, const json_t *repl,
		      struct cli_buf *out)
{
	char a[128], b[128], c[128];
	const json_t *peers, *peer;
	const char *state = json_string_value(json_object_get(health, "status"));
	size_t i;
	int rc = 0;

	rc |= cli_buf_printf(out, "endpoint      %s\n", endpoint ? endpoint : "-");
	/* Why it is not ready, as /readyz says, where the node tells. */
	const char *why = json_string_value(json_object_get(health, "ready_detail"));
	if (json_is_true(json_object_get(health, "ready")))
		why = "ready";
	else if (!why)
		why = "not ready";
	rc |= cli_buf_printf(out, "node          %s (%s, %s, %s)\n", field(health, "node_id", a, sizeof(a)),
			     state ? state : "unknown", why,
			     json_is_true(json_object_get(health, "is_leader")) ? "leader" : "follower");
	/* The leader's member ID first: what `kvfs leader transfer` and
	 * `kvfs member` take. */
	const json_t *lid = json_object_get(health, "leader_id");
	field(health, "leader_node", a, sizeof(a));
	if (json_is_integer(lid) && json_integer_value(lid) > 0)
		rc |= cli_buf_printf(out, "leader        %lld (%s)\n",
				     (long long)json_integer_value(lid), a);
	else
		rc |= cli_buf_printf(out, "leader        %s\n", a);
	rc |= cli_buf_printf(out, "term          %s\n", field(health, "term", a, sizeof(a)));
	rc |= cli_buf_printf(out, "commit index  %s (applied %s)\n",
			     field(health, "commit_index", a, sizeof(a)),
			     field(health, "applied_index", b, sizeof(b)));
	rc |= cli_buf_printf(out, "cluster       %s nodes, %s connected\n",
			     field(health, "cluster_size", a, sizeof(a)),
			     field(health, "connected_nodes", b, sizeof(b)));
	epoch_text(json_object_get(health, "last_commit_time"), a, sizeof(a));
	rc |= cli_buf_printf(out, "last commit   %s\n", a);
	rc |= cli_buf_printf(out, "lag           %s s\n", field(health, "replication_lag", a, sizeof(a)));
	if (repl)
		rc |= cli_buf_printf(out, "keys          %s\n", field(repl, "data_size", a, sizeof(a)));
	peers = json_object_get(repl, "peers");
	if (json_is_array(peers) && json_array_size(peers)) {
		rc |= cli_buf_printf(out, "peers\n  %-6s %-28s %10s %8s %8s %-9s %s\n", "ID",
				     "ADDRESS", "MATCH", "LAG", "LAG(s)", "CONNECTED", "ROLE");
		json_array_foreach(peers, i, peer) {
			char d[64], e[64];

			rc |= cli_buf_printf(
				out, "  %-6s %-28s %10s %8s %8s %-9s %s\n",
				field(peer, "id", a, sizeof(a)), field(peer, "address", b, sizeof(b)),
				field(peer, "match_index", c, sizeof(c)),
				field(peer, "lag_entries", d, sizeof(d)),
				field(peer, "lag_seconds", e, sizeof(e)),
				json_is_true(json_object_get(peer, "connected")) ? "yes" : "no",
				json_is_true(json_object_get(peer, "learner")) ? "learner" : "voter");
		}
	}
	return rc ? -ENOMEM : 0;
}

int cli_render_members(const json_t *doc, struct cli_buf *out)
{
	const json_t *members = json_object_get(doc, "members"), *m;
	char a[128], b[128], c[128];
	size_t i;
	int rc;

	if (!json_is_array(members))
		return -EPROTO;
	rc = cli_buf_printf(out, "%-6s %-28s %-22s %s\n", "ID", "PEER", "HTTP", "ROLE");
	json_array_foreach(members, i, m) {
		const char *role = json_is_true(json_object_get(m, "leader"))	 ? "leader"
				   : json_is_true(json_object_get(m, "learner")) ? "learner"
										 : "voter";

		rc |= cli_buf_printf(out, "%-6s %-28s %-22s %s\n", field(m, "id", a, sizeof(a)),
				     field(m, "peer", b, sizeof(b)), field(m, "http", c, sizeof(c)),
				     role);
	}
	return rc ? -ENOMEM : 0;
}
