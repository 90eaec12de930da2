/* test_payment_service: payments, request storage and provider events against in-memory fakes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/fakes.h"

#define T0_US       (FAKE_T0_S * 1000000LL)
#define ALICE       "aaaaaaaa-0000-4000-8000-000000000001"
#define BOB         "bbbbbbbb-0000-4000-8000-000000000002"
#define UNKNOWN_ID  "00000000-0000-4000-8000-0000deadbeef"
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define PAYLOAD     "{\"id\":\"evt\",\"object\":\"event\"}"

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

static struct payment_create_request request(const char *user, const char *key)
{
	return (struct payment_create_request){
	    .user_id = user,
	    .amount = 1099,
	    .currency = "usd",
	    .purpose = "wallet_top_up",
	    .client_key = key,
	    .trace_parent = TRACEPARENT,
	};
}

static struct payment create_ok(struct fake_world *w, const struct payment_create_request *rq)
{
	struct payment p;
	struct hex_err err = {0};
	enum hex_status st = payment_service_create(&w->payments, rq, &p, &err);
	if (st != HEX_OK)
		fail_msg("create: %s: %s", hex_status_name(st), err.message);
	return p;
}

static struct user create_user(struct fake_world *w, const char *email)
{
	struct user u;
	struct hex_err err = {0};
	if (user_service_create(&w->users, email, "password-1", &u, &err) != HEX_OK)
		fail_msg("create user: %s", err.message);
	return u;
}

/* A user whose id has hex letters, to see ids lower-cased on the way in. */
static struct user add_user(struct fake_world *w, const char *id, const char *email)
{
	struct user u = {.membership = MEMBERSHIP_FREE, .role = ROLE_USER};
	hex_strlcpy(u.id, id, sizeof u.id);
	hex_strlcpy(u.email, email, sizeof u.email);
	u.created_at_us = u.updated_at_us = w->clock.now_us;
	assert_int_equal(w->users.repo.ops->insert(w->users.repo.self, &u, "h:x"), HEX_OK);
	return u;
}

static void assert_payment_equal(const struct payment *a, const struct payment *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->user_id, b->user_id);
	assert_int_equal(a->amount, b->amount);
	assert_string_equal(a->currency, b->currency);
	assert_int_equal(a->purpose, b->purpose);
	assert_int_equal(a->status, b->status);
	assert_string_equal(a->stripe_payment_intent_id, b->stripe_payment_intent_id);
	assert_string_equal(a->client_secret, b->client_secret);
	assert_int_equal(a->created_at_us, b->created_at_us);
	assert_int_equal(a->updated_at_us, b->updated_at_us);
}

static const struct payment_record *stored(struct fake_world *w, const char *id)
{
	const struct payment_record *rec = fake_payment_repo_find(&w->payments_repo, id);
	assert_non_null(rec);
	return rec;
}

/* ---- create: request storage ---- */

static void create_stores_the_request_before_the_provider_call(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request("AAAAAAAA-0000-4000-8000-000000000001", "k-1");
	rq.currency = "USD";
	struct payment p = create_ok(w, &rq);

	/* Stored (and committed: the fake is the database) before the provider heard of it;
	 * the fake gateway also fails the test if it is called for an unstored payment. */
	assert_true(fake_log_has(&w->log, "payments.find_by_client_key payments.insert "
	                                  "gateway.create_intent payments.attach_intent"));
	assert_true(payment_id_valid(p.id));
	assert_string_equal(p.user_id, ALICE);
	assert_int_equal(p.amount, 1099);
	assert_string_equal(p.currency, "usd");
	assert_int_equal(p.purpose, PURPOSE_WALLET_TOP_UP);
	assert_int_equal(p.status, PAYMENT_REQUIRES_PAYMENT_METHOD);
	assert_string_equal(p.stripe_payment_intent_id, "pi_fake_1");
	assert_string_equal(p.client_secret, "pi_fake_1_secret_101");
	assert_int_equal(p.created_at_us, T0_US);

	const struct payment_record *rec = stored(w, p.id);
	char want_key[64];
	snprintf(want_key, sizeof want_key, "hexpay_%s", p.id);
	assert_string_equal(rec->stripe_idempotency_key, want_key);
	assert_string_equal(rec->client_key, "k-1");
	assert_payment_equal(&rec->payment, &p);

	assert_int_equal(w->gateway.nkeys_seen, 1);
	assert_string_equal(w->gateway.keys_seen[0], want_key);
	const struct gateway_intent_request *sent = &w->gateway.intents[0].req;
	assert_string_equal(sent->payment_id, p.id);
	assert_string_equal(sent->user_id, ALICE);
	assert_int_equal(sent->amount, 1099);
	assert_string_equal(sent->currency, "usd");
	assert_int_equal(sent->purpose, PURPOSE_WALLET_TOP_UP);
	assert_string_equal(w->gateway.last_trace_parent, TRACEPARENT);
}

static void create_without_key_makes_a_new_payment_each_time(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, NULL);
	struct payment a = create_ok(w, &rq);
	fake_world_reset_calls(w);
	struct payment b = create_ok(w, &rq);
	assert_string_not_equal(a.id, b.id);
	assert_string_not_equal(a.stripe_payment_intent_id, b.stripe_payment_intent_id);
	assert_int_equal(w->payments_repo.count, 2);
	assert_int_equal(w->gateway.nintents, 2);
	/* Still stored first; no lookup without a key. */
	assert_true(
	    fake_log_has(&w->log, "payments.insert gateway.create_intent payments.attach_intent"));
	assert_int_equal(fake_calls(&w->payments_repo.base, "find_by_client_key"), 0);
	assert_string_equal(stored(w, b.id)->client_key, "");
}

static void create_with_same_key_answers_the_first_payment(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "same-key");
	struct payment first = create_ok(w, &rq);
	fake_world_reset_calls(w);
	fake_clock_advance_s(&w->clock, 30);
	rq.currency = "UsD"; /* the same request once normalised */
	struct payment again = create_ok(w, &rq);
	assert_payment_equal(&again, &first);
	assert_int_equal(w->payments_repo.count, 1);
	assert_int_equal(fake_calls(&w->gateway.base, "create_intent"), 0);
	assert_int_equal(fake_calls(&w->payments_repo.base, "insert"), 0);
	assert_int_equal(w->gateway.nintents, 1);
}

static void client_keys_belong_to_their_user(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request a = request(ALICE, "shared");
	struct payment_create_request b = request(BOB, "shared");
	b.amount = 5000; /* would be a key reuse if keys were global */
	struct payment pa = create_ok(w, &a);
	struct payment pb = create_ok(w, &b);
	assert_string_not_equal(pa.id, pb.id);
	assert_string_equal(pb.user_id, BOB);
	assert_int_equal(pb.amount, 5000);
	assert_int_equal(w->gateway.nintents, 2);
}

static void key_reused_with_other_parameters_is_a_conflict(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "k");
	struct payment first = create_ok(w, &rq);
	struct payment_create_request changed[3] = {rq, rq, rq};
	changed[0].amount = 1100;
	changed[1].currency = "eur";
	changed[2].purpose = "membership";
	for (int i = 0; i < 3; i++) {
		fake_world_reset_calls(w);
		struct payment out = {0};
		struct hex_err err = {0};
		assert_int_equal(payment_service_create(&w->payments, &changed[i], &out, &err),
		                 HEX_CONFLICT);
		assert_string_equal(err.code, "idempotency_key_reused");
		assert_null(err.field);
		assert_string_equal(err.message,
		                    "this Idempotency-Key was already used for another request");
		assert_int_equal(fake_calls(&w->gateway.base, "create_intent"), 0);
		assert_int_equal(fake_calls(&w->payments_repo.base, "insert"), 0);
		assert_string_equal(out.id, "");
	}
	assert_int_equal(w->payments_repo.count, 1);
	assert_payment_equal(&stored(w, first.id)->payment, &first);
}

static void invalid_requests_store_nothing(void **state)
{
	struct fake_world *w = *state;
	char long_key[HEX_CLIENT_KEY_MAX + 2];
	memset(long_key, 'k', sizeof long_key - 1);
	long_key[sizeof long_key - 1] = '\0';
	static const char *const U = ALICE;
	struct {
		const char *user;
		int64_t amount;
		const char *currency, *purpose, *key, *field;
	} cases[] = {
	    {NULL, 1099, "usd", "wallet_top_up", NULL, "user_id"},
	    {"alice", 1099, "usd", "wallet_top_up", NULL, "user_id"},
	    {U, 0, "usd", "wallet_top_up", NULL, "amount"},
	    {U, -5, "usd", "wallet_top_up", NULL, "amount"},
	    {U, HEX_AMOUNT_MAX + 1LL, "usd", "wallet_top_up", NULL, "amount"},
	    {U, 1099, NULL, "wallet_top_up", NULL, "currency"},
	    {U, 1099, "", "wallet_top_up", NULL, "currency"},
	    {U, 1099, "dollars", "wallet_top_up", NULL, "currency"},
	    {U, 1099, "xyz", "wallet_top_up", NULL, "currency"},
	    {U, 1099, "usd", NULL, NULL, "purpose"},
	    {U, 1099, "usd", "", NULL, "purpose"},
	    {U, 1099, "usd", "donation", NULL, "purpose"},
	    {U, 1099, "usd", "Membership", NULL, "purpose"},
	    {U, 1099, "usd", "membership", "", "idempotency_key"},
	    {U, 1099, "usd", "membership", "has space", "idempotency_key"},
	    {U, 1099, "usd", "membership", long_key, "idempotency_key"},
	    /* One error at a time, in the order amount, currency, purpose. */
	    {U, 0, "xyz", "donation", "", "amount"},
	    {U, 5, "xyz", "donation", "", "currency"},
	    {U, 5, "usd", "donation", "", "purpose"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct payment_create_request rq = {
		    .user_id = cases[i].user,
		    .amount = cases[i].amount,
		    .currency = cases[i].currency,
		    .purpose = cases[i].purpose,
		    .client_key = cases[i].key,
		};
		struct payment out;
		struct hex_err err = {0};
		enum hex_status st = payment_service_create(&w->payments, &rq, &out, &err);
		if (st != HEX_INVALID || err.field == NULL ||
		    strcmp(err.field, cases[i].field) != 0)
			fail_msg("case %zu: %s field %s, want invalid_request field %s", i,
			         hex_status_name(st), err.field ? err.field : "(none)",
			         cases[i].field);
	}
	assert_int_equal(fake_calls(&w->payments_repo.base, "find_by_client_key"), 0);
	assert_int_equal(fake_calls(&w->payments_repo.base, "insert"), 0);
	assert_int_equal(fake_calls(&w->gateway.base, "create_intent"), 0);
	assert_int_equal(w->ids.issued, 0);
	assert_int_equal(w->payments_repo.count, 0);
}

/* ---- create: the provider fails ---- */

static void timeout_then_retry_reuses_the_stored_provider_key(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "retry-me");
	fake_fail_next(&w->gateway.base, "create_intent", HEX_UNAVAILABLE);
	struct payment out = {0};
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the payment provider did not answer; retry with the same "
	                                 "Idempotency-Key");
	/* The row stays, without an intent, waiting for the retry. */
	assert_int_equal(w->payments_repo.count, 1);
	const struct payment_record *rec = &w->payments_repo.rows[0];
	assert_string_equal(rec->payment.stripe_payment_intent_id, "");
	assert_int_equal(rec->payment.status, PAYMENT_REQUIRES_PAYMENT_METHOD);
	assert_int_equal(fake_calls(&w->payments_repo.base, "attach_intent"), 0);
	char key[HEX_IDEMPOTENCY_KEY_MAX + 1];
	hex_strlcpy(key, rec->stripe_idempotency_key, sizeof key);

	fake_world_reset_calls(w);
	struct payment p = create_ok(w, &rq);
	assert_true(fake_log_has(&w->log, "payments.find_by_client_key gateway.create_intent "
	                                  "payments.attach_intent"));
	assert_int_equal(fake_calls(&w->payments_repo.base, "insert"), 0);
	assert_int_equal(w->gateway.nkeys_seen, 2);
	assert_string_equal(w->gateway.keys_seen[0], key);
	assert_string_equal(w->gateway.keys_seen[1], key);
	assert_int_equal(w->gateway.nintents, 1);
	assert_string_equal(p.id, rec->payment.id);
	assert_string_equal(p.stripe_payment_intent_id, "pi_fake_1");
}

static void lost_answer_then_retry_creates_one_intent(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "lost");
	w->gateway.lose_next_answer = true;
	struct payment out;
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_UNAVAILABLE);
	assert_int_equal(w->gateway.nintents, 1); /* the provider did create it */
	struct payment p = create_ok(w, &rq);
	assert_int_equal(w->gateway.nintents, 1);
	assert_string_equal(w->gateway.keys_seen[0], w->gateway.keys_seen[1]);
	assert_string_equal(p.stripe_payment_intent_id, w->gateway.intents[0].intent.id);
}

static void storing_the_answer_fails_then_retry_recovers_it(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "attach-fails");
	fake_fail_next(&w->payments_repo.base, "attach_intent", HEX_UNAVAILABLE);
	struct payment out;
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the database is unavailable");
	assert_string_equal(w->payments_repo.rows[0].payment.stripe_payment_intent_id, "");
	struct payment p = create_ok(w, &rq);
	assert_int_equal(w->gateway.nintents, 1);
	assert_string_equal(p.stripe_payment_intent_id, "pi_fake_1");
	assert_int_equal(w->payments_repo.count, 1);
}

static void provider_refusal_marks_failed_and_is_replayed(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "refused");
	hex_strlcpy(w->gateway.refusal, "Amount must be at least $0.50 usd",
	            sizeof w->gateway.refusal);
	fake_fail_next(&w->gateway.base, "create_intent", HEX_INVALID);
	struct payment out = {0};
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_INVALID);
	assert_string_equal(err.message, "Amount must be at least $0.50 usd");
	assert_null(err.field);
	assert_true(fake_log_has(&w->log, "gateway.create_intent payments.mark_failed"));
	const struct payment_record *rec = &w->payments_repo.rows[0];
	assert_int_equal(rec->payment.status, PAYMENT_FAILED);
	assert_string_equal(rec->failure_message, "Amount must be at least $0.50 usd");
	assert_int_equal(out.status, PAYMENT_FAILED);

	/* The same request again gets the same answer, without asking the provider. */
	fake_world_reset_calls(w);
	struct hex_err again = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &again), HEX_INVALID);
	assert_string_equal(again.message, err.message);
	assert_null(again.field);
	assert_int_equal(fake_calls(&w->gateway.base, "create_intent"), 0);
	assert_int_equal(w->payments_repo.count, 1);
}

static void refusal_without_message_gets_a_sentence(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, NULL);
	fake_fail_next(&w->gateway.base, "create_intent", HEX_INVALID);
	w->gateway.refusal[0] = '\0';
	struct payment out;
	struct hex_err err = {0};
	/* The fake says "refused"; the stored text is what the client sees. */
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_INVALID);
	assert_string_equal(err.message, "refused");
	assert_int_equal(w->payments_repo.rows[0].payment.status, PAYMENT_FAILED);
}

static void refusal_that_cannot_be_stored_is_still_a_refusal(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "refused-db-down");
	hex_strlcpy(w->gateway.refusal, "card_declined", sizeof w->gateway.refusal);
	fake_fail_next(&w->gateway.base, "create_intent", HEX_INVALID);
	fake_fail_next(&w->payments_repo.base, "mark_failed", HEX_UNAVAILABLE);
	struct payment out;
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_INVALID);
	assert_string_equal(err.message, "card_declined");
	assert_int_equal(w->payments_repo.rows[0].payment.status, PAYMENT_REQUIRES_PAYMENT_METHOD);
	/* Not stored as refused: a retry asks the provider again, with the same key. */
	struct payment p = create_ok(w, &rq);
	assert_int_equal(w->gateway.nkeys_seen, 2);
	assert_string_equal(w->gateway.keys_seen[0], w->gateway.keys_seen[1]);
	assert_string_equal(p.stripe_payment_intent_id, "pi_fake_1");
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
	    {HEX_UNAUTHENTICATED, HEX_INTERNAL, "internal error"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct payment_create_request rq = request(ALICE, NULL);
		fake_fail_next(&w->gateway.base, "create_intent", cases[i].injected);
		struct payment out;
		struct hex_err err = {0};
		assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err),
		                 cases[i].want);
		assert_string_equal(err.message, cases[i].message);
		assert_null(err.code);
		/* Unknown outcome: the payment is not marked failed. */
		assert_int_equal(w->payments_repo.rows[i].payment.status,
		                 PAYMENT_REQUIRES_PAYMENT_METHOD);
	}
	assert_int_equal(fake_calls(&w->payments_repo.base, "mark_failed"), 0);
}

static void database_failures_before_the_call_reach_no_provider(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "db");
	struct payment out;
	struct hex_err err = {0};
	fake_fail_next(&w->payments_repo.base, "find_by_client_key", HEX_UNAVAILABLE);
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the database is unavailable");
	fake_fail_next(&w->payments_repo.base, "insert", HEX_UNAVAILABLE);
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_UNAVAILABLE);
	fake_fail_next(&w->payments_repo.base, "insert", HEX_INTERNAL);
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_INTERNAL);
	assert_string_equal(err.message, "internal error");
	/* A conflict without a client key is not a concurrent duplicate: a bug. */
	rq.client_key = NULL;
	fake_fail_next(&w->payments_repo.base, "insert", HEX_CONFLICT);
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_INTERNAL);
	assert_int_equal(fake_calls(&w->gateway.base, "create_intent"), 0);
	assert_int_equal(w->payments_repo.count, 0);
}

static void a_trace_parent_that_does_not_fit_is_not_sent(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, NULL);
	rq.trace_parent = TRACEPARENT "-and-more";
	create_ok(w, &rq);
	assert_string_equal(w->gateway.last_trace_parent, "");
	rq.trace_parent = NULL;
	create_ok(w, &rq);
	assert_string_equal(w->gateway.last_trace_parent, "");
}

static void the_intent_status_is_stored(void **state)
{
	struct fake_world *w = *state;
	w->gateway.intent_status = PAYMENT_PROCESSING;
	struct payment_create_request rq = request(ALICE, NULL);
	struct payment p = create_ok(w, &rq);
	assert_int_equal(p.status, PAYMENT_PROCESSING);
	assert_int_equal(stored(w, p.id)->payment.status, PAYMENT_PROCESSING);
}

/* ---- create: concurrent duplicates ---- */

static struct payment_record racer_of(const struct payment_create_request *rq, const char *id)
{
	struct payment_record r = {0};
	hex_strlcpy(r.payment.id, id, sizeof r.payment.id);
	hex_strlcpy(r.payment.user_id, rq->user_id, sizeof r.payment.user_id);
	r.payment.amount = rq->amount;
	hex_strlcpy(r.payment.currency, rq->currency, sizeof r.payment.currency);
	assert_true(payment_purpose_parse(rq->purpose, &r.payment.purpose));
	r.payment.created_at_us = r.payment.updated_at_us = T0_US - 1;
	hex_strlcpy(r.client_key, rq->client_key, sizeof r.client_key);
	snprintf(r.stripe_idempotency_key, sizeof r.stripe_idempotency_key, "hexpay_%s", id);
	return r;
}

static void concurrent_insert_loser_resumes_the_winner(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "race");
	w->payments_repo.racer = racer_of(&rq, "cccccccc-0000-4000-8000-000000000001");
	w->payments_repo.race_armed = true;
	struct payment p = create_ok(w, &rq);
	assert_true(fake_log_has(&w->log, "payments.find_by_client_key payments.insert "
	                                  "payments.find_by_client_key gateway.create_intent "
	                                  "payments.attach_intent"));
	assert_string_equal(p.id, "cccccccc-0000-4000-8000-000000000001");
	assert_int_equal(w->payments_repo.count, 1);
	assert_int_equal(w->gateway.nkeys_seen, 1);
	assert_string_equal(w->gateway.keys_seen[0], "hexpay_cccccccc-0000-4000-8000-000000000001");
	assert_string_equal(p.stripe_payment_intent_id, "pi_fake_1");
}

static void concurrent_winner_with_an_intent_is_answered_as_is(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "race-done");
	w->payments_repo.racer = racer_of(&rq, "cccccccc-0000-4000-8000-000000000002");
	hex_strlcpy(w->payments_repo.racer.payment.stripe_payment_intent_id, "pi_winner",
	            sizeof w->payments_repo.racer.payment.stripe_payment_intent_id);
	hex_strlcpy(w->payments_repo.racer.payment.client_secret, "pi_winner_secret",
	            sizeof w->payments_repo.racer.payment.client_secret);
	w->payments_repo.race_armed = true;
	struct payment p = create_ok(w, &rq);
	assert_string_equal(p.stripe_payment_intent_id, "pi_winner");
	assert_string_equal(p.client_secret, "pi_winner_secret");
	assert_int_equal(fake_calls(&w->gateway.base, "create_intent"), 0);
}

static void concurrent_winner_with_other_parameters_is_a_conflict(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "race-other");
	w->payments_repo.racer = racer_of(&rq, "cccccccc-0000-4000-8000-000000000003");
	w->payments_repo.racer.payment.amount = 1;
	w->payments_repo.race_armed = true;
	struct payment out;
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_CONFLICT);
	assert_string_equal(err.code, "idempotency_key_reused");
	assert_int_equal(fake_calls(&w->gateway.base, "create_intent"), 0);
	assert_int_equal(w->payments_repo.count, 1);
}

/* ---- provider events ---- */

static struct payment_event event_for(const char *id, enum payment_event_kind kind,
                                      const struct payment *p)
{
	struct payment_event ev = {
	    .kind = kind, .payload = PAYLOAD, .payload_len = strlen(PAYLOAD)};
	hex_strlcpy(ev.id, id, sizeof ev.id);
	hex_strlcpy(ev.type, payment_event_kind_name(kind), sizeof ev.type);
	if (p != NULL) {
		hex_strlcpy(ev.intent_id, p->stripe_payment_intent_id, sizeof ev.intent_id);
		ev.amount = p->amount;
		memcpy(ev.currency, p->currency, sizeof ev.currency);
	}
	return ev;
}

static bool apply(struct fake_world *w, const struct payment_event *ev)
{
	bool dup = true;
	struct hex_err err = {0};
	enum hex_status st = payment_service_apply_event(&w->payments, ev, &dup, &err);
	if (st != HEX_OK)
		fail_msg("apply %s: %s: %s", ev->id, hex_status_name(st), err.message);
	return dup;
}

static enum payment_status status_of(struct fake_world *w, const char *id)
{
	return stored(w, id)->payment.status;
}

static void each_kind_has_its_effect(void **state)
{
	struct fake_world *w = *state;
	static const struct {
		enum payment_event_kind kind;
		enum payment_status want;
	} cases[] = {
	    {EVENT_INTENT_SUCCEEDED, PAYMENT_SUCCEEDED},
	    {EVENT_INTENT_FAILED, PAYMENT_FAILED},
	    {EVENT_CHECKOUT_COMPLETED, PAYMENT_SUCCEEDED},
	    {EVENT_CHARGE_REFUNDED, PAYMENT_REFUNDED},
	    {EVENT_OTHER, PAYMENT_REQUIRES_PAYMENT_METHOD},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct payment_create_request rq = request(ALICE, NULL);
		struct payment p = create_ok(w, &rq);
		fake_clock_advance_s(&w->clock, 1);
		char id[32];
		snprintf(id, sizeof id, "evt_kind_%zu", i);
		struct payment_event ev = event_for(id, cases[i].kind, &p);
		assert_false(apply(w, &ev));
		const struct payment *after = &stored(w, p.id)->payment;
		assert_int_equal(after->status, cases[i].want);
		/* updated_at moves only with the status. */
		assert_int_equal(after->updated_at_us,
		                 cases[i].kind == EVENT_OTHER ? p.updated_at_us : w->clock.now_us);
		/* Every recorded event has its outbox row, carrying the payload. */
		assert_int_equal(fake_payment_repo_outbox_count(&w->payments_repo, id), 1);
		assert_string_equal(w->payments_repo.outbox[w->payments_repo.noutbox - 1].payload,
		                    PAYLOAD);
		assert_string_equal(w->payments_repo.outbox[w->payments_repo.noutbox - 1].topic,
		                    "payment_events");
	}
	assert_int_equal(w->payments_repo.nevents, 5);
}

static void an_event_finds_its_payment_by_metadata_and_learns_the_intent(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, "no-intent-yet");
	fake_fail_next(&w->gateway.base, "create_intent", HEX_UNAVAILABLE);
	struct payment out;
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&w->payments, &rq, &out, &err), HEX_UNAVAILABLE);
	const char *pid = w->payments_repo.rows[0].payment.id;

	struct payment_event ev = event_for("evt_meta", EVENT_INTENT_SUCCEEDED, NULL);
	hex_strlcpy(ev.payment_id, pid, sizeof ev.payment_id);
	hex_strlcpy(ev.intent_id, "pi_from_event", sizeof ev.intent_id);
	assert_false(apply(w, &ev));
	assert_int_equal(status_of(w, pid), PAYMENT_SUCCEEDED);
	assert_string_equal(stored(w, pid)->payment.stripe_payment_intent_id, "pi_from_event");
	/* A later refund that only knows the intent finds the payment through it. */
	struct payment_event refund = event_for("evt_refund", EVENT_CHARGE_REFUNDED, NULL);
	hex_strlcpy(refund.intent_id, "pi_from_event", sizeof refund.intent_id);
	assert_false(apply(w, &refund));
	assert_int_equal(status_of(w, pid), PAYMENT_REFUNDED);
}

static void duplicate_event_changes_nothing(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "dup@example.com");
	struct payment_create_request rq = request(u.id, NULL);
	rq.purpose = "membership";
	struct payment p = create_ok(w, &rq);
	struct payment_event fail = event_for("evt_1", EVENT_INTENT_FAILED, &p);
	assert_false(apply(w, &fail));
	assert_int_equal(status_of(w, p.id), PAYMENT_FAILED);

	/* The same id again, even claiming another kind, is a duplicate: ignored. */
	fake_world_reset_calls(w);
	struct payment_event again = event_for("evt_1", EVENT_INTENT_SUCCEEDED, &p);
	assert_true(apply(w, &again));
	assert_int_equal(status_of(w, p.id), PAYMENT_FAILED);
	assert_int_equal(fake_user_repo_find(&w->repo, u.id)->user.membership, MEMBERSHIP_FREE);
	assert_int_equal(fake_payment_repo_outbox_count(&w->payments_repo, "evt_1"), 1);
	assert_int_equal(w->payments_repo.nevents, 1);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 0);
}

static void unknown_payment_is_recorded(void **state)
{
	struct fake_world *w = *state;
	struct payment_event ev = event_for("evt_stranger", EVENT_INTENT_SUCCEEDED, NULL);
	hex_strlcpy(ev.intent_id, "pi_not_ours", sizeof ev.intent_id);
	hex_strlcpy(ev.payment_id, UNKNOWN_ID, sizeof ev.payment_id);
	assert_false(apply(w, &ev));
	assert_int_equal(w->payments_repo.nevents, 1);
	assert_int_equal(fake_payment_repo_outbox_count(&w->payments_repo, "evt_stranger"), 1);
	assert_true(apply(w, &ev));
	/* Malformed metadata is no payment either. */
	struct payment_event junk = event_for("evt_junk", EVENT_INTENT_FAILED, NULL);
	hex_strlcpy(junk.payment_id, "not-a-uuid", sizeof junk.payment_id);
	assert_false(apply(w, &junk));
	assert_int_equal(w->payments_repo.nevents, 2);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 0);
}

/* Every order of every non-empty subset of the four kinds that move a payment. */
static const enum payment_event_kind moving_kinds[4] = {
    EVENT_INTENT_SUCCEEDED, EVENT_INTENT_FAILED, EVENT_CHARGE_REFUNDED, EVENT_CHECKOUT_COMPLETED};

static bool next_permutation(int *a, int n)
{
	int i = n - 2;
	while (i >= 0 && a[i] >= a[i + 1])
		i--;
	if (i < 0)
		return false;
	int j = n - 1;
	while (a[j] <= a[i])
		j--;
	int t = a[i];
	a[i] = a[j];
	a[j] = t;
	for (int l = i + 1, r = n - 1; l < r; l++, r--) {
		t = a[l];
		a[l] = a[r];
		a[r] = t;
	}
	return true;
}

static void run_orders(struct fake_world *w, const char *purpose)
{
	int runs = 0;
	for (unsigned mask = 1; mask < 16; mask++) {
		int order[4], n = 0;
		/* The expected end state, from the words rather than from the code. */
		bool has_s = false, has_f = false, has_r = false;
		for (int k = 0; k < 4; k++) {
			if (!(mask & (1u << k)))
				continue;
			order[n++] = k;
			has_s |= moving_kinds[k] == EVENT_INTENT_SUCCEEDED ||
			         moving_kinds[k] == EVENT_CHECKOUT_COMPLETED;
			has_f |= moving_kinds[k] == EVENT_INTENT_FAILED;
			has_r |= moving_kinds[k] == EVENT_CHARGE_REFUNDED;
		}
		enum payment_status want = has_r   ? PAYMENT_REFUNDED
		                           : has_s ? PAYMENT_SUCCEEDED
		                           : has_f ? PAYMENT_FAILED
		                                   : PAYMENT_REQUIRES_PAYMENT_METHOD;
		bool want_member = has_s && strcmp(purpose, "membership") == 0;
		do {
			char email[64];
			snprintf(email, sizeof email, "order%d-%s@example.com", runs, purpose);
			struct user u = create_user(w, email);
			fake_user_cache_store(&w->cache, &u);
			struct payment_create_request rq = request(u.id, NULL);
			rq.purpose = purpose;
			struct payment p = create_ok(w, &rq);
			int dels_before = fake_calls(&w->cache.base, "del");
			char trail[64] = "";
			for (int i = 0; i < n; i++) {
				char id[48];
				snprintf(id, sizeof id, "evt_%d_%d", runs, i);
				struct payment_event ev = event_for(id, moving_kinds[order[i]], &p);
				assert_false(apply(w, &ev));
				/* Every event is delivered twice: the second changes nothing. */
				assert_true(apply(w, &ev));
				snprintf(trail + strlen(trail), sizeof trail - strlen(trail), "%d",
				         order[i]);
			}
			const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
			if (status_of(w, p.id) != want ||
			    (row->user.membership == MEMBERSHIP_MEMBER) != want_member)
				fail_msg("%s order %s: status %s member %d", purpose, trail,
				         payment_status_name(status_of(w, p.id)),
				         row->user.membership == MEMBERSHIP_MEMBER);
			/* The cache entry goes exactly when the user becomes a member. */
			assert_int_equal(fake_calls(&w->cache.base, "del") - dels_before,
			                 want_member ? 1 : 0);
			assert_int_equal(fake_user_cache_peek(&w->cache, u.id, NULL), !want_member);
			runs++;
			/* Room for the next run: the fakes are small tables. */
			w->payments_repo.nevents = w->payments_repo.noutbox = 0;
			w->payments_repo.count = 0;
			w->repo.count = 0;
			w->gateway.nintents = w->gateway.nkeys_seen = 0;
			memset(w->cache.slots, 0, sizeof w->cache.slots);
		} while (next_permutation(order, n));
	}
	assert_int_equal(runs, 4 + 12 + 24 + 24);
}

static void every_order_ends_in_the_same_state_membership(void **state)
{
	run_orders(*state, "membership");
}

static void every_order_ends_in_the_same_state_top_up(void **state)
{
	run_orders(*state, "wallet_top_up");
}

static void membership_purchase_makes_a_member_and_forgets_the_cache(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "buyer@example.com");
	fake_user_cache_store(&w->cache, &u);
	struct payment_create_request rq = request(u.id, NULL);
	rq.purpose = "membership";
	struct payment p = create_ok(w, &rq);
	fake_clock_advance_s(&w->clock, 5);
	fake_world_reset_calls(w);

	struct payment_event ev = event_for("evt_paid", EVENT_INTENT_SUCCEEDED, &p);
	assert_false(apply(w, &ev));
	const struct user *after = &fake_user_repo_find(&w->repo, u.id)->user;
	assert_int_equal(after->membership, MEMBERSHIP_MEMBER);
	assert_int_equal(after->updated_at_us, w->clock.now_us);
	/* Forgotten after the commit, so the next read sees the member. */
	assert_true(fake_log_has(&w->log, "payments.apply_event cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));

	/* checkout.session.completed for an existing member: nothing to forget. */
	fake_world_reset_calls(w);
	struct payment_event done = event_for("evt_checkout", EVENT_CHECKOUT_COMPLETED, &p);
	assert_false(apply(w, &done));
	assert_int_equal(fake_calls(&w->cache.base, "del"), 0);

	/* A top-up never touches membership. */
	struct user v = create_user(w, "topup@example.com");
	struct payment_create_request top = request(v.id, NULL);
	struct payment q = create_ok(w, &top);
	struct payment_event paid = event_for("evt_topup", EVENT_INTENT_SUCCEEDED, &q);
	assert_false(apply(w, &paid));
	assert_int_equal(fake_user_repo_find(&w->repo, v.id)->user.membership, MEMBERSHIP_FREE);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 0);
}

static void membership_of_a_deleted_user_is_no_error(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "gone@example.com");
	struct payment_create_request rq = request(u.id, NULL);
	rq.purpose = "membership";
	struct payment p = create_ok(w, &rq);
	struct hex_err err = {0};
	assert_int_equal(user_service_delete(&w->users, u.id, &err), HEX_OK);
	fake_world_reset_calls(w);
	struct payment_event ev = event_for("evt_late", EVENT_INTENT_SUCCEEDED, &p);
	assert_false(apply(w, &ev));
	/* The payment is a financial record and outlives its user. */
	assert_int_equal(status_of(w, p.id), PAYMENT_SUCCEEDED);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 0);
}

static void event_that_cannot_be_recorded_fails_and_forgets_nothing(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "retry@example.com");
	struct payment_create_request rq = request(u.id, NULL);
	rq.purpose = "membership";
	struct payment p = create_ok(w, &rq);
	struct payment_event ev = event_for("evt_retry", EVENT_INTENT_SUCCEEDED, &p);
	static const struct {
		enum hex_status injected, want;
		const char *message;
	} cases[] = {
	    {HEX_UNAVAILABLE, HEX_UNAVAILABLE, "the database is unavailable"},
	    {HEX_INTERNAL, HEX_INTERNAL, "internal error"},
	    {HEX_CONFLICT, HEX_INTERNAL, "internal error"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fake_world_reset_calls(w);
		fake_fail_next(&w->payments_repo.base, "apply_event", cases[i].injected);
		bool dup = true;
		struct hex_err err = {0};
		assert_int_equal(payment_service_apply_event(&w->payments, &ev, &dup, &err),
		                 cases[i].want);
		assert_string_equal(err.message, cases[i].message);
		assert_false(dup);
		assert_int_equal(fake_calls(&w->cache.base, "del"), 0);
		assert_int_equal(status_of(w, p.id), PAYMENT_REQUIRES_PAYMENT_METHOD);
	}
	/* Stripe delivers it again later: it is new then, not a duplicate. */
	assert_false(apply(w, &ev));
	assert_int_equal(status_of(w, p.id), PAYMENT_SUCCEEDED);
}

static void malformed_events_are_refused_before_the_repository(void **state)
{
	struct fake_world *w = *state;
	struct payment_event ev = event_for("", EVENT_INTENT_SUCCEEDED, NULL);
	bool dup = true;
	struct hex_err err = {0};
	assert_int_equal(payment_service_apply_event(&w->payments, &ev, &dup, &err), HEX_INVALID);
	assert_string_equal(err.field, "id");
	assert_false(dup);
	ev = event_for("evt_no_body", EVENT_INTENT_SUCCEEDED, NULL);
	ev.payload = NULL;
	assert_int_equal(payment_service_apply_event(&w->payments, &ev, &dup, &err), HEX_INVALID);
	assert_string_equal(err.field, "payload");
	ev = event_for("evt_x", EVENT_INTENT_SUCCEEDED, NULL);
	memset(ev.id, 'x', sizeof ev.id); /* not terminated */
	assert_int_equal(payment_service_apply_event(&w->payments, &ev, &dup, &err), HEX_INVALID);
	assert_int_equal(fake_calls(&w->payments_repo.base, "apply_event"), 0);
}

/* ---- reads ---- */

static void get_is_for_the_owner_or_an_admin(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request rq = request(ALICE, NULL);
	struct payment p = create_ok(w, &rq);
	struct payment out;
	struct hex_err err = {0};
	assert_int_equal(payment_service_get(&w->payments, ALICE, false, p.id, &out, &err), HEX_OK);
	assert_payment_equal(&out, &p);
	assert_int_equal(payment_service_get(&w->payments, "AAAAAAAA-0000-4000-8000-000000000001",
	                                     false, p.id, &out, &err),
	                 HEX_OK);
	assert_int_equal(payment_service_get(&w->payments, BOB, true, p.id, &out, &err), HEX_OK);
	assert_int_equal(payment_service_get(&w->payments, NULL, true, p.id, &out, &err), HEX_OK);

	struct payment untouched;
	memset(&untouched, 0x5a, sizeof untouched);
	out = untouched;
	assert_int_equal(payment_service_get(&w->payments, BOB, false, p.id, &out, &err),
	                 HEX_FORBIDDEN);
	assert_string_equal(err.message, "you may only see your own payments");
	assert_memory_equal(&out, &untouched, sizeof out);
	assert_int_equal(payment_service_get(&w->payments, NULL, false, p.id, &out, &err),
	                 HEX_FORBIDDEN);

	assert_int_equal(payment_service_get(&w->payments, ALICE, true, UNKNOWN_ID, &out, &err),
	                 HEX_NOT_FOUND);
	assert_string_equal(err.message, "payment not found");
	fake_world_reset_calls(w);
	assert_int_equal(payment_service_get(&w->payments, ALICE, true, "42", &out, &err),
	                 HEX_NOT_FOUND);
	assert_int_equal(payment_service_get(&w->payments, ALICE, true, NULL, &out, &err),
	                 HEX_NOT_FOUND);
	assert_int_equal(fake_calls(&w->payments_repo.base, "get"), 0);
	fake_fail_next(&w->payments_repo.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(payment_service_get(&w->payments, ALICE, false, p.id, &out, &err),
	                 HEX_UNAVAILABLE);
}

static struct payment_page *list_ok(struct fake_world *w, const char *caller, bool admin,
                                    const struct payment_list_request *rq)
{
	static struct payment_page page;
	struct hex_err err = {0};
	enum hex_status st = payment_service_list(&w->payments, caller, admin, rq, &page, &err);
	if (st != HEX_OK)
		fail_msg("list: %s: %s", hex_status_name(st), err.message);
	return &page;
}

static void list_scopes_to_the_caller_unless_admin(void **state)
{
	struct fake_world *w = *state;
	for (int i = 0; i < 3; i++) {
		struct payment_create_request a = request(ALICE, NULL), b = request(BOB, NULL);
		create_ok(w, &a);
		fake_clock_advance_s(&w->clock, 1);
		create_ok(w, &b);
		fake_clock_advance_s(&w->clock, 1);
	}
	struct payment_list_request rq = {.limit = 20};
	struct payment_page *page = list_ok(w, ALICE, false, &rq);
	assert_int_equal(page->count, 3);
	for (int i = 0; i < page->count; i++)
		assert_string_equal(page->items[i].user_id, ALICE);
	assert_string_equal(w->payments_repo.last_filter.user_id, ALICE);

	page = list_ok(w, ALICE, true, &rq);
	assert_int_equal(page->count, 6);
	assert_null(w->payments_repo.last_filter.user_id);

	rq.user_id = "BBBBBBBB-0000-4000-8000-000000000002";
	page = list_ok(w, ALICE, true, &rq);
	assert_int_equal(page->count, 3);
	assert_string_equal(w->payments_repo.last_filter.user_id, BOB);
	page = list_ok(w, BOB, false, &rq);
	assert_int_equal(page->count, 3);

	struct hex_err err = {0};
	struct payment_page other;
	fake_world_reset_calls(w);
	assert_int_equal(payment_service_list(&w->payments, ALICE, false, &rq, &other, &err),
	                 HEX_FORBIDDEN);
	rq.user_id = NULL;
	assert_int_equal(payment_service_list(&w->payments, NULL, false, &rq, &other, &err),
	                 HEX_FORBIDDEN);
	assert_int_equal(fake_calls(&w->payments_repo.base, "list"), 0);
}

static void list_walks_newest_first_with_a_cursor(void **state)
{
	struct fake_world *w = *state;
	char ids[5][HEX_ID_LEN + 1];
	for (int i = 0; i < 5; i++) {
		struct payment_create_request rq = request(ALICE, NULL);
		rq.amount = 100 + i;
		struct payment p = create_ok(w, &rq);
		memcpy(ids[i], p.id, sizeof ids[i]);
		/* Two share a time stamp: the id breaks the tie. */
		if (i != 1)
			fake_clock_advance_s(&w->clock, 1);
	}
	struct payment_cursor cur;
	struct payment_list_request rq = {.limit = 2};
	char seen[5][HEX_ID_LEN + 1];
	int n = 0;
	for (int page_no = 0; page_no < 3; page_no++) {
		struct payment_page *page = list_ok(w, ALICE, false, &rq);
		for (int i = 0; i < page->count; i++)
			memcpy(seen[n++], page->items[i].id, HEX_ID_LEN + 1);
		assert_int_equal(page->has_more, page_no < 2);
		if (!page->has_more)
			break;
		cur.created_at_us = page->items[page->count - 1].created_at_us;
		memcpy(cur.id, page->items[page->count - 1].id, sizeof cur.id);
		rq.after = &cur;
	}
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(seen[i], ids[4 - i]);
}

static void list_checks_every_parameter(void **state)
{
	struct fake_world *w = *state;
	struct payment_create_request c = request(ALICE, NULL);
	struct payment p = create_ok(w, &c);
	struct payment_cursor bad_cursor = {.created_at_us = 1, .id = "nope"};
	struct {
		struct payment_list_request rq;
		const char *field;
	} cases[] = {
	    {{.limit = 0}, "limit"},
	    {{.limit = HEX_LIST_MAX + 1}, "limit"},
	    {{.limit = -1}, "limit"},
	    {{.limit = 10, .user_id = "alice"}, "user_id"},
	    {{.limit = 10, .status = "paid"}, "status"},
	    {{.limit = 10, .status = ""}, "status"},
	    {{.limit = 10, .after = &bad_cursor}, "cursor"},
	};
	fake_world_reset_calls(w);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct payment_page page;
		struct hex_err err = {0};
		assert_int_equal(
		    payment_service_list(&w->payments, ALICE, true, &cases[i].rq, &page, &err),
		    HEX_INVALID);
		assert_string_equal(err.field, cases[i].field);
	}
	assert_int_equal(fake_calls(&w->payments_repo.base, "list"), 0);

	struct payment_list_request rq = {.limit = HEX_LIST_MAX, .status = "succeeded"};
	struct payment_page *page = list_ok(w, ALICE, false, &rq);
	assert_int_equal(page->count, 0);
	assert_int_equal(w->payments_repo.last_filter.status, PAYMENT_SUCCEEDED);
	rq.status = "requires_payment_method";
	page = list_ok(w, ALICE, false, &rq);
	assert_int_equal(page->count, 1);
	assert_string_equal(page->items[0].id, p.id);

	struct payment_page out;
	struct hex_err err = {0};
	fake_fail_next(&w->payments_repo.base, "list", HEX_UNAVAILABLE);
	assert_int_equal(payment_service_list(&w->payments, ALICE, false, &rq, &out, &err),
	                 HEX_UNAVAILABLE);
}

/* ---- the old membership hook ---- */

static enum hex_status hook(struct fake_world *w, const char *event_id, const char *user_id,
                            const char *status, bool *dup, struct hex_err *err)
{
	return payment_service_membership_hook(&w->payments, event_id, user_id, status, dup, err);
}

static void hook_sets_membership_once_per_event(void **state)
{
	struct fake_world *w = *state;
	struct user u = add_user(w, "abcdef00-0000-4000-8000-0000000000ab", "hook@example.com");
	fake_user_cache_store(&w->cache, &u);
	fake_clock_advance_s(&w->clock, 10);
	fake_world_reset_calls(w);
	bool dup = true;
	struct hex_err err = {0};
	assert_int_equal(
	    hook(w, "mev_1", "ABCDEF00-0000-4000-8000-0000000000AB", "member", &dup, &err), HEX_OK);
	assert_false(dup);
	const struct user *row = &fake_user_repo_find(&w->repo, u.id)->user;
	assert_int_equal(row->membership, MEMBERSHIP_MEMBER);
	assert_int_equal(row->updated_at_us, w->clock.now_us);
	assert_true(fake_log_has(&w->log, "payments.record_membership_event cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));
	assert_string_equal(w->payments_repo.membership_events[0].user_id, u.id);

	/* The same event id again, even saying free: a duplicate, nothing changes. */
	fake_user_cache_store(&w->cache, row);
	fake_world_reset_calls(w);
	assert_int_equal(hook(w, "mev_1", u.id, "free", &dup, &err), HEX_OK);
	assert_true(dup);
	assert_int_equal(row->membership, MEMBERSHIP_MEMBER);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 0);

	assert_int_equal(hook(w, "mev_2", u.id, "free", &dup, &err), HEX_OK);
	assert_false(dup);
	assert_int_equal(row->membership, MEMBERSHIP_FREE);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 1);

	/* Without an event id every call applies; duplicate may be NULL. */
	assert_int_equal(hook(w, NULL, u.id, "member", NULL, &err), HEX_OK);
	assert_int_equal(hook(w, NULL, u.id, "member", &dup, &err), HEX_OK);
	assert_false(dup);
	assert_int_equal(row->membership, MEMBERSHIP_MEMBER);
	assert_int_equal(w->payments_repo.nmembership_events, 2);
}

static void hook_refuses_bad_input_and_unknown_users(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "hook2@example.com");
	char long_id[HEX_EVENT_ID_MAX + 2];
	memset(long_id, 'e', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	struct {
		const char *event_id, *user_id, *status, *field;
	} cases[] = {
	    {"", u.id, "member", "event_id"},      {"has space", u.id, "member", "event_id"},
	    {long_id, u.id, "member", "event_id"}, {"mev", NULL, "member", "user_id"},
	    {"mev", "bob", "member", "user_id"},   {"mev", u.id, NULL, "membership"},
	    {"mev", u.id, "gold", "membership"},   {"mev", u.id, "Member", "membership"},
	};
	fake_world_reset_calls(w);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool dup = true;
		struct hex_err err = {0};
		assert_int_equal(
		    hook(w, cases[i].event_id, cases[i].user_id, cases[i].status, &dup, &err),
		    HEX_INVALID);
		assert_string_equal(err.field, cases[i].field);
		assert_false(dup);
	}
	assert_int_equal(fake_calls(&w->payments_repo.base, "record_membership_event"), 0);

	struct hex_err err = {0};
	assert_int_equal(hook(w, "mev_unknown", UNKNOWN_ID, "member", NULL, &err), HEX_NOT_FOUND);
	assert_string_equal(err.message, "user not found");
	/* Not recorded: the same event can succeed once the user exists. */
	assert_int_equal(w->payments_repo.nmembership_events, 0);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 0);

	fake_fail_next(&w->payments_repo.base, "record_membership_event", HEX_UNAVAILABLE);
	assert_int_equal(hook(w, "mev_down", u.id, "member", NULL, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the database is unavailable");
	assert_int_equal(fake_user_repo_find(&w->repo, u.id)->user.membership, MEMBERSHIP_FREE);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(create_stores_the_request_before_the_provider_call,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(create_without_key_makes_a_new_payment_each_time, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(create_with_same_key_answers_the_first_payment, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(client_keys_belong_to_their_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(key_reused_with_other_parameters_is_a_conflict, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(invalid_requests_store_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(timeout_then_retry_reuses_the_stored_provider_key,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(lost_answer_then_retry_creates_one_intent, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(storing_the_answer_fails_then_retry_recovers_it, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(provider_refusal_marks_failed_and_is_replayed, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(refusal_without_message_gets_a_sentence, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(refusal_that_cannot_be_stored_is_still_a_refusal, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(other_provider_failures_map_to_statuses, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(database_failures_before_the_call_reach_no_provider,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(a_trace_parent_that_does_not_fit_is_not_sent, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(the_intent_status_is_stored, setup, teardown),
	    cmocka_unit_test_setup_teardown(concurrent_insert_loser_resumes_the_winner, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(concurrent_winner_with_an_intent_is_answered_as_is,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(concurrent_winner_with_other_parameters_is_a_conflict,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(each_kind_has_its_effect, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        an_event_finds_its_payment_by_metadata_and_learns_the_intent, setup, teardown),
	    cmocka_unit_test_setup_teardown(duplicate_event_changes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(unknown_payment_is_recorded, setup, teardown),
	    cmocka_unit_test_setup_teardown(every_order_ends_in_the_same_state_membership, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(every_order_ends_in_the_same_state_top_up, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        membership_purchase_makes_a_member_and_forgets_the_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(membership_of_a_deleted_user_is_no_error, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(event_that_cannot_be_recorded_fails_and_forgets_nothing,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(malformed_events_are_refused_before_the_repository,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(get_is_for_the_owner_or_an_admin, setup, teardown),
	    cmocka_unit_test_setup_teardown(list_scopes_to_the_caller_unless_admin, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(list_walks_newest_first_with_a_cursor, setup, teardown),
	    cmocka_unit_test_setup_teardown(list_checks_every_parameter, setup, teardown),
	    cmocka_unit_test_setup_teardown(hook_sets_membership_once_per_event, setup, teardown),
	    cmocka_unit_test_setup_teardown(hook_refuses_bad_input_and_unknown_users, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
