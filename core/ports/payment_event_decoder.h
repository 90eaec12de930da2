/*
 * payment_event_decoder: reads a payment provider's event as the outbox kept it (the
 * exact body the provider signed), for the consumers that act on it.
 */
#ifndef HEX_PORT_PAYMENT_EVENT_DECODER_H
#define HEX_PORT_PAYMENT_EVENT_DECODER_H

#include "core/payment.h"

struct payment_event_decoder_ops {
	/* Fills out (which borrows payload); HEX_INVALID with err when it is not an event. */
	enum hex_status (*decode)(void *self, const char *payload, size_t len,
	                          struct payment_event *out, struct hex_err *err);
};

struct payment_event_decoder {
	const struct payment_event_decoder_ops *ops;
	void *self;
};

#endif
