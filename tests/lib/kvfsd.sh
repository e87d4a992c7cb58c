# Shared by the shell integration tests (cli.sh, bench.sh), sourced first.
# Finds kvfs and kvfsd in $top_builddir (skipping, exit 77, when they or
# curl are missing), and provides a temporary directory $tmp, an EXIT
# trap that stops kvfsd and every pid in $extra_pids and removes $tmp, fail()
# with a $failures count, free_port() for an endpoint nobody listens on,
# wait_ready URL PID, and start_kvfsd, which starts one kvfsd on a port the
# kernel picks (--http 127.0.0.1:0, so two runs cannot collide) and sets
# $port and $EP once /readyz answers 200.

: "${top_builddir:=.}"
KVFS=$top_builddir/kvfs
KVFSD=$top_builddir/kvfsd
if [ ! -x "$KVFSD" ] || [ ! -x "$KVFS" ]; then
	echo "SKIP: $KVFSD or $KVFS not built"
	exit 77
fi
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl(1) not found"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvfs-test.XXXXXX") || exit 1
kvfsd_pid=
extra_pids=
failures=0
checks=0

cleanup() {
	for pid in $kvfsd_pid $extra_pids; do
		kill "$pid" 2>/dev/null
	done
	for pid in $kvfsd_pid $extra_pids; do
		wait "$pid" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# A random port nobody listens on (curl gets "connection refused", exit 7).
free_port() {
	while :; do
		p=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		p=$((20000 + p % 40000))
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/" 2>/dev/null
		if [ $? -eq 7 ]; then
			echo "$p"
			return
		fi
	done
}

# Polls url until it answers 200, at most 200 tries 0.05 s apart (10 s), and
# gives up early if process $2 died. Returns 0 when ready.
wait_ready() {
	tries=0
	while [ $tries -lt 200 ]; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" 2>/dev/null)
		[ "$code" = 200 ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		tries=$((tries + 1))
		sleep 0.05
	done
	return 1
}

# Starts kvfsd (extra flags in "$@") with a fresh data directory.
start_kvfsd() {
	rm -rf "$tmp/data" "$tmp/ready"
	mkdir -p "$tmp/data"
	"$KVFSD" --http 127.0.0.1:0 --ready-file "$tmp/ready" --data "$tmp/data" "$@" \
		>"$tmp/kvfsd.log" 2>&1 &
	kvfsd_pid=$!
	tries=0
	while [ ! -s "$tmp/ready" ] && [ $tries -lt 200 ] && kill -0 "$kvfsd_pid" 2>/dev/null; do
		tries=$((tries + 1))
		sleep 0.05
	done
	EP=$(cat "$tmp/ready" 2>/dev/null)
	port=${EP##*:}
	if [ -z "$EP" ] || ! wait_ready "$EP/readyz" "$kvfsd_pid"; then
		echo "FAIL: kvfsd did not become ready; its log:" >&2
		cat "$tmp/kvfsd.log" >&2
		exit 1
	fi
}
