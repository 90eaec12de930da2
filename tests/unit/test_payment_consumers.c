/*
 * test_payment_consumers: the ledger, membership and notify consumers of Stripe's payment
 * events, over a fake decoder, a fake payment lookup, the real ledger service on a fake
 * ledger repository, and the fake user cache; and the ledger consumer run by the real
 * event_consumer, to see which failures are retried and which are dead-lettered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/payment_consumers.h"
#include "core/xmalloc.h"
#include "support/fake_events.h"

#define T0_US     (FAKE_T0_S * 1000000LL)
#define ALICE     "aaaaaaaa-0000-4000-8000-00000000000a"
#define BOB       "bbbbbbbb-0000-4000-8000-00000000000b"
#define CAROL     "cccccccc-0000-4000-8000-00000000000c"
#define TOP_UP    "11111111-0000-4000-8000-000000000001" /* Alice's 1099 usd wallet top-up */
#define MEMBER    "22222222-0000-4000-8000-000000000002" /* Bob's 999 usd membership */
#define SMALL     "33333333-0000-4000-8000-000000000003" /* Carol's 500 usd wallet top-up */
#define NOBODY    "44444444-0000-4000-8000-000000000004" /* a payment id nobody made */
#define PI_TOP_UP "pi_topup"
#define PI_MEMBER "pi_member"

struct fx {
	struct fake_log log;
	struct fake_clock clock;
	struct fake_ids ids;
	struct fake_decoder decoder;
	struct fake_payment_lookup payments;
	struct fake_ledger_repo ledger;
	struct fake_user_cache cache;
	struct payment_consumers pc;
	struct hex_err err;
};

static struct payment payment(const char *id, const char *user, int64_t amount,
                              enum payment_purpose purpose, const char *intent)
{
	struct payment p = {.amount = amount, .purpose = purpose, .status = PAYMENT_PROCESSING};
	hex_strlcpy(p.id, id, sizeof p.id);
	hex_strlcpy(p.user_id, user, sizeof p.user_id);
	hex_strlcpy(p.currency, "usd", sizeof p.currency);
	hex_strlcpy(p.stripe_payment_intent_id, intent, sizeof p.stripe_payment_intent_id);
	p.created_at_us = p.updated_at_us = T0_US;
	return p;
}

static void cache_user(struct fx *fx, const char *id)
{
	struct user u = {.membership = MEMBERSHIP_FREE, .role = ROLE_USER};
	hex_strlcpy(u.id, id, sizeof u.id);
	snprintf(u.email, sizeof u.email, "%.8s@example.com", id);
	fake_user_cache_store(&fx->cache, &u);
}

static int setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof *fx);
	fx->clock.now_us = T0_US;
	fx->pc = (struct payment_consumers){
	    .ledger = {.repo = fake_ledger_repo_port(&fx->ledger, &fx->log),
	               .clock = fake_clock_port(&fx->clock),
	               .ids = fake_ids_port(&fx->ids)},
	    .payments = fake_payment_lookup_port(&fx->payments, &fx->log),
	    .cache = fake_user_cache_port(&fx->cache),
	    .decoder = fake_decoder_port(&fx->decoder, &fx->log),
	};
	fx->cache.base.log = &fx->log;
	struct payment p = payment(TOP_UP, ALICE, 1099, PURPOSE_WALLET_TOP_UP, PI_TOP_UP);
	fake_payment_lookup_add(&fx->payments, &p);
	p = payment(MEMBER, BOB, 999, PURPOSE_MEMBERSHIP, PI_MEMBER);
	fake_payment_lookup_add(&fx->payments, &p);
	p = payment(SMALL, CAROL, 500, PURPOSE_WALLET_TOP_UP, "");
	fake_payment_lookup_add(&fx->payments, &p);
	cache_user(fx, ALICE);
	cache_user(fx, BOB);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static const char *const type_of[] = {
    [EVENT_INTENT_SUCCEEDED] = "payment_intent.succeeded",
    [EVENT_INTENT_FAILED] = "payment_intent.payment_failed",
    [EVENT_CHECKOUT_COMPLETED] = "checkout.session.completed",
    [EVENT_CHARGE_REFUNDED] = "charge.refunded",
    [EVENT_OTHER] = "customer.created",
};

/* Teaches the decoder that payload is event id of kind about payment_id / intent_id. */
static void event(struct fx *fx, const char *id, enum payment_event_kind kind,
                  const char *payment_id, const char *intent_id, int64_t amount,
                  const char *currency)
{
	struct payment_event ev = {.kind = kind, .amount = amount, .created_s = FAKE_T0_S};
	hex_strlcpy(ev.id, id, sizeof ev.id);
	hex_strlcpy(ev.type, type_of[kind], sizeof ev.type);
	hex_strlcpy(ev.payment_id, payment_id, sizeof ev.payment_id);
	hex_strlcpy(ev.intent_id, intent_id, sizeof ev.intent_id);
	hex_strlcpy(ev.currency, currency, sizeof ev.currency);
	char payload[64];
	snprintf(payload, sizeof payload, "{\"id\":\"%s\"}", id);
	fake_decoder_add(&fx->decoder, payload, &ev);
}

static event_handler_fn handler_of(const char *name)
{
	for (int i = 0; i < payment_consumer_count; i++)
		if (strcmp(payment_consumer_defs[i].name, name) == 0)
			return payment_consumer_defs[i].handle;
	fail_msg("no consumer %s", name);
	return NULL;
}

/* Runs consumer on the stored payload of event id (or on raw text if no such event). */
static enum hex_status run_payload(struct fx *fx, const char *consumer, const char *payload)
{
	struct event_msg m = {.attempt = 1};
	hex_strlcpy(m.stream_id, "1-0", sizeof m.stream_id);
	hex_strlcpy(m.event_id, "evt", sizeof m.event_id);
	hex_strlcpy(m.topic, EVENT_TOPIC_PAYMENTS, sizeof m.topic);
	m.payload = xstrdup(payload);
	m.payload_len = strlen(payload);
	memset(&fx->err, 0, sizeof fx->err);
	enum hex_status st = handler_of(consumer)(&fx->pc, &m, &fx->err);
	free(m.payload);
	return st;
}

static enum hex_status run(struct fx *fx, const char *consumer, const char *event_id)
{
	char payload[64];
	snprintf(payload, sizeof payload, "{\"id\":\"%s\"}", event_id);
	return run_payload(fx, consumer, payload);
}

static int64_t wallet(const struct fx *fx, const char *user)
{
	return fake_ledger_repo_balance(&fx->ledger, LEDGER_WALLET, user, "usd");
}

static int64_t system_account(const struct fx *fx, enum ledger_account_kind kind)
{
	return fake_ledger_repo_balance(&fx->ledger, kind, "", "usd");
}

static const struct ledger_txn *posted(const struct fx *fx, const char *what, const char *id)
{
	char key[LEDGER_KEY_MAX + 1];
	snprintf(key, sizeof key, "%s:%s", what, id);
	return fake_ledger_repo_find(&fx->ledger, key);
}

static void assert_nothing_posted(const struct fx *fx)
{
	assert_int_equal(fx->ledger.ntxns, 0);
	assert_int_equal(wallet(fx, ALICE), 0);
	assert_int_equal(system_account(fx, LEDGER_STRIPE_CLEARING), 0);
}

/* ---- the table ---- */

static void every_consumer_is_declared_once_in_start_order(void **state)
{
	assert_int_equal(payment_consumer_count, 3);
	const char *want[] = {"ledger", "membership", "notify"};
	for (int i = 0; i < payment_consumer_count; i++) {
		assert_string_equal(payment_consumer_defs[i].name, want[i]);
		assert_true(event_consumer_name_valid(payment_consumer_defs[i].name));
		assert_non_null(payment_consumer_defs[i].handle);
		for (int j = 0; j < i; j++)
			assert_true(payment_consumer_defs[i].handle !=
			            payment_consumer_defs[j].handle);
	}
}

/* ---- ledger ---- */

static void ledger_credits_a_wallet_top_up_to_its_user(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_OK);

	const struct ledger_txn *t = posted(fx, "payment", TOP_UP);
	assert_non_null(t);
	assert_string_equal(t->reference, "payment:" TOP_UP);
	assert_int_equal(t->n, 2);
	assert_int_equal(wallet(fx, ALICE), 1099);
	assert_int_equal(system_account(fx, LEDGER_STRIPE_CLEARING), -1099);
	assert_int_equal(system_account(fx, LEDGER_MEMBERSHIP_REVENUE), 0);
	assert_int_equal(wallet(fx, BOB), 0);
	assert_int_equal(fx->ledger.ntxns, 1);
	assert_int_equal(fake_calls(&fx->payments.base, "get"), 1);
	assert_int_equal(fake_calls(&fx->payments.base, "get_by_intent"), 0);
}

static void ledger_books_the_amount_the_event_received(void **state)
{
	struct fx *fx = *state;
	/* What Stripe says it received is what the books hold... */
	event(fx, "evt_more", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1200, "usd");
	assert_int_equal(run(fx, "ledger", "evt_more"), HEX_OK);
	assert_int_equal(wallet(fx, ALICE), 1200);
	/* ...and an event that leaves the amount out books the payment's. */
	event(fx, "evt_no_amount", EVENT_CHECKOUT_COMPLETED, SMALL, "", 0, "");
	assert_int_equal(run(fx, "ledger", "evt_no_amount"), HEX_OK);
	assert_int_equal(wallet(fx, CAROL), 500);
	assert_int_equal(system_account(fx, LEDGER_STRIPE_CLEARING), -1700);
}

static void ledger_posts_a_payment_once_for_both_success_events(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_cs", EVENT_CHECKOUT_COMPLETED, MEMBER, "", 999, "usd");
	event(fx, "evt_pi", EVENT_INTENT_SUCCEEDED, MEMBER, PI_MEMBER, 999, "usd");
	event(fx, "evt_topup_pi", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_topup_cs", EVENT_CHECKOUT_COMPLETED, "", PI_TOP_UP, 1099, "usd");

	assert_int_equal(run(fx, "ledger", "evt_cs"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_pi"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_topup_pi"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_topup_cs"), HEX_OK);

	/* Four posts asked for, one transaction per payment under "payment:<id>". */
	assert_int_equal(fake_calls(&fx->ledger.base, "post"), 4);
	assert_int_equal(fx->ledger.ntxns, 2);
	assert_non_null(posted(fx, "payment", MEMBER));
	assert_non_null(posted(fx, "payment", TOP_UP));
	assert_int_equal(system_account(fx, LEDGER_MEMBERSHIP_REVENUE), 999);
	assert_int_equal(wallet(fx, ALICE), 1099);
	assert_int_equal(system_account(fx, LEDGER_STRIPE_CLEARING), -2098);
}

static void ledger_books_a_membership_as_revenue(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_cs", EVENT_CHECKOUT_COMPLETED, MEMBER, "", 999, "usd");
	assert_int_equal(run(fx, "ledger", "evt_cs"), HEX_OK);
	const struct ledger_txn *t = posted(fx, "payment", MEMBER);
	assert_non_null(t);
	assert_int_equal(t->n, 2);
	for (int i = 0; i < t->n; i++) {
		const struct ledger_entry *e = &t->entries[i];
		assert_int_not_equal(e->account.kind, LEDGER_WALLET); /* nobody's wallet */
		assert_int_equal(e->amount,
		                 e->account.kind == LEDGER_MEMBERSHIP_REVENUE ? 999 : -999);
	}
	assert_int_equal(system_account(fx, LEDGER_MEMBERSHIP_REVENUE), 999);
	assert_int_equal(system_account(fx, LEDGER_STRIPE_CLEARING), -999);
	assert_int_equal(wallet(fx, BOB), 0);
}

static void ledger_reverses_a_refunded_payment(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_refund", EVENT_CHARGE_REFUNDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_refund"), HEX_OK);

	const struct ledger_txn *orig = posted(fx, "payment", TOP_UP);
	const struct ledger_txn *rev = posted(fx, "refund", TOP_UP);
	assert_non_null(orig);
	assert_non_null(rev);
	assert_string_equal(rev->reference, "refund:" TOP_UP);
	assert_int_equal(rev->n, orig->n);
	for (int i = 0; i < rev->n; i++) {
		assert_int_equal(rev->entries[i].account.kind, orig->entries[i].account.kind);
		assert_string_equal(rev->entries[i].account.owner_id,
		                    orig->entries[i].account.owner_id);
		assert_int_equal(rev->entries[i].amount, -orig->entries[i].amount);
	}
	assert_int_equal(wallet(fx, ALICE), 0);
	assert_int_equal(system_account(fx, LEDGER_STRIPE_CLEARING), 0);

	/* Delivered again: moves nothing more. */
	assert_int_equal(run(fx, "ledger", "evt_refund"), HEX_OK);
	assert_int_equal(fx->ledger.ntxns, 2);
	assert_int_equal(wallet(fx, ALICE), 0);
}

static void ledger_reverses_a_membership_refund_without_amount(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_cs", EVENT_CHECKOUT_COMPLETED, MEMBER, "", 999, "usd");
	event(fx, "evt_refund", EVENT_CHARGE_REFUNDED, "", PI_MEMBER, 0, "");
	assert_int_equal(run(fx, "ledger", "evt_cs"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_refund"), HEX_OK);
	assert_non_null(posted(fx, "refund", MEMBER));
	assert_int_equal(system_account(fx, LEDGER_MEMBERSHIP_REVENUE), 0);
	assert_int_equal(system_account(fx, LEDGER_STRIPE_CLEARING), 0);
}

static void ledger_refund_before_its_success_is_retryable(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_refund", EVENT_CHARGE_REFUNDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");

	assert_int_equal(run(fx, "ledger", "evt_refund"), HEX_NOT_FOUND); /* not HEX_INVALID */
	assert_string_equal(fx->err.message,
	                    "refund of payment " TOP_UP " before its success was posted");
	assert_nothing_posted(fx);

	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_refund"), HEX_OK);
	assert_int_equal(wallet(fx, ALICE), 0);
	assert_int_equal(fx->ledger.ntxns, 2);
}

static void ledger_refuses_a_partial_refund(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_part", EVENT_CHARGE_REFUNDED, TOP_UP, PI_TOP_UP, 500, "usd");
	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_part"), HEX_INVALID);
	assert_non_null(strstr(fx->err.message, "partial refund of 500"));
	assert_non_null(strstr(fx->err.message, TOP_UP));
	assert_null(posted(fx, "refund", TOP_UP));
	assert_int_equal(wallet(fx, ALICE), 1099);
}

static void ledger_refuses_an_event_in_another_currency(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_eur", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "eur");
	assert_int_equal(run(fx, "ledger", "evt_eur"), HEX_INVALID);
	assert_string_equal(fx->err.message, "event evt_eur is in eur, payment " TOP_UP " in usd");
	assert_nothing_posted(fx);

	/* A refund in another currency is refused the same way. */
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_refund_eur", EVENT_CHARGE_REFUNDED, TOP_UP, PI_TOP_UP, 1099, "eur");
	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_refund_eur"), HEX_INVALID);
	assert_null(posted(fx, "refund", TOP_UP));
	assert_int_equal(wallet(fx, ALICE), 1099);
}

static void ledger_dead_letters_an_event_naming_a_missing_payment(void **state)
{
	struct fx *fx = *state;
	/* Even with an intent of a payment we know: the named id is what the event is about. */
	event(fx, "evt_ghost", EVENT_INTENT_SUCCEEDED, NOBODY, PI_TOP_UP, 1099, "usd");
	assert_int_equal(run(fx, "ledger", "evt_ghost"), HEX_INVALID);
	assert_string_equal(fx->err.message,
	                    "event evt_ghost names payment " NOBODY ", which does not exist");
	assert_int_equal(fake_calls(&fx->payments.base, "get_by_intent"), 0);
	assert_nothing_posted(fx);
}

static void ledger_ignores_payments_it_never_made(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_other_app", EVENT_INTENT_SUCCEEDED, "", "pi_not_ours", 5000, "usd");
	event(fx, "evt_bare", EVENT_INTENT_SUCCEEDED, "", "", 5000, "usd");
	event(fx, "evt_other_refund", EVENT_CHARGE_REFUNDED, "", "pi_not_ours", 5000, "usd");
	assert_int_equal(run(fx, "ledger", "evt_other_app"), HEX_OK);
	assert_int_equal(fake_calls(&fx->payments.base, "get_by_intent"), 1);
	assert_int_equal(run(fx, "ledger", "evt_bare"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_other_refund"), HEX_OK);
	assert_int_equal(fake_calls(&fx->payments.base, "get_by_intent"), 2);
	assert_int_equal(fake_calls(&fx->payments.base, "get"), 0);
	assert_int_equal(fake_calls(&fx->ledger.base, "post"), 0);
	assert_int_equal(fake_calls(&fx->ledger.base, "get_by_key"), 0);
}

static void ledger_finds_the_payment_by_its_intent(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_pi", EVENT_INTENT_SUCCEEDED, "", PI_TOP_UP, 1099, "usd");
	assert_int_equal(run(fx, "ledger", "evt_pi"), HEX_OK);
	assert_int_equal(fake_calls(&fx->payments.base, "get"), 0);
	assert_int_equal(fake_calls(&fx->payments.base, "get_by_intent"), 1);
	assert_non_null(posted(fx, "payment", TOP_UP));
	assert_int_equal(wallet(fx, ALICE), 1099);
}

static void ledger_retries_when_payments_cannot_be_read(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_pi", EVENT_INTENT_SUCCEEDED, "", PI_TOP_UP, 1099, "usd");

	fake_fail_next(&fx->payments.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_UNAVAILABLE);
	assert_string_equal(fx->err.message, "the payment cannot be read: unavailable");
	fake_fail_next(&fx->payments.base, "get_by_intent", HEX_UNAVAILABLE);
	assert_int_equal(run(fx, "ledger", "evt_pi"), HEX_UNAVAILABLE);
	fake_fail_next(&fx->payments.base, "get", HEX_INTERNAL);
	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_INTERNAL);
	assert_nothing_posted(fx);

	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_OK);
	assert_int_equal(wallet(fx, ALICE), 1099);
}

static void ledger_retries_when_the_ledger_is_down(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_refund", EVENT_CHARGE_REFUNDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	fake_fail_next(&fx->ledger.base, "post", HEX_UNAVAILABLE);
	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_UNAVAILABLE);
	assert_nothing_posted(fx);
	assert_int_equal(run(fx, "ledger", "evt_ok"), HEX_OK);

	fake_fail_next(&fx->ledger.base, "get_by_key", HEX_UNAVAILABLE);
	assert_int_equal(run(fx, "ledger", "evt_refund"), HEX_UNAVAILABLE);
	assert_null(posted(fx, "refund", TOP_UP));
}

static void ledger_dead_letters_an_undecodable_payload(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(run_payload(fx, "ledger", "<html>502 Bad Gateway</html>"), HEX_INVALID);
	assert_string_equal(fx->err.message, "not a payment event: unexpected token at offset 0");
	assert_int_equal(fake_calls(&fx->decoder.base, "decode"), 1);
	assert_int_equal(fake_calls(&fx->payments.base, "get"), 0);
	assert_int_equal(fake_calls(&fx->payments.base, "get_by_intent"), 0);
	assert_nothing_posted(fx);
}

static void ledger_ignores_other_event_types(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_failed", EVENT_INTENT_FAILED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_other", EVENT_OTHER, TOP_UP, PI_TOP_UP, 1099, "usd");
	assert_int_equal(run(fx, "ledger", "evt_failed"), HEX_OK);
	assert_int_equal(run(fx, "ledger", "evt_other"), HEX_OK);
	assert_int_equal(fake_calls(&fx->payments.base, "get"), 0);
	assert_int_equal(fake_calls(&fx->ledger.base, "post"), 0);
	assert_nothing_posted(fx);
}

/* ---- membership ---- */

static void membership_drops_a_new_members_cached_user(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_cs", EVENT_CHECKOUT_COMPLETED, MEMBER, "", 999, "usd");
	event(fx, "evt_pi", EVENT_INTENT_SUCCEEDED, "", PI_MEMBER, 999, "usd");
	assert_int_equal(run(fx, "membership", "evt_cs"), HEX_OK);
	assert_false(fake_user_cache_peek(&fx->cache, BOB, NULL));
	assert_true(fake_user_cache_peek(&fx->cache, ALICE, NULL));
	assert_int_equal(fake_calls(&fx->cache.base, "del"), 1);

	/* The other success event of the same payment drops it again: harmless. */
	cache_user(fx, BOB);
	assert_int_equal(run(fx, "membership", "evt_pi"), HEX_OK);
	assert_false(fake_user_cache_peek(&fx->cache, BOB, NULL));
	assert_int_equal(fake_calls(&fx->cache.base, "del"), 2);
	/* It books nothing: that is the ledger consumer's job. */
	assert_int_equal(fake_calls(&fx->ledger.base, "post"), 0);
}

static void membership_retries_while_the_cache_cannot_drop(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_cs", EVENT_CHECKOUT_COMPLETED, MEMBER, "", 999, "usd");
	fx->cache.down = true;
	assert_int_equal(run(fx, "membership", "evt_cs"), HEX_UNAVAILABLE);
	assert_string_equal(fx->err.message, "the cached user " BOB " cannot be dropped");
	fx->cache.down = false;
	fake_fail_next(&fx->cache.base, "del", HEX_UNAVAILABLE);
	assert_int_equal(run(fx, "membership", "evt_cs"), HEX_UNAVAILABLE);
	assert_true(fake_user_cache_peek(&fx->cache, BOB, NULL));

	assert_int_equal(run(fx, "membership", "evt_cs"), HEX_OK);
	assert_false(fake_user_cache_peek(&fx->cache, BOB, NULL));
}

static void membership_leaves_the_cache_alone_otherwise(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_topup", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_refund", EVENT_CHARGE_REFUNDED, MEMBER, PI_MEMBER, 999, "usd");
	event(fx, "evt_failed", EVENT_INTENT_FAILED, MEMBER, PI_MEMBER, 999, "usd");
	event(fx, "evt_other_app", EVENT_CHECKOUT_COMPLETED, "", "pi_not_ours", 999, "usd");
	const char *ids[] = {"evt_topup", "evt_refund", "evt_failed", "evt_other_app"};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		assert_int_equal(run(fx, "membership", ids[i]), HEX_OK);
	assert_int_equal(fake_calls(&fx->cache.base, "del"), 0);
	assert_true(fake_user_cache_peek(&fx->cache, ALICE, NULL));
	assert_true(fake_user_cache_peek(&fx->cache, BOB, NULL));
}

static void membership_without_a_cache_has_nothing_to_drop(void **state)
{
	struct fx *fx = *state;
	fx->pc.cache = (struct user_cache){0};
	event(fx, "evt_cs", EVENT_CHECKOUT_COMPLETED, MEMBER, "", 999, "usd");
	assert_int_equal(run(fx, "membership", "evt_cs"), HEX_OK);
	assert_int_equal(fake_calls(&fx->cache.base, "del"), 0);
}

static void membership_sorts_failures_like_the_ledger(void **state)
{
	struct fx *fx = *state;
	/* A payment that does not exist has no member to drop: one dead letter (the
	 * ledger's) per poison event, not one per consumer. */
	event(fx, "evt_ghost", EVENT_CHECKOUT_COMPLETED, NOBODY, "", 999, "usd");
	assert_int_equal(run(fx, "membership", "evt_ghost"), HEX_OK);
	assert_int_equal(run_payload(fx, "membership", "garbage"), HEX_INVALID);
	event(fx, "evt_cs", EVENT_CHECKOUT_COMPLETED, MEMBER, "", 999, "usd");
	fake_fail_next(&fx->payments.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(run(fx, "membership", "evt_cs"), HEX_UNAVAILABLE);
	assert_int_equal(fake_calls(&fx->cache.base, "del"), 0);
	assert_true(fake_user_cache_peek(&fx->cache, BOB, NULL));
}

/* ---- notify ---- */

static void notify_accepts_every_event_it_can_read(void **state)
{
	struct fx *fx = *state;
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_refund", EVENT_CHARGE_REFUNDED, "", PI_MEMBER, 0, "");
	event(fx, "evt_other", EVENT_OTHER, "", "", 0, "");
	event(fx, "evt_ghost", EVENT_INTENT_SUCCEEDED, NOBODY, "", 1, "eur");
	const char *ids[] = {"evt_ok", "evt_refund", "evt_other", "evt_ghost"};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		assert_int_equal(run(fx, "notify", ids[i]), HEX_OK);
	assert_int_equal(fake_calls(&fx->decoder.base, "decode"), 4);
	assert_int_equal(fake_calls(&fx->payments.base, "get"), 0);
	assert_int_equal(fake_calls(&fx->payments.base, "get_by_intent"), 0);
	assert_int_equal(fake_calls(&fx->ledger.base, "post"), 0);
	assert_int_equal(fake_calls(&fx->cache.base, "del"), 0);

	assert_int_equal(run_payload(fx, "notify", "{\"truncated\":"), HEX_INVALID);
	assert_non_null(strstr(fx->err.message, "not a payment event"));
}

/* ---- the ledger consumer inside the real event_consumer ---- */

struct pipeline {
	struct fake_inbox inbox;
	struct fake_stream stream;
	struct event_consumer_stats stats;
	struct event_consumer c;
};

static void pipeline_init(struct pipeline *p, struct fx *fx)
{
	memset(p, 0, sizeof *p);
	p->c = (struct event_consumer){
	    .name = "ledger",
	    .topic = EVENT_TOPIC_PAYMENTS,
	    .member = "m1",
	    .inbox = fake_inbox_port(&p->inbox, NULL),
	    .stream = fake_stream_port(&p->stream, NULL),
	    .clock = fake_clock_port(&fx->clock),
	    .retry = {.max_attempts = 3, .base_ms = 1000, .max_ms = 10000},
	    .claim_idle_ms = 30000,
	    .batch = 8,
	    .block_ms = 0,
	    .handle = handler_of("ledger"),
	    .handler_ctx = &fx->pc,
	    .seed = 7,
	    .stats = &p->stats,
	};
}

static void deliver(struct pipeline *p, const char *stream_id, const char *event_id, int attempt)
{
	char payload[64];
	snprintf(payload, sizeof payload, "{\"id\":\"%s\"}", event_id);
	fake_stream_push(&p->stream, false, stream_id, event_id, attempt, payload);
}

static void consumer_retries_early_refunds_and_dead_letters_the_hopeless(void **state)
{
	struct fx *fx = *state;
	struct pipeline *p = xcalloc(1, sizeof *p);
	pipeline_init(p, fx);
	event(fx, "evt_refund", EVENT_CHARGE_REFUNDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_ok", EVENT_INTENT_SUCCEEDED, TOP_UP, PI_TOP_UP, 1099, "usd");
	event(fx, "evt_ghost", EVENT_INTENT_SUCCEEDED, NOBODY, "", 1099, "usd");
	event(fx, "evt_member", EVENT_CHECKOUT_COMPLETED, MEMBER, "", 999, "usd");
	event(fx, "evt_part", EVENT_CHARGE_REFUNDED, MEMBER, "", 1, "usd");
	deliver(p, "1-0", "evt_refund", 1);
	deliver(p, "2-0", "evt_ok", 1);
	deliver(p, "3-0", "evt_ghost", 1);
	deliver(p, "4-0", "evt_member", 1);
	deliver(p, "5-0", "evt_part", 1);

	int handled = 0;
	assert_int_equal(event_consumer_poll(&p->c, &handled), HEX_OK);
	assert_int_equal(handled, 5);
	assert_int_equal(p->stream.nacked, 5);
	assert_int_equal(p->inbox.nfailures, 3);
	/* The refund came first: retried, not dead. */
	assert_string_equal(p->inbox.failures[0].event_id, "evt_refund");
	assert_true(p->inbox.failures[0].retry_at_us > T0_US);
	/* A payment that does not exist and a partial refund: dead at once. */
	assert_string_equal(p->inbox.failures[1].event_id, "evt_ghost");
	assert_int_equal(p->inbox.failures[1].retry_at_us, 0);
	assert_string_equal(p->inbox.failures[2].event_id, "evt_part");
	assert_int_equal(p->inbox.failures[2].retry_at_us, 0);
	assert_true(fake_inbox_applied(&p->inbox, "ledger", "evt_ok"));
	assert_true(fake_inbox_applied(&p->inbox, "ledger", "evt_member"));
	assert_int_equal(atomic_load(&p->stats.retried), 1);
	assert_int_equal(atomic_load(&p->stats.dead), 2);
	assert_int_equal(atomic_load(&p->stats.applied), 2);

	/* The retry (attempt 2, addressed to this consumer) now finds the success posted. */
	struct event_msg *retry =
	    fake_stream_push(&p->stream, false, "9-0", "evt_refund", 2, "{\"id\":\"evt_refund\"}");
	hex_strlcpy(retry->consumer, "ledger", sizeof retry->consumer);
	assert_int_equal(event_consumer_poll(&p->c, &handled), HEX_OK);
	assert_int_equal(handled, 1);
	assert_true(fake_inbox_applied(&p->inbox, "ledger", "evt_refund"));
	assert_non_null(posted(fx, "refund", TOP_UP));
	assert_int_equal(wallet(fx, ALICE), 0);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_consumer_is_declared_once_in_start_order),
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	    T(ledger_credits_a_wallet_top_up_to_its_user),
	    T(ledger_books_the_amount_the_event_received),
	    T(ledger_posts_a_payment_once_for_both_success_events),
	    T(ledger_books_a_membership_as_revenue),
	    T(ledger_reverses_a_refunded_payment),
	    T(ledger_reverses_a_membership_refund_without_amount),
	    T(ledger_refund_before_its_success_is_retryable),
	    T(ledger_refuses_a_partial_refund),
	    T(ledger_refuses_an_event_in_another_currency),
	    T(ledger_dead_letters_an_event_naming_a_missing_payment),
	    T(ledger_ignores_payments_it_never_made),
	    T(ledger_finds_the_payment_by_its_intent),
	    T(ledger_retries_when_payments_cannot_be_read),
	    T(ledger_retries_when_the_ledger_is_down),
	    T(ledger_dead_letters_an_undecodable_payload),
	    T(ledger_ignores_other_event_types),
	    T(membership_drops_a_new_members_cached_user),
	    T(membership_retries_while_the_cache_cannot_drop),
	    T(membership_leaves_the_cache_alone_otherwise),
	    T(membership_without_a_cache_has_nothing_to_drop),
	    T(membership_sorts_failures_like_the_ledger),
	    T(notify_accepts_every_event_it_can_read),
	    T(consumer_retries_early_refunds_and_dead_letters_the_hopeless),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
