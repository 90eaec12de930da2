/*
 * test_ledger_accounts: the operators' reads of the books (ledger_service_accounts and
 * ledger_service_account_entries): argument checks before the repository is asked, the
 * keyset walk handed through, and the repository's answers mapped (an unknown cursor
 * account is a bad cursor, an unknown account is not found).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/ledger_service.h"

#define ACCOUNT "00000000-0000-4000-8000-000000000901"
#define OTHER   "00000000-0000-4000-8000-000000000999"

/* Accounts 901..906 in the operators' order; entries 1..12 all on ACCOUNT. */
struct fake_books {
	int calls;
	int last_limit;
	char last_after[64];
	char last_account[64];
	int64_t last_before;
	enum hex_status fail;
};

static void account_id(int n, char out[HEX_ID_LEN + 1])
{
	snprintf(out, HEX_ID_LEN + 1, "00000000-0000-4000-8000-%012d", 900 + n);
}

static enum hex_status fake_accounts(void *self, int limit, const char *after_id,
                                     struct ledger_account_page *out)
{
	struct fake_books *b = self;
	b->calls++;
	b->last_limit = limit;
	snprintf(b->last_after, sizeof b->last_after, "%s", after_id);
	if (b->fail != HEX_OK)
		return b->fail;
	int start = 1;
	if (after_id[0] != '\0') {
		start = 0;
		for (int n = 1; n <= 6; n++) {
			char id[HEX_ID_LEN + 1];
			account_id(n, id);
			if (strcmp(id, after_id) == 0)
				start = n + 1;
		}
		if (start == 0)
			return HEX_NOT_FOUND;
	}
	for (int n = start; n <= 6; n++) {
		if (out->count == limit) {
			out->has_more = true;
			break;
		}
		struct ledger_account *a = &out->items[out->count++];
		account_id(n, a->id);
		a->ref.kind = n <= 2 ? LEDGER_STRIPE_CLEARING : LEDGER_WALLET;
		a->balance = n * 100;
	}
	return HEX_OK;
}

static enum hex_status fake_account_entries(void *self, const char *account, int limit,
                                            int64_t before_id, struct ledger_entry_page *out)
{
	struct fake_books *b = self;
	b->calls++;
	b->last_limit = limit;
	b->last_before = before_id;
	snprintf(b->last_account, sizeof b->last_account, "%s", account);
	if (b->fail != HEX_OK)
		return b->fail;
	if (strcmp(account, ACCOUNT) != 0)
		return HEX_NOT_FOUND;
	for (int64_t id = before_id == 0 ? 12 : before_id - 1; id >= 1; id--) {
		if (out->count == limit) {
			out->has_more = true;
			break;
		}
		out->items[out->count].id = id;
		out->items[out->count].amount = id;
		out->count++;
	}
	return HEX_OK;
}

static const struct ledger_repo_ops fake_ops = {.accounts = fake_accounts,
                                                .account_entries = fake_account_entries};

struct fixture {
	struct fake_books books;
	struct ledger_service svc;
	struct ledger_account_page accounts;
	struct ledger_entry_page entries;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof *f);
	f->svc.repo = (struct ledger_repo){&fake_ops, &f->books};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	test_free(*state);
	return 0;
}

static void test_accounts_walk_page_by_page(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	assert_int_equal(ledger_service_accounts(&f->svc, 4, NULL, &f->accounts, &err), HEX_OK);
	assert_int_equal(f->accounts.count, 4);
	assert_true(f->accounts.has_more);
	assert_string_equal(f->books.last_after, "");
	char last[HEX_ID_LEN + 1];
	memcpy(last, f->accounts.items[3].id, sizeof last);
	assert_int_equal(ledger_service_accounts(&f->svc, 4, last, &f->accounts, &err), HEX_OK);
	assert_int_equal(f->accounts.count, 2);
	assert_false(f->accounts.has_more);
	assert_string_equal(f->books.last_after, last);
	assert_int_equal(f->accounts.items[1].balance, 600);
}

static void test_accounts_argument_errors(void **state)
{
	struct fixture *f = *state;
	const int bad_limits[] = {0, -5, HEX_LIST_MAX + 1};
	for (size_t i = 0; i < 3; i++) {
		struct hex_err err = {0};
		assert_int_equal(
		    ledger_service_accounts(&f->svc, bad_limits[i], "", &f->accounts, &err),
		    HEX_INVALID);
		assert_string_equal(err.field, "limit");
	}
	struct hex_err err = {0};
	assert_int_equal(ledger_service_accounts(&f->svc, 5, "not-an-id", &f->accounts, &err),
	                 HEX_INVALID);
	assert_string_equal(err.field, "cursor");
	assert_int_equal(f->books.calls, 0);

	/* A well-formed id of no account: a cursor we never made. */
	err = (struct hex_err){0};
	assert_int_equal(ledger_service_accounts(&f->svc, 5, OTHER, &f->accounts, &err),
	                 HEX_INVALID);
	assert_string_equal(err.field, "cursor");
	assert_int_equal(f->accounts.count, 0);
}

static void test_accounts_store_failures(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	f->books.fail = HEX_UNAVAILABLE;
	assert_int_equal(ledger_service_accounts(&f->svc, 5, "", &f->accounts, &err),
	                 HEX_UNAVAILABLE);
	f->books.fail = HEX_INVALID;
	assert_int_equal(ledger_service_accounts(&f->svc, 5, "", &f->accounts, &err), HEX_INTERNAL);
}

static void test_entries_of_one_account_newest_first(void **state)
{
	struct fixture *f = *state;
	struct hex_err err = {0};
	assert_int_equal(ledger_service_account_entries(&f->svc, ACCOUNT, 5, 0, &f->entries, &err),
	                 HEX_OK);
	assert_int_equal(f->entries.count, 5);
	assert_true(f->entries.has_more);
	assert_int_equal(f->entries.items[0].id, 12);
	assert_int_equal(f->entries.items[4].id, 8);
	assert_int_equal(
	    ledger_service_account_entries(&f->svc, ACCOUNT, 100, 8, &f->entries, &err), HEX_OK);
	assert_int_equal(f->entries.count, 7);
	assert_false(f->entries.has_more);
	assert_int_equal(f->books.last_before, 8);
	assert_int_equal(f->entries.items[6].id, 1);
}

static void test_entries_argument_errors_and_unknown_account(void **state)
{
	struct fixture *f = *state;
	const char *bad_ids[] = {NULL, "", "901", ACCOUNT "x"};
	for (size_t i = 0; i < 4; i++) {
		struct hex_err err = {0};
		assert_int_equal(
		    ledger_service_account_entries(&f->svc, bad_ids[i], 5, 0, &f->entries, &err),
		    HEX_INVALID);
		assert_string_equal(err.field, "account_id");
	}
	struct hex_err err = {0};
	assert_int_equal(ledger_service_account_entries(&f->svc, ACCOUNT, 0, 0, &f->entries, &err),
	                 HEX_INVALID);
	assert_string_equal(err.field, "limit");
	assert_int_equal(ledger_service_account_entries(&f->svc, ACCOUNT, 5, -1, &f->entries, &err),
	                 HEX_INVALID);
	assert_string_equal(err.field, "cursor");
	assert_int_equal(f->books.calls, 0);

	err = (struct hex_err){0};
	assert_int_equal(ledger_service_account_entries(&f->svc, OTHER, 5, 0, &f->entries, &err),
	                 HEX_NOT_FOUND);
	assert_string_equal(err.message, "account not found");
	f->books.fail = HEX_UNAVAILABLE;
	assert_int_equal(ledger_service_account_entries(&f->svc, ACCOUNT, 5, 0, &f->entries, &err),
	                 HEX_UNAVAILABLE);
	assert_int_equal(f->entries.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_accounts_walk_page_by_page, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_accounts_argument_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_accounts_store_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entries_of_one_account_newest_first, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_entries_argument_errors_and_unknown_account, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
