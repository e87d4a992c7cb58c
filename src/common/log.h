/*
 * Logging: one line per event to stderr, levels checked before formatting,
 * optionally JSON lines (for log shippers). Each line carries the node id set
 * by log_set_node(); callers add term/index where they matter.
 *
 * Thread-safe: every line is formatted into a local buffer and written with one
 * write(2), so lines from different threads never interleave.
 */
#ifndef KVFS_COMMON_LOG_H
#define KVFS_COMMON_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_threshold; /* messages above this level are dropped */

/* Parses "error|warn|info|debug"; returns the level or -1. */
int log_parse_level(const char *name);
void log_set_level(enum log_level level);
void log_set_json(int on);
void log_set_node(unsigned long long id);

void log_emit(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_AT(level, module, ...)                                \
	do {                                                      \
		if ((int)(level) <= log_threshold)                \
			log_emit((level), (module), __VA_ARGS__); \
	} while (0)

#define log_error(mod, ...) LOG_AT(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) LOG_AT(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) LOG_AT(LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) LOG_AT(LOG_DEBUG, mod, __VA_ARGS__)

#endif
