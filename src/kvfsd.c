/*
 * kvfsd: the kvfs daemon. Parses flags, opens the node (log + state machine,
 * recovery), starts the node loop and the REST server, then waits for a
 * signal. SIGINT/SIGTERM stop it cleanly; a storage failure in the node stops
 * it with exit status 3 (STYLE.md point 8: never run on a log it cannot
 * trust).
 *
 * Signals are blocked in every thread (the mask is set before any thread is
 * created) and taken synchronously by the main thread with sigwait().
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <leveldb/c.h>

#include "api/http.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config.h"
#include "fs/fs.h" /* fs: the mount */
#include "node/node.h"
#include "store/txn.h" /* TXN_MAX_KEY */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kvfsd [OPTIONS]\n"
		"Run one kvfs node: a LevelDB-backed key-value store serving a REST API.\n"
		"With no options: REST on 127.0.0.1:8000, data under ./kvfs-data.\n"
		"\n"
		"  --id N                  node id (default 1)\n"
		"  --http HOST:PORT        REST listen address (default 127.0.0.1:8000)\n"
		"  --data DIR              data directory (default ./kvfs-data)\n"
		"  --peer tcp://HOST:PORT  this node's peer listen address (enables clustering)\n"
		"  --cluster ID=tcp://HOST:PORT,...\n"
		"                          initial members, this node included (bootstrap only;\n"
		"                          a restarted node uses its stored membership)\n"
		"  --join                  start with no membership and wait to be added\n"
		"                          (kvfs member add); --cluster then lists where the\n"
		"                          current members are\n"
		"  --heartbeat-ms MS       leader heartbeat interval (default 100)\n"
		"  --election-ms MS        election timeout, randomised in [MS, 2*MS) (default 1000)\n"
		"  --log-level LEVEL       error, warn, info (default) or debug\n"
		"  --log-json              log JSON lines instead of text\n"
		"  --max-key-size BYTES    longest key accepted (default 4096)\n"
		"  --max-value-size BYTES  largest value accepted (default 1048576)\n"
		"  --max-batch-items N     most items in one batch (default 10000)\n"
		"  --max-body BYTES        largest request body (default 16777216)\n"
		"  --max-connections N     concurrent HTTP connections (default 1024)\n"
		"  --max-pending N         requests in flight before 503 (default 65536)\n"
		"  --max-log-memory MIB    Raft log that may wait in memory for the state\n"
		"                          machine: from half of it new writes wait (503 at\n"
		"                          --request-timeout), at all of it a follower\n"
		"                          takes no new entries (default 64)\n"
		"  --http-threads N        HTTP worker threads (default 2)\n"
		"  --busy-poll US          a worker polls without sleeping this long after\n"
		"                          work, for low latency (default 50; 0: off)\n"
		"  --request-timeout MS    fail a request not committed by then (default 5000)\n"
		"  --snapshot-entries N    compact the log every N applied entries (default 10000)\n"
		"  --flush-ms MS           write the applied state to LevelDB at most every MS\n"
		"                          (default 50; 0: after every apply batch)\n"
		"  --flush-max MIB         ... or at once when MIB of it wait in memory (default 16)\n"
		"  --ready-file FILE       once serving, write the REST URL to FILE\n"
		"  --cache-size MIB        LevelDB block cache of the store (default 16)\n"
		"  --write-buffer MIB      LevelDB memtable (default 16; 8 writes stores under\n"
		"                          about 80 MiB faster, see kvfsd(8))\n"
		"  --meta-cache MIB        revisions of overwritten keys, so their next write\n"
		"                          reads no record (default 8; 0: off)\n"
		"  --key-filter-max MIB    most memory of the filter of live keys that spares\n"
		"                          writes of new keys a read (default 64; 0: no bound)\n"
		"  --table-reads HOW       pread (default) or mmap: how LevelDB reads its tables\n"
		"  --log-writes HOW        direct (default, where the file system takes it) or\n"
		"                          cached: how the Raft log is written\n"
		"  --background-priority P normal (default) or idle: LevelDB's compactions\n"
		"                          yield the CPU to requests while the store keeps up\n"
		"  --mount DIR             also mount the keyspace at DIR (FUSE)\n"
		"  --mount-consistency C   linearizable (default) or stale reads on the mount\n"
		"  --cache-timeout SEC     kernel name and attribute cache of the mount (default 5)\n"
		"  --allow-other           let other users use the mount (default: only us)\n"
		"  --uid N, --gid N        owner shown on the mount (default: ours)\n"
		"  --umask OCTAL           mask for modes a key does not store (default 022)\n"
		"  --mount-rename-limit N  most keys one directory rename moves (default 10000)\n"
		"  -h, --help              show this help and exit\n"
		"  -V, --version           show the version and exit\n"
		"\n"
		"See kvfsd(8) and kvfs-api(7).\n");
}

enum {
	OPT_ID = 1000,
	OPT_HTTP,
	OPT_DATA,
	OPT_LOG_LEVEL,
	OPT_LOG_JSON,
	OPT_MAX_KEY,
	OPT_MAX_VALUE,
	OPT_MAX_BATCH,
	OPT_MAX_BODY,
	OPT_MAX_CONNS,
	OPT_MAX_PENDING,
	OPT_MAX_LOG_MEMORY,
	OPT_HTTP_THREADS,
	OPT_BUSY_POLL,
	OPT_REQ_TIMEOUT,
	OPT_SNAP_ENTRIES,
	OPT_FLUSH_MS,
	OPT_FLUSH_MAX,
	OPT_CACHE,
	OPT_WRITE_BUFFER,
	OPT_META_CACHE,
	OPT_KEY_FILTER_MAX,
	OPT_TABLE_READS,
	OPT_LOG_WRITES,
	OPT_BACKGROUND,
	OPT_READY_FILE,
	OPT_PEER,
	OPT_CLUSTER,
	OPT_JOIN,
	OPT_HEARTBEAT,
	OPT_ELECTION,
	/* fs: the mount */
	OPT_MOUNT,
	OPT_MOUNT_CONSISTENCY,
	OPT_CACHE_TIMEOUT,
	OPT_ALLOW_OTHER,
	OPT_UID,
	OPT_GID,
	OPT_UMASK,
	OPT_RENAME_LIMIT,
};

static const struct option options[] = {
	{"id", required_argument, NULL, OPT_ID},
	{"http", required_argument, NULL, OPT_HTTP},
	{"data", required_argument, NULL, OPT_DATA},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"log-json", no_argument, NULL, OPT_LOG_JSON},
	{"max-key-size", required_argument, NULL, OPT_MAX_KEY},
	{"max-value-size", required_argument, NULL, OPT_MAX_VALUE},
	{"max-batch-items", required_argument, NULL, OPT_MAX_BATCH},
	{"max-body", required_argument, NULL, OPT_MAX_BODY},
	{"max-connections", required_argument, NULL, OPT_MAX_CONNS},
	{"max-pending", required_argument, NULL, OPT_MAX_PENDING},
	{"max-log-memory", required_argument, NULL, OPT_MAX_LOG_MEMORY},
	{"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
	{"busy-poll", required_argument, NULL, OPT_BUSY_POLL},
	{"request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
	{"snapshot-entries", required_argument, NULL, OPT_SNAP_ENTRIES},
	{"flush-ms", required_argument, NULL, OPT_FLUSH_MS},
	{"flush-max", required_argument, NULL, OPT_FLUSH_MAX},
	{"cache-size", required_argument, NULL, OPT_CACHE},
	{"write-buffer", required_argument, NULL, OPT_WRITE_BUFFER},
	{"meta-cache", required_argument, NULL, OPT_META_CACHE},
	{"key-filter-max", required_argument, NULL, OPT_KEY_FILTER_MAX},
	{"table-reads", required_argument, NULL, OPT_TABLE_READS},
	{"log-writes", required_argument, NULL, OPT_LOG_WRITES},
	{"background-priority", required_argument, NULL, OPT_BACKGROUND},
	{"ready-file", required_argument, NULL, OPT_READY_FILE},
	{"peer", required_argument, NULL, OPT_PEER},
	{"cluster", required_argument, NULL, OPT_CLUSTER},
	{"join", no_argument, NULL, OPT_JOIN},
	{"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
	{"election-ms", required_argument, NULL, OPT_ELECTION},
	{"mount", required_argument, NULL, OPT_MOUNT},
	{"mount-consistency", required_argument, NULL, OPT_MOUNT_CONSISTENCY},
	{"cache-timeout", required_argument, NULL, OPT_CACHE_TIMEOUT},
	{"allow-other", no_argument, NULL, OPT_ALLOW_OTHER},
	{"uid", required_argument, NULL, OPT_UID},
	{"gid", required_argument, NULL, OPT_GID},
	{"umask", required_argument, NULL, OPT_UMASK},
	{"mount-rename-limit", required_argument, NULL, OPT_RENAME_LIMIT},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* Parses an unsigned decimal in [min, max]; exits with a clear message. */
static unsigned long long num_arg(const char *opt, const char *s, unsigned long long min,
				  unsigned long long max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "kvfsd: --%s: '%s' is not a number in [%llu, %llu]\n", opt, s, min,
			max);
		exit(2);
	}
	return v;
}

/* Parses an option that takes one of two words: whether s is the second;
 * exits with a clear message if it is neither. */
static bool word_arg(const char *opt, const char *s, const char *first, const char *second)
{
	if (strcmp(s, first) && strcmp(s, second)) {
		fprintf(stderr, "kvfsd: --%s: want %s or %s\n", opt, first, second);
		exit(2);
	}
	return !strcmp(s, second);
}

/* Parses --cluster "1=tcp://h:p,2=tcp://h:p" into cfg->members. */
static int parse_cluster(const char *arg, struct node_config *cfg)
{
	char *copy = strdup(arg), *save = NULL;
	if (!copy)
		return -1;
	cfg->n_members = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *end;
		errno = 0;
		unsigned long long id = eq ? strtoull(tok, &end, 10) : 0;
		if (!eq || errno || id == 0 || end != eq || strncmp(eq + 1, "tcp://", 6) != 0 ||
		    strlen(eq + 1) >= sizeof cfg->members[0].addr ||
		    cfg->n_members == NODE_MAX_MEMBERS) {
			fprintf(stderr,
				"kvfsd: --cluster: bad member '%s' (want ID=tcp://HOST:PORT, at most "
				"%d members)\n",
				tok, NODE_MAX_MEMBERS);
			free(copy);
			return -1;
		}
		for (int i = 0; i < cfg->n_members; i++)
			if (cfg->members[i].id == id) {
				fprintf(stderr, "kvfsd: --cluster: node %llu listed twice\n", id);
				free(copy);
				return -1;
			}
		cfg->members[cfg->n_members].id = id;
		snprintf(cfg->members[cfg->n_members].addr, sizeof cfg->members[0].addr, "%s",
			 eq + 1);
		cfg->n_members++;
	}
	free(copy);
	return 0;
}

/* Copies the HOST of "HOST:PORT" (everything before the last ':') into host;
 * "" when s is NULL, has no port or a host too long for cap. */
static void host_of(const char *s, char *host, size_t cap)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	size_t n = colon ? (size_t)(colon - s) : 0;
	if (n >= cap)
		n = 0;
	if (n)
		memcpy(host, s, n);
	host[n] = 0;
}

/* An address that means "every interface": nothing a peer could connect to. */
static bool any_host(const char *h)
{
	return !h[0] || !strcmp(h, "*") || !strcmp(h, "0.0.0.0") || !strcmp(h, "::") ||
	       !strcmp(h, "[::]");
}

/* The URL this node serves REST on, "http://HOST:PORT": the host of --http,
 * or, when that listens on every address, the host of the peer address (what
 * the other members reach this node by), else 127.0.0.1. */
static void rest_url(char *out, size_t cap, const char *listen, unsigned port, const char *peer)
{
	char host[256];
	host_of(listen, host, sizeof host);
	if (any_host(host)) {
		host_of(peer && !strncmp(peer, "tcp://", 6) ? peer + 6 : NULL, host, sizeof host);
		if (any_host(host))
			snprintf(host, sizeof host, "127.0.0.1");
	}
	snprintf(out, cap, "http://%s:%u", host, port);
}

/* Writes url and a newline to path atomically (temp file + rename), so a
 * watcher never reads half a line. */
static int write_ready_file(const char *path, const char *url)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%s\n", url);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

/* Raises the soft limit on open files to the hard one: LevelDB keeps about
 * 490 table files open (500 open files, kv.c), beside the HTTP connections,
 * the peers' sockets and the mount. With 1,024, a common soft default,
 * kv_env.cc keeps only 256 open and opens the others for each read. */
static void raise_nofile_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("kvfsd", "cannot raise the open files limit: %s", strerror(errno));
	}
}

static void on_fatal(void *ud)
{
	kill(getpid(), SIGUSR1);
}

int main(int argc, char **argv)
{
	struct node_config ncfg;
	struct http_config hcfg;
	struct fs_config fcfg; /* fs: the mount */
	const char *ready_file = NULL;
	int c, lvl;
	/* Two malloc arenas, not one per thread that ever allocated (up to 8
	 * per core): every arena keeps its freed memory, and the flush thread,
	 * LevelDB's compaction and the HTTP workers each grew their own. With
	 * the default, the nodes of bench/large.sh kept up to 20 MiB more
	 * (RssAnon), page cache their memory cgroup then lacked: random GETs
	 * there ran 40% slower. No throughput difference measured. The
	 * environment variable still wins. */
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
	raise_nofile_limit();
	node_config_default(&ncfg);
	http_config_default(&hcfg);
	fs_config_default(&fcfg);

	while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		switch (c) {
		case OPT_ID:
			ncfg.id = num_arg("id", optarg, 1, UINT32_MAX);
			break;
		case OPT_HTTP:
			hcfg.listen = optarg;
			break;
		case OPT_DATA:
			ncfg.data_dir = optarg;
			break;
		case OPT_LOG_LEVEL:
			if ((lvl = log_parse_level(optarg)) < 0) {
				fprintf(stderr, "kvfsd: --log-level: want error, warn, info or debug\n");
				return 2;
			}
			log_set_level((enum log_level)lvl);
			break;
		case OPT_LOG_JSON:
			log_set_json(1);
			break;
		case OPT_MAX_KEY:
			hcfg.max_key = num_arg("max-key-size", optarg, 1, TXN_MAX_KEY);
			break;
		case OPT_MAX_VALUE:
			hcfg.max_value = num_arg("max-value-size", optarg, 1, KV_VALUE_LIMIT);
			break;
		case OPT_MAX_BATCH:
			hcfg.max_batch_items = num_arg("max-batch-items", optarg, 1, 1000000);
			break;
		case OPT_MAX_BODY:
			hcfg.max_body = num_arg("max-body", optarg, 1024, 1u << 30);
			break;
		case OPT_MAX_CONNS:
			hcfg.max_connections = num_arg("max-connections", optarg, 1, 65536);
			break;
		case OPT_MAX_PENDING:
			ncfg.max_pending = num_arg("max-pending", optarg, 1, 1u << 24);
			break;
		case OPT_MAX_LOG_MEMORY:
			ncfg.max_log_bytes = num_arg("max-log-memory", optarg, 1, 65536) << 20;
			break;
		case OPT_HTTP_THREADS:
			hcfg.threads = num_arg("http-threads", optarg, 1, 256);
			break;
		case OPT_BUSY_POLL:
			hcfg.busy_poll_us = num_arg("busy-poll", optarg, 0, 100000);
			break;
		case OPT_REQ_TIMEOUT:
			ncfg.request_timeout_ms = num_arg("request-timeout", optarg, 10, 3600000);
			break;
		case OPT_SNAP_ENTRIES:
			ncfg.snapshot_entries = num_arg("snapshot-entries", optarg, 10, 1u << 30);
			break;
		case OPT_FLUSH_MS:
			ncfg.flush_ms = (int)num_arg("flush-ms", optarg, 0, 60000);
			break;
		case OPT_FLUSH_MAX:
			ncfg.flush_max_bytes = num_arg("flush-max", optarg, 1, 4096) << 20;
			break;
		case OPT_CACHE:
			ncfg.kv.cache_bytes = num_arg("cache-size", optarg, 1, 65536) << 20;
			break;
		case OPT_WRITE_BUFFER:
			ncfg.kv.write_buffer = num_arg("write-buffer", optarg, 1, 1024) << 20;
			break;
		case OPT_META_CACHE:
			ncfg.kv.meta_cache_bytes = num_arg("meta-cache", optarg, 0, 16384) << 20;
			break;
		case OPT_KEY_FILTER_MAX:
			ncfg.kv.filter_max_bytes = num_arg("key-filter-max", optarg, 0, 65536) << 20;
			break;
		case OPT_TABLE_READS:
			ncfg.kv.table_mmap = word_arg("table-reads", optarg, "pread", "mmap");
			break;
		case OPT_LOG_WRITES:
			ncfg.log_cached = word_arg("log-writes", optarg, "direct", "cached");
			break;
		case OPT_BACKGROUND:
			ncfg.background_idle =
			    !word_arg("background-priority", optarg, "idle", "normal");
			break;
		case OPT_PEER:
			ncfg.peer_addr = optarg;
			break;
		case OPT_CLUSTER:
			if (parse_cluster(optarg, &ncfg) < 0)
				return 2;
			break;
		case OPT_JOIN:
			ncfg.join = true;
			break;
		case OPT_HEARTBEAT:
			ncfg.heartbeat_ms = (int)num_arg("heartbeat-ms", optarg, 2, 60000);
			break;
		case OPT_ELECTION:
			ncfg.election_ms = (int)num_arg("election-ms", optarg, 10, 600000);
			break;
		case OPT_READY_FILE:
			ready_file = optarg;
			break;
		/* fs: the mount */
		case OPT_MOUNT:
			fcfg.mountpoint = optarg;
			break;
		case OPT_MOUNT_CONSISTENCY:
			fcfg.consistency = word_arg("mount-consistency", optarg, "linearizable", "stale")
					       ? FS_STALE
					       : FS_LINEARIZABLE;
			break;
		case OPT_CACHE_TIMEOUT: {
			char *end;
			errno = 0;
			fcfg.cache_timeout = strtod(optarg, &end);
			if (errno || end == optarg || *end || fcfg.cache_timeout < 0 ||
			    fcfg.cache_timeout > 86400) {
				fprintf(stderr, "kvfsd: --cache-timeout: '%s' is not a number of "
						"seconds in [0, 86400]\n",
					optarg);
				return 2;
			}
			break;
		}
		case OPT_ALLOW_OTHER:
			fcfg.allow_other = true;
			break;
		case OPT_UID:
			fcfg.uid = (uid_t)num_arg("uid", optarg, 0, UINT32_MAX - 1);
			break;
		case OPT_GID:
			fcfg.gid = (gid_t)num_arg("gid", optarg, 0, UINT32_MAX - 1);
			break;
		case OPT_UMASK: {
			char *end;
			errno = 0;
			unsigned long m = strtoul(optarg, &end, 8);
			if (errno || end == optarg || *end || m > 0777) {
				fprintf(stderr, "kvfsd: --umask: '%s' is not an octal mask\n", optarg);
				return 2;
			}
			fcfg.umask = (mode_t)m;
			break;
		}
		case OPT_RENAME_LIMIT:
			fcfg.rename_limit = (uint32_t)num_arg("mount-rename-limit", optarg, 1, 1000000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("kvfsd %s (LevelDB %d.%d, %s)\n", PACKAGE_VERSION,
			       leveldb_major_version(), leveldb_minor_version(),
#ifdef KVFS_STATIC_LEVELDB
			       "linked statically, CRC-32C by ISA-L"
#else
			       "shared library, its own CRC-32C"
#endif
			);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvfsd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (ncfg.election_ms < 3 * ncfg.heartbeat_ms) {
		fprintf(stderr, "kvfsd: --election-ms must be at least 3 x --heartbeat-ms\n");
		return 2;
	}
	if (ncfg.n_members && !ncfg.peer_addr) {
		/* Our own entry in --cluster is where we listen. */
		for (int i = 0; i < ncfg.n_members; i++)
			if (ncfg.members[i].id == ncfg.id)
				ncfg.peer_addr = ncfg.members[i].addr;
	}
	if (ncfg.n_members && !ncfg.join) {
		bool self = false;
		for (int i = 0; i < ncfg.n_members; i++)
			self |= ncfg.members[i].id == ncfg.id;
		if (!self) {
			fprintf(stderr, "kvfsd: --cluster must include this node (--id %llu)\n",
				(unsigned long long)ncfg.id);
			return 2;
		}
	}
	if (ncfg.join && !ncfg.peer_addr) {
		fprintf(stderr, "kvfsd: --join needs --peer (where the cluster reaches this node)\n");
		return 2;
	}
	hcfg.node_address = ncfg.peer_addr ? ncfg.peer_addr : "";
	const char *colon = strrchr(hcfg.listen, ':');
	hcfg.api_port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
	log_set_node(ncfg.id);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	struct node *node;
	struct http_server *http = NULL;
	struct fs *fs = NULL; /* fs: the mount */
	int rc = node_create(&ncfg, &node), sig = 0, status = 0;
	if (rc < 0) {
		log_error("kvfsd", "cannot open node in %s: %s", ncfg.data_dir, kvfs_strerror(rc));
		return 1;
	}
	node_set_fatal_cb(node, on_fatal, NULL);
	if (metrics_register_process() || node_register_metrics(node) || http_register_metrics() ||
	    fs_metrics_register()) {
		log_error("kvfsd", "out of memory registering metrics");
		status = 1;
		goto out_node;
	}
	if ((rc = node_start(node)) < 0) {
		log_error("kvfsd", "cannot start node loop: %s", strerror(-rc));
		status = 1;
		goto out_node;
	}
	if ((rc = http_server_create(&hcfg, node, &http)) < 0) {
		status = 1;
		goto out_node;
	}
	/* fs: the mount, after the node started; destroyed before it stops. */
	if (fcfg.mountpoint) {
		fcfg.data_dir = ncfg.data_dir;
		fcfg.max_value = hcfg.max_value;
		fcfg.max_key = hcfg.max_key;
		if ((rc = fs_create(&fcfg, node, &fs)) < 0) {
			log_error("kvfsd", "cannot mount %s: %s", fcfg.mountpoint,
				  kvfs_strerror(rc));
			status = 1;
			goto out_http;
		}
	}
	log_info("kvfsd", "ready: node %llu, data in %s", (unsigned long long)ncfg.id,
		 ncfg.data_dir);
	char url[320]; /* http:// + a host of up to 255 bytes + :port */
	rest_url(url, sizeof url, hcfg.listen, http_server_port(http), ncfg.peer_addr);
	node_set_rest_url(node, url);
	if (ready_file && write_ready_file(ready_file, url) < 0)
		log_warn("kvfsd", "cannot write %s: %s", ready_file, strerror(errno));

	sigdelset(&set, SIGPIPE);
	for (;;) {
		siginfo_t si;
		sig = sigwaitinfo(&set, &si);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		/* SIGUSR1 means a storage failure only when the node sent it;
		 * from anyone else it is ignored. */
		if (sig == SIGUSR1 && si.si_pid == getpid())
			break;
	}
	if (sig == SIGUSR1) {
		log_error("kvfsd", "stopping after a storage failure");
		status = 3;
	} else {
		log_info("kvfsd", "signal %d: shutting down", sig);
	}
	bool fs_gone = fs_destroy(fs); /* fs: unmount first */
	node_stop(node); /* answers the requests still waiting on it */
	if (!fs_gone) {
		/* The mount's workers still run (fs_destroy): everything
		 * acknowledged is durable (node_stop), and exiting is what ends
		 * their connection. */
		http_server_destroy(http);
		log_info("kvfsd", "stopped");
		_exit(status);
	}
out_http:
	http_server_destroy(http);
out_node:
	node_destroy(node);
	metrics_reset();
	log_info("kvfsd", "stopped");
	return status;
}
