/*
 * test_redis_user_cache: the user cache against the shared test Redis
 * (HEX_TEST_REDIS_URL) and, for failures, a private redis-server.
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

#include "adapters/redis/redis_user_cache.h"
#include "support/redis_server.h"

#define TIMEOUT_MS 100
#define TTL_S      600

struct fixture {
	struct redis_conn *conn;
	struct redis_user_cache cache;
	struct user_cache port;
	redisContext *raw; /* a plain connection that looks behind the cache's back */
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
	f.cache = (struct redis_user_cache){.conn = f.conn, .ttl_s = TTL_S};
	f.port = redis_user_cache_port(&f.cache);
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

static void sample_user(struct user *u)
{
	memset(u, 0, sizeof *u);
	redis_server_unique_id(u->id);
	snprintf(u->email, sizeof u->email, "o'neil.x+tag|pipe@example.com");
	u->membership = MEMBERSHIP_MEMBER;
	u->role = ROLE_ADMIN;
	u->token_version = 42;
	u->created_at_us = 1764439200123456;
	u->updated_at_us = 1764439299654321;
}

static void key_of(const char *id, char *key, size_t n)
{
	snprintf(key, n, "hex:user:v1:%s", id);
}

static long long raw_int(redisContext *raw, const char *cmd, const char *key)
{
	redisReply *r = redisCommand(raw, "%s %s", cmd, key);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	long long v = r->integer;
	freeReplyObject(r);
	return v;
}

static void raw_set(redisContext *raw, const char *key, const char *value, size_t len)
{
	redisReply *r = redisCommand(raw, "SET %s %b EX 60", key, value, len);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
}

static void assert_same_user(const struct user *a, const struct user *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->email, b->email);
	assert_int_equal(a->membership, b->membership);
	assert_int_equal(a->role, b->role);
	assert_int_equal(a->token_version, b->token_version);
	assert_int_equal(a->created_at_us, b->created_at_us);
	assert_int_equal(a->updated_at_us, b->updated_at_us);
}

static void test_put_get_round_trip_every_field(void **state)
{
	struct fixture *f = *state;
	struct user variants[3];
	sample_user(&variants[0]);
	sample_user(&variants[1]);
	variants[1].membership = MEMBERSHIP_FREE;
	variants[1].role = ROLE_USER;
	variants[1].token_version = 0;
	variants[1].created_at_us = 0;
	variants[1].updated_at_us = INT64_MAX;
	sample_user(&variants[2]);
	memset(variants[2].email, 'e', HEX_EMAIL_MAX); /* the longest email there can be */
	variants[2].email[HEX_EMAIL_MAX] = '\0';
	variants[2].token_version = INT64_MAX;
	variants[2].created_at_us = INT64_MIN;

	for (size_t i = 0; i < 3; i++) {
		uint64_t h0, m0, e0, h1, m1, e1;
		redis_user_cache_stats(&h0, &m0, &e0);
		f->port.ops->put(f->port.self, &variants[i]);
		struct user got;
		memset(&got, 0x5a, sizeof got);
		assert_int_equal(f->port.ops->get(f->port.self, variants[i].id, &got), HEX_OK);
		assert_same_user(&got, &variants[i]);
		redis_user_cache_stats(&h1, &m1, &e1);
		assert_int_equal(h1 - h0, 1);
		assert_int_equal(m1 - m0, 0);
		assert_int_equal(e1 - e0, 0);
	}
}

static void test_put_sets_ttl(void **state)
{
	struct fixture *f = *state;
	struct user u;
	sample_user(&u);
	char key[64];
	key_of(u.id, key, sizeof key);
	f->port.ops->put(f->port.self, &u);
	long long ttl = raw_int(f->raw, "TTL", key);
	assert_true(ttl > 0 && ttl <= TTL_S);

	/* A later put refreshes the value and its TTL. */
	redisReply *r = redisCommand(f->raw, "EXPIRE %s 5", key);
	freeReplyObject(r);
	u.token_version = 43;
	f->port.ops->put(f->port.self, &u);
	ttl = raw_int(f->raw, "TTL", key);
	assert_true(ttl > 5 && ttl <= TTL_S);
	struct user got;
	assert_int_equal(f->port.ops->get(f->port.self, u.id, &got), HEX_OK);
	assert_int_equal(got.token_version, 43);
}

static void test_zero_ttl_stores_nothing(void **state)
{
	struct fixture *f = *state;
	struct redis_user_cache off = {.conn = f->conn, .ttl_s = 0};
	struct user_cache port = redis_user_cache_port(&off);
	struct user u;
	sample_user(&u);
	port.ops->put(port.self, &u);
	char key[64];
	key_of(u.id, key, sizeof key);
	assert_int_equal(raw_int(f->raw, "EXISTS", key), 0);
}

static void test_out_of_range_user_is_not_cached(void **state)
{
	struct fixture *f = *state;
	struct user u;
	char key[64];
	sample_user(&u);
	key_of(u.id, key, sizeof key);
	u.membership = (enum membership)7;
	f->port.ops->put(f->port.self, &u);
	assert_int_equal(raw_int(f->raw, "EXISTS", key), 0);
	u.membership = MEMBERSHIP_FREE;
	u.role = (enum user_role) - 1;
	f->port.ops->put(f->port.self, &u);
	assert_int_equal(raw_int(f->raw, "EXISTS", key), 0);
}

static void test_del_then_miss(void **state)
{
	struct fixture *f = *state;
	struct user u, got;
	sample_user(&u);
	char key[64];
	key_of(u.id, key, sizeof key);
	f->port.ops->put(f->port.self, &u);
	assert_int_equal(raw_int(f->raw, "EXISTS", key), 1);
	f->port.ops->del(f->port.self, u.id);
	assert_int_equal(raw_int(f->raw, "EXISTS", key), 0);
	assert_int_equal(f->port.ops->get(f->port.self, u.id, &got), HEX_NOT_FOUND);
	f->port.ops->del(f->port.self, u.id); /* deleting a missing key is fine */
}

static void test_miss_counts(void **state)
{
	struct fixture *f = *state;
	char id[37];
	redis_server_unique_id(id);
	uint64_t h0, m0, e0, h1, m1, e1;
	redis_user_cache_stats(&h0, &m0, &e0);
	struct user got;
	assert_int_equal(f->port.ops->get(f->port.self, id, &got), HEX_NOT_FOUND);
	/* Not a full id: never a key of some other user; a miss without asking Redis. */
	assert_int_equal(f->port.ops->get(f->port.self, "1234", &got), HEX_NOT_FOUND);
	redis_user_cache_stats(&h1, &m1, &e1);
	assert_int_equal(h1 - h0, 0);
	assert_int_equal(m1 - m0, 2);
	assert_int_equal(e1 - e0, 0);
}

static void test_corrupt_values_are_misses_and_deleted(void **state)
{
	struct fixture *f = *state;
	char id[37], other[37];
	redis_server_unique_id(id);
	redis_server_unique_id(other);
	char long_email[400];
	memset(long_email, 'e', HEX_EMAIL_MAX + 1);
	long_email[HEX_EMAIL_MAX + 1] = '\0';

	char cases[16][600];
	size_t n = 0;
	snprintf(cases[n++], 600, "garbage");
	snprintf(cases[n++], 600, "%s", "");
	snprintf(cases[n++], 600, "u1|%s|free", id);
	snprintf(cases[n++], 600, "u1|%s|free|user|1|2|3|a@b.c", other); /* not this user */
	snprintf(cases[n++], 600, "u9|%s|free|user|1|2|3|a@b.c", id);    /* unknown version */
	snprintf(cases[n++], 600, "u1|%s|gold|user|1|2|3|a@b.c", id);
	snprintf(cases[n++], 600, "u1|%s|free|root|1|2|3|a@b.c", id);
	snprintf(cases[n++], 600, "u1|%s|free|user|x1|2|3|a@b.c", id);
	snprintf(cases[n++], 600, "u1|%s|free|user|1||3|a@b.c", id);
	snprintf(cases[n++], 600, "u1|%s|free|user|1|2|99999999999999999999|a@b.c", id);
	snprintf(cases[n++], 600, "u1|%s|free|user|1|2|3|", id);
	snprintf(cases[n++], 600, "u1|%s|free|user|1|2|3|%s", id, long_email);
	snprintf(cases[n++], 600, "u1|%s|free|user| 1|2|3|a@b.c", id);
	snprintf(cases[n++], 600, "u1|%.35s|free|user|1|2|3|a@b.c", id);

	char key[64];
	key_of(id, key, sizeof key);
	for (size_t i = 0; i < n; i++) {
		print_message("value: %s\n", cases[i]);
		raw_set(f->raw, key, cases[i], strlen(cases[i]));
		struct user got;
		assert_int_equal(f->port.ops->get(f->port.self, id, &got), HEX_NOT_FOUND);
		assert_int_equal(raw_int(f->raw, "EXISTS", key), 0);
	}

	/* A NUL inside the email. */
	char value[200];
	int len = snprintf(value, sizeof value, "u1|%s|free|user|1|2|3|a@b.c", id);
	value[len - 3] = '\0';
	raw_set(f->raw, key, value, (size_t)len);
	struct user got;
	assert_int_equal(f->port.ops->get(f->port.self, id, &got), HEX_NOT_FOUND);
	assert_int_equal(raw_int(f->raw, "EXISTS", key), 0);

	/* The well-formed twin of the cases above is a hit: they failed for their defect. */
	len = snprintf(value, sizeof value, "u1|%s|free|user|1|2|3|a@b.c", id);
	raw_set(f->raw, key, value, (size_t)len);
	assert_int_equal(f->port.ops->get(f->port.self, id, &got), HEX_OK);
	assert_string_equal(got.email, "a@b.c");
	assert_int_equal(got.token_version, 1);
	f->port.ops->del(f->port.self, id);
}

static void test_dead_server_is_unavailable_fast(void **state)
{
	struct redis_server srv;
	if (!redis_server_start(&srv, 0, NULL))
		fail_msg("could not start a private redis-server");
	struct redis_conn *conn = redis_conn_new(srv.url, TIMEOUT_MS, NULL);
	struct redis_user_cache cache = {.conn = conn, .ttl_s = TTL_S};
	struct user_cache port = redis_user_cache_port(&cache);
	struct user u, got;
	sample_user(&u);
	port.ops->put(port.self, &u);
	assert_int_equal(port.ops->get(port.self, u.id, &got), HEX_OK);

	redis_server_kill(&srv);
	uint64_t h0, m0, e0, h1, m1, e1;
	redis_user_cache_stats(&h0, &m0, &e0);
	int64_t t0 = now_us();
	assert_int_equal(port.ops->get(port.self, u.id, &got), HEX_UNAVAILABLE);
	int64_t took = now_us() - t0;
	print_message("first get after the kill took %lld us\n", (long long)took);
	assert_true(took < 500000);
	for (int i = 0; i < 5; i++) {
		t0 = now_us();
		assert_int_equal(port.ops->get(port.self, u.id, &got), HEX_UNAVAILABLE);
		assert_true(now_us() - t0 < 5000);
	}
	port.ops->put(port.self, &u);
	redis_user_cache_stats(&h1, &m1, &e1);
	assert_int_equal(e1 - e0, 7);
	assert_int_equal(h1 - h0, 0);
	assert_int_equal(m1 - m0, 0);

	/* Back after the backoff: answers again (a fresh server: a miss). */
	assert_true(redis_server_restart(&srv));
	sleep_ms(REDIS_CONN_BACKOFF_MIN_MS + 100);
	assert_int_equal(port.ops->get(port.self, u.id, &got), HEX_NOT_FOUND);

	redis_conn_free(conn);
	redis_server_stop(&srv);
}

/*
 * A delete that fails must not leave the old value to be served later (it may carry a
 * revoked token_version): it is retried before the next use of the cache.
 */
static void test_failed_delete_is_retried(void **state)
{
	struct redis_server srv;
	if (!redis_server_start(&srv, 0, NULL))
		fail_msg("could not start a private redis-server");
	redisContext *admin = redis_server_connect(srv.url);
	assert_non_null(admin);
	struct redis_conn *conn = redis_conn_new(srv.url, TIMEOUT_MS, NULL);
	struct redis_user_cache cache = {.conn = conn, .ttl_s = TTL_S};
	struct user_cache port = redis_user_cache_port(&cache);
	struct user u, got;
	sample_user(&u);
	char key[64];
	key_of(u.id, key, sizeof key);
	port.ops->put(port.self, &u);

	/* The server drops our connection; the delete after a write fails. */
	redisReply *r = redisCommand(admin, "CLIENT KILL TYPE normal SKIPME yes");
	freeReplyObject(r);
	uint64_t h0, m0, e0, h1, m1, e1;
	redis_user_cache_stats(&h0, &m0, &e0);
	port.ops->del(port.self, u.id);
	redis_user_cache_stats(&h1, &m1, &e1);
	assert_int_equal(e1 - e0, 1);
	assert_int_equal(raw_int(admin, "EXISTS", key), 1);

	/* Another user's read after the backoff removes the stale entry first. */
	sleep_ms(REDIS_CONN_BACKOFF_MIN_MS + 50);
	char other[37];
	redis_server_unique_id(other);
	assert_int_equal(port.ops->get(port.self, other, &got), HEX_NOT_FOUND);
	assert_int_equal(raw_int(admin, "EXISTS", key), 0);
	assert_int_equal(port.ops->get(port.self, u.id, &got), HEX_NOT_FOUND);

	redis_conn_free(conn);
	redisFree(admin);
	redis_server_stop(&srv);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_round_trip_every_field),
	    cmocka_unit_test(test_put_sets_ttl),
	    cmocka_unit_test(test_zero_ttl_stores_nothing),
	    cmocka_unit_test(test_out_of_range_user_is_not_cached),
	    cmocka_unit_test(test_del_then_miss),
	    cmocka_unit_test(test_miss_counts),
	    cmocka_unit_test(test_corrupt_values_are_misses_and_deleted),
	    cmocka_unit_test(test_dead_server_is_unavailable_fast),
	    cmocka_unit_test(test_failed_delete_is_retried),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
