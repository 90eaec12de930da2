/* latency_window.c: per-second slots of log-bucketed latencies. */
#include "core/latency_window.h"

#include <string.h>

/* Upper bound of bucket i: 10 µs * 1.25^i (computed in double, truncated), so p-values
 * read at most 25% above the truth; 64 buckets reach ~13 s and the top one also takes
 * anything larger. A table, because this runs on every request. */
static const int64_t bounds_us[LATENCY_WINDOW_BUCKETS] = {
    10,      12,      15,       19,       24,      30,      38,      47,      59,      74,
    93,      116,     145,      181,      227,     284,     355,     444,     555,     693,
    867,     1084,    1355,     1694,     2117,    2646,    3308,    4135,    5169,    6462,
    8077,    10097,   12621,    15777,    19721,   24651,   30814,   38518,   48148,   60185,
    75231,   94039,   117549,   146936,   183670,  229588,  286985,  358732,  448415,  560519,
    700649,  875811,  1094764,  1368455,  1710569, 2138211, 2672764, 3340955, 4176194, 5220243,
    6525304, 8156630, 10195788, 12744735,
};

static int64_t bucket_bound_us(int i)
{
	return bounds_us[i];
}

/* The first bucket whose bound holds us; the last one takes anything larger. */
static int bucket_of(int64_t us)
{
	int lo = 0, hi = LATENCY_WINDOW_BUCKETS - 1;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (us <= bounds_us[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void latency_window_record(struct latency_window *w, int64_t now_us, int64_t duration_us,
                           int status)
{
	int64_t sec = now_us / 1000000;
	int s = (int)(sec % LATENCY_WINDOW_SLOTS);
	if (w->slot_sec[s] != sec) { /* a new second reuses the oldest slot */
		w->slot_sec[s] = sec;
		w->count[s] = 0;
		w->errors[s] = 0;
		w->max_us[s] = 0;
		memset(w->hist[s], 0, sizeof w->hist[s]);
	}
	w->count[s]++;
	if (duration_us > w->max_us[s])
		w->max_us[s] = duration_us;
	if (status >= 500)
		w->errors[s]++;
	w->hist[s][bucket_of(duration_us)]++;
}

static int64_t percentile(const uint64_t *hist, uint64_t count, int64_t max_us, double q)
{
	if (count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)count + 0.999999);
	if (rank == 0)
		rank = 1;
	uint64_t cum = 0;
	for (int i = 0; i < LATENCY_WINDOW_BUCKETS; i++) {
		cum += hist[i];
		if (cum >= rank)
			return i == LATENCY_WINDOW_BUCKETS - 1 ? max_us : bucket_bound_us(i);
	}
	return max_us;
}

void latency_window_read(const struct latency_window *w, int64_t now_us, int seconds,
                         struct latency_stats *out)
{
	if (seconds < 1)
		seconds = 1;
	if (seconds > LATENCY_WINDOW_SLOTS)
		seconds = LATENCY_WINDOW_SLOTS;
	int64_t now_sec = now_us / 1000000;
	uint64_t hist[LATENCY_WINDOW_BUCKETS] = {0};
	uint64_t count = 0, errors = 0;
	int64_t max_us = 0;
	for (int s = 0; s < LATENCY_WINDOW_SLOTS; s++) {
		int64_t age = now_sec - w->slot_sec[s];
		if (w->slot_sec[s] == 0 || age < 0 || age >= seconds)
			continue;
		count += w->count[s];
		errors += w->errors[s];
		if (w->max_us[s] > max_us)
			max_us = w->max_us[s];
		for (int i = 0; i < LATENCY_WINDOW_BUCKETS; i++)
			hist[i] += w->hist[s][i];
	}
	memset(out, 0, sizeof *out);
	out->count = count;
	out->requests_per_s = (double)count / seconds;
	out->error_rate = count > 0 ? (double)errors / (double)count : 0.0;
	out->p50_us = percentile(hist, count, max_us, 0.50);
	out->p95_us = percentile(hist, count, max_us, 0.95);
	out->p99_us = percentile(hist, count, max_us, 0.99);
}

void latency_window_merge(struct latency_window *dst, const struct latency_window *src)
{
	for (int s = 0; s < LATENCY_WINDOW_SLOTS; s++) {
		if (src->slot_sec[s] == 0 || src->slot_sec[s] < dst->slot_sec[s])
			continue; /* nothing there, or older than what dst holds */
		if (src->slot_sec[s] > dst->slot_sec[s]) {
			dst->slot_sec[s] = src->slot_sec[s];
			dst->count[s] = dst->errors[s] = 0;
			dst->max_us[s] = 0;
			memset(dst->hist[s], 0, sizeof dst->hist[s]);
		}
		dst->count[s] += src->count[s];
		dst->errors[s] += src->errors[s];
		if (src->max_us[s] > dst->max_us[s])
			dst->max_us[s] = src->max_us[s];
		for (int i = 0; i < LATENCY_WINDOW_BUCKETS; i++)
			dst->hist[s][i] += src->hist[s][i];
	}
}
