/*
 * One error space for all of kvfs.
 *
 * Functions return 0 on success or a negative code: -errno for system errors
 * (-ENOENT, -EIO, ...), and the project codes below -1000 for everything else,
 * so the two ranges never collide (LMDB keeps its codes out of errno's range
 * the same way). KVFS_ERRORS is the single table mapping each project code to
 * its message, the HTTP status the REST API answers with, and the errno the
 * FUSE front end replies with.
 */
#ifndef KVFS_COMMON_ERR_H
#define KVFS_COMMON_ERR_H

/*      name                 code    http errno         message */
#define KVFS_ERRORS(X)                                                                   \
	X(KVFS_ENOTFOUND,    -1001, 404, ENOENT,    "Key not found")                     \
	X(KVFS_EPRECOND,     -1002, 412, EAGAIN,    "Precondition failed")               \
	X(KVFS_ENOLEADER,    -1003, 503, EIO,       "No leader (no quorum)")             \
	X(KVFS_ETIMEDOUT,    -1004, 503, ETIMEDOUT, "Timed out waiting for commit")      \
	X(KVFS_ESHUTDOWN,    -1005, 503, EIO,       "Node is shutting down")             \
	X(KVFS_ESTORAGE,     -1006, 503, EIO,       "Storage failure: node stopped")     \
	X(KVFS_ECORRUPT,     -1007, 503, EIO,       "Corrupt record")                    \
	X(KVFS_EKEYSIZE,     -1008, 413, ENAMETOOLONG, "Key too long")                   \
	X(KVFS_EVALSIZE,     -1009, 413, EFBIG,     "Value too large")                   \
	X(KVFS_EBATCHSIZE,   -1010, 413, E2BIG,     "Too many items in batch")           \
	X(KVFS_EBODYSIZE,    -1011, 413, E2BIG,     "Request body too large")            \
	X(KVFS_EBADREQ,      -1012, 400, EINVAL,    "Bad request")                       \
	X(KVFS_EBADKEY,      -1013, 400, EINVAL,    "Invalid key")                       \
	X(KVFS_EBUSY,        -1014, 503, EAGAIN,    "Too many pending requests")         \
	X(KVFS_ENOTLEADER,   -1015, 503, EIO,       "Not the leader")                    \
	X(KVFS_EEXIST,       -1016, 412, EEXIST,    "Key exists")                        \
	X(KVFS_EPROTO,       -1017, 400, EPROTO,    "Malformed message")                 \
	X(KVFS_ETOOMANY,     -1018, 413, E2BIG,     "Operation touches too many keys")   \
	X(KVFS_ECONFIG,      -1019, 400, EINVAL,    "Invalid configuration")                 \
	X(KVFS_EUNKNOWN,     -1020, 503, EIO,       "Leader changed before the write was acknowledged; it may or may not have been applied") \
	X(KVFS_EBEHIND,      -1021, 503, EAGAIN,    "State machine behind: writes wait or are refused until it catches up")

enum kvfs_err {
#define KVFS_ERR_ENUM(name, code, http, errno_, msg) name = (code),
	KVFS_ERRORS(KVFS_ERR_ENUM)
#undef KVFS_ERR_ENUM
};

/* Human-readable message for any code (project code or -errno). Never NULL;
 * the string is static. Thread-safe. */
const char *kvfs_strerror(int code);

/* HTTP status the REST API answers with for this code (500 for unknown). */
int kvfs_err_http(int code);

/* Positive errno the FUSE front end replies with for this code. */
int kvfs_err_errno(int code);

#endif
