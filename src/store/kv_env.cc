/*
 * LevelDB's environment, with table files read by pread(2) instead of
 * memory maps and written through a buffer of their own (TableWriter, below).
 *
 * LevelDB's POSIX environment maps up to 1,000 table files read-only and
 * reads blocks straight out of the maps. Every page a read touches (and the
 * kernel's fault-around, 64 KiB about it) then stays in the process's
 * resident set while the table is open: a few seconds of random GETs over a
 * few hundred megabytes leave all of it "resident", and a restart after a
 * scan showed 727 MiB. Uncompressed blocks read from a map (kvfs does not
 * compress) never enter the block cache either, so --cache-size did
 * nothing.
 *
 * Read with pread, a block lands in LevelDB's block cache (bounded by
 * --cache-size) and the file's pages stay in the kernel's page cache, shared
 * and reclaimable, out of kvfsd's resident set (a memory cgroup still
 * charges them). This is RocksDB's default for the same reasons. The cost:
 * a system call and a copy for each block not in the block cache, which
 * makes random reads over a dataset far larger than memory slower
 * (kvfsd --table-reads mmap keeps LevelDB's maps: kv_plain_env). In both,
 * the background thread is named "kvfs-compact" and its jobs are counted
 * (kv_env_jobs, the metric kvfs_disk_backend_compactions), and its
 * scheduling policy can be set (kv_env_background_idle). Everything else
 * is LevelDB's own environment.
 *
 * The C API takes an environment only as its opaque leveldb_env_t, a struct
 * whose first member is the Env pointer (leveldb/db/c.cc, unchanged since
 * 2011); kv_env_handle mirrors it. test_kv checks that tables really are
 * opened through this environment, so a LevelDB whose layout differs fails
 * the unit tests instead of going unnoticed.
 */
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <leveldb/c.h>
#include <leveldb/env.h>
#include <leveldb/status.h>

#include "store/kv_env.h"

namespace {

std::atomic<uint64_t> g_opened{0};
std::atomic<uint64_t> g_tables_written{0};
/* LevelDB background jobs scheduled and not finished. */
std::atomic<uint64_t> g_jobs{0};

/* The background thread's policy (kv_env_background_idle): g_bg_tid is 0
 * until its first job. Both under g_bg_mu. */
std::mutex g_bg_mu;
pid_t g_bg_tid;
bool g_bg_idle;

int set_policy(pid_t tid, bool idle)
{
	struct sched_param sp = {};
	return sched_setscheduler(tid, idle ? SCHED_IDLE : SCHED_OTHER, &sp) == 0 ? 0 : -errno;
}

leveldb::Status io_error(const std::string &name, int err)
{
	if (err == ENOENT)
		return leveldb::Status::NotFound(name, std::strerror(err));
	return leveldb::Status::IOError(name, std::strerror(err));
}

/* Keeps at most a budget of table files open; beyond it, a file is opened
 * for each read, as LevelDB's own environment does. */
class FdBudget {
public:
	explicit FdBudget(long n) : left_(n) {}
	bool take()
	{
		long n = left_.load(std::memory_order_relaxed);
		while (n > 0)
			if (left_.compare_exchange_weak(n, n - 1, std::memory_order_relaxed))
				return true;
		return false;
	}
	void give() { left_.fetch_add(1, std::memory_order_relaxed); }

private:
	std::atomic<long> left_;
};

class PreadFile final : public leveldb::RandomAccessFile {
public:
	PreadFile(std::string name, int fd, FdBudget *budget)
		: name_(std::move(name)), fd_(fd), budget_(budget)
	{
	}
	~PreadFile() override
	{
		if (fd_ >= 0) {
			::close(fd_);
			budget_->give();
		}
	}

	leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice *result,
			     char *scratch) const override
	{
		int fd = fd_;
		if (fd < 0 && (fd = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC)) < 0) {
			*result = leveldb::Slice(scratch, 0);
			return io_error(name_, errno);
		}
		size_t got = 0;
		int err = 0;
		while (got < n) {
			ssize_t r = ::pread(fd, scratch + got, n - got, (off_t)(offset + got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				err = errno;
				break;
			}
			if (r == 0)
				break; /* end of file: a short read, LevelDB judges it */
			got += (size_t)r;
		}
		if (fd != fd_)
			::close(fd);
		*result = leveldb::Slice(scratch, got);
		return err ? io_error(name_, err) : leveldb::Status::OK();
	}

private:
	const std::string name_;
	const int fd_; /* -1: opened for each read */
	FdBudget *const budget_;
};

/* A table file being written: LevelDB's TableBuilder flushes its file after
 * every data block, and LevelDB's own file turns each flush into a
 * write(2): under a batch load those were about 70,000 system calls a second
 * on the development machine, one per 4 KiB block (the size then) of every
 * table any compaction wrote. Here the blocks gather in a buffer of kBuf
 * bytes and go down in one write when it is full, at Sync and at Close.
 * Nothing reads a table before that: LevelDB syncs and closes a table
 * before it opens it to check it and before the manifest names it
 * (db/builder.cc, db_impl.cc FinishCompactionOutputFile), and a table left
 * half-written by a crash is named by no manifest and deleted at the next
 * open. The log and manifest files keep LevelDB's own writer, whose
 * flushes their recovery counts on. */
class TableWriter final : public leveldb::WritableFile {
public:
	static constexpr size_t kBuf = 256 * 1024;

	TableWriter(std::string name, int fd, char *buf) : name_(std::move(name)), fd_(fd), buf_(buf)
	{
	}
	~TableWriter() override
	{
		if (fd_ >= 0)
			Close();
		std::free(buf_);
	}

	leveldb::Status Append(const leveldb::Slice &data) override
	{
		const char *p = data.data();
		size_t n = data.size();
		if (used_ + n > kBuf) {
			leveldb::Status st = WriteOut();
			if (!st.ok())
				return st;
			if (n >= kBuf)
				return WriteAll(p, n);
		}
		std::memcpy(buf_ + used_, p, n);
		used_ += n;
		return leveldb::Status::OK();
	}
	leveldb::Status Flush() override { return leveldb::Status::OK(); }
	leveldb::Status Sync() override
	{
		leveldb::Status st = WriteOut();
		if (st.ok() && ::fdatasync(fd_) != 0)
			st = io_error(name_, errno);
		return st;
	}
	leveldb::Status Close() override
	{
		leveldb::Status st = WriteOut();
		if (fd_ >= 0 && ::close(fd_) != 0 && st.ok())
			st = io_error(name_, errno);
		fd_ = -1;
		return st;
	}

private:
	leveldb::Status WriteOut()
	{
		leveldb::Status st = WriteAll(buf_, used_);
		used_ = 0;
		return st;
	}
	leveldb::Status WriteAll(const char *p, size_t n)
	{
		if (fd_ < 0 && n)
			return leveldb::Status::IOError(name_, "write after close");
		while (n) {
			ssize_t w = ::write(fd_, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return io_error(name_, errno);
			p += w;
			n -= (size_t)w;
		}
		return leveldb::Status::OK();
	}

	const std::string name_;
	int fd_;
	char *const buf_;
	size_t used_ = 0;
};

bool is_table(const std::string &name)
{
	auto ends = [&name](const char *suffix) {
		size_t n = std::strlen(suffix);
		return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
	};
	return ends(".ldb") || ends(".sst");
}

long fd_budget()
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1000;
	return (long)(rl.rlim_cur / 4);
}

/* Every kvfs environment: LevelDB's own, with its background jobs counted
 * (kv_env_jobs) and its background thread named. */
class JobEnv : public leveldb::EnvWrapper {
public:
	JobEnv() : EnvWrapper(leveldb::Env::Default()) {}

	/* LevelDB's background thread (memtable writes and compactions) is
	 * started by the first Schedule, from the thread that wrote, and took
	 * its name ("kvfs-sync"): it is named for what it does, so that top -H
	 * and perf tell the two apart. */
	void Schedule(void (*fn)(void *), void *arg) override
	{
		Job *j = new (std::nothrow) Job{fn, arg};
		if (!j) {
			target()->Schedule(fn, arg);
			return;
		}
		g_jobs.fetch_add(1, std::memory_order_relaxed);
		target()->Schedule(run_job, j);
	}

private:
	struct Job {
		void (*fn)(void *);
		void *arg;
	};
	/* (clang's -fsanitize=function checks C++ indirect calls with a
	 * handler from its C++ runtime, which the C programs do not link; the
	 * call below is LevelDB's own function with its own argument.) */
#if defined(__clang__)
	__attribute__((no_sanitize("function")))
#endif
	static void run_job(void *p)
	{
		static thread_local bool named;
		Job j = *static_cast<Job *>(p);
		delete static_cast<Job *>(p);
		if (!named) {
			named = true;
			pthread_setname_np(pthread_self(), "kvfs-compact");
			std::lock_guard<std::mutex> lock(g_bg_mu);
			g_bg_tid = gettid();
			if (g_bg_idle)
				(void)set_policy(g_bg_tid, true); /* (checked when it was asked) */
		}
		j.fn(j.arg);
		g_jobs.fetch_sub(1, std::memory_order_relaxed);
	}
};

class PreadEnv final : public JobEnv {
public:
	PreadEnv() : budget_(fd_budget()) {}

	leveldb::Status NewRandomAccessFile(const std::string &name,
					    leveldb::RandomAccessFile **result) override
	{
		*result = nullptr;
		int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return io_error(name, errno);
		bool kept = budget_.take();
		if (!kept) {
			::close(fd);
			fd = -1;
		}
		/* kvfs is C: no exception may unwind into it */
		*result = new (std::nothrow) PreadFile(name, fd, &budget_);
		if (!*result) {
			if (kept) {
				::close(fd);
				budget_.give();
			}
			return leveldb::Status::IOError(name, "out of memory");
		}
		g_opened.fetch_add(1, std::memory_order_relaxed);
		return leveldb::Status::OK();
	}

	leveldb::Status NewWritableFile(const std::string &name,
				       leveldb::WritableFile **result) override
	{
		if (!is_table(name))
			return target()->NewWritableFile(name, result);
		*result = nullptr;
		char *buf = static_cast<char *>(std::malloc(TableWriter::kBuf));
		int fd = buf ? ::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
			     : -1;
		if (fd < 0) {
			int err = buf ? errno : ENOMEM;
			std::free(buf);
			return io_error(name, err);
		}
		*result = new (std::nothrow) TableWriter(name, fd, buf);
		if (!*result) {
			::close(fd);
			std::free(buf);
			return leveldb::Status::IOError(name, "out of memory");
		}
		g_tables_written.fetch_add(1, std::memory_order_relaxed);
		return leveldb::Status::OK();
	}

private:
	FdBudget budget_;
};

/* Mirrors the C API's struct leveldb_env_t (see the top of this file). */
struct kv_env_handle {
	leveldb::Env *rep;
	bool is_default;
};

} // namespace

extern "C" leveldb_env_t *kv_pread_env(void)
{
	/* One for the process, never destroyed: LevelDB's background thread
	 * may still use it while the process exits (as with Env::Default). */
	alignas(PreadEnv) static unsigned char env_mem[sizeof(PreadEnv)];
	static kv_env_handle handle = {new (env_mem) PreadEnv(), true};
	return reinterpret_cast<leveldb_env_t *>(&handle);
}

extern "C" leveldb_env_t *kv_plain_env(void)
{
	alignas(JobEnv) static unsigned char env_mem[sizeof(JobEnv)];
	static kv_env_handle handle = {new (env_mem) JobEnv(), true};
	return reinterpret_cast<leveldb_env_t *>(&handle);
}

extern "C" bool kv_env_background_idle_possible(void)
{
	/* On a thread of its own: a failure must not leave the caller idle. */
	bool ok = false;
	pthread_t t;
	auto probe = [](void *arg) -> void * {
		*static_cast<bool *>(arg) = set_policy(0, true) == 0 && set_policy(0, false) == 0;
		return nullptr;
	};
	if (pthread_create(&t, nullptr, probe, &ok) == 0)
		pthread_join(t, nullptr);
	return ok;
}

extern "C" int kv_env_background_idle(bool idle)
{
	std::lock_guard<std::mutex> lock(g_bg_mu);
	int rc = g_bg_tid ? set_policy(g_bg_tid, idle) : 0;
	if (rc == 0)
		g_bg_idle = idle;
	return rc;
}

extern "C" uint64_t kv_env_jobs(void)
{
	return g_jobs.load(std::memory_order_relaxed);
}

extern "C" uint64_t kv_pread_env_files_opened(void)
{
	return g_opened.load(std::memory_order_relaxed);
}

extern "C" uint64_t kv_pread_env_tables_written(void)
{
	return g_tables_written.load(std::memory_order_relaxed);
}
