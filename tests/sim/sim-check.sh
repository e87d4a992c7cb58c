#!/bin/sh
# make check: runs kvfs-sim over KVFS_SIM_SEEDS seeds (default: what
# "kvfs-sim --ci-seeds" says: 2000, or 200 in a sanitizer build), split over
# KVFS_SIM_JOBS processes (default 2), then the regression seeds of
# tests/sim/regress.txt. Each seed is 60 simulated seconds. Prints one line
# "seeds=N violations=V" and fails if V > 0.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
SIM=$B/kvfs-sim
N=${KVFS_SIM_SEEDS:-$("$SIM" --ci-seeds)}
JOBS=${KVFS_SIM_JOBS:-2}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvfs-sim.XXXXXX") || exit 99
trap 'rm -rf "$TMP"' EXIT

start=$(date +%s)
per=$(( (N + JOBS - 1) / JOBS ))
first=1
j=0
while [ "$first" -le "$N" ]; do
	cnt=$per
	[ $((first + cnt - 1)) -gt "$N" ] && cnt=$((N - first + 1))
	"$SIM" --seeds "$cnt" --first "$first" > "$TMP/out.$j" 2> "$TMP/err.$j" &
	first=$((first + cnt))
	j=$((j + 1))
done
wait
"$SIM" --seed-file "$S/tests/sim/regress.txt" > "$TMP/out.regress" 2> "$TMP/err.regress"
end=$(date +%s)

seeds=0
viol=0
for f in "$TMP"/out.*; do
	grep '^seed=' "$f" || true
	line=$(tail -n 1 "$f")
	s=$(echo "$line" | sed -n 's/^seeds=\([0-9]*\) violations=\([0-9]*\)$/\1/p')
	v=$(echo "$line" | sed -n 's/^seeds=\([0-9]*\) violations=\([0-9]*\)$/\2/p')
	if [ -z "$s" ]; then
		echo "kvfs-sim did not finish ($f):"
		cat "$f" "$TMP"/err.* >&2
		exit 1
	fi
	seeds=$((seeds + s))
	viol=$((viol + v))
done
cat "$TMP"/err.* >&2
secs=$((end - start))
[ "$secs" -gt 0 ] || secs=1
echo "kvfs-sim: $seeds seeds (incl. regressions) in ${secs}s wall, $((seeds / secs)) seeds/s"
echo "seeds=$seeds violations=$viol"
[ "$viol" -eq 0 ]
