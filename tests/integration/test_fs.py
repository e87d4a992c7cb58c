"""The kvfs mount (kvfsd --mount) used the way people use a filesystem: the
shell's tools, editors' save dance, cp/tar/rsync of real trees, errnos for
what is not supported, keys that cannot be paths, close-to-open consistency
and whole-file writes across the nodes of a cluster, bounded failure without
quorum, clean shutdown and recovery of a mount left broken by kill -9.

Every test uses a real FUSE mount; nodes started by a test are stopped and
unmounted by the test even when it fails (fsharness.started), and whatever
is left is detached at exit."""
import errno
import os
import shutil
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import KVFSD, Client, Node, run, tmpdir, wait_for  # noqa: E402
from fsharness import MountCluster, MountNode, broken, is_mounted, started  # noqa: E402

MAXVAL = 262144
node = MountNode(extra=["--max-value-size", str(MAXVAL), "--mount-rename-limit", "50",
                        "--request-timeout", "3000"], name="fs").start()
M = node.mnt
c = node.client()
RAW = {"Accept": "application/octet-stream"}


def sh(cmd, cwd=M, check=True):
    p = subprocess.run(cmd, shell=True, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise AssertionError("%r failed (%d): %s" % (cmd, p.returncode, p.stderr.decode()))
    return p


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def rest_raw(key, client=None):
    r = (client or c).get(key, headers=RAW)
    return r.body if r.status == 200 else None


def commit_index(client=None):
    return (client or c).request("GET", "/health").json()["commit_index"]


def expect_errno(eno, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == eno, "expected %s, got %s" % (errno.errorcode[eno], e)
        return
    raise AssertionError("expected %s, call succeeded" % errno.errorcode[eno])


def test_echo_cat_append_printf():
    """echo >, echo >>, printf and cat behave as on a local disk, and the key holds the bytes."""
    sh("echo x > f1 && echo y >> f1 && printf 'a%sb' c > f2")
    assert read(M + "/f1") == b"x\ny\n"
    assert sh("cat f2").stdout == b"acb"
    assert rest_raw("f1") == b"x\ny\n" and rest_raw("f2") == b"acb"


def test_truncating_rewrite_is_atomic_for_readers():
    """A reader sees the old or the new content of an `echo x > f`, never empty or half."""
    a, b = b"A" * 100000, b"B" * 120000
    write(M + "/atomic", a)
    stop = threading.Event()
    bad = []

    def reader():
        while not stop.is_set():
            with open(M + "/atomic", "rb") as f:
                got = b"".join(iter(lambda: f.read(4096), b""))
            if got not in (a, b):
                bad.append(len(got))
    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(60):
            with open(M + "/atomic", "wb") as f:  # O_TRUNC, then many small writes
                data = b if i % 2 else a
                for k in range(0, len(data), 4096):
                    f.write(data[k:k + 4096])
                    f.flush()
    finally:
        stop.set()
        t.join()
    assert not bad, "readers saw partial contents of sizes %s" % bad[:5]


def test_dd_at_offsets_and_truncate_s():
    """dd writes at offsets (zero-filling holes) and truncate -s shrinks and grows."""
    sh("printf 0123456789 > dd1 && printf XY | dd of=dd1 bs=1 seek=3 conv=notrunc status=none")
    assert read(M + "/dd1") == b"012XY56789"
    sh("printf Z | dd of=dd1 bs=1 seek=12 conv=notrunc status=none")
    assert read(M + "/dd1") == b"012XY56789\0\0Z"
    sh("truncate -s 4 dd1")
    assert rest_raw("dd1") == b"012X"
    sh("truncate -s 6 dd1")
    assert read(M + "/dd1") == b"012X\0\0" and os.stat(M + "/dd1").st_size == 6


def test_touch_creates_and_updates_mtime():
    """touch creates an empty file (a key) and later moves its mtime; utime sets it exactly."""
    sh("touch t1")
    assert rest_raw("t1") == b"" and os.stat(M + "/t1").st_size == 0
    os.utime(M + "/t1", (1000000000, 1000000000))
    assert os.stat(M + "/t1").st_mtime == 1000000000
    sh("touch t1")
    assert abs(os.stat(M + "/t1").st_mtime - time.time()) < 60


def test_rm_ls_l_and_stat_show_real_attributes():
    """ls -l and stat show the value's real size, the mode and the stored mtime; rm deletes the key."""
    c.put("la", {"k": [1, 2, 3]})
    line = sh("ls -l la").stdout.decode().split()
    assert line[0] == "-rw-r--r--" and int(line[4]) == len(b'{"k":[1,2,3]}'), line
    st = os.stat(M + "/la")
    assert st.st_size == 13 and stat.S_ISREG(st.st_mode) and abs(st.st_mtime - time.time()) < 60
    assert sh("stat -c '%s %a %F' la").stdout.decode().strip() == "13 644 regular file"
    assert "la" in sh("ls").stdout.decode().split()
    sh("rm la")
    assert c.get("la").status == 404 and not os.path.exists(M + "/la")


def test_find_du_df():
    """find walks nested directories, du counts the sizes and df/statfs answer sensibly."""
    sh("mkdir -p fd/a/b && printf 12345 > fd/a/b/x && printf 1 > fd/y")
    assert sh("find fd | sort").stdout.decode().split() == ["fd", "fd/a", "fd/a/b", "fd/a/b/x",
                                                          "fd/y"]
    assert sh("find fd -type f -name x").stdout.decode().strip() == "fd/a/b/x"
    assert sh("du -sb --apparent-size fd/a/b/x").stdout.decode().split()[0] == "5"
    assert "kvfs" in sh("df -h .").stdout.decode()
    sv = os.statvfs(M)
    assert sv.f_blocks > 0 and sv.f_bavail <= sv.f_blocks and sv.f_namemax == 255


def test_mkdir_empty_directory_persists_across_restart():
    """An empty directory made with mkdir is the marker key "dir/" (kind directory) and survives a restart."""
    with started(MountNode(name="persist")) as n:
        os.makedirs(n.path("e1", "e2"))
        os.mkdir(n.path("lonely"))
        r = n.client().get("lonely/")
        assert r.status == 200 and r.json().get("kind") == "directory", r
        n.stop()
        assert not is_mounted(n.mnt)
        n.start()
        assert sorted(os.listdir(n.mnt)) == ["e1", "lonely"]
        assert os.listdir(n.path("e1")) == ["e2"] and os.path.isdir(n.path("e1", "e2"))


def test_rmdir_refuses_non_empty_and_directories_stay_until_rmdir():
    """rmdir fails with ENOTEMPTY on a non-empty directory; removing the last file keeps the directory."""
    sh("mkdir -p rd/sub && echo 1 > rd/sub/f")
    expect_errno(errno.ENOTEMPTY, os.rmdir, M + "/rd/sub")
    os.unlink(M + "/rd/sub/f")
    assert os.path.isdir(M + "/rd/sub")
    os.rmdir(M + "/rd/sub")
    os.rmdir(M + "/rd")
    assert not os.path.exists(M + "/rd")
    expect_errno(errno.ENOENT, os.rmdir, M + "/rd")


def test_keys_and_paths_are_the_same_names():
    """Key a/b/c is the file a/b/c, and a file written at x/y is the key x/y."""
    c.put("kp/a/b/c", b"v", raw=True)
    assert read(M + "/kp/a/b/c") == b"v"
    assert os.listdir(M + "/kp") == ["a"] and os.path.isdir(M + "/kp/a/b")
    os.makedirs(M + "/kp/x")
    write(M + "/kp/x/y", b"w")
    assert rest_raw("kp/x/y") == b"w"


def test_mv_file_is_one_entry_also_replacing_a_target():
    """mv of a file, also over an existing target, is one Raft entry that moves the value."""
    write(M + "/mv1", b"source")
    write(M + "/mv2", b"target")
    before = commit_index()
    os.rename(M + "/mv1", M + "/mv2")
    assert commit_index() == before + 1
    assert read(M + "/mv2") == b"source" and not os.path.exists(M + "/mv1")
    assert rest_raw("mv2") == b"source" and c.get("mv1").status == 404
    sh("mv mv2 mv3")
    assert rest_raw("mv3") == b"source"


def test_mv_directory_is_atomic_up_to_the_limit():
    """mv of a directory moves every key in one entry; past --mount-rename-limit it fails E2BIG and moves nothing."""
    items = [{"key": "md/k%02d" % i, "value": i} for i in range(20)]
    items.append({"key": "md/sub/deep", "value": "d"})
    assert c.request("PUT", "/kv/batch", json_body={"items": items}).status == 200
    before = commit_index()
    os.rename(M + "/md", M + "/md2")
    after = commit_index()
    assert after == before + 1, (before, after, os.getxattr(M + "/md2/k00", "user.kvfs.revision"))
    assert len(os.listdir(M + "/md2")) == 21 and read(M + "/md2/sub/deep") == b'"d"'
    assert not os.path.exists(M + "/md") and c.get("md/k00").status == 404
    big = [{"key": "mb/k%02d" % i, "value": i} for i in range(60)]
    assert c.request("PUT", "/kv/batch", json_body={"items": big}).status == 200
    expect_errno(errno.E2BIG, os.rename, M + "/mb", M + "/mb2")
    assert len(os.listdir(M + "/mb")) == 60 and not os.path.exists(M + "/mb2")


def test_editor_save_and_sed_i():
    """The editor dance (temp file, fsync, rename over) and sed -i both replace the content."""
    write(M + "/doc.txt", b"alpha beta\n")
    tmp = M + "/.doc.txt.swp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"gamma\n")
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, M + "/doc.txt")
    assert read(M + "/doc.txt") == b"gamma\n" and not os.path.exists(tmp)
    sh("sed -i s/gamma/delta/ doc.txt")
    assert read(M + "/doc.txt") == b"delta\n" and rest_raw("doc.txt") == b"delta\n"
    assert sorted(n for n in os.listdir(M) if "doc" in n or n.startswith("sed")) == ["doc.txt"]


def make_tree(root):
    os.makedirs(os.path.join(root, "a", "b", "c"))
    os.makedirs(os.path.join(root, "empty"))
    write(os.path.join(root, "top.txt"), b"top\n")
    write(os.path.join(root, "a", "bin"), bytes(range(256)) * 300)
    write(os.path.join(root, "a", "b", "c", "deep"), b"deep\n" * 1000)
    write(os.path.join(root, "a", "nothing"), b"")
    write(os.path.join(root, "secret"), b"s")
    os.chmod(os.path.join(root, "secret"), 0o600)
    os.utime(os.path.join(root, "top.txt"), (1500000000, 1500000000))


def test_cp_tar_rsync_trees_copy_exactly():
    """cp -r, cp -a, tar -x and rsync -a into the mount give trees diff -r finds identical."""
    src = os.path.join(tmpdir(), "tree")
    make_tree(src)
    sh("cp -r %s cpr" % src)
    sh("diff -r %s cpr" % src)
    sh("cp -a %s cpa" % src)
    sh("diff -r %s cpa" % src)
    assert stat.S_IMODE(os.stat(M + "/cpa/secret").st_mode) == 0o600
    assert os.stat(M + "/cpa/top.txt").st_mtime == 1500000000
    tarball = os.path.join(tmpdir(), "t.tar")
    sh("tar -C %s -cf %s ." % (src, tarball))
    os.mkdir(M + "/tarx")
    sh("tar -C tarx -xf %s" % tarball)
    sh("diff -r %s tarx" % src)
    sh("rsync -a %s/ rs/" % src)
    sh("diff -r %s rs" % src)
    assert os.stat(M + "/rs/top.txt").st_mtime == 1500000000
    sh("rsync -a %s/ rs/" % src)  # again: nothing to do, still identical
    sh("diff -r %s rs" % src)


def test_chmod_is_stored_and_chown_follows_policy():
    """chmod is stored and shown; chown to the owner shown succeeds, to anyone else EPERM."""
    write(M + "/perm", b"p")
    os.chmod(M + "/perm", 0o640)
    assert stat.S_IMODE(os.stat(M + "/perm").st_mode) == 0o640
    write(M + "/perm", b"rewritten keeps the mode")
    assert stat.S_IMODE(os.stat(M + "/perm").st_mode) == 0o640
    os.mkdir(M + "/permdir")
    os.chmod(M + "/permdir", 0o700)
    assert stat.S_IMODE(os.stat(M + "/permdir").st_mode) == 0o700
    st = os.stat(M + "/perm")
    os.chown(M + "/perm", st.st_uid, st.st_gid)
    expect_errno(errno.EPERM, os.chown, M + "/perm", st.st_uid + 1234, -1)


def test_symlinks_hard_links_special_files_fail_with_eperm():
    """Symlinks, hard links, FIFOs and device nodes are refused with EPERM."""
    write(M + "/lnk", b"l")
    expect_errno(errno.EPERM, os.symlink, "lnk", M + "/sym")
    expect_errno(errno.EPERM, os.link, M + "/lnk", M + "/hard")
    expect_errno(errno.EPERM, os.mkfifo, M + "/fifo")
    expect_errno(errno.EPERM, os.mknod, M + "/dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert sorted(n for n in os.listdir(M) if n in ("sym", "hard", "fifo", "dev")) == []


def test_xattrs_expose_revision_version_kind():
    """user.kvfs.* show the key's revision (the REST ETag), version, kind and key; they are read-only."""
    r = c.put("xa", [1])
    rev = r.json()["revision"]
    assert os.getxattr(M + "/xa", "user.kvfs.revision") == str(rev).encode()
    assert os.getxattr(M + "/xa", "user.kvfs.kind") == b"json"
    assert os.getxattr(M + "/xa", "user.kvfs.version") == b"1"
    write(M + "/xa", b"raw now")
    assert os.getxattr(M + "/xa", "user.kvfs.version") == b"2"
    assert os.getxattr(M + "/xa", "user.kvfs.kind") == b"raw"
    assert int(os.getxattr(M + "/xa", "user.kvfs.revision")) > rev
    os.makedirs(M + "/xd/sub")
    assert os.getxattr(M + "/xd/sub", "user.kvfs.kind") == b"dir"
    assert os.getxattr(M + "/xd/sub", "user.kvfs.key") == b"xd/sub/"
    assert "user.kvfs.revision" in os.listxattr(M + "/xa")
    expect_errno(errno.EPERM, os.setxattr, M + "/xa", "user.kvfs.revision", b"1")
    expect_errno(errno.ENODATA, os.getxattr, M + "/xa", "user.other")


def test_values_over_the_limit_fail_efbig_and_keep_the_old_value():
    """A file grown past --max-value-size fails with EFBIG and the stored value is untouched."""
    write(M + "/big", b"old")
    p = sh("head -c %d /dev/zero > big" % (MAXVAL + 1), check=False)
    assert p.returncode != 0 and b"File too large" in p.stderr, p.stderr
    assert rest_raw("big") == b"old" and read(M + "/big") == b"old"
    p = sh("truncate -s %d big" % (MAXVAL * 2), check=False)
    assert p.returncode != 0 and b"File too large" in p.stderr, p.stderr
    assert rest_raw("big") == b"old"
    write(M + "/big", b"x" * MAXVAL)  # exactly the limit is fine
    assert len(rest_raw("big")) == MAXVAL


def test_keys_that_cannot_be_paths_are_hidden_not_harmful():
    """Keys with empty, '.', '..' or over-long components are hidden; a file shadowed by a directory of the same name is hidden; neighbours stay visible."""
    keys = ["u/ok", "u//empty", "u/./dot", "u/../dotdot", "u/" + "x" * 300, "u/" + "y" * 300 + "/z",
            "u/both", "u/both/child", "u/zz", "u/trail/", "/abs"]
    for k in keys:
        assert c.put(k, b"v-" + k.encode(), raw=True).status == 200, k
    assert sorted(os.listdir(M + "/u")) == ["both", "ok", "trail", "zz"]
    assert read(M + "/u/ok") == b"v-u/ok" and read(M + "/u/zz") == b"v-u/zz"
    assert os.path.isdir(M + "/u/both") and read(M + "/u/both/child") == b"v-u/both/child"
    assert os.path.isdir(M + "/u/trail") and os.listdir(M + "/u/trail") == []
    assert "" not in os.listdir(M) and "abs" not in os.listdir(M)
    expect_errno(errno.ENAMETOOLONG, os.stat, M + "/u/" + "x" * 300)
    for k in keys:  # all still reachable through REST
        assert rest_raw(k) == b"v-" + k.encode(), k
    sh("ls -lR u > /dev/null && find u > /dev/null")


def test_large_directory_lists_every_key_once():
    """A directory of 5000 keys lists each exactly once, in a listing that resumes across calls."""
    for start in range(0, 5000, 1000):
        items = [{"key": "many/k%05d" % i, "value": i} for i in range(start, start + 1000)]
        assert c.request("PUT", "/kv/batch", json_body={"items": items}).status == 200
    names = os.listdir(M + "/many")
    assert len(names) == 5000 and sorted(names) == ["k%05d" % i for i in range(5000)]
    lines = sh("ls -l many").stdout.decode().splitlines()
    assert len(lines) == 5001  # "total" + one line per key


# ---- across nodes ----

def cluster_with_mounts(**kw):
    cl = MountCluster(3, extra=["--request-timeout", "1500"], **kw)
    return cl


def test_close_to_open_across_nodes_even_with_cached_pages():
    """A write closed on one node's mount is what the next open on another node reads, even with that file cached there."""
    cl = cluster_with_mounts()
    with started(cl):
        a, b = cl.nodes[1], cl.nodes[2]
        write(a.path("c2o"), b"first")
        assert read(b.path("c2o")) == b"first"
        for i in range(30):
            data = (b"v%d-" % i) * (1 + i * 37)
            write(a.path("c2o"), data)
            got = read(b.path("c2o"))  # b's page cache held the previous version
            assert got == data, (i, len(got), len(data))
            with open(b.path("c2o"), "rb") as f:
                assert os.fstat(f.fileno()).st_size == len(data)
        wait_for(lambda: os.stat(b.path("c2o")).st_size == len(data), 5, "b's size to follow")
        os.unlink(a.path("c2o"))
        wait_for(lambda: not os.path.exists(b.path("c2o")), 5, "the delete to show on b")

        # Two writers on two nodes: every read is one whole version.
        A, B = b"A" * 65536, b"B" * 70000
        write(a.path("w2"), A)
        bad, stop = [], threading.Event()

        def writer(n, data):
            for _ in range(25):
                with open(n.path("w2"), "wb") as f:
                    for k in range(0, len(data), 8192):
                        f.write(data[k:k + 8192])
                        f.flush()

        def reader():
            while not stop.is_set():
                got = read(cl.nodes[3].path("w2"))
                if got not in (A, B):
                    bad.append(len(got))
        ts = [threading.Thread(target=writer, args=(a, A)),
              threading.Thread(target=writer, args=(b, B))]
        r = threading.Thread(target=reader)
        r.start()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        stop.set()
        r.join()
        assert not bad, bad[:5]
        final = read(a.path("w2"))
        assert final in (A, B) and read(b.path("w2")) == final


def test_no_quorum_fails_fast_and_stale_mount_keeps_listing():
    """Without quorum, writes and linearizable opens fail with an errno within the request timeout; a stale mount keeps listing and reading."""
    cl = cluster_with_mounts()
    cl.nodes[3].extra += ["--mount-consistency", "stale"]
    with started(cl):
        write(cl.nodes[1].path("q"), b"quorum")
        os.makedirs(cl.nodes[1].path("qd"))
        write(cl.nodes[1].path("qd", "x"), b"x")
        cl.wait_applied()
        assert read(cl.nodes[3].path("q")) == b"quorum"
        cl.nodes[1].kill()
        cl.nodes[2].kill()
        three = cl.nodes[3]
        t0 = time.monotonic()
        try:
            write(three.path("q"), b"no quorum")
            raise AssertionError("write without quorum succeeded")
        except OSError as e:
            assert e.errno in (errno.EIO, errno.ETIMEDOUT), e
        assert time.monotonic() - t0 < 10
        assert sorted(os.listdir(three.path("qd"))) == ["x"]  # stale: local state
        assert read(three.path("q")) == b"quorum"
        # A linearizable mount alone fails within the timeout instead.
        cl.nodes[1].start()
        cl.wait_leader(ids=[1, 3])
        three.kill()
        one = cl.nodes[1]
        t0 = time.monotonic()
        expect_errno_in = (errno.EIO, errno.ETIMEDOUT)
        try:
            read(one.path("q"))
            raise AssertionError("linearizable read without quorum succeeded")
        except OSError as e:
            assert e.errno in expect_errno_in, e
        assert time.monotonic() - t0 < 10


def test_shutdown_unmounts_and_crash_leftover_is_recovered():
    """SIGTERM unmounts cleanly; after kill -9 the broken mount is detached and remounted at the next start."""
    with started(MountNode(name="crash")) as n:
        write(n.path("keep"), b"kept")
        assert n.stop() == 0 and not is_mounted(n.mnt)
        n.start()
        assert read(n.path("keep")) == b"kept"
        n.kill(unmount=False)
        assert broken(n.mnt)
        n.start()
        assert not broken(n.mnt) and read(n.path("keep")) == b"kept"
        write(n.path("after"), b"ok")
        assert n.client().get("after", headers=RAW).body == b"ok"


FUSECTL = "/sys/fs/fuse/connections"


def test_shutdown_with_a_file_held_open_still_ends():
    """SIGTERM while a file stays open on the mount: kvfsd aborts the FUSE
    connection (mounting the FUSE control filesystem if nothing had, as on a
    bare system or in a container) and exits, instead of waiting for the
    file to be closed; the holder then gets ENOTCONN from the mount.
    When a request from the kernel reaches a worker after SIGTERM, kvfsd
    unmounts the usual way instead (which must hold up too): then the case
    runs again, up to 5 times, until the abort is reached."""
    had_ctl = is_mounted(FUSECTL)
    try:
        for _ in range(5):
            with started(MountNode(name="held")) as n:
                # Written through REST, and only the mount's root held: a
                # file closed or looked up on the mount has the kernel send
                # a release or forget later, which makes the usual way
                # likelier.
                assert n.client().put("f", b"x", raw=True).status == 200
                holder = os.open(n.mnt, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    assert n.stop(timeout=30) == 0 and not is_mounted(n.mnt)
                    try:
                        os.statvfs("/proc/self/fd/%d" % holder)  # always reaches the daemon
                        raise AssertionError("statvfs through the aborted connection succeeded")
                    except OSError as e:
                        assert e.errno == errno.ENOTCONN, e
                finally:
                    os.close(holder)
                text = n.tail(200)
            if "aborting the connection" in text:
                assert "cannot abort" not in text, text
                return
        raise AssertionError("the abort was never reached:\n" + text)
    finally:
        if not had_ctl and is_mounted(FUSECTL):
            subprocess.call(["umount", FUSECTL])  # as found: the next run tests the same


def shutdown_without_fusectl():
    """One run of the test below: kvfsd in a mount namespace of its own
    with an empty tmpfs over /sys/fs/fuse, a directory held open on its
    mount, SIGTERM. Asserts what must hold however kvfsd ends (exit 0 in
    time, ENOTCONN for the holder, the write there at the next start) and
    returns kvfsd's log."""
    d = tmpdir()
    mnt = os.path.join(d, "mnt")
    os.makedirs(mnt)
    ready = os.path.join(d, "ready")
    log = open(os.path.join(d, "kvfsd.log"), "wb")
    # unshare and sh exec: the process is kvfsd itself.
    p = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs kvfs-no-fusectl /sys/fs/fuse && exec "$@"', "sh", KVFSD,
         "--data", os.path.join(d, "db"), "--http", "127.0.0.1:0", "--ready-file", ready,
         "--mount", mnt], stdout=log, stderr=log)
    holder = None
    try:
        wait_for(lambda: os.path.exists(ready) or p.poll() is not None, 20, "kvfsd to start")
        assert p.poll() is None, open(log.name).read()
        # Its mount is in its namespace: reached through its root.
        there = "/proc/%d/root%s" % (p.pid, mnt)
        wait_for(lambda: " %s " % mnt in open("/proc/%d/mountinfo" % p.pid).read(), 20,
                 "the mount")
        # Through REST, and only the root held (as in the test above).
        assert Client(open(ready).read().strip()).put("f", b"x", raw=True).status == 200
        holder = os.open(there, os.O_RDONLY | os.O_DIRECTORY)
        p.terminate()
        assert p.wait(30) == 0
        try:
            os.statvfs("/proc/self/fd/%d" % holder)  # always reaches the daemon
            raise AssertionError("statvfs through the ended connection succeeded")
        except OSError as e:
            assert e.errno == errno.ENOTCONN, e
        text = open(log.name).read()
        # The write is there at the next start.
        with started(Node(data=d, name="after")) as n:
            assert n.client().get("f", headers=RAW).body == b"x"
        return text
    finally:
        if holder is not None:
            os.close(holder)
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()


def test_shutdown_where_the_connection_cannot_be_aborted_still_ends():
    """SIGTERM while a directory stays open on the mount, where the FUSE
    control filesystem can be neither found nor mounted (here: kvfsd in a
    mount namespace of its own with an empty tmpfs over /sys/fs/fuse; in
    the wild, an unprivileged kvfsd or a read-only /sys): kvfsd stops its
    node and exits instead of waiting for the directory to be closed, and
    the kernel ends the connection (ENOTCONN for the holder), losing
    nothing. It used to wait until the holder closed it.
    In some runs (2 of 7 in CI, none of 18 here) a request from the kernel
    reaches a worker after SIGTERM; the worker then sees the session ended
    and kvfsd unmounts the usual way, which must hold up as well but is not
    the case under test: then the test runs again, up to 5 times."""
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, "this test needs mount namespaces: %s" % probe.stderr
    logs = []
    for _ in range(5):
        logs.append(shutdown_without_fusectl())
        if "kvfsd ends without" in logs[-1]:
            assert "cannot abort the FUSE connection" in logs[-1], logs[-1]
            return
    raise AssertionError("the no-abort shutdown was never reached:\n" + "\n----\n".join(logs))


def test_zz_shutdown_of_the_shared_node_unmounts():
    """The shared node stops cleanly with its mount idle and leaves nothing mounted."""
    assert node.stop() == 0
    assert not is_mounted(M)
    shutil.rmtree(os.path.join(M, "nothing-left"), ignore_errors=True)


if __name__ == "__main__":
    run(globals())
