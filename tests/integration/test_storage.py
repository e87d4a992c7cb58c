"""Storage failures: a node whose disk fills up stops cleanly (exit status 3)
instead of running on a log it cannot trust, and loses nothing it
acknowledged. Needs root (it mounts a small tmpfs)."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Node, run, tmpdir, wait_for  # noqa: E402


def test_disk_full_stops_the_node_and_keeps_acknowledged_writes():
    """ENOSPC on a synced write: the node exits with status 3; every acknowledged write survives."""
    mnt = tmpdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt], check=True)
    try:
        n = Node(data=mnt, name="full", extra=["--snapshot-entries", "1000000"]).start()
        c = n.client()
        acked, failed = [], 0
        value = "x" * 4000
        for i in range(100000):
            try:
                r = c.put("k%06d" % i, value)
            except Exception:
                break  # the node went away
            if r.status == 200:
                acked.append(i)
            else:
                assert r.status == 503, r
                failed += 1
                if n.proc.poll() is not None:
                    break
        assert len(acked) > 100, len(acked)
        rc = wait_for(lambda: n.proc.poll() is not None and n.proc.returncode, 30,
                      "the node to stop after the storage failure")
        assert rc == 3, (rc, n.tail())
        assert "storage failure" in n.tail(50), n.tail()
        n._gone()
        # Move the data to a disk with room and restart: nothing acknowledged is lost.
        safe = tmpdir()
        shutil.copytree(os.path.join(mnt, "db"), os.path.join(safe, "db"))
        m = Node(data=safe, name="moved").start()
        mc = m.client()
        got = {x["key"] for x in mc.request("POST", "/kv/range", json_body={
            "prefix": "k", "keys_only": True}).json()["results"]}
        missing = [i for i in acked if "k%06d" % i not in got]
        assert not missing, missing[:10]
        assert mc.get("k%06d" % acked[-1]).json() == {"value": value}
        assert m.stop() == 0
    finally:
        subprocess.run(["umount", "-l", mnt])


def test_state_machine_behind_the_log_refuses_to_start():
    """A node whose state machine lost writes its Raft log no longer holds
    (here its kv directory put back to an older copy, after the log was
    compacted past it) refuses to start, with a message saying so, instead
    of serving a state with a hole in it; with the newer copy back it
    starts and has everything."""
    n = Node(name="behind", extra=["--snapshot-entries", "50"]).start()
    c = n.client()
    for i in range(20):
        assert c.put("early/%d" % i, i).status == 200
    assert n.stop() == 0
    kv = os.path.join(n.data, "db", "kv")
    old = tmpdir()
    shutil.copytree(kv, os.path.join(old, "kv"))
    n.start()
    c = n.client()
    for i in range(400):  # far past --snapshot-entries: the log compacts
        assert c.put("late/%d" % i, i).status == 200
    assert n.stop() == 0
    new = tmpdir()
    shutil.move(kv, os.path.join(new, "kv"))
    shutil.copytree(os.path.join(old, "kv"), kv)
    try:
        n.start(timeout=10)
        raise AssertionError("started on a state machine behind its log")
    except AssertionError as e:
        assert "is behind the Raft log's snapshot" in str(e), e
    n._gone()
    shutil.rmtree(kv)
    shutil.move(os.path.join(new, "kv"), kv)
    n.start()
    c = n.client()
    got = c.request("POST", "/kv/range", json_body={"prefix": "late/"}).json()["results"]
    assert len(got) == 400, len(got)
    assert n.stop() == 0


if __name__ == "__main__":
    run(globals())
