/*
 * test_admin_logq: the bounded queue between threads that log and the admin loop: lines
 * come out in order and intact, the reader is woken once per batch, a full queue drops
 * and counts instead of growing, and under concurrent writers no line is lost without
 * being counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "adapters/admin/admin_logq.h"

static int count_lines(struct admin_log_line *l)
{
	int n = 0;
	for (; l != NULL; l = l->next)
		n++;
	return n;
}

static void lines_come_out_in_order(void **state)
{
	struct admin_logq *q = admin_logq_new(10);
	assert_true(admin_logq_push(q, "one", 3));
	assert_false(admin_logq_push(q, "two\"x", 5));         /* already woken */
	assert_false(admin_logq_push(q, "three and more", 5)); /* only len bytes */
	uint64_t dropped = 99;
	struct admin_log_line *l = admin_logq_take(q, &dropped);
	assert_int_equal(dropped, 0);
	assert_int_equal(count_lines(l), 3);
	assert_string_equal(l->text, "one");
	assert_int_equal(l->len, 3);
	assert_string_equal(l->next->text, "two\"x");
	assert_string_equal(l->next->next->text, "three");
	assert_int_equal(l->next->next->len, 5);
	admin_logq_lines_free(l);
	/* emptied: the next line wakes the reader again */
	assert_null(admin_logq_take(q, &dropped));
	assert_true(admin_logq_push(q, "four", 4));
	admin_logq_free(q); /* frees the queued line (ASan) */
}

static void full_queue_drops_and_counts(void **state)
{
	struct admin_logq *q = admin_logq_new(3);
	char line[16];
	for (int i = 0; i < 10; i++) {
		int n = snprintf(line, sizeof line, "line %d", i);
		admin_logq_push(q, line, (size_t)n);
	}
	uint64_t dropped = 0;
	struct admin_log_line *l = admin_logq_take(q, &dropped);
	assert_int_equal(count_lines(l), 3);
	assert_int_equal(dropped, 7);
	assert_string_equal(l->text, "line 0"); /* the oldest are kept, the newest dropped */
	assert_string_equal(l->next->next->text, "line 2");
	admin_logq_lines_free(l);
	/* the count starts again after a take */
	assert_true(admin_logq_push(q, "x", 1));
	l = admin_logq_take(q, &dropped);
	assert_int_equal(dropped, 0);
	assert_int_equal(count_lines(l), 1);
	admin_logq_lines_free(l);
	admin_logq_free(q);
}

static void empty_line_is_a_line(void **state)
{
	struct admin_logq *q = admin_logq_new(1);
	assert_true(admin_logq_push(q, "", 0));
	uint64_t dropped;
	struct admin_log_line *l = admin_logq_take(q, &dropped);
	assert_non_null(l);
	assert_int_equal(l->len, 0);
	assert_string_equal(l->text, "");
	admin_logq_lines_free(l);
	admin_logq_free(q);
	admin_logq_free(NULL);
}

#define WRITERS    4
#define PER_WRITER 20000

struct writer {
	struct admin_logq *q;
	int id;
};

static void *write_lines(void *arg)
{
	struct writer *w = arg;
	char line[32];
	for (int i = 0; i < PER_WRITER; i++) {
		int n = snprintf(line, sizeof line, "w%d %d", w->id, i);
		admin_logq_push(w->q, line, (size_t)n);
	}
	return NULL;
}

static void concurrent_writers_lose_nothing_uncounted(void **state)
{
	struct admin_logq *q = admin_logq_new(100);
	pthread_t t[WRITERS];
	struct writer w[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){q, i};
		assert_int_equal(pthread_create(&t[i], NULL, write_lines, &w[i]), 0);
	}
	uint64_t taken = 0, dropped_total = 0;
	int last_seen[WRITERS];
	for (int i = 0; i < WRITERS; i++)
		last_seen[i] = -1;
	for (int rounds = 0; taken + dropped_total < (uint64_t)WRITERS * PER_WRITER; rounds++) {
		uint64_t dropped;
		struct admin_log_line *l = admin_logq_take(q, &dropped);
		dropped_total += dropped;
		for (struct admin_log_line *p = l; p != NULL; p = p->next) {
			int id, seq;
			assert_int_equal(sscanf(p->text, "w%d %d", &id, &seq), 2);
			assert_true(seq > last_seen[id]); /* each writer's lines stay in order */
			last_seen[id] = seq;
			taken++;
		}
		admin_logq_lines_free(l);
		assert_true(rounds < 100000000);
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	uint64_t dropped;
	assert_null(admin_logq_take(q, &dropped));
	assert_int_equal(dropped, 0);
	assert_int_equal(taken + dropped_total, (uint64_t)WRITERS * PER_WRITER);
	admin_logq_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lines_come_out_in_order),
	    cmocka_unit_test(full_queue_drops_and_counts),
	    cmocka_unit_test(empty_line_is_a_line),
	    cmocka_unit_test(concurrent_writers_lose_nothing_uncounted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
