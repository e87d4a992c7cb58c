#!/bin/sh
# The simulator has teeth: each kvfs-sim-bugN is the simulator linked with a
# core carrying one planted bug (src/raft/impl.h, RAFT_PLANT_BUG). Each must
# be caught within the CI seed budget (KVFS_SIM_SEEDS, default 2000 seeds).
set -u
B=${top_builddir:-.}
N=${KVFS_SIM_SEEDS:-$("$B/kvfs-sim" --ci-seeds)}
caught=0
for b in 1 2 3 4 5 6 7; do
	case $b in
	1) what="acknowledging AppendEntries before persisting" ;;
	2) what="not persisting the vote" ;;
	3) what="committing a previous-term entry by counting" ;;
	4) what="not truncating a conflicting suffix" ;;
	5) what="serving ReadIndex without the leadership check" ;;
	6) what="inferring commits where a follower and its leader are no majority" ;;
	7) what="a read index below what followers may have committed by inference" ;;
	esac
	out=$("$B/kvfs-sim-bug$b" --seeds "$N" --stop 2>/dev/null)
	hit=$(echo "$out" | grep '^seed=' | head -n 1)
	if [ -n "$hit" ]; then
		caught=$((caught + 1))
		echo "bug $b ($what): caught: $hit" | cut -c1-300
	else
		echo "bug $b ($what): NOT caught in $N seeds"
	fi
done
echo "planted bugs caught: $caught of 7"
[ "$caught" -eq 7 ]
