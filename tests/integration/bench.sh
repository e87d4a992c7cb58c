#!/bin/sh
# Integration test of `kvfs bench` against a real kvfsd.
#
# Starts one kvfsd on a free port with a fresh data directory (the same way
# as tests/integration/cli.sh), then runs every workload of kvfs bench for a
# bounded number of operations with --json --verify where it applies, and
# checks that each run reports zero errors and, for the write workloads, that
# every acknowledged key was read back. Also: open loop, two threads, the
# seed suite in miniature, --plot when gnuplot is installed, usage errors,
# and the exit status when no server answers. kvfsd is stopped by the EXIT
# trap whatever happens.
#
# Run by `make check` (top_builddir is set by the Makefile) or by hand:
#   top_builddir=/path/to/build sh tests/integration/bench.sh
set -u

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib/kvfsd.sh"
start_kvfsd
unset KVFS_ENDPOINTS

# bench STATUS ARGS...: runs kvfs bench against the test kvfsd, output in
# $tmp/out and $tmp/err, and checks the exit status.
bench() {
	want=$1
	shift
	checks=$((checks + 1))
	"$KVFS" -e "$EP" bench "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	[ "$got" -eq "$want" ] ||
		fail "kvfs bench $* -> exit $got, want $want; stderr: $(head -c 300 "$tmp/err")"
}

# out_has TEXT: the last command's stdout contains TEXT.
out_has() {
	grep -qF -- "$1" "$tmp/out" || fail "stdout lacks '$1': $(head -c 400 "$tmp/out")"
}

# clean_run OPS: the last JSON result has OPS successful operations and no
# error of any kind.
clean_run() {
	out_has "\"ops\":$1,"
	out_has '"errors":{"total":0,'
}

# verified N: the last run read back N acknowledged keys, none lost.
verified() {
	out_has "\"verify\":{\"checked\":$1,\"missing\":0,\"mismatched\":0,\"errors\":0}"
}

# --- every workload, bounded, verified ---------------------------------------

bench 0 --json --verify -w put -n 500 -c 8
clean_run 500
verified 500

bench 0 --json --verify -w put -n 400 -c 4 -k 50 --dist zipf
clean_run 400
out_has '"distribution":"zipf"'

bench 0 --json -w get -n 500 -c 8 -k 200
clean_run 500

bench 0 --json -w get -n 300 -c 4 -k 200 --consistency stale --no-preload
clean_run 300
out_has '"consistency":"stale"'

bench 0 --json --verify -w mixed -n 600 -c 8 -k 300 --read-ratio 0.5
clean_run 600

bench 0 --json --verify -w batch -n 20 -c 2 -b 50
clean_run 20
out_has '"items":1000,'
verified 1000

# New keys are new across runs too: two put runs with different seeds add
# twice their count to the key total; the same seed overwrites the same
# keys; batch keys from --key-start 0 are those a get run over -k reads.
keys_total() { curl -sf "$EP/metrics" | awk '/^kvfs_keys /{print $2}'; }
k0=$(keys_total)
bench 0 --json -w put -n 300 -c 4 --seed 11
bench 0 --json -w put -n 300 -c 4 --seed 12
k1=$(keys_total)
checks=$((checks + 1))
[ "$((k1 - k0))" -eq 600 ] || fail "two put runs of 300 new keys added $((k1 - k0)) keys"
bench 0 --json -w put -n 300 -c 4 --seed 11
checks=$((checks + 1))
[ "$(keys_total)" -eq "$k1" ] || fail "the same seed wrote other keys"
bench 0 --json -w batch -n 4 -c 1 -b 50 --key-prefix kstart/ --key-start 0
bench 0 --json -w get -n 400 -c 4 -k 200 --key-prefix kstart/ --no-preload
clean_run 400

# Range replies are streamed chunked; each must hold all 100 keys.
bench 0 --json -w range -n 200 -c 4 -b 100 -k 1000
clean_run 200
out_has '"items":20000,'

# --- engine modes ------------------------------------------------------------

bench 0 --json --verify -n 400 -c 6 --threads 2
clean_run 400
verified 400
out_has '"threads":2,'

bench 0 --json --verify -d 1 -r 200 -c 4
out_has '"mode":"open"'
out_has '"errors":{"total":0,'
out_has '"missing":0,'

bench 0 -n 100 -c 2
out_has 'latency ms'
out_has 'p99.9'
out_has 'errors      none'

if command -v gnuplot >/dev/null 2>&1; then
	bench 0 -n 200 -c 2 --plot "$tmp/chart.png"
	[ -s "$tmp/chart.png" ] || fail "--plot wrote no chart"
	[ -s "$tmp/chart.png.gp" ] || fail "--plot wrote no gnuplot script"
fi

# --- the seed suite in miniature -----------------------------------------------

bench 0 --seed-suite -n 20 --verify
for row in 'single PUT' 'GET' 'batch 500' 'range 500' '100 clients'; do
	out_has "$row"
done
out_has '6.42'
out_has '1767.32'
bench 0 --seed-suite -n 10 --json
out_has '"suite":"seed"'
out_has '"test":"range 100","unit":"queries/s","seed":219.02,'

# --- errors by status and reason ----------------------------------------------

# Batches over the server's limit: every one refused, each reply's reason
# counted with its status (exit 5: no operation succeeded).
bench 5 --json -w batch -b 10001 -n 2 -c 1
out_has '"http":2,'
out_has '"http_status":{"413":2},"http_reasons":[{"status":413,"detail":"Too many items in batch: limit is 10000 (--max-batch-items)","count":2}],"http_reasons_other":0}'
bench 5 -w batch -b 10001 -n 3 -c 1
out_has 'HTTP 413: 3 (Too many items in batch: limit is 10000 (--max-batch-items): 3)'

# --- usage errors and dead servers -------------------------------------------

bench 2 -w nope
bench 2 -n 5 -d 1
bench 2 -w get --verify
bench 2 extra-operand
bench 0 --help
out_has 'usage: kvfs bench'
out_has '--seed-suite'

EP=http://127.0.0.1:$(free_port)
bench 5 -n 5 -c 1 -t 1

echo "$checks checks, $failures failures"
[ $failures -eq 0 ]
