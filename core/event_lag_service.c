/* event_lag_service.c: the pipeline's backlog from the outbox, the dead letters and the stream. */
#include "core/event_lag_service.h"

#include <string.h>

#include "core/payment_consumers.h"

static void read_consumers(struct event_lag_service *s, struct event_lag *out)
{
	for (int i = 0; i < payment_consumer_count && i < EVENT_LAG_CONSUMERS_MAX; i++) {
		struct event_consumer_lag *c = &out->consumers[i];
		hex_strlcpy(c->name, payment_consumer_defs[i].name, sizeof c->name);
		struct event_group_stats gs = {0};
		c->known = s->stream.ops != NULL &&
		           s->stream.ops->stats(s->stream.self, EVENT_TOPIC_PAYMENTS, c->name,
		                                &gs) == HEX_OK;
		c->pending = c->known ? gs.pending : 0;
		c->lag = c->known ? gs.lag : -1;
		out->nconsumers = i + 1;
	}
}

enum hex_status event_lag_service_read(struct event_lag_service *s, bool consumers,
                                       struct event_lag *out, struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	struct outbox_lag ol = {0};
	enum hex_status st =
	    s->outbox.ops->lag(s->outbox.self, s->clock.ops->now_us(s->clock.self), &ol);
	if (st == HEX_OK)
		st = s->dead.ops->count_open(s->dead.self, &out->dead_letters_open);
	if (st != HEX_OK) {
		memset(out, 0, sizeof *out);
		return hex_store_failed(st, "event", err);
	}
	out->outbox_unpublished = ol.unpublished;
	out->oldest_unpublished_us = ol.oldest_age_us;
	if (consumers)
		read_consumers(s, out);
	return HEX_OK;
}
