"""Power loss: every write kvfs acknowledged survives the power going out
under load, whichever part of the data that was never fsynced reaches the
disk, and every batch is all or nothing.

The nodes' data directories are on powerfs (tests/lib/powerfs.c): it holds
each write in memory until its file is fsynced, and when it is unmounted
(the power cut, after kill -9 of the node) it keeps each unsynced 4 KiB
page only with probability P, so unsynced data is lost, torn or kept out of
order. The node then restarts on what reached the disk. Needs root and
/dev/fuse; skipped (exit 77) without them.
"""
import os
import random
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

    def __init__(self, keep, seed):
        self.back, self.mnt = tmpdir("kvfs-power-disk-"), tmpdir("kvfs-power-mnt-")
        self.err = open(os.path.join(tmpdir("kvfs-power-log-"), "powerfs.log"), "w+")
        self.proc = subprocess.Popen([POWERFS, self.back, self.mnt, "--keep", str(keep),
                                      "--seed", str(seed)], stderr=self.err)
        fsharness._mounts.append(self.mnt)  # unmounted at exit, whatever happens
        wait_for(lambda: is_mounted(self.mnt) or self.proc.poll() is not None, 10,
                 "powerfs to mount")
        assert self.proc.poll() is None, self.log()

    def log(self):
        self.err.seek(0)
        return self.err.read()

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


def run_cut(keep, seed):
    """Loads a node on powerfs, cuts its power at a random moment under load,
    restarts it on what reached the disk, and checks what it holds."""
    rnd = random.Random(seed)
    disk = PowerFS(keep, seed)
    node = Node(data=disk.mnt, name="powered", extra=["--snapshot-entries", "300"])
    node.log = os.path.join(tmpdir("kvfs-power-node-"), "kvfsd.log")
    try:
        node.start()
        acked, attempted, batches, stop, threads, lock = load([node.url], seed)
        wait_for(lambda: len(acked) >= 150, 60, "150 acknowledged writes")
        time.sleep(rnd.uniform(0.0, 0.5))  # the moment of the cut, under load
        node.kill()
        stop.set()
        for t in threads:
            t.join(20)
        summary = disk.cut()
    finally:
        node.kill()
        disk.close()
    # Power back: the node starts on what reached the disk.
    node.data, node.url = disk.back, None
    node.start()
    try:
        check(read_all(node.url), acked, attempted, batches)
    finally:
        assert node.stop() == 0, node.tail()
    return len(acked), summary


def run_cluster_cut(keep, seed):
    """The same for a 3-node cluster losing power all at once, with writes
    sent to every node: what was acknowledged survives on a majority."""
    rnd = random.Random(seed)
    disks = [PowerFS(keep, seed * 10 + i) for i in range(3)]
    c = Cluster(3, extra=["--snapshot-entries", "300"])
    logs = tmpdir("kvfs-power-node-")
    for i, x in c.nodes.items():
        x.data, x.log = disks[i - 1].mnt, os.path.join(logs, "n%d.log" % i)
    try:
        c.start()
        acked, attempted, batches, stop, threads, lock = load(
            [x.url for x in c.nodes.values()], seed)
        wait_for(lambda: len(acked) >= 150, 60, "150 acknowledged writes")
        time.sleep(rnd.uniform(0.0, 0.5))
        for x in c.nodes.values():
            x.kill()
        stop.set()
        for t in threads:
            t.join(20)
        summaries = [d.cut() for d in disks]
    finally:
        for x in c.nodes.values():
            x.kill()
        for d in disks:
            d.close()
    for i, x in c.nodes.items():
        x.data = disks[i - 1].back
    c.start()
    try:
        for x in c.nodes.values():
            check(read_all(x.url), acked, attempted, batches)
    finally:
        for x in c.nodes.values():
            assert x.stop() == 0, x.tail()
    return len(acked), summaries


def test_power_loss_single_node():
    """One node loses power under load 10 times (each unsynced page kept with P = 0 .. 1): every acknowledged write survives, batches stay whole."""
    for seed in range(1, 11):
        keep = (0.0, 0.25, 0.5, 0.75, 1.0)[seed % 5]
        n, summary = run_cut(keep, seed)
        print("  keep %.2f: %d acknowledged writes checked; %s" % (
            keep, n, summary.strip().splitlines()[-1]))


def test_power_loss_whole_cluster():
    """A 3-node cluster loses power all at once under load, twice: every acknowledged write survives on every node after the restart."""
    for keep, seed in ((0.0, 11), (0.5, 12)):
        n, summaries = run_cluster_cut(keep, seed)
        print("  keep %.2f: %d acknowledged writes checked; %s" % (
            keep, n, "; ".join(x.strip().splitlines()[-1] for x in summaries)))


if __name__ == "__main__":
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("SKIP: needs root, /dev/fuse and fusermount3")
        sys.exit(77)
    run(globals())
