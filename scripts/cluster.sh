#!/bin/bash
# Local cluster launcher: the docker-compose topology as plain processes.
#
# Starts N kvfsd nodes (default 4, REST on 8000..8003 like the compose file),
# each with its FUSE mount, data and log under one run directory, plus a
# Prometheus scraping them when prometheus is installed; waits (showing
# progress) until the cluster has elected a leader; prints the URLs and
# mount points; reports a node that exits while the others keep running;
# Ctrl-C (or SIGTERM) stops everything and unmounts.
#
# Settings (environment):
#   KVFS_NODES=4          number of nodes
#   KVFS_RUN=./kvfs-run   run directory (data persists across runs)
#   KVFS_HTTP_PORT=8000   REST port of node 1 (node i: +i-1)
#   KVFS_PEER_PORT=7000   peer port of node 1 (node i: +i-1)
#   KVFS_PROM_PORT=9090   Prometheus port (set to 0 to skip Prometheus)
#   KVFS_MOUNT=1          mount each node's keyspace (0: no mounts)
#   KVFS_BIN=build        where kvfsd and kvfs are
# Extra arguments are passed to every kvfsd.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
N=${KVFS_NODES:-4}
RUN=$(mkdir -p "${KVFS_RUN:-./kvfs-run}" && cd "${KVFS_RUN:-./kvfs-run}" && pwd)
HTTP=${KVFS_HTTP_PORT:-8000}
PEER=${KVFS_PEER_PORT:-7000}
PROM=${KVFS_PROM_PORT:-9090}
MOUNT=${KVFS_MOUNT:-1}
BIN=${KVFS_BIN:-$top/build}
KVFSD=$BIN/kvfsd

[ -x "$KVFSD" ] || { echo "cluster: $KVFSD not built (run scripts/build.sh)" >&2; exit 1; }
if [ "$MOUNT" = 1 ] && ! "$KVFSD" --help | grep -q -- '--mount'; then
	echo "cluster: this kvfsd has no --mount; starting without mounts" >&2
	MOUNT=0
fi

cluster=
for i in $(seq 1 "$N"); do
	cluster="${cluster:+$cluster,}$i=tcp://127.0.0.1:$((PEER + i - 1))"
done

pids=()
mounts=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "cluster: stopping"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	# Nodes started again by hand (the command printed when one exited).
	local again
	again=$(pgrep -f -- "--data $RUN/node[0-9]+/data" || true)
	if [ -n "$again" ]; then
		kill -TERM $again 2>/dev/null
		for _ in $(seq 300); do
			pgrep -f -- "--data $RUN/node[0-9]+/data" >/dev/null || break
			sleep 0.1
		done
	fi
	for m in "${mounts[@]}"; do
		grep -q " $m fuse" /proc/mounts 2>/dev/null && fusermount3 -uz "$m" 2>/dev/null
	done
	echo "cluster: stopped (data kept in $RUN)"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

for i in $(seq 1 "$N"); do
	d=$RUN/node$i
	mkdir -p "$d"
	args=(--id "$i" --cluster "$cluster" --http "127.0.0.1:$((HTTP + i - 1))" --data "$d/data")
	if [ "$MOUNT" = 1 ]; then
		mkdir -p "$d/mnt"
		args+=(--mount "$d/mnt")
		mounts+=("$d/mnt")
	fi
	"$KVFSD" "${args[@]}" "$@" >>"$d/kvfsd.log" 2>&1 &
	pids+=($!)
	restart[$i]="$(printf '%q ' "$KVFSD" "${args[@]}" "$@")>>$(printf '%q' "$d/kvfsd.log") 2>&1 &"
done

if [ "$PROM" != 0 ] && command -v prometheus >/dev/null; then
	mkdir -p "$RUN/prometheus"
	{
		echo "global: {scrape_interval: 5s, evaluation_interval: 5s}"
		echo "scrape_configs:"
		echo "  - job_name: kvfs"
		echo "    static_configs:"
		echo "      - targets:"
		for i in $(seq 1 "$N"); do echo "          - 127.0.0.1:$((HTTP + i - 1))"; done
	} >"$RUN/prometheus/prometheus.yml"
	prometheus --config.file="$RUN/prometheus/prometheus.yml" \
		--storage.tsdb.path="$RUN/prometheus/data" \
		--web.listen-address="127.0.0.1:$PROM" >>"$RUN/prometheus/prometheus.log" 2>&1 &
	pids+=($!)
else
	PROM=0
fi

# Wait for every node to answer and agree on a leader, with progress.
printf 'cluster: waiting for %s nodes to elect a leader ' "$N"
leader=
for _ in $(seq 1 600); do
	for p in "${pids[@]:0:$N}"; do
		kill -0 "$p" 2>/dev/null || { echo; echo "cluster: a node exited; see $RUN/node*/kvfsd.log" >&2; exit 1; }
	done
	ready=0
	for i in $(seq 1 "$N"); do
		curl -sf -m 1 "http://127.0.0.1:$((HTTP + i - 1))/readyz" >/dev/null && ready=$((ready + 1))
	done
	if [ "$ready" = "$N" ]; then
		leader=$(curl -s -m 1 "http://127.0.0.1:$HTTP/health" | sed -n 's/.*"leader_id":\([0-9]*\).*/\1/p')
		break
	fi
	printf '.'
	sleep 0.2
done
echo
[ -n "$leader" ] || { echo "cluster: no leader after 120 s; see $RUN/node*/kvfsd.log" >&2; exit 1; }

echo "cluster: $N nodes up, leader is node $leader"
for i in $(seq 1 "$N"); do
	line="  node $i  REST http://127.0.0.1:$((HTTP + i - 1))  peer tcp://127.0.0.1:$((PEER + i - 1))"
	[ "$MOUNT" = 1 ] && line="$line  mount $RUN/node$i/mnt"
	echo "$line"
done
[ "$PROM" != 0 ] && echo "  prometheus http://127.0.0.1:$PROM"
echo "  logs       $RUN/node*/kvfsd.log"
echo "try: $BIN/kvfs --endpoints http://127.0.0.1:$HTTP,http://127.0.0.1:$((HTTP + 1)) put hello world"
echo "Ctrl-C stops the cluster. A node that exits (kill -9 the leader to watch a failover) is"
echo "reported here and the others keep running."

# Supervise: report each process that exits; stop when no node is left.
live=("${pids[@]}")
while [ "${#live[@]}" -gt 0 ]; do
	gone=
	wait -n -p gone "${live[@]}"
	rc=$?
	[ -n "$gone" ] || continue # a signal interrupted the wait
	rest=()
	for p in "${live[@]}"; do [ "$p" = "$gone" ] || rest+=("$p"); done
	live=("${rest[@]}")
	for i in $(seq 1 "$N"); do
		if [ "${pids[$((i - 1))]}" = "$gone" ]; then
			echo "cluster: node $i exited (status $rc); log $RUN/node$i/kvfsd.log" >&2
			echo "cluster: to start it again (Ctrl-C here stops it too): ${restart[$i]}" >&2
		fi
	done
	[ "$PROM" != 0 ] && [ "${pids[$N]}" = "$gone" ] && echo "cluster: prometheus exited (status $rc)" >&2
	nodes_left=0
	for p in "${live[@]}"; do [ "$p" = "${pids[$N]:-}" ] || nodes_left=$((nodes_left + 1)); done
	[ "$nodes_left" -gt 0 ] || break
done
echo "cluster: no node left" >&2
