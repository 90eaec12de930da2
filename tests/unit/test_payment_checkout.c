/* test_payment_checkout: membership Checkout Sessions with request storage, against fakes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/fakes.h"

#define ALICE       "aaaaaaaa-0000-4000-8000-000000000001"
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define PAYLOAD     "{\"id\":\"evt\",\"object\":\"event\"}"

/* What a checkout answers, gathered. */
struct answer {
	enum hex_status st;
	struct payment payment;
	char session_id[HEX_STRIPE_ID_MAX + 1];
	char url[HEX_URL_MAX + 1];
	struct hex_err err;
};

static int setup(void **state)
{
	*state = fake_world_new();
	return 0;
}

static int teardown(void **state)
{
	fake_world_free(*state);
	return 0;
}

static struct answer checkout(struct fake_world *w, const char *user, const char *key)
{
	struct payment_checkout_request rq = {
	    .user_id = user, .client_key = key, .trace_parent = TRACEPARENT};
	struct answer a = {0};
	a.st = payment_service_checkout(&w->payments, &rq, &a.payment, a.session_id, a.url, &a.err);
	return a;
}

static struct answer checkout_ok(struct fake_world *w, const char *user, const char *key)
{
	struct answer a = checkout(w, user, key);
	if (a.st != HEX_OK)
		fail_msg("checkout: %s: %s", hex_status_name(a.st), a.err.message);
	return a;
}

static struct user create_user(struct fake_world *w, const char *email)
{
	struct user u;
	struct hex_err err = {0};
	if (user_service_create(&w->users, email, "password-1", &u, &err) != HEX_OK)
		fail_msg("create user: %s", err.message);
	return u;
}

/* ---- request storage ---- */

static void checkout_stores_the_request_before_the_provider_call(void **state)
{
	struct fake_world *w = *state;
	struct answer a = checkout_ok(w, "AAAAAAAA-0000-4000-8000-000000000001", "ck-1");

	/* The fake gateway also fails the test if it hears of an unstored payment. */
	assert_true(fake_log_has(&w->log, "payments.find_by_client_key payments.insert "
	                                  "gateway.create_checkout payments.attach_checkout"));
	assert_string_equal(a.session_id, "cs_fake_1");
	assert_string_equal(a.url, "https://checkout.invalid/cs_fake_1");
	const struct payment *p = &a.payment;
	assert_true(payment_id_valid(p->id));
	assert_string_equal(p->user_id, ALICE);
	assert_int_equal(p->amount, FAKE_MEMBERSHIP_PRICE);
	assert_string_equal(p->currency, FAKE_MEMBERSHIP_CURRENCY);
	assert_int_equal(p->purpose, PURPOSE_MEMBERSHIP);
	assert_int_equal(p->status, PAYMENT_REQUIRES_PAYMENT_METHOD);

	const struct payment_record *rec = fake_payment_repo_find(&w->payments_repo, p->id);
	assert_non_null(rec);
	char want_key[64];
	snprintf(want_key, sizeof want_key, "hexcs_%s", p->id);
	assert_string_equal(rec->stripe_idempotency_key, want_key);
	assert_string_equal(rec->client_key, "ck-1");
	assert_string_equal(rec->stripe_checkout_session_id, "cs_fake_1");
	assert_string_equal(rec->checkout_url, a.url);

	assert_int_equal(w->gateway.nsessions, 1);
	const struct gateway_checkout_request *sent = &w->gateway.sessions[0].req;
	assert_string_equal(sent->idempotency_key, want_key);
	assert_string_equal(sent->payment_id, p->id);
	assert_string_equal(sent->user_id, ALICE);
	assert_int_equal(sent->amount, FAKE_MEMBERSHIP_PRICE);
	assert_string_equal(sent->success_url, FAKE_CHECKOUT_SUCCESS_URL);
	assert_string_equal(sent->cancel_url, FAKE_CHECKOUT_CANCEL_URL);
	assert_string_equal(w->gateway.last_trace_parent, TRACEPARENT);
}

static void price_and_currency_come_from_the_service(void **state)
{
	struct fake_world *w = *state;
	w->payments.membership_price = 2500;
	w->payments.membership_currency = "EUR";
	struct answer a = checkout_ok(w, ALICE, NULL);
	assert_int_equal(a.payment.amount, 2500);
	assert_string_equal(a.payment.currency, "eur");
	assert_int_equal(w->gateway.sessions[0].req.amount, 2500);
	assert_string_equal(w->gateway.sessions[0].req.currency, "eur");
}

static void same_client_key_answers_the_same_session(void **state)
{
	struct fake_world *w = *state;
	struct answer first = checkout_ok(w, ALICE, "again");
	fake_world_reset_calls(w);
	struct answer second = checkout_ok(w, ALICE, "again");
	assert_string_equal(second.session_id, first.session_id);
	assert_string_equal(second.url, first.url);
	assert_string_equal(second.payment.id, first.payment.id);
	assert_int_equal(fake_calls(&w->gateway.base, "create_checkout"), 0);
	assert_int_equal(fake_calls(&w->payments_repo.base, "insert"), 0);
	assert_int_equal(w->payments_repo.count, 1);
}

static void without_client_key_every_call_opens_a_session(void **state)
{
	struct fake_world *w = *state;
	struct answer a = checkout_ok(w, ALICE, NULL);
	struct answer b = checkout_ok(w, ALICE, NULL);
	assert_string_not_equal(a.payment.id, b.payment.id);
	assert_string_not_equal(a.session_id, b.session_id);
	assert_int_equal(fake_calls(&w->payments_repo.base, "find_by_client_key"), 0);
	assert_int_equal(w->payments_repo.count, 2);
	assert_int_equal(w->gateway.nsessions, 2);
}

static void concurrent_duplicate_follows_the_first_request(void **state)
{
	struct fake_world *w = *state;
	struct answer a = checkout_ok(w, ALICE, "race");
	/* Replay the row as if a concurrent request had stored it between lookup and insert. */
	w->payments_repo.racer = w->payments_repo.rows[0];
	w->payments_repo.count = 0;
	w->payments_repo.race_armed = true;
	fake_world_reset_calls(w);
	struct answer b = checkout_ok(w, ALICE, "race");
	assert_true(fake_log_has(&w->log, "payments.find_by_client_key payments.insert "
	                                  "payments.find_by_client_key"));
	assert_string_equal(b.payment.id, a.payment.id);
	assert_string_equal(b.session_id, a.session_id);
	assert_int_equal(fake_calls(&w->gateway.base, "create_checkout"), 0);
}

/* ---- the provider fails ---- */

static void unavailable_then_retry_reuses_the_stored_provider_key(void **state)
{
	struct fake_world *w = *state;
	fake_fail_next(&w->gateway.base, "create_checkout", HEX_UNAVAILABLE);
	struct answer a = checkout(w, ALICE, "retry-me");
	assert_int_equal(a.st, HEX_UNAVAILABLE);
	assert_string_equal(a.err.message, "the payment provider did not answer; retry with the "
	                                   "same Idempotency-Key");
	assert_string_equal(a.session_id, "");
	assert_string_equal(a.url, "");
	assert_int_equal(w->payments_repo.count, 1);
	const struct payment_record *rec = &w->payments_repo.rows[0];
	assert_string_equal(rec->stripe_checkout_session_id, "");
	assert_int_equal(fake_calls(&w->payments_repo.base, "attach_checkout"), 0);

	fake_world_reset_calls(w);
	struct answer b = checkout_ok(w, ALICE, "retry-me");
	assert_true(fake_log_has(&w->log, "payments.find_by_client_key gateway.create_checkout "
	                                  "payments.attach_checkout"));
	assert_int_equal(fake_calls(&w->payments_repo.base, "insert"), 0);
	assert_int_equal(w->gateway.nkeys_seen, 2);
	assert_string_equal(w->gateway.keys_seen[0], rec->stripe_idempotency_key);
	assert_string_equal(w->gateway.keys_seen[1], rec->stripe_idempotency_key);
	assert_int_equal(w->gateway.nsessions, 1);
	assert_string_equal(b.payment.id, rec->payment.id);
	assert_string_equal(b.session_id, "cs_fake_1");
}

static void lost_answer_then_retry_opens_one_session(void **state)
{
	struct fake_world *w = *state;
	w->gateway.lose_next_answer = true;
	assert_int_equal(checkout(w, ALICE, "lost").st, HEX_UNAVAILABLE);
	assert_int_equal(w->gateway.nsessions, 1); /* the provider did open it */
	struct answer b = checkout_ok(w, ALICE, "lost");
	assert_int_equal(w->gateway.nsessions, 1);
	assert_string_equal(w->gateway.keys_seen[0], w->gateway.keys_seen[1]);
	assert_string_equal(b.session_id, w->gateway.sessions[0].session.id);
}

static void storing_the_session_fails_then_retry_recovers_it(void **state)
{
	struct fake_world *w = *state;
	fake_fail_next(&w->payments_repo.base, "attach_checkout", HEX_UNAVAILABLE);
	struct answer a = checkout(w, ALICE, "attach-fails");
	assert_int_equal(a.st, HEX_UNAVAILABLE);
	assert_string_equal(a.err.message, "the database is unavailable");
	assert_string_equal(w->payments_repo.rows[0].stripe_checkout_session_id, "");
	struct answer b = checkout_ok(w, ALICE, "attach-fails");
	assert_int_equal(w->gateway.nsessions, 1);
	assert_string_equal(b.session_id, "cs_fake_1");
	assert_int_equal(w->payments_repo.count, 1);
}

static void refusal_marks_failed_and_is_replayed(void **state)
{
	struct fake_world *w = *state;
	hex_strlcpy(w->gateway.refusal, "Invalid currency for Checkout", sizeof w->gateway.refusal);
	fake_fail_next(&w->gateway.base, "create_checkout", HEX_INVALID);
	struct answer a = checkout(w, ALICE, "refused");
	assert_int_equal(a.st, HEX_INVALID);
	assert_string_equal(a.err.message, "Invalid currency for Checkout");
	assert_null(a.err.field);
	assert_true(fake_log_has(&w->log, "gateway.create_checkout payments.mark_failed"));
	const struct payment_record *rec = &w->payments_repo.rows[0];
	assert_int_equal(rec->payment.status, PAYMENT_FAILED);
	assert_string_equal(rec->failure_message, "Invalid currency for Checkout");
	assert_int_equal(a.payment.status, PAYMENT_FAILED);
	assert_string_equal(a.session_id, "");

	fake_world_reset_calls(w);
	struct answer again = checkout(w, ALICE, "refused");
	assert_int_equal(again.st, HEX_INVALID);
	assert_string_equal(again.err.message, a.err.message);
	assert_int_equal(fake_calls(&w->gateway.base, "create_checkout"), 0);
	assert_int_equal(w->payments_repo.count, 1);
}

static void other_provider_failures_map_to_statuses(void **state)
{
	struct fake_world *w = *state;
	static const struct {
		enum hex_status injected, want;
		const char *message;
	} cases[] = {
	    {HEX_CONFLICT, HEX_CONFLICT, "another request for this payment is in progress; retry"},
	    {HEX_INTERNAL, HEX_INTERNAL, "internal error"},
	    {HEX_NOT_FOUND, HEX_INTERNAL, "internal error"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fake_fail_next(&w->gateway.base, "create_checkout", cases[i].injected);
		struct answer a = checkout(w, ALICE, NULL);
		assert_int_equal(a.st, cases[i].want);
		assert_string_equal(a.err.message, cases[i].message);
		/* Not a refusal: the payment stays open for a retry. */
		assert_int_equal(w->payments_repo.rows[i].payment.status,
		                 PAYMENT_REQUIRES_PAYMENT_METHOD);
	}
	assert_int_equal(fake_calls(&w->payments_repo.base, "mark_failed"), 0);
}

/* ---- checks before anything is stored ---- */

static void bad_requests_store_nothing(void **state)
{
	struct fake_world *w = *state;
	struct answer a = checkout(w, "not-a-uuid", NULL);
	assert_int_equal(a.st, HEX_INVALID);
	assert_string_equal(a.err.field, "user_id");
	struct answer b = checkout(w, ALICE, "has space");
	assert_int_equal(b.st, HEX_INVALID);
	assert_string_equal(b.err.field, "idempotency_key");
	struct answer c = checkout(w, ALICE, "");
	assert_int_equal(c.st, HEX_INVALID);
	assert_string_equal(c.err.field, "idempotency_key");
	assert_int_equal(fake_calls(&w->payments_repo.base, "find_by_client_key"), 0);
	assert_int_equal(fake_calls(&w->payments_repo.base, "insert"), 0);
	assert_int_equal(fake_calls(&w->gateway.base, "create_checkout"), 0);
}

static void missing_configuration_is_an_internal_error(void **state)
{
	struct fake_world *w = *state;
	struct payment_service good = w->payments;
	char long_url[HEX_URL_MAX + 2];
	memset(long_url, 'u', sizeof long_url - 1);
	long_url[sizeof long_url - 1] = '\0';
	struct payment_service bad[6];
	for (int i = 0; i < 6; i++)
		bad[i] = good;
	bad[0].membership_price = 0;
	bad[1].membership_currency = NULL;
	bad[2].membership_currency = "xx";
	bad[3].checkout_success_url = "";
	bad[4].checkout_cancel_url = NULL;
	bad[5].checkout_cancel_url = long_url;
	for (int i = 0; i < 6; i++) {
		w->payments = bad[i];
		struct answer a = checkout(w, ALICE, NULL);
		assert_int_equal(a.st, HEX_INTERNAL);
		assert_string_equal(a.err.message, "internal error");
	}
	w->payments = good;
	assert_int_equal(fake_calls(&w->payments_repo.base, "insert"), 0);
	assert_int_equal(fake_calls(&w->gateway.base, "create_checkout"), 0);
}

static void storage_down_never_calls_the_provider(void **state)
{
	struct fake_world *w = *state;
	fake_fail_next(&w->payments_repo.base, "find_by_client_key", HEX_UNAVAILABLE);
	struct answer a = checkout(w, ALICE, "db-down");
	assert_int_equal(a.st, HEX_UNAVAILABLE);
	assert_string_equal(a.err.message, "the database is unavailable");
	fake_fail_next(&w->payments_repo.base, "insert", HEX_UNAVAILABLE);
	struct answer b = checkout(w, ALICE, NULL);
	assert_int_equal(b.st, HEX_UNAVAILABLE);
	assert_int_equal(fake_calls(&w->gateway.base, "create_checkout"), 0);
	assert_int_equal(w->payments_repo.count, 0);
}

/* ---- a client key shared with a payment made without Checkout ---- */

static void key_of_a_payment_intent_is_not_a_checkout(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = {.user_id = ALICE,
	                                    .amount = FAKE_MEMBERSHIP_PRICE,
	                                    .currency = FAKE_MEMBERSHIP_CURRENCY,
	                                    .purpose = "membership",
	                                    .client_key = "shared"};
	struct payment p;
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &p, &err), HEX_OK);
	fake_world_reset_calls(w);
	/* Same amount, currency and purpose: only the kind of request differs. */
	struct answer a = checkout(w, ALICE, "shared");
	assert_int_equal(a.st, HEX_CONFLICT);
	assert_string_equal(a.err.code, "idempotency_key_reused");
	assert_int_equal(fake_calls(&w->gateway.base, "create_checkout"), 0);
	assert_int_equal(w->payments_repo.count, 1);
}

static void key_of_a_checkout_is_not_a_payment_intent(void **state)
{
	struct fake_world *w = *state;
	checkout_ok(w, ALICE, "shared");
	fake_world_reset_calls(w);
	struct payment_create_request rq = {.user_id = ALICE,
	                                    .amount = FAKE_MEMBERSHIP_PRICE,
	                                    .currency = FAKE_MEMBERSHIP_CURRENCY,
	                                    .purpose = "membership",
	                                    .client_key = "shared"};
	struct payment p;
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &p, &err), HEX_CONFLICT);
	assert_string_equal(err.code, "idempotency_key_reused");
	assert_int_equal(fake_calls(&w->gateway.base, "create_intent"), 0);
}

/* ---- the session is paid ---- */

static void completed_session_makes_the_buyer_a_member(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "buyer@example.com");
	struct answer a = checkout_ok(w, u.id, NULL);
	struct payment_event ev = {
	    .kind = EVENT_CHECKOUT_COMPLETED, .payload = PAYLOAD, .payload_len = strlen(PAYLOAD)};
	hex_strlcpy(ev.id, "evt_cs_done", sizeof ev.id);
	hex_strlcpy(ev.type, "checkout.session.completed", sizeof ev.type);
	memcpy(ev.payment_id, a.payment.id, sizeof ev.payment_id);
	hex_strlcpy(ev.intent_id, "pi_from_checkout", sizeof ev.intent_id);
	bool dup = true;
	struct hex_err err = {0};
	assert_int_equal(payment_service_apply_event(&w->payments, &ev, &dup, &err), HEX_OK);
	assert_false(dup);
	assert_int_equal(fake_user_repo_find(&w->repo, u.id)->user.membership, MEMBERSHIP_MEMBER);
	const struct payment_record *rec = fake_payment_repo_find(&w->payments_repo, a.payment.id);
	assert_int_equal(rec->payment.status, PAYMENT_SUCCEEDED);
	assert_string_equal(rec->payment.stripe_payment_intent_id, "pi_from_checkout");
	assert_string_equal(rec->stripe_checkout_session_id, a.session_id);
	assert_true(fake_log_has(&w->log, "payments.apply_event cache.del"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(checkout_stores_the_request_before_the_provider_call,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(price_and_currency_come_from_the_service, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(same_client_key_answers_the_same_session, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(without_client_key_every_call_opens_a_session, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(concurrent_duplicate_follows_the_first_request, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(unavailable_then_retry_reuses_the_stored_provider_key,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(lost_answer_then_retry_opens_one_session, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(storing_the_session_fails_then_retry_recovers_it, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(refusal_marks_failed_and_is_replayed, setup, teardown),
	    cmocka_unit_test_setup_teardown(other_provider_failures_map_to_statuses, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(bad_requests_store_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(missing_configuration_is_an_internal_error, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(storage_down_never_calls_the_provider, setup, teardown),
	    cmocka_unit_test_setup_teardown(key_of_a_payment_intent_is_not_a_checkout, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(key_of_a_checkout_is_not_a_payment_intent, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(completed_session_makes_the_buyer_a_member, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
