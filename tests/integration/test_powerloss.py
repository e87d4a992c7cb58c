"""Power loss: every write kvfs acknowledged survives the power going out
under load, whichever part of the data that was never fsynced reaches the
disk, and every batch is all or nothing.

The nodes' data directories are on powerfs (tests/lib/powerfs.c): it holds
each write in memory until its file is fsynced. The power goes at the fsync
of one of the logs (the Raft log's segment or LevelDB's), chosen by seed,
so that log holds unsynced data at that moment; the nodes are killed and,
at the unmount, each unsynced 4 KiB page is kept only with probability P,
so unsynced data is lost, torn or kept out of order. The nodes then restart
on what reached the disk. Needs root and /dev/fuse; skipped (exit 77)
without them.
"""
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BUILDDIR, Client, Cluster, Node, run, tmpdir, wait_for  # noqa: E402
import fsharness  # noqa: E402
from fsharness import force_unmount, is_mounted  # noqa: E402

POWERFS = os.environ.get("POWERFS", os.path.join(BUILDDIR, "powerfs"))


class PowerFS:
    """A powerfs mount over a fresh backing directory."""

    def __init__(self, keep, seed, cut_at=None, cut_suffix=None):
        self.back, self.mnt = tmpdir("kvfs-power-disk-"), tmpdir("kvfs-power-mnt-")
        self.err = open(os.path.join(tmpdir("kvfs-power-log-"), "powerfs.log"), "w+")
        args = [POWERFS, self.back, self.mnt, "--keep", str(keep), "--seed", str(seed)]
        if cut_at:
            args += ["--cut-at", str(cut_at)]
        if cut_suffix:
            args += ["--cut-suffix", cut_suffix]
        self.proc = subprocess.Popen(args, stderr=self.err)
        fsharness._mounts.append(self.mnt)  # unmounted at exit, whatever happens
        wait_for(lambda: is_mounted(self.mnt) or self.proc.poll() is not None, 10,
                 "powerfs to mount")
        assert self.proc.poll() is None, self.log()

    def log(self):
        self.err.seek(0)
        return self.err.read()

    def was_cut(self):
        """Whether the power went at the fsync chosen with cut_at."""
        return "power cut at" in self.log()

    def cut(self):
        """The power goes: unmount, and what was never synced is (mostly) gone."""
        subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        self.proc.wait(30)
        return self.log()

    def close(self):
        if is_mounted(self.mnt):
            force_unmount(self.mnt)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def load(urls, seed):
    """Writers on every node: single puts of new keys, overwrites of their own
    keys and batches of 10 new keys, until stopped or the node goes away.
    Returns (acked, attempted, batches, stop, threads, lock): acked[key] =
    index of the last acknowledged value in attempted[key] (the values each
    key was given, in order), batches = list of {key: value} attempted; set
    stop and join threads to end it."""
    acked, attempted, batches = {}, {}, []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w, url):
        rnd = random.Random(seed * 100 + w)
        c = Client(url, timeout=10, retry=False)
        mine = []
        i = 0
        while not stop.is_set():
            i += 1
            kind = rnd.random()
            try:
                if kind < 0.25 and mine:
                    key = rnd.choice(mine)
                    val = "w%d-%d-over" % (w, i)
                    with lock:
                        attempted[key].append(val)
                    r = c.put(key, val)
                    if r.status == 200:
                        with lock:
                            acked[key] = len(attempted[key]) - 1
                elif kind < 0.75:
                    key = "p/w%d-%d" % (w, i)
                    val = "v%d-%d-" % (w, i) + "x" * rnd.randrange(200)
                    with lock:
                        attempted[key] = [val]
                    r = c.put(key, val)
                    if r.status == 200:
                        with lock:
                            acked[key] = 0
                            mine.append(key)
                else:
                    items = {"p/w%d-%d-b%d" % (w, i, j): "b%d-%d-%d" % (w, i, j)
                             for j in range(10)}
                    with lock:
                        batches.append(items)
                        for k, v in items.items():
                            attempted[k] = [v]
                    r = c.request("PUT", "/kv/batch", json_body={
                        "items": [{"key": k, "value": v} for k, v in items.items()]})
                    if r.status == 200:
                        with lock:
                            for k in items:
                                acked[k] = 0
            except Exception:
                if stop.is_set():
                    break
                time.sleep(0.01)  # the node is going: no ack, nothing to check
        c.close()

    threads = [threading.Thread(target=writer, args=(w, urls[w % len(urls)]), daemon=True)
               for w in range(4)]
    for t in threads:
        t.start()
    return acked, attempted, batches, stop, threads, lock


def read_all(url):
    got = {}
    r = Client(url).request("POST", "/kv/range", json_body={"prefix": "p/"})
    assert r.status == 200, r
    for x in r.json()["results"]:
        got[x["key"]] = x["value"]
    return got


def check(got, acked, attempted, batches):
    lost = [k for k, i in acked.items()
            if k not in got or got[k] not in attempted[k][i:]]
    assert not lost, "%d acknowledged writes lost or rolled back, e.g. %s" % (
        len(lost), [(k, got.get(k), attempted[k]) for k in lost[:3]])
    invented = [k for k in got if k not in attempted or got[k] not in attempted[k]]
    assert not invented, invented[:5]
    for b in batches:
        present = sum(1 for k, v in b.items() if got.get(k) == v)
        assert present in (0, len(b)), "batch half applied: %d of %d, %s" % (
            present, len(b), sorted(b)[:2])


def wal_lost(summary, kept=False):
    """Bytes of write-ahead data (the Raft log's segments, LevelDB's logs)
    that the cut lost (with kept: that were unsynced, lost or kept), from
    powerfs's report."""
    lost = 0
    for line in summary.splitlines():
        m = re.match(r"powerfs: (\S+): (\d+) bytes kept, (\d+) lost$", line)
        if m and (m.group(1).endswith(".seg") or m.group(1).endswith(".log")):
            lost += int(m.group(3)) + (int(m.group(2)) if kept else 0)
    return lost


def cut_under_load(nodes, disks, seed):
    """Writes through every node until the first disk's power goes (at the
    fsync of a write-ahead file it was told to fail at, so that file holds
    unsynced data), then kills the nodes and cuts the power of every disk.
    Returns (acked, attempted, batches, powerfs reports)."""
    acked, attempted, batches, stop, threads, lock = load([x.url for x in nodes], seed)
    try:
        wait_for(disks[0].was_cut, 60, "the power cut")
        for x in nodes:
            x.kill()
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert len(acked) >= 20, "only %d writes acknowledged before the cut" % len(acked)
    return acked, attempted, batches, [d.cut() for d in disks]


def run_cut(keep, seed, cut_suffix=None):
    """A node on powerfs loses power under load (at the fsync of one of its
    logs), restarts on what reached the disk, and must hold every
    acknowledged write, read at once after the restart."""
    disk = node = None
    try:
        disk = PowerFS(keep, seed, cut_at=random.Random(seed).randint(200, 800),
                       cut_suffix=cut_suffix)
        node = Node(data=disk.mnt, name="powered", extra=["--snapshot-entries", "300"])
        node.log = os.path.join(tmpdir("kvfs-power-node-"), "kvfsd.log")
        node.start()
        acked, attempted, batches, summaries = cut_under_load([node], [disk], seed)
    finally:
        if node:
            node.kill()
        if disk:
            disk.close()
    # Power back: the node starts on what reached the disk.
    node.data, node.url = disk.back, None
    with open(node.log, "rb") as f:
        f.seek(0, os.SEEK_END)
        before = f.tell()
    node.start()
    check(read_all(node.url), acked, attempted, batches)
    rc = node.stop()
    assert rc == 0, (rc, node.tail())
    with open(node.log, "rb") as f:
        f.seek(before)
        torn = b"dropped a torn write" in f.read()
    return len(acked), summaries[0], torn


def run_cluster_cut(keep, seed):
    """The same for a 3-node cluster losing power all at once (when node 1's
    disk dies at one of its fsyncs), with writes sent to every node: what
    was acknowledged survives on a majority, and every node serves it after
    the restart (a node that lost entries gets them back from the leader)."""
    disks = []
    c = None
    try:
        cut_at = random.Random(seed).randint(200, 800)
        disks = [PowerFS(keep, seed * 10 + i, cut_at if i == 0 else None) for i in range(3)]
        c = Cluster(3, extra=["--snapshot-entries", "300"])
        logs = tmpdir("kvfs-power-node-")
        for i, x in c.nodes.items():
            x.data, x.log = disks[i - 1].mnt, os.path.join(logs, "n%d.log" % i)
        c.start()
        acked, attempted, batches, summaries = cut_under_load(list(c.nodes.values()), disks, seed)
    finally:
        for x in (c.nodes.values() if c else ()):
            x.kill()
        for d in disks:
            d.close()
    for i, x in c.nodes.items():
        x.data = disks[i - 1].back
    c.start()
    for x in c.nodes.values():
        check(read_all(x.url), acked, attempted, batches)
    for x in c.nodes.values():
        rc = x.stop()
        assert rc == 0, (rc, x.tail())
    return len(acked), summaries


def summary_line(summary):
    return summary.strip().splitlines()[-1].replace("powerfs: ", "")


def test_power_loss_single_node():
    """One node loses power under load 10 times (each unsynced page kept with P = 0 .. 1): every acknowledged write survives, batches stay whole."""
    wal = 0
    for seed in range(1, 11):
        keep = (0.0, 0.25, 0.5, 0.75, 1.0)[seed % 5]
        n, summary, _ = run_cut(keep, seed)
        wal += wal_lost(summary) if keep < 1 else 0
        print("  keep %.2f: %d acknowledged writes checked; %s, %d of write-ahead data" % (
            keep, n, summary_line(summary), wal_lost(summary)))
    # The cuts did catch logs with unsynced data and lost some of it: the
    # test exercised recovery from a torn log, not only a clean stop.
    assert wal > 0, "no cut lost any unsynced Raft or LevelDB log data"


def test_read_after_power_loss_of_the_state_machine():
    """The power goes as the state machine's last batch is being synced, 6 times: that batch is lost (3 times whole; 3 times each page kept with P = 1/2: torn, or kept whole if it is one page), the log has it, and the first read after the restart already sees every acknowledged write."""
    for seed, keep in ((21, 0.0), (22, 0.0), (23, 0.0), (24, 0.5), (25, 0.5), (26, 0.5)):
        n, summary, torn = run_cut(keep, seed, cut_suffix=".log")
        # The cut caught a batch not yet synced. With keep 0 it is lost;
        # with 1/2 a batch of one page is kept whole half the time (seen
        # in CI: 237 bytes kept, 0 lost), which is a valid outcome too.
        assert "power cut at" in summary and wal_lost(summary, kept=keep > 0) > 0, summary
        print("  keep %.1f: %d acknowledged writes checked; %s, %d of LevelDB's log%s" % (
            keep, n, summary_line(summary), wal_lost(summary),
            "; LevelDB found the torn write, the node dropped it" if torn else ""))


def test_power_loss_whole_cluster():
    """A 3-node cluster loses power all at once under load, twice: every acknowledged write is served by every node after the restart."""
    for keep, seed in ((0.0, 11), (0.5, 12)):
        n, summaries = run_cluster_cut(keep, seed)
        print("  keep %.2f: %d acknowledged writes checked; %s" % (
            keep, n, "; ".join(summary_line(x) for x in summaries)))


if __name__ == "__main__":
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("SKIP: needs root, /dev/fuse and fusermount3")
        sys.exit(77)
    run(globals())
