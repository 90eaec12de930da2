/*
 * worker_pool: a fixed set of threads with a bounded queue. Each thread owns a context
 * (its connections and services) made by init in that thread. A full queue refuses new
 * jobs at once, so callers can answer 503 instead of piling up.
 */
#ifndef HEX_WORKER_POOL_H
#define HEX_WORKER_POOL_H

#include <stdbool.h>

struct worker_pool;

typedef void *(*worker_init_fn)(void *arg, int index); /* NULL = failed */
typedef void (*worker_fini_fn)(void *ctx);
typedef void (*worker_job_fn)(void *job, void *ctx);

/* Starts the threads and waits until each ran init; NULL if any init failed. */
struct worker_pool *worker_pool_new(const char *name, int threads, int queue_max,
                                    worker_init_fn init, worker_fini_fn fini, void *arg);
/* False if the queue is full or the pool is stopping; the job was not taken then. */
bool worker_pool_submit(struct worker_pool *p, worker_job_fn fn, void *job);
struct worker_pool_stats {
	int threads;
	int queued;
	int busy;                    /* threads running a job now */
	unsigned long long rejected; /* submits refused since start (queue full) */
};
void worker_pool_stats(struct worker_pool *p, struct worker_pool_stats *out);
const char *worker_pool_name(const struct worker_pool *p);
/* Runs what is queued, stops the threads, runs fini in each, frees. NULL ok. */
void worker_pool_free(struct worker_pool *p);

#endif
