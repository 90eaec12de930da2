/*
 * test_redis_conn: the connection against private redis-servers: AUTH and SELECT from
 * the URL, failures that cost nothing during the backoff, recovery, stalls that end at
 * the timeout, pipelines, error replies, and logs without secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapters/redis/redis_conn.h"
#include "support/redis_server.h"

#define TIMEOUT_MS 100

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static struct redis_conn_stats stats(void)
{
	struct redis_conn_stats s;
	redis_conn_stats(&s);
	return s;
}

static void must_start(struct redis_server *s, const char *const *args)
{
	if (!redis_server_start(s, 0, args))
		fail_msg("could not start a private redis-server");
}

/* Runs a command on a plain connection and checks that it answers OK / +OK-like. */
static redisReply *raw(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

static void raw_ok(redisContext *c, const char *fmt, const char *arg)
{
	redisReply *r = raw(c, fmt, arg);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("%s: %s", fmt, r->str);
	freeReplyObject(r);
}

/*
 * Runs first in the process: the failure log is rate limited per process, so the
 * first failure logs and the next ones within 10 s do not. Neither names the password.
 */
static void test_wrong_password_fails_and_logs_once_without_secret(void **state)
{
	static const char *const args[] = {"--requirepass", "right-horse", NULL};
	struct redis_server srv;
	must_start(&srv, args);
	char url[128];
	snprintf(url, sizeof url, "redis://:wrong-battery@127.0.0.1:%d/0", srv.port);

	char log_path[] = "/tmp/hex-redis-log-XXXXXX";
	int log_fd = mkstemp(log_path);
	assert_true(log_fd >= 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(log_fd, STDERR_FILENO);

	struct redis_conn_stats before = stats();
	struct redis_conn *c = redis_conn_new(url, TIMEOUT_MS, NULL);
	assert_non_null(c);
	redisReply *r = redis_conn_command(c, "PING");
	sleep_ms(REDIS_CONN_BACKOFF_MIN_MS + 20);
	redisReply *r2 = redis_conn_command(c, "PING");
	struct redis_conn_stats after = stats();

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	assert_null(r);
	assert_null(r2);
	assert_int_equal(after.failures - before.failures, 2);

	char text[8192] = "";
	FILE *f = fdopen(log_fd, "r");
	rewind(f);
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	unlink(log_path);
	print_message("captured log: %s", text);
	assert_non_null(strstr(text, "\"event\":\"redis_down\""));
	assert_non_null(strstr(text, "AUTH"));
	assert_null(strstr(text, "wrong-battery"));
	assert_null(strstr(text, "right-horse"));
	/* Rate limited: one line for two failures. */
	assert_null(strstr(strstr(text, "redis_down") + 1, "redis_down"));

	redis_conn_free(c);
	redis_server_stop(&srv);
}

static void test_password_user_and_db_from_url(void **state)
{
	static const char *const args[] = {"--requirepass", "s3cr@t", NULL};
	struct redis_server srv;
	must_start(&srv, args);
	char url[160];
	snprintf(url, sizeof url, "redis://:s3cr@t@127.0.0.1:%d/0", srv.port);
	redisContext *admin = redis_server_connect(url);
	assert_non_null(admin);
	raw_ok(admin, "ACL SETUSER alice on >%s ~* +@all", "al!ce pw");

	/* Password only, percent-encoded, database 3. */
	snprintf(url, sizeof url, "redis://:s3cr%%40t@127.0.0.1:%d/3", srv.port);
	struct redis_conn *c = redis_conn_new(url, TIMEOUT_MS, NULL);
	redisReply *r = redis_conn_command(c, "SET %s %s", "where", "db3");
	assert_non_null(r);
	freeReplyObject(r);
	raw_ok(admin, "SELECT %s", "3");
	r = raw(admin, "GET where");
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "db3");
	freeReplyObject(r);
	raw_ok(admin, "SELECT %s", "0");
	r = raw(admin, "EXISTS where");
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	redis_conn_free(c);

	/* An ACL user with a password that needs encoding, database 5. */
	snprintf(url, sizeof url, "redis://alice:al%%21ce%%20pw@127.0.0.1:%d/5", srv.port);
	c = redis_conn_new(url, TIMEOUT_MS, NULL);
	r = redis_conn_command(c, "ACL WHOAMI");
	assert_non_null(r);
	assert_string_equal(r->str, "alice");
	freeReplyObject(r);
	r = redis_conn_command(c, "SET %s %s", "where", "db5");
	assert_non_null(r);
	freeReplyObject(r);
	raw_ok(admin, "SELECT %s", "5");
	r = raw(admin, "GET where");
	assert_string_equal(r->str, "db5");
	freeReplyObject(r);
	redis_conn_free(c);

	/* The same user with a wrong password gets nothing. */
	struct redis_conn_stats before = stats();
	snprintf(url, sizeof url, "redis://alice:nope@127.0.0.1:%d/5", srv.port);
	c = redis_conn_new(url, TIMEOUT_MS, NULL);
	assert_null(redis_conn_command(c, "PING"));
	assert_int_equal(stats().failures - before.failures, 1);
	redis_conn_free(c);

	/* No password at all: Redis refuses the command; an error reply, link kept. */
	before = stats();
	snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", srv.port);
	c = redis_conn_new(url, TIMEOUT_MS, NULL);
	assert_null(redis_conn_command(c, "GET where"));
	assert_int_equal(stats().error_replies - before.error_replies, 1);
	assert_int_equal(stats().failures - before.failures, 0);
	redis_conn_free(c);

	/* A database the server does not have fails the connection. */
	before = stats();
	snprintf(url, sizeof url, "redis://:s3cr%%40t@127.0.0.1:%d/99", srv.port);
	c = redis_conn_new(url, TIMEOUT_MS, NULL);
	assert_null(redis_conn_command(c, "PING"));
	assert_int_equal(stats().failures - before.failures, 1);
	redis_conn_free(c);

	redisFree(admin);
	redis_server_stop(&srv);
}

static void test_nothing_listening_fails_fast(void **state)
{
	struct redis_server srv;
	must_start(&srv, NULL);
	redis_server_kill(&srv);
	struct redis_conn *c = redis_conn_new(srv.url, TIMEOUT_MS, NULL);
	assert_non_null(c);
	int64_t t0 = now_us();
	assert_int_equal(redis_conn_ping(c), HEX_UNAVAILABLE);
	assert_true(now_us() - t0 < 50000);
	redis_conn_free(c);
	redis_server_stop(&srv);
}

static void test_killed_server_fails_fast_then_recovers(void **state)
{
	struct redis_server srv;
	must_start(&srv, NULL);
	struct redis_conn *c = redis_conn_new(srv.url, TIMEOUT_MS, NULL);
	assert_int_equal(redis_conn_ping(c), HEX_OK);

	redis_server_kill(&srv);
	struct redis_conn_stats before = stats();
	int64_t t0 = now_us();
	assert_int_equal(redis_conn_ping(c), HEX_UNAVAILABLE);
	int64_t first_us = now_us() - t0;
	print_message("first failure after %lld us\n", (long long)first_us);
	assert_true(first_us < 500000);
	assert_int_equal(stats().failures - before.failures, 1);

	/* During the backoff nothing is tried: each call is a quick NULL. */
	for (int i = 0; i < 5; i++) {
		t0 = now_us();
		assert_null(redis_conn_command(c, "GET %s", "k"));
		assert_true(now_us() - t0 < 5000);
	}
	assert_int_equal(stats().skipped - before.skipped, 5);
	assert_int_equal(stats().failures - before.failures, 1);

	assert_true(redis_server_restart(&srv));
	int64_t deadline = now_us() + 3 * 1000000;
	enum hex_status st = HEX_UNAVAILABLE;
	while (st != HEX_OK && now_us() < deadline) {
		st = redis_conn_ping(c);
		if (st != HEX_OK)
			sleep_ms(20);
	}
	assert_int_equal(st, HEX_OK);
	redisReply *r = redis_conn_command(c, "SET %s %s", "k", "v");
	assert_non_null(r);
	freeReplyObject(r);

	redis_conn_free(c);
	redis_server_stop(&srv);
}

/* A healthy server that dropped us is not asked again before the backoff is over. */
static void test_no_retry_before_backoff(void **state)
{
	struct redis_server srv;
	must_start(&srv, NULL);
	redisContext *admin = redis_server_connect(srv.url);
	assert_non_null(admin);
	struct redis_conn *c = redis_conn_new(srv.url, TIMEOUT_MS, NULL);
	assert_int_equal(redis_conn_ping(c), HEX_OK);

	redisReply *r = raw(admin, "CLIENT KILL TYPE normal SKIPME yes");
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);

	struct redis_conn_stats before = stats();
	assert_int_equal(redis_conn_ping(c), HEX_UNAVAILABLE);
	assert_int_equal(stats().failures - before.failures, 1);
	assert_int_equal(redis_conn_ping(c), HEX_UNAVAILABLE);
	assert_int_equal(stats().skipped - before.skipped, 1);

	sleep_ms(REDIS_CONN_BACKOFF_MIN_MS + 30);
	assert_int_equal(redis_conn_ping(c), HEX_OK);
	assert_int_equal(stats().failures - before.failures, 1);

	redis_conn_free(c);
	redisFree(admin);
	redis_server_stop(&srv);
}

static void sleep_until(int64_t t_us)
{
	int64_t d = t_us - now_us();
	if (d > 0)
		sleep_ms((int)(d / 1000) + 1);
}

/* One call with the server down: true if it tried to connect, false if it backed off. */
static bool call_attempts(struct redis_conn *c)
{
	struct redis_conn_stats before = stats();
	assert_int_equal(redis_conn_ping(c), HEX_UNAVAILABLE);
	struct redis_conn_stats after = stats();
	assert_int_equal((after.failures - before.failures) + (after.skipped - before.skipped), 1);
	return after.failures != before.failures;
}

static void test_backoff_doubles_up_to_cap(void **state)
{
	static const int expected_ms[] = {100, 200, 400, 800, 1600, 2000};
	struct redis_server srv;
	must_start(&srv, NULL);
	redis_server_kill(&srv);
	struct redis_conn *c = redis_conn_new(srv.url, TIMEOUT_MS, NULL);

	int64_t t_before = now_us();
	assert_true(call_attempts(c));
	int64_t t_after = now_us();
	for (size_t i = 0; i < sizeof expected_ms / sizeof expected_ms[0]; i++) {
		int b = expected_ms[i];
		print_message("expecting a wait of %d ms\n", b);
		/* Past the previous wait (b / 2 while doubling), short of this one. */
		sleep_until(t_before + (int64_t)b * 750);
		assert_false(call_attempts(c));
		sleep_until(t_after + (int64_t)(b + 30) * 1000);
		t_before = now_us();
		assert_true(call_attempts(c));
		t_after = now_us();
	}
	redis_conn_free(c);
	redis_server_stop(&srv);
}

static void test_stalled_server_times_out(void **state)
{
	struct redis_server srv;
	must_start(&srv, NULL);
	redisContext *admin = redis_server_connect(srv.url);
	assert_non_null(admin);
	struct redis_conn *c = redis_conn_new(srv.url, TIMEOUT_MS, NULL);
	assert_int_equal(redis_conn_ping(c), HEX_OK);

	/* Send DEBUG SLEEP without waiting for its answer: the server is busy for 2 s. */
	assert_int_equal(redisAppendCommand(admin, "DEBUG SLEEP 2"), REDIS_OK);
	int done = 0;
	while (!done)
		assert_int_equal(redisBufferWrite(admin, &done), REDIS_OK);
	sleep_ms(50);

	struct redis_conn_stats before = stats();
	int64_t t0 = now_us();
	assert_null(redis_conn_command(c, "GET %s", "k"));
	int64_t took = now_us() - t0;
	print_message("stalled call gave up after %lld us\n", (long long)took);
	assert_true(took >= (TIMEOUT_MS - 10) * 1000);
	assert_true(took < 4 * TIMEOUT_MS * 1000);
	assert_int_equal(stats().failures - before.failures, 1);

	/* Backing off: no second timeout to pay. */
	t0 = now_us();
	assert_int_equal(redis_conn_ping(c), HEX_UNAVAILABLE);
	assert_true(now_us() - t0 < 5000);

	void *reply = NULL;
	assert_int_equal(redisGetReply(admin, &reply), REDIS_OK);
	freeReplyObject(reply);
	sleep_ms(REDIS_CONN_BACKOFF_MIN_MS + 50);
	assert_int_equal(redis_conn_ping(c), HEX_OK);

	redis_conn_free(c);
	redisFree(admin);
	redis_server_stop(&srv);
}

static void test_error_reply_keeps_connection(void **state)
{
	struct redis_server srv;
	must_start(&srv, NULL);
	struct redis_conn *c = redis_conn_new(srv.url, TIMEOUT_MS, NULL);
	redisReply *r = redis_conn_command(c, "CLIENT ID");
	assert_non_null(r);
	long long id = r->integer;
	freeReplyObject(r);
	r = redis_conn_command(c, "SET %s %s", "word", "not-a-number");
	freeReplyObject(r);

	struct redis_conn_stats before = stats();
	assert_null(redis_conn_command(c, "INCR %s", "word"));
	assert_int_equal(stats().error_replies - before.error_replies, 1);
	assert_int_equal(stats().failures - before.failures, 0);

	r = redis_conn_command(c, "CLIENT ID");
	assert_non_null(r);
	assert_int_equal(r->integer, id);
	freeReplyObject(r);
	redis_conn_free(c);
	redis_server_stop(&srv);
}

static void test_pipeline(void **state)
{
	struct redis_server srv;
	must_start(&srv, NULL);
	struct redis_conn *c = redis_conn_new(srv.url, TIMEOUT_MS, NULL);

	const char *set[] = {"SET", "bin", "a\0b"};
	const size_t setlen[] = {3, 3, 3};
	const char *get[] = {"GET", "bin"};
	const char *incr[] = {"INCR", "n"};
	const struct redis_cmd ok_cmds[] = {{3, set, setlen}, {2, get, NULL}, {2, incr, NULL}};
	redisReply *replies[3];
	assert_int_equal(redis_conn_pipeline(c, ok_cmds, 3, replies), HEX_OK);
	assert_int_equal(replies[0]->type, REDIS_REPLY_STATUS);
	assert_int_equal(replies[1]->type, REDIS_REPLY_STRING);
	assert_int_equal(replies[1]->len, 3);
	assert_memory_equal(replies[1]->str, "a\0b", 3);
	assert_int_equal(replies[2]->integer, 1);
	for (int i = 0; i < 3; i++)
		freeReplyObject(replies[i]);

	/* One error reply fails the whole pipeline, but the link stays usable. */
	const char *bad[] = {"INCR", "bin"};
	const struct redis_cmd mixed[] = {{2, incr, NULL}, {2, bad, NULL}};
	struct redis_conn_stats before = stats();
	assert_int_equal(redis_conn_pipeline(c, mixed, 2, replies), HEX_UNAVAILABLE);
	assert_null(replies[0]);
	assert_null(replies[1]);
	assert_int_equal(stats().error_replies - before.error_replies, 1);
	assert_int_equal(stats().failures - before.failures, 0);
	redisReply *r = redis_conn_command(c, "GET %s", "n");
	assert_string_equal(r->str, "2"); /* the first command of it did run */
	freeReplyObject(r);

	/* Server gone: HEX_UNAVAILABLE, nothing to free. */
	redis_server_kill(&srv);
	before = stats();
	assert_int_equal(redis_conn_pipeline(c, ok_cmds, 3, replies), HEX_UNAVAILABLE);
	for (int i = 0; i < 3; i++)
		assert_null(replies[i]);
	assert_int_equal(stats().failures - before.failures, 1);
	assert_int_equal(redis_conn_pipeline(c, ok_cmds, 3, replies), HEX_UNAVAILABLE);
	assert_int_equal(stats().skipped - before.skipped, 1);

	redis_conn_free(c);
	redis_server_stop(&srv);
}

int main(void)
{
	/* hexd ignores SIGPIPE; so must a test that writes to servers it kills. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrong_password_fails_and_logs_once_without_secret),
	    cmocka_unit_test(test_password_user_and_db_from_url),
	    cmocka_unit_test(test_nothing_listening_fails_fast),
	    cmocka_unit_test(test_killed_server_fails_fast_then_recovers),
	    cmocka_unit_test(test_no_retry_before_backoff),
	    cmocka_unit_test(test_backoff_doubles_up_to_cap),
	    cmocka_unit_test(test_stalled_server_times_out),
	    cmocka_unit_test(test_error_reply_keeps_connection),
	    cmocka_unit_test(test_pipeline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
