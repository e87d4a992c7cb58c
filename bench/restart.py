#!/usr/bin/env python3
"""Restart-to-serving time of a node holding many keys.

    python3 bench/restart.py [KEYS [NODES]]     (defaults: 1000000 keys, 3 nodes)

Loads KEYS keys of 100-byte values in batches of 10,000, stops one follower
cleanly (and, separately, kills one with -9), restarts it and reports the
time from the exec to its first successful linearizable read."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from harness import Client, Cluster  # noqa: E402

keys = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
nodes = int(sys.argv[2]) if len(sys.argv) > 2 else 3
cl = Cluster(nodes, heartbeat_ms=100, election_ms=1000).start()
try:
    lid = cl.wait_leader()
    c = cl.client(lid)
    t0 = time.monotonic()
    val = "x" * 100
    for b in range(0, keys, 10000):
        items = [{"key": "k%08d" % i, "value": val} for i in range(b, min(keys, b + 10000))]
        r = c.request("PUT", "/kv/batch", json_body={"items": items})
        assert r.status == 200, r
    load = time.monotonic() - t0
    cl.wait_applied()
    victim = [i for i in cl.nodes if i != lid][0] if nodes > 1 else lid
    for how in ("SIGTERM", "kill -9"):
        if how == "SIGTERM":
            cl.nodes[victim].stop()
        else:
            cl.nodes[victim].kill()
        t0 = time.monotonic()
        cl.nodes[victim].start(timeout=120)
        vc = Client(cl.nodes[victim].url, timeout=30)
        while True:
            r = vc.get("k%08d" % (keys - 1))
            if r.status == 200:
                break
        took = time.monotonic() - t0
        print("%d keys (loaded in %.1f s): restart after %s to first linearizable read: %.2f s"
              % (keys, load, how, took))
finally:
    for n in cl.nodes.values():
        n.kill()
