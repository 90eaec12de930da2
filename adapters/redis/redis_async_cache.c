/* redis_async_cache.c: pipelined, non-blocking user-cache reads on an event loop. */
#include "adapters/redis/redis_async_cache.h"

#include "adapters/redis/redis_url.h"
#include "adapters/redis/redis_user_cache.h"
#include "core/logger.h"
#include "core/metrics.h"
#include "core/xmalloc.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <hiredis/adapters/libevent.h>
#pragma GCC diagnostic pop

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INFLIGHT_MAX   4096 /* lookups outstanding on the connection at once */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct lookup {
	struct redis_async_cache *cache;
	user_cache_async_fn done;
	void *arg;
	char id[HEX_ID_LEN + 1];
};

struct redis_async_cache {
	struct event_base *base;
	struct redis_url url;
	int64_t timeout_us;
	redisAsyncContext *ac;
	int64_t retry_at_us;
	int backoff_ms;
	/* Send times of outstanding lookups, oldest first: Redis answers in order. */
	int64_t sent_us[INFLIGHT_MAX];
	int head, inflight;
	struct event *watchdog;
	int64_t last_log_s;
};

static int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_async_cache *c = ac->data;
	if (c == NULL)
		return;
	c->ac = NULL;
	c->head = c->inflight = 0;
	if (status != REDIS_OK) {
		c->retry_at_us = monotonic_us() + (int64_t)c->backoff_ms * 1000;
		c->backoff_ms =
		    c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
		if (logger_every(&c->last_log_s, 10))
			log_warn("redis_async_down", "async cache connection lost: %s",
			         ac->errstr[0] != '\0' ? ac->errstr : "closed");
	}
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_async_cache *c = ac->data;
	if (c == NULL)
		return;
	if (status == REDIS_OK)
		c->backoff_ms = BACKOFF_MIN_MS;
	else /* hiredis frees a context that never connected without a disconnect callback */
		on_disconnect(ac, REDIS_ERR);
}

/* Drops the connection: hiredis answers every pending lookup with a NULL reply. */
static void drop(struct redis_async_cache *c, const char *why)
{
	if (c->ac == NULL)
		return;
	if (logger_every(&c->last_log_s, 10))
		log_warn("redis_async_timeout", "async cache: %s; dropping the connection", why);
	redisAsyncContext *ac = c->ac;
	on_disconnect(ac, REDIS_ERR);
	ac->data = NULL; /* the disconnect callback must not touch c again */
	redisAsyncFree(ac);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct redis_async_cache *c = arg;
	if (c->inflight > 0 && monotonic_us() - c->sent_us[c->head] > c->timeout_us)
		drop(c, "a lookup timed out");
}

static bool connect_now(struct redis_async_cache *c)
{
	if (c->ac != NULL)
		return true;
	if (monotonic_us() < c->retry_at_us)
		return false;
	redisAsyncContext *ac = redisAsyncConnect(c->url.host, c->url.port);
	if (ac == NULL || ac->err) {
		if (ac != NULL)
			redisAsyncFree(ac);
		c->retry_at_us = monotonic_us() + (int64_t)c->backoff_ms * 1000;
		return false;
	}
	ac->data = c;
	redisLibeventAttach(ac, c->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (c->url.has_password) {
		if (c->url.user[0] != '\0')
			redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", c->url.user,
			                  c->url.password);
		else
			redisAsyncCommand(ac, NULL, NULL, "AUTH %s", c->url.password);
	}
	if (c->url.db != 0)
		redisAsyncCommand(ac, NULL, NULL, "SELECT %d", c->url.db);
	c->ac = ac;
	return true;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct lookup *l = privdata;
	struct redis_async_cache *c = l->cache;
	redisReply *reply = r;
	enum hex_status st = HEX_UNAVAILABLE;
	struct user u;
	if (reply != NULL && ac->data != NULL) { /* NULL: the connection went away */
		metrics_histogram_observe(&metrics_redis_command,
		                          monotonic_us() - c->sent_us[c->head]);
		c->head = (c->head + 1) % INFLIGHT_MAX;
		c->inflight--;
		if (reply->type == REDIS_REPLY_STRING &&
		    redis_user_cache_decode(reply->str, (size_t)reply->len, l->id, &u))
			st = HEX_OK;
		else if (reply->type == REDIS_REPLY_NIL)
			st = HEX_NOT_FOUND;
		/* A corrupt value is left for the synchronous path, which deletes it. */
	}
	redis_user_cache_count(st == HEX_OK          ? REDIS_CACHE_HIT
	                       : st == HEX_NOT_FOUND ? REDIS_CACHE_MISS
	                                             : REDIS_CACHE_ERROR);
	l->done(l->arg, st, st == HEX_OK ? &u : NULL);
	free(l);
}

static bool async_get(void *self, const char *id, user_cache_async_fn done, void *arg)
{
	struct redis_async_cache *c = self;
	char key[64];
	if (redis_user_cache_has_pending() || c->inflight == INFLIGHT_MAX ||
	    !redis_user_cache_key(id, key, sizeof key) || !connect_now(c))
		return false;
	struct lookup *l = xmalloc(sizeof *l);
	*l = (struct lookup){.cache = c, .done = done, .arg = arg};
	hex_strlcpy(l->id, id, sizeof l->id);
	if (redisAsyncCommand(c->ac, on_reply, l, "GET %s", key) != REDIS_OK) {
		free(l);
		return false;
	}
	c->sent_us[(c->head + c->inflight) % INFLIGHT_MAX] = monotonic_us();
	c->inflight++;
	return true;
}

static const struct user_cache_async_ops async_ops = {.get = async_get};

struct redis_async_cache *redis_async_cache_new(struct event_base *base, const char *url,
                                                int timeout_ms, struct hex_err *err)
{
	struct redis_async_cache *c = xcalloc(1, sizeof *c);
	if (redis_url_parse(url, &c->url, err) != HEX_OK) {
		free(c);
		return NULL;
	}
	c->base = base;
	c->timeout_us = (int64_t)timeout_ms * 1000;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, c);
	int tick_ms = timeout_ms / 4 > 1 ? timeout_ms / 4 : 1;
	struct timeval tick = {tick_ms / 1000, (tick_ms % 1000) * 1000};
	event_add(c->watchdog, &tick);
	return c;
}

void redis_async_cache_free(struct redis_async_cache *c)
{
	if (c == NULL)
		return;
	if (c->ac != NULL) {
		redisAsyncContext *ac = c->ac;
		ac->data = NULL;
		c->ac = NULL;
		redisAsyncFree(ac);
	}
	event_free(c->watchdog);
	explicit_bzero(&c->url, sizeof c->url);
	free(c);
}

struct user_cache_async redis_async_cache_port(struct redis_async_cache *c)
{
	return (struct user_cache_async){&async_ops, c};
}
