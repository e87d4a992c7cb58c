#!/bin/sh
# Integration test of the kvfs command-line client against a real kvfsd.
#
# Starts one kvfsd on a free port with a fresh data directory, waits until
# /readyz answers 200 (bounded polling), then runs every kvfs command and
# checks its output and exit status: put/get/delete in every value mode and
# with preconditions, keys that collide with endpoints, batch in both input
# formats, range paging, status, member and leader commands, failover past a
# dead endpoint (and, when python3 is available, past endpoints that answer
# 503 or never answer) and the documented exit codes. The daemon and the
# helpers are stopped by the EXIT trap whatever happens.
#
# Run by `make check` (top_builddir is set by the Makefile) or by hand:
#   top_builddir=/path/to/build sh tests/integration/cli.sh
set -u

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib/kvfsd.sh"
start_kvfsd
DEAD=http://127.0.0.1:$(free_port)
unset KVFS_ENDPOINTS

# run STATUS CMD...: runs kvfs with the test endpoint, output in $tmp/out and
# $tmp/err, and checks the exit status.
run() {
	want=$1
	shift
	checks=$((checks + 1))
	"$KVFS" -e "$EP" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	[ "$got" -eq "$want" ] ||
		fail "kvfs $* -> exit $got, want $want; stderr: $(head -c 300 "$tmp/err")"
}

# run_in STATUS INPUT_FILE CMD...: same with standard input from a file.
run_in() {
	want=$1
	input=$2
	shift 2
	checks=$((checks + 1))
	"$KVFS" -e "$EP" "$@" >"$tmp/out" 2>"$tmp/err" <"$input"
	got=$?
	[ "$got" -eq "$want" ] ||
		fail "kvfs $* <$input -> exit $got, want $want; stderr: $(head -c 300 "$tmp/err")"
}

# run_at ENDPOINTS STATUS CMD...: run against other endpoints.
run_at() {
	saved_ep=$EP
	EP=$1
	shift
	run "$@"
	EP=$saved_ep
}

# out_is TEXT: the last command printed exactly TEXT plus a newline.
out_is() {
	printf '%s\n' "$1" >"$tmp/want"
	cmp -s "$tmp/want" "$tmp/out" || fail "output '$(head -c 300 "$tmp/out")', want '$1'"
}

# out_has / err_has TEXT: the last command's stdout / stderr contains TEXT.
out_has() {
	grep -qF -- "$1" "$tmp/out" || fail "stdout lacks '$1': $(head -c 300 "$tmp/out")"
}
err_has() {
	grep -qF -- "$1" "$tmp/err" || fail "stderr lacks '$1': $(head -c 300 "$tmp/err")"
}

# --- put / get / delete ------------------------------------------------------

run 0 put greeting 'hello world'
run 0 get greeting
out_is 'hello world'
run 0 put n --json-value 1.1
run 0 get n
out_is '1.1'
run 0 put obj -J '{"a": [1, true, null], "b": "x"}'
run 0 get obj
out_is '{"a":[1,true,null],"b":"x"}'
run 0 put num 42
run 0 get num
out_is '42'
run 0 get --json num
out_is '{"value":"42"}'

# Values from a file, from "-" and from stdin with no value: byte for byte.
# (A string value prints as its text plus a newline.)
printf 'line one\nline two\n' >"$tmp/value"
printf 'line one\nline two\n\n' >"$tmp/want-value"
run 0 put -f "$tmp/value" fromfile
run 0 get fromfile
cmp -s "$tmp/want-value" "$tmp/out" || fail "put -f did not round-trip"
run 0 put --raw -f "$tmp/value" rawfile
run 0 get --raw rawfile
cmp -s "$tmp/value" "$tmp/out" || fail "put --raw -f / get --raw did not round-trip"
run_in 0 "$tmp/value" put dash -
run 0 get dash
cmp -s "$tmp/want-value" "$tmp/out" || fail "put KEY - did not round-trip"
run_in 0 "$tmp/value" put implicit
run 0 get implicit
cmp -s "$tmp/want-value" "$tmp/out" || fail "put KEY <stdin did not round-trip"

# Raw bytes (not UTF-8, with a NUL) round-trip with --raw.
printf 'bin\377\000\001end' >"$tmp/bin"
run 0 put --raw -f "$tmp/bin" binary
run 0 get --raw binary
cmp -s "$tmp/bin" "$tmp/out" || fail "raw bytes did not round-trip"
run 0 get binary
printf 'bin\377\000\001end\n' >"$tmp/want"
cmp -s "$tmp/want" "$tmp/out" || fail "get of raw bytes did not print them"
run 2 put notutf8 "$(printf 'a\377')"
err_has '--raw'
run 0 put --raw notutf8 "$(printf 'a\377')"
run 0 get --raw notutf8
printf 'a\377' >"$tmp/want"
cmp -s "$tmp/want" "$tmp/out" || fail "raw argument did not round-trip"

# Keys that collide with endpoints or need encoding are ordinary keys.
for key in batch range 'a/b c' 'pct%2F+?&=#' "$(printf 'caf\303\251')" '../x' 'trailing/'; do
	run 0 put "$key" "v:$key"
	run 0 get "$key"
	out_is "v:$key"
done
run 0 get --stale batch
out_is 'v:batch'

# Not found, delete, preconditions.
run 1 get missing
err_has 'kvfs: '
run 1 delete missing
run 0 put gone x
run 0 delete gone
run 1 get gone
run 0 put --rev cas v1
rev=$(cat "$tmp/err")
case $rev in '' | *[!0-9]*) fail "put --rev printed '$rev', not a revision" ;; esac
run 0 get --rev cas
[ "$(cat "$tmp/err")" = "$rev" ] || fail "get --rev printed $(cat "$tmp/err"), want $rev"
run 0 get --rev --json cas
out_is "{\"value\":\"v1\",\"revision\":$rev}"
run 3 put --if-match $((rev + 1000)) cas v2
run 0 get cas
out_is v1
run 0 put --if-match "$rev" cas v2
run 0 get cas
out_is v2
run 3 put --if-absent cas v3
run 0 put --if-absent fresh v1
run 3 delete --if-match 1 cas
run 0 get --rev cas
run 0 delete --if-match "$(cat "$tmp/err")" cas
run 1 get cas
run 0 put --json jput 1
out_has '"revision"'

# Requests the server rejects: exit 4 with its message.
run 4 put --json-value nullvalue null
err_has 'kvfs: put nullvalue'

# --- batch -------------------------------------------------------------------

printf 'b/1\tone\nb/2\ttwo words\n\nb/3\t\n' >"$tmp/batch.tsv"
run 0 batch "$tmp/batch.tsv"
run 0 get b/2
out_is 'two words'
run 0 get b/3
out_is ''
printf 'j/1\t{"x":1}\nj/2\t[1,2]\n' >"$tmp/batch-json-values"
run_in 0 "$tmp/batch-json-values" batch --json-values --rev
run 0 get j/1
out_is '{"x":1}'
printf '{"items":[{"key":"batch","value":{"from":"batch"}},{"key":"range","value":7}]}\n' >"$tmp/batch.json"
run 0 batch --json "$tmp/batch.json"
out_has '"success"'
run 0 get batch
out_is '{"from":"batch"}'
run 0 get range
out_is '7'
printf 'no tab\n' >"$tmp/bad-batch"
run 2 batch "$tmp/bad-batch"
err_has 'line 1'

# --- range -------------------------------------------------------------------

i=10
: >"$tmp/range.tsv"
: >"$tmp/want-range"
while [ $i -lt 35 ]; do
	printf 'r/%s\tval%s\n' "$i" "$i" >>"$tmp/range.tsv"
	i=$((i + 1))
done
run 0 batch "$tmp/range.tsv"
cp "$tmp/range.tsv" "$tmp/want-range"
run 0 range --prefix r/ --page-size 4
cmp -s "$tmp/want-range" "$tmp/out" || fail "range --prefix paging: $(head -c 300 "$tmp/out")"
run 0 range r/12 r/14
printf 'r/12\tval12\nr/13\tval13\nr/14\tval14\n' >"$tmp/want"
cmp -s "$tmp/want" "$tmp/out" || fail "range START END: $(head -c 300 "$tmp/out")"
run 0 range --prefix r/ --keys-only --limit 5 --page-size 2
printf 'r/10\nr/11\nr/12\nr/13\nr/14\n' >"$tmp/want"
cmp -s "$tmp/want" "$tmp/out" || fail "range --keys-only --limit: $(head -c 300 "$tmp/out")"
run 0 range --json --prefix r/ --limit 2 --page-size 2
out_has '{"results":[{"key":"r/10","value":"val10"},{"key":"r/11","value":"val11"}]'
out_has '"continue":'
run 0 range --json --prefix r/3
out_is '{"results":[{"key":"r/30","value":"val30"},{"key":"r/31","value":"val31"},{"key":"r/32","value":"val32"},{"key":"r/33","value":"val33"},{"key":"r/34","value":"val34"}]}'
run 0 range --prefix nothing-here/
[ -s "$tmp/out" ] && fail "empty range printed $(head -c 300 "$tmp/out")"
run 0 range --keys-only
out_has 'greeting'
run 2 range onlystart

# --- status ------------------------------------------------------------------

run 0 status
out_has "endpoint      $EP"
out_has 'leader        1 (' # the member id, then the peer address
out_has 'commit index'
run 0 status --json
out_has '"health":{'
out_has '"replication":{'
run 5 status --all -e "$EP,$DEAD"
out_has "endpoint      $EP"

# --- member / leader ---------------------------------------------------------

code=$(curl -s -o /dev/null -w '%{http_code}' "$EP/cluster/members")
if [ "$code" = 404 ] || [ "$code" = 405 ]; then
	echo "SKIP: member/leader commands (server answers $code on /cluster/members)"
else
	run 0 member list
	out_has 'ID'
	run 0 member list --json
	out_has '"members"'
	# A learner does not count towards quorum, so the single node keeps
	# working while it is a member that never connects.
	run 0 member add --learner 99 tcp://127.0.0.1:1 127.0.0.1:1
	run 0 member list
	out_has '99'
	run 0 member remove 99
	run 0 put after-membership ok
	"$KVFS" -e "$EP" member promote 98 >/dev/null 2>&1
	rc=$?
	[ $rc -eq 1 ] || [ $rc -eq 4 ] || fail "member promote of an unknown id -> exit $rc"
	"$KVFS" -e "$EP" leader transfer >/dev/null 2>&1
	rc=$?
	case $rc in 2 | 6) fail "leader transfer on one node -> exit $rc" ;; esac
fi

# --- failover and exit codes -------------------------------------------------

run_at "$DEAD,$EP" 0 get greeting
out_is 'hello world'
checks=$((checks + 1))
if ! KVFS_ENDPOINTS="$DEAD,http://127.0.0.1:$port" "$KVFS" get greeting >"$tmp/out" 2>"$tmp/err"; then
	fail "KVFS_ENDPOINTS failover: $(cat "$tmp/err")"
fi
out_is 'hello world'
run_at "$DEAD,$EP" 0 --verbose put failover yes
err_has "$DEAD"
run_at "$DEAD" 5 get greeting
err_has 'cluster unavailable'
run_at "$DEAD" 5 --timeout 0.5 put k v
run 2 get
run 2 frob
run 2 put k v --no-such-option
run 2 get k --timeout nope

if command -v python3 >/dev/null 2>&1; then
	# Stub endpoints: one answers 503 with a detail, one accepts and never
	# answers (a hung node).
	cat >"$tmp/stub.py" <<'PY'
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
body = b'{"detail":"No leader (no quorum)"}'
held = []
def serve(c):
    c.recv(65536)
    if sys.argv[1] == "503":
        c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        c.close()
    else:
        held.append(c)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
	python3 "$tmp/stub.py" 503 >"$tmp/stub503.port" &
	extra_pids="$extra_pids $!"
	python3 "$tmp/stub.py" hang >"$tmp/stubhang.port" &
	extra_pids="$extra_pids $!"
	tries=0
	while { [ ! -s "$tmp/stub503.port" ] || [ ! -s "$tmp/stubhang.port" ]; } && [ $tries -lt 100 ]; do
		tries=$((tries + 1))
		sleep 0.05
	done
	S503=http://127.0.0.1:$(cat "$tmp/stub503.port")
	SHANG=http://127.0.0.1:$(cat "$tmp/stubhang.port")
	run_at "$S503,$EP" 0 get greeting
	out_is 'hello world'
	run_at "$S503" 5 get greeting
	err_has 'No leader'
	run_at "$SHANG,$EP" 0 --timeout 0.5 get greeting
	out_is 'hello world'
	run_at "$SHANG" 5 --timeout 0.5 get greeting
	run_at "$S503,$DEAD" 5 put k v
else
	echo "SKIP: 503 and hung-endpoint failover (no python3)"
fi

# --- help ----------------------------------------------------------------------

for cmd in put get delete batch range status "member list" "member add" \
	"member remove" "member promote" "leader transfer"; do
	# shellcheck disable=SC2086
	run 0 $cmd --help
	out_has "usage: kvfs $cmd"
	# shellcheck disable=SC2086
	run 0 help $cmd
	out_has "usage: kvfs $cmd"
done
run 0 --version
out_has 'kvfs '

echo "$checks checks, $failures failures"
[ $failures -eq 0 ]
