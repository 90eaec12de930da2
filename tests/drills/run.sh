#!/usr/bin/env bash
# run.sh: the reliability drills (docs/RELIABILITY.md), one after another, each on a fresh
# private cluster (scripts/cluster.sh with HEX_CLUSTER_NAME=drills, ports 28000-28133).
#
#   tests/drills/run.sh [--short] [N ...]    all six drills, or only drills N ...
#
# --short: a few seconds of load per drill (for CI). HEX_CLUSTER_BUILD_DIR (build-drills) is the
# build folder whose hexd runs; the cluster builds it first. Each drill prints one line
# "DRILL <n-name> PASS|FAIL key=value ..."; its full output goes to .hex/drills-logs/. The
# exit status is 0 only if every drill passed. Every drill is bounded by a timeout.
set -euo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$DIR/../.." && pwd -P)
LOGS=$ROOT/.hex/drills-logs
export HEX_CLUSTER_BUILD_DIR=${HEX_CLUSTER_BUILD_DIR:-build-drills}
SHORT=0
PICK=()
for arg in "$@"; do
	case $arg in
	--short) SHORT=1 ;;
	[1-6]) PICK+=("$arg") ;;
	*)
		printf 'usage: %s [--short] [1-6 ...]\n' "$0" >&2
		exit 2
		;;
	esac
done
[ "${#PICK[@]}" -gt 0 ] || PICK=(1 2 3 4 5 6)
export HEX_DRILL_SHORT=$SHORT
LIMIT=$([ "$SHORT" = 1 ] && echo 180 || echo 420)

stop_cluster() {
	(cd "$DIR" && python3 -c 'import drill_lib; drill_lib.Cluster().stop()') >/dev/null 2>&1 || true
}
trap stop_cluster EXIT

mkdir -p "$LOGS"
started=$(date +%s)
failed=()
lines=()
for n in "${PICK[@]}"; do
	matches=("$DIR"/drill_"$n"_*.py)
	script=${matches[0]}
	if [ ! -f "$script" ]; then
		printf 'run.sh: drill %s does not exist\n' "$n" >&2
		failed+=("$n")
		continue
	fi
	log=$LOGS/drill_$n.log
	printf 'run.sh: drill %s (%s), log %s\n' "$n" "$(basename "$script")" "$log"
	rc=0
	timeout -k 10 "$LIMIT" python3 "$script" >"$log" 2>&1 || rc=$?
	line=$(grep '^DRILL ' "$log" | tail -n 1 || true)
	if [ -z "$line" ]; then
		line="DRILL $n FAIL no summary (exit $rc; timeout ${LIMIT}s?): see $log"
		stop_cluster
	fi
	[ "$rc" = 0 ] || failed+=("$n")
	[ "$rc" = 0 ] || grep -E '^drill: (CHECK FAILED|drill aborted)' "$log" | sed 's/^/  /' || true
	printf '%s\n' "$line"
	lines+=("$line")
done
printf '\n'
printf '%s\n' "${lines[@]}"
took=$(($(date +%s) - started))
if [ "${#failed[@]}" -eq 0 ]; then
	printf 'DRILLS PASS (%d drills, %ds)\n' "${#PICK[@]}" "$took"
else
	printf 'DRILLS FAIL: drill %s (%ds)\n' "${failed[*]}" "$took"
	exit 1
fi
