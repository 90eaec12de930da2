/*
 * test_audit_service: the operators' audit trail: what a row holds (operator, verb, args
 * made readable and cut to fit, outcome), what is refused before the store is asked,
 * and how store failures and list arguments are answered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/audit_service.h"
#include "support/fake_admin.h"
#include "support/fakes.h"

struct fixture {
	struct fake_audit_repo repo;
	struct fake_clock clock;
	struct audit_service svc;
	struct audit_page page;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof *f);
	f->clock.now_us = FAKE_T0_S * 1000000;
	f->svc = (struct audit_service){.repo = fake_audit_repo_port(&f->repo),
	                                .clock = fake_clock_port(&f->clock)};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	test_free(*state);
	return 0;
}

static void test_records_who_what_when_and_outcome(void **state)
{
	struct fixture *f = *state;
	struct audit_entry out;
	struct hex_err err = {0};
	assert_int_equal(
	    audit_service_record(&f->svc, "alice@ops", "DLQ REPLAY", "42", true, NULL, &out, &err),
	    HEX_OK);
	assert_int_equal(f->repo.count, 1);
	const struct audit_entry *row = &f->repo.rows[0];
	assert_string_equal(row->operator_name, "alice@ops");
	assert_string_equal(row->verb, "DLQ REPLAY");
	assert_string_equal(row->args, "42");
	assert_true(row->ok);
	assert_string_equal(row->error, "");
	assert_int_equal(row->at_us, FAKE_T0_S * 1000000);
	/* out is the row as stored, with the store's id. */
	assert_int_equal(out.id, 1);
	assert_memory_equal(&out.args, row->args, sizeof out.args);

	fake_clock_advance_s(&f->clock, 5);
	assert_int_equal(audit_service_record(&f->svc, "bob", "CACHE FLUSH", NULL, false,
	                                      "the cache is unavailable", NULL, &err),
	                 HEX_OK);
	row = &f->repo.rows[1];
	assert_false(row->ok);
	assert_string_equal(row->args, "");
	assert_string_equal(row->error, "the cache is unavailable");
	assert_int_equal(row->at_us, (FAKE_T0_S + 5) * 1000000);
}

static void test_a_failure_always_says_something_and_a_success_nothing(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	assert_int_equal(
	    audit_service_record(&f->svc, "op", "DLQ DISCARD", "1", false, "", NULL, &err), HEX_OK);
	assert_int_equal(
	    audit_service_record(&f->svc, "op", "DLQ DISCARD", "1", false, NULL, NULL, &err),
	    HEX_OK);
	assert_int_equal(audit_service_record(&f->svc, "op", "DLQ DISCARD", "1", true,
	                                      "ignored on success", NULL, &err),
	                 HEX_OK);
	assert_string_equal(f->repo.rows[0].error, "failed");
	assert_string_equal(f->repo.rows[1].error, "failed");
	assert_string_equal(f->repo.rows[2].error, "");
}

static void test_bad_operator_or_verb_is_refused_before_the_store(void **state)
{
	struct fixture *f = *state;
	char long_name[AUDIT_OPERATOR_MAX + 2];
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	const char *bad_operators[] = {NULL, "", "al ice", "al\"ice", "ops;drop", "é", long_name};
	for (size_t i = 0; i < sizeof bad_operators / sizeof bad_operators[0]; i++) {
		struct hex_err err = {0};
		assert_int_equal(audit_service_record(&f->svc, bad_operators[i], "PING", NULL, true,
		                                      NULL, NULL, &err),
		                 HEX_INVALID);
		assert_string_equal(err.field, "operator");
		assert_false(audit_operator_valid(bad_operators[i]));
	}
	long_name[AUDIT_OPERATOR_MAX] = '\0';
	assert_true(audit_operator_valid(long_name));
	assert_true(audit_operator_valid("A-z.0_9@x"));

	char long_verb[AUDIT_VERB_MAX + 2];
	memset(long_verb, 'V', sizeof long_verb - 1);
	long_verb[sizeof long_verb - 1] = '\0';
	const char *bad_verbs[] = {NULL, "", "DLQ\nREPLAY", long_verb};
	for (size_t i = 0; i < sizeof bad_verbs / sizeof bad_verbs[0]; i++) {
		struct hex_err err = {0};
		assert_int_equal(
		    audit_service_record(&f->svc, "op", bad_verbs[i], NULL, true, NULL, NULL, &err),
		    HEX_INVALID);
		assert_string_equal(err.field, "verb");
	}
	assert_int_equal(f->repo.appends, 0);
}

static void test_args_are_made_readable(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	/* Control characters and bytes that are no UTF-8 become '?'; real UTF-8 stays. */
	assert_int_equal(
	    audit_service_record(&f->svc, "op", "DLQ DISCARD",
	                         "1 caf\xc3\xa9\tok\x7f \xff\xc3 \xed\xa0\x80 \xe2\x82\xac", true,
	                         NULL, NULL, &err),
	    HEX_OK);
	assert_string_equal(f->repo.rows[0].args, "1 caf\xc3\xa9?ok? ?? ??? \xe2\x82\xac");
	/* Overlong forms are not UTF-8 either. */
	assert_int_equal(audit_service_record(&f->svc, "op", "X", "\xc0\xaf\xe0\x80\xaf", false,
	                                      "bad\x01", NULL, &err),
	                 HEX_OK);
	assert_string_equal(f->repo.rows[1].args, "?????");
	assert_string_equal(f->repo.rows[1].error, "bad?");
}

static void test_long_args_are_cut_with_a_mark_never_inside_a_character(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	/* Exactly what fits stays whole. */
	char fits[AUDIT_ARGS_MAX + 1];
	memset(fits, 'x', AUDIT_ARGS_MAX);
	fits[AUDIT_ARGS_MAX] = '\0';
	assert_int_equal(audit_service_record(&f->svc, "op", "X", fits, true, NULL, NULL, &err),
	                 HEX_OK);
	assert_string_equal(f->repo.rows[0].args, fits);

	/* One more is cut to AUDIT_ARGS_MAX - 3 and marked. */
	char over[AUDIT_ARGS_MAX + 2];
	memset(over, 'y', AUDIT_ARGS_MAX + 1);
	over[AUDIT_ARGS_MAX + 1] = '\0';
	assert_int_equal(audit_service_record(&f->svc, "op", "X", over, true, NULL, NULL, &err),
	                 HEX_OK);
	const char *args = f->repo.rows[1].args;
	assert_int_equal(strlen(args), AUDIT_ARGS_MAX);
	assert_memory_equal(args + AUDIT_ARGS_MAX - 3, "...", 3);
	assert_int_equal(args[AUDIT_ARGS_MAX - 4], 'y');

	/* Three-byte characters: the cut falls on a character boundary. */
	char euros[3 * 400 + 1];
	for (int i = 0; i < 400; i++)
		memcpy(euros + 3 * i, "\xe2\x82\xac", 3);
	euros[3 * 400] = '\0';
	assert_int_equal(audit_service_record(&f->svc, "op", "X", euros, true, NULL, NULL, &err),
	                 HEX_OK);
	args = f->repo.rows[2].args;
	size_t len = strlen(args);
	assert_true(len <= AUDIT_ARGS_MAX);
	assert_memory_equal(args + len - 3, "...", 3);
	assert_int_equal((len - 3) % 3, 0);
	assert_int_equal(len - 3, 3 * ((AUDIT_ARGS_MAX - 3) / 3));

	/* The error is cut the same way. */
	char long_error[400];
	memset(long_error, 'e', sizeof long_error - 1);
	long_error[sizeof long_error - 1] = '\0';
	assert_int_equal(
	    audit_service_record(&f->svc, "op", "X", "", false, long_error, NULL, &err), HEX_OK);
	assert_int_equal(strlen(f->repo.rows[3].error), AUDIT_ERROR_MAX);
	assert_memory_equal(f->repo.rows[3].error + AUDIT_ERROR_MAX - 3, "...", 3);
}

static void test_store_failures_are_mapped(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	f->repo.fail_next = HEX_UNAVAILABLE;
	assert_int_equal(audit_service_record(&f->svc, "op", "X", "", true, NULL, NULL, &err),
	                 HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the database is unavailable");
	f->repo.fail_next = HEX_CONFLICT;
	assert_int_equal(audit_service_record(&f->svc, "op", "X", "", true, NULL, NULL, &err),
	                 HEX_INTERNAL);
	assert_int_equal(f->repo.count, 0);
	f->repo.fail_next = HEX_UNAVAILABLE;
	assert_int_equal(audit_service_list(&f->svc, 5, 0, &f->page, &err), HEX_UNAVAILABLE);
}

static void test_list_checks_its_arguments_then_pages(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    audit_service_record(&f->svc, "op", "X", "", true, NULL, NULL, &err), HEX_OK);
	const int bad_limits[] = {0, -1, HEX_LIST_MAX + 1};
	for (size_t i = 0; i < 3; i++) {
		err = (struct hex_err){0};
		assert_int_equal(audit_service_list(&f->svc, bad_limits[i], 0, &f->page, &err),
		                 HEX_INVALID);
		assert_string_equal(err.field, "limit");
	}
	assert_int_equal(audit_service_list(&f->svc, 5, -1, &f->page, &err), HEX_INVALID);
	assert_string_equal(err.field, "cursor");
	assert_int_equal(f->repo.lists, 0);

	assert_int_equal(audit_service_list(&f->svc, 2, 0, &f->page, &err), HEX_OK);
	assert_int_equal(f->page.count, 2);
	assert_true(f->page.has_more);
	assert_int_equal(f->page.items[0].id, 5);
	assert_int_equal(f->page.items[1].id, 4);
	assert_int_equal(audit_service_list(&f->svc, 100, 4, &f->page, &err), HEX_OK);
	assert_int_equal(f->page.count, 3);
	assert_false(f->page.has_more);
	assert_int_equal(f->repo.last_before, 4);
	assert_int_equal(f->repo.last_limit, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_records_who_what_when_and_outcome, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_failure_always_says_something_and_a_success_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_operator_or_verb_is_refused_before_the_store,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_args_are_made_readable, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_long_args_are_cut_with_a_mark_never_inside_a_character, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_failures_are_mapped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_checks_its_arguments_then_pages, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
