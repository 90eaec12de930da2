/*
 * stripe_simulator_delivery: the simulated gateway's webhook sender. One background
 * thread takes events from a time-ordered queue and POSTs each (libcurl) to the webhook
 * URL as Stripe does: `Content-Type: application/json; charset=utf-8` and a
 * `Stripe-Signature: t=<now>,v1=<HMAC-SHA256 of "<t>.<body>">` made afresh for every
 * attempt. A non-2xx answer or a network error is retried after retry_base_ms, then
 * twice that, and so on, up to STRIPE_SIMULATOR_DELIVERY_ATTEMPTS tries in all; then the
 * event is logged and dropped.
 *
 * Thread-safe. The secret is never logged.
 */
#ifndef HEX_STRIPE_SIMULATOR_DELIVERY_H
#define HEX_STRIPE_SIMULATOR_DELIVERY_H

#include <stdint.h>

#include "core/hex.h"

#define STRIPE_SIMULATOR_DELIVERY_ATTEMPTS     5
#define STRIPE_SIMULATOR_DELIVERY_CONNECT_MS   2000
#define STRIPE_SIMULATOR_DELIVERY_TIMEOUT_MS   10000
#define STRIPE_SIMULATOR_DELIVERY_RETRY_MAX_MS 60000
#define STRIPE_SIMULATOR_DELIVERY_URL_MAX      2048

/* Chaos done to one delivery, each logged at info when it happens. */
enum stripe_simulator_delivery_chaos {
	SIM_CHAOS_DUPLICATE = 1 << 0, /* this is a second copy of an event already queued */
	SIM_CHAOS_LATE = 1 << 1,      /* held back so that a later event overtakes it */
	SIM_CHAOS_LOSE_FIRST = 1 << 2 /* the first attempt is not sent: it counts as failed */
};

struct stripe_simulator_delivery_stats {
	uint64_t attempts;  /* attempts made, lost ones included */
	uint64_t delivered; /* answered 2xx */
	uint64_t failed;    /* attempts answered non-2xx, or not at all, or lost */
	uint64_t dropped;   /* gave up after STRIPE_SIMULATOR_DELIVERY_ATTEMPTS */
	uint64_t pending;   /* queued now, the one being sent included */
};

struct stripe_simulator_delivery;

/*
 * Copies url (http:// or https://) and secret (non-empty), and starts the thread.
 * retry_base_ms in 1..STRIPE_SIMULATOR_DELIVERY_RETRY_MAX_MS. NULL with err (HEX_INVALID
 * naming "simulated_webhook_url" / "stripe_webhook_secret" / "simulated_retry_base_ms",
 * or HEX_INTERNAL when libcurl or the thread cannot start). The caller frees the result
 * with stripe_simulator_delivery_free().
 */
struct stripe_simulator_delivery *stripe_simulator_delivery_new(const char *url, const char *secret,
                                                                int retry_base_ms,
                                                                struct hex_err *err);

/*
 * Stops the thread (aborting a POST in flight), sends nothing more, discards what is
 * still queued (logged as a count), wipes the secret and frees. NULL is fine.
 */
void stripe_simulator_delivery_free(struct stripe_simulator_delivery *d);

/* One event to send. */
struct stripe_simulator_delivery_event {
	const char *id;    /* evt_..., copied (for the logs) */
	const char *type;  /* payment_intent.succeeded, ..., copied (for the logs) */
	const char *about; /* the PaymentIntent it is about, copied (for the logs) */
	char *body;        /* the event's JSON, NUL-terminated: ownership passes on schedule */
	int64_t due_ms;    /* first attempt, on stripe_simulator_delivery_now_ms()'s clock */
	unsigned chaos;    /* mask of enum stripe_simulator_delivery_chaos */
};

/* Queues ev for its first attempt; ev->body now belongs to d. */
void stripe_simulator_delivery_schedule(struct stripe_simulator_delivery *d,
                                        const struct stripe_simulator_delivery_event *ev);

void stripe_simulator_delivery_stats(struct stripe_simulator_delivery *d,
                                     struct stripe_simulator_delivery_stats *out);

/* Milliseconds on the monotonic clock the queue runs on. */
int64_t stripe_simulator_delivery_now_ms(void);

#endif
