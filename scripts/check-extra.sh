#!/bin/sh
# The checks beyond `make check`: unit tests under valgrind, the unit tests
# and a short simulation in an ASan+UBSan build, and each fuzzer for a short
# bounded time over its committed corpus.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top/build"

echo "== valgrind: unit tests"
units=$(make -s print-unit-tests)
for t in $units; do
	valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=1 "./$t" >/dev/null 2>"valgrind-$t.log" ||
		{ cat "valgrind-$t.log"; echo "valgrind: $t failed"; exit 1; }
	echo "ok $t"
done

echo "== ASan+UBSan: unit tests"
KVFS_BUILD="$top/build-asan" "$top/scripts/build.sh" --enable-sanitizers --enable-debug
cd "$top/build-asan"
make -s -j2 $units
for t in $units; do
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "./$t" >/dev/null 2>"asan-$t.log" ||
		{ cat "asan-$t.log"; echo "sanitizers: $t failed"; exit 1; }
	echo "ok $t"
done
echo "== ASan+UBSan: Raft scenarios and simulation (sanitizer seed budget)"
make -s -j2 check TESTS="raft-scenarios tests/sim/sim-check.sh" >/dev/null ||
	{ cat test-suite.log; echo "sanitizers: simulation failed"; exit 1; }
echo "ok raft-scenarios, sim-check"

echo "== fuzzers (clang libFuzzer)"
KVFS_BUILD="$top/build-fuzz" CC=clang CXX=clang++ "$top/scripts/build.sh" --enable-fuzzers
cd "$top/build-fuzz"
make -s -j2 fuzzers
for f in $(make -s print-fuzzers); do
	corpus="$top/tests/fuzz/corpus/${f#fuzz_}"
	work=$(mktemp -d)
	"./$f" -max_total_time="${KVFS_FUZZ_SECONDS:-20}" -print_final_stats=1 "$work" "$corpus" \
		>"fuzz-$f.log" 2>&1 || { tail -40 "fuzz-$f.log"; echo "fuzzer $f found a crash"; exit 1; }
	rm -rf "$work"
	echo "ok $f: $(grep -m1 'stat::number_of_executed_units' "fuzz-$f.log" | awk '{print $2}') runs"
done
echo "extra checks passed"
