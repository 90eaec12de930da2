/*
 * test_redis_rate_limiter: fixed windows against the shared test Redis
 * (HEX_TEST_REDIS_URL); failing open against a private redis-server that dies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "adapters/redis/redis_rate_limiter.h"
#include "support/redis_server.h"

struct fixture {
	struct redis_conn *conn;
	struct rate_limiter port;
	redisContext *raw;
};

static int setup(void **state)
{
	const char *url = redis_server_test_url();
	if (url == NULL)
		return -1;
	static struct fixture f;
	*state = &f; /* before any failure: teardown frees what was made */
	struct hex_err err = {0};
	f.conn = redis_conn_new(url, 500, &err);
	if (f.conn == NULL) {
		fprintf(stderr, "HEX_TEST_REDIS_URL: %s\n", err.message);
		return -1;
	}
	f.port = redis_rate_limiter_port(f.conn);
	f.raw = redis_server_connect(url);
	return f.raw != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	redis_conn_free(f->conn);
	if (f->raw != NULL)
		redisFree(f->raw);
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits, if need be, until at least min_left_s remain in the current window. */
static void avoid_window_end(int window_s, double min_left_s)
{
	double now = wall_s();
	double left = window_s - (now - (double)((int64_t)now / window_s * window_s));
	if (left < min_left_s)
		sleep_ms((int)(left * 1000) + 20);
}

static void unique_key(char *key, size_t n, const char *what)
{
	char id[37];
	redis_server_unique_id(id);
	snprintf(key, n, "test:%s:%s", what, id);
}

static enum hex_status hit(struct fixture *f, const char *key, int limit, int window_s,
                           int *retry_after)
{
	return f->port.ops->hit(f->port.self, key, limit, window_s, retry_after);
}

static void test_allows_exactly_limit_then_refuses(void **state)
{
	struct fixture *f = *state;
	char key[96];
	unique_key(key, sizeof key, "exact");
	const int limit = 5, window = 60;
	avoid_window_end(window, 3);
	uint64_t a0, l0, e0, a1, l1, e1;
	redis_rate_limiter_stats(&a0, &l0, &e0);
	int retry = -1;
	for (int i = 0; i < limit; i++) {
		assert_int_equal(hit(f, key, limit, window, &retry), HEX_OK);
		assert_int_equal(retry, -1);
	}
	int64_t now = (int64_t)wall_s();
	assert_int_equal(hit(f, key, limit, window, &retry), HEX_RATE_LIMITED);
	int expected = (int)(window - now % window);
	print_message("retry after %d s (expected about %d)\n", retry, expected);
	assert_true(retry >= 1 && retry <= window);
	/* A second may pass between the refusal and reading the clock (two under a slow
	 * sanitizer build on a busy machine). */
	assert_true(retry <= expected && retry >= expected - 2);
	/* Still refused: attempts over the limit do not reopen the window. */
	assert_int_equal(hit(f, key, limit, window, &retry), HEX_RATE_LIMITED);
	assert_true(retry >= 1 && retry <= window);
	assert_int_equal(hit(f, key, limit, window, NULL), HEX_RATE_LIMITED);
	redis_rate_limiter_stats(&a1, &l1, &e1);
	assert_int_equal(a1 - a0, limit);
	assert_int_equal(l1 - l0, 3);
	assert_int_equal(e1 - e0, 0);
}

static void test_keys_are_independent(void **state)
{
	struct fixture *f = *state;
	char a[96], b[96];
	unique_key(a, sizeof a, "a");
	unique_key(b, sizeof b, "b");
	avoid_window_end(60, 3);
	int retry;
	assert_int_equal(hit(f, a, 1, 60, &retry), HEX_OK);
	assert_int_equal(hit(f, a, 1, 60, &retry), HEX_RATE_LIMITED);
	assert_int_equal(hit(f, b, 1, 60, &retry), HEX_OK);
	assert_int_equal(hit(f, b, 1, 60, &retry), HEX_RATE_LIMITED);
	/* The same key under another window length is another counter. */
	assert_int_equal(hit(f, a, 1, 3600, &retry), HEX_OK);
}

static void test_window_key_expires_and_is_not_extended(void **state)
{
	struct fixture *f = *state;
	char key[96], rkey[160];
	unique_key(key, sizeof key, "ttl");
	const int window = 60;
	avoid_window_end(window, 5);
	int64_t now = (int64_t)wall_s();
	snprintf(rkey, sizeof rkey, "hex:rl:%s:%lld", key, (long long)(now / window));
	int retry;
	assert_int_equal(hit(f, key, 10, window, &retry), HEX_OK);
	redisReply *r = redisCommand(f->raw, "TTL %s", rkey);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	long long ttl = r->integer;
	freeReplyObject(r);
	assert_true(ttl > window - 2 && ttl <= window);

	sleep_ms(2100);
	assert_int_equal(hit(f, key, 10, window, &retry), HEX_OK);
	r = redisCommand(f->raw, "TTL %s", rkey);
	long long later = r->integer;
	freeReplyObject(r);
	r = redisCommand(f->raw, "GET %s", rkey);
	assert_string_equal(r->str, "2");
	freeReplyObject(r);
	print_message("ttl %lld then %lld\n", ttl, later);
	assert_true(later > 0 && later <= window - 2);
}

static void test_next_window_starts_afresh(void **state)
{
	struct fixture *f = *state;
	char key[96];
	unique_key(key, sizeof key, "roll");
	const int window = 2;
	avoid_window_end(window, 1.5);
	int retry;
	assert_int_equal(hit(f, key, 1, window, &retry), HEX_OK);
	assert_int_equal(hit(f, key, 1, window, &retry), HEX_RATE_LIMITED);
	assert_true(retry >= 1 && retry <= window);
	sleep_ms(retry * 1000 + 50);
	assert_int_equal(hit(f, key, 1, window, &retry), HEX_OK);
	assert_int_equal(hit(f, key, 1, window, &retry), HEX_RATE_LIMITED);
}

static void test_zero_limit_is_off(void **state)
{
	struct fixture *f = *state;
	char key[96], pattern[128];
	unique_key(key, sizeof key, "off");
	for (int i = 0; i < 50; i++) {
		assert_int_equal(hit(f, key, 0, 60, NULL), HEX_OK);
		assert_int_equal(hit(f, key, 5, 0, NULL), HEX_OK);
	}
	snprintf(pattern, sizeof pattern, "hex:rl:%s:*", key);
	redisReply *r = redisCommand(f->raw, "KEYS %s", pattern);
	assert_int_equal(r->elements, 0);
	freeReplyObject(r);
}

static void test_fails_open_when_redis_is_down(void **state)
{
	struct redis_server srv;
	if (!redis_server_start(&srv, 0, NULL))
		fail_msg("could not start a private redis-server");
	struct redis_conn *conn = redis_conn_new(srv.url, 100, NULL);
	struct rate_limiter port = redis_rate_limiter_port(conn);
	int retry;
	assert_int_equal(port.ops->hit(port.self, "k", 1, 60, &retry), HEX_OK);
	assert_int_equal(port.ops->hit(port.self, "k", 1, 60, &retry), HEX_RATE_LIMITED);

	redis_server_kill(&srv);
	uint64_t a0, l0, e0, a1, l1, e1;
	redis_rate_limiter_stats(&a0, &l0, &e0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(port.ops->hit(port.self, "k", 1, 60, &retry), HEX_OK);
	redis_rate_limiter_stats(&a1, &l1, &e1);
	assert_int_equal(e1 - e0, 3);
	assert_int_equal(a1 - a0, 3);
	assert_int_equal(l1 - l0, 0);

	redis_conn_free(conn);
	redis_server_stop(&srv);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allows_exactly_limit_then_refuses),
	    cmocka_unit_test(test_keys_are_independent),
	    cmocka_unit_test(test_window_key_expires_and_is_not_extended),
	    cmocka_unit_test(test_next_window_starts_afresh),
	    cmocka_unit_test(test_zero_limit_is_off),
	    cmocka_unit_test(test_fails_open_when_redis_is_down),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
