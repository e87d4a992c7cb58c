#!/usr/bin/env python3
"""Failover time: kill -9 of the leader of a 3-node cluster, then the time
until the first write through a survivor succeeds. Run from the build
directory's parent or set top_builddir; prints the median of ROUNDS.

    python3 bench/failover.py [HEARTBEAT_MS ELECTION_MS [ROUNDS]]

The defaults are kvfsd's own defaults (100 ms / 1000 ms)."""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from harness import Client, Cluster, wait_for  # noqa: E402

hb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
el = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
times = []
cl = Cluster(3, heartbeat_ms=hb, election_ms=el).start()
try:
    for r in range(rounds):
        lid = cl.wait_leader()
        survivor = [i for i in cl.nodes if i != lid][0]
        c = Client(cl.nodes[survivor].url, timeout=5, retry=False)
        assert c.put("warm", r).status == 200
        t0 = time.monotonic()
        cl.nodes[lid].kill()
        while True:
            try:
                if c.put("after", r).status == 200:
                    break
            except Exception:
                c = Client(cl.nodes[survivor].url, timeout=5, retry=False)
        times.append(time.monotonic() - t0)
        cl.nodes[lid].start()
        cl.wait_applied()
finally:
    for n in cl.nodes.values():
        n.kill()
print("heartbeat %d ms, election %d ms: kill -9 of the leader to first write through a "
      "survivor: median %.0f ms (min %.0f, max %.0f, %d rounds)" % (
          hb, el, statistics.median(times) * 1e3, min(times) * 1e3, max(times) * 1e3, rounds))
