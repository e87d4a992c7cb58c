"""Integration-test harness for kvfs: starts real kvfsd processes on free
ports, talks HTTP to them, and always cleans up (processes killed, data
directories removed) even when a test fails or the run is interrupted.

Waiting is always for a condition (a ready file, an HTTP answer), bounded by a
deadline; never a fixed sleep.

Each test module calls run(globals()): every function named test_* runs in
order; the run ends with the line "N passed, N failed" and exits non-zero if
anything failed.
"""
import atexit
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "build"))
KVFSD = os.environ.get("KVFSD", os.path.join(BUILDDIR, "kvfsd"))

_live = []  # every Node started, for cleanup
_tmpdirs = []


def _cleanup():
    for n in list(_live):
        n.kill()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, lambda s, f: sys.exit(128 + s))


def tmpdir(prefix="kvfs-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def wait_for(cond, timeout=10.0, what="condition", interval=0.01):
    """Polls cond() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def put_batches(client, prefix, value, count, per=100):
    """PUTs batches number 0..count-1 of per keys "prefix/b/j" holding value,
    stopping at the first that is not 200. Returns (numbers of the
    acknowledged batches, the refused response or None)."""
    acked = []
    for b in range(count):
        items = [{"key": "%s/%d/%d" % (prefix, b, j), "value": value} for j in range(per)]
        r = client.request("PUT", "/kv/batch", json_body={"items": items})
        if r.status != 200:
            return acked, r
        acked.append(b)
    return acked, None


_handed = set()  # ports free_port gave out in this process


def _outgoing_range():
    """The kernel's range of source ports for outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port(n=1):
    """The first of n consecutive ports that nothing listens on, for a daemon
    that must be told its port before it starts (a Raft peer address).

    Drawn outside the kernel's range for outgoing connections: a port from
    bind(0) is in that range, so an outgoing connection could be given it
    before the daemon binds it; a node connecting to a peer that is not
    listening yet (ZeroMQ retries every 100 ms) could even be connected to
    itself on it. Never the same port twice in one process."""
    lo, hi = _outgoing_range()
    # below the range from 10000 (from 1024 if that leaves under 1000), and
    # above it; spans of the bases whose n ports all fit, half-open
    ranges = [(10000 if lo - 10000 >= 1000 else 1024, lo - 1), (hi + 1, 65535)]
    spans = [(a, b - n + 2) for a, b in ranges if b - n + 2 > a]
    total = sum(b - a for a, b in spans)
    if not total:
        raise AssertionError("no %d consecutive ports outside %d-%d" % (n, lo, hi))
    for _ in range(1000):
        r = random.randrange(total)
        for a, b in spans:
            if r < b - a:
                base = a + r
                break
            r -= b - a
        ports = range(base, base + n)
        if any(p in _handed for p in ports):
            continue
        socks = []
        try:
            for p in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        _handed.update(ports)
        return base
    raise AssertionError("no %d consecutive free ports outside %d-%d" % (n, lo, hi))


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:200])


class Client:
    """A keep-alive HTTP client for one base URL."""

    def __init__(self, base, timeout=30, retry=True):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.timeout = timeout
        self.retry = retry  # resend once on a dropped keep-alive connection
        self.conn = None

    def request(self, method, path, body=None, headers=None, json_body=None):
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                return Response(r.status, dict((k.lower(), v) for k, v in r.getheaders()), data)
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1 or not self.retry:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    # Conveniences: keys go in the query form, which reaches every key.
    @staticmethod
    def kpath(key):
        if isinstance(key, str):
            key = key.encode()
        return "/kv?key=" + urllib.parse.quote(key, safe="")

    def put(self, key, value, raw=False, headers=None):
        h = dict(headers or {})
        if raw:
            h.setdefault("Content-Type", "application/octet-stream")
            return self.request("PUT", self.kpath(key), body=value, headers=h)
        return self.request("PUT", self.kpath(key), json_body=value, headers=h)

    def get(self, key, headers=None, stale=False):
        p = self.kpath(key) + ("&consistency=stale" if stale else "")
        return self.request("GET", p, headers=headers)

    def delete(self, key, headers=None):
        return self.request("DELETE", self.kpath(key), headers=headers)

    def metric(self, name):
        """The value of an unlabelled sample on /metrics."""
        for line in self.request("GET", "/metrics").body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("no %s on /metrics" % name)


class Node:
    """One kvfsd process. extra: additional command-line flags."""

    def __init__(self, data=None, extra=(), name="node"):
        self.data = data or tmpdir()
        self.extra = list(extra)
        self.name = name
        self.proc = None
        self.url = None
        self.log = os.path.join(self.data, "kvfsd.log")

    def start(self, timeout=20):
        ready = os.path.join(self.data, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        # A restarted node keeps its REST port, as a real one would.
        port = self.url.rsplit(":", 1)[1] if self.url else "0"
        args = [KVFSD, "--data", os.path.join(self.data, "db"), "--http", "127.0.0.1:" + port,
                "--ready-file", ready] + self.extra
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=self.logf)
        _live.append(self)

        def is_ready():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s; log:\n%s" % (
                    self.name, self.proc.returncode, self.tail()))
            if os.path.exists(ready):
                with open(ready) as f:
                    return f.read().strip()
            return None

        self.url = wait_for(is_ready, timeout, "%s to serve" % self.name)
        return self

    def client(self):
        return Client(self.url)

    def tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=20):
        """SIGTERM and wait: a clean shutdown must finish in time."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout)
        self._gone()
        return self.proc.returncode

    def pause(self, timeout=10):
        """SIGSTOP, returning once every thread of the process has stopped.
        The signal only starts a group stop: each thread stops when it next
        runs, and until then goes on working. On a loaded machine a paused
        follower once acknowledged a write that arrived after send_signal
        had returned."""
        self.proc.send_signal(signal.SIGSTOP)
        tasks = "/proc/%d/task" % self.proc.pid

        def stopped():
            for tid in os.listdir(tasks):
                try:
                    with open(os.path.join(tasks, tid, "stat")) as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                except (FileNotFoundError, ProcessLookupError):
                    continue  # a thread that exited
                if state not in ("T", "t"):
                    return False
            return True
        wait_for(stopped, timeout, "%s to stop" % self.name)

    def resume(self):
        """SIGCONT after pause()."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def kill(self):
        """kill -9: no chance to flush anything."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._gone()

    def _gone(self):
        if self in _live:
            _live.remove(self)
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None


def run(module_globals):
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    only = os.environ.get("KVFS_TEST_ONLY")
    passed = failed = 0
    for name, fn in tests:
        if only and only not in name:
            continue
        doc = (fn.__doc__ or "").strip().splitlines()
        t0 = time.monotonic()
        try:
            fn()
            passed += 1
            print("ok   %s (%.2fs)%s" % (name, time.monotonic() - t0, "  # " + doc[0] if doc else ""))
        except Exception:
            failed += 1
            print("FAIL %s (%.2fs)" % (name, time.monotonic() - t0))
            traceback.print_exc(file=sys.stdout)
            for n in list(_live):
                print("---- log of %s ----\n%s" % (n.name, n.tail()))
        sys.stdout.flush()
    _cleanup()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


class Cluster:
    """N kvfsd nodes on 127.0.0.1 with short Raft timings, each on its own
    peer port (free_port) and REST port (bound by kvfsd)."""

    def __init__(self, n, heartbeat_ms=20, election_ms=300, extra=()):
        self.heartbeat_ms, self.election_ms = heartbeat_ms, election_ms
        self.extra = list(extra)
        self.peers = {i: "tcp://127.0.0.1:%d" % free_port() for i in range(1, n + 1)}
        self.nodes = {}
        for i in self.peers:
            self.nodes[i] = self._make(i, cluster=True)

    def _make(self, i, cluster=True, join=False):
        flags = ["--id", str(i), "--peer", self.peers[i],
                 "--heartbeat-ms", str(self.heartbeat_ms),
                 "--election-ms", str(self.election_ms)] + self.extra
        if cluster or join:
            flags += ["--cluster", ",".join("%d=%s" % kv for kv in sorted(self.peers.items())
                                            if kv[0] in self.bootstrap_ids())]
        if join:
            flags += ["--join"]
        return Node(extra=flags, name="node%d" % i)

    def bootstrap_ids(self):
        return getattr(self, "_boot", None) or set(self.peers)

    def start(self, timeout=30):
        self._boot = set(self.peers)
        for n in self.nodes.values():
            n.start(timeout)
        self.wait_leader(timeout)
        return self

    def add_node(self, i, timeout=30):
        """Starts node i empty with --join (no membership until added)."""
        self.peers[i] = "tcp://127.0.0.1:%d" % free_port()
        n = self._make(i, cluster=False, join=True)
        self.nodes[i] = n
        n.start(timeout)
        return n

    def client(self, i):
        return self.nodes[i].client()

    def health(self, i):
        try:
            r = Client(self.nodes[i].url, timeout=2).request("GET", "/health")
            return r.json()
        except Exception:
            return None

    def live(self):
        return [i for i, n in self.nodes.items() if n.proc and n.proc.poll() is None]

    def leader(self, ids=None):
        """The leader id all live nodes (or ids) agree on, or None."""
        seen = set()
        for i in ids or self.live():
            h = self.health(i)
            if not h or not h.get("leader_id"):
                return None
            seen.add(h["leader_id"])
        if len(seen) == 1:
            lid = seen.pop()
            return lid if lid in self.live() else None
        return None

    def wait_leader(self, timeout=30, exclude=None, ids=None):
        def ok():
            lid = self.leader(ids)
            return lid if lid and lid != exclude else None
        return wait_for(ok, timeout, "a leader agreed by every live node")

    def wait_applied(self, ids=None, timeout=30):
        """Waits until the given nodes have applied the same index as the leader's commit."""
        ids = ids or self.live()

        def ok():
            lid = self.leader()
            if not lid:
                return False
            target = self.health(lid)["commit_index"]
            return all((self.health(i) or {}).get("applied_index", -1) >= target for i in ids)
        wait_for(ok, timeout, "nodes %s to catch up" % ids)

    def follower(self, exclude=()):
        lid = self.wait_leader()
        return [i for i in self.live() if i != lid and i not in exclude][0]


if __name__ == "__main__":
    # For the shell scripts under bench/: "harness.py free-ports N" prints N
    # distinct free ports (free_port, above), one line.
    if len(sys.argv) != 3 or sys.argv[1] != "free-ports" or not sys.argv[2].isdigit():
        sys.exit("usage: harness.py free-ports N")
    print(" ".join(str(free_port()) for _ in range(int(sys.argv[2]))))
