/*
 * Log line formatting. Text form:
 *   2026-11-26T12:00:00.123Z INFO  node=1 raft: became leader term=3
 * JSON form (--log-json):
 *   {"ts":"2026-...Z","level":"info","node":1,"module":"raft","msg":"..."}
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

int log_threshold = LOG_INFO;
static int log_json;
static unsigned long long log_node;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return LOG_WARN;
	return -1;
}

void log_set_level(enum log_level level)
{
	log_threshold = (int)level;
}

void log_set_json(int on)
{
	log_json = on;
}

void log_set_node(unsigned long long id)
{
	log_node = id;
}

/* Appends s to buf as JSON string content (without quotes). */
static size_t json_escape(char *buf, size_t cap, size_t n, const char *s)
{
	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
		} else {
			buf[n++] = (char)c;
		}
	}
	return n;
}

void log_emit(enum log_level level, const char *module, const char *fmt, ...)
{
	char msg[1024], line[2304], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);

	if (log_json) {
		n = (size_t)snprintf(line, sizeof line,
				     "{\"ts\":\"%s\",\"level\":\"%s\",\"node\":%llu,\"module\":\"",
				     ts, level_names[level], log_node);
		n = json_escape(line, sizeof line, n, module);
		n += (size_t)snprintf(line + n, sizeof line - n, "\",\"msg\":\"");
		n = json_escape(line, sizeof line, n, msg);
		n += (size_t)snprintf(line + n, sizeof line - n, "\"}\n");
	} else {
		n = (size_t)snprintf(line, sizeof line, "%s %-5s node=%llu %s: %s\n", ts,
				     level_names[level], log_node, module, msg);
	}
	if (n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	/* One write per line keeps lines from different threads whole. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
