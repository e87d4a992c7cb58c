"""The Grafana dashboard (dashboards/kvfs.json) against a real 3-node cluster
scraped by a real Prometheus (the Debian package): after load, a forced
leader change and (when kvfsd can mount) file operations on the mounts, every
panel's query returns data, and every metric the dashboard names is exported
by some node.

The cluster and Prometheus are started once and shared by both tests; they
are stopped (Prometheus by pid, nodes by the harness, stale mounts lazily
unmounted) even when a test fails. Needs python3, prometheus, fusermount3
(when kvfsd has --mount)."""
import atexit
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import KVFSD, Client, Cluster, free_port, run, tmpdir, wait_for  # noqa: E402

SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DASHBOARD = os.path.join(SRCDIR, "dashboards", "kvfs.json")
PROMETHEUS = os.environ.get("PROMETHEUS", "prometheus")

# What Grafana substitutes, as it would for a 30-minute range and a 1 s scrape
# interval ($__rate_interval is at least four scrape intervals; 10 s leaves
# room for scrapes delayed on a busy machine).
MACROS = {"$__rate_interval": "10s", "$__interval": "5s", "$__range": "30m"}

# Series Prometheus makes itself for every target, not exported by kvfsd.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"}
FUSE_PREFIX = "kvfs_fuse_"
FUSE_HINT = ("\n(kvfsd mounts, so the FUSE front end must export what the dashboard defines: "
             "kvfs_fuse_operations_total{op,result} counter and "
             "kvfs_fuse_operation_latency_seconds{op} histogram)")


def dashboard_targets():
    """(panel title, refId, expr) for every query of every panel, rows included."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p["title"], t["refId"], t["expr"]))
            walk(p.get("panels", []))
    walk(dash["panels"])
    return dash, out


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names an expression selects: identifiers left once strings,
    label matchers, ranges, grouping clauses and function calls are removed."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the exponent or unit of a number
        names.add(m.group(0))
    return names


def has_mount_flag():
    out = subprocess.run([KVFSD, "--help"], capture_output=True, text=True).stdout
    return "--mount" in out


class Prometheus:
    """A prometheus process on a free port scraping the given host:port targets every second."""

    def __init__(self, targets):
        assert shutil.which(PROMETHEUS), "%s not found (Debian package prometheus)" % PROMETHEUS
        self.dir = tmpdir("kvfs-prom-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: kvfs\n    static_configs:\n"
                    "      - targets: [%s]\n" % ", ".join('"%s"' % t for t in targets))
        self.log = open(os.path.join(self.dir, "prometheus.log"), "ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=self.log, stderr=self.log)
        wait_for(self._ready, 60, "prometheus to be ready", interval=0.1)

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited with %s; log:\n%s" % (self.proc.returncode, self.tail()))
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        """Instant query at the current time; returns the result list (raises on a query error)."""
        u = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(u, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError("query %r: HTTP %d %s" % (expr, e.code, e.read()[:300]))
        assert body["status"] == "success", body
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def tail(self, n=20):
        try:
            with open(os.path.join(self.dir, "prometheus.log"), "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Load:
    """Clients writing, reading, deleting, batching and scanning through every
    node, plus file operations on the mounts, until stopped."""

    def __init__(self, cl, mounts):
        self.cl, self.mounts = cl, mounts
        self.stop_ev = threading.Event()
        self.rounds = 0
        self.fs_errors = []
        # Held by each round of file operations; the leader change holds it so
        # no file operation runs on a mount whose node is being killed.
        self.fs_lock = threading.Lock()
        self.threads = [threading.Thread(target=self._kv, args=(i,), daemon=True) for i in cl.nodes]
        if mounts:
            self.threads.append(threading.Thread(target=self._fs, daemon=True))

    def once(self, i, n):
        c = self.cl.client(i)
        try:
            k = "load/%d/%d" % (i, n % 50)
            c.put(k, {"n": n})
            c.get(k)
            c.get("load/missing")  # a failed get
            c.request("PUT", "/kv/batch", json_body={"items": [
                {"key": "batch/%d/%d" % (i, j), "value": j} for j in range(5)]})
            c.request("POST", "/kv/range", json_body={"start_key": "load/", "end_key": "load/~", "limit": 20})
            c.delete(k)
            c.delete(k)  # a failed delete (404)
        except Exception:
            pass  # nodes come and go during the leader change
        finally:
            c.close()

    def _kv(self, i):
        n = 0
        while not self.stop_ev.is_set():
            if self.cl.nodes[i].proc and self.cl.nodes[i].proc.poll() is None:
                self.once(i, n)
            n += 1
            self.rounds += 1
            self.stop_ev.wait(0.02)

    def _fs(self):
        while not self.stop_ev.is_set():
            with self.fs_lock:
                for i, m in self.mounts.items():
                    err = file_ops(m, "load%d" % i)
                    if err:
                        self.fs_errors.append(err)
            self.stop_ev.wait(0.2)

    def start(self):
        [t.start() for t in self.threads]
        return self

    def stop(self):
        self.stop_ev.set()
        [t.join(60) for t in self.threads]


def file_ops(mnt, name):
    """echo > file, cat, ls, rm on a mount; returns None or a description of what failed."""
    script = ('set -e; mkdir -p "$1/dash"; echo "hello $2" > "$1/dash/$2"; '
              'test "$(cat "$1/dash/$2")" = "hello $2"; ls "$1/dash" | grep -qx "$2"; '
              'ls -l "$1" >/dev/null; rm "$1/dash/$2"')
    try:
        p = subprocess.run(["sh", "-c", script, "sh", mnt, name], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "file operations on %s timed out" % mnt
    return None if p.returncode == 0 else "file operations on %s: %s" % (mnt, p.stderr.strip())


def unmount(path):
    with open("/proc/mounts") as f:
        mounted = any(line.split()[1] == path for line in f)
    if mounted:
        subprocess.run(["fusermount3", "-uz", path], capture_output=True)


_env = {}


def _teardown():
    e = _env.get("env")
    if not e:
        return
    if e.get("load"):
        e["load"].stop()
    if e.get("prom"):
        e["prom"].stop()
    for n in e["cl"].nodes.values():
        n.kill()
    for m in e["mounts"].values():
        unmount(m)
    if e.get("mountdir"):
        shutil.rmtree(e["mountdir"], ignore_errors=True)


atexit.register(_teardown)


def env():
    """The shared scene, built once: cluster, Prometheus, load, leader change."""
    if "error" in _env:
        raise AssertionError("setup failed earlier: %s" % _env["error"])
    if "env" in _env:
        return _env["env"]
    try:
        return _setup()
    except Exception as ex:
        _env["error"] = repr(ex)
        raise


def _setup():
    e = {"mounts": {}, "fuse": has_mount_flag()}
    _env["env"] = e
    cl = Cluster(3)
    e["cl"] = cl
    if e["fuse"]:
        e["mountdir"] = tempfile.mkdtemp(prefix="kvfs-dash-mnt-")
        for i, n in cl.nodes.items():
            m = os.path.join(e["mountdir"], "node%d" % i)
            os.mkdir(m)
            n.extra += ["--mount", m]
            e["mounts"][i] = m
    else:
        e["fuse_reason"] = "%s --help lists no --mount option (this kvfsd has no FUSE front end)" % KVFSD
    cl.start()
    hostports = [urllib.parse.urlparse(n.url).netloc for n in cl.nodes.values()]
    e["instances"] = hostports
    prom = Prometheus(hostports)
    e["prom"] = prom

    def scraped(times):
        r = prom.query('count_over_time(up{job="kvfs"}[5m]) >= %d' % times)
        return len(r) == len(hostports)
    wait_for(lambda: scraped(3), 60, "prometheus to scrape every node 3 times", interval=0.2)

    # Load through every node, and file operations on two mounts, before the change.
    for i in cl.nodes:
        Load(cl, {}).once(i, 0)
    for i in list(e["mounts"])[:2]:
        err = file_ops(e["mounts"][i], "before%d" % i)
        assert err is None, err
    e["load"] = Load(cl, e["mounts"]).start()

    # A leader change Prometheus sees: kill -9 the leader, wait for a new one, restart the old.
    old = cl.wait_leader()
    before = prom.query("max(kvfs_server_term)")
    with e["load"].fs_lock:
        cl.nodes[old].kill()
        cl.wait_leader(exclude=old, ids=[i for i in cl.nodes if i != old])
        if old in e["mounts"]:
            unmount(e["mounts"][old])
        cl.nodes[old].start()
        new = cl.wait_leader()
    assert new != old, (old, new)
    e["old_leader"], e["new_leader"] = old, new
    term_before = float(before[0]["value"][1])
    wait_for(lambda: float((prom.query("max(kvfs_server_term)") or [{"value": [0, "0"]}])[0]["value"][1]) > term_before,
             30, "prometheus to see the new term", interval=0.2)

    # More load, until every node (the restarted one included) has been up for several scrapes.
    wait_for(lambda: len(prom.query('min_over_time(up{job="kvfs"}[5s]) == 1')) == len(hostports),
             60, "every node up for 5 s of scrapes after the restart", interval=0.2)
    rounds = e["load"].rounds
    wait_for(lambda: e["load"].rounds > rounds + 50, 60, "load after the leader change")
    e["metrics"] = {}
    for i, n in cl.nodes.items():
        r = Client(n.url).request("GET", "/metrics")
        assert r.status == 200, r
        e["metrics"][i] = r.body.decode()
    return e


def substitute(expr, instances):
    regex = "|".join(re.escape(x).replace("\\", "\\\\") for x in instances)
    out = expr.replace("$instance", "(%s)" % regex).replace("${instance}", "(%s)" % regex)
    for k, v in MACROS.items():
        out = out.replace(k, v).replace("${%s}" % k[1:], v)
    return out


def has_value(result):
    """True when some sample is a number Grafana would draw (not NaN, not missing)."""
    for s in result:
        vals = [s["value"]] if "value" in s else s.get("values", [])
        if any(not math.isnan(float(v[1])) for v in vals):
            return True
    return False


def test_every_panel_query_returns_data():
    """Every query of every dashboard panel, variables substituted, returns data from Prometheus scraping a loaded cluster."""
    e = env()
    dash, targets = dashboard_targets()
    assert targets, "no panel queries in %s" % DASHBOARD
    names = {v["name"] for v in dash["templating"]["list"]}
    assert "instance" in names, names
    var = next(v for v in dash["templating"]["list"] if v["name"] == "instance")
    assert var["multi"] and var["includeAll"], var
    # The variable's own query lists every node.
    m = re.match(r"label_values\((\w+), *instance\)", var["definition"])
    assert m, var["definition"]
    got = {s["metric"]["instance"] for s in e["prom"].query(m.group(1))}
    assert got == set(e["instances"]), (got, e["instances"])
    if e["fuse"]:
        assert not e["load"].fs_errors, e["load"].fs_errors[:3]

    pending, skipped, checked = {}, [], 0
    for title, ref, expr in targets:
        q = substitute(expr, e["instances"])
        assert "$" not in q, "unsubstituted variable in %s/%s: %s" % (title, ref, q)
        if not e["fuse"] and any(n.startswith(FUSE_PREFIX) for n in metric_names(expr)):
            skipped.append("%s/%s" % (title, ref))
            continue
        checked += 1
        pending["%s/%s: %s" % (title, ref, q)] = q

    # One scrape that times out on a loaded machine marks that node's series
    # stale until its next scrape: a query left empty is asked again for a
    # few scrape intervals before it counts as a panel without data.
    def still_empty():
        for k in [k for k, q in pending.items() if has_value(e["prom"].query(q))]:
            del pending[k]
        return not pending
    try:
        wait_for(still_empty, 10, "every panel query to return data", interval=0.5)
    except AssertionError:
        pass
    empty = sorted(pending)
    if skipped:
        print("SKIPPED %d FUSE queries (%s) because %s" % (len(skipped), ", ".join(skipped), e["fuse_reason"]))
    print("checked %d panel queries against prometheus" % checked)
    assert not empty, "panel queries with no data:\n  " + "\n  ".join(empty) + FUSE_HINT

    # The forced leader change shows on the leader-change stat.
    stat = next(q for t, _, q in targets if t == "Leader changes")
    v = e["prom"].query(substitute(stat, e["instances"]))
    assert v and float(v[0]["value"][1]) >= 1, v


def test_every_dashboard_metric_is_exported():
    """Every metric name in the dashboard's queries appears in /metrics of some node (leader or follower)."""
    e = env()
    _, targets = dashboard_targets()
    exported = set()
    for text in e["metrics"].values():
        for line in text.splitlines():
            if line and not line.startswith("#"):
                exported.add(re.split(r"[{ ]", line, 1)[0])
    used = set()
    for _, _, expr in targets:
        used |= metric_names(expr)
    assert used, "no metric names parsed from the dashboard"
    for n in ("kvfs_fuse_operations_total", "kvfs_fuse_operation_latency_seconds_bucket",
              "kvstore_operations_total", "kvstore_operation_latency_seconds_bucket",
              "kvstore_replication_lag_seconds", "kvstore_cluster_size", "kvstore_last_commit_time"):
        assert n in used, "the dashboard does not use %s" % n
    missing = sorted(n for n in used - SYNTHETIC - exported
                     if e["fuse"] or not n.startswith(FUSE_PREFIX))
    if not e["fuse"]:
        fuse = sorted(n for n in used if n.startswith(FUSE_PREFIX))
        print("SKIPPED the export check of %s because %s" % (", ".join(fuse), e["fuse_reason"]))
    print("checked %d metric names against /metrics of %d nodes" % (len(used), len(e["metrics"])))
    assert not missing, "metrics the dashboard uses but no node exports: %s%s" % (
        missing, FUSE_HINT if any(n.startswith(FUSE_PREFIX) for n in missing) else "")


if __name__ == "__main__":
    run(globals())
