/*
 * stripe_simulator_event: what the simulated gateway knows about one payment, and the
 * Stripe event JSON it delivers about it (Stripe's event shape, objects shaped like
 * tests/fixtures/stripe/fixtures3.json), so that stripe_event_parse reads it as it reads
 * Stripe's own.
 */
#ifndef HEX_STRIPE_SIMULATOR_EVENT_H
#define HEX_STRIPE_SIMULATOR_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ports/payment_gateway.h"

#define STRIPE_SIMULATOR_RANDOM_LEN 24 /* characters after "pi_sim_", "evt_sim_", ... */

/* One create request and what the simulator made of it (an intent, maybe a session). */
struct stripe_simulator_payment {
	/* The request, as compared for idempotency. */
	char key[HEX_IDEMPOTENCY_KEY_MAX + 1];
	bool checkout;
	int64_t amount;
	char currency[4];
	char payment_id[HEX_ID_LEN + 1];
	char user_id[HEX_ID_LEN + 1];
	enum payment_purpose purpose;
	char *success_url; /* checkout only (else NULL), owned */
	char *cancel_url;  /* checkout only (else NULL), owned */

	/* What the simulator made. */
	char intent_id[HEX_STRIPE_ID_MAX + 1];
	char client_secret[HEX_CLIENT_SECRET_MAX + 1];
	char session_id[HEX_STRIPE_ID_MAX + 1]; /* "" unless checkout */
	char session_url[HEX_URL_MAX + 1];      /* "" unless checkout */
	char charge_id[HEX_STRIPE_ID_MAX + 1];  /* the successful charge, "" if declined */
	int64_t created_s;                      /* wall clock */
	int64_t settle_at_ms;                   /* monotonic: when the outcome happens */
	bool declined;                          /* the outcome is payment_failed */
};

enum stripe_simulator_event_type {
	SIM_EVENT_INTENT_SUCCEEDED = 0, /* payment_intent.succeeded */
	SIM_EVENT_INTENT_FAILED,        /* payment_intent.payment_failed (card declined) */
	SIM_EVENT_CHECKOUT_COMPLETED,   /* checkout.session.completed */
	SIM_EVENT_TYPE_COUNT
};

/* Stripe's name of the type ("payment_intent.succeeded", ...). */
const char *stripe_simulator_event_type_name(enum stripe_simulator_event_type type);

/*
 * The JSON text of event event_id of the given type about p, created at created_s
 * (wall clock). A payment_failed event shows the intent as Stripe does after a decline:
 * status requires_payment_method, nothing received, last_payment_error card_declined.
 * Returns a malloc'd NUL-terminated string the caller frees.
 */
char *stripe_simulator_event_json(const struct stripe_simulator_payment *p,
                                  enum stripe_simulator_event_type type, const char *event_id,
                                  int64_t created_s);

/* Writes prefix and STRIPE_SIMULATOR_RANDOM_LEN random alphanumerics to out (size n). */
void stripe_simulator_event_new_id(const char *prefix, char *out, size_t n);

#endif
