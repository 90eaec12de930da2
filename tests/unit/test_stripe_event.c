/*
 * test_stripe_event: webhook events built from Stripe's own example objects
 * (tests/fixtures/stripe/fixtures3.json), parsed into struct payment_event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/stripe/stripe_event.h"

#define PAYMENT_ID "5b0e9c1a-7d2f-4e3b-8a6c-1f2e3d4c5b6a"
#define USER_ID    "0f1e2d3c-4b5a-4968-8776-655443322110"
#define EVENT_ID   "evt_3PgafyB7WZ01zgkW1a2b3c4d"
#define INTENT_ID  "pi_1PgafyB7WZ01zgkWSjxsAJo3" /* the fixture payment_intent's id */

static json_t *resources;

/* The fixtures live next to this file's folder: tests/fixtures/stripe/. */
static int load_fixtures(void **state)
{
	char path[1024];
	const char *file = __FILE__;
	const char *slash = strstr(file, "unit/test_stripe_event.c");
	assert_non_null(slash);
	snprintf(path, sizeof path, "%.*sfixtures/stripe/fixtures3.json", (int)(slash - file),
	         file);
	json_error_t e;
	json_t *all = json_load_file(path, 0, &e);
	if (all == NULL)
		fail_msg("cannot read %s: %s", path, e.text);
	resources = json_incref(json_object_get(all, "resources"));
	json_decref(all);
	assert_true(json_is_object(resources));
	return 0;
}

static int free_fixtures(void **state)
{
	json_decref(resources);
	return 0;
}

/* A new reference to a copy of fixture object `name`. */
static json_t *fixture(const char *name)
{
	json_t *obj = json_object_get(resources, name);
	assert_true(json_is_object(obj));
	return json_deep_copy(obj);
}

static json_t *metadata(void)
{
	return json_pack("{s:s, s:s, s:s}", "payment_id", PAYMENT_ID, "user_id", USER_ID, "purpose",
	                 "wallet_top_up");
}

/* The fixture event with id, type and data.object replaced; object is stolen. */
static char *event_text(const char *type, json_t *object)
{
	json_t *ev = fixture("event");
	json_object_set_new(ev, "id", json_string(EVENT_ID));
	json_object_set_new(ev, "type", json_string(type));
	json_object_set_new(ev, "created", json_integer(1700000123));
	json_object_set_new(ev, "data", json_pack("{s:o}", "object", object));
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	assert_non_null(text);
	return text;
}

static void parse_ok(const char *text, struct payment_event *out)
{
	struct hex_err err = {0};
	enum hex_status st = stripe_event_parse(text, strlen(text), out, &err);
	if (st != HEX_OK)
		fail_msg("parse failed: %s", err.message);
	assert_ptr_equal(out->payload, text);
	assert_int_equal(out->payload_len, strlen(text));
	assert_string_equal(out->id, EVENT_ID);
	assert_int_equal(out->created_s, 1700000123);
}

static void intent_succeeded(void **state)
{
	json_t *pi = fixture("payment_intent");
	json_object_set_new(pi, "status", json_string("succeeded"));
	json_object_set_new(pi, "amount_received", json_integer(1099));
	json_object_set_new(pi, "metadata", metadata());
	char *text = event_text("payment_intent.succeeded", pi);
	struct payment_event ev;
	parse_ok(text, &ev);
	assert_string_equal(ev.type, "payment_intent.succeeded");
	assert_int_equal(ev.kind, EVENT_INTENT_SUCCEEDED);
	assert_string_equal(ev.intent_id, INTENT_ID);
	assert_string_equal(ev.payment_id, PAYMENT_ID);
	assert_int_equal(ev.amount, 1099);
	assert_string_equal(ev.currency, "usd");
	free(text);
}

static void intent_failed_uses_the_amount_asked(void **state)
{
	/* The fixture as Stripe sends a failure: nothing received, amount 1099 asked. */
	json_t *pi = fixture("payment_intent");
	json_object_set_new(pi, "metadata", metadata());
	char *text = event_text("payment_intent.payment_failed", pi);
	struct payment_event ev;
	parse_ok(text, &ev);
	assert_int_equal(ev.kind, EVENT_INTENT_FAILED);
	assert_string_equal(ev.intent_id, INTENT_ID);
	assert_string_equal(ev.payment_id, PAYMENT_ID);
	assert_int_equal(ev.amount, 1099);
	assert_string_equal(ev.currency, "usd");
	free(text);
}

static void checkout_completed(void **state)
{
	json_t *cs = fixture("checkout.session");
	json_object_set_new(cs, "status", json_string("complete"));
	json_object_set_new(cs, "payment_status", json_string("paid"));
	json_object_set_new(cs, "amount_total", json_integer(1500));
	json_object_set_new(cs, "currency", json_string("eur"));
	json_object_set_new(cs, "metadata", metadata());
	char *text = event_text("checkout.session.completed", cs);
	struct payment_event ev;
	parse_ok(text, &ev);
	assert_int_equal(ev.kind, EVENT_CHECKOUT_COMPLETED);
	assert_string_equal(ev.intent_id, INTENT_ID); /* data.object.payment_intent */
	assert_string_equal(ev.payment_id, PAYMENT_ID);
	assert_int_equal(ev.amount, 1500);
	assert_string_equal(ev.currency, "eur");
	free(text);
}

static void checkout_with_nulls_leaves_fields_empty(void **state)
{
	/* The fixture session as is: no total, no currency, no metadata. */
	json_t *cs = fixture("checkout.session");
	json_object_set_new(cs, "payment_intent", json_null());
	char *text = event_text("checkout.session.completed", cs);
	struct payment_event ev;
	parse_ok(text, &ev);
	assert_int_equal(ev.kind, EVENT_CHECKOUT_COMPLETED);
	assert_string_equal(ev.intent_id, "");
	assert_string_equal(ev.payment_id, "");
	assert_int_equal(ev.amount, 0);
	assert_string_equal(ev.currency, "");
	free(text);
}

static void charge_refunded(void **state)
{
	json_t *ch = fixture("charge");
	json_object_set_new(ch, "payment_intent", json_string(INTENT_ID));
	json_object_set_new(ch, "refunded", json_true());
	json_object_set_new(ch, "amount_refunded", json_integer(40));
	json_object_set_new(ch, "currency", json_string("USD"));
	json_object_set_new(ch, "metadata", metadata());
	char *text = event_text("charge.refunded", ch);
	struct payment_event ev;
	parse_ok(text, &ev);
	assert_int_equal(ev.kind, EVENT_CHARGE_REFUNDED);
	assert_string_equal(ev.intent_id, INTENT_ID);
	assert_string_equal(ev.payment_id, PAYMENT_ID);
	assert_int_equal(ev.amount, 40); /* the refund, not the charge's 100 */
	assert_string_equal(ev.currency, "usd");
	free(text);
}

static void other_intent_events_still_name_the_intent(void **state)
{
	json_t *pi = fixture("payment_intent");
	json_object_set_new(pi, "metadata", metadata());
	char *text = event_text("payment_intent.created", pi);
	struct payment_event ev;
	parse_ok(text, &ev);
	assert_int_equal(ev.kind, EVENT_OTHER);
	assert_string_equal(ev.intent_id, INTENT_ID);
	assert_string_equal(ev.payment_id, PAYMENT_ID);
	free(text);
}

static void unknown_type_is_other(void **state)
{
	/* The fixture event untouched: a plan.created about a plan object. */
	char *text = json_dumps(json_object_get(resources, "event"), JSON_COMPACT);
	struct payment_event ev;
	struct hex_err err = {0};
	assert_int_equal(stripe_event_parse(text, strlen(text), &ev, &err), HEX_OK);
	assert_int_equal(ev.kind, EVENT_OTHER);
	assert_string_equal(ev.id, "evt_1Pgc76B7WZ01zgkWwyRHS12y");
	assert_string_equal(ev.type, "plan.created");
	assert_int_equal(ev.created_s, 1234567890);
	assert_string_equal(ev.intent_id, "");
	assert_string_equal(ev.payment_id, "");
	assert_int_equal(ev.amount, 0);
	free(text);
}

static void foreign_metadata_is_not_ours(void **state)
{
	json_t *pi = fixture("payment_intent");
	json_object_set_new(pi, "metadata", json_pack("{s:s}", "payment_id", "order-42"));
	char *text = event_text("payment_intent.succeeded", pi);
	struct payment_event ev;
	parse_ok(text, &ev);
	assert_string_equal(ev.payment_id, "");
	free(text);

	pi = fixture("payment_intent");
	json_object_set_new(
	    pi, "metadata",
	    json_pack("{s:s}", "payment_id", "5B0E9C1A-7D2F-4E3B-8A6C-1F2E3D4C5B6A"));
	text = event_text("payment_intent.succeeded", pi);
	parse_ok(text, &ev);
	assert_string_equal(ev.payment_id, PAYMENT_ID);
	free(text);
}

static void expect_invalid(const char *text, size_t len)
{
	struct payment_event ev;
	memset(&ev, 0x5a, sizeof ev);
	struct hex_err err = {0};
	print_message("event: %.100s\n", text != NULL ? text : "(null)");
	assert_int_equal(stripe_event_parse(text, len, &ev, &err), HEX_INVALID);
	assert_string_equal(err.field, "body");
	assert_true(err.message[0] != '\0');
	/* Nothing half-filled leaks to a caller that ignores the status. */
	assert_string_equal(ev.id, "");
	assert_null(ev.payload);
}

static void malformed_events_are_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "not json",
	    "[]",
	    "\"evt_1\"",
	    "null",
	    "{}",
	    "{\"type\":\"charge.refunded\"}",                              /* no id */
	    "{\"id\":\"\",\"type\":\"charge.refunded\"}",                  /* empty id */
	    "{\"id\":42,\"type\":\"charge.refunded\"}",                    /* id not a string */
	    "{\"id\":\"evt_1\"}",                                          /* no type */
	    "{\"id\":\"evt_1\",\"type\":null}",                            /* type null */
	    "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":\"yesterday\"}", /* created */
	    "{\"id\":\"evt_1\",\"id\":\"evt_2\",\"type\":\"x\"}",          /* duplicate key */
	    "{\"id\":\"evt\\u0000x\",\"type\":\"x\"}",                     /* NUL in id */
	    "{\"id\":\"evt_1\",\"type\":\"x\"} trailing",
	    /* handled types need their object, with fields of the right type */
	    "{\"id\":\"evt_1\",\"type\":\"charge.refunded\"}",
	    "{\"id\":\"evt_1\",\"type\":\"charge.refunded\",\"data\":{\"object\":[]}}",
	    "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
	    "{\"id\":\"pi_1\",\"amount_received\":\"1099\",\"currency\":\"usd\"}}}",
	    "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
	    "{\"id\":\"pi_1\",\"amount_received\":-5,\"currency\":\"usd\"}}}",
	    "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
	    "{\"id\":\"pi_1\",\"amount_received\":5,\"currency\":\"us\"}}}",
	    "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
	    "{\"id\":\"pi_1\",\"amount_received\":5,\"currency\":\"usd1\"}}}",
	    "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
	    "{\"id\":7,\"amount_received\":5,\"currency\":\"usd\"}}}",
	    "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\",\"data\":{\"object\":"
	    "{\"payment_intent\":{\"id\":\"pi_1\"}}}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_invalid(bad[i], strlen(bad[i]));
	expect_invalid(NULL, 0);
	/* The length is honoured: a valid prefix does not make a valid event. */
	const char *whole = "{\"id\":\"evt_1\",\"type\":\"x\"}";
	expect_invalid(whole, strlen(whole) - 1);
}

static void overlong_id_or_type_is_refused(void **state)
{
	char id[HEX_STRIPE_ID_MAX + 2];
	memset(id, 'a', sizeof id - 1);
	id[sizeof id - 1] = '\0';
	char *text = NULL;
	json_t *ev = json_pack("{s:s, s:s}", "id", id, "type", "x");
	text = json_dumps(ev, JSON_COMPACT);
	expect_invalid(text, strlen(text));
	free(text);
	json_decref(ev);

	char type[sizeof((struct payment_event *)0)->type + 1];
	memset(type, 'b', sizeof type - 1);
	type[sizeof type - 1] = '\0';
	ev = json_pack("{s:s, s:s}", "id", "evt_1", "type", type);
	text = json_dumps(ev, JSON_COMPACT);
	expect_invalid(text, strlen(text));
	free(text);
	json_decref(ev);

	/* One shorter of each fits. */
	id[sizeof id - 2] = '\0';
	type[sizeof type - 2] = '\0';
	ev = json_pack("{s:s, s:s}", "id", id, "type", type);
	text = json_dumps(ev, JSON_COMPACT);
	struct payment_event out;
	struct hex_err err = {0};
	assert_int_equal(stripe_event_parse(text, strlen(text), &out, &err), HEX_OK);
	assert_string_equal(out.id, id);
	assert_string_equal(out.type, type);
	free(text);
	json_decref(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(intent_succeeded),
	    cmocka_unit_test(intent_failed_uses_the_amount_asked),
	    cmocka_unit_test(checkout_completed),
	    cmocka_unit_test(checkout_with_nulls_leaves_fields_empty),
	    cmocka_unit_test(charge_refunded),
	    cmocka_unit_test(other_intent_events_still_name_the_intent),
	    cmocka_unit_test(unknown_type_is_other),
	    cmocka_unit_test(foreign_metadata_is_not_ours),
	    cmocka_unit_test(malformed_events_are_refused),
	    cmocka_unit_test(overlong_id_or_type_is_refused),
	};
	return cmocka_run_group_tests(tests, load_fixtures, free_fixtures);
}
