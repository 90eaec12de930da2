/*
 * fuzz_stripe_event: Stripe event bodies (webhook deliveries, outbox payloads) through
 * stripe_event_parse(), from an exact-size buffer.
 *
 * Properties: an accepted event has the non-empty id and type of the JSON object, the
 * kind its type names, a currency of three lower-case letters or none, a payment id that
 * is a lower-case UUID or none, and a non-negative amount; only the types we read have an
 * intent or amount; it borrows the body. A refused one names "body" and leaves the event
 * zeroed. The decoder port answers exactly as the function does.
 */
#include "support/fuzz_input.h"

#include "adapters/stripe/stripe_event.h"
#include "core/user.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static bool c_string_within(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static bool currency_ok(const char *c)
{
	if (c[0] == '\0')
		return true;
	for (int i = 0; i < 3; i++)
		if (!islower((unsigned char)c[i]))
			return false;
	return c[3] == '\0';
}

static bool payment_id_ok(const char *id)
{
	if (id[0] == '\0')
		return true;
	for (const char *p = id; *p != '\0'; p++)
		if (isupper((unsigned char)*p))
			return false;
	return user_id_valid(id);
}

/* Types whose data.object is read (stripe_event.c's object_readers). */
static bool type_has_object(const char *type)
{
	return strncmp(type, "payment_intent.", strlen("payment_intent.")) == 0 ||
	       strcmp(type, "checkout.session.completed") == 0 ||
	       strcmp(type, "charge.refunded") == 0;
}

static void check_accepted(const struct payment_event *ev, const char *body, size_t len)
{
	FUZZ_CHECK(c_string_within(ev->id, sizeof ev->id) && ev->id[0] != '\0');
	FUZZ_CHECK(c_string_within(ev->type, sizeof ev->type) && ev->type[0] != '\0');
	FUZZ_CHECK(c_string_within(ev->intent_id, sizeof ev->intent_id));
	FUZZ_CHECK(c_string_within(ev->payment_id, sizeof ev->payment_id));
	FUZZ_CHECK(c_string_within(ev->currency, sizeof ev->currency));
	FUZZ_CHECK(ev->kind == stripe_event_kind(ev->type));
	FUZZ_CHECK(currency_ok(ev->currency));
	FUZZ_CHECK(payment_id_ok(ev->payment_id));
	FUZZ_CHECK(ev->amount >= 0);
	FUZZ_CHECK(ev->payload == body && ev->payload_len == len);
	if (!type_has_object(ev->type)) {
		FUZZ_CHECK(ev->kind == EVENT_OTHER);
		FUZZ_CHECK(ev->intent_id[0] == '\0' && ev->payment_id[0] == '\0');
		FUZZ_CHECK(ev->amount == 0 && ev->currency[0] == '\0');
	}
	/* The id and type are the object's own, not something found deeper in it. */
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(json_is_object(root));
	FUZZ_CHECK(strcmp(json_string_value(json_object_get(root, "id")), ev->id) == 0);
	FUZZ_CHECK(strcmp(json_string_value(json_object_get(root, "type")), ev->type) == 0);
	json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_input_copy(data, size);
	struct payment_event ev, via_port;
	struct hex_err err = {0}, port_err = {0};
	memset(&ev, 0xa5, sizeof ev); /* the parser must overwrite all of it */
	enum hex_status st = stripe_event_parse(body, size, &ev, &err);
	if (st == HEX_OK) {
		check_accepted(&ev, body, size);
	} else {
		FUZZ_CHECK(st == HEX_INVALID);
		FUZZ_CHECK(err.field != NULL && strcmp(err.field, "body") == 0);
		FUZZ_CHECK(err.message[0] != '\0');
		FUZZ_CHECK(all_zero(&ev, sizeof ev));
	}
	struct payment_event_decoder port = stripe_event_decoder_port();
	memset(&via_port, 0xa5, sizeof via_port);
	FUZZ_CHECK(port.ops->decode(port.self, body, size, &via_port, &port_err) == st);
	FUZZ_CHECK(memcmp(&ev, &via_port, sizeof ev) == 0);
	FUZZ_CHECK(strcmp(err.message, port_err.message) == 0);
	free(body);
	return 0;
}
