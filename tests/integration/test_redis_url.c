/* test_redis_url: HEX_REDIS_URL parsing, and no password in what gets logged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "adapters/redis/redis_conn.h"
#include "adapters/redis/redis_url.h"

struct good_case {
	const char *url;
	const char *host;
	int port;
	int db;
	const char *user;
	const char *password; /* NULL: no AUTH */
	const char *safe;
};

static const struct good_case good[] = {
    {"redis://127.0.0.1:6379/0", "127.0.0.1", 6379, 0, "", NULL, "redis://127.0.0.1:6379/0"},
    {"redis://localhost", "localhost", 6379, 0, "", NULL, "redis://localhost:6379/0"},
    {"redis://localhost/", "localhost", 6379, 0, "", NULL, "redis://localhost:6379/0"},
    {"REDIS://cache-1.internal:1/15", "cache-1.internal", 1, 15, "", NULL,
     "redis://cache-1.internal:1/15"},
    {"redis://:secret@h:7000/2", "h", 7000, 2, "", "secret", "redis://:***@h:7000/2"},
    {"redis://alice:s3cr%40t@h/3", "h", 6379, 3, "alice", "s3cr@t", "redis://alice:***@h:6379/3"},
    {"redis://:p@ss@h", "h", 6379, 0, "", "p@ss", "redis://:***@h:6379/0"},
    {"redis://:a:b/c@h:65535", "h", 65535, 0, "", "a:b/c", "redis://:***@h:65535/0"},
    {"redis://[::1]:6380/1", "::1", 6380, 1, "", NULL, "redis://[::1]:6380/1"},
    {"redis://:@h", "h", 6379, 0, "", NULL, "redis://h:6379/0"},
};

static void test_good_urls(void **state)
{
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		const struct good_case *g = &good[i];
		struct redis_url u;
		struct hex_err err = {0};
		print_message("%s\n", g->url);
		assert_int_equal(redis_url_parse(g->url, &u, &err), HEX_OK);
		assert_string_equal(u.host, g->host);
		assert_int_equal(u.port, g->port);
		assert_int_equal(u.db, g->db);
		assert_string_equal(u.user, g->user);
		assert_int_equal(u.has_password, g->password != NULL);
		if (g->password != NULL)
			assert_string_equal(u.password, g->password);
		char safe[600];
		redis_url_format_safe(&u, safe, sizeof safe);
		assert_string_equal(safe, g->safe);
	}
}

static const char *const bad[] = {
    "",
    "http://h:6379",
    "rediss://h:6379",
    "redis//h",
    "redis://",
    "redis://:6379",
    "redis:///0",
    "redis://h:0",
    "redis://h:65536",
    "redis://h:99999999999999999999",
    "redis://h:abc",
    "redis://h:",
    "redis://h:-1",
    "redis://h/x",
    "redis://h/-1",
    "redis://h/1/2",
    "redis://h/99999999",
    "redis://h?db=1",
    "redis://h:6379/0?x",
    "redis://ho st",
    "redis://h;rm",
    "redis://user@h",
    "redis://user:@h",
    "redis://:%zz@h",
    "redis://:%4@h",
    "redis://:abc%@h",
    "redis://:%00pw@h",
    "redis://%00:pw@h",
    "redis://[::1",
    "redis://[]:1",
    "redis://[g::1]:1",
};

static void test_bad_urls(void **state)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct redis_url u;
		struct hex_err err = {0};
		print_message("%s\n", bad[i]);
		assert_int_equal(redis_url_parse(bad[i], &u, &err), HEX_INVALID);
		assert_non_null(err.field);
		assert_string_equal(err.field, "redis_url");
		assert_true(strlen(err.message) > 0);
	}
	struct redis_url u;
	assert_int_equal(redis_url_parse(NULL, &u, NULL), HEX_INVALID);
}

static void test_error_message_hides_password(void **state)
{
	static const char *const urls[] = {"redis://:topsecret@h:0", "redis://u:topsecret@h/x",
	                                   "redis://:topsecret@"};
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		struct redis_url u;
		struct hex_err err = {0};
		assert_int_equal(redis_url_parse(urls[i], &u, &err), HEX_INVALID);
		assert_null(strstr(err.message, "topsecret"));
	}
}

static void test_too_long_parts(void **state)
{
	char url[4096];
	struct redis_url u;
	char host[REDIS_URL_HOST_MAX + 2];
	memset(host, 'a', sizeof host - 1);
	host[sizeof host - 1] = '\0';
	snprintf(url, sizeof url, "redis://%s:1/0", host);
	assert_int_equal(redis_url_parse(url, &u, NULL), HEX_INVALID);
	host[REDIS_URL_HOST_MAX] = '\0'; /* exactly the maximum fits */
	snprintf(url, sizeof url, "redis://%s:1/0", host);
	assert_int_equal(redis_url_parse(url, &u, NULL), HEX_OK);

	char pw[REDIS_URL_PASSWORD_MAX + 2];
	memset(pw, 'p', sizeof pw - 1);
	pw[sizeof pw - 1] = '\0';
	snprintf(url, sizeof url, "redis://:%s@h", pw);
	assert_int_equal(redis_url_parse(url, &u, NULL), HEX_INVALID);
	pw[REDIS_URL_PASSWORD_MAX] = '\0';
	snprintf(url, sizeof url, "redis://:%s@h", pw);
	assert_int_equal(redis_url_parse(url, &u, NULL), HEX_OK);
	assert_int_equal(strlen(u.password), REDIS_URL_PASSWORD_MAX);
}

static void test_conn_new_validates(void **state)
{
	struct hex_err err = {0};
	assert_null(redis_conn_new("redis://h:0", 100, &err));
	assert_string_equal(err.field, "redis_url");
	memset(&err, 0, sizeof err);
	assert_null(redis_conn_new("redis://127.0.0.1:6379/0", 0, &err));
	assert_string_equal(err.field, "redis_timeout_ms");
	assert_null(redis_conn_new("redis://127.0.0.1:6379/0", -5, NULL));

	/* A server that is not there is no error: the connection is made on first use. */
	struct redis_conn *c = redis_conn_new("redis://u:topsecret@127.0.0.1:1/4", 100, &err);
	assert_non_null(c);
	assert_string_equal(redis_conn_safe_url(c), "redis://u:***@127.0.0.1:1/4");
	redis_conn_free(c);
	redis_conn_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_urls),
	    cmocka_unit_test(test_bad_urls),
	    cmocka_unit_test(test_error_message_hides_password),
	    cmocka_unit_test(test_too_long_parts),
	    cmocka_unit_test(test_conn_new_validates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
