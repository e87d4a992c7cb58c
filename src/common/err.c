/*
 * The error table of err.h turned into lookups. Codes in the errno range map to
 * strerror-style text, EIO-ish HTTP 500s and themselves as errno.
 */
#include <errno.h>
#include <string.h>

#include "common/err.h"

const char *kvfs_strerror(int code)
{
	switch (code) {
#define KVFS_ERR_MSG(name, c, http, errno_, msg) \
	case c:                                  \
		return msg;
		KVFS_ERRORS(KVFS_ERR_MSG)
#undef KVFS_ERR_MSG
	case 0:
		return "Success";
	default:
		break;
	}
	if (code < 0 && code > -1000) {
		/* strerrordesc_np: the static description, thread-safe. */
		const char *d = strerrordesc_np(-code);
		return d ? d : "System error";
	}
	return "Unknown error";
}

int kvfs_err_http(int code)
{
	switch (code) {
#define KVFS_ERR_HTTP(name, c, http, errno_, msg) \
	case c:                                   \
		return http;
		KVFS_ERRORS(KVFS_ERR_HTTP)
#undef KVFS_ERR_HTTP
	case 0:
		return 200;
	case -ENOMEM:
	case -ENOSPC:
	case -EIO:
		return 503;
	default:
		return 500;
	}
}

int kvfs_err_errno(int code)
{
	switch (code) {
#define KVFS_ERR_ERRNO(name, c, http, errno_, msg) \
	case c:                                    \
		return errno_;
		KVFS_ERRORS(KVFS_ERR_ERRNO)
#undef KVFS_ERR_ERRNO
	case 0:
		return 0;
	default:
		return (code < 0 && code > -1000) ? -code : EIO;
	}
}
