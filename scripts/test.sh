#!/usr/bin/env bash
# test.sh: run every test, the way CI does (.ci/run calls this).
#
# Installs missing Debian packages, starts a throwaway PostgreSQL 15 and Redis on
# loopback (data in .hex/test/, wiped at start), builds build/ and build-asan/
# (-DHEX_SANITIZE=ON) and the libFuzzer targets alone in build-fuzz/ (clang,
# -DHEX_FUZZ=ON), runs ctest in each (the fuzz one fuzzes every target a few seconds and
# replays its regression inputs: tests/fuzz/README.md), stops the servers, runs the six
# reliability drills in their short form against build/ (tests/drills/run.sh --short: each
# on its own private cluster; one test each), and ends with one line `N passed, N failed`
# summed over all of it. Exit status 0 only if nothing failed.
# A build that fails, or a build with no tests, counts as one failure.
#
# Environment: HEX_TEST_PG_PORT (25432), HEX_TEST_REDIS_PORT (26379),
# HEX_TEST_JOBS (ctest parallelism, 2).
set -euo pipefail

HEX_SCRIPT='test'
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT=${HEX_TEST_PG_PORT:-25432}
REDIS_PORT=${HEX_TEST_REDIS_PORT:-26379}
JOBS=${HEX_TEST_JOBS:-2}

TOTAL_PASSED=0
TOTAL_FAILED=0
REPORT=()

# Our servers from a killed run may still be using .hex/test: stop them before wiping.
wipe_test_state() {
	hex_pg_paths
	hex_pid_is_ours "$(hex_pg_pid)" postgres "$HEX_PG_DATA" && hex_pg_stop
	hex_redis_paths
	hex_pid_is_ours "$(hex_redis_pid)" redis-server "$HEX_REDIS_DIR" && hex_redis_stop
	rm -rf --one-file-system "$HEX_STATE"
	[ "$HEX_SERVER_DIR" = "$HEX_STATE" ] || rm -rf --one-file-system "$HEX_SERVER_DIR"
	hex_choose_folders test >/dev/null
}

count_failure() {
	TOTAL_FAILED=$((TOTAL_FAILED + 1))
	REPORT+=("$1")
}

# Runs ctest in one build folder and adds its counts to the totals, read from ctest's
# own summary line ("83% tests passed, 2 tests failed out of 12").
run_ctest() {
	local dir=$1 log=$HEX_STATE/ctest-$1.log rc=0 summary total failed
	hex_say "running ctest in $dir/"
	(cd "$HEX_ROOT/$dir" && ctest --output-on-failure --no-tests=error -j"$JOBS") 2>&1 9>&- |
		tee "$log" || rc=$?
	summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
	if [ -z "$summary" ]; then
		count_failure "$dir: ctest ran no tests (exit $rc, log: $log)"
		return 0
	fi
	failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
	total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$summary")
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1 # ctest failed without saying which test: still a failure
	fi
	TOTAL_PASSED=$((TOTAL_PASSED + total - failed))
	TOTAL_FAILED=$((TOTAL_FAILED + failed))
	REPORT+=("$dir: $((total - failed)) passed, $failed failed")
}

# The drills (docs/RELIABILITY.md) in their short form, each counted as one test, from
# the "DRILL <n> PASS|FAIL" lines of run.sh; they start their own cluster on build/.
run_drills() {
	local log=$HEX_STATE/drills.log rc=0 passed failed
	hex_say "running tests/drills/run.sh --short against build/"
	HEX_CLUSTER_BUILD_DIR=build HEX_CLUSTER_SKIP_BUILD=1 \
		"$HEX_ROOT/tests/drills/run.sh" --short 2>&1 9>&- | tee "$log" || rc=$?
	# run.sh prints each drill's line twice (as it ends, and in the closing list).
	# (grep finding nothing fails the pipeline: that is a count of 0, not an error.)
	passed=$(grep -E '^DRILL [^ ]+ PASS' "$log" | sort -u | wc -l || true)
	failed=$(grep -E '^DRILL [^ ]+ FAIL' "$log" | sort -u | wc -l || true)
	if [ $((passed + failed)) -eq 0 ]; then
		count_failure "drills: no drill reported (exit $rc, log: $log)"
		return 0
	fi
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1
	fi
	TOTAL_PASSED=$((TOTAL_PASSED + passed))
	TOTAL_FAILED=$((TOTAL_FAILED + failed))
	REPORT+=("drills: $passed passed, $failed failed (log: $log)")
}

# Only the fuzz targets and the libraries they link are built: the rest of the tree is
# covered by the two other builds, and instrumented code is slow to compile.
build_fuzz() {
	hex_say "building build-fuzz/ -DHEX_FUZZ=ON (clang, fuzz targets only)"
	CC=clang cmake -S "$HEX_ROOT" -B "$HEX_ROOT/build-fuzz" -DHEX_FUZZ=ON 9>&- &&
		cmake --build "$HEX_ROOT/build-fuzz" --target fuzz_all -j"$(nproc)" 9>&-
}

main() {
	local started=$SECONDS
	hex_init
	hex_lock test
	hex_install_packages
	hex_ensure_server_user
	hex_choose_folders test
	wipe_test_state

	hex_pg_start test "$PG_PORT" HEX_TEST_PG_PORT
	hex_redis_start test "$REDIS_PORT" HEX_TEST_REDIS_PORT
	export HEX_TEST_PG_URL="host=127.0.0.1 port=$PG_PORT user=$HEX_SERVER_USER dbname=postgres"
	export HEX_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

	cd "$HEX_ROOT"
	local ok_build=0 ok_asan=0
	if hex_build build; then ok_build=1; else count_failure "build/: the build failed"; fi
	if hex_build build-asan -DHEX_SANITIZE=ON; then
		ok_asan=1
	else
		count_failure "build-asan/: the build failed"
	fi
	local ok_fuzz=0
	if build_fuzz; then ok_fuzz=1; else count_failure "build-fuzz/: the build failed"; fi

	[ "$ok_build" = 1 ] && run_ctest build
	if [ "$ok_asan" = 1 ]; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_ctest build-asan
	fi
	[ "$ok_fuzz" = 1 ] && run_ctest build-fuzz

	# Stop the test servers before the drills start theirs.
	hex_run_cleanups
	if [ "$ok_build" = 1 ]; then run_drills; else count_failure "drills: build/ failed"; fi
	printf '\n'
	local line
	for line in "${REPORT[@]}"; do
		hex_say "$line"
	done
	hex_say "took $((SECONDS - started))s"
	printf '%d passed, %d failed\n' "$TOTAL_PASSED" "$TOTAL_FAILED"
	[ "$TOTAL_FAILED" -eq 0 ]
}

main "$@"
