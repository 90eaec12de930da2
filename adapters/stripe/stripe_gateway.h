/*
 * stripe_gateway: the payment_gateway port (core/ports/payment_gateway.h) on Stripe's
 * API: PaymentIntents, Checkout Sessions, and retrieving an intent.
 *
 * A gateway owns one stripe_client, so it serves one thread at a time (see
 * stripe_client.h): the daemon creates one per thread that calls Stripe. Its calls
 * block that thread for up to the configured timeouts and retries, never a loop thread.
 */
#ifndef HEX_STRIPE_GATEWAY_H
#define HEX_STRIPE_GATEWAY_H

#include "adapters/stripe/stripe_client.h"
#include "core/ports/payment_gateway.h"

#define STRIPE_GATEWAY_PRODUCT_NAME "Membership" /* what Checkout shows the buyer */

struct stripe_gateway;

/* As stripe_client_new(); the caller frees the result with stripe_gateway_free(). */
struct stripe_gateway *stripe_gateway_new(const struct stripe_config *cfg, struct hex_err *err);
void stripe_gateway_free(struct stripe_gateway *g); /* NULL is fine */

/* The port, borrowing g (valid while g lives). */
struct payment_gateway stripe_gateway_port(struct stripe_gateway *g);

/*
 * Stripe's PaymentIntent status in our order of states: requires_payment_method,
 * requires_confirmation and requires_action wait for the buyer; processing and
 * requires_capture are in flight; succeeded; canceled is failed. False if unknown.
 */
bool stripe_gateway_status_parse(const char *s, enum payment_status *out);

#endif
