"""Helpers for tests of the kvfs mount: kvfsd nodes started with --mount on a
temporary directory, unmounted whatever happens (clean stop, kill -9, a
failed test, an interrupted run).

MountNode wraps harness.Node; MountCluster wraps harness.Cluster so every
node mounts. Waiting is always for a condition (the mount showing up in
/proc/self/mountinfo), never a fixed sleep.
"""
import atexit
import errno
import os
import subprocess

from harness import Cluster, Node, tmpdir, wait_for

_mounts = []  # every mount point used, for the last-resort cleanup


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def force_unmount(path):
    """Detaches whatever is mounted at path (lazily, as after a crash)."""
    if is_mounted(path):
        subprocess.call(["fusermount3", "-uz", path], stderr=subprocess.DEVNULL)
        if is_mounted(path):
            subprocess.call(["umount", "-l", path], stderr=subprocess.DEVNULL)


def _cleanup():
    for m in _mounts:
        force_unmount(m)


atexit.register(_cleanup)


def broken(path):
    """True when path answers ENOTCONN (a mount whose daemon died). statvfs
    always reaches the daemon; stat may be answered from the kernel's cache."""
    try:
        os.statvfs(path)
        return False
    except OSError as e:
        return e.errno == errno.ENOTCONN


class MountNode(Node):
    """A kvfsd with --mount MNT (MNT made under a temporary directory)."""

    def __init__(self, data=None, extra=(), name="node", mnt=None, mount_flags=()):
        data = data or tmpdir()
        self.mnt = mnt or os.path.join(data, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        _mounts.append(self.mnt)
        Node.__init__(self, data=data, extra=list(extra) + ["--mount", self.mnt] +
                      list(mount_flags), name=name)

    def start(self, timeout=20):
        Node.start(self, timeout)
        wait_for(lambda: is_mounted(self.mnt), timeout, "%s to mount %s" % (self.name, self.mnt))
        return self

    def stop(self, timeout=20):
        try:
            return Node.stop(self, timeout)
        finally:
            force_unmount(self.mnt)

    def kill(self, unmount=True):
        Node.kill(self)
        if unmount:
            force_unmount(self.mnt)

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)


class MountCluster(Cluster):
    """A harness.Cluster whose nodes all mount (mount_flags added to each)."""

    def __init__(self, n, mount_flags=(), **kw):
        self.mount_flags = list(mount_flags)
        Cluster.__init__(self, n, **kw)

    def _make(self, i, cluster=True, join=False):
        n = Cluster._make(self, i, cluster, join)
        return MountNode(data=n.data, extra=n.extra, name=n.name, mount_flags=self.mount_flags)

    def stop_all(self):
        for n in self.nodes.values():
            try:
                n.stop()
            except Exception:
                n.kill()


class started:
    """with started(node_or_cluster) as x: ... -- stops and unmounts on exit."""

    def __init__(self, thing):
        self.thing = thing

    def __enter__(self):
        return self.thing.start()

    def __exit__(self, *exc):
        if isinstance(self.thing, MountCluster):
            self.thing.stop_all()
        else:
            try:
                self.thing.stop()
            except Exception:
                self.thing.kill()
        return False
