/*
 * Option and value parsing for the kvfs client.
 *
 * The parser is written here rather than taken from getopt_long() because
 * every subcommand parses its own table plus the common options, and getopt
 * keeps its state in globals (optind, optarg) that would have to be reset
 * between passes and in tests. Operands are compacted in place at the front
 * of argv, which is safe because the write position never overtakes the
 * read position.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

static const struct cli_optspec *find_long(const struct cli_optspec *t1,
					   const struct cli_optspec *t2, const char *name,
					   size_t len)
{
	const struct cli_optspec *tables[2] = {t1, t2};
	int i;

	for (i = 0; i < 2; i++) {
		const struct cli_optspec *s;

		for (s = tables[i]; s && s->name; s++)
			if (strlen(s->name) == len && memcmp(s->name, name, len) == 0)
				return s;
	}
	return NULL;
}

static const struct cli_optspec *find_short(const struct cli_optspec *t1,
					    const struct cli_optspec *t2, int c)
{
	const struct cli_optspec *tables[2] = {t1, t2};
	int i;

	for (i = 0; i < 2; i++) {
		const struct cli_optspec *s;

		for (s = tables[i]; s && s->name; s++)
			if (s->short_name && s->short_name == c)
				return s;
	}
	return NULL;
}

static int parse_long(int argc, char **argv, int *i, const struct cli_optspec *t1,
		      const struct cli_optspec *t2, const struct cli_opt_handler *h, char *err,
		      size_t err_len)
{
	const char *name = argv[*i] + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct cli_optspec *s = find_long(t1, t2, name, len);
	const char *arg = NULL;

	if (!s) {
		snprintf(err, err_len, "unknown option --%.*s", (int)len, name);
		return -EINVAL;
	}
	if (s->has_arg) {
		if (eq) {
			arg = eq + 1;
		} else if (*i + 1 < argc) {
			arg = argv[++*i];
		} else {
			snprintf(err, err_len, "option --%s needs a value", s->name);
			return -EINVAL;
		}
	} else if (eq) {
		snprintf(err, err_len, "option --%s takes no value", s->name);
		return -EINVAL;
	}
	return h->fn(h->ud, s->id, arg);
}

static int parse_short(int argc, char **argv, int *i, const struct cli_optspec *t1,
		       const struct cli_optspec *t2, const struct cli_opt_handler *h, char *err,
		       size_t err_len)
{
	const char *p = argv[*i] + 1;
	int rc;

	for (; *p; p++) {
		const struct cli_optspec *s = find_short(t1, t2, (unsigned char)*p);

		if (!s) {
			if (*p >= '0' && *p <= '9')
				snprintf(err, err_len,
					 "unknown option -%c (put \"--\" before an operand that "
					 "starts with '-')",
					 *p);
			else
				snprintf(err, err_len, "unknown option -%c", *p);
			return -EINVAL;
		}
		if (!s->has_arg) {
			rc = h->fn(h->ud, s->id, NULL);
			if (rc)
				return rc;
			continue;
		}
		if (p[1])
			return h->fn(h->ud, s->id, p + 1);
		if (*i + 1 >= argc) {
			snprintf(err, err_len, "option -%c needs a value", *p);
			return -EINVAL;
		}
		return h->fn(h->ud, s->id, argv[++*i]);
	}
	return 0;
}

int cli_args_parse(int argc, char **argv, const struct cli_optspec *table1,
		   const struct cli_optspec *table2, int stop_at_operand,
		   const struct cli_opt_handler *handler, char *err, size_t err_len)
{
	int i, nops = 0, rc;

	if (err_len)
		err[0] = '\0';
	for (i = 0; i < argc; i++) {
		char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++)
				argv[nops++] = argv[i];
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (stop_at_operand) {
				for (; i < argc; i++)
					argv[nops++] = argv[i];
				break;
			}
			argv[nops++] = a;
			continue;
		}
		if (a[1] == '-')
			rc = parse_long(argc, argv, &i, table1, table2, handler, err, err_len);
		else
			rc = parse_short(argc, argv, &i, table1, table2, handler, err, err_len);
		if (rc)
			return rc;
	}
	return nops;
}

void cli_endpoints_free(char **endpoints)
{
	char **p;

	if (!endpoints)
		return;
	for (p = endpoints; *p; p++)
		free(*p);
	free(endpoints);
}

static int endpoint_add(char ***list, size_t *n, const char *item, size_t len)
{
	const char *scheme = "";
	char **grown, *url;
	size_t slen;

	while (len && (*item == ' ' || *item == '\t')) {
		item++;
		len--;
	}
	while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
		len--;
	while (len && item[len - 1] == '/')
		len--;
	if (!len)
		return 0;
	if (!memmem(item, len, "://", 3))
		scheme = "http://";
	slen = strlen(scheme);
	url = malloc(slen + len + 1);
	if (!url)
		return -ENOMEM;
	memcpy(url, scheme, slen);
	memcpy(url + slen, item, len);
	url[slen + len] = '\0';
	grown = realloc(*list, (*n + 2) * sizeof(*grown));
	if (!grown) {
		free(url);
		return -ENOMEM;
	}
	grown[(*n)++] = url;
	grown[*n] = NULL;
	*list = grown;
	return 0;
}

int cli_endpoints_parse(const char *spec, char ***out, size_t *n)
{
	char **list = NULL;
	size_t count = 0;
	const char *p = spec;
	int rc;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		rc = endpoint_add(&list, &count, p, len);
		if (rc)
			goto err_free;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!count) {
		rc = -EINVAL;
		goto err_free;
	}
	*out = list;
	*n = count;
	return 0;

err_free:
	cli_endpoints_free(list);
	return rc;
}

int cli_parse_seconds(const char *text, double *seconds)
{
	char *end;
	double v;

	if (!*text || *text == ' ' || *text == '-' || *text == '+')
		return -EINVAL;
	errno = 0;
	v = strtod(text, &end);
	if (errno || *end || !isfinite(v) || v <= 0 || v > 1e6)
		return -EINVAL;
	*seconds = v;
	return 0;
}

int cli_parse_u64(const char *text, unsigned long long *value)
{
	unsigned long long v = 0;
	const char *p;

	if (!*text)
		return -EINVAL;
	for (p = text; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (0x7fffffffffffffffULL - (unsigned)(*p - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (unsigned)(*p - '0');
	}
	*value = v;
	return 0;
}
