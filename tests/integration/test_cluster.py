"""Replicated clusters of real kvfsd processes on 127.0.0.1: writes through
followers, linearizable reads anywhere, kill -9 and SIGSTOP of leaders,
whole-cluster crashes, a wiped follower rejoining through a snapshot,
membership changes under load, and a Jepsen-style run whose history is
checked by the linearizability checker (kvfs-lincheck)."""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BUILDDIR, Client, Cluster, put_batches, run, tmpdir, wait_for  # noqa: E402


def writer_threads(cl, ids, prefix, acked, stop, per_batch=1):
    """Clients that write unique keys through the given nodes until stop,
    recording every acknowledged key (and retrying elsewhere on errors)."""
    def body(t):
        i = 0
        c = {n: cl.client(n) for n in ids}
        while not stop.is_set():
            node = ids[(t + i) % len(ids)]
            key = "%s/%d/%d" % (prefix, t, i)
            try:
                r = c[node].put(key, [t, i])
                if r.status == 200:
                    acked.append(key)
            except Exception:
                pass
            i += 1
    return [threading.Thread(target=body, args=(t,), daemon=True) for t in range(len(ids) * 2)]


def keys_on(cl, i, prefix):
    r = cl.client(i).request("POST", "/kv/range?consistency=stale",
                             json_body={"prefix": prefix + "/", "keys_only": True})
    assert r.status == 200, r
    return {x["key"] for x in r.json()["results"]}


def test_three_nodes_write_via_follower_read_via_another():
    """A write through a follower (which commits by inference) is read through another."""
    cl = Cluster(3).start()
    try:
        lid = cl.wait_leader()
        f1, f2 = [i for i in cl.nodes if i != lid]
        r = cl.client(f1).put("x", {"v": 1})
        assert r.status == 200, r
        g = cl.client(f2).get("x")
        assert g.status == 200 and g.json() == {"value": {"v": 1}}, g
        assert g.headers["etag"] == r.headers["etag"]
        h = cl.health(f2)
        assert h["cluster_size"] == 3 and h["leader_node"] and not h["is_leader"]
        d = cl.client(lid).request("GET", "/debug/replication").json()
        assert len(d["peers"]) == 3 and all("match_index" in p for p in d["peers"])
        # With 3 voters a follower commits what it and the leader hold
        # durably without waiting for the leader's commit index (kvfsd(8)).
        for i in range(20):
            assert cl.client(f1).put("y%d" % i, i).status == 200
        assert cl.client(f1).metric("kvfs_server_commits_inferred_total") > 0
        assert cl.client(lid).metric("kvfs_server_commits_inferred_total") == 0
        # Every member advertises its REST URL: a follower lists all of them,
        # and hears from the other follower, not only from the leader.
        urls = {i: n.url for i, n in cl.nodes.items()}

        def listed():
            ms = cl.client(f2).request("GET", "/cluster/members").json()["members"]
            return {m["id"]: m["http"] for m in ms} == urls and all(m["connected"] for m in ms)
        wait_for(listed, 10, "every member's REST URL listed on a follower")
        assert cl.health(f2)["connected_nodes"] == 3
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_five_nodes_replicate_everywhere():
    """Five nodes: every write through any node is applied on all five."""
    cl = Cluster(5).start()
    try:
        for i in cl.nodes:
            assert cl.client(i).put("k%d" % i, i).status == 200
        cl.wait_applied()
        for i in cl.nodes:
            for j in cl.nodes:
                g = cl.client(i).get("k%d" % j, stale=True)
                assert g.json() == {"value": j}, (i, j, g)
            # A follower and its leader are no majority of 5: no inference.
            assert cl.client(i).metric("kvfs_server_commits_inferred_total") == 0
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_kill9_leader_during_writes():
    """kill -9 of the leader mid-stream: writes resume, nothing acknowledged is lost anywhere."""
    cl = Cluster(3).start()
    try:
        acked, stop = [], threading.Event()
        ts = writer_threads(cl, list(cl.nodes), "kl", acked, stop)
        [t.start() for t in ts]
        wait_for(lambda: len(acked) > 200, 30, "writes before the crash")
        old = cl.wait_leader()
        cl.nodes[old].kill()
        before = len(acked)
        cl.wait_leader(exclude=old)
        wait_for(lambda: len(acked) > before + 200, 30, "writes after the failover")
        stop.set()
        [t.join() for t in ts]
        cl.nodes[old].start()
        cl.wait_applied()
        for i in cl.nodes:
            got = keys_on(cl, i, "kl")
            missing = [k for k in acked if k not in got]
            assert not missing, (i, len(missing), missing[:5])
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_sigterm_answers_the_writes_waiting_for_a_quorum():
    """SIGTERM while writes wait for a quorum that cannot form: each client gets
    a 503 "shutting down" and kvfsd exits cleanly (it used to abort:
    libmicrohttpd refuses to stop with connections suspended)."""
    cl = Cluster(3).start()
    try:
        lid = cl.wait_leader()
        others = [i for i in cl.nodes if i != lid]
        for i in others:
            cl.nodes[i].pause()
        replies = []

        def writer(k):
            try:
                replies.append(cl.client(lid).put("q%d" % k, k))
            except Exception as e:  # checked below
                replies.append(e)
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: cl.client(lid).metric("kvfs_server_proposals_pending") >= 4, 10,
                 "4 writes waiting on the leader")
        assert cl.nodes[lid].stop() == 0, cl.nodes[lid].tail()
        for t in threads:
            t.join()
        assert len(replies) == 4, replies
        for r in replies:
            assert getattr(r, "status", None) == 503 and b"shutting down" in r.body, r
            assert "retry-after" not in r.headers, r.headers  # not cured by waiting here
    finally:
        for n in cl.nodes.values():
            n.resume()
            n.kill()


def test_requests_beyond_max_pending_get_503_with_retry_after():
    """--max-pending 1: while one write waits for a quorum (the followers
    paused), the next request is refused at once with 503 "Too many pending
    requests" and Retry-After: 1; once the followers resume, the waiting
    write succeeds and the node takes requests again."""
    # (--election-ms 3000: the leader, cut off from its followers, keeps
    # leading for the seconds the test takes, even on a slow machine)
    cl = Cluster(3, extra=["--max-pending", "1", "--request-timeout", "20000",
                           "--election-ms", "3000"]).start()
    try:
        lid = cl.wait_leader()
        others = [i for i in cl.nodes if i != lid]
        for i in others:
            cl.nodes[i].pause()
        replies = []

        def first():
            try:
                replies.append(Client(cl.nodes[lid].url, timeout=60).put("mp/first", 1))
            except Exception as e:  # reported below: a thread cannot fail the test itself
                replies.append(e)
        t = threading.Thread(target=first)
        t.start()

        def waiting():
            assert not replies, [getattr(x, "body", x) for x in replies]  # it must wait
            return cl.client(lid).metric("kvfs_server_proposals_pending") >= 1
        wait_for(waiting, 10, "a write waiting on the leader")
        r = cl.client(lid).put("mp/second", 2)
        assert r.status == 503 and r.json()["detail"] == "Too many pending requests", r
        assert r.headers.get("retry-after") == "1", r.headers
        for i in others:
            cl.nodes[i].resume()
        t.join(30)
        assert [x.status for x in replies] == [200], replies
        c = cl.client(lid)
        assert c.put("mp/third", 3).status == 200
        assert c.get("mp/second").status == 404  # refused: never applied
    finally:
        for n in cl.nodes.values():
            n.resume()
            n.kill()


def test_paused_leader_steps_down_and_serves_no_stale_read():
    """SIGSTOP of the leader: a new leader takes over; the old one, resumed, never serves a stale read."""
    import http.client
    import urllib.parse
    cl = Cluster(3).start()
    try:
        old = cl.wait_leader()
        assert cl.client(old).put("p", "before").status == 200
        u = urllib.parse.urlparse(cl.nodes[old].url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.connect()
        cl.nodes[old].pause()
        try:
            others = [i for i in cl.nodes if i != old]

            def new_leader():
                hs = [cl.health(i) for i in others]
                ids = {h["leader_id"] for h in hs if h}
                return ids.pop() if len(ids) == 1 and old not in ids and 0 not in ids else None
            nl = wait_for(new_leader, 30, "a new leader among the others")
            assert cl.client(nl).put("p", "after").status == 200
            # The read is in the paused process's socket before it resumes;
            # it must not be answered with the value it last knew.
            conn.request("GET", Client.kpath("p"))
        finally:
            cl.nodes[old].resume()
        r = conn.getresponse()
        body = r.read()
        assert r.status != 200 or json.loads(body) == {"value": "after"}, (r.status, body)
        wait_for(lambda: (cl.health(old) or {}).get("is_leader") is False, 30, "old leader steps down")
        g = cl.client(old).get("p")
        assert g.status == 200 and g.json() == {"value": "after"}, g
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_whole_cluster_kill9_and_restart():
    """kill -9 of every node at once, restart: every acknowledged write is there."""
    cl = Cluster(3).start()
    try:
        acked, stop = [], threading.Event()
        ts = writer_threads(cl, list(cl.nodes), "wc", acked, stop)
        [t.start() for t in ts]
        wait_for(lambda: len(acked) > 300, 30, "acknowledged writes")
        for n in cl.nodes.values():
            n.kill()
        stop.set()
        [t.join() for t in ts]
        for n in cl.nodes.values():
            n.start()
        cl.wait_leader()
        cl.wait_applied()
        for i in cl.nodes:
            got = keys_on(cl, i, "wc")
            missing = [k for k in acked if k not in got]
            assert not missing, (i, len(missing))
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_wiped_follower_rejoins_through_snapshot():
    """A follower whose data directory was wiped catches up through a snapshot stream."""
    cl = Cluster(3, extra=["--snapshot-entries", "200"]).start()
    try:
        lid = cl.wait_leader()
        c = cl.client(lid)
        for b in range(20):
            items = [{"key": "s/%d/%d" % (b, j), "value": j} for j in range(50)]
            assert c.request("PUT", "/kv/batch", json_body={"items": items}).status == 200
        for i in range(300):  # enough entries to compact the log past the start
            assert c.put("seq/%d" % i, i).status == 200
        victim = [i for i in cl.nodes if i != lid][0]
        cl.nodes[victim].kill()
        import shutil
        shutil.rmtree(os.path.join(cl.nodes[victim].data, "db"))
        for i in range(300, 600):
            assert c.put("seq/%d" % i, i).status == 200
        cl.nodes[victim].start()
        cl.wait_applied(timeout=60)
        assert len(keys_on(cl, victim, "s")) == 1000
        assert len(keys_on(cl, victim, "seq")) == 600
        m = cl.client(lid).request("GET", "/metrics").body.decode()
        sent = [l for l in m.splitlines() if l.startswith("kvfs_snapshot_sent_total")][0]
        assert int(sent.split()[-1]) >= 1, sent
        # The rejoined node serves linearizable reads and takes writes.
        assert cl.client(victim).put("after-snap", 1).status == 200
        assert cl.client(victim).get("seq/599").json() == {"value": 599}
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_wiped_follower_rejoins_an_idle_cluster():
    """A follower whose data directory was wiped comes back to a cluster
    nobody writes to: it says in its heartbeat answers that it lacks what
    it had acknowledged, the leader sends it a snapshot and the log, and it
    is ready with every key. The leader used to believe it held them and
    send nothing until the next write; it answered "catching up" (and,
    before that check, ready with an empty store) for as long as the
    cluster stayed idle."""
    cl = Cluster(3, extra=["--snapshot-entries", "200"])
    try:
        cl.start()
        lid = cl.wait_leader()
        c = cl.client(lid)
        for i in range(300):  # enough entries to compact the log past the start
            assert c.put("idle/%d" % i, i).status == 200
        victim = cl.follower()
        cl.wait_applied(ids=[victim])
        cl.nodes[victim].kill()
        import shutil
        shutil.rmtree(os.path.join(cl.nodes[victim].data, "db"))
        cl.nodes[victim].start()
        cv = Client(cl.nodes[victim].url, timeout=5, retry=False)
        wait_for(lambda: cv.request("GET", "/readyz").status == 200, 30, "the wiped node ready")
        assert len(keys_on(cl, victim, "idle")) == 300
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_membership_add_promote_remove_under_load():
    """Add a learner, promote it, remove a voter (the leader too) while clients write."""
    cl = Cluster(3).start()
    try:
        acked, stop = [], threading.Event()
        ts = writer_threads(cl, [1, 2, 3], "mb", acked, stop)
        [t.start() for t in ts]
        wait_for(lambda: len(acked) > 100, 30, "writes")
        new = cl.add_node(4)
        lid = cl.wait_leader(ids=[1, 2, 3])
        lc = cl.client(lid)
        r = lc.request("POST", "/cluster/members",
                       json_body={"id": 4, "peer": cl.peers[4], "learner": True})
        assert r.status == 200, r
        wait_for(lambda: (cl.health(4) or {}).get("applied_index", 0) >=
                 cl.health(lid)["commit_index"] - 50, 30, "learner catches up")
        r = lc.request("POST", "/cluster/members/4/promote")
        assert r.status == 200, r
        members = lc.request("GET", "/cluster/members").json()["members"]
        assert {m["id"]: m["learner"] for m in members} == {1: False, 2: False, 3: False, 4: False}
        # Remove the leader itself.
        lid = cl.wait_leader()
        assert lid in (1, 2, 3, 4)
        r = cl.client(lid).request("DELETE", "/cluster/members/%d" % lid)
        assert r.status == 200, r
        survivors = [i for i in cl.nodes if i != lid]
        nl = wait_for(lambda: next((h["leader_id"] for h in [cl.health(i) for i in survivors]
                                    if h and h.get("leader_id") in survivors), None),
                      30, "a leader among the remaining members")
        cl.nodes[lid].kill()
        before = len(acked)
        wait_for(lambda: len(acked) > before + 100, 30, "writes after the removal")
        stop.set()
        [t.join() for t in ts]
        members = cl.client(nl).request("GET", "/cluster/members").json()["members"]
        assert sorted(m["id"] for m in members) == sorted(survivors)
        cl.wait_applied(survivors)
        for i in survivors:
            got = keys_on(cl, i, "mb")
            missing = [k for k in acked if k not in got]
            assert not missing, (i, len(missing))
        assert new.proc.poll() is None
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_sigterm_on_leader_hands_leadership_over():
    """SIGTERM on the leader transfers leadership first: a successor leads before any election timeout."""
    cl = Cluster(3, heartbeat_ms=50, election_ms=2000).start()
    try:
        lid = cl.wait_leader()
        assert cl.client(lid).put("t", 1).status == 200
        assert cl.nodes[lid].stop() == 0
        assert "transferring leadership" in cl.nodes[lid].tail(50)
        # The followers heard the old leader until it exited; without a
        # transfer none of them could campaign for at least 2 s after that.
        others = [i for i in cl.nodes if i != lid]
        nl = cl.wait_leader(timeout=1.0, ids=others)
        assert cl.client(nl).put("t", 2).status == 200
    finally:
        for n in cl.nodes.values():
            n.kill()


def lead_with_node1(cl):
    """Makes node 1 the leader of the started cluster cl."""
    lid = cl.wait_leader()
    if lid != 1:
        r = cl.client(lid).request("POST", "/cluster/leader/transfer", json_body={"id": 1})
        assert r.status == 200, r
        cl.wait_leader(exclude=lid)
        assert cl.wait_leader() == 1


def test_lagging_leader_holds_forwarded_writes():
    """--max-log-memory holds on the leader for writes forwarded by a
    follower too: with the state machines never flushed (--flush-ms 60000)
    and node 1 leading with a 1 MiB bound, writes through a follower go on
    until half of it waits on the leader; the next one waits at the
    follower (held, not refused at once) and gets 503 at its deadline
    (--request-timeout 1000), never applied; nothing acknowledged is
    lost."""
    cl = Cluster(3, extra=["--flush-ms", "60000", "--flush-max", "4096"])
    cl.nodes[1].extra += ["--max-log-memory", "1"]
    cl.nodes[2].extra += ["--request-timeout", "1000"]
    cl.start()
    try:
        lead_with_node1(cl)
        c = cl.client(2)
        value = "f" * 1000
        t0 = time.monotonic()
        acked, refused = put_batches(c, "lf", value, 40)  # 100 KB a request
        assert refused is not None and refused.status == 503, refused
        assert "State machine behind" in refused.json()["detail"], refused
        assert refused.headers.get("retry-after") == "1", refused.headers
        assert 4 <= len(acked) < 40, len(acked)
        assert time.monotonic() - t0 >= 1.0  # the refused one waited for its deadline
        assert c.metric("kvfs_server_writes_held_total") >= 1
        for b in acked:
            assert c.get("lf/%d/99" % b).json() == {"value": value}, b
        refused_batch = len(acked)
        assert c.get("lf/%d/0" % refused_batch).status == 404  # never applied
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_writes_through_a_follower_wait_for_a_lagging_leader():
    """Backpressure through a follower: node 1 leads with a 1 MiB
    --max-log-memory and flushes its state machine every 300 ms; a stream
    of 100 KB batches through a follower keeps crossing half of the bound
    on the leader, which holds them; the follower holds its client's writes
    and asks again, and every one succeeds, none gets 503, all read back."""
    cl = Cluster(3)
    cl.nodes[1].extra += ["--flush-ms", "300", "--flush-max", "4096", "--max-log-memory", "1"]
    cl.start()
    try:
        lead_with_node1(cl)
        c = cl.client(2)
        value = "h" * 1000
        acked, refused = put_batches(c, "lh", value, 40)
        assert refused is None, refused
        assert len(acked) == 40
        assert c.metric("kvfs_server_writes_held_total") >= 1
        for b in (0, 20, 39):
            assert c.get("lh/%d/99" % b).json() == {"value": value}, b
    finally:
        for n in cl.nodes.values():
            n.kill()


STALL = ["--flush-ms", "60000", "--flush-max", "4096", "--max-log-memory", "1"]


def start_with_node3_stalled(cl):
    """Starts cl with node 3's state machine never flushed and a 1 MiB
    --max-log-memory (it stops taking entries after about 1 MiB), led by
    another node; returns the leader's id."""
    cl.nodes[3].extra += STALL
    cl.start()
    lid = cl.wait_leader()
    if lid == 3:
        r = cl.client(3).request("POST", "/cluster/leader/transfer", json_body={})
        assert r.status == 200, r
        lid = cl.wait_leader(exclude=3)
    return lid


def restart_node3_unbounded(cl):
    """Restarts node 3 without the stall and waits until it caught up."""
    assert cl.nodes[3].stop() == 0
    assert cl.nodes[3].extra[-len(STALL):] == STALL
    cl.nodes[3].extra = cl.nodes[3].extra[:-len(STALL)]
    cl.nodes[3].start()
    cl.wait_applied(ids=[3])


def test_lagging_follower_refuses_entries_then_catches_up():
    """A follower over --max-log-memory (its state machine never flushed:
    --flush-ms 60000) stops taking entries while the leader and the other
    follower go on committing; it neither campaigns nor grows, and once
    restarted without the bound it catches up."""
    cl = Cluster(3)
    try:
        lid = start_with_node3_stalled(cl)
        c = cl.client(lid)
        value = "g" * 1000
        # 4 MB in all, 1 MiB of it reaches node 3
        assert put_batches(c, "lg", value, 40) == (list(range(40)), None)
        commit = cl.health(lid)["commit_index"]
        wait_for(lambda: "new entries refused" in cl.nodes[3].tail(200), 10, "node 3 to refuse")
        h3 = cl.health(3)
        assert h3["applied_index"] < commit, (h3, commit)
        assert cl.leader() == lid  # heartbeats still reach node 3: no election
        restart_node3_unbounded(cl)
        c3 = cl.client(3)
        assert c3.get("lg/39/99", stale=True).json() == {"value": value}
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_leader_keeps_the_log_a_lagging_follower_needs():
    """A leader compacting its log (--snapshot-entries 20: every 20 entries,
    keeping 10) keeps, within half its --max-log-memory, the entries a
    follower it still hears from has not taken yet: the follower, stalled
    by its own --max-log-memory, catches up from the log once it takes
    entries again, and no snapshot is sent. With a tail of 10 entries it
    needed the whole state machine. (A follower that lost its disk is not
    kept a tail for: test_wiped_follower_rejoins_through_snapshot.)"""
    # election timeout 1 s: the tail is kept while node 3's match index
    # moved within the last 10 of them
    cl = Cluster(3, election_ms=1000, extra=["--snapshot-entries", "20"])
    try:
        lid = start_with_node3_stalled(cl)
        c = cl.client(lid)
        value = "k" * 1000
        # 60 entries of 100 KB; node 3 stops taking them after about 1 MiB
        assert put_batches(c, "kt", value, 60) == (list(range(60)), None)
        wait_for(lambda: "new entries refused" in cl.nodes[3].tail(200), 10, "node 3 to refuse")
        commit = cl.health(lid)["commit_index"]
        assert cl.health(3)["applied_index"] + 20 < commit
        restart_node3_unbounded(cl)
        assert cl.client(3).get("kt/59/99", stale=True).json() == {"value": value}
        assert cl.client(lid).metric("kvfs_snapshot_sent_total") == 0
        assert cl.client(3).metric("kvfs_snapshot_received_total") == 0
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_restarted_follower_is_ready_only_once_caught_up():
    """A follower restarted behind the cluster answers /readyz 503 "not
    ready: catching up" until it has applied what the cluster had committed
    when it heard the leader: a client that waits for ready and reads
    stale from it finds the last write made while it was down. (It used to
    be ready as soon as it heard the leader, and such a read got 404.)"""
    cl = Cluster(3)
    try:
        cl.start()
        lid = cl.wait_leader()
        f = cl.follower()
        assert cl.nodes[f].stop() == 0
        c = cl.client(lid)
        # About 20 MB behind: seconds of catching up on this machine.
        acked, refused = put_batches(c, "cu", "v" * 2000, 100)
        assert refused is None, refused
        assert c.put("cu/last", "marker").status == 200
        cl.nodes[f].start()
        cf = Client(cl.nodes[f].url, timeout=5, retry=False)
        seen = []

        def ready():
            r = cf.request("GET", "/readyz")
            seen.append(r.json().get("detail", r.json().get("status")))
            # /health says the same (kvfs status shows it), as of its own
            # moment: the node may turn ready between the two requests.
            h = cf.request("GET", "/health").json()
            assert h["ready"] == (h["ready_detail"] is None), h
            assert h["ready"] or h["ready_detail"].startswith("not ready: "), h
            return r.status == 200
        wait_for(ready, 60, "node %d ready" % f)
        # The state this test is about was seen (the catch-up takes far
        # longer than a poll here), not only "no leader" then "ready".
        assert "not ready: catching up" in seen, seen
        # Ready now: its stale reads hold what was written before it came back.
        r = cf.get("cu/last", stale=True)
        assert r.status == 200 and r.json() == {"value": "marker"}, (r, seen[:3], seen[-3:])
        assert cf.get("cu/99/99", stale=True).status == 200
        print("  readyz answers before ready: %d (%s)" % (
            len(seen) - 1, ", ".join(sorted(set(seen[:-1])))))
    finally:
        for n in cl.nodes.values():
            n.kill()


def add_learner(cl, lid, i):
    """Starts node i with --join, adds it as a learner through the leader
    lid, and returns a client of it that does not retry."""
    cl.add_node(i)
    r = cl.client(lid).request("POST", "/cluster/members",
                               json_body={"id": i, "peer": cl.peers[i], "learner": True})
    assert r.status == 200, r
    return Client(cl.nodes[i].url, timeout=5, retry=False)


def test_member_added_to_an_idle_cluster_catches_up():
    """kvfs member add on a cluster nobody writes to: the new node gets
    the data and is ready. The leader's first probe of a new member rides
    with the configuration entry, before its connection to the member is
    up, and was lost; nothing probed it again until the next write (five
    runs in six, on the development machine)."""
    cl = Cluster(3)
    try:
        cl.start()
        lid = cl.wait_leader()
        assert cl.client(lid).put("before-add", "x").status == 200
        c4 = add_learner(cl, lid, 4)
        wait_for(lambda: c4.request("GET", "/readyz").status == 200, 10, "the new member ready")
        assert c4.get("before-add", stale=True).json() == {"value": "x"}
    finally:
        for n in cl.nodes.values():
            n.kill()


def test_learner_cut_off_from_its_leader_is_not_ready():
    """A learner never campaigns, so Raft keeps its leader however long it
    is cut off. While every voter is paused it must answer /readyz 503 "no
    leader" (and /health leader_node null) within two election timeouts,
    not stay ready on state that ages; once the voters are back it
    catches up and is ready again. (It used to stay ready throughout.)"""
    cl = Cluster(3)
    paused = []
    try:
        cl.start()
        lid = cl.wait_leader()
        c4 = add_learner(cl, lid, 4)
        wait_for(lambda: c4.request("GET", "/readyz").status == 200, 30, "learner ready")
        for i in (1, 2, 3):
            cl.nodes[i].pause()
            paused.append(i)
        # Two election timeouts (300 ms here) and a margin for the loop.
        wait_for(lambda: c4.request("GET", "/readyz").status == 503, 5, "learner not ready")
        r = c4.request("GET", "/readyz")
        assert r.json()["detail"] == "not ready: no leader (no quorum)", r
        h = c4.request("GET", "/health").json()
        assert h["ready"] is False and h["leader_node"] is None, h
        for i in paused:
            cl.nodes[i].resume()
        paused = []
        lid = cl.wait_leader(ids=[1, 2, 3])
        assert cl.client(lid).put("after-pause", 1).status == 200
        wait_for(lambda: c4.request("GET", "/readyz").status == 200, 30, "learner ready again")
        # Ready may come before that write's commit (a stale read lags
        # by design): it arrives.
        wait_for(lambda: c4.get("after-pause", stale=True).status == 200, 10, "the write")
        assert c4.get("after-pause", stale=True).json() == {"value": 1}
    finally:
        for i in paused:
            cl.nodes[i].resume()
        for n in cl.nodes.values():
            n.kill()


def test_no_quorum_fails_fast_with_503():
    """With a majority down, requests fail with 503 and a reason within the request timeout."""
    cl = Cluster(3, extra=["--request-timeout", "1000"]).start()
    try:
        lid = cl.wait_leader()
        survivor = [i for i in cl.nodes if i != lid][0]
        for i in cl.nodes:
            if i != survivor:
                cl.nodes[i].kill()
        c = Client(cl.nodes[survivor].url, timeout=10)
        t0 = time.monotonic()
        r = c.put("nq", 1)
        assert r.status == 503 and "detail" in r.json(), r
        # "No leader" is worth a second's wait; a timed-out write's outcome
        # is unknown, which no wait cures.
        assert r.headers.get("retry-after") == ("1" if "No leader" in r.json()["detail"]
                                                else None), (r.json(), r.headers)
        g = c.get("nq")
        assert g.status == 503, g
        assert time.monotonic() - t0 < 5
        wait_for(lambda: c.request("GET", "/readyz").status == 503, 10, "readyz 503")
        assert c.get("nq", stale=True).status == 404
    finally:
        for n in cl.nodes.values():
            n.kill()


LINCHECK = os.path.join(BUILDDIR, "kvfs-lincheck")


def test_jepsen_style_history_is_linearizable():
    """Concurrent put/get/delete/cas on every node while leaders are killed and paused: linearizable."""
    cl = Cluster(3, extra=["--request-timeout", "2000"]).start()
    hist, lock, stop = [], threading.Lock(), threading.Event()
    counter = [0]

    def record(line):
        with lock:
            hist.append(line)

    def now():
        return time.monotonic_ns()

    def outcome(status, ok, other=None):
        """Maps a write's HTTP status to a history result: 503 and other
        server errors leave the outcome unknown."""
        if status in ok:
            return ok[status]
        return "?" if status >= 500 else "error"

    def client(t, node):
        rnd = random.Random(t)
        # No transparent resend: a write must never be sent twice.
        c = Client(cl.nodes[node].url, timeout=3, retry=False)
        while not stop.is_set():
            key = "j%d" % rnd.randrange(12)
            op = rnd.choice(["put", "put", "get", "get", "delete", "cas"])
            with lock:
                counter[0] += 1
                val = "v%d" % counter[0]
            exp, t0 = "absent", now()
            try:
                if op == "get":
                    r = c.get(key)
                    if r.status in (200, 404):
                        got = r.json()["value"] if r.status == 200 else "absent"
                        record("c%d get %s - - %d %d %s" % (t, key, t0, now(), got))
                    continue
                if op == "cas":
                    # cas = a read (recorded as a get) + a write conditional on
                    # the revision read; values are unique, so the revision
                    # identifies the value.
                    g = c.get(key)
                    tg = now()
                    if g.status == 200:
                        exp, hdr = g.json()["value"], {"If-Match": g.headers["etag"]}
                    elif g.status == 404:
                        hdr = {"If-None-Match": "*"}
                    else:
                        continue
                    record("c%d get %s - - %d %d %s" % (t, key, t0, tg, exp))
                    t0 = tg
                    r = c.put(key, val, headers=hdr)
                    res = outcome(r.status, {200: "ok", 412: "fail"})
                    line = "c%d cas %s %s %s" % (t, key, val, exp)
                elif op == "put":
                    r = c.put(key, val)
                    res = outcome(r.status, {200: "ok"})
                    line = "c%d put %s %s -" % (t, key, val)
                else:
                    r = c.delete(key)
                    res = outcome(r.status, {200: "found", 404: "absent"})
                    line = "c%d delete %s - -" % (t, key)
                record("%s %d %s %s" % (line, t0, "-" if res == "?" else now(), res))
            except ConnectionRefusedError:
                # Never reached a server: no effect, nothing to record.
                c = Client(cl.nodes[node].url, timeout=3, retry=False)
                time.sleep(0.05)
            except Exception:
                # Timed out or cut off: a write may or may not have happened.
                if op == "cas":
                    record("c%d cas %s %s %s %d - ?" % (t, key, val, exp, t0))
                elif op != "get":
                    record("c%d %s %s %s - %d - ?" % (t, op, key, val if op == "put" else "-", t0))
                c = Client(cl.nodes[node].url, timeout=3, retry=False)
                time.sleep(0.05)

    try:
        ts = [threading.Thread(target=client, args=(t, 1 + t % 3), daemon=True) for t in range(6)]
        [t.start() for t in ts]
        rnd = random.Random(7)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            lid = cl.wait_leader()
            if rnd.random() < 0.5:
                cl.nodes[lid].kill()
                time.sleep(0.8)
                cl.nodes[lid].start()
            else:
                cl.nodes[lid].proc.send_signal(signal.SIGSTOP)
                time.sleep(0.8)
                cl.nodes[lid].proc.send_signal(signal.SIGCONT)
            time.sleep(0.5)
        stop.set()
        [t.join(10) for t in ts]
    finally:
        for n in cl.nodes.values():
            n.resume()
            n.kill()
    ops = [l for l in hist if not l.endswith(" error")]
    assert len(ops) > 300, len(ops)
    # Kept in the build tree for inspection when the check fails.
    path = os.path.join(BUILDDIR, "jepsen-history.txt")
    with open(path, "w") as f:
        f.write("\n".join(ops) + "\n")
    t0 = time.monotonic()
    p = subprocess.run([LINCHECK, path], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (path, p.returncode, p.stdout[-3000:], p.stderr[-2000:])
    print("    lincheck: %.1fs" % (time.monotonic() - t0))
    print("    jepsen: %d operations linearizable" % len(ops))


if __name__ == "__main__":
    run(globals())
