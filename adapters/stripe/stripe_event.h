/*
 * stripe_event: a Stripe event JSON (a webhook delivery's body) as core/payment.h's
 * struct payment_event.
 */
#ifndef HEX_STRIPE_EVENT_H
#define HEX_STRIPE_EVENT_H

#include <stddef.h>

#include "core/hex.h"
#include "core/payment.h"
#include "core/ports/payment_event_decoder.h"

/*
 * Fills out from body (len bytes, which out->payload then borrows): id, type, created,
 * and the kind named by the type. The object the event is about gives:
 *   payment_intent.*            intent_id = data.object.id, amount = amount_received
 *                               when positive, else amount;
 *   checkout.session.completed  intent_id = data.object.payment_intent, amount_total;
 *   charge.refunded             intent_id = data.object.payment_intent, amount_refunded;
 * and for each of them currency and metadata.payment_id (only when it is a UUID: other
 * integrations on the same account may put anything there). A null or missing value
 * leaves its field empty or 0; a value of the wrong type is an error. Other types are
 * EVENT_OTHER with only id, type and created.
 * HEX_INVALID (field "body") when body is not a JSON object, lacks a string id or type
 * (or they are too long), or a field read above has the wrong type or range.
 */
enum hex_status stripe_event_parse(const char *body, size_t len, struct payment_event *out,
                                   struct hex_err *err) HEX_MUST_CHECK;

/* The kind a Stripe event type stands for; EVENT_OTHER for types hexd does not handle. */
enum payment_event_kind stripe_event_kind(const char *type);

/* stripe_event_parse() as the core's decoder port (stateless). */
struct payment_event_decoder stripe_event_decoder_port(void);

#endif
