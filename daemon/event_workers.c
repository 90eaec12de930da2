/* event_workers.c: the relay and consumer threads of the worker role, and their metrics. */
#include "daemon/event_workers.h"

#include "adapters/crypto/random_ids.h"
#include "adapters/crypto/system_clock.h"
#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_dead_letter_repo.h"
#include "adapters/postgres/pg_event_inbox.h"
#include "adapters/postgres/pg_ledger_repo.h"
#include "adapters/postgres/pg_outbox_repo.h"
#include "adapters/postgres/pg_payment_repo.h"
#include "adapters/redis/redis_conn.h"
#include "adapters/redis/redis_event_stream.h"
#include "adapters/redis/redis_user_cache.h"
#include "adapters/stripe/stripe_event.h"
#include "core/event_relay.h"
#include "core/logger.h"
#include "core/metrics.h"
#include "core/payment_consumers.h"
#include "core/xmalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONSUMERS_MAX 8
#define BLOCK_MS      1000 /* a consumer notices a stop within this */
#define BATCH         32
#define SAMPLE_MS     1000 /* lag is measured this often */
#define BACKOFF_MIN   100
#define BACKOFF_MAX   5000

struct event_thread {
	struct event_workers *owner;
	pthread_t tid;
	bool started;
	const struct payment_consumer_def *def; /* NULL: the relay */
	struct pg_conn *pg;
	struct redis_conn *redis;
	struct redis_user_cache cache;
	struct payment_consumers handlers;
	struct event_consumer consumer;
	struct event_relay relay;
	char member[128];
	struct event_consumer_stats stats;
	/* Sampled by the relay thread for every consumer, read by /metrics. */
	atomic_long pending, lag, oldest_age_ms;
};

struct event_workers {
	struct app *app;
	atomic_bool stop;
	int n; /* threads[0] is the relay */
	struct event_thread threads[1 + CONSUMERS_MAX];
	struct dead_letter_repo dead;
	atomic_long unpublished, oldest_age_us, dead_open;
};

static void sleep_ms(struct event_workers *w, int ms)
{
	while (ms > 0 && !atomic_load(&w->stop)) {
		int step = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Outbox, stream and dead-letter numbers for /metrics; failures leave the last ones. */
static void sample_lag(struct event_workers *w, struct event_thread *relay)
{
	struct outbox_lag ol;
	int64_t now = system_clock_port().ops->now_us(NULL);
	if (relay->relay.outbox.ops->lag(relay->relay.outbox.self, now, &ol) == HEX_OK) {
		atomic_store(&w->unpublished, ol.unpublished);
		atomic_store(&w->oldest_age_us, (long)ol.oldest_age_us);
	}
	long open = 0;
	if (w->dead.ops->count_open(w->dead.self, &open) == HEX_OK)
		atomic_store(&w->dead_open, open);
	for (int i = 1; i < w->n; i++) {
		struct event_group_stats gs;
		if (relay->relay.stream.ops->stats(relay->relay.stream.self, EVENT_TOPIC_PAYMENTS,
		                                   w->threads[i].def->name, &gs) == HEX_OK) {
			atomic_store(&w->threads[i].pending, gs.pending);
			atomic_store(&w->threads[i].lag, gs.lag);
			long age = gs.oldest_ms > 0 ? (long)(now / 1000 - gs.oldest_ms) : 0;
			atomic_store(&w->threads[i].oldest_age_ms, age > 0 ? age : 0);
		}
	}
}

static void *relay_main(void *arg)
{
	struct event_thread *t = arg;
	struct event_workers *w = t->owner;
	int poll_ms = (int)config_int(&w->app->cfg, CFG_EVENT_POLL_MS);
	int backoff = BACKOFF_MIN;
	int64_t next_sample = 0;
	while (!atomic_load(&w->stop)) {
		if (mono_ms() >= next_sample) {
			sample_lag(w, t);
			next_sample = mono_ms() + SAMPLE_MS;
		}
		int published = 0;
		struct hex_err err = {0};
		if (event_relay_run_once(&t->relay, &published, &err) != HEX_OK) {
			if (backoff == BACKOFF_MIN)
				log_warn("relay_stalled",
				         "outbox relay: %s; events wait in the outbox",
				         err.message);
			sleep_ms(w, backoff);
			backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
			continue;
		}
		if (backoff != BACKOFF_MIN)
			log_info("relay_resumed", "outbox relay: publishing again");
		backoff = BACKOFF_MIN;
		if (published < t->relay.batch)
			sleep_ms(w, poll_ms);
	}
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct event_thread *t = arg;
	struct event_workers *w = t->owner;
	int backoff = BACKOFF_MIN;
	bool joined = false;
	while (!atomic_load(&w->stop)) {
		enum hex_status st = HEX_OK;
		if (!joined)
			st = t->consumer.stream.ops->join(t->consumer.stream.self,
			                                  t->consumer.topic, t->consumer.name);
		joined = st == HEX_OK;
		int handled = 0;
		if (joined)
			st = event_consumer_poll(&t->consumer, &handled);
		if (st == HEX_OK) {
			backoff = BACKOFF_MIN;
			continue;
		}
		if (backoff == BACKOFF_MIN)
			log_warn("consumer_stalled", "%s: %s; its events wait", t->consumer.name,
			         hex_status_name(st));
		sleep_ms(w, backoff);
		backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
	}
	return NULL;
}

/* Each thread's own connections: libpq and hiredis sessions are not shared. */
static bool thread_open(struct event_workers *w, struct event_thread *t)
{
	struct app *app = w->app;
	t->pg = app_db_open(app);
	if (t->pg == NULL)
		return false;
	struct hex_err err = {0};
	/* Longer than a blocking read, so that waiting for entries is not a timeout. */
	int timeout = (int)config_int(&app->cfg, CFG_REDIS_TIMEOUT_MS) + BLOCK_MS + 1000;
	t->redis = redis_conn_new(config_str(&app->cfg, CFG_REDIS_URL), timeout, &err);
	if (t->redis == NULL) {
		log_error("event_worker_redis", "HEX_REDIS_URL: %s", err.message);
		return false;
	}
	return true;
}

static void relay_init(struct event_workers *w, struct event_thread *t)
{
	t->relay = (struct event_relay){
	    .outbox = pg_outbox_repo_port(t->pg),
	    .stream = redis_event_stream_port(t->redis),
	    .clock = system_clock_port(),
	    .batch = BATCH,
	};
	w->dead = pg_dead_letter_repo_port(t->pg);
}

static void consumer_init(struct event_workers *w, struct event_thread *t, int index)
{
	struct config *cfg = &w->app->cfg;
	char host[64] = "host";
	gethostname(host, sizeof host - 1);
	snprintf(t->member, sizeof t->member, "%s-%d-%s-%d", host, (int)getpid(), t->def->name,
	         index);
	t->cache = (struct redis_user_cache){t->redis, (int)config_int(cfg, CFG_CACHE_TTL)};
	t->handlers = (struct payment_consumers){
	    .ledger = {.repo = pg_ledger_repo_port(t->pg),
	               .clock = system_clock_port(),
	               .ids = random_ids_port()},
	    .payments = pg_payment_repo_port(t->pg),
	    .cache = redis_user_cache_port(&t->cache),
	    .decoder = stripe_event_decoder_port(),
	};
	uint64_t seed;
	crypto_random_bytes(&seed, sizeof seed);
	t->consumer = (struct event_consumer){
	    .name = t->def->name,
	    .topic = EVENT_TOPIC_PAYMENTS,
	    .member = t->member,
	    .inbox = pg_event_inbox_port(t->pg),
	    .stream = redis_event_stream_port(t->redis),
	    .clock = system_clock_port(),
	    .retry = {.max_attempts = (int)config_int(cfg, CFG_EVENT_MAX_ATTEMPTS),
	              .base_ms = (int)config_int(cfg, CFG_EVENT_RETRY_BASE_MS),
	              .max_ms = (int)config_int(cfg, CFG_EVENT_RETRY_MAX_MS)},
	    .claim_idle_ms = config_int(cfg, CFG_EVENT_CLAIM_IDLE_MS),
	    .batch = BATCH,
	    .block_ms = BLOCK_MS,
	    .handle = t->def->handle,
	    .handler_ctx = &t->handlers,
	    .seed = seed,
	    .stats = &t->stats,
	};
}

static struct event_workers *registered; /* the process's one set, for /metrics */

static void collect_events(struct metrics_writer *mw, void *arg)
{
	struct event_workers *w = registered;
	if (w == NULL)
		return;
	metrics_write_help(mw, "hex_events_outbox_unpublished", "gauge",
	                   "outbox rows not yet on the event stream");
	metrics_write_value(mw, "hex_events_outbox_unpublished", NULL,
	                    (double)atomic_load(&w->unpublished));
	metrics_write_help(mw, "hex_events_oldest_unpublished_seconds", "gauge",
	                   "age of the oldest due outbox row not yet on the stream");
	metrics_write_value(mw, "hex_events_oldest_unpublished_seconds", NULL,
	                    (double)atomic_load(&w->oldest_age_us) / 1e6);
	metrics_write_help(mw, "hex_dead_letters_open", "gauge",
	                   "dead-lettered events waiting for an operator");
	metrics_write_value(mw, "hex_dead_letters_open", NULL, (double)atomic_load(&w->dead_open));
	static const struct {
		const char *name, *type, *help;
	} series[] = {
	    {"hex_events_pending", "gauge",
	     "events delivered to a consumer and not yet acknowledged"},
	    {"hex_events_lag", "gauge", "events on the stream not yet delivered to the consumer"},
	    {"hex_events_oldest_unacked_seconds", "gauge",
	     "age of the oldest event on the stream the consumer has not finished"},
	};
	for (size_t k = 0; k < sizeof series / sizeof series[0]; k++) {
		metrics_write_help(mw, series[k].name, series[k].type, series[k].help);
		for (int i = 1; i < w->n; i++) {
			char labels[64];
			snprintf(labels, sizeof labels, "consumer=\"%s\"", w->threads[i].def->name);
			atomic_long *v = k == 0   ? &w->threads[i].pending
			                 : k == 1 ? &w->threads[i].lag
			                          : &w->threads[i].oldest_age_ms;
			metrics_write_value(mw, series[k].name, labels,
			                    (double)atomic_load(v) / (k == 2 ? 1e3 : 1));
		}
	}
	static const struct {
		const char *result;
		size_t offset;
	} results[] = {
	    {"applied", offsetof(struct event_consumer_stats, applied)},
	    {"duplicate", offsetof(struct event_consumer_stats, duplicates)},
	    {"retried", offsetof(struct event_consumer_stats, retried)},
	    {"dead", offsetof(struct event_consumer_stats, dead)},
	    {"stalled", offsetof(struct event_consumer_stats, stalled)},
	};
	metrics_write_help(mw, "hex_events_total", "counter",
	                   "events run by this process's consumers, by outcome");
	for (int i = 1; i < w->n; i++)
		for (size_t k = 0; k < sizeof results / sizeof results[0]; k++) {
			char labels[96];
			snprintf(labels, sizeof labels, "consumer=\"%s\",result=\"%s\"",
			         w->threads[i].def->name, results[k].result);
			atomic_long *v =
			    (atomic_long *)((char *)&w->threads[i].stats + results[k].offset);
			metrics_write_value(mw, "hex_events_total", labels, (double)atomic_load(v));
		}
}

struct event_workers *event_workers_start(struct app *app)
{
	if (config_str(&app->cfg, CFG_REDIS_URL)[0] == '\0') {
		log_warn("event_workers_off", "no HEX_REDIS_URL: payment events wait in the outbox "
		                              "until a worker with Redis runs");
		return NULL;
	}
	struct event_workers *w = xcalloc(1, sizeof *w);
	w->app = app;
	w->n =
	    1 + (payment_consumer_count < CONSUMERS_MAX ? payment_consumer_count : CONSUMERS_MAX);
	for (int i = 0; i < w->n; i++) {
		struct event_thread *t = &w->threads[i];
		t->owner = w;
		t->def = i == 0 ? NULL : &payment_consumer_defs[i - 1];
		if (!thread_open(w, t))
			goto fail;
		if (i == 0)
			relay_init(w, t);
		else
			consumer_init(w, t, i);
	}
	for (int i = 0; i < w->n; i++) {
		struct event_thread *t = &w->threads[i];
		if (pthread_create(&t->tid, NULL, i == 0 ? relay_main : consumer_main, t) != 0) {
			log_error("event_worker_start", "could not start an event worker thread");
			goto fail;
		}
		t->started = true;
		char name[16]; /* what top and perf show */
		snprintf(name, sizeof name, "hex-%s", i == 0 ? "relay" : t->def->name);
		pthread_setname_np(t->tid, name);
	}
	registered = w;
	static bool collector_added;
	if (!collector_added)
		metrics_add_collector(collect_events, NULL);
	collector_added = true;
	log_info("event_workers", "outbox relay and %d consumers running", w->n - 1);
	return w;
fail:
	event_workers_stop(w);
	return NULL;
}

void event_workers_stop(struct event_workers *w)
{
	if (w == NULL)
		return;
	atomic_store(&w->stop, true);
	for (int i = 0; i < w->n; i++)
		if (w->threads[i].started)
			pthread_join(w->threads[i].tid, NULL);
	if (registered == w)
		registered = NULL;
	for (int i = 0; i < w->n; i++) {
		pg_conn_free(w->threads[i].pg);
		redis_conn_free(w->threads[i].redis);
	}
	free(w);
}
