/* json_payment: the JSON shape of payments (API.md). */
#ifndef HEX_JSON_PAYMENT_H
#define HEX_JSON_PAYMENT_H

#include "core/payment.h"

#include <jansson.h>

/* New reference: {id, user_id, amount, currency, purpose, status, stripe_payment_intent_id,
 * created_at, updated_at}, plus client_secret when with_secret (only for its creator). */
json_t *json_payment(const struct payment *p, bool with_secret);

#endif
