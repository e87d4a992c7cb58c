/*
 * FUSE operation metrics (see fs_metrics.h). The start time of each request
 * in flight is kept in a small hash table keyed by the fuse_req_t pointer,
 * protected by one mutex (requests in flight are few: the FUSE workers plus
 * replies deferred until a commit). Counters are atomics, exposed by a
 * collector that writes only the series that have been seen.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/metrics.h"
#include "fs/fs.h"
#include "fs/fs_metrics.h"

static const char *const op_names[FSM_COUNT] = {
	"lookup",  "forget",   "getattr",  "setattr", "statfs",     "getxattr", "listxattr",
	"setxattr", "removexattr", "symlink", "link", "readlink",   "opendir",  "releasedir",
	"readdir", "mkdir",    "rmdir",    "unlink",  "rename",     "flush",    "fsync",
	"release", "open",     "create",   "mknod",   "read",       "write"};

/* Results worth their own series; everything else is "other". */
static const int result_errnos[] = {0,      ENOENT, EEXIST, ENOTEMPTY, EPERM,  EACCES, EIO,
				    ETIMEDOUT, EFBIG, E2BIG, EINVAL,   ENOTDIR, EISDIR, ENOSPC};
#define N_RESULTS (sizeof result_errnos / sizeof result_errnos[0] + 1)

static uint64_t counts[FSM_COUNT][N_RESULTS];
static struct metric_histogram latency[FSM_COUNT];

struct inflight {
	fuse_req_t req; /* NULL = empty */
	int64_t t0;
	int op;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct inflight *table;
static size_t cap, used;

static size_t slot_of(fuse_req_t req, size_t c)
{
	uintptr_t x = (uintptr_t)req;
	x ^= x >> 17;
	x *= 0x9E3779B97F4A7C15ull;
	return (size_t)(x >> 7) & (c - 1);
}

static int grow(void)
{
	size_t nc = cap ? cap * 2 : 256;
	struct inflight *nt = calloc(nc, sizeof *nt);
	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++) {
		if (!table[i].req)
			continue;
		size_t j = slot_of(table[i].req, nc);
		while (nt[j].req)
			j = (j + 1) & (nc - 1);
		nt[j] = table[i];
	}
	free(table);
	table = nt;
	cap = nc;
	return 0;
}

void fsm_begin(fuse_req_t req, enum fsm_op op)
{
	int64_t t0 = clock_mono_ns();
	pthread_mutex_lock(&lock);
	if ((used + 1) * 2 > cap && grow() < 0) {
		pthread_mutex_unlock(&lock); /* unmeasured, never wrong */
		return;
	}
	size_t i = slot_of(req, cap);
	while (table[i].req && table[i].req != req)
		i = (i + 1) & (cap - 1);
	if (!table[i].req)
		used++;
	table[i] = (struct inflight){req, t0, op};
	pthread_mutex_unlock(&lock);
}

/* Removes req from the table (backward-shift deletion); returns its entry. */
static bool take(fuse_req_t req, struct inflight *out)
{
	bool found = false;
	pthread_mutex_lock(&lock);
	if (cap) {
		size_t i = slot_of(req, cap);
		while (table[i].req && table[i].req != req)
			i = (i + 1) & (cap - 1);
		if (table[i].req) {
			*out = table[i];
			found = true;
			table[i].req = NULL;
			used--;
			for (size_t j = (i + 1) & (cap - 1); table[j].req; j = (j + 1) & (cap - 1)) {
				size_t home = slot_of(table[j].req, cap);
				if ((j > i && (home <= i || home > j)) ||
				    (j < i && home <= i && home > j)) {
					table[i] = table[j];
					table[j].req = NULL;
					i = j;
				}
			}
		}
	}
	pthread_mutex_unlock(&lock);
	return found;
}

static void end(fuse_req_t req, int err)
{
	struct inflight e;
	if (!take(req, &e))
		return;
	size_t r = 0;
	while (r < N_RESULTS - 1 && result_errnos[r] != err)
		r++;
	__atomic_fetch_add(&counts[e.op][r], 1, __ATOMIC_RELAXED);
	metric_observe(&latency[e.op], (double)(clock_mono_ns() - e.t0) / 1e9);
}

int fsm_reply_err(fuse_req_t req, int err)
{
	end(req, err);
	return fuse_reply_err(req, err);
}

void fsm_reply_none(fuse_req_t req)
{
	end(req, 0);
	fuse_reply_none(req);
}

int fsm_reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	end(req, 0);
	return fuse_reply_entry(req, e);
}

int fsm_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
		    const struct fuse_file_info *fi)
{
	end(req, 0);
	return fuse_reply_create(req, e, fi);
}

int fsm_reply_attr(fuse_req_t req, const struct stat *attr, double timeout)
{
	end(req, 0);
	return fuse_reply_attr(req, attr, timeout);
}

int fsm_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	end(req, 0);
	return fuse_reply_open(req, fi);
}

int fsm_reply_write(fuse_req_t req, size_t count)
{
	end(req, 0);
	return fuse_reply_write(req, count);
}

int fsm_reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	end(req, 0);
	return fuse_reply_buf(req, buf, size);
}

int fsm_reply_statfs(fuse_req_t req, const struct statvfs *stbuf)
{
	end(req, 0);
	return fuse_reply_statfs(req, stbuf);
}

int fsm_reply_xattr(fuse_req_t req, size_t count)
{
	end(req, 0);
	return fuse_reply_xattr(req, count);
}

static const char *result_name(size_t r)
{
	if (r == N_RESULTS - 1)
		return "other";
	if (result_errnos[r] == 0)
		return "ok";
	const char *n = strerrorname_np(result_errnos[r]);
	return n ? n : "other";
}

static void collect(struct byte_buf *out, void *ud)
{
	char labels[96];
	metrics_family(out, "kvfs_fuse_operations_total", "counter",
		       "FUSE operations by operation and result (ok or the errno replied).");
	for (int o = 0; o < FSM_COUNT; o++)
		for (size_t r = 0; r < N_RESULTS; r++) {
			uint64_t v = __atomic_load_n(&counts[o][r], __ATOMIC_RELAXED);
			if (!v && r != 0)
				continue;
			snprintf(labels, sizeof labels, "op=\"%s\",result=\"%s\"", op_names[o],
				 result_name(r));
			metrics_sample(out, "kvfs_fuse_operations_total", labels, (double)v);
		}
	metrics_family(out, "kvfs_fuse_operation_latency_seconds", "histogram",
		       "FUSE operation latency, from the request to its (possibly deferred) reply.");
	for (int o = 0; o < FSM_COUNT; o++) {
		snprintf(labels, sizeof labels, "op=\"%s\"", op_names[o]);
		metrics_histogram_samples(out, "kvfs_fuse_operation_latency_seconds", labels,
					  &latency[o]);
	}
}

int fs_metrics_register(void)
{
	for (int o = 0; o < FSM_COUNT; o++)
		metric_histogram_init(&latency[o], metric_latency_buckets, metric_latency_n);
	return metrics_collector(collect, NULL);
}
