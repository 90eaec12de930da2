/* stripe_simulator_event.c: Stripe-shaped event JSON for the simulated gateway. */
#include "adapters/stripe/stripe_simulator_event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/crypto/random_ids.h"
#include "adapters/stripe/stripe_client.h"

#define SESSION_LIFETIME_S 86400 /* Checkout's default expires_at: a day */

static const char alphanumerics[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

typedef json_t *(*stripe_simulator_object_fn)(const struct stripe_simulator_payment *p);

static json_t *stripe_simulator_event_intent_succeeded(const struct stripe_simulator_payment *p);
static json_t *stripe_simulator_event_intent_failed(const struct stripe_simulator_payment *p);
static json_t *stripe_simulator_event_session(const struct stripe_simulator_payment *p);

static const struct {
	const char *name;
	stripe_simulator_object_fn object;
} event_types[SIM_EVENT_TYPE_COUNT] = {
    [SIM_EVENT_INTENT_SUCCEEDED] = {"payment_intent.succeeded",
                                    stripe_simulator_event_intent_succeeded},
    [SIM_EVENT_INTENT_FAILED] = {"payment_intent.payment_failed",
                                 stripe_simulator_event_intent_failed},
    [SIM_EVENT_CHECKOUT_COMPLETED] = {"checkout.session.completed", stripe_simulator_event_session},
};

const char *stripe_simulator_event_type_name(enum stripe_simulator_event_type type)
{
	return (unsigned)type < SIM_EVENT_TYPE_COUNT ? event_types[type].name : NULL;
}

void stripe_simulator_event_new_id(const char *prefix, char *out, size_t n)
{
	char random[STRIPE_SIMULATOR_RANDOM_LEN + 1];
	size_t filled = 0;
	while (filled < STRIPE_SIMULATOR_RANDOM_LEN) {
		unsigned char bytes[32];
		crypto_random_bytes(bytes, sizeof bytes);
		for (size_t i = 0; i < sizeof bytes && filled < STRIPE_SIMULATOR_RANDOM_LEN; i++) {
			/* 248 = 4 * 62: dropping the rest keeps every character equally likely. */
			if (bytes[i] < 248)
				random[filled++] = alphanumerics[bytes[i] % 62];
		}
	}
	random[filled] = '\0';
	snprintf(out, n, "%s%s", prefix, random);
}

static json_t *stripe_simulator_event_string_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *stripe_simulator_event_metadata(const struct stripe_simulator_payment *p)
{
	json_t *m = json_object();
	json_object_set_new(m, "payment_id", json_string(p->payment_id));
	json_object_set_new(m, "user_id", json_string(p->user_id));
	json_object_set_new(m, "purpose", json_string(payment_purpose_name(p->purpose)));
	return m;
}

/* A PaymentIntent as Stripe shows it after the (last) attempt to pay it. */
static json_t *stripe_simulator_event_intent(const struct stripe_simulator_payment *p,
                                             bool succeeded)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(p->intent_id));
	json_object_set_new(o, "object", json_string("payment_intent"));
	json_object_set_new(o, "amount", json_integer(p->amount));
	json_object_set_new(o, "amount_capturable", json_integer(0));
	json_object_set_new(o, "amount_received", json_integer(succeeded ? p->amount : 0));
	json_object_set_new(o, "automatic_payment_methods", json_pack("{s:b}", "enabled", 1));
	json_object_set_new(o, "canceled_at", json_null());
	json_object_set_new(o, "cancellation_reason", json_null());
	json_object_set_new(o, "capture_method", json_string("automatic"));
	json_object_set_new(o, "client_secret", json_string(p->client_secret));
	json_object_set_new(o, "confirmation_method", json_string("automatic"));
	json_object_set_new(o, "created", json_integer(p->created_s));
	json_object_set_new(o, "currency", json_string(p->currency));
	json_object_set_new(o, "customer", json_null());
	json_object_set_new(o, "description", json_null());
	json_object_set_new(o, "last_payment_error",
	                    succeeded ? json_null()
	                              : json_pack("{s:s,s:s,s:s,s:s}", "code", "card_declined",
	                                          "decline_code", "generic_decline", "message",
	                                          "Your card was declined.", "type", "card_error"));
	json_object_set_new(o, "latest_charge",
	                    stripe_simulator_event_string_or_null(succeeded ? p->charge_id : NULL));
	json_object_set_new(o, "livemode", json_false());
	json_object_set_new(o, "metadata", stripe_simulator_event_metadata(p));
	json_object_set_new(o, "payment_method", json_null());
	json_object_set_new(o, "payment_method_types", json_pack("[s]", "card"));
	json_object_set_new(o, "status",
	                    json_string(succeeded ? "succeeded" : "requires_payment_method"));
	return o;
}

static json_t *stripe_simulator_event_intent_succeeded(const struct stripe_simulator_payment *p)
{
	return stripe_simulator_event_intent(p, true);
}

static json_t *stripe_simulator_event_intent_failed(const struct stripe_simulator_payment *p)
{
	return stripe_simulator_event_intent(p, false);
}

/* A Checkout Session as Stripe shows it once the buyer has paid (its URL is gone then). */
static json_t *stripe_simulator_event_session(const struct stripe_simulator_payment *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(p->session_id));
	json_object_set_new(o, "object", json_string("checkout.session"));
	json_object_set_new(o, "amount_subtotal", json_integer(p->amount));
	json_object_set_new(o, "amount_total", json_integer(p->amount));
	json_object_set_new(o, "cancel_url", stripe_simulator_event_string_or_null(p->cancel_url));
	json_object_set_new(o, "client_reference_id", json_string(p->user_id));
	json_object_set_new(o, "created", json_integer(p->created_s));
	json_object_set_new(o, "currency", json_string(p->currency));
	json_object_set_new(o, "customer", json_null());
	json_object_set_new(o, "expires_at", json_integer(p->created_s + SESSION_LIFETIME_S));
	json_object_set_new(o, "livemode", json_false());
	json_object_set_new(o, "metadata", stripe_simulator_event_metadata(p));
	json_object_set_new(o, "mode", json_string("payment"));
	json_object_set_new(o, "payment_intent", json_string(p->intent_id));
	json_object_set_new(o, "payment_method_types", json_pack("[s]", "card"));
	json_object_set_new(o, "payment_status", json_string("paid"));
	json_object_set_new(o, "status", json_string("complete"));
	json_object_set_new(o, "success_url",
	                    stripe_simulator_event_string_or_null(p->success_url));
	json_object_set_new(o, "url", json_null());
	return o;
}

char *stripe_simulator_event_json(const struct stripe_simulator_payment *p,
                                  enum stripe_simulator_event_type type, const char *event_id,
                                  int64_t created_s)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "id", json_string(event_id));
	json_object_set_new(ev, "object", json_string("event"));
	json_object_set_new(ev, "api_version", json_string(STRIPE_API_VERSION));
	json_object_set_new(ev, "created", json_integer(created_s));
	json_object_set_new(ev, "data", json_pack("{s:o}", "object", event_types[type].object(p)));
	json_object_set_new(ev, "livemode", json_false());
	json_object_set_new(ev, "pending_webhooks", json_integer(1));
	json_object_set_new(ev, "request", json_pack("{s:n,s:s}", "id", "idempotency_key", p->key));
	json_object_set_new(ev, "type", json_string(event_types[type].name));
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	/* Only an allocation can fail here: out-of-memory is fatal by policy. */
	if (text == NULL)
		abort();
	return text;
}
