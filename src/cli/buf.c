/*
 * Growable byte buffer: doubling growth, always NUL-terminated, errors leave
 * the contents untouched so callers can report and bail out cleanly.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/buf.h"

void cli_buf_init(struct cli_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void cli_buf_free(struct cli_buf *b)
{
	free(b->data);
	cli_buf_init(b);
}

void cli_buf_reset(struct cli_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int buf_reserve(struct cli_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > (size_t)-1 - b->len - 1)
		return -ENOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > (size_t)-1 / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int cli_buf_append(struct cli_buf *b, const void *data, size_t len)
{
	int rc = buf_reserve(b, len);

	if (rc)
		return rc;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int cli_buf_puts(struct cli_buf *b, const char *s)
{
	return cli_buf_append(b, s, strlen(s));
}

int cli_buf_putc(struct cli_buf *b, char c)
{
	return cli_buf_append(b, &c, 1);
}

int cli_buf_printf(struct cli_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	rc = buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *cli_buf_release(struct cli_buf *b)
{
	char *p = b->data;

	cli_buf_init(b);
	return p;
}
