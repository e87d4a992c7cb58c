#!/usr/bin/env python3
"""Benchmarks of the kvfs mount against the REST API and the local disk.

    top_builddir=build python3 bench/fs_bench.py [--files N] [--list-keys N]

Starts one single-node kvfsd with --mount on a temporary directory (data on
the same disk as the temporary directory), then measures:

  1. create + write 1 KiB + close of N files, one process, through the mount,
     against N PUTs of 1 KiB on one keep-alive REST connection;
  2. the same N files written by 8 processes in parallel;
  3. `ls -l` of a directory holding --list-keys keys (loaded by REST batch),
     first listing (nothing in the kernel's caches) and a second one;
  4. sequential read (cat) of a 1 MiB file through the mount, first read
     after the write and repeated, against cat of the same bytes on the local
     disk from the page cache and after dropping the file's pages.

Benchmarks measure; they assert nothing. Everything started is stopped and
unmounted at exit.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from harness import tmpdir  # noqa: E402
from fsharness import MountNode  # noqa: E402

PAYLOAD = b"x" * 1024


def write_files(d, names):
    for n in names:
        with open(os.path.join(d, n), "wb") as f:
            f.write(PAYLOAD)


def rest_puts(url, n, prefix):
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    for i in range(n):
        conn.request("PUT", "/kv/%s%d" % (prefix, i), body=PAYLOAD,
                     headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
    conn.close()


def timed(fn, *a):
    t0 = time.monotonic()
    fn(*a)
    return time.monotonic() - t0


def cat_time(path, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.monotonic()
        subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
        dt = time.monotonic() - t0
        best = dt if best is None else min(best, dt)
    return best


def drop_pages(path):
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--list-keys", type=int, default=100000)
    ap.add_argument("--writers", type=int, default=8)
    args = ap.parse_args()
    node = MountNode(name="bench").start()
    try:
        m = node.mnt
        res = {}
        # 1. sequential creates vs REST PUTs
        os.mkdir(os.path.join(m, "seq"))
        names = ["f%05d" % i for i in range(args.files)]
        dt = timed(write_files, os.path.join(m, "seq"), names)
        res["mount_create_write_close_per_s"] = args.files / dt
        dt = timed(rest_puts, node.url, args.files, "rest/")
        res["rest_put_1conn_per_s"] = args.files / dt
        res["mount_vs_rest"] = res["mount_create_write_close_per_s"] / res["rest_put_1conn_per_s"]
        # 2. parallel writers
        os.mkdir(os.path.join(m, "par"))
        per = args.files // args.writers
        chunks = [["w%d-%05d" % (w, i) for i in range(per)] for w in range(args.writers)]
        procs = [multiprocessing.Process(target=write_files, args=(os.path.join(m, "par"), c))
                 for c in chunks]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        res["mount_%d_writers_per_s" % args.writers] = per * args.writers / (time.monotonic() - t0)
        # 3. ls -l of a big directory
        c = node.client()
        for start in range(0, args.list_keys, 10000):
            items = [{"key": "big/k%07d" % i, "value": i}
                     for i in range(start, min(start + 10000, args.list_keys))]
            r = c.request("PUT", "/kv/batch", json_body={"items": items})
            assert r.status == 200, r
        ls = "ls -l %s > /dev/null" % os.path.join(m, "big")
        t0 = time.monotonic()
        subprocess.run(ls, shell=True, check=True)
        res["ls_l_%d_first_s" % args.list_keys] = time.monotonic() - t0
        t0 = time.monotonic()
        subprocess.run(ls, shell=True, check=True)
        res["ls_l_%d_second_s" % args.list_keys] = time.monotonic() - t0
        # 4. 1 MiB sequential reads
        blob = os.urandom(1 << 20)
        mp = os.path.join(m, "mib")
        with open(mp, "wb") as f:
            f.write(blob)
        local = os.path.join(tmpdir(), "mib")
        with open(local, "wb") as f:
            f.write(blob)
        res["mount_cat_1mib_first_ms"] = cat_time(mp, 1) * 1000
        res["mount_cat_1mib_repeat_ms"] = cat_time(mp, 20) * 1000
        res["local_cat_1mib_cached_ms"] = cat_time(local, 20) * 1000
        drop_pages(local)
        res["local_cat_1mib_uncached_ms"] = cat_time(local, 1) * 1000
        res["cat_process_only_ms"] = cat_time("/dev/null", 20) * 1000
        for k, v in res.items():
            print("%-32s %10.3f" % (k, v))
        print(json.dumps(res))
    finally:
        node.stop()


if __name__ == "__main__":
    main()
