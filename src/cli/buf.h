/*
 * A growable byte buffer, the one container the client uses for request
 * bodies, response bodies and rendered output.
 *
 * Ownership: the buffer owns data; cli_buf_release() hands it to the caller.
 * data is always NUL-terminated when non-NULL (the NUL is not counted in len),
 * so text can be used as a C string. Not thread-safe (the client has one
 * thread).
 */
#ifndef KVFS_CLI_BUF_H
#define KVFS_CLI_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct cli_buf {
	char *data;
	size_t len;
	size_t cap;
};

#define CLI_BUF_INIT {NULL, 0, 0}

void cli_buf_init(struct cli_buf *b);
void cli_buf_free(struct cli_buf *b);
void cli_buf_reset(struct cli_buf *b); /* len = 0, keeps the memory */

/* Appends bytes. Return 0 or -ENOMEM (the buffer is left unchanged). */
int cli_buf_append(struct cli_buf *b, const void *data, size_t len);
int cli_buf_puts(struct cli_buf *b, const char *s);
int cli_buf_putc(struct cli_buf *b, char c);
int cli_buf_printf(struct cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns the data (caller frees) and leaves the buffer empty. May return NULL
 * for an empty buffer that never allocated. */
char *cli_buf_release(struct cli_buf *b);

#endif
