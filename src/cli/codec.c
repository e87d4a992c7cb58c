/*
 * Key percent-encoding and base64 decoding.
 *
 * curl_easy_escape() would do for the percent-encoding except that it also
 * escapes '/', which keeps URLs of hierarchical keys (a/b/c) needlessly
 * unreadable in logs; this encoder is table-free and byte-exact instead. The
 * base64 decoder accepts what kvfsd emits for non-UTF-8 keys and values.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "cli/codec.h"

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int cli_percent_encode(const char *key, size_t len, struct cli_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	int rc;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];

		if (is_unreserved(c) || c == '/') {
			rc = cli_buf_putc(out, (char)c);
		} else {
			char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

			rc = cli_buf_append(out, esc, sizeof(esc));
		}
		if (rc)
			return rc;
	}
	return 0;
}

int cli_kv_target(const char *key, size_t len, const char *extra_query, struct cli_buf *out)
{
	int rc;

	cli_buf_reset(out);
	rc = cli_buf_puts(out, "/kv?key=");
	if (!rc)
		rc = cli_percent_encode(key, len, out);
	if (!rc && extra_query) {
		rc = cli_buf_putc(out, '&');
		if (!rc)
			rc = cli_buf_puts(out, extra_query);
	}
	return rc;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int cli_base64_decode(const char *text, size_t len, struct cli_buf *out)
{
	size_t start = out->len, i, pad = 0;
	unsigned int acc = 0;
	int bits = 0, rc;

	while (len > 0 && text[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if (pad && (len + pad) % 4 != 0)
		return -EINVAL;
	if (len % 4 == 1)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		int v = b64_value((unsigned char)text[i]);

		if (v < 0)
			goto err_malformed;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			rc = cli_buf_putc(out, (char)((acc >> bits) & 0xff));
			if (rc)
				goto err_restore;
		}
	}
	/* Leftover bits must be zero, as every encoder writes them. */
	if (acc & ((1u << bits) - 1))
		goto err_malformed;
	return 0;

err_malformed:
	rc = -EINVAL;
err_restore:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return rc;
}
