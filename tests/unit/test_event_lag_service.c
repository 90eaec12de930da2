/*
 * test_event_lag_service: the pipeline's backlog as EVENTS LAG and STATS show it: the
 * outbox and the open dead letters from the database, each payment consumer's numbers
 * from the stream, and what happens without Redis, with Redis down or the database down.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/event_lag_service.h"
#include "core/payment_consumers.h"
#include "support/fake_events.h"

#define S(n) ((int64_t)(n)*1000000)

struct fixture {
	struct fake_log log;
	struct fake_clock clock;
	struct fake_outbox outbox;
	struct fake_dead_letter_repo dead;
	struct fake_stream stream;
	struct event_lag_service svc;
	struct event_lag lag;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof *f);
	f->clock.now_us = S(FAKE_T0_S);
	f->svc = (struct event_lag_service){
	    .outbox = fake_outbox_port(&f->outbox, &f->log),
	    .dead = fake_dead_letter_repo_port(&f->dead, &f->log),
	    .stream = fake_stream_port(&f->stream, &f->log),
	    .clock = fake_clock_port(&f->clock),
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	test_free(*state);
	return 0;
}

/* Two rows waiting (the older due 30 s ago, the other not due yet), one published, two
 * dead letters of which one is resolved. */
static void backlog(struct fixture *f)
{
	int64_t now = f->clock.now_us;
	fake_outbox_add(&f->outbox, "evt_1", "", 1, "{}", now - S(30));
	fake_outbox_add(&f->outbox, "evt_2", "ledger", 2, "{}", now + S(60));
	int64_t done = fake_outbox_add(&f->outbox, "evt_3", "", 1, "{}", now - S(90));
	f->outbox.rows[done - 1].published = true;
	fake_dead_letter_repo_add(&f->dead, "ledger", "evt_9", 1, "no payment", "{}", now);
	int64_t closed = fake_dead_letter_repo_add(&f->dead, "ledger", "evt_8", 1, "x", "{}", now);
	f->dead.rows[closed - 1].status = DEAD_LETTER_DISCARDED;
}

static void test_backlog_from_the_database(void **state)
{
	struct fixture *f = *state;
	backlog(f);
	struct hex_err err = {0};
	assert_int_equal(event_lag_service_read(&f->svc, false, &f->lag, &err), HEX_OK);
	assert_int_equal(f->lag.outbox_unpublished, 2);
	assert_int_equal(f->lag.oldest_unpublished_us, S(30));
	assert_int_equal(f->lag.dead_letters_open, 1);
	/* Without consumers the stream is not asked at all (STATS must stay cheap). */
	assert_int_equal(f->lag.nconsumers, 0);
	assert_int_equal(fake_calls(&f->stream.base, "stats"), 0);
}

static void test_every_payment_consumer_from_the_stream(void **state)
{
	struct fixture *f = *state;
	backlog(f);
	/* Two entries on the stream, one of them delivered and not acknowledged. */
	fake_stream_push(&f->stream, false, "1-0", "evt_1", 1, "{}");
	fake_stream_push(&f->stream, false, "2-0", "evt_2", 1, "{}");
	f->stream.fresh_next = 1;
	struct hex_err err = {0};
	assert_int_equal(event_lag_service_read(&f->svc, true, &f->lag, &err), HEX_OK);
	assert_int_equal(f->lag.nconsumers, payment_consumer_count);
	assert_true(payment_consumer_count >= 3);
	for (int i = 0; i < payment_consumer_count; i++) {
		assert_string_equal(f->lag.consumers[i].name, payment_consumer_defs[i].name);
		assert_true(f->lag.consumers[i].known);
		assert_int_equal(f->lag.consumers[i].pending, 1);
		assert_int_equal(f->lag.consumers[i].lag, 1);
	}
	assert_string_equal(f->lag.consumers[0].name, "ledger");
	assert_int_equal(fake_calls(&f->stream.base, "stats"), payment_consumer_count);
	assert_string_equal(f->lag.consumers[1].name, "membership");
}

static void test_no_redis_or_redis_down_leaves_consumers_unknown(void **state)
{
	struct fixture *f = *state;
	backlog(f);
	struct hex_err err = {0};
	f->svc.stream = (struct event_stream){0};
	assert_int_equal(event_lag_service_read(&f->svc, true, &f->lag, &err), HEX_OK);
	assert_int_equal(f->lag.nconsumers, payment_consumer_count);
	for (int i = 0; i < f->lag.nconsumers; i++) {
		assert_false(f->lag.consumers[i].known);
		assert_int_equal(f->lag.consumers[i].lag, -1);
		assert_string_equal(f->lag.consumers[i].name, payment_consumer_defs[i].name);
	}
	assert_int_equal(f->lag.outbox_unpublished, 2);

	/* Redis fails for the first consumer only: the others still report. */
	f->svc.stream = fake_stream_port(&f->stream, &f->log);
	fake_fail_next(&f->stream.base, "stats", HEX_UNAVAILABLE);
	assert_int_equal(event_lag_service_read(&f->svc, true, &f->lag, &err), HEX_OK);
	assert_false(f->lag.consumers[0].known);
	assert_true(f->lag.consumers[1].known);
	assert_int_equal(f->lag.dead_letters_open, 1);
}

static void test_database_down_is_unavailable(void **state)
{
	struct fixture *f = *state;
	backlog(f);
	struct hex_err err = {0};
	fake_fail_next(&f->outbox.base, "lag", HEX_UNAVAILABLE);
	assert_int_equal(event_lag_service_read(&f->svc, true, &f->lag, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the database is unavailable");
	assert_int_equal(f->lag.outbox_unpublished, 0);
	assert_int_equal(f->lag.nconsumers, 0);

	fake_fail_next(&f->dead.base, "count_open", HEX_INTERNAL);
	err = (struct hex_err){0};
	assert_int_equal(event_lag_service_read(&f->svc, false, &f->lag, &err), HEX_INTERNAL);
	assert_int_equal(f->lag.outbox_unpublished, 0);
	assert_int_equal(f->lag.dead_letters_open, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_backlog_from_the_database, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_payment_consumer_from_the_stream, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_no_redis_or_redis_down_leaves_consumers_unknown,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_database_down_is_unavailable, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
