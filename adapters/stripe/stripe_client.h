/*
 * stripe_client: Stripe's HTTP API over libcurl, with Stripe's retry rules.
 *
 * One client owns one curl easy handle (and its connection cache), so it serves one
 * thread at a time: give each worker thread its own client. Using a client from two
 * threads at once is a bug and aborts.
 *
 * Every request carries `Authorization: Bearer <secret key>`, the pinned
 * `Stripe-Version`, `User-Agent: hexd/<version>`, and `traceparent` when given; a POST
 * also carries its `Idempotency-Key` (required), the same one on every retry.
 *
 * Retries (up to max_retries more attempts, exponential backoff from backoff_base_ms
 * with jitter): network errors, timeouts, 409, 429 and 5xx. A `Stripe-Should-Retry`
 * header overrides that: `false` never retries, `true` retries even a 4xx. Other 4xx
 * are final. connect_timeout_ms and timeout_ms bound each attempt, so a call takes at
 * most (max_retries + 1) * timeout_ms plus the backoff sleeps, which are each capped at
 * STRIPE_CLIENT_BACKOFF_MAX_MS.
 *
 * The secret key is never logged.
 */
#ifndef HEX_STRIPE_CLIENT_H
#define HEX_STRIPE_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/hex.h"

#define STRIPE_API_VERSION           "2024-06-20"
#define STRIPE_CLIENT_RETRIES_MAX    10
#define STRIPE_CLIENT_BACKOFF_MAX_MS 5000
#define STRIPE_CLIENT_REPLY_MAX      (1024 * 1024) /* a larger answer is a failure */

struct stripe_config {
	const char *api_base;   /* "https://api.stripe.com" (tests: the fake's http://...) */
	const char *secret_key; /* sk_live_... / sk_test_... / rk_... */
	int connect_timeout_ms; /* > 0, per attempt */
	int timeout_ms;         /* > 0, per attempt, connect included */
	int max_retries;        /* 0..STRIPE_CLIENT_RETRIES_MAX */
	int backoff_base_ms;    /* >= 0; the first retry waits about this long */
};

enum stripe_method { STRIPE_GET = 0, STRIPE_POST };

struct stripe_request {
	enum stripe_method method;
	const char *path; /* "/v1/payment_intents"; must start with '/' */
	const char *body; /* POST: form-encoded (stripe_form), NULL for none */
	size_t body_len;
	const char *idempotency_key; /* required for POST, not sent with GET */
	const char *trace_parent;    /* W3C traceparent to propagate, NULL or "" for none */
};

/* What happened on the wire, for logs and tests; filled whatever the result. */
struct stripe_reply_info {
	long http_status; /* of the last attempt, 0 if no answer came */
	int attempts;
	bool replayed;       /* Stripe answered `Idempotent-Replayed: true` */
	char request_id[64]; /* Stripe's `Request-Id` of the last answer, or "" */
};

struct stripe_client;

/*
 * Checks cfg (HEX_INVALID naming the bad key: "stripe_api_base", "stripe_secret_key",
 * ...) and copies what it needs. The caller frees the client with stripe_client_free().
 */
struct stripe_client *stripe_client_new(const struct stripe_config *cfg, struct hex_err *err);
void stripe_client_free(struct stripe_client *c); /* NULL is fine; wipes the key */

/*
 * Sends req with retries. HEX_OK: *out is the JSON object of the 2xx answer (a new
 * reference; the caller json_decref()s it). Otherwise *out is NULL and err says why:
 *   HEX_INVALID     card_error / invalid_request_error: err->message is Stripe's message
 *                   (safe to show), err->field our name of Stripe's `param` (or NULL);
 *   HEX_NOT_FOUND   404 (no such object);
 *   HEX_CONFLICT    idempotency_error: the key was used with other parameters;
 *   HEX_UNAVAILABLE network errors, timeouts, 409/429/5xx after the last retry, an
 *                   answer we could not read: the outcome is unknown, retry with the
 *                   same key later;
 *   HEX_INTERNAL    authentication/permission errors (our configuration is wrong: logged,
 *                   never shown), or a request this client refuses to send.
 * info may be NULL.
 */
enum hex_status stripe_client_call(struct stripe_client *c, const struct stripe_request *req,
                                   json_t **out, struct stripe_reply_info *info,
                                   struct hex_err *err) HEX_MUST_CHECK;

#endif
