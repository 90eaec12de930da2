/*
 * test_logger_tap: taps see every line the logger writes (plain and buffered, JSON and
 * text), without its newline and only at or above the level; removal is final; slots
 * run out cleanly; and adding and removing while other threads log is safe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/logger.h"

struct capture {
	int n;
	char last[4096];
	size_t last_len;
};

static void capture_line(const char *line, size_t len, void *arg)
{
	struct capture *c = arg;
	c->n++;
	memcpy(c->last, line, len < sizeof c->last ? len : sizeof c->last - 1);
	c->last[len < sizeof c->last ? len : sizeof c->last - 1] = '\0';
	c->last_len = len;
}

static int setup(void **state)
{
	logger_setup(LOGGER_JSON, LOGGER_INFO);
	return 0;
}

static void tap_sees_each_json_line(void **state)
{
	struct capture c = {0};
	int id = logger_tap_add(capture_line, &c);
	assert_true(id >= 0);
	log_info("tap_test", "hello %d", 42);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.last_len, strlen(c.last));
	assert_int_equal(c.last[0], '{');
	assert_int_equal(c.last[c.last_len - 1], '}'); /* no newline */
	assert_non_null(strstr(c.last, "\"event\":\"tap_test\""));
	assert_non_null(strstr(c.last, "\"msg\":\"hello 42\""));
	assert_non_null(strstr(c.last, "\"level\":\"info\""));

	logger_write_fields_buffered(LOGGER_INFO, "http_request", "\"status\":200");
	assert_int_equal(c.n, 2); /* at write time, not at flush time */
	assert_non_null(strstr(c.last, "\"status\":200"));
	logger_flush();
	assert_int_equal(c.n, 2);

	log_debug("tap_test", "below the level");
	assert_int_equal(c.n, 2);

	logger_tap_remove(id);
	log_warn("tap_test", "after removal");
	assert_int_equal(c.n, 2);
	logger_tap_remove(id); /* twice: harmless */
	logger_tap_remove(-1);
}

static void tap_sees_text_lines(void **state)
{
	struct capture c = {0};
	logger_setup(LOGGER_TEXT, LOGGER_INFO);
	int id = logger_tap_add(capture_line, &c);
	log_warn("tap_text", "plain words");
	logger_tap_remove(id);
	logger_setup(LOGGER_JSON, LOGGER_INFO);
	assert_int_equal(c.n, 1);
	assert_non_null(strstr(c.last, "warn"));
	assert_non_null(strstr(c.last, "tap_text plain words"));
	assert_null(strchr(c.last, '\n'));
}

static void every_tap_runs(void **state)
{
	struct capture a = {0}, b = {0};
	int ia = logger_tap_add(capture_line, &a);
	int ib = logger_tap_add(capture_line, &b);
	assert_true(ia >= 0 && ib >= 0 && ia != ib);
	log_info("tap_two", "x");
	assert_int_equal(a.n, 1);
	assert_int_equal(b.n, 1);
	logger_tap_remove(ia);
	log_info("tap_two", "y");
	assert_int_equal(a.n, 1);
	assert_int_equal(b.n, 2);
	logger_tap_remove(ib);
}

static void slots_run_out(void **state)
{
	struct capture c = {0};
	int ids[LOGGER_TAPS_MAX];
	for (int i = 0; i < LOGGER_TAPS_MAX; i++) {
		ids[i] = logger_tap_add(capture_line, &c);
		assert_true(ids[i] >= 0);
	}
	assert_int_equal(logger_tap_add(capture_line, &c), -1);
	log_info("tap_full", "x");
	assert_int_equal(c.n, LOGGER_TAPS_MAX);
	logger_tap_remove(ids[1]);
	int again = logger_tap_add(capture_line, &c); /* a freed slot is reused */
	assert_true(again >= 0);
	logger_tap_remove(again);
	for (int i = 0; i < LOGGER_TAPS_MAX; i++)
		logger_tap_remove(ids[i]);
	c.n = 0;
	log_info("tap_full", "none left");
	assert_int_equal(c.n, 0);
}

static atomic_int stop_writers;
static atomic_long counted;

static void count_line(const char *line, size_t len, void *arg)
{
	atomic_fetch_add(&counted, 1);
}

static void *log_forever(void *arg)
{
	while (!atomic_load(&stop_writers))
		logger_write_fields_buffered(LOGGER_INFO, "tap_race", "\"n\":1");
	return NULL;
}

static void add_remove_while_logging(void **state)
{
	FILE *saved = stderr;
	stderr = fopen("/dev/null", "w"); /* the lines themselves are of no interest */
	assert_non_null(stderr);
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_forever, NULL), 0);
	for (int i = 0; i < 2000; i++) {
		int id = logger_tap_add(count_line, NULL);
		assert_true(id >= 0);
		logger_tap_remove(id);
	}
	long after = atomic_load(&counted);
	for (volatile int spin = 0; spin < 1000000; spin++)
		;
	assert_int_equal(atomic_load(&counted), after); /* removed means not called */
	atomic_store(&stop_writers, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	fclose(stderr);
	stderr = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tap_sees_each_json_line),  cmocka_unit_test(tap_sees_text_lines),
	    cmocka_unit_test(every_tap_runs),           cmocka_unit_test(slots_run_out),
	    cmocka_unit_test(add_remove_while_logging),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
