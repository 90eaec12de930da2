/*
 * stripe_simulator: the payment_gateway port (core/ports/payment_gateway.h) without
 * Stripe, for offline runs (HEX_GATEWAY=simulated). It creates PaymentIntents and
 * Checkout Sessions in memory, idempotent by key as Stripe is, settles each delay_ms
 * later, and then delivers Stripe-shaped events, signed with the webhook secret, to
 * hexd's own webhook route (stripe_simulator_delivery.h), as Stripe would.
 *
 * Outcome: an amount with amount % 100 == failure_amount is declined (a
 * payment_intent.payment_failed event; the intent goes back to requires_payment_method
 * as Stripe's does); any other amount succeeds (payment_intent.succeeded, and for a
 * Checkout Session also checkout.session.completed).
 *
 * Chaos (for watching hexd stay correct): each succeeding payment may first get a
 * declined attempt whose payment_failed event is delivered after the success
 * ("reorder"); each event may be delivered twice ("duplicate"), and its first delivery
 * may be lost and retried ("lost"). Each is drawn with probability
 * STRIPE_SIMULATOR_CHAOS_PERCENT from a PRNG seeded by `seed`, so a run is repeatable
 * when the calls come in the same order. Every chaos action is logged at info.
 *
 * One simulator serves every thread (its calls take a mutex and never block on the
 * network). Everything it made lives in memory until it is freed: a few hundred bytes
 * per payment.
 */
#ifndef HEX_STRIPE_SIMULATOR_H
#define HEX_STRIPE_SIMULATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ports/payment_gateway.h"

#define STRIPE_SIMULATOR_DELAY_MS          2000 /* HEX_SIMULATED_DELAY_MS default */
#define STRIPE_SIMULATOR_DELAY_MAX_MS      3600000
#define STRIPE_SIMULATOR_FAILURE_AMOUNT    13   /* 10.13, 20.13, ... are declined */
#define STRIPE_SIMULATOR_RETRY_BASE_MS     1000 /* Stripe-like: 1 s, 2 s, 4 s, 8 s */
#define STRIPE_SIMULATOR_CHAOS_PERCENT     30
#define STRIPE_SIMULATOR_CHECKOUT_URL_BASE "http://127.0.0.1/simulated-checkout/"

struct stripe_simulator_config {
	const char *webhook_url;    /* e.g. http://127.0.0.1:4242/v2/stripe/webhook */
	const char *webhook_secret; /* HEX_STRIPE_WEBHOOK_SECRET: signs deliveries, never logged */
	int delay_ms;               /* 0..STRIPE_SIMULATOR_DELAY_MAX_MS from create to outcome */
	bool chaos;                 /* HEX_SIMULATED_CHAOS */
	int failure_amount;         /* 1..99: amount % 100 == this is declined; 0: none is */
	uint64_t seed;              /* of the chaos PRNG; 0 draws one (logged at start) */
	int retry_base_ms;          /* first retry wait, doubling; 0 for the default */
};

/* What the simulator did so far. */
struct stripe_simulator_stats {
	uint64_t payments;                /* intents and sessions created (replays not counted) */
	uint64_t events;                  /* distinct event ids created */
	uint64_t attempts;                /* delivery attempts made, lost ones included */
	uint64_t delivered;               /* deliveries answered 2xx (duplicates count each time) */
	uint64_t dropped;                 /* deliveries given up after the last retry */
	uint64_t pending;                 /* deliveries queued or in flight now */
	uint64_t chaos_declined_attempts; /* "reorder": a payment_failed sent after success */
	uint64_t chaos_duplicates;        /* events queued twice */
	uint64_t chaos_lost;              /* first deliveries lost on purpose */
};

struct stripe_simulator;

/*
 * Checks c (HEX_INVALID naming the bad key: "simulated_webhook_url",
 * "stripe_webhook_secret", "simulated_delay_ms", "simulated_failure_amount",
 * "simulated_retry_base_ms"), copies it, and starts the delivery thread. The caller frees
 * the result with stripe_simulator_free().
 */
struct stripe_simulator *stripe_simulator_new(const struct stripe_simulator_config *c,
                                              struct hex_err *err);

/* Stops the delivery thread at once: nothing more is delivered. Then frees. NULL is fine. */
void stripe_simulator_free(struct stripe_simulator *s);

/* The port, borrowing s (valid while s lives). */
struct payment_gateway stripe_simulator_port(struct stripe_simulator *s);

void stripe_simulator_read_stats(struct stripe_simulator *s, struct stripe_simulator_stats *out);

#endif
