/* payment.c: the rules of the payment domain: amounts, currencies, status order, events. */
#include "core/payment.h"

#include <ctype.h>
#include <string.h>

static const char *const purpose_names[] = {
    [PURPOSE_WALLET_TOP_UP] = "wallet_top_up",
    [PURPOSE_MEMBERSHIP] = "membership",
};

static const char *const status_names[] = {
    [PAYMENT_REQUIRES_PAYMENT_METHOD] = "requires_payment_method",
    [PAYMENT_PROCESSING] = "processing",
    [PAYMENT_FAILED] = "failed",
    [PAYMENT_SUCCEEDED] = "succeeded",
    [PAYMENT_REFUNDED] = "refunded",
};

static const char *const event_kind_names[] = {
    [EVENT_INTENT_SUCCEEDED] = "payment_intent.succeeded",
    [EVENT_INTENT_FAILED] = "payment_intent.payment_failed",
    [EVENT_CHECKOUT_COMPLETED] = "checkout.session.completed",
    [EVENT_CHARGE_REFUNDED] = "charge.refunded",
    [EVENT_OTHER] = "other",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The currencies hexd takes payments in: all settle in Stripe with two decimals except
 * jpy (none), which HEX_AMOUNT_MAX still bounds sensibly. A short list that we have
 * thought about beats accepting every ISO code and meeting three-decimal ones (kwd)
 * or Stripe's per-currency minimums in production.
 */
static const char *const currencies[] = {
    "usd", "eur", "gbp", "jpy", "chf", "cad", "aud", "sek", "nok", "dkk",
};

/* What each event kind does; EVENT_OTHER is recorded and changes nothing. */
static const struct payment_event_plan event_plans[] = {
    [EVENT_INTENT_SUCCEEDED] = {true, PAYMENT_SUCCEEDED, true},
    [EVENT_INTENT_FAILED] = {true, PAYMENT_FAILED, false},
    [EVENT_CHECKOUT_COMPLETED] = {true, PAYMENT_SUCCEEDED, true},
    [EVENT_CHARGE_REFUNDED] = {true, PAYMENT_REFUNDED, false},
    [EVENT_OTHER] = {false, PAYMENT_REQUIRES_PAYMENT_METHOD, false},
};

static bool name_parse(const char *const *names, size_t n, const char *s, int *out)
{
	for (size_t i = 0; s != NULL && i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	return false;
}

/* NULL for a value outside the table: a caller bug that must not pass as a valid name. */
static const char *name_of(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : NULL;
}

enum hex_status payment_amount_check(int64_t amount, struct hex_err *err)
{
	if (amount <= 0)
		return hex_fail(err, HEX_INVALID, "amount", "amount must be a positive integer");
	if (amount > HEX_AMOUNT_MAX)
		return hex_fail(err, HEX_INVALID, "amount", "amount must be at most %d",
		                HEX_AMOUNT_MAX);
	return HEX_OK;
}

enum hex_status payment_currency_normalize(const char *in, char out[4], struct hex_err *err)
{
	if (in == NULL || *in == '\0')
		return hex_fail(err, HEX_INVALID, "currency", "currency is required");
	char code[4];
	for (size_t i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)in[i];
		if (i == 3 ? c != '\0' : !isalpha(c) || c > 0x7f)
			return hex_fail(err, HEX_INVALID, "currency",
			                "currency must be a three-letter ISO 4217 code");
		code[i] = (char)tolower(c);
	}
	for (size_t i = 0; i < COUNT(currencies); i++) {
		if (strcmp(code, currencies[i]) == 0) {
			memcpy(out, code, 4);
			return HEX_OK;
		}
	}
	return hex_fail(err, HEX_INVALID, "currency", "currency %s is not supported", code);
}

bool payment_status_advances(enum payment_status from, enum payment_status to)
{
	return (unsigned)to < COUNT(status_names) && (unsigned)from < COUNT(status_names) &&
	       to > from;
}

bool payment_status_unsettled(enum payment_status s)
{
	return s == PAYMENT_REQUIRES_PAYMENT_METHOD || s == PAYMENT_PROCESSING;
}

const char *payment_purpose_name(enum payment_purpose p)
{
	return name_of(purpose_names, COUNT(purpose_names), (int)p);
}

bool payment_purpose_parse(const char *s, enum payment_purpose *out)
{
	int v;
	if (!name_parse(purpose_names, COUNT(purpose_names), s, &v))
		return false;
	*out = (enum payment_purpose)v;
	return true;
}

const char *payment_status_name(enum payment_status s)
{
	return name_of(status_names, COUNT(status_names), (int)s);
}

bool payment_status_parse(const char *s, enum payment_status *out)
{
	int v;
	if (!name_parse(status_names, COUNT(status_names), s, &v))
		return false;
	*out = (enum payment_status)v;
	return true;
}

bool payment_id_valid(const char *id)
{
	return user_id_valid(id);
}

enum hex_status payment_client_key_check(const char *key, struct hex_err *err)
{
	if (key == NULL || *key == '\0')
		return hex_fail(err, HEX_INVALID, "idempotency_key", "Idempotency-Key is empty");
	size_t len = strlen(key);
	if (len > HEX_CLIENT_KEY_MAX)
		return hex_fail(err, HEX_INVALID, "idempotency_key",
		                "Idempotency-Key must be at most %d characters",
		                HEX_CLIENT_KEY_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c <= 0x20 || c >= 0x7f)
			return hex_fail(err, HEX_INVALID, "idempotency_key",
			                "Idempotency-Key must be printable ASCII without spaces");
	}
	return HEX_OK;
}

void payment_event_plan_of(enum payment_event_kind kind, struct payment_event_plan *out)
{
	/* An out-of-range kind is treated as an unknown type: recorded, nothing changes. */
	*out = (unsigned)kind < COUNT(event_plans) ? event_plans[kind] : event_plans[EVENT_OTHER];
}

const char *payment_event_kind_name(enum payment_event_kind k)
{
	return name_of(event_kind_names, COUNT(event_kind_names), (int)k);
}

bool payment_provider_id_valid(const char *id)
{
	size_t n = 0;
	for (const char *p = id; *p != '\0'; p++, n++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		          (*p >= '0' && *p <= '9') || *p == '_';
		if (!ok || n >= HEX_STRIPE_ID_MAX)
			return false;
	}
	return n > 0;
}
