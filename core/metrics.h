/*
 * metrics: counters and latency histograms, updated lock-free from any thread, and a
 * writer for the Prometheus text format (version 0.0.4). Adapters and the daemon add
 * collectors that write their own series when /metrics is scraped.
 */
#ifndef HEX_METRICS_H
#define HEX_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bounds from 100 µs to 10 s: resolves sub-millisecond requests. */
#define METRICS_BUCKETS 16
extern const int64_t metrics_bucket_bounds_us[METRICS_BUCKETS];

struct metrics_histogram {
	_Atomic uint64_t buckets[METRICS_BUCKETS]; /* non-cumulative; +Inf is count */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

void metrics_histogram_observe(struct metrics_histogram *h, int64_t us);

/* Process-wide series observed by the adapters. */
extern struct metrics_histogram metrics_db_query;      /* one prepared statement */
extern struct metrics_histogram metrics_redis_command; /* one command or pipeline */

/* A growable text buffer for one scrape. */
struct metrics_writer {
	char *buf;
	size_t len, cap;
};

void metrics_writer_init(struct metrics_writer *w);
void metrics_writer_free(struct metrics_writer *w);
/* labels: already formatted `a="b",c="d"` (escaped by the caller) or NULL. */
void metrics_write_help(struct metrics_writer *w, const char *name, const char *type,
                        const char *help);
void metrics_write_value(struct metrics_writer *w, const char *name, const char *labels, double v);
void metrics_write_histogram(struct metrics_writer *w, const char *name, const char *labels,
                             const struct metrics_histogram *h);
void metrics_printf(struct metrics_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef void (*metrics_collect_fn)(struct metrics_writer *w, void *arg);

/* Registers a collector; call during start-up, before serving. */
void metrics_add_collector(metrics_collect_fn fn, void *arg);
/* Writes the core series and every collector's into w. */
void metrics_collect(struct metrics_writer *w);

#endif
