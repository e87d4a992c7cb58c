#!/bin/sh
# kvfs-lincheck accepts every history in tests/sim/histories/*.ok and
# rejects (exit 1, with an explanation) every *.bad one.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
fail=0
for f in "$S"/tests/sim/histories/*.ok; do
	if ! "$B/kvfs-lincheck" "$f" > /dev/null; then
		echo "FAIL: $f should be linearizable"
		fail=1
	fi
done
for f in "$S"/tests/sim/histories/*.bad; do
	"$B/kvfs-lincheck" "$f" > /dev/null
	if [ $? -ne 1 ]; then
		echo "FAIL: $f should not be linearizable"
		fail=1
	fi
done
exit $fail
