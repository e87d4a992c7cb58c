/*
 * The mount: session set-up, recovery of a mount left broken by a crash,
 * the FUSE worker threads, and a clean shutdown.
 *
 * Set-up follows libfuse's example/passthrough_hp.cc (fuse-3.14.0): the
 * low-level API, fuse_session_loop_mt on a thread of our own (kvfsd's main
 * thread keeps waiting for signals), a large max_write, readdirplus always
 * (never "auto": `ls -l` then costs no lookups), atomic O_TRUNC (so
 * `echo x > f` is one commit of the new content, never an empty file
 * first) and the kernel's permission checks (default_permissions).
 *
 * Recovery: a kvfsd killed with its mount up leaves "Transport endpoint is
 * not connected" behind. Before mounting, a mountpoint that answers ENOTCONN
 * is detached lazily (umount2 MNT_DETACH, or fusermount3 -uz when not
 * root). A mountpoint with a live filesystem on it is refused.
 *
 * Shutdown: stop the apply hook, unmount (lazily: open files keep the old
 * superblock alive but new opens fail), wait for the workers, aborting the
 * connection through /sys/fs/fuse/connections when open files keep it up,
 * wait for requests still in the node, then free the session.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "fs/fs_internal.h"

#ifndef FUSECTL_SUPER_MAGIC
#define FUSECTL_SUPER_MAGIC 0x65735543 /* linux/magic.h */
#endif

void fs_config_default(struct fs_config *c)
{
	memset(c, 0, sizeof *c);
	c->consistency = FS_LINEARIZABLE;
	c->cache_timeout = 5.0;
	c->uid = geteuid();
	c->gid = getegid();
	c->umask = 022;
	c->max_value = 1u << 20;
	c->max_key = 4096;
	c->rename_limit = 10000;
	c->threads = 16;
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	struct fs *fs = ud;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE; /* writes must reach us */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_write = 1u << 20;
	conn->time_gran = 1;
	log_info("fs", "mounted %s (max_write %u, readdirplus %s)", fs->cfg.mountpoint,
		 conn->max_write, (conn->want & FUSE_CAP_READDIRPLUS) ? "on" : "off");
}

/* Lazily detaches a mount left broken by a crash. 0, or a negative code
 * when the mountpoint is unusable (logged). */
static int recover_mountpoint(const char *mnt)
{
	struct stat st, pst;
	struct statfs sf;
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s/..", mnt);
	if (stat(mnt, &st) == 0) {
		if (stat(parent, &pst) < 0 || pst.st_dev == st.st_dev) {
			if (S_ISDIR(st.st_mode))
				return 0; /* a plain directory */
			log_error("fs", "%s is not a directory", mnt);
			return -ENOTDIR;
		}
		/* Something is mounted there. stat may have been answered
		 * from the kernel's attribute cache; statfs always asks the
		 * daemon. */
		if (statfs(mnt, &sf) == 0) {
			log_error("fs", "%s is already a mount point: refusing to mount over it",
				  mnt);
			return -EBUSY;
		}
	}
	if (errno != ENOTCONN) {
		int e = errno;
		log_error("fs", "cannot use mount point %s: %s", mnt, strerror(e));
		return -e;
	}
	log_warn("fs", "%s: mount left broken by a previous run; detaching it", mnt);
	if (umount2(mnt, MNT_DETACH) < 0) {
		pid_t pid = fork();
		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-uz", mnt, (char *)NULL);
			_exit(127);
		}
		int status = 0;
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			log_error("fs", "cannot detach the broken mount at %s", mnt);
			return -EBUSY;
		}
	}
	if (stat(mnt, &st) < 0) {
		int e = errno;
		log_error("fs", "mount point %s still unusable: %s", mnt, strerror(e));
		return -e;
	}
	return 0;
}

static void *loop_main(void *arg)
{
	struct fs *fs = arg;
	pthread_setname_np(pthread_self(), "kvfs-fuse");
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	if (lc) {
		fuse_loop_cfg_set_clone_fd(lc, 0);
		fuse_loop_cfg_set_max_threads(lc, (unsigned)fs->cfg.threads);
		fuse_loop_cfg_set_idle_threads(lc, (unsigned)(fs->cfg.threads / 2 + 1));
	}
	int rc = fuse_session_loop_mt(fs->se, lc);
	if (lc)
		fuse_loop_cfg_destroy(lc);
	if (rc < 0)
		log_warn("fs", "FUSE loop ended: %s", strerror(-rc));
	__atomic_store_n(&fs->loop_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

int fs_create(const struct fs_config *cfg, struct node *node, struct fs **out)
{
	struct fuse_lowlevel_ops ops;
	char opts[256];
	int rc;
	struct fs *fs = calloc(1, sizeof *fs);
	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	fs->node = node;
	fs->kv = node_kv(node);
	fs->start_ns = fs_now_ns();
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->olock, NULL);
	pthread_cond_init(&fs->ocond, NULL);
	if ((rc = fs_itable_init(&fs->it)) < 0)
		goto err_after_fs;
	if ((rc = recover_mountpoint(cfg->mountpoint)) < 0)
		goto err_after_itable;

	memset(&ops, 0, sizeof ops);
	ops.init = op_init;
	fs_ops_fill(&ops);
	fs_file_ops(&ops);
	fs_dir_ops(&ops);
	snprintf(opts, sizeof opts, "fsname=kvfs,subtype=kvfs,default_permissions%s",
		 cfg->allow_other ? ",allow_other" : "");
	char *argv[] = {"kvfsd", "-o", opts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	fs->se = fuse_session_new(&args, &ops, sizeof ops, fs);
	if (!fs->se) {
		log_error("fs", "cannot create the FUSE session");
		rc = -EIO;
		goto err_after_itable;
	}
	if (fuse_session_mount(fs->se, cfg->mountpoint) != 0) {
		log_error("fs", "cannot mount %s (is /dev/fuse usable?)", cfg->mountpoint);
		rc = -EIO;
		goto err_after_session;
	}
	if ((rc = fs_inval_start(fs)) < 0)
		goto err_after_mount;
	if ((rc = -pthread_create(&fs->loop_thread, NULL, loop_main, fs)) < 0)
		goto err_after_inval;
	fs->loop_started = true;
	node_set_apply_hook(node, fs_inval_hook, fs);
	struct stat st;
	if (stat(cfg->mountpoint, &st) == 0)
		fs->dev = st.st_dev;
	*out = fs;
	return 0;

err_after_inval:
	fs_inval_stop(fs);
err_after_mount:
	fuse_session_unmount(fs->se);
err_after_session:
	fuse_session_destroy(fs->se);
err_after_itable:
	fs_itable_free(&fs->it);
err_after_fs:
	pthread_cond_destroy(&fs->ocond);
	pthread_mutex_destroy(&fs->olock);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
	return rc;
}

/* ---- shutdown ---- */

struct sync_req {
	struct node_req nreq;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void sync_done(struct node_req *r)
{
	struct sync_req *s = (struct sync_req *)r;
	pthread_mutex_lock(&s->lock);
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Waits for one turn of the node loop, so an apply hook call that started
 * before node_set_apply_hook(NULL) has returned. */
static void sync_node(struct node *node)
{
	struct sync_req s = {.nreq = {.type = NODE_REQ_READ, .done = sync_done}};
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	if (node_submit(node, &s.nreq) == 0) {
		pthread_mutex_lock(&s.lock);
		while (!s.done)
			pthread_cond_wait(&s.cond, &s.lock);
		pthread_mutex_unlock(&s.lock);
	}
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
}

#define FUSECTL "/sys/fs/fuse/connections"

/* Aborts the FUSE connection (open files kept it alive after the lazy
 * unmount), which ends the workers' reads with ENODEV, and fails what the
 * open files ask from then on with ENOTCONN. The abort goes through the FUSE
 * control filesystem, which systemd mounts, but a container or a bare
 * system may not: then kvfsd mounts it (it needs the privilege kvfsd
 * mounted with), since without an abort it would wait for the last file to
 * be closed, and a process blocked in the mount never closes its file.
 * Returns false when it cannot (an unprivileged kvfsd, a read-only /sys):
 * fs_destroy then leaves the workers to the end of the process. */
static bool abort_connection(struct fs *fs)
{
	char path[96];
	snprintf(path, sizeof path, FUSECTL "/%u/abort",
		 (unsigned)((major(fs->dev) << 20) | minor(fs->dev)));
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		struct statfs sf;
		if (statfs(FUSECTL, &sf) == 0 && sf.f_type != FUSECTL_SUPER_MAGIC &&
		    mount("fusectl", FUSECTL, "fusectl", 0, NULL) == 0) {
			log_info("fs", "mounted the FUSE control filesystem on " FUSECTL
				       " to abort the connection");
			fd = open(path, O_WRONLY | O_CLOEXEC);
		}
	}
	if (fd < 0) {
		log_error("fs", "cannot abort the FUSE connection (%s): %s", path, strerror(errno));
		return false;
	}
	bool ok = write(fd, "1", 1) == 1;
	if (!ok)
		log_error("fs", "cannot abort the FUSE connection: %s", strerror(errno));
	close(fd);
	return ok;
}

bool fs_destroy(struct fs *fs)
{
	if (!fs)
		return true;
	node_set_apply_hook(fs->node, NULL, NULL);
	sync_node(fs->node);
	fuse_session_exit(fs->se);
	fuse_session_unmount(fs->se);
	if (fs->loop_started) {
		int64_t deadline = clock_mono_ms() + 2000;
		while (!__atomic_load_n(&fs->loop_done, __ATOMIC_ACQUIRE) &&
		       clock_mono_ms() < deadline) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (!__atomic_load_n(&fs->loop_done, __ATOMIC_ACQUIRE)) {
			log_warn("fs", "files still open on %s: aborting the connection",
				 fs->cfg.mountpoint);
			if (!abort_connection(fs)) {
				log_warn("fs",
					 "kvfsd ends without waiting for the files open on "
					 "%s; the kernel ends their connection when it exits",
					 fs->cfg.mountpoint);
				return false;
			}
		}
		pthread_join(fs->loop_thread, NULL);
	}
	/* Requests still in the node reply into the (now dead) session; they
	 * end within the node's request timeout. */
	pthread_mutex_lock(&fs->olock);
	while (fs->outstanding > 0)
		pthread_cond_wait(&fs->ocond, &fs->olock);
	pthread_mutex_unlock(&fs->olock);
	fs_inval_stop(fs);
	fuse_session_destroy(fs->se);
	fs_itable_free(&fs->it);
	pthread_cond_destroy(&fs->ocond);
	pthread_mutex_destroy(&fs->olock);
	pthread_mutex_destroy(&fs->lock);
	log_info("fs", "unmounted %s", fs->cfg.mountpoint);
	free(fs);
	return true;
}
