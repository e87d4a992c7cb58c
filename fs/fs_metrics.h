/*
 * FUSE operation metrics: every request is counted by operation and result
 * (ok or the errno name replied) and timed from the handler's start to its
 * reply, deferred replies included. Handlers call fsm_begin() first and
 * reply through the fs_reply_* wrappers below instead of fuse_reply_*.
 *
 * Families (dashboards/kvfs.json uses them):
 *   kvfs_fuse_operations_total{op,result}        counter
 *   kvfs_fuse_operation_latency_seconds{op}      histogram
 * Thread-safe: any FUSE worker or the node loop (deferred replies).
 */
#ifndef KVFS_FS_METRICS_H
#define KVFS_FS_METRICS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

enum fsm_op {
	FSM_LOOKUP, FSM_FORGET, FSM_GETATTR, FSM_SETATTR, FSM_STATFS,
	FSM_GETXATTR, FSM_LISTXATTR, FSM_SETXATTR, FSM_REMOVEXATTR, FSM_SYMLINK,
	FSM_LINK, FSM_READLINK, FSM_OPENDIR, FSM_RELEASEDIR, FSM_READDIR,
	FSM_MKDIR, FSM_RMDIR, FSM_UNLINK, FSM_RENAME, FSM_FLUSH,
	FSM_FSYNC, FSM_RELEASE, FSM_OPEN, FSM_CREATE, FSM_MKNOD,
	FSM_READ, FSM_WRITE, FSM_COUNT
};

/* Marks the start of request req, an operation of kind op. */
void fsm_begin(fuse_req_t req, enum fsm_op op);

/* fuse_reply_* with the request's outcome recorded first. */
int fsm_reply_err(fuse_req_t req, int err);
void fsm_reply_none(fuse_req_t req);
int fsm_reply_entry(fuse_req_t req, const struct fuse_entry_param *e);
int fsm_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
		    const struct fuse_file_info *fi);
int fsm_reply_attr(fuse_req_t req, const struct stat *attr, double timeout);
int fsm_reply_open(fuse_req_t req, const struct fuse_file_info *fi);
int fsm_reply_write(fuse_req_t req, size_t count);
int fsm_reply_buf(fuse_req_t req, const char *buf, size_t size);
int fsm_reply_statfs(fuse_req_t req, const struct statvfs *stbuf);
int fsm_reply_xattr(fuse_req_t req, size_t count);

#endif
