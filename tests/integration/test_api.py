"""REST API of a single kvfsd over real HTTP: every endpoint of the seed's
API (shared/seed/API.md) with its shapes, the seed's bugs fixed, conditional
writes, limits, bad input of every kind, a 100k-key range paged to the end,
and durability across kill -9."""
import base64
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import KVFSD, Client, Node, put_batches, run, tmpdir, wait_for  # noqa: E402

LIMITS = ["--max-key-size", "256", "--max-value-size", "65536", "--max-batch-items", "100",
          "--max-body", "1048576"]
node = Node(extra=LIMITS, name="api").start()
c = node.client()


def test_put_get_json_values_round_trip():
    """JSON values of every type come back exactly as written (compact)."""
    for v in [42, -1.5, 0.1, "text", True, False, [1, 2, {"a": None}], {"a": [1, 2]},
              "üñí €", 123456789012345678901234567890]:
        r = c.put("rt", v)
        assert r.status == 200 and r.json()["status"] == "success", r
        g = c.get("rt")
        assert g.status == 200, g
        assert g.json() == {"value": v}, (v, g)
    raw = c.request("PUT", "/kv/fmt", body=b'{ "a" : [ 1 , 2.50 , 1e3 ] }',
                    headers={"Content-Type": "application/json"})
    assert raw.status == 200
    assert c.request("GET", "/kv/fmt").body == b'{"value":{"a":[1,2.50,1e3]}}'


def test_put_returns_revision_and_etag():
    """A write answers with its revision, which GET returns as the ETag."""
    r = c.put("etag", 1)
    rev = r.json()["revision"]
    assert r.headers["etag"] == '"%d"' % rev
    g = c.get("etag")
    assert g.headers["etag"] == '"%d"' % rev
    r2 = c.put("etag", 2)
    assert r2.json()["revision"] > rev


def test_non_json_content_types_store_raw_bytes():
    """curl -d style bodies are stored as bytes and read back as a JSON string."""
    r = c.request("PUT", "/kv/foo", body=b"bar",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200
    assert c.get("foo").json() == {"value": "bar"}
    c.request("PUT", "/kv/txt", body=b"{not json", headers={"Content-Type": "text/plain"})
    assert c.get("txt").json() == {"value": "{not json"}


def test_binary_values_are_retrievable():
    """Non-UTF-8 bytes come back as base64 in JSON and as-is with Accept: octet-stream."""
    blob = bytes(range(256))
    assert c.put("bin", blob, raw=True).status == 200
    g = c.get("bin").json()
    assert g["encoding"] == "base64" and base64.b64decode(g["value"]) == blob
    r = c.get("bin", headers={"Accept": "application/octet-stream"})
    assert r.status == 200 and r.body == blob
    assert r.headers["content-type"] == "application/octet-stream"
    c.put("j", {"x": 1})
    assert c.get("j", headers={"Accept": "application/octet-stream"}).body == b'{"x":1}'


def test_get_missing_is_404():
    """Reading an absent key answers the seed's 404 shape."""
    r = c.get("never-written")
    assert r.status == 404 and r.json() == {"detail": "Key not found"}


def test_delete_answers_200_then_404():
    """DELETE is 200 for a present key and 404 after (the seed always said 500)."""
    c.put("d1", 1)
    r = c.delete("d1")
    assert r.status == 200 and r.json()["status"] == "success"
    assert c.get("d1").status == 404
    r = c.delete("d1")
    assert r.status == 404 and r.json() == {"detail": "Key not found"}


def test_every_key_is_reachable():
    """Keys named batch/range, keys with '/', spaces, '+', '%', NUL and UTF-8 all work."""
    keys = ["batch", "range", "a/b/c", "/lead", "trail/", "a//b", "sp ace", "plus+sign",
            "pct%41", "nul\0byte", "ключ", "?q=1&x", "#hash", "."]
    for i, k in enumerate(keys):
        assert c.put(k, i).status == 200, k
    for i, k in enumerate(keys):
        g = c.get(k)
        assert g.status == 200 and g.json() == {"value": i}, (k, g)
    # The path form decodes too, '/' included.
    assert c.request("GET", "/kv/a/b/c").json() == {"value": 2}
    assert c.request("GET", "/kv/a%2Fb%2Fc").json() == {"value": 2}
    assert c.request("GET", "/kv/batch").json() == {"value": 0}
    assert c.request("DELETE", "/kv/range").status == 200
    assert c.get("range").status == 404


def test_batch_is_atomic_and_real():
    """PUT /kv/batch stores every item (the seed stored the body under "batch")."""
    c.delete("batch")
    items = [{"key": "bk%d" % i, "value": {"n": i}} for i in range(50)]
    r = c.request("PUT", "/kv/batch", json_body={"items": items})
    assert r.status == 200 and r.json()["status"] == "success", r
    for i in range(50):
        assert c.get("bk%d" % i).json() == {"value": {"n": i}}
    assert c.get("batch").status == 404
    # A batch with one bad item writes nothing.
    bad = [{"key": "atom1", "value": 1}, {"key": "atom2"}]
    r = c.request("PUT", "/kv/batch", json_body={"items": bad})
    assert r.status == 422, r
    assert c.get("atom1").status == 404


def test_batch_bad_shapes():
    """Malformed batch bodies get 422 with a FastAPI-style detail list."""
    for body in [{}, {"items": 3}, {"items": [3]}, {"items": [{"value": 1}]},
                 {"items": [{"key": 5, "value": 1}]}, {"items": [{"key": "k", "value": None}]}]:
        r = c.request("PUT", "/kv/batch", json_body=body)
        assert r.status == 422 and isinstance(r.json()["detail"], list), (body, r)
    r = c.request("PUT", "/kv/batch", json_body={"items": [{"key": "", "value": 1}]})
    assert r.status == 400, r


def test_range_sorted_inclusive():
    """Range results are sorted by key bytes and include both ends."""
    for k in ["r/c", "r/a", "r/b", "r/d", "r/a0"]:
        c.put(k, k)
    r = c.request("POST", "/kv/range", json_body={"start_key": "r/a", "end_key": "r/c"})
    assert r.status == 200
    assert [x["key"] for x in r.json()["results"]] == ["r/a", "r/a0", "r/b", "r/c"]
    assert r.json()["results"][0] == {"key": "r/a", "value": "r/a"}
    # A small reply goes whole, with its length (one send, not a chunked stream).
    assert int(r.headers["content-length"]) == len(r.body), r.headers
    r = c.request("POST", "/kv/range", json_body={"start_key": "r/d", "end_key": "r/a"})
    assert r.json() == {"results": []}
    r = c.request("POST", "/kv/range", json_body={"prefix": "r/", "keys_only": True})
    assert r.json()["results"] == [{"key": k} for k in ["r/a", "r/a0", "r/b", "r/c", "r/d"]]
    r = c.request("POST", "/kv/range",
                  json_body={"start_key": "r/a", "end_key": "r/z", "extra": "ignored"})
    assert len(r.json()["results"]) == 5


def test_range_bad_input():
    """Missing or mistyped range fields are 422; a bad continue token is 400."""
    for body in [{}, {"start_key": "a"}, {"end_key": "a"}, {"start_key": 1, "end_key": "b"},
                 {"start_key": "a", "end_key": "b", "limit": 0},
                 {"start_key": "a", "end_key": "b", "limit": "x"}, [1]]:
        r = c.request("POST", "/kv/range", json_body=body)
        assert r.status == 422, (body, r)
    r = c.request("POST", "/kv/range", body=b"{", headers={"Content-Type": "application/json"})
    assert r.status == 422
    r = c.request("POST", "/kv/range",
                  json_body={"start_key": "a", "end_key": "b", "continue": "!!"})
    assert r.status == 400


def test_range_100k_keys_paged_to_the_end():
    """A 100,000-key range pages to the end with limit/continue, nothing lost or repeated."""
    n = 100000
    keys = ["big/%06d" % i for i in range(n)]
    for i in range(0, n, 100):
        items = [{"key": k, "value": i} for k in keys[i:i + 100]]
        assert c.request("PUT", "/kv/batch", json_body={"items": items}).status == 200
    seen, token, pages = [], None, 0
    while True:
        body = {"start_key": "big/", "end_key": "big/~", "limit": 7000}
        if token:
            body["continue"] = token
        r = c.request("POST", "/kv/range", json_body=body)
        assert r.status == 200, r
        js = r.json()
        seen.extend(x["key"] for x in js["results"])
        pages += 1
        token = js.get("continue")
        if not token:
            break
    assert seen == keys, (len(seen), pages)
    assert pages == (n + 6999) // 7000
    # Unpaged: the whole range streams in one response.
    r = c.request("POST", "/kv/range", json_body={"prefix": "big/", "keys_only": True})
    assert len(r.json()["results"]) == n
    assert r.headers.get("transfer-encoding") == "chunked", r.headers


def test_conditional_writes():
    """If-Match / If-None-Match: * make compare-and-swap; mismatches are 412."""
    rev = c.put("cas", 1).json()["revision"]
    assert c.put("cas", 2, headers={"If-Match": '"%d"' % (rev + 1000)}).status == 412
    assert c.get("cas").json() == {"value": 1}
    r = c.put("cas", 3, headers={"If-Match": '"%d"' % rev})
    assert r.status == 200
    assert c.put("cas", 4, headers={"If-None-Match": "*"}).status == 412
    c.delete("cas-new")
    assert c.put("cas-new", 1, headers={"If-None-Match": "*"}).status == 200
    assert c.put("cas-missing", 1, headers={"If-Match": "*"}).status == 412
    rev = c.get("cas").headers["etag"]
    assert c.delete("cas", headers={"If-Match": '"1"'}).status == 412
    assert c.delete("cas", headers={"If-Match": rev}).status == 200
    assert c.put("cas", 1, headers={"If-Match": "garbage"}).status == 400
    r = c.get("cas-new")
    assert c.get("cas-new", headers={"If-None-Match": r.headers["etag"]}).status == 304


def test_limits():
    """Keys, values, batches and bodies over their limits get 413/400 naming the limit."""
    r = c.put("k" * 257, 1)
    assert r.status == 413 and "max-key-size" in r.json()["detail"], r
    r = c.put("big", "x" * 70000)
    assert r.status == 413 and "max-value-size" in r.json()["detail"], r
    r = c.put("bigraw", b"x" * 70000, raw=True)
    assert r.status == 413
    items = [{"key": "l%d" % i, "value": i} for i in range(101)]
    r = c.request("PUT", "/kv/batch", json_body={"items": items})
    assert r.status == 413 and "max-batch-items" in r.json()["detail"], r
    r = c.put("body", b"x" * (1048576 + 10), raw=True)
    assert r.status == 413 and "max-body" in r.json()["detail"], r
    assert c.get("l0").status == 404 and c.get("big").status == 404


def test_bad_json_and_empty_bodies():
    """Invalid JSON, null and missing bodies are 422 with a detail list, nothing stored."""
    for body in [b"", b"null", b"{", b"[1,]", b"\"unterminated", b"01", b"nan",
                 b"\"\xff\"", b"[" * 1000 + b"]" * 1000, b"1 2"]:
        r = c.request("PUT", "/kv/badjson", body=body,
                      headers={"Content-Type": "application/json"})
        assert r.status == 422 and isinstance(r.json()["detail"], list), (body[:20], r)
    assert c.get("badjson").status == 404


def test_bad_paths_methods_and_encodings():
    """Unknown paths 404, wrong methods 405, bad percent-encoding and empty keys 400."""
    assert c.request("GET", "/nope").json() == {"detail": "Not Found"}
    assert c.request("GET", "/nope").status == 404
    r = c.request("POST", "/kv/x")
    assert r.status == 405 and r.json() == {"detail": "Method Not Allowed"}
    assert c.request("DELETE", "/health").status == 405
    r = c.request("PUT", "/cluster/members")  # the methods it takes, HEAD included
    assert r.status == 405 and r.headers.get("allow") == "GET, HEAD, POST, DELETE", r.headers
    assert c.request("HEAD", "/cluster/members").status == 200
    assert c.request("GET", "/kv/bad%zz").status == 400
    assert c.request("GET", "/kv/bad%4").status == 400
    assert c.request("GET", "/kv").status == 400
    assert c.request("GET", "/kv?key=").status == 400
    assert c.request("GET", "/kv/a?key=b").status == 400
    assert c.request("GET", "/kv/x?consistency=maybe").status == 400


def test_health_and_replication_shapes():
    """/health and /debug/replication carry the seed's fields with real values."""
    h = c.request("GET", "/health").json()
    for f in ["status", "cluster_size", "connected_nodes", "connected_node_addresses",
              "is_leader", "leader_node", "last_commit_time", "replication_lag", "ready",
              "node_port", "api_port", "cluster_ports", "other_nodes"]:
        assert f in h, f
    assert h["status"] == "healthy" and h["ready"] is True and h["is_leader"] is True
    assert h["ready_detail"] is None  # why it is not, when it is not (/readyz's detail)
    assert h["api_port"] == int(node.url.rsplit(":", 1)[1])
    d = c.request("GET", "/debug/replication").json()
    for f in ["node_address", "is_leader", "leader", "is_ready", "connected_nodes",
              "total_nodes", "last_commit_time", "replication_lag", "cluster_time", "data_size"]:
        assert f in d, f
    keys = c.request("POST", "/kv/range", json_body={"start_key": "", "end_key": "\U0010ffff" * 4,
                                                       "keys_only": True}).json()["results"]
    assert d["data_size"] == len(keys)
    assert c.request("GET", "/livez").status == 200
    assert c.request("GET", "/readyz").status == 200


def test_metrics_exposition():
    """/metrics serves the seed's five families with real values."""
    c.get("never-there")
    c.put("metric-key", 1)
    m = c.request("GET", "/metrics")
    assert m.status == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.body.decode()
    for name in ["kvstore_operations_total", "kvstore_operation_latency_seconds_bucket",
                 "kvstore_replication_lag_seconds", "kvstore_cluster_size",
                 "kvstore_last_commit_time"]:
        assert name in text, name
    line = [l for l in text.splitlines()
            if l.startswith('kvstore_operations_total{operation="put",status="success"}')][0]
    assert int(line.split()[-1]) > 0
    # The filter of live keys: one layer for the minimum of 1 Mi keys at 20
    # bits each, whatever this small store holds.
    assert c.metric("kvfs_key_filter_bytes") == 4 << 20
    # promtool (Debian package prometheus) must find nothing to complain about.
    p = subprocess.run(["promtool", "check", "metrics"], input=m.body, capture_output=True)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), (
        p.stdout + p.stderr).decode()


def test_overwrites_take_revisions_from_the_metadata_cache():
    """From its second overwrite on, a key's revisions come from the metadata
    cache (no read of its old record): /metrics counts the hits and misses,
    and compare-and-swap against the cached revision passes or fails as it
    must."""
    hit = 'kvfs_disk_backend_meta_cache_lookups_total{result="hit"}'
    miss = 'kvfs_disk_backend_meta_cache_lookups_total{result="miss"}'
    hits, misses = c.metric(hit), c.metric(miss)
    for v in range(4):
        assert c.put("mc", v).status == 200
    assert c.metric(miss) - misses >= 1  # the first overwrite reads
    assert c.metric(hit) - hits >= 2
    rev = int(c.get("mc").headers["etag"].strip('"'))
    assert c.put("mc", "x", headers={"If-Match": '"%d"' % (rev - 1)}).status == 412
    assert c.put("mc", "y", headers={"If-Match": '"%d"' % rev}).status == 200
    assert c.delete("mc").status == 200
    assert c.put("mc", "z", headers={"If-None-Match": "*"}).status == 200
    assert c.get("mc").json() == {"value": "z"}


def test_concurrent_writers_share_fsyncs():
    """Writes that arrive together are group-committed: one log fsync serves many.

    The node is paused (SIGSTOP) while 64 clients send a PUT each, then resumed,
    so the requests are waiting together; the wall-clock throughput figure
    comes from the benchmarks, this checks the mechanism."""
    import http.client
    import urllib.parse

    def fsyncs():
        text = c.request("GET", "/metrics").body.decode()
        return int(float([l for l in text.splitlines()
                          if l.startswith("kvfs_disk_wal_fsync_total")][0].split()[-1]))
    u = urllib.parse.urlparse(node.url)
    rounds, nconn, total_syncs = 5, 64, 0
    for rnd in range(rounds):
        before = fsyncs()
        conns = [http.client.HTTPConnection(u.hostname, u.port, timeout=30) for _ in range(nconn)]
        for cn in conns:
            cn.connect()
        node.pause()
        try:
            for i, cn in enumerate(conns):
                cn.request("PUT", "/kv/gc/%d/%d" % (rnd, i), body=b"1",
                           headers={"Content-Type": "application/json"})
        finally:
            node.resume()
        for cn in conns:
            assert cn.getresponse().status == 200
            cn.close()
        total_syncs += fsyncs() - before
    writes = rounds * nconn
    assert total_syncs <= writes / 4, (total_syncs, writes)


def test_kill9_keeps_every_acknowledged_write():
    """kill -9 during a stream of writes: every acknowledged write survives, batches whole."""
    n = Node(name="durable").start()
    acked, stop = [], threading.Event()

    def writer(t):
        cl = n.client()
        i = 0
        while not stop.is_set():
            items = [{"key": "w/%d/%d/%d" % (t, i, j), "value": [t, i, j]} for j in range(5)]
            try:
                r = cl.request("PUT", "/kv/batch", json_body={"items": items})
            except Exception:
                return
            if r.status == 200:
                acked.append((t, i))
            i += 1
    ts = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    [t.start() for t in ts]
    wait_for(lambda: len(acked) > 300, 30, "300 acknowledged batches")
    n.kill()
    stop.set()
    [t.join() for t in ts]
    n.start()
    cl = n.client()
    got = {x["key"] for x in cl.request("POST", "/kv/range", json_body={
        "prefix": "w/", "keys_only": True}).json()["results"]}
    for t, i in acked:
        for j in range(5):
            assert "w/%d/%d/%d" % (t, i, j) in got, (t, i, j)
    # All or nothing per batch, acknowledged or not.
    batches = {}
    for k in got:
        _, t, i, j = k.split("/")
        batches.setdefault((t, i), set()).add(j)
    assert all(len(v) == 5 for v in batches.values())
    assert cl.get("w/0/0/0").json() == {"value": [0, 0, 0]}
    assert n.stop() == 0


def test_kill9_replays_the_applied_state_not_yet_flushed():
    """With the applied state's flush a minute away, everything lives in memory
    and the log: kill -9, and the restart replays it, values, deletions,
    revisions and the key count."""
    n = Node(name="unflushed", extra=["--flush-ms", "60000"]).start()
    cl = n.client()
    for i in range(100):
        assert cl.put("uf%d" % i, i).status == 200
    assert cl.put("uf7", "again").status == 200
    assert cl.delete("uf8").status == 200
    etag = cl.get("uf9").headers["etag"]
    assert cl.get("uf7").json() == {"value": "again"}
    assert cl.metric("kvfs_disk_backend_pending_bytes") > 0
    n.kill()
    n.start()
    cl = n.client()
    assert cl.get("uf7").json() == {"value": "again"}
    assert cl.get("uf8").status == 404
    assert cl.get("uf99").json() == {"value": 99}
    assert cl.get("uf9").headers["etag"] == etag
    assert cl.request("GET", "/debug/replication").json()["data_size"] == 99
    assert n.stop() == 0


def test_applied_state_over_its_bound_is_flushed_at_once():
    """--flush-max bounds the applied state waiting in memory: past it the node
    flushes at once and applies again afterwards, long before --flush-ms, and
    no write waits for the interval."""
    n = Node(name="bounded", extra=["--flush-ms", "60000", "--flush-max", "1"]).start()
    cl = n.client()
    value = "x" * 1000
    for b in range(30):  # about 3 MiB in all
        items = [{"key": "fb/%d/%d" % (b, j), "value": value} for j in range(100)]
        assert cl.request("PUT", "/kv/batch", json_body={"items": items}).status == 200
    flushes = cl.metric("kvfs_disk_backend_fsync_duration_seconds_count")
    assert flushes >= 2, flushes
    assert cl.metric("kvfs_disk_backend_pending_bytes") < 2 * 1024 * 1024
    assert cl.get("fb/29/99").json() == {"value": value}
    assert cl.request("GET", "/debug/replication").json()["data_size"] == 3000
    assert n.stop() == 0


def test_compactions_gauge_follows_leveldb_background_work():
    """kvfs_disk_backend_compactions counts LevelDB's background jobs: it goes
    above 0 while writes fill memtables (16 MiB each) and back to 0 when
    they stop, with tables read by pread or by mmap (two environments); then
    kvfs_disk_backend_compaction_debt_bytes is 0."""
    for how in ("pread", "mmap"):
        n = Node(name="jobs-" + how, extra=["--flush-max", "1", "--table-reads", how]).start()
        cl = n.client()
        assert cl.metric("kvfs_disk_backend_compactions") == 0
        value = "j" * 1000
        seen = 0
        for b in range(600):  # at most 60 MB
            items = [{"key": "cj/%d/%d" % (b, j), "value": value} for j in range(100)]
            assert cl.request("PUT", "/kv/batch", json_body={"items": items}).status == 200
            seen = max(seen, cl.metric("kvfs_disk_backend_compactions"))
            if seen > 0 and b >= 200:
                break
        assert seen > 0, how
        wait_for(lambda: cl.metric("kvfs_disk_backend_compactions") == 0, timeout=60,
                 what="compactions done")
        tables = sum(float(line.split()[1]) for line in
                     cl.request("GET", "/metrics").body.decode().splitlines()
                     if line.startswith("kvfs_disk_backend_files{"))
        assert tables > 0, how
        # LevelDB compacts while a level is over its target size: a quiet
        # store owes nothing.
        assert cl.metric("kvfs_disk_backend_compaction_debt_bytes") == 0, how
        assert n.stop() == 0


def load_4mb(cl, prefix, value):
    """40 batches of 100 keys "prefix/b/j" holding value (1,000 bytes: 4 MB),
    then waits until they are flushed to LevelDB and it is done compacting."""
    for b in range(40):
        items = [{"key": "%s/%d/%d" % (prefix, b, j), "value": value} for j in range(100)]
        assert cl.request("PUT", "/kv/batch", json_body={"items": items}).status == 200
    wait_for(lambda: cl.metric("kvfs_disk_backend_pending_bytes") == 0
             and cl.metric("kvfs_disk_backend_compactions") == 0, timeout=60,
             what="flushed and compacted")


def test_write_buffer_sets_the_memtable_size():
    """--write-buffer is the size of LevelDB's memtable: the same 4 MB of
    writes stay in the default 16 MiB memtable (no table written) and fill
    several of 1 MiB (tables written), and the data reads back either way."""
    def tables_after_4mb(name, extra):
        n = Node(name=name, extra=["--flush-max", "1"] + extra).start()
        try:
            cl = n.client()
            value = "m" * 1000
            load_4mb(cl, "wb", value)
            assert cl.get("wb/39/99").json() == {"value": value}
            return sum(float(line.split()[1]) for line in
                       cl.request("GET", "/metrics").body.decode().splitlines()
                       if line.startswith("kvfs_disk_backend_files{"))
        finally:
            assert n.stop() == 0

    assert tables_after_4mb("wb-default", []) == 0
    assert tables_after_4mb("wb-1", ["--write-buffer", "1"]) >= 2


# kvfsd's log line when it may not leave SCHED_IDLE (no CAP_SYS_NICE, RLIMIT_NICE under 20)
IDLE_UNAVAILABLE = b"background work runs at normal priority"


def thread_policies(pid, comm):
    """Scheduling policy (0 normal, 5 SCHED_IDLE) of each thread of pid named comm."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        if name == comm:
            out.append(int(rest.split()[38]))  # field 41, policy
    return out


def test_compactions_run_at_idle_priority_while_the_store_keeps_up():
    """With --background-priority idle, LevelDB's background thread
    (kvfs-compact) runs under SCHED_IDLE while the store keeps up; by
    default it stays at normal priority. A load through 1 MiB memtables
    makes it work; once it has caught up it is idle again."""
    def policies_after_load(name, extra):
        n = Node(name=name, extra=["--write-buffer", "1", "--flush-max", "1"] + extra).start()
        try:
            load_4mb(n.client(), "bp", "p" * 1000)
            if not extra:
                return policies(n)
            with open(n.log, "rb") as f:
                if IDLE_UNAVAILABLE in f.read():
                    print("  (not checked: this process may not leave SCHED_IDLE)")
                    return [5]
            # the node looks at its store every tick: calm again, idle again
            return wait_for(lambda: policies(n) if policies(n) == [5] else None, timeout=10,
                            what="kvfs-compact back to SCHED_IDLE")
        finally:
            assert n.stop() == 0

    def policies(n):
        return thread_policies(n.proc.pid, "kvfs-compact")
    assert policies_after_load("bg-idle", ["--background-priority", "idle"]) == [5]
    assert policies_after_load("bg-default", []) == [0]


def test_restart_replays_and_keeps_revisions():
    """A clean restart keeps data, revisions and the key count."""
    n = Node(name="restart", extra=["--snapshot-entries", "50"]).start()
    cl = n.client()
    for i in range(120):
        cl.put("rs%d" % i, i)
    etag = cl.get("rs7").headers["etag"]
    assert n.stop() == 0
    n.start()
    cl = n.client()
    assert cl.get("rs7").headers["etag"] == etag
    assert cl.get("rs119").json() == {"value": 119}
    assert cl.request("GET", "/debug/replication").json()["data_size"] == 120
    assert cl.put("rs0", "new").json()["revision"] > int(etag.strip('"'))


def test_taken_port_stops_the_node_and_says_why():
    """A REST port another socket holds: kvfsd stops with an error naming
    the address and errno, and, the port lying in the range the kernel
    gives outgoing connections (where bind(0) found it), why that can
    happen on one start and not the next."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = subprocess.run([KVFSD, "--http", "127.0.0.1:%d" % port,
                            "--data", os.path.join(tmpdir(), "d")],
                           capture_output=True, timeout=60)
    finally:
        s.close()
    err = r.stderr.decode()
    assert r.returncode != 0, err
    assert "cannot serve on 127.0.0.1:%d: Address already in use (port %d is in the range " \
        "this machine gives outgoing connections" % (port, port) in err, err


def test_table_reads_modes_read_the_same_tables():
    """--table-reads mmap (LevelDB's memory maps) and pread (the default) read
    the same table files; any other value is a usage error."""
    bad = subprocess.run([KVFSD, "--table-reads", "maps"], capture_output=True)
    assert bad.returncode == 2 and b"--table-reads: want pread or mmap" in bad.stderr, bad
    n = Node(name="tables").start()
    cl = n.client()
    value = "t" * 1000
    # 2 MB: a table once the restart writes LevelDB's log out
    assert put_batches(cl, "tr", value, 20) == (list(range(20)), None)
    for mode in ["mmap", "pread"]:
        assert n.stop() == 0
        n.extra = ["--table-reads", mode]
        n.start()
        cl = n.client()
        for b in range(0, 20, 3):
            assert cl.get("tr/%d/%d" % (b, b * 5)).json() == {"value": value}, mode
        r = cl.request("POST", "/kv/range", json_body={"prefix": "tr/7/", "keys_only": True})
        assert len(r.json()["results"]) == 100, (mode, r)
    assert n.stop() == 0


def log_segment_direct(pid):
    """Whether the Raft log segment kvfsd pid writes is open with O_DIRECT
    (from /proc: the flags of its open .seg file)."""
    fds = "/proc/%d/fd" % pid
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue
        if target.endswith(".seg") and "/raft/" in target:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                flags = int(f.read().split("flags:")[1].split()[0], 8)
            return bool(flags & os.O_DIRECT)
    raise AssertionError("kvfsd %d has no log segment open" % pid)


def test_log_writes_modes():
    """--log-writes direct (the default, where the file system takes it)
    opens the log segment with O_DIRECT; cached does not, and
    kvfs_disk_wal_direct_io says which; both keep what
    they acknowledged across restarts in either mode; any other value is a
    usage error."""
    bad = subprocess.run([KVFSD, "--log-writes", "fast"], capture_output=True)
    assert bad.returncode == 2 and b"--log-writes: want direct or cached" in bad.stderr, bad
    n = Node(name="logwrites").start()
    probe = os.path.join(n.data, "probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600))
        direct_ok = True
    except OSError:
        direct_ok = False
    assert log_segment_direct(n.proc.pid) == direct_ok
    assert n.client().metric("kvfs_disk_wal_direct_io") == (1 if direct_ok else 0)
    written = {}
    for mode in ["cached", "direct", "cached"]:
        cl = n.client()
        for i in range(50):
            k = "lw/%s/%d/%d" % (mode, len(written), i)
            assert cl.put(k, "v" * (i * 97)).status == 200
            written[k] = "v" * (i * 97)
        assert n.stop() == 0
        n.extra = ["--log-writes", mode]
        n.start()
        assert log_segment_direct(n.proc.pid) == (direct_ok and mode == "direct"), mode
        cl = n.client()
        assert cl.metric("kvfs_disk_wal_direct_io") == (1 if direct_ok and mode == "direct"
                                                        else 0), mode
        for k, v in written.items():
            assert cl.get(k).json() == {"value": v}, (mode, k)
    assert n.stop() == 0


def cpu_seconds(pid):
    """User + system CPU seconds of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_connection_limit_lets_a_waiting_connection_in_when_one_closes():
    """--max-connections: past the limit a new connection waits unanswered;
    as soon as a connection closes, the waiting one is let in and answered
    (it used to wait for some unrelated event, possibly forever)."""
    import http.client
    import socket

    n = Node(name="limit", extra=["--max-connections", "2", "--http-threads", "1"]).start()
    host, port = n.url.replace("http://", "").split(":")
    held = []
    try:
        for _ in range(2):
            c = http.client.HTTPConnection(host, int(port), timeout=10)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            assert r.status == 200
            held.append(c)
        waiting = http.client.HTTPConnection(host, int(port), timeout=10)
        waiting.request("GET", "/kv/nothing-here")
        waiting.sock.settimeout(0.3)  # the limit holds: no answer meanwhile
        try:
            waiting.getresponse()
            assert False, "a third connection was served past --max-connections 2"
        except socket.timeout:
            pass
        waiting.close()
        # the same again, and this time a held connection closes
        waiting = http.client.HTTPConnection(host, int(port), timeout=10)
        waiting.request("GET", "/kv/nothing-here")
        held.pop(0).close()
        r = waiting.getresponse()
        r.read()
        assert r.status == 404, r.status
        held.append(waiting)
    finally:
        for c in held:
            c.close()
    assert n.stop() == 0


def test_workers_with_and_without_busy_poll():
    """Every HTTP worker answers its connections, reads and writes (whose
    connections wait suspended on the node and are woken from its thread),
    whether workers poll after serving (--busy-poll) or sleep at once (0);
    a bad --busy-poll is a usage error."""
    bad = subprocess.run([KVFSD, "--busy-poll", "-5"], capture_output=True)
    assert bad.returncode == 2 and b"--busy-poll" in bad.stderr, bad
    for poll in ["0", "200"]:
        n = Node(name="workers", extra=["--busy-poll", poll, "--http-threads", "3"]).start()
        errors = []

        def client(t):
            try:
                cl = n.client()  # its own connection: the workers share them out
                for i in range(40):
                    k = "w%d/%d" % (t, i)
                    assert cl.put(k, i).status == 200, (poll, k)
                    assert cl.get(k).json() == {"value": i}, (poll, k)
                    assert cl.get(k, stale=True).json() == {"value": i}, (poll, k)
                r = cl.request("POST", "/kv/range", json_body={"prefix": "w%d/" % t})
                assert len(r.json()["results"]) == 40, (poll, r)
            except Exception as e:  # reported below: a thread cannot fail the test itself
                errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        # Polling ends once the clients fall silent, their keep-alive
        # connections still open: an idle node uses next to no CPU.
        idle = n.client()
        assert idle.get("w0/0").status == 200
        used = cpu_seconds(n.proc.pid)
        time.sleep(1.0)  # an interval to measure over, not a wait for a condition
        assert cpu_seconds(n.proc.pid) - used < 0.2, (poll, cpu_seconds(n.proc.pid) - used)
        assert n.stop() == 0


def test_writes_refused_while_the_log_waits_in_memory():
    """--max-log-memory: while the state machine is not flushed (here
    --flush-ms 60000, so the log cannot be compacted), writes wait once half
    of that much log waits in memory, and are refused with 503 at their
    deadline (--request-timeout), never applied; reads still work, and
    nothing acknowledged is lost across a restart."""
    n = Node(name="behind", extra=["--flush-ms", "60000", "--flush-max", "4096",
                                   "--max-log-memory", "1",
                                   "--request-timeout", "500"]).start()
    cl = n.client()
    value = "b" * 1000
    # 100 KB a request: half the 1 MiB bound is crossed by the 6th
    acked, refused = put_batches(cl, "bh", value, 40)
    assert refused is not None and refused.status == 503, refused
    assert "State machine behind" in refused.json()["detail"], refused
    assert refused.headers.get("retry-after") == "1", refused.headers
    assert 5 <= len(acked) < 40, len(acked)
    assert cl.metric("kvfs_server_writes_held_total") >= 1
    assert cl.get("bh/0/0").json() == {"value": value}
    r = cl.put("bh/single", 1)
    assert r.status == 503 and r.headers.get("retry-after") == "1", (r, r.headers)
    r = cl.get("bh/single")
    assert r.status == 404 and "retry-after" not in r.headers, (r, r.headers)  # refused: not applied
    assert n.stop() == 0  # the stop flushes
    n.extra = []
    n.start()
    cl = n.client()
    for b in acked:
        assert cl.get("bh/%d/99" % b).json() == {"value": value}, b
    assert cl.put("bh/single", 1).status == 200
    assert n.stop() == 0


def test_writes_wait_for_the_log_instead_of_failing():
    """Backpressure: with a small --max-log-memory (1 MiB) and the applied
    state flushed every 300 ms, a stream of 100 KB batches keeps crossing half
    the bound; those writes wait until the log is compacted (at a quarter of
    the bound) and then go on: every one succeeds, none gets 503."""
    n = Node(name="backpressure", extra=["--flush-ms", "300", "--flush-max", "4096",
                                         "--max-log-memory", "1"]).start()
    cl = n.client()
    value = "w" * 1000
    acked, refused = put_batches(cl, "wp", value, 30)  # 3 MB in all
    assert refused is None, refused
    assert len(acked) == 30
    assert cl.metric("kvfs_server_writes_held_total") >= 1
    for b in (0, 15, 29):
        assert cl.get("wp/%d/99" % b).json() == {"value": value}, b
    assert n.stop() == 0


def test_writes_wait_while_leveldb_compaction_is_behind():
    """Backpressure from LevelDB: with 1 MiB memtables (--write-buffer 1) a
    heavy batch load fills level 0 faster than compaction empties it; at 10
    level-0 tables the node holds new writes (logged, counted in
    kvfs_server_writes_held_total) until compaction catches up, and they go
    on: no error, every acknowledged key reads back. Again with
    --background-priority idle, where the compactions that fell behind go
    back to normal priority (kvfs_disk_backend_background_boosts_total)."""
    for extra in ([], ["--background-priority", "idle"]):
        n = Node(name="l0hold", extra=["--write-buffer", "1"] + extra).start()
        kvfs = os.path.join(os.path.dirname(KVFSD), "kvfs")
        try:
            held = False
            for attempt in range(8):  # until the hold has happened; one run is enough here
                r = subprocess.run([kvfs, "-e", n.url, "--json", "bench", "-w", "batch",
                                    "-b", "1000", "-c", "8", "-d", "3", "--value-size", "1000",
                                    "--key-prefix", "l0/%d/" % attempt, "--verify"],
                                   capture_output=True, timeout=120)
                assert r.returncode == 0, r.stderr.decode()
                res = json.loads(r.stdout)
                assert res["errors"]["total"] == 0, res["errors"]
                assert res["verify"]["missing"] == 0 and res["verify"]["mismatched"] == 0, \
                    res["verify"]
                with open(n.log, "rb") as f:
                    log = f.read().decode(errors="replace")
                if "state machine behind (LevelDB's compaction is behind)" in log:
                    held = True
                    break
            assert held, n.tail()
            c = n.client()
            assert c.metric("kvfs_server_writes_held_total") >= 1
            boosts = c.metric("kvfs_disk_backend_background_boosts_total")
            with open(n.log, "rb") as f:
                idle_ok = IDLE_UNAVAILABLE not in f.read()
            if not extra:
                assert boosts == 0  # never lowered, so never raised
            elif idle_ok:
                assert boosts >= 1
            else:
                print("  (not checked: this process may not leave SCHED_IDLE)")
            # a write now waits, if the hold is still on, and goes on
            assert c.put("l0/after", 1).status == 200

            def caught_up():
                with open(n.log, "rb") as f:
                    return b"state machine caught up: new writes go on" in f.read()
            wait_for(caught_up, timeout=10, what="the hold released")
        finally:
            assert n.stop() == 0


def test_bench_waits_until_every_member_is_quiet():
    """kvfs bench starts measuring only once every member listed by
    /cluster/members reports nothing pending for LevelDB and no compaction
    (two fake members: one busy for its first 4 looks at /metrics, the other
    compacting for its first 6); with --no-settle it does not look at all;
    with a member that stays busy, it measures anyway after --settle
    seconds and says so."""
    import http.server

    class Member(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, body, ctype="application/json"):
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            st = self.server.state
            if self.path == "/cluster/members":
                self.reply(json.dumps({"members": [{"id": i + 1, "http": u}
                                                   for i, u in enumerate(urls)]}))
            elif self.path == "/metrics":
                with st["lock"]:
                    st["looks"] += 1
                    busy = st["looks"] <= st["busy_looks"]
                self.reply("# HELP x\nkvfs_disk_backend_pending_bytes %d\n"
                           "kvfs_disk_backend_compactions %d\n"
                           % (st["pending"] if busy else 0, st["jobs"] if busy else 0),
                           "text/plain")
            else:
                self.reply("{}")

        def do_PUT(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            with self.server.state["lock"]:
                self.server.state["writes"] += 1
            if not first_write_looks:
                first_write_looks.extend(srv.state["looks"] for srv in servers)
            self.reply('{"status":"success"}')

    servers, urls, first_write_looks = [], [], []
    for busy_looks, pending, jobs in ((4, 4096, 0), (6, 0, 1)):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Member)
        srv.daemon_threads = True
        srv.state = {"lock": threading.Lock(), "looks": 0, "writes": 0,
                     "busy_looks": busy_looks, "pending": pending, "jobs": jobs}
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        urls.append("http://127.0.0.1:%d" % srv.server_address[1])
    kvfs = os.path.join(os.path.dirname(KVFSD), "kvfs")
    try:
        r = subprocess.run([kvfs, "-v", "-e", urls[0], "bench", "-w", "put", "-n", "20",
                            "-c", "1"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        err = r.stderr.decode()
        assert "2 members quiet after" in err, err
        assert [srv.state["writes"] for srv in servers] == [20, 0]
        # every busy answer of both, and their first quiet one, came before
        # the first measured write (which went to the endpoint)
        assert first_write_looks == [5, 7], first_write_looks
        looks = [srv.state["looks"] for srv in servers]
        r = subprocess.run([kvfs, "-v", "-e", urls[0], "bench", "-w", "put", "-n", "20",
                            "-c", "1", "--no-settle"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        assert "quiet after" not in r.stderr.decode()
        assert [srv.state["looks"] for srv in servers] == looks
        # A member busy for good: after --settle's 0.3 s the run is measured
        # anyway, and says so without -v.
        with servers[1].state["lock"]:
            servers[1].state["busy_looks"] = 1 << 30
        writes = servers[0].state["writes"]
        r = subprocess.run([kvfs, "-e", urls[0], "bench", "-w", "put", "-n", "20", "-c", "1",
                            "--settle", "0.3"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        err = r.stderr.decode()
        assert "2 members still busy, measuring anyway, after" in err, err
        assert servers[0].state["writes"] == writes + 20
        assert servers[1].state["looks"] > looks[1] + 1  # it kept looking
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


if __name__ == "__main__":
    run(globals())
