#!/bin/bash
# Datasets far larger than RAM: loads KEYS keys (default 20,000,000) of
# 100-byte values into a 3-node cluster whose nodes each run in a cgroup-v1
# memory cgroup limited to MEM (default 512M), in 10 equal chunks through
# `kvfs bench -w batch`; reports each chunk's write rate and errors by kind
# (the first and the last chunk are the first and last 10% of the load),
# the three nodes' CPU seconds in that chunk by thread (LevelDB's
# compactions, node loop, flush into LevelDB, the rest), and the last
# chunk's rate as a share of the first's (issue 7 asks 70%),
# then random GETs over the first, middle and last chunk (and the first
# again), and for each node its peak memory, OOM kills, Raft log and
# state-machine sizes, and how many writes it held back while LevelDB's
# compaction or the state machine was behind (a write held past
# --request-timeout fails with 503). Needs root (cgroups). Stops everything
# it started.
#
#   bench/large.sh [KEYS [MEM]]
#
# KEEP_LOGS=DIR keeps the three nodes' logs there (log1..log3);
# KVFSD_ARGS adds options to every kvfsd (e.g. "--write-buffer 32").
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=${KVFS_BIN:-$top/build}
KEYS=${1:-20000000}
MEM=${2:-512M}
CG=/sys/fs/cgroup/memory/kvfs-large-$$
tmp=${KVFS_LARGE_DIR:-$(mktemp -d /var/tmp/kvfs-large.XXXXXX)}
mkdir -p "$tmp"
pids=()
rate=()
cleanup() {
	# Under set -e: a node that already died must not end the cleanup.
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$tmp"/log? "$KEEP_LOGS"/ 2>/dev/null || true; fi
	for i in 1 2 3; do rmdir "$CG/n$i" 2>/dev/null || true; done
	rmdir "$CG" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
[ -d /sys/fs/cgroup/memory ] || { echo "large: needs the cgroup v1 memory controller" >&2; exit 1; }
mkdir -p "$CG"
# peer ports outside the range of outgoing connections (tests/lib/harness.py)
ports=$(python3 "$top/tests/lib/harness.py" free-ports 3) # (set -e: stops here if it fails)
read -r -a pp <<<"$ports"
cl=
for i in 1 2 3; do peer[$i]=${pp[i - 1]}; cl="${cl:+$cl,}$i=tcp://127.0.0.1:${peer[$i]}"; done
for i in 1 2 3; do
	mkdir -p "$CG/n$i"
	echo "$MEM" >"$CG/n$i/memory.limit_in_bytes"
	# Start inside the cgroup: the shell moves itself in, then execs kvfsd.
	sh -c "echo \$\$ > $CG/n$i/cgroup.procs && exec $B/kvfsd --id $i --cluster $cl \
		--http 127.0.0.1:0 --ready-file $tmp/ready$i --data $tmp/n$i ${KVFSD_ARGS:-}" 2>"$tmp/log$i" &
	pids+=($!)
done
# REST on a port each node picks itself (a port chosen free here could be
# taken meanwhile, e.g. as the source port of a peer connection): its URL
# comes back through --ready-file.
for i in 1 2 3; do
	for _ in $(seq 400); do [ -s "$tmp/ready$i" ] && break; sleep 0.05; done
	[ -s "$tmp/ready$i" ] || { echo "large: node $i did not start:" >&2; cat "$tmp/log$i" >&2; exit 1; }
	url[$i]=$(cat "$tmp/ready$i")
done
EP="${url[1]},${url[2]},${url[3]}"
for _ in $(seq 400); do curl -sf "${url[1]}/readyz" >/dev/null && break; sleep 0.05; done
echo "== $KEYS keys of 100 bytes into 3 nodes, each limited to $MEM of memory; data in $tmp"
per=$((KEYS / 10 / 1000))
# CPU seconds (user + system) of the three nodes' threads so far, summed by
# what they do: LevelDB's compactions (kvfs-compact), the node loop
# (kvfs-raft), the flush into LevelDB (kvfs-sync), the rest.
threads_cpu() {
	cat /proc/"${pids[0]}"/task/*/stat /proc/"${pids[1]}"/task/*/stat \
		/proc/"${pids[2]}"/task/*/stat 2>/dev/null |
		awk '{ t = $14 + $15; k = ($2 == "(kvfs-compact)") ? "c" : ($2 == "(kvfs-raft)") ? "r" : ($2 == "(kvfs-sync)") ? "s" : "o"; v[k] += t }
		     END { printf "%d %d %d %d\n", v["c"], v["r"], v["s"], v["o"] }'
}
# What each node's LevelDB still owes when a chunk ends: level-0 tables
# (compaction's backlog, writes slow at 8) and the bytes by which levels 1-5
# exceed their target sizes; and the MiB of file pages each node's cgroup
# read back during the chunk after evicting them (workingset refaults: what
# the memory limit costs in rereads).
declare -A refaults
PAGE=$(getconf PAGESIZE)
refaulted() { awk '/^workingset_refault_file /{print $2}' "$CG/n$1/memory.stat"; }
backlog() {
	local i m r out="  backlog:"
	for i in 1 2 3; do
		m=$(curl -s "${url[$i]}/metrics")
		r=$(refaulted "$i")
		out="$out node $i $(echo "$m" | awk '/^kvfs_disk_backend_files\{level="0"\}/{print $2}') L0 tables, $(echo "$m" | awk '/^kvfs_disk_backend_compaction_debt_bytes /{printf "%d", $2 / 1048576}') MiB over, $(( (r - ${refaults[$i]:-0}) * PAGE >> 20 )) MiB reread;"
		refaults[$i]=$r
	done
	echo "${out%;}"
}
# --no-settle: the load is one stream, as a user's would be, and each chunk
# pays for the compactions the ones before it left (by default kvfs bench
# would wait for them before each chunk); the GETs below likewise start
# while the load's compactions still run, as they always did here.
for c in $(seq 0 9); do
	t0=$(threads_cpu)
	r=$("$B/kvfs" -e "$EP" bench -w batch -b 1000 -n "$per" -c 8 --spread --key-prefix "c$c/" --key-start 0 --no-settle --json)
	echo "$r" | python3 -c 'import sys,json; d=json.load(sys.stdin); e=d["errors"]; k=" ".join(["%s %s" % (n, v) for n, v in sorted(e.items()) if n not in ("total", "http_status", "http_reasons", "http_reasons_other") and v] + ["HTTP %s %s: %s" % (x["status"], x["detail"] or "(no reason)", x["count"]) for x in e.get("http_reasons", [])] + (["other reasons: %s" % e["http_reasons_other"]] if e.get("http_reasons_other") else [])); a=[int(x) for x in sys.argv[2].split()]; b=[int(x) for x in sys.argv[3].split()]; u=[(y - x) / 100 for x, y in zip(a, b)]; print("chunk %s: %8.0f keys/s  errors %s%s  p99 %.1f ms  nodes CPU-s: compact %.1f raft %.1f sync %.1f other %.1f" % ((sys.argv[1], d["items_per_s"], e["total"], " (%s)" % k if k else "", d["latency_ms"].get("p99", 0)) + tuple(u)))' "$c" "$t0" "$(threads_cpu)"
	rate[$c]=$(echo "$r" | python3 -c 'import sys,json; print(json.load(sys.stdin)["items_per_s"])')
	backlog
done
# The flatness figure: the last tenth's rate against the first's, and the
# mean of the nine after the first (one tenth's rate moves by 10-20% with
# where a long compaction falls, see bench/LARGE.md).
python3 -c 'import sys; r=[float(x) for x in sys.argv[1:]]; print("last 10%% / first 10%%: %.1f%% (%.0f / %.0f keys/s); mean of chunks 1-9 / chunk 0: %.1f%%" % (100 * r[9] / r[0], r[9], r[0], 100 * sum(r[1:]) / 9 / r[0]))' "${rate[@]}"
# The nodes' CPU seconds (user + system) so far, all three together: during
# a GET run, what is not serving GETs is mostly LevelDB compacting.
cpu() { local t=0 p; for p in "${pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
# Chunk 0 twice: right after the load, and once more at the end, when the
# compactions the load left behind have had 30 s more.
for c in 0 5 9 0; do
	c0=$(cpu)
	r=$("$B/kvfs" -e "$EP" bench -w get -k $((per * 1000)) --no-preload --no-settle --key-prefix "c$c/" -c 32 --spread -d 10 --json)
	echo "$r" | python3 -c 'import sys,json; d=json.load(sys.stdin); print("random GET over chunk %s: %8.0f/s  errors %s  p50 %.2f ms p99 %.2f ms  nodes %.1f CPU-s" % (sys.argv[1], d["ops_per_s"], d["errors"]["total"], d["latency_ms"].get("p50",0), d["latency_ms"].get("p99",0), int(sys.argv[2]) / 100))' "$c" $(($(cpu) - c0))
done
for i in 1 2 3; do
	m=$(curl -s "${url[$i]}/metrics")
	printf 'node %s: peak memory %s MiB, OOM kills %s, state machine %s MiB, Raft log %s MiB, keys %s, writes held %s\n' "$i" \
		$(( $(cat "$CG/n$i/memory.max_usage_in_bytes") >> 20 )) \
		"$(grep -c . <(grep -E '^oom_kill [1-9]' "$CG/n$i/memory.oom_control") || true)" \
		$(( $(du -sm "$tmp/n$i/kv" | cut -f1) )) $(( $(du -sm "$tmp/n$i/raft" | cut -f1) )) \
		"$(echo "$m" | awk '/^kvfs_keys /{print $2}')" \
		"$(echo "$m" | awk '/^kvfs_server_writes_held_total /{print $2}')"
done
