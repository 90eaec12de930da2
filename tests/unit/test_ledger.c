/* test_ledger: the ledger's pure rules: what a journal transaction may be, account names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/ledger.h"

#define USER_A "00000000-0000-4000-8000-00000000000a"
#define USER_B "00000000-0000-4000-8000-00000000000b"
#define TXN_ID "00000000-0000-4000-8000-0000000000ff"

static struct ledger_txn_request base(void)
{
	struct ledger_txn_request t;
	memset(&t, 0, sizeof t);
	strcpy(t.id, TXN_ID);
	strcpy(t.idempotency_key, "payment:1");
	strcpy(t.reference, "payment:1");
	return t;
}

static void expect_invalid(const struct ledger_txn_request *t, const char *field)
{
	struct hex_err err = {0};
	assert_int_equal(ledger_txn_check(t, &err), HEX_INVALID);
	assert_non_null(err.field);
	assert_string_equal(err.field, field);
	assert_true(strlen(err.message) > 0);
}

static void balanced_two_entries_pass(void **state)
{
	struct ledger_txn_request t = base();
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", -500);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", 500);
	struct hex_err err = {0};
	assert_int_equal(ledger_txn_check(&t, &err), HEX_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.postings[1].account.owner_id, USER_A);
}

static void multi_currency_each_balanced_pass(void **state)
{
	struct ledger_txn_request t = base();
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", -100);
	ledger_txn_add(&t, LEDGER_WALLET, USER_B, "eur", 60);
	ledger_txn_add(&t, LEDGER_WALLET, USER_B, "eur", 40);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "usd", 7);
	ledger_txn_add(&t, LEDGER_REFUNDS, NULL, "usd", -7);
	assert_int_equal(ledger_txn_check(&t, NULL), HEX_OK);
}

static void too_few_or_too_many_entries_fail(void **state)
{
	struct ledger_txn_request t = base();
	expect_invalid(&t, "entries");
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", 0 + 5);
	expect_invalid(&t, "entries");
	t = base();
	for (int i = 0; i < LEDGER_ENTRIES_MAX; i++)
		ledger_txn_add(&t, LEDGER_WALLET, i % 2 ? USER_A : USER_B, "eur", i % 2 ? 1 : -1);
	assert_int_equal(ledger_txn_check(&t, NULL), HEX_OK);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", 1);
	assert_int_equal(t.n, LEDGER_ENTRIES_MAX + 1);
	expect_invalid(&t, "entries");
}

static void unbalanced_fails_also_across_currencies(void **state)
{
	struct ledger_txn_request t = base();
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", -500);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", 499);
	expect_invalid(&t, "entries");
	/* Zero in total, but not per currency. */
	t = base();
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", -500);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "usd", 500);
	expect_invalid(&t, "entries");
}

static void zero_and_huge_amounts_fail(void **state)
{
	struct ledger_txn_request t = base();
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", 0);
	ledger_txn_add(&t, LEDGER_WALLET, USER_B, "eur", 0);
	expect_invalid(&t, "amount");
	t = base();
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", -LEDGER_AMOUNT_MAX - 1);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", LEDGER_AMOUNT_MAX + 1);
	expect_invalid(&t, "amount");
	/* Would overflow a naive sum to zero. */
	t = base();
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", INT64_MIN);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", INT64_MIN);
	expect_invalid(&t, "amount");
	t = base();
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", -LEDGER_AMOUNT_MAX);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", LEDGER_AMOUNT_MAX);
	assert_int_equal(ledger_txn_check(&t, NULL), HEX_OK);
}

static void accounts_must_be_well_named(void **state)
{
	struct ledger_txn_request t = base();
	ledger_txn_add(&t, LEDGER_WALLET, NULL, "eur", -5); /* a wallet without owner */
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", 5);
	expect_invalid(&t, "account");
	t = base();
	ledger_txn_add(&t, LEDGER_MEMBERSHIP_REVENUE, USER_A, "eur", -5); /* system with owner */
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", 5);
	expect_invalid(&t, "account");
	t = base();
	ledger_txn_add(&t, LEDGER_WALLET, "not-a-uuid", "eur", -5);
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", 5);
	expect_invalid(&t, "account");
	t = base();
	ledger_txn_add(&t, (enum ledger_account_kind)LEDGER_KIND_COUNT, NULL, "eur", -5);
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", 5);
	expect_invalid(&t, "account");
	const char *bad[] = {"EUR", "eu", "euro", "", "e1r"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		t = base();
		ledger_txn_add(&t, LEDGER_WALLET, USER_A, bad[i], -5);
		ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, bad[i], 5);
		expect_invalid(&t, "currency");
	}
}

static void ids_keys_and_references_checked(void **state)
{
	struct ledger_txn_request t = base();
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", -5);
	ledger_txn_add(&t, LEDGER_WALLET, USER_A, "eur", 5);
	struct ledger_txn_request u = t;
	u.id[0] = '\0';
	expect_invalid(&u, "id");
	u = t;
	u.idempotency_key[0] = '\0';
	expect_invalid(&u, "idempotency_key");
	u = t;
	strcpy(u.idempotency_key, "has space");
	expect_invalid(&u, "idempotency_key");
	u = t;
	memset(u.idempotency_key, 'k', LEDGER_KEY_MAX);
	assert_int_equal(ledger_txn_check(&u, NULL), HEX_OK);
	u = t;
	u.reference[0] = '\0';
	expect_invalid(&u, "reference");
	u = t;
	strcpy(u.reference, "tab\there");
	expect_invalid(&u, "reference");
}

static void kinds_names_and_negatives(void **state)
{
	const char *names[] = {"wallet", "stripe_clearing", "membership_revenue", "refunds"};
	for (int k = 0; k < LEDGER_KIND_COUNT; k++) {
		enum ledger_account_kind got;
		assert_string_equal(ledger_kind_name((enum ledger_account_kind)k), names[k]);
		assert_true(ledger_kind_parse(names[k], &got));
		assert_int_equal(got, k);
		assert_int_equal(ledger_kind_allows_negative(got), k != LEDGER_WALLET);
	}
	enum ledger_account_kind got = LEDGER_REFUNDS;
	assert_false(ledger_kind_parse("Wallet", &got));
	assert_false(ledger_kind_parse(NULL, &got));
	assert_int_equal(got, LEDGER_REFUNDS);
	assert_string_equal(ledger_kind_name((enum ledger_account_kind)99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(balanced_two_entries_pass),
	    cmocka_unit_test(multi_currency_each_balanced_pass),
	    cmocka_unit_test(too_few_or_too_many_entries_fail),
	    cmocka_unit_test(unbalanced_fails_also_across_currencies),
	    cmocka_unit_test(zero_and_huge_amounts_fail),
	    cmocka_unit_test(accounts_must_be_well_named),
	    cmocka_unit_test(ids_keys_and_references_checked),
	    cmocka_unit_test(kinds_names_and_negatives),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
