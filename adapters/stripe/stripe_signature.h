/*
 * stripe_signature: verification of the Stripe-Signature header of a webhook delivery
 * (API.md "Stripe webhook").
 *
 * The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` with possibly other schemes
 * (v0, ...) that are ignored. The signed text is "<t>.<raw body>", the MAC HMAC-SHA256
 * under the endpoint secret; any v1 may match (Stripe sends one per live secret while a
 * secret is rolled). Compared in constant time.
 */
#ifndef HEX_STRIPE_SIGNATURE_H
#define HEX_STRIPE_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "core/hex.h"

#define STRIPE_SIGNATURE_TOLERANCE_S 300  /* Stripe's own libraries' default */
#define STRIPE_SIGNATURE_HEADER_MAX  4096 /* a longer header is refused unread */

/*
 * HEX_OK when a v1 signature of body (len bytes; NUL bytes allowed) under secret matches
 * and |now_s - t| <= tolerance_s. Otherwise HEX_INVALID, field "Stripe-Signature", with
 * one of the safe messages "malformed Stripe-Signature header" (also for a header with
 * no v1 at all, a missing or repeated t, or one over STRIPE_SIGNATURE_HEADER_MAX),
 * "invalid signature", "timestamp outside the tolerance". HEX_INTERNAL when secret is
 * NULL or empty (our configuration, not the sender, is wrong).
 */
enum hex_status stripe_signature_verify(const char *header, const void *body, size_t len,
                                        const char *secret, int64_t now_s, int tolerance_s,
                                        struct hex_err *err) HEX_MUST_CHECK;

#endif
