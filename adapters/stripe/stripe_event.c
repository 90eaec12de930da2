/* stripe_event.c: Stripe event JSON to struct payment_event. */
#include "adapters/stripe/stripe_event.h"

#include <ctype.h>
#include <jansson.h>
#include <string.h>

#include "core/user.h"

#define FIELD "body"

static const struct {
	const char *type;
	enum payment_event_kind kind;
} event_kinds[] = {
    {"payment_intent.succeeded", EVENT_INTENT_SUCCEEDED},
    {"payment_intent.payment_failed", EVENT_INTENT_FAILED},
    {"checkout.session.completed", EVENT_CHECKOUT_COMPLETED},
    {"charge.refunded", EVENT_CHARGE_REFUNDED},
};

/*
 * Which members of data.object carry the intent and the amount, by event type (a type
 * ending in '.' matches every type that starts with it). fallback_amount is read when
 * amount is absent, null or zero: a failed intent has received nothing.
 */
static const struct {
	const char *type;
	const char *intent;
	const char *amount;
	const char *fallback_amount;
} object_readers[] = {
    {"payment_intent.", "id", "amount_received", "amount"},
    {"checkout.session.completed", "payment_intent", "amount_total", NULL},
    {"charge.refunded", "payment_intent", "amount_refunded", NULL},
};

enum payment_event_kind stripe_event_kind(const char *type)
{
	for (size_t i = 0; i < sizeof event_kinds / sizeof event_kinds[0]; i++)
		if (strcmp(event_kinds[i].type, type) == 0)
			return event_kinds[i].kind;
	return EVENT_OTHER;
}

static bool stripe_event_type_matches(const char *pattern, const char *type)
{
	size_t n = strlen(pattern);
	if (n > 0 && pattern[n - 1] == '.')
		return strncmp(pattern, type, n) == 0;
	return strcmp(pattern, type) == 0;
}

static bool stripe_event_absent(const json_t *v)
{
	return v == NULL || json_is_null(v);
}

/* A string member with no NUL inside, copied whole into out (size n), or "" if absent. */
static bool stripe_event_string(const json_t *obj, const char *key, char *out, size_t n)
{
	const json_t *v = json_object_get(obj, key);
	out[0] = '\0';
	if (stripe_event_absent(v))
		return true;
	return json_is_string(v) && json_string_length(v) == strlen(json_string_value(v)) &&
	       hex_strlcpy(out, json_string_value(v), n);
}

/* A non-negative integer member, or 0 if absent. */
static bool stripe_event_amount(const json_t *obj, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(obj, key);
	*out = 0;
	if (stripe_event_absent(v))
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (int64_t)json_integer_value(v);
	return true;
}

static bool stripe_event_currency(const json_t *obj, char out[4])
{
	char text[8];
	if (!stripe_event_string(obj, "currency", text, sizeof text))
		return false;
	if (text[0] == '\0') {
		out[0] = '\0';
		return true;
	}
	for (int i = 0; i < 3; i++) {
		if (!isalpha((unsigned char)text[i]))
			return false;
		out[i] = (char)tolower((unsigned char)text[i]);
	}
	out[3] = '\0';
	return text[3] == '\0';
}

/* Anything but a UUID in metadata.payment_id is someone else's: left empty. */
static void stripe_event_payment_id(const json_t *obj, char out[HEX_ID_LEN + 1])
{
	const json_t *v = json_object_get(json_object_get(obj, "metadata"), "payment_id");
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	out[0] = '\0';
	if (s != NULL && user_id_valid(s)) {
		for (int i = 0; i <= HEX_ID_LEN; i++)
			out[i] = (char)tolower((unsigned char)s[i]);
	}
}

static enum hex_status stripe_event_read_object(const json_t *root, size_t reader,
                                                struct payment_event *out, struct hex_err *err)
{
	const json_t *obj = json_object_get(json_object_get(root, "data"), "object");
	if (!json_is_object(obj))
		return hex_fail(err, HEX_INVALID, FIELD, "event %s has no data.object", out->type);
	const char *amount_key = object_readers[reader].amount;
	const char *fallback = object_readers[reader].fallback_amount;
	if (!stripe_event_string(obj, object_readers[reader].intent, out->intent_id,
	                         sizeof out->intent_id) ||
	    !stripe_event_amount(obj, amount_key, &out->amount) ||
	    (out->amount == 0 && fallback != NULL &&
	     !stripe_event_amount(obj, fallback, &out->amount)) ||
	    !stripe_event_currency(obj, out->currency))
		return hex_fail(err, HEX_INVALID, FIELD, "event %s has a malformed data.object",
		                out->type);
	stripe_event_payment_id(obj, out->payment_id);
	return HEX_OK;
}

enum hex_status stripe_event_parse(const char *body, size_t len, struct payment_event *out,
                                   struct hex_err *err)
{
	enum hex_status st = HEX_INVALID;
	memset(out, 0, sizeof *out);
	json_t *root = body != NULL ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (!json_is_object(root)) {
		hex_fail(err, st, FIELD, "the event is not a JSON object");
		goto out;
	}
	const json_t *created = json_object_get(root, "created");
	if (!stripe_event_string(root, "id", out->id, sizeof out->id) || out->id[0] == '\0' ||
	    !stripe_event_string(root, "type", out->type, sizeof out->type) ||
	    out->type[0] == '\0') {
		hex_fail(err, st, FIELD, "the event needs a string id and type");
		goto out;
	}
	if (!stripe_event_absent(created) && !json_is_integer(created)) {
		hex_fail(err, st, FIELD, "the event's created is not a number");
		goto out;
	}
	out->created_s = json_is_integer(created) ? (int64_t)json_integer_value(created) : 0;
	out->kind = stripe_event_kind(out->type);
	for (size_t i = 0; i < sizeof object_readers / sizeof object_readers[0]; i++) {
		if (stripe_event_type_matches(object_readers[i].type, out->type)) {
			st = stripe_event_read_object(root, i, out, err);
			if (st != HEX_OK)
				goto out;
			break;
		}
	}
	out->payload = body;
	out->payload_len = len;
	st = HEX_OK;
out:
	if (st != HEX_OK)
		memset(out, 0, sizeof *out);
	json_decref(root);
	return st;
}

static enum hex_status decoder_decode(void *self, const char *payload, size_t len,
                                      struct payment_event *out, struct hex_err *err)
{
	(void)self;
	return stripe_event_parse(payload, len, out, err);
}

static const struct payment_event_decoder_ops decoder_ops = {.decode = decoder_decode};

struct payment_event_decoder stripe_event_decoder_port(void)
{
	return (struct payment_event_decoder){.ops = &decoder_ops, .self = NULL};
}
