/*
 * test_payment_admin: the operators' reads of payments: PAYMENTS STUCK asks for what was
 * made more than PAYMENT_STUCK_AFTER_S ago by the service's clock, PAYMENTS SHOW's events
 * are asked by the payment's id as stored; bad arguments never reach the repository.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/payment_service.h"
#include "support/fakes.h"

#define PAYMENT       "0000000a-0000-4000-8000-00000000000b"
#define PAYMENT_UPPER "0000000A-0000-4000-8000-00000000000B"

struct fake_repo {
	int stuck_calls, events_calls;
	int64_t last_before;
	int last_limit;
	char last_id[64];
	enum hex_status fail;
};

static enum hex_status fake_stuck(void *self, int64_t created_before_us, int limit,
                                  struct payment_page *out)
{
	struct fake_repo *r = self;
	r->stuck_calls++;
	r->last_before = created_before_us;
	r->last_limit = limit;
	if (r->fail != HEX_OK)
		return r->fail;
	out->count = 1;
	out->has_more = true;
	snprintf(out->items[0].id, sizeof out->items[0].id, "%s", PAYMENT);
	return HEX_OK;
}

static enum hex_status fake_events(void *self, const char *payment_id,
                                   struct payment_event_list *out)
{
	struct fake_repo *r = self;
	r->events_calls++;
	snprintf(r->last_id, sizeof r->last_id, "%s", payment_id);
	if (r->fail != HEX_OK)
		return r->fail;
	out->count = 2;
	snprintf(out->items[0].id, sizeof out->items[0].id, "evt_1");
	snprintf(out->items[1].id, sizeof out->items[1].id, "evt_2");
	return HEX_OK;
}

static const struct payment_repo_ops fake_ops = {.stuck = fake_stuck, .events = fake_events};

struct fixture {
	struct fake_repo repo;
	struct fake_clock clock;
	struct payment_service svc;
	struct payment_page page;
	struct payment_event_list events;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof *f);
	f->clock.now_us = FAKE_T0_S * INT64_C(1000000);
	f->svc.repo = (struct payment_repo){&fake_ops, &f->repo};
	f->svc.clock = fake_clock_port(&f->clock);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	test_free(*state);
	return 0;
}

static void test_stuck_means_unsettled_five_minutes_after_creation(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	assert_int_equal(payment_service_stuck(&f->svc, 7, &f->page, &err), HEX_OK);
	assert_int_equal(f->repo.last_before, (FAKE_T0_S - 300) * INT64_C(1000000));
	assert_int_equal(f->repo.last_limit, 7);
	assert_int_equal(f->page.count, 1);
	assert_true(f->page.has_more);
	fake_clock_advance_s(&f->clock, 60);
	assert_int_equal(payment_service_stuck(&f->svc, 1, &f->page, &err), HEX_OK);
	assert_int_equal(f->repo.last_before, (FAKE_T0_S - 240) * INT64_C(1000000));

	/* What counts as unsettled. */
	assert_true(payment_status_unsettled(PAYMENT_REQUIRES_PAYMENT_METHOD));
	assert_true(payment_status_unsettled(PAYMENT_PROCESSING));
	assert_false(payment_status_unsettled(PAYMENT_FAILED));
	assert_false(payment_status_unsettled(PAYMENT_SUCCEEDED));
	assert_false(payment_status_unsettled(PAYMENT_REFUNDED));
}

static void test_stuck_limit_and_failures(void **state)
{
	struct fixture *f = *state;
	const int bad[] = {0, -1, HEX_LIST_MAX + 1};
	for (size_t i = 0; i < 3; i++) {
		struct hex_err err = {0};
		f->page.count = 9;
		assert_int_equal(payment_service_stuck(&f->svc, bad[i], &f->page, &err),
		                 HEX_INVALID);
		assert_string_equal(err.field, "limit");
		assert_int_equal(f->page.count, 0);
	}
	assert_int_equal(f->repo.stuck_calls, 0);
	struct hex_err err = {0};
	f->repo.fail = HEX_UNAVAILABLE;
	assert_int_equal(payment_service_stuck(&f->svc, 5, &f->page, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the database is unavailable");
}

static void test_events_by_the_id_as_stored(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	assert_int_equal(payment_service_events(&f->svc, PAYMENT_UPPER, &f->events, &err), HEX_OK);
	assert_string_equal(f->repo.last_id, PAYMENT);
	assert_int_equal(f->events.count, 2);
	assert_string_equal(f->events.items[1].id, "evt_2");
}

static void test_events_bad_id_and_failures(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {"", "x", PAYMENT "0", "0000000a-0000-4000-8000-00000000000g"};
	for (size_t i = 0; i < 4; i++) {
		struct hex_err err = {0};
		assert_int_equal(payment_service_events(&f->svc, bad[i], &f->events, &err),
		                 HEX_NOT_FOUND);
		assert_string_equal(err.message, "payment not found");
	}
	assert_int_equal(f->repo.events_calls, 0);
	struct hex_err err = {0};
	f->repo.fail = HEX_CONFLICT;
	assert_int_equal(payment_service_events(&f->svc, PAYMENT, &f->events, &err), HEX_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stuck_means_unsettled_five_minutes_after_creation,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stuck_limit_and_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_by_the_id_as_stored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_bad_id_and_failures, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
