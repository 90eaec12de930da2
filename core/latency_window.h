/*
 * latency_window: a rolling window of request latencies for one route, in one-second
 * slots, from which requests/s, error rate and p50/p95/p99 are read in one call.
 * Not synchronised: one writer per window; readers take the writer's lock or merge.
 */
#ifndef HEX_LATENCY_WINDOW_H
#define HEX_LATENCY_WINDOW_H

#include <stdint.h>

#define LATENCY_WINDOW_SLOTS   10 /* seconds kept */
#define LATENCY_WINDOW_BUCKETS 64 /* log-spaced from 10 µs to ~13 s */

struct latency_window {
	int64_t slot_sec[LATENCY_WINDOW_SLOTS];
	uint32_t count[LATENCY_WINDOW_SLOTS];
	uint32_t errors[LATENCY_WINDOW_SLOTS];
	int64_t max_us[LATENCY_WINDOW_SLOTS]; /* the top bucket reports this */
	uint32_t hist[LATENCY_WINDOW_SLOTS][LATENCY_WINDOW_BUCKETS];
};

struct latency_stats {
	double requests_per_s;
	double error_rate; /* share of replies with status >= 500, 0..1 */
	uint64_t count;
	/* Upper bound of the bucket: never below the true value, at most 25% above it;
	 * past the last bucket (~13 s) the slowest request seen. */
	int64_t p50_us, p95_us, p99_us;
};

void latency_window_record(struct latency_window *w, int64_t now_us, int64_t duration_us,
                           int status);
/* Adds src into dst second by second (for windows kept per thread). */
void latency_window_merge(struct latency_window *dst, const struct latency_window *src);
/* Stats of the last `seconds` complete and current seconds (1..LATENCY_WINDOW_SLOTS). */
void latency_window_read(const struct latency_window *w, int64_t now_us, int seconds,
                         struct latency_stats *out);

#endif
