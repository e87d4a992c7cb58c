#!/bin/bash
# HTTP throughput of kvfsd with wrk (Debian package wrk), fsync on:
#   bench/http.sh [NODES]      NODES = 1 (default) or 3
# Starts the nodes on free ports in a temporary directory, preloads 10,000
# keys, runs PUT (64 connections), GET (64), 1-connection PUT latency, and
# for 3 nodes PUT (64 and 1 connections) and GET through a follower; prints
# requests/s, latency percentiles and Raft log fsyncs per write; stops
# everything it started.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=${KVFS_BIN:-$top/build}
N=${1:-1}
D=${DURATION:-10s}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
# peer ports outside the range of outgoing connections (tests/lib/harness.py)
ports=$(python3 "$top/tests/lib/harness.py" free-ports "$N") # (set -e: stops here if it fails)
read -r -a pp <<<"$ports"
cl=
for i in $(seq 1 "$N"); do peer[$i]=${pp[i - 1]}; cl="${cl:+$cl,}$i=tcp://127.0.0.1:${peer[$i]}"; done
for i in $(seq 1 "$N"); do
	args=(--data "$tmp/n$i" --http 127.0.0.1:0 --ready-file "$tmp/ready$i")
	[ "$N" -gt 1 ] && args+=(--id "$i" --cluster "$cl")
	"$B/kvfsd" "${args[@]}" 2>"$tmp/log$i" &
	pids+=($!)
done
for i in $(seq 1 "$N"); do
	for _ in $(seq 200); do [ -s "$tmp/ready$i" ] && break; sleep 0.05; done
	url[$i]=$(cat "$tmp/ready$i")
done
for _ in $(seq 200); do curl -sf "${url[1]}/readyz" >/dev/null && break; sleep 0.05; done
leader=$(curl -s "${url[1]}/health" | sed -n 's/.*"leader_id":\([0-9]*\).*/\1/p')
L=${url[$leader]:-${url[1]}}
F=${url[1]}; [ "$N" -gt 1 ] && for i in $(seq 1 "$N"); do [ "$i" != "$leader" ] && F=${url[$i]} && break; done
for b in $(seq 0 99); do
	items=$(for j in $(seq 0 99); do printf '{"key":"pre%d","value":"%0100d"},' $((b*100+j)) 0; done)
	curl -sf -XPUT "$L/kv/batch" -H 'Content-Type: application/json' -d "{\"items\":[${items%,}]}" >/dev/null
done
fsyncs() { curl -s "$1/metrics" | awk '/^kvfs_disk_wal_fsync_total/{print $2}'; }
puts() { curl -s "$1/metrics" | awk '/^kvfs_server_applied_index/{print $2}'; }
echo "== $N node(s), fsync on, 100-byte values, wrk -d $D"
run() { # name url conns script
	local f0 a0 out rps
	f0=$(fsyncs "$2"); a0=$(puts "$2")
	out=$(wrk -t"$(( $3 > 1 ? 2 : 1 ))" -c"$3" -d"$D" --latency -s "$top/bench/$4" "$2")
	rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
	printf '%-28s %10s req/s  p50 %-8s p99 %-8s' "$1" "$rps" \
		"$(echo "$out" | awk '$1=="50%"{print $2}')" "$(echo "$out" | awk '$1=="99%"{print $2}')"
	if [ "$4" = wrk_put.lua ]; then
		awk -v f="$(( $(fsyncs "$2") - f0 ))" -v w="$(( $(puts "$2") - a0 ))" \
			'BEGIN{printf "  log fsyncs/write %.3f", (w>0?f/w:0)}'
	fi
	echo
	echo "$out" | grep -E "Non-2xx|Socket errors" || true
}
run "PUT 64 conns (leader)" "$L" 64 wrk_put.lua
run "PUT 1 conn (leader)" "$L" 1 wrk_put.lua
run "GET 64 conns (leader)" "$L" 64 wrk_get.lua
if [ "$N" -gt 1 ]; then
	run "PUT 64 conns (follower)" "$F" 64 wrk_put.lua
	run "PUT 1 conn (follower)" "$F" 1 wrk_put.lua
	run "GET 64 conns (follower)" "$F" 64 wrk_get.lua
fi
