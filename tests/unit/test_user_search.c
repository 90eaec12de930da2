/*
 * test_user_search: user_service_list with email_contains (an operator's search by part
 * of an email) and newest_first (the admin port's order): what is refused before the
 * repository is asked, what is found, and that a cursor walks newest first to the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "support/fakes.h"

static int setup(void **state)
{
	struct fake_world *w = fake_world_new();
	const char *emails[] = {"ann@example.com", "bob@example.org", "anna@shop.example.com",
	                        "carl@example.com", "joanne@example.net"};
	for (size_t i = 0; i < sizeof emails / sizeof emails[0]; i++) {
		struct user u;
		struct hex_err err = {0};
		assert_int_equal(user_service_create(&w->users, emails[i], "password-1", &u, &err),
		                 HEX_OK);
		fake_clock_advance_s(&w->clock, 10);
	}
	fake_world_reset_calls(w);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	fake_world_free(*state);
	return 0;
}

static void emails_of(const struct user_page *p, char *out, size_t n)
{
	out[0] = '\0';
	for (int i = 0; i < p->count; i++) {
		size_t len = strlen(out);
		snprintf(out + len, n - len, "%s%s", i > 0 ? " " : "", p->items[i].email);
	}
}

static void test_search_is_a_case_insensitive_substring(void **state)
{
	struct fake_world *w = *state;
	struct user_page page;
	char got[512];
	struct hex_err err = {0};
	struct user_filter f = {.membership = -1, .limit = 20, .email_contains = "ANN"};
	assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_OK);
	emails_of(&page, got, sizeof got);
	assert_string_equal(got, "ann@example.com anna@shop.example.com joanne@example.net");

	f.newest_first = true;
	assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_OK);
	emails_of(&page, got, sizeof got);
	assert_string_equal(got, "joanne@example.net anna@shop.example.com ann@example.com");

	f.email_contains = "example.org";
	assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_OK);
	emails_of(&page, got, sizeof got);
	assert_string_equal(got, "bob@example.org");

	f.email_contains = "nobody";
	assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_OK);
	assert_int_equal(page.count, 0);
	assert_false(page.has_more);
}

static void test_newest_first_walks_back_with_the_cursor(void **state)
{
	struct fake_world *w = *state;
	struct user_page page;
	char got[512];
	struct hex_err err = {0};
	struct user_cursor after;
	struct user_filter f = {.membership = -1, .limit = 2, .newest_first = true};
	char all[512] = "";
	do {
		assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_OK);
		emails_of(&page, got, sizeof got);
		size_t len = strlen(all);
		snprintf(all + len, sizeof all - len, "%s%s", len > 0 ? " | " : "", got);
		if (page.count > 0) {
			after.created_at_us = page.items[page.count - 1].created_at_us;
			memcpy(after.id, page.items[page.count - 1].id, sizeof after.id);
			f.after = &after;
		}
	} while (page.has_more);
	assert_string_equal(all, "joanne@example.net carl@example.com | anna@shop.example.com "
	                         "bob@example.org | ann@example.com");
	assert_int_equal(fake_calls(&w->repo.base, "list"), 3);
}

static void test_bad_search_text_never_reaches_the_repository(void **state)
{
	struct fake_world *w = *state;
	char too_long[HEX_EMAIL_MAX + 2];
	memset(too_long, 'a', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = '\0';
	const char *bad[] = {"", "a b", "tab\there", "caf\xc3\xa9", "new\nline", too_long};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct user_page page;
		struct hex_err err = {0};
		struct user_filter f = {.membership = -1, .limit = 5, .email_contains = bad[i]};
		assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_INVALID);
		assert_string_equal(err.field, "email_contains");
	}
	/* Part of an email and a whole email at once is a contradiction, not a filter. */
	struct user_page page;
	struct hex_err err = {0};
	struct user_filter f = {
	    .membership = -1, .limit = 5, .email = "ann@example.com", .email_contains = "ann"};
	assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_INVALID);
	assert_string_equal(err.field, "email_contains");
	assert_int_equal(fake_calls(&w->repo.base, "list"), 0);

	/* The longest text that could be part of an email is fine. */
	too_long[HEX_EMAIL_MAX] = '\0';
	f = (struct user_filter){.membership = -1, .limit = 5, .email_contains = too_long};
	assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_OK);
	assert_int_equal(page.count, 0);
}

static void test_search_store_failure(void **state)
{
	struct fake_world *w = *state;
	struct user_page page;
	struct hex_err err = {0};
	fake_fail_next(&w->repo.base, "list", HEX_UNAVAILABLE);
	struct user_filter f = {.membership = -1, .limit = 5, .email_contains = "ann"};
	assert_int_equal(user_service_list(&w->users, &f, &page, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the database is unavailable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_search_is_a_case_insensitive_substring, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_newest_first_walks_back_with_the_cursor, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_search_text_never_reaches_the_repository,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_search_store_failure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
