"""The README's quick start: scripts/cluster.sh (what scripts/up.sh runs
after installing and building) brings up four nodes with their mounts,
keeps the others serving when one dies, and stops everything it started on
SIGTERM. Needs root and /dev/fuse (the mounts)."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BUILDDIR, Client, free_port, run, tmpdir, wait_for  # noqa: E402
from fsharness import is_mounted  # noqa: E402

TOP = os.environ.get("top_srcdir") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
N = 4


def node_logs(run_dir, lines=15):
    """The last lines of each node's log under run_dir, for a failure message."""
    out = ""
    for i in range(1, N + 1):
        path = os.path.join(run_dir, "node%d" % i, "kvfsd.log")
        try:
            with open(path, errors="replace") as f:
                tail = f.readlines()[-lines:]
        except OSError as e:
            tail = ["(%s)\n" % e]
        out += "--- node %d (%s):\n%s" % (i, path, "".join(tail))
    return out


def node_pids(run_dir):
    """kvfsd processes whose data lives under run_dir, by node number."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"kvfsd") and b"--data" in args:
            data = args[args.index(b"--data") + 1].decode()
            if data.startswith(run_dir + "/node"):
                out[int(data[len(run_dir) + 5:].split("/")[0])] = int(p)
    return out


def test_cluster_sh_serves_survives_a_node_and_stops_cleanly():
    """Four nodes with mounts; a file written through one mount reads back
    through another; kill -9 of the leader leaves the others serving (a new
    leader) and is reported with a command that starts it again, which
    works; SIGTERM stops every node, the restarted one too, and unmounts
    all."""
    run_dir = tmpdir()
    http = free_port(N)  # cluster.sh numbers each node's ports from these
    peer = free_port(N)  # (free_port never hands out a port twice)
    env = dict(os.environ, KVFS_RUN=run_dir, KVFS_NODES=str(N), KVFS_HTTP_PORT=str(http),
               KVFS_PEER_PORT=str(peer), KVFS_PROM_PORT="0", KVFS_BIN=BUILDDIR)
    log = open(os.path.join(run_dir, "cluster.out"), "w+")
    proc = subprocess.Popen([os.path.join(TOP, "scripts", "cluster.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    mnt = [os.path.join(run_dir, "node%d" % i, "mnt") for i in range(1, N + 1)]
    try:
        def output():
            log.seek(0)
            return log.read()
        try:
            wait_for(lambda: "nodes up, leader is node" in output() or proc.poll() is not None,
                     timeout=120, what="cluster.sh to report a leader")
        except AssertionError as e:  # what cluster.sh and the nodes said
            raise AssertionError("%s\n--- cluster.sh:\n%s%s" % (e, output(), node_logs(run_dir)))
        assert proc.poll() is None, output()
        assert all(is_mounted(m) for m in mnt), output()
        with open(os.path.join(mnt[0], "greeting"), "w") as f:
            f.write("hello")
        with open(os.path.join(mnt[2], "greeting")) as f:
            assert f.read() == "hello"

        clients = [Client("http://127.0.0.1:%d" % (http + i)) for i in range(N)]
        leader = int(clients[0].request("GET", "/health").json()["leader_id"])
        os.kill(node_pids(run_dir)[leader], signal.SIGKILL)
        wait_for(lambda: "node %d exited" % leader in output(), timeout=30,
                 what="cluster.sh to report the killed node")
        other = next(i for i in range(1, N + 1) if i != leader)

        def new_leader():
            h = clients[other - 1].request("GET", "/health").json()
            return h.get("leader_id") not in (None, 0, leader) and h["leader_id"]
        wait_for(new_leader, timeout=30, what="a new leader")
        assert proc.poll() is None, output()  # the rest keeps running
        r = clients[other - 1].put("after", "failover")
        assert r.status == 200, r.body
        assert sorted(node_pids(run_dir)) == sorted(set(range(1, N + 1)) - {leader})

        # The command cluster.sh printed starts the node again; it catches up
        # (its broken mount is recovered), and cluster.sh stops it too.
        again = output().split("to start it again (Ctrl-C here stops it too): ")[1].split("\n")[0]
        subprocess.run(["bash", "-c", again], check=True, env=env)
        wait_for(lambda: leader in node_pids(run_dir), what="the node started again")  # (cleanup sees it)
        def caught_up():
            try:
                return clients[leader - 1].request("GET", "/kv/after").status == 200
            except OSError:
                return False  # not listening yet
        wait_for(caught_up, timeout=60, what="the restarted node to catch up")
        with open(os.path.join(mnt[leader - 1], "after")) as f:
            assert f.read() == '"failover"'

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, output()
        assert node_pids(run_dir) == {}
        assert not any(is_mounted(m) for m in mnt), output()
        assert "stopped (data kept in" in output()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for p in node_pids(run_dir).values():
            os.kill(p, signal.SIGKILL)
        for m in mnt:
            if is_mounted(m):
                subprocess.call(["umount", "-l", m])
        log.close()


if __name__ == "__main__":
    run(globals())
