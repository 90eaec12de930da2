/* redis_conn.c: a lazily connected hiredis connection with failure backoff. */
#include "adapters/redis/redis_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/redis/redis_url.h"
#include "core/logger.h"
#include "core/metrics.h"
#include "core/xmalloc.h"

#define LOG_INTERVAL_S 10
#define SAFE_URL_MAX   (REDIS_URL_HOST_MAX + REDIS_URL_USER_MAX + 64)

struct redis_conn {
	struct redis_url url; /* holds the password: wiped on free */
	char safe_url[SAFE_URL_MAX];
	struct timeval timeout;
	redisContext *ctx;   /* NULL while disconnected */
	int64_t retry_at_us; /* monotonic; no connect attempt before it */
	int backoff_ms;      /* the wait applied after the next failure */
	bool was_down;       /* a failure happened since the last good reply */
};

static _Atomic uint64_t stat_failures;
static _Atomic uint64_t stat_skipped;
static _Atomic uint64_t stat_error_replies;
/* Log time stamps shared by every connection: one line per interval per process. */
static int64_t last_failure_log_s;
static int64_t last_error_reply_log_s;
static int64_t last_recovery_log_s;

static int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* hiredis words a socket timeout as EAGAIN's text; say what it means. */
static const char *ctx_error(const redisContext *ctx)
{
	if (ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
		return "timed out";
	return ctx->errstr;
}

/* Drops the connection and schedules the next attempt; detail may point into c->ctx. */
static void conn_fail(struct redis_conn *c, const char *what, const char *detail)
{
	uint64_t n = atomic_fetch_add_explicit(&stat_failures, 1, memory_order_relaxed) + 1;
	if (logger_every(&last_failure_log_s, LOG_INTERVAL_S))
		log_warn("redis_down",
		         "redis %s %s failed: %s (retry in %d ms, %llu failures so far)",
		         c->safe_url, what, detail, c->backoff_ms, (unsigned long long)n);
	if (c->ctx != NULL)
		redisFree(c->ctx);
	c->ctx = NULL;
	c->was_down = true;
	c->retry_at_us = monotonic_us() + (int64_t)c->backoff_ms * 1000;
	c->backoff_ms *= 2;
	if (c->backoff_ms > REDIS_CONN_BACKOFF_MAX_MS)
		c->backoff_ms = REDIS_CONN_BACKOFF_MAX_MS;
}

static void conn_error_reply(struct redis_conn *c, const char *msg)
{
	uint64_t n = atomic_fetch_add_explicit(&stat_error_replies, 1, memory_order_relaxed) + 1;
	if (logger_every(&last_error_reply_log_s, LOG_INTERVAL_S))
		log_warn("redis_error_reply", "redis %s answered an error: %s (%llu so far)",
		         c->safe_url, msg, (unsigned long long)n);
}

/* Any reply proves the link works again. */
static void conn_good_reply(struct redis_conn *c)
{
	c->backoff_ms = REDIS_CONN_BACKOFF_MIN_MS;
	if (c->was_down && logger_every(&last_recovery_log_s, LOG_INTERVAL_S))
		log_info("redis_up", "redis %s answers again", c->safe_url);
	c->was_down = false;
}

/* One set-up command (AUTH, SELECT) that must answer +OK, else the connection fails. */
static bool conn_setup(struct redis_conn *c, const char *what, int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(c->ctx, argc, argv, NULL);
	if (r == NULL) {
		conn_fail(c, what, ctx_error(c->ctx));
		return false;
	}
	bool ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
	if (!ok) {
		char detail[128];
		hex_strlcpy(detail, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply",
		            sizeof detail);
		conn_fail(c, what, detail);
	}
	freeReplyObject(r);
	return ok;
}

static bool conn_open(struct redis_conn *c)
{
	c->ctx = redisConnectWithTimeout(c->url.host, c->url.port, c->timeout);
	if (c->ctx == NULL) {
		conn_fail(c, "connect", "out of memory");
		return false;
	}
	if (c->ctx->err != 0 || redisSetTimeout(c->ctx, c->timeout) != REDIS_OK) {
		conn_fail(c, "connect", ctx_error(c->ctx));
		return false;
	}
	if (c->url.has_password) {
		const char *auth_user[] = {"AUTH", c->url.user, c->url.password};
		const char *auth[] = {"AUTH", c->url.password};
		bool ok = c->url.user[0] != '\0' ? conn_setup(c, "AUTH", 3, auth_user)
		                                 : conn_setup(c, "AUTH", 2, auth);
		if (!ok)
			return false;
	}
	if (c->url.db != 0) {
		char db[16];
		snprintf(db, sizeof db, "%d", c->url.db);
		const char *select[] = {"SELECT", db};
		if (!conn_setup(c, "SELECT", 2, select))
			return false;
	}
	return true;
}

/* True with a live context; false at once while backing off. */
static bool conn_ready(struct redis_conn *c)
{
	if (c->ctx != NULL)
		return true;
	if (monotonic_us() < c->retry_at_us) {
		atomic_fetch_add_explicit(&stat_skipped, 1, memory_order_relaxed);
		return false;
	}
	return conn_open(c);
}

/* Takes ownership of r: returns it if it is a usable reply, else frees it and NULL. */
static redisReply *conn_finish(struct redis_conn *c, redisReply *r)
{
	if (r == NULL) {
		conn_fail(c, "command", ctx_error(c->ctx));
		return NULL;
	}
	conn_good_reply(c);
	if (r->type == REDIS_REPLY_ERROR) {
		conn_error_reply(c, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

struct redis_conn *redis_conn_new(const char *url, int timeout_ms, struct hex_err *err)
{
	if (timeout_ms <= 0) {
		hex_fail(err, HEX_INVALID, "redis_timeout_ms", "redis_timeout_ms must be > 0");
		return NULL;
	}
	struct redis_conn *c = xcalloc(1, sizeof *c);
	if (redis_url_parse(url, &c->url, err) != HEX_OK) {
		redis_conn_free(c);
		return NULL;
	}
	redis_url_format_safe(&c->url, c->safe_url, sizeof c->safe_url);
	c->timeout.tv_sec = timeout_ms / 1000;
	c->timeout.tv_usec = (timeout_ms % 1000) * 1000;
	c->backoff_ms = REDIS_CONN_BACKOFF_MIN_MS;
	return c;
}

void redis_conn_free(struct redis_conn *c)
{
	if (c == NULL)
		return;
	if (c->ctx != NULL)
		redisFree(c->ctx);
	explicit_bzero(&c->url, sizeof c->url);
	free(c);
}

redisReply *redis_conn_command(struct redis_conn *c, const char *fmt, ...)
{
	if (!conn_ready(c))
		return NULL;
	va_list ap;
	va_start(ap, fmt);
	int64_t start = monotonic_us();
	redisReply *r = redisvCommand(c->ctx, fmt, ap);
	metrics_histogram_observe(&metrics_redis_command, monotonic_us() - start);
	va_end(ap);
	return conn_finish(c, r);
}

redisReply *redis_conn_command_argv(struct redis_conn *c, int argc, const char **argv,
                                    const size_t *argvlen)
{
	if (!conn_ready(c))
		return NULL;
	int64_t start = monotonic_us();
	redisReply *r = redisCommandArgv(c->ctx, argc, argv, argvlen);
	metrics_histogram_observe(&metrics_redis_command, monotonic_us() - start);
	return conn_finish(c, r);
}

static void free_replies(redisReply **replies, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (replies[i] != NULL)
			freeReplyObject(replies[i]);
		replies[i] = NULL;
	}
}

enum hex_status redis_conn_pipeline(struct redis_conn *c, const struct redis_cmd *cmds, size_t n,
                                    redisReply **replies)
{
	enum hex_status st = HEX_UNAVAILABLE;
	for (size_t i = 0; i < n; i++)
		replies[i] = NULL;
	if (!conn_ready(c))
		goto out;
	int64_t start = monotonic_us();
	for (size_t i = 0; i < n; i++) {
		if (redisAppendCommandArgv(c->ctx, cmds[i].argc, cmds[i].argv, cmds[i].argvlen) !=
		    REDIS_OK) {
			conn_fail(c, "pipeline", ctx_error(c->ctx));
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		void *r = NULL;
		if (redisGetReply(c->ctx, &r) != REDIS_OK || r == NULL) {
			conn_fail(c, "pipeline", ctx_error(c->ctx));
			goto out;
		}
		replies[i] = r;
	}
	metrics_histogram_observe(&metrics_redis_command, monotonic_us() - start);
	conn_good_reply(c);
	for (size_t i = 0; i < n; i++) {
		if (replies[i]->type == REDIS_REPLY_ERROR) {
			conn_error_reply(c, replies[i]->str);
			goto out;
		}
	}
	st = HEX_OK;
out:
	if (st != HEX_OK)
		free_replies(replies, n);
	return st;
}

enum hex_status redis_conn_ping(struct redis_conn *c)
{
	redisReply *r = redis_conn_command(c, "PING");
	if (r == NULL)
		return HEX_UNAVAILABLE;
	freeReplyObject(r);
	return HEX_OK;
}

const char *redis_conn_safe_url(const struct redis_conn *c)
{
	return c->safe_url;
}

void redis_conn_stats(struct redis_conn_stats *out)
{
	out->failures = atomic_load_explicit(&stat_failures, memory_order_relaxed);
	out->skipped = atomic_load_explicit(&stat_skipped, memory_order_relaxed);
	out->error_replies = atomic_load_explicit(&stat_error_replies, memory_order_relaxed);
}
