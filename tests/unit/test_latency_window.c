/*
 * test_latency_window: the rolling per-second window behind the live latency feed:
 * requests/s, error rate (>= 500 only), p50/p95/p99 upper bounds on known
 * distributions, slot reuse, exclusion of old seconds, the clamped `seconds`, and
 * merging per-thread windows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/latency_window.h"

/* An arbitrary wall-clock second (2026-11-29) and a time inside it. */
#define T0     INT64_C(1795975200)
#define AT(s)  (((T0) + (s)) * INT64_C(1000000) + 500000)
#define SEC_US INT64_C(1000000)

static struct latency_window *window_new(void)
{
	struct latency_window *w = calloc(1, sizeof *w);
	assert_non_null(w);
	return w;
}

static struct latency_stats read_at(const struct latency_window *w, int64_t now_us, int seconds)
{
	struct latency_stats s;
	memset(&s, 0x5a, sizeof s); /* garbage in: every field must be written */
	latency_window_read(w, now_us, seconds, &s);
	return s;
}

/* The documented contract of a percentile: the true value <= result <= true * 1.25. */
static void assert_upper_bound(int64_t got, int64_t truth, const char *what)
{
	if (got < truth || (double)got > (double)truth * 1.25)
		fail_msg("%s: got %lld us for a true %lld us (allowed %lld..%lld)", what,
		         (long long)got, (long long)truth, (long long)truth,
		         (long long)((double)truth * 1.25));
}

/* Nearest-rank percentile of a sorted array: the value at rank ceil(n * permille / 1000). */
static int64_t true_percentile(const int64_t *sorted, size_t n, size_t permille)
{
	size_t rank = (n * permille + 999) / 1000;
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void empty_window_reads_zero(void **state)
{
	struct latency_window *w = window_new();
	struct latency_stats s = read_at(w, AT(0), 10);
	assert_int_equal(s.count, 0);
	assert_true(s.requests_per_s == 0.0);
	assert_true(s.error_rate == 0.0);
	assert_int_equal(s.p50_us, 0);
	assert_int_equal(s.p95_us, 0);
	assert_int_equal(s.p99_us, 0);
	free(w);
}

static void requests_per_second_over_the_window(void **state)
{
	struct latency_window *w = window_new();
	/* 20 requests in each of the seconds T0 .. T0+4. */
	for (int sec = 0; sec < 5; sec++)
		for (int i = 0; i < 20; i++)
			latency_window_record(w, AT(sec) + i * 1000, 1000, 200);
	struct latency_stats s = read_at(w, AT(4), 5);
	assert_int_equal(s.count, 100);
	assert_true(fabs(s.requests_per_s - 20.0) < 1e-9);
	s = read_at(w, AT(4), 2); /* seconds 3 and 4 */
	assert_int_equal(s.count, 40);
	assert_true(fabs(s.requests_per_s - 20.0) < 1e-9);
	s = read_at(w, AT(4), 1); /* the current second only */
	assert_int_equal(s.count, 20);
	assert_true(fabs(s.requests_per_s - 20.0) < 1e-9);
	s = read_at(w, AT(4), 10); /* 100 requests over a 10 s window */
	assert_int_equal(s.count, 100);
	assert_true(fabs(s.requests_per_s - 10.0) < 1e-9);
	/* Two seconds later, with no new traffic: seconds 2..4 remain in a 5 s window. */
	s = read_at(w, AT(6), 5);
	assert_int_equal(s.count, 60);
	assert_true(fabs(s.requests_per_s - 12.0) < 1e-9);
	free(w);
}

static void second_boundaries_are_exact(void **state)
{
	struct latency_window *w = window_new();
	int64_t start = (T0 + 1) * SEC_US;
	latency_window_record(w, start - 1, 100, 200); /* last µs of T0 */
	latency_window_record(w, start, 100, 200);     /* first µs of T0+1 */
	latency_window_record(w, start, 100, 200);
	assert_int_equal(read_at(w, start, 1).count, 2);
	assert_int_equal(read_at(w, start + SEC_US - 1, 1).count, 2);
	assert_int_equal(read_at(w, start - 1, 1).count, 1);
	assert_int_equal(read_at(w, start, 2).count, 3);
	free(w);
}

static void error_rate_counts_only_5xx(void **state)
{
	static const int statuses[] = {200, 201, 204, 400, 401, 404, 429, 499, 500, 503, 504, 599};
	struct latency_window *w = window_new();
	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		latency_window_record(w, AT(0), 500, statuses[i]);
	struct latency_stats s = read_at(w, AT(0), 10);
	assert_int_equal(s.count, 12);
	assert_true(fabs(s.error_rate - 4.0 / 12.0) < 1e-9);

	/* No 5xx at all: exactly 0; only 5xx: exactly 1. */
	struct latency_window *ok = window_new(), *bad = window_new();
	for (int i = 0; i < 50; i++) {
		latency_window_record(ok, AT(0), 500, 499);
		latency_window_record(bad, AT(0), 500, 500);
	}
	assert_true(read_at(ok, AT(0), 10).error_rate == 0.0);
	assert_true(read_at(bad, AT(0), 10).error_rate == 1.0);
	free(ok);
	free(bad);
	free(w);
}

static void error_rate_spans_the_window_seconds(void **state)
{
	struct latency_window *w = window_new();
	for (int i = 0; i < 10; i++)
		latency_window_record(w, AT(0), 500, 500); /* an old burst of errors */
	for (int i = 0; i < 30; i++)
		latency_window_record(w, AT(3), 500, i < 3 ? 502 : 200);
	assert_true(fabs(read_at(w, AT(3), 10).error_rate - 13.0 / 40.0) < 1e-9);
	assert_true(fabs(read_at(w, AT(3), 3).error_rate - 3.0 / 30.0) < 1e-9);
	free(w);
}

static void single_value_percentiles_are_tight_upper_bounds(void **state)
{
	/* Every duration from 10 µs to 20 ms, then geometric steps up to 12 s. */
	for (int64_t d = 10; d <= 12000000; d = d < 20000 ? d + 1 : d + d / 97) {
		struct latency_window w = {0};
		for (int i = 0; i < 3; i++)
			latency_window_record(&w, AT(0), d, 200);
		struct latency_stats s = read_at(&w, AT(0), 1);
		assert_upper_bound(s.p50_us, d, "p50");
		assert_int_equal(s.p95_us, s.p50_us);
		assert_int_equal(s.p99_us, s.p50_us);
	}
}

static void uniform_distribution_percentiles(void **state)
{
	/* 1 ms, 2 ms, ..., 1000 ms, recorded in shuffled order within one second. */
	struct latency_window *w = window_new();
	int64_t v[1000];
	for (int i = 0; i < 1000; i++)
		v[i] = (int64_t)(i + 1) * 1000;
	srand(42);
	for (int i = 999; i > 0; i--) {
		int j = rand() % (i + 1);
		int64_t t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	for (int i = 0; i < 1000; i++)
		latency_window_record(w, AT(0), v[i], 200);
	struct latency_stats s = read_at(w, AT(0), 10);
	assert_int_equal(s.count, 1000);
	assert_upper_bound(s.p50_us, 500000, "p50");
	assert_upper_bound(s.p95_us, 950000, "p95");
	assert_upper_bound(s.p99_us, 990000, "p99");
	free(w);
}

static void bimodal_distribution_percentiles_follow_the_ranks(void **state)
{
	/* 90 fast (200 µs) and 10 slow (80 ms): p50 fast, p95 and p99 slow. */
	struct latency_window *w = window_new();
	for (int i = 0; i < 100; i++)
		latency_window_record(w, AT(0), i % 10 == 0 ? 80000 : 200, 200);
	struct latency_stats s = read_at(w, AT(0), 10);
	assert_upper_bound(s.p50_us, 200, "p50");
	assert_upper_bound(s.p95_us, 80000, "p95");
	assert_upper_bound(s.p99_us, 80000, "p99");

	/* 99 fast + 1 slow: rank 99 is still fast. 98 + 2: rank 99 is slow. */
	struct latency_window *a = window_new(), *b = window_new();
	for (int i = 0; i < 100; i++) {
		latency_window_record(a, AT(0), i == 50 ? 3000000 : 150, 200);
		latency_window_record(b, AT(0), i < 2 ? 3000000 : 150, 200);
	}
	assert_upper_bound(read_at(a, AT(0), 10).p99_us, 150, "p99 of 99 fast + 1 slow");
	assert_upper_bound(read_at(b, AT(0), 10).p99_us, 3000000, "p99 of 98 fast + 2 slow");
	assert_upper_bound(read_at(b, AT(0), 10).p95_us, 150, "p95 of 98 fast + 2 slow");
	free(a);
	free(b);
	free(w);
}

static void random_distributions_across_seconds(void **state)
{
	/* Latencies uniform within a random decade from 10 µs to 10 s, spread over 10
	 * seconds: the merged histogram of all slots gives the percentiles of all values. */
	srand(7);
	for (int round = 0; round < 20; round++) {
		struct latency_window *w = window_new();
		size_t n = 200 + (size_t)(rand() % 3000);
		int64_t *v = calloc(n, sizeof *v);
		assert_non_null(v);
		for (size_t i = 0; i < n; i++) {
			int64_t decade = 10;
			for (int k = rand() % 6; k > 0; k--)
				decade *= 10;
			v[i] = decade + rand() % (9 * decade);
			latency_window_record(w, AT((int)(i % 10)), v[i], 200);
		}
		qsort(v, n, sizeof *v, cmp_i64);
		struct latency_stats s = read_at(w, AT(9), 10);
		assert_int_equal(s.count, n);
		assert_upper_bound(s.p50_us, true_percentile(v, n, 500), "p50");
		assert_upper_bound(s.p95_us, true_percentile(v, n, 950), "p95");
		assert_upper_bound(s.p99_us, true_percentile(v, n, 990), "p99");
		assert_true(s.p50_us <= s.p95_us && s.p95_us <= s.p99_us);
		free(v);
		free(w);
	}
}

/*
 * The header promises an upper bound ("at most +25% high"), so a slow outlier must never
 * be reported as faster than it was: a stuck 30 s request is not a 13 s one.
 */
static void very_slow_requests_are_not_reported_faster(void **state)
{
	static const int64_t slow[] = {13000000, 20000000, 30000000, 120000000};
	for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++) {
		struct latency_window w = {0};
		latency_window_record(&w, AT(0), slow[i], 200);
		struct latency_stats s = read_at(&w, AT(0), 1);
		if (s.p99_us < slow[i])
			fail_msg("a %lld us request reads as p99 %lld us: below the true value",
			         (long long)slow[i], (long long)s.p99_us);
		assert_int_equal(s.p99_us, slow[i]); /* the slowest seen, as documented */
	}
	/* 98 fast, then 2 slow in another second of the window: p99 is the slowest. */
	struct latency_window *w = window_new();
	for (int i = 0; i < 98; i++)
		latency_window_record(w, AT(0), 300, 200);
	latency_window_record(w, AT(1), 20000000, 200);
	latency_window_record(w, AT(2), 45000000, 200);
	struct latency_stats s = read_at(w, AT(2), 10);
	assert_upper_bound(s.p95_us, 300, "p95");
	assert_int_equal(s.p99_us, 45000000);
	/* Once the slow second leaves the window, so does its maximum. */
	s = read_at(w, AT(2), 1);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.p50_us, 45000000);
	s = read_at(w, AT(10), 10); /* seconds 1 and 2 remain */
	assert_int_equal(s.count, 2);
	assert_int_equal(s.p50_us, 45000000);
	free(w);
}

static void zero_and_negative_durations_are_fastest(void **state)
{
	struct latency_window *w = window_new();
	latency_window_record(w, AT(0), 0, 200);
	latency_window_record(w, AT(0), -7, 200);
	latency_window_record(w, AT(0), 5000, 200);
	struct latency_stats s = read_at(w, AT(0), 1);
	assert_int_equal(s.count, 3);
	assert_true(s.p50_us >= 0 && s.p50_us <= 10);
	assert_upper_bound(s.p99_us, 5000, "p99");
	free(w);
}

static void slot_is_reused_after_ten_seconds(void **state)
{
	struct latency_window *w = window_new();
	for (int i = 0; i < 5; i++)
		latency_window_record(w, AT(0), 900000, 500); /* slow errors at T0 */
	/* T0+10 maps onto the same slot: it must start empty, not add to T0's. */
	for (int i = 0; i < 3; i++)
		latency_window_record(w, AT(10), 100, 200);
	struct latency_stats s = read_at(w, AT(10), 10);
	assert_int_equal(s.count, 3);
	assert_true(s.error_rate == 0.0);
	assert_upper_bound(s.p99_us, 100, "p99 after reuse");
	s = read_at(w, AT(10), 1);
	assert_int_equal(s.count, 3);

	/* Far later (a quiet hour): every slot is stale, then one fills again. */
	int64_t later = AT(3600);
	assert_int_equal(read_at(w, later, 10).count, 0);
	latency_window_record(w, later, 2000, 503);
	s = read_at(w, later, 10);
	assert_int_equal(s.count, 1);
	assert_true(s.error_rate == 1.0);
	assert_upper_bound(s.p50_us, 2000, "p50 an hour later");
	free(w);
}

static void full_ring_of_ten_seconds_then_wraps(void **state)
{
	struct latency_window *w = window_new();
	/* i + 1 requests in second i, for 25 seconds: the ring wraps twice. */
	for (int sec = 0; sec < 25; sec++)
		for (int i = 0; i <= sec; i++)
			latency_window_record(w, AT(sec), 100, 200);
	/* Seconds 15..24 remain: 16 + 17 + ... + 25 = 205. */
	struct latency_stats s = read_at(w, AT(24), 10);
	assert_int_equal(s.count, 205);
	assert_true(fabs(s.requests_per_s - 20.5) < 1e-9);
	assert_int_equal(read_at(w, AT(24), 1).count, 25);
	free(w);
}

static void old_seconds_are_excluded(void **state)
{
	struct latency_window *w = window_new();
	for (int i = 0; i < 5; i++)
		latency_window_record(w, AT(0), 100, 500);
	assert_int_equal(read_at(w, AT(9), 10).count, 5);  /* age 9: still in */
	assert_int_equal(read_at(w, AT(10), 10).count, 0); /* age 10: out */
	assert_int_equal(read_at(w, AT(2), 3).count, 5);
	assert_int_equal(read_at(w, AT(3), 3).count, 0);
	struct latency_stats s = read_at(w, AT(10), 10);
	assert_true(s.error_rate == 0.0 && s.p99_us == 0 && s.requests_per_s == 0.0);
	/* A reader whose clock is behind the writer's does not see the future second. */
	latency_window_record(w, AT(5), 100, 200);
	assert_int_equal(read_at(w, AT(4), 10).count, 5);
	free(w);
}

static void seconds_argument_is_clamped(void **state)
{
	struct latency_window *w = window_new();
	for (int sec = 0; sec < 10; sec++)
		for (int i = 0; i < 4; i++)
			latency_window_record(w, AT(sec), 100, 200);
	/* Below 1 reads as 1: the current second, per second. */
	static const int small[] = {0, -1, -100, INT32_MIN};
	for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
		struct latency_stats s = read_at(w, AT(9), small[i]);
		assert_int_equal(s.count, 4);
		assert_true(fabs(s.requests_per_s - 4.0) < 1e-9);
	}
	/* Above LATENCY_WINDOW_SLOTS reads as the whole window. */
	static const int large[] = {11, 60, 3600, INT32_MAX};
	for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
		struct latency_stats s = read_at(w, AT(9), large[i]);
		assert_int_equal(s.count, 40);
		assert_true(fabs(s.requests_per_s - 4.0) < 1e-9);
	}
	free(w);
}

static void assert_same_stats(const struct latency_stats *a, const struct latency_stats *b,
                              const char *what)
{
	if (a->count != b->count || a->p50_us != b->p50_us || a->p95_us != b->p95_us ||
	    a->p99_us != b->p99_us || fabs(a->requests_per_s - b->requests_per_s) > 1e-9 ||
	    fabs(a->error_rate - b->error_rate) > 1e-9)
		fail_msg("%s: merged {n %llu rps %g err %g p50 %lld p95 %lld p99 %lld} vs one "
		         "window {n %llu rps %g err %g p50 %lld p95 %lld p99 %lld}",
		         what, (unsigned long long)a->count, a->requests_per_s, a->error_rate,
		         (long long)a->p50_us, (long long)a->p95_us, (long long)a->p99_us,
		         (unsigned long long)b->count, b->requests_per_s, b->error_rate,
		         (long long)b->p50_us, (long long)b->p95_us, (long long)b->p99_us);
}

static void merge_adds_the_same_seconds(void **state)
{
	struct latency_window *a = window_new(), *b = window_new(), *sum = window_new();
	for (int i = 0; i < 30; i++)
		latency_window_record(a, AT(0), 200, 200);
	for (int i = 0; i < 10; i++)
		latency_window_record(b, AT(0), 90000, 500);
	latency_window_record(b, AT(1), 200, 200);
	latency_window_merge(sum, a);
	latency_window_merge(sum, b);
	struct latency_stats s = read_at(sum, AT(1), 10);
	assert_int_equal(s.count, 41);
	assert_true(fabs(s.error_rate - 10.0 / 41.0) < 1e-9);
	assert_upper_bound(s.p50_us, 200, "p50");
	assert_upper_bound(s.p95_us, 90000, "p95");
	assert_int_equal(read_at(sum, AT(1), 1).count, 1);
	/* The sources are left as they were. */
	assert_int_equal(read_at(a, AT(1), 10).count, 30);
	assert_int_equal(read_at(b, AT(1), 10).count, 11);
	free(a);
	free(b);
	free(sum);
}

static void merge_keeps_the_newer_second_of_a_slot(void **state)
{
	/* a last wrote slot 0 at T0; b wrote the same slot at T0+10. */
	struct latency_window *a = window_new(), *b = window_new();
	for (int i = 0; i < 7; i++)
		latency_window_record(a, AT(0), 5000000, 503);
	for (int i = 0; i < 2; i++)
		latency_window_record(b, AT(10), 100, 200);
	static const int orders[2][2] = {{0, 1}, {1, 0}};
	for (int o = 0; o < 2; o++) {
		struct latency_window *dst = window_new();
		struct latency_window *src[2] = {a, b};
		latency_window_merge(dst, src[orders[o][0]]);
		latency_window_merge(dst, src[orders[o][1]]);
		struct latency_stats s = read_at(dst, AT(10), 10);
		assert_int_equal(s.count, 2);
		assert_true(s.error_rate == 0.0);
		assert_upper_bound(s.p99_us, 100, "p99 after merging a stale slot");
		free(dst);
	}
	/* An empty window merges as nothing. */
	struct latency_window *dst = window_new(), *empty = window_new();
	latency_window_merge(dst, b);
	latency_window_merge(dst, empty);
	assert_int_equal(read_at(dst, AT(10), 10).count, 2);
	free(dst);
	free(empty);
	free(a);
	free(b);
}

/*
 * Per-thread windows merged must read exactly like one window that saw every request:
 * a random time-ordered stream over 40 s, each request recorded by one of 3 "loops".
 */
static void merged_windows_read_like_one(void **state)
{
	srand(11);
	for (int round = 0; round < 30; round++) {
		struct latency_window *loop[3], *one = window_new(), *merged = window_new();
		for (int k = 0; k < 3; k++)
			loop[k] = window_new();
		int64_t now = AT(0);
		int n = rand() % 2000;
		for (int i = 0; i < n; i++) {
			now += rand() % 40000; /* 0..40 ms apart: 2000 requests span up to ~40 s */
			int64_t d =
			    rand() % 100 == 0 ? 13000000 + rand() % 30000000 : 10 + rand() % 300000;
			int status = rand() % 10 == 0 ? 500 + rand() % 4 : 200 + rand() % 300;
			latency_window_record(loop[rand() % 3], now, d, status);
			latency_window_record(one, now, d, status);
		}
		for (int k = 0; k < 3; k++)
			latency_window_merge(merged, loop[k]);
		for (int seconds = 1; seconds <= LATENCY_WINDOW_SLOTS; seconds++) {
			for (int64_t later = 0; later <= 3 * SEC_US; later += SEC_US) {
				struct latency_stats a = read_at(merged, now + later, seconds);
				struct latency_stats b = read_at(one, now + later, seconds);
				assert_same_stats(&a, &b, "merged vs one window");
			}
		}
		for (int k = 0; k < 3; k++)
			free(loop[k]);
		free(one);
		free(merged);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_window_reads_zero),
	    cmocka_unit_test(requests_per_second_over_the_window),
	    cmocka_unit_test(second_boundaries_are_exact),
	    cmocka_unit_test(error_rate_counts_only_5xx),
	    cmocka_unit_test(error_rate_spans_the_window_seconds),
	    cmocka_unit_test(single_value_percentiles_are_tight_upper_bounds),
	    cmocka_unit_test(uniform_distribution_percentiles),
	    cmocka_unit_test(bimodal_distribution_percentiles_follow_the_ranks),
	    cmocka_unit_test(random_distributions_across_seconds),
	    cmocka_unit_test(very_slow_requests_are_not_reported_faster),
	    cmocka_unit_test(zero_and_negative_durations_are_fastest),
	    cmocka_unit_test(slot_is_reused_after_ten_seconds),
	    cmocka_unit_test(full_ring_of_ten_seconds_then_wraps),
	    cmocka_unit_test(old_seconds_are_excluded),
	    cmocka_unit_test(seconds_argument_is_clamped),
	    cmocka_unit_test(merge_adds_the_same_seconds),
	    cmocka_unit_test(merge_keeps_the_newer_second_of_a_slot),
	    cmocka_unit_test(merged_windows_read_like_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
