/* test_payment: the payment domain rules: amounts, currencies, status order, names, events. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/payment.h"

#define NSTATUS 5

static void assert_invalid(enum hex_status st, const struct hex_err *err, const char *field,
                           const char *message)
{
	assert_int_equal(st, HEX_INVALID);
	assert_string_equal(err->field, field);
	if (message != NULL)
		assert_string_equal(err->message, message);
}

static void amount_bounds(void **state)
{
	struct hex_err err = {0};
	assert_int_equal(payment_amount_check(1, &err), HEX_OK);
	assert_int_equal(payment_amount_check(1099, &err), HEX_OK);
	assert_int_equal(payment_amount_check(HEX_AMOUNT_MAX, &err), HEX_OK);
	assert_invalid(payment_amount_check(0, &err), &err, "amount",
	               "amount must be a positive integer");
	assert_invalid(payment_amount_check(-1, &err), &err, "amount",
	               "amount must be a positive integer");
	assert_invalid(payment_amount_check(INT64_MIN, &err), &err, "amount", NULL);
	assert_invalid(payment_amount_check(HEX_AMOUNT_MAX + 1LL, &err), &err, "amount",
	               "amount must be at most 99999999");
	assert_invalid(payment_amount_check(INT64_MAX, &err), &err, "amount", NULL);
	/* A NULL err is allowed: the status alone still says no. */
	assert_int_equal(payment_amount_check(0, NULL), HEX_INVALID);
}

static void currency_accepts_the_table_in_any_case(void **state)
{
	static const char *const ok[][2] = {
	    {"usd", "usd"}, {"USD", "usd"}, {"Eur", "eur"}, {"gbp", "gbp"},
	    {"JPY", "jpy"}, {"chf", "chf"}, {"cAd", "cad"}, {"aud", "aud"},
	    {"sek", "sek"}, {"NOK", "nok"}, {"dkk", "dkk"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char out[4] = "zzz";
		struct hex_err err = {0};
		if (payment_currency_normalize(ok[i][0], out, &err) != HEX_OK)
			fail_msg("%s refused: %s", ok[i][0], err.message);
		assert_string_equal(out, ok[i][1]);
	}
}

static void currency_refusals_name_the_field(void **state)
{
	static const struct {
		const char *in, *message;
	} bad[] = {
	    {NULL, "currency is required"},
	    {"", "currency is required"},
	    {"us", "currency must be a three-letter ISO 4217 code"},
	    {"usdd", "currency must be a three-letter ISO 4217 code"},
	    {"u1d", "currency must be a three-letter ISO 4217 code"},
	    {"us ", "currency must be a three-letter ISO 4217 code"},
	    {" usd", "currency must be a three-letter ISO 4217 code"},
	    {"\xc3\xa9ur", "currency must be a three-letter ISO 4217 code"},
	    {"xxx", "currency xxx is not supported"},
	    {"KWD", "currency kwd is not supported"},
	    {"btc", "currency btc is not supported"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char out[4] = "zzz";
		struct hex_err err = {0};
		assert_invalid(payment_currency_normalize(bad[i].in, out, &err), &err, "currency",
		               bad[i].message);
		/* Nothing half-written on refusal. */
		assert_string_equal(out, "zzz");
	}
}

/* Written out by hand from the documented order, not derived from the enum values. */
static void status_advances_only_forward(void **state)
{
	static const enum payment_status order[NSTATUS] = {
	    PAYMENT_REQUIRES_PAYMENT_METHOD,
	    PAYMENT_PROCESSING,
	    PAYMENT_FAILED,
	    PAYMENT_SUCCEEDED,
	    PAYMENT_REFUNDED,
	};
	for (int i = 0; i < NSTATUS; i++)
		for (int j = 0; j < NSTATUS; j++)
			if (payment_status_advances(order[i], order[j]) != (j > i))
				fail_msg("%s -> %s", payment_status_name(order[i]),
				         payment_status_name(order[j]));
	/* The cases the issue names. */
	assert_true(payment_status_advances(PAYMENT_FAILED, PAYMENT_SUCCEEDED));
	assert_false(payment_status_advances(PAYMENT_SUCCEEDED, PAYMENT_FAILED));
	assert_true(payment_status_advances(PAYMENT_SUCCEEDED, PAYMENT_REFUNDED));
	assert_false(payment_status_advances(PAYMENT_REFUNDED, PAYMENT_SUCCEEDED));
	assert_false(payment_status_advances(PAYMENT_SUCCEEDED, PAYMENT_SUCCEEDED));
	/* Out of range never advances, in either direction. */
	assert_false(payment_status_advances(PAYMENT_REFUNDED, (enum payment_status)5));
	assert_false(payment_status_advances((enum payment_status) - 1, PAYMENT_PROCESSING));
}

static void names_round_trip(void **state)
{
	static const char *const statuses[NSTATUS] = {
	    "requires_payment_method", "processing", "failed", "succeeded", "refunded",
	};
	for (int i = 0; i < NSTATUS; i++) {
		enum payment_status s = (enum payment_status)99;
		assert_true(payment_status_parse(statuses[i], &s));
		assert_int_equal(s, i);
		assert_string_equal(payment_status_name(s), statuses[i]);
	}
	enum payment_purpose p = (enum payment_purpose)99;
	assert_true(payment_purpose_parse("wallet_top_up", &p));
	assert_int_equal(p, PURPOSE_WALLET_TOP_UP);
	assert_string_equal(payment_purpose_name(p), "wallet_top_up");
	assert_true(payment_purpose_parse("membership", &p));
	assert_int_equal(p, PURPOSE_MEMBERSHIP);
	assert_string_equal(payment_purpose_name(p), "membership");
}

static void parse_refuses_near_misses(void **state)
{
	static const char *const bad[] = {"",           "Succeeded",     "succeeded ",
	                                  " failed",    "refund",        "requires_payment",
	                                  "MEMBERSHIP", "wallet-top-up", "wallet_top_up\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum payment_status s = PAYMENT_PROCESSING;
		enum payment_purpose p = PURPOSE_MEMBERSHIP;
		assert_false(payment_status_parse(bad[i], &s));
		assert_false(payment_purpose_parse(bad[i], &p));
		assert_int_equal(s, PAYMENT_PROCESSING);
		assert_int_equal(p, PURPOSE_MEMBERSHIP);
	}
	enum payment_status s;
	enum payment_purpose p;
	assert_false(payment_status_parse(NULL, &s));
	assert_false(payment_purpose_parse(NULL, &p));
	/* A value outside the enum has no name, rather than a plausible wrong one. */
	assert_null(payment_status_name((enum payment_status)5));
	assert_null(payment_status_name((enum payment_status) - 1));
	assert_null(payment_purpose_name((enum payment_purpose)2));
}

static void payment_ids_are_uuids(void **state)
{
	assert_true(payment_id_valid("0190f0a4-5b6c-7d8e-9f00-112233445566"));
	assert_true(payment_id_valid("0190F0A4-5B6C-7D8E-9F00-112233445566"));
	assert_false(payment_id_valid(NULL));
	assert_false(payment_id_valid(""));
	assert_false(payment_id_valid("0190f0a4-5b6c-7d8e-9f00-11223344556"));
	assert_false(payment_id_valid("0190f0a4-5b6c-7d8e-9f00-1122334455667"));
	assert_false(payment_id_valid("0190f0a4x5b6c-7d8e-9f00-112233445566"));
	assert_false(payment_id_valid("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
}

static void client_key_rules(void **state)
{
	struct hex_err err = {0};
	char longest[HEX_CLIENT_KEY_MAX + 2];
	memset(longest, 'k', sizeof longest);
	longest[HEX_CLIENT_KEY_MAX] = '\0';
	assert_int_equal(payment_client_key_check("a", &err), HEX_OK);
	assert_int_equal(payment_client_key_check("8e03978e-40d5-43e8-bc93-6894a57f9324", &err),
	                 HEX_OK);
	assert_int_equal(payment_client_key_check("order:42/attempt~1", &err), HEX_OK);
	assert_int_equal(payment_client_key_check(longest, &err), HEX_OK);

	longest[HEX_CLIENT_KEY_MAX] = 'k';
	longest[HEX_CLIENT_KEY_MAX + 1] = '\0';
	assert_invalid(payment_client_key_check(longest, &err), &err, "idempotency_key",
	               "Idempotency-Key must be at most 255 characters");
	assert_invalid(payment_client_key_check(NULL, &err), &err, "idempotency_key",
	               "Idempotency-Key is empty");
	assert_invalid(payment_client_key_check("", &err), &err, "idempotency_key",
	               "Idempotency-Key is empty");
	static const char *const bad[] = {"two words", "tab\there", "nl\n", "del\x7f",
	                                  "caf\xc3\xa9"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_invalid(payment_client_key_check(bad[i], &err), &err, "idempotency_key",
		               "Idempotency-Key must be printable ASCII without spaces");
}

static void event_plans_follow_the_issue(void **state)
{
	static const struct {
		enum payment_event_kind kind;
		bool has_target;
		enum payment_status target;
		bool grants;
		const char *name;
	} want[] = {
	    {EVENT_INTENT_SUCCEEDED, true, PAYMENT_SUCCEEDED, true, "payment_intent.succeeded"},
	    {EVENT_INTENT_FAILED, true, PAYMENT_FAILED, false, "payment_intent.payment_failed"},
	    {EVENT_CHECKOUT_COMPLETED, true, PAYMENT_SUCCEEDED, true, "checkout.session.completed"},
	    {EVENT_CHARGE_REFUNDED, true, PAYMENT_REFUNDED, false, "charge.refunded"},
	    {EVENT_OTHER, false, 0, false, "other"},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		struct payment_event_plan plan;
		memset(&plan, 0xa5, sizeof plan);
		payment_event_plan_of(want[i].kind, &plan);
		assert_int_equal(plan.has_target, want[i].has_target);
		if (want[i].has_target)
			assert_int_equal(plan.target, want[i].target);
		assert_int_equal(plan.grants_membership, want[i].grants);
		assert_string_equal(payment_event_kind_name(want[i].kind), want[i].name);
	}
	/* A kind from a newer adapter than this core: recorded, changes nothing. */
	struct payment_event_plan plan = {.has_target = true, .grants_membership = true};
	payment_event_plan_of((enum payment_event_kind)17, &plan);
	assert_false(plan.has_target);
	assert_false(plan.grants_membership);
	assert_null(payment_event_kind_name((enum payment_event_kind)17));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(amount_bounds),
	    cmocka_unit_test(currency_accepts_the_table_in_any_case),
	    cmocka_unit_test(currency_refusals_name_the_field),
	    cmocka_unit_test(status_advances_only_forward),
	    cmocka_unit_test(names_round_trip),
	    cmocka_unit_test(parse_refuses_near_misses),
	    cmocka_unit_test(payment_ids_are_uuids),
	    cmocka_unit_test(client_key_rules),
	    cmocka_unit_test(event_plans_follow_the_issue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
