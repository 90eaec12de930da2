/* worker_pool.c: bounded job queue served by a fixed set of threads. */
#include "daemon/worker_pool.h"

#include "core/logger.h"
#include "core/xmalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct job_slot {
	worker_job_fn fn;
	void *job;
};

struct worker_thread {
	struct worker_pool *pool;
	pthread_t tid;
	int index;
	void *ctx;
};

struct worker_pool {
	const char *name;
	pthread_mutex_t mu;
	pthread_cond_t has_job;
	pthread_cond_t started;
	struct job_slot *ring;
	int cap, head, count;
	bool stopping;
	int ready, failed;
	int busy;
	unsigned long long rejected;
	worker_init_fn init;
	worker_fini_fn fini;
	void *arg;
	int nthreads;
	struct worker_thread *threads;
};

static void *worker_main(void *arg)
{
	struct worker_thread *t = arg;
	struct worker_pool *p = t->pool;
	char name[16]; /* shown by top -H and ps: api-3, kdf-0 */
	snprintf(name, sizeof name, "%.10s-%d", p->name, t->index);
	pthread_setname_np(pthread_self(), name);
	t->ctx = p->init(p->arg, t->index);
	pthread_mutex_lock(&p->mu);
	if (t->ctx == NULL)
		p->failed++;
	p->ready++;
	pthread_cond_broadcast(&p->started);
	pthread_mutex_unlock(&p->mu);
	if (t->ctx == NULL)
		return NULL;

	bool ran = false;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (ran) /* the previous job is done: one lock per job, not two */
			p->busy--;
		ran = false;
		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->has_job, &p->mu);
		if (p->count == 0) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		struct job_slot s = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		p->busy++;
		pthread_mutex_unlock(&p->mu);
		s.fn(s.job, t->ctx);
		ran = true;
	}
	p->fini(t->ctx);
	return NULL;
}

struct worker_pool *worker_pool_new(const char *name, int threads, int queue_max,
                                    worker_init_fn init, worker_fini_fn fini, void *arg)
{
	struct worker_pool *p = xcalloc(1, sizeof *p);
	p->name = name;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->has_job, NULL);
	pthread_cond_init(&p->started, NULL);
	p->cap = queue_max;
	p->ring = xcalloc((size_t)queue_max, sizeof *p->ring);
	p->init = init;
	p->fini = fini;
	p->arg = arg;
	p->threads = xcalloc((size_t)threads, sizeof *p->threads);
	for (int i = 0; i < threads; i++) {
		p->threads[i] = (struct worker_thread){.pool = p, .index = i};
		if (pthread_create(&p->threads[i].tid, NULL, worker_main, &p->threads[i]) != 0) {
			log_error("thread_create_failed", "could not start %s worker %d", name, i);
			break;
		}
		p->nthreads++;
	}
	pthread_mutex_lock(&p->mu);
	while (p->ready < p->nthreads)
		pthread_cond_wait(&p->started, &p->mu);
	bool ok = p->failed == 0 && p->nthreads == threads;
	pthread_mutex_unlock(&p->mu);
	if (!ok) {
		worker_pool_free(p);
		return NULL;
	}
	return p;
}

bool worker_pool_submit(struct worker_pool *p, worker_job_fn fn, void *job)
{
	pthread_mutex_lock(&p->mu);
	bool ok = !p->stopping && p->count < p->cap;
	if (ok) {
		p->ring[(p->head + p->count) % p->cap] = (struct job_slot){fn, job};
		p->count++;
		pthread_cond_signal(&p->has_job);
	} else {
		p->rejected++;
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void worker_pool_stats(struct worker_pool *p, struct worker_pool_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = (struct worker_pool_stats){p->nthreads, p->count, p->busy, p->rejected};
	pthread_mutex_unlock(&p->mu);
}

const char *worker_pool_name(const struct worker_pool *p)
{
	return p->name;
}

void worker_pool_free(struct worker_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->has_job);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i].tid, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->has_job);
	pthread_cond_destroy(&p->started);
	free(p->threads);
	free(p->ring);
	free(p);
}
