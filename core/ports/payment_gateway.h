/*
 * payment_gateway: the payment provider (Stripe, or the offline simulator). Every call
 * that creates something carries an idempotency key chosen and stored by the caller
 * before the call, so that a retry after a timeout or a crash can never create twice.
 */
#ifndef HEX_PORT_PAYMENT_GATEWAY_H
#define HEX_PORT_PAYMENT_GATEWAY_H

#include "core/payment.h"

#define HEX_IDEMPOTENCY_KEY_MAX 255

struct gateway_intent_request {
	char idempotency_key[HEX_IDEMPOTENCY_KEY_MAX + 1];
	int64_t amount;
	char currency[4];
	/* Sent as metadata so that Stripe's events lead back to our rows. */
	char payment_id[HEX_ID_LEN + 1];
	char user_id[HEX_ID_LEN + 1];
	enum payment_purpose purpose;
	char trace_parent[56]; /* W3C traceparent of the request, "" for none */
};

struct gateway_intent {
	char id[HEX_STRIPE_ID_MAX + 1]; /* pi_... */
	char client_secret[HEX_CLIENT_SECRET_MAX + 1];
	enum payment_status status;
	int64_t amount;
	char currency[4];
};

struct gateway_checkout_request {
	char idempotency_key[HEX_IDEMPOTENCY_KEY_MAX + 1];
	int64_t amount;
	char currency[4];
	char payment_id[HEX_ID_LEN + 1];
	char user_id[HEX_ID_LEN + 1];
	char success_url[HEX_URL_MAX + 1];
	char cancel_url[HEX_URL_MAX + 1];
	char trace_parent[56];
};

struct gateway_checkout {
	char id[HEX_STRIPE_ID_MAX + 1]; /* cs_... */
	char url[HEX_URL_MAX + 1];
	char payment_intent_id[HEX_STRIPE_ID_MAX + 1]; /* may be "" until paid */
};

struct payment_gateway_ops {
	/*
	 * HEX_OK and out on success (also when the provider replayed an earlier answer to
	 * the same key). HEX_UNAVAILABLE when the provider could not be reached or kept
	 * failing after retries: the outcome is unknown and the caller retries later with
	 * the SAME key. HEX_INVALID (err says why, safe to show) when the provider refused
	 * the parameters for good. HEX_CONFLICT when the key was used with other parameters.
	 */
	enum hex_status (*create_intent)(void *self, const struct gateway_intent_request *req,
	                                 struct gateway_intent *out, struct hex_err *err);
	enum hex_status (*create_checkout)(void *self, const struct gateway_checkout_request *req,
	                                   struct gateway_checkout *out, struct hex_err *err);
	enum hex_status (*retrieve_intent)(void *self, const char *intent_id,
	                                   struct gateway_intent *out, struct hex_err *err);
};

struct payment_gateway {
	const struct payment_gateway_ops *ops;
	void *self;
};

#endif
