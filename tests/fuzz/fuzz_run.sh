#!/bin/sh
# fuzz_run.sh: what the fuzz ctests run (tests/fuzz/CMakeLists.txt).
#
#   fuzz_run.sh fuzz <target> <seconds> <seed corpus> <work dir>
#       Copies the seeds into <work dir>/corpus (kept between runs, so that what earlier
#       runs found is tried again) and fuzzes for <seconds>; a crash input is written to
#       <work dir>/crash-<sha1> and the test fails.
#   fuzz_run.sh replay <target> <regressions dir>
#       Runs the target once on each file of the folder (none: passes); the folder is
#       only read.
set -eu

mode=$1
target=$2
shift 2
case $mode in
fuzz)
	seconds=$1 seeds=$2 work=$3
	mkdir -p "$work/corpus"
	cp -R "$seeds/." "$work/corpus/"
	exec "$target" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 \
		-artifact_prefix="$work/" -print_final_stats=1 "$work/corpus"
	;;
replay)
	dir=$1
	set --
	if [ -d "$dir" ]; then
		for f in "$dir"/*; do
			[ -f "$f" ] && set -- "$@" "$f"
		done
	fi
	if [ "$#" -eq 0 ]; then
		echo "no regression inputs in $dir"
		exit 0
	fi
	exec "$target" -timeout=5 -rss_limit_mb=1024 "$@"
	;;
*)
	echo "usage: fuzz_run.sh fuzz|replay <target> ..." >&2
	exit 2
	;;
esac
