#!/bin/bash
# What one message between two kvfsd nodes costs on this machine, without
# kvfsd: the round trip of a 200-byte message between two processes on
# loopback, through ZeroMQ PUSH/PULL sockets (kvfsd's peer transport) and
# through a plain TCP socket, each with the processes free to run on any
# CPU and pinned to one CPU:
#   bench/hop.sh [COUNT]
# Builds bench/pingpong.c (gcc, libzmq3-dev) in a temporary directory and
# stops everything it started. A Raft hop is half a round trip.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-5000}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
cc -O2 -o "$tmp/pingpong" "$top/bench/pingpong.c" -lzmq
# outside the range of outgoing connections: the client, which connects until
# the server listens, could otherwise take the port first (tests/lib/harness.py)
port() { python3 "$top/tests/lib/harness.py" free-ports 1; }
rtt() { # rtt zmq|tcp [taskset args...]
	local kind=$1 p
	shift
	p=$(port)
	"$@" "$tmp/pingpong" "$kind" server "$p" "$N" &
	pids+=($!)
	"$@" "$tmp/pingpong" "$kind" client "$p" "$N"
	wait "${pids[-1]}"
}
echo "round trip of a 200-byte message between two processes on loopback, mean of $N (us)"
printf '%-30s %10s %16s\n' "" "any CPU" "pinned to CPU 0"
printf '%-30s %10s %16s\n' "ZeroMQ PUSH/PULL (kvfsd's)" "$(rtt zmq env)" "$(rtt zmq taskset -c 0)"
printf '%-30s %10s %16s\n' "plain TCP" "$(rtt tcp env)" "$(rtt tcp taskset -c 0)"
