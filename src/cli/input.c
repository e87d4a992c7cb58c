/*
 * Reading values and batch input for the kvfs client.
 *
 * Values are taken byte for byte: a value read from a file or stdin keeps its
 * trailing newline, because the store holds bytes and a client that trims
 * would make `kvfs put k -f file; kvfs get --raw k` differ from the file.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/input.h"

int cli_read_stream(FILE *f, struct cli_buf *out)
{
	char chunk[65536];
	size_t n;
	int rc;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rc = cli_buf_append(out, chunk, n);
		if (rc)
			return rc;
	}
	if (ferror(f))
		return errno ? -errno : -EIO;
	return 0;
}

int cli_read_path(const char *path, struct cli_buf *out)
{
	FILE *f;
	int rc;

	if (strcmp(path, "-") == 0)
		return cli_read_stream(stdin, out);
	f = fopen(path, "rb");
	if (!f)
		return -errno;
	rc = cli_read_stream(f, out);
	fclose(f);
	return rc;
}

int cli_put_body(const char *value, size_t len, enum cli_value_mode mode, struct cli_buf *body,
		 const char **content_type, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *v;
	char *text;
	int rc;

	cli_buf_reset(body);
	switch (mode) {
	case CLI_VALUE_RAW:
		*content_type = "application/octet-stream";
		return cli_buf_append(body, value, len);
	case CLI_VALUE_JSON:
		v = json_loadb(value, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (!v) {
			snprintf(err, err_len, "value is not valid JSON: %s (at byte %d)", jerr.text,
				 jerr.position);
			return -EINVAL;
		}
		json_decref(v);
		*content_type = "application/json";
		return cli_buf_append(body, value, len);
	case CLI_VALUE_STRING:
		break;
	}
	v = json_stringn(value, len);
	if (!v) {
		snprintf(err, err_len, "value is not valid UTF-8 text (use --raw to store bytes)");
		return -EINVAL;
	}
	text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(v);
	if (!text)
		return -ENOMEM;
	*content_type = "application/json";
	rc = cli_buf_puts(body, text);
	free(text);
	return rc;
}

static int check_items(json_t *doc, char *err, size_t err_len)
{
	json_t *items = json_object_get(doc, "items"), *item;
	size_t i;

	if (!json_is_array(items)) {
		snprintf(err, err_len, "batch object has no \"items\" array");
		return -EINVAL;
	}
	json_array_foreach(items, i, item) {
		if (!json_is_string(json_object_get(item, "key")) ||
		    !json_object_get(item, "value")) {
			snprintf(err, err_len, "item %zu: needs a string \"key\" and a \"value\"",
				 i + 1);
			return -EINVAL;
		}
	}
	if (!json_array_size(items)) {
		snprintf(err, err_len, "batch has no items");
		return -EINVAL;
	}
	return 0;
}

static int parse_json_form(const char *data, size_t len, json_t **doc, char *err,
			   size_t err_len)
{
	json_error_t jerr;
	json_t *d;
	int rc;

	d = json_loadb(data, len, 0, &jerr);
	if (!d) {
		snprintf(err, err_len, "line %d: invalid JSON: %s", jerr.line, jerr.text);
		return -EINVAL;
	}
	rc = check_items(d, err, err_len);
	if (rc) {
		json_decref(d);
		return rc;
	}
	*doc = d;
	return 0;
}

static int add_line(json_t *items, const char *line, size_t len, unsigned long lineno,
		    int json_values, char *err, size_t err_len)
{
	const char *tab = memchr(line, '\t', len);
	json_error_t jerr;
	json_t *key, *value, *item;
	size_t vlen;

	if (!tab) {
		snprintf(err, err_len, "line %lu: no TAB between key and value", lineno);
		return -EINVAL;
	}
	key = json_stringn(line, (size_t)(tab - line));
	if (!key) {
		snprintf(err, err_len, "line %lu: key is not valid UTF-8 (use the JSON form)",
			 lineno);
		return -EINVAL;
	}
	vlen = len - (size_t)(tab + 1 - line);
	if (json_values) {
		value = json_loadb(tab + 1, vlen, JSON_DECODE_ANY, &jerr);
		if (!value)
			snprintf(err, err_len, "line %lu: value is not valid JSON: %s", lineno,
				 jerr.text);
	} else {
		value = json_stringn(tab + 1, vlen);
		if (!value)
			snprintf(err, err_len, "line %lu: value is not valid UTF-8", lineno);
	}
	if (!value) {
		json_decref(key);
		return -EINVAL;
	}
	item = json_object();
	if (!item || json_object_set_new(item, "key", key) ||
	    json_object_set_new(item, "value", value) || json_array_append_new(items, item)) {
		/* json_*_set_new() consume their argument even on failure. */
		return -ENOMEM;
	}
	return 0;
}

int cli_batch_parse(const char *data, size_t len, int json_values, json_t **doc, char *err,
		    size_t err_len)
{
	unsigned long lineno = 0;
	json_t *d, *items;
	size_t i = 0;
	int rc;

	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
		i++;
	if (i < len && data[i] == '{')
		return parse_json_form(data, len, doc, err, err_len);

	d = json_object();
	items = json_array();
	if (!d || !items || json_object_set_new(d, "items", items)) {
		json_decref(d);
		return -ENOMEM;
	}
	for (i = 0; i < len;) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - data) : len;

		lineno++;
		if (end > i) {
			rc = add_line(items, data + i, end - i, lineno, json_values, err, err_len);
			if (rc)
				goto err_free;
		}
		i = end + 1;
	}
	if (!json_array_size(items)) {
		snprintf(err, err_len, "batch has no items");
		rc = -EINVAL;
		goto err_free;
	}
	*doc = d;
	return 0;

err_free:
	json_decref(d);
	return rc;
}
